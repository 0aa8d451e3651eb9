/* metrics.h -- the read side of relayd's counters for /metrics and /stats,
 * plus the one hot-path instrument that is not a row of base/stats_list.h:
 * the per-worker fan-out latency histogram, defined below.
 *
 * The counters live where they are counted (the per-worker struct rl_stats,
 * base/stats.h); a scrape copies them into a struct rl_metrics_snap, so it
 * costs the workers nothing but relaxed loads of their counters.
 *
 * Threading: rl_metrics_init/fini on the main thread while no worker or
 * admin thread runs. Histogram block <k> is written only by worker <k>
 * (single-writer relaxed atomics: plain moves on x86, no lock prefix),
 * 64-byte aligned so no two workers share a cache line. Reads from any
 * thread; a snapshot is not atomic across counters (the usual Prometheus
 * contract: a frame may be counted in and not yet delivered). */
#ifndef RL_METRICS_H
#define RL_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/stats.h"

/* The fan-out latency histogram, relay_fanout_latency_seconds. This is its
 * one definition; /metrics prints RL_M_FANOUT_HELP as its HELP text and
 * docs/operations.md uses the same words.
 *
 * One sample per published MESSAGE that has at least one recipient: from
 * the recv() that completed the publisher's frame to the put of the
 * outgoing message's last reference (rl_msg_put, net/msg.c), recorded by
 * the worker that puts it. The references are: the publishing worker's own
 * (put once it queued the message to its local members); one per other
 * worker with members in the room (put once that worker queued it to its
 * members); one per member that holds the frame by reference, which is
 * frames over 1 KiB (RL_COPY_MAX, net/outq.h; put once written to that
 * member's socket, or dropped with the connection). Frames up to 1 KiB are
 * copied into each member's queue and hold no reference. So a sample ends
 * when every member has the message queued (frames up to 1 KiB) or written
 * to its socket (larger frames). Messages still in an inbox at shutdown
 * are not sampled. */
#define RL_M_FANOUT_HELP                                                                           \
	"Fan-out latency inside the server: from reading a MESSAGE frame to every member "         \
	"having it queued (frames up to 1 KiB) or written to its socket (larger frames)."

/* Upper bounds in nanoseconds, the last bucket is +Inf. Few fixed buckets,
 * found by a short scan: cheap on the hot path. */
#define RL_M_FANOUT_NBUCKETS 16
#define RL_METRICS_MAX_WORKERS 64 /* = RL_MAX_WORKERS */
extern const uint64_t rl_metrics_fanout_le_ns[RL_M_FANOUT_NBUCKETS - 1];

struct rl_metrics {
	_Atomic uint64_t fanout_bucket[RL_M_FANOUT_NBUCKETS]; /* not cumulative */
	_Atomic uint64_t fanout_sum_ns;
} __attribute__((aligned(64)));

/* Everything a scrape shows, for one worker or summed over all. */
struct rl_metrics_snap {
	struct rl_stats st; /* the rows of base/stats_list.h */
	uint64_t fanout_bucket[RL_M_FANOUT_NBUCKETS];
	uint64_t fanout_sum_ns;
};

/* Sets how many workers are reported (1..RL_METRICS_MAX_WORKERS) and
 * records the start time. Main thread, before the admin thread starts; the
 * histogram blocks are static, so workers may record before or after it.
 * 0 or -EINVAL. */
int rl_metrics_init(unsigned nworkers);
/* Forgets the worker count. Main thread, after the admin thread stopped. */
void rl_metrics_fini(void);
unsigned rl_metrics_nworkers(void);
/* Worker <k>'s histogram block (k < RL_METRICS_MAX_WORKERS, else NULL),
 * for its owner to write; valid for the whole process lifetime. */
struct rl_metrics *rl_metrics_worker(unsigned k);

/* Records one fan-out latency sample of <ns> nanoseconds (the histogram
 * above). Owner worker of <m> only. NULL <m> is ignored. */
void rl_metrics_fanout_observe(struct rl_metrics *m, uint64_t ns);

/* Worker <k>'s figures (PROCESS rows left 0). Any thread. */
void rl_metrics_read(unsigned k, struct rl_metrics_snap *out);
/* Every worker's figures summed, plus the PROCESS rows. Any thread. */
void rl_metrics_sum(struct rl_metrics_snap *out);
/* Sets the PROCESS rows of <out> (rl_stats_read_process). */
void rl_metrics_read_process(struct rl_metrics_snap *out);
/* Adds the WORKER rows and the histogram of <x> into <acc> (gauges too). */
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
