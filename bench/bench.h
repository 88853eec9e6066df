/* Shared state of the vtpm-bench load generator. */
#ifndef VTPM_BENCH_BENCH_H
#define VTPM_BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "floor.h"
#include "ops.h"
#include "proc.h"

#define BENCH_MAX_IMPLS 8
#define BENCH_MAX_FLEET 1000

/* Latencies of one (implementation, op) pair plus the CPU the server spent. */
struct series {
	uint64_t *lat;		/* ns, in measurement order until summarised */
	size_t n, cap;
	uint64_t cpu_ns;	/* server (or floor child) CPU over the batches */
	bool cpu_valid;
	bool failed;		/* a response failed validation */
	bool measured;		/* op was run for this impl */
};

struct summary {
	size_t n;
	double min, p50, p90, p99, max;	/* µs */
	double ops_per_s;		/* n / sum of latencies */
	double cpu_us;			/* CPU per op, µs; < 0 if unknown */
};

/* Fleet results, accumulated over --fleet-rounds rounds. */
struct fleet_result {
	int rounds;		/* completed rounds */
	bool failed;		/* any round failed */
	int instances;
	double tput_sum, tput_min, tput_max;	/* cmds/s per round */
	uint64_t cpu_ns, cpu_cmds;	/* server CPU over load phases, commands */
	long rss_sum_kb, pss_sum_kb, rss_max_kb, pss_max_kb;
	long mem_samples;
	struct series lat;	/* per-command latencies under load */
	struct series launch;	/* launch (fork / create request) to first answer */
	struct series reply;	/* vtpmd: create request to its reply */
	int window;		/* instances launched concurrently at most */
	double all_sum, all_min, all_max;	/* s from first launch until all answered */
	/* vtpmd fleets: [0] vtpmd, [1] vtpmd-spawner, summed per round */
	long mgr_rss_kb[2], mgr_pss_kb[2], mgr_samples[2];
	int leftovers;		/* instance processes killed after destroy */
	uint64_t start_cpu_ns;	/* CPU of the instances from fork to the end of the launch */
	long start_cpu_n;
	uint64_t mgr_cpu_ns;	/* vtpmd + spawner CPU during the launches */
	long mgr_cpu_n;		/* creates over the rounds */
};

struct impl {
	char name[64];
	const char *path;	/* NULL for the floor; vtpmd's binary if is_vtpmd */
	bool is_floor;
	bool is_vtpmd;		/* fleet of instances created through a vtpmd */
	bool dead;		/* failed to start or lost its transport */
	struct server srv;
	struct floor fl;
	struct target tgt;
	struct series s[OP_COUNT];
	struct fleet_result fleet;
};

struct opts {
	struct impl impls[BENCH_MAX_IMPLS];
	int n_impls;
	bool tcp;
	int cpu;		/* -1: do not pin */
	bool cpu_given;
	long ops;		/* 0: per-op defaults */
	long round;		/* 0: per-op defaults */
	long warmup;		/* -1: default */
	double duration;	/* seconds, 0: use op counts */
	bool quick;
	unsigned ops_mask;
	enum op_id order[OP_COUNT];
	int n_order;
	int fleet;		/* 0: A/B mode */
	int fleet_window;	/* launches in flight at most; 0: all */
	long fleet_gap_ms;	/* at least this long between two launches */
	long fleet_rounds;
	const char *md_path, *csv_path, *plot_path;
	const char *state_base;
	const char *sock_base;	/* --sockdir; NULL: sockets next to the state */
	const char *const *argv;	/* for the report header */
	int argc;
};

extern volatile int bench_stop;

int series_add(struct series *s, const uint64_t *lat, size_t n);
void series_free(struct series *s);
void summarize(struct series *s, struct summary *out);

int report_write(const struct opts *o, bool fleet_mode);
int report_csv(const struct opts *o, const char *path);
int report_plot(const struct opts *o, const char *path);

int fleet_run(const struct opts *o, struct impl *im);

#endif
