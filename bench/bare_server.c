/* vtpm-bare-server: the least a TPM server on a socket can do, as a reference
 * for the bench (`--impl bare=build/bench/vtpm-bare-server`). One thread
 * blocks in read(), hands the command to libtpms (NVRAM in memory: no
 * storage, no durability), and write()s the response: no event loop, no
 * framing checks, no locality, no state files. Whatever per-command time a
 * real server (swtpm, ours) spends beyond this is its own overhead; what this
 * one spends is the transport's and libtpms'. It is not an emulator anyone
 * should run: it exists to show where the floor of a socket server is.
 *
 * It accepts the command line the bench gives every implementation
 * (`socket --tpm2 --tpmstate ... --server type=unixio,path=P|type=tcp,port=N
 * --ctrl type=unixio,path=C --flags ...`) and honours only --server and
 * --ctrl. The TPM is started with TPM2_Startup(SU_CLEAR) right away. A
 * second thread answers the control socket: CMD_SHUTDOWN ends the process,
 * every other command gets TPM_BAD_ORDINAL. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>

#include "instance/memtpm.h"

#define BARE_BUF 4096
#define CMD_SHUTDOWN 3u

static int bare_listen(const char *spec)
{
	const char *path = strstr(spec, "path="), *port = strstr(spec, "port=");
	int fd, one = 1;

	if (strstr(spec, "type=tcp") && port) {
		struct sockaddr_in in = { .sin_family = AF_INET };

		in.sin_port = htons((uint16_t)atoi(port + 5));
		in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&in, sizeof(in)) < 0 || listen(fd, 4) < 0) {
			close(fd);
			return -errno;
		}
		return fd;
	}
	if (path) {
		struct sockaddr_un un = { .sun_family = AF_UNIX };
		size_t n = strcspn(path + 5, ",");

		if (n >= sizeof(un.sun_path))
			return -ENAMETOOLONG;
		memcpy(un.sun_path, path + 5, n);
		unlink(un.sun_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (bind(fd, (struct sockaddr *)&un, sizeof(un)) < 0 || listen(fd, 4) < 0) {
			close(fd);
			return -errno;
		}
		return fd;
	}
	return -EINVAL;
}

static int bare_write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The control socket: one request at a time, 4-byte answers. */
static void *bare_ctrl(void *arg)
{
	int lfd = *(int *)arg;

	for (;;) {
		uint8_t req[64], rsp[4] = { 0 };
		uint32_t code;
		ssize_t n;
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0)
			continue;
		while ((n = read(c, req, sizeof(req))) >= 4) {
			code = (uint32_t)req[0] << 24 | (uint32_t)req[1] << 16 | (uint32_t)req[2] << 8 |
			       req[3];
			if (code == CMD_SHUTDOWN) {
				bare_write_all(c, rsp, sizeof(rsp));
				_exit(0);
			}
			rsp[3] = TPM_BAD_ORDINAL;
			if (bare_write_all(c, rsp, sizeof(rsp)) < 0)
				break;
		}
		close(c);
	}
	return NULL;
}

/* Serve one data connection until it closes. A command is read until its
 * header's length is in (one read() in practice). */
static void bare_serve(int c, unsigned char **rbuf, uint32_t *rtotal)
{
	uint8_t cmd[BARE_BUF];

	for (;;) {
		size_t have = 0, need = 10;
		uint32_t rlen = 0;

		while (have < need) {
			ssize_t n = read(c, cmd + have, sizeof(cmd) - have);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return;
			have += (size_t)n;
			if (have >= 10) {
				need = (size_t)cmd[2] << 24 | (size_t)cmd[3] << 16 |
				       (size_t)cmd[4] << 8 | cmd[5];
				if (need < 10 || need > sizeof(cmd))
					return;
			}
		}
		if (TPMLIB_Process(rbuf, &rlen, rtotal, cmd, (uint32_t)need) != TPM_SUCCESS ||
		    bare_write_all(c, *rbuf, rlen) < 0)
			return;
	}
}

int main(int argc, char **argv)
{
	static const unsigned char startup[] = { 0x80, 0x01, 0, 0, 0, 0x0c,
						 0, 0, 0x01, 0x44, 0, 0 };
	const char *server = NULL, *ctrl = NULL;
	unsigned char *rbuf = NULL;
	uint32_t rtotal = 0, rlen = 0;
	pthread_t th;
	int dfd, cfd;

	for (int i = 1; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "--server"))
			server = argv[++i];
		else if (!strcmp(argv[i], "--ctrl"))
			ctrl = argv[++i];
	}
	if (!server || !ctrl) {
		fprintf(stderr, "usage: %s socket --server type=unixio,path=P|type=tcp,port=N "
				"--ctrl type=unixio,path=C [ignored options]\n", argv[0]);
		return 1;
	}
	if (memtpm_start() != TPM_SUCCESS ||
	    TPMLIB_Process(&rbuf, &rlen, &rtotal, (unsigned char *)startup, sizeof(startup)) !=
		    TPM_SUCCESS) {
		fprintf(stderr, "vtpm-bare-server: libtpms did not start\n");
		return 1;
	}
	dfd = bare_listen(server);
	cfd = bare_listen(ctrl);
	if (dfd < 0 || cfd < 0) {
		fprintf(stderr, "vtpm-bare-server: cannot listen: %s\n",
			strerror(-(dfd < 0 ? dfd : cfd)));
		return 1;
	}
	if (pthread_create(&th, NULL, bare_ctrl, &cfd) != 0)
		return 1;
	for (;;) {
		int c = accept4(dfd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0)
			continue;
		bare_serve(c, &rbuf, &rtotal);
		close(c);
	}
}
