/* metrics.h -- the read side of relayd's counters for /metrics and /stats,
 * plus the one hot-path instrument the server does not keep itself: the
 * per-worker fan-out latency histogram.
 *
 * The counters live where they are counted (the server's per-worker struct
 * rl_stats, stats.h); a source (struct rl_metrics_source) copies them into
 * a struct rl_metrics_snap when the admin thread renders a scrape, so a
 * scrape costs the workers nothing but relaxed loads of their counters.
 *
 * Threading: rl_metrics_init/fini/set_source on the main thread while no
 * worker or admin thread runs. Histogram block <k> is written only by worker
 * <k> (single-writer relaxed atomics: plain moves on x86, no lock prefix),
 * 64-byte aligned so no two workers share a cache line. Reads from any
 * thread; a snapshot is not atomic across counters (the usual Prometheus
 * contract: a frame may be counted in and not yet delivered). */
#ifndef RL_METRICS_H
#define RL_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <relay/protocol.h>

/* Fan-out latency histogram: upper bounds in nanoseconds, the last bucket is
 * +Inf. Few fixed buckets, found by a short scan: cheap on the hot path. */
#define RL_M_FANOUT_NBUCKETS 16
#define RL_METRICS_MAX_WORKERS 64 /* = RL_MAX_WORKERS */
extern const uint64_t rl_metrics_fanout_le_ns[RL_M_FANOUT_NBUCKETS - 1];

struct rl_metrics {
	_Atomic uint64_t fanout_bucket[RL_M_FANOUT_NBUCKETS]; /* not cumulative */
	_Atomic uint64_t fanout_sum_ns;
} __attribute__((aligned(64)));

/* Everything a scrape shows, for one worker or summed over all. */
struct rl_metrics_snap {
	uint64_t conns;		 /* gauge: open client connections */
	uint64_t accepted;	 /* connections accepted */
	uint64_t closed;	 /* connections closed, any reason */
	uint64_t refused_full;	 /* refused at accept: over max-connections */
	uint64_t refused_emfile; /* refused at accept: out of descriptors */
	uint64_t rooms;		 /* gauge, process-wide (0 in per-worker snaps) */
	uint64_t memberships;	 /* gauge, process-wide (0 in per-worker snaps) */
	uint64_t peak_conns;	 /* process-wide peak (0 in per-worker snaps) */
	uint64_t delivered;	 /* MESSAGE frames queued to members */
	uint64_t frames_out;	 /* frames queued to clients, all types */
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t out_queued; /* gauge: bytes waiting in send queues */
	uint64_t slow_consumers;
	uint64_t inbox_items;		   /* cross-worker items processed */
	uint64_t client_errors;		   /* ERROR frames received from clients (ignored) */
	uint64_t partial_frame_bytes;	   /* gauge: buffers of clients' partial frames */
	uint64_t budget_evictions;	   /* slow consumers dropped for the client memory budget */
	uint64_t read_holds;		   /* partial frames held for the client memory budget */
	uint64_t client_mem;  /* gauge, process-wide: the budget's accounted total (0 per worker) */
	uint64_t mem_budget;  /* gauge, process-wide: --max-client-memory (0 = unlimited) */
	uint64_t frames_in[RELAY_MSG_NTYPES]; /* by wire type; 0 = not in the table */
	uint64_t errors[RELAY_ERR_NCODES];	   /* ERROR frames sent, by code */
	uint64_t fanout_bucket[RL_M_FANOUT_NBUCKETS];
	uint64_t fanout_sum_ns;
};

/* Where the counters come from. Both functions ADD into <out>. */
struct rl_metrics_source {
	/* Worker <k>'s counters. Any thread. */
	void (*worker)(unsigned k, struct rl_metrics_snap *out);
	/* Process-wide gauges (rooms, memberships, peak). Any thread; may be NULL. */
	void (*global)(struct rl_metrics_snap *out);
};

/* Sets how many workers are reported (1..RL_METRICS_MAX_WORKERS) and
 * records the start time. Main thread, before the admin thread starts; the
 * histogram blocks are static, so workers may record before or after it.
 * 0 or -EINVAL. */
int rl_metrics_init(unsigned nworkers);
/* Forgets the worker count and the source. Main thread, after the admin
 * thread stopped. */
void rl_metrics_fini(void);
/* Sets the counter source (copied). NULL: only the histogram is reported. */
void rl_metrics_set_source(const struct rl_metrics_source *src);
unsigned rl_metrics_nworkers(void);
/* Worker <k>'s histogram block (k < RL_METRICS_MAX_WORKERS, else NULL),
 * for its owner to write; valid for the whole process lifetime. */
struct rl_metrics *rl_metrics_worker(unsigned k);

/* Records one fan-out latency of <ns> nanoseconds (frame read -> last
 * member's write). Owner worker of <m> only. NULL <m> is ignored. */
void rl_metrics_fanout_observe(struct rl_metrics *m, uint64_t ns);

/* Worker <k>'s figures (process-wide gauges left 0). Any thread. */
void rl_metrics_read(unsigned k, struct rl_metrics_snap *out);
/* Every worker's figures summed, plus the process-wide gauges. Any thread. */
void rl_metrics_sum(struct rl_metrics_snap *out);
/* Adds the process-wide gauges (rooms, memberships, peak) into <out>. */
void rl_metrics_add_global(struct rl_metrics_snap *out);
/* Adds every per-worker field of <x> into <acc> (gauges too). */
void rl_metrics_snap_add(struct rl_metrics_snap *acc, const struct rl_metrics_snap *x);

/* The process-wide "graceful shutdown has begun" flag (/health answers 503).
 * Set once from the thread that handles SIGTERM/SIGINT; read by any thread. */
void rl_metrics_set_shutdown(void);
bool rl_metrics_shutting_down(void);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
uint64_t rl_metrics_now_ns(void);
/* rl_metrics_now_ns() and the wall clock (seconds since the epoch) at
 * rl_metrics_init: the server's start as far as uptime is concerned. */
uint64_t rl_metrics_start_ns(void);
double rl_metrics_start_wall(void);

#endif /* RL_METRICS_H */
