/* Helpers shared by the libFuzzer targets: an always-on check (independent of
 * NDEBUG) and a little reader that splits the fuzz input into parameters and a
 * tail. Header-only so every target stays a single file. */
#ifndef VTPM_FUZZ_COMMON_H
#define VTPM_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant the code under test must keep: abort() makes libFuzzer save the
 * input as a crash. */
#define FUZZ_CHECK(cond)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,    \
				__LINE__, #cond);                                     \
			abort();                                                      \
		}                                                                     \
	} while (0)

struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v = 0;

	if (in->left) {
		v = in->p[0];
		in->p++;
		in->left--;
	}
	return v;
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | fuzz_u8(in);
	return v;
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
	return (uint64_t)fuzz_u32(in) << 32 | fuzz_u32(in);
}

/* A heap copy of exactly `len` bytes (at least one allocated) so that ASan sees
 * any read past the end; libFuzzer's own buffer is already exact, but derived
 * slices are not. */
static inline uint8_t *fuzz_dup(const uint8_t *p, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);

	if (!c)
		abort();
	if (len)
		memcpy(c, p, len);
	return c;
}

/* A NUL-terminated heap copy. */
static inline char *fuzz_strdup(const uint8_t *p, size_t len)
{
	char *c = malloc(len + 1);

	if (!c)
		abort();
	if (len)
		memcpy(c, p, len);
	c[len] = '\0';
	return c;
}

#endif
