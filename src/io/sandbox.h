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

/* Compile the filters of SECCOMP_KILL and SECCOMP_LOG once and keep their BPF
 * programs, so sandbox_seccomp in a forked child only installs one instead of
 * building it with libseccomp (vtpmd's spawner). 0, or -errno and none kept
 * (sandbox_seccomp then builds the filter itself, as without this call). */
int sandbox_seccomp_precompile(void);

/* For tests: the program kept by sandbox_seccomp_precompile for action, or
 * NULL; and a freshly compiled one written to fd (seccomp_export_bpf). */
struct sock_fprog;
const struct sock_fprog *sandbox_seccomp_program(enum cfg_seccomp action);
int sandbox_seccomp_export(enum cfg_seccomp action, int fd);

#endif
