/* vtpmd's pool: processes forked ahead of any create, each holding a freshly
 * manufactured TPM 2 whose state is already durable, so that a create only
 * has to claim one instead of forking and manufacturing while a VM waits. */
#ifndef VTPM_MGR_POOL_H
#define VTPM_MGR_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "manager/spawner.h"

#define POOL_DIR ".pool" /* STATE_ROOT/.pool/NAME: not a valid instance id */
#define POOL_DEFAULT 4u
#define POOL_MAX 256u
/* A pool process that fails (full disk, libtpms error) is not replaced at
 * once: the delay doubles from MIN to MAX while they keep failing. */
#define POOL_RETRY_MIN_MS 1000u
#define POOL_RETRY_MAX_MS 60000u
/* Refills wait until no instance was started for this long: a pool process
 * being made takes CPU and disk from the instance a VM is waiting for, and
 * while creates come faster than this the pool would not stay filled anyway. */
#define POOL_QUIET_MS 20u

struct mgr;
struct pool_ent;

struct mgr_pool {
	unsigned want;		/* --pool */
	struct pool_ent **ents; /* spawning, manufacturing or parked */
	size_t n;
	uint32_t serial;
	unsigned fails; /* failed pool processes in a row */
	uint64_t retry_at;
	uint64_t quiet_until;
	bool ready; /* pool_init succeeded */
};

/* A claimed pool process, handed to the supervisor: it is the manager's
 * child (pidfd), and waits for the instance's command line on `ready`. */
struct pool_claim {
	pid_t pid; /* 0: none */
	int pidfd;
	int ready;
};

/* Make STATE_ROOT/.pool and empty it (what a previous vtpmd left). 0 or
 * -errno; on failure vtpmd runs without a pool. */
int pool_init(struct mgr *m, unsigned want);
/* Ask the spawner for pool processes until `want` exist (or the back-off
 * after failures says wait). Cheap when the pool is full. */
void pool_fill(struct mgr *m);
/* A spawner reply: true if it was for the pool (and is consumed). */
bool pool_spawn_reply(struct mgr *m, const struct spawn_rep *rep, int pidfd, int ready);
void pool_ready_event(struct mgr *m, struct pool_ent *e);
void pool_child_event(struct mgr *m, struct pool_ent *e);
/* The spawner died: the pool processes it still owed are not coming. */
void pool_spawner_lost(struct mgr *m);

/* An instance is being started: hold refills back for POOL_QUIET_MS. */
void pool_busy(struct mgr *m);
/* Take a parked pool process for instance `id`: its directory becomes
 * STATE_ROOT/ID (renamed; fails with -EEXIST if that exists), the process is
 * the caller's. -EAGAIN if none is parked. */
int pool_claim(struct mgr *m, const char *id, struct pool_claim *c);
/* Hand the claimed process its instance (req as for the spawner). 0 or
 * -errno; on failure the caller still owns c (see pool_discard). */
int pool_send_claim(const struct pool_claim *c, const struct spawn_req *req);
/* Kill and reap a claimed process that will not be used. */
void pool_discard(struct pool_claim *c);

uint64_t pool_next_deadline(const struct mgr *m);
/* Free the entries dropped or claimed during the last batch of events. */
void pool_reap(struct mgr *m);
/* Parked processes (for query-version / status of the manager). */
size_t pool_parked(const struct mgr *m);
/* At exit: every pool process gets EOF and leaves; the pool directory is
 * emptied. */
void pool_stop(struct mgr *m);

#endif
