/* Command-line front end of `swtpm`: interface dispatch, `swtpm socket` and
 * `swtpm chardev` option parsing into struct vtpm_config, --help texts and
 * --print-capabilities. */
#ifndef VTPM_CLI_H
#define VTPM_CLI_H

#include <stdio.h>

#include "instance/config.h"

/* Look at argv[1] only (`swtpm`, `swtpm -h`, `swtpm -v`, `swtpm <iface>`).
 * Returns 1 if the process should exit now with *exit_code (messages already
 * written to out/err), 0 if *iface is set and cli_parse(argc - 1, argv + 1)
 * should follow. */
int cli_toplevel(int argc, char **argv, FILE *out, FILE *err, enum cfg_iface *iface,
		 int *exit_code);

/* Parse an interface command line; argv[0] is the interface name: "chardev"
 * selects the chardev options (cli.md §4.1), anything else socket's.
 * cfg is initialised here (config_init), so it must not hold allocations.
 * Returns 0 when cfg is ready to use, or 1 with *exit_code set when the
 * process should exit now (-h: usage on out, 0; errors: message on err, 1);
 * in that case cfg has been released again. Either way config_free(cfg) is
 * safe afterwards. Re-entrant with respect to getopt: it resets getopt's
 * state itself. Note that -p/--port sets the TPM_PORT environment variable,
 * as swtpm does. Nothing is opened or created; file descriptors given as
 * options are only checked with fstat(). chardev's -c device is only recorded
 * (cfg->chardev_path) and --vtpm-proxy only flagged: instance_run opens and
 * creates them, so a validating caller (vtpmd) touches no device. */
int cli_parse(int argc, char **argv, struct vtpm_config *cfg, FILE *out, FILE *err,
	      int *exit_code);

/* The --help text of an interface; prog is the program name as invoked. */
void cli_usage(FILE *out, const char *prog, enum cfg_iface iface);

/* The --print-capabilities JSON line (with "\n"). Briefly switches the libtpms
 * TPM version to probe it, then selects the version cfg asks for again, so it
 * must not be called while the TPM is running. 0 or -errno. */
int cli_print_capabilities(FILE *out, const struct vtpm_config *cfg);

#endif
