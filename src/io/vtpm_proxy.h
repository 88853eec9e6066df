/* Linux vTPM proxy (`swtpm chardev --vtpm-proxy`): create /dev/tpmN through
 * /dev/vtpmx and serve its commands on the anonymous fd the kernel returns. */
#ifndef VTPM_IO_VTPM_PROXY_H
#define VTPM_IO_VTPM_PROXY_H

#include <stdint.h>
#include <stdio.h>

#include "instance/config.h"

#define VTPM_PROXY_DEVICE "/dev/vtpmx"

/* What VTPM_PROXY_IOC_NEW_DEV returns (struct vtpm_proxy_new_dev's outputs). */
struct vtpm_proxy_dev {
	uint32_t tpm_num;
	uint32_t fd;
	uint32_t major;
	uint32_t minor;
};

/* Open ctl_path (VTPM_PROXY_DEVICE outside tests), ask for a new TPM 1.2 or
 * TPM 2 device, close ctl_path again. Errors are reported on err in swtpm's
 * words. 0 or -errno. */
int vtpm_proxy_create(const char *ctl_path, bool tpm2, FILE *err, struct vtpm_proxy_dev *dev);

/* Adopt a created device: announce it on out (the exact line swtpm prints),
 * make its fd the data channel and apply what the proxy implies (SetLocality
 * allowed; TPM started with Startup(CLEAR) unless --flags chose a start-up
 * type). No system calls besides writing to out. 0, or -EIO if out failed. */
int vtpm_proxy_apply(const struct vtpm_proxy_dev *dev, struct vtpm_config *cfg, FILE *out);

#endif
