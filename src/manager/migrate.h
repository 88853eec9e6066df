/* State transfer over an instance's ctrl channel, as QEMU does it for
 * migration: GET_STATEBLOB x3 on the source; STOP, SET_STATEBLOB x3, INIT on
 * the destination. Blocking, but every step is bounded by one deadline. */
#ifndef VTPM_MGR_MIGRATE_H
#define VTPM_MGR_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "manager/statefile.h"

/* Upper bound of one whole export or import exchange. The event loop waits
 * for it, so it is short: a healthy instance answers in milliseconds. */
#define MIG_TIMEOUT_MS 5000

/* The blobs read from an instance (malloc'd; len 0 = that state is empty). */
struct mig_blobs {
	uint8_t *data[SF_NBLOBS];
	size_t len[SF_NBLOBS];
	uint32_t flags[SF_NBLOBS]; /* state_flags of the answer */
};

void mig_blobs_free(struct mig_blobs *b);

/* GET_STATEBLOB permanent, volatile, savestate (PTM_STATE_FLAG_DECRYPTED
 * unless `encrypted`). TPM_RETRY means "no such state" and gives an empty
 * blob. 0, or -errno with *why (-EPROTO: the TPM answered an error). */
int mig_export(const struct sockaddr *sa, socklen_t slen, bool encrypted, struct mig_blobs *out,
	       char *why, size_t whylen);

/* CMD_STOP, SET_STATEBLOB for each blob (an empty one as length 0, which
 * marks that state empty instead of letting a stale file of the destination
 * be used), CMD_INIT with PTM_INIT_FLAG_DELETE_VOLATILE. If a step after STOP
 * fails, the TPM is re-initialised from its own stored state (CMD_INIT 0)
 * and *restored says whether that worked. 0 or -errno with *why. */
int mig_import(const struct sockaddr *sa, socklen_t slen, const struct sf_state *s,
	       bool *restored, char *why, size_t whylen);

#endif
