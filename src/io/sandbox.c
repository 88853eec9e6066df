/* Process hardening: --runas and a seccomp allow-list. swtpm uses a deny-list;
 * an allow-list of the few calls a serving instance makes is much tighter. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "instance/log.h"
#include "io/sandbox.h"

int sandbox_runas(const char *user)
{
	struct passwd *pw;
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(user, &end, 10);
	if (*user && !*end && errno == 0) {
		if (n > (uid_t)-2) {
			log_printf("Error: uid %s is out of range\n", user);
			return -ERANGE;
		}
		/* numeric: same gid, supplementary groups untouched (as swtpm) */
		if (setgid((gid_t)n) < 0 || setuid((uid_t)n) < 0) {
			log_printf("Error: could not switch to uid %s: %s\n", user, strerror(errno));
			return -errno;
		}
		return 0;
	}
	pw = getpwnam(user);
	if (!pw) {
		log_printf("Error: User '%s' does not exist.\n", user);
		return -ENOENT;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		log_printf("Error: could not switch to user '%s': %s\n", user, strerror(errno));
		return -errno;
	}
	return 0;
}

/* What a serving instance calls: the loop (both backends), socket I/O, the
 * durable state writes, memory, time, and what libc/OpenSSL/libtpms use. */
static const char *const sandbox_allowed[] = {
	"read", "write", "readv", "writev", "pread64", "pwrite64", "lseek",
	"recvfrom", "recvmsg", "sendto", "sendmsg", "accept", "accept4", "shutdown",
	"close", "dup2", "dup3", "io_uring_enter", "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl",
	"poll", "ppoll",
	"openat", "open", "fstat", "newfstatat", "statx", "stat", "lstat", "fchmod", "fsync",
	"fdatasync", "rename", "renameat", "renameat2", "unlink", "unlinkat", "fcntl",
	"ftruncate", "fallocate", "getdents64",
	/* CUSE: PTM_INIT creates a missing state directory; libfuse may splice */
	"mkdir", "mkdirat", "splice", "pipe2",
	"mmap", "munmap", "mremap", "mprotect", "brk", "madvise",
	"clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep",
	"getrandom", "getpid", "gettid", "getuid", "geteuid", "getgid", "getegid",
	"rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "restart_syscall",
	"exit", "exit_group", "futex", "sched_yield", "uname", "sysinfo",
};

int sandbox_seccomp(enum cfg_seccomp action)
{
	scmp_filter_ctx ctx;
	uint32_t deflt;
	size_t i;
	int r, nr;

	if (action == SECCOMP_NONE)
		return 0;
	deflt = action == SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS;
	ctx = seccomp_init(deflt);
	if (!ctx)
		return -ENOMEM;
	for (i = 0; i < sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]); i++) {
		nr = seccomp_syscall_resolve_name(sandbox_allowed[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (r < 0)
			goto out;
	}
	r = seccomp_load(ctx);
out:
	if (r < 0)
		log_printf("Error: could not install the seccomp filter: %s\n", strerror(-r));
	seccomp_release(ctx);
	return r;
}
