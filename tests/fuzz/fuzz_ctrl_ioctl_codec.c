/* Fuzz target: the CUSE ioctl codec (src/io/ctrl_ioctl_codec.h). The input
 * picks an ioctl request number (one of the PTM_* set, or any 32-bit value)
 * and supplies the argument bytes the kernel copied in, at any length and
 * alignment. Decoded requests are re-encoded as the ioctl structure by a
 * reference encoder and decoded again (must be equal); then a reply built from
 * fuzz bytes is encoded into an exactly-sized buffer and read back field by
 * field (no dispatcher involved). */
#include <errno.h>

#include "fuzz_common.h"
#include "io/ctrl_ioctl_codec.h"
#include "vtpm/ctrl_ioctl.h"

static const unsigned int ptm_cmds[] = {
	PTM_GET_CAPABILITY, PTM_INIT,		PTM_SHUTDOWN,	    PTM_GET_TPMESTABLISHED,
	PTM_SET_LOCALITY,   PTM_HASH_START,	PTM_HASH_DATA,	    PTM_HASH_END,
	PTM_CANCEL_TPM_CMD, PTM_STORE_VOLATILE, PTM_RESET_TPMESTABLISHED,
	PTM_GET_STATEBLOB,  PTM_SET_STATEBLOB,	PTM_STOP,	    PTM_GET_CONFIG,
	PTM_SET_DATAFD,	    PTM_SET_BUFFERSIZE, PTM_GET_INFO,	    PTM_LOCK_STORAGE,
};
#define NCMDS (sizeof(ptm_cmds) / sizeof(ptm_cmds[0]))

static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* The request part of the ioctl structure, written from a decoded request. */
static void ref_encode_req(unsigned int cmd, const struct ctrl_req *r, uint8_t *out)
{
	switch (cmd) {
	case PTM_INIT:
		memcpy(out, &r->u.init_flags, 4);
		break;
	case PTM_SET_LOCALITY:
	case PTM_RESET_TPMESTABLISHED:
		out[0] = r->u.loc;
		break;
	case PTM_HASH_DATA:
		memcpy(out, &r->u.hash.length, 4);
		memcpy(out + 4, r->u.hash.data, r->u.hash.datalen);
		break;
	case PTM_GET_STATEBLOB:
		memcpy(out, &r->u.getstate.flags, 4);
		memcpy(out + 4, &r->u.getstate.type, 4);
		memcpy(out + 8, &r->u.getstate.offset, 4);
		break;
	case PTM_SET_STATEBLOB:
		memcpy(out, &r->u.setstate.flags, 4);
		memcpy(out + 4, &r->u.setstate.type, 4);
		memcpy(out + 8, &r->u.setstate.length, 4);
		memcpy(out + 12, r->u.setstate.data, r->u.setstate.datalen);
		break;
	case PTM_SET_BUFFERSIZE:
		memcpy(out, &r->u.buffersize, 4);
		break;
	case PTM_GET_INFO:
		memcpy(out, &r->u.getinfo.flags, 8);
		memcpy(out + 8, &r->u.getinfo.offset, 4);
		break;
	case PTM_LOCK_STORAGE:
		memcpy(out, &r->u.retries, 4);
		break;
	default:
		break;
	}
}

static void check_req_equal(const struct ctrl_req *a, const struct ctrl_req *b)
{
	FUZZ_CHECK(a->code == b->code && a->n == b->n && a->fd == b->fd);
	switch (a->code) {
	case CMD_HASH_DATA:
		FUZZ_CHECK(a->u.hash.length == b->u.hash.length);
		FUZZ_CHECK(a->u.hash.datalen == b->u.hash.datalen);
		FUZZ_CHECK(memcmp(a->u.hash.data, b->u.hash.data, a->u.hash.datalen) == 0);
		break;
	case CMD_SET_STATEBLOB:
		FUZZ_CHECK(a->u.setstate.flags == b->u.setstate.flags);
		FUZZ_CHECK(a->u.setstate.type == b->u.setstate.type);
		FUZZ_CHECK(a->u.setstate.length == b->u.setstate.length);
		FUZZ_CHECK(a->u.setstate.datalen == b->u.setstate.datalen);
		FUZZ_CHECK(memcmp(a->u.setstate.data, b->u.setstate.data, a->u.setstate.datalen) == 0);
		break;
	case CMD_GET_STATEBLOB:
		FUZZ_CHECK(a->u.getstate.flags == b->u.getstate.flags);
		FUZZ_CHECK(a->u.getstate.type == b->u.getstate.type);
		FUZZ_CHECK(a->u.getstate.offset == b->u.getstate.offset);
		break;
	case CMD_GET_INFO:
		FUZZ_CHECK(a->u.getinfo.flags == b->u.getinfo.flags);
		FUZZ_CHECK(a->u.getinfo.offset == b->u.getinfo.offset);
		break;
	case CMD_SET_LOCALITY:
	case CMD_RESET_TPMESTABLISHED:
		FUZZ_CHECK(a->u.loc == b->u.loc);
		break;
	case CMD_INIT:
	case CMD_SET_BUFFERSIZE:
	case CMD_LOCK_STORAGE:
		FUZZ_CHECK(a->u.init_flags == b->u.init_flags);
		break;
	default:
		break;
	}
}

static void do_reply(unsigned int cmd, struct fuzz_in *in)
{
	struct ctrl_rsp rsp;
	size_t size = ctrl_ioctl_size(cmd), outcap, outlen = 0, plen, room = 0, off = 0;
	uint8_t *out;
	int r;

	memset(&rsp, 0, sizeof(rsp));
	rsp.result = fuzz_u32(in);
	rsp.full = fuzz_u8(in) & 1;
	rsp.u.bufsize.size = fuzz_u32(in);
	rsp.u.bufsize.min = fuzz_u32(in);
	rsp.u.bufsize.max = fuzz_u32(in);
	/* payload: up to a little more than the largest data field */
	plen = (size_t)(fuzz_u8(in) << 8 | fuzz_u8(in)) % 3200;
	rsp.payload = malloc(plen ? plen : 1);
	if (!rsp.payload)
		abort();
	for (size_t i = 0; i < plen; i++)
		rsp.payload[i] = (uint8_t)(i * 7 + 1);
	rsp.payload_len = plen;
	/* output capacity: the structure size, or off by a few either way */
	outcap = size + (fuzz_u8(in) % 9) - 4;
	if ((ssize_t)outcap < 0)
		outcap = 0;
	out = malloc(outcap ? outcap : 1);
	if (!out)
		abort();

	r = ctrl_ioctl_encode(cmd, &rsp, out, outcap, &outlen);
	if (size == 0) {
		FUZZ_CHECK(r == -EINVAL);
		goto done;
	}
	if (outcap < size) {
		FUZZ_CHECK(r == -ENOSPC);
		goto done;
	}
	if (cmd == PTM_GET_STATEBLOB && rsp.full) {
		off = offsetof(struct ptm_ioc_getstate, u.resp.data);
		room = PTM_STATE_BLOB_SIZE;
	} else if (cmd == PTM_GET_INFO && rsp.full) {
		off = offsetof(struct ptm_ioc_getinfo, u.resp.buffer);
		room = PTM_GETINFO_SIZE;
	}
	if (cmd != PTM_GET_CAPABILITY && rsp.full && plen > room) {
		FUZZ_CHECK(r == -EMSGSIZE);
		goto done;
	}
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(outlen == size);
	if (cmd == PTM_GET_CAPABILITY) {
		FUZZ_CHECK(memcmp(out, &rsp.u.caps, 8) == 0);
		goto done;
	}
	FUZZ_CHECK(ld32(out) == rsp.result);
	if (!rsp.full) {
		for (size_t i = 4; i < size; i++)
			FUZZ_CHECK(out[i] == 0);
		goto done;
	}
	switch (cmd) {
	case PTM_GET_TPMESTABLISHED:
		FUZZ_CHECK(out[4] == rsp.u.est_bit);
		break;
	case PTM_GET_CONFIG:
		FUZZ_CHECK(ld32(out + 4) == rsp.u.config_flags);
		break;
	case PTM_SET_BUFFERSIZE:
		FUZZ_CHECK(ld32(out + 4) == rsp.u.bufsize.size);
		FUZZ_CHECK(ld32(out + 8) == rsp.u.bufsize.min);
		FUZZ_CHECK(ld32(out + 12) == rsp.u.bufsize.max);
		break;
	case PTM_GET_STATEBLOB:
		FUZZ_CHECK(ld32(out + 4) == rsp.u.blob.flags);
		FUZZ_CHECK(ld32(out + 8) == rsp.u.blob.totlength);
		FUZZ_CHECK(ld32(out + 12) == rsp.u.blob.length);
		break;
	case PTM_GET_INFO:
		FUZZ_CHECK(ld32(out + 4) == rsp.u.info.totlength);
		FUZZ_CHECK(ld32(out + 8) == rsp.u.info.length);
		break;
	default:
		break;
	}
	if (room) {
		FUZZ_CHECK(memcmp(out + off, rsp.payload, plen) == 0);
		/* no stale bytes behind the payload */
		for (size_t i = off + plen; i < size; i++)
			FUZZ_CHECK(out[i] == 0);
	}
done:
	free(out);
	free(rsp.payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct ctrl_req req, req2;
	unsigned int cmd;
	uint8_t sel = fuzz_u8(&in), misalign = fuzz_u8(&in) & 7;
	size_t inlen, need;
	uint8_t *raw, *arg, *re;
	int r;

	if (sel < 0xf0)
		cmd = ptm_cmds[sel % NCMDS];
	else
		cmd = fuzz_u32(&in);
	/* the argument: the next bytes up to a chosen length */
	inlen = (size_t)(fuzz_u8(&in) << 8 | fuzz_u8(&in)) % 4200;
	if (inlen > in.left)
		inlen = in.left;
	/* at an odd address if asked, ending exactly at the end of the allocation */
	raw = malloc(inlen + misalign ? inlen + misalign : 1);
	if (!raw)
		abort();
	arg = raw + misalign;
	if (inlen)
		memcpy(arg, in.p, inlen);
	in.p += inlen;
	in.left -= inlen;

	r = ctrl_ioctl_decode(cmd, arg, inlen, &req);
	need = (_IOC_DIR(cmd) & _IOC_WRITE) ? _IOC_SIZE(cmd) : 0;
	if (ctrl_ioctl_size(cmd) == 0) {
		FUZZ_CHECK(r == -EINVAL);
	} else if (inlen < need) {
		FUZZ_CHECK(r == -EMSGSIZE);
	} else {
		FUZZ_CHECK(r == 0);
		FUZZ_CHECK(req.code == PTM_IOC_CMD(cmd));
		FUZZ_CHECK(req.n == need);
		FUZZ_CHECK(req.fd == -1);
		if (req.code == CMD_HASH_DATA)
			FUZZ_CHECK(req.u.hash.data + req.u.hash.datalen <= arg + inlen);
		if (req.code == CMD_SET_STATEBLOB)
			FUZZ_CHECK(req.u.setstate.data + req.u.setstate.datalen <= arg + inlen);
		/* decode -> encode -> decode */
		re = calloc(1, need ? need : 1);
		if (!re)
			abort();
		ref_encode_req(cmd, &req, re);
		FUZZ_CHECK(ctrl_ioctl_decode(cmd, re, need, &req2) == 0);
		check_req_equal(&req, &req2);
		free(re);
	}
	free(raw);

	do_reply(cmd, &in);
	return 0;
}
