/* CUSE flavour of the control channel: the argument structures of the PTM_*
 * ioctls (host byte order, natural alignment) and the ioctl request numbers.
 *
 * Every structure is a union of what the caller passes in and what the driver
 * hands back; the ioctl always transfers sizeof(union).  The socket protocol
 * uses the same field order (big-endian) and sends only the request part.
 * The numbers are _IOR/_IOWR('P', code - 1, <union>), so they are checked
 * below against the values a swtpm 0.7/0.8 CUSE device expects on x86_64 /
 * aarch64 (the layouts have no pointer-sized members, so they are the same on
 * every LP64 and ILP32 target with 8-byte aligned u64). */
#ifndef VTPM_CTRL_IOCTL_H
#define VTPM_CTRL_IOCTL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "vtpm/ctrl_proto.h"

#define PTM_IOC_MAGIC 'P'

/* PTM_GET_CAPABILITY: a bare capability word, no result field. */
typedef uint64_t ptm_ioc_cap;

/* Commands whose only payload is the result (SHUTDOWN, HASH_START, ...). */
typedef uint32_t ptm_ioc_res;

struct ptm_ioc_est {
	union {
		struct {
			uint32_t tpm_result;
			uint8_t bit;
		} resp;
	} u;
};

struct ptm_ioc_reset_est {
	union {
		struct {
			uint8_t loc;
		} req;
		struct {
			uint32_t tpm_result;
		} resp;
	} u;
};

struct ptm_ioc_init {
	union {
		struct {
			uint32_t init_flags;
		} req;
		struct {
			uint32_t tpm_result;
		} resp;
	} u;
};

struct ptm_ioc_loc {
	union {
		struct {
			uint8_t loc;
		} req;
		struct {
			uint32_t tpm_result;
		} resp;
	} u;
};

struct ptm_ioc_hdata {
	union {
		struct {
			uint32_t length;
			uint8_t data[PTM_HASH_DATA_SIZE];
		} req;
		struct {
			uint32_t tpm_result;
		} resp;
	} u;
};

struct ptm_ioc_getstate {
	union {
		struct {
			uint32_t state_flags;
			uint32_t type;
			uint32_t offset;
		} req;
		struct {
			uint32_t tpm_result;
			uint32_t state_flags;
			uint32_t totlength;
			uint32_t length;
			uint8_t data[PTM_STATE_BLOB_SIZE];
		} resp;
	} u;
};

struct ptm_ioc_setstate {
	union {
		struct {
			uint32_t state_flags;
			uint32_t type;
			uint32_t length;
			uint8_t data[PTM_STATE_BLOB_SIZE];
		} req;
		struct {
			uint32_t tpm_result;
		} resp;
	} u;
};

struct ptm_ioc_getconfig {
	union {
		struct {
			uint32_t tpm_result;
			uint32_t flags;
		} resp;
	} u;
};

struct ptm_ioc_setbuffersize {
	union {
		struct {
			uint32_t buffersize;
		} req;
		struct {
			uint32_t tpm_result;
			uint32_t buffersize;
			uint32_t minsize;
			uint32_t maxsize;
		} resp;
	} u;
};

struct ptm_ioc_getinfo {
	union {
		struct {
			uint64_t flags;
			uint32_t offset;
			uint32_t pad;
		} req;
		struct {
			uint32_t tpm_result;
			uint32_t totlength;
			uint32_t length;
			char buffer[PTM_GETINFO_SIZE];
		} resp;
	} u;
};

struct ptm_ioc_lockstorage {
	union {
		struct {
			uint32_t retries;
		} req;
		struct {
			uint32_t tpm_result;
		} resp;
	} u;
};

#define PTM_GET_CAPABILITY _IOR(PTM_IOC_MAGIC, 0, ptm_ioc_cap)
#define PTM_INIT _IOWR(PTM_IOC_MAGIC, 1, struct ptm_ioc_init)
#define PTM_SHUTDOWN _IOR(PTM_IOC_MAGIC, 2, ptm_ioc_res)
#define PTM_GET_TPMESTABLISHED _IOR(PTM_IOC_MAGIC, 3, struct ptm_ioc_est)
#define PTM_SET_LOCALITY _IOWR(PTM_IOC_MAGIC, 4, struct ptm_ioc_loc)
#define PTM_HASH_START _IOR(PTM_IOC_MAGIC, 5, ptm_ioc_res)
#define PTM_HASH_DATA _IOWR(PTM_IOC_MAGIC, 6, struct ptm_ioc_hdata)
#define PTM_HASH_END _IOR(PTM_IOC_MAGIC, 7, ptm_ioc_res)
#define PTM_CANCEL_TPM_CMD _IOR(PTM_IOC_MAGIC, 8, ptm_ioc_res)
#define PTM_STORE_VOLATILE _IOR(PTM_IOC_MAGIC, 9, ptm_ioc_res)
#define PTM_RESET_TPMESTABLISHED _IOWR(PTM_IOC_MAGIC, 10, struct ptm_ioc_reset_est)
#define PTM_GET_STATEBLOB _IOWR(PTM_IOC_MAGIC, 11, struct ptm_ioc_getstate)
#define PTM_SET_STATEBLOB _IOWR(PTM_IOC_MAGIC, 12, struct ptm_ioc_setstate)
#define PTM_STOP _IOR(PTM_IOC_MAGIC, 13, ptm_ioc_res)
#define PTM_GET_CONFIG _IOR(PTM_IOC_MAGIC, 14, struct ptm_ioc_getconfig)
#define PTM_SET_DATAFD _IOR(PTM_IOC_MAGIC, 15, ptm_ioc_res)
#define PTM_SET_BUFFERSIZE _IOWR(PTM_IOC_MAGIC, 16, struct ptm_ioc_setbuffersize)
#define PTM_GET_INFO _IOWR(PTM_IOC_MAGIC, 17, struct ptm_ioc_getinfo)
#define PTM_LOCK_STORAGE _IOWR(PTM_IOC_MAGIC, 18, struct ptm_ioc_lockstorage)

/* The socket command code of an ioctl request: nr + 1. */
#define PTM_IOC_CMD(req) ((uint32_t)_IOC_NR(req) + 1u)

/* Layout facts the wire format depends on; a mismatch is a build error. */
_Static_assert(sizeof(ptm_ioc_cap) == 8, "ptm_cap");
_Static_assert(sizeof(struct ptm_ioc_est) == 8, "ptm_est");
_Static_assert(offsetof(struct ptm_ioc_est, u.resp.bit) == 4, "ptm_est.bit");
_Static_assert(sizeof(struct ptm_ioc_reset_est) == 4, "ptm_reset_est");
_Static_assert(sizeof(struct ptm_ioc_init) == 4, "ptm_init");
_Static_assert(sizeof(struct ptm_ioc_loc) == 4, "ptm_loc");
_Static_assert(sizeof(struct ptm_ioc_hdata) == 4100, "ptm_hdata");
_Static_assert(sizeof(struct ptm_ioc_getstate) == 3088, "ptm_getstate");
_Static_assert(offsetof(struct ptm_ioc_getstate, u.resp.data) == 16, "getstate.data");
_Static_assert(sizeof(struct ptm_ioc_setstate) == 3084, "ptm_setstate");
_Static_assert(offsetof(struct ptm_ioc_setstate, u.req.data) == 12, "setstate.data");
_Static_assert(sizeof(struct ptm_ioc_getconfig) == 8, "ptm_getconfig");
_Static_assert(sizeof(struct ptm_ioc_setbuffersize) == 16, "ptm_setbuffersize");
_Static_assert(sizeof(struct ptm_ioc_getinfo) == 3088, "ptm_getinfo");
_Static_assert(offsetof(struct ptm_ioc_getinfo, u.resp.buffer) == 12, "getinfo.buffer");
_Static_assert(sizeof(struct ptm_ioc_lockstorage) == 4, "ptm_lockstorage");

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__) || defined(__i386__) || \
			   defined(__arm__) || defined(__riscv) || defined(__s390x__))
/* Generic Linux _IOC encoding (dir:2 size:14 type:8 nr:8); these are the
 * numbers of tpm_ioctl.h as documented for swtpm's CUSE interface. */
_Static_assert(PTM_GET_CAPABILITY == 0x80085000u, "PTM_GET_CAPABILITY");
_Static_assert(PTM_INIT == 0xC0045001u, "PTM_INIT");
_Static_assert(PTM_SHUTDOWN == 0x80045002u, "PTM_SHUTDOWN");
_Static_assert(PTM_GET_TPMESTABLISHED == 0x80085003u, "PTM_GET_TPMESTABLISHED");
_Static_assert(PTM_SET_LOCALITY == 0xC0045004u, "PTM_SET_LOCALITY");
_Static_assert(PTM_HASH_START == 0x80045005u, "PTM_HASH_START");
_Static_assert(PTM_HASH_DATA == 0xD0045006u, "PTM_HASH_DATA");
_Static_assert(PTM_HASH_END == 0x80045007u, "PTM_HASH_END");
_Static_assert(PTM_CANCEL_TPM_CMD == 0x80045008u, "PTM_CANCEL_TPM_CMD");
_Static_assert(PTM_STORE_VOLATILE == 0x80045009u, "PTM_STORE_VOLATILE");
_Static_assert(PTM_RESET_TPMESTABLISHED == 0xC004500Au, "PTM_RESET_TPMESTABLISHED");
_Static_assert(PTM_GET_STATEBLOB == 0xCC10500Bu, "PTM_GET_STATEBLOB");
_Static_assert(PTM_SET_STATEBLOB == 0xCC0C500Cu, "PTM_SET_STATEBLOB");
_Static_assert(PTM_STOP == 0x8004500Du, "PTM_STOP");
_Static_assert(PTM_GET_CONFIG == 0x8008500Eu, "PTM_GET_CONFIG");
_Static_assert(PTM_SET_DATAFD == 0x8004500Fu, "PTM_SET_DATAFD");
_Static_assert(PTM_SET_BUFFERSIZE == 0xC0105010u, "PTM_SET_BUFFERSIZE");
_Static_assert(PTM_GET_INFO == 0xCC105011u, "PTM_GET_INFO");
_Static_assert(PTM_LOCK_STORAGE == 0xC0045012u, "PTM_LOCK_STORAGE");
#endif

#endif
