/* fanout.c -- room fan-out, local and cross-worker. Threading: see fanout.h. */
#include "relay/fanout.h"

#include "base/clock.h"
#include "base/log.h"
#include "net/conn.h"
#include "ops/metrics.h"
#include "relay/history.h"
#include "relay/room.h"
#include "loop/worker.h"

#include <errno.h>

/* Counters are added once per message, not per member. The queued-bytes
 * gauge is raised for every member up front and lowered for those that did
 * not take the frame, so a slow consumer dropped inside the loop (which
 * lowers it by what it loses) never drives it below zero for a reader.
 * A member that this very frame made a slow consumer (-ENOBUFS) did not get
 * it either, but the drop already lowered the gauge by it. Returns the
 * members visited (the inbox drain's budget). */
static uint64_t fanout_local(struct rl_worker *w, struct rl_room *r, struct rl_msg *m,
			     const struct rl_conn *skip)
{
	uint32_t n;
	const struct rl_member *mem = rl_room_local(r, w->id, &n);
	uint64_t delivered = 0, dropped = 0;
	/* rl_conn_deliver_quick's bound, the same for every member. */
	uint64_t high = m->len <= RL_COPY_MAX && !rl_log_on(RL_LOG_DEBUG) ? RL_CFG(out_high) : 0;

	RL_STAT_ADD(w->stats, out_queued, (uint64_t)n * m->len);
	for (uint32_t i = 0; i < n; i++) {
		struct rl_conn *c = mem[i].who;
		if (rl_room_joined_after(mem[i].seq, m->seq))
			continue; /* joined after the publish */
		if (c == skip)
			continue;
		if (rl_conn_deliver_quick(c, m, high)) {
			delivered++;
			continue;
		}
		int rc = rl_conn_deliver(c, m);
		if (rc == 0)
			delivered++;
		else if (rc == -ENOBUFS)
			dropped++;
	}
	RL_STAT_SUB(w->stats, out_queued, (n - delivered - dropped) * m->len);
	RL_STAT_ADD(w->stats, msgs_delivered, delivered);
	RL_STAT_ADD(w->stats, frames_out, delivered);
	return n;
}

/* One inbox item of <m> to each worker of <mask>. The publisher's own
 * worker <w> (history only) takes its item without a wakeup: it drains its
 * inbox later in this turn. Returns a worker whose inbox is above
 * RL_INBOX_HIGH after the push (the publisher should pause), or -1. */
static int fanout_queue(struct rl_worker *w, struct rl_msg *m, uint64_t mask)
{
	int full = -1;
	while (mask) {
		unsigned b = (unsigned)__builtin_ctzll(mask);
		mask &= mask - 1;
		struct rl_msg_item *it = &m->items[b];
		it->ib.kind = RL_INBOX_FANOUT;
		it->msg = m;
		rl_msg_get(m);
		if (b == w->id) {
			rl_inbox_push_own(&w->inbox, &it->ib, m->len);
			w->inbox_more = true;
		} else {
			bool kick;
			if (rl_inbox_push_later(&rl_srv.workers[b].inbox, &it->ib, m->len, &kick))
				full = (int)b;
			if (kick)
				w->kick_owed |= 1ull << b;
		}
	}
	return full;
}

/* Whether <skip> is worker <w>'s only member of <r> (then <w> needs no item). */
static bool fanout_only_member(const struct rl_worker *w, const struct rl_room *r,
			       const struct rl_conn *skip)
{
	uint32_t n;
	const struct rl_member *mem = rl_room_local(r, w->id, &n);
	return skip && n == 1 && mem[0].who == skip;
}

/* A room with history: one order per room. Under the room lock, the message
 * takes its seq (a MESSAGE: <form> says where it goes in the frame), is
 * stored, and is queued to every worker with members -- the publisher's own
 * too, behind what other publishers queued there before -- so inbox order
 * is seq order on every worker. Nothing is delivered in place. */
static int fanout_ordered(struct rl_worker *w, struct rl_room *r, struct rl_msg *m,
			  const struct rl_conn *skip, enum rl_hist_form form, uint32_t seq_at)
{
	struct rl_hist *h = rl_room_hist(r);
	uint64_t self = 1ull << w->id;

	m->skip = skip;
	rl_room_get(r); /* the message's, stored or queued; dropped on release */
	m->room = r;
	rl_hist_lock(h);
	if (form != RL_HIST_NONE)
		rl_hist_append(h, m, form, seq_at, w->stats);
	rl_msg_seal(m); /* after the seq went into the frame: its length is final */
	m->seq = rl_room_seq(r);
	uint64_t mask = rl_room_workers(r);
	if ((mask & self) && fanout_only_member(w, r, skip))
		mask &= ~self;
	m->pending = (uint32_t)__builtin_popcountll(mask);
	if (!mask)
		m->t_read_ns = 0; /* nobody to deliver to: not a fan-out sample */
	int full = fanout_queue(w, m, mask);
	rl_hist_unlock(h);
	return full;
}

int rl_fanout_publish_seq(struct rl_worker *w, struct rl_room *r, struct rl_msg *m,
			  const struct rl_conn *skip, enum rl_hist_form form, uint32_t seq_at)
{
	return fanout_ordered(w, r, m, skip, form, seq_at);
}

int rl_fanout_publish(struct rl_worker *w, struct rl_room *r, struct rl_msg *m,
		      const struct rl_conn *skip)
{
	if (rl_history_on())
		return fanout_ordered(w, r, m, skip, RL_HIST_NONE, 0);
	uint64_t self = 1ull << w->id;
	rl_msg_seal(m); /* the WebSocket encoding, once, before anyone else sees m */
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
	return fanout_queue(w, m, mask);
}

uint64_t rl_fanout_deliver(struct rl_worker *w, struct rl_msg *m)
{
	return fanout_local(w, m->room, m, NULL);
}

static void fanout_observe(const struct rl_msg *m)
{
	if (m->t_read_ns && rl_log_worker >= 0) /* rl_log_worker: this thread's worker index */
		rl_metrics_fanout_observe(rl_metrics_worker((unsigned)rl_log_worker),
					  rl_clock_ns() - m->t_read_ns);
}

uint64_t rl_fanout_item(struct rl_worker *w, struct rl_inbox_item *it)
{
	struct rl_msg_item *mi = caa_container_of(it, struct rl_msg_item, ib);
	struct rl_msg *m = mi->msg;

	uint64_t n = fanout_local(w, m->room, m, m->skip);
	/* History keeps messages after delivery: the sample is taken when the
	 * last worker has queued it, not at the last put. */
	if (__atomic_load_n(&m->pending, __ATOMIC_RELAXED) &&
	    __atomic_sub_fetch(&m->pending, 1, __ATOMIC_ACQ_REL) == 0) {
		fanout_observe(m);
		m->t_read_ns = 0;
	}
	rl_msg_put(m);
	return n;
}

void rl_fanout_msg_release(struct rl_msg *m)
{
	fanout_observe(m);
	if (m->room)
		rl_room_put(m->room);
}
