/* Unit tests for the swtpm state container codec (src/crypto/container.c):
 * header checks, TLV search bounds, builders and the keyless unwrap paths. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>

#include "crypto/container.h"

/* Write a header with arbitrary field values (also invalid ones). */
static void put_hdr(uint8_t *b, uint8_t ver, uint8_t minv, uint16_t hdrsize, uint16_t flags,
		    uint32_t totlen)
{
	b[0] = ver;
	b[1] = minv;
	b[2] = (uint8_t)(hdrsize >> 8);
	b[3] = (uint8_t)hdrsize;
	b[4] = (uint8_t)(flags >> 8);
	b[5] = (uint8_t)flags;
	b[6] = (uint8_t)(totlen >> 24);
	b[7] = (uint8_t)(totlen >> 16);
	b[8] = (uint8_t)(totlen >> 8);
	b[9] = (uint8_t)totlen;
}

static size_t put_tlv_hdr(uint8_t *b, uint16_t tag, uint32_t len)
{
	b[0] = (uint8_t)(tag >> 8);
	b[1] = (uint8_t)tag;
	b[2] = (uint8_t)(len >> 24);
	b[3] = (uint8_t)(len >> 16);
	b[4] = (uint8_t)(len >> 8);
	b[5] = (uint8_t)len;
	return 6;
}

static uint8_t *pattern(size_t len, uint8_t seed)
{
	uint8_t *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
	return p;
}

/* ---- header ---------------------------------------------------------------- */

Test(container_hdr, valid_header_fields)
{
	uint8_t b[16] = { 0 };
	struct container_view v;

	put_hdr(b, 2, 1, 10, 0x1f, sizeof(b));
	cr_assert_eq(container_parse(b, sizeof(b), &v), 0);
	cr_assert_eq(v.hdr.version, 2);
	cr_assert_eq(v.hdr.min_version, 1);
	cr_assert_eq(v.hdr.hdrsize, 10);
	cr_assert_eq(v.hdr.flags, 0x1f);
	cr_assert_eq(v.hdr.totlen, 16);
	cr_assert_eq(v.body, b + 10);
	cr_assert_eq(v.body_len, 6);
}

Test(container_hdr, truncated_header)
{
	uint8_t b[10];

	put_hdr(b, 2, 1, 10, 0, 10);
	for (size_t len = 0; len < 10; len++)
		cr_assert_eq(container_parse(b, len, NULL), -EINVAL, "len %zu", len);
	cr_assert_eq(container_parse(NULL, 0, NULL), -EINVAL);
	/* header only is a valid header */
	cr_assert_eq(container_parse(b, 10, NULL), 0);
}

Test(container_hdr, totlen_mismatch)
{
	uint8_t b[20] = { 0 };

	put_hdr(b, 2, 1, 10, 0, 21);
	cr_assert_eq(container_parse(b, 20, NULL), -EINVAL);
	put_hdr(b, 2, 1, 10, 0, 19);
	cr_assert_eq(container_parse(b, 20, NULL), -EINVAL);
	put_hdr(b, 2, 1, 10, 0, 0xffffffffu);
	cr_assert_eq(container_parse(b, 20, NULL), -EINVAL);
	put_hdr(b, 2, 1, 10, 0, 0);
	cr_assert_eq(container_parse(b, 20, NULL), -EINVAL);
}

Test(container_hdr, min_version_too_new)
{
	uint8_t b[10];

	put_hdr(b, 3, 3, 10, 0, 10);
	cr_assert_eq(container_parse(b, 10, NULL), -EPROTONOSUPPORT);
	put_hdr(b, 2, 0xff, 10, 0, 10);
	cr_assert_eq(container_parse(b, 10, NULL), -EPROTONOSUPPORT);
	/* min_version 2 and 0 are fine */
	put_hdr(b, 2, 2, 10, 0, 10);
	cr_assert_eq(container_parse(b, 10, NULL), 0);
	put_hdr(b, 2, 0, 10, 0, 10);
	cr_assert_eq(container_parse(b, 10, NULL), 0);
}

Test(container_hdr, bad_hdrsize)
{
	uint8_t b[12] = { 0 };

	put_hdr(b, 2, 1, 9, 0, 12);
	cr_assert_eq(container_parse(b, 12, NULL), -EBADMSG);
	put_hdr(b, 2, 1, 11, 0, 12);
	cr_assert_eq(container_parse(b, 12, NULL), -EBADMSG);
	put_hdr(b, 2, 1, 0x0a00, 0, 12); /* little-endian 10 */
	cr_assert_eq(container_parse(b, 12, NULL), -EBADMSG);
}

Test(container_hdr, check_order_matches_swtpm)
{
	uint8_t b[10];

	/* totlen is checked before min_version, min_version before hdrsize */
	put_hdr(b, 3, 3, 9, 0, 11);
	cr_assert_eq(container_parse(b, 10, NULL), -EINVAL);
	put_hdr(b, 3, 3, 9, 0, 10);
	cr_assert_eq(container_parse(b, 10, NULL), -EPROTONOSUPPORT);
}

Test(container_hdr, err_to_tpm)
{
	cr_assert_eq(container_err_to_tpm(0), 0);
	cr_assert_eq(container_err_to_tpm(-EINVAL), TPM_BAD_PARAMETER);
	cr_assert_eq(container_err_to_tpm(-EINVAL), 0x03);
	cr_assert_eq(container_err_to_tpm(-EPROTONOSUPPORT), 0x2e);
	cr_assert_eq(container_err_to_tpm(-EBADMSG), 0x2b);
	cr_assert_eq(container_err_to_tpm(-ENOKEY), 0x0d);
	cr_assert_eq(container_err_to_tpm(-ENOENT), 0x09);
	cr_assert_eq(container_err_to_tpm(-EPROTO), 0x09);
	cr_assert_eq(container_err_to_tpm(-ENOMEM), 0x09);
}

/* ---- TLV ------------------------------------------------------------------- */

Test(container_tlv, find_first_match_wins)
{
	uint8_t b[64];
	size_t o = 0;
	struct tlv t;

	o += put_tlv_hdr(b + o, 3, 2);
	b[o++] = 0xaa;
	b[o++] = 0xbb;
	o += put_tlv_hdr(b + o, 1, 1);
	b[o++] = 0x11;
	o += put_tlv_hdr(b + o, 1, 1);
	b[o++] = 0x22;
	o += put_tlv_hdr(b + o, 6, 0);

	cr_assert_eq(tlv_find(b, o, 1, &t), 0);
	cr_assert_eq(t.tag, 1);
	cr_assert_eq(t.len, 1);
	cr_assert_eq(t.value[0], 0x11);
	cr_assert_eq(tlv_find(b, o, 3, &t), 0);
	cr_assert_eq(t.len, 2);
	cr_assert_eq(t.value, b + 6);
	cr_assert_eq(tlv_find(b, o, 6, &t), 0, "zero-length record at the very end");
	cr_assert_eq(t.len, 0);
	cr_assert_eq(t.value, b + o);
	cr_assert_eq(tlv_find(b, o, 7, &t), -ENOENT);
	cr_assert_eq(tlv_find(b, 0, 1, &t), -ENOENT);
	cr_assert_eq(tlv_find(NULL, 0, 1, &t), -ENOENT);
}

Test(container_tlv, length_past_end_stops_search)
{
	uint8_t b[32] = { 0 };
	size_t o = 0;
	struct tlv t;

	o += put_tlv_hdr(b + o, 2, 1);
	b[o++] = 0;
	o += put_tlv_hdr(b + o, 3, 100); /* runs past the end */
	o += put_tlv_hdr(b + o, 1, 0);	 /* would be found if we kept going */

	cr_assert_eq(tlv_find(b, o, 2, &t), 0);
	cr_assert_eq(tlv_find(b, o, 3, &t), -ENOENT);
	cr_assert_eq(tlv_find(b, o, 1, &t), -ENOENT);
}

Test(container_tlv, length_off_by_one)
{
	uint8_t b[10] = { 0 };
	struct tlv t;

	put_tlv_hdr(b, 1, 4);
	cr_assert_eq(tlv_find(b, 10, 1, &t), 0);
	cr_assert_eq(t.len, 4);
	cr_assert_eq(tlv_find(b, 9, 1, &t), -ENOENT);
	put_tlv_hdr(b, 1, 5);
	cr_assert_eq(tlv_find(b, 10, 1, &t), -ENOENT);
}

Test(container_tlv, length_ffffffff_no_overflow)
{
	uint8_t b[16] = { 0 };
	struct tlv t;

	put_tlv_hdr(b, 1, 0xffffffffu);
	cr_assert_eq(tlv_find(b, sizeof(b), 1, &t), -ENOENT);
	/* a huge length in front of a wanted tag must not wrap the offset around */
	put_tlv_hdr(b, 5, 0xfffffffau);
	put_tlv_hdr(b + 6, 1, 0);
	cr_assert_eq(tlv_find(b, sizeof(b), 1, &t), -ENOENT);
	cr_assert_eq(tlv_find(b, sizeof(b), 5, &t), -ENOENT);
}

Test(container_tlv, partial_record_header)
{
	uint8_t b[12] = { 0 };
	struct tlv t;

	put_tlv_hdr(b, 4, 0);
	b[6] = 0;
	b[7] = 1; /* 5 trailing bytes: an incomplete header for tag 1 */
	for (size_t len = 6; len < 12; len++)
		cr_assert_eq(tlv_find(b, len, 1, &t), -ENOENT, "len %zu", len);
	cr_assert_eq(tlv_find(b, 12, 1, &t), 0);
}

Test(container_tlv, list_size_and_write)
{
	const uint8_t v1[] = { 1, 2, 3 };
	struct tlv l[] = {
		{ .tag = 2, .value = v1, .len = 3 },
		{ .tag = 3, .value = NULL, .len = 0 },
	};
	const uint8_t exp[] = { 0, 2, 0, 0, 0, 3, 1, 2, 3, 0, 3, 0, 0, 0, 0 };
	uint8_t out[sizeof(exp)];
	size_t sz = 0;

	cr_assert_eq(tlv_list_size(l, 2, &sz), 0);
	cr_assert_eq(sz, sizeof(exp));
	cr_assert_eq(tlv_list_write(out, l, 2), sizeof(exp));
	cr_assert_arr_eq(out, exp, sizeof(exp));

	if (sizeof(size_t) > 4) {
		struct tlv big = { .tag = 1, .value = v1, .len = (size_t)UINT32_MAX + 1 };
		struct tlv two[2] = { { .tag = 1, .value = v1, .len = UINT32_MAX - 8 },
				      { .tag = 2, .value = v1, .len = 3 } };

		cr_assert_eq(tlv_list_size(&big, 1, &sz), -EOVERFLOW);
		cr_assert_eq(tlv_list_size(two, 2, &sz), -EOVERFLOW);
	}
}

/* Layout of the captured encrypted permall (spec §9.3): header flags 0x0001,
 * TLV2 of 1312 bytes, TLV3 (32) at 0x530, TLV6 (16) at 0x556, total 1388. */
Test(container_tlv, captured_encrypted_layout)
{
	size_t total = 1388;
	uint8_t *b = calloc(1, total);
	struct container_view v;
	struct tlv t;
	uint8_t *pl = NULL;
	size_t pl_len = 0;

	cr_assert_not_null(b);
	put_hdr(b, 2, 1, 10, 0x0001, (uint32_t)total);
	put_tlv_hdr(b + 0x0a, 2, 0x520);
	put_tlv_hdr(b + 0x530, 3, 0x20);
	put_tlv_hdr(b + 0x556, 6, 0x10);
	cr_assert_eq(container_parse(b, total, &v), 0);
	cr_assert_eq(v.hdr.flags, CONTAINER_FLAG_ENCRYPTED);
	cr_assert_eq(tlv_find(v.body, v.body_len, TLV_TAG_ENCRYPTED_DATA, &t), 0);
	cr_assert_eq(t.value - b, 0x10);
	cr_assert_eq(t.len, 1312);
	cr_assert_eq(tlv_find(v.body, v.body_len, TLV_TAG_HMAC, &t), 0);
	cr_assert_eq(t.value - b, 0x536);
	cr_assert_eq(tlv_find(v.body, v.body_len, TLV_TAG_IVEC_ENCRYPTED_DATA, &t), 0);
	cr_assert_eq(t.value - b, 0x55c);
	cr_assert_eq(t.len, 16);
	/* without a state key such a file has no TLV 1: load fails */
	cr_assert_eq(container_unwrap_file(b, total, &pl, &pl_len), -ENOENT);
	free(b);
}

/* ---- builders -------------------------------------------------------------- */

Test(container_build, captured_tpm2_permall_prefix)
{
	/* spec §9.1: 1299-byte payload -> 1315-byte file */
	const uint8_t exp[] = { 0x02, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x05, 0x23,
				0x00, 0x01, 0x00, 0x00, 0x05, 0x13 };
	uint8_t *p = pattern(1299, 3), *f = NULL;
	size_t flen = 0;

	p[0] = 0x00;
	p[1] = 0x03;
	p[2] = 0xab;
	p[3] = 0x36;
	p[4] = 0x47;
	p[5] = 0x23;
	cr_assert_eq(container_wrap_file(p, 1299, &f, &flen), 0);
	cr_assert_eq(flen, 1315);
	cr_assert_arr_eq(f, exp, sizeof(exp));
	cr_assert_arr_eq(f + 16, p, 1299);
	free(p);
	free(f);
}

Test(container_build, captured_tpm12_prefixes)
{
	/* spec §9.2 */
	const uint8_t perm[] = { 0x02, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x04, 0xa1,
				 0x00, 0x01, 0x00, 0x00, 0x04, 0x91 };
	const uint8_t save[] = { 0x02, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x03, 0xda,
				 0x00, 0x01, 0x00, 0x00, 0x03, 0xca };
	uint8_t *p = pattern(1169, 0), *f = NULL;
	size_t flen;

	cr_assert_eq(container_wrap_file(p, 1169, &f, &flen), 0);
	cr_assert_eq(flen, 1185);
	cr_assert_arr_eq(f, perm, sizeof(perm));
	free(f);
	cr_assert_eq(container_wrap_file(p, 970, &f, &flen), 0);
	cr_assert_eq(flen, 986);
	cr_assert_arr_eq(f, save, sizeof(save));
	free(f);
	free(p);
}

Test(container_build, blob_layout)
{
	uint8_t *p = pattern(1299, 9), *b = NULL;
	size_t blen = 0;
	const uint8_t exp[] = { 0x02, 0x01, 0x00, 0x0a, 0x00, 0x04, 0x00, 0x00, 0x05, 0x29,
				0x00, 0x04, 0x00, 0x00, 0x05, 0x19, 0x00, 0x01, 0x00, 0x00,
				0x05, 0x13 };

	cr_assert_eq(container_wrap_blob(p, 1299, &b, &blen), 0);
	cr_assert_eq(blen, 1299 + 22);
	cr_assert_arr_eq(b, exp, sizeof(exp));
	cr_assert_arr_eq(b + 22, p, 1299);
	free(b);
	free(p);
}

Test(container_build, generic_build_matches_wrap_file)
{
	uint8_t *p = pattern(77, 1), *a = NULL, *b = NULL;
	size_t alen, blen;
	struct tlv t = { .tag = TLV_TAG_DATA, .value = p, .len = 77 };

	cr_assert_eq(container_build(0, &t, 1, &a, &alen), 0);
	cr_assert_eq(container_wrap_file(p, 77, &b, &blen), 0);
	cr_assert_eq(alen, blen);
	cr_assert_arr_eq(a, b, alen);
	free(a);
	free(b);
	free(p);
}

Test(container_build, empty_payload_and_errors)
{
	uint8_t *f = NULL, *pl = NULL;
	size_t flen = 0, pl_len = 99;
	const uint8_t exp[] = { 2, 1, 0, 10, 0, 0, 0, 0, 0, 16, 0, 1, 0, 0, 0, 0 };

	cr_assert_eq(container_wrap_file(NULL, 0, &f, &flen), 0);
	cr_assert_eq(flen, 16);
	cr_assert_arr_eq(f, exp, 16);
	cr_assert_eq(container_unwrap_file(f, flen, &pl, &pl_len), 0);
	cr_assert_not_null(pl);
	cr_assert_eq(pl_len, 0);
	free(pl);
	free(f);

	cr_assert_eq(container_wrap_file(NULL, 5, &f, &flen), -EINVAL);
	cr_assert_eq(container_wrap_blob(NULL, 5, &f, &flen), -EINVAL);
	if (sizeof(size_t) > 4) {
		uint8_t x = 0;

		cr_assert_eq(container_wrap_file(&x, (size_t)UINT32_MAX, &f, &flen), -EOVERFLOW);
		cr_assert_eq(container_wrap_blob(&x, (size_t)CONTAINER_MAX_PAYLOAD + 1, &f, &flen),
			     -EOVERFLOW);
	}
}

/* ---- unwrap: files --------------------------------------------------------- */

Test(container_file, round_trip_sizes)
{
	const size_t sizes[] = { 0, 1, 6, 1299, 8970, 65536 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = pattern(sizes[i], (uint8_t)i), *f = NULL, *out = NULL;
		size_t flen, olen;

		cr_assert_eq(container_wrap_file(p, sizes[i], &f, &flen), 0);
		cr_assert_eq(flen, sizes[i] + 16);
		cr_assert_eq(container_unwrap_file(f, flen, &out, &olen), 0);
		cr_assert_eq(olen, sizes[i]);
		if (olen)
			cr_assert_arr_eq(out, p, olen);
		free(p);
		free(f);
		free(out);
	}
}

Test(container_file, legacy_headerless)
{
	/* Header check fails -> 0.7.1 treats the whole file as payload. */
	const uint8_t raw[] = { 0x00, 0x03, 0xab, 0x36, 0x47, 0x23, 0x00, 0x03, 0x00, 0x03,
				0xc9, 0xea };
	uint8_t bad[20] = { 0 };
	uint8_t *out = NULL;
	size_t olen;

	cr_assert_eq(container_unwrap_file(raw, sizeof(raw), &out, &olen), 0);
	cr_assert_eq(olen, sizeof(raw));
	cr_assert_arr_eq(out, raw, sizeof(raw));
	free(out);

	/* short file */
	cr_assert_eq(container_unwrap_file(raw, 5, &out, &olen), 0);
	cr_assert_eq(olen, 5);
	free(out);

	/* each kind of header failure falls back to legacy */
	put_hdr(bad, 2, 1, 10, 0, 21);
	cr_assert_eq(container_unwrap_file(bad, 20, &out, &olen), 0);
	cr_assert_eq(olen, 20);
	free(out);
	put_hdr(bad, 3, 3, 10, 0, 20);
	cr_assert_eq(container_unwrap_file(bad, 20, &out, &olen), 0);
	cr_assert_eq(olen, 20);
	free(out);
	put_hdr(bad, 2, 1, 11, 0, 20);
	cr_assert_eq(container_unwrap_file(bad, 20, &out, &olen), 0);
	cr_assert_eq(olen, 20);
	free(out);

	/* empty file: empty payload */
	cr_assert_eq(container_unwrap_file(NULL, 0, &out, &olen), 0);
	cr_assert_eq(olen, 0);
	free(out);
}

Test(container_file, valid_header_broken_body)
{
	uint8_t b[32] = { 0 };
	uint8_t *out = NULL;
	size_t olen;

	/* empty body */
	put_hdr(b, 2, 1, 10, 0, 10);
	cr_assert_eq(container_unwrap_file(b, 10, &out, &olen), -ENOENT);
	/* missing TLV 1 */
	put_hdr(b, 2, 1, 10, 0, 20);
	put_tlv_hdr(b + 10, 2, 4);
	cr_assert_eq(container_unwrap_file(b, 20, &out, &olen), -ENOENT);
	/* TLV 1 running past the end */
	put_tlv_hdr(b + 10, 1, 5);
	cr_assert_eq(container_unwrap_file(b, 20, &out, &olen), -ENOENT);
	put_tlv_hdr(b + 10, 1, 0xffffffffu);
	cr_assert_eq(container_unwrap_file(b, 20, &out, &olen), -ENOENT);
	/* unknown body version (min_version allows reading the header) */
	put_hdr(b, 3, 1, 10, 0, 20);
	put_tlv_hdr(b + 10, 1, 4);
	cr_assert_eq(container_unwrap_file(b, 20, &out, &olen), -EPROTO);
}

Test(container_file, header_version_1_body_is_payload)
{
	uint8_t b[16] = { 0 };
	uint8_t *out = NULL;
	size_t olen;

	put_hdr(b, 1, 1, 10, 0, 16);
	memcpy(b + 10, "\x00\x01\x02\x03\x04\x05", 6);
	cr_assert_eq(container_unwrap_file(b, 16, &out, &olen), 0);
	cr_assert_eq(olen, 6);
	cr_assert_arr_eq(out, b + 10, 6);
	free(out);
}

Test(container_file, flags_ignored_without_key)
{
	/* swtpm decides by configuration: without a key TLV 1 is read whatever
	 * the flags say. */
	uint8_t *p = pattern(10, 4), *f = NULL, *out = NULL;
	size_t flen, olen;

	cr_assert_eq(container_wrap_file(p, 10, &f, &flen), 0);
	f[5] = 0x09;
	cr_assert_eq(container_unwrap_file(f, flen, &out, &olen), 0);
	cr_assert_eq(olen, 10);
	free(out);
	free(f);
	free(p);
}

/* ---- unwrap: migration blobs ----------------------------------------------- */

Test(container_blob, round_trip)
{
	uint8_t *p = pattern(8970, 5), *b = NULL, *out = NULL;
	size_t blen, olen;

	cr_assert_eq(container_wrap_blob(p, 8970, &b, &blen), 0);
	cr_assert_eq(container_unwrap_blob(b, blen, false, &out, &olen), 0);
	cr_assert_eq(olen, 8970);
	cr_assert_arr_eq(out, p, olen);
	free(out);
	free(b);
	free(p);
}

Test(container_blob, empty_blobs)
{
	uint8_t b[10];
	uint8_t *out = NULL;
	size_t olen = 0;

	cr_assert_eq(container_unwrap_blob(NULL, 0, false, &out, &olen), CONTAINER_EMPTY);
	put_hdr(b, 2, 1, 10, 0x04, 10);
	cr_assert_eq(container_unwrap_blob(b, 10, false, &out, &olen), CONTAINER_EMPTY);
	/* "empty" wins over key flags, as in swtpm */
	put_hdr(b, 2, 1, 10, 0x1f, 10);
	cr_assert_eq(container_unwrap_blob(b, 10, true, &out, &olen), CONTAINER_EMPTY);
	cr_assert_null(out);
}

Test(container_blob, header_errors_propagate)
{
	uint8_t b[30] = { 0 };
	uint8_t *out = NULL;
	size_t olen;

	put_hdr(b, 2, 1, 10, 0x04, 30);
	cr_assert_eq(container_unwrap_blob(b, 5, false, &out, &olen), -EINVAL);
	cr_assert_eq(container_unwrap_blob(b, 9, false, &out, &olen), -EINVAL);
	cr_assert_eq(container_unwrap_blob(b, 29, false, &out, &olen), -EINVAL);
	put_hdr(b, 3, 3, 10, 0x04, 30);
	cr_assert_eq(container_unwrap_blob(b, 30, false, &out, &olen), -EPROTONOSUPPORT);
	put_hdr(b, 2, 1, 9, 0x04, 30);
	cr_assert_eq(container_unwrap_blob(b, 30, false, &out, &olen), -EBADMSG);
	put_hdr(b, 2, 1, 11, 0x04, 30);
	cr_assert_eq(container_unwrap_blob(b, 30, false, &out, &olen), -EBADMSG);
	cr_assert_eq(container_err_to_tpm(-EBADMSG), TPM_BAD_DATASIZE);
}

Test(container_blob, flags_requiring_keys)
{
	uint8_t *p = pattern(20, 2), *b = NULL, *out = NULL;
	size_t blen, olen;

	cr_assert_eq(container_wrap_blob(p, 20, &b, &blen), 0);
	b[5] = 0x06; /* migration-encrypted */
	cr_assert_eq(container_unwrap_blob(b, blen, false, &out, &olen), -ENOKEY);
	b[5] = 0x16;
	cr_assert_eq(container_unwrap_blob(b, blen, false, &out, &olen), -ENOKEY);
	b[5] = 0x05; /* state-encrypted */
	cr_assert_eq(container_unwrap_blob(b, blen, false, &out, &olen), -ENOKEY);
	b[5] = 0x04; /* plain blob, but the request says encrypted */
	cr_assert_eq(container_unwrap_blob(b, blen, true, &out, &olen), -ENOKEY);
	cr_assert_eq(container_err_to_tpm(-ENOKEY), TPM_KEYNOTFOUND);
	/* flags 0x04 is not required: a blob without it is still accepted */
	b[5] = 0x00;
	cr_assert_eq(container_unwrap_blob(b, blen, false, &out, &olen), 0);
	cr_assert_eq(olen, 20);
	free(out);
	free(b);
	free(p);
}

Test(container_blob, missing_tlvs)
{
	uint8_t b[40] = { 0 };
	uint8_t *out = NULL;
	size_t olen;

	/* TLV 4 missing (body holds a bare TLV 1) */
	put_hdr(b, 2, 1, 10, 0x04, 20);
	put_tlv_hdr(b + 10, 1, 4);
	cr_assert_eq(container_unwrap_blob(b, 20, false, &out, &olen), -ENOENT);
	cr_assert_eq(container_err_to_tpm(-ENOENT), TPM_FAIL);
	/* swtpm looks for TLV 4 before checking the state-key flag */
	put_hdr(b, 2, 1, 10, 0x05, 20);
	cr_assert_eq(container_unwrap_blob(b, 20, false, &out, &olen), -ENOENT);
	/* TLV 4 present, TLV 1 missing inside */
	put_hdr(b, 2, 1, 10, 0x04, 30);
	put_tlv_hdr(b + 10, 4, 14);
	put_tlv_hdr(b + 16, 2, 8);
	cr_assert_eq(container_unwrap_blob(b, 30, false, &out, &olen), -ENOENT);
	/* empty inner list */
	put_hdr(b, 2, 1, 10, 0x04, 16);
	put_tlv_hdr(b + 10, 4, 0);
	cr_assert_eq(container_unwrap_blob(b, 16, false, &out, &olen), -ENOENT);
	/* inner TLV 1 longer than TLV 4 */
	put_hdr(b, 2, 1, 10, 0x04, 30);
	put_tlv_hdr(b + 10, 4, 14);
	put_tlv_hdr(b + 16, 1, 9);
	cr_assert_eq(container_unwrap_blob(b, 30, false, &out, &olen), -ENOENT);
	/* outer TLV 4 longer than the blob */
	put_tlv_hdr(b + 10, 4, 15);
	put_tlv_hdr(b + 16, 1, 8);
	cr_assert_eq(container_unwrap_blob(b, 30, false, &out, &olen), -ENOENT);
	put_tlv_hdr(b + 10, 4, 0xffffffffu);
	cr_assert_eq(container_unwrap_blob(b, 30, false, &out, &olen), -ENOENT);
	/* unknown body version */
	put_hdr(b, 7, 1, 10, 0x04, 30);
	put_tlv_hdr(b + 10, 4, 14);
	cr_assert_eq(container_unwrap_blob(b, 30, false, &out, &olen), -EPROTO);
	cr_assert_eq(container_err_to_tpm(-EPROTO), TPM_FAIL);
}

Test(container_blob, header_version_1)
{
	uint8_t b[14];
	uint8_t *out = NULL;
	size_t olen;

	put_hdr(b, 1, 1, 10, 0x04, 14);
	memcpy(b + 10, "\xde\xad\xbe\xef", 4);
	cr_assert_eq(container_unwrap_blob(b, 14, false, &out, &olen), 0);
	cr_assert_eq(olen, 4);
	cr_assert_arr_eq(out, b + 10, 4);
	free(out);
}

Test(container_blob, first_tlv4_wins_and_extra_tlvs)
{
	uint8_t b[64] = { 0 };
	size_t o = 10;
	uint8_t *out = NULL;
	size_t olen;

	o += put_tlv_hdr(b + o, 3, 2); /* unrelated record first */
	o += 2;
	o += put_tlv_hdr(b + o, 4, 7);
	o += put_tlv_hdr(b + o, 1, 1);
	b[o++] = 0x42;
	o += put_tlv_hdr(b + o, 4, 7);
	o += put_tlv_hdr(b + o, 1, 1);
	b[o++] = 0x43;
	put_hdr(b, 2, 1, 10, 0x04, (uint32_t)o);
	cr_assert_eq(container_unwrap_blob(b, o, false, &out, &olen), 0);
	cr_assert_eq(olen, 1);
	cr_assert_eq(out[0], 0x42);
	free(out);
}
