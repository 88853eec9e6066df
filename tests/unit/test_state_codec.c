/* Tests for state files and state blobs with keys (src/crypto/state_codec.c): unit
 * cases, plus differential tests against the installed swtpm 0.7.1 as the peer. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crypto/state_codec.h"
#include "vtpm/ctrl_proto.h"

#include "child.h"

#define SWTPM_BIN "/usr/bin/swtpm"
#define SWTPM_IOCTL_BIN "/usr/bin/swtpm_ioctl"

/* ---- temp dir and child processes -------------------------------------------- */

static char tmpdir[64];
static pid_t live[16]; /* swtpm instances started by this test, killed in fini */

static void tmp_setup(void)
{
	strcpy(tmpdir, "/tmp/vtpm-sc-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	memset(live, 0, sizeof(live));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tmp_teardown(void)
{
	/* Only the pids this test started, even if it failed half-way. */
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] > 0) {
			kill(live[i], SIGKILL);
			waitpid(live[i], NULL, 0);
			live[i] = 0;
		}
	}
	if (tmpdir[0])
		nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(state, .init = tmp_setup, .fini = tmp_teardown);
TestSuite(peer, .init = tmp_setup, .fini = tmp_teardown, .timeout = 240);

static void track(pid_t pid, bool add)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (add && live[i] == 0) {
			live[i] = pid;
			return;
		}
		if (!add && live[i] == pid) {
			live[i] = 0;
			return;
		}
	}
}

static pid_t spawn(char *const argv[], const char *out)
{
	pid_t pid = fork();

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDONLY);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		if (nul >= 0)
			dup2(nul, STDIN_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	track(pid, true);
	return pid;
}

/* Exit code (128+signal if killed by one); -1 if it did not end within `ms`
 * (then it is killed and reaped). */
static int reap(pid_t pid, long ms)
{
	long end = now_ms() + ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			track(pid, false);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		cr_assert_neq(r, -1, "waitpid: %s", strerror(errno));
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			track(pid, false);
			return -1;
		}
		usleep(5000);
	}
}

static int run(char *const argv[], const char *out)
{
	return reap(spawn(argv, out), 20000);
}

static bool have_peer(void)
{
	return access(SWTPM_BIN, X_OK) == 0 && access(SWTPM_IOCTL_BIN, X_OK) == 0;
}

#define NEED_PEER()                                                                      \
	do {                                                                             \
		if (!have_peer())                                                        \
			cr_skip_test("peer test skipped: " SWTPM_BIN " (swtpm 0.7.1) is not " \
				     "installed");                                        \
	} while (0)

static char *path_in(const char *name)
{
	static char buf[8][512];
	static int slot;
	char *p = buf[slot++ % 8];

	snprintf(p, 512, "%s/%s", tmpdir, name);
	return p;
}

static const char *mksub(const char *name)
{
	char *p = path_in(name);

	cr_assert_eq(mkdir(p, 0700), 0, "mkdir %s: %s", p, strerror(errno));
	return p;
}

static void write_all(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	if (len)
		cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static bool read_all(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return false;
	for (;;) {
		if (cap - n < 4096) {
			cap += 65536;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		size_t r = fread(buf + n, 1, cap - n, f);

		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return true;
}

/* The number after the first `marker` in a log file (base auto-detected), -1 if
 * the marker is not there. */
static long log_number(const char *path, const char *marker)
{
	uint8_t *buf;
	size_t len;
	long v = -1;
	char *p;

	if (!read_all(path, &buf, &len))
		return -1;
	buf = realloc(buf, len + 1);
	buf[len] = 0;
	p = strstr((char *)buf, marker);
	if (p)
		v = strtol(p + strlen(marker), NULL, 0);
	free(buf);
	return v;
}

/* ---- the peer: swtpm socket + swtpm_ioctl -------------------------------------- */

struct peer {
	pid_t pid;
	char dir[512];
	char sock[600];
	char log[600];
	char out[600];
};

static bool sock_ready(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	cr_assert_geq(fd, 0);
	cr_assert_lt(strlen(path), sizeof(sa.sun_path), "socket path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/*
 * Start swtpm on `dir` (key/mig = option strings or NULL). Returns 0 once the
 * control socket is there, else the exit code (or -1 on timeout). With
 * run_tpm the TPM is started at once (--flags not-need-init).
 */
static int peer_start(struct peer *p, const char *dir, const char *key, const char *mig,
		      bool run_tpm)
{
	char tpmstate[600], ctrl[700], log[700];
	char *argv[20];
	int n = 0;
	long end;

	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	snprintf(p->sock, sizeof(p->sock), "%s/ctrl.sock", dir);
	snprintf(p->log, sizeof(p->log), "%s.log", dir);
	snprintf(p->out, sizeof(p->out), "%s.out", dir);
	unlink(p->sock);
	unlink(p->log);
	snprintf(tpmstate, sizeof(tpmstate), "dir=%s", dir);
	snprintf(ctrl, sizeof(ctrl), "type=unixio,path=%s", p->sock);
	snprintf(log, sizeof(log), "file=%s", p->log);

	argv[n++] = (char *)SWTPM_BIN;
	argv[n++] = (char *)"socket";
	argv[n++] = (char *)"--tpm2";
	argv[n++] = (char *)"--tpmstate";
	argv[n++] = tpmstate;
	argv[n++] = (char *)"--ctrl";
	argv[n++] = ctrl;
	argv[n++] = (char *)"--log";
	argv[n++] = log;
	if (key) {
		argv[n++] = (char *)"--key";
		argv[n++] = (char *)key;
	}
	if (mig) {
		argv[n++] = (char *)"--migration-key";
		argv[n++] = (char *)mig;
	}
	if (run_tpm) {
		argv[n++] = (char *)"--flags";
		argv[n++] = (char *)"not-need-init";
	}
	argv[n] = NULL;

	p->pid = spawn(argv, p->out);
	end = now_ms() + 20000;
	while (now_ms() < end) {
		struct stat st;
		int status;
		pid_t r = waitpid(p->pid, &status, WNOHANG);

		if (r == p->pid) {
			track(p->pid, false);
			p->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		/* The file exists from bind() on, but connects are refused until
		 * listen(): only a successful connect means "ready". */
		if (stat(p->sock, &st) == 0 && S_ISSOCK(st.st_mode) && sock_ready(p->sock))
			return 0;
		usleep(5000);
	}
	reap(p->pid, 0);
	p->pid = 0;
	return -1;
}

static int peer_ioctl(const struct peer *p, const char *a1, const char *a2, const char *a3)
{
	char *argv[] = { (char *)SWTPM_IOCTL_BIN, (char *)"--unix", (char *)p->sock, (char *)a1,
			 (char *)a2, (char *)a3, NULL };

	return run(argv, p->out);
}

/* CMD_SHUTDOWN, then the exit code of swtpm (0 expected). */
static int peer_stop(struct peer *p)
{
	int r = peer_ioctl(p, "-s", NULL, NULL);
	int e = reap(p->pid, 20000);

	p->pid = 0;
	return r != 0 ? 100 + r : e;
}

/* A start with --flags not-need-init that must fail: the exit code (1), or -1 if
 * the TPM came up after all (then it has been stopped). */
static int peer_start_fails(const char *dir, const char *key, char *log_copy)
{
	struct peer p;
	int r = peer_start(&p, dir, key, NULL, true);

	if (r == 0) {
		/* The socket can appear before libtpms is initialised. */
		r = reap(p.pid, 10000);
		p.pid = 0;
	}
	if (log_copy)
		snprintf(log_copy, 600, "%s", p.log);
	return r;
}

/* Result code the reference logged for a failed permall load. */
static long peer_load_rc(const char *log)
{
	return log_number(log, "Error from SWTPM_NVRAM_GetDecryptedData rc = ");
}

static void peer_permall(const char *dir, uint8_t **buf, size_t *len)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/tpm2-00.permall", dir);
	cr_assert(read_all(path, buf, len), "no permall in %s", dir);
}

static void expect_tpm2_payload(const uint8_t *p, size_t len)
{
	static const uint8_t magic[] = { 0x00, 0x03, 0xab, 0x36, 0x47, 0x23 };

	cr_assert_gt(len, sizeof(magic));
	cr_assert_arr_eq(p, magic, sizeof(magic), "not a libtpms TPM 2 permall payload");
}

/* A real permall payload: from a keyless reference state directory. */
static void peer_plain_payload(uint8_t **payload, size_t *plen)
{
	const char *dir = mksub("plain-src");
	struct peer p;
	uint8_t *file;
	size_t flen;

	cr_assert_eq(peer_start(&p, dir, NULL, NULL, true), 0);
	cr_assert_eq(peer_stop(&p), 0);
	peer_permall(dir, &file, &flen);
	cr_assert_eq(file[5], 0x00, "plain file has header flags 0");
	cr_assert_eq(state_file_decode(NULL, file, flen, payload, plen), 0);
	expect_tpm2_payload(*payload, *plen);
	free(file);
}

/* ---- independent crypto helpers for crafting inputs ----------------------------- */

static struct vtpm_key mkkey(size_t len, uint8_t seed)
{
	struct vtpm_key k = { .len = len };

	for (size_t i = 0; i < len; i++)
		k.bytes[i] = (uint8_t)(seed + 5 * i);
	return k;
}

static void ref_cbc_enc(const struct vtpm_key *k, const uint8_t *iv16, const uint8_t *in,
			size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	size_t whole = len - len % 16;
	int l1 = 0, l2 = 0;

	cr_assert(EVP_EncryptInit_ex(c, k->len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc(), NULL,
				     k->bytes, iv16));
	EVP_CIPHER_CTX_set_padding(c, 0);
	if (whole) {
		cr_assert(EVP_EncryptUpdate(c, out, &l1, in, (int)whole));
		cr_assert(EVP_EncryptFinal_ex(c, out + l1, &l2));
	}
	memcpy(out + whole, in + whole, len - whole);
	EVP_CIPHER_CTX_free(c);
}

struct buf {
	uint8_t *b;
	size_t len, cap;
};

static void buf_put(struct buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->b = realloc(b->b, b->cap);
		cr_assert_not_null(b->b);
	}
	if (n)
		memcpy(b->b + b->len, d, n);
	b->len += n;
}

static void buf_be16(struct buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	buf_put(b, x, 2);
}

static void buf_be32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	buf_put(b, x, 4);
}

static void buf_tlv(struct buf *b, uint16_t tag, const void *v, size_t n)
{
	buf_be16(b, tag);
	buf_be32(b, (uint32_t)n);
	buf_put(b, v, n);
}

/* Header with arbitrary values; totlen is patched by buf_fix_totlen. */
static void buf_hdr(struct buf *b, uint8_t ver, uint8_t minv, uint16_t hdrsize, uint16_t flags)
{
	uint8_t x[2] = { ver, minv };

	buf_put(b, x, 2);
	buf_be16(b, hdrsize);
	buf_be16(b, flags);
	buf_be32(b, 0);
}

static void buf_fix_totlen(struct buf *b)
{
	b->b[6] = (uint8_t)(b->len >> 24);
	b->b[7] = (uint8_t)(b->len >> 16);
	b->b[8] = (uint8_t)(b->len >> 8);
	b->b[9] = (uint8_t)b->len;
}

/* Knobs for an encrypted file body made the way swtpm would, or deliberately not. */
struct craft {
	size_t pad_override; /* 0: correct padding; else this pad value (0x100 = 0) ... */
	bool pad_inconsistent; /* ... and/or one pad byte differs */
	size_t ct_extra;     /* raw bytes appended to the ciphertext */
	size_t ct_truncate;  /* ciphertext cut to this many bytes (0 = no) */
	size_t iv_len;       /* stored IV length; 0 = key length */
	bool no_iv, no_hmac, junk_first;
	size_t hmac_len;     /* 0 = 32 */
	uint16_t flags;      /* header flags */
	bool flip_ct;        /* tamper after MAC */
};

static void craft_file(const struct vtpm_key *k, const uint8_t *p, size_t plen,
		       const struct craft *c, struct buf *out)
{
	size_t kl = k->len, pad = kl - plen % kl, padded_len, ivl = c->iv_len ? c->iv_len : kl;
	uint8_t iv[64], zero[16] = { 0 }, mac[64], *padded, *ct, *cat;
	unsigned int ml = 0;
	size_t ctl;

	for (size_t i = 0; i < sizeof(iv); i++)
		iv[i] = (uint8_t)(0x5a ^ (i * 13));
	padded_len = plen + pad;
	padded = malloc(padded_len + c->ct_extra + 1);
	memcpy(padded, p, plen);
	memset(padded + plen, (int)(c->pad_override ? c->pad_override : pad), pad);
	if (c->pad_inconsistent)
		padded[padded_len - 2] ^= 0x40;
	memset(padded + padded_len, 0x77, c->ct_extra);
	ctl = padded_len + c->ct_extra;
	if (c->ct_truncate)
		ctl = c->ct_truncate;
	ct = malloc(ctl + 1);
	ref_cbc_enc(k, c->no_iv ? zero : iv, padded, ctl, ct);

	cat = malloc(ctl + sizeof(iv));
	memcpy(cat, ct, ctl);
	memcpy(cat + ctl, iv, c->no_iv ? 0 : ivl);
	cr_assert_not_null(HMAC(EVP_sha256(), k->bytes, (int)kl, cat, ctl + (c->no_iv ? 0 : ivl),
				mac, &ml));
	memset(mac + 32, 0xee, 32);
	if (c->flip_ct)
		ct[ctl / 2] ^= 1;

	out->len = 0;
	buf_hdr(out, 2, 1, 10, c->flags);
	if (c->junk_first)
		buf_tlv(out, 0x42, "junk", 4);
	buf_tlv(out, TLV_TAG_ENCRYPTED_DATA, ct, ctl);
	if (!c->no_hmac)
		buf_tlv(out, TLV_TAG_HMAC, mac, c->hmac_len ? c->hmac_len : 32);
	if (!c->no_iv)
		buf_tlv(out, TLV_TAG_IVEC_ENCRYPTED_DATA, iv, ivl);
	buf_fix_totlen(out);
	free(padded);
	free(ct);
	free(cat);
}

/* swtpm before 0.5 style headerless file: AES-CBC (zero IV) of SHA-256(P) || P. */
static void craft_legacy(const struct vtpm_key *k, const uint8_t *p, size_t plen, bool bad_hash,
			 struct buf *out)
{
	size_t kl = k->len, inner = 32 + plen, pad = kl - inner % kl;
	uint8_t *pl = malloc(inner + pad), zero[16] = { 0 };
	size_t ol = 0;

	cr_assert_eq(EVP_Q_digest(NULL, "SHA256", NULL, p, plen, pl, &ol), 1);
	if (bad_hash)
		pl[3] ^= 1;
	memcpy(pl + 32, p, plen);
	memset(pl + inner, (int)pad, pad);
	out->len = 0;
	buf_put(out, pl, inner + pad); /* reserve */
	ref_cbc_enc(k, zero, pl, inner + pad, out->b);
	free(pl);
}

/* ---- unit tests: files --------------------------------------------------------- */

static uint8_t *pattern(size_t len, uint8_t seed)
{
	uint8_t *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
	return p;
}

static uint16_t hdr_flags(const uint8_t *b)
{
	return (uint16_t)(b[4] << 8 | b[5]);
}

Test(state, file_plain_roundtrip)
{
	uint8_t *p = pattern(1299, 1), *f, *back;
	size_t fl, bl;
	struct vtpm_key none = { .len = 0 };

	cr_assert_eq(state_file_encode(NULL, p, 1299, &f, &fl), 0);
	cr_assert_eq(fl, 1315);
	cr_assert_eq(hdr_flags(f), 0);
	cr_assert_eq(f[10] << 8 | f[11], TLV_TAG_DATA);
	cr_assert_eq(state_file_decode(&none, f, fl, &back, &bl), 0);
	cr_assert_eq(bl, 1299);
	cr_assert_arr_eq(back, p, 1299);
	free(back);
	free(f);
	/* len 0 key == no key */
	cr_assert_eq(state_file_encode(&none, p, 10, &f, &fl), 0);
	cr_assert_eq(fl, 26);
	free(f);
	free(p);
}

Test(state, file_encrypted_roundtrip_and_layout)
{
	for (size_t kl = 16; kl <= 32; kl += 16) {
		for (size_t len = 0; len < 80; len += 7) {
			struct vtpm_key k = mkkey(kl, 3);
			uint8_t *p = pattern(len, (uint8_t)len), *f, *back;
			size_t fl, bl, ctl = (len / kl + 1) * kl;

			cr_assert_eq(state_file_encode(&k, p, len, &f, &fl), 0);
			cr_assert_eq(fl, 10 + 6 + ctl + 6 + 32 + 6 + kl);
			cr_assert_eq(f[0], 2);
			cr_assert_eq(f[1], 1);
			cr_assert_eq(hdr_flags(f), kl == 32 ? 0x09 : 0x01);
			cr_assert_eq(f[10] << 8 | f[11], TLV_TAG_ENCRYPTED_DATA);
			cr_assert_eq(f[16 + ctl] << 8 | f[17 + ctl], TLV_TAG_HMAC);
			cr_assert_eq(f[54 + ctl] << 8 | f[55 + ctl], TLV_TAG_IVEC_ENCRYPTED_DATA);
			cr_assert_eq(state_file_decode(&k, f, fl, &back, &bl), 0);
			cr_assert_eq(bl, len);
			if (len)
				cr_assert_arr_eq(back, p, len);
			free(back);
			free(f);
			free(p);
		}
	}
}

Test(state, file_decode_decides_by_configuration)
{
	struct vtpm_key k16 = mkkey(16, 1), k32 = mkkey(32, 1), w16 = mkkey(16, 2);
	uint8_t *p = pattern(100, 9), *plain, *enc, *enc32, *o = NULL;
	size_t pl, el, el32, ol;
	int r;

	cr_assert_eq(state_file_encode(NULL, p, 100, &plain, &pl), 0);
	cr_assert_eq(state_file_encode(&k16, p, 100, &enc, &el), 0);
	cr_assert_eq(state_file_encode(&k32, p, 100, &enc32, &el32), 0);

	/* plain file with a key: TLV 2/3 required -> TPM_FAIL */
	cr_assert_eq(r = state_file_decode(&k16, plain, pl, &o, &ol), -ENOENT);
	cr_assert_eq(state_codec_err_to_tpm(r), TPM_FAIL);
	/* 256-bit key on a plain file: flags say 128 -> wrong key size */
	cr_assert_eq(r = state_file_decode(&k32, plain, pl, &o, &ol), -EKEYREJECTED);
	cr_assert_eq(state_codec_err_to_tpm(r), TPM_BAD_KEY_PROPERTY);
	/* encrypted file without a key: TLV 1 required */
	cr_assert_eq(r = state_file_decode(NULL, enc, el, &o, &ol), -ENOENT);
	cr_assert_eq(state_codec_err_to_tpm(r), TPM_FAIL);
	/* wrong key, key size mismatch both ways */
	cr_assert_eq(r = state_file_decode(&w16, enc, el, &o, &ol), -EBADE);
	cr_assert_eq(state_codec_err_to_tpm(r), TPM_DECRYPT_ERROR);
	cr_assert_eq(state_file_decode(&k32, enc, el, &o, &ol), -EKEYREJECTED);
	cr_assert_eq(state_file_decode(&k16, enc32, el32, &o, &ol), -EKEYREJECTED);
	/* a key of an impossible size */
	k16.len = 20;
	cr_assert_eq(state_file_decode(&k16, enc, el, &o, &ol), -EKEYREJECTED);
	cr_assert_eq(state_file_encode(&k16, p, 100, &o, &ol), -EKEYREJECTED);
	cr_assert_null(o);
	free(plain);
	free(enc);
	free(enc32);
	free(p);
}

Test(state, file_header_and_tlv_damage_with_key)
{
	struct vtpm_key k = mkkey(16, 4);
	uint8_t *p = pattern(64, 2), *o = NULL;
	struct buf b = { 0 };
	struct craft c = { .flags = 1 };
	size_t ol;

	/* unknown body version */
	craft_file(&k, p, 64, &c, &b);
	b.b[0] = 3;
	cr_assert_eq(state_file_decode(&k, b.b, b.len, &o, &ol), -EPROTO);
	/* flag 0x08 on a 128-bit file */
	c.flags = 0x09;
	craft_file(&k, p, 64, &c, &b);
	cr_assert_eq(state_file_decode(&k, b.b, b.len, &o, &ol), -EKEYREJECTED);
	c.flags = 1;
	/* the crafted standard file is fine, also with an unknown tag first */
	c.junk_first = true;
	craft_file(&k, p, 64, &c, &b);
	cr_assert_eq(state_file_decode(&k, b.b, b.len, &o, &ol), 0);
	cr_assert_eq(ol, 64);
	free(o);
	/* oversized data TLV length: nothing found */
	c.junk_first = false;
	craft_file(&k, p, 64, &c, &b);
	b.b[12] = b.b[13] = 0xff;
	cr_assert_eq(state_file_decode(&k, b.b, b.len, &o, &ol), -ENOENT);
	/* truncated: header check fails -> treated as a legacy headerless file */
	craft_file(&k, p, 64, &c, &b);
	cr_assert_lt(state_file_decode(&k, b.b, b.len - 1, &o, &ol), 0);
	/* version-1 header: the body is decrypted the legacy way */
	craft_file(&k, p, 64, &c, &b);
	b.b[0] = 1;
	cr_assert_eq(state_file_decode(&k, b.b, b.len, &o, &ol), -EIO);
	free(b.b);
	free(p);
}

Test(state, file_legacy_headerless)
{
	for (size_t kl = 16; kl <= 32; kl += 16) {
		struct vtpm_key k = mkkey(kl, 6);
		uint8_t *p = pattern(300, 1), *o;
		struct buf b = { 0 }, v1 = { 0 };
		size_t ol;

		craft_legacy(&k, p, 300, false, &b);
		cr_assert_eq(state_file_decode(&k, b.b, b.len, &o, &ol), 0);
		cr_assert_eq(ol, 300);
		cr_assert_arr_eq(o, p, 300);
		free(o);
		/* the same body behind a version-1 header */
		buf_hdr(&v1, 1, 1, 10, 0);
		buf_put(&v1, b.b, b.len);
		buf_fix_totlen(&v1);
		cr_assert_eq(state_file_decode(&k, v1.b, v1.len, &o, &ol), 0);
		cr_assert_eq(ol, 300);
		free(o);
		/* hash mismatch */
		craft_legacy(&k, p, 300, true, &b);
		cr_assert_eq(state_file_decode(&k, b.b, b.len, &o, &ol), -EUCLEAN);
		cr_assert_eq(state_codec_err_to_tpm(-EUCLEAN), TPM_FAIL);
		/* without a key the whole headerless file is the payload */
		cr_assert_eq(state_file_decode(NULL, b.b, b.len, &o, &ol), 0);
		cr_assert_eq(ol, b.len);
		free(o);
		/* too short for a hash: 1 block of plaintext */
		{
			uint8_t blk[32], ct[32], zero[16] = { 0 };

			memset(blk, (int)kl, kl);
			ref_cbc_enc(&k, zero, blk, kl, ct);
			cr_assert_eq(state_file_decode(&k, ct, kl, &o, &ol), -EUCLEAN);
		}
		free(b.b);
		free(v1.b);
		free(p);
	}
}

/* ---- unit tests: blobs ---------------------------------------------------------- */

struct row {
	int sk, mk; /* key lengths, 0 = none */
	bool decrypted;
	uint16_t flags;
	uint32_t state_flags;
};

Test(state, blob_encode_table)
{
	/* spec §6.1 table plus the general rule for the remaining combinations */
	static const struct row rows[] = {
		{ 0, 0, false, 0x0004, 0 }, { 0, 0, true, 0x0004, 0 },
		{ 16, 0, false, 0x0005, 2 }, { 32, 0, false, 0x000D, 2 },
		{ 16, 0, true, 0x0004, 0 },  { 32, 0, true, 0x0004, 0 },
		{ 0, 16, false, 0x0006, 0 }, { 0, 16, true, 0x0006, 0 },
		{ 0, 32, false, 0x0016, 0 }, { 32, 32, false, 0x001F, 2 },
		{ 32, 32, true, 0x0016, 0 }, { 16, 32, false, 0x0017, 2 },
		{ 32, 16, false, 0x000F, 2 }, { 16, 16, false, 0x0007, 2 },
	};
	uint8_t *p = pattern(1299, 5);

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct vtpm_key sk = mkkey((size_t)r->sk, 1), mk = mkkey((size_t)r->mk, 2);
		uint8_t *b, *o;
		size_t bl, ol;
		uint32_t sf = 99;
		struct container_view v;
		struct tlv t;

		cr_assert_eq(state_blob_encode(&sk, &mk, r->decrypted, p, 1299, &b, &bl, &sf), 0);
		cr_assert_eq(container_parse(b, bl, &v), 0, "row %zu", i);
		cr_assert_eq(v.hdr.version, 2);
		cr_assert_eq(v.hdr.min_version, 1);
		cr_assert_eq(v.hdr.flags, r->flags, "row %zu: %#x", i, v.hdr.flags);
		cr_assert_eq(sf, r->state_flags, "row %zu", i);
		if (r->mk) {
			/* TLV5, TLV3, TLV7(keylen) */
			cr_assert_eq(v.body[0] << 8 | v.body[1], TLV_TAG_ENCRYPTED_MIGRATION_DATA);
			cr_assert_eq(tlv_find(v.body, v.body_len,
					      TLV_TAG_IVEC_ENCRYPTED_MIGRATION_DATA, &t), 0);
			cr_assert_eq(t.len, (size_t)r->mk);
			cr_assert_eq(tlv_find(v.body, v.body_len, TLV_TAG_MIGRATION_DATA, &t),
				     -ENOENT);
		} else {
			cr_assert_eq(tlv_find(v.body, v.body_len, TLV_TAG_MIGRATION_DATA, &t), 0);
			cr_assert_eq(t.value, v.body + 6, "TLV4 is the only record");
			cr_assert_eq(t.len + 6, v.body_len);
			if (r->state_flags) {
				cr_assert_eq(t.value[0] << 8 | t.value[1], TLV_TAG_ENCRYPTED_DATA);
				cr_assert_eq(tlv_find(t.value, t.len, TLV_TAG_IVEC_ENCRYPTED_DATA, &t),
					     0);
				cr_assert_eq(t.len, (size_t)r->sk);
			} else {
				cr_assert_eq(t.value[0] << 8 | t.value[1], TLV_TAG_DATA);
			}
		}
		/* and back, with the same keys, no request flags */
		cr_assert_eq(state_blob_decode(&sk, &mk, 0, b, bl, &o, &ol), 0, "row %zu", i);
		cr_assert_eq(ol, 1299);
		cr_assert_arr_eq(o, p, 1299);
		free(o);
		free(b);
	}
	free(p);
}

Test(state, blob_plain_matches_container_wrap)
{
	uint8_t *p = pattern(77, 1), *a, *b;
	size_t al, bl;

	cr_assert_eq(state_blob_encode(NULL, NULL, false, p, 77, &a, &al, NULL), 0);
	cr_assert_eq(container_wrap_blob(p, 77, &b, &bl), 0);
	cr_assert_eq(al, bl);
	cr_assert_arr_eq(a, b, al);
	free(a);
	free(b);
	free(p);
}

Test(state, blob_decode_errors)
{
	struct vtpm_key sk = mkkey(32, 1), mk = mkkey(32, 2), mk16 = mkkey(16, 2),
			wsk = mkkey(32, 3), wmk = mkkey(32, 4);
	uint8_t *p = pattern(200, 3), *b, *o = NULL, hdr[10];
	size_t bl, ol;
	struct buf x = { 0 };
	int r;

	cr_assert_eq(state_blob_encode(&sk, &mk, false, p, 200, &b, &bl, NULL), 0);

	/* empty, header-only */
	cr_assert_eq(state_blob_decode(&sk, &mk, 0, b, 0, &o, &ol), CONTAINER_EMPTY);
	cr_assert_eq(state_blob_decode(NULL, NULL, 0, NULL, 0, &o, &ol), CONTAINER_EMPTY);
	memcpy(hdr, b, 10);
	hdr[9] = 10;
	hdr[8] = hdr[7] = hdr[6] = 0;
	cr_assert_eq(state_blob_decode(&sk, &mk, 0, hdr, 10, &o, &ol), CONTAINER_EMPTY);
	cr_assert_eq(state_codec_err_to_tpm(CONTAINER_EMPTY), 0);
	/* truncated header / totlen mismatch */
	for (size_t n = 1; n < 10; n++)
		cr_assert_eq(state_blob_decode(&sk, &mk, 0, b, n, &o, &ol), -EINVAL);
	cr_assert_eq(r = state_blob_decode(&sk, &mk, 0, b, bl - 1, &o, &ol), -EINVAL);
	cr_assert_eq(state_codec_err_to_tpm(r), TPM_BAD_PARAMETER);
	/* min_version 3, hdrsize 12 */
	b[1] = 3;
	cr_assert_eq(r = state_blob_decode(&sk, &mk, 0, b, bl, &o, &ol), -EPROTONOSUPPORT);
	cr_assert_eq(state_codec_err_to_tpm(r), TPM_BAD_VERSION);
	b[1] = 1;
	b[3] = 12;
	cr_assert_eq(r = state_blob_decode(&sk, &mk, 0, b, bl, &o, &ol), -EBADMSG);
	cr_assert_eq(state_codec_err_to_tpm(r), TPM_BAD_DATASIZE);
	b[3] = 10;
	/* keys missing */
	cr_assert_eq(r = state_blob_decode(&sk, NULL, 0, b, bl, &o, &ol), -ENOKEY);
	cr_assert_eq(state_codec_err_to_tpm(r), TPM_KEYNOTFOUND);
	cr_assert_eq(state_blob_decode(NULL, &mk, 0, b, bl, &o, &ol), -ENOKEY);
	/* wrong / wrongly sized keys */
	cr_assert_eq(state_blob_decode(&sk, &wmk, 0, b, bl, &o, &ol), -EBADE);
	cr_assert_eq(state_blob_decode(&sk, &mk16, 0, b, bl, &o, &ol), -EKEYREJECTED);
	cr_assert_eq(state_blob_decode(&wsk, &mk, 0, b, bl, &o, &ol), -EBADE);
	/* tampered outer ciphertext */
	b[20] ^= 1;
	cr_assert_eq(state_blob_decode(&sk, &mk, 0, b, bl, &o, &ol), -EBADE);
	free(b);

	/* plain blob: accepted with keys configured; requesting ENCRYPTED forces
	 * the state key path */
	cr_assert_eq(state_blob_encode(NULL, NULL, false, p, 200, &b, &bl, NULL), 0);
	cr_assert_eq(state_blob_decode(&sk, &mk, 0, b, bl, &o, &ol), 0);
	free(o);
	cr_assert_eq(state_blob_decode(NULL, NULL, PTM_STATE_FLAG_ENCRYPTED, b, bl, &o, &ol),
		     -ENOKEY);
	cr_assert_eq(state_blob_decode(&sk, NULL, PTM_STATE_FLAG_ENCRYPTED, b, bl, &o, &ol),
		     -EKEYREJECTED); /* flag 0x08 clear -> 128 expected */
	{
		struct vtpm_key s16 = mkkey(16, 1);

		cr_assert_eq(state_blob_decode(&s16, NULL, PTM_STATE_FLAG_ENCRYPTED, b, bl, &o,
					       &ol), -ENOENT);
	}
	/* DECRYPTED in the request is irrelevant for SET */
	cr_assert_eq(state_blob_decode(NULL, NULL, PTM_STATE_FLAG_DECRYPTED, b, bl, &o, &ol), 0);
	free(o);
	free(b);

	/* state-encrypted inner list without migration layer, no state key */
	cr_assert_eq(state_blob_encode(&sk, NULL, false, p, 200, &b, &bl, NULL), 0);
	cr_assert_eq(state_blob_decode(NULL, &mk, 0, b, bl, &o, &ol), -ENOKEY);
	free(b);

	/* TLV 4 missing; TLV 1 missing inside TLV 4; unknown tags around */
	buf_hdr(&x, 2, 1, 10, 0x04);
	buf_tlv(&x, 9, "zz", 2);
	buf_fix_totlen(&x);
	cr_assert_eq(r = state_blob_decode(NULL, NULL, 0, x.b, x.len, &o, &ol), -ENOENT);
	cr_assert_eq(state_codec_err_to_tpm(r), TPM_FAIL);
	x.len = 0;
	buf_hdr(&x, 2, 1, 10, 0x04);
	buf_tlv(&x, 9, "zz", 2);
	buf_tlv(&x, TLV_TAG_MIGRATION_DATA, "\x00\x08\x00\x00\x00\x01q", 7);
	buf_fix_totlen(&x);
	cr_assert_eq(state_blob_decode(NULL, NULL, 0, x.b, x.len, &o, &ol), -ENOENT);
	x.b[x.len - 7 + 1] = 1; /* inner tag 8 -> 1 */
	cr_assert_eq(state_blob_decode(NULL, NULL, 0, x.b, x.len, &o, &ol), 0);
	cr_assert_eq(ol, 1);
	cr_assert_eq(o[0], 'q');
	free(o);
	/* unknown body version */
	x.b[0] = 3;
	cr_assert_eq(r = state_blob_decode(NULL, NULL, 0, x.b, x.len, &o, &ol), -EPROTO);
	cr_assert_eq(state_codec_err_to_tpm(r), TPM_FAIL);
	/* version 1: the body is the payload */
	x.b[0] = 1;
	cr_assert_eq(state_blob_decode(NULL, NULL, 0, x.b, x.len, &o, &ol), 0);
	cr_assert_eq(ol, x.len - 10);
	free(o);
	free(x.b);
	free(p);
}

Test(state, err_to_tpm_all_codes)
{
	static const struct {
		int err;
		uint32_t tpm;
	} m[] = {
		{ 0, 0 },
		{ CONTAINER_EMPTY, 0 },
		{ -EINVAL, 0x03 },
		{ -EPROTONOSUPPORT, 0x2e },
		{ -EBADMSG, 0x2b },
		{ -ENOKEY, 0x0d },
		{ -EKEYREJECTED, 0x28 },
		{ -EBADE, 0x21 },
		{ -ERANGE, 0x21 },
		{ -ENODATA, 0x21 },
		{ -EILSEQ, 0x21 },
		{ -ENOENT, 0x09 },
		{ -EMSGSIZE, 0x09 },
		{ -EUCLEAN, 0x09 },
		{ -EPROTO, 0x09 },
		{ -EIO, 0x09 },
		{ -EOVERFLOW, 0x09 },
		{ -ENOMEM, 0x09 },
		{ -EFAULT, 0x09 },
		{ -EPERM, 0x09 },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		cr_assert_eq(state_codec_err_to_tpm(m[i].err), m[i].tpm, "err %d", m[i].err);
}

/* ---- peer: files ------------------------------------------------------------- */

/* Key configurations fed to both the reference and keys_load. */
struct kcfg {
	const char *name;
	const char *opt; /* %s = key file path */
	const char *content;
	size_t clen;
	size_t keylen;
};

#define H16 "000102030405060708090a0b0c0d0e0f"
#define H16B "f0e1d2c3b4a5968778695a4b3c2d1e0f"
/* differs from every key in kcfgs */
#define HWRONG "deadbeefdeadbeefdeadbeefdeadbeef0123456789abcdef0123456789abcdef"
static const struct kcfg kcfgs[] = {
	{ "hex128", "file=%s", H16, 32, 16 },
	{ "hex128-0x-nl", "file=%s,mode=aes-cbc", "0x" H16B "\ngarbage", 41, 16 },
	{ "hex256", "file=%s,mode=aes-256-cbc", H16 H16B, 64, 32 },
	{ "bin256", "file=%s,format=binary,mode=aes-256-cbc",
	  "0123456789abcdef\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\n\x0b\x0c\x0d\x0e\x0f", 32,
	  32 },
	{ "bin16-as-256", "file=%s,format=binary,mode=aes-256-cbc", "fedcba9876543210", 16, 16 },
	{ "pbkdf2-128", "pwdfile=%s", "my passphrase\n", 14, 16 },
	{ "pbkdf2-256", "pwdfile=%s,mode=aes-256-cbc,kdf=pbkdf2", "other pass", 10, 32 },
	{ "sha512-128", "pwdfile=%s,kdf=sha512", "sha pass\n", 9, 16 },
	{ "sha512-256", "pwdfile=%s,kdf=sha512,mode=aes-256-cbc", "sha pass 2", 10, 32 },
};
#define NKCFG (sizeof(kcfgs) / sizeof(kcfgs[0]))

/* Write the key file for a configuration; returns the option string. */
static const char *kcfg_opt(const struct kcfg *c, char *opt, size_t optlen)
{
	char name[64];
	char *path;

	snprintf(name, sizeof(name), "key-%s", c->name);
	path = path_in(name);
	write_all(path, c->content, c->clen);
	snprintf(opt, optlen, c->opt, path);
	return opt;
}

static void kcfg_key(const struct kcfg *c, struct vtpm_key *k)
{
	char opt[700], err[256];

	kcfg_opt(c, opt, sizeof(opt));
	cr_assert_eq(keys_load(opt, k, err, sizeof(err)), 0, "%s: %s", c->name, err);
	cr_assert_eq(k->len, c->keylen, "%s", c->name);
}

Test(peer, reference_files_decode)
{
	NEED_PEER();
	for (size_t i = 0; i < NKCFG; i++) {
		const struct kcfg *c = &kcfgs[i];
		char opt[700], sub[64];
		const char *dir;
		struct peer p;
		struct vtpm_key k, wrong, other;
		uint8_t *f, *o = NULL;
		size_t fl, ol, ctl;
		struct tlv t;
		int r;

		snprintf(sub, sizeof(sub), "ref-%s", c->name);
		dir = mksub(sub);
		cr_assert_eq(peer_start(&p, dir, kcfg_opt(c, opt, sizeof(opt)), NULL, true), 0,
			     "%s", c->name);
		cr_assert_eq(peer_stop(&p), 0, "%s", c->name);
		peer_permall(dir, &f, &fl);

		/* layout as in spec §3.3: flags by the key actually used */
		cr_assert_eq(hdr_flags(f), c->keylen == 32 ? 0x09 : 0x01, "%s", c->name);
		cr_assert_eq(f[10] << 8 | f[11], TLV_TAG_ENCRYPTED_DATA);
		cr_assert_eq(tlv_find(f + 10, fl - 10, TLV_TAG_ENCRYPTED_DATA, &t), 0);
		ctl = t.len;
		cr_assert_eq(ctl % c->keylen, 0, "padded to the key length");
		cr_assert_eq(tlv_find(f + 10, fl - 10, TLV_TAG_IVEC_ENCRYPTED_DATA, &t), 0);
		cr_assert_eq(t.len, c->keylen, "%s: IV as long as the key", c->name);
		cr_assert_eq(fl, 10 + 6 + ctl + 6 + 32 + 6 + c->keylen);

		kcfg_key(c, &k);
		cr_assert_eq(state_file_decode(&k, f, fl, &o, &ol), 0, "%s", c->name);
		expect_tpm2_payload(o, ol);
		cr_assert_eq(ctl - ol, c->keylen - ol % c->keylen);
		free(o);

		wrong = k;
		wrong.bytes[0] ^= 0x80;
		cr_assert_eq(r = state_file_decode(&wrong, f, fl, &o, &ol), -EBADE);
		cr_assert_eq(state_codec_err_to_tpm(r), TPM_DECRYPT_ERROR);
		other = mkkey(c->keylen == 32 ? 16 : 32, 1);
		cr_assert_eq(r = state_file_decode(&other, f, fl, &o, &ol), -EKEYREJECTED);
		cr_assert_eq(state_codec_err_to_tpm(r), TPM_BAD_KEY_PROPERTY);
		cr_assert_eq(r = state_file_decode(NULL, f, fl, &o, &ol), -ENOENT);
		cr_assert_eq(state_codec_err_to_tpm(r), TPM_FAIL);
		free(f);
	}
}

Test(peer, reference_accepts_our_files)
{
	uint8_t *payload;
	size_t plen;

	NEED_PEER();
	peer_plain_payload(&payload, &plen);

	/* plain, written by us */
	{
		const char *dir = mksub("ours-plain");
		char path[600];
		struct peer p;
		uint8_t *f;
		size_t fl;

		cr_assert_eq(state_file_encode(NULL, payload, plen, &f, &fl), 0);
		snprintf(path, sizeof(path), "%s/tpm2-00.permall", dir);
		write_all(path, f, fl);
		free(f);
		cr_assert_eq(peer_start(&p, dir, NULL, NULL, true), 0);
		cr_assert_eq(peer_stop(&p), 0);
	}

	for (size_t i = 0; i < NKCFG; i++) {
		const struct kcfg *c = &kcfgs[i];
		char opt[700], sub[64], path[600], log[600], wopt[700];
		const char *dir;
		struct vtpm_key k;
		struct peer p;
		uint8_t *f;
		size_t fl;

		kcfg_key(c, &k);
		cr_assert_eq(state_file_encode(&k, payload, plen, &f, &fl), 0);
		snprintf(sub, sizeof(sub), "ours-%s", c->name);
		dir = mksub(sub);
		snprintf(path, sizeof(path), "%s/tpm2-00.permall", dir);
		write_all(path, f, fl);
		free(f);

		/* wrong key of the same size: start fails, HMAC -> TPM_DECRYPT_ERROR */
		snprintf(wopt, sizeof(wopt), "file=%s%s", path_in("wrongkey"),
			 c->keylen == 32 ? ",mode=aes-256-cbc" : "");
		write_all(path_in("wrongkey"), HWRONG, c->keylen * 2);
		cr_assert_eq(peer_start_fails(dir, wopt, log), 1, "%s: wrong key", c->name);
		cr_assert_eq(peer_load_rc(log), TPM_DECRYPT_ERROR, "%s", c->name);
		/* key of the other size: TPM_BAD_KEY_PROPERTY */
		snprintf(wopt, sizeof(wopt), "file=%s%s", path_in("wrongkey"),
			 c->keylen == 32 ? "" : ",mode=aes-256-cbc");
		write_all(path_in("wrongkey"), HWRONG, c->keylen == 32 ? 32 : 64);
		cr_assert_eq(peer_start_fails(dir, wopt, log), 1, "%s: other size", c->name);
		cr_assert_eq(peer_load_rc(log), TPM_BAD_KEY_PROPERTY, "%s", c->name);
		/* no key: TLV 1 missing -> TPM_FAIL */
		cr_assert_eq(peer_start_fails(dir, NULL, log), 1, "%s: no key", c->name);
		cr_assert_eq(peer_load_rc(log), TPM_FAIL, "%s", c->name);

		/* the right key: starts, answers, shuts down cleanly */
		cr_assert_eq(peer_start(&p, dir, kcfg_opt(c, opt, sizeof(opt)), NULL, true), 0,
			     "%s", c->name);
		cr_assert_eq(peer_stop(&p), 0, "%s: reference rejected our file", c->name);
	}
	free(payload);
}

/* A file the reference must accept (rc 0) or reject with our code. */
struct fcase {
	const char *name;
	size_t keylen;  /* key configured on both sides (0 = none) */
	int want;       /* our state_file_decode result */
	struct craft c; /* used unless raw != 0 */
	int raw;        /* 1 legacy ok, 2 legacy bad hash, 3 v1 header + legacy,
			   4 truncated by one byte, 5 plain file, 6 our file + wrong key,
			   7 keyless: no TLV 1, 8 keyless: headerless legacy payload */
};

Test(peer, malformed_files_same_verdict_as_reference)
{
	static const struct fcase cases[] = {
		{ "standard", 16, 0, { .flags = 1 }, 0 },
		{ "standard-256", 32, 0, { .flags = 9 }, 0 },
		{ "no-iv", 16, 0, { .flags = 1, .no_iv = true }, 0 },
		{ "no-iv-256", 32, 0, { .flags = 9, .no_iv = true }, 0 },
		{ "hmac-40", 16, 0, { .flags = 1, .hmac_len = 40 }, 0 },
		{ "unknown-tag-first", 16, 0, { .flags = 1, .junk_first = true }, 0 },
		{ "flags-0", 16, 0, { .flags = 0 }, 0 },
		{ "tampered-ct", 16, -EBADE, { .flags = 1, .flip_ct = true }, 0 },
		{ "pad-0", 16, -EILSEQ, { .flags = 1, .pad_override = 0x100 }, 0 },
		{ "pad-17", 16, -EILSEQ, { .flags = 1, .pad_override = 17 }, 0 },
		{ "pad-33-256", 32, -EILSEQ, { .flags = 9, .pad_override = 33 }, 0 },
		{ "pad-inconsistent", 16, -EILSEQ, { .flags = 1, .pad_inconsistent = true }, 0 },
		{ "iv-32-for-128", 16, -ERANGE, { .flags = 1, .iv_len = 32 }, 0 },
		{ "iv-16-for-256", 32, -ERANGE, { .flags = 9, .iv_len = 16 }, 0 },
		{ "iv-17-for-128", 16, -ERANGE, { .flags = 1, .iv_len = 17 }, 0 },
		{ "ct-not-x16", 16, -EIO, { .flags = 1, .ct_extra = 5 }, 0 },
		{ "ct-short-256", 32, -ENODATA, { .flags = 9, .ct_truncate = 16 }, 0 },
		{ "hmac-31", 16, -EMSGSIZE, { .flags = 1, .hmac_len = 31 }, 0 },
		{ "no-hmac", 16, -ENOENT, { .flags = 1, .no_hmac = true }, 0 },
		{ "flag256-on-128", 16, -EKEYREJECTED, { .flags = 9 }, 0 },
		{ "key256-on-128", 32, -EKEYREJECTED, { .flags = 1 }, 0 },
		{ "legacy", 16, 0, { 0 }, 1 },
		{ "legacy-256", 32, 0, { 0 }, 1 },
		{ "legacy-bad-hash", 16, -EUCLEAN, { 0 }, 2 },
		{ "v1-header-legacy", 16, 0, { 0 }, 3 },
		{ "truncated", 16, -EIO, { .flags = 1 }, 4 },
		{ "plain-with-key", 16, -ENOENT, { 0 }, 5 },
		{ "wrong-key", 16, -EBADE, { 0 }, 6 },
		{ "keyless-no-tlv1", 0, -ENOENT, { 0 }, 7 },
		{ "keyless-headerless", 0, 0, { 0 }, 8 },
	};
	uint8_t *payload;
	size_t plen;

	NEED_PEER();
	peer_plain_payload(&payload, &plen);
	write_all(path_in("k16"), H16, 32);
	write_all(path_in("k32"), H16 H16B, 64);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct fcase *fc = &cases[i];
		struct vtpm_key k = { .len = 0 };
		char opt[700], sub[80], path[600], log[600];
		const char *dir, *keyopt = NULL;
		struct buf b = { 0 };
		uint8_t *o = NULL;
		size_t ol;
		int r, ref;

		if (fc->keylen == 16) {
			snprintf(opt, sizeof(opt), "file=%s", path_in("k16"));
			keyopt = opt;
			kcfg_key(&(struct kcfg){ "k16", "file=%s", H16, 32, 16 }, &k);
		} else if (fc->keylen == 32) {
			snprintf(opt, sizeof(opt), "file=%s,mode=aes-256-cbc", path_in("k32"));
			keyopt = opt;
			kcfg_key(&(struct kcfg){ "k32", "file=%s,mode=aes-256-cbc", H16 H16B, 64,
						 32 }, &k);
		}

		switch (fc->raw) {
		case 0:
			if (!strcmp(fc->name, "key256-on-128")) {
				/* a 128-bit file, read with the configured 256-bit key */
				struct vtpm_key k16 = k;

				k16.len = 16;
				craft_file(&k16, payload, plen, &fc->c, &b);
			} else {
				craft_file(&k, payload, plen, &fc->c, &b);
			}
			break;
		case 1:
		case 2:
			craft_legacy(&k, payload, plen, fc->raw == 2, &b);
			break;
		case 3: {
			struct buf l = { 0 };

			craft_legacy(&k, payload, plen, false, &l);
			buf_hdr(&b, 1, 1, 10, 0);
			buf_put(&b, l.b, l.len);
			buf_fix_totlen(&b);
			free(l.b);
			break;
		}
		case 4:
			craft_file(&k, payload, plen, &fc->c, &b);
			b.len--;
			break;
		case 5:
		case 7: {
			uint8_t *f;
			size_t fl;

			if (fc->raw == 5) {
				cr_assert_eq(state_file_encode(NULL, payload, plen, &f, &fl), 0);
			} else {
				struct vtpm_key t16 = mkkey(16, 9);

				cr_assert_eq(state_file_encode(&t16, payload, plen, &f, &fl), 0);
			}
			buf_put(&b, f, fl);
			free(f);
			break;
		}
		case 6: {
			struct vtpm_key w = mkkey(16, 99);
			uint8_t *f;
			size_t fl;

			cr_assert_eq(state_file_encode(&w, payload, plen, &f, &fl), 0);
			buf_put(&b, f, fl);
			free(f);
			break;
		}
		case 8:
			buf_put(&b, payload, plen);
			break;
		}

		/* our verdict */
		r = state_file_decode(&k, b.b, b.len, &o, &ol);
		cr_assert_eq(r, fc->want, "%s: ours %d want %d", fc->name, r, fc->want);
		if (r == 0) {
			cr_assert_eq(ol, plen, "%s", fc->name);
			cr_assert_arr_eq(o, payload, plen, "%s", fc->name);
			free(o);
		}

		/* the reference's verdict on the very same bytes */
		snprintf(sub, sizeof(sub), "mal-%s", fc->name);
		dir = mksub(sub);
		snprintf(path, sizeof(path), "%s/tpm2-00.permall", dir);
		write_all(path, b.b, b.len);
		if (r == 0) {
			struct peer p;

			cr_assert_eq(peer_start(&p, dir, keyopt, NULL, true), 0, "%s", fc->name);
			cr_assert_eq(peer_stop(&p), 0, "%s: reference rejected it", fc->name);
		} else {
			ref = peer_start_fails(dir, keyopt, log);
			cr_assert_eq(ref, 1, "%s: reference started (%d)", fc->name, ref);
			cr_assert_eq(peer_load_rc(log), (long)state_codec_err_to_tpm(r),
				     "%s: reference rc %ld, ours %u", fc->name, peer_load_rc(log),
				     state_codec_err_to_tpm(r));
		}
		free(b.b);
	}
	free(payload);
}

/* ---- peer: migration blobs --------------------------------------------------------- */

static long peer_set_rc(const struct peer *p)
{
	return log_number(p->out, "TPM result from PTM_SET_STATEBLOB: ");
}

Test(peer, reference_blobs_decode)
{
	static const struct {
		const char *name;
		int sk;          /* index into kcfgs or -1 */
		int mk;
		uint16_t flags;  /* --save always asks for DECRYPTED */
	} cfg[] = {
		{ "nokeys", -1, -1, 0x0004 },
		{ "state-only", 2, -1, 0x0004 },
		{ "mig128-hex", -1, 0, 0x0006 },
		{ "both-256-pbkdf2", 2, 6, 0x0016 },
		{ "state128-mig256-sha512", 5, 8, 0x0016 },
	};

	NEED_PEER();
	for (size_t i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++) {
		char sopt[700], mopt[700], sub[64], blobpath[600];
		struct vtpm_key sk = { .len = 0 }, mk = { .len = 0 }, wrong;
		const char *dir;
		struct peer p;
		uint8_t *blob, *f, *o, *fo;
		size_t bl, fl, ol, fol;
		int r;

		if (cfg[i].sk >= 0) {
			kcfg_opt(&kcfgs[cfg[i].sk], sopt, sizeof(sopt));
			kcfg_key(&kcfgs[cfg[i].sk], &sk);
		}
		if (cfg[i].mk >= 0) {
			kcfg_opt(&kcfgs[cfg[i].mk], mopt, sizeof(mopt));
			kcfg_key(&kcfgs[cfg[i].mk], &mk);
		}
		snprintf(sub, sizeof(sub), "blob-%s", cfg[i].name);
		dir = mksub(sub);
		snprintf(blobpath, sizeof(blobpath), "%s.blob", dir);
		cr_assert_eq(peer_start(&p, dir, cfg[i].sk >= 0 ? sopt : NULL,
					cfg[i].mk >= 0 ? mopt : NULL, true), 0, "%s", cfg[i].name);
		cr_assert_eq(peer_ioctl(&p, "--save", "permanent", blobpath), 0, "%s",
			     cfg[i].name);
		cr_assert_eq(peer_stop(&p), 0);

		cr_assert(read_all(blobpath, &blob, &bl));
		cr_assert_geq(bl, 10);
		cr_assert_eq(hdr_flags(blob), cfg[i].flags, "%s: flags %#x", cfg[i].name,
			     hdr_flags(blob));
		/* decoded with the migration key alone (state key irrelevant: DECRYPTED) */
		cr_assert_eq(state_blob_decode(NULL, cfg[i].mk >= 0 ? &mk : NULL, 0, blob, bl, &o,
					       &ol), 0, "%s", cfg[i].name);
		expect_tpm2_payload(o, ol);
		peer_permall(dir, &f, &fl);
		cr_assert_eq(state_file_decode(cfg[i].sk >= 0 ? &sk : NULL, f, fl, &fo, &fol), 0);
		cr_assert_eq(ol, fol);
		cr_assert_arr_eq(o, fo, ol, "%s: blob payload == permall payload", cfg[i].name);
		free(o);
		free(fo);
		free(f);

		if (cfg[i].mk >= 0) {
			cr_assert_eq(r = state_blob_decode(&sk, NULL, 0, blob, bl, &o, &ol), -ENOKEY);
			cr_assert_eq(state_codec_err_to_tpm(r), TPM_KEYNOTFOUND);
			wrong = mk;
			wrong.bytes[5] ^= 1;
			cr_assert_eq(state_blob_decode(NULL, &wrong, 0, blob, bl, &o, &ol), -EBADE);
			wrong = mkkey(mk.len == 32 ? 16 : 32, 3);
			cr_assert_eq(state_blob_decode(NULL, &wrong, 0, blob, bl, &o, &ol),
				     -EKEYREJECTED);
		}
		free(blob);
	}
}

/* One running reference per key set; many SET_STATEBLOBs against it. */
struct bcase {
	const char *name;
	int sk, mk;    /* keys used to build the blob: kcfgs index, -1 none, -2 wrong key */
	bool decrypted;
	int damage;    /* 0 none, 1 drop TLV 4, 2 totlen, 3 min_version, 4 hdrsize,
			  5 empty, 6 header only, 7 flip outer ciphertext */
};

static void blob_build(const struct bcase *bc, const uint8_t *payload, size_t plen,
		       uint8_t **b, size_t *bl)
{
	struct vtpm_key sk = { .len = 0 }, mk = { .len = 0 };

	if (bc->sk >= 0)
		kcfg_key(&kcfgs[bc->sk], &sk);
	else if (bc->sk <= -2)
		sk = mkkey(bc->sk == -2 ? 32 : 16, 77);
	if (bc->mk >= 0)
		kcfg_key(&kcfgs[bc->mk], &mk);
	else if (bc->mk <= -2)
		mk = mkkey(bc->mk == -2 ? 32 : 16, 78);
	cr_assert_eq(state_blob_encode(&sk, &mk, bc->decrypted, payload, plen, b, bl, NULL), 0);
	switch (bc->damage) {
	case 1: {
		struct buf x = { 0 };

		buf_hdr(&x, 2, 1, 10, 0x04);
		buf_tlv(&x, 0x33, "nope", 4);
		buf_fix_totlen(&x);
		free(*b);
		*b = x.b;
		*bl = x.len;
		break;
	}
	case 2:
		(*b)[9] ^= 1;
		break;
	case 3:
		(*b)[1] = 3;
		break;
	case 4:
		(*b)[3] = 12;
		break;
	case 5:
		*bl = 0;
		break;
	case 6:
		*bl = 10;
		(*b)[6] = (*b)[7] = (*b)[8] = 0;
		(*b)[9] = 10;
		break;
	case 7:
		(*b)[40] ^= 1;
		break;
	}
}

static void run_blob_cases(const char *tag, int ref_sk, int ref_mk, const struct bcase *cases,
			   size_t n, const uint8_t *payload, size_t plen)
{
	char sopt[700], mopt[700], sub[64];
	struct vtpm_key sk = { .len = 0 }, mk = { .len = 0 };
	const char *dir;
	struct peer p;

	if (ref_sk >= 0) {
		kcfg_opt(&kcfgs[ref_sk], sopt, sizeof(sopt));
		kcfg_key(&kcfgs[ref_sk], &sk);
	}
	if (ref_mk >= 0) {
		kcfg_opt(&kcfgs[ref_mk], mopt, sizeof(mopt));
		kcfg_key(&kcfgs[ref_mk], &mk);
	}
	snprintf(sub, sizeof(sub), "set-%s", tag);
	dir = mksub(sub);
	cr_assert_eq(peer_start(&p, dir, ref_sk >= 0 ? sopt : NULL, ref_mk >= 0 ? mopt : NULL,
				false), 0);

	for (size_t i = 0; i < n; i++) {
		const struct bcase *bc = &cases[i];
		char bpath[600];
		uint8_t *b, *o = NULL;
		size_t bl, ol;
		int r, ioc;
		long ref;

		blob_build(bc, payload, plen, &b, &bl);
		r = state_blob_decode(&sk, &mk, 0, b, bl, &o, &ol);
		if (r == 0) {
			cr_assert_eq(ol, plen, "%s", bc->name);
			cr_assert_arr_eq(o, payload, plen, "%s", bc->name);
			free(o);
		}
		snprintf(bpath, sizeof(bpath), "%s/%s.blob", tmpdir, bc->name);
		write_all(bpath, b, bl);
		free(b);
		unlink(p.out);
		ioc = peer_ioctl(&p, "--load", "permanent", bpath);
		ref = peer_set_rc(&p);
		if (ioc == 0)
			ref = 0;
		cr_assert_eq(ref, (long)state_codec_err_to_tpm(r),
			     "%s/%s: reference %#lx (ioctl exit %d), ours %d -> %#x", tag, bc->name,
			     ref, ioc, r, state_codec_err_to_tpm(r));
	}
	cr_assert_eq(peer_stop(&p), 0);
}

Test(peer, set_stateblob_same_verdict_as_reference)
{
	/* kcfgs: 2 = hex256, 6 = pbkdf2-256, 0 = hex128, 5 = pbkdf2-128 */
	static const struct bcase both[] = {
		{ "enc-both", 2, 6, false, 0 },
		{ "decrypted-mig", 2, 6, true, 0 },
		{ "state-only", 2, -1, false, 0 },
		{ "plain", -1, -1, false, 0 },
		{ "mig-only", -1, 6, false, 0 },
		{ "wrong-mig", 2, -2, false, 0 },
		{ "mig128-for-256", 2, -3, false, 0 },
		{ "wrong-state", -2, 6, false, 0 },
		{ "state128-for-256", -3, 6, false, 0 },
		{ "no-tlv4", -1, -1, false, 1 },
		{ "totlen", 2, 6, false, 2 },
		{ "min-version", 2, 6, false, 3 },
		{ "hdrsize", 2, 6, false, 4 },
		{ "flip-outer", 2, 6, false, 7 },
		{ "header-only", 2, 6, false, 6 },
		{ "empty", 2, 6, false, 5 },
	};
	static const struct bcase none[] = {
		{ "n-plain", -1, -1, false, 0 },
		{ "n-state-enc", 2, -1, false, 0 },
		{ "n-mig-enc", -1, 6, false, 0 },
		{ "n-both", 0, 5, false, 0 },
		{ "n-decrypted", 0, -1, true, 0 },
	};
	uint8_t *payload;
	size_t plen;

	NEED_PEER();
	peer_plain_payload(&payload, &plen);
	run_blob_cases("both", 2, 6, both, sizeof(both) / sizeof(both[0]), payload, plen);
	run_blob_cases("none", -1, -1, none, sizeof(none) / sizeof(none[0]), payload, plen);
	free(payload);
}

Test(peer, reference_loads_our_blob_and_writes_the_payload)
{
	/* GET_STATEBLOB form 0x1F (state key not decrypted + migration key), loaded
	 * into a fresh reference, CMD_INIT, and the permall it then writes (with its
	 * state key) holds exactly our payload. */
	uint8_t *payload, *b, *f, *o;
	size_t plen, bl, fl, ol;
	struct vtpm_key sk, mk;
	char sopt[700], mopt[700], bpath[600];
	uint32_t sf = 0;
	const char *dir;
	struct peer p;

	NEED_PEER();
	peer_plain_payload(&payload, &plen);
	kcfg_key(&kcfgs[2], &sk);
	kcfg_key(&kcfgs[6], &mk);
	kcfg_opt(&kcfgs[2], sopt, sizeof(sopt));
	kcfg_opt(&kcfgs[6], mopt, sizeof(mopt));
	cr_assert_eq(state_blob_encode(&sk, &mk, false, payload, plen, &b, &bl, &sf), 0);
	cr_assert_eq(hdr_flags(b), 0x1f);
	cr_assert_eq(sf, PTM_STATE_FLAG_ENCRYPTED);
	snprintf(bpath, sizeof(bpath), "%s/our.blob", tmpdir);
	write_all(bpath, b, bl);
	free(b);

	dir = mksub("load-target");
	cr_assert_eq(peer_start(&p, dir, sopt, mopt, false), 0);
	cr_assert_eq(peer_ioctl(&p, "--load", "permanent", bpath), 0);
	cr_assert_eq(peer_ioctl(&p, "-i", NULL, NULL), 0);
	cr_assert_eq(peer_stop(&p), 0);
	peer_permall(dir, &f, &fl);
	cr_assert_eq(hdr_flags(f), 0x09);
	cr_assert_eq(state_file_decode(&sk, f, fl, &o, &ol), 0);
	cr_assert_eq(ol, plen);
	cr_assert_arr_eq(o, payload, plen);
	free(o);
	free(f);
	free(payload);
}
