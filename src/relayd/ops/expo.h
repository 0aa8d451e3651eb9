/* expo.h -- Prometheus text exposition (format 0.0.4) of relayd's metrics.
 * Threading: no shared state; each struct rl_expo belongs to its caller.
 * Reads the counters through rl_metrics_read/sum, so any thread may render. */
#ifndef RL_EXPO_H
#define RL_EXPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growing text buffer. On allocation failure <oom> is set and further
 * appends are dropped (check it once at the end). */
struct rl_expo {
	char *buf;
	size_t len;
	size_t cap;
	bool oom;
};

void rl_expo_init(struct rl_expo *e);
void rl_expo_free(struct rl_expo *e);
void rl_expo_printf(struct rl_expo *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "# HELP <name> <help>\n# TYPE <name> <type>\n" (help escaped as the format says). */
void rl_expo_family(struct rl_expo *e, const char *name, const char *type, const char *help);
/* "<name>{<labels>} <v>\n"; <labels> is already formatted (k="v",...) or NULL. */
void rl_expo_u64(struct rl_expo *e, const char *name, const char *labels, uint64_t v);
void rl_expo_double(struct rl_expo *e, const char *name, const char *labels, double v);
/* Appends <s> as an escaped label value (\\, \", \n), without quotes. */
void rl_expo_label_value(struct rl_expo *e, const char *s);

/* Static facts about the server for the info metrics. */
struct rl_expo_info {
	const char *version;
	const char *listen; /* "HOST:PORT" of the relay listener, or NULL */
};

/* Renders the whole /metrics body: every relay_* family, summed over the
 * workers, plus the per-worker ones. */
void rl_expo_metrics(struct rl_expo *e, const struct rl_expo_info *info);

#endif /* RL_EXPO_H */
