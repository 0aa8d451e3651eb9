/* wl_chaos.c -- abuse for a bounded time, then check the server is whole.
 * N clients act at random every tick: join and leave rooms, send bursts
 * (some large), pause reading (slow consumers), send a heartbeat, break the
 * protocol on purpose (fatal error expected), or disconnect abruptly with RST
 * (SO_LINGER 0), with FIN, or in the middle of a frame, and come back.
 * Afterwards: a fresh pair of clients must be able to join, exchange a message
 * and get a heartbeat echo, and with --metrics the relay_connections and
 * relay_rooms gauges must return to zero.
 * Threading: main thread only (poll over the clients).
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAOS_ROOMS_MAX 64
#define TICK_NS 10000000u

struct chaos_client {
	int fd;
	struct relay_decoder dec;
	uint64_t joined;        /* bit r: member of room r (as the client sent it) */
	uint64_t paused_until;  /* ns; no reads before */
	bool expect_close;      /* we sent a fatal violation */
	uint64_t violated_at;   /* ns when it was sent */
	bool slow;              /* the server said SLOW_CONSUMER */
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
	uint64_t reconnects, connect_fail, not_closed;
	uint8_t scratch[65536];
	uint8_t big[20000];
};

static void c_send(struct chaos *x, struct chaos_client *c, const void *p, size_t n)
{
	(void)x;
	if (c->fd < 0)
		return;
	if (c->out.len == c->out.off) {
		c->out.len = c->out.off = 0;
		ssize_t w = write(c->fd, p, n);
		if (w > 0) {
			p = (const uint8_t *)p + w;
			n -= (size_t)w;
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

static void c_frame(struct chaos *x, struct chaos_client *c, uint8_t type, const char *js)
{
	uint8_t buf[256];
	size_t n = relay_frame_encode(buf, type, RELAY_FLAG_JSON, js, (uint32_t)strlen(js));
	c_send(x, c, buf, n);
}

static void c_room_op(struct chaos *x, struct chaos_client *c, uint8_t type, unsigned room)
{
	char js[64];
	snprintf(js, sizeof js, "{\"room\":\"chaos-%u\"}", room);
	c_frame(x, c, type, js);
}

static void c_open(struct chaos *x, struct chaos_client *c)
{
	memset(c, 0, sizeof *c);
	c->fd = rb_connect_blocking(&x->addr, 2000);
	if (c->fd < 0) {
		x->connect_fail++;
		c->fd = -1;
		return;
	}
	relay_decoder_init(&c->dec, RELAY_DEFAULT_MAX_FRAME);
	if (rb_rand(&x->rng) % 2)
		c_frame(x, c, RELAY_MSG_HELLO, "{\"userId\":\"chaos\",\"clientVersion\":\"1\"}");
}

static void c_close(struct chaos_client *c, bool rst)
{
	if (c->fd >= 0) {
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
	c_close(c, rst);
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
	char rn[32];
	snprintf(rn, sizeof rn, "chaos-%d", room);
	unsigned k = 1 + (unsigned)(rb_rand(&x->rng) % 20);
	for (unsigned i = 0; i < k; i++) {
		size_t cl = rb_rand(&x->rng) % 50 == 0 ? 16000 : 20 + rb_rand(&x->rng) % 300;
		x->big[0] = '"';
		x->big[cl - 1] = '"';
		size_t n = rb_msg_frame(x->scratch, sizeof x->scratch, rn, (const char *)x->big, cl);
		x->big[cl - 1] = 'z'; /* <big> is reused with other lengths */
		c_send(x, c, x->scratch, n);
		x->sent++;
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
	case CA_PAUSE:
		c->paused_until = now + (20 + rb_rand(&x->rng) % 400) * 1000000u;
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
		c->expect_close = true;
		c->violated_at = now;
		break;
	}
	case CA_HEARTBEAT:
		c_frame(x, c, RELAY_MSG_HEARTBEAT, "{\"t\":1}");
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
		if (!c->expect_close && !c->slow)
			x->unexpected_closes++;
		c_reopen(x, c, false);
		return;
	}
	struct relay_frame f;
	enum relay_decode_status st;
	relay_decoder_feed(&c->dec, x->scratch, (size_t)r);
	while ((st = relay_decoder_next(&c->dec, &f)) == RELAY_DECODE_FRAME) {
		if (f.type == RELAY_MSG_MESSAGE)
			x->delivered++;
		else if (f.type == RELAY_MSG_ERROR)
			on_error_frame(x, c, &f);
	}
	if (st != RELAY_DECODE_NEED_MORE) { /* ERROR or NOMEM */
		x->errors++;
		c_reopen(x, c, true);
	}
}

static void c_flush(struct chaos_client *c)
{
	if (c->fd < 0 || c->out.len == c->out.off)
		return;
	ssize_t w = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
	if (w > 0)
		c->out.off += (size_t)w;
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
			c_flush(c);
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

/* Polls the metrics endpoint until both gauges read 0 (or 5 s pass). */
static bool check_metrics(struct chaos *x, struct rb_report *r, char *why, size_t wl)
{
	static char body[1 << 20];
	double conns = -1, rooms = -1;
	uint64_t end = rb_now_ns() + 5000000000ull;
	for (;;) {
		long n = rb_http_get(x->o->metrics_url, body, sizeof body, 2000);
		if (n < 0) {
			snprintf(why, wl, "GET %s: %s", x->o->metrics_url, strerror((int)-n));
			return false;
		}
		bool have = rb_prom_value(body, "relay_connections", &conns) &&
			    rb_prom_value(body, "relay_rooms", &rooms);
		if (!have) {
			snprintf(why, wl, "relay_connections / relay_rooms missing from metrics");
			return false;
		}
		if ((conns == 0 && rooms == 0) || rb_now_ns() > end)
			break;
		rb_sleep_ns(50000000);
	}
	rb_report_kv_num(r, "metrics_connections_after", conns, NULL);
	rb_report_kv_num(r, "metrics_rooms_after", rooms, NULL);
	if (conns != 0 || rooms != 0) {
		snprintf(why, wl, "gauges did not return to zero: connections %g rooms %g", conns,
			 rooms);
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
	rb_report_kv_int(r, "reconnects", (int64_t)x->reconnects);
	rb_report_kv_int(r, "expected_fatal_errors", (int64_t)x->expected_fatal);
	rb_report_kv_int(r, "slow_consumer_drops", (int64_t)x->slow_drops);
	rb_report_kv_int(r, "unexpected_errors", (int64_t)x->errors);
	rb_report_kv_int(r, "unexpected_closes", (int64_t)x->unexpected_closes);
	rb_report_kv_int(r, "connect_failures", (int64_t)x->connect_fail);
	rb_report_kv_int(r, "violations_not_closed", (int64_t)x->not_closed);
}

int rb_wl_chaos(const struct rb_opts *o, struct rb_report *r)
{
	if (o->proto != RB_PROTO_RELAY) {
		fprintf(stderr, "relay-bench: chaos speaks only --proto relay\n");
		return 2;
	}
	struct chaos x = { .o = o, .n = o->conns, .rng = o->seed };
	x.rooms = o->rooms > CHAOS_ROOMS_MAX ? CHAOS_ROOMS_MAX : o->rooms < 2 ? 4 : o->rooms;
	memset(x.big, 'z', sizeof x.big);
	if (rb_resolve(o->host, o->port, &x.addr) < 0)
		return 2;
	rb_raise_nofile();
	x.cl = calloc(x.n, sizeof *x.cl);
	struct pollfd *pf = calloc(x.n, sizeof *pf);
	if (!x.cl || !pf)
		return 2;
	for (unsigned i = 0; i < x.n; i++)
		c_open(&x, &x.cl[i]);
	uint64_t t0 = rb_now_ns(), end = t0 + (uint64_t)(o->duration * 1e9), next = t0, last = t0;
	for (uint64_t now = t0; now < end; now = rb_now_ns()) {
		if (now >= next) {
			chaos_tick(&x, now);
			next = now + TICK_NS;
		}
		if (!o->quiet && now - last >= 1000000000u) {
			fprintf(stderr, "[%6.1fs] chaos   sent %llu  received %llu  reconnects %llu  "
				"errors %llu\n", (double)(now - t0) / 1e9,
				(unsigned long long)x.sent, (unsigned long long)x.delivered,
				(unsigned long long)x.reconnects,
				(unsigned long long)(x.errors + x.unexpected_closes));
			last = now;
		}
		chaos_poll(&x, pf, 2, now);
	}
	for (unsigned i = 0; i < x.n; i++)
		c_close(&x.cl[i], i % 2 == 0);
	chaos_report(&x, r);
	char why[200] = "";
	bool answers = check_answers(&x, why, sizeof why);
	rb_report_kv_bool(r, "server_answers", answers);
	bool metrics = true;
	if (answers && o->metrics_url)
		metrics = check_metrics(&x, r, why, sizeof why);
	if (o->metrics_url)
		rb_report_kv_bool(r, "gauges_back_to_zero", metrics);
	if (why[0])
		rb_report_kv_str(r, "why", why);
	free(pf);
	free(x.cl);
	bool ok = answers && metrics && !x.errors && !x.unexpected_closes && !x.connect_fail &&
		  !x.not_closed;
	return ok ? 0 : 1;
}
