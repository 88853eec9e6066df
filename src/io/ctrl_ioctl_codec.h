/* CUSE codec of the control channel: the PTM_* ioctl argument structures (host
 * byte order, include/vtpm/ctrl_ioctl.h) to and from the dispatcher's
 * ctrl_req / ctrl_rsp. Kept apart from FUSE so it can be tested anywhere. */
#ifndef VTPM_CTRL_IOCTL_CODEC_H
#define VTPM_CTRL_IOCTL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "instance/ctrl.h"

/* The size of the argument structure of a known PTM_* ioctl (what the kernel
 * copies in for _IOW and out for _IOR), or 0 for anything else, including
 * PTM_SET_DATAFD, which has no meaning on a CUSE device. */
size_t ctrl_ioctl_size(unsigned int cmd);

/* Decode the argument of ioctl `cmd` (inlen bytes at `in`, which need not be
 * aligned) into req. req->n follows the socket's meaning: 0 for commands
 * without a request part, the structure size otherwise, so the dispatcher's
 * length checks pass for every well-formed ioctl. Data pointers in req point
 * into `in`. -EINVAL for an unknown cmd, -EMSGSIZE if inlen is shorter than
 * the request part. */
int ctrl_ioctl_decode(unsigned int cmd, const void *in, size_t inlen, struct ctrl_req *req);

/* Encode rsp as the reply structure of `cmd` into out (outcap bytes, zeroed
 * first, so padding never leaks memory). *outlen is the structure size.
 * Payloads longer than the structure's data field are an error: -EMSGSIZE.
 * -EINVAL for an unknown cmd, -ENOSPC if outcap is too small. */
int ctrl_ioctl_encode(unsigned int cmd, const struct ctrl_rsp *rsp, void *out, size_t outcap,
		      size_t *outlen);

#endif
