/* test_sockopt.c -- socket options for accepted sockets
 * (src/relayd/net/sockopt.c), read back with getsockopt on a real TCP
 * loopback connection (127.0.0.1, ephemeral port).
 * Threading: single-threaded tests. */
#include <criterion/criterion.h>

#include "net/sockopt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

/* The server side of a loopback TCP connection, as relayd accepts it. */
struct pair {
	int lfd, cfd, sfd;
};

static void pair_open(struct pair *p)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_neq(p->lfd, -1);
	cr_assert_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(p->lfd, 1), 0);
	cr_assert_eq(getsockname(p->lfd, (struct sockaddr *)&a, &len), 0);
	p->cfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_neq(p->cfd, -1);
	cr_assert_eq(connect(p->cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	p->sfd = accept(p->lfd, NULL, NULL);
	cr_assert_neq(p->sfd, -1);
}

static void pair_close(struct pair *p)
{
	close(p->sfd);
	close(p->cfd);
	close(p->lfd);
}

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);
	cr_assert_eq(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

static void expect_keepalive(int fd, int idle, int intvl, int cnt)
{
	cr_assert_eq(opt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	cr_assert_eq(opt(fd, IPPROTO_TCP, TCP_KEEPIDLE), idle);
	cr_assert_eq(opt(fd, IPPROTO_TCP, TCP_KEEPINTVL), intvl);
	cr_assert_eq(opt(fd, IPPROTO_TCP, TCP_KEEPCNT), cnt);
}

Test(sockopt, keepalive_sets_idle_interval_and_probes)
{
	struct pair p;
	pair_open(&p);
	cr_assert_eq(opt(p.sfd, SOL_SOCKET, SO_KEEPALIVE), 0, "off on a fresh socket");
	cr_assert_eq(rl_sock_keepalive(p.sfd, 60), 0);
	expect_keepalive(p.sfd, 60, 20, 3);
	cr_assert_eq(rl_sock_keepalive(p.sfd, 300), 0);
	expect_keepalive(p.sfd, 300, 100, 3);
	pair_close(&p);
}

Test(sockopt, keepalive_0_turns_it_off)
{
	struct pair p;
	pair_open(&p);
	cr_assert_eq(rl_sock_keepalive(p.sfd, 60), 0);
	cr_assert_eq(rl_sock_keepalive(p.sfd, 0), 0);
	cr_assert_eq(opt(p.sfd, SOL_SOCKET, SO_KEEPALIVE), 0);
	pair_close(&p);
}

Test(sockopt, keepalive_interval_is_at_least_1s_and_idle_at_most_the_kernel_max)
{
	struct pair p;
	pair_open(&p);
	cr_assert_eq(rl_sock_keepalive(p.sfd, 1), 0);
	expect_keepalive(p.sfd, 1, 1, 3);
	cr_assert_eq(rl_sock_keepalive(p.sfd, 2), 0);
	expect_keepalive(p.sfd, 2, 1, 3);
	cr_assert_eq(rl_sock_keepalive(p.sfd, 100000), 0);
	expect_keepalive(p.sfd, (int)RL_SOCK_KEEPALIVE_MAX, (int)RL_SOCK_KEEPALIVE_MAX / 3, 3);
	pair_close(&p);
}

Test(sockopt, keepalive_on_a_non_tcp_socket_is_an_error)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int rc = rl_sock_keepalive(sv[0], 60);
	cr_assert_lt(rc, 0, "TCP_KEEPIDLE on a unix socket: %d", rc);
	cr_assert_eq(rl_sock_keepalive(sv[0], 0), 0, "turning it off is fine anywhere");
	close(sv[0]);
	close(sv[1]);
}
