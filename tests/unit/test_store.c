/* Unit tests for the dir:// state store (src/instance/store.c): names, .lock,
 * modes, pending records, the sync and io_uring flushes, and a real swtpm peer. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "crypto/container.h"
#include "instance/store.h"

#include "child.h"

/* ---- helpers --------------------------------------------------------------- */

static char g_dir[64];
static char g_uri[96];

static void make_dir(void)
{
	strcpy(g_dir, "/tmp/vtpm-store-XXXXXX");
	cr_assert_not_null(mkdtemp(g_dir));
	snprintf(g_uri, sizeof(g_uri), "dir://%s", g_dir);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_dir(void)
{
	if (g_dir[0])
		nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void path_of(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", g_dir, name);
}

static bool file_exists(const char *name)
{
	char p[256];
	struct stat sb;

	path_of(p, sizeof(p), name);
	return lstat(p, &sb) == 0;
}

static mode_t file_mode(const char *name)
{
	char p[256];
	struct stat sb;

	path_of(p, sizeof(p), name);
	cr_assert_eq(stat(p, &sb), 0, "stat %s", p);
	return sb.st_mode & 07777;
}

static uint8_t *read_whole(const char *name, size_t *len)
{
	char p[256];
	FILE *f;
	uint8_t *buf;
	long n;

	path_of(p, sizeof(p), name);
	f = fopen(p, "rb");
	cr_assert_not_null(f, "open %s", p);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void write_whole(const char *name, const void *data, size_t len)
{
	char p[256];
	FILE *f;

	path_of(p, sizeof(p), name);
	f = fopen(p, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* Fails the test if a TMP file is left in the directory. */
static void assert_no_tmp(void)
{
	DIR *d = opendir(g_dir);
	struct dirent *e;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		cr_assert(strncmp(e->d_name, "TMP", 3) != 0, "left over %s", e->d_name);
	closedir(d);
}

static uint8_t *pattern(size_t len, uint8_t seed)
{
	uint8_t *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed ^ (i * 13));
	return p;
}

static void assert_file_is(const char *name, const uint8_t *payload, size_t len)
{
	uint8_t *exp, *got;
	size_t elen, glen;

	cr_assert_eq(container_wrap_file(payload, len, &exp, &elen), 0);
	got = read_whole(name, &glen);
	cr_assert_eq(glen, elen, "%s: %zu bytes, want %zu", name, glen, elen);
	cr_assert_arr_eq(got, exp, elen);
	free(exp);
	free(got);
}

static void init_store(struct store *st, bool tpm2, mode_t mode)
{
	cr_assert_eq(store_init(st, g_uri, tpm2, mode), 0);
}

/* Run a forked check in a child and expect exit code 0. */
static void expect_child_ok(int (*fn)(void))
{
	int status = 0;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(fn());
	cr_assert_eq(wait_child(pid, 10000, &status), 0);
	cr_assert(WIFEXITED(status), "child died");
	cr_assert_eq(WEXITSTATUS(status), 0, "child check failed (%d)", WEXITSTATUS(status));
}

static void setup(void)
{
	unsetenv("VTPM_NO_FSYNC");
	make_dir();
}

static void teardown(void)
{
	remove_dir();
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);

/* ---- names, init ------------------------------------------------------------ */

Test(store, item_names)
{
	cr_assert_eq(store_item_from_name("permall"), STORE_PERMALL);
	cr_assert_eq(store_item_from_name("volatilestate"), STORE_VOLATILE);
	cr_assert_eq(store_item_from_name("savestate"), STORE_SAVESTATE);
	cr_assert_eq(store_item_from_name("volatile"), -EINVAL);
	cr_assert_eq(store_item_from_name(NULL), -EINVAL);
	cr_assert_str_eq(store_item_name(STORE_VOLATILE), "volatilestate");
	cr_assert_null(store_item_name(STORE_NITEMS));
}

static void check_names(bool tpm2)
{
	const char *fin[] = { "tpm-00.permall", "tpm-00.volatilestate", "tpm-00.savestate" };
	const char *fin2[] = { "tpm2-00.permall", "tpm2-00.volatilestate", "tpm2-00.savestate" };
	const char *tmp[] = { "TMP-00.permall", "TMP-00.volatilestate", "TMP-00.savestate" };
	const char *tmp2[] = { "TMP2-00.permall", "TMP2-00.volatilestate", "TMP2-00.savestate" };
	struct store st;
	uint8_t *p = pattern(100, 1);

	init_store(&st, tpm2, 0640);
	for (int i = 0; i < STORE_NITEMS; i++) {
		cr_assert_str_eq(store_file_name(&st, (enum store_item)i, false),
				 tpm2 ? fin2[i] : fin[i]);
		cr_assert_str_eq(store_file_name(&st, (enum store_item)i, true),
				 tpm2 ? tmp2[i] : tmp[i]);
		cr_assert_eq(store_save(&st, (enum store_item)i, p, 100 - (size_t)i), 0);
	}
	cr_assert_eq(store_flush_sync(&st), 0);
	for (int i = 0; i < STORE_NITEMS; i++) {
		assert_file_is(tpm2 ? fin2[i] : fin[i], p, 100 - (size_t)i);
		cr_assert_not(file_exists(tpm2 ? fin[i] : fin2[i]));
	}
	assert_no_tmp();
	store_fini(&st);
	free(p);
}

Test(store, names_tpm2)
{
	check_names(true);
}

Test(store, names_tpm12)
{
	check_names(false);
}

Test(store, init_errors)
{
	struct store st;
	char longuri[4200];

	cr_assert_eq(store_init(&st, NULL, true, 0640), -EINVAL);
	/* file:// is the linear backend (test_store_linear.c); no I/O at init */
	cr_assert_eq(store_init(&st, "file:///tmp/vtpm-no-such-dir/x.img", true, 0640), 0);
	cr_assert(store_is_linear(&st));
	cr_assert_eq(st.lin.fd, -1);
	cr_assert_null(st.dir);
	store_fini(&st);
	cr_assert_eq(store_init(&st, "file://", true, 0640), -EINVAL);
	store_fini(&st);
	cr_assert_eq(store_init(&st, "/tmp/x", true, 0640), -EINVAL);
	cr_assert_eq(store_init(&st, "dir://", true, 0640), -EINVAL);
	cr_assert_eq(store_init(&st, "dirx:///tmp", true, 0640), -EINVAL);
	cr_assert_eq(store_init(&st, g_uri, true, 01777), -EINVAL);
	store_fini(&st); /* safe after a failed init */

	/* path + 20 must fit FILENAME_MAX (4096) */
	memset(longuri, 'a', sizeof(longuri));
	memcpy(longuri, "dir:///", 7);
	longuri[6 + 4077] = '\0';
	cr_assert_eq(store_init(&st, longuri, true, 0640), -EINVAL);
	longuri[6 + 4077] = 'a';
	longuri[6 + 4076] = '\0';
	cr_assert_eq(store_init(&st, longuri, true, 0640), 0);
	store_fini(&st);

	cr_assert_eq(store_init(&st, g_uri, true, 0640), 0);
	cr_assert_str_eq(st.dir, g_dir);
	cr_assert(st.tpm2);
	cr_assert_eq(st.mode, 0640);
	cr_assert_eq(st.dirfd, -1, "no I/O at init");
	cr_assert_eq(st.lockfd, -1);
	cr_assert_not(st.fsync_disabled);
	store_fini(&st);
}

Test(store, fsync_knob_from_env)
{
	struct store st;

	setenv("VTPM_NO_FSYNC", "1", 1);
	init_store(&st, true, 0640);
	cr_assert(st.fsync_disabled);
	store_fini(&st);
	setenv("VTPM_NO_FSYNC", "0", 1);
	init_store(&st, true, 0640);
	cr_assert_not(st.fsync_disabled);
	store_fini(&st);
	unsetenv("VTPM_NO_FSYNC");
}

/* ---- prepare / lock ------------------------------------------------------- */

Test(store, prepare_needs_existing_dir)
{
	struct store st;
	char uri[128], sub[96];

	snprintf(sub, sizeof(sub), "%s/missing", g_dir);
	snprintf(uri, sizeof(uri), "dir://%s", sub);
	cr_assert_eq(store_init(&st, uri, true, 0640), 0);
	cr_assert_eq(store_prepare(&st), -ENOENT);
	cr_assert_not(file_exists("missing"), "the directory must never be created");
	cr_assert_eq(st.dirfd, -1);
	store_fini(&st);

	write_whole("plainfile", "x", 1);
	snprintf(uri, sizeof(uri), "dir://%s/plainfile", g_dir);
	cr_assert_eq(store_init(&st, uri, true, 0640), 0);
	cr_assert_eq(store_prepare(&st), -ENOTDIR);
	store_fini(&st);
}

Test(store, lock_file_created_and_idempotent)
{
	struct store st;
	int lfd;

	umask(022);
	init_store(&st, true, 0640);
	cr_assert_eq(store_prepare(&st), 0);
	cr_assert_geq(st.dirfd, 0);
	cr_assert_geq(st.lockfd, 0);
	cr_assert(file_exists(".lock"));
	cr_assert_eq(file_mode(".lock"), 0640, "0660 minus umask 022");
	lfd = st.lockfd;
	cr_assert_eq(store_prepare(&st), 0);
	cr_assert_eq(st.lockfd, lfd);
	cr_assert(fcntl(st.lockfd, F_GETFD) & FD_CLOEXEC);
	store_fini(&st);
	cr_assert(file_exists(".lock"), "left behind like swtpm's");
	cr_assert_eq(st.lockfd, -1);
}

static int child_prepare_expect_eagain(void)
{
	struct store st;
	int r;

	if (store_init(&st, g_uri, true, 0640) < 0)
		return 2;
	r = store_prepare(&st);
	store_fini(&st);
	return r == -EAGAIN ? 0 : 1;
}

static int child_prepare_expect_ok(void)
{
	struct store st;
	int r;

	if (store_init(&st, g_uri, true, 0640) < 0)
		return 2;
	r = store_prepare(&st);
	store_fini(&st);
	return r == 0 ? 0 : 1;
}

/* What swtpm does: classic POSIX write lock on .lock. */
static int posix_lock_dot_lock(void)
{
	char p[256];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd;

	path_of(p, sizeof(p), ".lock");
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0660);
	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int child_posix_lock_expect_fail(void)
{
	int r = posix_lock_dot_lock();

	return (r == -EAGAIN || r == -EACCES) ? 0 : 1;
}

Test(store, lock_conflict_from_forked_child)
{
	struct store st;

	init_store(&st, true, 0640);
	cr_assert_eq(store_prepare(&st), 0);
	expect_child_ok(child_prepare_expect_eagain);
	/* swtpm's F_SETLK in another process also conflicts with our lock */
	expect_child_ok(child_posix_lock_expect_fail);
	store_fini(&st);
	/* released by store_fini */
	expect_child_ok(child_prepare_expect_ok);
}

Test(store, lock_conflict_in_same_process)
{
	struct store a, b;

	init_store(&a, true, 0640);
	init_store(&b, true, 0640);
	cr_assert_eq(store_prepare(&a), 0);
	/* OFD lock: a second instance in this process is excluded as well */
	cr_assert_eq(store_prepare(&b), -EAGAIN);
	cr_assert_eq(b.dirfd, -1);
	cr_assert_eq(b.lockfd, -1);
	store_fini(&a);
	cr_assert_eq(store_prepare(&b), 0);
	store_fini(&b);
}

/* swtpm 0.8 lock rules (--migration): deferred, explicit lock, unlock. */
Test(store, deferred_lock_reads_only)
{
	struct store a, b;
	uint8_t *p = pattern(40, 21), *got;
	size_t len;

	init_store(&a, true, 0640);
	a.lock_deferred = true;
	cr_assert_eq(store_prepare(&a), 0);
	cr_assert_geq(a.dirfd, 0);
	cr_assert_eq(a.lockfd, -1);
	cr_assert_not(store_locked(&a));
	cr_assert_not(file_exists(".lock"), "nothing created while deferred");
	cr_assert_eq(store_load(&a, STORE_PERMALL, &got, &len), -ENOENT);

	/* the owner writes; the deferred store reads it */
	init_store(&b, true, 0640);
	cr_assert_eq(store_save(&b, STORE_PERMALL, p, 40), 0);
	cr_assert_eq(store_flush_sync(&b), 0);
	cr_assert_eq(store_load(&a, STORE_PERMALL, &got, &len), 0);
	cr_assert_eq(len, 40);
	cr_assert_arr_eq(got, p, 40);
	free(got);

	/* writing needs the lock */
	cr_assert_eq(store_save(&a, STORE_VOLATILE, p, 40), 0);
	cr_assert_eq(store_flush_sync(&a), -EAGAIN);
	cr_assert(store_has_pending(&a));
	cr_assert(a.lock_deferred);
	cr_assert_eq(store_lock(&a), -EAGAIN);
	cr_assert_eq(store_lock_retry(&a, 2), -EAGAIN);
	cr_assert_not(a.lock_was_held);
	cr_assert_eq(store_unlock(&b), 0);
	cr_assert_not(store_locked(&b));
	cr_assert_eq(store_flush_sync(&a), 0, "the write took the free lock");
	cr_assert(store_locked(&a));
	cr_assert_not(a.lock_deferred);
	cr_assert(a.lock_was_held);
	assert_file_is("tpm2-00.volatilestate", p, 40);
	/* b reads on without the lock, but cannot write any more */
	cr_assert_eq(store_load(&b, STORE_VOLATILE, &got, &len), 0);
	free(got);
	cr_assert_eq(store_delete(&b, STORE_VOLATILE), 0);
	cr_assert_eq(store_flush_sync(&b), -EAGAIN);
	store_drop_pending(&b);
	cr_assert_not(store_has_pending(&b));
	store_fini(&a);
	store_fini(&b);
	free(p);
}

Test(store, unlock_brings_swtpm_files_up_to_date)
{
	struct store a, b;
	uint8_t *p1 = pattern(100, 22), *p2 = pattern(120, 23), *got;
	size_t len;

	setenv("VTPM_JOURNAL", "1", 1);
	init_store(&a, true, 0640);
	cr_assert_eq(store_save(&a, STORE_PERMALL, p1, 100), 0);
	cr_assert_eq(store_flush_sync(&a), 0);
	cr_assert(a.journal_ok);
	cr_assert_eq(store_save(&a, STORE_PERMALL, p2, 120), 0);
	cr_assert_eq(store_flush_sync(&a), 0);
	cr_assert(a.journal.dirty, "the second write went to the journal");
	assert_file_is("tpm2-00.permall", p1, 100);

	cr_assert_eq(store_unlock(&a), 0);
	assert_file_is("tpm2-00.permall", p2, 120);
	cr_assert_not(a.journal_ok);
	cr_assert_eq(a.lockfd, -1);
	cr_assert(a.lock_deferred);
	cr_assert_eq(store_load(&a, STORE_PERMALL, &got, &len), 0, "read from the file");
	cr_assert_eq(len, 120);
	free(got);

	/* someone else can take the directory now */
	init_store(&b, true, 0640);
	cr_assert_eq(store_prepare(&b), 0);
	cr_assert_eq(store_lock(&a), -EAGAIN);
	store_fini(&b);
	cr_assert_eq(store_lock(&a), 0);
	cr_assert(a.journal_ok, "journal reopened with the lock");
	cr_assert_eq(store_load(&a, STORE_PERMALL, &got, &len), 0);
	cr_assert_eq(len, 120);
	cr_assert_arr_eq(got, p2, 120);
	free(got);
	store_fini(&a);
	unsetenv("VTPM_JOURNAL");
	free(p1);
	free(p2);
}

Test(store, lock_held_by_posix_locker)
{
	int status = 0, pfd[2];
	char c;
	pid_t pid;
	struct store st;

	/* child takes swtpm's kind of lock and holds it until told to stop */
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = posix_lock_dot_lock();

		close(pfd[1]);
		if (fd < 0)
			_exit(3);
		if (read(pfd[0], &c, 1) < 0)
			_exit(4);
		_exit(0);
	}
	close(pfd[0]);
	init_store(&st, true, 0640);
	for (int i = 0; i < 200 && !file_exists(".lock"); i++)
		usleep(10000);
	usleep(50000);
	cr_assert_eq(store_prepare(&st), -EAGAIN);
	close(pfd[1]); /* child sees EOF and exits, dropping its lock */
	cr_assert_eq(wait_child(pid, 10000, &status), 0);
	cr_assert_eq(WEXITSTATUS(status), 0);
	cr_assert_eq(store_prepare(&st), 0);
	store_fini(&st);
}

/* ---- modes ------------------------------------------------------------------- */

Test(store, create_mode_follows_umask)
{
	struct store st;
	uint8_t *p = pattern(32, 2);

	umask(0);
	init_store(&st, true, 0660);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 32), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(file_mode("tpm2-00.permall"), 0660);
	cr_assert_eq(file_mode(".lock"), 0660);
	store_fini(&st);
	remove_dir();
	make_dir();

	umask(022);
	init_store(&st, true, 0660);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 32), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(file_mode("tpm2-00.permall"), 0640);
	cr_assert_eq(file_mode(".lock"), 0640);
	store_fini(&st);
	free(p);
}

Test(store, load_forces_mode)
{
	struct store st;
	uint8_t *p = pattern(32, 3), *out = NULL;
	size_t olen;
	char path[256];

	umask(077);
	init_store(&st, true, 0666);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 32), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(file_mode("tpm2-00.permall"), 0600);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), 0);
	cr_assert_eq(file_mode("tpm2-00.permall"), 0666, "fchmod on load bypasses umask");
	free(out);

	path_of(path, sizeof(path), "tpm2-00.permall");
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_eq(store_load_raw(&st, STORE_PERMALL, &out, &olen), 0);
	cr_assert_eq(file_mode("tpm2-00.permall"), 0666);
	free(out);
	store_fini(&st);
	free(p);
}

/* ---- pending records --------------------------------------------------------- */

Test(store, pending_then_load)
{
	struct store st;
	uint8_t *a = pattern(300, 4), *b = pattern(200, 5), *out = NULL, *exp = NULL;
	size_t olen, elen, sz;

	init_store(&st, true, 0640);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), -ENOENT);
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &sz), -ENOENT);

	cr_assert_eq(store_save(&st, STORE_PERMALL, a, 300), 0);
	cr_assert(store_has_pending(&st));
	cr_assert_not(file_exists("tpm2-00.permall"), "save does no I/O");
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), 0);
	cr_assert_eq(olen, 300);
	cr_assert_arr_eq(out, a, 300);
	free(out);
	cr_assert_eq(store_load_raw(&st, STORE_PERMALL, &out, &olen), 0);
	cr_assert_eq(container_wrap_file(a, 300, &exp, &elen), 0);
	cr_assert_eq(olen, elen);
	cr_assert_arr_eq(out, exp, elen);
	free(out);
	free(exp);
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &sz), 0);
	cr_assert_eq(sz, 316);

	/* latest wins */
	cr_assert_eq(store_save(&st, STORE_PERMALL, b, 200), 0);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), 0);
	cr_assert_eq(olen, 200);
	cr_assert_arr_eq(out, b, 200);
	free(out);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_not(store_has_pending(&st));
	assert_file_is("tpm2-00.permall", b, 200);

	/* a pending delete hides the file on disk */
	cr_assert_eq(store_delete(&st, STORE_PERMALL), 0);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), -ENOENT);
	cr_assert_eq(store_load_raw(&st, STORE_PERMALL, &out, &olen), -ENOENT);
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &sz), -ENOENT);
	cr_assert(file_exists("tpm2-00.permall"));
	/* and a newer write beats the delete */
	cr_assert_eq(store_save(&st, STORE_PERMALL, a, 300), 0);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), 0);
	cr_assert_eq(olen, 300);
	free(out);
	cr_assert_eq(store_delete(&st, STORE_PERMALL), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_not(file_exists("tpm2-00.permall"));
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), -ENOENT);

	cr_assert_eq(store_save(&st, STORE_NITEMS, a, 1), -EINVAL);
	cr_assert_eq(store_delete(&st, STORE_NITEMS), -EINVAL);
	cr_assert_eq(store_load(&st, STORE_NITEMS, &out, &olen), -EINVAL);
	store_fini(&st);
	free(a);
	free(b);
}

/* ---- sync flush ---------------------------------------------------------------- */

Test(store, flush_sync_exact_bytes)
{
	struct store st;
	uint8_t *p = pattern(1299, 6), *v = pattern(8970, 7), *out = NULL;
	size_t olen, sz;

	init_store(&st, true, 0640);
	cr_assert_eq(store_flush_sync(&st), 0, "nothing pending is fine");
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 1299), 0);
	cr_assert_eq(store_save(&st, STORE_VOLATILE, v, 8970), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_not(store_has_pending(&st));
	assert_file_is("tpm2-00.permall", p, 1299);
	assert_file_is("tpm2-00.volatilestate", v, 8970);
	assert_no_tmp();
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &sz), 0);
	cr_assert_eq(sz, 1315);
	cr_assert_eq(store_item_size(&st, STORE_VOLATILE, &sz), 0);
	cr_assert_eq(sz, 8986);
	cr_assert_eq(store_item_size(&st, STORE_SAVESTATE, &sz), -ENOENT);
	cr_assert_eq(store_load(&st, STORE_VOLATILE, &out, &olen), 0);
	cr_assert_eq(olen, 8970);
	cr_assert_arr_eq(out, v, 8970);
	free(out);
	store_fini(&st);

	/* a fresh store reads what the first one wrote */
	init_store(&st, true, 0640);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), 0);
	cr_assert_eq(olen, 1299);
	cr_assert_arr_eq(out, p, 1299);
	free(out);
	store_fini(&st);
	free(p);
	free(v);
}

Test(store, flush_sync_without_fsync)
{
	struct store st;
	uint8_t *p = pattern(64, 8);

	setenv("VTPM_NO_FSYNC", "1", 1);
	init_store(&st, true, 0640);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 64), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	assert_file_is("tpm2-00.permall", p, 64);
	store_fini(&st);
	free(p);
}

Test(store, delete_flush)
{
	struct store st;
	uint8_t *p = pattern(64, 9);

	init_store(&st, false, 0640);
	cr_assert_eq(store_delete(&st, STORE_SAVESTATE), 0);
	cr_assert_eq(store_flush_sync(&st), 0, "deleting a missing file is fine");
	cr_assert_not(store_has_pending(&st));
	cr_assert_eq(store_save(&st, STORE_SAVESTATE, p, 64), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert(file_exists("tpm-00.savestate"));
	cr_assert_eq(store_delete(&st, STORE_SAVESTATE), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_not(file_exists("tpm-00.savestate"));
	store_fini(&st);
	free(p);
}

Test(store, flush_sync_failure_tmp_is_directory)
{
	struct store st;
	uint8_t *p = pattern(64, 10), *v = pattern(10, 11), *out = NULL;
	char path[256];
	size_t olen;

	/* Root ignores permissions, so make the TMP name unusable instead. */
	path_of(path, sizeof(path), "TMP2-00.volatilestate");
	cr_assert_eq(mkdir(path, 0700), 0);
	init_store(&st, true, 0640);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 64), 0);
	cr_assert_eq(store_save(&st, STORE_VOLATILE, v, 10), 0);
	cr_assert_eq(store_flush_sync(&st), -EISDIR);
	cr_assert(store_has_pending(&st));
	cr_assert_eq(st.pending[STORE_PERMALL].op, STORE_OP_WRITE, "all records stay pending");
	cr_assert_eq(st.pending[STORE_VOLATILE].op, STORE_OP_WRITE);
	cr_assert_not(file_exists("tpm2-00.volatilestate"));
	cr_assert_eq(store_load(&st, STORE_VOLATILE, &out, &olen), 0, "still served from memory");
	cr_assert_eq(olen, 10);
	free(out);

	cr_assert_eq(rmdir(path), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_not(store_has_pending(&st));
	assert_file_is("tpm2-00.permall", p, 64);
	assert_file_is("tpm2-00.volatilestate", v, 10);
	assert_no_tmp();
	store_fini(&st);
	free(p);
	free(v);
}

Test(store, flush_sync_failure_rename_removes_tmp)
{
	struct store st;
	uint8_t *p = pattern(64, 12);
	char path[256];

	/* a non-empty directory under the final name makes rename() fail */
	path_of(path, sizeof(path), "tpm2-00.permall");
	cr_assert_eq(mkdir(path, 0700), 0);
	write_whole("tpm2-00.permall/x", "x", 1);
	init_store(&st, true, 0640);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 64), 0);
	cr_assert_lt(store_flush_sync(&st), 0);
	cr_assert(store_has_pending(&st));
	assert_no_tmp();
	store_fini(&st);
	free(p);
}

Test(store, flush_sync_failure_directory_gone)
{
	struct store st;
	uint8_t *p = pattern(64, 13);

	init_store(&st, true, 0640);
	cr_assert_eq(store_prepare(&st), 0);
	remove_dir(); /* dirfd now refers to a deleted directory */
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 64), 0);
	cr_assert_eq(store_flush_sync(&st), -ENOENT);
	cr_assert(store_has_pending(&st));
	store_fini(&st);
	free(p);
}

/* ---- loading odd files ------------------------------------------------------- */

Test(store, load_damaged_and_legacy)
{
	struct store st;
	uint8_t legacy[] = { 0x00, 0x03, 0xab, 0x36, 0x47, 0x23, 1, 2, 3 };
	/* valid header, no TLV 1 */
	uint8_t notlv1[] = { 2, 1, 0, 10, 0, 0, 0, 0, 0, 16, 0, 2, 0, 0, 0, 0 };
	uint8_t *out = NULL;
	size_t olen, sz;
	char path[256];

	init_store(&st, true, 0640);
	write_whole("tpm2-00.permall", legacy, sizeof(legacy));
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), 0, "0.7.1 legacy file");
	cr_assert_eq(olen, sizeof(legacy));
	cr_assert_arr_eq(out, legacy, sizeof(legacy));
	free(out);

	write_whole("tpm2-00.permall", notlv1, sizeof(notlv1));
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), -EBADMSG);
	cr_assert_eq(store_load_raw(&st, STORE_PERMALL, &out, &olen), 0);
	cr_assert_eq(olen, sizeof(notlv1));
	free(out);

	write_whole("tpm2-00.volatilestate", "", 0);
	cr_assert_eq(store_load(&st, STORE_VOLATILE, &out, &olen), 0);
	cr_assert_eq(olen, 0);
	free(out);

	/* non-regular files: error, not "absent"; a FIFO must not hang */
	path_of(path, sizeof(path), "tpm2-00.savestate");
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(store_load(&st, STORE_SAVESTATE, &out, &olen), -EINVAL);
	cr_assert_eq(store_item_size(&st, STORE_SAVESTATE, &sz), -EINVAL);
	cr_assert_eq(file_mode("tpm2-00.savestate"), 0600, "no chmod of non-files");
	store_fini(&st);
}

/* ---- io_uring ------------------------------------------------------------------ */

static void ring_init(struct io_uring *ring, unsigned entries, unsigned nfiles)
{
	int r = io_uring_queue_init(entries, ring, 0);

	if (r == -EPERM || r == -ENOSYS)
		cr_skip_test("io_uring_setup unavailable here (%s)", strerror(-r));
	cr_assert_eq(r, 0, "io_uring_queue_init: %s", strerror(-r));
	r = io_uring_register_files_sparse(ring, nfiles);
	cr_assert_eq(r, 0, "register_files_sparse: %s", strerror(-r));
}

struct drain {
	int chain_cqes;
	int chain_err;
	int done_at;	/* index of the CQE at which store_flush_cqe returned 1 */
	int tail_at;	/* index of the tail CQE, -1 if none */
	int tail_res;
	int neg[32];	/* chain CQE results, in order */
};

/* Wait for every CQE of a submitted chain (tag 1) and an optional tail (tag 2). */
static void drain_ring(struct io_uring *ring, struct store *st, int expect, bool tail,
		       struct drain *d)
{
	int total = expect + (tail ? 1 : 0);

	memset(d, 0, sizeof(*d));
	d->done_at = d->tail_at = -1;
	for (int i = 0; i < total; i++) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_sec = 10 };
		int r = io_uring_wait_cqe_timeout(ring, &cqe, &ts);

		cr_assert_eq(r, 0, "waiting for CQE %d: %s", i, strerror(-r));
		if (cqe->user_data == 1) {
			int err = 0, fin;

			cr_assert_lt(d->chain_cqes, 32);
			d->neg[d->chain_cqes++] = cqe->res;
			fin = store_flush_cqe(st, cqe->res, &err);
			cr_assert_geq(fin, 0);
			if (fin == 1) {
				cr_assert_eq(d->done_at, -1);
				d->done_at = i;
				d->chain_err = err;
			}
		} else {
			cr_assert_eq(cqe->user_data, 2);
			d->tail_at = i;
			d->tail_res = cqe->res;
		}
		io_uring_cqe_seen(ring, cqe);
	}
	cr_assert_eq(d->chain_cqes, expect);
}

static void queue_tail_nop(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	cr_assert_not_null(sqe);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, 2);
}

Test(store, uring_flush_matches_sync)
{
	struct io_uring ring;
	struct store st, ref;
	struct drain d;
	uint8_t *p = pattern(1299, 20), *v = pattern(8970, 21);
	char refdir[64], refuri[96];
	int n;

	ring_init(&ring, 64, STORE_URING_SLOTS);
	init_store(&st, true, 0640);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 1299), 0);
	cr_assert_eq(store_save(&st, STORE_VOLATILE, v, 8970), 0);
	n = store_flush_prep_uring(&st, &ring, 1, true);
	cr_assert_eq(n, 11, "2 x (open, write, fsync, close, rename) + dir fsync, got %d", n);
	cr_assert(store_busy(&st));
	cr_assert_not(store_has_pending(&st));
	queue_tail_nop(&ring);
	cr_assert_eq(io_uring_submit(&ring), n + 1);
	drain_ring(&ring, &st, n, true, &d);

	for (int i = 0; i < n; i++)
		cr_assert_geq(d.neg[i], 0, "CQE %d: %s", i, strerror(-d.neg[i]));
	cr_assert_eq(d.chain_err, 0);
	cr_assert_eq(d.done_at, n - 1);
	cr_assert_eq(d.tail_at, n, "linked NOP must complete after the whole chain");
	cr_assert_eq(d.tail_res, 0);
	cr_assert_not(store_busy(&st));
	cr_assert_not(store_has_pending(&st));
	assert_file_is("tpm2-00.permall", p, 1299);
	assert_file_is("tpm2-00.volatilestate", v, 8970);
	assert_no_tmp();
	cr_assert_eq(file_mode("tpm2-00.permall") & ~0022u, 0640 & ~0022u);

	/* the same records through the sync path give identical files */
	strcpy(refdir, "/tmp/vtpm-store-ref-XXXXXX");
	cr_assert_not_null(mkdtemp(refdir));
	snprintf(refuri, sizeof(refuri), "dir://%s", refdir);
	cr_assert_eq(store_init(&ref, refuri, true, 0640), 0);
	cr_assert_eq(store_save(&ref, STORE_PERMALL, p, 1299), 0);
	cr_assert_eq(store_save(&ref, STORE_VOLATILE, v, 8970), 0);
	cr_assert_eq(store_flush_sync(&ref), 0);
	for (int i = 0; i < 2; i++) {
		const char *name = store_file_name(&st, (enum store_item)i, false);
		char a[256], b[256], cmd[600];

		snprintf(a, sizeof(a), "%s/%s", g_dir, name);
		snprintf(b, sizeof(b), "%s/%s", refdir, name);
		snprintf(cmd, sizeof(cmd), "cmp -s %s %s", a, b);
		cr_assert_eq(system(cmd), 0, "%s differs", name);
	}
	store_fini(&ref);
	snprintf(refuri, sizeof(refuri), "rm -rf %s", refdir);
	cr_assert_eq(system(refuri), 0);

	/* a second flush on the same ring reuses the slots */
	cr_assert_eq(store_save(&st, STORE_PERMALL, v, 5000), 0);
	n = store_flush_prep_uring(&st, &ring, 1, false);
	cr_assert_eq(n, 6);
	cr_assert_eq(io_uring_submit(&ring), n);
	drain_ring(&ring, &st, n, false, &d);
	cr_assert_eq(d.chain_err, 0);
	assert_file_is("tpm2-00.permall", v, 5000);

	store_fini(&st);
	io_uring_queue_exit(&ring);
	free(p);
	free(v);
}

Test(store, uring_nothing_pending)
{
	struct io_uring ring;
	struct store st;
	int err = 0;

	ring_init(&ring, 8, STORE_URING_SLOTS);
	init_store(&st, true, 0640);
	cr_assert_eq(store_flush_prep_uring(&st, &ring, 1, true), 0);
	cr_assert_eq(io_uring_sq_ready(&ring), 0);
	cr_assert_eq(store_flush_cqe(&st, 0, &err), -EINVAL, "no chain in flight");
	/* deleting an absent file needs no I/O at all */
	cr_assert_eq(store_delete(&st, STORE_VOLATILE), 0);
	cr_assert_eq(store_flush_prep_uring(&st, &ring, 1, true), 0);
	cr_assert_eq(io_uring_sq_ready(&ring), 0);
	cr_assert_not(store_has_pending(&st));
	cr_assert_not(store_busy(&st));
	store_fini(&st);
	io_uring_queue_exit(&ring);
}

Test(store, uring_delete_and_write)
{
	struct io_uring ring;
	struct store st;
	struct drain d;
	uint8_t *p = pattern(100, 22);
	int n;

	ring_init(&ring, 16, STORE_URING_SLOTS);
	init_store(&st, false, 0640);
	cr_assert_eq(store_save(&st, STORE_SAVESTATE, p, 100), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert(file_exists("tpm-00.savestate"));

	cr_assert_eq(store_delete(&st, STORE_SAVESTATE), 0);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 50), 0);
	cr_assert_eq(store_delete(&st, STORE_VOLATILE), 0); /* absent: dropped */
	n = store_flush_prep_uring(&st, &ring, 1, true);
	cr_assert_eq(n, 7, "write(5) + unlink + dir fsync, got %d", n);
	queue_tail_nop(&ring);
	cr_assert_eq(io_uring_submit(&ring), n + 1);
	drain_ring(&ring, &st, n, true, &d);
	cr_assert_eq(d.chain_err, 0);
	cr_assert_eq(d.tail_at, n);
	cr_assert_not(file_exists("tpm-00.savestate"));
	assert_file_is("tpm-00.permall", p, 50);
	cr_assert_not(store_has_pending(&st));
	store_fini(&st);
	io_uring_queue_exit(&ring);
	free(p);
}

Test(store, uring_failure_requeues)
{
	struct io_uring ring;
	struct store st;
	struct drain d;
	uint8_t *p = pattern(100, 23), *q = pattern(60, 24), *out = NULL;
	char path[256];
	size_t olen;
	int n;

	ring_init(&ring, 32, STORE_URING_SLOTS);
	path_of(path, sizeof(path), "TMP2-00.permall");
	cr_assert_eq(mkdir(path, 0700), 0);
	init_store(&st, true, 0640);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 100), 0);
	cr_assert_eq(store_save(&st, STORE_VOLATILE, q, 60), 0);
	n = store_flush_prep_uring(&st, &ring, 1, true);
	cr_assert_eq(n, 11);
	queue_tail_nop(&ring);
	cr_assert_eq(io_uring_submit(&ring), n + 1);
	drain_ring(&ring, &st, n, true, &d);
	cr_assert_eq(d.neg[0], -EISDIR, "openat of the TMP name: %d", d.neg[0]);
	for (int i = 1; i < n; i++)
		cr_assert_eq(d.neg[i], -ECANCELED, "CQE %d: %d", i, d.neg[i]);
	cr_assert_eq(d.chain_err, -EISDIR, "first real error, not -ECANCELED");
	cr_assert_eq(d.tail_res, -ECANCELED, "the linked tail must not run");
	cr_assert_not(store_busy(&st));
	cr_assert_eq(st.pending[STORE_PERMALL].op, STORE_OP_WRITE);
	cr_assert_eq(st.pending[STORE_VOLATILE].op, STORE_OP_WRITE);
	cr_assert_eq(st.inflight[STORE_PERMALL].op, STORE_OP_NONE);
	cr_assert_not(file_exists("tpm2-00.permall"));
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), 0);
	cr_assert_eq(olen, 100);
	free(out);

	/* retry after the obstacle is gone */
	cr_assert_eq(rmdir(path), 0);
	n = store_flush_prep_uring(&st, &ring, 1, false);
	cr_assert_eq(n, 11);
	cr_assert_eq(io_uring_submit(&ring), n);
	drain_ring(&ring, &st, n, false, &d);
	cr_assert_eq(d.chain_err, 0);
	assert_file_is("tpm2-00.permall", p, 100);
	assert_file_is("tpm2-00.volatilestate", q, 60);
	assert_no_tmp();
	store_fini(&st);
	io_uring_queue_exit(&ring);
	free(p);
	free(q);
}

Test(store, uring_failure_keeps_newer_pending)
{
	struct io_uring ring;
	struct store st;
	struct drain d;
	uint8_t *a = pattern(100, 25), *b = pattern(70, 26);
	char path[256], x[256];
	int n;

	ring_init(&ring, 32, STORE_URING_SLOTS);
	/* rename onto a non-empty directory fails late in the chain */
	path_of(path, sizeof(path), "tpm2-00.permall");
	cr_assert_eq(mkdir(path, 0700), 0);
	write_whole("tpm2-00.permall/x", "x", 1);
	init_store(&st, true, 0640);
	cr_assert_eq(store_save(&st, STORE_PERMALL, a, 100), 0);
	n = store_flush_prep_uring(&st, &ring, 1, false);
	cr_assert_eq(n, 6);
	/* a newer record arrives while the chain is in flight */
	cr_assert_eq(store_save(&st, STORE_PERMALL, b, 70), 0);
	cr_assert_eq(io_uring_submit(&ring), n);
	drain_ring(&ring, &st, n, false, &d);
	cr_assert_lt(d.chain_err, 0);
	cr_assert_neq(d.chain_err, -ECANCELED);
	assert_no_tmp();
	cr_assert_eq(st.pending[STORE_PERMALL].len, 70 + 16, "the newer record wins");
	cr_assert_eq(st.inflight[STORE_PERMALL].op, STORE_OP_NONE);

	path_of(x, sizeof(x), "tpm2-00.permall/x");
	cr_assert_eq(unlink(x), 0);
	cr_assert_eq(rmdir(path), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	assert_file_is("tpm2-00.permall", b, 70);
	store_fini(&st);
	io_uring_queue_exit(&ring);
	free(a);
	free(b);
}

Test(store, uring_no_space)
{
	struct io_uring ring;
	struct store st;
	uint8_t *p = pattern(10, 27);

	ring_init(&ring, 4, STORE_URING_SLOTS);
	init_store(&st, true, 0640);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 10), 0);
	cr_assert_eq(store_flush_prep_uring(&st, &ring, 1, false), -ENOSPC);
	cr_assert_eq(io_uring_sq_space_left(&ring), 4, "nothing queued");
	cr_assert_eq(io_uring_sq_ready(&ring), 0);
	cr_assert_not(store_busy(&st));
	cr_assert(store_has_pending(&st));
	cr_assert_eq(st.pending[STORE_PERMALL].op, STORE_OP_WRITE);
	store_fini(&st);
	io_uring_queue_exit(&ring);
	free(p);
}

Test(store, uring_busy_and_inflight_reads)
{
	struct io_uring ring;
	struct store st;
	struct drain d;
	uint8_t *a = pattern(100, 28), *b = pattern(90, 29), *out = NULL;
	size_t olen, sz;
	int n;

	ring_init(&ring, 32, STORE_URING_SLOTS);
	init_store(&st, true, 0640);
	cr_assert_eq(store_save(&st, STORE_PERMALL, a, 100), 0);
	n = store_flush_prep_uring(&st, &ring, 1, false);
	cr_assert_eq(n, 6);
	cr_assert_eq(store_flush_prep_uring(&st, &ring, 1, false), -EBUSY);
	cr_assert_eq(store_flush_sync(&st), -EBUSY);
	/* not on disk yet, but readable from the in-flight record */
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), 0);
	cr_assert_eq(olen, 100);
	cr_assert_arr_eq(out, a, 100);
	free(out);
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &sz), 0);
	cr_assert_eq(sz, 116);
	cr_assert_eq(store_save(&st, STORE_PERMALL, b, 90), 0);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &out, &olen), 0);
	cr_assert_eq(olen, 90, "pending beats inflight");
	free(out);

	cr_assert_eq(io_uring_submit(&ring), n);
	drain_ring(&ring, &st, n, false, &d);
	cr_assert_eq(d.chain_err, 0);
	assert_file_is("tpm2-00.permall", a, 100);
	cr_assert(store_has_pending(&st), "newer record still to be written");
	n = store_flush_prep_uring(&st, &ring, 1, false);
	cr_assert_eq(n, 6);
	cr_assert_eq(io_uring_submit(&ring), n);
	drain_ring(&ring, &st, n, false, &d);
	cr_assert_eq(d.chain_err, 0);
	assert_file_is("tpm2-00.permall", b, 90);
	store_fini(&st);
	io_uring_queue_exit(&ring);
	free(a);
	free(b);
}

Test(store, uring_slot_base)
{
	struct io_uring ring;
	struct store st;
	struct drain d;
	uint8_t *p = pattern(40, 30);
	int n;

	ring_init(&ring, 32, 8);
	init_store(&st, true, 0640);
	st.uring_slot_base = 5; /* slots 5..7 */
	cr_assert_eq(store_save(&st, STORE_SAVESTATE, p, 40), 0);
	n = store_flush_prep_uring(&st, &ring, 1, false);
	cr_assert_eq(n, 6);
	cr_assert_eq(io_uring_submit(&ring), n);
	drain_ring(&ring, &st, n, false, &d);
	cr_assert_eq(d.chain_err, 0);
	assert_file_is("tpm2-00.savestate", p, 40);

	/* a slot outside the registered table fails cleanly and keeps the record */
	st.uring_slot_base = 6; /* savestate -> slot 8, table has 0..7 */
	cr_assert_eq(store_save(&st, STORE_SAVESTATE, p, 20), 0);
	n = store_flush_prep_uring(&st, &ring, 1, false);
	cr_assert_eq(io_uring_submit(&ring), n);
	drain_ring(&ring, &st, n, false, &d);
	cr_assert_lt(d.chain_err, 0);
	cr_assert_eq(st.pending[STORE_SAVESTATE].op, STORE_OP_WRITE);
	assert_file_is("tpm2-00.savestate", p, 40);
	assert_no_tmp();
	store_fini(&st);
	io_uring_queue_exit(&ring);
	free(p);
}

Test(store, uring_without_fsync)
{
	struct io_uring ring;
	struct store st;
	struct drain d;
	uint8_t *p = pattern(40, 31);
	int n;

	ring_init(&ring, 16, STORE_URING_SLOTS);
	setenv("VTPM_NO_FSYNC", "1", 1);
	init_store(&st, true, 0640);
	unsetenv("VTPM_NO_FSYNC");
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 40), 0);
	n = store_flush_prep_uring(&st, &ring, 1, true);
	cr_assert_eq(n, 4, "open, write, close, rename");
	queue_tail_nop(&ring);
	cr_assert_eq(io_uring_submit(&ring), n + 1);
	drain_ring(&ring, &st, n, true, &d);
	cr_assert_eq(d.chain_err, 0);
	cr_assert_eq(d.tail_at, n);
	assert_file_is("tpm2-00.permall", p, 40);
	store_fini(&st);
	io_uring_queue_exit(&ring);
	free(p);
}

/* ---- real swtpm 0.7.1 peer ------------------------------------------------------ */

static pid_t spawn_swtpm(bool tpm2)
{
	char state[128], ctrl[128], sock[128];
	pid_t pid;

	snprintf(state, sizeof(state), "dir=%s", g_dir);
	snprintf(ctrl, sizeof(ctrl), "type=unixio,path=%s/c", g_dir);
	snprintf(sock, sizeof(sock), "type=unixio,path=%s/s", g_dir);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		if (tpm2)
			execlp("swtpm", "swtpm", "socket", "--tpm2", "--tpmstate", state,
			       "--ctrl", ctrl, "--server", sock, "--flags",
			       "not-need-init,startup-clear", (char *)NULL);
		else
			execlp("swtpm", "swtpm", "socket", "--tpmstate", state, "--ctrl", ctrl,
			       "--server", sock, "--flags", "not-need-init,startup-clear",
			       (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Run swtpm_ioctl --unix D/c -s with a deadline. */
static int swtpm_shutdown(void)
{
	char ctrl[128];
	int status = 0;
	pid_t pid;

	snprintf(ctrl, sizeof(ctrl), "%s/c", g_dir);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execlp("swtpm_ioctl", "swtpm_ioctl", "--unix", ctrl, "-s", (char *)NULL);
		_exit(127);
	}
	if (wait_child(pid, 10000, &status) < 0)
		return -ETIMEDOUT;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool have_swtpm(void)
{
	return access("/usr/bin/swtpm", X_OK) == 0 && access("/usr/bin/swtpm_ioctl", X_OK) == 0;
}

static void peer_roundtrip(bool tpm2)
{
	const char *name = tpm2 ? "tpm2-00.permall" : "tpm-00.permall";
	const uint8_t magic2[] = { 0x00, 0x03, 0xab, 0x36, 0x47, 0x23 };
	const uint8_t magic12[] = { 0x00, 0x01, 0x00, 0x22 };
	struct store st;
	uint8_t *file, *pl = NULL, *raw = NULL, *re = NULL;
	size_t flen, plen, rlen, relen, sz;
	int status = 0, r;
	pid_t pid;
	char ctrl[128];
	struct stat sb;
	bool up = false;

	if (!have_swtpm())
		cr_skip_test("swtpm 0.7.1 not installed");
	pid = spawn_swtpm(tpm2);
	snprintf(ctrl, sizeof(ctrl), "%s/c", g_dir);
	for (int i = 0; i < 500 && !up; i++) {
		up = stat(ctrl, &sb) == 0 && file_exists(name);
		if (!up) {
			if (waitpid(pid, &status, WNOHANG) == pid)
				cr_assert_fail("swtpm exited early (status %d)", status);
			usleep(10000);
		}
	}
	if (!up) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		cr_assert_fail("swtpm did not come up within 5 s");
	}

	/* swtpm holds .lock while it runs */
	init_store(&st, tpm2, 0640);
	cr_assert_eq(store_prepare(&st), -EAGAIN);

	r = swtpm_shutdown();
	cr_assert_eq(r, 0, "swtpm_ioctl -s: %d", r);
	r = wait_child(pid, 10000, &status);
	cr_assert_eq(r, 0, "swtpm did not exit after CMD_SHUTDOWN");

	cr_assert_eq(store_prepare(&st), 0);
	file = read_whole(name, &flen);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &pl, &plen), 0);
	cr_assert_eq(plen + 16, flen);
	if (tpm2)
		cr_assert_arr_eq(pl, magic2, sizeof(magic2));
	else
		cr_assert_arr_eq(pl, magic12, sizeof(magic12));
	cr_assert_eq(store_load_raw(&st, STORE_PERMALL, &raw, &rlen), 0);
	cr_assert_eq(rlen, flen);
	cr_assert_arr_eq(raw, file, flen);
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &sz), 0);
	cr_assert_eq(sz, flen);
	cr_assert_eq(store_item_size(&st, STORE_VOLATILE, &sz), -ENOENT);

	/* re-wrapping gives swtpm's bytes exactly, and so does a flush */
	cr_assert_eq(container_wrap_file(pl, plen, &re, &relen), 0);
	cr_assert_eq(relen, flen);
	cr_assert_arr_eq(re, file, flen);
	cr_assert_eq(store_save(&st, STORE_PERMALL, pl, plen), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	free(re);
	re = read_whole(name, &relen);
	cr_assert_eq(relen, flen);
	cr_assert_arr_eq(re, file, flen);
	store_fini(&st);

	free(file);
	free(pl);
	free(raw);
	free(re);
}

Test(store, swtpm_peer_tpm2, .timeout = 60)
{
	peer_roundtrip(true);
}

Test(store, swtpm_peer_tpm12, .timeout = 60)
{
	peer_roundtrip(false);
}

Test(store, swtpm_cannot_start_while_we_hold_the_lock, .timeout = 60)
{
	struct store st;
	int status = 0, r;
	pid_t pid;

	if (!have_swtpm())
		cr_skip_test("swtpm 0.7.1 not installed");
	init_store(&st, true, 0640);
	cr_assert_eq(store_prepare(&st), 0);
	pid = spawn_swtpm(true);
	r = wait_child(pid, 10000, &status);
	cr_assert_eq(r, 0, "swtpm kept running although the directory is locked");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1,
		  "swtpm should fail its start-up (status %d)", status);
	cr_assert_not(file_exists("tpm2-00.permall"));
	store_fini(&st);
}
