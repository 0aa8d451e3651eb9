/* bus.h -- the seam between the relay layer and a cluster bus (cluster/,
 * the layer above): function types that main.c installs once, before any
 * worker starts, when --cluster is on. With the bus off <rl_bus> is NULL
 * and the single-node paths cost one pointer test.
 * Threading: the hooks run on the calling worker and must never block it;
 * <rl_bus> is written once on the main thread and read-only afterwards. */
#ifndef RL_BUS_H
#define RL_BUS_H

#include "loop/worker.h"

#include <stddef.h>

struct rl_worker;
struct rl_room;
struct rl_msg;

struct rl_bus_hooks {
	const char *node_id; /* shown in the HELLO ack with --debug */
	/* A member of <r> on worker <w> published <m> (a MESSAGE delivery or a
	 * presence event, encoded once): the bus takes its own reference and
	 * item (m->items[rl_srv.nworkers]) and may set m->room (with a room
	 * reference) when it is unset. Called after local fan-out. */
	void (*publish)(struct rl_worker *w, struct rl_room *r, struct rl_msg *m);
	/* Worker <w> took (+1) or gave up (-1) a membership of <r>, which is
	 * alive during the call. */
	void (*member)(struct rl_worker *w, struct rl_room *r, int delta);
	/* Members of <r> on the other live nodes, as last heard (never a
	 * round trip). */
	long (*remote_members)(const struct rl_room *r);
};

/* NULL unless cluster mode is on. */
extern const struct rl_bus_hooks *rl_bus;

/* Installs <h> (NULL: off). Main thread, before any worker starts. */
void rl_bus_set(const struct rl_bus_hooks *h);

/* Inbox items a published message carries: one per worker, plus the bus's
 * when it is on. */
static inline unsigned rl_bus_msg_items(void)
{
	return rl_srv.nworkers + (rl_bus != NULL);
}

#endif
