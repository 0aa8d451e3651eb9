/* bench.h -- what the socket-free benchmarks (codec, token, history, outq)
 * share: their clocks, the run count cap and the sort of run results for
 * medians. Header-only; never installed. */
#ifndef RELAY_BENCH_H
#define RELAY_BENCH_H

#include <time.h>

#define BENCH_MAX_RUNS 31 /* --runs is capped here */

/* Seconds of CPU of the calling thread. */
static inline double bench_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Seconds of wall time (monotonic). */
static inline double bench_wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* qsort order of doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

#endif
