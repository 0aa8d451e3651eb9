/* expo.c -- renders relayd's counters as Prometheus text exposition 0.0.4.
 * Threading: stateless; reads counters with relaxed loads (metrics.c), so the
 * admin thread renders while workers keep counting. */
#include "ops/expo.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/metrics.h"

void rl_expo_init(struct rl_expo *e)
{
	memset(e, 0, sizeof(*e));
}

void rl_expo_free(struct rl_expo *e)
{
	free(e->buf);
	rl_expo_init(e);
}

static bool expo_reserve(struct rl_expo *e, size_t more)
{
	if (e->oom)
		return false;
	if (e->len + more + 1 <= e->cap)
		return true;
	size_t cap = e->cap ? e->cap : 4096;
	while (cap < e->len + more + 1)
		cap *= 2;
	char *p = realloc(e->buf, cap);
	if (!p) {
		e->oom = true;
		return false;
	}
	e->buf = p;
	e->cap = cap;
	return true;
}

void rl_expo_printf(struct rl_expo *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !expo_reserve(e, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
	va_end(ap);
	e->len += (size_t)n;
}

static void expo_putc(struct rl_expo *e, char c)
{
	if (!expo_reserve(e, 1))
		return;
	e->buf[e->len++] = c;
	e->buf[e->len] = '\0';
}

/* Escapes backslash and newline (HELP text); also '"' when <quote>. */
static void expo_escaped(struct rl_expo *e, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\' || (quote && *s == '"')) {
			expo_putc(e, '\\');
			expo_putc(e, *s);
		} else if (*s == '\n') {
			expo_putc(e, '\\');
			expo_putc(e, 'n');
		} else {
			expo_putc(e, *s);
		}
	}
}

void rl_expo_label_value(struct rl_expo *e, const char *s)
{
	expo_escaped(e, s, true);
}

void rl_expo_family(struct rl_expo *e, const char *name, const char *type, const char *help)
{
	rl_expo_printf(e, "# HELP %s ", name);
	expo_escaped(e, help, false);
	rl_expo_printf(e, "\n# TYPE %s %s\n", name, type);
}

void rl_expo_u64(struct rl_expo *e, const char *name, const char *labels, uint64_t v)
{
	if (labels && *labels)
		rl_expo_printf(e, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
	else
		rl_expo_printf(e, "%s %llu\n", name, (unsigned long long)v);
}

void rl_expo_double(struct rl_expo *e, const char *name, const char *labels, double v)
{
	if (labels && *labels)
		rl_expo_printf(e, "%s{%s} %.15g\n", name, labels, v);
	else
		rl_expo_printf(e, "%s %.15g\n", name, v);
}

static void expo_info(struct rl_expo *e, const struct rl_expo_info *info)
{
	rl_expo_family(e, "relay_build_info", "gauge", "Always 1; the version as a label.");
	rl_expo_printf(e, "relay_build_info{version=\"");
	rl_expo_label_value(e, info && info->version ? info->version : "unknown");
	rl_expo_printf(e, "\"} 1\n");
	rl_expo_family(e, "relay_start_time_seconds", "gauge",
		       "Start time of the server since the Unix epoch, in seconds.");
	rl_expo_double(e, "relay_start_time_seconds", NULL, rl_metrics_start_wall());
	rl_expo_family(e, "relay_uptime_seconds", "gauge", "Seconds since the server started.");
	rl_expo_double(e, "relay_uptime_seconds", NULL,
		       (double)(rl_metrics_now_ns() - rl_metrics_start_ns()) / 1e9);
	rl_expo_family(e, "relay_workers", "gauge", "Worker threads.");
	rl_expo_u64(e, "relay_workers", NULL, rl_metrics_nworkers());
	rl_expo_family(e, "relay_shutting_down", "gauge",
		       "1 once graceful shutdown has begun, else 0.");
	rl_expo_u64(e, "relay_shutting_down", NULL, rl_metrics_shutting_down() ? 1 : 0);
}

/* "k=\"NAME\"" for element <i> of <r>'s dimension, or <r>'s fixed labels. */
static const char *expo_labels(const struct rl_stat_row *r, unsigned i, char *buf, size_t len)
{
	if (r->dim == RL_STAT_DIM_NONE)
		return r->prom_labels;
	snprintf(buf, len, "%s=\"%s\"", rl_stats_dim_label(r->dim), rl_stats_dim_name(r->dim, i));
	return buf;
}

/* One sample of row <r>: a time (unit MS) in seconds, as Prometheus names it. */
static void expo_sample(struct rl_expo *e, const struct rl_stat_row *r, const char *name,
			const char *labels, uint64_t v)
{
	if (r->unit == RL_STAT_UNIT_MS)
		rl_expo_double(e, name, labels, (double)v / 1e3);
	else
		rl_expo_u64(e, name, labels, v);
}

/* Every row with a summed family, in list order; a family's HELP and TYPE
 * once, before its first row. */
static void expo_rows(struct rl_expo *e, const struct rl_stats *s)
{
	const char *family = NULL;
	char lab[64];
	for (size_t k = 0; k < RL_STAT_NROWS; k++) {
		const struct rl_stat_row *r = &rl_stat_rows[k];
		if (!r->prom)
			continue;
		if (!family || strcmp(family, r->prom) != 0)
			rl_expo_family(e, r->prom, rl_stats_kind_name(r->kind), r->help);
		family = r->prom;
		for (unsigned i = rl_stats_dim_first(r->dim); i < r->n; i++)
			expo_sample(e, r, r->prom, expo_labels(r, i, lab, sizeof(lab)),
				    rl_stats_value(s, r, i));
	}
}

static void expo_histogram(struct rl_expo *e, const struct rl_metrics_snap *m)
{
	const char *n = "relay_fanout_latency_seconds";
	char lab[64];
	uint64_t cum = 0;
	rl_expo_family(e, n, "histogram", RL_M_FANOUT_HELP);
	for (unsigned b = 0; b < RL_M_FANOUT_NBUCKETS; b++) {
		cum += m->fanout_bucket[b];
		if (b < RL_M_FANOUT_NBUCKETS - 1)
			snprintf(lab, sizeof(lab), "le=\"%g\"",
				 (double)rl_metrics_fanout_le_ns[b] / 1e9);
		else
			snprintf(lab, sizeof(lab), "le=\"+Inf\"");
		rl_expo_u64(e, "relay_fanout_latency_seconds_bucket", lab, cum);
	}
	rl_expo_double(e, "relay_fanout_latency_seconds_sum", NULL, (double)m->fanout_sum_ns / 1e9);
	rl_expo_u64(e, "relay_fanout_latency_seconds_count", NULL, cum);
}

/* Per-worker families: one sample per worker, label worker="K". */
static void expo_workers(struct rl_expo *e, const struct rl_metrics_snap *w, unsigned n)
{
	char lab[32];
	for (size_t k = 0; k < RL_STAT_NROWS; k++) {
		const struct rl_stat_row *r = &rl_stat_rows[k];
		if (!r->wprom)
			continue;
		rl_expo_family(e, r->wprom, rl_stats_kind_name(r->kind), r->whelp);
		for (unsigned i = 0; i < n; i++) {
			snprintf(lab, sizeof(lab), "worker=\"%u\"", i);
			expo_sample(e, r, r->wprom, lab, rl_stats_value(&w[i].st, r, 0));
		}
	}
}

void rl_expo_metrics(struct rl_expo *e, const struct rl_expo_info *info)
{
	unsigned n = rl_metrics_nworkers();
	struct rl_metrics_snap *w = calloc(n ? n : 1, sizeof(*w));
	struct rl_metrics_snap sum;
	if (!w) {
		e->oom = true;
		return;
	}
	memset(&sum, 0, sizeof(sum));
	for (unsigned k = 0; k < n; k++) {
		rl_metrics_read(k, &w[k]);
		rl_metrics_snap_add(&sum, &w[k]);
	}
	/* Sum the per-worker copies (not a second read) so totals and
	 * per-worker lines agree; then the process-wide gauges. */
	rl_metrics_read_process(&sum);
	expo_info(e, info);
	expo_rows(e, &sum.st);
	expo_histogram(e, &sum);
	expo_workers(e, w, n);
	free(w);
}
