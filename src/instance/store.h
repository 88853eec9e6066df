/* State store: where libtpms' NVRAM callbacks land. Writes are only recorded here
 * (no I/O on the command path); the loop makes them durable before the response.
 * Two backends behind one API: dir:// (swtpm's files in a directory, store.c) and
 * file:// (swtpm's linear single-file layout on a file or block device,
 * store_linear.c). */
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

enum store_backend { STORE_BACKEND_DIR = 0, STORE_BACKEND_LINEAR };

/* The file:// backend's own state (store_linear.c). */
struct store_linear {
	char *path;	/* the file or block device */
	int fd;		/* open (O_RDWR), -1 until prepared or when absent */
	bool blockdev;	/* a block device: used as it is, never resized */
	bool locked;	/* fd holds the OFD write lock on the file itself */
};

struct store {
	enum store_backend backend;
	struct store_linear lin; /* file:// only */
	/* Storage lock policy (swtpm 0.8, ctrl-channel.md §10). While lock_deferred
	 * the store opens its storage without locking and only reads (a pending
	 * --migration incoming, or after store_unlock); store_lock() takes the lock,
	 * and so does the first flush, since the state is only ever written under it. */
	bool lock_deferred;
	bool lock_was_held;	 /* the lock was taken at least once */
	unsigned relock_retries; /* owner's policy: 10 ms retries for re-taking it */
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
	bool no_lock; /* --tpmstate ...,lock=false: the operator coordinates access */
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

/* Set up from a backend URI, dir://PATH or file://PATH; no I/O yet. -EINVAL for
 * a bad or unsupported URI. `mode` applies to dir:// only (swtpm ignores mode=
 * for file://: the file is created 0640 minus the umask). */
int store_init(struct store *st, const char *uri, bool tpm2, mode_t mode);
void store_fini(struct store *st);
bool store_is_linear(const struct store *st);

/* First storage access. dir://: open the directory and take .lock (swtpm
 * semantics: non-blocking fcntl write lock, kept until store_fini). file://: open
 * or create the file (a block device is used as it is), lock the file itself
 * (swtpm 0.10 semantics; 0.7.1 has no lock) and check its header, formatting a
 * file without the magic. Idempotent. -EAGAIN if another process holds the
 * lock, -ENOENT if the directory does not exist; file:// also -EBADMSG for a
 * malformed header and -EPROTONOSUPPORT for a newer layout version.
 * The lock is an open-file-description lock (F_OFD_SETLK): it conflicts with
 * swtpm's F_SETLK lock in both directions, and unlike a POSIX lock it also
 * excludes a second store in this process and is not dropped when some other fd
 * of the file in this process is closed. Load/flush/size call this implicitly.
 * With lock_deferred nothing is locked, created or formatted here. */
int store_prepare(struct store *st);

/* Take the lock now, even while deferred (CMD_SET_STATEBLOB, CMD_LOCK_STORAGE,
 * the first TPM command after --migration incoming). On success lock_deferred
 * is cleared. Non-blocking: -EAGAIN if another process holds it. */
int store_lock(struct store *st);
/* store_lock, retried every 10 ms up to `retries` more times on -EAGAIN. */
int store_lock_retry(struct store *st, unsigned retries);
/* Release the lock so another process can take the storage over (outgoing
 * migration with release-lock-outgoing): swtpm's files are brought up to date
 * first (store_sync_out), then the lock is dropped and the store goes on
 * unlocked (lock_deferred) until store_lock or the next write. 0 or -errno
 * (the lock is kept if the state could not be written). */
int store_unlock(struct store *st);
bool store_locked(const struct store *st);

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
/* Forget every pending record (state recorded while the storage was not ours,
 * superseded by an incoming state). Not while store_busy. */
void store_drop_pending(struct store *st);
bool store_busy(const struct store *st); /* an io_uring flush is in flight */

/* Make every pending record durable with blocking syscalls: write TMP file,
 * fsync, rename, fsync directory (or unlink + fsync directory). file://: write
 * the containers into their sections, update the header, fdatasync (see
 * store_linear.c for the write order). On failure the records stay pending so
 * the next flush retries. 0 or -errno. */
int store_flush_sync(struct store *st);

/* Create the journal file ahead of the first state change (directory
 * backend with a journal on top of an existing permall file; a no-op
 * otherwise). vtpmd's pool uses it so that a claimed instance's first write
 * creates no file. 0 or -errno. */
int store_prepare_journal(struct store *st);

/* Queue the same work on io_uring as one linked chain and return how many SQEs
 * were queued (0 if nothing pending). file:// has no chain: the work is done
 * right here with store_flush_sync and 0 is returned (its error if it failed,
 * with the records still pending). Every SQE carries user_data `tag`. With
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

/* For --print-states: container size of an item, -ENOENT if absent (file://:
 * the slot's data_length). */
int store_item_size(struct store *st, enum store_item item, size_t *size);

#endif
