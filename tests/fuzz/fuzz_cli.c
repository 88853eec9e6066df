/* Fuzz target: the swtpm command line (src/instance/cli.h). vtpmd validates a
 * management client's create argv with cli_parse in the daemon itself, and its
 * spawner parses it again in the child, so these are outside bytes too.
 * Input: byte 0 picks the interface (socket, chardev, cuse), the rest is the
 * arguments separated by NUL bytes. cli_parse opens and creates nothing (fds
 * given as options are only fstat()ed).
 * Checks: the result is "go" (0) or "exit now" with status 0 or 1 (cuse: an
 * exit status of its own); parsing the
 * same command line twice in one process (getopt state!) gives the same
 * result and configuration; everything is released by config_free. */
#include <errno.h>

#include "fuzz_common.h"
#include "instance/cli.h"
#include "instance/config.h"

#define MAX_ARGS 64

static FILE *devnull(void)
{
	static FILE *f;

	if (!f) {
		f = fopen("/dev/null", "w");
		if (!f)
			abort();
	}
	return f;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ifaces[] = { "socket", "chardev", "cuse" };
	struct vtpm_config c1, c2;
	char *argv[MAX_ARGS + 2], *argv2[MAX_ARGS + 2], *buf;
	int argc = 0, code1 = -7, code2 = -7, r1, r2;
	size_t i, start;

	if (size < 1)
		return 0;
	/* -p sets TPM_PORT; nothing of one run may carry over to the next */
	unsetenv("TPM_PORT");
	setenv("TPM_PATH", "/nonexistent/vtpm-fuzz-state", 1);
	/* argv[0] is the interface; arguments are NUL-separated */
	argv[argc++] = (char *)ifaces[data[0] % 3];
	buf = fuzz_strdup(data + 1, size - 1);
	for (i = 0, start = 0; i <= size - 1 && argc <= MAX_ARGS; i++) {
		if (i == size - 1 || buf[i] == '\0') {
			argv[argc++] = buf + start;
			start = i + 1;
		}
	}
	argv[argc] = NULL;
	memcpy(argv2, argv, sizeof(argv));

	r1 = cli_parse(argc, argv2, &c1, devnull(), devnull(), &code1);
	FUZZ_CHECK(r1 == 0 || r1 == 1);
	/* swtpm cuse has exit statuses of its own; the others exit 0 or 1 */
	if (r1 == 1)
		FUZZ_CHECK(data[0] % 3 == 2 ? code1 >= 0 && code1 <= 255 : code1 == 0 || code1 == 1);

	/* getopt permutes the pointer array (non-options to the end), so the
	 * second parse gets a fresh copy, as vtpmd's callers do */
	memcpy(argv2, argv, sizeof(argv));
	r2 = cli_parse(argc, argv2, &c2, devnull(), devnull(), &code2);
	FUZZ_CHECK(r2 == r1);
	if (r1 == 1) {
		FUZZ_CHECK(code2 == code1);
	} else {
		FUZZ_CHECK(c1.iface == c2.iface && c1.tpm2 == c2.tpm2);
		FUZZ_CHECK(same_str(c1.state_uri, c2.state_uri));
		FUZZ_CHECK(c1.state_mode == c2.state_mode && c1.data_fd == c2.data_fd);
		FUZZ_CHECK(same_str(c1.chardev_path, c2.chardev_path));
		FUZZ_CHECK(same_str(c1.cuse_name, c2.cuse_name));
		FUZZ_CHECK(same_str(c1.pid_file, c2.pid_file) && same_str(c1.runas, c2.runas));
		FUZZ_CHECK(c1.startup == c2.startup && c1.terminate == c2.terminate);
		FUZZ_CHECK(c1.state_mode <= 0777);
	}
	config_free(&c1);
	config_free(&c2);
	config_free(&c2); /* re-initialises: a second call is harmless */
	free(buf);
	return 0;
}
