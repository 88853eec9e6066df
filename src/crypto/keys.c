/* Loading of the --key / --migration-key AES keys: option parsing, key files in hex
 * or binary, passphrases through SHA-512 or PBKDF2, as swtpm 0.7.1 does it. */
#include "crypto/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "instance/options.h"

/* swtpm's fixed PBKDF2 parameters (§5.4). */
#define KEYS_PBKDF2_SALT "swtpm"
#define KEYS_PBKDF2_ITERATIONS 1000

static const struct opts_desc keys_opt_desc[] = {
	{ "file", OPTS_STRING },
	{ "mode", OPTS_STRING },
	{ "format", OPTS_STRING },
	{ "remove", OPTS_BOOLEAN },
	{ "pwdfile", OPTS_STRING },
	{ "kdf", OPTS_STRING },
	{ "fd", OPTS_INT },
	{ "pwdfd", OPTS_INT },
	{ NULL, 0 },
};

void keys_wipe(struct vtpm_key *key)
{
	if (!key)
		return;
	OPENSSL_cleanse(key->bytes, sizeof(key->bytes));
	key->len = 0;
}

/* The C locale's isspace(), spelled out so the result does not depend on a
 * locale someone might set later. */
static bool keys_isspace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int keys_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * One byte from two characters, accepting exactly what glibc's
 * sscanf("%2hhx%n") accepts with both characters consumed, because that is what
 * swtpm's converter relies on (verified against 0.7.1: "+f", "-1", "0x", "0X"
 * are valid pairs). The caller guarantees c0 is neither NUL nor whitespace.
 */
static bool keys_hexpair(char c0, char c1, uint8_t *out)
{
	int h0 = keys_hexval(c0), h1 = keys_hexval(c1);

	if (h0 >= 0 && h1 >= 0) {
		*out = (uint8_t)(h0 << 4 | h1);
		return true;
	}
	/* strtoul-style sign: the width of 2 leaves room for exactly one digit. */
	if ((c0 == '+' || c0 == '-') && h1 >= 0) {
		*out = c0 == '-' ? (uint8_t)(0x100 - h1) : (uint8_t)h1;
		return true;
	}
	/* A "0x" prefix that exhausts the width converts as 0. */
	if (c0 == '0' && (c1 == 'x' || c1 == 'X')) {
		*out = 0;
		return true;
	}
	return false;
}

int keys_parse_hex(const char *text, size_t mode_len, struct vtpm_key *key, char *err,
		   size_t errlen)
{
	size_t off = 0, n = 0;

	keys_wipe(key);
	if (!text || (mode_len != 16 && mode_len != 32)) {
		opts_seterr(err, errlen, "Invalid key parameters.");
		return -EINVAL;
	}

	/* Only a lower-case "0x" is a prefix (an upper-case one fails later). */
	if (text[0] == '0' && text[1] == 'x')
		off = 2;

	while (n < mode_len && text[off] != '\0' && !keys_isspace(text[off])) {
		/* text[off] != NUL, so text[off + 1] is still inside the string. */
		if (!keys_hexpair(text[off], text[off + 1], &key->bytes[n]))
			goto parse_error;
		off += 2;
		n++;
	}
	/* Digits glued to the key (or a too-long key) make the whole thing invalid;
	 * anything after a whitespace is ignored. */
	if (text[off] != '\0' && !keys_isspace(text[off]))
		goto parse_error;
	if (n == 0)
		goto parse_error;
	if (n != 16 && n != 32) {
		opts_seterr(err, errlen, "Unsupported key length with %zu digits.", n * 2);
		keys_wipe(key);
		return -EINVAL;
	}
	if (n < mode_len) {
		opts_seterr(err, errlen, "The provided key is too short. Got %zu bytes, need %zu.",
			    n, mode_len);
		keys_wipe(key);
		return -EINVAL;
	}
	key->len = n;
	return 0;

parse_error:
	opts_seterr(err, errlen, "Could not parse key hex string into %zu byte buffer.", mode_len);
	keys_wipe(key);
	return -EINVAL;
}

int keys_parse_binary(const uint8_t *data, size_t len, size_t mode_len, struct vtpm_key *key,
		      char *err, size_t errlen)
{
	keys_wipe(key);
	if ((len && !data) || (mode_len != 16 && mode_len != 32)) {
		opts_seterr(err, errlen, "Invalid key parameters.");
		return -EINVAL;
	}
	if (len > mode_len) {
		opts_seterr(err, errlen, "Key is larger than buffer (%zu > %zu).", len, mode_len);
		return -EINVAL;
	}
	/* swtpm accepts any shorter length here and fails silently later when the key
	 * is installed (TPM_BAD_KEY_PROPERTY); we say why. A 16-byte key with a
	 * 256-bit mode passes both checks and becomes an AES-128 key. */
	if (len != 16 && len != 32) {
		opts_seterr(err, errlen, "Unsupported key length of %zu bytes; need 16 or 32.",
			    len);
		return -EINVAL;
	}
	memcpy(key->bytes, data, len);
	key->len = len;
	return 0;
}

int keys_derive(const uint8_t *pw, size_t pwlen, size_t keylen, enum keys_kdf kdf,
		struct vtpm_key *key)
{
	static const uint8_t empty[1];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ret = 0;

	keys_wipe(key);
	if ((keylen != 16 && keylen != 32) || pwlen > KEYS_PASSPHRASE_MAX)
		return -EINVAL;
	/* OpenSSL wants a pointer even for an empty passphrase (which swtpm allows). */
	if (!pw || pwlen == 0) {
		pw = empty;
		pwlen = 0;
	}

	switch (kdf) {
	case KEYS_KDF_SHA512:
		if (!EVP_Digest(pw, pwlen, md, &mdlen, EVP_sha512(), NULL) || mdlen < keylen) {
			ret = -EIO;
			goto out;
		}
		memcpy(key->bytes, md, keylen);
		break;
	case KEYS_KDF_PBKDF2:
		if (!PKCS5_PBKDF2_HMAC((const char *)pw, (int)pwlen,
				       (const unsigned char *)KEYS_PBKDF2_SALT,
				       (int)strlen(KEYS_PBKDF2_SALT), KEYS_PBKDF2_ITERATIONS,
				       EVP_sha512(), (int)keylen, key->bytes)) {
			ret = -EIO;
			goto out;
		}
		break;
	default:
		ret = -EINVAL;
		goto out;
	}
	key->len = keylen;

out:
	OPENSSL_cleanse(md, sizeof(md));
	if (ret < 0)
		keys_wipe(key);
	return ret;
}

static ssize_t keys_read_eintr(int fd, void *buf, size_t len)
{
	ssize_t r;

	do {
		r = read(fd, buf, len);
	} while (r < 0 && errno == EINTR);
	return r;
}

/* A key file is one read() into a small NUL-terminated buffer: swtpm does not
 * loop, so neither do we (a pipe delivering the key in pieces fails there too). */
static int keys_read_keyfile(int fd, char buf[KEYS_FILE_READ_MAX + 1], size_t *len,
			     char *err, size_t errlen)
{
	ssize_t r = keys_read_eintr(fd, buf, KEYS_FILE_READ_MAX);

	if (r < 0) {
		int e = errno;

		opts_seterr(err, errlen, "Unable to read key: %s", strerror(e));
		return -e;
	}
	buf[r] = '\0';
	*len = (size_t)r;
	return 0;
}

/* The whole passphrase up to EOF; nothing is stripped (a trailing newline is part
 * of it). The buffer is wiped whenever it is grown or freed. */
static int keys_read_passphrase(int fd, uint8_t **out, size_t *outlen, char *err,
				size_t errlen)
{
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;
	int ret = 0;

	for (;;) {
		ssize_t r;

		if (cap - len < 1024) {
			size_t ncap = cap + 1024;
			uint8_t *nbuf;

			if (ncap > KEYS_PASSPHRASE_MAX + 1024) {
				opts_seterr(err, errlen, "Passphrase is too long.");
				ret = -EINVAL;
				goto out;
			}
			/* Not realloc: the old block must be wiped before it is freed. */
			nbuf = malloc(ncap);
			if (!nbuf) {
				opts_seterr(err, errlen, "Out of memory");
				ret = -ENOMEM;
				goto out;
			}
			if (len)
				memcpy(nbuf, buf, len);
			if (buf) {
				OPENSSL_cleanse(buf, cap);
				free(buf);
			}
			buf = nbuf;
			cap = ncap;
		}
		r = keys_read_eintr(fd, buf + len, 1024);
		if (r < 0) {
			ret = -errno;
			opts_seterr(err, errlen, "Unable to read passphrase: %s", strerror(-ret));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > KEYS_PASSPHRASE_MAX) {
			opts_seterr(err, errlen, "Passphrase is too long.");
			ret = -EINVAL;
			goto out;
		}
	}
	*out = buf;
	*outlen = len;
	buf = NULL;

out:
	if (buf) {
		OPENSSL_cleanse(buf, cap);
		free(buf);
	}
	return ret;
}

static int keys_open(const char *path, bool passphrase, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		/* swtpm's two messages differ by the space before the colon. */
		opts_seterr(err, errlen, passphrase ? "Unable to open file %s : %s"
						    : "Unable to open file %s: %s",
			    path, strerror(e));
		return -e;
	}
	return fd;
}

static int keys_load_keyfile(int fd, enum keys_format format, size_t mode_len,
			     struct vtpm_key *key, char *err, size_t errlen)
{
	char buf[KEYS_FILE_READ_MAX + 1];
	size_t len = 0;
	int ret;

	ret = keys_read_keyfile(fd, buf, &len, err, errlen);
	if (ret < 0)
		goto out;
	if (format == KEYS_FORMAT_BINARY)
		ret = keys_parse_binary((const uint8_t *)buf, len, mode_len, key, err, errlen);
	else
		ret = keys_parse_hex(buf, mode_len, key, err, errlen);
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return ret;
}

static int keys_load_passphrase(int fd, enum keys_kdf kdf, size_t mode_len,
				struct vtpm_key *key, char *err, size_t errlen)
{
	uint8_t *pw = NULL;
	size_t pwlen = 0;
	int ret;

	ret = keys_read_passphrase(fd, &pw, &pwlen, err, errlen);
	if (ret < 0)
		return ret;
	ret = keys_derive(pw, pwlen, mode_len, kdf, key);
	if (ret < 0)
		opts_seterr(err, errlen, "Could not derive key from passphrase.");
	OPENSSL_cleanse(pw, pwlen);
	free(pw);
	return ret;
}

int keys_load(const char *optstr, struct vtpm_key *key, char *err, size_t errlen)
{
	struct opts_result res = { 0 };
	char operr[OPTS_ERRLEN];
	const char *file, *pwdfile, *s;
	enum keys_format format;
	size_t mode_len;
	int fd, pwdfd, rfd = -1;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	keys_wipe(key);

	ret = opts_parse(optstr, keys_opt_desc, &res, operr, sizeof(operr));
	if (ret < 0) {
		opts_seterr(err, errlen, "Error parsing key options: %s", operr);
		return ret;
	}

	file = opts_get_string(&res, "file", NULL);
	fd = opts_get_int(&res, "fd", -1);
	pwdfile = opts_get_string(&res, "pwdfile", NULL);
	pwdfd = opts_get_int(&res, "pwdfd", -1);
	/* swtpm tests for exactly -1 here, so fd=-2 gets past this check and then
	 * fails reading (as the passphrase fd, since fd < 0). */
	if (!file && fd == -1 && !pwdfile && pwdfd == -1) {
		opts_seterr(err, errlen,
			    "Either file=, fd=, pwdfile=, or pwdfd= is required for key option");
		ret = -EINVAL;
		goto out;
	}

	/* The format is checked even for passphrases, the kdf only for them. */
	s = opts_get_string(&res, "format", "hex");
	if (!strcmp(s, "hex")) {
		format = KEYS_FORMAT_HEX;
	} else if (!strcmp(s, "binary")) {
		format = KEYS_FORMAT_BINARY;
	} else {
		opts_seterr(err, errlen, "Unknown key format '%s'.", s);
		ret = -EINVAL;
		goto out;
	}

	s = opts_get_string(&res, "mode", "aes-128-cbc");
	if (!strcmp(s, "aes-cbc") || !strcmp(s, "aes-128-cbc")) {
		mode_len = 16;
	} else if (!strcmp(s, "aes-256-cbc")) {
		mode_len = 32;
	} else {
		opts_seterr(err, errlen, "Unknown encryption mode '%s'.", s);
		ret = -EINVAL;
		goto out;
	}

	if (file || fd >= 0) {
		if (file) {
			rfd = keys_open(file, false, err, errlen);
			if (rfd < 0) {
				ret = rfd;
				goto out;
			}
		} else {
			rfd = fd;
		}
		ret = keys_load_keyfile(rfd, format, mode_len, key, err, errlen);
	} else {
		enum keys_kdf kdf;

		s = opts_get_string(&res, "kdf", "pbkdf2");
		if (!strcmp(s, "pbkdf2")) {
			kdf = KEYS_KDF_PBKDF2;
		} else if (!strcmp(s, "sha512")) {
			kdf = KEYS_KDF_SHA512;
		} else {
			opts_seterr(err, errlen, "Unknown kdf '%s'.", s);
			ret = -EINVAL;
			goto out;
		}
		if (pwdfile) {
			rfd = keys_open(pwdfile, true, err, errlen);
			if (rfd < 0) {
				ret = rfd;
				goto out;
			}
		} else {
			/* May be negative (pwdfd=-1 with fd=-2): read() then fails with
			 * EBADF and reports it, as in swtpm. */
			rfd = pwdfd;
		}
		ret = keys_load_passphrase(rfd, kdf, mode_len, key, err, errlen);
	}
	/* Opened files and given fds alike are closed once read. */
	if (rfd >= 0)
		close(rfd);
	rfd = -1;
	if (ret < 0)
		goto out;

	/* swtpm removes both named paths, whichever one supplied the key. */
	if (opts_get_bool(&res, "remove", false)) {
		if (file)
			unlink(file);
		if (pwdfile)
			unlink(pwdfile);
	}

out:
	if (ret < 0)
		keys_wipe(key);
	opts_free(&res);
	return ret;
}
