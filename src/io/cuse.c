/* `swtpm cuse` on libfuse3's CUSE low-level API: registers /dev/NAME and hands
 * every open, read, write and ioctl to io/cuse_dev.c. libfuse runs its
 * single-threaded session loop, so requests are served one at a time. */
#define FUSE_USE_VERSION 31

#include <cuse_lowlevel.h>
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>

#include "instance/log.h"
#include "io/cuse.h"
#include "io/cuse_dev.h"
#include "vtpm/ctrl_ioctl.h"

struct cuse_srv {
	struct cuse_dev dev;
	struct fuse_session *se;
	cuse_ready_fn ready;
	void *ready_ctx;
};

static struct cuse_srv *cuse_srv_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void cuse_check_quit(struct cuse_srv *s)
{
	if (s->dev.quit)
		fuse_session_exit(s->se);
}

static void cuse_open(fuse_req_t req, struct fuse_file_info *fi)
{
	int r = cuse_dev_open(&cuse_srv_of(req)->dev);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_open(req, fi);
}

static void cuse_release(fuse_req_t req, struct fuse_file_info *fi)
{
	cuse_dev_release(&cuse_srv_of(req)->dev);
	fuse_reply_err(req, 0);
}

static void cuse_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	const uint8_t *data = NULL;
	ssize_t n = cuse_dev_read(&cuse_srv_of(req)->dev, size, &data);

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, (const char *)data, (size_t)n);
}

static void cuse_write(fuse_req_t req, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct cuse_srv *s = cuse_srv_of(req);
	ssize_t n = cuse_dev_write(&s->dev, (const uint8_t *)buf, size);

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
	cuse_check_quit(s);
}

static void cuse_ioctl(fuse_req_t req, int cmd, void *arg, struct fuse_file_info *fi,
		       unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct cuse_srv *s = cuse_srv_of(req);
	/* the largest argument structure is PTM_HASH_DATA's */
	_Alignas(8) unsigned char out[sizeof(struct ptm_ioc_hdata)];
	size_t outlen = 0;
	int r;

	/* Restricted ioctls: the kernel copies in and out exactly the size the
	 * ioctl number encodes, so a short out buffer is not one of ours. */
	if ((_IOC_DIR((unsigned int)cmd) & _IOC_READ) &&
	    out_bufsz < _IOC_SIZE((unsigned int)cmd)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = cuse_dev_ioctl(&s->dev, (unsigned int)cmd, in_buf, in_bufsz, out, sizeof(out),
			   &outlen);
	if (r < 0) {
		fuse_reply_err(req, -r);
	} else {
		if (outlen > out_bufsz)
			outlen = out_bufsz;
		fuse_reply_ioctl(req, 0, outlen ? out : NULL, outlen);
	}
	cuse_check_quit(s);
}

static void cuse_init_done(void *userdata)
{
	struct cuse_srv *s = userdata;
	int st;

	if (!s->ready)
		return;
	st = s->ready(s->ready_ctx);
	if (st != 0) {
		s->dev.exit_status = st;
		fuse_session_exit(s->se);
	}
}

static const struct cuse_lowlevel_ops cuse_ops = {
	.init_done = cuse_init_done,
	.open = cuse_open,
	.read = cuse_read,
	.write = cuse_write,
	.release = cuse_release,
	.ioctl = cuse_ioctl,
};

int cuse_run(struct instance *inst, const struct vtpm_config *cfg, cuse_ready_fn ready,
	     void *ready_ctx)
{
	struct cuse_srv s = { .ready = ready, .ready_ctx = ready_ctx };
	struct cuse_info ci = { 0 };
	char *devname = NULL;
	const char *dev_info[1];
	/* libfuse's own options: -s single-threaded; -f keeps it from forking */
	char *fargv[] = { (char *)"swtpm", (char *)"-s", (char *)"-f", NULL };
	int fargc = cfg->cuse_foreground ? 3 : 2;
	int multithreaded = 0, r, status;

	if (asprintf(&devname, "DEVNAME=%s", cfg->cuse_name) < 0)
		return 1;
	cuse_dev_init(&s.dev, inst, cfg);
	dev_info[0] = devname;
	ci.dev_major = cfg->cuse_major;
	ci.dev_minor = cfg->cuse_minor;
	ci.dev_info_argc = 1;
	ci.dev_info_argv = dev_info;
	/* flags 0: restricted ioctls, sized by their numbers */
	s.se = cuse_lowlevel_setup(fargc, fargv, &ci, &cuse_ops, &multithreaded, &s);
	if (!s.se) {
		log_printf("Error: could not create the CUSE device /dev/%s\n", cfg->cuse_name);
		free(devname);
		return 1;
	}
	r = fuse_session_loop(s.se);
	cuse_lowlevel_teardown(s.se);
	status = s.dev.exit_status;
	if (r < 0 && status == 0)
		status = 1;
	cuse_dev_fini(&s.dev);
	free(devname);
	return status;
}
