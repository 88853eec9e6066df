/* Fleet mode: many instances, one connection each, as a host running many
 * VMs would see them. Launch latency, aggregate throughput, memory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

#define FLEET_DEFAULT_SECONDS 5.0
#define FLEET_QUICK_SECONDS 0.3
#define FLEET_STALL_NS 10000000000ull	/* no response at all for 10 s */
#define FLEET_FD_SLACK 64		/* fds the bench needs besides connections */
#define FLEET_RSP_MAX 64		/* a GetRandom(32) response is 44 bytes */

struct conn {
	uint64_t t_send;
	size_t got;
	uint8_t buf[FLEET_RSP_MAX];
	bool outstanding;
};

/* Raise the soft fd limit to the hard one first; only then give up. */
static int fleet_rlimit(int n)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)n + FLEET_FD_SLACK;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -errno;
	}
	if (rl.rlim_cur < need) {
		fprintf(stderr, "vtpm-bench: --fleet %d needs %llu file descriptors but "
			"RLIMIT_NOFILE is %llu (hard limit %llu); raise it (ulimit -Hn / "
			"LimitNOFILE) or use fewer instances\n", n, (unsigned long long)need,
			(unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
		return -EMFILE;
	}
	return 0;
}

static int send_cmd(struct server *s, struct conn *c, const struct tpm2_cmd *cmd)
{
	ssize_t n;

	c->t_send = now_ns();
	c->got = 0;
	do
		n = write(s->data_fd, cmd->b, cmd->len);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)cmd->len)
		return n < 0 ? -errno : -EIO;	/* 12 bytes into an idle socket: all or nothing */
	c->outstanding = true;
	return 0;
}

/* Reads what is there; 1 when a whole response is in, 0 for more to come. */
static int recv_rsp(struct server *s, struct conn *c)
{
	ssize_t n;
	uint32_t size;

	n = read(s->data_fd, c->buf + c->got, sizeof(c->buf) - c->got);
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->got += (size_t)n;
	if (c->got < 10)
		return 0;
	size = tpm2_be32(c->buf + 2);
	if (size < 10 || size > sizeof(c->buf) || c->got > size)
		return -EBADMSG;
	return c->got == size;
}

static void fleet_fail(const char *impl, const struct tpm2_cmd *cmd, const struct conn *c,
		       int idx, const char *why)
{
	struct failure f;

	memset(&f, 0, sizeof(f));
	f.op = -1;
	snprintf(f.why, sizeof(f.why), "fleet instance %d: %s", idx, why);
	f.cmdlen = cmd->len;
	memcpy(f.cmd, cmd->b, cmd->len);
	f.rsplen = c->got;
	memcpy(f.rsp, c->buf, c->got);
	failure_print(stderr, impl, &f);
}

/* Starts one instance and times fork -> first validated GetRandom answer. */
static int fleet_launch_one(const struct opts *o, struct impl *im, struct server *s,
			    const struct tpm2_cmd *gr, uint64_t *launch_ns)
{
	uint8_t rsp[TPM2_MAX_RSP];
	char why[256];
	size_t rlen = 0;
	int rc;

	rc = server_start(s, o->state_base);
	if (!rc)
		rc = server_connect(s, 10000, 10000);
	if (!rc)
		rc = server_xfer(&s->data_fd, gr->b, gr->len, rsp, sizeof(rsp), &rlen);
	if (!rc)
		rc = tpm2_check(rsp, rlen, EXP_RANDOM, BENCH_RANDOM_BYTES, why, sizeof(why));
	*launch_ns = now_ns() - s->t_fork_ns;
	if (rc == -EPROTO) {
		struct conn c = { 0 };

		c.got = rlen < sizeof(c.buf) ? rlen : sizeof(c.buf);
		memcpy(c.buf, rsp, c.got);
		fleet_fail(im->name, gr, &c, -1, why);
	} else if (rc) {
		fprintf(stderr, "vtpm-bench: %s fleet instance did not come up: %s\n", im->name,
			strerror(-rc));
		server_log_tail(s);
	}
	if (!rc && o->cpu >= 0)
		pin_process(s->pid, o->cpu);
	if (!rc && fcntl(s->data_fd, F_SETFL, O_NONBLOCK) < 0)
		rc = -errno;
	return rc;
}

/* Closed loop over all connections: whenever a response is complete and
 * valid, the next command goes out on that connection. */
static int fleet_load(const struct opts *o, struct impl *im, struct server *srv,
		      struct conn *cn, int n, const struct tpm2_cmd *gr, double *tput)
{
	struct fleet_result *fr = &im->fleet;
	double secs = o->duration > 0 ? o->duration :
		      (o->quick ? FLEET_QUICK_SECONDS : FLEET_DEFAULT_SECONDS);
	struct epoll_event ev, evs[256];
	uint64_t t_start, t_end, last_progress, completed = 0, t, cpu0 = 0, cpu1 = 0;
	int ep, outstanding = 0, rc = 0;
	size_t lat0 = fr->lat.n;
	char why[256];

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, srv[i].data_fd, &ev) < 0) {
			rc = -errno;
			goto out;
		}
	}
	for (int i = 0; i < n; i++)
		cpu0 += proc_cpu_ns(srv[i].pid);
	t_start = now_ns();
	t_end = t_start + (uint64_t)(secs * 1e9);
	last_progress = t_start;
	for (int i = 0; i < n; i++) {
		rc = send_cmd(&srv[i], &cn[i], gr);
		if (rc) {
			fleet_fail(im->name, gr, &cn[i], i, strerror(-rc));
			goto out;
		}
		outstanding++;
	}
	while (outstanding > 0) {
		int nev = epoll_wait(ep, evs, 256, 1000);

		t = now_ns();
		if (nev < 0 && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		if (nev <= 0) {
			if (t - last_progress > FLEET_STALL_NS) {
				fprintf(stderr, "vtpm-bench: %s fleet: %d commands unanswered for 10 s\n",
					im->name, outstanding);
				rc = -ETIMEDOUT;
				goto out;
			}
			continue;
		}
		for (int e = 0; e < nev; e++) {
			int i = (int)evs[e].data.u32;
			struct conn *c = &cn[i];
			uint64_t lat;

			if (!c->outstanding)
				continue;
			rc = recv_rsp(&srv[i], c);
			if (rc == 0)
				continue;
			if (rc < 0) {
				fleet_fail(im->name, gr, c, i, strerror(-rc));
				goto out;
			}
			t = now_ns();
			lat = t - c->t_send;
			c->outstanding = false;
			outstanding--;
			rc = tpm2_check(c->buf, c->got, EXP_RANDOM, BENCH_RANDOM_BYTES, why, sizeof(why));
			if (rc) {
				fleet_fail(im->name, gr, c, i, why);
				goto out;
			}
			if (series_add(&fr->lat, &lat, 1) < 0) {
				rc = -ENOMEM;
				goto out;
			}
			last_progress = t;
			if (t < t_end)
				completed++;
			if (t < t_end && !bench_stop) {
				rc = send_cmd(&srv[i], c, gr);
				if (rc) {
					fleet_fail(im->name, gr, c, i, strerror(-rc));
					goto out;
				}
				outstanding++;
			}
		}
	}
	t = now_ns();
	secs = (double)((t < t_end ? t : t_end) - t_start) / 1e9;
	*tput = secs > 0 ? (double)completed / secs : 0;
	/* All commands of the phase, drained ones included, share the CPU. */
	for (int i = 0; i < n; i++)
		cpu1 += proc_cpu_ns(srv[i].pid);
	if (cpu1 > cpu0) {
		fr->cpu_ns += cpu1 - cpu0;
		fr->cpu_cmds += fr->lat.n - lat0;
	}
out:
	close(ep);
	return rc;
}

static void fleet_memory(struct fleet_result *fr, struct server *srv, int n)
{
	long rss, pss;

	for (int i = 0; i < n; i++) {
		if (proc_mem_kb(srv[i].pid, &rss, &pss) < 0)
			continue;
		fr->rss_sum_kb += rss;
		fr->pss_sum_kb += pss;
		if (rss > fr->rss_max_kb)
			fr->rss_max_kb = rss;
		if (pss > fr->pss_max_kb)
			fr->pss_max_kb = pss;
		fr->mem_samples++;
	}
}

int fleet_run(const struct opts *o, struct impl *im)
{
	struct fleet_result *fr = &im->fleet;
	struct tpm2_cmd gr;
	struct server *srv = NULL;
	struct conn *cn = NULL;
	uint64_t *launch = NULL;
	int n = o->fleet, started = 0, rc;
	double tput = 0;

	rc = fleet_rlimit(n);
	if (rc)
		return rc;
	rc = tpm2_build_getrandom(&gr, BENCH_RANDOM_BYTES);
	if (rc)
		return rc;
	srv = calloc((size_t)n, sizeof(*srv));
	cn = calloc((size_t)n, sizeof(*cn));
	launch = calloc((size_t)n, sizeof(*launch));
	if (!srv || !cn || !launch) {
		rc = -ENOMEM;
		goto out;
	}
	fprintf(stderr, "vtpm-bench: %s fleet round %d: launching %d instances\n", im->name,
		fr->rounds + 1, n);
	for (int i = 0; i < n && !bench_stop; i++) {
		srv[i] = im->srv;
		srv[i].tcp = false;
		srv[i].data_fd = -1;
		rc = fleet_launch_one(o, im, &srv[i], &gr, &launch[i]);
		started = i + 1;	/* a failed start still needs reaping */
		if (rc)
			goto out;
	}
	if (bench_stop) {
		rc = -EINTR;
		goto out;
	}
	if (series_add(&fr->launch, launch, (size_t)n) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	rc = fleet_load(o, im, srv, cn, n, &gr, &tput);
	if (rc)
		goto out;
	fleet_memory(fr, srv, n);
	fr->instances = n;
	fr->tput_sum += tput;
	if (!fr->rounds || tput < fr->tput_min)
		fr->tput_min = tput;
	if (tput > fr->tput_max)
		fr->tput_max = tput;
	fr->rounds++;
out:
	if (rc)
		fr->failed = true;
	if (srv) {
		for (int i = 0; i < started; i++)
			if (server_request_shutdown(&srv[i]) < 0) {
				fprintf(stderr, "vtpm-bench: %s fleet instance %d: CMD_SHUTDOWN failed\n",
					im->name, i);
				if (!rc)
					rc = -EPROTO;
			}
		if (servers_reap(srv, started, 5000) > 0 && !rc)
			rc = -EPROTO;
	}
	free(srv);
	free(cn);
	free(launch);
	return rc;
}
