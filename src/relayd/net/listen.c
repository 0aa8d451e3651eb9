/* listen.c -- resolve the address, bind N reuseport listeners to one port,
 * for each kind of listener. Threading: main thread only. */
#include "net/listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

static int listen_one(const struct sockaddr *sa, socklen_t len, int *out)
{
	int one = 1;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    bind(fd, sa, len) == -1 || listen(fd, LISTEN_BACKLOG) == -1) {
		int e = -errno;
		close(fd);
		return e;
	}
	*out = fd;
	return 0;
}

/* SO_REUSEPORT lets a second process of the same user join our port's
 * group silently. A plain bind (SO_REUSEADDR only, so TIME_WAIT does not
 * count) fails with EADDRINUSE if anyone listens on the port already. */
static int listen_probe(const struct sockaddr *sa, socklen_t len)
{
	int one = 1, rc = 0;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, sa, len) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* Resolves <host> into *<ss> with <port>. 0 or -EINVAL (reason in <err>). */
static int listen_resolve(const char *host, uint16_t port, struct sockaddr_storage *ss,
			  socklen_t *len, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;
	int rc = getaddrinfo(host, NULL, &hints, &ai);

	if (rc) {
		snprintf(err, errlen, "cannot resolve --host '%s': %s", host, gai_strerror(rc));
		return -EINVAL;
	}
	/* "localhost" may resolve to ::1 first; clients mostly dial 127.0.0.1. */
	struct addrinfo *pick = ai;
	for (struct addrinfo *a = ai; a; a = a->ai_next)
		if (a->ai_family == AF_INET) {
			pick = a;
			break;
		}
	memcpy(ss, pick->ai_addr, pick->ai_addrlen);
	*len = pick->ai_addrlen;
	freeaddrinfo(ai);
	set_port(ss, port);
	return 0;
}

/* Binds <n> sockets of spec <s>. On failure closes what it opened of this
 * spec, writes the reason and returns -errno. */
static int listen_spec(struct rl_listen_spec *s, unsigned n, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	uint16_t port = s->port;
	unsigned i = 0;
	int *fds = s->fds;
	int rc = listen_resolve(s->host, port, &ss, &len, err, errlen);

	if (rc)
		return rc;
	if (port != 0 && (rc = listen_probe((struct sockaddr *)&ss, len)))
		goto fail;
	for (; i < n; i++) {
		rc = listen_one((struct sockaddr *)&ss, len, &fds[i]);
		if (rc)
			break;
		if (i == 0 && port == 0) {
			struct sockaddr_storage b;
			socklen_t bl = sizeof(b);
			if (getsockname(fds[0], (struct sockaddr *)&b, &bl) == -1) {
				rc = -errno;
				i++;
				break;
			}
			port = ntohs(b.ss_family == AF_INET ? ((struct sockaddr_in *)&b)->sin_port
							    : ((struct sockaddr_in6 *)&b)->sin6_port);
			set_port(&ss, port);
		}
	}
fail:
	if (rc) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", s->host, (unsigned)port,
			 strerror(-rc));
		while (i-- > 0)
			close(fds[i]);
		return rc;
	}
	s->bound_port = port;
	return 0;
}

int rl_listen_open(struct rl_listen_spec *specs, unsigned nspecs, unsigned nworkers, char *err,
		   size_t errlen)
{
	if (nworkers > RL_MAX_WORKERS) {
		snprintf(err, errlen, "at most %u workers can listen", (unsigned)RL_MAX_WORKERS);
		return -EINVAL;
	}
	for (unsigned k = 0; k < nspecs; k++) {
		int rc = listen_spec(&specs[k], nworkers, err, errlen);
		if (rc) {
			while (k-- > 0)
				for (unsigned i = 0; i < nworkers; i++)
					close(specs[k].fds[i]);
			return rc;
		}
	}
	return 0;
}
