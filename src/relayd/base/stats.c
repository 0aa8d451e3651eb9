/* stats.c -- the rows of stats_list.h, per-worker slots, their sum, the
 * totals line. Threading: see stats.h. */
#include "base/stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_STAT_N_NONE 1u
#define RL_STAT_N_MSG_TYPE ((unsigned)RELAY_MSG_NTYPES)
#define RL_STAT_N_ERR_CODE ((unsigned)RELAY_ERR_NCODES)

#define STATS_ROW(f, k, u, s, d, p, pl, h, wp, wh, j, t, at)                                       \
	[RL_STAT_ID(f)] = {.field = #f,                                                            \
			   .off = offsetof(struct rl_stats, f),                                    \
			   .n = RL_STAT_N_##d,                                                     \
			   .kind = RL_STAT_##k,                                                    \
			   .unit = RL_STAT_UNIT_##u,                                               \
			   .scope = RL_STAT_##s,                                                   \
			   .dim = RL_STAT_DIM_##d,                                                 \
			   .prom = p,                                                              \
			   .prom_labels = pl,                                                      \
			   .help = h,                                                              \
			   .wprom = wp,                                                            \
			   .whelp = wh,                                                            \
			   .json = j,                                                              \
			   .totals = t,                                                            \
			   .totals_at = at},

const struct rl_stat_row rl_stat_rows[RL_STAT_NROWS] = {RL_STATS_LIST(STATS_ROW)};

static const char *stats_msg_type_name(unsigned i)
{
	return relay_msg_type_name(i);
}

static const char *stats_err_name(unsigned i)
{
	return relay_err_name((enum relay_err)i);
}

static const struct {
	const char *label;
	unsigned first;
	const char *(*name)(unsigned i);
} stats_dims[RL_STAT_NDIMS] = {
    [RL_STAT_DIM_NONE] = {NULL, 0, NULL},
    [RL_STAT_DIM_MSG_TYPE] = {"type", 0, stats_msg_type_name},
    [RL_STAT_DIM_ERR_CODE] = {"code", RELAY_ERR_NONE + 1, stats_err_name},
};

static const char *const stats_kind_names[RL_STAT_NKINDS] = {
    [RL_STAT_COUNTER] = "counter",
    [RL_STAT_GAUGE] = "gauge",
};

/* One slot per worker, each on cache lines of its own: no false sharing. */
struct stats_slot {
	struct rl_stats s;
} __attribute__((aligned(64)));

static struct stats_slot *stats_slots;
static unsigned stats_n;
static uint64_t stats_conns; /* atomic */
static uint64_t stats_peak;  /* atomic */
static rl_stats_reader_fn *stats_readers[RL_STAT_NROWS] = {
    [RL_STAT_ID(conns_peak)] = rl_stats_peak,
};

const char *rl_stats_kind_name(enum rl_stat_kind k)
{
	return stats_kind_names[k];
}

const char *rl_stats_dim_label(enum rl_stat_dim d)
{
	return stats_dims[d].label;
}

unsigned rl_stats_dim_first(enum rl_stat_dim d)
{
	return stats_dims[d].first;
}

const char *rl_stats_dim_name(enum rl_stat_dim d, unsigned i)
{
	return stats_dims[d].name ? stats_dims[d].name(i) : NULL;
}

static uint64_t *stats_word(struct rl_stats *s, const struct rl_stat_row *r, unsigned i)
{
	return (uint64_t *)((char *)s + r->off) + i;
}

uint64_t rl_stats_value(const struct rl_stats *s, const struct rl_stat_row *r, unsigned i)
{
	return *stats_word((struct rl_stats *)s, r, i);
}

int rl_stats_init(unsigned n)
{
	stats_slots = aligned_alloc(64, sizeof(struct stats_slot) * n);
	if (!stats_slots)
		return -ENOMEM;
	memset(stats_slots, 0, sizeof(struct stats_slot) * n);
	stats_n = n;
	return 0;
}

void rl_stats_fini(void)
{
	free(stats_slots);
	stats_slots = NULL;
	stats_n = 0;
}

struct rl_stats *rl_stats_slot(unsigned i)
{
	return &stats_slots[i].s;
}

void rl_stats_read(unsigned k, struct rl_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (k >= stats_n)
		return;
	for (size_t r = 0; r < RL_STAT_NROWS; r++) {
		const struct rl_stat_row *row = &rl_stat_rows[r];
		if (row->scope != RL_STAT_WORKER)
			continue;
		for (unsigned i = 0; i < row->n; i++)
			*stats_word(out, row, i) = __atomic_load_n(
			    stats_word(&stats_slots[k].s, row, i), __ATOMIC_RELAXED);
	}
}

void rl_stats_add(struct rl_stats *acc, const struct rl_stats *x)
{
	for (size_t r = 0; r < RL_STAT_NROWS; r++) {
		const struct rl_stat_row *row = &rl_stat_rows[r];
		if (row->scope != RL_STAT_WORKER)
			continue;
		for (unsigned i = 0; i < row->n; i++)
			*stats_word(acc, row, i) += rl_stats_value(x, row, i);
	}
}

void rl_stats_read_process(struct rl_stats *out)
{
	for (size_t r = 0; r < RL_STAT_NROWS; r++) {
		const struct rl_stat_row *row = &rl_stat_rows[r];
		if (row->scope != RL_STAT_PROCESS)
			continue;
		for (unsigned i = 0; i < row->n; i++)
			*stats_word(out, row, i) = 0;
		if (stats_readers[r])
			*stats_word(out, row, 0) = stats_readers[r]();
	}
}

void rl_stats_sum(struct rl_stats *out)
{
	struct rl_stats one;

	memset(out, 0, sizeof(*out));
	for (unsigned k = 0; k < stats_n; k++) {
		rl_stats_read(k, &one);
		rl_stats_add(out, &one);
	}
	rl_stats_read_process(out);
}

void rl_stats_set_reader(enum rl_stat_id id, rl_stats_reader_fn *fn)
{
	stats_readers[id] = fn;
}

int rl_stats_format_totals(const struct rl_stats *s, char *buf, size_t len)
{
	int n = snprintf(buf, len, "relayd stopped:");
	const char *sep = " ";

	for (size_t r = 0; r < RL_STAT_NROWS && n >= 0; r++) {
		const struct rl_stat_row *row = &rl_stat_rows[r];
		if (!row->totals)
			continue;
		size_t used = (size_t)n < len ? (size_t)n : len;
		int m = snprintf(buf + used, len - used, "%s%s %llu", sep, row->totals,
				 (unsigned long long)rl_stats_value(s, row, row->totals_at));
		n = m < 0 ? m : n + m;
		sep = ", ";
	}
	return n;
}

bool rl_stats_conn_try_add(uint64_t max)
{
	uint64_t n = __atomic_add_fetch(&stats_conns, 1, __ATOMIC_RELAXED);
	if (n > max) {
		__atomic_sub_fetch(&stats_conns, 1, __ATOMIC_RELAXED);
		return false;
	}
	uint64_t p = __atomic_load_n(&stats_peak, __ATOMIC_RELAXED);
	while (n > p && !__atomic_compare_exchange_n(&stats_peak, &p, n, true, __ATOMIC_RELAXED,
						     __ATOMIC_RELAXED))
		;
	return true;
}

void rl_stats_conn_del(void)
{
	__atomic_sub_fetch(&stats_conns, 1, __ATOMIC_RELAXED);
}

uint64_t rl_stats_conns(void)
{
	return __atomic_load_n(&stats_conns, __ATOMIC_RELAXED);
}

uint64_t rl_stats_peak(void)
{
	return __atomic_load_n(&stats_peak, __ATOMIC_RELAXED);
}
