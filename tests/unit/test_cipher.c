/* Unit tests for the swtpm-compatible AES-CBC + HMAC-SHA256 layer (src/crypto/cipher.c):
 * round trips, swtpm's quirks, and every decrypt check against crafted TLV lists. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crypto/cipher.h"
#include "crypto/container.h"

/* ---- independent reference helpers (OpenSSL one-shots, no cipher.c code) ---- */

static struct vtpm_key mkkey(size_t len, uint8_t seed)
{
	struct vtpm_key k = { .len = len };

	for (size_t i = 0; i < len; i++)
		k.bytes[i] = (uint8_t)(seed + 3 * i);
	return k;
}

static uint8_t *pattern(size_t len, uint8_t seed)
{
	uint8_t *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
	return p;
}

/* AES-CBC without padding over the whole-block prefix; a partial tail is copied
 * raw (lets tests make "ciphertexts" that are not a multiple of 16). */
static void ref_cbc(const struct vtpm_key *k, const uint8_t *iv16, const uint8_t *in, size_t len,
		    uint8_t *out, int enc)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	size_t whole = len - len % 16;
	int l1 = 0, l2 = 0;

	cr_assert_not_null(c);
	cr_assert(EVP_CipherInit_ex(c, k->len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc(), NULL,
				    k->bytes, iv16, enc));
	EVP_CIPHER_CTX_set_padding(c, 0);
	if (whole) {
		cr_assert(EVP_CipherUpdate(c, out, &l1, in, (int)whole));
		cr_assert(EVP_CipherFinal_ex(c, out + l1, &l2));
		cr_assert_eq((size_t)(l1 + l2), whole);
	}
	memcpy(out + whole, in + whole, len - whole);
	EVP_CIPHER_CTX_free(c);
}

static void ref_hmac(const struct vtpm_key *k, const uint8_t *a, size_t alen, const uint8_t *b,
		     size_t blen, uint8_t out[32])
{
	uint8_t *cat = malloc(alen + blen + 1);
	unsigned int ol = 0;

	cr_assert_not_null(cat);
	memcpy(cat, a, alen);
	if (blen)
		memcpy(cat + alen, b, blen);
	cr_assert_not_null(HMAC(EVP_sha256(), k->bytes, (int)k->len, cat, alen + blen, out, &ol));
	cr_assert_eq(ol, 32);
	free(cat);
}

struct tb {
	uint8_t buf[16384];
	size_t len;
};

static void tb_hdr(struct tb *t, uint16_t tag, uint32_t len)
{
	cr_assert(t->len + 6 <= sizeof(t->buf));
	t->buf[t->len++] = (uint8_t)(tag >> 8);
	t->buf[t->len++] = (uint8_t)tag;
	t->buf[t->len++] = (uint8_t)(len >> 24);
	t->buf[t->len++] = (uint8_t)(len >> 16);
	t->buf[t->len++] = (uint8_t)(len >> 8);
	t->buf[t->len++] = (uint8_t)len;
}

static void tb_add(struct tb *t, uint16_t tag, const uint8_t *v, size_t len)
{
	tb_hdr(t, tag, (uint32_t)len);
	cr_assert(t->len + len <= sizeof(t->buf));
	if (len)
		memcpy(t->buf + t->len, v, len);
	t->len += len;
}

/* Knobs for crafting a list the way swtpm would, or deliberately not. */
struct craft {
	const uint8_t *padded; /* plaintext incl. whatever padding the test wants */
	size_t padded_len;
	size_t iv_len;         /* stored IV length (0 with no_iv) */
	bool no_iv;            /* omit the IV TLV: zero IV, MAC over ciphertext only */
	size_t hmac_len;       /* stored HMAC TLV length; first min(32, n) bytes real */
	bool no_hmac, no_data;
	bool junk_first;       /* an unknown tag before the records */
};

static void craft(const struct vtpm_key *k, const struct craft *c, struct tb *out)
{
	uint8_t iv[64], zero[16] = { 0 }, mac[32], hm[64] = { 0 };
	uint8_t *ct = malloc(c->padded_len + 1);

	cr_assert_not_null(ct);
	for (size_t i = 0; i < sizeof(iv); i++)
		iv[i] = (uint8_t)(0xa0 + i);
	ref_cbc(k, c->no_iv ? zero : iv, c->padded, c->padded_len, ct, 1);
	ref_hmac(k, ct, c->padded_len, iv, c->no_iv ? 0 : c->iv_len, mac);
	memcpy(hm, mac, 32);
	for (size_t i = 32; i < sizeof(hm); i++)
		hm[i] = 0xee;

	out->len = 0;
	if (c->junk_first)
		tb_add(out, 0x99, (const uint8_t *)"junk", 4);
	if (!c->no_data)
		tb_add(out, TLV_TAG_ENCRYPTED_DATA, ct, c->padded_len);
	if (!c->no_hmac)
		tb_add(out, TLV_TAG_HMAC, hm, c->hmac_len);
	if (!c->no_iv)
		tb_add(out, TLV_TAG_IVEC_ENCRYPTED_DATA, iv, c->iv_len);
	free(ct);
}

/* swtpm padding: p = keylen - len % keylen bytes of value p. */
static size_t std_pad(const uint8_t *in, size_t len, size_t keylen, uint8_t *out)
{
	size_t p = keylen - len % keylen;

	memcpy(out, in, len);
	memset(out + len, (int)p, p);
	return len + p;
}

static int dec(const struct vtpm_key *k, const struct tb *t, uint8_t **p, size_t *pl)
{
	return cipher_decrypt(k, t->buf, t->len, TLV_TAG_ENCRYPTED_DATA,
			      TLV_TAG_IVEC_ENCRYPTED_DATA, p, pl);
}

/* ---- round trips and the output format ------------------------------------- */

static void check_format(size_t keylen, size_t len)
{
	struct vtpm_key k = mkkey(keylen, 0x11);
	uint8_t *plain = pattern(len, (uint8_t)len), *tl = NULL, *back = NULL, *pt;
	size_t tll = 0, bl = 0, exp_ct = (len / keylen + 1) * keylen;
	struct tlv data, mac, iv;
	uint8_t m[32];

	cr_assert_eq(cipher_encrypt(&k, plain, len, TLV_TAG_ENCRYPTED_DATA,
				    TLV_TAG_IVEC_ENCRYPTED_DATA, &tl, &tll), 0);
	/* data, HMAC, IV in this order, nothing else */
	cr_assert_eq(tll, 6 + exp_ct + 6 + 32 + 6 + keylen, "len %zu", len);
	cr_assert_eq(tl[0] << 8 | tl[1], TLV_TAG_ENCRYPTED_DATA);
	cr_assert_eq(tl[6 + exp_ct] << 8 | tl[7 + exp_ct], TLV_TAG_HMAC);
	cr_assert_eq(tl[12 + exp_ct + 32] << 8 | tl[13 + exp_ct + 32], TLV_TAG_IVEC_ENCRYPTED_DATA);
	cr_assert_eq(tlv_find(tl, tll, TLV_TAG_ENCRYPTED_DATA, &data), 0);
	cr_assert_eq(tlv_find(tl, tll, TLV_TAG_HMAC, &mac), 0);
	cr_assert_eq(tlv_find(tl, tll, TLV_TAG_IVEC_ENCRYPTED_DATA, &iv), 0);
	cr_assert_eq(data.len, exp_ct);
	cr_assert_eq(iv.len, keylen, "IV is as long as the key");
	cr_assert_eq(mac.len, 32);

	/* independent check: HMAC over ciphertext || full IV */
	ref_hmac(&k, data.value, data.len, iv.value, iv.len, m);
	cr_assert_arr_eq(m, mac.value, 32);
	/* independent decrypt with IV[0..15], padding to the key length */
	pt = malloc(data.len);
	ref_cbc(&k, iv.value, data.value, data.len, pt, 0);
	cr_assert_arr_eq(pt, plain, len);
	for (size_t i = len; i < exp_ct; i++)
		cr_assert_eq(pt[i], exp_ct - len, "pad byte %zu", i);
	free(pt);

	cr_assert_eq(cipher_decrypt(&k, tl, tll, TLV_TAG_ENCRYPTED_DATA,
				    TLV_TAG_IVEC_ENCRYPTED_DATA, &back, &bl), 0);
	cr_assert_eq(bl, len);
	if (len)
		cr_assert_arr_eq(back, plain, len);
	free(back);
	free(tl);
	free(plain);
}

Test(cipher, roundtrip_aes128_all_small_lengths)
{
	for (size_t len = 0; len <= 70; len++)
		check_format(16, len);
	check_format(16, 1299);
	check_format(16, 8970);
}

Test(cipher, roundtrip_aes256_all_small_lengths)
{
	for (size_t len = 0; len <= 100; len++)
		check_format(32, len);
	/* captured: 8970 bytes got 22 bytes of 0x16 with AES-256 */
	check_format(32, 8970);
}

Test(cipher, migration_tags)
{
	struct vtpm_key k = mkkey(32, 9);
	uint8_t *tl, *back;
	size_t tll, bl;
	struct tlv t;

	cr_assert_eq(cipher_encrypt(&k, (const uint8_t *)"abc", 3,
				    TLV_TAG_ENCRYPTED_MIGRATION_DATA,
				    TLV_TAG_IVEC_ENCRYPTED_MIGRATION_DATA, &tl, &tll), 0);
	cr_assert_eq(tlv_find(tl, tll, TLV_TAG_ENCRYPTED_MIGRATION_DATA, &t), 0);
	cr_assert_eq(tlv_find(tl, tll, TLV_TAG_IVEC_ENCRYPTED_MIGRATION_DATA, &t), 0);
	cr_assert_eq(t.len, 32);
	cr_assert_eq(tlv_find(tl, tll, TLV_TAG_ENCRYPTED_DATA, &t), -ENOENT);
	/* the state-key tags are not found in it */
	cr_assert_eq(cipher_decrypt(&k, tl, tll, TLV_TAG_ENCRYPTED_DATA,
				    TLV_TAG_IVEC_ENCRYPTED_DATA, &back, &bl), -ENOENT);
	cr_assert_eq(cipher_decrypt(&k, tl, tll, TLV_TAG_ENCRYPTED_MIGRATION_DATA,
				    TLV_TAG_IVEC_ENCRYPTED_MIGRATION_DATA, &back, &bl), 0);
	cr_assert_eq(bl, 3);
	cr_assert_arr_eq(back, "abc", 3);
	free(back);
	free(tl);
}

Test(cipher, fresh_iv_every_time)
{
	struct vtpm_key k = mkkey(16, 1);
	uint8_t *a, *b;
	size_t al, bl;

	cr_assert_eq(cipher_encrypt(&k, (const uint8_t *)"same", 4, 2, 6, &a, &al), 0);
	cr_assert_eq(cipher_encrypt(&k, (const uint8_t *)"same", 4, 2, 6, &b, &bl), 0);
	cr_assert_eq(al, bl);
	cr_assert_neq(memcmp(a, b, al), 0);
	free(a);
	free(b);
}

Test(cipher, bad_keys_and_args)
{
	struct vtpm_key k = mkkey(20, 1), none = { .len = 0 };
	uint8_t *o = NULL;
	size_t ol = 0;

	cr_assert_eq(cipher_encrypt(&k, (const uint8_t *)"x", 1, 2, 6, &o, &ol), -EKEYREJECTED);
	cr_assert_eq(cipher_encrypt(&none, (const uint8_t *)"x", 1, 2, 6, &o, &ol), -EKEYREJECTED);
	cr_assert_eq(cipher_encrypt(NULL, (const uint8_t *)"x", 1, 2, 6, &o, &ol), -EKEYREJECTED);
	k.len = 16;
	cr_assert_eq(cipher_encrypt(&k, NULL, 1, 2, 6, &o, &ol), -EFAULT);
	cr_assert_eq(cipher_decrypt(&k, NULL, 5, 2, 6, &o, &ol), -EFAULT);
	k.len = 24;
	cr_assert_eq(cipher_decrypt(&k, (const uint8_t *)"", 0, 2, 6, &o, &ol), -EKEYREJECTED);
	cr_assert_null(o);
}

Test(cipher, check_keylen)
{
	struct vtpm_key k16 = mkkey(16, 0), k32 = mkkey(32, 0), k20 = mkkey(20, 0);

	cr_assert_eq(cipher_check_keylen(&k16, false), 0);
	cr_assert_eq(cipher_check_keylen(&k32, true), 0);
	cr_assert_eq(cipher_check_keylen(&k16, true), -EKEYREJECTED);
	cr_assert_eq(cipher_check_keylen(&k32, false), -EKEYREJECTED);
	cr_assert_eq(cipher_check_keylen(&k20, false), -EKEYREJECTED);
	cr_assert_eq(cipher_check_keylen(NULL, false), -EKEYREJECTED);
}

/* ---- crafted inputs: what swtpm accepts ------------------------------------ */

Test(cipher, crafted_standard_list_decrypts)
{
	for (size_t keylen = 16; keylen <= 32; keylen += 16) {
		struct vtpm_key k = mkkey(keylen, 5);
		uint8_t *plain = pattern(50, 3), padded[128], *o;
		struct craft c = { .padded = padded, .iv_len = keylen, .hmac_len = 32 };
		struct tb t;
		size_t ol;

		c.padded_len = std_pad(plain, 50, keylen, padded);
		craft(&k, &c, &t);
		cr_assert_eq(dec(&k, &t, &o, &ol), 0);
		cr_assert_eq(ol, 50);
		cr_assert_arr_eq(o, plain, 50);
		free(o);
		free(plain);
	}
}

Test(cipher, no_iv_means_zero_iv_and_mac_over_ciphertext)
{
	for (size_t keylen = 16; keylen <= 32; keylen += 16) {
		struct vtpm_key k = mkkey(keylen, 6);
		uint8_t padded[64], *o;
		struct craft c = { .padded = padded, .no_iv = true, .hmac_len = 32 };
		struct tb t;
		size_t ol;

		c.padded_len = std_pad((const uint8_t *)"legacy-ish", 10, keylen, padded);
		craft(&k, &c, &t);
		cr_assert_eq(dec(&k, &t, &o, &ol), 0);
		cr_assert_eq(ol, 10);
		cr_assert_arr_eq(o, "legacy-ish", 10);
		free(o);
	}
}

Test(cipher, longer_hmac_tlv_only_first_32_count)
{
	struct vtpm_key k = mkkey(16, 7);
	uint8_t padded[32], *o;
	struct craft c = { .padded = padded, .iv_len = 16, .hmac_len = 40 };
	struct tb t;
	size_t ol;

	c.padded_len = std_pad((const uint8_t *)"x", 1, 16, padded);
	craft(&k, &c, &t);
	cr_assert_eq(dec(&k, &t, &o, &ol), 0);
	free(o);
}

Test(cipher, unknown_tags_are_skipped)
{
	struct vtpm_key k = mkkey(32, 8);
	uint8_t padded[64], *o;
	struct craft c = { .padded = padded, .iv_len = 32, .hmac_len = 32, .junk_first = true };
	struct tb t;
	size_t ol;

	c.padded_len = std_pad((const uint8_t *)"xyz", 3, 32, padded);
	craft(&k, &c, &t);
	cr_assert_eq(dec(&k, &t, &o, &ol), 0);
	cr_assert_eq(ol, 3);
	free(o);
}

Test(cipher, aes256_ciphertext_multiple_of_16_not_32)
{
	/* Only whole AES blocks are required; the key-length padding is checked by
	 * value: 48 bytes with a valid 32-byte pad decrypt to 16 bytes. */
	struct vtpm_key k = mkkey(32, 9);
	uint8_t padded[48], *o;
	struct craft c = { .padded = padded, .padded_len = 48, .iv_len = 32, .hmac_len = 32 };
	struct tb t;
	size_t ol;

	memset(padded, 'A', 16);
	memset(padded + 16, 32, 32);
	craft(&k, &c, &t);
	cr_assert_eq(dec(&k, &t, &o, &ol), 0);
	cr_assert_eq(ol, 16);
	free(o);
}

Test(cipher, max_padding_is_a_whole_key_length)
{
	for (size_t keylen = 16; keylen <= 32; keylen += 16) {
		struct vtpm_key k = mkkey(keylen, 10);
		uint8_t padded[64], *o;
		struct craft c = { .padded = padded, .padded_len = 2 * keylen, .iv_len = keylen,
				   .hmac_len = 32 };
		struct tb t;
		size_t ol;

		memset(padded, 'B', keylen);
		memset(padded + keylen, (int)keylen, keylen);
		craft(&k, &c, &t);
		cr_assert_eq(dec(&k, &t, &o, &ol), 0);
		cr_assert_eq(ol, keylen);
		free(o);
	}
}

/* ---- crafted inputs: every decrypt check ----------------------------------- */

Test(cipher, missing_tlvs)
{
	struct vtpm_key k = mkkey(16, 11);
	uint8_t padded[32], *o = NULL;
	struct craft c = { .padded = padded, .iv_len = 16, .hmac_len = 32, .no_hmac = true };
	struct tb t;
	size_t ol;

	c.padded_len = std_pad((const uint8_t *)"m", 1, 16, padded);
	craft(&k, &c, &t);
	cr_assert_eq(dec(&k, &t, &o, &ol), -ENOENT);
	c.no_hmac = false;
	c.no_data = true;
	craft(&k, &c, &t);
	cr_assert_eq(dec(&k, &t, &o, &ol), -ENOENT);
	cr_assert_eq(cipher_decrypt(&k, t.buf, 0, 2, 6, &o, &ol), -ENOENT);
	cr_assert_null(o);
	cr_assert_eq(cipher_err_to_tpm(-ENOENT), TPM_FAIL);
}

Test(cipher, short_hmac)
{
	struct vtpm_key k = mkkey(16, 12);
	uint8_t padded[32], *o = NULL;
	struct craft c = { .padded = padded, .iv_len = 16, .hmac_len = 31 };
	struct tb t;
	size_t ol;

	c.padded_len = std_pad((const uint8_t *)"m", 1, 16, padded);
	craft(&k, &c, &t);
	cr_assert_eq(dec(&k, &t, &o, &ol), -EMSGSIZE);
	c.hmac_len = 0;
	craft(&k, &c, &t);
	cr_assert_eq(dec(&k, &t, &o, &ol), -EMSGSIZE);
	cr_assert_eq(cipher_err_to_tpm(-EMSGSIZE), TPM_FAIL);
}

Test(cipher, wrong_key_tampering)
{
	for (size_t keylen = 16; keylen <= 32; keylen += 16) {
		struct vtpm_key k = mkkey(keylen, 13), wrong = mkkey(keylen, 14);
		uint8_t *tl, *o = NULL;
		size_t tll, ol;

		cr_assert_eq(cipher_encrypt(&k, (const uint8_t *)"hello world", 11, 2, 6, &tl, &tll),
			     0);
		cr_assert_eq(tll, 6 + keylen + 6 + 32 + 6 + keylen);
		cr_assert_eq(cipher_decrypt(&wrong, tl, tll, 2, 6, &o, &ol), -EBADE);
		/* every byte of ciphertext, HMAC and IV values is covered */
		for (size_t i = 0; i < tll; i++) {
			/* 11 bytes pad to one key length of ciphertext */
			bool hdr = i < 6 || (i >= 6 + keylen && i < 12 + keylen) ||
				   (i >= 44 + keylen && i < 50 + keylen);

			if (hdr)
				continue;
			tl[i] ^= 0x01;
			cr_assert_eq(cipher_decrypt(&k, tl, tll, 2, 6, &o, &ol), -EBADE,
				     "flip at %zu", i);
			tl[i] ^= 0x01;
		}
		cr_assert_eq(cipher_decrypt(&k, tl, tll, 2, 6, &o, &ol), 0);
		free(o);
		free(tl);
	}
	cr_assert_eq(cipher_err_to_tpm(-EBADE), TPM_DECRYPT_ERROR);
}

Test(cipher, iv_of_wrong_length)
{
	for (size_t keylen = 16; keylen <= 32; keylen += 16) {
		static const size_t lens[] = { 0, 8, 15, 16, 17, 31, 32, 33, 48 };
		struct vtpm_key k = mkkey(keylen, 15);
		uint8_t padded[64], *o = NULL;
		struct craft c = { .padded = padded, .hmac_len = 32 };
		struct tb t;
		size_t ol;

		c.padded_len = std_pad((const uint8_t *)"iv", 2, keylen, padded);
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			int r;

			c.iv_len = lens[i];
			craft(&k, &c, &t);
			r = dec(&k, &t, &o, &ol);
			if (lens[i] == keylen) {
				cr_assert_eq(r, 0);
				free(o);
			} else {
				cr_assert_eq(r, -ERANGE, "keylen %zu iv %zu", keylen, lens[i]);
			}
		}
	}
	cr_assert_eq(cipher_err_to_tpm(-ERANGE), TPM_DECRYPT_ERROR);
}

Test(cipher, ciphertext_too_short)
{
	/* AES-256: one AES block is shorter than the key -> DECRYPT_ERROR */
	struct vtpm_key k = mkkey(32, 16), k16 = mkkey(16, 16);
	uint8_t padded[16], *o = NULL;
	struct craft c = { .padded = padded, .padded_len = 16, .iv_len = 32, .hmac_len = 32 };
	struct tb t;
	size_t ol;

	memset(padded, 16, 16);
	craft(&k, &c, &t);
	cr_assert_eq(dec(&k, &t, &o, &ol), -ENODATA);
	c.padded_len = 0;
	craft(&k, &c, &t);
	cr_assert_eq(dec(&k, &t, &o, &ol), -ENODATA);
	c.iv_len = 16;
	craft(&k16, &c, &t);
	cr_assert_eq(dec(&k16, &t, &o, &ol), -ENODATA);
	c.padded_len = 15;
	craft(&k16, &c, &t);
	cr_assert_eq(dec(&k16, &t, &o, &ol), -ENODATA);
	cr_assert_eq(cipher_err_to_tpm(-ENODATA), TPM_DECRYPT_ERROR);
}

Test(cipher, ciphertext_not_multiple_of_16)
{
	static const size_t lens[] = { 17, 20, 31, 33, 40 };
	struct vtpm_key k = mkkey(16, 17);
	uint8_t padded[64], *o = NULL;
	struct craft c = { .padded = padded, .iv_len = 16, .hmac_len = 32 };
	struct tb t;
	size_t ol;

	memset(padded, 1, sizeof(padded));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		c.padded_len = lens[i];
		craft(&k, &c, &t);
		cr_assert_eq(dec(&k, &t, &o, &ol), -EIO, "len %zu", lens[i]);
	}
	/* AES-256 with 40 bytes: long enough, not whole blocks */
	{
		struct vtpm_key k32 = mkkey(32, 17);

		c.iv_len = 32;
		c.padded_len = 40;
		craft(&k32, &c, &t);
		cr_assert_eq(dec(&k32, &t, &o, &ol), -EIO);
	}
	cr_assert_eq(cipher_err_to_tpm(-EIO), TPM_FAIL);
}

Test(cipher, bad_padding)
{
	for (size_t keylen = 16; keylen <= 32; keylen += 16) {
		struct vtpm_key k = mkkey(keylen, 18);
		uint8_t padded[64], *o = NULL;
		struct craft c = { .padded = padded, .padded_len = 2 * keylen, .iv_len = keylen,
				   .hmac_len = 32 };
		struct tb t;
		size_t ol;

		/* p = 0 */
		memset(padded, 'C', sizeof(padded));
		padded[2 * keylen - 1] = 0;
		craft(&k, &c, &t);
		cr_assert_eq(dec(&k, &t, &o, &ol), -EILSEQ);
		/* p = keylen + 1 (all pad bytes consistent) */
		memset(padded + keylen - 1, (int)keylen + 1, keylen + 1);
		craft(&k, &c, &t);
		cr_assert_eq(dec(&k, &t, &o, &ol), -EILSEQ);
		/* p = 255 */
		padded[2 * keylen - 1] = 0xff;
		craft(&k, &c, &t);
		cr_assert_eq(dec(&k, &t, &o, &ol), -EILSEQ);
		/* p = 4 but one of the 4 pad bytes differs */
		memset(padded, 'C', sizeof(padded));
		memset(padded + 2 * keylen - 4, 4, 4);
		padded[2 * keylen - 3] = 5;
		craft(&k, &c, &t);
		cr_assert_eq(dec(&k, &t, &o, &ol), -EILSEQ);
		/* p = 4 correct */
		padded[2 * keylen - 3] = 4;
		craft(&k, &c, &t);
		cr_assert_eq(dec(&k, &t, &o, &ol), 0);
		cr_assert_eq(ol, 2 * keylen - 4);
		free(o);
	}
	cr_assert_eq(cipher_err_to_tpm(-EILSEQ), TPM_DECRYPT_ERROR);
}

Test(cipher, oversized_tlv_lengths)
{
	struct vtpm_key k = mkkey(16, 19);
	uint8_t padded[32], *o = NULL;
	struct craft c = { .padded = padded, .iv_len = 16, .hmac_len = 32 };
	struct tb t;
	size_t ol;

	c.padded_len = std_pad((const uint8_t *)"o", 1, 16, padded);
	craft(&k, &c, &t);
	/* data TLV claims 0xffffffff bytes: the walk stops, nothing is found */
	t.buf[2] = t.buf[3] = t.buf[4] = t.buf[5] = 0xff;
	cr_assert_eq(dec(&k, &t, &o, &ol), -ENOENT);
	/* data TLV one byte too long swallows the HMAC header -> HMAC not found */
	craft(&k, &c, &t);
	t.buf[5] += 1;
	cr_assert_eq(dec(&k, &t, &o, &ol), -ENOENT);
	/* IV TLV running past the end: IV counts as absent -> MAC (with IV) fails */
	craft(&k, &c, &t);
	t.buf[t.len - 16 - 1] = 17;
	cr_assert_eq(dec(&k, &t, &o, &ol), -EBADE);
	/* truncated list */
	craft(&k, &c, &t);
	for (size_t n = 0; n < t.len; n++) {
		int r = cipher_decrypt(&k, t.buf, n, 2, 6, &o, &ol);

		cr_assert(r == -ENOENT || r == -EBADE, "len %zu r %d", n, r);
	}
	cr_assert_null(o);
}

Test(cipher, first_match_wins)
{
	/* A second (valid) HMAC after a bogus one is never looked at. */
	struct vtpm_key k = mkkey(16, 20);
	uint8_t padded[32], *o = NULL, bogus[32] = { 0 };
	struct craft c = { .padded = padded, .iv_len = 16, .hmac_len = 32 };
	struct tb t, t2 = { .len = 0 };
	size_t ol;

	c.padded_len = std_pad((const uint8_t *)"f", 1, 16, padded);
	craft(&k, &c, &t);
	tb_add(&t2, TLV_TAG_HMAC, bogus, 32);
	memcpy(t2.buf + t2.len, t.buf, t.len);
	t2.len += t.len;
	cr_assert_eq(dec(&k, &t2, &o, &ol), -EBADE);
}

Test(cipher, raw_decrypt)
{
	struct vtpm_key k = mkkey(16, 21);
	uint8_t padded[32], ct[32], zero[16] = { 0 }, *o;
	size_t ol, n;

	n = std_pad((const uint8_t *)"raw", 3, 16, padded);
	ref_cbc(&k, zero, padded, n, ct, 1);
	cr_assert_eq(cipher_decrypt_raw(&k, ct, n, NULL, 0, &o, &ol), 0);
	cr_assert_eq(ol, 3);
	cr_assert_arr_eq(o, "raw", 3);
	free(o);
	cr_assert_eq(cipher_decrypt_raw(&k, ct, n, zero, 8, &o, &ol), -ERANGE);
	cr_assert_eq(cipher_decrypt_raw(&k, ct, n, zero, 16, &o, &ol), 0);
	free(o);
}

Test(cipher, err_to_tpm)
{
	cr_assert_eq(cipher_err_to_tpm(0), 0);
	cr_assert_eq(cipher_err_to_tpm(-EKEYREJECTED), 0x28);
	cr_assert_eq(cipher_err_to_tpm(-EBADE), 0x21);
	cr_assert_eq(cipher_err_to_tpm(-ERANGE), 0x21);
	cr_assert_eq(cipher_err_to_tpm(-ENODATA), 0x21);
	cr_assert_eq(cipher_err_to_tpm(-EILSEQ), 0x21);
	cr_assert_eq(cipher_err_to_tpm(-ENOENT), 0x09);
	cr_assert_eq(cipher_err_to_tpm(-EMSGSIZE), 0x09);
	cr_assert_eq(cipher_err_to_tpm(-EIO), 0x09);
	cr_assert_eq(cipher_err_to_tpm(-ENOMEM), 0x09);
	cr_assert_eq(cipher_err_to_tpm(-EOVERFLOW), 0x09);
	cr_assert_eq(cipher_err_to_tpm(-EFAULT), 0x09);
}
