/* libtpms started as a TPM 2 whose NVRAM lives in memory: what the in-process
 * floor and the bare reference server run, so that neither pays for storage
 * (the cost a real server adds for persistence is what they are compared
 * against). One per process, as libtpms is process-global. */
#ifndef VTPM_BENCH_MEMTPM_H
#define VTPM_BENCH_MEMTPM_H

#include <libtpms/tpm_types.h>

/* Choose TPM 2, register the in-memory callbacks, TPMLIB_MainInit. */
TPM_RESULT memtpm_start(void);

#endif
