/* Shared code of swtpm_ioctl and swtpm_bios (see common.h). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"

/* ------------------------------------------------------------ byte order */

uint32_t tl_get32(const uint8_t *p, bool be)
{
	uint32_t v;

	if (be)
		return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	memcpy(&v, p, sizeof(v));
	return v;
}

void tl_put32(uint8_t *p, uint32_t v, bool be)
{
	if (!be) {
		memcpy(p, &v, sizeof(v));
		return;
	}
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint64_t tl_get64(const uint8_t *p, bool be)
{
	uint64_t v;

	if (be)
		return (uint64_t)tl_get32(p, true) << 32 | tl_get32(p + 4, true);
	memcpy(&v, p, sizeof(v));
	return v;
}

void tl_put64(uint8_t *p, uint64_t v, bool be)
{
	if (!be) {
		memcpy(p, &v, sizeof(v));
		return;
	}
	tl_put32(p, (uint32_t)(v >> 32), true);
	tl_put32(p + 4, (uint32_t)v, true);
}

/* ------------------------------------------------------------ --tcp */

int tl_parse_tcp(const char *arg, const char *defhost, int defport, struct tl_tcp_arg *out)
{
	const char *colon = strrchr(arg, ':');
	unsigned int v;

	out->host = NULL;
	out->port = defport;
	out->port_str = "";

	if (!colon) {
		/* Only a host, even an empty one (getaddrinfo will refuse ""). */
		out->host = strdup(arg);
		return out->host ? 0 : -ENOMEM;
	}
	out->port_str = colon + 1;
	if (colon == arg)
		out->host = strdup(defhost);
	else
		out->host = strndup(arg, (size_t)(colon - arg));
	if (!out->host)
		return -ENOMEM;
	/* ":" alone keeps both defaults; "host:" has a port that is empty. */
	if (colon == arg && colon[1] == '\0')
		return 0;
	if (sscanf(out->port_str, "%u", &v) != 1)
		goto bad;
	/* 0.7.1 compares the value as a signed int: huge values wrap to negative
	 * numbers and pass; the 16-bit truncation happens later. */
	out->port = (int)(int32_t)v;
	if (out->port > 65535) {
		free(out->host);
		out->host = NULL;
		return -ERANGE;
	}
	return 0;
bad:
	free(out->host);
	out->host = NULL;
	return -EINVAL;
}

void tl_service_ioctl(int port, char buf[16])
{
	snprintf(buf, 16, "%u", (unsigned int)(uint16_t)port);
}

void tl_service_bios(int port, char buf[16])
{
	/* Deliberately 10 bytes: "4294967295" loses its last digit as in 0.7.1. */
	snprintf(buf, 10, "%u", (unsigned int)port);
}

int tl_tcp_connect(const char *host, const char *service, int *gai_err)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, err = ECONNREFUSED, rc;

	*gai_err = 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0) {
		*gai_err = rc;
		return -EADDRNOTAVAIL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : -err;
}

int tl_unix_connect(const char *path, int timeout_ms, bool *waited)
{
	struct sockaddr_un sa;
	struct pollfd pfd;
	int fd, fl, rc, err;

	*waited = false;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	if (timeout_ms < 0) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail;
		return fd;
	}
	/* Non-blocking so that a full listen backlog does not hang us forever. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EAGAIN && errno != EINPROGRESS)
			goto fail;
		*waited = true;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		do
			rc = poll(&pfd, 1, timeout_ms);
		while (rc < 0 && errno == EINTR);
		if (rc == 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (rc < 0)
			goto fail;
		if ((pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) || !(pfd.revents & POLLOUT)) {
			errno = ECONNREFUSED;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, fl) < 0)
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	return -err;
}

int tl_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ------------------------------------------------------------ control channel */

void tl_ctrl_iov(uint32_t cmd, uint8_t code_be[4], void *u, size_t in_len, struct iovec iov[2])
{
	tl_put32(code_be, cmd, true);
	iov[0].iov_base = code_be;
	iov[0].iov_len = 4;
	iov[1].iov_base = u;
	iov[1].iov_len = in_len;
}

size_t tl_enc_u32(uint8_t *u, bool be, uint32_t v)
{
	tl_put32(u, v, be);
	return 4;
}

size_t tl_enc_loc(uint8_t *u, uint8_t loc)
{
	u[offsetof(struct ptm_ioc_loc, u.req.loc)] = loc;
	return sizeof(((struct ptm_ioc_loc *)0)->u.req);
}

size_t tl_enc_hdata(uint8_t *u, bool be, const void *data, size_t len)
{
	if (len > PTM_HASH_DATA_SIZE)
		len = PTM_HASH_DATA_SIZE;
	tl_put32(u + offsetof(struct ptm_ioc_hdata, u.req.length), (uint32_t)len, be);
	if (len)
		memcpy(u + offsetof(struct ptm_ioc_hdata, u.req.data), data, len);
	return offsetof(struct ptm_ioc_hdata, u.req.data) + len;
}

size_t tl_enc_getstate(uint8_t *u, bool be, uint32_t flags, uint32_t type, uint32_t offset)
{
	tl_put32(u + offsetof(struct ptm_ioc_getstate, u.req.state_flags), flags, be);
	tl_put32(u + offsetof(struct ptm_ioc_getstate, u.req.type), type, be);
	tl_put32(u + offsetof(struct ptm_ioc_getstate, u.req.offset), offset, be);
	return sizeof(((struct ptm_ioc_getstate *)0)->u.req);
}

size_t tl_enc_setstate(uint8_t *u, bool be, uint32_t flags, uint32_t type, uint32_t length,
		       const void *data, size_t datalen)
{
	if (datalen > PTM_STATE_BLOB_SIZE)
		datalen = PTM_STATE_BLOB_SIZE;
	tl_put32(u + offsetof(struct ptm_ioc_setstate, u.req.state_flags), flags, be);
	tl_put32(u + offsetof(struct ptm_ioc_setstate, u.req.type), type, be);
	tl_put32(u + offsetof(struct ptm_ioc_setstate, u.req.length), length, be);
	if (datalen)
		memcpy(u + offsetof(struct ptm_ioc_setstate, u.req.data), data, datalen);
	return offsetof(struct ptm_ioc_setstate, u.req.data) + datalen;
}

size_t tl_enc_getinfo(uint8_t *u, bool be, uint64_t flags, uint32_t offset)
{
	tl_put64(u + offsetof(struct ptm_ioc_getinfo, u.req.flags), flags, be);
	tl_put32(u + offsetof(struct ptm_ioc_getinfo, u.req.offset), offset, be);
	return sizeof(((struct ptm_ioc_getinfo *)0)->u.req);
}

uint32_t tl_dec_result(const uint8_t *u, bool be)
{
	return tl_get32(u, be);
}

int tl_ctrl_reply_complete(uint32_t cmd, size_t n, uint32_t res)
{
	(void)res;
	switch (cmd) {
	case CMD_SHUTDOWN:
	case CMD_STOP:
	case CMD_HASH_START:
	case CMD_HASH_END:
	case CMD_CANCEL_TPM_CMD:
	case CMD_STORE_VOLATILE:
	case CMD_GET_TPMESTABLISHED:
	case CMD_GET_CONFIG:
		/* Nothing of the request overlays the result here; fields after
		 * a complete result read as 0 (zeroed buffer). */
		return n >= 4 ? 0 : -EBADMSG;
	default:
		/* The request pre-filled the union (0.7.1 behaves deterministically). */
		return 0;
	}
}

void tl_dec_getstate(const uint8_t *u, bool be, struct tl_getstate_hdr *h)
{
	h->result = tl_get32(u + offsetof(struct ptm_ioc_getstate, u.resp.tpm_result), be);
	h->state_flags = tl_get32(u + offsetof(struct ptm_ioc_getstate, u.resp.state_flags), be);
	h->totlength = tl_get32(u + offsetof(struct ptm_ioc_getstate, u.resp.totlength), be);
	h->length = tl_get32(u + offsetof(struct ptm_ioc_getstate, u.resp.length), be);
}

int tl_getstate_chunk(const struct tl_getstate_hdr *h, size_t n, bool stream, size_t *datalen,
		      int64_t *remaining)
{
	const size_t hdr = offsetof(struct ptm_ioc_getstate, u.resp.data);

	*datalen = 0;
	*remaining = 0;
	if (stream) {
		if (n < hdr)
			return -EPROTO;
		if (n > sizeof(struct ptm_ioc_getstate))
			return -EMSGSIZE;
		*datalen = n - hdr;
	} else {
		if (h->length > PTM_STATE_BLOB_SIZE)
			return -EMSGSIZE;
		*datalen = h->length;
	}
	*remaining = (int64_t)h->totlength - (int64_t)*datalen;
	return 0;
}

uint32_t tl_blob_type(const char *name)
{
	if (!strcmp(name, "permanent"))
		return PTM_BLOB_TYPE_PERMANENT;
	if (!strcmp(name, "volatile"))
		return PTM_BLOB_TYPE_VOLATILE;
	if (!strcmp(name, "savestate"))
		return PTM_BLOB_TYPE_SAVESTATE;
	return 0;
}

size_t tl_dec_info(const uint8_t *u, const char **text)
{
	const char *s = (const char *)u + offsetof(struct ptm_ioc_getinfo, u.resp.buffer);

	*text = s;
	return strnlen(s, PTM_GETINFO_SIZE);
}

/* ------------------------------------------------------------ TPM data channel */

int tl_tpm_resp_check(const uint8_t *buf, size_t n)
{
	if (n < 10)
		return -EPROTO;
	if (tl_get32(buf + 2, true) != n)
		return -EBADMSG;
	return 0;
}

uint32_t tl_tpm_resp_code(const uint8_t *buf)
{
	return tl_get32(buf + 6, true);
}

bool tl_tpm12_perm_deactivated(const uint8_t *buf, size_t n)
{
	return n > 18 && buf[18] != 0;
}

void tl_tpm2_hca_cmd(uint8_t out[TL_TPM2_HCA_LEN], const uint8_t auth[20])
{
	uint8_t *p = out;

	/* tag TPM_ST_SESSIONS, size, TPM_CC_HierarchyChangeAuth */
	*p++ = 0x80;
	*p++ = 0x02;
	tl_put32(p, TL_TPM2_HCA_LEN, true), p += 4;
	tl_put32(p, 0x00000129, true), p += 4;
	tl_put32(p, 0x4000000c, true), p += 4; /* TPM_RH_PLATFORM */
	tl_put32(p, 9, true), p += 4;	       /* authorizationSize */
	tl_put32(p, 0x40000009, true), p += 4; /* TPM_RS_PW */
	*p++ = 0;			       /* nonceCaller: empty */
	*p++ = 0;
	*p++ = 0x01; /* sessionAttributes: continueSession */
	*p++ = 0;    /* hmac (password): empty */
	*p++ = 0;
	*p++ = 0; /* newAuth: TPM2B of 20 bytes */
	*p++ = 20;
	memcpy(p, auth, 20);
}

int tl_tcp_option(const char *arg, int defport, struct tl_tcp_arg *tcp)
{
	int rc;

	free(tcp->host);
	tcp->host = NULL;
	rc = tl_parse_tcp(arg, TL_TCP_HOST, defport, tcp);
	if (rc == -EINVAL)
		fprintf(stderr, "Invalid port '%s'\n", tcp->port_str);
	else if (rc == -ERANGE)
		fprintf(stderr, "Port '%s' outside valid range.\n", tcp->port_str);
	else if (rc < 0)
		fprintf(stderr, "Out of memory.\n");
	return rc;
}
