/* event.c -- server frames decoded into struct rl_cli_event, and the JSON
 * payloads of client requests. Both sides go through the protocol library
 * (relay_json_parse, relay_bin_delivery_parse, rl_jw_*): relay-cli has no codec of
 * its own.
 *
 * Threading: pure functions; no state.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Which event a frame of each type is, before looking inside it. */
static const enum rl_cli_ev ev_kind_by_type[RELAY_MSG_NTYPES] = {
    [RELAY_MSG_HELLO] = RL_CLI_EV_HELLO,	      [RELAY_MSG_JOIN_ROOM] = RL_CLI_EV_JOINED,
    [RELAY_MSG_LEAVE_ROOM] = RL_CLI_EV_LEFT,     [RELAY_MSG_MESSAGE] = RL_CLI_EV_MESSAGE,
    [RELAY_MSG_HEARTBEAT] = RL_CLI_EV_HEARTBEAT, [RELAY_MSG_ERROR] = RL_CLI_EV_ERROR,
};

/* The top-level keys relay-cli reads. String-valued ones are decoded into the
 * event member at <off> (<size> bytes, NUL included); the others keep their
 * raw bytes only. */
enum ev_key {
	EV_K_ROOM = 0,
	EV_K_FROM,
	EV_K_CONN_ID,
	EV_K_USER,
	EV_K_CODE,
	EV_K_MESSAGE,
	EV_K_SERVER_VERSION,
	EV_K_TYPE,
	EV_K_CONTENT,
	EV_K_TIMESTAMP,
	EV_K_MEMBERS,
	EV_K_MAX_FRAME,
	EV_K_HEARTBEAT_MS,
	EV_K_FATAL,
	EV_K_REASON,
	EV_K_EPOCH,
	EV_K_SEQ,
	EV_K_RECOVERED,
	EV_K_NKEYS
};

#define EV_STR(k, m)                                                                               \
	{                                                                                          \
		k, offsetof(struct rl_cli_event, m), sizeof(((struct rl_cli_event *)0)->m)         \
	}
static const struct ev_key_def {
	const char *key;
	size_t off; /* 0: not decoded into the event */
	size_t size;
} ev_keys[EV_K_NKEYS] = {
    [EV_K_ROOM] = EV_STR("room", room),
    [EV_K_FROM] = EV_STR("from", conn),
    [EV_K_CONN_ID] = EV_STR("connectionId", conn),
    [EV_K_USER] = EV_STR("userId", user),
    [EV_K_CODE] = EV_STR("code", code),
    [EV_K_MESSAGE] = EV_STR("message", message),
    [EV_K_SERVER_VERSION] = EV_STR("serverVersion", server_version),
    [EV_K_TYPE] = {"type", 0, 0},
    [EV_K_CONTENT] = {"content", 0, 0},
    [EV_K_TIMESTAMP] = {"timestamp", 0, 0},
    [EV_K_MEMBERS] = {"members", 0, 0},
    [EV_K_MAX_FRAME] = {"maxFrameBytes", 0, 0},
    [EV_K_HEARTBEAT_MS] = {"heartbeatMs", 0, 0},
    [EV_K_FATAL] = {"fatal", 0, 0},
    [EV_K_REASON] = EV_STR("reason", message),
    [EV_K_EPOCH] = EV_STR("epoch", epoch),
    [EV_K_SEQ] = {"seq", 0, 0},
    [EV_K_RECOVERED] = {"recovered", 0, 0},
};

static uint64_t ev_number(const struct relay_json_field *f, uint64_t absent)
{
	char tmp[24];

	if (f->kind != RELAY_JSON_NUMBER || f->raw.n >= sizeof tmp || f->raw.p[0] == '-')
		return absent;
	memcpy(tmp, f->raw.p, f->raw.n);
	tmp[f->raw.n] = '\0';
	return strtoull(tmp, NULL, 10);
}

static bool ev_is(const struct relay_json_field *f, const char *s)
{
	size_t n = strlen(s);

	return f->kind == RELAY_JSON_STRING && f->raw.n == n + 2 && memcmp(f->raw.p + 1, s, n) == 0;
}

/* NUL-terminates the decoded string members (truncating), "" when absent. */
static void ev_terminate(struct rl_cli_event *ev, const struct relay_json_field *fl)
{
	for (int k = 0; k < EV_K_NKEYS; k++) {
		char *dst = (char *)ev + ev_keys[k].off;
		size_t n = fl[k].dec_len;

		if (ev_keys[k].off == 0 || fl[k].kind != RELAY_JSON_STRING)
			continue;
		dst[n < ev_keys[k].size - 1 ? n : ev_keys[k].size - 1] = '\0';
	}
}

static int ev_decode_json(const struct relay_frame *f, struct rl_cli_event *ev, char *why,
			  size_t whylen)
{
	struct relay_json_field fl[EV_K_NKEYS];
	struct relay_json_result res;

	memset(fl, 0, sizeof fl);
	for (int k = 0; k < EV_K_NKEYS; k++) {
		fl[k].key = ev_keys[k].key;
		if (ev_keys[k].off) {
			fl[k].buf = (uint8_t *)ev + ev_keys[k].off;
			fl[k].cap = ev_keys[k].size - 1;
		}
	}
	if (relay_json_parse(f->payload, f->len, fl, EV_K_NKEYS, &res) != 0) {
		snprintf(why, whylen, "the server sent invalid JSON (%s at byte %zu)",
			 res.err_msg ? res.err_msg : "error", res.err_off);
		return -EPROTO;
	}
	ev_terminate(ev, fl);
	ev->content = fl[EV_K_CONTENT].raw;
	ev->timestamp_ms = ev_number(&fl[EV_K_TIMESTAMP], 0);
	ev->members = (long)ev_number(&fl[EV_K_MEMBERS], (uint64_t)-1);
	ev->max_frame = (uint32_t)ev_number(&fl[EV_K_MAX_FRAME], 0);
	ev->heartbeat_ms = (uint32_t)ev_number(&fl[EV_K_HEARTBEAT_MS], 0);
	ev->fatal = fl[EV_K_FATAL].kind == RELAY_JSON_TRUE;
	ev->has_seq = fl[EV_K_SEQ].kind == RELAY_JSON_NUMBER;
	ev->seq = ev_number(&fl[EV_K_SEQ], 0);
	enum relay_json_kind rk = fl[EV_K_RECOVERED].kind;
	if (rk == RELAY_JSON_TRUE || rk == RELAY_JSON_FALSE)
		ev->recovered = rk == RELAY_JSON_TRUE;
	if (ev->kind == RL_CLI_EV_MESSAGE && ev_is(&fl[EV_K_TYPE], "userJoined"))
		ev->kind = RL_CLI_EV_USER_JOINED;
	else if (ev->kind == RL_CLI_EV_MESSAGE && ev_is(&fl[EV_K_TYPE], "userLeft"))
		ev->kind = RL_CLI_EV_USER_LEFT;
	else if (ev->kind == RL_CLI_EV_MESSAGE && ev_is(&fl[EV_K_TYPE], "gap"))
		ev->kind = RL_CLI_EV_GAP;
	return 0;
}

static void ev_copy(char *dst, size_t size, const uint8_t *p, size_t n)
{
	if (n > size - 1)
		n = size - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/* Binary forms: JOIN/LEAVE acks carry the room name, MESSAGE the delivery
 * envelope (with RELAY_FLAG_SEQ, history: its seq after the sender). */
static int ev_decode_binary(const struct relay_frame *f, struct rl_cli_event *ev, char *why,
			    size_t whylen)
{
	struct relay_span room, from, data;

	ev->binary = true;
	if (ev->kind == RL_CLI_EV_JOINED || ev->kind == RL_CLI_EV_LEFT) {
		ev_copy(ev->room, sizeof ev->room, f->payload, f->len);
		return 0;
	}
	if (ev->kind != RL_CLI_EV_MESSAGE)
		return 0;
	enum relay_err e;
	if (f->flags & RELAY_FLAG_SEQ)
		e = relay_bin_delivery_seq_parse(f->payload, f->len, &room, &from, &ev->seq, &data);
	else
		e = relay_bin_delivery_parse(f->payload, f->len, &room, &from, &data);
	ev->has_seq = (f->flags & RELAY_FLAG_SEQ) != 0;
	if (e != RELAY_ERR_NONE) {
		snprintf(why, whylen, "the server sent a malformed binary MESSAGE");
		return -EPROTO;
	}
	ev->kind = RL_CLI_EV_BINARY;
	ev_copy(ev->room, sizeof ev->room, room.p, room.n);
	ev_copy(ev->conn, sizeof ev->conn, from.p, from.n);
	ev->content = data;
	return 0;
}

int rl_cli_event_decode(const struct relay_frame *f, struct rl_cli_event *ev, char *why, size_t whylen)
{
	memset(ev, 0, sizeof *ev);
	ev->payload = (struct relay_span){f->payload, f->len};
	ev->members = -1;
	ev->recovered = -1;
	ev->kind = f->type < RELAY_MSG_NTYPES ? ev_kind_by_type[f->type] : RL_CLI_EV_OTHER;
	if (f->flags & RELAY_FLAG_JSON)
		return ev_decode_json(f, ev, why, whylen);
	if (f->len > 0)
		return ev_decode_binary(f, ev, why, whylen);
	return 0;
}

/* ---- requests ----------------------------------------------------------- */

size_t rl_cli_req_hello(uint8_t *buf, size_t cap, const char *user, const char *token)
{
	struct relay_jw w;

	relay_jw_init(&w, buf, cap);
	relay_jw_obj_begin(&w);
	if (user) {
		relay_jw_key(&w, "userId");
		relay_jw_cstr(&w, user);
	}
	if (token) {
		relay_jw_key(&w, "token");
		relay_jw_cstr(&w, token);
	}
	relay_jw_key(&w, "clientVersion");
	relay_jw_cstr(&w, RL_CLI_VERSION);
	relay_jw_obj_end(&w);
	return w.overflow ? 0 : w.len;
}

size_t rl_cli_req_room(uint8_t *buf, size_t cap, const char *room)
{
	struct relay_jw w;

	relay_jw_init(&w, buf, cap);
	relay_jw_obj_begin(&w);
	relay_jw_key(&w, "room");
	relay_jw_cstr(&w, room);
	relay_jw_obj_end(&w);
	return w.overflow ? 0 : w.len;
}

size_t rl_cli_req_join_since(uint8_t *buf, size_t cap, const char *room, const char *epoch,
			     uint64_t seq)
{
	struct relay_jw w;

	relay_jw_init(&w, buf, cap);
	relay_jw_obj_begin(&w);
	relay_jw_key(&w, "room");
	relay_jw_cstr(&w, room);
	relay_jw_key(&w, "since");
	relay_jw_obj_begin(&w);
	relay_jw_key(&w, "epoch");
	relay_jw_cstr(&w, epoch);
	relay_jw_key(&w, "seq");
	relay_jw_u64(&w, seq);
	relay_jw_obj_end(&w);
	relay_jw_obj_end(&w);
	return w.overflow ? 0 : w.len;
}

size_t rl_cli_req_message(uint8_t *buf, size_t cap, const char *room, const char *content,
			  size_t len, bool raw_json)
{
	struct relay_jw w;

	relay_jw_init(&w, buf, cap);
	relay_jw_obj_begin(&w);
	relay_jw_key(&w, "room");
	relay_jw_cstr(&w, room);
	relay_jw_key(&w, "content");
	if (raw_json)
		relay_jw_raw(&w, content, len);
	else
		relay_jw_str(&w, content, len);
	relay_jw_obj_end(&w);
	return w.overflow ? 0 : w.len;
}

int rl_cli_json_check(const char *p, size_t n, char *why, size_t whylen)
{
	struct relay_json_result res;

	if (relay_json_parse((const uint8_t *)p, n, NULL, 0, &res) == 0)
		return 0;
	snprintf(why, whylen, "invalid JSON: %s at byte %zu",
		 res.err_msg ? res.err_msg : (n ? "syntax error" : "empty input"), res.err_off);
	return -1;
}
