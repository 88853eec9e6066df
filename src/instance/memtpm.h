/* libtpms started as a TPM 2 whose NVRAM lives in memory. The bench's in-process
 * floor and bare reference server run it, so that neither pays for storage
 * (the cost a real server adds for persistence is what they are compared
 * against); vtpmd's spawner runs one to set libtpms and OpenSSL up before it
 * forks, and throws it away. One per process, as libtpms is process-global.
 * Depends on libtpms and libc only, so the bench builds it without the rest
 * of the tree. */
#ifndef VTPM_MEMTPM_H
#define VTPM_MEMTPM_H

#include <libtpms/tpm_types.h>

/* Choose TPM 2, register the in-memory callbacks, TPMLIB_MainInit. */
TPM_RESULT memtpm_start(void);
/* TPMLIB_Terminate (if it started) and wipe and free the NVRAM copies. */
void memtpm_stop(void);

#endif
