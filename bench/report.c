/* Statistics and output: markdown table, raw CSV, gnuplot CDFs. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libtpms/tpm_library.h>

#include "bench.h"

#define PLOT_POINTS 2000	/* CDF points per curve; more adds nothing visible */
#define GNUPLOT_TIMEOUT_MS 60000

int series_add(struct series *s, const uint64_t *lat, size_t n)
{
	if (s->n + n > s->cap) {
		size_t cap = s->cap ? s->cap : 1024;
		uint64_t *p;

		while (cap < s->n + n)
			cap *= 2;
		p = realloc(s->lat, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->lat = p;
		s->cap = cap;
	}
	memcpy(s->lat + s->n, lat, n * sizeof(*lat));
	s->n += n;
	return 0;
}

void series_free(struct series *s)
{
	free(s->lat);
	memset(s, 0, sizeof(*s));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1000.0;
}

/* Sorts a copy: the series keeps measurement order for the CSV. */
void summarize(struct series *s, struct summary *out)
{
	uint64_t *v, sum = 0;

	memset(out, 0, sizeof(*out));
	out->cpu_us = -1;
	out->n = s->n;
	if (!s->n)
		return;
	v = malloc(s->n * sizeof(*v));
	if (!v) {
		out->n = 0;
		return;
	}
	memcpy(v, s->lat, s->n * sizeof(*v));
	qsort(v, s->n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < s->n; i++)
		sum += v[i];
	out->min = (double)v[0] / 1000.0;
	out->p50 = pct(v, s->n, 50);
	out->p90 = pct(v, s->n, 90);
	out->p99 = pct(v, s->n, 99);
	out->max = (double)v[s->n - 1] / 1000.0;
	out->ops_per_s = sum ? (double)s->n * 1e9 / (double)sum : 0;
	if (s->cpu_valid)
		out->cpu_us = (double)s->cpu_ns / 1000.0 / (double)s->n;
	free(v);
}

static const char *fs_name(long type)
{
	switch ((unsigned long)type) {
	case 0xEF53: return "ext4";
	case 0x01021994: return "tmpfs";
	case 0x9123683E: return "btrfs";
	case 0x58465342: return "xfs";
	case 0x794C7630: return "overlayfs";
	case 0x2FC12FC1: return "zfs";
	default: return "other";
	}
}

static void header(FILE *out, const struct opts *o, bool fleet)
{
	/* One timestamp for stdout and --md, so the two reports are identical. */
	static time_t t;
	char date[64];
	struct utsname u;
	struct statfs sf;
	uint32_t lv = TPMLIB_GetVersion();
	const char *nofsync = getenv("VTPM_NO_FSYNC");

	if (!t)
		t = time(NULL);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %Z", localtime(&t));
	uname(&u);
	fprintf(out, "## vtpm-bench %s\n\n", fleet ? "fleet" : "A/B");
	fprintf(out, "- date: %s; host: %ld CPUs online, kernel %s %s\n", date,
		sysconf(_SC_NPROCESSORS_ONLN), u.release, u.machine);
	fprintf(out, "- libtpms (linked by the bench, floor): %u.%u.%u\n", (lv >> 16) & 0xff,
		(lv >> 8) & 0xff, lv & 0xff);
	fprintf(out, "- transport: %s; pinned: %s", o->tcp ? "tcp (loopback)" : "unix socket",
		o->cpu >= 0 ? "" : "no");
	if (o->cpu >= 0)
		fprintf(out, "client and servers on CPU %d", o->cpu);
	fprintf(out, "\n- state dirs under %s (%s)", o->state_base,
		statfs(o->state_base, &sf) == 0 ? fs_name(sf.f_type) : "?");
	if (nofsync)
		fprintf(out, "; VTPM_NO_FSYNC=%s in the environment", nofsync);
	if (o->sock_base)
		fprintf(out, "\n- unix sockets under %s (%s), apart from the state (--sockdir)",
			o->sock_base, statfs(o->sock_base, &sf) == 0 ? fs_name(sf.f_type) : "?");
	if (fleet && o->fleet_gap_ms)
		fprintf(out, "\n- launches at least %ld ms apart (--fleet-gap)", o->fleet_gap_ms);
	fprintf(out, "\n- implementations:");
	for (int i = 0; i < o->n_impls; i++) {
		const struct impl *im = &o->impls[i];

		fprintf(out, "%s %s = %s%s", i ? ";" : "", im->name,
			im->is_floor ? "libtpms in-process" : im->is_vtpmd ? "instances of vtpmd " : "",
			im->is_floor ? "" : im->path);
		for (int e = 0; e < im->srv.n_env; e++)
			fprintf(out, " [%s]", im->srv.env[e]);
	}
	fprintf(out, "\n- command line:");
	for (int i = 0; i < o->argc; i++)
		fprintf(out, " %s", o->argv[i]);
	fprintf(out, "\n\n");
}

static void ab_tables(FILE *out, struct opts *o)
{
	struct summary sum[BENCH_MAX_IMPLS][OP_COUNT];
	const struct impl *a = &o->impls[0];

	fprintf(out, "| op | impl | ops | min µs | p50 µs | p90 µs | p99 µs | max µs | ops/s | "
		"server CPU/op µs |\n");
	fprintf(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int k = 0; k < o->n_order; k++) {
		enum op_id op = o->order[k];

		for (int i = 0; i < o->n_impls; i++) {
			struct impl *im = &o->impls[i];
			struct summary *m = &sum[i][op];

			summarize(&im->s[op], m);
			fprintf(out, "| %s | %s |", op_names[op], im->name);
			if (im->s[op].failed)
				fprintf(out, " FAILED after %zu |  |  |  |  |  |  |  |\n", m->n);
			else if (!m->n)
				fprintf(out, " not run |  |  |  |  |  |  |  |\n");
			else {
				fprintf(out, " %zu | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f |", m->n,
					m->min, m->p50, m->p90, m->p99, m->max, m->ops_per_s);
				if (m->cpu_us >= 0)
					fprintf(out, " %.1f |\n", m->cpu_us);
				else
					fprintf(out, " ? |\n");
			}
		}
	}
	fprintf(out, "\nbootmix = one %d-command VM-boot sequence per op; createprimary = "
		"CreatePrimary(ECC P-256) + FlushContext. CPU/op of `floor` is the in-process "
		"child's own CPU (libtpms + clock reads).\n", BOOTMIX_LEN);
	if (o->n_impls < 2)
		return;
	fprintf(out, "\n### Ratios vs %s (B/A, lower is better for B)\n\n", a->name);
	fprintf(out, "| op | B | p50 B/A | CPU/op B/A |\n|---|---|---:|---:|\n");
	for (int k = 0; k < o->n_order; k++) {
		enum op_id op = o->order[k];
		const struct summary *ma = &sum[0][op];

		for (int i = 1; i < o->n_impls; i++) {
			const struct summary *mb = &sum[i][op];
			bool ok = ma->n && mb->n && !a->s[op].failed && !o->impls[i].s[op].failed;

			fprintf(out, "| %s | %s |", op_names[op], o->impls[i].name);
			if (ok && ma->p50 > 0)
				fprintf(out, " %.3f |", mb->p50 / ma->p50);
			else
				fprintf(out, " - |");
			if (ok && ma->cpu_us > 0 && mb->cpu_us >= 0)
				fprintf(out, " %.3f |\n", mb->cpu_us / ma->cpu_us);
			else
				fprintf(out, " - |\n");
		}
	}
}

static void fleet_table(FILE *out, struct opts *o)
{
	fprintf(out, "| op | impl | instances | rounds | cmds/s (mean) | cmds/s (min-max) | "
		"server CPU/cmd µs | p50 µs | p90 µs | p99 µs | max µs | RSS avg MB | RSS max MB | "
		"PSS avg MB | PSS max MB |\n");
	fprintf(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < o->n_impls; i++) {
		struct impl *im = &o->impls[i];
		struct fleet_result *fr = &im->fleet;
		struct summary m;

		fprintf(out, "| fleet-getrandom | %s |", im->name);
		if (fr->failed || !fr->rounds) {
			fprintf(out, " FAILED |  |  |  |  |  |  |  |  |  |  |  |  |\n");
			continue;
		}
		summarize(&fr->lat, &m);
		fprintf(out, " %d | %d | %.0f | %.0f-%.0f |", fr->instances, fr->rounds,
			fr->tput_sum / fr->rounds, fr->tput_min, fr->tput_max);
		if (fr->cpu_cmds)
			fprintf(out, " %.1f |", (double)fr->cpu_ns / 1000.0 / (double)fr->cpu_cmds);
		else
			fprintf(out, " ? |");
		fprintf(out, " %.1f | %.1f | %.1f | %.1f |", m.p50, m.p90, m.p99, m.max);
		if (fr->mem_samples)
			fprintf(out, " %.2f | %.2f | %.3f | %.3f |\n",
				(double)fr->rss_sum_kb / (double)fr->mem_samples / 1024.0,
				(double)fr->rss_max_kb / 1024.0,
				(double)fr->pss_sum_kb / (double)fr->mem_samples / 1024.0,
				(double)fr->pss_max_kb / 1024.0);
		else
			fprintf(out, " ? | ? | ? | ? |\n");
	}

	fprintf(out, "\n### Launch\n\n| op | impl | instances | window | launch p50 ms | p90 ms | "
		"p99 ms | max ms | all answering s (mean) | (min-max) | instance CPU to answer ms | "
		"create reply p50 ms | reply p99 ms | vtpmd CPU/create ms | vtpmd RSS / PSS MB | "
		"spawner RSS / PSS MB | PSS/instance incl. manager MB |\n");
	fprintf(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		"---:|\n");
	for (int i = 0; i < o->n_impls; i++) {
		struct impl *im = &o->impls[i];
		struct fleet_result *fr = &im->fleet;
		struct summary l, r;

		fprintf(out, "| launch | %s |", im->name);
		if (fr->failed || !fr->rounds) {
			fprintf(out, " FAILED |  |  |  |  |  |  |  |  |  |  |  |  |  |  |\n");
			continue;
		}
		summarize(&fr->launch, &l);
		fprintf(out, " %d | %d | %.2f | %.2f | %.2f | %.2f | %.3f | %.3f-%.3f |",
			fr->instances, fr->window, l.p50 / 1000.0, l.p90 / 1000.0, l.p99 / 1000.0,
			l.max / 1000.0, fr->all_sum / fr->rounds, fr->all_min, fr->all_max);
		if (fr->start_cpu_n)
			fprintf(out, " %.2f |", (double)fr->start_cpu_ns / 1e6 / (double)fr->start_cpu_n);
		else
			fprintf(out, " ? |");
		if (!im->is_vtpmd) {
			fprintf(out, " - | - | - | - | - | %.3f |\n", fr->mem_samples ?
				(double)fr->pss_sum_kb / (double)fr->mem_samples / 1024.0 : 0.0);
			continue;
		}
		summarize(&fr->reply, &r);
		fprintf(out, " %.2f | %.2f |", r.p50 / 1000.0, r.p99 / 1000.0);
		if (fr->mgr_cpu_n)
			fprintf(out, " %.3f |", (double)fr->mgr_cpu_ns / 1e6 / (double)fr->mgr_cpu_n);
		else
			fprintf(out, " ? |");
		for (int k = 0; k < 2; k++) {
			if (fr->mgr_samples[k])
				fprintf(out, " %.2f / %.2f |",
					(double)fr->mgr_rss_kb[k] / (double)fr->mgr_samples[k] / 1024.0,
					(double)fr->mgr_pss_kb[k] / (double)fr->mgr_samples[k] / 1024.0);
			else
				fprintf(out, " ? |");
		}
		if (fr->mem_samples) {
			/* the manager's share, spread over the instances of each round */
			double mgr = 0;

			for (int k = 0; k < 2; k++)
				mgr += (double)fr->mgr_pss_kb[k];
			fprintf(out, " %.3f |\n",
				((double)fr->pss_sum_kb + mgr) / (double)fr->mem_samples / 1024.0);
		} else {
			fprintf(out, " ? |\n");
		}
	}
	fprintf(out, "\nEach round launches every implementation's fleet in turn (who goes first "
		"rotates), so order effects average out over an even number of rounds. cmds/s = "
		"GetRandom(32) over all connections, one outstanding command per connection, load "
		"generator included; server CPU/cmd = CPU of all instances over the load phases / "
		"commands; RSS/PSS from /proc/PID/smaps_rollup of each instance after each load "
		"phase. launch = fork (separate processes) or sending the `create` request "
		"(vtpmd, `\"start\": true`) to the first validated GetRandom response on the "
		"instance's data socket (the bench connects as soon as inotify shows the socket, "
		"without waiting for the create reply); window = launches in flight at a time; "
		"all answering = first launch to the last first answer; instance CPU to answer = "
		"CPU (all threads) of each instance at the end of the launch phase, when it has "
		"answered and idles; create reply = request to vtpmd's reply (instance running); "
		"vtpmd CPU/create = CPU of vtpmd and its spawner during the launch phase / "
		"creates; PSS/instance incl. manager = (PSS of all "
		"instances + vtpmd + spawner) / instances.\n");
	for (int i = 0; i < o->n_impls; i++)
		if (o->impls[i].fleet.leftovers)
			fprintf(out, "\n**%s: %d instance process(es) were still running after "
				"destroy and were killed.**\n", o->impls[i].name,
				o->impls[i].fleet.leftovers);
}

int report_write(const struct opts *o_const, bool fleet)
{
	struct opts *o = (struct opts *)o_const;
	FILE *md = NULL;
	int rc = 0;

	for (int pass = 0; pass < 2; pass++) {
		FILE *out = stdout;

		if (pass == 1) {
			if (!o->md_path)
				break;
			md = fopen(o->md_path, "w");
			if (!md) {
				rc = -errno;
				fprintf(stderr, "vtpm-bench: %s: %s\n", o->md_path, strerror(errno));
				break;
			}
			out = md;
		}
		header(out, o, fleet);
		if (fleet)
			fleet_table(out, o);
		else
			ab_tables(out, o);
		fflush(out);
	}
	if (md && fclose(md) != 0)
		rc = -errno;
	return rc;
}

static int csv_series(FILE *f, const char *impl, const char *op, const struct series *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (fprintf(f, "%s,%s,%zu,%llu\n", impl, op, i, (unsigned long long)s->lat[i]) < 0)
			return -EIO;
	return 0;
}

int report_csv(const struct opts *o, const char *path)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (!f) {
		fprintf(stderr, "vtpm-bench: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	fprintf(f, "impl,op,seq,latency_ns\n");
	for (int i = 0; i < o->n_impls && !rc; i++) {
		const struct impl *im = &o->impls[i];

		for (int k = 0; k < OP_COUNT && !rc; k++)
			rc = csv_series(f, im->name, op_names[k], &im->s[k]);
		if (!rc)
			rc = csv_series(f, im->name, "fleet-getrandom", &im->fleet.lat);
		if (!rc)
			rc = csv_series(f, im->name, "launch", &im->fleet.launch);
		if (!rc)
			rc = csv_series(f, im->name, "create-reply", &im->fleet.reply);
	}
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	if (rc)
		fprintf(stderr, "vtpm-bench: writing %s failed\n", path);
	return rc;
}

/* gnuplot from PATH; absent gnuplot is not an error, just no plot. */
static bool have_gnuplot(void)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL, buf[4096];
	bool found = false;

	if (!path || !(copy = strdup(path)))
		return false;
	for (dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/gnuplot", dir);
		found = access(buf, X_OK) == 0;
	}
	free(copy);
	return found;
}

/* Writes a CDF of s (at most PLOT_POINTS points, in µs) to dir/name. */
static int write_cdf(const char *dir, const char *name, const struct series *s)
{
	char path[512];
	uint64_t *v;
	size_t step;
	FILE *f;
	int rc = 0;

	v = malloc(s->n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v, s->lat, s->n * sizeof(*v));
	qsort(v, s->n, sizeof(*v), cmp_u64);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		rc = -errno;
		goto out;
	}
	step = s->n > PLOT_POINTS ? s->n / PLOT_POINTS : 1;
	for (size_t i = 0; i < s->n; i += step)
		fprintf(f, "%.3f %.6f\n", (double)v[i] / 1000.0, (double)(i + 1) / (double)s->n);
	fprintf(f, "%.3f 1.0\n", (double)v[s->n - 1] / 1000.0);
	if (fclose(f) != 0)
		rc = -errno;
out:
	free(v);
	return rc;
}

static int run_gnuplot(const char *script)
{
	uint64_t deadline = now_ns() + (uint64_t)GNUPLOT_TIMEOUT_MS * 1000000u;
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDONLY);

		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		execlp("gnuplot", "gnuplot", script, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			break;
		if (r < 0)
			return -errno;
		if (now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -ETIMEDOUT;
		}
		usleep(10000);
	}
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

int report_plot(const struct opts *o, const char *out_png)
{
	const char *ops[OP_COUNT + 1];
	char dir[] = "/tmp/vtpm-bench-plot.XXXXXX", script[64], name[160];
	int n_ops = 0, rows, cols, rc = 0;
	FILE *f;

	if (!have_gnuplot()) {
		fprintf(stderr, "vtpm-bench: gnuplot not found (Debian: gnuplot-nox); no plot written\n");
		return 0;
	}
	if (strchr(out_png, '\'') || strchr(out_png, '"')) {
		fprintf(stderr, "vtpm-bench: --plot path must not contain quotes\n");
		return -EINVAL;
	}
	if (!mkdtemp(dir))
		return -errno;
	/* Panels: every A/B op with data, plus the fleet latencies. */
	for (int k = 0; k < o->n_order; k++)
		for (int i = 0; i < o->n_impls; i++)
			if (o->impls[i].s[o->order[k]].n) {
				ops[n_ops++] = op_names[o->order[k]];
				break;
			}
	for (int i = 0; i < o->n_impls; i++)
		if (o->impls[i].fleet.lat.n) {
			ops[n_ops++] = "fleet-getrandom";
			break;
		}
	if (!n_ops) {
		fprintf(stderr, "vtpm-bench: nothing to plot\n");
		goto out;
	}
	cols = n_ops > 1 ? 2 : 1;
	rows = (n_ops + cols - 1) / cols;
	snprintf(script, sizeof(script), "%s/plot.gp", dir);
	f = fopen(script, "w");
	if (!f) {
		rc = -errno;
		goto out;
	}
	fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		"  set terminal pngcairo size %d,%d font ',9'\n} else {\n"
		"  set terminal png size %d,%d\n}\n", 640 * cols, 400 * rows, 640 * cols, 400 * rows);
	fprintf(f, "set output '%s'\nset multiplot layout %d,%d title 'vtpm-bench latency CDF'\n",
		out_png, rows, cols);
	fprintf(f, "set logscale x\nset grid\nset yrange [0:1]\nset key bottom right\n"
		"set xlabel 'latency (us, log)'\nset ylabel 'fraction <= x'\n");
	for (int p = 0; p < n_ops && !rc; p++) {
		bool first = true;

		fprintf(f, "set title '%s'\nplot ", ops[p]);
		for (int i = 0; i < o->n_impls && !rc; i++) {
			const struct impl *im = &o->impls[i];
			const struct series *s = NULL;

			if (strcmp(ops[p], "fleet-getrandom") == 0)
				s = &im->fleet.lat;
			else
				for (int k = 0; k < OP_COUNT; k++)
					if (strcmp(ops[p], op_names[k]) == 0)
						s = &im->s[k];
			if (!s || !s->n)
				continue;
			snprintf(name, sizeof(name), "%s.%s.dat", im->name, ops[p]);
			rc = write_cdf(dir, name, s);
			fprintf(f, "%s'%s/%s' using 1:2 with steps lw 2 title '%s'", first ? "" : ", ",
				dir, name, im->name);
			first = false;
		}
		fprintf(f, "\n");
	}
	fprintf(f, "unset multiplot\n");
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	if (!rc)
		rc = run_gnuplot(script);
	if (rc)
		fprintf(stderr, "vtpm-bench: gnuplot failed (%s); script kept in %s\n", strerror(-rc),
			dir);
	else
		fprintf(stderr, "vtpm-bench: plot written to %s\n", out_png);
out:
	if (!rc)
		rmtree(dir);
	return rc;
}
