/* test_fanout_budget.c -- local fan-out is bounded per loop turn: a
 * publisher into a room with many members on its own worker cannot starve
 * another client of that worker.
 *
 * Before: fan-out to members on the publisher's worker ran inside the read,
 * bounded only by the read budget (128 KiB of frames per connection per
 * turn): 6,000 tiny MESSAGEs x 1,000 local members is 6 M copies in one
 * turn, during which no other socket was read and no timer ran. Now the
 * turn's local fan-out is bounded (RL_WORKER_FANOUT_BUDGET members
 * visited); the publisher's unparsed frames wait for the next turn.
 *
 * The room: MEMBERS connections drained by a reader thread (they count the
 * bytes they get, so a lost or duplicated delivery shows), one watcher read
 * here (every message, in order), the publisher (a sender thread writes
 * all its MESSAGEs at once). A heartbeat client on the same worker (one
 * worker) pings throughout: it must be answered at least MIN_ECHOES times,
 * each echo within ECHO_MS.
 *
 * Threading: Criterion test body; one sender thread, one reader thread. */
#include "itest.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <unistd.h>

enum {
	MEMBERS = 1000,
	MESSAGES = 12000, /* 12 M deliveries; in one write: ~6,000 per 128 KiB read */
};

/* Bounds generous enough for a debug or sanitizer build on a loaded 2-core
 * machine (the whole suite runs in parallel): with the budget a turn is a
 * few ms and echoes come every ~20 ms; without it one turn of 6 M copies
 * takes 0.5 s in a release build, seconds in a debug one, and the flood
 * is over after 1 or 2 echoes. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ECHO_MS 1000
#endif
#ifndef ECHO_MS
#define ECHO_MS 500
#endif
#define MIN_ECHOES 10 /* answered while the fan-out runs */

static const char room[] = "fan";

/* A MESSAGE "fan" + 4 bytes of sequence number, binary. */
static size_t message(uint8_t *out, size_t cap, size_t *off, uint32_t i)
{
	uint8_t m[1 + sizeof(room) - 1 + 4] = {sizeof(room) - 1, 'f', 'a', 'n'};
	m[4] = (uint8_t)(i >> 24);
	m[5] = (uint8_t)(i >> 16);
	m[6] = (uint8_t)(i >> 8);
	m[7] = (uint8_t)i;
	cr_assert_eq(
	    rl_test_frame_append(out, cap, off, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, m, sizeof(m)),
	    0);
	return *off;
}

static uint32_t seq_of(const struct rl_test_frame *f)
{
	cr_assert_geq(f->len, 4u, "%s", rl_test_frame_str(f));
	const uint8_t *p = f->payload + f->len - 4;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Drains the members' sockets (raw: the harness is not used on them again)
 * until each has <want> bytes or <stop>. */
struct drain {
	struct rl_test_client *m[MEMBERS];
	size_t got[MEMBERS];
	size_t want;
	atomic_bool stop;
	size_t done; /* members with <want> bytes */
	int err;
};

static void *drain_run(void *arg)
{
	struct drain *d = arg;
	static uint8_t buf[65536];
	int ep = epoll_create1(0);
	for (int i = 0; i < MEMBERS; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, rl_test_fd(d->m[i]), &ev);
	}
	struct epoll_event evs[256];
	while (!atomic_load(&d->stop) && d->done < MEMBERS) {
		int n = epoll_wait(ep, evs, 256, 50);
		for (int k = 0; k < n; k++) {
			uint32_t i = evs[k].data.u32;
			ssize_t r = read(rl_test_fd(d->m[i]), buf, sizeof(buf));
			if (r > 0) {
				bool was = d->got[i] >= d->want;
				d->got[i] += (size_t)r;
				d->done += !was && d->got[i] >= d->want;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				d->err = r == 0 ? -EPIPE : -errno;
				atomic_store(&d->stop, true);
			}
		}
	}
	close(ep);
	return NULL;
}

IT_TEST(fanout_budget, a_publisher_to_many_local_members_does_not_starve_its_worker)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--no-presence", "--outbound-hard-limit", "1G",
		 "--outbound-high-watermark", "512M", "--outbound-low-watermark", "1M",
		 "--slow-consumer-timeout", "0");
	static struct drain d;
	memset(&d, 0, sizeof(d));

	/* Members: HELLO and JOIN written at once, acks left to the drain. */
	uint8_t join[64];
	size_t jl = 0;
	rl_test_frame_append(join, sizeof(join), &jl, RELAY_MSG_HELLO, 0, NULL, 0);
	rl_test_frame_append(join, sizeof(join), &jl, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, room,
			     sizeof(room) - 1);
	for (int i = 0; i < MEMBERS; i++) {
		d.m[i] = it_connect(&s);
		it_raw(d.m[i], join, jl);
	}
	struct rl_test_client *watcher = it_client(&s, NULL);
	struct rl_test_client *pub = it_client(&s, NULL);
	struct rl_test_client *hb = it_client(&s, NULL);
	it_join(watcher, room, -1);
	long members = 0;
	for (int64_t end = rl_test_now_ms() + RL_TEST_BULK_MS; members != MEMBERS + 2;) {
		cr_assert_lt(rl_test_now_ms(), end, "only %ld members joined", members);
		cr_assert_eq(rl_test_join(pub, room, &members, RL_TEST_REPLY_MS), 0, "%s",
			     rl_test_err());
	}

	/* The members' acks, read through the harness; from here on the drain
	 * reads their sockets raw and must count exactly every message. */
	for (int i = 0; i < MEMBERS; i++) {
		it_expect(d.m[i], RELAY_MSG_HELLO, RELAY_FLAG_JSON);
		it_expect(d.m[i], RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY);
	}
	size_t total = 0, cap = (size_t)MESSAGES * 32;
	uint8_t *flood = malloc(cap);
	cr_assert_not_null(flood);
	for (uint32_t i = 0; i < MESSAGES; i++)
		message(flood, cap, &total, i);
	char from[32];
	snprintf(from, sizeof(from), "%s", rl_test_conn_id(pub));
	size_t delivery =
	    RELAY_FRAME_HDR_BYTES + relay_bin_delivery_size(sizeof(room) - 1, strlen(from), 4);
	d.want = (size_t)MESSAGES * delivery;
	pthread_t dt;
	cr_assert_eq(pthread_create(&dt, NULL, drain_run, &d), 0);

	struct it_sender snd;
	it_sender_start(&snd, pub, flood, total);
	uint32_t got = 0, pings = 0;
	int64_t worst = 0, sent_at = 0, deadline = rl_test_now_ms() + 4 * RL_TEST_BULK_MS;
	bool waiting = false;
	while (got < MESSAGES) {
		cr_assert_lt(rl_test_now_ms(), deadline, "watcher got %u of %u", got, MESSAGES);
		if (!waiting) {
			char p[16];
			int pl = snprintf(p, sizeof(p), "hb%u", pings);
			cr_assert_eq(rl_test_send_frame(hb, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY,
							p, (size_t)pl),
				     0, "%s", rl_test_err());
			sent_at = rl_test_now_ms();
			waiting = true;
		}
		struct pollfd pf[2] = {{.fd = rl_test_fd(hb), .events = POLLIN},
				       {.fd = rl_test_fd(watcher), .events = POLLIN}};
		poll(pf, 2, 20);
		const struct rl_test_frame *f;
		int r;
		while ((r = rl_test_poll_frame(hb, &f)) == 1) {
			cr_assert_eq(f->type, RELAY_MSG_HEARTBEAT, "%s", rl_test_frame_str(f));
			int64_t rtt = rl_test_now_ms() - sent_at;
			worst = rtt > worst ? rtt : worst;
			pings++;
			waiting = false;
			cr_assert_lt(
			    rtt, ECHO_MS,
			    "HEARTBEAT echo %u took %lld ms during the fan-out (bound %d ms; "
			    "%u of %u messages delivered)",
			    pings, (long long)rtt, ECHO_MS, got, MESSAGES);
		}
		cr_assert_geq(r, 0, "heartbeat client: %s", rl_test_err());
		while ((r = rl_test_poll_frame(watcher, &f)) == 1) {
			cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "%s", rl_test_frame_str(f));
			cr_assert_eq(seq_of(f), got, "watcher: message %u arrived as %u", got,
				     seq_of(f));
			got++;
		}
		cr_assert_geq(r, 0, "watcher: %s", rl_test_err());
		if (waiting)
			cr_assert_lt(rl_test_now_ms() - sent_at, ECHO_MS,
				     "a HEARTBEAT waited over %d ms during the fan-out (%u of %u "
				     "messages delivered, %u echoes so far)",
				     ECHO_MS, got, MESSAGES, pings);
	}
	cr_assert_eq(it_sender_join(&snd), 0, "publisher: send failed");
	pthread_join(dt, NULL);
	cr_assert_eq(d.err, 0, "a member's socket failed: %s", strerror(-d.err));
	cr_assert_eq(d.done, (size_t)MEMBERS, "%zu of %d members got all their bytes", d.done,
		     MEMBERS);
	for (int i = 0; i < MEMBERS; i++)
		cr_assert_eq(d.got[i], d.want, "member %d: %zu bytes, want %zu", i, d.got[i],
			     d.want);
	cr_log_info("%u messages to %d members: %u echoes meanwhile, worst %lld ms", MESSAGES,
		    MEMBERS + 1, pings, (long long)worst);
	cr_assert_geq(pings, MIN_ECHOES,
		      "only %u HEARTBEAT echoes while %u messages went to %d local members: the "
		      "fan-out held the worker",
		      pings, MESSAGES, MEMBERS + 1);
	it_ping(pub);
	it_ping(watcher);
	free(flood);
	for (int i = 0; i < MEMBERS; i++)
		rl_test_close(d.m[i]);
	rl_test_close(watcher);
	rl_test_close(pub);
	rl_test_close(hb);
	it_stop(&s);
}
