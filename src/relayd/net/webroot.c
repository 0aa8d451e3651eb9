/* webroot.c -- static files for the WebSocket listener (--web-root). See
 * webroot.h for the rules.
 * Threading: the root is read-only once set up; rl_webroot_open keeps no
 * state between calls (any worker). */
#include "net/webroot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int rl_webroot_init(struct rl_webroot *r, const char *dir, char *err, size_t errlen)
{
	struct stat st;

	r->dirfd = -1;
	r->real = realpath(dir, NULL);
	if (r->real == NULL) {
		snprintf(err, errlen, "--web-root %s: %s", dir, strerror(errno));
		return -errno;
	}
	r->real_len = strlen(r->real);
	r->dirfd = open(r->real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd == -1 || fstat(r->dirfd, &st) == -1) {
		int e = errno;
		snprintf(err, errlen, "--web-root %s: %s", dir, strerror(e));
		rl_webroot_fini(r);
		return -e;
	}
	return 0;
}

void rl_webroot_fini(struct rl_webroot *r)
{
	if (r->dirfd >= 0)
		close(r->dirfd);
	free(r->real);
	r->dirfd = -1;
	r->real = NULL;
	r->real_len = 0;
}

static int webroot_hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes <path> into <out> (NUL-terminated). 0, or the status. */
static unsigned webroot_decode(struct relay_span path, char *out, size_t cap, const char **why)
{
	size_t o = 0;

	for (size_t i = 0; i < path.n; i++) {
		int c = path.p[i];
		if (c == '%') {
			int hi = i + 2 < path.n ? webroot_hex(path.p[i + 1]) : -1;
			int lo = hi >= 0 ? webroot_hex(path.p[i + 2]) : -1;
			if (lo < 0)
				return *why = "bad percent escape", 400;
			c = hi << 4 | lo;
			i += 2;
		}
		if (c == '\0')
			return *why = "NUL in the path", 400;
		if (o + 1 >= cap)
			return *why = "path too long", 414;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* Every segment of the decoded relative path <rel> is a plain name. */
static unsigned webroot_segments(const char *rel, const char **why)
{
	for (const char *s = rel;;) {
		const char *e = strchr(s, '/');
		size_t n = e != NULL ? (size_t)(e - s) : strlen(s);
		if (n == 0)
			return *why = "empty path segment", 400;
		if (s[0] == '.') /* ".", "..", and hidden files such as .git */
			return *why = "path not allowed", 403;
		if (e == NULL)
			return 0;
		s = e + 1;
	}
}

/* Whether open file <fd> (reached as <rel>) lies under the root once every
 * symlink is resolved. */
static bool webroot_inside(const struct rl_webroot *r, int fd, const char *rel)
{
	char link[64], got[PATH_MAX];
	char *real = NULL;
	const char *where = got;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, got, sizeof got - 1);
	if (n > 0) {
		got[n] = '\0';
	} else { /* no /proc: resolve the name (racy, but only without /proc) */
		char full[PATH_MAX];
		snprintf(full, sizeof full, "%s/%s", r->real, rel);
		real = realpath(full, NULL);
		if (real == NULL)
			return false;
		where = real;
	}
	bool ok = strncmp(where, r->real, r->real_len) == 0 &&
		  (r->real_len == 1 || where[r->real_len] == '/');
	free(real);
	return ok;
}

unsigned rl_webroot_open(const struct rl_webroot *r, struct relay_span path, struct rl_webfile *f,
			 const char **why)
{
	char dec[RL_WEBROOT_MAX_PATH + sizeof "index.html"];
	struct stat st;

	f->fd = -1;
	unsigned bad = webroot_decode(path, dec, RL_WEBROOT_MAX_PATH, why);
	if (bad != 0)
		return bad;
	if (dec[0] != '/')
		return *why = "path not absolute", 400;
	size_t n = strlen(dec);
	if (dec[n - 1] == '/') /* a directory's index, never a listing */
		memcpy(dec + n, "index.html", sizeof "index.html");
	const char *rel = dec + 1;
	if ((bad = webroot_segments(rel, why)) != 0)
		return bad;
	int fd = openat(r->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1)
		return errno == EACCES || errno == ELOOP ? (*why = "not readable", 403)
							 : (*why = "no such file", 404);
	unsigned status = 200;
	if (fstat(fd, &st) == -1)
		status = 404, *why = "no such file";
	else if (S_ISDIR(st.st_mode))
		status = 403, *why = "directories are not listed";
	else if (!S_ISREG(st.st_mode))
		status = 403, *why = "not a regular file";
	else if ((uint64_t)st.st_size > RL_WEBROOT_MAX_FILE)
		status = 403, *why = "file too large";
	else if (!webroot_inside(r, fd, rel))
		status = 403, *why = "outside the web root";
	if (status != 200) {
		close(fd);
		return status;
	}
	f->fd = fd;
	f->size = (uint64_t)st.st_size;
	f->type = rl_webroot_type(rel);
	return 200;
}

static const struct {
	const char *ext;
	const char *type;
} webroot_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

const char *rl_webroot_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	const char *slash = strrchr(name, '/');

	if (dot != NULL && (slash == NULL || dot > slash))
		for (size_t i = 0; i < sizeof webroot_types / sizeof webroot_types[0]; i++)
			if (strcasecmp(dot, webroot_types[i].ext) == 0)
				return webroot_types[i].type;
	return "application/octet-stream";
}

size_t rl_webroot_head(char *out, size_t cap, const struct rl_webfile *f)
{
	int n = snprintf(out, cap,
			 "HTTP/1.1 200 OK\r\n"
			 "Content-Type: %s\r\n"
			 "Content-Length: %" PRIu64 "\r\n"
			 "Cache-Control: no-cache\r\n"
			 "X-Content-Type-Options: nosniff\r\n"
			 "Connection: close\r\n"
			 "\r\n",
			 f->type, f->size);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
