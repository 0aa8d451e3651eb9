/* ops_http.h -- a minimal blocking HTTP/1.0 client for the ops tests.
 * Threading: no shared state. */
#ifndef RL_OPS_HTTP_H
#define RL_OPS_HTTP_H

#include <stddef.h>

struct ops_http_reply {
	int status; /* HTTP status code */
	char *head; /* status line and headers, NUL-terminated */
	char *body; /* NUL-terminated (not counted in len) */
	size_t len;
};

/* Sends "<method> <path> HTTP/1.0" to <hostport> ("HOST:PORT" or
 * "[V6]:PORT") and reads the whole reply within <timeout_ms>. 0 or -errno
 * (the reason is written to <err>). Free with ops_http_free. */
int ops_http(const char *hostport, const char *method, const char *path, int timeout_ms,
	     struct ops_http_reply *r, char *err, size_t errlen);
/* ops_http with extra request header lines <headers> (each ending in
 * "\r\n"; NULL: none). */
int ops_http_h(const char *hostport, const char *method, const char *path, const char *headers,
	       int timeout_ms, struct ops_http_reply *r, char *err, size_t errlen);
void ops_http_free(struct ops_http_reply *r);
/* Value of header <name> (case-insensitive) into <out>; 0 or -1. */
int ops_http_header(const struct ops_http_reply *r, const char *name, char *out, size_t cap);

#endif /* RL_OPS_HTTP_H */
