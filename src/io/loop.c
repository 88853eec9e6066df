/* Event loop backends: io_uring (one submit-and-wait per batch, completions
 * dispatched by the op pointer in user_data) and an epoll emulation of the same
 * completion API for kernels or containers where io_uring is off. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "instance/log.h"
#include "instance/store.h"
#include "io/loop.h"

#define LOOP_RING_ENTRIES 64
#define LOOP_FIXED_FILES 4
#define LOOP_MAX_OPS 16
#define LOOP_CHAIN_ROOM 24 /* a store chain (<= 16 SQEs) plus the send */
#define LOOP_FLUSH_TAG 1u /* low bit of user_data marks a state-write CQE */

struct loop {
	enum loop_backend backend;
	/* io_uring */
	struct io_uring ring;
	bool fixed_files;
	/* epoll */
	int epfd;
	struct loop_op *ops[LOOP_MAX_OPS]; /* active ops */
	struct {
		int fd;
		uint32_t events;
	} reg[LOOP_MAX_OPS];
	unsigned nreg;
	int unpollable[LOOP_MAX_OPS]; /* fds epoll refuses (EPERM) with ops waiting */
	unsigned nunpollable;
};

const char *loop_backend_name(const struct loop *loop)
{
	return loop->backend == LOOP_URING ? "io_uring" : "epoll";
}

static int loop_uring_init(struct loop *loop)
{
	int r;

	static const unsigned flag_sets[] = {
		/* One thread submits everything; completions are processed only when
		 * we wait for them, which saves the kernel's extra task-work wake-ups
		 * (6.1+). */
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN, /* 5.19+ */
		0,
	};
	struct io_uring_params p;
	size_t i;

	r = -EINVAL;
	for (i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = flag_sets[i];
		r = io_uring_queue_init_params(LOOP_RING_ENTRIES, &loop->ring, &p);
		if (r != -EINVAL)
			break;
	}
	if (r < 0)
		return r;
	/* The state store opens its temp files into fixed slots so that the write,
	 * fsync and close of one chain can name the file before it exists. */
	loop->fixed_files = io_uring_register_files_sparse(&loop->ring, LOOP_FIXED_FILES) == 0;
	loop->backend = LOOP_URING;
	return 0;
}

int loop_new(struct loop **out, enum loop_backend want)
{
	const char *env = getenv("VTPM_LOOP");
	struct loop *loop;
	int r;

	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->epfd = -1;
	if (want == LOOP_AUTO && env && (strcmp(env, "epoll") == 0 || strcmp(env, "poll") == 0))
		want = LOOP_EPOLL;
	if (want != LOOP_EPOLL) {
		r = loop_uring_init(loop);
		if (r == 0)
			goto out;
		if (want == LOOP_URING) {
			free(loop);
			return r;
		}
		log_printf("io_uring unavailable (%s), using epoll\n", strerror(-r));
	}
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		r = -errno;
		free(loop);
		return r;
	}
	loop->backend = LOOP_EPOLL;
out:
	*out = loop;
	return 0;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	if (loop->backend == LOOP_URING)
		io_uring_queue_exit(&loop->ring);
	if (loop->epfd >= 0)
		close(loop->epfd);
	free(loop);
}

/* ---- io_uring backend ---- */

static struct io_uring_sqe *loop_sqe(struct loop *loop)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);

	if (!sqe) {
		/* Full SQ: push what is queued and try again. */
		io_uring_submit(&loop->ring);
		sqe = io_uring_get_sqe(&loop->ring);
	}
	return sqe;
}

static int loop_uring_prep(struct loop *loop, struct loop_op *op)
{
	struct io_uring_sqe *sqe;
	int n;

	if (op->kind == LOP_SEND && op->flush && op->sent == 0 && store_has_pending(op->flush)) {
		/* The chain and the send it guards must reach the kernel in one submit:
		 * make room for both now rather than flushing between them. */
		if (io_uring_sq_space_left(&loop->ring) < LOOP_CHAIN_ROOM)
			io_uring_submit(&loop->ring);
		n = loop->fixed_files
			    ? store_flush_prep_uring(op->flush, &loop->ring,
						     (uint64_t)(uintptr_t)op | LOOP_FLUSH_TAG, true)
			    : -ENOTSUP;
		if (n < 0 && store_flush_sync(op->flush) < 0)
			log_printf("Error: could not write the TPM state to disk\n");
	}
	sqe = loop_sqe(loop);
	if (!sqe)
		return -EBUSY;
	switch (op->kind) {
	case LOP_ACCEPT:
		io_uring_prep_accept(sqe, op->fd, NULL, NULL, SOCK_CLOEXEC);
		break;
	case LOP_RECV:
		if (op->nonsock)
			io_uring_prep_read(sqe, op->fd, op->buf, (unsigned)op->len, (uint64_t)-1);
		else
			io_uring_prep_recv(sqe, op->fd, op->buf, op->len, 0);
		break;
	case LOP_READ:
		io_uring_prep_read(sqe, op->fd, op->buf, (unsigned)op->len, (uint64_t)-1);
		break;
	case LOP_RECVMSG:
		io_uring_prep_recvmsg(sqe, op->fd, &op->msg, MSG_CMSG_CLOEXEC);
		break;
	case LOP_SEND:
		if (op->nonsock)
			io_uring_prep_write(sqe, op->fd, op->buf + op->sent,
					    (unsigned)(op->len - op->sent), (uint64_t)-1);
		else
			io_uring_prep_send(sqe, op->fd, op->buf + op->sent, op->len - op->sent,
					   MSG_NOSIGNAL);
		break;
	default:
		return -EINVAL;
	}
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

/* ---- epoll backend ---- */

static int loop_epoll_add(struct loop *loop, struct loop_op *op)
{
	unsigned i;

	for (i = 0; i < LOOP_MAX_OPS; i++) {
		if (!loop->ops[i]) {
			loop->ops[i] = op;
			return 0;
		}
	}
	return -ENOSPC;
}

/* Try the syscall of one op without blocking; true if it completed. */
static bool loop_epoll_try(struct loop_op *op)
{
	struct cmsghdr *c;
	ssize_t r;

	switch (op->kind) {
	case LOP_ACCEPT:
		r = accept4(op->fd, NULL, NULL, SOCK_CLOEXEC);
		break;
	case LOP_RECV:
		r = op->nonsock ? read(op->fd, op->buf, op->len)
				: recv(op->fd, op->buf, op->len, MSG_DONTWAIT);
		break;
	case LOP_READ:
		r = read(op->fd, op->buf, op->len);
		break;
	case LOP_RECVMSG:
		r = recvmsg(op->fd, &op->msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		break;
	case LOP_SEND:
		if (op->flush && op->sent == 0 && store_has_pending(op->flush) &&
		    store_flush_sync(op->flush) < 0)
			log_printf("Error: could not write the TPM state to disk\n");
		r = op->nonsock ? write(op->fd, op->buf + op->sent, op->len - op->sent)
				: send(op->fd, op->buf + op->sent, op->len - op->sent,
				       MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r > 0) {
			op->sent += (size_t)r;
			if (op->sent < op->len)
				return false;
			r = (ssize_t)op->len;
		}
		break;
	default:
		r = -1;
		errno = EINVAL;
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return false;
	op->res = r < 0 ? -errno : (int)r;
	if (op->kind == LOP_RECVMSG && r >= 0) {
		for (c = CMSG_FIRSTHDR(&op->msg); c; c = CMSG_NXTHDR(&op->msg, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
			    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
				memcpy(&op->rfd, CMSG_DATA(c), sizeof(int));
				break;
			}
		}
	}
	op->ready = true;
	return true;
}

/* Bring the epoll interest set in line with the active ops. */
static void loop_epoll_sync(struct loop *loop)
{
	struct {
		int fd;
		uint32_t events;
	} want[LOOP_MAX_OPS];
	unsigned nwant = 0, i, j;
	struct epoll_event ev;

	for (i = 0; i < LOOP_MAX_OPS; i++) {
		struct loop_op *op = loop->ops[i];
		uint32_t e;

		if (!op || op->ready)
			continue;
		e = op->kind == LOP_SEND ? EPOLLOUT : EPOLLIN;
		for (j = 0; j < nwant && want[j].fd != op->fd; j++)
			;
		if (j == nwant) {
			want[nwant].fd = op->fd;
			want[nwant++].events = 0;
		}
		want[j].events |= e;
	}
	for (i = 0; i < loop->nreg; i++) {
		for (j = 0; j < nwant && want[j].fd != loop->reg[i].fd; j++)
			;
		if (j == nwant)
			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, loop->reg[i].fd, NULL);
	}
	for (j = 0; j < nwant; j++) {
		for (i = 0; i < loop->nreg && loop->reg[i].fd != want[j].fd; i++)
			;
		if (i < loop->nreg && loop->reg[i].events == want[j].events)
			continue;
		memset(&ev, 0, sizeof(ev));
		ev.events = want[j].events;
		ev.data.fd = want[j].fd;
		/* fds may have been closed and reused meanwhile: fall back both ways. */
		if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, want[j].fd, &ev) < 0 &&
		    epoll_ctl(loop->epfd, EPOLL_CTL_ADD, want[j].fd, &ev) < 0 && errno == EPERM)
			/* Files and devices without poll support (/dev/null, some
			 * chardevs) are always "ready": their ops are simply tried. */
			loop->unpollable[loop->nunpollable++] = want[j].fd;
	}
	/* Unpollable fds stay out of the registered set, so they are met (and
	 * tried directly) again on every round. */
	loop->nreg = 0;
	for (j = 0; j < nwant; j++) {
		bool unpollable = false;

		for (i = 0; i < loop->nunpollable; i++)
			unpollable |= loop->unpollable[i] == want[j].fd;
		if (!unpollable) {
			loop->reg[loop->nreg].fd = want[j].fd;
			loop->reg[loop->nreg++].events = want[j].events;
		}
	}
}

static unsigned loop_epoll_dispatch(struct loop *loop)
{
	unsigned i, n = 0;

	for (i = 0; i < LOOP_MAX_OPS; i++) {
		struct loop_op *op = loop->ops[i];

		if (!op || !op->ready)
			continue;
		loop->ops[i] = NULL;
		op->ready = false;
		op->active = false;
		n++;
		op->cb(loop, op, op->res);
	}
	return n;
}

static int loop_epoll_run(struct loop *loop, int timeout_ms)
{
	struct epoll_event evs[LOOP_MAX_OPS];
	unsigned i;
	int n, k;

	/* Sends and anything already completed go first, without sleeping. */
	for (i = 0; i < LOOP_MAX_OPS; i++)
		if (loop->ops[i] && !loop->ops[i]->ready && loop->ops[i]->kind == LOP_SEND)
			loop_epoll_try(loop->ops[i]);
	if (loop_epoll_dispatch(loop))
		timeout_ms = 0;
	loop->nunpollable = 0;
	loop_epoll_sync(loop);
	if (loop->nunpollable) {
		/* Ops on an unpollable fd are tried directly; then the pollable ones
		 * are looked at without sleeping. */
		for (i = 0; i < LOOP_MAX_OPS; i++) {
			struct loop_op *op = loop->ops[i];

			for (unsigned u = 0; op && !op->ready && u < loop->nunpollable; u++)
				if (loop->unpollable[u] == op->fd)
					loop_epoll_try(op);
		}
		if (loop_epoll_dispatch(loop))
			timeout_ms = 0;
	}
	n = epoll_wait(loop->epfd, evs, LOOP_MAX_OPS, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (k = 0; k < n; k++) {
		for (i = 0; i < LOOP_MAX_OPS; i++) {
			struct loop_op *op = loop->ops[i];

			if (op && !op->ready && op->fd == evs[k].data.fd)
				loop_epoll_try(op);
		}
	}
	loop_epoll_dispatch(loop);
	return 0;
}

/* ---- common ---- */

static int loop_start(struct loop *loop, struct loop_op *op)
{
	int r;

	if (op->active)
		return -EBUSY;
	op->active = true;
	op->canceled = false;
	op->ready = false;
	op->flush_err = 0;
	if (loop->backend == LOOP_URING)
		r = loop_uring_prep(loop, op);
	else
		r = loop_epoll_add(loop, op);
	if (r < 0)
		op->active = false;
	return r;
}

static void loop_op_set(struct loop_op *op, enum loop_kind kind, int fd, void *buf, size_t len,
			loop_cb cb, void *data)
{
	op->kind = kind;
	op->fd = fd;
	op->buf = buf;
	op->len = len;
	op->sent = 0;
	op->flush = NULL;
	op->rfd = -1;
	op->cb = cb;
	op->data = data;
}

int loop_accept(struct loop *loop, struct loop_op *op, int fd, loop_cb cb, void *data)
{
	loop_op_set(op, LOP_ACCEPT, fd, NULL, 0, cb, data);
	return loop_start(loop, op);
}

int loop_recv(struct loop *loop, struct loop_op *op, int fd, void *buf, size_t len, loop_cb cb,
	      void *data)
{
	loop_op_set(op, LOP_RECV, fd, buf, len, cb, data);
	return loop_start(loop, op);
}

int loop_read(struct loop *loop, struct loop_op *op, int fd, void *buf, size_t len, loop_cb cb,
	      void *data)
{
	loop_op_set(op, LOP_READ, fd, buf, len, cb, data);
	return loop_start(loop, op);
}

int loop_recvmsg(struct loop *loop, struct loop_op *op, int fd, void *buf, size_t len,
		 loop_cb cb, void *data)
{
	loop_op_set(op, LOP_RECVMSG, fd, buf, len, cb, data);
	memset(&op->msg, 0, sizeof(op->msg));
	memset(&op->cmsg, 0, sizeof(op->cmsg));
	op->iov.iov_base = buf;
	op->iov.iov_len = len;
	op->msg.msg_iov = &op->iov;
	op->msg.msg_iovlen = 1;
	op->msg.msg_control = op->cmsg.buf;
	op->msg.msg_controllen = sizeof(op->cmsg.buf);
	return loop_start(loop, op);
}

int loop_send(struct loop *loop, struct loop_op *op, int fd, const void *buf, size_t len,
	      struct store *flush, loop_cb cb, void *data)
{
	loop_op_set(op, LOP_SEND, fd, (void *)buf, len, cb, data);
	op->flush = flush;
	return loop_start(loop, op);
}

void loop_cancel(struct loop *loop, struct loop_op *op)
{
	struct io_uring_sqe *sqe;

	if (!op->active || op->canceled)
		return;
	op->canceled = true;
	if (loop->backend == LOOP_URING) {
		sqe = loop_sqe(loop);
		if (sqe) {
			io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
			io_uring_sqe_set_data64(sqe, 0);
		}
		return;
	}
	if (!op->ready) {
		op->res = -ECANCELED;
		op->ready = true;
	}
}

static void loop_uring_complete(struct loop *loop, struct loop_op *op, int res)
{
	struct cmsghdr *c;
	int err;

	if (op->kind == LOP_SEND) {
		if (res == -ECANCELED && op->flush_err && !op->canceled) {
			/* The state chain failed and took the send with it: retry the
			 * writes synchronously, then send anyway (the TPM has already
			 * answered; withholding the reply would only hang the client). */
			err = store_flush_sync(op->flush);
			if (err < 0)
				log_printf("Error: could not write the TPM state to disk: %s\n",
					   strerror(-err));
			op->flush_err = 0;
			if (loop_uring_prep(loop, op) == 0)
				return;
		}
		if (res > 0) {
			op->sent += (size_t)res;
			if (op->sent < op->len && !op->canceled && loop_uring_prep(loop, op) == 0)
				return;
			res = (int)op->sent;
		}
	}
	if (op->kind == LOP_RECVMSG && res >= 0) {
		for (c = CMSG_FIRSTHDR(&op->msg); c; c = CMSG_NXTHDR(&op->msg, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
			    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
				memcpy(&op->rfd, CMSG_DATA(c), sizeof(int));
				break;
			}
		}
	}
	op->active = false;
	op->cb(loop, op, res);
}

static int loop_uring_run(struct loop *loop, unsigned wait_nr, int timeout_ms)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	unsigned head, n = 0, i;
	struct {
		struct loop_op *op;
		uint64_t ud;
		int res;
	} done[LOOP_RING_ENTRIES * 2];
	int r, err;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
	}
	r = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, wait_nr ? wait_nr : 1,
					     timeout_ms >= 0 ? &ts : NULL, NULL);
	if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN)
		return r;
	/* Collect first: callbacks queue new SQEs and must not see a half-read CQ. */
	io_uring_for_each_cqe(&loop->ring, head, cqe)
	{
		if (n == sizeof(done) / sizeof(done[0]))
			break;
		done[n].ud = io_uring_cqe_get_data64(cqe);
		done[n].res = cqe->res;
		n++;
	}
	io_uring_cq_advance(&loop->ring, n);
	for (i = 0; i < n; i++) {
		uint64_t ud = done[i].ud;
		struct loop_op *op;

		if (ud == 0)
			continue; /* cancel requests */
		if (ud & LOOP_FLUSH_TAG) {
			op = (struct loop_op *)(uintptr_t)(ud & ~(uint64_t)LOOP_FLUSH_TAG);
			if (store_flush_cqe(op->flush, done[i].res, &err) == 1 && err < 0)
				op->flush_err = err;
			continue;
		}
		loop_uring_complete(loop, (struct loop_op *)(uintptr_t)ud, done[i].res);
	}
	return 0;
}

int loop_run_once(struct loop *loop, unsigned wait_nr, int timeout_ms)
{
	if (loop->backend == LOOP_URING)
		return loop_uring_run(loop, wait_nr, timeout_ms);
	return loop_epoll_run(loop, timeout_ms);
}
