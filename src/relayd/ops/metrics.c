/* metrics.c -- fan-out histogram blocks, scrape snapshots, the shutdown
 * flag. Threading: see metrics.h. */
#include "ops/metrics.h"

#include "base/clock.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* 10 us .. 1 s: in-server fan-out is tens of microseconds when idle and
 * milliseconds under saturation (queueing); the upper buckets catch a
 * stalled worker or a huge room. */
const uint64_t rl_metrics_fanout_le_ns[RL_M_FANOUT_NBUCKETS - 1] = {
    10000,   25000,    50000,	 100000,   250000,    500000,	 1000000,    2500000,
    5000000, 10000000, 25000000, 50000000, 100000000, 250000000, 1000000000,
};

/* Static, so workers may record from their first message whenever
 * rl_metrics_init runs (no allocation to race with). */
static struct rl_metrics metrics_blocks[RL_METRICS_MAX_WORKERS];
static unsigned metrics_n;
static atomic_bool metrics_shutdown;
static uint64_t metrics_start_ns;
static double metrics_start_wall;

int rl_metrics_init(unsigned nworkers)
{
	if (nworkers == 0 || nworkers > RL_METRICS_MAX_WORKERS)
		return -EINVAL;
	metrics_n = nworkers;
	atomic_store(&metrics_shutdown, false);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	metrics_start_wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	metrics_start_ns = rl_metrics_now_ns();
	return 0;
}

void rl_metrics_fini(void)
{
	metrics_n = 0;
}

unsigned rl_metrics_nworkers(void)
{
	return metrics_n;
}

struct rl_metrics *rl_metrics_worker(unsigned k)
{
	return k < RL_METRICS_MAX_WORKERS ? &metrics_blocks[k] : NULL;
}

static inline void metrics_bump(_Atomic uint64_t *p, uint64_t n)
{
	atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

void rl_metrics_fanout_observe(struct rl_metrics *m, uint64_t ns)
{
	unsigned b = 0;
	if (!m)
		return;
	while (b < RL_M_FANOUT_NBUCKETS - 1 && ns > rl_metrics_fanout_le_ns[b])
		b++;
	metrics_bump(&m->fanout_bucket[b], 1);
	metrics_bump(&m->fanout_sum_ns, ns);
}

void rl_metrics_snap_add(struct rl_metrics_snap *acc, const struct rl_metrics_snap *x)
{
	rl_stats_add(&acc->st, &x->st);
	for (unsigned i = 0; i < RL_M_FANOUT_NBUCKETS; i++)
		acc->fanout_bucket[i] += x->fanout_bucket[i];
	acc->fanout_sum_ns += x->fanout_sum_ns;
}

void rl_metrics_read(unsigned k, struct rl_metrics_snap *out)
{
	memset(out, 0, sizeof(*out));
	if (k >= metrics_n)
		return;
	rl_stats_read(k, &out->st);
	const struct rl_metrics *m = &metrics_blocks[k];
	for (unsigned i = 0; i < RL_M_FANOUT_NBUCKETS; i++)
		out->fanout_bucket[i] =
		    atomic_load_explicit(&m->fanout_bucket[i], memory_order_relaxed);
	out->fanout_sum_ns = atomic_load_explicit(&m->fanout_sum_ns, memory_order_relaxed);
}

void rl_metrics_sum(struct rl_metrics_snap *out)
{
	struct rl_metrics_snap one;
	memset(out, 0, sizeof(*out));
	for (unsigned k = 0; k < metrics_n; k++) {
		rl_metrics_read(k, &one);
		rl_metrics_snap_add(out, &one);
	}
	rl_metrics_read_process(out);
}

void rl_metrics_read_process(struct rl_metrics_snap *out)
{
	rl_stats_read_process(&out->st);
}

void rl_metrics_set_shutdown(void)
{
	atomic_store(&metrics_shutdown, true);
}

bool rl_metrics_shutting_down(void)
{
	return atomic_load(&metrics_shutdown);
}

uint64_t rl_metrics_now_ns(void)
{
	return rl_clock_ns(); /* the server's clock (base/clock.h), under the ops name */
}

uint64_t rl_metrics_start_ns(void)
{
	return metrics_start_ns;
}

double rl_metrics_start_wall(void)
{
	return metrics_start_wall;
}
