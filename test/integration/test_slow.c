/* test_slow.c -- backpressure: a member that does not keep up while a
 * publisher floods its room is disconnected with a fatal SLOW_CONSUMER (by the
 * hard limit, or by the DRAINING time limit while it reads at a crawl), its
 * ERROR frame reaches it, relayd's memory stays bounded, and a member that
 * does read loses nothing.
 *
 * The ERROR guarantee and its limit (docs/architecture.md, "Connection
 * states"): the ERROR follows the frame in progress, behind what the kernel
 * already holds (relayd's send buffer, the client's receive buffer); relayd
 * flushes for at most the 2 s CLOSING deadline. A client that reads all of
 * that within 2 s of the eviction gets the ERROR, and these tests assert it:
 * they read the evicted member as fast as they can once relayd has logged the
 * eviction (the one signal a client cannot see: the ERROR sits behind bytes
 * it has not read yet). A client still crawling through a backlog larger than
 * it reads in 2 s sees only the close.
 *
 * The bound stated and checked: while 64 MiB are published to a room with a
 * member that never reads (--outbound-hard-limit 1M), relayd's VmRSS grows by
 * at most 24 MiB over its value before the flood. (Without the hard limit it
 * would grow by about the whole 64 MiB.)
 *
 * Threading: Criterion test bodies; one publisher thread per test. */
#include "itest.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

enum { MSG_BYTES = 4096, WINDOW = 48 };

/* The publisher may run at most WINDOW messages ahead of the healthy reader:
 * flow control by the test so that the healthy member never becomes a slow
 * consumer itself (relayd has no publisher backpressure; at-most-once). */
struct flood {
	struct rl_test_client *pub;
	uint32_t count;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint32_t got; /* messages the healthy reader has received */
	bool abort;
	int rc;
};

static void *flood_run(void *arg)
{
	struct flood *f = arg;
	static uint8_t m[MSG_BYTES];
	m[0] = 5;
	memcpy(m + 1, "flood", 5);
	for (uint32_t i = 0; i < f->count; i++) {
		pthread_mutex_lock(&f->lock);
		while (!f->abort && i >= f->got + WINDOW)
			pthread_cond_wait(&f->cond, &f->lock);
		bool stop = f->abort;
		pthread_mutex_unlock(&f->lock);
		if (stop)
			break;
		m[6] = (uint8_t)(i >> 24);
		m[7] = (uint8_t)(i >> 16);
		m[8] = (uint8_t)(i >> 8);
		m[9] = (uint8_t)i;
		f->rc = rl_test_send_frame(f->pub, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, m, sizeof(m));
		if (f->rc != 0)
			break;
	}
	return NULL;
}

static uint32_t seq_of(const struct rl_test_frame *fr)
{
	struct relay_span room, from, data;
	cr_assert_eq(relay_bin_delivery_parse(fr->payload, fr->len, &room, &from, &data), RELAY_ERR_NONE,
		     "%s", rl_test_frame_str(fr));
	cr_assert_eq(data.n, (size_t)MSG_BYTES - 6);
	return (uint32_t)data.p[0] << 24 | (uint32_t)data.p[1] << 16 | (uint32_t)data.p[2] << 8 |
	       data.p[3];
}

/* relayd's flush deadline for a connection closing after a fatal error
 * (CONN_CLOSE_FLUSH_MS in src/relayd/net/conn.c). */
#define CLOSING_DEADLINE_MS 2000

/* Whether relayd has logged the eviction of a slow consumer (either limit). */
static bool evicted(const struct rl_test_server *s)
{
	return rl_test_server_log_has(s, "slow consumer: ");
}

/* Reads the evicted member <c> as fast as it can, from <evicted_at> on:
 * MESSAGE frames, then the fatal ERROR SLOW_CONSUMER, then the close with
 * nothing in between, all within relayd's CLOSING deadline (+1 s of slack
 * for a loaded machine). Returns the frames read before the ERROR. */
static unsigned expect_error_then_close(struct rl_test_client *c, int64_t evicted_at)
{
	int64_t deadline = evicted_at + CLOSING_DEADLINE_MS + 1000;
	const struct rl_test_frame *f;
	unsigned frames = 0;
	for (;;) {
		int64_t left = deadline - rl_test_now_ms();
		f = rl_test_recv(c, left > 0 ? (int)left : 1);
		cr_assert_not_null(
		    f,
		    "evicted member: no ERROR SLOW_CONSUMER after %u frames and %lld ms: "
		    "%s",
		    frames, (long long)(rl_test_now_ms() - evicted_at), rl_test_err());
		if (f->type != RELAY_MSG_MESSAGE)
			break;
		frames++;
	}
	char code[64];
	bool fatal = false;
	cr_assert(f->type == RELAY_MSG_ERROR &&
		      rl_test_json_str(f, "code", code, sizeof(code)) > 0 &&
		      strcmp(code, "SLOW_CONSUMER") == 0 &&
		      rl_test_json_bool(f, "fatal", &fatal) == 0 && fatal,
		  "evicted member: want a fatal ERROR SLOW_CONSUMER, got %s", rl_test_frame_str(f));
	int64_t left = deadline - rl_test_now_ms();
	cr_assert_eq(rl_test_expect_closed(c, false, left > 0 ? (int)left : 1), 0,
		     "evicted member, after its ERROR (%lld ms after the eviction): %s",
		     (long long)(rl_test_now_ms() - evicted_at), rl_test_err());
	return frames;
}

/* <env> for relayd: under ASan, a small quarantine so that freed send
 * buffers do not count as resident memory. */
static const char *const *slow_env(char *buf, size_t cap)
{
	static const char *env[2];
#if defined(__SANITIZE_ADDRESS__)
	const char *cur = getenv("ASAN_OPTIONS");
	snprintf(buf, cap, "ASAN_OPTIONS=%s%squarantine_size_mb=4", cur != NULL ? cur : "",
		 cur != NULL && cur[0] != '\0' ? ":" : "");
	env[0] = buf;
#else
	(void)buf;
	(void)cap;
	env[0] = NULL;
#endif
	env[1] = NULL;
	return env;
}

/* How the member that falls behind reads until relayd evicts it. */
enum slow_reader {
	SLOW_NEVER_READS = 0,
	SLOW_CRAWLS, /* one frame per 10 ms: far slower than the publisher */
};

struct slow_result {
	long rss_before, rss_peak;
	unsigned frames_after; /* frames the evicted member read before its ERROR */
};

static void flood_stop(struct flood *f, pthread_t th)
{
	pthread_mutex_lock(&f->lock);
	f->abort = true;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_join(th, NULL);
}

/* The slow member's turn in the read loop: crawls while not yet evicted; once
 * relayd has logged the eviction, reads everything up to the ERROR and the
 * close. Returns whether the eviction has been seen. */
static bool slow_turn(const struct rl_test_server *s, struct rl_test_client *slow,
		      enum slow_reader how, int64_t *next_crawl, struct slow_result *res)
{
	if (evicted(s)) {
		res->frames_after = expect_error_then_close(slow, rl_test_now_ms());
		return true;
	}
	if (how == SLOW_CRAWLS && rl_test_now_ms() >= *next_crawl) {
		const struct rl_test_frame *fr;
		int r = rl_test_poll_frame(slow, &fr);
		cr_assert_geq(r, 0, "the slow member before its eviction: %s", rl_test_err());
		if (r == 1)
			cr_assert_eq(fr->type, RELAY_MSG_MESSAGE, "%s", rl_test_frame_str(fr));
		*next_crawl = rl_test_now_ms() + 10;
	}
	return false;
}

static void slow_run(const char *const *args, uint32_t count, enum slow_reader how,
		     struct slow_result *res)
{
	struct rl_test_server s;
	char envbuf[1024];
	it_start_env(&s, args, slow_env(envbuf, sizeof(envbuf)));
	struct rl_test_client *slow = it_client(&s, NULL);
	/* A fixed 256 KiB receive buffer: without it this kernel's receive
	 * side absorbs tens of MiB on loopback; much smaller (below the 64 KiB
	 * loopback MSS) and the stream stalls in the kernel (sender-side
	 * silly-window avoidance), so what was queued before the close could
	 * never be read back here. */
	cr_assert_eq(rl_test_set_rcvbuf(slow, 256 * 1024), 0, "%s", rl_test_err());
	struct rl_test_client *healthy = it_client(&s, NULL);
	struct rl_test_client *pub = it_client(&s, NULL);
	it_join(slow, "flood", 1);
	it_join(healthy, "flood", 2);
	it_join(pub, "flood", 3);
	res->rss_before = rl_test_server_rss_kib(&s);
	res->rss_peak = res->rss_before;
	cr_assert_gt(res->rss_before, 0, "VmRSS: %ld", res->rss_before);

	struct flood f = {.pub = pub, .count = count};
	pthread_mutex_init(&f.lock, NULL);
	pthread_cond_init(&f.cond, NULL);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, flood_run, &f), 0);
	int64_t deadline = rl_test_now_ms() + 2 * RL_TEST_BULK_MS, next_rss = 0, next_crawl = 0;
	uint32_t got = 0;
	bool gone = false;
	while ((got < count || !gone) && rl_test_now_ms() < deadline) {
		struct pollfd p = {.fd = rl_test_fd(healthy), .events = POLLIN};
		poll(&p, 1, 10);
		const struct rl_test_frame *fr;
		int r;
		while ((r = rl_test_poll_frame(healthy, &fr)) == 1) {
			uint32_t seq = seq_of(fr);
			if (seq != got)
				flood_stop(&f, th);
			cr_assert_eq(seq, got, "healthy member: message %u arrived as %u", got, seq);
			got++;
		}
		if (r < 0) {
			flood_stop(&f, th);
			cr_assert_fail("healthy member after %u messages: %s", got, rl_test_err());
		}
		pthread_mutex_lock(&f.lock);
		f.got = got;
		pthread_cond_signal(&f.cond);
		pthread_mutex_unlock(&f.lock);
		if (rl_test_now_ms() >= next_rss) {
			long rss = rl_test_server_rss_kib(&s);
			res->rss_peak = rss > res->rss_peak ? rss : res->rss_peak;
			next_rss = rl_test_now_ms() + 20;
		}
		if (!gone)
			gone = slow_turn(&s, slow, how, &next_crawl, res);
	}
	flood_stop(&f, th);
	cr_assert_eq(f.rc, 0, "publisher: send failed");
	cr_assert_eq(got, count, "healthy member got %u of %u messages", got, count);
	cr_assert(gone, "relayd logged no slow consumer");
	long rss = rl_test_server_rss_kib(&s);
	res->rss_peak = rss > res->rss_peak ? rss : res->rss_peak;
	/* The others still work. */
	it_ping(healthy);
	it_ping(pub);
	cr_log_info("slow consumer: VmRSS %ld KiB before, peak %ld KiB; %u frames read after the "
		    "eviction, then the ERROR",
		    res->rss_before, res->rss_peak, res->frames_after);
	rl_test_close(slow);
	rl_test_close(healthy);
	rl_test_close(pub);
	pthread_mutex_destroy(&f.lock);
	pthread_cond_destroy(&f.cond);
	int st = rl_test_server_stop(&s, 0);
	cr_assert_eq(st, 0, "relayd exit status %d", st);
	/* relayd's final totals count the drop. */
	cr_assert(s.out != NULL && strstr(s.out, "slow consumers dropped 1") != NULL,
		  "final totals on stdout: %s", s.out != NULL ? s.out : "(none)");
	rl_test_server_free(&s);
}

IT_TEST(slow, hard_limit_evicts_with_an_error_frame_and_memory_stays_bounded)
{
	IT_NEED_PROCESS();
	const char *args[] = {"--workers", "2", "--no-presence", "--outbound-low-watermark", "64K",
			      "--outbound-high-watermark", "256K", "--outbound-hard-limit", "1M",
			      "--slow-consumer-timeout", "0", NULL};
	struct slow_result r;
	/* 16384 x 4 KiB = 64 MiB published. */
	slow_run(args, 16384, SLOW_NEVER_READS, &r);
	const char *w = getenv("RELAY_TEST_WRAPPER");
	if (w == NULL || w[0] == '\0')
		cr_assert_leq(r.rss_peak - r.rss_before, 24 * 1024,
			      "VmRSS grew by %ld KiB (bound 24 MiB) while flooding a slow consumer",
			      r.rss_peak - r.rss_before);
}

IT_TEST(slow, draining_too_long_evicts_a_crawling_reader_with_an_error_frame)
{
	IT_NEED_PROCESS();
	/* A hard limit too big to reach: only the DRAINING time limit can act. */
	const char *args[] = {"--workers", "2", "--no-presence", "--outbound-low-watermark", "64K",
			      "--outbound-high-watermark", "256K", "--outbound-hard-limit", "512M",
			      "--slow-consumer-timeout", "0.5", NULL};
	struct slow_result r;
	/* 4096 x 4 KiB = 16 MiB: far above the high watermark and what the
	 * kernel buffers absorb, far below 512M. The member reads one frame per
	 * 10 ms meanwhile: its queue stays above the low watermark (DRAINING)
	 * well past 0.5 s. */
	slow_run(args, 4096, SLOW_CRAWLS, &r);
}

/* Publishes up to <max> 4 KiB messages to "flood" from <pub> (a HEARTBEAT
 * round trip every 64), stopping early once relayd has logged an eviction
 * when <s> is not NULL. */
static void flood_send(const struct rl_test_server *s, struct rl_test_client *pub, int max)
{
	static uint8_t m[MSG_BYTES] = {5, 'f', 'l', 'o', 'o', 'd'};
	for (int n = 1; n <= max && (s == NULL || !evicted(s)); n++) {
		it_send(pub, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, m, sizeof(m));
		if (n % 64 == 0)
			it_ping(pub);
	}
}

/* A member <slow> (256 KiB receive buffer, as in slow_run) and a publisher
 * <pub>, both in "flood". */
static void flood_pair(const struct rl_test_server *s, struct rl_test_client **slow,
		       struct rl_test_client **pub)
{
	*slow = it_client(s, NULL);
	cr_assert_eq(rl_test_set_rcvbuf(*slow, 256 * 1024), 0, "%s", rl_test_err());
	*pub = it_client(s, NULL);
	it_join(*slow, "flood", 1);
	it_join(*pub, "flood", 2);
}

/* The only wait relayd makes for an evicted member that keeps its socket
 * open: the member sent bytes relayd never read, so after the ERROR relayd
 * half-closes and discards input until EOF -- for at most the CLOSING
 * deadline, then closes whatever the peer does. */
IT_TEST(slow, an_evicted_member_that_keeps_its_socket_open_is_closed_by_the_deadline)
{
	struct rl_test_server s;
	struct rl_test_client *slow, *pub;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--no-presence", "--outbound-hard-limit", "1M",
		 "--outbound-high-watermark", "256K", "--outbound-low-watermark", "64K",
		 "--log-level", "debug");
	flood_pair(&s, &slow, &pub);
	char closed[80];
	snprintf(closed, sizeof(closed), " %s closed\n", rl_test_conn_id(slow));
	flood_send(&s, pub, 4096);
	cr_assert(evicted(&s), "no eviction after 16 MiB");
	int64_t t0 = rl_test_now_ms();
	/* Unread input for relayd, sent after the eviction: relayd lingers. */
	it_send(slow, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "late", 4);
	expect_error_then_close(slow, t0); /* the half-close reads as EOF here */
	while (!rl_test_server_log_has(&s, closed) &&
	       rl_test_now_ms() - t0 < CLOSING_DEADLINE_MS + 1000)
		poll(NULL, 0, 20); /* relayd's log is the only witness of its close */
	int64_t took = rl_test_now_ms() - t0;
	cr_assert(rl_test_server_log_has(&s, closed),
		  "relayd still holds the evicted connection %lld ms after the eviction "
		  "(CLOSING deadline %d ms)",
		  (long long)took, CLOSING_DEADLINE_MS);
	cr_log_info("evicted member with unread input closed %lld ms after the eviction",
		    (long long)took);
	it_ping(pub);
	rl_test_close(slow);
	rl_test_close(pub);
	it_stop(&s);
}

/* DRAINING is not a verdict: a member whose queue falls below the low
 * watermark before --slow-consumer-timeout is OPEN again and stays. (Reading
 * right after a flood can get there first; a test that took DRAINING for
 * the eviction would then wait in vain for the ERROR and the close.) */
IT_TEST(slow, a_draining_member_that_catches_up_in_time_stays_connected)
{
	enum { N = 2048 }; /* 8 MiB: the kernel buffers take about 4, relayd's queue the rest */
	struct rl_test_server s;
	struct rl_test_client *slow, *pub;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--no-presence", "--outbound-hard-limit", "512M",
		 "--outbound-high-watermark", "256K", "--outbound-low-watermark", "64K",
		 "--slow-consumer-timeout", "3", "--log-level", "debug");
	flood_pair(&s, &slow, &pub);
	flood_send(NULL, pub, N);
	cr_assert(rl_test_server_log_has(&s, "backpressure detected"), "never DRAINING");
	for (int n = 0; n < N; n++)
		it_expect(slow, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY);
	/* relayd logs it right after the write that emptied the queue: the
	 * member may have read those bytes before the line is written. */
	for (int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	     !rl_test_server_log_has(&s, "backpressure relieved");)
		cr_assert(rl_test_now_ms() < end && poll(NULL, 0, 5) == 0, "never OPEN again");
	/* Flood and catch-up took far less than the 3 s limit (generous for a
	 * loaded machine); past it: no ERROR, no close, and the connection works. */
	cr_assert_eq(rl_test_expect_silence(slow, 3000), 0, "%s", rl_test_err());
	it_ping(slow);
	cr_assert(!evicted(&s), "relayd evicted a member that had caught up");
	rl_test_close(slow);
	rl_test_close(pub);
	it_stop(&s);
}

/* Waits up to <ms> for relayd's log to contain <needle>, publishing one more
 * 4 KiB message from <pub> to "flood" per check while it does not yet (so
 * the member's queue keeps growing until it does). Returns the messages sent. */
static uint32_t publish_until_logged(struct rl_test_server *s, struct rl_test_client *pub,
				     const char *needle, int ms)
{
	static uint8_t m[MSG_BYTES];
	int64_t deadline = rl_test_now_ms() + ms;
	uint32_t sent = 0;
	m[0] = 5;
	memcpy(m + 1, "flood", 5);
	while (!rl_test_server_log_has(s, needle)) {
		cr_assert_lt(rl_test_now_ms(), deadline, "no \"%s\" after %u messages", needle,
			     sent);
		for (int i = 0; i < 64; i++)
			it_send(pub, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, m, sizeof(m));
		sent += 64;
		it_ping(pub); /* relayd has fanned them out */
	}
	return sent;
}

/* --outbound-low-watermark 0 means "back to OPEN once the queue is empty".
 * (It was never reached: DRAINING returned to OPEN only below the low
 * watermark, and no queue is below 0 bytes, so a member that had read
 * everything was still dropped when the DRAINING time limit passed.) */
IT_TEST(slow, low_watermark_0_returns_to_open_once_drained)
{
	IT_NEED_PROCESS();
	struct rl_test_server s;
	IT_START(&s, "--workers", "1", "--debug", "--no-presence", "--outbound-low-watermark", "0",
		 "--outbound-high-watermark", "64K", "--outbound-hard-limit", "512M",
		 "--slow-consumer-timeout", "3");
	struct rl_test_client *member = it_client(&s, NULL);
	cr_assert_eq(rl_test_set_rcvbuf(member, 256 * 1024), 0, "%s", rl_test_err());
	struct rl_test_client *pub = it_client(&s, NULL);
	it_join(member, "flood", 1);
	it_join(pub, "flood", 2);

	/* The member reads nothing until relayd says it is DRAINING ... */
	uint32_t sent = publish_until_logged(&s, pub, "backpressure detected", 10000);
	/* ... then everything, at once. */
	for (uint32_t i = 0; i < sent; i++) {
		const struct rl_test_frame *f = rl_test_recv(member, RL_TEST_REPLY_MS);
		cr_assert_not_null(f, "message %u of %u: %s", i, sent, rl_test_err());
		cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "%s", rl_test_frame_str(f));
	}
	/* Drained: OPEN again, so the 3 s DRAINING limit does not apply. */
	cr_assert_eq(rl_test_expect_silence(member, 3500), 0, "a member that read everything: %s",
		     rl_test_err());
	cr_assert(rl_test_server_log_has(&s, "backpressure relieved: 0 bytes queued"));
	static const uint8_t one[] = "\005floodafter"; /* room length 5, "flood", data */
	it_send(pub, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, one, sizeof(one) - 1);
	const struct rl_test_frame *f = it_expect(member, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY);
	cr_assert(f->len >= 5 && memcmp(f->payload + f->len - 5, "after", 5) == 0, "%s",
		  rl_test_frame_str(f));
	it_ping(member);
	rl_test_close(member);
	rl_test_close(pub);
	it_stop(&s);
}
