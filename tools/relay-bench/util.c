/* util.c -- small helpers: clocks, sockets, /proc readers, a tiny HTTP GET.
 * Threading: all functions are reentrant; none keeps state.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

uint64_t rb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rb_sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

uint64_t rb_rand(uint64_t *s)
{
	/* splitmix64: good enough for choosing actions and split points */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int rb_resolve(const char *host, int port, struct sockaddr_in *out)
{
	memset(out, 0, sizeof *out);
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &out->sin_addr) == 1)
		return 0;
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		return -EINVAL;
	out->sin_addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
	freeaddrinfo(ai);
	return 0;
}

static int sock_new(unsigned src, unsigned src_n, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* Before connect: the window scale is negotiated from it. Shrinking the
	 * buffer of a connected socket left Linux advertising a zero window and
	 * reopening it only through the peer's backed-off persist probes. */
	if (rcvbuf > 0) {
		int mss = 536;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
		setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
	}
	if (src_n > 1) {
		/* Let connect() pick the port: the 4-tuple, not the port alone,
		 * must be unique, so each source address has its own port range. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		struct sockaddr_in sa = { .sin_family = AF_INET };
		sa.sin_addr.s_addr = htonl(0x7f000001u + (src % src_n));
		if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
			int e = errno;
			close(fd);
			return -e;
		}
	}
	return fd;
}

static int connect_start(const struct sockaddr_in *addr, unsigned src, unsigned src_n,
			 int rcvbuf)
{
	int fd = sock_new(src, src_n, rcvbuf);
	if (fd < 0)
		return fd;
	if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) == -1 &&
	    errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int rb_connect_start(const struct sockaddr_in *addr, unsigned src, unsigned src_n)
{
	return connect_start(addr, src, src_n, 0);
}

int rb_connect_blocking(const struct sockaddr_in *addr, int timeout_ms)
{
	return rb_connect_blocking_rcvbuf(addr, timeout_ms, 0);
}

int rb_connect_blocking_rcvbuf(const struct sockaddr_in *addr, int timeout_ms, int rcvbuf)
{
	int fd = connect_start(addr, 0, 1, rcvbuf);
	if (fd < 0)
		return fd;
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int n = poll(&p, 1, timeout_ms);
	int err = 0;
	socklen_t l = sizeof err;
	if (n <= 0)
		err = n == 0 ? ETIMEDOUT : errno;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) == -1)
		err = errno;
	if (err) {
		close(fd);
		return -err;
	}
	return fd;
}

long rb_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -errno;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -errno;
	return (long)rl.rlim_cur;
}

long rb_rss_bytes(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

double rb_cpu_seconds(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p)
		return -1;
	unsigned long ut = 0, stt = 0;
	/* after ") ": state(3) ... utime is field 14, stime 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
		   &stt) != 2)
		return -1;
	return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

long rb_http_get(const char *url, char *buf, size_t cap, int timeout_ms)
{
	char host[128] = "127.0.0.1", path[256] = "/";
	int port = 80;
	if (strncmp(url, "http://", 7) != 0)
		return -EINVAL;
	const char *h = url + 7, *slash = strchr(h, '/'), *colon = strchr(h, ':');
	size_t hl = slash ? (size_t)(slash - h) : strlen(h);
	if (colon && (!slash || colon < slash)) {
		port = atoi(colon + 1);
		hl = (size_t)(colon - h);
	}
	if (hl >= sizeof host)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	if (slash)
		snprintf(path, sizeof path, "%s", slash);
	struct sockaddr_in sa;
	if (rb_resolve(host, port, &sa) < 0)
		return -EINVAL;
	int fd = rb_connect_blocking(&sa, timeout_ms);
	if (fd < 0)
		return fd;
	char req[512];
	int rl = snprintf(req, sizeof req,
			  "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
	if (write(fd, req, (size_t)rl) != rl) {
		close(fd);
		return -EIO;
	}
	size_t len = 0;
	uint64_t deadline = rb_now_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)((deadline - rb_now_ns()) / 1000000u);
		if (rb_now_ns() >= deadline || poll(&p, 1, left) <= 0) {
			close(fd);
			return -ETIMEDOUT;
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EAGAIN)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == cap - 1)
			break;
	}
	close(fd);
	buf[len] = 0;
	if (strncmp(buf, "HTTP/1.", 7) != 0 || atoi(buf + 9) != 200)
		return -EPROTO;
	char *body = strstr(buf, "\r\n\r\n");
	if (!body)
		return -EPROTO;
	body += 4;
	len -= (size_t)(body - buf);
	memmove(buf, body, len + 1);
	return (long)len;
}

bool rb_prom_value(const char *text, const char *name, double *out)
{
	size_t nl = strlen(name);
	bool found = false;
	double sum = 0;
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (*l == '#' || strncmp(l, name, nl) != 0)
			continue;
		const char *p = l + nl;
		if (*p == '{') {
			p = strchr(p, '}');
			if (!p)
				continue;
			p++;
		}
		if (*p != ' ')
			continue;
		sum += strtod(p, NULL);
		found = true;
	}
	if (found)
		*out = sum;
	return found;
}

int rb_parse_nodes(const char *list, struct sockaddr_in *out, unsigned max)
{
	unsigned n = 0;
	const char *p = list;
	while (*p) {
		size_t len = strcspn(p, ",");
		char item[300];
		if (len == 0 || len >= sizeof item || n == max)
			return -EINVAL;
		memcpy(item, p, len);
		item[len] = 0;
		char *colon = strrchr(item, ':');
		if (!colon || !colon[1])
			return -EINVAL;
		*colon = 0;
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (*end || port <= 0 || port > 65535 || rb_resolve(item, (int)port, &out[n]) < 0)
			return -EINVAL;
		n++;
		p += len;
		if (*p == ',')
			p++;
	}
	return n ? (int)n : -EINVAL;
}

double rb_cpu_seconds_list(const char *pids)
{
	double sum = 0;
	for (const char *p = pids; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		double c = end != p ? rb_cpu_seconds((int)pid) : -1;
		if (c < 0)
			return -1;
		sum += c;
		p = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return sum;
}
