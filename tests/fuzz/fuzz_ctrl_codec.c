/* Fuzz target: the socket control channel codec (src/io/ctrl_codec.h).
 * The input is a byte stream as a client writes it to the ctrl socket. It is
 * framed the way the server frames it (ctrl_sock_needed, message by message),
 * every complete message is decoded, re-encoded with a reference encoder and
 * decoded again (must be equal), and a reply is encoded and read back.
 * Invariants: framing is stable (needed(n) == n once n bytes are in), decoded
 * data pointers stay inside the message, encode output has the layout of
 * ctrl-channel.md §2-§5. */
#include <errno.h>

#include "fuzz_common.h"
#include "io/ctrl_codec.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The request layouts, written independently of the codec: what a client sends. */
static size_t ref_encode_req(const struct ctrl_req *r, uint8_t *out)
{
	size_t n = 4;

	put_be32(out, r->code);
	switch (r->code) {
	case CMD_INIT:
		if (r->n >= 4) {
			put_be32(out + 4, r->u.init_flags);
			n = 8;
		}
		break;
	case CMD_SET_LOCALITY:
	case CMD_RESET_TPMESTABLISHED:
		if (r->n >= 1) {
			out[4] = r->u.loc;
			n = 5;
		}
		break;
	case CMD_HASH_DATA:
		if (r->n >= 4) {
			put_be32(out + 4, r->u.hash.length);
			memcpy(out + 8, r->u.hash.data, r->u.hash.datalen);
			n = 8 + r->u.hash.datalen;
		}
		break;
	case CMD_GET_STATEBLOB:
		if (r->n >= 12) {
			put_be32(out + 4, r->u.getstate.flags);
			put_be32(out + 8, r->u.getstate.type);
			put_be32(out + 12, r->u.getstate.offset);
			n = 16;
		}
		break;
	case CMD_SET_STATEBLOB:
		if (r->n >= 12) {
			put_be32(out + 4, r->u.setstate.flags);
			put_be32(out + 8, r->u.setstate.type);
			put_be32(out + 12, r->u.setstate.length);
			memcpy(out + 16, r->u.setstate.data, r->u.setstate.datalen);
			n = 16 + r->u.setstate.datalen;
		}
		break;
	case CMD_SET_BUFFERSIZE:
		if (r->n >= 4) {
			put_be32(out + 4, r->u.buffersize);
			n = 8;
		}
		break;
	case CMD_GET_INFO:
		if (r->n >= 12) {
			put_be32(out + 4, (uint32_t)(r->u.getinfo.flags >> 32));
			put_be32(out + 8, (uint32_t)r->u.getinfo.flags);
			put_be32(out + 12, r->u.getinfo.offset);
			n = 16;
		}
		break;
	case CMD_LOCK_STORAGE:
		if (r->n >= 4) {
			put_be32(out + 4, r->u.retries);
			n = 8;
		}
		break;
	default:
		break;
	}
	return n;
}

static void check_req_equal(const struct ctrl_req *a, const struct ctrl_req *b)
{
	FUZZ_CHECK(a->code == b->code);
	FUZZ_CHECK(a->fd == b->fd);
	switch (a->code) {
	case CMD_HASH_DATA:
		FUZZ_CHECK(a->u.hash.length == b->u.hash.length);
		FUZZ_CHECK(a->u.hash.datalen == b->u.hash.datalen);
		FUZZ_CHECK(a->u.hash.datalen == 0 ||
			   memcmp(a->u.hash.data, b->u.hash.data, a->u.hash.datalen) == 0);
		break;
	case CMD_SET_STATEBLOB:
		FUZZ_CHECK(a->u.setstate.flags == b->u.setstate.flags);
		FUZZ_CHECK(a->u.setstate.type == b->u.setstate.type);
		FUZZ_CHECK(a->u.setstate.length == b->u.setstate.length);
		FUZZ_CHECK(a->u.setstate.datalen == b->u.setstate.datalen);
		FUZZ_CHECK(a->u.setstate.datalen == 0 ||
			   memcmp(a->u.setstate.data, b->u.setstate.data, a->u.setstate.datalen) == 0);
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
		/* all three are a single u32 at the same place in the union */
		FUZZ_CHECK(a->u.init_flags == b->u.init_flags);
		break;
	default:
		break;
	}
}

/* One complete message msg[0..len). */
static void one_message(const uint8_t *msg, size_t len, int fd)
{
	struct ctrl_req req, req2;
	uint8_t *copy = fuzz_dup(msg, len), *re;
	size_t relen;

	FUZZ_CHECK(ctrl_sock_decode(copy, len, fd, &req) == 0);
	FUZZ_CHECK(req.n == len - 4);
	FUZZ_CHECK(req.fd == fd);
	if (req.code == CMD_HASH_DATA && req.n >= 4) {
		FUZZ_CHECK(req.u.hash.data == copy + 8);
		FUZZ_CHECK(req.u.hash.data + req.u.hash.datalen == copy + len);
	}
	if (req.code == CMD_SET_STATEBLOB && req.n >= 12) {
		FUZZ_CHECK(req.u.setstate.data == copy + 16);
		FUZZ_CHECK(req.u.setstate.data + req.u.setstate.datalen == copy + len);
	}

	/* decode -> encode -> decode */
	re = malloc(len + 16);
	if (!re)
		abort();
	relen = ref_encode_req(&req, re);
	FUZZ_CHECK(relen <= len);
	FUZZ_CHECK(memcmp(re, copy, relen) == 0);
	FUZZ_CHECK(ctrl_sock_decode(re, relen, fd, &req2) == 0);
	check_req_equal(&req, &req2);
	free(re);
	free(copy);
}

/* Encode a reply built from fuzz bytes and read it back. */
static void one_reply(struct fuzz_in *in)
{
	static const uint32_t full_hdr[][2] = {
		{ CMD_GET_TPMESTABLISHED, 8 }, { CMD_GET_CONFIG, 8 },
		{ CMD_GET_STATEBLOB, 16 },     { CMD_SET_BUFFERSIZE, 16 },
		{ CMD_GET_INFO, 12 },
	};
	struct ctrl_rsp rsp;
	uint32_t code = fuzz_u8(in) % 0x16;
	size_t hdr = 4, plen, outlen = 0;
	uint8_t *out = NULL;

	memset(&rsp, 0, sizeof(rsp));
	rsp.result = fuzz_u32(in);
	rsp.full = fuzz_u8(in) & 1;
	rsp.u.bufsize.size = fuzz_u32(in); /* fills every union member's bytes */
	rsp.u.bufsize.min = fuzz_u32(in);
	rsp.u.bufsize.max = fuzz_u32(in);
	plen = fuzz_u8(in);
	if (plen > in->left)
		plen = in->left;
	rsp.payload = plen ? fuzz_dup(in->p, plen) : NULL;
	rsp.payload_len = plen;
	in->p += plen;
	in->left -= plen;

	FUZZ_CHECK(ctrl_sock_encode(code, &rsp, &out, &outlen) == 0);
	if (code == CMD_GET_CAPABILITY) {
		FUZZ_CHECK(outlen == 8);
		FUZZ_CHECK(((uint64_t)be32(out) << 32 | be32(out + 4)) == rsp.u.caps);
		goto done;
	}
	for (size_t i = 0; rsp.full && i < sizeof(full_hdr) / sizeof(full_hdr[0]); i++)
		if (full_hdr[i][0] == code)
			hdr = full_hdr[i][1];
	FUZZ_CHECK(outlen == hdr + (rsp.full ? plen : 0));
	FUZZ_CHECK(be32(out) == rsp.result);
	if (rsp.full) {
		switch (code) {
		case CMD_GET_TPMESTABLISHED:
			FUZZ_CHECK(out[4] == rsp.u.est_bit);
			FUZZ_CHECK(out[5] == 0 && out[6] == 0 && out[7] == 0);
			break;
		case CMD_GET_CONFIG:
			FUZZ_CHECK(be32(out + 4) == rsp.u.config_flags);
			break;
		case CMD_GET_STATEBLOB:
			FUZZ_CHECK(be32(out + 4) == rsp.u.blob.flags);
			FUZZ_CHECK(be32(out + 8) == rsp.u.blob.totlength);
			FUZZ_CHECK(be32(out + 12) == rsp.u.blob.length);
			break;
		case CMD_SET_BUFFERSIZE:
			FUZZ_CHECK(be32(out + 4) == rsp.u.bufsize.size);
			FUZZ_CHECK(be32(out + 8) == rsp.u.bufsize.min);
			FUZZ_CHECK(be32(out + 12) == rsp.u.bufsize.max);
			break;
		case CMD_GET_INFO:
			FUZZ_CHECK(be32(out + 4) == rsp.u.info.totlength);
			FUZZ_CHECK(be32(out + 8) == rsp.u.info.length);
			break;
		default:
			break;
		}
		FUZZ_CHECK(plen == 0 || memcmp(out + hdr, rsp.payload, plen) == 0);
	}
done:
	free(out);
	free(rsp.payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	size_t off = 0, needed = 0;
	int fd, r;

	if (size < 2)
		return 0;
	/* byte 0: the SCM_RIGHTS fd the "client" passed (or none); byte 1: how
	 * many trailing bytes drive the reply encoder */
	fd = data[0] & 1 ? (int)(data[0] >> 1) : -1;
	{
		size_t tail = data[1];

		in.p = data + 2;
		in.left = size - 2;
		if (tail > in.left)
			tail = in.left;
		in.left -= tail;

		/* The stream, framed as the server does. */
		while (off < in.left) {
			const uint8_t *b = in.p + off;
			size_t have = in.left - off;

			r = ctrl_sock_needed(b, have, &needed);
			if (r == -EMSGSIZE) {
				FUZZ_CHECK(have >= 8);
				break;
			}
			FUZZ_CHECK(r == 0);
			FUZZ_CHECK(needed >= 4);
			FUZZ_CHECK(needed <= 16 + CTRL_MAX_PAYLOAD);
			if (needed > have)
				break; /* the rest of the stream is incomplete */
			/* stable: with exactly `needed` bytes in, the answer is the same */
			{
				size_t n2 = 0;

				FUZZ_CHECK(ctrl_sock_needed(b, needed, &n2) == 0);
				FUZZ_CHECK(n2 == needed);
			}
			(void)ctrl_sock_in_payload(b, needed);
			/* with fewer than 4 bytes, 4 are needed */
			{
				size_t n3 = 0;

				FUZZ_CHECK(ctrl_sock_needed(b, 3, &n3) == 0 && n3 == 4);
			}
			one_message(b, needed, fd);
			off += needed;
		}
		in.p += in.left;
		in.left = tail;
	}
	while (in.left)
		one_reply(&in);
	return 0;
}
