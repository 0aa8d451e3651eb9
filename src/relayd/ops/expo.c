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

#define SNAP(f) offsetof(struct rl_metrics_snap, f)

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

/* Families that are one number: a field of the summed snapshot. */
struct expo_simple {
	const char *name;
	const char *type;
	const char *help;
	size_t off; /* SNAP(field) */
};

static const struct expo_simple expo_simple_table[] = {
    {"relay_connections", "gauge", "Client connections currently open.", SNAP(conns)},
    {"relay_connections_peak", "gauge", "Most client connections open at once since start.",
     SNAP(peak_conns)},
    {"relay_connections_accepted_total", "counter", "Client connections accepted.", SNAP(accepted)},
    {"relay_connections_closed_total", "counter", "Client connections closed, any reason.",
     SNAP(closed)},
    {"relay_rooms", "gauge", "Rooms that currently exist.", SNAP(rooms)},
    {"relay_room_memberships", "gauge", "Connection-in-room memberships, over all rooms.",
     SNAP(memberships)},
    {"relay_messages_delivered_total", "counter",
     "MESSAGE frames queued to room members (presence events included).", SNAP(delivered)},
    {"relay_frames_out_total", "counter", "Frames queued to clients, all types.", SNAP(frames_out)},
    {"relay_bytes_in_total", "counter", "Bytes read from client sockets.", SNAP(bytes_in)},
    {"relay_bytes_out_total", "counter", "Bytes written to client sockets.", SNAP(bytes_out)},
    {"relay_outbound_queued_bytes", "gauge", "Bytes waiting in connections' send queues.",
     SNAP(out_queued)},
    {"relay_slow_consumers_total", "counter",
     "Connections closed as slow consumers (SLOW_CONSUMER).", SNAP(slow_consumers)},
    {"relay_client_error_frames_total", "counter",
     "ERROR frames received from clients (counted and ignored).", SNAP(client_errors)},
    {"relay_client_memory_budget_bytes", "gauge",
     "The client memory budget, --max-client-memory (0 = unlimited).", SNAP(mem_budget)},
    {"relay_client_memory_bytes", "gauge",
     "Memory held for clients, as the budget counts it: queued output, partial frames, "
     "cross-worker messages.", SNAP(client_mem)},
    {"relay_partial_frame_bytes", "gauge", "Bytes allocated for clients' partial frames.",
     SNAP(partial_frame_bytes)},
    {"relay_client_memory_evictions_total", "counter",
     "Connections dropped (SLOW_CONSUMER) to get back under the client memory budget.",
     SNAP(budget_evictions)},
    {"relay_client_memory_read_holds_total", "counter",
     "Times a connection with a large partial frame stopped being read while over the budget.",
     SNAP(read_holds)},
};

#define EXPO_NSIMPLE (sizeof(expo_simple_table) / sizeof(expo_simple_table[0]))

static uint64_t expo_field(const struct rl_metrics_snap *m, size_t off)
{
	uint64_t v;
	memcpy(&v, (const char *)m + off, sizeof(v));
	return v;
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

static void expo_simple(struct rl_expo *e, const struct rl_metrics_snap *m)
{
	for (size_t i = 0; i < EXPO_NSIMPLE; i++) {
		const struct expo_simple *s = &expo_simple_table[i];
		rl_expo_family(e, s->name, s->type, s->help);
		rl_expo_u64(e, s->name, NULL, expo_field(m, s->off));
	}
}

static void expo_refused(struct rl_expo *e, const struct rl_metrics_snap *m)
{
	const char *n = "relay_connections_refused_total";
	rl_expo_family(e, n, "counter", "Connections refused at accept, by reason.");
	rl_expo_u64(e, n, "reason=\"server_full\"", m->refused_full);
	rl_expo_u64(e, n, "reason=\"emfile\"", m->refused_emfile);
}

static void expo_frames(struct rl_expo *e, const struct rl_metrics_snap *m)
{
	const char *n = "relay_frames_in_total";
	char lab[64];
	rl_expo_family(e, n, "counter",
		       "Complete frames read from clients, by type (UNKNOWN: not in the table).");
	for (unsigned t = 0; t < RELAY_MSG_NTYPES; t++) {
		snprintf(lab, sizeof(lab), "type=\"%s\"", relay_msg_type_name(t));
		rl_expo_u64(e, n, lab, m->frames_in[t]);
	}
}

static void expo_errors(struct rl_expo *e, const struct rl_metrics_snap *m)
{
	const char *n = "relay_protocol_errors_total";
	char lab[64];
	rl_expo_family(e, n, "counter", "ERROR frames sent to clients, by code.");
	for (unsigned c = RELAY_ERR_NONE + 1; c < RELAY_ERR_NCODES; c++) {
		snprintf(lab, sizeof(lab), "code=\"%s\"", relay_err_name((enum relay_err)c));
		rl_expo_u64(e, n, lab, m->errors[c]);
	}
}

static void expo_histogram(struct rl_expo *e, const struct rl_metrics_snap *m)
{
	const char *n = "relay_fanout_latency_seconds";
	char lab[64];
	uint64_t cum = 0;
	rl_expo_family(e, n, "histogram",
		       "In-server fan-out latency: frame read to the last member's write.");
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
static const struct expo_simple expo_worker_table[] = {
    {"relay_worker_connections", "gauge", "Client connections open, per worker.", SNAP(conns)},
    {"relay_worker_connections_accepted_total", "counter",
     "Client connections accepted, per worker.", SNAP(accepted)},
    {"relay_worker_inbox_items_total", "counter",
     "Cross-worker items processed from the worker's inbox.", SNAP(inbox_items)},
    {"relay_worker_messages_delivered_total", "counter",
     "MESSAGE frames queued to members, per worker.", SNAP(delivered)},
    {"relay_worker_outbound_queued_bytes", "gauge", "Bytes waiting in send queues, per worker.",
     SNAP(out_queued)},
    {"relay_worker_bytes_in_total", "counter", "Bytes read from client sockets, per worker.",
     SNAP(bytes_in)},
    {"relay_worker_bytes_out_total", "counter", "Bytes written to client sockets, per worker.",
     SNAP(bytes_out)},
};

#define EXPO_NWORKER (sizeof(expo_worker_table) / sizeof(expo_worker_table[0]))

static void expo_workers(struct rl_expo *e, const struct rl_metrics_snap *w, unsigned n)
{
	char lab[32];
	for (size_t i = 0; i < EXPO_NWORKER; i++) {
		const struct expo_simple *f = &expo_worker_table[i];
		rl_expo_family(e, f->name, f->type, f->help);
		for (unsigned k = 0; k < n; k++) {
			snprintf(lab, sizeof(lab), "worker=\"%u\"", k);
			rl_expo_u64(e, f->name, lab, expo_field(&w[k], f->off));
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
	rl_metrics_add_global(&sum);
	expo_info(e, info);
	expo_simple(e, &sum);
	expo_refused(e, &sum);
	expo_frames(e, &sum);
	expo_errors(e, &sum);
	expo_histogram(e, &sum);
	expo_workers(e, w, n);
	free(w);
}
