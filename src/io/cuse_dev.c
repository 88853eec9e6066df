/* The CUSE device's behaviour (see cuse_dev.h), independent of libfuse.
 *
 * Everything runs on one thread (libfuse's single-threaded session loop), so
 * a TPM command, an ioctl and a read never overlap. swtpm runs long TPM
 * commands on a worker thread so that PTM_CANCEL_TPM_CMD could reach them;
 * libtpms ignores cancellation anyway, so here every command completes inside
 * its write().
 *
 * Durability as on the socket: the state changes a command or an ioctl made
 * are on stable storage before write()/ioctl() returns, i.e. before the caller
 * can read the response. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libtpms/tpm_error.h>

#include "instance/ctrl.h"
#include "instance/log.h"
#include "io/ctrl_ioctl_codec.h"
#include "io/cuse_dev.h"
#include "vtpm/ctrl_ioctl.h"

void cuse_dev_init(struct cuse_dev *d, struct instance *inst, const struct vtpm_config *cfg)
{
	memset(d, 0, sizeof(*d));
	d->inst = inst;
	d->cfg = cfg;
	/* swtpm 0.8's CUSE set: no SET_DATAFD (there is no data fd to replace)
	 * and no framing header (no socket) */
	inst->hooks.caps = PTM_CAP_INIT | PTM_CAP_SHUTDOWN | PTM_CAP_GET_TPMESTABLISHED |
			   PTM_CAP_SET_LOCALITY | PTM_CAP_HASHING | PTM_CAP_CANCEL_TPM_CMD |
			   PTM_CAP_STORE_VOLATILE | PTM_CAP_RESET_TPMESTABLISHED |
			   PTM_CAP_GET_STATEBLOB | PTM_CAP_SET_STATEBLOB | PTM_CAP_STOP |
			   PTM_CAP_GET_CONFIG | PTM_CAP_SET_BUFFERSIZE | PTM_CAP_GET_INFO |
			   PTM_CAP_LOCK_STORAGE;
	inst->hooks.set_datafd = NULL;
}

static void cuse_blob_drop(struct cuse_dev *d)
{
	free(d->blob);
	d->blob = NULL;
	d->bloblen = 0;
	d->blobread = 0;
	d->blobvalid = false;
	/* a download in progress has nothing left to read from */
	if (d->tx == CUSE_TX_GETBLOB)
		d->tx = CUSE_TX_CMD;
}

static void cuse_set_drop(struct cuse_dev *d)
{
	free(d->set);
	d->set = NULL;
	d->setlen = 0;
	d->settype = 0;
}

void cuse_dev_fini(struct cuse_dev *d)
{
	cuse_blob_drop(d);
	cuse_set_drop(d);
	free(d->rsp);
	d->rsp = NULL;
	d->rsplen = d->rspcap = d->rspoff = 0;
}

int cuse_state_dir(const struct vtpm_config *cfg)
{
	const char *path = NULL;
	struct stat st;

	if (cfg->state_uri && !strncmp(cfg->state_uri, "dir://", 6))
		path = cfg->state_uri + 6;
	else if (!cfg->state_uri)
		path = getenv("TPM_PATH");
	if (!path || !*path)
		return 0; /* file:// has no directory to make */
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		log_printf("Error: Could not open tpmstate dir %s\n", path);
		return -ENOTDIR;
	}
	if (mkdir(path, 0775) < 0 && errno != EEXIST) {
		int err = errno;

		log_printf("Error: Could not open tpmstate dir %s\n", path);
		return -err;
	}
	return 0;
}

/* After anything that may have changed the TPM state: make it durable. */
static int cuse_flush(struct cuse_dev *d)
{
	if (!instance_has_pending_writes(d->inst))
		return 0;
	if (store_flush_sync(&d->inst->store) < 0) {
		log_printf("Error: could not write the TPM state\n");
		return -EIO;
	}
	return 0;
}

static void cuse_dispatch(struct cuse_dev *d, struct ctrl_req *req, struct ctrl_rsp *rsp)
{
	ctrl_dispatch(d->inst, req, rsp);
	if (cuse_flush(d) < 0 && rsp->result == 0) {
		/* the command's effect is not on disk: say so */
		rsp->result = CTRL_RES_FAIL;
		rsp->full = false;
	}
	if (rsp->exit_after) {
		d->quit = true;
		d->exit_status = rsp->exit_status;
	}
}

/* ---- open, read, write ---- */

int cuse_dev_open(struct cuse_dev *d)
{
	/* One open file at a time (swtpm 0.8): readers cannot take each
	 * other's responses. */
	if (d->tx != CUSE_TX_CLOSED)
		return -EBUSY;
	d->tx = CUSE_TX_CMD;
	/* A blob upload a previous opener left half done is not continued by
	 * this one (swtpm would append to it). */
	cuse_set_drop(d);
	return 0;
}

void cuse_dev_release(struct cuse_dev *d)
{
	d->tx = CUSE_TX_CLOSED;
}

static int cuse_keep_rsp(struct cuse_dev *d, const uint8_t *rsp, size_t len)
{
	if (len > d->rspcap) {
		uint8_t *nb = realloc(d->rsp, len);

		if (!nb)
			return -ENOMEM;
		d->rsp = nb;
		d->rspcap = len;
	}
	memcpy(d->rsp, rsp, len);
	d->rsplen = len;
	d->rspoff = 0;
	return 0;
}

/* Hand a collected SET_STATEBLOB to the dispatcher. */
static uint32_t cuse_set_finish(struct cuse_dev *d)
{
	struct ctrl_req creq = { .code = CMD_SET_STATEBLOB, .fd = -1 };
	struct ctrl_rsp crsp;
	uint32_t res;

	creq.n = 12 + d->setlen;
	creq.u.setstate.flags = d->setflags;
	creq.u.setstate.type = d->settype;
	creq.u.setstate.length = (uint32_t)d->setlen;
	creq.u.setstate.data = d->set;
	creq.u.setstate.datalen = d->setlen;
	cuse_dispatch(d, &creq, &crsp);
	res = crsp.result;
	ctrl_rsp_free(&crsp);
	log_printf("Deserialized state type %u, length=%zu, res=%u\n", d->settype, d->setlen, res);
	cuse_set_drop(d);
	d->tx = CUSE_TX_CMD;
	return res;
}

/* Add a piece of a state blob; the blob type names the upload (a piece of
 * another type starts a new one). Returns a TPM result. */
static uint32_t cuse_set_append(struct cuse_dev *d, uint32_t type, uint32_t flags,
				const uint8_t *data, size_t len, bool last)
{
	uint8_t *nb;

	if (d->settype != type) {
		cuse_set_drop(d);
		d->settype = type;
		d->setflags = flags;
		/* an empty first piece opens the write() path */
		if (len == 0)
			return 0;
	}
	if (len > CTRL_MAX_PAYLOAD - d->setlen) {
		log_printf("SET_STATEBLOB: blob larger than %u bytes\n", CTRL_MAX_PAYLOAD);
		cuse_set_drop(d);
		d->tx = CUSE_TX_CMD;
		return TPM_FAIL;
	}
	if (len) {
		nb = realloc(d->set, d->setlen + len);
		if (!nb) {
			cuse_set_drop(d);
			d->tx = CUSE_TX_CMD;
			return TPM_FAIL;
		}
		d->set = nb;
		memcpy(d->set + d->setlen, data, len);
		d->setlen += len;
	}
	return last ? cuse_set_finish(d) : 0;
}

ssize_t cuse_dev_read(struct cuse_dev *d, size_t size, const uint8_t **data)
{
	size_t len = 0;

	switch (d->tx) {
	case CUSE_TX_GETBLOB:
		if (!d->blobvalid || d->blobread > d->bloblen) {
			d->tx = CUSE_TX_CMD;
			return -EIO;
		}
		len = d->bloblen - d->blobread;
		if (len > size)
			len = size;
		*data = d->blob + d->blobread;
		d->blobread += len;
		/* a short read is the last one */
		if (len < size)
			d->tx = CUSE_TX_CMD;
		return (ssize_t)len;
	case CUSE_TX_SETBLOB:
		d->tx = CUSE_TX_CMD;
		return -EIO;
	default:
		break;
	}
	if (d->rspoff < d->rsplen) {
		len = d->rsplen - d->rspoff;
		if (len > size)
			len = size;
	}
	*data = d->rsp + d->rspoff;
	d->rspoff += len;
	return (ssize_t)len;
}

ssize_t cuse_dev_write(struct cuse_dev *d, const uint8_t *buf, size_t size)
{
	const uint8_t *rsp;
	size_t rsplen, len = size > CUSE_REQ_MAX ? CUSE_REQ_MAX : size;

	switch (d->tx) {
	case CUSE_TX_GETBLOB:
		d->tx = CUSE_TX_CMD;
		return -EIO;
	case CUSE_TX_SETBLOB:
		if (cuse_set_append(d, d->settype, d->setflags, buf, size, size == 0) != 0) {
			d->tx = CUSE_TX_CMD;
			return -EIO;
		}
		return (ssize_t)size;
	default:
		break;
	}
	log_hexdump("SWTPM_IO_Read", buf, len);
	/* the command may change the state a cached blob shows */
	cuse_blob_drop(d);
	instance_process(d->inst, buf, len, &rsp, &rsplen);
	if (cuse_keep_rsp(d, rsp, rsplen) < 0)
		return -ENOMEM;
	log_hexdump("SWTPM_IO_Write", d->rsp, d->rsplen);
	/* the response must not become readable before its state is durable */
	if (cuse_flush(d) < 0) {
		d->rsplen = 0;
		return -EIO;
	}
	/* the (possibly truncated) length is acknowledged */
	return (ssize_t)len;
}

/* ---- ioctls ---- */

static void cuse_get_stateblob(struct cuse_dev *d, const struct ctrl_req *req,
			       struct ctrl_rsp *rsp)
{
	uint32_t off = req->u.getstate.offset;
	bool decrypt = (req->u.getstate.flags & PTM_STATE_FLAG_DECRYPTED) != 0;
	size_t copied = 0;

	memset(rsp, 0, sizeof(*rsp));
	if (!d->inst->running) {
		/* refused before anything happens: an upload stays open */
		rsp->result = CTRL_RES_BAD_ORDINAL;
		return;
	}
	d->tx = CUSE_TX_CMD;
	/* A download starts at offset 0 and then comes from the cache, so its
	 * pieces belong together. swtpm keeps the cache until another blob is
	 * asked for, and then hands out the state of the first download again
	 * after the TPM has changed it: a migration would lose those changes. */
	if (off == 0)
		cuse_blob_drop(d);
	if (!d->blobvalid || d->blobtype != req->u.getstate.type || d->blobdecrypt != decrypt) {
		struct ctrl_req whole = *req;
		struct ctrl_rsp got;

		cuse_blob_drop(d);
		/* the dispatcher hands out the whole blob from offset 0 */
		whole.u.getstate.offset = 0;
		cuse_dispatch(d, &whole, &got);
		if (got.result != 0) {
			rsp->result = got.result;
			ctrl_rsp_free(&got);
			return;
		}
		d->blob = got.payload;
		d->bloblen = got.payload_len;
		d->blobflags = got.u.blob.flags;
		d->blobtype = req->u.getstate.type;
		d->blobdecrypt = decrypt;
		d->blobvalid = true;
	}
	if (off < d->bloblen) {
		copied = d->bloblen - off;
		if (copied > PTM_STATE_BLOB_SIZE)
			copied = PTM_STATE_BLOB_SIZE;
	}
	rsp->result = 0;
	rsp->full = true;
	rsp->u.blob.flags = d->blobflags;
	rsp->u.blob.totlength = (uint32_t)d->bloblen; /* the whole blob, unlike the socket */
	rsp->u.blob.length = (uint32_t)copied;
	/* a view into the cache, not owned by rsp */
	rsp->payload = copied ? d->blob + off : NULL;
	rsp->payload_len = copied;
	if (off + copied < d->bloblen) {
		/* The rest may follow by read(). swtpm starts that at `copied`,
		 * which is only right for offset 0; this continues after what was
		 * actually handed out. */
		d->tx = CUSE_TX_GETBLOB;
		d->blobread = off + copied;
	}
}

static void cuse_set_stateblob(struct cuse_dev *d, const struct ctrl_req *req,
			       struct ctrl_rsp *rsp)
{
	uint32_t len = req->u.setstate.length;

	memset(rsp, 0, sizeof(*rsp));
	if (d->inst->running) {
		rsp->result = CTRL_RES_BAD_ORDINAL;
		return;
	}
	if (len > PTM_STATE_BLOB_SIZE) {
		rsp->result = CTRL_RES_BAD_PARAMETER;
		d->tx = CUSE_TX_CMD;
		return;
	}
	d->tx = CUSE_TX_SETBLOB;
	/* a full piece means more follows; a shorter one ends the blob */
	rsp->result = cuse_set_append(d, req->u.setstate.type, req->u.setstate.flags,
				      req->u.setstate.data, len, len != PTM_STATE_BLOB_SIZE);
	if (rsp->result != 0)
		d->tx = CUSE_TX_CMD;
}

int cuse_dev_ioctl(struct cuse_dev *d, unsigned int cmd, const void *in, size_t inlen,
		   void *out, size_t outcap, size_t *outlen)
{
	struct ctrl_req creq;
	struct ctrl_rsp crsp;
	bool view = false; /* crsp.payload points into the blob cache */
	int r;

	/* PTM_SET_DATAFD and anything unknown are not ioctls of this device */
	r = ctrl_ioctl_decode(cmd, in, inlen, &creq);
	if (r < 0)
		return -EINVAL;
	switch (cmd) {
	case PTM_GET_STATEBLOB:
		cuse_get_stateblob(d, &creq, &crsp);
		view = true;
		break;
	case PTM_SET_STATEBLOB:
		cuse_set_stateblob(d, &creq, &crsp);
		break;
	case PTM_HASH_DATA:
		if (d->inst->running && creq.u.hash.length > PTM_HASH_DATA_SIZE) {
			memset(&crsp, 0, sizeof(crsp));
			crsp.result = TPM_FAIL;
			break;
		}
		cuse_dispatch(d, &creq, &crsp);
		break;
	case PTM_INIT:
		if (cuse_state_dir(d->cfg) < 0) {
			/* as swtpm: the old TPM is stopped first, whatever follows */
			if (d->inst->running)
				instance_stop(d->inst);
			cuse_flush(d);
			cuse_blob_drop(d);
			memset(&crsp, 0, sizeof(crsp));
			crsp.result = TPM_FAIL;
			break;
		}
		cuse_dispatch(d, &creq, &crsp);
		/* a blob fetched from the previous run must not be handed out */
		cuse_blob_drop(d);
		if (crsp.result == 0)
			log_printf("CUSE TPM successfully initialized.\n");
		break;
	case PTM_SHUTDOWN:
		log_printf("CUSE TPM is shutting down.\n");
		/* fall through */
	case PTM_STOP:
		cuse_dispatch(d, &creq, &crsp);
		d->rsplen = d->rspoff = 0;
		cuse_blob_drop(d);
		break;
	case PTM_STORE_VOLATILE:
		cuse_dispatch(d, &creq, &crsp);
		cuse_blob_drop(d);
		break;
	default:
		cuse_dispatch(d, &creq, &crsp);
		break;
	}
	r = ctrl_ioctl_encode(cmd, &crsp, out, outcap, outlen);
	if (view) {
		crsp.payload = NULL;
		crsp.payload_len = 0;
	}
	ctrl_rsp_free(&crsp);
	if (r < 0) {
		log_printf("Error: could not encode the reply to ioctl 0x%08x: %s\n", cmd,
			   strerror(-r));
		return -EIO;
	}
	return 0;
}
