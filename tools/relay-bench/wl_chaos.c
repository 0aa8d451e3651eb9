/* wl_chaos.c -- abuse for a bounded time, then check the server is whole.
 * N clients act at random every tick: join and leave rooms, send bursts
 * (some large), pause reading (some with a tiny receive buffer: slow
 * consumers), send a heartbeat, break the protocol on purpose (fatal error
 * expected), or disconnect abruptly with RST (SO_LINGER 0), with FIN, or in
 * the middle of a frame, and come back. A third of the connections say
 * "echo":true in HELLO, a third say HELLO without it, a third no HELLO.
 * Every request, message and frame received goes through the invariant
 * checker (chaos_check.c). After the abuse every healthy client sends one
 * last message to each of its rooms and everybody reads until the checker
 * owes nothing (bounded by --drain); then the checker's verdict, a fresh pair
 * of clients must be able to join, exchange a message and get a heartbeat
 * echo, and with --metrics the connection, room, membership and queued-bytes
 * gauges must return to zero. With --rss-every and --server-pid the server's
 * RSS is sampled during the abuse and must be flat after warm-up.
 * Threading: main thread only (poll over the clients).
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAOS_ROOMS_MAX 64
#define TICK_NS 10000000u
#define SLOW_RCVBUF 4096        /* a slow reader's receive buffer */
#define RSS_SLACK_BYTES (8u << 20)
#define RSS_SLACK_RATIO 0.10

struct chaos_client {
	int fd;
	struct relay_decoder dec;
	uint64_t joined;        /* bit r: member of room r (as the client sent it) */
	uint64_t paused_until;  /* ns; no reads before */
	bool expect_close;      /* we sent a fatal violation */
	uint64_t violated_at;   /* ns when it was sent */
	bool slow;              /* the server said SLOW_CONSUMER */
	bool slow_reader;       /* tiny receive buffer, long pauses */
	bool read_only;         /* a slow reader that has paused: writes nothing more */
	uint64_t qbytes;        /* bytes queued on this connection so far */
	uint64_t wbytes;        /* of those, accepted by the kernel */
	struct rb_buf out;
};

enum chaos_act {
	CA_BURST = 0, CA_JOIN, CA_LEAVE, CA_PAUSE, CA_RST, CA_FIN, CA_MIDFRAME,
	CA_VIOLATE, CA_HEARTBEAT, CA_NACTS
};

static const char *const act_names[CA_NACTS] = {
	"bursts", "joins", "leaves", "pauses", "rst_disconnects", "fin_disconnects",
	"midframe_disconnects", "violations", "heartbeats",
};

/* Cumulative thresholds out of 1000 per client per tick. */
static const unsigned act_odds[CA_NACTS] = { 60, 90, 110, 118, 124, 130, 133, 135, 150 };

struct chaos {
	const struct rb_opts *o;
	struct sockaddr_in addr;
	struct chaos_client *cl;
	unsigned n, rooms;
	uint64_t rng;
	uint64_t acts[CA_NACTS];
	uint64_t sent, delivered, errors, unexpected_closes, slow_drops, expected_fatal;
	uint64_t reconnects, connect_fail, not_closed, fences;
	bool draining;          /* abuse over: no reconnects, no pauses */
	struct rb_ck *ck;
	struct rss_sample { double t; long bytes; } *rss;
	size_t nrss;
	uint8_t scratch[65536];
	uint8_t big[20000];
};

static unsigned c_slot(const struct chaos *x, const struct chaos_client *c)
{
	return (unsigned)(c - x->cl);
}

static void c_wrote(struct chaos *x, struct chaos_client *c, ssize_t w)
{
	c->wbytes += (uint64_t)w;
	rb_ck_written(x->ck, c_slot(x, c), c->wbytes);
}

static void c_send(struct chaos *x, struct chaos_client *c, const void *p, size_t n)
{
	if (c->fd < 0)
		return;
	c->qbytes += n;
	if (c->out.len == c->out.off) {
		c->out.len = c->out.off = 0;
		ssize_t w = write(c->fd, p, n);
		if (w > 0) {
			p = (const uint8_t *)p + w;
			n -= (size_t)w;
			c_wrote(x, c, w);
		}
		if (!n)
			return;
	}
	if (c->out.cap - c->out.len < n) {
		size_t cap = c->out.cap ? c->out.cap * 2 : 8192;
		while (cap - c->out.len < n)
			cap *= 2;
		uint8_t *q = realloc(c->out.p, cap);
		if (!q)
			return;
		c->out.p = q;
		c->out.cap = cap;
	}
	memcpy(c->out.p + c->out.len, p, n);
	c->out.len += n;
}

/* Sends a request the server answers (HELLO, JOIN, LEAVE, HEARTBEAT). */
static void c_frame(struct chaos *x, struct chaos_client *c, uint8_t type, const char *js,
		    int room)
{
	uint8_t buf[256];
	size_t n = relay_frame_encode(buf, type, RELAY_FLAG_JSON, js, (uint32_t)strlen(js));
	if (c->fd >= 0)
		rb_ck_request(x->ck, c_slot(x, c), type, room);
	c_send(x, c, buf, n);
}

static void c_room_op(struct chaos *x, struct chaos_client *c, uint8_t type, unsigned room)
{
	char js[64];
	snprintf(js, sizeof js, "{\"room\":\"chaos-%u\"}", room);
	c_frame(x, c, type, js, (int)room);
}

/* One checked MESSAGE of <cl> content bytes to <room>. */
static void c_publish(struct chaos *x, struct chaos_client *c, unsigned room, size_t cl)
{
	char rn[32];
	unsigned slot = c_slot(x, c);
	snprintf(rn, sizeof rn, "chaos-%u", room);
	uint32_t id = rb_ck_id(x->ck, slot);
	/* The sequence is taken first: the content carries it. The frame's size
	 * does not depend on it (fixed-width hex). */
	rb_ck_content(x->big, cl, id, room, 0);
	size_t n = rb_msg_frame(x->scratch, sizeof x->scratch, rn, (const char *)x->big, cl);
	uint32_t seq = rb_ck_publish(x->ck, slot, room, c->qbytes + n);
	rb_ck_content(x->big, cl, id, room, seq);
	n = rb_msg_frame(x->scratch, sizeof x->scratch, rn, (const char *)x->big, cl);
	c_send(x, c, x->scratch, n);
	x->sent++;
}

static void c_open(struct chaos *x, struct chaos_client *c)
{
	memset(c, 0, sizeof *c);
	c->slow_reader = rb_rand(&x->rng) % 4 == 0;
	c->fd = rb_connect_blocking_rcvbuf(&x->addr, 2000, c->slow_reader ? SLOW_RCVBUF : 0);
	if (c->fd < 0) {
		x->connect_fail++;
		c->fd = -1;
		return;
	}
	relay_decoder_init(&c->dec, RELAY_DEFAULT_MAX_FRAME);
	unsigned hello = (unsigned)(rb_rand(&x->rng) % 3); /* none, plain, echo */
	rb_ck_open(x->ck, c_slot(x, c), hello == 2);
	if (hello == 1)
		c_frame(x, c, RELAY_MSG_HELLO, "{\"userId\":\"chaos\",\"clientVersion\":\"1\"}", -1);
	else if (hello == 2)
		c_frame(x, c, RELAY_MSG_HELLO, "{\"userId\":\"chaos\",\"echo\":true}", -1);
}

static void c_close(struct chaos *x, struct chaos_client *c, bool rst)
{
	if (c->fd >= 0) {
		rb_ck_close(x->ck, c_slot(x, c));
		if (rst) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		} else {
			shutdown(c->fd, SHUT_WR);
		}
		close(c->fd);
		relay_decoder_free(&c->dec);
	}
	free(c->out.p);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

static void c_reopen(struct chaos *x, struct chaos_client *c, bool rst)
{
	c_close(x, c, rst);
	if (x->draining)
		return;
	c_open(x, c);
	x->reconnects++;
}

static int pick_joined(struct chaos *x, struct chaos_client *c)
{
	if (!c->joined)
		return -1;
	for (;;) {
		unsigned r = (unsigned)(rb_rand(&x->rng) % x->rooms);
		if (c->joined >> r & 1)
			return (int)r;
	}
}

static void act_burst(struct chaos *x, struct chaos_client *c)
{
	int room = pick_joined(x, c);
	if (room < 0)
		return;
	unsigned k = 1 + (unsigned)(rb_rand(&x->rng) % 20);
	for (unsigned i = 0; i < k; i++) {
		size_t cl = rb_rand(&x->rng) % 50 == 0 ? 16000
							: RB_CK_CONTENT_MIN + rb_rand(&x->rng) % 300;
		c_publish(x, c, (unsigned)room, cl);
	}
}

static void act(struct chaos *x, struct chaos_client *c, enum chaos_act a, uint64_t now)
{
	unsigned room = (unsigned)(rb_rand(&x->rng) % x->rooms);
	x->acts[a]++;
	switch (a) {
	case CA_BURST:
		act_burst(x, c);
		break;
	case CA_JOIN:
		c_room_op(x, c, RELAY_MSG_JOIN_ROOM, room);
		c->joined |= 1ull << room;
		break;
	case CA_LEAVE: {
		int r = pick_joined(x, c);
		if (r >= 0) {
			c_room_op(x, c, RELAY_MSG_LEAVE_ROOM, (unsigned)r);
			c->joined &= ~(1ull << r);
		}
		break;
	}
	case CA_PAUSE: /* never extended: the server flushes a fatal ERROR for 2 s only */
		c->read_only |= c->slow_reader && !x->o->slow_writers;
		if (c->paused_until <= now)
			c->paused_until = now + (c->slow_reader ? 200 + rb_rand(&x->rng) % 800
								: 20 + rb_rand(&x->rng) % 400) * 1000000u;
		break;
	case CA_RST:
	case CA_FIN:
		c_reopen(x, c, a == CA_RST);
		break;
	case CA_MIDFRAME: {
		size_t n = rb_msg_frame(x->scratch, sizeof x->scratch, "chaos-0", "\"cut\"", 5);
		c_send(x, c, x->scratch, 1 + rb_rand(&x->rng) % (n - 1));
		c_reopen(x, c, rb_rand(&x->rng) % 2);
		break;
	}
	case CA_VIOLATE: {
		uint8_t bad[8] = { 0, 0, 0, 4, 9, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON, '1' };
		c_send(x, c, bad, sizeof bad); /* version 9: UNSUPPORTED_VERSION, fatal */
		rb_ck_unhealthy(x->ck, c_slot(x, c));
		c->expect_close = true;
		c->violated_at = now;
		break;
	}
	case CA_HEARTBEAT:
		c_frame(x, c, RELAY_MSG_HEARTBEAT, "{\"t\":1}", -1);
		break;
	default:
		break;
	}
}

static void on_error_frame(struct chaos *x, struct chaos_client *c, const struct relay_frame *f)
{
	struct relay_json_field code = { .key = "code" };
	enum relay_err e = RELAY_ERR_NONE;
	if (relay_json_parse(f->payload, f->len, &code, 1, NULL) == 0 && code.raw.n >= 2)
		e = relay_err_from_name((const char *)code.raw.p + 1, code.raw.n - 2);
	if (e == RELAY_ERR_SLOW_CONSUMER) {
		rb_ck_unhealthy(x->ck, c_slot(x, c));
		c->slow = true;
		x->slow_drops++;
	} else if (c->expect_close && e == RELAY_ERR_UNSUPPORTED_VERSION) {
		x->expected_fatal++;
	} else {
		x->errors++;
		if (x->errors <= 5)
			fprintf(stderr, "relay-bench: chaos: unexpected ERROR %.*s\n", (int)f->len,
				(const char *)f->payload);
	}
}

static void c_read(struct chaos *x, struct chaos_client *c)
{
	ssize_t r = read(c->fd, x->scratch, sizeof x->scratch);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		if (!c->expect_close && !c->slow && ++x->unexpected_closes <= 3)
			fprintf(stderr,
				"relay-bench: chaos: client %u%s closed by the server (%s) without a "
				"fatal ERROR first; %zu bytes of a frame unread\n",
				c_slot(x, c), c->slow_reader ? " (slow reader)" : "",
				r ? strerror(errno) : "EOF", relay_decoder_pending(&c->dec));
		c_reopen(x, c, false);
		return;
	}
	struct relay_frame f;
	enum relay_decode_status st;
	relay_decoder_feed(&c->dec, x->scratch, (size_t)r);
	while ((st = relay_decoder_next_from_server(&c->dec, &f)) == RELAY_DECODE_FRAME) {
		if (f.type == RELAY_MSG_MESSAGE)
			x->delivered++;
		if (f.type == RELAY_MSG_ERROR)
			on_error_frame(x, c, &f);
		else
			rb_ck_frame(x->ck, c_slot(x, c), &f);
	}
	if (st != RELAY_DECODE_NEED_MORE) { /* ERROR or NOMEM */
		x->errors++;
		c_reopen(x, c, true);
	}
}

static void c_flush(struct chaos *x, struct chaos_client *c)
{
	if (c->fd < 0 || c->out.len == c->out.off)
		return;
	ssize_t w = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
	if (w > 0) {
		c->out.off += (size_t)w;
		c_wrote(x, c, w);
	}
}

static void chaos_tick(struct chaos *x, uint64_t now)
{
	for (unsigned i = 0; i < x->n; i++) {
		struct chaos_client *c = &x->cl[i];
		if (c->fd < 0) {
			c_open(x, c);
			continue;
		}
		if (c->expect_close) { /* wait for the server to close it */
			if (now - c->violated_at > 3000000000ull) {
				x->not_closed++; /* a fatal error must close the connection */
				c_reopen(x, c, true);
			}
			continue;
		}
		unsigned roll = (unsigned)(rb_rand(&x->rng) % 1000);
		for (int a = 0; a < CA_NACTS; a++)
			if (roll < act_odds[a]) {
				if (!c->read_only || a == CA_PAUSE || a == CA_RST || a == CA_FIN)
					act(x, c, (enum chaos_act)a, now);
				break;
			}
	}
}

static void chaos_poll(struct chaos *x, struct pollfd *pf, int timeout_ms, uint64_t now)
{
	for (unsigned i = 0; i < x->n; i++) {
		struct chaos_client *c = &x->cl[i];
		pf[i].fd = c->fd;
		pf[i].events = 0;
		if (c->fd >= 0 && c->paused_until <= now)
			pf[i].events |= POLLIN;
		if (c->fd >= 0 && c->out.len > c->out.off)
			pf[i].events |= POLLOUT;
	}
	if (poll(pf, x->n, timeout_ms) <= 0)
		return;
	for (unsigned i = 0; i < x->n; i++) {
		struct chaos_client *c = &x->cl[i];
		if (c->fd < 0 || pf[i].fd != c->fd)
			continue;
		if (pf[i].revents & POLLOUT)
			c_flush(x, c);
		if (pf[i].revents & (POLLIN | POLLHUP | POLLERR))
			c_read(x, c);
	}
}

/* A fresh pair must still work: join, message, heartbeat echo. */
static bool check_answers(struct chaos *x, char *why, size_t wl)
{
	struct rb_sync a, b;
	uint8_t pl[256], got[256];
	bool ok = false;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.fd = b.fd = -1;
	if (rb_sync_open(&a, &x->addr) || rb_sync_open(&b, &x->addr) ||
	    rb_sync_hello_join(&b, "chaos-check", 3000) || rb_sync_hello_join(&a, "chaos-check", 3000)) {
		snprintf(why, wl, "cannot connect/join after chaos");
		goto out;
	}
	size_t n = rb_msg_frame(pl, sizeof pl, "chaos-check", "\"still here\"", 12);
	long got_n;
	if (rb_sync_send(&a, pl, n) || (got_n = rb_sync_content(&b, got, sizeof got, 3000)) != 12 ||
	    memcmp(got, "\"still here\"", 12) != 0) {
		snprintf(why, wl, "message not relayed after chaos");
		goto out;
	}
	if (rb_sync_send_frame(&a, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON, "{}", 2) ||
	    rb_sync_expect(&a, RELAY_MSG_HEARTBEAT, pl, sizeof pl, NULL, 3000)) {
		snprintf(why, wl, "no heartbeat echo after chaos");
		goto out;
	}
	ok = true;
out:
	rb_sync_close(&a);
	rb_sync_close(&b);
	return ok;
}

/* Gauges that must read 0 once every client is gone. */
static const char *const zero_gauges[] = {
	"relay_connections", "relay_rooms", "relay_room_memberships",
	"relay_outbound_queued_bytes",
};
#define NZERO (sizeof zero_gauges / sizeof zero_gauges[0])

/* Polls the metrics endpoint until every gauge reads 0 (or 5 s pass). */
static bool check_metrics(struct chaos *x, struct rb_report *r, char *why, size_t wl)
{
	static char body[1 << 20];
	double v[NZERO];
	uint64_t end = rb_now_ns() + 5000000000ull;
	for (;;) {
		long n = rb_http_get(x->o->metrics_url, body, sizeof body, 2000);
		if (n < 0) {
			snprintf(why, wl, "GET %s: %s", x->o->metrics_url, strerror((int)-n));
			return false;
		}
		bool zero = true;
		for (size_t i = 0; i < NZERO; i++) {
			if (!rb_prom_value(body, zero_gauges[i], &v[i])) {
				snprintf(why, wl, "%s missing from metrics", zero_gauges[i]);
				return false;
			}
			zero &= v[i] == 0;
		}
		if (zero || rb_now_ns() > end)
			break;
		rb_sleep_ns(50000000);
	}
	bool ok = true;
	for (size_t i = 0; i < NZERO; i++) {
		char key[64];
		snprintf(key, sizeof key, "metrics_%s_after", zero_gauges[i] + 6);
		rb_report_kv_num(r, key, v[i], NULL);
		if (v[i] != 0 && ok) {
			snprintf(why, wl, "gauge %s did not return to zero: %g", zero_gauges[i], v[i]);
			ok = false;
		}
	}
	return ok;
}

static void rss_sample(struct chaos *x, double t)
{
	long b = rb_rss_bytes(x->o->server_pid);
	struct rss_sample *n = realloc(x->rss, (x->nrss + 1) * sizeof *n);
	if (b < 0 || !n)
		return;
	x->rss = n;
	x->rss[x->nrss++] = (struct rss_sample){ t, b };
	if (!x->o->quiet)
		fprintf(stderr, "[%6.1fs] chaos   server RSS %.1f MiB\n", t, (double)b / 1048576.0);
}

/* Flat after warm-up: with D the abuse's duration, the largest sample of the
 * last half [D/2, D] must stay within RSS_SLACK_RATIO + RSS_SLACK_BYTES of
 * the largest of the second quarter [D/4, D/2) (the first quarter is
 * warm-up: pools, hash tables and the allocator's arenas grow there). */
static bool rss_flat(struct chaos *x, struct rb_report *r, char *why, size_t wl)
{
	double d = x->o->duration;
	long ref = -1, late = -1;
	rb_report_arr_begin(r, "rss_samples");
	for (size_t i = 0; i < x->nrss; i++) {
		const struct rss_sample *s = &x->rss[i];
		if (s->t >= d / 4 && s->t < d / 2 && s->bytes > ref)
			ref = s->bytes;
		if (s->t >= d / 2 && s->bytes > late)
			late = s->bytes;
		rb_report_obj_begin(r);
		rb_report_kv_num(r, "t_s", round(s->t * 10) / 10, NULL);
		rb_report_kv_num(r, "rss_mib", round((double)s->bytes / 1048576.0 * 100) / 100, NULL);
		rb_report_obj_end(r);
	}
	rb_report_arr_end(r);
	if (ref < 0 || late < 0) {
		snprintf(why, wl, "RSS: too few samples to judge (need one in [D/4, D/2) and one "
				  "after D/2; --rss-every %g, --duration %g)", x->o->rss_every, d);
		return false;
	}
	double limit = (double)ref * (1 + RSS_SLACK_RATIO) + RSS_SLACK_BYTES;
	rb_report_kv_num(r, "rss_second_quarter_max_mib", (double)ref / 1048576.0, NULL);
	rb_report_kv_num(r, "rss_last_half_max_mib", (double)late / 1048576.0, NULL);
	rb_report_kv_num(r, "rss_limit_mib", limit / 1048576.0, NULL);
	if ((double)late > limit) {
		snprintf(why, wl, "RSS grew after warm-up: %.1f MiB in the last half, limit %.1f MiB",
			 (double)late / 1048576.0, limit / 1048576.0);
		return false;
	}
	return true;
}

static void chaos_report(struct chaos *x, struct rb_report *r)
{
	rb_report_kv_int(r, "clients", x->n);
	rb_report_kv_int(r, "rooms", x->rooms);
	for (int a = 0; a < CA_NACTS; a++)
		rb_report_kv_int(r, act_names[a], (int64_t)x->acts[a]);
	rb_report_kv_int(r, "messages_sent", (int64_t)x->sent);
	rb_report_kv_int(r, "messages_received", (int64_t)x->delivered);
	rb_report_kv_int(r, "final_messages", (int64_t)x->fences);
	rb_report_kv_int(r, "reconnects", (int64_t)x->reconnects);
	rb_report_kv_int(r, "expected_fatal_errors", (int64_t)x->expected_fatal);
	rb_report_kv_int(r, "slow_consumer_drops", (int64_t)x->slow_drops);
	rb_report_kv_int(r, "unexpected_errors", (int64_t)x->errors);
	rb_report_kv_int(r, "unexpected_closes", (int64_t)x->unexpected_closes);
	rb_report_kv_int(r, "connect_failures", (int64_t)x->connect_fail);
	rb_report_kv_int(r, "violations_not_closed", (int64_t)x->not_closed);
}

/* Keeps the first failure's reason. */
static void first_why(char *why, size_t wl, const char *text)
{
	if (!why[0] && text[0])
		snprintf(why, wl, "%s", text);
}

/* The abuse is over: every healthy client sends one more message to each of
 * its rooms (so every open membership has something required to wait for),
 * then all read, unpaused, until the checker owes nothing or --drain passes.
 * Nobody reconnects any more. Returns the seconds it took. */
static double chaos_drain(struct chaos *x, struct pollfd *pf)
{
	uint64_t t0 = rb_now_ns(), end = t0 + (uint64_t)(x->o->drain * 1e9);
	x->draining = true;
	for (unsigned i = 0; i < x->n; i++) {
		struct chaos_client *c = &x->cl[i];
		c->paused_until = 0;
		if (c->fd < 0 || c->expect_close || c->slow || c->read_only)
			continue;
		for (unsigned room = 0; room < x->rooms; room++)
			if (c->joined >> room & 1) {
				c_publish(x, c, room, RB_CK_CONTENT_MIN + 8);
				x->fences++;
			}
	}
	for (uint64_t now = t0; now < end; now = rb_now_ns()) {
		chaos_poll(x, pf, 2, now);
		if (rb_ck_idle(x->ck) && rb_ck_outstanding(x->ck, false) == 0)
			break;
	}
	chaos_poll(x, pf, 0, rb_now_ns());
	return (double)(rb_now_ns() - t0) / 1e9;
}

static void chaos_progress(struct chaos *x, uint64_t now, uint64_t t0)
{
	fprintf(stderr, "[%6.1fs] chaos   sent %llu  received %llu  reconnects %llu  "
		"errors %llu  violations %llu\n", (double)(now - t0) / 1e9,
		(unsigned long long)x->sent, (unsigned long long)x->delivered,
		(unsigned long long)x->reconnects,
		(unsigned long long)(x->errors + x->unexpected_closes),
		(unsigned long long)rb_ck_violations(x->ck));
}

/* The random part: --duration seconds of ticks, with RSS samples. */
static void chaos_abuse(struct chaos *x, struct pollfd *pf)
{
	const struct rb_opts *o = x->o;
	bool rss = o->rss_every > 0 && o->server_pid > 0;
	uint64_t t0 = rb_now_ns(), end = t0 + (uint64_t)(o->duration * 1e9), next = t0, last = t0;
	uint64_t next_rss = t0, rss_step = (uint64_t)(o->rss_every * 1e9);
	for (uint64_t now = t0; now < end; now = rb_now_ns()) {
		if (now >= next) {
			chaos_tick(x, now);
			next = now + TICK_NS;
		}
		if (rss && now >= next_rss) {
			rss_sample(x, (double)(now - t0) / 1e9);
			next_rss += rss_step;
		}
		if (!o->quiet && now - last >= 1000000000u) {
			chaos_progress(x, now, t0);
			last = now;
		}
		chaos_poll(x, pf, 2, now);
	}
	if (rss)
		rss_sample(x, (double)(rb_now_ns() - t0) / 1e9);
}

int rb_wl_chaos(const struct rb_opts *o, struct rb_report *r)
{
	if (o->proto != RB_PROTO_RELAY) {
		fprintf(stderr, "relay-bench: chaos speaks only --proto relay\n");
		return 2;
	}
	struct chaos *x = calloc(1, sizeof *x);
	if (!x)
		return 2;
	x->o = o;
	x->n = o->conns;
	x->rng = o->seed;
	x->rooms = o->rooms > CHAOS_ROOMS_MAX ? CHAOS_ROOMS_MAX : o->rooms < 2 ? 4 : o->rooms;
	if (rb_resolve(o->host, o->port, &x->addr) < 0) {
		free(x);
		return 2;
	}
	rb_raise_nofile();
	x->cl = calloc(x->n, sizeof *x->cl);
	x->ck = rb_ck_new(x->n, x->rooms);
	struct pollfd *pf = calloc(x->n, sizeof *pf);
	if (!x->cl || !pf || !x->ck) {
		rb_ck_free(x->ck);
		free(x->cl);
		free(pf);
		free(x);
		return 2;
	}
	for (unsigned i = 0; i < x->n; i++)
		c_open(x, &x->cl[i]);
	chaos_abuse(x, pf);
	double drain_s = chaos_drain(x, pf);
	rb_ck_outstanding(x->ck, true); /* what is still owed now is missing */
	for (unsigned i = 0; i < x->n; i++)
		c_close(x, &x->cl[i], i % 2 == 0);
	chaos_report(x, r);
	rb_report_kv_num(r, "drain_s", drain_s, "s");
	rb_ck_report(x->ck, r);
	uint64_t violations = rb_ck_violations(x->ck);
	rb_report_kv_int(r, "invariant_violations", (int64_t)violations);
	char why[200] = "", tmp[200] = "";
	bool rss = true;
	if (o->rss_every > 0 && o->server_pid > 0) {
		rss = rss_flat(x, r, tmp, sizeof tmp);
		rb_report_kv_bool(r, "rss_flat", rss);
		first_why(why, sizeof why, tmp);
	}
	bool answers = check_answers(x, tmp, sizeof tmp);
	rb_report_kv_bool(r, "server_answers", answers);
	first_why(why, sizeof why, answers ? "" : tmp);
	bool metrics = true;
	if (answers && o->metrics_url) {
		metrics = check_metrics(x, r, tmp, sizeof tmp);
		first_why(why, sizeof why, metrics ? "" : tmp);
	}
	if (o->metrics_url)
		rb_report_kv_bool(r, "gauges_back_to_zero", metrics);
	if (violations && !why[0])
		snprintf(why, sizeof why, "%llu invariant violations (see the lines above)",
			 (unsigned long long)violations);
	if (why[0])
		rb_report_kv_str(r, "why", why);
	bool ok = answers && metrics && rss && !violations && !x->errors &&
		  !x->unexpected_closes && !x->connect_fail && !x->not_closed;
	free(pf);
	free(x->cl);
	free(x->rss);
	rb_ck_free(x->ck);
	free(x);
	return ok ? 0 : 1;
}
