/* test_closing.c -- the CLOSING flush deadline: a connection closed by a
 * fatal error (here SLOW_CONSUMER) is closed by relayd within its 2 s
 * deadline once the client reads what was queued, whatever the client's
 * receive buffer and whether or not the client still has unread bytes on
 * its way to relayd (the LINGER path: half-close, discard input until EOF).
 *
 * The eviction is seen in relayd's log ("slow consumer", info level); the
 * client then reads everything as fast as it can and must see the ERROR
 * and then the end of the stream (EOF or reset) within 2 s + slack.
 *
 * Threading: Criterion test bodies. */
#include "itest.h"

#include <poll.h>
#include <stdio.h>

#define CLOSE_WITHIN_MS 3500 /* the 2 s flush deadline + slack */

/* Publishes 4 KiB messages to room "slow" until relayd logs the slow
 * consumer's eviction. */
static void flood_until_evicted(struct rl_test_server *s, struct rl_test_client *pub)
{
	static char chunk[4096];
	memset(chunk, 'x', sizeof(chunk));
	for (int64_t end = rl_test_now_ms() + 10000; !rl_test_server_log_has(s, "slow consumer");) {
		cr_assert_lt(rl_test_now_ms(), end, "no slow consumer eviction within 10 s");
		for (int i = 0; i < 16; i++)
			cr_assert_eq(rl_test_send_json(pub, RELAY_MSG_MESSAGE,
						       "{\"room\":\"slow\",\"content\":\"%.*s\"}",
						       (int)sizeof(chunk), chunk),
				     0, "%s", rl_test_err());
		cr_assert_eq(rl_test_sync_skip(pub, RL_TEST_REPLY_MS, NULL), 0, "%s", rl_test_err());
	}
}

/* Reads <c> to the end: messages, the SLOW_CONSUMER ERROR (if it made it),
 * then EOF or reset, all within <ms>. Returns the ms it took. */
static int64_t read_to_the_end(struct rl_test_client *c, int ms)
{
	int64_t t0 = rl_test_now_ms(), end = t0 + ms;
	bool saw_error = false;
	unsigned frames = 0;
	for (;;) {
		int64_t left = end - rl_test_now_ms();
		cr_assert_gt(left, 0,
			     "relayd has not closed the evicted client %d ms after the eviction "
			     "(%u frames read, ERROR %s)",
			     ms, frames, saw_error ? "seen" : "not seen");
		const struct rl_test_frame *f = rl_test_recv(c, (int)left);
		if (f == NULL) {
			const char *e = rl_test_err();
			if (strstr(e, "closed") != NULL || strstr(e, "reset") != NULL)
				return rl_test_now_ms() - t0;
			continue; /* timed out: the assertion above reports it */
		}
		frames++;
		if (f->type == RELAY_MSG_ERROR) {
			char code[64];
			cr_assert(rl_test_json_str(f, "code", code, sizeof(code)) > 0 &&
				      strcmp(code, "SLOW_CONSUMER") == 0,
				  "%s", rl_test_frame_str(f));
			saw_error = true;
		} else {
			cr_assert(!saw_error, "frame after the fatal ERROR: %s",
				  rl_test_frame_str(f));
		}
	}
}

/* <rcvbuf>: the slow client's SO_RCVBUF (0: the default). <linger>: it
 * sends heartbeats after the eviction, which relayd does not read: it still
 * has input in flight when its output is done. */
static void closing_run(int rcvbuf, bool linger)
{
	IT_NEED_PROCESS();
	struct rl_test_server s;
	IT_START(&s, "--workers", "1", "--no-presence", "--outbound-hard-limit", "256K");
	struct rl_test_client *slow = it_connect(&s);
	if (rcvbuf > 0)
		cr_assert_eq(rl_test_set_rcvbuf(slow, rcvbuf), 0, "%s", rl_test_err());
	cr_assert_not_null(rl_test_hello(slow, NULL, RL_TEST_REPLY_MS), "%s", rl_test_err());
	struct rl_test_client *pub = it_client(&s, NULL);
	it_join(slow, "slow", 1);
	it_join(pub, "slow", -1);
	flood_until_evicted(&s, pub);
	if (linger)
		for (int i = 0; i < 8; i++)
			it_send(slow, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "late", 4);
	int64_t took = read_to_the_end(slow, CLOSE_WITHIN_MS);
	cr_log_info("rcvbuf %d%s: closed %lld ms after the eviction was logged", rcvbuf,
		    linger ? ", input in flight" : "", (long long)took);
	it_ping(pub);
	rl_test_close(slow);
	rl_test_close(pub);
	it_stop(&s);
}

IT_TEST(closing, an_evicted_client_that_reads_is_closed_within_the_deadline)
{
	closing_run(0, false);
}

IT_TEST(closing, an_evicted_client_with_a_tiny_receive_buffer_is_closed_within_the_deadline)
{
	closing_run(4096, false);
}

IT_TEST(closing, an_evicted_client_with_input_in_flight_is_closed_within_the_deadline)
{
	closing_run(0, true);
}

IT_TEST(closing, an_evicted_client_with_a_tiny_buffer_and_input_in_flight_is_closed_in_time)
{
	closing_run(4096, true);
}
