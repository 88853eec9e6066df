/* State files and GET/SET_STATEBLOB blobs with swtpm's key handling: the layer the
 * state store and the control channel call (spec state-files.md §3-§6). */
#ifndef VTPM_STATE_CODEC_H
#define VTPM_STATE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/cipher.h"
#include "crypto/container.h"
#include "crypto/keys.h"

/*
 * Keys: NULL or len 0 means "not configured"; any other length than 16/32 is
 * -EKEYREJECTED. Payloads/blobs out are malloc'ed (never NULL on success, even
 * for 0 bytes); decrypted payloads should be wiped by the caller before free.
 *
 * Errors (negative errno) and their TPM results (state_codec_err_to_tpm):
 *   from container_parse: -EINVAL 0x03, -EPROTONOSUPPORT 0x2e, -EBADMSG 0x2b
 *   -ENOKEY      a key the blob needs is not configured  -> TPM_KEYNOTFOUND 0x0d
 *   -EKEYREJECTED key size differs from the header flag  -> TPM_BAD_KEY_PROPERTY 0x28
 *   -EBADE -ERANGE -ENODATA -EILSEQ (see cipher.h)      -> TPM_DECRYPT_ERROR 0x21
 *   -ENOENT      a required TLV is missing               -> TPM_FAIL 0x09
 *   -EUCLEAN     legacy file: SHA-256 prefix wrong/short -> TPM_FAIL
 *   -EPROTO      body version other than 1/2             -> TPM_FAIL
 *   -EMSGSIZE -EIO -EOVERFLOW -ENOMEM -EFAULT            -> TPM_FAIL
 */

/* State file: plain -> hdr(flags 0) + TLV1; with a state key -> hdr(flags 0x01,
 * +0x08 for a 32-byte key) + TLV2, TLV3, TLV6. */
int state_file_encode(const struct vtpm_key *statekey, const uint8_t *payload, size_t len,
		      uint8_t **out, size_t *out_len);

/*
 * Payload of a state file, decided by configuration as swtpm 0.7.1 does: without
 * a key TLV 1 is required, with a key TLV 2/3(/6) (the header flags only select
 * the expected key size). A file whose header check fails is a headerless legacy
 * file (§5.5): without a key the whole file is the payload, with a key it is
 * AES-CBC (zero IV) of SHA-256(data) || data. A version-1 header body is treated
 * the same way.
 */
int state_file_decode(const struct vtpm_key *statekey, const uint8_t *buf, size_t len,
		      uint8_t **payload, size_t *payload_len);

/*
 * GET_STATEBLOB result for payload P (§6.1): inner = TLV2/3/6 with the state key
 * unless none is configured or decrypted_requested (then TLV1); outer =
 * TLV5/3/7 with the migration key if configured, else TLV4(inner); header flags
 * 0x04 | [0x01|0x08] | [0x02|0x10]. *state_flags_out = PTM_STATE_FLAG_ENCRYPTED
 * if the inner list is state-key encrypted, else 0 (may be NULL).
 */
int state_blob_encode(const struct vtpm_key *statekey, const struct vtpm_key *migkey,
		      bool decrypted_requested, const uint8_t *payload, size_t len,
		      uint8_t **out, size_t *out_len, uint32_t *state_flags_out);

/*
 * Payload of a SET_STATEBLOB blob (§6.3 steps 2-6). Returns 0 with *payload
 * malloc'ed, or CONTAINER_EMPTY (positive, nothing allocated) for a 0-byte or
 * header-only blob, or a negative errno as listed above. Order: header check,
 * empty, flag 0x02 (migration key, TLV 5/3/7, flag 0x10) else TLV 4,
 * PTM_STATE_FLAG_ENCRYPTED in req_state_flags or flag 0x01 (state key, TLV
 * 2/3/6, flag 0x08) else TLV 1. Unencrypted blobs are accepted even when keys are
 * configured.
 */
int state_blob_decode(const struct vtpm_key *statekey, const struct vtpm_key *migkey,
		      uint32_t req_state_flags, const uint8_t *buf, size_t len,
		      uint8_t **payload, size_t *payload_len);

/* TPM result code for any return value of this module, container.c or cipher.c
 * (0 and CONTAINER_EMPTY -> 0). */
uint32_t state_codec_err_to_tpm(int err);

#endif
