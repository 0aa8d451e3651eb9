/* conn.c -- one client connection: state machine, receive path, send queue.
 * Threading: everything here runs on the connection's owner worker; other
 * workers reach a connection only through its owner's inbox (inbox.c).
 *
 * A connection is never freed inside an I/O path: rl_conn_kill marks it and
 * the worker's close step calls rl_conn_destroy once per marked connection. */
#include "net/conn.h"

#include "net/sockopt.h"
#include "relay/handler.h"
#include "ops/metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_READS_PER_TURN 2      /* x RL_SCRATCH_BYTES: the per-turn read budget */
#define CONN_FLUSH_CALLS 4         /* sendmsg calls per connection per flush */
#define CONN_CLOSE_FLUSH_MS 2000   /* CLOSING: flush deadline after a fatal error */

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
};

#ifndef NDEBUG
static _Thread_local const struct rl_worker *conn_self;

void rl_conn_assert_owner(const struct rl_conn *c)
{
	if (!conn_self)
		conn_self = c->w;
	assert(c->w == conn_self && "connection touched by a non-owner thread");
}
#endif

size_t rl_conn_name(uint64_t id, char *buf)
{
	int n = snprintf(buf, 32, "conn-%" PRIu64, id);
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

struct rl_conn *rl_conn_new(struct rl_worker *w, int fd, bool refused)
{
	int one = 1;
	struct rl_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		if (!refused)
			rl_stats_conn_del();
		return NULL;
	}
	c->src = RL_SRC_CONN;
	c->fd = fd;
	c->w = w;
	c->state = RL_CONN_INIT;
	c->id = __atomic_add_fetch(&rl_srv.next_conn_id, 1, __ATOMIC_RELAXED);
	relay_decoder_init(&c->dec, (uint32_t)rl_srv.cfg.max_frame);
	CDS_INIT_LIST_HEAD(&c->tlink);
	CDS_INIT_LIST_HEAD(&c->flink);
	CDS_INIT_LIST_HEAD(&c->dlink);
	CDS_INIT_LIST_HEAD(&c->qlink);
	CDS_INIT_LIST_HEAD(&c->rlink);
	if (refused)
		c->flags |= RL_CF_REFUSED;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rl_sock_keepalive(fd, (unsigned)((RL_CFG(keepalive_ms) + 999) / 1000)); /* s, rounded up */
	if (rl_evloop_add(&w->loop, fd, RL_EV_IN | RL_EV_OUT | RL_EV_EDGE, c)) {
		RL_WARNF(c->id, "cannot register socket: %s", strerror(errno));
		conn_set_state(c, RL_CONN_CLOSED);
		close(fd);
		free(c);
		if (!refused)
			rl_stats_conn_del();
		return NULL;
	}
	conn_set_state(c, RL_CONN_OPEN);
	c->last_rx_ms = w->now_ms;
	cds_list_add_tail(&c->tlink, &w->idle_list);
	w->nconns++;
	RL_STAT_ADD(w->stats, conns_accepted, 1);
	RL_STAT_ADD(w->stats, conns_current, 1);
	if (w->stats->conns_current > w->stats->conns_peak)
		RL_STAT_SET(w->stats, conns_peak, w->stats->conns_current);
	RL_DEBUGF(c->id, "accepted fd %d%s", fd, refused ? " (over max-connections)" : "");
	if (refused) {
		RL_STAT_ADD(w->stats, refused_full, 1);
		rl_conn_error(c, RELAY_ERR_SERVER_FULL, NULL, 0, NULL);
	}
	return c;
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
	cds_list_del_init(&c->tlink);
	cds_list_del_init(&c->flink);
	cds_list_del_init(&c->dlink);
	cds_list_del_init(&c->qlink);
	cds_list_del_init(&c->rlink);
	rl_worker_mark_dead(c->w, c);
}

static void conn_want_flush(struct rl_conn *c)
{
	if (!(c->flags & RL_CF_WBLOCKED) && cds_list_empty(&c->qlink))
		cds_list_add_tail(&c->qlink, &c->w->flush_list);
}

/* Output is done (or abandoned) for a CLOSING connection: close now if the
 * peer has nothing more in flight, else half-close and discard its input
 * until EOF (so our final ERROR is not destroyed by an RST). */
static void conn_closing_done(struct rl_conn *c)
{
	int pending = 0;
	if ((c->flags & RL_CF_PEER_EOF) || ioctl(c->fd, FIONREAD, &pending) == -1 ||
	    pending == 0) {
		rl_conn_kill(c);
		return;
	}
	shutdown(c->fd, SHUT_WR);
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
	c->deadline_ms = deadline;
	cds_list_del(&c->tlink);
	cds_list_add_tail(&c->tlink, &w->closing_list);
	cds_list_del_init(&c->flink);
	cds_list_del_init(&c->dlink);
	cds_list_del_init(&c->rlink);
	if (c->out.bytes == 0)
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

/* Queues one frame regardless of state (the final ERROR of a closing conn). */
static int conn_queue_frame(struct rl_conn *c, uint8_t type, uint8_t flags, const void *payload,
			    size_t len)
{
	size_t total = RELAY_FRAME_HDR_BYTES + len;
	struct rl_worker *w = c->w;

	if (total <= RL_COPY_MAX) {
		uint8_t *d = rl_outq_reserve(&c->out, &w->pool, total);
		if (!d)
			return -ENOMEM;
		relay_frame_encode(d, type, flags, payload, (uint32_t)len);
		rl_outq_commit(&c->out, total);
	} else {
		struct rl_msg *m = rl_msg_new(total, 0);
		if (!m)
			return -ENOMEM;
		relay_frame_encode(m->data, type, flags, payload, (uint32_t)len);
		int rc = rl_outq_push_msg(&c->out, &w->pool, m);
		rl_msg_put(m);
		if (rc)
			return rc;
	}
	if (rl_log_on(RL_LOG_DEBUG))
		conn_log_out(c, type, flags, len);
	conn_queued(c, total);
	return 0;
}

/* A slow consumer loses what it has not started to receive (delivery is
 * at-most-once): the memory is released now and the final ERROR goes out
 * right after the frame on the wire. */
static void conn_drop_unsent(struct rl_conn *c)
{
	size_t n = rl_outq_drop_unsent(&c->out, &c->w->pool);
	RL_STAT_SUB(c->w->stats, out_queued, n);
}

static void conn_check_watermarks(struct rl_conn *c)
{
	size_t b = c->out.bytes;
	uint64_t hard = RL_CFG(out_hard);

	if (b > hard) {
		RL_STAT_ADD(c->w->stats, slow_consumers, 1);
		RL_INFOF(c->id, "slow consumer: %zu bytes queued (hard limit %" PRIu64 ")", b,
			 hard);
		conn_drop_unsent(c);
		rl_conn_error(c, RELAY_ERR_SLOW_CONSUMER, NULL, 0, NULL);
		return;
	}
	if (c->state == RL_CONN_OPEN && b > RL_CFG(out_high)) {
		conn_set_state(c, RL_CONN_DRAINING);
		c->deadline_ms = c->w->now_ms;
		cds_list_add_tail(&c->dlink, &c->w->drain_list);
		RL_DEBUGF(c->id, "backpressure detected: %zu bytes queued", b);
	}
}

int rl_conn_send(struct rl_conn *c, uint8_t type, uint8_t flags, const void *payload, size_t len)
{
	RL_ASSERT_OWNER(c);
	if (!rl_conn_can_send(c))
		return -ECANCELED;
	int rc = conn_queue_frame(c, type, flags, payload, len);
	if (rc == 0)
		conn_check_watermarks(c);
	return rc;
}

int rl_conn_deliver(struct rl_conn *c, struct rl_msg *m)
{
	RL_ASSERT_OWNER(c);
	if (!rl_conn_can_send(c))
		return -ECANCELED;
	int rc = rl_outq_push_msg(&c->out, &c->w->pool, m);
	if (rc)
		return rc;
	if (rl_log_on(RL_LOG_DEBUG))
		conn_log_out(c, m->data[5], m->data[6], m->len - RELAY_FRAME_HDR_BYTES);
	conn_want_flush(c); /* counters: the caller adds them per message, not per member */
	conn_check_watermarks(c);
	return 0;
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
	if (n == 0 || n + 3 > rl_srv.cfg.max_frame) /* never send more than max_frame */
		n = conn_error_json(buf, sizeof(buf), code, NULL, 0, NULL);
	RL_STAT_ADD(c->w->stats, errors[code], 1);
	if (fatal)
		RL_DEBUGF(c->id, "fatal %s", relay_err_name(code));
	if (n)
		conn_queue_frame(c, RELAY_MSG_ERROR, RELAY_FLAG_JSON, buf, n);
	if (fatal)
		conn_begin_closing(c, c->w->now_ms + CONN_CLOSE_FLUSH_MS);
}

void rl_conn_expire(struct rl_conn *c, enum relay_err why)
{
	if (c->state == RL_CONN_CLOSING) {
		RL_DEBUGF(c->id, "flush deadline passed with %zu bytes unsent", (size_t)c->out.bytes);
		rl_conn_kill(c);
		return;
	}
	if (why == RELAY_ERR_SLOW_CONSUMER) {
		RL_STAT_ADD(c->w->stats, slow_consumers, 1);
		RL_INFOF(c->id, "slow consumer: DRAINING for longer than %" PRIu64 " ms",
			 RL_CFG(slow_ms));
		conn_drop_unsent(c);
	}
	rl_conn_error(c, why, NULL, 0, NULL);
}

void rl_conn_shutdown(struct rl_conn *c, uint64_t deadline_ms)
{
	if (c->flags & RL_CF_DEAD)
		return;
	if (c->state == RL_CONN_CLOSING) {
		if (deadline_ms < c->deadline_ms)
			c->deadline_ms = deadline_ms;
		return;
	}
	rl_conn_error(c, RELAY_ERR_SERVER_SHUTDOWN, NULL, 0, NULL);
	if (c->state == RL_CONN_CLOSING)
		c->deadline_ms = deadline_ms;
}

/* Any received byte counts as activity: move to the idle list's tail. */
static void conn_touch(struct rl_conn *c)
{
	struct rl_worker *w = c->w;
	if (c->last_rx_ms == w->now_ms)
		return;
	c->last_rx_ms = w->now_ms;
	cds_list_del(&c->tlink);
	cds_list_add_tail(&c->tlink, &w->idle_list);
}

static void conn_frame_timer(struct rl_conn *c, bool was_pending, unsigned frames)
{
	struct rl_worker *w = c->w;
	if (RL_CFG(frame_ms) == 0)
		return;
	if (relay_decoder_pending(&c->dec) == 0) {
		cds_list_del_init(&c->flink);
		return;
	}
	if (was_pending && frames == 0)
		return; /* the same frame is still arriving */
	c->frame_start_ms = w->now_ms;
	cds_list_del(&c->flink);
	cds_list_add_tail(&c->flink, &w->frame_list);
}

static void conn_parse(struct rl_conn *c, const uint8_t *buf, size_t n)
{
	bool was_pending = relay_decoder_pending(&c->dec) > 0;
	unsigned frames = 0;
	struct relay_frame f;

	relay_decoder_feed(&c->dec, buf, n);
	for (;;) {
		enum relay_decode_status st = relay_decoder_next(&c->dec, &f);
		if (st == RELAY_DECODE_NEED_MORE)
			break;
		if (st == RELAY_DECODE_NOMEM) { /* this client's frame, not the server, fails */
			RL_WARNF(c->id, "out of memory buffering a frame: connection closed");
			rl_conn_kill(c);
			return;
		}
		if (st == RELAY_DECODE_ERROR) {
			RL_STAT_ADD(c->w->stats, frames_in[0], 1);
			rl_conn_error(c, c->dec.err, NULL, 0, NULL);
			return;
		}
		frames++;
		rl_handler_frame(c, &f);
		if (!rl_conn_can_send(c))
			return;
	}
	conn_frame_timer(c, was_pending, frames);
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

void rl_conn_read(struct rl_conn *c)
{
	struct rl_worker *w = c->w;

	RL_ASSERT_OWNER(c);
	if (w->throttled) {
		if (cds_list_empty(&c->rlink))
			cds_list_add_tail(&c->rlink, &w->read_list);
		return;
	}
	for (int i = 0; i < CONN_READS_PER_TURN;) {
		ssize_t n = recv(c->fd, w->scratch, RL_SCRATCH_BYTES, 0);
		if (n > 0) {
			w->t_read_ns = rl_metrics_now_ns();
			RL_STAT_ADD(w->stats, bytes_in, n);
			conn_touch(c);
			conn_parse(c, w->scratch, (size_t)n);
			if (!rl_conn_can_send(c))
				return;
			if ((size_t)n == RL_SCRATCH_BYTES)
				i++;
			else if (!(c->flags & RL_CF_RDHUP))
				return; /* drained; edge-triggered: the next byte brings a new event */
			/* A short read with the FIN already reported: no new edge will come
			 * for the EOF, so read on until recv says 0 (or EAGAIN). */
			continue;
		}
		if (n == 0) {
			conn_peer_eof(c);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			conn_read_failed(c, errno);
		return;
	}
	/* Budget spent with data left: continue next turn, after the others. */
	if (cds_list_empty(&c->rlink))
		cds_list_add_tail(&c->rlink, &w->read_list);
}

static void conn_linger_read(struct rl_conn *c)
{
	struct rl_worker *w = c->w;
	for (int i = 0; i < CONN_READS_PER_TURN; i++) {
		ssize_t n = recv(c->fd, w->scratch, RL_SCRATCH_BYTES, 0);
		if (n > 0)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1 && errno == EINTR)
			continue;
		rl_conn_kill(c); /* EOF or error: done */
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
	if (bits & RL_EV_OUT) {
		c->flags &= (uint16_t)~RL_CF_WBLOCKED;
		if (c->out.bytes)
			conn_want_flush(c);
	}
	if (!(bits & (RL_EV_IN | RL_EV_ERR)))
		return;
	if (c->state != RL_CONN_CLOSING)
		rl_conn_read(c);
	else if (c->flags & RL_CF_LINGER)
		conn_linger_read(c);
	else if (bits & RL_EV_ERR)
		rl_conn_kill(c);
}

void rl_conn_flush(struct rl_conn *c)
{
	struct rl_worker *w = c->w;
	size_t sent = 0;

	RL_ASSERT_OWNER(c);
	if ((c->flags & (RL_CF_DEAD | RL_CF_WBLOCKED)) || c->state == RL_CONN_CLOSED)
		return;
	int rc = rl_outq_flush(&c->out, &w->pool, c->fd, CONN_FLUSH_CALLS, &sent);
	RL_STAT_ADD(w->stats, bytes_out, sent);
	RL_STAT_SUB(w->stats, out_queued, sent);
	if (rc == -EAGAIN) {
		c->flags |= RL_CF_WBLOCKED;
	} else if (rc == 1) {
		conn_want_flush(c);
	} else if (rc < 0) {
		RL_DEBUGF(c->id, "write failed: %s", strerror(-rc));
		rl_conn_kill(c);
		return;
	}
	if (c->state == RL_CONN_DRAINING && c->out.bytes <= RL_CFG(out_low)) {
		conn_set_state(c, RL_CONN_OPEN);
		cds_list_del_init(&c->dlink);
		RL_DEBUGF(c->id, "backpressure relieved: %zu bytes queued", (size_t)c->out.bytes);
	}
	if (c->state == RL_CONN_CLOSING && c->out.bytes == 0 && !(c->flags & RL_CF_LINGER))
		conn_closing_done(c);
}

void rl_conn_destroy(struct rl_conn *c)
{
	struct rl_worker *w = c->w;

	RL_ASSERT_OWNER(c);
	assert(c->flags & RL_CF_DEAD);
	conn_set_state(c, RL_CONN_CLOSED);
	rl_handler_leave_all(c);
	cds_list_del_init(&c->tlink);
	cds_list_del_init(&c->flink);
	cds_list_del_init(&c->dlink);
	cds_list_del_init(&c->qlink);
	cds_list_del_init(&c->rlink);
	RL_STAT_SUB(w->stats, out_queued, c->out.bytes);
	rl_outq_clear(&c->out, &w->pool);
	relay_decoder_free(&c->dec);
	free(c->user_id);
	free(c->rooms);
	close(c->fd);
	RL_DEBUGF(c->id, "closed");
	RL_STAT_SUB(w->stats, conns_current, 1);
	RL_STAT_ADD(w->stats, conns_closed, 1);
	if (!(c->flags & RL_CF_REFUSED))
		rl_stats_conn_del();
	w->nconns--;
	free(c);
}
