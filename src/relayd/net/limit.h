/* limit.h -- the limits that keep one client from taking the server
 * (protocol-v1-ext.md §3): connections per client address, counted in one
 * table every worker shares, and per-connection token buckets for
 * publishing and for joining. A connection over a bucket is throttled: not
 * read (net/conn.c) until the bucket has tokens again, so TCP flow control
 * slows its sender; it gets no error and loses nothing.
 *
 * Threading: the address table belongs to no worker: rl_limit_admit and
 * the release at close take its lock. A connection's struct rl_limit (its
 * buckets, its throttle, the bytes it read past its limit) belongs to the
 * connection's owner worker. rl_limit_init/fini: main thread, while no
 * worker runs. */
#ifndef RL_LIMIT_H
#define RL_LIMIT_H

#include <relay/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct rl_conn;
struct rl_worker;
struct rl_limit_addr; /* one client address's connection count (limit.c) */

/* The token buckets of a connection: capacity = burst, refilled at the
 * rate per second (options.h; a burst of 0 is the rate). */
enum rl_limit_bucket {
	RL_LIMIT_PUBLISH = 0,	/* MESSAGE frames: --publish-rate, --publish-burst */
	RL_LIMIT_PUBLISH_BYTES, /* their bytes: --publish-bytes-rate, --publish-bytes-burst */
	RL_LIMIT_JOIN,		/* JOIN_ROOM and LEAVE_ROOM frames: --join-rate, --join-burst */
	RL_LIMIT_NBUCKETS
};

/* What a connection holds once a limit applies to it (c->lim, NULL until
 * then): allocated at accept when its address is counted, or at its first
 * frame that a rate applies to. */
struct rl_limit {
	struct rl_limit_addr *addr; /* its address's count, or NULL (not counted) */
	/* Per bucket, GCRA's theoretical arrival time on the worker's clock in
	 * ns: the bucket is full once the clock reaches it, and it holds
	 * (burst - (tat - now) * rate) tokens before that. 0: full. */
	uint64_t tat_ns[RL_LIMIT_NBUCKETS];
	/* Per bucket, after it throttled the connection: when the throttle was
	 * meant to end, in ns (0: none). The frames read before the throttle
	 * (<rest>) pay from then, not from the worker's later wakeup: a bucket
	 * of one token would otherwise lose each late timer, and the rounding
	 * of the throttle to the ms, from the rate. */
	uint64_t resume_ns[RL_LIMIT_NBUCKETS];
	uint64_t throttled_ms; /* while throttled: when it began */
	uint8_t *rest;	       /* read but not parsed: the frames after the one that
				  emptied a bucket, parsed when the throttle ends */
	uint32_t rest_len;     /* bytes at rest not parsed yet */
	uint32_t rest_cap;     /* bytes allocated at rest (counted in mem_tails) */
};

/* Draws the address table's hash key. Main thread, before any worker. */
void rl_limit_init(void);
/* Frees the address table (every connection is closed). */
void rl_limit_fini(void);

/* The accept decision for --max-connections-per-ip, for a socket from
 * <peer> accepted by worker <w>: RELAY_ERR_NONE and *<addr> holds the
 * address's count, taken for this connection (NULL when the limit is off
 * or the address is not IP), to hand to rl_limit_attach; or
 * RELAY_ERR_TOO_MANY_CONNECTIONS when the address already holds the limit
 * (counted in refused_per_ip; logged at info, one line per address a
 * second). IPv4 and IPv4-mapped IPv6 addresses are one address. Any worker. */
enum relay_err rl_limit_admit(struct rl_worker *w, const struct sockaddr_storage *peer,
			      struct rl_limit_addr **addr);
/* Gives <addr> (from rl_limit_admit, may be NULL) to connection <c>, which
 * releases it when it closes; NULL <c> (the connection could not be set
 * up) releases it now. Owner worker. */
void rl_limit_attach(struct rl_conn *c, struct rl_limit_addr *addr);
/* <c> is closing for good (conn.c's close step): its address count goes
 * down, its limit state is freed. Owner worker. */
void rl_limit_conn_closed(struct rl_conn *c);

/* Takes <n> tokens from <c>'s bucket <b> (a no-op while that rate is 0).
 * The frame they pay for is handled whatever the bucket holds: a bucket
 * that now holds less than one token throttles <c> (rl_conn_throttle) until
 * it has refilled a slice (10 ms of the rate, at least one token, at most
 * the burst), and a frame bigger than what was left (bytes) is paid for
 * with a debt the throttle waits out, so the average rate holds.
 * Owner worker. 0, or -ENOMEM (the caller closes <c>). */
int rl_limit_take(struct rl_conn *c, enum rl_limit_bucket b, uint64_t n);

/* How many bytes to read from <c> at once: the whole scratch buffer when
 * no rate is set; with rates on, RL_LIMIT_READ_BYTES (so the bytes kept
 * past a limit stay small), or more while a large frame is arriving (the
 * bytes of it already buffered: it completes in a few reads). */
size_t rl_limit_read_size(const struct rl_conn *c);
#define RL_LIMIT_READ_BYTES 4096u

/* Keeps the <n> bytes at <p> that <c> read but did not parse because a
 * bucket ran out (<p> may point into c->lim->rest itself); 0 bytes frees
 * what was kept. Counted with the partial frames (mem_tails). Owner
 * worker. 0 or -ENOMEM. */
int rl_limit_keep(struct rl_conn *c, const uint8_t *p, size_t n);

#endif
