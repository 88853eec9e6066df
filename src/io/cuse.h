/* `swtpm cuse`: the instance behind a CUSE character device /dev/NAME. TPM
 * commands go in by write() and come back by read(); every ctrl command is a
 * PTM_* ioctl, decoded by io/ctrl_ioctl_codec and executed by the same
 * dispatcher as the socket's ctrl channel (data-channel.md §8,
 * ctrl-channel.md §6.2 and §8). */
#ifndef VTPM_CUSE_H
#define VTPM_CUSE_H

#include "instance/config.h"
#include "instance/instance.h"
#include "io/cuse_dev.h"

/* Called once the device exists (libfuse's init_done), before the first
 * request is served: pid file, --runas and seccomp belong there for CUSE.
 * Returns 0, or the process exit status to end with. */
typedef int (*cuse_ready_fn)(void *ctx);

/* Register /dev/<cfg->cuse_name> and serve it until PTM_SHUTDOWN, a signal or
 * a fatal error. Unless cfg->cuse_foreground, libfuse daemonizes first (the
 * calling process exits with 0 as soon as the daemon runs, as swtpm cuse
 * does). Returns the exit status. */
int cuse_run(struct instance *inst, const struct vtpm_config *cfg, cuse_ready_fn ready,
	     void *ready_ctx);

#endif
