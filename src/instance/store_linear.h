/* Internal interface of the file:// backend (store_linear.c) for store.c and the
 * unit tests: swtpm's linear header codec, its allocation rules, the backend hooks. */
#ifndef VTPM_STORE_LINEAR_H
#define VTPM_STORE_LINEAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "instance/store.h"

/* The on-disk header (state-files.md §8), all fields little-endian:
 * u64 magic, u8 version, u8 padding, u16 hdrsize, 15 x {u32 offset,
 * u32 data_length, u32 section_length}. Slot = enum store_item. */
#define LINEAR_MAGIC 0x737774706d6c696eULL /* bytes on disk: "nilmptws" */
#define LINEAR_VERSION 1u
#define LINEAR_HDR_SIZE 192u
#define LINEAR_SLOTS 15u
#define LINEAR_SLOTS_OFF 12u

struct linear_slot {
	uint32_t offset; /* 0: unused */
	uint32_t data_length;
	uint32_t section_length;
};

/* The header plus the size of what holds it. `size` is the file size, or the
 * usable size of a block device (`fixed`: never resized). */
struct linear_layout {
	struct linear_slot slot[LINEAR_SLOTS];
	uint64_t size;
	bool fixed;
};

/* Check a header read from storage of `size` bytes (`len` bytes available in
 * buf, at most LINEAR_HDR_SIZE used). 0 and *l filled; -ENODATA: no magic (not
 * a linear store yet: swtpm formats it); -EPROTONOSUPPORT: version > 1;
 * -EBADMSG: anything else malformed (short, version 0, hdrsize != 192, a used
 * slot below the header, past the end or past 4 GiB, a section length that is
 * not a power of two or shorter than its data, overlapping sections). */
int linear_hdr_parse(const uint8_t *buf, size_t len, uint64_t size, struct linear_layout *l);

/* The 192 header bytes for a layout (unused slots all zero). */
void linear_hdr_format(const struct linear_layout *l, uint8_t out[LINEAR_HDR_SIZE]);

/* swtpm's section size: `len` rounded up to a power of two; 0 if that does not
 * fit 32 bits (or len is 0). */
uint32_t linear_section_size(uint64_t len);

/* swtpm's allocation rules, applied to a layout in memory:
 * write: a free slot is placed after the end of the last section (the first at
 * offset 192) and a regular file is resized to its end; data that fits its
 * section is rewritten in place; larger data removes the entry (later sections
 * move down by its section length) and re-allocates it at the end.
 * delete: remove the entry as above and shrink a regular file by its section.
 * -EFBIG past 32-bit offsets, -ENOSPC beyond a fixed-size device, -EINVAL for
 * a bad slot or length 0. On error *l is left in an unspecified state. */
int linear_plan_write(struct linear_layout *l, unsigned slot, uint64_t len);
int linear_plan_delete(struct linear_layout *l, unsigned slot);

/* Backend hooks, called by store.c for a store with backend STORE_BACKEND_LINEAR. */
int store_linear_init(struct store *st, const char *path);
void store_linear_fini(struct store *st);
int store_linear_prepare(struct store *st);
void store_linear_unlock(struct store *st);
int store_linear_read(struct store *st, enum store_item item, uint8_t **data, size_t *len);
int store_linear_size(struct store *st, enum store_item item, size_t *size);
int store_linear_flush(struct store *st);

/* Shared with store.c: take the non-blocking OFD write lock on a whole file. */
int store_lock_fd(int fd);

#endif
