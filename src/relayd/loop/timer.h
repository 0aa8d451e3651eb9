/* timer.h -- deadline-ordered timer lists. Every entry of one list shares
 * the list's timeout, so a list ordered by start time is ordered by
 * deadline: arming is an O(1) move to the tail, expiry pops from the head,
 * the next deadline of a list is its head's. No heap, no per-turn scan, no
 * allocation: a struct rl_timer lives inside the object it times (relayd:
 * the connection, net/conn.c) and the list carries the expiry callback, so
 * this file knows nothing of what it times.
 *
 * Two kinds of list:
 *  - a timeout list: deadline = start + *<timeout_ms>. The timeout is read
 *    with a relaxed atomic load on every use, so a reload may store it while
 *    the owner runs; 0 disables the list (nothing on it fires).
 *  - a deadline list (rl_timer_list_init_deadline): each entry's start IS
 *    its deadline. The list stays ordered only while entries are armed in
 *    deadline order (relayd's CLOSING list: now + a fixed flush time).
 *
 * Threading: a list and its entries belong to one thread (the owner worker). */
#ifndef RL_TIMER_H
#define RL_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <urcu/list.h>

#define RL_TIMER_EXPIRE_MAX 4096 /* expiries per list per rl_timers_run: keeps a turn short */

struct rl_timer {
	struct cds_list_head link; /* in one rl_timer_list, or empty */
	uint64_t start_ms;	   /* timeout list: deadline - timeout; deadline list: deadline */
};

/* Called for each due entry <t> of a list, with the list's <arg>. It must
 * take <t> off that list (disarm it, or arm it on another list): an entry
 * left at the head is offered again, up to the per-call bound. */
typedef void rl_timer_expire_fn(struct rl_timer *t, void *arg);

struct rl_timer_list {
	struct cds_list_head head; /* entries, earliest deadline first */
	/* Reloadable (relaxed atomic load), 0 = off; NULL: a deadline list. */
	const uint64_t *timeout_ms;
	rl_timer_expire_fn *expire;
	void *arg;
};

/* An empty timeout list: deadline = start + *<timeout_ms> (0: disabled).
 * <timeout_ms> must outlive the list. */
void rl_timer_list_init(struct rl_timer_list *l, const uint64_t *timeout_ms,
			rl_timer_expire_fn *expire, void *arg);
/* An empty deadline list: an entry's start is its deadline; never disabled. */
void rl_timer_list_init_deadline(struct rl_timer_list *l, rl_timer_expire_fn *expire, void *arg);

static inline void rl_timer_init(struct rl_timer *t)
{
	CDS_INIT_LIST_HEAD(&t->link);
}

static inline bool rl_timer_armed(const struct rl_timer *t)
{
	return t->link.next != &t->link; /* cds_list_empty without dropping const */
}

/* Arms (or re-arms) <t> on <l> from <start_ms>, off whatever list it was
 * on: O(1), to the tail. <start_ms> must not precede the start of any entry
 * already on <l> (callers pass the loop's monotonic now, or for a deadline
 * list now + a fixed time), or the list loses its order. */
static inline void rl_timer_arm(struct rl_timer_list *l, struct rl_timer *t, uint64_t start_ms)
{
	t->start_ms = start_ms;
	cds_list_del(&t->link);
	cds_list_add_tail(&t->link, &l->head);
}

/* Takes <t> off its list, if any. */
static inline void rl_timer_disarm(struct rl_timer *t)
{
	cds_list_del_init(&t->link);
}

/* Expires the due entries of each of the <n> lists in <lists>, in array
 * order, at most RL_TIMER_EXPIRE_MAX per list: an entry is due when its
 * deadline <= <now_ms>. */
void rl_timers_run(struct rl_timer_list *lists, size_t n, uint64_t now_ms);
/* Milliseconds from <now_ms> to the earliest deadline on the <n> lists (0
 * when one is already due), or -1 when no enabled list holds an entry. */
long rl_timers_next(const struct rl_timer_list *lists, size_t n, uint64_t now_ms);

#endif
