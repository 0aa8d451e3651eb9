/* test_message.c -- MESSAGE delivery against a live relayd: the JSON and
 * binary forms byte for byte, content verbatim, userId placement, echo,
 * and the non-fatal errors a MESSAGE can earn.
 * Threading: Criterion test bodies, one relayd per test. */
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>

/* Expects the JSON delivery of <content> (raw JSON text) in <room> from
 * <from>, with "userId" right after "from" when <user> is given; checks the
 * timestamp is the server's wall clock in ms (same machine: within
 * [t0 - 1 s, now + 1 s]). */
static void expect_delivery(struct rl_test_client *c, const char *room,
			    const struct rl_test_client *from, const char *user, const char *content,
			    int64_t t0)
{
	size_t cap = strlen(content) + 512;
	char *want = malloc(cap);
	cr_assert_not_null(want);
	if (user != NULL)
		snprintf(want, cap,
			 "{\"room\":\"%s\",\"from\":*,\"userId\":\"%s\",\"content\":%s,\"timestamp\":*}",
			 room, user, content);
	else
		snprintf(want, cap, "{\"room\":\"%s\",\"from\":*,\"content\":%s,\"timestamp\":*}", room,
			 content);
	const struct rl_test_frame *f = it_expect_json(c, RELAY_MSG_MESSAGE, want);
	free(want);
	char id[160];
	cr_assert(rl_test_json_str(f, "from", id, sizeof(id)) > 0 &&
			  strcmp(id, rl_test_conn_id(from)) == 0,
		  "\"from\" should be %s: %s", rl_test_conn_id(from), rl_test_frame_str(f));
	int64_t ts = 0, now = rl_test_wall_ms();
	cr_assert_eq(rl_test_json_i64(f, "timestamp", &ts), 0, "integer timestamp: %s",
		     rl_test_frame_str(f));
	cr_assert(ts >= t0 - 1000 && ts <= now + 1000,
		  "timestamp %lld not within [%lld, %lld] (ms since the epoch)", (long long)ts,
		  (long long)t0, (long long)now);
}

static void send_msg(struct rl_test_client *c, const char *room, const char *content)
{
	cr_assert_eq(rl_test_send_json(c, RELAY_MSG_MESSAGE, "{\"room\":\"%s\",\"content\":%s}", room,
				       content),
		     0, "%s", rl_test_err());
}

IT_TEST(message, json_delivery_byte_exact_sender_excluded)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "2");
	struct rl_test_client *a = it_client(&s, "{\"userId\":\"alice\"}");
	struct rl_test_client *b = it_client(&s, NULL);
	struct rl_test_client *c = it_client(&s, NULL);
	it_join(a, "physics", 1);
	it_join(b, "physics", 2);
	it_join(c, "physics", 3);
	it_presence(a, 2); /* b and c joined */
	it_presence(b, 1);

	int64_t t0 = rl_test_wall_ms();
	send_msg(a, "physics", "{\"text\":\"hi\"}");
	expect_delivery(b, "physics", a, "alice", "{\"text\":\"hi\"}", t0);
	expect_delivery(c, "physics", a, "alice", "{\"text\":\"hi\"}", t0);
	/* No userId when the sender gave none. */
	send_msg(b, "physics", "\"plain\"");
	expect_delivery(a, "physics", b, NULL, "\"plain\"", t0);
	expect_delivery(c, "physics", b, NULL, "\"plain\"", t0);
	/* The sender gets nothing back (echo defaults to false). */
	it_silent(a);
	it_silent(b);
	/* Unknown fields in a MESSAGE are ignored; room names are trimmed. */
	cr_assert_eq(rl_test_send_json(a, RELAY_MSG_MESSAGE,
				       "{\"id\":7,\"room\":\" physics \",\"content\":[],\"x\":{}}"),
		     0);
	expect_delivery(b, "physics", a, "alice", "[]", t0);
	rl_test_close(a);
	rl_test_close(b);
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(message, content_is_forwarded_verbatim)
{
	static const char *const contents[] = {
		"{ \"a\" :  [1 ,2,\t{\"b\" : \"\\u00e9\\ud83d\\ude00\"} ] ,\n\"n\":-0.5e+10 }",
		"\"h\xc3\xa9llo \xf0\x9f\x98\x80 \\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0000\"",
		"123456789012345678901234567890123456789012345678901234567890.000000000000000001e-99999",
		"-0",
		"1E400",
		"\"\\ud800 lone surrogate escapes are valid JSON\"",
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", /* 32 deep */
		"null",
		"true",
		"false",
		"{}",
		"{\"room\":\"elsewhere\",\"content\":1}",
	};
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, NULL);
	it_join(a, "r", 1);
	it_join(b, "r", 2);
	it_presence(a, 1);
	int64_t t0 = rl_test_wall_ms();
	for (size_t i = 0; i < sizeof(contents) / sizeof(contents[0]); i++) {
		send_msg(a, "r", contents[i]);
		expect_delivery(b, "r", a, NULL, contents[i], t0);
	}
	/* Whitespace around the value is not part of it. */
	it_send_str(a, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, "{\"room\":\"r\",\"content\": \n\t [ 1 , 2 ] \r\n }");
	expect_delivery(b, "r", a, NULL, "[ 1 , 2 ]", t0);
	/* Key order in the request does not matter; duplicate keys: the last wins. */
	it_send_str(a, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, "{\"content\":{\"k\":1},\"room\":\"r\"}");
	expect_delivery(b, "r", a, NULL, "{\"k\":1}", t0);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

static void send_bin_msg(struct rl_test_client *c, uint8_t flags, const char *room,
			 const void *data, size_t n)
{
	uint8_t buf[1024];
	size_t rl = strlen(room);
	buf[0] = (uint8_t)rl;
	memcpy(buf + 1, room, rl);
	memcpy(buf + 1 + rl, data, n);
	it_send(c, RELAY_MSG_MESSAGE, flags, buf, 1 + rl + n);
}

static void expect_bin_delivery(struct rl_test_client *c, const char *room,
				const struct rl_test_client *from, const void *data, size_t n)
{
	uint8_t want[1024];
	size_t rl = strlen(room), fl = strlen(rl_test_conn_id(from));
	want[0] = (uint8_t)rl;
	memcpy(want + 1, room, rl);
	want[1 + rl] = (uint8_t)fl;
	memcpy(want + 2 + rl, rl_test_conn_id(from), fl);
	memcpy(want + 2 + rl + fl, data, n);
	it_expect_bin(c, RELAY_MSG_MESSAGE, want, 2 + rl + fl + n);
}

IT_TEST(message, binary_messages_arrive_in_the_binary_envelope_with_the_sender)
{
	static const uint8_t data[] = {0x00, 0xff, 0x01, '{', 0x80, 0x0a, 0x00};
	struct rl_test_server s;
	IT_START(&s, "--workers", "2");
	struct rl_test_client *a = it_client(&s, "{\"userId\":\"alice\"}");
	struct rl_test_client *b = it_client(&s, NULL);
	struct rl_test_client *c = it_client(&s, NULL);
	it_join(a, "bin", 1);
	it_join(b, "bin", 2);
	it_join(c, "bin", 3);
	it_presence(a, 2);
	it_presence(b, 1);
	send_bin_msg(a, RELAY_FLAG_BINARY, "bin", data, sizeof(data));
	expect_bin_delivery(b, "bin", a, data, sizeof(data));
	expect_bin_delivery(c, "bin", a, data, sizeof(data));
	/* Non-empty payload with flags 0 is binary. Empty data is allowed. */
	send_bin_msg(b, 0, "bin", "", 0);
	expect_bin_delivery(a, "bin", b, "", 0);
	expect_bin_delivery(c, "bin", b, "", 0);
	/* The envelope's room is trimmed like any name. */
	send_bin_msg(c, RELAY_FLAG_BINARY, " bin\t", "x", 1);
	expect_bin_delivery(a, "bin", c, "x", 1);
	expect_bin_delivery(b, "bin", c, "x", 1);
	it_silent(a);
	it_silent(b);
	it_silent(c);
	rl_test_close(a);
	rl_test_close(b);
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(message, echo_true_delivers_to_sender_and_rehello_toggles)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "2");
	struct rl_test_client *a = it_client(&s, "{\"userId\":\"alice\",\"echo\":true}");
	struct rl_test_client *b = it_client(&s, NULL);
	it_join(a, "e", 1);
	it_join(b, "e", 2);
	it_presence(a, 1);
	int64_t t0 = rl_test_wall_ms();
	send_msg(a, "e", "{\"n\":1}");
	expect_delivery(a, "e", a, "alice", "{\"n\":1}", t0);
	expect_delivery(b, "e", a, "alice", "{\"n\":1}", t0);
	send_bin_msg(a, RELAY_FLAG_BINARY, "e", "bb", 2);
	expect_bin_delivery(a, "e", a, "bb", 2);
	expect_bin_delivery(b, "e", a, "bb", 2);
	/* "echo":false explicitly, by a new HELLO. */
	cr_assert_not_null(
	    rl_test_hello(a, "{\"userId\":\"alice\",\"echo\":false}", RL_TEST_REPLY_MS), "%s",
	    rl_test_err());
	send_msg(a, "e", "2");
	expect_delivery(b, "e", a, "alice", "2", t0);
	it_silent(a);
	/* B turns echo on without a userId. */
	cr_assert_not_null(rl_test_hello(b, "{\"echo\":true}", RL_TEST_REPLY_MS), "%s",
			   rl_test_err());
	send_msg(b, "e", "3");
	expect_delivery(b, "e", b, NULL, "3", t0);
	expect_delivery(a, "e", b, NULL, "3", t0);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(message, not_in_room_is_nonfatal)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, NULL);
	it_join(b, "physics", 1);
	/* The room exists (b is in it) but a is not a member. Byte-exact
	 * against the spec's example, "room" after "fatal". */
	send_msg(a, "physics", "1");
	it_expect_exact(a, RELAY_MSG_ERROR,
			"{\"code\":\"NOT_IN_ROOM\",\"message\":\"not a member of room 'physics'\","
			"\"fatal\":false,\"room\":\"physics\"}");
	it_ping(a);
	/* A room that does not exist at all. */
	send_msg(a, "ghost", "1");
	it_nonfatal_room(a, "NOT_IN_ROOM", "ghost");
	send_bin_msg(a, RELAY_FLAG_BINARY, "physics", "x", 1);
	it_nonfatal_room(a, "NOT_IN_ROOM", "physics");
	/* After leaving, too. */
	it_join(a, "physics", 2);
	it_leave(a, "physics");
	send_msg(a, "physics", "1");
	it_nonfatal_room(a, "NOT_IN_ROOM", "physics");
	/* b received nothing but the presence events. */
	it_presence(b, 2);
	it_silent(b);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(message, wrong_shapes_are_invalid_payload)
{
	static const char *const bad[] = {
		"2",
		"[]",
		"\"room\"",
		"null",
		"{}",
		"{\"room\":\"r\"}",
		"{\"content\":1}",
		"{\"room\":5,\"content\":1}",
		"{\"room\":null,\"content\":1}",
		"{\"room\":[\"r\"],\"content\":1}",
	};
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, NULL);
	it_join(a, "r", 1);
	it_join(b, "r", 2);
	it_presence(a, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		it_send_str(a, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, bad[i]);
		cr_assert_not_null(rl_test_expect_error(a, "INVALID_PAYLOAD", RL_TEST_REPLY_MS),
				   "%s: %s", bad[i], rl_test_err());
	}
	/* Binary envelopes too short or with L = 0 / L > 64. */
	uint8_t l0[] = {0, 'x'}, lbig[70], shortp[] = {5, 'a', 'b'};
	lbig[0] = 65;
	memset(lbig + 1, 'a', sizeof(lbig) - 1);
	it_send(a, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, l0, sizeof(l0));
	it_nonfatal(a, "INVALID_PAYLOAD");
	it_send(a, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, lbig, sizeof(lbig));
	it_nonfatal(a, "INVALID_PAYLOAD");
	it_send(a, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, shortp, sizeof(shortp));
	it_nonfatal(a, "INVALID_PAYLOAD");
	it_send(a, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, NULL, 0);
	it_nonfatal(a, "INVALID_PAYLOAD");
	/* JOIN/LEAVE shapes: missing or non-string room. */
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"name\":\"r\"}");
	it_nonfatal(a, "INVALID_PAYLOAD");
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":1}");
	it_nonfatal(a, "INVALID_PAYLOAD");
	it_send_str(a, RELAY_MSG_LEAVE_ROOM, RELAY_FLAG_JSON, "[\"r\"]");
	it_nonfatal(a, "INVALID_PAYLOAD");
	/* Nothing was delivered. */
	it_silent(b);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(message, empty_control_surrogate_or_overlong_room_names_are_invalid_room)
{
	static const char *const bad[] = {
		"\"\"",
		"\" \\t\\r\\n \"",
		"\"a\\u0001b\"",
		"\"a\\u0000\"",
		"\"x\\u007f\"",
		"\"x\\u0085\"", /* C1 control */
		"\"\\ud800\"",  /* lone surrogate in a decoded name */
		"\"\\udc00\\ud800\"",
		"\"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\"", /* 65 */
	};
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(rl_test_send_json(a, RELAY_MSG_JOIN_ROOM, "{\"room\":%s}", bad[i]), 0);
		cr_assert_not_null(rl_test_expect_error(a, "INVALID_ROOM", RL_TEST_REPLY_MS),
				   "JOIN %s: %s", bad[i], rl_test_err());
		cr_assert_eq(rl_test_send_json(a, RELAY_MSG_MESSAGE, "{\"room\":%s,\"content\":1}", bad[i]),
			     0);
		cr_assert_not_null(rl_test_expect_error(a, "INVALID_ROOM", RL_TEST_REPLY_MS),
				   "MESSAGE %s: %s", bad[i], rl_test_err());
		cr_assert_eq(rl_test_send_json(a, RELAY_MSG_LEAVE_ROOM, "{\"room\":%s}", bad[i]), 0);
		cr_assert_not_null(rl_test_expect_error(a, "INVALID_ROOM", RL_TEST_REPLY_MS),
				   "LEAVE %s: %s", bad[i], rl_test_err());
	}
	/* Binary: invalid UTF-8, control characters, empty after trim, 65 bytes. */
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "\xc0\xaf");
	it_nonfatal(a, "INVALID_ROOM");
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "\xed\xa0\x80");
	it_nonfatal(a, "INVALID_ROOM");
	it_send(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "a\0b", 3);
	it_nonfatal(a, "INVALID_ROOM");
	it_send_str(a, RELAY_MSG_JOIN_ROOM, 0, "  \t ");
	it_nonfatal(a, "INVALID_ROOM");
	char big[66];
	memset(big, 'r', 65);
	big[65] = '\0';
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, big);
	it_nonfatal(a, "INVALID_ROOM");
	uint8_t env[] = {3, 'a', 0x01, 'b', 'd'};
	it_send(a, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, env, sizeof(env));
	it_nonfatal(a, "INVALID_ROOM");
	/* The connection still works for a good name. */
	it_join(a, "good", 1);
	rl_test_close(a);
	it_stop(&s);
}

IT_TEST(message, too_many_rooms_is_nonfatal)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--max-rooms-per-conn", "3");
	struct rl_test_client *a = it_client(&s, NULL);
	it_join(a, "r1", 1);
	it_join(a, "r2", 1);
	it_join(a, "r3", 1);
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"r4\"}");
	it_nonfatal_room(a, "TOO_MANY_ROOMS", "r4");
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "r5");
	it_nonfatal_room(a, "TOO_MANY_ROOMS", "r5");
	/* Re-joining a room one is in is not over the limit. */
	it_join(a, "r2", 1);
	/* The refused room was not created: another client starts it at 1. */
	struct rl_test_client *b = it_client(&s, NULL);
	it_join(b, "r4", 1);
	it_leave(a, "r1");
	it_join(a, "r4", 2);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(message, bad_userid_is_invalid_payload_and_not_acked)
{
	static const char *const bad[] = {
		"{\"userId\":\"\"}",       "{\"userId\":5}",          "{\"userId\":null}",
		"{\"userId\":[\"a\"]}",    "{\"userId\":\"\\ud800\"}", "{\"userId\":\"a\\u0001\"}",
		"{\"userId\":\"a\\n\"}",
	};
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, "{\"userId\":\"first\"}");
	struct rl_test_client *b = it_client(&s, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		it_send_str(a, RELAY_MSG_HELLO, RELAY_FLAG_JSON, bad[i]);
		/* it_nonfatal: ERROR, then the HEARTBEAT echo comes next, so no ack
		 * was sent in between. */
		it_nonfatal(a, "INVALID_PAYLOAD");
	}
	char id129[160], req[200];
	memset(id129, 'u', 129);
	id129[129] = '\0';
	snprintf(req, sizeof(req), "{\"userId\":\"%s\"}", id129);
	it_send_str(a, RELAY_MSG_HELLO, RELAY_FLAG_JSON, req);
	it_nonfatal(a, "INVALID_PAYLOAD");
	/* Reading: a refused HELLO has no effect at all, so userId is still "first". */
	it_join(a, "u", 1);
	it_join(b, "u", 2);
	it_presence(a, 1);
	int64_t t0 = rl_test_wall_ms();
	send_msg(a, "u", "0");
	expect_delivery(b, "u", a, "first", "0", t0);
	/* 128 bytes is fine. */
	id129[128] = '\0';
	snprintf(req, sizeof(req), "{\"userId\":\"%s\"}", id129);
	cr_assert_not_null(rl_test_hello(a, req, RL_TEST_REPLY_MS), "%s", rl_test_err());
	send_msg(a, "u", "1");
	expect_delivery(b, "u", a, id129, "1", t0);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

/* The server never sends a frame longer than max_frame: a MESSAGE whose
 * broadcast form would exceed it gets non-fatal INVALID_PAYLOAD and is not
 * delivered, though the request itself fit. */
/* The server never sends a frame longer than max_frame (protocol-v1.md 2a),
 * ERRORs included: at the smallest max_frame, a NOT_IN_ROOM for a 64-byte
 * name of '"' (128 bytes escaped, twice: message and room) would be 300
 * bytes; it goes without "room" and with the generic message. */
IT_TEST(message, an_error_that_would_exceed_max_frame_goes_without_its_room)
{
	struct rl_test_server s;
	char json[160], room[RELAY_ROOM_MAX_BYTES * 2 + 1];
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--max-frame-bytes", "256");
	for (int i = 0; i < RELAY_ROOM_MAX_BYTES; i++)
		memcpy(room + 2 * i, "\\\"", 2);
	room[sizeof(room) - 1] = '\0';
	snprintf(json, sizeof(json), "{\"room\":\"%s\",\"content\":1}", room);
	struct rl_test_client *a = it_client(&s, NULL);
	it_send_str(a, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, json);
	const struct rl_test_frame *f = it_expect(a, RELAY_MSG_ERROR, RELAY_FLAG_JSON);
	cr_assert_leq(f->len + 3, 256, "a %u-byte ERROR for a max_frame of 256", f->len + 3);
	cr_assert_str_eq((const char *)f->payload,
			 "{\"code\":\"NOT_IN_ROOM\",\"message\":\"not a member of that room\","
			 "\"fatal\":false}");
	/* A short name still gets its room. */
	it_send_str(a, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, "{\"room\":\"r\",\"content\":1}");
	it_nonfatal_room(a, "NOT_IN_ROOM", "r");
	rl_test_close(a);
	it_stop(&s);
}

IT_TEST(message, broadcast_over_max_frame_is_invalid_payload)
{
	enum { MAX = 4096 };
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "2", "--max-frame-bytes", "4096");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, NULL);
	it_join(a, "r", 1);
	it_join(b, "r", 2);
	it_presence(a, 1);
	/* Request frame length exactly MAX: 3 + payload. */
	static const char head[] = "{\"room\":\"r\",\"content\":\"", tail[] = "\"}";
	size_t plen = MAX - 3, fill = plen - (sizeof(head) - 1) - (sizeof(tail) - 1);
	char *p = malloc(plen + 1);
	cr_assert_not_null(p);
	memcpy(p, head, sizeof(head) - 1);
	memset(p + sizeof(head) - 1, 'x', fill);
	memcpy(p + sizeof(head) - 1 + fill, tail, sizeof(tail) - 1);
	it_send(a, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, p, plen);
	it_nonfatal(a, "INVALID_PAYLOAD");
	it_silent(b);
	/* The same in binary: the delivery adds u8 F + the connection id. */
	uint8_t *bp = malloc(MAX);
	cr_assert_not_null(bp);
	bp[0] = 1;
	bp[1] = 'r';
	memset(bp + 2, 0xab, MAX - 3 - 2);
	it_send(a, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, bp, MAX - 3);
	it_nonfatal(a, "INVALID_PAYLOAD");
	it_silent(b);
	/* A smaller one goes through. */
	it_send(a, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, bp, MAX - 3 - 300);
	it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY);
	free(p);
	free(bp);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}
