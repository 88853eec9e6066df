/* Unit tests for --key / --migration-key loading (src/crypto/keys.c): option
 * handling, hex/binary key files, passphrase KDFs, fds, remove=, error messages. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "crypto/keys.h"

static char tmpdir[64];

static void tmp_setup(void)
{
	strcpy(tmpdir, "/tmp/vtpm-keys-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
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
	if (tmpdir[0])
		nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(keys, .init = tmp_setup, .fini = tmp_teardown);

/* Write `len` bytes to a fresh file in the temp dir; returns its path (static). */
static const char *wfile(const char *name, const void *data, size_t len)
{
	static char path[4][256];
	static int slot;
	char *p = path[slot++ % 4];
	FILE *f;

	snprintf(p, 256, "%s/%s", tmpdir, name);
	f = fopen(p, "wb");
	cr_assert_not_null(f);
	if (len)
		cr_assert_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	return p;
}

/* Read end of a pipe already holding `data` (writer closed). */
static int pipe_with(const void *data, size_t len)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	if (len)
		cr_assert_eq(write(p[1], data, len), (ssize_t)len);
	close(p[1]);
	return p[0];
}

static bool fd_is_closed(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

static int load(const char *fmt, const char *arg, struct vtpm_key *k, char *err)
{
	char opt[512];

	snprintf(opt, sizeof(opt), fmt, arg);
	return keys_load(opt, k, err, 256);
}

static const uint8_t K16[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
#define HEX30 "0102030405060708090a0b0c0d0e0f"
#define HEXHI30 "1112131415161718191a1b1c1d1e1f"
#define HEX16 "00" HEX30
#define HEX32 HEX16 "10" HEXHI30

static void expect_k16(const struct vtpm_key *k)
{
	cr_assert_eq(k->len, 16);
	cr_assert_arr_eq(k->bytes, K16, 16);
}

/* ---- hex key files ----------------------------------------------------------- */

static int hex(const char *text, size_t mode, struct vtpm_key *k, char *err)
{
	return keys_parse_hex(text, mode, k, err, 256);
}

Test(keys, hex_plain_prefix_uppercase)
{
	struct vtpm_key k;
	char err[256];

	cr_assert_eq(hex(HEX16, 16, &k, err), 0);
	expect_k16(&k);
	cr_assert_eq(hex("0x" HEX16, 16, &k, err), 0);
	expect_k16(&k);
	cr_assert_eq(hex("000102030405060708090A0B0C0D0E0F", 16, &k, err), 0);
	expect_k16(&k);
	cr_assert_eq(hex(HEX32, 32, &k, err), 0);
	cr_assert_eq(k.len, 32);
	cr_assert_eq(k.bytes[31], 0x1f);
	cr_assert_eq(hex("0x" HEX32 "\n", 32, &k, err), 0);
	cr_assert_eq(k.len, 32);
}

Test(keys, hex_uppercase_0X_prefix_is_not_a_prefix)
{
	struct vtpm_key k;
	char err[256];

	/* "0X" is converted as a pair (value 0), so 32 digits become 17 pairs */
	cr_assert_eq(hex("0X" HEX16, 16, &k, err), -EINVAL);
	cr_assert_str_eq(err, "Could not parse key hex string into 16 byte buffer.");
	cr_assert_eq(k.len, 0);
}

Test(keys, hex_text_after_whitespace_ignored)
{
	static const char *ok[] = { HEX16 "\n", HEX16 "\ngarbage", HEX16 " garbage",
				    HEX16 "\tx", HEX16 "\r", HEX16 "\v", HEX16 "\f" };
	struct vtpm_key k;
	char err[256];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(hex(ok[i], 16, &k, err), 0, "case %zu", i);
		expect_k16(&k);
	}
}

Test(keys, hex_errors)
{
	static const struct {
		const char *text;
		size_t mode;
		const char *msg;
	} cases[] = {
		{ HEX16 "0", 16, "Could not parse key hex string into 16 byte buffer." },
		{ HEX32 "0", 32, "Could not parse key hex string into 32 byte buffer." },
		{ HEX32, 16, "Could not parse key hex string into 16 byte buffer." },
		{ "0x" HEX32, 16, "Could not parse key hex string into 16 byte buffer." },
		{ "0" HEX30, 16, "Could not parse key hex string into 16 byte buffer." },
		{ HEX30, 16, "Unsupported key length with 30 digits." },
		{ "0x" HEX30, 16, "Unsupported key length with 30 digits." },
		{ "00", 16, "Unsupported key length with 2 digits." },
		{ "0001020304 05060708090a0b0c0d0e0f", 16, "Unsupported key length with 10 digits." },
		{ HEX16 HEXHI30, 32, "Unsupported key length with 62 digits." },
		{ HEX16 "0" HEXHI30, 32, "Could not parse key hex string into 32 byte buffer." },
		{ HEX16, 32, "The provided key is too short. Got 16 bytes, need 32." },
		{ HEX16 "\n", 32, "The provided key is too short. Got 16 bytes, need 32." },
		{ HEX16 "x", 16, "Could not parse key hex string into 16 byte buffer." },
		{ "0" HEX30 "\n", 16, "Could not parse key hex string into 16 byte buffer." },
		{ "", 16, "Could not parse key hex string into 16 byte buffer." },
		{ "0", 16, "Could not parse key hex string into 16 byte buffer." },
		{ "0x", 16, "Could not parse key hex string into 16 byte buffer." },
		{ " " HEX16, 16, "Could not parse key hex string into 16 byte buffer." },
		{ "\n" HEX16, 16, "Could not parse key hex string into 16 byte buffer." },
		{ "x1" HEX30, 16, "Could not parse key hex string into 16 byte buffer." },
		{ "1x" HEX30, 16, "Could not parse key hex string into 16 byte buffer." },
		{ "+-" HEX30, 16, "Could not parse key hex string into 16 byte buffer." },
		{ "gg" HEX30, 16, "Could not parse key hex string into 16 byte buffer." },
	};
	struct vtpm_key k;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		k.len = 99;
		cr_assert_eq(hex(cases[i].text, cases[i].mode, &k, err), -EINVAL, "case %zu", i);
		cr_assert_str_eq(err, cases[i].msg, "case %zu", i);
		cr_assert_eq(k.len, 0, "case %zu", i);
	}
}

Test(keys, hex_scanf_quirks_like_swtpm)
{
	/* Verified against swtpm 0.7.1, which converts pairs with sscanf("%2hhx") */
	struct vtpm_key k;
	char err[256];

	cr_assert_eq(hex("+f" HEX30, 16, &k, err), 0);
	cr_assert_eq(k.bytes[0], 0x0f);
	cr_assert_eq(hex("-1" HEX30, 16, &k, err), 0);
	cr_assert_eq(k.bytes[0], 0xff);
	cr_assert_eq(hex("0x0x" HEX30, 16, &k, err), 0);
	cr_assert_eq(k.bytes[0], 0x00);
	cr_assert_eq(k.bytes[1], 0x01);
	cr_assert_eq(hex(HEX30 "0X", 16, &k, err), 0);
	cr_assert_eq(k.bytes[15], 0x00);
	cr_assert_eq(hex(HEX30 "-0\n", 16, &k, err), 0);
	cr_assert_eq(k.bytes[15], 0x00);
}

Test(keys, hex_pair_matches_glibc_sscanf_exhaustively)
{
	/* The second pair (so the "0x" prefix rule does not interfere) takes every
	 * byte combination; our converter must agree with sscanf("%2hhx%n") == 2
	 * consumed characters, which is what swtpm uses. */
	struct vtpm_key k;
	char err[256], text[40];

	for (int c0 = 1; c0 < 256; c0++) {
		for (int c1 = 1; c1 < 256; c1++) {
			char pair[3] = { (char)c0, (char)c1, 0 };
			unsigned char v = 0;
			int n = -1, r;
			bool space = strchr(" \t\n\v\f\r", c0) != NULL;
			bool want;

			r = sscanf(pair, "%2hhx%n", &v, &n);
			want = !space && r == 1 && n == 2;
			snprintf(text, sizeof(text), "00%c%c%s", c0, c1, HEX16 + 4);
			r = hex(text, 16, &k, err);
			if (space) {
				/* conversion stops after one pair */
				cr_assert_eq(r, -EINVAL);
				cr_assert_str_eq(err, "Unsupported key length with 2 digits.");
				continue;
			}
			cr_assert_eq(r == 0, want, "pair %02x %02x: r=%d", c0, c1, r);
			if (want)
				cr_assert_eq(k.bytes[1], v, "pair %02x %02x", c0, c1);
		}
	}
}

Test(keys, hex_file_read_once_at_most_67_bytes)
{
	struct vtpm_key k;
	char err[256], buf[300];

	/* 64 digits + newline + lots of text: only 67 bytes are read, fine */
	snprintf(buf, sizeof(buf), "%s\n%0200d", HEX32, 0);
	cr_assert_eq(load("file=%s,mode=aes-256-cbc", wfile("k", buf, strlen(buf)), &k, err), 0,
		     "%s", err);
	cr_assert_eq(k.len, 32);
	/* "0x" + 64 digits + glued digits: the 67th byte is a digit -> error */
	snprintf(buf, sizeof(buf), "0x%s%0100d", HEX32, 0);
	cr_assert_eq(load("file=%s,mode=aes-256-cbc", wfile("k", buf, strlen(buf)), &k, err),
		     -EINVAL);
	cr_assert_str_eq(err, "Could not parse key hex string into 32 byte buffer.");
	/* a NUL ends the text */
	memcpy(buf, HEX16 "\0garbage", 41);
	cr_assert_eq(load("file=%s", wfile("k", buf, 41), &k, err), 0);
	expect_k16(&k);
}

/* ---- binary key files -------------------------------------------------------- */

Test(keys, binary_lengths)
{
	uint8_t b[100];
	struct vtpm_key k;
	char err[256];

	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(0xc0 + i);

	cr_assert_eq(load("file=%s,format=binary", wfile("k", b, 16), &k, err), 0);
	cr_assert_eq(k.len, 16);
	cr_assert_arr_eq(k.bytes, b, 16);
	cr_assert_eq(load("file=%s,format=binary,mode=aes-256-cbc", wfile("k", b, 32), &k, err), 0);
	cr_assert_eq(k.len, 32);
	cr_assert_arr_eq(k.bytes, b, 32);
	/* quirk: 16 bytes with aes-256-cbc is accepted as an AES-128 key */
	cr_assert_eq(load("file=%s,format=binary,mode=aes-256-cbc", wfile("k", b, 16), &k, err), 0);
	cr_assert_eq(k.len, 16);

	cr_assert_eq(load("file=%s,format=binary", wfile("k", b, 20), &k, err), -EINVAL);
	cr_assert_str_eq(err, "Key is larger than buffer (20 > 16).");
	cr_assert_eq(k.len, 0);
	cr_assert_eq(load("file=%s,format=binary", wfile("k", b, 32), &k, err), -EINVAL);
	cr_assert_str_eq(err, "Key is larger than buffer (32 > 16).");
	cr_assert_eq(load("file=%s,format=binary,mode=aes-256-cbc", wfile("k", b, 100), &k, err),
		     -EINVAL);
	cr_assert_str_eq(err, "Key is larger than buffer (67 > 32).");
	/* shorter than the mode but not 16/32: swtpm fails silently, we explain */
	cr_assert_eq(load("file=%s,format=binary,mode=aes-256-cbc", wfile("k", b, 20), &k, err),
		     -EINVAL);
	cr_assert_str_eq(err, "Unsupported key length of 20 bytes; need 16 or 32.");
	cr_assert_eq(load("file=%s,format=binary", wfile("k", b, 0), &k, err), -EINVAL);
	cr_assert_eq(load("file=%s,format=binary", wfile("k", b, 4), &k, err), -EINVAL);
	/* a trailing newline is part of a binary key */
	memcpy(b + 16, "\n", 1);
	cr_assert_eq(load("file=%s,format=binary", wfile("k", b, 17), &k, err), -EINVAL);
	cr_assert_str_eq(err, "Key is larger than buffer (17 > 16).");
}

/* ---- passphrases ------------------------------------------------------------- */

static void ref_pbkdf2(const void *pw, size_t pwlen, size_t keylen, uint8_t *out)
{
	/* EVP_KDF (not the PKCS5_PBKDF2_HMAC one-shot keys.c uses) */
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "PBKDF2", NULL);
	EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
	unsigned int iter = 1000;
	int pkcs5 = 1;
	OSSL_PARAM p[] = {
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pw, pwlen),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)"swtpm", 5),
		OSSL_PARAM_construct_uint(OSSL_KDF_PARAM_ITER, &iter),
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA512", 0),
		OSSL_PARAM_construct_int(OSSL_KDF_PARAM_PKCS5, &pkcs5),
		OSSL_PARAM_construct_end(),
	};

	cr_assert_not_null(ctx);
	cr_assert_eq(EVP_KDF_derive(ctx, out, keylen, p), 1);
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
}

static void ref_sha512(const void *pw, size_t pwlen, uint8_t out[64])
{
	size_t ol = 0;

	cr_assert_eq(EVP_Q_digest(NULL, "SHA512", NULL, pw, pwlen, out, &ol), 1);
	cr_assert_eq(ol, 64);
}

static void unhex(const char *h, uint8_t *out)
{
	for (size_t i = 0; h[2 * i]; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
}

Test(keys, passphrase_pbkdf2_default)
{
	static const char pw[] = "correct horse\n";
	uint8_t want[32], fixed[32];
	struct vtpm_key k;
	char err[256];

	/* 256-bit, trailing newline kept */
	cr_assert_eq(load("pwdfile=%s,mode=aes-256-cbc", wfile("p", pw, strlen(pw)), &k, err), 0,
		     "%s", err);
	cr_assert_eq(k.len, 32);
	ref_pbkdf2(pw, strlen(pw), 32, want);
	cr_assert_arr_eq(k.bytes, want, 32);
	/* and against a vector from Python's hashlib.pbkdf2_hmac */
	unhex("4f9b96b90f7bc96f6ee8e918ce26c00584a0b57eba0519e72aac452eb293defd", fixed);
	cr_assert_arr_eq(k.bytes, fixed, 32);

	/* 128-bit default mode, explicit kdf=pbkdf2 */
	cr_assert_eq(load("pwdfile=%s,kdf=pbkdf2", wfile("p", pw, strlen(pw)), &k, err), 0);
	cr_assert_eq(k.len, 16);
	cr_assert_arr_eq(k.bytes, fixed, 16);

	/* without the newline it is a different key */
	cr_assert_eq(load("pwdfile=%s", wfile("p", pw, strlen(pw) - 1), &k, err), 0);
	cr_assert_neq(memcmp(k.bytes, fixed, 16), 0);
	ref_pbkdf2(pw, strlen(pw) - 1, 16, want);
	cr_assert_arr_eq(k.bytes, want, 16);
}

Test(keys, passphrase_sha512)
{
	static const char pw[] = "correct horse\n";
	uint8_t md[64], fixed[32];
	struct vtpm_key k;
	char err[256];

	ref_sha512(pw, strlen(pw), md);
	unhex("6b1c1b5b311741c990f5c4bd514e5b0e4db85beebe5b3c31290904acf643bbe4", fixed);
	cr_assert_arr_eq(md, fixed, 32);
	cr_assert_eq(load("pwdfile=%s,kdf=sha512", wfile("p", pw, strlen(pw)), &k, err), 0);
	cr_assert_eq(k.len, 16);
	cr_assert_arr_eq(k.bytes, md, 16);
	cr_assert_eq(load("pwdfile=%s,kdf=sha512,mode=aes-256-cbc", wfile("p", pw, strlen(pw)), &k,
			  err), 0);
	cr_assert_eq(k.len, 32);
	cr_assert_arr_eq(k.bytes, md, 32);
}

Test(keys, passphrase_empty_and_long)
{
	uint8_t want[32], fixed[16];
	struct vtpm_key k;
	char err[256];
	size_t n = 5000;
	char *big = malloc(n);

	/* swtpm accepts an empty passphrase */
	cr_assert_eq(load("pwdfile=%s", wfile("p", "", 0), &k, err), 0);
	unhex("c55dfd0c4fbdffdf11d67b7016497837", fixed);
	cr_assert_arr_eq(k.bytes, fixed, 16);
	/* longer than one 1024-byte read, with NUL bytes in it */
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i % 251);
	cr_assert_eq(load("pwdfile=%s,mode=aes-256-cbc", wfile("p", big, n), &k, err), 0);
	ref_pbkdf2(big, n, 32, want);
	cr_assert_arr_eq(k.bytes, want, 32);
	free(big);
}

Test(keys, derive_api)
{
	struct vtpm_key k;

	cr_assert_eq(keys_derive((const uint8_t *)"x", 1, 24, KEYS_KDF_PBKDF2, &k), -EINVAL);
	cr_assert_eq(keys_derive((const uint8_t *)"x", 1, 16, (enum keys_kdf)7, &k), -EINVAL);
	cr_assert_eq(k.len, 0);
	cr_assert_eq(keys_derive(NULL, 0, 16, KEYS_KDF_SHA512, &k), 0);
	cr_assert_eq(k.len, 16);
	keys_wipe(&k);
	cr_assert_eq(k.len, 0);
	for (size_t i = 0; i < sizeof(k.bytes); i++)
		cr_assert_eq(k.bytes[i], 0);
}

/* ---- fds ------------------------------------------------------------------- */

Test(keys, fd_sources_via_pipes_are_closed)
{
	uint8_t want[32];
	struct vtpm_key k;
	char err[256], opt[64];
	int fd;

	fd = pipe_with(HEX16 "\n", 33);
	snprintf(opt, sizeof(opt), "fd=%d", fd);
	cr_assert_eq(keys_load(opt, &k, err, sizeof(err)), 0, "%s", err);
	expect_k16(&k);
	cr_assert(fd_is_closed(fd));

	fd = pipe_with(K16, 16);
	snprintf(opt, sizeof(opt), "fd=%d,format=binary,mode=aes-256-cbc", fd);
	cr_assert_eq(keys_load(opt, &k, err, sizeof(err)), 0, "%s", err);
	expect_k16(&k);
	cr_assert(fd_is_closed(fd));

	fd = pipe_with("pass\n", 5);
	snprintf(opt, sizeof(opt), "pwdfd=%d,mode=aes-256-cbc", fd);
	cr_assert_eq(keys_load(opt, &k, err, sizeof(err)), 0, "%s", err);
	ref_pbkdf2("pass\n", 5, 32, want);
	cr_assert_arr_eq(k.bytes, want, 32);
	cr_assert(fd_is_closed(fd));

	/* closed even when the content is rejected */
	fd = pipe_with("nothex", 6);
	snprintf(opt, sizeof(opt), "fd=%d", fd);
	cr_assert_eq(keys_load(opt, &k, err, sizeof(err)), -EINVAL);
	cr_assert(fd_is_closed(fd));
}

Test(keys, bad_fds)
{
	struct vtpm_key k;
	char err[256];

	cr_assert_eq(keys_load("fd=1000", &k, err, sizeof(err)), -EBADF);
	cr_assert_str_eq(err, "Unable to read key: Bad file descriptor");
	cr_assert_eq(keys_load("pwdfd=1000", &k, err, sizeof(err)), -EBADF);
	cr_assert_str_eq(err, "Unable to read passphrase: Bad file descriptor");
	/* as swtpm: only -1 means "not given"; -2 falls through to the passphrase */
	cr_assert_eq(keys_load("fd=-2", &k, err, sizeof(err)), -EBADF);
	cr_assert_str_eq(err, "Unable to read passphrase: Bad file descriptor");
	cr_assert_eq(keys_load("fd=-1", &k, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "Either file=, fd=, pwdfile=, or pwdfd= is required for key option");
	cr_assert_eq(keys_load("fd=abc", &k, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "Error parsing key options: invalid number 'abc'");
}

/* ---- option handling ---------------------------------------------------------- */

Test(keys, precedence_file_fd_passphrase)
{
	struct vtpm_key k;
	char err[256], opt[512];
	int fd;

	/* file= beats fd= (the fd is left alone) and pwdfile= */
	fd = pipe_with("ignored", 7);
	snprintf(opt, sizeof(opt), "pwdfile=%s,fd=%d,file=%s", wfile("p", "pw", 2), fd,
		 wfile("k", HEX16, 32));
	cr_assert_eq(keys_load(opt, &k, err, sizeof(err)), 0, "%s", err);
	expect_k16(&k);
	cr_assert_not(fd_is_closed(fd));
	close(fd);
	/* fd= beats the passphrase */
	fd = pipe_with(HEX16, 32);
	snprintf(opt, sizeof(opt), "pwdfile=%s,fd=%d", wfile("p", "pw", 2), fd);
	cr_assert_eq(keys_load(opt, &k, err, sizeof(err)), 0, "%s", err);
	expect_k16(&k);
	/* pwdfile= beats pwdfd= */
	fd = pipe_with("other", 5);
	snprintf(opt, sizeof(opt), "pwdfd=%d,pwdfile=%s,kdf=sha512", fd, wfile("p", "pw", 2));
	cr_assert_eq(keys_load(opt, &k, err, sizeof(err)), 0, "%s", err);
	{
		uint8_t md[64];

		ref_sha512("pw", 2, md);
		cr_assert_arr_eq(k.bytes, md, 16);
	}
	close(fd);
}

Test(keys, option_errors_in_swtpm_order)
{
	static const struct {
		const char *opt;
		const char *msg;
	} cases[] = {
		{ "", "Either file=, fd=, pwdfile=, or pwdfd= is required for key option" },
		{ "mode=aes-cbc", "Either file=, fd=, pwdfile=, or pwdfd= is required for key option" },
		{ "mode=bar,format=foo", "Either file=, fd=, pwdfile=, or pwdfd= is required for key option" },
		{ "file=/nonexistent,format=foo,mode=bar", "Unknown key format 'foo'." },
		{ "pwdfile=/nonexistent,format=foo", "Unknown key format 'foo'." },
		{ "file=/nonexistent,mode=bar", "Unknown encryption mode 'bar'." },
		{ "file=/nonexistent,mode=AES-128-CBC", "Unknown encryption mode 'AES-128-CBC'." },
		{ "pwdfile=/nonexistent,mode=bar,kdf=foo", "Unknown encryption mode 'bar'." },
		{ "pwdfile=/nonexistent,kdf=foo", "Unknown kdf 'foo'." },
		{ "file=/nonexistent", "Unable to open file /nonexistent: No such file or directory" },
		{ "pwdfile=/nonexistent", "Unable to open file /nonexistent : No such file or directory" },
		{ "file=/x,bogus", "Error parsing key options: Unknown option 'bogus'" },
		{ "file=", "Error parsing key options: Unknown option 'file='" },
		{ "file=/x,remove=", "Error parsing key options: Unknown option 'remove='" },
	};
	struct vtpm_key k;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = keys_load(cases[i].opt, &k, err, sizeof(err));

		cr_assert_lt(r, 0, "case %s", cases[i].opt);
		cr_assert_str_eq(err, cases[i].msg, "case %s", cases[i].opt);
		cr_assert_eq(k.len, 0);
	}
	cr_assert_eq(keys_load("file=/nonexistent", &k, err, sizeof(err)), -ENOENT);
}

Test(keys, kdf_and_format_only_where_they_apply)
{
	struct vtpm_key k;
	char err[256];

	/* kdf is not looked at for key files */
	cr_assert_eq(load("file=%s,kdf=foo", wfile("k", HEX16, 32), &k, err), 0);
	expect_k16(&k);
	/* a valid format is accepted (and ignored) for passphrases */
	cr_assert_eq(load("pwdfile=%s,format=binary", wfile("p", "x", 1), &k, err), 0);
	cr_assert_eq(k.len, 16);
	/* modes */
	cr_assert_eq(load("file=%s,mode=aes-cbc", wfile("k", HEX16, 32), &k, err), 0);
	cr_assert_eq(load("file=%s,mode=aes-128-cbc", wfile("k", HEX16, 32), &k, err), 0);
	cr_assert_eq(load("file=%s,mode=aes-256-cbc", wfile("k", HEX32, 64), &k, err), 0);
	cr_assert_eq(k.len, 32);
	/* the first of a repeated option wins */
	cr_assert_eq(load("file=%s,mode=aes-256-cbc,mode=foo", wfile("k", HEX16, 32), &k, err),
		     -EINVAL);
	cr_assert_str_eq(err, "The provided key is too short. Got 16 bytes, need 32.");
}

Test(keys, remove_unlinks_after_success)
{
	struct vtpm_key k;
	char err[256], opt[600];
	const char *kf, *pf;
	int fd;

	kf = wfile("k", HEX16, 32);
	cr_assert_eq(load("file=%s,remove", kf, &k, err), 0);
	cr_assert_neq(access(kf, F_OK), 0, "key file removed");

	kf = wfile("k", HEX16, 32);
	cr_assert_eq(load("file=%s,remove=true", kf, &k, err), 0);
	cr_assert_neq(access(kf, F_OK), 0);

	kf = wfile("k", HEX16, 32);
	cr_assert_eq(load("file=%s,remove=false", kf, &k, err), 0);
	cr_assert_eq(access(kf, F_OK), 0, "remove=false keeps it");

	kf = wfile("k", HEX16, 32);
	cr_assert_eq(load("file=%s", kf, &k, err), 0);
	cr_assert_eq(access(kf, F_OK), 0, "default keeps it");

	pf = wfile("p", "pw", 2);
	cr_assert_eq(load("pwdfile=%s,remove", pf, &k, err), 0);
	cr_assert_neq(access(pf, F_OK), 0);

	/* a failed load removes nothing */
	kf = wfile("k", "bad", 3);
	cr_assert_eq(load("file=%s,remove", kf, &k, err), -EINVAL);
	cr_assert_eq(access(kf, F_OK), 0);

	/* as swtpm: both named paths go, whichever supplied the key */
	kf = wfile("k", HEX16, 32);
	pf = wfile("p", "pw", 2);
	snprintf(opt, sizeof(opt), "file=%s,pwdfile=%s,remove", kf, pf);
	cr_assert_eq(keys_load(opt, &k, err, sizeof(err)), 0);
	cr_assert_neq(access(kf, F_OK), 0);
	cr_assert_neq(access(pf, F_OK), 0);

	/* fd= with remove: the fd is read, only the named pwdfile is unlinked */
	pf = wfile("p", "pw", 2);
	fd = pipe_with(HEX16, 32);
	snprintf(opt, sizeof(opt), "fd=%d,pwdfile=%s,remove", fd, pf);
	cr_assert_eq(keys_load(opt, &k, err, sizeof(err)), 0);
	expect_k16(&k);
	cr_assert_neq(access(pf, F_OK), 0);
}
