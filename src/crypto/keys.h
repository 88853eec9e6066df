/* Loading of the --key / --migration-key AES keys from key files, fds or
 * passphrases, following swtpm 0.7.1's parsing rules (spec state-files.md §5). */
#ifndef VTPM_KEYS_H
#define VTPM_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define VTPM_KEY_MAX 32u

/* An AES key; the cipher is chosen by `len` alone (16 -> AES-128, 32 -> AES-256). */
struct vtpm_key {
	uint8_t bytes[VTPM_KEY_MAX];
	size_t len; /* 0 = none, 16 or 32 */
};

enum keys_format {
	KEYS_FORMAT_HEX = 0,
	KEYS_FORMAT_BINARY,
};

enum keys_kdf {
	KEYS_KDF_PBKDF2 = 0,
	KEYS_KDF_SHA512,
};

/* A key file is read with a single read() of at most this many bytes
 * ("0x" + 64 digits + one terminator), exactly as swtpm does. */
#define KEYS_FILE_READ_MAX 67u

/* Passphrases are read whole; this cap only guards against reading an endless
 * stream into memory (swtpm has none). */
#define KEYS_PASSPHRASE_MAX (1024u * 1024u)

/*
 * Parse a --key / --migration-key option value and load the key it names:
 *   file=PATH | fd=N | pwdfile=PATH | pwdfd=N   (precedence in that order)
 *   mode=aes-cbc|aes-128-cbc|aes-256-cbc       (default aes-128-cbc)
 *   format=hex|binary                           (key files; default hex)
 *   kdf=sha512|pbkdf2                           (passphrases; default pbkdf2)
 *   remove[=true|false]                         (unlink file=/pwdfile= paths after
 *                                                a successful load)
 * An fd that is read is closed afterwards. Validation order as swtpm: option
 * syntax, a source present, format, mode, then the source (kdf only for
 * passphrases).
 * Returns 0 with *key filled, or a negative errno with a message in err:
 *   -EINVAL  option syntax/value errors and malformed key content
 *   -ENOMEM
 *   -errno   from open()/read() of the file or fd
 * On failure *key is wiped (len 0).
 */
int keys_load(const char *optstr, struct vtpm_key *key, char *err, size_t errlen);

/*
 * Key-file content in hex (§5.2): optional leading "0x", pairs converted as
 * glibc's sscanf("%2hhx") does (so "+f", "-1" and "0x" are accepted as a pair,
 * like in swtpm), stopping at NUL, whitespace or after `mode_len` bytes; the next
 * character must be NUL or whitespace. The result must be 16 or 32 bytes and at
 * least mode_len. `text` must be NUL-terminated. 0 or -EINVAL (message in err).
 */
int keys_parse_hex(const char *text, size_t mode_len, struct vtpm_key *key, char *err,
		   size_t errlen);

/*
 * Key-file content in binary (§5.3): the bytes are the key; longer than mode_len
 * is an error, and the length must be 16 or 32 (a 16-byte key with a 256-bit mode
 * is accepted and used as AES-128). 0 or -EINVAL.
 */
int keys_parse_binary(const uint8_t *data, size_t len, size_t mode_len, struct vtpm_key *key,
		      char *err, size_t errlen);

/*
 * Derive a key of keylen (16 or 32) bytes from passphrase bytes (§5.4):
 * sha512 -> first keylen bytes of SHA-512(pw); pbkdf2 -> PBKDF2-HMAC-SHA512 with
 * salt "swtpm" and 1000 iterations. 0, -EINVAL (bad keylen) or -EIO (OpenSSL).
 */
int keys_derive(const uint8_t *pw, size_t pwlen, size_t keylen, enum keys_kdf kdf,
		struct vtpm_key *key);

/* Overwrite the key material (OPENSSL_cleanse) and set len to 0. */
void keys_wipe(struct vtpm_key *key);

#endif
