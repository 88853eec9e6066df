/* The control-command dispatcher shared by every transport: state rules, length
 * checks in swtpm's order, and the actions of each CMD_* (ctrl-channel.md §5). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_tis.h>
#include <openssl/crypto.h>

#include "crypto/container.h"
#include "crypto/state_codec.h"
#include "instance/ctrl.h"
#include "instance/instance.h"
#include "instance/log.h"

/* swtpm 0.8 gives a released storage lock 300 x 10 ms to come back (a failed
 * outgoing migration: the destination has to let go of it first). */
#define RELOCK_RETRIES 300

static void ctrl_result(struct ctrl_rsp *rsp, uint32_t result)
{
	rsp->result = result;
	rsp->full = false;
}

static void ctrl_init(struct instance *inst, struct ctrl_req *req, struct ctrl_rsp *rsp)
{
	if (req->n != 4) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	ctrl_result(rsp, instance_start(inst, req->u.init_flags));
}

static void ctrl_shutdown(struct instance *inst, struct ctrl_req *req, struct ctrl_rsp *rsp)
{
	if (req->n != 0) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	instance_stop(inst);
	ctrl_result(rsp, instance_sync_out(inst) < 0 ? CTRL_RES_FAIL : CTRL_RES_SUCCESS);
	rsp->exit_after = true;
}

static void ctrl_stop(struct instance *inst, struct ctrl_req *req, struct ctrl_rsp *rsp)
{
	if (req->n != 0) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	instance_stop(inst);
	/* The state may now be taken by something else: swtpm's files are current. */
	ctrl_result(rsp, instance_sync_out(inst) < 0 ? CTRL_RES_FAIL : CTRL_RES_SUCCESS);
}

static void ctrl_get_established(struct instance *inst, struct ctrl_req *req,
				 struct ctrl_rsp *rsp)
{
	TPM_BOOL bit = 0;

	if (req->n != 0) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	rsp->result = TPM_IO_TpmEstablished_Get(&bit);
	rsp->u.est_bit = bit ? 1 : 0;
	rsp->full = true;
}

static void ctrl_set_locality(struct instance *inst, struct ctrl_req *req, struct ctrl_rsp *rsp)
{
	uint8_t loc = req->u.loc;

	if (req->n < 1) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	if (loc > 4 || (loc == 4 && inst->cfg->reject_locality4)) {
		ctrl_result(rsp, CTRL_RES_BAD_LOCALITY);
		return;
	}
	inst->locality = loc;
	ctrl_result(rsp, CTRL_RES_SUCCESS);
}

static void ctrl_hash_data(struct instance *inst, struct ctrl_req *req, struct ctrl_rsp *rsp)
{
	const uint8_t *p = req->u.hash.data;
	size_t left = req->u.hash.datalen;
	uint32_t res = 0;

	if (req->n < 4) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	/* swtpm 0.7.1 hangs when more bytes than `length` arrive; refuse instead. */
	if (left != req->u.hash.length) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	while (left > 0 && res == 0) {
		size_t chunk = left > PTM_HASH_DATA_SIZE ? PTM_HASH_DATA_SIZE : left;

		res = TPM_IO_Hash_Data(p, (uint32_t)chunk);
		p += chunk;
		left -= chunk;
	}
	ctrl_result(rsp, res);
}

static void ctrl_no_arg(struct ctrl_req *req, struct ctrl_rsp *rsp, TPM_RESULT (*fn)(void))
{
	if (req->n != 0) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	ctrl_result(rsp, fn());
}

static void ctrl_store_volatile(struct instance *inst, struct ctrl_req *req,
				struct ctrl_rsp *rsp)
{
	unsigned char *buf = NULL;
	uint32_t len = 0;
	uint32_t res;

	if (req->n != 0) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	res = TPMLIB_VolatileAll_Store(&buf, &len);
	if (res == TPM_SUCCESS && store_save(&inst->store, STORE_VOLATILE, buf, len) < 0)
		res = TPM_FAIL;
	free(buf);
	ctrl_result(rsp, res);
}

static void ctrl_reset_established(struct instance *inst, struct ctrl_req *req,
				   struct ctrl_rsp *rsp)
{
	uint32_t saved = inst->locality;

	if (req->n < 1) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	if (req->u.loc > 4) {
		ctrl_result(rsp, CTRL_RES_BAD_LOCALITY);
		return;
	}
	/* libtpms reads the locality through the callback, so switch it briefly. */
	inst->locality = req->u.loc;
	ctrl_result(rsp, TPM_IO_TpmEstablished_Reset());
	inst->locality = saved;
}

/* The plain payload of one state item for GET_STATEBLOB. */
static int ctrl_state_payload(struct instance *inst, uint32_t type, uint8_t **payload,
			      size_t *len)
{
	unsigned char *buf = NULL;
	uint32_t blen = 0;

	switch (type) {
	case PTM_BLOB_TYPE_PERMANENT:
		return store_load(&inst->store, STORE_PERMALL, payload, len);
	case PTM_BLOB_TYPE_SAVESTATE:
		return store_load(&inst->store, STORE_SAVESTATE, payload, len);
	case PTM_BLOB_TYPE_VOLATILE:
		/* swtpm writes the volatile state to its file, reads it back and
		 * deletes it; the net effect is the fresh state and no file. */
		if (TPMLIB_VolatileAll_Store(&buf, &blen) != TPM_SUCCESS)
			return -EIO;
		*payload = buf;
		*len = blen;
		return store_delete(&inst->store, STORE_VOLATILE);
	default:
		return -EINVAL;
	}
}

static void ctrl_get_stateblob(struct instance *inst, struct ctrl_req *req,
			       struct ctrl_rsp *rsp)
{
	uint8_t *payload = NULL, *blob = NULL;
	size_t plen = 0, blen = 0;
	uint32_t off = req->u.getstate.offset;
	int r;

	if (req->n < 12) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	rsp->full = true;
	if (!inst->store_ready) {
		rsp->result = TPM_FAIL;
		return;
	}
	r = ctrl_state_payload(inst, req->u.getstate.type, &payload, &plen);
	if (r == -ENOENT) {
		rsp->result = TPM_RETRY; /* e.g. no savestate (TPM 2): an empty blob */
		goto out;
	}
	if (r < 0) {
		/* swtpm 0.8 answers an unknown type with TPM_FAIL. */
		rsp->result = TPM_FAIL;
		goto out;
	}
	/* An exported state must match swtpm's files (shared-storage migration). */
	if (instance_sync_out(inst) < 0) {
		rsp->result = TPM_FAIL;
		goto out;
	}
	r = state_blob_encode(inst->statekey.len ? &inst->statekey : NULL,
			      inst->migkey.len ? &inst->migkey : NULL,
			      (req->u.getstate.flags & PTM_STATE_FLAG_DECRYPTED) != 0, payload, plen,
			      &blob, &blen, &rsp->u.blob.flags);
	if (r < 0) {
		rsp->result = TPM_FAIL;
		goto out;
	}
	rsp->result = 0;
	rsp->u.blob.totlength = off < blen ? (uint32_t)(blen - off) : 0;
	rsp->u.blob.length = rsp->u.blob.totlength;
	if (rsp->u.blob.length > 0) {
		/* The socket sends the whole remainder in one reply. */
		memmove(blob, blob + off, rsp->u.blob.length);
		rsp->payload = blob;
		rsp->payload_len = rsp->u.blob.length;
		blob = NULL;
	}
out:
	/* The savestate blob is the last one an outgoing migration fetches; with
	 * release-lock-outgoing the destination may now lock the shared storage.
	 * A missing savestate (TPM_RETRY, always so for TPM 2) is the empty blob
	 * QEMU accepts, so it counts as fetched too. */
	if (req->u.getstate.type == PTM_BLOB_TYPE_SAVESTATE &&
	    inst->cfg->migration_release_lock_outgoing &&
	    (rsp->result == 0 || rsp->result == TPM_RETRY)) {
		r = store_unlock(&inst->store);
		if (r < 0)
			log_printf("Could not release the storage lock: %s\n", strerror(-r));
		else
			inst->store.relock_retries = RELOCK_RETRIES;
	}
	free(blob);
	free(payload);
}

static enum TPMLIB_StateType ctrl_libtpms_type(uint32_t type)
{
	switch (type) {
	case PTM_BLOB_TYPE_PERMANENT:
		return TPMLIB_STATE_PERMANENT;
	case PTM_BLOB_TYPE_VOLATILE:
		return TPMLIB_STATE_VOLATILE;
	default:
		return TPMLIB_STATE_SAVE_STATE;
	}
}

static void ctrl_set_stateblob(struct instance *inst, struct ctrl_req *req,
			       struct ctrl_rsp *rsp)
{
	uint32_t type = req->u.setstate.type;
	uint8_t *payload = NULL;
	size_t plen = 0;
	int r;

	/* swtpm prepares (locks) the storage here and ignores the outcome... */
	instance_storage_prepare(inst);
	/* ...but a lock not held on purpose (pending incoming migration, or
	 * released after an outgoing one) must be taken now: swtpm 0.8 answers
	 * TPM_IOERROR and terminates when it cannot get it. */
	if (inst->store_ready && inst->store.lock_deferred) {
		r = store_lock_retry(&inst->store, inst->store.relock_retries);
		if (r < 0) {
			log_printf("SET_STATEBLOB: could not lock the TPM state storage: %s; "
				   "terminating\n", strerror(-r));
			ctrl_result(rsp, CTRL_RES_IOERROR);
			/* swtpm 0.8 ends with status 1 after this reply */
			rsp->exit_after = true;
			rsp->exit_status = 1;
			return;
		}
		/* What a TPM started before the state arrived recorded but could
		 * not write (the storage was someone else's) is superseded now. */
		store_drop_pending(&inst->store);
	}
	if (req->n < 12 || req->u.setstate.datalen != req->u.setstate.length) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	if (type < PTM_BLOB_TYPE_PERMANENT || type > PTM_BLOB_TYPE_SAVESTATE) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	if (req->u.setstate.length == 0) {
		ctrl_result(rsp, TPMLIB_SetState(ctrl_libtpms_type(type), NULL, 0));
		return;
	}
	r = state_blob_decode(inst->statekey.len ? &inst->statekey : NULL,
			      inst->migkey.len ? &inst->migkey : NULL, req->u.setstate.flags,
			      req->u.setstate.data, req->u.setstate.length, &payload, &plen);
	if (r < 0) {
		log_printf("SET_STATEBLOB: invalid blob: %s\n", strerror(-r));
		ctrl_result(rsp, state_codec_err_to_tpm(r));
		return;
	}
	if (r == CONTAINER_EMPTY) {
		ctrl_result(rsp, TPMLIB_SetState(ctrl_libtpms_type(type), NULL, 0));
		return;
	}
	if (plen > UINT32_MAX) {
		free(payload);
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	ctrl_result(rsp, TPMLIB_SetState(ctrl_libtpms_type(type), payload, (uint32_t)plen));
	OPENSSL_cleanse(payload, plen);
	free(payload);
}

static void ctrl_get_config(struct instance *inst, struct ctrl_req *req, struct ctrl_rsp *rsp)
{
	if (req->n != 0) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	rsp->result = 0;
	rsp->u.config_flags = 0;
	if (inst->cfg->keys.key)
		rsp->u.config_flags |= PTM_CONFIG_FLAG_FILE_KEY;
	if (inst->cfg->keys.migration_key)
		rsp->u.config_flags |= PTM_CONFIG_FLAG_MIGRATION_KEY;
	rsp->full = true;
}

static void ctrl_set_datafd(struct instance *inst, struct ctrl_req *req, struct ctrl_rsp *rsp)
{
	int r;

	if (!inst->hooks.set_datafd) {
		ctrl_result(rsp, CTRL_RES_BAD_ORDINAL);
		return;
	}
	r = inst->hooks.set_datafd(inst->hooks.ctx, req->fd);
	if (r == -EBUSY) {
		ctrl_result(rsp, CTRL_RES_IOERROR);
		return;
	}
	if (r < 0) {
		log_printf("SET_DATAFD: no file descriptor was passed\n");
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	req->fd = -1; /* the transport owns it now */
	ctrl_result(rsp, CTRL_RES_SUCCESS);
}

static void ctrl_set_buffersize(struct instance *inst, struct ctrl_req *req,
				struct ctrl_rsp *rsp)
{
	uint32_t min = 0, max = 0;

	if (req->n < 4) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	if (req->u.buffersize > 0 && inst->running) {
		ctrl_result(rsp, CTRL_RES_BAD_ORDINAL);
		return;
	}
	rsp->u.bufsize.size = TPMLIB_SetBufferSize(req->u.buffersize, &min, &max);
	rsp->u.bufsize.min = min;
	rsp->u.bufsize.max = max;
	rsp->result = 0;
	rsp->full = true;
}

static void ctrl_get_info(struct instance *inst, struct ctrl_req *req, struct ctrl_rsp *rsp)
{
	char *info;
	size_t slen, tot, len;
	uint32_t off = req->u.getinfo.offset;

	if (req->n < 16) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	info = TPMLIB_GetInfo((enum TPMLIB_InfoFlags)req->u.getinfo.flags);
	if (!info) {
		ctrl_result(rsp, CTRL_RES_SIZE);
		return;
	}
	slen = strlen(info);
	if (off >= slen) {
		free(info);
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	tot = slen + 1; /* the terminating NUL travels too */
	len = tot - off;
	if (len > PTM_GETINFO_SIZE)
		len = PTM_GETINFO_SIZE;
	memmove(info, info + off, len);
	rsp->payload = (uint8_t *)info;
	rsp->payload_len = len;
	rsp->u.info.totlength = (uint32_t)tot;
	rsp->u.info.length = (uint32_t)len;
	rsp->result = 0;
	rsp->full = true;
}

/* swtpm 0.8: take the storage lock, retrying every 10 ms (after a failed
 * outgoing migration the source gets its storage back this way; a pending
 * incoming migration ends here too). */
static void ctrl_lock_storage(struct instance *inst, struct ctrl_req *req, struct ctrl_rsp *rsp)
{
	int r = 0;

	if (req->n < 4) {
		ctrl_result(rsp, CTRL_RES_BAD_PARAMETER);
		return;
	}
	/* Resolve the backend first (it may lock right away, or find the lock
	 * taken: the retries below cover that). */
	if (!inst->store_ready)
		r = instance_storage_prepare(inst);
	if (inst->store_ready)
		r = store_lock_retry(&inst->store, req->u.retries);
	ctrl_result(rsp, r < 0 ? CTRL_RES_FAIL : CTRL_RES_SUCCESS);
}

/* Commands that need a running TPM answer TPM_BAD_ORDINAL otherwise; that check
 * comes before the length checks (ctrl-channel.md §7). */
static bool ctrl_needs_running(uint32_t code)
{
	switch (code) {
	case CMD_GET_TPMESTABLISHED:
	case CMD_HASH_START:
	case CMD_HASH_DATA:
	case CMD_HASH_END:
	case CMD_CANCEL_TPM_CMD:
	case CMD_STORE_VOLATILE:
	case CMD_RESET_TPMESTABLISHED:
	case CMD_GET_STATEBLOB:
		return true;
	default:
		return false;
	}
}

void ctrl_dispatch(struct instance *inst, struct ctrl_req *req, struct ctrl_rsp *rsp)
{
	memset(rsp, 0, sizeof(*rsp));
	if (ctrl_needs_running(req->code) && !inst->running) {
		ctrl_result(rsp, CTRL_RES_BAD_ORDINAL);
		return;
	}
	switch (req->code) {
	case CMD_GET_CAPABILITY:
		rsp->u.caps = inst->hooks.caps;
		rsp->full = true;
		break;
	case CMD_INIT:
		ctrl_init(inst, req, rsp);
		break;
	case CMD_SHUTDOWN:
		ctrl_shutdown(inst, req, rsp);
		break;
	case CMD_GET_TPMESTABLISHED:
		ctrl_get_established(inst, req, rsp);
		break;
	case CMD_SET_LOCALITY:
		ctrl_set_locality(inst, req, rsp);
		break;
	case CMD_HASH_START:
		ctrl_no_arg(req, rsp, TPM_IO_Hash_Start);
		break;
	case CMD_HASH_DATA:
		ctrl_hash_data(inst, req, rsp);
		break;
	case CMD_HASH_END:
		ctrl_no_arg(req, rsp, TPM_IO_Hash_End);
		break;
	case CMD_CANCEL_TPM_CMD:
		ctrl_no_arg(req, rsp, TPMLIB_CancelCommand);
		break;
	case CMD_STORE_VOLATILE:
		ctrl_store_volatile(inst, req, rsp);
		break;
	case CMD_RESET_TPMESTABLISHED:
		ctrl_reset_established(inst, req, rsp);
		break;
	case CMD_GET_STATEBLOB:
		ctrl_get_stateblob(inst, req, rsp);
		break;
	case CMD_SET_STATEBLOB:
		if (inst->running)
			ctrl_result(rsp, CTRL_RES_BAD_ORDINAL);
		else
			ctrl_set_stateblob(inst, req, rsp);
		break;
	case CMD_STOP:
		ctrl_stop(inst, req, rsp);
		break;
	case CMD_GET_CONFIG:
		ctrl_get_config(inst, req, rsp);
		break;
	case CMD_SET_DATAFD:
		ctrl_set_datafd(inst, req, rsp);
		break;
	case CMD_SET_BUFFERSIZE:
		ctrl_set_buffersize(inst, req, rsp);
		break;
	case CMD_GET_INFO:
		ctrl_get_info(inst, req, rsp);
		break;
	case CMD_LOCK_STORAGE:
		ctrl_lock_storage(inst, req, rsp);
		break;
	default:
		log_printf("Error: Unknown command: 0x%08x\n", req->code);
		ctrl_result(rsp, CTRL_RES_BAD_ORDINAL);
		break;
	}
}

void ctrl_rsp_free(struct ctrl_rsp *rsp)
{
	free(rsp->payload);
	rsp->payload = NULL;
	rsp->payload_len = 0;
}
