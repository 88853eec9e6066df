/* instance_run(): start-up in swtpm's order (chardev device, runas, log, vTPM
 * proxy, capabilities, sockets, states, pid file, TPM start, sandbox, daemon
 * readiness), serve, clean up. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "instance/cli.h"
#include "instance/instance.h"
#include "instance/log.h"
#include "instance/run.h"
#include "io/cuse.h"
#include "io/sandbox.h"
#include "io/server.h"
#include "io/vtpm_proxy.h"

/* -d without a readiness race: the caller's process exits only when the daemon
 * has its sockets, pid file and TPM ready (or with the daemon's error status). */
static int run_daemonize(int *ready_fd)
{
	int pfd[2], status;
	pid_t pid;
	char c;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		if (waitpid(pid, &status, 0) < 0)
			_exit(1);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
	}
	setsid();
	if (pipe2(pfd, O_CLOEXEC) < 0)
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0) {
		close(pfd[1]);
		/* A byte means "ready"; EOF means the daemon died during set-up. */
		if (read(pfd[0], &c, 1) == 1)
			_exit(0);
		if (waitpid(pid, &status, 0) < 0)
			_exit(1);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
	}
	close(pfd[0]);
	*ready_fd = pfd[1];
	return 0;
}

static void run_daemon_ready(int ready_fd)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		if (log_get_fd() != STDERR_FILENO)
			dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if (write(ready_fd, "1", 1) != 1)
		log_printf("could not signal readiness\n");
	close(ready_fd);
}

int instance_ready_fd = -1;

static void run_notify_ready(void)
{
	char buf[16];
	int n;

	if (instance_ready_fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%d", (int)getpid());
	if (send(instance_ready_fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
		log_printf("could not signal readiness to vtpmd: %s\n", strerror(errno));
	close(instance_ready_fd);
	instance_ready_fd = -1;
}

/* The pid file: decimal pid, no newline, mode 0644 (swtpm's format). */
static int run_write_pidfile(const struct vtpm_config *cfg, char **written)
{
	char buf[32], path[64];
	int fd, n;
	ssize_t len;

	*written = NULL;
	if (cfg->pid_file) {
		fd = open(cfg->pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0) {
			log_printf("Could not open pid file %s: %s\n", cfg->pid_file, strerror(errno));
			return -errno;
		}
		*written = strdup(cfg->pid_file);
	} else if (cfg->pid_fd >= 0) {
		fd = cfg->pid_fd;
		/* remember the path for removal at exit */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		*written = realpath(path, NULL);
	} else {
		return 0;
	}
	n = snprintf(buf, sizeof(buf), "%d", (int)getpid());
	len = write(fd, buf, (size_t)n);
	close(fd);
	if (len != n) {
		log_printf("Could not write the pid file\n");
		return -EIO;
	}
	return 0;
}

static int run_print_states(struct instance *inst)
{
	static const char *const names[] = { "permall", "volatilestate", "savestate" };
	bool any = false;
	size_t size;
	int i, r;

	r = instance_storage_prepare(inst);
	if (r < 0)
		return 1;
	/* swtpm's exact format, without a trailing newline */
	printf("{ \"type\": \"swtpm\", \"states\": [");
	for (i = 0; i < STORE_NITEMS; i++) {
		if (store_item_size(&inst->store, (enum store_item)i, &size) < 0)
			continue;
		printf("%s{\"name\": \"%s\", \"size\": %zu}", any ? ", " : " ", names[i], size);
		any = true;
	}
	printf("%s] }", any ? " " : "");
	fflush(stdout);
	return 0;
}

/* chardev -c: swtpm opens the device while parsing, i.e. before --runas may
 * take away the right to. The fd becomes the data channel (closed by the
 * server, or by instance_run if the server never took it). */
static int run_open_chardev(struct vtpm_config *cfg)
{
	/* O_NOCTTY: a tty given as the device must not become our controlling
	 * terminal (its hang-up would then also send us SIGHUP). */
	int fd = open(cfg->chardev_path, O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0) {
		int err = errno;

		fprintf(stderr, "Cannot open %s: %s\n", cfg->chardev_path, strerror(err));
		return -err;
	}
	cfg->data_fd = fd;
	return 0;
}

/* Exit statuses of swtpm cuse (cli.md §4.2): small negative numbers. */
#define RUN_CUSE_EXIT_GENERIC 255 /* -1 */
#define RUN_CUSE_EXIT_OPTION 253  /* -3 */
#define RUN_CUSE_EXIT_ROOT 252	  /* -4 */
#define RUN_CUSE_EXIT_PIDFILE 243 /* -13 */
#define RUN_CUSE_EXIT_SANDBOX 242 /* -14 */

struct run_cuse_ctx {
	const struct vtpm_config *cfg;
	char **pidpath;
};

/* CUSE does these once the device exists (and libfuse has daemonized, so the
 * pid file names the serving process). */
static int run_cuse_ready(void *p)
{
	struct run_cuse_ctx *ctx = p;

	if (run_write_pidfile(ctx->cfg, ctx->pidpath) < 0)
		return RUN_CUSE_EXIT_PIDFILE;
	if (ctx->cfg->runas && sandbox_runas(ctx->cfg->runas) < 0)
		return RUN_CUSE_EXIT_SANDBOX;
	if (sandbox_seccomp(ctx->cfg->seccomp) < 0)
		return RUN_CUSE_EXIT_SANDBOX;
	run_notify_ready();
	return 0;
}

/* swtpm cuse's start-up order: root, log, capabilities, TPM version, states,
 * an existing device, keys, TPM start (if not-need-init), the device. */
static int run_cuse(const struct vtpm_config *cfg)
{
	struct instance inst;
	struct run_cuse_ctx ctx;
	char *pidpath = NULL, devpath[PATH_MAX];
	int rc = RUN_CUSE_EXIT_GENERIC, r, fd;
	bool inst_ok = false;

	/* /dev/cuse and the device node need root; swtpm insists on it. */
	if (setuid(0) < 0) {
		fprintf(stderr, "Error: Unable to setuid root. uid = %d, euid = %d, gid = %d\n",
			(int)getuid(), (int)geteuid(), (int)getgid());
		return RUN_CUSE_EXIT_ROOT;
	}
	r = log_setup(&cfg->log);
	if (r < 0) {
		fprintf(stderr, "Could not open the log: %s\n", strerror(-r));
		return 1;
	}
	if (cfg->print_capabilities)
		return cli_print_capabilities(stdout, cfg) < 0 ? 1 : 0;
	if (instance_init(&inst, cfg) < 0)
		return 1;
	inst_ok = true;
	if (cfg->print_states) {
		rc = run_print_states(&inst);
		goto out;
	}
	r = snprintf(devpath, sizeof(devpath), "/dev/%s", cfg->cuse_name);
	if (r < 0 || (size_t)r >= sizeof(devpath)) {
		log_printf("Error: Buffer too small to create device file name\n");
		goto out;
	}
	fd = open(devpath, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd >= 0) {
		close(fd);
		log_printf("Error: A device '%s' already exists.\n", devpath);
		goto out;
	}
	if (instance_load_keys(&inst) < 0) {
		rc = RUN_CUSE_EXIT_OPTION;
		goto out;
	}
	if (cfg->not_need_init) {
		if (cuse_state_dir(cfg) < 0 || instance_start(&inst, 0) != 0) {
			log_printf("Error: Could not initialize the TPM\n");
			goto out;
		}
		log_printf("CUSE TPM successfully initialized.\n");
		/* TPM 2 has no deactivated start-up: swtpm cuse sends nothing */
		if (!(cfg->startup == STARTUP_DEACTIVATED && cfg->tpm2))
			instance_startup_cmd(&inst);
		if (instance_has_pending_writes(&inst) && store_flush_sync(&inst.store) < 0) {
			log_printf("Error: could not write the TPM state\n");
			goto out;
		}
	}
	ctx.cfg = cfg;
	ctx.pidpath = &pidpath;
	rc = cuse_run(&inst, cfg, run_cuse_ready, &ctx);
out:
	if (inst_ok)
		instance_fini(&inst);
	if (pidpath) {
		unlink(pidpath);
		free(pidpath);
	}
	return rc;
}

int instance_run(const struct vtpm_config *cfg_in)
{
	/* A private copy: the chardev device and the vTPM proxy fill in data_fd
	 * and the proxy's implied flags at run time. Pointers stay shared with
	 * cfg_in, which outlives this call. */
	struct vtpm_config run_cfg = *cfg_in;
	struct vtpm_config *cfg = &run_cfg;
	struct instance inst;
	struct server *srv = NULL;
	char *pidpath = NULL;
	int ready_fd = -1, rc = 1, r, own_fd = -1;
	bool inst_ok = false, adopted = false;

	if (cfg->iface == IFACE_CUSE) {
		instance_release_preloaded();
		return run_cuse(cfg_in);
	}
	if (cfg->daemon && run_daemonize(&ready_fd) < 0) {
		fprintf(stderr, "Could not daemonize: %s\n", strerror(errno));
		return 1;
	}
	if (cfg->iface == IFACE_CHARDEV && cfg->chardev_path && cfg->data_fd < 0) {
		if (run_open_chardev(cfg) < 0)
			goto out;
		own_fd = cfg->data_fd;
	}
	if (cfg->runas && sandbox_runas(cfg->runas) < 0)
		goto out;
	r = log_setup(&cfg->log);
	if (r < 0) {
		fprintf(stderr, "Could not open the log: %s\n", strerror(-r));
		goto out;
	}
	if (cfg->iface == IFACE_CHARDEV && cfg->vtpm_proxy) {
		struct vtpm_proxy_dev dev;

		/* before --print-capabilities, as swtpm does (cli.md §5) */
		if (vtpm_proxy_create(VTPM_PROXY_DEVICE, cfg->tpm2, stderr, &dev) < 0)
			goto out;
		own_fd = (int)dev.fd;
		if (vtpm_proxy_apply(&dev, cfg, stdout) < 0)
			goto out;
	}
	if (cfg->print_capabilities) {
		rc = cli_print_capabilities(stdout, cfg) < 0 ? 1 : 0;
		goto out;
	}
	/* a TPM vtpmd's pool loaded ahead, if it fits this command line */
	adopted = instance_adopt_preloaded(&inst, cfg) == 0;
	if (!adopted && instance_init(&inst, cfg) < 0)
		goto out;
	inst_ok = true;
	if (server_new(&srv, &inst, cfg) < 0)
		goto out;
	if (cfg->print_states) {
		rc = run_print_states(&inst);
		goto out;
	}
	if (instance_load_keys(&inst) < 0)
		goto out;
	if (run_write_pidfile(cfg, &pidpath) < 0)
		goto out;
	if (cfg->not_need_init) {
		if (!adopted && instance_start(&inst, 0) != 0) {
			log_printf("Error: Could not initialize the TPM\n");
			goto out;
		}
		if (cfg->startup == STARTUP_DEACTIVATED && cfg->tpm2) {
			/* swtpm logs this and exits with success */
			log_printf("Error: TPM 2 does not support startup-deactivated\n");
			rc = 0;
			goto out;
		}
		instance_startup_cmd(&inst);
		if (instance_has_pending_writes(&inst) && store_flush_sync(&inst.store) < 0) {
			log_printf("Error: could not write the TPM state\n");
			goto out;
		}
	}
	if (sandbox_seccomp(cfg->seccomp) < 0)
		goto out;
	/* Start-up used heap transiently (libtpms marshals the whole state into
	 * temporary buffers, libseccomp builds its filter); give those pages
	 * back. Under vtpmd they would stay private to each of hundreds of
	 * instances (~50 kB each). brk and madvise are in the seccomp filter. */
	malloc_trim(0);
	run_notify_ready();
	if (ready_fd >= 0) {
		run_daemon_ready(ready_fd);
		ready_fd = -1;
	}
	/* server_run adopts the data fd and closes it when done */
	own_fd = -1;
	rc = server_run(srv);
out:
	instance_release_preloaded(); /* an early exit before it was taken */
	if (inst_ok)
		instance_fini(&inst);
	server_free(srv);
	if (pidpath) {
		unlink(pidpath);
		free(pidpath);
	}
	if (ready_fd >= 0)
		close(ready_fd);
	if (own_fd >= 0)
		close(own_fd);
	return rc;
}
