/* budget.h -- the client memory budget (--max-client-memory, in the spirit
 * of Redis's maxmemory-clients): one accounted total of what clients make
 * the server hold -- bytes queued for them, the buffers of their partial
 * frames, frames waiting in cross-worker inboxes -- and what happens past it.
 * Threading: each worker keeps its share in its own counters slot (single
 * writer, base/stats.h) and each inbox its backlog in bytes (loop/inbox.h);
 * rl_budget_client_mem sums them; a worker sums the
 * slots at most once per loop turn (once a millisecond while under the
 * budget and its own share is steady) and acts only on its own connections. Nothing is
 * added to the delivery path: no shared atomic per frame or per member. */
#ifndef RL_BUDGET_H
#define RL_BUDGET_H

#include <stdint.h>

struct rl_worker;

/* The loop turn's budget step, after the flush step (what is still queued
 * then is what the sockets did not take). Owner worker <w>.
 *  - Over the budget, <w>->mem_over: conn.c stops reading connections that
 *    have a large partial frame buffered (held, not closed: their buffers
 *    stop growing). <w>'s largest output queues are dropped
 *    (SLOW_CONSUMER), largest first, until <w>'s share of the excess (and
 *    a margin) is freed: a scan of <w>'s connections, at most every 10 ms
 *    unless the total grew by 1/16 of the budget since the last one.
 *  - At or under 7/8 of the budget again: the held connections are read.
 *  - After a storm of drops (budget or hard-limit slow consumers, closes
 *    that freed queues or partial frames), at most once a second: the
 *    worker's segment pool and malloc's free pages go back to the system. */
void rl_budget_turn(struct rl_worker *w);

/* Partial-frame buffers of <w>'s connections just grew, inside a loop turn
 * (conn.c, after a read). Under the budget, and once <w>'s own share grew
 * by 1/16 of the budget since the last sum, sums again and sets
 * <w>->mem_over when the total is past the budget, so that the rest of the
 * turn already holds the large partial frames instead of reading on until
 * the turn's budget step (one turn of a busy worker reads megabytes).
 * Holds only: dropping queues stays with rl_budget_turn. Owner worker <w>. */
void rl_budget_tails_grew(struct rl_worker *w);

/* The accounted total: bytes queued for clients + partial frames' buffers
 * (every worker's counters slot) + bytes waiting in every worker's inbox;
 * *<out_queued> (may be NULL) gets the first part alone. A handful of
 * relaxed loads per worker. Any thread, once the workers exist. */
uint64_t rl_budget_client_mem(uint64_t *out_queued);

#endif
