/* test_slow.c -- backpressure: a member that never reads while a publisher
 * floods its room is disconnected (SLOW_CONSUMER, by the hard limit or by the
 * DRAINING time limit), relayd's memory stays bounded, and a member that does
 * read loses nothing.
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

/* Reads the slow member's socket: frames, then maybe ERROR SLOW_CONSUMER,
 * then close. For the first <crawl_ms> it reads one frame per 10 ms (a
 * consumer far slower than the publisher, keeping its queue above the low
 * watermark), then as fast as it can. Returns whether the ERROR was seen;
 * asserts the close came within <ms>. */
static bool expect_slow_consumer_closed(struct rl_test_client *c, int crawl_ms, int ms)
{
	int64_t start = rl_test_now_ms(), deadline = start + ms;
	bool saw_error = false;
	for (;;) {
		if (rl_test_now_ms() - start < crawl_ms) {
			struct pollfd p = {.fd = -1};
			poll(&p, 0, 10); /* pacing the reader, not a synchronisation */
		}
		int64_t left = deadline - rl_test_now_ms();
		cr_assert_gt(left, 0, "the slow consumer is still connected after %d ms", ms);
		const struct rl_test_frame *f = rl_test_recv(c, (int)left);
		if (f == NULL) {
			const char *e = rl_test_err();
			cr_assert(strstr(e, "closed") != NULL || strstr(e, "reset") != NULL,
				  "slow consumer: %s", e);
			return saw_error;
		}
		if (f->type == RELAY_MSG_ERROR) {
			char code[64];
			cr_assert(rl_test_json_str(f, "code", code, sizeof(code)) > 0 &&
					  strcmp(code, "SLOW_CONSUMER") == 0,
				  "slow consumer got %s", rl_test_frame_str(f));
			saw_error = true;
		} else {
			cr_assert(!saw_error, "frame after the fatal ERROR: %s", rl_test_frame_str(f));
			cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "%s", rl_test_frame_str(f));
		}
	}
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

struct slow_result {
	long rss_before, rss_peak;
	bool saw_error;
};

static void slow_run(const char *const *args, uint32_t count, int crawl_ms, int close_within_ms,
		     struct slow_result *res)
{
	struct rl_test_server s;
	char envbuf[1024];
	cr_assert_eq(rl_test_server_start(&s, args, slow_env(envbuf, sizeof(envbuf)), 0), 0, "%s",
		     rl_test_err());
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
	int64_t deadline = rl_test_now_ms() + 20000, next_rss = 0;
	uint32_t got = 0;
	while (got < count && rl_test_now_ms() < deadline) {
		struct pollfd p = {.fd = rl_test_fd(healthy), .events = POLLIN};
		poll(&p, 1, 50);
		const struct rl_test_frame *fr;
		int r;
		while ((r = rl_test_poll_frame(healthy, &fr)) == 1) {
			uint32_t seq = seq_of(fr);
			if (seq != got) {
				pthread_mutex_lock(&f.lock);
				f.abort = true;
				pthread_cond_signal(&f.cond);
				pthread_mutex_unlock(&f.lock);
				pthread_join(th, NULL);
			}
			cr_assert_eq(seq, got, "healthy member: message %u arrived as %u", got, seq);
			got++;
		}
		if (r < 0) {
			pthread_mutex_lock(&f.lock);
			f.abort = true;
			pthread_cond_signal(&f.cond);
			pthread_mutex_unlock(&f.lock);
			pthread_join(th, NULL);
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
	}
	pthread_mutex_lock(&f.lock);
	f.abort = true;
	pthread_cond_signal(&f.cond);
	pthread_mutex_unlock(&f.lock);
	pthread_join(th, NULL);
	cr_assert_eq(f.rc, 0, "publisher: send failed");
	cr_assert_eq(got, count, "healthy member got %u of %u messages", got, count);
	res->saw_error = expect_slow_consumer_closed(slow, crawl_ms, close_within_ms);
	long rss = rl_test_server_rss_kib(&s);
	res->rss_peak = rss > res->rss_peak ? rss : res->rss_peak;
	/* The others still work. */
	it_ping(healthy);
	it_ping(pub);
	cr_log_info("slow consumer: VmRSS %ld KiB before, peak %ld KiB; ERROR frame %s", res->rss_before,
		    res->rss_peak, res->saw_error ? "seen" : "not seen (socket closed)");
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

IT_TEST(slow, hard_limit_disconnects_and_memory_stays_bounded)
{
	IT_NEED_PROCESS();
	const char *args[] = {"--workers", "2", "--no-presence", "--outbound-low-watermark", "64K",
			      "--outbound-high-watermark", "256K", "--outbound-hard-limit", "1M",
			      "--slow-consumer-timeout", "0", NULL};
	struct slow_result r;
	/* 16384 x 4 KiB = 64 MiB published. */
	slow_run(args, 16384, 0, 5000, &r);
	const char *w = getenv("RELAY_TEST_WRAPPER");
	if (w == NULL || w[0] == '\0')
		cr_assert_leq(r.rss_peak - r.rss_before, 24 * 1024,
			      "VmRSS grew by %ld KiB (bound 24 MiB) while flooding a slow consumer",
			      r.rss_peak - r.rss_before);
}

IT_TEST(slow, draining_too_long_is_a_slow_consumer)
{
	IT_NEED_PROCESS();
	/* A hard limit too big to reach: only the DRAINING time limit can act. */
	const char *args[] = {"--workers", "2", "--no-presence", "--outbound-low-watermark", "64K",
			      "--outbound-high-watermark", "256K", "--outbound-hard-limit", "512M",
			      "--slow-consumer-timeout", "0.5", NULL};
	struct slow_result r;
	/* 4096 x 4 KiB = 16 MiB: far above the high watermark and what the
	 * kernel buffers absorb, far below 512M. The member then reads one
	 * frame per 10 ms for 1.5 s: its queue stays above the low watermark
	 * (DRAINING) well past 0.5 s. Close expected within the 0.5 s limit +
	 * relayd's flush deadline for a closing connection (2 s) + slack. */
	slow_run(args, 4096, 1500, 6000, &r);
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
		const struct rl_test_frame *f = rl_test_recv(member, IT_MS);
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
