/* Fuzz target: the pure parsers of vtpmd's on-disk registry
 * (src/manager/registry.h): STATE_ROOT/ID/config.json, the pid file, and
 * field 22 of /proc/PID/stat, whose comm field (field 2) any process chooses
 * for itself (prctl PR_SET_NAME: up to 15 arbitrary bytes, parentheses,
 * spaces and newlines included).
 * Byte 0 selects the parser; mode 3 builds a /proc/PID/stat line the way the
 * kernel prints it around a fuzzed comm and start time, and the parser must
 * find exactly that start time. Checks: accepted configs are complete and
 * bounded; pid files parse -> format -> parse to the same identity. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>

#include "fuzz_common.h"
#include "manager/registry.h"

static void do_config(const uint8_t *data, size_t size)
{
	struct reg_config c;
	char why[256] = "";
	char *text = (char *)fuzz_dup(data, size);
	int r = reg_config_parse(text, size, "vm1", &c, why, sizeof(why));

	if (r == 0) {
		size_t total = 0;

		FUZZ_CHECK(strcmp(c.id, "vm1") == 0);
		FUZZ_CHECK(c.argv && c.argc >= 1 && c.argc <= PROTO_MAX_ARGC);
		FUZZ_CHECK(c.argv[c.argc] == NULL);
		for (size_t i = 0; i < c.argc; i++) {
			FUZZ_CHECK(c.argv[i] && strlen(c.argv[i]) <= PROTO_MAX_ARG_LEN);
			total += strlen(c.argv[i]) + 1;
		}
		FUZZ_CHECK(total <= PROTO_MAX_ARGV_BYTES);
		FUZZ_CHECK(proto_policy_name(c.policy) != NULL);
		FUZZ_CHECK(reg_state_name(c.state) != NULL);
	} else {
		FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
		FUZZ_CHECK(r != -EINVAL || why[0] != '\0');
	}
	reg_config_free(&c);
	free(text);
}

static void do_pid(const uint8_t *data, size_t size)
{
	struct reg_pid p, q;
	char *text = (char *)fuzz_dup(data, size), buf[REG_MAX_PIDFILE + 1];
	int r = reg_pid_parse(text, size, &p), n;

	if (r == 0) {
		FUZZ_CHECK(p.pid >= 1);
		FUZZ_CHECK(memchr(p.boot_id, '\0', sizeof(p.boot_id)) != NULL);
		FUZZ_CHECK(memchr(p.exe, '\0', sizeof(p.exe)) != NULL && p.exe[0] == '/');
		FUZZ_CHECK(memchr(p.comm, '\0', sizeof(p.comm)) != NULL);
		n = reg_pid_format(&p, buf, sizeof(buf));
		FUZZ_CHECK(n > 0 && (size_t)n < sizeof(buf));
		FUZZ_CHECK(reg_pid_parse(buf, (size_t)n, &q) == 0);
		FUZZ_CHECK(q.pid == p.pid && q.starttime == p.starttime);
		FUZZ_CHECK(!strcmp(q.boot_id, p.boot_id) && !strcmp(q.exe, p.exe) &&
			   !strcmp(q.comm, p.comm));
		/* an unknown (empty) boot id never matches: no adoption */
		FUZZ_CHECK(reg_identity_match(&p, &q) == (p.boot_id[0] != '\0'));
	}
	free(text);
}

static void do_stat(const uint8_t *data, size_t size)
{
	unsigned long long v = 0;
	char *text = (char *)fuzz_dup(data, size);

	(void)reg_parse_stat_starttime(text, size, &v);
	free(text);
}

/* A /proc/PID/stat line as fs/proc/array.c prints it. */
static void do_stat_comm(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned long long start = fuzz_u64(&in), v = 0;
	char comm[16], line[1024];
	size_t clen = 0;
	int n, r;

	while (in.left && clen < 15) {
		char ch = (char)fuzz_u8(&in);

		if (ch != '\0')
			comm[clen++] = ch;
	}
	comm[clen] = '\0';
	n = snprintf(line, sizeof(line),
		     "4242 (%s) S 1 4242 4242 0 -1 4194560 1234 0 0 0 12 3 0 0 20 0 1 0 %llu "
		     "12345678 1000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 "
		     "0 0 0 0 0 0 0 0 0\n",
		     comm, start);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(line));
	r = reg_parse_stat_starttime(line, (size_t)n, &v);
	if (r != 0 || v != start) {
		fprintf(stderr, "stat line with comm '%s': rc %d, starttime %llu, want %llu\n", comm,
			r, v, start);
		FUZZ_CHECK(0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		do_config(data + 1, size - 1);
		break;
	case 1:
		do_pid(data + 1, size - 1);
		break;
	case 2:
		do_stat(data + 1, size - 1);
		break;
	default:
		do_stat_comm(data + 1, size - 1);
		break;
	}
	return 0;
}
