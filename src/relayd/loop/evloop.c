/* evloop.c -- epoll behind four functions.
 * Threading: owner worker only. */
#include "loop/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

int rl_evloop_init(struct rl_evloop *l, int cap)
{
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd == -1)
		return -errno;
	l->cap = cap;
	l->_evs = calloc((size_t)cap, sizeof(struct epoll_event));
	l->ready = calloc((size_t)cap, sizeof(*l->ready));
	if (!l->_evs || !l->ready) {
		rl_evloop_fini(l);
		return -ENOMEM;
	}
	return 0;
}

void rl_evloop_fini(struct rl_evloop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
	free(l->_evs);
	free(l->ready);
	l->_evs = NULL;
	l->ready = NULL;
}

int rl_evloop_add(struct rl_evloop *l, int fd, uint32_t bits, void *ptr)
{
	struct epoll_event ev = { .data.ptr = ptr };
	if (bits & RL_EV_IN)
		ev.events |= EPOLLIN | EPOLLRDHUP;
	if (bits & RL_EV_OUT)
		ev.events |= EPOLLOUT;
	if (bits & RL_EV_EDGE)
		ev.events |= EPOLLET;
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == -1 ? -errno : 0;
}

int rl_evloop_del(struct rl_evloop *l, int fd)
{
	return epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) == -1 ? -errno : 0;
}

int rl_evloop_wait(struct rl_evloop *l, int timeout_ms)
{
	struct epoll_event *evs = l->_evs;
	int n = epoll_wait(l->epfd, evs, l->cap, timeout_ms);
	if (n == -1)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		uint32_t e = evs[i].events, bits = 0;
		if (e & (EPOLLIN | EPOLLRDHUP))
			bits |= RL_EV_IN;
		if (e & (EPOLLRDHUP | EPOLLHUP))
			bits |= RL_EV_HUP;
		if (e & EPOLLOUT)
			bits |= RL_EV_OUT;
		if (e & (EPOLLERR | EPOLLHUP))
			bits |= RL_EV_ERR;
		l->ready[i].ptr = evs[i].data.ptr;
		l->ready[i].bits = bits;
	}
	return n;
}
