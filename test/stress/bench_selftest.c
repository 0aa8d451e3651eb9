/* bench_selftest.c -- checks relay-bench's own measuring parts, so its
 * numbers can be trusted: the histogram's quantiles stay within the promised
 * relative error, and the payload header round-trips.
 * Plain executable: exit status is the verdict.
 * Threading: single-threaded.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>

static int fails;

#define CHECK(cond, ...)                                        \
	do {                                                    \
		if (!(cond)) {                                  \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);           \
			fputc('\n', stderr);                    \
			fails++;                                \
		}                                               \
	} while (0)

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Quantiles of log-uniform samples from 100 ns to 10 s against exact ones. */
static void hist_quantiles_within_bound(void)
{
	enum { N = 200000 };
	static uint64_t v[N];
	static struct rb_hist h;
	uint64_t rng = 42;
	rb_hist_reset(&h);
	for (int i = 0; i < N; i++) {
		double u = (double)(rb_rand(&rng) >> 11) / 9007199254740992.0;
		v[i] = (uint64_t)(100.0 * __builtin_pow(1e8, u));
		rb_hist_add(&h, v[i]);
	}
	qsort(v, N, sizeof v[0], cmp_u64);
	const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
		uint64_t exact = v[(size_t)(qs[i] * N)];
		uint64_t got = rb_hist_quantile(&h, qs[i]);
		double err = ((double)got - (double)exact) / (double)exact;
		CHECK(err > -0.016 && err < 0.016, "q%.3f: got %llu exact %llu (%.3f%%)", qs[i],
		      (unsigned long long)got, (unsigned long long)exact, err * 100);
	}
	CHECK(rb_hist_quantile(&h, 1.0) == v[N - 1], "max %llu vs %llu",
	      (unsigned long long)rb_hist_quantile(&h, 1.0), (unsigned long long)v[N - 1]);
	CHECK(atomic_load(&h.count) == N, "count");
}

static void hist_small_values_exact(void)
{
	static struct rb_hist h;
	rb_hist_reset(&h);
	for (uint64_t x = 0; x < 100; x++)
		rb_hist_add(&h, x);
	CHECK(rb_hist_quantile(&h, 0.5) == 50, "p50 of 0..99 = %llu",
	      (unsigned long long)rb_hist_quantile(&h, 0.5));
	static struct rb_hist m;
	rb_hist_reset(&m);
	rb_hist_merge(&m, &h);
	rb_hist_merge(&m, &h);
	CHECK(atomic_load(&m.count) == 200 && rb_hist_quantile(&m, 0.5) == 50, "merge");
}

static void payload_round_trips(void)
{
	uint8_t p[64];
	uint64_t rng = 7;
	for (int i = 0; i < 100000; i++) {
		uint64_t ts = rb_rand(&rng), t2;
		uint32_t pub = (uint32_t)rb_rand(&rng), p2;
		rb_payload_fill(p, sizeof p, ts, pub, (uint32_t)i);
		if (!rb_payload_parse(p, sizeof p, &t2, &p2) || t2 != ts || p2 != pub) {
			CHECK(0, "payload %d did not round-trip", i);
			return;
		}
	}
	CHECK(!rb_payload_parse((const uint8_t *)"xyz", 3, &(uint64_t){ 0 }, NULL), "short");
}

int main(void)
{
	hist_quantiles_within_bound();
	hist_small_values_exact();
	payload_round_trips();
	if (fails)
		return 1;
	puts("bench selftest: ok");
	return 0;
}
