/* Ctrl-channel client for export-state/import-state. One connection per
 * exchange, one command at a time (the ctrl channel does not pipeline), every
 * wait bounded by the exchange's deadline so a stuck instance costs at most
 * MIG_TIMEOUT_MS of the event loop. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "manager/migrate.h"
#include "manager/mgr.h"
#include "vtpm/ctrl_proto.h"

struct mig_conn {
	int fd;
	uint64_t deadline;
	const char *step; /* what we were doing, for the error message */
};

__attribute__((format(printf, 3, 4))) static void mig_why(char *why, size_t whylen,
							  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static void mig_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t mig_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void mig_blobs_free(struct mig_blobs *b)
{
	for (int i = 0; i < SF_NBLOBS; i++) {
		free(b->data[i]);
		b->data[i] = NULL;
		b->len[i] = 0;
	}
}

/* Wait for `events` until the deadline. 0, -ETIMEDOUT or -errno. */
static int mig_wait(struct mig_conn *c, short events)
{
	for (;;) {
		uint64_t now = mgr_now_ms();
		struct pollfd pfd = { .fd = c->fd, .events = events };
		int r;

		if (now >= c->deadline)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)(c->deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		return 0; /* POLLERR/POLLHUP: the next send/recv says what happened */
	}
}

static int mig_connect(struct mig_conn *c, const struct sockaddr *sa, socklen_t slen)
{
	int soerr = 0, r;
	socklen_t sl = sizeof(soerr);

	c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, sa, slen) == 0)
		return 0;
	/* a unix socket with a full backlog says EAGAIN: the instance is busy */
	if (errno != EINPROGRESS)
		return -errno;
	r = mig_wait(c, POLLOUT);
	if (r < 0)
		return r;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -errno;
	return soerr ? -soerr : 0;
}

static int mig_send(struct mig_conn *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			int r = mig_wait(c, POLLOUT);

			if (r < 0)
				return r;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int mig_recv(struct mig_conn *c, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t r = recv(c->fd, p, len, MSG_DONTWAIT);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			int e = mig_wait(c, POLLIN);

			if (e < 0)
				return e;
			continue;
		}
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET; /* swtpm closes without an answer on bad input */
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* A command whose answer is only the 4-byte result. */
static int mig_simple(struct mig_conn *c, uint32_t cmd, const uint8_t *body, size_t blen,
		      uint32_t *res)
{
	uint8_t buf[8];
	int r;

	if (blen > 4)
		return -EINVAL;
	mig_put32(buf, cmd);
	if (blen)
		memcpy(buf + 4, body, blen);
	/* code and body in one send: swtpm processes what the first read got */
	r = mig_send(c, buf, 4 + blen);
	if (r == 0)
		r = mig_recv(c, buf, 4);
	if (r == 0)
		*res = mig_get32(buf);
	return r;
}

static void mig_io_why(const struct mig_conn *c, int r, char *why, size_t whylen)
{
	if (r == -ETIMEDOUT)
		mig_why(why, whylen,
			"the ctrl channel did not answer %s within %d ms (is another client, "
			"e.g. QEMU, holding it?)",
			c->step, MIG_TIMEOUT_MS);
	else
		mig_why(why, whylen, "ctrl channel error during %s: %s", c->step, strerror(-r));
}

static const char *mig_res_name(uint32_t res)
{
	switch (res) {
	case CTRL_RES_BAD_PARAMETER:
		return "TPM_BAD_PARAMETER";
	case CTRL_RES_FAIL:
		return "TPM_FAIL";
	case CTRL_RES_BAD_ORDINAL:
		return "TPM_BAD_ORDINAL";
	case CTRL_RES_KEYNOTFOUND:
		return "TPM_KEYNOTFOUND: a key the blob needs (--migration-key/--key) is not configured";
	case CTRL_RES_DECRYPT_ERROR:
		return "TPM_DECRYPT_ERROR: wrong --migration-key or --key";
	case CTRL_RES_BAD_KEY_PROPERTY:
		return "TPM_BAD_KEY_PROPERTY: key size differs from the blob's";
	case CTRL_RES_BAD_DATASIZE:
		return "TPM_BAD_DATASIZE";
	case CTRL_RES_BAD_VERSION:
		return "TPM_BAD_VERSION";
	case CTRL_RES_TPM2_FAILURE:
		return "TPM_RC_FAILURE: the TPM rejected the state";
	default:
		return "TPM error";
	}
}

int mig_export(const struct sockaddr *sa, socklen_t slen, bool encrypted, struct mig_blobs *out,
	       char *why, size_t whylen)
{
	struct mig_conn c = { .fd = -1, .deadline = mgr_now_ms() + MIG_TIMEOUT_MS,
			      .step = "connect" };
	int r;

	memset(out, 0, sizeof(*out));
	r = mig_connect(&c, sa, slen);
	if (r < 0) {
		mig_io_why(&c, r, why, whylen);
		goto out;
	}
	for (uint32_t t = 1; t <= SF_NBLOBS; t++) {
		uint8_t req[16], hdr[16];
		uint32_t res, len;

		c.step = t == 1 ? "GET_STATEBLOB(permanent)"
		       : t == 2 ? "GET_STATEBLOB(volatile)" : "GET_STATEBLOB(savestate)";
		mig_put32(req, CMD_GET_STATEBLOB);
		mig_put32(req + 4, encrypted ? 0 : PTM_STATE_FLAG_DECRYPTED);
		mig_put32(req + 8, t);
		mig_put32(req + 12, 0);
		r = mig_send(&c, req, sizeof(req));
		if (r == 0)
			r = mig_recv(&c, hdr, 4);
		if (r < 0) {
			mig_io_why(&c, r, why, whylen);
			goto out;
		}
		res = mig_get32(hdr);
		if (res == CTRL_RES_BAD_ORDINAL) {
			/* the only 4-byte answer: the TPM was never initialised */
			mig_why(why, whylen,
				"%s: the TPM is not running (no CMD_INIT yet: start it with --flags "
				"not-need-init, or let its client initialise it)",
				c.step);
			r = -EPROTO;
			goto out;
		}
		if (res != 0 && res != CTRL_RES_RETRY) {
			/* the rest of the header may or may not follow: the
			 * connection is not reused */
			mig_why(why, whylen, "%s failed: 0x%x (%s)", c.step, res, mig_res_name(res));
			r = -EPROTO;
			goto out;
		}
		r = mig_recv(&c, hdr + 4, 12);
		if (r < 0) {
			mig_io_why(&c, r, why, whylen);
			goto out;
		}
		if (res == CTRL_RES_RETRY)
			continue; /* this state does not exist: empty */
		len = mig_get32(hdr + 12);
		if (len != mig_get32(hdr + 8) || len > SF_MAX_BLOB) {
			mig_why(why, whylen, "%s: implausible blob length %u", c.step, len);
			r = -EPROTO;
			goto out;
		}
		out->flags[t - 1] = mig_get32(hdr + 4) & PTM_STATE_FLAG_ENCRYPTED;
		if (len == 0)
			continue;
		out->data[t - 1] = malloc(len);
		if (!out->data[t - 1]) {
			mig_why(why, whylen, "out of memory");
			r = -ENOMEM;
			goto out;
		}
		out->len[t - 1] = len;
		r = mig_recv(&c, out->data[t - 1], len);
		if (r < 0) {
			mig_io_why(&c, r, why, whylen);
			goto out;
		}
	}
	r = 0;
out:
	if (c.fd >= 0)
		close(c.fd);
	if (r < 0)
		mig_blobs_free(out);
	return r;
}

/* After a failed import the TPM is stopped; bring it back on its own state. */
static bool mig_restore(const struct sockaddr *sa, socklen_t slen)
{
	struct mig_conn c = { .fd = -1, .deadline = mgr_now_ms() + 2000, .step = "CMD_INIT" };
	uint8_t flags[4] = { 0, 0, 0, 0 };
	uint32_t res = 1;
	int r;

	r = mig_connect(&c, sa, slen);
	if (r == 0)
		r = mig_simple(&c, CMD_INIT, flags, 4, &res);
	if (c.fd >= 0)
		close(c.fd);
	return r == 0 && res == 0;
}

int mig_import(const struct sockaddr *sa, socklen_t slen, const struct sf_state *s,
	       bool *restored, char *why, size_t whylen)
{
	struct mig_conn c = { .fd = -1, .deadline = mgr_now_ms() + MIG_TIMEOUT_MS,
			      .step = "connect" };
	bool stopped = false;
	uint8_t body[4];
	uint32_t res = 0;
	int r;

	*restored = false;
	r = mig_connect(&c, sa, slen);
	if (r < 0)
		goto io;
	/* SET_STATEBLOB is refused while the TPM runs; STOP keeps the process
	 * and its storage lock, and saves nothing */
	c.step = "CMD_STOP";
	r = mig_simple(&c, CMD_STOP, NULL, 0, &res);
	if (r < 0)
		goto io;
	if (res != 0)
		goto tpm;
	stopped = true;
	for (int i = 0; i < SF_NBLOBS; i++) {
		uint8_t req[16];

		c.step = i == 0 ? "SET_STATEBLOB(permanent)"
		       : i == 1 ? "SET_STATEBLOB(volatile)" : "SET_STATEBLOB(savestate)";
		mig_put32(req, CMD_SET_STATEBLOB);
		mig_put32(req + 4, s->blobs[i].flags);
		mig_put32(req + 8, s->blobs[i].type);
		mig_put32(req + 12, (uint32_t)s->blobs[i].len);
		r = mig_send(&c, req, sizeof(req));
		if (r == 0 && s->blobs[i].len)
			r = mig_send(&c, s->blobs[i].data, s->blobs[i].len);
		if (r == 0)
			r = mig_recv(&c, body, 4);
		if (r < 0)
			goto io;
		res = mig_get32(body);
		if (res != 0)
			goto tpm;
	}
	/* DELETE_VOLATILE: the volatile state is consumed now (resume) and no
	 * stale volatilestate file may be used at a later restart */
	c.step = "CMD_INIT";
	mig_put32(body, PTM_INIT_FLAG_DELETE_VOLATILE);
	r = mig_simple(&c, CMD_INIT, body, 4, &res);
	if (r < 0)
		goto io;
	if (res != 0)
		goto tpm;
	close(c.fd);
	return 0;
tpm:
	mig_why(why, whylen, "%s failed: 0x%x (%s)", c.step, res, mig_res_name(res));
	r = -EPROTO;
	goto fail;
io:
	mig_io_why(&c, r, why, whylen);
fail:
	if (c.fd >= 0)
		close(c.fd);
	if (stopped)
		*restored = mig_restore(sa, slen);
	return r;
}
