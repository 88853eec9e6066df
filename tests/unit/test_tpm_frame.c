/* Unit tests of data-channel framing: header-size framing, the TCG prefix, split
 * and coalesced commands, oversize and malformed headers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "io/tpm_frame.h"

static const uint8_t getrandom8[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 8 };

Test(tpm_frame, complete_raw_command)
{
	struct tpm_frame f;

	cr_assert_eq(tpm_frame_parse(getrandom8, sizeof(getrandom8), true, &f), 0);
	cr_assert_eq(f.len, 12);
	cr_assert_eq(f.cmd_off, 0);
	cr_assert_eq(f.cmd_len, 12);
	cr_assert_not(f.prefixed);
}

Test(tpm_frame, every_truncation_needs_more)
{
	struct tpm_frame f;
	size_t i;

	for (i = 0; i < sizeof(getrandom8); i++)
		cr_assert_eq(tpm_frame_parse(getrandom8, i, true, &f), -EAGAIN, "len %zu", i);
}

Test(tpm_frame, two_commands_in_one_buffer)
{
	uint8_t buf[24];
	struct tpm_frame f;

	memcpy(buf, getrandom8, 12);
	memcpy(buf + 12, getrandom8, 12);
	cr_assert_eq(tpm_frame_parse(buf, sizeof(buf), true, &f), 0);
	cr_assert_eq(f.len, 12, "only the first command is framed");
	cr_assert_eq(tpm_frame_parse(buf + f.len, sizeof(buf) - f.len, true, &f), 0);
	cr_assert_eq(f.len, 12);
}

Test(tpm_frame, size_below_header_frames_header_only)
{
	uint8_t cmd[10] = { 0x80, 0x01, 0, 0, 0, 0x02, 0, 0, 0x01, 0x7b };
	struct tpm_frame f;

	cr_assert_eq(tpm_frame_parse(cmd, sizeof(cmd), true, &f), 0);
	cr_assert_eq(f.len, 10);
}

Test(tpm_frame, oversize_declared_size)
{
	uint8_t cmd[10] = { 0x80, 0x01, 0, 0, 0x10, 0x01, 0, 0, 0x01, 0x7b };
	uint8_t huge[10] = { 0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, 0x7b };
	struct tpm_frame f;

	cr_assert_eq(tpm_frame_parse(cmd, sizeof(cmd), true, &f), -EMSGSIZE);
	cr_assert_eq(tpm_frame_parse(huge, sizeof(huge), true, &f), -EMSGSIZE);
}

Test(tpm_frame, max_size_is_accepted)
{
	static uint8_t cmd[TPM_FRAME_MAX_CMD];
	struct tpm_frame f;

	cmd[0] = 0x80;
	cmd[1] = 0x01;
	cmd[4] = 0x10; /* 4096 */
	cr_assert_eq(tpm_frame_parse(cmd, sizeof(cmd), true, &f), 0);
	cr_assert_eq(f.len, TPM_FRAME_MAX_CMD);
	cr_assert_eq(tpm_frame_parse(cmd, sizeof(cmd) - 1, true, &f), -EAGAIN);
}

Test(tpm_frame, tcg_prefix_detected_on_tpm2)
{
	uint8_t buf[9 + 12] = { 0, 0, 0, 8, 3, 0, 0, 0, 12 };
	struct tpm_frame f;

	memcpy(buf + 9, getrandom8, 12);
	cr_assert_eq(tpm_frame_parse(buf, sizeof(buf), true, &f), 0);
	cr_assert(f.prefixed);
	cr_assert_eq(f.locality, 3);
	cr_assert_eq(f.cmd_off, 9);
	cr_assert_eq(f.cmd_len, 12);
	cr_assert_eq(f.len, 21);
	cr_assert_eq(tpm_frame_parse(buf, 8, true, &f), -EAGAIN);
	cr_assert_eq(tpm_frame_parse(buf, 20, true, &f), -EAGAIN);
}

Test(tpm_frame, tcg_prefix_not_on_tpm12)
{
	uint8_t buf[12] = { 0, 0, 0, 8, 0, 0, 0, 0, 3, 0x80, 0x01, 0 };
	struct tpm_frame f;

	/* TPM 1.2: raw; the size field (bytes 2..5 = 0x00080000) is oversize */
	cr_assert_eq(tpm_frame_parse(buf, sizeof(buf), false, &f), -EMSGSIZE);
}

Test(tpm_frame, short_prefixed_command)
{
	uint8_t buf[12] = { 0, 0, 0, 8, 0, 0, 0, 0, 3, 0x80, 0x01, 0 };
	struct tpm_frame f;

	cr_assert_eq(tpm_frame_parse(buf, sizeof(buf), true, &f), 0);
	cr_assert(f.prefixed);
	cr_assert_eq(f.cmd_len, 3);
	cr_assert_eq(f.len, 12);
}

Test(tpm_frame, prefix_other_command_is_raw)
{
	uint8_t buf[10] = { 0, 0, 0, 9, 0, 0, 0, 0, 0x0c, 0x80 };
	struct tpm_frame f;

	/* command 9 is not TPM_SEND_COMMAND: treated as a raw header whose size
	 * field (0x00090000) cannot be framed */
	cr_assert_eq(tpm_frame_parse(buf, sizeof(buf), true, &f), -EMSGSIZE);
}

Test(tpm_frame, tpm2_tag_wins_over_prefix)
{
	struct tpm_frame f;

	cr_assert_eq(tpm_frame_parse(getrandom8, sizeof(getrandom8), true, &f), 0);
	cr_assert_not(f.prefixed);
}

Test(tpm_frame, oversize_prefixed)
{
	uint8_t buf[9] = { 0, 0, 0, 8, 0, 0, 0, 0x10, 0x01 };
	struct tpm_frame f;

	cr_assert_eq(tpm_frame_parse(buf, sizeof(buf), true, &f), -EMSGSIZE);
}

Test(tpm_frame, wrap_reply)
{
	uint8_t rsp[10] = { 0x80, 0x01, 0, 0, 0, 0x0a, 0, 0, 0x01, 0x00 };
	uint8_t out[18];
	uint8_t want[18] = { 0, 0, 0, 10, 0x80, 0x01, 0, 0, 0, 0x0a, 0, 0, 0x01, 0x00, 0, 0, 0, 0 };

	memset(out, 0xee, sizeof(out));
	tpm_frame_wrap(out, rsp, sizeof(rsp));
	cr_assert_arr_eq(out, want, sizeof(want));
}
