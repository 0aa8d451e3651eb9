/* conn.c -- relay-cli's connection to relayd: name lookup and connect with a
 * deadline, frame writes, the receive pump (protocol library decoder), and
 * request/reply pairing (one request in flight at a time).
 *
 * Threading: main thread only. getaddrinfo_a runs the lookup on a glibc
 * helper thread so that an unreachable resolver cannot hang the CLI; the
 * request it works on is static because that thread may outlive a timeout.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

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

int rl_cli_conn_open(struct rl_cli_conn *c, const char *host, const char *port, int timeout_ms,
		     rl_cli_event_fn *on_event, void *arg)
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
	return 0;
}

void rl_cli_conn_close(struct rl_cli_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
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
	struct pollfd p = {.fd = c->fd, .events = POLLOUT};

	while (n > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);

		if (w >= 0) {
			conn_iov_advance(&iov, &n, (size_t)w);
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			snprintf(c->why, sizeof c->why, "connection lost: %s", strerror(errno));
			return -errno;
		}
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
	iov[0] = (struct iovec){.iov_base = hdr, .iov_len = sizeof hdr};
	iov[1] = (struct iovec){.iov_base = (void *)payload, .iov_len = len};
	c->last_tx_ms = rl_cli_now_ms();
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
		enum relay_decode_status st = relay_decoder_next(&c->dec, &f);
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
	ssize_t n;

	if (c->feeding) {
		int rc = conn_drain(c);

		if (rc)
			return rc;
	}
	n = read(c->fd, c->rbuf, sizeof c->rbuf);
	if (n == 0) {
		snprintf(c->why, sizeof c->why, "connection closed by the server");
		return -EPIPE;
	}
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		snprintf(c->why, sizeof c->why, "connection lost: %s", strerror(errno));
		return -errno;
	}
	relay_decoder_feed(&c->dec, c->rbuf, (size_t)n);
	c->feeding = true;
	return conn_drain(c);
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

int rl_cli_conn_hello(struct rl_cli_conn *c, const char *user)
{
	uint8_t buf[512];
	size_t n = rl_cli_req_hello(buf, sizeof buf, user);
	int rc;

	if (n == 0) {
		snprintf(c->why, sizeof c->why, "user name too long");
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
