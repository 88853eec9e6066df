/* Instance supervision: commands, the per-instance state machine, readiness,
 * graceful stop over the ctrl channel, back-off restarts and re-adoption. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "instance/cli.h"
#include "instance/config.h"
#include "instance/log.h"
#include "manager/migrate.h"
#include "manager/mgmt.h"
#include "manager/registry.h"
#include "manager/statefile.h"
#include "manager/supervisor.h"
#include "vtpm/ctrl_proto.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

enum sup_state {
	SUP_STOPPED = 0,
	SUP_STARTING, /* spawn requested, or running but not yet listening */
	SUP_RUNNING,
	SUP_STOPPING,
	SUP_BACKOFF, /* crashed; a restart is scheduled (shown as "starting") */
	SUP_FAILED,
};

enum sup_phase { PH_NONE = 0, PH_CTRL, PH_TERM, PH_KILL };
enum sup_then { THEN_NONE = 0, THEN_START, THEN_DESTROY };
enum sup_exit { EXIT_NONE = 0, EXIT_CODE, EXIT_SIGNAL, EXIT_UNKNOWN };

struct sup_ep {
	enum cfg_sock_type type;
	char *path; /* absolute */
	int port;
	char *addr;
};

/* A client request waiting for the instance to reach a state. */
struct sup_waiter {
	struct sup_waiter *next;
	uint64_t client;
	json_object *reqid;
	enum proto_cmd cmd;
	uint8_t *file; /* import-state: the validated state file, owned */
	size_t filelen;
};

struct sup_inst {
	struct mgr *m;
	struct reg_config conf;
	char *dir, *log;
	bool own_state;
	struct sup_ep server, ctrl;
	/* the device the instance serves alone: chardev's -c path or cuse's
	 * /dev/NAME (NULL for socket and --vtpm-proxy, which makes its own) */
	char *dev;
	uid_t uid;
	gid_t gid;
	char comm[16];
	bool invalid; /* the stored command line no longer parses */
	bool tpm2;    /* --tpm2: what an imported state file must hold */
	/* a pool process can serve it: TPM 2 with the state in vtpmd's own
	 * directory, plain files, no user switch (see pool.c) */
	bool poolable;
	struct pool_claim claim; /* claimed for this create, not yet handed over */

	enum sup_state st;
	pid_t pid;
	int pidfd;
	struct mgr_watch pid_w;
	bool adopted;
	struct reg_pid ident;
	bool ident_ok;
	uint64_t spawned_ms, deadline;
	int ready_fd; /* readiness socket (instance_ready_fd in the child), -1 */
	struct mgr_watch ready_w;
	bool unsynced; /* created: config.json and directories not durable yet */
	bool fresh;    /* created just now: its directories exist */
	bool spawn_pending;
	uint32_t spawn_seq;
	bool explicit_start, stop_requested, keep_error;

	enum sup_phase phase;
	int ctrl_fd;
	struct mgr_watch ctrl_w;
	uint8_t ctrl_buf[4];
	size_t ctrl_done;
	bool ctrl_sent;

	enum sup_then then;
	bool purge;

	unsigned restarts;
	uint64_t hist[SUP_LOOP_MAX]; /* times of the last automatic restarts */
	unsigned nhist;

	bool dead; /* destroyed; freed after the current batch of events */
	struct sup_inst *next_dead;

	char last_error[384];
	enum sup_exit exit_kind;
	int exit_value;
	pid_t exit_pid;
	struct sup_waiter *waiters;
};

/* snprintf that truncates on purpose (messages, process names). */
__attribute__((format(printf, 3, 4))) static void sup_fmt(char *buf, size_t size,
							  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

static const char *sup_state_name(const struct sup_inst *in)
{
	switch (in->st) {
	case SUP_STOPPED:
		return "stopped";
	case SUP_STARTING:
	case SUP_BACKOFF:
		return "starting";
	case SUP_RUNNING:
		return "running";
	case SUP_STOPPING:
		return "stopping";
	case SUP_FAILED:
		return "failed";
	}
	return "?";
}

/* ---- table ---- */

static struct sup_inst *sup_find(struct mgr *m, const char *id)
{
	for (size_t i = 0; i < m->ninst; i++)
		if (strcmp(m->insts[i]->conf.id, id) == 0)
			return m->insts[i];
	return NULL;
}

/* Sorted by id, so `list` is stable. */
static int sup_insert(struct mgr *m, struct sup_inst *in)
{
	size_t i;

	if (m->ninst == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct sup_inst **n = realloc(m->insts, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		m->insts = n;
		m->cap = cap;
	}
	for (i = m->ninst; i > 0 && strcmp(m->insts[i - 1]->conf.id, in->conf.id) > 0; i--)
		m->insts[i] = m->insts[i - 1];
	m->insts[i] = in;
	m->ninst++;
	return 0;
}

static void sup_unlink(struct mgr *m, struct sup_inst *in)
{
	for (size_t i = 0; i < m->ninst; i++) {
		if (m->insts[i] == in) {
			memmove(&m->insts[i], &m->insts[i + 1], (m->ninst - i - 1) * sizeof(in));
			m->ninst--;
			return;
		}
	}
}

static void sup_ep_free(struct sup_ep *e)
{
	free(e->path);
	free(e->addr);
	memset(e, 0, sizeof(*e));
}

static void sup_waiter_free(struct sup_waiter *w)
{
	json_object_put(w->reqid);
	free(w->file);
	free(w);
}

static void sup_free(struct sup_inst *in)
{
	struct sup_waiter *w;

	if (!in)
		return;
	while ((w = in->waiters)) {
		in->waiters = w->next;
		sup_waiter_free(w);
	}
	if (in->ctrl_fd >= 0)
		close(in->ctrl_fd);
	if (in->pidfd >= 0)
		close(in->pidfd);
	reg_config_free(&in->conf);
	sup_ep_free(&in->server);
	sup_ep_free(&in->ctrl);
	free(in->dev);
	free(in->dir);
	free(in->log);
	if (in->ready_fd >= 0)
		close(in->ready_fd);
	pool_discard(&in->claim);
	free(in);
}

static struct sup_inst *sup_new(struct mgr *m, struct reg_config *conf)
{
	struct sup_inst *in = calloc(1, sizeof(*in));
	char buf[PATH_MAX];

	if (!in)
		return NULL;
	in->m = m;
	in->conf = *conf; /* takes over the argv */
	memset(conf, 0, sizeof(*conf));
	in->pidfd = -1;
	in->ctrl_fd = -1;
	in->ready_fd = -1;
	in->claim.pidfd = in->claim.ready = -1;
	in->ready_w.kind = MGR_W_READY;
	in->ready_w.obj = in;
	in->pid_w.kind = MGR_W_CHILD;
	in->pid_w.obj = in;
	in->ctrl_w.kind = MGR_W_CTRL;
	in->ctrl_w.obj = in;
	in->uid = geteuid();
	in->gid = getegid();
	/* the process name: visible in ps, and part of the identity check */
	sup_fmt(in->comm, sizeof(in->comm), "vtpm-%s", in->conf.id);
	if (reg_path(buf, sizeof(buf), m->state_root, in->conf.id, NULL) == 0)
		in->dir = strdup(buf);
	if (reg_path(buf, sizeof(buf), m->state_root, in->conf.id, "log") == 0)
		in->log = strdup(buf);
	if (!in->dir || !in->log) {
		sup_free(in);
		return NULL;
	}
	return in;
}

/* ---- replies and events ---- */

static int64_t sup_uptime(const struct sup_inst *in)
{
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);

	if (in->pid <= 0 || !in->ident_ok || hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
		return -1;
	return (int64_t)ts.tv_sec - (int64_t)(in->ident.starttime / (unsigned long long)hz);
}

static json_object *sup_exit_json(const struct sup_inst *in)
{
	json_object *o;

	if (in->exit_kind == EXIT_NONE)
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	switch (in->exit_kind) {
	case EXIT_CODE:
		json_object_object_add(o, "kind", json_object_new_string("exited"));
		json_object_object_add(o, "value", json_object_new_int(in->exit_value));
		break;
	case EXIT_SIGNAL:
		json_object_object_add(o, "kind", json_object_new_string("signaled"));
		json_object_object_add(o, "value", json_object_new_int(in->exit_value));
		if (sigabbrev_np(in->exit_value))
			json_object_object_add(o, "signal",
					       json_object_new_string(sigabbrev_np(in->exit_value)));
		break;
	default:
		json_object_object_add(o, "kind", json_object_new_string("unknown"));
		break;
	}
	return o;
}

static json_object *sup_status_json(const struct sup_inst *in, bool full)
{
	json_object *o = json_object_new_object();
	int64_t up = sup_uptime(in);

	if (!o)
		return NULL;
	json_object_object_add(o, "id", json_object_new_string(in->conf.id));
	json_object_object_add(o, "state", json_object_new_string(sup_state_name(in)));
	json_object_object_add(o, "pid", in->pid > 0 ? json_object_new_int(in->pid) : NULL);
	json_object_object_add(o, "uptime", up >= 0 ? json_object_new_int64(up) : NULL);
	json_object_object_add(o, "restarts", json_object_new_int((int)in->restarts));
	json_object_object_add(o, "restart",
			       json_object_new_string(proto_policy_name(in->conf.policy)));
	json_object_object_add(o, "adopted", json_object_new_boolean(in->adopted));
	if (!full)
		return o;
	json_object_object_add(o, "last-error",
			       in->last_error[0] ? json_object_new_string(in->last_error) : NULL);
	json_object_object_add(o, "exit-status", sup_exit_json(in));
	json_object_object_add(o, "created", json_object_new_int64(in->conf.created));
	if (in->st == SUP_BACKOFF) {
		uint64_t now = mgr_now_ms();

		json_object_object_add(
			o, "next-restart-ms",
			json_object_new_int64(in->deadline > now ? (int64_t)(in->deadline - now) : 0));
	}
	{
		json_object *a = json_object_new_array();

		for (size_t i = 0; a && i < in->conf.argc; i++)
			json_object_array_add(a, json_object_new_string(in->conf.argv[i]));
		json_object_object_add(o, "argv", a);
	}
	json_object_object_add(o, "dir", json_object_new_string(in->dir));
	json_object_object_add(o, "log", json_object_new_string(in->log));
	return o;
}

static void sup_event(struct sup_inst *in, const char *name, json_object *extra)
{
	json_object *d = json_object_new_object();

	if (!d) {
		json_object_put(extra);
		return;
	}
	/* the id first: people read these lines */
	json_object_object_add(d, "id", json_object_new_string(in->conf.id));
	if (extra) {
		json_object_object_foreach(extra, key, val)
			json_object_object_add(d, key, json_object_get(val));
		json_object_put(extra);
	}
	mgmt_event(in->m, name, d);
}

static void sup_event_pid(struct sup_inst *in, const char *name, pid_t pid, bool restarts)
{
	json_object *d = json_object_new_object();

	if (!d)
		return;
	json_object_object_add(d, "pid", json_object_new_int(pid));
	if (restarts)
		json_object_object_add(d, "restarts", json_object_new_int((int)in->restarts));
	sup_event(in, name, d);
}

static struct sup_waiter *sup_wait(struct sup_inst *in, uint64_t client,
				    const struct proto_req *req)
{
	struct sup_waiter *w = calloc(1, sizeof(*w)), **pp;

	if (!w) {
		mgmt_reply_error(in->m, client, req->id, PROTO_ERR_GENERIC, "out of memory");
		return NULL;
	}
	w->client = client;
	w->reqid = req->id ? json_object_get(req->id) : NULL;
	w->cmd = req->cmd;
	/* FIFO: replies go out in request order */
	for (pp = &in->waiters; *pp; pp = &(*pp)->next)
		;
	*pp = w;
	return w;
}

static void sup_import_now(struct sup_inst *in, uint64_t client, json_object *reqid,
			   const uint8_t *file, size_t filelen);

/* Answer every waiter whose wish is now settled. */
static void sup_settle(struct sup_inst *in)
{
	struct sup_waiter **pp = &in->waiters, *w;
	char desc[512];

	while ((w = *pp)) {
		bool done = false;

		switch (w->cmd) {
		case PROTO_CMD_CREATE:
		case PROTO_CMD_START:
		case PROTO_CMD_RESTART:
			/* a create is acknowledged once its entry is durable */
			if (in->st == SUP_RUNNING && !in->unsynced) {
				mgmt_reply(in->m, w->client, w->reqid, sup_status_json(in, true));
				done = true;
			} else if ((in->st == SUP_FAILED || in->st == SUP_STOPPED) &&
				   in->then == THEN_NONE) {
				sup_fmt(desc, sizeof(desc), "instance '%s' did not start: %s",
					in->conf.id,
					in->st == SUP_STOPPED ? "it was stopped while starting"
					: in->last_error);
				mgmt_reply_error(in->m, w->client, w->reqid, PROTO_ERR_START, desc);
				done = true;
			}
			break;
		case PROTO_CMD_STOP:
			if (in->st == SUP_STOPPED || in->st == SUP_FAILED) {
				mgmt_reply(in->m, w->client, w->reqid, NULL);
				done = true;
			}
			break;
		case PROTO_CMD_IMPORT_STATE:
			/* started for the import: do it now that the ctrl channel listens */
			if (in->st == SUP_RUNNING && !in->unsynced) {
				sup_import_now(in, w->client, w->reqid, w->file, w->filelen);
				done = true;
			} else if ((in->st == SUP_FAILED || in->st == SUP_STOPPED) &&
				   in->then == THEN_NONE) {
				sup_fmt(desc, sizeof(desc),
					"instance '%s' did not start for the import (it was not "
					"touched): %s",
					in->conf.id,
					in->st == SUP_STOPPED ? "it was stopped while starting"
					: in->last_error);
				mgmt_reply_error(in->m, w->client, w->reqid, PROTO_ERR_START, desc);
				done = true;
			}
			break;
		default:
			break;
		}
		if (done) {
			*pp = w->next;
			sup_waiter_free(w);
		} else {
			pp = &w->next;
		}
	}
}

/* ---- persistence ---- */

static void sup_persist(struct sup_inst *in, enum reg_state s)
{
	int r;

	if (in->conf.state == s)
		return;
	in->conf.state = s;
	r = reg_config_write(in->m->state_root, &in->conf);
	if (r < 0)
		log_printf("instance %s: cannot write config.json: %s\n", in->conf.id, strerror(-r));
}

/* ---- the command line ---- */

static char *sup_abs(const struct sup_inst *in, const char *path)
{
	char *out;

	if (!path)
		return NULL;
	if (path[0] == '/')
		return strdup(path);
	/* children run in STATE_ROOT/ID, so relative paths resolve there */
	if (asprintf(&out, "%s/%s", in->dir, path) < 0)
		return NULL;
	return out;
}

static int sup_ep_set(const struct sup_inst *in, struct sup_ep *e, const struct cfg_sock *cs)
{
	e->type = cs->type;
	e->port = cs->port;
	if (cs->path && !(e->path = sup_abs(in, cs->path)))
		return -ENOMEM;
	if (cs->bindaddr && !(e->addr = strdup(cs->bindaddr)))
		return -ENOMEM;
	return 0;
}

/* First line of what cli_parse wrote (the rest is usually --help text). */
static void sup_first_line(const char *text, char *out, size_t size)
{
	const char *s = text ? text : "";
	size_t n;

	while (*s == '\n' || *s == ' ')
		s++;
	n = strcspn(s, "\n");
	if (n == 0) {
		sup_fmt(out, size, "rejected by the option parser");
		return;
	}
	sup_fmt(out, size, "%.*s", (int)(n > 300 ? 300 : n), s);
}

static int sup_runas(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(user, &end, 10);
	if (*user && !*end && errno == 0 && n <= (uid_t)-2) {
		*uid = (uid_t)n;
		*gid = (gid_t)n; /* as swtpm: numeric --runas keeps gid = uid */
		return 0;
	}
	pw = getpwnam(user);
	if (!pw)
		return -ENOENT;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/*
 * Validate conf.argv with the very parser the child will use, then refuse what
 * cannot work under supervision. vtpmd is single-threaded, which is what makes
 * calling cli_parse (getopt state, setenv of TPM_PORT) here safe.
 */
static int sup_parse_argv(struct sup_inst *in, char *why, size_t whylen)
{
	struct vtpm_config cfg;
	char **argv = NULL, *errtext = NULL, *saved_port = NULL, line[320];
	const char *old_port = getenv("TPM_PORT");
	const char *old_path = getenv("TPM_PATH");
	char *saved_path = NULL, *own_state = NULL;
	size_t errlen = 0;
	FILE *err;
	int code = 0, rc, ret = -EINVAL;

	argv = calloc(in->conf.argc + 1, sizeof(*argv));
	err = open_memstream(&errtext, &errlen);
	if (asprintf(&own_state, "%s/state", in->dir) < 0)
		own_state = NULL; /* its content is undefined after a failure */
	if (!argv || !err || !own_state || (old_port && !(saved_port = strdup(old_port))) ||
	    (old_path && !(saved_path = strdup(old_path)))) {
		sup_fmt(why, whylen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < in->conf.argc; i++)
		argv[i] = in->conf.argv[i]; /* getopt permutes only the array */
	/* swtpm cuse insists on a state location while parsing; without
	 * --tpmstate the instance gets ours (sup_start adds it). */
	setenv("TPM_PATH", own_state, 1);
	rc = cli_parse((int)in->conf.argc, argv, &cfg, err, err, &code);
	fclose(err);
	err = NULL;
	if (saved_port)
		setenv("TPM_PORT", saved_port, 1);
	else
		unsetenv("TPM_PORT");
	if (saved_path)
		setenv("TPM_PATH", saved_path, 1);
	else
		unsetenv("TPM_PATH");
	if (rc) {
		sup_first_line(errtext, line, sizeof(line));
		sup_fmt(why, whylen, "invalid swtpm command line: %s", line);
		goto out;
	}
	if (cfg.daemon) {
		sup_fmt(why, whylen, "-d/--daemon is not allowed: vtpmd supervises the process");
	} else if (cfg.data_fd >= 0 || cfg.server.fd >= 0 || cfg.ctrl.fd >= 0 ||
		   cfg.ctrl.clientfd >= 0 || cfg.pid_fd >= 0 || cfg.log.fd >= 0) {
		sup_fmt(why, whylen,
			"file descriptor options (fd=, --fd) cannot be used: vtpmd cannot pass "
			"file descriptors to the instance; use unixio paths or tcp ports");
	} else if (cfg.print_capabilities || cfg.print_states) {
		sup_fmt(why, whylen, "--print-capabilities/--print-states do not run an instance");
	} else if (cfg.runas && sup_runas(cfg.runas, &in->uid, &in->gid) < 0) {
		sup_fmt(why, whylen, "--runas: user '%s' does not exist", cfg.runas);
	} else {
		ret = 0;
		in->tpm2 = cfg.tpm2;
		in->own_state = cfg.state_uri == NULL;
		in->poolable = in->own_state && cfg.tpm2 && !cfg.state_mode_set &&
			       !cfg.keys.key && !cfg.keys.migration_key && !cfg.runas &&
			       !cfg.migration_incoming;
		sup_ep_free(&in->server);
		sup_ep_free(&in->ctrl);
		free(in->dev);
		in->dev = NULL;
		if (sup_ep_set(in, &in->server, &cfg.server) < 0 ||
		    sup_ep_set(in, &in->ctrl, &cfg.ctrl) < 0)
			ret = -ENOMEM;
		if (cfg.iface == IFACE_CUSE && asprintf(&in->dev, "/dev/%s", cfg.cuse_name) < 0) {
			in->dev = NULL;
			ret = -ENOMEM;
		} else if (cfg.iface == IFACE_CHARDEV && cfg.chardev_path &&
			   !(in->dev = sup_abs(in, cfg.chardev_path))) {
			ret = -ENOMEM;
		}
		if (ret < 0)
			sup_fmt(why, whylen, "out of memory");
	}
	config_free(&cfg);
out:
	if (err)
		fclose(err);
	free(errtext);
	free(saved_port);
	free(saved_path);
	free(own_state);
	free(argv);
	return ret;
}

static bool sup_ep_same(const struct sup_ep *a, const struct sup_ep *b)
{
	if (a->type == SOCK_NONE || a->type != b->type)
		return false;
	if (a->type == SOCK_UNIXIO)
		return a->path && b->path && strcmp(a->path, b->path) == 0;
	return a->port > 0 && a->port == b->port &&
	       strcmp(a->addr ? a->addr : "127.0.0.1", b->addr ? b->addr : "127.0.0.1") == 0;
}

/* Another instance would unlink (UnixIO) or fail to bind our sockets. */
static int sup_conflicts(struct mgr *m, const struct sup_inst *in, char *why, size_t whylen)
{
	const struct sup_ep *mine[2] = { &in->server, &in->ctrl };

	for (int k = 0; k < 2; k++) {
		if (mine[k]->type == SOCK_UNIXIO && mine[k]->path &&
		    strcmp(mine[k]->path, m->sock_path) == 0) {
			sup_fmt(why, whylen, "%s socket %s is vtpmd's management socket",
				k ? "ctrl" : "server", mine[k]->path);
			return -EINVAL;
		}
	}
	if (sup_ep_same(&in->server, &in->ctrl)) {
		sup_fmt(why, whylen, "--server and --ctrl use the same endpoint");
		return -EINVAL;
	}
	for (size_t i = 0; i < m->ninst; i++) {
		const struct sup_inst *o = m->insts[i];
		const struct sup_ep *theirs[2] = { &o->server, &o->ctrl };

		if (o == in)
			continue;
		/* two instances on one device would take each other's commands
		 * (chardev) or could not both register it (cuse) */
		if (in->dev && o->dev && strcmp(in->dev, o->dev) == 0) {
			sup_fmt(why, whylen, "the device %s is already used by instance '%s'", in->dev,
				o->conf.id);
			return -EADDRINUSE;
		}
		for (int k = 0; k < 2; k++) {
			for (int j = 0; j < 2; j++) {
				if (sup_ep_same(mine[k], theirs[j])) {
					sup_fmt(why, whylen,
						"the %s endpoint (%s) is already used by instance '%s'",
						k ? "ctrl" : "server",
						mine[k]->path ? mine[k]->path : "tcp port", o->conf.id);
					return -EADDRINUSE;
				}
			}
		}
	}
	return 0;
}

/* ---- spawning ---- */

static void sup_process_gone(struct sup_inst *in);
static void sup_ready_close(struct sup_inst *in);
static void sup_spawned(struct sup_inst *in, pid_t pid, int pidfd, int ready, bool claimed);
static void sup_record_identity(struct sup_inst *in, pid_t pid, bool pooled);
static void sup_kill_orphan(pid_t pid, int pidfd);

/* The child's command line: the instance's, plus its own state directory. */
static void sup_spawn_req(const struct sup_inst *in, struct spawn_req *req, char *statearg,
			  size_t size)
{
	size_t n = 0;

	memset(req, 0, sizeof(*req));
	for (size_t i = 0; i < in->conf.argc; i++)
		req->argv[n++] = in->conf.argv[i];
	if (in->own_state) {
		sup_fmt(statearg, size, "dir=%s/state", in->dir);
		req->argv[n++] = "--tpmstate";
		req->argv[n++] = statearg;
	}
	req->argc = n;
	req->id = in->conf.id;
	req->dir = in->dir;
	req->log = in->log;
	req->comm = in->comm;
}

/* Claim a parked pool process for a create and hand it the command line at
 * once: it starts while vtpmd writes the registry entry (the next steps of
 * the create), on the other CPU if one is idle. */
static void sup_claim(struct sup_inst *in)
{
	struct spawn_req req;
	char statearg[PATH_MAX + 8];
	int r;

	if (pool_claim(in->m, in->conf.id, &in->claim) < 0)
		return;
	sup_spawn_req(in, &req, statearg, sizeof(statearg));
	r = pool_send_claim(&in->claim, &req);
	if (r == 0)
		return;
	/* Its directory, with the manufactured state, is the instance's now:
	 * a freshly forked process loads that state. */
	log_printf("instance %s: pool process %d did not take it (%s); forking one\n",
		   in->conf.id, (int)in->claim.pid, strerror(-r));
	pool_discard(&in->claim);
}

static void sup_spawn(struct sup_inst *in, bool explicit_start)
{
	struct mgr *m = in->m;
	struct spawn_req req;
	char statearg[PATH_MAX + 8];
	int r;

	in->explicit_start = explicit_start;
	in->stop_requested = false;
	in->keep_error = false;
	in->adopted = false;
	in->phase = PH_NONE;
	in->st = SUP_STARTING;
	/* an automatic restart keeps showing why it was needed */
	if (explicit_start)
		in->last_error[0] = '\0';
	sup_persist(in, REG_RUNNING);
	/* a create has just made them */
	r = in->fresh ? 0 : reg_prepare(m->state_root, in->conf.id, in->uid, in->gid);
	in->fresh = false;
	if (r < 0) {
		sup_fmt(in->last_error, sizeof(in->last_error), "cannot prepare %s: %s", in->dir,
			strerror(-r));
		goto fail;
	}
	pool_busy(m);
	if (in->claim.pid > 0) {
		/* sup_cmd_create handed it the command line already */
		struct pool_claim c = in->claim;

		in->claim.pid = 0;
		in->claim.pidfd = in->claim.ready = -1;
		sup_record_identity(in, c.pid, true);
		sup_spawned(in, c.pid, c.pidfd, c.ready, true);
		return;
	}
	sup_spawn_req(in, &req, statearg, sizeof(statearg));
	if (++m->spawn_seq == 0)
		m->spawn_seq = 1;
	req.seq = m->spawn_seq;
	r = spawn_send(&m->sp, &req);
	if (r < 0) {
		sup_fmt(in->last_error, sizeof(in->last_error), "cannot reach the spawner: %s",
			strerror(-r));
		goto fail;
	}
	in->spawn_seq = req.seq;
	in->spawn_pending = true;
	in->deadline = mgr_now_ms() + SUP_SPAWN_TIMEOUT_MS;
	return;
fail:
	in->keep_error = true;
	in->exit_kind = EXIT_NONE;
	sup_process_gone(in);
}

/* ---- stopping ---- */

static void sup_signal(struct sup_inst *in, int sig)
{
	if (in->pidfd >= 0 && pidfd_send_signal(in->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
		log_printf("instance %s: cannot send signal %d: %s\n", in->conf.id, sig,
			   strerror(errno));
}

static void sup_ctrl_close(struct sup_inst *in)
{
	if (in->ctrl_fd < 0)
		return;
	mgr_watch_del(in->m, in->ctrl_fd);
	close(in->ctrl_fd);
	in->ctrl_fd = -1;
}

/* The address to reach the instance's ctrl channel at. -ENOENT: it has none. */
static int sup_ctrl_addr(const struct sup_inst *in, struct sockaddr_storage *ssp, socklen_t *slenp)
{
	struct sockaddr_storage ss;
	socklen_t slen;

	memset(&ss, 0, sizeof(ss));
	if (in->ctrl.type == SOCK_UNIXIO && in->ctrl.path) {
		struct sockaddr_un *su = (struct sockaddr_un *)&ss;

		if (strlen(in->ctrl.path) >= sizeof(su->sun_path))
			return -ENAMETOOLONG;
		su->sun_family = AF_UNIX;
		strcpy(su->sun_path, in->ctrl.path);
		slen = sizeof(*su);
	} else if (in->ctrl.type == SOCK_TCP && in->ctrl.port > 0) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		const char *a = in->ctrl.addr ? in->ctrl.addr : "127.0.0.1";

		/* a wildcard bind is reachable on loopback */
		if (strcmp(a, "0.0.0.0") == 0)
			a = "127.0.0.1";
		else if (strcmp(a, "::") == 0)
			a = "::1";
		if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)in->ctrl.port);
			slen = sizeof(*s4);
		} else if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1 &&
			   !IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr)) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)in->ctrl.port);
			slen = sizeof(*s6);
		} else {
			return -EAFNOSUPPORT;
		}
	} else {
		return -ENOENT;
	}
	*ssp = ss;
	*slenp = slen;
	return 0;
}

static int sup_ctrl_open(struct sup_inst *in)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int fd, r;

	r = sup_ctrl_addr(in, &ss, &slen);
	if (r < 0)
		return r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* EAGAIN from a unix connect means a full backlog: do not wait there */
	if (connect(fd, (struct sockaddr *)&ss, slen) < 0 && errno != EINPROGRESS) {
		int e = -errno;

		close(fd);
		return e;
	}
	if (mgr_watch_add(in->m, fd, EPOLLOUT, &in->ctrl_w) < 0) {
		close(fd);
		return -EIO;
	}
	in->ctrl_fd = fd;
	in->ctrl_sent = false;
	in->ctrl_done = 0;
	return 0;
}

static void sup_stop_term(struct sup_inst *in)
{
	sup_ctrl_close(in);
	sup_signal(in, SIGTERM);
	in->phase = PH_TERM;
	in->deadline = mgr_now_ms() + SUP_TERM_TIMEOUT_MS;
}

static void sup_begin_stop(struct sup_inst *in)
{
	in->stop_requested = true;
	in->st = SUP_STOPPING;
	if (in->then != THEN_START)
		sup_persist(in, REG_STOPPED);
	if (in->spawn_pending)
		return; /* continued when the spawner answers */
	/* CMD_SHUTDOWN makes the instance do swtpm's orderly TPM2_Shutdown and
	 * save its state before exiting; SIGTERM is the fallback. */
	if (sup_ctrl_open(in) == 0) {
		in->phase = PH_CTRL;
		in->deadline = mgr_now_ms() + SUP_CTRL_TIMEOUT_MS;
		return;
	}
	sup_stop_term(in);
}

void sup_ctrl_event(struct mgr *m, struct sup_inst *in, uint32_t events)
{
	ssize_t r;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	(void)m;
	if (in->dead || in->ctrl_fd < 0)
		return;
	if (!in->ctrl_sent) {
		uint8_t cmd[4] = { 0, 0, 0, CMD_SHUTDOWN };

		if (getsockopt(in->ctrl_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr ||
		    (events & EPOLLERR))
			goto fallback;
		r = send(in->ctrl_fd, cmd, sizeof(cmd), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r != (ssize_t)sizeof(cmd))
			goto fallback;
		in->ctrl_sent = true;
		if (mgr_watch_mod(in->m, in->ctrl_fd, EPOLLIN, &in->ctrl_w) < 0)
			goto fallback;
		return;
	}
	r = recv(in->ctrl_fd, in->ctrl_buf + in->ctrl_done, sizeof(in->ctrl_buf) - in->ctrl_done,
		 MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0)
		goto fallback;
	in->ctrl_done += (size_t)r;
	if (in->ctrl_done < sizeof(in->ctrl_buf))
		return;
	sup_ctrl_close(in);
	if (in->ctrl_buf[0] | in->ctrl_buf[1] | in->ctrl_buf[2] | in->ctrl_buf[3]) {
		log_printf("instance %s: CMD_SHUTDOWN failed (0x%02x%02x%02x%02x), sending SIGTERM\n",
			   in->conf.id, in->ctrl_buf[0], in->ctrl_buf[1], in->ctrl_buf[2],
			   in->ctrl_buf[3]);
		sup_stop_term(in);
	}
	/* else: it exits by itself now; the CTRL deadline still bounds that */
	return;
fallback:
	sup_stop_term(in);
}

/* ---- state changes ---- */

static void sup_exit_desc(const struct sup_inst *in, char *buf, size_t size)
{
	switch (in->exit_kind) {
	case EXIT_CODE:
		sup_fmt(buf, size, "exited with status %d", in->exit_value);
		break;
	case EXIT_SIGNAL:
		sup_fmt(buf, size, "killed by signal %d (SIG%s)", in->exit_value,
			sigabbrev_np(in->exit_value) ? sigabbrev_np(in->exit_value) : "?");
		break;
	case EXIT_UNKNOWN:
		sup_fmt(buf, size, "exited (status unknown: not a child of this vtpmd)");
		break;
	default:
		sup_fmt(buf, size, "did not run");
		break;
	}
}

static void sup_fail(struct sup_inst *in)
{
	json_object *d = json_object_new_object();

	in->st = SUP_FAILED;
	in->deadline = 0;
	sup_persist(in, REG_FAILED);
	log_printf("instance %s failed: %s\n", in->conf.id, in->last_error);
	if (d) {
		json_object_object_add(d, "reason", json_object_new_string(in->last_error));
		sup_event(in, PROTO_EV_FAILED, d);
	}
	sup_settle(in);
}

static void sup_do_destroy(struct sup_inst *in)
{
	struct mgr *m = in->m;
	struct sup_waiter *w;
	char desc[384];
	int r;

	r = reg_remove(m->state_root, in->conf.id, in->purge);
	if (r < 0) {
		sup_fmt(desc, sizeof(desc), "could not remove the registry entry of '%s': %s",
			in->conf.id, strerror(-r));
		log_printf("%s\n", desc);
		in->then = THEN_NONE;
		in->st = SUP_STOPPED;
		while ((w = in->waiters)) {
			in->waiters = w->next;
			mgmt_reply_error(m, w->client, w->reqid, PROTO_ERR_GENERIC, desc);
			sup_waiter_free(w);
		}
		return;
	}
	log_printf("instance %s destroyed%s\n", in->conf.id, in->purge ? " (state purged)" : "");
	sup_fmt(desc, sizeof(desc), "instance '%s' was destroyed", in->conf.id);
	while ((w = in->waiters)) {
		in->waiters = w->next;
		if (w->cmd == PROTO_CMD_DESTROY)
			mgmt_reply(m, w->client, w->reqid, NULL);
		else
			mgmt_reply_error(m, w->client, w->reqid, PROTO_ERR_NOTFOUND, desc);
		sup_waiter_free(w);
	}
	/* Freed later: another event of this batch may still point at it. */
	sup_unlink(m, in);
	sup_ready_close(in);
	if (in->unsynced) {
		in->unsynced = false;
		m->nunsynced--;
	}
	sup_ctrl_close(in);
	if (in->pidfd >= 0) {
		mgr_watch_del(m, in->pidfd);
		close(in->pidfd);
		in->pidfd = -1;
	}
	in->dead = true;
	in->next_dead = m->graveyard;
	m->graveyard = in;
}

void sup_sync(struct mgr *m)
{
	const char **ids;
	size_t n = 0;
	int r;

	if (m->nunsynced == 0)
		return;
	ids = calloc(m->nunsynced, sizeof(*ids));
	for (size_t i = 0; ids && i < m->ninst && n < m->nunsynced; i++)
		if (m->insts[i]->unsynced)
			ids[n++] = m->insts[i]->conf.id;
	r = ids ? reg_sync_entries(m->state_root, ids, n) : -ENOMEM;
	free(ids);
	if (r < 0)
		log_printf("registry: cannot make %zu new entr%s durable: %s\n", m->nunsynced,
			   m->nunsynced == 1 ? "y" : "ies", strerror(-r));
	for (size_t i = 0; i < m->ninst && m->nunsynced;) {
		struct sup_inst *in = m->insts[i];
		struct sup_waiter **pp, *w;
		char why[400];

		if (in->unsynced) {
			in->unsynced = false;
			m->nunsynced--;
			if (r < 0) {
				/* not acknowledged: the client must not rely on it */
				sup_fmt(why, sizeof(why),
					"the registry entry of '%s' could not be made durable: %s",
					in->conf.id, strerror(-r));
				for (pp = &in->waiters; (w = *pp);) {
					if (w->cmd != PROTO_CMD_CREATE) {
						pp = &w->next;
						continue;
					}
					*pp = w->next;
					mgmt_reply_error(m, w->client, w->reqid, PROTO_ERR_GENERIC, why);
					sup_waiter_free(w);
				}
			}
			sup_settle(in);
		}
		if (i < m->ninst && m->insts[i] == in)
			i++;
	}
	m->nunsynced = 0;
}

void sup_reap(struct mgr *m)
{
	struct sup_inst *in;

	while ((in = m->graveyard)) {
		m->graveyard = in->next_dead;
		sup_free(in);
	}
}

static unsigned sup_recent_restarts(const struct sup_inst *in, uint64_t now)
{
	unsigned n = 0;

	for (unsigned i = 0; i < in->nhist && i < SUP_LOOP_MAX; i++)
		if (now - in->hist[i] < SUP_LOOP_WINDOW_MS)
			n++;
	return n;
}

/* No process any more (exited, never forked, or vanished while we were not
 * running): decide what happens next. May free `in` (destroy). */
static void sup_process_gone(struct sup_inst *in)
{
	bool starting = in->st == SUP_STARTING;
	char what[128], tail[256];
	uint64_t now = mgr_now_ms();
	bool clean, restart;
	unsigned recent;

	in->deadline = 0;
	in->phase = PH_NONE;
	in->spawn_pending = false;
	in->adopted = false;
	sup_ready_close(in);
	sup_ctrl_close(in);
	sup_exit_desc(in, what, sizeof(what));

	if (in->stop_requested) {
		in->stop_requested = false;
		in->st = SUP_STOPPED;
		if (in->then == THEN_DESTROY) {
			sup_do_destroy(in);
			return;
		}
		if (in->then == THEN_START) {
			in->then = THEN_NONE;
			sup_spawn(in, true);
			sup_settle(in);
			return;
		}
		sup_persist(in, REG_STOPPED);
		log_printf("instance %s stopped\n", in->conf.id);
		sup_event(in, PROTO_EV_STOPPED, NULL);
		sup_settle(in);
		return;
	}
	if (starting && in->explicit_start) {
		/* It never came up: retrying a start that never worked only
		 * hides the error, so report it and stay down. */
		if (!in->keep_error) {
			if (reg_log_tail(in->m->state_root, in->conf.id, tail, sizeof(tail)) == 0 &&
			    tail[0] && strncmp(tail, "vtpmd: starting instance", 24) != 0)
				sup_fmt(in->last_error, sizeof(in->last_error), "%s: %s", what, tail);
			else
				sup_fmt(in->last_error, sizeof(in->last_error), "%s", what);
		}
		sup_fail(in);
		return;
	}
	if (!in->keep_error)
		sup_fmt(in->last_error, sizeof(in->last_error), "%s", what);
	clean = in->exit_kind == EXIT_CODE && in->exit_value == 0;
	restart = in->conf.policy == PROTO_RESTART_ALWAYS ||
		  (in->conf.policy == PROTO_RESTART_ON_FAILURE && !clean);
	if (!restart) {
		if (clean) {
			in->st = SUP_STOPPED;
			sup_persist(in, REG_STOPPED);
			log_printf("instance %s exited cleanly; restart policy %s\n", in->conf.id,
				   proto_policy_name(in->conf.policy));
			sup_event(in, PROTO_EV_STOPPED, NULL);
			sup_settle(in);
		} else {
			sup_fail(in);
		}
		return;
	}
	recent = sup_recent_restarts(in, now);
	if (recent >= SUP_LOOP_MAX) {
		sup_fmt(in->last_error, sizeof(in->last_error),
			"crash loop: restarted %u times within %u s, giving up (last: %s)",
			SUP_LOOP_MAX, SUP_LOOP_WINDOW_MS / 1000, what);
		sup_fail(in);
		return;
	}
	{
		uint64_t delay = (uint64_t)SUP_BACKOFF_MIN_MS << recent;

		if (delay > SUP_BACKOFF_MAX_MS)
			delay = SUP_BACKOFF_MAX_MS;
		in->st = SUP_BACKOFF;
		in->deadline = now + delay;
		log_printf("instance %s %s; restarting in %llu ms\n", in->conf.id, what,
			   (unsigned long long)delay);
	}
	sup_settle(in);
}

static void sup_running(struct sup_inst *in)
{
	sup_ready_close(in);
	in->st = SUP_RUNNING;
	in->deadline = 0;
	log_printf("instance %s running as pid %d%s\n", in->conf.id, (int)in->pid,
		   in->explicit_start ? "" : " (restarted)");
	if (in->explicit_start)
		sup_event_pid(in, PROTO_EV_STARTED, in->pid, false);
	else
		sup_event_pid(in, PROTO_EV_RESTARTED, in->pid, true);
	sup_settle(in);
}

static void sup_ready_close(struct sup_inst *in)
{
	if (in->ready_fd < 0)
		return;
	mgr_watch_del(in->m, in->ready_fd);
	close(in->ready_fd);
	in->ready_fd = -1;
}

/* The instance sends its pid when it serves: sockets listening, TPM started
 * and its state durable (instance_ready_fd). EOF without it: it is exiting,
 * and its pidfd tells the rest. */
void sup_ready_event(struct mgr *m, struct sup_inst *in)
{
	char buf[32];
	ssize_t n;

	(void)m;
	if (in->dead || in->ready_fd < 0)
		return;
	n = recv(in->ready_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	sup_ready_close(in);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (atoi(buf) != (int)in->pid) {
		log_printf("instance %s: readiness from pid %s, expected %d\n", in->conf.id, buf,
			   (int)in->pid);
		return;
	}
	if (in->st == SUP_STARTING && !in->spawn_pending)
		sup_running(in);
}

void sup_child_event(struct mgr *m, struct sup_inst *in)
{
	siginfo_t si;
	pid_t pid = in->pid;
	json_object *d;

	if (in->dead || in->pidfd < 0)
		return;
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)in->pidfd, &si, WEXITED | WNOHANG) == 0) {
		if (si.si_pid == 0)
			return; /* spurious: still running */
		if (si.si_code == CLD_EXITED) {
			in->exit_kind = EXIT_CODE;
			in->exit_value = si.si_status;
		} else {
			in->exit_kind = EXIT_SIGNAL;
			in->exit_value = si.si_status;
		}
	} else {
		/* ECHILD: adopted, i.e. not our child, so the status is gone.
		 * waitid cannot tell a spurious wake-up from an exit here, but
		 * the pidfd can: it is readable only once the process exited. */
		struct pollfd pfd = { .fd = in->pidfd, .events = POLLIN };

		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
			return;
		in->exit_kind = EXIT_UNKNOWN;
		in->exit_value = 0;
	}
	mgr_watch_del(m, in->pidfd);
	close(in->pidfd);
	in->pidfd = -1;
	in->pid = 0;
	in->exit_pid = pid;
	in->ident_ok = false;
	reg_pid_remove(m->state_root, in->conf.id);

	d = json_object_new_object();
	if (d) {
		json_object_object_add(d, "pid", json_object_new_int(pid));
		json_object_object_add(d, "exit-status", sup_exit_json(in));
		json_object_object_add(d, "expected", json_object_new_boolean(in->stop_requested));
		sup_event(in, PROTO_EV_EXITED, d);
	}
	{
		char what[128];

		sup_exit_desc(in, what, sizeof(what));
		log_printf("instance %s (pid %d) %s%s\n", in->conf.id, (int)pid, what,
			   in->stop_requested ? " (stop requested)" : "");
	}
	sup_process_gone(in);
}

/* Take a freshly spawned (or adopted) process under watch. */
static int sup_watch_pid(struct sup_inst *in, pid_t pid, int pidfd)
{
	int r;

	in->pid = pid;
	in->pidfd = pidfd;
	r = mgr_watch_add(in->m, pidfd, EPOLLIN, &in->pid_w);
	if (r < 0) {
		in->pid = 0;
		in->pidfd = -1;
		return r;
	}
	return 0;
}

/* The pid file, for re-adoption by a later vtpmd. If the process already
 * died, /proc has no exe for it: no pid file then, and the pidfd reports the
 * exit in a moment. */
static void sup_record_identity(struct sup_inst *in, pid_t pid, bool pooled)
{
	int r;

	in->ident_ok = reg_proc_identity(pid, &in->ident) == 0;
	/* A pool process names itself when it reads the claim, after this:
	 * record the name it takes (the same as a forked instance's). */
	if (in->ident_ok && pooled)
		sup_fmt(in->ident.comm, sizeof(in->ident.comm), "%s", in->comm);
	if (in->ident_ok) {
		r = reg_pid_write(in->m->state_root, in->conf.id, &in->ident);
		if (r < 0)
			log_printf("instance %s: cannot write its pid file: %s\n", in->conf.id,
				   strerror(-r));
	}
}

/* The instance's process exists (forked, or a claimed pool process that has
 * its claim and its pid file already): watch it, and wait for it to serve. */
static void sup_spawned(struct sup_inst *in, pid_t pid, int pidfd, int ready, bool claimed)
{
	struct mgr *m = in->m;

	if (pidfd < 0)
		pidfd = pidfd_open(pid, 0);
	if (pidfd < 0 || sup_watch_pid(in, pid, pidfd) < 0) {
		if (pidfd >= 0)
			close(pidfd);
		if (ready >= 0)
			close(ready);
		sup_kill_orphan(pid, -1);
		sup_fmt(in->last_error, sizeof(in->last_error), "cannot watch the instance process");
		in->keep_error = true;
		in->exit_kind = EXIT_NONE;
		sup_process_gone(in);
		return;
	}
	if (!claimed)
		sup_record_identity(in, pid, false);
	in->spawned_ms = mgr_now_ms();
	if (in->stop_requested) {
		if (ready >= 0)
			close(ready);
		sup_begin_stop(in);
		return;
	}
	if (ready < 0 || mgr_watch_add(m, ready, EPOLLIN, &in->ready_w) < 0) {
		/* cannot happen short of ENOMEM: then it never counts as ready */
		if (ready >= 0)
			close(ready);
		log_printf("instance %s: no readiness channel\n", in->conf.id);
	} else {
		in->ready_fd = ready;
	}
	in->deadline = in->spawned_ms + SUP_READY_TIMEOUT_MS;
}

static struct sup_inst *sup_by_seq(struct mgr *m, uint32_t seq)
{
	for (size_t i = 0; i < m->ninst; i++)
		if (m->insts[i]->spawn_pending && m->insts[i]->spawn_seq == seq)
			return m->insts[i];
	return NULL;
}

/* A child nobody waits for any more (its spawn timed out): it is ours, so
 * its pid cannot be recycled before we reap it here. */
static void sup_kill_orphan(pid_t pid, int pidfd)
{
	siginfo_t si;

	if (pidfd < 0)
		pidfd = pidfd_open(pid, 0);
	if (pidfd < 0)
		return;
	pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
	waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED);
	close(pidfd);
}

void sup_spawner_event(struct mgr *m)
{
	struct spawn_rep rep;
	struct sup_inst *in;
	int pidfd, ready, r;

	for (;;) {
		r = spawn_recv(&m->sp, &rep, &pidfd, &ready);
		if (r == -EAGAIN || r == -EPIPE)
			return;
		if (r < 0)
			continue;
		in = sup_by_seq(m, rep.seq);
		if (!in && pool_spawn_reply(m, &rep, pidfd, ready))
			continue;
		if (!in || rep.err < 0 || rep.pid <= 0) {
			if (ready >= 0)
				close(ready);
			ready = -1;
		}
		if (!in) {
			if (rep.pid > 0) {
				log_printf("spawner: late child %d for request %u, killing it\n",
					   (int)rep.pid, rep.seq);
				sup_kill_orphan(rep.pid, pidfd);
			} else if (pidfd >= 0) {
				close(pidfd);
			}
			continue;
		}
		in->spawn_pending = false;
		if (rep.err < 0 || rep.pid <= 0) {
			if (pidfd >= 0)
				close(pidfd);
			sup_fmt(in->last_error, sizeof(in->last_error),
				"could not fork the instance: %s",
				strerror(rep.err < 0 ? -rep.err : EIO));
			in->keep_error = true;
			in->exit_kind = EXIT_NONE;
			sup_process_gone(in);
			continue;
		}
		sup_spawned(in, rep.pid, pidfd, ready, false);
	}
}

void sup_spawner_lost(struct mgr *m)
{
	for (size_t i = 0; i < m->ninst;) {
		struct sup_inst *in = m->insts[i];

		if (in->spawn_pending) {
			sup_fmt(in->last_error, sizeof(in->last_error),
				"the spawner died before it answered");
			in->keep_error = true;
			in->exit_kind = EXIT_NONE;
			sup_process_gone(in);
		}
		if (i < m->ninst && m->insts[i] == in)
			i++;
	}
}

/* ---- timers ---- */

static void sup_restart_now(struct sup_inst *in, uint64_t now)
{
	in->hist[in->nhist % SUP_LOOP_MAX] = now;
	in->nhist++;
	in->restarts++;
	sup_spawn(in, false);
}

static void sup_timer(struct sup_inst *in, uint64_t now)
{
	in->deadline = 0;
	switch (in->st) {
	case SUP_STARTING:
		if (in->spawn_pending) {
			in->spawn_pending = false;
			sup_fmt(in->last_error, sizeof(in->last_error),
				"the spawner did not answer within %u s", SUP_SPAWN_TIMEOUT_MS / 1000);
			in->keep_error = true;
			in->exit_kind = EXIT_NONE;
			sup_process_gone(in);
		} else {
			/* no word from it on its readiness socket */
			sup_fmt(in->last_error, sizeof(in->last_error),
				"not serving after %u s; killed", SUP_READY_TIMEOUT_MS / 1000);
			in->keep_error = true;
			sup_ready_close(in);
			sup_signal(in, SIGKILL);
		}
		break;
	case SUP_STOPPING:
		switch (in->phase) {
		case PH_CTRL:
			log_printf("instance %s: no exit %u ms after CMD_SHUTDOWN, sending SIGTERM\n",
				   in->conf.id, SUP_CTRL_TIMEOUT_MS);
			sup_stop_term(in);
			break;
		case PH_TERM:
			log_printf("instance %s: still running %u ms after SIGTERM, sending SIGKILL\n",
				   in->conf.id, SUP_TERM_TIMEOUT_MS);
			sup_signal(in, SIGKILL);
			in->phase = PH_KILL;
			in->deadline = now + SUP_KILL_TIMEOUT_MS;
			break;
		default:
			log_printf("instance %s: still not gone after SIGKILL\n", in->conf.id);
			in->deadline = now + SUP_KILL_TIMEOUT_MS;
			break;
		}
		break;
	case SUP_BACKOFF:
		sup_restart_now(in, now);
		break;
	default:
		break;
	}
}

uint64_t sup_next_deadline(struct mgr *m)
{
	uint64_t d = 0;

	for (size_t i = 0; i < m->ninst; i++) {
		uint64_t x = m->insts[i]->deadline;

		if (x && (!d || x < d))
			d = x;
	}
	return d;
}

void sup_timers(struct mgr *m, uint64_t now)
{
	for (size_t i = 0; i < m->ninst;) {
		struct sup_inst *in = m->insts[i];

		if (in->deadline && in->deadline <= now)
			sup_timer(in, now);
		if (i < m->ninst && m->insts[i] == in)
			i++;
	}
}

/* ---- commands ---- */

static void sup_reply_status(struct sup_inst *in, uint64_t client, const struct proto_req *req)
{
	mgmt_reply(in->m, client, req->id, sup_status_json(in, true));
}

static void sup_cmd_create(struct mgr *m, const struct proto_req *req, uint64_t client)
{
	struct reg_config conf;
	struct sup_inst *in = NULL;
	char why[400], path[PATH_MAX];
	struct stat st;
	int r;

	if (sup_find(m, req->inst)) {
		sup_fmt(why, sizeof(why), "instance '%s' already exists", req->inst);
		mgmt_reply_error(m, client, req->id, PROTO_ERR_EXISTS, why);
		return;
	}
	if (m->ninst >= SUP_MAX_INSTANCES) {
		mgmt_reply_error(m, client, req->id, PROTO_ERR_GENERIC, "too many instances");
		return;
	}
	if (reg_path(path, sizeof(path), m->state_root, req->inst, "config.json") == 0 &&
	    lstat(path, &st) == 0) {
		/* on disk but not loaded: an entry whose config.json is broken */
		sup_fmt(why, sizeof(why), "a registry entry %s exists (and could not be loaded)",
			path);
		mgmt_reply_error(m, client, req->id, PROTO_ERR_EXISTS, why);
		return;
	}
	memset(&conf, 0, sizeof(conf));
	sup_fmt(conf.id, sizeof(conf.id), "%s", req->inst);
	conf.argv = calloc(req->argc + 1, sizeof(*conf.argv));
	if (!conf.argv)
		goto nomem;
	for (size_t i = 0; i < req->argc; i++) {
		conf.argv[i] = strdup(req->argv[i]);
		if (!conf.argv[i]) {
			conf.argc = i;
			goto nomem;
		}
	}
	conf.argc = req->argc;
	conf.policy = req->policy;
	conf.created = (int64_t)time(NULL);
	/* With --start the intent is recorded once, here, instead of "stopped" now
	 * and "running" a moment later (each write is temp file + two fsyncs). */
	conf.state = req->start ? REG_RUNNING : REG_STOPPED;
	in = sup_new(m, &conf);
	if (!in)
		goto nomem;
	if (sup_parse_argv(in, why, sizeof(why)) < 0 || sup_conflicts(m, in, why, sizeof(why)) < 0) {
		mgmt_reply_error(m, client, req->id, PROTO_ERR_ARG, why);
		goto out;
	}
	/* A parked pool process brings its directory, with the TPM already
	 * manufactured and durable; without one (pool empty, or a command line
	 * it cannot serve) the instance is forked and manufactures at start. */
	if (req->start && in->poolable)
		sup_claim(in);
	/* Not durable yet: sup_sync makes the entries of all creates of this
	 * batch of events durable at once, while their instances start. The
	 * create is acknowledged only after that. */
	r = reg_prepare(m->state_root, in->conf.id, in->uid, in->gid);
	if (r == 0)
		r = reg_config_write_nosync(m->state_root, &in->conf);
	if (r < 0) {
		sup_fmt(why, sizeof(why), "cannot create the registry entry %s: %s", in->dir,
			strerror(-r));
		mgmt_reply_error(m, client, req->id, PROTO_ERR_GENERIC, why);
		goto out;
	}
	if (sup_insert(m, in) < 0) {
		reg_remove(m->state_root, in->conf.id, false);
		goto nomem;
	}
	log_printf("instance %s created (restart policy %s)\n", in->conf.id,
		   proto_policy_name(in->conf.policy));
	if (!req->start) {
		/* nothing to overlap the syncs with: make it durable now */
		const char *ids[1] = { in->conf.id };

		r = reg_sync_entries(m->state_root, ids, 1);
		if (r < 0) {
			sup_fmt(why, sizeof(why),
				"the registry entry of '%s' could not be made durable: %s",
				in->conf.id, strerror(-r));
			mgmt_reply_error(m, client, req->id, PROTO_ERR_GENERIC, why);
			return;
		}
		sup_reply_status(in, client, req);
		return;
	}
	in->unsynced = true;
	in->fresh = true;
	m->nunsynced++;
	sup_wait(in, client, req);
	sup_spawn(in, true);
	sup_settle(in);
	return;
nomem:
	reg_config_free(&conf);
	mgmt_reply_error(m, client, req->id, PROTO_ERR_GENERIC, "out of memory");
out:
	sup_free(in);
}

static void sup_cmd_start(struct sup_inst *in, const struct proto_req *req, uint64_t client)
{
	char why[512];

	switch (in->st) {
	case SUP_RUNNING:
		sup_reply_status(in, client, req);
		return;
	case SUP_STARTING:
		sup_wait(in, client, req);
		return;
	case SUP_STOPPING:
		if (in->then == THEN_DESTROY) {
			sup_fmt(why, sizeof(why), "instance '%s' is being destroyed", in->conf.id);
			mgmt_reply_error(in->m, client, req->id, PROTO_ERR_STATE, why);
			return;
		}
		in->then = THEN_START; /* once the stop is complete */
		sup_wait(in, client, req);
		return;
	default:
		break;
	}
	if (in->invalid) {
		sup_fmt(why, sizeof(why), "instance '%s' cannot be started: %s", in->conf.id,
			in->last_error);
		mgmt_reply_error(in->m, client, req->id, PROTO_ERR_STATE, why);
		return;
	}
	/* an operator's start forgets an old crash loop */
	in->nhist = 0;
	sup_wait(in, client, req);
	sup_spawn(in, true);
	sup_settle(in);
}

static void sup_cmd_stop(struct sup_inst *in, const struct proto_req *req, uint64_t client)
{
	if (in->then == THEN_START)
		in->then = THEN_NONE;
	switch (in->st) {
	case SUP_STOPPED:
		mgmt_reply(in->m, client, req->id, NULL);
		return;
	case SUP_FAILED:
	case SUP_BACKOFF:
		in->st = SUP_STOPPED;
		in->deadline = 0;
		sup_persist(in, REG_STOPPED);
		mgmt_reply(in->m, client, req->id, NULL);
		sup_settle(in);
		return;
	case SUP_STOPPING:
		sup_wait(in, client, req);
		return;
	default:
		sup_wait(in, client, req);
		sup_begin_stop(in);
		return;
	}
}

static void sup_cmd_restart(struct sup_inst *in, const struct proto_req *req, uint64_t client)
{
	switch (in->st) {
	case SUP_RUNNING:
	case SUP_STARTING:
		in->then = THEN_START;
		sup_wait(in, client, req);
		sup_begin_stop(in);
		return;
	case SUP_STOPPING:
		sup_cmd_start(in, req, client);
		return;
	default:
		sup_cmd_start(in, req, client);
		return;
	}
}

static void sup_cmd_destroy(struct sup_inst *in, const struct proto_req *req, uint64_t client)
{
	in->purge = in->purge || req->purge;
	sup_wait(in, client, req);
	if (in->then == THEN_DESTROY)
		return; /* already on its way */
	in->then = THEN_DESTROY;
	switch (in->st) {
	case SUP_STOPPED:
	case SUP_FAILED:
	case SUP_BACKOFF:
		sup_do_destroy(in);
		return;
	case SUP_STOPPING:
		return;
	default:
		sup_begin_stop(in);
		return;
	}
}

/* ---- export-state / import-state ---- */

/* An inline export (no "file") must fit the reply queue of a client
 * (MGMT_MAX_OUT) once base64 grows it by 4/3. */
#define SUP_EXPORT_INLINE_MAX (512u * 1024u)

static json_object *sup_blob_sizes(const size_t len[SF_NBLOBS])
{
	json_object *o = json_object_new_object();

	for (uint32_t t = 1; o && t <= SF_NBLOBS; t++)
		json_object_object_add(o, sf_type_name(t), json_object_new_int64((int64_t)len[t - 1]));
	return o;
}

/* Both commands talk to the TPM over the ctrl channel, which lives in the
 * instance process. 0, or an error reply was sent. */
static int sup_mig_check(struct sup_inst *in, const struct proto_req *req, uint64_t client,
			 struct sockaddr_storage *ss, socklen_t *slen)
{
	char why[400];

	if (sup_ctrl_addr(in, ss, slen) < 0) {
		sup_fmt(why, sizeof(why),
			"instance '%s' has no usable ctrl channel (--ctrl type=unixio,path=... or "
			"type=tcp,port=...): %s needs one",
			in->conf.id, req->name);
		mgmt_reply_error(in->m, client, req->id, PROTO_ERR_STATE, why);
		return -EINVAL;
	}
	return 0;
}

static void sup_cmd_export(struct sup_inst *in, const struct proto_req *req, uint64_t client)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	struct mig_blobs b;
	struct sf_state st;
	json_object *ret;
	uint8_t *file = NULL;
	size_t filelen = 0;
	char why[512];
	int r;

	if (sup_mig_check(in, req, client, &ss, &slen) < 0)
		return;
	/* The blobs come from the TPM itself (that is what makes the volatile
	 * state consistent); starting a stopped instance just to read it would
	 * run its start-up (TPM2_Startup with --flags startup-*), i.e. change
	 * the state being exported. */
	if (in->st != SUP_RUNNING) {
		sup_fmt(why, sizeof(why),
			"instance '%s' is %s: export-state reads the state from the running TPM "
			"over its ctrl channel; start it first",
			in->conf.id, sup_state_name(in));
		mgmt_reply_error(in->m, client, req->id, PROTO_ERR_STATE, why);
		return;
	}
	r = mig_export((struct sockaddr *)&ss, slen, req->encrypted, &b, why, sizeof(why));
	if (r < 0) {
		char desc[600];

		sup_fmt(desc, sizeof(desc), "export of '%s' failed: %s", in->conf.id, why);
		mgmt_reply_error(in->m, client, req->id, PROTO_ERR_CTRL, desc);
		return;
	}
	memset(&st, 0, sizeof(st));
	st.tpm2 = in->tpm2;
	st.created = (int64_t)time(NULL);
	sup_fmt(st.source_id, sizeof(st.source_id), "%s", in->conf.id);
	for (int i = 0; i < SF_NBLOBS; i++) {
		st.blobs[i].type = (uint32_t)(i + 1);
		st.blobs[i].flags = b.flags[i];
		st.blobs[i].data = b.data[i];
		st.blobs[i].len = b.len[i];
	}
	r = sf_encode(&st, &file, &filelen);
	if (r < 0) {
		sup_fmt(why, sizeof(why), "cannot encode the state file: %s", strerror(-r));
		mgmt_reply_error(in->m, client, req->id, PROTO_ERR_GENERIC, why);
		goto out;
	}
	ret = json_object_new_object();
	if (!ret)
		goto nomem;
	json_object_object_add(ret, "id", json_object_new_string(in->conf.id));
	if (req->file) {
		r = sf_write_file(req->file, file, filelen);
		if (r < 0) {
			json_object_put(ret);
			sup_fmt(why, sizeof(why), "cannot write %s: %s", req->file, strerror(-r));
			mgmt_reply_error(in->m, client, req->id, PROTO_ERR_GENERIC, why);
			goto out;
		}
		json_object_object_add(ret, "file", json_object_new_string(req->file));
	} else {
		char *b64;

		if (filelen > SUP_EXPORT_INLINE_MAX) {
			json_object_put(ret);
			sup_fmt(why, sizeof(why),
				"the state file is %zu bytes, more than %u for an inline export: "
				"give 'file'",
				filelen, SUP_EXPORT_INLINE_MAX);
			mgmt_reply_error(in->m, client, req->id, PROTO_ERR_ARG, why);
			goto out;
		}
		b64 = malloc(4 * ((filelen + 2) / 3) + 1);
		if (!b64) {
			json_object_put(ret);
			goto nomem;
		}
		EVP_EncodeBlock((unsigned char *)b64, file, (int)filelen);
		json_object_object_add(ret, "data", json_object_new_string(b64));
		free(b64);
	}
	json_object_object_add(ret, "bytes", json_object_new_int64((int64_t)filelen));
	json_object_object_add(ret, "encrypted", json_object_new_boolean(req->encrypted));
	json_object_object_add(ret, "blobs", sup_blob_sizes(b.len));
	log_printf("instance %s: state exported (%zu bytes)%s%s\n", in->conf.id, filelen,
		   req->file ? " to " : "", req->file ? req->file : "");
	mgmt_reply(in->m, client, req->id, ret);
	goto out;
nomem:
	mgmt_reply_error(in->m, client, req->id, PROTO_ERR_GENERIC, "out of memory");
out:
	free(file);
	mig_blobs_free(&b);
}

/* Strict base64 (RFC 4648, with padding, no whitespace). 0 or -EINVAL. */
static int sup_unbase64(const char *in, size_t len, uint8_t **out, size_t *outlen)
{
	size_t pad = 0;
	uint8_t *buf;
	int n;

	if (len == 0 || len % 4 || len > (size_t)INT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '=' && i >= len - 2) {
			pad++;
			continue;
		}
		if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return -EINVAL;
	}
	buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
	if (n < 0 || (size_t)n < pad) {
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	*outlen = (size_t)n - pad;
	return 0;
}

static void sup_import_now(struct sup_inst *in, uint64_t client, json_object *reqid,
			   const uint8_t *file, size_t filelen)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	struct sf_state st;
	json_object *ret;
	size_t len[SF_NBLOBS];
	char why[512], desc[700];
	bool restored;
	int r;

	/* validated when the request came; the instance may have been re-created
	 * since, so its TPM version and ctrl channel are checked again */
	r = sf_decode(file, filelen, in->tpm2 ? 1 : 0, &st, why, sizeof(why));
	if (r < 0) {
		sup_fmt(desc, sizeof(desc), "invalid state file: %s", why);
		mgmt_reply_error(in->m, client, reqid, PROTO_ERR_BADFILE, desc);
		return;
	}
	if (sup_ctrl_addr(in, &ss, &slen) < 0) {
		mgmt_reply_error(in->m, client, reqid, PROTO_ERR_STATE,
				 "the instance has no usable ctrl channel");
		return;
	}
	r = mig_import((struct sockaddr *)&ss, slen, &st, &restored, why, sizeof(why));
	if (r < 0) {
		sup_fmt(desc, sizeof(desc), "import into '%s' failed: %s%s", in->conf.id, why,
			restored ? "; the TPM was re-initialised on its own stored state (its "
				   "volatile state is lost: it needs TPM2_Startup, as after a reset)"
				 : "; the TPM could not be re-initialised: restart the instance");
		log_printf("instance %s: %s\n", in->conf.id, desc);
		mgmt_reply_error(in->m, client, reqid, PROTO_ERR_CTRL, desc);
		return;
	}
	for (int i = 0; i < SF_NBLOBS; i++)
		len[i] = st.blobs[i].len;
	log_printf("instance %s: state imported (from '%s', %zu bytes)\n", in->conf.id,
		   st.source_id, filelen);
	ret = json_object_new_object();
	if (!ret) {
		mgmt_reply_error(in->m, client, reqid, PROTO_ERR_GENERIC, "out of memory");
		return;
	}
	json_object_object_add(ret, "id", json_object_new_string(in->conf.id));
	json_object_object_add(ret, "source-id",
			       st.source_id[0] ? json_object_new_string(st.source_id) : NULL);
	json_object_object_add(ret, "created", json_object_new_int64(st.created));
	json_object_object_add(ret, "blobs", sup_blob_sizes(len));
	mgmt_reply(in->m, client, reqid, ret);
}

static void sup_cmd_import(struct sup_inst *in, const struct proto_req *req, uint64_t client)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	struct sup_waiter *w;
	struct sf_state st;
	uint8_t *file = NULL;
	size_t filelen = 0;
	char why[512], desc[700];
	int r;

	/* everything about the file is checked before the instance is touched */
	if (req->file) {
		r = sf_read_file(req->file, &file, &filelen);
		if (r < 0) {
			sup_fmt(desc, sizeof(desc), "cannot read %s: %s", req->file,
				r == -EFBIG ? "larger than any vtpmd state file"
				: r == -EINVAL ? "not a regular file" : strerror(-r));
			mgmt_reply_error(in->m, client, req->id,
					 r == -EFBIG ? PROTO_ERR_BADFILE : PROTO_ERR_ARG, desc);
			return;
		}
	} else {
		r = sup_unbase64(req->data, req->datalen, &file, &filelen);
		if (r < 0) {
			mgmt_reply_error(in->m, client, req->id,
					 r == -ENOMEM ? PROTO_ERR_GENERIC : PROTO_ERR_ARG,
					 r == -ENOMEM ? "out of memory"
						      : "Parameter 'data' is not valid base64");
			return;
		}
	}
	r = sf_decode(file, filelen, in->tpm2 ? 1 : 0, &st, why, sizeof(why));
	if (r < 0) {
		sup_fmt(desc, sizeof(desc), "invalid state file%s%s: %s (instance '%s' not touched)",
			req->file ? " " : "", req->file ? req->file : "", why, in->conf.id);
		mgmt_reply_error(in->m, client, req->id, PROTO_ERR_BADFILE, desc);
		goto out;
	}
	if (sup_mig_check(in, req, client, &ss, &slen) < 0)
		goto out;
	switch (in->st) {
	case SUP_RUNNING:
		sup_import_now(in, client, req->id, file, filelen);
		goto out;
	case SUP_STOPPED:
	case SUP_FAILED:
		if (in->invalid) {
			sup_fmt(desc, sizeof(desc), "instance '%s' cannot be started: %s",
				in->conf.id, in->last_error);
			mgmt_reply_error(in->m, client, req->id, PROTO_ERR_STATE, desc);
			goto out;
		}
		/* The ctrl channel lives in the instance process: start it (as
		 * `start` would), then STOP/SET/INIT once it listens. */
		w = sup_wait(in, client, req);
		if (!w)
			goto out;
		w->file = file;
		w->filelen = filelen;
		file = NULL;
		in->nhist = 0;
		sup_spawn(in, true);
		sup_settle(in);
		goto out;
	case SUP_STARTING:
		w = sup_wait(in, client, req);
		if (w) {
			w->file = file;
			w->filelen = filelen;
			file = NULL;
		}
		goto out;
	default:
		sup_fmt(desc, sizeof(desc), "instance '%s' is %s: try again once it is running "
			"or stopped", in->conf.id, sup_state_name(in));
		mgmt_reply_error(in->m, client, req->id, PROTO_ERR_STATE, desc);
		goto out;
	}
out:
	free(file);
}

static json_object *sup_list(struct mgr *m)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < m->ninst; i++)
		json_object_array_add(a, sup_status_json(m->insts[i], false));
	return a;
}

void sup_command(struct mgr *m, const struct proto_req *req, uint64_t client)
{
	struct sup_inst *in;
	char why[128];

	if (req->cmd == PROTO_CMD_CREATE) {
		sup_cmd_create(m, req, client);
		return;
	}
	if (req->cmd == PROTO_CMD_LIST) {
		mgmt_reply(m, client, req->id, sup_list(m));
		return;
	}
	in = req->inst ? sup_find(m, req->inst) : NULL;
	if (!in) {
		sup_fmt(why, sizeof(why), "no instance '%s'", req->inst ? req->inst : "");
		mgmt_reply_error(m, client, req->id, PROTO_ERR_NOTFOUND, why);
		return;
	}
	switch (req->cmd) {
	case PROTO_CMD_STATUS:
		sup_reply_status(in, client, req);
		break;
	case PROTO_CMD_START:
		sup_cmd_start(in, req, client);
		break;
	case PROTO_CMD_STOP:
		sup_cmd_stop(in, req, client);
		break;
	case PROTO_CMD_RESTART:
		sup_cmd_restart(in, req, client);
		break;
	case PROTO_CMD_DESTROY:
		sup_cmd_destroy(in, req, client);
		break;
	case PROTO_CMD_EXPORT_STATE:
		sup_cmd_export(in, req, client);
		break;
	case PROTO_CMD_IMPORT_STATE:
		sup_cmd_import(in, req, client);
		break;
	default:
		mgmt_reply_error(m, client, req->id, PROTO_ERR_GENERIC, "not an instance command");
		break;
	}
}

/* ---- loading and adoption ---- */

static int sup_adopt(struct sup_inst *in, const struct reg_pid *saved)
{
	struct reg_pid now;
	struct pollfd pfd;
	int pidfd;

	if (strcmp(saved->comm, in->comm) != 0)
		return -ESRCH;
	/* Open the pidfd first, then check identity, then check the pidfd
	 * still refers to a live process: if the pid was recycled in between,
	 * the pidfd (of the old process) is already readable. */
	pidfd = pidfd_open(saved->pid, 0);
	if (pidfd < 0)
		return -errno;
	if (reg_proc_identity(saved->pid, &now) < 0 || !reg_identity_match(saved, &now)) {
		log_printf("instance %s: pid %d is not this instance any more (pid reused)\n",
			   in->conf.id, (int)saved->pid);
		close(pidfd);
		return -ESRCH;
	}
	pfd.fd = pidfd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) != 0) {
		close(pidfd);
		return -ESRCH;
	}
	if (sup_watch_pid(in, saved->pid, pidfd) < 0) {
		close(pidfd);
		return -EIO;
	}
	in->ident = now;
	in->ident_ok = true;
	in->adopted = true;
	in->st = SUP_RUNNING;
	return 0;
}

static int sup_load_one(const char *id, void *arg)
{
	struct mgr *m = arg;
	struct reg_config conf;
	struct reg_pid saved;
	struct sup_inst *in;
	char why[400];

	if (reg_config_read(m->state_root, id, &conf, why, sizeof(why)) < 0) {
		log_printf("registry: ignoring entry '%s': %s\n", id, why);
		return 0;
	}
	in = sup_new(m, &conf);
	if (!in || sup_insert(m, in) < 0) {
		reg_config_free(&conf);
		sup_free(in);
		return -ENOMEM;
	}
	if (sup_parse_argv(in, why, sizeof(why)) < 0) {
		in->invalid = true;
		sup_fmt(in->last_error, sizeof(in->last_error), "%s", why);
		log_printf("instance %s: %s\n", id, why);
	}
	if (reg_pid_read(m->state_root, id, &saved) == 0) {
		if (sup_adopt(in, &saved) == 0) {
			log_printf("instance %s: adopted running pid %d\n", id, (int)saved.pid);
			if (in->conf.state != REG_RUNNING) {
				/* a stop was under way when the last vtpmd ended */
				sup_begin_stop(in);
			}
			return 0;
		}
		reg_pid_remove(m->state_root, id);
	}
	switch (in->conf.state) {
	case REG_RUNNING:
		/* it died while nobody watched: handle it like a crash */
		in->st = in->invalid ? SUP_FAILED : SUP_RUNNING;
		if (in->invalid)
			break;
		in->exit_kind = EXIT_UNKNOWN;
		sup_fmt(in->last_error, sizeof(in->last_error),
			"exited while no vtpmd was watching (status unknown)");
		in->keep_error = true;
		log_printf("instance %s: %s\n", id, in->last_error);
		sup_process_gone(in);
		break;
	case REG_FAILED:
		in->st = SUP_FAILED;
		if (!in->last_error[0])
			sup_fmt(in->last_error, sizeof(in->last_error),
				"had failed before this vtpmd started");
		break;
	default:
		in->st = SUP_STOPPED;
		break;
	}
	return 0;
}

int sup_load(struct mgr *m)
{
	int r = reg_scan(m->state_root, sup_load_one, m);

	log_printf("registry: %zu instance(s) loaded from %s\n", m->ninst, m->state_root);
	return r;
}

void sup_free_all(struct mgr *m)
{
	for (size_t i = 0; i < m->ninst; i++)
		sup_free(m->insts[i]);
	sup_reap(m);
	free(m->insts);
	m->insts = NULL;
	m->ninst = m->cap = 0;
}
