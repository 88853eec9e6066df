/* Socket codec of the control channel: how many bytes a message needs, and the
 * big-endian request/response layouts (ctrl-channel.md §2–§5). */
#ifndef VTPM_CTRL_CODEC_H
#define VTPM_CTRL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "instance/ctrl.h"

/* Bytes (including the 4-byte code) a message needs, given `have` bytes so far,
 * as swtpm computes it: 4 until the code is in; HASH_DATA and SET_STATEBLOB grow
 * to header + length once the length field is in. Returns -EMSGSIZE when that
 * length exceeds CTRL_MAX_PAYLOAD (the stream cannot be followed any more). */
int ctrl_sock_needed(const uint8_t *buf, size_t have, size_t *needed);

/* True when `needed` covers only a fixed-size part (the 500 ms window applies);
 * false while a declared payload is being streamed. */
int ctrl_sock_in_payload(const uint8_t *buf, size_t have);

/* Decode a complete message (len >= 4). fd is the SCM_RIGHTS fd or -1. */
int ctrl_sock_decode(const uint8_t *buf, size_t len, int fd, struct ctrl_req *req);

/* Encode the reply to `code` into out (malloc'ed, *outlen bytes). -ENOMEM. */
int ctrl_sock_encode(uint32_t code, const struct ctrl_rsp *rsp, uint8_t **out, size_t *outlen);

#endif
