/* Unit tests of the CUSE ioctl codec (io/ctrl_ioctl_codec.c): every PTM_*
 * argument structure decoded from and encoded into host byte order at the
 * offsets of include/vtpm/ctrl_ioctl.h (ctrl-channel.md §4, §8), req->n as the
 * dispatcher expects it (0 for _IOR commands, the structure size for _IOW),
 * and malformed input: unknown numbers, PTM_SET_DATAFD, short input, lengths
 * larger than the data fields, payloads larger than the reply fields, small
 * output buffers, padding. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "io/ctrl_ioctl_codec.h"
#include "vtpm/ctrl_ioctl.h"

/* Room for the largest structure plus a guard area and a misalignment byte. */
#define BUF 8192

static uint8_t in_buf[BUF], out_buf[BUF];

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* Every ioctl of the device, with its socket command code, structure size and
 * whether the caller passes a request part in (_IOW). */
static const struct {
	unsigned int cmd;
	uint32_t code;
	size_t size;
	bool in;
} ioctls[] = {
	{ PTM_GET_CAPABILITY, CMD_GET_CAPABILITY, 8, false },
	{ PTM_INIT, CMD_INIT, 4, true },
	{ PTM_SHUTDOWN, CMD_SHUTDOWN, 4, false },
	{ PTM_GET_TPMESTABLISHED, CMD_GET_TPMESTABLISHED, 8, false },
	{ PTM_SET_LOCALITY, CMD_SET_LOCALITY, 4, true },
	{ PTM_HASH_START, CMD_HASH_START, 4, false },
	{ PTM_HASH_DATA, CMD_HASH_DATA, 4100, true },
	{ PTM_HASH_END, CMD_HASH_END, 4, false },
	{ PTM_CANCEL_TPM_CMD, CMD_CANCEL_TPM_CMD, 4, false },
	{ PTM_STORE_VOLATILE, CMD_STORE_VOLATILE, 4, false },
	{ PTM_RESET_TPMESTABLISHED, CMD_RESET_TPMESTABLISHED, 4, true },
	{ PTM_GET_STATEBLOB, CMD_GET_STATEBLOB, 3088, true },
	{ PTM_SET_STATEBLOB, CMD_SET_STATEBLOB, 3084, true },
	{ PTM_STOP, CMD_STOP, 4, false },
	{ PTM_GET_CONFIG, CMD_GET_CONFIG, 8, false },
	{ PTM_SET_BUFFERSIZE, CMD_SET_BUFFERSIZE, 16, true },
	{ PTM_GET_INFO, CMD_GET_INFO, 3088, true },
	{ PTM_LOCK_STORAGE, CMD_LOCK_STORAGE, 4, true },
};
#define NIOCTLS (sizeof(ioctls) / sizeof(ioctls[0]))

/* ------------------------------------------------------------ sizes and numbers */

Test(ioctl_codec, sizes_of_every_ioctl)
{
	size_t i;

	for (i = 0; i < NIOCTLS; i++)
		cr_assert_eq(ctrl_ioctl_size(ioctls[i].cmd), ioctls[i].size, "0x%08x",
			     ioctls[i].cmd);
	cr_assert_eq(ctrl_ioctl_size(PTM_SET_DATAFD), 0);
	cr_assert_eq(ctrl_ioctl_size(0), 0);
	cr_assert_eq(ctrl_ioctl_size(0xffffffffu), 0);
	/* the right number but another direction or size, or another type */
	cr_assert_eq(ctrl_ioctl_size(_IOW('P', 1, struct ptm_ioc_init)), 0);
	cr_assert_eq(ctrl_ioctl_size(_IOWR('P', 1, uint64_t)), 0);
	cr_assert_eq(ctrl_ioctl_size(_IOR('Q', 0, ptm_ioc_cap)), 0);
	cr_assert_eq(ctrl_ioctl_size(_IOWR('P', 19, struct ptm_ioc_lockstorage)), 0);
	cr_assert_eq(ctrl_ioctl_size(_IOR('P', 0, uint32_t)), 0);
}

Test(ioctl_codec, code_and_n_of_every_ioctl)
{
	struct ctrl_req req;
	size_t i;

	memset(in_buf, 0, sizeof(in_buf));
	for (i = 0; i < NIOCTLS; i++) {
		size_t need = ioctls[i].in ? ioctls[i].size : 0;

		cr_assert_eq(ctrl_ioctl_decode(ioctls[i].cmd, in_buf, need, &req), 0, "0x%08x",
			     ioctls[i].cmd);
		cr_assert_eq(req.code, ioctls[i].code, "0x%08x", ioctls[i].cmd);
		cr_assert_eq(req.n, need, "n of 0x%08x: %zu", ioctls[i].cmd, req.n);
		cr_assert_eq(req.fd, -1);
		/* the kernel hands more in than needed: still the structure size */
		cr_assert_eq(ctrl_ioctl_decode(ioctls[i].cmd, in_buf, 5000, &req), 0);
		cr_assert_eq(req.n, need);
	}
}

Test(ioctl_codec, ior_commands_need_no_input)
{
	struct ctrl_req req;
	size_t i;

	for (i = 0; i < NIOCTLS; i++) {
		if (ioctls[i].in)
			continue;
		/* restricted _IOR ioctls arrive with nothing copied in */
		cr_assert_eq(ctrl_ioctl_decode(ioctls[i].cmd, NULL, 0, &req), 0, "0x%08x",
			     ioctls[i].cmd);
		cr_assert_eq(req.n, 0);
	}
}

/* ------------------------------------------------------------ decoding */

Test(ioctl_codec, decode_init_flags_host_order)
{
	struct ctrl_req req;

	put32(in_buf, 0x01020304u);
	cr_assert_eq(ctrl_ioctl_decode(PTM_INIT, in_buf, 4, &req), 0);
	cr_assert_eq(req.u.init_flags, 0x01020304u);
	put32(in_buf, PTM_INIT_FLAG_DELETE_VOLATILE);
	cr_assert_eq(ctrl_ioctl_decode(PTM_INIT, in_buf, 4, &req), 0);
	cr_assert_eq(req.u.init_flags, PTM_INIT_FLAG_DELETE_VOLATILE);
}

Test(ioctl_codec, decode_locality_is_the_first_byte)
{
	struct ctrl_req req;

	memset(in_buf, 0xee, 4);
	in_buf[0] = 3;
	cr_assert_eq(ctrl_ioctl_decode(PTM_SET_LOCALITY, in_buf, 4, &req), 0);
	cr_assert_eq(req.u.loc, 3);
	cr_assert_eq(req.n, 4);
	in_buf[0] = 200;
	cr_assert_eq(ctrl_ioctl_decode(PTM_RESET_TPMESTABLISHED, in_buf, 4, &req), 0);
	cr_assert_eq(req.u.loc, 200);
	cr_assert_eq(req.code, CMD_RESET_TPMESTABLISHED);
}

Test(ioctl_codec, decode_hash_data)
{
	struct ctrl_req req;

	memset(in_buf, 0, sizeof(in_buf));
	put32(in_buf, 3);
	memcpy(in_buf + 4, "abc", 3);
	cr_assert_eq(ctrl_ioctl_decode(PTM_HASH_DATA, in_buf, 4100, &req), 0);
	cr_assert_eq(req.n, 4100);
	cr_assert_eq(req.u.hash.length, 3);
	cr_assert_eq(req.u.hash.datalen, 3);
	cr_assert_eq(req.u.hash.data, in_buf + 4, "data points into the argument");
	/* exactly the field */
	put32(in_buf, 4096);
	cr_assert_eq(ctrl_ioctl_decode(PTM_HASH_DATA, in_buf, 4100, &req), 0);
	cr_assert_eq(req.u.hash.datalen, 4096);
	/* more than the field holds: datalen clamped, length kept (the
	 * dispatcher refuses the mismatch instead of reading beyond) */
	put32(in_buf, 4097);
	cr_assert_eq(ctrl_ioctl_decode(PTM_HASH_DATA, in_buf, 4100, &req), 0);
	cr_assert_eq(req.u.hash.length, 4097);
	cr_assert_eq(req.u.hash.datalen, 4096);
	put32(in_buf, 0xffffffffu);
	cr_assert_eq(ctrl_ioctl_decode(PTM_HASH_DATA, in_buf, 4100, &req), 0);
	cr_assert_eq(req.u.hash.length, 0xffffffffu);
	cr_assert_eq(req.u.hash.datalen, 4096);
	put32(in_buf, 0);
	cr_assert_eq(ctrl_ioctl_decode(PTM_HASH_DATA, in_buf, 4100, &req), 0);
	cr_assert_eq(req.u.hash.datalen, 0);
}

Test(ioctl_codec, decode_getstate_fields)
{
	struct ctrl_req req;

	memset(in_buf, 0xcc, 3088);
	put32(in_buf, PTM_STATE_FLAG_DECRYPTED);
	put32(in_buf + 4, PTM_BLOB_TYPE_VOLATILE);
	put32(in_buf + 8, 6144);
	cr_assert_eq(ctrl_ioctl_decode(PTM_GET_STATEBLOB, in_buf, 3088, &req), 0);
	cr_assert_eq(req.n, 3088);
	cr_assert_eq(req.u.getstate.flags, PTM_STATE_FLAG_DECRYPTED);
	cr_assert_eq(req.u.getstate.type, PTM_BLOB_TYPE_VOLATILE);
	cr_assert_eq(req.u.getstate.offset, 6144);
}

Test(ioctl_codec, decode_setstate_fields)
{
	struct ctrl_req req;

	memset(in_buf, 0, sizeof(in_buf));
	put32(in_buf, PTM_STATE_FLAG_ENCRYPTED);
	put32(in_buf + 4, PTM_BLOB_TYPE_SAVESTATE);
	put32(in_buf + 8, 5);
	memcpy(in_buf + 12, "hello", 5);
	cr_assert_eq(ctrl_ioctl_decode(PTM_SET_STATEBLOB, in_buf, 3084, &req), 0);
	cr_assert_eq(req.n, 3084);
	cr_assert_eq(req.u.setstate.flags, PTM_STATE_FLAG_ENCRYPTED);
	cr_assert_eq(req.u.setstate.type, PTM_BLOB_TYPE_SAVESTATE);
	cr_assert_eq(req.u.setstate.length, 5);
	cr_assert_eq(req.u.setstate.datalen, 5);
	cr_assert_eq(req.u.setstate.data, in_buf + 12);
	put32(in_buf + 8, 3072);
	cr_assert_eq(ctrl_ioctl_decode(PTM_SET_STATEBLOB, in_buf, 3084, &req), 0);
	cr_assert_eq(req.u.setstate.datalen, 3072);
	/* longer than the data field: clamped */
	put32(in_buf + 8, 3073);
	cr_assert_eq(ctrl_ioctl_decode(PTM_SET_STATEBLOB, in_buf, 3084, &req), 0);
	cr_assert_eq(req.u.setstate.length, 3073);
	cr_assert_eq(req.u.setstate.datalen, 3072);
	put32(in_buf + 8, 0x80000000u);
	cr_assert_eq(ctrl_ioctl_decode(PTM_SET_STATEBLOB, in_buf, 3084, &req), 0);
	cr_assert_eq(req.u.setstate.datalen, 3072);
}

Test(ioctl_codec, decode_buffersize_info_lockstorage)
{
	struct ctrl_req req;

	memset(in_buf, 0, sizeof(in_buf));
	put32(in_buf, 3000);
	cr_assert_eq(ctrl_ioctl_decode(PTM_SET_BUFFERSIZE, in_buf, 16, &req), 0);
	cr_assert_eq(req.u.buffersize, 3000);
	cr_assert_eq(req.n, 16);

	put64(in_buf, 0x100000003ull);
	put32(in_buf + 8, 77);
	put32(in_buf + 12, 0xdeadbeef); /* pad */
	cr_assert_eq(ctrl_ioctl_decode(PTM_GET_INFO, in_buf, 3088, &req), 0);
	cr_assert_eq(req.u.getinfo.flags, 0x100000003ull, "u64 flags, both halves");
	cr_assert_eq(req.u.getinfo.offset, 77);
	cr_assert_eq(req.n, 3088, "the dispatcher wants n >= 16");

	put32(in_buf, 300);
	cr_assert_eq(ctrl_ioctl_decode(PTM_LOCK_STORAGE, in_buf, 4, &req), 0);
	cr_assert_eq(req.u.retries, 300);
	cr_assert_eq(req.code, CMD_LOCK_STORAGE);
}

Test(ioctl_codec, decode_needs_no_alignment)
{
	struct ctrl_req req;
	uint8_t *p = in_buf + 1; /* odd address */

	memset(in_buf, 0, sizeof(in_buf));
	put64(p, 0x0102030405060708ull);
	put32(p + 8, 9);
	cr_assert_eq(ctrl_ioctl_decode(PTM_GET_INFO, p, 3088, &req), 0);
	cr_assert_eq(req.u.getinfo.flags, 0x0102030405060708ull);
	cr_assert_eq(req.u.getinfo.offset, 9);
	put32(p, 1);
	put32(p + 4, 2);
	put32(p + 8, 3);
	cr_assert_eq(ctrl_ioctl_decode(PTM_GET_STATEBLOB, p, 3088, &req), 0);
	cr_assert_eq(req.u.getstate.flags, 1);
	cr_assert_eq(req.u.getstate.type, 2);
	cr_assert_eq(req.u.getstate.offset, 3);
	put32(p + 8, 2);
	cr_assert_eq(ctrl_ioctl_decode(PTM_SET_STATEBLOB, p, 3084, &req), 0);
	cr_assert_eq(req.u.setstate.length, 2);
	cr_assert_eq(req.u.setstate.data, p + 12);
}

/* ------------------------------------------------------------ malformed input */

Test(ioctl_codec, decode_unknown_numbers)
{
	static const unsigned int bad[] = {
		PTM_SET_DATAFD,
		0,
		0xffffffffu,
		_IOWR('P', 19, struct ptm_ioc_lockstorage),
		_IOW('P', 1, struct ptm_ioc_init),	/* INIT with the wrong direction */
		_IOWR('P', 1, uint64_t),		/* INIT with the wrong size */
		_IOR('Q', 0, ptm_ioc_cap),		/* another magic */
		_IOR('P', 0, uint32_t),			/* capability of 4 bytes */
		_IO('P', 2),				/* SHUTDOWN without a size */
		(unsigned int)PTM_GET_STATEBLOB ^ 0x00010000u, /* size off by one bit */
	};
	struct ctrl_req req;
	size_t i;

	memset(in_buf, 0, sizeof(in_buf));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&req, 0x5a, sizeof(req));
		cr_assert_eq(ctrl_ioctl_decode(bad[i], in_buf, 4200, &req), -EINVAL, "0x%08x",
			     bad[i]);
		cr_assert_eq(req.fd, -1, "req is reset even on error");
		cr_assert_eq(req.n, 0);
	}
}

Test(ioctl_codec, set_datafd_is_not_a_cuse_ioctl)
{
	struct ctrl_req req;
	struct ctrl_rsp rsp = { 0 };
	size_t outlen = 99;

	cr_assert_eq(ctrl_ioctl_decode(PTM_SET_DATAFD, NULL, 0, &req), -EINVAL);
	cr_assert_eq(ctrl_ioctl_decode(PTM_SET_DATAFD, in_buf, 4, &req), -EINVAL);
	cr_assert_eq(ctrl_ioctl_encode(PTM_SET_DATAFD, &rsp, out_buf, sizeof(out_buf), &outlen),
		     -EINVAL);
	cr_assert_eq(outlen, 99, "nothing written");
}

Test(ioctl_codec, decode_short_input)
{
	struct ctrl_req req;
	size_t i;

	memset(in_buf, 0, sizeof(in_buf));
	for (i = 0; i < NIOCTLS; i++) {
		if (!ioctls[i].in)
			continue;
		cr_assert_eq(ctrl_ioctl_decode(ioctls[i].cmd, in_buf, ioctls[i].size - 1, &req),
			     -EMSGSIZE, "0x%08x", ioctls[i].cmd);
		cr_assert_eq(ctrl_ioctl_decode(ioctls[i].cmd, in_buf, 0, &req), -EMSGSIZE);
	}
	/* the request part of GET_STATEBLOB is only 12 bytes, but the kernel
	 * copies the whole union in: anything less is not a real ioctl */
	cr_assert_eq(ctrl_ioctl_decode(PTM_GET_STATEBLOB, in_buf, 12, &req), -EMSGSIZE);
	cr_assert_eq(ctrl_ioctl_decode(PTM_SET_STATEBLOB, in_buf, 12 + 5, &req), -EMSGSIZE);
}

/* ------------------------------------------------------------ encoding */

static size_t enc(unsigned int cmd, const struct ctrl_rsp *rsp)
{
	size_t outlen = 0;

	memset(out_buf, 0xaa, sizeof(out_buf));
	cr_assert_eq(ctrl_ioctl_encode(cmd, rsp, out_buf, sizeof(out_buf), &outlen), 0,
		     "0x%08x", cmd);
	cr_assert_eq(outlen, ctrl_ioctl_size(cmd));
	/* nothing beyond the structure is touched */
	cr_assert_eq(out_buf[outlen], 0xaa);
	cr_assert_eq(out_buf[sizeof(out_buf) - 1], 0xaa);
	return outlen;
}

static void assert_zero(size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++)
		cr_assert_eq(out_buf[i], 0, "byte %zu is 0x%02x", i, out_buf[i]);
}

Test(ioctl_codec, capability_is_a_bare_u64)
{
	struct ctrl_rsp rsp = { .result = 0x12345678u, .full = true,
				.u.caps = 0x1234567890abcdefull };

	cr_assert_eq(enc(PTM_GET_CAPABILITY, &rsp), 8);
	cr_assert_eq(get64(out_buf), 0x1234567890abcdefull, "no result field in front");
	rsp.full = false;
	rsp.u.caps = 0x6fff;
	enc(PTM_GET_CAPABILITY, &rsp);
	cr_assert_eq(get64(out_buf), 0x6fff);
}

Test(ioctl_codec, result_only_replies)
{
	static const unsigned int cmds[] = { PTM_INIT,	     PTM_SHUTDOWN,	 PTM_SET_LOCALITY,
					     PTM_HASH_START, PTM_HASH_DATA,	 PTM_HASH_END,
					     PTM_CANCEL_TPM_CMD, PTM_STORE_VOLATILE,
					     PTM_RESET_TPMESTABLISHED, PTM_SET_STATEBLOB,
					     PTM_STOP,	     PTM_LOCK_STORAGE };
	struct ctrl_rsp rsp = { .result = 0x3d, .full = false };
	size_t i, len;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		len = enc(cmds[i], &rsp);
		cr_assert_eq(get32(out_buf), 0x3d, "0x%08x", cmds[i]);
		/* the reply is the whole union, zero after the result (HASH_DATA:
		 * 4100 bytes, SET_STATEBLOB: 3084) */
		assert_zero(4, len);
	}
	/* "full" changes nothing for commands without more fields */
	rsp.full = true;
	rsp.result = 0;
	len = enc(PTM_STOP, &rsp);
	cr_assert_eq(len, 4);
	cr_assert_eq(get32(out_buf), 0);
}

Test(ioctl_codec, established_bit_at_offset_4)
{
	struct ctrl_rsp rsp = { .result = 0, .full = true, .u.est_bit = 1 };

	cr_assert_eq(enc(PTM_GET_TPMESTABLISHED, &rsp), 8);
	cr_assert_eq(get32(out_buf), 0);
	cr_assert_eq(out_buf[4], 1);
	assert_zero(5, 8); /* padding */
	/* an error reply carries only the result */
	rsp.full = false;
	rsp.result = CTRL_RES_BAD_ORDINAL;
	enc(PTM_GET_TPMESTABLISHED, &rsp);
	cr_assert_eq(get32(out_buf), CTRL_RES_BAD_ORDINAL);
	assert_zero(4, 8);
}

Test(ioctl_codec, config_flags_at_offset_4)
{
	struct ctrl_rsp rsp = { .full = true, .u.config_flags = 3 };

	cr_assert_eq(enc(PTM_GET_CONFIG, &rsp), 8);
	cr_assert_eq(get32(out_buf), 0);
	cr_assert_eq(get32(out_buf + 4), 3);
}

Test(ioctl_codec, buffersize_reply_fields)
{
	struct ctrl_rsp rsp = { .full = true, .u.bufsize = { 4096, 2808, 4096 } };

	cr_assert_eq(enc(PTM_SET_BUFFERSIZE, &rsp), 16);
	cr_assert_eq(get32(out_buf), 0);
	cr_assert_eq(get32(out_buf + 4), 4096);
	cr_assert_eq(get32(out_buf + 8), 2808);
	cr_assert_eq(get32(out_buf + 12), 4096);
	rsp.full = false;
	rsp.result = CTRL_RES_BAD_ORDINAL;
	enc(PTM_SET_BUFFERSIZE, &rsp);
	cr_assert_eq(get32(out_buf), CTRL_RES_BAD_ORDINAL);
	assert_zero(4, 16);
}

Test(ioctl_codec, getstate_data_at_offset_16)
{
	static uint8_t blob[PTM_STATE_BLOB_SIZE + 1];
	struct ctrl_rsp rsp = { .full = true };
	size_t i;

	for (i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 31 + 7);
	rsp.u.blob.flags = PTM_STATE_FLAG_ENCRYPTED;
	rsp.u.blob.totlength = 9000;
	rsp.u.blob.length = 100;
	rsp.payload = blob;
	rsp.payload_len = 100;
	cr_assert_eq(enc(PTM_GET_STATEBLOB, &rsp), 3088);
	cr_assert_eq(get32(out_buf), 0);
	cr_assert_eq(get32(out_buf + 4), PTM_STATE_FLAG_ENCRYPTED);
	cr_assert_eq(get32(out_buf + 8), 9000);
	cr_assert_eq(get32(out_buf + 12), 100);
	cr_assert_arr_eq(out_buf + 16, blob, 100);
	assert_zero(16 + 100, 3088);

	/* a full data field */
	rsp.payload_len = PTM_STATE_BLOB_SIZE;
	rsp.u.blob.length = PTM_STATE_BLOB_SIZE;
	enc(PTM_GET_STATEBLOB, &rsp);
	cr_assert_arr_eq(out_buf + 16, blob, PTM_STATE_BLOB_SIZE);

	/* no payload (TPM_RETRY: no such state) */
	rsp.result = CTRL_RES_RETRY;
	rsp.payload = NULL;
	rsp.payload_len = 0;
	rsp.u.blob.totlength = 0;
	rsp.u.blob.length = 0;
	rsp.u.blob.flags = 0;
	enc(PTM_GET_STATEBLOB, &rsp);
	cr_assert_eq(get32(out_buf), CTRL_RES_RETRY);
	assert_zero(4, 3088);
}

Test(ioctl_codec, getinfo_buffer_at_offset_12)
{
	static const char info[] = "{\"TPMSpecification\":{\"family\":\"2.0\"}}";
	struct ctrl_rsp rsp = { .full = true };

	rsp.u.info.totlength = sizeof(info);
	rsp.u.info.length = sizeof(info);
	rsp.payload = (uint8_t *)info;
	rsp.payload_len = sizeof(info);
	cr_assert_eq(enc(PTM_GET_INFO, &rsp), 3088);
	cr_assert_eq(get32(out_buf), 0);
	cr_assert_eq(get32(out_buf + 4), sizeof(info));
	cr_assert_eq(get32(out_buf + 8), sizeof(info));
	cr_assert_str_eq((const char *)out_buf + 12, info);
	assert_zero(12 + sizeof(info), 3088);
}

Test(ioctl_codec, payload_larger_than_the_reply_field)
{
	static uint8_t big[PTM_STATE_BLOB_SIZE + 1];
	struct ctrl_rsp rsp = { .full = true, .payload = big };
	size_t outlen;

	rsp.payload_len = PTM_STATE_BLOB_SIZE + 1;
	cr_assert_eq(ctrl_ioctl_encode(PTM_GET_STATEBLOB, &rsp, out_buf, sizeof(out_buf), &outlen),
		     -EMSGSIZE);
	cr_assert_eq(ctrl_ioctl_encode(PTM_GET_INFO, &rsp, out_buf, sizeof(out_buf), &outlen),
		     -EMSGSIZE);
	/* commands without a data field have no room at all */
	rsp.payload_len = 1;
	cr_assert_eq(ctrl_ioctl_encode(PTM_GET_CONFIG, &rsp, out_buf, sizeof(out_buf), &outlen),
		     -EMSGSIZE);
	cr_assert_eq(ctrl_ioctl_encode(PTM_SET_BUFFERSIZE, &rsp, out_buf, sizeof(out_buf),
				       &outlen),
		     -EMSGSIZE);
	cr_assert_eq(ctrl_ioctl_encode(PTM_GET_TPMESTABLISHED, &rsp, out_buf, sizeof(out_buf),
				       &outlen),
		     -EMSGSIZE);
}

Test(ioctl_codec, output_buffer_too_small)
{
	struct ctrl_rsp rsp = { .full = true, .u.caps = 1 };
	size_t i, outlen;

	for (i = 0; i < NIOCTLS; i++) {
		memset(out_buf, 0xaa, sizeof(out_buf));
		outlen = 12345;
		cr_assert_eq(ctrl_ioctl_encode(ioctls[i].cmd, &rsp, out_buf, ioctls[i].size - 1,
					       &outlen),
			     -ENOSPC, "0x%08x", ioctls[i].cmd);
		cr_assert_eq(out_buf[0], 0xaa, "nothing written");
		cr_assert_eq(outlen, 12345);
		/* exactly the structure size is enough */
		cr_assert_eq(ctrl_ioctl_encode(ioctls[i].cmd, &rsp, out_buf, ioctls[i].size,
					       &outlen),
			     0, "0x%08x", ioctls[i].cmd);
		cr_assert_eq(outlen, ioctls[i].size);
	}
}

Test(ioctl_codec, encode_unknown_numbers)
{
	struct ctrl_rsp rsp = { 0 };
	size_t outlen = 7;

	cr_assert_eq(ctrl_ioctl_encode(0, &rsp, out_buf, sizeof(out_buf), &outlen), -EINVAL);
	cr_assert_eq(ctrl_ioctl_encode(_IOWR('P', 1, uint64_t), &rsp, out_buf, sizeof(out_buf),
				       &outlen),
		     -EINVAL);
	cr_assert_eq(outlen, 7);
}

Test(ioctl_codec, padding_never_leaks)
{
	struct ctrl_rsp rsp;
	size_t i, len;

	/* whatever is in the buffer before, only the encoded fields and zeros
	 * come out */
	memset(&rsp, 0, sizeof(rsp));
	for (i = 0; i < NIOCTLS; i++) {
		len = enc(ioctls[i].cmd, &rsp);
		assert_zero(0, len);
	}
}

/* ------------------------------------------------------------ round trips */

Test(ioctl_codec, decode_reads_what_the_structs_say)
{
	struct ptm_ioc_getstate gs;
	struct ptm_ioc_setstate ss;
	struct ptm_ioc_hdata hd;
	struct ptm_ioc_getinfo gi;
	struct ctrl_req req;

	memset(&gs, 0, sizeof(gs));
	gs.u.req.state_flags = 1;
	gs.u.req.type = 3;
	gs.u.req.offset = 3072;
	cr_assert_eq(ctrl_ioctl_decode(PTM_GET_STATEBLOB, &gs, sizeof(gs), &req), 0);
	cr_assert_eq(req.u.getstate.flags, 1);
	cr_assert_eq(req.u.getstate.type, 3);
	cr_assert_eq(req.u.getstate.offset, 3072);

	memset(&ss, 0, sizeof(ss));
	ss.u.req.type = 2;
	ss.u.req.length = 4;
	memcpy(ss.u.req.data, "wxyz", 4);
	cr_assert_eq(ctrl_ioctl_decode(PTM_SET_STATEBLOB, &ss, sizeof(ss), &req), 0);
	cr_assert_eq(req.u.setstate.type, 2);
	cr_assert_eq(memcmp(req.u.setstate.data, "wxyz", 4), 0);

	memset(&hd, 0, sizeof(hd));
	hd.u.req.length = 2;
	memcpy(hd.u.req.data, "hi", 2);
	cr_assert_eq(ctrl_ioctl_decode(PTM_HASH_DATA, &hd, sizeof(hd), &req), 0);
	cr_assert_eq(memcmp(req.u.hash.data, "hi", 2), 0);

	memset(&gi, 0, sizeof(gi));
	gi.u.req.flags = SWTPM_INFO_TPMSPECIFICATION | SWTPM_INFO_TPMATTRIBUTES;
	gi.u.req.offset = 5;
	cr_assert_eq(ctrl_ioctl_decode(PTM_GET_INFO, &gi, sizeof(gi), &req), 0);
	cr_assert_eq(req.u.getinfo.flags, 3);
	cr_assert_eq(req.u.getinfo.offset, 5);
}

Test(ioctl_codec, encode_fills_what_the_structs_say)
{
	struct ctrl_rsp rsp = { .full = true };
	struct ptm_ioc_getstate gs;
	struct ptm_ioc_getinfo gi;
	struct ptm_ioc_est est;
	struct ptm_ioc_setbuffersize sb;
	size_t outlen;

	rsp.u.blob.flags = 2;
	rsp.u.blob.totlength = 10;
	rsp.u.blob.length = 3;
	rsp.payload = (uint8_t *)"xyz";
	rsp.payload_len = 3;
	cr_assert_eq(ctrl_ioctl_encode(PTM_GET_STATEBLOB, &rsp, &gs, sizeof(gs), &outlen), 0);
	cr_assert_eq(gs.u.resp.tpm_result, 0);
	cr_assert_eq(gs.u.resp.state_flags, 2);
	cr_assert_eq(gs.u.resp.totlength, 10);
	cr_assert_eq(gs.u.resp.length, 3);
	cr_assert_eq(memcmp(gs.u.resp.data, "xyz", 3), 0);

	rsp.u.info.totlength = 3;
	rsp.u.info.length = 3;
	rsp.payload = (uint8_t *)"{}";
	rsp.payload_len = 3;
	cr_assert_eq(ctrl_ioctl_encode(PTM_GET_INFO, &rsp, &gi, sizeof(gi), &outlen), 0);
	cr_assert_eq(gi.u.resp.totlength, 3);
	cr_assert_eq(gi.u.resp.length, 3);
	cr_assert_str_eq(gi.u.resp.buffer, "{}");

	rsp.payload = NULL;
	rsp.payload_len = 0;
	rsp.u.est_bit = 1;
	cr_assert_eq(ctrl_ioctl_encode(PTM_GET_TPMESTABLISHED, &rsp, &est, sizeof(est), &outlen),
		     0);
	cr_assert_eq(est.u.resp.bit, 1);

	rsp.u.bufsize.size = 3000;
	rsp.u.bufsize.min = 2808;
	rsp.u.bufsize.max = 4096;
	cr_assert_eq(ctrl_ioctl_encode(PTM_SET_BUFFERSIZE, &rsp, &sb, sizeof(sb), &outlen), 0);
	cr_assert_eq(sb.u.resp.buffersize, 3000);
	cr_assert_eq(sb.u.resp.minsize, 2808);
	cr_assert_eq(sb.u.resp.maxsize, 4096);
}
