/* Helpers shared by swtpm_ioctl and swtpm_bios: --tcp argument parsing,
 * connecting, and the pure encoders/decoders of the control-channel and TPM
 * messages (kept free of I/O so that the unit tests can drive them). */
#ifndef VTPM_TOOLS_COMMON_H
#define VTPM_TOOLS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vtpm/ctrl_ioctl.h"

#define TL_SWTPM_VERSION "0.7.1"

/* Default ports: swtpm_ioctl talks to the control channel, swtpm_bios to the
 * data channel (0.7.1's man page says 6545 for both; the code uses 6546 for
 * swtpm_ioctl). */
#define TL_IOCTL_TCP_PORT 6546
#define TL_BIOS_TCP_PORT 6545
#define TL_TCP_HOST "127.0.0.1"

/* ------------------------------------------------------------ byte order */

uint32_t tl_get32(const uint8_t *p, bool be);
void tl_put32(uint8_t *p, uint32_t v, bool be);
uint64_t tl_get64(const uint8_t *p, bool be);
void tl_put64(uint8_t *p, uint64_t v, bool be);

/* ------------------------------------------------------------ --tcp */

struct tl_tcp_arg {
	char *host;	      /* malloc'd */
	int port;	      /* as 0.7.1 keeps it: may be negative, see tl_parse_tcp */
	const char *port_str; /* points into the argument; for error messages */
};

/* Parse "[host]:[port]", "host" or ":" the way both 0.7.1 tools do: the last
 * ':' splits; an empty host means defhost; no ':' means default port, and so
 * does ":" alone (but "host:" is an invalid, empty port).  The port is read
 * with sscanf("%u") and only rejected when, seen as a signed int, it exceeds
 * 65535 (so "-1" is accepted).  Returns 0, -EINVAL (not a number: "Invalid
 * port"), -ERANGE ("outside valid range") or -ENOMEM; port_str is set in
 * every case but -ENOMEM. */
int tl_parse_tcp(const char *arg, const char *defhost, int defport, struct tl_tcp_arg *out);

/* The --tcp option of both tools: replaces *tcp and prints the tools' error
 * messages on stderr. 0 or the tl_parse_tcp error. */
int tl_tcp_option(const char *arg, int defport, struct tl_tcp_arg *tcp);

/* The getaddrinfo() service string each tool derives from that int: swtpm_ioctl
 * truncates the port to 16 bits first, swtpm_bios prints it unsigned into a
 * 10-byte buffer (so "-1" becomes "429496729"). */
void tl_service_ioctl(int port, char buf[16]);
void tl_service_bios(int port, char buf[16]);

/* Resolve (AF_UNSPEC, SOCK_STREAM) and try every address in turn.  Returns a
 * connected fd; -EADDRNOTAVAIL with *gai_err set when resolution failed;
 * otherwise -errno of the last failed connect. */
int tl_tcp_connect(const char *host, const char *service, int *gai_err);

/* Connect to a UnixIO socket.  timeout_ms < 0: plain blocking connect.
 * Otherwise a non-blocking connect whose EAGAIN/EINPROGRESS is waited for with
 * poll(); *waited tells the caller that the failure happened in that phase.
 * -ENAMETOOLONG if the path does not fit sun_path. */
int tl_unix_connect(const char *path, int timeout_ms, bool *waited);

/* write() until done; -errno on failure, -EIO on a zero-length write. */
int tl_write_all(int fd, const void *buf, size_t len);

/* ------------------------------------------------------------ control channel */

/* Buffer big enough for every PTM union (ptm_hdata is the largest). */
#define TL_CTRL_UNION_MAX sizeof(struct ptm_ioc_hdata)

/* Result bit that marks a GET_STATEBLOB answer as "no such state", not an error. */
#define TL_TPM_NON_FATAL 0x800u

/* Socket framing of one request: iov[0] = u32 BE command code (stored in
 * code_be), iov[1] = the first in_len bytes of the union buffer.  swtpm_ioctl
 * always writes both, even when in_len is 0. */
void tl_ctrl_iov(uint32_t cmd, uint8_t code_be[4], void *u, size_t in_len, struct iovec iov[2]);

/* Request encoders.  `u` is a zeroed union buffer of the command's struct
 * size; `be` selects big-endian (control socket) or host order (device).
 * Each returns the request length sent on a stream (sizeof the req part). */
size_t tl_enc_u32(uint8_t *u, bool be, uint32_t v); /* INIT, SET_BUFFERSIZE, LOCK_STORAGE */
size_t tl_enc_loc(uint8_t *u, uint8_t loc);	    /* SET_LOCALITY, RESET_TPMESTABLISHED */
size_t tl_enc_hdata(uint8_t *u, bool be, const void *data, size_t len);
size_t tl_enc_getstate(uint8_t *u, bool be, uint32_t flags, uint32_t type, uint32_t offset);
/* length is the value of the length field; datalen bytes of data follow (<= 3072). */
size_t tl_enc_setstate(uint8_t *u, bool be, uint32_t flags, uint32_t type, uint32_t length,
		       const void *data, size_t datalen);
size_t tl_enc_getinfo(uint8_t *u, bool be, uint64_t flags, uint32_t offset);

uint32_t tl_dec_result(const uint8_t *u, bool be);

/* Checks a reply of n bytes (decoded result `res`) of a command without request
 * body: 0.7.1 reads its result from uninitialised memory when fewer than 4
 * bytes arrive; we report -EBADMSG instead.  Returns 0 if usable. */
int tl_ctrl_reply_complete(uint32_t cmd, size_t n, uint32_t res);

struct tl_getstate_hdr {
	uint32_t result;
	uint32_t state_flags;
	uint32_t totlength;
	uint32_t length;
};

void tl_dec_getstate(const uint8_t *u, bool be, struct tl_getstate_hdr *h);

/* Map a GET_STATEBLOB answer of n bytes to the payload to store and what is
 * still missing.  Stream (socket) semantics: everything after the 16-byte
 * header is payload and totlength counts what is outstanding (-EPROTO if the
 * header itself is incomplete, i.e. "Too few bytes in response").  Device
 * semantics: `length` bytes at offset 16 (-EMSGSIZE beyond the 3072-byte
 * area).  *remaining = totlength - *datalen and may be negative. */
int tl_getstate_chunk(const struct tl_getstate_hdr *h, size_t n, bool stream, size_t *datalen,
		      int64_t *remaining);

/* "permanent" / "volatile" / "savestate" -> PTM_BLOB_TYPE_*, 0 if unknown. */
uint32_t tl_blob_type(const char *name);

/* The NUL-terminated text of a GET_INFO reply, bounded by its buffer. */
size_t tl_dec_info(const uint8_t *u, const char **text);

/* ------------------------------------------------------------ TPM data channel */

#define TL_TPM_RESP_MAX 1024

/* swtpm_bios' response check: -EPROTO below 10 bytes ("Returned packet is too
 * short."), -EBADMSG when the header size disagrees with the byte count
 * ("Malformed response."). */
int tl_tpm_resp_check(const uint8_t *buf, size_t n);
uint32_t tl_tpm_resp_code(const uint8_t *buf);

/* TPM 1.2 TPM_GetCapability(TPM_CAP_FLAG, TPM_CAP_FLAG_PERMANENT) reply: is the
 * `deactivated` byte (offset 18: header, respSize, structure tag, disable,
 * ownership) present and set? */
bool tl_tpm12_perm_deactivated(const uint8_t *buf, size_t n);

#define TL_TPM2_HCA_LEN 49
/* TPM2_HierarchyChangeAuth(TPM_RH_PLATFORM) with an empty password session
 * and a 20-byte newAuth. */
void tl_tpm2_hca_cmd(uint8_t out[TL_TPM2_HCA_LEN], const uint8_t auth[20]);

#endif
