/* test_errors.c -- every fatal code of protocol-v1.md provokes exactly that
 * ERROR followed by close; the order of checks for frames that break several
 * rules; the JSON validity rules (UTF-8, BOM, depth) on the live server.
 * Threading: Criterion test bodies, one relayd per test. */
#include "itest.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

/* Writes a 7-byte header with an arbitrary length field. */
static void put_hdr(uint8_t *b, uint32_t length, uint8_t version, uint8_t type, uint8_t flags)
{
	b[0] = (uint8_t)(length >> 24);
	b[1] = (uint8_t)(length >> 16);
	b[2] = (uint8_t)(length >> 8);
	b[3] = (uint8_t)length;
	b[4] = version;
	b[5] = type;
	b[6] = flags;
}

/* Fresh connection (after a HELLO ack, so it is registered and OPEN), sends
 * <n> raw bytes, expects fatal <code> then close. */
static void fatal_case(const struct rl_test_server *s, const void *p, size_t n, const char *code,
		       const char *what)
{
	struct rl_test_client *c = it_client(s, NULL);
	it_raw(c, p, n);
	cr_assert_eq(rl_test_expect_fatal(c, code, RL_TEST_REPLY_MS), 0, "%s: %s", what,
		     rl_test_err());
	rl_test_close(c);
}

static void fatal_frame(const struct rl_test_server *s, uint8_t version, uint8_t type,
			uint8_t flags, const char *payload, const char *code, const char *what)
{
	size_t n = payload != NULL ? strlen(payload) : 0;
	uint8_t *b = malloc(n + 7);
	cr_assert_not_null(b);
	put_hdr(b, (uint32_t)(n + 3), version, type, flags);
	if (n > 0)
		memcpy(b + 7, payload, n);
	fatal_case(s, b, n + 7, code, what);
	free(b);
}

IT_TEST(errors, length_below_three_is_invalid_frame_from_the_length_bytes_alone)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	uint8_t b[8];
	for (uint32_t len = 0; len < 3; len++) {
		/* Decided from the 4 length bytes alone: send nothing more. */
		put_hdr(b, len, 1, RELAY_MSG_HEARTBEAT, 0);
		fatal_case(&s, b, 4, "INVALID_FRAME", "length < 3, 4 bytes sent");
	}
	/* Even on a connection that never said HELLO. */
	struct rl_test_client *c = it_connect(&s);
	put_hdr(b, 2, 1, RELAY_MSG_HELLO, 0);
	it_raw(c, b, 6);
	it_fatal(c, "INVALID_FRAME");
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(errors, reserved_flag_bits_or_json_with_binary_are_invalid_frame)
{
	static const uint8_t flags[] = {0x03, 0x04, 0x08, 0x10, 0x80, 0xfc, 0x05, 0x06};
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	for (size_t i = 0; i < sizeof(flags); i++) {
		char what[64];
		snprintf(what, sizeof(what), "flags 0x%02x", flags[i]);
		fatal_frame(&s, 1, RELAY_MSG_HEARTBEAT, flags[i], "x", "INVALID_FRAME", what);
	}
	/* Empty payload with a bad flag is still a bad flag. */
	fatal_frame(&s, 1, RELAY_MSG_HEARTBEAT, 0x03, NULL, "INVALID_FRAME", "flags 0x03, empty");
	it_stop(&s);
}

IT_TEST(errors, frame_too_large_from_length_bytes_alone)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	uint8_t b[7];
	/* Default max_frame 1 MiB: length 1048577 is refused after 4 bytes. */
	put_hdr(b, 1048577, 1, RELAY_MSG_HEARTBEAT, 0);
	fatal_case(&s, b, 4, "FRAME_TOO_LARGE", "length 1048577, 4 bytes sent");
	put_hdr(b, 0xffffffffu, 1, RELAY_MSG_HEARTBEAT, 0);
	fatal_case(&s, b, 4, "FRAME_TOO_LARGE", "length 2^32-1, 4 bytes sent");
	/* Exactly max_frame is fine: a 1 MiB HEARTBEAT is echoed. */
	struct rl_test_client *c = it_client(&s, NULL);
	size_t n = 1048576 - 3;
	uint8_t *p = malloc(n);
	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7);
	it_send(c, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, p, n);
	it_expect_bin(c, RELAY_MSG_HEARTBEAT, p, n);
	free(p);
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(errors, frame_too_large_with_max_frame_option)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--max-frame-bytes", "1000");
	uint8_t b[7];
	put_hdr(b, 1001, 1, RELAY_MSG_HEARTBEAT, 0);
	fatal_case(&s, b, 4, "FRAME_TOO_LARGE", "length 1001 > 1000");
	struct rl_test_client *c = it_client(&s, NULL);
	char p[997];
	memset(p, 'h', sizeof(p));
	it_send(c, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, p, sizeof(p));
	it_expect_bin(c, RELAY_MSG_HEARTBEAT, p, sizeof(p));
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(errors, any_version_but_1_is_unsupported_version)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	fatal_frame(&s, 2, RELAY_MSG_HEARTBEAT, 0, NULL, "UNSUPPORTED_VERSION", "version 2");
	fatal_frame(&s, 0, RELAY_MSG_HELLO, RELAY_FLAG_JSON, "{}", "UNSUPPORTED_VERSION", "version 0");
	fatal_frame(&s, 0xff, RELAY_MSG_HELLO, 0, NULL, "UNSUPPORTED_VERSION", "version 255");
	it_stop(&s);
}

IT_TEST(errors, types_0_and_above_6_are_unknown_message_type)
{
	static const uint8_t types[] = {0x00, 0x07, 0x08, 0x7f, 0xff};
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	for (size_t i = 0; i < sizeof(types); i++) {
		char what[64];
		snprintf(what, sizeof(what), "type 0x%02x", types[i]);
		fatal_frame(&s, 1, types[i], 0, NULL, "UNKNOWN_MESSAGE_TYPE", what);
	}
	it_stop(&s);
}

/* Header checks run as soon as the 7 header bytes are in: the payload of a
 * long frame never needs to arrive. */
IT_TEST(errors, header_checks_need_only_seven_bytes)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	uint8_t b[7];
	put_hdr(b, 1000, 2, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
	fatal_case(&s, b, 7, "UNSUPPORTED_VERSION", "7 of 1004 bytes, version 2");
	put_hdr(b, 1000, 1, 0x09, RELAY_FLAG_JSON);
	fatal_case(&s, b, 7, "UNKNOWN_MESSAGE_TYPE", "7 of 1004 bytes, type 9");
	put_hdr(b, 1000, 1, RELAY_MSG_MESSAGE, 0x03);
	fatal_case(&s, b, 7, "INVALID_FRAME", "7 of 1004 bytes, flags 3");
	it_stop(&s);
}

/* A frame that breaks several rules gets the first code in the spec's order:
 * length<3, length>max, version, type, flags, JSON validity, shape. */
IT_TEST(errors, check_order_for_frames_breaking_several_rules)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	uint8_t b[16];
	put_hdr(b, 2, 9, 0x42, 0xff);
	fatal_case(&s, b, 7, "INVALID_FRAME", "length 2 + bad version/type/flags");
	put_hdr(b, 1048577, 9, 0x42, 0xff);
	fatal_case(&s, b, 7, "FRAME_TOO_LARGE", "too large + bad version/type/flags");
	fatal_frame(&s, 9, 0x42, 0xff, "{", "UNSUPPORTED_VERSION", "version + type + flags + JSON");
	fatal_frame(&s, 1, 0x42, 0x03, "{", "UNKNOWN_MESSAGE_TYPE", "type + flags + JSON");
	fatal_frame(&s, 1, RELAY_MSG_JOIN_ROOM, 0x05, "{", "INVALID_FRAME",
		    "flags (JSON + reserved) + bad JSON");
	/* Invalid JSON that would also have the wrong shape: PARSE_ERROR. */
	fatal_frame(&s, 1, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, "[1,", "PARSE_ERROR",
		    "bad JSON + wrong shape");
	fatal_frame(&s, 1, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"\\u0001\"", "PARSE_ERROR",
		    "bad JSON + bad room");
	it_stop(&s);
}

IT_TEST(errors, malformed_json_or_utf8_in_any_json_frame_is_parse_error)
{
	static const struct {
		uint8_t type;
		const char *payload;
		const char *what;
	} cases[] = {
		{RELAY_MSG_HELLO, "", "empty JSON payload"},
		{RELAY_MSG_HELLO, "{\"userId\":", "truncated"},
		{RELAY_MSG_JOIN_ROOM, "{'room':'x'}", "single quotes"},
		{RELAY_MSG_JOIN_ROOM, "{\"room\":\"x\",}", "trailing comma"},
		{RELAY_MSG_MESSAGE, "{\"room\":\"x\",\"content\":01}", "leading zero"},
		{RELAY_MSG_MESSAGE, "{\"room\":\"x\",\"content\":NaN}", "NaN"},
		{RELAY_MSG_HEARTBEAT, "{} {}", "two values"},
		{RELAY_MSG_HEARTBEAT, "\"a\tb\"", "raw control character in a string"},
		{RELAY_MSG_HEARTBEAT, "\"\\x\"", "bad escape"},
		{RELAY_MSG_HEARTBEAT, "\"\\u12\"", "short \\u escape"},
		{RELAY_MSG_JOIN_ROOM, "\xef\xbb\xbf{\"room\":\"x\"}", "byte-order mark"},
		{RELAY_MSG_JOIN_ROOM, "{\"room\":\"\xc0\xaf\"}", "overlong UTF-8"},
		{RELAY_MSG_JOIN_ROOM, "{\"room\":\"\xed\xa0\x80\"}", "UTF-8-encoded surrogate"},
		{RELAY_MSG_JOIN_ROOM, "{\"room\":\"\xf4\x90\x80\x80\"}", "above U+10FFFF"},
		{RELAY_MSG_JOIN_ROOM, "{\"room\":\"\xe2\x82\"}", "truncated sequence"},
		{RELAY_MSG_JOIN_ROOM, "{\"room\":\"\x80\"}", "stray continuation byte"},
		{RELAY_MSG_MESSAGE, "{\"room\":\"x\",\"content\":\"\xff\"}", "0xff in content"},
		{RELAY_MSG_HELLO, "\xff\xfe{", "UTF-16 input (BOM, first unit)"},
		{RELAY_MSG_ERROR, "{\"code\":", "client ERROR frames are checked too"},
		{RELAY_MSG_LEAVE_ROOM, "{\"room\":\"x\"", "LEAVE_ROOM, unterminated object"},
		{RELAY_MSG_HEARTBEAT, "[1,2", "HEARTBEAT, unterminated array"},
	};
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		fatal_frame(&s, 1, cases[i].type, RELAY_FLAG_JSON, cases[i].payload, "PARSE_ERROR",
			    cases[i].what);
	it_stop(&s);
}

static char *nested(int depth, const char *open, const char *inner, const char *close)
{
	size_t lo = strlen(open), lc = strlen(close), li = strlen(inner);
	char *p = malloc((size_t)depth * (lo + lc) + li + 1), *q = p;
	cr_assert_not_null(p);
	for (int i = 0; i < depth; i++, q += lo)
		memcpy(q, open, lo);
	memcpy(q, inner, li);
	q += li;
	for (int i = 0; i < depth; i++, q += lc)
		memcpy(q, close, lc);
	*q = '\0';
	return p;
}

IT_TEST(errors, json_depth_64_passes_65_fails)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *c = it_client(&s, NULL);
	/* HEARTBEAT with JSON flag: any valid JSON is echoed as is. */
	char *ok = nested(64, "[", "", "]");
	it_send_str(c, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON, ok);
	const struct rl_test_frame *f = it_expect(c, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON);
	cr_assert(f->len == strlen(ok) && memcmp(f->payload, ok, f->len) == 0);
	/* A MESSAGE's outer object counts: {"room":..,"content": + 63 arrays = 64. */
	it_join(c, "d", 1);
	char *inner = nested(63, "[", "", "]");
	cr_assert_eq(rl_test_send_json(c, RELAY_MSG_MESSAGE, "{\"room\":\"d\",\"content\":%s}", inner), 0);
	it_ping(c); /* no error: depth 64 accepted (no one else in the room) */
	free(inner);
	free(ok);
	rl_test_close(c);

	char *bad = nested(65, "[", "", "]");
	fatal_frame(&s, 1, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON, bad, "PARSE_ERROR", "depth 65 arrays");
	free(bad);
	bad = nested(65, "{\"a\":", "1", "}");
	fatal_frame(&s, 1, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON, bad, "PARSE_ERROR", "depth 65 objects");
	free(bad);
	inner = nested(64, "[", "", "]");
	char *msg = malloc(strlen(inner) + 64);
	cr_assert_not_null(msg);
	sprintf(msg, "{\"room\":\"d\",\"content\":%s}", inner);
	fatal_frame(&s, 1, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, msg, "PARSE_ERROR", "MESSAGE depth 65");
	free(msg);
	free(inner);
	/* Very deep input is rejected without unbounded recursion (the server
	 * must survive it: the stop below asserts exit status 0). */
	bad = nested(100000, "[", "", "]");
	fatal_frame(&s, 1, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON, bad, "PARSE_ERROR", "depth 100000");
	free(bad);
	it_stop(&s);
}

IT_TEST(errors, client_error_frames_are_ignored)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *c = it_client(&s, NULL);
	it_send_str(c, RELAY_MSG_ERROR, RELAY_FLAG_JSON, "{\"code\":\"NOT_IN_ROOM\",\"message\":\"x\",\"fatal\":true}");
	it_send_str(c, RELAY_MSG_ERROR, RELAY_FLAG_BINARY, "whatever");
	it_send(c, RELAY_MSG_ERROR, 0, NULL, 0);
	it_silent(c);
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(errors, heartbeat_echoes_flags_and_payload)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *c = it_connect(&s); /* HELLO is optional */
	it_send(c, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
	const struct rl_test_frame *f = it_expect(c, RELAY_MSG_HEARTBEAT, 0);
	cr_assert_eq(f->len, 0);
	it_send_str(c, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON, " {\"t\" : 1} ");
	f = it_expect(c, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON);
	cr_assert(f->len == 11 && memcmp(f->payload, " {\"t\" : 1} ", 11) == 0, "%s",
		  rl_test_frame_str(f));
	it_send(c, RELAY_MSG_HEARTBEAT, 0, "\x00\x01", 2); /* flags 0, non-empty */
	f = it_expect(c, RELAY_MSG_HEARTBEAT, 0);
	cr_assert(f->len == 2 && memcmp(f->payload, "\x00\x01", 2) == 0);
	it_ping(c);
	rl_test_close(c);
	it_stop(&s);
}

/* Reading: max_connections counts connections across all workers. */
IT_TEST(errors, connections_beyond_max_connections_get_server_full_at_accept)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "2", "--max-connections", "3");
	struct rl_test_client *c[3];
	for (int i = 0; i < 3; i++)
		c[i] = it_client(&s, NULL);
	struct rl_test_client *x = it_connect(&s);
	it_fatal(x, "SERVER_FULL");
	rl_test_close(x);
	/* The others are unaffected. */
	for (int i = 0; i < 3; i++)
		it_ping(c[i]);
	/* Once one leaves there is room again. The server learns of the close
	 * asynchronously, so retry (bounded) until a connection is accepted. */
	rl_test_close(c[0]);
	int64_t deadline = rl_test_now_ms() + RL_TEST_REPLY_MS;
	bool ok = false;
	while (!ok && rl_test_now_ms() < deadline) {
		x = it_connect(&s);
		ok = rl_test_hello(x, NULL, RL_TEST_REPLY_MS) != NULL;
		if (!ok)
			cr_assert(strstr(rl_test_err(), "SERVER_FULL") != NULL, "%s", rl_test_err());
		if (ok)
			c[0] = x;
		else
			rl_test_close(x);
	}
	cr_assert(ok, "no room after a client left");
	for (int i = 0; i < 3; i++)
		rl_test_close(c[i]);
	it_stop(&s);
}

IT_TEST(errors, a_silent_connection_gets_idle_timeout_while_an_active_one_stays)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--idle-timeout", "0.6", "--frame-timeout", "0");
	struct rl_test_client *idle = it_connect(&s);
	struct rl_test_client *busy = it_client(&s, NULL);
	int64_t t0 = rl_test_now_ms();
	/* busy sends a HEARTBEAT every 200 ms for ~1.4 s and stays connected. */
	while (rl_test_now_ms() - t0 < 1400) {
		it_ping(busy);
		struct pollfd p = {.fd = rl_test_fd(busy), .events = POLLIN};
		cr_assert_eq(poll(&p, 1, 200), 0, "busy got something unexpected");
	}
	/* idle got IDLE_TIMEOUT in the meantime: at 0.6 s, give or take timer
	 * granularity (not before 0.3 s) and not after ~1.6 s. */
	it_fatal(idle, "IDLE_TIMEOUT");
	int64_t t1 = rl_test_now_ms() - t0;
	cr_assert_lt(t1, 3000, "IDLE_TIMEOUT came only after %lld ms", (long long)t1);
	it_ping(busy);
	/* A connection that said HELLO and then went quiet times out too. */
	struct rl_test_client *quiet = it_client(&s, NULL);
	int64_t t2 = rl_test_now_ms();
	cr_assert_not_null(rl_test_expect_error(quiet, "IDLE_TIMEOUT", RL_TEST_REPLY_MS), "%s",
			   rl_test_err());
	int64_t waited = rl_test_now_ms() - t2;
	cr_assert(waited >= 300 && waited <= 2000, "IDLE_TIMEOUT after %lld ms, want ~600",
		  (long long)waited);
	cr_assert_eq(rl_test_expect_closed(quiet, false, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
	rl_test_close(idle);
	rl_test_close(busy);
	rl_test_close(quiet);
	it_stop(&s);
}

IT_TEST(errors, frame_timeout_for_a_trickled_frame)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--frame-timeout", "0.6", "--idle-timeout", "0");
	/* A partial frame left hanging. */
	struct rl_test_client *c = it_client(&s, NULL);
	uint8_t b[7 + 10];
	put_hdr(b, 13, 1, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY);
	memset(b + 7, 'z', 10);
	int64_t t0 = rl_test_now_ms();
	it_raw(c, b, 9);
	cr_assert_not_null(rl_test_expect_error(c, "FRAME_TIMEOUT", RL_TEST_REPLY_MS), "%s",
			   rl_test_err());
	int64_t waited = rl_test_now_ms() - t0;
	cr_assert(waited >= 300 && waited <= 2500, "FRAME_TIMEOUT after %lld ms, want ~600",
		  (long long)waited);
	cr_assert_eq(rl_test_expect_closed(c, false, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
	rl_test_close(c);

	/* A client trickling one byte every 100 ms is active all along, but its
	 * frame never completes in time. */
	c = it_client(&s, NULL);
	uint8_t big[7 + 200];
	put_hdr(big, 203, 1, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY);
	memset(big + 7, 't', 200);
	t0 = rl_test_now_ms();
	size_t sent = 0;
	for (; sent < sizeof(big) && rl_test_now_ms() - t0 < 4000; sent++) {
		struct pollfd p = {.fd = rl_test_fd(c), .events = POLLIN};
		if (poll(&p, 1, 100) != 0)
			break; /* the server spoke: stop trickling */
		if (rl_test_send_raw(c, big + sent, 1, RL_TEST_REPLY_MS) != 0)
			break;
	}
	cr_assert_lt(sent, sizeof(big), "the whole trickled frame was accepted");
	it_fatal(c, "FRAME_TIMEOUT");
	waited = rl_test_now_ms() - t0;
	cr_assert_lt(waited, 3000, "FRAME_TIMEOUT after %lld ms", (long long)waited);
	rl_test_close(c);
	it_stop(&s);
}

/* After a fatal ERROR the server stops reading: frames behind the bad one in
 * the same write get no reply; replies queued before it are still flushed. */
IT_TEST(errors, fatal_error_stops_reading_and_flushes_earlier_replies)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *c = it_client(&s, NULL);
	uint8_t buf[128];
	size_t n = 0;
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "before", 6);
	size_t bad = n;
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "bad", 3);
	buf[bad + 4] = 7; /* version 7 */
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "after", 5);
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "nope", 4);
	it_raw(c, buf, n);
	it_expect_bin(c, RELAY_MSG_HEARTBEAT, "before", 6);
	it_fatal(c, "UNSUPPORTED_VERSION");
	rl_test_close(c);
	/* The JOIN behind the bad frame was not processed: the room is new. */
	c = it_client(&s, NULL);
	it_join(c, "nope", 1);
	rl_test_close(c);
	it_stop(&s);
}

/* Any received byte counts as activity: a frame trickled slowly (frame
 * timeout off) keeps the connection from IDLE_TIMEOUT. */
IT_TEST(errors, any_received_byte_counts_as_activity)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--idle-timeout", "0.6", "--frame-timeout", "0");
	struct rl_test_client *c = it_client(&s, NULL);
	uint8_t b[7 + 5];
	put_hdr(b, 8, 1, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY);
	memcpy(b + 7, "slow!", 5);
	/* 12 bytes, one per 150 ms: 1.8 s in all, 3x the idle timeout. */
	for (size_t i = 0; i < sizeof(b); i++) {
		it_raw(c, b + i, 1);
		struct pollfd p = {.fd = rl_test_fd(c), .events = POLLIN};
		if (i + 1 < sizeof(b))
			cr_assert_eq(poll(&p, 1, 150), 0,
				     "the server spoke (or closed) while a frame was trickling");
	}
	it_expect_bin(c, RELAY_MSG_HEARTBEAT, "slow!", 5);
	rl_test_close(c);
	it_stop(&s);
}

/* Debug logging never shows a credential or raw control bytes from a peer:
 * a HELLO carrying "token" followed by invalid JSON (with terminal escape
 * sequences) is logged escaped and with the token redacted. */
IT_TEST(errors, debug_log_redacts_tokens_and_escapes_control_bytes)
{
	IT_NEED_PROCESS();
	struct rl_test_server s;
	IT_START(&s, "--workers", "1", "--debug");
	struct rl_test_client *c = it_connect(&s);
	static const char hello[] =
	    "{\"userId\":\"ann\",\"token\":\"secret123-eyJhbGciOi\","
	    "\"echo\":true}\x01\x1b]0;pwned\x07\x1b[2J\r\nfake log line\x7f";
	it_send(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON, hello, sizeof(hello) - 1);
	it_fatal(c, "PARSE_ERROR");
	rl_test_close(c);
	int st = rl_test_server_stop(&s, 0);
	cr_assert_eq(st, 0, "relayd exit status %d", st);

	FILE *f = fopen(s.log_path, "rb");
	cr_assert_not_null(f, "%s", s.log_path);
	static char log[1 << 20];
	size_t n = fread(log, 1, sizeof(log) - 1, f);
	fclose(f);
	log[n] = '\0';
	/* (The log itself is not printed on failure: it may hold raw escapes.) */
	cr_assert_not_null(strstr(log, "invalid JSON"), "no payload line in the log");
	cr_assert_not_null(strstr(log, "\"token\":[redacted]"), "the token is not redacted");
	cr_assert_not_null(strstr(log, "\\x1b]0;pwned\\x07"), "control bytes not escaped");
	cr_assert_null(strstr(log, "secret123"), "the token is in the log");
	for (size_t i = 0; i < n; i++)
		cr_assert((log[i] >= 0x20 && log[i] < 0x7f) || log[i] == '\n',
			  "raw byte 0x%02x at %zu of the log", (unsigned char)log[i], i);
	cr_assert_null(strstr(log, "\nfake log line"), "a forged log line");
	rl_test_server_free(&s);
}
