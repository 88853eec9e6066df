/* Data-channel framing by the TPM header's size field, with the TCG
 * TPM_SEND_COMMAND prefix (data-channel.md §2, §4). */
#include <errno.h>
#include <string.h>

#include "io/tpm_frame.h"

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A frame is recognised as prefixed when, on a TPM 2, the stream does not start
 * with a TPM 2 tag (0x8001/0x8002) and its first u32 is 8 (as swtpm decides). */
static bool tpm_frame_is_prefixed(const uint8_t *buf, bool tpm2)
{
	uint16_t tag = (uint16_t)(buf[0] << 8 | buf[1]);

	if (!tpm2 || tag == 0x8001 || tag == 0x8002)
		return false;
	return rd32(buf) == TPM_FRAME_SEND_COMMAND;
}

int tpm_frame_parse(const uint8_t *buf, size_t have, bool tpm2, struct tpm_frame *f)
{
	uint32_t size;

	memset(f, 0, sizeof(*f));
	if (have < 4)
		return -EAGAIN;
	if (tpm_frame_is_prefixed(buf, tpm2)) {
		if (have < TPM_FRAME_PREFIX_LEN)
			return -EAGAIN;
		/* The prefix's own size field frames the inner command; a size below
		 * 10 yields the short-command reply, as in swtpm. */
		size = rd32(buf + 5);
		f->prefixed = true;
		f->locality = buf[4];
		if (size > TPM_FRAME_MAX_CMD)
			return -EMSGSIZE;
		f->cmd_off = TPM_FRAME_PREFIX_LEN;
		f->cmd_len = size;
		f->len = TPM_FRAME_PREFIX_LEN + size;
	} else {
		if (have < 10)
			return -EAGAIN;
		size = rd32(buf + 2);
		if (size > TPM_FRAME_MAX_CMD)
			return -EMSGSIZE;
		/* A size below the header length cannot frame anything; hand over the
		 * header alone so libtpms answers with its size error. */
		if (size < 10)
			size = 10;
		f->cmd_off = 0;
		f->cmd_len = size;
		f->len = size;
	}
	return have >= f->len ? 0 : -EAGAIN;
}

void tpm_frame_wrap(uint8_t *out, const uint8_t *rsp, size_t n)
{
	out[0] = (uint8_t)(n >> 24);
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	memmove(out + 4, rsp, n);
	memset(out + 4 + n, 0, 4);
}
