/* client.c -- the harness's protocol client: connect, send frames, receive
 * frames with timeouts (relay_decoder), expectations, JSON field helpers.
 * Threading: a struct rl_test_client belongs to one thread at a time. */
#include "harness.h"
#include "tls_client.h"
#include "ws_client.h"

#include <relay/protocol.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLI_RBUF 65536
#define CLI_DEFAULT_MAX_FRAME (64u << 20)
#define CLI_MASK_MAX 16

struct rl_test_client {
	int fd;
	struct rl_test_tls *tls; /* NULL: plain TCP (tls_client.c) */
	struct rl_test_wsc *ws; /* NULL: plain TCP (ws_client.c) */
	struct relay_decoder dec;
	bool mid_feed;       /* the decoder still holds unconsumed bytes of rbuf */
	uint8_t rbuf[CLI_RBUF];
	uint8_t *fbuf;       /* payload copy of the last frame */
	size_t fcap;
	struct rl_test_frame frame;
	char conn_id[160];
	int worker;
	unsigned long ping_seq;
};

/* <ms>, or the harness's reply timeout for 0. */
static int cli_timeout(int ms)
{
	return ms > 0 ? ms : RL_TEST_REPLY_MS;
}

/* ---- connect / close ------------------------------------------------------ */

/* Binds <fd> to local address <src> (port 0) before it connects. */
static int cli_bind(int fd, int family, const char *src)
{
	struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(src, "0", &hints, &ai);
	if (rc != 0)
		return rl_test_set_err("getaddrinfo %s: %s", src, gai_strerror(rc)), -EINVAL;
	rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
	int e = errno;
	freeaddrinfo(ai);
	if (rc == -1)
		return rl_test_set_err("bind %s: %s", src, strerror(e)), -e;
	return 0;
}

/* Socket options set before the SYN (0: the kernel's default). */
struct cli_opts {
	int rcvbuf, mss;
};

static int cli_set_opts(int fd, const struct cli_opts *o)
{
	if (o->rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(o->rcvbuf)))
		return rl_test_set_err("SO_RCVBUF: %s", strerror(errno)), -errno;
	if (o->mss && setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &o->mss, sizeof(o->mss)))
		return rl_test_set_err("TCP_MAXSEG: %s", strerror(errno)), -errno;
	return 0;
}

static struct rl_test_client *cli_connect_opts(const char *host, uint16_t port, const char *src,
					       const struct cli_opts *o, int timeout_ms)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	int rc = getaddrinfo(host, ps, &hints, &ai);
	if (rc != 0)
		return rl_test_set_err("getaddrinfo %s: %s", host, gai_strerror(rc)), NULL;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		freeaddrinfo(ai);
		return rl_test_set_err("socket: %s", strerror(errno)), NULL;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((src && cli_bind(fd, ai->ai_family, src)) || cli_set_opts(fd, o)) {
		freeaddrinfo(ai);
		close(fd);
		return NULL;
	}
	rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc == -1 && errno == EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (poll(&p, 1, cli_timeout(timeout_ms)) != 1) {
			close(fd);
			return rl_test_set_err("connect %s:%u: timed out", host, port), NULL;
		}
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		rc = err == 0 ? 0 : -1;
		errno = err;
	}
	if (rc == -1) {
		int e = errno;
		close(fd);
		return rl_test_set_err("connect %s:%u: %s", host, port, strerror(e)), NULL;
	}
	struct rl_test_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return rl_test_set_err("out of memory"), NULL;
	}
	c->fd = fd;
	c->worker = -1;
	relay_decoder_init(&c->dec, CLI_DEFAULT_MAX_FRAME);
	return c;
}

static struct rl_test_client *cli_connect(const char *host, uint16_t port, const char *src,
					  int timeout_ms)
{
	return cli_connect_opts(host, port, src, &(struct cli_opts){0}, timeout_ms);
}

struct rl_test_client *rl_test_connect_narrow(const struct rl_test_server *s, int rcvbuf, int mss,
					      int timeout_ms)
{
	return cli_connect_opts(s->host, s->port, NULL, &(struct cli_opts){rcvbuf, mss},
				timeout_ms);
}

struct rl_test_client *rl_test_connect_addr(const char *host, uint16_t port, int timeout_ms)
{
	return cli_connect(host, port, NULL, timeout_ms);
}

struct rl_test_client *rl_test_connect_addr_from(const char *host, uint16_t port, const char *src,
						 int timeout_ms)
{
	return cli_connect(host, port, src, timeout_ms);
}

int rl_test_start_tls(struct rl_test_client *c, int timeout_ms)
{
	if (c->tls != NULL || c->ws != NULL)
		return rl_test_set_err("start_tls: not a plain client"), -EINVAL;
	c->tls = rl_test_tls_open(c->fd, cli_timeout(timeout_ms));
	return c->tls != NULL ? 0 : -EPROTO;
}

/* TLS on top of a connected client: the handshake within <timeout_ms>. */
static struct rl_test_client *cli_tls(struct rl_test_client *c, int timeout_ms)
{
	if (c != NULL && (c->tls = rl_test_tls_open(c->fd, cli_timeout(timeout_ms))) == NULL) {
		rl_test_close(c);
		return NULL;
	}
	return c;
}

bool rl_test_ws(void)
{
	const char *t = getenv("RELAY_TEST_TRANSPORT");
	return t != NULL && (strcmp(t, "ws") == 0 || strcmp(t, "wss") == 0);
}

bool rl_test_wss(void)
{
	const char *t = getenv("RELAY_TEST_TRANSPORT");
	return t != NULL && strcmp(t, "wss") == 0;
}

/* The upgrade on a connected client (over its TLS, if it has one). */
static struct rl_test_client *cli_ws(struct rl_test_client *c, const char *host, uint16_t port,
				     const char *path, const char *origin, int timeout_ms)
{
	if (c != NULL && (c->ws = rl_test_wsc_open(c->fd, c->tls, host, port, path, origin,
						   cli_timeout(timeout_ms))) == NULL) {
		rl_test_close(c);
		return NULL;
	}
	return c;
}

struct rl_test_client *rl_test_connect_ws(const char *host, uint16_t port, const char *path,
					  const char *origin, int timeout_ms)
{
	return cli_ws(rl_test_connect_addr(host, port, timeout_ms), host, port, path, origin,
		      timeout_ms);
}

struct rl_test_client *rl_test_connect_wss(const char *host, uint16_t port, const char *path,
					   const char *origin, int timeout_ms)
{
	return cli_ws(rl_test_connect_tls(host, port, timeout_ms), host, port, path, origin,
		      timeout_ms);
}

struct rl_test_client *rl_test_connect_tls(const char *host, uint16_t port, int timeout_ms)
{
	return cli_tls(rl_test_connect_addr(host, port, timeout_ms), timeout_ms);
}

struct rl_test_client *rl_test_connect_from(const struct rl_test_server *s, const char *src,
					    int timeout_ms)
{
	if (rl_test_ws()) {
		if (s->ws_port == 0)
			return rl_test_set_err(
				   "RELAY_TEST_TRANSPORT=%s but relayd has no WebSocket "
				   "listener",
				   rl_test_wss() ? "wss" : "ws"),
			       NULL;
		struct rl_test_client *c = cli_connect(s->host, s->ws_port, src, timeout_ms);
		if (rl_test_wss())
			c = cli_tls(c, timeout_ms);
		return cli_ws(c, s->host, s->ws_port, NULL, NULL, timeout_ms);
	}
	if (!rl_test_tls())
		return cli_connect(s->host, s->port, src, timeout_ms);
	if (s->tls_port == 0)
		return rl_test_set_err("RELAY_TEST_TRANSPORT=tls but relayd has no TLS listener"), NULL;
	return cli_tls(cli_connect(s->host, s->tls_port, src, timeout_ms), timeout_ms);
}

struct rl_test_client *rl_test_connect(const struct rl_test_server *s, int timeout_ms)
{
	return rl_test_connect_from(s, NULL, timeout_ms);
}

int rl_test_tls_peer_cert(const struct rl_test_client *c, char *serial, size_t scap, char *subject,
			  size_t subcap)
{
	if (c->tls == NULL)
		return rl_test_set_err("not a TLS client"), -EINVAL;
	return rl_test_tls_peer(c->tls, serial, scap, subject, subcap);
}

int rl_test_ws_close_code(const struct rl_test_client *c)
{
	return c->ws != NULL ? rl_test_wsc_close_code(c->ws) : 0;
}

int rl_test_ws_send_wire(struct rl_test_client *c, const void *p, size_t n)
{
	if (c->ws == NULL)
		return rl_test_set_err("not a WebSocket client"), -EINVAL;
	return rl_test_wsc_send_wire(c->ws, p, n, 0);
}

/* The socket calls, through TLS or WebSocket when the client speaks it. */
static ssize_t cli_recv(struct rl_test_client *c, void *b, size_t n)
{
	if (c->ws != NULL)
		return rl_test_wsc_read(c->ws, b, n);
	return c->tls != NULL ? rl_test_tls_read(c->tls, b, n) : read(c->fd, b, n);
}

static ssize_t cli_send(struct rl_test_client *c, const void *p, size_t n)
{
	return c->tls != NULL ? rl_test_tls_write(c->tls, p, n) : send(c->fd, p, n, MSG_NOSIGNAL);
}

/* Input TLS (or the WebSocket client) already holds: poll() on the socket
 * would not show it. */
static bool cli_buffered(struct rl_test_client *c)
{
	if (c->ws != NULL)
		return rl_test_wsc_buffered(c->ws);
	return c->tls != NULL && rl_test_tls_pending(c->tls);
}

ssize_t rl_test_recv_raw(struct rl_test_client *c, void *buf, size_t n, int timeout_ms)
{
	int64_t deadline = rl_test_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - rl_test_now_ms();
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		if (!cli_buffered(c) && (left <= 0 || poll(&p, 1, (int)left) == 0)) {
			errno = ETIMEDOUT;
			return -1;
		}
		ssize_t r = cli_recv(c, buf, n);
		if (r >= 0 || (errno != EAGAIN && errno != EINTR))
			return r;
	}
}

void rl_test_close(struct rl_test_client *c)
{
	if (c == NULL)
		return;
	rl_test_tls_free(c->tls);
	rl_test_wsc_free(c->ws);
	close(c->fd);
	relay_decoder_free(&c->dec);
	free(c->fbuf);
	free(c);
}

int rl_test_fd(const struct rl_test_client *c)
{
	return c->fd;
}

void rl_test_set_max_frame(struct rl_test_client *c, uint32_t max_frame)
{
	c->dec.max_frame = max_frame;
}

int rl_test_set_rcvbuf(struct rl_test_client *c, int bytes)
{
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) == -1)
		return rl_test_set_err("SO_RCVBUF: %s", strerror(errno)), -errno;
	return 0;
}

/* ---- sending ------------------------------------------------------------------ */

int rl_test_send_raw(struct rl_test_client *c, const void *p, size_t n, int timeout_ms)
{
	if (c->ws != NULL) /* one frame per piece of a Relay frame (ws_client.h) */
		return rl_test_wsc_send(c->ws, p, n, cli_timeout(timeout_ms));
	const uint8_t *b = p;
	int64_t deadline = rl_test_now_ms() + cli_timeout(timeout_ms);
	while (n > 0) {
		ssize_t w = cli_send(c, b, n);
		if (w > 0) {
			b += w;
			n -= (size_t)w;
			continue;
		}
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && errno != EAGAIN)
			return rl_test_set_err("send: %s", strerror(errno)), -errno;
		int64_t left = deadline - rl_test_now_ms();
		struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
		if (left <= 0 || poll(&pf, 1, (int)left) == 0)
			return rl_test_set_err(
				   "send: no room in the socket for %d ms (%zu bytes left)",
				   cli_timeout(timeout_ms), n),
			       -ETIMEDOUT;
	}
	return 0;
}

int rl_test_frame_append(uint8_t *buf, size_t cap, size_t *off, uint8_t type, uint8_t flags,
			 const void *payload, size_t len)
{
	if (*off + RELAY_FRAME_HDR_BYTES + len > cap)
		return rl_test_set_err("frame_append: buffer full"), -ENOSPC;
	*off += relay_frame_encode(buf + *off, type, flags, payload, (uint32_t)len);
	return 0;
}

int rl_test_send_frame_v(struct rl_test_client *c, uint8_t version, uint8_t type, uint8_t flags,
			 const void *payload, size_t len)
{
	uint8_t small[4096];
	uint8_t *b = len + RELAY_FRAME_HDR_BYTES <= sizeof(small) ? small
							     : malloc(len + RELAY_FRAME_HDR_BYTES);
	if (b == NULL)
		return rl_test_set_err("out of memory"), -ENOMEM;
	relay_frame_encode(b, type, flags, payload, (uint32_t)len);
	b[4] = version;
	int rc = rl_test_send_raw(c, b, len + RELAY_FRAME_HDR_BYTES, 0);
	if (b != small)
		free(b);
	return rc;
}

int rl_test_send_frame(struct rl_test_client *c, uint8_t type, uint8_t flags, const void *payload,
		       size_t len)
{
	return rl_test_send_frame_v(c, RELAY_PROTOCOL_VERSION, type, flags, payload, len);
}

int rl_test_send_json(struct rl_test_client *c, uint8_t type, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return rl_test_set_err("out of memory"), -ENOMEM;
	int rc = rl_test_send_frame(c, type, RELAY_FLAG_JSON, s, (size_t)n);
	free(s);
	return rc;
}

/* ---- receiving ------------------------------------------------------------------ */

static int cli_keep_frame(struct rl_test_client *c, const struct relay_frame *f)
{
	if (c->fcap < (size_t)f->len + 1) {
		uint8_t *nb = realloc(c->fbuf, (size_t)f->len + 1);
		if (nb == NULL)
			return rl_test_set_err("out of memory"), -1;
		c->fbuf = nb;
		c->fcap = (size_t)f->len + 1;
	}
	if (f->len > 0)
		memcpy(c->fbuf, f->payload, f->len);
	c->fbuf[f->len] = '\0';
	c->frame = (struct rl_test_frame){.version = f->version,
					  .type = f->type,
					  .flags = f->flags,
					  .len = f->len,
					  .payload = c->fbuf};
	return 0;
}

/* 1: a frame is in c->frame; 0: need more bytes; -1: bad frame. */
static int cli_next(struct rl_test_client *c)
{
	if (!c->mid_feed)
		return 0;
	struct relay_frame f;
	enum relay_decode_status st = relay_decoder_next_from_server(&c->dec, &f);
	if (st == RELAY_DECODE_FRAME)
		return cli_keep_frame(c, &f) == 0 ? 1 : -1;
	c->mid_feed = false;
	if (st == RELAY_DECODE_ERROR)
		return rl_test_set_err("server sent a bad frame: %s", relay_err_name(c->dec.err));
	if (st == RELAY_DECODE_NOMEM)
		return rl_test_set_err("out of memory decoding a frame");
	return 0;
}

/* Reads once. 1: bytes fed; 0: timeout; -1: closed/error (err set). */
static int cli_read(struct rl_test_client *c, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - rl_test_now_ms();
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int r = cli_buffered(c) ? 1 : poll(&p, 1, left > 0 ? (int)left : 0);
		if (r == 0)
			return 0;
		if (r < 0 && errno == EINTR)
			continue;
		ssize_t n = cli_recv(c, c->rbuf, sizeof(c->rbuf));
		if (n > 0) {
			relay_decoder_feed(&c->dec, c->rbuf, (size_t)n);
			c->mid_feed = true;
			return 1;
		}
		if (n == 0)
			return rl_test_set_err("connection closed by peer%s",
					       relay_decoder_pending(&c->dec) > 0
						       ? " (inside a partial frame)"
						       : "");
		if (errno == EAGAIN || errno == EINTR)
			continue;
		if (errno == EPROTO && c->ws != NULL)
			return -1; /* rl_test_err says how */
		return rl_test_set_err("read: %s", strerror(errno));
	}
}

int rl_test_poll_frame(struct rl_test_client *c, const struct rl_test_frame **out)
{
	int r = cli_next(c);
	if (r == 0) {
		r = cli_read(c, 0);
		if (r == 1)
			r = cli_next(c);
	}
	if (r == 1)
		*out = &c->frame;
	return r;
}

const struct rl_test_frame *rl_test_recv(struct rl_test_client *c, int timeout_ms)
{
	int64_t deadline = rl_test_now_ms() + cli_timeout(timeout_ms);
	for (;;) {
		int r = cli_next(c);
		if (r == 1)
			return &c->frame;
		if (r < 0)
			return NULL;
		r = cli_read(c, deadline);
		if (r == 0) {
			rl_test_set_err("no frame within %d ms%s", cli_timeout(timeout_ms),
					relay_decoder_pending(&c->dec) > 0 ? " (partial frame held)"
									   : "");
			return NULL;
		}
		if (r < 0)
			return NULL;
	}
}

const char *rl_test_frame_str(const struct rl_test_frame *f)
{
	static _Thread_local char buf[512];
	int n = snprintf(buf, sizeof(buf), "%s(v%u,flags 0x%02x,%u bytes) ",
			 relay_msg_type_name(f->type), f->version, f->flags, f->len);
	for (uint32_t i = 0; i < f->len && n < (int)sizeof(buf) - 8; i++) {
		uint8_t ch = f->payload[i];
		if (ch >= 0x20 && ch < 0x7f)
			buf[n++] = (char)ch;
		else
			n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\\x%02x", ch);
	}
	if (n >= (int)sizeof(buf) - 8)
		snprintf(buf + sizeof(buf) - 8, 8, "...");
	else
		buf[n] = '\0';
	return buf;
}

const struct rl_test_frame *rl_test_expect(struct rl_test_client *c, uint8_t type, int flags,
					   int timeout_ms)
{
	const struct rl_test_frame *f = rl_test_recv(c, timeout_ms);
	if (f == NULL) {
		char e[900];
		snprintf(e, sizeof(e), "%s", rl_test_err());
		rl_test_set_err("expected %s: %s", relay_msg_type_name(type), e);
		return NULL;
	}
	if (f->type != type || (flags >= 0 && f->flags != flags)) {
		rl_test_set_err("expected %s (flags %d), got %s", relay_msg_type_name(type), flags,
				rl_test_frame_str(f));
		return NULL;
	}
	return f;
}

const struct rl_test_frame *rl_test_expect_json(struct rl_test_client *c, uint8_t type,
						const char *json, const char *const *mask,
						int timeout_ms)
{
	const struct rl_test_frame *f = rl_test_expect(c, type, RELAY_FLAG_JSON, timeout_ms);
	if (f == NULL)
		return NULL;
	char got[8192];
	if (rl_test_json_mask(f->payload, f->len, mask, got, sizeof(got)) < 0) {
		rl_test_set_err("expected JSON %s, got invalid %s", json, rl_test_frame_str(f));
		return NULL;
	}
	if (strcmp(got, json) != 0) {
		rl_test_set_err("expected %s %s\n                got %s", relay_msg_type_name(type),
				json, got);
		return NULL;
	}
	return f;
}

const struct rl_test_frame *rl_test_expect_error(struct rl_test_client *c, const char *code,
						 int timeout_ms)
{
	const struct rl_test_frame *f = rl_test_expect(c, RELAY_MSG_ERROR, RELAY_FLAG_JSON, timeout_ms);
	if (f == NULL)
		return NULL;
	char got[64];
	bool fatal;
	const uint8_t *pc, *pm, *pf;
	size_t nc, nm, nf;
	if (rl_test_json_str(f, "code", got, sizeof(got)) < 0 ||
	    rl_test_json_bool(f, "fatal", &fatal) != 0 ||
	    rl_test_json_raw(f, "code", &pc, &nc) != 0 ||
	    rl_test_json_raw(f, "message", &pm, &nm) != 0 ||
	    rl_test_json_raw(f, "fatal", &pf, &nf) != 0 || *pm != '"') {
		rl_test_set_err("ERROR %s: want string code, string message, bool fatal; got %s",
				code, rl_test_frame_str(f));
		return NULL;
	}
	if (strcmp(got, code) != 0) {
		rl_test_set_err("expected ERROR %s, got %s", code, rl_test_frame_str(f));
		return NULL;
	}
	/* Spec key order: code, message, fatal (then "room" where one is involved). */
	if (!(pc < pm && pm < pf)) {
		rl_test_set_err("ERROR %s: keys not in the order code, message, fatal: %s", code,
				rl_test_frame_str(f));
		return NULL;
	}
	bool want = relay_err_is_fatal(relay_err_from_name(code, strlen(code)));
	if (fatal != want) {
		rl_test_set_err("ERROR %s: \"fatal\" should be %s: %s", code,
				want ? "true" : "false", rl_test_frame_str(f));
		return NULL;
	}
	return f;
}

int rl_test_expect_closed(struct rl_test_client *c, bool discard, int timeout_ms)
{
	int64_t deadline = rl_test_now_ms() + cli_timeout(timeout_ms);
	for (;;) {
		int r = cli_next(c);
		if (r == 1 && !discard)
			return rl_test_set_err("expected close, got %s", rl_test_frame_str(&c->frame));
		if (r == 1)
			continue;
		if (r < 0)
			return -1;
		if (!discard && relay_decoder_pending(&c->dec) > 0)
			return rl_test_set_err("expected close, got part of a frame");
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int64_t left = deadline - rl_test_now_ms();
		if (!cli_buffered(c) && (left <= 0 || poll(&p, 1, (int)left) == 0))
			return rl_test_set_err("connection still open after %d ms",
					       cli_timeout(timeout_ms));
		ssize_t n = cli_recv(c, c->rbuf, sizeof(c->rbuf));
		if (n == 0 || (n == -1 && (errno == ECONNRESET || errno == EPIPE)))
			return 0;
		if (n == -1 && errno == EPROTO && c->ws != NULL)
			return -1;
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n == -1)
			return rl_test_set_err("read: %s", strerror(errno));
		relay_decoder_feed(&c->dec, c->rbuf, (size_t)n);
		c->mid_feed = true;
	}
}

int rl_test_expect_fatal(struct rl_test_client *c, const char *code, int timeout_ms)
{
	if (rl_test_expect_error(c, code, timeout_ms) == NULL)
		return -1;
	return rl_test_expect_closed(c, false, timeout_ms);
}

int rl_test_expect_silence(struct rl_test_client *c, int ms)
{
	int r = cli_next(c);
	if (r == 1)
		return rl_test_set_err("expected silence, got %s", rl_test_frame_str(&c->frame));
	if (r < 0)
		return -1;
	r = cli_read(c, rl_test_now_ms() + ms);
	if (r == 0)
		return 0;
	if (r < 0)
		return -1;
	r = cli_next(c);
	if (r == 1)
		return rl_test_set_err("expected silence, got %s", rl_test_frame_str(&c->frame));
	return rl_test_set_err("expected silence, got bytes");
}

static int cli_ping(struct rl_test_client *c, int timeout_ms, bool skip, size_t *skipped)
{
	char p[64];
	int n = snprintf(p, sizeof(p), "ping-%lu-%p", ++c->ping_seq, (void *)c);
	if (rl_test_send_frame(c, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, p, (size_t)n) != 0)
		return -1;
	int64_t deadline = rl_test_now_ms() + cli_timeout(timeout_ms);
	for (;;) {
		int64_t left = deadline - rl_test_now_ms();
		const struct rl_test_frame *f = rl_test_recv(c, left > 0 ? (int)left : 1);
		if (f == NULL) {
			char e[900];
			snprintf(e, sizeof(e), "%s", rl_test_err());
			return rl_test_set_err("HEARTBEAT echo: %s", e);
		}
		if (f->type == RELAY_MSG_HEARTBEAT && f->flags == RELAY_FLAG_BINARY &&
		    f->len == (uint32_t)n && memcmp(f->payload, p, (size_t)n) == 0)
			return 0;
		if (!skip)
			return rl_test_set_err("expected HEARTBEAT echo of %s, got %s", p,
					       rl_test_frame_str(f));
		if (skipped != NULL)
			(*skipped)++;
	}
}

int rl_test_ping(struct rl_test_client *c, int timeout_ms)
{
	return cli_ping(c, timeout_ms, false, NULL);
}

int rl_test_sync_skip(struct rl_test_client *c, int timeout_ms, size_t *skipped)
{
	return cli_ping(c, timeout_ms, true, skipped);
}

/* ---- protocol conveniences ---------------------------------------------------- */

const struct rl_test_frame *rl_test_hello(struct rl_test_client *c, const char *json,
					  int timeout_ms)
{
	int rc = json == NULL ? rl_test_send_frame(c, RELAY_MSG_HELLO, 0, NULL, 0)
			      : rl_test_send_frame(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON, json,
						   strlen(json));
	if (rc != 0)
		return NULL;
	const struct rl_test_frame *f = rl_test_expect(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON, timeout_ms);
	if (f == NULL)
		return NULL;
	char status[32];
	if (rl_test_json_str(f, "status", status, sizeof(status)) < 0 ||
	    strcmp(status, "connected") != 0 ||
	    rl_test_json_str(f, "connectionId", c->conn_id, sizeof(c->conn_id)) <= 0) {
		rl_test_set_err("bad HELLO ack: %s", rl_test_frame_str(f));
		return NULL;
	}
	int64_t w;
	c->worker = rl_test_json_i64(f, "worker", &w) == 0 ? (int)w : -1;
	return f;
}

const char *rl_test_conn_id(const struct rl_test_client *c)
{
	return c->conn_id;
}

int rl_test_worker(const struct rl_test_client *c)
{
	return c->worker;
}

static int cli_room_ack(struct rl_test_client *c, uint8_t type, const char *room,
			const char *status, long *members, int timeout_ms)
{
	if (rl_test_send_json(c, type, "{\"room\":\"%s\"}", room) != 0)
		return -1;
	const struct rl_test_frame *f = rl_test_expect(c, type, RELAY_FLAG_JSON, timeout_ms);
	if (f == NULL)
		return -1;
	char st[32], rm[256];
	int64_t m = 0;
	if (rl_test_json_str(f, "status", st, sizeof(st)) < 0 || strcmp(st, status) != 0 ||
	    rl_test_json_str(f, "room", rm, sizeof(rm)) < 0 || strcmp(rm, room) != 0 ||
	    (members != NULL && rl_test_json_i64(f, "members", &m) != 0))
		return rl_test_set_err("bad %s ack for %s: %s", relay_msg_type_name(type), room,
				       rl_test_frame_str(f));
	if (members != NULL)
		*members = (long)m;
	return 0;
}

int rl_test_join(struct rl_test_client *c, const char *room, long *members, int timeout_ms)
{
	return cli_room_ack(c, RELAY_MSG_JOIN_ROOM, room, "joined", members, timeout_ms);
}

int rl_test_leave(struct rl_test_client *c, const char *room, int timeout_ms)
{
	return cli_room_ack(c, RELAY_MSG_LEAVE_ROOM, room, "left", NULL, timeout_ms);
}

/* ---- JSON ---------------------------------------------------------------------- */

static int cli_field(const uint8_t *p, size_t n, const char *key, struct relay_json_field *fld)
{
	memset(fld, 0, sizeof(*fld));
	fld->key = key;
	if (relay_json_parse(p, n, fld, 1, NULL) != 0 || fld->kind == RELAY_JSON_NONE)
		return -1;
	return 0;
}

long rl_test_json_str(const struct rl_test_frame *f, const char *key, char *out, size_t cap)
{
	struct relay_json_field fld;
	if (cli_field(f->payload, f->len, key, &fld) != 0 || fld.kind != RELAY_JSON_STRING)
		return -1;
	long n = relay_json_string_decode(fld.raw, (uint8_t *)out, cap);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	out[n] = '\0';
	return n;
}

int rl_test_json_i64(const struct rl_test_frame *f, const char *key, int64_t *out)
{
	struct relay_json_field fld;
	if (cli_field(f->payload, f->len, key, &fld) != 0 || fld.kind != RELAY_JSON_NUMBER)
		return -1;
	char tmp[32];
	if (fld.raw.n == 0 || fld.raw.n >= sizeof(tmp))
		return -1;
	memcpy(tmp, fld.raw.p, fld.raw.n);
	tmp[fld.raw.n] = '\0';
	char *end;
	errno = 0;
	long long v = strtoll(tmp, &end, 10);
	if (*end != '\0' || errno != 0)
		return -1;
	*out = v;
	return 0;
}

int rl_test_json_bool(const struct rl_test_frame *f, const char *key, bool *out)
{
	struct relay_json_field fld;
	if (cli_field(f->payload, f->len, key, &fld) != 0)
		return -1;
	if (fld.kind != RELAY_JSON_TRUE && fld.kind != RELAY_JSON_FALSE)
		return -1;
	*out = fld.kind == RELAY_JSON_TRUE;
	return 0;
}

int rl_test_json_raw(const struct rl_test_frame *f, const char *key, const uint8_t **p,
		     size_t *n)
{
	struct relay_json_field fld;
	if (cli_field(f->payload, f->len, key, &fld) != 0)
		return -1;
	*p = fld.raw.p;
	*n = fld.raw.n;
	return 0;
}

long rl_test_json_mask(const uint8_t *p, size_t n, const char *const *mask, char *out,
		       size_t cap)
{
	struct relay_json_field fld[CLI_MASK_MAX];
	size_t nf = 0;
	memset(fld, 0, sizeof(fld));
	for (; mask != NULL && mask[nf] != NULL && nf < CLI_MASK_MAX; nf++)
		fld[nf].key = mask[nf];
	if (relay_json_parse(p, n, fld, nf, NULL) != 0)
		return -1;
	size_t o = 0, i = 0;
	while (i < n) {
		const struct relay_json_field *hit = NULL;
		for (size_t k = 0; k < nf; k++)
			if (fld[k].kind != RELAY_JSON_NONE && fld[k].raw.p == p + i)
				hit = &fld[k];
		if (o + 1 >= cap)
			return -1;
		out[o++] = hit != NULL ? '*' : (char)p[i];
		i += hit != NULL ? hit->raw.n : 1;
	}
	out[o] = '\0';
	return (long)o;
}

int rl_test_loopback_listener(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return rl_test_set_err("socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 || listen(fd, 4) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) == -1) {
		rl_test_set_err("loopback listener: %s", strerror(errno));
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}
