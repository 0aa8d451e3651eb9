/* http.c -- the WebSocket upgrade request: incremental head parser, upgrade
 * decision, origin allow-list, response bytes. No sockets; see http.h.
 * Threading: pure functions over caller-owned objects and constant tables. */
#include "net/http.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HTTP_WS_KEY_LEN 24 /* base64 of 16 bytes */

/* ---- character classes and spans ------------------------------------------- */

static bool http_is_alnum(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* tchar, RFC 9110 §5.6.2 */
static bool http_is_tchar(uint8_t c)
{
	return http_is_alnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* field-vchar / obs-text / SP / HTAB: what a field value may hold */
static bool http_is_value_char(uint8_t c)
{
	return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7F);
}

static bool http_is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static uint8_t http_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static bool http_span_eq(struct relay_span s, const char *lit)
{
	return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static bool http_span_ieq_bytes(struct relay_span s, const uint8_t *p, size_t n)
{
	if (s.n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (http_lower(s.p[i]) != http_lower(p[i]))
			return false;
	return true;
}

static bool http_span_ieq(struct relay_span s, const char *lit)
{
	return http_span_ieq_bytes(s, (const uint8_t *)lit, strlen(lit));
}

static struct relay_span http_trim(struct relay_span s)
{
	while (s.n > 0 && http_is_ows(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && http_is_ows(s.p[s.n - 1]))
		s.n--;
	return s;
}

/* Splits the next element off the comma-separated <*rest>, OWS trimmed
 * (possibly empty); *more tells whether a comma followed it. */
static struct relay_span http_split(struct relay_span *rest, bool *more)
{
	const uint8_t *comma = memchr(rest->p, ',', rest->n);
	size_t n = comma != NULL ? (size_t)(comma - rest->p) : rest->n;
	struct relay_span e = http_trim((struct relay_span){rest->p, n});

	*more = comma != NULL;
	rest->p += n + *more;
	rest->n -= n + *more;
	return e;
}

/* Next non-empty element of a list header (empty ones are allowed and
 * skipped, RFC 9110 §5.6.1). False when none is left. */
static bool http_list_next(struct relay_span *rest, struct relay_span *elem)
{
	bool more;

	while (rest->n > 0) {
		*elem = http_split(rest, &more);
		if (elem->n > 0)
			return true;
	}
	return false;
}

static bool http_all(struct relay_span s, bool (*is)(uint8_t))
{
	for (size_t i = 0; i < s.n; i++)
		if (!is(s.p[i]))
			return false;
	return true;
}

static unsigned http_refuse(struct rl_http_req *r, unsigned status, const char *why)
{
	r->status = status;
	r->why = why;
	return status;
}

/* ---- header fields ----------------------------------------------------------- */

typedef unsigned http_field_fn(struct rl_http_req *r, size_t off, struct relay_span v);

/* A field the upgrade needs once: keep the last value, count them. */
static unsigned http_h_single(struct rl_http_req *r, size_t off, struct relay_span v)
{
	struct rl_http_field *f = (struct rl_http_field *)((char *)r + off);

	f->v = v;
	if (f->count < UINT8_MAX)
		f->count++;
	return 0;
}

static unsigned http_h_upgrade(struct rl_http_req *r, size_t off, struct relay_span v)
{
	struct relay_span e;

	(void)off;
	while (http_list_next(&v, &e))
		if (http_span_ieq(e, "websocket"))
			r->upgrade_websocket = true;
	return 0;
}

static unsigned http_h_connection(struct rl_http_req *r, size_t off, struct relay_span v)
{
	struct relay_span e;

	(void)off;
	while (http_list_next(&v, &e))
		if (http_span_ieq(e, "upgrade"))
			r->connection_upgrade = true;
	return 0;
}

/* Subprotocol names are tokens, compared case-sensitively (RFC 6455 §4.1). */
static unsigned http_h_protocol(struct rl_http_req *r, size_t off, struct relay_span v)
{
	struct relay_span e;
	bool any = false;

	(void)off;
	if (r->protocol_lists < UINT8_MAX)
		r->protocol_lists++;
	while (http_list_next(&v, &e)) {
		any = true;
		if (!http_all(e, http_is_tchar))
			r->protocol_bad = true;
		else if (http_span_eq(e, RL_HTTP_WS_PROTOCOL))
			r->protocol_relay = true;
	}
	if (!any)
		r->protocol_bad = true;
	return 0;
}

static bool http_is_zero(uint8_t c)
{
	return c == '0';
}

/* The parser cannot skip a body: bytes after the head belong to WebSocket. */
static unsigned http_h_content_length(struct rl_http_req *r, size_t off, struct relay_span v)
{
	(void)off;
	if (v.n == 0 || !http_all(v, http_is_zero))
		return http_refuse(r, 400, "a request body is not accepted");
	return 0;
}

static unsigned http_h_transfer_encoding(struct rl_http_req *r, size_t off, struct relay_span v)
{
	(void)off;
	(void)v;
	return http_refuse(r, 400, "a request body is not accepted");
}

/* The fields the parser looks at; others are checked for syntax only. */
static const struct {
	const char *name; /* lower case */
	http_field_fn *fn;
	size_t off; /* for http_h_single: the rl_http_field */
} http_fields[] = {
    {"host", http_h_single, offsetof(struct rl_http_req, host)},
    {"sec-websocket-key", http_h_single, offsetof(struct rl_http_req, key)},
    {"sec-websocket-version", http_h_single, offsetof(struct rl_http_req, version)},
    {"origin", http_h_single, offsetof(struct rl_http_req, origin)},
    {"upgrade", http_h_upgrade, 0},
    {"connection", http_h_connection, 0},
    {"sec-websocket-protocol", http_h_protocol, 0},
    {"content-length", http_h_content_length, 0},
    {"transfer-encoding", http_h_transfer_encoding, 0},
};

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 §5) */
static unsigned http_header_line(struct rl_http_req *r, struct relay_span l)
{
	size_t i = 0;

	if (++r->_nheaders > RL_HTTP_MAX_HEADERS)
		return http_refuse(r, 431, "too many header fields");
	if (http_is_ows(l.p[0]))
		return http_refuse(r, 400, "obsolete line folding");
	while (i < l.n && http_is_tchar(l.p[i]))
		i++;
	if (i == 0 || i == l.n || l.p[i] != ':')
		return http_refuse(r, 400, "malformed header field");
	struct relay_span name = {l.p, i};
	struct relay_span value = http_trim((struct relay_span){l.p + i + 1, l.n - i - 1});
	if (!http_all(value, http_is_value_char))
		return http_refuse(r, 400, "invalid character in a header field");
	for (size_t k = 0; k < sizeof http_fields / sizeof http_fields[0]; k++)
		if (http_span_ieq(name, http_fields[k].name))
			return http_fields[k].fn(r, http_fields[k].off, value);
	return 0;
}

/* ---- request line -------------------------------------------------------------- */

static bool http_is_target_char(uint8_t c)
{
	return c >= 0x21 && c <= 0x7E;
}

/* "HTTP/" DIGIT "." DIGIT, and only 1.1 */
static unsigned http_version(struct rl_http_req *r, struct relay_span v)
{
	if (v.n != 8 || memcmp(v.p, "HTTP/", 5) != 0 || v.p[5] < '0' || v.p[5] > '9' ||
	    v.p[6] != '.' || v.p[7] < '0' || v.p[7] > '9')
		return http_refuse(r, 400, "malformed HTTP version");
	if (v.p[5] != '1')
		return http_refuse(r, 505, "HTTP/1.1 required");
	if (v.p[7] != '1')
		return http_refuse(r, 400, "HTTP/1.1 required");
	return 0;
}

/* Takes the longest run of <is> chars at <*p> followed by one space. */
static bool http_take_word(const uint8_t **p, const uint8_t *end, bool (*is)(uint8_t),
			   struct relay_span *out)
{
	const uint8_t *s = *p;

	while (*p < end && is(**p))
		(*p)++;
	*out = (struct relay_span){s, (size_t)(*p - s)};
	if (*p == s || *p == end || **p != ' ')
		return false;
	(*p)++;
	return true;
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 §3) */
static unsigned http_request_line(struct rl_http_req *r, struct relay_span l)
{
	const uint8_t *p = l.p, *end = l.p + l.n;
	struct relay_span method, target;

	if (!http_take_word(&p, end, http_is_tchar, &method) ||
	    !http_take_word(&p, end, http_is_target_char, &target))
		return http_refuse(r, 400, "malformed request line");
	unsigned st = http_version(r, (struct relay_span){p, (size_t)(end - p)});
	if (st != 0)
		return st;
	if (target.p[0] != '/')
		return http_refuse(r, 400, "request target not in origin form");
	if (memchr(target.p, '#', target.n) != NULL)
		return http_refuse(r, 400, "fragment in the request target");
	const uint8_t *q = memchr(target.p, '?', target.n);
	size_t plen = q != NULL ? (size_t)(q - target.p) : target.n;
	r->method = method;
	r->target = target;
	r->path = (struct relay_span){target.p, plen};
	r->query = (struct relay_span){target.p + plen, q != NULL ? target.n - plen - 1 : 0};
	if (q != NULL)
		r->query.p++;
	return 0;
}

/* ---- the parser ------------------------------------------------------------------ */

void rl_http_req_init(struct rl_http_req *r)
{
	memset(r, 0, sizeof *r);
}

/* Refuses when the current line has no LF in its first <end> bytes of the
 * buffer and that already crosses a limit: the line is over
 * RL_HTTP_MAX_LINE once it holds MAX_LINE + 2 bytes without LF (content
 * plus a CR would be MAX_LINE + 1), the head once it holds MAX_HEAD bytes
 * without its end. Whichever is crossed at the smaller offset wins, which
 * makes the outcome independent of how the bytes were split. */
static unsigned http_limits(struct rl_http_req *r, size_t end)
{
	size_t line_x = r->_line + RL_HTTP_MAX_LINE + 2;
	size_t head_x = RL_HTTP_MAX_HEAD;

	if (end < line_x && end < head_x)
		return 0;
	if (line_x <= head_x)
		return r->method.n == 0 ? http_refuse(r, 414, "request line too long")
					: http_refuse(r, 431, "header line too long");
	return http_refuse(r, 431, "request head too large");
}

enum rl_http_parse_status rl_http_parse(struct rl_http_req *r, const uint8_t *buf, size_t len)
{
	if (r->status != 0)
		return RL_HTTP_REFUSED;
	if (r->head_len != 0)
		return RL_HTTP_COMPLETE;
	while (r->_scan < len) {
		const uint8_t *lf = memchr(buf + r->_scan, '\n', len - r->_scan);
		size_t end = lf != NULL ? (size_t)(lf - buf) : len;
		if (http_limits(r, end) != 0)
			return RL_HTTP_REFUSED;
		if (lf == NULL)
			break;
		if (end == r->_line || buf[end - 1] != '\r') {
			http_refuse(r, 400, "line not ended by CRLF");
			return RL_HTTP_REFUSED;
		}
		struct relay_span line = {buf + r->_line, end - 1 - r->_line};
		r->_line = r->_scan = end + 1;
		unsigned st;
		if (r->method.n == 0) {
			st = http_request_line(r, line);
		} else if (line.n == 0) {
			r->head_len = end + 1;
			return RL_HTTP_COMPLETE;
		} else {
			st = http_header_line(r, line);
		}
		if (st != 0)
			return RL_HTTP_REFUSED;
	}
	r->_scan = len;
	return RL_HTTP_NEED_MORE;
}

/* ---- origin allow-list ---------------------------------------------------------- */

static bool http_is_host_char(uint8_t c)
{
	return http_is_alnum(c) || c == '-' || c == '.' || c == '_';
}

static bool http_is_ip6_char(uint8_t c)
{
	return http_is_alnum(c) || c == ':' || c == '.';
}

static bool http_is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* scheme "://" host [":" port], scheme http or https, host a name or a
 * bracketed IPv6 literal, port 1-5 digits. */
static const char *http_origin_check(struct relay_span s)
{
	static const char *const bad = "an origin is scheme://host[:port] (http or https)";
	size_t i;

	if (s.n > 8 && http_span_ieq((struct relay_span){s.p, 8}, "https://"))
		i = 8;
	else if (s.n > 7 && http_span_ieq((struct relay_span){s.p, 7}, "http://"))
		i = 7;
	else
		return bad;
	size_t h = i;
	if (s.p[i] == '[') {
		while (++i < s.n && http_is_ip6_char(s.p[i]))
			;
		if (i == s.n || s.p[i] != ']' || i == h + 1)
			return bad;
		i++;
	} else {
		while (i < s.n && http_is_host_char(s.p[i]))
			i++;
		if (i == h)
			return bad;
	}
	if (i == s.n)
		return NULL;
	struct relay_span port = {s.p + i + 1, s.n - i - 1};
	if (s.p[i] != ':' || port.n == 0 || port.n > 5 || !http_all(port, http_is_digit))
		return bad;
	return NULL;
}

int rl_http_origins_parse(struct rl_http_origins *o, const char *list, const char **err)
{
	const char *why = NULL;

	memset(o, 0, sizeof *o);
	if (list == NULL || *list == '\0')
		return 0;
	o->_copy = strdup(list);
	if (o->_copy == NULL)
		return -ENOMEM;
	struct relay_span rest = {(const uint8_t *)o->_copy, strlen(o->_copy)};
	bool more = true; /* an entry follows: at the start and after each comma */
	while (more && why == NULL) {
		struct relay_span e = http_split(&rest, &more);
		if (e.n == 0)
			why = "empty entry in the origin list";
		else if (o->n == RL_HTTP_MAX_ORIGINS)
			why = "too many origins (at most 32)";
		else if ((why = http_origin_check(e)) == NULL)
			o->v[o->n++] = e;
	}
	if (why != NULL) {
		rl_http_origins_free(o);
		if (err != NULL)
			*err = why;
		return -EINVAL;
	}
	return 0;
}

void rl_http_origins_free(struct rl_http_origins *o)
{
	free(o->_copy);
	memset(o, 0, sizeof *o);
}

bool rl_http_origin_allowed(const struct rl_http_origins *o, struct relay_span origin)
{
	if (o == NULL || o->n == 0)
		return true;
	for (size_t i = 0; i < o->n; i++)
		if (http_span_ieq_bytes(origin, o->v[i].p, o->v[i].n))
			return true;
	return false;
}

/* ---- decisions -------------------------------------------------------------------- */

static bool http_is_b64(uint8_t c)
{
	return http_is_alnum(c) || c == '+' || c == '/';
}

/* 22 base64 characters, the last with its 4 padding bits zero, then "==". */
static bool http_key_ok(struct relay_span k)
{
	if (k.n != HTTP_WS_KEY_LEN || k.p[22] != '=' || k.p[23] != '=')
		return false;
	if (!http_all((struct relay_span){k.p, 22}, http_is_b64))
		return false;
	return strchr("AQgw", k.p[21]) != NULL;
}

unsigned rl_http_ws_check(struct rl_http_req *r, const struct rl_http_origins *allow)
{
	if (r->status != 0)
		return r->status;
	if (r->head_len == 0)
		return http_refuse(r, 400, "incomplete request");
	if (!http_span_eq(r->method, "GET"))
		return http_refuse(r, 405, "only GET upgrades to WebSocket");
	if (r->host.count != 1 || r->host.v.n == 0)
		return http_refuse(r, 400, "exactly one Host is required");
	if (!r->upgrade_websocket)
		return http_refuse(r, 400, "Upgrade: websocket is required");
	if (!r->connection_upgrade)
		return http_refuse(r, 400, "Connection: Upgrade is required");
	if (r->key.count != 1 || !http_key_ok(r->key.v))
		return http_refuse(r, 400, "Sec-WebSocket-Key must be base64 of 16 bytes");
	if (r->version.count != 1 || !http_span_eq(r->version.v, "13"))
		return http_refuse(r, 426, "only WebSocket version 13 is supported");
	if (r->origin.count > 1)
		return http_refuse(r, 400, "more than one Origin");
	if (r->origin.count == 1 && !rl_http_origin_allowed(allow, r->origin.v))
		return http_refuse(r, 403, "origin not allowed");
	if (r->protocol_bad)
		return http_refuse(r, 400, "malformed Sec-WebSocket-Protocol");
	if (r->protocol_lists > 0 && !r->protocol_relay)
		return http_refuse(r, 400, "subprotocol " RL_HTTP_WS_PROTOCOL " not offered");
	return 101;
}

unsigned rl_http_ws_route(struct rl_http_req *r, const struct rl_http_origins *allow)
{
	if (r->status != 0)
		return r->status;
	if (r->head_len != 0 && !http_span_eq(r->path, RL_HTTP_WS_PATH))
		return http_refuse(r, 404, "no such path (WebSocket: " RL_HTTP_WS_PATH ")");
	return rl_http_ws_check(r, allow);
}

/* ---- responses ---------------------------------------------------------------------- */

void rl_http_ws_accept(const uint8_t *key, size_t key_len, char out[RL_HTTP_WS_ACCEPT_LEN + 1])
{
	static const char guid[] = HTTP_WS_GUID;
	uint8_t buf[HTTP_WS_KEY_LEN + sizeof guid - 1];
	uint8_t md[SHA_DIGEST_LENGTH];

	/* a key longer than a valid one is cut: it was refused before anyway */
	if (key_len > HTTP_WS_KEY_LEN)
		key_len = HTTP_WS_KEY_LEN;
	memcpy(buf, key, key_len);
	memcpy(buf + key_len, guid, sizeof guid - 1);
	SHA1(buf, key_len + sizeof guid - 1, md);
	EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

/* Returns <n> when snprintf's result fits <cap>, else 0. */
static size_t http_fits(int n, size_t cap)
{
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t rl_http_write_101(uint8_t *out, size_t cap, const struct rl_http_req *r)
{
	char accept[RL_HTTP_WS_ACCEPT_LEN + 1];

	rl_http_ws_accept(r->key.v.p, r->key.v.n, accept);
	int n = snprintf(
	    (char *)out, cap,
	    "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n"
	    "%s"
	    "\r\n",
	    accept, r->protocol_relay ? "Sec-WebSocket-Protocol: " RL_HTTP_WS_PROTOCOL "\r\n" : "");
	return http_fits(n, cap);
}

/* Statuses this listener answers with; the last row is the fallback. */
static const struct {
	unsigned status;
	const char *reason;
	const char *extra; /* header lines the status requires */
} http_statuses[] = {
    {400, "Bad Request", ""},
    {403, "Forbidden", ""},
    {404, "Not Found", ""},
    {405, "Method Not Allowed", "Allow: GET\r\n"},
    {414, "URI Too Long", ""},
    {426, "Upgrade Required", "Sec-WebSocket-Version: 13\r\n"},
    {431, "Request Header Fields Too Large", ""},
    {503, "Service Unavailable", ""},
    {505, "HTTP Version Not Supported", ""},
    {500, "Internal Server Error", ""},
};

size_t rl_http_write_error(uint8_t *out, size_t cap, unsigned status, const char *why)
{
	size_t nstat = sizeof http_statuses / sizeof http_statuses[0], i = 0;
	char body[256];

	while (i < nstat - 1 && http_statuses[i].status != status)
		i++;
	int b = why != NULL ? snprintf(body, sizeof body, "%u %s: %s\n", http_statuses[i].status,
				       http_statuses[i].reason, why)
			    : snprintf(body, sizeof body, "%u %s\n", http_statuses[i].status,
				       http_statuses[i].reason);
	if (http_fits(b, sizeof body) == 0)
		return 0;
	int n = snprintf((char *)out, cap,
			 "HTTP/1.1 %u %s\r\n"
			 "Content-Type: text/plain; charset=utf-8\r\n"
			 "Content-Length: %d\r\n"
			 "Connection: close\r\n"
			 "%s"
			 "\r\n"
			 "%s",
			 http_statuses[i].status, http_statuses[i].reason, b,
			 http_statuses[i].extra, body);
	return http_fits(n, cap);
}

/* ---- the client side --------------------------------------------------------------- */

void rl_http_ws_key(const uint8_t nonce[16], char out[RL_HTTP_WS_KEY_LEN + 1])
{
	EVP_EncodeBlock((unsigned char *)out, nonce, 16);
}

size_t rl_http_write_upgrade(uint8_t *out, size_t cap, const char *host, const char *path,
			     const char *key, const char *origin)
{
	int n = snprintf((char *)out, cap,
			 "GET %s HTTP/1.1\r\n"
			 "Host: %s\r\n"
			 "Upgrade: websocket\r\n"
			 "Connection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n"
			 "Sec-WebSocket-Protocol: " RL_HTTP_WS_PROTOCOL "\r\n"
			 "%s%s%s"
			 "\r\n",
			 path, host, key, origin != NULL ? "Origin: " : "",
			 origin != NULL ? origin : "", origin != NULL ? "\r\n" : "");
	return http_fits(n, cap);
}

static enum rl_http_parse_status http_answer_refuse(struct rl_http_answer *a, const char *why)
{
	a->why = why;
	return RL_HTTP_REFUSED;
}

/* One header line of a 101; <want> is the expected accept value. Returns
 * NULL, or why it is wrong. Sets bits of *<seen>: 1 Upgrade, 2 Connection,
 * 4 the accept value. */
static const char *http_answer_field(struct relay_span l, const char *want, unsigned *seen)
{
	const uint8_t *colon = memchr(l.p, ':', l.n);
	struct relay_span e;

	if (colon == NULL)
		return "malformed header line";
	struct relay_span name = {l.p, (size_t)(colon - l.p)};
	struct relay_span v = http_trim((struct relay_span){colon + 1, l.n - name.n - 1});
	if (http_span_ieq(name, "upgrade")) {
		while (http_list_next(&v, &e))
			if (http_span_ieq(e, "websocket"))
				*seen |= 1;
	} else if (http_span_ieq(name, "connection")) {
		while (http_list_next(&v, &e))
			if (http_span_ieq(e, "upgrade"))
				*seen |= 2;
	} else if (http_span_ieq(name, "sec-websocket-accept")) {
		if (!http_span_eq(v, want))
			return "wrong Sec-WebSocket-Accept";
		*seen |= 4;
	} else if (http_span_ieq(name, "sec-websocket-protocol")) {
		if (!http_span_eq(v, RL_HTTP_WS_PROTOCOL))
			return "a subprotocol other than " RL_HTTP_WS_PROTOCOL;
	} else if (http_span_ieq(name, "sec-websocket-extensions")) {
		return "an extension nobody asked for";
	}
	return NULL;
}

enum rl_http_parse_status rl_http_parse_answer(struct rl_http_answer *a, const uint8_t *buf,
					       size_t len, const char *key)
{
	static const uint8_t end[] = "\r\n\r\n";
	char want[RL_HTTP_WS_ACCEPT_LEN + 1];
	unsigned seen = 0;

	memset(a, 0, sizeof *a);
	const uint8_t *e = memmem(buf, len, end, 4);
	if (e == NULL)
		return len >= RL_HTTP_MAX_HEAD ? http_answer_refuse(a, "answer head too large")
					       : RL_HTTP_NEED_MORE;
	a->head_len = (size_t)(e - buf) + 4;
	if (a->head_len < 13 || memcmp(buf, "HTTP/1.1 ", 9) != 0 ||
	    !http_all((struct relay_span){buf + 9, 3}, http_is_digit) ||
	    (buf[12] != ' ' && buf[12] != '\r'))
		return http_answer_refuse(a, "malformed status line");
	a->status = (unsigned)((buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0'));
	if (a->status != 101)
		return http_answer_refuse(a, "not 101 Switching Protocols");
	rl_http_ws_accept((const uint8_t *)key, strlen(key), want);
	const uint8_t *p = (const uint8_t *)memchr(buf, '\n', a->head_len) + 1;
	if (p[-2] != '\r')
		return http_answer_refuse(a, "line not ended by CRLF");
	while (p < e + 2) {
		const uint8_t *lf = memchr(p, '\n', (size_t)(e + 4 - p));
		struct relay_span l = {p, (size_t)(lf - p)};
		if (l.n == 0 || l.p[l.n - 1] != '\r')
			return http_answer_refuse(a, "line not ended by CRLF");
		l.n--;
		const char *why = http_answer_field(l, want, &seen);
		if (why != NULL)
			return http_answer_refuse(a, why);
		p = lf + 1;
	}
	if (seen != 7)
		return http_answer_refuse(a, !(seen & 4)
						 ? "no Sec-WebSocket-Accept"
						 : "no Upgrade: websocket / Connection: upgrade");
	return RL_HTTP_COMPLETE;
}
