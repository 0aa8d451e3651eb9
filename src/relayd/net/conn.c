/* conn.c -- one client connection: state machine, receive path, send queue,
 * timers, and the worker's per-turn connection steps (deferred reads, flush,
 * close).
 * Threading: everything here runs on the connection's owner worker; other
 * workers reach a connection only through its owner's inbox (inbox.c).
 *
 * The layer above is reached only through the upcall table installed with
 * rl_conn_set_upcalls (complete frames, the final close); nothing here
 * names it.
 *
 * A connection is never freed inside an I/O path: rl_conn_kill marks it (the
 * worker's dead list) and the close step, rl_conn_close_marked, destroys
 * each marked connection once. */
#include "net/conn.h"
#include "net/budget.h"

#include "base/clock.h"
#include "net/limit.h"
#include "net/sockopt.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONN_READS_PER_TURN 2      /* x RL_SCRATCH_BYTES: the per-turn read budget */
#define CONN_FLUSH_CALLS 4         /* transport writes per connection per flush */
#define CONN_CLOSE_FLUSH_MS 2000   /* CLOSING: flush deadline after a fatal error */
/* Over the client memory budget, a connection in the middle of a frame
 * that has this much buffered is not read until the server is back under
 * it: small frames (and so well-behaved clients) are never held. */
#define CONN_HOLD_MIN RL_SCRATCH_BYTES

/* struct rl_outq counts in 32 bits: every append is followed by the hard
 * limit check, which drops the queue to at most the frame in progress, so
 * a queue never holds more than the hard limit + one frame + the final
 * ERROR (1 KiB of JSON at most). */
_Static_assert(RL_OPT_OUT_HARD_MAX + 2 * (RL_OPT_MAX_FRAME_MAX + RELAY_FRAME_LEN_BYTES) + 2048 <
		   UINT32_MAX,
	       "struct rl_outq.bytes cannot overflow");

static const char *const state_names[RL_CONN_NSTATES] = {
	[RL_CONN_INIT] = "INIT",
	[RL_CONN_OPEN] = "OPEN",
	[RL_CONN_DRAINING] = "DRAINING",
	[RL_CONN_CLOSING] = "CLOSING",
	[RL_CONN_CLOSED] = "CLOSED",
};

/* The spec's lifecycle: only OPEN <-> DRAINING is reversible; every close
 * passes through CLOSING (instantly when nothing is left to flush). INIT ->
 * CLOSED is only for a socket that could not be registered with the event
 * loop: it never became a connection, so there is nothing to flush. */
static const bool conn_transitions[RL_CONN_NSTATES][RL_CONN_NSTATES] = {
	[RL_CONN_INIT] = { [RL_CONN_OPEN] = true, [RL_CONN_CLOSED] = true },
	[RL_CONN_OPEN] = { [RL_CONN_DRAINING] = true, [RL_CONN_CLOSING] = true },
	[RL_CONN_DRAINING] = { [RL_CONN_OPEN] = true, [RL_CONN_CLOSING] = true },
	[RL_CONN_CLOSING] = { [RL_CONN_CLOSED] = true },
};

static const char *const err_text[RELAY_ERR_NCODES] = {
	[RELAY_ERR_INVALID_FRAME] = "invalid frame",
	[RELAY_ERR_FRAME_TOO_LARGE] = "frame exceeds the maximum frame size",
	[RELAY_ERR_UNSUPPORTED_VERSION] = "unsupported protocol version",
	[RELAY_ERR_UNKNOWN_MESSAGE_TYPE] = "unknown message type",
	[RELAY_ERR_PARSE_ERROR] = "payload is not valid JSON",
	[RELAY_ERR_INVALID_PAYLOAD] = "invalid payload",
	[RELAY_ERR_INVALID_ROOM] = "invalid room name",
	[RELAY_ERR_NOT_IN_ROOM] = "not a member of that room",
	[RELAY_ERR_TOO_MANY_ROOMS] = "too many rooms",
	[RELAY_ERR_IDLE_TIMEOUT] = "idle timeout",
	[RELAY_ERR_FRAME_TIMEOUT] = "frame not completed in time",
	[RELAY_ERR_SLOW_CONSUMER] = "slow consumer: outbound queue limit exceeded",
	[RELAY_ERR_SERVER_FULL] = "server full",
	[RELAY_ERR_SERVER_SHUTDOWN] = "server shutting down",
	[RELAY_ERR_UNAUTHORIZED] = "not authenticated",
	[RELAY_ERR_TOKEN_EXPIRED] = "token expired",
	[RELAY_ERR_FORBIDDEN] = "not allowed by the token",
	[RELAY_ERR_TOO_MANY_CONNECTIONS] = "too many connections from your address",
};

/* Set once before any worker runs (rl_conn_set_upcalls), read-only after. */
static struct rl_conn_upcalls conn_up;

void rl_conn_set_upcalls(const struct rl_conn_upcalls *up)
{
	assert(up->frame && up->closed);
	conn_up = *up;
}

#ifndef NDEBUG
static _Thread_local const struct rl_worker *conn_self;

void rl_conn_assert_owner(const struct rl_conn *c)
{
	if (!conn_self)
		conn_self = c->w;
	assert(c->w == conn_self && "connection touched by a non-owner thread");
}
#endif

/* Set once before any worker runs, read-only after. */
static char conn_name_suffix[40];

void rl_conn_set_name_suffix(const char *suffix)
{
	snprintf(conn_name_suffix, sizeof(conn_name_suffix), "%s", suffix);
}

size_t rl_conn_name(uint64_t id, char *buf)
{
	int n = snprintf(buf, RL_CONN_NAME_MAX, "conn-%" PRIu64 "%s", id, conn_name_suffix);
	return (size_t)n;
}

static void conn_set_state(struct rl_conn *c, enum rl_conn_state to)
{
	if (!conn_transitions[c->state][to]) {
		RL_ERRORF(c->id, "illegal transition %s -> %s", state_names[c->state],
			  state_names[to]);
		abort();
	}
	RL_DEBUGF(c->id, "state %s -> %s", state_names[c->state], state_names[to]);
	c->state = (uint8_t)to;
}

bool rl_conn_can_send(const struct rl_conn *c)
{
	return (c->state == RL_CONN_OPEN || c->state == RL_CONN_DRAINING) &&
	       !(c->flags & RL_CF_DEAD);
}

struct rl_conn *rl_conn_new(struct rl_worker *w, int fd, const struct rl_transport *tp,
			    enum relay_err refuse)
{
	/* Every op is required; the newest first (a transport written before it
	 * would crash at its first lingering close, not here). */
	assert(tp->pending_output && tp->pending_input && tp->shutdown_wr && tp->abort);
	bool refused = refuse != RELAY_ERR_NONE;
	struct rl_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd); /* no transport state exists yet */
		if (!refused)
			rl_stats_conn_del();
		return NULL;
	}
	c->src = RL_SRC_CONN;
	c->fd = fd;
	c->tp = tp;
	c->w = w;
	c->state = RL_CONN_INIT;
	c->id = __atomic_add_fetch(&rl_srv.next_conn_id, 1, __ATOMIC_RELAXED);
	relay_decoder_init(&c->dec, (uint32_t)rl_srv.cfg.max_frame);
	rl_timer_init(&c->life);
	rl_timer_init(&c->frame);
	rl_timer_init(&c->drain);
	CDS_INIT_LIST_HEAD(&c->qlink);
	CDS_INIT_LIST_HEAD(&c->rlink);
	if (refused)
		c->flags |= RL_CF_REFUSED;
	int rc = tp->accept(c);
	if (rc == 0)
		rl_sock_keepalive(fd, (unsigned)((RL_CFG(keepalive_ms) + 999) / 1000)); /* s, rounded up */
	if (rc == 0 && rl_evloop_add(&w->loop, fd, RL_EV_IN | RL_EV_OUT | RL_EV_EDGE, c))
		rc = -errno;
	if (rc) {
		RL_WARNF(c->id, "cannot register socket: %s", strerror(-rc));
		conn_set_state(c, RL_CONN_CLOSED);
		rl_timer_disarm(&c->frame); /* a handshake deadline (rl_conn_deadline_arm) */
		tp->close(c);
		free(c);
		if (!refused)
			rl_stats_conn_del();
		return NULL;
	}
	conn_set_state(c, RL_CONN_OPEN);
	rl_timer_arm(&w->timers[RL_CONN_T_IDLE], &c->life, w->now_ms);
	w->nconns++;
	RL_STAT_ADD(w->stats, conns_accepted, 1);
	RL_STAT_ADD(w->stats, conns_current, 1);
	if (w->stats->conns_current > w->stats->conns_peak)
		RL_STAT_SET(w->stats, conns_peak, w->stats->conns_current);
	RL_DEBUGF(c->id, "accepted fd %d (%s)%s%s", fd, tp->name, refused ? " refused: " : "",
		  refused ? relay_err_name(refuse) : "");
	if (refused && refuse == RELAY_ERR_SERVER_FULL)
		RL_STAT_ADD(w->stats, refused_full, 1); /* TOO_MANY_CONNECTIONS: limit.c */
	if (refused && !(c->flags & RL_CF_TP_REFUSES))
		rl_conn_error(c, refuse, NULL, 0, NULL);
	if (!refused && conn_up.opened)
		conn_up.opened(c);
	return c;
}

/* A rate-limit throttle of <c> is over (its end, or <c> closes): the
 * gauge and the pause time. <c>'s life timer is the caller's. */
static void conn_throttle_over(struct rl_conn *c)
{
	struct rl_worker *w = c->w;
	c->flags &= (uint16_t)~RL_CF_THROTTLED;
	RL_STAT_SUB(w->stats, throttled, 1);
	RL_STAT_ADD(w->stats, throttled_ms, w->now_ms - c->lim->throttled_ms);
}

/* Off read_list or its paused list; no longer paused or throttled. */
static void conn_unlink_read(struct rl_conn *c)
{
	cds_list_del_init(&c->rlink);
	c->flags &= (uint16_t)~(RL_CF_PAUSED | RL_CF_HELD);
	if (c->flags & RL_CF_THROTTLED)
		conn_throttle_over(c);
}

/* Bytes read from <c>'s socket but not parsed yet, because the turn's
 * fan-out budget was spent: at most one read's worth (64 KiB), allocated
 * only then, freed once parsed. */
struct rl_conn_parked {
	uint32_t len; /* bytes at data */
	uint32_t off; /* parsed so far */
	uint8_t data[];
};

static void conn_parked_free(struct rl_conn *c)
{
	if (!(c->flags & RL_CF_PARKED))
		return;
	free(c->parked);
	c->parked = NULL;
	c->flags &= (uint16_t)~RL_CF_PARKED;
}

void rl_conn_kill(struct rl_conn *c)
{
	RL_ASSERT_OWNER(c);
	if (c->flags & RL_CF_DEAD)
		return;
	if (c->state == RL_CONN_OPEN || c->state == RL_CONN_DRAINING)
		conn_set_state(c, RL_CONN_CLOSING); /* nothing more will be flushed */
	c->flags |= RL_CF_DEAD;
	/* Off every timer and work list now, so no later step of this turn sees it. */
	rl_timer_disarm(&c->life);
	rl_timer_disarm(&c->frame);
	rl_timer_disarm(&c->drain);
	cds_list_del_init(&c->qlink);
	conn_unlink_read(c);
	conn_parked_free(c); /* <parked> shares its place with <next_dead> */
	c->next_dead = c->w->dead;
	c->w->dead = c;
}

static void conn_want_flush(struct rl_conn *c)
{
	if (!(c->flags & RL_CF_WBLOCKED) && cds_list_empty(&c->qlink))
		cds_list_add_tail(&c->qlink, &c->w->flush_list);
}

/* Whether closing <c>'s socket now could lose what we sent: the kernel
 * still holds bytes of ours the peer has not acknowledged, or the peer may
 * still write (it sent no EOF) and either has unread bytes here already
 * or will send some. Closing a socket with unread input, or receiving a
 * byte after the close, makes the kernel answer with an RST and discard
 * what it still held for the peer. A broken socket (-errno) has nothing
 * left to save. */
static bool conn_output_at_risk(struct rl_conn *c)
{
	if (c->flags & RL_CF_PEER_EOF)
		return false; /* it writes no more: the kernel finishes sending */
	int in = c->tp->pending_input(c);
	if (in != 0)
		return in > 0;
	return c->tp->pending_output(c) > 0;
}

/* Output is done (or abandoned) for a CLOSING connection: close now unless
 * that could lose what we sent (conn_output_at_risk); then linger instead:
 * half-close (our FIN follows the last frame), discard the peer's input,
 * and close at its EOF or once it has acknowledged everything with nothing
 * unread (conn_linger), at the latest at the CLOSING deadline (reset, see
 * tp->abort). Before, a client whose receive window was shut lost the rest
 * of the last frame and the fatal ERROR, both still in our kernel's send
 * buffer, as soon as it wrote one more byte. */
static void conn_closing_done(struct rl_conn *c)
{
	if (!conn_output_at_risk(c)) {
		rl_conn_kill(c);
		return;
	}
	RL_DEBUGF(c->id, "lingering: the peer has not acknowledged everything yet");
	c->tp->shutdown_wr(c); /* on failure the linger read meets the error and closes */
	c->flags |= RL_CF_LINGER;
	/* Discard next turn, never here: we may be inside another connection's
	 * parse, whose frames point into the shared scratch buffer. */
	if (cds_list_empty(&c->rlink))
		cds_list_add_tail(&c->rlink, &c->w->read_list);
}

static void conn_begin_closing(struct rl_conn *c, uint64_t deadline)
{
	struct rl_worker *w = c->w;
	conn_set_state(c, RL_CONN_CLOSING);
	rl_timer_arm(&w->timers[RL_CONN_T_CLOSING], &c->life, deadline);
	rl_timer_disarm(&c->frame);
	rl_timer_disarm(&c->drain);
	conn_unlink_read(c);
	if (c->out.bytes == 0 && !(c->flags & RL_CF_TP_HELD))
		conn_closing_done(c);
	else
		conn_want_flush(c);
}

static void conn_log_out(const struct rl_conn *c, uint8_t type, uint8_t flags, size_t plen)
{
	char bits[11];
	RL_DEBUGF(c->id, "out %s v1 flags %s payload %zu", relay_msg_type_name(type),
		  rl_log_bits8(flags, bits), plen);
}

static void conn_queued(struct rl_conn *c, size_t n)
{
	RL_STAT_ADD(c->w->stats, frames_out, 1);
	RL_STAT_ADD(c->w->stats, out_queued, n);
	conn_want_flush(c);
}

/* Queues one frame regardless of state (the final ERROR of a closing conn),
 * inside its WebSocket message header (<lead> bytes) on a WebSocket conn. */
static int conn_queue_frame(struct rl_conn *c, uint8_t type, uint8_t flags, const void *payload,
			    size_t len)
{
	size_t total = RELAY_FRAME_HDR_BYTES + len;
	size_t lead = (c->flags & RL_CF_WS) ? rl_wsf_binary_hdr_len(total) : 0;
	struct rl_worker *w = c->w;

	if (lead + total <= RL_COPY_MAX) {
		uint8_t *d = rl_outq_reserve(&c->out, &w->pool, lead + total);
		if (!d)
			return -ENOMEM;
		if (lead)
			rl_wsf_binary_hdr(d, total);
		relay_frame_encode(d + lead, type, flags, payload, (uint32_t)len);
		rl_outq_commit(&c->out, lead + total);
	} else {
		struct rl_msg *m = rl_msg_new(total, 0);
		if (!m)
			return -ENOMEM;
		relay_frame_encode(m->data, type, flags, payload, (uint32_t)len);
		rl_msg_seal(m);
		int rc = rl_outq_push_framed(&c->out, &w->pool, m, (uint32_t)lead);
		rl_msg_put(m);
		if (rc)
			return rc;
	}
	if (rl_log_on(RL_LOG_DEBUG))
		conn_log_out(c, type, flags, len);
	conn_queued(c, lead + total);
	return 0;
}

/* A slow consumer loses what it has not started to receive (delivery is
 * at-most-once): the memory is released now and the final ERROR goes out
 * right after the frame on the wire. */
static void conn_drop_unsent(struct rl_conn *c)
{
	size_t n = (c->flags & RL_CF_WS)
		       ? rl_outq_drop_unsent_framed(&c->out, &c->w->pool, rl_wsf_server_frame_size)
		       : rl_outq_drop_unsent(&c->out, &c->w->pool);
	RL_STAT_SUB(c->w->stats, out_queued, n);
	c->w->mem_freed += n;
}

/* Slow consumers can be dropped by the hundred in one turn (one large
 * message to many stalled members): one line a second per worker, the
 * rest counted (worker.c writes the summary of a burst). */
static bool conn_log_slow(struct rl_conn *c, uint64_t *more)
{
	return rl_log_on(RL_LOG_INFO) && rl_ratelimit_ok(&c->w->slow_rl, c->w->now_ms, 1000, more);
}

/* One write attempt: at most <calls> transport writes of <c>'s queue
 * (*<sent> += bytes written); counters, WBLOCKED, DRAINING -> OPEN at the
 * low watermark. false when the write failed and <c> was killed. */
static bool conn_write(struct rl_conn *c, int calls, size_t *sent)
{
	struct rl_worker *w = c->w;
	size_t n = 0;
	int rc = rl_outq_flush(&c->out, &w->pool, c->tp->writev, c, calls, &n);
	if (rc == 0 && (c->flags & RL_CF_TP_HELD))
		rc = (int)c->tp->writev(c, NULL, 0); /* what the transport took but holds */

	*sent += n;
	RL_STAT_ADD(w->stats, bytes_out, n);
	RL_STAT_SUB(w->stats, out_queued, n);
	if (rc == -EAGAIN) {
		c->flags |= RL_CF_WBLOCKED;
	} else if (rc == 1) {
		conn_want_flush(c);
	} else if (rc < 0) {
		RL_DEBUGF(c->id, "write failed: %s", strerror(-rc));
		rl_conn_kill(c);
		return false;
	}
	if (c->state == RL_CONN_DRAINING && c->out.bytes <= RL_CFG(out_low)) {
		conn_set_state(c, RL_CONN_OPEN);
		rl_timer_disarm(&c->drain);
		RL_DEBUGF(c->id, "backpressure relieved: %zu bytes queued", (size_t)c->out.bytes);
	}
	return true;
}

/* A slow consumer (fatal SLOW_CONSUMER, counted) loses what it has not
 * started to receive. */
static void conn_slow_consumer(struct rl_conn *c)
{
	RL_STAT_ADD(c->w->stats, slow_consumers, 1);
	conn_drop_unsent(c);
	rl_conn_error(c, RELAY_ERR_SLOW_CONSUMER, NULL, 0, NULL);
}

/* <c>'s queue passed the high watermark, the last <n> bytes just appended.
 * It is written to now, inside the turn, unless its socket is full: the
 * flush step comes only after the whole turn's fan-out, and a reader that
 * keeps up must not be judged on what one turn queued before any write was
 * tried. Only what stays queued after that attempt (or while the socket is
 * full) counts against the hard limit. Returns 0, or -ENOBUFS when <c>
 * became a slow consumer and the appended bytes were dropped with the rest
 * (0 when the write began them: the frame in progress is kept). */
static int conn_over_high(struct rl_conn *c, size_t n)
{
	size_t before = c->out.bytes - n, sent = 0;
	uint64_t hard;

	if (!(c->flags & RL_CF_WBLOCKED) && !conn_write(c, 1, &sent))
		return 0; /* killed: the queue goes with it (counted as it was) */
	if (c->state == RL_CONN_OPEN && c->out.bytes > RL_CFG(out_high)) {
		conn_set_state(c, RL_CONN_DRAINING);
		rl_timer_arm(&c->w->timers[RL_CONN_T_DRAIN], &c->drain, c->w->now_ms);
		RL_DEBUGF(c->id, "backpressure detected: %zu bytes queued", (size_t)c->out.bytes);
	}
	hard = RL_CFG(out_hard);
	if (c->out.bytes <= hard)
		return 0;
	uint64_t more;
	if (conn_log_slow(c, &more))
		RL_INFOF(c->id,
			 "slow consumer: %zu bytes queued (hard limit %" PRIu64 "; %" PRIu64
			 " more since last report)",
			 (size_t)c->out.bytes, hard, more);
	conn_slow_consumer(c);
	return sent > before ? 0 : -ENOBUFS;
}

/* After every append of <n> bytes: one compare unless the queue is above
 * the high watermark (hard >= high: rl_config_check). */
static inline int conn_check_watermarks(struct rl_conn *c, size_t n)
{
	if (c->out.bytes <= RL_CFG(out_high))
		return 0;
	return conn_over_high(c, n);
}

int rl_conn_send(struct rl_conn *c, uint8_t type, uint8_t flags, const void *payload, size_t len)
{
	RL_ASSERT_OWNER(c);
	if (!rl_conn_can_send(c))
		return -ECANCELED;
	int rc = conn_queue_frame(c, type, flags, payload, len);
	if (rc == 0)
		rc = conn_check_watermarks(c, RELAY_FRAME_HDR_BYTES + len);
	return rc;
}

int rl_conn_deliver(struct rl_conn *c, struct rl_msg *m)
{
	RL_ASSERT_OWNER(c);
	if (!rl_conn_can_send(c))
		return -ECANCELED;
	/* A WebSocket member queues the message's second encoding: the same
	 * bytes from its sealed header on (net/msg.h); nothing is re-encoded. */
	uint32_t lead = (c->flags & RL_CF_WS) ? rl_msg_ws_lead(m) : 0;
	assert(!lead || m->data[-(ptrdiff_t)lead] == (0x80 | RL_WSF_OP_BINARY)); /* sealed */
	int rc = rl_outq_push_framed(&c->out, &c->w->pool, m, lead);
	if (rc)
		return rc;
	if (lead)
		RL_STAT_ADD(c->w->stats, out_queued, lead); /* the caller counted m->len */
	if (rl_log_on(RL_LOG_DEBUG))
		conn_log_out(c, m->data[RELAY_FRAME_TYPE_OFFSET], m->data[RELAY_FRAME_FLAGS_OFFSET],
			     m->len - RELAY_FRAME_HDR_BYTES);
	conn_want_flush(c); /* counters: the caller adds them per message, not per member */
	return conn_check_watermarks(c, m->len);
}

void rl_conn_evict(struct rl_conn *c)
{
	RL_ASSERT_OWNER(c);
	if (!rl_conn_can_send(c))
		return;
	RL_STAT_ADD(c->w->stats, budget_evictions, 1);
	uint64_t more;
	if (conn_log_slow(c, &more))
		RL_INFOF(c->id,
			 "slow consumer: %zu bytes queued while over the client memory budget (%" PRIu64
			 " more since last report)",
			 (size_t)c->out.bytes, more);
	conn_slow_consumer(c);
}

static size_t conn_error_json(uint8_t *buf, size_t cap, enum relay_err code, const uint8_t *room,
			      size_t room_len, const char *detail)
{
	struct relay_jw jw;
	relay_jw_init(&jw, buf, cap);
	relay_jw_obj_begin(&jw);
	relay_jw_key(&jw, "code");
	relay_jw_cstr(&jw, relay_err_name(code));
	relay_jw_key(&jw, "message");
	relay_jw_cstr(&jw, detail ? detail : err_text[code]);
	relay_jw_key(&jw, "fatal");
	relay_jw_bool(&jw, relay_err_is_fatal(code));
	if (room && room_len <= 4 * RELAY_ROOM_MAX_BYTES && relay_utf8_valid(room, room_len)) {
		relay_jw_key(&jw, "room");
		relay_jw_str(&jw, room, room_len);
	}
	relay_jw_obj_end(&jw);
	return jw.overflow ? 0 : jw.len;
}

void rl_conn_error(struct rl_conn *c, enum relay_err code, const uint8_t *room, size_t room_len,
		   const char *detail)
{
	uint8_t buf[1024];
	bool fatal = relay_err_is_fatal(code);

	RL_ASSERT_OWNER(c);
	if (!rl_conn_can_send(c))
		return;
	size_t n = conn_error_json(buf, sizeof(buf), code, room, room_len, detail);
	/* never send more than max_frame (the length field counts the header's 3 bytes) */
	if (n == 0 || n + RELAY_FRAME_HDR_BYTES - RELAY_FRAME_LEN_BYTES > rl_srv.cfg.max_frame)
		n = conn_error_json(buf, sizeof(buf), code, NULL, 0, NULL);
	RL_STAT_ADD(c->w->stats, errors[code], 1);
	if (fatal)
		RL_DEBUGF(c->id, "fatal %s", relay_err_name(code));
	/* Replies count against the outbound limits like every other frame. */
	if (n && conn_queue_frame(c, RELAY_MSG_ERROR, RELAY_FLAG_JSON, buf, n) == 0 && !fatal)
		conn_check_watermarks(c, RELAY_FRAME_HDR_BYTES + n);
	if (fatal && c->tp->fatal_error)
		c->tp->fatal_error(c, code); /* WebSocket: the close frame follows */
	if (fatal)
		conn_begin_closing(c, c->w->now_ms + CONN_CLOSE_FLUSH_MS);
}

/* A timer of <c> expired (<why>: the list's error). Takes <c> off that
 * list: the fatal error moves it to CLOSING (off the idle, frame and drain
 * lists), a passed flush deadline kills it. */
static void conn_expire(struct rl_conn *c, enum relay_err why)
{
	if (c->state == RL_CONN_CLOSING) {
		/* Whatever the kernel still holds for it goes too: see tp->abort. */
		RL_DEBUGF(c->id, "flush deadline passed with %zu bytes unsent: reset",
			  (size_t)c->out.bytes);
		c->flags |= RL_CF_ABORT;
		rl_conn_kill(c);
		return;
	}
	if (why == RELAY_ERR_SLOW_CONSUMER) {
		uint64_t more;
		if (conn_log_slow(c, &more))
			RL_INFOF(c->id,
				 "slow consumer: DRAINING for longer than %" PRIu64
				 " ms (%" PRIu64 " more since last report)",
				 RL_CFG(slow_ms), more);
		conn_slow_consumer(c);
		return;
	}
	rl_conn_error(c, why, NULL, 0, NULL);
}

void rl_conn_shutdown(struct rl_conn *c, uint64_t deadline_ms)
{
	if (c->flags & RL_CF_DEAD)
		return;
	/* CLOSING: life.start_ms is the flush deadline. It is changed in place:
	 * the closing list may lose its order, but at <deadline_ms> the worker
	 * kills every connection left (worker_check_stop). */
	if (c->state == RL_CONN_CLOSING) {
		if (deadline_ms < c->life.start_ms)
			c->life.start_ms = deadline_ms;
		return;
	}
	rl_conn_error(c, RELAY_ERR_SERVER_SHUTDOWN, NULL, 0, NULL);
	if (c->state == RL_CONN_CLOSING)
		c->life.start_ms = deadline_ms;
}

/* A paused or throttled connection is not timed out for bytes we declined
 * to read: its timer starts over (and again when it resumes). Returns
 * whether it was. */
static bool conn_timer_paused(struct rl_conn *c, struct rl_timer *t, enum rl_conn_timer list)
{
	if (!(c->flags & (RL_CF_PAUSED | RL_CF_THROTTLED)))
		return false;
	rl_timer_arm(&c->w->timers[list], t, c->w->now_ms);
	return true;
}

static void conn_idle_expired(struct rl_timer *t, void *arg)
{
	struct rl_conn *c = caa_container_of(t, struct rl_conn, life);
	(void)arg;
	if (!conn_timer_paused(c, t, RL_CONN_T_IDLE))
		conn_expire(c, RELAY_ERR_IDLE_TIMEOUT);
}

static void conn_frame_expired(struct rl_timer *t, void *arg)
{
	struct rl_conn *c = caa_container_of(t, struct rl_conn, frame);
	(void)arg;
	if (!conn_timer_paused(c, t, RL_CONN_T_FRAME))
		conn_expire(c, RELAY_ERR_FRAME_TIMEOUT);
}

static void conn_drain_expired(struct rl_timer *t, void *arg)
{
	(void)arg;
	conn_expire(caa_container_of(t, struct rl_conn, drain), RELAY_ERR_SLOW_CONSUMER);
}

static void conn_closing_expired(struct rl_timer *t, void *arg)
{
	(void)arg;
	conn_expire(caa_container_of(t, struct rl_conn, life), RELAY_ERR_NONE);
}

static void conn_throttle_expired(struct rl_timer *t, void *arg);

void rl_conn_worker_init(struct rl_worker *w)
{
	struct rl_config *cfg = &rl_srv.cfg; /* reloadable: timer.c loads them atomically */

	CDS_INIT_LIST_HEAD(&w->flush_list);
	CDS_INIT_LIST_HEAD(&w->read_list);
	CDS_INIT_LIST_HEAD(&w->fanout_wait);
	w->fanout_work = 0;
	for (unsigned k = 0; k < RL_MAX_WORKERS; k++)
		CDS_INIT_LIST_HEAD(&w->paused[k]);
	w->paused_mask = 0;
	CDS_INIT_LIST_HEAD(&w->held_list);
	w->dead = NULL;

	rl_timer_list_init(&w->timers[RL_CONN_T_IDLE], &cfg->idle_ms, conn_idle_expired, NULL);
	rl_timer_list_init(&w->timers[RL_CONN_T_FRAME], &cfg->frame_ms, conn_frame_expired, NULL);
	rl_timer_list_init(&w->timers[RL_CONN_T_DRAIN], &cfg->slow_ms, conn_drain_expired, NULL);
	rl_timer_list_init_deadline(&w->timers[RL_CONN_T_CLOSING], conn_closing_expired, NULL);
	rl_timer_list_init_deadline(&w->timers[RL_CONN_T_THROTTLE], conn_throttle_expired, NULL);
	/* The layer above's lists stay empty until it sets them up. */
	for (unsigned i = RL_CONN_NTIMERS; i < RL_WORKER_NTIMERS; i++)
		rl_timer_list_init_deadline(&w->timers[i], NULL, NULL);
}

/* Any received byte counts as activity: move to the idle list's tail. */
static void conn_touch(struct rl_conn *c)
{
	struct rl_worker *w = c->w;
	if (c->life.start_ms == w->now_ms)
		return;
	rl_timer_arm(&w->timers[RL_CONN_T_IDLE], &c->life, w->now_ms);
}

void rl_conn_deadline_arm(struct rl_conn *c)
{
	rl_timer_arm(&c->w->timers[RL_CONN_T_FRAME], &c->frame, c->w->now_ms);
}

void rl_conn_deadline_done(struct rl_conn *c)
{
	if (relay_decoder_pending(&c->dec) == 0)
		rl_timer_disarm(&c->frame);
}

void rl_conn_touch(struct rl_conn *c)
{
	RL_ASSERT_OWNER(c);
	if (c->state == RL_CONN_OPEN || c->state == RL_CONN_DRAINING)
		conn_touch(c);
}

void rl_conn_read_later(struct rl_conn *c)
{
	RL_ASSERT_OWNER(c);
	if (cds_list_empty(&c->rlink))
		cds_list_add_tail(&c->rlink, &c->w->read_list);
}

int rl_conn_send_wire(struct rl_conn *c, const void *p, size_t n)
{
	const uint8_t *b = p;

	RL_ASSERT_OWNER(c);
	if (!rl_conn_can_send(c))
		return -ECANCELED;
	while (n) { /* contiguous room is at most one chunk */
		size_t k = n < RL_CHUNK_CAP ? n : RL_CHUNK_CAP;
		uint8_t *d = rl_outq_reserve(&c->out, &c->w->pool, k);
		if (!d)
			return -ENOMEM;
		memcpy(d, b, k);
		rl_outq_commit(&c->out, k);
		RL_STAT_ADD(c->w->stats, out_queued, k);
		b += k;
		n -= k;
	}
	conn_want_flush(c);
	return 0;
}

void rl_conn_check_output(struct rl_conn *c)
{
	RL_ASSERT_OWNER(c);
	if (rl_conn_can_send(c))
		conn_check_watermarks(c, 0);
}

void rl_conn_close_after_flush(struct rl_conn *c)
{
	RL_ASSERT_OWNER(c);
	if (rl_conn_can_send(c))
		conn_begin_closing(c, c->w->now_ms + CONN_CLOSE_FLUSH_MS);
}

/* Part of a peer frame is held: by the decoder, or by the transport (a
 * WebSocket message still arriving). */
static bool conn_partial(const struct rl_conn *c)
{
	return relay_decoder_pending(&c->dec) > 0 || (c->tp->in_message && c->tp->in_message(c));
}

/* Keeps the frame list exact whatever --frame-timeout is now: the list
 * reads the (reloadable) timeout when it runs, so a frame completed while
 * it was 0 must be off the list and one started then must be on it, from
 * its start, for when it is turned on again. */
static void conn_frame_timer(struct rl_conn *c, bool was_pending, unsigned frames)
{
	struct rl_worker *w = c->w;
	if (!conn_partial(c)) {
		rl_timer_disarm(&c->frame);
		return;
	}
	if (was_pending && frames == 0)
		return; /* the same frame is still arriving */
	rl_timer_arm(&w->timers[RL_CONN_T_FRAME], &c->frame, w->now_ms);
}

/* What conn_parse did with a buffer. */
enum conn_parse_end {
	CONN_PARSED = 0, /* every byte handled (an incomplete frame is in the decoder) */
	CONN_BUDGET,     /* stopped between frames: the fan-out budget is spent */
	CONN_THROTTLED,  /* stopped between frames: over a rate limit (net/limit.c) */
	CONN_STOPPED,    /* <c> no longer reads: closing, dead or broken */
};

/* Whether <c>, a connection whose frames fan out here, must wait for the
 * next turn's fan-out budget. One flag test for every other connection. */
static bool conn_fanout_spent(const struct rl_conn *c)
{
	return (c->flags & RL_CF_FANOUT) && c->w->fanout_work >= RL_WORKER_FANOUT_BUDGET;
}

/* Feeds <buf> to <c>'s decoder and handles its frames, stopping between two
 * of them when the turn's fan-out budget is spent or a rate limit throttled
 * <c>: the caller then takes what is left with relay_decoder_rest. */
static enum conn_parse_end conn_parse(struct rl_conn *c, const uint8_t *buf, size_t n)
{
	bool was_pending = conn_partial(c);
	unsigned frames = 0;
	struct relay_frame f;
	enum conn_parse_end end = CONN_PARSED;

	relay_decoder_feed(&c->dec, buf, n);
	for (;;) {
		enum relay_decode_status st = relay_decoder_next(&c->dec, &f);
		if (st == RELAY_DECODE_NEED_MORE)
			break;
		if (st == RELAY_DECODE_NOMEM) { /* this client's frame, not the server, fails */
			RL_WARNF(c->id, "out of memory buffering a frame: connection closed");
			rl_conn_kill(c);
			return CONN_STOPPED;
		}
		if (st == RELAY_DECODE_ERROR) {
			RL_STAT_ADD(c->w->stats, frames_in[0], 1);
			rl_conn_error(c, c->dec.err, NULL, 0, NULL);
			return CONN_STOPPED;
		}
		frames++;
		uint64_t work = c->w->fanout_work;
		conn_up.frame(c, &f);
		if (c->w->fanout_work != work)
			c->flags |= RL_CF_FANOUT;
		if (!rl_conn_can_send(c))
			return CONN_STOPPED;
		if (c->flags & RL_CF_THROTTLED) {
			end = CONN_THROTTLED; /* the rest waits for the throttle's end, in order */
			break;
		}
		if (conn_fanout_spent(c)) {
			end = CONN_BUDGET; /* between frames: the decoder gives the rest back */
			break;
		}
	}
	conn_frame_timer(c, was_pending, frames);
	return end;
}

static void conn_peer_eof(struct rl_conn *c)
{
	RL_DEBUGF(c->id, "peer closed");
	c->flags |= RL_CF_PEER_EOF;
	if (c->out.bytes == 0 || c->state == RL_CONN_CLOSING)
		rl_conn_kill(c);
	else
		conn_begin_closing(c, c->w->now_ms + CONN_CLOSE_FLUSH_MS);
}

static void conn_read_failed(struct rl_conn *c, int err)
{
	RL_DEBUGF(c->id, "read failed: %s", strerror(err));
	rl_conn_kill(c);
}

/* Keeps the worker's partial-frame gauge (the client memory budget's
 * share of decoder tails) in step with <c>'s tail, which held <before>
 * bytes. */
static void conn_tail_account(struct rl_conn *c, size_t before)
{
	size_t now = relay_decoder_capacity(&c->dec);
	if (now == before)
		return;
	RL_STAT_ADD(c->w->stats, mem_tails, (uint64_t)now - (uint64_t)before);
	if (now > before)
		rl_budget_tails_grew(c->w); /* past the budget: hold from the next read on */
}

/* A held connection's peer hung up (or reset): the frame it was sending
 * can never complete without taking the memory it was held for (a client
 * could fill its socket buffer with the rest of a huge frame, then close,
 * to make relayd read it all), and nobody is left to tell: closed. */
static void conn_held_hangup(struct rl_conn *c)
{
	RL_DEBUGF(c->id, "peer closed while its reads were held: closed");
	rl_conn_kill(c);
}

/* Over the client memory budget, a connection with a large partial frame
 * is not read (its tail stops growing) until rl_conn_release_held: it goes
 * on the worker's held list (one whose FIN was already seen is closed
 * instead). Returns whether <c> was held or closed. */
static bool conn_hold(struct rl_conn *c)
{
	struct rl_worker *w = c->w;

	if (!w->mem_over || relay_decoder_pending(&c->dec) == 0 ||
	    relay_decoder_capacity(&c->dec) < CONN_HOLD_MIN)
		return false;
	if (c->flags & RL_CF_RDHUP) {
		conn_held_hangup(c);
		return true;
	}
	c->flags |= RL_CF_HELD;
	cds_list_del_init(&c->rlink);
	cds_list_add_tail(&c->rlink, &w->held_list);
	RL_STAT_ADD(w->stats, read_holds, 1);
	RL_DEBUGF(c->id,
		  "over the client memory budget: reads held (%zu bytes of a frame buffered)",
		  relay_decoder_pending(&c->dec));
	return true;
}

static void conn_unhold(struct rl_conn *c)
{
	c->flags &= (uint16_t)~RL_CF_HELD;
	cds_list_del_init(&c->rlink);
}

void rl_conn_release_held(struct rl_worker *w)
{
	while (!cds_list_empty(&w->held_list)) {
		struct rl_conn *c = cds_list_first_entry(&w->held_list, struct rl_conn, rlink);
		conn_unhold(c);
		cds_list_add_tail(&c->rlink, &w->read_list); /* read next turn */
	}
}

/* <c> waits for the next turn's fan-out budget on the fan-out wait list (a paused
 * connection stays on its paused list: resuming reads it). */
static void conn_wait_budget(struct rl_conn *c)
{
	if (c->flags & RL_CF_PAUSED)
		return;
	cds_list_del(&c->rlink); /* off read_list or the wait list, if there */
	cds_list_add_tail(&c->rlink, &c->w->fanout_wait);
}

/* conn_parse stopped <c> for the budget with the rest of <buf> (the
 * scratch buffer, which the next read overwrites, or <parked> itself) not
 * parsed: keep it, and wait. false when <c> was closed for want of memory. */
static bool conn_park(struct rl_conn *c)
{
	const uint8_t *rest;
	size_t n = relay_decoder_rest(&c->dec, &rest);
	struct rl_conn_parked *h = (c->flags & RL_CF_PARKED) ? c->parked : NULL;

	if (h && n) {
		h->off = (uint32_t)(rest - h->data); /* the rest of the same bytes */
	} else if (!h && n) {
		h = malloc(sizeof(*h) + n);
		if (!h) {
			RL_WARNF(c->id, "out of memory holding %zu bytes: connection closed", n);
			rl_conn_kill(c);
			return false;
		}
		memcpy(h->data, rest, n);
		h->len = (uint32_t)n;
		h->off = 0;
		c->parked = h;
		c->flags |= RL_CF_PARKED;
	} else {
		conn_parked_free(c); /* stopped right at the end */
	}
	conn_wait_budget(c);
	return true;
}

/* <c> was throttled by the frame just handled: the bytes of this feed
 * after it are kept (net/limit.c) to be parsed first when the throttle
 * ends. false when <c> was closed for want of memory. */
static bool conn_keep_rest(struct rl_conn *c)
{
	const uint8_t *rest;
	size_t n = relay_decoder_rest(&c->dec, &rest);

	if (rl_limit_keep(c, rest, n) == 0)
		return true;
	RL_WARNF(c->id, "out of memory keeping %zu bytes past its rate limit: connection closed",
		 n);
	rl_conn_kill(c);
	return false;
}

/* After conn_parse stopped early: keeps the rest of the feed where the
 * reason for stopping wants it. false when <c> was closed. */
static bool conn_keep(struct rl_conn *c, enum conn_parse_end end)
{
	return end == CONN_BUDGET ? conn_park(c) : conn_keep_rest(c);
}

/* Parses the bytes <c> parked in an earlier turn. true when they are all
 * handled and the socket may be read. */
static bool conn_parse_parked(struct rl_conn *c)
{
	struct rl_conn_parked *h = c->parked;
	enum conn_parse_end end = conn_parse(c, h->data + h->off, h->len - h->off);

	if (end == CONN_STOPPED)
		return false; /* freed by rl_conn_kill */
	if (end == CONN_BUDGET) {
		conn_park(c);
		return false;
	}
	if (end == CONN_THROTTLED) {
		conn_keep_rest(c); /* copied out of <parked>, freed below */
		conn_parked_free(c);
		return false;
	}
	conn_parked_free(c);
	return !(c->flags & RL_CF_PAUSED);
}

/* Parses what <c> read past its rate limit before its throttle, ahead of
 * anything newer. true when all of it was handled and the socket may be
 * read. */
static bool conn_parse_rest(struct rl_conn *c)
{
	struct rl_limit *l = c->lim;
	size_t tail = relay_decoder_capacity(&c->dec);

	c->w->t_read_ns = rl_clock_ns();
	enum conn_parse_end end = conn_parse(c, l->rest, l->rest_len);
	conn_tail_account(c, tail);
	if (end == CONN_STOPPED)
		return false;
	if (end == CONN_THROTTLED) {
		conn_keep_rest(c); /* a shorter rest, kept in place */
		return false;
	}
	if (end == CONN_BUDGET) {
		bool ok = conn_park(c); /* copied out of the rest, freed below */
		if (ok)
			rl_limit_keep(c, NULL, 0);
		return false;
	}
	rl_limit_keep(c, NULL, 0); /* all parsed */
	return !(c->flags & RL_CF_PAUSED) && !conn_hold(c);
}

void rl_conn_read(struct rl_conn *c)
{
	struct rl_worker *w = c->w;

	RL_ASSERT_OWNER(c);
	if (c->flags & (RL_CF_PAUSED | RL_CF_THROTTLED))
		return; /* rl_conn_resume_paused or the throttle's end reads it again */
	if (c->flags & RL_CF_HELD)
		return; /* rl_conn_release_held puts it on the read list */
	if (conn_fanout_spent(c)) {
		conn_wait_budget(c); /* its bytes wait in the kernel */
		return;
	}
	if ((c->flags & RL_CF_PARKED) && !conn_parse_parked(c))
		return;
	if (c->lim && c->lim->rest && !conn_parse_rest(c))
		return;
	if (conn_hold(c))
		return;
	/* Counted in bytes, not calls: a transport may return less than a
	 * scratch buffer per call (TLS: one record) with more pending. */
	size_t budget = CONN_READS_PER_TURN * RL_SCRATCH_BYTES;
	while (budget) {
		size_t want = rl_limit_read_size(c); /* less with rate limits on */
		ssize_t n = c->tp->read(c, w->scratch, want);
		if (n > 0) {
			w->t_read_ns = rl_clock_ns();
			RL_STAT_ADD(w->stats, bytes_in, n);
			conn_touch(c);
			size_t tail = relay_decoder_capacity(&c->dec);
			enum conn_parse_end end = conn_parse(c, w->scratch, (size_t)n);
			conn_tail_account(c, tail);
			if (end == CONN_BUDGET || end == CONN_THROTTLED) {
				conn_keep(c, end);
				return;
			}
			if (end == CONN_STOPPED || (c->flags & RL_CF_PAUSED) || conn_hold(c))
				return;
			budget -= (size_t)n < budget ? (size_t)n : budget;
			if ((size_t)n < want && !(c->flags & RL_CF_RDHUP) && !c->tp->has_pending(c))
				return; /* drained; edge-triggered: the next byte brings a new event */
			/* A full read, a short read with the FIN already reported (no new
			 * edge will come for the EOF), or input the transport holds that
			 * the kernel no longer reports: read on until 0 or -EAGAIN. */
			continue;
		}
		if (n == 0) {
			conn_peer_eof(c);
			return;
		}
		if (n != -EAGAIN)
			conn_read_failed(c, (int)-n);
		return;
	}
	/* Budget spent with data left: continue next turn, after the others. */
	if (cds_list_empty(&c->rlink))
		cds_list_add_tail(&c->rlink, &w->read_list);
}

/* A lingering connection had an event (input, EOF, an error, or the ACK
 * of our FIN: the kernel wakes epoll when it moves to FIN-WAIT-2): discard
 * its input, then close it at EOF, on an error, or once nothing we sent is
 * at risk any more. */
static void conn_linger(struct rl_conn *c)
{
	struct rl_worker *w = c->w;
	for (int i = 0; i < CONN_READS_PER_TURN; i++) {
		ssize_t n = c->tp->read(c, w->scratch, RL_SCRATCH_BYTES);
		if (n > 0)
			continue;
		if (n != -EAGAIN) {
			rl_conn_kill(c); /* EOF or error: done */
			return;
		}
		/* read until -EAGAIN, so a transport's buffered input goes too */
		if (!conn_output_at_risk(c))
			rl_conn_kill(c);
		return;
	}
	if (cds_list_empty(&c->rlink))
		cds_list_add_tail(&c->rlink, &w->read_list);
}

void rl_conn_on_event(struct rl_conn *c, uint32_t bits)
{
	RL_ASSERT_OWNER(c);
	if (c->flags & RL_CF_DEAD)
		return;
	if (bits & RL_EV_HUP)
		c->flags |= RL_CF_RDHUP;
	if ((c->flags & RL_CF_HELD) && (bits & (RL_EV_HUP | RL_EV_ERR))) {
		conn_held_hangup(c);
		return;
	}
	if (bits & RL_EV_OUT) {
		c->flags &= (uint16_t)~RL_CF_WBLOCKED;
		if (c->out.bytes || (c->flags & RL_CF_TP_HELD))
			conn_want_flush(c);
	}
	if (c->flags & RL_CF_LINGER) {
		conn_linger(c); /* any event: an output-only one may be our FIN's ACK */
		return;
	}
	if (!(bits & (RL_EV_IN | RL_EV_ERR)))
		return;
	if (c->state != RL_CONN_CLOSING)
		rl_conn_read(c);
	else if (bits & RL_EV_ERR)
		rl_conn_kill(c);
}

void rl_conn_flush(struct rl_conn *c)
{
	size_t sent = 0;

	RL_ASSERT_OWNER(c);
	if ((c->flags & (RL_CF_DEAD | RL_CF_WBLOCKED)) || c->state == RL_CONN_CLOSED)
		return;
	if (!conn_write(c, CONN_FLUSH_CALLS, &sent))
		return;
	if (c->state == RL_CONN_CLOSING && c->out.bytes == 0 &&
	    !(c->flags & (RL_CF_LINGER | RL_CF_TP_HELD)))
		conn_closing_done(c);
}

void rl_conn_shutdown_all(struct rl_worker *w, uint64_t deadline_ms)
{
	struct rl_conn *c, *tmp;

	cds_list_for_each_entry_safe(c, tmp, &w->timers[RL_CONN_T_IDLE].head, life.link)
		rl_conn_shutdown(c, deadline_ms);
	cds_list_for_each_entry_safe(c, tmp, &w->timers[RL_CONN_T_THROTTLE].head, life.link)
		rl_conn_shutdown(c, deadline_ms);
	cds_list_for_each_entry_safe(c, tmp, &w->timers[RL_CONN_T_CLOSING].head, life.link)
		rl_conn_shutdown(c, deadline_ms);
}

void rl_conn_kill_all(struct rl_worker *w)
{
	struct rl_conn *c, *tmp;

	cds_list_for_each_entry_safe(c, tmp, &w->timers[RL_CONN_T_CLOSING].head, life.link)
		rl_conn_kill(c);
	cds_list_for_each_entry_safe(c, tmp, &w->timers[RL_CONN_T_IDLE].head, life.link)
		rl_conn_kill(c);
	cds_list_for_each_entry_safe(c, tmp, &w->timers[RL_CONN_T_THROTTLE].head, life.link)
		rl_conn_kill(c);
}

/* CLOSED: tells the layer above, frees everything, closes the socket. Once
 * per connection marked dead, from the close step. */
static void conn_destroy(struct rl_conn *c)
{
	struct rl_worker *w = c->w;

	RL_ASSERT_OWNER(c);
	assert(c->flags & RL_CF_DEAD);
	conn_set_state(c, RL_CONN_CLOSED);
	conn_up.closed(c);
	rl_timer_disarm(&c->life);
	rl_timer_disarm(&c->frame);
	rl_timer_disarm(&c->drain);
	cds_list_del_init(&c->qlink);
	conn_unlink_read(c);
	size_t tail = relay_decoder_capacity(&c->dec);
	RL_STAT_SUB(w->stats, out_queued, c->out.bytes);
	RL_STAT_SUB(w->stats, mem_tails, tail);
	w->mem_freed += c->out.bytes + tail;
	rl_outq_clear(&c->out, &w->pool);
	relay_decoder_free(&c->dec);
	rl_limit_conn_closed(c); /* its address count, kept bytes */
	free(c->user_id);
	free(c->rooms);
	if (c->flags & RL_CF_ABORT)
		c->tp->abort(c);
	else
		c->tp->close(c);
	RL_DEBUGF(c->id, "closed");
	RL_STAT_SUB(w->stats, conns_current, 1);
	RL_STAT_ADD(w->stats, conns_closed, 1);
	if (!(c->flags & RL_CF_REFUSED))
		rl_stats_conn_del();
	w->nconns--;
	free(c);
}

/* ---- cross-worker backpressure ------------------------------------------- */

void rl_conn_pause(struct rl_conn *c, unsigned k)
{
	struct rl_worker *w = c->w;

	RL_ASSERT_OWNER(c);
	if (!rl_conn_can_send(c) || (c->flags & RL_CF_PAUSED))
		return;
	c->flags |= RL_CF_PAUSED;
	cds_list_del(&c->rlink); /* off read_list, if there */
	cds_list_add_tail(&c->rlink, &w->paused[k]);
	w->paused_mask |= 1ull << k;
	RL_STAT_ADD(w->stats, conns_paused, 1);
	RL_DEBUGF(c->id, "paused: worker %u's inbox holds %" PRIu64 " bytes", k,
		  rl_inbox_backlog(&rl_srv.workers[k].inbox));
	/* Already below the low mark (drained in the meantime): no wakeup will
	 * come for it, so make the next turn look at once. */
	if (rl_inbox_wait(&rl_srv.workers[k].inbox, w->id))
		rl_inbox_kick(&w->inbox);
}

/* Reads <c> again from the next step on; its idle and frame timeouts start
 * over now. */
static void conn_resume(struct rl_conn *c)
{
	struct rl_worker *w = c->w;

	c->flags &= (uint16_t)~RL_CF_PAUSED;
	cds_list_del_init(&c->rlink);
	if (c->flags & RL_CF_THROTTLED)
		return; /* the throttle's end reads it and restarts its timers */
	cds_list_add_tail(&c->rlink, &w->read_list);
	rl_timer_arm(&w->timers[RL_CONN_T_IDLE], &c->life, w->now_ms);
	if (rl_timer_armed(&c->frame))
		rl_timer_arm(&w->timers[RL_CONN_T_FRAME], &c->frame, w->now_ms);
	RL_DEBUGF(c->id, "resumed");
}

void rl_conn_resume_paused(struct rl_worker *w)
{
	for (uint64_t mask = w->paused_mask; mask; mask &= mask - 1) {
		unsigned k = (unsigned)__builtin_ctzll(mask);
		struct cds_list_head *l = &w->paused[k];
		if (!cds_list_empty(l) && !rl_inbox_wait(&rl_srv.workers[k].inbox, w->id))
			continue; /* registered: worker k's drain wakes us */
		while (!cds_list_empty(l))
			conn_resume(cds_list_first_entry(l, struct rl_conn, rlink));
		w->paused_mask &= ~(1ull << k);
	}
}

/* ---- rate limits ------------------------------------------------------------ */

void rl_conn_throttle(struct rl_conn *c, uint64_t until_ms)
{
	struct rl_worker *w = c->w;

	RL_ASSERT_OWNER(c);
	assert(c->lim);
	if (!rl_conn_can_send(c))
		return;
	if (c->flags & RL_CF_THROTTLED) {
		if (until_ms <= c->life.start_ms)
			return;
	} else {
		c->flags |= RL_CF_THROTTLED;
		c->lim->throttled_ms = w->now_ms;
		RL_STAT_ADD(w->stats, throttled, 1);
		/* Off read_list; a paused or held one stays on its list. */
		if (!(c->flags & (RL_CF_PAUSED | RL_CF_HELD)))
			cds_list_del_init(&c->rlink);
	}
	/* <life> leaves the idle list: no idle timeout for a throttled conn. */
	rl_timer_arm_sorted(&w->timers[RL_CONN_T_THROTTLE], &c->life, until_ms);
	RL_DEBUGF(c->id, "throttled for %" PRIu64 " ms: over a rate limit", until_ms - w->now_ms);
}

/* The throttle of <c> ended: it is read again (from the bytes it kept),
 * its idle and frame timeouts start over. */
static void conn_throttle_expired(struct rl_timer *t, void *arg)
{
	struct rl_conn *c = caa_container_of(t, struct rl_conn, life);
	struct rl_worker *w = c->w;

	(void)arg;
	conn_throttle_over(c);
	rl_timer_arm(&w->timers[RL_CONN_T_IDLE], &c->life, w->now_ms);
	if (rl_timer_armed(&c->frame))
		rl_timer_arm(&w->timers[RL_CONN_T_FRAME], &c->frame, w->now_ms);
	if (!(c->flags & (RL_CF_PAUSED | RL_CF_HELD)) && cds_list_empty(&c->rlink))
		cds_list_add_tail(&c->rlink, &w->read_list);
	RL_DEBUGF(c->id, "throttle over");
}

/* ---- the worker's per-turn steps ---------------------------------------- */

void rl_conn_read_fanout_wait(struct rl_worker *w)
{
	struct cds_list_head batch;

	if (cds_list_empty(&w->fanout_wait))
		return;
	CDS_INIT_LIST_HEAD(&batch);
	cds_list_splice(&w->fanout_wait, &batch);
	CDS_INIT_LIST_HEAD(&w->fanout_wait);
	while (!cds_list_empty(&batch) && w->fanout_work < RL_WORKER_FANOUT_BUDGET) {
		struct rl_conn *c = cds_list_first_entry(&batch, struct rl_conn, rlink);
		cds_list_del_init(&c->rlink);
		rl_conn_on_event(c, RL_EV_IN);
	}
	/* In turn: those not reached go first next time, ahead of any stopped again. */
	cds_list_splice(&batch, &w->fanout_wait);
}

void rl_conn_read_deferred(struct rl_worker *w)
{
	struct cds_list_head batch;

	if (cds_list_empty(&w->read_list))
		return;
	CDS_INIT_LIST_HEAD(&batch);
	cds_list_splice(&w->read_list, &batch);
	CDS_INIT_LIST_HEAD(&w->read_list);
	while (!cds_list_empty(&batch)) {
		struct rl_conn *c = cds_list_first_entry(&batch, struct rl_conn, rlink);
		cds_list_del_init(&c->rlink);
		rl_conn_on_event(c, RL_EV_IN);
	}
}

void rl_conn_flush_pending(struct rl_worker *w)
{
	struct cds_list_head batch;

	if (cds_list_empty(&w->flush_list))
		return;
	CDS_INIT_LIST_HEAD(&batch);
	cds_list_splice(&w->flush_list, &batch);
	CDS_INIT_LIST_HEAD(&w->flush_list);
	while (!cds_list_empty(&batch)) {
		struct rl_conn *c = cds_list_first_entry(&batch, struct rl_conn, qlink);
		cds_list_del_init(&c->qlink);
		rl_conn_flush(c);
	}
}

void rl_conn_close_marked(struct rl_worker *w)
{
	while (w->dead) {
		struct rl_conn *c = w->dead;
		w->dead = c->next_dead;
		conn_destroy(c);
	}
}
