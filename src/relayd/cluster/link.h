/* link.h -- one connection to the bus (Redis): address parsing, a
 * non-blocking connect, and the socket's input and output buffers. What
 * goes over it is the bridge's business (bridge.c); this file moves bytes.
 * Threading: the bridge thread only (rl_link_addr_parse: main thread). */
#ifndef RL_LINK_H
#define RL_LINK_H

#include "cluster/resp.h"
#include "loop/evloop.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum rl_link_state {
	RL_LINK_DOWN = 0,   /* no socket */
	RL_LINK_CONNECTING, /* connect in progress */
	RL_LINK_OPEN,	    /* connected; bytes flow */
	RL_LINK_NSTATES
};

struct rl_link_addr {
	struct sockaddr_storage sa;
	socklen_t len;
	char text[300]; /* for log lines: "127.0.0.1:6379" or "unix:/run/redis.sock" */
};

/* Parses "redis://HOST[:PORT]" (port 6379 by default; HOST may be a [v6]
 * literal) or "unix:PATH", resolving HOST now. 0, or -EINVAL with a one-line
 * reason in <err>. */
int rl_link_addr_parse(const char *url, struct rl_link_addr *a, char *err, size_t errlen);

struct rl_link {
	uint32_t src; /* evloop tag, set by the owner */
	int fd;	      /* -1 when DOWN */
	enum rl_link_state state;
	const char *name; /* "publish" / "subscribe", for log lines */
	struct rl_buf out;
	struct rl_buf in;
	bool wblocked; /* the socket is full: wait for the next EPOLLOUT */
	bool more;     /* the last read stopped at its budget with bytes left */
};

void rl_link_init(struct rl_link *l, const char *name);
/* Starts connecting to <a> and registers the socket with <loop> (edge
 * triggered, in and out) carrying <l>. 0 (CONNECTING or OPEN) or -errno. */
int rl_link_open(struct rl_link *l, const struct rl_link_addr *a, struct rl_evloop *loop);
/* CONNECTING and the socket reported writable: whether the connect worked.
 * 0 (now OPEN) or -errno. */
int rl_link_connected(struct rl_link *l);
/* Reads what the socket has, up to <max> bytes, into l->in. Returns the
 * bytes read (> 0), -EAGAIN when there is nothing, -ECONNRESET at EOF,
 * -ENOMEM, or another -errno. */
long rl_link_read(struct rl_link *l, size_t max);
/* Writes pending output. Returns 0 (everything written or socket full:
 * see wblocked) or -errno; adds the write calls made to *<writes>. */
int rl_link_flush(struct rl_link *l, uint64_t *writes);
/* Closes the socket (the loop forgets it) and empties both buffers. */
void rl_link_close(struct rl_link *l, struct rl_evloop *loop);

#endif
