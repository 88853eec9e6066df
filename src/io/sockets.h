/* Creating the listening sockets of --server and --ctrl (TCP with bind address
 * and interface, UnixIO with mode and owner) the way swtpm sets them up. */
#ifndef VTPM_SOCKETS_H
#define VTPM_SOCKETS_H

#include <stdbool.h>
#include <sys/types.h>

#include "instance/config.h"

/* Listening socket for a cfg_sock of type TCP or UNIXIO with a port/path.
 * `what` names it in error messages ("server", "control channel").
 * Returns the fd or -errno (message logged). */
int sock_listen(const struct cfg_sock *cs, const char *what);

/* True if fd is an open socket. */
bool sock_is_socket(int fd);

#endif
