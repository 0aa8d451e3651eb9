/* test_linger.c -- the lingering close: after a fatal ERROR relayd closes
 * the socket only once no byte from the client can destroy that ERROR.
 *
 * What went wrong (found by relay-bench chaos --slow-writers): relayd closed
 * a CLOSING connection as soon as its own queue was empty and no input was
 * pending. With the client's receive window shut, the rest of the last
 * frame and the ERROR were still in relayd's kernel send buffer; the next
 * byte the client wrote made the kernel answer with an RST that discarded
 * them, and the client saw a reset (or EOF) mid-frame instead of the ERROR.
 * Now relayd half-closes and discards input until the client's EOF (at most
 * until the 2 s CLOSING deadline) whenever the kernel still holds bytes the
 * client has not acknowledged or input is waiting.
 *
 * Every case: a member with a 4 KiB receive buffer and a 1460-byte MSS (a
 * narrow link: on loopback's 64 KiB MSS a 4 KiB window moves the megabytes
 * a burst leaves in relayd's kernel at zero-window-probe pace, slower than
 * the CLOSING deadline, whatever relayd does) that does not read is
 * sent more than its window holds, gets a fatal ERROR, writes one frame
 * after relayd has finished with it, and only then reads: it must see every
 * frame whole, the ERROR, then the end of the stream. A healthy member of
 * the same room still receives the publisher's messages in order afterwards.
 *
 * Synchronisation without sleeps: relayd --log-level debug logs "fatal
 * CODE" for the connection while handling the frame that causes it; a
 * publisher's HEARTBEAT round trip sent after that line appeared is handled
 * in a later loop turn, so it proves the turn that flushed the ERROR (and
 * decided how to close) is over.
 *
 * Threading: Criterion test bodies. */
#include "itest.h"

#include <poll.h>
#include <stdio.h>

#define CLOSING_DEADLINE_MS 2000 /* CONN_CLOSE_FLUSH_MS in src/relayd/net/conn.c */
#define CONTENT_BYTES 2000	 /* per message: a few fill a 4 KiB window */

struct linger_room {
	struct rl_test_server s;
	struct rl_test_client *shut;	/* tiny receive buffer, reads only at the end */
	struct rl_test_client *healthy; /* reads everything */
	struct rl_test_client *pub;
	unsigned sent; /* messages published to "r" */
};

static void linger_start(struct linger_room *r, const char *hard_limit)
{
	IT_NEED_PROCESS();
	memset(r, 0, sizeof(*r));
	IT_START(&r->s, "--workers", "1", "--no-presence", "--log-level", "debug",
		 "--outbound-hard-limit", hard_limit);
	r->shut = rl_test_connect_narrow(&r->s, 4096, 1460, RL_TEST_REPLY_MS);
	cr_assert_not_null(r->shut, "%s", rl_test_err());
	cr_assert_not_null(rl_test_hello(r->shut, NULL, RL_TEST_REPLY_MS), "%s", rl_test_err());
	r->healthy = it_client(&r->s, NULL);
	r->pub = it_client(&r->s, NULL);
	it_join(r->shut, "r", 1);
	it_join(r->healthy, "r", 2);
	it_join(r->pub, "r", 3);
	/* Bursts that evict the shut member go to "b": the healthy member must
	 * not take them (a burst over the hard limit in one turn would evict
	 * it too). */
	it_join(r->shut, "b", 1);
	it_join(r->pub, "b", 2);
}

/* Appends message number <i> of the publisher ("m<i>" then 'x' padding)
 * to <buf>. */
static void linger_msg(uint8_t *buf, size_t cap, size_t *off, const char *room, unsigned i)
{
	static char content[CONTENT_BYTES + 1];
	memset(content, 'x', CONTENT_BYTES);
	int n = snprintf(content, 16, "m%u", i);
	content[n] = 'x';
	char json[CONTENT_BYTES + 64];
	int len =
	    snprintf(json, sizeof(json), "{\"room\":\"%s\",\"content\":\"%s\"}", room, content);
	cr_assert_eq(rl_test_frame_append(buf, cap, off, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, json,
					  (size_t)len),
		     0);
}

/* Number of the publisher's message <f> (MESSAGE to "r"), or -1. */
static long linger_msg_no(const struct rl_test_frame *f)
{
	char content[CONTENT_BYTES + 1];
	if (f->type != RELAY_MSG_MESSAGE ||
	    rl_test_json_str(f, "content", content, sizeof(content)) != CONTENT_BYTES ||
	    content[0] != 'm')
		return -1;
	return strtol(content + 1, NULL, 10);
}

/* Publishes <n> messages to <room> in one write (so relayd handles them in
 * one loop turn); the healthy member, a member of "r" only, reads those to
 * "r", in order. */
static void linger_publish_to(struct linger_room *r, const char *room, unsigned n)
{
	size_t cap = (size_t)n * (CONTENT_BYTES + 64), off = 0;
	uint8_t *buf = malloc(cap);
	cr_assert_not_null(buf);
	for (unsigned i = 0; i < n; i++)
		linger_msg(buf, cap, &off, room, r->sent + i);
	it_raw(r->pub, buf, off);
	free(buf);
	it_ping(r->pub);
	for (unsigned i = 0; i < n && strcmp(room, "r") == 0; i++) {
		const struct rl_test_frame *f = it_expect(r->healthy, RELAY_MSG_MESSAGE, -1);
		cr_assert_eq(linger_msg_no(f), (long)(r->sent + i), "healthy member: %s",
			     rl_test_frame_str(f));
	}
	r->sent += n;
}

static void linger_publish(struct linger_room *r, unsigned n)
{
	linger_publish_to(r, "r", n);
}

/* Fills the shut member's receive window and leaves bytes behind it in
 * relayd's kernel: one message per loop turn, each flushed at its end. */
static void linger_fill_window(struct linger_room *r)
{
	for (int i = 0; i < 8; i++)
		linger_publish(r, 1);
}

/* Waits for relayd's debug line "<conn-N> <what>" of the shut member; then
 * a publisher round trip proves that loop turn is over. */
static void linger_wait_logged(struct linger_room *r, const char *what)
{
	char needle[128];
	snprintf(needle, sizeof(needle), " %s %s", rl_test_conn_id(r->shut), what);
	int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	while (!rl_test_server_log_has(&r->s, needle)) {
		cr_assert_lt(rl_test_now_ms(), end, "relayd never logged \"%s\"", needle);
		poll(NULL, 0, 5); /* the log file is the only witness */
	}
	it_ping(r->pub);
}

/* The shut member sends a frame with version 9: fatal UNSUPPORTED_VERSION,
 * queued behind the messages its window has not taken. Returns once relayd
 * has logged it and that loop turn is over. */
static void linger_send_bad_version(struct linger_room *r)
{
	cr_assert_eq(
	    rl_test_send_frame_v(r->shut, 9, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "v", 1), 0,
	    "%s", rl_test_err());
	linger_wait_logged(r, "fatal UNSUPPORTED_VERSION");
}

/* The client's late byte: a HEARTBEAT written after relayd finished the
 * connection's output, handled by relayd before the client reads. */
static void linger_write_late(struct linger_room *r)
{
	/* Before the fix, this is the byte that brought the RST. */
	cr_assert_eq(rl_test_send_frame(r->shut, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "late", 4),
		     0, "%s", rl_test_err());
	it_ping(r->pub);
}

/* The shut member reads everything: the publisher's messages in order
 * (some may be missing at the end: a slow consumer loses what it had not
 * started to receive), each whole, then the fatal ERROR <code>, then the
 * end of the stream. Returns the messages read. */
static unsigned linger_read_to_the_end(struct linger_room *r, const char *code)
{
	const struct rl_test_frame *f;
	unsigned got = 0;
	long last = -1;
	for (;;) {
		f = rl_test_recv(r->shut, RL_TEST_REPLY_MS);
		cr_assert_not_null(f,
				   "after %u messages, no ERROR %s: %s (relayd closed before the "
				   "client had its last bytes)",
				   got, code, rl_test_err());
		if (f->type == RELAY_MSG_ERROR)
			break;
		long no = linger_msg_no(f);
		cr_assert_gt(no, last, "out of order or not a message: %s", rl_test_frame_str(f));
		last = no;
		got++;
	}
	char got_code[64];
	bool fatal = false;
	cr_assert(rl_test_json_str(f, "code", got_code, sizeof(got_code)) > 0 &&
		      strcmp(got_code, code) == 0 && rl_test_json_bool(f, "fatal", &fatal) == 0 &&
		      fatal,
		  "want the fatal ERROR %s, got %s", code, rl_test_frame_str(f));
	cr_assert_eq(rl_test_expect_closed(r->shut, false, RL_TEST_REPLY_MS), 0,
		     "after the ERROR: %s", rl_test_err());
	return got;
}

/* The healthy member still gets the publisher's next messages, in order. */
static void linger_healthy_still_served(struct linger_room *r)
{
	linger_publish(r, 3);
	it_ping(r->healthy);
}

static void linger_stop(struct linger_room *r)
{
	rl_test_close(r->shut);
	rl_test_close(r->healthy);
	rl_test_close(r->pub);
	it_stop(&r->s);
}

IT_TEST(linger, a_fatal_error_behind_a_shut_window_survives_a_late_write)
{
	struct linger_room r;
	linger_start(&r, "8M");
	linger_fill_window(&r);
	linger_send_bad_version(&r);
	linger_write_late(&r);
	unsigned got = linger_read_to_the_end(&r, "UNSUPPORTED_VERSION");
	cr_assert_eq(got, r.sent, "a fatal error drops nothing queued before it: %u of %u", got,
		     r.sent);
	linger_healthy_still_served(&r);
	linger_stop(&r);
}

/* The chaos checker's case: a paused slow reader is evicted while relayd's
 * kernel still holds what its window did not take, writes, then reads. */
IT_TEST(linger, a_slow_consumers_error_behind_a_shut_window_survives_a_late_write)
{
	struct linger_room r;
	linger_start(&r, "32K");
	linger_fill_window(&r);
	/* More than the hard limit in one turn, to "b": evicted. (Bursts until
	 * it is, however much the kernel and the queue take first.) */
	for (int64_t end = rl_test_now_ms() + RL_TEST_BULK_MS;
	     !rl_test_server_log_has(&r.s, "slow consumer");) {
		cr_assert_lt(rl_test_now_ms(), end, "no eviction after %u messages", r.sent);
		linger_publish_to(&r, "b", 24);
	}
	linger_wait_logged(&r, "fatal SLOW_CONSUMER");
	linger_write_late(&r);
	linger_read_to_the_end(&r, "SLOW_CONSUMER");
	linger_healthy_still_served(&r);
	linger_stop(&r);
}

/* Lingering ends as soon as nothing is at risk: a client that has read
 * (and so acknowledged) everything, its ERROR and relayd's FIN included, is
 * closed at once, without waiting for its own close or for the deadline. */
IT_TEST(linger, a_lingering_connection_closes_once_the_client_has_everything)
{
	struct linger_room r;
	linger_start(&r, "8M");
	linger_fill_window(&r);
	linger_send_bad_version(&r);
	char lingering[64], closed[64];
	snprintf(lingering, sizeof(lingering), " %s lingering: ", rl_test_conn_id(r.shut));
	snprintf(closed, sizeof(closed), " %s closed\n", rl_test_conn_id(r.shut));
	cr_assert(rl_test_server_log_has(&r.s, lingering), "relayd did not linger");
	cr_assert(!rl_test_server_log_has(&r.s, closed), "closed while the window was shut");
	int64_t t0 = rl_test_now_ms();
	linger_read_to_the_end(&r, "UNSUPPORTED_VERSION"); /* the socket stays open */
	while (!rl_test_server_log_has(&r.s, closed)) {
		cr_assert_lt(rl_test_now_ms() - t0, CLOSING_DEADLINE_MS / 2,
			     "relayd still holds the connection %lld ms after the client read "
			     "everything",
			     (long long)(rl_test_now_ms() - t0));
		poll(NULL, 0, 5);
	}
	cr_assert(!rl_test_server_log_has(&r.s, "flush deadline passed"),
		  "closed by the deadline, not when the client had everything");
	linger_healthy_still_served(&r);
	linger_stop(&r);
}
