/* Unit tests of instance_manufacture (what vtpmd's pool processes do ahead of a
 * create): a durable TPM 2 state with its journal file already made, never over
 * an existing state, unique seeds, and a later start that loads it and writes
 * its first change into the journal without creating or replacing a file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "instance/config.h"
#include "instance/instance.h"
#include "instance/journal.h"
#include "instance/store.h"

static char dir[] = "/tmp/vtpm-manuf-XXXXXX";

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	setenv("VTPM_JOURNAL", "1", 1);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

TestSuite(manufacture, .init = setup, .fini = teardown, .timeout = 60);

static void sub(char *buf, size_t n, const char *a, const char *b)
{
	snprintf(buf, n, "%s/%s%s%s", dir, a, b ? "/" : "", b ? b : "");
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void make_state_dir(const char *name, char *path, size_t n)
{
	sub(path, n, name, NULL);
	cr_assert_eq(mkdir(path, 0700), 0);
}

Test(manufacture, makes_state_and_journal)
{
	char d[128], f[192];
	struct stat st, sj;
	uint8_t *blob;
	size_t len;

	make_state_dir("a", d, sizeof(d));
	cr_assert_eq(instance_manufacture(d), 0);
	snprintf(f, sizeof(f), "%s/tpm2-00.permall", d);
	cr_assert_eq(stat(f, &st), 0);
	cr_assert_gt(st.st_size, 1000, "a TPM 2 state is over 1 kB, got %lld", (long long)st.st_size);
	blob = slurp(f, &len);
	/* swtpm's state container: version byte 2, then the permanent state */
	cr_expect_eq(blob[0], 2);
	free(blob);
	snprintf(f, sizeof(f), "%s/%s", d, journal_file_name(true));
	cr_assert_eq(stat(f, &sj), 0, "journal file made ahead");
	cr_expect_eq(sj.st_size, 2 * (off_t)JOURNAL_MIN_SLOT);
	snprintf(f, sizeof(f), "%s/TMP2-00.permall", d);
	cr_expect_neq(access(f, F_OK), 0, "no temp file left");
	snprintf(f, sizeof(f), "%s/tpm2-00.volatilestate", d);
	cr_expect_neq(access(f, F_OK), 0, "no volatile state: the TPM never ran");
}

Test(manufacture, never_over_an_existing_state)
{
	char d[128], f[192];
	uint8_t *before, *after;
	size_t n1, n2;

	make_state_dir("a", d, sizeof(d));
	cr_assert_eq(instance_manufacture(d), 0);
	snprintf(f, sizeof(f), "%s/tpm2-00.permall", d);
	before = slurp(f, &n1);
	cr_expect_eq(instance_manufacture(d), -EEXIST);
	after = slurp(f, &n2);
	cr_assert_eq(n1, n2);
	cr_expect_eq(memcmp(before, after, n1), 0, "the state was replaced");
	free(before);
	free(after);
}

Test(manufacture, missing_directory_fails)
{
	char d[128];

	sub(d, sizeof(d), "nonexistent", NULL);
	cr_expect_lt(instance_manufacture(d), 0);
	cr_expect_neq(access(d, F_OK), 0, "the directory is not created");
}

Test(manufacture, each_tpm_its_own_seeds)
{
	char a[128], b[128], f[192];
	uint8_t *x, *y;
	size_t nx, ny;

	make_state_dir("a", a, sizeof(a));
	make_state_dir("b", b, sizeof(b));
	cr_assert_eq(instance_manufacture(a), 0);
	cr_assert_eq(instance_manufacture(b), 0);
	snprintf(f, sizeof(f), "%s/tpm2-00.permall", a);
	x = slurp(f, &nx);
	snprintf(f, sizeof(f), "%s/tpm2-00.permall", b);
	y = slurp(f, &ny);
	cr_assert_eq(nx, ny, "same layout");
	cr_expect_neq(memcmp(x, y, nx), 0, "two manufactured TPMs are identical");
	free(x);
	free(y);
}

/* What a claimed pool process does next: start the TPM on that state with
 * TPM2_Startup(CLEAR); the change lands in the journal, in place. */
Test(manufacture, first_start_loads_it_and_writes_the_journal)
{
	static const uint8_t getrandom[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8 };
	char d[128], f[192], uri[160];
	struct vtpm_config cfg;
	struct instance inst;
	struct stat p1, p2, j1, j2;
	const uint8_t *rsp;
	size_t rsplen;
	uint8_t *before, *after;
	size_t n1, n2;

	make_state_dir("a", d, sizeof(d));
	cr_assert_eq(instance_manufacture(d), 0);
	snprintf(f, sizeof(f), "%s/tpm2-00.permall", d);
	cr_assert_eq(stat(f, &p1), 0);
	before = slurp(f, &n1);
	snprintf(f, sizeof(f), "%s/%s", d, journal_file_name(true));
	cr_assert_eq(stat(f, &j1), 0);

	config_init(&cfg);
	cfg.tpm2 = true;
	cfg.startup = STARTUP_CLEAR;
	snprintf(uri, sizeof(uri), "dir://%s", d);
	cfg.state_uri = strdup(uri);
	cr_assert_eq(instance_init(&inst, &cfg), 0);
	cr_assert_eq(instance_storage_prepare(&inst), 0);
	cr_assert_eq(instance_start(&inst, 0), 0);
	cr_assert_eq(instance_startup_cmd(&inst), 0);
	cr_assert(instance_has_pending_writes(&inst), "TPM2_Startup changes NV");
	cr_assert_eq(store_flush_sync(&inst.store), 0);
	cr_assert_eq(instance_process(&inst, getrandom, sizeof(getrandom), &rsp, &rsplen), 0);
	cr_assert_eq(rsplen, 20);
	cr_expect_eq(rsp[9], 0, "GetRandom on the loaded TPM: rc %02x%02x", rsp[8], rsp[9]);

	/* the permall file is the same file with the same bytes; the journal
	 * took the write in place */
	snprintf(f, sizeof(f), "%s/tpm2-00.permall", d);
	cr_assert_eq(stat(f, &p2), 0);
	cr_expect_eq(p1.st_ino, p2.st_ino);
	after = slurp(f, &n2);
	cr_expect(n1 == n2 && memcmp(before, after, n1) == 0, "permall file rewritten");
	snprintf(f, sizeof(f), "%s/%s", d, journal_file_name(true));
	cr_assert_eq(stat(f, &j2), 0);
	cr_expect_eq(j1.st_ino, j2.st_ino, "journal file replaced");
	{
		size_t jn;
		uint8_t *j = slurp(f, &jn);

		cr_assert_eq(jn, 2 * (size_t)JOURNAL_MIN_SLOT);
		cr_expect(memcmp(j, "VTPMJRN1", 8) == 0 ||
				  memcmp(j + JOURNAL_MIN_SLOT, "VTPMJRN1", 8) == 0,
			  "no journal slot written");
		free(j);
	}
	instance_fini(&inst);
	config_free(&cfg);
	free(before);
	free(after);
}

/* vtpmd's pool loads the TPM ahead (instance_preload); a command line that
 * keeps the state in that directory and starts the TPM at once takes it
 * over, running, without loading again; anything else releases it, lock and
 * all, so the normal start-up finds the directory as it was. */
static void preload_cfg_for(struct vtpm_config *cfg, const char *d, bool not_need_init)
{
	char uri[256];

	config_init(cfg);
	cfg->tpm2 = true;
	cfg->not_need_init = not_need_init;
	snprintf(uri, sizeof(uri), "dir://%s", d);
	cfg->state_uri = strdup(uri);
}

Test(manufacture, preloaded_tpm_taken_over)
{
	static const uint8_t startup[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0 };
	char d[128], moved[160];
	struct vtpm_config cfg;
	struct instance inst;
	const uint8_t *rsp;
	size_t rsplen;

	make_state_dir("a", d, sizeof(d));
	cr_assert_eq(instance_manufacture(d), 0);
	cr_assert_eq(instance_preload(d), 0);
	/* vtpmd renames the entry before the claim: same directory, new name */
	snprintf(moved, sizeof(moved), "%s/moved", dir);
	cr_assert_eq(rename(d, moved), 0);
	preload_cfg_for(&cfg, moved, true);
	cr_assert_eq(instance_adopt_preloaded(&inst, &cfg), 0);
	cr_expect(inst.running, "taken over running");
	cr_expect_str_eq(inst.store.dir, moved);
	cr_expect_eq(instance_adopt_preloaded(&inst, &cfg), -ENOENT, "taken once only");
	cr_assert_eq(instance_process(&inst, startup, sizeof(startup), &rsp, &rsplen), 0);
	cr_expect_eq(rsp[9], 0, "TPM2_Startup on the taken-over TPM: rc %02x%02x", rsp[8], rsp[9]);
	cr_assert_eq(store_flush_sync(&inst.store), 0);
	instance_fini(&inst);
	config_free(&cfg);
}

static int lock_dir(const char *d)
{
	struct store st;
	char uri[256];
	int r;

	snprintf(uri, sizeof(uri), "dir://%s", d);
	cr_assert_eq(store_init(&st, uri, true, 0640), 0);
	r = store_lock(&st);
	store_fini(&st);
	return r;
}

Test(manufacture, preloaded_tpm_released_when_it_does_not_fit)
{
	char a[128], b[128];
	struct vtpm_config cfg;
	struct instance inst;

	make_state_dir("a", a, sizeof(a));
	make_state_dir("b", b, sizeof(b));
	cr_assert_eq(instance_manufacture(a), 0);
	cr_assert_eq(instance_manufacture(b), 0);

	/* another directory */
	cr_assert_eq(instance_preload(a), 0);
	cr_expect_eq(lock_dir(a), -EAGAIN, "the preloaded TPM holds its lock");
	preload_cfg_for(&cfg, b, true);
	cr_expect_eq(instance_adopt_preloaded(&inst, &cfg), -EXDEV);
	cr_expect_eq(lock_dir(a), 0, "released, lock and all");
	config_free(&cfg);

	/* the same directory, but the TPM waits for CMD_INIT */
	cr_assert_eq(instance_preload(a), 0);
	preload_cfg_for(&cfg, a, false);
	cr_expect_eq(instance_adopt_preloaded(&inst, &cfg), -EXDEV);
	cr_expect_eq(lock_dir(a), 0);
	config_free(&cfg);

	/* a key: the state would be read differently */
	cr_assert_eq(instance_preload(a), 0);
	preload_cfg_for(&cfg, a, true);
	cfg.keys.key = strdup("file=/nonexistent");
	cr_expect_eq(instance_adopt_preloaded(&inst, &cfg), -EXDEV);
	config_free(&cfg);

	/* released without a taker */
	cr_assert_eq(instance_preload(a), 0);
	instance_release_preloaded();
	cr_expect_eq(lock_dir(a), 0);
	cr_expect_eq(instance_adopt_preloaded(&inst, &cfg), -ENOENT);
}
