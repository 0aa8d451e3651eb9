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

/* Queues <m> to every member of <r> except <skip> (may be NULL). Seals <m>
 * first (rl_msg_seal: its WebSocket encoding, before any other worker sees
 * it). The caller keeps its own reference to <m>. A message is published
 * once. */
void rl_fanout_publish(struct rl_worker *w, struct rl_room *r, struct rl_msg *m,
		       const struct rl_conn *skip);
/* An RL_INBOX_FANOUT item arrived at worker <w> (rl_inbox_fn, registered
 * with rl_worker_set_inbox_handler). */
void rl_fanout_item(struct rl_worker *w, struct rl_inbox_item *it);
/* A message's last reference went (rl_msg_release_fn, installed with
 * rl_msg_set_release): drops the room reference a cross-worker publish
 * took, and for a timed MESSAGE records read -> queued-to-every-member in
 * the calling worker's fan-out latency histogram (ops/metrics.h). */
void rl_fanout_msg_release(struct rl_msg *m);

#endif
