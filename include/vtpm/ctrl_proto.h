/* Control-channel wire format shared with swtpm 0.7.1/0.8 clients (QEMU, libvirt,
 * swtpm_ioctl): command codes, capability bits, flags and result codes. */
#ifndef VTPM_CTRL_PROTO_H
#define VTPM_CTRL_PROTO_H

#include <stdint.h>

/* Socket command codes; the CUSE ioctl nr is code - 1. */
enum ctrl_cmd {
	CMD_GET_CAPABILITY = 0x01,
	CMD_INIT = 0x02,
	CMD_SHUTDOWN = 0x03,
	CMD_GET_TPMESTABLISHED = 0x04,
	CMD_SET_LOCALITY = 0x05,
	CMD_HASH_START = 0x06,
	CMD_HASH_DATA = 0x07,
	CMD_HASH_END = 0x08,
	CMD_CANCEL_TPM_CMD = 0x09,
	CMD_STORE_VOLATILE = 0x0a,
	CMD_RESET_TPMESTABLISHED = 0x0b,
	CMD_GET_STATEBLOB = 0x0c,
	CMD_SET_STATEBLOB = 0x0d,
	CMD_STOP = 0x0e,
	CMD_GET_CONFIG = 0x0f,
	CMD_SET_DATAFD = 0x10,
	CMD_SET_BUFFERSIZE = 0x11,
	CMD_GET_INFO = 0x12,
	CMD_LOCK_STORAGE = 0x13,
};

/* Capability bits (CMD_GET_CAPABILITY). */
#define PTM_CAP_INIT (1u << 0)
#define PTM_CAP_SHUTDOWN (1u << 1)
#define PTM_CAP_GET_TPMESTABLISHED (1u << 2)
#define PTM_CAP_SET_LOCALITY (1u << 3)
#define PTM_CAP_HASHING (1u << 4)
#define PTM_CAP_CANCEL_TPM_CMD (1u << 5)
#define PTM_CAP_STORE_VOLATILE (1u << 6)
#define PTM_CAP_RESET_TPMESTABLISHED (1u << 7)
#define PTM_CAP_GET_STATEBLOB (1u << 8)
#define PTM_CAP_SET_STATEBLOB (1u << 9)
#define PTM_CAP_STOP (1u << 10)
#define PTM_CAP_GET_CONFIG (1u << 11)
#define PTM_CAP_SET_DATAFD (1u << 12)
#define PTM_CAP_SET_BUFFERSIZE (1u << 13)
#define PTM_CAP_GET_INFO (1u << 14)
#define PTM_CAP_SEND_COMMAND_HEADER (1u << 15)
#define PTM_CAP_LOCK_STORAGE (1u << 16)

#define PTM_INIT_FLAG_DELETE_VOLATILE (1u << 0)

#define PTM_STATE_FLAG_DECRYPTED 1u /* request: not state-key encrypted */
#define PTM_STATE_FLAG_ENCRYPTED 2u /* blob is state-key encrypted */

#define PTM_BLOB_TYPE_PERMANENT 1u
#define PTM_BLOB_TYPE_VOLATILE 2u
#define PTM_BLOB_TYPE_SAVESTATE 3u

#define PTM_CONFIG_FLAG_FILE_KEY 1u
#define PTM_CONFIG_FLAG_MIGRATION_KEY 2u

#define SWTPM_INFO_TPMSPECIFICATION 1u
#define SWTPM_INFO_TPMATTRIBUTES 2u
#define SWTPM_INFO_TPMFEATURES 4u

/* Limits of the CUSE structs; the socket has no such per-message limit. */
#define PTM_STATE_BLOB_SIZE 3072u
#define PTM_GETINFO_SIZE 3072u
#define PTM_HASH_DATA_SIZE 4096u

/* Result codes used on the control channel (libtpms tpm_error.h numbering). */
#define CTRL_RES_SUCCESS 0x00u
#define CTRL_RES_BAD_PARAMETER 0x03u
#define CTRL_RES_FAIL 0x09u
#define CTRL_RES_BAD_ORDINAL 0x0au
#define CTRL_RES_KEYNOTFOUND 0x0du
#define CTRL_RES_SIZE 0x17u
#define CTRL_RES_IOERROR 0x1fu
#define CTRL_RES_DECRYPT_ERROR 0x21u
#define CTRL_RES_INVALID_POSTINIT 0x26u
#define CTRL_RES_BAD_KEY_PROPERTY 0x28u
#define CTRL_RES_BAD_DATASIZE 0x2bu
#define CTRL_RES_BAD_VERSION 0x2eu
#define CTRL_RES_BAD_LOCALITY 0x3du
#define CTRL_RES_RETRY 0x800u
#define CTRL_RES_TPM2_FAILURE 0x101u

/* Receive buffer of one ctrl message as swtpm sizes it: code + largest body. */
#define CTRL_RECV_BUF 4104u
/* Deadline for the fixed part of a ctrl message (swtpm: 500 ms). */
#define CTRL_RECV_DEADLINE_MS 500
/* Our bound for the variable part (swtpm waits forever). */
#define CTRL_CONT_TIMEOUT_MS 10000
/* Largest SET_STATEBLOB / HASH_DATA payload we accept on the socket. */
#define CTRL_MAX_PAYLOAD (512u * 1024u)

#endif
