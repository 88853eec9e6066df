/* The permall journal: two alternating, pre-allocated, checksummed slots next to
 * swtpm's permall file (see journal.h for the recovery rules). */
#include "instance/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "io/fullio.h"

#define JOURNAL_MAGIC "VTPMJRN1"
#define JOURNAL_FLAG_MARKER 1u
#define JOURNAL_SUM_OFF 64u

struct journal_slot {
	uint64_t seq;
	uint32_t len, flags;
	struct journal_base base;
	uint8_t *data;
};

const char *journal_file_name(bool tpm2)
{
	return tpm2 ? ".vtpm-tpm2-00.permall.journal" : ".vtpm-tpm-00.permall.journal";
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int journal_sum(const uint8_t *hdr, const uint8_t *data, size_t len, uint8_t *out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(ctx, hdr, JOURNAL_SUM_OFF) && EVP_DigestUpdate(ctx, data, len) &&
	     EVP_DigestFinal_ex(ctx, out, NULL);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

static void journal_hdr_fill(uint8_t *h, uint64_t seq, uint32_t len, uint32_t flags,
			     const struct journal_base *b)
{
	memset(h, 0, JOURNAL_HDR_SIZE);
	memcpy(h, JOURNAL_MAGIC, 8);
	put_le64(h + 8, seq);
	put_le64(h + 16, (uint64_t)len | (uint64_t)flags << 32);
	put_le64(h + 24, b->dev);
	put_le64(h + 32, b->ino);
	put_le64(h + 40, b->size);
	put_le64(h + 48, (uint64_t)b->mtime_ns);
	put_le64(h + 56, (uint64_t)b->ctime_ns);
}

static bool journal_base_eq(const struct journal_base *a, const struct journal_base *b)
{
	/* Not ctime: loading the file chmods it (as swtpm does), which changes the
	 * ctime without changing the content. A rewrite renames a new inode in. */
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns;
}

int journal_stat_base(int dirfd, const char *permall_name, struct journal_base *base)
{
	struct stat sb;

	memset(base, 0, sizeof(*base));
	if (fstatat(dirfd, permall_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	base->dev = sb.st_dev;
	base->ino = sb.st_ino;
	base->size = (uint64_t)sb.st_size;
	base->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	base->ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec;
	return 0;
}

/* Read and verify one slot; -EBADMSG for an empty, torn or foreign slot. */
static int journal_read_slot(struct journal *j, int idx, struct journal_slot *s)
{
	uint8_t h[JOURNAL_HDR_SIZE], sum[32];
	off_t off = (off_t)idx * (off_t)j->slot_size;
	uint64_t lf;
	int r;

	memset(s, 0, sizeof(*s));
	r = fio_pread_all(j->fd, h, sizeof(h), off);
	if (r < 0)
		return r;
	if (memcmp(h, JOURNAL_MAGIC, 8) != 0)
		return -EBADMSG;
	s->seq = get_le64(h + 8);
	lf = get_le64(h + 16);
	s->len = (uint32_t)lf;
	s->flags = (uint32_t)(lf >> 32);
	if ((size_t)s->len > j->slot_size - JOURNAL_HDR_SIZE || s->flags > JOURNAL_FLAG_MARKER)
		return -EBADMSG;
	s->base.dev = get_le64(h + 24);
	s->base.ino = get_le64(h + 32);
	s->base.size = get_le64(h + 40);
	s->base.mtime_ns = (int64_t)get_le64(h + 48);
	s->base.ctime_ns = (int64_t)get_le64(h + 56);
	s->data = malloc(s->len ? s->len : 1);
	if (!s->data)
		return -ENOMEM;
	r = fio_pread_all(j->fd, s->data, s->len, off + JOURNAL_HDR_SIZE);
	if (r == 0)
		r = journal_sum(h, s->data, s->len, sum);
	if (r == 0 && memcmp(sum, h + JOURNAL_SUM_OFF, sizeof(sum)) != 0)
		r = -EBADMSG;
	if (r < 0) {
		free(s->data);
		s->data = NULL;
	}
	return r;
}

/* A new, empty journal: both slots allocated up front so that a slot write only
 * changes data blocks and fdatasync has no metadata to flush. */
static int journal_create(struct journal *j, int dirfd, bool tpm2, size_t slot_size)
{
	int r;

	if (j->fd < 0) {
		/* Nothing on disk yet: remember the size, create with the first slot. */
		j->slot_size = slot_size;
		j->seq = 0;
		return 0;
	}
	if (ftruncate(j->fd, 0) < 0 || ftruncate(j->fd, (off_t)(2 * slot_size)) < 0)
		return -errno;
	r = fallocate(j->fd, 0, 0, (off_t)(2 * slot_size));
	if (r < 0 && errno != EOPNOTSUPP)
		return -errno;
	if (fsync(j->fd) < 0 || fsync(dirfd) < 0)
		return -errno;
	j->slot_size = slot_size;
	j->seq = 0;
	(void)tpm2;
	return 0;
}

int journal_open(struct journal *j, int dirfd, bool tpm2, const char *permall_name, mode_t mode)
{
	struct journal_slot s[2];
	struct journal_base now;
	struct stat sb;
	int best = -1, r, i;

	memset(j, 0, sizeof(*j));
	memset(s, 0, sizeof(s));
	j->dirfd = dirfd;
	j->tpm2 = tpm2;
	j->mode = mode;
	r = journal_stat_base(dirfd, permall_name, &now);
	if (r < 0) {
		j->fd = -1;
		return r;
	}
	j->base = now;
	j->fd = openat(dirfd, journal_file_name(tpm2), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (j->fd < 0) {
		if (errno != ENOENT)
			return -errno;
		j->slot_size = JOURNAL_MIN_SLOT; /* created with the first slot */
		return 0;
	}
	if (fstat(j->fd, &sb) < 0) {
		r = -errno;
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		r = -EINVAL;
		goto fail;
	}
	if (sb.st_size < (off_t)(2 * (JOURNAL_HDR_SIZE + 1)) || (sb.st_size & 1)) {
		r = journal_create(j, dirfd, tpm2, JOURNAL_MIN_SLOT);
		if (r < 0)
			goto fail;
		return 0;
	}
	j->slot_size = (size_t)sb.st_size / 2;
	for (i = 0; i < 2; i++) {
		r = journal_read_slot(j, i, &s[i]);
		if (r == -ENOMEM || (r < 0 && r != -EBADMSG && r != -EIO))
			goto fail;
		if (r == 0 && (best < 0 || s[i].seq > s[best].seq))
			best = i;
	}
	if (best >= 0) {
		j->seq = s[best].seq;
		/* The next slot goes to index (seq + 1) & 1, the other one only if
		 * the newest sits at index seq & 1, as this writer leaves it. In a
		 * file where it does not (not written by us), skip a number so the
		 * newest slot is never the one overwritten (and lost if that write
		 * is torn). */
		if ((j->seq & 1) != (uint64_t)best)
			j->seq++;
		/* Only a data slot written on top of the permall file that is there
		 * now is newer than it; anything else means the file is current. */
		if (s[best].flags == 0 && journal_base_eq(&s[best].base, &now)) {
			j->current = s[best].data;
			j->current_len = s[best].len;
			s[best].data = NULL;
			j->dirty = true;
		}
	}
	free(s[0].data);
	free(s[1].data);
	return 0;
fail:
	free(s[0].data);
	free(s[1].data);
	close(j->fd);
	j->fd = -1;
	return r;
}

void journal_close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	free(j->current);
	free(j->wbuf);
	memset(j, 0, sizeof(*j));
	j->fd = -1;
}

int journal_ensure_file(struct journal *j)
{
	int r;

	if (j->fd >= 0)
		return 0;
	j->fd = openat(j->dirfd, journal_file_name(j->tpm2), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		       j->mode);
	if (j->fd < 0)
		return -errno;
	r = journal_create(j, j->dirfd, j->tpm2, j->slot_size);
	if (r < 0) {
		close(j->fd);
		j->fd = -1;
	}
	return r;
}

static int journal_stage_slot(struct journal *j, const uint8_t *data, size_t len, uint32_t flags,
			      const struct journal_base *base)
{
	size_t need = JOURNAL_HDR_SIZE + len;
	uint8_t *nb;
	int r;

	if (need > j->slot_size)
		return -E2BIG;
	r = journal_ensure_file(j);
	if (r < 0)
		return r;
	if (need > j->wlen || !j->wbuf) {
		nb = realloc(j->wbuf, need);
		if (!nb)
			return -ENOMEM;
		j->wbuf = nb;
	}
	journal_hdr_fill(j->wbuf, j->seq + 1, (uint32_t)len, flags, base);
	if (len)
		memcpy(j->wbuf + JOURNAL_HDR_SIZE, data, len);
	r = journal_sum(j->wbuf, j->wbuf + JOURNAL_HDR_SIZE, len, j->wbuf + JOURNAL_SUM_OFF);
	if (r < 0)
		return r;
	/* Alternate by sequence: the slot being overwritten is never the newest. */
	j->woff = (off_t)((j->seq + 1) & 1) * (off_t)j->slot_size;
	j->wlen = need;
	j->wmarker = flags == JOURNAL_FLAG_MARKER;
	if (j->wmarker)
		j->base = *base;
	return 0;
}

int journal_stage(struct journal *j, const uint8_t *data, size_t len)
{
	return journal_stage_slot(j, data, len, 0, &j->base);
}

int journal_stage_marker(struct journal *j, const struct journal_base *base)
{
	return journal_stage_slot(j, NULL, 0, JOURNAL_FLAG_MARKER, base);
}

int journal_write_sync(struct journal *j, bool do_sync)
{
	int r = fio_pwrite_all(j->fd, j->wbuf, j->wlen, j->woff);

	if (r < 0)
		return r;
	if (do_sync && fdatasync(j->fd) < 0)
		return -errno;
	return 0;
}

void journal_commit(struct journal *j, uint8_t *data, size_t len)
{
	j->seq++;
	if (j->wmarker) {
		/* The permall file is current: reads go there again. */
		j->dirty = false;
		free(j->current);
		j->current = NULL;
		j->current_len = 0;
	} else {
		free(j->current);
		j->current = data;
		j->current_len = len;
		j->dirty = true;
	}
}

bool journal_has_slots(const struct journal *j)
{
	return j->seq > 0;
}

void journal_abort(struct journal *j)
{
	/* The slot may hold a torn write; it is the older one and its checksum
	 * fails, so recovery falls back to the newest complete slot. */
	j->wmarker = false;
}

int journal_reset(struct journal *j, int dirfd, bool tpm2, size_t len, mode_t mode)
{
	size_t slot = JOURNAL_MIN_SLOT;
	int r;

	while (slot < 2 * (JOURNAL_HDR_SIZE + len))
		slot *= 2;
	free(j->current);
	j->current = NULL;
	j->current_len = 0;
	j->dirty = false;
	r = journal_create(j, dirfd, tpm2, slot);
	(void)mode;
	return r;
}
