/* The parsed form of a swtpm command line: everything an instance needs to run.
 * Produced by cli_parse() for `swtpm` and for every vtpmd child alike. */
#ifndef VTPM_CONFIG_H
#define VTPM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum cfg_iface { IFACE_SOCKET = 0, IFACE_CHARDEV, IFACE_CUSE };

enum cfg_sock_type { SOCK_NONE = 0, SOCK_TCP, SOCK_UNIXIO };

/* A --server or --ctrl endpoint. */
struct cfg_sock {
	enum cfg_sock_type type;
	char *path;	   /* unixio path, or NULL */
	int port;	   /* tcp port, -1 if not given */
	char *bindaddr;	   /* tcp bind address, NULL = 127.0.0.1 */
	char *ifname;	   /* for link-local IPv6 */
	int fd;		   /* listening fd (server: tcp fd is connected), -1 */
	int clientfd;	   /* ctrl only: the connected client fd, -1 */
	mode_t mode;	   /* unixio socket file mode, default 0770 */
	bool uid_set, gid_set;
	uid_t uid;
	gid_t gid;
	bool disconnect;   /* server: close after each response */
	bool terminate;	   /* ctrl [0.8+]: exit when the ctrl client goes */
};

enum cfg_startup {
	STARTUP_NONE = 0,
	STARTUP_CLEAR,
	STARTUP_STATE,
	STARTUP_DEACTIVATED,
};

enum cfg_seccomp { SECCOMP_KILL = 0, SECCOMP_LOG, SECCOMP_NONE };

struct cfg_log {
	bool given;	/* any --log option: changes the default prefix */
	char *file;	/* NULL, "-" = suppress, or a path */
	int fd;		/* -1 unless fd= */
	unsigned level; /* default 1 */
	char *prefix;	/* NULL = none (when given) */
	bool truncate;
};

/* Unparsed key option strings; src/crypto turns them into keys. */
struct cfg_keys {
	char *key;	     /* --key value or NULL */
	char *migration_key; /* --migration-key value or NULL */
};

struct vtpm_config {
	enum cfg_iface iface;
	bool tpm2;

	/* storage */
	char *state_uri;   /* "dir://..." / "file://...", NULL: use TPM_PATH lazily */
	mode_t state_mode; /* default 0640 */
	bool state_mode_set;
	bool state_nolock; /* --tpmstate ...,lock=false (swtpm 0.10): no storage lock */

	/* transports */
	struct cfg_sock server;
	struct cfg_sock ctrl;
	int data_fd;	   /* -f/--fd, -1; chardev: the device or proxy fd at run time */
	/* chardev -c: opened by instance_run (not by cli_parse, which the vtpmd
	 * manager also runs only to validate a command line). */
	char *chardev_path;
	bool vtpm_proxy;   /* chardev --vtpm-proxy */
	/* cuse: -n NAME creates /dev/NAME; -M/-m pick the device number (0: the
	 * kernel chooses). cuse_foreground keeps libfuse from daemonizing, which
	 * swtpm cuse always does (vtpmd supervises its children directly). */
	char *cuse_name;
	unsigned cuse_major, cuse_minor;
	bool cuse_foreground;
	bool terminate;	   /* -t */

	/* behaviour */
	bool not_need_init;
	enum cfg_startup startup;
	bool startup_set;  /* --flags named a startup-* type (overrides the proxy's) */
	bool disable_auto_shutdown;
	/* --migration [0.8+]: defer the storage lock until the state arrived;
	 * release it once the last blob of an outgoing migration was fetched. */
	bool migration_incoming, migration_release_lock_outgoing;
	bool reject_locality4;
	bool allow_set_locality;

	struct cfg_log log;
	char *pid_file;
	int pid_fd; /* -1 */
	bool daemon;
	char *runas;
	enum cfg_seccomp seccomp;
	struct cfg_keys keys;

	bool print_capabilities;
	bool print_states;
	bool help;
	bool version;
};

void config_init(struct vtpm_config *cfg);
void config_free(struct vtpm_config *cfg);

#endif
