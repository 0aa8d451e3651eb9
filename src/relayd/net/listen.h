/* listen.h -- the listening sockets: for each kind of listener (plain TCP
 * today; TLS and WebSocket later) one SO_REUSEPORT socket per worker, all on
 * one port. Threading: main thread, before workers start. */
#ifndef RL_LISTEN_H
#define RL_LISTEN_H

#include "base/options.h"

#include <stddef.h>
#include <stdint.h>

struct rl_transport;

/* One kind of listener: where it binds and what its connections speak. */
struct rl_listen_spec {
	/* in */
	const char *name;              /* kind, static: "tcp" */
	const char *host;              /* as given to --host */
	uint16_t port;                 /* 0: the first socket picks, the others follow */
	const struct rl_transport *tp; /* for rl_worker_listen */
	/* out, on success */
	uint16_t bound_port;
	int fds[RL_MAX_WORKERS];       /* fds[k] is worker k's socket */
};

/* Binds <nworkers> non-blocking SO_REUSEPORT listeners for each of the
 * <nspecs> entries of <specs>, in order. A fixed port is probed first, so a
 * port someone already listens on fails here instead of joining their
 * reuseport group. On success fills each spec's <fds> and <bound_port> and
 * returns 0; otherwise closes everything it opened (of every spec), writes a
 * one-line reason to <err> and returns -errno. */
int rl_listen_open(struct rl_listen_spec *specs, unsigned nspecs, unsigned nworkers, char *err,
		   size_t errlen);

#endif
