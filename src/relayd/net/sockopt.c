/* sockopt.c -- socket options for accepted client sockets.
 * Threading: see sockopt.h. */
#include "net/sockopt.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define SOCK_KEEPALIVE_PROBES 3

static int sock_set(int fd, int level, int name, int v)
{
	return setsockopt(fd, level, name, &v, sizeof(v)) == -1 ? -errno : 0;
}

int rl_sock_keepalive(int fd, unsigned secs)
{
	if (secs == 0)
		return sock_set(fd, SOL_SOCKET, SO_KEEPALIVE, 0);
	if (secs > RL_SOCK_KEEPALIVE_MAX)
		secs = RL_SOCK_KEEPALIVE_MAX;
	unsigned intvl = secs / 3 ? secs / 3 : 1;
	int rc = sock_set(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	if (rc == 0)
		rc = sock_set(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)secs);
	if (rc == 0)
		rc = sock_set(fd, IPPROTO_TCP, TCP_KEEPINTVL, (int)intvl);
	if (rc == 0)
		rc = sock_set(fd, IPPROTO_TCP, TCP_KEEPCNT, SOCK_KEEPALIVE_PROBES);
	return rc;
}
