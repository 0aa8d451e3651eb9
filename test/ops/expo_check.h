/* expo_check.h -- a strict checker for the Prometheus text exposition format
 * (0.0.4), for the ops tests and for operators (relay-expo-check < scrape).
 * Threading: no shared state. */
#ifndef RL_EXPO_CHECK_H
#define RL_EXPO_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Checks <n> bytes of <text>: every line is a HELP, a TYPE, a comment or a
 * sample with a valid name, labels and value; HELP/TYPE at most once per
 * family and before its samples; a family's samples contiguous; no duplicate
 * series; counters non-negative; histograms with cumulative buckets, an
 * le="+Inf" bucket equal to _count, and a _sum. Returns 0, or -1 with
 * "line N: reason" in <err>. Counts samples into *<nsamples> (may be NULL). */
int expo_check(const char *text, size_t n, size_t *nsamples, char *err, size_t errlen);

/* Value of the series <series> (exactly as rendered: "name" or
 * "name{k=\"v\",...}") in <text>. Returns 0 and sets *<out>, or -1 if absent. */
int expo_value(const char *text, const char *series, double *out);

#endif /* RL_EXPO_CHECK_H */
