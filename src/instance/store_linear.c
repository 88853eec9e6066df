/* file:// state store: swtpm's linear single-file layout (a 192-byte header and
 * power-of-two sections) on a regular file or a block device, updated in place. */
#include "instance/store_linear.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "instance/log.h"
#include "io/fullio.h"

/*
 * Layout and allocation follow swtpm 0.7.1 exactly (state-files.md §8), so a
 * file moves between swtpm and us in both directions, also after sections grew
 * or moved. Differences in how we get there:
 *  - pread/pwrite + fdatasync instead of a shared mmap + msync; every operation
 *    re-reads the header (192 bytes) instead of trusting a mapping, so an
 *    unlocked reader (--migration incoming) sees what the lock holder wrote;
 *  - the file itself is locked with an OFD write lock (what swtpm 0.10 does;
 *    0.7.1 does not lock at all, so a 0.7.1 swtpm can still open a file we use);
 *  - a block device's size comes from lseek(SEEK_END), which equals what
 *    BLKGETSIZE64 reports: the seccomp allow-list has no ioctl, and the storage
 *    is prepared lazily, after the filter is in place.
 *
 * Crash safety. swtpm writes in place with no ordering at all. We order the
 * writes so that the header never points at bytes that are not on disk yet when
 * that is possible without a layout swtpm would not understand:
 *  - new data that lands only on bytes the current header does not reference
 *    (a new slot at the end, a section moved past everything else) is written
 *    and fdatasync'ed first, then the header is written and synced: a crash
 *    leaves either the old or the new state (the header is one 192-byte pwrite
 *    at offset 0, inside the first sector);
 *  - remaining window: data rewritten in its own section (the common case, every
 *    NV change) and sections moved down over bytes the old header still names
 *    (growth of a slot that is not the last, deletion of a slot that is not the
 *    last) are written first and the header after, with one fdatasync at the
 *    end. A crash in the middle can leave a torn container in that slot, which
 *    the load usually rejects (container and TLV lengths, the HMAC of an
 *    encrypted state, libtpms' own checks of its blob) but cannot rule out.
 *    Avoiding it would need a second copy of the section, and swtpm's layout
 *    (no holes, fixed order of operations) has no room for one.
 *  - a failed flush leaves every record pending; the retry plans again from
 *    the header on disk, i.e. from what a crash at that point would leave. */

/* Same cap as the dir backend: libtpms states are tens of KB, a container's
 * totlen is a u32; protects against OOM from a bogus header. */
#define LINEAR_MAX_ITEM ((uint64_t)64 << 20)

/* The layout's offsets are u32: nothing beyond 4 GiB - 1 of a device is used. */
#define LINEAR_MAX_SIZE ((uint64_t)UINT32_MAX)

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static bool is_pow2(uint32_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

static uint64_t slot_end(const struct linear_slot *s)
{
	return (uint64_t)s->offset + s->section_length;
}

/* Do [a, a + alen) and [b, b + blen) share a byte? (64-bit: no wrap-around) */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen > 0 && blen > 0 && a < b + blen && b < a + alen;
}

/* ---- header codec -------------------------------------------------------- */

uint32_t linear_section_size(uint64_t len)
{
	uint64_t s = 1;

	/* 2^31 is the largest power of two a u32 section length can hold. */
	if (len == 0 || len > ((uint64_t)1 << 31))
		return 0;
	while (s < len)
		s <<= 1;
	return (uint32_t)s;
}

int linear_hdr_parse(const uint8_t *buf, size_t len, uint64_t size, struct linear_layout *l)
{
	memset(l, 0, sizeof(*l));
	l->size = size;
	/* swtpm formats anything without the magic, however long it is. */
	if (len < 8 || size < 8 || get_le64(buf) != LINEAR_MAGIC)
		return -ENODATA;
	if (len < LINEAR_HDR_SIZE || size < LINEAR_HDR_SIZE)
		return -EBADMSG;
	if (buf[8] > LINEAR_VERSION)
		return -EPROTONOSUPPORT;
	/* swtpm would take version 0 and any hdrsize, but it never writes them,
	 * and a hdrsize below 192 would put data inside the header. */
	if (buf[8] != LINEAR_VERSION || get_le16(buf + 10) != LINEAR_HDR_SIZE)
		return -EBADMSG;

	for (unsigned i = 0; i < LINEAR_SLOTS; i++) {
		const uint8_t *p = buf + LINEAR_SLOTS_OFF + 12 * i;
		struct linear_slot s = { get_le32(p), get_le32(p + 4), get_le32(p + 8) };
		uint64_t end = slot_end(&s);

		/* Like swtpm, an unused slot's lengths are not looked at. */
		if (s.offset == 0)
			continue;
		if (s.offset < LINEAR_HDR_SIZE || !is_pow2(s.section_length) ||
		    s.data_length > s.section_length)
			return -EBADMSG;
		/* swtpm adds offset + section_length in 32 bits. */
		if (end > LINEAR_MAX_SIZE || end > size)
			return -EBADMSG;
		for (unsigned j = 0; j < i; j++) {
			const struct linear_slot *o = &l->slot[j];

			if (o->offset && ranges_overlap(s.offset, s.section_length, o->offset,
							o->section_length))
				return -EBADMSG;
		}
		l->slot[i] = s;
	}
	return 0;
}

void linear_hdr_format(const struct linear_layout *l, uint8_t out[LINEAR_HDR_SIZE])
{
	memset(out, 0, LINEAR_HDR_SIZE);
	put_le64(out, LINEAR_MAGIC);
	out[8] = LINEAR_VERSION;
	put_le16(out + 10, LINEAR_HDR_SIZE);
	for (unsigned i = 0; i < LINEAR_SLOTS; i++) {
		const struct linear_slot *s = &l->slot[i];
		uint8_t *p = out + LINEAR_SLOTS_OFF + 12 * i;

		if (s->offset == 0)
			continue;
		put_le32(p, s->offset);
		put_le32(p + 4, s->data_length);
		put_le32(p + 8, s->section_length);
	}
}

/* ---- allocation (swtpm's rules, in memory) -------------------------------- */

/* Free a slot; every section behind it moves down by its section length. */
static void linear_remove(struct linear_layout *l, unsigned slot, bool shrink)
{
	struct linear_slot old = l->slot[slot];

	if (old.offset == 0)
		return;
	memset(&l->slot[slot], 0, sizeof(l->slot[slot]));
	for (unsigned i = 0; i < LINEAR_SLOTS; i++) {
		struct linear_slot *s = &l->slot[i];

		if (s->offset > old.offset)
			s->offset -= old.section_length;
	}
	if (shrink && !l->fixed) {
		l->size = l->size > (uint64_t)old.section_length + LINEAR_HDR_SIZE
				  ? l->size - old.section_length
				  : LINEAR_HDR_SIZE;
	}
}

/* Place a slot after the end of the last section. */
static int linear_alloc(struct linear_layout *l, unsigned slot, uint64_t len)
{
	uint32_t sect = linear_section_size(len);
	uint64_t off = LINEAR_HDR_SIZE;

	if (sect == 0)
		return -EFBIG;
	for (unsigned i = 0; i < LINEAR_SLOTS; i++) {
		if (l->slot[i].offset && slot_end(&l->slot[i]) > off)
			off = slot_end(&l->slot[i]);
	}
	if (off + sect > LINEAR_MAX_SIZE)
		return -EFBIG;
	if (l->fixed) {
		if (off + sect > l->size)
			return -ENOSPC;
	} else {
		/* swtpm resizes the file to exactly the new end (even downwards). */
		l->size = off + sect;
	}
	l->slot[slot].offset = (uint32_t)off;
	l->slot[slot].data_length = (uint32_t)len;
	l->slot[slot].section_length = sect;
	return 0;
}

int linear_plan_write(struct linear_layout *l, unsigned slot, uint64_t len)
{
	struct linear_slot *s;

	if (slot >= LINEAR_SLOTS || len == 0)
		return -EINVAL;
	if (len > LINEAR_MAX_ITEM)
		return -EFBIG;
	s = &l->slot[slot];
	if (s->offset == 0)
		return linear_alloc(l, slot, len);
	if (len > s->section_length) {
		linear_remove(l, slot, false);
		return linear_alloc(l, slot, len);
	}
	s->data_length = (uint32_t)len;
	return 0;
}

int linear_plan_delete(struct linear_layout *l, unsigned slot)
{
	if (slot >= LINEAR_SLOTS)
		return -EINVAL;
	linear_remove(l, slot, true);
	return 0;
}

/* ---- I/O helpers ----------------------------------------------------------- */

/* Size of the storage: file size, or a block device's size (capped at what u32
 * offsets can address). */
static int linear_storage_size(int fd, bool blockdev, uint64_t *size)
{
	struct stat sb;
	off_t end;

	if (!blockdev) {
		if (fstat(fd, &sb) < 0)
			return -errno;
		*size = (uint64_t)sb.st_size;
		return 0;
	}
	end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		return -errno;
	*size = (uint64_t)end > LINEAR_MAX_SIZE ? LINEAR_MAX_SIZE : (uint64_t)end;
	return 0;
}

/* The header as it is on storage now; raw gets its bytes (zero-padded). */
static int linear_read_hdr(int fd, bool blockdev, struct linear_layout *l,
			   uint8_t raw[LINEAR_HDR_SIZE])
{
	uint64_t size = 0;
	size_t n;
	int r;

	memset(raw, 0, LINEAR_HDR_SIZE);
	r = linear_storage_size(fd, blockdev, &size);
	if (r < 0)
		return r;
	n = size < LINEAR_HDR_SIZE ? (size_t)size : LINEAR_HDR_SIZE;
	r = fio_pread_all(fd, raw, n, 0);
	if (r < 0)
		return r;
	r = linear_hdr_parse(raw, n, size, l);
	l->fixed = blockdev;
	return r;
}

/* swtpm's formatting of storage without the magic: an empty header; a short
 * regular file grows to the header size, a longer one keeps its size. */
static int linear_format(struct store *st, int fd, uint64_t size)
{
	struct linear_layout empty;
	uint8_t raw[LINEAR_HDR_SIZE];
	int r;

	if (size < LINEAR_HDR_SIZE) {
		if (st->lin.blockdev)
			return -ENOSPC;
		if (ftruncate(fd, LINEAR_HDR_SIZE) < 0)
			return -errno;
	}
	log_printf("Formatting 'file://%s' as new linear NVRAM store\n", st->lin.path);
	memset(&empty, 0, sizeof(empty));
	linear_hdr_format(&empty, raw);
	r = fio_pwrite_all(fd, raw, sizeof(raw), 0);
	if (r == 0 && !st->fsync_disabled && fdatasync(fd) < 0)
		r = -errno;
	return r;
}

/* ---- backend hooks --------------------------------------------------------- */

int store_linear_init(struct store *st, const char *path)
{
	st->backend = STORE_BACKEND_LINEAR;
	st->lin.fd = -1;
	st->lin.path = strdup(path);
	return st->lin.path ? 0 : -ENOMEM;
}

void store_linear_fini(struct store *st)
{
	/* Closing the only fd of the open file description drops the OFD lock. */
	if (st->lin.fd >= 0)
		close(st->lin.fd);
	st->lin.fd = -1;
	st->lin.locked = false;
	free(st->lin.path);
	st->lin.path = NULL;
}

void store_linear_unlock(struct store *st)
{
	if (st->lin.fd >= 0)
		close(st->lin.fd);
	st->lin.fd = -1;
	st->lin.locked = false;
}

int store_linear_prepare(struct store *st)
{
	struct store_linear *lin = &st->lin;
	struct linear_layout l;
	uint8_t raw[LINEAR_HDR_SIZE];
	struct stat sb;
	int fd = lin->fd, r;

	if (fd >= 0 && (lin->locked || st->lock_deferred))
		return 0;
	if (!lin->path)
		return -EINVAL;
	if (fd < 0) {
		/* Unlocked, nothing is created: a missing file reads as an empty
		 * store. Symlinks are followed (/dev/disk/by-id/... for devices). */
		fd = open(lin->path, O_RDWR | O_CLOEXEC | (st->lock_deferred ? 0 : O_CREAT), 0640);
		if (fd < 0) {
			if (errno == ENOENT && st->lock_deferred)
				return 0;
			return -errno;
		}
		if (fstat(fd, &sb) < 0) {
			r = -errno;
			goto fail;
		}
		if (!S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode)) {
			r = -EINVAL;
			goto fail;
		}
		lin->blockdev = S_ISBLK(sb.st_mode);
		lin->fd = fd;
	}
	if (st->lock_deferred)
		return 0;

	r = st->no_lock ? 0 : store_lock_fd(fd);
	if (r < 0)
		goto fail;
	/* Formatting (swtpm does it at open) and every later write happen only
	 * under the lock. */
	r = linear_read_hdr(fd, lin->blockdev, &l, raw);
	if (r == -ENODATA)
		r = linear_format(st, fd, l.size);
	if (r < 0)
		goto fail;
	lin->locked = true;
	st->lock_was_held = true;
	return 0;
fail:
	/* Closing also drops a lock just taken; the next call starts over. */
	close(fd);
	lin->fd = -1;
	lin->locked = false;
	return r;
}

/* The header for a read; an unformatted store is empty while we do not hold
 * the lock (we format it once we do), and damaged once we hold it. */
static int linear_current(struct store *st, struct linear_layout *l)
{
	uint8_t raw[LINEAR_HDR_SIZE];
	int r;

	r = store_linear_prepare(st);
	if (r < 0)
		return r;
	if (st->lin.fd < 0)
		return -ENOENT; /* unlocked and the file does not exist */
	r = linear_read_hdr(st->lin.fd, st->lin.blockdev, l, raw);
	if (r == -ENODATA)
		return st->lin.locked ? -EBADMSG : -ENOENT;
	return r;
}

int store_linear_read(struct store *st, enum store_item item, uint8_t **data, size_t *len)
{
	struct linear_layout l;
	const struct linear_slot *s;
	uint8_t *buf;
	int r;

	r = linear_current(st, &l);
	if (r < 0)
		return r;
	s = &l.slot[item];
	if (s->offset == 0)
		return -ENOENT;
	if (s->data_length > LINEAR_MAX_ITEM)
		return -EFBIG;
	buf = malloc(s->data_length ? s->data_length : 1);
	if (!buf)
		return -ENOMEM;
	r = fio_pread_all(st->lin.fd, buf, s->data_length, s->offset);
	if (r < 0) {
		free(buf);
		return r;
	}
	*data = buf;
	*len = s->data_length;
	return 0;
}

int store_linear_size(struct store *st, enum store_item item, size_t *size)
{
	struct linear_layout l;
	int r;

	r = linear_current(st, &l);
	if (r < 0)
		return r;
	if (l.slot[item].offset == 0)
		return -ENOENT;
	*size = l.slot[item].data_length;
	return 0;
}

struct linear_write {
	uint64_t off;
	const uint8_t *data;
	size_t len;
};

int store_linear_flush(struct store *st)
{
	struct store_linear *lin = &st->lin;
	struct linear_layout cur, next;
	uint8_t raw_cur[LINEAR_HDR_SIZE], raw_next[LINEAR_HDR_SIZE];
	uint8_t *moved[LINEAR_SLOTS] = { NULL };
	struct linear_write w[LINEAR_SLOTS];
	unsigned nw = 0;
	bool overlap = false, hdr_changed;
	int r;

	if (!lin->locked || lin->fd < 0)
		return -ENOLCK; /* store.c takes the lock before any write */
	r = linear_read_hdr(lin->fd, lin->blockdev, &cur, raw_cur);
	if (r == -ENODATA)
		r = -EBADMSG; /* it was formatted when we locked it */
	if (r < 0)
		return r;

	/* The new layout: deletions first (fewer moves), then the writes. */
	next = cur;
	for (unsigned i = 0; i < STORE_NITEMS && r == 0; i++)
		if (st->pending[i].op == STORE_OP_DELETE)
			r = linear_plan_delete(&next, i);
	for (unsigned i = 0; i < STORE_NITEMS && r == 0; i++)
		if (st->pending[i].op == STORE_OP_WRITE)
			r = linear_plan_write(&next, i, st->pending[i].len);
	if (r < 0)
		goto out;

	/* What goes where; sections that move are read before anything is written. */
	for (unsigned i = 0; i < LINEAR_SLOTS; i++) {
		const struct linear_slot *n = &next.slot[i], *o = &cur.slot[i];

		if (n->offset == 0)
			continue;
		if (i < STORE_NITEMS && st->pending[i].op == STORE_OP_WRITE) {
			w[nw].data = st->pending[i].data;
			w[nw].len = st->pending[i].len;
		} else if (n->offset != o->offset) {
			moved[i] = malloc(o->data_length ? o->data_length : 1);
			if (!moved[i]) {
				r = -ENOMEM;
				goto out;
			}
			r = fio_pread_all(lin->fd, moved[i], o->data_length, o->offset);
			if (r < 0)
				goto out;
			w[nw].data = moved[i];
			w[nw].len = o->data_length;
		} else {
			continue;
		}
		w[nw].off = n->offset;
		for (unsigned j = 0; j < LINEAR_SLOTS; j++) {
			const struct linear_slot *c = &cur.slot[j];

			if (c->offset && ranges_overlap(w[nw].off, w[nw].len, c->offset,
							c->data_length))
				overlap = true;
		}
		nw++;
	}
	linear_hdr_format(&next, raw_next);
	hdr_changed = memcmp(raw_cur, raw_next, LINEAR_HDR_SIZE) != 0;

	if (!next.fixed && next.size > cur.size && ftruncate(lin->fd, (off_t)next.size) < 0) {
		r = -errno;
		goto out;
	}
	for (unsigned i = 0; i < nw; i++) {
		r = fio_pwrite_all(lin->fd, w[i].data, w[i].len, w[i].off);
		if (r < 0)
			goto out;
	}
	if (hdr_changed) {
		/* Data the old header does not reference is made durable before the
		 * header can point at it (see the top of this file). */
		if (nw > 0 && !overlap && !st->fsync_disabled && fdatasync(lin->fd) < 0) {
			r = -errno;
			goto out;
		}
		r = fio_pwrite_all(lin->fd, raw_next, LINEAR_HDR_SIZE, 0);
		if (r < 0)
			goto out;
	}
	/* Shrink only once the header no longer names what is cut off. */
	if (!next.fixed && next.size < cur.size && ftruncate(lin->fd, (off_t)next.size) < 0) {
		r = -errno;
		goto out;
	}
	if ((nw > 0 || hdr_changed || next.size != cur.size) && !st->fsync_disabled &&
	    fdatasync(lin->fd) < 0) {
		r = -errno;
		goto out;
	}
	r = 0;
out:
	for (unsigned i = 0; i < LINEAR_SLOTS; i++)
		free(moved[i]);
	return r;
}
