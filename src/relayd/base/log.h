/* log.h -- leveled log lines to stderr, one write(2) per line.
 * Threading: any thread. The level is a global read with relaxed atomics (a
 * later SIGHUP reload may change it); the worker index is thread-local. The
 * macros do not evaluate their arguments below the active level. */
#ifndef RL_LOG_H
#define RL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rl_log_level {
	RL_LOG_ERROR = 0,
	RL_LOG_WARN,
	RL_LOG_INFO,
	RL_LOG_DEBUG,
	RL_LOG_NLEVELS
};

extern int rl_log_level_cur;         /* enum rl_log_level; atomic access */
extern _Thread_local int rl_log_worker; /* -1 on the main thread */

static inline bool rl_log_on(int lvl)
{
	return lvl <= __atomic_load_n(&rl_log_level_cur, __ATOMIC_RELAXED);
}

void rl_log_set_level(int lvl);
/* Writes one line: time, level, worker, "conn-<connid>" (or "-" for 0). */
void rl_log_write(int lvl, uint64_t connid, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "error", "warn", "info", "debug" -> level, or -1. */
int rl_log_level_parse(const char *s);
const char *rl_log_level_name(int lvl);

/* "0b" + 8 binary digits of <v> into <buf> (>= 11 bytes); returns <buf>. */
const char *rl_log_bits8(unsigned v, char *buf);

/* Renders peer bytes <src>/<len> for a log line into <dst> (NUL-terminated
 * when <cap> > 0): printable ASCII as is, '\' as "\\", every other byte
 * (controls, DEL, anything non-ASCII) as "\xNN", so a peer cannot write to
 * the terminal or forge log lines. The value after any quoted key that
 * looks like a credential (contains "token", "password", "secret" or
 * "authorization", any case, or has an escape in it) is written as
 * "[redacted]"; keys are found textually, so this holds for invalid JSON
 * too. A rendering that does not fit ends with "...". Returns its length.
 * Payloads are logged only through this. */
size_t rl_log_escape(char *dst, size_t cap, const void *src, size_t len);

#define rl_log(lvl, connid, ...)                                   \
	do {                                                       \
		if (rl_log_on(lvl))                                \
			rl_log_write((lvl), (connid), __VA_ARGS__); \
	} while (0)

#define RL_ERRORF(connid, ...) rl_log(RL_LOG_ERROR, connid, __VA_ARGS__)
#define RL_WARNF(connid, ...) rl_log(RL_LOG_WARN, connid, __VA_ARGS__)
#define RL_INFOF(connid, ...) rl_log(RL_LOG_INFO, connid, __VA_ARGS__)
#define RL_DEBUGF(connid, ...) rl_log(RL_LOG_DEBUG, connid, __VA_ARGS__)

/* Rate-limited reporter for errors that can repeat in a loop (EMFILE, accept
 * failures): at most one line per <interval_ms>, counting what it suppressed.
 * One per worker and kind; not shared between threads. */
struct rl_ratelimit {
	uint64_t last_ms;
	uint64_t suppressed;
};

/* Returns true when a line may be written now; then *<suppressed> holds how
 * many were swallowed since the previous line. */
bool rl_ratelimit_ok(struct rl_ratelimit *r, uint64_t now_ms, uint64_t interval_ms,
		     uint64_t *suppressed);

#endif
