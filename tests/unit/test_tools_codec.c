/* Unit tests of the pure helpers behind swtpm_ioctl / swtpm_bios: --tcp
 * argument forms as 0.7.1 parses them, the service strings each tool derives,
 * request encoding for the control socket (big-endian) and for CUSE ioctls
 * (host order, checked against the struct layout), and decoding of short,
 * exact and oversized replies.  At the end swtpm_ioctl itself runs against a
 * fake CUSE driver (an ioctl() override) to check the ioctl numbers, the
 * host-order structures and the chunking of hashes and state blobs. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ------------------------------------------------------------ --tcp */

static struct tl_tcp_arg tcp_ok(const char *arg, int defport)
{
	struct tl_tcp_arg a;

	cr_assert_eq(tl_parse_tcp(arg, "127.0.0.1", defport, &a), 0, "'%s'", arg);
	cr_assert_not_null(a.host);
	return a;
}

static void tcp_expect(const char *arg, const char *host, int port)
{
	struct tl_tcp_arg a = tcp_ok(arg, 6546);

	cr_assert_str_eq(a.host, host, "host of '%s'", arg);
	cr_assert_eq(a.port, port, "port of '%s': %d", arg, a.port);
	free(a.host);
}

Test(tools_tcp, host_and_port_forms)
{
	tcp_expect("localhost:23232", "localhost", 23232);
	tcp_expect(":23232", "127.0.0.1", 23232);
	tcp_expect("example.org", "example.org", 6546);
	tcp_expect(":", "127.0.0.1", 6546);
	/* No colon: the whole string is the host, even an empty one. */
	tcp_expect("", "", 6546);
	/* The last colon separates the port: bare IPv6 works, brackets stay. */
	tcp_expect("::1:23232", "::1", 23232);
	tcp_expect("[::1]:23232", "[::1]", 23232);
	tcp_expect(":5:6", ":5", 6);
	tcp_expect("::5", ":", 5);
}

Test(tools_tcp, port_number_quirks_of_scanf_u)
{
	tcp_expect(":12ab", "127.0.0.1", 12);
	tcp_expect(":0x10", "127.0.0.1", 0);
	tcp_expect(": 5", "127.0.0.1", 5);
	tcp_expect(":+5", "127.0.0.1", 5);
	tcp_expect(":65535", "127.0.0.1", 65535);
	/* Compared as a signed int: wrapping values pass the range check. */
	tcp_expect(":-1", "127.0.0.1", -1);
	tcp_expect(":4294967295", "127.0.0.1", -1);
	tcp_expect(":4294967296", "127.0.0.1", 0);
	tcp_expect(":2147483648", "127.0.0.1", (int)0x80000000u);
}

Test(tools_tcp, invalid_ports)
{
	static const struct {
		const char *arg;
		int rc;
		const char *port_str;
	} t[] = {
		{ ":abc", -EINVAL, "abc" },	 { "abc:", -EINVAL, "" },
		{ "::", -EINVAL, "" },		 { "a:b:", -EINVAL, "" },
		{ ":abc x", -EINVAL, "abc x" }, { ":99999", -ERANGE, "99999" },
		{ ":65536", -ERANGE, "65536" }, { ":065536", -ERANGE, "065536" },
		{ ":65536x", -ERANGE, "65536x" },
	};
	struct tl_tcp_arg a;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cr_assert_eq(tl_parse_tcp(t[i].arg, "127.0.0.1", 6546, &a), t[i].rc, "'%s'",
			     t[i].arg);
		cr_assert_null(a.host);
		cr_assert_str_eq(a.port_str, t[i].port_str, "'%s'", t[i].arg);
	}
}

Test(tools_tcp, service_strings)
{
	char s[16];

	tl_service_ioctl(6546, s);
	cr_assert_str_eq(s, "6546");
	tl_service_ioctl(-1, s);
	cr_assert_str_eq(s, "65535");
	tl_service_ioctl((int)0x80000000u, s);
	cr_assert_str_eq(s, "0");
	tl_service_ioctl(-1234567890, s);
	cr_assert_str_eq(s, "64814");

	tl_service_bios(6545, s);
	cr_assert_str_eq(s, "6545");
	tl_service_bios(70000, s);
	cr_assert_str_eq(s, "70000");
	/* Unsigned into 10 bytes: the tenth digit is lost. */
	tl_service_bios(-1, s);
	cr_assert_str_eq(s, "429496729");
	tl_service_bios(-1234567890, s);
	cr_assert_str_eq(s, "306039940");
}

/* ------------------------------------------------------------ ioctl numbers */

Test(tools_ctrl, ioctl_numbers_map_to_command_codes)
{
	static const struct {
		unsigned long req;
		uint32_t cmd;
		size_t size;
	} t[] = {
		{ PTM_GET_CAPABILITY, CMD_GET_CAPABILITY, 8 },
		{ PTM_INIT, CMD_INIT, 4 },
		{ PTM_SHUTDOWN, CMD_SHUTDOWN, 4 },
		{ PTM_GET_TPMESTABLISHED, CMD_GET_TPMESTABLISHED, 8 },
		{ PTM_SET_LOCALITY, CMD_SET_LOCALITY, 4 },
		{ PTM_HASH_START, CMD_HASH_START, 4 },
		{ PTM_HASH_DATA, CMD_HASH_DATA, 4100 },
		{ PTM_HASH_END, CMD_HASH_END, 4 },
		{ PTM_CANCEL_TPM_CMD, CMD_CANCEL_TPM_CMD, 4 },
		{ PTM_STORE_VOLATILE, CMD_STORE_VOLATILE, 4 },
		{ PTM_RESET_TPMESTABLISHED, CMD_RESET_TPMESTABLISHED, 4 },
		{ PTM_GET_STATEBLOB, CMD_GET_STATEBLOB, 3088 },
		{ PTM_SET_STATEBLOB, CMD_SET_STATEBLOB, 3084 },
		{ PTM_STOP, CMD_STOP, 4 },
		{ PTM_GET_CONFIG, CMD_GET_CONFIG, 8 },
		{ PTM_SET_DATAFD, CMD_SET_DATAFD, 4 },
		{ PTM_SET_BUFFERSIZE, CMD_SET_BUFFERSIZE, 16 },
		{ PTM_GET_INFO, CMD_GET_INFO, 3088 },
		{ PTM_LOCK_STORAGE, CMD_LOCK_STORAGE, 4 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cr_assert_eq(PTM_IOC_CMD(t[i].req), t[i].cmd, "0x%lx", t[i].req);
		cr_assert_eq(_IOC_SIZE(t[i].req), t[i].size, "0x%lx", t[i].req);
		cr_assert_eq(_IOC_TYPE(t[i].req), 'P');
	}
	cr_assert_eq(PTM_GET_STATEBLOB, 0xCC10500Bul);
	cr_assert_eq(PTM_LOCK_STORAGE, 0xC0045012ul);
}

/* ------------------------------------------------------------ socket encoding */

Test(tools_ctrl, stream_frame_is_code_then_request_part)
{
	uint8_t u[sizeof(struct ptm_ioc_getinfo)] = { 0 }, code[4];
	struct iovec iov[2];
	size_t in = tl_enc_getinfo(u, true, 3, 0);
	static const uint8_t body[16] = { 0, 0, 0, 0, 0, 0, 0, 3 };

	tl_ctrl_iov(PTM_IOC_CMD(PTM_GET_INFO), code, u, in, iov);
	cr_assert_eq(iov[0].iov_len, 4);
	cr_assert_eq(memcmp(iov[0].iov_base, "\0\0\0\x12", 4), 0);
	cr_assert_eq(iov[1].iov_len, 16);
	cr_assert_eq(memcmp(iov[1].iov_base, body, 16), 0);

	/* Commands without body still get an (empty) second element. */
	tl_ctrl_iov(CMD_GET_CAPABILITY, code, u, 0, iov);
	cr_assert_eq(iov[1].iov_len, 0);
	cr_assert_eq(memcmp(code, "\0\0\0\x01", 4), 0);
}

Test(tools_ctrl, big_endian_requests)
{
	uint8_t u[sizeof(struct ptm_ioc_hdata)];

	memset(u, 0, sizeof(u));
	cr_assert_eq(tl_enc_u32(u, true, PTM_INIT_FLAG_DELETE_VOLATILE), 4);
	cr_assert_eq(memcmp(u, "\0\0\0\x01", 4), 0);

	memset(u, 0, sizeof(u));
	cr_assert_eq(tl_enc_loc(u, 3), 1);
	cr_assert_eq(u[0], 3);

	memset(u, 0, sizeof(u));
	cr_assert_eq(tl_enc_hdata(u, true, "abc", 3), 7);
	cr_assert_eq(memcmp(u, "\0\0\0\x03" "abc", 7), 0);

	memset(u, 0, sizeof(u));
	cr_assert_eq(tl_enc_getstate(u, true, PTM_STATE_FLAG_DECRYPTED, PTM_BLOB_TYPE_VOLATILE, 0),
		     12);
	cr_assert_eq(memcmp(u, "\0\0\0\x01\0\0\0\x02\0\0\0\0", 12), 0);

	/* The socket bulk transfer: the length announces the whole file. */
	memset(u, 0, sizeof(u));
	cr_assert_eq(tl_enc_setstate(u, true, 0, PTM_BLOB_TYPE_PERMANENT, 0x529, NULL, 0), 12);
	cr_assert_eq(memcmp(u, "\0\0\0\0\0\0\0\x01\0\0\x05\x29", 12), 0);

	memset(u, 0, sizeof(u));
	cr_assert_eq(tl_enc_u32(u, true, 3), 4); /* LOCK_STORAGE retries */
	cr_assert_eq(memcmp(u, "\0\0\0\x03", 4), 0);
}

Test(tools_ctrl, hash_data_is_capped_at_4096)
{
	static uint8_t u[sizeof(struct ptm_ioc_hdata)], big[5000];

	memset(big, 'x', sizeof(big));
	cr_assert_eq(tl_enc_hdata(u, true, big, sizeof(big)), 4100);
	cr_assert_eq(tl_get32(u, true), 4096);
}

/* ------------------------------------------------------------ ioctl encoding */

Test(tools_ctrl, host_order_requests_match_the_structs)
{
	union {
		struct ptm_ioc_getstate gs;
		struct ptm_ioc_setstate ss;
		struct ptm_ioc_getinfo gi;
		struct ptm_ioc_hdata hd;
		struct ptm_ioc_init in;
		struct ptm_ioc_loc loc;
		struct ptm_ioc_setbuffersize sb;
		struct ptm_ioc_lockstorage ls;
		uint8_t b[sizeof(struct ptm_ioc_hdata)];
	} x;

	memset(&x, 0, sizeof(x));
	tl_enc_getstate(x.b, false, PTM_STATE_FLAG_DECRYPTED, PTM_BLOB_TYPE_SAVESTATE, 3072);
	cr_assert_eq(x.gs.u.req.state_flags, PTM_STATE_FLAG_DECRYPTED);
	cr_assert_eq(x.gs.u.req.type, PTM_BLOB_TYPE_SAVESTATE);
	cr_assert_eq(x.gs.u.req.offset, 3072);

	memset(&x, 0, sizeof(x));
	cr_assert_eq(tl_enc_setstate(x.b, false, 0, PTM_BLOB_TYPE_VOLATILE, 3, "xyz", 3), 15);
	cr_assert_eq(x.ss.u.req.type, PTM_BLOB_TYPE_VOLATILE);
	cr_assert_eq(x.ss.u.req.length, 3);
	cr_assert_eq(memcmp(x.ss.u.req.data, "xyz", 3), 0);

	memset(&x, 0, sizeof(x));
	tl_enc_getinfo(x.b, false, 0x100000003ull, 7);
	cr_assert_eq(x.gi.u.req.flags, 0x100000003ull);
	cr_assert_eq(x.gi.u.req.offset, 7);

	memset(&x, 0, sizeof(x));
	tl_enc_hdata(x.b, false, "ab", 2);
	cr_assert_eq(x.hd.u.req.length, 2);
	cr_assert_eq(memcmp(x.hd.u.req.data, "ab", 2), 0);

	memset(&x, 0, sizeof(x));
	tl_enc_u32(x.b, false, PTM_INIT_FLAG_DELETE_VOLATILE);
	cr_assert_eq(x.in.u.req.init_flags, PTM_INIT_FLAG_DELETE_VOLATILE);

	memset(&x, 0, sizeof(x));
	tl_enc_loc(x.b, 4);
	cr_assert_eq(x.loc.u.req.loc, 4);

	memset(&x, 0, sizeof(x));
	tl_enc_u32(x.b, false, 4000);
	cr_assert_eq(x.sb.u.req.buffersize, 4000);
	cr_assert_eq(x.ls.u.req.retries, 4000);
}

Test(tools_ctrl, host_order_replies_match_the_structs)
{
	struct ptm_ioc_getstate gs;
	struct ptm_ioc_setbuffersize sb;
	struct tl_getstate_hdr h;

	memset(&gs, 0, sizeof(gs));
	gs.u.resp.tpm_result = 0x800;
	gs.u.resp.state_flags = PTM_STATE_FLAG_ENCRYPTED;
	gs.u.resp.totlength = 5000;
	gs.u.resp.length = 3072;
	tl_dec_getstate((const uint8_t *)&gs, false, &h);
	cr_assert_eq(h.result, 0x800);
	cr_assert_eq(h.state_flags, PTM_STATE_FLAG_ENCRYPTED);
	cr_assert_eq(h.totlength, 5000);
	cr_assert_eq(h.length, 3072);

	memset(&sb, 0, sizeof(sb));
	sb.u.resp.tpm_result = 0x0a;
	cr_assert_eq(tl_dec_result((const uint8_t *)&sb, false), 0x0a);
}

/* ------------------------------------------------------------ reply decoding */

static struct tl_getstate_hdr gs_hdr(const char *hex16)
{
	uint8_t b[16];
	struct tl_getstate_hdr h;
	unsigned int v;
	int i;

	for (i = 0; i < 16; i++) {
		sscanf(hex16 + 2 * i, "%2x", &v);
		b[i] = (uint8_t)v;
	}
	tl_dec_getstate(b, true, &h);
	return h;
}

Test(tools_ctrl, getstate_stream_truncated_exact_oversized)
{
	struct tl_getstate_hdr h = gs_hdr("00000000000000000000052900000529");
	size_t len;
	int64_t rem;

	/* Header incomplete: "Too few bytes in response". */
	cr_assert_eq(tl_getstate_chunk(&h, 0, true, &len, &rem), -EPROTO);
	cr_assert_eq(tl_getstate_chunk(&h, 15, true, &len, &rem), -EPROTO);
	/* Whole blob in the first read. */
	cr_assert_eq(tl_getstate_chunk(&h, 16 + 0x529, true, &len, &rem), 0);
	cr_assert_eq(len, 0x529);
	cr_assert_eq(rem, 0);
	/* First read of a big blob: 3072 now, the rest follows. */
	h = gs_hdr("00000000000000000000226000002260");
	cr_assert_eq(tl_getstate_chunk(&h, 3088, true, &len, &rem), 0);
	cr_assert_eq(len, 3072);
	cr_assert_eq(rem, 0x2260 - 3072);
	/* More bytes than announced: remaining goes negative (an error later). */
	h = gs_hdr("00000000000000000000000200000003");
	cr_assert_eq(tl_getstate_chunk(&h, 20, true, &len, &rem), 0);
	cr_assert_eq(len, 4);
	cr_assert_eq(rem, -2);
	/* "No such state": header only. */
	h = gs_hdr("00000800000000000000000000000000");
	cr_assert_eq(tl_getstate_chunk(&h, 16, true, &len, &rem), 0);
	cr_assert_eq(len, 0);
	cr_assert_eq(rem, 0);
	cr_assert(h.result & TL_TPM_NON_FATAL);
	/* More than the union can hold never comes from one read. */
	cr_assert_eq(tl_getstate_chunk(&h, 3089, true, &len, &rem), -EMSGSIZE);
}

Test(tools_ctrl, getstate_device_uses_length_field)
{
	struct tl_getstate_hdr h = { .totlength = 5000, .length = 3072 };
	size_t len;
	int64_t rem;

	/* The byte count does not matter for a device, the length field does. */
	cr_assert_eq(tl_getstate_chunk(&h, 3, false, &len, &rem), 0);
	cr_assert_eq(len, 3072);
	cr_assert_eq(rem, 5000 - 3072);
	h.length = 3073;
	cr_assert_eq(tl_getstate_chunk(&h, 3088, false, &len, &rem), -EMSGSIZE);
	h.totlength = 4;
	h.length = 10;
	cr_assert_eq(tl_getstate_chunk(&h, 3088, false, &len, &rem), 0);
	cr_assert_eq(rem, -6);
	h.totlength = 0xF0000000u;
	h.length = 16;
	cr_assert_eq(tl_getstate_chunk(&h, 3088, false, &len, &rem), 0);
	cr_assert_eq(rem, (int64_t)0xF0000000u - 16);
}

Test(tools_ctrl, short_replies_of_result_only_commands)
{
	cr_assert_eq(tl_ctrl_reply_complete(CMD_SHUTDOWN, 0, 0), -EBADMSG);
	cr_assert_eq(tl_ctrl_reply_complete(CMD_STOP, 3, 0), -EBADMSG);
	cr_assert_eq(tl_ctrl_reply_complete(CMD_STOP, 4, 0), 0);
	cr_assert_eq(tl_ctrl_reply_complete(CMD_GET_TPMESTABLISHED, 2, 0), -EBADMSG);
	cr_assert_eq(tl_ctrl_reply_complete(CMD_GET_TPMESTABLISHED, 4, 0), 0);
	cr_assert_eq(tl_ctrl_reply_complete(CMD_GET_CONFIG, 0, 0), -EBADMSG);
	cr_assert_eq(tl_ctrl_reply_complete(CMD_HASH_START, 1, 0), -EBADMSG);
	/* The request overlays the result: 0.7.1 is deterministic here. */
	cr_assert_eq(tl_ctrl_reply_complete(CMD_INIT, 0, 1), 0);
	cr_assert_eq(tl_ctrl_reply_complete(CMD_SET_LOCALITY, 0, 0x1000000), 0);
	cr_assert_eq(tl_ctrl_reply_complete(CMD_GET_INFO, 0, 0), 0);
}

Test(tools_ctrl, short_reply_keeps_request_bytes)
{
	uint8_t u[4] = { 0 };

	/* INIT with an empty reply: the flags word is read back as result 1. */
	tl_enc_u32(u, true, PTM_INIT_FLAG_DELETE_VOLATILE);
	cr_assert_eq(tl_dec_result(u, true), 1);
	/* SET_LOCALITY 1, empty reply: 0x01000000 (big-endian of 01 00 00 00). */
	memset(u, 0, sizeof(u));
	tl_enc_loc(u, 1);
	cr_assert_eq(tl_dec_result(u, true), 0x01000000u);
}

Test(tools_ctrl, info_text_is_bounded)
{
	static uint8_t u[sizeof(struct ptm_ioc_getinfo)];
	const char *s;

	memset(u, 0, sizeof(u));
	memcpy(u + 12, "{}\0junk", 7);
	cr_assert_eq(tl_dec_info(u, &s), 2);
	cr_assert_eq(strncmp(s, "{}", 2), 0);
	/* A NUL-less reply of the full 3072 bytes. */
	memset(u + 12, 'A', PTM_GETINFO_SIZE);
	memset(u + 12 + PTM_GETINFO_SIZE, 'B', sizeof(u) - 12 - PTM_GETINFO_SIZE);
	cr_assert_eq(tl_dec_info(u, &s), PTM_GETINFO_SIZE);
	/* Nothing after the header. */
	memset(u, 0, sizeof(u));
	cr_assert_eq(tl_dec_info(u, &s), 0);
}

Test(tools_ctrl, blob_type_names)
{
	cr_assert_eq(tl_blob_type("permanent"), PTM_BLOB_TYPE_PERMANENT);
	cr_assert_eq(tl_blob_type("volatile"), PTM_BLOB_TYPE_VOLATILE);
	cr_assert_eq(tl_blob_type("savestate"), PTM_BLOB_TYPE_SAVESTATE);
	cr_assert_eq(tl_blob_type("Permanent"), 0);
	cr_assert_eq(tl_blob_type(""), 0);
}

/* ------------------------------------------------------------ TPM responses */

Test(tools_tpm, response_validation)
{
	static const uint8_t ok[10] = { 0x00, 0xc4, 0, 0, 0, 10, 0, 0, 0, 0x26 };
	static const uint8_t eleven[11] = { 0x00, 0xc4, 0, 0, 0, 11, 0, 0, 0, 0, 0 };
	static const uint8_t lies[10] = { 0x00, 0xc4, 0, 0, 0, 11, 0, 0, 0, 0 };
	uint8_t big[1024] = { 0x00, 0xc4, 0, 0, 0x04, 0x10 };

	cr_assert_eq(tl_tpm_resp_check(ok, 0), -EPROTO);
	cr_assert_eq(tl_tpm_resp_check(ok, 9), -EPROTO);
	cr_assert_eq(tl_tpm_resp_check(ok, 10), 0);
	cr_assert_eq(tl_tpm_resp_code(ok), 0x26);
	cr_assert_eq(tl_tpm_resp_check(eleven, 11), 0);
	cr_assert_eq(tl_tpm_resp_check(lies, 10), -EBADMSG);
	/* A 1040-byte answer arrives as 1024 bytes that claim 1040. */
	cr_assert_eq(tl_tpm_resp_check(big, sizeof(big)), -EBADMSG);
	big[4] = 0x04;
	big[5] = 0x00;
	cr_assert_eq(tl_tpm_resp_check(big, sizeof(big)), 0);
}

Test(tools_tpm, permanent_flags_deactivated_byte)
{
	/* header(10) respSize(4) tag 001f, disable, ownership, deactivated */
	uint8_t r[36] = { 0x00, 0xc4, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0, 0x16, 0x00, 0x1f };

	cr_assert_not(tl_tpm12_perm_deactivated(r, sizeof(r)));
	r[18] = 1;
	cr_assert(tl_tpm12_perm_deactivated(r, sizeof(r)));
	r[18] = 2;
	cr_assert(tl_tpm12_perm_deactivated(r, sizeof(r)));
	/* Too short to contain the byte: not deactivated. */
	cr_assert_not(tl_tpm12_perm_deactivated(r, 18));
	cr_assert(tl_tpm12_perm_deactivated(r, 19));
	r[18] = 0;
	r[17] = 1; /* ownership */
	cr_assert_not(tl_tpm12_perm_deactivated(r, sizeof(r)));
}

Test(tools_tpm, tpm2_hierarchy_change_auth_bytes)
{
	static const uint8_t want_hdr[29] = {
		0x80, 0x02, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00, 0x01, 0x29,
		0x40, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x09, 0x40, 0x00,
		0x00, 0x09, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x14,
	};
	uint8_t auth[20], cmd[TL_TPM2_HCA_LEN];
	int i;

	for (i = 0; i < 20; i++)
		auth[i] = (uint8_t)(0xa0 + i);
	tl_tpm2_hca_cmd(cmd, auth);
	cr_assert_eq(memcmp(cmd, want_hdr, sizeof(want_hdr)), 0);
	cr_assert_eq(memcmp(cmd + 29, auth, 20), 0);
	cr_assert_eq(tl_get32(cmd + 2, true), sizeof(cmd));
}

/* ------------------------------------------------------------ swtpm_ioctl on a fake CUSE device */

/* swtpm_ioctl itself, with main() renamed, runs in-process against the fake
 * CUSE TPM below: /dev/null is a character device, so the tool takes its
 * ioctl() path, and the ioctl() defined here (the executable's own symbol
 * wins over libc's) plays the CUSE driver for the 'P' requests. */
int swtpm_ioctl_main(int argc, char *argv[]);
#define main swtpm_ioctl_main
#include "swtpm_ioctl.c"
#undef main

#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define FAKE_LOG 64
#define FAKE_BLOB 16384

static struct {
	uint64_t caps;
	uint32_t result;	 /* result of every command that has one */
	unsigned long fail_req; /* this request fails with fail_errno */
	int fail_errno;
	uint8_t est;
	size_t nlog;
	unsigned long req[FAKE_LOG];
	uint8_t in[FAKE_LOG][16]; /* start of each request, as the driver saw it */
	uint8_t hashed[FAKE_BLOB];
	size_t hashed_len;
	uint8_t blob[FAKE_BLOB]; /* served by GET_STATEBLOB */
	uint32_t blob_len;
	uint8_t set[FAKE_BLOB]; /* collected by SET_STATEBLOB */
	uint32_t set_len;
	bool set_done;
	const char *info;
} fk;

static int fake_cuse(unsigned long request, void *arg)
{
	if (fk.nlog < FAKE_LOG) {
		fk.req[fk.nlog] = request;
		memcpy(fk.in[fk.nlog], arg, _IOC_SIZE(request) < 16 ? _IOC_SIZE(request) : 16);
		fk.nlog++;
	}
	if (request == fk.fail_req) {
		errno = fk.fail_errno;
		return -1;
	}
	switch (request) {
	case PTM_GET_CAPABILITY:
		*(ptm_ioc_cap *)arg = fk.caps;
		return 0;
	case PTM_INIT:
		((struct ptm_ioc_init *)arg)->u.resp.tpm_result = fk.result;
		return 0;
	case PTM_GET_TPMESTABLISHED: {
		struct ptm_ioc_est *p = arg;

		p->u.resp.tpm_result = fk.result;
		p->u.resp.bit = fk.est;
		return 0;
	}
	case PTM_SET_LOCALITY:
	case PTM_RESET_TPMESTABLISHED:
	case PTM_LOCK_STORAGE:
		((struct ptm_ioc_loc *)arg)->u.resp.tpm_result = fk.result;
		return 0;
	case PTM_SHUTDOWN:
	case PTM_STOP:
	case PTM_HASH_START:
	case PTM_HASH_END:
	case PTM_CANCEL_TPM_CMD:
	case PTM_STORE_VOLATILE:
		*(ptm_ioc_res *)arg = fk.result;
		return 0;
	case PTM_HASH_DATA: {
		struct ptm_ioc_hdata *p = arg;
		uint32_t len = p->u.req.length;

		cr_assert_leq(len, PTM_HASH_DATA_SIZE);
		cr_assert_leq(fk.hashed_len + len, sizeof(fk.hashed));
		memcpy(fk.hashed + fk.hashed_len, p->u.req.data, len);
		fk.hashed_len += len;
		p->u.resp.tpm_result = fk.result;
		return 0;
	}
	case PTM_GET_STATEBLOB: {
		struct ptm_ioc_getstate *p = arg;
		uint32_t off = p->u.req.offset, n = 0;

		if (off < fk.blob_len)
			n = fk.blob_len - off < PTM_STATE_BLOB_SIZE ? fk.blob_len - off :
								      PTM_STATE_BLOB_SIZE;
		memcpy(p->u.resp.data, fk.blob + off, n);
		p->u.resp.tpm_result = fk.result;
		p->u.resp.state_flags = 0;
		p->u.resp.totlength = fk.blob_len;
		p->u.resp.length = n;
		return 0;
	}
	case PTM_SET_STATEBLOB: {
		struct ptm_ioc_setstate *p = arg;
		uint32_t len = p->u.req.length;

		cr_assert_leq(len, PTM_STATE_BLOB_SIZE);
		cr_assert_leq(fk.set_len + len, sizeof(fk.set));
		memcpy(fk.set + fk.set_len, p->u.req.data, len);
		fk.set_len += len;
		/* A packet shorter than the maximum ends the transfer. */
		fk.set_done = len < PTM_STATE_BLOB_SIZE;
		p->u.resp.tpm_result = fk.result;
		return 0;
	}
	case PTM_GET_CONFIG: {
		struct ptm_ioc_getconfig *p = arg;

		p->u.resp.tpm_result = fk.result;
		p->u.resp.flags = PTM_CONFIG_FLAG_FILE_KEY | PTM_CONFIG_FLAG_MIGRATION_KEY;
		return 0;
	}
	case PTM_SET_BUFFERSIZE: {
		struct ptm_ioc_setbuffersize *p = arg;
		uint32_t want = p->u.req.buffersize;

		p->u.resp.tpm_result = fk.result;
		p->u.resp.buffersize = want ? want : 4096;
		p->u.resp.minsize = 2808;
		p->u.resp.maxsize = 4096;
		return 0;
	}
	case PTM_GET_INFO: {
		struct ptm_ioc_getinfo *p = arg;
		size_t len = strlen(fk.info) + 1;

		cr_assert_eq(p->u.req.offset, 0);
		p->u.resp.tpm_result = fk.result;
		p->u.resp.totlength = (uint32_t)len;
		p->u.resp.length = (uint32_t)len;
		memcpy(p->u.resp.buffer, fk.info, len);
		return 0;
	}
	default:
		errno = EINVAL;
		return -1;
	}
}

int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (_IOC_TYPE(request) != PTM_IOC_MAGIC)
		return (int)syscall(SYS_ioctl, fd, request, arg);
	return fake_cuse(request, arg);
}

static uint32_t in32(size_t i, size_t off)
{
	uint32_t v;

	memcpy(&v, fk.in[i] + off, sizeof(v));
	return v;
}

/* Run the tool with the given arguments (NULL-terminated); argv[0] is
 * "swtpm_ioctl". */
static int tool(const char *first, ...)
{
	static char *argv[32];
	const char *a;
	va_list ap;
	int argc = 0;

	argv[argc++] = strdup("swtpm_ioctl");
	va_start(ap, first);
	for (a = first; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = strdup(a);
	va_end(ap);
	argv[argc] = NULL;
	optind = 0; /* a fresh getopt scan */
	argc = swtpm_ioctl_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	return argc;
}

static void cuse_setup(void)
{
	memset(&fk, 0, sizeof(fk));
	fk.caps = 0x6fff;
	fk.info = "{\"TPMSpecification\":{\"family\":\"2.0\"}}";
	cr_redirect_stdout();
	cr_redirect_stderr();
}

/* Files of a test live in a private directory that cuse_teardown removes. */
static char tmp_dir[64];
static char tmp_paths[8][128];
static int tmp_count;

static char *tmpfile_path(const char *name)
{
	if (!tmp_dir[0]) {
		strcpy(tmp_dir, "/tmp/tools-codec.XXXXXX");
		cr_assert_not_null(mkdtemp(tmp_dir));
	}
	cr_assert_lt(tmp_count, 8);
	snprintf(tmp_paths[tmp_count], sizeof(tmp_paths[0]), "%s/%s", tmp_dir, name);
	return tmp_paths[tmp_count++];
}

static void cuse_teardown(void)
{
	int i;

	for (i = 0; i < tmp_count; i++)
		unlink(tmp_paths[i]);
	if (tmp_dir[0])
		rmdir(tmp_dir);
}

Test(tools_cuse, capability_is_a_host_order_u64, .init = cuse_setup, .fini = cuse_teardown)
{
	cr_assert_eq(tool("-c", "/dev/null", NULL), 0);
	cr_assert_stdout_eq_str("ptm capability is 0x6fff\n");
	cr_assert_eq(fk.nlog, 1);
	cr_assert_eq(fk.req[0], PTM_GET_CAPABILITY);
}

Test(tools_cuse, init_sends_delete_volatile, .init = cuse_setup, .fini = cuse_teardown)
{
	cr_assert_eq(tool("--tpm-device", "/dev/null", "-i", NULL), 0);
	cr_assert_eq(fk.nlog, 1);
	cr_assert_eq(fk.req[0], PTM_INIT);
	cr_assert_eq(in32(0, 0), PTM_INIT_FLAG_DELETE_VOLATILE);
	cr_assert_stdout_eq_str("");
}

Test(tools_cuse, tpm_result_is_reported, .init = cuse_setup, .fini = cuse_teardown)
{
	fk.result = 0x0a;
	cr_assert_eq(tool("-e", "/dev/null", NULL), 1);
	cr_assert_stderr_eq_str("TPM result from PTM_GET_TPMESTABLISHED: 0xa\n");
}

Test(tools_cuse, established_bit, .init = cuse_setup, .fini = cuse_teardown)
{
	fk.est = 1;
	cr_assert_eq(tool("-e", "/dev/null", NULL), 0);
	cr_assert_stdout_eq_str("tpmEstablished is 1\n");
}

Test(tools_cuse, locality_byte, .init = cuse_setup, .fini = cuse_teardown)
{
	cr_assert_eq(tool("-l", "4", "/dev/null", NULL), 0);
	cr_assert_eq(fk.req[0], PTM_SET_LOCALITY);
	cr_assert_eq(fk.in[0][0], 4);
}

Test(tools_cuse, reset_established_locality, .init = cuse_setup, .fini = cuse_teardown)
{
	cr_assert_eq(tool("-r", "3", "/dev/null", NULL), 0);
	cr_assert_eq(fk.req[0], PTM_RESET_TPMESTABLISHED);
	cr_assert_eq(fk.in[0][0], 3);
}

Test(tools_cuse, result_only_commands, .init = cuse_setup, .fini = cuse_teardown)
{
	cr_assert_eq(tool("-s", "/dev/null", NULL), 0);
	cr_assert_eq(tool("--stop", "/dev/null", NULL), 0);
	cr_assert_eq(tool("-C", "/dev/null", NULL), 0);
	cr_assert_eq(tool("-v", "/dev/null", NULL), 0);
	cr_assert_eq(fk.nlog, 4);
	cr_assert_eq(fk.req[0], PTM_SHUTDOWN);
	cr_assert_eq(fk.req[1], PTM_STOP);
	cr_assert_eq(fk.req[2], PTM_CANCEL_TPM_CMD);
	cr_assert_eq(fk.req[3], PTM_STORE_VOLATILE);
}

Test(tools_cuse, hash_sequence_in_4096_byte_pieces, .init = cuse_setup, .fini = cuse_teardown)
{
	static char data[5001];

	memset(data, 'q', 5000);
	cr_assert_eq(tool("-h", data, "/dev/null", NULL), 0);
	cr_assert_eq(fk.nlog, 4);
	cr_assert_eq(fk.req[0], PTM_HASH_START);
	cr_assert_eq(fk.req[1], PTM_HASH_DATA);
	cr_assert_eq(in32(1, 0), 4096);
	cr_assert_eq(fk.req[2], PTM_HASH_DATA);
	cr_assert_eq(in32(2, 0), 904);
	cr_assert_eq(fk.req[3], PTM_HASH_END);
	cr_assert_eq(fk.hashed_len, 5000);
	cr_assert_eq(memcmp(fk.hashed, data, 5000), 0);
}

Test(tools_cuse, save_fetches_3072_byte_chunks, .init = cuse_setup, .fini = cuse_teardown)
{
	const char *path = tmpfile_path("vol.blob");
	static uint8_t got[FAKE_BLOB];
	struct stat st;
	uint32_t i;
	FILE *f;

	for (i = 0; i < 7000; i++)
		fk.blob[i] = (uint8_t)(i * 7);
	fk.blob_len = 7000;
	cr_assert_eq(tool("--save", "volatile", path, "/dev/null", NULL), 0);
	cr_assert_eq(fk.nlog, 3);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(fk.req[i], PTM_GET_STATEBLOB);
		cr_assert_eq(in32(i, 0), PTM_STATE_FLAG_DECRYPTED);
		cr_assert_eq(in32(i, 4), PTM_BLOB_TYPE_VOLATILE);
		cr_assert_eq(in32(i, 8), i * 3072);
	}
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(st.st_size, 7000);
	f = fopen(path, "rb");
	cr_assert_not_null(f);
	cr_assert_eq(fread(got, 1, sizeof(got), f), 7000);
	fclose(f);
	cr_assert_eq(memcmp(got, fk.blob, 7000), 0);
}

Test(tools_cuse, save_of_missing_state_is_empty, .init = cuse_setup, .fini = cuse_teardown)
{
	const char *path = tmpfile_path("save.blob");
	struct stat st;

	fk.result = TL_TPM_NON_FATAL;
	cr_assert_eq(tool("--save", "savestate", path, "/dev/null", NULL), 0);
	cr_assert_eq(fk.nlog, 1);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, 0);
}

static void write_file_of(const char *path, size_t len)
{
	FILE *f = fopen(path, "wb");
	size_t i;

	cr_assert_not_null(f);
	for (i = 0; i < len; i++)
		fputc((int)(i * 13 & 0xff), f);
	fclose(f);
}

Test(tools_cuse, load_multiple_of_3072_ends_with_empty_packet, .init = cuse_setup, .fini = cuse_teardown)
{
	const char *path = tmpfile_path("perm.blob");
	size_t i;

	write_file_of(path, 6144);
	cr_assert_eq(tool("--load", "permanent", path, "/dev/null", NULL), 0);
	cr_assert_eq(fk.nlog, 3);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(fk.req[i], PTM_SET_STATEBLOB);
		cr_assert_eq(in32(i, 0), 0);
		cr_assert_eq(in32(i, 4), PTM_BLOB_TYPE_PERMANENT);
		cr_assert_eq(in32(i, 8), i < 2 ? 3072 : 0);
	}
	cr_assert(fk.set_done);
	cr_assert_eq(fk.set_len, 6144);
	for (i = 0; i < 6144; i++)
		cr_assert_eq(fk.set[i], (uint8_t)(i * 13 & 0xff));
}

Test(tools_cuse, load_small_blob_is_one_packet, .init = cuse_setup, .fini = cuse_teardown)
{
	const char *path = tmpfile_path("small.blob");

	write_file_of(path, 100);
	cr_assert_eq(tool("--load", "savestate", path, "/dev/null", NULL), 0);
	cr_assert_eq(fk.nlog, 1);
	cr_assert_eq(in32(0, 8), 100);
	cr_assert(fk.set_done);
	cr_assert_eq(fk.set_len, 100);
}

Test(tools_cuse, load_error_result, .init = cuse_setup, .fini = cuse_teardown)
{
	const char *path = tmpfile_path("small2.blob");

	write_file_of(path, 10);
	fk.result = 0x21;
	cr_assert_eq(tool("--load", "volatile", path, "/dev/null", NULL), 1);
	cr_assert_stderr_eq_str("TPM result from PTM_SET_STATEBLOB: 0x21\n");
}

Test(tools_cuse, info_string, .init = cuse_setup, .fini = cuse_teardown)
{
	cr_assert_eq(tool("--info", "0x1", "/dev/null", NULL), 0);
	cr_assert_eq(fk.req[0], PTM_GET_INFO);
	cr_assert_eq(in32(0, 0), 1); /* u64 flags, low half first on LE */
	cr_assert_stdout_eq_str("{\"TPMSpecification\":{\"family\":\"2.0\"}}\n");
}

Test(tools_cuse, buffersize_lines, .init = cuse_setup, .fini = cuse_teardown)
{
	cr_assert_eq(tool("-b", "3000", "/dev/null", NULL), 0);
	cr_assert_eq(in32(0, 0), 3000);
	cr_assert_stdout_eq_str("TPM buffersize: 3000\nminimum size  : 2808\nmaximum size  : 4096\n");
}

Test(tools_cuse, config_flags, .init = cuse_setup, .fini = cuse_teardown)
{
	cr_assert_eq(tool("-g", "/dev/null", NULL), 0);
	cr_assert_stdout_eq_str("ptm configuration flags: 0x3\n");
}

Test(tools_cuse, lock_storage_retries, .init = cuse_setup, .fini = cuse_teardown)
{
	cr_assert_eq(tool("--lock-storage", "7", "/dev/null", NULL), 0);
	cr_assert_eq(fk.req[0], PTM_LOCK_STORAGE);
	cr_assert_eq(in32(0, 0), 7);
}

Test(tools_cuse, failing_ioctl_is_reported_with_errno, .init = cuse_setup, .fini = cuse_teardown)
{
	fk.fail_req = PTM_STOP;
	fk.fail_errno = EINVAL;
	cr_assert_eq(tool("--stop", "/dev/null", NULL), 1);
	cr_assert_stderr_eq_str("Could not execute PTM_STOP: Invalid argument\n");
}
