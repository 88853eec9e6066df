/* swtpm's state container codec: header validation, TLV search and the plain
 * (keyless) wrap/unwrap of state files and migration blobs. */
#include "crypto/container.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>

static uint16_t container_get_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static uint32_t container_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void container_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void container_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int container_parse(const uint8_t *buf, size_t len, struct container_view *view)
{
	struct container_hdr h;

	/* swtpm 0.7.1 compares against sizeof(pointer) (8) and would then read the
	 * totlen bytes 8..9 past the end; we insist on the full header. */
	if (!buf || len < CONTAINER_HDR_SIZE)
		return -EINVAL;

	h.version = buf[0];
	h.min_version = buf[1];
	h.hdrsize = container_get_be16(buf + 2);
	h.flags = container_get_be16(buf + 4);
	h.totlen = container_get_be32(buf + 6);

	/* Same order as swtpm so a doubly-broken blob yields the same TPM code. */
	if ((uint64_t)h.totlen != (uint64_t)len)
		return -EINVAL;
	if (h.min_version > CONTAINER_VERSION)
		return -EPROTONOSUPPORT;
	if (h.hdrsize != CONTAINER_HDR_SIZE)
		return -EBADMSG;

	if (view) {
		view->hdr = h;
		view->body = buf + CONTAINER_HDR_SIZE;
		view->body_len = len - CONTAINER_HDR_SIZE;
	}
	return 0;
}

int container_err_to_tpm(int err)
{
	switch (err) {
	case 0:
		return 0;
	case -EINVAL:
		return TPM_BAD_PARAMETER;
	case -EPROTONOSUPPORT:
		return TPM_BAD_VERSION;
	case -EBADMSG:
		return TPM_BAD_DATASIZE;
	case -ENOKEY:
		return TPM_KEYNOTFOUND;
	default:
		return TPM_FAIL;
	}
}

int tlv_find(const uint8_t *buf, size_t len, uint16_t tag, struct tlv *out)
{
	uint64_t off = 0;

	if (!buf)
		return -ENOENT;

	/* 64-bit offsets: off + 6 + 0xffffffff cannot wrap, so a bogus length simply
	 * fails the bounds check instead of sending us backwards. */
	while (off + TLV_HDR_SIZE <= (uint64_t)len) {
		uint16_t t = container_get_be16(buf + off);
		uint64_t l = container_get_be32(buf + off + 2);
		uint64_t val = off + TLV_HDR_SIZE;

		if (val + l > (uint64_t)len)
			return -ENOENT; /* truncated record ends the list */
		if (t == tag) {
			if (out) {
				out->tag = t;
				out->value = buf + val;
				out->len = (size_t)l;
			}
			return 0;
		}
		off = val + l;
	}
	return -ENOENT;
}

int tlv_list_size(const struct tlv *tlvs, size_t n, size_t *size)
{
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++) {
		if ((uint64_t)tlvs[i].len > UINT32_MAX)
			return -EOVERFLOW;
		total += TLV_HDR_SIZE + (uint64_t)tlvs[i].len;
		if (total > UINT32_MAX)
			return -EOVERFLOW;
	}
	*size = (size_t)total;
	return 0;
}

size_t tlv_list_write(uint8_t *out, const struct tlv *tlvs, size_t n)
{
	size_t off = 0;

	for (size_t i = 0; i < n; i++) {
		container_put_be16(out + off, tlvs[i].tag);
		container_put_be32(out + off + 2, (uint32_t)tlvs[i].len);
		off += TLV_HDR_SIZE;
		if (tlvs[i].len)
			memcpy(out + off, tlvs[i].value, tlvs[i].len);
		off += tlvs[i].len;
	}
	return off;
}

static void container_write_hdr(uint8_t *out, uint16_t flags, uint32_t totlen)
{
	out[0] = CONTAINER_VERSION;
	out[1] = CONTAINER_MIN_VERSION;
	container_put_be16(out + 2, CONTAINER_HDR_SIZE);
	container_put_be16(out + 4, flags);
	container_put_be32(out + 6, totlen);
}

int container_build(uint16_t flags, const struct tlv *tlvs, size_t n, uint8_t **out,
		    size_t *out_len)
{
	size_t body = 0;
	uint8_t *buf;
	int r;

	r = tlv_list_size(tlvs, n, &body);
	if (r < 0)
		return r;
	if ((uint64_t)body + CONTAINER_HDR_SIZE > UINT32_MAX)
		return -EOVERFLOW;

	buf = malloc(body + CONTAINER_HDR_SIZE);
	if (!buf)
		return -ENOMEM;
	container_write_hdr(buf, flags, (uint32_t)(body + CONTAINER_HDR_SIZE));
	tlv_list_write(buf + CONTAINER_HDR_SIZE, tlvs, n);

	*out = buf;
	*out_len = body + CONTAINER_HDR_SIZE;
	return 0;
}

int container_wrap_file(const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len)
{
	struct tlv t = { .tag = TLV_TAG_DATA, .value = payload, .len = len };

	if (len && !payload)
		return -EINVAL;
	return container_build(0, &t, 1, out, out_len);
}

int container_wrap_blob(const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *buf;
	size_t total;

	if (len && !payload)
		return -EINVAL;
	if (len > CONTAINER_MAX_PAYLOAD)
		return -EOVERFLOW;

	/* Written in one go rather than via container_build to avoid building the
	 * inner list in a separate buffer. */
	total = CONTAINER_HDR_SIZE + 2 * TLV_HDR_SIZE + len;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	container_write_hdr(buf, CONTAINER_FLAG_MIGRATION_DATA, (uint32_t)total);
	container_put_be16(buf + 10, TLV_TAG_MIGRATION_DATA);
	container_put_be32(buf + 12, (uint32_t)(TLV_HDR_SIZE + len));
	container_put_be16(buf + 16, TLV_TAG_DATA);
	container_put_be32(buf + 18, (uint32_t)len);
	if (len)
		memcpy(buf + 22, payload, len);

	*out = buf;
	*out_len = total;
	return 0;
}

int container_body_plain(uint8_t version, const uint8_t *body, size_t body_len,
			 uint16_t tag, const uint8_t **plain, size_t *plain_len)
{
	struct tlv t;
	int r;

	switch (version) {
	case 1:
		/* Version-1 bodies are the data itself, no TLV framing. */
		*plain = body;
		*plain_len = body_len;
		return 0;
	case 2:
		r = tlv_find(body, body_len, tag, &t);
		if (r < 0)
			return r;
		*plain = t.value;
		*plain_len = t.len;
		return 0;
	default:
		/* Undefined in 0.7.1; 0.9.1 answers TPM_FAIL. */
		return -EPROTO;
	}
}

/* Copy out a borrowed range; malloc(0) may return NULL, so allocate at least 1. */
static int container_dup(const uint8_t *src, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *p = malloc(len ? len : 1);

	if (!p)
		return -ENOMEM;
	if (len)
		memcpy(p, src, len);
	*out = p;
	*out_len = len;
	return 0;
}

int container_unwrap_file(const uint8_t *buf, size_t len, uint8_t **payload,
			  size_t *payload_len)
{
	struct container_view v;
	const uint8_t *plain;
	size_t plain_len;
	int r;

	if (len && !buf)
		return -EINVAL;

	if (container_parse(buf, len, &v) < 0) {
		/* swtpm 0.7.1: no valid header means a headerless legacy file whose
		 * entire content is the payload. (0.8+ dropped this.) */
		return container_dup(buf, len, payload, payload_len);
	}

	r = container_body_plain(v.hdr.version, v.body, v.body_len, TLV_TAG_DATA, &plain,
				 &plain_len);
	if (r < 0)
		return r;
	return container_dup(plain, plain_len, payload, payload_len);
}

int container_unwrap_blob(const uint8_t *buf, size_t len, bool req_encrypted,
			  uint8_t **payload, size_t *payload_len)
{
	struct container_view v;
	const uint8_t *inner, *plain;
	size_t inner_len, plain_len;
	int r;

	if (len == 0)
		return CONTAINER_EMPTY;

	r = container_parse(buf, len, &v);
	if (r < 0)
		return r;
	if (v.body_len == 0)
		return CONTAINER_EMPTY;

	if (v.hdr.flags & CONTAINER_FLAG_MIGRATION_ENCRYPTED)
		return -ENOKEY;

	r = container_body_plain(v.hdr.version, v.body, v.body_len, TLV_TAG_MIGRATION_DATA,
				 &inner, &inner_len);
	if (r < 0)
		return r;

	if (req_encrypted || (v.hdr.flags & CONTAINER_FLAG_ENCRYPTED))
		return -ENOKEY;

	r = container_body_plain(v.hdr.version, inner, inner_len, TLV_TAG_DATA, &plain,
				 &plain_len);
	if (r < 0)
		return r;
	return container_dup(plain, plain_len, payload, payload_len);
}
