/* State store: where libtpms' NVRAM callbacks land. Writes are only recorded here
 * (no I/O on the command path); the loop makes them durable before the response. */
#ifndef VTPM_STORE_H
#define VTPM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct io_uring;

/* The three state items libtpms knows (TPM_PERMANENT_ALL_NAME etc.). */
enum store_item { STORE_PERMALL = 0, STORE_VOLATILE, STORE_SAVESTATE, STORE_NITEMS };

enum store_op { STORE_OP_NONE = 0, STORE_OP_WRITE, STORE_OP_DELETE };

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
};

/* Map a libtpms name ("permall", "volatilestate", "savestate") to an item; -EINVAL. */
int store_item_from_name(const char *name);
const char *store_item_name(enum store_item item);

/* Set up from a backend URI (dir://PATH); no I/O yet. -EINVAL for a bad or
 * unsupported URI (-ENOTSUP for file://, not implemented yet). */
int store_init(struct store *st, const char *uri, bool tpm2, mode_t mode);
void store_fini(struct store *st);

/* First storage access: open the directory and take .lock (swtpm semantics:
 * non-blocking fcntl write lock, kept until store_fini). Idempotent. -EAGAIN if
 * another process holds the lock, -ENOENT if the directory does not exist. */
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
 * was queued). */
int store_flush_prep_uring(struct store *st, struct io_uring *ring, uint64_t tag,
			   bool link_tail);

/* Feed every CQE carrying the chain's tag. Returns 1 when the chain is complete
 * (then *err is its first error, records re-queued as pending on failure), 0
 * while CQEs are outstanding. */
int store_flush_cqe(struct store *st, int res, int *err);

/* For --print-states: container size of an item, -ENOENT if absent. */
int store_item_size(struct store *st, enum store_item item, size_t *size);

#endif
