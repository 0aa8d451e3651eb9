/* handler.c -- frame dispatch and the protocol's requests.
 * Threading: the connection's owner worker, RCU read side online. Rooms are
 * reached through room.c, a connection's rooms through membership.c, other
 * workers' members through fanout.c. */
#include "relay/handler.h"

#include "net/conn.h"
#include "net/limit.h"
#include "relay/auth.h"
#include "relay/bus.h"
#include "relay/fanout.h"
#include "relay/history.h"
#include "relay/membership.h"
#include "relay/room.h"
#include "loop/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROOM_BUF 512 /* decoded JSON room names on the stack; longer ones go to the heap */

typedef void (*handler_fn)(struct rl_conn *c, const struct relay_frame *f);

/* ---- helpers ------------------------------------------------------------ */

static bool frame_binary(const struct relay_frame *f)
{
	return !(f->flags & RELAY_FLAG_JSON); /* flags 0 counts as binary */
}

/* Validates a JSON payload (PARSE_ERROR, fatal) and extracts <fields>.
 * Returns the top-level kind, or RELAY_JSON_NONE after sending the error. */
static enum relay_json_kind handler_json(struct rl_conn *c, const struct relay_frame *f,
				      struct relay_json_field *fields, size_t n)
{
	struct relay_json_result res = { 0 };
	if (relay_json_parse(f->payload, f->len, fields, n, &res) == 0)
		return res.top;
	char msg[160];
	snprintf(msg, sizeof(msg), "invalid JSON at byte %zu: %s", res.err_off,
		 res.err_msg ? res.err_msg : "syntax error");
	if (rl_log_on(RL_LOG_DEBUG)) {
		char esc[256]; /* escaped, credentials redacted, capped */
		rl_log_escape(esc, sizeof(esc), f->payload, f->len);
		RL_DEBUGF(c->id, "%s in %s payload: %s", msg, relay_msg_type_name(f->type), esc);
	}
	rl_conn_error(c, RELAY_ERR_PARSE_ERROR, NULL, 0, msg);
	return RELAY_JSON_NONE;
}

static void send_json(struct rl_conn *c, uint8_t type, const struct relay_jw *jw)
{
	if (!jw->overflow)
		rl_conn_send(c, type, RELAY_FLAG_JSON, jw->buf, jw->len);
}

static uint64_t now_unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The decoded bytes of string field <fl> (decoded into fl->buf when they
 * fit). A longer string, e.g. a name padded with whitespace that still trims
 * to a valid one, is decoded into *<heap> (the caller frees it). NULL on
 * ENOMEM. */
static const uint8_t *json_str_bytes(const struct relay_json_field *fl, uint8_t **heap)
{
	if (fl->dec_len <= fl->cap)
		return fl->buf;
	if (!(*heap = malloc(fl->dec_len)))
		return NULL;
	relay_json_string_decode(fl->raw, *heap, fl->dec_len);
	return *heap;
}

/* The room argument of JOIN/LEAVE: JSON {"room":...} or the binary payload,
 * trimmed and checked. Returns 0, or -1 after sending the error. <name> may
 * point into *<heap>, which the caller frees. <since> (may be NULL: not
 * looked for) receives the JOIN's "since" field (history). */
static int handler_room_arg(struct rl_conn *c, const struct relay_frame *f, uint8_t *buf,
			    uint8_t **heap, struct relay_span *name, struct relay_json_field *since)
{
	const uint8_t *raw = f->payload;
	size_t n = f->len;

	if (!frame_binary(f)) {
		struct relay_json_field fls[2] = {
			{ .key = "room", .buf = buf, .cap = ROOM_BUF },
			{ .key = "since" },
		};
		enum relay_json_kind top = handler_json(c, f, fls, since ? 2 : 1);
		const struct relay_json_field fl = fls[0];
		if (since)
			*since = fls[1];
		if (top == RELAY_JSON_NONE)
			return -1;
		if (top != RELAY_JSON_OBJECT || fl.kind != RELAY_JSON_STRING) {
			rl_conn_error(c, RELAY_ERR_INVALID_PAYLOAD, NULL, 0,
				      "\"room\" must be a string");
			return -1;
		}
		if (fl.lone_surrogate) {
			rl_conn_error(c, RELAY_ERR_INVALID_ROOM, NULL, 0, NULL);
			return -1;
		}
		if (!(raw = json_str_bytes(&fl, heap))) {
			rl_conn_kill(c);
			return -1;
		}
		n = fl.dec_len;
	}
	if (relay_room_name_check(raw, n, name) != RELAY_ERR_NONE) {
		rl_conn_error(c, RELAY_ERR_INVALID_ROOM, raw, n,
			      "room names are 1-64 bytes of UTF-8 without control characters");
		return -1;
	}
	return 0;
}

struct join_pos;
static void room_ack_json(struct rl_conn *c, uint8_t type, struct relay_span name,
			  const char *status, long members, const struct join_pos *pos);

/* ---- presence (memberships themselves: membership.c) ------------------------ */

/* {"type":"userJoined"|"userLeft","room":R,"connectionId":C[,"userId":U]}
 * into <jw>; the userId only when <uid> is not NULL. */
static void presence_encode(struct relay_jw *jw, const char *type, struct relay_span room,
			    struct relay_span id, const uint8_t *uid, size_t ulen)
{
	relay_jw_obj_begin(jw);
	relay_jw_key(jw, "type");
	relay_jw_cstr(jw, type);
	relay_jw_key(jw, "room");
	relay_jw_str(jw, room.p, room.n);
	relay_jw_key(jw, "connectionId");
	relay_jw_str(jw, id.p, id.n);
	if (uid) {
		relay_jw_key(jw, "userId");
		relay_jw_str(jw, uid, ulen);
	}
	relay_jw_obj_end(jw);
}

/* The server never sends more than max_frame (spec 2a): an event that would
 * not fit with the userId goes without it (it is optional); one that would
 * not fit even then is not sent (unreachable for max_frame >= 256, the
 * smallest allowed: 64-byte room names and connection ids fit in ~210). */
static void presence_publish(struct rl_conn *c, struct rl_room *r, const char *type)
{
	size_t nlen, cap;
	const uint8_t *name = rl_room_name(r, &nlen);
	char id[RL_CONN_NAME_MAX];
	size_t idn = rl_conn_name(c->id, id);
	struct relay_span room = {name, nlen}, cid = {(const uint8_t *)id, idn};
	struct relay_jw jw;

	bool local = rl_room_members(r) >= 2; /* someone else here to tell */
	if (RL_CFG(no_presence) || (!local && !rl_bus))
		return;
	cap = 96 + 6 * nlen + idn + (c->user_id ? 6 * (size_t)c->user_len + 16 : 0);
	struct rl_msg *m = rl_msg_new(RELAY_FRAME_HDR_BYTES + cap, rl_bus_msg_items());
	if (!m)
		return;
	relay_jw_init(&jw, m->data + RELAY_FRAME_HDR_BYTES, cap);
	presence_encode(&jw, type, room, cid, c->user_id, c->user_len);
	if (c->user_id && (jw.overflow || jw.len + 3 > rl_srv.cfg.max_frame)) {
		relay_jw_init(&jw, m->data + RELAY_FRAME_HDR_BYTES, cap);
		presence_encode(&jw, type, room, cid, NULL, 0);
	}
	if (!jw.overflow && jw.len + 3 <= rl_srv.cfg.max_frame) {
		relay_frame_put_header(m->data, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, (uint32_t)jw.len);
		m->len = (uint32_t)(RELAY_FRAME_HDR_BYTES + jw.len);
		if (local) {
			int full = rl_fanout_publish(c->w, r, m, c);
			if (full >= 0)
				rl_conn_pause(c, (unsigned)full);
		}
		if (rl_bus) /* the other nodes' members */
			rl_bus->publish(c->w, r, m);
	} else {
		RL_DEBUGF(c->id, "%s event not sent: longer than the maximum frame size", type);
	}
	rl_msg_put(m);
}

/* rl_membership_left_fn: the others in the room hear that <c> left. */
static void user_left(struct rl_conn *c, struct rl_room *r)
{
	if (rl_bus)
		rl_bus->member(c->w, r, -1);
	presence_publish(c, r, "userLeft");
}

void rl_handler_opened(struct rl_conn *c)
{
	rl_auth_opened(c);
}

void rl_handler_closed(struct rl_conn *c)
{
	rl_membership_leave_all(c, user_left);
	rl_auth_closed(c);
}

/* ---- HELLO ----------------------------------------------------------------- */

/* The extensions a HELLO ack lists in "features" (protocol-v1-ext.md §6), in
 * the spec's order: one row per extension, its name and whether it is on.
 * With none on there is no "features" key: the ack is the v1 ack. */
static bool hello_cluster_on(void)
{
	return rl_bus != NULL;
}

static const struct hello_feature {
	const char *name;
	bool (*on)(void);
} hello_features[] = {
    {"auth", rl_auth_on},
    {"history", rl_history_on},
    {"cluster", hello_cluster_on},
};

static void hello_features_put(struct relay_jw *jw)
{
	bool any = false;

	for (size_t i = 0; i < sizeof(hello_features) / sizeof(hello_features[0]); i++) {
		if (!hello_features[i].on())
			continue;
		if (!any) {
			relay_jw_key(jw, "features");
			relay_jw_arr_begin(jw);
			any = true;
		}
		relay_jw_cstr(jw, hello_features[i].name);
	}
	if (any)
		relay_jw_arr_end(jw);
}

/* Key order (protocol-v1-ext.md §7): the v1 keys, then userId and expiresAt
 * (authenticated connections), then features; the debug "worker" last. */
static void hello_ack(struct rl_conn *c)
{
	uint8_t buf[512 + 6 * RELAY_USERID_MAX_BYTES];
	char id[RL_CONN_NAME_MAX];
	size_t idn = rl_conn_name(c->id, id);
	struct relay_jw jw;
	const struct rl_config *cfg = &rl_srv.cfg;

	relay_jw_init(&jw, buf, sizeof(buf));
	relay_jw_obj_begin(&jw);
	relay_jw_key(&jw, "status");
	relay_jw_cstr(&jw, "connected");
	relay_jw_key(&jw, "connectionId");
	relay_jw_str(&jw, id, idn);
	relay_jw_key(&jw, "serverVersion");
	relay_jw_cstr(&jw, RL_VERSION);
	relay_jw_key(&jw, "protocolVersion");
	relay_jw_u64(&jw, RELAY_PROTOCOL_VERSION);
	relay_jw_key(&jw, "maxFrameBytes");
	relay_jw_u64(&jw, cfg->max_frame);
	relay_jw_key(&jw, "heartbeatMs");
	uint64_t idle = RL_CFG(idle_ms);
	relay_jw_u64(&jw, idle ? idle / 2 : 30000);
	rl_auth_ack_fields(c, &jw);
	hello_features_put(&jw);
	if (cfg->debug) {
		relay_jw_key(&jw, "worker");
		relay_jw_u64(&jw, c->w->id);
		if (rl_bus) {
			relay_jw_key(&jw, "node");
			relay_jw_cstr(&jw, rl_bus->node_id);
		}
	}
	relay_jw_obj_end(&jw);
	send_json(c, RELAY_MSG_HELLO, &jw);
}

/* After a refresh: the rooms the new token no longer lets <c> join are left
 * as if it had sent LEAVE_ROOM for each (JSON ack, userLeft to the others),
 * after the HELLO ack. */
static void hello_drop_rooms(struct rl_conn *c)
{
	for (uint32_t slot = c->nrooms; slot-- > 0;) {
		size_t n;
		const uint8_t *name = rl_room_name(c->rooms[slot].room, &n);
		if (rl_auth_may_stay(c, (struct relay_span){name, n}))
			continue;
		/* Ack first: the name lives in the room, which leaving can free. */
		room_ack_json(c, RELAY_MSG_LEAVE_ROOM, (struct relay_span){name, n}, "left", 0, NULL);
		rl_membership_leave(c, slot, user_left); /* moves a later (kept) slot here */
	}
}

/* With authentication on, the token decides the userId: a "userId" the
 * client sends is ignored, not checked. */
static void handle_hello(struct rl_conn *c, const struct relay_frame *f)
{
	uint8_t ubuf[RELAY_USERID_MAX_BYTES];
	struct relay_json_field fl[4] = {
		{ .key = "userId", .buf = ubuf, .cap = sizeof(ubuf) },
		{ .key = "clientVersion" },
		{ .key = "echo" },
		{ .key = "token" },
	};
	uint8_t *uid = NULL;
	size_t ulen = 0;
	bool echo = false;

	if (!frame_binary(f)) {
		enum relay_json_kind top = handler_json(c, f, fl, 4);
		if (top == RELAY_JSON_NONE)
			return;
		if (top != RELAY_JSON_OBJECT) {
			rl_conn_error(c, RELAY_ERR_INVALID_PAYLOAD, NULL, 0,
				      "HELLO payload must be a JSON object");
			return;
		}
		if (fl[0].kind != RELAY_JSON_NONE && !c->auth) {
			if (fl[0].kind != RELAY_JSON_STRING || fl[0].lone_surrogate ||
			    fl[0].dec_len > sizeof(ubuf) ||
			    relay_userid_check(ubuf, fl[0].dec_len) != RELAY_ERR_NONE) {
				rl_conn_error(c, RELAY_ERR_INVALID_PAYLOAD, NULL, 0,
					      "userId must be a string of 1-128 bytes without control characters");
				return;
			}
			ulen = fl[0].dec_len;
			if (!(uid = malloc(ulen))) {
				rl_conn_kill(c);
				return;
			}
			memcpy(uid, ubuf, ulen);
		}
		echo = fl[2].kind == RELAY_JSON_TRUE;
	} else if (f->len > 0) {
		rl_conn_error(c, RELAY_ERR_INVALID_PAYLOAD, NULL, 0, "HELLO payload must be JSON");
		return;
	}
	enum rl_auth_hello auth = c->auth ? rl_auth_hello(c, &fl[3]) : RL_AUTH_HELLO_PLAIN;
	if (auth == RL_AUTH_HELLO_REFUSED)
		return;
	if (!c->auth) {
		free(c->user_id);
		c->user_id = uid;
		c->user_len = (uint8_t)ulen;
	}
	if (echo)
		c->flags |= RL_CF_ECHO;
	else
		c->flags &= (uint16_t)~RL_CF_ECHO;
	hello_ack(c);
	if (auth == RL_AUTH_HELLO_TOKEN)
		hello_drop_rooms(c);
}

/* ---- JOIN_ROOM / LEAVE_ROOM --------------------------------------------------- */

/* A room's position in a JSON JOIN ack (history on). */
struct join_pos {
	const char *epoch; /* RL_HIST_EPOCH_LEN characters */
	uint64_t seq;
	bool since;     /* the JOIN carried "since": the ack says "recovered" */
	bool recovered;
};

/* Key order (protocol-v1-ext.md §7): status, room, members, then epoch and
 * seq with history on (<pos>), then recovered when the JOIN gave since. */
static void room_ack_json(struct rl_conn *c, uint8_t type, struct relay_span name,
			  const char *status, long members, const struct join_pos *pos)
{
	uint8_t buf[512];
	struct relay_jw jw;

	relay_jw_init(&jw, buf, sizeof(buf));
	relay_jw_obj_begin(&jw);
	relay_jw_key(&jw, "status");
	relay_jw_cstr(&jw, status);
	relay_jw_key(&jw, "room");
	relay_jw_str(&jw, name.p, name.n);
	if (members > 0) {
		relay_jw_key(&jw, "members");
		relay_jw_u64(&jw, (uint64_t)members);
	}
	if (pos) {
		relay_jw_key(&jw, "epoch");
		relay_jw_str(&jw, pos->epoch, RL_HIST_EPOCH_LEN);
		relay_jw_key(&jw, "seq");
		relay_jw_u64(&jw, pos->seq);
		if (pos->since) {
			relay_jw_key(&jw, "recovered");
			relay_jw_bool(&jw, pos->recovered);
		}
	}
	relay_jw_obj_end(&jw);
	send_json(c, type, &jw);
}

static void room_ack(struct rl_conn *c, const struct relay_frame *f, struct relay_span name,
		     const char *status, long members, const struct join_pos *pos)
{
	if (frame_binary(f))
		rl_conn_send(c, f->type, RELAY_FLAG_BINARY, name.p, name.n);
	else
		room_ack_json(c, f->type, name, status, members, pos);
}

/* Whether <c> may join one more room (TOO_MANY_ROOMS otherwise). */
static bool join_room_allowed(struct rl_conn *c, struct relay_span name)
{
	if (c->nrooms < RL_CFG(max_rooms))
		return true;
	char msg[64];
	snprintf(msg, sizeof(msg), "already in %u rooms (the maximum)", c->nrooms);
	rl_conn_error(c, RELAY_ERR_TOO_MANY_ROOMS, name.p, name.n, msg);
	return false;
}

/* A JOIN that would create one room more than --max-rooms (non-fatal). */
/* A join of <name> that failed with <rc> (a negative errno): one room more
 * than --max-rooms is non-fatal TOO_MANY_ROOMS; anything else (out of
 * memory) ends the connection. */
static void join_failed(struct rl_conn *c, struct relay_span name, int rc)
{
	if (rc != -ENOSPC) {
		rl_conn_kill(c);
		return;
	}
	char msg[80];
	snprintf(msg, sizeof(msg), "the server holds %" PRIu64 " rooms (the maximum)",
		 RL_CFG(max_rooms_total));
	RL_STAT_ADD(c->w->stats, rooms_refused, 1);
	rl_conn_error(c, RELAY_ERR_TOO_MANY_ROOMS, name.p, name.n, msg);
}

static void join_room(struct rl_conn *c, const struct relay_frame *f, struct relay_span name)
{
	struct rl_room *r;
	long members;
	long slot = rl_membership_find(c, name);
	if (slot >= 0) {
		r = c->rooms[slot].room;
		members = rl_room_members(r) + (rl_bus ? rl_bus->remote_members(r) : 0);
		room_ack(c, f, name, "joined", members, NULL);
		return;
	}
	if (!join_room_allowed(c, name))
		return;
	int rc = rl_room_join(name.p, name.n, &r, &members, NULL);
	if (rc) {
		join_failed(c, name, rc);
		return;
	}
	if (rl_membership_add(c, r)) {
		rl_room_leave(r);
		rl_conn_kill(c);
		return;
	}
	if (rl_bus) { /* members on every live node (protocol-v1-ext.md 5) */
		rl_bus->member(c->w, r, +1);
		members += rl_bus->remote_members(r);
	}
	room_ack(c, f, name, "joined", members, NULL);
	presence_publish(c, r, "userJoined");
}

/* ---- JOIN_ROOM with history (protocol-v1-ext.md section 4) ------------------ */

/* "since":{"epoch":"...","seq":M} of a JSON JOIN, from field <fl>, into
 * <out> (its epoch points into <ebuf>, RL_HIST_EPOCH_LEN bytes). Returns 1
 * when given, 0 when absent, -1 after INVALID_PAYLOAD. An epoch of another
 * length or with escapes that do not decode is accepted: it matches no
 * room, so it only means "not recovered". */
static int join_since(struct rl_conn *c, const struct relay_json_field *fl,
		      struct relay_span name, uint8_t *ebuf, struct rl_hist_since *out)
{
	struct relay_json_field in[2] = {
		{ .key = "epoch", .buf = ebuf, .cap = RL_HIST_EPOCH_LEN },
		{ .key = "seq" },
	};
	uint64_t seq = 0;

	if (fl->kind == RELAY_JSON_NONE)
		return 0;
	bool ok = fl->kind == RELAY_JSON_OBJECT &&
		  relay_json_parse(fl->raw.p, fl->raw.n, in, 2, NULL) == 0 &&
		  in[0].kind == RELAY_JSON_STRING && in[1].kind == RELAY_JSON_NUMBER;
	for (size_t i = 0; ok && i < in[1].raw.n; i++) { /* digits only, no overflow */
		unsigned d = (unsigned)(in[1].raw.p[i] - '0');
		ok = d <= 9 && seq <= (UINT64_MAX - d) / 10;
		seq = seq * 10 + d;
	}
	if (!ok) {
		rl_conn_error(c, RELAY_ERR_INVALID_PAYLOAD, name.p, name.n,
			      "\"since\" must be {\"epoch\":string,\"seq\":integer >= 0}");
		return -1;
	}
	bool exact = !in[0].lone_surrogate && in[0].dec_len == RL_HIST_EPOCH_LEN;
	*out = (struct rl_hist_since){ ebuf, exact ? RL_HIST_EPOCH_LEN : 0, seq };
	return 1;
}

/* Queues the replayed messages right behind the ack (before anything live:
 * the worker drains its inbox only after this handler), counted like a
 * fan-out, and drops the references. */
static void join_replay(struct rl_conn *c, struct rl_hist_join *j)
{
	uint64_t bytes = 0, sent = 0, lost = 0;

	for (uint32_t i = 0; i < j->nreplay; i++)
		bytes += j->replay[i]->len;
	RL_STAT_ADD(c->w->stats, out_queued, bytes);
	for (uint32_t i = 0; i < j->nreplay; i++) {
		int rc = rl_conn_deliver(c, j->replay[i]);
		if (rc == 0)
			sent++;
		else if (rc != -ENOBUFS) /* a drop already lowered the gauge */
			lost += j->replay[i]->len;
		rl_msg_put(j->replay[i]);
	}
	free(j->replay);
	RL_STAT_SUB(c->w->stats, out_queued, lost);
	RL_STAT_ADD(c->w->stats, msgs_delivered, sent);
	RL_STAT_ADD(c->w->stats, frames_out, sent);
}

static void join_room_history(struct rl_conn *c, const struct relay_frame *f,
			      struct relay_span name, const struct rl_hist_since *since)
{
	struct rl_member m;
	struct rl_hist_join j;

	int rc = rl_membership_prepare(c, &m);
	if (rc == 0)
		rc = rl_hist_join(name.p, name.n, c->w->id, m, since, &j);
	if (rc) {
		join_failed(c, name, rc);
		return;
	}
	if (j.resume == RL_HIST_RECOVERED)
		RL_STAT_ADD(c->w->stats, hist_resumes_ok, 1);
	else if (since)
		RL_STAT_ADD(c->w->stats, hist_resumes_failed, 1);
	if (j.resume == RL_HIST_AHEAD) {
		char msg[128];
		snprintf(msg, sizeof(msg),
			 "since.seq %" PRIu64 " is ahead of the room (seq %" PRIu64 ")", since->seq,
			 j.seq);
		rl_conn_error(c, RELAY_ERR_INVALID_PAYLOAD, name.p, name.n, msg);
		return;
	}
	rl_membership_commit(c, j.room, j.idx);
	struct join_pos pos = { j.epoch, j.seq, since != NULL, j.resume == RL_HIST_RECOVERED };
	room_ack(c, f, name, "joined", j.members, &pos);
	join_replay(c, &j);
	presence_publish(c, j.room, "userJoined");
}

/* A JOIN of a room <c> is in already (history on): re-acked with the room's
 * position; a since is not acted on (nothing replayed: "recovered":false). */
static void join_again_history(struct rl_conn *c, const struct relay_frame *f,
			       struct relay_span name, struct rl_room *r, bool since)
{
	char epoch[RL_HIST_EPOCH_LEN];
	struct join_pos pos = { epoch, 0, since, false };
	rl_hist_position(r, epoch, &pos.seq);
	room_ack(c, f, name, "joined", rl_room_members(r), &pos);
}

static void join_history(struct rl_conn *c, const struct relay_frame *f, struct relay_span name,
			 const struct relay_json_field *since_fl)
{
	uint8_t ebuf[RL_HIST_EPOCH_LEN];
	struct rl_hist_since since;
	int has = frame_binary(f) ? 0 : join_since(c, since_fl, name, ebuf, &since);
	if (has < 0)
		return;
	long slot = rl_membership_find(c, name);
	if (slot >= 0) {
		join_again_history(c, f, name, c->rooms[slot].room, has > 0);
		return;
	}
	if (!join_room_allowed(c, name))
		return;
	join_room_history(c, f, name, has > 0 ? &since : NULL);
}

static void handle_join(struct rl_conn *c, const struct relay_frame *f)
{
	uint8_t buf[ROOM_BUF], *heap = NULL;
	struct relay_span name;
	struct relay_json_field since = { 0 };
	bool hist = rl_history_on();

	if (handler_room_arg(c, f, buf, &heap, &name, hist ? &since : NULL) == 0 &&
	    (!c->auth || rl_auth_allows(c, RL_PERM_JOIN, name))) {
		if (hist)
			join_history(c, f, name, &since);
		else
			join_room(c, f, name);
	}
	free(heap);
}

static void leave_room(struct rl_conn *c, const struct relay_frame *f, struct relay_span name)
{
	long slot = rl_membership_find(c, name);
	/* Ack first: <name> may point into the room, which leaving can free. */
	room_ack(c, f, name, "left", 0, NULL);
	if (slot >= 0)
		rl_membership_leave(c, (uint32_t)slot, user_left);
}

static void handle_leave(struct rl_conn *c, const struct relay_frame *f)
{
	uint8_t buf[ROOM_BUF], *heap = NULL;
	struct relay_span name;

	if (handler_room_arg(c, f, buf, &heap, &name, NULL) == 0)
		leave_room(c, f, name);
	free(heap);
}

/* ---- MESSAGE -------------------------------------------------------------------- */

static void not_in_room(struct rl_conn *c, struct relay_span name)
{
	char msg[RELAY_ROOM_MAX_BYTES + 48];
	snprintf(msg, sizeof(msg), "not a member of room '%.*s'", (int)name.n,
		 (const char *)name.p);
	rl_conn_error(c, RELAY_ERR_NOT_IN_ROOM, name.p, name.n, msg);
}

static void too_large(struct rl_conn *c, struct relay_span name)
{
	rl_conn_error(c, RELAY_ERR_INVALID_PAYLOAD, name.p, name.n,
		      "message too large to deliver within the maximum frame size");
}

/* Publishes <m> if anyone would receive it; consumes the caller's ref. With
 * history on it is always published (it takes a seq and is stored);
 * <form>/<seq_at> say where its seq goes. */
static void message_publish(struct rl_conn *c, struct rl_room *r, struct rl_msg *m,
			    enum rl_hist_form form, uint32_t seq_at)
{
	bool echo = c->flags & RL_CF_ECHO;
	int full = -1;
	if (form != RL_HIST_NONE)
		full = rl_fanout_publish_seq(c->w, r, m, echo ? NULL : c, form, seq_at);
	else if (echo || rl_room_members(r) > 1)
		full = rl_fanout_publish(c->w, r, m, echo ? NULL : c);
	else
		m->t_read_ns = 0; /* nobody to deliver to: not a fan-out sample */
	if (full >= 0)
		rl_conn_pause(c, (unsigned)full); /* it fills another worker's inbox */
	if (rl_bus) /* the other nodes' members */
		rl_bus->publish(c->w, r, m);
	rl_msg_put(m);
}

static void message_json_send(struct rl_conn *c, struct relay_span name, struct relay_span content)
{
	char id[RL_CONN_NAME_MAX];
	struct relay_jw jw;

	long slot = rl_membership_find(c, name);
	if (slot < 0) {
		not_in_room(c, name);
		return;
	}
	if (c->auth && !rl_auth_allows(c, RL_PERM_PUBLISH, name))
		return;
	struct rl_room *r = c->rooms[slot].room;
	size_t idn = rl_conn_name(c->id, id);
	size_t cap = 64 + relay_jw_str_len(name.p, name.n) + idn + content.n + 24 +
		     (c->user_id ? relay_jw_str_len(c->user_id, c->user_len) + 12 : 0);
	if (cap - 32 > rl_srv.cfg.max_frame + 64) { /* surely too large: skip the work */
		too_large(c, name);
		return;
	}
	/* With history the frame grows by its seq: room for the longest. */
	size_t seq_room = rl_history_on() ? RL_HIST_JSON_SEQ_MAX : 0;
	cap += seq_room;
	struct rl_msg *m = rl_msg_new(RELAY_FRAME_HDR_BYTES + cap, rl_bus_msg_items());
	if (!m) {
		rl_conn_kill(c);
		return;
	}
	relay_jw_init(&jw, m->data + RELAY_FRAME_HDR_BYTES, cap);
	relay_jw_obj_begin(&jw);
	relay_jw_key(&jw, "room");
	relay_jw_str(&jw, name.p, name.n);
	relay_jw_key(&jw, "from");
	relay_jw_str(&jw, id, idn);
	if (c->user_id) {
		relay_jw_key(&jw, "userId");
		relay_jw_str(&jw, c->user_id, c->user_len);
	}
	relay_jw_key(&jw, "content");
	relay_jw_raw(&jw, content.p, content.n);
	relay_jw_key(&jw, "timestamp");
	relay_jw_u64(&jw, now_unix_ms());
	relay_jw_obj_end(&jw);
	if (jw.overflow || jw.len + 3 + seq_room > rl_srv.cfg.max_frame) {
		rl_msg_put(m);
		too_large(c, name);
		return;
	}
	relay_frame_put_header(m->data, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, (uint32_t)jw.len);
	m->len = (uint32_t)(RELAY_FRAME_HDR_BYTES + jw.len);
	m->t_read_ns = c->w->t_read_ns;
	message_publish(c, r, m, seq_room ? RL_HIST_JSON : RL_HIST_NONE, 0);
}

static void message_json(struct rl_conn *c, const struct relay_frame *f)
{
	uint8_t buf[ROOM_BUF], *heap = NULL;
	struct relay_json_field fl[2] = {
		{ .key = "room", .buf = buf, .cap = ROOM_BUF },
		{ .key = "content" },
	};
	struct relay_span name;

	enum relay_json_kind top = handler_json(c, f, fl, 2);
	if (top == RELAY_JSON_NONE)
		return;
	if (top != RELAY_JSON_OBJECT || fl[0].kind != RELAY_JSON_STRING ||
	    fl[1].kind == RELAY_JSON_NONE) {
		bool room = fl[0].kind == RELAY_JSON_STRING && !fl[0].lone_surrogate &&
			    fl[0].dec_len <= ROOM_BUF;
		rl_conn_error(c, RELAY_ERR_INVALID_PAYLOAD, room ? buf : NULL,
			      room ? fl[0].dec_len : 0,
			      "MESSAGE needs a string \"room\" and a \"content\"");
		return;
	}
	if (fl[0].lone_surrogate) {
		rl_conn_error(c, RELAY_ERR_INVALID_ROOM, NULL, 0, NULL);
		return;
	}
	const uint8_t *rb = json_str_bytes(&fl[0], &heap);
	if (!rb)
		rl_conn_kill(c);
	else if (relay_room_name_check(rb, fl[0].dec_len, &name) != RELAY_ERR_NONE)
		rl_conn_error(c, RELAY_ERR_INVALID_ROOM, rb, fl[0].dec_len, NULL);
	else
		message_json_send(c, name, fl[1].raw);
	free(heap);
}

static void message_binary(struct rl_conn *c, const struct relay_frame *f)
{
	struct relay_span room, data, name;
	char id[RL_CONN_NAME_MAX];

	if (relay_bin_msg_parse(f->payload, f->len, &room, &data) != RELAY_ERR_NONE) {
		rl_conn_error(c, RELAY_ERR_INVALID_PAYLOAD, NULL, 0,
			      "binary MESSAGE is u8 L, L bytes of room (1-64), data");
		return;
	}
	if (relay_room_name_check(room.p, room.n, &name) != RELAY_ERR_NONE) {
		rl_conn_error(c, RELAY_ERR_INVALID_ROOM, room.p, room.n, NULL);
		return;
	}
	long slot = rl_membership_find(c, name);
	if (slot < 0) {
		not_in_room(c, name);
		return;
	}
	if (c->auth && !rl_auth_allows(c, RL_PERM_PUBLISH, name))
		return;
	size_t idn = rl_conn_name(c->id, id);
	bool hist = rl_history_on();
	size_t plen = hist ? relay_bin_delivery_seq_size(name.n, idn, data.n)
			   : relay_bin_delivery_size(name.n, idn, data.n);
	if (plen + 3 > rl_srv.cfg.max_frame) {
		too_large(c, name);
		return;
	}
	struct rl_msg *m = rl_msg_new(RELAY_FRAME_HDR_BYTES + plen, rl_bus_msg_items());
	if (!m) {
		rl_conn_kill(c);
		return;
	}
	struct relay_span from = { (const uint8_t *)id, idn };
	m->t_read_ns = c->w->t_read_ns;
	if (!hist) {
		relay_frame_put_header(m->data, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY,
				       (uint32_t)plen);
		relay_bin_delivery_encode(m->data + RELAY_FRAME_HDR_BYTES, name, from, data);
		message_publish(c, c->rooms[slot].room, m, RL_HIST_NONE, 0);
		return;
	}
	/* the seq (u64 after the sender) is written when it is taken */
	relay_frame_put_header(m->data, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY | RELAY_FLAG_SEQ,
			       (uint32_t)plen);
	relay_bin_delivery_seq_encode(m->data + RELAY_FRAME_HDR_BYTES, name, from, 0, data);
	message_publish(c, c->rooms[slot].room, m, RL_HIST_BINARY,
			(uint32_t)(RELAY_FRAME_HDR_BYTES + 2 + name.n + idn));
}

static void handle_message(struct rl_conn *c, const struct relay_frame *f)
{
	if (frame_binary(f))
		message_binary(c, f);
	else
		message_json(c, f);
}

/* ---- HEARTBEAT / client ERROR ---------------------------------------------------- */

static void handle_heartbeat(struct rl_conn *c, const struct relay_frame *f)
{
	if ((f->flags & RELAY_FLAG_JSON) && handler_json(c, f, NULL, 0) == RELAY_JSON_NONE)
		return;
	rl_conn_send(c, RELAY_MSG_HEARTBEAT, f->flags, f->payload, f->len);
}

static void handle_client_error(struct rl_conn *c, const struct relay_frame *f)
{
	if ((f->flags & RELAY_FLAG_JSON) && handler_json(c, f, NULL, 0) == RELAY_JSON_NONE)
		return;
	RL_STAT_ADD(c->w->stats, client_errors, 1);
	RL_DEBUGF(c->id, "client sent an ERROR frame (%u bytes); ignored", f->len);
}

static const handler_fn handlers[RELAY_MSG_NTYPES] = {
	[RELAY_MSG_HELLO] = handle_hello,
	[RELAY_MSG_JOIN_ROOM] = handle_join,
	[RELAY_MSG_LEAVE_ROOM] = handle_leave,
	[RELAY_MSG_MESSAGE] = handle_message,
	[RELAY_MSG_HEARTBEAT] = handle_heartbeat,
	[RELAY_MSG_ERROR] = handle_client_error,
};

/* ---- rate limits ------------------------------------------------------------------ */

/* The rate-limit buckets a frame type takes from (net/limit.h): one token
 * per MESSAGE (and its bytes), one per JOIN_ROOM or LEAVE_ROOM; HELLO,
 * HEARTBEAT and ERROR take none. */
static const struct {
	bool on;
	enum rl_limit_bucket b;
} frame_limits[RELAY_MSG_NTYPES] = {
	[RELAY_MSG_JOIN_ROOM] = {true, RL_LIMIT_JOIN},
	[RELAY_MSG_LEAVE_ROOM] = {true, RL_LIMIT_JOIN},
	[RELAY_MSG_MESSAGE] = {true, RL_LIMIT_PUBLISH},
};

/* Pays for frame <f> of type <t>; the frame is handled whatever the bucket
 * holds (an empty one throttles <c>: nothing after it is read until it
 * refills). -1 when <c> was closed (out of memory). */
static int handler_limit(struct rl_conn *c, const struct relay_frame *f, unsigned t)
{
	if (!frame_limits[t].on)
		return 0;
	int rc = rl_limit_take(c, frame_limits[t].b, 1);
	if (rc == 0 && t == RELAY_MSG_MESSAGE)
		rc = rl_limit_take(c, RL_LIMIT_PUBLISH_BYTES, RELAY_FRAME_HDR_BYTES + (uint64_t)f->len);
	if (rc == 0)
		return 0;
	RL_WARNF(c->id, "out of memory for its rate limits: connection closed");
	rl_conn_kill(c);
	return -1;
}

void rl_handler_frame(struct rl_conn *c, const struct relay_frame *f)
{
	unsigned t = f->type < RELAY_MSG_NTYPES ? f->type : 0;

	RL_STAT_ADD(c->w->stats, frames_in[t], 1);
	char bits[11];
	RL_DEBUGF(c->id, "in %s v%u flags %s payload %u", relay_msg_type_name(f->type),
		  (unsigned)f->version, rl_log_bits8(f->flags, bits), f->len);
	if (!handlers[t]) {
		rl_conn_error(c, RELAY_ERR_UNKNOWN_MESSAGE_TYPE, NULL, 0, NULL);
		return;
	}
	if (handler_limit(c, f, t))
		return;
	if (c->auth && rl_auth_gate(c, t))
		return;
	handlers[t](c, f);
}
