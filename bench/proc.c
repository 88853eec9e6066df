/* Server processes: launch with a private state dir, reach, stop, observe. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "ops.h"
#include "proc.h"

#define CMD_SHUTDOWN 0x00000003u
#define CTRL_TIMEOUT_MS 2000

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int set_timeouts(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

static int unix_addr(struct sockaddr_un *sa, const char *dir, const char *leaf)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, leaf) >=
	    sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

/* An ephemeral loopback port that was free a moment ago. The server binds it
 * a little later, so a start can lose the race; server_launch() retries. */
static int pick_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd, port = -EADDRNOTAVAIL;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		port = -errno;
		goto out;
	}
	port = ntohs(sa.sin_port);
out:
	close(fd);
	return port;
}

int mkdtemp_under(char *dir, size_t cap, const char *base)
{
	int rc;

	/* dir stays "" on failure, so no cleanup path removes a name that
	 * was never created (or a truncated one). */
	if ((size_t)snprintf(dir, cap, "%s/vtpm-bench.XXXXXX", base) >= cap) {
		dir[0] = '\0';
		return -ENAMETOOLONG;
	}
	if (!mkdtemp(dir)) {
		rc = -errno;
		dir[0] = '\0';
		return rc;
	}
	return 0;
}

int server_start(struct server *s, const char *base_dir, const char *sock_base)
{
	char a_state[300], a_server[340], a_ctrl[300], logpath[300];
	char *argv[16];
	struct sockaddr_un sa;
	pid_t parent = getpid(), pid;
	int argc = 0, rc;

	s->pid = 0;
	s->data_fd = -1;
	s->exit_status = 0;
	s->sockdir[0] = '\0';
	rc = mkdtemp_under(s->dir, sizeof(s->dir), base_dir);
	if (rc)
		return rc;
	/* With --sockdir the sockets get a dir of their own there; whatever is
	 * created before a failure is removed by servers_reap(). */
	if (sock_base) {
		rc = mkdtemp_under(s->sockdir, sizeof(s->sockdir), sock_base);
		if (rc)
			return rc;
	}
	/* Fail here rather than have the server fail to bind after the fork. */
	if ((rc = unix_addr(&sa, server_sockdir(s), "ctrl")) ||
	    (!s->tcp && (rc = unix_addr(&sa, server_sockdir(s), "data"))))
		return rc;
	if (s->tcp) {
		s->port = pick_port();
		if (s->port < 0)
			return s->port;
		snprintf(a_server, sizeof(a_server), "type=tcp,port=%d", s->port);
	} else {
		snprintf(a_server, sizeof(a_server), "type=unixio,path=%s/data", server_sockdir(s));
	}
	snprintf(a_state, sizeof(a_state), "dir=%s", s->dir);
	snprintf(a_ctrl, sizeof(a_ctrl), "type=unixio,path=%s/ctrl", server_sockdir(s));
	snprintf(logpath, sizeof(logpath), "%s/server.log", s->dir);
	argv[argc++] = (char *)s->path;
	argv[argc++] = "socket";
	argv[argc++] = "--tpm2";
	argv[argc++] = "--tpmstate";
	argv[argc++] = a_state;
	argv[argc++] = "--server";
	argv[argc++] = a_server;
	argv[argc++] = "--ctrl";
	argv[argc++] = a_ctrl;
	argv[argc++] = "--flags";
	argv[argc++] = "not-need-init,startup-clear";
	argv[argc] = NULL;

	s->t_fork_ns = now_ns();
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd;

		/* A server must never outlive the bench, even if it is killed. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		/* Own process group: a terminal's ^C reaches only the bench, which
		 * then shuts the servers down properly. */
		setpgid(0, 0);
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		for (int i = 0; i < s->n_env; i++)
			putenv((char *)s->env[i]);
		execv(s->path, argv);
		dprintf(STDERR_FILENO, "vtpm-bench: exec %s: %s\n", s->path, strerror(errno));
		_exit(127);
	}
	s->pid = pid;
	return 0;
}

static int try_reap(struct server *s)
{
	int st;

	if (s->pid <= 0)
		return 1;
	if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
		s->exit_status = st;
		s->pid = 0;
		return 1;
	}
	return 0;
}

int server_connect(struct server *s, int timeout_ms, int io_timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = -1, rc, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (s->tcp) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)s->port);
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*in);
	} else {
		rc = unix_addr((struct sockaddr_un *)&ss, server_sockdir(s), "data");
		if (rc)
			return rc;
		sl = sizeof(struct sockaddr_un);
	}
	for (;;) {
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
			break;
		rc = -errno;
		close(fd);
		fd = -1;
		/* Not there yet (no socket file, not listening, backlog full). */
		if (rc != -ENOENT && rc != -ECONNREFUSED && rc != -EAGAIN)
			return rc;
		if (try_reap(s))
			return -ECHILD;
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		sleep_us(200);
	}
	rc = set_timeouts(fd, io_timeout_ms);
	if (!rc && s->tcp && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		rc = -errno;
	if (rc) {
		close(fd);
		return rc;
	}
	s->data_fd = fd;
	return 0;
}

int server_launch(struct server *s, const char *base_dir, const char *sock_base, int timeout_ms)
{
	int rc = -EINVAL;

	for (int attempt = 0; attempt < 3; attempt++) {
		rc = server_start(s, base_dir, sock_base);
		if (!rc)
			rc = server_connect(s, timeout_ms, 10000);
		/* Only a lost race for the TCP port is worth another try. */
		if (rc != -ECHILD || !s->tcp || attempt == 2)
			break;
		servers_reap(s, 1, 0);
	}
	return rc;
}

int server_xfer(void *ctx, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
		size_t *rlen)
{
	int fd = *(int *)ctx;
	size_t off = 0, got = 0, need = 10;
	ssize_t n;

	*rlen = 0;
	while (off < len) {
		n = write(fd, cmd + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		off += (size_t)n;
	}
	/* Usually one read: servers write a response with one write(). */
	while (got < need) {
		n = read(fd, rsp + got, cap - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		if (n == 0) {
			*rlen = got;
			return -ECONNRESET;
		}
		got += (size_t)n;
		*rlen = got;
		if (need == 10 && got >= 10) {
			need = tpm2_be32(rsp + 2);
			if (need < 10 || need > cap)
				return -EBADMSG;
		}
	}
	if (got != need)
		return -EBADMSG;
	return 0;
}

int server_request_shutdown(struct server *s)
{
	struct sockaddr_un sa;
	uint8_t req[4] = { 0, 0, 0, CMD_SHUTDOWN }, res[4];
	ssize_t n;
	int fd = -1, rc;

	if (s->pid <= 0) {
		rc = 0;
		goto out;
	}
	rc = unix_addr(&sa, server_sockdir(s), "ctrl");
	if (rc)
		goto out;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = set_timeouts(fd, CTRL_TIMEOUT_MS);
	if (rc)
		goto out;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, req, sizeof(req)) != (ssize_t)sizeof(req)) {
		rc = -errno;
		goto out;
	}
	n = read(fd, res, sizeof(res));
	if (n != (ssize_t)sizeof(res))
		rc = n < 0 ? -errno : -EPROTO;
	else if (tpm2_be32(res) != 0)
		rc = -EPROTO;
out:
	if (fd >= 0)
		close(fd);
	if (s->data_fd >= 0) {
		close(s->data_fd);
		s->data_fd = -1;
	}
	return rc;
}

static int reap_all(struct server *s, int n, int ms)
{
	uint64_t deadline = now_ns() + (uint64_t)ms * 1000000u;
	int left;

	for (;;) {
		left = 0;
		for (int i = 0; i < n; i++)
			left += !try_reap(&s[i]);
		if (!left || now_ns() >= deadline)
			return left;
		sleep_us(1000);
	}
}

int servers_reap(struct server *s, int n, int grace_ms)
{
	int problems = 0;

	if (reap_all(s, n, grace_ms)) {
		for (int i = 0; i < n; i++)
			if (s[i].pid > 0) {
				fprintf(stderr, "vtpm-bench: %s (pid %d) did not exit, SIGTERM\n",
					s[i].name, (int)s[i].pid);
				kill(s[i].pid, SIGTERM);
				problems++;
			}
		if (reap_all(s, n, 2000)) {
			for (int i = 0; i < n; i++)
				if (s[i].pid > 0) {
					fprintf(stderr, "vtpm-bench: %s (pid %d) ignored SIGTERM, SIGKILL\n",
						s[i].name, (int)s[i].pid);
					kill(s[i].pid, SIGKILL);
				}
			if (reap_all(s, n, 2000))
				fprintf(stderr, "vtpm-bench: some servers could not be reaped\n");
		}
	}
	for (int i = 0; i < n; i++) {
		int st = s[i].exit_status;

		if (s[i].pid == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0) &&
		    !(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM && problems)) {
			fprintf(stderr, "vtpm-bench: %s exited with %s %d\n", s[i].name,
				WIFEXITED(st) ? "status" : "signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			server_log_tail(&s[i]);
			problems++;
		}
		if (s[i].pid == 0) {
			if (s[i].dir[0])
				rmtree(s[i].dir);
			if (s[i].sockdir[0])
				rmtree(s[i].sockdir);
			s[i].dir[0] = s[i].sockdir[0] = '\0';
		}
	}
	return problems;
}

void log_tail(const char *title, const char *path)
{
	char buf[2048];
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(buf))
		lseek(fd, st.st_size - (off_t)sizeof(buf), SEEK_SET);
	n = read(fd, buf, sizeof(buf));
	if (n > 0) {
		fprintf(stderr, "---- %s log (%s) ----\n", title, path);
		fwrite(buf, 1, (size_t)n, stderr);
		fprintf(stderr, "\n---- end of log ----\n");
	}
	close(fd);
}

void server_log_tail(const struct server *s)
{
	char path[300];

	if (!s->dir[0])
		return;
	snprintf(path, sizeof(path), "%s/server.log", s->dir);
	log_tail(s->name, path);
}

/* Reads a small /proc file whole; returns bytes or negative errno. */
static ssize_t read_small(int dirfd, const char *path, char *buf, size_t cap)
{
	ssize_t n, got = 0;
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while ((size_t)got < cap - 1) {
		n = read(fd, buf + got, cap - 1 - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return got;
}

/* Threads count: a server may do its work on helper threads (io_uring
 * workers, thread pools), so one pid's schedstat is not enough. */
uint64_t proc_cpu_ns(pid_t pid)
{
	char path[64], buf[128], leaf[300];
	struct dirent *de;
	uint64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(leaf, sizeof(leaf), "%s/schedstat", de->d_name);
		if (read_small(dirfd(d), leaf, buf, sizeof(buf)) > 0)
			sum += strtoull(buf, NULL, 10);
	}
	closedir(d);
	return sum;
}

static long field_kb(const char *text, const char *key)
{
	const char *p = text;
	size_t kl = strlen(key);

	while (p && *p) {
		if (strncmp(p, key, kl) == 0)
			return strtol(p + kl, NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

int proc_mem_kb(pid_t pid, long *rss_kb, long *pss_kb)
{
	char path[64], buf[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	n = read_small(AT_FDCWD, path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	*rss_kb = field_kb(buf, "Rss:");
	*pss_kb = field_kb(buf, "Pss:");
	return (*rss_kb < 0 || *pss_kb < 0) ? -EPROTO : 0;
}

int pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

/* Children inherit the bench's affinity at fork; this also catches threads a
 * server might have created with another mask. */
int pin_process(pid_t pid, int cpu)
{
	char path[64];
	struct dirent *de;
	cpu_set_t set;
	int rc = 0;
	DIR *d;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (sched_setaffinity((pid_t)atoi(de->d_name), sizeof(set), &set) < 0 && errno != ESRCH)
			rc = -errno;
	}
	closedir(d);
	return rc;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		fprintf(stderr, "vtpm-bench: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

int rmtree(const char *dir)
{
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}
