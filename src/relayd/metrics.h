/* metrics.h -- per-worker counters behind /metrics, /stats and the exit totals.
 *
 * Threading: one struct rl_metrics per worker, 64-byte aligned so no two
 * workers share a cache line. Each is written ONLY by its owner worker, with
 * single-writer relaxed atomics (load + add + store: plain moves on x86, no
 * lock prefix, no contention). Any thread may read them at any time
 * (rl_metrics_read / rl_metrics_sum); a reader sees each counter whole but
 * the set of counters is not one atomic snapshot (a scrape may see a frame
 * counted in and not yet delivered) -- the usual Prometheus contract.
 * Gauges (current connections, rooms, memberships, queued bytes) are derived
 * as the difference of two monotonic counters, so every store stays
 * single-writer even when the +1 and the -1 happen on different workers. */
#ifndef RL_METRICS_H
#define RL_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <relay/protocol.h>

/* Monotonic counters, one slot each. */
enum rl_metric {
	RL_M_CONN_ACCEPTED = 0, /* connections accepted and kept */
	RL_M_CONN_CLOSED,       /* connections closed (any reason) */
	RL_M_REFUSED_FULL,      /* refused at accept: over max-connections */
	RL_M_REFUSED_EMFILE,    /* refused at accept: out of descriptors */
	RL_M_ROOM_CREATED,      /* room nodes this worker inserted */
	RL_M_ROOM_DELETED,      /* room nodes this worker removed */
	RL_M_JOINS,             /* memberships added */
	RL_M_LEAVES,            /* memberships removed (leave or close) */
	RL_M_MSG_DELIVERED,     /* MESSAGE frames queued to a member */
	RL_M_BYTES_IN,          /* bytes read from client sockets */
	RL_M_BYTES_OUT,         /* bytes written to client sockets */
	RL_M_OUT_QUEUED,        /* bytes appended to send queues */
	RL_M_OUT_RELEASED,      /* bytes leaving send queues (sent or dropped) */
	RL_M_SLOW_CONSUMERS,    /* connections dropped as slow consumers */
	RL_M_INBOX_ITEMS,       /* cross-worker items drained from the inbox */
	RL_M_NCOUNTERS
};

/* Fan-out latency histogram: upper bounds in nanoseconds, the last bucket is
 * +Inf. Few fixed buckets, found by a short scan: cheap on the hot path. */
#define RL_M_FANOUT_NBUCKETS 13
extern const uint64_t rl_metrics_fanout_le_ns[RL_M_FANOUT_NBUCKETS - 1];

struct rl_metrics {
	_Atomic uint64_t c[RL_M_NCOUNTERS];
	_Atomic uint64_t frames_in[RL_MSG_NTYPES]; /* by wire type; 0 = other */
	_Atomic uint64_t errors[RL_ERR_NCODES];    /* ERROR frames sent, by code */
	_Atomic uint64_t fanout_bucket[RL_M_FANOUT_NBUCKETS]; /* not cumulative */
	_Atomic uint64_t fanout_sum_ns;
} __attribute__((aligned(64)));

/* A plain copy, for readers. */
struct rl_metrics_snap {
	uint64_t c[RL_M_NCOUNTERS];
	uint64_t frames_in[RL_MSG_NTYPES];
	uint64_t errors[RL_ERR_NCODES];
	uint64_t fanout_bucket[RL_M_FANOUT_NBUCKETS];
	uint64_t fanout_sum_ns;
};

/* Allocates zeroed counters for <nworkers> workers. Main thread, before any
 * worker starts. 0 or -ENOMEM / -EINVAL. Calling it again frees the old set. */
int rl_metrics_init(unsigned nworkers);
/* Frees them. Main thread, after every worker stopped. */
void rl_metrics_fini(void);
unsigned rl_metrics_nworkers(void);
/* Worker <k>'s block (k < nworkers), for its owner to write. */
struct rl_metrics *rl_metrics_worker(unsigned k);

static inline void rl_metrics_add(struct rl_metrics *m, enum rl_metric i, uint64_t n)
{
	atomic_store_explicit(&m->c[i], atomic_load_explicit(&m->c[i], memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void rl_metrics_inc(struct rl_metrics *m, enum rl_metric i)
{
	rl_metrics_add(m, i, 1);
}

/* Counts one complete frame read, by its wire <type> (unknown types count as 0). */
static inline void rl_metrics_frame_in(struct rl_metrics *m, unsigned type)
{
	_Atomic uint64_t *p = &m->frames_in[type < RL_MSG_NTYPES ? type : 0];
	atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Counts one ERROR frame sent with <code>. */
static inline void rl_metrics_error(struct rl_metrics *m, enum rl_err code)
{
	_Atomic uint64_t *p = &m->errors[(unsigned)code < RL_ERR_NCODES ? code : 0];
	atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Records one fan-out latency of <ns> nanoseconds (frame read -> last
 * member's write). Owner worker of <m> only. */
void rl_metrics_fanout_observe(struct rl_metrics *m, uint64_t ns);

/* Copies worker <k>'s counters into <out>. Any thread. */
void rl_metrics_read(unsigned k, struct rl_metrics_snap *out);
/* Adds every field of <x> into <acc>. */
void rl_metrics_snap_add(struct rl_metrics_snap *acc, const struct rl_metrics_snap *x);
/* Sums every worker's counters into <out>. Any thread. */
void rl_metrics_sum(struct rl_metrics_snap *out);

/* Gauges derived from a snapshot. A derived gauge can be transiently
 * "negative" per worker (a connection closed elsewhere); clamp to 0. */
static inline uint64_t rl_metrics_diff(uint64_t up, uint64_t down)
{
	return up > down ? up - down : 0;
}

/* The process-wide "graceful shutdown has begun" flag (/health answers 503).
 * Set once from the thread that handles SIGTERM/SIGINT; read by any thread. */
void rl_metrics_set_shutdown(void);
bool rl_metrics_shutting_down(void);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
uint64_t rl_metrics_now_ns(void);
/* rl_metrics_now_ns() and the wall clock (seconds since the epoch) at the
 * last rl_metrics_init: the process start as far as uptime is concerned. */
uint64_t rl_metrics_start_ns(void);
double rl_metrics_start_wall(void);

#endif /* RL_METRICS_H */
