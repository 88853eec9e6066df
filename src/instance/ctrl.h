/* The one control-command dispatcher: every transport (socket ctrl channel, CUSE
 * ioctls) decodes into struct ctrl_req and encodes struct ctrl_rsp. */
#ifndef VTPM_CTRL_H
#define VTPM_CTRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtpm/ctrl_proto.h"

struct instance;

/* A decoded request. `n` is the number of body bytes that arrived (socket
 * semantics: swtpm checks lengths against it); decoded fields are valid only
 * when n covers them. CUSE codecs set n to the struct's request size. */
struct ctrl_req {
	uint32_t code;
	size_t n;
	int fd; /* SCM_RIGHTS fd or -1; set to -1 by the dispatcher if it takes it */
	union {
		uint32_t init_flags;
		uint8_t loc;
		uint32_t buffersize;
		uint32_t retries;
		struct {
			uint32_t length;
			const uint8_t *data; /* n - 4 bytes */
			size_t datalen;
		} hash;
		struct {
			uint32_t flags, type, offset;
		} getstate;
		struct {
			uint32_t flags, type, length;
			const uint8_t *data; /* n - 12 bytes */
			size_t datalen;
		} setstate;
		struct {
			uint64_t flags;
			uint32_t offset;
		} getinfo;
	} u;
};

/* A response. With `full` false only the 4-byte result goes on the wire
 * (errors and plain commands); with `full` the command's whole structure. */
struct ctrl_rsp {
	uint32_t result;
	bool full;
	bool exit_after; /* CMD_SHUTDOWN: the process ends after replying */
	int exit_status; /* ... with this status */
	union {
		uint64_t caps;
		uint8_t est_bit;
		uint32_t config_flags;
		struct {
			uint32_t flags, totlength, length;
		} blob;
		struct {
			uint32_t size, min, max;
		} bufsize;
		struct {
			uint32_t totlength, length;
		} info;
	} u;
	uint8_t *payload; /* blob bytes or info text (malloc'ed), payload_len bytes */
	size_t payload_len;
};

/* Execute one request against the instance. Never fails: every problem is a
 * result code in rsp. Free rsp with ctrl_rsp_free. */
void ctrl_dispatch(struct instance *inst, struct ctrl_req *req, struct ctrl_rsp *rsp);
void ctrl_rsp_free(struct ctrl_rsp *rsp);

#endif
