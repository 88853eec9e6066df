/* Command line of `swtpm`: interface dispatch, `swtpm socket` and `swtpm chardev`
 * options into a struct vtpm_config, the --help texts and --print-capabilities.
 *
 * Like swtpm, getopt only records each option's argument (the last one wins)
 * and the sub-option strings are validated afterwards in swtpm's start-up
 * order, so the same command line fails with the same first error. */
#include "instance/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>

#include "instance/options.h"
#include "vtpm_build.h"

#define CLI_VERSION_LINE \
	"TPM emulator version " SWTPM_COMPAT_VERSION " (vtpmd " VTPM_VERSION ")\n"

/* Long-only options get values above any character so they can never be
 * confused with a short option in getopt's optopt. */
enum cli_longopt {
	CLI_OPT_SERVER = 256,
	CLI_OPT_CTRL,
	CLI_OPT_TPMSTATE,
	CLI_OPT_TPM2,
	CLI_OPT_LOG,
	CLI_OPT_LOCALITY,
	CLI_OPT_KEY,
	CLI_OPT_MIGRATION_KEY,
	CLI_OPT_PID,
	CLI_OPT_FLAGS,
	CLI_OPT_SECCOMP,
	CLI_OPT_MIGRATION,
	CLI_OPT_PRINT_CAPS,
	CLI_OPT_PRINT_STATES,
	CLI_OPT_VTPM_PROXY,
};

/* The long options every interface has (each table below adds its own);
 * they are handled by cli_common_opt, plus -r and -h. */
#define CLI_COMMON_LONGOPTS                                                     \
	{ "tpmstate", required_argument, NULL, CLI_OPT_TPMSTATE },              \
	{ "tpm2", no_argument, NULL, CLI_OPT_TPM2 },                            \
	{ "log", required_argument, NULL, CLI_OPT_LOG },                        \
	{ "locality", required_argument, NULL, CLI_OPT_LOCALITY },              \
	{ "key", required_argument, NULL, CLI_OPT_KEY },                        \
	{ "migration-key", required_argument, NULL, CLI_OPT_MIGRATION_KEY },    \
	{ "pid", required_argument, NULL, CLI_OPT_PID },                        \
	{ "flags", required_argument, NULL, CLI_OPT_FLAGS },                    \
	{ "runas", required_argument, NULL, 'r' },                              \
	{ "seccomp", required_argument, NULL, CLI_OPT_SECCOMP },                \
	{ "migration", required_argument, NULL, CLI_OPT_MIGRATION },            \
	{ "print-capabilities", no_argument, NULL, CLI_OPT_PRINT_CAPS },        \
	{ "print-states", no_argument, NULL, CLI_OPT_PRINT_STATES },            \
	{ "help", no_argument, NULL, 'h' }

static const char cli_socket_shortopts[] = "dhp:f:tr:";

static const struct option cli_socket_longopts[] = {
	{ "port", required_argument, NULL, 'p' },
	{ "fd", required_argument, NULL, 'f' },
	{ "terminate", no_argument, NULL, 't' },
	{ "daemon", no_argument, NULL, 'd' },
	{ "server", required_argument, NULL, CLI_OPT_SERVER },
	{ "ctrl", required_argument, NULL, CLI_OPT_CTRL },
	CLI_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 },
};

/* chardev: socket's options minus -p/-t/--server, plus -c and --vtpm-proxy
 * (cli.md §4.1). */
static const char cli_chardev_shortopts[] = "dhc:f:r:";

static const struct option cli_chardev_longopts[] = {
	{ "chardev", required_argument, NULL, 'c' },
	{ "fd", required_argument, NULL, 'f' },
	{ "daemon", no_argument, NULL, 'd' },
	{ "ctrl", required_argument, NULL, CLI_OPT_CTRL },
	{ "vtpm-proxy", no_argument, NULL, CLI_OPT_VTPM_PROXY },
	CLI_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 },
};

/* cuse (cli.md §4.2): no transports of its own; the device is the data and
 * the control channel. */
static const char cli_cuse_shortopts[] = "M:m:n:r:hv";

static const struct option cli_cuse_longopts[] = {
	{ "maj", required_argument, NULL, 'M' },
	{ "min", required_argument, NULL, 'm' },
	{ "name", required_argument, NULL, 'n' },
	{ "version", no_argument, NULL, 'v' },
	CLI_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 },
};

/* Sub-option grammars (cli.md §3). */
static const struct opts_desc cli_server_desc[] = {
	{ "type", OPTS_STRING },   { "port", OPTS_INT },	  { "bindaddr", OPTS_STRING },
	{ "ifname", OPTS_STRING }, { "fd", OPTS_INT },	  { "disconnect", OPTS_BOOLEAN },
	{ "path", OPTS_STRING },   { "mode", OPTS_MODE }, { "uid", OPTS_UID },
	{ "gid", OPTS_GID },	   { NULL, 0 },
};

static const struct opts_desc cli_ctrl_desc[] = {
	{ "type", OPTS_STRING },      { "path", OPTS_STRING }, { "port", OPTS_INT },
	{ "bindaddr", OPTS_STRING },  { "ifname", OPTS_STRING }, { "fd", OPTS_INT },
	{ "clientfd", OPTS_INT },     { "mode", OPTS_MODE },   { "uid", OPTS_UID },
	{ "gid", OPTS_GID },	      { "terminate", OPTS_BOOLEAN }, { NULL, 0 },
};

static const struct opts_desc cli_tpmstate_desc[] = {
	{ "dir", OPTS_STRING },
	{ "backend-uri", OPTS_STRING },
	{ "mode", OPTS_MODE },
	{ "lock", OPTS_BOOLEAN },
	{ NULL, 0 },
};

static const struct opts_desc cli_log_desc[] = {
	{ "file", OPTS_STRING },  { "fd", OPTS_INT }, { "level", OPTS_UINT },
	{ "prefix", OPTS_STRING }, { "truncate", OPTS_BOOLEAN }, { NULL, 0 },
};

static const struct opts_desc cli_locality_desc[] = {
	{ "reject-locality-4", OPTS_BOOLEAN },
	{ "allow-set-locality", OPTS_BOOLEAN },
	{ NULL, 0 },
};

static const struct opts_desc cli_pid_desc[] = {
	{ "file", OPTS_STRING },
	{ "fd", OPTS_INT },
	{ NULL, 0 },
};

static const struct opts_desc cli_flags_desc[] = {
	{ "not-need-init", OPTS_BOOLEAN },	 { "startup-clear", OPTS_BOOLEAN },
	{ "startup-state", OPTS_BOOLEAN },	 { "startup-deactivated", OPTS_BOOLEAN },
	{ "startup-none", OPTS_BOOLEAN },	 { "disable-auto-shutdown", OPTS_BOOLEAN },
	{ NULL, 0 },
};

static const struct opts_desc cli_migration_desc[] = {
	{ "incoming", OPTS_BOOLEAN },
	{ "release-lock-outgoing", OPTS_BOOLEAN },
	{ NULL, 0 },
};

static const struct opts_desc cli_seccomp_desc[] = {
	{ "action", OPTS_STRING },
	{ NULL, 0 },
};

/* What getopt saw; pointers into argv (or string literals). */
struct cli_raw {
	const char *server;
	const char *ctrl;
	const char *tpmstate;
	const char *log;
	const char *locality;
	const char *key;
	const char *migration_key;
	const char *pid;
	const char *flags;
	const char *seccomp;
	const char *migration;
	const char *runas;
};

/* ------------------------------------------------------------------------ */
/* help and version                                                          */

static void cli_overview(FILE *out, const char *prog)
{
	fprintf(out,
		"Software TPM 1.2 / TPM 2 emulator (swtpm compatible), served over a choice of interfaces.\n"
		"\n"
		"Usage: %s socket|chardev|cuse [options]\n"
		"       %s -v|--version\n"
		"\n"
		"Run '%s socket --help' (or chardev, cuse) to list an interface's options.\n"
		"Run '%s --version' to show the version.\n",
		prog, prog, prog, prog);
}

struct cli_help_entry {
	const char *syntax;
	const char *text; /* one paragraph, wrapped when printed */
};

/* 19 columns of indentation + 60 of text */
#define CLI_HELP_TEXT_WIDTH 60

/* Help entries by name, so that each interface can list them in its own order. */
enum cli_help_id {
	CLI_H_PORT,
	CLI_H_FD,
	CLI_H_TERMINATE,
	CLI_H_DAEMON,
	CLI_H_CTRL,
	CLI_H_MIGKEY_FILE,
	CLI_H_MIGKEY_PWD,
	CLI_H_LOG,
	CLI_H_KEY_FILE,
	CLI_H_KEY_PWD,
	CLI_H_LOCALITY,
	CLI_H_PID,
	CLI_H_TPMSTATE,
	CLI_H_SERVER_TCP,
	CLI_H_SERVER_UNIXIO,
	CLI_H_FLAGS,
	CLI_H_MIGRATION,
	CLI_H_RUNAS,
	CLI_H_TPM2,
	CLI_H_SECCOMP,
	CLI_H_PRINT_CAPS,
	CLI_H_PRINT_STATES,
	CLI_H_HELP,
	CLI_H_COUNT,
};

static const struct cli_help_entry cli_help[CLI_H_COUNT] = {
	[CLI_H_PORT] = { "-p|--port <port>",
	  "serve TPM commands on this TCP port, closing the connection "
	  "after every response; same as --server type=tcp,disconnect "
	  "with TPM_PORT set to <port>" },
	[CLI_H_FD] = { "-f|--fd <fd>",
	  "take TPM commands from this already connected socket or stream; "
	  "the emulator ends when the other side closes it" },
	[CLI_H_TERMINATE] = { "-t|--terminate", "end the emulator when the data connection is lost" },
	[CLI_H_DAEMON] = { "-d|--daemon",
	  "run in the background; the command returns once the emulator "
	  "is ready to accept connections" },
	[CLI_H_CTRL] = { "--ctrl type=[unixio|tcp][,path=<path>][,port=<port>[,bindaddr=address[,ifname=ifname]]]"
	  "[,fd=<filedescriptor>|clientfd=<filedescriptor>][,mode=0...][,uid=uid][,gid=gid]"
	  "[,terminate]",
	  "where the control channel listens: a Unix socket at <path>, a "
	  "listening socket passed as fd, or one connected client passed as "
	  "clientfd; or a TCP port (bindaddr defaults to 127.0.0.1, a link-local "
	  "IPv6 address needs ifname). mode (default 0770), uid and gid are "
	  "applied to the Unix socket file. With terminate the emulator ends "
	  "when the control client disconnects" },
	[CLI_H_MIGKEY_FILE] = { "--migration-key file=<path>|fd=<fd>[,mode=aes-cbc|aes-256-cbc][,format=hex|binary]"
	  "[,remove=[true|false]]",
	  "key that protects state blobs handed out over the control channel; "
	  "read from a file or file descriptor, given as hex (default) or raw "
	  "bytes; remove deletes the key file once it has been read" },
	[CLI_H_MIGKEY_PWD] = { "--migration-key pwdfile=<path>|pwdfd=<fd>[,mode=aes-cbc|aes-256-cbc]"
	  "[,remove=[true|false]][,kdf=sha512|pbkdf2]",
	  "as above, with the key derived from a passphrase (kdf defaults to "
	  "pbkdf2)" },
	[CLI_H_LOG] = { "--log file=<path>|fd=<filedescriptor>[,level=n][,prefix=<prefix>][,truncate]",
	  "send log messages to a file (file=- discards them) or file "
	  "descriptor instead of stderr; level 1 is the default, higher levels "
	  "add data dumps, 5 and more include libtpms debugging; prefix starts "
	  "every message; truncate empties the log file first" },
	[CLI_H_KEY_FILE] = { "--key file=<path>|fd=<fd>[,mode=aes-cbc|aes-256-cbc][,format=hex|binary]"
	  "[,remove=[true|false]]",
	  "key that encrypts the TPM state files; read from a file or file "
	  "descriptor, given as hex (default) or raw bytes; remove deletes the "
	  "key file once it has been read" },
	[CLI_H_KEY_PWD] = { "--key pwdfile=<path>|pwdfd=<fd>[,mode=aes-cbc|aes-256-cbc]"
	  "[,remove=[true|false]][,kdf=sha512|pbkdf2]",
	  "as above, with the key derived from a passphrase (kdf defaults to "
	  "pbkdf2)" },
	[CLI_H_LOCALITY] = { "--locality [reject-locality-4][,allow-set-locality]",
	  "reject-locality-4: refuse any request to switch to locality 4; "
	  "allow-set-locality: honour the SetLocality command on the data "
	  "channel" },
	[CLI_H_PID] = { "--pid file=<path>|fd=<filedescriptor>",
	  "write the emulator's process id to this file or regular file "
	  "descriptor" },
	[CLI_H_TPMSTATE] = { "--tpmstate dir=<dir>[,mode=0...]|backend-uri=<uri>",
	  "where the TPM state lives: an existing directory or a backend URI, "
	  "dir://<path> or file://<path> (one file or block device holding all "
	  "state in swtpm's linear layout); mode (default 0640) is given to the "
	  "state files of a directory. Without this option the directory in "
	  "TPM_PATH is used" },
	[CLI_H_SERVER_TCP] = { "--server [type=tcp][,port=port[,bindaddr=address[,ifname=ifname]]][,fd=fd][,disconnect]",
	  "serve TPM commands on a TCP port (default: TPM_PORT; bindaddr "
	  "defaults to 127.0.0.1, a link-local IPv6 address needs ifname) or on "
	  "an already connected socket passed as fd; disconnect closes the "
	  "connection after every response" },
	[CLI_H_SERVER_UNIXIO] = { "--server type=unixio[,path=path][,fd=fd][,mode=0...][,uid=uid][,gid=gid]",
	  "serve TPM commands on a Unix socket at path, or on a listening "
	  "socket passed as fd; mode (default 0770), uid and gid are applied to "
	  "the socket file" },
	[CLI_H_FLAGS] = { "--flags [not-need-init][,startup-clear|startup-state|startup-deactivated|startup-none]"
	  "[,disable-auto-shutdown]",
	  "not-need-init: start the TPM right away instead of waiting for "
	  "CMD_INIT; startup-*: also send this TPM_Startup type (implies "
	  "not-need-init); disable-auto-shutdown: do not send TPM2_Shutdown "
	  "before the TPM is stopped" },
	[CLI_H_MIGRATION] = { "--migration [incoming][,release-lock-outgoing]",
	  "incoming: do not lock the state storage before the state was "
	  "received (CMD_SET_STATEBLOB, CMD_LOCK_STORAGE or the first TPM "
	  "command take the lock); release-lock-outgoing: release the lock once "
	  "the savestate blob was fetched, the last one of an outgoing migration "
	  "(for storage shared with the destination)" },
	[CLI_H_RUNAS] = { "-r|--runas <user>", "switch to this user (name or uid) after parsing the options" },
	[CLI_H_TPM2] = { "--tpm2", "emulate a TPM 2 instead of a TPM 1.2" },
	[CLI_H_SECCOMP] = { "--seccomp action=none|kill|log",
	  "what happens when a syscall the emulator never needs is made: "
	  "kill the process (default), only log it, or no filter at all" },
	[CLI_H_PRINT_CAPS] = { "--print-capabilities", "print the supported features as JSON and exit" },
	[CLI_H_PRINT_STATES] = { "--print-states", "print the TPM state items found (needs --tpmstate) as JSON and exit" },
	[CLI_H_HELP] = { "-h|--help", "show this help and exit" },
};

/* chardev's own entries (cli.md §6 item 5 lists where they go). */
static const struct cli_help_entry cli_help_chardev = {
	"-c|--chardev <device>",
	"take TPM commands from this character device (opened read-write), one "
	"command per read; the emulator ends when the device hangs up"
};
static const struct cli_help_entry cli_help_chardev_fd = {
	"-f|--fd <fd>",
	"take TPM commands from this already open character device, socket or "
	"stream; the first of -c and -f counts"
};
static const struct cli_help_entry cli_help_vtpm_proxy = {
	"--vtpm-proxy",
	"create a Linux vTPM proxy device (/dev/tpmN, announced on stdout) and "
	"serve its TPM commands; implies allow-set-locality and, unless --flags "
	"names a start-up type, startup-clear"
};

/* cuse's own entries. */
static const struct cli_help_entry cli_help_cuse_name = {
	"-n|--name <NAME>", "create the CUSE character device /dev/NAME (mandatory)"
};
static const struct cli_help_entry cli_help_cuse_maj = {
	"-M|--maj <MAJ>", "major number of the device (default: chosen by the kernel)"
};
static const struct cli_help_entry cli_help_cuse_min = {
	"-m|--min <MIN>", "minor number of the device"
};
static const struct cli_help_entry cli_help_cuse_runas = {
	"-r|--runas <user>", "switch to this user (name or uid) once the device exists"
};
static const struct cli_help_entry cli_help_version = {
	"-v|--version", "show the version and exit"
};

static const struct cli_help_entry *const cli_socket_order[] = {
	&cli_help[CLI_H_PORT],	     &cli_help[CLI_H_FD],	   &cli_help[CLI_H_TERMINATE],
	&cli_help[CLI_H_DAEMON],     &cli_help[CLI_H_CTRL],	   &cli_help[CLI_H_MIGKEY_FILE],
	&cli_help[CLI_H_MIGKEY_PWD], &cli_help[CLI_H_LOG],	   &cli_help[CLI_H_KEY_FILE],
	&cli_help[CLI_H_KEY_PWD],    &cli_help[CLI_H_LOCALITY],	   &cli_help[CLI_H_PID],
	&cli_help[CLI_H_TPMSTATE],   &cli_help[CLI_H_SERVER_TCP],  &cli_help[CLI_H_SERVER_UNIXIO],
	&cli_help[CLI_H_FLAGS],	     &cli_help[CLI_H_MIGRATION],   &cli_help[CLI_H_RUNAS],
	&cli_help[CLI_H_TPM2],	     &cli_help[CLI_H_SECCOMP],	   &cli_help[CLI_H_PRINT_CAPS],
	&cli_help[CLI_H_PRINT_STATES], &cli_help[CLI_H_HELP],	   NULL,
};

static const struct cli_help_entry *const cli_chardev_order[] = {
	&cli_help_chardev,	     &cli_help_chardev_fd,	   &cli_help[CLI_H_DAEMON],
	&cli_help[CLI_H_CTRL],	     &cli_help[CLI_H_MIGKEY_FILE], &cli_help[CLI_H_MIGKEY_PWD],
	&cli_help[CLI_H_LOG],	     &cli_help[CLI_H_KEY_FILE],	   &cli_help[CLI_H_KEY_PWD],
	&cli_help[CLI_H_PID],	     &cli_help[CLI_H_TPMSTATE],	   &cli_help[CLI_H_RUNAS],
	&cli_help_vtpm_proxy,	     &cli_help[CLI_H_LOCALITY],	   &cli_help[CLI_H_FLAGS],
	&cli_help[CLI_H_MIGRATION],  &cli_help[CLI_H_TPM2],	   &cli_help[CLI_H_SECCOMP],
	&cli_help[CLI_H_PRINT_CAPS], &cli_help[CLI_H_PRINT_STATES], &cli_help[CLI_H_HELP],
	NULL,
};

static const struct cli_help_entry *const cli_cuse_order[] = {
	&cli_help_cuse_name,	     &cli_help_cuse_maj,	   &cli_help_cuse_min,
	&cli_help[CLI_H_KEY_FILE],   &cli_help[CLI_H_KEY_PWD],	   &cli_help[CLI_H_LOCALITY],
	&cli_help[CLI_H_MIGKEY_FILE], &cli_help[CLI_H_MIGKEY_PWD], &cli_help[CLI_H_LOG],
	&cli_help[CLI_H_PID],	     &cli_help[CLI_H_TPMSTATE],	   &cli_help[CLI_H_FLAGS],
	&cli_help_cuse_runas,	     &cli_help[CLI_H_TPM2],	   &cli_help[CLI_H_SECCOMP],
	&cli_help[CLI_H_MIGRATION],  &cli_help[CLI_H_PRINT_CAPS], &cli_help[CLI_H_PRINT_STATES],
	&cli_help_version,	     &cli_help[CLI_H_HELP],	   NULL,
};

void cli_usage(FILE *out, const char *prog, enum cfg_iface iface)
{
	const char *name = iface == IFACE_CHARDEV ? "chardev" : iface == IFACE_CUSE ? "cuse" : "socket";

	const struct cli_help_entry *const *order = iface == IFACE_CHARDEV ? cli_chardev_order
						    : iface == IFACE_CUSE  ? cli_cuse_order
									   : cli_socket_order;

	fprintf(out, "Usage: %s %s [options]\n\n", prog, name);
	fprintf(out, "The following options are supported:\n\n");
	for (size_t i = 0; order[i]; i++) {
		const struct cli_help_entry *e = order[i];
		const char *p = e->text;
		size_t col = 0;

		/* Short syntax shares the line with the text; a long one stands
		 * alone with the text below it, aligned at the same ':'. */
		if (strlen(e->syntax) <= 17)
			fprintf(out, "%-17s: ", e->syntax);
		else
			fprintf(out, "%s\n%17s: ", e->syntax, "");
		/* word-wrap the text so that no line exceeds 79 columns */
		while (*p) {
			size_t wlen = strcspn(p, " ");

			if (col && col + 1 + wlen > CLI_HELP_TEXT_WIDTH) {
				fprintf(out, "\n%19s", "");
				col = 0;
			} else if (col) {
				fputc(' ', out);
				col++;
			}
			fprintf(out, "%.*s", (int)wlen, p);
			col += wlen;
			p += wlen;
			p += strspn(p, " ");
		}
		fputc('\n', out);
	}
	fprintf(out, "\n");
}

int cli_toplevel(int argc, char **argv, FILE *out, FILE *err, enum cfg_iface *iface,
		 int *exit_code)
{
	const char *prog = argc > 0 && argv[0] ? argv[0] : "swtpm";
	const char *arg;

	if (argc < 2) {
		fprintf(err, "Missing TPM interface type.\n");
		*exit_code = 1;
		return 1;
	}
	arg = argv[1];
	if (!strcmp(arg, "socket")) {
		*iface = IFACE_SOCKET;
		return 0;
	}
	if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
		cli_overview(out, prog);
		*exit_code = 0;
		return 1;
	}
	if (!strcmp(arg, "-v") || !strcmp(arg, "--version")) {
		fprintf(out, CLI_VERSION_LINE);
		*exit_code = 0;
		return 1;
	}
	if (!strcmp(arg, "chardev")) {
		*iface = IFACE_CHARDEV;
		return 0;
	}
	if (!strcmp(arg, "cuse")) {
		*iface = IFACE_CUSE;
		return 0;
	}
	fprintf(err, "Unsupported TPM interface type '%s'.\n", arg);
	cli_overview(err, prog);
	*exit_code = 1;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* getopt diagnostics                                                        */

/* getopt runs with opterr = 0 so that its complaints can go to `err` rather
 * than the process's stderr; this rebuilds glibc's wording from optopt and
 * the argument that failed. */
static void cli_getopt_error(FILE *err, int argc, char **argv, const char *shortopts,
			     const struct option *longopts)
{
	const char *prog = argv[0];
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	const struct option *lo = NULL;
	bool is_long = strncmp(arg, "--", 2) == 0;

	if (optopt != 0) {
		for (const struct option *o = longopts; o->name; o++)
			if (o->val == optopt)
				lo = o;
		/* A short option's argument can only be missing at the very end
		 * of argv, so argv[optind - 1] is then the failing element and
		 * tells "-p" and "--port" apart. Anything that is no option's
		 * value at all was an unknown short option. */
		if (!lo || (!is_long && optopt < 256)) {
			const char *p = strchr(shortopts, optopt);

			if (lo && p && p[1] == ':')
				fprintf(err, "%s: option requires an argument -- '%c'\n", prog,
					optopt);
			else
				fprintf(err, "%s: invalid option -- '%c'\n", prog, optopt);
			return;
		}
		if (lo->has_arg == no_argument)
			fprintf(err, "%s: option '--%s' doesn't allow an argument\n", prog,
				lo->name);
		else
			fprintf(err, "%s: option '--%s' requires an argument\n", prog, lo->name);
		return;
	}

	/* optopt 0: an unknown or ambiguous long option. */
	if (is_long) {
		const char *name = arg + 2;
		size_t len = strcspn(name, "=");
		unsigned matches = 0;

		for (const struct option *o = longopts; o->name; o++)
			if (!strncmp(o->name, name, len))
				matches++;
		if (matches > 1) {
			/* glibc quotes the argument including any "=value" */
			fprintf(err, "%s: option '%s' is ambiguous; possibilities:", prog, arg);
			for (const struct option *o = longopts; o->name; o++)
				if (!strncmp(o->name, name, len))
					fprintf(err, " '--%s'", o->name);
			fprintf(err, "\n");
			return;
		}
	}
	fprintf(err, "%s: unrecognized option '%s'\n", prog, arg);
}

/* ------------------------------------------------------------------------ */
/* sub-option handling                                                       */

static int cli_subopts(FILE *err, const char *what, const char *str,
		       const struct opts_desc *desc, struct opts_result *res)
{
	char msg[OPTS_ERRLEN];
	int ret = opts_parse(str, desc, res, msg, sizeof(msg));

	if (ret < 0)
		fprintf(err, "Error parsing %s options: %s\n", what, msg);
	return ret;
}

/* strdup that reports its failure, so callers only propagate the error. */
static int cli_strdup(FILE *err, char **dst, const char *src)
{
	free(*dst);
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	if (!*dst) {
		fprintf(err, "Out of memory\n");
		return -ENOMEM;
	}
	return 0;
}

static bool cli_fd_is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Validate a TCP bind address the way it will be used later: IPv6 if it
 * contains a ':', and a link-local IPv6 address needs a known interface. */
static int cli_check_bindaddr(FILE *err, const char *addr, const char *ifname)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (!strchr(addr, ':')) {
		if (inet_pton(AF_INET, addr, buf) != 1)
			goto bad;
		return 0;
	}
	if (inet_pton(AF_INET6, addr, buf) != 1)
		goto bad;
	if (IN6_IS_ADDR_LINKLOCAL((struct in6_addr *)buf)) {
		if (!ifname) {
			fprintf(err, "Missing interface name for link local address\n");
			return -EINVAL;
		}
		if (if_nametoindex(ifname) == 0) {
			fprintf(err, "Unknown network interface '%s': %s\n", ifname,
				strerror(errno));
			return -ENODEV;
		}
	}
	return 0;
bad:
	fprintf(err, "Could not parse the bind address '%s'\n", addr);
	return -EINVAL;
}

/* mode/uid/gid of a Unix socket file. */
static void cli_sock_perms(struct cfg_sock *s, const struct opts_result *res)
{
	s->mode = opts_get_mode(res, "mode", 0770);
	s->uid_set = opts_has(res, "uid");
	s->gid_set = opts_has(res, "gid");
	if (s->uid_set)
		s->uid = opts_get_uid(res, "uid", 0);
	if (s->gid_set)
		s->gid = opts_get_gid(res, "gid", 0);
}

static int cli_sock_tcp_addr(FILE *err, struct cfg_sock *s, const struct opts_result *res)
{
	const char *bindaddr = opts_get_string(res, "bindaddr", NULL);
	const char *ifname = opts_get_string(res, "ifname", NULL);
	int ret;

	ret = cli_check_bindaddr(err, bindaddr ? bindaddr : "127.0.0.1", ifname);
	if (ret < 0)
		return ret;
	ret = cli_strdup(err, &s->bindaddr, bindaddr);
	if (ret == 0)
		ret = cli_strdup(err, &s->ifname, ifname);
	return ret;
}

static int cli_handle_ctrl(FILE *err, const char *str, struct cfg_sock *s)
{
	struct opts_result res;
	const char *type;
	int fd, ret;

	ret = cli_subopts(err, "ctrl", str, cli_ctrl_desc, &res);
	if (ret < 0)
		return ret;

	s->terminate = opts_get_bool(&res, "terminate", false);
	type = opts_get_string(&res, "type", NULL);
	fd = opts_get_int(&res, "fd", -1);
	if (!type) {
		fprintf(err, "Missing type parameter for control channel\n");
		ret = -EINVAL;
		goto out;
	}

	if (!strcmp(type, "unixio")) {
		int clientfd = opts_get_int(&res, "clientfd", -1);
		const char *path = opts_get_string(&res, "path", NULL);

		s->type = SOCK_UNIXIO;
		/* Only the winner of fd > clientfd > path is recorded, so users of
		 * the config never have to repeat the precedence rule. */
		if (fd >= 0) {
			if (!cli_fd_is_socket(fd)) {
				fprintf(err, "Bad filedescriptor %d for UnixIO control channel\n", fd);
				ret = -EBADF;
				goto out;
			}
			s->fd = fd;
		} else if (clientfd >= 0) {
			if (!cli_fd_is_socket(clientfd)) {
				fprintf(err, "Bad filedescriptor %d for UnixIO control channel\n",
					clientfd);
				ret = -EBADF;
				goto out;
			}
			s->clientfd = clientfd;
		} else if (path) {
			ret = cli_strdup(err, &s->path, path);
			if (ret < 0)
				goto out;
			cli_sock_perms(s, &res);
		} else {
			fprintf(err, "Missing path and fd options for UnixIO control channel\n");
			ret = -EINVAL;
			goto out;
		}
	} else if (!strcmp(type, "tcp")) {
		int port = opts_get_int(&res, "port", -1);

		s->type = SOCK_TCP;
		if (fd >= 0) {
			if (!cli_fd_is_socket(fd)) {
				fprintf(err, "Bad filedescriptor %d for TCP control channel\n", fd);
				ret = -EBADF;
				goto out;
			}
			s->fd = fd;
		} else if (port >= 0) {
			if (port >= 65536) {
				fprintf(err, "TCP control channel port outside valid range\n");
				ret = -ERANGE;
				goto out;
			}
			s->port = port;
			ret = cli_sock_tcp_addr(err, s, &res);
			if (ret < 0)
				goto out;
		} else {
			fprintf(err, "Missing port and fd options for TCP control channel\n");
			ret = -EINVAL;
			goto out;
		}
	} else {
		fprintf(err, "Unsupport control channel type: %s\n", type);
		ret = -EINVAL;
		goto out;
	}
	ret = 0;
out:
	opts_free(&res);
	return ret;
}

static int cli_handle_server(FILE *err, const char *str, struct cfg_sock *s)
{
	struct opts_result res;
	const char *type;
	int fd, ret;

	ret = cli_subopts(err, "server", str, cli_server_desc, &res);
	if (ret < 0)
		return ret;

	type = opts_get_string(&res, "type", "tcp");
	fd = opts_get_int(&res, "fd", -1);
	s->disconnect = opts_get_bool(&res, "disconnect", false);

	if (!strcmp(type, "tcp")) {
		int port = opts_get_int(&res, "port", -1);

		s->type = SOCK_TCP;
		if (fd >= 0) {
			if (!cli_fd_is_socket(fd)) {
				fprintf(err, "Bad filedescriptor %d for TCP socket\n", fd);
				ret = -EBADF;
				goto out;
			}
			s->fd = fd;
		} else {
			if (port < 0) {
				/* -p stores its port here too, so this covers both. */
				const char *env = getenv("TPM_PORT");

				if (!env || sscanf(env, "%d", &port) != 1 || port < 0) {
					fprintf(err, "No valid port number provided for TCP socket.\n");
					ret = -EINVAL;
					goto out;
				}
			}
			if (port >= 65536) {
				fprintf(err, "TCP socket port outside valid range\n");
				ret = -ERANGE;
				goto out;
			}
			s->port = port;
			ret = cli_sock_tcp_addr(err, s, &res);
			if (ret < 0)
				goto out;
		}
	} else if (!strcmp(type, "unixio")) {
		const char *path = opts_get_string(&res, "path", NULL);

		s->type = SOCK_UNIXIO;
		if (fd >= 0) {
			if (!cli_fd_is_socket(fd)) {
				fprintf(err, "Bad filedescriptor %d for UnixIO socket\n", fd);
				ret = -EBADF;
				goto out;
			}
			s->fd = fd;
		} else if (path) {
			ret = cli_strdup(err, &s->path, path);
			if (ret < 0)
				goto out;
			cli_sock_perms(s, &res);
		} else {
			fprintf(err, "Missing path and file descriptor option for UnixIO socket\n");
			ret = -EINVAL;
			goto out;
		}
	} else {
		fprintf(err, "Unsupport socket type: %s\n", type);
		ret = -EINVAL;
		goto out;
	}
	ret = 0;
out:
	opts_free(&res);
	return ret;
}

static int cli_handle_tpmstate(FILE *err, const char *str, struct vtpm_config *cfg)
{
	struct opts_result res;
	const char *dir, *uri;
	int ret;

	ret = cli_subopts(err, "tpmstate", str, cli_tpmstate_desc, &res);
	if (ret < 0)
		return ret;
	dir = opts_get_string(&res, "dir", NULL);
	uri = opts_get_string(&res, "backend-uri", NULL);
	if (dir) {
		size_t len = strlen("dir://") + strlen(dir) + 1;

		free(cfg->state_uri);
		cfg->state_uri = malloc(len);
		if (!cfg->state_uri) {
			fprintf(err, "Out of memory\n");
			ret = -ENOMEM;
			goto out;
		}
		snprintf(cfg->state_uri, len, "dir://%s", dir);
	} else if (uri) {
		/* swtpm finds out at the first storage access; say it now. */
		if (!((strncmp(uri, "dir://", 6) == 0 && uri[6]) ||
		      (strncmp(uri, "file://", 7) == 0 && uri[7]))) {
			fprintf(err, "Error: unsupported backend URI '%s' (only dir://PATH and "
				     "file://PATH are supported).\n", uri);
			ret = -EINVAL;
			goto out;
		}
		ret = cli_strdup(err, &cfg->state_uri, uri);
		if (ret < 0)
			goto out;
	} else {
		fprintf(err, "The dir or backend-uri parameters is required for the tpmstate option.\n");
		ret = -EINVAL;
		goto out;
	}
	cfg->state_mode = opts_get_mode(&res, "mode", 0640);
	cfg->state_mode_set = opts_has(&res, "mode");
	/* swtpm 0.10: locking is on unless lock=false (we lock file:// too) */
	cfg->state_nolock = opts_has(&res, "lock") && !opts_get_bool(&res, "lock", true);
out:
	opts_free(&res);
	return ret;
}

static int cli_handle_log(FILE *err, const char *str, struct cfg_log *log)
{
	struct opts_result res;
	const char *file;
	int ret;

	ret = cli_subopts(err, "logging", str, cli_log_desc, &res);
	if (ret < 0)
		return ret;
	log->given = true;
	file = opts_get_string(&res, "file", NULL);
	ret = cli_strdup(err, &log->file, file);
	if (ret < 0)
		goto out;
	/* file= wins over fd= */
	log->fd = file ? -1 : opts_get_int(&res, "fd", -1);
	if (log->fd < 0)
		log->fd = -1;
	/* level 0 would silence everything; swtpm makes it 1. */
	log->level = opts_get_uint(&res, "level", 1);
	if (log->level == 0)
		log->level = 1;
	ret = cli_strdup(err, &log->prefix, opts_get_string(&res, "prefix", NULL));
	if (ret < 0)
		goto out;
	log->truncate = opts_get_bool(&res, "truncate", false);
out:
	opts_free(&res);
	return ret;
}

static int cli_handle_pid(FILE *err, const char *str, struct vtpm_config *cfg)
{
	struct opts_result res;
	const char *file;
	int fd, ret;

	ret = cli_subopts(err, "pid", str, cli_pid_desc, &res);
	if (ret < 0)
		return ret;
	file = opts_get_string(&res, "file", NULL);
	fd = opts_get_int(&res, "fd", -1);
	if (file) {
		ret = cli_strdup(err, &cfg->pid_file, file);
		cfg->pid_fd = -1;
	} else if (fd >= 0) {
		struct stat st;

		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			fprintf(err, "Bad filedescriptor %d for pid file\n", fd);
			ret = -EBADF;
			goto out;
		}
		cfg->pid_fd = fd;
	} else {
		fprintf(err, "The file or fd parameter is required for the pid option.\n");
		ret = -EINVAL;
	}
out:
	opts_free(&res);
	return ret;
}

static int cli_handle_locality(FILE *err, const char *str, struct vtpm_config *cfg)
{
	struct opts_result res;
	int ret;

	ret = cli_subopts(err, "locality", str, cli_locality_desc, &res);
	if (ret < 0)
		return ret;
	cfg->reject_locality4 = opts_get_bool(&res, "reject-locality-4", false);
	cfg->allow_set_locality = opts_get_bool(&res, "allow-set-locality", false);
	opts_free(&res);
	return 0;
}

static int cli_handle_flags(FILE *err, const char *str, struct vtpm_config *cfg)
{
	struct opts_result res;
	int ret;

	ret = cli_subopts(err, "flags", str, cli_flags_desc, &res);
	if (ret < 0)
		return ret;
	cfg->not_need_init = opts_get_bool(&res, "not-need-init", false);
	cfg->disable_auto_shutdown = opts_get_bool(&res, "disable-auto-shutdown", false);
	cfg->startup_set = true;
	if (opts_get_bool(&res, "startup-clear", false))
		cfg->startup = STARTUP_CLEAR;
	else if (opts_get_bool(&res, "startup-state", false))
		cfg->startup = STARTUP_STATE;
	else if (opts_get_bool(&res, "startup-deactivated", false))
		cfg->startup = STARTUP_DEACTIVATED;
	else if (opts_get_bool(&res, "startup-none", false))
		cfg->startup = STARTUP_NONE;
	else {
		cfg->startup = STARTUP_NONE;
		/* only an explicit startup-* overrides the vTPM proxy's type */
		cfg->startup_set = false;
	}
	/* A start-up command can only be sent to a TPM that is running. */
	if (cfg->startup != STARTUP_NONE)
		cfg->not_need_init = true;
	opts_free(&res);
	return 0;
}

static int cli_handle_migration(FILE *err, const char *str, struct vtpm_config *cfg)
{
	struct opts_result res;
	int ret;

	ret = cli_subopts(err, "migration", str, cli_migration_desc, &res);
	if (ret < 0)
		return ret;
	cfg->migration_incoming = opts_get_bool(&res, "incoming", false);
	cfg->migration_release_lock_outgoing =
		opts_get_bool(&res, "release-lock-outgoing", false);
	opts_free(&res);
	return 0;
}

static int cli_handle_seccomp(FILE *err, const char *str, struct vtpm_config *cfg)
{
	struct opts_result res;
	const char *action;
	int ret;

	ret = cli_subopts(err, "seccomp", str, cli_seccomp_desc, &res);
	if (ret < 0)
		return ret;
	action = opts_get_string(&res, "action", "kill");
	if (!strcmp(action, "kill")) {
		cfg->seccomp = SECCOMP_KILL;
	} else if (!strcmp(action, "log")) {
		cfg->seccomp = SECCOMP_LOG;
	} else if (!strcmp(action, "none")) {
		cfg->seccomp = SECCOMP_NONE;
	} else {
		fprintf(err, "Unsupported seccomp log action %s\n", action);
		ret = -EINVAL;
	}
	opts_free(&res);
	return ret;
}

/* The user must exist now; the switch itself happens at start-up. */
static int cli_check_runas(FILE *err, const char *user)
{
	if (user[0] && user[strspn(user, "0123456789")] == '\0') {
		unsigned long long uid;

		errno = 0;
		uid = strtoull(user, NULL, 10);
		if (errno == ERANGE || uid > UINT_MAX) {
			fprintf(err, "Error: uid %s outside valid range.\n", user);
			return -ERANGE;
		}
		return 0;
	}
	if (!getpwnam(user)) {
		fprintf(err, "Error: User '%s' does not exist.\n", user);
		return -ENOENT;
	}
	return 0;
}

/* -p: swtpm accepts anything strtoul(base 0) takes that fits an unsigned int. */
static int cli_parse_port(FILE *err, const char *arg, unsigned int *port)
{
	unsigned long val;
	char *end;

	errno = 0;
	val = strtoul(arg, &end, 0);
	if (end == arg || *end != '\0' || errno || val > UINT_MAX || strchr(arg, '-')) {
		fprintf(err, "Cannot parse socket port number '%s'.\n", arg);
		return -EINVAL;
	}
	if (val >= 65536) {
		fprintf(err, "Port is outside valid range.\n");
		return -ERANGE;
	}
	*port = (unsigned int)val;
	return 0;
}

/* -f: a connected socket or stream; the 0..2 check comes later (start-up order).
 * chardev words the parse error differently. */
static int cli_parse_datafd(FILE *err, const char *arg, bool chardev, int *fd)
{
	struct stat st;
	unsigned long val;
	char *end;

	errno = 0;
	val = strtoul(arg, &end, 10);
	if (end == arg || *end != '\0' || errno || val > INT_MAX || strchr(arg, '-')) {
		if (chardev)
			fprintf(err, "Cannot parse character device file descriptor.\n");
		else
			fprintf(err, "Cannot parse file descriptor '%s'.\n", arg);
		return -EINVAL;
	}
	if (fstat((int)val, &st) != 0) {
		fprintf(err, "Cannot stat file descriptor: %s\n", strerror(errno));
		return -errno;
	}
	/* Anonymous pipes and sockets are fine; things that are plainly not a
	 * byte stream to a peer are not. */
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode) ||
	    S_ISLNK(st.st_mode)) {
		fprintf(err, "Given file descriptor type is not supported.\n");
		return -EINVAL;
	}
	*fd = (int)val;
	return 0;
}

/* Validate the recorded options in swtpm's start-up order (cli.md §14). */
static int cli_apply(FILE *err, const struct cli_raw *raw, struct vtpm_config *cfg)
{
	bool chardev = cfg->iface == IFACE_CHARDEV;
	int ret;

	if (raw->runas) {
		ret = cli_check_runas(err, raw->runas);
		if (ret == 0)
			ret = cli_strdup(err, &cfg->runas, raw->runas);
		if (ret < 0)
			return ret;
	}
	if (raw->log) {
		ret = cli_handle_log(err, raw->log, &cfg->log);
		if (ret < 0)
			return ret;
	}
	if (chardev) {
		/* chardev takes --locality this early because the proxy, set up
		 * at this point of swtpm's start-up, adds allow-set-locality. */
		if (raw->locality) {
			ret = cli_handle_locality(err, raw->locality, cfg);
			if (ret < 0)
				return ret;
		}
		if (cfg->vtpm_proxy && (cfg->data_fd >= 0 || cfg->chardev_path)) {
			fprintf(err, "Cannot use vTPM proxy with a provided device.\n");
			return -EINVAL;
		}
	} else if (cfg->data_fd >= 0 && cfg->data_fd <= 2) {
		fprintf(err, "Error: Cannot accept file descriptors with values 0, 1, or 2\n");
		return -EBADF;
	}
	/* --print-capabilities does not look at anything below. */
	if (cfg->print_capabilities)
		return 0;

	if (chardev) {
		/* chardev answers --print-states before it looks for its device */
		if (cfg->print_states) {
			if (!raw->tpmstate) {
				fprintf(err, "Error: --tpmstate option is required for "
					     "--print-states\n");
				return -EINVAL;
			}
			return cli_handle_tpmstate(err, raw->tpmstate, cfg);
		}
		if (cfg->data_fd < 0 && !cfg->chardev_path && !cfg->vtpm_proxy) {
			fprintf(err, "Error: Missing character device or file descriptor\n");
			return -EINVAL;
		}
		if (cfg->data_fd >= 0 && cfg->data_fd <= 2) {
			fprintf(err, "Error: Cannot accept file descriptors with values 0, 1, "
				     "or 2\n");
			return -EBADF;
		}
	}

	if (raw->ctrl) {
		ret = cli_handle_ctrl(err, raw->ctrl, &cfg->ctrl);
		if (ret < 0)
			return ret;
	}
	if (raw->server) {
		ret = cli_handle_server(err, raw->server, &cfg->server);
		if (ret < 0)
			return ret;
	}
	if (cfg->print_states) {
		/* TPM_PATH is deliberately not consulted for --print-states. */
		if (!raw->tpmstate) {
			fprintf(err, "Error: --tpmstate option is required for --print-states\n");
			return -EINVAL;
		}
		return cli_handle_tpmstate(err, raw->tpmstate, cfg);
	}

	/* Keys are only recorded here: reading them consumes fds and may remove
	 * files, which belongs to start-up (instance_load_keys), not to parsing. */
	ret = cli_strdup(err, &cfg->keys.key, raw->key);
	if (ret == 0)
		ret = cli_strdup(err, &cfg->keys.migration_key, raw->migration_key);
	if (ret == 0 && raw->pid)
		ret = cli_handle_pid(err, raw->pid, cfg);
	if (ret == 0 && raw->locality && !chardev)
		ret = cli_handle_locality(err, raw->locality, cfg);
	if (ret == 0 && raw->tpmstate)
		ret = cli_handle_tpmstate(err, raw->tpmstate, cfg);
	if (ret == 0 && raw->seccomp)
		ret = cli_handle_seccomp(err, raw->seccomp, cfg);
	if (ret == 0 && raw->flags)
		ret = cli_handle_flags(err, raw->flags, cfg);
	/* swtpm 0.8 checks --migration right after --flags. */
	if (ret == 0 && raw->migration)
		ret = cli_handle_migration(err, raw->migration, cfg);
	return ret;
}

/* The options every interface has, recorded for cli_apply*; false if `c` is
 * not one of them. */
static bool cli_common_opt(int c, struct cli_raw *raw, struct vtpm_config *cfg)
{
	switch (c) {
	case CLI_OPT_TPMSTATE:
		raw->tpmstate = optarg;
		break;
	case CLI_OPT_TPM2:
		cfg->tpm2 = true;
		break;
	case CLI_OPT_LOG:
		raw->log = optarg;
		break;
	case CLI_OPT_LOCALITY:
		raw->locality = optarg;
		break;
	case CLI_OPT_KEY:
		raw->key = optarg;
		break;
	case CLI_OPT_MIGRATION_KEY:
		raw->migration_key = optarg;
		break;
	case CLI_OPT_PID:
		raw->pid = optarg;
		break;
	case CLI_OPT_FLAGS:
		raw->flags = optarg;
		break;
	case CLI_OPT_SECCOMP:
		raw->seccomp = optarg;
		break;
	case CLI_OPT_MIGRATION:
		raw->migration = optarg;
		break;
	case CLI_OPT_PRINT_CAPS:
		cfg->print_capabilities = true;
		break;
	case CLI_OPT_PRINT_STATES:
		cfg->print_states = true;
		break;
	default:
		return false;
	}
	return true;
}

/* -M / -m: "%u" into 0..65535. swtpm says "major" for both; so do we. */
static int cli_cuse_devnum(FILE *err, const char *arg, unsigned *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(arg, &end, 10);
	if (end == arg || errno == ERANGE || strchr(arg, '-')) {
		fprintf(err, "Could not parse major number\n");
		return -EINVAL;
	}
	if (n > 65535) {
		fprintf(err, "Major number outside valid range [0 - 65535]\n");
		return -ERANGE;
	}
	*out = (unsigned)n;
	return 0;
}

/* Exit statuses of swtpm cuse's start-up errors (cli.md §4.2): swtpm returns
 * small negative numbers from main. */
#define CLI_CUSE_EXIT_GENERIC 255 /* -1 */
#define CLI_CUSE_EXIT_NO_NAME 254 /* -2 */
#define CLI_CUSE_EXIT_OPTION 253  /* -3 */
#define CLI_CUSE_EXIT_RUNAS 251	  /* -5 */

/* The checks in swtpm cuse's order; returns 0 or the exit status. */
static int cli_apply_cuse(FILE *err, const struct cli_raw *raw, struct vtpm_config *cfg)
{
	int ret;

	if (raw->runas) {
		if (cli_check_runas(err, raw->runas) < 0 || cli_strdup(err, &cfg->runas, raw->runas) < 0)
			return CLI_CUSE_EXIT_RUNAS;
	}
	if (raw->log && cli_handle_log(err, raw->log, &cfg->log) < 0)
		return 1;
	if (cfg->print_capabilities)
		return 0;
	if (cfg->print_states) {
		if (!raw->tpmstate) {
			fprintf(err, "Error: --tpmstate option is required for --print-states\n");
			return 1;
		}
		return cli_handle_tpmstate(err, raw->tpmstate, cfg) < 0 ? 1 : 0;
	}
	if (!cfg->cuse_name) {
		fprintf(err, "Error: device name missing\n");
		return CLI_CUSE_EXIT_NO_NAME;
	}
	ret = cli_strdup(err, &cfg->keys.key, raw->key);
	if (ret == 0)
		ret = cli_strdup(err, &cfg->keys.migration_key, raw->migration_key);
	if (ret == 0 && raw->pid)
		ret = cli_handle_pid(err, raw->pid, cfg);
	if (ret == 0 && raw->tpmstate)
		ret = cli_handle_tpmstate(err, raw->tpmstate, cfg);
	if (ret == 0 && raw->seccomp)
		ret = cli_handle_seccomp(err, raw->seccomp, cfg);
	if (ret == 0 && raw->locality)
		ret = cli_handle_locality(err, raw->locality, cfg);
	if (ret == 0 && raw->flags)
		ret = cli_handle_flags(err, raw->flags, cfg);
	if (ret == 0 && raw->migration)
		ret = cli_handle_migration(err, raw->migration, cfg);
	if (ret < 0)
		return CLI_CUSE_EXIT_OPTION;
	/* CUSE creates the state directory at start, so it must know it now. */
	if (!cfg->state_uri && !getenv("TPM_PATH")) {
		fprintf(err, "Error: No TPM state directory is defined; TPM_PATH is not set\n");
		return CLI_CUSE_EXIT_GENERIC;
	}
	return 0;
}

static int cli_parse_cuse(int argc, char **argv, struct vtpm_config *cfg, FILE *out, FILE *err,
			  int *exit_code)
{
	struct cli_raw raw = { 0 };
	int c, ret;

	cfg->iface = IFACE_CUSE;
	*exit_code = 0;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, cli_cuse_shortopts, cli_cuse_longopts, NULL)) != -1) {
		switch (c) {
		case 'M':
			if (cli_cuse_devnum(err, optarg, &cfg->cuse_major) < 0) {
				ret = CLI_CUSE_EXIT_GENERIC;
				goto fail;
			}
			break;
		case 'm':
			if (cli_cuse_devnum(err, optarg, &cfg->cuse_minor) < 0) {
				ret = CLI_CUSE_EXIT_GENERIC;
				goto fail;
			}
			break;
		case 'n':
			/* only the first -n counts */
			if (!cfg->cuse_name && cli_strdup(err, &cfg->cuse_name, optarg) < 0) {
				ret = 1;
				goto fail;
			}
			break;
		case 'r':
			raw.runas = optarg;
			break;
		case 'h':
			cli_usage(out, program_invocation_name, IFACE_CUSE);
			ret = 0;
			goto fail;
		case 'v':
			fprintf(out, "TPM emulator CUSE interface version " SWTPM_COMPAT_VERSION
				     " (vtpmd " VTPM_VERSION ")\n");
			ret = 0;
			goto fail;
		default:
			/* swtpm cuse reports an unknown option and carries on */
			if (!cli_common_opt(c, &raw, cfg))
				cli_getopt_error(err, argc, argv, cli_cuse_shortopts,
						 cli_cuse_longopts);
			break;
		}
	}
	if (optind < argc) {
		fprintf(err, "Unknown parameter '%s'\n", argv[optind]);
		ret = 1;
		goto fail;
	}
	ret = cli_apply_cuse(err, &raw, cfg);
	if (ret != 0)
		goto fail;
	return 0;
fail:
	fflush(err);
	config_free(cfg);
	*exit_code = ret;
	return 1;
}

int cli_parse(int argc, char **argv, struct vtpm_config *cfg, FILE *out, FILE *err,
	      int *exit_code)
{
	struct cli_raw raw = { 0 };
	char portbuf[16];
	unsigned int port;
	int c, ret = 0;
	bool chardev = argc > 0 && argv[0] && !strcmp(argv[0], "chardev");
	const char *shortopts = chardev ? cli_chardev_shortopts : cli_socket_shortopts;
	const struct option *longopts = chardev ? cli_chardev_longopts : cli_socket_longopts;
	bool have_dev = false; /* chardev: the first -c/-f counts */

	config_init(cfg);
	if (argc > 0 && argv[0] && !strcmp(argv[0], "cuse"))
		return cli_parse_cuse(argc, argv, cfg, out, err, exit_code);
	cfg->iface = chardev ? IFACE_CHARDEV : IFACE_SOCKET;
	*exit_code = 0;

	/* optind = 0 makes glibc forget everything from an earlier scan
	 * (including a half-consumed "-xyz" cluster); opterr = 0 because
	 * diagnostics must go to `err`, not to the process's stderr. */
	optind = 0;
	opterr = 0;
	/* Options that only one interface has never come out of getopt for the
	 * other, so one switch serves both. */
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			ret = cli_parse_port(err, optarg, &port);
			if (ret < 0)
				goto fail;
			snprintf(portbuf, sizeof(portbuf), "%u", port);
			if (setenv("TPM_PORT", portbuf, 1) != 0) {
				fprintf(err, "Could not set TPM_PORT: %s\n", strerror(errno));
				goto fail;
			}
			/* -p is shorthand for this --server; whichever comes last wins. */
			raw.server = "type=tcp,disconnect";
			break;
		case 'c':
			if (have_dev)
				break;
			have_dev = true;
			ret = cli_strdup(err, &cfg->chardev_path, optarg);
			if (ret < 0)
				goto fail;
			cfg->terminate = true;
			break;
		case 'f':
			if (chardev && have_dev)
				break;
			have_dev = true;
			ret = cli_parse_datafd(err, optarg, chardev, &cfg->data_fd);
			if (ret < 0)
				goto fail;
			/* a passed-in connection has no listener to fall back to */
			cfg->terminate = true;
			break;
		case 't':
			cfg->terminate = true;
			break;
		case 'd':
			cfg->daemon = true;
			break;
		case 'r':
			raw.runas = optarg;
			break;
		case 'h':
			cli_usage(out, program_invocation_name, cfg->iface);
			config_free(cfg);
			*exit_code = 0;
			return 1;
		case CLI_OPT_SERVER:
			raw.server = optarg;
			break;
		case CLI_OPT_CTRL:
			raw.ctrl = optarg;
			break;
		case CLI_OPT_VTPM_PROXY:
			cfg->vtpm_proxy = true;
			break;
		default:
			if (cli_common_opt(c, &raw, cfg))
				break;
			cli_getopt_error(err, argc, argv, shortopts, longopts);
			cli_usage(err, program_invocation_name, cfg->iface);
			goto fail;
		}
	}

	if (optind < argc) {
		fprintf(err, "Unknown parameter '%s'\n", argv[optind]);
		goto fail;
	}

	ret = cli_apply(err, &raw, cfg);
	if (ret < 0)
		goto fail;
	return 0;

fail:
	fflush(err);
	config_free(cfg);
	*exit_code = 1;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* --print-capabilities                                                      */

static void cli_feature(FILE *f, bool *first, const char *name)
{
	fprintf(f, "%s\"%s\"", *first ? "" : ", ", name);
	*first = false;
}

/* Append "rsa-keysize-N" for each N of "RSAKeySizes":[...] in libtpms' info. */
static void cli_rsa_keysizes(FILE *f, bool *first)
{
	static const char key[] = "\"RSAKeySizes\":[";
	char *info = TPMLIB_GetInfo(TPMLIB_INFO_TPMFEATURES);
	const char *p;

	if (!info)
		return;
	p = strstr(info, key);
	if (p) {
		p += strlen(key);
		while (*p && *p != ']') {
			char name[40];
			unsigned long n;
			char *end;

			n = strtoul(p, &end, 10);
			if (end == p)
				break;
			snprintf(name, sizeof(name), "rsa-keysize-%lu", n);
			cli_feature(f, first, name);
			p = end;
			if (*p == ',')
				p++;
		}
	}
	free(info);
}

int cli_print_capabilities(FILE *out, const struct vtpm_config *cfg)
{
	/* In swtpm's order; `sock` ones only exist for the socket and chardev
	 * front ends (CUSE has no framing header, startup flag or ctrl socket). */
	static const struct {
		const char *name;
		bool sock;
	} feats[] = {
		{ "tpm-send-command-header", true },
		{ "flags-opt-startup", true },
		{ "flags-opt-disable-auto-shutdown", false },
		{ "ctrl-opt-terminate", true },
		{ "cmdarg-seccomp", false },
		{ "cmdarg-key-fd", false },
		{ "cmdarg-pwd-fd", false },
		{ "cmdarg-print-states", false },
		{ "cmdarg-migration", false },
		{ "nvram-backend-dir", false },
		{ "nvram-backend-file", false },
		{ "tpmstate-opt-lock", false },
	};
	TPMLIB_TPMVersion want = cfg->tpm2 ? TPMLIB_TPM_VERSION_2 : TPMLIB_TPM_VERSION_1_2;
	char *buf = NULL;
	size_t len = 0;
	bool first = true;
	FILE *f;
	int ret = 0;

	/* Build the line in memory so that a failure prints nothing at all. */
	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;

	fprintf(f, "{ \"type\": \"swtpm\", \"features\": [ ");
	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_1_2) == TPM_SUCCESS)
		cli_feature(f, &first, "tpm-1.2");
	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) == TPM_SUCCESS)
		cli_feature(f, &first, "tpm-2.0");
	/* GetInfo answers for the selected version, and the caller goes on
	 * with the version it asked for. */
	if (TPMLIB_ChooseTPMVersion(want) != TPM_SUCCESS) {
		ret = -ENOTSUP;
		goto out;
	}
	for (size_t i = 0; i < sizeof(feats) / sizeof(feats[0]); i++)
		if (!feats[i].sock || cfg->iface != IFACE_CUSE)
			cli_feature(f, &first, feats[i].name);
	if (cfg->tpm2)
		cli_rsa_keysizes(f, &first);
	fprintf(f, " ], \"version\": \"%s\" }\n", SWTPM_COMPAT_VERSION);

out:
	if (fclose(f) != 0 && ret == 0)
		ret = -ENOMEM;
	if (ret == 0) {
		if (fwrite(buf, 1, len, out) != len || fflush(out) != 0)
			ret = -EIO;
	}
	free(buf);
	return ret;
}
