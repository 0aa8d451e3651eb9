/* stats.c -- per-worker counter slots and their sum.
 * Threading: see stats.h. */
#include "base/stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct rl_stats *stats_slots;
static unsigned stats_n;
static uint64_t stats_conns; /* atomic */
static uint64_t stats_peak;  /* atomic */

int rl_stats_init(unsigned n)
{
	stats_slots = aligned_alloc(64, sizeof(struct rl_stats) * n);
	if (!stats_slots)
		return -ENOMEM;
	memset(stats_slots, 0, sizeof(struct rl_stats) * n);
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
	return &stats_slots[i];
}

void rl_stats_sum(struct rl_stats *out)
{
	const size_t nwords = sizeof(struct rl_stats) / sizeof(uint64_t);
	uint64_t *o = (uint64_t *)out;

	memset(out, 0, sizeof(*out));
	for (unsigned w = 0; w < stats_n; w++) {
		uint64_t *s = (uint64_t *)&stats_slots[w];
		for (size_t i = 0; i < nwords; i++)
			o[i] += __atomic_load_n(&s[i], __ATOMIC_RELAXED);
	}
	out->conns_peak = rl_stats_peak();
}

#define STATS_LOAD(s, f) __atomic_load_n(&(s)->f, __ATOMIC_RELAXED)

uint64_t rl_stats_client_mem(uint64_t *out_queued)
{
	uint64_t out = 0, tails = 0, pushed = 0, drained = 0;

	for (unsigned w = 0; w < stats_n; w++) {
		const struct rl_stats *s = &stats_slots[w];
		out += STATS_LOAD(s, out_queued);
		tails += STATS_LOAD(s, mem_tails);
		pushed += STATS_LOAD(s, inbox_bytes_pushed);
		drained += STATS_LOAD(s, inbox_bytes_drained);
	}
	if (out_queued)
		*out_queued = out;
	/* The slots are read at different moments: a drain may be seen before
	 * its push. (When inboxes count their own bytes, sum those here.) */
	return out + tails + (pushed > drained ? pushed - drained : 0);
}

bool rl_stats_conn_try_add(uint64_t max)
{
	uint64_t n = __atomic_add_fetch(&stats_conns, 1, __ATOMIC_RELAXED);
	if (n > max) {
		__atomic_sub_fetch(&stats_conns, 1, __ATOMIC_RELAXED);
		return false;
	}
	uint64_t p = __atomic_load_n(&stats_peak, __ATOMIC_RELAXED);
	while (n > p && !__atomic_compare_exchange_n(&stats_peak, &p, n, true,
						     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
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
