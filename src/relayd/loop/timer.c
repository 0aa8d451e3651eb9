/* timer.c -- deadline-ordered lists. Threading: owner worker only. */
#include "loop/timer.h"

#include "net/conn.h"
#include "loop/worker.h"

#define TIMER_EXPIRE_MAX 4096 /* per list per turn: keeps a turn short */

struct timer_list {
	size_t list_off;  /* struct cds_list_head in struct rl_worker */
	size_t link_off;  /* struct cds_list_head in struct rl_conn */
	size_t start_off; /* uint64_t in struct rl_conn */
	size_t cfg_off;   /* timeout (ms) in struct rl_config; 0 = deadline itself */
	enum relay_err why;
};

#define WOFF(f) offsetof(struct rl_worker, f)
#define COFF(f) offsetof(struct rl_conn, f)
#define CFOFF(f) offsetof(struct rl_config, f)

static const struct timer_list timer_lists[] = {
	{ WOFF(idle_list), COFF(tlink), COFF(last_rx_ms), CFOFF(idle_ms), RELAY_ERR_IDLE_TIMEOUT },
	{ WOFF(frame_list), COFF(flink), COFF(frame_start_ms), CFOFF(frame_ms),
	  RELAY_ERR_FRAME_TIMEOUT },
	{ WOFF(drain_list), COFF(dlink), COFF(deadline_ms), CFOFF(slow_ms),
	  RELAY_ERR_SLOW_CONSUMER },
	{ WOFF(closing_list), COFF(tlink), COFF(deadline_ms), (size_t)-1, RELAY_ERR_NONE },
};

#define NLISTS (sizeof(timer_lists) / sizeof(timer_lists[0]))

static uint64_t timer_timeout(const struct timer_list *t)
{
	if (t->cfg_off == (size_t)-1)
		return 0;
	/* Reloadable options: atomic, like RL_CFG. */
	return __atomic_load_n((const uint64_t *)((const char *)&rl_srv.cfg + t->cfg_off),
			       __ATOMIC_RELAXED);
}

static struct cds_list_head *timer_head(const struct rl_worker *w, const struct timer_list *t)
{
	return (struct cds_list_head *)((char *)w + t->list_off);
}

static struct rl_conn *timer_first(const struct rl_worker *w, const struct timer_list *t)
{
	struct cds_list_head *h = timer_head(w, t);
	if (cds_list_empty(h))
		return NULL;
	return (struct rl_conn *)((char *)h->next - t->link_off);
}

static uint64_t timer_due(const struct rl_conn *c, const struct timer_list *t, uint64_t timeout)
{
	return *(const uint64_t *)((const char *)c + t->start_off) + timeout;
}

static bool timer_enabled(const struct timer_list *t, uint64_t *timeout)
{
	*timeout = timer_timeout(t);
	return t->cfg_off == (size_t)-1 || *timeout > 0;
}

void rl_timers_run(struct rl_worker *w)
{
	for (size_t i = 0; i < NLISTS; i++) {
		const struct timer_list *t = &timer_lists[i];
		uint64_t timeout;
		if (!timer_enabled(t, &timeout))
			continue;
		for (int n = 0; n < TIMER_EXPIRE_MAX; n++) {
			struct rl_conn *c = timer_first(w, t);
			if (!c || timer_due(c, t, timeout) > w->now_ms)
				break;
			rl_conn_expire(c, t->why); /* always takes c off this list */
		}
	}
}

long rl_timers_next(const struct rl_worker *w)
{
	long best = -1;
	for (size_t i = 0; i < NLISTS; i++) {
		const struct timer_list *t = &timer_lists[i];
		uint64_t timeout;
		if (!timer_enabled(t, &timeout))
			continue;
		struct rl_conn *c = timer_first(w, t);
		if (!c)
			continue;
		uint64_t due = timer_due(c, t, timeout);
		long d = due > w->now_ms ? (long)(due - w->now_ms) : 0;
		if (best < 0 || d < best)
			best = d;
	}
	return best;
}
