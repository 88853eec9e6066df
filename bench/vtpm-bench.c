/* vtpm-bench: load generator comparing swtpm-compatible TPM 2.0 emulators.
 *
 * Each implementation is started by the bench itself with a private state
 * dir, fed identical hand-built TPM 2 commands, and every response is
 * checked. In A/B mode the implementations are measured interleaved, in
 * rounds of K ops each, with the client and all servers pinned to one CPU:
 * on a small VM the scheduler and CPU frequency drift more between two
 * back-to-back runs than the differences being measured, and a client and
 * server on different vCPUs pay a cross-CPU wake-up on every command. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

volatile int bench_stop;

/* Default op counts and interleaving round sizes, chosen so a full run takes
 * well under a minute per implementation on the reference VM. */
static const long default_ops[OP_COUNT] = {
	[OP_GETRANDOM] = 20000, [OP_PCREXTEND] = 20000, [OP_NVINCREMENT] = 2000,
	[OP_CREATEPRIMARY] = 500, [OP_SIGN] = 500, [OP_BOOTMIX] = 1000,
};
static const long default_round[OP_COUNT] = {
	[OP_GETRANDOM] = 500, [OP_PCREXTEND] = 500, [OP_NVINCREMENT] = 50,
	[OP_CREATEPRIMARY] = 20, [OP_SIGN] = 20, [OP_BOOTMIX] = 20,
};
#define QUICK_OPS 10
#define QUICK_ROUND 5
#define MAX_SERIES_OPS 10000000L

static void on_signal(int sig)
{
	(void)sig;
	bench_stop = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vtpm-bench --impl NAME=PATH [--impl NAME=PATH | --impl floor]... [options]\n"
		"\n"
		"  --impl NAME=PATH     swtpm-compatible binary to start (repeat; the first is the\n"
		"                       baseline A of the ratio table); NAME: [A-Za-z0-9._-]\n"
		"  --impl floor         libtpms in-process, no transport (forked child)\n"
		"  --impl NAME=vtpmd:PATH  fleet mode only: one vtpmd (binary PATH) creates\n"
		"                       the instances through its management socket\n"
		"  --env NAME:VAR=VAL   extra environment for implementation NAME (repeat)\n"
		"  --transport unix|tcp data channel transport (default unix)\n"
		"  --cpu N              pin the bench and all servers to CPU N (default 0 in A/B\n"
		"                       mode; fleet mode pins only when --cpu is given)\n"
		"  --no-pin             do not pin\n"
		"  --ops N              ops per op type and implementation (default: per op)\n"
		"  --round K            ops per implementation per interleaving round\n"
		"  --warmup N           unrecorded ops per op type and implementation first\n"
		"  --duration S         A/B: run each op type for S seconds instead of --ops;\n"
		"                       fleet: throughput phase length (default 5)\n"
		"  --ops-list LIST      comma list of getrandom,pcrextend,nvincrement,\n"
		"                       createprimary,sign,bootmix (default: all)\n"
		"  --quick              tiny counts, for smoke tests\n"
		"  --fleet N            fleet mode: N instances per implementation (N <= %d)\n"
		"  --fleet-rounds R     fleet rounds, order rotating (default 2, --quick 1)\n"
		"  --fleet-window W|all launch at most W instances at a time (default 1: one\n"
		"                       after another; all: every launch at once)\n"
		"  --fleet-gap MS       start launches at least MS ms apart (default 0): the\n"
		"                       latency of a create that does not queue behind others\n"
		"  --md FILE            also write the markdown report to FILE\n"
		"  --csv FILE           raw latencies: impl,op,seq,latency_ns\n"
		"  --plot FILE.png      latency CDFs per op via gnuplot\n"
		"  --statedir DIR       where the per-instance state dirs are created\n"
		"                       (default $TMPDIR or /tmp)\n"
		"  --sockdir DIR        create the unix sockets under DIR instead of next to\n"
		"                       the state (e.g. tmpfs, as libvirt's /run)\n"
		"exit status: 0 ok, 1 a response failed validation or a server misbehaved,\n"
		"             2 usage or set-up error\n",
		BENCH_MAX_FLEET);
}

static int valid_name(const char *n, size_t len)
{
	if (len == 0 || len >= sizeof(((struct impl *)0)->name))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = n[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

static int parse_impl(struct opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct impl *im;
	size_t nl;

	if (o->n_impls >= BENCH_MAX_IMPLS) {
		fprintf(stderr, "vtpm-bench: at most %d implementations\n", BENCH_MAX_IMPLS);
		return -E2BIG;
	}
	im = &o->impls[o->n_impls];
	if (!eq && strcmp(arg, "floor") == 0) {
		snprintf(im->name, sizeof(im->name), "floor");
		im->is_floor = true;
	} else {
		nl = eq ? (size_t)(eq - arg) : 0;
		if (!eq || !valid_name(arg, nl) || !eq[1]) {
			fprintf(stderr, "vtpm-bench: --impl wants NAME=PATH or floor, got '%s'\n", arg);
			return -EINVAL;
		}
		memcpy(im->name, arg, nl);
		im->name[nl] = '\0';
		im->path = eq + 1;
		if (strncmp(im->path, "vtpmd:", 6) == 0) {
			im->is_vtpmd = true;
			im->path += 6;
		}
		if (access(im->path, X_OK) < 0) {
			fprintf(stderr, "vtpm-bench: %s: %s\n", im->path, strerror(errno));
			return -errno;
		}
	}
	for (int i = 0; i < o->n_impls; i++)
		if (strcmp(o->impls[i].name, im->name) == 0) {
			fprintf(stderr, "vtpm-bench: implementation name '%s' used twice\n", im->name);
			return -EEXIST;
		}
	im->srv.name = im->name;
	im->srv.path = im->path;
	im->srv.data_fd = -1;
	im->fl.fd = -1;
	o->n_impls++;
	return 0;
}

static int parse_env(struct opts *o, const char *arg)
{
	const char *colon = strchr(arg, ':');

	if (!colon || !strchr(colon, '=')) {
		fprintf(stderr, "vtpm-bench: --env wants NAME:VAR=VALUE, got '%s'\n", arg);
		return -EINVAL;
	}
	for (int i = 0; i < o->n_impls; i++) {
		struct server *s = &o->impls[i].srv;

		if (strlen(o->impls[i].name) != (size_t)(colon - arg) ||
		    strncmp(o->impls[i].name, arg, (size_t)(colon - arg)) != 0)
			continue;
		if (s->n_env >= BENCH_MAX_ENV)
			return -E2BIG;
		s->env[s->n_env++] = colon + 1;
		return 0;
	}
	fprintf(stderr, "vtpm-bench: --env names '%.*s', not an --impl given before it\n",
		(int)(colon - arg), arg);
	return -ENOENT;
}

static int parse_ops_list(struct opts *o, const char *arg)
{
	char *copy = strdup(arg), *tok, *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	o->ops_mask = 0;
	o->n_order = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int k;

		for (k = 0; k < OP_COUNT; k++)
			if (strcmp(tok, op_names[k]) == 0)
				break;
		if (k == OP_COUNT) {
			fprintf(stderr, "vtpm-bench: unknown op '%s'\n", tok);
			rc = -EINVAL;
			goto out;
		}
		if (!(o->ops_mask & (1u << k))) {
			o->ops_mask |= 1u << k;
			o->order[o->n_order++] = (enum op_id)k;
		}
	}
	if (!o->n_order) {
		fprintf(stderr, "vtpm-bench: --ops-list is empty\n");
		rc = -EINVAL;
	}
out:
	free(copy);
	return rc;
}

static int parse_long(const char *arg, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || *end || end == arg || v < min || v > max) {
		fprintf(stderr, "vtpm-bench: '%s' is not a number in [%ld, %ld]\n", arg, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
	enum { O_IMPL = 256, O_ENV, O_TRANSPORT, O_CPU, O_NOPIN, O_OPS, O_ROUND, O_WARMUP,
	       O_DURATION, O_OPSLIST, O_QUICK, O_FLEET, O_FLEET_ROUNDS, O_FLEET_WINDOW, O_FLEET_GAP, O_MD, O_CSV,
	       O_PLOT, O_STATEDIR, O_SOCKDIR, O_HELP };
	static const struct option lo[] = {
		{ "impl", required_argument, NULL, O_IMPL },
		{ "env", required_argument, NULL, O_ENV },
		{ "transport", required_argument, NULL, O_TRANSPORT },
		{ "cpu", required_argument, NULL, O_CPU },
		{ "no-pin", no_argument, NULL, O_NOPIN },
		{ "ops", required_argument, NULL, O_OPS },
		{ "round", required_argument, NULL, O_ROUND },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "ops-list", required_argument, NULL, O_OPSLIST },
		{ "quick", no_argument, NULL, O_QUICK },
		{ "fleet", required_argument, NULL, O_FLEET },
		{ "fleet-rounds", required_argument, NULL, O_FLEET_ROUNDS },
		{ "fleet-window", required_argument, NULL, O_FLEET_WINDOW },
		{ "fleet-gap", required_argument, NULL, O_FLEET_GAP },
		{ "md", required_argument, NULL, O_MD },
		{ "csv", required_argument, NULL, O_CSV },
		{ "plot", required_argument, NULL, O_PLOT },
		{ "statedir", required_argument, NULL, O_STATEDIR },
		{ "sockdir", required_argument, NULL, O_SOCKDIR },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool no_pin = false;
	long v;
	int c, rc = 0;

	o->cpu = 0;
	o->warmup = -1;
	o->fleet_window = 1;
	o->state_base = getenv("TMPDIR");
	if (!o->state_base || !*o->state_base)
		o->state_base = "/tmp";
	for (int k = 0; k < OP_COUNT; k++) {
		o->order[k] = (enum op_id)k;
		o->ops_mask |= 1u << k;
	}
	o->n_order = OP_COUNT;

	while (!rc && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_IMPL:
			rc = parse_impl(o, optarg);
			break;
		case O_ENV:
			rc = parse_env(o, optarg);
			break;
		case O_TRANSPORT:
			if (strcmp(optarg, "unix") == 0)
				o->tcp = false;
			else if (strcmp(optarg, "tcp") == 0)
				o->tcp = true;
			else {
				fprintf(stderr, "vtpm-bench: --transport unix|tcp\n");
				rc = -EINVAL;
			}
			break;
		case O_CPU:
			rc = parse_long(optarg, 0, CPU_SETSIZE - 1, &v);
			o->cpu = (int)v;
			o->cpu_given = true;
			break;
		case O_NOPIN:
			no_pin = true;
			break;
		case O_OPS:
			rc = parse_long(optarg, 1, MAX_SERIES_OPS, &o->ops);
			break;
		case O_ROUND:
			rc = parse_long(optarg, 1, 1000000, &o->round);
			break;
		case O_WARMUP:
			rc = parse_long(optarg, 0, 1000000, &o->warmup);
			break;
		case O_DURATION: {
			char *end;

			o->duration = strtod(optarg, &end);
			if (*end || end == optarg || !(o->duration > 0 && o->duration <= 3600)) {
				fprintf(stderr, "vtpm-bench: --duration wants seconds in (0, 3600]\n");
				rc = -EINVAL;
			}
			break;
		}
		case O_OPSLIST:
			rc = parse_ops_list(o, optarg);
			break;
		case O_QUICK:
			o->quick = true;
			break;
		case O_FLEET:
			rc = parse_long(optarg, 1, BENCH_MAX_FLEET, &v);
			o->fleet = (int)v;
			break;
		case O_FLEET_ROUNDS:
			rc = parse_long(optarg, 1, 100, &o->fleet_rounds);
			break;
		case O_FLEET_WINDOW:
			if (strcmp(optarg, "all") == 0) {
				o->fleet_window = 0;
			} else {
				rc = parse_long(optarg, 1, BENCH_MAX_FLEET, &v);
				o->fleet_window = (int)v;
			}
			break;
		case O_FLEET_GAP:
			rc = parse_long(optarg, 0, 10000, &o->fleet_gap_ms);
			break;
		case O_MD:
			o->md_path = optarg;
			break;
		case O_CSV:
			o->csv_path = optarg;
			break;
		case O_PLOT:
			o->plot_path = optarg;
			break;
		case O_STATEDIR:
			o->state_base = optarg;
			break;
		case O_SOCKDIR:
			o->sock_base = optarg;
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (rc)
		return rc;
	if (optind < argc) {
		fprintf(stderr, "vtpm-bench: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (o->n_impls == 0) {
		usage(stderr);
		return -EINVAL;
	}
	if (no_pin)
		o->cpu = -1;
	else if (o->fleet && !o->cpu_given)
		o->cpu = -1;	/* a fleet is about aggregate throughput on all CPUs */
	if (o->fleet) {
		for (int i = 0; i < o->n_impls; i++)
			if (o->impls[i].is_floor) {
				fprintf(stderr, "vtpm-bench: the floor has no instances to launch; "
					"drop --impl floor in fleet mode\n");
				return -EINVAL;
			}
		if (o->tcp) {
			fprintf(stderr, "vtpm-bench: fleet mode uses unix sockets only\n");
			return -EINVAL;
		}
	} else {
		for (int i = 0; i < o->n_impls; i++)
			if (o->impls[i].is_vtpmd) {
				fprintf(stderr, "vtpm-bench: --impl %s=vtpmd:... works in fleet mode "
					"only (--fleet N)\n", o->impls[i].name);
				return -EINVAL;
			}
	}
	return 0;
}

static long op_count(const struct opts *o, enum op_id op)
{
	if (o->ops)
		return o->ops;
	return o->quick ? QUICK_OPS : default_ops[op];
}

static long op_round(const struct opts *o, enum op_id op)
{
	long r;

	if (o->round)
		return o->round;
	r = o->quick ? QUICK_ROUND : default_round[op];
	/* Keep at least ~10 rounds so slow drift averages out between impls. */
	if (!o->duration && op_count(o, op) / 10 < r)
		r = op_count(o, op) / 10 > 0 ? op_count(o, op) / 10 : 1;
	return r;
}

static long op_warmup(const struct opts *o, enum op_id op)
{
	long w;

	if (o->warmup >= 0)
		return o->warmup;
	if (o->quick)
		return 1;
	w = op_count(o, op) / 10;
	return w > 200 ? 200 : w;
}

static int impl_start(const struct opts *o, struct impl *im)
{
	struct failure f;
	int rc;

	if (im->is_floor) {
		rc = floor_start(&im->fl, o->ops_mask, &f);
		if (rc) {
			failure_print(stderr, im->name, &f);
			im->dead = true;
		}
		return rc;
	}
	im->srv.tcp = o->tcp;
	rc = server_launch(&im->srv, o->state_base, o->sock_base, 10000);
	if (rc == -ECHILD) {
		fprintf(stderr, "vtpm-bench: %s (%s) exited before accepting a connection\n",
			im->name, im->path);
		server_log_tail(&im->srv);
		im->dead = true;
		return rc;
	}
	if (rc) {
		fprintf(stderr, "vtpm-bench: %s (%s) did not come up: %s%s\n", im->name, im->path,
			strerror(-rc), start_hint(rc));
		server_log_tail(&im->srv);
		im->dead = true;
		return rc;
	}
	if (o->cpu >= 0 && pin_process(im->srv.pid, o->cpu) < 0)
		fprintf(stderr, "vtpm-bench: warning: could not pin %s\n", im->name);
	im->tgt.xfer = server_xfer;
	im->tgt.ctx = &im->srv.data_fd;
	rc = target_setup(&im->tgt, o->ops_mask, &f);
	if (rc) {
		failure_print(stderr, im->name, &f);
		server_log_tail(&im->srv);
		im->dead = true;
	}
	return rc;
}

/* Returns 1 if any server needed a signal / exited badly or a tear-down
 * command failed. */
static int impls_stop(struct opts *o)
{
	struct failure f;
	int bad = 0;

	for (int i = 0; i < o->n_impls; i++) {
		struct impl *im = &o->impls[i];

		if (im->is_floor) {
			floor_stop(&im->fl);
			continue;
		}
		if (im->srv.pid > 0 && !im->dead && target_teardown(&im->tgt, &f) < 0) {
			failure_print(stderr, im->name, &f);
			bad = 1;
		} else if (im->dead) {
			free(im->tgt.boot_rsp);
			im->tgt.boot_rsp = NULL;
		}
		if (im->srv.pid > 0 && server_request_shutdown(&im->srv) < 0) {
			fprintf(stderr, "vtpm-bench: %s: CMD_SHUTDOWN on the control channel failed\n",
				im->name);
			bad = 1;
		}
	}
	for (int i = 0; i < o->n_impls; i++)
		if (!o->impls[i].is_floor && servers_reap(&o->impls[i].srv, 1, 3000) > 0)
			bad = 1;
	return bad;
}

/* One batch of k ops on one implementation; records unless warm-up. */
static int run_batch(struct impl *im, enum op_id op, uint32_t k, uint64_t *tmp, bool record)
{
	struct series *s = &im->s[op];
	struct failure f;
	uint64_t cpu0 = 0, cpu1 = 0, cpu = 0;
	uint32_t done = 0;
	int rc;

	if (im->is_floor) {
		rc = floor_run(&im->fl, op, k, tmp, &done, &cpu, &f);
	} else {
		cpu0 = proc_cpu_ns(im->srv.pid);
		rc = target_run(&im->tgt, op, k, tmp, &done, &f);
		cpu1 = proc_cpu_ns(im->srv.pid);
		cpu = cpu1 > cpu0 ? cpu1 - cpu0 : 0;
	}
	if (record) {
		s->measured = true;
		if (series_add(s, tmp, done) < 0)
			return -ENOMEM;
		s->cpu_ns += cpu;
		s->cpu_valid = im->is_floor || (cpu0 && cpu1);
	}
	if (rc) {
		failure_print(stderr, im->name, &f);
		s->failed = true;
		s->measured = true;
		/* A validation failure leaves the connection usable; anything
		 * else (timeout, EOF, unframeable bytes) does not. */
		if (rc != -EPROTO) {
			im->dead = true;
			if (!im->is_floor)
				server_log_tail(&im->srv);
		}
	}
	return rc;
}

static int run_op(struct opts *o, enum op_id op)
{
	long target = op_count(o, op), k = op_round(o, op), warm = op_warmup(o, op);
	uint64_t t_end = o->duration > 0 ? now_ns() + (uint64_t)(o->duration * 1e9) : 0;
	long buf = k > warm ? k : warm, done = 0;
	uint64_t *tmp = calloc((size_t)(buf > 0 ? buf : 1), sizeof(*tmp));
	int failed = 0;

	if (!tmp)
		return -ENOMEM;
	for (int i = 0; i < o->n_impls && warm > 0; i++)
		if (!o->impls[i].dead && run_batch(&o->impls[i], op, (uint32_t)warm, tmp, false))
			failed = 1;
	for (long r = 0; !bench_stop; r++) {
		long n = k;
		int live = 0;

		if (t_end) {
			if ((r > 0 && now_ns() >= t_end) || done >= MAX_SERIES_OPS)
				break;
		} else {
			if (done >= target)
				break;
			if (target - done < n)
				n = target - done;
		}
		/* Rotate who goes first so no impl always follows the same one. */
		for (int j = 0; j < o->n_impls; j++) {
			struct impl *im = &o->impls[(r + j) % o->n_impls];

			if (im->dead || im->s[op].failed)
				continue;
			live++;
			if (run_batch(im, op, (uint32_t)n, tmp, true))
				failed = 1;
		}
		if (!live)
			break;
		done += n;
	}
	free(tmp);
	return failed;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct opts *o;
	int rc, status = 0;

	o = calloc(1, sizeof(*o));
	if (!o)
		return 2;
	o->argv = (const char *const *)argv;
	o->argc = argc;
	if (parse_args(o, argc, argv) < 0) {
		status = 2;
		goto out;
	}

	/* A dead server must show up as EPIPE, not kill the bench. */
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* Pin before forking: every server and the floor inherit the mask. */
	if (o->cpu >= 0 && pin_self(o->cpu) < 0) {
		fprintf(stderr, "vtpm-bench: cannot pin to CPU %d: %s\n", o->cpu, strerror(errno));
		status = 2;
		goto out;
	}
	fflush(NULL);

	if (o->fleet) {
		long rounds = o->fleet_rounds ? o->fleet_rounds : (o->quick ? 1 : 2);

		/* Fleets run one at a time (memory figures must not share pages
		 * with another fleet); rotating the order spreads the after-effects
		 * of the previous fleet (exits, state-dir removal) evenly. */
		for (long r = 0; r < rounds && !bench_stop; r++)
			for (int j = 0; j < o->n_impls && !bench_stop; j++) {
				struct impl *im = &o->impls[(r + j) % o->n_impls];

				rc = fleet_run(o, im);
				if (rc == -EMFILE) {	/* RLIMIT_NOFILE: a set-up error */
					status = 2;
					goto out;
				}
				if (rc)
					status = 1;
			}
	} else {
		for (int i = 0; i < o->n_impls; i++)
			if (impl_start(o, &o->impls[i]) < 0)
				status = 1;
		for (int k = 0; k < o->n_order && !bench_stop; k++)
			if (run_op(o, o->order[k]))
				status = 1;
		if (impls_stop(o))
			status = 1;
	}
	if (bench_stop) {
		fprintf(stderr, "vtpm-bench: interrupted\n");
		status = status ? status : 1;
	}

	if (report_write(o, o->fleet > 0) < 0)
		status = status ? status : 2;
	if (o->csv_path && report_csv(o, o->csv_path) < 0)
		status = status ? status : 2;
	if (o->plot_path && report_plot(o, o->plot_path) < 0)
		status = status ? status : 2;
out:
	if (o) {
		for (int i = 0; i < o->n_impls; i++) {
			for (int k = 0; k < OP_COUNT; k++)
				series_free(&o->impls[i].s[k]);
			series_free(&o->impls[i].fleet.lat);
			series_free(&o->impls[i].fleet.launch);
			series_free(&o->impls[i].fleet.reply);
		}
		free(o);
	}
	return status;
}
