/* The management socket: peer checks, per-client buffers and bounded output
 * queues, request dispatch, replies and events. */
#ifndef VTPM_MGR_MGMT_H
#define VTPM_MGR_MGMT_H

#include <json-c/json.h>
#include <stdint.h>

#include "manager/mgr.h"

#define MGMT_MAX_CLIENTS 1024
/* A client whose unread output exceeds this is dropped: it cannot stall us. */
#define MGMT_MAX_OUT (1024 * 1024)
/* How long a connection being closed after an error may take to drain. */
#define MGMT_LINGER_MS 2000

/* Create the listening socket at m->sock_path (mode 0600). 0 or -errno. */
int mgmt_listen(struct mgr *m);
void mgmt_accept(struct mgr *m);
void mgmt_client_event(struct mgr *m, struct mgmt_client *c, uint32_t events);
/* Free the clients dropped during the last batch of events. */
void mgmt_reap(struct mgr *m);

/* Reply to request `id` of client number `client` (gone: dropped silently).
 * `ret` is consumed; NULL means {}. */
void mgmt_reply(struct mgr *m, uint64_t client, json_object *id, json_object *ret);
void mgmt_reply_error(struct mgr *m, uint64_t client, json_object *id, const char *cls,
		      const char *desc);
/* Send an event to every subscribed client; `data` is consumed. */
void mgmt_event(struct mgr *m, const char *name, json_object *data);

uint64_t mgmt_next_deadline(struct mgr *m);
void mgmt_timers(struct mgr *m, uint64_t now);
void mgmt_close_all(struct mgr *m);

#endif
