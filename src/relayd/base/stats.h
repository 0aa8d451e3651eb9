/* stats.h -- counters. Each worker owns one cache-line-aligned struct
 * rl_stats and is its only writer (relaxed atomic stores of owner-read
 * values: no lock prefix, no false sharing); any thread may sum them with
 * rl_stats_sum (relaxed atomic loads). Process-wide gauges that several
 * threads change (connections, peak, rooms, memberships) are atomics here.
 * Threading: RL_STAT_* on the owner worker only; the rest from any thread. */
#ifndef RL_STATS_H
#define RL_STATS_H

#include <relay/protocol.h>
#include <stdint.h>

struct rl_stats {
	uint64_t conns_current;    /* gauge: open connections of this worker */
	uint64_t conns_accepted;
	uint64_t conns_closed;
	uint64_t conns_peak;       /* this worker's peak (the global one is rl_stats_peak) */
	uint64_t frames_in[RELAY_MSG_NTYPES]; /* by type; [0] = unknown types */
	uint64_t frames_out;       /* frames queued for clients (deliveries included) */
	uint64_t msgs_delivered;   /* MESSAGE frames queued to members (presence included) */
	uint64_t bytes_in;
	uint64_t bytes_out;        /* bytes written to sockets */
	uint64_t errors[RELAY_ERR_NCODES]; /* ERROR frames sent, by code */
	uint64_t client_errors;    /* ERROR frames received from clients (ignored) */
	uint64_t slow_consumers;
	uint64_t refused_full;     /* SERVER_FULL at accept */
	uint64_t refused_emfile;   /* accepted-and-closed on EMFILE/ENFILE */
	uint64_t out_queued;       /* gauge: outbound bytes queued on this worker */
	uint64_t inbox_items;      /* cross-worker items processed */
	/* The client memory budget (net/budget.c); out_queued is its third part. */
	uint64_t mem_tails;        /* gauge: bytes allocated for partial frames (decoder tails) */
	uint64_t inbox_bytes_pushed;  /* frame bytes this worker queued to other workers' inboxes */
	uint64_t inbox_bytes_drained; /* frame bytes of the inbox items this worker handled */
	uint64_t budget_evictions; /* connections dropped (SLOW_CONSUMER) for the budget */
	uint64_t read_holds;       /* times a partial frame's reads were held for the budget */
} __attribute__((aligned(64)));

#define RL_STAT_ADD(s, f, n) __atomic_store_n(&(s)->f, (s)->f + (uint64_t)(n), __ATOMIC_RELAXED)
#define RL_STAT_SUB(s, f, n) __atomic_store_n(&(s)->f, (s)->f - (uint64_t)(n), __ATOMIC_RELAXED)
#define RL_STAT_SET(s, f, v) __atomic_store_n(&(s)->f, (uint64_t)(v), __ATOMIC_RELAXED)

/* Allocates <n> zeroed per-worker slots. Main thread, before workers start. */
int rl_stats_init(unsigned n);
void rl_stats_fini(void);
/* Worker <i>'s slot. */
struct rl_stats *rl_stats_slot(unsigned i);
/* Sums every slot into <out> (conns_peak becomes the process-wide peak).
 * Any thread, any time. */
void rl_stats_sum(struct rl_stats *out);

/* The client memory budget's total (net/budget.h): bytes queued for
 * clients + partial frames' buffers + frames in cross-worker inboxes, over
 * every worker; *<out_queued> (may be NULL) gets the first part alone. A
 * handful of relaxed loads per worker. Any thread. */
uint64_t rl_stats_client_mem(uint64_t *out_queued);

/* Process-wide connection gauge, for --max-connections and the peak.
 * rl_stats_conn_try_add fails (returns false) when <max> is reached. */
bool rl_stats_conn_try_add(uint64_t max);
void rl_stats_conn_del(void);
uint64_t rl_stats_conns(void);
uint64_t rl_stats_peak(void);

#endif
