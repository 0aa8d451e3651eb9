/* ws.c -- the WebSocket transport (RFC 6455; protocol-v1-ext.md §1, §7): a
 * layer over an inner byte transport, which it calls through that
 * transport's own table: plain TCP (rl_ws_transport, ws://) or TLS
 * (rl_wss_transport, wss://; net/tls.c), one row each in ws_inners[].
 *
 * A connection goes through these phases:
 *   UPGRADE   the HTTP request is read (net/http.c parses it), within
 *             --frame-timeout of accept (the frame timer, armed at accept;
 *             over TLS the handshake and the request share it).
 *             Nothing of Relay may be written yet: a Relay ERROR queued in
 *             this phase (the deadline passed, shutdown) ends the
 *             connection in writev instead.
 *   ANSWERED  an HTTP answer is queued (a refusal, 503 for a connection
 *             over --max-connections, or a --web-root file): flushed, then
 *             the connection closes.
 *   OPEN      after 101: every binary message carries one Relay frame.
 *             read() hands the connection's Relay decoder the messages that
 *             passed the spec's length checks (rl_wsf_relay_check), packed
 *             together in place in the read buffer; ping -> pong; text, bad
 *             frames -> a close frame only (1003 / 1002).
 *   CLOSING   our close frame is queued (a violation, the peer's close, or
 *             the fatal_error hook after a Relay ERROR): once it is
 *             flushed the connection waits, reading, for the peer's close
 *             frame, at most the 2 s CLOSING deadline.
 *
 * Output is not framed here: the queue already holds WebSocket frames
 * (RL_CF_WS; net/msg.h builds a message's header once for every member),
 * so writev passes bytes to the inner transport unchanged.
 *
 * The inner transport keeps its own state in c->tp_ctx like any transport;
 * while one of its functions runs, c->tp_ctx is its state, otherwise ours.
 *
 * Threading: a connection's calls run on its owner worker. The settings
 * (origin list, web root, limits) are set by rl_ws_init before the workers
 * start and only read afterwards. */
#include "net/ws.h"

#include "net/conn.h"
#include "net/http.h"
#include "net/transport.h"
#include "net/webroot.h"
#include "net/wsframe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Wire bytes one read() may consume without a Relay byte to show for them
 * (control frames, parts of a long message) before the connection yields
 * to the others until the next turn: the per-turn read budget of conn.c. */
#define WS_WIRE_BUDGET (2 * RL_SCRATCH_BYTES)
#define WS_CONTROL_FRAME (RL_WSF_HDR_MAX + RL_WSF_CONTROL_MAX)

enum ws_phase { WS_UPGRADE = 0, WS_ANSWERED, WS_OPEN, WS_CLOSING, WS_NPHASES };

/* What a read saw that must wait until the Relay bytes before it were
 * handled: acted on by the next read (has_pending says there is one). */
enum ws_pending {
	WS_PEND_NONE = 0,
	WS_PEND_VIOLATION,  /* a close frame with <pend_code> only */
	WS_PEND_RELAY,	    /* a fatal Relay ERROR <pend_err>, then the close frame */
	WS_PEND_PEER_CLOSE, /* the peer's close frame: answer it, then close */
	WS_PEND_NOMEM,	    /* a message could not be reassembled: close */
	WS_NPENDS
};

/* The upgrade request, once it took more than one read. Sized by what
 * arrived (from WS_HEAD_MIN, doubling up to RL_HTTP_MAX_HEAD), so a client
 * that trickles a request holds about what it sent; parsed again from its
 * start whenever it moves (the parser's spans point into it). */
#define WS_HEAD_MIN 512u
struct ws_head {
	struct rl_http_req req;
	size_t len, cap;
	uint8_t bytes[]; /* <cap> of them */
};

struct ws_conn {
	const struct rl_transport *inner;
	void *inner_ctx;    /* the inner transport's c->tp_ctx */
	uint8_t phase;	    /* enum ws_phase */
	uint8_t pend;	    /* enum ws_pending */
	uint8_t pend_err;   /* WS_PEND_RELAY: enum relay_err */
	bool peer_closed;   /* the peer's close frame arrived */
	bool inner_full;    /* the last inner read filled the buffer: more may wait */
	uint16_t pend_code; /* VIOLATION: our close code; PEER_CLOSE: the peer's */
	uint32_t held_len;
	uint8_t *held;	      /* bytes read but not decoded yet (behind a long message) */
	struct ws_head *head; /* UPGRADE, when the request took more than one read */
	const uint8_t *out_p; /* the rest of a long message not handed out yet */
	size_t out_len;
	struct rl_wsf_asm reasm;
	struct rl_wsf_dec dec;
};

static const struct rl_transport *ws_inner_of(const struct rl_transport *tp);

/* Set by rl_ws_init before the workers start; read-only afterwards. */
static struct {
	struct rl_http_origins origins;
	struct rl_webroot root; /* dirfd -1: no --web-root */
	uint64_t max_msg;	/* 4 + max_frame: the largest message reassembled */
	uint32_t max_frame;
} ws_cfg = {.root = {.dirfd = -1}};

/* ---- settings ------------------------------------------------------------ */

int rl_ws_init(const struct rl_config *cfg, char *err, size_t errlen)
{
	const char *why = NULL;
	int rc = rl_http_origins_parse(&ws_cfg.origins, cfg->ws_origins, &why);

	if (rc) {
		snprintf(err, errlen, "--ws-allowed-origins: %s",
			 why != NULL ? why : strerror(-rc));
		return rc;
	}
	ws_cfg.max_frame = (uint32_t)cfg->max_frame;
	ws_cfg.max_msg = RELAY_FRAME_LEN_BYTES + cfg->max_frame;
	if (cfg->web_root[0] && (rc = rl_webroot_init(&ws_cfg.root, cfg->web_root, err, errlen))) {
		rl_http_origins_free(&ws_cfg.origins);
		return rc;
	}
	return 0;
}

void rl_ws_fini(void)
{
	rl_http_origins_free(&ws_cfg.origins);
	rl_webroot_fini(&ws_cfg.root);
}

bool rl_ws_serves_files(void)
{
	return ws_cfg.root.dirfd >= 0;
}

/* ---- the inner transport, seeing its own state ------------------------------ */

static ssize_t ws_inner_read(struct rl_conn *c, struct ws_conn *ws, void *buf, size_t len)
{
	c->tp_ctx = ws->inner_ctx;
	ssize_t n = ws->inner->read(c, buf, len);
	ws->inner_ctx = c->tp_ctx;
	c->tp_ctx = ws;
	return n;
}

static ssize_t ws_inner_writev(struct rl_conn *c, struct ws_conn *ws, const struct iovec *iov,
			       int iovcnt)
{
	c->tp_ctx = ws->inner_ctx;
	ssize_t n = ws->inner->writev(c, iov, iovcnt);
	ws->inner_ctx = c->tp_ctx;
	c->tp_ctx = ws;
	return n;
}

/* ---- output helpers ---------------------------------------------------------- */

/* Queues our close frame; from here on the connection waits for the peer's. */
static void ws_send_close(struct rl_conn *c, struct ws_conn *ws, uint16_t code, const char *why)
{
	uint8_t f[WS_CONTROL_FRAME];
	size_t n = rl_wsf_put_close(f, code, why, why != NULL ? strlen(why) : 0, NULL);

	RL_DEBUGF(c->id, "ws: close %u%s%s", (unsigned)code, why != NULL ? " " : "",
		  why != NULL ? why : "");
	rl_conn_send_wire(c, f, n);
	ws->phase = WS_CLOSING;
}

static void ws_send_http_error(struct rl_conn *c, unsigned status, const char *why)
{
	uint8_t out[RL_HTTP_RESPONSE_MAX];
	size_t n = rl_http_write_error(out, sizeof out, status, why);

	if (n == 0)
		n = rl_http_write_error(out, sizeof out, status, NULL);
	rl_conn_send_wire(c, out, n);
}

/* ---- the upgrade ----------------------------------------------------------------- */

static bool ws_span_is(struct relay_span s, const char *lit)
{
	return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* A --web-root file for GET (HEAD: its head only). Queues the answer and
 * returns 200, or returns the error status to answer with. */
static unsigned ws_serve_file(struct rl_conn *c, const struct rl_http_req *r, const char **why)
{
	bool head = ws_span_is(r->method, "HEAD");
	struct rl_webfile f;
	char hdr[RL_WEBROOT_HEAD_MAX];
	uint8_t tmp[16384];

	if (!head && !ws_span_is(r->method, "GET"))
		return *why = "only GET and HEAD", 405;
	unsigned st = rl_webroot_open(&ws_cfg.root, r->path, &f, why);
	if (st != 200)
		return st;
	int rc = rl_conn_send_wire(c, hdr, rl_webroot_head(hdr, sizeof hdr, &f));
	for (uint64_t left = head ? 0 : f.size; rc == 0 && left > 0;) {
		ssize_t k = read(f.fd, tmp, left < sizeof tmp ? (size_t)left : sizeof tmp);
		if (k <= 0) { /* shorter than it was a moment ago: the answer is broken */
			rc = -EIO;
			break;
		}
		rc = rl_conn_send_wire(c, tmp, (size_t)k);
		left -= (uint64_t)k;
	}
	close(f.fd);
	if (rc) {
		RL_DEBUGF(c->id, "ws: cannot send %.*s: %s", (int)r->path.n,
			  (const char *)r->path.p, strerror(-rc));
		rl_conn_kill(c);
	}
	return 200;
}

/* The answer to a complete (or refused) request: 101, an error, a file. */
static unsigned ws_decide(struct rl_conn *c, struct rl_http_req *r, const char **why)
{
	if (r->status != 0) {
		*why = r->why;
		return r->status;
	}
	if (c->flags & RL_CF_REFUSED) {
		*why = "server full";
		return 503;
	}
	if (ws_cfg.root.dirfd >= 0 && !ws_span_is(r->path, RL_HTTP_WS_PATH))
		return ws_serve_file(c, r, why);
	unsigned st = rl_http_ws_route(r, &ws_cfg.origins);
	*why = r->why;
	return st;
}

/* 101: written at once through the inner transport, ahead of anything
 * queued (nothing is: no Relay byte was accepted before). A fresh socket
 * always takes these ~150 bytes; one that does not is broken. */
static int ws_write_101(struct rl_conn *c, struct ws_conn *ws, const struct rl_http_req *r)
{
	uint8_t out[RL_HTTP_RESPONSE_MAX];
	struct iovec iov = {.iov_base = out, .iov_len = rl_http_write_101(out, sizeof out, r)};
	ssize_t n = ws_inner_writev(c, ws, &iov, 1);

	if (n == (ssize_t)iov.iov_len)
		return 0;
	RL_DEBUGF(c->id, "ws: cannot write the 101 at once (%zd)", n);
	return n < 0 ? (int)n : -EIO;
}

static void ws_open(struct rl_conn *c, struct ws_conn *ws, const struct rl_http_req *r)
{
	ws->phase = WS_OPEN;
	c->flags |= RL_CF_WS;
	rl_conn_deadline_done(c);
	rl_wsf_dec_init(&ws->dec, RL_WSF_SERVER, ws_cfg.max_msg);
	RL_DEBUGF(c->id, "ws: upgraded%s", r->protocol_relay ? " (" RL_HTTP_WS_PROTOCOL ")" : "");
}

static ssize_t ws_open_read(struct rl_conn *c, struct ws_conn *ws, uint8_t *buf, size_t len,
			    size_t have);

/* The request in <base>/<have> is complete or refused: answer it. On 101
 * the bytes after the head are WebSocket frames, decoded now. */
static ssize_t ws_answer(struct rl_conn *c, struct ws_conn *ws, struct rl_http_req *r,
			 const uint8_t *base, size_t have, uint8_t *buf, size_t len)
{
	const char *why = NULL;
	unsigned st = ws_decide(c, r, &why);

	RL_DEBUGF(c->id, "ws: %.*s %.*s -> %u%s%s", (int)r->method.n, (const char *)r->method.p,
		  (int)r->path.n, (const char *)r->path.p, st, why != NULL ? " " : "",
		  why != NULL ? why : "");
	if (st == 101) {
		size_t rest = have - r->head_len;
		int rc = ws_write_101(c, ws, r);
		if (rc == 0)
			ws_open(c, ws, r);
		memmove(buf, base + r->head_len, rest); /* <base> is <buf> or the head */
		free(ws->head);
		ws->head = NULL;
		return rc ? rc : ws_open_read(c, ws, buf, len, rest);
	}
	if (st != 200)
		ws_send_http_error(c, st, why);
	free(ws->head);
	ws->head = NULL;
	ws->phase = WS_ANSWERED;
	rl_conn_close_after_flush(c);
	return -EAGAIN;
}

/* Keeps the <n> bytes of an incomplete request at <b> (the read buffer, or
 * the head that got full) in a head with room for at least as many again,
 * parsed again from its start. */
static int ws_head_keep(struct ws_conn *ws, const uint8_t *b, size_t n)
{
	size_t cap = WS_HEAD_MIN;
	while (cap < 2 * n && cap < RL_HTTP_MAX_HEAD)
		cap *= 2;
	struct ws_head *h = malloc(sizeof(*h) + cap);
	if (h == NULL)
		return -ENOMEM;
	memcpy(h->bytes, b, n);
	h->len = n;
	h->cap = cap;
	rl_http_req_init(&h->req);
	rl_http_parse(&h->req, h->bytes, n); /* NEED_MORE, as before */
	free(ws->head);
	ws->head = h;
	return 0;
}

static ssize_t ws_upgrade_read(struct rl_conn *c, struct ws_conn *ws, uint8_t *buf, size_t len)
{
	for (;;) {
		struct rl_http_req first; /* while the request lies in <buf> */
		struct rl_http_req *r = &first;
		uint8_t *base = buf;
		size_t have = 0, room = len;
		if (ws->head != NULL && ws->head->len == ws->head->cap &&
		    ws_head_keep(ws, ws->head->bytes, ws->head->len))
			return -ENOMEM; /* full: twice the room (the limit refused at 16 KiB) */
		if (ws->head != NULL) {
			r = &ws->head->req;
			base = ws->head->bytes;
			have = ws->head->len;
			room = ws->head->cap - have;
		} else {
			rl_http_req_init(&first);
		}
		ssize_t n = ws_inner_read(c, ws, base + have, room);
		if (n <= 0)
			return n;
		rl_conn_touch(c);
		have += (size_t)n;
		if (rl_http_parse(r, base, have) != RL_HTTP_NEED_MORE)
			return ws_answer(c, ws, r, base, have, buf, len);
		if (ws->head != NULL)
			ws->head->len = have;
		else if (ws_head_keep(ws, base, have))
			return -ENOMEM;
	}
}

/* ---- reading frames ---------------------------------------------------------------- */

/* The frame timer after a read that gave the Relay decoder nothing: it
 * runs from the first byte of a message still arriving. */
static void ws_frame_timer(struct rl_conn *c, struct ws_conn *ws)
{
	if (!rl_wsf_dec_in_message(&ws->dec))
		rl_conn_deadline_done(c);
	else if (!rl_timer_armed(&c->frame))
		rl_conn_deadline_arm(c);
}

/* A control frame. Returns true when input must stop (the peer's close). */
static bool ws_control(struct rl_conn *c, struct ws_conn *ws, const struct rl_wsf_event *ev)
{
	uint8_t f[WS_CONTROL_FRAME];

	switch (ev->opcode) {
	case RL_WSF_OP_PING:
		rl_conn_send_wire(c, f, rl_wsf_put_pong(f, ev->p, ev->n, NULL));
		rl_conn_check_output(c); /* pings without reading: a slow consumer */
		return !rl_conn_can_send(c);
	case RL_WSF_OP_CLOSE:
		ws->peer_closed = true;
		ws->pend = WS_PEND_PEER_CLOSE;
		ws->pend_code = ev->close_code;
		return true;
	default: /* pong: nothing asked for it */
		return false;
	}
}

/* Decoding stops before the end of the read (a bad message, our eviction):
 * the input behind is kept aside, so that the lingering read that waits for
 * the peer's close frame decodes from the right place. */
static void ws_keep_rest(struct ws_conn *ws)
{
	const uint8_t *p;
	size_t n = rl_wsf_dec_rest(&ws->dec, &p);

	if (n == 0 || ws->held != NULL || (ws->held = malloc(n)) == NULL)
		return; /* without it the linger ends at the next garbage: a close */
	memcpy(ws->held, p, n);
	ws->held_len = (uint32_t)n;
}

/* A whole message from the reassembler did not fit in front of the input
 * not decoded yet: that input is kept aside, and the message goes out in
 * <buf>-sized parts (the Relay decoder collects them). */
static size_t ws_overflow(struct ws_conn *ws, uint8_t *buf, size_t n, size_t used, size_t out,
			  size_t cap, struct relay_span msg)
{
	if (n > used) {
		ws->held = malloc(n - used);
		if (ws->held == NULL) {
			ws->pend = WS_PEND_NOMEM;
			return out;
		}
		memcpy(ws->held, buf + used, n - used);
		ws->held_len = (uint32_t)(n - used);
	}
	size_t k = msg.n < cap - out ? msg.n : cap - out;
	memcpy(buf + out, msg.p, k);
	ws->out_p = msg.p + k;
	ws->out_len = msg.n - k;
	if (ws->out_len == 0)
		rl_wsf_asm_reset(&ws->reasm);
	return out + k;
}

/* Decodes the <n> wire bytes at <buf> in place: the Relay frames of whole
 * binary messages are packed at the front of <buf>; returns their size. A
 * violation, a close or a bad message stops decoding and is left pending
 * (acted on by the next read, after the Relay bytes before it). */
static size_t ws_decode(struct rl_conn *c, struct ws_conn *ws, uint8_t *buf, size_t n, size_t cap)
{
	size_t out = 0;
	struct rl_wsf_event ev;
	struct relay_span msg;

	rl_wsf_dec_feed(&ws->dec, buf, n);
	for (;;) {
		enum rl_wsf_status st = rl_wsf_dec_next(&ws->dec, &ev);
		if (st == RL_WSF_NEED_MORE)
			return out;
		if (st == RL_WSF_ERROR) {
			enum rl_wsf_err e = ws->dec.err;
			ws->pend_err = (uint8_t)rl_wsf_err_relay(e);
			ws->pend =
			    ws->pend_err != RELAY_ERR_NONE ? WS_PEND_RELAY : WS_PEND_VIOLATION;
			ws->pend_code = rl_wsf_err_close_code(e);
			RL_DEBUGF(c->id, "ws: %s", rl_wsf_err_name(e));
			return out;
		}
		if (st == RL_WSF_CONTROL) {
			if (!ws_control(c, ws, &ev))
				continue;
			if (!ws->peer_closed) /* evicted: it closes, waiting for the peer's close */
				ws_keep_rest(ws);
			return out;
		}
		int r = rl_wsf_asm_add(&ws->reasm, &ev, &msg);
		if (r == 0)
			continue;
		if (r < 0) {
			ws->pend = WS_PEND_NOMEM;
			return out;
		}
		enum relay_err e = rl_wsf_relay_check(msg.p, msg.n, ws_cfg.max_frame);
		if (e != RELAY_ERR_NONE) {
			ws->pend = WS_PEND_RELAY;
			ws->pend_err = (uint8_t)e;
			ws_keep_rest(ws);
			return out;
		}
		size_t used = (size_t)(ev.p + ev.n - buf); /* input decoded so far */
		if (ev.first && ev.fin) { /* the message lies in <buf>, after <out> */
			memmove(buf + out, msg.p, msg.n);
			out += msg.n;
		} else if (msg.n <= used - out) {
			memcpy(buf + out, msg.p, msg.n);
			out += msg.n;
			rl_wsf_asm_reset(&ws->reasm);
		} else {
			return ws_overflow(ws, buf, n, used, out, cap, msg);
		}
	}
}

/* The next input to decode: kept-aside bytes first, else none (0). */
static size_t ws_take_held(struct ws_conn *ws, uint8_t *buf)
{
	size_t n = ws->held_len;

	if (n == 0)
		return 0;
	memcpy(buf, ws->held, n);
	free(ws->held);
	ws->held = NULL;
	ws->held_len = 0;
	return n;
}

static ssize_t ws_take_out(struct ws_conn *ws, uint8_t *buf, size_t len)
{
	size_t k = ws->out_len < len ? ws->out_len : len;

	memcpy(buf, ws->out_p, k);
	ws->out_p += k;
	ws->out_len -= k;
	if (ws->out_len == 0)
		rl_wsf_asm_reset(&ws->reasm);
	return (ssize_t)k;
}

/* Acts on what a read left pending. Returns what read() returns then. */
static ssize_t ws_run_pending(struct rl_conn *c, struct ws_conn *ws)
{
	enum ws_pending p = ws->pend;

	ws->pend = WS_PEND_NONE;
	switch (p) {
	case WS_PEND_RELAY: /* ERROR, then fatal_error queues the close frame */
		rl_conn_error(c, (enum relay_err)ws->pend_err, NULL, 0, NULL);
		return -EAGAIN;
	case WS_PEND_VIOLATION:
		ws_send_close(c, ws, ws->pend_code, NULL);
		rl_conn_close_after_flush(c);
		return -EAGAIN;
	case WS_PEND_PEER_CLOSE: /* echo its code (RFC 6455 §5.5.1) */
		ws_send_close(c, ws, ws->pend_code == RL_WSF_CLOSE_NO_STATUS ? 0 : ws->pend_code,
			      NULL);
		rl_conn_close_after_flush(c);
		return -EAGAIN;
	case WS_PEND_NOMEM:
		RL_WARNF(c->id,
			 "out of memory reassembling a WebSocket message: connection closed");
		return -ENOMEM;
	default:
		return -EAGAIN;
	}
}

/* OPEN: Relay bytes of whole messages, decoded from <have> bytes already in
 * <buf> and then from the inner transport, until there are some, the inner
 * transport has nothing more (-EAGAIN), or this read spent its budget. */
static ssize_t ws_open_read(struct rl_conn *c, struct ws_conn *ws, uint8_t *buf, size_t len,
			    size_t have)
{
	size_t wire = 0;

	if (ws->out_len > 0)
		return ws_take_out(ws, buf, len);
	if (ws->pend != WS_PEND_NONE)
		return ws_run_pending(c, ws);
	for (;;) {
		size_t n = have != 0 ? have : ws_take_held(ws, buf);
		have = 0;
		if (n == 0) {
			if (wire >= WS_WIRE_BUDGET) {
				ws_frame_timer(c, ws);
				rl_conn_read_later(c);
				return -EAGAIN;
			}
			ssize_t r = ws_inner_read(c, ws, buf, len);
			ws->inner_full = r == (ssize_t)len;
			if (r <= 0) {
				if (r == -EAGAIN)
					ws_frame_timer(c, ws);
				return r;
			}
			rl_conn_touch(c);
			wire += (size_t)r;
			n = (size_t)r;
		}
		size_t out = ws_decode(c, ws, buf, n, len);
		if (!rl_conn_can_send(c))
			return -EAGAIN; /* closing already: its pongs made it a slow consumer */
		if (out > 0)
			return (ssize_t)out;
		if (ws->pend != WS_PEND_NONE)
			return ws_run_pending(c, ws);
	}
}

/* CLOSING (our close frame is out or queued; conn.c reads only to linger):
 * input is discarded until the peer's close frame, which reads as EOF. */
static ssize_t ws_closing_read(struct rl_conn *c, struct ws_conn *ws, uint8_t *buf, size_t len)
{
	struct rl_wsf_event ev;
	enum rl_wsf_status st;
	size_t n = ws_take_held(ws, buf);

	if (n == 0) {
		ssize_t r = ws_inner_read(c, ws, buf, len);
		if (r <= 0 || ws->peer_closed)
			return r;
		n = (size_t)r;
	}
	if (ws->peer_closed)
		return (ssize_t)n;
	rl_wsf_dec_feed(&ws->dec, buf, n);
	while ((st = rl_wsf_dec_next(&ws->dec, &ev)) == RL_WSF_DATA || st == RL_WSF_CONTROL) {
		if (st == RL_WSF_CONTROL && ev.opcode == RL_WSF_OP_CLOSE) {
			ws->peer_closed = true;
			RL_DEBUGF(c->id, "ws: the peer's close %u", (unsigned)ev.close_code);
			return 0;
		}
	}
	return st == RL_WSF_ERROR ? 0 : (ssize_t)n; /* garbage: nothing more to wait for */
}

/* ---- the transport table ------------------------------------------------------------- */

static int ws_accept(struct rl_conn *c)
{
	struct ws_conn *ws = calloc(1, sizeof(*ws));

	if (ws == NULL)
		return -ENOMEM; /* c->tp_ctx NULL: ws_close closes through the inner table */
	ws->inner = ws_inner_of(c->tp);
	int rc = ws->inner->accept(c); /* sets the inner c->tp_ctx, if any */
	ws->inner_ctx = c->tp_ctx;
	c->tp_ctx = ws;
	if (rc)
		return rc;
	c->flags |= RL_CF_TP_REFUSES; /* over max-connections: 503 to the request */
	rl_conn_deadline_arm(c);      /* the request within --frame-timeout of accept */
	return 0;
}

static ssize_t ws_read(struct rl_conn *c, void *buf, size_t len)
{
	struct ws_conn *ws = c->tp_ctx;

	switch (ws->phase) {
	case WS_UPGRADE:
		return ws_upgrade_read(c, ws, buf, len);
	case WS_OPEN:
		return ws_open_read(c, ws, buf, len, 0);
	case WS_CLOSING:
		return ws_closing_read(c, ws, buf, len);
	default: /* ANSWERED: lingering, the input is discarded */
		return ws_inner_read(c, ws, buf, len);
	}
}

static ssize_t ws_writev(struct rl_conn *c, const struct iovec *iov, int iovcnt)
{
	struct ws_conn *ws = c->tp_ctx;

	if (ws->phase == WS_UPGRADE) {
		/* A Relay ERROR before any answer (the upgrade deadline passed,
		 * shutdown): no such byte can go before a 101, so the connection
		 * ends here. */
		RL_DEBUGF(c->id, "ws: closed before the upgrade completed");
		return -ECONNABORTED;
	}
	return ws_inner_writev(c, ws, iov, iovcnt);
}

/* While our close frame waits for the peer's, the TCP connection stays
 * whole: the peer's close frame (or the 2 s deadline) ends it, then the
 * close sends the FIN (RFC 6455 §7.1.1: the server closes TCP first). */
static int ws_shutdown_wr(struct rl_conn *c)
{
	struct ws_conn *ws = c->tp_ctx;

	if (ws->phase == WS_CLOSING && !ws->peer_closed)
		return 0;
	c->tp_ctx = ws->inner_ctx;
	int rc = ws->inner->shutdown_wr(c);
	c->tp_ctx = ws;
	return rc;
}

/* What the inner transport holds counts; so does a full last read (the
 * kernel may hold more, but read() may have returned fewer bytes than it
 * consumed) and anything kept here. */
static bool ws_has_pending(const struct rl_conn *cc)
{
	struct rl_conn *c = (struct rl_conn *)cc; /* the swap below, restored at once */
	struct ws_conn *ws = c->tp_ctx;

	if (ws->out_len > 0 || ws->held_len > 0 || ws->pend != WS_PEND_NONE || ws->inner_full)
		return true;
	c->tp_ctx = ws->inner_ctx;
	bool p = ws->inner->has_pending(c);
	c->tp_ctx = ws;
	return p;
}

/* The peer's close frame counts as in flight while we wait for it, so a
 * closing connection lingers for it (conn.c, conn_closing_done). */
static int ws_pending_input(struct rl_conn *c)
{
	struct ws_conn *ws = c->tp_ctx;

	c->tp_ctx = ws->inner_ctx;
	int n = ws->inner->pending_input(c);
	c->tp_ctx = ws;
	if (n < 0)
		return n;
	return n + (int)ws->held_len + (ws->phase == WS_CLOSING && !ws->peer_closed);
}

/* Our bytes not acknowledged yet: the inner transport's (kernel send
 * queue, a held TLS record). What the WebSocket layer queues goes through
 * the connection's queue, which conn.c has already flushed when it asks. */
static int ws_pending_output(struct rl_conn *c)
{
	struct ws_conn *ws = c->tp_ctx;

	if (ws == NULL)
		return ws_inner_of(c->tp)->pending_output(c);
	c->tp_ctx = ws->inner_ctx;
	int n = ws->inner->pending_output(c);
	c->tp_ctx = ws;
	return n;
}

static bool ws_in_message(const struct rl_conn *c)
{
	const struct ws_conn *ws = c->tp_ctx;

	return ws->phase == WS_OPEN && (rl_wsf_dec_in_message(&ws->dec) || ws->out_len > 0);
}

/* After a fatal Relay ERROR: the close frame, 1001 for SERVER_SHUTDOWN,
 * 1009 for FRAME_TOO_LARGE, 1008 otherwise (its reason: the error's name). */
static void ws_fatal_error(struct rl_conn *c, enum relay_err why)
{
	struct ws_conn *ws = c->tp_ctx;

	if (ws->phase == WS_OPEN)
		ws_send_close(c, ws, rl_wsf_close_code_for(why), relay_err_name(why));
}

static void ws_close(struct rl_conn *c)
{
	struct ws_conn *ws = c->tp_ctx;

	if (ws == NULL) {
		ws_inner_of(c->tp)->close(c);
		return;
	}
	c->tp_ctx = ws->inner_ctx;
	ws->inner->close(c);
	c->tp_ctx = NULL;
	free(ws->head);
	free(ws->held);
	rl_wsf_asm_reset(&ws->reasm);
	free(ws);
}

/* The flush deadline passed: no close frame handshake, the inner transport
 * resets the connection (conn.c, RL_CF_ABORT). */
static void ws_abort(struct rl_conn *c)
{
	struct ws_conn *ws = c->tp_ctx;

	if (ws == NULL) {
		ws_inner_of(c->tp)->abort(c);
		return;
	}
	c->tp_ctx = ws->inner_ctx;
	ws->inner->abort(c);
	c->tp_ctx = NULL;
	free(ws->head);
	free(ws->held);
	rl_wsf_asm_reset(&ws->reasm);
	free(ws);
}

/* Every hook of struct rl_transport, each forwarding to the inner table
 * where it concerns the socket: a hook added to the table later (a reset
 * instead of a close, say) must be forwarded here the same way, with the
 * inner state swapped in as ws_close does. */
#define WS_TRANSPORT(name_)                                                                        \
	{                                                                                          \
		.name = (name_), .accept = ws_accept, .read = ws_read, .writev = ws_writev,        \
		.shutdown_wr = ws_shutdown_wr, .has_pending = ws_has_pending,                      \
		.pending_input = ws_pending_input, .pending_output = ws_pending_output,             \
		.close = ws_close, .abort = ws_abort,                                                \
		.in_message = ws_in_message, .fatal_error = ws_fatal_error,                        \
	}

/* ws:// over plain TCP. */
const struct rl_transport rl_ws_transport = WS_TRANSPORT("ws");
/* wss:// over TLS (--ws-tls): net/tls.c's handshake comes first, and the
 * frame timer it arms at accept runs on until the 101 (tls.c leaves it to
 * the outermost transport). */
const struct rl_transport rl_wss_transport = WS_TRANSPORT("wss");

/* Each WebSocket table and the transport it runs over. */
static const struct {
	const struct rl_transport *ws, *inner;
} ws_inners[] = {
    {&rl_ws_transport, &rl_tcp_transport},
    {&rl_wss_transport, &rl_tls_transport},
};

static const struct rl_transport *ws_inner_of(const struct rl_transport *tp)
{
	for (size_t i = 0; i < sizeof ws_inners / sizeof ws_inners[0]; i++)
		if (ws_inners[i].ws == tp)
			return ws_inners[i].inner;
	abort(); /* a WebSocket table without its row above */
}
