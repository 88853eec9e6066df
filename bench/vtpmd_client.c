/* A private vtpmd for one fleet round, and its management socket. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"
#include "proc.h"
#include "vtpmd_client.h"

#define VTPMD_LINE_MAX (1u << 20)	/* replies are < 64 KiB; events too */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* 1 if vtpmd has exited (and is reaped now), 0 if it runs. */
static int vtpmd_reaped(struct vtpmd *v, int *status)
{
	int st;

	if (v->pid <= 0)
		return 1;
	if (waitpid(v->pid, &st, WNOHANG) == v->pid) {
		if (status)
			*status = st;
		v->pid = 0;
		return 1;
	}
	return 0;
}

int vtpmd_start(struct vtpmd *v, const char *exe, const char *base_dir, const char *sock_base,
		const char *const *env, int n_env, int timeout_ms)
{
	char logarg[320];
	char *argv[8];
	struct sockaddr_un sa;
	pid_t parent = getpid(), pid;
	uint64_t deadline;
	int fd, rc;

	memset(v, 0, sizeof(*v));
	v->exe = exe;
	v->fd = -1;
	v->pidfd = -1;
	rc = mkdtemp_under(v->dir, sizeof(v->dir), base_dir);
	if (rc)
		return rc;
	/* With --sockdir the management and instance sockets get a dir of
	 * their own there (the caller removes what exists after a failure). */
	if (sock_base) {
		rc = mkdtemp_under(v->sdir, sizeof(v->sdir), sock_base);
		if (rc)
			return rc;
	}
	snprintf(v->root, sizeof(v->root), "%s/root", v->dir);
	snprintf(v->sockdir, sizeof(v->sockdir), "%s/s", v->sdir[0] ? v->sdir : v->dir);
	snprintf(v->sock, sizeof(v->sock), "%s/mgmt.sock", v->sdir[0] ? v->sdir : v->dir);
	snprintf(v->log, sizeof(v->log), "%s/vtpmd.log", v->dir);
	snprintf(logarg, sizeof(logarg), "file=%s", v->log);
	if (mkdir(v->sockdir, 0700) < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(v->sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, v->sock);
	argv[0] = (char *)exe;
	argv[1] = "--socket";
	argv[2] = v->sock;
	argv[3] = "--state-root";
	argv[4] = v->root;
	argv[5] = "--log";
	argv[6] = logarg;
	argv[7] = NULL;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* vtpmd leaves its instances running when it exits (by design);
		 * the bench destroys them itself, see fleet.c. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		setpgid(0, 0);
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		fd = open(v->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		for (int i = 0; i < n_env; i++)
			putenv((char *)env[i]);
		execv(exe, argv);
		dprintf(STDERR_FILENO, "vtpm-bench: exec %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	v->pid = pid;
	v->pidfd = (int)pidfd_open(pid, 0);
	deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		rc = -errno;
		close(fd);
		if (rc != -ENOENT && rc != -ECONNREFUSED && rc != -EAGAIN)
			return rc;
		if (vtpmd_reaped(v, NULL))
			return -ECHILD;
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		sleep_ms(1);
	}
	v->fd = fd;
	return 0;
}

int vtpmd_queue(struct vtpmd *v, struct json_object *obj)
{
	const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(s);

	if (v->out_off == v->out_len)
		v->out_off = v->out_len = 0;
	if (v->out_len + len + 1 > v->out_cap) {
		size_t cap = v->out_cap ? v->out_cap : 65536;
		char *p;

		while (cap < v->out_len + len + 1)
			cap *= 2;
		p = realloc(v->out, cap);
		if (!p)
			return -ENOMEM;
		v->out = p;
		v->out_cap = cap;
	}
	memcpy(v->out + v->out_len, s, len);
	v->out[v->out_len + len] = '\n';
	v->out_len += len + 1;
	return 0;
}

int vtpmd_flush(struct vtpmd *v)
{
	while (v->out_off < v->out_len) {
		ssize_t n = send(v->fd, v->out + v->out_off, v->out_len - v->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 1;
			return -errno;
		}
		v->out_off += (size_t)n;
	}
	v->out_off = v->out_len = 0;
	return 0;
}

int vtpmd_read(struct vtpmd *v, int (*cb)(void *ctx, struct json_object *msg), void *ctx)
{
	for (;;) {
		char *nl;
		ssize_t n;

		if (v->in_cap - v->in_len < 4096) {
			size_t cap = v->in_cap ? v->in_cap * 2 : 65536;
			char *p;

			if (cap > VTPMD_LINE_MAX * 2)
				return -EMSGSIZE;
			p = realloc(v->in, cap);
			if (!p)
				return -ENOMEM;
			v->in = p;
			v->in_cap = cap;
		}
		n = recv(v->fd, v->in + v->in_len, v->in_cap - v->in_len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		if (n == 0) {
			v->eof = true;
			return -EPIPE;
		}
		v->in_len += (size_t)n;
		while ((nl = memchr(v->in, '\n', v->in_len)) != NULL) {
			size_t ll = (size_t)(nl - v->in);
			struct json_object *o;
			int rc = 0;

			*nl = '\0';
			if (ll) {
				o = json_tokener_parse(v->in);
				if (!o) {
					fprintf(stderr, "vtpm-bench: vtpmd sent a line that is not JSON: "
						"%.200s\n", v->in);
					return -EPROTO;
				}
				rc = cb(ctx, o);
				json_object_put(o);
			}
			memmove(v->in, nl + 1, v->in_len - ll - 1);
			v->in_len -= ll + 1;
			if (rc < 0)
				return rc;
		}
		if (v->in_len > VTPMD_LINE_MAX)
			return -EMSGSIZE;
	}
}

pid_t vtpmd_spawner_pid(const struct vtpmd *v)
{
	char path[96], buf[8192], comm[64];
	pid_t found = 0;
	ssize_t n;
	int fd;

	if (v->pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)v->pid, (int)v->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* the list holds the instances too (vtpmd is their subreaper) */
	for (char *tok = strtok(buf, " \n"); tok && !found; tok = strtok(NULL, " \n")) {
		snprintf(path, sizeof(path), "/proc/%s/comm", tok);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n > 0 && strncmp(comm, "vtpmd-spawner", 13) == 0)
			found = (pid_t)atoi(tok);
	}
	return found;
}

void vtpmd_log_tail(const struct vtpmd *v)
{
	if (v->dir[0])
		log_tail("vtpmd", v->log);
}

static int vtpmd_wait(struct vtpmd *v, int ms, int *st)
{
	uint64_t deadline = now_ns() + (uint64_t)ms * 1000000u;

	while (!vtpmd_reaped(v, st)) {
		if (now_ns() >= deadline)
			return 0;
		sleep_ms(1);
	}
	return 1;
}

int vtpmd_stop(struct vtpmd *v, bool keep_dir)
{
	int st = 0, bad = 0;

	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
	if (v->pid > 0) {
		/* SIGTERM is vtpmd's normal way out (exit status 0) */
		kill(v->pid, SIGTERM);
		if (!vtpmd_wait(v, 3000, &st)) {
			fprintf(stderr, "vtpm-bench: vtpmd (pid %d) ignored SIGTERM, SIGKILL\n",
				(int)v->pid);
			kill(v->pid, SIGKILL);
			vtpmd_wait(v, 2000, &st);
			bad = 1;
		} else if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			fprintf(stderr, "vtpm-bench: vtpmd exited with %s %d\n",
				WIFEXITED(st) ? "status" : "signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			vtpmd_log_tail(v);
			bad = 1;
		}
	}
	if (v->pidfd >= 0)
		close(v->pidfd);
	v->pidfd = -1;
	if (!keep_dir && v->pid == 0) {
		if (v->dir[0])
			rmtree(v->dir);
		if (v->sdir[0])
			rmtree(v->sdir);
		v->dir[0] = v->sdir[0] = '\0';
	}
	free(v->out);
	free(v->in);
	v->out = v->in = NULL;
	v->out_len = v->out_off = v->out_cap = v->in_len = v->in_cap = 0;
	return bad;
}
