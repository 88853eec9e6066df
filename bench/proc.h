/* Starting, reaching and stopping swtpm-compatible servers, and reading what
 * the kernel knows about them (CPU time, memory). */
#ifndef VTPM_BENCH_PROC_H
#define VTPM_BENCH_PROC_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_ENV 8

struct server {
	const char *name;
	const char *path;		/* binary */
	const char *env[BENCH_MAX_ENV];	/* extra VAR=VALUE for this impl */
	int n_env;
	bool tcp;
	int port;
	char dir[256];			/* mkdtemp state dir, "" when none */
	char sockdir[256];		/* mkdtemp dir under --sockdir, "" when the
					 * sockets live in dir */
	pid_t pid;			/* > 0 while started and not reaped */
	int data_fd;
	int exit_status;		/* waitpid status once reaped */
	uint64_t t_fork_ns;
};

/* Where the data and ctrl sockets are: under --sockdir or next to the state. */
static inline const char *server_sockdir(const struct server *s)
{
	return s->sockdir[0] ? s->sockdir : s->dir;
}

/* What to add to a start error: ENAMETOOLONG is nearly always a socket path
 * over sun_path's 108 bytes, which the user fixes with a shorter dir. */
static inline const char *start_hint(int rc)
{
	return rc == -ENAMETOOLONG ? " (a unix socket path must stay under 108 bytes: use a "
				     "shorter --sockdir or --statedir)" : "";
}

/* mkdtemp of BASE/vtpm-bench.XXXXXX into dir; dir is "" on failure. */
int mkdtemp_under(char *dir, size_t cap, const char *base);
/* Creates the state dir (under base_dir) and, unless sock_base is NULL, a
 * socket dir under sock_base, then forks/execs the server; does not wait. */
int server_start(struct server *s, const char *base_dir, const char *sock_base);
/* Connects the data channel, retrying until timeout_ms; fails fast when the
 * server exits. The socket gets SO_RCVTIMEO/SO_SNDTIMEO of io_timeout_ms. */
int server_connect(struct server *s, int timeout_ms, int io_timeout_ms);
/* start + connect, retrying the start when a TCP port was taken meanwhile. */
int server_launch(struct server *s, const char *base_dir, const char *sock_base, int timeout_ms);
/* CMD_SHUTDOWN on the control channel, then closes the data connection. */
int server_request_shutdown(struct server *s);
/* Waits for all servers to exit, escalating to SIGTERM and then SIGKILL
 * (only for the pids we started and have not reaped); removes state and
 * socket dirs.
 * Returns the number of servers that needed a signal or exited non-zero. */
int servers_reap(struct server *s, int n, int grace_ms);
/* Prints the tail of the server's log (stdout+stderr) to stderr. */
void server_log_tail(const struct server *s);
/* Prints the last 2 KiB of a log file to stderr, headed by title. */
void log_tail(const char *title, const char *path);

int server_xfer(void *ctx, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
		size_t *rlen);

/* Sum of the first /proc/PID/task/TID/schedstat field (ns on CPU) over all
 * threads; 0 if unreadable. */
uint64_t proc_cpu_ns(pid_t pid);
int proc_mem_kb(pid_t pid, long *rss_kb, long *pss_kb);
int pin_process(pid_t pid, int cpu);
int pin_self(int cpu);
int rmtree(const char *dir);

#endif
