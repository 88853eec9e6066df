/* Process hardening: --runas and a seccomp allow-list. swtpm uses a deny-list;
 * an allow-list of the few calls a serving instance makes is much tighter. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "instance/log.h"
#include "io/fullio.h"
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

/* Programs compiled by sandbox_seccomp_precompile(), indexed by the two
 * actions that install a filter (SECCOMP_KILL, SECCOMP_LOG); len 0 = none. */
static struct sock_filter sandbox_insns[SECCOMP_NONE][BPF_MAXINSNS];
static struct sock_fprog sandbox_progs[SECCOMP_NONE];

static scmp_filter_ctx sandbox_init(enum cfg_seccomp action)
{
	scmp_filter_ctx ctx =
		seccomp_init(action == SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);

	/* A binary tree of syscall numbers instead of a list: the same policy,
	 * but the kernel, which runs the filter once per syscall number when it
	 * is installed (to cache what is always allowed), does a few compares
	 * per number instead of up to ~80. Installing it takes 50-80 µs instead
	 * of 155-160 µs here; libseccomp < 2.5 lacks the attribute and keeps
	 * the list. */
	if (ctx)
		(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	return ctx;
}

static int sandbox_add_rules(scmp_filter_ctx ctx)
{
	size_t i;
	int r, nr;

	for (i = 0; i < sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]); i++) {
		nr = seccomp_syscall_resolve_name(sandbox_allowed[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (r < 0)
			return r;
	}
	return 0;
}

int sandbox_seccomp_export(enum cfg_seccomp action, int fd)
{
	scmp_filter_ctx ctx;
	int r;

	if (action != SECCOMP_KILL && action != SECCOMP_LOG)
		return -EINVAL;
	ctx = sandbox_init(action);
	if (!ctx)
		return -ENOMEM;
	r = sandbox_add_rules(ctx);
	if (r == 0)
		r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	return r;
}

/* seccomp_export_bpf_mem only came with libseccomp 2.6 (Debian 12 has 2.5),
 * so the program goes through a memfd. */
static int sandbox_precompile_one(enum cfg_seccomp action)
{
	struct stat st;
	int fd, r;

	fd = memfd_create("vtpm-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = sandbox_seccomp_export(action, fd);
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	if (r == 0 && (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
		       st.st_size > (off_t)sizeof(sandbox_insns[action])))
		r = -E2BIG; /* the kernel would refuse it too (BPF_MAXINSNS) */
	if (r == 0)
		r = fio_pread_all(fd, sandbox_insns[action], (size_t)st.st_size, 0);
	close(fd);
	if (r < 0)
		return r;
	sandbox_progs[action].filter = sandbox_insns[action];
	sandbox_progs[action].len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
	return 0;
}

static int sandbox_precompile_here(void)
{
	int r;

	memset(sandbox_progs, 0, sizeof(sandbox_progs));
	r = sandbox_precompile_one(SECCOMP_KILL);
	if (r == 0)
		r = sandbox_precompile_one(SECCOMP_LOG);
	if (r < 0)
		memset(sandbox_progs, 0, sizeof(sandbox_progs)); /* all or nothing */
	return r;
}

/*
 * Building the filter costs seccomp_init, a rule per allowed call and
 * libseccomp's kernel probes; vtpmd's spawner pays that once here and every
 * instance it forks only installs the finished program (sandbox_seccomp).
 *
 * libseccomp runs in a short-lived child that sends the programs back: its
 * allocations, freed again, would leave holes in the spawner's heap, and the
 * instances' own allocations landing in those holes would make them copy
 * ~24 kB more of the spawner's heap each (measured per instance).
 */
int sandbox_seccomp_precompile(void)
{
	uint16_t len[SECCOMP_NONE];
	int p[2], st, r = -EIO;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		close(p[0]);
		r = sandbox_precompile_here();
		for (int a = 0; a < SECCOMP_NONE; a++)
			len[a] = r == 0 ? sandbox_progs[a].len : 0;
		if (fio_write_all(p[1], len, sizeof(len)) < 0)
			_exit(1);
		for (int a = 0; r == 0 && a < SECCOMP_NONE; a++)
			if (fio_write_all(p[1], sandbox_insns[a], len[a] * sizeof(struct sock_filter)) < 0)
				_exit(1);
		_exit(r == 0 ? 0 : 1);
	}
	close(p[1]);
	memset(sandbox_progs, 0, sizeof(sandbox_progs));
	if (fio_read_all(p[0], len, sizeof(len)) == 0 && len[SECCOMP_KILL] && len[SECCOMP_LOG] &&
	    len[SECCOMP_KILL] <= BPF_MAXINSNS && len[SECCOMP_LOG] <= BPF_MAXINSNS) {
		r = 0;
		for (int a = 0; r == 0 && a < SECCOMP_NONE; a++) {
			r = fio_read_all(p[0], sandbox_insns[a], len[a] * sizeof(struct sock_filter));
			sandbox_progs[a].filter = sandbox_insns[a];
			sandbox_progs[a].len = len[a];
		}
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		r = -EIO;
	if (r < 0)
		memset(sandbox_progs, 0, sizeof(sandbox_progs)); /* all or nothing */
	return r;
}

const struct sock_fprog *sandbox_seccomp_program(enum cfg_seccomp action)
{
	if ((action != SECCOMP_KILL && action != SECCOMP_LOG) || !sandbox_progs[action].len)
		return NULL;
	return &sandbox_progs[action];
}

/* What seccomp_load does with libseccomp's default attributes: NO_NEW_PRIVS
 * (SCMP_FLTATR_CTL_NNP), then seccomp() with no flags (no TSYNC, LOG or
 * SPEC_ALLOW), prctl if the kernel lacks seccomp(). Failures are -ECANCELED,
 * as libseccomp reports them without SCMP_FLTATR_API_SYSRAWRC. */
static int sandbox_install(const struct sock_fprog *prog)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -ECANCELED;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) == 0)
		return 0;
	if (errno == ENOSYS && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) == 0)
		return 0;
	return -ECANCELED;
}

int sandbox_seccomp(enum cfg_seccomp action)
{
	const struct sock_fprog *prog;
	scmp_filter_ctx ctx;
	int r;

	if (action == SECCOMP_NONE)
		return 0;
	prog = sandbox_seccomp_program(action);
	if (prog) {
		r = sandbox_install(prog);
	} else {
		ctx = sandbox_init(action);
		if (!ctx)
			return -ENOMEM;
		r = sandbox_add_rules(ctx);
		if (r == 0)
			r = seccomp_load(ctx);
		seccomp_release(ctx);
	}
	if (r < 0)
		log_printf("Error: could not install the seccomp filter: %s\n", strerror(-r));
	return r;
}
