/* stats.h -- counters and gauges. What exists is the list in stats_list.h;
 * this file turns it into the per-worker slot (struct rl_stats), a
 * description of each row (rl_stat_rows, for /metrics, /stats and the totals
 * line) and the functions that read and sum the slots.
 *
 * Each worker owns one cache-line-aligned struct rl_stats and is its only
 * writer (relaxed atomic stores of owner-read values: no lock prefix, no
 * false sharing); any thread reads them with relaxed atomic loads. The same
 * struct is also the type of a snapshot (one worker's figures, or the sum).
 * Process-wide rows come from readers registered by their owners: the
 * connection peak and the connection gauge used for --max-connections are
 * atomics here; rooms and memberships are relay/room.c's (registered by
 * ops/ops.c).
 * Threading: RL_STAT_* on the owner worker only; rl_stats_init, _fini and
 * _set_reader on the main thread while no other thread reads; the rest from
 * any thread. */
#ifndef RL_STATS_H
#define RL_STATS_H

#include <relay/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/stats_list.h"

enum rl_stat_kind { RL_STAT_COUNTER = 0, RL_STAT_GAUGE, RL_STAT_NKINDS };
enum rl_stat_unit {
	RL_STAT_UNIT_NONE = 0,
	RL_STAT_UNIT_BYTES,
	RL_STAT_UNIT_MS, /* a time in milliseconds, shown in seconds by /metrics */
	RL_STAT_NUNITS
};
enum rl_stat_scope { RL_STAT_WORKER = 0, RL_STAT_PROCESS, RL_STAT_NSCOPES };
enum rl_stat_dim {
	RL_STAT_DIM_NONE = 0,
	RL_STAT_DIM_MSG_TYPE, /* [RELAY_MSG_NTYPES], label type="NAME" */
	RL_STAT_DIM_ERR_CODE, /* [RELAY_ERR_NCODES], label code="NAME" */
	RL_STAT_DIM_AUTH_FAIL, /* [RL_AUTH_FAIL_N], label reason="name" */
	RL_STAT_NDIMS
};

/* Why an authentication was refused (RL_AUTH_FAIL_LIST in stats_list.h). */
#define RL_AUTH_FAIL_ENUM(id, label) RL_AUTH_FAIL_##id,
enum rl_auth_fail { RL_AUTH_FAIL_LIST(RL_AUTH_FAIL_ENUM) RL_AUTH_FAIL_N };

/* How a row of each dimension is declared in struct rl_stats. */
#define RL_STAT_DECL_NONE(f) uint64_t f;
#define RL_STAT_DECL_MSG_TYPE(f) uint64_t f[RELAY_MSG_NTYPES];
#define RL_STAT_DECL_ERR_CODE(f) uint64_t f[RELAY_ERR_NCODES];
#define RL_STAT_DECL_AUTH_FAIL(f) uint64_t f[RL_AUTH_FAIL_N];
#define RL_STAT_DECL(f, kind, unit, scope, dim, ...) RL_STAT_DECL_##dim(f)

/* A worker's slot, or a snapshot. Slots are kept on cache lines of their own
 * (stats.c); a snapshot has no alignment needs. */
struct rl_stats {
	RL_STATS_LIST(RL_STAT_DECL)
};

/* Row ids, in list order: RL_STAT_ID(rooms). */
#define RL_STAT_ID(f) RL_STAT_ID_##f
#define RL_STAT_ID_ENUM(f, ...) RL_STAT_ID(f),
enum rl_stat_id { RL_STATS_LIST(RL_STAT_ID_ENUM) RL_STAT_NROWS };

/* One row of stats_list.h (see there for what each field means). */
struct rl_stat_row {
	const char *field;
	size_t off; /* offsetof(struct rl_stats, <field>) */
	unsigned n; /* 1, or the size of the dimension */
	enum rl_stat_kind kind;
	enum rl_stat_unit unit;
	enum rl_stat_scope scope;
	enum rl_stat_dim dim;
	const char *prom, *prom_labels, *help;
	const char *wprom, *whelp;
	const char *json;
	const char *totals;
	unsigned totals_at;
};

extern const struct rl_stat_row rl_stat_rows[RL_STAT_NROWS];

/* "counter" or "gauge", as in a Prometheus TYPE line. */
const char *rl_stats_kind_name(enum rl_stat_kind k);
/* The label key of dimension <d> ("type", "code"), the first element that
 * is reported (RELAY_ERR_NONE is not), and element <i>'s name. */
const char *rl_stats_dim_label(enum rl_stat_dim d);
unsigned rl_stats_dim_first(enum rl_stat_dim d);
const char *rl_stats_dim_name(enum rl_stat_dim d, unsigned i);
/* Element <i> (0 for a row without dimension) of row <r> in snapshot <s>. */
uint64_t rl_stats_value(const struct rl_stats *s, const struct rl_stat_row *r, unsigned i);

#define RL_STAT_ADD(s, f, n) __atomic_store_n(&(s)->f, (s)->f + (uint64_t)(n), __ATOMIC_RELAXED)
#define RL_STAT_SUB(s, f, n) __atomic_store_n(&(s)->f, (s)->f - (uint64_t)(n), __ATOMIC_RELAXED)
#define RL_STAT_SET(s, f, v) __atomic_store_n(&(s)->f, (uint64_t)(v), __ATOMIC_RELAXED)

/* Allocates <n> zeroed per-worker slots. Main thread, before workers start.
 * 0 or -ENOMEM. */
int rl_stats_init(unsigned n);
void rl_stats_fini(void);
/* Worker <i>'s slot. */
struct rl_stats *rl_stats_slot(unsigned i);

/* Copies worker <k>'s WORKER rows into <out> (relaxed loads), PROCESS rows
 * 0; all 0 when there is no slot <k>. Any thread. */
void rl_stats_read(unsigned k, struct rl_stats *out);
/* Adds the WORKER rows of <x> into <acc>. */
void rl_stats_add(struct rl_stats *acc, const struct rl_stats *x);
/* Sets the PROCESS rows of <out> from their readers (0 where none is set). */
void rl_stats_read_process(struct rl_stats *out);
/* Every slot summed, plus the PROCESS rows. Any thread, any time; not one
 * atomic snapshot across rows. */
void rl_stats_sum(struct rl_stats *out);

/* Where a PROCESS row's value comes from. Any thread may call it. */
typedef uint64_t rl_stats_reader_fn(void);
/* Sets (NULL: clears) the reader of PROCESS row <id>. conns_peak starts with
 * rl_stats_peak. Main thread, while no other thread reads the stats. */
void rl_stats_set_reader(enum rl_stat_id id, rl_stats_reader_fn *fn);

/* Formats "relayd stopped: <label> N, ..." (no newline) from the rows that
 * have a totals label, in list order. Returns what snprintf returns. */
int rl_stats_format_totals(const struct rl_stats *s, char *buf, size_t len);

/* Process-wide connection gauge, for --max-connections and the peak.
 * rl_stats_conn_try_add fails (returns false) when <max> is reached. */
bool rl_stats_conn_try_add(uint64_t max);
void rl_stats_conn_del(void);
uint64_t rl_stats_conns(void);
uint64_t rl_stats_peak(void);

#endif
