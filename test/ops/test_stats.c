/* test_stats.c -- the counter list (src/relayd/base/stats_list.h) and what
 * is generated from it: every row against the rules the list states, the
 * sum over worker slots, process-wide readers, the totals line; and that
 * docs/operations.md documents every family and uses the histogram's
 * definition word for word. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/stats.h"
#include "ops/metrics.h" /* RL_M_FANOUT_HELP */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* What a row's names must say about its kind and unit. */
static void check_name(const struct rl_stat_row *r, const char *name)
{
	bool total = ends_with(name, "_total");
	cr_expect_eq(total, r->kind == RL_STAT_COUNTER,
		     "%s (%s): a counter's name, and only a counter's, ends in _total", name,
		     r->field);
	cr_expect_eq(strstr(name, "bytes") != NULL, r->unit == RL_STAT_UNIT_BYTES,
		     "%s (%s): a name says \"bytes\" exactly when the unit is bytes", name,
		     r->field);
	cr_expect_eq(strstr(name, "seconds") != NULL, r->unit == RL_STAT_UNIT_MS,
		     "%s (%s): a name says \"seconds\" exactly when the unit is a time", name,
		     r->field);
}

Test(stats, every_row_follows_the_rules_of_the_list)
{
	for (size_t k = 0; k < RL_STAT_NROWS; k++) {
		const struct rl_stat_row *r = &rl_stat_rows[k];
		cr_assert(r->field && r->json, "row %zu: field and /stats key", k);
		cr_expect(r->prom || r->wprom, "%s: shown in /metrics", r->field);
		cr_expect_eq(r->help != NULL, r->prom != NULL, "%s: HELP with the family",
			     r->field);
		cr_expect_eq(r->whelp != NULL, r->wprom != NULL, "%s: per-worker HELP", r->field);
		if (r->prom) {
			cr_expect(starts_with(r->prom, "relay_"), "%s", r->prom);
			check_name(r, r->prom);
		}
		if (r->wprom) {
			cr_expect(starts_with(r->wprom, "relay_worker_"), "%s", r->wprom);
			check_name(r, r->wprom);
			cr_expect_eq(r->scope, RL_STAT_WORKER,
				     "%s: a PROCESS row has no per-worker value", r->field);
			cr_expect_eq(r->dim, RL_STAT_DIM_NONE,
				     "%s: per-worker families are one number", r->field);
		}
		cr_expect_eq(strstr(r->json, "bytes") != NULL, r->unit == RL_STAT_UNIT_BYTES,
			     "%s: /stats key", r->json);
		cr_expect_eq(ends_with(r->json, "_ms"), r->unit == RL_STAT_UNIT_MS,
			     "%s: a time's /stats key ends in _ms, and only a time's", r->json);
		if (r->dim == RL_STAT_DIM_NONE) {
			cr_expect_eq(r->n, 1, "%s", r->field);
			cr_expect_eq(r->totals_at, 0, "%s", r->field);
		} else {
			cr_expect_gt(r->n, 1, "%s", r->field);
			cr_expect_null(r->prom_labels, "%s: labels come from the dimension",
				       r->field);
			cr_expect_lt(r->totals_at, r->n, "%s", r->field);
			cr_expect_lt(rl_stats_dim_first(r->dim), r->n, "%s", r->field);
			cr_expect_not_null(rl_stats_dim_label(r->dim), "%s", r->field);
		}
		cr_expect_eq(r->scope == RL_STAT_PROCESS ? r->n : 1, 1,
			     "%s: a PROCESS row is one number (one reader)", r->field);
		for (size_t j = 0; j < k; j++) {
			const struct rl_stat_row *o = &rl_stat_rows[j];
			cr_expect(!same(o->json, r->json), "/stats key %s twice", r->json);
			cr_expect(!same(o->wprom, r->wprom), "family %s twice", r->wprom);
			cr_expect(!same(o->totals, r->totals), "totals label %s twice", r->totals);
			if (!same(o->prom, r->prom))
				continue;
			/* One family over several rows: adjacent, one kind and HELP,
			 * told apart by their labels. */
			cr_expect(same(rl_stat_rows[k - 1].prom, r->prom),
				  "%s: rows of one family are adjacent", r->prom);
			cr_expect_eq(o->kind, r->kind, "%s", r->prom);
			cr_expect_str_eq(o->help, r->help, "%s", r->prom);
			cr_expect(r->prom_labels && o->prom_labels &&
				      strcmp(r->prom_labels, o->prom_labels) != 0,
				  "%s: rows told apart by labels", r->prom);
		}
	}
}

Test(stats, dimensions_name_their_elements_as_the_protocol_does)
{
	cr_expect_str_eq(rl_stats_dim_name(RL_STAT_DIM_MSG_TYPE, RELAY_MSG_MESSAGE), "MESSAGE");
	cr_expect_str_eq(rl_stats_dim_name(RL_STAT_DIM_MSG_TYPE, 0), "UNKNOWN");
	cr_expect_eq(rl_stats_dim_first(RL_STAT_DIM_MSG_TYPE), 0);
	cr_expect_eq(rl_stats_dim_first(RL_STAT_DIM_ERR_CODE), RELAY_ERR_NONE + 1);
	cr_expect_str_eq(rl_stats_dim_name(RL_STAT_DIM_ERR_CODE, RELAY_ERR_SLOW_CONSUMER),
			 "SLOW_CONSUMER");
	cr_expect_eq(rl_stats_dim_first(RL_STAT_DIM_AUTH_FAIL), 0);
	cr_expect_str_eq(rl_stats_dim_label(RL_STAT_DIM_AUTH_FAIL), "reason");
	cr_expect_str_eq(rl_stats_dim_name(RL_STAT_DIM_AUTH_FAIL, RL_AUTH_FAIL_HELLO_TIMEOUT),
			 "hello_timeout");
	for (unsigned i = 0; i < RL_AUTH_FAIL_N; i++) {
		const char *n = rl_stats_dim_name(RL_STAT_DIM_AUTH_FAIL, i);
		cr_expect(n && *n && strspn(n, "abcdefghijklmnopqrstuvwxyz_") == strlen(n),
			  "reason %u: a snake_case label value", i);
	}
	cr_expect_str_eq(rl_stats_kind_name(RL_STAT_COUNTER), "counter");
	cr_expect_str_eq(rl_stats_kind_name(RL_STAT_GAUGE), "gauge");
}

static uint64_t rooms_7(void)
{
	return 7;
}

/* Three workers counting, a reader for one process-wide gauge. */
static void count_three_workers(void)
{
	cr_assert_eq(rl_stats_init(3), 0);
	for (unsigned k = 0; k < 3; k++) {
		struct rl_stats *w = rl_stats_slot(k);
		RL_STAT_ADD(w, conns_accepted, 4);
		RL_STAT_ADD(w, frames_in[RELAY_MSG_MESSAGE], k + 1);
		RL_STAT_ADD(w, msgs_delivered, 2 * k);
		RL_STAT_ADD(w, errors[RELAY_ERR_NOT_IN_ROOM], 1);
		RL_STAT_ADD(w, bytes_in, 100);
		RL_STAT_ADD(w, out_queued, 10);
		RL_STAT_SET(w, rooms, 1000); /* a PROCESS row: never read from a slot */
	}
	RL_STAT_SUB(rl_stats_slot(2), out_queued, 10);
	RL_STAT_ADD(rl_stats_slot(1), slow_consumers, 1);
	rl_stats_set_reader(RL_STAT_ID(rooms), rooms_7);
	for (int i = 0; i < 12; i++)
		cr_assert(rl_stats_conn_try_add(100));
	for (int i = 0; i < 12; i++)
		rl_stats_conn_del();
}

Test(stats, sum_adds_worker_slots_and_reads_process_rows, .fini = rl_stats_fini)
{
	struct rl_stats s;
	count_three_workers();
	rl_stats_sum(&s);
	cr_expect_eq(s.conns_accepted, 12);
	cr_expect_eq(s.frames_in[RELAY_MSG_MESSAGE], 6);
	cr_expect_eq(s.frames_in[RELAY_MSG_HELLO], 0);
	cr_expect_eq(s.msgs_delivered, 6);
	cr_expect_eq(s.errors[RELAY_ERR_NOT_IN_ROOM], 3);
	cr_expect_eq(s.out_queued, 20);
	cr_expect_eq(s.rooms, 7, "from the reader, not the slots");
	cr_expect_eq(s.conns_peak, 12, "rl_stats_peak is the default reader");
	cr_expect_eq(s.memberships, 0, "no reader: 0");
}

Test(stats, a_worker_read_has_its_own_rows_and_no_process_rows, .fini = rl_stats_fini)
{
	struct rl_stats s;
	count_three_workers();
	rl_stats_read(1, &s);
	cr_expect_eq(s.frames_in[RELAY_MSG_MESSAGE], 2);
	cr_expect_eq(s.msgs_delivered, 2);
	cr_expect_eq(s.slow_consumers, 1);
	cr_expect_eq(s.rooms, 0);
	cr_expect_eq(s.conns_peak, 0);
	rl_stats_read(3, &s); /* no such worker */
	cr_expect_eq(s.conns_accepted, 0);
}

Test(stats, totals_line_shows_the_labelled_rows_in_list_order, .fini = rl_stats_fini)
{
	struct rl_stats s;
	char line[512];
	count_three_workers();
	rl_stats_sum(&s);
	int n = rl_stats_format_totals(&s, line, sizeof(line));
	cr_expect_str_eq(line, "relayd stopped: peak connections 12, connections served 12, "
			       "messages in 6, messages out 6, bytes in 300, bytes out 0, "
			       "slow consumers dropped 1");
	cr_expect_eq(n, (int)strlen(line));
	char small[20];
	cr_expect_eq(rl_stats_format_totals(&s, small, sizeof(small)), n,
		     "truncation reports the full length, as snprintf does");
	cr_expect_str_eq(small, "relayd stopped: pea");
}

static char *read_operations_md(void)
{
	FILE *f = fopen(RL_DOCS_OPERATIONS, "rb");
	cr_assert_not_null(f, "%s", RL_DOCS_OPERATIONS);
	static char buf[1 << 17];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	cr_assert_lt(n, sizeof(buf) - 1, "operations.md grew past the test's buffer");
	buf[n] = '\0';
	return buf;
}

Test(stats, every_family_is_in_the_metrics_table_of_operations_md)
{
	const char *doc = read_operations_md();
	char want[128];
	for (size_t k = 0; k < RL_STAT_NROWS; k++) {
		const char *names[2] = {rl_stat_rows[k].prom, rl_stat_rows[k].wprom};
		for (int j = 0; j < 2; j++) {
			if (!names[j])
				continue;
			snprintf(want, sizeof(want), "`%s`", names[j]);
			cr_expect(strstr(doc, want), "%s is not documented", want);
		}
	}
}

Test(stats, operations_md_defines_fanout_latency_in_the_help_text_words)
{
	const char *doc = read_operations_md();
	char want[sizeof(RL_M_FANOUT_HELP)];
	/* The table cell starts in lower case and has no final stop. */
	snprintf(want, sizeof(want), "%s", RL_M_FANOUT_HELP);
	want[0] = (char)tolower((unsigned char)want[0]);
	want[strlen(want) - 1] = '\0';
	cr_expect(strstr(doc, want), "docs/operations.md lacks: %s", want);
}
