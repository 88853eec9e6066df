/* Our swtpm_ioctl against the CUSE device's behaviour (io/cuse_dev.c) with a
 * real libtpms instance behind it, all in one process: the tool opens
 * /dev/zero (a character device, so it takes its ioctl() path), and the
 * ioctl()/read()/write()/close() defined here play the kernel's CUSE driver
 * for that file only: restricted ioctls copy the whole structure in (_IOW)
 * and the reply out, zero-byte writes never reach the device, close() is the
 * release. Everything else goes to the real system calls. */
/* The overrides must see every call: no fortified read() wrappers. */
#undef _FORTIFY_SOURCE
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "instance/config.h"
#include "instance/ctrl.h"
#include "instance/instance.h"
#include "io/cuse_dev.h"

int swtpm_ioctl_main(int argc, char *argv[]);
#define main swtpm_ioctl_main
#include "swtpm_ioctl.c"
#undef main

#define DEVICE "/dev/zero"

static struct vtpm_config cfg;
static struct instance inst;
static struct cuse_dev dev;
static char dir[] = "/tmp/vtpm-cusetool-XXXXXX";
static char dir2[] = "/tmp/vtpm-cusetool2-XXXXXX";
static bool have_dir2;
static dev_t fake_rdev;
static int fake_fd = -1;
static unsigned ioctls_seen, reads_seen, writes_seen;

/* ------------------------------------------------------------ the fake driver */

static bool is_fake(int fd)
{
	struct stat st;

	if (fd < 0)
		return false;
	if (fd == fake_fd)
		return true;
	if (syscall(SYS_fstat, fd, &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != fake_rdev)
		return false;
	/* the first operation on a newly opened device file: open() */
	if (cuse_dev_open(&dev) < 0)
		return false;
	fake_fd = fd;
	return true;
}

int ioctl(int fd, unsigned long request, ...)
{
	_Alignas(8) uint8_t out[sizeof(struct ptm_ioc_hdata)];
	unsigned int cmd = (unsigned int)request;
	size_t size = _IOC_SIZE(cmd), outlen = 0;
	va_list ap;
	void *arg;
	int r;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!is_fake(fd))
		return (int)syscall(SYS_ioctl, fd, request, arg);
	ioctls_seen++;
	r = cuse_dev_ioctl(&dev, cmd, arg, (_IOC_DIR(cmd) & _IOC_WRITE) ? size : 0, out,
			   sizeof(out), &outlen);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	if (_IOC_DIR(cmd) & _IOC_READ)
		memcpy(arg, out, outlen < size ? outlen : size);
	return 0;
}

ssize_t read(int fd, void *buf, size_t count)
{
	const uint8_t *data = NULL;
	ssize_t n;

	if (!is_fake(fd))
		return syscall(SYS_read, fd, buf, count);
	reads_seen++;
	n = cuse_dev_read(&dev, count, &data);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	memcpy(buf, data, (size_t)n);
	return n;
}

ssize_t write(int fd, const void *buf, size_t count)
{
	ssize_t n;

	if (!is_fake(fd))
		return syscall(SYS_write, fd, buf, count);
	/* the kernel sends no FUSE request for an empty write */
	if (count == 0)
		return 0;
	writes_seen++;
	n = cuse_dev_write(&dev, buf, count);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return n;
}

int close(int fd)
{
	if (fd >= 0 && fd == fake_fd) {
		cuse_dev_release(&dev);
		fake_fd = -1;
	}
	return (int)syscall(SYS_close, fd);
}

/* ------------------------------------------------------------ set-up */

static void make_instance(const char *path)
{
	char uri[128];

	snprintf(uri, sizeof(uri), "dir://%s", path);
	free(cfg.state_uri);
	cfg.state_uri = strdup(uri);
	cr_assert_eq(instance_init(&inst, &cfg), 0);
	cuse_dev_init(&dev, &inst, &cfg);
}

static bool use_tpm12;

static void setup(void)
{
	struct stat st;

	cr_assert_eq(stat(DEVICE, &st), 0);
	cr_assert(S_ISCHR(st.st_mode));
	fake_rdev = st.st_rdev;
	cr_assert_not_null(mkdtemp(dir));
	config_init(&cfg);
	cfg.tpm2 = !use_tpm12;
	make_instance(dir);
	unsetenv("SWTPM_IOCTL_BUFFERSIZE");
	cr_redirect_stdout();
}

static void teardown(void)
{
	char cmd[160];

	cuse_dev_fini(&dev);
	instance_fini(&inst);
	config_free(&cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
	if (have_dir2) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir2);
		(void)system(cmd);
	}
}

static void fresh_instance(void)
{
	cr_assert_eq(fake_fd, -1, "the tool closed the device");
	cuse_dev_fini(&dev);
	instance_fini(&inst);
	cr_assert_not_null(mkdtemp(dir2));
	have_dir2 = true;
	make_instance(dir2);
}

/* Run the tool (NULL-terminated arguments after the program name). */
static int tool(const char *first, ...)
{
	static char *argv[32];
	const char *a;
	va_list ap;
	int argc = 0, rc, i;

	argv[argc++] = strdup("swtpm_ioctl");
	va_start(ap, first);
	for (a = first; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = strdup(a);
	va_end(ap);
	argv[argc] = NULL;
	optind = 0;
	rc = swtpm_ioctl_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < argc; i++)
		free(argv[i]);
	cr_assert_eq(fake_fd, -1, "the device was closed");
	return rc;
}

/* A TPM command straight to the device (a second opener would be refused
 * while the tool has it open, but the tool is done by now). */
static uint32_t tpm_cmd(const uint8_t *cmd, size_t len)
{
	const uint8_t *rsp;
	ssize_t n;

	cr_assert_eq(cuse_dev_open(&dev), 0);
	cr_assert_eq(cuse_dev_write(&dev, cmd, len), (ssize_t)len);
	n = cuse_dev_read(&dev, 4096, &rsp);
	cr_assert_geq(n, 10);
	cuse_dev_release(&dev);
	return (uint32_t)rsp[6] << 24 | (uint32_t)rsp[7] << 16 | (uint32_t)rsp[8] << 8 | rsp[9];
}

#define TPM_CMD(c) tpm_cmd(c, sizeof(c))

static const uint8_t tpm2_startup_clear[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0 };
static const uint8_t tpm2_nv_define[] = {
	0x80, 0x02, 0x00, 0x00, 0x00, 0x2d, 0x00, 0x00, 0x01, 0x2a, 0x40, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x0e, 0x01, 0x50, 0x00, 0x01, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x02, 0x00,
	0x00, 0x00, 0x08,
};
static const uint8_t tpm2_nv_readpublic[] = { 0x80, 0x01, 0, 0, 0, 0x0e, 0, 0, 0x01, 0x69,
					      0x01, 0x50, 0x00, 0x01 };

static uint32_t define_index(uint32_t index, uint16_t size)
{
	uint8_t cmd[sizeof(tpm2_nv_define)];

	memcpy(cmd, tpm2_nv_define, sizeof(cmd));
	cmd[31] = (uint8_t)(index >> 24);
	cmd[32] = (uint8_t)(index >> 16);
	cmd[33] = (uint8_t)(index >> 8);
	cmd[34] = (uint8_t)index;
	cmd[43] = (uint8_t)(size >> 8);
	cmd[44] = (uint8_t)size;
	return tpm_cmd(cmd, sizeof(cmd));
}

static uint8_t *read_file_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long sz;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	rewind(f);
	buf = malloc(sz > 0 ? (size_t)sz : 1);
	cr_assert_eq(fread(buf, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	*len = (size_t)sz;
	return buf;
}

static uint8_t *dispatcher_blob(uint32_t type, size_t *len)
{
	struct ctrl_req req = { .code = CMD_GET_STATEBLOB, .n = 12, .fd = -1 };
	struct ctrl_rsp rsp;

	req.u.getstate.type = type;
	req.u.getstate.flags = PTM_STATE_FLAG_DECRYPTED;
	ctrl_dispatch(&inst, &req, &rsp);
	cr_assert_eq(rsp.result, 0);
	*len = rsp.payload_len;
	return rsp.payload;
}

/* ------------------------------------------------------------ tests */

TestSuite(cuse_tool, .init = setup, .fini = teardown);

Test(cuse_tool, init_capability_established)
{
	cr_assert_eq(tool("-c", DEVICE, NULL), 0);
	cr_assert_eq(tool("-i", DEVICE, NULL), 0);
	cr_assert(inst.running);
	cr_assert_eq(tool("-e", DEVICE, NULL), 0);
	cr_assert_eq(tool("-h", "some data to measure", DEVICE, NULL), 0);
	cr_assert_eq(tool("-e", DEVICE, NULL), 0);
	cr_assert_eq(tool("-r", "3", DEVICE, NULL), 0);
	cr_assert_eq(tool("-e", DEVICE, NULL), 0);
	cr_assert_stdout_eq_str("ptm capability is 0x16fff\n"
				"tpmEstablished is 0\n"
				"tpmEstablished is 1\n"
				"tpmEstablished is 0\n");
	cr_assert_gt(ioctls_seen, 6);
}

Test(cuse_tool, errors_are_reported)
{
	/* not running: TPM_BAD_ORDINAL */
	cr_assert_eq(tool("-e", DEVICE, NULL), 1);
	cr_assert_eq(tool("-r", "5", DEVICE, NULL), 1);
	cr_assert_eq(tool("-i", DEVICE, NULL), 0);
	/* the tool itself refuses localities beyond 4 (the device's answer to
	 * them is tested in test_cuse_dev) */
	cr_assert_eq(tool("-r", "5", DEVICE, NULL), 1);
	cr_assert_eq(tool("-l", "5", DEVICE, NULL), 1);
	/* TPM 2: locality 0 may not reset the established flag */
	cr_assert_eq(tool("-r", "0", DEVICE, NULL), 1);
	cr_assert_eq(tool("-l", "4", DEVICE, NULL), 0);
	cr_assert_eq(inst.locality, 4);
	cr_assert_stdout_eq_str("");
}

Test(cuse_tool, config_buffersize_info_volatile_stop)
{
	cr_assert_eq(tool("-g", DEVICE, NULL), 0);
	cr_assert_eq(tool("-b", "0", DEVICE, NULL), 0);
	cr_assert_eq(tool("--info", "1", DEVICE, NULL), 0);
	cr_assert_eq(tool("-i", DEVICE, NULL), 0);
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(tool("-v", DEVICE, NULL), 0);
	cr_assert_eq(tool("-C", DEVICE, NULL), 0);
	cr_assert_eq(tool("--lock-storage", "0", DEVICE, NULL), 0);
	cr_assert_eq(tool("--stop", DEVICE, NULL), 0);
	cr_assert_not(inst.running);
	cr_assert_stdout_eq_str("ptm configuration flags: 0x0\n"
				"TPM buffersize: 4096\nminimum size  : 2808\nmaximum size  : 4096\n"
				"{\"TPMSpecification\":{\"family\":\"2.0\",\"level\":0,"
				"\"revision\":164}}\n");
}

Test(cuse_tool, shutdown_ends_the_session)
{
	cr_assert_eq(tool("-i", DEVICE, NULL), 0);
	cr_assert_not(dev.quit);
	cr_assert_eq(tool("-s", DEVICE, NULL), 0);
	cr_assert(dev.quit);
	cr_assert_eq(dev.exit_status, 0);
	cr_assert_not(inst.running);
}

/* --save permanent, then --load permanent into a fresh instance: the index
 * defined before the save is there after the load. */
static void save_load_round_trip(const char *bufsize)
{
	char file[160];
	uint8_t *saved, *want;
	size_t slen, wlen;

	if (bufsize)
		setenv("SWTPM_IOCTL_BUFFERSIZE", bufsize, 1);
	snprintf(file, sizeof(file), "%s/perm.blob", dir);
	cr_assert_eq(tool("-i", DEVICE, NULL), 0);
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(TPM_CMD(tpm2_nv_define), 0);
	/* more than one 3072-byte piece */
	cr_assert_eq(define_index(0x01500010, 2048), 0);
	cr_assert_eq(define_index(0x01500011, 2048), 0);

	cr_assert_eq(tool("--save", "permanent", file, DEVICE, NULL), 0);
	saved = read_file_all(file, &slen);
	want = dispatcher_blob(PTM_BLOB_TYPE_PERMANENT, &wlen);
	cr_assert_gt(slen, PTM_STATE_BLOB_SIZE);
	cr_assert_eq(slen, wlen, "saved %zu bytes, the state is %zu", slen, wlen);
	cr_assert_arr_eq(saved, want, slen);
	free(want);
	free(saved);
	cr_assert_eq(dev.tx, CUSE_TX_CLOSED);
	cr_assert_eq(tool("--stop", DEVICE, NULL), 0);

	fresh_instance();
	cr_assert_eq(tool("--load", "permanent", file, DEVICE, NULL), 0);
	cr_assert_eq(tool("-i", DEVICE, NULL), 0);
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(TPM_CMD(tpm2_nv_readpublic), 0, "the loaded state has the index");
	cr_assert_stdout_eq_str("");
}

Test(cuse_tool, save_and_load_permanent_by_ioctls)
{
	save_load_round_trip(NULL);
	cr_assert_eq(reads_seen, 0, "chunked ioctls only");
	cr_assert_eq(writes_seen, 0);
}

Test(cuse_tool, save_and_load_permanent_by_read_and_write)
{
	save_load_round_trip("1000");
	cr_assert_gt(reads_seen, 0, "the rest of the blob came by read()");
	cr_assert_gt(writes_seen, 1, "the blob went in by write()");
}

Test(cuse_tool, save_and_load_with_one_big_buffer)
{
	save_load_round_trip("100000");
}

Test(cuse_tool, load_while_running_is_refused)
{
	char file[160];
	uint8_t data[100] = { 0 };
	FILE *f;

	snprintf(file, sizeof(file), "%s/x.blob", dir);
	f = fopen(file, "wb");
	cr_assert_not_null(f);
	fwrite(data, 1, sizeof(data), f);
	fclose(f);
	cr_assert_eq(tool("-i", DEVICE, NULL), 0);
	cr_assert_eq(tool("--load", "permanent", file, DEVICE, NULL), 1);
	cr_assert(inst.running);
}

Test(cuse_tool, long_hash_data_in_pieces)
{
	static char data[5001];

	memset(data, 'q', 5000);
	cr_assert_eq(tool("-i", DEVICE, NULL), 0);
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(tool("-h", data, DEVICE, NULL), 0);
	cr_assert_eq(ioctls_seen, 5, "INIT, HASH_START, 2 x HASH_DATA, HASH_END");
	cr_assert_eq(tool("-e", DEVICE, NULL), 0);
	cr_assert_stdout_eq_str("tpmEstablished is 1\n");
}

Test(cuse_tool, save_and_load_volatile)
{
	char file[160];

	snprintf(file, sizeof(file), "%s/vol.blob", dir);
	cr_assert_eq(tool("-i", DEVICE, NULL), 0);
	cr_assert_eq(TPM_CMD(tpm2_startup_clear), 0);
	cr_assert_eq(tool("-h", "x", DEVICE, NULL), 0);
	cr_assert_eq(tool("--save", "volatile", file, DEVICE, NULL), 0);
	cr_assert_eq(tool("-r", "3", DEVICE, NULL), 0);
	cr_assert_eq(tool("--stop", DEVICE, NULL), 0);
	cr_assert_eq(tool("--load", "volatile", file, DEVICE, NULL), 0);
	/* INIT without deleting the volatile state the load brought */
	{
		struct ptm_ioc_init in = { .u.req.init_flags = 0 };
		_Alignas(8) uint8_t out[8];
		size_t outlen;

		cr_assert_eq(cuse_dev_open(&dev), 0);
		cr_assert_eq(cuse_dev_ioctl(&dev, PTM_INIT, &in, sizeof(in), out, sizeof(out),
					    &outlen), 0);
		cr_assert_eq(memcmp(out, "\0\0\0\0", 4), 0);
		cuse_dev_release(&dev);
	}
	cr_assert_eq(tool("-e", DEVICE, NULL), 0);
	cr_assert_stdout_eq_str("tpmEstablished is 1\n", "the flag came back with the state");
}

static void setup12(void)
{
	use_tpm12 = true;
	setup();
}

Test(cuse_tool12, init_capability_save, .init = setup12, .fini = teardown)
{
	char file[160];
	uint8_t *saved, *want;
	size_t slen, wlen;

	snprintf(file, sizeof(file), "%s/perm12.blob", dir);
	cr_assert_eq(tool("-c", DEVICE, NULL), 0);
	cr_assert_eq(tool("-i", DEVICE, NULL), 0);
	cr_assert_eq(tool("-e", DEVICE, NULL), 0);
	cr_assert_eq(tool("-C", DEVICE, NULL), 1, "no cancellation in TPM 1.2");
	cr_assert_eq(tool("--save", "permanent", file, DEVICE, NULL), 0);
	saved = read_file_all(file, &slen);
	want = dispatcher_blob(PTM_BLOB_TYPE_PERMANENT, &wlen);
	cr_assert_eq(slen, wlen);
	cr_assert_arr_eq(saved, want, slen);
	free(saved);
	free(want);
	cr_assert_stdout_eq_str("ptm capability is 0x16fff\ntpmEstablished is 0\n");
}
