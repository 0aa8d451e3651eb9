/* fanout.c -- room fan-out, local and cross-worker. Threading: see fanout.h. */
#include "relay/fanout.h"

#include "base/clock.h"
#include "net/conn.h"
#include "ops/metrics.h"
#include "relay/room.h"
#include "loop/worker.h"

/* Counters are added once per message, not per member. The queued-bytes
 * gauge is raised for every member up front and lowered for those that did
 * not take the frame, so a slow consumer dropped inside the loop (which
 * lowers it by what it loses) never drives it below zero for a reader. */
static uint64_t fanout_local(struct rl_worker *w, struct rl_room *r, struct rl_msg *m,
			     const struct rl_conn *skip)
{
	uint32_t n;
	const struct rl_member *mem = rl_room_local(r, w->id, &n);
	uint64_t delivered = 0;

	RL_STAT_ADD(w->stats, out_queued, (uint64_t)n * m->len);
	for (uint32_t i = 0; i < n; i++) {
		struct rl_conn *c = mem[i].who;
		if (rl_room_joined_after(mem[i].seq, m->seq))
			continue; /* joined after the publish */
		if (c != skip && rl_conn_deliver(c, m) == 0)
			delivered++;
	}
	RL_STAT_SUB(w->stats, out_queued, (n - delivered) * m->len);
	RL_STAT_ADD(w->stats, msgs_delivered, delivered);
	RL_STAT_ADD(w->stats, frames_out, delivered);
	return n;
}

int rl_fanout_publish(struct rl_worker *w, struct rl_room *r, struct rl_msg *m,
		      const struct rl_conn *skip)
{
	uint64_t self = 1ull << w->id;
	int full = -1;
	m->seq = rl_room_seq(r);
	uint64_t mask = rl_room_workers(r);

	if (mask & self) /* counted against the turn's budget (conn.c stops parsing) */
		w->fanout_work += fanout_local(w, r, m, skip);
	mask &= ~self;
	if (!mask)
		return -1;
	/* One room reference for all the items: whoever drops the message's
	 * last reference drops it. */
	rl_room_get(r);
	m->room = r;
	while (mask) {
		unsigned b = (unsigned)__builtin_ctzll(mask);
		mask &= mask - 1;
		struct rl_msg_item *it = &m->items[b];
		it->ib.kind = RL_INBOX_FANOUT;
		it->msg = m;
		rl_msg_get(m);
		if (rl_inbox_push(&rl_srv.workers[b].inbox, &it->ib, m->len))
			full = (int)b;
	}
	return full;
}

uint64_t rl_fanout_item(struct rl_worker *w, struct rl_inbox_item *it)
{
	struct rl_msg_item *mi = caa_container_of(it, struct rl_msg_item, ib);
	struct rl_msg *m = mi->msg;

	uint64_t n = fanout_local(w, m->room, m, NULL);
	rl_msg_put(m);
	return n;
}

void rl_fanout_msg_release(struct rl_msg *m)
{
	if (m->t_read_ns && rl_log_worker >= 0) /* rl_log_worker: this thread's worker index */
		rl_metrics_fanout_observe(rl_metrics_worker((unsigned)rl_log_worker),
					  rl_clock_ns() - m->t_read_ns);
	if (m->room)
		rl_room_put(m->room);
}
