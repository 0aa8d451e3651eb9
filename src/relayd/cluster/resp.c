/* resp.c -- RESP2 encoding and parsing. Threading: see resp.h. */
#include "cluster/resp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RESP_BUF_MIN 4096u

void rl_buf_free(struct rl_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

uint8_t *rl_buf_reserve(struct rl_buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return b->p + b->len;
	if (b->off && b->cap - rl_buf_pending(b) >= n) {
		memmove(b->p, b->p + b->off, rl_buf_pending(b));
		b->len -= b->off;
		b->off = 0;
		return b->p + b->len;
	}
	size_t cap = b->cap ? b->cap : RESP_BUF_MIN;
	while (cap - rl_buf_pending(b) < n)
		cap *= 2;
	uint8_t *p = malloc(cap);
	if (!p)
		return NULL;
	if (b->p)
		memcpy(p, b->p + b->off, rl_buf_pending(b));
	free(b->p);
	b->len -= b->off;
	b->off = 0;
	b->p = p;
	b->cap = cap;
	return b->p + b->len;
}

void rl_buf_consume(struct rl_buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

void rl_buf_shrink(struct rl_buf *b, size_t keep)
{
	if (b->len == 0 && b->cap > keep) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

/* ---- commands --------------------------------------------------------------- */

static size_t resp_dec(uint8_t *out, uint64_t v)
{
	uint8_t tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (uint8_t)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

static size_t resp_digits(uint64_t v)
{
	size_t d = 1;
	while (v >= 10)
		v /= 10, d++;
	return d;
}

/* "<c><v>\r\n" */
static int resp_line(struct rl_buf *b, char c, uint64_t v)
{
	uint8_t *w = rl_buf_reserve(b, 24);
	if (!w)
		return -ENOMEM;
	w[0] = (uint8_t)c;
	size_t n = 1 + resp_dec(w + 1, v);
	w[n++] = '\r';
	w[n++] = '\n';
	b->len += n;
	return 0;
}

size_t rl_resp_arg_size(size_t n)
{
	return 1 + resp_digits(n) + 2 + n + 2;
}

int rl_resp_array(struct rl_buf *b, size_t argc)
{
	return resp_line(b, '*', argc);
}

uint8_t *rl_resp_arg_begin(struct rl_buf *b, size_t n)
{
	if (!rl_buf_reserve(b, rl_resp_arg_size(n)) || resp_line(b, '$', n))
		return NULL;
	return b->p + b->len;
}

void rl_resp_arg_end(struct rl_buf *b, size_t n)
{
	b->len += n;
	b->p[b->len++] = '\r';
	b->p[b->len++] = '\n';
}

int rl_resp_arg(struct rl_buf *b, const void *p, size_t n)
{
	uint8_t *w = rl_resp_arg_begin(b, n);
	if (!w)
		return -ENOMEM;
	if (n)
		memcpy(w, p, n);
	rl_resp_arg_end(b, n);
	return 0;
}

int rl_resp_arg_str(struct rl_buf *b, const char *s)
{
	return rl_resp_arg(b, s, strlen(s));
}

int rl_resp_arg_u64(struct rl_buf *b, uint64_t v)
{
	uint8_t d[20];
	return rl_resp_arg(b, d, resp_dec(d, v));
}

int rl_resp_cmdv(struct rl_buf *b, size_t argc, const char *const *argv)
{
	int rc = rl_resp_array(b, argc);
	for (size_t i = 0; i < argc && !rc; i++)
		rc = rl_resp_arg_str(b, argv[i]);
	return rc;
}

/* ---- replies ------------------------------------------------------------------ */

/* The integer of a "<c>[-]digits\r\n" line at p[0..n). Returns the line's
 * length, 0 if incomplete, -EPROTO if malformed. */
static long resp_num_line(const uint8_t *p, size_t n, long long *out)
{
	size_t i = 1;
	bool neg = false;
	long long v = 0;
	if (i < n && p[i] == '-')
		neg = true, i++;
	size_t start = i;
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
		if (v > (long long)1e17)
			return -EPROTO;
		v = v * 10 + (p[i] - '0');
	}
	if (i + 2 > n)
		return 0;
	if (i == start || p[i] != '\r' || p[i + 1] != '\n')
		return -EPROTO;
	*out = neg ? -v : v;
	return (long)i + 2;
}

/* One scalar (or an array header when <hdr> is set) at p[0..n). */
static long resp_value(const uint8_t *p, size_t n, size_t max_bulk, struct rl_resp_val *v)
{
	if (n < 1)
		return 0;
	memset(v, 0, sizeof(*v));
	switch (p[0]) {
	case '+':
	case '-': {
		const uint8_t *cr = memchr(p, '\r', n);
		if (!cr || (size_t)(cr - p) + 2 > n)
			return n > max_bulk ? -EPROTO : 0;
		if (cr[1] != '\n')
			return -EPROTO;
		v->type = p[0] == '+' ? RL_RESP_SIMPLE : RL_RESP_ERROR;
		v->p = p + 1;
		v->n = (size_t)(cr - p) - 1;
		return (long)(cr - p) + 2;
	}
	case ':': {
		v->type = RL_RESP_INT;
		return resp_num_line(p, n, &v->i);
	}
	case '$': {
		long long len;
		long l = resp_num_line(p, n, &len);
		if (l <= 0)
			return l;
		v->type = RL_RESP_BULK;
		if (len < 0) {
			v->nil = true;
			return l;
		}
		if ((unsigned long long)len > max_bulk)
			return -EPROTO;
		if ((size_t)l + (size_t)len + 2 > n)
			return 0;
		if (p[l + len] != '\r' || p[l + len + 1] != '\n')
			return -EPROTO;
		v->p = p + l;
		v->n = (size_t)len;
		return l + (long)len + 2;
	}
	case '*': {
		long long cnt;
		long l = resp_num_line(p, n, &cnt);
		if (l <= 0)
			return l;
		v->type = RL_RESP_ARRAY;
		if (cnt < 0)
			v->nil = true;
		else if ((unsigned long long)cnt > max_bulk)
			return -EPROTO;
		else
			v->n = (size_t)cnt;
		return l;
	}
	default:
		return -EPROTO;
	}
}

long rl_resp_parse(const uint8_t *p, size_t n, size_t max_bulk, struct rl_resp_reply *r)
{
	long off = resp_value(p, n, max_bulk, &r->top);
	if (off <= 0 || r->top.type != RL_RESP_ARRAY)
		return off;
	if (r->top.n > r->cap) {
		size_t cap = r->cap ? r->cap : 8;
		while (cap < r->top.n)
			cap *= 2;
		struct rl_resp_val *el = realloc(r->el, cap * sizeof(*el));
		if (!el)
			return -ENOMEM;
		r->el = el;
		r->cap = cap;
	}
	for (size_t i = 0; i < r->top.n; i++) {
		long l = resp_value(p + off, n - (size_t)off, max_bulk, &r->el[i]);
		if (l <= 0)
			return l;
		if (r->el[i].type == RL_RESP_ARRAY)
			return -EPROTO; /* nothing we send gets a nested reply */
		off += l;
	}
	return off;
}

void rl_resp_reply_free(struct rl_resp_reply *r)
{
	free(r->el);
	r->el = NULL;
	r->cap = 0;
}

bool rl_resp_is(const struct rl_resp_val *v, const char *s)
{
	size_t n = strlen(s);
	return (v->type == RL_RESP_BULK || v->type == RL_RESP_SIMPLE) && !v->nil && v->n == n &&
	       memcmp(v->p, s, n) == 0;
}
