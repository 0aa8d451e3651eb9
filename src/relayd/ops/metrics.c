/* metrics.c -- fan-out histogram blocks, the counter source, the snapshot
 * sum, the shutdown flag. Threading: see metrics.h. */
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
static struct rl_metrics_source metrics_src;
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
	memset(&metrics_src, 0, sizeof(metrics_src));
}

void rl_metrics_set_source(const struct rl_metrics_source *src)
{
	if (src)
		metrics_src = *src;
	else
		memset(&metrics_src, 0, sizeof(metrics_src));
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

_Static_assert(sizeof(struct rl_metrics_snap) % sizeof(uint64_t) == 0,
	       "struct rl_metrics_snap must hold only uint64_t fields");

void rl_metrics_snap_add(struct rl_metrics_snap *acc, const struct rl_metrics_snap *x)
{
	/* Every field is a uint64_t (or an array of them). */
	const size_t nwords = sizeof(*acc) / sizeof(uint64_t);
	uint64_t *a = (uint64_t *)acc;
	const uint64_t *b = (const uint64_t *)x;
	for (size_t i = 0; i < nwords; i++)
		a[i] += b[i];
}

void rl_metrics_read(unsigned k, struct rl_metrics_snap *out)
{
	memset(out, 0, sizeof(*out));
	if (k >= metrics_n)
		return;
	const struct rl_metrics *m = &metrics_blocks[k];
	for (unsigned i = 0; i < RL_M_FANOUT_NBUCKETS; i++)
		out->fanout_bucket[i] =
		    atomic_load_explicit(&m->fanout_bucket[i], memory_order_relaxed);
	out->fanout_sum_ns = atomic_load_explicit(&m->fanout_sum_ns, memory_order_relaxed);
	if (metrics_src.worker)
		metrics_src.worker(k, out);
}

void rl_metrics_sum(struct rl_metrics_snap *out)
{
	struct rl_metrics_snap one;
	memset(out, 0, sizeof(*out));
	for (unsigned k = 0; k < metrics_n; k++) {
		rl_metrics_read(k, &one);
		rl_metrics_snap_add(out, &one);
	}
	rl_metrics_add_global(out);
}

void rl_metrics_add_global(struct rl_metrics_snap *out)
{
	if (metrics_src.global)
		metrics_src.global(out);
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
