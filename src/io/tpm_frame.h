/* Data-channel framing: where one TPM command ends in a byte stream (by the TPM
 * header size, unlike swtpm 0.7.1) and the TCG TPM_SEND_COMMAND prefix. */
#ifndef VTPM_TPM_FRAME_H
#define VTPM_TPM_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TPM_FRAME_MAX_CMD 4096u	  /* libtpms 0.9 TPM_BUFFER_MAX */
#define TPM_FRAME_PREFIX_LEN 9u	  /* u32 cmd 8, u8 locality, u32 size */
#define TPM_FRAME_SEND_COMMAND 8u /* TPM2_SEND_COMMAND of the MS simulator */

struct tpm_frame {
	size_t len;	      /* bytes of this frame in the stream */
	bool prefixed;	      /* TCG prefix present: reply must be wrapped */
	uint8_t locality;     /* prefix locality (if prefixed) */
	size_t cmd_off;	      /* offset of the TPM command in the frame */
	size_t cmd_len;	      /* its length */
};

/* Find the first frame in buf[0..have). 0: *f is complete; -EAGAIN: need more
 * bytes; -EMSGSIZE: the declared size is larger than TPM_FRAME_MAX_CMD, so the
 * stream cannot be framed (f->prefixed/locality are still set). The caller then
 * does what swtpm 0.7.1 does with every read: hand what arrived to the TPM as
 * one command, which answers with its own size or tag error. */
int tpm_frame_parse(const uint8_t *buf, size_t have, bool tpm2, struct tpm_frame *f);

/* Size of the prefixed reply wrapper around an n-byte response. */
#define TPM_FRAME_WRAP_EXTRA 8u
/* Write u32 len + rsp + u32 0 into out (n + 8 bytes). */
void tpm_frame_wrap(uint8_t *out, const uint8_t *rsp, size_t n);

#endif
