/* The socket front end of one instance: data channel (TCP/UnixIO listener, -f fd,
 * SET_DATAFD) and ctrl channel (listener or clientfd) on one event loop. */
#ifndef VTPM_SERVER_H
#define VTPM_SERVER_H

#include "instance/instance.h"

struct server;

/* Create the listening sockets and adopt the given fds (start-up step 8 of
 * swtpm). Returns 0 or -errno (message logged). */
int server_new(struct server **out, struct instance *inst, const struct vtpm_config *cfg);

/* Serve until SIGTERM, CMD_SHUTDOWN or a terminate condition. Returns the
 * process exit status. */
int server_run(struct server *srv);

/* Close sockets and unlink UnixIO socket files. */
void server_free(struct server *srv);

/* Capability word of the socket transport for this TPM version. */
uint64_t server_caps(bool tpm2);

#endif
