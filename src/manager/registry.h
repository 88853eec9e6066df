/* The on-disk registry under the state root: STATE_ROOT/ID/{config.json, pid,
 * log, state/}, plus the identity checks that make re-adoption safe. */
#ifndef VTPM_MGR_REGISTRY_H
#define VTPM_MGR_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "manager/id.h"
#include "manager/protocol.h"

/* Largest config.json / pid file we read; both are far smaller. */
#define REG_MAX_CONFIG (128 * 1024)
#define REG_MAX_PIDFILE 4096

/* The persisted intent: what a new vtpmd should make of the entry. */
enum reg_state {
	REG_STOPPED = 0, /* leave it stopped */
	REG_RUNNING,	 /* adopt the process, or start it again by policy */
	REG_FAILED,	 /* it gave up (crash loop, start failure) */
};

struct reg_config {
	char id[MGR_ID_MAX + 1];
	char **argv; /* argc strings + NULL, owned */
	size_t argc;
	enum proto_policy policy;
	int64_t created; /* seconds since the epoch */
	enum reg_state state;
};

/* Identity of a running child, as written to STATE_ROOT/ID/pid. */
struct reg_pid {
	pid_t pid;
	unsigned long long starttime; /* /proc/PID/stat field 22, clock ticks */
	char boot_id[40];	      /* /proc/sys/kernel/random/boot_id */
	char exe[512];		      /* readlink /proc/PID/exe */
	char comm[17];		      /* /proc/PID/comm */
};

const char *reg_state_name(enum reg_state s);

/* STATE_ROOT/ID[/leaf] into buf. 0 or -ENAMETOOLONG. */
int reg_path(char *buf, size_t size, const char *root, const char *id, const char *leaf);

/* Create STATE_ROOT/ID (0711) with state/ (0700, owned by uid:gid
 * unless uid is (uid_t)-1). Existing directories are reused (that is how an
 * entry destroyed without purge keeps its TPM state); symlinks are refused. */
int reg_prepare(const char *root, const char *id, uid_t uid, gid_t gid);

/* config.json, written atomically and durably (temp file, fsync, rename,
 * directory fsync). */
int reg_config_write(const char *root, const struct reg_config *c);
/* The same, atomically but not durably yet: a new entry, made durable with
 * others in one go by reg_sync_entries(). */
int reg_config_write_nosync(const char *root, const struct reg_config *c);
/* Make new entries durable: their config.json, the entries of their
 * directories (state/, config.json) and their own entries in the state
 * root. All these fsyncs run in parallel (io_uring), so a batch of creates
 * waits about as long as one. 0 or the first -errno. */
int reg_sync_entries(const char *root, const char *const *ids, size_t n);
/* Read and validate STATE_ROOT/id/config.json. On error *why explains. */
int reg_config_read(const char *root, const char *id, struct reg_config *c, char *why,
		    size_t whylen);
/* Parse config.json text; pure. */
int reg_config_parse(const char *text, size_t len, const char *id, struct reg_config *c,
		     char *why, size_t whylen);
void reg_config_free(struct reg_config *c);

/* The pid file: "key=value" lines. Format/parse are pure. */
int reg_pid_format(const struct reg_pid *p, char *buf, size_t size);
int reg_pid_parse(const char *text, size_t len, struct reg_pid *p);
int reg_pid_write(const char *root, const char *id, const struct reg_pid *p);
int reg_pid_read(const char *root, const char *id, struct reg_pid *p);
int reg_pid_remove(const char *root, const char *id);

/* Field 22 of a /proc/PID/stat text (comm may hold spaces and parens). */
int reg_parse_stat_starttime(const char *text, size_t len, unsigned long long *out);
/* Read the identity of a live pid from /proc (and the boot id). */
int reg_proc_identity(pid_t pid, struct reg_pid *p);
/* True when `now` (read from /proc) is the process `saved` described. A
 * replaced binary shows as "PATH (deleted)" and still matches. */
bool reg_identity_match(const struct reg_pid *saved, const struct reg_pid *now);

/* Call fn for every valid id under root that has a config.json. */
int reg_scan(const char *root, int (*fn)(const char *id, void *arg), void *arg);

/* Remove config.json, pid and run/ (made by older vtpmd); with purge the
 * whole STATE_ROOT/ID tree (never following symlinks, never leaving the
 * state root). */
int reg_remove(const char *root, const char *id, bool purge);
/* Remove parent/name and everything below it (symlinks are removed, never
 * followed). 0 (also if it is not there) or the first -errno. */
int reg_rmtree(int parent, const char *name);

/* Last non-empty line of STATE_ROOT/ID/log (at most out size - 1 bytes). */
int reg_log_tail(const char *root, const char *id, char *out, size_t size);

#endif
