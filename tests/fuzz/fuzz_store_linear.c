/* Fuzz target: the header of swtpm's linear file:// store
 * (src/instance/store_linear.h) and the allocation rules applied to it.
 * Input: 8 bytes storage size (little-endian, bit 63 = block device), then
 * the header bytes read from the storage (at most 192 used), then a list of
 * (slot, length) operations. Checks: a parsed header formats to bytes that
 * parse back to the same layout; every sequence of successful writes/deletes
 * leaves a layout whose header parses again (sections inside the storage,
 * aligned, not overlapping) and sizes as swtpm computes them. */
#include <errno.h>

#include "fuzz_common.h"
#include "instance/store_linear.h"

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static bool same_layout(const struct linear_layout *a, const struct linear_layout *b)
{
	for (unsigned i = 0; i < LINEAR_SLOTS; i++) {
		const struct linear_slot *x = &a->slot[i], *y = &b->slot[i];

		if (x->offset != y->offset)
			return false;
		if (x->offset && (x->data_length != y->data_length ||
				  x->section_length != y->section_length))
			return false;
	}
	return true;
}

static void check_layout(const struct linear_layout *l)
{
	uint8_t hdr[LINEAR_HDR_SIZE];
	struct linear_layout back;
	int r;

	linear_hdr_format(l, hdr);
	r = linear_hdr_parse(hdr, sizeof(hdr), l->size, &back);
	if (r != 0) {
		fprintf(stderr, "formatted layout (size %llu) does not parse: %d\n",
			(unsigned long long)l->size, r);
		for (unsigned i = 0; i < LINEAR_SLOTS; i++)
			fprintf(stderr, "  slot %u: off %u data %u section %u\n", i,
				l->slot[i].offset, l->slot[i].data_length,
				l->slot[i].section_length);
		FUZZ_CHECK(0);
	}
	FUZZ_CHECK(same_layout(l, &back));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linear_layout l, l2;
	struct fuzz_in in;
	uint64_t storage;
	size_t hlen;
	uint8_t *hdr;
	bool blockdev;
	int r;

	if (size < 8)
		return 0;
	storage = le64(data);
	blockdev = storage >> 63;
	storage &= ~(1ULL << 63);
	/* mostly realistic sizes (up to 16 GiB), sometimes anything */
	if (!(storage >> 62))
		storage &= (1ULL << 34) - 1;
	data += 8;
	size -= 8;
	hlen = size < LINEAR_HDR_SIZE ? size : LINEAR_HDR_SIZE;
	hdr = fuzz_dup(data, hlen);
	in.p = data + hlen;
	in.left = size - hlen;

	r = linear_hdr_parse(hdr, hlen, storage, &l);
	free(hdr);
	FUZZ_CHECK(r == 0 || r == -ENODATA || r == -EPROTONOSUPPORT || r == -EBADMSG);
	if (r != 0) {
		/* swtpm formats storage without the magic: an empty layout */
		if (r != -ENODATA)
			return 0;
		memset(&l, 0, sizeof(l));
		l.size = storage < LINEAR_HDR_SIZE ? LINEAR_HDR_SIZE : storage;
	}
	FUZZ_CHECK(r != 0 || l.size == storage);
	/* a block device's usable size is capped at what u32 offsets address */
	l.fixed = blockdev;
	if (l.fixed && l.size > UINT32_MAX)
		l.size = UINT32_MAX;
	check_layout(&l);

	/* operations: u8 slot (bit 7 = delete), u32 length (scaled) */
	while (in.left) {
		uint8_t op = fuzz_u8(&in);
		unsigned slot = op & 0x7f;
		uint64_t len = fuzz_u32(&in);

		/* lengths of real state (a few KiB) most of the time */
		if (!(op & 0x40))
			len &= 0x1ffff;
		slot %= LINEAR_SLOTS + 1; /* sometimes one past the end */
		l2 = l;
		if (op & 0x80) {
			r = linear_plan_delete(&l, slot);
			if (slot >= LINEAR_SLOTS) {
				FUZZ_CHECK(r == -EINVAL);
				l = l2;
				continue;
			}
			FUZZ_CHECK(r == 0);
			FUZZ_CHECK(l.slot[slot].offset == 0);
			if (!l.fixed && l2.slot[slot].offset)
				FUZZ_CHECK(l.size == (l2.size > (uint64_t)l2.slot[slot].section_length +
										LINEAR_HDR_SIZE
							      ? l2.size - l2.slot[slot].section_length
							      : LINEAR_HDR_SIZE));
		} else {
			r = linear_plan_write(&l, slot, len);
			if (r < 0) {
				FUZZ_CHECK(r == -EINVAL || r == -EFBIG || r == -ENOSPC);
				FUZZ_CHECK(r != -EINVAL || slot >= LINEAR_SLOTS || len == 0);
				FUZZ_CHECK(r != -ENOSPC || l.fixed);
				l = l2; /* unspecified after an error */
				continue;
			}
			FUZZ_CHECK(slot < LINEAR_SLOTS && len > 0);
			FUZZ_CHECK(l.slot[slot].offset >= LINEAR_HDR_SIZE);
			FUZZ_CHECK(l.slot[slot].data_length == len);
			FUZZ_CHECK(l.slot[slot].section_length == linear_section_size(len) ||
				   (l2.slot[slot].offset && l.slot[slot].offset == l2.slot[slot].offset &&
				    l.slot[slot].section_length == l2.slot[slot].section_length));
			if (l.fixed)
				FUZZ_CHECK(l.size == l2.size);
		}
		check_layout(&l);
	}
	return 0;
}
