/* Fuzz target: recovery of the permall journal (src/instance/journal.h).
 * journal.c has no parse-from-memory entry point: it reads its two slots from
 * the journal file itself, so the input becomes that file in a private
 * directory (on /dev/shm when possible) and journal_open recovers from it.
 *
 * Input: byte 0 = configuration (TPM 1.2/2 file name, repair the slot
 * checksums so the fuzzer gets past them, write a data slot or a marker), byte
 * 1..2 = length of the data to write; the rest is the journal file (trimmed to
 * an even length; files shorter than two headers are skipped, since the
 * journal then recreates itself with a 512 KiB fallocate + fsync).
 * Checks: a recovered current state is one of the two slots' data; after a
 * write torn in the middle (a crash), recovery yields the state before the
 * write unless the torn slot itself passes its checksum, i.e. the newest slot
 * is never the one overwritten (the reply to a command is sent only after its
 * slot is on disk); after a complete write it yields the new state. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "instance/journal.h"

#define SUM_OFF 64u
#define MAX_FILE (64u * 1024u)

static int dirfd_g = -1;
static char dir_g[64];

static void cleanup(void)
{
	if (dirfd_g < 0)
		return;
	unlinkat(dirfd_g, journal_file_name(true), 0);
	unlinkat(dirfd_g, journal_file_name(false), 0);
	close(dirfd_g);
	rmdir(dir_g);
}

static int the_dir(void)
{
	if (dirfd_g >= 0)
		return dirfd_g;
	snprintf(dir_g, sizeof(dir_g), "/dev/shm/vtpm-fuzz-journal.XXXXXX");
	if (!mkdtemp(dir_g)) {
		snprintf(dir_g, sizeof(dir_g), "/tmp/vtpm-fuzz-journal.XXXXXX");
		if (!mkdtemp(dir_g))
			abort();
	}
	dirfd_g = open(dir_g, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_g < 0)
		abort();
	atexit(cleanup);
	return dirfd_g;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Write the right SHA-256 into each slot whose length field is in range. */
static void repair(uint8_t *file, size_t size)
{
	size_t slot = size / 2;

	for (int i = 0; i < 2; i++) {
		uint8_t *h = file + (size_t)i * slot;
		uint32_t len = (uint32_t)le64(h + 16);
		EVP_MD_CTX *ctx;

		if (len > slot - JOURNAL_HDR_SIZE)
			continue;
		ctx = EVP_MD_CTX_new();
		if (!ctx)
			abort();
		if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
		    !EVP_DigestUpdate(ctx, h, SUM_OFF) ||
		    !EVP_DigestUpdate(ctx, h + JOURNAL_HDR_SIZE, len) ||
		    !EVP_DigestFinal_ex(ctx, h + SUM_OFF, NULL))
			abort();
		EVP_MD_CTX_free(ctx);
	}
}

static void write_file(int dfd, const char *name, const uint8_t *p, size_t n)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		abort();
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			abort();
		p += w;
		n -= (size_t)w;
	}
	close(fd);
}

struct state {
	bool dirty;
	uint8_t *cur;
	size_t len;
};

static void snap(const struct journal *j, struct state *s)
{
	s->dirty = j->dirty;
	s->len = j->current_len;
	s->cur = j->current ? fuzz_dup(j->current, j->current_len) : NULL;
	FUZZ_CHECK(j->dirty == (j->current != NULL));
}

static bool same(const struct journal *j, const struct state *s)
{
	if (j->dirty != s->dirty)
		return false;
	if (!s->dirty)
		return true;
	return j->current_len == s->len && memcmp(j->current, s->cur, s->len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal j, j2;
	struct state before, after;
	const char *name = "tpm2-00.permall";
	uint8_t cfg, *file, *wdata;
	size_t wlen, fsize, slot;
	bool tpm2, marker;
	int dfd, r;

	if (size < 3)
		return 0;
	cfg = data[0];
	wlen = (size_t)(data[1] << 8 | data[2]);
	data += 3;
	size -= 3;
	fsize = size & ~(size_t)1;
	if (fsize < 2 * (JOURNAL_HDR_SIZE + 1) || fsize > MAX_FILE)
		return 0;
	tpm2 = !(cfg & 1);
	marker = cfg & 4;
	if (!tpm2)
		name = "tpm-00.permall";
	dfd = the_dir();
	slot = fsize / 2;

	file = fuzz_dup(data, fsize);
	if (cfg & 2)
		repair(file, fsize);
	unlinkat(dfd, journal_file_name(!tpm2), 0);
	write_file(dfd, journal_file_name(tpm2), file, fsize);

	r = journal_open(&j, dfd, tpm2, name, 0600);
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(j.fd >= 0);
	FUZZ_CHECK(j.slot_size == slot);
	if (j.current) {
		/* the data of one of the two slots */
		FUZZ_CHECK(j.current_len <= slot - JOURNAL_HDR_SIZE);
		FUZZ_CHECK(memcmp(j.current, file + JOURNAL_HDR_SIZE, j.current_len) == 0 ||
			   memcmp(j.current, file + slot + JOURNAL_HDR_SIZE, j.current_len) == 0);
	}
	snap(&j, &before);

	/* The next write: the payload is a slice of the file itself. */
	wlen %= slot - JOURNAL_HDR_SIZE + 1;
	wdata = fuzz_dup(file, wlen);
	if (marker) {
		struct journal_base zero;

		memset(&zero, 0, sizeof(zero));
		r = journal_stage_marker(&j, &zero);
	} else {
		r = journal_stage(&j, wdata, wlen);
	}
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(j.wlen == JOURNAL_HDR_SIZE + (marker ? 0 : wlen));
	FUZZ_CHECK(j.woff == 0 || (size_t)j.woff == slot);

	/* sequence numbers near 2^64 are never reached by counting (and cannot
	 * be followed); everything else must be crash-safe */
	if (le64(file + 8) < (1ULL << 63) && le64(file + slot + 8) < (1ULL << 63)) {
		/* crash in the middle of the slot write */
		if (pwrite(j.fd, j.wbuf, j.wlen / 2, j.woff) != (ssize_t)(j.wlen / 2))
			abort();
		FUZZ_CHECK(journal_open(&j2, dfd, tpm2, name, 0600) == 0);
		after.dirty = !marker;
		after.cur = wdata;
		after.len = wlen;
		/* Either the torn slot fails its checksum and the state before the
		 * write is recovered, or it passes: then it is the new slot (with
		 * whatever data its checksum covers; only a file crafted with the
		 * checksum of the coming header, which libFuzzer learns from the
		 * memcmp, gets there without the complete write). */
		if (!same(&j2, &before) && j2.seq != j.seq + 1) {
			fprintf(stderr, "torn write at offset %lld of slot size %zu: recovered "
					"neither the old nor the new state\n",
				(long long)j.woff, slot);
			FUZZ_CHECK(0);
		}
		journal_close(&j2);

		/* the complete write */
		FUZZ_CHECK(journal_write_sync(&j, false) == 0);
		journal_commit(&j, marker ? NULL : fuzz_dup(wdata, wlen), wlen);
		FUZZ_CHECK(journal_open(&j2, dfd, tpm2, name, 0600) == 0);
		FUZZ_CHECK(same(&j2, &after));
		FUZZ_CHECK(j2.seq == j.seq);
		journal_close(&j2);
	}
	journal_close(&j);
	FUZZ_CHECK(j.fd == -1 && j.current == NULL);
	free(before.cur);
	free(wdata);
	free(file);
	return 0;
}
