/* listen.h -- the SO_REUSEPORT listening sockets, one per worker.
 * Threading: main thread, before workers start. */
#ifndef RL_LISTEN_H
#define RL_LISTEN_H

#include <stddef.h>
#include <stdint.h>

/* Binds <n> non-blocking SO_REUSEPORT listeners on <host>:<port>. With port
 * 0 the first one picks the port and the others bind to it. On success
 * fills <fds> and *<bound_port> and returns 0; otherwise closes what it
 * opened, writes a one-line reason to <err> and returns -errno. */
int rl_listen_open(const char *host, uint16_t port, int *fds, unsigned n,
		   uint16_t *bound_port, char *err, size_t errlen);

#endif
