/* Fleet mode: many instances, one connection each, as a host running many
 * VMs would see them. Launch latency, time until all answer, aggregate
 * throughput, memory.
 *
 * Two kinds of fleet:
 *  - processes: the bench forks N servers (`PATH socket ...`) itself;
 *  - vtpmd: the bench starts one vtpmd (private state root and socket) and
 *    creates N instances through its management socket ("create" with
 *    "start": true), then destroys them with "purge".
 *
 * Launch: at most --fleet-window instances are "in flight" at a time (from
 * fork / sending "create" until the first GetRandom answered and, under
 * vtpmd, the create reply arrived); the default 1 launches them one after
 * another. The bench does not poll for the data sockets: it watches their
 * directories with inotify and connects as soon as the socket file appears
 * (retrying every 50 µs while it is bound but not listening yet), so the
 * launch time contains no polling interval of the bench. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "vtpmd_client.h"

#define FLEET_DEFAULT_SECONDS 5.0
#define FLEET_QUICK_SECONDS 0.3
#define FLEET_STALL_NS 10000000000ull	/* no response at all for 10 s */
#define FLEET_LAUNCH_NS 30000000000ull	/* one instance: launch to first answer */
#define FLEET_FD_SLACK 64		/* fds the bench needs besides these */
#define FLEET_RSP_MAX 64		/* a GetRandom(32) response is 44 bytes */
#define FLEET_RETRY_NS 50000		/* connect retry while bound, not listening */
#define FLEET_DESTROY_MS 60000		/* all destroys of a vtpmd fleet */

enum tag { T_DATA = 1, T_PIDFD, T_INOTIFY, T_MGMT, T_VTPMD };

enum ist {
	I_IDLE,		/* not started */
	I_WAIT_SOCK,	/* started, socket file not there yet */
	I_RETRY,	/* socket file there, not accepting yet */
	I_SENT,		/* connected, first GetRandom sent */
	I_ANSWERED,	/* first GetRandom validated */
};

struct conn {
	uint64_t t_send;
	size_t got;
	uint8_t buf[FLEET_RSP_MAX];
	bool outstanding;
};

struct inst {
	struct conn c;
	int fd;			/* data connection, -1 */
	int pidfd;		/* processes: until answered; vtpmd: to the end */
	int wd;			/* processes: inotify watch on the state dir */
	pid_t pid;
	uint64_t t0, t_answer, t_reply;
	enum ist st;
	bool replied;		/* vtpmd: create reply received */
	bool finished;		/* answered (and replied): out of the window */
	bool destroy_sent, destroyed;
	char path[108];
};

struct fleet {
	const struct opts *o;
	struct impl *im;
	int n, window;
	bool mgr;
	struct tpm2_cmd gr;
	struct inst *in;
	struct server *srv;	/* processes */
	int started;		/* processes forked / creates sent */
	int ep, ino;
	int *wd_idx;
	int wd_cap;
	int retrying;
	struct vtpmd v;
	bool v_started;
	pid_t spawner;
	uint64_t t_first, t_last;
	uint64_t mgr_cpu0;
	int destroys_left;
	int bad_destroys;
};

static uint64_t ev_key(enum tag t, int i)
{
	return (uint64_t)t << 32 | (uint32_t)i;
}

/* Raise the soft fd limit to the hard one first; only then give up. */
static int fleet_rlimit(int n, rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -errno;
	}
	if (rl.rlim_cur < need) {
		fprintf(stderr, "vtpm-bench: --fleet %d needs %llu file descriptors but "
			"RLIMIT_NOFILE is %llu (hard limit %llu); raise it (ulimit -Hn / "
			"LimitNOFILE) or use fewer instances\n", n, (unsigned long long)need,
			(unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
		return -EMFILE;
	}
	return 0;
}

static int send_cmd(int fd, struct conn *c, const struct tpm2_cmd *cmd)
{
	ssize_t n;

	c->t_send = now_ns();
	c->got = 0;
	do
		n = write(fd, cmd->b, cmd->len);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)cmd->len)
		return n < 0 ? -errno : -EIO;	/* 12 bytes into an idle socket: all or nothing */
	c->outstanding = true;
	return 0;
}

/* Reads what is there; 1 when a whole response is in, 0 for more to come. */
static int recv_rsp(int fd, struct conn *c)
{
	ssize_t n;
	uint32_t size;

	n = read(fd, c->buf + c->got, sizeof(c->buf) - c->got);
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->got += (size_t)n;
	if (c->got < 10)
		return 0;
	size = tpm2_be32(c->buf + 2);
	if (size < 10 || size > sizeof(c->buf) || c->got > size)
		return -EBADMSG;
	return c->got == size;
}

static void fleet_fail(const char *impl, const struct tpm2_cmd *cmd, const struct conn *c,
		       int idx, const char *why)
{
	struct failure f;

	memset(&f, 0, sizeof(f));
	f.op = -1;
	snprintf(f.why, sizeof(f.why), "fleet instance %d: %s", idx, why);
	f.cmdlen = cmd->len;
	memcpy(f.cmd, cmd->b, cmd->len);
	f.rsplen = c->got;
	memcpy(f.rsp, c->buf, c->got);
	failure_print(stderr, impl, &f);
}

static void inst_log_tail(struct fleet *f, int i)
{
	char path[400], title[96];

	if (!f->mgr) {
		server_log_tail(&f->srv[i]);
		return;
	}
	/* vtpmd appends an instance's stderr to STATE_ROOT/ID/log */
	snprintf(path, sizeof(path), "%s/b%d/log", f->v.root, i);
	snprintf(title, sizeof(title), "%s instance b%d", f->im->name, i);
	log_tail(title, path);
	vtpmd_log_tail(&f->v);
}

/* ---- launch ---- */

static void inst_finish_check(struct fleet *f, struct inst *in, int *busy, int *done)
{
	if (in->finished || in->st != I_ANSWERED || (f->mgr && !in->replied))
		return;
	in->finished = true;
	(*busy)--;
	(*done)++;
	if (in->t_answer > f->t_last)
		f->t_last = in->t_answer;
}

/* Connects if the socket accepts; sends the first GetRandom. */
static int inst_connect(struct fleet *f, int i)
{
	struct inst *in = &f->in[i];
	struct sockaddr_un sa;
	struct epoll_event ev;
	int fd, rc;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, in->path, sizeof(in->path) < sizeof(sa.sun_path) ?
	       sizeof(in->path) : sizeof(sa.sun_path));
	sa.sun_path[sizeof(sa.sun_path) - 1] = '\0';
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(fd);
		if (rc == -ENOENT) {
			if (in->st == I_RETRY)
				f->retrying--;
			in->st = I_WAIT_SOCK;
			return 0;
		}
		if (rc == -ECONNREFUSED || rc == -EAGAIN) {
			if (in->st != I_RETRY)
				f->retrying++;
			in->st = I_RETRY;
			return 0;
		}
		fprintf(stderr, "vtpm-bench: %s fleet instance %d: connect %s: %s\n", f->im->name,
			i, in->path, strerror(-rc));
		return rc;
	}
	if (in->st == I_RETRY)
		f->retrying--;
	in->fd = fd;
	if (!f->mgr)
		f->srv[i].data_fd = fd;	/* closed by server_request_shutdown() */
	if (in->wd >= 0) {
		inotify_rm_watch(f->ino, in->wd);
		if (in->wd < f->wd_cap)
			f->wd_idx[in->wd] = -1;
		in->wd = -1;
	}
	ev.events = EPOLLIN;
	ev.data.u64 = ev_key(T_DATA, i);
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	rc = send_cmd(fd, &in->c, &f->gr);
	if (rc) {
		fleet_fail(f->im->name, &f->gr, &in->c, i, strerror(-rc));
		return rc;
	}
	in->st = I_SENT;
	return 0;
}

static int inst_start_process(struct fleet *f, int i)
{
	struct inst *in = &f->in[i];
	struct server *s = &f->srv[i];
	struct epoll_event ev;
	int rc;

	*s = f->im->srv;
	s->tcp = false;
	s->data_fd = -1;
	rc = server_start(s, f->o->state_base, f->o->sock_base);
	f->started = i + 1;	/* a failed start still needs reaping */
	if (rc) {
		fprintf(stderr, "vtpm-bench: %s fleet instance %d: start: %s%s\n", f->im->name, i,
			strerror(-rc), start_hint(rc));
		return rc;
	}
	in->t0 = s->t_fork_ns;
	in->pid = s->pid;
	in->pidfd = (int)pidfd_open(s->pid, 0);
	if (in->pidfd < 0)
		return -errno;
	ev.events = EPOLLIN;
	ev.data.u64 = ev_key(T_PIDFD, i);
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, in->pidfd, &ev) < 0)
		return -errno;
	if ((size_t)snprintf(in->path, sizeof(in->path), "%s/data", server_sockdir(s)) >=
	    sizeof(in->path)) {
		fprintf(stderr, "vtpm-bench: %s/data is too long for a unix socket\n",
			server_sockdir(s));
		return -ENAMETOOLONG;
	}
	in->wd = inotify_add_watch(f->ino, server_sockdir(s), IN_CREATE | IN_MOVED_TO);
	if (in->wd < 0)
		return -errno;
	if (in->wd >= f->wd_cap) {
		int cap = f->wd_cap ? f->wd_cap * 2 : 1024, *p;

		while (cap <= in->wd)
			cap *= 2;
		p = realloc(f->wd_idx, (size_t)cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		for (int k = f->wd_cap; k < cap; k++)
			p[k] = -1;
		f->wd_idx = p;
		f->wd_cap = cap;
	}
	f->wd_idx[in->wd] = i;
	/* the server may have bound before the watch existed */
	return inst_connect(f, i);
}

static struct json_object *jstr(const char *s)
{
	return json_object_new_string(s);
}

static int inst_start_vtpmd(struct fleet *f, int i)
{
	struct inst *in = &f->in[i];
	struct json_object *req, *args, *argv;
	char id[32], rid[32], a_srv[160], a_ctrl[420];
	int rc;

	if ((size_t)snprintf(in->path, sizeof(in->path), "%s/d%d", f->v.sockdir, i) >=
	    sizeof(in->path)) {
		fprintf(stderr, "vtpm-bench: %s/d%d is too long for a unix socket\n", f->v.sockdir, i);
		return -ENAMETOOLONG;
	}
	snprintf(id, sizeof(id), "b%d", i);
	snprintf(rid, sizeof(rid), "c%d", i);
	snprintf(a_srv, sizeof(a_srv), "type=unixio,path=%s", in->path);
	snprintf(a_ctrl, sizeof(a_ctrl), "type=unixio,path=%s/c%d", f->v.sockdir, i);
	req = json_object_new_object();
	args = json_object_new_object();
	argv = json_object_new_array();
	json_object_array_add(argv, jstr("socket"));
	json_object_array_add(argv, jstr("--tpm2"));
	json_object_array_add(argv, jstr("--server"));
	json_object_array_add(argv, jstr(a_srv));
	json_object_array_add(argv, jstr("--ctrl"));
	json_object_array_add(argv, jstr(a_ctrl));
	json_object_array_add(argv, jstr("--flags"));
	json_object_array_add(argv, jstr("not-need-init,startup-clear"));
	json_object_object_add(args, "id", jstr(id));
	json_object_object_add(args, "argv", argv);
	json_object_object_add(args, "start", json_object_new_boolean(1));
	/* a crash must fail the run, not be hidden by a restart */
	json_object_object_add(args, "restart", jstr("never"));
	json_object_object_add(req, "execute", jstr("create"));
	json_object_object_add(req, "arguments", args);
	json_object_object_add(req, "id", jstr(rid));
	rc = vtpmd_queue(&f->v, req);
	json_object_put(req);
	if (rc)
		return rc;
	in->st = I_WAIT_SOCK;
	in->t0 = now_ns();
	f->started = i + 1;
	rc = vtpmd_flush(&f->v);
	return rc < 0 ? rc : 0;
}

/* A pid from vtpmd: keep a pidfd, after checking it is an instance. */
static int inst_adopt_pid(struct fleet *f, int i, pid_t pid)
{
	struct inst *in = &f->in[i];
	char path[64], comm[32] = "";
	struct pollfd pfd;
	ssize_t n;
	int fd;

	in->pid = pid;
	in->pidfd = (int)pidfd_open(pid, 0);
	if (in->pidfd < 0) {
		fprintf(stderr, "vtpm-bench: %s: instance b%d (pid %d) is already gone\n",
			f->im->name, i, (int)pid);
		return -ESRCH;
	}
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0)
		comm[n] = '\0';
	pfd.fd = in->pidfd;
	pfd.events = POLLIN;
	/* comm checked while the pidfd pins the process: not a recycled pid */
	if (strncmp(comm, "vtpm-", 5) != 0 || poll(&pfd, 1, 0) != 0) {
		fprintf(stderr, "vtpm-bench: %s: pid %d of instance b%d is not (any more) an "
			"instance (comm '%s')\n", f->im->name, (int)pid, i, comm);
		close(in->pidfd);
		in->pidfd = -1;
		return -ESRCH;
	}
	return 0;
}

static int reply_index(struct json_object *msg, char kind)
{
	struct json_object *id;
	const char *s;
	char *end;
	long v;

	if (!json_object_object_get_ex(msg, "id", &id) || !json_object_is_type(id, json_type_string))
		return -1;
	s = json_object_get_string(id);
	if (s[0] != kind)
		return -1;
	v = strtol(s + 1, &end, 10);
	return (*end || end == s + 1 || v < 0 || v > BENCH_MAX_FLEET) ? -1 : (int)v;
}

static void print_error(struct fleet *f, const char *what, int i, struct json_object *msg)
{
	struct json_object *e, *cl = NULL, *desc = NULL;

	json_object_object_get_ex(msg, "error", &e);
	json_object_object_get_ex(e, "class", &cl);
	json_object_object_get_ex(e, "desc", &desc);
	fprintf(stderr, "vtpm-bench: %s: %s b%d: %s: %s\n", f->im->name, what, i,
		cl ? json_object_get_string(cl) : "?", desc ? json_object_get_string(desc) : "?");
}

struct launch_ctx {
	struct fleet *f;
	int *busy, *done;
};

static int on_create_reply(void *ctx, struct json_object *msg)
{
	struct launch_ctx *lc = ctx;
	struct fleet *f = lc->f;
	struct json_object *ret, *pid;
	struct inst *in;
	int i = reply_index(msg, 'c'), rc;

	if (json_object_object_get_ex(msg, "event", NULL))
		return 0;
	if (i < 0 || i >= f->started) {
		fprintf(stderr, "vtpm-bench: %s: unexpected reply from vtpmd: %.300s\n", f->im->name,
			json_object_to_json_string(msg));
		return -EPROTO;
	}
	in = &f->in[i];
	if (json_object_object_get_ex(msg, "error", NULL)) {
		print_error(f, "create", i, msg);
		return -EPROTO;
	}
	if (!json_object_object_get_ex(msg, "return", &ret) ||
	    !json_object_object_get_ex(ret, "pid", &pid) || !json_object_is_type(pid, json_type_int)) {
		fprintf(stderr, "vtpm-bench: %s: create b%d: reply without a pid: %.300s\n",
			f->im->name, i, json_object_to_json_string(msg));
		return -EPROTO;
	}
	in->t_reply = now_ns();
	in->replied = true;
	rc = inst_adopt_pid(f, i, (pid_t)json_object_get_int(pid));
	if (rc)
		return rc;
	if (f->o->cpu >= 0 && in->st == I_ANSWERED)
		pin_process(in->pid, f->o->cpu);
	inst_finish_check(f, in, lc->busy, lc->done);
	return 0;
}

static int on_inotify(struct fleet *f)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	int rc;

	for (;;) {
		n = read(f->ino, buf, sizeof(buf));
		if (n < 0)
			return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			int i = -1;

			p += sizeof(*e) + e->len;
			if (e->mask & IN_Q_OVERFLOW) {
				/* events lost: try everyone who waits */
				for (int k = 0; k < f->started; k++)
					if (f->in[k].st == I_WAIT_SOCK && (rc = inst_connect(f, k)))
						return rc;
				continue;
			}
			if (!e->len)
				continue;
			if (f->mgr) {
				char *end;
				long v;

				if (e->name[0] != 'd')
					continue;
				v = strtol(e->name + 1, &end, 10);
				if (*end || end == e->name + 1 || v < 0 || v >= f->started)
					continue;
				i = (int)v;
			} else {
				if (strcmp(e->name, "data") != 0 || e->wd < 0 || e->wd >= f->wd_cap)
					continue;
				i = f->wd_idx[e->wd];
			}
			if (i >= 0 && f->in[i].st == I_WAIT_SOCK && (rc = inst_connect(f, i)))
				return rc;
		}
	}
}

static int on_first_answer(struct fleet *f, int i, int *busy, int *done)
{
	struct inst *in = &f->in[i];
	char why[256];
	int rc = recv_rsp(in->fd, &in->c);

	if (rc == 0)
		return 0;
	if (rc < 0) {
		fleet_fail(f->im->name, &f->gr, &in->c, i, strerror(-rc));
		inst_log_tail(f, i);
		return rc;
	}
	in->t_answer = now_ns();
	in->c.outstanding = false;
	rc = tpm2_check(in->c.buf, in->c.got, EXP_RANDOM, BENCH_RANDOM_BYTES, why, sizeof(why));
	if (rc) {
		fleet_fail(f->im->name, &f->gr, &in->c, i, why);
		return rc;
	}
	in->st = I_ANSWERED;
	if (!f->mgr) {
		/* the process is ours to watch from here on (waitpid) */
		close(in->pidfd);
		in->pidfd = -1;
	}
	if (f->o->cpu >= 0 && in->pid > 0)
		pin_process(in->pid, f->o->cpu);
	inst_finish_check(f, in, busy, done);
	return 0;
}

static int fleet_launch(struct fleet *f)
{
	struct epoll_event evs[256];
	struct launch_ctx lc;
	int next = 0, busy = 0, done = 0, rc = 0, mgmt_events = EPOLLIN;
	uint64_t last_check, next_at = 0, gap_ns = (uint64_t)f->o->fleet_gap_ms * 1000000u;

	if (f->mgr) {
		if (!f->spawner)
			f->spawner = vtpmd_spawner_pid(&f->v);
		f->mgr_cpu0 = proc_cpu_ns(f->v.pid) + (f->spawner ? proc_cpu_ns(f->spawner) : 0);
	}
	lc.f = f;
	lc.busy = &busy;
	lc.done = &done;
	f->t_first = now_ns();
	f->t_last = f->t_first;
	last_check = f->t_first;
	while (done < f->n) {
		struct timespec ts;
		uint64_t t;
		int nev;

		if (bench_stop)
			return -EINTR;
		while (busy < f->window && next < f->n && (!gap_ns || now_ns() >= next_at)) {
			rc = f->mgr ? inst_start_vtpmd(f, next) : inst_start_process(f, next);
			if (rc)
				return rc;
			next++;
			busy++;
			next_at = now_ns() + gap_ns;
		}
		if (f->mgr) {
			int want = EPOLLIN | (vtpmd_pending(&f->v) ? EPOLLOUT : 0);

			if (want != mgmt_events) {
				struct epoll_event ev = { .events = (uint32_t)want,
							  .data.u64 = ev_key(T_MGMT, 0) };

				if (epoll_ctl(f->ep, EPOLL_CTL_MOD, f->v.fd, &ev) < 0)
					return -errno;
				mgmt_events = want;
			}
		}
		ts.tv_sec = 0;
		ts.tv_nsec = f->retrying ? FLEET_RETRY_NS : 100000000L;
		if (gap_ns && next < f->n) {
			uint64_t t_now = now_ns();
			long wait = next_at > t_now ? (long)(next_at - t_now) : 0;

			if (wait < ts.tv_nsec)
				ts.tv_nsec = wait;
		}
		nev = epoll_pwait2(f->ep, evs, 256, &ts, NULL);
		if (nev < 0 && errno != EINTR)
			return -errno;
		for (int e = 0; e < nev; e++) {
			enum tag tg = (enum tag)(evs[e].data.u64 >> 32);
			int i = (int)(uint32_t)evs[e].data.u64;

			switch (tg) {
			case T_DATA:
				if (f->in[i].st == I_SENT)
					rc = on_first_answer(f, i, &busy, &done);
				break;
			case T_INOTIFY:
				rc = on_inotify(f);
				break;
			case T_PIDFD:
				if (f->in[i].st != I_ANSWERED) {
					fprintf(stderr, "vtpm-bench: %s fleet instance %d exited before "
						"answering\n", f->im->name, i);
					server_log_tail(&f->srv[i]);
					rc = -ECHILD;
				}
				break;
			case T_MGMT:
				if (evs[e].events & EPOLLOUT) {
					rc = vtpmd_flush(&f->v);
					rc = rc < 0 ? rc : 0;
				}
				if (!rc && (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
					rc = vtpmd_read(&f->v, on_create_reply, &lc);
				if (rc == -EPIPE) {
					fprintf(stderr, "vtpm-bench: %s: vtpmd closed the connection\n",
						f->im->name);
					vtpmd_log_tail(&f->v);
				}
				break;
			case T_VTPMD:
				fprintf(stderr, "vtpm-bench: %s: vtpmd exited during the launch\n",
					f->im->name);
				vtpmd_log_tail(&f->v);
				rc = -ECHILD;
				break;
			}
			if (rc)
				return rc;
		}
		if (f->retrying)
			for (int i = 0; i < next; i++)
				if (f->in[i].st == I_RETRY && (rc = inst_connect(f, i)))
					return rc;
		t = now_ns();
		if (t - last_check > 100000000ull) {
			last_check = t;
			for (int i = 0; i < next; i++)
				if (!f->in[i].finished && t - f->in[i].t0 > FLEET_LAUNCH_NS) {
					fprintf(stderr, "vtpm-bench: %s fleet instance %d: no answer%s "
						"after %llu s\n", f->im->name, i,
						f->mgr && !f->in[i].replied ? " / no create reply" : "",
						FLEET_LAUNCH_NS / 1000000000ull);
					inst_log_tail(f, i);
					return -ETIMEDOUT;
				}
		}
	}
	return 0;
}

/* ---- load ---- */

/* Closed loop over all connections: whenever a response is complete and
 * valid, the next command goes out on that connection. */
static int fleet_load(struct fleet *f, double *tput)
{
	struct fleet_result *fr = &f->im->fleet;
	const struct opts *o = f->o;
	double secs = o->duration > 0 ? o->duration :
		      (o->quick ? FLEET_QUICK_SECONDS : FLEET_DEFAULT_SECONDS);
	struct epoll_event ev, evs[256];
	uint64_t t_start, t_end, last_progress, completed = 0, t, cpu0 = 0, cpu1 = 0;
	int ep, outstanding = 0, rc = 0, n = f->n;
	size_t lat0 = fr->lat.n;
	char why[256];

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, f->in[i].fd, &ev) < 0) {
			rc = -errno;
			goto out;
		}
	}
	for (int i = 0; i < n; i++)
		cpu0 += proc_cpu_ns(f->in[i].pid);
	t_start = now_ns();
	t_end = t_start + (uint64_t)(secs * 1e9);
	last_progress = t_start;
	for (int i = 0; i < n; i++) {
		rc = send_cmd(f->in[i].fd, &f->in[i].c, &f->gr);
		if (rc) {
			fleet_fail(f->im->name, &f->gr, &f->in[i].c, i, strerror(-rc));
			goto out;
		}
		outstanding++;
	}
	while (outstanding > 0) {
		int nev = epoll_wait(ep, evs, 256, 1000);

		t = now_ns();
		if (nev < 0 && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		if (nev <= 0) {
			if (t - last_progress > FLEET_STALL_NS) {
				fprintf(stderr, "vtpm-bench: %s fleet: %d commands unanswered for 10 s\n",
					f->im->name, outstanding);
				rc = -ETIMEDOUT;
				goto out;
			}
			continue;
		}
		for (int e = 0; e < nev; e++) {
			int i = (int)evs[e].data.u32;
			struct conn *c = &f->in[i].c;
			uint64_t lat;

			if (!c->outstanding)
				continue;
			rc = recv_rsp(f->in[i].fd, c);
			if (rc == 0)
				continue;
			if (rc < 0) {
				fleet_fail(f->im->name, &f->gr, c, i, strerror(-rc));
				goto out;
			}
			t = now_ns();
			lat = t - c->t_send;
			c->outstanding = false;
			outstanding--;
			rc = tpm2_check(c->buf, c->got, EXP_RANDOM, BENCH_RANDOM_BYTES, why, sizeof(why));
			if (rc) {
				fleet_fail(f->im->name, &f->gr, c, i, why);
				goto out;
			}
			if (series_add(&fr->lat, &lat, 1) < 0) {
				rc = -ENOMEM;
				goto out;
			}
			last_progress = t;
			if (t < t_end)
				completed++;
			if (t < t_end && !bench_stop) {
				rc = send_cmd(f->in[i].fd, c, &f->gr);
				if (rc) {
					fleet_fail(f->im->name, &f->gr, c, i, strerror(-rc));
					goto out;
				}
				outstanding++;
			}
		}
	}
	t = now_ns();
	secs = (double)((t < t_end ? t : t_end) - t_start) / 1e9;
	*tput = secs > 0 ? (double)completed / secs : 0;
	/* All commands of the phase, drained ones included, share the CPU. */
	for (int i = 0; i < n; i++)
		cpu1 += proc_cpu_ns(f->in[i].pid);
	if (cpu1 > cpu0) {
		fr->cpu_ns += cpu1 - cpu0;
		fr->cpu_cmds += fr->lat.n - lat0;
	}
out:
	close(ep);
	return rc;
}

static void fleet_memory(struct fleet *f)
{
	struct fleet_result *fr = &f->im->fleet;
	long rss, pss;

	for (int i = 0; i < f->n; i++) {
		if (proc_mem_kb(f->in[i].pid, &rss, &pss) < 0)
			continue;
		fr->rss_sum_kb += rss;
		fr->pss_sum_kb += pss;
		if (rss > fr->rss_max_kb)
			fr->rss_max_kb = rss;
		if (pss > fr->pss_max_kb)
			fr->pss_max_kb = pss;
		fr->mem_samples++;
	}
	if (f->mgr) {
		pid_t pids[2];

		if (!f->spawner)
			f->spawner = vtpmd_spawner_pid(&f->v);
		pids[0] = f->v.pid;
		pids[1] = f->spawner;

		for (int k = 0; k < 2; k++) {
			if (pids[k] <= 0 || proc_mem_kb(pids[k], &rss, &pss) < 0)
				continue;
			fr->mgr_rss_kb[k] += rss;
			fr->mgr_pss_kb[k] += pss;
			fr->mgr_samples[k]++;
		}
	}
}

/* ---- tear-down ---- */

static int on_destroy_reply(void *ctx, struct json_object *msg)
{
	struct fleet *f = ctx;
	struct json_object *e, *cl;
	int i = reply_index(msg, 'd');

	if (json_object_object_get_ex(msg, "event", NULL))
		return 0;
	if (i < 0) {
		/* a create reply still on its way after a failed launch */
		if (reply_index(msg, 'c') >= 0)
			return 0;
		fprintf(stderr, "vtpm-bench: %s: unexpected reply from vtpmd: %.300s\n", f->im->name,
			json_object_to_json_string(msg));
		return 0;
	}
	if (i >= f->started || !f->in[i].destroy_sent || f->in[i].destroyed)
		return 0;
	f->in[i].destroyed = true;
	f->destroys_left--;
	if (json_object_object_get_ex(msg, "error", &e)) {
		/* a create that vtpmd refused left nothing to destroy */
		if (json_object_object_get_ex(e, "class", &cl) &&
		    strcmp(json_object_get_string(cl), "InstanceNotFound") == 0)
			return 0;
		print_error(f, "destroy", i, msg);
		f->bad_destroys++;
	}
	return 0;
}

/* Children of vtpmd named vtpm-*: instances the bench may not know of (a
 * create whose reply never came). pidfds are appended to extra[]. */
static int vtpmd_instance_children(struct fleet *f, int *extra, int cap)
{
	char path[96], buf[16384];
	int fd, k = 0;
	ssize_t n;

	if (f->v.pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)f->v.pid, (int)f->v.pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (char *tok = strtok(buf, " \n"); tok && k < cap; tok = strtok(NULL, " \n")) {
		pid_t pid = (pid_t)atoi(tok);
		char comm[32] = "";
		int pfd, cfd;
		bool known = false;

		for (int i = 0; i < f->started && !known; i++)
			known = f->in[i].pid == pid && f->in[i].pidfd >= 0;
		if (known || pid <= 0)
			continue;
		pfd = (int)pidfd_open(pid, 0);
		if (pfd < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		cfd = open(path, O_RDONLY | O_CLOEXEC);
		if (cfd >= 0) {
			ssize_t r = read(cfd, comm, sizeof(comm) - 1);

			comm[r > 0 ? r : 0] = '\0';
			close(cfd);
		}
		if (strncmp(comm, "vtpm-", 5) == 0 && strncmp(comm, "vtpmd", 5) != 0)
			extra[k++] = pfd;
		else
			close(pfd);
	}
	return k;
}

/* SIGKILL every live process behind the pidfds, wait for it, reap it if it
 * became ours (the bench is a subreaper while vtpmd fleets run). */
static int kill_leftovers(struct fleet *f, int *pfds, int n)
{
	uint64_t deadline;
	int left = 0;

	for (int k = 0; k < n; k++) {
		struct pollfd p = { .fd = pfds[k], .events = POLLIN };

		if (pfds[k] < 0 || poll(&p, 1, 0) == 1)
			continue;
		pidfd_send_signal(pfds[k], SIGKILL, NULL, 0);
		left++;
	}
	if (left)
		fprintf(stderr, "vtpm-bench: %s: %d instance process(es) left after destroy; "
			"killed\n", f->im->name, left);
	deadline = now_ns() + 2000000000ull;
	for (int k = 0; k < n; k++) {
		siginfo_t si;
		struct pollfd p = { .fd = pfds[k], .events = POLLIN };

		if (pfds[k] < 0)
			continue;
		while (poll(&p, 1, 10) == 0 && now_ns() < deadline)
			;
		memset(&si, 0, sizeof(si));
		waitid((idtype_t)P_PIDFD, (id_t)pfds[k], &si, WEXITED | WNOHANG);
	}
	return left;
}

static int fleet_teardown_vtpmd(struct fleet *f)
{
	uint64_t deadline;
	int extra[64], n_extra = 0, left, bad = 0, rc;
	int *pfds;

	for (int i = 0; i < f->n; i++)
		if (f->in[i].fd >= 0) {
			close(f->in[i].fd);
			f->in[i].fd = -1;
		}
	if (f->v.fd >= 0) {
		/* destroy (with purge) every instance a create was sent for */
		for (int i = 0; i < f->started; i++) {
			struct json_object *req = json_object_new_object(), *args =
				json_object_new_object();
			char id[32], rid[32];

			snprintf(id, sizeof(id), "b%d", i);
			snprintf(rid, sizeof(rid), "d%d", i);
			json_object_object_add(args, "id", jstr(id));
			json_object_object_add(args, "purge", json_object_new_boolean(1));
			json_object_object_add(req, "execute", jstr("destroy"));
			json_object_object_add(req, "arguments", args);
			json_object_object_add(req, "id", jstr(rid));
			rc = vtpmd_queue(&f->v, req);
			json_object_put(req);
			if (rc)
				break;
			f->in[i].destroy_sent = true;
			f->destroys_left++;
		}
		deadline = now_ns() + (uint64_t)FLEET_DESTROY_MS * 1000000u;
		while (f->destroys_left > 0 && now_ns() < deadline) {
			struct pollfd p = { .fd = f->v.fd, .events = POLLIN };

			rc = vtpmd_flush(&f->v);
			if (rc < 0)
				break;
			if (rc == 1)
				p.events |= POLLOUT;
			if (poll(&p, 1, 100) < 0 && errno != EINTR)
				break;
			if (p.revents & (POLLIN | POLLHUP | POLLERR))
				if (vtpmd_read(&f->v, on_destroy_reply, f) < 0)
					break;
		}
		if (f->destroys_left > 0) {
			fprintf(stderr, "vtpm-bench: %s: %d destroy requests unanswered\n", f->im->name,
				f->destroys_left);
			bad = 1;
		}
		if (f->bad_destroys)
			bad = 1;
	}
	n_extra = vtpmd_instance_children(f, extra, 64);
	if (vtpmd_stop(&f->v, true))
		bad = 1;
	pfds = calloc((size_t)f->n + (size_t)n_extra, sizeof(*pfds));
	if (pfds) {
		int k = 0;

		for (int i = 0; i < f->n; i++)
			pfds[k++] = f->in[i].pidfd;
		for (int j = 0; j < n_extra; j++)
			pfds[k++] = extra[j];
		left = kill_leftovers(f, pfds, k);
		if (left) {
			f->im->fleet.leftovers += left;
			bad = 1;
		}
		free(pfds);
	}
	for (int j = 0; j < n_extra; j++)
		close(extra[j]);
	for (int i = 0; i < f->n; i++)
		if (f->in[i].pidfd >= 0) {
			close(f->in[i].pidfd);
			f->in[i].pidfd = -1;
		}
	/* the spawner was vtpmd's child; if it outlived vtpmd it is ours now */
	if (f->spawner > 0) {
		for (int k = 0; k < 1000; k++) {
			pid_t r = waitpid(f->spawner, NULL, WNOHANG);

			if (r != 0)
				break;
			usleep(1000);
		}
	}
	if (f->v.dir[0]) {
		rmtree(f->v.dir);
		f->v.dir[0] = '\0';
	}
	if (f->v.sdir[0]) {
		rmtree(f->v.sdir);
		f->v.sdir[0] = '\0';
	}
	return bad;
}

static int fleet_teardown_processes(struct fleet *f)
{
	int bad = 0;

	for (int i = 0; i < f->started; i++) {
		if (f->in[i].pidfd >= 0) {
			close(f->in[i].pidfd);
			f->in[i].pidfd = -1;
		}
		if (server_request_shutdown(&f->srv[i]) < 0) {
			fprintf(stderr, "vtpm-bench: %s fleet instance %d: CMD_SHUTDOWN failed\n",
				f->im->name, i);
			bad = 1;
		}
		f->in[i].fd = -1;	/* closed with srv[i].data_fd */
	}
	if (servers_reap(f->srv, f->started, 5000) > 0)
		bad = 1;
	return bad;
}

/* ---- one round ---- */

static int fleet_setup(struct fleet *f)
{
	struct epoll_event ev;
	int rc;

	f->ep = epoll_create1(EPOLL_CLOEXEC);
	f->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (f->ep < 0 || f->ino < 0)
		return -errno;
	ev.events = EPOLLIN;
	ev.data.u64 = ev_key(T_INOTIFY, 0);
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, f->ino, &ev) < 0)
		return -errno;
	if (!f->mgr)
		return 0;
	/* Instances outlive vtpmd by design. As a subreaper the bench inherits
	 * any that are left when vtpmd exits, so it can reap what it kills. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	rc = vtpmd_start(&f->v, f->im->path, f->o->state_base, f->o->sock_base, f->im->srv.env,
			 f->im->srv.n_env, 10000);
	f->v_started = true;
	if (rc) {
		fprintf(stderr, "vtpm-bench: %s: vtpmd (%s) did not come up: %s%s\n", f->im->name,
			f->im->path, strerror(-rc), start_hint(rc));
		vtpmd_log_tail(&f->v);
		return rc;
	}
	if (inotify_add_watch(f->ino, f->v.sockdir, IN_CREATE | IN_MOVED_TO) < 0)
		return -errno;
	ev.events = EPOLLIN;
	ev.data.u64 = ev_key(T_MGMT, 0);
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, f->v.fd, &ev) < 0)
		return -errno;
	if (f->v.pidfd >= 0) {
		ev.data.u64 = ev_key(T_VTPMD, 0);
		if (epoll_ctl(f->ep, EPOLL_CTL_ADD, f->v.pidfd, &ev) < 0)
			return -errno;
	}
	f->spawner = vtpmd_spawner_pid(&f->v);
	return 0;
}

int fleet_run(const struct opts *o, struct impl *im)
{
	struct fleet_result *fr = &im->fleet;
	struct fleet *f;
	uint64_t *lat = NULL, *rep = NULL;
	double tput = 0, all;
	rlim_t need;
	int rc, bad = 0;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->o = o;
	f->im = im;
	f->n = o->fleet;
	f->mgr = im->is_vtpmd;
	f->window = o->fleet_window > 0 && o->fleet_window < f->n ? o->fleet_window : f->n;
	f->ep = f->ino = -1;
	f->v.fd = f->v.pidfd = -1;
	/* data connections, plus a pidfd per instance (vtpmd) or per instance
	 * in flight (processes), plus epoll/inotify/vtpmd */
	need = (rlim_t)f->n + (rlim_t)(f->mgr ? f->n : f->window) + FLEET_FD_SLACK;
	rc = fleet_rlimit(f->n, need);
	if (rc)
		goto out_free;
	rc = tpm2_build_getrandom(&f->gr, BENCH_RANDOM_BYTES);
	if (rc)
		goto out_free;
	f->in = calloc((size_t)f->n, sizeof(*f->in));
	f->srv = f->mgr ? NULL : calloc((size_t)f->n, sizeof(*f->srv));
	lat = calloc((size_t)f->n, sizeof(*lat));
	rep = calloc((size_t)f->n, sizeof(*rep));
	if (!f->in || (!f->mgr && !f->srv) || !lat || !rep) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < f->n; i++) {
		f->in[i].fd = f->in[i].pidfd = f->in[i].wd = -1;
		f->in[i].st = I_IDLE;
	}
	fprintf(stderr, "vtpm-bench: %s fleet round %d: %s %d instances (window %d)\n", im->name,
		fr->rounds + 1, f->mgr ? "creating under vtpmd" : "launching", f->n, f->window);
	rc = fleet_setup(f);
	if (!rc)
		rc = fleet_launch(f);
	if (rc)
		goto out;
	for (int i = 0; i < f->n; i++) {
		lat[i] = f->in[i].t_answer - f->in[i].t0;
		rep[i] = f->in[i].t_reply - f->in[i].t0;
	}
	all = (double)(f->t_last - f->t_first) / 1e9;
	/* Instances are idle once they answered: their CPU so far is what
	 * starting cost them (fork/exec, init, TPM manufacture, first writes). */
	for (int i = 0; i < f->n; i++) {
		uint64_t c = proc_cpu_ns(f->in[i].pid);

		if (c) {
			fr->start_cpu_ns += c;
			fr->start_cpu_n++;
		}
	}
	if (f->mgr) {
		uint64_t c;

		if (!f->spawner)	/* it names itself just after its fork */
			f->spawner = vtpmd_spawner_pid(&f->v);
		c = proc_cpu_ns(f->v.pid) + (f->spawner ? proc_cpu_ns(f->spawner) : 0);

		if (c > f->mgr_cpu0) {
			fr->mgr_cpu_ns += c - f->mgr_cpu0;
			fr->mgr_cpu_n += f->n;
		}
	}
	if (series_add(&fr->launch, lat, (size_t)f->n) < 0 ||
	    (f->mgr && series_add(&fr->reply, rep, (size_t)f->n) < 0)) {
		rc = -ENOMEM;
		goto out;
	}
	/* the launch's epoll and watches are not needed under load */
	close(f->ep);
	close(f->ino);
	f->ep = f->ino = -1;
	rc = fleet_load(f, &tput);
	if (rc)
		goto out;
	fleet_memory(f);
	fr->instances = f->n;
	fr->window = f->window;
	fr->tput_sum += tput;
	fr->all_sum += all;
	if (!fr->rounds || tput < fr->tput_min)
		fr->tput_min = tput;
	if (tput > fr->tput_max)
		fr->tput_max = tput;
	if (!fr->rounds || all < fr->all_min)
		fr->all_min = all;
	if (all > fr->all_max)
		fr->all_max = all;
	fr->rounds++;
out:
	if (f->ep >= 0)
		close(f->ep);
	if (f->ino >= 0)
		close(f->ino);
	if (f->mgr) {
		if (f->v_started)
			bad = fleet_teardown_vtpmd(f);
	} else if (f->srv) {
		bad = fleet_teardown_processes(f);
	}
	if (bad && !rc)
		rc = -EPROTO;
	if (rc)
		fr->failed = true;
	free(f->srv);
	free(f->in);
	free(f->wd_idx);
	free(lat);
	free(rep);
out_free:
	free(f);
	return rc;
}
