/* Unit tests of the socket ctrl codec: `needed` per command, streamed lengths,
 * oversize payloads, decoding of short and long bodies, exact reply layouts. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/ctrl_codec.h"

static size_t need(const uint8_t *b, size_t have)
{
	size_t n = 0;

	cr_assert_eq(ctrl_sock_needed(b, have, &n), 0);
	return n;
}

Test(ctrl_codec, needed_before_code)
{
	uint8_t b[4] = { 0, 0, 0, 2 };

	cr_assert_eq(need(b, 0), 4);
	cr_assert_eq(need(b, 3), 4);
}

Test(ctrl_codec, needed_fixed_commands)
{
	static const struct {
		uint8_t code;
		size_t needed;
	} t[] = {
		{ CMD_GET_CAPABILITY, 4 }, { CMD_INIT, 8 },	      { CMD_SHUTDOWN, 4 },
		{ CMD_GET_TPMESTABLISHED, 4 }, { CMD_SET_LOCALITY, 5 }, { CMD_HASH_START, 4 },
		{ CMD_HASH_END, 4 },	   { CMD_CANCEL_TPM_CMD, 4 }, { CMD_STORE_VOLATILE, 4 },
		{ CMD_RESET_TPMESTABLISHED, 5 }, { CMD_GET_STATEBLOB, 16 }, { CMD_STOP, 4 },
		{ CMD_GET_CONFIG, 4 },	   { CMD_SET_DATAFD, 4 },     { CMD_SET_BUFFERSIZE, 4 },
		{ CMD_GET_INFO, 4 },	   { CMD_LOCK_STORAGE, 8 },   { 0x99, 4 },
		{ 0x00, 4 },
	};
	uint8_t b[4] = { 0 };
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		b[3] = t[i].code;
		cr_assert_eq(need(b, 4), t[i].needed, "code 0x%02x", t[i].code);
	}
}

Test(ctrl_codec, needed_hash_data_grows_with_length)
{
	uint8_t b[8] = { 0, 0, 0, CMD_HASH_DATA, 0, 0, 0x01, 0x00 };

	cr_assert_eq(need(b, 4), 8);
	cr_assert_eq(need(b, 7), 8);
	cr_assert_eq(need(b, 8), 8 + 256);
	cr_assert(ctrl_sock_in_payload(b, 8));
	cr_assert_not(ctrl_sock_in_payload(b, 7));
}

Test(ctrl_codec, needed_set_stateblob_grows_with_length)
{
	uint8_t b[16] = { 0, 0, 0, CMD_SET_STATEBLOB, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x05, 0x29 };

	cr_assert_eq(need(b, 4), 16);
	cr_assert_eq(need(b, 15), 16);
	cr_assert_eq(need(b, 16), 16 + 0x529);
}

Test(ctrl_codec, oversize_payload_rejected)
{
	uint8_t b[16] = { 0, 0, 0, CMD_SET_STATEBLOB, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff };
	uint8_t h[8] = { 0, 0, 0, CMD_HASH_DATA, 0x00, 0x08, 0x00, 0x01 };
	size_t n;

	cr_assert_eq(ctrl_sock_needed(b, 16, &n), -EMSGSIZE);
	cr_assert_eq(ctrl_sock_needed(h, 8, &n), -EMSGSIZE);
}

Test(ctrl_codec, decode_init_and_length)
{
	uint8_t b[9] = { 0, 0, 0, CMD_INIT, 0, 0, 0, 1, 0x77 };
	struct ctrl_req r;

	cr_assert_eq(ctrl_sock_decode(b, 8, -1, &r), 0);
	cr_assert_eq(r.code, CMD_INIT);
	cr_assert_eq(r.n, 4);
	cr_assert_eq(r.u.init_flags, 1);
	cr_assert_eq(r.fd, -1);
	cr_assert_eq(ctrl_sock_decode(b, 9, 5, &r), 0);
	cr_assert_eq(r.n, 5, "excess bytes are counted so INIT can refuse them");
	cr_assert_eq(r.fd, 5);
	cr_assert_eq(ctrl_sock_decode(b, 3, -1, &r), -EINVAL);
}

Test(ctrl_codec, decode_short_bodies_leave_fields_zero)
{
	uint8_t b[10] = { 0, 0, 0, CMD_GET_STATEBLOB, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct ctrl_req r;

	cr_assert_eq(ctrl_sock_decode(b, sizeof(b), -1, &r), 0);
	cr_assert_eq(r.n, 6);
	cr_assert_eq(r.u.getstate.type, 0);
}

Test(ctrl_codec, decode_set_stateblob)
{
	uint8_t b[19] = { 0, 0, 0, CMD_SET_STATEBLOB, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3, 'a', 'b', 'c' };
	struct ctrl_req r;

	cr_assert_eq(ctrl_sock_decode(b, sizeof(b), -1, &r), 0);
	cr_assert_eq(r.u.setstate.flags, 2);
	cr_assert_eq(r.u.setstate.type, 3);
	cr_assert_eq(r.u.setstate.length, 3);
	cr_assert_eq(r.u.setstate.datalen, 3);
	cr_assert_eq(memcmp(r.u.setstate.data, "abc", 3), 0);
}

Test(ctrl_codec, decode_get_info_and_locality)
{
	uint8_t gi[20] = { 0, 0, 0, CMD_GET_INFO, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 10, 0, 0, 0, 0 };
	uint8_t sl[8] = { 0, 0, 0, CMD_SET_LOCALITY, 3, 0, 0, 0 };
	struct ctrl_req r;

	cr_assert_eq(ctrl_sock_decode(gi, sizeof(gi), -1, &r), 0);
	cr_assert_eq(r.u.getinfo.flags, 7);
	cr_assert_eq(r.u.getinfo.offset, 10);
	cr_assert_eq(ctrl_sock_decode(sl, sizeof(sl), -1, &r), 0);
	cr_assert_eq(r.u.loc, 3);
	cr_assert_eq(r.n, 4);
}

static void check_encode(uint32_t code, const struct ctrl_rsp *rsp, const uint8_t *want,
			 size_t wlen)
{
	uint8_t *out = NULL;
	size_t len = 0;

	cr_assert_eq(ctrl_sock_encode(code, rsp, &out, &len), 0);
	cr_assert_eq(len, wlen, "code %u: len %zu want %zu", code, len, wlen);
	cr_assert_arr_eq(out, want, wlen);
	free(out);
}

Test(ctrl_codec, encode_capability_is_bare_u64)
{
	struct ctrl_rsp rsp = { .full = true, .u.caps = 0x1ffff };
	uint8_t want[8] = { 0, 0, 0, 0, 0, 1, 0xff, 0xff };

	check_encode(CMD_GET_CAPABILITY, &rsp, want, sizeof(want));
}

Test(ctrl_codec, encode_result_only)
{
	struct ctrl_rsp rsp = { .result = 0x0a };
	uint8_t want[4] = { 0, 0, 0, 0x0a };

	check_encode(CMD_GET_TPMESTABLISHED, &rsp, want, 4);
	check_encode(CMD_GET_STATEBLOB, &rsp, want, 4);
	check_encode(CMD_SET_BUFFERSIZE, &rsp, want, 4);
	check_encode(CMD_INIT, &rsp, want, 4);
}

Test(ctrl_codec, encode_established)
{
	struct ctrl_rsp rsp = { .full = true, .u.est_bit = 1 };
	uint8_t want[8] = { 0, 0, 0, 0, 1, 0, 0, 0 };

	check_encode(CMD_GET_TPMESTABLISHED, &rsp, want, 8);
}

Test(ctrl_codec, encode_buffersize)
{
	struct ctrl_rsp rsp = { .full = true, .u.bufsize = { 4096, 2808, 4096 } };
	uint8_t want[16] = { 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x0a, 0xf8, 0, 0, 0x10, 0 };

	check_encode(CMD_SET_BUFFERSIZE, &rsp, want, 16);
}

Test(ctrl_codec, encode_get_info)
{
	uint8_t text[3] = { '{', '}', 0 };
	struct ctrl_rsp rsp = { .full = true, .u.info = { 3, 3 }, .payload = text, .payload_len = 3 };
	uint8_t want[15] = { 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 3, 0x7b, 0x7d, 0 };

	check_encode(CMD_GET_INFO, &rsp, want, sizeof(want));
}

Test(ctrl_codec, encode_stateblob_error_keeps_header)
{
	struct ctrl_rsp rsp = { .full = true, .result = 0x800 };
	uint8_t want[16] = { 0, 0, 0x08, 0 };

	check_encode(CMD_GET_STATEBLOB, &rsp, want, 16);
}

Test(ctrl_codec, encode_stateblob_with_data)
{
	uint8_t data[3] = { 1, 2, 3 };
	struct ctrl_rsp rsp = { .full = true,
				.u.blob = { 2, 3, 3 },
				.payload = data,
				.payload_len = 3 };
	uint8_t want[19] = { 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3, 1, 2, 3 };

	check_encode(CMD_GET_STATEBLOB, &rsp, want, sizeof(want));
}

Test(ctrl_codec, encode_config)
{
	struct ctrl_rsp rsp = { .full = true, .u.config_flags = 3 };
	uint8_t want[8] = { 0, 0, 0, 0, 0, 0, 0, 3 };

	check_encode(CMD_GET_CONFIG, &rsp, want, 8);
}
