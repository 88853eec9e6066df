/* Process hardening applied before serving: --runas (drop to a user) and the
 * --seccomp allow-list filter. */
#ifndef VTPM_SANDBOX_H
#define VTPM_SANDBOX_H

#include "instance/config.h"

/* Switch to the user given by name or numeric uid. 0 or -errno (logged). */
int sandbox_runas(const char *user);

/* Install the syscall allow-list for the serving phase. Everything the event
 * loop, libtpms, OpenSSL and the state store need after start-up is allowed;
 * anything else kills the process (SECCOMP_KILL) or is logged (SECCOMP_LOG). */
int sandbox_seccomp(enum cfg_seccomp action);

#endif
