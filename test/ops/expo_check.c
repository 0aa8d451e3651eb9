/* expo_check.c -- strict Prometheus text format checker (see expo_check.h).
 * Threading: no shared state. */
#include "expo_check.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EC_MAX_NAME 200
#define EC_MAX_LABELS 512
#define EC_MAX_FAMILIES 512
#define EC_MAX_SERIES 8192

enum ec_type { EC_UNTYPED = 0, EC_COUNTER, EC_GAUGE, EC_HISTOGRAM, EC_SUMMARY, EC_NTYPES };
static const char *const ec_type_names[EC_NTYPES] = {"untyped", "counter", "gauge", "histogram",
						     "summary"};

struct ec_family {
	char name[EC_MAX_NAME];
	enum ec_type type;
	bool has_help, has_type, has_samples, closed;
	/* histogram bookkeeping (one label set besides le is enough for us,
	 * but track per "other labels" string) */
	char hist_key[EC_MAX_LABELS];
	double last_bucket, inf_bucket, count;
	bool seen_inf, seen_count, seen_sum;
};

struct ec_state {
	struct ec_family fam[EC_MAX_FAMILIES];
	size_t nfam;
	struct ec_family *current; /* family of the last sample */
	char **series;
	size_t nseries;
	unsigned line;
	char *err;
	size_t errlen;
};

static int ec_fail(struct ec_state *s, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(s->err, s->errlen, "line %u: ", s->line);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < s->errlen)
		vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static bool ec_name_ok(const char *p, size_t n, bool label)
{
	if (n == 0 || n >= EC_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		bool ok = isalpha((unsigned char)c) || c == '_' || (!label && c == ':') ||
			  (i > 0 && isdigit((unsigned char)c));
		if (!ok)
			return false;
	}
	return true;
}

static struct ec_family *ec_find(struct ec_state *s, const char *name, size_t n)
{
	for (size_t i = 0; i < s->nfam; i++)
		if (strlen(s->fam[i].name) == n && memcmp(s->fam[i].name, name, n) == 0)
			return &s->fam[i];
	return NULL;
}

static struct ec_family *ec_get(struct ec_state *s, const char *name, size_t n)
{
	struct ec_family *f = ec_find(s, name, n);
	if (f || s->nfam == EC_MAX_FAMILIES)
		return f;
	f = &s->fam[s->nfam++];
	memset(f, 0, sizeof(*f));
	memcpy(f->name, name, n);
	return f;
}

static bool ec_value_ok(const char *p, double *out)
{
	if (strcmp(p, "+Inf") == 0 || strcmp(p, "Inf") == 0) {
		*out = INFINITY;
		return true;
	}
	if (strcmp(p, "-Inf") == 0) {
		*out = -INFINITY;
		return true;
	}
	if (strcmp(p, "NaN") == 0) {
		*out = NAN;
		return true;
	}
	char *end;
	if (!*p || !(isdigit((unsigned char)*p) || *p == '-' || *p == '+' || *p == '.'))
		return false;
	*out = strtod(p, &end);
	return *end == '\0';
}

static int ec_comment(struct ec_state *s, char *l)
{
	char kw[8], name[EC_MAX_NAME + 1];
	int off = 0;
	if (sscanf(l, "# %7s %200s %n", kw, name, &off) < 2 ||
	    (strcmp(kw, "HELP") != 0 && strcmp(kw, "TYPE") != 0))
		return 0; /* a plain comment */
	if (!ec_name_ok(name, strlen(name), false))
		return ec_fail(s, "bad metric name '%s' in %s", name, kw);
	struct ec_family *f = ec_get(s, name, strlen(name));
	if (!f)
		return ec_fail(s, "too many families");
	if (f->has_samples)
		return ec_fail(s, "%s for %s after its samples", kw, name);
	if (strcmp(kw, "HELP") == 0) {
		if (f->has_help)
			return ec_fail(s, "second HELP for %s", name);
		f->has_help = true;
		for (const char *p = l + off; *p; p++)
			if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
				return ec_fail(s, "bad escape in HELP of %s", name);
			else if (*p == '\\')
				p++;
		return 0;
	}
	if (f->has_type)
		return ec_fail(s, "second TYPE for %s", name);
	f->has_type = true;
	const char *t = l + off;
	for (int i = 0; i < EC_NTYPES; i++)
		if (strcmp(t, ec_type_names[i]) == 0) {
			f->type = (enum ec_type)i;
			return 0;
		}
	return ec_fail(s, "unknown TYPE '%s' for %s", t, name);
}

/* Parses "{k="v",...}" at *pp; writes the canonical label text without
 * le into <other> and le's value into <le> (empty if absent). */
static int ec_labels(struct ec_state *s, const char **pp, char *other, size_t olen, char *le,
		     size_t lelen)
{
	const char *p = *pp + 1;
	size_t ol = 0;
	char names[32][EC_MAX_NAME];
	int nn = 0;
	other[0] = le[0] = '\0';
	while (*p != '}') {
		const char *n0 = p;
		while (*p && *p != '=')
			p++;
		if (*p != '=' || !ec_name_ok(n0, (size_t)(p - n0), true) || p[1] != '"')
			return ec_fail(s, "bad label near '%.20s'", n0);
		size_t nl = (size_t)(p - n0);
		for (int i = 0; i < nn; i++)
			if (strlen(names[i]) == nl && memcmp(names[i], n0, nl) == 0)
				return ec_fail(s, "duplicate label %.*s", (int)nl, n0);
		if (nn < 32) {
			memcpy(names[nn], n0, nl);
			names[nn++][nl] = '\0';
		}
		p += 2;
		char val[EC_MAX_LABELS];
		size_t vl = 0;
		while (*p && *p != '"') {
			if (*p == '\\') {
				if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					return ec_fail(s, "bad escape in label value");
				if (vl < sizeof(val) - 1)
					val[vl++] = *p;
				p++;
			}
			if (vl < sizeof(val) - 1)
				val[vl++] = *p;
			p++;
		}
		if (*p != '"')
			return ec_fail(s, "unterminated label value");
		val[vl] = '\0';
		p++;
		if (nl == 2 && memcmp(n0, "le", 2) == 0) {
			size_t c = vl < lelen - 1 ? vl : lelen - 1;
			memcpy(le, val, c);
			le[c] = '\0';
		} else if (ol < olen)
			ol += (size_t)snprintf(other + ol, ol < olen ? olen - ol : 0, "%.*s=%s,",
					       (int)nl, n0, val);
		if (*p == ',')
			p++;
		else if (*p != '}')
			return ec_fail(s, "expected ',' or '}' in labels");
	}
	*pp = p + 1;
	return 0;
}

static int ec_series_add(struct ec_state *s, const char *series, size_t n)
{
	for (size_t i = 0; i < s->nseries; i++)
		if (strlen(s->series[i]) == n && memcmp(s->series[i], series, n) == 0)
			return ec_fail(s, "duplicate series %.*s", (int)n, series);
	if (s->nseries == EC_MAX_SERIES)
		return ec_fail(s, "too many series");
	s->series[s->nseries] = strndup(series, n);
	if (!s->series[s->nseries])
		return ec_fail(s, "out of memory");
	s->nseries++;
	return 0;
}

/* The family a sample named <name> belongs to, by TYPE and suffix rules. */
static struct ec_family *ec_family_of(struct ec_state *s, const char *name, size_t n,
				      const char **suffix)
{
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	*suffix = "";
	for (size_t i = 0; i < 3; i++) {
		size_t sl = strlen(sfx[i]);
		if (n > sl && memcmp(name + n - sl, sfx[i], sl) == 0) {
			struct ec_family *f = ec_find(s, name, n - sl);
			if (f && (f->type == EC_HISTOGRAM || f->type == EC_SUMMARY)) {
				*suffix = sfx[i];
				return f;
			}
		}
	}
	return ec_get(s, name, n);
}

static int ec_hist(struct ec_state *s, struct ec_family *f, const char *suffix, const char *other,
		   const char *le, double v)
{
	if (strcmp(other, f->hist_key) != 0) {
		if (f->has_samples && (!f->seen_inf || !f->seen_count || !f->seen_sum))
			return ec_fail(s, "histogram %s: incomplete label set", f->name);
		snprintf(f->hist_key, sizeof(f->hist_key), "%s", other);
		f->last_bucket = 0;
		f->seen_inf = f->seen_count = f->seen_sum = false;
	}
	if (strcmp(suffix, "_bucket") == 0) {
		double bound;
		if (!le[0] || !ec_value_ok(le, &bound))
			return ec_fail(s, "histogram %s: bucket without a valid le", f->name);
		if (v < f->last_bucket)
			return ec_fail(s, "histogram %s: buckets not cumulative", f->name);
		f->last_bucket = v;
		if (isinf(bound)) {
			f->seen_inf = true;
			f->inf_bucket = v;
		}
	} else if (strcmp(suffix, "_count") == 0) {
		if (!f->seen_inf || v != f->inf_bucket)
			return ec_fail(s, "histogram %s: _count != le=\"+Inf\" bucket", f->name);
		f->seen_count = true;
		f->count = v;
	} else if (strcmp(suffix, "_sum") == 0) {
		f->seen_sum = true;
	} else {
		return ec_fail(s, "histogram %s: stray sample", f->name);
	}
	return 0;
}

static int ec_sample(struct ec_state *s, const char *l)
{
	const char *p = l;
	while (*p && *p != '{' && *p != ' ')
		p++;
	size_t nl = (size_t)(p - l);
	if (!ec_name_ok(l, nl, false))
		return ec_fail(s, "bad metric name '%.*s'", (int)nl, l);
	char other[EC_MAX_LABELS] = "", le[64] = "";
	if (*p == '{' && ec_labels(s, &p, other, sizeof(other), le, sizeof(le)) != 0)
		return -1;
	if (ec_series_add(s, l, (size_t)(p - l)) != 0)
		return -1;
	if (*p != ' ')
		return ec_fail(s, "expected a space before the value");
	while (*p == ' ')
		p++;
	char val[64];
	size_t vl = strcspn(p, " ");
	if (vl == 0 || vl >= sizeof(val))
		return ec_fail(s, "missing value");
	memcpy(val, p, vl);
	val[vl] = '\0';
	double v;
	if (!ec_value_ok(val, &v))
		return ec_fail(s, "bad value '%s'", val);
	p += vl;
	while (*p == ' ')
		p++;
	if (*p) { /* optional timestamp: an integer */
		char *end;
		strtoll(p, &end, 10);
		if (*end)
			return ec_fail(s, "bad timestamp '%s'", p);
	}
	const char *suffix;
	struct ec_family *f = ec_family_of(s, l, nl, &suffix);
	if (!f)
		return ec_fail(s, "too many families");
	if (f->closed)
		return ec_fail(s, "samples of %s are not contiguous", f->name);
	if (s->current && s->current != f)
		s->current->closed = true;
	s->current = f;
	f->has_samples = true;
	if (f->type == EC_COUNTER && !(v >= 0))
		return ec_fail(s, "counter %s is negative or NaN", f->name);
	if (f->type == EC_HISTOGRAM)
		return ec_hist(s, f, suffix, other, le, v);
	return 0;
}

int expo_check(const char *text, size_t n, size_t *nsamples, char *err, size_t errlen)
{
	struct ec_state *s = calloc(1, sizeof(*s));
	int rc = 0;
	size_t samples = 0;
	if (!s || !(s->series = calloc(EC_MAX_SERIES, sizeof(char *)))) {
		snprintf(err, errlen, "out of memory");
		free(s);
		return -1;
	}
	s->err = err;
	s->errlen = errlen;
	if (n == 0 || text[n - 1] != '\n')
		rc = ec_fail(s, "text must end with a newline");
	for (size_t off = 0; rc == 0 && off < n;) {
		const char *nl = memchr(text + off, '\n', n - off);
		size_t ll = (size_t)(nl - (text + off));
		char *l = strndup(text + off, ll);
		s->line++;
		if (!l)
			rc = ec_fail(s, "out of memory");
		else if (memchr(text + off, '\0', ll))
			rc = ec_fail(s, "NUL byte");
		else if (ll > 0 && l[0] == '#')
			rc = ec_comment(s, l);
		else if (ll > 0 && (rc = ec_sample(s, l)) == 0)
			samples++;
		free(l);
		off += ll + 1;
	}
	for (size_t i = 0; rc == 0 && i < s->nfam; i++) {
		struct ec_family *f = &s->fam[i];
		if (f->type == EC_HISTOGRAM && f->has_samples &&
		    (!f->seen_inf || !f->seen_count || !f->seen_sum))
			rc = ec_fail(s, "histogram %s: missing +Inf bucket, _count or _sum",
				     f->name);
	}
	for (size_t i = 0; i < s->nseries; i++)
		free(s->series[i]);
	free(s->series);
	free(s);
	if (nsamples)
		*nsamples = samples;
	return rc;
}

int expo_value(const char *text, const char *series, double *out)
{
	size_t sl = strlen(series);
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		if (strncmp(p, series, sl) == 0 && p[sl] == ' ') {
			char *end;
			*out = strtod(p + sl + 1, &end);
			return 0;
		}
		p = nl ? nl + 1 : NULL;
	}
	return -1;
}
