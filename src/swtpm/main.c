/* The `swtpm` program: pick the interface, parse its options, run the instance.
 * Everything else lives in src/instance and src/io so vtpmd can reuse it. */
#include <stdio.h>

#include "instance/cli.h"
#include "instance/config.h"
#include "instance/run.h"

int main(int argc, char **argv)
{
	struct vtpm_config cfg;
	enum cfg_iface iface;
	int code = 0, rc;

	if (cli_toplevel(argc, argv, stdout, stderr, &iface, &code))
		return code;
	config_init(&cfg);
	cfg.iface = iface;
	if (cli_parse(argc - 1, argv + 1, &cfg, stdout, stderr, &code)) {
		config_free(&cfg);
		return code;
	}
	rc = instance_run(&cfg);
	config_free(&cfg);
	return rc;
}
