/* Management socket server. Every socket is non-blocking and every buffer is
 * bounded, so a slow, stuck or hostile client only ever costs itself. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "instance/log.h"
#include "manager/mgmt.h"
#include "manager/protocol.h"
#include "manager/supervisor.h"
#include "vtpm_build.h"

#define MGMT_IN_CAP (PROTO_MAX_LINE + 1) /* a full line plus its newline */
/* Refused peers linger (see mgmt_fatal) in a pool of their own, so they can
 * never crowd out the clients that are allowed in. */
#define MGMT_MAX_REFUSED 64

struct mgmt_client {
	struct mgmt_client *next;
	uint64_t serial;
	int fd;
	struct mgr_watch w;
	uid_t uid;
	pid_t pid;
	char *in;
	size_t inlen, incap;
	char *out;
	size_t outlen, outoff, outcap;
	unsigned inflight; /* requests not answered yet */
	uint32_t events;   /* current epoll mask */
	bool subscribed;
	bool rd_closed; /* peer sent EOF: answer what is pending, then close */
	bool closing;	/* no more requests: lingering close (see mgmt_fatal) */
	bool wr_shut;	/* closing, output sent, write side shut down */
	bool dead;	/* fd closed; freed by mgmt_reap() */
	bool refused;	/* failed the peer check: only told why */
	uint64_t close_deadline;
};

int mgmt_listen(struct mgr *m)
{
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int fd, r;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(m->sock_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, m->sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (lstat(m->sock_path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			return -EEXIST;
		}
		/* someone listening there is another manager: never steal it */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			close(fd);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(m->sock_path);
	}
	/* created 0600 from the start: no window with a wider mode */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(m->sock_path, 0600) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (stat(m->sock_path, &st) == 0)
		m->owner_uid = st.st_uid;
	m->listen_fd = fd;
	m->listen_w.kind = MGR_W_LISTEN;
	m->listen_w.obj = NULL;
	r = mgr_watch_add(m, fd, EPOLLIN, &m->listen_w);
	if (r < 0) {
		close(fd);
		m->listen_fd = -1;
	}
	return r;
}

/* ---- output ---- */

static void mgmt_drop(struct mgr *m, struct mgmt_client *c)
{
	if (c->dead)
		return;
	mgr_watch_del(m, c->fd);
	close(c->fd);
	c->fd = -1;
	c->dead = true;
	if (c->refused)
		m->nrefused--;
	else
		m->nclients--;
}

static void mgmt_set_events(struct mgr *m, struct mgmt_client *c)
{
	uint32_t ev = 0;

	if (!c->rd_closed)
		ev |= EPOLLIN;
	if (c->outlen > c->outoff)
		ev |= EPOLLOUT;
	if (ev != c->events && mgr_watch_mod(m, c->fd, ev, &c->w) == 0)
		c->events = ev;
}

/* Close a connection that has nothing more to do. A closing one only shuts
 * its write side here: closing a unix socket with unread input makes the
 * peer's recv fail with ECONNRESET before it reads our error message. */
static void mgmt_maybe_close(struct mgr *m, struct mgmt_client *c)
{
	if (c->dead || c->outlen > c->outoff)
		return;
	if (c->closing) {
		if (c->rd_closed) {
			mgmt_drop(m, c);
		} else if (!c->wr_shut) {
			shutdown(c->fd, SHUT_WR);
			c->wr_shut = true;
		}
		return;
	}
	if (c->rd_closed && c->inflight == 0)
		mgmt_drop(m, c);
}

static void mgmt_flush(struct mgr *m, struct mgmt_client *c)
{
	while (c->outlen > c->outoff) {
		ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			mgmt_drop(m, c);
			return;
		}
		c->outoff += (size_t)w;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	mgmt_set_events(m, c);
	mgmt_maybe_close(m, c);
}

static void mgmt_queue(struct mgr *m, struct mgmt_client *c, const char *buf, size_t len)
{
	size_t pending;

	if (c->dead)
		return;
	pending = c->outlen - c->outoff;
	if (pending + len > MGMT_MAX_OUT) {
		log_printf("client pid %d does not read its replies (%zu bytes queued); dropping it\n",
			   (int)c->pid, pending);
		mgmt_drop(m, c);
		return;
	}
	if (c->outoff > 0 && c->outlen + len > c->outcap) {
		memmove(c->out, c->out + c->outoff, pending);
		c->outlen = pending;
		c->outoff = 0;
	}
	if (c->outlen + len > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		char *n;

		while (cap < c->outlen + len)
			cap *= 2;
		n = realloc(c->out, cap);
		if (!n) {
			mgmt_drop(m, c);
			return;
		}
		c->out = n;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, buf, len);
	c->outlen += len;
	mgmt_flush(m, c);
}

static void mgmt_send_msg(struct mgr *m, struct mgmt_client *c, json_object *msg)
{
	size_t len;
	char *s;

	if (!msg) {
		mgmt_drop(m, c);
		return;
	}
	s = proto_serialize(msg, &len);
	json_object_put(msg);
	if (!s) {
		mgmt_drop(m, c);
		return;
	}
	mgmt_queue(m, c, s, len);
	free(s);
}

static struct mgmt_client *mgmt_find(struct mgr *m, uint64_t serial)
{
	for (struct mgmt_client *c = m->clients; c; c = c->next)
		if (c->serial == serial && !c->dead)
			return c;
	return NULL;
}

void mgmt_reply(struct mgr *m, uint64_t client, json_object *id, json_object *ret)
{
	struct mgmt_client *c = mgmt_find(m, client);

	if (!c) {
		json_object_put(ret);
		return;
	}
	if (c->inflight)
		c->inflight--;
	mgmt_send_msg(m, c, proto_msg_return(ret, id));
}

void mgmt_reply_error(struct mgr *m, uint64_t client, json_object *id, const char *cls,
		      const char *desc)
{
	struct mgmt_client *c = mgmt_find(m, client);

	if (!c)
		return;
	if (c->inflight)
		c->inflight--;
	mgmt_send_msg(m, c, proto_msg_error(cls, desc, id));
}

void mgmt_event(struct mgr *m, const char *name, json_object *data)
{
	struct timespec now;
	json_object *msg;
	size_t len;
	char *s;

	clock_gettime(CLOCK_REALTIME, &now);
	msg = proto_msg_event(name, data, &now);
	if (!msg)
		return;
	s = proto_serialize(msg, &len);
	json_object_put(msg);
	if (!s)
		return;
	for (struct mgmt_client *c = m->clients; c; c = c->next)
		if (c->subscribed && !c->dead)
			mgmt_queue(m, c, s, len);
	free(s);
}

/* ---- input ---- */

static json_object *mgmt_version(const struct mgr *m)
{
	json_object *o = json_object_new_object(), *p;

	if (!o)
		return NULL;
	json_object_object_add(o, "package", json_object_new_string("vtpmd"));
	json_object_object_add(o, "version", json_object_new_string(VTPM_VERSION));
	json_object_object_add(o, "swtpm-compat", json_object_new_string(SWTPM_COMPAT_VERSION));
	json_object_object_add(o, "protocol", json_object_new_int(1));
	/* the pool of pre-manufactured instances: its size and how many wait */
	p = json_object_new_object();
	if (p) {
		json_object_object_add(p, "size", json_object_new_int((int)m->pool.want));
		json_object_object_add(p, "parked", json_object_new_int((int)pool_parked(m)));
		json_object_object_add(o, "pool", p);
	}
	return o;
}

static void mgmt_handle_line(struct mgr *m, struct mgmt_client *c, const char *line, size_t len)
{
	struct proto_req req;
	struct proto_error err;
	int r;

	r = proto_parse(line, len, &req, &err);
	if (r == 1) {
		proto_req_free(&req);
		return;
	}
	c->inflight++;
	if (r < 0) {
		mgmt_reply_error(m, c->serial, req.id, err.cls, err.desc);
		proto_req_free(&req);
		return;
	}
	switch (req.cmd) {
	case PROTO_CMD_QUERY_VERSION:
		mgmt_reply(m, c->serial, req.id, mgmt_version(m));
		break;
	case PROTO_CMD_SUBSCRIBE:
		c->subscribed = true;
		mgmt_reply(m, c->serial, req.id, NULL);
		break;
	case PROTO_CMD_UNSUBSCRIBE:
		c->subscribed = false;
		mgmt_reply(m, c->serial, req.id, NULL);
		break;
	default:
		sup_command(m, &req, c->serial);
		break;
	}
	proto_req_free(&req);
}

/* Error, then close once it is out and the peer has closed too (or after
 * MGMT_LINGER_MS). */
static void mgmt_fatal(struct mgr *m, struct mgmt_client *c, const char *cls, const char *desc)
{
	c->closing = true;
	c->inlen = 0;
	c->close_deadline = mgr_now_ms() + MGMT_LINGER_MS;
	mgmt_send_msg(m, c, proto_msg_error(cls, desc, NULL));
	if (!c->dead)
		mgmt_set_events(m, c);
	mgmt_maybe_close(m, c);
}

static void mgmt_process(struct mgr *m, struct mgmt_client *c)
{
	size_t start = 0;
	char *nl;

	while (!c->dead && !c->closing &&
	       (nl = memchr(c->in + start, '\n', c->inlen - start)) != NULL) {
		size_t len = (size_t)(nl - (c->in + start));

		mgmt_handle_line(m, c, c->in + start, len);
		start += len + 1;
	}
	if (c->dead || c->closing)
		return;
	if (start > 0) {
		memmove(c->in, c->in + start, c->inlen - start);
		c->inlen -= start;
	}
	if (c->inlen >= MGMT_IN_CAP) {
		char desc[96];

		snprintf(desc, sizeof(desc), "message longer than %d bytes without a newline",
			 PROTO_MAX_LINE);
		mgmt_fatal(m, c, PROTO_ERR_TOOLONG, desc);
	}
}

/* Closing: swallow what the peer still sends until it closes (bounded by
 * MGMT_LINGER_MS). */
static void mgmt_drain(struct mgr *m, struct mgmt_client *c)
{
	char scratch[4096];

	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t r = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);

		if (r > 0)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		c->rd_closed = true;
		mgmt_drop(m, c);
		return;
	}
}

static void mgmt_read(struct mgr *m, struct mgmt_client *c)
{
	/* a few reads per wakeup, so one busy client cannot starve the rest */
	for (int rounds = 0; rounds < 4 && !c->dead && !c->rd_closed; rounds++) {
		ssize_t r;

		if (c->closing) {
			mgmt_drain(m, c);
			return;
		}
		if (c->inlen == c->incap) {
			size_t cap = c->incap ? c->incap * 2 : 4096;
			char *n;

			if (cap > MGMT_IN_CAP)
				cap = MGMT_IN_CAP;
			n = realloc(c->in, cap);
			if (!n) {
				mgmt_drop(m, c);
				return;
			}
			c->in = n;
			c->incap = cap;
		}
		r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			mgmt_drop(m, c); /* reset: nobody to answer */
			return;
		}
		if (r == 0) {
			/* Half-close: answer what was asked, then close. A partial
			 * line is a request that was never finished: drop it. */
			c->rd_closed = true;
			c->inlen = 0;
			mgmt_set_events(m, c);
			mgmt_maybe_close(m, c);
			return;
		}
		c->inlen += (size_t)r;
		mgmt_process(m, c);
	}
}

void mgmt_client_event(struct mgr *m, struct mgmt_client *c, uint32_t events)
{
	if (c->dead)
		return;
	if (events & EPOLLOUT)
		mgmt_flush(m, c);
	if (!c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))) {
		if (!c->rd_closed)
			mgmt_read(m, c);
		else if (events & (EPOLLHUP | EPOLLERR))
			mgmt_drop(m, c); /* gone for good: nothing can be delivered */
	}
}

/* ---- accepting ---- */

static void mgmt_refuse(int fd, const char *cls, const char *desc)
{
	json_object *msg = proto_msg_error(cls, desc, NULL);
	size_t len;
	char *s = msg ? proto_serialize(msg, &len) : NULL;

	if (s && send(fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_printf("could not tell a refused client why: %s\n", strerror(errno));
	free(s);
	json_object_put(msg);
	close(fd);
}

void mgmt_accept(struct mgr *m)
{
	for (int i = 0; i < 64; i++) {
		struct mgmt_client *c;
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		char desc[160];
		bool allowed;
		int fd;

		fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_printf("accept: %s\n", strerror(errno));
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
			close(fd);
			continue;
		}
		allowed = cred.uid == 0 || cred.uid == m->owner_uid;
		if (allowed ? m->nclients >= MGMT_MAX_CLIENTS : m->nrefused >= MGMT_MAX_REFUSED) {
			mgmt_refuse(fd, allowed ? PROTO_ERR_BUSY : PROTO_ERR_PERM,
				    allowed ? "too many management clients" : "permission denied");
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->uid = cred.uid;
		c->pid = cred.pid;
		c->serial = ++m->client_serial;
		c->w.kind = MGR_W_CLIENT;
		c->w.obj = c;
		c->events = EPOLLIN;
		c->refused = !allowed;
		if (mgr_watch_add(m, fd, EPOLLIN, &c->w) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = m->clients;
		m->clients = c;
		if (allowed) {
			m->nclients++;
			continue;
		}
		/* never served: told why, then closed */
		m->nrefused++;
		snprintf(desc, sizeof(desc),
			 "permission denied: uid %u may not manage vtpmd (only root and uid %u)",
			 (unsigned)cred.uid, (unsigned)m->owner_uid);
		log_printf("refused a client: pid %d uid %u\n", (int)cred.pid, (unsigned)cred.uid);
		mgmt_fatal(m, c, PROTO_ERR_PERM, desc);
	}
}

void mgmt_reap(struct mgr *m)
{
	struct mgmt_client **pp = &m->clients, *c;

	while ((c = *pp)) {
		if (c->dead) {
			*pp = c->next;
			free(c->in);
			free(c->out);
			free(c);
		} else {
			pp = &c->next;
		}
	}
}

uint64_t mgmt_next_deadline(struct mgr *m)
{
	uint64_t d = 0;

	for (struct mgmt_client *c = m->clients; c; c = c->next)
		if (!c->dead && c->closing && (!d || c->close_deadline < d))
			d = c->close_deadline;
	return d;
}

void mgmt_timers(struct mgr *m, uint64_t now)
{
	for (struct mgmt_client *c = m->clients; c; c = c->next)
		if (!c->dead && c->closing && c->close_deadline <= now)
			mgmt_drop(m, c);
}

void mgmt_close_all(struct mgr *m)
{
	for (struct mgmt_client *c = m->clients; c; c = c->next)
		mgmt_drop(m, c);
	mgmt_reap(m);
	if (m->listen_fd >= 0) {
		mgr_watch_del(m, m->listen_fd);
		close(m->listen_fd);
		m->listen_fd = -1;
	}
}
