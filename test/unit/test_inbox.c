/* test_inbox.c -- the worker inbox (src/relayd/loop/inbox.c): a push into an
 * empty inbox wakes the owner once (rl_inbox_push) or leaves that one kick
 * to the pushing worker (rl_inbox_push_later), the backlog
 * counts bytes as items are pushed, the waiters of a backlog are reported
 * once by the drain that takes it below the low mark, and a drain stops at
 * its item bound or its delivery budget, finishing the item that crossed it.
 * Threading: single-threaded (the queue's concurrency is liburcu's). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <unistd.h>

#include "loop/inbox.h"

#define NI 4096

static struct rl_inbox ib;
static struct rl_inbox_item items[NI];
static uint64_t handled, work_per_item;

static uint64_t count(struct rl_worker *w, struct rl_inbox_item *it)
{
	(void)w;
	cr_assert_eq(it, &items[handled], "items come out in push order");
	handled++;
	return work_per_item;
}

static rl_inbox_fn *const fns[RL_INBOX_NKINDS] = {[RL_INBOX_FANOUT] = count};

static void setup(void)
{
	cr_assert_eq(rl_inbox_init(&ib), 0);
	handled = 0;
	work_per_item = 1;
}

static void teardown(void)
{
	rl_inbox_fini(&ib);
}

TestSuite(inbox, .init = setup, .fini = teardown);

static void push(unsigned n, uint32_t bytes)
{
	for (unsigned i = 0; i < n; i++) {
		items[i].kind = RL_INBOX_FANOUT;
		rl_inbox_push(&ib, &items[i], bytes);
	}
}

Test(inbox, the_backlog_counts_the_bytes_of_each_item_as_it_is_pushed)
{
	const uint32_t frame = 64 * 1024;
	unsigned i = 0;
	bool full = false;
	for (; i < NI && !full; i++) {
		items[i].kind = RL_INBOX_FANOUT;
		full = rl_inbox_push(&ib, &items[i], frame);
		cr_assert_eq(rl_inbox_backlog(&ib),
			     (uint64_t)(i + 1) * (frame + RL_INBOX_ITEM_BYTES));
	}
	/* The push that went over the high mark says so, not a later check. */
	cr_assert(full);
	cr_assert_eq(i, RL_INBOX_HIGH / (frame + RL_INBOX_ITEM_BYTES) + 1, "full after %u pushes",
		     i);
	struct rl_inbox_drain d;
	rl_inbox_drain(&ib, fns, NULL, NI, UINT64_MAX, &d);
	cr_assert_eq(d.items, i);
	cr_assert_not(d.more);
	cr_assert_eq(rl_inbox_backlog(&ib), 0);
}

Test(inbox, small_items_are_charged_their_overhead)
{
	push(10, 0);
	cr_assert_eq(rl_inbox_backlog(&ib), 10 * RL_INBOX_ITEM_BYTES);
}

Test(inbox, a_drain_stops_at_its_delivery_budget_and_finishes_the_item_that_crossed_it)
{
	push(100, 100);
	work_per_item = 1000; /* a room with 1000 members on this worker */
	struct rl_inbox_drain d;
	rl_inbox_drain(&ib, fns, NULL, NI, 65536, &d);
	/* 65 items make 65,000 deliveries; the 66th crosses the budget and is finished. */
	cr_assert_eq(d.items, 66);
	cr_assert_eq(d.work, 66000);
	cr_assert(d.more);
	cr_assert_eq(rl_inbox_backlog(&ib), 34 * (100 + RL_INBOX_ITEM_BYTES),
		     "only what was handled leaves the backlog");
	rl_inbox_drain(&ib, fns, NULL, NI, 65536, &d);
	cr_assert_eq(d.items, 34);
	cr_assert_not(d.more);
	cr_assert_eq(handled, 100);
}

Test(inbox, a_drain_stops_at_its_item_bound)
{
	push(100, 100);
	work_per_item = 0;
	struct rl_inbox_drain d;
	rl_inbox_drain(&ib, fns, NULL, 40, 65536, &d);
	cr_assert_eq(d.items, 40);
	cr_assert(d.more);
	rl_inbox_drain(&ib, fns, NULL, 40, 65536, &d);
	rl_inbox_drain(&ib, fns, NULL, 40, 65536, &d);
	cr_assert_eq(d.items, 20);
	cr_assert_not(d.more);
}

Test(inbox, waiters_are_reported_once_by_the_drain_that_takes_the_backlog_below_low)
{
	const uint32_t frame = 1024 * 1024 - RL_INBOX_ITEM_BYTES; /* 1 MiB charged each */
	push(10, frame);
	cr_assert_not(rl_inbox_wait(&ib, 3), "10 MiB queued: not below the low mark");
	cr_assert_not(rl_inbox_wait(&ib, 5));
	struct rl_inbox_drain d;
	rl_inbox_drain(&ib, fns, NULL, 7, UINT64_MAX, &d); /* 3 MiB left: still >= low */
	cr_assert_eq(d.waiters, 0);
	rl_inbox_drain(&ib, fns, NULL, 2, UINT64_MAX, &d); /* 1 MiB left */
	cr_assert_eq(d.waiters, (1ull << 3) | (1ull << 5));
	rl_inbox_drain(&ib, fns, NULL, 1, UINT64_MAX, &d);
	cr_assert_eq(d.waiters, 0, "reported once");
	cr_assert(rl_inbox_wait(&ib, 3), "empty: below the low mark");
}

/* Whether the eventfd was written since the last reset (and resets it). */
static bool signalled(void)
{
	uint64_t v;
	return read(ib.efd, &v, sizeof(v)) == (ssize_t)sizeof(v);
}

Test(inbox, a_push_into_an_empty_inbox_wakes_its_owner)
{
	items[0].kind = items[1].kind = RL_INBOX_FANOUT;
	rl_inbox_push(&ib, &items[0], 8);
	cr_assert(signalled(), "the first push writes the eventfd");
	rl_inbox_push(&ib, &items[1], 8);
	cr_assert_not(signalled(), "a push behind another costs the owner no second wakeup");
}

/* A worker's pushes during its turn: no eventfd write, the first into an
 * empty inbox says the pusher owes the kick, the rest do not. */
Test(inbox, a_push_later_leaves_the_one_kick_to_the_pusher)
{
	bool kick = false;
	for (unsigned i = 0; i < 3; i++) {
		items[i].kind = RL_INBOX_FANOUT;
		cr_assert_not(rl_inbox_push_later(&ib, &items[i], 8, &kick));
		cr_assert_eq(kick, i == 0, "push %u: kick owed %d", i, kick);
	}
	cr_assert_not(signalled(), "rl_inbox_push_later wrote the eventfd");
	cr_assert_eq(rl_inbox_backlog(&ib), 3 * (8 + RL_INBOX_ITEM_BYTES));
	struct rl_inbox_drain d;
	rl_inbox_drain(&ib, fns, NULL, NI, UINT64_MAX, &d);
	cr_assert_eq(d.items, 3);
	/* Drained empty: the next push is the first again. */
	items[3].kind = RL_INBOX_FANOUT;
	rl_inbox_push_later(&ib, &items[3], 8, &kick);
	cr_assert(kick);
	rl_inbox_kick(&ib);
	cr_assert(signalled());
}
