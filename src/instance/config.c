/* Defaults and cleanup for struct vtpm_config, the parsed command line.
 * The defaults are swtpm's: no transports, state mode 0640, log level 1. */
#include "instance/config.h"

#include <stdlib.h>
#include <string.h>

static void config_sock_init(struct cfg_sock *s)
{
	memset(s, 0, sizeof(*s));
	s->type = SOCK_NONE;
	s->port = -1;
	s->fd = -1;
	s->clientfd = -1;
	s->mode = 0770;
}

static void config_sock_free(struct cfg_sock *s)
{
	free(s->path);
	free(s->bindaddr);
	free(s->ifname);
}

void config_init(struct vtpm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->iface = IFACE_SOCKET;
	cfg->state_mode = 0640;
	config_sock_init(&cfg->server);
	config_sock_init(&cfg->ctrl);
	cfg->data_fd = -1;
	cfg->startup = STARTUP_NONE;
	cfg->log.fd = -1;
	cfg->log.level = 1;
	cfg->pid_fd = -1;
	cfg->seccomp = SECCOMP_KILL;
}

/* Leaves cfg re-initialised, so calling it twice is harmless. */
void config_free(struct vtpm_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->state_uri);
	config_sock_free(&cfg->server);
	config_sock_free(&cfg->ctrl);
	free(cfg->log.file);
	free(cfg->log.prefix);
	free(cfg->pid_file);
	free(cfg->chardev_path);
	free(cfg->cuse_name);
	free(cfg->runas);
	free(cfg->keys.key);
	free(cfg->keys.migration_key);
	config_init(cfg);
}
