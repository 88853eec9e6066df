/* instance_run(): the whole life of one swtpm process for a parsed command line.
 * `swtpm` calls it from main; vtpmd children will call it after fork. */
#ifndef VTPM_RUN_H
#define VTPM_RUN_H

#include "instance/config.h"

/* Returns the process exit status; never calls exit() itself. */
int instance_run(const struct vtpm_config *cfg);

/* vtpmd's readiness channel (a socket; -1, the default: none). Once the
 * instance serves (sockets listening, TPM started and its state durable, the
 * sandbox on) instance_run sends its pid there and closes it. */
extern int instance_ready_fd;

#endif
