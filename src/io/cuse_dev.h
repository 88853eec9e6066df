/* The CUSE device's behaviour without FUSE: open/read/write/ioctl on one
 * instance, with swtpm cuse's transfer modes (TPM commands, or a state blob
 * streamed by read()/write()), the blob cache of PTM_GET_STATEBLOB and the
 * piecewise PTM_SET_STATEBLOB (data-channel.md §8, ctrl-channel.md §6.2, §8).
 * io/cuse.c only connects these to libfuse; tests drive them directly. */
#ifndef VTPM_CUSE_DEV_H
#define VTPM_CUSE_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "instance/config.h"
#include "instance/instance.h"

/* swtpm truncates longer writes to this (TPM_REQ_MAX). */
#define CUSE_REQ_MAX 4096u

/* What read() and write() mean at the moment. */
enum cuse_tx {
	CUSE_TX_CLOSED = 0, /* no open file */
	CUSE_TX_CMD,	    /* TPM commands and responses */
	CUSE_TX_GETBLOB,    /* read() continues a PTM_GET_STATEBLOB */
	CUSE_TX_SETBLOB,    /* write() feeds a PTM_SET_STATEBLOB */
};

struct cuse_dev {
	struct instance *inst;
	const struct vtpm_config *cfg;
	enum cuse_tx tx;
	bool quit;	 /* PTM_SHUTDOWN (or a fatal ctrl error): end the session */
	int exit_status; /* ... with this status */

	/* the response of the last TPM command, handed out by read() */
	uint8_t *rsp;
	size_t rsplen, rspcap, rspoff;

	/* PTM_GET_STATEBLOB: the whole blob, produced once per (type, decrypt) */
	uint8_t *blob;
	size_t bloblen, blobread;
	uint32_t blobtype, blobflags;
	bool blobdecrypt, blobvalid;

	/* PTM_SET_STATEBLOB: pieces collected until the last one (type 0: none) */
	uint8_t *set;
	size_t setlen;
	uint32_t settype, setflags;
};

void cuse_dev_init(struct cuse_dev *d, struct instance *inst, const struct vtpm_config *cfg);
void cuse_dev_fini(struct cuse_dev *d);

/* open(): 0, or -EBUSY while another open file exists. */
int cuse_dev_open(struct cuse_dev *d);
void cuse_dev_release(struct cuse_dev *d);

/* read() of up to `size` bytes: *data points to them (valid until the next
 * call). Returns the count, or -EIO (read during a blob upload). */
ssize_t cuse_dev_read(struct cuse_dev *d, size_t size, const uint8_t **data);

/* write(): a TPM command, or blob data during an upload. Returns the count to
 * acknowledge, or -EIO / -ENOMEM. */
ssize_t cuse_dev_write(struct cuse_dev *d, const uint8_t *buf, size_t size);

/* ioctl(cmd) with its argument structure in `in` (inlen bytes); the reply
 * structure goes to out (outcap bytes), *outlen bytes of it. 0, or -EINVAL for
 * an ioctl the device does not have, -EIO if the reply cannot be built. */
int cuse_dev_ioctl(struct cuse_dev *d, unsigned int cmd, const void *in, size_t inlen,
		   void *out, size_t outcap, size_t *outlen);

/* Create the state directory of a dir:// (or TPM_PATH) backend if it is
 * missing, mode 0775, as swtpm cuse does before every TPM start. 0 or -errno
 * (logged). */
int cuse_state_dir(const struct vtpm_config *cfg);

#endif
