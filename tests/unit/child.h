/* Helpers for unit tests that start real processes (Debian's swtpm as a peer):
 * a monotonic clock and a bounded wait that never leaves a child behind. */
#ifndef VTPM_TEST_CHILD_H
#define VTPM_TEST_CHILD_H

#include <errno.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* waitpid with a deadline; kills (SIGKILL) the child if it does not end. */
static inline int wait_child(pid_t pid, int timeout_ms, int *status)
{
	long end = now_ms() + timeout_ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0)
			return -errno;
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			return -ETIMEDOUT;
		}
		usleep(10000);
	}
}

#endif
