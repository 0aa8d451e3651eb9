/* json.c -- one-pass JSON validation (RFC 8259, strict UTF-8) with
 * extraction of top-level object fields.
 *
 * No tree, no recursion: nesting is an explicit 64-bit stack (bit d says
 * whether the container at depth d+1 is an object), so depth <= 64 costs one
 * word. Strings are scanned 8 bytes at a time while they hold plain ASCII;
 * values of wanted top-level keys are decoded into the caller's buffer while
 * they are scanned, so the input is read once.
 *
 * Threading: pure functions over constant tables; callable from any thread.
 */
#include "relay/protocol.h"
#include "json_tables.h"
#include "proto_internal.h"

#include <string.h>

/* A string being scanned; <buf>/<cap> may be NULL/0 (count only). */
struct json_str {
	uint8_t *buf;
	size_t cap;
	size_t len;  /* decoded bytes so far, also beyond cap */
	bool lone;   /* a \u escape of a lone or mis-ordered surrogate */
	bool esc;    /* held at least one escape */
};

/* Where and why a scan failed. */
struct json_err {
	const uint8_t *at;
	const char *msg;
};

RELAY_INLINE void str_put(struct json_str *o, const uint8_t *b, size_t n)
{
	if (o->len < o->cap) {
		size_t room = o->cap - o->len;
		memcpy(o->buf + o->len, b, n < room ? n : room);
	}
	o->len += n;
}

RELAY_INLINE int json_hex4(const uint8_t *s)
{
	unsigned a = json_hex[s[0]], b = json_hex[s[1]], c = json_hex[s[2]], d = json_hex[s[3]];
	if ((a | b | c | d) > 15)
		return -1;
	return (int)(a << 12 | b << 8 | c << 4 | d);
}

/* The escape at <s> (a backslash). Returns the byte after it, or NULL. */
static const uint8_t *json_escape(const uint8_t *s, const uint8_t *end,
				  struct json_str *o, bool decode, struct json_err *e)
{
	static const uint8_t fffd[3] = {0xEF, 0xBF, 0xBD};
	uint8_t u[4];

	o->esc = true;
	if (end - s < 2)
		goto truncated;
	if (s[1] != 'u') {
		uint8_t b = json_esc[s[1]];
		if (b == 0) {
			e->at = s;
			e->msg = "invalid escape";
			return NULL;
		}
		if (decode)
			str_put(o, &b, 1);
		return s + 2;
	}
	if (end - s < 6)
		goto truncated;
	int cp = json_hex4(s + 2);
	if (cp < 0) {
		e->at = s;
		e->msg = "invalid \\u escape";
		return NULL;
	}
	s += 6;
	if (cp >= 0xD800 && cp <= 0xDFFF) {
		int lo = -1;
		if (cp <= 0xDBFF && end - s >= 6 && s[0] == '\\' && s[1] == 'u')
			lo = json_hex4(s + 2);
		if (lo >= 0xDC00 && lo <= 0xDFFF) {
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			s += 6;
		} else {
			o->lone = true;
			if (decode)
				str_put(o, fffd, sizeof fffd);
			return s;
		}
	}
	if (decode)
		str_put(o, u, relay_utf8_put(u, (uint32_t)cp));
	return s;
truncated:
	e->at = s;
	e->msg = "unterminated escape";
	return NULL;
}

/* Scans the rest of a string; <s> is just past the opening quote. Returns the
 * byte after the closing quote, or NULL (then <e> says why). With <decode>,
 * appends the decoded bytes to <o>. */
RELAY_INLINE const uint8_t *json_string(const uint8_t *s, const uint8_t *end,
				     struct json_str *o, bool decode, struct json_err *e)
{
	for (;;) {
		const uint8_t *run = s;
		while (end - s >= 8) {
			uint64_t v = relay_load64(s);
			uint64_t m = relay_swar_less(v, 0x20) | relay_swar_eq(v, '"') |
				     relay_swar_eq(v, '\\') | (v & RELAY_HIGH8);
			if (m != 0) {
				s += relay_swar_first(m);
				goto special;
			}
			s += 8;
		}
		while (s < end && json_plain[*s])
			s++;
special:
		if (decode && s > run)
			str_put(o, run, (size_t)(s - run));
		if (RELAY_UNLIKELY(s == end)) {
			e->at = s;
			e->msg = "unterminated string";
			return NULL;
		}
		if (*s == '"')
			return s + 1;
		if (*s == '\\') {
			s = json_escape(s, end, o, decode, e);
			if (s == NULL)
				return NULL;
			continue;
		}
		if (*s < 0x20) {
			e->at = s;
			e->msg = "control character in string";
			return NULL;
		}
		unsigned n = relay_utf8_seq(s, end);
		if (n == 0) {
			e->at = s;
			e->msg = "invalid UTF-8";
			return NULL;
		}
		if (decode)
			str_put(o, s, n);
		s += n;
	}
}

RELAY_INLINE const uint8_t *json_string_skip(const uint8_t *s, const uint8_t *end,
				       struct json_err *e)
{
	struct json_str o = {0};
	return json_string(s, end, &o, false, e);
}

static const uint8_t *json_string_dec(const uint8_t *s, const uint8_t *end,
				      struct json_str *o, struct json_err *e)
{
	return json_string(s, end, o, true, e);
}

RELAY_INLINE const uint8_t *json_digits(const uint8_t *s, const uint8_t *end)
{
	while (s < end && (unsigned)(*s - '0') < 10)
		s++;
	return s;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?  Whatever follows is the
 * caller's to judge (so "01" fails there, at the '1'). */
RELAY_INLINE const uint8_t *json_number(const uint8_t *s, const uint8_t *end, struct json_err *e)
{
	if (*s == '-')
		s++;
	if (s == end || (unsigned)(*s - '0') >= 10)
		goto bad;
	s = *s == '0' ? s + 1 : json_digits(s + 1, end);
	if (s < end && *s == '.') {
		s++;
		if (s == end || (unsigned)(*s - '0') >= 10)
			goto bad;
		s = json_digits(s, end);
	}
	if (s < end && (*s | 0x20) == 'e') {
		s++;
		if (s < end && (*s == '+' || *s == '-'))
			s++;
		if (s == end || (unsigned)(*s - '0') >= 10)
			goto bad;
		s = json_digits(s, end);
	}
	return s;
bad:
	e->at = s;
	e->msg = "invalid number";
	return NULL;
}

static const uint8_t *json_literal(const uint8_t *s, const uint8_t *end,
				   enum relay_json_kind kind, struct json_err *e)
{
	static const char *const lit[RELAY_JSON_NKINDS] = {
		[RELAY_JSON_TRUE] = "true", [RELAY_JSON_FALSE] = "false", [RELAY_JSON_NULL] = "null",
	};
	size_t n = kind == RELAY_JSON_FALSE ? 5 : 4;

	if ((size_t)(end - s) < n || memcmp(s, lit[kind], n) != 0) {
		e->at = s;
		e->msg = "invalid literal";
		return NULL;
	}
	return s + n;
}

/* Most tokens are not followed by whitespace: a byte above ' ' settles it
 * without the dependent table load. */
RELAY_INLINE const uint8_t *json_skip_ws(const uint8_t *s, const uint8_t *end)
{
	if (RELAY_LIKELY(s < end && *s > ' '))
		return s;
	while (s < end && json_ws[*s])
		s++;
	return s;
}

/* Wanted keys and their lengths, measured once per parse. */
#define JSON_KEYS_CACHED 8

struct json_keys {
	struct relay_json_field *f;
	size_t nf;
	size_t len[JSON_KEYS_CACHED];
};

static void json_keys_init(struct json_keys *k, struct relay_json_field *f, size_t nf)
{
	k->f = f;
	k->nf = nf;
	for (size_t i = 0; i < nf && i < JSON_KEYS_CACHED; i++)
		k->len[i] = strlen(f[i].key);
}

/* The wanted field named by the decoded key <k>/<n>, or NULL. */
static struct relay_json_field *json_match(const struct json_keys *keys, const uint8_t *k, size_t n)
{
	for (size_t i = 0; i < keys->nf; i++) {
		size_t len = i < JSON_KEYS_CACHED ? keys->len[i] : strlen(keys->f[i].key);
		if (len == n && memcmp(keys->f[i].key, k, n) == 0)
			return &keys->f[i];
	}
	return NULL;
}

/* Scans a key at depth 1 (<s> past its quote) and sets *want to the field it
 * names, if any. Keys without escapes (nearly all) are compared in place; only
 * a key with escapes is decoded, in a second look at just that key. */
static const uint8_t *json_top_key(const uint8_t *s, const uint8_t *end,
				   const struct json_keys *keys,
				   struct relay_json_field **want, struct json_err *e)
{
	struct json_str o = {0};
	const uint8_t *k = s;

	s = json_string(s, end, &o, false, e);
	if (s == NULL)
		return NULL;
	if (!o.esc) {
		*want = json_match(keys, k, (size_t)(s - 1 - k));
		return s;
	}
	uint8_t kb[256];
	struct json_str d = {.buf = kb, .cap = sizeof kb};
	json_string_dec(k, end, &d, e);
	*want = d.len <= sizeof kb ? json_match(keys, kb, d.len) : NULL;
	return s;
}

static void json_fields_reset(struct relay_json_field *f, size_t nf)
{
	for (size_t i = 0; i < nf; i++) {
		f[i].kind = RELAY_JSON_NONE;
		f[i].raw.p = NULL;
		f[i].raw.n = 0;
		f[i].dec_len = 0;
		f[i].lone_surrogate = false;
	}
}

static void json_capture_begin(struct relay_json_field *c, enum relay_json_kind kind,
			       const uint8_t *s)
{
	c->kind = kind;
	c->raw.p = s;
	c->raw.n = 0;
	c->dec_len = 0;
	c->lone_surrogate = false;
}

int relay_json_parse(const uint8_t *p, size_t n, struct relay_json_field *fields,
		  size_t nfields, struct relay_json_result *res)
{
	const uint8_t *s, *end;
	uint64_t objects = 0;  /* bit d: the container at depth d+1 is an object */
	unsigned depth = 0;
	bool in_obj = false;   /* the innermost open container is an object */
	struct relay_json_field *want = NULL;    /* named by the key just read */
	struct relay_json_field *capture = NULL; /* whose value is being scanned */
	enum relay_json_kind top = RELAY_JSON_NONE, kind;
	struct json_err e = {NULL, NULL};
	struct json_keys keys;

	if (fields == NULL)
		nfields = 0;
	json_fields_reset(fields, nfields);
	json_keys_init(&keys, fields, nfields);
	if (n == 0) { /* also keeps NULL + 0 out of the pointer arithmetic */
		if (res != NULL) {
			res->top = RELAY_JSON_NONE;
			res->err_off = 0;
			res->err_msg = "empty input";
		}
		return -1;
	}
	s = p;
	end = p + n;

value:
	s = json_skip_ws(s, end);
value_ws: /* <s> is past any whitespace */
	if (RELAY_UNLIKELY(s == end)) {
		e.at = s;
		e.msg = "unexpected end of input";
		goto fail;
	}
	kind = json_value_kind[*s];
	if (depth == 0)
		top = kind;
	if (want != NULL) {
		capture = want;
		want = NULL;
		json_capture_begin(capture, kind, s);
	}
	switch (kind) {
	case RELAY_JSON_OBJECT:
	case RELAY_JSON_ARRAY:
		if (RELAY_UNLIKELY(depth == RELAY_JSON_MAX_DEPTH)) {
			e.at = s;
			e.msg = "nesting deeper than 64";
			goto fail;
		}
		in_obj = kind == RELAY_JSON_OBJECT;
		objects = (objects & ~(1ull << depth)) | ((uint64_t)in_obj << depth);
		depth++;
		s = json_skip_ws(s + 1, end);
		if (s < end && *s == (in_obj ? '}' : ']'))
			goto close;
		if (in_obj)
			goto key_ws;
		goto value_ws;
	case RELAY_JSON_STRING:
		if (capture != NULL && depth == 1) {
			struct json_str o = {.buf = capture->buf, .cap = capture->buf ? capture->cap : 0};
			s = json_string_dec(s + 1, end, &o, &e);
			capture->dec_len = o.len;
			capture->lone_surrogate = o.lone;
		} else {
			s = json_string_skip(s + 1, end, &e);
		}
		break;
	case RELAY_JSON_NUMBER:
		s = json_number(s, end, &e);
		break;
	case RELAY_JSON_TRUE:
	case RELAY_JSON_FALSE:
	case RELAY_JSON_NULL:
		s = json_literal(s, end, kind, &e);
		break;
	default:
		e.at = s;
		e.msg = "unexpected character";
		goto fail;
	}
	if (RELAY_UNLIKELY(s == NULL))
		goto fail;

after:
	if (capture != NULL && depth == 1) {
		capture->raw.n = (size_t)(s - capture->raw.p);
		capture = NULL;
	}
	s = json_skip_ws(s, end);
	if (RELAY_UNLIKELY(depth == 0)) {
		if (s != end) {
			e.at = s;
			e.msg = "trailing bytes after the value";
			goto fail;
		}
		if (res != NULL) {
			res->top = top;
			res->err_off = 0;
			res->err_msg = NULL;
		}
		return 0;
	}
	if (RELAY_LIKELY(s < end)) {
		if (*s == ',') {
			s++;
			if (in_obj)
				goto key;
			goto value;
		}
		if (*s == (in_obj ? '}' : ']'))
			goto close;
	}
	e.at = s;
	e.msg = s == end ? "unexpected end of input"
			 : in_obj ? "expected ',' or '}'" : "expected ',' or ']'";
	goto fail;

close: /* <s> is at the closing bracket of the innermost container */
	s++;
	depth--;
	/* the parent's kind; at depth 0 the value is unused (after: returns) */
	in_obj = (objects >> ((depth - 1) & 63)) & 1;
	goto after;

key:
	s = json_skip_ws(s, end);
key_ws: /* <s> is past any whitespace */
	if (s == end || *s != '"') {
		e.at = s;
		e.msg = s == end ? "unexpected end of input" : "expected a string key";
		goto fail;
	}
	if (depth == 1 && nfields > 0)
		s = json_top_key(s + 1, end, &keys, &want, &e);
	else
		s = json_string_skip(s + 1, end, &e);
	if (s == NULL)
		goto fail;
	s = json_skip_ws(s, end);
	if (s == end || *s != ':') {
		e.at = s;
		e.msg = s == end ? "unexpected end of input" : "expected ':'";
		goto fail;
	}
	s++;
	goto value;

fail:
	if (res != NULL) {
		res->top = top;
		res->err_off = (size_t)(e.at - p);
		res->err_msg = e.msg;
	}
	return -1;
}

long relay_json_string_decode(struct relay_span raw, uint8_t *out, size_t cap)
{
	struct json_str o = {.buf = out, .cap = out ? cap : 0};
	struct json_err e;
	const uint8_t *end = raw.p + raw.n;

	if (raw.n < 2 || raw.p[0] != '"')
		return -1;
	if (json_string_dec(raw.p + 1, end, &o, &e) != end || o.lone)
		return -1;
	return (long)o.len;
}
