/* evloop.h -- the tiny event-loop layer over epoll. Nothing else in relayd
 * calls epoll: protocol and state code see readiness bits only.
 * Threading: one evloop per worker, used by that worker only. */
#ifndef RL_EVLOOP_H
#define RL_EVLOOP_H

#include <stdint.h>

#define RL_EV_IN 0x01u
#define RL_EV_OUT 0x02u
#define RL_EV_ERR 0x04u  /* error or hang-up */
#define RL_EV_EDGE 0x08u /* edge-triggered registration */
#define RL_EV_HUP 0x10u  /* the peer closed its sending side (EOF is queued) */

struct rl_evloop {
	int epfd;
	int cap;
	struct rl_evloop_ready {
		void *ptr;
		uint32_t bits;
	} *ready;
	void *_evs; /* struct epoll_event[cap] */
};

int rl_evloop_init(struct rl_evloop *l, int cap);
void rl_evloop_fini(struct rl_evloop *l);
/* Registers <fd> for <bits> (RL_EV_IN/OUT, optionally EDGE); events come
 * back carrying <ptr>. 0 or -errno. */
int rl_evloop_add(struct rl_evloop *l, int fd, uint32_t bits, void *ptr);
int rl_evloop_del(struct rl_evloop *l, int fd);
/* Waits up to <timeout_ms> (-1: forever). Returns the number of entries
 * filled in l->ready, 0 on timeout or EINTR, -errno on failure. */
int rl_evloop_wait(struct rl_evloop *l, int timeout_ms);

#endif
