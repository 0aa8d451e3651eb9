/* proto_relay.c -- relay-bench speaking the Relay protocol v1 (JSON or binary
 * framing) through the protocol library: frames are built with
 * relay_frame_put_header / relay_bin_msg_encode and parsed in place by relay_decoder.
 * Threading: called only by the connection's owner thread.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

static bool relay_binary; /* set once before threads start (rb_proto_relay_mode) */

void rb_proto_relay_mode(bool binary)
{
	relay_binary = binary;
}

/* Room for a frame of exactly <n> bytes (over WebSocket: inside its
 * message), then relay_end. */
static uint8_t *relay_begin(struct bconn *c, size_t n)
{
	return c->ws != NULL ? rb_ws_begin(c, n) : rb_out_reserve(c, n);
}

/* The HELLO payload, set once before threads start (rb_proto_relay_token). */
static char relay_hello_json[4200] = "{\"clientVersion\":\"relay-bench/0.1\"}";

int rb_proto_relay_token(const char *token)
{
	if (!token)
		return 0;
	int n = snprintf(relay_hello_json, sizeof relay_hello_json,
			 "{\"clientVersion\":\"relay-bench/0.1\",\"token\":\"%s\"}", token);
	return n > 0 && (size_t)n < sizeof relay_hello_json ? 0 : -1;
}

static void relay_end(struct bconn *c, uint8_t *frame, size_t n)
{
	if (c->ws != NULL)
		rb_ws_end(c, frame, n);
	else
		rb_out_commit(c, n);
}

static void relay_frame(struct bconn *c, uint8_t type, uint8_t flags, const void *p, size_t n)
{
	uint8_t *w = relay_begin(c, RELAY_FRAME_HDR_BYTES + n);
	relay_end(c, w, relay_frame_encode(w, type, flags, p, (uint32_t)n));
}

static void relay_send_hello(struct bconn *c)
{
	relay_frame(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON, relay_hello_json,
		    strlen(relay_hello_json));
}

/* Over WebSocket the HELLO (and the join, relay_subscribe) wait for the 101. */
static void relay_hello(struct bconn *c)
{
	relay_decoder_init(&c->dec, RELAY_DEFAULT_MAX_FRAME);
	c->pending_acks++;
	if (rb_ws_enabled()) {
		if (rb_ws_start(c) < 0)
			rb_on_error(c, "out of memory", 13);
		return;
	}
	relay_send_hello(c);
}

static void relay_room_op(struct bconn *c, uint8_t type, uint32_t room)
{
	char name[16], js[48];
	size_t nl = rb_room_name(name, room);
	if (relay_binary) {
		relay_frame(c, type, RELAY_FLAG_BINARY, name, nl);
		return;
	}
	size_t jl = (size_t)(stpcpy(stpcpy(stpcpy(js, "{\"room\":\""), name), "\"}") - js);
	relay_frame(c, type, RELAY_FLAG_JSON, js, jl);
}

static void relay_subscribe(struct bconn *c, uint32_t room)
{
	c->pending_acks++;
	if (c->ws != NULL && !rb_ws_up(c))
		return; /* sent with the HELLO once upgraded (relay_upgraded) */
	relay_room_op(c, RELAY_MSG_JOIN_ROOM, room);
}

/* The 101 came: the HELLO, and the join the engine asked for meanwhile
 * (every connection but a publisher that does not join; pub_joins). */
static void relay_upgraded(struct bconn *c)
{
	relay_send_hello(c);
	if (c->pending_acks > 1)
		relay_room_op(c, RELAY_MSG_JOIN_ROOM, c->room);
}

static void relay_unsubscribe(struct bconn *c, uint32_t room)
{
	relay_room_op(c, RELAY_MSG_LEAVE_ROOM, room);
	c->pending_acks++;
}

/* JSON: {"room":"rN","content":"<payload minus 2 bytes>"} so that content is
 * exactly <n> bytes. Binary: the library's envelope around <n> bytes. */
static size_t relay_publish_size(uint32_t room, size_t n)
{
	char name[16];
	size_t nl = rb_room_name(name, room);
	if (relay_binary)
		return RELAY_FRAME_HDR_BYTES + relay_bin_msg_size(nl, n);
	return RELAY_FRAME_HDR_BYTES + 9 + nl + 13 + n + 1;
}

static void relay_publish(struct bconn *c, uint32_t room, const uint8_t *p, size_t n)
{
	char name[16];
	size_t nl = rb_room_name(name, room);
	/* the exact size: over WebSocket the message header is written first */
	size_t total = relay_binary ? relay_publish_size(room, n) : RELAY_FRAME_HDR_BYTES + nl + n + 22;
	uint8_t *w = relay_begin(c, total);
	uint8_t *b = w + RELAY_FRAME_HDR_BYTES;
	if (relay_binary) {
		struct relay_span rs = { (const uint8_t *)name, nl }, ds = { p, n };
		size_t pl = relay_bin_msg_encode(b, rs, ds);
		relay_frame_put_header(w, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, (uint32_t)pl);
		relay_end(c, w, RELAY_FRAME_HDR_BYTES + pl);
		return;
	}
	uint8_t *q = b;
	memcpy(q, "{\"room\":\"", 9), q += 9;
	memcpy(q, name, nl), q += nl;
	memcpy(q, "\",\"content\":\"", 13), q += 13;
	memcpy(q, p, n - 2), q += n - 2;
	*q++ = '"';
	*q++ = '}';
	relay_frame_put_header(w, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, (uint32_t)(q - b));
	relay_end(c, w, (size_t)(q - w));
}

/* A JSON delivery is {"room":..,"from":..[,"userId":..],"content":<v>,"timestamp":..}
 * (key order fixed by the spec). Our content is a string starting with the
 * payload header; presence events have no "content" key. */
static const uint8_t *find_content(const uint8_t *p, size_t n)
{
	/* glibc memmem is slow on ~100-byte haystacks (it showed as a third of
	 * the client's profile); an 8-byte compare per position is not. */
	static const char key[] = "\"content\":\"";
	uint64_t k8;
	memcpy(&k8, key, 8);
	for (size_t i = 9; i + 11 <= n; i++) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		if (v == k8 && p[i + 8] == '"' && p[i + 9] == ':' && p[i + 10] == '"')
			return p + i + 11;
	}
	return NULL;
}

static void relay_json_message(struct bconn *c, const struct relay_frame *f)
{
	const uint8_t *v = find_content(f->payload, f->len);
	if (!v) {
		rb_on_other(c);
		return;
	}
	size_t left = f->len - (size_t)(v - f->payload);
	rb_on_delivery(c, v, left);
}

static void relay_error(struct bconn *c, const struct relay_frame *f)
{
	struct relay_json_field code = { .key = "code" };
	if (relay_json_parse(f->payload, f->len, &code, 1, NULL) == 0 &&
	    code.kind == RELAY_JSON_STRING && code.raw.n >= 2)
		rb_on_error(c, (const char *)code.raw.p + 1, code.raw.n - 2);
	else
		rb_on_error(c, "ERROR", 5);
}

static void relay_frame_in(struct bconn *c, const struct relay_frame *f)
{
	switch (f->type) {
	case RELAY_MSG_MESSAGE:
		if (f->flags & RELAY_FLAG_BINARY) {
			struct relay_span room, from, data;
			if (relay_bin_delivery_parse(f->payload, f->len, &room, &from, &data) ==
			    RELAY_ERR_NONE)
				rb_on_delivery(c, data.p, data.n);
			else
				rb_on_error(c, "bad binary delivery", 19);
		} else {
			relay_json_message(c, f);
		}
		break;
	case RELAY_MSG_HELLO:
	case RELAY_MSG_JOIN_ROOM:
	case RELAY_MSG_LEAVE_ROOM:
		rb_on_ack(c);
		break;
	case RELAY_MSG_ERROR:
		relay_error(c, f);
		break;
	default:
		rb_on_other(c);
		break;
	}
}

static int relay_stream(struct bconn *c, const uint8_t *p, size_t n)
{
	struct relay_frame f;
	enum relay_decode_status st;
	relay_decoder_feed(&c->dec, p, n);
	while ((st = relay_decoder_next_from_server(&c->dec, &f)) == RELAY_DECODE_FRAME)
		relay_frame_in(c, &f);
	if (st != RELAY_DECODE_NEED_MORE) { /* ERROR, or NOMEM (err NONE) */
		const char *nm =
		    st == RELAY_DECODE_NOMEM ? "out of memory" : relay_err_name(c->dec.err);
		rb_on_error(c, nm, strlen(nm));
		return -1;
	}
	return (int)n;
}

static int relay_input(struct bconn *c, const uint8_t *p, size_t n)
{
	if (c->ws != NULL)
		return rb_ws_input(c, p, n, relay_stream, relay_upgraded);
	return relay_stream(c, p, n);
}

static void relay_keepalive(struct bconn *c)
{
	relay_frame(c, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON, "{}", 2);
}

static void relay_fini(struct bconn *c)
{
	relay_decoder_free(&c->dec);
	rb_ws_free(c);
}

const struct rb_proto rb_proto_relay = {
	.name = "relay",
	.hello = relay_hello,
	.subscribe = relay_subscribe,
	.unsubscribe = relay_unsubscribe,
	.publish = relay_publish,
	.input = relay_input,
	.publish_size = relay_publish_size,
	.keepalive = relay_keepalive,
	.fini = relay_fini,
	.pub_joins = true,
};
