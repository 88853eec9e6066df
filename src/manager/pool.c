/* vtpmd's pool of pre-manufactured instances (see pool.h).
 *
 * Why: a new instance must make its fresh seeds durable before it may answer
 * (a new file, its fsync and a directory fsync), and a forked process needs
 * ~1 ms of CPU to set itself up. A pool process has done all of that before
 * any create arrives: it made STATE_ROOT/.pool/NAME (with state/ and the temp
 * names the registry writes through), manufactured a TPM 2 there with the
 * same code as any instance (instance_manufacture), and waits on its
 * readiness socket. A create then renames the directory to STATE_ROOT/ID and
 * sends the instance's command line over that socket; the process runs it
 * exactly like a freshly forked one (spawner.c), and loads the state instead
 * of manufacturing it. Each pool process draws its own seeds, so a claimed
 * TPM is as unique as one made at create time.
 *
 * Only a create with "start" whose command line keeps the state in vtpmd's
 * own directory (TPM 2, no --tpmstate, no keys, no --runas, no incoming
 * migration) can use the pool; anything else is forked as before.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "instance/log.h"
#include "manager/mgr.h"
#include "manager/pool.h"
#include "manager/registry.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct pool_ent {
	char name[32];
	uint32_t seq;
	bool spawn_pending;
	bool parked;
	bool dead; /* dropped or claimed: freed after the current batch */
	pid_t pid;
	int pidfd, ready;
	struct mgr_watch pid_w, ready_w;
	struct pool_ent *next_dead;
};

static struct pool_ent *pool_graveyard;

/* Remove every entry below STATE_ROOT/.pool, or just `only`. */
static void pool_rmdirs(const struct mgr *m, const char *only)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int fd;

	if (snprintf(path, sizeof(path), "%s/" POOL_DIR, m->state_root) >= (int)sizeof(path))
		return;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (only) {
		reg_rmtree(fd, only);
		close(fd);
		return;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			reg_rmtree(dirfd(d), de->d_name);
	closedir(d);
}

int pool_init(struct mgr *m, unsigned want)
{
	char path[PATH_MAX];
	struct stat st;

	m->pool.want = want > POOL_MAX ? POOL_MAX : want;
	m->pool.ready = false;
	if (snprintf(path, sizeof(path), "%s/" POOL_DIR, m->state_root) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	/* Pool processes of an earlier vtpmd left when it closed their sockets;
	 * their TPMs were never handed out. */
	pool_rmdirs(m, NULL);
	m->pool.ents = calloc(m->pool.want ? m->pool.want : 1, sizeof(*m->pool.ents));
	if (!m->pool.ents)
		return -ENOMEM;
	m->pool.ready = true;
	return 0;
}

static void pool_unlink(struct mgr *m, struct pool_ent *e)
{
	for (size_t i = 0; i < m->pool.n; i++) {
		if (m->pool.ents[i] == e) {
			m->pool.ents[i] = m->pool.ents[--m->pool.n];
			break;
		}
	}
	e->dead = true;
	e->next_dead = pool_graveyard;
	pool_graveyard = e;
}

static void pool_close_fds(struct mgr *m, struct pool_ent *e)
{
	if (e->ready >= 0) {
		mgr_watch_del(m, e->ready);
		close(e->ready);
		e->ready = -1;
	}
	if (e->pidfd >= 0) {
		mgr_watch_del(m, e->pidfd);
		close(e->pidfd);
		e->pidfd = -1;
	}
}

static void pool_failed(struct mgr *m)
{
	uint64_t delay = POOL_RETRY_MIN_MS;

	m->pool.fails++;
	for (unsigned i = 1; i < m->pool.fails && delay < POOL_RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > POOL_RETRY_MAX_MS)
		delay = POOL_RETRY_MAX_MS;
	m->pool.retry_at = mgr_now_ms() + delay;
}

/* Drop an entry: kill and reap its process, remove its directory. */
static void pool_drop(struct mgr *m, struct pool_ent *e, bool failed)
{
	siginfo_t si;

	if (e->dead)
		return;
	if (e->pidfd >= 0) {
		pidfd_send_signal(e->pidfd, SIGKILL, NULL, 0);
		waitid((idtype_t)P_PIDFD, (id_t)e->pidfd, &si, WEXITED);
	}
	pool_close_fds(m, e);
	pool_rmdirs(m, e->name);
	pool_unlink(m, e);
	if (failed)
		pool_failed(m);
}

void pool_fill(struct mgr *m)
{
	struct mgr_pool *p = &m->pool;
	char dir[PATH_MAX], log[PATH_MAX + 8];
	const char *argv[2] = { "pool", NULL };
	struct spawn_req req;

	uint64_t now = mgr_now_ms();

	while (p->ready && p->n < p->want && m->sp.fd >= 0 && now >= p->retry_at &&
	       now >= p->quiet_until) {
		struct pool_ent *e = calloc(1, sizeof(*e));
		int r;

		if (!e)
			return;
		e->pidfd = e->ready = -1;
		/* the pid keeps names of an earlier vtpmd's stragglers apart */
		snprintf(e->name, sizeof(e->name), "%d.%u", (int)getpid(), ++p->serial);
		if (snprintf(dir, sizeof(dir), "%s/" POOL_DIR "/%s", m->state_root, e->name) >=
		    (int)sizeof(dir)) {
			free(e);
			p->ready = false;
			return;
		}
		snprintf(log, sizeof(log), "%s/log", dir);
		memset(&req, 0, sizeof(req));
		req.pool = true;
		req.id = e->name;
		req.dir = dir;
		req.log = log;
		req.comm = "vtpmd-pool";
		req.argc = 1;
		req.argv[0] = argv[0];
		if (++m->spawn_seq == 0)
			m->spawn_seq = 1;
		req.seq = m->spawn_seq;
		r = spawn_send(&m->sp, &req);
		if (r < 0) {
			log_printf("pool: cannot reach the spawner: %s\n", strerror(-r));
			free(e);
			pool_failed(m);
			return;
		}
		e->seq = req.seq;
		e->spawn_pending = true;
		p->ents[p->n++] = e;
	}
}

bool pool_spawn_reply(struct mgr *m, const struct spawn_rep *rep, int pidfd, int ready)
{
	struct pool_ent *e = NULL;

	for (size_t i = 0; i < m->pool.n; i++)
		if (m->pool.ents[i]->spawn_pending && m->pool.ents[i]->seq == rep->seq)
			e = m->pool.ents[i];
	if (!e)
		return false;
	e->spawn_pending = false;
	if (rep->err < 0 || rep->pid <= 0) {
		log_printf("pool: could not fork a pool process: %s\n",
			   strerror(rep->err < 0 ? -rep->err : EIO));
		if (pidfd >= 0)
			close(pidfd);
		if (ready >= 0)
			close(ready);
		pool_drop(m, e, true);
		return true;
	}
	e->pid = rep->pid;
	e->pidfd = pidfd >= 0 ? pidfd : pidfd_open(rep->pid, 0);
	e->ready = ready;
	e->pid_w.kind = MGR_W_POOL_PID;
	e->pid_w.obj = e;
	e->ready_w.kind = MGR_W_POOL_READY;
	e->ready_w.obj = e;
	if (e->pidfd < 0 || e->ready < 0 || mgr_watch_add(m, e->pidfd, EPOLLIN, &e->pid_w) < 0 ||
	    mgr_watch_add(m, e->ready, EPOLLIN, &e->ready_w) < 0) {
		if (e->pidfd < 0) {
			/* still our child: it cannot be recycled before we reap it */
			kill(rep->pid, SIGKILL);
			waitpid(rep->pid, NULL, 0);
		}
		pool_drop(m, e, true);
	}
	return true;
}

void pool_ready_event(struct mgr *m, struct pool_ent *e)
{
	char buf[16];
	ssize_t n;

	if (e->dead || e->ready < 0)
		return;
	n = recv(e->ready, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == (ssize_t)strlen(SPAWN_POOL_PARKED) &&
	    memcmp(buf, SPAWN_POOL_PARKED, (size_t)n) == 0 && !e->parked) {
		e->parked = true;
		m->pool.fails = 0;
		return;
	}
	if (n == 0 || (n < 0 && errno == ECONNRESET)) {
		/* it is exiting: its pidfd tells how, in a moment */
		mgr_watch_del(m, e->ready);
		close(e->ready);
		e->ready = -1;
		return;
	}
	log_printf("pool: process %d sent something other than \"%s\"; dropped\n", (int)e->pid,
		   SPAWN_POOL_PARKED);
	pool_drop(m, e, true);
}

void pool_child_event(struct mgr *m, struct pool_ent *e)
{
	siginfo_t si;

	if (e->dead || e->pidfd < 0)
		return;
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)e->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return;
	log_printf("pool: process %d %s %d before it was claimed (see %s/%s/%s/log)\n",
		   (int)e->pid, si.si_code == CLD_EXITED ? "exited with status" : "was killed by signal",
		   si.si_status, m->state_root, POOL_DIR, e->name);
	/* reaped already: pool_drop must not wait for it again */
	mgr_watch_del(m, e->pidfd);
	close(e->pidfd);
	e->pidfd = -1;
	pool_drop(m, e, true);
}

void pool_spawner_lost(struct mgr *m)
{
	for (size_t i = 0; i < m->pool.n;) {
		struct pool_ent *e = m->pool.ents[i];

		if (e->spawn_pending)
			pool_drop(m, e, false); /* not its fault: refill at once */
		else
			i++;
	}
}

int pool_claim(struct mgr *m, const char *id, struct pool_claim *c)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct pool_ent *e = NULL;

	c->pid = 0;
	c->pidfd = c->ready = -1;
	for (size_t i = 0; i < m->pool.n && !e; i++)
		if (m->pool.ents[i]->parked)
			e = m->pool.ents[i];
	if (!e)
		return -EAGAIN;
	if (snprintf(from, sizeof(from), "%s/" POOL_DIR "/%s", m->state_root, e->name) >=
		    (int)sizeof(from) ||
	    reg_path(to, sizeof(to), m->state_root, id, NULL) < 0)
		return -ENAMETOOLONG;
	/* never over an existing entry (a kept state after destroy) */
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0) {
		int err = errno;

		/* A file system without RENAME_NOREPLACE (or a state root split
		 * over mounts) would refuse every claim: stop making entries. */
		if (err == EINVAL || err == ENOSYS || err == EXDEV || err == EOPNOTSUPP) {
			log_printf("pool: cannot move its entries into %s (%s); pool turned off\n",
				   m->state_root, strerror(err));
			while (m->pool.n)
				pool_drop(m, m->pool.ents[0], false);
			m->pool.ready = false;
			m->pool.want = 0;
		}
		return -err;
	}
	mgr_watch_del(m, e->pidfd);
	mgr_watch_del(m, e->ready);
	c->pid = e->pid;
	c->pidfd = e->pidfd;
	c->ready = e->ready;
	e->pidfd = e->ready = -1;
	pool_unlink(m, e);
	return 0;
}

int pool_send_claim(const struct pool_claim *c, const struct spawn_req *req)
{
	static uint8_t buf[SPAWN_MAX_MSG];
	ssize_t n;

	if (c->pid <= 0 || c->ready < 0)
		return -EINVAL;
	n = spawn_encode(req, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	/* the socket is empty (the process only reads from it now): no wait */
	if (send(c->ready, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		return -errno;
	return 0;
}

void pool_discard(struct pool_claim *c)
{
	siginfo_t si;

	if (c->pidfd >= 0) {
		pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0);
		waitid((idtype_t)P_PIDFD, (id_t)c->pidfd, &si, WEXITED);
		close(c->pidfd);
	}
	if (c->ready >= 0)
		close(c->ready);
	c->pid = 0;
	c->pidfd = c->ready = -1;
}

void pool_busy(struct mgr *m)
{
	m->pool.quiet_until = mgr_now_ms() + POOL_QUIET_MS;
}

uint64_t pool_next_deadline(const struct mgr *m)
{
	const struct mgr_pool *p = &m->pool;
	uint64_t d = p->retry_at > p->quiet_until ? p->retry_at : p->quiet_until;

	/* pool_fill runs after every batch of events: only a wait needs a timer */
	if (!p->ready || p->n >= p->want || m->sp.fd < 0 || d <= mgr_now_ms())
		return 0;
	return d;
}

size_t pool_parked(const struct mgr *m)
{
	size_t k = 0;

	for (size_t i = 0; i < m->pool.n; i++)
		k += m->pool.ents[i]->parked;
	return k;
}

void pool_reap(struct mgr *m)
{
	(void)m;
	while (pool_graveyard) {
		struct pool_ent *e = pool_graveyard;

		pool_graveyard = e->next_dead;
		free(e);
	}
}

void pool_stop(struct mgr *m)
{
	/* Their TPMs were never handed out: nothing to save, so no need to
	 * wait for them to see EOF. */
	while (m->pool.n)
		pool_drop(m, m->pool.ents[0], false);
	pool_reap(m);
	free(m->pool.ents);
	m->pool.ents = NULL;
	m->pool.ready = false;
}
