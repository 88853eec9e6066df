/* swtpm's AES-CBC + HMAC-SHA256 encrypt-then-MAC of state data, with its quirks
 * (IV and padding block of key length), as TLV lists (spec state-files.md §4). */
#ifndef VTPM_CIPHER_H
#define VTPM_CIPHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/keys.h"

#define CIPHER_HMAC_SIZE 32u

/*
 * Error codes of this module (all negative errnos) and the TPM result each maps
 * to (cipher_err_to_tpm):
 *   -EKEYREJECTED  key length differs from what the header flag says, or the key
 *                  is not 16/32 bytes                      -> TPM_BAD_KEY_PROPERTY 0x28
 *   -ENOENT        HMAC TLV or data TLV missing             -> TPM_FAIL 0x09
 *   -EMSGSIZE      HMAC TLV shorter than 32 bytes           -> TPM_FAIL
 *   -EBADE         HMAC mismatch                            -> TPM_DECRYPT_ERROR 0x21
 *   -ERANGE        IV length differs from the key length    -> TPM_DECRYPT_ERROR
 *   -ENODATA       ciphertext shorter than the key length   -> TPM_DECRYPT_ERROR
 *   -EILSEQ        bad padding                              -> TPM_DECRYPT_ERROR
 *   -EIO           OpenSSL failure, incl. a ciphertext that is
 *                  not a multiple of the AES block size     -> TPM_FAIL
 *   -EOVERFLOW     data too large for a u32 TLV             -> TPM_FAIL
 *   -ENOMEM                                                 -> TPM_FAIL
 *   -EFAULT        NULL buffer with non-zero length         -> TPM_FAIL
 */

/*
 * Encrypt `plain` and return the TLV list data(data_tag), HMAC(3), IV(iv_tag) in
 * a malloc'ed *tlvs. A fresh random IV of key length is used (32 bytes for
 * AES-256, of which CBC uses the first 16); the plaintext is padded to a multiple
 * of the KEY length with p bytes of value p (1..keylen); the HMAC-SHA256 is keyed
 * with the AES key and covers ciphertext || full IV.
 */
int cipher_encrypt(const struct vtpm_key *k, const uint8_t *plain, size_t len,
		   uint16_t data_tag, uint16_t iv_tag, uint8_t **tlvs, size_t *tlvs_len);

/*
 * §4 decrypt step 1: the key must have the length the header announces
 * (flag 0x08 for the state key, 0x10 for the migration key: set -> 32, clear ->
 * 16). 0 or -EKEYREJECTED. Separate because cipher_decrypt sees no header.
 */
int cipher_check_keylen(const struct vtpm_key *k, bool hdr_256bit);

/*
 * Decrypt a TLV list (§4 steps 2-7, in swtpm's order): find HMAC(3) and
 * data(data_tag), optional IV(iv_tag) (absent -> HMAC over the ciphertext only
 * and an all-zero IV), HMAC length and constant-time compare, IV length,
 * ciphertext length, AES-CBC, padding. The caller does step 1
 * (cipher_check_keylen). *plain is malloc'ed (at least 1 byte even if empty).
 */
int cipher_decrypt(const struct vtpm_key *k, const uint8_t *tlv_list, size_t len,
		   uint16_t data_tag, uint16_t iv_tag, uint8_t **plain, size_t *plain_len);

/*
 * Steps 5-7 alone: decrypt raw ciphertext with `iv` (NULL -> all-zero IV, no
 * length check) and strip the padding. Used for the version-1 (legacy) bodies
 * that carry no TLVs.
 */
int cipher_decrypt_raw(const struct vtpm_key *k, const uint8_t *ct, size_t ct_len,
		       const uint8_t *iv, size_t iv_len, uint8_t **plain, size_t *plain_len);

/* TPM result code for an error of this module (0 -> 0). */
uint32_t cipher_err_to_tpm(int err);

#endif
