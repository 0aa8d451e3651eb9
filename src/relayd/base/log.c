/* log.c -- leveled, whole-line logging to stderr.
 * Threading: any thread; each line is formatted on the caller's stack and
 * written with one write(2), so lines from different workers never interleave. */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int rl_log_level_cur = RL_LOG_INFO;
_Thread_local int rl_log_worker = -1;

static const char *const log_names[RL_LOG_NLEVELS] = {
	[RL_LOG_ERROR] = "error",
	[RL_LOG_WARN] = "warn",
	[RL_LOG_INFO] = "info",
	[RL_LOG_DEBUG] = "debug",
};

const char *rl_log_bits8(unsigned v, char *buf)
{
	buf[0] = '0';
	buf[1] = 'b';
	for (int i = 0; i < 8; i++)
		buf[2 + i] = (char)('0' + ((v >> (7 - i)) & 1u));
	buf[10] = 0;
	return buf;
}

void rl_log_set_level(int lvl)
{
	__atomic_store_n(&rl_log_level_cur, lvl, __ATOMIC_RELAXED);
}

int rl_log_level_parse(const char *s)
{
	for (int i = 0; i < RL_LOG_NLEVELS; i++)
		if (strcmp(s, log_names[i]) == 0)
			return i;
	if (strcmp(s, "warning") == 0)
		return RL_LOG_WARN;
	return -1;
}

const char *rl_log_level_name(int lvl)
{
	return lvl >= 0 && lvl < RL_LOG_NLEVELS ? log_names[lvl] : "?";
}

static size_t log_prefix(char *buf, size_t cap, int lvl, uint64_t connid)
{
	struct timespec ts;
	struct tm tm;
	char who[16], conn[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (rl_log_worker >= 0)
		snprintf(who, sizeof(who), "w%d", rl_log_worker);
	else
		snprintf(who, sizeof(who), "main");
	if (connid)
		snprintf(conn, sizeof(conn), "conn-%llu", (unsigned long long)connid);
	else
		snprintf(conn, sizeof(conn), "-");
	int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
			 rl_log_level_name(lvl), who, conn);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void rl_log_write(int lvl, uint64_t connid, const char *fmt, ...)
{
	char buf[1024];
	int saved = errno;
	size_t n = log_prefix(buf, sizeof(buf), lvl, connid);
	va_list ap;

	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m < sizeof(buf) - n - 1 ? (size_t)m : sizeof(buf) - n - 2;
	buf[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, buf, n);
	(void)w;
	errno = saved;
}

bool rl_ratelimit_ok(struct rl_ratelimit *r, uint64_t now_ms, uint64_t interval_ms,
		     uint64_t *suppressed)
{
	if (r->last_ms && now_ms - r->last_ms < interval_ms) {
		r->suppressed++;
		return false;
	}
	*suppressed = r->suppressed;
	r->suppressed = 0;
	r->last_ms = now_ms ? now_ms : 1;
	return true;
}

bool rl_ratelimit_flush(struct rl_ratelimit *r, uint64_t now_ms, uint64_t interval_ms,
			uint64_t *suppressed)
{
	if (r->suppressed == 0 || now_ms - r->last_ms < interval_ms)
		return false;
	*suppressed = r->suppressed;
	r->suppressed = 0;
	r->last_ms = now_ms ? now_ms : 1;
	return true;
}
