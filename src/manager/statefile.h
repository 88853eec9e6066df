/* The vtpmd state file (export-state / import-state): the three state blobs of
 * one instance, as its ctrl channel hands them out, in one self-describing,
 * versioned file with a SHA-256 per blob. Codec and file I/O; no sockets. */
#ifndef VTPM_MGR_STATEFILE_H
#define VTPM_MGR_STATEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager/id.h"

/*
 * Layout (version 1):
 *   one header line: JSON, at most SF_MAX_HEADER bytes including its '\n',
 *     starting with the magic SF_MAGIC, e.g.
 *     {"format":"vtpmd-state","version":1,"tpm":"2.0","created":1764230000,
 *      "source-id":"i1","blobs":[{"type":"permanent","flags":0,"length":1315,
 *      "sha256":"..."},{"type":"volatile",...},{"type":"savestate",...}]}
 *   then the blob bytes, back to back, in the order of "blobs".
 * The file ends exactly after the last blob. Length 0 = that state is empty.
 * "flags" is the state_flags GET_STATEBLOB answered (2 = still encrypted with
 * the source's state-file key), passed back to SET_STATEBLOB.
 */
#define SF_MAGIC "{\"format\":\"vtpmd-state\","
#define SF_FORMAT "vtpmd-state"
#define SF_VERSION 1
#define SF_MAX_HEADER 4096u
/* libtpms state is far smaller (a TPM 2 permall is a few KiB up to ~128 KiB
 * of NV); this only bounds what a hostile file can make us allocate. */
#define SF_MAX_BLOB (4u * 1024u * 1024u)
#define SF_NBLOBS 3
#define SF_MAX_FILE (SF_MAX_HEADER + SF_NBLOBS * SF_MAX_BLOB)

struct sf_blob {
	uint32_t type;	     /* PTM_BLOB_TYPE_* */
	uint32_t flags;	     /* 0 or PTM_STATE_FLAG_ENCRYPTED */
	const uint8_t *data; /* borrowed (encode: caller's; decode: into the buffer) */
	size_t len;
};

struct sf_state {
	bool tpm2;
	int64_t created; /* seconds since the epoch */
	char source_id[MGR_ID_MAX + 1];
	struct sf_blob blobs[SF_NBLOBS]; /* permanent, volatile, savestate */
};

/* Name of a blob type ("permanent", ...) or NULL. */
const char *sf_type_name(uint32_t type);

/* Serialise s (blobs in PTM type order 1, 2, 3) into a malloc'd buffer.
 * 0 or -errno (-EINVAL for a blob over SF_MAX_BLOB or a bad type order). */
int sf_encode(const struct sf_state *s, uint8_t **out, size_t *outlen);

/* Parse and fully validate buf: magic, version, header fields, lengths (the
 * file must end exactly after the last blob), SHA-256 of every blob, and,
 * unless want_tpm is -1, that the TPM version is want_tpm (1 = 2.0, 0 = 1.2).
 * Blob data points into buf. 0, or -EINVAL with *why saying what is wrong. */
int sf_decode(const uint8_t *buf, size_t len, int want_tpm, struct sf_state *s, char *why,
	      size_t whylen);

/* Write buf to path atomically and durably: a 0600 temp file in the same
 * directory, fsync, rename over path, fsync of the directory. 0 or -errno. */
int sf_write_file(const char *path, const uint8_t *buf, size_t len);

/* Read a whole regular file of at most SF_MAX_FILE bytes. 0 or -errno
 * (-EFBIG when larger, -EINVAL when not a regular file). */
int sf_read_file(const char *path, uint8_t **buf, size_t *len);

#endif
