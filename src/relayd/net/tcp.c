/* tcp.c -- the plain TCP transport: the socket calls themselves, nothing
 * buffered in between (no tp_ctx). See transport.h for the contract.
 * Threading: owner worker of the connection. */
#include "net/transport.h"

#include "net/conn.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Frames are written whole, in batches: Nagle would only add latency. */
static int tcp_accept(struct rl_conn *c)
{
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* best effort */
	return 0;
}

static ssize_t tcp_read(struct rl_conn *c, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static ssize_t tcp_writev(struct rl_conn *c, const struct iovec *iov, int iovcnt)
{
	struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	for (;;) {
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static int tcp_shutdown_wr(struct rl_conn *c)
{
	return shutdown(c->fd, SHUT_WR) == -1 ? -errno : 0;
}

static bool tcp_has_pending(const struct rl_conn *c)
{
	(void)c;
	return false; /* every unread byte is in the kernel, which reports it */
}

static int tcp_pending_input(struct rl_conn *c)
{
	int n = 0;
	return ioctl(c->fd, FIONREAD, &n) == -1 ? -errno : n;
}

/* SIOCOUTQ counts the send queue not yet acknowledged: unsent bytes and
 * bytes in flight (SIOCOUTQNSD would leave out the latter, which an RST
 * can destroy as well before the peer's kernel took them). */
static int tcp_pending_output(struct rl_conn *c)
{
	int n = 0;
	return ioctl(c->fd, SIOCOUTQ, &n) == -1 ? -errno : n;
}

static void tcp_close(struct rl_conn *c)
{
	close(c->fd);
}

static void tcp_abort(struct rl_conn *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)); /* close sends RST */
	close(c->fd);
}

const struct rl_transport rl_tcp_transport = {
    .name = "tcp",
    .accept = tcp_accept,
    .read = tcp_read,
    .writev = tcp_writev,
    .shutdown_wr = tcp_shutdown_wr,
    .has_pending = tcp_has_pending,
    .pending_input = tcp_pending_input,
    .pending_output = tcp_pending_output,
    .close = tcp_close,
    .abort = tcp_abort,
};
