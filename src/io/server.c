/* The socket and chardev front ends: data and ctrl connections as small state
 * machines on the event loop. One command is processed at a time across both
 * channels (libtpms is single-threaded); each reply is sent after the state it
 * changed is on disk. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "instance/ctrl.h"
#include "instance/log.h"
#include "io/ctrl_codec.h"
#include "io/loop.h"
#include "io/server.h"
#include "io/sockets.h"
#include "io/tpm_frame.h"

/* How long the rest of a started TPM command may take to arrive; swtpm waits
 * forever (and blocks everything meanwhile). */
#define DATA_FRAME_TIMEOUT_MS 5000
#define DATA_BUF_CAP (2 * (TPM_FRAME_MAX_CMD + TPM_FRAME_PREFIX_LEN))
#define DATA_OUT_CAP (TPM_FRAME_MAX_CMD * 2 + TPM_FRAME_WRAP_EXTRA)

struct server;

struct conn {
	struct server *srv;
	bool is_ctrl;
	int fd; /* -1 when closed */
	bool nonsock;
	bool closing;
	bool close_after_send;
	bool exit_after_send;
	int exit_status; /* of the process, with exit_after_send */
	uint8_t *buf; /* assembled input; only touched outside active ops */
	size_t cap, have;
	/* Each recv lands here first, so the input buffer can move and shrink while
	 * a recv is in flight. */
	uint8_t rbuf[CTRL_RECV_BUF];
	uint8_t *out; /* reply in flight */
	size_t outlen;
	bool out_owned; /* ctrl replies are malloc'ed per message */
	struct loop_op rop, sop;
	int64_t deadline; /* CLOCK_MONOTONIC ms, 0: none */
	int rfd;	  /* ctrl: fd received with SCM_RIGHTS, pending */
};

struct server {
	struct loop *loop;
	struct instance *inst;
	const struct vtpm_config *cfg;
	int data_lfd, ctrl_lfd;
	char *data_path, *ctrl_path; /* UnixIO files to unlink at exit */
	struct loop_op data_aop, ctrl_aop, sig_op;
	int sigfd;
	struct signalfd_siginfo si;
	struct conn data, ctrl;
	bool keep_conn;		 /* not "disconnect" mode */
	bool terminate_on_close; /* -t, -f, --server type=tcp,fd= */
	bool external_data;	 /* --server/-f given: SET_DATAFD is refused */
	bool end_on_hup;	 /* chardev: the device's hang-up ends the process */
	bool quit;
	int exit_code;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t server_caps(bool tpm2)
{
	uint64_t caps = PTM_CAP_INIT | PTM_CAP_SHUTDOWN | PTM_CAP_GET_TPMESTABLISHED |
			PTM_CAP_SET_LOCALITY | PTM_CAP_HASHING | PTM_CAP_CANCEL_TPM_CMD |
			PTM_CAP_STORE_VOLATILE | PTM_CAP_RESET_TPMESTABLISHED |
			PTM_CAP_GET_STATEBLOB | PTM_CAP_SET_STATEBLOB | PTM_CAP_STOP |
			PTM_CAP_GET_CONFIG | PTM_CAP_SET_DATAFD | PTM_CAP_SET_BUFFERSIZE |
			PTM_CAP_GET_INFO | PTM_CAP_LOCK_STORAGE;

	if (tpm2)
		caps |= PTM_CAP_SEND_COMMAND_HEADER;
	return caps;
}

static void conn_arm_recv(struct conn *c);
static void conn_close(struct conn *c);
static void server_process(struct server *srv);
static void server_arm_accept(struct server *srv, bool ctrl);

static bool server_sending(const struct server *srv)
{
	return srv->data.sop.active || srv->ctrl.sop.active;
}

/* The completion of an active send can be left to arrive together with the next
 * request (one wait per command) unless something must happen right when it
 * completes: a close, an exit, or input already buffered on either channel
 * (it is processed only once no send is in flight). */
static bool server_needs_prompt_wake(const struct server *srv)
{
	const struct conn *cs[2] = { &srv->data, &srv->ctrl };
	int i;

	if (srv->quit)
		return true;
	for (i = 0; i < 2; i++) {
		if (cs[i]->have > 0)
			return true;
		if (cs[i]->sop.active && (cs[i]->close_after_send || cs[i]->exit_after_send))
			return true;
	}
	return false;
}

/* ---- connection lifecycle ---- */

static void conn_open(struct conn *c, int fd)
{
	c->fd = fd;
	c->nonsock = !sock_is_socket(fd);
	c->closing = false;
	c->close_after_send = false;
	c->exit_after_send = false;
	c->have = 0;
	c->deadline = 0;
	c->rfd = -1;
	conn_arm_recv(c);
}

/* Called when the connection's ops are all done after conn_close(). */
static void conn_finish_close(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->rop.active || c->sop.active || c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	c->closing = false;
	c->have = 0;
	c->deadline = 0;
	if (c->rfd >= 0) {
		close(c->rfd);
		c->rfd = -1;
	}
	if (c->out_owned) {
		free(c->out);
		c->out = NULL;
		c->out_owned = false;
	}
	if (c->is_ctrl) {
		if (srv->cfg->ctrl.terminate)
			srv->quit = true;
		else
			server_arm_accept(srv, true);
	} else {
		if (srv->terminate_on_close)
			srv->quit = true;
		else
			server_arm_accept(srv, false);
	}
}

static void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	if (!c->closing) {
		c->closing = true;
		if (!c->nonsock)
			shutdown(c->fd, SHUT_RDWR);
		loop_cancel(c->srv->loop, &c->rop);
		loop_cancel(c->srv->loop, &c->sop);
	}
	conn_finish_close(c);
}

/* ---- receiving ---- */

static void conn_recv_done(struct loop *loop, struct loop_op *op, int res)
{
	struct conn *c = op->data;

	if (c->is_ctrl && op->rfd >= 0) {
		if (c->rfd >= 0)
			close(c->rfd);
		c->rfd = op->rfd;
		op->rfd = -1;
	}
	if (c->closing) {
		conn_finish_close(c);
		return;
	}
	if (res <= 0) {
		/* A tty or vTPM device that hangs up fails reads with EIO: for a
		 * chardev that is the expected end (END_ON_HUP), not an error. */
		bool hup = res == -EIO && !c->is_ctrl && c->srv->end_on_hup;

		if (res < 0 && res != -ECONNRESET && res != -ECANCELED && !hup)
			log_printf("Error reading from %s connection: %s\n",
				   c->is_ctrl ? "control" : "data", strerror(-res));
		conn_close(c);
		return;
	}
	if (c->have + (size_t)res > c->cap) {
		/* Only the ctrl channel grows: a declared SET_STATEBLOB/HASH_DATA
		 * payload (bounded by CTRL_MAX_PAYLOAD in the codec). */
		uint8_t *nb = realloc(c->buf, c->have + (size_t)res);

		if (!nb) {
			conn_close(c);
			return;
		}
		c->buf = nb;
		c->cap = c->have + (size_t)res;
	}
	memcpy(c->buf + c->have, c->rbuf, (size_t)res);
	c->have += (size_t)res;
	server_process(c->srv);
	conn_arm_recv(c);
}

static void conn_arm_recv(struct conn *c)
{
	struct server *srv = c->srv;
	size_t room = sizeof(c->rbuf);
	int r;

	if (c->fd < 0 || c->closing || c->rop.active)
		return;
	if (!c->is_ctrl) {
		/* The data buffer holds two maximal commands; stop reading when full. */
		if (c->cap - c->have < room)
			room = c->cap - c->have;
		if (room == 0)
			return;
	}
	/* before the call: io_uring prepares the request right away */
	c->rop.nonsock = c->nonsock;
	if (c->is_ctrl)
		r = loop_recvmsg(srv->loop, &c->rop, c->fd, c->rbuf, room, conn_recv_done, c);
	else
		r = loop_recv(srv->loop, &c->rop, c->fd, c->rbuf, room, conn_recv_done, c);
	if (r < 0) {
		log_printf("Cannot wait for input: %s\n", strerror(-r));
		conn_close(c);
	}
}

/* ---- sending ---- */

static void conn_send_done(struct loop *loop, struct loop_op *op, int res)
{
	struct conn *c = op->data;
	struct server *srv = c->srv;

	if (c->out_owned) {
		free(c->out);
		c->out = NULL;
		c->out_owned = false;
	}
	if (res < 0 && res != -ECANCELED && !c->closing)
		log_printf("Could not send the response: %s\n", strerror(-res));
	if (c->exit_after_send) {
		srv->quit = true;
		srv->exit_code = c->exit_status;
		c->exit_after_send = false;
	}
	if (c->closing || res < 0 || c->close_after_send) {
		conn_close(c);
		return;
	}
	server_process(srv);
}

static void conn_send(struct conn *c, uint8_t *out, size_t len, bool owned)
{
	struct server *srv = c->srv;
	struct store *st = srv->inst->store_ready ? &srv->inst->store : NULL;
	int r;

	c->out = out;
	c->outlen = len;
	c->out_owned = owned;
	c->sop.nonsock = c->nonsock;
	r = loop_send(srv->loop, &c->sop, c->fd, out, len, st, conn_send_done, c);
	if (r < 0) {
		log_printf("Cannot send: %s\n", strerror(-r));
		if (owned)
			free(out);
		c->out = NULL;
		c->out_owned = false;
		conn_close(c);
		return;
	}
}

/* ---- data channel ---- */

/* Process one complete TPM command if there is one. */
static bool data_process_one(struct server *srv)
{
	struct conn *c = &srv->data;
	struct instance *inst = srv->inst;
	const uint8_t *rsp;
	size_t rsplen, n;
	struct tpm_frame f;
	int r;

	if (c->fd < 0 || c->closing || c->have == 0)
		return false;
	r = tpm_frame_parse(c->buf, c->have, srv->cfg->tpm2, &f);
	if (r == -EAGAIN) {
		if (!c->deadline)
			c->deadline = now_ms() + DATA_FRAME_TIMEOUT_MS;
		return false;
	}
	c->deadline = 0;
	if (r == -EMSGSIZE) {
		/* Unframeable (garbage or oversize): like swtpm, what arrived so far is
		 * the command, and the TPM rejects it with its own error. */
		f.len = c->have < TPM_FRAME_MAX_CMD + TPM_FRAME_PREFIX_LEN
				? c->have
				: TPM_FRAME_MAX_CMD + TPM_FRAME_PREFIX_LEN;
		f.cmd_off = f.prefixed ? TPM_FRAME_PREFIX_LEN : 0;
		f.cmd_len = f.len - f.cmd_off;
	}
	log_hexdump("SWTPM_IO_Read", c->buf, f.len);
	if (f.prefixed)
		inst->locality = f.locality; /* sticky and unchecked, as in swtpm */
	instance_process(inst, c->buf + f.cmd_off, f.cmd_len, &rsp, &rsplen);
	if (f.prefixed) {
		tpm_frame_wrap(c->out, rsp, rsplen);
		n = rsplen + TPM_FRAME_WRAP_EXTRA;
	} else {
		memcpy(c->out, rsp, rsplen);
		n = rsplen;
	}
	log_hexdump("SWTPM_IO_Write", c->out, n);
	memmove(c->buf, c->buf + f.len, c->have - f.len);
	c->have -= f.len;
	if (!srv->keep_conn)
		c->close_after_send = true;
	conn_send(c, c->out, n, false);
	conn_arm_recv(c);
	return true;
}

/* ---- ctrl channel ---- */

static void ctrl_fail_stream(struct conn *c, uint32_t code)
{
	struct ctrl_rsp rsp = { .result = code == CMD_SET_STATEBLOB ? CTRL_RES_FAIL
								      : CTRL_RES_BAD_PARAMETER };
	uint8_t *out;
	size_t len;

	log_printf("Control message too large; closing the control connection\n");
	c->have = 0;
	c->close_after_send = true;
	if (ctrl_sock_encode(code, &rsp, &out, &len) < 0) {
		conn_close(c);
		return;
	}
	conn_send(c, out, len, true);
}

static bool ctrl_process_one(struct server *srv)
{
	struct conn *c = &srv->ctrl;
	struct ctrl_req req;
	struct ctrl_rsp rsp;
	size_t needed;
	uint8_t *out, *nb;
	size_t outlen;
	int r;

	if (c->fd < 0 || c->closing || c->have == 0)
		return false;
	r = ctrl_sock_needed(c->buf, c->have, &needed);
	if (r == -EMSGSIZE) {
		ctrl_fail_stream(c, (uint32_t)c->buf[0] << 24 | (uint32_t)c->buf[1] << 16 |
					    (uint32_t)c->buf[2] << 8 | c->buf[3]);
		return true;
	}
	if (c->have < needed) {
		/* The fixed part must arrive within swtpm's 500 ms window; a declared
		 * payload may trickle in, but not forever. */
		if (ctrl_sock_in_payload(c->buf, c->have))
			c->deadline = now_ms() + CTRL_CONT_TIMEOUT_MS;
		else if (!c->deadline)
			c->deadline = now_ms() + CTRL_RECV_DEADLINE_MS;
		return false;
	}
	c->deadline = 0;
	log_hexdump("Ctrl Cmd", c->buf, c->have);
	ctrl_sock_decode(c->buf, c->have, c->rfd, &req);
	c->rfd = -1;
	ctrl_dispatch(srv->inst, &req, &rsp);
	if (req.fd >= 0)
		close(req.fd);
	/* Bytes beyond the message in the same read are dropped, as in swtpm. */
	c->have = 0;
	if (c->cap > CTRL_RECV_BUF) {
		nb = realloc(c->buf, CTRL_RECV_BUF);
		if (nb) {
			c->buf = nb;
			c->cap = CTRL_RECV_BUF;
		}
	}
	r = ctrl_sock_encode(req.code, &rsp, &out, &outlen);
	ctrl_rsp_free(&rsp);
	if (r < 0) {
		conn_close(c);
		return false;
	}
	log_hexdump("Ctrl Rsp", out, outlen);
	c->exit_after_send = rsp.exit_after;
	c->exit_status = rsp.exit_status;
	conn_send(c, out, outlen, true);
	conn_arm_recv(c);
	return true;
}

/* Handle whatever complete input there is, one command at a time; ctrl first. */
static void server_process(struct server *srv)
{
	if (server_sending(srv) || srv->quit)
		return;
	if (ctrl_process_one(srv))
		return;
	data_process_one(srv);
}

/* ---- accepting ---- */

static void server_accept_done(struct loop *loop, struct loop_op *op, int res)
{
	struct server *srv = op->data;
	bool ctrl = op == &srv->ctrl_aop;
	struct conn *c = ctrl ? &srv->ctrl : &srv->data;

	if (res < 0) {
		if (res != -ECANCELED && !srv->quit) {
			log_printf("accept failed: %s\n", strerror(-res));
			server_arm_accept(srv, ctrl);
		}
		return;
	}
	if (srv->quit || c->fd >= 0) {
		close(res);
		return;
	}
	conn_open(c, res);
}

static void server_arm_accept(struct server *srv, bool ctrl)
{
	int lfd = ctrl ? srv->ctrl_lfd : srv->data_lfd;
	struct loop_op *op = ctrl ? &srv->ctrl_aop : &srv->data_aop;

	if (lfd < 0 || srv->quit || op->active)
		return;
	if (loop_accept(srv->loop, op, lfd, server_accept_done, srv) < 0)
		log_printf("Cannot accept on a listening socket\n");
}

/* ---- SET_DATAFD ---- */

static int server_set_datafd(void *ctx, int fd)
{
	struct server *srv = ctx;

	/* swtpm keeps the --server/-f socket in the same slot, so it refuses. */
	if (srv->external_data || srv->data.fd >= 0)
		return -EBUSY;
	if (fd < 0)
		return -EINVAL;
	conn_open(&srv->data, fd);
	return 0;
}

/* ---- signals ---- */

static void server_signal_done(struct loop *loop, struct loop_op *op, int res)
{
	struct server *srv = op->data;

	if (res == (int)sizeof(srv->si) || res == 0) {
		srv->quit = true;
		return;
	}
	if (res == -ECANCELED)
		return;
	if (loop_read(loop, op, srv->sigfd, &srv->si, sizeof(srv->si), server_signal_done, srv) <
	    0)
		srv->quit = true;
}

/* ---- set-up ---- */

static int conn_alloc(struct server *srv, struct conn *c, bool ctrl)
{
	memset(c, 0, sizeof(*c));
	c->srv = srv;
	c->is_ctrl = ctrl;
	c->fd = -1;
	c->rfd = -1;
	c->cap = ctrl ? CTRL_RECV_BUF : DATA_BUF_CAP;
	c->buf = malloc(c->cap);
	if (!c->buf)
		return -ENOMEM;
	if (!ctrl) {
		c->out = malloc(DATA_OUT_CAP);
		if (!c->out)
			return -ENOMEM;
	}
	return 0;
}

int server_new(struct server **out, struct instance *inst, const struct vtpm_config *cfg)
{
	struct server *srv;
	sigset_t mask;
	int r;

	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->inst = inst;
	srv->cfg = cfg;
	srv->data_lfd = srv->ctrl_lfd = srv->sigfd = -1;
	r = conn_alloc(srv, &srv->data, false);
	if (r == 0)
		r = conn_alloc(srv, &srv->ctrl, true);
	if (r < 0)
		goto fail;
	srv->keep_conn = !cfg->server.disconnect;
	srv->terminate_on_close = cfg->terminate;

	/* ctrl first, then server, as swtpm's start-up order does */
	if (cfg->ctrl.type != SOCK_NONE) {
		if (cfg->ctrl.fd >= 0) {
			srv->ctrl_lfd = cfg->ctrl.fd;
		} else if (cfg->ctrl.clientfd >= 0) {
			srv->ctrl.fd = -2; /* adopted below, after the loop exists */
		} else {
			r = sock_listen(&cfg->ctrl, "control channel");
			if (r < 0)
				goto fail;
			srv->ctrl_lfd = r;
			if (cfg->ctrl.type == SOCK_UNIXIO)
				srv->ctrl_path = strdup(cfg->ctrl.path);
		}
	}
	if (cfg->server.type != SOCK_NONE) {
		srv->external_data = true;
		if (cfg->server.fd >= 0) {
			if (cfg->server.type == SOCK_TCP) {
				/* a connected socket; swtpm ends when it closes */
				srv->data.fd = -2;
				srv->terminate_on_close = true;
			} else {
				srv->data_lfd = cfg->server.fd;
			}
		} else {
			r = sock_listen(&cfg->server, "server");
			if (r < 0)
				goto fail;
			srv->data_lfd = r;
			if (cfg->server.type == SOCK_UNIXIO)
				srv->data_path = strdup(cfg->server.path);
		}
	}
	if (cfg->data_fd >= 0) {
		srv->external_data = true;
		srv->terminate_on_close = true;
		srv->data.fd = -2;
	}
	if (cfg->iface == IFACE_CHARDEV) {
		/* -c, -f and --vtpm-proxy all leave the device in data_fd: it is the
		 * one persistent data connection, and when it goes, so do we. */
		srv->end_on_hup = true;
		srv->terminate_on_close = true;
		srv->keep_conn = true;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		r = -errno;
		goto fail;
	}
	srv->sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (srv->sigfd < 0) {
		r = -errno;
		goto fail;
	}
	signal(SIGPIPE, SIG_IGN);
	/* The ring is created now: io_uring_setup is not allowed once the seccomp
	 * filter is in place. */
	r = loop_new(&srv->loop, LOOP_AUTO);
	if (r < 0) {
		log_printf("Could not create the event loop: %s\n", strerror(-r));
		goto fail;
	}
	inst->hooks.set_datafd = server_set_datafd;
	inst->hooks.ctx = srv;
	inst->hooks.caps = server_caps(cfg->tpm2);
	*out = srv;
	return 0;
fail:
	server_free(srv);
	return r;
}

/* Cancel every outstanding op and wait (bounded) for its completion. An io_uring
 * request holds a reference to its file, and the ring is torn down only after
 * the process has gone: without this a pending accept would keep the listening
 * port bound for a moment after exit, and a restarted instance could not bind. */
static void server_drain(struct server *srv)
{
	struct loop_op *ops[] = { &srv->data_aop, &srv->ctrl_aop, &srv->sig_op,
				  &srv->data.rop, &srv->data.sop, &srv->ctrl.rop,
				  &srv->ctrl.sop };
	size_t i, n = sizeof(ops) / sizeof(ops[0]);
	int64_t end = now_ms() + 1000;
	bool active;

	srv->quit = true;
	if (srv->data_lfd >= 0)
		shutdown(srv->data_lfd, SHUT_RDWR);
	if (srv->ctrl_lfd >= 0)
		shutdown(srv->ctrl_lfd, SHUT_RDWR);
	for (;;) {
		active = false;
		for (i = 0; i < n; i++) {
			if (ops[i]->active) {
				loop_cancel(srv->loop, ops[i]);
				active = true;
			}
		}
		if (!active || now_ms() >= end)
			break;
		loop_run_once(srv->loop, 1, 100);
	}
}

int server_run(struct server *srv)
{
	const struct vtpm_config *cfg = srv->cfg;
	int64_t now, next;
	unsigned wait_nr;
	int r, timeout;


	if (getenv("VTPM_DEBUG_LOOP"))
		log_printf("event loop: %s\n", loop_backend_name(srv->loop));
	if (srv->ctrl.fd == -2) {
		srv->ctrl.fd = -1;
		conn_open(&srv->ctrl, cfg->ctrl.clientfd);
	}
	if (srv->data.fd == -2) {
		srv->data.fd = -1;
		conn_open(&srv->data, cfg->data_fd >= 0 ? cfg->data_fd : cfg->server.fd);
	}
	server_arm_accept(srv, true);
	server_arm_accept(srv, false);
	loop_read(srv->loop, &srv->sig_op, srv->sigfd, &srv->si, sizeof(srv->si),
		  server_signal_done, srv);

	while (!srv->quit || server_sending(srv)) {
		next = 0;
		if (srv->data.deadline)
			next = srv->data.deadline;
		if (srv->ctrl.deadline && (!next || srv->ctrl.deadline < next))
			next = srv->ctrl.deadline;
		timeout = -1;
		if (next) {
			now = now_ms();
			timeout = next > now ? (int)(next - now) : 0;
		}
		/* One enter per command: wait for the reply's send completion and
		 * the next request together, unless the send itself needs follow-up. */
		wait_nr = 1;
		if (server_sending(srv) && !server_needs_prompt_wake(srv))
			wait_nr = 2;
		r = loop_run_once(srv->loop, wait_nr, timeout);
		if (r < 0) {
			log_printf("Event loop failed: %s\n", strerror(-r));
			srv->exit_code = 1;
			break;
		}
		now = now_ms();
		if (srv->data.deadline && now >= srv->data.deadline) {
			log_printf("Incomplete TPM command timed out; closing the data connection\n");
			srv->data.deadline = 0;
			conn_close(&srv->data);
		}
		if (srv->ctrl.deadline && now >= srv->ctrl.deadline) {
			srv->ctrl.deadline = 0;
			conn_close(&srv->ctrl);
		}
		server_process(srv);
	}
	server_drain(srv);
	return srv->exit_code;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	if (srv->data.fd >= 0)
		close(srv->data.fd);
	if (srv->ctrl.fd >= 0)
		close(srv->ctrl.fd);
	if (srv->data_lfd >= 0)
		close(srv->data_lfd);
	if (srv->ctrl_lfd >= 0)
		close(srv->ctrl_lfd);
	if (srv->sigfd >= 0)
		close(srv->sigfd);
	if (srv->data_path)
		unlink(srv->data_path);
	if (srv->ctrl_path)
		unlink(srv->ctrl_path);
	free(srv->data_path);
	free(srv->ctrl_path);
	free(srv->data.buf);
	free(srv->data.out);
	free(srv->ctrl.buf);
	if (srv->ctrl.out_owned)
		free(srv->ctrl.out);
	loop_free(srv->loop);
	free(srv);
}
