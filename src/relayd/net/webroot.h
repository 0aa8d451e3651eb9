/* webroot.h -- the static files of --web-root, served on the WebSocket
 * listener for GET requests that are not the upgrade path: a development
 * convenience (a chat page next to the server), not a web server. Strict
 * and small: percent-decoded paths, no "." or ".." segment and no hidden
 * file, "/" and "dir/" mean their index.html, never a listing, regular
 * files up to RL_WEBROOT_MAX_FILE, and the opened file must lie under the
 * root once every symlink is resolved.
 * Threading: the root is set up once on the main thread (rl_webroot_init)
 * and read-only after; rl_webroot_open may run on any worker. */
#ifndef RL_WEBROOT_H
#define RL_WEBROOT_H

#include <relay/protocol.h>
#include <stddef.h>
#include <stdint.h>

#define RL_WEBROOT_MAX_FILE (1024u * 1024u) /* bytes: larger files are refused (403) */
#define RL_WEBROOT_MAX_PATH 1024u	    /* decoded request path */
#define RL_WEBROOT_HEAD_MAX 256u	    /* a 200 response head fits */

struct rl_webroot {
	int dirfd;  /* the root directory, -1 when unset */
	char *real; /* its absolute path with every symlink resolved */
	size_t real_len;
};

/* A file to send: an open descriptor (the caller closes it), its size and
 * its Content-Type. */
struct rl_webfile {
	int fd;
	uint64_t size;
	const char *type;
};

/* Opens directory <dir> as the root. 0, or -errno with a one-line reason
 * naming --web-root in <err>. Startup only. */
int rl_webroot_init(struct rl_webroot *r, const char *dir, char *err, size_t errlen);
void rl_webroot_fini(struct rl_webroot *r);

/* Resolves the request path <path> (as received: undecoded, query already
 * cut off). Returns 200 with *<f> filled, or the status to answer with, and
 * *<why> a static reason: 400 a bad percent escape or an empty segment,
 * 403 a "." / ".." segment, a hidden name, a directory (no listing), a file
 * that is not regular or is over RL_WEBROOT_MAX_FILE, or one that resolves
 * outside the root (a symlink), 404 no such file (414 a path over
 * RL_WEBROOT_MAX_PATH). */
unsigned rl_webroot_open(const struct rl_webroot *r, struct relay_span path, struct rl_webfile *f,
			 const char **why);
/* The Content-Type for <name>'s extension (text/html, text/javascript for
 * .js and .mjs, text/css, image/svg+xml, image/png, image/x-icon,
 * application/json, text/plain for .txt; else application/octet-stream). */
const char *rl_webroot_type(const char *name);
/* The 200 response head for <f> (Content-Length, Content-Type,
 * Cache-Control: no-cache, Connection: close). Returns its length, 0 if
 * <cap> is too small (RL_WEBROOT_HEAD_MAX is enough). */
size_t rl_webroot_head(char *out, size_t cap, const struct rl_webfile *f);

#endif
