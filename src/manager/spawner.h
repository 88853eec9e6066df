/* The spawner: a single-threaded helper forked at start-up that forks one child
 * per instance on request, so the manager never forks from its event loop. */
#ifndef VTPM_MGR_SPAWNER_H
#define VTPM_MGR_SPAWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "manager/protocol.h"

/* argv of a child: the instance's argv plus what the manager adds. */
#define SPAWN_MAX_ARGS (PROTO_MAX_ARGC + 8)
/* Largest request on the socketpair (argv is bounded at 32 KiB). */
#define SPAWN_MAX_MSG (96 * 1024)

/* One spawn request. The strings are borrowed (encode) or point into the
 * decoded buffer (decode). */
struct spawn_req {
	uint32_t seq;
	/* A pool process instead of an instance: it makes dir, manufactures a
	 * TPM 2 in dir/state, says SPAWN_POOL_PARKED on its readiness socket and
	 * waits there for a claim (a request in this encoding naming the
	 * instance), then runs it like any instance. argv is ignored. */
	bool pool;
	const char *id;	  /* for the banner in the log */
	const char *dir;  /* working directory of the child: STATE_ROOT/ID */
	const char *log;  /* stderr of the child, opened for append */
	const char *comm; /* process name (15 bytes at most are kept) */
	size_t argc;
	const char *argv[SPAWN_MAX_ARGS + 1];
};

struct spawn_rep {
	uint32_t seq;
	int32_t pid; /* > 0 on success */
	int32_t err; /* 0 or -errno */
};

struct spawner {
	pid_t pid;   /* the spawner process */
	int pidfd;   /* its pidfd */
	int fd;	     /* manager end of the socketpair */
};

/* What a pool process sends when its TPM is manufactured and durable. */
#define SPAWN_POOL_PARKED "parked"

/* Wire codec (pure). encode returns the length or -errno; decode 0 or
 * -EINVAL (buf must stay alive while req is used). */
ssize_t spawn_encode(const struct spawn_req *req, uint8_t *buf, size_t size);
int spawn_decode(uint8_t *buf, size_t len, struct spawn_req *req);

/* Fork the spawner. Must be called while the manager is single-threaded;
 * the manager must already be a child subreaper (see spawner.c). */
int spawn_start(struct spawner *sp);
/* Send a request (bounded blocking: the spawner answers in milliseconds). */
int spawn_send(struct spawner *sp, const struct spawn_req *req);
/* Receive one reply without blocking. 0 (with *pidfd set, or -1, and
 * *ready: the instance's readiness socket, see instance_ready_fd, or -1),
 * -EAGAIN, or -EPIPE when the spawner is gone. */
int spawn_recv(struct spawner *sp, struct spawn_rep *rep, int *pidfd, int *ready);
/* Close the manager's end; the spawner exits on EOF. Reaps it. */
void spawn_stop(struct spawner *sp);

#endif
