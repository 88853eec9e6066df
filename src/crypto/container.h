/* swtpm's state container: the 10-byte big-endian header plus TLV records that wrap
 * every state file and every GET/SET_STATEBLOB blob (spec state-files.md §3, §6). */
#ifndef VTPM_CONTAINER_H
#define VTPM_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Header layout: u8 version, u8 min_version, u16 hdrsize, u16 flags, u32 totlen. */
#define CONTAINER_HDR_SIZE	10u
#define CONTAINER_VERSION	2u	/* what we write and the newest body format we read */
#define CONTAINER_MIN_VERSION	1u	/* min_version we write */

/* Header flags (§3.1). */
#define CONTAINER_FLAG_ENCRYPTED		0x0001u /* state-file key */
#define CONTAINER_FLAG_MIGRATION_ENCRYPTED	0x0002u /* migration key (blobs only) */
#define CONTAINER_FLAG_MIGRATION_DATA		0x0004u /* set on every GET_STATEBLOB result */
#define CONTAINER_FLAG_ENCRYPTED_256BIT_KEY	0x0008u
#define CONTAINER_FLAG_MIGRATION_256BIT_KEY	0x0010u

/* TLV record: u16 tag, u32 length, value; all big-endian, no padding (§3.2). */
#define TLV_HDR_SIZE 6u

enum tlv_tag {
	TLV_TAG_DATA = 1,
	TLV_TAG_ENCRYPTED_DATA = 2,
	TLV_TAG_HMAC = 3,
	TLV_TAG_MIGRATION_DATA = 4,
	TLV_TAG_ENCRYPTED_MIGRATION_DATA = 5,
	TLV_TAG_IVEC_ENCRYPTED_DATA = 6,
	TLV_TAG_IVEC_ENCRYPTED_MIGRATION_DATA = 7,
};

/* Largest value a single TLV can carry such that a file/blob built around it still
 * has a u32 totlen (header + outer TLV + inner TLV). */
#define CONTAINER_MAX_PAYLOAD (UINT32_MAX - CONTAINER_HDR_SIZE - 2 * TLV_HDR_SIZE)

/* Returned (positive) by container_unwrap_blob for a 0-byte or header-only blob:
 * SET_STATEBLOB then tells libtpms "state is empty" (§6.3 steps 2 and 4). */
#define CONTAINER_EMPTY 1

struct container_hdr {
	uint8_t version;
	uint8_t min_version;
	uint16_t hdrsize;
	uint16_t flags;
	uint32_t totlen;
};

/* A parsed container: header fields plus the body (everything after the header).
 * `body` points into the caller's buffer. */
struct container_view {
	struct container_hdr hdr;
	const uint8_t *body;
	size_t body_len;
};

/* A TLV value found in (or to be written to) a buffer. */
struct tlv {
	uint16_t tag;
	const uint8_t *value;
	size_t len;
};

/*
 * Parse and validate the header in swtpm's check order. Errors:
 *   -EINVAL           len < 10 (swtpm 0.7.1 checks only 8; we need the whole header)
 *                     or totlen != len                         -> TPM_BAD_PARAMETER
 *   -EPROTONOSUPPORT  min_version > 2                          -> TPM_BAD_VERSION
 *   -EBADMSG          hdrsize != 10                            -> TPM_BAD_DATASIZE
 * The version field is not checked here (the body decoder does).
 */
int container_parse(const uint8_t *buf, size_t len, struct container_view *view);

/* Map a negative errno from this module to the TPM result code the control channel
 * answers with: -EINVAL 0x03, -EPROTONOSUPPORT 0x2e, -EBADMSG 0x2b, -ENOKEY 0x0d
 * (TPM_KEYNOTFOUND), 0 -> 0; everything else (-ENOENT, -EPROTO, -ENOMEM, ...) 0x09
 * (TPM_FAIL). */
int container_err_to_tpm(int err);

/* Find the first record with `tag` in a TLV list. Walks from the start; a record
 * (or record header) that runs past the end stops the search. 0 and *out filled,
 * or -ENOENT. */
int tlv_find(const uint8_t *buf, size_t len, uint16_t tag, struct tlv *out);

/* Bytes needed to serialise `n` records; -EOVERFLOW past UINT32_MAX. */
int tlv_list_size(const struct tlv *tlvs, size_t n, size_t *size);
/* Serialise records into `out` (must hold tlv_list_size bytes); returns bytes written. */
size_t tlv_list_write(uint8_t *out, const struct tlv *tlvs, size_t n);

/*
 * Build a container: header (version 2, min 1, hdrsize 10, `flags`) followed by
 * the records. *out is malloc'ed. -ENOMEM, -EOVERFLOW (totlen would exceed u32).
 * This is the generic builder the encrypting writers will use later.
 */
int container_build(uint16_t flags, const struct tlv *tlvs, size_t n, uint8_t **out,
		    size_t *out_len);

/* State FILE from a plain payload: hdr(flags 0) + TLV1(payload). */
int container_wrap_file(const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len);

/* Plain MIGRATION BLOB as GET_STATEBLOB returns it without keys:
 * hdr(flags 0x04) + TLV4( TLV1(payload) ). */
int container_wrap_blob(const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len);

/*
 * Plain payload from a state FILE (no state key configured). As in swtpm 0.7.1,
 * a file whose header check fails is a headerless legacy file: the whole file is
 * the payload. Header version 1: the body is the payload; version 2: the value of
 * TLV 1 (header flags are ignored: with no key the file must carry TLV 1).
 * *payload is malloc'ed (non-NULL even for 0 bytes).
 * Errors: -ENOENT TLV 1 missing, -EPROTO unknown body version, -ENOMEM,
 * -EINVAL NULL buffer with a non-zero length.
 */
int container_unwrap_file(const uint8_t *buf, size_t len, uint8_t **payload,
			  size_t *payload_len);

/*
 * Plain payload from a SET_STATEBLOB blob when no keys are configured (§6.3).
 * `req_encrypted` is PTM_STATE_FLAG_ENCRYPTED from the request. Returns 0 with
 * *payload malloc'ed, CONTAINER_EMPTY (nothing allocated) for a 0-byte or a
 * header-only blob, or:
 *   header errors as container_parse (-EINVAL, -EPROTONOSUPPORT, -EBADMSG)
 *   -ENOKEY   flag 0x02 set (migration key needed), or flag 0x01 / req_encrypted
 *             (state key needed)                                  -> TPM_KEYNOTFOUND
 *   -ENOENT   TLV 4 missing in the body, or TLV 1 missing inside it -> TPM_FAIL
 *   -EPROTO   body version other than 1/2                        -> TPM_FAIL
 *   -ENOMEM
 * Order of checks follows swtpm: header, empty, 0x02, TLV 4, state key, TLV 1.
 */
int container_unwrap_blob(const uint8_t *buf, size_t len, bool req_encrypted,
			  uint8_t **payload, size_t *payload_len);

/* Body helper shared by the file and blob paths (and later the decrypting ones):
 * the plain data of a body of the given header version (1: the body itself,
 * 2: the value of `tag`). Borrowed pointer into `body`. -ENOENT, -EPROTO. */
int container_body_plain(uint8_t version, const uint8_t *body, size_t body_len,
			 uint16_t tag, const uint8_t **plain, size_t *plain_len);

#endif
