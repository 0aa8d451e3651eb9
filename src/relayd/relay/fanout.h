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
#include "relay/history.h"

struct rl_worker;
struct rl_room;
struct rl_conn;

/* Queues <m> to every member of <r> except <skip> (may be NULL). The caller
 * keeps its own reference to <m>. Seals <m> first (rl_msg_seal: its
 * WebSocket encoding, before any other worker sees it; with history, after
 * its seq is written). A message is published once. With history
 * on, the room's frames go out in one order (see rl_fanout_publish_seq);
 * <m> takes no seq (presence events). Returns a worker whose inbox is above
 * RL_INBOX_HIGH after this push (the publishing connection should pause:
 * rl_conn_pause), or -1. The local members visited count against the
 * turn's budget (<w>->fanout_work, RL_WORKER_FANOUT_BUDGET). */
int rl_fanout_publish(struct rl_worker *w, struct rl_room *r, struct rl_msg *m,
		      const struct rl_conn *skip);
/* Queues <m> (m->room set, with a reference) to worker <w>'s own members
 * of that room, no one skipped: the cluster bridge's deliveries, which
 * arrive as RL_INBOX_CLUSTER items (cluster/). The caller keeps its own
 * reference to <m>. Owner worker <w>. Returns the members visited (the
 * inbox drain's budget). */
uint64_t rl_fanout_deliver(struct rl_worker *w, struct rl_msg *m);
/* History on: a MESSAGE. In one step under the room lock, <m> takes the
 * room's next seq (written into the frame as <form>/<seq_at> say, see
 * rl_hist_append), is stored, and is queued to every worker with members
 * (the publisher's own included, so every worker's inbox holds the room's
 * frames in seq order). Stored even when nobody receives it. Returns as
 * rl_fanout_publish. */
int rl_fanout_publish_seq(struct rl_worker *w, struct rl_room *r, struct rl_msg *m,
			  const struct rl_conn *skip, enum rl_hist_form form, uint32_t seq_at);
/* An RL_INBOX_FANOUT item arrived at worker <w> (rl_inbox_fn, registered
 * with rl_worker_set_inbox_handler). Returns the members visited. */
uint64_t rl_fanout_item(struct rl_worker *w, struct rl_inbox_item *it);
/* A message's last reference went (rl_msg_release_fn, installed with
 * rl_msg_set_release): drops the room reference a cross-worker publish
 * took, and for a timed MESSAGE records read -> queued-to-every-member in
 * the calling worker's fan-out latency histogram (ops/metrics.h). */
void rl_fanout_msg_release(struct rl_msg *m);

#endif
