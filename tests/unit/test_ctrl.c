/* Unit tests of the ctrl dispatcher against real libtpms: state rules, length
 * checks in swtpm's order, and each command's effect on the TPM and the store. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "instance/config.h"
#include "instance/ctrl.h"
#include "instance/instance.h"

static struct vtpm_config cfg;
static struct instance inst;
static char dir[] = "/tmp/vtpm-ctrl-XXXXXX";
static char uri[64];
static int hook_fd = -1;
static int hook_ret;

static int hook_set_datafd(void *ctx, int fd)
{
	if (hook_ret)
		return hook_ret;
	if (fd < 0)
		return -EINVAL;
	hook_fd = fd;
	return 0;
}

static void setup_version(bool tpm2)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(uri, sizeof(uri), "dir://%s", dir);
	config_init(&cfg);
	cfg.tpm2 = tpm2;
	cfg.state_uri = strdup(uri);
	cr_assert_eq(instance_init(&inst, &cfg), 0);
	inst.hooks.caps = 0x1ffff;
	inst.hooks.set_datafd = hook_set_datafd;
}

static void setup2(void)
{
	setup_version(true);
}

static void setup12(void)
{
	setup_version(false);
}

static void teardown(void)
{
	char cmd[128];

	instance_fini(&inst);
	config_free(&cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

/* Run one request with `n` body bytes (fields already set). */
static struct ctrl_rsp run(uint32_t code, size_t n, struct ctrl_req *in)
{
	struct ctrl_req req;
	struct ctrl_rsp rsp;

	if (in)
		req = *in;
	else
		memset(&req, 0, sizeof(req));
	req.code = code;
	req.n = n;
	if (!in)
		req.fd = -1;
	ctrl_dispatch(&inst, &req, &rsp);
	return rsp;
}

static uint32_t result(uint32_t code, size_t n, struct ctrl_req *in)
{
	struct ctrl_rsp rsp = run(code, n, in);

	ctrl_rsp_free(&rsp);
	return rsp.result;
}

static void init_tpm(void)
{
	struct ctrl_req req = { .fd = -1, .u.init_flags = 0 };

	cr_assert_eq(result(CMD_INIT, 4, &req), 0);
	cr_assert(inst.running);
	cr_assert_eq(store_flush_sync(&inst.store), 0);
}

static bool file_exists(const char *name)
{
	char p[128];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0;
}

/* TPM2_Startup(SU_CLEAR) through the data path; returns the response code. */
static uint32_t tpm2_startup(void)
{
	static const uint8_t cmd[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0 };
	const uint8_t *rsp;
	size_t len;

	cr_assert_eq(instance_process(&inst, cmd, sizeof(cmd), &rsp, &len), 0);
	cr_assert_geq(len, 10);
	return (uint32_t)rsp[6] << 24 | (uint32_t)rsp[7] << 16 | (uint32_t)rsp[8] << 8 | rsp[9];
}

TestSuite(ctrl, .init = setup2, .fini = teardown);

Test(ctrl, capability_comes_from_transport)
{
	struct ctrl_rsp rsp = run(CMD_GET_CAPABILITY, 0, NULL);

	cr_assert(rsp.full);
	cr_assert_eq(rsp.u.caps, 0x1ffff);
}

Test(ctrl, running_required_before_length_checks)
{
	static const uint32_t cmds[] = { CMD_GET_TPMESTABLISHED, CMD_HASH_START, CMD_HASH_DATA,
					 CMD_HASH_END, CMD_CANCEL_TPM_CMD, CMD_STORE_VOLATILE,
					 CMD_RESET_TPMESTABLISHED, CMD_GET_STATEBLOB };
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cr_assert_eq(result(cmds[i], 0, NULL), CTRL_RES_BAD_ORDINAL, "cmd %u", cmds[i]);
		cr_assert_eq(result(cmds[i], 77, NULL), CTRL_RES_BAD_ORDINAL, "cmd %u", cmds[i]);
	}
}

Test(ctrl, init_length_is_exact)
{
	cr_assert_eq(result(CMD_INIT, 0, NULL), CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(result(CMD_INIT, 3, NULL), CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(result(CMD_INIT, 5, NULL), CTRL_RES_BAD_PARAMETER);
	cr_assert_not(inst.running);
}

Test(ctrl, init_manufactures_and_writes_permall_durably)
{
	cr_assert_not(file_exists("tpm2-00.permall"));
	init_tpm();
	cr_assert(file_exists("tpm2-00.permall"));
	cr_assert(file_exists(".lock"));
	cr_assert_not(file_exists("TMP2-00.permall"));
}

Test(ctrl, no_arg_commands_refuse_a_body)
{
	init_tpm();
	cr_assert_eq(result(CMD_STORE_VOLATILE, 1, NULL), CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(result(CMD_HASH_START, 1, NULL), CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(result(CMD_GET_TPMESTABLISHED, 1, NULL), CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(result(CMD_STOP, 1, NULL), CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(result(CMD_SHUTDOWN, 1, NULL), CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(result(CMD_GET_CONFIG, 1, NULL), CTRL_RES_BAD_PARAMETER);
	cr_assert(inst.running);
}

Test(ctrl, set_locality_rules)
{
	struct ctrl_req req = { .fd = -1 };

	cr_assert_eq(result(CMD_SET_LOCALITY, 0, NULL), CTRL_RES_BAD_PARAMETER);
	req.u.loc = 5;
	cr_assert_eq(result(CMD_SET_LOCALITY, 1, &req), CTRL_RES_BAD_LOCALITY);
	req.u.loc = 3;
	cr_assert_eq(result(CMD_SET_LOCALITY, 4, &req), 0, "QEMU sends 4 body bytes");
	cr_assert_eq(inst.locality, 3);
	req.u.loc = 4;
	cr_assert_eq(result(CMD_SET_LOCALITY, 1, &req), 0);
	cr_assert_eq(inst.locality, 4);
}

Test(ctrl, reject_locality_4)
{
	struct ctrl_req req = { .fd = -1, .u.loc = 4 };

	cfg.reject_locality4 = true;
	cr_assert_eq(result(CMD_SET_LOCALITY, 1, &req), CTRL_RES_BAD_LOCALITY);
	cr_assert_eq(inst.locality, 0);
}

Test(ctrl, hash_sequence_sets_established_and_reset_needs_locality_3)
{
	static const uint8_t data[] = "abc";
	struct ctrl_req req = { .fd = -1 };
	struct ctrl_rsp rsp;

	init_tpm();
	cr_assert_eq(result(CMD_HASH_START, 0, NULL), 0);
	req.u.hash.length = 3;
	req.u.hash.data = data;
	req.u.hash.datalen = 3;
	cr_assert_eq(result(CMD_HASH_DATA, 7, &req), 0);
	cr_assert_eq(result(CMD_HASH_END, 0, NULL), 0);
	rsp = run(CMD_GET_TPMESTABLISHED, 0, NULL);
	cr_assert_eq(rsp.result, 0);
	cr_assert_eq(rsp.u.est_bit, 1);
	req.u.loc = 0;
	cr_assert_eq(result(CMD_RESET_TPMESTABLISHED, 1, &req), CTRL_RES_BAD_LOCALITY);
	req.u.loc = 5;
	cr_assert_eq(result(CMD_RESET_TPMESTABLISHED, 1, &req), CTRL_RES_BAD_LOCALITY);
	req.u.loc = 3;
	cr_assert_eq(result(CMD_RESET_TPMESTABLISHED, 4, &req), 0);
	cr_assert_eq(inst.locality, 0, "the locality switch is temporary");
	rsp = run(CMD_GET_TPMESTABLISHED, 0, NULL);
	cr_assert_eq(rsp.u.est_bit, 0);
}

Test(ctrl, hash_data_length_mismatch_is_refused)
{
	static const uint8_t data[] = "abcdef";
	struct ctrl_req req = { .fd = -1 };

	init_tpm();
	cr_assert_eq(result(CMD_HASH_START, 0, NULL), 0);
	cr_assert_eq(result(CMD_HASH_DATA, 2, NULL), CTRL_RES_BAD_PARAMETER);
	req.u.hash.length = 3;
	req.u.hash.data = data;
	req.u.hash.datalen = 6;
	cr_assert_eq(result(CMD_HASH_DATA, 10, &req), CTRL_RES_BAD_PARAMETER);
}

Test(ctrl, get_stateblob_permanent_with_offsets)
{
	struct ctrl_req req = { .fd = -1 };
	struct ctrl_rsp rsp, rsp2;
	static const uint8_t hdr[6] = { 0x02, 0x01, 0x00, 0x0a, 0x00, 0x04 };

	init_tpm();
	cr_assert_eq(result(CMD_GET_STATEBLOB, 11, NULL), CTRL_RES_BAD_PARAMETER);
	req.u.getstate.type = PTM_BLOB_TYPE_PERMANENT;
	rsp = run(CMD_GET_STATEBLOB, 12, &req);
	cr_assert_eq(rsp.result, 0);
	cr_assert(rsp.full);
	cr_assert_gt(rsp.payload_len, 1000);
	cr_assert_eq(rsp.u.blob.totlength, rsp.payload_len);
	cr_assert_eq(rsp.u.blob.length, rsp.payload_len);
	cr_assert_arr_eq(rsp.payload, hdr, sizeof(hdr));
	req.u.getstate.offset = 1000;
	rsp2 = run(CMD_GET_STATEBLOB, 12, &req);
	cr_assert_eq(rsp2.u.blob.totlength, rsp.payload_len - 1000);
	cr_assert_arr_eq(rsp2.payload, rsp.payload + 1000, rsp2.payload_len);
	ctrl_rsp_free(&rsp2);
	req.u.getstate.offset = (uint32_t)rsp.payload_len + 5;
	rsp2 = run(CMD_GET_STATEBLOB, 12, &req);
	cr_assert_eq(rsp2.result, 0);
	cr_assert_eq(rsp2.u.blob.totlength, 0);
	cr_assert_eq(rsp2.payload_len, 0);
	ctrl_rsp_free(&rsp);
}

Test(ctrl, get_stateblob_missing_and_unknown)
{
	struct ctrl_req req = { .fd = -1 };
	struct ctrl_rsp rsp;

	init_tpm();
	req.u.getstate.type = PTM_BLOB_TYPE_SAVESTATE;
	rsp = run(CMD_GET_STATEBLOB, 12, &req);
	cr_assert_eq(rsp.result, CTRL_RES_RETRY);
	cr_assert(rsp.full, "the 16-byte header still goes out");
	cr_assert_eq(rsp.payload_len, 0);
	req.u.getstate.type = 9;
	rsp = run(CMD_GET_STATEBLOB, 12, &req);
	cr_assert_eq(rsp.result, CTRL_RES_FAIL);
}

Test(ctrl, volatile_blob_deletes_the_file)
{
	struct ctrl_req req = { .fd = -1 };
	struct ctrl_rsp rsp;

	init_tpm();
	cr_assert_eq(tpm2_startup(), 0);
	cr_assert_eq(result(CMD_STORE_VOLATILE, 0, NULL), 0);
	cr_assert_eq(store_flush_sync(&inst.store), 0);
	cr_assert(file_exists("tpm2-00.volatilestate"));
	req.u.getstate.type = PTM_BLOB_TYPE_VOLATILE;
	rsp = run(CMD_GET_STATEBLOB, 12, &req);
	cr_assert_eq(rsp.result, 0);
	cr_assert_gt(rsp.payload_len, 100);
	ctrl_rsp_free(&rsp);
	cr_assert_eq(store_flush_sync(&inst.store), 0);
	cr_assert_not(file_exists("tpm2-00.volatilestate"));
}

Test(ctrl, set_stateblob_rules_and_round_trip)
{
	struct ctrl_req req = { .fd = -1 };
	struct ctrl_rsp blob;
	static const uint8_t bad_ver[10] = { 2, 3, 0, 10, 0, 4, 0, 0, 0, 10 };
	static const uint8_t bad_hdr[10] = { 2, 1, 0, 11, 0, 4, 0, 0, 0, 10 };
	static const uint8_t bad_len[10] = { 2, 1, 0, 10, 0, 4, 0, 0, 0, 11 };
	static const uint8_t mig_enc[10] = { 2, 1, 0, 10, 0, 6, 0, 0, 0, 10 };
	static const uint8_t mig_enc16[16] = { 2, 1, 0, 10, 0, 6, 0, 0, 0, 16, 0, 5, 0, 0, 0, 0 };

	init_tpm();
	req.u.getstate.type = PTM_BLOB_TYPE_PERMANENT;
	blob = run(CMD_GET_STATEBLOB, 12, &req);
	cr_assert_eq(blob.result, 0);

	memset(&req, 0, sizeof(req));
	req.fd = -1;
	req.u.setstate.type = PTM_BLOB_TYPE_PERMANENT;
	req.u.setstate.data = blob.payload;
	req.u.setstate.length = (uint32_t)blob.payload_len;
	req.u.setstate.datalen = blob.payload_len;
	cr_assert_eq(result(CMD_SET_STATEBLOB, 12 + blob.payload_len, &req), CTRL_RES_BAD_ORDINAL);
	cr_assert_eq(result(CMD_STOP, 0, NULL), 0);
	cr_assert_eq(result(CMD_SET_STATEBLOB, 11, &req), CTRL_RES_BAD_PARAMETER);

#define SET(buf, want)                                                                   \
	do {                                                                             \
		req.u.setstate.data = buf;                                               \
		req.u.setstate.length = sizeof(buf);                                     \
		req.u.setstate.datalen = sizeof(buf);                                    \
		cr_assert_eq(result(CMD_SET_STATEBLOB, 12 + sizeof(buf), &req), want);   \
	} while (0)
	SET(bad_ver, CTRL_RES_BAD_VERSION);
	SET(bad_hdr, CTRL_RES_BAD_DATASIZE);
	SET(bad_len, CTRL_RES_BAD_PARAMETER);
	SET(mig_enc16, CTRL_RES_KEYNOTFOUND);
	SET(mig_enc, 0); /* header only: "empty" */
	req.u.setstate.type = 7;
	SET(bad_ver, CTRL_RES_BAD_PARAMETER);
	req.u.setstate.type = PTM_BLOB_TYPE_PERMANENT;

	/* more bytes than the declared length */
	req.u.setstate.data = blob.payload;
	req.u.setstate.length = (uint32_t)blob.payload_len - 1;
	req.u.setstate.datalen = blob.payload_len;
	cr_assert_eq(result(CMD_SET_STATEBLOB, 12 + blob.payload_len, &req),
		     CTRL_RES_BAD_PARAMETER);

	req.u.setstate.length = (uint32_t)blob.payload_len;
	cr_assert_eq(result(CMD_SET_STATEBLOB, 12 + blob.payload_len, &req), 0);
	req.u.init_flags = PTM_INIT_FLAG_DELETE_VOLATILE;
	cr_assert_eq(result(CMD_INIT, 4, &req), 0);
	cr_assert(inst.running);
	ctrl_rsp_free(&blob);
}

Test(ctrl, buffersize)
{
	struct ctrl_req req = { .fd = -1 };
	struct ctrl_rsp rsp;

	cr_assert_eq(result(CMD_SET_BUFFERSIZE, 3, NULL), CTRL_RES_BAD_PARAMETER);
	rsp = run(CMD_SET_BUFFERSIZE, 4, &req);
	cr_assert_eq(rsp.result, 0);
	cr_assert_eq(rsp.u.bufsize.size, 4096);
	cr_assert_eq(rsp.u.bufsize.min, 2808);
	cr_assert_eq(rsp.u.bufsize.max, 4096);
	req.u.buffersize = 100;
	rsp = run(CMD_SET_BUFFERSIZE, 4, &req);
	cr_assert_eq(rsp.u.bufsize.size, 2808, "clamped to the minimum");
	req.u.buffersize = 3000;
	rsp = run(CMD_SET_BUFFERSIZE, 4, &req);
	cr_assert_eq(rsp.u.bufsize.size, 3000);
	init_tpm();
	cr_assert_eq(result(CMD_SET_BUFFERSIZE, 4, &req), CTRL_RES_BAD_ORDINAL);
	req.u.buffersize = 0;
	cr_assert_eq(result(CMD_SET_BUFFERSIZE, 4, &req), 0, "query allowed while running");
}

Test(ctrl, get_info)
{
	static const char spec[] = "{\"TPMSpecification\":{\"family\":\"2.0\",\"level\":0,"
				   "\"revision\":164}}";
	struct ctrl_req req = { .fd = -1 };
	struct ctrl_rsp rsp;

	cr_assert_eq(result(CMD_GET_INFO, 15, &req), CTRL_RES_BAD_PARAMETER);
	rsp = run(CMD_GET_INFO, 16, &req);
	cr_assert_eq(rsp.result, 0);
	cr_assert_eq(rsp.u.info.totlength, 3);
	cr_assert_arr_eq(rsp.payload, "{}", 3);
	ctrl_rsp_free(&rsp);
	req.u.getinfo.flags = 1;
	rsp = run(CMD_GET_INFO, 16, &req);
	cr_assert_eq(rsp.u.info.totlength, sizeof(spec));
	cr_assert_str_eq((char *)rsp.payload, spec);
	ctrl_rsp_free(&rsp);
	req.u.getinfo.offset = 10;
	rsp = run(CMD_GET_INFO, 16, &req);
	cr_assert_eq(rsp.u.info.length, sizeof(spec) - 10);
	cr_assert_str_eq((char *)rsp.payload, spec + 10);
	ctrl_rsp_free(&rsp);
	req.u.getinfo.offset = sizeof(spec) - 1;
	cr_assert_eq(result(CMD_GET_INFO, 16, &req), CTRL_RES_BAD_PARAMETER);
}

Test(ctrl, get_config_and_unknown)
{
	struct ctrl_rsp rsp = run(CMD_GET_CONFIG, 0, NULL);

	cr_assert_eq(rsp.result, 0);
	cr_assert(rsp.full);
	cr_assert_eq(rsp.u.config_flags, 0);
	cr_assert_eq(result(0x99, 0, NULL), CTRL_RES_BAD_ORDINAL);
	cr_assert_eq(result(0x00, 0, NULL), CTRL_RES_BAD_ORDINAL);
}

Test(ctrl, set_datafd)
{
	struct ctrl_req req = { .fd = -1 };
	int fds[2];

	cr_assert_eq(result(CMD_SET_DATAFD, 0, &req), CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(pipe(fds), 0);
	req.fd = fds[0];
	{
		struct ctrl_rsp rsp;

		req.code = CMD_SET_DATAFD;
		ctrl_dispatch(&inst, &req, &rsp);
		cr_assert_eq(rsp.result, 0);
		cr_assert_eq(req.fd, -1, "the transport took the fd");
		cr_assert_eq(hook_fd, fds[0]);
	}
	hook_ret = -EBUSY;
	req.fd = fds[1];
	cr_assert_eq(result(CMD_SET_DATAFD, 0, &req), CTRL_RES_IOERROR);
}

Test(ctrl, stop_and_shutdown)
{
	struct ctrl_rsp rsp;

	init_tpm();
	cr_assert_eq(result(CMD_STOP, 0, NULL), 0);
	cr_assert_not(inst.running);
	cr_assert_eq(result(CMD_STOP, 0, NULL), 0, "repeated STOP is fine");
	rsp = run(CMD_SHUTDOWN, 0, NULL);
	cr_assert_eq(rsp.result, 0);
	cr_assert(rsp.exit_after);
}

Test(ctrl, auto_shutdown_makes_reinit_resumable)
{
	struct ctrl_req req = { .fd = -1, .u.init_flags = 0 };

	init_tpm();
	cr_assert_eq(tpm2_startup(), 0);
	/* CMD_INIT on a running TPM 2 first sends TPM2_Shutdown(SU_STATE) */
	cr_assert_eq(result(CMD_INIT, 4, &req), 0);
	{
		static const uint8_t st[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 1 };
		const uint8_t *rsp;
		size_t len;

		cr_assert_eq(instance_process(&inst, st, sizeof(st), &rsp, &len), 0);
		cr_assert_eq(rsp[9], 0, "Startup(SU_STATE) after an orderly shutdown: 0x%02x",
			     rsp[9]);
	}
}

Test(ctrl, cancel_tpm2)
{
	init_tpm();
	cr_assert_eq(result(CMD_CANCEL_TPM_CMD, 0, NULL), 0);
}

Test(ctrl, lock_storage_waits_then_fails)
{
	struct ctrl_req req = { .fd = -1, .u.retries = 3 };
	int pfd[2];
	pid_t pid;
	char c;

	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	if (pid == 0) {
		/* a second "instance" holding the directory lock */
		char p[128];
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd;

		snprintf(p, sizeof(p), "%s/.lock", dir);
		fd = open(p, O_WRONLY | O_CREAT, 0660);
		if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
			_exit(1);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		sleep(5);
		_exit(0);
	}
	cr_assert_eq(read(pfd[0], &c, 1), 1);
	cr_assert_eq(result(CMD_LOCK_STORAGE, 3, &req), CTRL_RES_BAD_PARAMETER);
	cr_assert_eq(result(CMD_LOCK_STORAGE, 4, &req), CTRL_RES_FAIL);
	req.u.init_flags = 0;
	cr_assert_neq(result(CMD_INIT, 4, &req), 0, "INIT cannot lock either");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	req.u.retries = 3;
	cr_assert_eq(result(CMD_LOCK_STORAGE, 4, &req), 0);
}

Test(ctrl12, cancel_fails_on_tpm12, .init = setup12, .fini = teardown)
{
	init_tpm();
	cr_assert_eq(result(CMD_CANCEL_TPM_CMD, 0, NULL), CTRL_RES_FAIL);
	cr_assert(file_exists("tpm-00.permall"));
}

Test(ctrl12, not_initialised_reply_tpm12, .init = setup12, .fini = teardown)
{
	static const uint8_t cmd[] = { 0x00, 0xc1, 0, 0, 0, 0x0a, 0, 0, 0, 0xf1 };
	static const uint8_t want[] = { 0x00, 0xc4, 0, 0, 0, 0x0a, 0, 0, 0, 0x09 };
	const uint8_t *rsp;
	size_t len;

	cr_assert_eq(instance_process(&inst, cmd, sizeof(cmd), &rsp, &len), 0);
	cr_assert_eq(len, 10);
	cr_assert_arr_eq(rsp, want, 10);
}

Test(ctrl, data_path_rules)
{
	static const uint8_t readclock[] = { 0x80, 0x01, 0, 0, 0, 0x0a, 0, 0, 0x01, 0x81 };
	static const uint8_t fatal[] = { 0x80, 0x01, 0, 0, 0, 0x0a, 0, 0, 0x01, 0x01 };
	static const uint8_t setloc3[] = { 0x80, 0x01, 0, 0, 0, 0x0b, 0x20, 0, 0x10, 0, 3 };
	static const uint8_t setloc_short[] = { 0x80, 0x01, 0, 0, 0, 0x0a, 0x20, 0, 0x10, 0 };
	const uint8_t *rsp;
	size_t len;

	cr_assert_eq(instance_process(&inst, readclock, sizeof(readclock), &rsp, &len), 0);
	cr_assert_arr_eq(rsp, fatal, 10, "not initialised");
	init_tpm();
	cr_assert_eq(instance_process(&inst, setloc3, sizeof(setloc3), &rsp, &len), 0);
	cr_assert_arr_eq(rsp, fatal, 10, "SetLocality without allow-set-locality is fatal");
	cfg.allow_set_locality = true;
	cr_assert_eq(instance_process(&inst, setloc3, sizeof(setloc3), &rsp, &len), 0);
	cr_assert_eq(rsp[9], 0);
	cr_assert_eq(inst.locality, 3);
	cr_assert_eq(instance_process(&inst, setloc_short, sizeof(setloc_short), &rsp, &len), 0);
	cr_assert_eq(rsp[9], 0x9a);
	cr_assert_eq(instance_process(&inst, readclock, 5, &rsp, &len), 0);
	cr_assert_eq(rsp[9], 0x9a, "short command");
}
