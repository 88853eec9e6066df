/* Fuzz target: the vtpmd state file of export-state/import-state
 * (src/manager/statefile.h). Byte 0 selects the expected TPM version (-1, 0,
 * 1) and whether to repair the blobs' SHA-256 values in the header (so that
 * the fuzzer reaches the success path); the rest is the file.
 * Checks: an accepted file's blobs lie inside it, back to back, ending at its
 * end, within SF_MAX_BLOB; a rejected one says why; decode -> encode -> decode
 * gives the same state. */
#include <errno.h>
#include <openssl/evp.h>

#include "fuzz_common.h"
#include "manager/statefile.h"
#include "vtpm/ctrl_proto.h"

static void sha_hex(const uint8_t *p, size_t n, char out[65])
{
	static const char hx[] = "0123456789abcdef";
	uint8_t md[32];
	unsigned int mdlen = 0;

	if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL))
		abort();
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
}

/* Put the right digests into the first three "sha256":"<64>" of the header. */
static void repair(uint8_t *buf, size_t len, const struct sf_state *s)
{
	static const char key[] = "\"sha256\":\"";
	uint8_t *nl = memchr(buf, '\n', len), *p = buf;
	const uint8_t *blob;
	size_t need = 0;
	int found = 0;

	if (!nl)
		return;
	for (int i = 0; i < SF_NBLOBS; i++)
		need += s->blobs[i].len;
	if ((size_t)(buf + len - (nl + 1)) != need)
		return;
	blob = nl + 1;
	while (found < SF_NBLOBS) {
		uint8_t *k = memmem(p, (size_t)(nl - p), key, sizeof(key) - 1);
		char hex[65];

		if (!k || k + sizeof(key) - 1 + 64 > nl)
			return;
		k += sizeof(key) - 1;
		sha_hex(blob, s->blobs[found].len, hex);
		memcpy(k, hex, 64);
		blob += s->blobs[found].len;
		p = k + 64;
		found++;
	}
}

static void check_ok(const uint8_t *buf, size_t len, const struct sf_state *s)
{
	const uint8_t *nl = memchr(buf, '\n', len), *p;

	FUZZ_CHECK(nl != NULL && (size_t)(nl - buf) < SF_MAX_HEADER);
	FUZZ_CHECK(strlen(s->source_id) <= MGR_ID_MAX);
	/* logged and echoed to clients: an instance id or nothing */
	FUZZ_CHECK(!s->source_id[0] ||
		   mgr_id_check(s->source_id, strlen(s->source_id), NULL) == 0);
	p = nl + 1;
	for (int i = 0; i < SF_NBLOBS; i++) {
		FUZZ_CHECK(s->blobs[i].type == (uint32_t)(i + 1));
		FUZZ_CHECK((s->blobs[i].flags & ~PTM_STATE_FLAG_ENCRYPTED) == 0);
		FUZZ_CHECK(s->blobs[i].len <= SF_MAX_BLOB);
		FUZZ_CHECK(s->blobs[i].len == 0 ? s->blobs[i].data == NULL : s->blobs[i].data == p);
		p += s->blobs[i].len;
	}
	FUZZ_CHECK(p == buf + len);
}

static void round_trip(const struct sf_state *s)
{
	struct sf_state s2;
	uint8_t *enc = NULL;
	size_t enc_len = 0;
	char why[256];
	int r;

	r = sf_encode(s, &enc, &enc_len);
	FUZZ_CHECK(r == 0);
	r = sf_decode(enc, enc_len, s->tpm2 ? 1 : 0, &s2, why, sizeof(why));
	if (r != 0) {
		fprintf(stderr, "re-encoded state file rejected: %s\n", why);
		FUZZ_CHECK(0);
	}
	FUZZ_CHECK(s2.tpm2 == s->tpm2 && s2.created == s->created);
	FUZZ_CHECK(strcmp(s2.source_id, s->source_id) == 0);
	for (int i = 0; i < SF_NBLOBS; i++) {
		FUZZ_CHECK(s2.blobs[i].type == s->blobs[i].type);
		FUZZ_CHECK(s2.blobs[i].flags == s->blobs[i].flags);
		FUZZ_CHECK(s2.blobs[i].len == s->blobs[i].len);
		FUZZ_CHECK(s->blobs[i].len == 0 ||
			   memcmp(s2.blobs[i].data, s->blobs[i].data, s->blobs[i].len) == 0);
	}
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sf_state s;
	char why[256];
	int want, r;
	uint8_t *buf;

	if (size < 1)
		return 0;
	want = (int)((data[0] & 0x7f) % 3) - 1;
	buf = fuzz_dup(data + 1, size - 1);
	size--;

	why[0] = '\0';
	r = sf_decode(buf, size, want, &s, why, sizeof(why));
	if (r != 0 && (data[0] & 0x80) && strncmp(why, "checksum mismatch", 17) == 0) {
		repair(buf, size, &s);
		why[0] = '\0';
		r = sf_decode(buf, size, want, &s, why, sizeof(why));
	}
	if (r != 0) {
		FUZZ_CHECK(r == -EINVAL || r == -ENOMEM || r == -EIO);
		FUZZ_CHECK(r != -EINVAL || why[0] != '\0');
		free(buf);
		return 0;
	}
	check_ok(buf, size, &s);
	if (want >= 0)
		FUZZ_CHECK(s.tpm2 == (want == 1));
	round_trip(&s);
	free(buf);
	return 0;
}
