/* The manager's shared state and its single epoll event loop: every socket,
 * pidfd and timer of vtpmd is served by one thread, so nothing needs a lock. */
#ifndef VTPM_MGR_H
#define VTPM_MGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "manager/pool.h"
#include "manager/spawner.h"

enum mgr_wkind {
	MGR_W_LISTEN = 1,
	MGR_W_CLIENT,
	MGR_W_SPAWNER,	   /* replies on the socketpair */
	MGR_W_SPAWNER_PID, /* the spawner process exited */
	MGR_W_CHILD,	   /* an instance's pidfd */
	MGR_W_CTRL,	   /* our connection to an instance's ctrl channel */
	MGR_W_SIGNAL,
	MGR_W_READY,	   /* an instance's readiness socket */
	MGR_W_POOL_READY,  /* a pool process's readiness socket */
	MGR_W_POOL_PID,	   /* a pool process's pidfd */
};

/* What epoll_event.data.ptr points to. */
struct mgr_watch {
	enum mgr_wkind kind;
	void *obj;
};

struct sup_inst;
struct mgmt_client;

struct mgr {
	int epfd;
	char *state_root; /* absolute, no trailing slash */
	char *sock_path;  /* absolute */
	uid_t owner_uid;  /* peers with this uid (and root) are served */

	struct spawner sp;
	struct mgr_watch sp_w, sp_pid_w;
	uint32_t spawn_seq;

	struct mgr_pool pool;

	struct sup_inst **insts;
	size_t ninst, cap;
	struct sup_inst *graveyard; /* destroyed, freed after the event batch */
	size_t nunsynced;	    /* created, registry entry not durable yet */

	int listen_fd;
	struct mgr_watch listen_w;
	struct mgmt_client *clients;
	unsigned nclients;
	unsigned nrefused; /* refused peers still being told why */
	uint64_t client_serial;

	int sig_fd;
	struct mgr_watch sig_w;
	bool quit;
};

/* Register/modify/remove an fd in the loop. 0 or -errno. */
int mgr_watch_add(struct mgr *m, int fd, uint32_t events, struct mgr_watch *w);
int mgr_watch_mod(struct mgr *m, int fd, uint32_t events, struct mgr_watch *w);
void mgr_watch_del(struct mgr *m, int fd);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t mgr_now_ms(void);

/* (Re)start the spawner after it died. */
int mgr_spawner_restart(struct mgr *m);

#endif
