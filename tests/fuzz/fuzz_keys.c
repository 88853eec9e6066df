/* Fuzz target: key-file contents for --key/--migration-key
 * (src/crypto/keys.h): hex and binary key files as keys_load reads them (at
 * most KEYS_FILE_READ_MAX bytes, NUL-terminated), and the sha512 passphrase
 * KDF. Checks: a parsed key is 16 or 32 bytes and at least the mode's length;
 * every hex pair converts as glibc's sscanf("%2hhx") does (what swtpm uses); a
 * failed parse leaves no key behind. */
#include <errno.h>

#include "crypto/keys.h"
#include "fuzz_common.h"

static void check_hex(const char *text, size_t mode_len)
{
	struct vtpm_key key;
	char err[256];
	size_t off = 0;
	int r;

	memset(&key, 0xa5, sizeof(key));
	r = keys_parse_hex(text, mode_len, &key, err, sizeof(err));
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
		FUZZ_CHECK(key.len == 0);
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		return;
	}
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(key.len == 16 || key.len == 32);
	FUZZ_CHECK(key.len >= mode_len);
	if (text[0] == '0' && text[1] == 'x')
		off = 2;
	for (size_t i = 0; i < key.len; i++) {
		char pair[3] = { text[off + 2 * i], text[off + 2 * i + 1], '\0' };
		unsigned char b = 0;
		int n = 0;

		FUZZ_CHECK(pair[0] != '\0' && pair[1] != '\0');
		FUZZ_CHECK(sscanf(pair, "%2hhx%n", &b, &n) == 1 && n == 2);
		FUZZ_CHECK(b == key.bytes[i]);
	}
	/* what follows the key is the end or whitespace */
	{
		char c = text[off + 2 * key.len];

		FUZZ_CHECK(c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
			   c == '\v' || c == '\f');
	}
	keys_wipe(&key);
	FUZZ_CHECK(key.len == 0);
}

static void check_binary(const uint8_t *data, size_t len, size_t mode_len)
{
	struct vtpm_key key;
	char err[256];
	int r;

	r = keys_parse_binary(data, len, mode_len, &key, err, sizeof(err));
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL && key.len == 0);
		return;
	}
	FUZZ_CHECK(len == 16 || len == 32);
	FUZZ_CHECK(len <= mode_len);
	FUZZ_CHECK(key.len == len && memcmp(key.bytes, data, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vtpm_key k1, k2;
	size_t mode_len, n;
	uint8_t cfg;
	char *text;

	if (size < 1)
		return 0;
	cfg = data[0];
	data++;
	size--;
	/* mostly the two valid modes; sometimes a bad one */
	mode_len = (cfg & 3) == 3 ? (size_t)(cfg >> 2) : (cfg & 1) ? 32u : 16u;

	/* what a single read() of the key file returns */
	n = size < KEYS_FILE_READ_MAX ? size : KEYS_FILE_READ_MAX;
	text = fuzz_strdup(data, n);
	if (mode_len == 16 || mode_len == 32) {
		check_hex(text, mode_len);
		check_binary(data, n, mode_len);
	} else {
		FUZZ_CHECK(keys_parse_hex(text, mode_len, &k1, NULL, 0) == -EINVAL);
		FUZZ_CHECK(keys_parse_binary(data, n, mode_len, &k1, NULL, 0) == -EINVAL);
	}
	free(text);

	/* the sha512 KDF over the whole input as a passphrase */
	if (mode_len == 16 || mode_len == 32) {
		FUZZ_CHECK(keys_derive(data, size, mode_len, KEYS_KDF_SHA512, &k1) == 0);
		FUZZ_CHECK(keys_derive(data, size, mode_len, KEYS_KDF_SHA512, &k2) == 0);
		FUZZ_CHECK(k1.len == mode_len && k2.len == mode_len);
		FUZZ_CHECK(memcmp(k1.bytes, k2.bytes, mode_len) == 0);
		keys_wipe(&k1);
		keys_wipe(&k2);
	}
	return 0;
}
