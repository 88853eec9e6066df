/* Supervision of instances: the per-instance state machine (start, readiness,
 * graceful stop, restart with back-off, crash-loop stop) and re-adoption. */
#ifndef VTPM_MGR_SUPERVISOR_H
#define VTPM_MGR_SUPERVISOR_H

#include <json-c/json.h>
#include <stdint.h>

#include "manager/mgr.h"
#include "manager/protocol.h"

/* Restart policy timing (see the man page). */
#define SUP_BACKOFF_MIN_MS 100u
#define SUP_BACKOFF_MAX_MS 30000u
#define SUP_LOOP_MAX 5u		 /* restarts ... */
#define SUP_LOOP_WINDOW_MS 60000u /* ... within this window = crash loop */
/* Bounds of the start and stop sequences. */
#define SUP_SPAWN_TIMEOUT_MS 10000u
#define SUP_READY_TIMEOUT_MS 30000u
#define SUP_CTRL_TIMEOUT_MS 2000u
#define SUP_TERM_TIMEOUT_MS 3000u
#define SUP_KILL_TIMEOUT_MS 5000u
#define SUP_MAX_INSTANCES 4096u

/* Read the registry, adopt children that still run, restart (by policy)
 * those that died while no vtpmd watched them. Before serving clients. */
int sup_load(struct mgr *m);

/* Run an instance command (create/start/stop/restart/destroy/status/list).
 * The reply goes to `client` through mgmt_reply*(), now or later. */
void sup_command(struct mgr *m, const struct proto_req *req, uint64_t client);

void sup_child_event(struct mgr *m, struct sup_inst *in);
void sup_ctrl_event(struct mgr *m, struct sup_inst *in, uint32_t events);
void sup_spawner_event(struct mgr *m);
/* The instance's readiness socket is readable: it serves, or it is gone. */
void sup_ready_event(struct mgr *m, struct sup_inst *in);
/* The spawner died: fail the spawns it still owed us. */
void sup_spawner_lost(struct mgr *m);

/* Earliest timer (CLOCK_MONOTONIC ms), 0 if none; run the expired ones. */
uint64_t sup_next_deadline(struct mgr *m);
void sup_timers(struct mgr *m, uint64_t now);

/* Make the registry entries created during the last batch of events durable
 * (one flush for all), then answer their creates once they also run. */
void sup_sync(struct mgr *m);

/* Free the instances destroyed during the last batch of events. */
void sup_reap(struct mgr *m);

/* At exit: forget everything, leaving every child running. */
void sup_free_all(struct mgr *m);

#endif
