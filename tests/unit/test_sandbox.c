/* Unit tests for the seccomp allow-list (src/io/sandbox.c): the program
 * precompiled for vtpmd's spawner and the libseccomp path behave the same.
 * Each case installs the filter in a child forked here, since a filter cannot
 * be removed again. */
#include <criterion/criterion.h>

#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/sandbox.h"

/* Child exit codes for what went wrong before the disallowed call. */
#define CHILD_OK 0
#define CHILD_PRECOMPILE 10
#define CHILD_NOT_KEPT 11
#define CHILD_KEPT 12
#define CHILD_INSTALL 13
#define CHILD_GETPID 14
#define CHILD_NNP 15
#define CHILD_SOCKET 16
#define CHILD_WRITE 17

struct outcome {
	int status; /* from waitpid */
	char marks[8]; /* what the child wrote before the disallowed call */
};

/* In a child: precompile or not, install action's filter, check that allowed
 * calls work (getpid; under SECCOMP_LOG also NO_NEW_PRIVS, prctl not being
 * allowed), write "A" to the pipe, then make a disallowed call (socket). */
static void child(enum cfg_seccomp action, bool precompile, int wfd)
{
	pid_t pid;
	int fd;

	if (precompile) {
		if (sandbox_seccomp_precompile() < 0)
			_exit(CHILD_PRECOMPILE);
		if (!sandbox_seccomp_program(action))
			_exit(CHILD_NOT_KEPT);
	} else if (sandbox_seccomp_program(action)) {
		_exit(CHILD_KEPT);
	}
	pid = (pid_t)syscall(SYS_getpid);
	if (sandbox_seccomp(action) < 0)
		_exit(CHILD_INSTALL);
	if (getpid() != pid)
		_exit(CHILD_GETPID);
	if (action == SECCOMP_LOG && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		_exit(CHILD_NNP);
	if (write(wfd, "A", 1) != 1)
		_exit(CHILD_WRITE);
	fd = socket(AF_INET, SOCK_STREAM, 0); /* not in the allow-list */
	if (fd < 0)
		_exit(CHILD_SOCKET);
	_exit(CHILD_OK);
}

static struct outcome run_child(enum cfg_seccomp action, bool precompile)
{
	struct outcome o;
	int p[2];
	ssize_t n;
	pid_t pid;

	memset(&o, 0, sizeof(o));
	cr_assert_eq(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		child(action, precompile, p[1]);
	}
	close(p[1]);
	n = read(p[0], o.marks, sizeof(o.marks) - 1);
	cr_assert_geq(n, 0);
	close(p[0]);
	cr_assert_eq(waitpid(pid, &o.status, 0), pid);
	return o;
}

static void expect_killed(struct outcome o)
{
	cr_expect_str_eq(o.marks, "A", "the allowed calls failed");
	cr_assert(WIFSIGNALED(o.status), "child exited with %d instead of dying",
		  WIFEXITED(o.status) ? WEXITSTATUS(o.status) : -1);
	cr_assert_eq(WTERMSIG(o.status), SIGSYS);
}

static void expect_logged(struct outcome o)
{
	cr_expect_str_eq(o.marks, "A", "the allowed calls failed");
	cr_assert(WIFEXITED(o.status), "child died of signal %d",
		  WIFSIGNALED(o.status) ? WTERMSIG(o.status) : -1);
	cr_assert_eq(WEXITSTATUS(o.status), CHILD_OK);
}

Test(sandbox, precompiled_kill)
{
	expect_killed(run_child(SECCOMP_KILL, true));
}

Test(sandbox, precompiled_log)
{
	expect_logged(run_child(SECCOMP_LOG, true));
}

Test(sandbox, libseccomp_kill)
{
	expect_killed(run_child(SECCOMP_KILL, false));
}

Test(sandbox, libseccomp_log)
{
	expect_logged(run_child(SECCOMP_LOG, false));
}

/* SECCOMP_NONE installs nothing, precompiled or not. */
Test(sandbox, none_installs_nothing)
{
	cr_assert_eq(sandbox_seccomp_precompile(), 0);
	cr_assert_null(sandbox_seccomp_program(SECCOMP_NONE));
	expect_logged(run_child(SECCOMP_NONE, false));
}

/* The kept programs are exactly what libseccomp exports for a fresh filter. */
Test(sandbox, precompiled_matches_fresh_export)
{
	enum cfg_seccomp actions[] = { SECCOMP_KILL, SECCOMP_LOG };
	const struct sock_fprog *prog;
	static struct sock_filter fresh[BPF_MAXINSNS];
	struct stat st;
	size_t i;
	int fd;

	cr_assert_null(sandbox_seccomp_program(SECCOMP_KILL));
	cr_assert_eq(sandbox_seccomp_precompile(), 0);
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		prog = sandbox_seccomp_program(actions[i]);
		cr_assert_not_null(prog);
		fd = memfd_create("test-seccomp", MFD_CLOEXEC);
		cr_assert_geq(fd, 0);
		cr_assert_eq(sandbox_seccomp_export(actions[i], fd), 0);
		cr_assert_eq(fstat(fd, &st), 0);
		cr_assert_gt(st.st_size, 0);
		cr_assert_eq((size_t)st.st_size, prog->len * sizeof(struct sock_filter));
		cr_assert_eq(pread(fd, fresh, (size_t)st.st_size, 0), st.st_size);
		cr_assert_eq(memcmp(fresh, prog->filter, (size_t)st.st_size), 0);
		close(fd);
	}
	/* KILL and LOG differ only in the default action */
	cr_assert_eq(sandbox_seccomp_program(SECCOMP_KILL)->len,
		     sandbox_seccomp_program(SECCOMP_LOG)->len);
	cr_assert_neq(memcmp(sandbox_seccomp_program(SECCOMP_KILL)->filter,
			     sandbox_seccomp_program(SECCOMP_LOG)->filter,
			     prog->len * sizeof(struct sock_filter)),
		      0);
}
