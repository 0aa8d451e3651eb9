/* test_http.c -- the WebSocket upgrade request (src/relayd/net/http.c): the
 * RFC 6455 sample key, every accept and refuse rule of protocol-v1-ext.md
 * §1/§7 and of http.h, the limits, the same outcome whatever the split of the
 * bytes, and the exact response bytes. */
#include "unit.h"

#include "net/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

TestSuite(http, .timeout = 60);

#define RQ "GET /relay HTTP/1.1\r\n"
#define H_HOST "Host: relay.example.com\r\n"
#define H_UPG "Upgrade: websocket\r\n"
#define H_CONN "Connection: Upgrade\r\n"
#define H_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define H_VER "Sec-WebSocket-Version: 13\r\n"
#define H_BASE H_HOST H_UPG H_CONN H_KEY H_VER
#define END "\r\n"
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* What one request came to: parse status, then the listener's default
 * decision when the head was complete. */
struct outcome {
	enum rl_http_parse_status st;
	unsigned status; /* 101 or a refusal; 0 while incomplete */
	const char *why;
	size_t head_len;
};

static struct outcome decide_n(const char *req, size_t n, const char *origins)
{
	struct rl_http_origins o;
	struct rl_http_req r;
	struct outcome out;

	cr_assert_eq(rl_http_origins_parse(&o, origins, NULL), 0);
	rl_http_req_init(&r);
	out.st = rl_http_parse(&r, (const uint8_t *)req, n);
	out.status = out.st == RL_HTTP_COMPLETE ? rl_http_ws_route(&r, &o) : r.status;
	out.why = r.why;
	out.head_len = r.head_len;
	rl_http_origins_free(&o);
	return out;
}

static unsigned decide(const char *req, const char *origins)
{
	return decide_n(req, strlen(req), origins).status;
}

/* ---- the handshake ---------------------------------------------------------- */

Test(http, rfc6455_sample_key_gives_the_sample_accept)
{
	char acc[RL_HTTP_WS_ACCEPT_LEN + 1];

	rl_http_ws_accept(RL_J("dGhlIHNhbXBsZSBub25jZQ=="), acc);
	cr_assert_str_eq(acc, SAMPLE_ACCEPT);
}

Test(http, browser_upgrade_gets_the_exact_101)
{
	static const char req[] =
	    "GET /relay HTTP/1.1\r\n"
	    "Host: 127.0.0.1:8080\r\n"
	    "Connection: Upgrade\r\n"
	    "Pragma: no-cache\r\n"
	    "Cache-Control: no-cache\r\n"
	    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36\r\n"
	    "Upgrade: websocket\r\n"
	    "Origin: http://127.0.0.1:8080\r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "Accept-Encoding: gzip, deflate, br\r\n"
	    "Accept-Language: en-US,en;q=0.9\r\n"
	    "Cookie: a=b; c=d\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	    "Sec-WebSocket-Protocol: relay.v1\r\n"
	    "\r\n";
	struct rl_http_origins o;
	struct rl_http_req r;
	uint8_t out[RL_HTTP_RESPONSE_MAX];

	cr_assert_eq(rl_http_origins_parse(&o, "http://127.0.0.1:8080", NULL), 0);
	rl_http_req_init(&r);
	cr_assert_eq(rl_http_parse(&r, RL_J(req)), RL_HTTP_COMPLETE);
	cr_assert_eq(r.head_len, sizeof req - 1);
	cr_assert_eq(rl_http_ws_route(&r, &o), 101);
	size_t n = rl_http_write_101(out, sizeof out, &r);
	static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
				   "Upgrade: websocket\r\n"
				   "Connection: Upgrade\r\n"
				   "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"
				   "Sec-WebSocket-Protocol: relay.v1\r\n"
				   "\r\n";
	cr_assert_eq(n, sizeof want - 1);
	cr_assert_arr_eq(out, want, n);
	rl_http_origins_free(&o);
	RL_ASSERT_NO_LEAKS();
}

Test(http, no_subprotocol_offered_means_none_in_the_101)
{
	struct rl_http_req r;
	uint8_t out[RL_HTTP_RESPONSE_MAX];

	rl_http_req_init(&r);
	cr_assert_eq(rl_http_parse(&r, RL_J(RQ H_BASE END)), RL_HTTP_COMPLETE);
	cr_assert_eq(rl_http_ws_check(&r, NULL), 101);
	size_t n = rl_http_write_101(out, sizeof out, &r);
	cr_assert_gt(n, 0);
	out[n] = 0;
	cr_assert_null(strstr((char *)out, "Sec-WebSocket-Protocol"));
	cr_assert_not_null(strstr((char *)out, "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"));
	/* too small a buffer writes nothing usable */
	cr_assert_eq(rl_http_write_101(out, n, &r), 0);
}

Test(http, fields_are_extracted_with_spans_into_the_request)
{
	static const char req[] = "GET /relay?room=a&b=c HTTP/1.1\r\n"
				  "hOsT:   relay.example.com  \r\n" H_UPG H_CONN H_KEY H_VER
				  "Origin: https://chat.example.com\r\n" END;
	struct rl_http_req r;

	rl_http_req_init(&r);
	cr_assert_eq(rl_http_parse(&r, RL_J(req)), RL_HTTP_COMPLETE);
	cr_assert_eq(r.method.n, 3);
	cr_assert_arr_eq(r.path.p, "/relay", r.path.n);
	cr_assert_eq(r.path.n, 6);
	cr_assert_eq(r.query.n, 10);
	cr_assert_arr_eq(r.query.p, "room=a&b=c", 10);
	cr_assert_eq(r.host.count, 1);
	cr_assert_eq(r.host.v.n, strlen("relay.example.com"), "OWS is trimmed");
	cr_assert_arr_eq(r.host.v.p, "relay.example.com", r.host.v.n);
	cr_assert_eq(r.origin.count, 1);
	cr_assert(r.upgrade_websocket && r.connection_upgrade);
	cr_assert_eq(rl_http_ws_route(&r, NULL), 101, "the query does not change the path");
}

/* ---- accept / refuse rules -------------------------------------------------- */

struct rule_case {
	const char *name;
	const char *req;
	const char *origins; /* allow-list, NULL: none */
	unsigned status;
};

static const struct rule_case rule_cases[] = {
    /* the request line */
    {"plain upgrade", RQ H_BASE END, NULL, 101},
    {"POST", "POST /relay HTTP/1.1\r\n" H_BASE END, NULL, 405},
    {"lower-case get is another method", "get /relay HTTP/1.1\r\n" H_BASE END, NULL, 405},
    {"HEAD", "HEAD /relay HTTP/1.1\r\n" H_BASE END, NULL, 405},
    {"unknown path", "GET /chat HTTP/1.1\r\n" H_BASE END, NULL, 404},
    {"root path", "GET / HTTP/1.1\r\n" H_BASE END, NULL, 404},
    {"trailing slash", "GET /relay/ HTTP/1.1\r\n" H_BASE END, NULL, 404},
    {"unknown path beats method", "POST /x HTTP/1.1\r\n" H_BASE END, NULL, 404},
    {"path with query", "GET /relay?x=1 HTTP/1.1\r\n" H_BASE END, NULL, 101},
    {"HTTP/1.0", "GET /relay HTTP/1.0\r\n" H_BASE END, NULL, 400},
    {"HTTP/2.0", "GET /relay HTTP/2.0\r\n" H_BASE END, NULL, 505},
    {"lower-case version", "GET /relay http/1.1\r\n" H_BASE END, NULL, 400},
    {"version with junk", "GET /relay HTTP/1.1x\r\n" H_BASE END, NULL, 400},
    {"two spaces", "GET  /relay HTTP/1.1\r\n" H_BASE END, NULL, 400},
    {"no target", "GET HTTP/1.1\r\n" H_BASE END, NULL, 400},
    {"absolute form", "GET http://a/relay HTTP/1.1\r\n" H_BASE END, NULL, 400},
    {"fragment", "GET /relay#x HTTP/1.1\r\n" H_BASE END, NULL, 400},
    {"leading empty line", "\r\n" RQ H_BASE END, NULL, 400},
    {"bare LF in request line", "GET /relay HTTP/1.1\n" H_BASE END, NULL, 400},
    {"non-ASCII target", "GET /rel\xc3\xa9 HTTP/1.1\r\n" H_BASE END, NULL, 400},
    /* header syntax */
    {"bare LF after a header", RQ H_HOST "Upgrade: websocket\n" H_CONN H_KEY H_VER END, NULL, 400},
    {"bare CR inside a value", RQ H_BASE "X-A: a\rb\r\n" END, NULL, 400},
    {"obsolete folding", RQ H_BASE "X-A: a\r\n b\r\n" END, NULL, 400},
    {"space before colon", RQ H_BASE "Host : x\r\n" END, NULL, 400},
    {"no colon", RQ H_BASE "Host\r\n" END, NULL, 400},
    {"empty name", RQ H_BASE ": x\r\n" END, NULL, 400},
    {"DEL in a value", RQ H_BASE "X-A: a\x7f\r\n" END, NULL, 400},
    {"obs-text in a value is fine", RQ H_BASE "X-A: caf\xc3\xa9\r\n" END, NULL, 101},
    {"empty value is fine", RQ H_BASE "X-A:\r\n" END, NULL, 101},
    {"Content-Length 0", RQ H_BASE "Content-Length: 0\r\n" END, NULL, 101},
    {"Content-Length 5", RQ H_BASE "Content-Length: 5\r\n" END, NULL, 400},
    {"chunked body", RQ H_BASE "Transfer-Encoding: chunked\r\n" END, NULL, 400},
    /* Host */
    {"no Host", RQ H_UPG H_CONN H_KEY H_VER END, NULL, 400},
    {"empty Host", RQ "Host:\r\n" H_UPG H_CONN H_KEY H_VER END, NULL, 400},
    {"two Hosts", RQ H_BASE H_HOST END, NULL, 400},
    /* Upgrade and Connection are case-insensitive token lists */
    {"no Upgrade", RQ H_HOST H_CONN H_KEY H_VER END, NULL, 400},
    {"Upgrade h2c", RQ H_HOST "Upgrade: h2c\r\n" H_CONN H_KEY H_VER END, NULL, 400},
    {"Upgrade list", RQ H_HOST "Upgrade: foo/2, WebSocket\r\n" H_CONN H_KEY H_VER END, NULL, 101},
    {"Upgrade websocketx", RQ H_HOST "Upgrade: websocketx\r\n" H_CONN H_KEY H_VER END, NULL, 400},
    {"no Connection", RQ H_HOST H_UPG H_KEY H_VER END, NULL, 400},
    {"Connection keep-alive only", RQ H_HOST H_UPG "Connection: keep-alive\r\n" H_KEY H_VER END,
     NULL, 400},
    {"Connection keep-alive, Upgrade (Firefox)",
     RQ H_HOST H_UPG "Connection: keep-alive, Upgrade\r\n" H_KEY H_VER END, NULL, 101},
    {"Connection over two lines",
     RQ H_HOST H_UPG "Connection: keep-alive\r\nconnection: ,, upgrade ,\r\n" H_KEY H_VER END, NULL,
     101},
    /* Sec-WebSocket-Key: base64 of 16 bytes */
    {"no key", RQ H_HOST H_UPG H_CONN H_VER END, NULL, 400},
    {"two keys", RQ H_BASE H_KEY END, NULL, 400},
    {"key of 15 bytes",
     RQ H_HOST H_UPG H_CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n" H_VER END, NULL, 400},
    {"key of 17 bytes",
     RQ H_HOST H_UPG H_CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZXg=\r\n" H_VER END, NULL, 400},
    {"key not canonical",
     RQ H_HOST H_UPG H_CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n" H_VER END, NULL, 400},
    {"key with a bad char",
     RQ H_HOST H_UPG H_CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2*jZQ==\r\n" H_VER END, NULL, 400},
    {"key other canonical",
     RQ H_HOST H_UPG H_CONN "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAw==\r\n" H_VER END, NULL, 101},
    /* Sec-WebSocket-Version */
    {"version 8", RQ H_HOST H_UPG H_CONN H_KEY "Sec-WebSocket-Version: 8\r\n" END, NULL, 426},
    {"no version", RQ H_HOST H_UPG H_CONN H_KEY END, NULL, 426},
    {"version list", RQ H_HOST H_UPG H_CONN H_KEY "Sec-WebSocket-Version: 13, 8\r\n" END, NULL,
     426},
    {"two versions", RQ H_BASE H_VER END, NULL, 426},
    {"bad key beats bad version", RQ H_HOST H_UPG H_CONN "Sec-WebSocket-Version: 8\r\n" END, NULL,
     400},
    /* Origin */
    {"origin on the list", RQ H_BASE "Origin: https://chat.example.com\r\n" END,
     "http://localhost:8080, https://chat.example.com", 101},
    {"origin case-insensitive", RQ H_BASE "Origin: HTTPS://Chat.Example.COM\r\n" END,
     "https://chat.example.com", 101},
    {"origin off the list", RQ H_BASE "Origin: https://evil.example.com\r\n" END,
     "https://chat.example.com", 403},
    {"origin port differs", RQ H_BASE "Origin: https://chat.example.com:444\r\n" END,
     "https://chat.example.com", 403},
    {"origin scheme differs", RQ H_BASE "Origin: http://chat.example.com\r\n" END,
     "https://chat.example.com", 403},
    {"origin null", RQ H_BASE "Origin: null\r\n" END, "https://chat.example.com", 403},
    {"no origin with a list", RQ H_BASE END, "https://chat.example.com", 101},
    {"any origin without a list", RQ H_BASE "Origin: https://evil.example.com\r\n" END, NULL, 101},
    {"two origins", RQ H_BASE "Origin: https://a.example\r\nOrigin: https://a.example\r\n" END,
     NULL, 400},
    {"bad version beats origin",
     RQ H_HOST H_UPG H_CONN H_KEY "Origin: https://evil.example\r\n" END,
     "https://chat.example.com", 426},
    /* Sec-WebSocket-Protocol */
    {"relay.v1 offered", RQ H_BASE "Sec-WebSocket-Protocol: relay.v1\r\n" END, NULL, 101},
    {"relay.v1 among others", RQ H_BASE "Sec-WebSocket-Protocol: chat, relay.v1\r\n" END, NULL,
     101},
    {"relay.v1 on a second line",
     RQ H_BASE "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: relay.v1\r\n" END, NULL,
     101},
    {"only others offered", RQ H_BASE "Sec-WebSocket-Protocol: chat, superchat\r\n" END, NULL, 400},
    {"names are case-sensitive", RQ H_BASE "Sec-WebSocket-Protocol: Relay.V1\r\n" END, NULL, 400},
    {"empty offer", RQ H_BASE "Sec-WebSocket-Protocol: \r\n" END, NULL, 400},
    {"malformed offer", RQ H_BASE "Sec-WebSocket-Protocol: relay.v1, a/b\r\n" END, NULL, 400},
    {"origin beats subprotocol",
     RQ H_BASE "Origin: https://evil.example\r\nSec-WebSocket-Protocol: chat\r\n" END,
     "https://chat.example.com", 403},
    /* names are case-insensitive */
    {"shouting names",
     RQ "HOST: a\r\nUPGRADE: WEBSOCKET\r\nCONNECTION: UPGRADE\r\n"
	"SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n" END,
     NULL, 101},
};

Test(http, every_accept_and_refuse_rule)
{
	for (size_t i = 0; i < sizeof rule_cases / sizeof rule_cases[0]; i++) {
		const struct rule_case *c = &rule_cases[i];
		struct outcome o = decide_n(c->req, strlen(c->req), c->origins);
		cr_expect_eq(o.status, c->status, "%s: got %u (%s), want %u", c->name, o.status,
			     o.why ? o.why : "-", c->status);
		if (o.status != 101)
			cr_expect_not_null(o.why, "%s: a refusal says why", c->name);
	}
	RL_ASSERT_NO_LEAKS();
}

/* Cases where two rules would give the same status: the reason names the
 * one that refused. */
static const struct rule_case reason_cases[] = {
    {"obsolete line folding", RQ H_BASE "X-A: a\r\n b\r\n" END, NULL, 400},
    {"HTTP/1.1 required", "GET /relay HTTP/1.0\r\n" H_BASE END, NULL, 400},
    {"a request body is not accepted", RQ H_BASE "Content-Length: 5\r\n" END, NULL, 400},
    {"line not ended by CRLF", "GET /relay HTTP/1.1\n" H_BASE END, NULL, 400},
    {"malformed header field", RQ H_BASE "Host : x\r\n" END, NULL, 400},
    {"exactly one Host is required", RQ H_BASE H_HOST END, NULL, 400},
    {"Sec-WebSocket-Key must be base64 of 16 bytes", RQ H_BASE H_KEY END, NULL, 400},
    {"malformed Sec-WebSocket-Protocol", RQ H_BASE "Sec-WebSocket-Protocol: a/b\r\n" END, NULL,
     400},
    {"subprotocol relay.v1 not offered", RQ H_BASE "Sec-WebSocket-Protocol: chat\r\n" END, NULL,
     400},
};

Test(http, refusals_name_the_rule_that_refused)
{
	for (size_t i = 0; i < sizeof reason_cases / sizeof reason_cases[0]; i++) {
		const struct rule_case *c = &reason_cases[i];
		struct outcome o = decide_n(c->req, strlen(c->req), c->origins);
		cr_expect_eq(o.status, c->status, "%s: got %u", c->name, o.status);
		cr_expect_str_eq(o.why ? o.why : "-", c->name);
	}
	RL_ASSERT_NO_LEAKS();
}

/* Feeds <req> one split at a time, the unreceived bytes of the buffer
 * poisoned with line ends, so a parser that looked past <len> would see
 * them. Returns the outcome of the final call. */
static struct outcome feed_split(const char *req, size_t n, const size_t *cuts, size_t ncuts)
{
	uint8_t *buf = malloc(n + 1);
	struct rl_http_req r;
	struct outcome out = {0};
	size_t have = 0;

	cr_assert_not_null(buf);
	memset(buf, '\n', n + 1);
	rl_http_req_init(&r);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t upto = i < ncuts ? cuts[i] : n;
		memcpy(buf + have, req + have, upto - have);
		have = upto;
		out.st = rl_http_parse(&r, buf, have);
		if (out.st != RL_HTTP_NEED_MORE)
			break;
	}
	out.status = out.st == RL_HTTP_COMPLETE ? rl_http_ws_route(&r, NULL) : r.status;
	out.why = r.why;
	out.head_len = r.head_len;
	free(buf);
	return out;
}

static void expect_same_at_every_split(const char *name, const char *req)
{
	size_t n = strlen(req);
	struct outcome whole = decide_n(req, n, NULL);
	size_t *cuts = malloc(n * sizeof *cuts);

	cr_assert_not_null(cuts);
	for (size_t k = 0; k <= n; k++) {
		struct outcome o = feed_split(req, n, &k, 1);
		cr_assert_eq(o.status, whole.status, "%s: split at %zu: %u != %u", name, k,
			     o.status, whole.status);
		cr_assert_eq(o.why, whole.why, "%s: split at %zu", name, k);
		cr_assert_eq(o.head_len, whole.head_len, "%s: split at %zu", name, k);
	}
	for (size_t k = 0; k < n; k++)
		cuts[k] = k;
	struct outcome o = feed_split(req, n, cuts, n);
	cr_assert_eq(o.status, whole.status, "%s: byte by byte: %u != %u", name, o.status,
		     whole.status);
	cr_assert_eq(o.why, whole.why, "%s: byte by byte", name);
	free(cuts);
}

Test(http, every_split_point_gives_the_same_outcome)
{
	for (size_t i = 0; i < sizeof rule_cases / sizeof rule_cases[0]; i++)
		expect_same_at_every_split(rule_cases[i].name, rule_cases[i].req);
	RL_ASSERT_NO_LEAKS();
}

Test(http, bytes_after_the_head_are_not_read)
{
	static const char req[] = RQ H_BASE END "\x82\x85garbage";
	struct outcome o = decide_n(req, sizeof req - 1, NULL);

	cr_assert_eq(o.st, RL_HTTP_COMPLETE);
	cr_assert_eq(o.head_len, strlen(RQ H_BASE END));
	cr_assert_eq(o.status, 101);
}

Test(http, incomplete_head_needs_more_and_is_not_upgraded)
{
	struct rl_http_req r;

	rl_http_req_init(&r);
	cr_assert_eq(rl_http_parse(&r, RL_J(RQ H_BASE)), RL_HTTP_NEED_MORE);
	cr_assert_eq(rl_http_ws_check(&r, NULL), 400);
}

/* ---- limits ---------------------------------------------------------------- */

/* A request whose one padding header line has <vlen> value bytes. */
static char *req_with_header(size_t vlen)
{
	size_t n = strlen(RQ H_BASE) + 5 + vlen + 4;
	char *s = malloc(n + 1);

	cr_assert_not_null(s);
	strcpy(s, RQ H_BASE "X-P: ");
	memset(s + strlen(s), 'p', vlen);
	strcpy(s + strlen(RQ H_BASE) + 5 + vlen, "\r\n\r\n");
	return s;
}

Test(http, header_line_limit_is_exact)
{
	size_t v = RL_HTTP_MAX_LINE - 5; /* "X-P: " + v = MAX_LINE */
	char *ok = req_with_header(v), *over = req_with_header(v + 1);

	cr_assert_eq(decide(ok, NULL), 101);
	struct outcome o = decide_n(over, strlen(over), NULL);
	cr_assert_eq(o.status, 431);
	cr_assert_str_eq(o.why, "header line too long");
	free(ok);
	free(over);
}

Test(http, request_line_limit_is_414)
{
	char *s = malloc(RL_HTTP_MAX_LINE + 512);

	cr_assert_not_null(s);
	for (int over = 0; over <= 1; over++) {
		/* "GET " target " HTTP/1.1": 13 bytes around the target */
		size_t t = RL_HTTP_MAX_LINE - 13 + (size_t)over;
		strcpy(s, "GET /relay?");
		memset(s + 11, 'q', t - 7);
		strcpy(s + 4 + t, " HTTP/1.1\r\n" H_BASE END);
		cr_assert_eq(strchr(s, '\r') - s, RL_HTTP_MAX_LINE + over);
		struct outcome o = decide_n(s, strlen(s), NULL);
		cr_assert_eq(o.status, over ? 414 : 101, "request line of %d bytes",
			     RL_HTTP_MAX_LINE + over);
	}
	free(s);
}

Test(http, header_count_limit_is_exact)
{
	char *s = malloc(RL_HTTP_MAX_HEAD);
	int base = 5; /* H_BASE lines */

	cr_assert_not_null(s);
	for (int extra = 0; extra <= 1; extra++) {
		strcpy(s, RQ H_BASE);
		for (int i = base; i < RL_HTTP_MAX_HEADERS + extra; i++)
			strcat(s, "X-A: b\r\n");
		strcat(s, END);
		struct outcome o = decide_n(s, strlen(s), NULL);
		cr_assert_eq(o.status, extra ? 431 : 101);
		if (extra)
			cr_assert_str_eq(o.why, "too many header fields");
	}
	free(s);
}

Test(http, head_size_limit_is_exact)
{
	/* pad with header lines so that the head is MAX_HEAD, then + 1 */
	size_t fixed = strlen(RQ H_BASE END);
	size_t pad = RL_HTTP_MAX_HEAD - fixed; /* bytes of padding lines */
	char *s = malloc(RL_HTTP_MAX_HEAD + 64);

	cr_assert_not_null(s);
	for (int over = 0; over <= 1; over++) {
		size_t left = pad + (size_t)over, n;
		strcpy(s, RQ H_BASE);
		n = strlen(s);
		/* lines "X-P: ppp\r\n" of 4000 bytes, then the rest (>= 7) */
		while (left > 0) {
			size_t line = left >= 4000 + 7 ? 4000 : left;
			memcpy(s + n, "X-P: ", 5);
			memset(s + n + 5, 'p', line - 7);
			memcpy(s + n + line - 2, "\r\n", 2);
			n += line;
			left -= line;
		}
		memcpy(s + n, END, 3);
		cr_assert_eq(strlen(s), RL_HTTP_MAX_HEAD + (size_t)over);
		struct outcome o = decide_n(s, strlen(s), NULL);
		cr_assert_eq(o.status, over ? 431 : 101, "head of %zu bytes", strlen(s));
		if (over)
			cr_assert_str_eq(o.why, "request head too large");
	}
	free(s);
}

Test(http, limits_refuse_before_the_line_ends)
{
	/* a header line that never ends: refused once MAX_LINE + 2 bytes of it
	 * are in, without waiting for a CRLF */
	size_t pre = strlen(RQ H_BASE);
	size_t n = pre + RL_HTTP_MAX_LINE + 2;
	uint8_t *buf = malloc(n);
	struct rl_http_req r;

	cr_assert_not_null(buf);
	memcpy(buf, RQ H_BASE, pre);
	memset(buf + pre, 'x', n - pre);
	buf[pre + 1] = ':';
	rl_http_req_init(&r);
	cr_assert_eq(rl_http_parse(&r, buf, n - 1), RL_HTTP_NEED_MORE);
	cr_assert_eq(rl_http_parse(&r, buf, n), RL_HTTP_REFUSED);
	cr_assert_eq(r.status, 431);
	/* sticky */
	cr_assert_eq(rl_http_parse(&r, buf, n), RL_HTTP_REFUSED);
	free(buf);
}

Test(http, limits_give_the_same_outcome_at_every_split)
{
	char *over = req_with_header(RL_HTTP_MAX_LINE);
	size_t n = strlen(over);
	/* a few hundred split points around the limit, and byte by byte */
	for (size_t k = n - 200; k <= n; k++) {
		struct outcome o = feed_split(over, n, &k, 1);
		cr_assert_eq(o.status, 431);
		cr_assert_str_eq(o.why, "header line too long");
	}
	expect_same_at_every_split("long header", over);
	free(over);
}

/* ---- responses ---------------------------------------------------------------- */

/* Splits a response into head and body; checks Content-Length. */
static void check_response(const uint8_t *out, size_t n, unsigned status, const char *extra)
{
	char *s = strndup((const char *)out, n);
	char want[64];

	cr_assert_not_null(s);
	snprintf(want, sizeof want, "HTTP/1.1 %u ", status);
	cr_assert_eq(strncmp(s, want, strlen(want)), 0, "%s", s);
	cr_assert_not_null(strstr(s, "\r\nConnection: close\r\n"), "%s", s);
	cr_assert_not_null(strstr(s, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
	if (extra != NULL)
		cr_assert_not_null(strstr(s, extra), "%u lacks %s", status, extra);
	char *body = strstr(s, "\r\n\r\n");
	cr_assert_not_null(body);
	body += 4;
	char *cl = strstr(s, "Content-Length: ");
	cr_assert_not_null(cl);
	cr_assert_eq((size_t)atoi(cl + 16), strlen(body));
	cr_assert_eq(body[strlen(body) - 1], '\n');
	free(s);
}

Test(http, error_responses_carry_what_their_status_requires)
{
	static const struct {
		unsigned status;
		const char *extra;
	} cases[] = {
	    {400, NULL}, {403, NULL},
	    {404, NULL}, {405, "\r\nAllow: GET\r\n"},
	    {414, NULL}, {426, "\r\nSec-WebSocket-Version: 13\r\n"},
	    {431, NULL}, {503, NULL},
	    {505, NULL},
	};
	uint8_t out[RL_HTTP_RESPONSE_MAX];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = rl_http_write_error(out, sizeof out, cases[i].status, "why not");
		cr_assert_gt(n, 0);
		check_response(out, n, cases[i].status, cases[i].extra);
		n = rl_http_write_error(out, sizeof out, cases[i].status, NULL);
		check_response(out, n, cases[i].status, cases[i].extra);
	}
	/* an unknown status is a 500, never a made-up line */
	size_t n = rl_http_write_error(out, sizeof out, 418, NULL);
	check_response(out, n, 500, NULL);
}

Test(http, error_response_bytes_are_exact)
{
	static const char want[] = "HTTP/1.1 426 Upgrade Required\r\n"
				   "Content-Type: text/plain; charset=utf-8\r\n"
				   "Content-Length: 61\r\n"
				   "Connection: close\r\n"
				   "Sec-WebSocket-Version: 13\r\n"
				   "\r\n"
				   "426 Upgrade Required: only WebSocket version 13 is supported\n";
	uint8_t out[RL_HTTP_RESPONSE_MAX];
	struct rl_http_req r;

	rl_http_req_init(&r);
	cr_assert_eq(rl_http_parse(&r, RL_J(RQ H_HOST H_UPG H_CONN H_KEY END)), RL_HTTP_COMPLETE);
	cr_assert_eq(rl_http_ws_check(&r, NULL), 426);
	size_t n = rl_http_write_error(out, sizeof out, r.status, r.why);
	cr_assert_eq(n, sizeof want - 1, "%.*s", (int)n, out);
	cr_assert_arr_eq(out, want, n);
	cr_assert_eq(rl_http_write_error(out, n, r.status, r.why), 0, "no room for the NUL");
}

/* ---- origin lists --------------------------------------------------------------- */

Test(http, origin_lists_parse_and_refuse_what_is_not_an_origin)
{
	static const char *const good[] = {
	    "https://chat.example.com",
	    "http://127.0.0.1:8080",
	    " https://a.example , http://localhost:3000 ",
	    "http://[::1]:8080",
	    "HTTPS://Chat.Example.com",
	};
	static const char *const bad[] = {
	    "https://chat.example.com/",
	    "https://chat.example.com/path",
	    "ftp://a.example",
	    "chat.example.com",
	    "https://",
	    "https://a.example,",
	    "https://a.example,,http://b",
	    ",",
	    "https://a:port",
	    "https://a:123456",
	    "https://user@a.example",
	    "http://[::1",
	    "https://a.example?x",
	};
	struct rl_http_origins o;
	const char *err;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		cr_expect_eq(rl_http_origins_parse(&o, good[i], NULL), 0, "%s", good[i]);
		rl_http_origins_free(&o);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		cr_expect_eq(rl_http_origins_parse(&o, bad[i], &err), -EINVAL, "%s", bad[i]);
		cr_expect_not_null(err, "%s", bad[i]);
		cr_expect_eq(o.n, 0);
	}
	cr_assert_eq(rl_http_origins_parse(&o, "https://a.example,,http://b.example", &err),
		     -EINVAL);
	cr_assert_str_eq(err, "empty entry in the origin list");
	cr_assert_eq(rl_http_origins_parse(&o, "https://a.example/", &err), -EINVAL);
	cr_assert_str_eq(err, "an origin is scheme://host[:port] (http or https)");
	cr_assert_eq(rl_http_origins_parse(&o, NULL, NULL), 0);
	cr_assert_eq(o.n, 0);
	cr_assert_eq(rl_http_origins_parse(&o, "", NULL), 0);
	cr_assert_eq(o.n, 0);
	cr_assert(rl_http_origin_allowed(&o, (struct relay_span){RL_J("https://x")}));
	RL_ASSERT_NO_LEAKS();
}

Test(http, origin_list_holds_at_most_32)
{
	char list[33 * 24] = "";
	struct rl_http_origins o;

	for (int i = 0; i < 33; i++) {
		char one[24];
		snprintf(one, sizeof one, "%shttps://o%d.example", i ? "," : "", i);
		strcat(list, one);
		int rc = rl_http_origins_parse(&o, list, NULL);
		cr_assert_eq(rc, i < 32 ? 0 : -EINVAL, "%d entries", i + 1);
		if (rc == 0) {
			cr_assert_eq(o.n, (size_t)i + 1);
			cr_assert(rl_http_origin_allowed(
			    &o, (struct relay_span){RL_J("https://o0.example")}));
		}
		rl_http_origins_free(&o);
	}
	RL_ASSERT_NO_LEAKS();
}

/* ---- the client side ------------------------------------------------------- */

Test(http, client_key_and_request_upgrade_through_the_server_parser)
{
	static const uint8_t nonce[16] = "the sample nonce";
	char key[RL_HTTP_WS_KEY_LEN + 1];
	uint8_t req[RL_HTTP_RESPONSE_MAX];
	struct rl_http_req r;

	rl_http_ws_key(nonce, key);
	cr_assert_str_eq(key, "dGhlIHNhbXBsZSBub25jZQ==", "RFC 6455 §1.3's key");
	size_t n = rl_http_write_upgrade(req, sizeof req, "127.0.0.1:8080", "/relay", key,
					 "http://127.0.0.1:8080");
	cr_assert_gt(n, 0);
	rl_http_req_init(&r);
	cr_assert_eq(rl_http_parse(&r, req, n), RL_HTTP_COMPLETE);
	cr_assert_eq(r.head_len, n);
	cr_assert_eq(rl_http_ws_route(&r, NULL), 101, "%s", r.why ? r.why : "");
	cr_assert(r.protocol_relay, "the request offers relay.v1");
	cr_assert(r.origin.count == 1 && r.origin.v.n == strlen("http://127.0.0.1:8080"));
	/* Too small a buffer: 0, never a cut request. */
	cr_assert_eq(rl_http_write_upgrade(req, 40, "h", "/relay", key, NULL), 0);
}

/* The server's 101 for a request, and what the client makes of it. */
static enum rl_http_parse_status answer_of(const char *resp, const char *key, unsigned *status,
					   const char **why, size_t *head_len)
{
	struct rl_http_answer a;
	enum rl_http_parse_status st =
	    rl_http_parse_answer(&a, (const uint8_t *)resp, strlen(resp), key);
	*status = a.status;
	*why = a.why;
	*head_len = a.head_len;
	return st;
}

Test(http, client_accepts_exactly_the_101_its_key_asks_for)
{
	static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
	uint8_t resp[RL_HTTP_RESPONSE_MAX + 8];
	struct rl_http_req r;
	unsigned status;
	const char *why;
	size_t head;

	/* The server's own 101 (with relay.v1), then two frame bytes. */
	static const char req[] = RQ H_BASE "Sec-WebSocket-Protocol: relay.v1\r\n" END;
	rl_http_req_init(&r);
	cr_assert_eq(rl_http_parse(&r, (const uint8_t *)req, sizeof req - 1), RL_HTTP_COMPLETE);
	size_t n = rl_http_write_101(resp, sizeof resp, &r);
	memcpy(resp + n, "\x82\x00", 3);
	cr_assert_eq(answer_of((const char *)resp, key, &status, &why, &head), RL_HTTP_COMPLETE,
		     "%s", why);
	cr_assert_eq(status, 101);
	cr_assert_eq(head, n, "frames start after the head");
	/* Every byte short of the blank line: not yet. */
	for (size_t k = 0; k < n; k++) {
		struct rl_http_answer a;
		cr_assert_eq(rl_http_parse_answer(&a, resp, k, key), RL_HTTP_NEED_MORE, "%zu", k);
	}
	/* A key of another request: refused. */
	cr_assert_eq(
	    answer_of((const char *)resp, "AQIDBAUGBwgJCgsMDQ4PEA==", &status, &why, &head),
	    RL_HTTP_REFUSED);
	cr_assert_str_eq(why, "wrong Sec-WebSocket-Accept");
}

Test(http, client_refuses_answers_that_are_not_a_proper_101)
{
	static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
	static const struct {
		const char *resp;
		unsigned status;
		const char *why;
	} cases[] = {
	    {"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", 403,
	     "not 101 Switching Protocols"},
	    {"HTTP/1.0 101 Switching Protocols\r\n\r\n", 0, "malformed status line"},
	    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
	     "Upgrade\r\n\r\n",
	     101, "no Sec-WebSocket-Accept"},
	    {"HTTP/1.1 101 Switching Protocols\r\nConnection: "
	     "Upgrade\r\nSec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n\r\n",
	     101, "no Upgrade: websocket / Connection: upgrade"},
	    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
	     "Upgrade\r\nSec-WebSocket-Accept: " SAMPLE_ACCEPT
	     "\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
	     101, "a subprotocol other than relay.v1"},
	    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
	     "Upgrade\r\nSec-WebSocket-Accept: " SAMPLE_ACCEPT
	     "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
	     101, "an extension nobody asked for"},
	    {"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\r\n\r\n", 101,
	     "line not ended by CRLF"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		unsigned status;
		const char *why;
		size_t head;
		cr_assert_eq(answer_of(cases[i].resp, key, &status, &why, &head), RL_HTTP_REFUSED,
			     "case %zu", i);
		cr_assert_eq(status, cases[i].status, "case %zu", i);
		cr_assert_str_eq(why, cases[i].why, "case %zu", i);
	}
	/* Header names are case-insensitive; lists may hold more. */
	unsigned status;
	const char *why;
	size_t head;
	cr_assert_eq(answer_of("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nCONNECTION: keep-alive, "
			       "upgrade\r\nsec-websocket-accept: " SAMPLE_ACCEPT "\r\n\r\n",
			       key, &status, &why, &head),
		     RL_HTTP_COMPLETE, "%s", why);
}

Test(http, client_gives_up_on_an_answer_head_over_the_limit)
{
	static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
	uint8_t *big = malloc(RL_HTTP_MAX_HEAD);
	struct rl_http_answer a;
	cr_assert_not_null(big);
	memset(big, 'a', RL_HTTP_MAX_HEAD);
	cr_assert_eq(rl_http_parse_answer(&a, big, RL_HTTP_MAX_HEAD - 1, key), RL_HTTP_NEED_MORE);
	cr_assert_eq(rl_http_parse_answer(&a, big, RL_HTTP_MAX_HEAD, key), RL_HTTP_REFUSED);
	free(big);
}
