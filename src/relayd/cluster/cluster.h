/* cluster.h -- relayd's cluster mode (--cluster): one room across many
 * nodes through a Redis pub/sub bus (docs/cluster.md). main.c and ops/ call
 * these; the relay layer reaches the bus only through the hooks installed
 * here (relay/bus.h), and the workers receive its deliveries as
 * RL_INBOX_CLUSTER items handled by rl_cluster_item.
 * Threading: rl_cluster_configure/start/stop/fini on the main thread, in
 * that order around the workers (see each); rl_cluster_item on a worker;
 * the state queries from any thread. */
#ifndef RL_CLUSTER_H
#define RL_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rl_config;
struct rl_worker;
struct rl_inbox_item;

/* Checks the cluster options of <cfg> and, with --cluster set, prepares
 * cluster mode: resolves the bus address, reads --cluster-password-file,
 * picks the node id (--node-id, or "<host>-<port>-<random>" from the host
 * name and the bound <port>), creates the bridge (not yet running), gives
 * connection ids their "@<node>" suffix and installs the relay hooks. After
 * the listeners are bound, before the workers start (<nworkers> of them).
 * Without --cluster it does nothing. 0, or -1 after printing one line
 * "relayd: ..." naming the option (exit status 1). */
int rl_cluster_configure(const struct rl_config *cfg, unsigned nworkers, uint16_t port);

/* Starts the bridge thread and registers the cluster rows' stats readers.
 * After the workers started, before the admin endpoint. 0 or -errno. */
int rl_cluster_start(void);

/* Says goodbye on the bus (the node's counts leave at once), stops and
 * joins the bridge and releases what was queued to it. After the workers
 * were joined, before their inboxes are drained and the rooms go. */
void rl_cluster_stop(void);

/* Frees the cluster's room table. After rl_rooms_fini (its rcu_barrier). */
void rl_cluster_fini(void);

/* An RL_INBOX_CLUSTER item on worker <w> (rl_inbox_fn): a frame from
 * another node, or a gap event, for <w>'s members of the room. Registered
 * by main.c whether or not cluster mode is on. */
uint64_t rl_cluster_item(struct rl_worker *w, struct rl_inbox_item *it);

/* Whether cluster mode is on. */
bool rl_cluster_on(void);
/* The bus link for /health: NULL when cluster mode is off, else "up",
 * "connecting" or "down"; *<healthy> is false when the link is not up and
 * --cluster-required says that makes the server unhealthy. */
const char *rl_cluster_health(bool *healthy);

#endif
