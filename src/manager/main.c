/* vtpmd: the host manager for many vTPMs. Start-up order (spawner forked while
 * single-threaded and before any socket exists), the event loop, readiness. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "instance/config.h"
#include "instance/log.h"
#include "manager/mgmt.h"
#include "manager/mgr.h"
#include "manager/supervisor.h"
#include "vtpm_build.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define MGR_DEFAULT_SOCKET "/run/vtpmd/vtpmd.sock"
#define MGR_DEFAULT_ROOT "/var/lib/vtpmd"
#define MGR_MAX_EVENTS 64

/* ---- loop helpers ---- */

int mgr_watch_add(struct mgr *m, int fd, uint32_t events, struct mgr_watch *w)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int mgr_watch_mod(struct mgr *m, int fd, uint32_t events, struct mgr_watch *w)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(m->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void mgr_watch_del(struct mgr *m, int fd)
{
	epoll_ctl(m->epfd, EPOLL_CTL_DEL, fd, NULL);
}

uint64_t mgr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- options ---- */

struct mgr_opts {
	const char *sock;
	const char *root;
	const char *log;
	bool daemon;
	unsigned pool;
};

static void mgr_usage(FILE *f)
{
	fprintf(f,
		"Usage: vtpmd [OPTIONS]\n"
		"Supervise many swtpm-compatible vTPM instances.\n\n"
		"  --socket PATH        management socket (default %s)\n"
		"  --state-root DIR     registry and TPM state (default %s)\n"
		"  --log file=PATH[,level=N]\n"
		"                       log to PATH instead of stderr\n"
		"  --pool N             keep N instances manufactured ahead for creates\n"
		"                       (default $VTPMD_POOL or %u, at most %u, 0: none)\n"
		"  -d, --daemon         detach once ready\n"
		"  -h, --help           this text\n"
		"  -v, --version        print the version\n\n"
		"See vtpmd(8) for the protocol and vtpmctl(8) for the client.\n",
		MGR_DEFAULT_SOCKET, MGR_DEFAULT_ROOT, POOL_DEFAULT, POOL_MAX);
}

/* --log file=PATH[,level=N] (swtpm's syntax; fd= is not useful here). */
static int mgr_parse_log(const char *arg, struct cfg_log *lc, char **file)
{
	char *copy = strdup(arg), *tok, *save = NULL;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strncmp(tok, "file=", 5) == 0 && tok[5]) {
			free(*file);
			*file = strdup(tok + 5);
			if (!*file)
				ret = -ENOMEM;
		} else if (strncmp(tok, "level=", 6) == 0) {
			char *end;
			unsigned long v = strtoul(tok + 6, &end, 10);

			if (!tok[6] || *end || v > 20)
				ret = -EINVAL;
			else
				lc->level = (unsigned)v;
		} else {
			ret = -EINVAL;
		}
	}
	free(copy);
	if (ret == 0 && !*file)
		ret = -EINVAL;
	lc->file = *file;
	lc->given = true;
	return ret;
}

static int mgr_parse_pool(const char *arg, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v > POOL_MAX)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int mgr_parse_args(int argc, char **argv, struct mgr_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-root", required_argument, NULL, 'r' },
		{ "log", required_argument, NULL, 'l' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "pool", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->sock = MGR_DEFAULT_SOCKET;
	o->root = MGR_DEFAULT_ROOT;
	o->pool = POOL_DEFAULT;
	/* the environment (a unit's Environment=) gives the default */
	if (getenv("VTPMD_POOL") && mgr_parse_pool(getenv("VTPMD_POOL"), &o->pool) < 0) {
		fprintf(stderr, "vtpmd: VTPMD_POOL takes a number from 0 to %u\n", POOL_MAX);
		return -EINVAL;
	}
	while ((c = getopt_long(argc, argv, "dhv", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->sock = optarg;
			break;
		case 'r':
			o->root = optarg;
			break;
		case 'l':
			o->log = optarg;
			break;
		case 'd':
			o->daemon = true;
			break;
		case 'p':
			if (mgr_parse_pool(optarg, &o->pool) < 0) {
				fprintf(stderr, "vtpmd: --pool takes a number from 0 to %u\n",
					POOL_MAX);
				return -EINVAL;
			}
			break;
		case 'h':
			mgr_usage(stdout);
			exit(0);
		case 'v':
			printf("vtpmd %s (swtpm %s compatible)\n", VTPM_VERSION, SWTPM_COMPAT_VERSION);
			exit(0);
		default:
			mgr_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vtpmd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* ---- start-up helpers ---- */

static int mgr_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static char *mgr_absolute(const char *path)
{
	char cwd[PATH_MAX], *out;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&out, "%s/%s", cwd, path) < 0)
		return NULL;
	return out;
}

/* -d: the caller's process returns only once the daemon is ready (or with
 * its error status), like swtpm -d. */
static int mgr_daemonize(int *ready_fd)
{
	int p[2];
	pid_t pid;
	char st;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &st, 1) == 1)
			_exit(st);
		_exit(1);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

static void mgr_daemon_ready(int *ready_fd, char status)
{
	int fd;

	if (*ready_fd < 0)
		return;
	if (status == 0 && (fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (log_get_fd() != STDERR_FILENO)
			dup2(fd, STDERR_FILENO);
		close(fd);
	}
	if (write(*ready_fd, &status, 1) != 1)
		log_printf("could not signal readiness to the parent\n");
	close(*ready_fd);
	*ready_fd = -1;
}

/* systemd Type=notify without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void mgr_sd_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t slen;
	size_t len;
	int fd;

	if (!path || !path[0])
		return;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, slen) < 0)
		log_printf("sd_notify: %s\n", strerror(errno));
	close(fd);
}

static int mgr_lock_root(const char *root)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/.lock", root) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno == EWOULDBLOCK ? -EBUSY : -errno;

		close(fd);
		return e;
	}
	return fd; /* held for the life of the manager */
}

/* Does the ext4 file system holding fd run without a journal? The kernel says
 * so in /sys/fs/ext4/DEV/journal_task ("<none>"). Anything unknown: no. */
static bool mgr_ext4_no_journal(int fd)
{
	char link[PATH_MAX], path[PATH_MAX + 64], buf[16] = "";
	struct stat st;
	const char *name;
	ssize_t n;
	int jfd;

	if (fstat(fd, &st) < 0)
		return false;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = '\0';
	name = strrchr(link, '/');
	name = name ? name + 1 : link;
	snprintf(path, sizeof(path), "/sys/fs/ext4/%s/journal_task", name);
	jfd = open(path, O_RDONLY | O_CLOEXEC);
	if (jfd < 0)
		return false;
	n = read(jfd, buf, sizeof(buf) - 1);
	close(jfd);
	return n >= 6 && strncmp(buf, "<none>", 6) == 0;
}

/*
 * Instance entries are unrelated to each other, as home directories are. On
 * ext4 without a journal, mark the state root as a top of directory
 * hierarchies (chattr +T) so that the entries are spread over block groups
 * (Orlov) instead of packed into the root's group: creating an entry
 * allocates ~8 inodes, and in groups full of recently deleted ones (instances
 * destroyed minutes ago) each allocation there scans past all of them (0.3-0.7
 * ms of CPU each, measured). With a journal that scan does not exist and +T
 * only costs: Orlov looks at every flex group for each new entry (~15 % more
 * CPU per entry, bench/README.md "The file system"), so it is left alone, as
 * is a flag an operator set. Other file systems: nothing happens.
 */
static void mgr_root_topdir(const char *root)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), flags;

	if (fd < 0)
		return;
	if (mgr_ext4_no_journal(fd) && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
	    !(flags & FS_TOPDIR_FL)) {
		flags |= FS_TOPDIR_FL;
		if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)
			log_printf("cannot mark %s as a top directory (chattr +T): %s\n", root,
				   strerror(errno));
	}
	close(fd);
}

static void mgr_raise_nofile(void)
{
	struct rlimit rl;

	/* one pidfd per instance plus the clients */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int mgr_spawner_restart(struct mgr *m)
{
	int r;

	if (m->sp.fd >= 0) {
		mgr_watch_del(m, m->sp.fd);
		mgr_watch_del(m, m->sp.pidfd);
		spawn_stop(&m->sp);
	}
	/* Forking here is safe only because vtpmd never starts a thread. */
	r = spawn_start(&m->sp);
	if (r < 0)
		return r;
	m->sp_w.kind = MGR_W_SPAWNER;
	m->sp_pid_w.kind = MGR_W_SPAWNER_PID;
	r = mgr_watch_add(m, m->sp.fd, EPOLLIN, &m->sp_w);
	if (r == 0)
		r = mgr_watch_add(m, m->sp.pidfd, EPOLLIN, &m->sp_pid_w);
	return r;
}

static void mgr_signal(struct mgr *m)
{
	struct signalfd_siginfo si;

	while (read(m->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_printf("SIGHUP ignored\n");
			continue;
		}
		log_printf("signal %u: exiting; the instances keep running\n", si.ssi_signo);
		m->quit = true;
	}
}

static void mgr_dispatch(struct mgr *m, struct epoll_event *ev)
{
	struct mgr_watch *w = ev->data.ptr;

	switch (w->kind) {
	case MGR_W_LISTEN:
		mgmt_accept(m);
		break;
	case MGR_W_CLIENT:
		mgmt_client_event(m, w->obj, ev->events);
		break;
	case MGR_W_SPAWNER:
		sup_spawner_event(m);
		break;
	case MGR_W_SPAWNER_PID:
		/* replies it sent before dying are still in the socket */
		sup_spawner_event(m);
		log_printf("the spawner died; starting a new one\n");
		if (mgr_spawner_restart(m) < 0)
			log_printf("cannot restart the spawner: %s\n", strerror(errno));
		sup_spawner_lost(m);
		pool_spawner_lost(m);
		break;
	case MGR_W_CHILD:
		sup_child_event(m, w->obj);
		break;
	case MGR_W_CTRL:
		sup_ctrl_event(m, w->obj, ev->events);
		break;
	case MGR_W_SIGNAL:
		mgr_signal(m);
		break;
	case MGR_W_READY:
		sup_ready_event(m, w->obj);
		break;
	case MGR_W_POOL_READY:
		pool_ready_event(m, w->obj);
		break;
	case MGR_W_POOL_PID:
		pool_child_event(m, w->obj);
		break;
	}
}

static void mgr_loop(struct mgr *m)
{
	struct epoll_event evs[MGR_MAX_EVENTS];

	while (!m->quit) {
		uint64_t now = mgr_now_ms(), d1 = sup_next_deadline(m), d2 = mgmt_next_deadline(m);
		uint64_t d3 = pool_next_deadline(m);
		uint64_t d = d1 && (!d2 || d1 < d2) ? d1 : d2;
		int timeout = -1, n;

		if (d3 && (!d || d3 < d))
			d = d3;
		if (d)
			timeout = d <= now ? 0 : (int)(d - now > 60000 ? 60000 : d - now);
		n = epoll_wait(m->epfd, evs, MGR_MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			log_printf("epoll_wait: %s\n", strerror(errno));
			break;
		}
		/* sockets and pidfds first, so a timer never fires for a state
		 * that an event in the same batch already changed */
		for (int i = 0; i < n; i++)
			mgr_dispatch(m, &evs[i]);
		/* the creates of this batch: spawned already, made durable here */
		sup_sync(m);
		now = mgr_now_ms();
		sup_timers(m, now);
		mgmt_timers(m, now);
		/* objects dropped in this batch may still have had events in it */
		mgmt_reap(m);
		sup_reap(m);
		pool_reap(m);
		/* after the creates of this batch claimed what they could */
		pool_fill(m);
	}
}

int main(int argc, char **argv)
{
	struct mgr m;
	struct mgr_opts o = { 0 };
	struct cfg_log lc = { .fd = -1, .level = 1 };
	char *logfile = NULL;
	sigset_t mask;
	int ready_fd = -1, lock_fd = -1, r, rc = 1;

	memset(&m, 0, sizeof(m));
	m.epfd = m.listen_fd = m.sig_fd = -1;
	m.sp.fd = m.sp.pidfd = -1;
	if (mgr_parse_args(argc, argv, &o) < 0)
		return 2;
	if (o.log && mgr_parse_log(o.log, &lc, &logfile) < 0) {
		fprintf(stderr, "vtpmd: bad --log '%s' (expected file=PATH[,level=N])\n", o.log);
		return 2;
	}
	m.sock_path = mgr_absolute(o.sock);
	if (!m.sock_path)
		return 1;
	/* the instances' --tpmstate option is built from this path */
	if (strchr(o.root, ',')) {
		fprintf(stderr, "vtpmd: the state root must not contain ','\n");
		return 2;
	}
	if (o.daemon && mgr_daemonize(&ready_fd) < 0) {
		fprintf(stderr, "vtpmd: cannot daemonize: %s\n", strerror(errno));
		return 1;
	}
	r = mgr_mkdir_p(o.root, 0711);
	if (r < 0) {
		fprintf(stderr, "vtpmd: cannot create %s: %s\n", o.root, strerror(-r));
		goto out;
	}
	m.state_root = realpath(o.root, NULL);
	if (!m.state_root) {
		fprintf(stderr, "vtpmd: %s: %s\n", o.root, strerror(errno));
		goto out;
	}
	lock_fd = mgr_lock_root(m.state_root);
	if (lock_fd < 0) {
		fprintf(stderr, "vtpmd: cannot lock %s/.lock: %s\n", m.state_root,
			lock_fd == -EBUSY ? "another vtpmd manages this state root"
					  : strerror(-lock_fd));
		goto out;
	}

	/* Children are re-parented to us (see spawner.c); must precede the
	 * spawner so that it applies to all its descendants. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		fprintf(stderr, "vtpmd: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
		goto out;
	}
	m.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m.epfd < 0) {
		fprintf(stderr, "vtpmd: epoll: %s\n", strerror(errno));
		goto out;
	}
	/* The spawner is forked now: single-threaded, no sockets, no log file
	 * open yet, so it and every child start clean. */
	r = mgr_spawner_restart(&m);
	if (r < 0) {
		fprintf(stderr, "vtpmd: cannot start the spawner: %s\n", strerror(-r));
		goto out;
	}
	/* given=true even without --log: our prefix, not swtpm's */
	lc.given = true;
	lc.prefix = "vtpmd: ";
	r = log_setup(&lc);
	if (r < 0) {
		fprintf(stderr, "vtpmd: cannot open the log %s: %s\n", logfile, strerror(-r));
		goto out;
	}
	mgr_raise_nofile();

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	m.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	m.sig_w.kind = MGR_W_SIGNAL;
	if (m.sig_fd < 0 || mgr_watch_add(&m, m.sig_fd, EPOLLIN, &m.sig_w) < 0) {
		log_printf("signalfd: %s\n", strerror(errno));
		goto out;
	}

	{
		char *dir = strdup(m.sock_path), *slash = dir ? strrchr(dir, '/') : NULL;

		if (slash && slash != dir) {
			*slash = '\0';
			mgr_mkdir_p(dir, 0755);
		}
		free(dir);
	}
	r = mgmt_listen(&m);
	if (r < 0) {
		log_printf("cannot listen on %s: %s\n", m.sock_path,
			   r == -EADDRINUSE ? "another vtpmd is listening there"
			   : r == -EEXIST	? "exists and is not a socket"
						: strerror(-r));
		goto out;
	}
	mgr_root_topdir(m.state_root);
	r = sup_load(&m);
	if (r < 0)
		log_printf("registry scan of %s: %s\n", m.state_root, strerror(-r));
	if (o.pool) {
		r = pool_init(&m, o.pool);
		if (r < 0)
			log_printf("no pool: cannot prepare %s/%s: %s\n", m.state_root, POOL_DIR,
				   strerror(-r));
		pool_fill(&m);
	}

	log_printf("vtpmd %s ready on %s (state root %s, %zu instance(s))\n", VTPM_VERSION,
		   m.sock_path, m.state_root, m.ninst);
	{
		char msg[96];

		snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\nSTATUS=%zu instance(s)",
			 (int)getpid(), m.ninst);
		mgr_sd_notify(msg);
	}
	mgr_daemon_ready(&ready_fd, 0);

	mgr_loop(&m);

	mgr_sd_notify("STOPPING=1");
	rc = 0;
out:
	if (ready_fd >= 0)
		mgr_daemon_ready(&ready_fd, (char)1);
	mgmt_close_all(&m);
	/* remove the socket only while it is still ours */
	if (rc == 0 && m.sock_path)
		unlink(m.sock_path);
	sup_sync(&m);
	sup_free_all(&m);
	pool_stop(&m);
	if (m.sp.fd >= 0)
		spawn_stop(&m.sp);
	if (m.sig_fd >= 0)
		close(m.sig_fd);
	if (m.epfd >= 0)
		close(m.epfd);
	if (lock_fd >= 0)
		close(lock_fd);
	log_close();
	free(logfile);
	free(m.state_root);
	free(m.sock_path);
	return rc;
}
