/* State store front end and the dir:// backend: swtpm-compatible file names, .lock,
 * container-wrapped files; writes are recorded in memory and made durable by a sync
 * or an io_uring flush. file:// (swtpm's linear file) lives in store_linear.c. */
#include "instance/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "crypto/container.h"
#include "crypto/state_codec.h"
#include "instance/store_linear.h"
#include "io/fullio.h"

/* swtpm 0.8 retries a storage lock every 10 ms. */
#define STORE_LOCK_RETRY_NS (10 * 1000 * 1000)

/* swtpm requires strlen(dir) + 20 <= FILENAME_MAX (TPM_FILENAME_MAX). */
#define STORE_FILENAME_RESERVE 20

/* Refuse to slurp absurd files: libtpms states are tens of KB, and a container's
 * totlen is a u32 anyway. Protects against OOM from a bogus or hostile file. */
#define STORE_MAX_FILE ((off_t)64 << 20)

static const char *const store_item_names[STORE_NITEMS] = {
	[STORE_PERMALL] = "permall",
	[STORE_VOLATILE] = "volatilestate",
	[STORE_SAVESTATE] = "savestate",
};

/* Static storage on purpose: io_uring reads the path strings when the SQEs are
 * submitted, which happens after store_flush_prep_uring returns. */
static const char *const store_final_names[2][STORE_NITEMS] = {
	{ "tpm-00.permall", "tpm-00.volatilestate", "tpm-00.savestate" },
	{ "tpm2-00.permall", "tpm2-00.volatilestate", "tpm2-00.savestate" },
};
static const char *const store_tmp_names[2][STORE_NITEMS] = {
	{ "TMP-00.permall", "TMP-00.volatilestate", "TMP-00.savestate" },
	{ "TMP2-00.permall", "TMP2-00.volatilestate", "TMP2-00.savestate" },
};

static bool store_item_valid(int item)
{
	return item >= 0 && item < STORE_NITEMS;
}

int store_item_from_name(const char *name)
{
	if (!name)
		return -EINVAL;
	for (int i = 0; i < STORE_NITEMS; i++)
		if (strcmp(name, store_item_names[i]) == 0)
			return i;
	return -EINVAL;
}

const char *store_item_name(enum store_item item)
{
	return store_item_valid((int)item) ? store_item_names[item] : NULL;
}

const char *store_file_name(const struct store *st, enum store_item item, bool tmp)
{
	if (!store_item_valid((int)item))
		return NULL;
	return tmp ? store_tmp_names[st->tpm2][item] : store_final_names[st->tpm2][item];
}

static void store_record_clear(struct store_pending *rec)
{
	free(rec->data);
	rec->data = NULL;
	rec->len = 0;
	rec->op = STORE_OP_NONE;
}

/* Replace a record, taking ownership of `data`. */
static void store_record_set(struct store_pending *rec, enum store_op op, uint8_t *data,
			     size_t len)
{
	store_record_clear(rec);
	rec->op = op;
	rec->data = data;
	rec->len = len;
}

int store_init(struct store *st, const char *uri, bool tpm2, mode_t mode)
{
	const char *path, *env;
	int r;

	memset(st, 0, sizeof(*st));
	st->dirfd = -1;
	st->lockfd = -1;
	st->lin.fd = -1;
	st->journal.fd = -1;

	if (!uri)
		return -EINVAL;
	if (mode & ~(mode_t)0777)
		return -EINVAL;
	env = getenv("VTPM_NO_FSYNC");
	st->fsync_disabled = env && strcmp(env, "1") == 0;
	st->tpm2 = tpm2;
	st->mode = mode;

	if (strncmp(uri, "file://", 7) == 0) {
		path = uri + 7;
		if (*path == '\0' || strlen(path) >= FILENAME_MAX)
			return -EINVAL;
		/* The journal is a dir:// thing: the linear file is its own format. */
		r = store_linear_init(st, path);
		if (r < 0)
			store_linear_fini(st);
		return r;
	}
	if (strncmp(uri, "dir://", 6) != 0)
		return -EINVAL;
	path = uri + 6;
	if (*path == '\0' || strlen(path) + STORE_FILENAME_RESERVE > FILENAME_MAX)
		return -EINVAL;

	st->dir = strdup(path);
	if (!st->dir)
		return -ENOMEM;
	env = getenv("VTPM_JOURNAL");
	st->use_journal = !(env && strcmp(env, "0") == 0);
	return 0;
}

bool store_is_linear(const struct store *st)
{
	return st->backend == STORE_BACKEND_LINEAR;
}

void store_fini(struct store *st)
{
	for (int i = 0; i < STORE_NITEMS; i++) {
		store_record_clear(&st->pending[i]);
		store_record_clear(&st->inflight[i]);
	}
	st->inflight_sqes = 0;
	st->inflight_err = 0;
	journal_close(&st->journal);
	st->journal_ok = false;
	/* Closing the only fd of the open file description drops the OFD lock. */
	if (st->lockfd >= 0)
		close(st->lockfd);
	if (st->dirfd >= 0)
		close(st->dirfd);
	st->lockfd = -1;
	st->dirfd = -1;
	free(st->dir);
	st->dir = NULL;
	if (store_is_linear(st))
		store_linear_fini(st);
}

int store_lock_fd(int fd)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0, /* whole file, like swtpm */
	};

	/* OFD locks conflict with swtpm's classic POSIX lock, and are owned by this
	 * open file description instead of the whole process (see store.h). */
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EINVAL) {
		/* Kernel without OFD locks (< 3.15): fall back to swtpm's call. */
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
	}
	if (errno == EACCES || errno == EAGAIN)
		return -EAGAIN;
	return -errno;
}

int store_prepare(struct store *st)
{
	int dfd = st->dirfd, lfd = -1, r;

	if (store_is_linear(st))
		return store_linear_prepare(st);
	if (dfd >= 0 && (st->lockfd >= 0 || st->lock_deferred))
		return 0;
	if (!st->dir)
		return -EINVAL;

	/* The directory is never created (only CUSE does that, in its INIT). */
	if (dfd < 0) {
		dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return -errno;
	}
	if (st->lock_deferred) {
		/* Reading only: no .lock, and no journal (opening it may write). */
		st->dirfd = dfd;
		return 0;
	}
	lfd = openat(dfd, ".lock", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		     0660);
	if (lfd < 0) {
		r = -errno;
		goto out;
	}
	r = st->no_lock ? 0 : store_lock_fd(lfd);
	if (r < 0)
		goto out;

	st->dirfd = dfd;
	st->lockfd = lfd;
	st->lock_was_held = true;
	/* Without a usable journal every permall change rewrites swtpm's file,
	 * which is slower but just as durable. */
	if (st->use_journal && !st->journal_ok)
		st->journal_ok = journal_open(&st->journal, dfd, st->tpm2,
					      store_file_name(st, STORE_PERMALL, false),
					      st->mode) == 0;
	return 0;
out:
	if (lfd >= 0)
		close(lfd);
	if (dfd != st->dirfd)
		close(dfd);
	return r;
}

bool store_locked(const struct store *st)
{
	return store_is_linear(st) ? st->lin.locked : st->lockfd >= 0;
}

int store_lock(struct store *st)
{
	bool deferred = st->lock_deferred;
	int r;

	st->lock_deferred = false;
	r = store_prepare(st);
	if (r < 0) {
		st->lock_deferred = deferred; /* still not ours: go on reading only */
		return r;
	}
	st->relock_retries = 0;
	return 0;
}

int store_lock_retry(struct store *st, unsigned retries)
{
	const struct timespec ts = { 0, STORE_LOCK_RETRY_NS };
	int r;

	for (unsigned tries = 0;; tries++) {
		r = store_lock(st);
		if (r != -EAGAIN || tries >= retries)
			return r;
		nanosleep(&ts, NULL);
	}
}

/* Writing needs the lock: while deferred, the first write takes it. */
static int store_prepare_write(struct store *st)
{
	return st->lock_deferred ? store_lock(st) : store_prepare(st);
}

/* The newest record for an item: pending beats inflight beats the disk. */
static const struct store_pending *store_current(const struct store *st,
						 enum store_item item)
{
	if (st->pending[item].op != STORE_OP_NONE)
		return &st->pending[item];
	if (st->inflight[item].op != STORE_OP_NONE)
		return &st->inflight[item];
	return NULL;
}

/* Read the whole file like swtpm (open, fchmod, fstat, read). *data malloc'ed. */
static int store_read_file(struct store *st, enum store_item item, uint8_t **data,
			   size_t *len)
{
	struct stat sb;
	uint8_t *buf = NULL;
	size_t size, got = 0;
	int fd, r;

	r = store_prepare(st);
	if (r < 0)
		return r;

	/* O_NONBLOCK only so that a FIFO planted under the name cannot hang the
	 * open; it has no effect on regular files. */
	fd = openat(st->dirfd, store_file_name(st, item, false),
		    O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno; /* ENOENT: first start */

	if (fstat(fd, &sb) < 0) {
		r = -errno;
		goto out;
	}
	/* A FIFO, device or directory would block, never end or fail the read;
	 * swtpm never expects one (and we do not want to chmod it). */
	if (!S_ISREG(sb.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	/* swtpm forces the configured mode on every load, bypassing the umask. */
	if (fchmod(fd, st->mode) < 0) {
		r = -errno;
		goto out;
	}
	if (sb.st_size > STORE_MAX_FILE) {
		r = -EFBIG;
		goto out;
	}
	size = (size_t)sb.st_size;
	buf = malloc(size ? size : 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0) {
			r = -EIO; /* shrank under us: same as swtpm's short read */
			goto out;
		}
		got += (size_t)n;
	}
	*data = buf;
	*len = size;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}

/* Container bytes of an item; *owned says whether the caller must free *data
 * (false: borrowed from a pending/inflight record). */
static int store_get_raw(struct store *st, enum store_item item, const uint8_t **data,
			 size_t *len, bool *owned)
{
	const struct store_pending *rec = store_current(st, item);
	uint8_t *buf = NULL;
	int r;

	if (rec) {
		if (rec->op == STORE_OP_DELETE)
			return -ENOENT;
		*data = rec->data;
		*len = rec->len;
		*owned = false;
		return 0;
	}
	if (store_is_linear(st)) {
		r = store_linear_read(st, item, &buf, len);
		if (r < 0)
			return r;
		*data = buf;
		*owned = true;
		return 0;
	}
	r = store_prepare(st);
	if (r < 0)
		return r;
	if (item == STORE_PERMALL && st->journal_ok && st->journal.current) {
		*data = st->journal.current;
		*len = st->journal.current_len;
		*owned = false;
		return 0;
	}
	r = store_read_file(st, item, &buf, len);
	if (r < 0)
		return r;
	*data = buf;
	*owned = true;
	return 0;
}

int store_load_raw(struct store *st, enum store_item item, uint8_t **data, size_t *len)
{
	const uint8_t *raw;
	size_t raw_len;
	bool owned;
	uint8_t *copy;
	int r;

	if (!store_item_valid((int)item))
		return -EINVAL;
	r = store_get_raw(st, item, &raw, &raw_len, &owned);
	if (r < 0)
		return r;
	if (owned) {
		*data = (uint8_t *)raw;
		*len = raw_len;
		return 0;
	}
	copy = malloc(raw_len ? raw_len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, raw, raw_len);
	*data = copy;
	*len = raw_len;
	return 0;
}

int store_load(struct store *st, enum store_item item, uint8_t **payload, size_t *len)
{
	const uint8_t *raw;
	size_t raw_len;
	bool owned;
	int r;

	if (!store_item_valid((int)item))
		return -EINVAL;
	r = store_get_raw(st, item, &raw, &raw_len, &owned);
	if (r < 0)
		return r;
	r = state_file_decode(st->key, raw, raw_len, payload, len);
	/* -ENOENT from the codec means "TLV missing", not "no such item". */
	if (r < 0 && r != -ENOMEM)
		r = -EBADMSG;
	if (owned)
		free((uint8_t *)raw);
	return r;
}

int store_save(struct store *st, enum store_item item, const uint8_t *payload, size_t len)
{
	uint8_t *data;
	size_t dlen;
	int r;

	if (!store_item_valid((int)item))
		return -EINVAL;
	r = state_file_encode(st->key, payload, len, &data, &dlen);
	if (r < 0)
		return r;
	store_record_set(&st->pending[item], STORE_OP_WRITE, data, dlen);
	return 0;
}

int store_delete(struct store *st, enum store_item item)
{
	if (!store_item_valid((int)item))
		return -EINVAL;
	store_record_set(&st->pending[item], STORE_OP_DELETE, NULL, 0);
	return 0;
}

bool store_has_pending(const struct store *st)
{
	for (int i = 0; i < STORE_NITEMS; i++)
		if (st->pending[i].op != STORE_OP_NONE)
			return true;
	return false;
}

void store_drop_pending(struct store *st)
{
	for (int i = 0; i < STORE_NITEMS; i++)
		store_record_clear(&st->pending[i]);
}

bool store_busy(const struct store *st)
{
	return st->inflight_sqes > 0;
}

/* TMP file -> write -> fdatasync -> close -> rename; the temp file is removed on
 * any failure so a retry starts clean. */
static int store_write_file(struct store *st, enum store_item item, const uint8_t *data,
			    size_t len)
{
	const char *tmp = store_file_name(st, item, true);
	int fd, r;

	fd = openat(st->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    st->mode);
	if (fd < 0)
		return -errno;
	r = fio_write_all(fd, data, len);
	/* fdatasync is enough: a freshly written file's size is data-relevant metadata. */
	if (r == 0 && !st->fsync_disabled && fdatasync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(st->dirfd, tmp, st->dirfd, store_file_name(st, item, false)) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(st->dirfd, tmp, 0);
	return r;
}

/* Put the journal on top of the permall file just written: a marker slot when
 * the state still fits the slots, a new larger journal when it outgrew them. */
static int store_journal_rebase(struct store *st, size_t len)
{
	struct journal_base base;
	int r;

	if (len + JOURNAL_HDR_SIZE > st->journal.slot_size) {
		r = journal_reset(&st->journal, st->dirfd, st->tpm2, len, st->mode);
		if (r == 0)
			r = journal_stat_base(st->dirfd, store_file_name(st, STORE_PERMALL, false),
					      &st->journal.base);
	} else {
		r = journal_stat_base(st->dirfd, store_file_name(st, STORE_PERMALL, false), &base);
		if (r == 0 && !journal_has_slots(&st->journal)) {
			/* No slot can name an older file: the new base is enough. */
			st->journal.base = base;
			return 0;
		}
		if (r == 0)
			r = journal_stage_marker(&st->journal, &base);
		if (r == 0) {
			r = journal_write_sync(&st->journal, !st->fsync_disabled);
			if (r == 0)
				journal_commit(&st->journal, NULL, 0);
			else
				journal_abort(&st->journal);
		}
	}
	if (r < 0) {
		journal_close(&st->journal);
		st->journal_ok = false; /* keep going on swtpm's file alone */
	}
	return r;
}

/* The journal applies only on top of an existing permall file: the first state
 * (a freshly manufactured TPM) and states too large for a slot go to swtpm's
 * file, so that the file is never missing or behind by more than the journal. */
static bool store_journal_fits(const struct store *st, size_t len)
{
	return st->journal_ok && st->journal.base.ino != 0 &&
	       len + JOURNAL_HDR_SIZE <= st->journal.slot_size;
}

int store_flush_sync(struct store *st)
{
	int r;

	if (store_busy(st))
		return -EBUSY;
	if (!store_has_pending(st))
		return 0;
	r = store_prepare_write(st);
	if (r < 0)
		return r;
	if (store_is_linear(st)) {
		/* One pass over all records; on failure they all stay pending and
		 * the retry starts again from the header on disk. */
		r = store_linear_flush(st);
		if (r < 0)
			return r;
		for (int i = 0; i < STORE_NITEMS; i++)
			store_record_clear(&st->pending[i]);
		return 0;
	}

	/* Records are only dropped once the directory fsync succeeded: a failure
	 * anywhere leaves all of them pending, and redoing an already-renamed item
	 * on the next flush is harmless. A journal write is complete on its own. */
	for (int i = 0; i < STORE_NITEMS; i++) {
		struct store_pending *p = &st->pending[i];

		if (p->op == STORE_OP_WRITE && i == STORE_PERMALL &&
		    store_journal_fits(st, p->len)) {
			r = journal_stage(&st->journal, p->data, p->len);
			if (r == 0) {
				r = journal_write_sync(&st->journal, !st->fsync_disabled);
				if (r < 0) {
					journal_abort(&st->journal);
					return r;
				}
				journal_commit(&st->journal, p->data, p->len);
				p->op = STORE_OP_NONE; /* the journal owns the data now */
				p->data = NULL;
				p->len = 0;
				continue;
			}
			return r;
		}
		if (p->op == STORE_OP_WRITE && i == STORE_PERMALL && st->journal_ok) {
			st->journal_reset_due = true;
			st->journal_rebase_len = p->len;
		}
		if (p->op == STORE_OP_WRITE) {
			r = store_write_file(st, (enum store_item)i, p->data, p->len);
			if (r < 0)
				return r;
		} else if (p->op == STORE_OP_DELETE) {
			if (unlinkat(st->dirfd, store_file_name(st, (enum store_item)i, false),
				     0) < 0 && errno != ENOENT)
				return -errno;
		}
	}
	/* One directory fsync makes every rename/unlink of the batch durable. */
	if (store_has_pending(st) && !st->fsync_disabled && fsync(st->dirfd) < 0)
		return -errno;

	for (int i = 0; i < STORE_NITEMS; i++)
		store_record_clear(&st->pending[i]);
	if (st->journal_reset_due) {
		st->journal_reset_due = false;
		store_journal_rebase(st, st->journal_rebase_len);
	}
	return 0;
}

int store_prepare_journal(struct store *st)
{
	int r;

	if (store_is_linear(st) || !st->use_journal || st->dirfd < 0)
		return 0;
	/* The journal sits on top of a permall file: after the first state was
	 * written (a manufacture) it has to be opened again. */
	if (!st->journal_ok) {
		r = journal_open(&st->journal, st->dirfd, st->tpm2,
				 store_file_name(st, STORE_PERMALL, false), st->mode);
		if (r < 0)
			return r;
		st->journal_ok = true;
	}
	return journal_ensure_file(&st->journal);
}

/* Does the final file exist? Used to keep ENOENT out of a linked chain. */
static bool store_file_exists(const struct store *st, enum store_item item)
{
	struct stat sb;

	if (fstatat(st->dirfd, store_file_name(st, item, false), &sb, AT_SYMLINK_NOFOLLOW) == 0)
		return true;
	/* On any other error queue the unlink anyway and let it report. */
	return errno != ENOENT;
}

static struct io_uring_sqe *store_get_sqe(struct io_uring *ring, uint64_t tag)
{
	/* Cannot fail: space was checked up front. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	io_uring_sqe_set_data64(sqe, tag);
	return sqe;
}

int store_flush_prep_uring(struct store *st, struct io_uring *ring, uint64_t tag,
			   bool link_tail)
{
	bool do_unlink[STORE_NITEMS] = { false };
	bool via_journal = false, classic = false;
	unsigned per_write = st->fsync_disabled ? 4 : 5;
	unsigned need = 0, queued = 0;
	struct io_uring_sqe *sqe = NULL;
	int r;

	if (store_busy(st))
		return -EBUSY;
	if (!store_has_pending(st))
		return 0;
	if (store_is_linear(st)) {
		/* A few pwrites into one file and a single fdatasync: done here,
		 * before the caller queues the response, so nothing is linked. */
		r = store_flush_sync(st);
		return r < 0 ? r : 0;
	}
	r = store_prepare_write(st);
	if (r < 0)
		return r;

	/* Plan first, so that -ENOSPC leaves everything untouched. */
	for (int i = 0; i < STORE_NITEMS; i++) {
		if (st->pending[i].op == STORE_OP_WRITE && i == STORE_PERMALL &&
		    store_journal_fits(st, st->pending[i].len)) {
			via_journal = true;
			need += st->fsync_disabled ? 1 : 2;
		} else if (st->pending[i].op == STORE_OP_WRITE) {
			need += per_write;
			classic = true;
			if (i == STORE_PERMALL && st->journal_ok) {
				st->journal_reset_due = true;
				st->journal_rebase_len = st->pending[i].len;
			}
		} else if (st->pending[i].op == STORE_OP_DELETE) {
			/* An UNLINKAT failing with ENOENT would cancel the rest of the
			 * chain; we hold the lock, so the directory cannot change under
			 * us between this check and the submission. */
			do_unlink[i] = store_file_exists(st, (enum store_item)i);
			if (do_unlink[i]) {
				need += 1;
				classic = true;
			}
		}
	}
	if (classic && !st->fsync_disabled)
		need += 1;
	if (need > io_uring_sq_space_left(ring))
		return -ENOSPC;
	if (via_journal) {
		r = journal_stage(&st->journal, st->pending[STORE_PERMALL].data,
				  st->pending[STORE_PERMALL].len);
		if (r < 0)
			return r;
	}

	for (int i = 0; i < STORE_NITEMS; i++) {
		struct store_pending *p = &st->pending[i];
		enum store_item item = (enum store_item)i;
		const char *tmp = store_file_name(st, item, true);
		const char *final = store_file_name(st, item, false);
		unsigned slot = st->uring_slot_base + (unsigned)i;

		if (p->op == STORE_OP_WRITE && i == STORE_PERMALL && via_journal) {
			struct journal *j = &st->journal;

			sqe = store_get_sqe(ring, tag);
			io_uring_prep_write(sqe, j->fd, j->wbuf, (unsigned)j->wlen, (uint64_t)j->woff);
			sqe->flags |= IOSQE_IO_LINK;
			queued++;
			if (!st->fsync_disabled) {
				sqe = store_get_sqe(ring, tag);
				io_uring_prep_fsync(sqe, j->fd, IORING_FSYNC_DATASYNC);
				sqe->flags |= IOSQE_IO_LINK;
				queued++;
			}
		} else if (p->op == STORE_OP_WRITE) {
			/* No O_CLOEXEC: the kernel rejects it for direct descriptors. */
			sqe = store_get_sqe(ring, tag);
			io_uring_prep_openat_direct(sqe, st->dirfd, tmp,
						    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW,
						    st->mode, slot);
			sqe->flags |= IOSQE_IO_LINK;

			sqe = store_get_sqe(ring, tag);
			io_uring_prep_write(sqe, (int)slot, p->data, (unsigned)p->len, 0);
			sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;

			if (!st->fsync_disabled) {
				sqe = store_get_sqe(ring, tag);
				io_uring_prep_fsync(sqe, (int)slot, IORING_FSYNC_DATASYNC);
				sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;
			}

			sqe = store_get_sqe(ring, tag);
			io_uring_prep_close_direct(sqe, slot);
			sqe->flags |= IOSQE_IO_LINK;

			sqe = store_get_sqe(ring, tag);
			io_uring_prep_renameat(sqe, st->dirfd, tmp, st->dirfd, final, 0);
			sqe->flags |= IOSQE_IO_LINK;
			queued += per_write;
		} else if (p->op == STORE_OP_DELETE && do_unlink[i]) {
			sqe = store_get_sqe(ring, tag);
			io_uring_prep_unlinkat(sqe, st->dirfd, final, 0);
			sqe->flags |= IOSQE_IO_LINK;
			queued++;
		}

		if (p->op == STORE_OP_WRITE || do_unlink[i]) {
			/* The kernel uses the buffer until the chain completes. */
			st->inflight[i] = *p;
			p->op = STORE_OP_NONE;
			p->data = NULL;
			p->len = 0;
		} else {
			/* Deleting what is not there: done without any I/O. */
			store_record_clear(p);
		}
	}
	if (classic && queued > 0 && !st->fsync_disabled) {
		sqe = store_get_sqe(ring, tag);
		io_uring_prep_fsync(sqe, st->dirfd, 0);
		sqe->flags |= IOSQE_IO_LINK;
		queued++;
	}
	if (queued == 0)
		return 0;
	if (!link_tail)
		sqe->flags &= (uint8_t)~IOSQE_IO_LINK;

	st->inflight_sqes = queued;
	st->inflight_err = 0;
	st->inflight_journal = via_journal;
	return (int)queued;
}

int store_flush_cqe(struct store *st, int res, int *err)
{
	int e;

	if (st->inflight_sqes == 0)
		return -EINVAL;

	/* Keep the first real error; -ECANCELED only says an earlier link broke. */
	if (res < 0 && (st->inflight_err == 0 ||
			(st->inflight_err == -ECANCELED && res != -ECANCELED)))
		st->inflight_err = res;
	if (--st->inflight_sqes > 0)
		return 0;

	e = st->inflight_err;
	/* Only cancellations: a short write broke the chain with a positive result. */
	if (e == -ECANCELED)
		e = -EIO;
	st->inflight_err = 0;

	if (st->inflight_journal) {
		struct store_pending *in = &st->inflight[STORE_PERMALL];

		st->inflight_journal = false;
		if (e < 0) {
			journal_abort(&st->journal);
		} else {
			journal_commit(&st->journal, in->data, in->len);
			in->op = STORE_OP_NONE;
			in->data = NULL;
			in->len = 0;
		}
	}
	for (int i = 0; i < STORE_NITEMS; i++) {
		struct store_pending *in = &st->inflight[i];

		if (in->op == STORE_OP_NONE)
			continue;
		if (e < 0 && in->op == STORE_OP_WRITE && !(i == STORE_PERMALL && st->journal_ok)) {
			/* The chain is over, nothing in the kernel touches the name now. */
			unlinkat(st->dirfd, store_file_name(st, (enum store_item)i, true), 0);
		}
		if (e < 0 && st->pending[i].op == STORE_OP_NONE) {
			st->pending[i] = *in; /* retry on the next flush */
			in->op = STORE_OP_NONE;
			in->data = NULL;
			in->len = 0;
		} else {
			store_record_clear(in); /* done, or superseded by a newer record */
		}
	}
	if (st->journal_reset_due) {
		st->journal_reset_due = false;
		if (e == 0)
			store_journal_rebase(st, st->journal_rebase_len);
	}
	*err = e;
	return 1;
}

int store_sync_out(struct store *st)
{
	int r;

	if (store_busy(st))
		return -EBUSY;
	r = store_flush_sync(st);
	if (r < 0 || store_is_linear(st) || !st->journal_ok || !st->journal.dirty)
		return r;
	r = store_write_file(st, STORE_PERMALL, st->journal.current, st->journal.current_len);
	if (r == 0 && !st->fsync_disabled && fsync(st->dirfd) < 0)
		r = -errno;
	/* The marker records which file the journal now sits on; if it is lost,
	 * the older slots name the previous file and so the new file still wins. */
	if (r == 0)
		r = store_journal_rebase(st, st->journal.current_len);
	return r;
}

int store_item_size(struct store *st, enum store_item item, size_t *size)
{
	const struct store_pending *rec;
	struct stat sb;
	int r;

	if (!store_item_valid((int)item))
		return -EINVAL;
	rec = store_current(st, item);
	if (rec) {
		if (rec->op == STORE_OP_DELETE)
			return -ENOENT;
		*size = rec->len;
		return 0;
	}
	if (store_is_linear(st))
		return store_linear_size(st, item, size);
	r = store_prepare(st);
	if (r < 0)
		return r;
	if (item == STORE_PERMALL && st->journal_ok && st->journal.current) {
		*size = st->journal.current_len;
		return 0;
	}
	if (fstatat(st->dirfd, store_file_name(st, item, false), &sb, 0) < 0)
		return -errno;
	/* swtpm's check_state: anything but a regular file is an error, not "absent". */
	if (!S_ISREG(sb.st_mode))
		return -EINVAL;
	*size = (size_t)sb.st_size;
	return 0;
}

int store_unlock(struct store *st)
{
	int r;

	if (store_busy(st))
		return -EBUSY;
	/* Whoever takes the storage over reads swtpm's files: make them current. */
	r = store_sync_out(st);
	if (r < 0)
		return r;
	if (store_is_linear(st)) {
		store_linear_unlock(st);
	} else {
		/* The journal is reopened (and re-validated against the permall file
		 * the other owner may have replaced) when the lock is taken again. */
		journal_close(&st->journal);
		st->journal_ok = false;
		if (st->lockfd >= 0)
			close(st->lockfd);
		st->lockfd = -1;
	}
	st->lock_deferred = true;
	return 0;
}
