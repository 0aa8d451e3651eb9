/* fuzz_http.c -- libFuzzer target for the WebSocket upgrade request
 * (net/http.c). The first input byte picks an origin allow-list; the rest
 * is the request. Checks: the same outcome (status, reason, head length,
 * every field as an offset) whatever the chunking, with the not yet
 * received part of the buffer poisoned so a look past the end would show;
 * a complete head ends at its first empty line and within the limits, with
 * every span inside it; refusals and decisions use only the documented
 * statuses; every response fits RL_HTTP_RESPONSE_MAX; a 101 only for a key
 * of the right shape and version 13. The input is also parsed as an origin
 * list: every entry it keeps is allowed by it, and as a server's answer to
 * an upgrade (the client side, rl_http_parse_answer).
 *
 *   build-fuzz/test/fuzz/fuzz-http -max_total_time=30 CORPUS test/data/http
 *
 * Threading: single-threaded (libFuzzer calls one input at a time). */
#include "fuzz.h"
#include "net/http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const allow_lists[4] = {
    NULL,
    "https://chat.example.com",
    "http://127.0.0.1:8080, https://a.example",
    "http://[::1]:80",
};

/* A span as offset + length from <base>; (-1, 0) when unset. */
struct off {
	long o;
	size_t n;
};

struct outcome {
	enum rl_http_parse_status st;
	unsigned status;
	const char *why;
	size_t head_len;
	struct off method, target, path, query, host, key, version, origin;
	uint8_t counts[4];
	bool flags[5];
	uint8_t lists;
};

static struct off to_off(struct relay_span s, const uint8_t *base)
{
	return s.p ? (struct off){(long)(s.p - base), s.n} : (struct off){-1, 0};
}

static void fill(struct outcome *o, const struct rl_http_req *r, const uint8_t *base)
{
	o->status = r->status;
	o->why = r->why;
	o->head_len = r->head_len;
	o->method = to_off(r->method, base);
	o->target = to_off(r->target, base);
	o->path = to_off(r->path, base);
	o->query = to_off(r->query, base);
	o->host = to_off(r->host.v, base);
	o->key = to_off(r->key.v, base);
	o->version = to_off(r->version.v, base);
	o->origin = to_off(r->origin.v, base);
	o->counts[0] = r->host.count;
	o->counts[1] = r->key.count;
	o->counts[2] = r->version.count;
	o->counts[3] = r->origin.count;
	o->flags[0] = r->upgrade_websocket;
	o->flags[1] = r->connection_upgrade;
	o->flags[2] = r->protocol_relay;
	o->flags[3] = r->protocol_bad;
	o->flags[4] = false;
	o->lists = r->protocol_lists;
}

static bool in_head(struct relay_span s, const uint8_t *buf, size_t head_len)
{
	return s.p == NULL || (s.p >= buf && s.p + s.n <= buf + head_len);
}

static void check_complete(const struct rl_http_req *r, const uint8_t *buf)
{
	FUZZ_CHECK(r->status == 0 && r->head_len >= 4 && r->head_len <= RL_HTTP_MAX_HEAD);
	FUZZ_CHECK(memcmp(buf + r->head_len - 4, "\r\n\r\n", 4) == 0);
	/* lines hold no CR or LF, so the first empty line ends the head */
	const uint8_t *end = memmem(buf, r->head_len, "\r\n\r\n", 4);
	FUZZ_CHECK(end == buf + r->head_len - 4);
	FUZZ_CHECK(r->method.n > 0 && r->target.n > 0 && r->target.p[0] == '/');
	FUZZ_CHECK(r->path.p == r->target.p && r->path.n <= r->target.n);
	FUZZ_CHECK(memchr(r->path.p, '?', r->path.n) == NULL);
	const struct relay_span spans[] = {r->method, r->target, r->path,      r->query,
					   r->host.v, r->key.v,	 r->version.v, r->origin.v};
	for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++)
		FUZZ_CHECK(in_head(spans[i], buf, r->head_len));
}

/* Feeds <data> in chunks of <mode> into a buffer whose unreceived bytes
 * are line ends; then the decision. */
static void run(const uint8_t *data, size_t size, unsigned mode,
		const struct rl_http_origins *allow, struct outcome *o)
{
	uint8_t *buf = malloc(size + 1);
	uint64_t seed = (fuzz_fnv(data, size) ^ (mode * 0x9E3779B97F4A7C15ull)) | 1;
	struct rl_http_req r;
	size_t have = 0;

	FUZZ_CHECK(buf != NULL);
	memset(buf, '\n', size + 1);
	rl_http_req_init(&r);
	o->st = rl_http_parse(&r, buf, 0);
	while (o->st == RL_HTTP_NEED_MORE && have < size) {
		size_t n = fuzz_chunk(mode, &seed, size - have);
		memcpy(buf + have, data + have, n);
		have += n;
		o->st = rl_http_parse(&r, buf, have);
	}
	if (o->st == RL_HTTP_COMPLETE) {
		check_complete(&r, buf);
		unsigned d = rl_http_ws_route(&r, allow);
		FUZZ_CHECK(d == 101 || d == 400 || d == 403 || d == 404 || d == 405 || d == 426);
		FUZZ_CHECK(d == 101 ? r.status == 0 : r.status == d && r.why != NULL);
		if (d == 101) {
			FUZZ_CHECK(r.key.count == 1 && r.key.v.n == 24 && r.version.v.n == 2);
			FUZZ_CHECK(r.path.n == 6 && memcmp(r.path.p, "/relay", 6) == 0);
			uint8_t resp[RL_HTTP_RESPONSE_MAX];
			size_t n = rl_http_write_101(resp, sizeof resp, &r);
			FUZZ_CHECK(n > 0 && memcmp(resp, "HTTP/1.1 101 ", 13) == 0);
		}
	} else if (o->st == RL_HTTP_REFUSED) {
		FUZZ_CHECK(r.status == 400 || r.status == 414 || r.status == 431 ||
			   r.status == 505);
		FUZZ_CHECK(r.why != NULL && r.head_len == 0);
	} else {
		FUZZ_CHECK(have == size && r.status == 0 && size < RL_HTTP_MAX_HEAD);
	}
	if (r.status != 0) {
		uint8_t resp[RL_HTTP_RESPONSE_MAX];
		size_t n = rl_http_write_error(resp, sizeof resp, r.status, r.why);
		FUZZ_CHECK(n > 0 && memcmp(resp, "HTTP/1.1 ", 9) == 0);
	}
	fill(o, &r, buf);
	free(buf);
}

static void same(const struct outcome *a, const struct outcome *b)
{
	FUZZ_CHECK(a->st == b->st && a->status == b->status && a->why == b->why);
	FUZZ_CHECK(memcmp(a, b, sizeof *a) == 0);
}

static void fuzz_origins(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct rl_http_origins o;
	const char *err = NULL;

	FUZZ_CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	int rc = rl_http_origins_parse(&o, s, &err);
	if (rc == 0) {
		FUZZ_CHECK(o.n <= RL_HTTP_MAX_ORIGINS);
		for (size_t i = 0; i < o.n; i++) {
			FUZZ_CHECK(o.v[i].n > 7);
			FUZZ_CHECK(rl_http_origin_allowed(&o, o.v[i]));
		}
	} else {
		FUZZ_CHECK(rc == -EINVAL && err != NULL && o.n == 0);
	}
	rl_http_origins_free(&o);
	free(s);
}

static struct outcome out_a, out_b;

/* The input as the answer to a client's upgrade (rl_http_parse_answer, the
 * client side): parsed from a buffer of exactly its size (a look past the
 * end shows); COMPLETE only for a 101 whose head ends at the first blank
 * line; every shorter prefix of a complete head still needs more; a status
 * is 0 or three digits. */
static void fuzz_answer(const uint8_t *data, size_t size)
{
	static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
	struct rl_http_answer a, b;
	uint8_t *buf = malloc(size ? size : 1);

	FUZZ_CHECK(buf != NULL);
	if (size)
		memcpy(buf, data, size);
	enum rl_http_parse_status st = rl_http_parse_answer(&a, buf, size, key);
	FUZZ_CHECK(a.status <= 999);
	if (st == RL_HTTP_COMPLETE) {
		FUZZ_CHECK(a.status == 101 && a.head_len >= 4 && a.head_len <= size);
		FUZZ_CHECK(memcmp(buf + a.head_len - 4, "\r\n\r\n", 4) == 0);
		FUZZ_CHECK(memmem(buf, a.head_len, "\r\n\r\n", 4) == buf + a.head_len - 4);
		size_t cut = a.head_len - 1 - (size % 4); /* a prefix without the blank line */
		FUZZ_CHECK(rl_http_parse_answer(&b, buf, cut, key) == RL_HTTP_NEED_MORE);
	} else if (st == RL_HTTP_REFUSED) {
		FUZZ_CHECK(a.why != NULL);
	} else {
		FUZZ_CHECK(size < RL_HTTP_MAX_HEAD && memmem(buf, size, "\r\n\r\n", 4) == NULL);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rl_http_origins allow;

	if (size == 0)
		return 0;
	FUZZ_CHECK(rl_http_origins_parse(&allow, allow_lists[data[0] & 3], NULL) == 0);
	data++;
	size--;
	memset(&out_a, 0, sizeof out_a);
	run(data, size, 0, &allow, &out_a);
	for (unsigned mode = size <= 4096 ? 1 : 2; mode < 5; mode++) {
		memset(&out_b, 0, sizeof out_b);
		run(data, size, mode, &allow, &out_b);
		same(&out_a, &out_b);
	}
	rl_http_origins_free(&allow);
	fuzz_origins(data, size);
	fuzz_answer(data, size);
	return 0;
}
