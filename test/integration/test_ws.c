/* test_ws.c -- the WebSocket listener against protocol-v1-ext.md §1 and §7,
 * one rule per test, over raw sockets (frames built with net/wsframe.c,
 * requests written by hand): the upgrade and each refusal, text -> 1003,
 * every 1002 violation, fragments (with a ping between them), oversize ->
 * FRAME_TOO_LARGE then 1009, a length mismatch -> INVALID_FRAME, ping/pong,
 * the close handshake, the upgrade deadline (slowloris), the --web-root
 * files, and WebSocket and TCP clients chatting in one room. After each
 * fault, a healthy WebSocket neighbour and a TCP neighbour still chat.
 * The same tests run over wss:// (meson test wss-ws: RELAY_TEST_TRANSPORT=wss
 * gives the listener --ws-tls, and the raw client and the WebSocket
 * neighbour do the TLS handshake first; the bytes are the same inside it).
 * Threading: Criterion test bodies, one relayd per test. */
#include "itest.h"

#include "net/http.h"
#include "net/wsframe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* relayd with a WebSocket listener; no presence events, so the neighbours
 * see exactly the messages they exchange. */
#define WS_STARTS(s, ...)                                                                          \
	IT_START((s), "--workers", "1", "--ws-port", "0", "--no-presence", __VA_ARGS__)

/* ---- a raw client: bytes in and out, nothing hidden --------------------------- */

struct raw {
	struct rl_test_client *tcp; /* owns the socket (and TLS on it, for wss) */
	size_t len;
	uint8_t buf[1 << 18];
};

/* A connection from local address <src> (NULL: any); TLS under wss. */
static struct raw *raw_connect_from(const struct rl_test_server *s, const char *src)
{
	struct raw *r = calloc(1, sizeof(*r));
	cr_assert_not_null(r);
	r->tcp = rl_test_connect_addr_from(s->host, s->ws_port, src, RL_TEST_REPLY_MS);
	cr_assert_not_null(r->tcp, "%s", rl_test_err());
	if (rl_test_wss())
		cr_assert_eq(rl_test_start_tls(r->tcp, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
	return r;
}

static struct raw *raw_connect(const struct rl_test_server *s)
{
	return raw_connect_from(s, NULL);
}

static void raw_close(struct raw *r)
{
	rl_test_close(r->tcp);
	free(r);
}

static void raw_send(struct raw *r, const void *p, size_t n)
{
	cr_assert_eq(rl_test_send_raw(r->tcp, p, n, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
}

static void raw_sends(struct raw *r, const char *text)
{
	raw_send(r, text, strlen(text));
}

/* Reads until <need> bytes are buffered: 0, or -1 at EOF/reset, -2 on timeout.
 * Reads little more than needed (4 KiB at least): raw_drop moves what is
 * buffered for every frame taken, and a buffer kept full of small frames
 * (thousands of pongs) made that quadratic -- slower, under ASan, than the
 * server's 2 s CLOSING deadline that the reader must beat. */
static int raw_fill(struct raw *r, size_t need, int timeout_ms)
{
	int64_t deadline = rl_test_now_ms() + timeout_ms;
	while (r->len < need) {
		int64_t left = deadline - rl_test_now_ms();
		size_t want = need - r->len < 4096 ? 4096 : need - r->len;
		if (want > sizeof r->buf - r->len)
			want = sizeof r->buf - r->len;
		ssize_t n = left <= 0 ? (errno = ETIMEDOUT, -1)
				      : rl_test_recv_raw(r->tcp, r->buf + r->len, want, (int)left);
		if (n < 0 && errno == ETIMEDOUT)
			return -2;
		if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
			return -1;
		cr_assert_geq(n, 0, "read: %s", strerror(errno));
		r->len += (size_t)n;
	}
	return 0;
}

static void raw_drop(struct raw *r, size_t n)
{
	memmove(r->buf, r->buf + n, r->len - n);
	r->len -= n;
}

/* The HTTP answer's head (NUL-terminated in <head>) and its status. */
static unsigned raw_http_head(struct raw *r, char *head, size_t cap)
{
	int64_t deadline = rl_test_now_ms() + RL_TEST_REPLY_MS;
	const uint8_t *end;
	while ((end = memmem(r->buf, r->len, "\r\n\r\n", 4)) == NULL) {
		int rc = raw_fill(r, r->len + 1, (int)(deadline - rl_test_now_ms()));
		cr_assert_eq(rc, 0, "no HTTP answer (%s); got %zu bytes",
			     rc == -1 ? "closed" : "timeout", r->len);
	}
	size_t n = (size_t)(end - r->buf) + 4;
	cr_assert_lt(n, cap);
	memcpy(head, r->buf, n);
	head[n] = '\0';
	raw_drop(r, n);
	unsigned st = 0;
	cr_assert_eq(sscanf(head, "HTTP/1.1 %u ", &st), 1, "status line: %s", head);
	return st;
}

/* An upgrade request with <extra> header lines ("Name: v\r\n"...). */
static void raw_request(struct raw *r, const char *path, const char *extra)
{
	char req[2048];
	snprintf(req, sizeof req,
		 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n%s\r\n",
		 path, extra);
	raw_sends(r, req);
}

#define RAW_VERSION "Sec-WebSocket-Version: 13\r\n"

/* Upgrades <r> (the RFC 6455 sample key, so the accept value is known). */
static void raw_upgrade(struct raw *r)
{
	char head[4096];
	raw_request(r, "/relay", RAW_VERSION "Sec-WebSocket-Protocol: relay.v1\r\n");
	cr_assert_eq(raw_http_head(r, head, sizeof head), 101, "%s", head);
	cr_assert(strstr(head, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") !=
		      NULL,
		  "%s", head);
}

static struct raw *raw_open(const struct rl_test_server *s)
{
	struct raw *r = raw_connect(s);
	raw_upgrade(r);
	return r;
}

/* A client frame: masked unless <unmasked>; <b0> gives FIN, RSV, opcode. */
static void raw_frame_b0(struct raw *r, uint8_t b0, const void *p, size_t n, bool unmasked)
{
	static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
	uint8_t *f = malloc(RL_WSF_HDR_MAX + n + 1);
	cr_assert_not_null(f);
	size_t k = rl_wsf_put_frame(f, b0 & 0x0F, (b0 & 0x80) != 0, p, n, unmasked ? NULL : key);
	f[0] = b0;
	raw_send(r, f, k);
	free(f);
}

static void raw_frame(struct raw *r, uint8_t op, bool fin, const void *p, size_t n)
{
	raw_frame_b0(r, (uint8_t)((fin ? 0x80 : 0) | op), p, n, false);
}

/* One Relay frame as one binary message. */
static void raw_relay(struct raw *r, uint8_t type, uint8_t flags, const char *payload)
{
	uint8_t b[1024];
	size_t n = relay_frame_encode(b, type, flags, payload, (uint32_t)strlen(payload));
	raw_frame(r, RL_WSF_OP_BINARY, true, b, n);
}

/* The next server frame: checked unmasked, FIN set, no RSV. */
struct srv_frame {
	uint8_t op;
	size_t n;
	uint8_t p[1 << 17];
};

static void raw_next(struct raw *r, struct srv_frame *f, const char *what)
{
	int rc = raw_fill(r, 2, RL_TEST_REPLY_MS);
	cr_assert_eq(rc, 0, "%s: no frame (%s)", what, rc == -1 ? "closed" : "timeout");
	uint8_t b0 = r->buf[0], b1 = r->buf[1];
	cr_assert_eq(b0 & 0xF0, 0x80, "%s: FIN without RSV expected, b0 0x%02x", what, b0);
	cr_assert_eq(b1 & 0x80, 0, "%s: a server frame must not be masked", what);
	size_t h = (b1 & 0x7F) == 126 ? 4 : (b1 & 0x7F) == 127 ? 10 : 2;
	cr_assert_eq(raw_fill(r, h, RL_TEST_REPLY_MS), 0, "%s: header", what);
	uint64_t n = rl_wsf_server_frame_size(r->buf) - h;
	cr_assert_leq(n, sizeof f->p, "%s: %llu bytes", what, (unsigned long long)n);
	cr_assert_eq(raw_fill(r, h + n, RL_TEST_REPLY_MS), 0, "%s: payload", what);
	f->op = b0 & 0x0F;
	f->n = (size_t)n;
	memcpy(f->p, r->buf + h, f->n);
	raw_drop(r, h + f->n);
}

/* The next frame is a close frame with <code>. */
static void raw_expect_close(struct raw *r, uint16_t code, const char *what)
{
	static struct srv_frame f;
	raw_next(r, &f, what);
	cr_assert_eq(f.op, RL_WSF_OP_CLOSE, "%s: want close %u, got opcode %u (%zu bytes)", what,
		     code, f.op, f.n);
	cr_assert_geq(f.n, 2, "%s: a close frame without a code", what);
	cr_assert_eq(f.p[0] << 8 | f.p[1], code, "%s: close code %u, want %u", what,
		     f.p[0] << 8 | f.p[1], code);
}

/* The next frame is a binary message with a Relay ERROR <code>. */
static void raw_expect_error(struct raw *r, const char *code, const char *what)
{
	static struct srv_frame f;
	char want[64];
	raw_next(r, &f, what);
	cr_assert_eq(f.op, RL_WSF_OP_BINARY, "%s: want ERROR, got opcode %u", what, f.op);
	cr_assert(f.n > 7 && f.p[5] == RELAY_MSG_ERROR, "%s: want an ERROR frame", what);
	snprintf(want, sizeof want, "{\"code\":\"%s\",", code);
	cr_assert(memmem(f.p + 7, f.n - 7, want, strlen(want)) != NULL, "%s: want %s in %.*s", what,
		  code, (int)(f.n - 7), (const char *)f.p + 7);
}

/* The next frame is a binary message carrying one Relay frame of <type>;
 * returns its payload (in a static frame). */
static const struct srv_frame *raw_expect_relay(struct raw *r, uint8_t type, const char *what)
{
	static struct srv_frame f;
	raw_next(r, &f, what);
	cr_assert_eq(f.op, RL_WSF_OP_BINARY, "%s: want a binary message, got opcode %u", what,
		     f.op);
	cr_assert(f.n >= 7 && relay_frame_length(f.p) + 4 == f.n && f.p[5] == type,
		  "%s: want one %s frame in the message (%zu bytes)", what,
		  relay_msg_type_name(type), f.n);
	return &f;
}

/* The server closes its side within <ms> (EOF or reset, nothing before it). */
static void raw_expect_eof(struct raw *r, int ms, const char *what)
{
	int rc = raw_fill(r, r->len + 1, ms);
	cr_assert_eq(rc, -1, "%s: %s", what,
		     rc == -2 ? "still open" : "bytes instead of the close");
}

/* Answers the server's close (as a client must) and expects the TCP close. */
static void raw_finish(struct raw *r, const char *what)
{
	uint8_t code[2] = {0x03, 0xe8};
	raw_frame(r, RL_WSF_OP_CLOSE, true, code, 2);
	raw_expect_eof(r, RL_TEST_REPLY_MS, what);
}

/* Closes from our side: the server echoes the code, then closes TCP. */
static void raw_bye(struct raw *r, const char *what)
{
	uint8_t code[2] = {0x03, 0xe8};
	raw_frame(r, RL_WSF_OP_CLOSE, true, code, 2);
	raw_expect_close(r, 1000, what);
	raw_expect_eof(r, RL_TEST_REPLY_MS, what);
}

/* ---- neighbours that must not notice a fault ---------------------------------- */

struct calm {
	struct rl_test_client *ws, *tcp;
};

static void calm_start(const struct rl_test_server *s, struct calm *n)
{
	n->ws = (rl_test_wss() ? rl_test_connect_wss : rl_test_connect_ws)(
	    s->host, s->ws_port, NULL, NULL, RL_TEST_REPLY_MS);
	cr_assert_not_null(n->ws, "WebSocket neighbour: %s", rl_test_err());
	cr_assert_not_null(rl_test_hello(n->ws, "{\"userId\":\"calm-ws\"}", RL_TEST_REPLY_MS), "%s",
			   rl_test_err());
	it_join(n->ws, "calm", 1);
	n->tcp = it_client(s, "{\"userId\":\"calm-tcp\"}");
	it_join(n->tcp, "calm", 2);
}

/* Each neighbour's message reaches the other, exactly. */
static void calm_chat(struct calm *n)
{
	static const char *const mask[] = {"from", "timestamp", NULL};
	it_send_str(n->ws, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON,
		    "{\"room\":\"calm\",\"content\":\"from ws\"}");
	cr_assert_not_null(
	    rl_test_expect_json(n->tcp, RELAY_MSG_MESSAGE,
				"{\"room\":\"calm\",\"from\":*,\"userId\":\"calm-ws\","
				"\"content\":\"from ws\",\"timestamp\":*}",
				mask, RL_TEST_REPLY_MS),
	    "%s", rl_test_err());
	it_send_str(n->tcp, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON,
		    "{\"room\":\"calm\",\"content\":\"from tcp\"}");
	cr_assert_not_null(
	    rl_test_expect_json(n->ws, RELAY_MSG_MESSAGE,
				"{\"room\":\"calm\",\"from\":*,\"userId\":\"calm-tcp\","
				"\"content\":\"from tcp\",\"timestamp\":*}",
				mask, RL_TEST_REPLY_MS),
	    "%s", rl_test_err());
}

static void calm_end(struct calm *n)
{
	calm_chat(n);
	rl_test_close(n->ws);
	rl_test_close(n->tcp);
}

/* ---- the upgrade ------------------------------------------------------------------ */

IT_TEST(ws, upgrade_answers_101_with_the_accept_key_and_relay_v1)
{
	struct rl_test_server s;
	char head[4096];
	WS_STARTS(&s, "--no-presence");
	struct raw *r = raw_connect(&s);
	raw_request(r, "/relay?x=1", RAW_VERSION "Sec-WebSocket-Protocol: chat, relay.v1\r\n");
	cr_assert_eq(raw_http_head(r, head, sizeof head), 101, "%s", head);
	cr_assert(strstr(head, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") &&
		      strstr(head, "\r\nSec-WebSocket-Protocol: relay.v1\r\n") &&
		      strstr(head, "\r\nUpgrade: websocket\r\n"),
		  "%s", head);
	raw_relay(r, RELAY_MSG_HELLO, RELAY_FLAG_JSON, "{\"userId\":\"raw\"}");
	const struct srv_frame *f = raw_expect_relay(r, RELAY_MSG_HELLO, "HELLO ack");
	/* A transport, not a feature (protocol-v1-ext.md 7): the v1 ack. */
	static const char v1_end[] = ",\"heartbeatMs\":30000}";
	cr_assert(f->n > 7 + sizeof(v1_end) &&
		      memcmp(f->p + f->n - (sizeof(v1_end) - 1), v1_end, sizeof(v1_end) - 1) == 0,
		  "the HELLO ack over WebSocket ends as v1's: %.*s", (int)(f->n - 7), f->p + 7);
	raw_close(r);
	/* Without Sec-WebSocket-Protocol: 101 and no subprotocol named. */
	r = raw_connect(&s);
	raw_request(r, "/relay", RAW_VERSION);
	cr_assert_eq(raw_http_head(r, head, sizeof head), 101, "%s", head);
	cr_assert(strstr(head, "Sec-WebSocket-Protocol") == NULL, "%s", head);
	raw_close(r);
	it_stop(&s);
}

/* One refused request: <status>, a text/plain answer, then the close. */
static void refused(const struct rl_test_server *s, const char *path, const char *extra,
		    unsigned status, const char *what)
{
	char head[4096];
	struct raw *r = raw_connect(s);
	raw_request(r, path, extra);
	cr_assert_eq(raw_http_head(r, head, sizeof head), status, "%s: %s", what, head);
	cr_assert(strstr(head, "\r\nConnection: close\r\n") != NULL, "%s: %s", what, head);
	if (status == 426)
		cr_assert(strstr(head, "\r\nSec-WebSocket-Version: 13\r\n") != NULL, "%s", head);
	unsigned long body = 0;
	const char *cl = strstr(head, "Content-Length: ");
	cr_assert(cl != NULL && (body = strtoul(cl + 16, NULL, 10)) > 0, "%s", head);
	cr_assert_eq(raw_fill(r, body, RL_TEST_REPLY_MS), 0, "%s: body", what);
	raw_drop(r, body);
	raw_expect_eof(r, RL_TEST_REPLY_MS, what);
	raw_close(r);
}

IT_TEST(ws, bad_upgrades_are_refused_with_their_http_status)
{
	struct rl_test_server s;
	struct calm n;
	WS_STARTS(&s, "--ws-allowed-origins", "https://chat.example.com, http://127.0.0.1:8080");
	calm_start(&s, &n);
	refused(&s, "/relay", "", 426, "no Sec-WebSocket-Version");
	refused(&s, "/relay", "Sec-WebSocket-Version: 8\r\n", 426, "version 8");
	refused(&s, "/chat", RAW_VERSION, 404, "unknown path");
	refused(&s, "/relay", RAW_VERSION "Origin: https://evil.example.com\r\n", 403,
		"origin not allowed");
	refused(&s, "/relay", RAW_VERSION "Sec-WebSocket-Protocol: chat, v2\r\n", 400,
		"subprotocols without relay.v1");
	refused(&s, "/relay", RAW_VERSION "Sec-WebSocket-Key: short\r\n", 400, "two keys");
	/* Not an upgrade at all: a plain GET of the WebSocket path. */
	struct raw *r = raw_connect(&s);
	char head[4096];
	raw_sends(r, "GET /relay HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(raw_http_head(r, head, sizeof head), 400, "%s", head);
	raw_close(r);
	/* An allowed origin, and no Origin at all (not a browser), pass. */
	r = raw_connect(&s);
	raw_request(r, "/relay", RAW_VERSION "Origin: http://127.0.0.1:8080\r\n");
	cr_assert_eq(raw_http_head(r, head, sizeof head), 101, "%s", head);
	raw_close(r);
	calm_end(&n);
	it_stop(&s);
}

IT_TEST(ws, a_connection_over_max_connections_gets_503_instead_of_101)
{
	struct rl_test_server s;
	char head[4096];
	WS_STARTS(&s, "--max-connections", "1");
	struct rl_test_client *first = it_client(&s, NULL);
	struct raw *r = raw_connect(&s);
	raw_request(r, "/relay", RAW_VERSION);
	cr_assert_eq(raw_http_head(r, head, sizeof head), 503, "%s", head);
	raw_close(r);
	it_ping(first);
	rl_test_close(first);
	it_stop(&s);
}

/* --max-connections-per-ip: the refusal at accept is the same 503 (§7),
 * for that address only. */
IT_TEST(ws, a_connection_over_the_per_address_limit_gets_503_instead_of_101)
{
	struct rl_test_server s;
	char head[4096];
	WS_STARTS(&s, "--max-connections-per-ip", "1");
	struct raw *in = raw_connect_from(&s, "127.0.0.2");
	raw_upgrade(in);
	struct raw *r = raw_connect_from(&s, "127.0.0.2");
	raw_request(r, "/relay", RAW_VERSION);
	cr_assert_eq(raw_http_head(r, head, sizeof head), 503, "%s", head);
	raw_close(r);
	struct raw *other = raw_connect_from(&s, "127.0.0.3");
	raw_upgrade(other);
	raw_relay(in, RELAY_MSG_HELLO, 0, "");
	raw_expect_relay(in, RELAY_MSG_HELLO, "HELLO of the one admitted");
	raw_close(other);
	raw_close(in);
	it_stop(&s);
}

/* Slowloris: a request that trickles in is cut at --frame-timeout from
 * accept, with no answer, and nobody else waits for it. */
IT_TEST(ws, an_upgrade_request_not_complete_within_the_frame_timeout_is_closed)
{
	static const char part[] =
	    "GET /relay HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n";
	struct rl_test_server s;
	struct calm n;
	WS_STARTS(&s, "--frame-timeout", "0.6");
	calm_start(&s, &n);
	int64_t t0 = rl_test_now_ms();
	struct raw *r = raw_connect(&s);
	int rc = -2;
	for (size_t i = 0; i < sizeof part - 1 && rc == -2; i++) {
		if (rl_test_send_raw(r->tcp, part + i, 1, RL_TEST_REPLY_MS) != 0)
			break;		 /* closed under us */
		rc = raw_fill(r, 1, 50); /* one byte every 50 ms */
	}
	if (rc == -2)
		rc = raw_fill(r, 1, 3000);
	int64_t took = rl_test_now_ms() - t0;
	cr_assert_eq(rc, -1, "%s after %lld ms", rc == -2 ? "still open" : "got an answer",
		     (long long)took);
	cr_assert(took >= 500 && took < 2500, "closed %lld ms after connect (frame timeout 600 ms)",
		  (long long)took);
	raw_close(r);
	calm_end(&n);
	it_stop(&s);
}

/* ---- WebSocket-level violations: a close frame only ------------------------------ */

/* A fresh upgraded connection says HELLO, then commits <fault>: the close
 * frame <code> comes, with no Relay ERROR, then the server waits for our
 * close (not closing first), then closes. */
static void violation(const struct rl_test_server *s, void (*fault)(struct raw *), uint16_t code,
		      const char *what)
{
	struct raw *r = raw_open(s);
	raw_relay(r, RELAY_MSG_HELLO, 0, "");
	raw_expect_relay(r, RELAY_MSG_HELLO, what);
	fault(r);
	raw_expect_close(r, code, what);
	cr_assert_eq(raw_fill(r, 1, 200), -2, "%s: the server did not wait for our close", what);
	raw_finish(r, what);
	raw_close(r);
}

static void fault_text(struct raw *r)
{
	raw_frame(r, RL_WSF_OP_TEXT, true, "hello", 5);
}

static void fault_unmasked(struct raw *r)
{
	uint8_t b[16];
	size_t n = relay_frame_encode(b, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
	raw_frame_b0(r, 0x80 | RL_WSF_OP_BINARY, b, n, true);
}

static void fault_rsv(struct raw *r)
{
	uint8_t b[16];
	size_t n = relay_frame_encode(b, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
	raw_frame_b0(r, 0x80 | 0x40 | RL_WSF_OP_BINARY, b, n,
		     false); /* RSV1: permessage-deflate's */
}

static void fault_opcode(struct raw *r)
{
	raw_frame(r, 0x3, true, "x", 1);
}

static void fault_long_ping(struct raw *r)
{
	uint8_t p[126];
	memset(p, 'p', sizeof p);
	raw_frame(r, RL_WSF_OP_PING, true, p, sizeof p);
}

IT_TEST(ws, a_text_message_is_closed_with_1003)
{
	struct rl_test_server s;
	struct calm n;
	WS_STARTS(&s, "--no-presence");
	calm_start(&s, &n);
	violation(&s, fault_text, 1003, "text message");
	calm_end(&n);
	it_stop(&s);
}

IT_TEST(ws, an_unmasked_client_frame_is_closed_with_1002)
{
	struct rl_test_server s;
	struct calm n;
	WS_STARTS(&s, "--no-presence");
	calm_start(&s, &n);
	violation(&s, fault_unmasked, 1002, "unmasked frame");
	calm_end(&n);
	it_stop(&s);
}

IT_TEST(ws, rsv_bits_are_closed_with_1002)
{
	struct rl_test_server s;
	struct calm n;
	WS_STARTS(&s, "--no-presence");
	calm_start(&s, &n);
	violation(&s, fault_rsv, 1002, "RSV1 set");
	calm_end(&n);
	it_stop(&s);
}

IT_TEST(ws, a_reserved_opcode_is_closed_with_1002)
{
	struct rl_test_server s;
	struct calm n;
	WS_STARTS(&s, "--no-presence");
	calm_start(&s, &n);
	violation(&s, fault_opcode, 1002, "opcode 3");
	calm_end(&n);
	it_stop(&s);
}

IT_TEST(ws, a_control_frame_over_125_bytes_is_closed_with_1002)
{
	struct rl_test_server s;
	struct calm n;
	WS_STARTS(&s, "--no-presence");
	calm_start(&s, &n);
	violation(&s, fault_long_ping, 1002, "126-byte ping");
	calm_end(&n);
	it_stop(&s);
}

/* Our close frame unanswered: the server closes after 2 s anyway. */
IT_TEST(ws, a_client_that_never_answers_the_close_is_closed_after_2_s)
{
	struct rl_test_server s;
	WS_STARTS(&s, "--no-presence");
	struct raw *r = raw_open(&s);
	fault_text(r);
	raw_expect_close(r, 1003, "text");
	int64_t t0 = rl_test_now_ms();
	raw_expect_eof(r, 4000, "no close from us");
	int64_t took = rl_test_now_ms() - t0;
	cr_assert(took >= 1500 && took < 3500, "closed %lld ms after its close frame (2 s)",
		  (long long)took);
	raw_close(r);
	it_stop(&s);
}

/* ---- messages ------------------------------------------------------------------------ */

IT_TEST(ws, a_fragmented_message_is_reassembled_with_a_ping_between_fragments)
{
	struct rl_test_server s;
	struct srv_frame *f = malloc(sizeof *f);
	uint8_t b[64];
	WS_STARTS(&s, "--no-presence");
	cr_assert_not_null(f);
	struct raw *r = raw_open(&s);
	static const char hello[] = "{\"userId\":\"in-pieces\"}";
	size_t n = relay_frame_encode(b, RELAY_MSG_HELLO, RELAY_FLAG_JSON, hello, sizeof hello - 1);
	raw_frame(r, RL_WSF_OP_BINARY, false, b, 3); /* not even the length field */
	raw_frame(r, RL_WSF_OP_CONT, false, b + 3, 6);
	raw_frame(r, RL_WSF_OP_PING, true, "between", 7);
	raw_next(r, f, "pong between fragments");
	cr_assert(f->op == RL_WSF_OP_PONG && f->n == 7 && memcmp(f->p, "between", 7) == 0,
		  "want pong \"between\", got opcode %u (%zu bytes)", f->op, f->n);
	raw_frame(r, RL_WSF_OP_CONT, false, NULL, 0); /* an empty fragment */
	raw_frame(r, RL_WSF_OP_CONT, true, b + 9, n - 9);
	const struct srv_frame *ack = raw_expect_relay(r, RELAY_MSG_HELLO, "ack of the pieces");
	cr_assert(memmem(ack->p, ack->n, "\"connectionId\"", 14) != NULL);
	/* Two messages in one write, then a third split across writes. */
	uint8_t two[128];
	size_t m = relay_frame_encode(two, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "a", 1);
	raw_frame(r, RL_WSF_OP_BINARY, true, two, m);
	raw_frame(r, RL_WSF_OP_BINARY, true, two, m);
	raw_expect_relay(r, RELAY_MSG_HEARTBEAT, "first");
	raw_expect_relay(r, RELAY_MSG_HEARTBEAT, "second");
	raw_bye(r, "close");
	raw_close(r);
	free(f);
	it_stop(&s);
}

IT_TEST(ws, ping_gets_a_pong_with_the_same_payload)
{
	struct rl_test_server s;
	struct srv_frame *f = malloc(sizeof *f);
	uint8_t p[125];
	WS_STARTS(&s, "--no-presence");
	cr_assert_not_null(f);
	for (size_t i = 0; i < sizeof p; i++)
		p[i] = (uint8_t)(i * 7 + 1);
	struct raw *r = raw_open(&s);
	raw_frame(r, RL_WSF_OP_PING, true, p, sizeof p);
	raw_next(r, f, "pong");
	cr_assert(f->op == RL_WSF_OP_PONG && f->n == sizeof p && memcmp(f->p, p, sizeof p) == 0,
		  "want a pong of the 125 bytes, got opcode %u (%zu bytes)", f->op, f->n);
	raw_frame(r, RL_WSF_OP_PING, true, NULL, 0);
	raw_next(r, f, "empty pong");
	cr_assert(f->op == RL_WSF_OP_PONG && f->n == 0);
	raw_bye(r, "close");
	raw_close(r);
	free(f);
	it_stop(&s);
}

/* Pongs count as output: a client that pings and never reads fills its
 * queue to the hard limit and is dropped as a slow consumer, like one that
 * never reads its messages. */
IT_TEST(ws, pings_without_reading_the_pongs_make_a_slow_consumer)
{
	struct rl_test_server s;
	struct calm n;
	static uint8_t pings[1000 * (RL_WSF_HDR_MAX + 125)];
	static const uint8_t key[4] = {1, 2, 3, 4};
	uint8_t p[125];
	size_t k = 0;
	WS_STARTS(&s, "--outbound-hard-limit", "256K", "--outbound-high-watermark", "64K",
		  "--outbound-low-watermark", "16K");
	calm_start(&s, &n);
	memset(p, 'p', sizeof p);
	for (int i = 0; i < 1000; i++)
		k += rl_wsf_put_frame(pings + k, RL_WSF_OP_PING, true, p, sizeof p, key);
	struct raw *r = raw_open(&s);
	cr_assert_eq(rl_test_set_rcvbuf(r->tcp, 64 * 1024), 0, "%s", rl_test_err());
	int64_t deadline = rl_test_now_ms() + RL_TEST_BULK_MS;
	while (!rl_test_server_log_has(&s, "slow consumer: ")) {
		cr_assert_lt(rl_test_now_ms(), deadline, "no eviction after pings");
		if (rl_test_send_raw(r->tcp, pings, k, 1000) != 0)
			break; /* relayd stopped reading: it closed */
	}
	/* Read it all: pongs, then the ERROR, then the close frame. */
	static struct srv_frame f;
	for (;;) {
		raw_next(r, &f, "after the flood");
		if (f.op != RL_WSF_OP_PONG)
			break;
	}
	cr_assert(f.op == RL_WSF_OP_BINARY && f.n > 7 && f.p[5] == RELAY_MSG_ERROR &&
		      memmem(f.p, f.n, "SLOW_CONSUMER", 13) != NULL,
		  "want ERROR SLOW_CONSUMER after the pongs, got opcode %u", f.op);
	raw_expect_close(r, 1008, "slow consumer");
	raw_close(r);
	calm_end(&n);
	it_stop(&s);
}

IT_TEST(ws, a_message_over_max_frame_gets_frame_too_large_then_close_1009)
{
	struct rl_test_server s;
	struct calm n;
	static uint8_t big[4 + 300 + 64];
	WS_STARTS(&s, "--max-frame-bytes", "256");
	calm_start(&s, &n);
	/* The length field says 300: refused from the message's first bytes. */
	struct raw *r = raw_open(&s);
	size_t k = relay_frame_encode(big, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, big + 7, 297);
	raw_frame(r, RL_WSF_OP_BINARY, true, big, k);
	raw_expect_error(r, "FRAME_TOO_LARGE", "length field 300");
	raw_expect_close(r, 1009, "length field 300");
	raw_finish(r, "length field 300");
	raw_close(r);
	/* A message longer than 4 + max_frame: refused from the frame header. */
	r = raw_open(&s);
	raw_frame(r, RL_WSF_OP_BINARY, false, big, 200);
	raw_frame(r, RL_WSF_OP_CONT, true, big, 100);
	raw_expect_error(r, "FRAME_TOO_LARGE", "a 300-byte message");
	raw_expect_close(r, 1009, "a 300-byte message");
	raw_finish(r, "a 300-byte message");
	raw_close(r);
	calm_end(&n);
	it_stop(&s);
}

IT_TEST(ws, a_message_whose_size_is_not_4_plus_its_length_field_is_invalid_frame)
{
	struct rl_test_server s;
	struct calm n;
	uint8_t b[64];
	WS_STARTS(&s, "--no-presence");
	calm_start(&s, &n);
	struct raw *r = raw_open(&s);
	size_t k = relay_frame_encode(b, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "ab", 2);
	raw_frame(r, RL_WSF_OP_BINARY, true, b, k + 2); /* two bytes more than the frame */
	raw_expect_error(r, "INVALID_FRAME", "message longer than its frame");
	raw_expect_close(r, 1008, "message longer than its frame");
	raw_finish(r, "INVALID_FRAME");
	raw_close(r);
	/* Shorter than 4 bytes. */
	r = raw_open(&s);
	raw_frame(r, RL_WSF_OP_BINARY, true, b, 3);
	raw_expect_error(r, "INVALID_FRAME", "3-byte message");
	raw_expect_close(r, 1008, "3-byte message");
	raw_finish(r, "3-byte message");
	raw_close(r);
	calm_end(&n);
	it_stop(&s);
}

/* After the upgrade, --frame-timeout applies to a message that started. */
IT_TEST(ws, a_message_left_unfinished_gets_frame_timeout_then_close_1008)
{
	struct rl_test_server s;
	uint8_t b[16];
	WS_STARTS(&s, "--frame-timeout", "0.5");
	struct raw *r = raw_open(&s);
	relay_frame_encode(b, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
	raw_frame(r, RL_WSF_OP_BINARY, false, b, 5);
	int64_t t0 = rl_test_now_ms();
	raw_expect_error(r, "FRAME_TIMEOUT", "fragment left open");
	cr_assert_geq(rl_test_now_ms() - t0, 350, "FRAME_TIMEOUT too early");
	raw_expect_close(r, 1008, "fragment left open");
	raw_finish(r, "FRAME_TIMEOUT");
	raw_close(r);
	it_stop(&s);
}

IT_TEST(ws, the_close_handshake_echoes_the_code_then_closes)
{
	struct rl_test_server s;
	WS_STARTS(&s, "--no-presence");
	struct raw *r = raw_open(&s);
	uint8_t bye[5] = {0x03, 0xe9, 'b', 'y', 'e'}; /* 1001 "bye" */
	raw_frame(r, RL_WSF_OP_CLOSE, true, bye, sizeof bye);
	raw_expect_close(r, 1001, "echo of our close");
	raw_expect_eof(r, RL_TEST_REPLY_MS, "after the close handshake");
	raw_close(r);
	it_stop(&s);
}

IT_TEST(ws, shutdown_sends_server_shutdown_then_close_1001)
{
	struct rl_test_server s;
	WS_STARTS(&s, "--no-presence");
	struct raw *r = raw_open(&s);
	raw_relay(r, RELAY_MSG_HELLO, 0, "");
	raw_expect_relay(r, RELAY_MSG_HELLO, "HELLO");
	cr_assert_eq(rl_test_server_signal(&s, SIGTERM), 0);
	raw_expect_error(r, "SERVER_SHUTDOWN", "SIGTERM");
	raw_expect_close(r, 1001, "SIGTERM");
	raw_finish(r, "SIGTERM");
	raw_close(r);
	cr_assert_eq(rl_test_server_wait(&s, RL_TEST_START_MS), 0);
	rl_test_server_free(&s);
}

/* ---- WebSocket and TCP in one room ----------------------------------------------------- */

IT_TEST(ws, websocket_and_tcp_clients_share_rooms)
{
	struct rl_test_server s;
	WS_STARTS(&s, "--no-presence");
	struct calm n;
	calm_start(&s, &n);
	calm_chat(&n);
	/* A large message both ways (referenced, not copied, when queued). */
	static char big[8192], xs[6001];
	memset(xs, 'x', sizeof xs - 1);
	snprintf(big, sizeof big, "{\"room\":\"calm\",\"content\":\"%s\"}", xs);
	it_send_str(n.ws, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, big);
	const struct rl_test_frame *f = it_expect(n.tcp, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
	cr_assert_gt(f->len, 6000u);
	it_send_str(n.tcp, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, big);
	f = it_expect(n.ws, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
	cr_assert_gt(f->len, 6000u);
	calm_end(&n);
	it_stop(&s);
}

/* ---- --web-root ---------------------------------------------------------------------------- */

struct site {
	char root[128], outside[128];
};

static void site_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static void site_make(struct site *w)
{
	char path[256];
	const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	snprintf(w->root, sizeof w->root, "%s/relayd-web-XXXXXX", tmp);
	snprintf(w->outside, sizeof w->outside, "%s/relayd-outside-XXXXXX", tmp);
	cr_assert_not_null(mkdtemp(w->root));
	cr_assert_not_null(mkdtemp(w->outside));
	site_file(w->root, "index.html", "<!doctype html><title>chat</title>\n");
	site_file(w->root, "app.mjs", "export const x = 1;\n");
	site_file(w->root, ".secret", "hidden\n");
	site_file(w->outside, "secret.txt", "outside\n");
	snprintf(path, sizeof path, "%s/sub", w->root);
	cr_assert_eq(mkdir(path, 0755), 0);
	site_file(path, "a.css", "body{}\n");
	char target[256];
	snprintf(path, sizeof path, "%s/escape.txt", w->root);
	snprintf(target, sizeof target, "%s/secret.txt", w->outside);
	cr_assert_eq(symlink(target, path), 0);
}

static void site_remove(const struct site *w)
{
	static const char *const names[] = {"index.html", "app.mjs",   ".secret",
					    "escape.txt", "sub/a.css", "sub"};
	char path[256];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", w->root, names[i]);
		remove(path);
	}
	snprintf(path, sizeof path, "%s/secret.txt", w->outside);
	remove(path);
	rmdir(w->root);
	rmdir(w->outside);
}

/* GET (or <method>) <path>: the status; the head and body into <out>. */
static unsigned site_get(const struct rl_test_server *s, const char *method, const char *path,
			 char *out, size_t cap)
{
	char req[512];
	struct raw *r = raw_connect(s);
	snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", method, path);
	raw_sends(r, req);
	unsigned st = raw_http_head(r, out, cap);
	size_t h = strlen(out);
	raw_expect_eof(r, RL_TEST_REPLY_MS, path); /* Connection: close after the body */
	cr_assert_lt(h + r->len, cap);
	memcpy(out + h, r->buf, r->len);
	out[h + r->len] = '\0';
	raw_close(r);
	return st;
}

IT_TEST(ws, web_root_serves_files_and_refuses_traversal_and_listings)
{
	struct rl_test_server s;
	struct site w;
	char out[8192];
	site_make(&w);
	WS_STARTS(&s, "--web-root", w.root);
	struct calm n;
	calm_start(&s, &n);
	cr_assert_eq(site_get(&s, "GET", "/", out, sizeof out), 200, "%s", out);
	cr_assert(strstr(out, "Content-Type: text/html; charset=utf-8\r\n") &&
		      strstr(out, "Cache-Control: no-cache\r\n") &&
		      strstr(out, "Content-Length: 35\r\n") &&
		      strstr(out, "\r\n\r\n<!doctype html><title>chat</title>\n"),
		  "%s", out);
	cr_assert_eq(site_get(&s, "GET", "/app.mjs?v=2", out, sizeof out), 200, "%s", out);
	cr_assert(strstr(out, "Content-Type: text/javascript; charset=utf-8\r\n"), "%s", out);
	cr_assert_eq(site_get(&s, "GET", "/sub/a.css", out, sizeof out), 200, "%s", out);
	cr_assert(strstr(out, "Content-Type: text/css; charset=utf-8\r\n"), "%s", out);
	cr_assert_eq(site_get(&s, "HEAD", "/index.html", out, sizeof out), 200, "%s", out);
	cr_assert(strstr(out, "Content-Length: 35\r\n") && strstr(out, "\r\n\r\n")[4] == '\0',
		  "HEAD sends the head only: %s", out);
	/* No traversal: plain, percent-encoded, mixed case, through a symlink. */
	static const char *const escapes[] = {"/../relayd-outside/secret.txt",
					      "/%2e%2e/secret",
					      "/%2E%2e/%2e%2E/etc/passwd",
					      "/sub/../index.html",
					      "/./index.html",
					      "/escape.txt",
					      "/.secret"};
	for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
		unsigned st = site_get(&s, "GET", escapes[i], out, sizeof out);
		cr_assert_eq(st, 403, "%s: %s", escapes[i], out);
		cr_assert(strstr(out, "outside\n") == NULL && strstr(out, "hidden\n") == NULL,
			  "%s leaked: %s", escapes[i], out);
	}
	/* No listing: a directory is refused, its missing index is not found. */
	cr_assert_eq(site_get(&s, "GET", "/sub", out, sizeof out), 403, "%s", out);
	cr_assert_eq(site_get(&s, "GET", "/sub/", out, sizeof out), 404, "%s", out);
	cr_assert(strstr(out, "a.css") == NULL, "a listing: %s", out);
	cr_assert_eq(site_get(&s, "GET", "/nope.html", out, sizeof out), 404, "%s", out);
	cr_assert_eq(site_get(&s, "GET", "/%zz", out, sizeof out), 400, "%s", out);
	cr_assert_eq(site_get(&s, "POST", "/", out, sizeof out), 405, "%s", out);
	/* /relay is still the WebSocket path. */
	struct raw *r = raw_open(&s);
	raw_close(r);
	calm_end(&n);
	it_stop(&s);
	site_remove(&w);
}
