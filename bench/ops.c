/* The benchmark operations and the VM-boot mix. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops.h"

const char *const op_names[OP_COUNT] = {
	[OP_GETRANDOM] = "getrandom",
	[OP_PCREXTEND] = "pcrextend",
	[OP_NVINCREMENT] = "nvincrement",
	[OP_CREATEPRIMARY] = "createprimary",
	[OP_SIGN] = "sign",
	[OP_BOOTMIX] = "bootmix",
};

enum boot_kind { BK_EXTEND, BK_RANDOM, BK_NVREAD_SMALL, BK_NVREAD_COUNTER };

struct boot_step {
	enum boot_kind kind;
	uint32_t pcr;
};

/* What a UEFI guest asks of its TPM between power-on and a running kernel,
 * in order: firmware measurements and the separators, shim + GRUB, then the
 * kernel's EFI stub and early RNG seeding. Only PCRs 0-7 (all extendable from
 * locality 0) are used, every extend is a single SHA-256 digest. */
static const struct boot_step boot_mix[] = {
	/* firmware: SEC/PEI/DXE */
	{ BK_EXTEND, 0 },	/* CRTM version */
	{ BK_EXTEND, 0 },	/* platform firmware blob */
	{ BK_EXTEND, 1 },	/* SMBIOS / platform configuration */
	{ BK_EXTEND, 1 },	/* BootOrder / Boot#### variables */
	{ BK_RANDOM, 0 },	/* firmware RNG seed */
	{ BK_NVREAD_SMALL, 0 },	/* firmware reads its NV policy data */
	{ BK_EXTEND, 7 },	/* SecureBoot */
	{ BK_EXTEND, 7 },	/* PK */
	{ BK_EXTEND, 7 },	/* KEK */
	{ BK_EXTEND, 7 },	/* db */
	{ BK_EXTEND, 7 },	/* dbx */
	{ BK_EXTEND, 2 },	/* option ROM */
	{ BK_EXTEND, 3 },	/* option ROM configuration */
	{ BK_EXTEND, 4 },	/* "Calling EFI Application from Boot Option" */
	{ BK_EXTEND, 0 },	/* separators, PCR 0..7 */
	{ BK_EXTEND, 1 },
	{ BK_EXTEND, 2 },
	{ BK_EXTEND, 3 },
	{ BK_EXTEND, 4 },
	{ BK_EXTEND, 5 },
	{ BK_EXTEND, 6 },
	{ BK_EXTEND, 7 },
	/* boot loader: shim + GRUB */
	{ BK_EXTEND, 4 },	/* shim image */
	{ BK_EXTEND, 7 },	/* db entry that verified shim */
	{ BK_EXTEND, 7 },	/* SbatLevel */
	{ BK_EXTEND, 5 },	/* GPT */
	{ BK_NVREAD_COUNTER, 0 },	/* anti-rollback boot counter */
	{ BK_EXTEND, 4 },	/* GRUB image */
	{ BK_EXTEND, 7 },	/* MokList / vendor certificate */
	{ BK_EXTEND, 4 },	/* kernel image */
	/* kernel: EFI stub and early boot */
	{ BK_RANDOM, 0 },	/* EFI stub RNG seed */
	{ BK_EXTEND, 5 },	/* ExitBootServices invocation */
	{ BK_EXTEND, 5 },	/* ExitBootServices returned success */
	{ BK_RANDOM, 0 },	/* hwrng seeding */
	{ BK_NVREAD_SMALL, 0 },	/* early userspace reads sealed-config index */
	{ BK_NVREAD_COUNTER, 0 },	/* boot counter check */
	{ BK_EXTEND, 6 },	/* platform-specific event */
	{ BK_RANDOM, 0 },	/* systemd random seed credit */
};

_Static_assert(sizeof(boot_mix) / sizeof(boot_mix[0]) == BOOTMIX_LEN,
	       "the VM-boot mix must be exactly BOOTMIX_LEN commands");

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void record(struct failure *f, int err, int op, const struct tpm2_cmd *c,
		   const uint8_t *rsp, size_t rlen)
{
	f->err = err;
	f->op = op;
	f->cmdlen = c->len;
	memcpy(f->cmd, c->b, c->len);
	f->rsplen = rlen > sizeof(f->rsp) ? sizeof(f->rsp) : rlen;
	if (rsp && f->rsplen)
		memcpy(f->rsp, rsp, f->rsplen);
	if (err != -EPROTO && err != -EBADMSG)
		snprintf(f->why, sizeof(f->why), "transport: %s", strerror(-err));
	else if (err == -EBADMSG)
		snprintf(f->why, sizeof(f->why), "response cannot be framed by its size field (%zu bytes arrived)",
			 rlen);
}

/* One command, untimed, checked at once: for set-up and tear-down. */
static int exchange(struct target *t, const struct tpm2_cmd *c, enum tpm2_expect exp,
		    unsigned arg, struct failure *f)
{
	size_t rlen = 0;
	int rc;

	rc = t->xfer(t->ctx, c->b, c->len, t->rsp[0], sizeof(t->rsp[0]), &rlen);
	if (rc == 0)
		rc = tpm2_check(t->rsp[0], rlen, exp, arg, f->why, sizeof(f->why));
	if (rc)
		record(f, rc, -1, c, t->rsp[0], rlen);
	return rc;
}

static int build_boot(struct target *t)
{
	int rc = 0;

	for (size_t i = 0; i < BOOTMIX_LEN && !rc; i++) {
		const struct boot_step *s = &boot_mix[i];

		switch (s->kind) {
		case BK_EXTEND:
			/* A different digest per step, like real event digests. */
			rc = tpm2_build_pcr_extend(&t->boot[i], s->pcr, (uint8_t)(0x40 + i));
			t->boot_exp[i] = EXP_SESS_NOPARAM;
			t->boot_arg[i] = 0;
			break;
		case BK_RANDOM:
			rc = tpm2_build_getrandom(&t->boot[i], BENCH_RANDOM_BYTES);
			t->boot_exp[i] = EXP_RANDOM;
			t->boot_arg[i] = BENCH_RANDOM_BYTES;
			break;
		case BK_NVREAD_SMALL:
			rc = tpm2_build_nv_read(&t->boot[i], BENCH_NV_SMALL, BENCH_NV_SMALL_SIZE);
			t->boot_exp[i] = EXP_NVREAD;
			t->boot_arg[i] = BENCH_NV_SMALL_SIZE;
			break;
		case BK_NVREAD_COUNTER:
			rc = tpm2_build_nv_read(&t->boot[i], BENCH_NV_COUNTER, 8);
			t->boot_exp[i] = EXP_NVREAD;
			t->boot_arg[i] = 8;
			break;
		}
	}
	return rc;
}

int target_setup(struct target *t, unsigned ops_mask, struct failure *f)
{
	uint8_t data[BENCH_NV_SMALL_SIZE];
	struct tpm2_cmd c;
	int rc;

	memset(f, 0, sizeof(*f));
	t->sign_key = 0;
	t->boot_rsp = NULL;
	rc = tpm2_build_getrandom(&t->getrandom, BENCH_RANDOM_BYTES);
	if (!rc)
		rc = tpm2_build_pcr_extend(&t->pcrextend, BENCH_EXTEND_PCR, 0xA5);
	if (!rc)
		rc = tpm2_build_nv_increment(&t->nvinc, BENCH_NV_COUNTER);
	if (!rc)
		rc = tpm2_build_create_primary_ecc(&t->create);
	if (!rc)
		rc = build_boot(t);
	if (rc) {
		snprintf(f->why, sizeof(f->why), "internal: command does not fit its buffer");
		f->err = rc;
		goto out;
	}
	/* Readiness: the first answered GetRandom proves the TPM is started. */
	rc = exchange(t, &t->getrandom, EXP_RANDOM, BENCH_RANDOM_BYTES, f);
	if (rc)
		goto out;

	if (ops_mask & ((1u << OP_NVINCREMENT) | (1u << OP_BOOTMIX))) {
		rc = tpm2_build_nv_define(&c, BENCH_NV_COUNTER, tpm2_nv_attrs_counter(), 8);
		if (!rc)
			rc = exchange(t, &c, EXP_SESS_NOPARAM, 0, f);
		/* A counter reads as uninitialised until its first increment. */
		if (!rc)
			rc = exchange(t, &t->nvinc, EXP_SESS_NOPARAM, 0, f);
		if (!rc)
			rc = tpm2_build_nv_define(&c, BENCH_NV_SMALL, tpm2_nv_attrs_ordinary(),
						  BENCH_NV_SMALL_SIZE);
		if (!rc)
			rc = exchange(t, &c, EXP_SESS_NOPARAM, 0, f);
		memset(data, 0x5a, sizeof(data));
		if (!rc)
			rc = tpm2_build_nv_write(&c, BENCH_NV_SMALL, data, sizeof(data));
		if (!rc)
			rc = exchange(t, &c, EXP_SESS_NOPARAM, 0, f);
		if (rc)
			goto out;
	}
	if (ops_mask & (1u << OP_SIGN)) {
		size_t rlen = 0;

		rc = t->xfer(t->ctx, t->create.b, t->create.len, t->rsp[0], sizeof(t->rsp[0]), &rlen);
		if (!rc)
			rc = tpm2_check(t->rsp[0], rlen, EXP_CREATEPRIMARY, 0, f->why, sizeof(f->why));
		if (rc) {
			record(f, rc, -1, &t->create, t->rsp[0], rlen);
			goto out;
		}
		t->sign_key = tpm2_rsp_handle(t->rsp[0], rlen);
		rc = tpm2_build_sign(&t->sign, t->sign_key);
		if (rc)
			goto out;
	}
	if (ops_mask & (1u << OP_BOOTMIX)) {
		t->boot_rsp = calloc(BOOTMIX_LEN, sizeof(*t->boot_rsp));
		if (!t->boot_rsp) {
			rc = -ENOMEM;
			f->err = rc;
			snprintf(f->why, sizeof(f->why), "out of memory");
			goto out;
		}
	}
out:
	return rc;
}

int target_teardown(struct target *t, struct failure *f)
{
	struct tpm2_cmd c;
	int rc = 0;

	memset(f, 0, sizeof(*f));
	if (t->sign_key) {
		rc = tpm2_build_flush(&c, t->sign_key);
		if (!rc)
			rc = exchange(t, &c, EXP_EMPTY, 0, f);
		t->sign_key = 0;
	}
	free(t->boot_rsp);
	t->boot_rsp = NULL;
	return rc;
}

/* One command timed on its own. */
static int run_simple(struct target *t, enum op_id op, const struct tpm2_cmd *c,
		      enum tpm2_expect exp, unsigned arg, uint64_t *ns, struct failure *f)
{
	size_t rlen = 0;
	uint64_t t0, t1;
	int rc;

	t0 = now_ns();
	rc = t->xfer(t->ctx, c->b, c->len, t->rsp[0], sizeof(t->rsp[0]), &rlen);
	t1 = now_ns();
	if (!rc)
		rc = tpm2_check(t->rsp[0], rlen, exp, arg, f->why, sizeof(f->why));
	if (rc) {
		record(f, rc, op, c, t->rsp[0], rlen);
		return rc;
	}
	*ns = t1 - t0;
	return 0;
}

/* CreatePrimary + FlushContext as one op: the flush needs the handle from
 * the first response, so only that is looked at on the clock. */
static int run_create(struct target *t, uint64_t *ns, struct failure *f)
{
	struct tpm2_cmd flush;
	size_t rlen = 0, flen = 0;
	uint32_t handle;
	uint64_t t0, t1;
	int rc, frc = -EPROTO;

	t0 = now_ns();
	rc = t->xfer(t->ctx, t->create.b, t->create.len, t->rsp[0], sizeof(t->rsp[0]), &rlen);
	handle = tpm2_rsp_handle(t->rsp[0], rlen);
	if (!rc && rlen >= 14 && tpm2_be32(t->rsp[0] + 6) == 0) {
		frc = tpm2_build_flush(&flush, handle);
		if (!frc)
			frc = t->xfer(t->ctx, flush.b, flush.len, t->rsp[1], sizeof(t->rsp[1]), &flen);
	}
	t1 = now_ns();
	if (!rc)
		rc = tpm2_check(t->rsp[0], rlen, EXP_CREATEPRIMARY, 0, f->why, sizeof(f->why));
	if (rc) {
		record(f, rc, OP_CREATEPRIMARY, &t->create, t->rsp[0], rlen);
		return rc;
	}
	if (!frc)
		frc = tpm2_check(t->rsp[1], flen, EXP_EMPTY, 0, f->why, sizeof(f->why));
	if (frc) {
		record(f, frc, OP_CREATEPRIMARY, &flush, t->rsp[1], flen);
		return frc;
	}
	*ns = t1 - t0;
	return 0;
}

static int run_boot(struct target *t, uint64_t *ns, struct failure *f)
{
	uint64_t t0, t1;
	size_t i, n = 0;
	int rc = 0;

	t0 = now_ns();
	for (i = 0; i < BOOTMIX_LEN; i++) {
		rc = t->xfer(t->ctx, t->boot[i].b, t->boot[i].len, t->boot_rsp[i],
			     sizeof(t->boot_rsp[i]), &t->boot_len[i]);
		if (rc)
			break;
	}
	t1 = now_ns();
	if (rc) {
		record(f, rc, OP_BOOTMIX, &t->boot[i], t->boot_rsp[i], t->boot_len[i]);
		return rc;
	}
	for (n = 0; n < BOOTMIX_LEN; n++) {
		rc = tpm2_check(t->boot_rsp[n], t->boot_len[n], t->boot_exp[n], t->boot_arg[n],
				f->why, sizeof(f->why));
		if (rc) {
			char step[48];

			snprintf(step, sizeof(step), " (boot step %zu)", n + 1);
			strncat(f->why, step, sizeof(f->why) - strlen(f->why) - 1);
			record(f, rc, OP_BOOTMIX, &t->boot[n], t->boot_rsp[n], t->boot_len[n]);
			return rc;
		}
	}
	*ns = t1 - t0;
	return 0;
}

int target_run(struct target *t, enum op_id op, uint32_t count, uint64_t *lat_ns,
	       uint32_t *done, struct failure *f)
{
	uint32_t i;
	int rc = 0;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < count && !rc; i++) {
		switch (op) {
		case OP_GETRANDOM:
			rc = run_simple(t, op, &t->getrandom, EXP_RANDOM, BENCH_RANDOM_BYTES,
					&lat_ns[i], f);
			break;
		case OP_PCREXTEND:
			rc = run_simple(t, op, &t->pcrextend, EXP_SESS_NOPARAM, 0, &lat_ns[i], f);
			break;
		case OP_NVINCREMENT:
			rc = run_simple(t, op, &t->nvinc, EXP_SESS_NOPARAM, 0, &lat_ns[i], f);
			break;
		case OP_CREATEPRIMARY:
			rc = run_create(t, &lat_ns[i], f);
			break;
		case OP_SIGN:
			rc = run_simple(t, op, &t->sign, EXP_SIGN, 0, &lat_ns[i], f);
			break;
		case OP_BOOTMIX:
			rc = run_boot(t, &lat_ns[i], f);
			break;
		default:
			rc = -EINVAL;
			break;
		}
	}
	*done = rc ? i - 1 : i;
	return rc;
}

static void hexdump(FILE *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%02x", (i % 32 == 0) ? "\n    " : " ", p[i]);
	fputc('\n', out);
}

void failure_print(FILE *out, const char *impl, const struct failure *f)
{
	fprintf(out, "FAIL %s %s: %s\n", impl,
		f->op >= 0 && f->op < OP_COUNT ? op_names[f->op] : "setup", f->why);
	fprintf(out, "  command (%zu bytes):", f->cmdlen);
	hexdump(out, f->cmd, f->cmdlen);
	fprintf(out, "  response (%zu bytes):", f->rsplen);
	hexdump(out, f->rsp, f->rsplen);
}
