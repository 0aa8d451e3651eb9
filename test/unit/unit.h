/* unit.h -- helpers shared by the protocol unit tests.
 * Threading: tests are single-threaded.
 */
#ifndef RELAY_TEST_UNIT_H
#define RELAY_TEST_UNIT_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "relay/protocol.h"

#if defined(__SANITIZE_ADDRESS__)
#define RL_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RL_TEST_ASAN 1
#endif
#endif

/* Criterion ignores leaks in a passing test body; under ASan make them fail. */
#ifdef RL_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#define RL_ASSERT_NO_LEAKS() \
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks")
#else
#define RL_ASSERT_NO_LEAKS() ((void)0)
#endif

/* JSON text from a C string literal (no NUL). */
#define RL_J(lit) (const uint8_t *)(lit), sizeof(lit) - 1

/* xorshift64*: seeded, reproducible randomness for chunking tests. */
static inline uint64_t rl_test_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

#endif
