/* channel.h -- one room as the cluster bus sees it: its channel's
 * subscription state, this node's outgoing sequence, the member counts of
 * the other nodes and the last sequence seen from each of them. One entry
 * per room that has members on any live node (or a subscription, or a count
 * still to announce), in a liburcu hash table keyed by room name.
 *
 * Threading: the bridge thread is the only writer of everything here and
 * the only reader of the fields marked "bridge". Workers read one thing:
 * rl_chan_remote_members (a lookup plus an atomic load, RCU read side
 * online). Entries are freed with call_rcu, so a worker's lookup stays safe.
 * The bridge and the workers are registered QSBR threads. */
#ifndef RL_CHANNEL_H
#define RL_CHANNEL_H

#include "base/rcu.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <urcu/list.h>

#define RL_CHAN_NAME_MAX 64

enum rl_chan_sub {
	RL_CHAN_UNSUB = 0,   /* no subscription, none asked for */
	RL_CHAN_SUBSCRIBING, /* SUBSCRIBE sent, confirmation pending */
	RL_CHAN_SUBSCRIBED,
	RL_CHAN_UNSUBSCRIBING, /* UNSUBSCRIBE sent, confirmation pending */
	RL_CHAN_NSUB
};

struct rl_chan;

/* One other node's part in a room (bridge). */
struct rl_chan_peer {
	struct rl_chan_peer *next;  /* the room's list */
	struct cds_list_head plink; /* the node's list (rl_chan_node.rooms) */
	struct rl_chan *ch;
	uint32_t node;	   /* index in the node table */
	uint32_t count;	   /* its members in the room */
	uint64_t ver;	   /* COUNTS version that set <count> */
	uint64_t last_seq; /* last FRAME sequence received from it (0: none yet) */
};

struct rl_chan {
	struct cds_lfht_node node;
	struct rcu_head rcu;
	long remote; /* atomic: members on the other live nodes (workers read it) */
	uint64_t hash;
	uint8_t name_len;
	uint8_t name[RL_CHAN_NAME_MAX];
	/* --- bridge only --- */
	uint32_t local;	    /* members on this node, as the workers told */
	uint32_t announced; /* the count this node last announced */
	uint8_t sub;	    /* enum rl_chan_sub */
	bool linger;	    /* on the linger list */
	bool gap_pending;   /* owe local members a gap event (reason below) */
	const char *gap_reason;
	uint64_t out_seq;      /* sequence of this node's last FRAME in the room */
	uint64_t skip_gen;     /* rl_bridge.skip_gen when out_seq last skipped */
	uint64_t linger_until; /* ms: unsubscribe then if still empty */
	struct rl_chan_peer *peers;
	struct cds_list_head dirty_link;  /* count to announce, or empty */
	struct cds_list_head linger_link; /* linger list, or empty */
	struct cds_list_head sync_link;	  /* subscription to (un)do, or empty */
	struct cds_list_head gap_link;	  /* gap event waiting for room, or empty */
};

/* A node the bridge has heard of (bridge). */
struct rl_chan_node {
	char id[33];
	uint8_t id_len;
	bool alive;
	bool fetching; /* a snapshot request is in flight */
	uint32_t boot;
	uint64_t last_seen;	    /* ms, monotonic */
	uint64_t ver;		    /* newest snapshot version applied: older COUNTS are stale */
	struct cds_list_head rooms; /* its struct rl_chan_peer entries */
};

/* The table. Main thread, before/after the bridge and workers run. */
int rl_chan_init(void);
/* Destroys the (empty) table after rcu_barrier. Main thread. */
void rl_chan_fini(void);

/* Members of room <name>/<len> on the other live nodes: the cached sum.
 * Any registered thread, RCU read side online. */
long rl_chan_remote_members(const uint8_t *name, size_t len);

/* Bridge: the entry for <name>, or NULL; rl_chan_get creates it (NULL on
 * ENOMEM). */
struct rl_chan *rl_chan_find(const uint8_t *name, size_t len);
struct rl_chan *rl_chan_get(const uint8_t *name, size_t len);
/* Bridge: true when nothing keeps <ch>: no members anywhere, no
 * subscription, nothing to announce, on no list. */
bool rl_chan_idle(struct rl_chan *ch);
/* Bridge: removes <ch> from the table and frees it after a grace period.
 * Its peer entries go with it. */
void rl_chan_remove(struct rl_chan *ch);
/* Bridge: calls <fn> for every entry (it may remove the one it is given). */
void rl_chan_foreach(void (*fn)(struct rl_chan *ch, void *arg), void *arg);
/* Entries in the table. */
long rl_chan_count(void);

/* ---- nodes (bridge) ----------------------------------------------------------- */

#define RL_CHAN_NODES_MAX 1024

/* Index of node <id> (not this node), added when new: -ENOSPC when the
 * table is full. */
int rl_chan_node_get(const uint8_t *id, size_t len);
struct rl_chan_node *rl_chan_node_at(uint32_t idx);
uint32_t rl_chan_nodes(void);

/* <node>'s entry in <ch>, created when <create>; NULL if absent (or ENOMEM). */
struct rl_chan_peer *rl_chan_peer(struct rl_chan *ch, uint32_t node, bool create);
/* Sets <node>'s member count in <ch> to <count> if <ver> is newer than the
 * version that set the current one; keeps <ch>->remote in step. */
void rl_chan_set_count(struct rl_chan *ch, uint32_t node, uint32_t count, uint64_t ver);
/* Every count of <node> set by a version older than <ver> becomes 0 (a
 * snapshot at <ver> did not list those rooms) and <ver> becomes the node's
 * floor: COUNTS at or below it are ignored from now on. UINT64_MAX: all of
 * them (the node is silent or gone; the floor stays). The sequence state of
 * a subscribed room survives (a node that only stalled must still be seen
 * to jump) unless <forget> (the node restarted). Calls <gone> for every room
 * whose entry it freed, so the caller may free an idle room. */
void rl_chan_node_clear(uint32_t node, uint64_t ver, bool forget,
			void (*gone)(struct rl_chan *ch, void *arg), void *arg);
/* Frees <ch>'s peer entries that hold no count (sequence state is dropped:
 * after an unsubscribe nothing is expected any more). */
void rl_chan_forget_seqs(struct rl_chan *ch);

#endif
