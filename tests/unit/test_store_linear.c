/* Unit tests for the file:// state store (src/instance/store_linear.c): header
 * parsing, swtpm's allocation rules, the store on real files, and swtpm 0.7.1 peers. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "crypto/container.h"
#include "instance/config.h"
#include "instance/ctrl.h"
#include "instance/instance.h"
#include "instance/store.h"
#include "instance/store_linear.h"

#include "child.h"

/* ---- helpers --------------------------------------------------------------- */

static char g_dir[64];
static char g_file[128];
static char g_uri[160];

static void setup(void)
{
	unsetenv("VTPM_NO_FSYNC");
	unsetenv("VTPM_JOURNAL");
	strcpy(g_dir, "/tmp/vtpm-lin-XXXXXX");
	cr_assert_not_null(mkdtemp(g_dir));
	snprintf(g_file, sizeof(g_file), "%s/tpm.img", g_dir);
	snprintf(g_uri, sizeof(g_uri), "file://%s", g_file);
}

/* A reference swtpm started by a test, killed here if the test failed early. */
static pid_t g_swtpm_pid;

static void teardown(void)
{
	char cmd[160];

	if (g_swtpm_pid > 0) {
		kill(g_swtpm_pid, SIGKILL);
		waitpid(g_swtpm_pid, NULL, 0);
		g_swtpm_pid = 0;
	}
	if (g_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
		(void)!system(cmd);
	}
}

TestSuite(linear, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(linear_hdr, .timeout = 30);
TestSuite(linear_plan, .timeout = 30);

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* A header in raw bytes: magic, version 1, hdrsize 192, no slots. */
static void raw_empty(uint8_t h[LINEAR_HDR_SIZE])
{
	static const uint8_t start[12] = { 0x6e, 0x69, 0x6c, 0x6d, 0x70, 0x74, 0x77, 0x73,
					   0x01, 0x00, 0xc0, 0x00 };

	memset(h, 0, LINEAR_HDR_SIZE);
	memcpy(h, start, sizeof(start));
}

static void raw_slot(uint8_t h[LINEAR_HDR_SIZE], unsigned i, uint32_t off, uint32_t len,
		     uint32_t sect)
{
	put32(h + 12 + 12 * i, off);
	put32(h + 16 + 12 * i, len);
	put32(h + 20 + 12 * i, sect);
}

/* state-files.md §8, captured from swtpm 0.7.1: TPM 2 after start + STORE_VOLATILE. */
static const uint8_t captured_hdr_start[36] = {
	0x6e, 0x69, 0x6c, 0x6d, 0x70, 0x74, 0x77, 0x73, 0x01, 0x00, 0xc0, 0x00,
	0xc0, 0x00, 0x00, 0x00, 0x23, 0x05, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00,
	0xc0, 0x08, 0x00, 0x00, 0x1a, 0x23, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00,
};
#define CAPTURED_SIZE 18624u

static void raw_captured(uint8_t h[LINEAR_HDR_SIZE])
{
	memset(h, 0, LINEAR_HDR_SIZE);
	memcpy(h, captured_hdr_start, sizeof(captured_hdr_start));
}

static uint8_t *pattern(size_t len, uint8_t seed)
{
	uint8_t *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed ^ (i * 29));
	return p;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat sb;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0, "open %s", path);
	cr_assert_eq(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(read(fd, buf, (size_t)sb.st_size), sb.st_size);
	close(fd);
	*len = (size_t)sb.st_size;
	return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat sb;

	cr_assert_eq(stat(path, &sb), 0, "stat %s", path);
	return sb.st_size;
}

/* Parse the test file's header. */
static int parse_file(const char *path, struct linear_layout *l)
{
	size_t len;
	uint8_t *buf = read_file(path, &len);
	int r = linear_hdr_parse(buf, len, len, l);

	free(buf);
	return r;
}

/* The container bytes an item must have on disk. */
static void assert_slot_holds(const char *path, unsigned slot, const uint8_t *payload, size_t plen)
{
	struct linear_layout l;
	uint8_t *file, *want;
	size_t flen, wlen;

	file = read_file(path, &flen);
	cr_assert_eq(linear_hdr_parse(file, flen, flen, &l), 0);
	cr_assert_eq(container_wrap_file(payload, plen, &want, &wlen), 0);
	cr_assert_neq(l.slot[slot].offset, 0, "slot %u unused", slot);
	cr_assert_eq(l.slot[slot].data_length, wlen);
	cr_assert_arr_eq(file + l.slot[slot].offset, want, wlen);
	free(want);
	free(file);
}

static void init_store(struct store *st)
{
	cr_assert_eq(store_init(st, g_uri, true, 0640), 0);
	cr_assert(store_is_linear(st));
}

/* Every layout the planner produces must pass the parser. */
static void assert_consistent(const struct linear_layout *l)
{
	uint8_t raw[LINEAR_HDR_SIZE];
	struct linear_layout back;

	linear_hdr_format(l, raw);
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), l->size, &back), 0);
	cr_assert_arr_eq(back.slot, l->slot, sizeof(l->slot));
}

static void assert_slot(const struct linear_layout *l, unsigned i, uint32_t off, uint32_t len,
			uint32_t sect)
{
	cr_assert_eq(l->slot[i].offset, off, "slot %u offset %u, want %u", i, l->slot[i].offset,
		     off);
	cr_assert_eq(l->slot[i].data_length, len, "slot %u length %u, want %u", i,
		     l->slot[i].data_length, len);
	cr_assert_eq(l->slot[i].section_length, sect, "slot %u section %u, want %u", i,
		     l->slot[i].section_length, sect);
}

/* ---- header codec ------------------------------------------------------------ */

Test(linear_hdr, section_size)
{
	cr_assert_eq(linear_section_size(0), 0);
	cr_assert_eq(linear_section_size(1), 1);
	cr_assert_eq(linear_section_size(2), 2);
	cr_assert_eq(linear_section_size(3), 4);
	cr_assert_eq(linear_section_size(1315), 2048);
	cr_assert_eq(linear_section_size(2048), 2048, "a power of two stays");
	cr_assert_eq(linear_section_size(2049), 4096);
	cr_assert_eq(linear_section_size(8986), 16384);
	cr_assert_eq(linear_section_size(0x80000000u), 0x80000000u);
	cr_assert_eq(linear_section_size(0x80000001u), 0, "does not fit 32 bits");
	cr_assert_eq(linear_section_size(UINT64_MAX), 0);
}

Test(linear_hdr, captured_layout_roundtrip)
{
	uint8_t raw[LINEAR_HDR_SIZE], again[LINEAR_HDR_SIZE];
	struct linear_layout l;

	raw_captured(raw);
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), CAPTURED_SIZE, &l), 0);
	assert_slot(&l, STORE_PERMALL, 0xc0, 0x523, 0x800);
	assert_slot(&l, STORE_VOLATILE, 0x8c0, 0x231a, 0x4000);
	for (unsigned i = 2; i < LINEAR_SLOTS; i++)
		cr_assert_eq(l.slot[i].offset, 0);
	cr_assert_eq(l.size, CAPTURED_SIZE);
	linear_hdr_format(&l, again);
	cr_assert_arr_eq(again, raw, sizeof(raw));
}

Test(linear_hdr, empty_format_bytes)
{
	struct linear_layout l;
	uint8_t raw[LINEAR_HDR_SIZE], want[LINEAR_HDR_SIZE];

	memset(&l, 0, sizeof(l));
	linear_hdr_format(&l, raw);
	raw_empty(want);
	cr_assert_arr_eq(raw, want, sizeof(raw));
	cr_assert_eq(memcmp(raw, "nilmptws", 8), 0, "magic on disk");
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), LINEAR_HDR_SIZE, &l), 0);
}

Test(linear_hdr, bad_magic_means_format)
{
	uint8_t raw[LINEAR_HDR_SIZE];
	struct linear_layout l;

	raw_captured(raw);
	raw[0] ^= 1;
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), CAPTURED_SIZE, &l), -ENODATA);
	memset(raw, 0, sizeof(raw));
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), 4096, &l), -ENODATA, "zeros");
	cr_assert_eq(linear_hdr_parse(raw, 0, 0, &l), -ENODATA, "empty file");
	raw_captured(raw);
	cr_assert_eq(linear_hdr_parse(raw, 7, 7, &l), -ENODATA, "shorter than the magic");
	/* big-endian magic is not ours */
	memcpy(raw, "swtpmlin", 8);
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), CAPTURED_SIZE, &l), -ENODATA);
}

Test(linear_hdr, short_with_magic)
{
	uint8_t raw[LINEAR_HDR_SIZE];
	struct linear_layout l;

	raw_empty(raw);
	cr_assert_eq(linear_hdr_parse(raw, 8, 8, &l), -EBADMSG);
	cr_assert_eq(linear_hdr_parse(raw, 191, 191, &l), -EBADMSG);
	cr_assert_eq(linear_hdr_parse(raw, 191, 4096, &l), -EBADMSG, "not all bytes read");
	cr_assert_eq(linear_hdr_parse(raw, 192, 191, &l), -EBADMSG, "storage too small");
	cr_assert_eq(linear_hdr_parse(raw, 192, 192, &l), 0);
}

Test(linear_hdr, versions)
{
	uint8_t raw[LINEAR_HDR_SIZE];
	struct linear_layout l;

	raw_captured(raw);
	raw[8] = 2;
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), CAPTURED_SIZE, &l), -EPROTONOSUPPORT);
	raw[8] = 0xff;
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), CAPTURED_SIZE, &l), -EPROTONOSUPPORT);
	raw[8] = 0;
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), CAPTURED_SIZE, &l), -EBADMSG);
	raw[8] = 1;
	raw[9] = 0x5a; /* padding is not looked at */
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), CAPTURED_SIZE, &l), 0);
}

Test(linear_hdr, hdrsize)
{
	uint8_t raw[LINEAR_HDR_SIZE];
	struct linear_layout l;
	static const uint16_t bad[] = { 0, 12, 191, 193, 0xc000, 0xffff };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		raw_captured(raw);
		raw[10] = (uint8_t)bad[i];
		raw[11] = (uint8_t)(bad[i] >> 8);
		cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), CAPTURED_SIZE, &l), -EBADMSG,
			     "hdrsize %u", bad[i]);
	}
}

/* One slot of the captured header replaced. */
static int parse_with_slot(unsigned i, uint32_t off, uint32_t len, uint32_t sect, uint64_t size)
{
	uint8_t raw[LINEAR_HDR_SIZE];
	struct linear_layout l;

	raw_captured(raw);
	raw_slot(raw, i, off, len, sect);
	return linear_hdr_parse(raw, sizeof(raw), size, &l);
}

Test(linear_hdr, slot_bounds)
{
	/* below / inside the header */
	cr_assert_eq(parse_with_slot(2, 1, 4, 4, 1 << 20), -EBADMSG);
	cr_assert_eq(parse_with_slot(2, 191, 1, 1, 1 << 20), -EBADMSG);
	/* past the end of the storage: section, data, or the offset itself */
	cr_assert_eq(parse_with_slot(1, 0x8c0, 0x231a, 0x4000, CAPTURED_SIZE - 1), -EBADMSG);
	cr_assert_eq(parse_with_slot(1, 0x8c0, 0x231a, 0x4000, CAPTURED_SIZE), 0);
	cr_assert_eq(parse_with_slot(2, CAPTURED_SIZE, 1, 1, CAPTURED_SIZE), -EBADMSG);
	cr_assert_eq(parse_with_slot(2, CAPTURED_SIZE, 1, 1, CAPTURED_SIZE + 1), 0);
	cr_assert_eq(parse_with_slot(2, 0x10000000, 0x100, 0x100, CAPTURED_SIZE), -EBADMSG);
	/* data longer than its section */
	cr_assert_eq(parse_with_slot(0, 0xc0, 0x801, 0x800, CAPTURED_SIZE), -EBADMSG);
	cr_assert_eq(parse_with_slot(0, 0xc0, 0x800, 0x800, CAPTURED_SIZE), 0);
	cr_assert_eq(parse_with_slot(0, 0xc0, 0, 0x800, CAPTURED_SIZE), 0, "empty data is legal");
}

Test(linear_hdr, section_not_power_of_two)
{
	cr_assert_eq(parse_with_slot(0, 0xc0, 0x523, 0x801, CAPTURED_SIZE), -EBADMSG);
	cr_assert_eq(parse_with_slot(0, 0xc0, 0x523, 0x600, CAPTURED_SIZE), -EBADMSG);
	cr_assert_eq(parse_with_slot(0, 0xc0, 0, 0, CAPTURED_SIZE), -EBADMSG, "section 0");
	cr_assert_eq(parse_with_slot(1, 0x8c0, 0x231a, 0x3000, CAPTURED_SIZE), -EBADMSG);
	cr_assert_eq(parse_with_slot(1, 0x8c0, 0x231a, 0xffffffffu, CAPTURED_SIZE), -EBADMSG);
}

Test(linear_hdr, overlapping_sections)
{
	/* permall is 0xc0..0x8c0, volatilestate 0x8c0..0x48c0 */
	cr_assert_eq(parse_with_slot(1, 0x4c0, 0x100, 0x4000, CAPTURED_SIZE), -EBADMSG);
	cr_assert_eq(parse_with_slot(1, 0xc0, 0x100, 0x100, CAPTURED_SIZE), -EBADMSG, "same offset");
	cr_assert_eq(parse_with_slot(2, 0x8bf, 1, 1, CAPTURED_SIZE), -EBADMSG, "last byte");
	cr_assert_eq(parse_with_slot(2, 0x48bf, 1, 1, CAPTURED_SIZE), -EBADMSG);
	cr_assert_eq(parse_with_slot(2, 0x1000, 1, 1, CAPTURED_SIZE), -EBADMSG, "inside");
	cr_assert_eq(parse_with_slot(14, 0x8c0, 1, 1, CAPTURED_SIZE), -EBADMSG, "any slot");
	/* back to back is fine, and so is a hole (swtpm never makes one) */
	cr_assert_eq(parse_with_slot(2, 0x48c0 - 0x4000 + 0x4000, 0, 1, CAPTURED_SIZE + 1), 0);
	cr_assert_eq(parse_with_slot(1, 0x1000, 0x231a, 0x4000, 0x5000), 0);
}

Test(linear_hdr, offset_overflow_32bit)
{
	uint64_t huge = (uint64_t)1 << 33;

	/* offset + section wraps a u32 (swtpm adds them in 32 bits) */
	cr_assert_eq(parse_with_slot(2, 0xfffff000u, 0x10, 0x2000, huge), -EBADMSG);
	cr_assert_eq(parse_with_slot(2, 0x80000000u, 0x10, 0x80000000u, huge), -EBADMSG,
		     "end exactly 4 GiB");
	cr_assert_eq(parse_with_slot(2, 0xffffffffu, 1, 1, huge), -EBADMSG);
	cr_assert_eq(parse_with_slot(2, 0x7fffffffu, 1, 0x80000000u, huge), 0, "end 4 GiB - 1");
	cr_assert_eq(parse_with_slot(2, 0xfffffff0u, 8, 8, huge), 0);
}

Test(linear_hdr, unused_slots_ignored_and_normalised)
{
	uint8_t raw[LINEAR_HDR_SIZE], again[LINEAR_HDR_SIZE], want[LINEAR_HDR_SIZE];
	struct linear_layout l;

	raw_captured(raw);
	raw_slot(raw, 5, 0, 0x1234, 0x777); /* lengths of an unused slot: garbage */
	raw_slot(raw, 14, 0x48c0, 0x10, 0x10);
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), CAPTURED_SIZE + 0x10, &l), 0);
	cr_assert_eq(l.slot[5].offset, 0);
	assert_slot(&l, 14, 0x48c0, 0x10, 0x10); /* other TPMs' slots are kept */
	linear_hdr_format(&l, again);
	raw_captured(want);
	raw_slot(want, 14, 0x48c0, 0x10, 0x10);
	cr_assert_arr_eq(again, want, sizeof(want));
}

/* ---- allocation rules ---------------------------------------------------------- */

static struct linear_layout empty_layout(void)
{
	struct linear_layout l;

	memset(&l, 0, sizeof(l));
	l.size = LINEAR_HDR_SIZE;
	return l;
}

Test(linear_plan, reproduces_captured_layout)
{
	struct linear_layout l = empty_layout();
	uint8_t raw[LINEAR_HDR_SIZE], want[LINEAR_HDR_SIZE];

	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 1315), 0);
	assert_slot(&l, STORE_PERMALL, 192, 1315, 2048);
	cr_assert_eq(l.size, 2240);
	cr_assert_eq(linear_plan_write(&l, STORE_VOLATILE, 8986), 0);
	assert_slot(&l, STORE_VOLATILE, 2240, 8986, 16384);
	cr_assert_eq(l.size, CAPTURED_SIZE);
	linear_hdr_format(&l, raw);
	raw_captured(want);
	cr_assert_arr_eq(raw, want, sizeof(raw));
}

Test(linear_plan, rewrite_in_place)
{
	struct linear_layout l = empty_layout();

	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 1315), 0);
	cr_assert_eq(linear_plan_write(&l, STORE_VOLATILE, 8986), 0);
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 2048), 0);
	assert_slot(&l, STORE_PERMALL, 192, 2048, 2048);
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 10), 0);
	assert_slot(&l, STORE_PERMALL, 192, 10, 2048); /* sections never shrink */
	assert_slot(&l, STORE_VOLATILE, 2240, 8986, 16384);
	cr_assert_eq(l.size, CAPTURED_SIZE);
	assert_consistent(&l);
}

Test(linear_plan, growth_moves_later_sections_down)
{
	struct linear_layout l = empty_layout();

	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 1315), 0);
	cr_assert_eq(linear_plan_write(&l, STORE_VOLATILE, 8986), 0);
	/* permall outgrows 2048: volatilestate moves to 192, permall goes last */
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 4409), 0);
	assert_slot(&l, STORE_VOLATILE, 192, 8986, 16384);
	assert_slot(&l, STORE_PERMALL, 192 + 16384, 4409, 8192);
	cr_assert_eq(l.size, 192 + 16384 + 8192);
	assert_consistent(&l);
	/* the last section grows where it is */
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 9000), 0);
	assert_slot(&l, STORE_PERMALL, 192 + 16384, 9000, 16384);
	cr_assert_eq(l.size, 192 + 16384 + 16384);
	/* savestate after both, then volatilestate grows past it */
	cr_assert_eq(linear_plan_write(&l, STORE_SAVESTATE, 970), 0);
	assert_slot(&l, STORE_SAVESTATE, 192 + 32768, 970, 1024);
	cr_assert_eq(linear_plan_write(&l, STORE_VOLATILE, 20000), 0);
	assert_slot(&l, STORE_PERMALL, 192, 9000, 16384);
	assert_slot(&l, STORE_SAVESTATE, 192 + 16384, 970, 1024);
	assert_slot(&l, STORE_VOLATILE, 192 + 16384 + 1024, 20000, 32768);
	cr_assert_eq(l.size, 192 + 16384 + 1024 + 32768);
	assert_consistent(&l);
}

Test(linear_plan, delete_and_shrink)
{
	struct linear_layout l = empty_layout(), m;

	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 1315), 0);
	cr_assert_eq(linear_plan_write(&l, STORE_VOLATILE, 8986), 0);
	m = l;
	/* the last one: nothing moves, the file loses the section */
	cr_assert_eq(linear_plan_delete(&m, STORE_VOLATILE), 0);
	assert_slot(&m, STORE_PERMALL, 192, 1315, 2048);
	cr_assert_eq(m.slot[STORE_VOLATILE].offset, 0);
	cr_assert_eq(m.size, 2240);
	/* the first one: the rest moves down */
	m = l;
	cr_assert_eq(linear_plan_delete(&m, STORE_PERMALL), 0);
	assert_slot(&m, STORE_VOLATILE, 192, 8986, 16384);
	cr_assert_eq(m.size, CAPTURED_SIZE - 2048);
	assert_consistent(&m);
	/* deleting what is not there changes nothing */
	cr_assert_eq(linear_plan_delete(&m, STORE_SAVESTATE), 0);
	cr_assert_eq(m.size, CAPTURED_SIZE - 2048);
	cr_assert_eq(linear_plan_delete(&m, STORE_PERMALL), 0);
	assert_slot(&m, STORE_VOLATILE, 192, 8986, 16384);
	/* and a new item goes to the end again */
	cr_assert_eq(linear_plan_write(&m, STORE_PERMALL, 1315), 0);
	assert_slot(&m, STORE_PERMALL, 192 + 16384, 1315, 2048);
	assert_consistent(&m);
}

Test(linear_plan, oversized_file_is_cut_like_swtpm)
{
	struct linear_layout l = empty_layout();

	/* a formatted file that was bigger: alloc resizes to the new end */
	l.size = 100000;
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 1315), 0);
	cr_assert_eq(l.size, 2240);
	/* delete keeps swtpm's arithmetic: size minus the section */
	l.size = 5000;
	cr_assert_eq(linear_plan_delete(&l, STORE_PERMALL), 0);
	cr_assert_eq(l.size, 5000 - 2048);
}

Test(linear_plan, holes_are_kept_consistent)
{
	uint8_t raw[LINEAR_HDR_SIZE];
	struct linear_layout l;

	raw_empty(raw);
	raw_slot(raw, 0, 192, 1000, 1024);
	raw_slot(raw, 1, 4096, 3000, 4096); /* hole 1216..4096 */
	raw_slot(raw, 2, 8192, 100, 128);
	cr_assert_eq(linear_hdr_parse(raw, sizeof(raw), 8320, &l), 0);
	cr_assert_eq(linear_plan_delete(&l, 0), 0);
	assert_slot(&l, 1, 4096 - 1024, 3000, 4096);
	assert_slot(&l, 2, 8192 - 1024, 100, 128);
	assert_consistent(&l);
	cr_assert_eq(linear_plan_write(&l, 1, 5000), 0);
	assert_slot(&l, 2, 8192 - 1024 - 4096, 100, 128);
	assert_slot(&l, 1, 8192 - 1024 - 4096 + 128, 5000, 8192);
	assert_consistent(&l);
}

Test(linear_plan, fixed_size_device)
{
	struct linear_layout l = empty_layout();

	l.fixed = true;
	l.size = 4300;
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 1315), 0);
	assert_slot(&l, STORE_PERMALL, 192, 1315, 2048);
	cr_assert_eq(l.size, 4300, "a device is never resized");
	cr_assert_eq(linear_plan_write(&l, STORE_VOLATILE, 1500), 0);
	assert_slot(&l, STORE_VOLATILE, 2240, 1500, 2048);
	cr_assert_eq(l.size, 4300);
	cr_assert_eq(linear_plan_write(&l, STORE_SAVESTATE, 16), -ENOSPC);
	l.slot[STORE_SAVESTATE].offset = 0;
	cr_assert_eq(linear_plan_write(&l, STORE_SAVESTATE, 8), 0, "fits before the end");
	assert_slot(&l, STORE_SAVESTATE, 4288, 8, 8);
	cr_assert_eq(linear_plan_delete(&l, STORE_SAVESTATE), 0);
	cr_assert_eq(linear_plan_delete(&l, STORE_PERMALL), 0);
	assert_slot(&l, STORE_VOLATILE, 192, 1500, 2048);
	cr_assert_eq(l.size, 4300);
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 2048), 0);
	assert_slot(&l, STORE_PERMALL, 2240, 2048, 2048);
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 2049), -ENOSPC);
}

Test(linear_plan, limits)
{
	struct linear_layout l = empty_layout();

	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 0), -EINVAL);
	cr_assert_eq(linear_plan_write(&l, LINEAR_SLOTS, 10), -EINVAL);
	cr_assert_eq(linear_plan_delete(&l, LINEAR_SLOTS), -EINVAL);
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, ((uint64_t)64 << 20) + 1), -EFBIG);
	/* past 32-bit offsets on a (hypothetical) huge device */
	l.fixed = true;
	l.size = UINT32_MAX;
	l.slot[3] = (struct linear_slot){ 192, 10, 0x40000000u };
	l.slot[4] = (struct linear_slot){ 192 + 0x40000000u, 10, 0x40000000u };
	l.slot[5] = (struct linear_slot){ 192 + 0x80000000u, 10, 0x40000000u };
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 0x40000000u), -EFBIG);
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 0x3fffff00u), -EFBIG,
		     "section rounds up to 1 GiB");
	cr_assert_eq(linear_plan_write(&l, STORE_PERMALL, 0x100), 0);
	assert_slot(&l, STORE_PERMALL, 192 + 0xc0000000u, 0x100, 0x100);
}

/* ---- the store on a regular file ------------------------------------------------ */

Test(linear, prepare_creates_and_formats)
{
	struct store st;
	uint8_t *buf, want[LINEAR_HDR_SIZE];
	size_t len, sz;
	mode_t old = umask(022);

	init_store(&st);
	cr_assert_eq(access(g_file, F_OK), -1, "no I/O at init");
	cr_assert_eq(store_prepare(&st), 0);
	cr_assert(store_locked(&st));
	cr_assert(st.lock_was_held);
	cr_assert_eq(file_size(g_file), LINEAR_HDR_SIZE);
	buf = read_file(g_file, &len);
	raw_empty(want);
	cr_assert_arr_eq(buf, want, LINEAR_HDR_SIZE);
	free(buf);
	{
		struct stat sb;

		cr_assert_eq(stat(g_file, &sb), 0);
		cr_assert_eq(sb.st_mode & 07777, 0640, "mode %o", sb.st_mode & 07777);
	}
	cr_assert(fcntl(st.lin.fd, F_GETFD) & FD_CLOEXEC);
	cr_assert_eq(store_prepare(&st), 0, "idempotent");
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &sz), -ENOENT);
	cr_assert_eq(store_load(&st, STORE_VOLATILE, &buf, &len), -ENOENT);
	store_fini(&st);
	umask(old);
}

Test(linear, mode_option_ignored)
{
	struct store st;
	struct stat sb;
	mode_t old = umask(0);

	cr_assert_eq(store_init(&st, g_uri, true, 0600), 0);
	cr_assert_eq(store_prepare(&st), 0);
	cr_assert_eq(stat(g_file, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0640, "mode= does not apply to file://");
	store_fini(&st);
	umask(old);
	/* an existing file keeps its mode on load (no fchmod, unlike dir://) */
	cr_assert_eq(chmod(g_file, 0604), 0);
	cr_assert_eq(store_init(&st, g_uri, true, 0600), 0);
	cr_assert_eq(store_prepare(&st), 0);
	cr_assert_eq(stat(g_file, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0604);
	store_fini(&st);
}

Test(linear, missing_directory)
{
	struct store st;

	snprintf(g_uri, sizeof(g_uri), "file://%s/nodir/x.img", g_dir);
	init_store(&st);
	cr_assert_eq(store_prepare(&st), -ENOENT);
	cr_assert_eq(st.lin.fd, -1);
	store_fini(&st);
}

Test(linear, not_a_file)
{
	struct store st;

	snprintf(g_uri, sizeof(g_uri), "file://%s", g_dir);
	init_store(&st);
	cr_assert_lt(store_prepare(&st), 0, "a directory");
	store_fini(&st);
	snprintf(g_file, sizeof(g_file), "%s/fifo", g_dir);
	cr_assert_eq(mkfifo(g_file, 0600), 0);
	snprintf(g_uri, sizeof(g_uri), "file://%s", g_file);
	init_store(&st);
	cr_assert_eq(store_prepare(&st), -EINVAL, "a FIFO");
	store_fini(&st);
}

Test(linear, roundtrip_exact_bytes)
{
	struct store st;
	uint8_t *p0 = pattern(1299, 1), *p1 = pattern(8970, 2), *got = NULL;
	size_t len, sz;

	init_store(&st);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p0, 1299), 0);
	cr_assert(store_has_pending(&st));
	cr_assert_eq(access(g_file, F_OK), -1, "recorded only");
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_not(store_has_pending(&st));
	cr_assert_eq(file_size(g_file), 2240);
	assert_slot_holds(g_file, STORE_PERMALL, p0, 1299);

	cr_assert_eq(store_save(&st, STORE_VOLATILE, p1, 8970), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(file_size(g_file), CAPTURED_SIZE);
	{
		uint8_t want[LINEAR_HDR_SIZE];
		uint8_t *file = read_file(g_file, &len);

		/* the same header swtpm wrote in the capture (same container sizes) */
		raw_captured(want);
		cr_assert_arr_eq(file, want, LINEAR_HDR_SIZE);
		free(file);
	}
	cr_assert_eq(store_load(&st, STORE_VOLATILE, &got, &len), 0);
	cr_assert_eq(len, 8970);
	cr_assert_arr_eq(got, p1, len);
	free(got);
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &sz), 0);
	cr_assert_eq(sz, 1315);
	cr_assert_eq(store_item_size(&st, STORE_VOLATILE, &sz), 0);
	cr_assert_eq(sz, 8986);
	store_fini(&st);

	/* a new store reads it back */
	init_store(&st);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &got, &len), 0);
	cr_assert_eq(len, 1299);
	cr_assert_arr_eq(got, p0, len);
	free(got);
	store_fini(&st);
	free(p0);
	free(p1);
}

Test(linear, pending_seen_first)
{
	struct store st;
	uint8_t *p = pattern(100, 3), *got;
	size_t len, sz;

	init_store(&st);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 100), 0);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &got, &len), 0);
	cr_assert_eq(len, 100);
	free(got);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(store_delete(&st, STORE_PERMALL), 0);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &got, &len), -ENOENT);
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &sz), -ENOENT);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(file_size(g_file), LINEAR_HDR_SIZE, "emptied again");
	store_fini(&st);
	free(p);
}

Test(linear, growth_moves_data)
{
	struct store st;
	struct linear_layout l;
	uint8_t *p0 = pattern(1299, 4), *p1 = pattern(8970, 5), *p0b = pattern(4393, 6);
	uint8_t *got;
	size_t len;

	init_store(&st);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p0, 1299), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(store_save(&st, STORE_VOLATILE, p1, 8970), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p0b, 4393), 0);
	cr_assert_eq(store_flush_sync(&st), 0);

	cr_assert_eq(parse_file(g_file, &l), 0);
	assert_slot(&l, STORE_VOLATILE, 192, 8986, 16384);
	assert_slot(&l, STORE_PERMALL, 192 + 16384, 4409, 8192);
	cr_assert_eq(file_size(g_file), 192 + 16384 + 8192);
	assert_slot_holds(g_file, STORE_VOLATILE, p1, 8970);
	assert_slot_holds(g_file, STORE_PERMALL, p0b, 4393);
	cr_assert_eq(store_load(&st, STORE_VOLATILE, &got, &len), 0);
	cr_assert_eq(len, 8970);
	cr_assert_arr_eq(got, p1, len);
	free(got);

	/* delete the first section: permall moves down, the file shrinks */
	cr_assert_eq(store_delete(&st, STORE_VOLATILE), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(parse_file(g_file, &l), 0);
	assert_slot(&l, STORE_PERMALL, 192, 4409, 8192);
	cr_assert_eq(l.slot[STORE_VOLATILE].offset, 0);
	cr_assert_eq(file_size(g_file), 192 + 8192);
	assert_slot_holds(g_file, STORE_PERMALL, p0b, 4393);
	store_fini(&st);
	free(p0);
	free(p1);
	free(p0b);
}

Test(linear, batch_of_records)
{
	struct store st;
	struct linear_layout l;
	uint8_t *a = pattern(500, 7), *b = pattern(3000, 8), *c = pattern(900, 9);

	init_store(&st);
	cr_assert_eq(store_save(&st, STORE_PERMALL, a, 500), 0);
	cr_assert_eq(store_save(&st, STORE_VOLATILE, b, 3000), 0);
	cr_assert_eq(store_save(&st, STORE_SAVESTATE, c, 900), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(parse_file(g_file, &l), 0);
	assert_slot(&l, STORE_PERMALL, 192, 516, 1024);
	assert_slot(&l, STORE_VOLATILE, 192 + 1024, 3016, 4096);
	assert_slot(&l, STORE_SAVESTATE, 192 + 1024 + 4096, 916, 1024);
	/* one flush: delete the middle one and grow the first */
	cr_assert_eq(store_delete(&st, STORE_VOLATILE), 0);
	free(a);
	a = pattern(1500, 10);
	cr_assert_eq(store_save(&st, STORE_PERMALL, a, 1500), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(parse_file(g_file, &l), 0);
	assert_slot(&l, STORE_SAVESTATE, 192, 916, 1024);
	assert_slot(&l, STORE_PERMALL, 192 + 1024, 1516, 2048);
	cr_assert_eq(file_size(g_file), 192 + 1024 + 2048);
	assert_slot_holds(g_file, STORE_SAVESTATE, c, 900);
	assert_slot_holds(g_file, STORE_PERMALL, a, 1500);
	store_fini(&st);
	free(a);
	free(b);
	free(c);
}

Test(linear, encrypted_state)
{
	struct vtpm_key key = { .len = 16 };
	struct store st;
	uint8_t *p = pattern(1299, 11), *raw, *got;
	size_t rlen, len;

	for (int i = 0; i < 16; i++)
		key.bytes[i] = (uint8_t)i;
	init_store(&st);
	st.key = &key;
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 1299), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(store_load_raw(&st, STORE_PERMALL, &raw, &rlen), 0);
	cr_assert_eq(rlen, 1388, "state-files.md §9.3 size");
	cr_assert_eq(raw[5], 0x01, "flag ENCRYPTED");
	cr_assert_eq(store_load(&st, STORE_PERMALL, &got, &len), 0);
	cr_assert_eq(len, 1299);
	cr_assert_arr_eq(got, p, len);
	free(raw);
	free(got);
	store_fini(&st);
	free(p);
}

Test(linear, format_bad_magic_keeps_size)
{
	struct store st;
	uint8_t junk[1000];
	uint8_t *p = pattern(100, 12), *file;
	size_t len;

	memset(junk, 'x', sizeof(junk));
	write_file(g_file, junk, sizeof(junk));
	init_store(&st);
	cr_assert_eq(store_prepare(&st), 0);
	cr_assert_eq(file_size(g_file), 1000, "swtpm formats in place");
	file = read_file(g_file, &len);
	cr_assert_eq(memcmp(file, "nilmptws", 8), 0);
	cr_assert_eq(file[LINEAR_HDR_SIZE], 'x', "only the header is written");
	free(file);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 100), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert_eq(file_size(g_file), 192 + 128, "and resized by the first allocation");
	store_fini(&st);
	free(p);

	/* shorter than a header, no magic: grows to 192 */
	write_file(g_file, "abc", 3);
	init_store(&st);
	cr_assert_eq(store_prepare(&st), 0);
	cr_assert_eq(file_size(g_file), LINEAR_HDR_SIZE);
	store_fini(&st);
}

/* A broken header is reported and the file left alone. */
static void expect_prepare_error(const uint8_t *data, size_t len, int want)
{
	struct store st;
	uint8_t *after;
	size_t alen;

	write_file(g_file, data, len);
	init_store(&st);
	cr_assert_eq(store_prepare(&st), want);
	cr_assert_eq(st.lin.fd, -1);
	cr_assert_not(store_locked(&st));
	store_fini(&st);
	after = read_file(g_file, &alen);
	cr_assert_eq(alen, len);
	cr_assert_arr_eq(after, data, len);
	free(after);
}

Test(linear, malformed_files_refused)
{
	uint8_t *buf = calloc(1, CAPTURED_SIZE);

	cr_assert_not_null(buf);
	raw_captured(buf);
	buf[8] = 2;
	expect_prepare_error(buf, CAPTURED_SIZE, -EPROTONOSUPPORT);
	raw_captured(buf);
	expect_prepare_error(buf, CAPTURED_SIZE - 1, -EBADMSG); /* last section past EOF */
	raw_captured(buf);
	raw_slot(buf, 1, 0x4c0, 0x231a, 0x4000);
	expect_prepare_error(buf, CAPTURED_SIZE, -EBADMSG); /* overlap */
	raw_captured(buf);
	raw_slot(buf, 0, 0xc0, 0x523, 0x700);
	expect_prepare_error(buf, CAPTURED_SIZE, -EBADMSG); /* not a power of two */
	raw_captured(buf);
	raw_slot(buf, 2, 0xfffff000u, 1, 0x2000);
	expect_prepare_error(buf, CAPTURED_SIZE, -EBADMSG); /* 32-bit overflow */
	raw_captured(buf);
	buf[10] = 0xc1;
	expect_prepare_error(buf, CAPTURED_SIZE, -EBADMSG); /* hdrsize */
	raw_captured(buf);
	expect_prepare_error(buf, 100, -EBADMSG); /* magic but truncated */
	free(buf);
}

Test(linear, damaged_container_is_ebadmsg)
{
	struct store st;
	uint8_t *p = pattern(200, 13), *got;
	size_t len;
	int fd;

	init_store(&st);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 200), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	/* a torn write: the data TLV claims more bytes than the container has */
	fd = open(g_file, O_WRONLY);
	cr_assert_eq(pwrite(fd, "\x00\x00\x10\x00", 4, 192 + 12), 4);
	close(fd);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &got, &len), -EBADMSG);
	store_fini(&st);
	free(p);
}

Test(linear, header_clobbered_while_locked)
{
	struct store st;
	uint8_t *p = pattern(10, 14), *got;
	size_t len;
	int fd;

	init_store(&st);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 10), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	fd = open(g_file, O_WRONLY);
	cr_assert_eq(pwrite(fd, "XXXXXXXX", 8, 0), 8);
	close(fd);
	/* no silent re-format (that would make libtpms manufacture a new TPM) */
	cr_assert_eq(store_load(&st, STORE_PERMALL, &got, &len), -EBADMSG);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 10), 0);
	cr_assert_eq(store_flush_sync(&st), -EBADMSG);
	cr_assert(store_has_pending(&st), "kept for a retry");
	store_fini(&st);
	free(p);
}

Test(linear, fsync_knob)
{
	struct store st;
	uint8_t *p = pattern(10, 15);

	setenv("VTPM_NO_FSYNC", "1", 1);
	init_store(&st);
	cr_assert(st.fsync_disabled);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 10), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	assert_slot_holds(g_file, STORE_PERMALL, p, 10);
	store_fini(&st);
	unsetenv("VTPM_NO_FSYNC");
	free(p);
}

Test(linear, uring_flush_is_synchronous)
{
	struct store st;
	struct io_uring ring;
	uint8_t *p = pattern(300, 16);
	unsigned space;

	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	init_store(&st);
	cr_assert_eq(store_flush_prep_uring(&st, &ring, 1, true), 0, "nothing pending");
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 300), 0);
	space = io_uring_sq_space_left(&ring);
	cr_assert_eq(store_flush_prep_uring(&st, &ring, 1, true), 0);
	cr_assert_eq(io_uring_sq_space_left(&ring), space, "no SQE queued");
	cr_assert_not(store_busy(&st));
	cr_assert_not(store_has_pending(&st));
	assert_slot_holds(g_file, STORE_PERMALL, p, 300);
	/* an error is returned with the record still pending */
	store_fini(&st);
	snprintf(g_uri, sizeof(g_uri), "file://%s/nodir/x.img", g_dir);
	init_store(&st);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 300), 0);
	cr_assert_eq(store_flush_prep_uring(&st, &ring, 1, true), -ENOENT);
	cr_assert(store_has_pending(&st));
	store_fini(&st);
	io_uring_queue_exit(&ring);
	free(p);
}

/* ---- locking ---------------------------------------------------------------------- */

Test(linear, second_store_cannot_lock)
{
	struct store a, b;
	size_t sz;

	init_store(&a);
	init_store(&b);
	cr_assert_eq(store_prepare(&a), 0);
	cr_assert_eq(store_prepare(&b), -EAGAIN);
	cr_assert_eq(b.lin.fd, -1);
	cr_assert_eq(store_item_size(&b, STORE_PERMALL, &sz), -EAGAIN);
	store_fini(&a);
	cr_assert_eq(store_prepare(&b), 0);
	store_fini(&b);
}

Test(linear, posix_lock_holder_blocks_us)
{
	int pfd[2], status;
	struct store st;
	pid_t pid;
	char c;

	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* what swtpm 0.10 does: a classic fcntl lock on the file itself */
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd = open(g_file, O_RDWR | O_CREAT, 0640);

		if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0 || write(pfd[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	cr_assert_eq(read(pfd[0], &c, 1), 1);
	init_store(&st);
	cr_assert_eq(store_prepare(&st), -EAGAIN);
	cr_assert_eq(file_size(g_file), 0, "not formatted without the lock");
	cr_assert_eq(store_lock_retry(&st, 2), -EAGAIN);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	cr_assert_eq(store_lock_retry(&st, 2), 0);
	cr_assert(store_locked(&st));
	store_fini(&st);
}

Test(linear, we_block_a_posix_locker)
{
	struct store st;
	int status;
	pid_t pid;

	init_store(&st);
	cr_assert_eq(store_prepare(&st), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd = open(g_file, O_RDWR);

		_exit(fd >= 0 && fcntl(fd, F_SETLK, &fl) < 0 ? 0 : 1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child got the lock");
	store_fini(&st);
}

Test(linear, deferred_reads_without_lock_or_create)
{
	struct store st, owner;
	uint8_t *p = pattern(50, 17), *got;
	size_t len, sz;

	init_store(&st);
	st.lock_deferred = true;
	cr_assert_eq(store_prepare(&st), 0);
	cr_assert_eq(access(g_file, F_OK), -1, "nothing created while deferred");
	cr_assert_eq(store_load(&st, STORE_PERMALL, &got, &len), -ENOENT);
	cr_assert_not(store_locked(&st));

	/* another owner writes; we read what it wrote, unlocked */
	init_store(&owner);
	cr_assert_eq(store_save(&owner, STORE_PERMALL, p, 50), 0);
	cr_assert_eq(store_flush_sync(&owner), 0);
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &sz), 0);
	cr_assert_eq(sz, 66);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &got, &len), 0);
	cr_assert_arr_eq(got, p, 50);
	free(got);

	/* a write needs the lock */
	cr_assert_eq(store_save(&st, STORE_VOLATILE, p, 50), 0);
	cr_assert_eq(store_flush_sync(&st), -EAGAIN);
	cr_assert(store_has_pending(&st));
	cr_assert(st.lock_deferred, "still deferred");
	cr_assert_not(st.lock_was_held);

	/* the owner hands over: the next write locks */
	cr_assert_eq(store_unlock(&owner), 0);
	cr_assert_not(store_locked(&owner));
	cr_assert_eq(store_flush_sync(&st), 0);
	cr_assert(store_locked(&st));
	cr_assert_not(st.lock_deferred);
	cr_assert(st.lock_was_held);
	/* the released owner still reads, but cannot write */
	cr_assert_eq(store_load(&owner, STORE_VOLATILE, &got, &len), 0);
	free(got);
	cr_assert_eq(store_save(&owner, STORE_PERMALL, p, 10), 0);
	cr_assert_eq(store_flush_sync(&owner), -EAGAIN);
	store_fini(&owner);
	store_fini(&st);
	free(p);
}

Test(linear, deferred_does_not_format)
{
	struct store st;
	uint8_t junk[300];

	memset(junk, 'j', sizeof(junk));
	write_file(g_file, junk, sizeof(junk));
	init_store(&st);
	st.lock_deferred = true;
	{
		uint8_t *got;
		size_t len;

		cr_assert_eq(store_load(&st, STORE_PERMALL, &got, &len), -ENOENT);
	}
	cr_assert_eq(file_size(g_file), 300);
	cr_assert_eq(store_lock(&st), 0);
	cr_assert_not(st.lock_deferred);
	{
		size_t len;
		uint8_t *f = read_file(g_file, &len);

		cr_assert_eq(memcmp(f, "nilmptws", 8), 0, "formatted once locked");
		free(f);
	}
	store_fini(&st);
}

Test(linear, unlock_writes_pending_first)
{
	struct store st, other;
	uint8_t *p = pattern(77, 18);

	init_store(&st);
	cr_assert_eq(store_prepare(&st), 0);
	cr_assert_eq(store_save(&st, STORE_PERMALL, p, 77), 0);
	cr_assert_eq(store_unlock(&st), 0);
	cr_assert_not(store_has_pending(&st));
	cr_assert(st.lock_deferred);
	assert_slot_holds(g_file, STORE_PERMALL, p, 77);
	init_store(&other);
	cr_assert_eq(store_prepare(&other), 0, "the lock is free");
	cr_assert_eq(store_lock(&st), -EAGAIN);
	cr_assert(st.lock_deferred);
	store_fini(&other);
	cr_assert_eq(store_lock(&st), 0);
	store_fini(&st);
	free(p);
}

/* ---- real swtpm 0.7.1 peers ---------------------------------------------------- */

static bool have_swtpm(void)
{
	return access("/usr/bin/swtpm", X_OK) == 0 && access("/usr/bin/swtpm_ioctl", X_OK) == 0;
}


static void sock_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", g_dir, name);
}

/* /usr/bin/swtpm --tpm2 on the test file, not-need-init (plus extra flags). */
static pid_t spawn_swtpm(const char *flags)
{
	char state[200], ctrl[128], srv[128], c[96], s[96];
	struct stat sb;
	pid_t pid;

	snprintf(state, sizeof(state), "backend-uri=%s", g_uri);
	sock_path(c, sizeof(c), "c");
	sock_path(s, sizeof(s), "s");
	snprintf(ctrl, sizeof(ctrl), "type=unixio,path=%s", c);
	snprintf(srv, sizeof(srv), "type=unixio,path=%s", s);
	unlink(c);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execl("/usr/bin/swtpm", "swtpm", "socket", "--tpm2", "--tpmstate", state, "--ctrl",
		      ctrl, "--server", srv, "--flags", flags, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int status, fd;

		/* The socket file exists from bind() on, but connections are refused
		 * until listen(): wait for a connect that works. */
		if (stat(c, &sb) == 0) {
			snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c);
			fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
				close(fd);
				g_swtpm_pid = pid;
				return pid;
			}
			if (fd >= 0)
				close(fd);
		}
		if (waitpid(pid, &status, WNOHANG) == pid)
			cr_assert_fail("swtpm exited early (status %d)", status);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_fail("swtpm did not come up within 5 s");
	return -1;
}

/* swtpm_ioctl --unix D/c <opt>; its exit status. */
static int swtpm_ioctl(const char *opt)
{
	char c[96];
	int status = 0;
	pid_t pid;

	sock_path(c, sizeof(c), "c");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execl("/usr/bin/swtpm_ioctl", "swtpm_ioctl", "--unix", c, opt, (char *)NULL);
		_exit(127);
	}
	if (wait_child(pid, 10000, &status) < 0)
		return -ETIMEDOUT;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* One TPM command over swtpm's UnixIO data socket; the response code. */
static uint32_t swtpm_cmd(const uint8_t *cmd, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t rsp[4096];
	size_t got = 0;
	int fd;

	sock_path(sa.sun_path, sizeof(sa.sun_path), "s");
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(write(fd, cmd, len), (ssize_t)len);
	while (got < 10) {
		ssize_t n = read(fd, rsp + got, sizeof(rsp) - got);

		cr_assert_gt(n, 0, "short TPM response");
		got += (size_t)n;
	}
	close(fd);
	return (uint32_t)rsp[6] << 24 | (uint32_t)rsp[7] << 16 | (uint32_t)rsp[8] << 8 | rsp[9];
}

static const uint8_t tpm2_shutdown_state[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x45, 0, 1 };
static const uint8_t tpm2_startup_clear[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0 };
static const uint8_t tpm2_getrandom8[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 8 };

static void stop_swtpm(pid_t pid)
{
	int status = 0;

	cr_assert_eq(swtpm_ioctl("-s"), 0, "swtpm_ioctl -s");
	cr_assert_eq(wait_child(pid, 10000, &status), 0, "swtpm did not exit");
	g_swtpm_pid = 0;
}

/* swtpm 0.7.1 writes, grows and moves; we parse and load every step. */
Test(linear, swtpm_writes_we_read, .timeout = 60)
{
	static const uint8_t magic2[] = { 0x00, 0x03, 0xab, 0x36, 0x47, 0x23 };
	struct linear_layout l0, l1, plan;
	struct store st;
	uint8_t *pl = NULL, *vol = NULL, *f = NULL, *re = NULL;
	size_t plen, vlen, flen, relen, sz;
	pid_t pid;

	if (!have_swtpm())
		cr_skip_test("swtpm 0.7.1 not installed");
	pid = spawn_swtpm("not-need-init,startup-clear");
	cr_assert_eq(swtpm_ioctl("-v"), 0, "swtpm_ioctl -v (store volatile)");
	/* swtpm msyncs every change: the file is current while it runs */
	cr_assert_eq(parse_file(g_file, &l0), 0);
	cr_assert_eq(l0.slot[STORE_PERMALL].offset, 192);
	cr_assert_eq(l0.slot[STORE_VOLATILE].offset, 192 + l0.slot[STORE_PERMALL].section_length);
	cr_assert_eq((uint64_t)file_size(g_file), l0.slot[STORE_VOLATILE].offset +
							 (uint64_t)l0.slot[STORE_VOLATILE].section_length);

	/* TPM2_Shutdown(STATE) makes permall outgrow its section: swtpm moves */
	cr_assert_eq(swtpm_cmd(tpm2_shutdown_state, sizeof(tpm2_shutdown_state)), 0);
	stop_swtpm(pid);
	cr_assert_eq(parse_file(g_file, &l1), 0);
	cr_assert_gt(l1.slot[STORE_PERMALL].data_length, l0.slot[STORE_PERMALL].section_length,
		     "permall did not grow (%u)", l1.slot[STORE_PERMALL].data_length);
	/* exactly what our planner does with the same operation */
	plan = l0;
	cr_assert_eq(linear_plan_write(&plan, STORE_PERMALL, l1.slot[STORE_PERMALL].data_length), 0);
	cr_assert_arr_eq(plan.slot, l1.slot, sizeof(plan.slot));
	cr_assert_eq(plan.size, (uint64_t)file_size(g_file));
	cr_assert_eq(l1.slot[STORE_VOLATILE].offset, 192);

	init_store(&st);
	cr_assert_eq(store_load(&st, STORE_PERMALL, &pl, &plen), 0);
	cr_assert_arr_eq(pl, magic2, sizeof(magic2));
	cr_assert_eq(store_load(&st, STORE_VOLATILE, &vol, &vlen), 0);
	cr_assert_eq(store_item_size(&st, STORE_PERMALL, &sz), 0);
	cr_assert_eq(sz, l1.slot[STORE_PERMALL].data_length);
	cr_assert_eq(store_item_size(&st, STORE_SAVESTATE, &sz), -ENOENT);

	/* rewriting the same payloads leaves swtpm's bytes exactly as they were */
	f = read_file(g_file, &flen);
	cr_assert_eq(store_save(&st, STORE_PERMALL, pl, plen), 0);
	cr_assert_eq(store_save(&st, STORE_VOLATILE, vol, vlen), 0);
	cr_assert_eq(store_flush_sync(&st), 0);
	re = read_file(g_file, &relen);
	cr_assert_eq(relen, flen);
	cr_assert_arr_eq(re, f, flen);
	store_fini(&st);
	free(pl);
	free(vol);
	free(f);
	free(re);
}

/* Run one TPM command through an in-process instance and flush like the loop. */
static uint32_t inst_cmd(struct instance *inst, const uint8_t *cmd, size_t len)
{
	const uint8_t *rsp;
	size_t rlen;

	cr_assert_eq(instance_process(inst, cmd, len, &rsp, &rlen), 0);
	cr_assert_geq(rlen, 10);
	cr_assert_eq(store_flush_sync(&inst->store), 0);
	return (uint32_t)rsp[6] << 24 | (uint32_t)rsp[7] << 16 | (uint32_t)rsp[8] << 8 | rsp[9];
}

static uint32_t inst_ctrl(struct instance *inst, uint32_t code, size_t n)
{
	struct ctrl_req req = { .code = code, .n = n, .fd = -1 };
	struct ctrl_rsp rsp;

	ctrl_dispatch(inst, &req, &rsp);
	ctrl_rsp_free(&rsp);
	cr_assert_eq(store_flush_sync(&inst->store), 0);
	return rsp.result;
}

/* We write (with libtpms in this process), grow and move; swtpm 0.7.1 resumes. */
Test(linear, we_write_swtpm_reads, .timeout = 60)
{
	struct vtpm_config cfg;
	struct instance inst;
	struct linear_layout l0, l1, l2;
	uint8_t *before, *after;
	size_t blen, alen;
	uint32_t pl_off, pl_len;
	pid_t pid;

	if (!have_swtpm())
		cr_skip_test("swtpm 0.7.1 not installed");
	config_init(&cfg);
	cfg.tpm2 = true;
	cfg.state_uri = strdup(g_uri);
	cr_assert_eq(instance_init(&inst, &cfg), 0);
	cr_assert_eq(inst_ctrl(&inst, CMD_INIT, 4), 0);
	cr_assert_eq(inst_cmd(&inst, tpm2_startup_clear, sizeof(tpm2_startup_clear)), 0);
	cr_assert_eq(inst_ctrl(&inst, CMD_STORE_VOLATILE, 0), 0);
	cr_assert_eq(parse_file(g_file, &l0), 0);
	cr_assert_eq(l0.slot[STORE_PERMALL].offset, 192);
	cr_assert_eq(l0.slot[STORE_VOLATILE].offset, 192 + l0.slot[STORE_PERMALL].section_length);
	/* permall grows past its section: volatilestate moves down */
	cr_assert_eq(inst_cmd(&inst, tpm2_shutdown_state, sizeof(tpm2_shutdown_state)), 0);
	cr_assert_eq(parse_file(g_file, &l1), 0);
	cr_assert_eq(l1.slot[STORE_VOLATILE].offset, 192);
	cr_assert_eq(l1.slot[STORE_PERMALL].offset, 192 + l1.slot[STORE_VOLATILE].section_length);
	/* the volatile state after the shutdown, in place */
	cr_assert_eq(inst_ctrl(&inst, CMD_STORE_VOLATILE, 0), 0);
	cr_assert_eq(parse_file(g_file, &l2), 0);
	cr_assert_eq(l2.slot[STORE_VOLATILE].offset, 192);
	instance_fini(&inst);
	config_free(&cfg);
	cr_assert_eq(parse_file(g_file, &l2), 0);
	pl_off = l2.slot[STORE_PERMALL].offset;
	pl_len = l2.slot[STORE_PERMALL].data_length;
	before = read_file(g_file, &blen);

	/* swtpm resumes from our volatile state: the TPM is started already */
	pid = spawn_swtpm("not-need-init");
	cr_assert_eq(swtpm_cmd(tpm2_getrandom8, sizeof(tpm2_getrandom8)), 0,
		     "swtpm did not resume our state");
	cr_assert_eq(swtpm_ioctl("-v"), 0);
	stop_swtpm(pid);
	after = read_file(g_file, &alen);
	cr_assert_eq(parse_file(g_file, &l1), 0);
	/* permall untouched by swtpm (it was loaded, not re-manufactured) */
	cr_assert_eq(l1.slot[STORE_PERMALL].offset, pl_off);
	cr_assert_eq(l1.slot[STORE_PERMALL].data_length, pl_len);
	cr_assert_arr_eq(after + pl_off, before + pl_off, pl_len);
	free(before);
	free(after);
}

/* ---- swtpm 0.8 lock rules through the ctrl dispatcher (libtpms in-process) ---- */

static struct vtpm_config mcfg;
static struct instance minst;

static void migration_setup(bool incoming, bool release)
{
	setup();
	config_init(&mcfg);
	mcfg.tpm2 = true;
	mcfg.state_uri = strdup(g_uri);
	mcfg.migration_incoming = incoming;
	mcfg.migration_release_lock_outgoing = release;
	cr_assert_eq(instance_init(&minst, &mcfg), 0);
}

static void migration_teardown(void)
{
	instance_fini(&minst);
	config_free(&mcfg);
	teardown();
}

static uint32_t ctrl_blob(uint32_t code, uint32_t type, const uint8_t *data, size_t len,
			  struct ctrl_rsp *out)
{
	struct ctrl_req req = { .code = code, .fd = -1 };
	struct ctrl_rsp rsp;

	if (code == CMD_GET_STATEBLOB) {
		req.n = 12;
		req.u.getstate.type = type;
	} else {
		req.n = 12 + len;
		req.u.setstate.type = type;
		req.u.setstate.length = (uint32_t)len;
		req.u.setstate.data = data;
		req.u.setstate.datalen = len;
	}
	ctrl_dispatch(&minst, &req, &rsp);
	if (out)
		*out = rsp;
	else
		ctrl_rsp_free(&rsp);
	return rsp.result;
}

static uint32_t ctrl_simple(uint32_t code, size_t n, uint32_t arg)
{
	struct ctrl_req req = { .code = code, .n = n, .fd = -1 };
	struct ctrl_rsp rsp;

	req.u.init_flags = arg; /* also .retries: same union slot */
	ctrl_dispatch(&minst, &req, &rsp);
	ctrl_rsp_free(&rsp);
	return rsp.result;
}

static uint32_t tpm_cmd_rc(const uint8_t *cmd, size_t len)
{
	const uint8_t *rsp;
	size_t rlen;

	cr_assert_eq(instance_process(&minst, cmd, len, &rsp, &rlen), 0);
	cr_assert_geq(rlen, 10);
	return (uint32_t)rsp[6] << 24 | (uint32_t)rsp[7] << 16 | (uint32_t)rsp[8] << 8 | rsp[9];
}

/* A TPM state on the file first (as the source of a migration has it), then the
 * instance under test with --migration incoming. */
static void incoming_setup(void)
{
	migration_setup(false, false);
	cr_assert_eq(ctrl_simple(CMD_INIT, 4, 0), 0);
	cr_assert_eq(tpm_cmd_rc(tpm2_startup_clear, sizeof(tpm2_startup_clear)), 0);
	cr_assert_eq(tpm_cmd_rc(tpm2_shutdown_state, sizeof(tpm2_shutdown_state)), 0);
	cr_assert_eq(store_flush_sync(&minst.store), 0);
	instance_fini(&minst);
	mcfg.migration_incoming = true;
	cr_assert_eq(instance_init(&minst, &mcfg), 0);
}

static void outgoing_setup(void)
{
	migration_setup(false, true);
}

TestSuite(linear_migration, .fini = migration_teardown, .timeout = 60);

Test(linear_migration, incoming_init_does_not_lock, .init = incoming_setup)
{
	struct store other;

	/* a source holds the file */
	init_store(&other);
	cr_assert_eq(store_prepare(&other), 0);
	cr_assert_eq(ctrl_simple(CMD_INIT, 4, 0), 0, "INIT with an incoming migration pending");
	cr_assert(minst.running);
	cr_assert_not(store_locked(&minst.store));
	cr_assert(minst.store.lock_deferred);
	/* the volatile delete of INIT is not recorded on someone else's storage */
	cr_assert_not(store_has_pending(&minst.store));
	cr_assert_eq(ctrl_simple(CMD_STOP, 0, 0), 0, "no TPM2_Shutdown written at STOP");
	cr_assert_not(store_has_pending(&minst.store));
	/* LOCK_STORAGE fails while the source holds it, then succeeds */
	cr_assert_eq(ctrl_simple(CMD_LOCK_STORAGE, 4, 1), CTRL_RES_FAIL);
	cr_assert(minst.store.lock_deferred);
	store_fini(&other);
	cr_assert_eq(ctrl_simple(CMD_LOCK_STORAGE, 4, 0), 0);
	cr_assert(store_locked(&minst.store));
	cr_assert_not(minst.store.lock_deferred);
	/* no longer pending: INIT keeps the lock and runs normally */
	cr_assert_eq(ctrl_simple(CMD_INIT, 4, 0), 0);
	cr_assert(store_locked(&minst.store));
}

Test(linear_migration, incoming_set_stateblob_takes_lock, .init = incoming_setup)
{
	struct store other;

	init_store(&other);
	cr_assert_eq(store_prepare(&other), 0);
	cr_assert_eq(ctrl_simple(CMD_INIT, 4, 0), 0);
	cr_assert_eq(ctrl_simple(CMD_STOP, 0, 0), 0);
	store_fini(&other); /* the source let go */
	cr_assert_eq(ctrl_blob(CMD_SET_STATEBLOB, PTM_BLOB_TYPE_VOLATILE, NULL, 0, NULL), 0);
	cr_assert(store_locked(&minst.store));
	cr_assert_not(minst.store.lock_deferred);
	cr_assert_eq(ctrl_simple(CMD_INIT, 4, 0), 0);
}

Test(linear_migration, incoming_first_tpm_command_takes_lock, .init = incoming_setup)
{
	struct store other;

	cr_assert_eq(ctrl_simple(CMD_INIT, 4, 0), 0);
	cr_assert_not(store_locked(&minst.store));
	init_store(&other);
	cr_assert_eq(store_prepare(&other), 0);
	cr_assert_eq(tpm_cmd_rc(tpm2_getrandom8, sizeof(tpm2_getrandom8)), 0x101,
		     "not executed without the lock");
	store_fini(&other);
	cr_assert_eq(tpm_cmd_rc(tpm2_startup_clear, sizeof(tpm2_startup_clear)), 0);
	cr_assert(store_locked(&minst.store));
	cr_assert_eq(tpm_cmd_rc(tpm2_getrandom8, sizeof(tpm2_getrandom8)), 0);
}

/* swtpm 0.8: TPM_IOERROR, then the process ends with status 1 (the transport
 * exits with rsp.exit_status after sending the reply). */
Test(linear_migration, incoming_set_stateblob_cannot_lock, .init = incoming_setup)
{
	struct store other;
	struct ctrl_rsp rsp;

	init_store(&other);
	cr_assert_eq(store_prepare(&other), 0);
	cr_assert_eq(ctrl_blob(CMD_SET_STATEBLOB, PTM_BLOB_TYPE_PERMANENT, NULL, 0, &rsp),
		     CTRL_RES_IOERROR);
	cr_assert(rsp.exit_after);
	cr_assert_eq(rsp.exit_status, 1);
	ctrl_rsp_free(&rsp);
	store_fini(&other);
}

Test(linear_migration, outgoing_release_after_savestate, .init = outgoing_setup)
{
	struct store other;
	struct ctrl_rsp rsp;
	uint8_t *perm;
	size_t plen;

	cr_assert_eq(ctrl_simple(CMD_INIT, 4, 0), 0);
	cr_assert_eq(tpm_cmd_rc(tpm2_startup_clear, sizeof(tpm2_startup_clear)), 0);
	cr_assert_eq(store_flush_sync(&minst.store), 0);
	cr_assert(store_locked(&minst.store));
	cr_assert_eq(ctrl_blob(CMD_GET_STATEBLOB, PTM_BLOB_TYPE_PERMANENT, NULL, 0, &rsp), 0);
	perm = rsp.payload;
	plen = rsp.payload_len;
	cr_assert_gt(plen, 0);
	cr_assert_eq(ctrl_blob(CMD_GET_STATEBLOB, PTM_BLOB_TYPE_VOLATILE, NULL, 0, NULL), 0);
	cr_assert(store_locked(&minst.store), "held until the savestate blob");
	cr_assert_eq(ctrl_blob(CMD_GET_STATEBLOB, PTM_BLOB_TYPE_SAVESTATE, NULL, 0, NULL),
		     CTRL_RES_RETRY, "TPM 2: no savestate");
	cr_assert_not(store_locked(&minst.store), "released");
	cr_assert_eq(minst.store.relock_retries, 300);
	/* the destination takes it */
	init_store(&other);
	cr_assert_eq(store_prepare(&other), 0);
	/* our next TPM command waits 3 s for it, then fails; later ones fail fast */
	{
		long t0 = now_ms();

		cr_assert_eq(tpm_cmd_rc(tpm2_getrandom8, sizeof(tpm2_getrandom8)), 0x101);
		cr_assert_geq(now_ms() - t0, 2900, "retried for ~3 s");
		t0 = now_ms();
		cr_assert_eq(tpm_cmd_rc(tpm2_getrandom8, sizeof(tpm2_getrandom8)), 0x101);
		cr_assert_lt(now_ms() - t0, 1000);
	}
	/* the migration failed: the destination lets go, we take it back */
	store_fini(&other);
	cr_assert_eq(tpm_cmd_rc(tpm2_getrandom8, sizeof(tpm2_getrandom8)), 0);
	cr_assert(store_locked(&minst.store));
	free(perm);
}

Test(linear_migration, no_release_without_option, .init = incoming_setup)
{
	cr_assert_eq(ctrl_simple(CMD_LOCK_STORAGE, 4, 0), 0);
	cr_assert_eq(ctrl_simple(CMD_INIT, 4, 0), 0);
	cr_assert_eq(ctrl_blob(CMD_GET_STATEBLOB, PTM_BLOB_TYPE_SAVESTATE, NULL, 0, NULL),
		     CTRL_RES_RETRY);
	cr_assert(store_locked(&minst.store), "release-lock-outgoing not given");
}
