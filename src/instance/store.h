/* State store: where libtpms' NVRAM callbacks land. Writes are only recorded here
 * (no I/O on the command path); the loop makes them durable before the response. */
#ifndef VTPM_STORE_H
#define VTPM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto/keys.h"
#include "instance/journal.h"

struct io_uring;

/* The three state items libtpms knows (TPM_PERMANENT_ALL_NAME etc.). */
enum store_item { STORE_PERMALL = 0, STORE_VOLATILE, STORE_SAVESTATE, STORE_NITEMS };

enum store_op { STORE_OP_NONE = 0, STORE_OP_WRITE, STORE_OP_DELETE };

/* Fixed-file slots one store uses in an io_uring flush: uring_slot_base + item. */
#define STORE_URING_SLOTS STORE_NITEMS

struct store_pending {
	enum store_op op;
	uint8_t *data; /* full container bytes (what goes on disk) */
	size_t len;
};

struct store {
	char *dir;	/* directory of the dir:// backend */
	bool tpm2;	/* selects tpm2-00.* / tpm-00.* names */
	mode_t mode;	/* file mode for created/loaded files */
	int dirfd;	/* open directory (O_RDONLY|O_DIRECTORY), -1 until prepared */
	int lockfd;	/* .lock with an fcntl write lock, -1 until locked */
	struct store_pending pending[STORE_NITEMS];	/* not yet submitted */
	struct store_pending inflight[STORE_NITEMS];	/* submitted to io_uring */
	unsigned inflight_sqes; /* CQEs still expected for the inflight chain */
	int inflight_err;	/* first error seen in the inflight chain */
	bool fsync_disabled;	/* test/bench knob: VTPM_NO_FSYNC=1 */
	unsigned uring_slot_base; /* first of STORE_URING_SLOTS fixed-file slots (default 0) */
	/* permall goes through the journal (one pwrite + fdatasync per change);
	 * VTPM_JOURNAL=0 writes swtpm's file every time instead. */
	bool use_journal;
	bool journal_ok;
	const struct vtpm_key *key; /* --key: state files encrypted with it, or NULL */
	bool inflight_journal;	 /* the inflight permall record is a journal slot */
	bool journal_reset_due;	 /* permall file rewritten: rebase the journal after flush */
	size_t journal_rebase_len;
	struct journal journal;
};

/* Map a libtpms name ("permall", "volatilestate", "savestate") to an item; -EINVAL. */
int store_item_from_name(const char *name);
const char *store_item_name(enum store_item item);
/* File name inside the directory: "tpm2-00.permall", or with `tmp` "TMP2-00.permall"
 * (tpm-00.* / TMP-00.* for TPM 1.2). Static storage; NULL for a bad item. */
const char *store_file_name(const struct store *st, enum store_item item, bool tmp);

/* Set up from a backend URI (dir://PATH); no I/O yet. -EINVAL for a bad or
 * unsupported URI (-ENOTSUP for file://, not implemented yet). */
int store_init(struct store *st, const char *uri, bool tpm2, mode_t mode);
void store_fini(struct store *st);

/* First storage access: open the directory and take .lock (swtpm semantics:
 * non-blocking fcntl write lock, kept until store_fini). Idempotent. -EAGAIN if
 * another process holds the lock, -ENOENT if the directory does not exist.
 * The lock is an open-file-description lock (F_OFD_SETLK): it conflicts with
 * swtpm's F_SETLK lock in both directions, and unlike a POSIX lock it also
 * excludes a second store in this process and is not dropped when some other fd
 * of .lock in this process is closed. Load/flush/size call this implicitly. */
int store_prepare(struct store *st);

/* Read one item and return its plain libtpms payload (malloc'ed, caller frees).
 * A pending write/delete is seen first. -ENOENT: item does not exist;
 * -EBADMSG: container damaged; other -errno: I/O error. Loading forces the
 * configured mode onto the file (fchmod), as swtpm does. */
int store_load(struct store *st, enum store_item item, uint8_t **payload, size_t *len);

/* Raw container bytes of an item as stored (pending first). Same errors. */
int store_load_raw(struct store *st, enum store_item item, uint8_t **data, size_t *len);

/* Record a write of a plain payload (wrapped into the container here) or a
 * deletion. The latest record per item wins. -ENOMEM. */
int store_save(struct store *st, enum store_item item, const uint8_t *payload, size_t len);
int store_delete(struct store *st, enum store_item item);

bool store_has_pending(const struct store *st);
bool store_busy(const struct store *st); /* an io_uring flush is in flight */

/* Make every pending record durable with blocking syscalls: write TMP file,
 * fsync, rename, fsync directory (or unlink + fsync directory). On failure the
 * records stay pending so the next flush retries. 0 or -errno. */
int store_flush_sync(struct store *st);

/* Queue the same work on io_uring as one linked chain and return how many SQEs
 * were queued (0 if nothing pending). Every SQE carries user_data `tag`. With
 * `link_tail` the chain's last SQE has IOSQE_IO_LINK set, so the next SQE the
 * caller queues (the response send) runs only once the state is on disk.
 * -EBUSY if a chain is in flight, -ENOSPC if the ring has no room (then nothing
 * was queued).
 * Ring requirements: a sparse fixed-file table covering slots uring_slot_base ..
 * uring_slot_base + STORE_URING_SLOTS - 1 (io_uring_register_files_sparse(ring, N),
 * N >= base + 3); stores sharing a ring need disjoint bases. The chain (and a
 * linked tail) must go to the kernel in one io_uring_submit. Per write: OPENAT
 * (direct, slot base+item) -> WRITE -> FSYNC(datasync) -> CLOSE(direct) -> RENAMEAT;
 * per delete of an existing file: UNLINKAT (a file already absent is dropped at
 * prep time, so ENOENT never breaks the chain); then FSYNC of the directory.
 * The fsyncs are left out when fsync_disabled. */
int store_flush_prep_uring(struct store *st, struct io_uring *ring, uint64_t tag,
			   bool link_tail);

/* Feed every CQE carrying the chain's tag. Returns 1 when the chain is complete
 * (then *err is its first error, records re-queued as pending on failure), 0
 * while CQEs are outstanding, -EINVAL if no chain is in flight. A chain that only
 * saw -ECANCELED (a short write breaks a link without a negative result) reports
 * -EIO. Do not store_fini while store_busy(): the kernel still uses the buffers. */
int store_flush_cqe(struct store *st, int res, int *err);

/* Bring swtpm's own files up to date (the state leaves our hands: clean stop,
 * CMD_STOP, blob export): flush what is pending, then rewrite the permall file
 * from the journal if the journal is newer. 0 or -errno. */
int store_sync_out(struct store *st);

/* For --print-states: container size of an item, -ENOENT if absent. */
int store_item_size(struct store *st, enum store_item item, size_t *size);

#endif
