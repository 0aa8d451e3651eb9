/* sockopt.h -- socket options for accepted client sockets.
 * Threading: any thread; touches only the given socket. */
#ifndef RL_SOCKOPT_H
#define RL_SOCKOPT_H

/* Longest keepalive idle time the kernel takes (MAX_TCP_KEEPIDLE). */
#define RL_SOCK_KEEPALIVE_MAX 32767u

/* TCP keepalive on <fd>: <secs> 0 turns it off; otherwise the first probe
 * goes after <secs> idle seconds (at most RL_SOCK_KEEPALIVE_MAX), then one
 * every max(1, secs/3) seconds, and 3 unanswered probes reset the
 * connection -- Redis's scheme, so a dead peer is found within about twice
 * <secs>. 0 or -errno (e.g. -ENOPROTOOPT on a socket that is not TCP; the
 * options set before the failing one stay set). */
int rl_sock_keepalive(int fd, unsigned secs);

#endif
