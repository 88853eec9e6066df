/* swtpm_ioctl: send one control command to a TPM emulator, either over its
 * control socket (--tcp / --unix; big-endian framing) or as an ioctl on a CUSE
 * character device (host byte order).  Command line, output lines, messages
 * and exit statuses follow swtpm 0.7.1's tool (plus --lock-storage of 0.8).
 *
 * Quirks kept on purpose because scripts may depend on them:
 *   - options are matched by getopt_long_only(), but the command is then
 *     dispatched on the exact argv spelling ("-c", "--stop", "--save", ...);
 *     "--c" or "-stop" pass the parser and end in the usage text, exit 1;
 *   - the value of an option is taken from the argv element after it, so the
 *     "--l=3" form reports "Could not get locality number from --l=3.";
 *   - a device path selects host byte order even if it is not a character
 *     device; such an fd (FIFO, file) gets the socket framing in host order;
 *   - each request's reply is read into the same union buffer that carried
 *     the request, so a short reply leaves request bytes in place. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"

/* How long to wait for a reply (0.7.1 waits 20 s, not the 10 s of its docs). */
#define REPLY_TIMEOUT_MS 20000
/* Chunk size of the continuation reads of a state blob on the socket. */
#define STREAM_CHUNK 4096
/* Give up on a device that keeps answering GET_STATEBLOB without progress. */
#define MAX_STALLED_CHUNKS 8

struct conn {
	int fd;
	bool be;    /* control socket: big-endian fields and stream semantics */
	bool ioctl; /* a character device: real ioctl() calls */
};

static void versioninfo(void)
{
	printf("TPM emulator control tool version " TL_SWTPM_VERSION
	       ", Copyright (c) 2015 IBM Corp.\n");
}

static void usage(const char *prg)
{
	versioninfo();
	printf("\n"
	       "Usage: %s <command> [--tpm-device <dev> | --tcp [<host>]:[<port>] |\n"
	       "       --unix <path> | <dev>]\n"
	       "\n"
	       "Transport (a trailing <dev> is the same as --tpm-device <dev>):\n"
	       "  --tpm-device <dev>     CUSE character device of the TPM (ioctl interface)\n"
	       "  --tcp [<host>]:[<port>] control channel over TCP; host defaults to\n"
	       "                         127.0.0.1, port to %d\n"
	       "  --unix <path>          control channel over a UnixIO socket\n"
	       "\n"
	       "Commands (exactly one):\n"
	       "  -c                     print the capability flags of the control channel\n"
	       "  -i                     initialise the TPM; a stored volatile state is\n"
	       "                         loaded and then removed\n"
	       "  --stop                 stop the TPM, the emulator keeps running\n"
	       "  -s                     shut the TPM down and end the emulator\n"
	       "  -e                     print the tpmEstablished flag\n"
	       "  -r <loc>               reset the tpmEstablished flag from locality <loc>\n"
	       "  -v                     write the volatile state to storage\n"
	       "  -C                     cancel the TPM command in progress\n"
	       "  -l <loc>               switch to locality <loc> (0 to 4)\n"
	       "  -h <data>              run a hash sequence over <data>; '-' reads stdin\n"
	       "  --save <type> <file>   write a state blob (permanent, volatile or\n"
	       "                         savestate) into <file>\n"
	       "  --load <type> <file>   restore a state blob of that type from <file>;\n"
	       "                         the TPM must be stopped\n"
	       "  -g                     print the configuration flags (keys in use)\n"
	       "  -b <size>              set the TPM buffer size (0: only query) and print\n"
	       "                         the size in use and the supported range\n"
	       "  --info <flags>         print implementation information selected by the\n"
	       "                         numeric <flags>\n"
	       "  --lock-storage <n>     lock the state storage, retrying <n> times\n"
	       "  --version              print the version and exit\n"
	       "  --help                 print this text and exit\n"
	       "\n",
	       prg, TL_IOCTL_TCP_PORT);
}

/* ------------------------------------------------------------ transport */

/* Run one command.  u (usize bytes) holds the request (in_len bytes are sent
 * on a stream) and receives the reply (at most out_len bytes on a stream; a
 * device always fills the whole union).  Returns the number of reply bytes
 * or -errno. */
static ssize_t ctrl_xfer(const struct conn *c, unsigned long req, void *u, size_t usize,
			 size_t in_len, size_t out_len)
{
	uint8_t code[4];
	struct iovec iov[2];
	struct pollfd pfd;
	ssize_t n;
	int rc;

	/* The driver copies _IOC_SIZE bytes in and out of u. */
	if (usize < _IOC_SIZE(req) || in_len > usize || out_len > usize)
		return -EINVAL;
	if (c->ioctl) {
		if (ioctl(c->fd, req, u) < 0)
			return -errno;
		return (ssize_t)_IOC_SIZE(req);
	}
	tl_ctrl_iov(PTM_IOC_CMD(req), code, u, in_len, iov);
	/* One writev: swtpm only reads the body of some commands (GET_INFO,
	 * SET_BUFFERSIZE) from the same read as the code. */
	n = writev(c->fd, iov, 2);
	if (n < 0)
		return -errno;
	if ((size_t)n != 4 + in_len)
		return -EIO;
	if (!out_len)
		return 0;

	pfd.fd = c->fd;
	pfd.events = POLLIN;
	do
		rc = poll(&pfd, 1, REPLY_TIMEOUT_MS);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return -ETIMEDOUT;
	do
		n = read(c->fd, u, out_len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* poll() + read() for the continuation data of a state blob. */
static ssize_t stream_read(const struct conn *c, void *buf, size_t len)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t n;
	int rc;

	if (c->be) {
		do
			rc = poll(&pfd, 1, REPLY_TIMEOUT_MS);
		while (rc < 0 && errno == EINTR);
		if (rc <= 0)
			return rc < 0 ? -errno : -ETIMEDOUT;
	}
	do
		n = read(c->fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static int open_connection(struct conn *c, const char *dev, const struct tl_tcp_arg *tcp,
			   const char *unix_path)
{
	struct stat st;
	char service[16];
	bool waited;
	int fd, gai_err;

	if (dev) {
		fd = open(dev, O_RDWR);
		if (fd < 0) {
			fprintf(stderr, "Unable to open device '%s'.\n", dev);
			return -1;
		}
	} else if (tcp->host) {
		tl_service_ioctl(tcp->port, service);
		fd = tl_tcp_connect(tcp->host, service, &gai_err);
		if (fd == -EADDRNOTAVAIL && gai_err) {
			fprintf(stderr, "getaddrinfo failed on host '%s': %s\n", tcp->host,
				gai_strerror(gai_err));
			return -1;
		}
		if (fd < 0) {
			fprintf(stderr, "Could not connect to host '%s' on port '%s' using TCP "
					"socket: %s\n",
				tcp->host, service, strerror(-fd));
			return -1;
		}
	} else {
		fd = tl_unix_connect(unix_path, REPLY_TIMEOUT_MS, &waited);
		if (fd == -ENAMETOOLONG) {
			fprintf(stderr, "Socket path is too long.\n");
			return -1;
		}
		if (fd < 0) {
			if (waited)
				fprintf(stderr, "Could not connect using UnixIO socket.\n");
			else
				fprintf(stderr, "Connect failed: %s\n", strerror(-fd));
			return -1;
		}
	}
	c->fd = fd;
	c->be = dev == NULL;
	c->ioctl = fstat(fd, &st) == 0 && S_ISCHR(st.st_mode);
	return 0;
}

/* ------------------------------------------------------------ reporting */

static int report_xfer(const char *what, ssize_t n)
{
	fprintf(stderr, "Could not execute %s: %s\n", what, strerror((int)-n));
	return -1;
}

/* Run a command whose request was prepared in u; report transport errors as
 * "Could not execute <xname>" and TPM errors as "TPM result from <rname>".
 * Returns 0, or -1 once reported. */
static int run_cmd(const struct conn *c, unsigned long req, uint8_t *u, size_t usize,
		   size_t in_len, size_t out_len, const char *xname, const char *rname)
{
	ssize_t n = ctrl_xfer(c, req, u, usize, in_len, out_len);
	uint32_t res;

	if (n < 0)
		return report_xfer(xname, n);
	res = tl_dec_result(u, c->be);
	if (tl_ctrl_reply_complete(PTM_IOC_CMD(req), (size_t)n, res) < 0)
		return report_xfer(xname, -EBADMSG);
	if (res != 0) {
		fprintf(stderr, "TPM result from %s: 0x%x\n", rname, res);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ commands */

static int do_capability(const struct conn *c)
{
	uint8_t u[sizeof(ptm_ioc_cap)] = { 0 };
	ssize_t n = ctrl_xfer(c, PTM_GET_CAPABILITY, u, sizeof(u), 0, sizeof(u));

	if (n < 0)
		return report_xfer("PTM_GET_CAPABILITY", n);
	/* No result field: the whole reply is the capability word. */
	printf("ptm capability is 0x%" PRIx64 "\n", tl_get64(u, c->be));
	return 0;
}

static int do_res_only(const struct conn *c, unsigned long req, const char *xname,
		       const char *rname)
{
	uint8_t u[sizeof(ptm_ioc_res)] = { 0 };

	return run_cmd(c, req, u, sizeof(u), 0, sizeof(u), xname, rname);
}

static int do_init(const struct conn *c)
{
	uint8_t u[sizeof(struct ptm_ioc_init)] = { 0 };
	size_t in = tl_enc_u32(u, c->be, PTM_INIT_FLAG_DELETE_VOLATILE);

	return run_cmd(c, PTM_INIT, u, sizeof(u), in, sizeof(u), "PTM_INIT", "PTM_INIT");
}

static int do_established(const struct conn *c)
{
	uint8_t u[sizeof(struct ptm_ioc_est)] = { 0 };

	if (run_cmd(c, PTM_GET_TPMESTABLISHED, u, sizeof(u), 0, sizeof(u), "PTM_GET_ESTABLISHED",
		    "PTM_GET_TPMESTABLISHED") < 0)
		return -1;
	printf("tpmEstablished is %d\n", u[offsetof(struct ptm_ioc_est, u.resp.bit)]);
	return 0;
}

static int do_locality(const struct conn *c, bool reset, unsigned int loc)
{
	uint8_t u[sizeof(struct ptm_ioc_loc)] = { 0 };
	size_t in = tl_enc_loc(u, (uint8_t)loc);

	if (reset)
		return run_cmd(c, PTM_RESET_TPMESTABLISHED, u, sizeof(u), in, sizeof(u),
			       "PTM_RESET_ESTABLISHED", "PTM_RESET_TPMESTABLISHED");
	return run_cmd(c, PTM_SET_LOCALITY, u, sizeof(u), in, sizeof(u), "PTM_SET_LOCALITY",
		       "PTM_SET_LOCALITY");
}

static int hash_chunk(const struct conn *c, const void *data, size_t len)
{
	static uint8_t u[sizeof(struct ptm_ioc_hdata)];
	size_t in;

	memset(u, 0, sizeof(u));
	in = tl_enc_hdata(u, c->be, data, len);
	return run_cmd(c, PTM_HASH_DATA, u, sizeof(u), in, sizeof(ptm_ioc_res),
		       "ioctl PTM_HASH_DATA", "PTM_HASH_DATA");
}

static int do_hash(const struct conn *c, const char *data)
{
	static uint8_t buf[PTM_HASH_DATA_SIZE];
	size_t len, off, n;

	if (do_res_only(c, PTM_HASH_START, "ioctl PTM_HASH_START", "PTM_HASH_START") < 0)
		return -1;
	if (!strcmp(data, "-")) {
		/* Whole chunks as long as stdin delivers them; a final short (or
		 * empty) chunk ends the data, read errors count as its end. */
		do {
			n = fread(buf, 1, sizeof(buf), stdin);
			if (hash_chunk(c, buf, n) < 0)
				return -1;
		} while (n == sizeof(buf));
	} else {
		len = strlen(data);
		for (off = 0; off < len; off += n) {
			n = len - off < sizeof(buf) ? len - off : sizeof(buf);
			if (hash_chunk(c, data + off, n) < 0)
				return -1;
		}
	}
	return do_res_only(c, PTM_HASH_END, "ioctl PTM_HASH_END", "PTM_HASH_END");
}

static int write_file(int fd, const char *name, const void *buf, size_t len)
{
	int rc;

	if (len == 0)
		return write(fd, buf, 0) < 0 ? -1 : 0;
	rc = tl_write_all(fd, buf, len);
	if (rc < 0) {
		fprintf(stderr, "Could not write to file '%s': %s\n", name, strerror(-rc));
		return -1;
	}
	return 0;
}

static int do_save(const struct conn *c, const char *typename, const char *file,
		   size_t bufsize)
{
	static uint8_t u[sizeof(struct ptm_ioc_getstate)];
	static uint8_t chunk[STREAM_CHUNK];
	struct tl_getstate_hdr h;
	uint32_t type;
	uint64_t offset = 0;
	int64_t remaining = 0, rem;
	bool first = true;
	int fd, ret = -1, stalled = 0, rc;
	size_t len, want;
	uint8_t *rbuf = chunk;
	ssize_t n;

	type = tl_blob_type(typename);
	if (!type) {
		fprintf(stderr, "Unknown TPM state type '%s'", typename);
		return -1;
	}
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		fprintf(stderr, "Could not open file '%s' for writing: %s\n", file,
			strerror(errno));
		return -1;
	}

	for (;;) {
		memset(u, 0, sizeof(u));
		n = ctrl_xfer(c, PTM_GET_STATEBLOB, u, sizeof(u),
			      tl_enc_getstate(u, c->be, PTM_STATE_FLAG_DECRYPTED, type,
					      (uint32_t)offset),
			      sizeof(u));
		if (n < 0) {
			report_xfer("ioctl PTM_GET_STATEBLOB", n);
			goto out;
		}
		tl_dec_getstate(u, c->be, &h);
		/* TPM_NON_FATAL (e.g. 0x800: no such state) means "empty". */
		if (h.result != 0 && !(h.result & TL_TPM_NON_FATAL)) {
			fprintf(stderr, "TPM result from PTM_GET_STATEBLOB: 0x%x\n", h.result);
			goto out;
		}
		rc = tl_getstate_chunk(&h, (size_t)n, c->be, &len, &rem);
		if (rc == -EPROTO) {
			fprintf(stderr, "Too few bytes in response");
			goto out;
		}
		if (rc < 0) {
			fprintf(stderr, "Invalid length %u in the PTM_GET_STATEBLOB reply.\n",
				h.length);
			goto out;
		}
		if (write_file(fd, file, u + offsetof(struct ptm_ioc_getstate, u.resp.data), len) <
		    0)
			goto out;
		if (first)
			remaining = rem;
		else
			remaining -= (int64_t)len;
		first = false;
		/* Socket: the rest follows as plain data.  Device: the rest can be
		 * read() in bufsize pieces, or is fetched chunk by chunk. */
		if (c->be || bufsize)
			break;
		offset += len;
		stalled = len ? 0 : stalled + 1;
		if (offset >= h.totlength || stalled >= MAX_STALLED_CHUNKS)
			goto check;
	}

	want = c->be ? sizeof(chunk) : bufsize;
	if (!c->be && bufsize > sizeof(chunk)) {
		rbuf = malloc(bufsize);
		if (!rbuf) {
			fprintf(stderr, "Could not allocate buffer with %zu bytes.", bufsize);
			goto out;
		}
	}
	while (remaining > 0) {
		n = stream_read(c, rbuf, want);
		if (n <= 0)
			break; /* the remaining count below tells what is missing */
		if (write_file(fd, file, rbuf, (size_t)n) < 0)
			goto out;
		remaining -= n;
	}
check:
	if (remaining != 0) {
		fprintf(stderr, "Unexpected number of remaining bytes: %" PRId64 "\n", remaining);
		goto out;
	}
	ret = 0;
out:
	if (rbuf != chunk)
		free(rbuf);
	close(fd);
	return ret;
}

/* Read up to len bytes, fewer only at end of file. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int setstate_result(const struct conn *c, const uint8_t *u)
{
	uint32_t res = tl_dec_result(u, c->be);

	if (res != 0) {
		fprintf(stderr, "TPM result from PTM_SET_STATEBLOB: 0x%x\n", res);
		return -1;
	}
	return 0;
}

/* Socket: announce the whole length, stream the file, one 4-byte answer. */
static int load_stream(const struct conn *c, int fd, uint32_t type, size_t size)
{
	static uint8_t u[sizeof(struct ptm_ioc_setstate)];
	uint8_t *buf = NULL;
	ssize_t n;
	int ret = -1, rc;

	memset(u, 0, sizeof(u));
	n = ctrl_xfer(c, PTM_SET_STATEBLOB, u, sizeof(u),
		      tl_enc_setstate(u, true, 0, type, (uint32_t)size, NULL, 0), 0);
	if (n < 0)
		return report_xfer("ioctl PTM_SET_STATEBLOB", n);
	buf = malloc(size);
	if (!buf) {
		fprintf(stderr, "Could not allocate buffer with %zu bytes.", size);
		return -1;
	}
	n = read_full(fd, buf, size);
	if (n >= 0 && (size_t)n != size)
		n = -EIO; /* the file shrank: swtpm would wait for the missing bytes */
	if (n < 0) {
		fprintf(stderr, "Could not read from file: %s\n", strerror((int)-n));
		goto out;
	}
	rc = tl_write_all(c->fd, buf, size);
	if (rc < 0) {
		fprintf(stderr, "Could not write to file: %s\n", strerror(-rc));
		goto out;
	}
	memset(u, 0, sizeof(u));
	n = stream_read(c, u, sizeof(ptm_ioc_res));
	if (n < (ssize_t)sizeof(ptm_ioc_res)) {
		fprintf(stderr, "Did not get enough response bytes from PTM_SET_STATE_BLOB: %zd\n",
			n < 0 ? (ssize_t)-1 : n);
		goto out;
	}
	ret = setstate_result(c, u);
out:
	free(buf);
	return ret;
}

/* Device with SWTPM_IOCTL_BUFFERSIZE: open the transfer with an empty packet,
 * write() the data, close it with another empty packet that gets the result. */
static int load_bufsize(const struct conn *c, int fd, uint32_t type, size_t bufsize)
{
	static uint8_t u[sizeof(struct ptm_ioc_setstate)];
	uint8_t *buf;
	ssize_t n, r;
	int ret = -1, rc;

	buf = malloc(bufsize);
	if (!buf) {
		fprintf(stderr, "Could not allocate buffer with %zu bytes.", bufsize);
		return -1;
	}
	memset(u, 0, sizeof(u));
	r = ctrl_xfer(c, PTM_SET_STATEBLOB, u, sizeof(u),
		      tl_enc_setstate(u, false, 0, type, 0, NULL, 0), 0);
	if (r < 0) {
		report_xfer("ioctl PTM_SET_STATEBLOB", r);
		goto out;
	}
	if (setstate_result(c, u) < 0)
		goto out;
	do {
		n = read_full(fd, buf, bufsize);
		if (n < 0) {
			fprintf(stderr, "Could not read from file: %s\n", strerror((int)-n));
			goto out;
		}
		/* Like 0.7.1, the final empty read is passed on as an empty write. */
		if (n > 0)
			rc = tl_write_all(c->fd, buf, (size_t)n);
		else
			rc = write(c->fd, buf, 0) < 0 ? -errno : 0;
		if (rc < 0) {
			fprintf(stderr, "Could not write to file: %s\n", strerror(-rc));
			goto out;
		}
	} while ((size_t)n == bufsize);

	memset(u, 0, sizeof(u));
	r = ctrl_xfer(c, PTM_SET_STATEBLOB, u, sizeof(u),
		      tl_enc_setstate(u, false, 0, type, 0, NULL, 0), sizeof(ptm_ioc_res));
	if (r < 0) {
		report_xfer("ioctl PTM_SET_STATEBLOB", r);
		goto out;
	}
	ret = setstate_result(c, u);
out:
	free(buf);
	return ret;
}

/* Device (or an empty file on the socket): packets of up to 3072 bytes; a
 * shorter packet, possibly empty, ends the transfer. */
static int load_packets(const struct conn *c, int fd, uint32_t type)
{
	static uint8_t u[sizeof(struct ptm_ioc_setstate)];
	static uint8_t data[PTM_STATE_BLOB_SIZE];
	size_t in;
	ssize_t n, r;

	do {
		n = read_full(fd, data, sizeof(data));
		if (n < 0) {
			fprintf(stderr, "Could not read from file: %s\n", strerror((int)-n));
			return -1;
		}
		memset(u, 0, sizeof(u));
		in = tl_enc_setstate(u, c->be, 0, type, (uint32_t)n, data, (size_t)n);
		r = ctrl_xfer(c, PTM_SET_STATEBLOB, u, sizeof(u), in,
			      (size_t)n < sizeof(data) ? sizeof(struct ptm_ioc_setstate) : 0);
		if (r < 0)
			return report_xfer("ioctl PTM_SET_STATEBLOB", r);
		if (setstate_result(c, u) < 0)
			return -1;
	} while ((size_t)n == sizeof(data));
	return 0;
}

static int do_load(const struct conn *c, const char *typename, const char *file,
		   size_t bufsize)
{
	struct stat st;
	uint32_t type;
	int fd, ret;

	type = tl_blob_type(typename);
	if (!type) {
		fprintf(stderr, "Unknown TPM state type '%s'", typename);
		return -1;
	}
	fd = open(file, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "Could not open file '%s' for reading: %s\n", file,
			strerror(errno));
		return -1;
	}
	if (c->be) {
		if (fstat(fd, &st) < 0) {
			fprintf(stderr, "Could not read from file: %s\n", strerror(errno));
			ret = -1;
			goto out;
		}
		if (st.st_size > (off_t)UINT32_MAX) {
			fprintf(stderr, "Could not read from file: %s\n", strerror(EFBIG));
			ret = -1;
			goto out;
		}
		/* An empty file still goes the packet way: one empty packet. */
		if (st.st_size > 0) {
			ret = load_stream(c, fd, type, (size_t)st.st_size);
			goto out;
		}
	}
	if (!c->be && bufsize)
		ret = load_bufsize(c, fd, type, bufsize);
	else
		ret = load_packets(c, fd, type);
out:
	close(fd);
	return ret;
}

static int do_config(const struct conn *c)
{
	uint8_t u[sizeof(struct ptm_ioc_getconfig)] = { 0 };

	if (run_cmd(c, PTM_GET_CONFIG, u, sizeof(u), 0, sizeof(u), "PTM_GET_CONFIG",
		    "PTM_GET_CONFIG") < 0)
		return -1;
	printf("ptm configuration flags: 0x%x\n",
	       tl_get32(u + offsetof(struct ptm_ioc_getconfig, u.resp.flags), c->be));
	return 0;
}

static int do_buffersize(const struct conn *c, unsigned int size)
{
	uint8_t u[sizeof(struct ptm_ioc_setbuffersize)] = { 0 };
	size_t in = tl_enc_u32(u, c->be, size);

	if (run_cmd(c, PTM_SET_BUFFERSIZE, u, sizeof(u), in, sizeof(u), "PTM_SET_BUFFERSIZE",
		    "PTM_SET_BUFFERSIZE") < 0)
		return -1;
	printf("TPM buffersize: %u\nminimum size  : %u\nmaximum size  : %u\n",
	       tl_get32(u + offsetof(struct ptm_ioc_setbuffersize, u.resp.buffersize), c->be),
	       tl_get32(u + offsetof(struct ptm_ioc_setbuffersize, u.resp.minsize), c->be),
	       tl_get32(u + offsetof(struct ptm_ioc_setbuffersize, u.resp.maxsize), c->be));
	return 0;
}

static int do_info(const struct conn *c, uint64_t flags)
{
	static uint8_t u[sizeof(struct ptm_ioc_getinfo)];
	const char *text;
	size_t in, len;

	memset(u, 0, sizeof(u));
	in = tl_enc_getinfo(u, c->be, flags, 0);
	/* Only the response part is read: 12 + 3072 bytes. */
	if (run_cmd(c, PTM_GET_INFO, u, sizeof(u), in,
		    offsetof(struct ptm_ioc_getinfo, u.resp.buffer) + PTM_GETINFO_SIZE,
		    "PTM_GET_INFO", "PTM_GET_INFO") < 0)
		return -1;
	len = tl_dec_info(u, &text);
	printf("%.*s\n", (int)len, text);
	return 0;
}

static int do_lock_storage(const struct conn *c, unsigned int retries)
{
	uint8_t u[sizeof(struct ptm_ioc_lockstorage)] = { 0 };
	size_t in = tl_enc_u32(u, c->be, retries);

	return run_cmd(c, PTM_LOCK_STORAGE, u, sizeof(u), in, sizeof(u), "PTM_LOCK_STORAGE",
		       "PTM_LOCK_STORAGE");
}

/* ------------------------------------------------------------ main */

int main(int argc, char *argv[])
{
	/* Order matters for glibc's "ambiguous" message (--t, --lo). */
	static const struct option longopts[] = {
		{ "tpm-device", required_argument, NULL, 'D' },
		{ "tcp", required_argument, NULL, 'T' },
		{ "unix", required_argument, NULL, 'U' },
		{ "c", no_argument, NULL, 'c' },
		{ "i", no_argument, NULL, 'i' },
		{ "stop", no_argument, NULL, 't' },
		{ "s", no_argument, NULL, 's' },
		{ "e", no_argument, NULL, 'e' },
		{ "r", required_argument, NULL, 'r' },
		{ "v", no_argument, NULL, 'v' },
		{ "C", no_argument, NULL, 'C' },
		{ "l", required_argument, NULL, 'l' },
		{ "h", required_argument, NULL, 'h' },
		{ "g", no_argument, NULL, 'g' },
		{ "b", required_argument, NULL, 'b' },
		{ "save", required_argument, NULL, 'S' },
		{ "load", required_argument, NULL, 'L' },
		{ "version", no_argument, NULL, 'V' },
		{ "info", required_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'H' },
		{ "lock-storage", required_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 },
	};
	/* The command is identified by the argv element that named it; a second,
	 * different element naming a command is an error. */
	const char *cmd = NULL, *first_cmd = NULL;
	const char *dev = NULL, *unix_path = NULL, *hashdata = NULL;
	const char *blobtype = NULL, *blobfile = NULL, *env, *val;
	struct tl_tcp_arg tcp = { 0 };
	struct conn c = { .fd = -1 };
	unsigned int loc = 0, bsize = 0, retries = 0;
	unsigned long info_flags = 0;
	size_t bufsize = 0;
	char *end;
	int opt, ret = EXIT_FAILURE, rc;

	while ((opt = getopt_long_only(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'D':
			dev = optarg;
			break;
		case 'T':
			if (tl_tcp_option(optarg, TL_IOCTL_TCP_PORT, &tcp) < 0)
				return EXIT_FAILURE;
			break;
		case 'U':
			unix_path = optarg;
			break;
		case 'c':
		case 'i':
		case 't':
		case 's':
		case 'e':
		case 'v':
		case 'C':
		case 'g':
			cmd = argv[optind - 1];
			break;
		case 'h':
			cmd = argv[optind - 2];
			hashdata = argv[optind - 1];
			break;
		case 'r':
		case 'l':
			cmd = argv[optind - 2];
			val = argv[optind - 1];
			if (sscanf(val, "%u", &loc) != 1) {
				fprintf(stderr, "Could not get locality number from %s.\n", val);
				goto out;
			}
			if (loc > 4) {
				fprintf(stderr, "Locality outside valid range of [0..4].\n");
				goto out;
			}
			break;
		case 'S':
		case 'L':
			if (optind == argc || argv[optind][0] == '-') {
				fprintf(stderr, "Missing filename argument for --%s option\n",
					opt == 'S' ? "save" : "load");
				goto out;
			}
			cmd = argv[optind - 2];
			blobtype = argv[optind - 1];
			blobfile = argv[optind];
			optind++;
			break;
		case 'b':
			cmd = argv[optind - 2];
			val = argv[optind - 1];
			if (sscanf(val, "%u", &bsize) != 1) {
				fprintf(stderr, "Could not get buffersize from %s.\n", val);
				goto out;
			}
			break;
		case 'I':
			cmd = argv[optind - 2];
			errno = 0;
			info_flags = strtoul(argv[optind - 1], &end, 0);
			if (errno || *end != '\0') {
				fprintf(stderr, "Cannot parse info flags.\n");
				goto out;
			}
			break;
		case 'K':
			cmd = argv[optind - 2];
			val = argv[optind - 1];
			if (sscanf(val, "%u", &retries) != 1) {
				fprintf(stderr, "Could not get the number of retries from %s.\n",
					val);
				goto out;
			}
			break;
		case 'V':
			versioninfo();
			ret = EXIT_SUCCESS;
			goto out;
		case 'H':
			usage(argv[0]);
			ret = EXIT_SUCCESS;
			goto out;
		default:
			/* getopt printed the complaint; carry on like 0.7.1 does. */
			break;
		}
		if (!first_cmd) {
			first_cmd = cmd;
		} else if (cmd != first_cmd) {
			fprintf(stderr, "Only one command may be given.\n");
			goto out;
		}
	}

	if (!cmd) {
		fprintf(stderr, "No valid command.\n");
		goto out;
	}
	if (!dev && !tcp.host && !unix_path) {
		if (optind == argc) {
			fprintf(stderr, "Error: Missing device name.\n");
			goto out;
		}
		dev = argv[optind];
	}

	if (dev) {
		/* Testing aid of 0.7.1: move state blobs with read()/write(). */
		env = getenv("SWTPM_IOCTL_BUFFERSIZE");
		if (env && (sscanf(env, "%zu", &bufsize) != 1 || bufsize < 1))
			bufsize = 1;
	} else if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "Could not install signal handler for SIGPIPE.");
		goto out;
	}

	if (open_connection(&c, dev, &tcp, unix_path) < 0)
		goto out;

	if (!strcmp(cmd, "-c"))
		rc = do_capability(&c);
	else if (!strcmp(cmd, "-i"))
		rc = do_init(&c);
	else if (!strcmp(cmd, "-e"))
		rc = do_established(&c);
	else if (!strcmp(cmd, "-r"))
		rc = do_locality(&c, true, loc);
	else if (!strcmp(cmd, "-s"))
		rc = do_res_only(&c, PTM_SHUTDOWN, "PTM_SHUTDOWN", "PTM_SHUTDOWN");
	else if (!strcmp(cmd, "--stop"))
		rc = do_res_only(&c, PTM_STOP, "PTM_STOP", "PTM_STOP");
	else if (!strcmp(cmd, "-l"))
		rc = do_locality(&c, false, loc);
	else if (!strcmp(cmd, "-h"))
		rc = do_hash(&c, hashdata ? hashdata : "");
	else if (!strcmp(cmd, "-C"))
		rc = do_res_only(&c, PTM_CANCEL_TPM_CMD, "PTM_CANCEL_TPM_CMD",
				 "PTM_CANCEL_TPM_CMD");
	else if (!strcmp(cmd, "-v"))
		rc = do_res_only(&c, PTM_STORE_VOLATILE, "PTM_STORE_VOLATILE",
				 "PTM_STORE_VOLATILE");
	else if (!strcmp(cmd, "--save") && blobfile)
		rc = do_save(&c, blobtype, blobfile, bufsize);
	else if (!strcmp(cmd, "--load") && blobfile)
		rc = do_load(&c, blobtype, blobfile, bufsize);
	else if (!strcmp(cmd, "-g"))
		rc = do_config(&c);
	else if (!strcmp(cmd, "-b"))
		rc = do_buffersize(&c, bsize);
	else if (!strcmp(cmd, "--info"))
		rc = do_info(&c, info_flags);
	else if (!strcmp(cmd, "--lock-storage"))
		rc = do_lock_storage(&c, retries);
	else {
		/* A command option spelled differently ("--c", "-stop", "--l=3"). */
		usage(argv[0]);
		rc = -1;
	}
	if (rc == 0)
		ret = EXIT_SUCCESS;
out:
	if (c.fd >= 0)
		close(c.fd);
	free(tcp.host);
	return ret;
}
