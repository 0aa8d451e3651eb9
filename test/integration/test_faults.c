/* test_faults.c -- faults one client can cause, end to end, each followed
 * by the same question: does a healthy client in the same room still send
 * and receive, in order (healthy.h)?
 *
 *   - a slow reader that recovers: DRAINING and back to OPEN, nothing lost;
 *   - half-close: shutdown(SHUT_WR) after complete frames: every reply is
 *     flushed, then the connection is closed;
 *   - endless junk: closed with a fatal ERROR within a bounded time, and
 *     never buffered without bound (relayd's RSS);
 *   - a 1 MiB room name, and 10,000 joins on one connection.
 *
 * Threading: Criterion test bodies; the junk and half-close tests use one
 * sender thread (harness.h allows one besides the owner). */
#include "healthy.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

/* ---- a slow reader that recovers ----------------------------------------------- */

enum { RECOVER_MSGS = 6000, RECOVER_BYTES = 1024 }; /* 6 MB: more than the kernel buffers take */

/* Binary MESSAGE <i> to <room>: 4 bytes of sequence number, 'r' padding. */
static void numbered(uint8_t *buf, size_t cap, size_t *off, const char *room, uint32_t i,
		     size_t data_len)
{
	uint8_t m[1 + 64 + RECOVER_BYTES];
	size_t rl = strlen(room);
	cr_assert(rl <= 64 && data_len >= 4 && data_len <= RECOVER_BYTES);
	m[0] = (uint8_t)rl;
	memcpy(m + 1, room, rl);
	memset(m + 1 + rl, 'r', data_len);
	m[1 + rl] = (uint8_t)(i >> 24);
	m[2 + rl] = (uint8_t)(i >> 16);
	m[3 + rl] = (uint8_t)(i >> 8);
	m[4 + rl] = (uint8_t)i;
	cr_assert_eq(rl_test_frame_append(buf, cap, off, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, m,
					  1 + rl + data_len),
		     0);
}

/* The number of a message made by numbered(), or -1 for another frame. */
static long numbered_seq(const struct rl_test_frame *f, const char *from)
{
	struct relay_span room, fr, data;
	if (f->type != RELAY_MSG_MESSAGE || !(f->flags & RELAY_FLAG_BINARY) ||
	    relay_bin_delivery_parse(f->payload, f->len, &room, &fr, &data) != RELAY_ERR_NONE ||
	    fr.n != strlen(from) || memcmp(fr.p, from, fr.n) != 0 || data.n < 4)
		return -1;
	return (long)((uint32_t)data.p[0] << 24 | (uint32_t)data.p[1] << 16 |
		      (uint32_t)data.p[2] << 8 | data.p[3]);
}

/* Waits up to RL_TEST_REPLY_MS for relayd's log to hold " <id> <what>". */
static void wait_logged(const struct rl_test_server *s, const char *id, const char *what)
{
	char needle[128];
	snprintf(needle, sizeof(needle), " %s %s", id, what);
	for (int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	     !rl_test_server_log_has(s, needle);) {
		cr_assert_lt(rl_test_now_ms(), end, "relayd never logged \"%s\"", needle);
		poll(NULL, 0, 5); /* the log file is the only witness */
	}
}

/* A member that stops reading while 6 MB are published to its room goes
 * DRAINING; when it reads again it gets every message, in order, goes back
 * to OPEN and stays. (--slow-consumer-timeout 20 s: far beyond the test.) */
IT_TEST(faults, a_slow_reader_that_recovers_loses_nothing_and_is_open_again)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--no-presence", "--log-level", "debug",
		 "--outbound-high-watermark", "64K", "--outbound-low-watermark", "16K",
		 "--outbound-hard-limit", "64M", "--slow-consumer-timeout", "20");
	struct healthy h;
	healthy_start(&h, &s, "recover");
	struct rl_test_client *slow = it_connect(&s);
	cr_assert_eq(rl_test_set_rcvbuf(slow, 32 * 1024), 0, "%s", rl_test_err());
	cr_assert_not_null(rl_test_hello(slow, NULL, RL_TEST_REPLY_MS), "%s", rl_test_err());
	it_join(slow, "recover", -1);
	struct rl_test_client *pub = it_client(&s, NULL);
	it_join(pub, "recover", -1);
	char slow_id[32], pub_id[32];
	snprintf(slow_id, sizeof(slow_id), "%s", rl_test_conn_id(slow));
	snprintf(pub_id, sizeof(pub_id), "%s", rl_test_conn_id(pub));

	size_t cap = (size_t)RECOVER_MSGS * (RECOVER_BYTES + 32), len = 0;
	uint8_t *flood = malloc(cap);
	cr_assert_not_null(flood);
	for (uint32_t i = 0; i < RECOVER_MSGS; i++)
		numbered(flood, cap, &len, "recover", i, RECOVER_BYTES);
	struct it_sender snd;
	it_sender_start(&snd, pub, flood, len);
	/* The healthy member reads the flood as it comes (it stays OPEN). */
	for (uint32_t i = 0; i < RECOVER_MSGS;) {
		const struct rl_test_frame *f = rl_test_recv(h.c, RL_TEST_BULK_MS);
		cr_assert_not_null(f, "healthy member: %u of %u: %s", i, RECOVER_MSGS,
				   rl_test_err());
		long seq = numbered_seq(f, pub_id);
		cr_assert_eq(seq, (long)i, "healthy member: message %u came as %s", i,
			     rl_test_frame_str(f));
		i++;
	}
	cr_assert_eq(it_sender_join(&snd), 0, "publisher: %s", rl_test_err());
	it_ping(pub); /* everything fanned out */
	wait_logged(&s, slow_id, "backpressure detected");
	/* Now the slow member reads: everything, in order, nothing twice. */
	for (uint32_t i = 0; i < RECOVER_MSGS; i++) {
		const struct rl_test_frame *f = rl_test_recv(slow, RL_TEST_BULK_MS);
		cr_assert_not_null(f, "recovering member: %u of %u: %s", i, RECOVER_MSGS,
				   rl_test_err());
		cr_assert_eq(numbered_seq(f, pub_id), (long)i,
			     "recovering member: message %u came as %s", i, rl_test_frame_str(f));
	}
	wait_logged(&s, slow_id, "backpressure relieved");
	it_ping(slow); /* OPEN: answered, and nothing else was queued */
	len = 0;
	numbered(flood, cap, &len, "recover", RECOVER_MSGS, 4);
	it_raw(pub, flood, len);
	const struct rl_test_frame *f = it_expect(slow, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY);
	cr_assert_eq(numbered_seq(f, pub_id), (long)RECOVER_MSGS, "%s", rl_test_frame_str(f));
	cr_assert(!rl_test_server_log_has(&s, "slow consumer"), "relayd evicted someone");
	healthy_round(&h, 50, "after a slow reader recovered");
	free(flood);
	rl_test_close(slow);
	rl_test_close(pub);
	rl_test_close(h.c);
	it_stop(&s);
}

/* ---- half-close ---------------------------------------------------------------- */

enum { HALF_BEATS = 6000, HALF_BEAT_BYTES = 1000 }; /* 6 MB: more than the kernel buffers take */

/* A client writes HELLO, JOIN, a MESSAGE and 6,000 HEARTBEATs of 1000 bytes
 * (6 MB of echoes: its 16 KiB receive buffer and relayd's socket take a few
 * MB, relayd's queue the rest), then shuts its sending side and only then
 * reads: every reply arrives, in order, then the end of the stream; its
 * MESSAGE reached the room. relayd reads the EOF with replies still queued:
 * CLOSING, flushed, then closed. */
IT_TEST(faults, half_close_after_complete_frames_flushes_every_reply_then_closes)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--no-presence");
	struct healthy h;
	healthy_start(&h, &s, "half");
	struct rl_test_client *c = it_connect(&s);
	cr_assert_eq(rl_test_set_rcvbuf(c, 16 * 1024), 0, "%s", rl_test_err());

	size_t cap = (size_t)HALF_BEATS * (HALF_BEAT_BYTES + 16) + 256, len = 0;
	uint8_t *buf = malloc(cap), beat[HALF_BEAT_BYTES];
	cr_assert_not_null(buf);
	rl_test_frame_append(buf, cap, &len, RELAY_MSG_HELLO, 0, NULL, 0);
	rl_test_frame_append(buf, cap, &len, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "half", 4);
	static const uint8_t bye[] = "\004halfbye";
	rl_test_frame_append(buf, cap, &len, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, bye,
			     sizeof(bye) - 1);
	memset(beat, 'b', sizeof(beat));
	for (uint32_t i = 0; i < HALF_BEATS; i++) {
		beat[0] = (uint8_t)(i >> 8);
		beat[1] = (uint8_t)i;
		rl_test_frame_append(buf, cap, &len, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, beat,
				     sizeof(beat));
	}
	struct it_sender snd; /* relayd must be able to write while we write */
	it_sender_start(&snd, c, buf, len);
	cr_assert_eq(it_sender_join(&snd), 0, "send: %s", rl_test_err());
	cr_assert_eq(shutdown(rl_test_fd(c), SHUT_WR), 0, "shutdown: %s", strerror(errno));
	/* Its MESSAGE went out before the EOF: the healthy member has it. */
	const struct rl_test_frame *f = it_expect(h.c, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY);
	cr_assert(f->len >= 3 && memcmp(f->payload + f->len - 3, "bye", 3) == 0, "%s",
		  rl_test_frame_str(f));

	cr_assert_not_null(rl_test_expect(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON, RL_TEST_REPLY_MS),
			   "%s", rl_test_err());
	it_expect_bin(c, RELAY_MSG_JOIN_ROOM, "half", 4);
	for (uint32_t i = 0; i < HALF_BEATS; i++) {
		f = rl_test_recv(c, RL_TEST_REPLY_MS);
		cr_assert_not_null(f, "echo %u of %u after the half-close: %s", i, HALF_BEATS,
				   rl_test_err());
		cr_assert(f->type == RELAY_MSG_HEARTBEAT && f->len == HALF_BEAT_BYTES &&
			      f->payload[0] == (uint8_t)(i >> 8) && f->payload[1] == (uint8_t)i,
			  "echo %u: %s", i, rl_test_frame_str(f));
	}
	cr_assert_eq(rl_test_expect_closed(c, false, RL_TEST_REPLY_MS), 0, "after every reply: %s",
		     rl_test_err());
	healthy_round(&h, 50, "after a half-close");
	free(buf);
	rl_test_close(c);
	rl_test_close(h.c);
	it_stop(&s);
}

/* ---- endless junk ------------------------------------------------------------- */

/* Writes <head> (may be empty), then pseudo-random bytes until relayd stops
 * taking them or <stop>. */
struct junk {
	struct rl_test_client *c;
	const uint8_t *head;
	size_t head_len;
	atomic_bool stop;
	uint64_t sent;
};

static void *junk_run(void *arg)
{
	struct junk *j = arg;
	static _Thread_local uint8_t chunk[16384];
	uint64_t x = 0x9E3779B97F4A7C15ull;
	if (j->head_len && rl_test_send_raw(j->c, j->head, j->head_len, RL_TEST_BULK_MS) != 0)
		return NULL;
	j->sent = j->head_len;
	while (!atomic_load(&j->stop)) {
		for (size_t i = 0; i < sizeof(chunk); i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			chunk[i] = (uint8_t)x;
		}
		if (rl_test_send_raw(j->c, chunk, sizeof(chunk), 3000) != 0)
			break; /* closed or reset: the point */
		j->sent += sizeof(chunk);
	}
	return NULL;
}

#define JUNK_CLOSE_MS 3000	/* ERROR and close: at once, at most the 2 s CLOSING deadline */
#define JUNK_RSS_KIB (4 * 1024) /* the one frame relayd may buffer (1 MiB) and slack */

/* Streams junk after <head> at relayd; the client must get a fatal ERROR
 * and the close within JUNK_CLOSE_MS, relayd's RSS must not grow by more
 * than JUNK_RSS_KIB, and the healthy member must not notice. */
static void junk_case(const uint8_t *head, size_t head_len, bool hello, const char *what)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--no-presence");
	struct healthy h;
	healthy_start(&h, &s, "junk");
	healthy_round(&h, 20, "before the junk");
	long rss0 = rl_test_server_rss_kib(&s);
	cr_assert_gt(rss0, 0);
	static struct junk j;
	memset(&j, 0, sizeof(j));
	j.c = it_connect(&s);
	j.head = head;
	j.head_len = head_len;
	pthread_t th;
	int64_t t0 = rl_test_now_ms();
	cr_assert_eq(pthread_create(&th, NULL, junk_run, &j), 0);
	const struct rl_test_frame *f = rl_test_recv(j.c, JUNK_CLOSE_MS);
	if (hello && f && f->type == RELAY_MSG_HELLO) /* the <head>'s answer */
		f = rl_test_recv(j.c, JUNK_CLOSE_MS);
	bool fatal = false;
	char code[64] = "";
	bool ok = f && f->type == RELAY_MSG_ERROR &&
		  rl_test_json_str(f, "code", code, sizeof(code)) > 0 &&
		  rl_test_json_bool(f, "fatal", &fatal) == 0 && fatal;
	int closed = ok ? rl_test_expect_closed(j.c, false, JUNK_CLOSE_MS) : -1;
	int64_t took = rl_test_now_ms() - t0;
	long rss1 = rl_test_server_rss_kib(&s);
	atomic_store(&j.stop, true);
	pthread_join(th, NULL);
	cr_assert(ok, "%s: want a fatal ERROR first, got %s", what,
		  f ? rl_test_frame_str(f) : rl_test_err());
	cr_assert_eq(closed, 0, "%s: after ERROR %s: %s", what, code, rl_test_err());
	cr_assert_lt(took, JUNK_CLOSE_MS, "%s: ERROR %s and close took %lld ms", what, code,
		     (long long)took);
	cr_assert_lt(rss1 - rss0, JUNK_RSS_KIB, "%s: relayd grew by %ld KiB while junk flowed",
		     what, rss1 - rss0);
	cr_log_info("%s: ERROR %s, closed after %lld ms, %llu junk bytes sent, RSS %+ld KiB", what,
		    code, (long long)took, (unsigned long long)j.sent, rss1 - rss0);
	healthy_round(&h, 50, what);
	rl_test_close(j.c);
	rl_test_close(h.c);
	it_stop(&s);
}

IT_TEST(faults, endless_random_junk_is_closed_with_an_error_in_bounded_time)
{
	junk_case(NULL, 0, false, "random junk");
}

/* Junk after a HELLO: the connection is established first. */
IT_TEST(faults, endless_junk_after_hello_is_closed_with_an_error_in_bounded_time)
{
	static uint8_t head[16];
	size_t n = 0;
	rl_test_frame_append(head, sizeof(head), &n, RELAY_MSG_HELLO, 0, NULL, 0);
	junk_case(head, n, true, "junk after HELLO");
}

/* A header that announces the largest frame allowed (1 MiB, a valid JSON
 * MESSAGE), then junk: relayd buffers that one frame (bounded by
 * --max-frame-bytes), finds it is not JSON, and closes. */
IT_TEST(faults, endless_junk_inside_the_largest_frame_is_bounded_by_the_frame)
{
	static uint8_t head[RELAY_FRAME_HDR_BYTES];
	relay_frame_put_header(head, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON,
			       RELAY_DEFAULT_MAX_FRAME - (RELAY_FRAME_HDR_BYTES - 4));
	junk_case(head, sizeof(head), false, "junk inside a 1 MiB frame");
}

/* ---- a 1 MiB room name; 10,000 joins on one connection ---------------------- */

enum { NAME_BYTES = (1 << 20) - 64, JOINS = 10000 };

/* Names of 1 MiB: refused (INVALID_ROOM, the connection stays), trimmed
 * to a valid name when the rest is whitespace (JSON decoding on the heap),
 * and a JOIN frame over --max-frame-bytes is fatal (FRAME_TOO_LARGE). */
IT_TEST(faults, a_1_mib_room_name_is_refused_trimmed_or_too_large_end_to_end)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1");
	struct healthy h;
	healthy_start(&h, &s, "padded");
	struct rl_test_client *c = it_client(&s, NULL);
	size_t cap = NAME_BYTES + 64;
	char *json = malloc(cap);
	cr_assert_not_null(json);

	memcpy(json, "{\"room\":\"", 9);
	memset(json + 9, 'x', NAME_BYTES);
	memcpy(json + 9 + NAME_BYTES, "\"}", 3);
	it_send(c, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, json, strlen(json));
	it_nonfatal(c, "INVALID_ROOM");

	memset(json + 9, ' ', NAME_BYTES);
	memcpy(json + 9 + NAME_BYTES - 8, "padded", 6);
	it_send(c, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, json, strlen(json));
	const struct rl_test_frame *f = it_expect(c, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON);
	char room[80];
	cr_assert(rl_test_json_str(f, "room", room, sizeof(room)) > 0 &&
		      strcmp(room, "padded") == 0,
		  "a padded 1 MiB name should trim to \"padded\": %s", rl_test_frame_str(f));
	it_presence(h.c, 1); /* userJoined */

	struct rl_test_client *big = it_client(&s, NULL);
	memset(json, 'y', cap);
	it_send(big, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, json, RELAY_DEFAULT_MAX_FRAME);
	it_fatal(big, "FRAME_TOO_LARGE");
	healthy_round(&h, 50, "after 1 MiB room names");
	free(json);
	rl_test_close(big);
	rl_test_close(c);
	rl_test_close(h.c);
	it_stop(&s);
}

/* 10,000 JOINs of distinct rooms in one write: 10,000 acks in order; the
 * 10,001st room is refused (TOO_MANY_ROOMS, non-fatal); 10,000 LEAVEs in
 * one write: 10,000 acks; the connection still works, and one of those
 * rooms is shared with the healthy member, who sees the joiner come and go. */
IT_TEST(faults, ten_thousand_joins_on_one_connection_end_to_end)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "2", "--max-rooms-per-conn", "10000");
	struct healthy h;
	healthy_start(&h, &s, "r4242");
	struct rl_test_client *c = it_client(&s, NULL);
	size_t cap = (size_t)(JOINS + 1) * 16, len = 0;
	uint8_t *buf = malloc(cap);
	cr_assert_not_null(buf);
	char name[16];
	for (int type = RELAY_MSG_JOIN_ROOM; type <= RELAY_MSG_LEAVE_ROOM; type++) {
		len = 0;
		for (int i = 0; i <= JOINS; i++) {
			if (i == JOINS && type == RELAY_MSG_LEAVE_ROOM)
				break;
			int n = snprintf(name, sizeof(name), "r%d", i);
			rl_test_frame_append(buf, cap, &len, (uint8_t)type, RELAY_FLAG_BINARY, name,
					     (size_t)n);
		}
		struct it_sender snd;
		it_sender_start(&snd, c, buf, len);
		for (int i = 0; i < JOINS; i++) {
			int n = snprintf(name, sizeof(name), "r%d", i);
			const struct rl_test_frame *f = rl_test_recv(c, RL_TEST_BULK_MS);
			cr_assert_not_null(f, "%s ack %d of %d: %s",
					   type == RELAY_MSG_JOIN_ROOM ? "JOIN" : "LEAVE", i, JOINS,
					   rl_test_err());
			cr_assert(f->type == type && f->len == (uint32_t)n &&
				      memcmp(f->payload, name, (size_t)n) == 0,
				  "ack %d: want %s, got %s", i, name, rl_test_frame_str(f));
		}
		if (type == RELAY_MSG_JOIN_ROOM)
			it_nonfatal_room(c, "TOO_MANY_ROOMS", "r10000");
		cr_assert_eq(it_sender_join(&snd), 0, "send: %s", rl_test_err());
	}
	it_presence(h.c, 2); /* the joiner came to r4242 and left */
	it_ping(c);
	it_join(c, "r1", 1); /* every room was left: r1 is empty again */
	healthy_round(&h, 50, "after 10,000 joins and leaves");
	free(buf);
	rl_test_close(c);
	rl_test_close(h.c);
	it_stop(&s);
}
