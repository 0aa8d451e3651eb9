/* fuzz.h -- helpers shared by the libFuzzer targets: a check that aborts
 * (libFuzzer reports it as a crash with the input), a hash for comparing
 * byte strings, and a seeded generator for chunkings.
 * Threading: single-threaded (libFuzzer calls one input at a time). */
#ifndef RL_FUZZ_H
#define RL_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static inline uint64_t fuzz_fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* xorshift64; <*s> must not be 0. */
static inline uint64_t fuzz_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Chunk size for feeding mode <mode>: 0 everything, 1 one byte, else drawn
 * from <*seed> (empty chunks included). */
static inline size_t fuzz_chunk(unsigned mode, uint64_t *seed, size_t left)
{
	size_t n;
	if (mode == 0)
		n = left;
	else if (mode == 1)
		n = 1;
	else {
		uint64_t r = fuzz_rand(seed);
		n = r % (r & 1 ? 9 : 300);
	}
	return n < left ? n : left;
}

#endif
