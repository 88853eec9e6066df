/* One TPM instance, transport-free: libtpms lifecycle, locality, the state store.
 * Transports feed it command bytes and ctrl requests; it never touches sockets. */
#ifndef VTPM_INSTANCE_H
#define VTPM_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/keys.h"
#include "instance/config.h"
#include "instance/store.h"

/* What a transport lets the ctrl dispatcher do to it. */
struct instance_hooks {
	/* CMD_SET_DATAFD: take ownership of fd as the data connection.
	 * -EBUSY if a data channel exists (answer TPM_IOERROR). */
	int (*set_datafd)(void *ctx, int fd);
	void *ctx;
	uint64_t caps; /* capability word this transport reports */
};

struct instance {
	const struct vtpm_config *cfg;
	struct store store;
	bool store_ready;	/* store_init done (URI resolved) */
	bool running;		/* CMD_INIT (or start-up) succeeded, no STOP since */
	uint32_t locality;	/* process-wide current locality, initially 0 */
	bool last_was_shutdown; /* last processed TPM 2 command was TPM2_Shutdown */
	bool started_once;	/* the TPM ran in this process: we own the state */
	uint8_t *rspbuf;	/* libtpms response buffer, reused */
	uint32_t rspbufsize;
	struct vtpm_key statekey; /* --key (len 0: none) */
	struct vtpm_key migkey;	  /* --migration-key (len 0: none) */
	uint8_t errrsp[10];	/* replies the instance makes itself */
	uint64_t commands;	/* TPM commands processed */
	struct instance_hooks hooks;
};

/* Bind the instance to libtpms (one per process: libtpms is global). Chooses
 * the TPM version and registers the NVRAM/IO callbacks. 0 or -errno. */
int instance_init(struct instance *inst, const struct vtpm_config *cfg);
void instance_fini(struct instance *inst);

/* Load --key / --migration-key (swtpm's start-up step 10). Reads and closes key
 * fds, removes files with remove=true. 0, or -errno with the message logged. */
int instance_load_keys(struct instance *inst);

/* Start the TPM (CMD_INIT semantics: terminate a running TPM first, with the
 * automatic TPM2_Shutdown). Returns a TPM result code (0 = success). */
uint32_t instance_start(struct instance *inst, uint32_t init_flags);

/* Manufacture a TPM 2 in the empty directory state_dir and make its state
 * durable, with the journal file made too: what the first start of
 * `swtpm socket --tpm2 --tpmstate dir=state_dir` writes before its TPM2_Startup.
 * The TPM is terminated again. vtpmd's pool prepares instances this way
 * ahead of their create. 0 or -errno (logged). */
int instance_manufacture(const char *state_dir);

/* vtpmd's pool: load the TPM state of state_dir (MainInit, no TPM2_Startup)
 * and keep it for instance_run, which takes it over when its command line
 * keeps the state in that very directory and starts the TPM at once
 * (--flags not-need-init), and otherwise releases it before doing anything.
 * 0 or -errno. */
int instance_preload(const char *state_dir);
/* Take the preloaded TPM over into inst for cfg: 0, or -ENOENT (none) or
 * -EXDEV (cfg does not fit; it was released). The instance is running. */
int instance_adopt_preloaded(struct instance *inst, const struct vtpm_config *cfg);
void instance_release_preloaded(void);

/* Stop a running TPM (CMD_STOP / exit semantics). */
void instance_stop(struct instance *inst);

/* Process one TPM command as the data channel sees it: the "not initialised"
 * reply, SetLocality interception, then libtpms. *rsp points into the
 * instance's buffer, valid until the next call. 0 or -errno (internal). */
int instance_process(struct instance *inst, const uint8_t *cmd, size_t len, const uint8_t **rsp,
		     size_t *rsplen);

/* Send the --flags startup-* command once (before the main loop). Returns 0,
 * or -ENOTSUP for TPM 2 + startup-deactivated (caller exits with status 0). */
int instance_startup_cmd(struct instance *inst);

/* Storage access for the ctrl dispatcher: resolve the URI (TPM_PATH) and take
 * the lock. 0, -ENOENT (no backend configured), -EAGAIN (locked elsewhere). */
int instance_storage_prepare(struct instance *inst);

/* Bring swtpm's state files up to date (see store_sync_out). 0 or -errno. */
int instance_sync_out(struct instance *inst);

/* True if a command made state changes that are not on disk yet. */
bool instance_has_pending_writes(const struct instance *inst);

#endif
