/* Unit tests of the CUSE device's behaviour below the FUSE glue (io/cuse_dev.c)
 * against real libtpms in a temporary state directory: open/read/write/ioctl
 * as the kernel hands them to `swtpm cuse` (data-channel.md §8, ctrl-channel.md
 * §6.2, §8). The ioctl helper mirrors io/cuse.c and the kernel's restricted
 * ioctls: _IOW structures are copied in whole, replies are the whole union. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "instance/config.h"
#include "instance/ctrl.h"
#include "instance/instance.h"
#include "io/cuse_dev.h"
#include "vtpm/ctrl_ioctl.h"

static struct vtpm_config cfg;
static struct instance inst;
static struct cuse_dev dev;
static char dir[] = "/tmp/vtpm-cuse-XXXXXX";
static char dir2[] = "/tmp/vtpm-cuse2-XXXXXX";
static bool have_dir2;

static void make_instance(const char *path)
{
	char uri[128];

	snprintf(uri, sizeof(uri), "dir://%s", path);
	free(cfg.state_uri);
	cfg.state_uri = strdup(uri);
	cr_assert_eq(instance_init(&inst, &cfg), 0);
	cuse_dev_init(&dev, &inst, &cfg);
	cr_assert_eq(cuse_dev_open(&dev), 0);
}

static void setup_version(bool tpm2)
{
	cr_assert_not_null(mkdtemp(dir));
	config_init(&cfg);
	cfg.tpm2 = tpm2;
	make_instance(dir);
}

static void setup2(void)
{
	setup_version(true);
}

static void setup12(void)
{
	setup_version(false);
}

static void rm_rf(const char *path)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", path);
	(void)system(cmd);
}

static void teardown(void)
{
	cuse_dev_fini(&dev);
	instance_fini(&inst);
	config_free(&cfg);
	rm_rf(dir);
	if (have_dir2)
		rm_rf(dir2);
}

/* Move the device to a fresh instance on a new, empty state directory. */
static void fresh_instance(void)
{
	cuse_dev_release(&dev);
	cuse_dev_fini(&dev);
	instance_fini(&inst);
	cr_assert_not_null(mkdtemp(dir2));
	have_dir2 = true;
	make_instance(dir2);
}

/* ------------------------------------------------------------ helpers */

/* One ioctl as the kernel delivers it: `u` is the caller's argument
 * structure, updated in place with the reply. Returns 0 or -errno. */
static int ioc(unsigned int cmd, void *u)
{
	_Alignas(8) uint8_t out[sizeof(struct ptm_ioc_hdata)];
	size_t size = _IOC_SIZE(cmd), outlen = 0;
	int r;

	memset(out, 0x5a, sizeof(out));
	r = cuse_dev_ioctl(&dev, cmd, u, (_IOC_DIR(cmd) & _IOC_WRITE) ? size : 0, out,
			   sizeof(out), &outlen);
	if (r == 0) {
		cr_assert_eq(outlen, size, "reply of 0x%08x: %zu bytes", cmd, outlen);
		memcpy(u, out, outlen);
	}
	return r;
}

/* The result word of an ioctl that must succeed as an ioctl. */
static uint32_t ioc_res(unsigned int cmd, void *u)
{
	uint32_t res;

	cr_assert_eq(ioc(cmd, u), 0, "ioctl 0x%08x", cmd);
	memcpy(&res, u, 4);
	return res;
}

/* A command without arguments (SHUTDOWN, STOP, HASH_START, ...). */
static uint32_t ioc0(unsigned int cmd)
{
	_Alignas(8) uint8_t u[8] = { 0 };

	return ioc_res(cmd, u);
}

static uint32_t init_flags(uint32_t flags)
{
	struct ptm_ioc_init in = { .u.req.init_flags = flags };

	return ioc_res(PTM_INIT, &in);
}

static void init_tpm(void)
{
	cr_assert_eq(init_flags(0), 0);
	cr_assert(inst.running);
}

static uint32_t loc_ioctl(unsigned int cmd, uint8_t loc)
{
	struct ptm_ioc_loc l;

	memset(&l, 0, sizeof(l));
	l.u.req.loc = loc;
	return ioc_res(cmd, &l);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read everything the device has (in reads of `chunk` bytes) into buf. */
static size_t read_all(uint8_t *buf, size_t cap, size_t chunk)
{
	const uint8_t *data;
	size_t got = 0;
	ssize_t n;

	for (;;) {
		n = cuse_dev_read(&dev, chunk, &data);
		cr_assert_geq(n, 0, "read: %zd", n);
		if (n == 0)
			break;
		cr_assert_leq(got + (size_t)n, cap);
		memcpy(buf + got, data, (size_t)n);
		got += (size_t)n;
	}
	return got;
}

/* One TPM command by write() and its response by read(); returns the
 * response code. */
static uint32_t tpm_cmd(const uint8_t *cmd, size_t len, uint8_t *rsp, size_t *rsplen)
{
	static uint8_t tmp[4096];
	size_t got;

	if (!rsp)
		rsp = tmp;
	cr_assert_eq(cuse_dev_write(&dev, cmd, len), (ssize_t)len);
	got = read_all(rsp, 4096, 4096);
	cr_assert_geq(got, 10);
	cr_assert_eq(be32(rsp + 2), got, "the size field matches what was read");
	if (rsplen)
		*rsplen = got;
	return be32(rsp + 6);
}

#define TPM_CMD(c) tpm_cmd(c, sizeof(c), NULL, NULL)

static const uint8_t tpm2_startup_clear[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0 };
static const uint8_t tpm2_getrandom16[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 16 };
static const uint8_t tpm2_fatal[] = { 0x80, 0x01, 0, 0, 0, 0x0a, 0, 0, 0x01, 0x01 };
/* TPM2_NV_DefineSpace(owner, index 0x01500001, SHA256, OWNERWRITE|OWNERREAD, 8 bytes) */
static const uint8_t tpm2_nv_define[] = {
	0x80, 0x02, 0x00, 0x00, 0x00, 0x2d, 0x00, 0x00, 0x01, 0x2a, 0x40, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x0e, 0x01, 0x50, 0x00, 0x01, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x02, 0x00,
	0x00, 0x00, 0x08,
};
static const uint8_t tpm2_nv_undefine[] = {
	0x80, 0x02, 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x01, 0x22, 0x40, 0x00, 0x00, 0x01, 0x01, 0x50,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t tpm2_nv_readpublic[] = { 0x80, 0x01, 0, 0, 0, 0x0e, 0, 0, 0x01, 0x69,
					      0x01, 0x50, 0x00, 0x01 };

static const uint8_t tpm12_startup_clear[] = { 0x00, 0xc1, 0, 0, 0, 0x0c, 0, 0, 0, 0x99, 0, 1 };
static const uint8_t tpm12_getrandom16[] = { 0x00, 0xc1, 0, 0, 0, 0x0e, 0, 0, 0, 0x46, 0, 0, 0, 16 };
static const uint8_t tpm12_fatal[] = { 0x00, 0xc4, 0, 0, 0, 0x0a, 0, 0, 0, 0x09 };

/* NV_DefineSpace of another index with another size. */
static uint32_t tpm2_define_index(uint32_t index, uint16_t size)
{
	uint8_t cmd[sizeof(tpm2_nv_define)];

	memcpy(cmd, tpm2_nv_define, sizeof(cmd));
	cmd[31] = (uint8_t)(index >> 24);
	cmd[32] = (uint8_t)(index >> 16);
	cmd[33] = (uint8_t)(index >> 8);
	cmd[34] = (uint8_t)index;
	cmd[43] = (uint8_t)(size >> 8);
	cmd[44] = (uint8_t)size;
	return TPM_CMD(cmd);
}

/* A running TPM 2 with the index 0x01500001 and a permanent state of more
 * than one 3072-byte piece (two 2 KiB indices). */
static void tpm2_start_and_define_nv(void)
{
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(TPM_CMD(tpm2_nv_define), 0, "NV_DefineSpace");
	cr_assert_eq(TPM_CMD(tpm2_nv_readpublic), 0, "the index exists");
	cr_assert_eq(tpm2_define_index(0x01500010, 2048), 0);
	cr_assert_eq(tpm2_define_index(0x01500011, 2048), 0);
}

static bool file_exists_in(const char *d, const char *name)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", d, name);
	return stat(p, &st) == 0;
}

static bool file_exists(const char *name)
{
	return file_exists_in(dir, name);
}

/* FNV-1a over the names and contents of the regular files in a directory. */
static uint64_t dir_digest(const char *d)
{
	uint64_t h = 1469598103934665603ull;
	struct dirent **ents;
	char p[300];
	int n, i, c;
	FILE *f;

	n = scandir(d, &ents, NULL, alphasort);
	cr_assert_geq(n, 0);
	for (i = 0; i < n; i++) {
		const char *s = ents[i]->d_name;

		if (s[0] == '.' && (!s[1] || (s[1] == '.' && !s[2]))) {
			free(ents[i]);
			continue;
		}
		for (; *s; s++)
			h = (h ^ (uint8_t)*s) * 1099511628211ull;
		snprintf(p, sizeof(p), "%s/%s", d, ents[i]->d_name);
		f = fopen(p, "rb");
		if (f) {
			while ((c = fgetc(f)) != EOF)
				h = (h ^ (uint8_t)c) * 1099511628211ull;
			fclose(f);
		}
		free(ents[i]);
	}
	free(ents);
	return h;
}

/* ------------------------------------------------------------ GET_STATEBLOB helpers */

static struct ptm_ioc_getstate gs;

static uint32_t get_blob_at(uint32_t type, uint32_t flags, uint32_t offset)
{
	memset(&gs, 0, sizeof(gs));
	gs.u.req.state_flags = flags;
	gs.u.req.type = type;
	gs.u.req.offset = offset;
	return ioc_res(PTM_GET_STATEBLOB, &gs);
}

/* The whole blob by ioctls with increasing offsets. */
static uint8_t *get_blob_by_ioctls(uint32_t type, size_t *len)
{
	uint8_t *blob = NULL;
	uint32_t off = 0, tot = 0;
	int rounds = 0;

	do {
		cr_assert_eq(get_blob_at(type, 0, off), 0, "GET_STATEBLOB at %u", off);
		if (!blob) {
			tot = gs.u.resp.totlength;
			blob = malloc(tot ? tot : 1);
			cr_assert_not_null(blob);
		}
		cr_assert_eq(gs.u.resp.totlength, tot, "totlength is the whole blob every time");
		cr_assert_eq(gs.u.resp.length,
			     tot - off < PTM_STATE_BLOB_SIZE ? tot - off : PTM_STATE_BLOB_SIZE);
		memcpy(blob + off, gs.u.resp.data, gs.u.resp.length);
		off += gs.u.resp.length;
		cr_assert_lt(++rounds, 100);
	} while (off < tot);
	cr_assert_eq(dev.tx, CUSE_TX_CMD, "the last piece ends the get-blob mode");
	*len = tot;
	return blob;
}

/* The whole blob the way the socket's dispatcher hands it out. */
static uint8_t *get_blob_by_dispatcher(uint32_t type, size_t *len)
{
	struct ctrl_req req = { .code = CMD_GET_STATEBLOB, .n = 12, .fd = -1 };
	struct ctrl_rsp rsp;

	req.u.getstate.type = type;
	ctrl_dispatch(&inst, &req, &rsp);
	cr_assert_eq(rsp.result, 0);
	*len = rsp.payload_len;
	return rsp.payload;
}

/* ------------------------------------------------------------ SET_STATEBLOB helpers */

static struct ptm_ioc_setstate ss;

static uint32_t set_piece(uint32_t type, const uint8_t *data, uint32_t len)
{
	memset(&ss, 0, sizeof(ss));
	ss.u.req.type = type;
	ss.u.req.length = len;
	if (data && len)
		memcpy(ss.u.req.data, data, len <= PTM_STATE_BLOB_SIZE ? len : PTM_STATE_BLOB_SIZE);
	return ioc_res(PTM_SET_STATEBLOB, &ss);
}

/* ============================================================ open / read / write */

TestSuite(cuse, .init = setup2, .fini = teardown);

Test(cuse, one_open_file_at_a_time)
{
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
	cr_assert_eq(cuse_dev_open(&dev), -EBUSY);
	cr_assert_eq(cuse_dev_open(&dev), -EBUSY);
	cuse_dev_release(&dev);
	cr_assert_eq(dev.tx, CUSE_TX_CLOSED);
	cr_assert_eq(cuse_dev_open(&dev), 0);
	cr_assert_eq(cuse_dev_open(&dev), -EBUSY);
}

Test(cuse, write_before_init_reads_the_fatal_response)
{
	uint8_t rsp[64];
	size_t len;

	cr_assert_eq(tpm_cmd(tpm2_getrandom16, sizeof(tpm2_getrandom16), rsp, &len), 0x101);
	cr_assert_eq(len, 10);
	cr_assert_arr_eq(rsp, tpm2_fatal, 10);
}

Test(cuse, read_with_nothing_pending_is_empty)
{
	const uint8_t *data;

	cr_assert_eq(cuse_dev_read(&dev, 4096, &data), 0);
}

Test(cuse, init_startup_getrandom_by_write_and_read)
{
	const uint8_t *data;
	uint8_t rsp[64];
	ssize_t n;

	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(cuse_dev_write(&dev, tpm2_getrandom16, sizeof(tpm2_getrandom16)), 12);
	/* the response in pieces: each read continues where the last stopped */
	n = cuse_dev_read(&dev, 5, &data);
	cr_assert_eq(n, 5);
	memcpy(rsp, data, 5);
	n = cuse_dev_read(&dev, 3, &data);
	cr_assert_eq(n, 3);
	memcpy(rsp + 5, data, 3);
	n = cuse_dev_read(&dev, 1000, &data);
	cr_assert_eq(n, 28 - 8, "the rest: %zd", n);
	memcpy(rsp + 8, data, (size_t)n);
	cr_assert_eq(be32(rsp + 2), 28);
	cr_assert_eq(be32(rsp + 6), 0);
	cr_assert_eq(rsp[10], 0);
	cr_assert_eq(rsp[11], 16, "TPM2B of 16 random bytes");
	/* exhausted: 0 bytes, again and again */
	cr_assert_eq(cuse_dev_read(&dev, 1000, &data), 0);
	cr_assert_eq(cuse_dev_read(&dev, 1, &data), 0);
	/* a new command resets the read offset */
	cr_assert_eq(cuse_dev_write(&dev, tpm2_getrandom16, sizeof(tpm2_getrandom16)), 12);
	cr_assert_eq(cuse_dev_read(&dev, 4096, &data), 28);
	cr_assert_neq(memcmp(data + 12, rsp + 12, 16), 0, "fresh random bytes");
}

Test(cuse, writes_over_4096_bytes_are_acknowledged_as_4096)
{
	static uint8_t big[6000];
	const uint8_t *data;
	ssize_t n;

	memcpy(big, tpm2_getrandom16, sizeof(tpm2_getrandom16));
	/* not running: the fatal response, still 4096 acknowledged */
	cr_assert_eq(cuse_dev_write(&dev, big, sizeof(big)), 4096);
	cr_assert_eq(cuse_dev_read(&dev, 4096, &data), 10);
	cr_assert_arr_eq(data, tpm2_fatal, 10);
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(cuse_dev_write(&dev, big, 4097), 4096);
	n = cuse_dev_read(&dev, 4096, &data);
	cr_assert_geq(n, 10, "some response: %zd", n);
	cr_assert_eq(be32(data + 2), n);
	cr_assert_eq(cuse_dev_write(&dev, big, 4096), 4096);
	cr_assert_eq(cuse_dev_write(&dev, big, 12), 12);
}

/* ============================================================ ctrl ioctls */

Test(cuse, capability_word)
{
	ptm_ioc_cap cap = 0;
	uint64_t want = PTM_CAP_INIT | PTM_CAP_SHUTDOWN | PTM_CAP_GET_TPMESTABLISHED |
			PTM_CAP_SET_LOCALITY | PTM_CAP_HASHING | PTM_CAP_CANCEL_TPM_CMD |
			PTM_CAP_STORE_VOLATILE | PTM_CAP_RESET_TPMESTABLISHED |
			PTM_CAP_GET_STATEBLOB | PTM_CAP_SET_STATEBLOB | PTM_CAP_STOP |
			PTM_CAP_GET_CONFIG | PTM_CAP_SET_BUFFERSIZE | PTM_CAP_GET_INFO |
			PTM_CAP_LOCK_STORAGE;

	cr_assert_eq(ioc(PTM_GET_CAPABILITY, &cap), 0);
	cr_assert_eq(cap, want, "0x%llx", (unsigned long long)cap);
	cr_assert_eq(cap, 0x16fffu);
	cr_assert_eq(cap & (PTM_CAP_SET_DATAFD | PTM_CAP_SEND_COMMAND_HEADER), 0);
	/* the same while running */
	init_tpm();
	cap = 0;
	cr_assert_eq(ioc(PTM_GET_CAPABILITY, &cap), 0);
	cr_assert_eq(cap, 0x16fffu);
}

Test(cuse, unknown_ioctls_and_set_datafd_are_einval)
{
	_Alignas(8) uint8_t u[sizeof(struct ptm_ioc_hdata)] = { 0 };

	cr_assert_eq(ioc(PTM_SET_DATAFD, u), -EINVAL);
	cr_assert_eq(ioc(_IOWR('P', 19, struct ptm_ioc_lockstorage), u), -EINVAL);
	cr_assert_eq(ioc(_IOR('T', 1, uint32_t), u), -EINVAL);
	cr_assert_eq(ioc(_IOWR('P', 1, uint64_t), u), -EINVAL);
	/* nothing changed */
	cr_assert_not(inst.running);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
}

Test(cuse, short_ioctl_argument_is_einval)
{
	_Alignas(8) uint8_t u[8] = { 0 };
	size_t outlen;
	_Alignas(8) uint8_t out[16];

	/* the kernel always copies the whole structure; anything else is not
	 * an ioctl of this device */
	cr_assert_eq(cuse_dev_ioctl(&dev, PTM_INIT, u, 3, out, sizeof(out), &outlen), -EINVAL);
	cr_assert_not(inst.running);
}

Test(cuse, not_running_commands_answer_bad_ordinal)
{
	static const unsigned int cmds[] = { PTM_GET_TPMESTABLISHED, PTM_HASH_START, PTM_HASH_END,
					     PTM_CANCEL_TPM_CMD, PTM_STORE_VOLATILE };
	struct ptm_ioc_hdata hd;
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		cr_assert_eq(ioc0(cmds[i]), CTRL_RES_BAD_ORDINAL, "0x%08x", cmds[i]);
	cr_assert_eq(loc_ioctl(PTM_RESET_TPMESTABLISHED, 3), CTRL_RES_BAD_ORDINAL);
	memset(&hd, 0, sizeof(hd));
	hd.u.req.length = 5000; /* the running check comes first */
	cr_assert_eq(ioc_res(PTM_HASH_DATA, &hd), CTRL_RES_BAD_ORDINAL);
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 0), CTRL_RES_BAD_ORDINAL);
	cr_assert_eq(gs.u.resp.length, 0);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
}

Test(cuse, established_bit_after_a_hash_sequence)
{
	struct ptm_ioc_est est;
	struct ptm_ioc_hdata hd;

	init_tpm();
	memset(&est, 0xff, sizeof(est));
	cr_assert_eq(ioc_res(PTM_GET_TPMESTABLISHED, &est), 0);
	cr_assert_eq(est.u.resp.bit, 0);
	cr_assert_eq(ioc0(PTM_HASH_START), 0);
	memset(&hd, 0, sizeof(hd));
	hd.u.req.length = 3;
	memcpy(hd.u.req.data, "abc", 3);
	cr_assert_eq(ioc_res(PTM_HASH_DATA, &hd), 0);
	/* a whole field of data is fine too */
	memset(&hd, 0, sizeof(hd));
	hd.u.req.length = PTM_HASH_DATA_SIZE;
	cr_assert_eq(ioc_res(PTM_HASH_DATA, &hd), 0);
	cr_assert_eq(ioc0(PTM_HASH_END), 0);
	memset(&est, 0, sizeof(est));
	cr_assert_eq(ioc_res(PTM_GET_TPMESTABLISHED, &est), 0);
	cr_assert_eq(est.u.resp.bit, 1);
	/* TPM 2: only localities 3 and 4 may reset it */
	cr_assert_eq(loc_ioctl(PTM_RESET_TPMESTABLISHED, 0), CTRL_RES_BAD_LOCALITY);
	cr_assert_eq(loc_ioctl(PTM_RESET_TPMESTABLISHED, 3), 0);
	cr_assert_eq(inst.locality, 0, "the locality switch is temporary");
	cr_assert_eq(ioc_res(PTM_GET_TPMESTABLISHED, &est), 0);
	cr_assert_eq(est.u.resp.bit, 0);
}

Test(cuse, hash_data_longer_than_the_field_fails)
{
	struct ptm_ioc_hdata hd;

	init_tpm();
	cr_assert_eq(ioc0(PTM_HASH_START), 0);
	memset(&hd, 0, sizeof(hd));
	hd.u.req.length = PTM_HASH_DATA_SIZE + 1;
	cr_assert_eq(ioc_res(PTM_HASH_DATA, &hd), CTRL_RES_FAIL);
	hd.u.req.length = 0xffffffffu;
	cr_assert_eq(ioc_res(PTM_HASH_DATA, &hd), CTRL_RES_FAIL);
}

Test(cuse, reset_established_beyond_locality_4_answers)
{
	init_tpm();
	/* swtpm sends no reply here (the caller hangs); we answer */
	cr_assert_eq(loc_ioctl(PTM_RESET_TPMESTABLISHED, 5), CTRL_RES_BAD_LOCALITY);
	cr_assert_eq(loc_ioctl(PTM_RESET_TPMESTABLISHED, 255), CTRL_RES_BAD_LOCALITY);
	cr_assert_eq(inst.locality, 0);
}

Test(cuse, reset_established_ignores_reject_locality4)
{
	/* swtpm cuse has no reject-locality-4 check here */
	cfg.reject_locality4 = true;
	init_tpm();
	cr_assert_eq(ioc0(PTM_HASH_START), 0);
	cr_assert_eq(ioc0(PTM_HASH_END), 0);
	cr_assert_eq(loc_ioctl(PTM_RESET_TPMESTABLISHED, 4), 0);
}

Test(cuse, set_locality_rules)
{
	cr_assert_eq(loc_ioctl(PTM_SET_LOCALITY, 5), CTRL_RES_BAD_LOCALITY);
	cr_assert_eq(inst.locality, 0);
	cr_assert_eq(loc_ioctl(PTM_SET_LOCALITY, 3), 0, "allowed before INIT");
	cr_assert_eq(inst.locality, 3);
	cr_assert_eq(loc_ioctl(PTM_SET_LOCALITY, 4), 0);
	cr_assert_eq(inst.locality, 4);
	cfg.reject_locality4 = true;
	cr_assert_eq(loc_ioctl(PTM_SET_LOCALITY, 0), 0);
	cr_assert_eq(loc_ioctl(PTM_SET_LOCALITY, 4), CTRL_RES_BAD_LOCALITY);
	cr_assert_eq(inst.locality, 0);
}

Test(cuse, store_volatile_writes_the_file)
{
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_not(file_exists("tpm2-00.volatilestate"));
	cr_assert_eq(ioc0(PTM_STORE_VOLATILE), 0);
	/* on disk when the ioctl returns */
	cr_assert(file_exists("tpm2-00.volatilestate"));
	cr_assert_not(instance_has_pending_writes(&inst));
}

Test(cuse, get_config_flags)
{
	struct ptm_ioc_getconfig gc;

	memset(&gc, 0xff, sizeof(gc));
	cr_assert_eq(ioc_res(PTM_GET_CONFIG, &gc), 0);
	cr_assert_eq(gc.u.resp.flags, 0, "no keys");
}

Test(cuse, set_buffersize)
{
	struct ptm_ioc_setbuffersize sb;

	memset(&sb, 0, sizeof(sb));
	cr_assert_eq(ioc_res(PTM_SET_BUFFERSIZE, &sb), 0);
	cr_assert_eq(sb.u.resp.buffersize, 4096);
	cr_assert_eq(sb.u.resp.minsize, 2808);
	cr_assert_eq(sb.u.resp.maxsize, 4096);
	memset(&sb, 0, sizeof(sb));
	sb.u.req.buffersize = 3000;
	cr_assert_eq(ioc_res(PTM_SET_BUFFERSIZE, &sb), 0);
	cr_assert_eq(sb.u.resp.buffersize, 3000);
	init_tpm();
	/* while running: only the query */
	memset(&sb, 0, sizeof(sb));
	sb.u.req.buffersize = 4000;
	cr_assert_eq(ioc_res(PTM_SET_BUFFERSIZE, &sb), CTRL_RES_BAD_ORDINAL);
	cr_assert_eq(sb.u.resp.buffersize, 0, "a 4-byte error reply");
	memset(&sb, 0, sizeof(sb));
	cr_assert_eq(ioc_res(PTM_SET_BUFFERSIZE, &sb), 0);
	cr_assert_eq(sb.u.resp.buffersize, 3000);
	cr_assert_eq(sb.u.resp.maxsize, 4096);
}

Test(cuse, get_info)
{
	static const char spec[] = "{\"TPMSpecification\":{\"family\":\"2.0\",\"level\":0,"
				   "\"revision\":164}}";
	static struct ptm_ioc_getinfo gi;

	memset(&gi, 0, sizeof(gi));
	gi.u.req.flags = SWTPM_INFO_TPMSPECIFICATION;
	cr_assert_eq(ioc_res(PTM_GET_INFO, &gi), 0);
	cr_assert_eq(gi.u.resp.totlength, sizeof(spec));
	cr_assert_eq(gi.u.resp.length, sizeof(spec));
	cr_assert_str_eq(gi.u.resp.buffer, spec);
	memset(&gi, 0, sizeof(gi));
	gi.u.req.flags = SWTPM_INFO_TPMSPECIFICATION;
	gi.u.req.offset = 10;
	cr_assert_eq(ioc_res(PTM_GET_INFO, &gi), 0);
	cr_assert_eq(gi.u.resp.totlength, sizeof(spec));
	cr_assert_eq(gi.u.resp.length, sizeof(spec) - 10);
	cr_assert_str_eq(gi.u.resp.buffer, spec + 10);
	memset(&gi, 0, sizeof(gi));
	gi.u.req.flags = SWTPM_INFO_TPMSPECIFICATION;
	gi.u.req.offset = sizeof(spec) - 1;
	cr_assert_eq(ioc_res(PTM_GET_INFO, &gi), CTRL_RES_BAD_PARAMETER);
	/* all flags: a longer document, still NUL-terminated in the reply */
	memset(&gi, 0, sizeof(gi));
	gi.u.req.flags = SWTPM_INFO_TPMSPECIFICATION | SWTPM_INFO_TPMATTRIBUTES;
	cr_assert_eq(ioc_res(PTM_GET_INFO, &gi), 0);
	cr_assert_eq(strlen(gi.u.resp.buffer) + 1, gi.u.resp.length);
}

Test(cuse, lock_storage)
{
	struct ptm_ioc_lockstorage ls;

	memset(&ls, 0, sizeof(ls));
	ls.u.req.retries = 0;
	cr_assert_eq(ioc_res(PTM_LOCK_STORAGE, &ls), 0);
	cr_assert(file_exists(".lock"));
	cr_assert(inst.store_ready);
	init_tpm();
	memset(&ls, 0, sizeof(ls));
	cr_assert_eq(ioc_res(PTM_LOCK_STORAGE, &ls), 0, "already held");
}

Test(cuse, stop_ends_the_tpm_and_the_pending_response)
{
	const uint8_t *data;

	init_tpm();
	cr_assert_eq(cuse_dev_write(&dev, tpm2_startup_clear, sizeof(tpm2_startup_clear)), 12);
	cr_assert_eq(ioc0(PTM_STOP), 0);
	cr_assert_not(inst.running);
	cr_assert_not(dev.quit);
	cr_assert_eq(cuse_dev_read(&dev, 4096, &data), 0, "the response is gone");
	cr_assert(file_exists("tpm2-00.permall"), "the state is swtpm's files");
	cr_assert_eq(TPM_CMD(tpm2_getrandom16), 0x101);
	cr_assert_eq(ioc0(PTM_STOP), 0, "repeated STOP");
	/* and it starts again */
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
}

Test(cuse, shutdown_sets_quit)
{
	init_tpm();
	cr_assert_eq(ioc0(PTM_SHUTDOWN), 0);
	cr_assert(dev.quit);
	cr_assert_eq(dev.exit_status, 0);
	cr_assert_not(inst.running);
}

Test(cuse, shutdown_before_init_sets_quit)
{
	cr_assert_eq(ioc0(PTM_SHUTDOWN), 0);
	cr_assert(dev.quit);
}

Test(cuse, cancel_tpm2)
{
	init_tpm();
	cr_assert_eq(ioc0(PTM_CANCEL_TPM_CMD), 0);
}

Test(cuse, init_with_delete_volatile)
{
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(ioc0(PTM_STORE_VOLATILE), 0);
	cr_assert(file_exists("tpm2-00.volatilestate"));
	cr_assert_eq(init_flags(PTM_INIT_FLAG_DELETE_VOLATILE), 0);
	cr_assert_not(file_exists("tpm2-00.volatilestate"));
}

/* ============================================================ durability */

Test(cuse, nv_write_is_on_disk_when_write_returns)
{
	uint64_t before, after;

	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_not(instance_has_pending_writes(&inst));
	before = dir_digest(dir);
	cr_assert_eq(cuse_dev_write(&dev, tpm2_nv_define, sizeof(tpm2_nv_define)),
		     (ssize_t)sizeof(tpm2_nv_define));
	/* no read, no flush by anyone else: it must be there already */
	cr_assert_not(instance_has_pending_writes(&inst));
	after = dir_digest(dir);
	cr_assert_neq(before, after, "the state directory changed");
	cr_assert_eq(TPM_CMD(tpm2_nv_readpublic), 0);
}

Test(cuse, nv_state_survives_a_crash_after_the_write)
{
	const uint8_t *data;
	int status;
	pid_t pid;

	/* A child runs the device and dies right after write() returned (no
	 * read, no STOP, no clean exit); what it acknowledged must be found by
	 * the next instance on the same directory. */
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct ptm_ioc_init in = { .u.req.init_flags = 0 };
		_Alignas(8) uint8_t out[8];
		size_t outlen;

		if (cuse_dev_ioctl(&dev, PTM_INIT, &in, sizeof(in), out, sizeof(out), &outlen) ||
		    memcmp(out, "\0\0\0\0", 4))
			_exit(2);
		if (cuse_dev_write(&dev, tpm2_startup_clear, sizeof(tpm2_startup_clear)) != 12 ||
		    cuse_dev_read(&dev, 4096, &data) != 10 || data[9] != 0)
			_exit(3);
		if (cuse_dev_write(&dev, tpm2_nv_define, sizeof(tpm2_nv_define)) !=
		    (ssize_t)sizeof(tpm2_nv_define))
			_exit(4);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(TPM_CMD(tpm2_nv_readpublic), 0, "the index the crashed device acknowledged");
}

/* ============================================================ state directory */

Test(cuse, init_creates_a_missing_state_directory)
{
	char sub[160];
	struct stat st;
	mode_t old;

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	cuse_dev_release(&dev);
	cuse_dev_fini(&dev);
	instance_fini(&inst);
	make_instance(sub);
	cr_assert_neq(stat(sub, &st), 0);
	old = umask(0);
	init_tpm();
	umask(old);
	cr_assert_eq(stat(sub, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0775);
	cr_assert(file_exists_in(sub, "tpm2-00.permall"));
}

Test(cuse, init_creates_a_missing_tpm_path)
{
	char sub[160];
	struct stat st;

	snprintf(sub, sizeof(sub), "%s/tp", dir);
	cuse_dev_release(&dev);
	cuse_dev_fini(&dev);
	instance_fini(&inst);
	free(cfg.state_uri);
	cfg.state_uri = NULL;
	setenv("TPM_PATH", sub, 1);
	cr_assert_eq(instance_init(&inst, &cfg), 0);
	cuse_dev_init(&dev, &inst, &cfg);
	cr_assert_eq(cuse_dev_open(&dev), 0);
	init_tpm();
	unsetenv("TPM_PATH");
	cr_assert_eq(stat(sub, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert(file_exists_in(sub, "tpm2-00.permall"));
}

Test(cuse, init_fails_when_the_directory_cannot_be_made)
{
	char sub[160];

	snprintf(sub, sizeof(sub), "%s/no/such", dir);
	cuse_dev_release(&dev);
	cuse_dev_fini(&dev);
	instance_fini(&inst);
	make_instance(sub);
	cr_assert_eq(init_flags(0), CTRL_RES_FAIL);
	cr_assert_not(inst.running);
}

Test(cuse, init_fails_when_a_file_is_in_the_way)
{
	char path[160];
	FILE *f;

	snprintf(path, sizeof(path), "%s/afile", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fclose(f);
	cuse_dev_release(&dev);
	cuse_dev_fini(&dev);
	instance_fini(&inst);
	make_instance(path);
	cr_assert_neq(init_flags(0), 0);
	cr_assert_not(inst.running);
}

/* swtpm's PTM_INIT terminates the running TPM before it looks at the state
 * directory; when that fails the TPM stays down (as after any failed INIT).
 * (A regression test: a cuse_state_dir() failure used to answer TPM_FAIL
 * with the TPM still running.) */
Test(cuse, failed_init_leaves_the_tpm_stopped)
{
	char a[160], b[160], a2[160];

	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(a2, sizeof(a2), "%s/a2", dir);
	snprintf(b, sizeof(b), "%s/a/b", dir);
	cr_assert_eq(mkdir(a, 0700), 0);
	cuse_dev_release(&dev);
	cuse_dev_fini(&dev);
	instance_fini(&inst);
	make_instance(b);
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(rename(a, a2), 0);
	cr_assert_eq(init_flags(0), CTRL_RES_FAIL);
	cr_assert_not(inst.running);
	cr_assert_eq(TPM_CMD(tpm2_getrandom16), 0x101);
}

Test(cuse, cuse_state_dir_backends)
{
	struct vtpm_config c;
	char path[160], uri[200];
	struct stat st;

	config_init(&c);
	/* dir:// that exists: nothing to do */
	snprintf(uri, sizeof(uri), "dir://%s", dir);
	c.state_uri = uri;
	cr_assert_eq(cuse_state_dir(&c), 0);
	/* dir:// missing: made */
	snprintf(path, sizeof(path), "%s/d1", dir);
	snprintf(uri, sizeof(uri), "dir://%s", path);
	cr_assert_eq(cuse_state_dir(&c), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	/* missing parent: -ENOENT */
	snprintf(uri, sizeof(uri), "dir://%s/x/y", dir);
	cr_assert_eq(cuse_state_dir(&c), -ENOENT);
	/* file:// has no directory */
	snprintf(uri, sizeof(uri), "file://%s/nodir/state", dir);
	cr_assert_eq(cuse_state_dir(&c), 0);
	snprintf(path, sizeof(path), "%s/nodir", dir);
	cr_assert_neq(stat(path, &st), 0);
	/* no URI: TPM_PATH */
	c.state_uri = NULL;
	snprintf(path, sizeof(path), "%s/d2", dir);
	setenv("TPM_PATH", path, 1);
	cr_assert_eq(cuse_state_dir(&c), 0);
	cr_assert_eq(stat(path, &st), 0);
	unsetenv("TPM_PATH");
	cr_assert_eq(cuse_state_dir(&c), 0, "nothing configured: nothing to make");
	c.state_uri = NULL;
	config_free(&c);
}

/* ============================================================ GET_STATEBLOB */

Test(cuse, get_permanent_blob_by_ioctls_with_offsets)
{
	uint8_t *a, *b;
	size_t alen, blen;

	tpm2_start_and_define_nv();
	a = get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &alen);
	cr_assert_gt(alen, PTM_STATE_BLOB_SIZE, "TPM 2 permanent state: %zu bytes", alen);
	cr_assert_eq(a[0], 0x02, "a swtpm state blob header");
	b = get_blob_by_dispatcher(PTM_BLOB_TYPE_PERMANENT, &blen);
	cr_assert_eq(alen, blen);
	cr_assert_arr_eq(a, b, alen, "the same bytes as the socket's dispatcher");
	free(a);
	free(b);
	/* an offset at or past the end: nothing, and no get-blob mode */
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, (uint32_t)alen), 0);
	cr_assert_eq(gs.u.resp.length, 0);
	cr_assert_eq(gs.u.resp.totlength, alen);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 0xffffffffu), 0);
	cr_assert_eq(gs.u.resp.length, 0);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
}

static void get_by_reads(size_t chunk)
{
	uint8_t *whole, *b;
	size_t wlen, blen, got;
	const uint8_t *data;
	ssize_t n;
	uint32_t tot;

	whole = get_blob_by_dispatcher(PTM_BLOB_TYPE_PERMANENT, &wlen);
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 0), 0);
	tot = gs.u.resp.totlength;
	cr_assert_eq(tot, wlen);
	cr_assert_eq(gs.u.resp.length, PTM_STATE_BLOB_SIZE);
	cr_assert_eq(dev.tx, CUSE_TX_GETBLOB);
	b = malloc(tot);
	memcpy(b, gs.u.resp.data, PTM_STATE_BLOB_SIZE);
	got = PTM_STATE_BLOB_SIZE;
	for (;;) {
		n = cuse_dev_read(&dev, chunk, &data);
		cr_assert_geq(n, 0);
		cr_assert_leq(got + (size_t)n, tot);
		memcpy(b + got, data, (size_t)n);
		got += (size_t)n;
		if ((size_t)n < chunk)
			break;
		cr_assert_eq(dev.tx, CUSE_TX_GETBLOB, "a full read keeps the mode");
	}
	cr_assert_eq(dev.tx, CUSE_TX_CMD, "a short read ends the mode");
	blen = got;
	cr_assert_eq(blen, wlen);
	cr_assert_arr_eq(b, whole, wlen);
	free(b);
	free(whole);
	/* back to commands */
	cr_assert_eq(TPM_CMD(tpm2_getrandom16), 0);
}

Test(cuse, get_permanent_blob_by_ioctl_then_reads)
{
	tpm2_start_and_define_nv();
	get_by_reads(1000);
}

Test(cuse, get_blob_reads_of_exactly_the_rest)
{
	size_t rest;
	const uint8_t *data;

	tpm2_start_and_define_nv();
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 0), 0);
	rest = gs.u.resp.totlength - PTM_STATE_BLOB_SIZE;
	cr_assert_eq(dev.tx, CUSE_TX_GETBLOB);
	/* a read of exactly the rest is not short: the mode stays ... */
	cr_assert_eq(cuse_dev_read(&dev, rest, &data), (ssize_t)rest);
	cr_assert_eq(dev.tx, CUSE_TX_GETBLOB);
	/* ... until the empty read */
	cr_assert_eq(cuse_dev_read(&dev, rest, &data), 0);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
}

Test(cuse, get_blob_by_one_big_read)
{
	tpm2_start_and_define_nv();
	get_by_reads(65536);
}

Test(cuse, get_blob_read_continues_after_a_nonzero_offset)
{
	uint8_t *whole;
	size_t wlen;
	const uint8_t *data;
	ssize_t n;

	tpm2_start_and_define_nv();
	whole = get_blob_by_dispatcher(PTM_BLOB_TYPE_PERMANENT, &wlen);
	cr_assert_gt(wlen, 100 + PTM_STATE_BLOB_SIZE);
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 100), 0);
	cr_assert_eq(gs.u.resp.length, PTM_STATE_BLOB_SIZE);
	cr_assert_arr_eq(gs.u.resp.data, whole + 100, PTM_STATE_BLOB_SIZE);
	/* swtpm would continue at 3072 (the count copied); this device
	 * continues after what it handed out */
	n = cuse_dev_read(&dev, 65536, &data);
	cr_assert_eq(n, (ssize_t)(wlen - 100 - PTM_STATE_BLOB_SIZE));
	cr_assert_arr_eq(data, whole + 100 + PTM_STATE_BLOB_SIZE, (size_t)n);
	free(whole);
}

Test(cuse, write_during_get_blob_mode_is_eio)
{
	const uint8_t *data;

	tpm2_start_and_define_nv();
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 0), 0);
	cr_assert_eq(dev.tx, CUSE_TX_GETBLOB);
	cr_assert_eq(cuse_dev_write(&dev, tpm2_getrandom16, sizeof(tpm2_getrandom16)), -EIO);
	cr_assert_eq(dev.tx, CUSE_TX_CMD, "the mode ended");
	/* reads are responses again (none pending: the write was not a command) */
	cr_assert_eq(cuse_dev_read(&dev, 4096, &data), 0);
	cr_assert_eq(TPM_CMD(tpm2_getrandom16), 0);
}

/* A get-blob transfer left open (the client stopped reading) and then an
 * ioctl that drops the blob cache: swtpm's read() then finds no cached blob
 * and fails with EIO, leaving the get-blob mode. The device must not hand
 * out bytes from the dropped cache. */
static void get_blob_mode_then(unsigned int cmd)
{
	const uint8_t *data = NULL;
	ssize_t n;

	tpm2_start_and_define_nv();
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 0), 0);
	cr_assert_eq(dev.tx, CUSE_TX_GETBLOB);
	if (cmd == PTM_INIT)
		cr_assert_eq(init_flags(0), 0);
	else
		cr_assert_eq(ioc0(cmd), 0);
	cr_assert_not(dev.blobvalid);
	n = cuse_dev_read(&dev, 4096, &data);
	cr_assert(n == -EIO || n == 0, "read after the cache was dropped: %zd", n);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
}

/* Once the blob cache is dropped, a download in progress ends: nothing is
 * read from the freed blob (a regression test: bloblen - blobread used to wrap
 * around to a read from NULL + 3072). */
Test(cuse, get_blob_mode_then_store_volatile)
{
	get_blob_mode_then(PTM_STORE_VOLATILE);
}

Test(cuse, get_blob_mode_then_init)
{
	get_blob_mode_then(PTM_INIT);
}

Test(cuse, get_blob_mode_then_stop)
{
	get_blob_mode_then(PTM_STOP);
}

Test(cuse, get_blob_of_missing_or_unknown_type)
{
	init_tpm();
	/* TPM 2 has no savestate: TPM_RETRY, an empty blob */
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_SAVESTATE, 0, 0), CTRL_RES_RETRY);
	cr_assert_eq(gs.u.resp.length, 0);
	cr_assert_eq(gs.u.resp.totlength, 0);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
	cr_assert_eq(get_blob_at(9, 0, 0), CTRL_RES_FAIL);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
}

Test(cuse, get_volatile_blob_removes_the_file)
{
	uint8_t *v;
	size_t vlen;

	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(ioc0(PTM_STORE_VOLATILE), 0);
	cr_assert(file_exists("tpm2-00.volatilestate"));
	v = get_blob_by_ioctls(PTM_BLOB_TYPE_VOLATILE, &vlen);
	cr_assert_gt(vlen, 100);
	free(v);
	cr_assert_not(file_exists("tpm2-00.volatilestate"));
}

Test(cuse, get_blob_cache_lifetime)
{
	uint8_t *a, *b, *c;
	size_t alen, blen, clen;

	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	a = get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &alen);
	cr_assert(dev.blobvalid);
	/* a TPM command drops the cache: the state may have changed */
	cr_assert_eq(TPM_CMD(tpm2_nv_define), 0);
	cr_assert_not(dev.blobvalid);
	/* so the next download shows the new state (swtpm would hand out the
	 * old blob from its cache again) */
	b = get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &blen);
	c = get_blob_by_dispatcher(PTM_BLOB_TYPE_PERMANENT, &clen);
	cr_assert_eq(blen, clen);
	cr_assert_arr_eq(b, c, blen, "the download after the NV change is current");
	cr_assert(blen != alen || memcmp(a, b, alen) != 0, "the NV index changed the blob");
	free(b);
	free(c);
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 0), 0);
	/* another key reloads */
	memset(&gs, 0, sizeof(gs));
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, PTM_STATE_FLAG_DECRYPTED, 0), 0);
	cr_assert(dev.blobdecrypt);
	/* STORE_VOLATILE drops the cache */
	cr_assert_eq(ioc0(PTM_STORE_VOLATILE), 0);
	cr_assert_not(dev.blobvalid);
	c = get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &clen);
	b = get_blob_by_dispatcher(PTM_BLOB_TYPE_PERMANENT, &blen);
	cr_assert_eq(clen, blen);
	cr_assert_arr_eq(c, b, clen, "the current state after the cache was dropped");
	free(b);
	free(c);
	free(a);
	/* INIT and STOP drop it too */
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 0), 0);
	cr_assert(dev.blobvalid);
	init_tpm();
	cr_assert_not(dev.blobvalid);
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 0), 0);
	cr_assert_eq(ioc0(PTM_STOP), 0);
	cr_assert_not(dev.blobvalid);
}

/* Can another process take the state directory's lock right now? */
static bool lock_free_for_others(void)
{
	char p[200];
	int status;
	pid_t pid;

	snprintf(p, sizeof(p), "%s/.lock", dir);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd = open(p, O_WRONLY | O_CREAT, 0660);

		_exit(fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 ? 0 : 1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status) == 0;
}

Test(cuse, savestate_fetch_releases_the_lock_with_release_lock_outgoing)
{
	cfg.migration_release_lock_outgoing = true;
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_not(lock_free_for_others());
	/* an outgoing migration: permanent, volatile, then savestate (TPM 2:
	 * none, TPM_RETRY, which counts as fetched) */
	free(get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &(size_t){ 0 }));
	cr_assert_not(lock_free_for_others(), "still ours after the permanent blob");
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_SAVESTATE, PTM_STATE_FLAG_DECRYPTED, 0),
		     CTRL_RES_RETRY);
	cr_assert(lock_free_for_others(), "the destination may lock the storage now");
	/* a failed migration: LOCK_STORAGE takes it back */
	{
		struct ptm_ioc_lockstorage ls;

		memset(&ls, 0, sizeof(ls));
		ls.u.req.retries = 10;
		cr_assert_eq(ioc_res(PTM_LOCK_STORAGE, &ls), 0);
	}
	cr_assert_not(lock_free_for_others());
}

/* --migration incoming: the storage is locked only when the state arrives;
 * if someone else holds it, SET_STATEBLOB answers TPM_IOERROR and the device
 * ends with status 1 (swtpm 0.8 terminates). */
Test(cuse, incoming_set_stateblob_without_the_lock_ends_the_device)
{
	static const uint8_t blob[10] = { 2, 1, 0, 10, 0, 4, 0, 0, 0, 10 };
	char p[200];
	int pfd[2], status;
	pid_t pid;
	char c;

	cfg.migration_incoming = true;
	snprintf(p, sizeof(p), "%s/.lock", dir);
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd = open(p, O_WRONLY | O_CREAT, 0660);

		if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0 || write(pfd[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	cr_assert_eq(read(pfd[0], &c, 1), 1);
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, blob, sizeof(blob)), CTRL_RES_IOERROR);
	cr_assert(dev.quit);
	cr_assert_eq(dev.exit_status, 1);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
}

Test(cuse, incoming_set_stateblob_takes_the_lock)
{
	static const uint8_t empty_blob[10] = { 2, 1, 0, 10, 0, 6, 0, 0, 0, 10 };

	cfg.migration_incoming = true;
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, empty_blob, sizeof(empty_blob)), 0);
	cr_assert_not(dev.quit);
	cr_assert_not(lock_free_for_others(), "the state arrived: the storage is ours");
}

Test(cuse, savestate_fetch_keeps_the_lock_by_default)
{
	init_tpm();
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_SAVESTATE, 0, 0), CTRL_RES_RETRY);
	cr_assert_not(lock_free_for_others());
}

/* ============================================================ SET_STATEBLOB */

/* Upload `blob` in 3072-byte ioctl pieces; a final short (possibly empty)
 * piece carries the result. */
static uint32_t set_by_pieces(uint32_t type, const uint8_t *blob, size_t len)
{
	size_t off = 0, n;
	uint32_t res;

	for (;;) {
		n = len - off > PTM_STATE_BLOB_SIZE ? PTM_STATE_BLOB_SIZE : len - off;
		res = set_piece(type, blob + off, (uint32_t)n);
		off += n;
		if (n < PTM_STATE_BLOB_SIZE)
			return res;
		cr_assert_eq(res, 0, "intermediate piece at %zu", off);
		cr_assert_eq(dev.tx, CUSE_TX_SETBLOB);
	}
}

Test(cuse, set_permanent_blob_by_pieces_into_a_fresh_instance)
{
	uint8_t *blob;
	size_t len;

	tpm2_start_and_define_nv();
	blob = get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &len);
	cr_assert_gt(len, PTM_STATE_BLOB_SIZE);
	fresh_instance();
	/* the fresh TPM does not have the index */
	tpm2_start_and_define_nv(); /* proves nothing yet: define it here too ... */
	cr_assert_eq(TPM_CMD(tpm2_nv_undefine), 0); /* ... and remove it again */
	cr_assert_neq(TPM_CMD(tpm2_nv_readpublic), 0, "no index before the upload");
	cr_assert_eq(ioc0(PTM_STOP), 0);

	cr_assert_eq(set_by_pieces(PTM_BLOB_TYPE_PERMANENT, blob, len), 0);
	cr_assert_eq(dev.tx, CUSE_TX_CMD, "the short piece ended the upload");
	cr_assert_eq(dev.setlen, 0);
	init_tpm();
	/* libtpms wrote the uploaded state at INIT: on disk when it returned */
	cr_assert_not(instance_has_pending_writes(&inst));
	{
		uint8_t *now;
		size_t nlen;

		now = get_blob_by_dispatcher(PTM_BLOB_TYPE_PERMANENT, &nlen);
		cr_assert_eq(nlen, len);
		cr_assert_arr_eq(now, blob, len, "the fresh directory holds the uploaded state");
		free(now);
	}
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(TPM_CMD(tpm2_nv_readpublic), 0, "the uploaded state has the index");
	free(blob);
}

Test(cuse, set_blob_by_a_full_piece_then_write_mode)
{
	uint8_t *blob;
	size_t len;

	tpm2_start_and_define_nv();
	blob = get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &len);
	cr_assert_eq(TPM_CMD(tpm2_nv_undefine), 0);
	cr_assert_eq(ioc0(PTM_STOP), 0);
	/* the first 3072 bytes as a full ioctl piece, ... */
	cr_assert_gt(len, PTM_STATE_BLOB_SIZE);
	cr_assert_lt(len, 2 * PTM_STATE_BLOB_SIZE);
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, blob, PTM_STATE_BLOB_SIZE), 0);
	cr_assert_eq(dev.tx, CUSE_TX_SETBLOB);
	cr_assert_eq(dev.setlen, PTM_STATE_BLOB_SIZE);
	/* ... the rest by write(), then an empty ioctl */
	cr_assert_eq(cuse_dev_write(&dev, blob + PTM_STATE_BLOB_SIZE, len - PTM_STATE_BLOB_SIZE),
		     (ssize_t)(len - PTM_STATE_BLOB_SIZE));
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), 0);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(TPM_CMD(tpm2_nv_readpublic), 0);
	free(blob);
}

Test(cuse, set_permanent_blob_by_write_mode)
{
	uint8_t *blob;
	size_t len, off, n;

	tpm2_start_and_define_nv();
	blob = get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &len);
	/* remove the index from the live state: only the upload brings it back */
	cr_assert_eq(TPM_CMD(tpm2_nv_undefine), 0);
	cr_assert_neq(TPM_CMD(tpm2_nv_readpublic), 0);
	cr_assert_eq(ioc0(PTM_STOP), 0);

	/* empty first ioctl: transfer by write() */
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), 0);
	cr_assert_eq(dev.tx, CUSE_TX_SETBLOB);
	for (off = 0; off < len; off += n) {
		n = len - off > 1000 ? 1000 : len - off;
		cr_assert_eq(cuse_dev_write(&dev, blob + off, n), (ssize_t)n);
		cr_assert_eq(dev.tx, CUSE_TX_SETBLOB);
	}
	cr_assert_eq(dev.setlen, len);
	/* the final empty ioctl sets the state and carries the result */
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), 0);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(TPM_CMD(tpm2_nv_readpublic), 0, "the uploaded state has the index");
	free(blob);
}

/* A GET_STATEBLOB refused because the TPM is stopped does not end an upload
 * (swtpm rejects it before it touches the transfer state either). */
Test(cuse, refused_get_keeps_the_upload_open)
{
	uint8_t *blob;
	size_t len;

	tpm2_start_and_define_nv();
	blob = get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &len);
	cr_assert_eq(ioc0(PTM_STOP), 0);
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), 0);
	cr_assert_eq(dev.tx, CUSE_TX_SETBLOB);
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 0), CTRL_RES_BAD_ORDINAL);
	cr_assert_eq(dev.tx, CUSE_TX_SETBLOB);
	cr_assert_eq(cuse_dev_write(&dev, blob, len), (ssize_t)len);
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), 0);
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(TPM_CMD(tpm2_nv_readpublic), 0, "the upload completed");
	free(blob);
}

Test(cuse, set_blob_writes_over_4096_bytes_are_taken_whole)
{
	uint8_t *blob;
	size_t len;

	tpm2_start_and_define_nv();
	blob = get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &len);
	cr_assert_eq(TPM_CMD(tpm2_nv_undefine), 0);
	cr_assert_eq(ioc0(PTM_STOP), 0);
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), 0);
	/* TPM_REQ_MAX applies to commands, not to blob data */
	cr_assert_eq(cuse_dev_write(&dev, blob, len), (ssize_t)len);
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), 0);
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(TPM_CMD(tpm2_nv_readpublic), 0);
	free(blob);
}

Test(cuse, a_multiple_of_3072_ends_with_an_empty_piece)
{
	static uint8_t data[PTM_STATE_BLOB_SIZE];
	/* a blob header of an unknown version, total length 3072 */
	static const uint8_t bad_ver[10] = { 2, 3, 0, 10, 0, 4, 0, 0, 0x0c, 0x00 };

	/* a (bad) blob of exactly 3072 bytes: the full piece waits for more ... */
	memcpy(data, bad_ver, sizeof(bad_ver));
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, data, PTM_STATE_BLOB_SIZE), 0);
	cr_assert_eq(dev.tx, CUSE_TX_SETBLOB);
	/* ... and the empty piece sets it: the result is the blob's */
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), CTRL_RES_BAD_VERSION);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
	cr_assert_eq(dev.setlen, 0);
}

Test(cuse, set_blob_result_of_a_bad_blob)
{
	static const uint8_t bad_ver[10] = { 2, 3, 0, 10, 0, 4, 0, 0, 0, 10 };

	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, bad_ver, sizeof(bad_ver)),
		     CTRL_RES_BAD_VERSION);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
	/* and by write mode: the final ioctl carries it */
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), 0);
	cr_assert_eq(cuse_dev_write(&dev, bad_ver, sizeof(bad_ver)), (ssize_t)sizeof(bad_ver));
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), CTRL_RES_BAD_VERSION);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
}

Test(cuse, set_blob_by_write_larger_than_512k_is_eio)
{
	static uint8_t big[300 * 1024];

	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), 0);
	cr_assert_eq(cuse_dev_write(&dev, big, sizeof(big)), (ssize_t)sizeof(big));
	cr_assert_eq(cuse_dev_write(&dev, big, sizeof(big)), -EIO);
	cr_assert_eq(dev.tx, CUSE_TX_CMD, "the upload is over");
	cr_assert_eq(dev.setlen, 0);
	cr_assert_eq(TPM_CMD(tpm2_getrandom16), 0x101, "writes are commands again");
}

Test(cuse, read_during_set_blob_mode_is_eio)
{
	const uint8_t *data;

	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), 0);
	cr_assert_eq(dev.tx, CUSE_TX_SETBLOB);
	cr_assert_eq(cuse_dev_read(&dev, 4096, &data), -EIO);
	cr_assert_eq(dev.tx, CUSE_TX_CMD, "the mode ended");
	/* writes are commands again */
	cr_assert_eq(TPM_CMD(tpm2_getrandom16), 0x101);
}

Test(cuse, set_blob_longer_than_3072_is_bad_parameter)
{
	static uint8_t data[PTM_STATE_BLOB_SIZE];

	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, data, PTM_STATE_BLOB_SIZE + 1),
		     CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, data, 0xffffffffu), CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
}

Test(cuse, set_blob_while_running_is_bad_ordinal)
{
	static uint8_t data[16];

	init_tpm();
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, data, sizeof(data)), CTRL_RES_BAD_ORDINAL);
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, NULL, 0), CTRL_RES_BAD_ORDINAL);
	cr_assert_eq(dev.tx, CUSE_TX_CMD, "no upload started");
	cr_assert(inst.running);
}

Test(cuse, set_blob_of_an_unknown_type)
{
	static const uint8_t bad_ver[10] = { 2, 3, 0, 10, 0, 4, 0, 0, 0, 10 };

	cr_assert_eq(set_piece(7, bad_ver, sizeof(bad_ver)), CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(dev.tx, CUSE_TX_CMD);
}

Test(cuse, a_piece_of_another_type_starts_a_new_upload)
{
	static uint8_t data[PTM_STATE_BLOB_SIZE];

	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, data, PTM_STATE_BLOB_SIZE), 0);
	cr_assert_eq(dev.setlen, PTM_STATE_BLOB_SIZE);
	cr_assert_eq(set_piece(PTM_BLOB_TYPE_VOLATILE, data, PTM_STATE_BLOB_SIZE), 0);
	cr_assert_eq(dev.settype, PTM_BLOB_TYPE_VOLATILE);
	cr_assert_eq(dev.setlen, PTM_STATE_BLOB_SIZE, "the permanent pieces were dropped");
}

Test(cuse, reopen_drops_a_half_done_upload)
{
	static uint8_t data[PTM_STATE_BLOB_SIZE];

	cr_assert_eq(set_piece(PTM_BLOB_TYPE_PERMANENT, data, PTM_STATE_BLOB_SIZE), 0);
	cr_assert_eq(dev.tx, CUSE_TX_SETBLOB);
	cuse_dev_release(&dev);
	cr_assert_eq(cuse_dev_open(&dev), 0);
	cr_assert_eq(dev.tx, CUSE_TX_CMD, "open() resets the transfer mode");
	cr_assert_eq(dev.setlen, 0);
	cr_assert_eq(dev.settype, 0);
}

Test(cuse, round_trip_of_volatile_state)
{
	uint8_t *vol;
	size_t vlen;
	struct ptm_ioc_est est;

	/* the established bit lives in the volatile state */
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(ioc0(PTM_HASH_START), 0);
	cr_assert_eq(ioc0(PTM_HASH_END), 0);
	memset(&est, 0, sizeof(est));
	cr_assert_eq(ioc_res(PTM_GET_TPMESTABLISHED, &est), 0);
	cr_assert_eq(est.u.resp.bit, 1);
	vol = get_blob_by_ioctls(PTM_BLOB_TYPE_VOLATILE, &vlen);
	cr_assert_eq(loc_ioctl(PTM_RESET_TPMESTABLISHED, 3), 0);
	cr_assert_eq(ioc0(PTM_STOP), 0);
	cr_assert_eq(set_by_pieces(PTM_BLOB_TYPE_VOLATILE, vol, vlen), 0);
	init_tpm();
	memset(&est, 0, sizeof(est));
	cr_assert_eq(ioc_res(PTM_GET_TPMESTABLISHED, &est), 0);
	cr_assert_eq(est.u.resp.bit, 1, "the uploaded volatile state has it set");
	free(vol);
}

/* ============================================================ state key */

static void use_state_key(void)
{
	char path[200], opt[240];
	FILE *f;

	snprintf(path, sizeof(path), "%s/../%s.key", dir, strrchr(dir, '/') + 1);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("000102030405060708090a0b0c0d0e0f\n", f);
	fclose(f);
	snprintf(opt, sizeof(opt), "file=%s", path);
	free(cfg.keys.key);
	cfg.keys.key = strdup(opt);
	cr_assert_eq(instance_load_keys(&inst), 0);
	unlink(path); /* loaded */
}

Test(cuse, encrypted_state_blobs)
{
	struct ctrl_req req = { .code = CMD_GET_STATEBLOB, .n = 12, .fd = -1 };
	struct ctrl_rsp rsp;
	struct ptm_ioc_getconfig gc;
	uint8_t *enc, *plain;
	size_t elen, plen;

	use_state_key();
	memset(&gc, 0, sizeof(gc));
	cr_assert_eq(ioc_res(PTM_GET_CONFIG, &gc), 0);
	cr_assert_eq(gc.u.resp.flags, PTM_CONFIG_FLAG_FILE_KEY);
	tpm2_start_and_define_nv();

	/* as stored: encrypted with the state key, and flagged so */
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, 0, 0), 0);
	cr_assert_eq(gs.u.resp.state_flags, PTM_STATE_FLAG_ENCRYPTED);
	enc = get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &elen);
	/* decrypted: another cache key, another blob */
	cr_assert_eq(get_blob_at(PTM_BLOB_TYPE_PERMANENT, PTM_STATE_FLAG_DECRYPTED, 0), 0);
	cr_assert_eq(gs.u.resp.state_flags, 0);
	cr_assert(dev.blobdecrypt);
	plen = gs.u.resp.totlength;
	plain = malloc(plen);
	memcpy(plain, gs.u.resp.data, PTM_STATE_BLOB_SIZE < plen ? PTM_STATE_BLOB_SIZE : plen);
	if (plen > PTM_STATE_BLOB_SIZE) {
		const uint8_t *data;

		cr_assert_eq(cuse_dev_read(&dev, plen, &data), (ssize_t)(plen - PTM_STATE_BLOB_SIZE));
		memcpy(plain + PTM_STATE_BLOB_SIZE, data, plen - PTM_STATE_BLOB_SIZE);
	}
	cr_assert(elen != plen || memcmp(enc, plain, elen) != 0);
	/* what the dispatcher hands out, for both keys */
	req.u.getstate.type = PTM_BLOB_TYPE_PERMANENT;
	req.u.getstate.flags = PTM_STATE_FLAG_DECRYPTED;
	ctrl_dispatch(&inst, &req, &rsp);
	cr_assert_eq(rsp.payload_len, plen);
	cr_assert_arr_eq(rsp.payload, plain, plen);
	cr_assert_eq(rsp.u.blob.flags, 0);
	ctrl_rsp_free(&rsp);
	req.u.getstate.flags = 0;
	ctrl_dispatch(&inst, &req, &rsp);
	/* (a fresh random IV each time: only the length is the same) */
	cr_assert_eq(rsp.payload_len, elen);
	cr_assert_eq(rsp.u.blob.flags, PTM_STATE_FLAG_ENCRYPTED);
	ctrl_rsp_free(&rsp);

	/* the encrypted blob into a fresh instance without the key: refused */
	fresh_instance();
	cr_assert_eq(set_by_pieces(PTM_BLOB_TYPE_PERMANENT, enc, elen), CTRL_RES_KEYNOTFOUND);
	/* with the key: taken */
	use_state_key();
	memset(&ss, 0, sizeof(ss));
	cr_assert_eq(set_by_pieces(PTM_BLOB_TYPE_PERMANENT, enc, elen), 0);
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(TPM_CMD(tpm2_nv_readpublic), 0);
	/* and the plain blob is fine too (stored encrypted again) */
	cr_assert_eq(ioc0(PTM_STOP), 0);
	cr_assert_eq(set_by_pieces(PTM_BLOB_TYPE_PERMANENT, plain, plen), 0);
	init_tpm();
	free(enc);
	free(plain);
}

/* ============================================================ TPM 1.2 */

TestSuite(cuse12, .init = setup12, .fini = teardown);

Test(cuse12, write_before_init_reads_the_fatal_response)
{
	uint8_t rsp[64];
	size_t len;

	cr_assert_eq(tpm_cmd(tpm12_getrandom16, sizeof(tpm12_getrandom16), rsp, &len), 9);
	cr_assert_eq(len, 10);
	cr_assert_arr_eq(rsp, tpm12_fatal, 10);
}

Test(cuse12, init_startup_getrandom)
{
	const uint8_t *data;
	uint8_t rsp[64];
	ssize_t n;

	init_tpm();
	cr_assert(file_exists("tpm-00.permall"));
	cr_assert_eq(TPM_CMD(tpm12_startup_clear), 0);
	cr_assert_eq(cuse_dev_write(&dev, tpm12_getrandom16, sizeof(tpm12_getrandom16)), 14);
	n = cuse_dev_read(&dev, 10, &data);
	cr_assert_eq(n, 10);
	memcpy(rsp, data, 10);
	n = cuse_dev_read(&dev, 100, &data);
	cr_assert_eq(n, 20);
	memcpy(rsp + 10, data, 20);
	cr_assert_eq(rsp[1], 0xc4);
	cr_assert_eq(be32(rsp + 2), 30);
	cr_assert_eq(be32(rsp + 6), 0);
	cr_assert_eq(be32(rsp + 10), 16);
	cr_assert_eq(cuse_dev_read(&dev, 100, &data), 0);
}

Test(cuse12, capability_and_cancel)
{
	ptm_ioc_cap cap = 0;

	cr_assert_eq(ioc(PTM_GET_CAPABILITY, &cap), 0);
	cr_assert_eq(cap, 0x16fffu);
	init_tpm();
	/* libtpms' TPM 1.2 has no cancellation */
	cr_assert_eq(ioc0(PTM_CANCEL_TPM_CMD), CTRL_RES_FAIL);
}

Test(cuse12, established_bit_and_reset)
{
	struct ptm_ioc_est est;

	init_tpm();
	cr_assert_eq(TPM_CMD(tpm12_startup_clear), 0);
	cr_assert_eq(ioc0(PTM_HASH_START), 0);
	cr_assert_eq(ioc0(PTM_HASH_END), 0);
	memset(&est, 0, sizeof(est));
	cr_assert_eq(ioc_res(PTM_GET_TPMESTABLISHED, &est), 0);
	cr_assert_eq(est.u.resp.bit, 1);
	cr_assert_eq(loc_ioctl(PTM_RESET_TPMESTABLISHED, 5), CTRL_RES_BAD_LOCALITY);
	cr_assert_eq(loc_ioctl(PTM_RESET_TPMESTABLISHED, 3), 0);
	memset(&est, 0, sizeof(est));
	cr_assert_eq(ioc_res(PTM_GET_TPMESTABLISHED, &est), 0);
	cr_assert_eq(est.u.resp.bit, 0);
}

Test(cuse12, permanent_blob_round_trip)
{
	uint8_t *a, *b;
	size_t alen, blen;

	init_tpm();
	cr_assert_eq(TPM_CMD(tpm12_startup_clear), 0);
	a = get_blob_by_ioctls(PTM_BLOB_TYPE_PERMANENT, &alen);
	b = get_blob_by_dispatcher(PTM_BLOB_TYPE_PERMANENT, &blen);
	cr_assert_eq(alen, blen);
	cr_assert_arr_eq(a, b, alen);
	free(b);
	fresh_instance();
	cr_assert_eq(set_by_pieces(PTM_BLOB_TYPE_PERMANENT, a, alen), 0);
	init_tpm();
	cr_assert_eq(TPM_CMD(tpm12_startup_clear), 0);
	/* the fresh directory now holds the uploaded state */
	b = get_blob_by_dispatcher(PTM_BLOB_TYPE_PERMANENT, &blen);
	cr_assert_eq(alen, blen, "%zu vs %zu", alen, blen);
	free(b);
	free(a);
}
