/* test_fanout.c -- fan-out across workers: with --workers 4 and enough
 * clients that SO_REUSEPORT spreads them over several workers (proved by the
 * --debug "worker":K field of the HELLO ack), every member on every worker
 * gets every message, in per-sender order, the sender excluded unless it
 * said "echo":true.
 * Threading: Criterion test body; one sender thread per publisher. */
#include "itest.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

enum { NCLI = 40, NPUB = 4, NMSG = 150, NWORKERS = 4 };

/* Connects NCLI clients, checks where they landed (with --debug, <debug>,
 * the HELLO ack says), joins them to <room>. */
static void fan_setup(struct rl_test_server *s, struct rl_test_client **c, const char *room,
		      bool debug)
{
	int per_worker[NWORKERS] = {0};
	for (int i = 0; i < NCLI; i++) {
		c[i] = it_client(s, i == 0 ? "{\"echo\":true}" : NULL);
		if (!debug)
			continue;
		int w = rl_test_worker(c[i]);
		cr_assert(w >= 0 && w < NWORKERS, "HELLO ack with --debug must end with \"worker\":K "
						  "(0..%d), got %d", NWORKERS - 1, w);
		per_worker[w]++;
	}
	if (debug) {
		int used = 0;
		for (int w = 0; w < NWORKERS; w++)
			used += per_worker[w] > 0;
		cr_log_info("clients per worker: %d %d %d %d", per_worker[0], per_worker[1],
			    per_worker[2], per_worker[3]);
		cr_assert_geq(used, 2, "all %d clients landed on one worker", NCLI);
	}
	for (int i = 0; i < NCLI; i++)
		it_join(c[i], room, i + 1);
}

static int pub_index(char ids[NPUB][160], const char *from)
{
	for (int k = 0; k < NPUB; k++)
		if (strcmp(ids[k], from) == 0)
			return k;
	return -1;
}

/* Reads what client <i> has now; checks order per publisher. */
static void fan_drain(struct rl_test_client *c, int i, char ids[NPUB][160],
		      int next[NPUB], int *total, bool binary)
{
	const struct rl_test_frame *f;
	int r;
	while ((r = rl_test_poll_frame(c, &f)) == 1) {
		cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "client %d got %s", i, rl_test_frame_str(f));
		char from[160], want[64], got[64];
		int k, seq;
		if (binary) {
			struct relay_span room, fr, data;
			cr_assert_eq(relay_bin_delivery_parse(f->payload, f->len, &room, &fr, &data), RELAY_ERR_NONE,
				     "client %d: %s", i, rl_test_frame_str(f));
			snprintf(from, sizeof(from), "%.*s", (int)fr.n, (const char *)fr.p);
			snprintf(got, sizeof(got), "%.*s", (int)data.n, (const char *)data.p);
			cr_assert_eq(f->flags, RELAY_FLAG_BINARY);
		} else {
			const uint8_t *p;
			size_t n;
			cr_assert(rl_test_json_str(f, "from", from, sizeof(from)) > 0 &&
					  rl_test_json_raw(f, "content", &p, &n) == 0,
				  "client %d: %s", i, rl_test_frame_str(f));
			snprintf(got, sizeof(got), "%.*s", (int)n, (const char *)p);
		}
		k = pub_index(ids, from);
		cr_assert_geq(k, 0, "client %d: message from unknown sender %s", i, from);
		seq = next[k]++;
		snprintf(want, sizeof(want), "{\"p\":%d,\"seq\":%d}", k, seq);
		cr_assert_str_eq(got, want, "client %d: from publisher %d, want %s got %s (order)", i,
				 k, want, got);
		(*total)++;
	}
	cr_assert_geq(r, 0, "client %d: %s", i, rl_test_err());
}

static void fan_run(bool binary, bool debug)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	if (debug)
		IT_START(&s, "--workers", "4", "--debug", "--no-presence");
	else
		IT_START(&s, "--workers", "4", "--no-presence");
	cr_assert_eq(s.workers, NWORKERS, "listening line: %s", s.line);
	struct rl_test_client *c[NCLI];
	fan_setup(&s, c, "fan", debug);

	/* Publishers are clients 0..NPUB-1, spread over whatever workers they
	 * landed on; client 0 said "echo":true. */
	uint8_t *buf[NPUB];
	size_t len[NPUB];
	char ids[NPUB][160];
	for (int k = 0; k < NPUB; k++) {
		snprintf(ids[k], sizeof(ids[k]), "%s", rl_test_conn_id(c[k]));
		buf[k] = malloc(NMSG * 128);
		len[k] = 0;
		cr_assert_not_null(buf[k]);
		for (int i = 0; i < NMSG; i++) {
			char m[128];
			int n;
			if (binary) {
				char d[64];
				int dn = snprintf(d, sizeof(d), "{\"p\":%d,\"seq\":%d}", k, i);
				m[0] = 3;
				memcpy(m + 1, "fan", 3);
				memcpy(m + 4, d, (size_t)dn);
				n = 4 + dn;
			} else {
				n = snprintf(m, sizeof(m),
					     "{\"room\":\"fan\",\"content\":{\"p\":%d,\"seq\":%d}}", k,
					     i);
			}
			rl_test_frame_append(buf[k], NMSG * 128, &len[k], RELAY_MSG_MESSAGE,
					     binary ? RELAY_FLAG_BINARY : RELAY_FLAG_JSON, m,
					     (size_t)n);
		}
	}
	struct it_sender pub[NPUB];
	for (int k = 0; k < NPUB; k++)
		it_sender_start(&pub[k], c[k], buf[k], len[k]);

	static int next[NCLI][NPUB];
	int total[NCLI] = {0}, want[NCLI];
	memset(next, 0, sizeof(next));
	for (int i = 0; i < NCLI; i++)
		want[i] = NPUB * NMSG - (i > 0 && i < NPUB ? NMSG : 0);
	int64_t deadline = rl_test_now_ms() + RL_TEST_BULK_MS;
	for (;;) {
		bool done = true;
		for (int i = 0; i < NCLI; i++)
			done = done && total[i] >= want[i];
		if (done || rl_test_now_ms() > deadline)
			break;
		struct pollfd pf[NCLI];
		for (int i = 0; i < NCLI; i++)
			pf[i] = (struct pollfd){.fd = rl_test_fd(c[i]), .events = POLLIN};
		poll(pf, NCLI, 100);
		for (int i = 0; i < NCLI; i++)
			fan_drain(c[i], i, ids, next[i], &total[i], binary);
	}
	for (int k = 0; k < NPUB; k++) {
		cr_assert_eq(it_sender_join(&pub[k]), 0, "publisher %d: send failed", k);
		free(buf[k]);
	}
	for (int i = 0; i < NCLI; i++) {
		cr_assert_eq(total[i], want[i], "client %d (worker %d) got %d of %d messages", i,
			     rl_test_worker(c[i]), total[i], want[i]);
		for (int k = 0; k < NPUB; k++) {
			int w = (i == k && i != 0) ? 0 : NMSG;
			cr_assert_eq(next[i][k], w, "client %d got %d of publisher %d's messages", i,
				     next[i][k], k);
		}
		/* Nothing more: the next frame is the HEARTBEAT echo. */
		it_ping(c[i]);
	}
	for (int i = 0; i < NCLI; i++)
		rl_test_close(c[i]);
	it_stop(&s);
}

IT_TEST(fanout, json_every_member_on_every_worker_in_order)
{
	fan_run(false, true);
}

IT_TEST(fanout, binary_every_member_on_every_worker_in_order)
{
	fan_run(true, true);
}

/* The same without --debug: fan-out's fast path for members already waiting
 * for their flush (rl_conn_deliver_quick) runs only while debug logging is
 * off, and each publisher's burst puts many messages in one loop turn. */
IT_TEST(fanout, json_every_member_in_order_at_info_level)
{
	fan_run(false, false);
}

IT_TEST(fanout, binary_every_member_in_order_at_info_level)
{
	fan_run(true, false);
}

/* Without --debug the HELLO ack has no "worker" field (exactly the spec's). */
IT_TEST(fanout, no_worker_field_without_debug)
{
	struct rl_test_server s;
	IT_START(&s, "--workers", "2");
	struct rl_test_client *c = it_client(&s, NULL);
	cr_assert_eq(rl_test_worker(c), -1, "\"worker\" in a non-debug HELLO ack");
	rl_test_close(c);
	it_stop(&s);
}

/* A message, and the userLeft of a member that hung up, reach a member on
 * the other worker at once: the worker that pushes kicks the other's inbox
 * in the same turn (before its own flush, and at the turn's end for what
 * closing connections pushed), not whenever the other worker wakes by
 * itself (it sleeps up to a second when idle). */
IT_TEST(fanout, a_member_on_the_other_worker_hears_at_once)
{
	enum { PROMPT_MS = 500 };
	struct rl_test_server s;
	IT_START(&s, "--workers", "2", "--debug");
	struct rl_test_client *a = it_client(&s, NULL), *b = NULL, *extra[16];
	int nextra = 0;
	while (!b && nextra < 16) {
		struct rl_test_client *c = it_client(&s, NULL);
		if (rl_test_worker(c) != rl_test_worker(a))
			b = c;
		else
			extra[nextra++] = c;
	}
	cr_assert_not_null(b, "no client landed on the other worker");
	it_join(a, "prompt", 1);
	it_join(b, "prompt", 2);
	it_presence(a, 1); /* b's userJoined */
	it_ping(b);	   /* b's worker is idle from here */

	int64_t t0 = rl_test_now_ms();
	it_send_str(a, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, "{\"room\":\"prompt\",\"content\":1}");
	it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
	int64_t msg_ms = rl_test_now_ms() - t0;
	cr_assert_lt(msg_ms, PROMPT_MS, "the message took %lld ms", (long long)msg_ms);

	t0 = rl_test_now_ms();
	rl_test_close(a);
	const struct rl_test_frame *f = it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
	int64_t left_ms = rl_test_now_ms() - t0;
	char type[32];
	cr_assert(rl_test_json_str(f, "type", type, sizeof(type)) > 0 &&
		      strcmp(type, "userLeft") == 0,
		  "expected userLeft, got %s", rl_test_frame_str(f));
	cr_assert_lt(left_ms, PROMPT_MS, "userLeft took %lld ms", (long long)left_ms);
	rl_test_close(b);
	for (int i = 0; i < nextra; i++)
		rl_test_close(extra[i]);
	it_stop(&s);
}
