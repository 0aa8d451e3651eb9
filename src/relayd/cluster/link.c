/* link.c -- one non-blocking socket to the bus. Threading: see link.h. */
#include "cluster/link.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define LINK_WRITE_CALLS 4     /* per flush: then yield to the rest of the turn */
#define LINK_KEEP_BYTES 262144 /* an idle buffer bigger than this is freed */

static int link_bad(char *err, size_t errlen, const char *url, const char *why)
{
	snprintf(err, errlen, "invalid value '%s' for --cluster: %s", url, why);
	return -EINVAL;
}

static int link_addr_unix(const char *url, const char *path, struct rl_link_addr *a, char *err,
			  size_t errlen)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(un->sun_path))
		return link_bad(err, errlen, url, "a unix socket path of 1-107 bytes");
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n + 1);
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	snprintf(a->text, sizeof(a->text), "unix:%s", path);
	return 0;
}

/* "HOST[:PORT]" or "[V6][:PORT]" after "redis://" (a trailing "/" or "/0"
 * database suffix is accepted and ignored: pub/sub is not per database). */
static int link_addr_tcp(const char *url, const char *hp, struct rl_link_addr *a, char *err,
			 size_t errlen)
{
	char host[256], port[16] = "6379";
	const char *end = hp + strcspn(hp, "/");
	const char *colon;
	size_t hl;
	if (*hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(end - hp));
		if (!rb)
			return link_bad(err, errlen, url, "unterminated [IPv6] literal");
		hl = (size_t)(rb - hp - 1);
		memcpy(host, hp + 1, hl < sizeof(host) ? hl : 0);
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(hp, ':', (size_t)(end - hp));
		hl = (size_t)((colon ? colon : end) - hp);
		memcpy(host, hp, hl < sizeof(host) ? hl : 0);
	}
	if (hl == 0 || hl >= sizeof(host))
		return link_bad(err, errlen, url, "expected redis://HOST[:PORT] or unix:PATH");
	host[hl] = 0;
	if (colon) {
		size_t pl = (size_t)(end - colon - 1);
		if (pl == 0 || pl >= sizeof(port) || strspn(colon + 1, "0123456789") < pl)
			return link_bad(err, errlen, url, "the port must be a number");
		memcpy(port, colon + 1, pl);
		port[pl] = 0;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "--cluster %s: cannot resolve '%s': %s", url, host,
			 gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	bool v6 = strchr(host, ':') != NULL;
	snprintf(a->text, sizeof(a->text), "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
	return 0;
}

int rl_link_addr_parse(const char *url, struct rl_link_addr *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (strncmp(url, "unix://", 7) == 0)
		return link_addr_unix(url, url + 7, a, err, errlen);
	if (strncmp(url, "unix:", 5) == 0)
		return link_addr_unix(url, url + 5, a, err, errlen);
	if (strncmp(url, "redis://", 8) == 0)
		return link_addr_tcp(url, url + 8, a, err, errlen);
	return link_bad(err, errlen, url, "expected redis://HOST[:PORT] or unix:PATH");
}

void rl_link_init(struct rl_link *l, const char *name)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->name = name;
}

int rl_link_open(struct rl_link *l, const struct rl_link_addr *a, struct rl_evloop *loop)
{
	int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (a->sa.ss_family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	int rc = connect(fd, (const struct sockaddr *)&a->sa, a->len);
	if (rc == -1 && errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		return rc == -EAGAIN ? -ECONNREFUSED : rc; /* unix: backlog full */
	}
	int reg = rl_evloop_add(loop, fd, RL_EV_IN | RL_EV_OUT | RL_EV_EDGE, l);
	if (reg) {
		close(fd);
		return reg;
	}
	l->fd = fd;
	l->state = rc == 0 ? RL_LINK_OPEN : RL_LINK_CONNECTING;
	l->wblocked = false;
	return 0;
}

int rl_link_connected(struct rl_link *l)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return -errno;
	if (err)
		return -err;
	l->state = RL_LINK_OPEN;
	return 0;
}

long rl_link_read(struct rl_link *l, size_t max)
{
	uint8_t *w = rl_buf_reserve(&l->in, max);
	if (!w)
		return -ENOMEM;
	ssize_t n;
	do
		n = recv(l->fd, w, max, 0);
	while (n == -1 && errno == EINTR);
	if (n > 0) {
		l->in.len += (size_t)n;
		return n;
	}
	if (n == 0)
		return -ECONNRESET;
	return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

int rl_link_flush(struct rl_link *l, uint64_t *writes)
{
	for (int i = 0; i < LINK_WRITE_CALLS && rl_buf_pending(&l->out) && !l->wblocked; i++) {
		ssize_t n =
		    send(l->fd, l->out.p + l->out.off, rl_buf_pending(&l->out), MSG_NOSIGNAL);
		(*writes)++;
		if (n > 0) {
			rl_buf_consume(&l->out, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			l->wblocked = true;
			break;
		}
		return -errno;
	}
	rl_buf_shrink(&l->out, LINK_KEEP_BYTES);
	return 0;
}

void rl_link_close(struct rl_link *l, struct rl_evloop *loop)
{
	if (l->fd >= 0) {
		rl_evloop_del(loop, l->fd);
		close(l->fd);
	}
	l->fd = -1;
	l->state = RL_LINK_DOWN;
	l->wblocked = false;
	l->more = false;
	rl_buf_free(&l->out);
	rl_buf_free(&l->in);
}
