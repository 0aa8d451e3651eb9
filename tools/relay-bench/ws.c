/* ws.c -- relay-bench's WebSocket client mode (--transport ws): the upgrade
 * request and its 101 (net/http.c's client helpers), every Relay frame sent
 * as one masked binary message (built in place in the output buffer: the
 * header is sized from the frame's exact length first), and server frames
 * unwrapped (net/wsframe.c, client role) into the Relay byte stream.
 * Threading: a connection's state belongs to its owner thread; the Host
 * value is set once before the threads start. */
#include "bench.h"

#include "net/http.h"
#include "net/wsframe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct rb_ws {
	struct rl_wsf_dec dec; /* server frames */
	char key[RL_HTTP_WS_KEY_LEN + 1];
	bool up;	 /* the 101 came */
	uint32_t rng;	 /* masking keys */
	uint8_t mask[4]; /* of the frame being written */
	uint8_t hlen;	 /* its header size */
};

static char ws_host[300]; /* "host:port", set before the threads start */

void rb_ws_enable(const char *host, int port)
{
	snprintf(ws_host, sizeof ws_host, "%s:%d", host, port);
}

bool rb_ws_enabled(void)
{
	return ws_host[0] != '\0';
}

int rb_ws_start(struct bconn *c)
{
	uint8_t nonce[16], req[RL_HTTP_RESPONSE_MAX];
	struct rb_ws *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return -1;
	if (getrandom(nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce ||
	    getrandom(&w->rng, sizeof w->rng, 0) != (ssize_t)sizeof w->rng)
		memset(nonce, (int)c->id, sizeof nonce);
	w->rng |= 1; /* xorshift32 must not start at 0 */
	rl_http_ws_key(nonce, w->key);
	rl_wsf_dec_init(&w->dec, RL_WSF_CLIENT, (uint64_t)1 << 32);
	size_t n = rl_http_write_upgrade(req, sizeof req, ws_host, RL_HTTP_WS_PATH, w->key, NULL);
	rb_out_append(c, req, n);
	c->ws = w;
	return 0;
}

void rb_ws_free(struct bconn *c)
{
	free(c->ws);
	c->ws = NULL;
}

bool rb_ws_up(const struct bconn *c)
{
	return c->ws != NULL && c->ws->up;
}

uint8_t *rb_ws_begin(struct bconn *c, size_t flen)
{
	struct rb_ws *w = c->ws;
	uint32_t x = w->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	w->rng = x;
	memcpy(w->mask, &x, sizeof w->mask);
	w->hlen = (uint8_t)(rl_wsf_binary_hdr_len(flen) + sizeof w->mask);
	uint8_t *p = rb_out_reserve(c, w->hlen + flen);
	uint8_t h[RL_WSF_HDR_MAX];
	rl_wsf_put_hdr(h, RL_WSF_OP_BINARY, true, flen, w->mask);
	memcpy(p, h, w->hlen);
	return p + w->hlen;
}

void rb_ws_end(struct bconn *c, uint8_t *frame, size_t flen)
{
	rl_wsf_mask(frame, flen, c->ws->mask, 0);
	rb_out_commit(c, c->ws->hlen + flen);
}

/* A control frame of ours (pong), masked. */
static void ws_control(struct bconn *c, uint8_t op, const uint8_t *p, size_t n)
{
	uint8_t f[RL_WSF_HDR_MAX + RL_WSF_CONTROL_MAX];
	static const uint8_t key[4] = {0x5a, 0xa5, 0x3c, 0xc3};
	rb_out_append(c, f, rl_wsf_put_frame(f, op, true, p, n, key));
}

/* The common case first, without the general decoder: whole unfragmented
 * binary frames with a 2- or 4-byte header, one after another from a frame
 * boundary. Their payloads are packed at the front (*<out> bytes); returns
 * the bytes of <b> used. The decoder takes over at the first frame that is
 * anything else or not whole. */
static size_t ws_whole_frames(const struct rl_wsf_dec *d, uint8_t *b, size_t n, size_t *out)
{
	size_t i = 0;

	if (rl_wsf_dec_in_message(d))
		return 0;
	while (n - i >= 2 && b[i] == (0x80 | RL_WSF_OP_BINARY) && b[i + 1] <= 126) {
		size_t h = 2, len = b[i + 1];
		if (len == 126) {
			if (n - i < 4)
				break;
			h = 4;
			len = (size_t)b[i + 2] << 8 | b[i + 3];
		}
		if (n - i - h < len)
			break;
		memmove(b + *out, b + i + h, len);
		*out += len;
		i += h + len;
	}
	return i;
}

int rb_ws_input(struct bconn *c, const uint8_t *p, size_t n, rb_ws_bytes_fn *bytes, rb_ws_up_fn *up)
{
	struct rb_ws *w = c->ws;
	size_t off = 0;

	if (!w->up) {
		struct rl_http_answer a;
		enum rl_http_parse_status st = rl_http_parse_answer(&a, p, n, w->key);
		if (st == RL_HTTP_NEED_MORE)
			return 0; /* the engine keeps the bytes for the next read */
		if (st == RL_HTTP_REFUSED) {
			char what[128];
			int k = snprintf(what, sizeof what, "upgrade refused: %u (%s)", a.status,
					 a.why);
			rb_on_error(c, what, (size_t)k);
			return -1;
		}
		w->up = true;
		off = a.head_len;
		up(c);
	}
	/* The engine's read buffer is its own scratch: the payloads are packed
	 * at its front in place (as relayd does) and the Relay decoder gets
	 * them in one feed per read, not one per message. */
	uint8_t *buf = (uint8_t *)(uintptr_t)(p + off);
	size_t out = 0, i = ws_whole_frames(&w->dec, buf, n - off, &out);
	rl_wsf_dec_feed(&w->dec, buf + i, n - off - i);
	for (;;) {
		struct rl_wsf_event ev;
		enum rl_wsf_status st = rl_wsf_dec_next(&w->dec, &ev);
		if (st == RL_WSF_NEED_MORE)
			return out > 0 && bytes(c, buf, out) < 0 ? -1 : (int)n;
		if (st == RL_WSF_DATA) {
			memmove(buf + out, ev.p, ev.n);
			out += ev.n;
			continue;
		}
		if (st == RL_WSF_CONTROL && ev.opcode == RL_WSF_OP_PING) {
			ws_control(c, RL_WSF_OP_PONG, ev.p, ev.n);
			continue;
		}
		if (st == RL_WSF_CONTROL && ev.opcode == RL_WSF_OP_PONG)
			continue;
		const char *why = st == RL_WSF_ERROR ? rl_wsf_err_name(w->dec.err) : "close frame";
		rb_on_error(c, why, strlen(why));
		return -1;
	}
}
