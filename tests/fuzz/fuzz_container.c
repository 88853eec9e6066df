/* Fuzz target: swtpm's state container (src/crypto/container.h) without keys.
 * The input is a state file or a SET_STATEBLOB blob. Checks: the header view
 * and every TLV found stay inside the buffer; unwrap -> wrap -> unwrap gives
 * the same payload for files and blobs; a parsed TLV list rebuilt with
 * container_build parses back to the same records. */
#include <errno.h>

#include "crypto/container.h"
#include "fuzz_common.h"

static void check_in(const uint8_t *buf, size_t len, const uint8_t *p, size_t n)
{
	FUZZ_CHECK(p >= buf && n <= len && (size_t)(p - buf) <= len - n);
}

static void file_round_trip(const uint8_t *buf, size_t len)
{
	uint8_t *pl = NULL, *wrapped = NULL, *pl2 = NULL;
	size_t pl_len = 0, wlen = 0, pl2_len = 0;
	int r;

	r = container_unwrap_file(buf, len, &pl, &pl_len);
	FUZZ_CHECK(r == 0 || r == -ENOENT || r == -EPROTO);
	if (r < 0)
		return;
	FUZZ_CHECK(pl != NULL);
	FUZZ_CHECK(pl_len <= len);
	FUZZ_CHECK(container_wrap_file(pl, pl_len, &wrapped, &wlen) == 0);
	FUZZ_CHECK(wlen == pl_len + CONTAINER_HDR_SIZE + TLV_HDR_SIZE);
	FUZZ_CHECK(container_parse(wrapped, wlen, NULL) == 0);
	FUZZ_CHECK(container_unwrap_file(wrapped, wlen, &pl2, &pl2_len) == 0);
	FUZZ_CHECK(pl2_len == pl_len && memcmp(pl, pl2, pl_len) == 0);
	free(pl);
	free(wrapped);
	free(pl2);
}

static void blob_round_trip(const uint8_t *buf, size_t len, bool req_encrypted)
{
	uint8_t *pl = NULL, *wrapped = NULL, *pl2 = NULL;
	size_t pl_len = 0, wlen = 0, pl2_len = 0;
	int r;

	r = container_unwrap_blob(buf, len, req_encrypted, &pl, &pl_len);
	FUZZ_CHECK(r == 0 || r == CONTAINER_EMPTY || r == -EINVAL || r == -EPROTONOSUPPORT ||
		   r == -EBADMSG || r == -ENOKEY || r == -ENOENT || r == -EPROTO);
	FUZZ_CHECK(container_err_to_tpm(r < 0 ? r : 0) != 0 || r >= 0);
	if (r != 0)
		return;
	FUZZ_CHECK(!req_encrypted);
	FUZZ_CHECK(pl_len <= len);
	FUZZ_CHECK(container_wrap_blob(pl, pl_len, &wrapped, &wlen) == 0);
	FUZZ_CHECK(container_unwrap_blob(wrapped, wlen, false, &pl2, &pl2_len) == 0);
	FUZZ_CHECK(pl2_len == pl_len && memcmp(pl, pl2, pl_len) == 0);
	/* a blob is refused when the request says it is encrypted */
	{
		uint8_t *p3 = NULL;
		size_t l3 = 0;

		FUZZ_CHECK(container_unwrap_blob(wrapped, wlen, true, &p3, &l3) == -ENOKEY);
	}
	free(pl);
	free(wrapped);
	free(pl2);
}

/* Walk the body's records by hand; the first of each tag must be what tlv_find
 * returns, and a container rebuilt from the walked records yields them again. */
static void tlv_walk(const uint8_t *body, size_t len)
{
	struct tlv recs[64], t;
	size_t n = 0, off = 0;
	uint8_t *built = NULL;
	size_t blen = 0;
	struct container_view v;

	while (off + TLV_HDR_SIZE <= len && n < 64) {
		uint16_t tag = (uint16_t)(body[off] << 8 | body[off + 1]);
		uint64_t l = (uint64_t)body[off + 2] << 24 | (uint64_t)body[off + 3] << 16 |
			     (uint64_t)body[off + 4] << 8 | body[off + 5];

		if (off + TLV_HDR_SIZE + l > len)
			break;
		recs[n].tag = tag;
		recs[n].value = body + off + TLV_HDR_SIZE;
		recs[n].len = (size_t)l;
		n++;
		off += TLV_HDR_SIZE + (size_t)l;
	}
	for (size_t i = 0; i < n; i++) {
		bool first = true;

		for (size_t j = 0; j < i; j++)
			if (recs[j].tag == recs[i].tag)
				first = false;
		if (!first)
			continue;
		FUZZ_CHECK(tlv_find(body, len, recs[i].tag, &t) == 0);
		FUZZ_CHECK(t.value == recs[i].value && t.len == recs[i].len);
		check_in(body, len, t.value, t.len);
	}
	FUZZ_CHECK(container_build(0, recs, n, &built, &blen) == 0);
	FUZZ_CHECK(container_parse(built, blen, &v) == 0);
	FUZZ_CHECK(v.body_len == off);
	FUZZ_CHECK(off == 0 || memcmp(v.body, body, off) == 0);
	free(built);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct container_view v;
	struct tlv t;
	int r;

	r = container_parse(data, size, &v);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EPROTONOSUPPORT || r == -EBADMSG);
	if (r == 0) {
		FUZZ_CHECK(v.hdr.totlen == size && v.hdr.hdrsize == CONTAINER_HDR_SIZE);
		FUZZ_CHECK(v.body == data + CONTAINER_HDR_SIZE);
		FUZZ_CHECK(v.body_len == size - CONTAINER_HDR_SIZE);
		for (uint16_t tag = 0; tag <= 8; tag++) {
			if (tlv_find(v.body, v.body_len, tag, &t) == 0)
				check_in(v.body, v.body_len, t.value, t.len);
		}
		for (uint8_t ver = 0; ver <= 3; ver++) {
			const uint8_t *plain;
			size_t plain_len;

			r = container_body_plain(ver, v.body, v.body_len, TLV_TAG_DATA, &plain,
						 &plain_len);
			if (r == 0)
				check_in(v.body, v.body_len, plain, plain_len);
			else
				FUZZ_CHECK(r == -ENOENT || r == -EPROTO);
		}
		tlv_walk(v.body, v.body_len);
	}
	/* the whole input as a bare TLV list too */
	tlv_walk(data, size);
	file_round_trip(data, size);
	blob_round_trip(data, size, false);
	blob_round_trip(data, size, true);
	return 0;
}
