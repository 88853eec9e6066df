/* Spawner process and its socketpair protocol. Children are double-forked so
 * that they become children of the manager (a child subreaper), see below. */
#include <errno.h>
#include <fcntl.h>
#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "instance/cli.h"
#include "instance/config.h"
#include "instance/instance.h"
#include "instance/memtpm.h"
#include "instance/run.h"
#include "io/sandbox.h"
#include "manager/spawner.h"

/*
 * Who reaps the children. The manager is PR_SET_CHILD_SUBREAPER; the spawner
 * forks an intermediate process that calls setsid() and forks the instance,
 * then exits at once. The kernel re-parents the instance to the nearest
 * subreaper ancestor: the manager. So the manager gets exact exit statuses
 * straight from the kernel (waitid(P_PIDFD)) instead of through a second
 * channel that could be reordered with pidfd readiness, and the spawner keeps
 * no per-child state at all (it can die and be re-forked without losing a
 * child). The instance is in its own session and process group, so signals
 * to vtpmd's group never reach it, and when vtpmd dies the instance is simply
 * re-parented again (to init or systemd) and keeps serving.
 *
 * A pid handed back here cannot be recycled before the manager has it: the
 * instance is the manager's child, and the manager only ever reaps with
 * waitid(P_PIDFD) on pidfds it holds, never with waitpid(-1).
 */

#define SPAWN_MAGIC_REQ 0x5654534eu /* "VTSN" */
#define SPAWN_MAGIC_POOL 0x56545350u /* "VTSP" */
#define SPAWN_MAGIC_REP 0x56545352u /* "VTSR" */
#define SPAWN_HDR 16u
#define SPAWN_FD 3 /* the spawner's end, moved here before closing the rest */
#define SPAWN_READY_FD 3 /* in an instance: its readiness socket */

static void spawn_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t spawn_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

ssize_t spawn_encode(const struct spawn_req *req, uint8_t *buf, size_t size)
{
	const char *fixed[4] = { req->id, req->dir, req->log, req->comm };
	size_t off = SPAWN_HDR, n;

	if (req->argc == 0 || req->argc > SPAWN_MAX_ARGS || size < SPAWN_HDR)
		return -EINVAL;
	for (size_t i = 0; i < 4 + req->argc; i++) {
		const char *s = i < 4 ? fixed[i] : req->argv[i - 4];

		if (!s)
			return -EINVAL;
		n = strlen(s) + 1;
		if (n > size - off)
			return -EMSGSIZE;
		memcpy(buf + off, s, n);
		off += n;
	}
	spawn_put32(buf, req->pool ? SPAWN_MAGIC_POOL : SPAWN_MAGIC_REQ);
	spawn_put32(buf + 4, req->seq);
	spawn_put32(buf + 8, (uint32_t)(4 + req->argc));
	spawn_put32(buf + 12, (uint32_t)(off - SPAWN_HDR));
	return (ssize_t)off;
}

int spawn_decode(uint8_t *buf, size_t len, struct spawn_req *req)
{
	const char *strs[SPAWN_MAX_ARGS + 4];
	uint32_t nstr, plen;
	size_t off = SPAWN_HDR, k = 0;

	memset(req, 0, sizeof(*req));
	if (len < SPAWN_HDR ||
	    (spawn_get32(buf) != SPAWN_MAGIC_REQ && spawn_get32(buf) != SPAWN_MAGIC_POOL))
		return -EINVAL;
	req->pool = spawn_get32(buf) == SPAWN_MAGIC_POOL;
	req->seq = spawn_get32(buf + 4);
	nstr = spawn_get32(buf + 8);
	plen = spawn_get32(buf + 12);
	if (nstr < 5 || nstr > SPAWN_MAX_ARGS + 4 || plen != len - SPAWN_HDR || plen == 0 ||
	    buf[len - 1] != '\0')
		return -EINVAL;
	/* exactly nstr NUL-terminated strings, nothing after the last */
	while (off < len) {
		uint8_t *nul = memchr(buf + off, '\0', len - off);

		if (!nul || k == nstr)
			return -EINVAL;
		strs[k++] = (const char *)buf + off;
		off = (size_t)(nul - buf) + 1;
	}
	if (k != nstr)
		return -EINVAL;
	req->id = strs[0];
	req->dir = strs[1];
	req->log = strs[2];
	req->comm = strs[3];
	req->argc = nstr - 4;
	for (size_t i = 0; i < req->argc; i++)
		req->argv[i] = strs[4 + i];
	req->argv[req->argc] = NULL;
	if (!req->dir[0] || !req->log[0] || req->dir[0] != '/' || req->log[0] != '/')
		return -EINVAL;
	return 0;
}

/* ---- inside the spawner process ---- */

/* The spawner's receive buffer. A pool process receives its claim into its
 * copy-on-write copy, so the claim costs it one private page, not a heap
 * allocation that would keep freed manufacture memory from being trimmed. */
static uint8_t spawn_buf[SPAWN_MAX_MSG];

static void spawn_reset_signals(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL); /* EINVAL for KILL/STOP and RT gaps: fine */
}

/* Every child would otherwise build OpenSSL's provider and algorithm caches on
 * its first use (config file, method store: ~150-200 kB of private heap per
 * instance). Fetching what libtpms and the state store use once here leaves those
 * caches in pages the children share copy-on-write. No random state is created
 * here: each child seeds its own DRBG. */
static void spawn_prewarm_crypto(void)
{
	static const char *const mds[] = { "SHA1", "SHA256", "SHA384", "SHA512", "SM3" };
	static const char *const ciphers[] = { "AES-128-CBC", "AES-256-CBC", "AES-128-CFB",
					       "AES-256-CFB", "AES-128-ECB", "AES-256-ECB" };
	size_t i;

	for (i = 0; i < sizeof(mds) / sizeof(mds[0]); i++)
		EVP_MD_free(EVP_MD_fetch(NULL, mds[i], NULL));
	for (i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++)
		EVP_CIPHER_free(EVP_CIPHER_fetch(NULL, ciphers[i], NULL));
	EVP_MAC_free(EVP_MAC_fetch(NULL, "HMAC", NULL));
	EVP_KDF_free(EVP_KDF_fetch(NULL, "PBKDF2", NULL));
}

/*
 * A TPM 2 manufactured once in memory, then thrown away. The first
 * TPMLIB_MainInit of a process costs ~1.6 ms of CPU, and almost none of it is
 * the manufacture itself (~0.03 ms once warm): it is libtpms' and OpenSSL's
 * first-use set-up (crypto units, algorithm and method caches, the DRBGs,
 * first touches of libtpms' static state). Done here, children inherit all of
 * it copy-on-write and their own manufacture takes ~0.3 ms.
 *
 * Nothing of this TPM reaches a child: its NV state only ever lives in
 * memtpm's buffers, which memtpm_stop wipes and frees after TPMLIB_Terminate.
 * Each child still manufactures its own TPM, with its own EPS/SPS/PPS: libtpms draws them from
 * its DRBG, which TPM_Manufacture instantiates afresh from RAND_bytes(), and
 * OpenSSL's DRBGs reseed from the OS in a process whose pid differs from the
 * one they were used in (fork detection); spawn_child reseeds explicitly too.
 */
static void spawn_tpm_cmd(const unsigned char *cmd, uint32_t len, unsigned char **rsp,
			  uint32_t *rspsize)
{
	unsigned char buf[64];
	uint32_t rlen = 0;

	memcpy(buf, cmd, len);
	TPMLIB_Process(rsp, &rlen, rspsize, buf, len);
}

static void spawn_prewarm_tpm(void)
{
	static const unsigned char startup[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0 };
	static const unsigned char getrandom[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 32 };
	static const unsigned char shutdown[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x45, 0, 0 };
	unsigned char *rsp = NULL;
	uint32_t rspsize = 0;

	if (memtpm_start() == TPM_SUCCESS) {
		spawn_tpm_cmd(startup, sizeof(startup), &rsp, &rspsize);
		spawn_tpm_cmd(getrandom, sizeof(getrandom), &rsp, &rspsize);
		spawn_tpm_cmd(shutdown, sizeof(shutdown), &rsp, &rspsize);
	}
	memtpm_stop();
	free(rsp);
}

static void spawn_stdio_null(int keep_stderr)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	if (!keep_stderr)
		dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

/* What every process forked for vtpmd does first: default signals, its own
 * DRBG state, stderr to its log, fd 3 = its readiness socket and nothing else
 * inherited, cwd = its directory. */
static void spawn_child_setup(const struct spawn_req *req, int ready)
{
	int fd;

	/* The spawner reset every disposition when it started and changed only
	 * these since (one syscall each instead of one per signal). */
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	/* Our DRBGs were used in the spawner (spawn_prewarm_tpm): reseed them from
	 * the OS now. OpenSSL also does this by itself when it sees a new pid;
	 * this instance's TPM seeds come from them and must be its own. */
	RAND_poll();
	fd = open(req->log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	spawn_stdio_null(0);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	/* Nothing of the manager or spawner (sockets, pidfds, the lock) may
	 * leak into a long-lived child; the readiness socket becomes fd 3. */
	if (ready != SPAWN_READY_FD && dup2(ready, SPAWN_READY_FD) < 0)
		_exit(1);
	close_range(SPAWN_READY_FD + 1, ~0U, 0);
	instance_ready_fd = SPAWN_READY_FD;
	if (chdir(req->dir) < 0)
		fprintf(stderr, "vtpmd: cannot enter %s: %s\n", req->dir, strerror(errno));
}

static void spawn_banner(const char *what)
{
	char when[64];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
	fprintf(stderr, "vtpmd: %s as pid %d at %s\n", what, (int)getpid(), when);
}

/* The instance process: what `swtpm socket ...` would be, minus the exec. */
__attribute__((noreturn)) static void spawn_child_run(const struct spawn_req *req,
						      const char *how)
{
	char *argv[SPAWN_MAX_ARGS + 1], what[160];
	struct vtpm_config cfg;
	int code = 1, rc;

	snprintf(what, sizeof(what), "starting instance %s%s", req->id, how);
	spawn_banner(what);
	/* getopt permutes the pointer array; the strings are our private
	 * copy-on-write copy of the request. */
	for (size_t i = 0; i <= req->argc; i++)
		argv[i] = (char *)req->argv[i];
	if (cli_parse((int)req->argc, argv, &cfg, stdout, stderr, &code)) {
		fflush(NULL);
		_exit(code ? code : 1);
	}
	/* swtpm cuse daemonizes; under vtpmd the child itself is the instance */
	cfg.cuse_foreground = true;
	rc = instance_run(&cfg);
	config_free(&cfg);
	fflush(NULL);
	_exit(rc);
}

/* Make dir (0711, like a registry entry) with state/ (0700) and the temp
 * names vtpmd writes config.json and the pid file through, so that the
 * claim creates no inode in the registry (see pool.c). */
static int spawn_pool_dir(const char *dir)
{
	static const char *const names[] = { ".config.json.tmp", ".pid.tmp" };
	int dfd, fd, r = 0;

	if (mkdir(dir, 0711) < 0)
		return -errno;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (mkdirat(dfd, "state", 0700) < 0)
		r = -errno;
	for (size_t i = 0; r == 0 && i < sizeof(names) / sizeof(names[0]); i++) {
		fd = openat(dfd, names[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
		if (fd < 0)
			r = -errno;
		else
			close(fd);
	}
	close(dfd);
	return r;
}

/* A pool process: prepares everything an instance with its own state needs
 * that does not depend on its command line, then waits to be claimed. */
__attribute__((noreturn)) static void spawn_pool_child(const struct spawn_req *req, int ready)
{
	struct spawn_req claim;
	char state[PATH_MAX];
	ssize_t n;
	pid_t mpid, self;
	int r, st;

	r = spawn_pool_dir(req->dir);
	spawn_child_setup(req, ready);
	if (r < 0) {
		fprintf(stderr, "vtpmd: cannot make the pool entry %s: %s\n", req->dir,
			strerror(-r));
		_exit(1);
	}
	spawn_banner("manufacturing a TPM 2 for the pool");
	if (snprintf(state, sizeof(state), "%s/state", req->dir) >= (int)sizeof(state))
		_exit(1);
	/* In a child of ours: manufacturing allocates and frees, and would leave
	 * this process with ~24 kB more private heap than a freshly forked
	 * instance has (pages of the spawner's heap it wrote to). */
	self = getpid();
	mpid = fork();
	if (mpid < 0)
		_exit(1);
	if (mpid == 0) {
		/* it lives and dies with this process, and is no party to vtpmd's
		 * socket */
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != self)
			_exit(1);
		close(SPAWN_READY_FD);
		_exit(instance_manufacture(state) < 0 ? 1 : 0);
	}
	while (waitpid(mpid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		_exit(1);
	/* Load it now (libtpms' MainInit, ~0.2 ms): an instance that starts
	 * its TPM at once takes it over instead of loading it after the claim. */
	if (instance_preload(state) < 0)
		_exit(1);
	if (send(SPAWN_READY_FD, SPAWN_POOL_PARKED, strlen(SPAWN_POOL_PARKED), MSG_NOSIGNAL) < 0)
		_exit(0);
	do
		n = recv(SPAWN_READY_FD, spawn_buf, sizeof(spawn_buf), 0);
	while (n < 0 && errno == EINTR);
	/* EOF: vtpmd left or dropped us; the directory is its to remove */
	if (n <= 0)
		_exit(0);
	if (spawn_decode(spawn_buf, (size_t)n, &claim) < 0 || claim.pool) {
		fprintf(stderr, "vtpmd: malformed claim of a pool process\n");
		_exit(1);
	}
	/* vtpmd renamed our directory to the instance's before it sent this */
	prctl(PR_SET_NAME, claim.comm, 0, 0, 0);
	if (chdir(claim.dir) < 0)
		fprintf(stderr, "vtpmd: cannot enter %s: %s\n", claim.dir, strerror(errno));
	spawn_child_run(&claim, " (manufactured ahead in the pool)");
}

/* Fork the instance via an intermediate process; returns its pid or -errno.
 * *ready: the manager's end of the instance's readiness socket. */
static pid_t spawn_one(const struct spawn_req *req, int *ready)
{
	int32_t v = -EIO;
	pid_t mid;
	int p[2], rs[2], st;
	ssize_t r;

	*ready = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rs) < 0)
		return -errno;
	if (pipe2(p, O_CLOEXEC) < 0) {
		v = -errno;
		close(rs[0]);
		close(rs[1]);
		return v;
	}
	mid = fork();
	if (mid < 0) {
		v = -errno;
		close(p[0]);
		close(p[1]);
		close(rs[0]);
		close(rs[1]);
		return v;
	}
	if (mid == 0) {
		pid_t g;

		close(p[0]);
		setsid();
		/* comm is inherited by the fork below, so the manager reads the
		 * final name as soon as it learns the pid (identity check). */
		prctl(PR_SET_NAME, req->comm, 0, 0, 0);
		g = fork();
		if (g == 0) {
			if (req->pool)
				spawn_pool_child(req, rs[1]);
			spawn_child_setup(req, rs[1]);
			spawn_child_run(req, "");
		}
		v = g < 0 ? -errno : (int32_t)g;
		if (write(p[1], &v, sizeof(v)) != sizeof(v))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	close(rs[1]);
	do
		r = read(p[0], &v, sizeof(v));
	while (r < 0 && errno == EINTR);
	close(p[0]);
	if (r != sizeof(v))
		v = -EIO;
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	if (v > 0)
		*ready = rs[0];
	else
		close(rs[0]);
	return v;
}

/* fds: the readiness socket, then the pidfd (if pidfd_open worked). */
static void spawn_reply(int fd, const struct spawn_rep *rep, int ready, int pidfd)
{
	uint8_t buf[16];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} c;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[2], nfd = 0;

	spawn_put32(buf, SPAWN_MAGIC_REP);
	spawn_put32(buf + 4, rep->seq);
	spawn_put32(buf + 8, (uint32_t)rep->pid);
	spawn_put32(buf + 12, (uint32_t)rep->err);
	if (ready >= 0) {
		fds[nfd++] = ready;
		if (pidfd >= 0)
			fds[nfd++] = pidfd;
	}
	if (nfd) {
		struct cmsghdr *cm;

		memset(&c, 0, sizeof(c));
		msg.msg_control = c.b;
		msg.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfd * sizeof(int));
	}
	while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

__attribute__((noreturn)) static void spawn_main(int fd)
{
	uint8_t *buf = spawn_buf;
	struct spawn_req req;
	struct spawn_rep rep;
	ssize_t n;
	int pidfd, ready;

	spawn_reset_signals();
	signal(SIGPIPE, SIG_IGN);
	/* A terminal's ^C or hang-up reaches vtpmd's process group: vtpmd
	 * decides what happens, and the spawner leaves when its socket closes. */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	if (fd != SPAWN_FD) {
		dup2(fd, SPAWN_FD);
		close(fd);
	}
	spawn_stdio_null(0);
	close_range(SPAWN_FD + 1, ~0U, 0);
	prctl(PR_SET_NAME, "vtpmd-spawner", 0, 0, 0);
	/* Load libtpms and OpenSSL once here, so every child inherits the
	 * initialised pages copy-on-write instead of paying for it. */
	TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
	OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CRYPTO_STRINGS | OPENSSL_INIT_ADD_ALL_CIPHERS |
				    OPENSSL_INIT_ADD_ALL_DIGESTS | OPENSSL_INIT_LOAD_CONFIG,
			    NULL);
	spawn_prewarm_crypto();
	sandbox_seccomp_precompile();
	/* VTPMD_PREWARM=0: for measuring what the warm-up saves */
	if (!getenv("VTPMD_PREWARM") || strcmp(getenv("VTPMD_PREWARM"), "0") != 0)
		spawn_prewarm_tpm();
	for (;;) {
		n = recv(SPAWN_FD, buf, sizeof(spawn_buf), 0);
		if (n == 0)
			_exit(0); /* the manager is gone */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		memset(&rep, 0, sizeof(rep));
		pidfd = -1;
		ready = -1;
		if (spawn_decode(buf, (size_t)n, &req) < 0) {
			rep.seq = n >= 8 ? spawn_get32(buf + 4) : 0;
			rep.err = -EINVAL;
		} else {
			pid_t pid = spawn_one(&req, &ready);

			rep.seq = req.seq;
			if (pid < 0) {
				rep.err = pid;
			} else {
				rep.pid = pid;
				/* May fail only in odd cases; the manager then
				 * opens the pidfd itself (the pid is its child). */
				pidfd = pidfd_open(pid, 0);
			}
		}
		spawn_reply(SPAWN_FD, &rep, ready, pidfd);
		if (pidfd >= 0)
			close(pidfd);
		if (ready >= 0)
			close(ready);
	}
}

/* ---- manager side ---- */

int spawn_start(struct spawner *sp)
{
	int sv[2], size = 1 << 20;
	struct timeval tv = { .tv_sec = 2 };
	pid_t pid;

	sp->pid = -1;
	sp->pidfd = -1;
	sp->fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* room for a burst of queued requests and replies */
	for (int i = 0; i < 2; i++) {
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	pid = fork();
	if (pid < 0) {
		int e = -errno;

		close(sv[0]);
		close(sv[1]);
		return e;
	}
	if (pid == 0) {
		close(sv[0]);
		spawn_main(sv[1]);
	}
	close(sv[1]);
	sp->pid = pid;
	sp->fd = sv[0];
	sp->pidfd = pidfd_open(pid, 0);
	if (sp->pidfd < 0) {
		int e = -errno;

		spawn_stop(sp);
		return e;
	}
	return 0;
}

int spawn_send(struct spawner *sp, const struct spawn_req *req)
{
	static uint8_t buf[SPAWN_MAX_MSG];
	ssize_t n = spawn_encode(req, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	if (sp->fd < 0)
		return -EPIPE;
	for (;;) {
		if (send(sp->fd, buf, (size_t)n, MSG_NOSIGNAL) == n)
			return 0;
		if (errno != EINTR)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
	}
}

int spawn_recv(struct spawner *sp, struct spawn_rep *rep, int *pidfd, int *ready)
{
	uint8_t buf[16];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} c;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.b,
			      .msg_controllen = sizeof(c.b) };
	struct cmsghdr *cm;
	int fds[2] = { -1, -1 };
	ssize_t n;

	*pidfd = -1;
	*ready = -1;
	if (sp->fd < 0)
		return -EPIPE;
	n = recvmsg(sp->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -EPIPE;
	if (n == 0)
		return -EPIPE;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		memcpy(fds, CMSG_DATA(cm), (k > 2 ? 2 : k) * sizeof(int));
	}
	if (n != sizeof(buf) || spawn_get32(buf) != SPAWN_MAGIC_REP ||
	    (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return -EPROTO;
	}
	*ready = fds[0];
	*pidfd = fds[1];
	rep->seq = spawn_get32(buf + 4);
	rep->pid = (int32_t)spawn_get32(buf + 8);
	rep->err = (int32_t)spawn_get32(buf + 12);
	return 0;
}

void spawn_stop(struct spawner *sp)
{
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	if (sp->pidfd >= 0)
		close(sp->pidfd);
	sp->pidfd = -1;
	/* it exits on EOF; reap it so no zombie stays behind */
	if (sp->pid > 0)
		while (waitpid(sp->pid, NULL, 0) < 0 && errno == EINTR)
			;
	sp->pid = -1;
}
