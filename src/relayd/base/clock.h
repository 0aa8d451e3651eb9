/* clock.h -- the monotonic clock every layer reads (CLOCK_MONOTONIC), in
 * nanoseconds for latency samples and in milliseconds for loop-turn time.
 * Header-only (static inline): one vDSO call, no library to link.
 * Threading: any thread. */
#ifndef RL_CLOCK_H
#define RL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t rl_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rl_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
