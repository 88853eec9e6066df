/* In-process floor. The child is a tiny RPC server on a socketpair: the
 * parent asks for "run N ops of kind X", the child times each op around
 * TPMLIB_Process() and sends the latencies back, so the floor can take part
 * in the interleaved rounds like any server, with no transport in its
 * numbers. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>

#include "floor.h"
#include "instance/memtpm.h"

enum { REQ_SETUP = 1, REQ_RUN = 2, REQ_QUIT = 3 };

struct req {
	uint32_t kind, op, count, ops_mask;
};

struct reply {
	int32_t status;
	uint32_t done;
	uint64_t cpu_ns;
};

/* Generous: the slowest floor op is ~0.5 ms; a batch is at most 1e6 ops. */
#define FLOOR_BASE_TIMEOUT_MS 30000

/* ---- child ------------------------------------------------------------ */

struct lib_ctx {
	unsigned char *rbuf;	/* reused response buffer, grown by libtpms */
	uint32_t rtotal;
	unsigned char cmd[TPM2_MAX_CMD];
};

static int lib_xfer(void *ctx, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
		    size_t *rlen)
{
	struct lib_ctx *lc = ctx;
	uint32_t rsize = 0;
	TPM_RESULT res;

	*rlen = 0;
	if (len > sizeof(lc->cmd))
		return -E2BIG;
	/* TPMLIB_Process takes a non-const buffer; never hand it our template. */
	memcpy(lc->cmd, cmd, len);
	res = TPMLIB_Process(&lc->rbuf, &rsize, &lc->rtotal, lc->cmd, (uint32_t)len);
	if (res != TPM_SUCCESS)
		return -EIO;
	if (rsize > cap)
		return -EBADMSG;
	memcpy(rsp, lc->rbuf, rsize);
	*rlen = rsize;
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Bounded read of exactly len bytes. */
static int read_all(int fd, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int r;

	while (len) {
		r = poll(&pfd, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static uint64_t cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int floor_lib_init(struct target *t, struct lib_ctx *lc, struct failure *f)
{
	struct tpm2_cmd c;
	size_t rlen = 0;
	TPM_RESULT res;
	int rc;

	res = memtpm_start();
	if (res != TPM_SUCCESS) {
		f->err = -EIO;
		snprintf(f->why, sizeof(f->why), "libtpms initialisation failed: 0x%08x", res);
		return -EIO;
	}
	t->xfer = lib_xfer;
	t->ctx = lc;
	rc = tpm2_build_startup_clear(&c);
	if (!rc)
		rc = lib_xfer(lc, c.b, c.len, t->rsp[0], sizeof(t->rsp[0]), &rlen);
	if (!rc)
		rc = tpm2_check(t->rsp[0], rlen, EXP_EMPTY, 0, f->why, sizeof(f->why));
	if (rc) {
		f->err = rc;
		f->cmdlen = c.len;
		memcpy(f->cmd, c.b, c.len);
		f->rsplen = rlen;
		memcpy(f->rsp, t->rsp[0], rlen);
	}
	return rc;
}

static int child_reply(int fd, int status, uint32_t done, uint64_t cpu, const uint64_t *lat,
		       const struct failure *f)
{
	struct reply rep = { status, done, cpu };
	int rc = write_all(fd, &rep, sizeof(rep));

	if (!rc && done)
		rc = write_all(fd, lat, done * sizeof(*lat));
	if (!rc && status)
		rc = write_all(fd, f, sizeof(*f));
	return rc;
}

static void floor_child(int fd)
{
	static struct target t;
	static struct lib_ctx lc;
	static struct failure f;
	uint64_t *lat = NULL;
	uint32_t cap = 0, done;
	struct req rq;
	int rc;

	for (;;) {
		/* The parent may think for a while between batches; bounded anyway. */
		if (read_all(fd, &rq, sizeof(rq), 600000) < 0)
			break;
		if (rq.kind == REQ_QUIT)
			break;
		if (rq.kind == REQ_SETUP) {
			memset(&f, 0, sizeof(f));
			rc = floor_lib_init(&t, &lc, &f);
			if (!rc)
				rc = target_setup(&t, rq.ops_mask, &f);
			if (child_reply(fd, rc, 0, 0, NULL, &f) < 0)
				break;
			continue;
		}
		if (rq.kind != REQ_RUN || rq.op >= OP_COUNT || rq.count > 10000000)
			break;
		if (rq.count > cap) {
			uint64_t *p = realloc(lat, rq.count * sizeof(*lat));

			if (!p)
				break;
			lat = p;
			cap = rq.count;
		}
		uint64_t c0 = cpu_now();

		rc = target_run(&t, (enum op_id)rq.op, rq.count, lat, &done, &f);
		if (child_reply(fd, rc, done, cpu_now() - c0, lat, &f) < 0)
			break;
	}
	target_teardown(&t, &f);
	TPMLIB_Terminate();
	free(lat);
	_exit(0);
}

/* ---- parent side -------------------------------------------------------- */

static int floor_call(struct floor *fl, const struct req *rq, uint64_t *lat, uint32_t *done,
		      uint64_t *cpu_ns, struct failure *f)
{
	struct reply rep;
	int timeout = FLOOR_BASE_TIMEOUT_MS + (int)(rq->count > 1000000 ? 1000000 : rq->count) * 10;
	int rc;

	rc = write_all(fl->fd, rq, sizeof(*rq));
	if (!rc)
		rc = read_all(fl->fd, &rep, sizeof(rep), timeout);
	if (!rc && rep.done > rq->count)
		rc = -EPROTO;
	if (!rc && rep.done)
		rc = read_all(fl->fd, lat, rep.done * sizeof(*lat), timeout);
	if (!rc && rep.status)
		rc = read_all(fl->fd, f, sizeof(*f), timeout);
	if (rc) {
		memset(f, 0, sizeof(*f));
		f->err = rc;
		f->op = (int)rq->op;
		snprintf(f->why, sizeof(f->why), "floor child: %s", strerror(-rc));
		return rc;
	}
	if (done)
		*done = rep.done;
	if (cpu_ns)
		*cpu_ns = rep.cpu_ns;
	return rep.status;
}

int floor_start(struct floor *fl, unsigned ops_mask, struct failure *f)
{
	struct req rq = { REQ_SETUP, 0, 0, ops_mask };
	pid_t parent = getpid();
	int sv[2];

	fl->pid = 0;
	fl->fd = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	fl->pid = fork();
	if (fl->pid < 0) {
		int rc = -errno;

		close(sv[0]);
		close(sv[1]);
		fl->pid = 0;
		return rc;
	}
	if (fl->pid == 0) {
		close(sv[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		setpgid(0, 0);	/* ^C is for the parent, which stops us */
		floor_child(sv[1]);
	}
	close(sv[1]);
	fl->fd = sv[0];
	return floor_call(fl, &rq, NULL, NULL, NULL, f);
}

int floor_run(struct floor *fl, enum op_id op, uint32_t count, uint64_t *lat_ns,
	      uint32_t *done, uint64_t *cpu_ns, struct failure *f)
{
	struct req rq = { REQ_RUN, (uint32_t)op, count, 0 };

	*done = 0;
	return floor_call(fl, &rq, lat_ns, done, cpu_ns, f);
}

void floor_stop(struct floor *fl)
{
	struct req rq = { REQ_QUIT, 0, 0, 0 };
	uint64_t deadline;
	int st;

	if (fl->fd >= 0) {
		write_all(fl->fd, &rq, sizeof(rq));
		close(fl->fd);
		fl->fd = -1;
	}
	if (fl->pid <= 0)
		return;
	deadline = now_ns() + 3000000000u;
	while (waitpid(fl->pid, &st, WNOHANG) == 0) {
		if (now_ns() > deadline) {
			kill(fl->pid, SIGKILL);
			waitpid(fl->pid, &st, 0);
			break;
		}
		usleep(1000);
	}
	fl->pid = 0;
}
