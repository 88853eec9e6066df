/* Unit tests for the vtpmd state file (src/manager/statefile.c): round trips,
 * and every way a file carried between hosts can be wrong (truncated, wrong
 * magic or version, bad checksum, oversized lengths, wrong TPM version), plus
 * the atomic 0600 write and the bounded read. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager/statefile.h"
#include "vtpm/ctrl_proto.h"

static const uint8_t perm[] = "permanent-state-bytes";
static const uint8_t vol[] = "volatile";

static void sample(struct sf_state *s)
{
	memset(s, 0, sizeof(*s));
	s->tpm2 = true;
	s->created = 1764230000;
	snprintf(s->source_id, sizeof(s->source_id), "vm-1");
	s->blobs[0] = (struct sf_blob){ PTM_BLOB_TYPE_PERMANENT, 0, perm, sizeof(perm) };
	s->blobs[1] = (struct sf_blob){ PTM_BLOB_TYPE_VOLATILE, PTM_STATE_FLAG_ENCRYPTED, vol,
					sizeof(vol) };
	s->blobs[2] = (struct sf_blob){ PTM_BLOB_TYPE_SAVESTATE, 0, NULL, 0 };
}

static uint8_t *encode_sample(size_t *len)
{
	struct sf_state s;
	uint8_t *buf;

	sample(&s);
	cr_assert_eq(sf_encode(&s, &buf, len), 0);
	return buf;
}

/* decode must fail with a message containing `needle` */
static void expect_bad(const uint8_t *buf, size_t len, int want_tpm, const char *needle)
{
	struct sf_state s;
	char why[256] = "";

	cr_assert_eq(sf_decode(buf, len, want_tpm, &s, why, sizeof(why)), -EINVAL,
		     "accepted (expected '%s')", needle);
	cr_assert(strstr(why, needle), "why '%s' lacks '%s'", why, needle);
}

/* buf with `from` replaced by `to` (first occurrence, in the header line) */
static uint8_t *patch(const uint8_t *buf, size_t len, const char *from, const char *to,
		      size_t *outlen)
{
	const uint8_t *nl = memchr(buf, '\n', len), *at;
	size_t fl = strlen(from), tl = strlen(to), pre;
	uint8_t *out;

	cr_assert_not_null(nl);
	at = memmem(buf, (size_t)(nl - buf), from, fl);
	cr_assert_not_null(at, "'%s' not in the header", from);
	pre = (size_t)(at - buf);
	out = malloc(len - fl + tl);
	cr_assert_not_null(out);
	memcpy(out, buf, pre);
	memcpy(out + pre, to, tl);
	memcpy(out + pre + tl, at + fl, len - pre - fl);
	*outlen = len - fl + tl;
	return out;
}

Test(mgr_statefile, round_trip)
{
	struct sf_state s;
	size_t len;
	uint8_t *buf = encode_sample(&len);
	char why[256];

	cr_assert_eq(memcmp(buf, SF_MAGIC, strlen(SF_MAGIC)), 0);
	cr_assert_eq(sf_decode(buf, len, 1, &s, why, sizeof(why)), 0, "%s", why);
	cr_expect(s.tpm2);
	cr_expect_eq(s.created, 1764230000);
	cr_expect_str_eq(s.source_id, "vm-1");
	cr_assert_eq(s.blobs[0].len, sizeof(perm));
	cr_expect_eq(memcmp(s.blobs[0].data, perm, sizeof(perm)), 0);
	cr_expect_eq(s.blobs[1].flags, PTM_STATE_FLAG_ENCRYPTED);
	cr_expect_eq(memcmp(s.blobs[1].data, vol, sizeof(vol)), 0);
	cr_expect_eq(s.blobs[2].len, 0);
	cr_expect_null(s.blobs[2].data);
	/* -1: any TPM version */
	cr_expect_eq(sf_decode(buf, len, -1, &s, why, sizeof(why)), 0);
	free(buf);
}

Test(mgr_statefile, truncated)
{
	size_t len;
	uint8_t *buf = encode_sample(&len);
	const uint8_t *nl = memchr(buf, '\n', len);

	expect_bad(buf, len - 1, 1, "truncated");
	expect_bad(buf, (size_t)(nl - buf) + 1, 1, "truncated");
	expect_bad(buf, (size_t)(nl - buf), 1, "truncated"); /* no newline yet */
	expect_bad(buf, 10, 1, "magic");
	expect_bad(buf, 0, 1, "magic");
	free(buf);
}

Test(mgr_statefile, trailing_garbage)
{
	size_t len;
	uint8_t *buf = encode_sample(&len), *big = malloc(len + 1);

	memcpy(big, buf, len);
	big[len] = 0;
	expect_bad(big, len + 1, 1, "trailing");
	free(big);
	free(buf);
}

Test(mgr_statefile, wrong_magic)
{
	size_t len;
	uint8_t *buf = encode_sample(&len);

	buf[2] = 'F';
	expect_bad(buf, len, 1, "magic");
	expect_bad((const uint8_t *)"hello\n", 6, 1, "magic");
	free(buf);
}

Test(mgr_statefile, wrong_version)
{
	size_t len, n;
	uint8_t *buf = encode_sample(&len), *p;

	p = patch(buf, len, "\"version\":1", "\"version\":2", &n);
	expect_bad(p, n, 1, "unsupported state file version 2");
	free(p);
	p = patch(buf, len, "\"version\":1", "\"version\":\"1\"", &n);
	expect_bad(p, n, 1, "version");
	free(p);
	p = patch(buf, len, "\"version\":1", "\"version\":-1", &n);
	expect_bad(p, n, 1, "version");
	free(p);
	free(buf);
}

Test(mgr_statefile, bad_checksum)
{
	size_t len, n;
	uint8_t *buf = encode_sample(&len), *p;

	buf[len - 1] ^= 1; /* last byte of the volatile blob */
	expect_bad(buf, len, 1, "checksum mismatch in the 'volatile' blob");
	buf[len - 1] ^= 1;
	p = patch(buf, len, "\"sha256\":\"", "\"sha256\":\"zz", &n);
	expect_bad(p, n, 1, "sha256");
	free(p);
	free(buf);
}

Test(mgr_statefile, oversized_lengths)
{
	char big[64];
	size_t len, n;
	uint8_t *buf = encode_sample(&len), *p;

	snprintf(big, sizeof(big), "\"length\":%u", SF_MAX_BLOB + 1);
	p = patch(buf, len, "\"length\":22", big, &n);
	expect_bad(p, n, 1, "more than the limit");
	free(p);
	p = patch(buf, len, "\"length\":22", "\"length\":18446744073709551615", &n);
	expect_bad(p, n, 1, "permanent");
	free(p);
	p = patch(buf, len, "\"length\":22", "\"length\":4000000", &n);
	expect_bad(p, n, 1, "truncated");
	free(p);
	p = patch(buf, len, "\"length\":22", "\"length\":-5", &n);
	expect_bad(p, n, 1, "length");
	free(p);
	free(buf);
}

Test(mgr_statefile, wrong_tpm_version)
{
	size_t len, n;
	uint8_t *buf = encode_sample(&len), *p;

	expect_bad(buf, len, 0, "TPM 2.0 state, the instance is a TPM 1.2");
	p = patch(buf, len, "\"tpm\":\"2.0\"", "\"tpm\":\"3.0\"", &n);
	expect_bad(p, n, -1, "tpm");
	free(p);
	free(buf);
}

Test(mgr_statefile, bad_header_fields)
{
	struct sf_state s;
	size_t len, n;
	uint8_t *buf = encode_sample(&len), *p;

	p = patch(buf, len, "\"type\":\"permanent\"", "\"type\":\"volatile\"", &n);
	expect_bad(p, n, 1, "must be of type 'permanent'");
	free(p);
	p = patch(buf, len, "\"flags\":0", "\"flags\":4", &n);
	expect_bad(p, n, 1, "flags");
	free(p);
	p = patch(buf, len, "\"blobs\":[", "\"blobs\":[{},", &n);
	expect_bad(p, n, 1, "3 entries");
	free(p);
	p = patch(buf, len, "\"created\"", "\"x\":1,\"created\"", &n);
	/* unknown members are ignored: later writers may add some */
	cr_expect_eq(sf_decode(p, n, 1, &s, NULL, 0), 0);
	free(p);
	/* the header must be exactly one JSON object */
	p = patch(buf, len, "\"source-id\"", "\"source-id\"\"", &n);
	expect_bad(p, n, 1, "not a valid JSON object");
	free(p);
	free(buf);
}

Test(mgr_statefile, header_too_long)
{
	size_t len = SF_MAX_HEADER + 100;
	uint8_t *buf = malloc(len);

	memset(buf, ' ', len);
	memcpy(buf, SF_MAGIC, strlen(SF_MAGIC));
	expect_bad(buf, len, 1, "longer than");
	free(buf);
}

Test(mgr_statefile, encode_refuses_bad_input)
{
	struct sf_state s;
	uint8_t *buf;
	size_t len;

	sample(&s);
	s.blobs[0].len = SF_MAX_BLOB + 1;
	cr_expect_eq(sf_encode(&s, &buf, &len), -EINVAL);
	sample(&s);
	s.blobs[1].type = PTM_BLOB_TYPE_SAVESTATE;
	cr_expect_eq(sf_encode(&s, &buf, &len), -EINVAL);
}

Test(mgr_statefile, write_and_read_file)
{
	char dir[] = "/tmp/test_mgr_sf.XXXXXX", path[128], cmd[160];
	struct sf_state s;
	struct stat st;
	uint8_t *buf = NULL, *back = NULL;
	size_t len, blen;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out.state", dir);
	buf = encode_sample(&len);
	cr_assert_eq(sf_write_file(path, buf, len), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	/* replacing an existing file (atomically) works too */
	cr_assert_eq(sf_write_file(path, buf, len), 0);
	cr_assert_eq(sf_read_file(path, &back, &blen), 0);
	cr_assert_eq(blen, len);
	cr_expect_eq(memcmp(back, buf, len), 0);
	cr_expect_eq(sf_decode(back, blen, 1, &s, NULL, 0), 0);
	free(back);
	back = NULL;
	cr_expect_eq(sf_read_file(dir, &back, &blen), -EINVAL, "a directory is refused");
	snprintf(path, sizeof(path), "%s/none/out.state", dir);
	cr_expect_eq(sf_write_file(path, buf, len), -ENOENT);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
	free(buf);
	free(back);
}

/* Found while writing tests/fuzz/fuzz_mgr_statefile.c: "source-id" took any
 * string up to 64 bytes, and import-state logs it and returns it to the
 * client, so a crafted file could put a newline (a forged log line) or other
 * control characters there. It must be an instance id (or empty). */
Test(mgr_statefile, source_id_must_be_an_instance_id)
{
	struct sf_state s;
	size_t len, n;
	uint8_t *buf = encode_sample(&len), *p;

	p = patch(buf, len, "\"source-id\":\"vm-1\"", "\"source-id\":\"vm-1\\nforged\"", &n);
	expect_bad(p, n, 1, "'source-id' is invalid");
	free(p);
	p = patch(buf, len, "\"source-id\":\"vm-1\"", "\"source-id\":\"../x\"", &n);
	expect_bad(p, n, 1, "'source-id' is invalid");
	free(p);
	p = patch(buf, len, "\"source-id\":\"vm-1\"", "\"source-id\":\"\"", &n);
	cr_expect_eq(sf_decode(p, n, 1, &s, NULL, 0), 0, "an empty source-id is no source-id");
	cr_expect_str_eq(s.source_id, "");
	free(p);
	free(buf);
}
