/* budget.c -- the client memory budget: the per-turn sum, holds, evictions
 * largest first, giving memory back. Threading: see budget.h. */
#include "net/budget.h"

#include "net/conn.h"

#include <inttypes.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define BUDGET_SCAN_MS 10	     /* a worker looks for its largest queues at most this often, */
#define BUDGET_SCAN_GROWTH 16	     /* ... unless the total grew by budget/16 since it last did */
#define BUDGET_EVICT_MAX 32	     /* connections dropped per look at most */
#define BUDGET_EVICT_MIN (64u << 10) /* a queue this small (one socket write) is never dropped */
#define BUDGET_TRIM_MS 1000	     /* memory goes back to the system at most this often */
#define BUDGET_TRIM_BYTES (8u << 20) /* ... once this much was dropped or closed */

/* Drops up to BUDGET_EVICT_MAX of <w>'s largest output queues, largest
 * first, until about <want> bytes were freed; returns the bytes freed. One
 * pass over the worker's open connections (those on the idle timer list)
 * keeps the largest in a small sorted array: no allocation while memory is
 * short. */
static uint64_t budget_evict(struct rl_worker *w, uint64_t want)
{
	struct rl_conn *top[BUDGET_EVICT_MAX], *c;
	unsigned n = 0;

	cds_list_for_each_entry(c, &w->timers[RL_CONN_T_IDLE].head, life.link)
	{
		uint32_t b = c->out.bytes;
		if (b <= BUDGET_EVICT_MIN || (n == BUDGET_EVICT_MAX && b <= top[n - 1]->out.bytes))
			continue;
		unsigned i = n < BUDGET_EVICT_MAX ? n++ : n - 1;
		for (; i > 0 && top[i - 1]->out.bytes < b; i--)
			top[i] = top[i - 1];
		top[i] = c;
	}
	uint64_t freed = 0;
	for (unsigned i = 0; i < n && freed < want; i++) {
		freed += top[i]->out.bytes;
		rl_conn_evict(top[i]);
	}
	if (n)
		RL_DEBUGF(0, "client memory budget: %" PRIu64 " bytes to free, %" PRIu64 " freed",
			  want, freed);
	return freed;
}

/* Gives what a storm freed back to the system: the pool's cached chunks,
 * then malloc's free pages (glibc keeps freed small blocks, and per-thread
 * arenas, mapped until told). */
static void budget_trim(struct rl_worker *w)
{
	if (w->mem_freed < BUDGET_TRIM_BYTES || w->now_ms < w->mem_trim_ms + BUDGET_TRIM_MS)
		return;
	w->mem_freed = 0;
	w->mem_trim_ms = w->now_ms;
	rl_segpool_trim(&w->pool);
#if defined(__GLIBC__)
	malloc_trim(0);
#endif
}

void rl_budget_turn(struct rl_worker *w)
{
	uint64_t budget = RL_CFG(max_client_mem), own_out, all_out, total;

	budget_trim(w);
	if (budget == 0) {
		if (w->mem_over) {
			w->mem_over = false;
			rl_conn_release_held(w);
		}
		return;
	}
	/* Summing reads every worker's counters line (which its owner keeps
	 * writing): at most once a millisecond, unless over the budget or this
	 * worker's own share grew by 1/16 of it since. */
	uint64_t own = __atomic_load_n(&w->stats->out_queued, __ATOMIC_RELAXED) +
		       __atomic_load_n(&w->stats->mem_tails, __ATOMIC_RELAXED);
	if (!w->mem_over && w->now_ms == w->mem_sum_ms &&
	    own < w->mem_sum_own + budget / BUDGET_SCAN_GROWTH)
		return;
	w->mem_sum_ms = w->now_ms;
	w->mem_sum_own = own;
	total = rl_budget_client_mem(&all_out);
	if (total <= budget) {
		if (w->mem_over && total <= budget - budget / 8) {
			w->mem_over = false;
			rl_conn_release_held(w);
		}
		return;
	}
	if (!w->mem_over)
		RL_DEBUGF(0, "over the client memory budget: %" PRIu64 " of %" PRIu64 " bytes",
			  total, budget);
	w->mem_over = true;
	if (w->now_ms < w->mem_scan_ms + BUDGET_SCAN_MS &&
	    total < w->mem_scan_total + budget / BUDGET_SCAN_GROWTH)
		return;
	w->mem_scan_ms = w->now_ms;
	w->mem_scan_total = total;
	/* Every worker sees the same excess: each frees its share, in
	 * proportion to the output it holds, and a margin of 1/16 of the
	 * budget so that the next turn is not over again at once. */
	own_out = __atomic_load_n(&w->stats->out_queued, __ATOMIC_RELAXED);
	if (own_out == 0 || all_out == 0)
		return;
	double share = (double)own_out / (double)(all_out > own_out ? all_out : own_out);
	w->mem_scan_total -=
	    budget_evict(w, (uint64_t)((double)(total - budget + budget / 16) * share) + 1);
}

void rl_budget_tails_grew(struct rl_worker *w)
{
	uint64_t budget = RL_CFG(max_client_mem);

	if (budget == 0 || w->mem_over)
		return;
	uint64_t own = __atomic_load_n(&w->stats->out_queued, __ATOMIC_RELAXED) +
		       __atomic_load_n(&w->stats->mem_tails, __ATOMIC_RELAXED);
	if (own < w->mem_sum_own + budget / BUDGET_SCAN_GROWTH)
		return;
	w->mem_sum_own = own;
	uint64_t total = rl_budget_client_mem(NULL);
	if (total <= budget)
		return;
	RL_DEBUGF(0, "over the client memory budget: %" PRIu64 " of %" PRIu64 " bytes (in turn)",
		  total, budget);
	w->mem_over = true;
}

uint64_t rl_budget_client_mem(uint64_t *out_queued)
{
	uint64_t out = 0, tails = 0, inboxes = 0;

	for (unsigned k = 0; k < rl_srv.nworkers; k++) {
		const struct rl_stats *s = rl_srv.workers[k].stats;
		out += __atomic_load_n(&s->out_queued, __ATOMIC_RELAXED);
		tails += __atomic_load_n(&s->mem_tails, __ATOMIC_RELAXED);
		inboxes += rl_inbox_backlog(&rl_srv.workers[k].inbox);
	}
	if (out_queued)
		*out_queued = out;
	return out + tails + inboxes;
}
