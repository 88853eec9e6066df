/* Fuzz target: data-channel framing (src/io/tpm_frame.h), with and without the
 * TCG TPM_SEND_COMMAND prefix. The input is a byte stream on the data channel;
 * it is split into frames as the server does, every prefix length of each frame
 * is tried (must ask for more until the frame is complete, then give the same
 * frame), and each command is wrapped as a prefixed reply and checked. */
#include <errno.h>

#include "fuzz_common.h"
#include "io/tpm_frame.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void try_prefix(const uint8_t *b, size_t n, bool tpm2, const struct tpm_frame *f)
{
	struct tpm_frame g;
	int r = tpm_frame_parse(b, n, tpm2, &g);

	if (n < f->len) {
		FUZZ_CHECK(r == -EAGAIN);
		return;
	}
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(g.len == f->len && g.prefixed == f->prefixed && g.locality == f->locality &&
		   g.cmd_off == f->cmd_off && g.cmd_len == f->cmd_len);
}

/* The same frame from every longer prefix; every shorter one asks for more. */
static void check_frame(const uint8_t *b, size_t have, bool tpm2, const struct tpm_frame *f)
{
	for (size_t n = 0; n <= have && n <= 12; n++)
		try_prefix(b, n, tpm2, f);
	try_prefix(b, f->len - 1, tpm2, f);
	try_prefix(b, f->len, tpm2, f);
	try_prefix(b, f->len + (have - f->len) / 2, tpm2, f);
	try_prefix(b, have, tpm2, f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *b;
	size_t off = 0, have;
	bool tpm2;

	if (size < 1)
		return 0;
	tpm2 = !(data[0] & 1);
	b = data + 1;
	size--;
	while (off < size) {
		struct tpm_frame f;
		int r;

		have = size - off;
		r = tpm_frame_parse(b + off, have, tpm2, &f);
		if (r == -EAGAIN) {
			FUZZ_CHECK(have < 10 || f.len > have);
			break;
		}
		if (r == -EMSGSIZE) {
			/* the server hands all of it to the TPM in one go */
			FUZZ_CHECK(have >= 4);
			FUZZ_CHECK(!f.prefixed || have >= TPM_FRAME_PREFIX_LEN);
			break;
		}
		FUZZ_CHECK(r == 0);
		FUZZ_CHECK(f.len >= 10 || f.prefixed);
		FUZZ_CHECK(f.len <= have);
		FUZZ_CHECK(f.len <= TPM_FRAME_PREFIX_LEN + TPM_FRAME_MAX_CMD);
		FUZZ_CHECK(f.cmd_off + f.cmd_len == f.len);
		FUZZ_CHECK(f.cmd_len <= TPM_FRAME_MAX_CMD);
		if (f.prefixed) {
			FUZZ_CHECK(tpm2);
			FUZZ_CHECK(f.cmd_off == TPM_FRAME_PREFIX_LEN);
			FUZZ_CHECK(be32(b + off) == TPM_FRAME_SEND_COMMAND);
			FUZZ_CHECK(f.locality == b[off + 4]);
			FUZZ_CHECK(f.cmd_len == be32(b + off + 5));
		} else {
			FUZZ_CHECK(f.cmd_off == 0);
		}
		check_frame(b + off, have, tpm2, &f);

		/* the reply wrapper around the command's bytes */
		{
			uint8_t *out = malloc(f.cmd_len + TPM_FRAME_WRAP_EXTRA);

			if (!out)
				abort();
			tpm_frame_wrap(out, b + off + f.cmd_off, f.cmd_len);
			FUZZ_CHECK(be32(out) == f.cmd_len);
			FUZZ_CHECK(memcmp(out + 4, b + off + f.cmd_off, f.cmd_len) == 0);
			FUZZ_CHECK(be32(out + 4 + f.cmd_len) == 0);
			free(out);
		}
		off += f.len;
	}
	return 0;
}
