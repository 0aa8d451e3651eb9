/* tsan_util.h -- what the tsan suite's plain executables share: the first
 * failure seen by any client thread, and the end of a run (relayd must exit
 * 0 and its stderr must hold no sanitizer report). The suite cannot use
 * Criterion (it does not run under ThreadSanitizer), so exit status is the
 * verdict and these helpers only print and return 0 or 1.
 *
 * Threading: rl_tsan_fail* and rl_tsan_failed from any thread; the failure
 * text is read by the main thread after it joined the threads that fail
 * (rl_tsan_verdict). The rest: the thread that owns the server. */
#ifndef RELAY_TEST_TSAN_UTIL_H
#define RELAY_TEST_TSAN_UTIL_H

#include "harness.h"

#include <stdbool.h>

/* Records "<what>: <rl_test_err()>" as the run's failure, unless one was
 * recorded already (the first one is the cause; later ones are usually its
 * consequences). Any thread. */
void rl_tsan_fail(const char *what);

/* The same with a printf-style text. Any thread. */
void rl_tsan_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether a failure was recorded. Any thread; client threads poll it to stop
 * early. */
bool rl_tsan_failed(void);

/* 1 (after printing "<who> failed: <text>") if a failure was recorded, else
 * 0. Main thread, after joining every thread that may fail. */
int rl_tsan_verdict(const char *who);

/* Stops <s> (rl_test_server_stop with <timeout_ms>) and checks that relayd
 * exited 0 and that its stderr holds none of <reports> (NULL-terminated;
 * NULL = the sanitizers' reports: ThreadSanitizer and AddressSanitizer
 * warnings, LeakSanitizer errors, UBSan "runtime error:"). Prints what it
 * found, with the log's tail, under <who>. 0 = clean, 1 = not. Does not free
 * <s>: the caller may still read its log. */
int rl_tsan_server_finish(struct rl_test_server *s, const char *who, int timeout_ms,
			  const char *const *reports);

#endif
