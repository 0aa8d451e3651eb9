/* timer.c -- deadline-ordered timer lists (see timer.h).
 * Threading: a list belongs to its owner thread. */
#include "loop/timer.h"

void rl_timer_list_init(struct rl_timer_list *l, const uint64_t *timeout_ms,
			rl_timer_expire_fn *expire, void *arg)
{
	CDS_INIT_LIST_HEAD(&l->head);
	l->timeout_ms = timeout_ms;
	l->expire = expire;
	l->arg = arg;
}

void rl_timer_list_init_deadline(struct rl_timer_list *l, rl_timer_expire_fn *expire, void *arg)
{
	rl_timer_list_init(l, NULL, expire, arg);
}

/* Whether <l> fires at all, and the timeout to add to each start (0 for a
 * deadline list). */
static bool timer_enabled(const struct rl_timer_list *l, uint64_t *timeout)
{
	if (!l->timeout_ms) {
		*timeout = 0;
		return true;
	}
	*timeout = __atomic_load_n(l->timeout_ms, __ATOMIC_RELAXED);
	return *timeout > 0;
}

static struct rl_timer *timer_first(const struct rl_timer_list *l)
{
	if (l->head.next == &l->head)
		return NULL;
	return caa_container_of(l->head.next, struct rl_timer, link);
}

void rl_timers_run(struct rl_timer_list *lists, size_t n, uint64_t now_ms)
{
	for (size_t i = 0; i < n; i++) {
		struct rl_timer_list *l = &lists[i];
		uint64_t timeout;
		if (!timer_enabled(l, &timeout))
			continue;
		for (int k = 0; k < RL_TIMER_EXPIRE_MAX; k++) {
			struct rl_timer *t = timer_first(l);
			if (!t || t->start_ms + timeout > now_ms)
				break;
			l->expire(t, l->arg); /* takes t off this list */
		}
	}
}

long rl_timers_next(const struct rl_timer_list *lists, size_t n, uint64_t now_ms)
{
	long best = -1;
	for (size_t i = 0; i < n; i++) {
		const struct rl_timer_list *l = &lists[i];
		uint64_t timeout;
		if (!timer_enabled(l, &timeout))
			continue;
		const struct rl_timer *t = timer_first(l);
		if (!t)
			continue;
		uint64_t due = t->start_ms + timeout;
		long d = due > now_ms ? (long)(due - now_ms) : 0;
		if (best < 0 || d < best)
			best = d;
	}
	return best;
}
