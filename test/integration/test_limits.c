/* test_limits.c -- the limits of protocol-v1-ext.md §3 against a live relayd:
 * publish and join rates that pace a sender without losing or reordering
 * anything (and without idle-timing it out), connections per client address
 * (127.0.0.2, 127.0.0.3 ... all reach a relayd on 127.0.0.1), and the
 * server-wide room limit. After each fault a healthy pair still chats in
 * order. The counters are read from /metrics (--admin). */
#include "itest.h"

#include "../ops/expo_check.h"
#include "../ops/ops_http.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define LIM_ROOM "flood"

TestSuite(limits, .timeout = RL_TEST_BODY_S);

/* ---- helpers ------------------------------------------------------------------ */

/* Starts relayd with <args> plus an admin endpoint; fills <admin>. */
static void lim_start(struct rl_test_server *s, char *admin, size_t cap, const char *const *args)
{
	const char *all[32];
	size_t n = 0;
	for (; args[n]; n++)
		all[n] = args[n];
	all[n++] = "--admin";
	all[n++] = "127.0.0.1:0";
	all[n] = NULL;
	/* Under ASan a small quarantine, so freed buffers do not count as resident. */
	static const char *env[2];
#if defined(__SANITIZE_ADDRESS__)
	static char buf[1024];
	const char *cur = getenv("ASAN_OPTIONS");
	snprintf(buf, sizeof(buf), "ASAN_OPTIONS=%s%squarantine_size_mb=4", cur ? cur : "",
		 cur && cur[0] ? ":" : "");
	env[0] = buf;
#endif
	it_start_env(s, all, env);
	char line[160];
	cr_assert_eq(
	    rl_test_server_stdout_line(s, "relayd admin on ", line, sizeof(line), RL_TEST_REPLY_MS),
	    0, "%s", rl_test_err());
	snprintf(admin, cap, "%s", line + strlen("relayd admin on "));
}

#define LIM_START(s, admin, ...)                                                                   \
	do {                                                                                       \
		const char *lim_args_[] = {__VA_ARGS__, NULL};                                     \
		lim_start((s), (admin), sizeof(admin), lim_args_);                                 \
	} while (0)

/* The value of <series> in relayd's /metrics. */
static double lim_metric(const char *admin, const char *series)
{
	struct ops_http_reply r;
	char err[256];
	double v = -1;
	cr_assert_eq(ops_http(admin, "GET", "/metrics", RL_TEST_REPLY_MS, &r, err, sizeof(err)), 0,
		     "GET /metrics: %s", err);
	cr_assert_eq(expo_value(r.body, series, &v), 0, "no %s in /metrics", series);
	ops_http_free(&r);
	return v;
}

/* How many lines of relayd's log contain <needle>. */
static int lim_log_count(const struct rl_test_server *s, const char *needle)
{
	FILE *f = fopen(s->log_path, "r");
	char line[1024];
	int n = 0;
	cr_assert_not_null(f, "%s", s->log_path);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static void lim_sleep_until(int64_t t_ms)
{
	int64_t left = t_ms - rl_test_now_ms();
	if (left > 0)
		poll(NULL, 0, (int)left);
}

/* A fresh pair in a room of its own: <n> messages from one to the other,
 * each in order, within the reply timeout. The neighbour that is still
 * fine after the fault. */
static void lim_chat_n(const struct rl_test_server *s, const char *room, int n)
{
	struct rl_test_client *a = it_client(s, NULL), *b = it_client(s, NULL);
	it_join(a, room, -1);
	it_join(b, room, -1);
	cr_assert_eq(rl_test_sync_skip(a, RL_TEST_REPLY_MS, NULL), 0, "%s", rl_test_err());
	for (int i = 0; i < n; i++)
		cr_assert_eq(rl_test_send_json(a, RELAY_MSG_MESSAGE,
					       "{\"room\":\"%s\",\"content\":%d}", room, i),
			     0, "%s", rl_test_err());
	for (int i = 0; i < n; i++) {
		const struct rl_test_frame *f = it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
		int64_t v = -1;
		cr_assert(rl_test_json_i64(f, "content", &v) == 0 && v == i,
			  "chat after the fault: message %d arrived as %s", i,
			  rl_test_frame_str(f));
	}
	rl_test_close(a);
	rl_test_close(b);
}

static void lim_chat_in_order(const struct rl_test_server *s, const char *room)
{
	lim_chat_n(s, room, 20);
}

/* Appends a binary MESSAGE to <room> carrying <seq> (4 bytes, big endian)
 * padded to <data> bytes. */
static void lim_append_msg(uint8_t *buf, size_t cap, size_t *off, const char *room, uint32_t seq,
			   size_t data)
{
	uint8_t *d = malloc(data), *p = malloc(data + 80);
	cr_assert(data >= 4 && d && p);
	memset(d, 'x', data);
	d[0] = (uint8_t)(seq >> 24), d[1] = (uint8_t)(seq >> 16), d[2] = (uint8_t)(seq >> 8),
	d[3] = (uint8_t)seq;
	size_t n = relay_bin_msg_encode(p, (struct relay_span){(const uint8_t *)room, strlen(room)},
					(struct relay_span){d, data});
	cr_assert_eq(
	    rl_test_frame_append(buf, cap, off, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, p, n), 0,
	    "%s", rl_test_err());
	free(d);
	free(p);
}

/* The <seq> of a binary delivery (lim_append_msg's data), or -1. */
static int64_t lim_seq(const struct rl_test_frame *f)
{
	struct relay_span room, from, data;
	if (f->type != RELAY_MSG_MESSAGE || !(f->flags & RELAY_FLAG_BINARY) ||
	    relay_bin_delivery_parse(f->payload, f->len, &room, &from, &data) != RELAY_ERR_NONE ||
	    data.n < 4)
		return -1;
	return (int64_t)((uint32_t)data.p[0] << 24 | (uint32_t)data.p[1] << 16 |
			 (uint32_t)data.p[2] << 8 | data.p[3]);
}

/* ---- a publisher sending at a pace of its own ----------------------------------- */

/* A thread that writes <n> binary MESSAGEs (seq 0..n-1, <data> bytes of
 * data each) to LIM_ROOM at <per_s> a second, in batches every 10 ms,
 * blocking whenever the socket is full (TCP flow control). */
struct lim_pub {
	pthread_t th;
	struct rl_test_client *c;
	uint32_t n, per_s;
	size_t data;
	int64_t t0, t1; /* sending began, ended */
	int rc;
};

static void *lim_pub_run(void *arg)
{
	struct lim_pub *p = arg;
	uint32_t batch = p->per_s / 100 ? p->per_s / 100 : 1;
	size_t cap = (size_t)batch * (p->data + 96);
	uint8_t *buf = malloc(cap);
	p->rc = buf ? 0 : -ENOMEM;
	p->t0 = rl_test_now_ms();
	for (uint32_t seq = 0, tick = 0; seq < p->n && p->rc == 0; tick++) {
		size_t off = 0;
		for (uint32_t k = 0; k < batch && seq < p->n; k++, seq++)
			lim_append_msg(buf, cap, &off, LIM_ROOM, seq, p->data);
		p->rc = rl_test_send_raw(p->c, buf, off, 4 * RL_TEST_BULK_MS);
		lim_sleep_until(p->t0 + 10 * (int64_t)(tick + 1));
	}
	p->t1 = rl_test_now_ms();
	free(buf);
	return NULL;
}

static void lim_pub_start(struct lim_pub *p, struct rl_test_client *c, uint32_t n, uint32_t per_s,
			  size_t data)
{
	*p = (struct lim_pub){.c = c, .n = n, .per_s = per_s, .data = data};
	cr_assert_eq(pthread_create(&p->th, NULL, lim_pub_run, p), 0);
}

/* A member of LIM_ROOM counting what it receives. */
struct lim_member {
	struct rl_test_client *c;
	uint32_t got;
	int64_t first, last; /* arrival of the first and last message */
};

/* Takes what <m> has now: every message must be the next in order. */
static void lim_member_poll(struct lim_member *m)
{
	const struct rl_test_frame *f;
	int r;
	while ((r = rl_test_poll_frame(m->c, &f)) == 1) {
		int64_t seq = lim_seq(f);
		cr_assert_eq(seq, (int64_t)m->got, "message %u arrived as %s", m->got,
			     rl_test_frame_str(f));
		m->last = rl_test_now_ms();
		if (m->got++ == 0)
			m->first = m->last;
	}
	cr_assert_geq(r, 0, "member: %s", rl_test_err());
}

/* A second publisher on the same worker: one echoed message at a time,
 * every 20 ms, its round trips kept. */
struct lim_calm {
	struct rl_test_client *c;
	uint32_t seq;
	int64_t sent; /* 0: nothing in flight */
	int64_t last; /* when the last one was sent */
	int64_t rtt[4096];
	size_t n;
};

static void lim_calm_step(struct lim_calm *k)
{
	const struct rl_test_frame *f;
	int r;
	while ((r = rl_test_poll_frame(k->c, &f)) == 1) {
		cr_assert_eq(lim_seq(f), (int64_t)k->seq, "calm publisher: %s",
			     rl_test_frame_str(f));
		if (k->n < sizeof(k->rtt) / sizeof(k->rtt[0]))
			k->rtt[k->n++] = rl_test_now_ms() - k->sent;
		k->seq++;
		k->sent = 0;
	}
	cr_assert_geq(r, 0, "calm publisher: %s", rl_test_err());
	/* 50 a second: far below the rate, so it is never throttled itself. */
	if (k->sent == 0 && rl_test_now_ms() - k->last >= 20) {
		uint8_t buf[128];
		size_t off = 0;
		lim_append_msg(buf, sizeof(buf), &off, "calm", k->seq, 16);
		cr_assert_eq(rl_test_send_raw(k->c, buf, off, RL_TEST_REPLY_MS), 0, "%s",
			     rl_test_err());
		k->sent = k->last = rl_test_now_ms();
	}
}

static int lim_cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int64_t lim_p99(struct lim_calm *k)
{
	cr_assert_gt(k->n, 50, "only %zu round trips measured", k->n);
	qsort(k->rtt, k->n, sizeof(k->rtt[0]), lim_cmp64);
	return k->rtt[k->n * 99 / 100];
}

/* ---- publish rate ----------------------------------------------------------------- */

/* Reading, under sanitizers and on a loaded 2-core box: the rate is judged
 * from the first to the last arrival, and a stall shorter than the burst
 * (200 ms here) costs nothing (the bucket refills meanwhile). */
IT_TEST(limits, a_publisher_at_ten_times_its_rate_is_paced_and_loses_nothing)
{
	enum { RATE = 1000, BURST = 200, N = 15000, MEMBERS = 2, RSS_BOUND_KIB = 16 * 1024 };
	struct rl_test_server s;
	char admin[160];
	IT_NEED_PROCESS();
	LIM_START(&s, admin, "--workers", "1", "--no-presence", "--publish-rate", "1000",
		  "--publish-burst", "200");
	struct lim_member m[MEMBERS];
	for (int i = 0; i < MEMBERS; i++) {
		m[i] = (struct lim_member){.c = it_client(&s, NULL)};
		it_join(m[i].c, LIM_ROOM, i + 1);
	}
	struct rl_test_client *pub = it_client(&s, NULL);
	it_join(pub, LIM_ROOM, MEMBERS + 1);
	static struct lim_calm calm;
	memset(&calm, 0, sizeof(calm));
	calm.c = it_client(&s, "{\"echo\":true}");
	it_join(calm.c, "calm", 1);
	long rss0 = rl_test_server_rss_kib(&s), rss = rss0;

	struct lim_pub p;
	lim_pub_start(&p, pub, N, 10 * RATE, 32); /* 10x: sent within 1.5 s */
	int64_t deadline = rl_test_now_ms() + 3 * N / RATE * 1000, next_rss = 0;
	while ((m[0].got < N || m[1].got < N) && rl_test_now_ms() < deadline) {
		struct pollfd pf[MEMBERS + 1];
		for (int i = 0; i < MEMBERS; i++)
			pf[i] = (struct pollfd){.fd = rl_test_fd(m[i].c), .events = POLLIN};
		pf[MEMBERS] = (struct pollfd){.fd = rl_test_fd(calm.c), .events = POLLIN};
		poll(pf, MEMBERS + 1, 10);
		for (int i = 0; i < MEMBERS; i++)
			lim_member_poll(&m[i]);
		lim_calm_step(&calm);
		if (rl_test_now_ms() >= next_rss) {
			long r = rl_test_server_rss_kib(&s);
			rss = r > rss ? r : rss;
			next_rss = rl_test_now_ms() + 200;
		}
	}
	pthread_join(p.th, NULL);
	cr_assert_eq(p.rc, 0, "publisher: %s", rl_test_err());
	for (int i = 0; i < MEMBERS; i++) {
		cr_assert_eq(m[i].got, N, "member %d got %u of %u", i, m[i].got, N);
		double secs = (double)(m[i].last - m[i].first) / 1000.0;
		double rate = (N - BURST) / secs;
		cr_log_info("member %d: %u messages in %.2f s: %.0f/s after the burst (limit %d/s)",
			    i, N, secs, rate, RATE);
		cr_assert_geq(rate, 0.9 * RATE, "paced below 90%% of the rate: %.0f/s", rate);
		cr_assert_leq(rate, 1.1 * RATE, "not paced: %.0f/s for a limit of %d/s", rate,
			      RATE);
	}
	int64_t p99 = lim_p99(&calm);
	cr_log_info("calm publisher beside it: %zu round trips, p99 %lld ms; VmRSS %ld -> %ld KiB",
		    calm.n, (long long)p99, rss0, rss);
	cr_assert_leq(p99, 100, "a second publisher's p99 round trip was %lld ms", (long long)p99);
	cr_assert_leq(rss - rss0, RSS_BOUND_KIB, "VmRSS grew by %ld KiB", rss - rss0);
	cr_assert_geq(lim_metric(admin, "relay_rate_limit_pauses_total{limit=\"publish\"}"), 10);
	cr_assert_geq(lim_metric(admin, "relay_rate_limit_paused_seconds_total"), 10.0);
	cr_assert_eq(lim_metric(admin, "relay_rate_limit_pauses_total{limit=\"join\"}"), 0);
	it_ping(pub); /* after everything it sent: it works, and got nothing back */
	/* Read again (a HEARTBEAT takes no token): no longer throttled. */
	cr_assert_eq(lim_metric(admin, "relay_rate_limited_connections"), 0);
	lim_chat_in_order(&s, "after");
	for (int i = 0; i < MEMBERS; i++)
		rl_test_close(m[i].c);
	rl_test_close(calm.c);
	rl_test_close(pub);
	it_stop(&s);
}

/* A member, then a publisher, joined to LIM_ROOM on <s>. */
static void lim_pair(const struct rl_test_server *s, struct lim_member *m,
		     struct rl_test_client **pub)
{
	*m = (struct lim_member){.c = it_client(s, NULL)};
	it_join(m->c, LIM_ROOM, 1);
	*pub = it_client(s, NULL);
	it_join(*pub, LIM_ROOM, 2);
}

/* Reads <m> until it has <n> messages or <limit_ms> passed, joins the
 * publisher <p>'s thread, and asserts that both got through. */
static void lim_member_drain(struct lim_member *m, struct lim_pub *p, uint32_t n,
			     int64_t limit_ms)
{
	int64_t deadline = rl_test_now_ms() + limit_ms;
	while (m->got < n && rl_test_now_ms() < deadline) {
		struct pollfd pf = {.fd = rl_test_fd(m->c), .events = POLLIN};
		poll(&pf, 1, 10);
		lim_member_poll(m);
	}
	pthread_join(p->th, NULL);
	cr_assert_eq(p->rc, 0, "publisher: %s", rl_test_err());
	cr_assert_eq(m->got, n, "member got %u of %u", m->got, n);
}

/* protocol-v1-ext.md 7: a sender paced at its rate must still get at least
 * 90 % of that rate through: <rate> a second, in batches every 10 ms, with
 * a burst of <burst>. */
static void lim_paced(const char *rate_s, const char *burst_s)
{
	uint32_t rate = (uint32_t)atoi(rate_s), n = 3 * rate;
	struct rl_test_server s;
	char admin[160];
	LIM_START(&s, admin, "--workers", "1", "--no-presence", "--publish-rate", rate_s,
		  "--publish-burst", burst_s);
	struct lim_member m;
	struct rl_test_client *pub;
	lim_pair(&s, &m, &pub);
	struct lim_pub p;
	lim_pub_start(&p, pub, n, rate, 16);
	lim_member_drain(&m, &p, n, 4 * 3000);
	/* Judged against what the sender managed to offer (a loaded box may
	 * make it late), never more than the rate. */
	double offered = n * 1000.0 / (double)(p.t1 - p.t0);
	double got = n * 1000.0 / (double)(m.last - p.t0);
	double want = 0.9 * (offered < rate ? offered : rate);
	cr_log_info("burst %s: offered %.0f/s, delivered %.0f/s (limit %u/s)", burst_s, offered,
		    got, rate);
	cr_assert_geq(got, want, "burst %s: delivered %.0f/s of %.0f/s offered at a limit of %u/s",
		      burst_s, got, offered, rate);
	lim_chat_in_order(&s, "after");
	rl_test_close(m.c);
	rl_test_close(pub);
	it_stop(&s);
}

IT_TEST(limits, a_sender_paced_at_its_rate_gets_at_least_90_percent_of_it)
{
	IT_NEED_PROCESS();
	/* A bucket of 50 ms, the default (a second's worth), and one token:
	 * frames relayd read before a throttle pay from when it was meant to
	 * end, so a late wakeup of the worker and the rounding of the throttle
	 * to the ms cost the sender nothing. (Before that, one token gave 97 %
	 * at 1000/s on a quiet box and 88 % under load 6, and at 300/s, where
	 * each throttle of 3.3 ms was rounded up to 4, about 80 %.) */
	lim_paced("1000", "50");
	lim_paced("1000", "0");
	lim_paced("1000", "1");
	lim_paced("300", "1");
}

/* A bucket of one token and a sender at ten times the rate: the frames
 * relayd read before each throttle pay from when it was meant to end, and
 * that credit never lets more than the rate through (judged from the first
 * to the last arrival), nor less than 90 % of it. */
IT_TEST(limits, a_one_token_bucket_paces_a_flooder_at_its_rate_and_no_faster)
{
	enum { RATE = 300, N = 600 };
	struct rl_test_server s;
	char admin[160];
	IT_NEED_PROCESS();
	LIM_START(&s, admin, "--workers", "1", "--no-presence", "--publish-rate", "300",
		  "--publish-burst", "1");
	struct lim_member m;
	struct rl_test_client *pub;
	lim_pair(&s, &m, &pub);
	struct lim_pub p;
	lim_pub_start(&p, pub, N, 10 * RATE, 16);
	lim_member_drain(&m, &p, N, 4 * N / RATE * 1000);
	double secs = (double)(m.last - m.first) / 1000.0;
	double rate = (N - 1) / secs;
	cr_log_info("%u messages in %.2f s: %.0f/s (limit %d/s, burst 1)", N, secs, rate, RATE);
	cr_assert_geq(rate, 0.9 * RATE, "paced below 90%% of the rate: %.0f/s", rate);
	cr_assert_leq(rate, 1.03 * RATE, "faster than the rate: %.0f/s for a limit of %d/s", rate,
		      RATE);
	lim_chat_in_order(&s, "after");
	rl_test_close(m.c);
	rl_test_close(pub);
	it_stop(&s);
}

/* The bytes limit paces large messages the same way, and the sender is
 * slowed by TCP flow control: 20 MB offered at 10x the rate take far longer
 * than the 1 s of offering to write, while relayd's memory stays put (the
 * bytes wait in the kernel, not in relayd). */
IT_TEST(limits, a_bytes_limit_paces_large_messages_through_tcp_flow_control)
{
	enum { RATE = 2 << 20, DATA = 8192, N = 2560, RSS_BOUND_KIB = 16 * 1024 };
	struct rl_test_server s;
	char admin[160];
	IT_NEED_PROCESS();
	LIM_START(&s, admin, "--workers", "1", "--no-presence", "--publish-bytes-rate", "2M",
		  "--publish-bytes-burst", "256K");
	struct lim_member m;
	struct rl_test_client *pub;
	lim_pair(&s, &m, &pub);
	long rss0 = rl_test_server_rss_kib(&s), rss = rss0;

	struct lim_pub p;
	lim_pub_start(&p, pub, N, 10 * RATE / DATA, DATA); /* 20 MB/s for 1 s */
	int64_t deadline = rl_test_now_ms() + 4 * (int64_t)N * DATA / RATE * 1000;
	while (m.got < N && rl_test_now_ms() < deadline) {
		struct pollfd pf = {.fd = rl_test_fd(m.c), .events = POLLIN};
		poll(&pf, 1, 50);
		lim_member_poll(&m);
		long r = rl_test_server_rss_kib(&s);
		rss = r > rss ? r : rss;
	}
	pthread_join(p.th, NULL);
	cr_assert_eq(p.rc, 0, "publisher: %s", rl_test_err());
	cr_assert_eq(m.got, N, "got %u of %u", m.got, N);
	double secs = (double)(m.last - m.first) / 1000.0;
	double rate = ((double)N * DATA - (256 << 10)) / secs;
	cr_log_info("%u x %d bytes in %.2f s: %.2f MB/s (limit 2 MiB/s); offering took %lld ms; "
		    "VmRSS %ld -> %ld KiB",
		    N, DATA, secs, rate / 1e6, (long long)(p.t1 - p.t0), rss0, rss);
	cr_assert_geq(rate, 0.9 * RATE, "paced below 90%% of the rate");
	cr_assert_leq(rate, 1.1 * RATE, "not paced");
	cr_assert_geq(p.t1 - p.t0, 3000, "the sender was not slowed down (%lld ms for 1 s worth)",
		      (long long)(p.t1 - p.t0));
	cr_assert_leq(rss - rss0, RSS_BOUND_KIB, "VmRSS grew by %ld KiB", rss - rss0);
	cr_assert_geq(lim_metric(admin, "relay_rate_limit_pauses_total{limit=\"publish_bytes\"}"),
		      10);
	lim_chat_in_order(&s, "after");
	rl_test_close(m.c);
	rl_test_close(pub);
	it_stop(&s);
}

/* ---- join rate ---------------------------------------------------------------------- */

/* JOIN/LEAVE flapping: every frame is answered, in order, at the join rate,
 * and the presence events the others receive are paced with it (today's
 * amplification: each flap is one event per member). A heartbeat written
 * behind the flaps is answered after the last ack. */
IT_TEST(limits, join_leave_flapping_is_paced_and_so_is_presence)
{
	enum { RATE = 100, BURST = 10, PAIRS = 300, WATCHERS = 3 };
	struct rl_test_server s;
	char admin[160];
	IT_NEED_PROCESS();
	LIM_START(&s, admin, "--workers", "2", "--join-rate", "100", "--join-burst", "10");
	struct rl_test_client *w[WATCHERS];
	for (int i = 0; i < WATCHERS; i++) {
		w[i] = it_client(&s, NULL);
		it_join(w[i], "flap", i + 1);
		for (int k = 0; k < i; k++)
			it_presence(w[k], 1);
	}
	struct rl_test_client *f = it_client(&s, NULL);
	static uint8_t buf[PAIRS * 48 + 64];
	size_t n = 0;
	static const char room[] = "{\"room\":\"flap\"}";
	for (int i = 0; i < PAIRS; i++) {
		rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON,
				     room, strlen(room));
		rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_LEAVE_ROOM, RELAY_FLAG_JSON,
				     room, strlen(room));
	}
	rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "hb", 2);
	int64_t t0 = rl_test_now_ms();
	it_raw(f, buf, n); /* one write: it all sits in relayd's socket buffer */

	int64_t deadline = t0 + 3 * 2 * PAIRS * 1000 / RATE, t_last = 0;
	int acks = 0, events[WATCHERS] = {0}, in_first_second = 0;
	bool hb = false;
	while ((!hb || events[0] < 2 * PAIRS) && rl_test_now_ms() < deadline) {
		struct pollfd pf[WATCHERS + 1];
		for (int i = 0; i < WATCHERS; i++)
			pf[i] = (struct pollfd){.fd = rl_test_fd(w[i]), .events = POLLIN};
		pf[WATCHERS] = (struct pollfd){.fd = rl_test_fd(f), .events = POLLIN};
		poll(pf, WATCHERS + 1, 20);
		const struct rl_test_frame *fr;
		int r;
		while ((r = rl_test_poll_frame(f, &fr)) == 1) {
			cr_assert(!hb, "a frame after the heartbeat echo: %s",
				  rl_test_frame_str(fr));
			if (fr->type == RELAY_MSG_HEARTBEAT) {
				cr_assert_eq(acks, 2 * PAIRS, "heartbeat answered after %d acks",
					     acks);
				hb = true;
				t_last = rl_test_now_ms();
				continue;
			}
			uint8_t want = acks % 2 ? RELAY_MSG_LEAVE_ROOM : RELAY_MSG_JOIN_ROOM;
			cr_assert_eq(fr->type, want, "ack %d: %s", acks, rl_test_frame_str(fr));
			acks++;
		}
		cr_assert_geq(r, 0, "flapper: %s", rl_test_err());
		for (int i = 0; i < WATCHERS; i++) {
			while ((r = rl_test_poll_frame(w[i], &fr)) == 1) {
				char type[32];
				const char *want = events[i] % 2 ? "userLeft" : "userJoined";
				cr_assert(rl_test_json_str(fr, "type", type, sizeof(type)) > 0 &&
					      strcmp(type, want) == 0,
					  "watcher %d event %d: %s", i, events[i],
					  rl_test_frame_str(fr));
				events[i]++;
				if (i == 0 && rl_test_now_ms() - t0 <= 1000)
					in_first_second++;
			}
			cr_assert_geq(r, 0, "watcher: %s", rl_test_err());
		}
	}
	cr_assert(hb, "no heartbeat echo (%d acks)", acks);
	double secs = (double)(t_last - t0) / 1000.0, rate = (2 * PAIRS - BURST) / secs;
	cr_log_info("%d JOIN/LEAVE in %.2f s: %.0f/s (limit %d/s); watcher 0 got %d events in the "
		    "first second",
		    2 * PAIRS, secs, rate, RATE, in_first_second);
	cr_assert_geq(rate, 0.9 * RATE);
	cr_assert_leq(rate, 1.1 * RATE);
	/* Presence deliveries follow the join rate: at most a second's worth
	 * plus the burst per watcher (plus scheduling slack) in the first second. */
	cr_assert_leq(in_first_second, RATE + BURST + 10);
	for (int i = 0; i < WATCHERS; i++) {
		while (events[i] < 2 * PAIRS) {
			it_presence(w[i], 1);
			events[i]++;
		}
		it_silent(w[i]);
	}
	cr_assert_geq(lim_metric(admin, "relay_rate_limit_pauses_total{limit=\"join\"}"), 10);
	lim_chat_in_order(&s, "after");
	for (int i = 0; i < WATCHERS; i++)
		rl_test_close(w[i]);
	rl_test_close(f);
	it_stop(&s);
}

/* ---- a throttled connection and its timers ----------------------------------------- */

/* --idle-timeout 1 and one long pause: a 30 KB message against
 * --publish-bytes-rate 10K is read at once and paid with a debt, so relayd
 * does not read the publisher for about 2 s. It is not idle-timed-out for
 * that time; a heartbeat it sends meanwhile is answered when reading
 * resumes, not before; and afterwards the idle timeout applies to it
 * again. */
IT_TEST(limits, a_throttled_connection_is_not_idle_timed_out)
{
	enum { BIG = 30000 };
	struct rl_test_server s;
	char admin[160];
	IT_NEED_PROCESS();
	LIM_START(&s, admin, "--workers", "1", "--idle-timeout", "1", "--publish-bytes-rate", "10K",
		  "--publish-bytes-burst", "10K");
	struct rl_test_client *c = it_client(&s, "{\"echo\":true}");
	it_join(c, LIM_ROOM, 1);
	static uint8_t buf[BIG + 256];
	size_t n = 0;
	lim_append_msg(buf, sizeof(buf), &n, LIM_ROOM, 0, BIG);
	int64_t t0 = rl_test_now_ms();
	it_raw(c, buf, n);
	const struct rl_test_frame *f = rl_test_recv(c, RL_TEST_REPLY_MS);
	cr_assert_not_null(f, "echo: %s", rl_test_err());
	cr_assert_eq(lim_seq(f), 0, "echo: %s", rl_test_frame_str(f));
	poll(NULL, 0, 500);
	it_send(c, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "hb", 2);
	it_expect_bin(c, RELAY_MSG_HEARTBEAT, "hb", 2); /* fails on any ERROR first */
	int64_t took = rl_test_now_ms() - t0;
	cr_log_info("heartbeat answered %lld ms after the 30 KB message, with --idle-timeout 1",
		    (long long)took);
	cr_assert_geq(took, 1700, "the heartbeat was answered during the pause (%lld ms)",
		      (long long)took);
	/* Reading resumed: silence is an idle timeout again. */
	cr_assert_eq(rl_test_expect_fatal(c, "IDLE_TIMEOUT", 3000), 0, "%s", rl_test_err());
	cr_assert_eq(lim_metric(admin, "relay_protocol_errors_total{code=\"IDLE_TIMEOUT\"}"), 1);
	cr_assert_geq(lim_metric(admin, "relay_rate_limit_paused_seconds_total"), 1.5);
	lim_chat_n(&s, "after", 1); /* a member is idle after 1 s: one message */
	rl_test_close(c);
	it_stop(&s);
}

/* A throttled connection that closes is closed once relayd has read what
 * it sent before closing; relayd shutting down with one still throttled
 * (bytes kept past its limit) sends it SERVER_SHUTDOWN and exits 0 (so,
 * under ASan, without a leak); the gauge follows. */
IT_TEST(limits, throttled_connections_close_and_shut_down_cleanly)
{
	enum { FEW = 15, MANY = 200 };
	struct rl_test_server s;
	char admin[160];
	IT_NEED_PROCESS();
	LIM_START(&s, admin, "--workers", "1", "--publish-rate", "10", "--publish-burst", "1");
	struct rl_test_client *a = it_client(&s, NULL), *b = it_client(&s, NULL);
	it_join(a, "ra", 1);
	it_join(b, "rb", 1);
	static uint8_t buf[MANY * 64];
	size_t n = 0;
	for (uint32_t i = 0; i < FEW; i++)
		lim_append_msg(buf, sizeof(buf), &n, "ra", i, 8);
	it_raw(a, buf, n);
	n = 0;
	for (uint32_t i = 0; i < MANY; i++)
		lim_append_msg(buf, sizeof(buf), &n, "rb", i, 8);
	it_raw(b, buf, n);
	int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	while (lim_metric(admin, "relay_rate_limited_connections") < 2 && rl_test_now_ms() < end)
		poll(NULL, 0, 20);
	cr_assert_eq(lim_metric(admin, "relay_rate_limited_connections"), 2);
	rl_test_close(a); /* read to its end (about 1.5 s at 10/s), then closed */
	end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	while (lim_metric(admin, "relay_connections") > 1 && rl_test_now_ms() < end)
		poll(NULL, 0, 20);
	cr_assert_eq(lim_metric(admin, "relay_connections"), 1);
	cr_assert_eq(lim_metric(admin, "relay_frames_in_total{type=\"MESSAGE\"}") >= FEW, true);
	cr_assert_eq(lim_metric(admin, "relay_rate_limited_connections"), 1);
	cr_assert_eq(rl_test_server_signal(&s, SIGTERM), 0);
	cr_assert_eq(rl_test_expect_fatal(b, "SERVER_SHUTDOWN", RL_TEST_REPLY_MS), 0, "%s",
		     rl_test_err());
	int st = rl_test_server_wait(&s, RL_TEST_START_MS);
	cr_assert_eq(st, 0, "relayd exit status %d after SIGTERM", st);
	rl_test_close(b);
	rl_test_server_free(&s);
}

/* ---- connections per address ---------------------------------------------------------- */

static struct rl_test_client *lim_from(const struct rl_test_server *s, const char *src)
{
	struct rl_test_client *c = rl_test_connect_from(s, src, RL_TEST_REPLY_MS);
	cr_assert_not_null(c, "connect from %s: %s", src, rl_test_err());
	return c;
}

static struct rl_test_client *lim_hello_from(const struct rl_test_server *s, const char *src)
{
	struct rl_test_client *c = lim_from(s, src);
	cr_assert_not_null(rl_test_hello(c, NULL, RL_TEST_REPLY_MS), "HELLO from %s: %s", src,
			   rl_test_err());
	return c;
}

/* --max-connections-per-ip 3: the fourth connection from 127.0.0.2 is
 * refused at accept with TOO_MANY_CONNECTIONS (then closed), ten more as
 * well, with one log line for the burst; 127.0.0.3 and 127.0.0.1 are not
 * affected; a closed connection frees its place. Over TLS too (tls-limits):
 * the handshake completes, then the ERROR, then the close. */
IT_TEST(limits, per_address_limit_refuses_only_that_address)
{
	enum { MAX = 3, MORE = 10 };
	struct rl_test_server s;
	char admin[160];
	IT_NEED_PROCESS();
	LIM_START(&s, admin, "--workers", "2", "--max-connections-per-ip", "3");
	struct rl_test_client *a[MAX], *b[MAX];
	for (int i = 0; i < MAX; i++) {
		a[i] = lim_hello_from(&s, "127.0.0.2");
		b[i] = lim_hello_from(&s, "127.0.0.3");
	}
	for (int i = 0; i <= MORE; i++) {
		struct rl_test_client *x = lim_from(&s, "127.0.0.2");
		cr_assert_eq(rl_test_expect_fatal(x, "TOO_MANY_CONNECTIONS", RL_TEST_REPLY_MS), 0,
			     "refusal %d: %s", i, rl_test_err());
		rl_test_close(x);
	}
	/* The others still work: the ones already in, another address, and
	 * a neighbour from 127.0.0.1. */
	for (int i = 0; i < MAX; i++) {
		it_ping(a[i]);
		it_ping(b[i]);
	}
	struct rl_test_client *d = lim_hello_from(&s, "127.0.0.4");
	lim_chat_in_order(&s, "after");
	cr_assert_eq(
	    lim_metric(admin, "relay_connections_refused_total{reason=\"too_many_connections\"}"),
	    MORE + 1);
	cr_assert_eq(lim_metric(admin, "relay_connections"), 2 * MAX + 1);
	/* The burst (well within a second) is one log line. */
	cr_assert_eq(lim_log_count(&s, "127.0.0.2 holds 3 connections"), 1);

	/* A place that frees up can be taken again (the close is relayd's
	 * next turn: retry a few times). */
	rl_test_close(a[0]);
	struct rl_test_client *again = NULL;
	for (int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS; !again && rl_test_now_ms() < end;) {
		struct rl_test_client *x = lim_from(&s, "127.0.0.2");
		if (rl_test_hello(x, NULL, RL_TEST_REPLY_MS)) {
			again = x;
			break;
		}
		rl_test_close(x);
		poll(NULL, 0, 20);
	}
	cr_assert_not_null(again, "no place for 127.0.0.2 after one of its connections closed");
	struct rl_test_client *x = lim_from(&s, "127.0.0.2");
	cr_assert_eq(rl_test_expect_fatal(x, "TOO_MANY_CONNECTIONS", RL_TEST_REPLY_MS), 0, "%s",
		     rl_test_err());
	rl_test_close(x);
	rl_test_close(again);
	for (int i = 0; i < MAX; i++) {
		if (i > 0)
			rl_test_close(a[i]);
		rl_test_close(b[i]);
	}
	rl_test_close(d);
	it_stop(&s);
}

/* Every address is counted across the workers and transports together:
 * with --workers 4 and a limit of 8, 8 connections from 127.0.0.5 land on
 * several workers and the ninth is refused, whichever worker takes it. */
IT_TEST(limits, per_address_count_spans_workers)
{
	enum { MAX = 8 };
	struct rl_test_server s;
	char admin[160];
	IT_NEED_PROCESS();
	LIM_START(&s, admin, "--workers", "4", "--debug", "--max-connections-per-ip", "8");
	struct rl_test_client *c[MAX];
	unsigned workers = 0;
	for (int i = 0; i < MAX; i++) {
		c[i] = lim_hello_from(&s, "127.0.0.5");
		workers |= 1u << rl_test_worker(c[i]);
	}
	cr_assert_gt(__builtin_popcount(workers), 1, "all 8 on one worker");
	for (int i = 0; i < 6; i++) {
		struct rl_test_client *x = lim_from(&s, "127.0.0.5");
		cr_assert_eq(rl_test_expect_fatal(x, "TOO_MANY_CONNECTIONS", RL_TEST_REPLY_MS), 0,
			     "%s", rl_test_err());
		rl_test_close(x);
	}
	for (int i = 0; i < MAX; i++)
		rl_test_close(c[i]);
	lim_chat_in_order(&s, "after");
	it_stop(&s);
}

/* ---- rooms in the server ----------------------------------------------------------------- */

/* --max-rooms 3: a JOIN that would create a fourth room is TOO_MANY_ROOMS
 * (non-fatal, with "room"); joining a room that exists still works; once a
 * room is gone its place can be taken. */
IT_TEST(limits, max_rooms_refuses_only_a_room_too_many)
{
	struct rl_test_server s;
	char admin[160];
	IT_NEED_PROCESS();
	LIM_START(&s, admin, "--workers", "2", "--max-rooms", "3", "--no-presence");
	struct rl_test_client *a = it_client(&s, NULL), *b = it_client(&s, NULL);
	it_join(a, "r1", 1);
	it_join(a, "r2", 1);
	it_join(a, "r3", 1);
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"r4\"}");
	it_nonfatal_room(a, "TOO_MANY_ROOMS", "r4");
	it_join(b, "r2", 2); /* exists: fine */
	it_send_str(b, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"r5\"}");
	it_nonfatal_room(b, "TOO_MANY_ROOMS", "r5");
	it_leave(a, "r1"); /* a was alone: r1 is gone */
	it_join(b, "r4", 1);
	cr_assert_eq(lim_metric(admin, "relay_room_creations_refused_total"), 2);
	cr_assert_eq(lim_metric(admin, "relay_rooms"), 3);
	it_leave(b, "r4");
	lim_chat_in_order(&s, "r1");
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

/* Rooms created on several workers at once: exactly --max-rooms succeed. */
IT_TEST(limits, max_rooms_is_exact_when_workers_create_rooms_at_once)
{
	enum { CLIENTS = 8, EACH = 6, MAX = 20 };
	struct rl_test_server s;
	char admin[160];
	IT_NEED_PROCESS();
	LIM_START(&s, admin, "--workers", "4", "--max-rooms", "20", "--no-presence");
	struct rl_test_client *c[CLIENTS];
	for (int i = 0; i < CLIENTS; i++)
		c[i] = it_client(&s, NULL);
	for (int i = 0; i < CLIENTS; i++) {
		uint8_t buf[512];
		size_t n = 0;
		for (int k = 0; k < EACH; k++) {
			char j[64];
			int jl = snprintf(j, sizeof(j), "{\"room\":\"x%d-%d\"}", i, k);
			rl_test_frame_append(buf, sizeof(buf), &n, RELAY_MSG_JOIN_ROOM,
					     RELAY_FLAG_JSON, j, (size_t)jl);
		}
		it_raw(c[i], buf, n);
	}
	int joined = 0, refused = 0;
	for (int i = 0; i < CLIENTS; i++) {
		for (int k = 0; k < EACH; k++) {
			const struct rl_test_frame *f = rl_test_recv(c[i], RL_TEST_REPLY_MS);
			cr_assert_not_null(f, "%s", rl_test_err());
			if (f->type == RELAY_MSG_JOIN_ROOM)
				joined++;
			else if (f->type == RELAY_MSG_ERROR &&
				 strstr((const char *)f->payload, "TOO_MANY_ROOMS"))
				refused++;
			else
				cr_assert_fail("unexpected %s", rl_test_frame_str(f));
		}
	}
	cr_assert_eq(joined, MAX, "%d rooms created, %d refused", joined, refused);
	cr_assert_eq(refused, CLIENTS * EACH - MAX);
	cr_assert_eq(lim_metric(admin, "relay_rooms"), MAX);
	for (int i = 0; i < CLIENTS; i++)
		rl_test_close(c[i]);
	int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	while (lim_metric(admin, "relay_rooms") > 0 && rl_test_now_ms() < end)
		poll(NULL, 0, 10); /* the closes, on relayd's side, freed every room */
	lim_chat_in_order(&s, "after");
	it_stop(&s);
}

/* ---- live changes ------------------------------------------------------------------------- */

static char lim_cfg[256];

static void lim_write_cfg(const char *text)
{
	if (lim_cfg[0] == '\0') {
		const char *dir = getenv("TMPDIR");
		snprintf(lim_cfg, sizeof(lim_cfg), "%s/relayd-limits-%ld.conf",
			 dir && dir[0] ? dir : "/tmp", (long)getpid());
	}
	FILE *f = fopen(lim_cfg, "we");
	cr_assert_not_null(f, "%s", lim_cfg);
	fputs(text, f);
	fclose(f);
}

static void lim_cfg_fini(void)
{
	if (lim_cfg[0] != '\0')
		unlink(lim_cfg);
	it_fini();
}

/* SIGHUP with the file rewritten to <text>; waits for the reload's log line. */
static void lim_reload(struct rl_test_server *s, const char *text)
{
	int before = lim_log_count(s, "config: reloaded");
	lim_write_cfg(text);
	cr_assert_eq(rl_test_server_signal(s, SIGHUP), 0, "%s", rl_test_err());
	int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	while (lim_log_count(s, "config: reloaded") == before) {
		cr_assert_lt(rl_test_now_ms(), end, "reload not logged");
		poll(NULL, 0, 10); /* the log line is the only signal a reload gives */
	}
}

/* The limits are live: a reload that raises --max-rooms and turns
 * --publish-rate on applies to the connections already open. */
Test(limits, limits_change_on_a_running_server, .fini = lim_cfg_fini, .timeout = RL_TEST_BODY_S)
{
	enum { N = 11 };
	struct rl_test_server s;
	char admin[160];
	IT_NEED_PROCESS();
	lim_write_cfg("max-rooms = 1\n");
	LIM_START(&s, admin, "--workers", "1", "--config", lim_cfg);
	struct rl_test_client *c = it_client(&s, "{\"echo\":true}");
	it_join(c, "r1", 1);
	it_send_str(c, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"r2\"}");
	it_nonfatal_room(c, "TOO_MANY_ROOMS", "r2");
	lim_reload(&s, "max-rooms = 2\npublish-rate = 5\npublish-burst = 1\n");
	it_join(c, "r2", 1);
	static uint8_t buf[N * 64 + 64];
	size_t n = 0;
	for (uint32_t i = 0; i < N; i++)
		lim_append_msg(buf, sizeof(buf), &n, "r2", i, 8);
	int64_t t0 = rl_test_now_ms();
	it_raw(c, buf, n);
	for (uint32_t i = 0; i < N; i++) {
		const struct rl_test_frame *f = rl_test_recv(c, 3000);
		cr_assert_not_null(f, "echo %u: %s", i, rl_test_err());
		cr_assert_eq(lim_seq(f), (int64_t)i, "echo %u: %s", i, rl_test_frame_str(f));
	}
	int64_t took = rl_test_now_ms() - t0;
	cr_log_info("%d messages after the reload to --publish-rate 5: %lld ms", N,
		    (long long)took);
	cr_assert_geq(took, 1800, "--publish-rate 5 not in force after the reload (%lld ms)",
		      (long long)took);
	rl_test_close(c);
	int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	while (lim_metric(admin, "relay_rooms") > 0 && rl_test_now_ms() < end)
		poll(NULL, 0, 10); /* c's close, on relayd's side, freed both rooms */
	lim_chat_n(&s, "r1", 1);
	it_stop(&s);
}
