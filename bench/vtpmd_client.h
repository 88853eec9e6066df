/* A vtpmd started by the bench, and a non-blocking client of its management
 * socket (newline-delimited JSON, see man/vtpmd.8). */
#ifndef VTPM_BENCH_VTPMD_CLIENT_H
#define VTPM_BENCH_VTPMD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

struct vtpmd {
	const char *exe;
	char dir[256];		/* mkdtemp: root/, vtpmd.log, and s/ + mgmt.sock unless sdir */
	char sdir[256];		/* mkdtemp under --sockdir: s/, mgmt.sock; "" if none */
	char root[300], sockdir[300], sock[300], log[300];
	pid_t pid;		/* vtpmd, our child; 0 once reaped */
	int pidfd;
	int fd;			/* management connection (non-blocking), -1 */
	char *out;		/* queued request bytes not written yet */
	size_t out_len, out_off, out_cap;
	char *in;		/* partial reply line */
	size_t in_len, in_cap;
	bool eof;
};

/* Creates the temp dir under base_dir (and, unless sock_base is NULL, one
 * for the sockets under sock_base), starts vtpmd there (env: extra
 * VAR=VALUE strings) and connects to its socket, waiting at most
 * timeout_ms. */
int vtpmd_start(struct vtpmd *v, const char *exe, const char *base_dir, const char *sock_base,
		const char *const *env, int n_env, int timeout_ms);
/* Appends one request line (obj serialised plainly + '\n'). */
int vtpmd_queue(struct vtpmd *v, struct json_object *obj);
/* Writes what the socket takes: 0 all written, 1 bytes still queued, <0 error. */
int vtpmd_flush(struct vtpmd *v);
static inline bool vtpmd_pending(const struct vtpmd *v)
{
	return v->out_off < v->out_len;
}
/* Reads what is there; cb gets every complete reply/event object (it must
 * not keep it). 0, or the first negative value of cb, or -errno / -EPIPE on
 * EOF. */
int vtpmd_read(struct vtpmd *v, int (*cb)(void *ctx, struct json_object *msg), void *ctx);
/* The vtpmd-spawner child of vtpmd (by /proc/PID/task/PID/children), or 0. */
pid_t vtpmd_spawner_pid(const struct vtpmd *v);
/* Closes the connection, SIGTERM (3 s), SIGKILL; reaps; removes the temp
 * dirs unless keep_dir. Returns 1 if vtpmd needed SIGKILL or exited badly. */
int vtpmd_stop(struct vtpmd *v, bool keep_dir);
/* Prints the tail of vtpmd's log. */
void vtpmd_log_tail(const struct vtpmd *v);

#endif
