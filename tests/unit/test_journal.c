/* Unit tests of the permall journal: writes land in alternating slots, recovery
 * after a crash, swtpm's file brought up to date by sync-out, a file replaced by
 * someone else wins, torn slots, states too large for a slot, the io_uring path. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/container.h"
#include "instance/store.h"

static char dir[] = "/tmp/vtpm-journal-XXXXXX";
static char uri[64];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(uri, sizeof(uri), "dir://%s", dir);
	setenv("VTPM_JOURNAL", "1", 1);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

TestSuite(journal, .init = setup, .fini = teardown);

static void open_store(struct store *st)
{
	cr_assert_eq(store_init(st, uri, true, 0640), 0);
	cr_assert_eq(store_prepare(st), 0);
	cr_assert(st->journal_ok, "journal in use");
}

static void save_flush(struct store *st, const char *text)
{
	cr_assert_eq(store_save(st, STORE_PERMALL, (const uint8_t *)text, strlen(text)), 0);
	cr_assert_eq(store_flush_sync(st), 0);
}

static void expect_load(struct store *st, const char *text)
{
	uint8_t *p = NULL;
	size_t n = 0;

	cr_assert_eq(store_load(st, STORE_PERMALL, &p, &n), 0);
	cr_assert_eq(n, strlen(text), "len %zu want %zu", n, strlen(text));
	cr_assert_eq(memcmp(p, text, n), 0);
	free(p);
}

static bool file_exists(const char *name)
{
	char path[128];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &sb) == 0;
}

/* The permall file's payload, as swtpm would read it. */
static void expect_file(const char *text)
{
	char path[128];
	uint8_t buf[512], *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/tpm2-00.permall", dir);
	f = fopen(path, "rb");
	cr_assert_not_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	cr_assert_eq(container_unwrap_file(buf, n, &p, &n), 0);
	cr_assert_eq(n, strlen(text));
	cr_assert_eq(memcmp(p, text, n), 0);
	free(p);
}

Test(journal, writes_go_to_the_journal_not_the_file)
{
	struct store st;

	open_store(&st);
	save_flush(&st, "state-A");
	/* the first state creates swtpm's file; the journal sits on top of it and
	 * is itself created with its first slot */
	expect_file("state-A");
	cr_assert_not(file_exists(".vtpm-tpm2-00.permall.journal"));
	save_flush(&st, "state-B");
	cr_assert(file_exists(".vtpm-tpm2-00.permall.journal"));
	expect_load(&st, "state-B");
	expect_file("state-A"); /* one pwrite, no file rewrite */
	cr_assert_not(file_exists("TMP2-00.permall"));
	store_fini(&st);
}

Test(journal, recovers_after_a_crash)
{
	struct store st;
	size_t size;

	open_store(&st);
	save_flush(&st, "state-A");
	save_flush(&st, "state-B");
	save_flush(&st, "state-C");
	store_fini(&st); /* no sync-out: as after kill -9 */
	open_store(&st);
	expect_load(&st, "state-C");
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &size), 0);
	cr_assert_gt(size, strlen("state-C"));
	store_fini(&st);
}

Test(journal, sync_out_writes_swtpm_file)
{
	struct store st;

	open_store(&st);
	save_flush(&st, "state-A");
	save_flush(&st, "state-B");
	cr_assert_eq(store_sync_out(&st), 0);
	expect_file("state-B");
	cr_assert_not(st.journal.dirty);
	store_fini(&st);
	open_store(&st);
	cr_assert_not(st.journal.dirty, "the marker says the file is current");
	expect_load(&st, "state-B");
	/* more changes after a sync-out land in the journal again */
	save_flush(&st, "state-C");
	store_fini(&st);
	open_store(&st);
	expect_load(&st, "state-C");
	expect_file("state-B");
	store_fini(&st);
}

Test(journal, file_replaced_by_someone_else_wins)
{
	struct store st;
	char path[128];
	uint8_t *c;
	size_t n;
	FILE *f;

	open_store(&st);
	save_flush(&st, "state-A");
	cr_assert_eq(store_sync_out(&st), 0);
	save_flush(&st, "state-B"); /* newer than the file ... */
	store_fini(&st);
	/* ... but then swtpm ran on the directory and wrote its own state */
	cr_assert_eq(container_wrap_file((const uint8_t *)"swtpm-X", 7, &c, &n), 0);
	snprintf(path, sizeof(path), "%s/TMPX", dir);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(c, 1, n, f), n);
	fclose(f);
	free(c);
	{
		char final[128];

		snprintf(final, sizeof(final), "%s/tpm2-00.permall", dir);
		cr_assert_eq(rename(path, final), 0);
	}
	open_store(&st);
	expect_load(&st, "swtpm-X");
	store_fini(&st);
}

Test(journal, torn_newest_slot_falls_back)
{
	struct store st;
	char path[128];
	uint8_t b = 0xff;
	size_t slot;
	int fd;

	open_store(&st);
	save_flush(&st, "state-0"); /* the permall file */
	save_flush(&st, "state-A"); /* seq 1 -> slot 1 */
	save_flush(&st, "state-B"); /* seq 2 -> slot 0 */
	slot = st.journal.slot_size;
	store_fini(&st);
	snprintf(path, sizeof(path), "%s/.vtpm-tpm2-00.permall.journal", dir);
	fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	/* damage the data of the newest slot (slot 0) */
	cr_assert_eq(pwrite(fd, &b, 1, JOURNAL_HDR_SIZE + 12), 1);
	close(fd);
	open_store(&st);
	expect_load(&st, "state-A");
	cr_assert_gt(slot, 0);
	store_fini(&st);
}

Test(journal, state_larger_than_a_slot)
{
	struct store st;
	size_t big = JOURNAL_MIN_SLOT + 1000;
	uint8_t *payload = malloc(big), *p;
	size_t n;

	cr_assert_not_null(payload);
	memset(payload, 'x', big);
	open_store(&st);
	save_flush(&st, "small");
	cr_assert_eq(store_save(&st, STORE_PERMALL, payload, big), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert(file_exists("tpm2-00.permall"), "too large for a slot: swtpm's file");
	cr_assert(st.journal_ok);
	cr_assert_gt(st.journal.slot_size, big, "the journal grew");
	cr_assert_eq(store_load(&st, STORE_PERMALL, &p, &n), 0);
	cr_assert_eq(n, big);
	free(p);
	/* and the next change is journaled again */
	cr_assert_eq(store_save(&st, STORE_PERMALL, payload, big - 1), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	store_fini(&st);
	open_store(&st);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &p, &n), 0);
	cr_assert_eq(n, big - 1, "recovered from the journal");
	free(p);
	store_fini(&st);
	free(payload);
}

Test(journal, io_uring_path_is_two_sqes)
{
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	struct store st;
	int r, err = 0, done = 0, n;

	r = io_uring_queue_init(16, &ring, 0);
	if (r == -EPERM || r == -ENOSYS)
		cr_skip_test("io_uring not available: %s", strerror(-r));
	cr_assert_eq(r, 0);
	cr_assert_eq(io_uring_register_files_sparse(&ring, 4), 0);
	open_store(&st);
	save_flush(&st, "first");
	cr_assert_eq(store_save(&st, STORE_PERMALL, (const uint8_t *)"ring-A", 6), 0);
	n = store_flush_prep_uring(&st, &ring, 7, false);
	cr_assert_eq(n, 2, "pwrite + fdatasync, got %d", n);
	cr_assert_eq(io_uring_submit(&ring), 2);
	while (!done) {
		cr_assert_eq(io_uring_wait_cqe(&ring, &cqe), 0);
		cr_assert_eq(cqe->user_data, 7);
		done = store_flush_cqe(&st, cqe->res, &err);
		io_uring_cqe_seen(&ring, cqe);
	}
	cr_assert_eq(err, 0);
	cr_assert_not(store_has_pending(&st));
	expect_load(&st, "ring-A");
	store_fini(&st);
	open_store(&st);
	expect_load(&st, "ring-A");
	expect_file("first");
	store_fini(&st);
	io_uring_queue_exit(&ring);
}

Test(journal, disabled_by_env)
{
	struct store st;

	setenv("VTPM_JOURNAL", "0", 1);
	cr_assert_eq(store_init(&st, uri, true, 0640), 0);
	cr_assert_eq(store_prepare(&st), 0);
	cr_assert_not(st.journal_ok);
	save_flush(&st, "plain");
	expect_file("plain");
	cr_assert_not(file_exists(".vtpm-tpm2-00.permall.journal"));
	store_fini(&st);
}

/* Found by tests/fuzz/fuzz_journal.c: a journal whose newest slot is not at the
 * index its sequence number would put it (slots swapped by some tool) had that
 * newest slot overwritten by the next write, so a crash during that write lost
 * it. The next write must go to the other slot. */
Test(journal, next_write_spares_newest_slot_at_odd_index)
{
	struct store st;
	char path[128];
	uint8_t *file, b = 0xff;
	size_t slot;
	struct stat sb;
	int fd;

	open_store(&st);
	save_flush(&st, "state-0"); /* the permall file */
	save_flush(&st, "state-A"); /* seq 1 -> slot 1 */
	save_flush(&st, "state-B"); /* seq 2 -> slot 0 */
	slot = st.journal.slot_size;
	store_fini(&st);

	/* swap the slots: seq 2 at index 1, seq 1 at index 0 */
	snprintf(path, sizeof(path), "%s/.vtpm-tpm2-00.permall.journal", dir);
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	cr_assert_eq((size_t)sb.st_size, 2 * slot);
	file = malloc(2 * slot);
	cr_assert_not_null(file);
	cr_assert_eq(pread(fd, file, slot, slot), (ssize_t)slot);
	cr_assert_eq(pread(fd, file + slot, slot, 0), (ssize_t)slot);
	cr_assert_eq(pwrite(fd, file, 2 * slot, 0), (ssize_t)(2 * slot));
	close(fd);

	open_store(&st);
	expect_load(&st, "state-B");
	save_flush(&st, "state-C");
	store_fini(&st);

	/* a crash tore the write of state-C: B must still be there */
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, file, 2 * slot, 0), (ssize_t)(2 * slot));
	{
		uint8_t *c = memmem(file, 2 * slot, "state-C", 7);

		cr_assert_not_null(c);
		cr_assert_lt((size_t)(c - file) / slot, 2);
		cr_assert_eq((size_t)(c - file) / slot, 0, "state-C went to the other slot");
		cr_assert_eq(pwrite(fd, &b, 1, c - file), 1);
	}
	close(fd);
	free(file);
	open_store(&st);
	expect_load(&st, "state-B");
	store_fini(&st);
}
