/* test_session.c -- HELLO, JOIN_ROOM, LEAVE_ROOM acks and presence events
 * against a live relayd, byte for byte against protocol-v1.md section 2
 * (connection ids and timestamps masked, then checked separately).
 * Threading: Criterion test bodies, one relayd per test. */
#include "itest.h"

#include <stdio.h>

#define HELLO_ACK_FMT                                                                          \
	"{\"status\":\"connected\",\"connectionId\":*,\"serverVersion\":\"" RELAY_VERSION_STRING "\","             \
	"\"protocolVersion\":1,\"maxFrameBytes\":%u,\"heartbeatMs\":30000}"

static void expect_presence_id(struct rl_test_client *c, const char *type, const char *room,
			       const char *id, const char *user)
{
	char want[512];
	if (user != NULL)
		snprintf(want, sizeof(want),
			 "{\"type\":\"%s\",\"room\":\"%s\",\"connectionId\":\"%s\",\"userId\":\"%s\"}",
			 type, room, id, user);
	else
		snprintf(want, sizeof(want), "{\"type\":\"%s\",\"room\":\"%s\",\"connectionId\":\"%s\"}",
			 type, room, id);
	it_expect_exact(c, RELAY_MSG_MESSAGE, want);
}

static void expect_presence(struct rl_test_client *c, const char *type, const char *room,
			    const struct rl_test_client *who, const char *user)
{
	expect_presence_id(c, type, room, rl_test_conn_id(who), user);
}

IT_TEST(session, hello_ack_is_byte_exact)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *c = it_connect(&s);
	it_send_str(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON, "{\"userId\":\"alice\",\"clientVersion\":\"1.0.0\"}");
	char want[512];
	snprintf(want, sizeof(want), HELLO_ACK_FMT, 1048576u);
	const struct rl_test_frame *f = it_expect_json(c, RELAY_MSG_HELLO, want);
	char id[160];
	cr_assert_gt(rl_test_json_str(f, "connectionId", id, sizeof(id)), 0,
		     "connectionId must be a non-empty string: %s", rl_test_frame_str(f));
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(session, hello_payload_may_be_empty_and_unknown_fields_are_ignored)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	char want[512];
	snprintf(want, sizeof(want), HELLO_ACK_FMT, 1048576u);
	struct rl_test_client *c = it_connect(&s);
	it_send(c, RELAY_MSG_HELLO, 0, NULL, 0); /* empty, flags 0 */
	it_expect_json(c, RELAY_MSG_HELLO, want);
	it_send_str(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON, "{}");
	it_expect_json(c, RELAY_MSG_HELLO, want);
	/* Unknown fields are ignored (forward compatibility). */
	it_send_str(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON, "{\"future\":[1,{\"x\":null}],\"userId\":\"u\"}");
	it_expect_json(c, RELAY_MSG_HELLO, want);
	rl_test_close(c);
	it_stop(&s);
}

/* Reading: maxFrameBytes reports the server's --max-frame-bytes. */
IT_TEST(session, hello_ack_reports_max_frame)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--max-frame-bytes", "4096");
	char want[512];
	snprintf(want, sizeof(want), HELLO_ACK_FMT, 4096u);
	struct rl_test_client *c = it_connect(&s);
	it_send(c, RELAY_MSG_HELLO, 0, NULL, 0);
	it_expect_json(c, RELAY_MSG_HELLO, want);
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(session, connection_ids_unique_across_workers)
{
	enum { N = 24 };
	struct rl_test_server s;
	IT_START(&s, "--workers", "2");
	struct rl_test_client *c[N];
	for (int i = 0; i < N; i++)
		c[i] = it_client(&s, NULL);
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			cr_assert_str_neq(rl_test_conn_id(c[i]), rl_test_conn_id(c[j]),
					  "clients %d and %d share id %s", i, j, rl_test_conn_id(c[i]));
	/* Re-HELLO keeps the connection's id. */
	char id[160];
	snprintf(id, sizeof(id), "%s", rl_test_conn_id(c[0]));
	cr_assert_not_null(rl_test_hello(c[0], "{\"userId\":\"again\"}", RL_TEST_REPLY_MS), "%s",
			   rl_test_err());
	cr_assert_str_eq(rl_test_conn_id(c[0]), id);
	for (int i = 0; i < N; i++)
		rl_test_close(c[i]);
	it_stop(&s);
}

IT_TEST(session, join_ack_and_presence_byte_exact)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "2");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, "{\"userId\":\"bob\"}");
	struct rl_test_client *c = it_client(&s, "{}");

	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"physics\"}");
	it_expect_exact(a, RELAY_MSG_JOIN_ROOM, "{\"status\":\"joined\",\"room\":\"physics\",\"members\":1}");
	it_send_str(b, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"physics\"}");
	it_expect_exact(b, RELAY_MSG_JOIN_ROOM, "{\"status\":\"joined\",\"room\":\"physics\",\"members\":2}");
	/* userId follows connectionId when the joiner gave one (reading of
	 * "plus \"userId\"": appended after the example's last key). */
	expect_presence(a, "userJoined", "physics", b, "bob");
	it_send_str(c, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"physics\"}");
	it_expect_exact(c, RELAY_MSG_JOIN_ROOM, "{\"status\":\"joined\",\"room\":\"physics\",\"members\":3}");
	expect_presence(a, "userJoined", "physics", c, NULL);
	expect_presence(b, "userJoined", "physics", c, NULL);
	/* The joiner gets no presence event about itself. */
	it_silent(c);

	it_send_str(b, RELAY_MSG_LEAVE_ROOM, RELAY_FLAG_JSON, "{\"room\":\"physics\"}");
	it_expect_exact(b, RELAY_MSG_LEAVE_ROOM, "{\"status\":\"left\",\"room\":\"physics\"}");
	expect_presence(a, "userLeft", "physics", b, "bob");
	expect_presence(c, "userLeft", "physics", b, "bob");
	it_silent(b);

	/* Disconnecting leaves every room with the same event. */
	char cid[160];
	snprintf(cid, sizeof(cid), "%s", rl_test_conn_id(c));
	rl_test_close(c);
	expect_presence_id(a, "userLeft", "physics", cid, NULL);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(session, binary_join_leave_acked_in_binary)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, NULL);
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "physics");
	it_expect_bin(a, RELAY_MSG_JOIN_ROOM, "physics", 7);
	/* A flags-0 JOIN is binary and is acked with the BINARY flag. */
	it_send_str(b, RELAY_MSG_JOIN_ROOM, 0, "physics");
	it_expect_bin(b, RELAY_MSG_JOIN_ROOM, "physics", 7);
	/* Presence events are always JSON, whatever the joiner used. */
	expect_presence(a, "userJoined", "physics", b, NULL);
	/* Names are trimmed in binary form too, and the ack carries the trimmed name. */
	it_send_str(b, RELAY_MSG_LEAVE_ROOM, 0, " \tphysics\r\n");
	it_expect_bin(b, RELAY_MSG_LEAVE_ROOM, "physics", 7);
	expect_presence(a, "userLeft", "physics", b, NULL);
	it_send_str(a, RELAY_MSG_LEAVE_ROOM, RELAY_FLAG_BINARY, "physics");
	it_expect_bin(a, RELAY_MSG_LEAVE_ROOM, "physics", 7);
	/* Raw UTF-8 names round-trip as raw bytes. */
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "caf\xc3\xa9 \xf0\x9f\x98\x80");
	it_expect_bin(a, RELAY_MSG_JOIN_ROOM, "caf\xc3\xa9 \xf0\x9f\x98\x80", 10);
	it_silent(b);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(session, json_room_names_are_trimmed_and_acked_as_raw_utf8)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, NULL);
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\" \\t\\n\\u000b\\f\\rphysics \\r\\n\"}");
	it_expect_exact(a, RELAY_MSG_JOIN_ROOM, "{\"status\":\"joined\",\"room\":\"physics\",\"members\":1}");
	/* Escaped non-ASCII comes back as raw UTF-8 (the name, not its spelling). */
	it_send_str(b, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"caf\\u00e9\"}");
	it_expect_exact(b, RELAY_MSG_JOIN_ROOM, "{\"status\":\"joined\",\"room\":\"caf\xc3\xa9\",\"members\":1}");
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"caf\xc3\xa9\"}");
	it_expect_exact(a, RELAY_MSG_JOIN_ROOM, "{\"status\":\"joined\",\"room\":\"caf\xc3\xa9\",\"members\":2}");
	expect_presence(b, "userJoined", "caf\xc3\xa9", a, NULL);
	/* 64 bytes after trimming is the limit. */
	char room[65], req[128], ack[160];
	memset(room, 'r', 64);
	room[64] = '\0';
	snprintf(req, sizeof(req), "{\"room\":\"  %s  \"}", room);
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, req);
	snprintf(ack, sizeof(ack), "{\"status\":\"joined\",\"room\":\"%s\",\"members\":1}", room);
	it_expect_exact(a, RELAY_MSG_JOIN_ROOM, ack);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(session, rejoin_reacks_and_changes_nothing)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, NULL);
	it_join(a, "physics", 1);
	it_join(b, "physics", 2);
	expect_presence(a, "userJoined", "physics", b, NULL);
	/* Same room, JSON, binary and a trimmed spelling: each re-acks, count unchanged. */
	it_join(b, "physics", 2);
	it_send_str(b, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "physics");
	it_expect_bin(b, RELAY_MSG_JOIN_ROOM, "physics", 7);
	it_send_str(b, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\" physics\"}");
	it_expect_exact(b, RELAY_MSG_JOIN_ROOM, "{\"status\":\"joined\",\"room\":\"physics\",\"members\":2}");
	/* ...and no second presence event. */
	it_silent(a);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(session, leave_is_idempotent_and_empty_room_deleted)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "2");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, NULL);
	/* Leaving a room one is not in (that does not even exist) still acks. */
	it_send_str(a, RELAY_MSG_LEAVE_ROOM, RELAY_FLAG_JSON, "{\"room\":\"nowhere\"}");
	it_expect_exact(a, RELAY_MSG_LEAVE_ROOM, "{\"status\":\"left\",\"room\":\"nowhere\"}");
	it_join(a, "physics", 1);
	it_join(b, "physics", 2);
	expect_presence(a, "userJoined", "physics", b, NULL);
	it_leave(b, "physics");
	expect_presence(a, "userLeft", "physics", b, NULL);
	it_leave(b, "physics"); /* again: acks, no event */
	it_send_str(b, RELAY_MSG_LEAVE_ROOM, RELAY_FLAG_BINARY, "physics");
	it_expect_bin(b, RELAY_MSG_LEAVE_ROOM, "physics", 7);
	it_silent(a);
	/* Last member leaves: the room is deleted, a new join starts at 1. */
	it_leave(a, "physics");
	it_silent(b);
	it_join(b, "physics", 1);
	it_join(a, "physics", 2);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(session, rehello_replaces_userid_in_presence)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, "{\"userId\":\"bob\"}");
	it_join(a, "r1", 1);
	it_join(b, "r1", 2);
	expect_presence(a, "userJoined", "r1", b, "bob");
	/* A new HELLO replaces userId for what follows; nothing is re-sent. */
	cr_assert_not_null(rl_test_hello(b, "{\"userId\":\"robert\"}", RL_TEST_REPLY_MS), "%s",
			   rl_test_err());
	it_silent(a);
	it_join(a, "r2", 1);
	it_join(b, "r2", 2);
	expect_presence(a, "userJoined", "r2", b, "robert");
	it_leave(b, "r1");
	expect_presence(a, "userLeft", "r1", b, "robert");
	/* Reading of "a HELLO sent again replaces userId and echo": a HELLO
	 * without userId replaces it with none (as one without "echo" turns
	 * echo off), so later events carry no userId. */
	cr_assert_not_null(rl_test_hello(b, "{}", RL_TEST_REPLY_MS), "%s", rl_test_err());
	it_leave(b, "r2");
	expect_presence(a, "userLeft", "r2", b, NULL);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(session, no_presence_option_silences_events)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--no-presence");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, "{\"userId\":\"bob\"}");
	it_join(a, "physics", 1);
	it_join(b, "physics", 2);
	it_silent(a);
	it_leave(b, "physics");
	it_silent(a);
	it_join(b, "physics", 2);
	rl_test_close(b);
	it_silent(a);
	/* Acks are unchanged: only the events go. */
	it_join(a, "other", 1);
	rl_test_close(a);
	it_stop(&s);
}

IT_TEST(session, presence_crosses_workers)
{
	enum { N = 16 };
	struct rl_test_server s;
	IT_START(&s, "--workers", "4", "--debug");
	struct rl_test_client *c[N];
	for (int i = 0; i < N; i++)
		c[i] = it_client(&s, NULL);
	it_join(c[0], "x", 1);
	for (int i = 1; i < N; i++) {
		it_join(c[i], "x", i + 1);
		for (int j = 0; j < i; j++)
			expect_presence(c[j], "userJoined", "x", c[i], NULL);
	}
	for (int i = N - 1; i > 0; i--) {
		char id[160];
		snprintf(id, sizeof(id), "%s", rl_test_conn_id(c[i]));
		rl_test_close(c[i]);
		for (int j = 0; j < i; j++)
			expect_presence_id(c[j], "userLeft", "x", id, NULL);
	}
	it_silent(c[0]);
	rl_test_close(c[0]);
	it_stop(&s);
}

IT_TEST(session, disconnect_leaves_every_room_once)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "2");
	struct rl_test_client *a = it_client(&s, "{\"userId\":\"ann\"}");
	struct rl_test_client *b = it_client(&s, NULL);
	struct rl_test_client *c = it_client(&s, NULL);
	it_join(b, "r1", 1);
	it_join(c, "r2", 1);
	it_join(a, "r1", 2);
	it_join(a, "r2", 2);
	it_join(a, "r3", 1);
	expect_presence(b, "userJoined", "r1", a, "ann");
	expect_presence(c, "userJoined", "r2", a, "ann");
	char id[160];
	snprintf(id, sizeof(id), "%s", rl_test_conn_id(a));
	rl_test_close(a);
	expect_presence_id(b, "userLeft", "r1", id, "ann");
	expect_presence_id(c, "userLeft", "r2", id, "ann");
	it_silent(b);
	it_silent(c);
	/* The rooms count a's membership no more; r3 is gone (rejoin starts at 1). */
	it_leave(c, "r2");
	it_join(b, "r2", 1);
	it_join(b, "r3", 1);
	rl_test_close(b);
	rl_test_close(c);
	it_stop(&s);
}

/* Names are decoded from JSON, and written back as JSON strings: quotes and
 * backslashes escaped, "\/" decoded to "/", non-ASCII raw; keys are matched
 * after decoding their escapes; with duplicate keys the last one wins;
 * only ASCII whitespace is trimmed (U+00A0 stays). */
IT_TEST(session, json_room_names_and_keys_are_unescaped_and_the_last_duplicate_wins)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, NULL);
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"q\\\"b\\\\s\\/d\"}");
	it_expect_exact(a, RELAY_MSG_JOIN_ROOM,
			"{\"status\":\"joined\",\"room\":\"q\\\"b\\\\s/d\",\"members\":1}");
	/* The same room by its raw bytes in binary form. */
	it_send_str(b, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "q\"b\\s/d");
	it_expect_bin(b, RELAY_MSG_JOIN_ROOM, "q\"b\\s/d", 7);
	expect_presence(a, "userJoined", "q\\\"b\\\\s/d", b, NULL);
	/* An escaped key. */
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"ro\\u006fm\":\"esc\"}");
	it_expect_exact(a, RELAY_MSG_JOIN_ROOM, "{\"status\":\"joined\",\"room\":\"esc\",\"members\":1}");
	/* Duplicate keys: the last wins. */
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"first\",\"room\":\"last\"}");
	it_expect_exact(a, RELAY_MSG_JOIN_ROOM, "{\"status\":\"joined\",\"room\":\"last\",\"members\":1}");
	/* U+00A0 is not ASCII whitespace: kept. */
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\" \\u00a0x\\u00a0 \"}");
	it_expect_exact(a, RELAY_MSG_JOIN_ROOM,
			"{\"status\":\"joined\",\"room\":\"\xc2\xa0x\xc2\xa0\",\"members\":1}");
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

/* The server never sends a frame longer than max_frame (spec 2a), presence
 * events included. Reading: userId is optional in the event, so an event
 * that would not fit with it is sent without it; the rest (type, room,
 * connectionId) always fits within the smallest max_frame (256). */
IT_TEST(session, presence_within_max_frame_drops_userid_when_too_long)
{
	char room[65], user[129], hello[160];
	memset(room, 'p', 64);
	room[64] = '\0';
	memset(user, 'u', 128);
	user[128] = '\0';
	snprintf(hello, sizeof(hello), "{\"userId\":\"%s\"}", user);
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--max-frame-bytes", "256");
	struct rl_test_client *a = it_client(&s, NULL);
	rl_test_set_max_frame(a, 256);
	struct rl_test_client *b = it_client(&s, hello);
	struct rl_test_client *c = it_client(&s, "{\"userId\":\"bob\"}");
	it_join(a, room, 1);
	it_join(b, room, 2);
	const struct rl_test_frame *f = rl_test_recv(a, RL_TEST_REPLY_MS);
	cr_assert_not_null(f, "userJoined: %s", rl_test_err());
	cr_assert_leq(f->len + 3, 256u, "a %u-byte frame with --max-frame-bytes 256: %s",
		      f->len + 3, rl_test_frame_str(f));
	cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "%s", rl_test_frame_str(f));
	char want[512];
	snprintf(want, sizeof(want),
		 "{\"type\":\"userJoined\",\"room\":\"%s\",\"connectionId\":\"%s\"}", room,
		 rl_test_conn_id(b));
	cr_assert(f->len == strlen(want) && memcmp(f->payload, want, f->len) == 0, "got %s",
		  rl_test_frame_str(f));
	/* A userId that fits is still sent. */
	it_join(c, room, 3);
	expect_presence(a, "userJoined", room, c, "bob");
	expect_presence(b, "userJoined", room, c, "bob");
	it_leave(b, room);
	expect_presence(a, "userLeft", room, b, NULL);
	expect_presence(c, "userLeft", room, b, NULL);
	it_silent(a);
	rl_test_close(a);
	rl_test_close(b);
	rl_test_close(c);
	it_stop(&s);
}
