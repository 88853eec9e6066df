/* instance_run(): the whole life of one swtpm process for a parsed command line.
 * `swtpm` calls it from main; vtpmd children will call it after fork. */
#ifndef VTPM_RUN_H
#define VTPM_RUN_H

#include "instance/config.h"

/* Returns the process exit status; never calls exit() itself. */
int instance_run(const struct vtpm_config *cfg);

#endif
