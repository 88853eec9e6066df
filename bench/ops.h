/* Benchmark operations run against one TPM "target": a transport function
 * (socket to a server, or libtpms in-process) plus the pre-built commands. */
#ifndef VTPM_BENCH_OPS_H
#define VTPM_BENCH_OPS_H

#include <stdint.h>
#include <stdio.h>

#include "tpm2.h"

enum op_id {
	OP_GETRANDOM,
	OP_PCREXTEND,
	OP_NVINCREMENT,
	OP_CREATEPRIMARY,
	OP_SIGN,
	OP_BOOTMIX,
	OP_COUNT
};

extern const char *const op_names[OP_COUNT];

/* Sends one command and collects its complete response into rsp.
 * Returns 0, -EBADMSG when the bytes cannot be framed (size field out of
 * range or more bytes than it announces; *rlen still tells what arrived), or
 * another negative errno for transport failures (timeout, EOF, ...). */
typedef int (*xfer_fn)(void *ctx, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
		       size_t *rlen);

/* A failed command, with everything needed to report it. Plain data so the
 * floor child can send it to the parent as bytes. */
struct failure {
	int err;		/* -EPROTO validation, other: transport */
	int op;			/* enum op_id, or -1 during set-up */
	char why[256];
	uint8_t cmd[TPM2_MAX_CMD];
	size_t cmdlen;
	uint8_t rsp[TPM2_MAX_RSP];
	size_t rsplen;
};

struct target {
	xfer_fn xfer;
	void *ctx;
	uint32_t sign_key;	/* 0 = none loaded */
	struct tpm2_cmd getrandom, pcrextend, nvinc, create, sign;
	struct tpm2_cmd boot[BOOTMIX_LEN];
	enum tpm2_expect boot_exp[BOOTMIX_LEN];
	unsigned boot_arg[BOOTMIX_LEN];
	/* Responses are kept until the clock is stopped and checked after, so
	 * that validation cost never lands in a latency. */
	uint8_t rsp[2][TPM2_MAX_RSP];
	uint8_t (*boot_rsp)[TPM2_MAX_RSP];
	size_t boot_len[BOOTMIX_LEN];
};

/* Builds the commands and prepares the TPM for the ops in ops_mask (bit per
 * enum op_id): NV indices for nvincrement/bootmix, the signing key for sign.
 * The first command doubles as the readiness check. */
int target_setup(struct target *t, unsigned ops_mask, struct failure *f);
/* Flushes the signing key; frees memory. */
int target_teardown(struct target *t, struct failure *f);
/* Runs count ops, storing each latency in ns; *done says how many finished
 * before a failure (the failed op is not counted). 0 or negative errno. */
int target_run(struct target *t, enum op_id op, uint32_t count, uint64_t *lat_ns,
	       uint32_t *done, struct failure *f);

void failure_print(FILE *out, const char *impl, const struct failure *f);

uint64_t now_ns(void);

#endif
