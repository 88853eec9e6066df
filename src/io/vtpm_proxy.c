/* Linux vTPM proxy: the VTPM_PROXY_IOC_NEW_DEV ioctl on /dev/vtpmx, and the
 * configuration the resulting device implies (data-channel.md §7). */
#include "io/vtpm_proxy.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vtpm_proxy.h>

#include "instance/log.h"

/* The kernel ABI that swtpm and the driver agree on; a header that differed
 * would create a device we then talk to with the wrong layout. */
static_assert(sizeof(struct vtpm_proxy_new_dev) == 20, "vtpm_proxy_new_dev layout");
static_assert(VTPM_PROXY_IOC_NEW_DEV == 0xC014A100u, "VTPM_PROXY_IOC_NEW_DEV value");

/* swtpm reports these failures through its logger: on stderr behind its
 * "swtpm: " prefix by default, and only into the log when --log is given
 * (seen with swtpm 0.7.1 on a real /dev/vtpmx). So stderr means "the log"
 * here; any other stream (a test's) gets the bare message. */
__attribute__((format(printf, 2, 3)))
static void vtpm_proxy_report(FILE *err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err == stderr)
		log_printf("%s", msg);
	else
		fputs(msg, err);
}

int vtpm_proxy_create(const char *ctl_path, bool tpm2, FILE *err, struct vtpm_proxy_dev *dev)
{
	struct vtpm_proxy_new_dev nd = { .flags = tpm2 ? VTPM_PROXY_FLAG_TPM2 : 0 };
	int fd, ret = 0;

	fd = open(ctl_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		vtpm_proxy_report(err, "Could not open %s: %s\n", ctl_path, strerror(-ret));
		return ret;
	}
	if (ioctl(fd, VTPM_PROXY_IOC_NEW_DEV, &nd) != 0) {
		ret = -errno;
		vtpm_proxy_report(err, "Ioctl to create vtpm proxy failed: %s\n", strerror(-ret));
		goto out;
	}
	/* The kernel hands out the server fd without close-on-exec, and the
	 * device only goes away when its last copy is closed: a program this
	 * process started would keep /dev/tpmN alive after we exit. */
	if (fcntl((int)nd.fd, F_SETFD, FD_CLOEXEC) != 0) {
		ret = -errno;
		vtpm_proxy_report(err, "Could not set close-on-exec on the vTPM proxy fd: %s\n",
				  strerror(-ret));
		close((int)nd.fd);
		goto out;
	}
	dev->tpm_num = nd.tpm_num;
	dev->fd = nd.fd;
	dev->major = nd.major;
	dev->minor = nd.minor;
out:
	/* /dev/vtpmx is only the factory; the new device lives on without it. */
	close(fd);
	return ret;
}

int vtpm_proxy_apply(const struct vtpm_proxy_dev *dev, struct vtpm_config *cfg, FILE *out)
{
	cfg->data_fd = (int)dev->fd;
	/* the fd is the only data channel: its hang-up ends the process */
	cfg->terminate = true;
	/* The kernel sends the 0x20001000 vendor command when the guest of the
	 * device changes locality. */
	cfg->allow_set_locality = true;
	/* Nobody sends CMD_INIT to a kernel TPM device, and the kernel's first
	 * command arrives as soon as the device exists: the TPM must be running
	 * whatever --flags says (swtpm too only lets --flags change the start-up
	 * type here). Left "not initialised" (--flags startup-none), it would
	 * fail every command and the kernel would drop the device. The start-up
	 * type is Startup(CLEAR) unless --flags chose one. */
	cfg->not_need_init = true;
	if (!cfg->startup_set)
		cfg->startup = STARTUP_CLEAR;
	/* The line is an interface (scripts read the device name from it), and
	 * stdout may be a pipe that would otherwise hold it back. */
	fprintf(out, "New TPM device: /dev/tpm%u (major/minor = %u/%u)\n", dev->tpm_num,
		dev->major, dev->minor);
	return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
