/* bridge.h -- the cluster bridge: one thread with its own epoll loop and
 * inbox that owns both sockets to the bus (Redis): a publish connection
 * (pipelined PUBLISH and the count/heartbeat commands) and a subscribe
 * connection (room channels and the nodes channel). Workers hand it what
 * their members publish and their membership changes through its inbox;
 * it hands what other nodes publish to the workers that have members of
 * the room, encoded once, through their inboxes (RL_INBOX_CLUSTER).
 *
 * Threading: rl_bridge_* on the main thread (configure before the workers
 * start, start after, stop after they were joined). The fields under
 * "shared" are atomics that workers update (cluster.c); everything else
 * belongs to the bridge thread, a registered QSBR reader (online while it
 * works, offline in epoll_wait, one quiescent state per turn). */
#ifndef RL_BRIDGE_H
#define RL_BRIDGE_H

#include "base/log.h"
#include "cluster/link.h"
#include "cluster/resp.h"
#include "loop/evloop.h"
#include "loop/inbox.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <urcu/list.h>

#define RL_BRIDGE_NODE_MAX 32 /* bytes of a node id (= RL_WIRE_NODE_MAX) */

/* Kinds of the items workers push on the bridge's inbox. */
enum rl_bridge_item {
	RL_BRIDGE_MSG = 0, /* struct rl_msg_item (m->items[nworkers]): publish on the bus */
	RL_BRIDGE_MEMBER,  /* struct rl_bridge_member: a membership taken or given up */
	RL_BRIDGE_NITEMS
};

struct rl_bridge_member {
	struct rl_inbox_item ib; /* kind RL_BRIDGE_MEMBER */
	int32_t delta;		 /* +1 or -1 */
	uint8_t len;
	uint8_t name[64];
};

/* Process-wide figures, read by /metrics through rl_stats readers. The
 * bridge is the single writer of most (relaxed stores); <out_dropped> is
 * also added to by workers (atomic adds). */
struct rl_bridge_stats {
	uint64_t link_up;	/* 1 while the bus link is up */
	uint64_t subscriptions; /* room channels subscribed */
	uint64_t out_msgs;	/* frames published on the bus */
	uint64_t in_msgs;	/* frames received from other nodes */
	uint64_t out_dropped;	/* frames not published (queue full, link down) */
	uint64_t in_dropped;	/* frames received and not delivered (queue full, too large) */
	uint64_t gaps;		/* gap events sent (one per room and occasion) */
	uint64_t reconnects;	/* times the link came back after it was lost */
	uint64_t commands;	/* commands written on the publish connection */
	uint64_t writes;	/* write calls on the publish connection */
	uint64_t reads;		/* read calls that returned bytes on the subscribe connection */
	uint64_t read_msgs;	/* messages parsed from the subscribe connection */
	uint64_t out_queue;	/* bytes in the publish connection's output buffer */
};

/* The pending-reply kinds of the publish connection, in command order. */
struct rl_bridge_reply {
	uint8_t kind; /* enum in bridge.c */
	uint32_t arg; /* node index for snapshot replies */
	uint32_t n;   /* how many consecutive replies of this kind */
};

struct rl_bridge {
	/* --- configuration, set by rl_bridge_configure, read-only after --- */
	struct rl_link_addr addr;
	char password[512];
	size_t password_len; /* 0: no AUTH */
	char node[33];
	size_t node_len;
	char prefix[64];
	size_t prefix_len;
	uint32_t boot;	      /* random per process: tells restarts apart */
	uint64_t ttl_ms;      /* --cluster-node-ttl */
	uint64_t hb_ms;	      /* heartbeat period: min(1 s, ttl / 3) */
	uint64_t linger_ms;   /* --cluster-linger */
	uint64_t queue_limit; /* --cluster-queue-limit, bytes per direction */
	uint64_t max_frame;   /* --max-frame-bytes: larger frames are not delivered */
	unsigned nworkers;
	/* --- shared --- */
	struct rl_inbox inbox;
	uint64_t q_out; /* atomic: bytes of messages in the inbox */
	uint64_t q_in;	/* atomic: bytes handed to workers, not yet delivered */
	uint64_t lost;	/* atomic: messages workers dropped (inbox over the limit) */
	int stop;	/* atomic: rl_bridge_stop was called */
	struct rl_bridge_stats st;
	/* --- the bridge thread --- */
	pthread_t thread;
	bool running;
	uint32_t isrc;
	struct rl_evloop loop;
	struct rl_link pub, sub;
	int link;	     /* enum bridge_link in bridge.c */
	bool was_up;	     /* the link has been up once: later ups are reconnects */
	bool announced_once; /* our stale counts hash of a previous run was deleted */
	bool ctl_subscribed; /* the nodes channel is subscribed */
	bool pub_ok;	     /* the publish connection answered (AUTH or PING) */
	unsigned sub_simple; /* simple replies still due on the subscribe connection */
	uint64_t now_ms;
	uint64_t retry_at; /* DOWN: next connect attempt */
	uint64_t backoff_ms;
	uint64_t connect_deadline;
	uint64_t next_hb, last_hb, next_counts, next_resync;
	uint64_t pub_ping_at, sub_ping_at; /* unanswered PING sent then (0: none) */
	uint64_t ver;			   /* our COUNTS version */
	uint64_t local_rooms;		   /* rooms with members on this node */
	uint64_t skip_gen;		   /* bumped when workers dropped messages */
	uint64_t seed;			   /* jitter */
	bool inbox_more;
	struct rl_bridge_reply *replies; /* ring of pending-reply kinds */
	uint32_t rhead, rlen, rcap;
	struct rl_resp_reply reply;
	struct cds_list_head dirty, linger, sync, gapq;
	void **scratch; /* batch of channels for one (UN)SUBSCRIBE */
	size_t scratch_cap;
	uint8_t *wbuf; /* a COUNTS message being built */
	size_t wbuf_cap;
	struct rl_ratelimit down_rl;
};

extern struct rl_bridge rl_bridge;

/* Fills the configuration (the caller set the fields above "shared") and
 * creates the inbox and loop. Main thread. 0 or -errno. */
int rl_bridge_init(void);
/* Starts the thread. Main thread, after the workers started. 0 or -errno. */
int rl_bridge_start(void);
/* Says goodbye on the bus (bounded by a short deadline), joins the thread
 * and releases everything still queued to it. Main thread, after the
 * workers were joined. */
void rl_bridge_stop(void);
/* "up", "connecting" or "down". Any thread. */
const char *rl_bridge_link_name(void);

#endif
