/* jw.c -- a small JSON writer into a fixed caller buffer, for replies.
 * Commas are placed by the writer; strings are escaped so that the output is
 * always valid JSON: invalid UTF-8 bytes in a string become \ufffd.
 * Threading: a writer belongs to its caller.
 */
#include "relay/protocol.h"
#include "jw_tables.h"
#include "proto_internal.h"

#include <string.h>

#define JW_MAX_DEPTH 32

void relay_jw_init(struct relay_jw *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
	w->_first = 0;
	w->_depth = 0;
	w->_after_key = false;
}

static void jw_put(struct relay_jw *w, const void *p, size_t n)
{
	if (w->overflow || n == 0)
		return;
	if (n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void jw_byte(struct relay_jw *w, uint8_t c)
{
	if (w->overflow)
		return;
	if (w->len == w->cap) {
		w->overflow = true;
		return;
	}
	w->buf[w->len++] = c;
}

/* Comma bookkeeping before any value or key at the current depth. Bit d-1 of
 * _first belongs to depth d (1-32); a top-level value never takes a comma. */
static void jw_sep(struct relay_jw *w)
{
	if (w->_after_key) {
		w->_after_key = false;
		return;
	}
	if (w->_depth == 0)
		return;
	uint32_t bit = 1u << (w->_depth - 1);
	if (w->_first & bit)
		w->_first &= ~bit;
	else
		jw_byte(w, ',');
}

static void jw_open(struct relay_jw *w, uint8_t c)
{
	jw_sep(w);
	if (w->_depth >= JW_MAX_DEPTH) {
		w->overflow = true; /* misuse: deeper than the writer tracks */
		return;
	}
	jw_byte(w, c);
	w->_depth++;
	w->_first |= 1u << (w->_depth - 1);
}

static void jw_close(struct relay_jw *w, uint8_t c)
{
	if (w->_depth == 0) {
		w->overflow = true; /* misuse: nothing open */
		return;
	}
	w->_depth--;
	w->_after_key = false;
	jw_byte(w, c);
}

void relay_jw_obj_begin(struct relay_jw *w) { jw_open(w, '{'); }
void relay_jw_obj_end(struct relay_jw *w) { jw_close(w, '}'); }
void relay_jw_arr_begin(struct relay_jw *w) { jw_open(w, '['); }
void relay_jw_arr_end(struct relay_jw *w) { jw_close(w, ']'); }

/* Length of the run of bytes at <s> that need no escaping. */
static size_t jw_plain_run(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (n - i >= 8) {
		uint64_t v = relay_load64(s + i);
		uint64_t m = relay_swar_less(v, 0x20) | relay_swar_eq(v, '"') | relay_swar_eq(v, '\\') |
			     relay_swar_eq(v, 0x7F) | (v & RELAY_HIGH8);
		if (m != 0)
			return i + relay_swar_first(m);
		i += 8;
	}
	while (i < n && jw_class[s[i]] == 0)
		i++;
	return i;
}

/* Walks <s>/<n> as relay_jw_str writes it; writes when <w> is not NULL.
 * Returns the bytes it (would) write, quotes excluded. */
static size_t jw_str_body(struct relay_jw *w, const uint8_t *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, out = 0;

	while (i < n) {
		size_t run = jw_plain_run(s + i, n - i);
		if (w != NULL && run > 0)
			jw_put(w, s + i, run);
		i += run;
		out += run;
		if (i == n)
			break;
		uint8_t c = s[i], k = jw_class[c];
		if (k == 'x') {
			unsigned len = relay_utf8_seq(s + i, s + n);
			if (len != 0) {
				if (w != NULL)
					jw_put(w, s + i, len);
				i += len;
				out += len;
				continue;
			}
			if (w != NULL)
				jw_put(w, "\\ufffd", 6);
			out += 6;
		} else if (k == 'u') {
			uint8_t e[6] = {'\\', 'u', '0', '0', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
			if (w != NULL)
				jw_put(w, e, sizeof e);
			out += 6;
		} else {
			uint8_t e[2] = {'\\', k};
			if (w != NULL)
				jw_put(w, e, sizeof e);
			out += 2;
		}
		i++;
	}
	return out;
}

void relay_jw_str(struct relay_jw *w, const void *s, size_t n)
{
	jw_sep(w);
	jw_byte(w, '"');
	jw_str_body(w, s, n);
	jw_byte(w, '"');
}

size_t relay_jw_str_len(const void *s, size_t n)
{
	return jw_str_body(NULL, s, n) + 2;
}

void relay_jw_cstr(struct relay_jw *w, const char *s)
{
	relay_jw_str(w, s, strlen(s));
}

void relay_jw_key(struct relay_jw *w, const char *key)
{
	jw_sep(w);
	jw_byte(w, '"');
	jw_str_body(w, (const uint8_t *)key, strlen(key));
	jw_put(w, "\":", 2);
	w->_after_key = true;
}

/* Decimal digits of <v> written backwards ending at <end>; returns the first.
 * (snprintf costs more than the rest of a delivery's JSON together.) */
static char *jw_digits(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return end;
}

void relay_jw_u64(struct relay_jw *w, uint64_t v)
{
	char b[24];
	char *p = jw_digits(b + sizeof b, v);
	jw_sep(w);
	jw_put(w, p, (size_t)(b + sizeof b - p));
}

void relay_jw_i64(struct relay_jw *w, int64_t v)
{
	char b[24];
	uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	char *p = jw_digits(b + sizeof b, mag);
	if (v < 0)
		*--p = '-';
	jw_sep(w);
	jw_put(w, p, (size_t)(b + sizeof b - p));
}

void relay_jw_bool(struct relay_jw *w, bool v)
{
	jw_sep(w);
	if (v)
		jw_put(w, "true", 4);
	else
		jw_put(w, "false", 5);
}

void relay_jw_null(struct relay_jw *w)
{
	jw_sep(w);
	jw_put(w, "null", 4);
}

void relay_jw_raw(struct relay_jw *w, const void *json, size_t n)
{
	jw_sep(w);
	jw_put(w, json, n);
}
