/* test_timer.c -- deadline-ordered timer lists (src/relayd/loop/timer.c):
 * order, re-arming, disabled and deadline lists, the per-call bound, the
 * next deadline. Threading: single-threaded. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "loop/timer.h"

#define NT (RL_TIMER_EXPIRE_MAX + 10)

/* Every expiry is logged as (list arg, timer index) and disarms the timer,
 * as the contract asks. */
static struct rl_timer tm[NT];
static struct {
	int list, idx;
} fired[NT];
static int nfired;

static void record(struct rl_timer *t, void *arg)
{
	fired[nfired].list = (int)(intptr_t)arg;
	fired[nfired].idx = (int)(t - tm);
	nfired++;
	rl_timer_disarm(t);
}

static void setup(void)
{
	for (int i = 0; i < NT; i++)
		rl_timer_init(&tm[i]);
	nfired = 0;
}

TestSuite(timer, .init = setup);

Test(timer, entries_expire_in_arming_order)
{
	uint64_t timeout = 100;
	struct rl_timer_list l;
	rl_timer_list_init(&l, &timeout, record, (void *)1);
	rl_timer_arm(&l, &tm[2], 10);
	rl_timer_arm(&l, &tm[0], 20);
	rl_timer_arm(&l, &tm[1], 30);

	rl_timers_run(&l, 1, 125); /* deadlines 110, 120 due; 130 not */
	cr_assert_eq(nfired, 2);
	cr_assert_eq(fired[0].idx, 2);
	cr_assert_eq(fired[1].idx, 0);
	cr_assert_eq(fired[0].list, 1, "the list's arg reaches the callback");
	cr_assert(rl_timer_armed(&tm[1]));
	cr_assert_not(rl_timer_armed(&tm[0]));
}

Test(timer, an_entry_is_due_at_its_deadline_not_before)
{
	uint64_t timeout = 100;
	struct rl_timer_list l;
	rl_timer_list_init(&l, &timeout, record, NULL);
	rl_timer_arm(&l, &tm[0], 50);

	rl_timers_run(&l, 1, 149);
	cr_assert_eq(nfired, 0);
	rl_timers_run(&l, 1, 150);
	cr_assert_eq(nfired, 1);
}

Test(timer, rearming_moves_the_entry_to_the_tail)
{
	uint64_t timeout = 100;
	struct rl_timer_list l;
	rl_timer_list_init(&l, &timeout, record, NULL);
	rl_timer_arm(&l, &tm[0], 10);
	rl_timer_arm(&l, &tm[1], 20);
	rl_timer_arm(&l, &tm[0], 30); /* activity: tm[0] starts over */

	cr_assert_eq(rl_timers_next(&l, 1, 100), 20, "the head is tm[1] now (deadline 120)");
	rl_timers_run(&l, 1, 125);
	cr_assert_eq(nfired, 1);
	cr_assert_eq(fired[0].idx, 1);
	rl_timers_run(&l, 1, 130);
	cr_assert_eq(nfired, 2);
	cr_assert_eq(fired[1].idx, 0);
}

Test(timer, rearming_moves_an_entry_between_lists)
{
	uint64_t timeout = 100;
	struct rl_timer_list l[2];
	rl_timer_list_init(&l[0], &timeout, record, (void *)0);
	rl_timer_list_init_deadline(&l[1], record, (void *)1);
	rl_timer_arm(&l[0], &tm[0], 10);
	rl_timer_arm(&l[1], &tm[0], 500); /* e.g. OPEN -> CLOSING */

	rl_timers_run(l, 2, 200);
	cr_assert_eq(nfired, 0, "no longer on the first list");
	rl_timers_run(l, 2, 500);
	cr_assert_eq(nfired, 1);
	cr_assert_eq(fired[0].list, 1);
}

Test(timer, a_disabled_list_never_fires_and_a_reload_enables_it)
{
	uint64_t timeout = 0;
	struct rl_timer_list l;
	rl_timer_list_init(&l, &timeout, record, NULL);
	rl_timer_arm(&l, &tm[0], 0);

	rl_timers_run(&l, 1, UINT64_MAX / 2);
	cr_assert_eq(nfired, 0);
	cr_assert_eq(rl_timers_next(&l, 1, 1000), -1, "a disabled list has no deadline");

	timeout = 100; /* a reload stores the option; the list reads it each time */
	cr_assert_eq(rl_timers_next(&l, 1, 40), 60);
	rl_timers_run(&l, 1, 100);
	cr_assert_eq(nfired, 1);
}

Test(timer, disarmed_entries_do_not_fire)
{
	uint64_t timeout = 10;
	struct rl_timer_list l;
	rl_timer_list_init(&l, &timeout, record, NULL);
	rl_timer_arm(&l, &tm[0], 0);
	rl_timer_arm(&l, &tm[1], 0);
	rl_timer_disarm(&tm[0]);
	rl_timer_disarm(&tm[0]); /* twice is harmless */
	rl_timer_disarm(&tm[5]); /* never armed: harmless */

	rl_timers_run(&l, 1, 1000);
	cr_assert_eq(nfired, 1);
	cr_assert_eq(fired[0].idx, 1);
}

Test(timer, expiry_is_bounded_per_list_per_call)
{
	uint64_t timeout = 1;
	struct rl_timer_list l[2];
	rl_timer_list_init(&l[0], &timeout, record, (void *)0);
	rl_timer_list_init(&l[1], &timeout, record, (void *)1);
	for (int i = 0; i < NT - 1; i++)
		rl_timer_arm(&l[0], &tm[i], 0);
	rl_timer_arm(&l[1], &tm[NT - 1], 0);

	rl_timers_run(l, 2, 10);
	cr_assert_eq(nfired, RL_TIMER_EXPIRE_MAX + 1);
	cr_assert_eq(fired[RL_TIMER_EXPIRE_MAX].list, 1,
		     "a full list does not starve the next one");
	cr_assert_eq(rl_timers_next(l, 2, 10), 0, "the rest is overdue");
	rl_timers_run(l, 2, 10);
	cr_assert_eq(nfired, NT, "the rest goes on the next call");
	cr_assert_eq(fired[NT - 1].idx, NT - 2);
}

Test(timer, lists_run_in_array_order)
{
	uint64_t t1 = 10, t2 = 5;
	struct rl_timer_list l[2];
	rl_timer_list_init(&l[0], &t1, record, (void *)0);
	rl_timer_list_init(&l[1], &t2, record, (void *)1);
	rl_timer_arm(&l[1], &tm[1], 0);
	rl_timer_arm(&l[0], &tm[0], 0);

	rl_timers_run(l, 2, 100);
	cr_assert_eq(nfired, 2);
	cr_assert_eq(fired[0].list, 0);
	cr_assert_eq(fired[1].list, 1);
}

Test(timer, next_deadline_is_the_earliest_head_of_all_lists)
{
	uint64_t idle = 1000, frame = 300, off = 0;
	struct rl_timer_list l[4];
	rl_timer_list_init(&l[0], &idle, record, NULL);
	rl_timer_list_init(&l[1], &frame, record, NULL);
	rl_timer_list_init(&l[2], &off, record, NULL);
	rl_timer_list_init_deadline(&l[3], record, NULL);

	cr_assert_eq(rl_timers_next(l, 4, 0), -1, "nothing armed");
	rl_timer_arm(&l[0], &tm[0], 100);  /* due 1100 */
	rl_timer_arm(&l[0], &tm[1], 50);   /* behind the head: not looked at */
	rl_timer_arm(&l[1], &tm[2], 500);  /* due 800 */
	rl_timer_arm(&l[2], &tm[3], 0);	   /* disabled: ignored */
	rl_timer_arm(&l[3], &tm[4], 2000); /* due 2000 */
	cr_assert_eq(rl_timers_next(l, 4, 600), 200);
	rl_timer_disarm(&tm[2]);
	cr_assert_eq(rl_timers_next(l, 4, 600), 500);
	cr_assert_eq(rl_timers_next(l, 4, 5000), 0, "overdue counts as 0");
	cr_assert_eq(rl_timers_next(&l[3], 1, 600), 1400);
}

/* The CLOSING list: an entry's start is its deadline (flush deadline). */
Test(timer, a_deadline_list_fires_at_each_start_and_is_never_disabled)
{
	struct rl_timer_list l;
	rl_timer_list_init_deadline(&l, record, (void *)7);
	rl_timer_arm(&l, &tm[0], 2000);
	rl_timer_arm(&l, &tm[1], 2500);

	cr_assert_eq(rl_timers_next(&l, 1, 0), 2000);
	rl_timers_run(&l, 1, 1999);
	cr_assert_eq(nfired, 0);
	rl_timers_run(&l, 1, 2000);
	cr_assert_eq(nfired, 1);
	cr_assert_eq(fired[0].idx, 0);
	cr_assert_eq(fired[0].list, 7);
	cr_assert_eq(rl_timers_next(&l, 1, 2000), 500);
}
