/* conn.h -- one client connection: state machine, receive tail (inside the
 * decoder), send queue, timers, room list.
 * Threading: everything here runs on the connection's owner worker; other
 * workers reach a connection only through its owner's inbox (inbox.c). */
#ifndef RL_CONN_H
#define RL_CONN_H

#include "net/outq.h"
#include "net/transport.h"
#include "loop/worker.h"

#include <relay/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <urcu/list.h>

enum rl_conn_state {
	RL_CONN_INIT = 0, /* accepted, not yet in the event loop */
	RL_CONN_OPEN,
	RL_CONN_DRAINING, /* outbound queue above the high watermark */
	RL_CONN_CLOSING,  /* one-way: no reads, no new output, flush then close */
	RL_CONN_CLOSED,   /* terminal */
	RL_CONN_NSTATES
};

enum rl_conn_flag {
	RL_CF_ECHO = 1u << 0,     /* HELLO asked for its own messages */
	RL_CF_DEAD = 1u << 1,     /* marked for close at the end of the turn */
	RL_CF_WBLOCKED = 1u << 2, /* socket full; waiting for EPOLLOUT */
	RL_CF_LINGER = 1u << 3,   /* CLOSING, output done but not safe yet: discarding input */
	RL_CF_REFUSED = 1u << 4,  /* SERVER_FULL: not counted in the connection gauge */
	RL_CF_PEER_EOF = 1u << 5, /* we read the peer's EOF */
	RL_CF_RDHUP = 1u << 6,    /* epoll reported the peer's FIN: read on to the EOF */
	RL_CF_PAUSED = 1u << 7,   /* not read: its publish filled another worker's inbox */
	RL_CF_ABORT = 1u << 8,    /* close with a reset: its flush deadline passed */
	RL_CF_TP_HELD = 1u << 9,  /* the transport holds output it took (transport.h) */
	RL_CF_HELD = 1u << 10,    /* reads held for the memory budget (on w->held_list) */
	RL_CF_WS = 1u << 11,      /* WebSocket: queued frames carry their message header */
	RL_CF_TP_REFUSES = 1u << 12, /* the transport answers SERVER_FULL itself (WebSocket: 503) */
	RL_CF_FANOUT = 1u << 13,  /* its frames fanned out here: bound by the turn's budget */
	RL_CF_PARKED = 1u << 14,  /* <parked> has bytes read but not parsed (budget spent) */
	RL_CF_THROTTLED = 1u << 15, /* not read: over a rate limit (net/limit.c); life on
				       the throttle list, until its bucket refilled */
};

/* The worker's timer lists for connections (struct rl_worker.timers), run
 * in this order each loop turn. */
enum rl_conn_timer {
	RL_CONN_T_IDLE = 0, /* timeout --idle-timeout: IDLE_TIMEOUT */
	RL_CONN_T_FRAME,    /* timeout --frame-timeout: FRAME_TIMEOUT */
	RL_CONN_T_DRAIN,    /* timeout --slow-consumer-timeout: SLOW_CONSUMER */
	RL_CONN_T_CLOSING,  /* deadline list: flush deadline passed, close */
	RL_CONN_T_THROTTLE, /* deadline list (sorted): a rate-limit throttle ends, read again */
	RL_CONN_NTIMERS
};
/* The lists after these belong to the layer above (relay/auth.h). */
_Static_assert(RL_CONN_NTIMERS <= RL_WORKER_NTIMERS, "struct rl_worker holds every list");

struct rl_conn_parked; /* conn.c */

struct rl_conn_room {
	struct rl_room *room;
	uint32_t idx;  /* our entry in the room's member list of our worker */
	uint32_t hash; /* low bits of the room hash, to skip name compares */
};

/* The first 64 bytes are what fan-out touches per recipient (state, flags,
 * owner, output queue, flush-list link): one cache line per delivery. */
struct rl_conn {
	uint32_t src;             /* RL_SRC_CONN; first field (evloop tag) */
	int fd;
	uint8_t state;            /* enum rl_conn_state */
	uint8_t user_len;         /* bytes at user_id */
	uint16_t flags;           /* enum rl_conn_flag */
	uint32_t nrooms;
	struct rl_worker *w;
	struct rl_outq out;
	struct cds_list_head qlink; /* flush_list, or empty */
	/* --- colder --- */
	uint64_t id;              /* N of "conn-N" */
	const struct rl_transport *tp; /* its listener's; all socket I/O goes through it */
	void *tp_ctx;             /* the transport's per-connection state (NULL: plain TCP) */
	uint32_t rooms_cap;
	struct relay_decoder dec;    /* holds the incomplete tail, if any */
	struct rl_conn_room *rooms;
	uint8_t *user_id;         /* NULL unless HELLO gave one */
	struct rl_auth *auth;	  /* relay/auth.c's access-control state (the upcalls
				     opened/closed); NULL when authentication is off */
	struct rl_limit *lim;	  /* net/limit.c's state: address count, rate buckets;
				     NULL until a limit applies to this connection */
	/* OPEN/DRAINING: on the idle list, start = the last byte received
	 * (THROTTLED: on the throttle list, start = when it ends);
	 * CLOSING: on the closing list, start = the flush deadline. */
	struct rl_timer life;
	struct rl_timer frame;    /* while dec holds a partial frame; start = its first byte */
	struct rl_timer drain;    /* while DRAINING; start = when it began */
	struct cds_list_head rlink; /* read_list, a paused list (PAUSED), held_list (HELD), or empty */
	union {
		struct rl_conn *next_dead;    /* DEAD: the worker's dead list */
		struct rl_conn_parked *parked; /* PARKED (never DEAD): bytes to parse next */
	};
};

/* Growth is a decision: change this with "Memory per connection" in
 * docs/architecture.md. (264 bytes take the same 272-byte malloc chunk as
 * 256 did: glibc adds 8 bytes of header and rounds to 16.) */
_Static_assert(sizeof(struct rl_conn) == 264, "struct rl_conn changed size");
/* What fan-out touches per delivery stays in the first 64 bytes. */
#define RL_CONN_HOT(f) (offsetof(struct rl_conn, f) + sizeof(((struct rl_conn *)0)->f) <= 64)
_Static_assert(RL_CONN_HOT(state) && RL_CONN_HOT(flags) && RL_CONN_HOT(w) && RL_CONN_HOT(out) &&
		       RL_CONN_HOT(qlink),
	       "fan-out's fields left the first cache line of struct rl_conn");
#undef RL_CONN_HOT

#ifndef NDEBUG
#define RL_ASSERT_OWNER(c) rl_conn_assert_owner(c)
void rl_conn_assert_owner(const struct rl_conn *c);
#else
#define RL_ASSERT_OWNER(c) ((void)0)
#endif

/* What the layer above does with connections (relay/handler.c provides
 * them). net/ calls up only through this table: one indirect call per
 * received frame. */
struct rl_conn_upcalls {
	/* One complete frame of <c>, header already checked by the decoder.
	 * <f>'s payload points into the worker's scratch buffer and is valid
	 * only during the call. May send, raise an error or kill <c>; parsing
	 * stops once <c> no longer accepts output. */
	void (*frame)(struct rl_conn *c, const struct relay_frame *f);
	/* <c> is CLOSED (from the close step, before anything of it is freed):
	 * release what the layer above holds for it (its rooms). Nothing can
	 * be sent any more. */
	void (*closed)(struct rl_conn *c);
	/* Optional (NULL: nothing). <c> was just accepted and is OPEN (not a
	 * SERVER_FULL refusal): the layer above may set up its state (arm a
	 * HELLO deadline). May send, raise an error or kill <c>. */
	void (*opened)(struct rl_conn *c);
};

/* Installs <up> (copied; frame and closed required). Main thread, once,
 * before any worker starts. */
void rl_conn_set_upcalls(const struct rl_conn_upcalls *up);
/* Sets up worker <w>'s connection bookkeeping: timer lists (enum
 * rl_conn_timer; the layer above's, after them, start empty), flush and
 * read lists, dead list. From rl_worker_init. */
void rl_conn_worker_init(struct rl_worker *w);

/* Takes ownership of accepted socket <fd> on worker <w>, speaking
 * transport <tp> (its listener's): INIT, registered with the loop, then
 * OPEN. <refuse> (RELAY_ERR_NONE: served): refused at accept with that
 * fatal code (SERVER_FULL, TOO_MANY_CONNECTIONS): it is sent, then the
 * connection closes; such a connection is not in the connection gauge
 * (RL_CF_REFUSED). NULL on failure (fd closed). */
struct rl_conn *rl_conn_new(struct rl_worker *w, int fd, const struct rl_transport *tp,
			    enum relay_err refuse);
/* Readiness from the event loop. */
void rl_conn_on_event(struct rl_conn *c, uint32_t bits);
/* Reads up to the per-turn budget and handles every complete frame; first
 * the bytes parked in an earlier turn. A connection whose frames fan out
 * here (RL_CF_FANOUT) stops once the turn's fan-out budget is spent: the
 * rest of its read is kept, the kernel keeps the others, and it goes on
 * the worker's fan-out wait list. */
void rl_conn_read(struct rl_conn *c);
/* Writes pending output (worker flush step). */
void rl_conn_flush(struct rl_conn *c);

/* Cross-worker backpressure. <c>'s last publish found worker <k>'s inbox
 * above RL_INBOX_HIGH: <c> is not read again (the bytes already read are
 * handled) until that backlog is below RL_INBOX_LOW; the kernel keeps what
 * it sends meanwhile, so TCP flow control slows it down. Its idle and frame
 * timeouts do not run while it is paused. Nobody else is affected. No-op
 * unless <c> is OPEN/DRAINING and not paused already. Owner worker. */
void rl_conn_pause(struct rl_conn *c, unsigned k);

/* Rate limits (net/limit.c decides). <c> went over a bucket: it is not
 * read (the frames after the one that emptied the bucket, already read,
 * are kept for later: rl_limit_keep) until <until_ms>, then read again
 * from where it stopped; the kernel keeps what it sends meanwhile, so TCP
 * flow control slows it down. Its idle and frame timeouts do not run while
 * it is throttled and start over when it ends. A throttled connection
 * throttled again keeps the later end. No-op unless <c> is OPEN/DRAINING.
 * Owner worker. */
void rl_conn_throttle(struct rl_conn *c, uint64_t until_ms);

/* The loop turn's connection steps, in turn order. Owner worker.
 * Resumes the paused connections whose target backlog is below
 * RL_INBOX_LOW (they are read in rl_conn_read_deferred, their idle and
 * frame timers restarted); the others stay registered for a wakeup. */
void rl_conn_resume_paused(struct rl_worker *w);
/* Parses (and reads on) the connections the last turns stopped for want of
 * fan-out budget (RL_WORKER_FANOUT_BUDGET), in turn, while this turn's
 * budget lasts; before the ready sockets, so a stream of fresh publishers
 * cannot starve them. Those not reached go first next turn. */
void rl_conn_read_fanout_wait(struct rl_worker *w);
/* Reads what the last turn deferred (read budget spent, resumed, linger),
 * after every ready socket was served. */
void rl_conn_read_deferred(struct rl_worker *w);
/* rl_conn_flush for every connection with pending output. */
void rl_conn_flush_pending(struct rl_worker *w);
/* The close step: every connection marked with rl_conn_kill goes CLOSED
 * (upcall closed), is freed and its socket closed, once each. */
void rl_conn_close_marked(struct rl_worker *w);

/* Output. All return 0, or -ECANCELED when the connection no longer
 * accepts output (CLOSING, dead), -ENOMEM, or -ENOBUFS when this frame
 * made the connection a slow consumer: it was queued, then dropped with
 * the rest (so it was not delivered, and the queued-bytes gauge already
 * went down by it). A queue that passes the high watermark is written to
 * at once (one transport write) unless its socket is full; only what stays
 * queued after that counts against the hard limit. */
int rl_conn_send(struct rl_conn *c, uint8_t type, uint8_t flags, const void *payload,
		 size_t len);
/* Queues a shared frame (fan-out hot path). The caller counts it
 * (frames_out, out_queued, msgs_delivered) once per batch of members. */
int rl_conn_deliver(struct rl_conn *c, struct rl_msg *m);
/* Fan-out's fast path for one member (relay/fanout.c), inline because it
 * runs once per member of every message: queues <m> to <c> and returns true
 * when that is only a copy into <c>'s tail chunk, which then has the same
 * effect as rl_conn_deliver: <c> is OPEN, alive, not WebSocket, already on
 * the flush list, the frame fits the tail chunk and the queue stays at or
 * under <high>. Otherwise returns false and did nothing: call
 * rl_conn_deliver. The caller reads <high> once per message: RL_CFG(out_high)
 * for a frame of at most RL_COPY_MAX bytes while debug logging is off (that
 * logs every frame), else 0. Reads only the first cache line of <c>. */
static inline bool rl_conn_deliver_quick(struct rl_conn *c, const struct rl_msg *m, uint64_t high)
{
	uint32_t n = m->len;

	RL_ASSERT_OWNER(c);
	if (c->state != RL_CONN_OPEN || (c->flags & (RL_CF_DEAD | RL_CF_WS)) ||
	    c->out.tail_free < n || (uint64_t)c->out.bytes + n > high || cds_list_empty(&c->qlink))
		return false;
	rl_outq_append_tail(&c->out, m->data, n);
	return true;
}
/* ERROR frame for <code>; fatal codes also start CLOSING. <room> may be
 * NULL; <detail> replaces the default message when non-NULL. */
void rl_conn_error(struct rl_conn *c, enum relay_err code, const uint8_t *room, size_t room_len,
		   const char *detail);
/* The client memory budget (net/budget.c) drops <c>: fatal SLOW_CONSUMER,
 * its unsent output released now. Counted in slow_consumers and
 * budget_evictions. No-op unless <c> can still send. */
void rl_conn_evict(struct rl_conn *c);
/* Back under the budget: every connection whose reads were held
 * (RL_CF_HELD) goes on the read list, to be read next turn. Owner worker. */
void rl_conn_release_held(struct rl_worker *w);
/* Immediate close at the end of the turn (peer gone, socket error): marks
 * <c> dead, off every timer and work list, on the worker's dead list for
 * rl_conn_close_marked. A second call is a no-op. */
void rl_conn_kill(struct rl_conn *c);

/* Writes "conn-N" to <buf> (>= RL_CONN_NAME_MAX bytes), followed by the
 * suffix set with rl_conn_set_name_suffix (cluster mode: "@<node id>");
 * returns its length. */
#define RL_CONN_NAME_MAX 64
size_t rl_conn_name(uint64_t id, char *buf);
/* Sets the suffix of every connection name (<= 32 bytes, copied). Main
 * thread, before any worker starts. */
void rl_conn_set_name_suffix(const char *suffix);
bool rl_conn_can_send(const struct rl_conn *c);

/* ---- for transports (net/ only) ---------------------------------------------
 * A transport calls these from its own hooks, on the owner worker. */

/* For transports with a handshake (net/ only): its deadline is the frame
 * timer, --frame-timeout from accept (protocol-v1-ext.md §7). Arm from the
 * transport's accept hook; disarm once the handshake is done. A deadline
 * that passes is FRAME_TIMEOUT, which the transport turns into a close. */
void rl_conn_deadline_arm(struct rl_conn *c);
void rl_conn_deadline_done(struct rl_conn *c);
/* Queues <n> bytes of the transport's own protocol exactly as they go on
 * the wire (an HTTP answer, a WebSocket control frame), behind what is
 * queued. No Relay framing, no watermark check; counted as queued bytes.
 * 0, -ECANCELED once <c> no longer accepts output, -ENOMEM. */
int rl_conn_send_wire(struct rl_conn *c, const void *p, size_t n);
/* Output the peer asked for was queued with rl_conn_send_wire (a WebSocket
 * pong): the watermarks and the hard limit hold for it as for Relay frames,
 * so a peer that sends pings and never reads is a slow consumer. */
void rl_conn_check_output(struct rl_conn *c);
/* Ends an open <c> without a Relay ERROR: CLOSING, what is queued is
 * flushed, then the usual close (peer input discarded until EOF, all
 * within the 2 s CLOSING deadline). No-op once <c> is closing. */
void rl_conn_close_after_flush(struct rl_conn *c);
/* Peer bytes arrived that gave the decoder nothing yet (a WebSocket control
 * frame, part of a message): activity, as far as the idle timeout goes. */
void rl_conn_touch(struct rl_conn *c);
/* Reads <c> again next turn, after the others: for a transport that
 * stops before the kernel said EAGAIN (its own budget of wire bytes). */
void rl_conn_read_later(struct rl_conn *c);

/* Shutdown: SERVER_SHUTDOWN and a flush deadline. */
void rl_conn_shutdown(struct rl_conn *c, uint64_t deadline_ms);
/* rl_conn_shutdown(<deadline_ms>) for every live connection of worker <w>
 * (they are all on the idle or the closing list). Owner worker. */
void rl_conn_shutdown_all(struct rl_worker *w, uint64_t deadline_ms);
/* rl_conn_kill for every live connection of worker <w> (grace ran out). */
void rl_conn_kill_all(struct rl_worker *w);

#endif
