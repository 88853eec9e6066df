/* A small completion-style event loop: io_uring when the kernel allows it, the
 * same API on epoll otherwise. Ops complete through callbacks with res = bytes,
 * a new fd, or -errno; every op is owned by the caller and reused. */
#ifndef VTPM_LOOP_H
#define VTPM_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct loop;
struct loop_op;
struct store;

typedef void (*loop_cb)(struct loop *loop, struct loop_op *op, int res);

enum loop_backend { LOOP_AUTO = 0, LOOP_URING, LOOP_EPOLL };

enum loop_kind { LOP_NONE = 0, LOP_ACCEPT, LOP_RECV, LOP_RECVMSG, LOP_SEND, LOP_READ };

struct loop_op {
	enum loop_kind kind;
	int fd;
	bool nonsock; /* a pipe or character device: read/write, not recv/send */
	uint8_t *buf;
	size_t len;
	size_t sent;	     /* LOP_SEND progress */
	struct store *flush; /* LOP_SEND: make these state writes durable first */
	int flush_err;
	int rfd; /* LOP_RECVMSG: fd received with SCM_RIGHTS, else -1 */
	struct msghdr msg;
	struct iovec iov;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cmsg;
	loop_cb cb;
	void *data;
	bool active;   /* started, callback not yet delivered */
	bool canceled; /* loop_cancel() was called */
	bool ready;    /* epoll: completed, callback pending */
	int res;       /* epoll: result for the pending callback */
};

/* Create a loop. LOOP_AUTO picks io_uring and falls back to epoll when
 * io_uring_setup fails (EPERM, ENOSYS: disabled by sysctl or a container
 * profile); env VTPM_LOOP=epoll forces the fallback. 0 or -errno. */
int loop_new(struct loop **out, enum loop_backend want);
void loop_free(struct loop *loop);
const char *loop_backend_name(const struct loop *loop);

int loop_accept(struct loop *loop, struct loop_op *op, int fd, loop_cb cb, void *data);
int loop_recv(struct loop *loop, struct loop_op *op, int fd, void *buf, size_t len, loop_cb cb,
	      void *data);
/* recvmsg that can carry one SCM_RIGHTS fd (delivered in op->rfd). */
int loop_recvmsg(struct loop *loop, struct loop_op *op, int fd, void *buf, size_t len,
		 loop_cb cb, void *data);
int loop_read(struct loop *loop, struct loop_op *op, int fd, void *buf, size_t len, loop_cb cb,
	      void *data);
/* Send all len bytes (partial sends are continued inside the loop). If `flush`
 * has pending state writes they are made durable first: on io_uring as one
 * linked chain submitted together with the send, on epoll synchronously. */
int loop_send(struct loop *loop, struct loop_op *op, int fd, const void *buf, size_t len,
	      struct store *flush, loop_cb cb, void *data);
/* Request cancellation; the callback still comes (with -ECANCELED, or the
 * real result if the op finished first). No-op for an inactive op. */
void loop_cancel(struct loop *loop, struct loop_op *op);

/* Submit what was queued and wait for events: at least `wait_nr` completions
 * or timeout_ms (-1: none). Dispatches every completion. 0 or -errno. */
int loop_run_once(struct loop *loop, unsigned wait_nr, int timeout_ms);

#endif
