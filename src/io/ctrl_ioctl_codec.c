/* CUSE codec of the control channel (ctrl-channel.md §3, §4, §8). */
#include <errno.h>
#include <string.h>

#include "io/ctrl_ioctl_codec.h"
#include "vtpm/ctrl_ioctl.h"

static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void st32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

size_t ctrl_ioctl_size(unsigned int cmd)
{
	switch (cmd) {
	case PTM_GET_CAPABILITY:
	case PTM_INIT:
	case PTM_SHUTDOWN:
	case PTM_GET_TPMESTABLISHED:
	case PTM_SET_LOCALITY:
	case PTM_HASH_START:
	case PTM_HASH_DATA:
	case PTM_HASH_END:
	case PTM_CANCEL_TPM_CMD:
	case PTM_STORE_VOLATILE:
	case PTM_RESET_TPMESTABLISHED:
	case PTM_GET_STATEBLOB:
	case PTM_SET_STATEBLOB:
	case PTM_STOP:
	case PTM_GET_CONFIG:
	case PTM_SET_BUFFERSIZE:
	case PTM_GET_INFO:
	case PTM_LOCK_STORAGE:
		return _IOC_SIZE(cmd);
	default:
		return 0;
	}
}

int ctrl_ioctl_decode(unsigned int cmd, const void *in, size_t inlen, struct ctrl_req *req)
{
	const uint8_t *p = in;
	size_t need;

	memset(req, 0, sizeof(*req));
	req->fd = -1;
	if (ctrl_ioctl_size(cmd) == 0)
		return -EINVAL;
	req->code = PTM_IOC_CMD(cmd);
	/* Only what the caller passes in (_IOW) carries a request part. */
	need = (_IOC_DIR(cmd) & _IOC_WRITE) ? _IOC_SIZE(cmd) : 0;
	if (inlen < need)
		return -EMSGSIZE;
	req->n = need;
	switch (cmd) {
	case PTM_INIT:
		req->u.init_flags = ld32(p);
		break;
	case PTM_SET_LOCALITY:
	case PTM_RESET_TPMESTABLISHED:
		req->u.loc = p[0];
		break;
	case PTM_HASH_DATA:
		req->u.hash.length = ld32(p);
		req->u.hash.data = p + offsetof(struct ptm_ioc_hdata, u.req.data);
		/* never more than the structure holds; the dispatcher refuses a
		 * length that does not match */
		req->u.hash.datalen = req->u.hash.length <= PTM_HASH_DATA_SIZE ? req->u.hash.length
										 : PTM_HASH_DATA_SIZE;
		break;
	case PTM_GET_STATEBLOB:
		req->u.getstate.flags = ld32(p);
		req->u.getstate.type = ld32(p + 4);
		req->u.getstate.offset = ld32(p + 8);
		break;
	case PTM_SET_STATEBLOB:
		req->u.setstate.flags = ld32(p);
		req->u.setstate.type = ld32(p + 4);
		req->u.setstate.length = ld32(p + 8);
		req->u.setstate.data = p + offsetof(struct ptm_ioc_setstate, u.req.data);
		req->u.setstate.datalen = req->u.setstate.length <= PTM_STATE_BLOB_SIZE
						  ? req->u.setstate.length
						  : PTM_STATE_BLOB_SIZE;
		break;
	case PTM_SET_BUFFERSIZE:
		req->u.buffersize = ld32(p);
		break;
	case PTM_GET_INFO:
		req->u.getinfo.flags = ld64(p);
		req->u.getinfo.offset = ld32(p + 8);
		break;
	case PTM_LOCK_STORAGE:
		req->u.retries = ld32(p);
		break;
	default:
		break;
	}
	return 0;
}

int ctrl_ioctl_encode(unsigned int cmd, const struct ctrl_rsp *rsp, void *out, size_t outcap,
		      size_t *outlen)
{
	uint8_t *p = out;
	size_t size = ctrl_ioctl_size(cmd);
	size_t room = 0, off = 0;

	if (size == 0)
		return -EINVAL;
	if (outcap < size)
		return -ENOSPC;
	memset(p, 0, size);
	*outlen = size;
	if (cmd == PTM_GET_CAPABILITY) {
		/* a bare capability word, no result field */
		memcpy(p, &rsp->u.caps, sizeof(rsp->u.caps));
		return 0;
	}
	st32(p, rsp->result);
	if (!rsp->full)
		return 0;
	switch (cmd) {
	case PTM_GET_TPMESTABLISHED:
		p[offsetof(struct ptm_ioc_est, u.resp.bit)] = rsp->u.est_bit;
		break;
	case PTM_GET_CONFIG:
		st32(p + 4, rsp->u.config_flags);
		break;
	case PTM_SET_BUFFERSIZE:
		st32(p + 4, rsp->u.bufsize.size);
		st32(p + 8, rsp->u.bufsize.min);
		st32(p + 12, rsp->u.bufsize.max);
		break;
	case PTM_GET_STATEBLOB:
		st32(p + 4, rsp->u.blob.flags);
		st32(p + 8, rsp->u.blob.totlength);
		st32(p + 12, rsp->u.blob.length);
		off = offsetof(struct ptm_ioc_getstate, u.resp.data);
		room = PTM_STATE_BLOB_SIZE;
		break;
	case PTM_GET_INFO:
		st32(p + 4, rsp->u.info.totlength);
		st32(p + 8, rsp->u.info.length);
		off = offsetof(struct ptm_ioc_getinfo, u.resp.buffer);
		room = PTM_GETINFO_SIZE;
		break;
	default:
		break;
	}
	if (rsp->payload_len > room)
		return -EMSGSIZE;
	if (rsp->payload_len)
		memcpy(p + off, rsp->payload, rsp->payload_len);
	return 0;
}
