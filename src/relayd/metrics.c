/* metrics.c -- per-worker counter blocks, summed when read.
 * Threading: rl_metrics_init/fini on the main thread while no worker runs;
 * each block written by its owner only; reads from any thread (see metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 10 us .. 1 s: in-server fan-out is expected in the tens of microseconds;
 * the upper buckets catch a stalled worker. */
const uint64_t rl_metrics_fanout_le_ns[RL_M_FANOUT_NBUCKETS - 1] = {
	10000,    25000,    50000,     100000,    250000,    500000,
	1000000,  2500000,  5000000,   10000000,  100000000, 1000000000,
};

static struct rl_metrics *metrics_blocks;
static unsigned metrics_n;
static atomic_bool metrics_shutdown;
static uint64_t metrics_start_ns;
static double metrics_start_wall;

int rl_metrics_init(unsigned nworkers)
{
	if (nworkers == 0)
		return -EINVAL;
	rl_metrics_fini();
	size_t sz = sizeof(struct rl_metrics) * nworkers;
	void *p = aligned_alloc(_Alignof(struct rl_metrics), sz);
	if (!p)
		return -ENOMEM;
	memset(p, 0, sz);
	metrics_blocks = p;
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
	free(metrics_blocks);
	metrics_blocks = NULL;
	metrics_n = 0;
}

unsigned rl_metrics_nworkers(void)
{
	return metrics_n;
}

struct rl_metrics *rl_metrics_worker(unsigned k)
{
	return k < metrics_n ? &metrics_blocks[k] : NULL;
}

static inline void metrics_bump(_Atomic uint64_t *p, uint64_t n)
{
	atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

void rl_metrics_fanout_observe(struct rl_metrics *m, uint64_t ns)
{
	unsigned b = 0;
	while (b < RL_M_FANOUT_NBUCKETS - 1 && ns > rl_metrics_fanout_le_ns[b])
		b++;
	metrics_bump(&m->fanout_bucket[b], 1);
	metrics_bump(&m->fanout_sum_ns, ns);
}

static void metrics_copy_add(const struct rl_metrics *m, struct rl_metrics_snap *out)
{
	for (unsigned i = 0; i < RL_M_NCOUNTERS; i++)
		out->c[i] += atomic_load_explicit(&m->c[i], memory_order_relaxed);
	for (unsigned i = 0; i < RL_MSG_NTYPES; i++)
		out->frames_in[i] += atomic_load_explicit(&m->frames_in[i], memory_order_relaxed);
	for (unsigned i = 0; i < RL_ERR_NCODES; i++)
		out->errors[i] += atomic_load_explicit(&m->errors[i], memory_order_relaxed);
	for (unsigned i = 0; i < RL_M_FANOUT_NBUCKETS; i++)
		out->fanout_bucket[i] +=
			atomic_load_explicit(&m->fanout_bucket[i], memory_order_relaxed);
	out->fanout_sum_ns += atomic_load_explicit(&m->fanout_sum_ns, memory_order_relaxed);
}

void rl_metrics_snap_add(struct rl_metrics_snap *acc, const struct rl_metrics_snap *x)
{
	for (unsigned i = 0; i < RL_M_NCOUNTERS; i++)
		acc->c[i] += x->c[i];
	for (unsigned i = 0; i < RL_MSG_NTYPES; i++)
		acc->frames_in[i] += x->frames_in[i];
	for (unsigned i = 0; i < RL_ERR_NCODES; i++)
		acc->errors[i] += x->errors[i];
	for (unsigned i = 0; i < RL_M_FANOUT_NBUCKETS; i++)
		acc->fanout_bucket[i] += x->fanout_bucket[i];
	acc->fanout_sum_ns += x->fanout_sum_ns;
}

void rl_metrics_read(unsigned k, struct rl_metrics_snap *out)
{
	memset(out, 0, sizeof(*out));
	if (k < metrics_n)
		metrics_copy_add(&metrics_blocks[k], out);
}

void rl_metrics_sum(struct rl_metrics_snap *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned k = 0; k < metrics_n; k++)
		metrics_copy_add(&metrics_blocks[k], out);
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
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t rl_metrics_start_ns(void)
{
	return metrics_start_ns;
}

double rl_metrics_start_wall(void)
{
	return metrics_start_wall;
}
