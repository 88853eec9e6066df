/* TPM 2.0 command encoding and response checking (Part 3 layouts). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tpm2.h"

#define TPM2_RS_PW 0x40000009u
#define TPM2_RH_OWNER 0x40000001u
#define TPM2_RH_NULL 0x40000007u
#define TPM2_ST_HASHCHECK 0x8024
#define TPM2_ST_CREATION 0x8021
#define TPM2_ALG_SHA256 0x000B
#define TPM2_ALG_NULL 0x0010
#define TPM2_ALG_ECDSA 0x0018
#define TPM2_ALG_ECC 0x0023
#define TPM2_ECC_NIST_P256 0x0003
#define SHA256_LEN 32
#define P256_LEN 32

/* TPMA_OBJECT bits for a plain (unrestricted) signing key. noDA: the first
 * use of a DA-protected object after start-up answers TPM_RC_RETRY (libtpms
 * records "DA used" in NV first), which would be a per-instance artefact. */
#define OBJ_FIXEDTPM (1u << 1)
#define OBJ_FIXEDPARENT (1u << 4)
#define OBJ_SENSITIVEDATAORIGIN (1u << 5)
#define OBJ_USERWITHAUTH (1u << 6)
#define OBJ_NODA (1u << 10)
#define OBJ_SIGN (1u << 18)
#define ECC_SIGN_ATTRS (OBJ_FIXEDTPM | OBJ_FIXEDPARENT | OBJ_SENSITIVEDATAORIGIN | \
			OBJ_USERWITHAUTH | OBJ_NODA | OBJ_SIGN)

/* TPMA_NV bits. ORDERLY is deliberately absent: an orderly counter is only
 * flushed to NV now and then, and the point of nvincrement is a state write. */
#define NV_OWNERWRITE (1u << 1)
#define NV_AUTHWRITE (1u << 2)
#define NV_TPM_NT_COUNTER (1u << 4)
#define NV_OWNERREAD (1u << 17)
#define NV_AUTHREAD (1u << 18)
#define NV_NO_DA (1u << 25)

/* ---- bounds-checked writer ---------------------------------------------- */

struct wr {
	uint8_t *p;
	size_t cap, len;
	bool overflow;
};

static void wr_bytes(struct wr *w, const void *src, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void wr_u8(struct wr *w, uint8_t v)
{
	wr_bytes(w, &v, 1);
}

static void wr_u16(struct wr *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	wr_bytes(w, b, 2);
}

static void wr_u32(struct wr *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	wr_bytes(w, b, 4);
}

static void cmd_begin(struct wr *w, struct tpm2_cmd *c, uint16_t tag, uint32_t cc)
{
	w->p = c->b;
	w->cap = sizeof(c->b);
	w->len = 0;
	w->overflow = false;
	c->cc = cc;
	wr_u16(w, tag);
	wr_u32(w, 0);		/* size, patched in cmd_end() */
	wr_u32(w, cc);
}

static int cmd_end(struct wr *w, struct tpm2_cmd *c)
{
	if (w->overflow)
		return -ENOSPC;
	c->b[2] = (uint8_t)(w->len >> 24);
	c->b[3] = (uint8_t)(w->len >> 16);
	c->b[4] = (uint8_t)(w->len >> 8);
	c->b[5] = (uint8_t)w->len;
	c->len = w->len;
	return 0;
}

/* One password session (TPM_RS_PW) with an empty password: the cheapest
 * authorisation there is, so the bench measures the command, not HMACs. */
static void wr_pw_session(struct wr *w)
{
	wr_u32(w, 4 + 2 + 1 + 2);	/* authorizationSize */
	wr_u32(w, TPM2_RS_PW);
	wr_u16(w, 0);			/* nonceCaller */
	wr_u8(w, 0);			/* sessionAttributes */
	wr_u16(w, 0);			/* hmac = password (empty) */
}

int tpm2_build_startup_clear(struct tpm2_cmd *c)
{
	struct wr w;

	cmd_begin(&w, c, TPM2_ST_NO_SESSIONS, TPM2_CC_STARTUP);
	wr_u16(&w, 0x0000);		/* TPM_SU_CLEAR */
	return cmd_end(&w, c);
}

int tpm2_build_getrandom(struct tpm2_cmd *c, uint16_t n)
{
	struct wr w;

	cmd_begin(&w, c, TPM2_ST_NO_SESSIONS, TPM2_CC_GETRANDOM);
	wr_u16(&w, n);
	return cmd_end(&w, c);
}

int tpm2_build_pcr_extend(struct tpm2_cmd *c, uint32_t pcr, uint8_t fill)
{
	uint8_t digest[SHA256_LEN];
	struct wr w;

	memset(digest, fill, sizeof(digest));
	cmd_begin(&w, c, TPM2_ST_SESSIONS, TPM2_CC_PCR_EXTEND);
	wr_u32(&w, pcr);
	wr_pw_session(&w);
	wr_u32(&w, 1);			/* TPML_DIGEST_VALUES.count */
	wr_u16(&w, TPM2_ALG_SHA256);
	wr_bytes(&w, digest, sizeof(digest));
	return cmd_end(&w, c);
}

uint32_t tpm2_nv_attrs_counter(void)
{
	return NV_TPM_NT_COUNTER | NV_AUTHWRITE | NV_AUTHREAD | NV_OWNERWRITE |
	       NV_OWNERREAD | NV_NO_DA;
}

uint32_t tpm2_nv_attrs_ordinary(void)
{
	return NV_AUTHWRITE | NV_AUTHREAD | NV_OWNERWRITE | NV_OWNERREAD | NV_NO_DA;
}

int tpm2_build_nv_define(struct tpm2_cmd *c, uint32_t index, uint32_t attrs, uint16_t size)
{
	struct wr w;

	cmd_begin(&w, c, TPM2_ST_SESSIONS, TPM2_CC_NV_DEFINESPACE);
	wr_u32(&w, TPM2_RH_OWNER);
	wr_pw_session(&w);
	wr_u16(&w, 0);			/* TPM2B_AUTH: index password empty */
	wr_u16(&w, 4 + 2 + 4 + 2 + 2);	/* TPM2B_NV_PUBLIC.size */
	wr_u32(&w, index);
	wr_u16(&w, TPM2_ALG_SHA256);	/* nameAlg */
	wr_u32(&w, attrs);
	wr_u16(&w, 0);			/* authPolicy */
	wr_u16(&w, size);		/* dataSize */
	return cmd_end(&w, c);
}

int tpm2_build_nv_increment(struct tpm2_cmd *c, uint32_t index)
{
	struct wr w;

	cmd_begin(&w, c, TPM2_ST_SESSIONS, TPM2_CC_NV_INCREMENT);
	wr_u32(&w, index);		/* authHandle: the index itself (AUTHWRITE) */
	wr_u32(&w, index);
	wr_pw_session(&w);
	return cmd_end(&w, c);
}

int tpm2_build_nv_write(struct tpm2_cmd *c, uint32_t index, const uint8_t *data, uint16_t n)
{
	struct wr w;

	cmd_begin(&w, c, TPM2_ST_SESSIONS, TPM2_CC_NV_WRITE);
	wr_u32(&w, index);
	wr_u32(&w, index);
	wr_pw_session(&w);
	wr_u16(&w, n);
	wr_bytes(&w, data, n);
	wr_u16(&w, 0);			/* offset */
	return cmd_end(&w, c);
}

int tpm2_build_nv_read(struct tpm2_cmd *c, uint32_t index, uint16_t n)
{
	struct wr w;

	cmd_begin(&w, c, TPM2_ST_SESSIONS, TPM2_CC_NV_READ);
	wr_u32(&w, index);
	wr_u32(&w, index);
	wr_pw_session(&w);
	wr_u16(&w, n);			/* size */
	wr_u16(&w, 0);			/* offset */
	return cmd_end(&w, c);
}

/* TPMT_PUBLIC body of the ECC P-256 ECDSA/SHA256 signing key; shared by the
 * builder and the checker, which insists the TPM echoes the same template. */
static void wr_ecc_template(struct wr *w, bool with_unique)
{
	wr_u16(w, TPM2_ALG_ECC);
	wr_u16(w, TPM2_ALG_SHA256);
	wr_u32(w, ECC_SIGN_ATTRS);
	wr_u16(w, 0);			/* authPolicy */
	wr_u16(w, TPM2_ALG_NULL);	/* symmetric */
	wr_u16(w, TPM2_ALG_ECDSA);	/* scheme */
	wr_u16(w, TPM2_ALG_SHA256);	/*   .hashAlg */
	wr_u16(w, TPM2_ECC_NIST_P256);
	wr_u16(w, TPM2_ALG_NULL);	/* kdf */
	if (with_unique) {
		wr_u16(w, 0);		/* unique.x */
		wr_u16(w, 0);		/* unique.y */
	}
}

#define ECC_TEMPLATE_LEN 20	/* wr_ecc_template() without unique */

int tpm2_build_create_primary_ecc(struct tpm2_cmd *c)
{
	struct wr w;

	cmd_begin(&w, c, TPM2_ST_SESSIONS, TPM2_CC_CREATEPRIMARY);
	wr_u32(&w, TPM2_RH_OWNER);
	wr_pw_session(&w);
	wr_u16(&w, 4);			/* TPM2B_SENSITIVE_CREATE.size */
	wr_u16(&w, 0);			/*   userAuth */
	wr_u16(&w, 0);			/*   data */
	wr_u16(&w, ECC_TEMPLATE_LEN + 4);	/* TPM2B_PUBLIC.size */
	wr_ecc_template(&w, true);
	wr_u16(&w, 0);			/* outsideInfo */
	wr_u32(&w, 0);			/* creationPCR: no selection */
	return cmd_end(&w, c);
}

int tpm2_build_flush(struct tpm2_cmd *c, uint32_t handle)
{
	struct wr w;

	cmd_begin(&w, c, TPM2_ST_NO_SESSIONS, TPM2_CC_FLUSHCONTEXT);
	wr_u32(&w, handle);		/* a parameter, not a handle-area entry */
	return cmd_end(&w, c);
}

int tpm2_build_sign(struct tpm2_cmd *c, uint32_t key)
{
	uint8_t digest[SHA256_LEN];
	struct wr w;

	for (size_t i = 0; i < sizeof(digest); i++)
		digest[i] = (uint8_t)(0x30 + i);
	cmd_begin(&w, c, TPM2_ST_SESSIONS, TPM2_CC_SIGN);
	wr_u32(&w, key);
	wr_pw_session(&w);
	wr_u16(&w, sizeof(digest));
	wr_bytes(&w, digest, sizeof(digest));
	wr_u16(&w, TPM2_ALG_ECDSA);	/* inScheme */
	wr_u16(&w, TPM2_ALG_SHA256);
	/* Null TPMT_TK_HASHCHECK: allowed because the key is not restricted. */
	wr_u16(&w, TPM2_ST_HASHCHECK);
	wr_u32(&w, TPM2_RH_NULL);
	wr_u16(&w, 0);
	return cmd_end(&w, c);
}

/* ---- bounds-checked reader ---------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;		/* sticky: any read past the end sets it */
};

static void rd_init(struct rd *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->bad = false;
}

static bool rd_has(struct rd *r, size_t n)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return false;
	}
	return true;
}

static uint8_t rd_u8(struct rd *r)
{
	if (!rd_has(r, 1))
		return 0;
	return r->p[r->off++];
}

static uint16_t rd_u16(struct rd *r)
{
	uint16_t v;

	if (!rd_has(r, 2))
		return 0;
	v = (uint16_t)((r->p[r->off] << 8) | r->p[r->off + 1]);
	r->off += 2;
	return v;
}

static uint32_t rd_u32(struct rd *r)
{
	uint32_t v;

	if (!rd_has(r, 4))
		return 0;
	v = tpm2_be32(r->p + r->off);
	r->off += 4;
	return v;
}

/* Reads a TPM2B header and skips its payload; returns the payload size. */
static uint16_t rd_tpm2b(struct rd *r)
{
	uint16_t n = rd_u16(r);

	if (rd_has(r, n))
		r->off += n;
	return n;
}

/* A sub-reader over the next n bytes (a TPM2B body), consumed from r. */
static void rd_sub(struct rd *r, size_t n, struct rd *sub)
{
	if (!rd_has(r, n)) {
		rd_init(sub, r->p, 0);
		sub->bad = true;
		return;
	}
	rd_init(sub, r->p + r->off, n);
	r->off += n;
}

uint32_t tpm2_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint32_t tpm2_rsp_handle(const uint8_t *rsp, size_t len)
{
	return len >= 14 ? tpm2_be32(rsp + 10) : 0;
}

static int fail(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

/* TPMS_AUTH_RESPONSE of a password session: empty nonce, attributes, empty
 * hmac; it must be the last thing in the response. */
static int check_pw_auth(struct rd *r, char *why, size_t whylen)
{
	uint16_t nonce = rd_tpm2b(r);
	uint16_t hmac;

	(void)rd_u8(r);
	hmac = rd_tpm2b(r);
	if (r->bad)
		return fail(why, whylen, "truncated session area");
	if (nonce != 0 || hmac != 0)
		return fail(why, whylen, "password session answered with nonce %u / hmac %u bytes",
			    nonce, hmac);
	if (r->off != r->len)
		return fail(why, whylen, "%zu trailing bytes after the session area",
			    r->len - r->off);
	return 0;
}

static int check_ecc_public(struct rd *r, char *why, size_t whylen)
{
	uint8_t want[ECC_TEMPLATE_LEN];
	struct rd pub;
	struct wr w = { want, sizeof(want), 0, false };
	uint16_t size = rd_u16(r), x, y;

	rd_sub(r, size, &pub);
	wr_ecc_template(&w, false);
	if (pub.bad || !rd_has(&pub, ECC_TEMPLATE_LEN))
		return fail(why, whylen, "outPublic truncated (size %u)", size);
	if (memcmp(pub.p, want, ECC_TEMPLATE_LEN) != 0)
		return fail(why, whylen, "outPublic does not echo the ECC P-256 template");
	pub.off += ECC_TEMPLATE_LEN;
	x = rd_tpm2b(&pub);
	y = rd_tpm2b(&pub);
	if (pub.bad || pub.off != pub.len)
		return fail(why, whylen, "outPublic unique point malformed");
	if (x != P256_LEN || y != P256_LEN)
		return fail(why, whylen, "public point is %u/%u bytes, want 32/32", x, y);
	return 0;
}

/* TPMS_CREATION_DATA walked field by field so its size must add up. */
static int check_creation_data(struct rd *r, char *why, size_t whylen)
{
	struct rd cd;
	uint16_t size = rd_u16(r);
	uint32_t count;

	rd_sub(r, size, &cd);
	count = rd_u32(&cd);
	if (count > 16)
		return fail(why, whylen, "creationData: %u PCR selections", count);
	for (uint32_t i = 0; i < count; i++) {
		uint8_t n;

		(void)rd_u16(&cd);
		n = rd_u8(&cd);
		if (rd_has(&cd, n))
			cd.off += n;
	}
	(void)rd_tpm2b(&cd);	/* pcrDigest */
	(void)rd_u8(&cd);	/* locality */
	(void)rd_u16(&cd);	/* parentNameAlg */
	(void)rd_tpm2b(&cd);	/* parentName */
	(void)rd_tpm2b(&cd);	/* parentQualifiedName */
	(void)rd_tpm2b(&cd);	/* outsideInfo */
	if (cd.bad || cd.off != cd.len)
		return fail(why, whylen, "creationData layout does not match its size %u", size);
	return 0;
}

static int check_create_primary(struct rd *r, char *why, size_t whylen)
{
	uint16_t hash, name, tdig, tag;
	uint32_t hier;
	int rc;

	rc = check_ecc_public(r, why, whylen);
	if (rc)
		return rc;
	rc = check_creation_data(r, why, whylen);
	if (rc)
		return rc;
	hash = rd_tpm2b(r);
	tag = rd_u16(r);
	hier = rd_u32(r);
	tdig = rd_tpm2b(r);
	name = rd_tpm2b(r);
	if (r->bad)
		return fail(why, whylen, "CreatePrimary parameters truncated");
	if (hash != SHA256_LEN)
		return fail(why, whylen, "creationHash is %u bytes, want 32", hash);
	/* The ticket HMAC uses the TPM's own proof hash (libtpms: SHA-512), not
	 * the object's nameAlg; any standard digest size is acceptable. */
	if (tdig != 20 && tdig != 32 && tdig != 48 && tdig != 64)
		return fail(why, whylen, "creationTicket digest is %u bytes", tdig);
	if (tag != TPM2_ST_CREATION || hier != TPM2_RH_OWNER)
		return fail(why, whylen, "creationTicket tag 0x%04x hierarchy 0x%08x", tag, hier);
	if (name != 2 + SHA256_LEN)
		return fail(why, whylen, "name is %u bytes, want 34", name);
	return 0;
}

static int check_sign(struct rd *r, char *why, size_t whylen)
{
	uint16_t alg = rd_u16(r), hash = rd_u16(r);
	uint16_t sr = rd_tpm2b(r), ss = rd_tpm2b(r);

	if (r->bad)
		return fail(why, whylen, "signature truncated");
	if (alg != TPM2_ALG_ECDSA || hash != TPM2_ALG_SHA256)
		return fail(why, whylen, "signature alg 0x%04x hash 0x%04x", alg, hash);
	/* TPM 2.0 pads ECC signature integers to the curve size. */
	if (sr != P256_LEN || ss != P256_LEN)
		return fail(why, whylen, "signature R/S are %u/%u bytes, want 32/32", sr, ss);
	return 0;
}

int tpm2_check(const uint8_t *rsp, size_t len, enum tpm2_expect exp, unsigned arg,
	       char *why, size_t whylen)
{
	struct rd r, params;
	uint16_t tag, n;
	uint32_t size, rc, psize, handle;
	bool sessions = exp != EXP_EMPTY && exp != EXP_RANDOM;
	int ret;

	if (len < 10)
		return fail(why, whylen, "response is %zu bytes, shorter than a header", len);
	rd_init(&r, rsp, len);
	tag = rd_u16(&r);
	size = rd_u32(&r);
	rc = rd_u32(&r);
	if (size != len)
		return fail(why, whylen, "size field %u != %zu bytes read", size, len);
	if (rc != 0)
		return fail(why, whylen, "response code 0x%08x", rc);
	if (tag != (sessions ? TPM2_ST_SESSIONS : TPM2_ST_NO_SESSIONS))
		return fail(why, whylen, "tag 0x%04x", tag);

	switch (exp) {
	case EXP_EMPTY:
		if (len != 10)
			return fail(why, whylen, "expected a 10-byte response, got %zu", len);
		return 0;
	case EXP_RANDOM:
		n = rd_u16(&r);
		if (r.bad || n != arg || len != 12 + (size_t)arg)
			return fail(why, whylen, "GetRandom returned %u bytes in %zu, want %u",
				    n, len, arg);
		return 0;
	default:
		break;
	}

	if (exp == EXP_CREATEPRIMARY) {
		handle = rd_u32(&r);
		/* Transient object handles are 0x80xxxxxx. */
		if (!r.bad && (handle >> 24) != 0x80)
			return fail(why, whylen, "object handle 0x%08x is not transient", handle);
	}
	psize = rd_u32(&r);
	rd_sub(&r, psize, &params);
	if (params.bad)
		return fail(why, whylen, "parameterSize %u exceeds the response", psize);
	ret = check_pw_auth(&r, why, whylen);
	if (ret)
		return ret;

	switch (exp) {
	case EXP_SESS_NOPARAM:
		break;
	case EXP_NVREAD:
		n = rd_tpm2b(&params);
		if (params.bad || n != arg)
			return fail(why, whylen, "NV_Read returned %u bytes, want %u", n, arg);
		break;
	case EXP_CREATEPRIMARY:
		ret = check_create_primary(&params, why, whylen);
		if (ret)
			return ret;
		break;
	case EXP_SIGN:
		ret = check_sign(&params, why, whylen);
		if (ret)
			return ret;
		break;
	default:
		return fail(why, whylen, "internal: unknown expectation %d", (int)exp);
	}
	if (params.off != params.len)
		return fail(why, whylen, "%zu unparsed parameter bytes", params.len - params.off);
	return 0;
}
