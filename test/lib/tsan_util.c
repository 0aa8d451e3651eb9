/* tsan_util.c -- the tsan suite's shared failure record and end-of-run
 * checks (see tsan_util.h).
 * Threading: the failure record is guarded by one mutex and an atomic flag;
 * the rest runs on the thread that owns the server. */
#include "tsan_util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

static atomic_bool failed;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char fail_text[1024];

void rl_tsan_failf(const char *fmt, ...)
{
	pthread_mutex_lock(&fail_lock);
	if (!atomic_load(&failed)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(fail_text, sizeof(fail_text), fmt, ap);
		va_end(ap);
	}
	atomic_store(&failed, true);
	pthread_mutex_unlock(&fail_lock);
}

void rl_tsan_fail(const char *what)
{
	rl_tsan_failf("%s: %s", what, rl_test_err());
}

bool rl_tsan_failed(void)
{
	return atomic_load(&failed);
}

int rl_tsan_verdict(const char *who)
{
	if (!atomic_load(&failed))
		return 0;
	pthread_mutex_lock(&fail_lock);
	fprintf(stderr, "%s failed: %s\n", who, fail_text);
	pthread_mutex_unlock(&fail_lock);
	return 1;
}

static const char *const sanitizer_reports[] = {"WARNING: ThreadSanitizer",
						"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
						"runtime error:", NULL};

int rl_tsan_server_finish(struct rl_test_server *s, const char *who, int timeout_ms,
			  const char *const *reports)
{
	int rc = 0;
	int st = rl_test_server_stop(s, timeout_ms);
	if (st != 0) {
		fprintf(stderr, "%s: relayd exit status %d (want 0)\n", who, st);
		rc = 1;
	}
	for (const char *const *r = reports ? reports : sanitizer_reports; *r; r++) {
		if (rl_test_server_log_has(s, *r)) {
			char tail[8192];
			rl_test_server_log_tail(s, tail, sizeof(tail));
			fprintf(stderr, "%s: relayd stderr has \"%s\":\n%s\n", who, *r, tail);
			rc = 1;
		}
	}
	return rc;
}
