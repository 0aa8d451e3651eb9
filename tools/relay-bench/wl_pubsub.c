/* wl_pubsub.c -- the workloads that run on the engine: fanout, chat (with
 * --sweep) and connect. Each builds its connection topology, drives the
 * engine's phases from the main thread and reports.
 * Threading: main thread; the engine threads do the I/O.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define RLX memory_order_relaxed
#define LD(x) atomic_load_explicit(&(x), RLX)

struct step {
	double secs, sent_ps, del_ps, offered_ps;
	uint64_t sent, delivered, expected, lost, errors, closed;
	double cpu_s;
	double bus_cpu_s; /* --bus-pid */
	double client_cpu_s;
	struct rb_hist h;
};

/* The server's CPU seconds: --node-pids summed, or --server-pid; -1 if none. */
static double server_cpu(const struct rb_opts *o)
{
	if (o->node_pids)
		return rb_cpu_seconds_list(o->node_pids);
	return o->server_pid ? rb_cpu_seconds(o->server_pid) : -1;
}

/* This process's CPU (all threads), seconds. */
static double self_cpu(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void progress(struct rb_engine *e, const char *label, double elapsed,
		     struct rb_stats *prev, double dt)
{
	struct rb_stats s;
	rb_engine_sum(e, &s);
	if (!e->o->quiet) {
		static struct rb_hist h;
		rb_engine_hist(e, &h);
		fprintf(stderr,
			"[%6.1fs] %-7s sent %10.0f/s  delivered %11.0f/s  p99 %8.3f ms  "
			"ready %llu/%zu  errors %llu\n",
			elapsed, label, (double)(LD(s.sent) - LD(prev->sent)) / dt,
			(double)(LD(s.delivered) - LD(prev->delivered)) / dt,
			ms(rb_hist_quantile(&h, 0.99)), (unsigned long long)LD(s.ready), e->nconns,
			(unsigned long long)(LD(s.errors) + LD(s.closed)));
	}
	*prev = s;
}

/* Waits for every connection to be ready. Returns seconds taken, or -1. */
static double setup_wait(struct rb_engine *e, double timeout)
{
	uint64_t t0 = rb_now_ns(), last = t0;
	struct rb_stats s, prev;
	memset(&prev, 0, sizeof prev);
	for (;;) {
		rb_engine_sum(e, &s);
		uint64_t now = rb_now_ns();
		double el = (double)(now - t0) / 1e9;
		if (LD(s.ready) == e->nconns)
			return el;
		if (LD(s.ready) + LD(s.connect_fail) + LD(s.closed) >= e->nconns &&
		    LD(s.connect_fail) + LD(s.closed) > 0)
			return -1;
		if (el > timeout)
			return -1;
		if (now - last >= 1000000000u) {
			if (!e->o->quiet)
				fprintf(stderr, "[%6.1fs] setup   connected %llu/%zu  ready %llu  "
					"failed %llu\n", el, (unsigned long long)LD(s.connected),
					e->nconns, (unsigned long long)LD(s.ready),
					(unsigned long long)(LD(s.connect_fail) + LD(s.closed)));
			last = now;
		}
		rb_sleep_ns(5000000);
	}
}

static void sleep_progress(struct rb_engine *e, const char *label, double secs,
			   uint64_t origin, struct rb_stats *prev, uint64_t *last)
{
	uint64_t end = rb_now_ns() + (uint64_t)(secs * 1e9);
	for (;;) {
		uint64_t now = rb_now_ns();
		if (now >= end)
			return;
		if (now - *last >= 1000000000u) {
			progress(e, label, (double)(now - origin) / 1e9, prev,
				 (double)(now - *last) / 1e9);
			*last = now;
		}
		uint64_t left = end - now, tick = *last + 1000000000u - now;
		rb_sleep_ns(left < tick ? left : tick);
	}
}

/* One measured step: warmup, measure, drain. */
static void run_step(struct rb_engine *e, double warmup, double duration, struct step *st)
{
	const struct rb_opts *o = e->o;
	struct rb_stats base, s0, s1, s2, prev;
	rb_engine_sum(e, &base);
	uint64_t exp0 = rb_engine_expected(e);
	uint64_t origin = rb_now_ns(), last = origin;
	prev = base;
	rb_engine_reset_hist(e);
	rb_engine_set_phase(e, RB_PH_RUN);
	sleep_progress(e, "warmup", warmup, origin, &prev, &last);
	rb_engine_sum(e, &s0);
	double cpu0 = server_cpu(o), bus0 = o->bus_pid ? rb_cpu_seconds(o->bus_pid) : -1;
	double ccpu0 = self_cpu();
	uint64_t t0 = rb_now_ns();
	rb_engine_set_phase(e, RB_PH_MEASURE);
	sleep_progress(e, "measure", duration, origin, &prev, &last);
	rb_engine_set_phase(e, RB_PH_DRAIN);
	uint64_t t1 = rb_now_ns();
	rb_engine_sum(e, &s1);
	double cpu1 = server_cpu(o), bus1 = o->bus_pid ? rb_cpu_seconds(o->bus_pid) : -1;
	double ccpu1 = self_cpu();
	uint64_t dend = t1 + (uint64_t)(o->drain * 1e9), exp1;
	for (;;) {
		rb_engine_sum(e, &s2);
		exp1 = rb_engine_expected(e);
		if (LD(s2.delivered) - LD(base.delivered) >= exp1 - exp0 || rb_now_ns() > dend)
			break;
		rb_sleep_ns(2000000);
	}
	memset(st, 0, sizeof *st);
	st->secs = (double)(t1 - t0) / 1e9;
	st->sent = LD(s1.sent) - LD(s0.sent);
	st->delivered = LD(s1.delivered) - LD(s0.delivered);
	st->sent_ps = (double)st->sent / st->secs;
	st->del_ps = (double)st->delivered / st->secs;
	st->expected = exp1 - exp0;
	uint64_t got = LD(s2.delivered) - LD(base.delivered);
	st->lost = st->expected > got ? st->expected - got : 0;
	st->errors = LD(s2.errors) - LD(base.errors);
	st->closed = LD(s2.closed) - LD(base.closed);
	st->cpu_s = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
	st->bus_cpu_s = bus0 >= 0 && bus1 >= 0 ? bus1 - bus0 : -1;
	st->client_cpu_s = ccpu1 - ccpu0;
	rb_engine_hist(e, &st->h);
}

static void report_latency(struct rb_report *r, const struct rb_hist *h)
{
	rb_report_kv_num(r, "p50_ms", ms(rb_hist_quantile(h, 0.50)), "ms");
	rb_report_kv_num(r, "p90_ms", ms(rb_hist_quantile(h, 0.90)), "ms");
	rb_report_kv_num(r, "p99_ms", ms(rb_hist_quantile(h, 0.99)), "ms");
	rb_report_kv_num(r, "p999_ms", ms(rb_hist_quantile(h, 0.999)), "ms");
	rb_report_kv_num(r, "max_ms", ms(LD(h->max)), "ms");
	rb_report_kv_int(r, "latency_samples", (int64_t)LD(h->count));
}

/* The load generator's own cost, so a table can show where the time went. */
static void report_client_cpu(struct rb_report *r, const char *prefix, const struct step *st)
{
	char k[64];
	snprintf(k, sizeof k, "%sclient_cpu_s", prefix);
	rb_report_kv_num(r, k, st->client_cpu_s, "s");
	snprintf(k, sizeof k, "%sclient_cpu_s_per_M", prefix);
	rb_report_kv_num(r, k, st->delivered ? st->client_cpu_s * 1e6 / (double)st->delivered : 0,
			 "s per M delivered");
	snprintf(k, sizeof k, "%sclient_cpu_util", prefix);
	rb_report_kv_num(r, k, st->client_cpu_s / st->secs, "cores");
}

static void report_step(struct rb_report *r, const struct rb_opts *o, const struct step *st)
{
	rb_report_kv_num(r, "measured_s", st->secs, "s");
	rb_report_kv_int(r, "sent", (int64_t)st->sent);
	rb_report_kv_num(r, "sent_per_s", round(st->sent_ps), "msgs/s");
	rb_report_kv_int(r, "delivered", (int64_t)st->delivered);
	rb_report_kv_num(r, "delivered_per_s", round(st->del_ps), "msgs/s");
	rb_report_kv_int(r, "expected_total", (int64_t)st->expected);
	rb_report_kv_int(r, "lost", (int64_t)st->lost);
	rb_report_kv_num(r, "loss_pct",
			 st->expected ? 100.0 * (double)st->lost / (double)st->expected : 0, "%");
	rb_report_kv_int(r, "errors", (int64_t)st->errors);
	rb_report_kv_int(r, "unexpected_closes", (int64_t)st->closed);
	report_latency(r, &st->h);
	if (st->bus_cpu_s >= 0) {
		rb_report_kv_num(r, "bus_cpu_s", st->bus_cpu_s, "s");
		rb_report_kv_num(r, "bus_cpu_util", st->bus_cpu_s / st->secs, "cores");
	}
	if ((o->server_pid || o->node_pids) && st->cpu_s >= 0) {
		rb_report_kv_num(r, "server_cpu_s", st->cpu_s, "s");
		rb_report_kv_num(r, "server_cpu_s_per_M",
				 st->delivered ? st->cpu_s * 1e6 / (double)st->delivered : 0,
				 "s per M delivered");
		rb_report_kv_num(r, "server_cpu_util", st->cpu_s / st->secs, "cores");
	}
	report_client_cpu(r, "", st);
}

static bool step_ok(const struct rb_opts *o, const struct step *st)
{
	return !st->errors && !st->closed &&
	       (double)st->lost <= o->loss_allowed * (double)st->expected;
}

static int setup_or_fail(struct rb_engine *e, struct rb_report *r, double *secs)
{
	if (rb_engine_start(e) < 0) {
		fprintf(stderr, "relay-bench: cannot start threads\n");
		return -1;
	}
	*secs = setup_wait(e, e->o->setup_timeout);
	struct rb_stats s;
	rb_engine_sum(e, &s);
	rb_report_kv_int(r, "connections", (int64_t)e->nconns);
	if (*secs < 0) {
		fprintf(stderr, "relay-bench: setup failed: %llu of %zu connections ready, "
			"%llu connect failures, %llu closed, %llu errors\n",
			(unsigned long long)LD(s.ready), e->nconns,
			(unsigned long long)LD(s.connect_fail), (unsigned long long)LD(s.closed),
			(unsigned long long)LD(s.errors));
		rb_report_kv_int(r, "ready", (int64_t)LD(s.ready));
		rb_report_kv_int(r, "connect_failures", (int64_t)LD(s.connect_fail));
		return -1;
	}
	rb_report_kv_num(r, "setup_s", *secs, "s");
	return 0;
}

static void report_server(struct rb_report *r, const struct rb_opts *o)
{
	if (o->server_pid) {
		long rss = rb_rss_bytes(o->server_pid);
		rb_report_kv_int(r, "server_rss_bytes", rss);
	}
}

/* ---- fanout ----------------------------------------------------------------- */

int rb_wl_fanout(const struct rb_opts *o, struct rb_report *r)
{
	struct rb_engine e;
	size_t per = (size_t)o->subs + o->pubs;
	if (rb_engine_init(&e, o, per * o->rooms, o->rooms) < 0)
		return 2;
	uint32_t pubid = 0;
	for (uint32_t room = 0; room < o->rooms; room++) {
		e.rooms[room].receivers = o->subs;
		for (size_t k = 0; k < per; k++) {
			/* interleave rooms so threads share every room's load */
			struct bconn *c = &e.conns[k * o->rooms + room];
			c->room = room;
			c->role = k < o->pubs ? RB_ROLE_PUB : RB_ROLE_SUB;
			c->id = k < o->pubs ? pubid++ : (uint32_t)(k * o->rooms + room);
			/* publishers on the first node, subscribers round-robin */
			c->node = k < o->pubs ? 0 : (uint8_t)((k - o->pubs) % e.naddrs);
		}
	}
	rb_report_kv_int(r, "rooms", o->rooms);
	rb_report_kv_int(r, "subscribers_per_room", o->subs);
	rb_report_kv_int(r, "publishers_per_room", o->pubs);
	rb_report_kv_int(r, "payload_bytes", o->size);
	if (o->proto == RB_PROTO_RELAY)
		rb_report_kv_str(r, "framing", o->binary ? "binary" : "json");
	if (o->rate > 0)
		rb_report_kv_num(r, "rate_per_publisher", o->rate, "msgs/s");
	else
		rb_report_kv_int(r, "window_per_publisher", o->window);
	double setup;
	int rc = 2;
	if (e.naddrs > 1)
		rb_report_kv_int(r, "nodes", e.naddrs);
	if (setup_or_fail(&e, r, &setup) == 0) {
		struct step st;
		rb_sleep_ns((uint64_t)(o->settle * 1e9));
		run_step(&e, o->warmup, o->duration, &st);
		report_step(r, o, &st);
		report_server(r, o);
		rc = step_ok(o, &st) ? 0 : 1;
	}
	rb_engine_stop(&e);
	rb_engine_free(&e);
	return rc;
}

/* ---- chat --------------------------------------------------------------------- */

static void chat_topology(struct rb_engine *e, const struct rb_opts *o)
{
	bool split = o->proto == RB_PROTO_REDIS; /* subscribed RESP2 conns cannot publish */
	size_t per = split ? 2u * o->subs : o->subs;
	e->chat = true;
	for (uint32_t room = 0; room < o->rooms; room++) {
		e->rooms[room].receivers = o->subs - 1;
		for (size_t k = 0; k < per; k++) {
			struct bconn *c = &e->conns[k * o->rooms + room];
			uint32_t member = (uint32_t)(k % o->subs);
			c->room = room;
			c->id = room * o->subs + member;
			c->role = !split ? RB_ROLE_BOTH : k < o->subs ? RB_ROLE_SUB : RB_ROLE_PUB;
		}
	}
}

static void report_sweep_row(struct rb_report *r, double rate, const struct step *st,
			     bool pass)
{
	rb_report_obj_begin(r);
	rb_report_kv_num(r, "rate_per_member", rate, NULL);
	rb_report_kv_num(r, "offered_per_s", round(st->offered_ps), NULL);
	rb_report_kv_num(r, "sent_per_s", round(st->sent_ps), NULL);
	rb_report_kv_num(r, "delivered_per_s", round(st->del_ps), NULL);
	rb_report_kv_num(r, "p99_ms", ms(rb_hist_quantile(&st->h, 0.99)), NULL);
	rb_report_kv_int(r, "lost", (int64_t)st->lost);
	if (st->cpu_s >= 0)
		rb_report_kv_num(r, "server_cpu_s_per_M",
				 st->delivered ? st->cpu_s * 1e6 / (double)st->delivered : 0, NULL);
	rb_report_kv_bool(r, "pass", pass);
	rb_report_obj_end(r);
}

static int chat_sweep(struct rb_engine *e, const struct rb_opts *o, struct rb_report *r)
{
	double rate = o->rate > 0 ? o->rate : 10, best = 0, fail = 0;
	struct step st, beststep;
	memset(&beststep, 0, sizeof beststep);
	rb_report_kv_num(r, "p99_bound_ms", o->p99_bound_ms, "ms");
	rb_report_arr_begin(r, "steps");
	for (unsigned i = 0; i < o->sweep_steps; i++) {
		rb_engine_set_rate(e, rate);
		run_step(e, o->warmup, o->duration, &st);
		st.offered_ps = rate * (double)o->rooms * o->subs;
		double p99 = ms(rb_hist_quantile(&st.h, 0.99));
		bool pass = step_ok(o, &st) && p99 < o->p99_bound_ms &&
			    st.sent_ps >= 0.95 * st.offered_ps;
		if (!o->quiet)
			fprintf(stderr, "sweep: %.1f msgs/s per member -> delivered %.0f/s p99 "
				"%.3f ms lost %llu: %s\n", rate, st.del_ps, p99,
				(unsigned long long)st.lost, pass ? "pass" : "FAIL");
		report_sweep_row(r, rate, &st, pass);
		if (st.errors || st.closed)
			break; /* the server broke; stepping on measures nothing */
		if (pass) {
			best = rate;
			beststep = st;
		} else if (!fail || rate < fail) {
			fail = rate;
		}
		/* Up by the factor until a step fails (down by it while none passed),
		 * then bisect between the best pass and the lowest failure. */
		if (!fail)
			rate *= o->sweep_factor;
		else if (!best && rate / o->sweep_factor >= 0.01)
			rate /= o->sweep_factor;
		else if (!best || fail / best < 1.08)
			break;
		else
			rate = (best + fail) / 2;
	}
	rb_report_arr_end(r);
	rb_report_kv_num(r, "best_rate_per_member", best, "msgs/s");
	rb_report_kv_num(r, "best_sent_per_s", round(beststep.sent_ps), "msgs/s");
	rb_report_kv_num(r, "best_delivered_per_s", round(beststep.del_ps), "msgs/s");
	rb_report_kv_num(r, "best_p99_ms", ms(rb_hist_quantile(&beststep.h, 0.99)), "ms");
	if (beststep.cpu_s >= 0 && beststep.delivered) {
		rb_report_kv_num(r, "best_server_cpu_s_per_M",
				 beststep.cpu_s * 1e6 / (double)beststep.delivered, "s per M");
		rb_report_kv_num(r, "best_server_cpu_util", beststep.cpu_s / beststep.secs, "cores");
	}
	if (best > 0)
		report_client_cpu(r, "best_", &beststep);
	report_server(r, o);
	return best > 0 ? 0 : 1;
}

int rb_wl_chat(const struct rb_opts *o, struct rb_report *r)
{
	struct rb_engine e;
	if (o->subs < 2) {
		fprintf(stderr, "relay-bench: chat needs --members >= 2\n");
		return 2;
	}
	size_t per = o->proto == RB_PROTO_REDIS ? 2u * o->subs : o->subs;
	struct rb_opts oo = *o;
	if (oo.rate <= 0)
		oo.rate = 10;
	if (rb_engine_init(&e, &oo, per * o->rooms, o->rooms) < 0)
		return 2;
	chat_topology(&e, &oo);
	rb_report_kv_int(r, "rooms", o->rooms);
	rb_report_kv_int(r, "members_per_room", o->subs);
	rb_report_kv_int(r, "payload_bytes", o->size);
	if (o->proto == RB_PROTO_RELAY)
		rb_report_kv_str(r, "framing", o->binary ? "binary" : "json");
	double setup;
	int rc = 2;
	if (setup_or_fail(&e, r, &setup) == 0) {
		if (o->sweep) {
			rc = chat_sweep(&e, &oo, r);
		} else {
			struct step st;
			rb_report_kv_num(r, "rate_per_member", oo.rate, "msgs/s");
			run_step(&e, o->warmup, o->duration, &st);
			report_step(r, o, &st);
			report_server(r, o);
			rc = step_ok(o, &st) ? 0 : 1;
		}
	}
	rb_engine_stop(&e);
	rb_engine_free(&e);
	return rc;
}

/* ---- connect ------------------------------------------------------------------- */

int rb_wl_connect(const struct rb_opts *o, struct rb_report *r)
{
	struct rb_engine e;
	long lim = rb_raise_nofile();
	if (lim > 0 && (long)o->conns + 64 > lim) {
		fprintf(stderr, "relay-bench: %u connections need more than the open-file "
			"limit %ld\n", o->conns, lim);
		return 2;
	}
	uint32_t nrooms = (o->conns + o->per_room - 1) / o->per_room;
	struct rb_opts oo = *o;
	if (!oo.src_addrs)
		oo.src_addrs = o->conns > 8000 ? 8 : 1;
	if (rb_engine_init(&e, &oo, o->conns, nrooms) < 0)
		return 2;
	for (uint32_t i = 0; i < o->conns; i++) {
		e.conns[i].room = i / o->per_room;
		e.conns[i].id = i;
		e.conns[i].role = RB_ROLE_SUB;
	}
	long rss0 = o->server_pid ? rb_rss_bytes(o->server_pid) : -1;
	rb_report_kv_int(r, "rooms", nrooms);
	rb_report_kv_int(r, "per_room", o->per_room);
	rb_report_kv_int(r, "source_addresses", oo.src_addrs);
	rb_engine_set_phase(&e, RB_PH_IDLE);
	double setup;
	int rc = 2;
	if (setup_or_fail(&e, r, &setup) == 0) {
		rb_report_kv_num(r, "connect_per_s", round((double)o->conns / setup), "conns/s");
		rb_sleep_ns((uint64_t)(o->hold * 1e9));
		struct rb_stats s;
		rb_engine_sum(&e, &s);
		rb_report_kv_int(r, "connect_failures", (int64_t)LD(s.connect_fail));
		rb_report_kv_int(r, "unexpected_closes", (int64_t)LD(s.closed));
		rb_report_kv_int(r, "errors", (int64_t)LD(s.errors));
		if (o->server_pid) {
			long rss1 = rb_rss_bytes(o->server_pid);
			rb_report_kv_int(r, "server_rss_before_bytes", rss0);
			rb_report_kv_int(r, "server_rss_after_bytes", rss1);
			rb_report_kv_num(r, "server_rss_per_conn_bytes",
					 round((double)(rss1 - rss0) / o->conns), "B");
		}
		rc = LD(s.closed) || LD(s.errors) ? 1 : 0;
	}
	rb_engine_stop(&e);
	rb_engine_free(&e);
	return rc;
}
