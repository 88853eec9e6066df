/* The `swtpm` program: pick the interface, parse its options, run the instance.
 * Everything else lives in src/instance and src/io so vtpmd can reuse it.
 * Invoked as `swtpm_cuse` it is `swtpm cuse` (swtpm's separate CUSE binary). */
#include <stdio.h>
#include <string.h>

#include "instance/cli.h"
#include "instance/config.h"
#include "instance/run.h"

static int main_run(int argc, char **argv, enum cfg_iface iface)
{
	struct vtpm_config cfg;
	int code = 0, rc;

	config_init(&cfg);
	cfg.iface = iface;
	if (cli_parse(argc, argv, &cfg, stdout, stderr, &code)) {
		config_free(&cfg);
		return code;
	}
	rc = instance_run(&cfg);
	config_free(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	const char *base = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
	enum cfg_iface iface;
	int code = 0;

	base = base ? base + 1 : argc > 0 && argv[0] ? argv[0] : "";
	if (!strcmp(base, "swtpm_cuse")) {
		/* argv[0] names the interface for the option parser */
		argv[0] = (char *)"cuse";
		return main_run(argc, argv, IFACE_CUSE);
	}
	if (cli_toplevel(argc, argv, stdout, stderr, &iface, &code))
		return code;
	return main_run(argc - 1, argv + 1, iface);
}
