/* inbox.h -- a worker's MPSC inbox: liburcu's wait-free concurrent queue
 * plus an eventfd that wakes the owner's epoll loop.
 * Threading: rl_inbox_push/kick from any registered thread; pop/reset by the
 * owner worker only (single consumer, so the unlocked dequeue is safe). */
#ifndef RL_INBOX_H
#define RL_INBOX_H

#include "base/rcu.h"

#include <stdbool.h>
#include <stdint.h>

enum rl_inbox_kind {
	RL_INBOX_FANOUT = 0, /* struct rl_msg_item: deliver a frame to local room members */
	RL_INBOX_NKINDS
};

struct rl_inbox_item {
	struct cds_wfcq_node node;
	uint32_t kind; /* enum rl_inbox_kind */
};

struct rl_inbox {
	struct __cds_wfcq_head head;
	struct cds_wfcq_tail tail;
	int efd; /* eventfd, non-blocking */
	/* Items pushed and not yet drained (atomic; producers add, the owner
	 * subtracts per batch). Publishers stop reading their clients while a
	 * peer's backlog is above RL_INBOX_HIGH: memory stays bounded when one
	 * worker publishes faster than another can deliver. */
	uint64_t pending __attribute__((aligned(64)));
};

#define RL_INBOX_HIGH 65536u

int rl_inbox_init(struct rl_inbox *ib);
void rl_inbox_fini(struct rl_inbox *ib);
/* Enqueues <it>; writes the eventfd only when the queue was empty, so a
 * burst of pushes costs the consumer one wakeup. */
void rl_inbox_push(struct rl_inbox *ib, struct rl_inbox_item *it);
/* The owner's own push (history: a worker queues a room's message to its
 * own members behind what others queued): no eventfd write; the owner
 * drains in this turn because it sets its inbox_more itself. */
void rl_inbox_push_own(struct rl_inbox *ib, struct rl_inbox_item *it);
/* Wakes the owner without an item (shutdown). */
void rl_inbox_kick(struct rl_inbox *ib);
/* Owner: resets the eventfd. Must precede draining with rl_inbox_pop, or a
 * push between the last pop and the reset would lose its wakeup. */
void rl_inbox_reset(struct rl_inbox *ib);
/* Owner: next item or NULL. */
struct rl_inbox_item *rl_inbox_pop(struct rl_inbox *ib);
/* Owner: <n> items were handled. */
static inline void rl_inbox_done(struct rl_inbox *ib, uint64_t n)
{
	__atomic_sub_fetch(&ib->pending, n, __ATOMIC_RELAXED);
}
static inline uint64_t rl_inbox_backlog(const struct rl_inbox *ib)
{
	return __atomic_load_n(&ib->pending, __ATOMIC_RELAXED);
}

#endif
