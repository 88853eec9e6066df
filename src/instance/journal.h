/* The permall journal: two pre-allocated slots written alternately with one
 * pwrite + fdatasync, so an NV-changing command is durable at a fraction of the
 * cost of temp file + fsync + rename + directory fsync.
 *
 * swtpm's own permall file stays the hand-over format: it is brought up to date
 * whenever the state leaves our hands (clean stop, CMD_STOP, blob export), and a
 * "marker" slot then records which version of that file the journal sits on. At
 * start-up the newest valid slot wins only if it was written on top of the permall
 * file that is there now; if anything else (swtpm itself) replaced the file, the
 * file wins. A torn slot fails its checksum and the other slot is used; the reply
 * to a command is sent only after its slot is on disk, so a crash can never lose
 * an acknowledged change. */
#ifndef VTPM_JOURNAL_H
#define VTPM_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JOURNAL_HDR_SIZE 96u
#define JOURNAL_MIN_SLOT (256u * 1024u)

/* Identity of the swtpm permall file a slot applies to (all zero: absent). */
struct journal_base {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
};

struct journal {
	int fd;		  /* the journal file, -1 until the first slot is written */
	int dirfd;	  /* the state directory (borrowed), to create the file lazily */
	bool tpm2;
	mode_t mode;
	uint64_t seq;	  /* sequence of the newest valid slot */
	size_t slot_size; /* bytes per slot, header included */
	size_t allocated[2];
	struct journal_base base; /* the permall file the journal sits on */
	uint8_t *current;	  /* newest container bytes held by the journal */
	size_t current_len;
	bool dirty;	 /* the journal is newer than the permall file */
	uint8_t *wbuf;	 /* staging buffer of the write in flight */
	size_t wlen;
	off_t woff;
	bool wmarker;
};

/* Name of the journal file for a TPM version. */
const char *journal_file_name(bool tpm2);

/* Open the journal next to the permall file (it is created with the first slot
 * written, so an instance that never changes NV never pays for it) and recover:
 * afterwards j->dirty says whether j->current is newer than the permall file.
 * `permall_name` is swtpm's file name in dirfd. 0 or -errno. */
int journal_open(struct journal *j, int dirfd, bool tpm2, const char *permall_name, mode_t mode);
void journal_close(struct journal *j);

/* Create the (empty, preallocated) journal file now instead of with the first
 * slot, so that a later write is one pwrite + fdatasync into an existing file.
 * 0 if it exists already, or -errno. */
int journal_ensure_file(struct journal *j);
/* Stage a write of `data` (container bytes) into the next slot. -E2BIG if it
 * does not fit (the caller writes the permall file instead and calls
 * journal_reset). On success j->wbuf/wlen/woff describe one pwrite. */
int journal_stage(struct journal *j, const uint8_t *data, size_t len);
/* Stage a marker: "the permall file identified by `base` is current". */
int journal_stage_marker(struct journal *j, const struct journal_base *base);
/* Make the staged slot durable with blocking calls (pwrite + fdatasync). */
int journal_write_sync(struct journal *j, bool do_sync);
/* The staged write reached the disk (sync or io_uring path): adopt it. For a
 * data slot `data`/`len` become j->current (ownership moves to the journal). */
void journal_commit(struct journal *j, uint8_t *data, size_t len);
/* The staged write failed: forget it. */
void journal_abort(struct journal *j);

/* Identity of the permall file now (all zero if it does not exist). */
int journal_stat_base(int dirfd, const char *permall_name, struct journal_base *base);

/* Drop the journal's content (after the permall file was rewritten because a
 * state did not fit): recreate with slots large enough for `len`.
 * journal_rebase says whether a marker slot is needed at all: only when slots
 * exist that could name an older permall file. */
bool journal_has_slots(const struct journal *j);

int journal_reset(struct journal *j, int dirfd, bool tpm2, size_t len, mode_t mode);

#endif
