/* The in-process floor: libtpms driven directly, no transport, in a forked
 * child so that libtpms' process-global TPM never touches the parent. */
#ifndef VTPM_BENCH_FLOOR_H
#define VTPM_BENCH_FLOOR_H

#include <stdint.h>
#include <sys/types.h>

#include "ops.h"

struct floor {
	pid_t pid;
	int fd;		/* stream socket to the child */
};

int floor_start(struct floor *fl, unsigned ops_mask, struct failure *f);
/* Runs count ops in the child; latencies and the child's CPU time for the
 * batch come back over the socket. */
int floor_run(struct floor *fl, enum op_id op, uint32_t count, uint64_t *lat_ns,
	      uint32_t *done, uint64_t *cpu_ns, struct failure *f);
void floor_stop(struct floor *fl);

#endif
