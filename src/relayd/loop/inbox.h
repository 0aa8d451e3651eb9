/* inbox.h -- a worker's MPSC inbox: liburcu's wait-free concurrent queue
 * plus an eventfd that wakes the owner's epoll loop, and the backlog in
 * bytes that cross-worker backpressure is decided on.
 * Threading: rl_inbox_push/kick/wait from any registered thread; pop, drain
 * and reset by the owner worker only (single consumer, so the unlocked
 * dequeue is safe). */
#ifndef RL_INBOX_H
#define RL_INBOX_H

#include "base/rcu.h"

#include <stdbool.h>
#include <stdint.h>

enum rl_inbox_kind {
	RL_INBOX_FANOUT = 0, /* struct rl_msg_item: deliver a frame to local room members */
	RL_INBOX_CLUSTER,    /* struct rl_msg_item from the cluster bridge (cluster/) */
	RL_INBOX_NKINDS
};

struct rl_inbox_item {
	struct cds_wfcq_node node;
	uint32_t kind;	/* enum rl_inbox_kind */
	uint32_t bytes; /* charged to the backlog while queued (set by rl_inbox_push) */
};

struct rl_inbox {
	struct __cds_wfcq_head head;
	struct cds_wfcq_tail tail;
	int efd; /* eventfd, non-blocking */
	/* Bytes queued and not yet drained (atomic): producers add each
	 * item's charge as they push it, the owner subtracts once per drain.
	 * A push that finds it above RL_INBOX_HIGH tells its publisher, whose
	 * connection then stops being read until it is below RL_INBOX_LOW:
	 * memory stays bounded when one worker publishes faster than another
	 * delivers, and only the publishers responsible wait. */
	uint64_t pending __attribute__((aligned(64)));
	/* Workers waiting for <pending> to fall below RL_INBOX_LOW, one bit
	 * each (atomic); the owner's drain that takes it below wakes them. */
	uint64_t waiters;
};

#define RL_INBOX_HIGH (8u << 20) /* bytes: pause the publishers that push beyond it */
#define RL_INBOX_LOW (2u << 20)	 /* bytes: below it they resume */
/* Charged per item on top of the frame it references: the item and its
 * share of the message's header. */
#define RL_INBOX_ITEM_BYTES 64u

struct rl_worker;
/* Handles one item on its owner worker <w>; returns the work it did (the
 * members it delivered to, or visited), counted against the drain's budget. */
typedef uint64_t rl_inbox_fn(struct rl_worker *w, struct rl_inbox_item *it);

int rl_inbox_init(struct rl_inbox *ib);
void rl_inbox_fini(struct rl_inbox *ib);
/* Enqueues <it>, charging <bytes> (the frame it references) plus
 * RL_INBOX_ITEM_BYTES to the backlog; writes the eventfd only when the
 * queue was empty, so a burst of pushes costs the consumer one wakeup.
 * Returns true when the backlog is above RL_INBOX_HIGH after this push: the
 * caller should stop feeding it (one atomic add per push, as before). */
bool rl_inbox_push(struct rl_inbox *ib, struct rl_inbox_item *it, uint32_t bytes);
/* rl_inbox_push for a worker pushing during its turn: instead of writing
 * the eventfd, sets *<kick> when the queue was empty, and the caller owes
 * the owner that one rl_inbox_kick, which it makes before it writes its own
 * output and again before it sleeps (loop/worker.c). The owner then wakes
 * once per turn of the pusher and finds the turn's items together, not
 * woken by the first and again by the rest while it drains. */
bool rl_inbox_push_later(struct rl_inbox *ib, struct rl_inbox_item *it, uint32_t bytes,
			 bool *kick);
/* The owner's own push (history: a worker queues a room's message to its
 * own members behind what others queued): charged like rl_inbox_push, but
 * no eventfd write; the owner drains in this turn because it sets its
 * inbox_more itself. */
void rl_inbox_push_own(struct rl_inbox *ib, struct rl_inbox_item *it, uint32_t bytes);
/* Wakes the owner without an item (shutdown, a backlog that fell). */
void rl_inbox_kick(struct rl_inbox *ib);
/* Worker <waiter> (< 64) waits for <ib>'s backlog to fall below
 * RL_INBOX_LOW. Returns true when it already has; otherwise <waiter> is
 * registered and the drain that takes the backlog below the mark reports it
 * (struct rl_inbox_drain.waiters) so its inbox can be kicked. Registering
 * before reading the backlog, against the drain's subtract-then-read, is
 * what makes a lost wakeup impossible. Any thread. */
bool rl_inbox_wait(struct rl_inbox *ib, unsigned waiter);
/* Owner: resets the eventfd. Must precede draining with rl_inbox_pop, or a
 * push between the last pop and the reset would lose its wakeup. */
void rl_inbox_reset(struct rl_inbox *ib);
/* Owner: next item or NULL. */
struct rl_inbox_item *rl_inbox_pop(struct rl_inbox *ib);
/* Owner: items charged <bytes> in all were handled. Returns the waiters to
 * wake (a bit per worker) if that took the backlog below RL_INBOX_LOW,
 * else 0. */
uint64_t rl_inbox_done(struct rl_inbox *ib, uint64_t bytes);

struct rl_inbox_drain {
	uint64_t items;	  /* handled */
	uint64_t work;	  /* what their handlers reported */
	uint64_t waiters; /* rl_inbox_done's: workers to wake */
	bool more;	  /* stopped at a bound with items possibly left */
};
/* Owner: pops and handles items (<fns>[kind](<w>, item)) until the queue
 * is empty, <max_items> were handled, or their work reached <budget>: the
 * item that reaches it is finished, the rest waits for the next call. Then
 * rl_inbox_done for what was handled. Fills <out>. */
void rl_inbox_drain(struct rl_inbox *ib, rl_inbox_fn *const *fns, struct rl_worker *w,
		    uint64_t max_items, uint64_t budget, struct rl_inbox_drain *out);

static inline uint64_t rl_inbox_backlog(const struct rl_inbox *ib)
{
	return __atomic_load_n(&ib->pending, __ATOMIC_RELAXED);
}

#endif
