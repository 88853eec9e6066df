/* Unit tests for vtpmd's on-disk registry (src/manager/registry.c): config.json
 * and pid files (round trips and every malformed case), /proc identity checks,
 * scanning, removal that never follows symlinks, and the log tail. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager/registry.h"

static char root[64];

static void setup(void)
{
	snprintf(root, sizeof(root), "/tmp/test_mgr_reg.XXXXXX");
	cr_assert_not_null(mkdtemp(root));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(mgr_registry, .init = setup, .fini = teardown);

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static char *pathf(const char *fmt, const char *a)
{
	static char buf[4][PATH_MAX];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), fmt, root, a);
	return buf[k];
}

/* ---- paths and directories ---- */

Test(mgr_registry, paths)
{
	char buf[64], tiny[8];

	cr_expect_eq(reg_path(buf, sizeof(buf), "/r", "vm1", "log"), 0);
	cr_expect_str_eq(buf, "/r/vm1/log");
	cr_expect_eq(reg_path(buf, sizeof(buf), "/r", "vm1", NULL), 0);
	cr_expect_str_eq(buf, "/r/vm1");
	cr_expect_eq(reg_path(tiny, sizeof(tiny), "/r", "vm1", "log"), -ENAMETOOLONG);
}

Test(mgr_registry, prepare_creates_dirs)
{
	struct stat st;

	cr_assert_eq(reg_prepare(root, "vm1", getuid(), getgid()), 0);
	cr_assert_eq(stat(pathf("%s/%s", "vm1"), &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0711);
	cr_assert_eq(stat(pathf("%s/%s/state", "vm1"), &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0700);
	/* readiness has its own socket now: no run/ for a pid file */
	cr_expect_not(exists(pathf("%s/%s/run", "vm1")));
	/* again: existing directories are reused */
	cr_expect_eq(reg_prepare(root, "vm1", (uid_t)-1, (gid_t)-1), 0);
}

Test(mgr_registry, prepare_refuses_symlinks)
{
	cr_assert_eq(symlink("/tmp", pathf("%s/%s", "evil")), 0);
	cr_expect_lt(reg_prepare(root, "evil", (uid_t)-1, (gid_t)-1), 0);
	cr_assert_eq(mkdir(pathf("%s/%s", "half"), 0700), 0);
	cr_assert_eq(symlink("/tmp", pathf("%s/%s/state", "half")), 0);
	cr_expect_eq(reg_prepare(root, "half", (uid_t)-1, (gid_t)-1), -ENOTDIR);
}

/* ---- config.json ---- */

Test(mgr_registry, config_roundtrip)
{
	char *argv[] = { "socket", "--tpm2", "--server", "type=unixio,path=/run/\"x\"/s", NULL };
	struct reg_config c = { .argv = argv, .argc = 4, .policy = PROTO_RESTART_NEVER,
				.created = 1700000000, .state = REG_FAILED };
	struct reg_config r;
	char why[256];
	struct stat st;

	snprintf(c.id, sizeof(c.id), "vm1");
	cr_assert_eq(reg_prepare(root, "vm1", (uid_t)-1, (gid_t)-1), 0);
	cr_assert_eq(reg_config_write(root, &c), 0);
	cr_assert_eq(stat(pathf("%s/%s/config.json", "vm1"), &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_expect_not(exists(pathf("%s/%s/.config.json.tmp", "vm1")), "no temp file left");
	cr_assert_eq(reg_config_read(root, "vm1", &r, why, sizeof(why)), 0, "%s", why);
	cr_expect_str_eq(r.id, "vm1");
	cr_expect_eq(r.argc, 4);
	for (int i = 0; i < 4; i++)
		cr_expect_str_eq(r.argv[i], argv[i]);
	cr_expect_null(r.argv[4]);
	cr_expect_eq(r.policy, PROTO_RESTART_NEVER);
	cr_expect_eq(r.created, 1700000000);
	cr_expect_eq(r.state, REG_FAILED);
	reg_config_free(&r);
	reg_config_free(&r); /* harmless twice */
}

/* New entries are written without a sync, then made durable in one batch. */
Test(mgr_registry, config_nosync_then_batch_sync)
{
	char *argv[] = { "socket", "--tpm2", NULL };
	const char *ids[20];
	char names[20][8], why[256];
	struct reg_config c = { .argv = argv, .argc = 2, .policy = PROTO_RESTART_ALWAYS,
				.state = REG_RUNNING };
	struct reg_config r;

	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "n%d", i);
		ids[i] = names[i];
		memcpy(c.id, names[i], sizeof(names[i]));
		cr_assert_eq(reg_prepare(root, names[i], (uid_t)-1, (gid_t)-1), 0);
		cr_assert_eq(reg_config_write_nosync(root, &c), 0);
		cr_expect_not(exists(pathf("%s/%s/.config.json.tmp", names[i])));
		cr_assert_eq(reg_config_read(root, names[i], &r, why, sizeof(why)), 0, "%s", why);
		cr_expect_eq(r.state, REG_RUNNING);
		reg_config_free(&r);
	}
	cr_expect_eq(reg_sync_entries(root, ids, 0), 0);
	cr_expect_eq(reg_sync_entries(root, ids, 1), 0);
	cr_expect_eq(reg_sync_entries(root, ids, 20), 0);
	/* an entry that is gone is an error, not a silent success */
	ids[19] = "missing";
	cr_expect_eq(reg_sync_entries(root, ids, 20), -ENOENT);
}

Test(mgr_registry, config_defaults)
{
	struct reg_config r;
	char why[128];
	const char *t = "{\"id\":\"a\",\"argv\":[\"socket\"]}";

	cr_assert_eq(reg_config_parse(t, strlen(t), "a", &r, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq(r.policy, PROTO_RESTART_ON_FAILURE);
	cr_expect_eq(r.state, REG_STOPPED);
	cr_expect_eq(r.created, 0);
	reg_config_free(&r);
}

Test(mgr_registry, config_malformed)
{
	static const char *const bad[] = {
		"",
		"nonsense",
		"[]",
		"{\"id\":\"a\",\"argv\":[\"socket\"]",
		"{\"argv\":[\"socket\"]}",
		"{\"id\":\"b\",\"argv\":[\"socket\"]}",
		"{\"id\":5,\"argv\":[\"socket\"]}",
		"{\"id\":\"a\"}",
		"{\"id\":\"a\",\"argv\":\"socket\"}",
		"{\"id\":\"a\",\"argv\":[]}",
		"{\"id\":\"a\",\"argv\":[\"socket\",1]}",
		"{\"id\":\"a\",\"argv\":[\"socket\",\"x\\u0000y\"]}",
		"{\"id\":\"a\",\"argv\":[\"chardev\"]}",
		"{\"id\":\"a\",\"argv\":[\"socket\"],\"restart\":\"sometimes\"}",
		"{\"id\":\"a\",\"argv\":[\"socket\"],\"restart\":1}",
		"{\"id\":\"a\",\"argv\":[\"socket\"],\"created\":\"today\"}",
		"{\"id\":\"a\",\"argv\":[\"socket\"],\"state\":\"dancing\"}",
		"{\"id\":\"a\",\"argv\":[\"socket\"],\"state\":true}",
		"{\"id\":\"a\",\"argv\":[\"socket\"]} trailing",
	};
	struct reg_config r;
	char why[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		cr_expect_lt(reg_config_parse(bad[i], strlen(bad[i]), "a", &r, why, sizeof(why)), 0,
			     "'%s' must be refused", bad[i]);
		cr_expect_null(r.argv, "nothing left allocated");
		cr_expect(why[0], "'%s': a reason is given", bad[i]);
	}
}

Test(mgr_registry, config_bounds)
{
	struct reg_config r;
	char why[128];
	size_t cap = REG_MAX_CONFIG + 64, n;
	char *t = malloc(cap);

	cr_assert_not_null(t);
	/* too many argv elements */
	n = (size_t)sprintf(t, "{\"id\":\"a\",\"argv\":[\"socket\"");
	for (int i = 0; i < PROTO_MAX_ARGC; i++)
		n += (size_t)sprintf(t + n, ",\"x\"");
	n += (size_t)sprintf(t + n, "]}");
	cr_expect_lt(reg_config_parse(t, n, "a", &r, why, sizeof(why)), 0);
	/* an oversized file */
	memset(t, ' ', cap);
	cr_expect_lt(reg_config_parse(t, REG_MAX_CONFIG + 1, "a", &r, why, sizeof(why)), 0);
	/* a raw NUL */
	cr_expect_lt(reg_config_parse("{\"id\":\"a\"\0}", 11, "a", &r, why, sizeof(why)), 0);
	free(t);
}

Test(mgr_registry, config_read_missing_and_symlinked)
{
	struct reg_config r;
	char why[256];

	cr_expect_eq(reg_config_read(root, "nope", &r, why, sizeof(why)), -ENOENT);
	cr_assert_eq(mkdir(pathf("%s/%s", "ln"), 0700), 0);
	write_file(pathf("%s/%s/target", "ln"), "{\"id\":\"ln\",\"argv\":[\"socket\"]}");
	cr_assert_eq(symlink("target", pathf("%s/%s/config.json", "ln")), 0);
	cr_expect_lt(reg_config_read(root, "ln", &r, why, sizeof(why)), 0,
		     "a symlinked config.json is not followed");
}

/* ---- pid file ---- */

static void sample_pid(struct reg_pid *p)
{
	memset(p, 0, sizeof(*p));
	p->pid = 4242;
	p->starttime = 123456789012ULL;
	snprintf(p->boot_id, sizeof(p->boot_id), "a6bb3e83-c2bf-433f-9719-0706f57f8351");
	snprintf(p->exe, sizeof(p->exe), "/usr/sbin/vtpmd");
	snprintf(p->comm, sizeof(p->comm), "vtpm-vm1");
}

Test(mgr_registry, pid_roundtrip)
{
	struct reg_pid p, q;
	char buf[REG_MAX_PIDFILE];
	int n;

	sample_pid(&p);
	n = reg_pid_format(&p, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	cr_assert_eq(reg_pid_parse(buf, (size_t)n, &q), 0);
	cr_expect_eq(q.pid, 4242);
	cr_expect_eq(q.starttime, 123456789012ULL);
	cr_expect_str_eq(q.boot_id, p.boot_id);
	cr_expect_str_eq(q.exe, p.exe);
	cr_expect_str_eq(q.comm, p.comm);
	cr_expect(reg_identity_match(&p, &q));

	cr_assert_eq(reg_prepare(root, "vm1", (uid_t)-1, (gid_t)-1), 0);
	cr_assert_eq(reg_pid_write(root, "vm1", &p), 0);
	cr_assert_eq(reg_pid_read(root, "vm1", &q), 0);
	cr_expect_eq(q.pid, 4242);
	cr_expect_eq(reg_pid_remove(root, "vm1"), 0);
	cr_expect_eq(reg_pid_read(root, "vm1", &q), -ENOENT);
	cr_expect_eq(reg_pid_remove(root, "vm1"), 0, "removing twice is fine");
}

Test(mgr_registry, pid_format_too_small)
{
	struct reg_pid p;
	char buf[16];

	sample_pid(&p);
	cr_expect_eq(reg_pid_format(&p, buf, sizeof(buf)), -ENAMETOOLONG);
}

Test(mgr_registry, pid_malformed)
{
	static const char *const bad[] = {
		"",
		"pid=1\n",
		"pid=1\nstarttime=2\nboot_id=b\nexe=/x\n",		/* no comm */
		"starttime=2\nboot_id=b\nexe=/x\ncomm=c\n",		/* no pid */
		"pid=0\nstarttime=2\nboot_id=b\nexe=/x\ncomm=c\n",	/* pid 0 */
		"pid=-5\nstarttime=2\nboot_id=b\nexe=/x\ncomm=c\n",	/* negative */
		"pid=2147483648\nstarttime=2\nboot_id=b\nexe=/x\ncomm=c\n", /* > INT_MAX */
		"pid=12a\nstarttime=2\nboot_id=b\nexe=/x\ncomm=c\n",
		"pid=\nstarttime=2\nboot_id=b\nexe=/x\ncomm=c\n",
		"pid=1\nstarttime=x\nboot_id=b\nexe=/x\ncomm=c\n",
		"pid=1\nstarttime=99999999999999999999999\nboot_id=b\nexe=/x\ncomm=c\n",
		"pid=1\nstarttime=2\nboot_id=b\nexe=relative\ncomm=c\n",
		"pid=1\nstarttime=2\nboot_id=b\nexe=/x\ncomm=0123456789abcdefXYZ\n",
		"pid=1\nstarttime=2\nboot_id=0123456789012345678901234567890123456789x\nexe=/x\n"
		"comm=c\n",
		"pid=1\nstarttime=2\nboot_id=b\nexe=/x\ncomm=c\ngarbage\n",
	};
	struct reg_pid p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(reg_pid_parse(bad[i], strlen(bad[i]), &p), -EINVAL, "'%s'", bad[i]);
	/* a NUL inside a value */
	cr_expect_eq(reg_pid_parse("pid=1\nstarttime=2\nboot_id=b\0c\nexe=/x\ncomm=c\n", 42, &p),
		     -EINVAL);
}

Test(mgr_registry, pid_tolerant)
{
	const char *t = "\npid=7\nfuture=whatever\nstarttime=2\n\nboot_id=b\nexe=/x\ncomm=c";
	struct reg_pid p;

	cr_expect_eq(reg_pid_parse(t, strlen(t), &p), 0, "unknown keys, blank lines, no final NL");
	cr_expect_eq(p.pid, 7);
}

/* ---- /proc ---- */

Test(mgr_registry, stat_starttime)
{
	static const char ok[] = "1234 (cat) S 1 1234 1234 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 "
				 "98765 1000 10 18446744073709551615 0 0\n";
	static const char tricky[] = "99 (a) b) (c 9 9) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 "
				     "17 18 4242 0";
	unsigned long long v = 0;

	cr_expect_eq(reg_parse_stat_starttime(ok, strlen(ok), &v), 0);
	cr_expect_eq(v, 98765ULL);
	cr_expect_eq(reg_parse_stat_starttime(tricky, strlen(tricky), &v), 0);
	cr_expect_eq(v, 4242ULL, "fields are counted after the last ')'");
	cr_expect_eq(reg_parse_stat_starttime("1 (x) S 1 2", 11, &v), -EINVAL, "too short");
	cr_expect_eq(reg_parse_stat_starttime("no parens at all", 16, &v), -EINVAL);
	cr_expect_eq(reg_parse_stat_starttime(
			     "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 12x 0", 59, &v),
		     -EINVAL, "non-numeric field 22");
	cr_expect_eq(reg_parse_stat_starttime("", 0, &v), -EINVAL);
}

Test(mgr_registry, own_identity)
{
	struct reg_pid a, b;

	cr_assert_eq(reg_proc_identity(getpid(), &a), 0);
	cr_expect_eq(a.pid, getpid());
	cr_expect_gt(a.starttime, 0ULL);
	cr_expect_eq(a.exe[0], '/');
	cr_expect_eq(strlen(a.boot_id), 36);
	cr_expect_gt(strlen(a.comm), 0);
	cr_assert_eq(reg_proc_identity(getpid(), &b), 0);
	cr_expect(reg_identity_match(&a, &b));
	cr_expect_eq(reg_proc_identity(0x3fffffff, &b), -ENOENT, "no such pid");
}

Test(mgr_registry, identity_mismatches)
{
	struct reg_pid a, b;

	sample_pid(&a);
	b = a;
	b.pid++;
	cr_expect_not(reg_identity_match(&a, &b), "pid");
	b = a;
	b.starttime++;
	cr_expect_not(reg_identity_match(&a, &b), "start time (a recycled pid)");
	b = a;
	b.boot_id[0] = 'f';
	cr_expect_not(reg_identity_match(&a, &b), "another boot");
	b = a;
	snprintf(b.comm, sizeof(b.comm), "bash");
	cr_expect_not(reg_identity_match(&a, &b), "comm");
	b = a;
	snprintf(b.exe, sizeof(b.exe), "/usr/bin/bash");
	cr_expect_not(reg_identity_match(&a, &b), "exe");
	b = a;
	snprintf(b.exe, sizeof(b.exe), "/usr/sbin/vtpmd (deleted)");
	cr_expect(reg_identity_match(&a, &b), "a replaced binary still matches");
	snprintf(b.exe, sizeof(b.exe), "/usr/sbin/vtpmdX(deleted)");
	cr_expect_not(reg_identity_match(&a, &b));
	b = a;
	a.boot_id[0] = '\0';
	b.boot_id[0] = '\0';
	cr_expect_not(reg_identity_match(&a, &b), "no boot id, no match");
}

/* ---- scan and removal ---- */

static int collect(const char *id, void *arg)
{
	char *list = arg;

	strcat(list, id);
	strcat(list, ";");
	return 0;
}

static void make_entry(const char *id)
{
	cr_assert_eq(reg_prepare(root, id, (uid_t)-1, (gid_t)-1), 0);
	write_file(pathf("%s/%s/config.json", id), "{}");
}

Test(mgr_registry, scan_only_valid_entries)
{
	char list[256] = "";

	make_entry("vm1");
	make_entry("vm2");
	cr_assert_eq(reg_prepare(root, "noconfig", (uid_t)-1, (gid_t)-1), 0);
	cr_assert_eq(mkdir(pathf("%s/%s", ".hidden"), 0700), 0);
	write_file(pathf("%s/%s/config.json", ".hidden"), "{}");
	cr_assert_eq(mkdir(pathf("%s/%s", "bad name"), 0700), 0);
	write_file(pathf("%s/%s/config.json", "bad name"), "{}");
	cr_assert_eq(symlink(pathf("%s/%s", "vm1"), pathf("%s/%s", "link")), 0);
	write_file(pathf("%s/%s", "plainfile"), "x");
	cr_assert_eq(reg_scan(root, collect, list), 0);
	cr_expect(strstr(list, "vm1;"));
	cr_expect(strstr(list, "vm2;"));
	cr_expect_eq(strlen(list), strlen("vm1;vm2;"), "only the two valid entries: %s", list);
	cr_expect_eq(reg_scan(pathf("%s/%s", "missing"), collect, list), -ENOENT);
}

Test(mgr_registry, remove_keeps_state)
{
	make_entry("vm1");
	write_file(pathf("%s/%s/state/tpm2-00.permall", "vm1"), "state");
	write_file(pathf("%s/%s/log", "vm1"), "log");
	write_file(pathf("%s/%s/pid", "vm1"), "pid=1\n");
	/* an entry made by an older vtpmd */
	cr_assert_eq(mkdir(pathf("%s/%s/run", "vm1"), 0700), 0);
	write_file(pathf("%s/%s/run/swtpm.pid", "vm1"), "1");
	cr_assert_eq(reg_remove(root, "vm1", false), 0);
	cr_expect_not(exists(pathf("%s/%s/config.json", "vm1")));
	cr_expect_not(exists(pathf("%s/%s/pid", "vm1")));
	cr_expect_not(exists(pathf("%s/%s/run", "vm1")));
	cr_expect(exists(pathf("%s/%s/state/tpm2-00.permall", "vm1")), "state kept");
	cr_expect(exists(pathf("%s/%s/log", "vm1")), "log kept");
	cr_expect_eq(reg_remove(root, "gone", false), 0, "nothing there is fine");
}

Test(mgr_registry, purge_never_follows_symlinks)
{
	char outside[PATH_MAX];

	snprintf(outside, sizeof(outside), "%s/outside", root);
	cr_assert_eq(mkdir(outside, 0700), 0);
	write_file(pathf("%s/%s/keep", "outside"), "precious");
	make_entry("vm1");
	cr_assert_eq(mkdir(pathf("%s/%s/state/deep", "vm1"), 0700), 0);
	cr_assert_eq(mkdir(pathf("%s/%s/state/deep/er", "vm1"), 0700), 0);
	write_file(pathf("%s/%s/state/deep/er/f", "vm1"), "x");
	cr_assert_eq(symlink(outside, pathf("%s/%s/state/escape", "vm1")), 0);
	cr_assert_eq(symlink(pathf("%s/%s/keep", "outside"), pathf("%s/%s/state/file", "vm1")), 0);
	cr_assert_eq(reg_remove(root, "vm1", true), 0);
	cr_expect_not(exists(pathf("%s/%s", "vm1")), "the entry is gone");
	cr_expect(exists(pathf("%s/%s/keep", "outside")), "symlink targets survive");
}

Test(mgr_registry, purge_symlinked_entry)
{
	char outside[PATH_MAX];

	snprintf(outside, sizeof(outside), "%s/outside", root);
	cr_assert_eq(mkdir(outside, 0700), 0);
	write_file(pathf("%s/%s/keep", "outside"), "precious");
	cr_assert_eq(symlink(outside, pathf("%s/%s", "vm1")), 0);
	cr_expect_eq(reg_remove(root, "vm1", true), 0);
	cr_expect(exists(pathf("%s/%s/keep", "outside")));
	cr_expect_not(exists(pathf("%s/%s", "vm1")), "only the link was removed");
}

Test(mgr_registry, remove_refuses_bad_ids)
{
	cr_expect_eq(reg_remove(root, "..", true), -EINVAL);
	cr_expect_eq(reg_remove(root, "a/b", true), -EINVAL);
	cr_expect_eq(reg_remove(root, "", true), -EINVAL);
}

/* ---- log tail ---- */

Test(mgr_registry, log_tail)
{
	char out[64];

	make_entry("vm1");
	cr_expect_eq(reg_log_tail(root, "vm1", out, sizeof(out)), -ENOENT);
	write_file(pathf("%s/%s/log", "vm1"), "first\nsecond line\n\n  \n");
	cr_assert_eq(reg_log_tail(root, "vm1", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "second line");
	write_file(pathf("%s/%s/log", "vm1"), "only\x1b[31mred\x07");
	cr_assert_eq(reg_log_tail(root, "vm1", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "only?[31mred?", "control bytes are masked");
	write_file(pathf("%s/%s/log", "vm1"), "");
	cr_assert_eq(reg_log_tail(root, "vm1", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "");
}

Test(mgr_registry, log_tail_large_and_truncated)
{
	char out[16];
	FILE *f;

	make_entry("vm1");
	f = fopen(pathf("%s/%s/log", "vm1"), "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 10000; i++)
		fprintf(f, "line %d\n", i);
	fprintf(f, "the very last line of the log\n");
	fclose(f);
	cr_assert_eq(reg_log_tail(root, "vm1", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "the very last l");
}
