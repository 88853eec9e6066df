/* libtpms glue: lifecycle (init, start, stop, automatic TPM2_Shutdown), the NVRAM
 * and locality callbacks, and the data-channel rules swtpm applies before libtpms. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>
#include <libtpms/tpm_tis.h>

#include "instance/instance.h"
#include "vtpm/ctrl_proto.h"
#include "instance/log.h"

/* libtpms keeps one TPM per process and its callbacks carry no context, so the
 * instance bound to it is the single piece of state outside the structs. */
static struct instance *tpm_bound;

#define TPM2_CC_SHUTDOWN 0x145u
#define TPM2_CC_STARTUP 0x144u
#define TPM12_ORD_STARTUP 0x99u
#define TPM_CC_SET_LOCALITY 0x20001000u
#define TPM2_RC_INITIALIZE 0x100u
#define TPM2_RC_LOCALITY 0x107u
#define TPM2_RC_INSUFFICIENT 0x09au
#define TPM12_BAD_PARAM_SIZE 0x19u

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A 10-byte response with the version's tag; used for everything swtpm answers
 * without asking libtpms. */
static void tpm_small_reply(struct instance *inst, uint32_t rc, const uint8_t **rsp,
			    size_t *rsplen)
{
	uint8_t *r = inst->errrsp;

	r[0] = inst->cfg->tpm2 ? 0x80 : 0x00;
	r[1] = inst->cfg->tpm2 ? 0x01 : 0xc4;
	put_be32(r + 2, 10);
	put_be32(r + 6, rc);
	*rsp = r;
	*rsplen = 10;
}

static uint32_t tpm_fatal_rc(const struct instance *inst)
{
	return inst->cfg->tpm2 ? CTRL_RES_TPM2_FAILURE : TPM_FAIL;
}

/* --migration incoming and nothing has locked the storage yet. */
static bool tpm_incoming_pending(const struct instance *inst)
{
	return inst->cfg->migration_incoming && !(inst->store_ready && inst->store.lock_was_held);
}

int instance_storage_prepare(struct instance *inst)
{
	char *uri = NULL;
	const char *path;
	int r;

	if (!inst->store_ready) {
		if (inst->cfg->state_uri) {
			uri = strdup(inst->cfg->state_uri);
		} else {
			/* TPM_PATH is consulted lazily, at first storage use, as swtpm does. */
			path = getenv("TPM_PATH");
			if (!path || !*path) {
				log_printf("Missing backend URI: use --tpmstate or TPM_PATH\n");
				return -ENOENT;
			}
			if (asprintf(&uri, "dir://%s", path) < 0)
				uri = NULL;
		}
		if (!uri)
			return -ENOMEM;
		r = store_init(&inst->store, uri, inst->cfg->tpm2, inst->cfg->state_mode);
		free(uri);
		inst->store.key = inst->statekey.len ? &inst->statekey : NULL;
		inst->store.no_lock = inst->cfg->state_nolock;
		if (r < 0) {
			log_printf("Unsupported backend or bad state location: %s\n", strerror(-r));
			return r;
		}
		/* Nothing was locked before the first storage access. */
		inst->store.lock_deferred = inst->cfg->migration_incoming;
		inst->store_ready = true;
	}
	/* swtpm 0.8: every storage initialisation (CMD_INIT, SET_STATEBLOB,
	 * --print-states) locks, except while an incoming migration is pending;
	 * after release-lock-outgoing this takes the lock back. */
	if (tpm_incoming_pending(inst))
		r = store_prepare(&inst->store);
	else
		r = store_lock(&inst->store);
	if (r == -EAGAIN)
		log_printf(store_is_linear(&inst->store)
				   ? "Could not lock access to the state file: %s\n"
				   : "Could not lock access to lockfile: %s\n",
			   strerror(EAGAIN));
	else if (r < 0)
		log_printf(store_is_linear(&inst->store)
				   ? "Could not open the state file: %s\n"
				   : "Could not open the state directory: %s\n",
			   strerror(-r));
	return r;
}

int instance_load_keys(struct instance *inst)
{
	char err[512];
	int r;

	if (inst->cfg->keys.key) {
		r = keys_load(inst->cfg->keys.key, &inst->statekey, err, sizeof(err));
		if (r < 0) {
			log_printf("%s\n", err);
			return r;
		}
	}
	if (inst->cfg->keys.migration_key) {
		r = keys_load(inst->cfg->keys.migration_key, &inst->migkey, err, sizeof(err));
		if (r < 0) {
			log_printf("%s\n", err);
			return r;
		}
	}
	return 0;
}

int instance_sync_out(struct instance *inst)
{
	int r;

	if (!inst->store_ready)
		return 0;
	r = store_sync_out(&inst->store);
	if (r < 0)
		log_printf("Could not write the TPM state files: %s\n", strerror(-r));
	return r;
}

bool instance_has_pending_writes(const struct instance *inst)
{
	return inst->store_ready && store_has_pending(&inst->store);
}

static TPM_RESULT cb_nvram_init(void)
{
	return instance_storage_prepare(tpm_bound) < 0 ? TPM_FAIL : TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_load(unsigned char **data, uint32_t *length, uint32_t tpm_number,
				const char *name)
{
	struct instance *inst = tpm_bound;
	uint8_t *payload = NULL;
	size_t len = 0;
	int item, r;

	item = store_item_from_name(name);
	if (item < 0 || !inst->store_ready)
		return TPM_FAIL;
	r = store_load(&inst->store, (enum store_item)item, &payload, &len);
	if (r == -ENOENT)
		return TPM_RETRY;
	if (r < 0) {
		log_printf("Could not load state '%s': %s\n", name, strerror(-r));
		return TPM_FAIL;
	}
	if (len > UINT32_MAX) {
		free(payload);
		return TPM_FAIL;
	}
	*data = payload;
	*length = (uint32_t)len;
	return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_store(const unsigned char *data, uint32_t length, uint32_t tpm_number,
				 const char *name)
{
	struct instance *inst = tpm_bound;
	int item, r;

	item = store_item_from_name(name);
	if (item < 0 || !inst->store_ready)
		return TPM_FAIL;
	/* Only recorded: the loop makes it durable before the response goes out. */
	r = store_save(&inst->store, (enum store_item)item, data, length);
	if (r < 0) {
		log_printf("Could not record state '%s': %s\n", name, strerror(-r));
		return TPM_FAIL;
	}
	return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_delete(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
	struct instance *inst = tpm_bound;
	size_t size;
	int item;

	item = store_item_from_name(name);
	if (item < 0 || !inst->store_ready)
		return TPM_FAIL;
	if (must_exist && store_item_size(&inst->store, (enum store_item)item, &size) < 0)
		return TPM_FAIL;
	return store_delete(&inst->store, (enum store_item)item) < 0 ? TPM_FAIL : TPM_SUCCESS;
}

static TPM_RESULT cb_io_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT cb_io_getlocality(TPM_MODIFIER_INDICATOR *loc, uint32_t tpm_number)
{
	*loc = tpm_bound->locality;
	return TPM_SUCCESS;
}

int instance_init(struct instance *inst, const struct vtpm_config *cfg)
{
	struct libtpms_callbacks cbs = {
		.sizeOfStruct = sizeof(cbs),
		.tpm_nvram_init = cb_nvram_init,
		.tpm_nvram_loaddata = cb_nvram_load,
		.tpm_nvram_storedata = cb_nvram_store,
		.tpm_nvram_deletename = cb_nvram_delete,
		.tpm_io_init = cb_io_init,
		.tpm_io_getlocality = cb_io_getlocality,
	};
	char prefix[160];

	if (tpm_bound && tpm_bound != inst)
		return -EBUSY;
	memset(inst, 0, sizeof(*inst));
	inst->cfg = cfg;
	inst->store.dirfd = -1;
	inst->store.lockfd = -1;
	inst->store.lin.fd = -1;
	if (TPMLIB_ChooseTPMVersion(cfg->tpm2 ? TPMLIB_TPM_VERSION_2 : TPMLIB_TPM_VERSION_1_2) !=
	    TPM_SUCCESS) {
		log_printf("Error: Could not choose TPM version.\n");
		return -ENOTSUP;
	}
	if (log_get_level() >= 5 && log_get_fd() >= 0) {
		snprintf(prefix, sizeof(prefix), "%s    ", log_get_prefix());
		TPMLIB_SetDebugFD(log_get_fd());
		TPMLIB_SetDebugLevel(log_get_level() - 4);
		TPMLIB_SetDebugPrefix(prefix);
	}
	if (TPMLIB_RegisterCallbacks(&cbs) != TPM_SUCCESS)
		return -EIO;
	tpm_bound = inst;
	return 0;
}

/* swtpm 0.8: a running TPM 2 gets TPM2_Shutdown(SU_STATE) before it is reset or
 * torn down, so its volatile state is orderly and the DA counter does not rise. */
static void tpm_auto_shutdown(struct instance *inst)
{
	static const uint8_t su_state[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x45, 0, 1 };
	static const uint8_t su_clear[] = { 0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x45, 0, 0 };
	unsigned char cmd[sizeof(su_state)];
	uint32_t rlen = 0, rc;

	if (!inst->running || !inst->cfg->tpm2 || inst->cfg->disable_auto_shutdown ||
	    inst->last_was_shutdown)
		return;
	/* The storage is not ours (incoming state not received yet, or handed
	 * to the migration destination): the NV write TPM2_Shutdown makes must
	 * not reach it. swtpm 0.8 writes it anyway, over the new owner's state. */
	if (inst->store_ready && inst->store.lock_deferred)
		return;
	memcpy(cmd, su_state, sizeof(cmd));
	if (TPMLIB_Process(&inst->rspbuf, &rlen, &inst->rspbufsize, cmd, sizeof(cmd)) != 0 ||
	    rlen < 10)
		return;
	rc = be32(inst->rspbuf + 6);
	if (rc != 0 && rc != TPM2_RC_INITIALIZE) {
		memcpy(cmd, su_clear, sizeof(cmd));
		TPMLIB_Process(&inst->rspbuf, &rlen, &inst->rspbufsize, cmd, sizeof(cmd));
	}
	inst->last_was_shutdown = true;
}

void instance_stop(struct instance *inst)
{
	tpm_auto_shutdown(inst);
	TPMLIB_Terminate();
	inst->running = false;
}

uint32_t instance_start(struct instance *inst, uint32_t init_flags)
{
	TPM_RESULT res;

	instance_stop(inst);
	if (TPMLIB_ChooseTPMVersion(inst->cfg->tpm2 ? TPMLIB_TPM_VERSION_2
						     : TPMLIB_TPM_VERSION_1_2) != TPM_SUCCESS)
		return TPM_FAIL;
	res = TPMLIB_MainInit();
	if (res != TPM_SUCCESS) {
		log_printf("Could not initialize the TPM: 0x%x\n", res);
		return res;
	}
	/* The volatile state is consumed once it was loaded, unless the storage
	 * is not ours yet (incoming migration): it belongs to its owner then. */
	if ((init_flags & PTM_INIT_FLAG_DELETE_VOLATILE) && !inst->store.lock_deferred) {
		if (store_delete(&inst->store, STORE_VOLATILE) < 0) {
			TPMLIB_Terminate();
			return TPM_FAIL;
		}
	}
	inst->running = true;
	inst->started_once = true;
	inst->last_was_shutdown = false;
	return TPM_SUCCESS;
}

/* A TPM 2 on the state directory state_dir, its storage locked (vtpmd's
 * pool): cfg and inst are set up for it, or left cleaned up on failure. */
static int tpm_open_dir(struct instance *inst, struct vtpm_config *cfg, const char *state_dir)
{
	int r;

	config_init(cfg);
	cfg->tpm2 = true;
	if (asprintf(&cfg->state_uri, "dir://%s", state_dir) < 0) {
		cfg->state_uri = NULL;
		return -ENOMEM;
	}
	r = instance_init(inst, cfg);
	if (r == 0) {
		r = instance_storage_prepare(inst);
		if (r < 0)
			instance_fini(inst);
	}
	if (r < 0)
		config_free(cfg);
	return r;
}

int instance_manufacture(const char *state_dir)
{
	struct vtpm_config cfg;
	struct instance inst;
	struct stat sb;
	int r;

	r = tpm_open_dir(&inst, &cfg, state_dir);
	if (r < 0)
		return r;
	/* A state that is there already is not ours to replace. */
	if (fstatat(inst.store.dirfd, store_file_name(&inst.store, STORE_PERMALL, false), &sb,
		    AT_SYMLINK_NOFOLLOW) == 0) {
		log_printf("Error: %s already holds a TPM state\n", state_dir);
		r = -EEXIST;
		goto out;
	}
	if (instance_start(&inst, 0) != TPM_SUCCESS) {
		r = -EIO;
		goto out;
	}
	r = store_flush_sync(&inst.store);
	if (r == 0)
		r = store_prepare_journal(&inst.store);
	if (r < 0)
		log_printf("Error: could not write the manufactured TPM state: %s\n", strerror(-r));
	/* No TPM2_Startup ran, so the automatic TPM2_Shutdown of instance_stop
	 * is refused (TPM_RC_INITIALIZE) and changes nothing. */
	instance_stop(&inst);
out:
	instance_fini(&inst);
	config_free(&cfg);
	return r;
}

/*
 * A TPM loaded ahead of its command line (vtpmd's pool, see
 * src/manager/pool.c): MainInit on the state of state_dir, not started. It
 * is taken over by instance_run if the command line keeps the state right
 * there and starts the TPM at once (--flags not-need-init); anything else
 * releases it first, and runs exactly as without it.
 */
static struct vtpm_config preload_cfg;
static struct instance preload_inst;
static bool preload_ok;

int instance_preload(const char *state_dir)
{
	int r;

	if (preload_ok)
		return -EBUSY;
	r = tpm_open_dir(&preload_inst, &preload_cfg, state_dir);
	if (r < 0)
		return r;
	if (instance_start(&preload_inst, 0) != TPM_SUCCESS) {
		instance_fini(&preload_inst);
		config_free(&preload_cfg);
		return -EIO;
	}
	preload_ok = true;
	return 0;
}

void instance_release_preloaded(void)
{
	if (!preload_ok)
		return;
	preload_ok = false;
	/* never started: its automatic TPM2_Shutdown is refused, nothing is
	 * written, and the lock goes */
	instance_fini(&preload_inst);
	config_free(&preload_cfg);
}

/* Same directory (not just the same name: vtpmd renamed it in between)? */
static bool tpm_same_dir(int dirfd, const char *path)
{
	struct stat a, b;

	return fstat(dirfd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

int instance_adopt_preloaded(struct instance *inst, const struct vtpm_config *cfg)
{
	const char *path;
	char *dir;

	if (!preload_ok)
		return -ENOENT;
	path = cfg->state_uri && strncmp(cfg->state_uri, "dir://", 6) == 0 ? cfg->state_uri + 6
									 : NULL;
	if (!cfg->tpm2 || !cfg->not_need_init || !path || cfg->keys.key ||
	    cfg->keys.migration_key || cfg->migration_incoming || cfg->state_nolock ||
	    cfg->state_mode != preload_cfg.state_mode ||
	    !tpm_same_dir(preload_inst.store.dirfd, path) || !(dir = strdup(path))) {
		instance_release_preloaded();
		return -EXDEV;
	}
	*inst = preload_inst;
	inst->cfg = cfg;
	free(inst->store.dir); /* the name it had before vtpmd renamed it */
	inst->store.dir = dir;
	tpm_bound = inst;
	memset(&preload_inst, 0, sizeof(preload_inst));
	preload_ok = false;
	config_free(&preload_cfg);
	if (log_get_level() >= 5 && log_get_fd() >= 0) {
		char prefix[160];

		snprintf(prefix, sizeof(prefix), "%s    ", log_get_prefix());
		TPMLIB_SetDebugFD(log_get_fd());
		TPMLIB_SetDebugLevel(log_get_level() - 4);
		TPMLIB_SetDebugPrefix(prefix);
	}
	return 0;
}

void instance_fini(struct instance *inst)
{
	if (inst->running)
		instance_stop(inst);
	if (inst->store_ready) {
		/* A process that never ran the TPM (a failed start: wrong key, locked
		 * directory) leaves the files exactly as it found them, even if the
		 * journal holds newer state from a crash: that is for the next
		 * successful start to bring out. */
		if (inst->started_once ? instance_sync_out(inst) < 0
				       : store_flush_sync(&inst->store) < 0)
			log_printf("Could not write the TPM state at exit\n");
		store_fini(&inst->store);
		inst->store_ready = false;
	}
	keys_wipe(&inst->statekey);
	keys_wipe(&inst->migkey);
	free(inst->rspbuf);
	inst->rspbuf = NULL;
	inst->rspbufsize = 0;
	if (tpm_bound == inst)
		tpm_bound = NULL;
}

/* The vendor SetLocality command (0x20001000), handled before libtpms. */
static void tpm_set_locality_cmd(struct instance *inst, const uint8_t *cmd, size_t len,
				 const uint8_t **rsp, size_t *rsplen)
{
	bool tpm2 = inst->cfg->tpm2;
	uint8_t loc;

	if (len < 11) {
		tpm_small_reply(inst, tpm2 ? TPM2_RC_INSUFFICIENT : TPM12_BAD_PARAM_SIZE, rsp, rsplen);
		return;
	}
	if (!inst->cfg->allow_set_locality) {
		tpm_small_reply(inst, tpm_fatal_rc(inst), rsp, rsplen);
		return;
	}
	loc = cmd[10];
	if (loc > 4 || (loc == 4 && inst->cfg->reject_locality4)) {
		tpm_small_reply(inst, tpm2 ? TPM2_RC_LOCALITY : TPM_BAD_LOCALITY, rsp, rsplen);
		return;
	}
	inst->locality = loc;
	tpm_small_reply(inst, 0, rsp, rsplen);
}

/* swtpm 0.8: the first TPM command takes the storage lock when it is not held
 * on purpose (pending incoming migration, or released after an outgoing one,
 * then with 300 x 10 ms of retries so that a failed migration can fall back to
 * us). Without it the command is not executed. swtpm then ends without an
 * answer; we answer with the TPM's failure code and stay up (the transport
 * owns the loop, and the seccomp filter has no kill() for a self-SIGTERM).
 * Later commands try again, without the long wait. */
static bool tpm_take_deferred_lock(struct instance *inst)
{
	int r;

	if (!inst->store_ready || !inst->store.lock_deferred)
		return true;
	r = store_lock_retry(&inst->store, inst->store.relock_retries);
	if (r == 0)
		return true;
	inst->store.relock_retries = 0;
	log_printf("Could not lock the TPM state storage: %s\n", strerror(-r));
	return false;
}

static int tpm_process(struct instance *inst, const uint8_t *cmd, size_t len, const uint8_t **rsp,
		       size_t *rsplen, bool take_lock)
{
	uint32_t rlen = 0;
	uint32_t code;

	if (take_lock && !tpm_take_deferred_lock(inst)) {
		tpm_small_reply(inst, tpm_fatal_rc(inst), rsp, rsplen);
		return 0;
	}
	if (!inst->running) {
		tpm_small_reply(inst, tpm_fatal_rc(inst), rsp, rsplen);
		return 0;
	}
	if (len < 10) {
		tpm_small_reply(inst, inst->cfg->tpm2 ? TPM2_RC_INSUFFICIENT : TPM12_BAD_PARAM_SIZE,
				rsp, rsplen);
		return 0;
	}
	code = be32(cmd + 6);
	if (code == TPM_CC_SET_LOCALITY) {
		tpm_set_locality_cmd(inst, cmd, len, rsp, rsplen);
		return 0;
	}
	/* libtpms takes a non-const pointer but does not write to the command. */
	if (TPMLIB_Process(&inst->rspbuf, &rlen, &inst->rspbufsize, (unsigned char *)cmd,
			   (uint32_t)len) != TPM_SUCCESS ||
	    rlen < 10) {
		tpm_small_reply(inst, tpm_fatal_rc(inst), rsp, rsplen);
		return 0;
	}
	inst->commands++;
	inst->last_was_shutdown = inst->cfg->tpm2 && code == TPM2_CC_SHUTDOWN;
	*rsp = inst->rspbuf;
	*rsplen = rlen;
	return 0;
}

int instance_process(struct instance *inst, const uint8_t *cmd, size_t len, const uint8_t **rsp,
		     size_t *rsplen)
{
	return tpm_process(inst, cmd, len, rsp, rsplen, true);
}

int instance_startup_cmd(struct instance *inst)
{
	uint8_t cmd[12] = { 0x00, 0xc1, 0, 0, 0, 0x0c, 0, 0, 0, TPM12_ORD_STARTUP, 0, 0 };
	const uint8_t *rsp;
	size_t rsplen;
	uint16_t type;

	if (inst->cfg->startup == STARTUP_NONE)
		return 0;
	if (inst->cfg->tpm2) {
		if (inst->cfg->startup == STARTUP_DEACTIVATED) {
			log_printf("Error: TPM 2 does not support startup-deactivated\n");
			return -ENOTSUP;
		}
		cmd[0] = 0x80;
		cmd[1] = 0x01;
		cmd[8] = 0x01;
		cmd[9] = 0x44;
		type = inst->cfg->startup == STARTUP_STATE ? 1 : 0;
	} else {
		type = inst->cfg->startup == STARTUP_CLEAR ? 1
		       : inst->cfg->startup == STARTUP_STATE ? 2
							     : 3;
	}
	cmd[10] = (uint8_t)(type >> 8);
	cmd[11] = (uint8_t)type;
	/* The TPM's answer is not inspected, as in swtpm, which also sends this
	 * command without taking a deferred storage lock. */
	return tpm_process(inst, cmd, sizeof(cmd), &rsp, &rsplen, false);
}
