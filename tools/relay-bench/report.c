/* report.c -- results as a readable table on stdout, or as one JSON object
 * (--json). Values are recorded in order; nested arrays of objects hold
 * per-step or per-case rows.
 * Threading: main thread only.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rb_report {
	bool json;
	struct relay_jw w;
	uint8_t *jbuf;
	char *text;
	size_t tlen, tcap;
	int depth;      /* 0 top level, 1 inside an array, 2 inside a row */
	bool row_first;
};

struct rb_report *rb_report_new(const struct rb_opts *o)
{
	struct rb_report *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->json = o->json;
	r->jbuf = malloc(1 << 20);
	r->tcap = 1 << 16;
	r->text = malloc(r->tcap);
	if (!r->jbuf || !r->text) {
		free(r->jbuf);
		free(r->text);
		free(r);
		return NULL;
	}
	r->text[0] = 0;
	relay_jw_init(&r->w, r->jbuf, 1 << 20);
	relay_jw_obj_begin(&r->w);
	relay_jw_key(&r->w, "workload");
	relay_jw_cstr(&r->w, o->workload);
	relay_jw_key(&r->w, "proto");
	relay_jw_cstr(&r->w, rb_proto_name(o->proto));
	return r;
}

static void text_add(struct rb_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void text_add(struct rb_report *r, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(r->text + r->tlen, r->tcap - r->tlen, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < r->tcap - r->tlen) {
			r->tlen += (size_t)n;
			return;
		}
		char *p = realloc(r->text, r->tcap * 2);
		if (!p)
			return;
		r->text = p;
		r->tcap *= 2;
	}
}

static void text_key(struct rb_report *r, const char *key)
{
	if (r->depth == 2)
		text_add(r, "%s%s=", r->row_first ? "    " : "  ", key);
	else
		text_add(r, "  %-26s ", key);
	r->row_first = false;
}

static void text_end(struct rb_report *r)
{
	if (r->depth != 2)
		text_add(r, "\n");
}

void rb_report_kv_str(struct rb_report *r, const char *key, const char *val)
{
	relay_jw_key(&r->w, key);
	relay_jw_cstr(&r->w, val);
	text_key(r, key);
	text_add(r, "%s", val);
	text_end(r);
}

void rb_report_kv_num(struct rb_report *r, const char *key, double val, const char *unit)
{
	char buf[64];
	relay_jw_key(&r->w, key);
	int n = val == (double)(long long)val && val < 1e15 && val > -1e15
			? snprintf(buf, sizeof buf, "%lld", (long long)val)
			: snprintf(buf, sizeof buf, "%.6g", val);
	if (val != val || val > 1e300 || val < -1e300)
		relay_jw_null(&r->w);
	else
		relay_jw_raw(&r->w, buf, (size_t)n);
	text_key(r, key);
	if (val >= 10000 && val < 1e15 && val == (double)(long long)val)
		text_add(r, "%lld%s%s", (long long)val, unit ? " " : "", unit ? unit : "");
	else
		text_add(r, "%.4g%s%s", val, unit ? " " : "", unit ? unit : "");
	text_end(r);
}

void rb_report_kv_int(struct rb_report *r, const char *key, int64_t val)
{
	relay_jw_key(&r->w, key);
	relay_jw_i64(&r->w, val);
	text_key(r, key);
	text_add(r, "%lld", (long long)val);
	text_end(r);
}

void rb_report_kv_bool(struct rb_report *r, const char *key, bool val)
{
	relay_jw_key(&r->w, key);
	relay_jw_bool(&r->w, val);
	text_key(r, key);
	text_add(r, "%s", val ? "yes" : "no");
	text_end(r);
}

void rb_report_arr_begin(struct rb_report *r, const char *key)
{
	relay_jw_key(&r->w, key);
	relay_jw_arr_begin(&r->w);
	text_add(r, "  %s:\n", key);
	r->depth = 1;
}

void rb_report_obj_begin(struct rb_report *r)
{
	relay_jw_obj_begin(&r->w);
	r->depth = 2;
	r->row_first = true;
}

void rb_report_obj_end(struct rb_report *r)
{
	relay_jw_obj_end(&r->w);
	text_add(r, "\n");
	r->depth = 1;
}

void rb_report_arr_end(struct rb_report *r)
{
	relay_jw_arr_end(&r->w);
	r->depth = 0;
}

void rb_report_emit(struct rb_report *r, bool ok)
{
	relay_jw_key(&r->w, "ok");
	relay_jw_bool(&r->w, ok);
	relay_jw_obj_end(&r->w);
	if (r->json) {
		if (r->w.overflow)
			fprintf(stderr, "relay-bench: JSON report overflowed\n");
		fwrite(r->jbuf, 1, r->w.len, stdout);
		fputc('\n', stdout);
	} else {
		fputs(r->text, stdout);
		printf("  %-26s %s\n", "result", ok ? "PASS" : "FAIL");
	}
	fflush(stdout);
}

void rb_report_free(struct rb_report *r)
{
	if (!r)
		return;
	free(r->jbuf);
	free(r->text);
	free(r);
}
