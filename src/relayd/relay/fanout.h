/* fanout.h -- delivering one encoded frame to every member of a room.
 * Local members get the shared rl_msg queued in place; each other worker
 * that has members gets one inbox item (embedded in the message) and
 * delivers to its own members when it drains its inbox. Per-sender order
 * holds because each inbox is FIFO and each worker appends in order.
 * Threading: the publishing worker (RCU online, holding a membership of the
 * room or a reference to it); rl_fanout_item on the receiving worker. */
#ifndef RL_FANOUT_H
#define RL_FANOUT_H

#include "net/msg.h"

struct rl_worker;
struct rl_room;
struct rl_conn;

/* Queues <m> to every member of <r> except <skip> (may be NULL). The caller
 * keeps its own reference to <m>. A message is published once. The local
 * members visited count against the turn's budget (<w>->fanout_work,
 * RL_WORKER_FANOUT_BUDGET). Returns a
 * worker whose inbox is above RL_INBOX_HIGH after this push (the publishing
 * connection should pause: rl_conn_pause), or -1. */
int rl_fanout_publish(struct rl_worker *w, struct rl_room *r, struct rl_msg *m,
		      const struct rl_conn *skip);
/* An RL_INBOX_FANOUT item arrived at worker <w> (rl_inbox_fn, registered
 * with rl_worker_set_inbox_handler). Returns the members visited. */
uint64_t rl_fanout_item(struct rl_worker *w, struct rl_inbox_item *it);
/* A message's last reference went (rl_msg_release_fn, installed with
 * rl_msg_set_release): drops the room reference a cross-worker publish
 * took, and for a timed MESSAGE records read -> queued-to-every-member in
 * the calling worker's fan-out latency histogram (ops/metrics.h). */
void rl_fanout_msg_release(struct rl_msg *m);

#endif
