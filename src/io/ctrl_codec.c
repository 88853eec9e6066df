/* Socket codec of the control channel: message framing as swtpm computes it and
 * the big-endian request/response layouts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/ctrl_codec.h"

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Offset in the message of the u32 length field of a streamed command, 0 if none. */
static size_t ctrl_len_field(uint32_t code)
{
	switch (code) {
	case CMD_HASH_DATA:
		return 4;
	case CMD_SET_STATEBLOB:
		return 12;
	default:
		return 0;
	}
}

int ctrl_sock_needed(const uint8_t *buf, size_t have, size_t *needed)
{
	uint32_t code, plen;
	size_t lf;

	if (have < 4) {
		*needed = 4;
		return 0;
	}
	code = rd32(buf);
	switch (code) {
	case CMD_INIT:
		*needed = 8;
		return 0;
	case CMD_SET_LOCALITY:
	case CMD_RESET_TPMESTABLISHED:
		*needed = 5;
		return 0;
	case CMD_GET_STATEBLOB:
		*needed = 16;
		return 0;
	case CMD_LOCK_STORAGE:
		*needed = 8;
		return 0;
	default:
		break;
	}
	lf = ctrl_len_field(code);
	if (!lf) {
		/* SET_DATAFD, SET_BUFFERSIZE, GET_INFO: swtpm 0.7.1 waits for the code
		 * only, so their bodies must come in the same write. */
		*needed = 4;
		return 0;
	}
	if (have < lf + 4) {
		*needed = lf + 4;
		return 0;
	}
	plen = rd32(buf + lf);
	if (plen > CTRL_MAX_PAYLOAD)
		return -EMSGSIZE;
	*needed = lf + 4 + plen;
	return 0;
}

int ctrl_sock_in_payload(const uint8_t *buf, size_t have)
{
	size_t lf;

	if (have < 4)
		return 0;
	lf = ctrl_len_field(rd32(buf));
	return lf && have >= lf + 4;
}

int ctrl_sock_decode(const uint8_t *buf, size_t len, int fd, struct ctrl_req *req)
{
	const uint8_t *b = buf + 4;
	size_t n;

	if (len < 4)
		return -EINVAL;
	memset(req, 0, sizeof(*req));
	req->code = rd32(buf);
	req->n = n = len - 4;
	req->fd = fd;
	switch (req->code) {
	case CMD_INIT:
		if (n >= 4)
			req->u.init_flags = rd32(b);
		break;
	case CMD_SET_LOCALITY:
	case CMD_RESET_TPMESTABLISHED:
		if (n >= 1)
			req->u.loc = b[0];
		break;
	case CMD_HASH_DATA:
		if (n >= 4) {
			req->u.hash.length = rd32(b);
			req->u.hash.data = b + 4;
			req->u.hash.datalen = n - 4;
		}
		break;
	case CMD_GET_STATEBLOB:
		if (n >= 12) {
			req->u.getstate.flags = rd32(b);
			req->u.getstate.type = rd32(b + 4);
			req->u.getstate.offset = rd32(b + 8);
		}
		break;
	case CMD_SET_STATEBLOB:
		if (n >= 12) {
			req->u.setstate.flags = rd32(b);
			req->u.setstate.type = rd32(b + 4);
			req->u.setstate.length = rd32(b + 8);
			req->u.setstate.data = b + 12;
			req->u.setstate.datalen = n - 12;
		}
		break;
	case CMD_SET_BUFFERSIZE:
		if (n >= 4)
			req->u.buffersize = rd32(b);
		break;
	case CMD_GET_INFO:
		if (n >= 12) {
			req->u.getinfo.flags = (uint64_t)rd32(b) << 32 | rd32(b + 4);
			req->u.getinfo.offset = rd32(b + 8);
		}
		break;
	case CMD_LOCK_STORAGE:
		if (n >= 4)
			req->u.retries = rd32(b);
		break;
	default:
		break;
	}
	return 0;
}

int ctrl_sock_encode(uint32_t code, const struct ctrl_rsp *rsp, uint8_t **out, size_t *outlen)
{
	size_t hdr = 4, total;
	uint8_t *p;

	if (code == CMD_GET_CAPABILITY) {
		/* 0.7.1 sends a bare u64; its upper half is 0 like a result code. */
		p = malloc(8);
		if (!p)
			return -ENOMEM;
		wr32(p, (uint32_t)(rsp->u.caps >> 32));
		wr32(p + 4, (uint32_t)rsp->u.caps);
		*out = p;
		*outlen = 8;
		return 0;
	}
	if (rsp->full) {
		switch (code) {
		case CMD_GET_TPMESTABLISHED:
		case CMD_GET_CONFIG:
			hdr = 8;
			break;
		case CMD_GET_STATEBLOB:
		case CMD_SET_BUFFERSIZE:
			hdr = 16;
			break;
		case CMD_GET_INFO:
			hdr = 12;
			break;
		default:
			break;
		}
	}
	total = hdr + (rsp->full ? rsp->payload_len : 0);
	p = calloc(1, total);
	if (!p)
		return -ENOMEM;
	wr32(p, rsp->result);
	if (rsp->full) {
		switch (code) {
		case CMD_GET_TPMESTABLISHED:
			p[4] = rsp->u.est_bit;
			break;
		case CMD_GET_CONFIG:
			wr32(p + 4, rsp->u.config_flags);
			break;
		case CMD_GET_STATEBLOB:
			wr32(p + 4, rsp->u.blob.flags);
			wr32(p + 8, rsp->u.blob.totlength);
			wr32(p + 12, rsp->u.blob.length);
			break;
		case CMD_SET_BUFFERSIZE:
			wr32(p + 4, rsp->u.bufsize.size);
			wr32(p + 8, rsp->u.bufsize.min);
			wr32(p + 12, rsp->u.bufsize.max);
			break;
		case CMD_GET_INFO:
			wr32(p + 4, rsp->u.info.totlength);
			wr32(p + 8, rsp->u.info.length);
			break;
		default:
			break;
		}
		if (rsp->payload_len)
			memcpy(p + hdr, rsp->payload, rsp->payload_len);
	}
	*out = p;
	*outlen = total;
	return 0;
}
