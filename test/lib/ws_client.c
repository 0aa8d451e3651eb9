/* ws_client.c -- the harness's WebSocket client: the upgrade (net/http.c's
 * client helpers), masked frames out, server frames in (net/wsframe.c in
 * the client role), checked against protocol-v1-ext.md §1; over a plain
 * socket (ws://) or over the harness's TLS (wss://, tls_client.c).
 * Threading: see ws_client.h. */
#include "ws_client.h"

#include "harness.h"
#include "net/http.h"
#include "tls_client.h"
#include "net/wsframe.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define WSC_HEAD_MAX 16384

struct rl_test_wsc {
	int fd;
	struct rl_test_tls *tls; /* wss://: the bytes go through it; NULL: ws:// */
	pthread_mutex_t wlock; /* one frame at a time on the socket */
	/* receiving (the owner) */
	struct rl_wsf_dec dec;
	uint64_t msg_have;   /* bytes of the current binary message so far */
	uint8_t msg_len4[4]; /* its first 4: the Relay length field */
	bool closing;	     /* the server's close frame arrived (and was answered) */
	int close_code;
	uint8_t *pre; /* bytes that came behind the 101, not decoded yet */
	size_t pre_len;
	/* sending (one sender at a time) */
	bool in_msg;	 /* a binary message is open: the Relay frame is incomplete */
	uint8_t len4[4]; /* length field of the Relay frame being sent */
	unsigned len4_have;
	uint64_t frame_sent; /* its bytes sent so far */
};

/* ---- the byte stream: the socket, or TLS on it -------------------------------- */

/* Like recv/send on the non-blocking socket: > 0, 0 at EOF (read), or -1
 * with errno (EAGAIN: poll, then again -- for send, with the same bytes). */
static ssize_t wsc_recv(struct rl_test_wsc *w, void *buf, size_t n)
{
	return w->tls != NULL ? rl_test_tls_read(w->tls, buf, n) : read(w->fd, buf, n);
}

static ssize_t wsc_send(struct rl_test_wsc *w, const void *p, size_t n)
{
	return w->tls != NULL ? rl_test_tls_write(w->tls, p, n) : send(w->fd, p, n, MSG_NOSIGNAL);
}

bool rl_test_wsc_buffered(struct rl_test_wsc *w)
{
	return w->pre != NULL || (w->tls != NULL && rl_test_tls_pending(w->tls));
}

/* ---- writing ---------------------------------------------------------------- */

static int wsc_write_all(struct rl_test_wsc *w, const uint8_t *b, size_t n, int timeout_ms)
{
	int64_t deadline = rl_test_now_ms() + (timeout_ms > 0 ? timeout_ms : RL_TEST_REPLY_MS);
	while (n > 0) {
		ssize_t k = wsc_send(w, b, n);
		if (k > 0) {
			b += k;
			n -= (size_t)k;
			continue;
		}
		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1 && errno != EAGAIN)
			return rl_test_set_err("send: %s", strerror(errno)), -errno;
		int64_t left = deadline - rl_test_now_ms();
		struct pollfd pf = {.fd = w->fd, .events = POLLOUT};
		if (left <= 0 || poll(&pf, 1, (int)left) == 0)
			return rl_test_set_err("send: no room in the socket (%zu bytes left)", n),
			       -ETIMEDOUT;
	}
	return 0;
}

int rl_test_wsc_send_wire(struct rl_test_wsc *w, const void *p, size_t n, int timeout_ms)
{
	pthread_mutex_lock(&w->wlock);
	int rc = wsc_write_all(w, p, n, timeout_ms);
	pthread_mutex_unlock(&w->wlock);
	return rc;
}

static void wsc_key(uint8_t key[4])
{
	if (getrandom(key, 4, 0) != 4)
		memcpy(key, "\x12\x34\x56\x78", 4);
}

/* Bytes of the next piece of the Relay frame being sent that <p>/<n> holds,
 * and whether that piece completes it (its length field, once all 4 bytes
 * of it were seen, tells where it ends). */
static size_t wsc_piece(struct rl_test_wsc *w, const uint8_t *p, size_t n, bool *fin)
{
	size_t i = 0;
	while (w->len4_have < 4 && i < n)
		w->len4[w->len4_have++] = p[i++];
	*fin = false;
	if (w->len4_have < 4)
		return n;
	uint64_t total = 4 + ((uint64_t)w->len4[0] << 24 | (uint64_t)w->len4[1] << 16 |
			      (uint64_t)w->len4[2] << 8 | w->len4[3]);
	uint64_t left = total - w->frame_sent;
	if (left <= n) {
		*fin = true;
		return (size_t)left;
	}
	return n;
}

int rl_test_wsc_send(struct rl_test_wsc *w, const void *p, size_t n, int timeout_ms)
{
	const uint8_t *b = p;
	/* Every Relay frame is at least 4 bytes: at most n/4 + 2 pieces. */
	size_t cap = n + RL_WSF_HDR_MAX * (n / 4 + 2);
	uint8_t *out = malloc(cap), key[4];
	size_t o = 0;

	if (out == NULL)
		return rl_test_set_err("out of memory"), -ENOMEM;
	while (n > 0) {
		bool fin;
		size_t k = wsc_piece(w, b, n, &fin);
		wsc_key(key);
		o += rl_wsf_put_frame(out + o, w->in_msg ? RL_WSF_OP_CONT : RL_WSF_OP_BINARY, fin,
				      b, k, key);
		w->in_msg = !fin;
		w->frame_sent = fin ? 0 : w->frame_sent + k;
		if (fin)
			w->len4_have = 0;
		b += k;
		n -= k;
	}
	int rc = rl_test_wsc_send_wire(w, out, o, timeout_ms);
	free(out);
	return rc;
}

/* A control frame of ours (close, pong), masked. */
static void wsc_control(struct rl_test_wsc *w, uint8_t op, const uint8_t *p, size_t n)
{
	uint8_t f[RL_WSF_HDR_MAX + RL_WSF_CONTROL_MAX], key[4];
	wsc_key(key);
	size_t k = rl_wsf_put_frame(f, op, true, p, n, key);
	rl_test_wsc_send_wire(w, f, k, 0);
}

/* ---- reading ------------------------------------------------------------------- */

static ssize_t wsc_fail(const char *what)
{
	rl_test_set_err("WebSocket: the server %s", what);
	errno = EPROTO;
	return -1;
}

/* A piece of a binary message: the checks of protocol-v1-ext.md §1 (one
 * unfragmented binary message per Relay frame, and exactly one). */
static const char *wsc_data(struct rl_test_wsc *w, const struct rl_wsf_event *ev)
{
	if (ev->first)
		w->msg_have = 0;
	if (ev->left == 0 && !ev->fin)
		return "fragmented a message";
	for (size_t i = 0; i < ev->n && w->msg_have + i < 4; i++)
		w->msg_len4[w->msg_have + i] = ev->p[i];
	w->msg_have += ev->n;
	if (!ev->fin)
		return NULL;
	uint64_t want = 4 + ((uint64_t)w->msg_len4[0] << 24 | (uint64_t)w->msg_len4[1] << 16 |
			     (uint64_t)w->msg_len4[2] << 8 | w->msg_len4[3]);
	if (w->msg_have < 4 || w->msg_have != want)
		return "sent a binary message that is not exactly one Relay frame";
	return NULL;
}

ssize_t rl_test_wsc_read(struct rl_test_wsc *w, void *vbuf, size_t cap)
{
	uint8_t *buf = vbuf;
	size_t n, out = 0;

	if (w->closing) { /* after the close frame: only the TCP close may come */
		ssize_t r = wsc_recv(w, buf, cap);
		return r > 0 ? wsc_fail("sent bytes after its close frame") : r;
	}
	if (w->pre != NULL) {
		n = w->pre_len < cap ? w->pre_len : cap;
		memcpy(buf, w->pre, n);
		free(w->pre);
		w->pre = NULL;
	} else {
		ssize_t r = wsc_recv(w, buf, cap);
		if (r <= 0)
			return r;
		n = (size_t)r;
	}
	rl_wsf_dec_feed(&w->dec, buf, n);
	for (;;) {
		struct rl_wsf_event ev;
		enum rl_wsf_status st = rl_wsf_dec_next(&w->dec, &ev);
		if (st == RL_WSF_NEED_MORE)
			break;
		if (st == RL_WSF_ERROR) {
			char what[96];
			snprintf(what, sizeof what, "sent a bad frame (%s)",
				 rl_wsf_err_name(w->dec.err));
			return wsc_fail(what);
		}
		if (st == RL_WSF_DATA) {
			const char *bad = wsc_data(w, &ev);
			if (bad != NULL)
				return wsc_fail(bad);
			memmove(buf + out, ev.p, ev.n);
			out += ev.n;
			continue;
		}
		if (ev.opcode == RL_WSF_OP_PING) {
			wsc_control(w, RL_WSF_OP_PONG, ev.p, ev.n);
		} else if (ev.opcode == RL_WSF_OP_CLOSE) {
			uint8_t echo[2] = {(uint8_t)(ev.close_code >> 8), (uint8_t)ev.close_code};
			w->close_code = ev.close_code;
			w->closing = true;
			wsc_control(w, RL_WSF_OP_CLOSE, echo,
				    ev.close_code == RL_WSF_CLOSE_NO_STATUS ? 0 : 2);
			if (rl_wsf_dec_next(&w->dec, &ev) != RL_WSF_NEED_MORE)
				return wsc_fail("sent bytes after its close frame");
			break;
		}
	}
	if (out > 0)
		return (ssize_t)out;
	errno = EAGAIN; /* nothing whole yet (or the close: its TCP close comes next) */
	return -1;
}

int rl_test_wsc_close_code(const struct rl_test_wsc *w)
{
	return w->close_code;
}

/* ---- the upgrade ---------------------------------------------------------------------- */

static struct rl_test_wsc *wsc_new(int fd, struct rl_test_tls *tls)
{
	struct rl_test_wsc *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return rl_test_set_err("out of memory"), NULL;
	w->fd = fd;
	w->tls = tls;
	pthread_mutex_init(&w->wlock, NULL);
	rl_wsf_dec_init(&w->dec, RL_WSF_CLIENT, (uint64_t)1 << 32);
	return w;
}

void rl_test_wsc_free(struct rl_test_wsc *w)
{
	if (w == NULL)
		return;
	pthread_mutex_destroy(&w->wlock);
	free(w->pre);
	free(w);
}

/* Reads the answer to the upgrade into <head> until it is complete. */
static int wsc_answer(struct rl_test_wsc *w, const char *key, uint8_t *head, int64_t deadline)
{
	size_t len = 0;
	struct rl_http_answer a;
	for (;;) {
		int64_t left = deadline - rl_test_now_ms();
		struct pollfd p = {.fd = w->fd, .events = POLLIN};
		if (!rl_test_wsc_buffered(w) && (left <= 0 || poll(&p, 1, (int)left) == 0))
			return rl_test_set_err("no answer to the WebSocket upgrade"), -ETIMEDOUT;
		ssize_t r = wsc_recv(w, head + len, WSC_HEAD_MAX - len);
		if (r == 0)
			return rl_test_set_err("closed instead of answering the upgrade"), -EPIPE;
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r < 0)
			return rl_test_set_err("read: %s", strerror(errno)), -errno;
		len += (size_t)r;
		enum rl_http_parse_status st = rl_http_parse_answer(&a, head, len, key);
		if (st == RL_HTTP_NEED_MORE)
			continue;
		if (st == RL_HTTP_REFUSED) {
			const uint8_t *eol = memchr(head, '\r', len);
			return rl_test_set_err("upgrade refused (%s): %.*s", a.why,
					       (int)(eol != NULL ? eol - head : 0),
					       (const char *)head),
			       -ECONNREFUSED;
		}
		if (len > a.head_len) {
			w->pre_len = len - a.head_len;
			w->pre = malloc(w->pre_len);
			if (w->pre == NULL)
				return rl_test_set_err("out of memory"), -ENOMEM;
			memcpy(w->pre, head + a.head_len, w->pre_len);
		}
		return 0;
	}
}

struct rl_test_wsc *rl_test_wsc_open(int fd, struct rl_test_tls *tls, const char *host,
				     uint16_t port, const char *path, const char *origin,
				     int timeout_ms)
{
	int64_t deadline = rl_test_now_ms() + (timeout_ms > 0 ? timeout_ms : RL_TEST_REPLY_MS);
	uint8_t nonce[16], req[1024];
	char key[RL_HTTP_WS_KEY_LEN + 1], hostport[128];
	struct rl_test_wsc *w = wsc_new(fd, tls);

	if (w == NULL)
		return NULL;
	if (getrandom(nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce)
		memset(nonce, 0x5a, sizeof nonce);
	rl_http_ws_key(nonce, key);
	snprintf(hostport, sizeof hostport, "%s:%u", host, port);
	size_t n = rl_http_write_upgrade(req, sizeof req, hostport, path != NULL ? path : "/relay",
					 key, origin);
	uint8_t *head = malloc(WSC_HEAD_MAX);
	int rc = head == NULL ? (rl_test_set_err("out of memory"), -ENOMEM)
		 : n == 0     ? (rl_test_set_err("upgrade request too long"), -EINVAL)
			      : wsc_write_all(w, req, n, (int)(deadline - rl_test_now_ms()));
	if (rc == 0)
		rc = wsc_answer(w, key, head, deadline);
	free(head);
	if (rc != 0) {
		rl_test_wsc_free(w);
		return NULL;
	}
	return w;
}
