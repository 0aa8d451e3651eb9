/* log.c -- leveled, whole-line logging to stderr.
 * Threading: any thread; each line is formatted on the caller's stack and
 * written with one write(2), so lines from different workers never interleave. */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
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

/* ---- rl_log_escape ---------------------------------------------------- */

struct esc_out {
	char *p;
	size_t cap; /* usable bytes, the NUL excluded */
	size_t n;
	size_t mark; /* a length after which "..." still fits */
	bool cut;
};

static void esc_put(struct esc_out *o, const char *s, size_t k)
{
	if (o->cut)
		return;
	if (o->n + k > o->cap) {
		o->cut = true;
		return;
	}
	memcpy(o->p + o->n, s, k);
	o->n += k;
	if (o->n + 3 <= o->cap)
		o->mark = o->n;
}

static void esc_bytes(struct esc_out *o, const uint8_t *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n && !o->cut; i++) {
		uint8_t b = s[i];
		if (b == '\\') {
			esc_put(o, "\\\\", 2);
		} else if (b >= 0x20 && b < 0x7f) {
			esc_put(o, (const char *)&s[i], 1);
		} else {
			char x[4] = {'\\', 'x', hex[b >> 4], hex[b & 15]};
			esc_put(o, x, 4);
		}
	}
}

/* Index just past the string that opens at <i> (s[i] == '"'), or <len>. */
static size_t esc_string_end(const uint8_t *s, size_t i, size_t len)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return len;
}

/* Whether <b> is one of ',' '}' ']': what ends a bare value (not NUL). */
static bool esc_value_stop(uint8_t b)
{
	return b == ',' || b == '}' || b == ']';
}

/* Index just past the JSON-ish value that starts at <i>: a string, a
 * bracketed array/object (nesting and strings followed), or anything else
 * up to the next ',' '}' ']' (invalid JSON such as a bare word with spaces
 * is hidden whole). */
static size_t esc_value_end(const uint8_t *s, size_t i, size_t len)
{
	if (s[i] == '"')
		return esc_string_end(s, i, len);
	if (s[i] == '[' || s[i] == '{') {
		size_t depth = 0;
		while (i < len) {
			if (s[i] == '"') {
				i = esc_string_end(s, i, len);
				continue;
			}
			if (s[i] == '[' || s[i] == '{')
				depth++;
			else if ((s[i] == ']' || s[i] == '}') && --depth == 0)
				return i + 1;
			i++;
		}
		return len;
	}
	while (i < len && !esc_value_stop(s[i]))
		i++;
	return i;
}

static bool esc_has(const uint8_t *s, size_t n, const char *word)
{
	size_t w = strlen(word);
	for (size_t i = 0; i + w <= n; i++)
		if (strncasecmp((const char *)s + i, word, w) == 0)
			return true;
	return false;
}

/* Whether the key with raw bytes <k>/<n> (between the quotes) may name a
 * credential. An escaped key could spell one ("\u0074oken"): redact it too. */
static bool esc_secret_key(const uint8_t *k, size_t n)
{
	static const char *const words[] = {"token", "password", "secret", "authorization"};
	if (memchr(k, '\\', n))
		return true;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (esc_has(k, n, words[i]))
			return true;
	return false;
}

static size_t esc_ws(const uint8_t *s, size_t i, size_t len)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

size_t rl_log_escape(char *dst, size_t cap, const void *src, size_t len)
{
	const uint8_t *s = src;
	struct esc_out o = {dst, cap ? cap - 1 : 0, 0, 0, false};
	size_t i = 0;

	while (i < len && !o.cut) {
		if (s[i] != '"') {
			esc_bytes(&o, s + i, 1);
			i++;
			continue;
		}
		size_t end = esc_string_end(s, i, len);
		esc_bytes(&o, s + i, end - i);
		size_t close = end - (end > i + 1 && s[end - 1] == '"' ? 1 : 0);
		if (!esc_secret_key(s + i + 1, close - (i + 1))) {
			i = end;
			continue;
		}
		/* A credential's key: keep the colon, hide the value. */
		size_t v = esc_ws(s, end, len);
		if (v < len && s[v] == ':')
			v = esc_ws(s, v + 1, len);
		esc_bytes(&o, s + end, v - end);
		i = v;
		if (v < len && !esc_value_stop(s[v])) {
			esc_put(&o, "[redacted]", 10);
			i = esc_value_end(s, v, len);
		}
	}
	if (o.cut && o.cap >= 3) {
		memcpy(dst + o.mark, "...", 3);
		o.n = o.mark + 3;
	}
	if (cap)
		dst[o.n] = '\0';
	return o.n;
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
