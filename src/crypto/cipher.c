/* swtpm-compatible AES-CBC + HMAC-SHA256 encrypt-then-MAC of state payloads and
 * migration blobs, producing and consuming the data/HMAC/IV TLV triple. */
#include "crypto/cipher.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "crypto/container.h"

#define CIPHER_AES_BLOCK 16u

/* EVP_*Update take an int length; feed large buffers in pieces. A multiple of the
 * AES block size so only the last piece can be partial. */
#define CIPHER_CHUNK (1u << 30)

static bool cipher_key_ok(const struct vtpm_key *k)
{
	return k && (k->len == 16 || k->len == 32);
}

static const EVP_CIPHER *cipher_aes(const struct vtpm_key *k)
{
	/* The cipher follows the key length only; mode= just sized the key. */
	return k->len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
}

/* HMAC-SHA256 keyed with the AES key over a || b (b may be empty). */
static int cipher_hmac(const struct vtpm_key *k, const uint8_t *a, size_t alen,
		       const uint8_t *b, size_t blen, uint8_t out[CIPHER_HMAC_SIZE])
{
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t outl = 0;
	int ret = -EIO;

	mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	if (!mac)
		goto out;
	ctx = EVP_MAC_CTX_new(mac);
	if (!ctx)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, k->bytes, k->len, params))
		goto out;
	if (alen && !EVP_MAC_update(ctx, a, alen))
		goto out;
	if (blen && !EVP_MAC_update(ctx, b, blen))
		goto out;
	if (!EVP_MAC_final(ctx, out, &outl, CIPHER_HMAC_SIZE) || outl != CIPHER_HMAC_SIZE)
		goto out;
	ret = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ret;
}

/* AES-CBC over `in` with OpenSSL's padding off (swtpm pads itself). `out` must
 * hold len + 16 bytes. Any OpenSSL failure, including a length that is not a
 * multiple of the block size, is -EIO. */
static int cipher_cbc(const struct vtpm_key *k, const uint8_t iv[CIPHER_AES_BLOCK], bool enc,
		      const uint8_t *in, size_t len, uint8_t *out, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	size_t done = 0, total = 0;
	int outl, ret = -EIO;

	if (!ctx)
		return -ENOMEM;
	if (!EVP_CipherInit_ex(ctx, cipher_aes(k), NULL, k->bytes, iv, enc ? 1 : 0))
		goto out;
	if (!EVP_CIPHER_CTX_set_padding(ctx, 0))
		goto out;
	while (done < len) {
		size_t n = len - done < CIPHER_CHUNK ? len - done : CIPHER_CHUNK;

		if (!EVP_CipherUpdate(ctx, out + total, &outl, in + done, (int)n))
			goto out;
		total += (size_t)outl;
		done += n;
	}
	if (!EVP_CipherFinal_ex(ctx, out + total, &outl))
		goto out;
	total += (size_t)outl;
	*out_len = total;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

int cipher_encrypt(const struct vtpm_key *k, const uint8_t *plain, size_t len,
		   uint16_t data_tag, uint16_t iv_tag, uint8_t **tlvs, size_t *tlvs_len)
{
	uint8_t iv[VTPM_KEY_MAX], mac[CIPHER_HMAC_SIZE];
	uint8_t *padded = NULL, *ct = NULL, *out = NULL;
	size_t keylen, pad, padded_len = 0, ct_len = 0, size = 0;
	struct tlv t[3];
	int ret;

	if (!cipher_key_ok(k))
		return -EKEYREJECTED;
	if ((len && !plain) || !tlvs || !tlvs_len)
		return -EFAULT;
	keylen = k->len;
	/* Padded data must still fit a u32 TLV length. */
	if (len > UINT32_MAX - keylen)
		return -EOVERFLOW;

	/* swtpm's IV is as long as the key; CBC only uses the first block, but all
	 * of it is stored and MAC'ed. */
	if (RAND_bytes(iv, (int)keylen) != 1) {
		ret = -EIO;
		goto out;
	}

	/* PKCS#7-style padding, but with the key length as block size, so AES-256
	 * data is padded to a multiple of 32 (1..keylen bytes, never 0). */
	pad = keylen - len % keylen;
	padded_len = len + pad;
	padded = malloc(padded_len);
	ct = malloc(padded_len + CIPHER_AES_BLOCK);
	if (!padded || !ct) {
		ret = -ENOMEM;
		goto out;
	}
	if (len)
		memcpy(padded, plain, len);
	memset(padded + len, (int)pad, pad);

	ret = cipher_cbc(k, iv, true, padded, padded_len, ct, &ct_len);
	if (ret < 0)
		goto out;
	if (ct_len != padded_len) {
		ret = -EIO;
		goto out;
	}

	/* Encrypt-then-MAC over ciphertext || the full stored IV. */
	ret = cipher_hmac(k, ct, ct_len, iv, keylen, mac);
	if (ret < 0)
		goto out;

	t[0] = (struct tlv){ .tag = data_tag, .value = ct, .len = ct_len };
	t[1] = (struct tlv){ .tag = TLV_TAG_HMAC, .value = mac, .len = sizeof(mac) };
	t[2] = (struct tlv){ .tag = iv_tag, .value = iv, .len = keylen };
	ret = tlv_list_size(t, 3, &size);
	if (ret < 0)
		goto out;
	out = malloc(size);
	if (!out) {
		ret = -ENOMEM;
		goto out;
	}
	tlv_list_write(out, t, 3);
	*tlvs = out;
	*tlvs_len = size;
	ret = 0;

out:
	if (padded) {
		OPENSSL_cleanse(padded, padded_len);
		free(padded);
	}
	free(ct);
	OPENSSL_cleanse(iv, sizeof(iv));
	return ret;
}

int cipher_check_keylen(const struct vtpm_key *k, bool hdr_256bit)
{
	if (!cipher_key_ok(k))
		return -EKEYREJECTED;
	return k->len == (hdr_256bit ? 32u : 16u) ? 0 : -EKEYREJECTED;
}

int cipher_decrypt_raw(const struct vtpm_key *k, const uint8_t *ct, size_t ct_len,
		       const uint8_t *iv, size_t iv_len, uint8_t **plain, size_t *plain_len)
{
	uint8_t ivbuf[CIPHER_AES_BLOCK] = { 0 };
	uint8_t *out = NULL;
	size_t keylen, out_len = 0, pad;
	int ret;

	if (!cipher_key_ok(k))
		return -EKEYREJECTED;
	if ((ct_len && !ct) || (iv_len && !iv) || !plain || !plain_len)
		return -EFAULT;
	keylen = k->len;

	/* Order of checks as swtpm: IV length, minimum size, OpenSSL, padding. */
	if (iv) {
		if (iv_len != keylen)
			return -ERANGE;
		memcpy(ivbuf, iv, CIPHER_AES_BLOCK);
	}
	if (ct_len < keylen)
		return -ENODATA;

	out = malloc(ct_len + CIPHER_AES_BLOCK);
	if (!out)
		return -ENOMEM;
	ret = cipher_cbc(k, ivbuf, false, ct, ct_len, out, &out_len);
	if (ret < 0)
		goto out;
	if (out_len != ct_len) {
		ret = -EIO;
		goto out;
	}

	/* Padding with the key length as block size. The data was authenticated
	 * before (except legacy bodies), so this need not be constant-time. */
	pad = out[out_len - 1];
	if (pad < 1 || pad > keylen) {
		ret = -EILSEQ;
		goto out;
	}
	for (size_t i = out_len - pad; i < out_len; i++) {
		if (out[i] != pad) {
			ret = -EILSEQ;
			goto out;
		}
	}
	*plain = out;
	*plain_len = out_len - pad;
	out = NULL;
	ret = 0;

out:
	if (out) {
		OPENSSL_cleanse(out, ct_len + CIPHER_AES_BLOCK);
		free(out);
	}
	return ret;
}

int cipher_decrypt(const struct vtpm_key *k, const uint8_t *tlv_list, size_t len,
		   uint16_t data_tag, uint16_t iv_tag, uint8_t **plain, size_t *plain_len)
{
	struct tlv hmac, data, ivt;
	uint8_t mac[CIPHER_HMAC_SIZE];
	bool have_iv;
	int ret;

	if (!cipher_key_ok(k))
		return -EKEYREJECTED;
	if (len && !tlv_list)
		return -EFAULT;

	if (tlv_find(tlv_list, len, TLV_TAG_HMAC, &hmac) < 0 ||
	    tlv_find(tlv_list, len, data_tag, &data) < 0)
		return -ENOENT;
	/* The IV is optional (older swtpm versions wrote none): then the IV is all
	 * zero and the MAC covers the ciphertext alone. */
	have_iv = tlv_find(tlv_list, len, iv_tag, &ivt) == 0;

	if (hmac.len < CIPHER_HMAC_SIZE)
		return -EMSGSIZE;
	ret = cipher_hmac(k, data.value, data.len, have_iv ? ivt.value : NULL,
			  have_iv ? ivt.len : 0, mac);
	if (ret < 0)
		return ret;
	/* Only the first 32 bytes of a longer HMAC TLV count, as in swtpm. */
	if (CRYPTO_memcmp(mac, hmac.value, CIPHER_HMAC_SIZE) != 0)
		return -EBADE;

	return cipher_decrypt_raw(k, data.value, data.len, have_iv ? ivt.value : NULL,
				  have_iv ? ivt.len : 0, plain, plain_len);
}

uint32_t cipher_err_to_tpm(int err)
{
	switch (err) {
	case 0:
		return TPM_SUCCESS;
	case -EKEYREJECTED:
		return TPM_BAD_KEY_PROPERTY;
	case -EBADE:
	case -ERANGE:
	case -ENODATA:
	case -EILSEQ:
		return TPM_DECRYPT_ERROR;
	default:
		/* -ENOENT, -EMSGSIZE, -EIO, -EOVERFLOW, -ENOMEM, -EFAULT, unknown. */
		return TPM_FAIL;
	}
}
