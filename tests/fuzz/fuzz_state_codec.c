/* Fuzz target: state files and SET_STATEBLOB blobs with swtpm's key handling
 * (src/crypto/state_codec.h), plain and encrypted, with fixed test keys.
 *
 * Input: byte 0 selects the configuration (state key none/AES-128/AES-256/bad
 * length, migration key likewise, the request's state flags, and whether to
 * repair the HMACs), the rest is the file/blob. With "repair", the harness
 * writes the correct HMAC-SHA256 into the HMAC record of each encrypted layer
 * it can reach, so that the fuzzer gets past authentication to the IV, length
 * and padding checks behind it (an attacker without the key cannot, but a
 * corrupt file written with the key can).
 * Checks: every error maps to a non-zero TPM result; decode -> encode ->
 * decode gives the same payload; encode -> decode of the input as a payload
 * gives it back. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crypto/state_codec.h"
#include "fuzz_common.h"
#include "vtpm/ctrl_proto.h"

static void make_key(struct vtpm_key *k, unsigned sel, uint8_t salt)
{
	memset(k, 0, sizeof(*k));
	for (unsigned i = 0; i < VTPM_KEY_MAX; i++)
		k->bytes[i] = (uint8_t)(i * 13 + salt);
	switch (sel & 3) {
	case 0:
		k->len = 0;
		break;
	case 1:
		k->len = 16;
		break;
	case 2:
		k->len = 32;
		break;
	default:
		k->len = 20; /* never valid */
		break;
	}
}

static bool key_ok(const struct vtpm_key *k)
{
	return k->len == 16 || k->len == 32;
}

/* Rewrite the HMAC record of an encrypted TLV list in place. */
static void fix_hmac(uint8_t *list, size_t len, const struct vtpm_key *k, uint16_t data_tag,
		     uint16_t iv_tag)
{
	struct tlv mac, dat, iv;
	uint8_t md[32], *msg;
	unsigned int mdlen = 0;
	bool have_iv;

	if (!key_ok(k) || tlv_find(list, len, TLV_TAG_HMAC, &mac) < 0 ||
	    tlv_find(list, len, data_tag, &dat) < 0 || mac.len < 32)
		return;
	have_iv = tlv_find(list, len, iv_tag, &iv) == 0;
	msg = malloc(dat.len + (have_iv ? iv.len : 0) + 1);
	if (!msg)
		abort();
	memcpy(msg, dat.value, dat.len);
	if (have_iv)
		memcpy(msg + dat.len, iv.value, iv.len);
	if (HMAC(EVP_sha256(), k->bytes, (int)k->len, msg, dat.len + (have_iv ? iv.len : 0), md,
		 &mdlen) &&
	    mdlen == 32)
		memcpy((uint8_t *)mac.value, md, 32);
	free(msg);
}

static void check_err(int r)
{
	if (r < 0)
		FUZZ_CHECK(state_codec_err_to_tpm(r) != 0);
	else
		FUZZ_CHECK(state_codec_err_to_tpm(r) == 0);
}

static void do_file(const struct vtpm_key *sk, uint8_t *buf, size_t len, bool repair)
{
	struct container_view v;
	uint8_t *pl = NULL, *enc = NULL, *pl2 = NULL;
	size_t pl_len = 0, enc_len = 0, pl2_len = 0;
	int r;

	if (repair && container_parse(buf, len, &v) == 0 && v.hdr.version == 2)
		fix_hmac(buf + CONTAINER_HDR_SIZE, v.body_len, sk, TLV_TAG_ENCRYPTED_DATA,
			 TLV_TAG_IVEC_ENCRYPTED_DATA);
	r = state_file_decode(sk, buf, len, &pl, &pl_len);
	check_err(r);
	FUZZ_CHECK(r <= 0);
	if (r < 0)
		return;
	FUZZ_CHECK(pl != NULL && pl_len <= len);
	FUZZ_CHECK(state_file_encode(sk, pl, pl_len, &enc, &enc_len) == 0);
	FUZZ_CHECK(state_file_decode(sk, enc, enc_len, &pl2, &pl2_len) == 0);
	FUZZ_CHECK(pl2_len == pl_len && memcmp(pl, pl2, pl_len) == 0);
	free(pl);
	free(enc);
	free(pl2);
}

static void do_blob(const struct vtpm_key *sk, const struct vtpm_key *mk, uint32_t req_flags,
		    uint8_t *buf, size_t len, bool repair)
{
	struct container_view v;
	uint8_t *pl = NULL, *enc = NULL, *pl2 = NULL;
	size_t pl_len = 0, enc_len = 0, pl2_len = 0;
	uint32_t sflags = 0;
	bool inner_enc;
	int r;

	if (repair && container_parse(buf, len, &v) == 0 && v.hdr.version == 2) {
		uint8_t *body = buf + CONTAINER_HDR_SIZE;
		struct tlv t;

		if (v.hdr.flags & CONTAINER_FLAG_MIGRATION_ENCRYPTED)
			fix_hmac(body, v.body_len, mk, TLV_TAG_ENCRYPTED_MIGRATION_DATA,
				 TLV_TAG_IVEC_ENCRYPTED_MIGRATION_DATA);
		else if (tlv_find(body, v.body_len, TLV_TAG_MIGRATION_DATA, &t) == 0)
			fix_hmac((uint8_t *)t.value, t.len, sk, TLV_TAG_ENCRYPTED_DATA,
				 TLV_TAG_IVEC_ENCRYPTED_DATA);
	}
	inner_enc = (req_flags & PTM_STATE_FLAG_ENCRYPTED) ||
		    (len >= 6 && ((buf[4] << 8 | buf[5]) & CONTAINER_FLAG_ENCRYPTED));
	r = state_blob_decode(sk, mk, req_flags, buf, len, &pl, &pl_len);
	check_err(r);
	if (r != 0)
		return;
	FUZZ_CHECK(pl != NULL);
	/* the same state, exported again as GET_STATEBLOB would, reads back */
	FUZZ_CHECK(state_blob_encode(sk, mk, !inner_enc, pl, pl_len, &enc, &enc_len, &sflags) == 0);
	FUZZ_CHECK(sflags == (inner_enc && key_ok(sk) ? PTM_STATE_FLAG_ENCRYPTED : 0u));
	FUZZ_CHECK(state_blob_decode(sk, mk, sflags, enc, enc_len, &pl2, &pl2_len) == 0);
	FUZZ_CHECK(pl2_len == pl_len && memcmp(pl, pl2, pl_len) == 0);
	free(pl);
	free(enc);
	free(pl2);
}

/* The input as a payload: encode, then decode must give it back. */
static void do_encode(const struct vtpm_key *sk, const struct vtpm_key *mk, bool decrypted,
		      const uint8_t *data, size_t len)
{
	uint8_t *enc = NULL, *pl = NULL;
	size_t enc_len = 0, pl_len = 0;
	uint32_t sflags = 0;
	int r;

	r = state_blob_encode(sk, mk, decrypted, data, len, &enc, &enc_len, &sflags);
	if (sk->len == 20 || mk->len == 20) {
		FUZZ_CHECK(r == -EKEYREJECTED);
		return;
	}
	FUZZ_CHECK(r == 0);
	r = state_blob_decode(sk, mk, sflags, enc, enc_len, &pl, &pl_len);
	/* an empty inner list is never produced: the header-only case cannot
	 * happen, so the payload always comes back */
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(pl_len == len && (len == 0 || memcmp(pl, data, len) == 0));
	free(enc);
	free(pl);

	enc = pl = NULL;
	FUZZ_CHECK(state_file_encode(sk, data, len, &enc, &enc_len) == 0);
	FUZZ_CHECK(state_file_decode(sk, enc, enc_len, &pl, &pl_len) == 0);
	FUZZ_CHECK(pl_len == len && (len == 0 || memcmp(pl, data, len) == 0));
	free(enc);
	free(pl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vtpm_key sk, mk;
	uint32_t req_flags = 0;
	bool repair;
	uint8_t cfg, *buf;

	if (size < 1)
		return 0;
	cfg = data[0];
	data++;
	size--;
	make_key(&sk, cfg, 1);
	make_key(&mk, cfg >> 2, 101);
	if (cfg & 0x10)
		req_flags |= PTM_STATE_FLAG_ENCRYPTED;
	if (cfg & 0x20)
		req_flags |= PTM_STATE_FLAG_DECRYPTED;
	repair = cfg & 0x40;

	buf = fuzz_dup(data, size);
	do_file(&sk, buf, size, repair);
	free(buf);

	buf = fuzz_dup(data, size);
	do_blob(&sk, &mk, req_flags, buf, size, repair);
	free(buf);

	/* encoding is costly (fresh IVs, MACs): only for short inputs */
	if ((cfg & 0x80) && size <= 512)
		do_encode(&sk, &mk, req_flags & PTM_STATE_FLAG_DECRYPTED, data, size);
	return 0;
}
