/* TPM 2.0 command builders and response validators for the load generator.
 * The bench builds its command bytes itself so that every implementation
 * (and the in-process floor) is fed byte-identical requests, and it checks
 * every response so that a fast-but-wrong server cannot win a benchmark. */
#ifndef VTPM_BENCH_TPM2_H
#define VTPM_BENCH_TPM2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest response we accept: libtpms' buffer (4096) is the protocol cap. */
#define TPM2_MAX_RSP 4096
#define TPM2_MAX_CMD 256

#define TPM2_ST_NO_SESSIONS 0x8001
#define TPM2_ST_SESSIONS 0x8002

#define TPM2_CC_NV_DEFINESPACE 0x0000012A
#define TPM2_CC_CREATEPRIMARY 0x00000131
#define TPM2_CC_NV_INCREMENT 0x00000134
#define TPM2_CC_NV_WRITE 0x00000137
#define TPM2_CC_STARTUP 0x00000144
#define TPM2_CC_NV_READ 0x0000014E
#define TPM2_CC_SIGN 0x0000015D
#define TPM2_CC_FLUSHCONTEXT 0x00000165
#define TPM2_CC_GETRANDOM 0x0000017B
#define TPM2_CC_PCR_EXTEND 0x00000182

/* NV indices the bench defines in every fresh TPM (owner range 0x01xxxxxx). */
#define BENCH_NV_COUNTER 0x01500010u
#define BENCH_NV_SMALL 0x01500011u
#define BENCH_NV_SMALL_SIZE 32
#define BENCH_RANDOM_BYTES 32
#define BENCH_EXTEND_PCR 16

/* Number of commands in the VM-boot mix (checked at compile time). */
#define BOOTMIX_LEN 38

struct tpm2_cmd {
	uint8_t b[TPM2_MAX_CMD];
	size_t len;
	uint32_t cc;
};

/* What a response must look like, beyond the common header checks. */
enum tpm2_expect {
	EXP_EMPTY,		/* 10-byte response, no sessions (FlushContext, Startup) */
	EXP_RANDOM,		/* GetRandom: TPM2B of exactly the requested length */
	EXP_SESS_NOPARAM,	/* sessions, no handle, no parameters */
	EXP_NVREAD,		/* sessions, TPM2B_MAX_NV_BUFFER of the requested length */
	EXP_CREATEPRIMARY,	/* sessions, 1 handle, full ECC P-256 layout */
	EXP_SIGN,		/* sessions, ECDSA/SHA256 signature with 32-byte R, S */
};

/* Builders: all return 0 or -ENOSPC (cannot happen with the fixed sizes, but
 * the writer is bounds-checked all the same). */
int tpm2_build_startup_clear(struct tpm2_cmd *c);
int tpm2_build_getrandom(struct tpm2_cmd *c, uint16_t n);
int tpm2_build_pcr_extend(struct tpm2_cmd *c, uint32_t pcr, uint8_t fill);
int tpm2_build_nv_define(struct tpm2_cmd *c, uint32_t index, uint32_t attrs, uint16_t size);
int tpm2_build_nv_increment(struct tpm2_cmd *c, uint32_t index);
int tpm2_build_nv_write(struct tpm2_cmd *c, uint32_t index, const uint8_t *data, uint16_t n);
int tpm2_build_nv_read(struct tpm2_cmd *c, uint32_t index, uint16_t n);
int tpm2_build_create_primary_ecc(struct tpm2_cmd *c);
int tpm2_build_flush(struct tpm2_cmd *c, uint32_t handle);
int tpm2_build_sign(struct tpm2_cmd *c, uint32_t key);

uint32_t tpm2_nv_attrs_counter(void);
uint32_t tpm2_nv_attrs_ordinary(void);

/* Checks a response against the header rules (size field == bytes, tag,
 * response code 0) and the layout `exp`. `arg` is the requested length for
 * EXP_RANDOM / EXP_NVREAD. On failure returns -EPROTO and writes a one-line
 * reason into why. */
int tpm2_check(const uint8_t *rsp, size_t len, enum tpm2_expect exp, unsigned arg,
	       char *why, size_t whylen);

/* Returns the object handle of a CreatePrimary response, or 0 if the bytes
 * are too short to hold one (the full check comes later, off the clock). */
uint32_t tpm2_rsp_handle(const uint8_t *rsp, size_t len);

uint32_t tpm2_be32(const uint8_t *p);

#endif
