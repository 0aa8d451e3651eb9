/* test_fragment.c -- TCP is a byte stream: frames split at every byte, at the
 * header boundary, mid-payload, and many frames in one write, against the
 * live server; a 10,000-frame burst in one write does not starve another
 * client on the same worker.
 * Threading: Criterion test bodies; the burst test runs one sender thread. */
#include "itest.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* Waits <ms> without busy-looping: pacing between partial writes so the
 * server really sees them apart (correctness does not depend on it). */
static void pace(struct rl_test_client *c, int ms)
{
	struct pollfd p = {.fd = rl_test_fd(c), .events = POLLIN};
	poll(&p, 1, ms);
}

static void send_split(struct rl_test_client *c, const uint8_t *b, size_t n, size_t at)
{
	it_raw(c, b, at);
	pace(c, 2);
	it_raw(c, b + at, n - at);
}

IT_TEST(fragment, frames_sent_byte_by_byte_are_handled_as_whole_frames)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "2");
	struct rl_test_client *a = it_connect(&s);
	struct rl_test_client *b = it_client(&s, NULL);
	it_join(b, "frag", 1);
	uint8_t buf[1024];
	size_t n = 0;
	static const char hello[] = "{\"userId\":\"slow\"}", join[] = "{\"room\":\"frag\"}",
			  msg[] = "{\"room\":\"frag\",\"content\":{\"k\":[1,2,3]}}";
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_HELLO, RELAY_FLAG_JSON, hello, strlen(hello));
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, join, strlen(join));
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "hb", 2);
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, msg, strlen(msg));
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_LEAVE_ROOM, RELAY_FLAG_BINARY, "frag", 4);
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
	for (size_t i = 0; i < n; i++) {
		it_raw(a, buf + i, 1);
		pace(a, 1);
	}
	it_expect(a, RELAY_MSG_HELLO, RELAY_FLAG_JSON);
	it_expect_exact(a, RELAY_MSG_JOIN_ROOM, "{\"status\":\"joined\",\"room\":\"frag\",\"members\":2}");
	it_expect_bin(a, RELAY_MSG_HEARTBEAT, "hb", 2);
	it_expect_bin(a, RELAY_MSG_LEAVE_ROOM, "frag", 4);
	const struct rl_test_frame *f = it_expect(a, RELAY_MSG_HEARTBEAT, 0);
	cr_assert_eq(f->len, 0);
	/* b saw the join, the message (content intact), the leave. */
	it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON); /* userJoined */
	f = it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
	const uint8_t *p;
	size_t pn;
	cr_assert(rl_test_json_raw(f, "content", &p, &pn) == 0 && pn == 13 &&
			  memcmp(p, "{\"k\":[1,2,3]}", 13) == 0,
		  "content: %s", rl_test_frame_str(f));
	it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON); /* userLeft */
	it_silent(b);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(fragment, every_split_point_of_a_frame)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, NULL);
	uint8_t buf[64];
	size_t n = 0;
	static const char join[] = "{\"room\":\"split\"}";
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, join, strlen(join));
	for (size_t at = 1; at < n; at++) {
		send_split(a, buf, n, at);
		it_expect_exact(a, RELAY_MSG_JOIN_ROOM,
				"{\"status\":\"joined\",\"room\":\"split\",\"members\":1}");
	}
	/* Splits that straddle two frames: the tail of one and the head of the next. */
	uint8_t two[128];
	size_t m = 0;
	rl_test_frame_append(two, sizeof(two), &m, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "one", 3);
	rl_test_frame_append(two, sizeof(two), &m, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "two", 3);
	for (size_t at = 1; at < m; at++) {
		send_split(a, two, m, at);
		it_expect_bin(a, RELAY_MSG_HEARTBEAT, "one", 3);
		it_expect_bin(a, RELAY_MSG_HEARTBEAT, "two", 3);
	}
	rl_test_close(a);
	it_stop(&s);
}

IT_TEST(fragment, header_boundary_and_mid_payload_of_a_large_frame)
{
	enum { N = 200000 };
	struct rl_test_server s;
	IT_START(&s, "--workers", "1");
	struct rl_test_client *a = it_client(&s, NULL);
	uint8_t *buf = malloc(N + 7);
	cr_assert_not_null(buf);
	uint8_t *payload = buf + 7;
	for (size_t i = 0; i < N; i++)
		payload[i] = (uint8_t)(i * 31 + 7);
	relay_frame_encode(buf, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, payload, N);
	static const size_t cuts[] = {1, 3, 4, 5, 6, 7, 8, 1000, 65536, N / 2, N + 6};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		send_split(a, buf, N + 7, cuts[i]);
		it_expect_bin(a, RELAY_MSG_HEARTBEAT, payload, N);
	}
	/* Three pieces: length bytes, rest of the header, the payload in two. */
	it_raw(a, buf, 4);
	pace(a, 2);
	it_raw(a, buf + 4, 3);
	pace(a, 2);
	it_raw(a, buf + 7, 100);
	pace(a, 2);
	it_raw(a, buf + 107, N - 100);
	it_expect_bin(a, RELAY_MSG_HEARTBEAT, payload, N);
	free(buf);
	rl_test_close(a);
	it_stop(&s);
}

IT_TEST(fragment, many_frames_in_one_write)
{
	enum { HB = 300 };
	struct rl_test_server s;
	IT_START(&s, "--workers", "2");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, NULL);
	it_join(b, "many", 1);
	static uint8_t buf[65536];
	size_t n = 0;
	static const char join[] = "{\"room\":\"many\"}";
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, join, strlen(join));
	for (int i = 0; i < HB; i++) {
		char p[32];
		int pl = snprintf(p, sizeof(p), "hb-%d", i);
		rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, p,
				     (size_t)pl);
		char m[64];
		int ml = snprintf(m, sizeof(m), "{\"room\":\"many\",\"content\":%d}", i);
		rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, m, (size_t)ml);
	}
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_LEAVE_ROOM, RELAY_FLAG_JSON, join, strlen(join));
	it_raw(a, buf, n); /* one send() for everything */
	it_expect_exact(a, RELAY_MSG_JOIN_ROOM, "{\"status\":\"joined\",\"room\":\"many\",\"members\":2}");
	for (int i = 0; i < HB; i++) {
		char p[32];
		int pl = snprintf(p, sizeof(p), "hb-%d", i);
		it_expect_bin(a, RELAY_MSG_HEARTBEAT, p, (size_t)pl);
	}
	it_expect_exact(a, RELAY_MSG_LEAVE_ROOM, "{\"status\":\"left\",\"room\":\"many\"}");
	it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON); /* userJoined */
	for (int i = 0; i < HB; i++) {
		const struct rl_test_frame *f = it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
		int64_t v = -1;
		const uint8_t *cp;
		size_t cn;
		cr_assert(rl_test_json_raw(f, "content", &cp, &cn) == 0, "%s", rl_test_frame_str(f));
		char tmp[16];
		snprintf(tmp, sizeof(tmp), "%.*s", (int)cn, (const char *)cp);
		v = strtol(tmp, NULL, 10);
		cr_assert_eq(v, i, "message %d arrived as %lld (order)", i, (long long)v);
	}
	it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON); /* userLeft */
	it_silent(b);
	it_silent(a);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

/* ---- the burst -------------------------------------------------------------- */

enum { BURST = 10000 };

/* Publisher a writes 10,000 binary MESSAGE frames in one write; member c
 * must get every one, in order; client b on the SAME worker (--workers 1)
 * keeps getting prompt HEARTBEAT echoes meanwhile (the per-connection read
 * budget per loop turn). Bound: each echo within 1 s (generous for a
 * sanitizer build on a loaded 2-core box; a fair loop answers in ms). */
IT_TEST(fragment, burst_of_10000_frames_in_one_write_does_not_starve_others)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--no-presence");
	struct rl_test_client *a = it_client(&s, NULL);
	struct rl_test_client *b = it_client(&s, NULL);
	struct rl_test_client *c = it_client(&s, NULL);
	it_join(a, "burst", 1);
	it_join(c, "burst", 2);
	uint8_t *buf = malloc((size_t)BURST * 16);
	size_t len = 0;
	cr_assert_not_null(buf);
	for (uint32_t i = 0; i < BURST; i++) {
		uint8_t m[8] = {5, 'b', 'u', 'r', 's', 't', (uint8_t)(i >> 8), (uint8_t)i};
		rl_test_frame_append(buf, (size_t)BURST * 16, &len, RELAY_MSG_MESSAGE,
				     RELAY_FLAG_BINARY, m, sizeof(m));
	}
	struct it_sender burst;
	it_sender_start(&burst, a, buf, len);

	uint32_t got = 0, pings = 0;
	int64_t worst = 0, deadline = rl_test_now_ms() + RL_TEST_BULK_MS, sent_at = 0;
	bool waiting = false;
	while (got < BURST && rl_test_now_ms() < deadline) {
		if (!waiting) {
			char p[16];
			int pl = snprintf(p, sizeof(p), "b%u", pings);
			cr_assert_eq(rl_test_send_frame(b, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, p,
							(size_t)pl),
				     0, "%s", rl_test_err());
			sent_at = rl_test_now_ms();
			waiting = true;
		}
		struct pollfd pf[2] = {{.fd = rl_test_fd(b), .events = POLLIN},
				       {.fd = rl_test_fd(c), .events = POLLIN}};
		poll(pf, 2, 100);
		const struct rl_test_frame *f;
		int r;
		while ((r = rl_test_poll_frame(b, &f)) == 1) {
			cr_assert_eq(f->type, RELAY_MSG_HEARTBEAT, "b got %s", rl_test_frame_str(f));
			int64_t rtt = rl_test_now_ms() - sent_at;
			worst = rtt > worst ? rtt : worst;
			pings++;
			waiting = false;
		}
		cr_assert_geq(r, 0, "b: %s", rl_test_err());
		while ((r = rl_test_poll_frame(c, &f)) == 1) {
			cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "c got %s", rl_test_frame_str(f));
			cr_assert_geq(f->len, 2u);
			uint32_t seq = (uint32_t)f->payload[f->len - 2] << 8 | f->payload[f->len - 1];
			cr_assert_eq(seq, got & 0xffff, "c: message %u arrived as %u", got, seq);
			got++;
		}
		cr_assert_geq(r, 0, "c: %s", rl_test_err());
		if (waiting)
			cr_assert_lt(rl_test_now_ms() - sent_at, 1000,
				     "b's HEARTBEAT waited over 1 s during the burst");
	}
	cr_assert_eq(it_sender_join(&burst), 0, "burst send failed");
	cr_assert_eq(got, BURST, "c got %u of %u", got, BURST);
	cr_log_info("burst: %u pings answered meanwhile, worst %lld ms", pings, (long long)worst);
	free(buf);
	it_ping(a); /* a got nothing back (no echo), and still works */
	rl_test_close(a);
	rl_test_close(b);
	rl_test_close(c);
	it_stop(&s);
}

/* ---- a sustained flood -------------------------------------------------------- */

/* The flooder sends binary MESSAGE frames to a room where it is the only
 * member: real work for relayd (envelope, name, membership, fan-out to
 * nobody) and no reply, so the writer can keep relayd's socket full all the
 * time without becoming a slow consumer of its own echoes. */
struct stream {
	struct rl_test_client *a;
	atomic_bool stop;
	unsigned long long sent;
	int rc;
};

static void *stream_write(void *arg)
{
	struct stream *st = arg;
	static uint8_t chunk[1000 * 16];
	static const uint8_t m[] = {4, 's', 'o', 'l', 'o', 'd', 'a', 't', 'a'};
	size_t n = 0;
	for (int i = 0; i < 1000; i++)
		rl_test_frame_append(chunk, sizeof(chunk), &n, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, m,
				     sizeof(m));
	while (!atomic_load(&st->stop)) {
		st->rc = rl_test_send_raw(st->a, chunk, n, RL_TEST_BULK_MS);
		if (st->rc != 0)
			break;
		st->sent += 1000;
	}
	return NULL;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STREAM_RTT_MS 1500
#else
#define STREAM_RTT_MS 500
#endif

/* One client streams frames as fast as it can for 1.5 s (relayd's socket
 * always has more bytes waiting); another client on the same worker pings
 * every 10 ms. A loop that reads one connection until EAGAIN would answer
 * the pinger only when the flood stops (RTT about 1.5 s); with a read budget
 * per connection per turn every ping is answered within STREAM_RTT_MS
 * (500 ms; 1.5 s under sanitizers: generous for a loaded 2-core box). */
IT_TEST(fragment, sustained_flood_does_not_starve_a_neighbour)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1");
	static struct stream st;
	st.a = it_client(&s, NULL);
	it_join(st.a, "solo", 1);
	struct rl_test_client *b = it_client(&s, NULL);
	pthread_t wt;
	cr_assert_eq(pthread_create(&wt, NULL, stream_write, &st), 0);
	int64_t t0 = rl_test_now_ms(), worst = 0;
	int answered = 0;
	while (rl_test_now_ms() - t0 < 1500) {
		int64_t t = rl_test_now_ms();
		int rc = rl_test_ping(b, RL_TEST_REPLY_MS);
		int64_t rtt = rl_test_now_ms() - t;
		worst = rtt > worst ? rtt : worst;
		if (rc != 0 || rtt > STREAM_RTT_MS) {
			atomic_store(&st.stop, true);
			pthread_join(wt, NULL);
			cr_assert_fail("ping %d during the flood: %lld ms (bound %d): %s", answered,
				       (long long)rtt, STREAM_RTT_MS, rc != 0 ? rl_test_err() : "slow");
		}
		answered++;
		struct pollfd p = {.fd = -1};
		poll(&p, 0, 10); /* the pinger's pace */
	}
	atomic_store(&st.stop, true);
	pthread_join(wt, NULL);
	cr_assert_eq(st.rc, 0, "flooder: send failed: %s", rl_test_err());
	/* Everything the flooder sent was handled without a reply: its ping
	 * echo comes next. */
	int64_t t = rl_test_now_ms();
	cr_assert_eq(rl_test_ping(st.a, 2 * RL_TEST_BULK_MS), 0, "flooder: %s", rl_test_err());
	cr_log_info("flood: %llu frames; %d pings answered meanwhile, worst %lld ms; backlog drained "
		    "in %lld ms",
		    st.sent, answered, (long long)worst, (long long)(rl_test_now_ms() - t));
	cr_assert_gt(st.sent, 10000u, "the flood was too small to mean anything");
	rl_test_close(st.a);
	rl_test_close(b);
	it_stop(&s);
}
