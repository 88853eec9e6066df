/* State-file and state-blob encoding on top of the container codec and the cipher,
 * with swtpm 0.7.1's rules for which key applies when. */
#include "crypto/state_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "vtpm/ctrl_proto.h"

#define STATE_SHA256_SIZE 32u

/* NULL / len 0 = not configured; 16 / 32 = usable; anything else is refused so a
 * corrupt key never silently means "plain". */
static int state_key_get(const struct vtpm_key *k, const struct vtpm_key **out)
{
	if (!k || k->len == 0) {
		*out = NULL;
		return 0;
	}
	if (k->len != 16 && k->len != 32)
		return -EKEYREJECTED;
	*out = k;
	return 0;
}

static void state_free_secret(uint8_t *p, size_t len)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

static int state_dup(const uint8_t *src, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *p = malloc(len ? len : 1);

	if (!p)
		return -ENOMEM;
	if (len)
		memcpy(p, src, len);
	*out = p;
	*out_len = len;
	return 0;
}

/* Header (version 2, min 1, hdrsize 10) + an already serialised TLV body. */
static int state_wrap(uint16_t flags, const uint8_t *body, size_t body_len, uint8_t **out,
		      size_t *out_len)
{
	uint8_t *buf;
	size_t total;

	if (body_len > UINT32_MAX - CONTAINER_HDR_SIZE)
		return -EOVERFLOW;
	total = CONTAINER_HDR_SIZE + body_len;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	buf[0] = CONTAINER_VERSION;
	buf[1] = CONTAINER_MIN_VERSION;
	buf[2] = 0;
	buf[3] = CONTAINER_HDR_SIZE;
	buf[4] = (uint8_t)(flags >> 8);
	buf[5] = (uint8_t)flags;
	buf[6] = (uint8_t)(total >> 24);
	buf[7] = (uint8_t)(total >> 16);
	buf[8] = (uint8_t)(total >> 8);
	buf[9] = (uint8_t)total;
	if (body_len)
		memcpy(buf + CONTAINER_HDR_SIZE, body, body_len);
	*out = buf;
	*out_len = total;
	return 0;
}

/* A single serialised TLV record. */
static int state_tlv1(uint16_t tag, const uint8_t *value, size_t len, uint8_t **out,
		      size_t *out_len)
{
	struct tlv t = { .tag = tag, .value = value, .len = len };
	size_t size = 0;
	uint8_t *buf;
	int r;

	r = tlv_list_size(&t, 1, &size);
	if (r < 0)
		return r;
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	tlv_list_write(buf, &t, 1);
	*out = buf;
	*out_len = size;
	return 0;
}

/*
 * Version-1 (legacy) encrypted data: AES-CBC with a zero IV and no TLVs whose
 * plaintext is SHA-256(data) || data. Returns data in a malloc'ed buffer.
 */
static int state_legacy_decrypt(const struct vtpm_key *k, const uint8_t *buf, size_t len,
				uint8_t **payload, size_t *payload_len)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	int ret;

	ret = cipher_decrypt_raw(k, buf, len, NULL, 0, &plain, &plain_len);
	if (ret < 0)
		return ret;
	if (plain_len < STATE_SHA256_SIZE) {
		ret = -EUCLEAN;
		goto out;
	}
	if (!EVP_Digest(plain + STATE_SHA256_SIZE, plain_len - STATE_SHA256_SIZE, md, &mdlen,
			EVP_sha256(), NULL) ||
	    mdlen != STATE_SHA256_SIZE) {
		ret = -EIO;
		goto out;
	}
	if (CRYPTO_memcmp(md, plain, STATE_SHA256_SIZE) != 0) {
		ret = -EUCLEAN;
		goto out;
	}
	ret = state_dup(plain + STATE_SHA256_SIZE, plain_len - STATE_SHA256_SIZE, payload,
			payload_len);
out:
	state_free_secret(plain, plain_len);
	return ret;
}

/* One encrypted layer of a body of header version `version`: 1 -> legacy, 2 ->
 * key size from the header flag, then the TLV triple. */
static int state_decrypt_layer(const struct vtpm_key *k, uint8_t version, bool hdr_256bit,
			       const uint8_t *body, size_t body_len, uint16_t data_tag,
			       uint16_t iv_tag, uint8_t **out, size_t *out_len)
{
	int r;

	switch (version) {
	case 1:
		return state_legacy_decrypt(k, body, body_len, out, out_len);
	case 2:
		r = cipher_check_keylen(k, hdr_256bit);
		if (r < 0)
			return r;
		return cipher_decrypt(k, body, body_len, data_tag, iv_tag, out, out_len);
	default:
		return -EPROTO;
	}
}

int state_file_encode(const struct vtpm_key *statekey, const uint8_t *payload, size_t len,
		      uint8_t **out, size_t *out_len)
{
	const struct vtpm_key *k;
	uint8_t *body = NULL;
	size_t body_len = 0;
	uint16_t flags;
	int r;

	if ((len && !payload) || !out || !out_len)
		return -EFAULT;
	r = state_key_get(statekey, &k);
	if (r < 0)
		return r;
	if (!k)
		return container_wrap_file(payload, len, out, out_len);

	r = cipher_encrypt(k, payload, len, TLV_TAG_ENCRYPTED_DATA, TLV_TAG_IVEC_ENCRYPTED_DATA,
			   &body, &body_len);
	if (r < 0)
		return r;
	flags = CONTAINER_FLAG_ENCRYPTED;
	if (k->len == 32)
		flags |= CONTAINER_FLAG_ENCRYPTED_256BIT_KEY;
	r = state_wrap(flags, body, body_len, out, out_len);
	free(body);
	return r;
}

int state_file_decode(const struct vtpm_key *statekey, const uint8_t *buf, size_t len,
		      uint8_t **payload, size_t *payload_len)
{
	struct container_view v;
	const struct vtpm_key *k;
	int r;

	if ((len && !buf) || !payload || !payload_len)
		return -EFAULT;
	r = state_key_get(statekey, &k);
	if (r < 0)
		return r;
	if (!k)
		return container_unwrap_file(buf, len, payload, payload_len);

	/* 0.7.1: no valid header means a headerless (version 1) file. */
	if (container_parse(buf, len, &v) < 0)
		return state_legacy_decrypt(k, buf, len, payload, payload_len);
	return state_decrypt_layer(k, v.hdr.version,
				   v.hdr.flags & CONTAINER_FLAG_ENCRYPTED_256BIT_KEY, v.body,
				   v.body_len, TLV_TAG_ENCRYPTED_DATA, TLV_TAG_IVEC_ENCRYPTED_DATA,
				   payload, payload_len);
}

int state_blob_encode(const struct vtpm_key *statekey, const struct vtpm_key *migkey,
		      bool decrypted_requested, const uint8_t *payload, size_t len,
		      uint8_t **out, size_t *out_len, uint32_t *state_flags_out)
{
	const struct vtpm_key *sk, *mk;
	uint8_t *inner = NULL, *outer = NULL;
	size_t inner_len = 0, outer_len = 0;
	uint16_t flags = CONTAINER_FLAG_MIGRATION_DATA;
	uint32_t state_flags = 0;
	int r;

	if ((len && !payload) || !out || !out_len)
		return -EFAULT;
	r = state_key_get(statekey, &sk);
	if (r < 0)
		return r;
	r = state_key_get(migkey, &mk);
	if (r < 0)
		return r;

	if (sk && !decrypted_requested) {
		r = cipher_encrypt(sk, payload, len, TLV_TAG_ENCRYPTED_DATA,
				   TLV_TAG_IVEC_ENCRYPTED_DATA, &inner, &inner_len);
		if (r < 0)
			goto out;
		flags |= CONTAINER_FLAG_ENCRYPTED;
		if (sk->len == 32)
			flags |= CONTAINER_FLAG_ENCRYPTED_256BIT_KEY;
		state_flags = PTM_STATE_FLAG_ENCRYPTED;
	} else {
		r = state_tlv1(TLV_TAG_DATA, payload, len, &inner, &inner_len);
		if (r < 0)
			goto out;
	}

	if (mk) {
		r = cipher_encrypt(mk, inner, inner_len, TLV_TAG_ENCRYPTED_MIGRATION_DATA,
				   TLV_TAG_IVEC_ENCRYPTED_MIGRATION_DATA, &outer, &outer_len);
		if (r < 0)
			goto out;
		flags |= CONTAINER_FLAG_MIGRATION_ENCRYPTED;
		if (mk->len == 32)
			flags |= CONTAINER_FLAG_MIGRATION_256BIT_KEY;
	} else {
		r = state_tlv1(TLV_TAG_MIGRATION_DATA, inner, inner_len, &outer, &outer_len);
		if (r < 0)
			goto out;
	}

	r = state_wrap(flags, outer, outer_len, out, out_len);
	if (r < 0)
		goto out;
	if (state_flags_out)
		*state_flags_out = state_flags;

out:
	/* A plain inner list holds the payload in clear. */
	state_free_secret(inner, inner_len);
	state_free_secret(outer, outer_len);
	return r;
}

int state_blob_decode(const struct vtpm_key *statekey, const struct vtpm_key *migkey,
		      uint32_t req_state_flags, const uint8_t *buf, size_t len,
		      uint8_t **payload, size_t *payload_len)
{
	const struct vtpm_key *sk, *mk;
	struct container_view v;
	uint8_t *inner_alloc = NULL;
	const uint8_t *inner, *plain;
	size_t inner_len = 0, plain_len;
	int r;

	if (!payload || !payload_len)
		return -EFAULT;
	if (len == 0)
		return CONTAINER_EMPTY;
	if (!buf)
		return -EFAULT;
	r = state_key_get(statekey, &sk);
	if (r < 0)
		return r;
	r = state_key_get(migkey, &mk);
	if (r < 0)
		return r;

	r = container_parse(buf, len, &v);
	if (r < 0)
		return r;
	/* A header without body tells libtpms "this state is empty". */
	if (v.body_len == 0)
		return CONTAINER_EMPTY;

	if (v.hdr.flags & CONTAINER_FLAG_MIGRATION_ENCRYPTED) {
		if (!mk)
			return -ENOKEY;
		r = state_decrypt_layer(mk, v.hdr.version,
					v.hdr.flags & CONTAINER_FLAG_MIGRATION_256BIT_KEY, v.body,
					v.body_len, TLV_TAG_ENCRYPTED_MIGRATION_DATA,
					TLV_TAG_IVEC_ENCRYPTED_MIGRATION_DATA, &inner_alloc,
					&inner_len);
		if (r < 0)
			return r;
		inner = inner_alloc;
	} else {
		/* Accepted even with a migration key configured, as in swtpm. */
		r = container_body_plain(v.hdr.version, v.body, v.body_len,
					 TLV_TAG_MIGRATION_DATA, &inner, &inner_len);
		if (r < 0)
			return r;
	}

	if ((req_state_flags & PTM_STATE_FLAG_ENCRYPTED) ||
	    (v.hdr.flags & CONTAINER_FLAG_ENCRYPTED)) {
		if (!sk) {
			r = -ENOKEY;
			goto out;
		}
		r = state_decrypt_layer(sk, v.hdr.version,
					v.hdr.flags & CONTAINER_FLAG_ENCRYPTED_256BIT_KEY, inner,
					inner_len, TLV_TAG_ENCRYPTED_DATA,
					TLV_TAG_IVEC_ENCRYPTED_DATA, payload, payload_len);
		goto out;
	}

	r = container_body_plain(v.hdr.version, inner, inner_len, TLV_TAG_DATA, &plain,
				 &plain_len);
	if (r < 0)
		goto out;
	r = state_dup(plain, plain_len, payload, payload_len);

out:
	state_free_secret(inner_alloc, inner_len);
	return r;
}

uint32_t state_codec_err_to_tpm(int err)
{
	switch (err) {
	case 0:
	case CONTAINER_EMPTY:
		return TPM_SUCCESS;
	case -EINVAL:
		return TPM_BAD_PARAMETER;
	case -EPROTONOSUPPORT:
		return TPM_BAD_VERSION;
	case -EBADMSG:
		return TPM_BAD_DATASIZE;
	case -ENOKEY:
		return TPM_KEYNOTFOUND;
	default:
		/* -EUCLEAN, -EPROTO and the rest fall to TPM_FAIL there. */
		return cipher_err_to_tpm(err);
	}
}
