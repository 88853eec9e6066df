/* Writes the seed corpora of tests/fuzz/corpus/<target>/: real, valid inputs
 * made with the project's own encoders (state containers, encrypted files and
 * blobs with the fuzz targets' fixed test keys, state files, linear headers,
 * journals) plus hand-written control/data-channel messages, option strings
 * and management requests. Regenerate with tests/fuzz/gen_corpus.sh; the
 * encrypted seeds differ each time (fresh IVs). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/container.h"
#include "crypto/state_codec.h"
#include "instance/journal.h"
#include "instance/store_linear.h"
#include "io/tpm_frame.h"
#include "manager/registry.h"
#include "manager/statefile.h"
#include "vtpm/ctrl_ioctl.h"
#include "vtpm/ctrl_proto.h"

static const char *root;
static char cur[512];
static int seq;

static void target(const char *name)
{
	snprintf(cur, sizeof(cur), "%s/%s", root, name);
	mkdir(cur, 0755);
	seq = 0;
}

static void put(const char *label, const void *p, size_t n)
{
	char path[700];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%02d-%s", cur, seq++, label);
	f = fopen(path, "wb");
	if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* cfg bytes + body */
static void put2(const char *label, const uint8_t *pre, size_t npre, const void *p, size_t n)
{
	uint8_t *b = malloc(npre + n + 1);

	memcpy(b, pre, npre);
	if (n)
		memcpy(b + npre, p, n);
	put(label, b, npre + n);
	free(b);
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The fuzz targets' keys (fuzz_state_codec.c make_key). */
static void make_key(struct vtpm_key *k, unsigned sel, uint8_t salt)
{
	memset(k, 0, sizeof(*k));
	for (unsigned i = 0; i < VTPM_KEY_MAX; i++)
		k->bytes[i] = (uint8_t)(i * 13 + salt);
	k->len = sel == 1 ? 16 : sel == 2 ? 32 : 0;
}

static const uint8_t payload[] = "libtpms state: permanent-all, not really, but bytes";

/* ---- control channel ---- */

static size_t msg(uint8_t *out, uint32_t code, const uint8_t *body, size_t n)
{
	be32(out, code);
	if (n)
		memcpy(out + 4, body, n);
	return 4 + n;
}

static void gen_ctrl_codec(void)
{
	uint8_t s[512], b[64];
	size_t n;
	/* byte 0: no fd; byte 1: bytes of reply-encoder input at the end */
	uint8_t pre[2] = { 0, 0 };

	target("ctrl_codec");
	n = msg(s + 2, CMD_GET_CAPABILITY, NULL, 0);
	memcpy(s, pre, 2);
	put("get_capability", s, n + 2);

	be32(b, PTM_INIT_FLAG_DELETE_VOLATILE);
	n = msg(s + 2, CMD_INIT, b, 4);
	put("init", s, n + 2);

	b[0] = 3;
	n = msg(s + 2, CMD_SET_LOCALITY, b, 1);
	put("set_locality", s, n + 2);

	/* HASH_START, HASH_DATA "abc", HASH_END in one stream */
	n = msg(s + 2, CMD_HASH_START, NULL, 0);
	be32(b, 3);
	memcpy(b + 4, "abc", 3);
	n += msg(s + 2 + n, CMD_HASH_DATA, b, 7);
	n += msg(s + 2 + n, CMD_HASH_END, NULL, 0);
	put("hash_sequence", s, n + 2);

	be32(b, PTM_STATE_FLAG_DECRYPTED);
	be32(b + 4, PTM_BLOB_TYPE_PERMANENT);
	be32(b + 8, 0);
	n = msg(s + 2, CMD_GET_STATEBLOB, b, 12);
	put("get_stateblob", s, n + 2);

	{
		uint8_t *blob = NULL;
		size_t blen = 0;

		container_wrap_blob(payload, sizeof(payload), &blob, &blen);
		be32(b, 0);
		be32(b + 4, PTM_BLOB_TYPE_VOLATILE);
		be32(b + 8, (uint32_t)blen);
		n = msg(s + 2, CMD_SET_STATEBLOB, b, 12);
		memcpy(s + 2 + n, blob, blen);
		put("set_stateblob", s, n + 2 + blen);
		free(blob);
	}

	be32(b, 4096);
	n = msg(s + 2, CMD_SET_BUFFERSIZE, b, 4);
	put("set_buffersize", s, n + 2);

	be32(b, 0);
	be32(b + 4, SWTPM_INFO_TPMSPECIFICATION | SWTPM_INFO_TPMATTRIBUTES);
	be32(b + 8, 0);
	n = msg(s + 2, CMD_GET_INFO, b, 12);
	put("get_info", s, n + 2);

	be32(b, 100);
	n = msg(s + 2, CMD_LOCK_STORAGE, b, 4);
	put("lock_storage", s, n + 2);

	/* a QEMU-like start: caps, init, config, establishment bit, stop, shutdown */
	n = msg(s + 2, CMD_GET_CAPABILITY, NULL, 0);
	be32(b, 0);
	n += msg(s + 2 + n, CMD_INIT, b, 4);
	n += msg(s + 2 + n, CMD_GET_CONFIG, NULL, 0);
	n += msg(s + 2 + n, CMD_GET_TPMESTABLISHED, NULL, 0);
	b[0] = 0;
	n += msg(s + 2 + n, CMD_RESET_TPMESTABLISHED, b, 1);
	n += msg(s + 2 + n, CMD_STOP, NULL, 0);
	n += msg(s + 2 + n, CMD_SHUTDOWN, NULL, 0);
	/* reply encoder input: GET_STATEBLOB full with 4 payload bytes */
	{
		uint8_t tail[] = { CMD_GET_STATEBLOB, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4,
				   0, 0, 0, 4, 4, 'a', 'b', 'c', 'd' };

		memcpy(s + 2 + n, tail, sizeof(tail));
		s[0] = 2 * 5 + 1; /* fd 5 came with it */
		s[1] = sizeof(tail);
		put("session_with_reply", s, n + 2 + sizeof(tail));
	}
}

static void gen_ctrl_ioctl(void)
{
	static const struct {
		const char *name;
		uint8_t sel; /* index into fuzz_ctrl_ioctl_codec.c ptm_cmds[] */
		unsigned int cmd;
	} cmds[] = {
		{ "get_capability", 0, PTM_GET_CAPABILITY }, { "init", 1, PTM_INIT },
		{ "set_locality", 4, PTM_SET_LOCALITY },     { "hash_data", 6, PTM_HASH_DATA },
		{ "reset_est", 10, PTM_RESET_TPMESTABLISHED },
		{ "get_stateblob", 11, PTM_GET_STATEBLOB },  { "set_stateblob", 12, PTM_SET_STATEBLOB },
		{ "get_config", 14, PTM_GET_CONFIG },	     { "set_buffersize", 16, PTM_SET_BUFFERSIZE },
		{ "get_info", 17, PTM_GET_INFO },	     { "lock_storage", 18, PTM_LOCK_STORAGE },
	};
	static uint8_t s[4 + 5000 + 32];

	target("ctrl_ioctl_codec");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		size_t size = _IOC_SIZE(cmds[i].cmd), n = 0;
		uint8_t *arg;

		memset(s, 0, sizeof(s));
		s[n++] = cmds[i].sel;
		s[n++] = (uint8_t)(i & 3); /* misalignment */
		s[n++] = (uint8_t)(size >> 8);
		s[n++] = (uint8_t)size;
		arg = s + n;
		switch (cmds[i].cmd) {
		case PTM_INIT: {
			uint32_t f = PTM_INIT_FLAG_DELETE_VOLATILE;

			memcpy(arg, &f, 4);
			break;
		}
		case PTM_SET_LOCALITY:
			arg[0] = 4;
			break;
		case PTM_HASH_DATA: {
			uint32_t l = 5;

			memcpy(arg, &l, 4);
			memcpy(arg + 4, "hello", 5);
			break;
		}
		case PTM_GET_STATEBLOB: {
			uint32_t v[3] = { 0, PTM_BLOB_TYPE_SAVESTATE, 0 };

			memcpy(arg, v, 12);
			break;
		}
		case PTM_SET_STATEBLOB: {
			uint8_t *blob = NULL;
			size_t blen = 0;
			uint32_t v[3] = { 0, PTM_BLOB_TYPE_PERMANENT, 0 };

			container_wrap_blob(payload, sizeof(payload), &blob, &blen);
			v[2] = (uint32_t)blen;
			memcpy(arg, v, 12);
			memcpy(arg + 12, blob, blen);
			free(blob);
			break;
		}
		case PTM_SET_BUFFERSIZE: {
			uint32_t v = 3072;

			memcpy(arg, &v, 4);
			break;
		}
		case PTM_GET_INFO: {
			uint64_t f = SWTPM_INFO_TPMSPECIFICATION;

			memcpy(arg, &f, 8);
			break;
		}
		case PTM_LOCK_STORAGE: {
			uint32_t v = 10;

			memcpy(arg, &v, 4);
			break;
		}
		default:
			break;
		}
		n += size;
		/* reply: result 0, full, union words, payload length 16, capacity exact */
		{
			uint8_t tail[] = { 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 16, 4 };

			memcpy(s + n, tail, sizeof(tail));
			n += sizeof(tail);
		}
		put(cmds[i].name, s, n);
	}
}

static void gen_tpm_frame(void)
{
	static const uint8_t startup[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0 };
	static const uint8_t getrandom[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 0x10 };
	static const uint8_t tpm12_startup[] = { 0, 0xc1, 0, 0, 0, 0x0c, 0, 0, 0, 0x99, 0, 1 };
	uint8_t s[128];
	size_t n;

	target("tpm_frame");
	s[0] = 0; /* TPM 2 */
	memcpy(s + 1, startup, sizeof(startup));
	put("tpm2_startup", s, 1 + sizeof(startup));
	n = 1;
	memcpy(s + n, startup, sizeof(startup));
	n += sizeof(startup);
	memcpy(s + n, getrandom, sizeof(getrandom));
	n += sizeof(getrandom);
	put("tpm2_two_commands", s, n);
	/* TCG prefix: u32 8, locality 0, u32 size, command */
	n = 1;
	be32(s + n, TPM_FRAME_SEND_COMMAND);
	s[n + 4] = 0;
	be32(s + n + 5, sizeof(getrandom));
	n += TPM_FRAME_PREFIX_LEN;
	memcpy(s + n, getrandom, sizeof(getrandom));
	n += sizeof(getrandom);
	put("tpm2_prefixed", s, n);
	s[0] = 1; /* TPM 1.2 */
	memcpy(s + 1, tpm12_startup, sizeof(tpm12_startup));
	put("tpm12_startup", s, 1 + sizeof(tpm12_startup));
}

/* ---- state containers ---- */

static void gen_container(void)
{
	uint8_t *o = NULL, v1[10 + sizeof(payload)];
	size_t n = 0;
	struct vtpm_key k;

	target("container");
	container_wrap_file(payload, sizeof(payload), &o, &n);
	put("file_plain", o, n);
	free(o);
	container_wrap_blob(payload, sizeof(payload), &o, &n);
	put("blob_plain", o, n);
	free(o);
	container_wrap_blob(NULL, 0, &o, &n);
	put("blob_empty_payload", o, n);
	free(o);
	/* header only: "state is empty" */
	{
		struct tlv none;

		memset(&none, 0, sizeof(none));
		container_build(CONTAINER_FLAG_MIGRATION_DATA, &none, 0, &o, &n);
		put("header_only", o, n);
		free(o);
	}
	/* version 1: the body is the payload */
	v1[0] = 1;
	v1[1] = 1;
	v1[2] = 0;
	v1[3] = 10;
	v1[4] = 0;
	v1[5] = 0;
	be32(v1 + 6, sizeof(v1));
	memcpy(v1 + 10, payload, sizeof(payload));
	put("file_v1", v1, sizeof(v1));
	make_key(&k, 1, 1);
	state_file_encode(&k, payload, sizeof(payload), &o, &n);
	put("file_encrypted", o, n);
	free(o);
}

/* Version-1 encrypted file: AES-CBC (zero IV) of SHA-256(data) || data, padded
 * to the key length (swtpm 0.7.1 legacy format). */
static void legacy_file(const struct vtpm_key *k, uint8_t **out, size_t *out_len)
{
	uint8_t plain[32 + sizeof(payload) + 32], iv[16] = { 0 };
	size_t n = 0, pad;
	unsigned int mdlen;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;

	EVP_Digest(payload, sizeof(payload), plain, &mdlen, EVP_sha256(), NULL);
	memcpy(plain + 32, payload, sizeof(payload));
	n = 32 + sizeof(payload);
	pad = k->len - n % k->len;
	memset(plain + n, (int)pad, pad);
	n += pad;
	*out = malloc(n + 32);
	EVP_EncryptInit_ex(c, k->len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc(), NULL,
			   k->bytes, iv);
	EVP_CIPHER_CTX_set_padding(c, 0);
	EVP_EncryptUpdate(c, *out, &l1, plain, (int)n);
	EVP_EncryptFinal_ex(c, *out + l1, &l2);
	EVP_CIPHER_CTX_free(c);
	*out_len = (size_t)(l1 + l2);
}

static void gen_state_codec(void)
{
	/* cfg bits: 0-1 state key (0 none, 1 AES-128, 2 AES-256), 2-3 migration
	 * key, 4 request flag ENCRYPTED, 6 repair HMACs, 7 also encode */
	static const struct {
		const char *name;
		unsigned sk, mk;
		bool decrypted;
	} blobs[] = {
		{ "blob_plain", 0, 0, false },	     { "blob_state128", 1, 0, false },
		{ "blob_state256", 2, 0, false },    { "blob_mig128", 0, 1, false },
		{ "blob_both128", 1, 1, false },     { "blob_both256", 2, 2, false },
		{ "blob_decrypted_mig", 1, 2, true },
	};
	struct vtpm_key sk, mk;
	uint8_t *o = NULL, cfg;
	size_t n = 0;
	uint32_t sflags = 0;

	target("state_codec");
	for (unsigned sel = 0; sel < 3; sel++) {
		char label[32];

		make_key(&sk, sel, 1);
		state_file_encode(&sk, payload, sizeof(payload), &o, &n);
		cfg = (uint8_t)sel;
		snprintf(label, sizeof(label), "file_key%u", sel);
		put2(label, &cfg, 1, o, n);
		free(o);
	}
	for (size_t i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++) {
		make_key(&sk, blobs[i].sk, 1);
		make_key(&mk, blobs[i].mk, 101);
		state_blob_encode(&sk, &mk, blobs[i].decrypted, payload, sizeof(payload), &o, &n,
				  &sflags);
		cfg = (uint8_t)(blobs[i].sk | blobs[i].mk << 2 |
				(sflags & PTM_STATE_FLAG_ENCRYPTED ? 0x10 : 0) | (i == 0 ? 0x80 : 0));
		put2(blobs[i].name, &cfg, 1, o, n);
		free(o);
	}
	make_key(&sk, 1, 1);
	legacy_file(&sk, &o, &n);
	cfg = 1;
	put2("file_legacy_v1_key128", &cfg, 1, o, n);
	free(o);
}

static void gen_keys(void)
{
	uint8_t cfg;
	const char *h128 = "0x000102030405060708090a0b0c0d0e0f\n";
	const char *h256 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
	uint8_t bin[32];

	target("keys");
	cfg = 0; /* aes-128 */
	put2("hex128", &cfg, 1, h128, strlen(h128));
	cfg = 1; /* aes-256 */
	put2("hex256", &cfg, 1, h256, strlen(h256));
	for (int i = 0; i < 32; i++)
		bin[i] = (uint8_t)(i * 37 + 5);
	cfg = 0;
	put2("binary16", &cfg, 1, bin, 16);
	cfg = 1;
	put2("binary32", &cfg, 1, bin, 32);
	cfg = 0;
	put2("passphrase", &cfg, 1, "correct horse battery staple", 28);
}

static void gen_options(void)
{
	/* table index as in fuzz_options.c: 0 server, 1 ctrl, 2 tpmstate, 3 log,
	 * 4 flags, 5 key, 6 locality/migration/seccomp */
	static const struct {
		uint8_t table;
		const char *s;
	} o[] = {
		{ 0, "type=tcp,port=2321,bindaddr=127.0.0.1,disconnect" },
		{ 0, "type=unixio,path=/run/vtpm/tpm.sock,mode=0660,uid=0,gid=0" },
		{ 0, "type=tcp,fd=5" },
		{ 1, "type=unixio,path=/var/run/swtpm-ctrl.sock,mode=0600" },
		{ 1, "type=tcp,port=2322,ifname=lo,terminate" },
		{ 1, "type=unixio,clientfd=7" },
		{ 2, "dir=/var/lib/swtpm/vm1,mode=0640,lock=false" },
		{ 2, "backend-uri=file:///dev/vtpm-store0" },
		{ 3, "file=/var/log/swtpm.log,level=20,prefix=swtpm: ,truncate" },
		{ 3, "fd=2,level=5" },
		{ 4, "not-need-init,startup-clear" },
		{ 4, "startup-state,disable-auto-shutdown" },
		{ 5, "file=/etc/vtpm/key.hex,format=hex,mode=aes-256-cbc,remove=true" },
		{ 5, "pwdfile=/etc/vtpm/pw,kdf=pbkdf2,mode=aes-128-cbc" },
		{ 5, "pwdfd=9,kdf=sha512" },
		{ 6, "reject-locality-4,allow-set-locality" },
		{ 6, "incoming,release-lock-outgoing" },
		{ 6, "action=kill" },
	};
	char label[16];

	target("options");
	for (size_t i = 0; i < sizeof(o) / sizeof(o[0]); i++) {
		snprintf(label, sizeof(label), "table%u", o[i].table);
		put2(label, &o[i].table, 1, o[i].s, strlen(o[i].s));
	}
}

static void gen_cli(void)
{
	/* byte 0: 0 socket, 1 chardev, 2 cuse; arguments separated by NUL */
	static const struct {
		uint8_t iface;
		const char *args[16];
	} lines[] = {
		{ 0, { "--tpm2", "--tpmstate", "dir=/var/lib/swtpm/vm1", "--ctrl",
		       "type=unixio,path=/run/vtpm/vm1.ctrl", "--server",
		       "type=unixio,path=/run/vtpm/vm1.sock,mode=0600", "--flags",
		       "not-need-init,startup-clear", "--log", "file=/tmp/vm1.log,level=20" } },
		{ 0, { "--tpm2", "-p", "2321", "--ctrl", "type=tcp,port=2322", "--tpmstate",
		       "backend-uri=file:///tmp/vm1.store", "--key",
		       "file=/etc/key,mode=aes-256-cbc,format=hex", "--migration",
		       "incoming,release-lock-outgoing", "--locality",
		       "reject-locality-4,allow-set-locality", "-t" } },
		{ 0, { "--tpm2", "--print-capabilities" } },
		{ 0, { "-h" } },
		{ 1, { "--tpm2", "--vtpm-proxy", "--tpmstate", "dir=/var/lib/swtpm/vm2",
		       "--seccomp", "action=kill", "--pid", "file=/run/vm2.pid" } },
		{ 1, { "-c", "/dev/tpm0", "--tpmstate", "dir=/tmp", "--runas", "root" } },
		{ 2, { "--tpm2", "-n", "vtpm0", "--tpmstate", "dir=/var/lib/swtpm/vm3", "-F" } },
	};
	char buf[1024];

	target("cli");
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		size_t n = 0;

		buf[n++] = (char)lines[i].iface;
		for (int a = 0; a < 16 && lines[i].args[a]; a++) {
			if (a)
				buf[n++] = '\0';
			memcpy(buf + n, lines[i].args[a], strlen(lines[i].args[a]));
			n += strlen(lines[i].args[a]);
		}
		put("argv", buf, n);
	}
}

/* ---- journal ---- */

static void journal_slot(uint8_t *slot, uint64_t seq, const uint8_t *data, uint32_t len,
			 uint32_t flags)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(slot, 0, JOURNAL_HDR_SIZE);
	memcpy(slot, "VTPMJRN1", 8);
	le64(slot + 8, seq);
	le64(slot + 16, (uint64_t)len | (uint64_t)flags << 32);
	/* base all zero: no permall file in the fuzz target's directory */
	if (len)
		memcpy(slot + JOURNAL_HDR_SIZE, data, len);
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, slot, 64);
	EVP_DigestUpdate(c, slot + JOURNAL_HDR_SIZE, len);
	EVP_DigestFinal_ex(c, slot + 64, NULL);
	EVP_MD_CTX_free(c);
}

static void gen_journal(void)
{
	/* cfg: bit 0 TPM 1.2, bit 1 repair sums, bit 2 write a marker; u16 write length */
	enum { SLOT = 512 };
	static uint8_t f[3 + 2 * SLOT];
	uint8_t *o = NULL;
	size_t n = 0;

	target("journal");
	container_wrap_file(payload, sizeof(payload), &o, &n);
	memset(f, 0, sizeof(f));
	f[0] = 0;
	f[1] = 0;
	f[2] = 40;
	/* seq 1 sits in slot 1, seq 2 in slot 0 (the writer alternates by parity) */
	journal_slot(f + 3 + SLOT, 1, o, (uint32_t)n, 0);
	put("one_data_slot", f, sizeof(f));
	journal_slot(f + 3, 2, o, (uint32_t)n - 5, 0);
	put("two_data_slots", f, sizeof(f));
	journal_slot(f + 3, 2, NULL, 0, 1);
	f[0] = 4;
	put("marker_newest", f, sizeof(f));
	f[0] = 2;
	f[3 + 64] ^= 1; /* the repair bit fixes this checksum */
	put("repair_sums", f, sizeof(f));
	free(o);
}

static void gen_store_linear(void)
{
	struct linear_layout l;
	uint8_t s[8 + LINEAR_HDR_SIZE + 10];

	target("store_linear");
	memset(&l, 0, sizeof(l));
	/* what swtpm writes: permall, then volatile, then savestate */
	linear_plan_write(&l, STORE_PERMALL, 7000);
	linear_plan_write(&l, STORE_VOLATILE, 1500);
	le64(s, l.size);
	linear_hdr_format(&l, s + 8);
	put("two_items", s, 8 + LINEAR_HDR_SIZE);
	/* with operations: grow permall (moves), delete volatile */
	s[8 + LINEAR_HDR_SIZE] = STORE_PERMALL;
	be32(s + 8 + LINEAR_HDR_SIZE + 1, 20000);
	s[8 + LINEAR_HDR_SIZE + 5] = 0x80 | STORE_VOLATILE;
	be32(s + 8 + LINEAR_HDR_SIZE + 6, 0);
	put("two_items_ops", s, sizeof(s));
	/* a block device of 1 MiB */
	memset(&l, 0, sizeof(l));
	l.fixed = true;
	l.size = 1 << 20;
	linear_plan_write(&l, STORE_PERMALL, 9000);
	linear_plan_write(&l, STORE_SAVESTATE, 300);
	le64(s, l.size | 1ULL << 63);
	linear_hdr_format(&l, s + 8);
	put("blockdev", s, 8 + LINEAR_HDR_SIZE);
	/* empty header as swtpm formats a new store */
	memset(&l, 0, sizeof(l));
	l.size = LINEAR_HDR_SIZE;
	le64(s, l.size);
	linear_hdr_format(&l, s + 8);
	put("formatted_empty", s, 8 + LINEAR_HDR_SIZE);
}

/* ---- manager ---- */

static void gen_mgr(void)
{
	static const char *const reqs[] = {
		"{\"execute\":\"query-version\",\"id\":1}",
		"{\"execute\":\"list\"}",
		"{\"execute\":\"create\",\"arguments\":{\"id\":\"vm1\",\"argv\":[\"socket\","
		"\"--tpm2\",\"--ctrl\",\"type=unixio,path=/run/vtpm/vm1.ctrl\"],\"start\":true,"
		"\"restart\":\"on-failure\"},\"id\":\"c-1\"}",
		"{\"execute\":\"start\",\"arguments\":{\"id\":\"vm1\"}}",
		"{\"execute\":\"stop\",\"arguments\":{\"id\":\"vm1\"},\"id\":7}",
		"{\"execute\":\"restart\",\"arguments\":{\"id\":\"tenant-42.prod_a\"}}",
		"{\"execute\":\"destroy\",\"arguments\":{\"id\":\"vm1\",\"purge\":true}}",
		"{\"execute\":\"status\",\"arguments\":{\"id\":\"vm1\"}}",
		"{\"execute\":\"subscribe\"}",
		"{\"execute\":\"unsubscribe\",\"id\":null}",
		"{\"execute\":\"export-state\",\"arguments\":{\"id\":\"vm1\",\"file\":"
		"\"/var/lib/vtpmd/export/vm1.state\",\"encrypted\":false}}",
		"{\"execute\":\"import-state\",\"arguments\":{\"id\":\"vm1\",\"data\":\"eyJmb3JtYXQiOi\"}}",
		"  {\"execute\" : \"list\" , \"id\" : [1, {\"a\": 2.5e3}] }\r",
		"{\"execute\":\"create\",\"arguments\":{\"id\":\"x\",\"argv\":[\"cuse\",\"-n\","
		"\"vtpm0\",\"--key\",\"file=/k,mode=aes-256-cbc\"],\"restart\":\"never\"}}",
		/* a member name echoed in the error, UTF-8 across the 64-byte cut */
		"{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9" "b\":1}",
	};
	static const char *const ids[] = { "vm1", "tenant-42.prod_a", "a", "A.b_c-9",
					   "0123456789012345678901234567890123456789"
					   "012345678901234567890123" };
	struct sf_state st;
	uint8_t *o = NULL, cfg;
	size_t n = 0;

	target("mgr_protocol");
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		put("request", reqs[i], strlen(reqs[i]));

	target("mgr_id");
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		put("id", ids[i], strlen(ids[i]));

	target("mgr_statefile");
	memset(&st, 0, sizeof(st));
	st.tpm2 = true;
	st.created = 1764230000;
	snprintf(st.source_id, sizeof(st.source_id), "vm1");
	for (int i = 0; i < SF_NBLOBS; i++) {
		st.blobs[i].type = (uint32_t)(i + 1);
		st.blobs[i].flags = i == 0 ? PTM_STATE_FLAG_ENCRYPTED : 0;
		st.blobs[i].data = payload;
		st.blobs[i].len = i == 2 ? 0 : sizeof(payload) - (size_t)i * 7;
	}
	sf_encode(&st, &o, &n);
	cfg = 0x80 | 2; /* want TPM 2, repair sums */
	put2("tpm2", &cfg, 1, o, n);
	free(o);
	st.tpm2 = false;
	st.source_id[0] = '\0';
	sf_encode(&st, &o, &n);
	cfg = 0x80 | 0; /* any TPM */
	put2("tpm12_no_source", &cfg, 1, o, n);
	free(o);
}

static void gen_registry(void)
{
	/* byte 0: 0 config.json (directory "vm1"), 1 pid file, 2 /proc/PID/stat,
	 * 3 stat line built around a comm and start time */
	static const char *const configs[] = {
		"{\"version\":1,\"id\":\"vm1\",\"argv\":[\"socket\",\"--tpm2\",\"--ctrl\","
		"\"type=unixio,path=/run/vtpmd/vm1/ctrl.sock\"],\"restart\":\"on-failure\","
		"\"created\":1764230000,\"state\":\"running\"}",
		"{\"version\":1,\"id\":\"vm1\",\"argv\":[\"socket\"],\"restart\":\"never\","
		"\"created\":0,\"state\":\"stopped\"}",
	};
	struct reg_pid p;
	char buf[1200];
	uint8_t cfg;
	int n;
	FILE *f;

	target("mgr_registry");
	cfg = 0;
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
		put2("config", &cfg, 1, configs[i], strlen(configs[i]));
	memset(&p, 0, sizeof(p));
	p.pid = 4242;
	p.starttime = 123456789;
	snprintf(p.boot_id, sizeof(p.boot_id), "6f1d3c1e-3b1a-4c5e-9d2f-0a1b2c3d4e5f");
	snprintf(p.exe, sizeof(p.exe), "/usr/bin/swtpm");
	snprintf(p.comm, sizeof(p.comm), "swtpm");
	n = reg_pid_format(&p, buf, sizeof(buf));
	cfg = 1;
	put2("pidfile", &cfg, 1, buf, (size_t)n);
	f = fopen("/proc/self/stat", "r");
	if (f) {
		size_t len = fread(buf, 1, sizeof(buf), f);

		fclose(f);
		cfg = 2;
		put2("proc_stat", &cfg, 1, buf, len);
	}
	{
		uint8_t s[1 + 8 + 15] = { 3, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78 };

		memcpy(s + 9, "vtpmd", 5);
		put("stat_comm", s, 9 + 5);
		memcpy(s + 9, "x) R 1 2 3 (y", 13);
		put("stat_comm_parens", s, 9 + 13);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	mkdir(root, 0755);
	gen_ctrl_codec();
	gen_ctrl_ioctl();
	gen_tpm_frame();
	gen_container();
	gen_state_codec();
	gen_keys();
	gen_options();
	gen_cli();
	gen_journal();
	gen_store_linear();
	gen_mgr();
	gen_registry();
	return 0;
}
