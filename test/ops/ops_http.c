/* ops_http.c -- minimal HTTP/1.0 client for tests (see ops_http.h). */
#include "ops_http.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t http_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int http_connect(const char *hostport, char *err, size_t errlen)
{
	char host[128], port[16];
	const char *colon = strrchr(hostport, ':');
	if (!colon || (size_t)(colon - hostport) >= sizeof(host) ||
	    strlen(colon + 1) >= sizeof(port)) {
		snprintf(err, errlen, "bad address %s", hostport);
		return -EINVAL;
	}
	size_t hl = (size_t)(colon - hostport);
	const char *h = hostport;
	if (hl >= 2 && h[0] == '[') {
		h++;
		hl -= 2;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", hostport, gai_strerror(rc));
		return -EINVAL;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, res->ai_addr, res->ai_addrlen) == -1) {
		int e = errno;
		snprintf(err, errlen, "connect %s: %s", hostport, strerror(e));
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		return -e;
	}
	freeaddrinfo(res);
	return fd;
}

static int http_read_all(int fd, int timeout_ms, char **out, size_t *outlen, char *err,
			 size_t errlen)
{
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);
	int64_t deadline = http_now_ms() + timeout_ms;
	for (;;) {
		if (!buf) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		int left = (int)(deadline - http_now_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0) {
			snprintf(err, errlen, "timed out reading the reply (%zu bytes so far)",
				 len);
			free(buf);
			return -ETIMEDOUT;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			snprintf(err, errlen, "read: %s", strerror(e));
			free(buf);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len + 1 == cap) {
			char *more = realloc(buf, cap *= 2);
			if (!more)
				free(buf);
			buf = more;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

int ops_http(const char *hostport, const char *method, const char *path, int timeout_ms,
	     struct ops_http_reply *r, char *err, size_t errlen)
{
	return ops_http_h(hostport, method, path, NULL, timeout_ms, r, err, errlen);
}

int ops_http_h(const char *hostport, const char *method, const char *path, const char *headers,
	       int timeout_ms, struct ops_http_reply *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	int fd = http_connect(hostport, err, errlen);
	if (fd < 0)
		return fd;
	char req[2048];
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: %s\r\n%s\r\n", method, path,
			 hostport, headers ? headers : "");
	if (n < 0 || (size_t)n >= sizeof(req)) {
		snprintf(err, errlen, "request too long");
		close(fd);
		return -EINVAL;
	}
	if (write(fd, req, (size_t)n) != n) {
		snprintf(err, errlen, "write: %s", strerror(errno));
		close(fd);
		return -EIO;
	}
	char *all = NULL;
	size_t len = 0;
	int rc = http_read_all(fd, timeout_ms, &all, &len, err, errlen);
	close(fd);
	if (rc != 0)
		return rc;
	char *sep = strstr(all, "\r\n\r\n");
	if (!sep || sscanf(all, "HTTP/1.%*d %d", &r->status) != 1) {
		snprintf(err, errlen, "malformed reply: %.80s", all);
		free(all);
		return -EPROTO;
	}
	*sep = '\0';
	r->head = all;
	r->body = sep + 4;
	r->len = len - (size_t)(r->body - all);
	return 0;
}

void ops_http_free(struct ops_http_reply *r)
{
	free(r->head);
	memset(r, 0, sizeof(*r));
}

int ops_http_header(const struct ops_http_reply *r, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = r->head; p && *p;) {
		const char *eol = strstr(p, "\r\n");
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ')
				v++;
			size_t vl = eol ? (size_t)(eol - v) : strlen(v);
			snprintf(out, cap, "%.*s", (int)vl, v);
			return 0;
		}
		p = eol ? eol + 2 : NULL;
	}
	return -1;
}
