/* swtpm_bios: what a PC BIOS does to a TPM at power-on, sent over the TPM
 * data channel (device, TCP or UnixIO): TPM_Startup, then for TPM 1.2 making
 * physical presence available and the TPM enabled and activated, optionally
 * a self test and giving up physical presence; for TPM 2 TPM2_Startup,
 * optionally a self test and a random platform hierarchy password.
 *
 * Behaves like swtpm 0.7.1's tool: every command travels on a connection of
 * its own, each step runs even if an earlier TPM command failed (the exit
 * status then is 128), transport problems end the run with status 255, a
 * TPM 1.2 that is still deactivated after -ea ends it with 129. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/select.h>
#include <unistd.h>

#include "common.h"

#define EXIT_TPM_ERROR 0x80
#define EXIT_NEEDS_RESET 0x81

/* How long a command may take before we give up (seconds). */
#define TIMEOUT_SHORT 20
#define TIMEOUT_SELFTEST 600

/* TPM 1.2 TPM_Startup types; "none" means no startup command at all. */
enum startup {
	STARTUP_NONE = 0,
	STARTUP_CLEAR = 1,
	STARTUP_STATE = 2,
	STARTUP_DEACTIVATED = 3,
};

/* TSC_PhysicalPresence bits. */
#define PP_LOCK 0x0004
#define PP_PRESENT 0x0008
#define PP_NOTPRESENT 0x0010
#define PP_CMD_ENABLE 0x0020

enum transport_kind { T_DEVICE, T_TCP, T_UNIX };

struct transport {
	enum transport_kind kind;
	const char *path; /* device or UnixIO socket */
	const char *host;
	char service[16];
};

static void versioninfo(void)
{
	printf("TPM emulator BIOS emulator version " TL_SWTPM_VERSION
	       ", Copyright (c) 2015 IBM Corp.\n");
}

static void usage(const char *prg)
{
	versioninfo();
	printf("\n"
	       "Usage: %s [options]\n"
	       "\n"
	       "Performs the TPM initialisation a BIOS does: TPM_Startup (skipped with -n);\n"
	       "for a TPM 1.2 then (skipped with -o) physical presence, enabling and\n"
	       "activating; with -u physical presence is given up at the end.\n"
	       "\n"
	       "Options:\n"
	       "  --tpm-device <dev>      TPM character device; default $TPM_DEVICE or\n"
	       "                          /dev/tpm0\n"
	       "  --tcp [<host>]:[<port>] TPM data channel over TCP; host defaults to\n"
	       "                          127.0.0.1, port to %d\n"
	       "  --unix <path>           TPM data channel over a UnixIO socket\n"
	       "  --tpm2                  the TPM is a TPM 2\n"
	       "  -c                      startup type clear (the default)\n"
	       "  -s                      startup type state\n"
	       "  -d                      startup type deactivated, nothing else; a TPM 2\n"
	       "                          gets no startup at all\n"
	       "  -n                      send no startup command\n"
	       "  -o                      send only the startup command\n"
	       "  -cs                     TPM 1.2: TPM_ContinueSelfTest;\n"
	       "                          TPM 2: TPM2_IncrementalSelfTest\n"
	       "  -ea                     TPM 1.2: make sure the TPM ends up activated; exit\n"
	       "                          with status 129 when that needs a reset\n"
	       "  -u                      TPM 1.2: give up and lock physical presence;\n"
	       "                          TPM 2: set a random platform hierarchy password\n"
	       "  -v                      print the version (and this text)\n"
	       "  -h                      print this text and exit\n"
	       "\n",
	       prg, TL_BIOS_TCP_PORT);
}

/* ------------------------------------------------------------ transport */

static int open_conn(const struct transport *t)
{
	bool waited;
	int fd, gai_err;

	switch (t->kind) {
	case T_DEVICE:
		fd = open(t->path, O_RDWR);
		if (fd < 0)
			fprintf(stderr, "Unable to open device '%s'.\n", t->path);
		return fd;
	case T_TCP:
		fd = tl_tcp_connect(t->host, t->service, &gai_err);
		if (fd == -EADDRNOTAVAIL && gai_err) {
			fprintf(stderr, "getaddrinfo failed on host '%s': %s\n", t->host,
				gai_strerror(gai_err));
			return -1;
		}
		if (fd < 0) {
			fprintf(stderr, "Could not connect using TCP socket.\n");
			return -1;
		}
		return fd;
	case T_UNIX:
	default:
		fd = tl_unix_connect(t->path, -1, &waited);
		if (fd == -ENAMETOOLONG) {
			fprintf(stderr, "Socket path is too long.\n");
			return -1;
		}
		if (fd < 0) {
			fprintf(stderr, "Could not connect using UnixIO socket.\n");
			return -1;
		}
		return fd;
	}
}

/* Send one command on a fresh connection and return its validated response
 * length, or -1 after a message (the caller then exits with 255). */
static ssize_t transfer(const struct transport *t, const uint8_t *cmd, size_t len,
			uint8_t resp[TL_TPM_RESP_MAX], int timeout_s)
{
	struct timeval tv;
	fd_set rd;
	ssize_t n;
	int fd, rc;

	fd = open_conn(t);
	if (fd < 0)
		return -1;
	do
		n = write(fd, cmd, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != len) {
		fprintf(stderr, "Write to file descriptor failed.\n");
		goto fail;
	}
	if (fd >= FD_SETSIZE) {
		fprintf(stderr, "Read from file descriptor failed.\n");
		goto fail;
	}
	FD_ZERO(&rd);
	FD_SET(fd, &rd);
	tv.tv_sec = timeout_s;
	tv.tv_usec = 0;
	do
		rc = select(fd + 1, &rd, NULL, NULL, &tv);
	while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		fprintf(stderr, "TPM did not respond after %d seconds.\n", timeout_s);
		goto fail;
	}
	if (rc < 0) {
		fprintf(stderr, "Read from file descriptor failed.\n");
		goto fail;
	}
	do
		n = read(fd, resp, TL_TPM_RESP_MAX);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		fprintf(stderr, "Read from file descriptor failed.\n");
		goto fail;
	}
	switch (tl_tpm_resp_check(resp, (size_t)n)) {
	case 0:
		break;
	case -EPROTO:
		fprintf(stderr, "Returned packet is too short.\n");
		goto fail;
	default:
		fprintf(stderr, "Malformed response.\n");
		goto fail;
	}
	close(fd);
	return n;
fail:
	close(fd);
	return -1;
}

/* Run one command; a TPM error is reported (to `out`) and recorded in *ret.
 * Returns the response length or -1 on a transport failure. */
static ssize_t run(const struct transport *t, const uint8_t *cmd, size_t len, int timeout_s,
		   uint8_t resp[TL_TPM_RESP_MAX], FILE *out, const char *what, int *ret)
{
	ssize_t n = transfer(t, cmd, len, resp, timeout_s);
	uint32_t rc;

	if (n < 0)
		return -1;
	rc = tl_tpm_resp_code(resp);
	if (rc != 0) {
		fprintf(out, "%s returned error code 0x%08x\n", what, rc);
		*ret = EXIT_TPM_ERROR;
	}
	return n;
}

/* ------------------------------------------------------------ TPM 1.2 */

/* Header of a TPM 1.2 command: TPM_TAG_RQU_COMMAND, size, ordinal. */
static size_t tpm12_hdr(uint8_t *b, size_t size, uint32_t ordinal)
{
	b[0] = 0x00;
	b[1] = 0xc1;
	tl_put32(b + 2, (uint32_t)size, true);
	tl_put32(b + 6, ordinal, true);
	return 10;
}

static ssize_t tpm12_startup(const struct transport *t, enum startup type, int *ret)
{
	uint8_t cmd[12], resp[TL_TPM_RESP_MAX];
	char what[32];

	tpm12_hdr(cmd, sizeof(cmd), 0x99); /* TPM_ORD_Startup */
	cmd[10] = 0;
	cmd[11] = (uint8_t)type;
	snprintf(what, sizeof(what), "TPM_Startup(0x%02x)", (unsigned int)type);
	return run(t, cmd, sizeof(cmd), TIMEOUT_SHORT, resp, stderr, what, ret);
}

static ssize_t tpm12_pp(const struct transport *t, uint16_t bits, const char *what, int *ret)
{
	uint8_t cmd[12], resp[TL_TPM_RESP_MAX];

	tpm12_hdr(cmd, sizeof(cmd), 0x4000000a); /* TSC_ORD_PhysicalPresence */
	cmd[10] = (uint8_t)(bits >> 8);
	cmd[11] = (uint8_t)bits;
	return run(t, cmd, sizeof(cmd), TIMEOUT_SHORT, resp, stderr, what, ret);
}

static ssize_t tpm12_simple(const struct transport *t, uint32_t ordinal, int timeout_s,
			    const char *what, int *ret)
{
	uint8_t cmd[10], resp[TL_TPM_RESP_MAX];

	tpm12_hdr(cmd, sizeof(cmd), ordinal);
	return run(t, cmd, sizeof(cmd), timeout_s, resp, stderr, what, ret);
}

static int tpm12_sequence(const struct transport *t, enum startup type, bool startup_only,
			  bool selftest, bool ensure_active, bool unassert_pp)
{
	uint8_t cmd[22], resp[TL_TPM_RESP_MAX];
	bool need_reset = false;
	int ret = 0;
	ssize_t n;

	if (type != STARTUP_NONE && tpm12_startup(t, type, &ret) < 0)
		return -1;

	if (!startup_only) {
		if (tpm12_pp(t, PP_CMD_ENABLE, "TSC_PhysicalPresence(CMD_ENABLE)", &ret) < 0)
			return -1;
		if (tpm12_pp(t, PP_PRESENT, "TSC_PhysicalPresence(PRESENT)", &ret) < 0)
			return -1;
		if (ensure_active) {
			/* TPM_GetCapability(TPM_CAP_FLAG, TPM_CAP_FLAG_PERMANENT) */
			tpm12_hdr(cmd, sizeof(cmd), 0x65);
			tl_put32(cmd + 10, 4, true);
			tl_put32(cmd + 14, 4, true);
			tl_put32(cmd + 18, 0x108, true);
			n = run(t, cmd, sizeof(cmd), TIMEOUT_SHORT, resp, stderr,
				"TPM_GetCapability()", &ret);
			if (n < 0)
				return -1;
			/* Checked whatever the result code said, like 0.7.1. */
			need_reset = tl_tpm12_perm_deactivated(resp, (size_t)n);
		}
		if (tpm12_simple(t, 0x6f, TIMEOUT_SHORT, "TPM_PhysicalEnable", &ret) < 0)
			return -1;
		/* TPM_PhysicalSetDeactivated(FALSE) */
		tpm12_hdr(cmd, 11, 0x72);
		cmd[10] = 0;
		if (run(t, cmd, 11, TIMEOUT_SHORT, resp, stderr, "TPM_PhysicalSetDeactivated",
			&ret) < 0)
			return -1;
		if (need_reset) {
			/* Activation takes effect only after the next TPM_Init. */
			printf("TPM requires a reset\n");
			return EXIT_NEEDS_RESET;
		}
	}

	if (selftest &&
	    tpm12_simple(t, 0x53, TIMEOUT_SELFTEST, "TPM_ContinueSelfTest", &ret) < 0)
		return -1;

	if (unassert_pp) {
		if (tpm12_pp(t, PP_CMD_ENABLE, "TSC_PhysicalPresence(CMD_ENABLE)", &ret) < 0)
			return -1;
		if (tpm12_pp(t, PP_NOTPRESENT | PP_LOCK, "TSC_PhysicalPresence(NOT_PRESENT|LOCK)",
			     &ret) < 0)
			return -1;
	}
	return ret;
}

/* ------------------------------------------------------------ TPM 2 */

static int random_bytes(uint8_t *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int fd;

	while (got < len) {
		n = getrandom(buf + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
	if (got == len)
		return 0;
	/* No getrandom() (old kernel, seccomp): the device 0.7.1 uses. */
	fd = open("/dev/urandom", O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int tpm2_sequence(const struct transport *t, enum startup type, bool selftest,
			 bool set_platform_auth)
{
	/* TPM2_Startup(SU_CLEAR / SU_STATE) */
	uint8_t startup[12] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0 };
	/* TPM2_IncrementalSelfTest({TPM_ALG_SHA1}) */
	static const uint8_t selftest_cmd[16] = { 0x80, 0x01, 0, 0, 0, 16, 0, 0,
						  0x01, 0x42, 0, 0, 0, 1,    0, 0x04 };
	uint8_t hca[TL_TPM2_HCA_LEN], auth[20], resp[TL_TPM_RESP_MAX];
	int ret = 0;

	if (type == STARTUP_CLEAR || type == STARTUP_STATE) {
		startup[11] = type == STARTUP_STATE ? 1 : 0;
		if (run(t, startup, sizeof(startup), TIMEOUT_SHORT, resp, stdout, "TPM2_Startup",
			&ret) < 0)
			return -1;
	}
	/* The message's spelling is 0.7.1's. */
	if (selftest && run(t, selftest_cmd, sizeof(selftest_cmd), TIMEOUT_SHORT, resp, stdout,
			    "TPM2_ImcrementalSelfTest", &ret) < 0)
		return -1;
	if (set_platform_auth) {
		if (random_bytes(auth, sizeof(auth)) < 0) {
			fprintf(stderr, "Could not get random bytes.\n");
			return -1;
		}
		tl_tpm2_hca_cmd(hca, auth);
		if (run(t, hca, sizeof(hca), TIMEOUT_SHORT, resp, stdout,
			"TPM2_HierarchyChangeAuth", &ret) < 0)
			return -1;
	}
	return ret;
}

/* ------------------------------------------------------------ main */

int main(int argc, char *argv[])
{
	/* Order matters for glibc's "ambiguous" message (-t, -tp). */
	static const struct option longopts[] = {
		{ "tpm-device", required_argument, NULL, 'D' },
		{ "tcp", required_argument, NULL, 'T' },
		{ "unix", required_argument, NULL, 'U' },
		{ "tpm2", no_argument, NULL, '2' },
		{ "c", no_argument, NULL, 'c' },
		{ "d", no_argument, NULL, 'd' },
		{ "h", no_argument, NULL, 'h' },
		{ "n", no_argument, NULL, 'n' },
		{ "o", no_argument, NULL, 'o' },
		{ "s", no_argument, NULL, 's' },
		{ "u", no_argument, NULL, 'u' },
		{ "v", no_argument, NULL, 'v' },
		{ "cs", no_argument, NULL, 'C' },
		{ "ea", no_argument, NULL, 'E' },
		{ NULL, 0, NULL, 0 },
	};
	enum startup type = STARTUP_CLEAR;
	bool tpm2 = false, only_startup = false, selftest = false, ensure_active = false;
	bool unassert_pp = false;
	const char *dev = NULL, *unix_path = NULL, *env;
	struct tl_tcp_arg tcp = { 0 };
	struct transport t;
	int opt, ret;

	while ((opt = getopt_long_only(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'D':
			dev = optarg;
			break;
		case 'T':
			if (tl_tcp_option(optarg, TL_BIOS_TCP_PORT, &tcp) < 0)
				return EXIT_FAILURE;
			break;
		case 'U':
			unix_path = optarg;
			break;
		case '2':
			tpm2 = true;
			break;
		case 'c':
			type = STARTUP_CLEAR;
			break;
		case 's':
			type = STARTUP_STATE;
			break;
		case 'd':
			type = STARTUP_DEACTIVATED;
			break;
		case 'n':
			type = STARTUP_NONE;
			break;
		case 'o':
			only_startup = true;
			break;
		case 'C':
			selftest = true;
			break;
		case 'E':
			ensure_active = true;
			break;
		case 'u':
			unassert_pp = true;
			break;
		case 'h':
			usage(argv[0]);
			free(tcp.host);
			return EXIT_SUCCESS;
		case 'v':
			/* Listed as "version", but 0.7.1 prints the usage and fails. */
		default:
			usage(argv[0]);
			free(tcp.host);
			return EXIT_FAILURE;
		}
	}

	memset(&t, 0, sizeof(t));
	if (dev) {
		t.kind = T_DEVICE;
		t.path = dev;
	} else if (tcp.host) {
		t.kind = T_TCP;
		t.host = tcp.host;
		tl_service_bios(tcp.port, t.service);
	} else if (unix_path) {
		t.kind = T_UNIX;
		t.path = unix_path;
	} else if (getenv("TCSD_USE_TCP_DEVICE")) {
		/* The TrouSerS convention; any value, even "0", selects TCP. */
		t.kind = T_TCP;
		env = getenv("TCSD_TCP_DEVICE_HOSTNAME");
		t.host = env ? env : "localhost";
		env = getenv("TCSD_TCP_DEVICE_PORT");
		tl_service_bios(env ? atoi(env) : TL_BIOS_TCP_PORT, t.service);
	} else {
		t.kind = T_DEVICE;
		env = getenv("TPM_DEVICE");
		t.path = env ? env : "/dev/tpm0";
	}

	signal(SIGPIPE, SIG_IGN);

	if (tpm2)
		ret = tpm2_sequence(&t, type, selftest, unassert_pp);
	else
		ret = tpm12_sequence(&t, type, only_startup || type == STARTUP_DEACTIVATED,
				     selftest, ensure_active, unassert_pp);
	free(tcp.host);
	/* -1 (transport failure) becomes exit status 255. */
	return ret;
}
