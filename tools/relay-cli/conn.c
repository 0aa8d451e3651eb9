/* conn.c -- relay-cli's connection to relayd: name lookup and connect with a
 * deadline, TLS (OpenSSL) when asked, frame writes, the receive pump
 * (protocol library decoder), and request/reply pairing (one request in
 * flight at a time).
 *
 * Threading: main thread only. getaddrinfo_a runs the lookup on a glibc
 * helper thread so that an unreachable resolver cannot hang the CLI; the
 * request it works on is static because that thread may outlive a timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "net/http.h"
#include "net/wsframe.h"

/* The client accepts frames up to this size whatever the server announces:
 * the server never sends more than its own max_frame, which may be raised. */
#define CONN_RX_MAX_FRAME (64u * 1024 * 1024)

/* What a request of each frame type is answered with. */
static const enum rl_cli_ev conn_reply_kind[RELAY_MSG_NTYPES] = {
    [RELAY_MSG_HELLO] = RL_CLI_EV_HELLO,
    [RELAY_MSG_JOIN_ROOM] = RL_CLI_EV_JOINED,
    [RELAY_MSG_LEAVE_ROOM] = RL_CLI_EV_LEFT,
    [RELAY_MSG_HEARTBEAT] = RL_CLI_EV_HEARTBEAT,
};

/* ---- name lookup and connect ------------------------------------------- */

/* Resolves within <deadline>. 0 and *<out>, or -errno with c->why set. */
static int conn_resolve(struct rl_cli_conn *c, const char *host, const char *port, int64_t deadline,
			struct addrinfo **out)
{
	static struct addrinfo hints;
	static struct gaicb req;
	struct gaicb *list[1] = {&req};
	int rc;

	hints = (struct addrinfo){.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	req = (struct gaicb){.ar_name = host, .ar_service = port, .ar_request = &hints};
	rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	while (rc == 0 && (rc = gai_error(&req)) == EAI_INPROGRESS) {
		int left = rl_cli_left_ms(deadline);
		struct timespec ts = {left / 1000, (left % 1000) * 1000000L};

		if (gai_suspend((const struct gaicb *const *)list, 1, &ts) == EAI_AGAIN &&
		    rl_cli_left_ms(deadline) == 0) {
			gai_cancel(&req);
			snprintf(c->why, sizeof c->why, "cannot resolve host '%s': timed out",
				 host);
			return -ETIMEDOUT;
		}
		rc = 0;
	}
	if (rc != 0) {
		snprintf(c->why, sizeof c->why, "cannot resolve host '%s': %s", host,
			 gai_strerror(rc));
		return -ENOENT;
	}
	*out = req.ar_result;
	return 0;
}

/* One connect attempt, non-blocking, bounded by <deadline>. fd or -errno. */
static int conn_connect_one(const struct addrinfo *ai, int64_t deadline)
{
	struct pollfd p;
	int fd, n, err = 0;
	socklen_t len = sizeof err;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd == -1)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		err = errno;
		goto fail;
	}
	p = (struct pollfd){.fd = fd, .events = POLLOUT};
	do
		n = poll(&p, 1, rl_cli_left_ms(deadline));
	while (n == -1 && errno == EINTR);
	if (n == 0)
		err = ETIMEDOUT;
	else if (n == -1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == 0)
		return fd;
fail:
	close(fd);
	return -err;
}

/* ---- TLS ------------------------------------------------------------------ */

/* One line of why the last OpenSSL call failed; empties its error queue. */
static const char *conn_tls_why(struct rl_cli_conn *c, int e)
{
	static char buf[256];
	long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
	unsigned long err = ERR_peek_last_error();

	if (v != X509_V_OK)
		snprintf(buf, sizeof buf, "certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
	else if (err)
		snprintf(buf, sizeof buf, "%s", ERR_reason_error_string(err));
	else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
		snprintf(buf, sizeof buf, "connection closed by the server");
	else
		snprintf(buf, sizeof buf, "TLS error %d", e);
	ERR_clear_error();
	return buf;
}

static int conn_tls_ctx(struct rl_cli_conn *c, const struct rl_cli_tls *tls)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		snprintf(c->why, sizeof c->why, "TLS: %s", conn_tls_why(c, 0));
		return -ENOMEM;
	}
	c->ssl_ctx = ctx;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (tls->insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return 0;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (tls->ca ? SSL_CTX_load_verify_locations(ctx, tls->ca, NULL) != 1
		    : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(c->why, sizeof c->why, "--tls-ca %s: %s", tls->ca ? tls->ca : "(system)",
			 conn_tls_why(c, 0));
		return -EINVAL;
	}
	return 0;
}

/* The TLS handshake on the connected socket, bounded by <deadline>: the
 * server's certificate must chain to a trusted CA and name <host> (as a
 * DNS name or an IP address), unless --tls-insecure. */
static int conn_tls_open(struct rl_cli_conn *c, const char *host, const struct rl_cli_tls *tls,
			 int64_t deadline)
{
	unsigned char ip[16];
	bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
	int rc = conn_tls_ctx(c, tls);

	if (rc)
		return rc;
	c->ssl = SSL_new(c->ssl_ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(c->why, sizeof c->why, "TLS: %s", conn_tls_why(c, 0));
		return -ENOMEM;
	}
	if (!is_ip)
		SSL_set_tlsext_host_name(c->ssl, host); /* SNI */
	if (!tls->insecure && !(is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host)
				      : SSL_set1_host(c->ssl, host))) {
		snprintf(c->why, sizeof c->why, "TLS: cannot check the name '%s'", host);
		return -EINVAL;
	}
	SSL_set_connect_state(c->ssl);
	for (;;) {
		int r, e, n;
		struct pollfd p = {.fd = c->fd};

		ERR_clear_error();
		r = SSL_do_handshake(c->ssl);
		if (r == 1)
			return 0;
		e = SSL_get_error(c->ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			snprintf(c->why, sizeof c->why, "TLS handshake with %s failed: %s", host,
				 conn_tls_why(c, e));
			return -EPROTO;
		}
		p.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		do
			n = poll(&p, 1, rl_cli_left_ms(deadline));
		while (n == -1 && errno == EINTR);
		if (n == 0) {
			snprintf(c->why, sizeof c->why, "TLS handshake with %s: timed out", host);
			return -ETIMEDOUT;
		}
	}
}

/* A failed SSL_read/SSL_write (<r>) as errno: EAGAIN when OpenSSL waits
 * for the socket (*<events>: what to poll for), 0 for the server's
 * close_notify, EPIPE otherwise (c->why says why). */
static int conn_tls_errno(struct rl_cli_conn *c, int r, short *events)
{
	int e = SSL_get_error(c->ssl, r);

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return EAGAIN;
	}
	if (e == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		return 0;
	}
	snprintf(c->why, sizeof c->why, "connection lost: %s", conn_tls_why(c, e));
	return EPIPE;
}

/* One write of the front of <iov>/<n>: bytes written, or -errno (-EAGAIN:
 * poll for *<events>, then call again with the same bytes). TLS writes the
 * first buffer only: OpenSSL has no vectored write. */
static ssize_t conn_write_some(struct rl_cli_conn *c, struct iovec *iov, int n, short *events)
{
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
	size_t done = 0;
	ssize_t w;
	int r;

	*events = POLLOUT;
	if (!c->ssl) {
		w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (w >= 0)
			return w;
		if (errno != EAGAIN && errno != EINTR)
			snprintf(c->why, sizeof c->why, "connection lost: %s", strerror(errno));
		return -errno;
	}
	if (iov->iov_len == 0)
		return 0;
	ERR_clear_error();
	r = SSL_write_ex(c->ssl, iov->iov_base, iov->iov_len, &done);
	if (r == 1)
		return (ssize_t)done;
	r = conn_tls_errno(c, r, events);
	if (r == 0)
		snprintf(c->why, sizeof c->why, "connection closed by the server");
	return r ? -r : -EPIPE;
}

static ssize_t conn_read_raw(struct rl_cli_conn *c);
static int conn_write_all(struct rl_cli_conn *c, struct iovec *iov, int n);

/* WebSocket: one read, its frames' payloads moved together at the start of
 * c->rbuf (each binary message is one Relay frame, so the payloads in order
 * are the frame stream). Answers pings; a close frame ends the stream
 * (0 once the payloads before it are out). */
static ssize_t conn_ws_read(struct rl_cli_conn *c)
{
	struct rl_wsf_event ev;
	size_t out = 0;
	ssize_t n;

	if (c->ws_closed)
		return 0;
	if (c->ws_early) {
		n = (ssize_t)c->ws_early;
		c->ws_early = 0;
	} else if ((n = conn_read_raw(c)) <= 0) {
		return n;
	}
	rl_wsf_dec_feed(c->wsd, c->rbuf, (size_t)n);
	for (;;) {
		enum rl_wsf_status st = rl_wsf_dec_next(c->wsd, &ev);

		if (st == RL_WSF_NEED_MORE)
			break;
		if (st == RL_WSF_ERROR) {
			snprintf(c->why, sizeof c->why, "bad WebSocket frame from the server: %s",
				 rl_wsf_err_name(c->wsd->err));
			return -EPROTO;
		}
		if (st == RL_WSF_DATA) {
			memmove(c->rbuf + out, ev.p, ev.n); /* ev.p >= c->rbuf + out */
			out += ev.n;
		} else if (ev.opcode == RL_WSF_OP_CLOSE) {
			c->ws_closed = true;
			break;
		} else if (ev.opcode == RL_WSF_OP_PING) {
			uint8_t pong[RL_WSF_HDR_MAX + RL_WSF_CONTROL_MAX], key[4] = {0};
			struct iovec iov;

			(void)!getrandom(key, sizeof key, 0);
			iov.iov_base = pong;
			iov.iov_len = rl_wsf_put_pong(pong, ev.p, ev.n, key);
			if (conn_write_all(c, &iov, 1))
				return -EPIPE;
		}
	}
	if (out == 0 && c->ws_closed)
		return 0;
	return out ? (ssize_t)out : -EAGAIN;
}

/* One read into c->rbuf: bytes, 0 at EOF, or -errno (-EAGAIN: nothing yet).
 * Over WebSocket, the Relay frame bytes only. */
static ssize_t conn_read_some(struct rl_cli_conn *c)
{
	return c->wsd ? conn_ws_read(c) : conn_read_raw(c);
}

/* One read of up to <cap> bytes into <buf>, through TLS when on: bytes, 0 at
 * EOF, or -errno (-EAGAIN: nothing yet). */
static ssize_t conn_read_into(struct rl_cli_conn *c, uint8_t *buf, size_t cap)
{
	size_t got = 0;
	short events;
	ssize_t n;
	int r;

	if (!c->ssl) {
		n = read(c->fd, buf, cap);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			return -EAGAIN;
		if (errno != EAGAIN)
			snprintf(c->why, sizeof c->why, "connection lost: %s", strerror(errno));
		return -errno;
	}
	ERR_clear_error();
	r = SSL_read_ex(c->ssl, buf, cap, &got);
	if (r == 1)
		return (ssize_t)got;
	/* WANT_WRITE (a key update answer) is retried by the next read. */
	r = conn_tls_errno(c, r, &events);
	return r ? -r : 0;
}

static ssize_t conn_read_raw(struct rl_cli_conn *c)
{
	return conn_read_into(c, c->rbuf, sizeof c->rbuf);
}

/* The WebSocket upgrade on the connected c->fd (over TLS for wss://), within <deadline>: sends the
 * request for <path> offering relay.v1, reads the 101 and keeps frame bytes
 * that came with it for the first read. 0, or -errno with c->why set. */
static int conn_ws_open(struct rl_cli_conn *c, const char *host, const char *port, const char *path,
			int64_t deadline)
{
	uint8_t nonce[16], req[RL_HTTP_RESPONSE_MAX];
	char key[RL_HTTP_WS_KEY_LEN + 1], hostport[300];
	struct rl_http_answer a;
	struct iovec iov;
	size_t have = 0;
	int rc;

	if (getrandom(nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce) {
		snprintf(c->why, sizeof c->why, "getrandom: %s", strerror(errno));
		return -errno;
	}
	rl_http_ws_key(nonce, key);
	snprintf(hostport, sizeof hostport, "%s%s%s:%s", strchr(host, ':') ? "[" : "", host,
		 strchr(host, ':') ? "]" : "", port);
	iov.iov_base = req;
	iov.iov_len = rl_http_write_upgrade(req, sizeof req, hostport, path, key, NULL);
	if (iov.iov_len == 0) {
		snprintf(c->why, sizeof c->why, "WebSocket: host or path too long");
		return -EINVAL;
	}
	if ((rc = conn_write_all(c, &iov, 1)))
		return rc;
	for (;;) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		ssize_t n = conn_read_into(c, c->rbuf + have, sizeof c->rbuf - have);

		if (n > 0) {
			have += (size_t)n;
			enum rl_http_parse_status st = rl_http_parse_answer(&a, c->rbuf, have, key);

			if (st == RL_HTTP_COMPLETE)
				break;
			if (st != RL_HTTP_NEED_MORE || have == sizeof c->rbuf) {
				snprintf(c->why, sizeof c->why,
					 "WebSocket upgrade refused (HTTP %u): %s", a.status,
					 a.why ? a.why : "bad answer");
				return -ECONNREFUSED;
			}
			continue;
		}
		if (n == 0) {
			snprintf(c->why, sizeof c->why, "WebSocket upgrade: connection closed");
			return -EPIPE;
		}
		if (n != -EAGAIN)
			return (int)n; /* c->why says how the connection was lost */
		if (c->ssl && SSL_pending(c->ssl) > 0)
			continue;
		if (poll(&p, 1, rl_cli_left_ms(deadline)) == 0) {
			snprintf(c->why, sizeof c->why, "WebSocket upgrade: timed out");
			return -ETIMEDOUT;
		}
	}
	c->wsd = malloc(sizeof *c->wsd);
	if (!c->wsd) {
		snprintf(c->why, sizeof c->why, "out of memory");
		return -ENOMEM;
	}
	rl_wsf_dec_init(c->wsd, RL_WSF_CLIENT, 4 + (uint64_t)CONN_RX_MAX_FRAME);
	c->ws_early = have - a.head_len;
	memmove(c->rbuf, c->rbuf + a.head_len, c->ws_early);
	return 0;
}

int rl_cli_conn_open(struct rl_cli_conn *c, const char *host, const char *port,
		     const struct rl_cli_tls *tls, int timeout_ms, rl_cli_event_fn *on_event,
		     void *arg)
{
	int64_t deadline = rl_cli_now_ms() + timeout_ms;
	struct addrinfo *res = NULL, *ai;
	int fd = -ENOENT, one = 1, rc;

	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->on_event = on_event;
	c->arg = arg;
	c->max_frame = RELAY_DEFAULT_MAX_FRAME;
	c->keepalive_ms = RL_CLI_KEEPALIVE_MS;
	c->last_tx_ms = rl_cli_now_ms();
	relay_decoder_init(&c->dec, CONN_RX_MAX_FRAME);
	rc = conn_resolve(c, host, port, deadline, &res);
	if (rc)
		return rc;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = conn_connect_one(ai, deadline);
		if (fd >= 0 || fd == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(c->why, sizeof c->why, "cannot connect to %s%s%s:%s: %s",
			 strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port,
			 fd == -ETIMEDOUT ? "timed out" : strerror(-fd));
		return fd;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->fd = fd;
	if (tls && tls->on && (rc = conn_tls_open(c, host, tls, deadline)))
		return rc;
	return tls && tls->ws_path ? conn_ws_open(c, host, port, tls->ws_path, deadline) : 0;
}

void rl_cli_conn_close(struct rl_cli_conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl); /* close_notify, best effort */
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	SSL_CTX_free(c->ssl_ctx);
	c->ssl = NULL;
	c->ssl_ctx = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->wsd);
	c->wsd = NULL;
	relay_decoder_free(&c->dec);
}

/* ---- sending ------------------------------------------------------------ */

static void conn_iov_advance(struct iovec **iov, int *n, size_t done)
{
	while (*n > 0 && done >= (*iov)->iov_len) {
		done -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n > 0) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + done;
		(*iov)->iov_len -= done;
	}
}

/* Writes all of <iov>; the socket is non-blocking, so wait (bounded) while it
 * is full. The server keeps reading while it writes, so this cannot deadlock.
 * MSG_NOSIGNAL: a closed socket is an error here, while SIGPIPE keeps its
 * default for stdout (`relay-cli sub room | head -1` ends like any filter). */
static int conn_write_all(struct rl_cli_conn *c, struct iovec *iov, int n)
{
	int64_t deadline = rl_cli_now_ms() + RL_CLI_REPLY_TIMEOUT_MS;
	struct pollfd p = {.fd = c->fd};

	while (n > 0) {
		ssize_t w = conn_write_some(c, iov, n, &p.events);

		if (w >= 0) {
			conn_iov_advance(&iov, &n, (size_t)w);
			continue;
		}
		if (w == -EINTR)
			continue;
		if (w != -EAGAIN)
			return (int)w;
		if (poll(&p, 1, rl_cli_left_ms(deadline)) == 0) {
			snprintf(c->why, sizeof c->why, "the server does not read: send timed out");
			return -ETIMEDOUT;
		}
	}
	return 0;
}

int rl_cli_conn_send(struct rl_cli_conn *c, uint8_t type, uint8_t flags, const void *payload,
		     size_t len)
{
	uint8_t hdr[RELAY_FRAME_HDR_BYTES];
	struct iovec iov[2];

	if (len + RELAY_FRAME_MIN_LENGTH > c->max_frame) {
		snprintf(c->why, sizeof c->why,
			 "message too large: %zu bytes, the server accepts at most %u", len,
			 c->max_frame - RELAY_FRAME_MIN_LENGTH);
		return -EMSGSIZE;
	}
	relay_frame_put_header(hdr, type, flags, (uint32_t)len);
	c->last_tx_ms = rl_cli_now_ms();
	if (c->wsd) { /* one masked binary message carrying the frame */
		uint8_t wsh[RL_WSF_HDR_MAX], key[4] = {0};
		uint8_t *buf = malloc(sizeof hdr + len);
		int rc;

		if (!buf) {
			snprintf(c->why, sizeof c->why, "out of memory");
			return -ENOMEM;
		}
		(void)!getrandom(key, sizeof key, 0);
		memcpy(buf, hdr, sizeof hdr);
		if (len)
			memcpy(buf + sizeof hdr, payload, len);
		rl_wsf_mask(buf, sizeof hdr + len, key, 0);
		iov[0] = (struct iovec){
		    .iov_base = wsh,
		    .iov_len = rl_wsf_put_hdr(wsh, RL_WSF_OP_BINARY, true, sizeof hdr + len, key)};
		iov[1] = (struct iovec){.iov_base = buf, .iov_len = sizeof hdr + len};
		rc = conn_write_all(c, iov, 2);
		free(buf);
		return rc;
	}
	iov[0] = (struct iovec){.iov_base = hdr, .iov_len = sizeof hdr};
	iov[1] = (struct iovec){.iov_base = (void *)payload, .iov_len = len};
	return conn_write_all(c, iov, 2);
}

int rl_cli_conn_keepalive(struct rl_cli_conn *c)
{
	if (rl_cli_now_ms() - c->last_tx_ms < c->keepalive_ms)
		return 0;
	return rl_cli_conn_send(c, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
}

int rl_cli_conn_poll_ms(const struct rl_cli_conn *c, int other_ms)
{
	int64_t due = c->last_tx_ms + c->keepalive_ms - rl_cli_now_ms();
	int ka = due <= 0 ? 0 : (int)due;

	return other_ms < 0 || ka < other_ms ? ka : other_ms;
}

/* ---- receiving ---------------------------------------------------------- */

/* Whether <ev> answers the request in flight. ERRORs answer HELLO, JOIN and
 * LEAVE when they name the same room (or none, for HELLO). A HEARTBEAT echo
 * answers only when it carries our ping's payload (not a keepalive's). */
static bool conn_is_reply(const struct rl_cli_conn *c, const struct rl_cli_event *ev)
{
	if (c->await == RL_CLI_EV_OTHER || c->await_done)
		return false;
	if (ev->kind == RL_CLI_EV_ERROR) {
		if (c->await == RL_CLI_EV_HEARTBEAT)
			return false;
		return strcmp(ev->room, c->await_room) == 0;
	}
	if (ev->kind != c->await)
		return false;
	if (ev->kind == RL_CLI_EV_HEARTBEAT)
		return ev->payload.n == strlen(c->await_ping) &&
		       memcmp(ev->payload.p, c->await_ping, ev->payload.n) == 0;
	return c->await_room[0] == '\0' || strcmp(ev->room, c->await_room) == 0;
}

static int conn_dispatch(struct rl_cli_conn *c, const struct relay_frame *f)
{
	struct rl_cli_event ev;

	if (rl_cli_event_decode(f, &ev, c->why, sizeof c->why))
		return -EPROTO;
	if (ev.kind == RL_CLI_EV_ERROR && ev.fatal) {
		snprintf(c->why, sizeof c->why, "server closed the connection: %s: %s", ev.code,
			 ev.message);
		return -ECONNABORTED;
	}
	if (conn_is_reply(c, &ev)) {
		c->reply = ev;
		c->await_done = true;
		return 0;
	}
	return c->on_event ? c->on_event(c->arg, &ev) : 0;
}

/* Dispatches the frames left in the current feed. */
static int conn_drain(struct rl_cli_conn *c)
{
	struct relay_frame f;

	for (;;) {
		enum relay_decode_status st = relay_decoder_next_from_server(&c->dec, &f);
		int rc;

		if (st == RELAY_DECODE_NEED_MORE) {
			c->feeding = false;
			return 0;
		}
		if (st == RELAY_DECODE_ERROR) {
			snprintf(c->why, sizeof c->why, "malformed frame from the server: %s",
				 relay_err_name(c->dec.err));
			return -EPROTO;
		}
		if (st == RELAY_DECODE_NOMEM) {
			snprintf(c->why, sizeof c->why, "out of memory decoding a frame");
			return -ENOMEM;
		}
		rc = conn_dispatch(c, &f);
		if (rc)
			return rc;
	}
}

int rl_cli_conn_pump(struct rl_cli_conn *c)
{
	do {
		ssize_t n;
		int rc;

		if (c->feeding && (rc = conn_drain(c)))
			return rc;
		n = conn_read_some(c);
		if (n == 0) {
			snprintf(c->why, sizeof c->why, "connection closed by the server");
			return -EPIPE;
		}
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		relay_decoder_feed(&c->dec, c->rbuf, (size_t)n);
		c->feeding = true;
		if ((rc = conn_drain(c)))
			return rc;
		/* Decrypted bytes OpenSSL still holds: the socket's poll would
		 * not show them, so read them now. */
	} while (c->ssl && SSL_pending(c->ssl) > 0);
	return 0;
}

/* Pumps until the awaited reply is in, <deadline> passes or a signal comes. */
static int conn_await(struct rl_cli_conn *c, int64_t deadline)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	for (;;) {
		int rc = rl_cli_conn_pump(c);

		if (rc || c->await_done)
			return rc;
		rc = rl_cli_poll(&p, 1, rl_cli_left_ms(deadline));
		if (rc == -1 && errno == EINTR && rl_cli_signalled)
			return -EINTR;
		if (rc == 0) {
			snprintf(c->why, sizeof c->why, "no reply from the server within %d s",
				 (int)((RL_CLI_REPLY_TIMEOUT_MS + 999) / 1000));
			return -ETIMEDOUT;
		}
	}
}

int rl_cli_conn_request(struct rl_cli_conn *c, uint8_t type, const char *room, const void *payload,
			size_t len, int timeout_ms)
{
	int rc;

	c->await = conn_reply_kind[type];
	snprintf(c->await_room, sizeof c->await_room, "%s", room ? room : "");
	snprintf(c->await_ping, sizeof c->await_ping, "%.*s",
		 type == RELAY_MSG_HEARTBEAT ? (int)len : 0, payload ? (const char *)payload : "");
	c->await_done = false;
	rc = rl_cli_conn_send(c, type, len ? RELAY_FLAG_JSON : 0, payload, len);
	if (rc == 0)
		rc = conn_await(c, rl_cli_now_ms() + timeout_ms);
	c->await = RL_CLI_EV_OTHER;
	if (rc)
		return rc;
	return c->reply.kind == RL_CLI_EV_ERROR ? 1 : 0;
}

int rl_cli_conn_hello(struct rl_cli_conn *c, const char *user, const char *token)
{
	uint8_t buf[1024 + 6 * 4096]; /* a token is at most 4096 bytes (spec §2) */
	size_t n = rl_cli_req_hello(buf, sizeof buf, user, token);
	int rc;

	if (n == 0) {
		snprintf(c->why, sizeof c->why, "user name or token too long");
		return -EINVAL;
	}
	rc = rl_cli_conn_request(c, RELAY_MSG_HELLO, NULL, buf, n, RL_CLI_REPLY_TIMEOUT_MS);
	if (rc == 1) {
		snprintf(c->why, sizeof c->why, "the server refused the HELLO: %s: %s",
			 c->reply.code, c->reply.message);
		return -EINVAL;
	}
	if (rc)
		return rc;
	memcpy(c->conn_id, c->reply.conn, sizeof c->conn_id);
	memcpy(c->server_version, c->reply.server_version, sizeof c->server_version);
	if (c->reply.max_frame >= RELAY_FRAME_MIN_LENGTH)
		c->max_frame = c->reply.max_frame;
	if (c->reply.heartbeat_ms >= 100 && c->reply.heartbeat_ms < 3600000)
		c->keepalive_ms = (int)c->reply.heartbeat_ms;
	return 0;
}

int rl_cli_conn_ping(struct rl_cli_conn *c, int64_t *rtt_us)
{
	struct timespec a, b;
	char ping[32];
	int n = snprintf(ping, sizeof ping, "{\"ping\":%u}", ++c->ping_seq);
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &a);
	rc = rl_cli_conn_request(c, RELAY_MSG_HEARTBEAT, NULL, ping, (size_t)n,
				 RL_CLI_REPLY_TIMEOUT_MS);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (rtt_us)
		*rtt_us = (b.tv_sec - a.tv_sec) * 1000000LL + (b.tv_nsec - a.tv_nsec) / 1000;
	return rc;
}
