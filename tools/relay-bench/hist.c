/* hist.c -- log-linear latency histogram with bounded relative error.
 * Threading: one writer per histogram (its owner thread); readers on other
 * threads use relaxed loads and may see a slightly stale picture, which is
 * fine for progress lines. Final figures are read after the writers stopped.
 */
#include "bench.h"

#include <string.h>

#define RLX memory_order_relaxed

static unsigned hist_index(uint64_t v)
{
	if (v < RB_HIST_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);   /* >= SUB_BITS */
	unsigned shift = msb - RB_HIST_SUB_BITS + 1;
	unsigned exp = shift;                                /* 1.. */
	if (exp >= RB_HIST_EXPS)
		return RB_HIST_BUCKETS - 1;
	unsigned sub = (unsigned)(v >> shift) & (RB_HIST_SUB - 1);
	/* values with msb m land in [SUB/2, SUB) after the shift: keep the top half */
	return exp * RB_HIST_SUB + sub;
}

/* Largest value that maps to bucket <i>. */
static uint64_t hist_upper(unsigned i)
{
	unsigned exp = i / RB_HIST_SUB, sub = i % RB_HIST_SUB;
	if (exp == 0)
		return sub;
	return (((uint64_t)sub + 1) << exp) - 1;
}

void rb_hist_reset(struct rb_hist *h)
{
	memset(h, 0, sizeof *h);
}

void rb_hist_add(struct rb_hist *h, uint64_t v)
{
	unsigned i = hist_index(v);
	atomic_store_explicit(&h->b[i], atomic_load_explicit(&h->b[i], RLX) + 1, RLX);
	atomic_store_explicit(&h->count, atomic_load_explicit(&h->count, RLX) + 1, RLX);
	if (v > atomic_load_explicit(&h->max, RLX))
		atomic_store_explicit(&h->max, v, RLX);
}

void rb_hist_merge(struct rb_hist *into, const struct rb_hist *from)
{
	for (unsigned i = 0; i < RB_HIST_BUCKETS; i++) {
		uint64_t n = atomic_load_explicit(&from->b[i], RLX);
		if (n)
			atomic_store_explicit(&into->b[i],
					      atomic_load_explicit(&into->b[i], RLX) + n, RLX);
	}
	atomic_store_explicit(&into->count, atomic_load_explicit(&into->count, RLX) +
				      atomic_load_explicit(&from->count, RLX), RLX);
	uint64_t m = atomic_load_explicit(&from->max, RLX);
	if (m > atomic_load_explicit(&into->max, RLX))
		atomic_store_explicit(&into->max, m, RLX);
}

uint64_t rb_hist_quantile(const struct rb_hist *h, double q)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < RB_HIST_BUCKETS; i++)
		total += atomic_load_explicit(&h->b[i], RLX);
	if (!total)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)total);
	if (rank >= total)
		rank = total - 1;
	uint64_t seen = 0, max = atomic_load_explicit(&h->max, RLX);
	for (unsigned i = 0; i < RB_HIST_BUCKETS; i++) {
		seen += atomic_load_explicit(&h->b[i], RLX);
		if (seen > rank) {
			uint64_t u = hist_upper(i);
			return u < max ? u : max;
		}
	}
	return max;
}
