/* wl_frag.c -- fragmentation checks against a live relayd: frames split at
 * every byte, inside the header, inside the payload, many frames in one write,
 * and random chunking of a long stream. Each case uses fresh connections: a
 * sender whose bytes are cut up and a receiver in the same room that must
 * get every message intact and in order.
 * Threading: main thread only.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GAP_NS 300000u /* between pieces, so the server sees them apart */

struct frag_ctx {
	const struct rb_opts *o;
	struct sockaddr_in addr;
	uint64_t rng;
	char room[32];
	char why[160];
	unsigned bytes_split;
};

static int send_pieces(struct rb_sync *s, const uint8_t *p, size_t n, const size_t *cuts,
		       size_t ncuts)
{
	size_t at = 0;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;
		if (end > at) {
			int rc = rb_sync_send(s, p + at, end - at);
			if (rc < 0)
				return rc;
			rb_sleep_ns(GAP_NS);
		}
		at = end;
	}
	return 0;
}

static int send_bytewise(struct rb_sync *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = rb_sync_send(s, p + i, 1);
		if (rc < 0)
			return rc;
		rb_sleep_ns(GAP_NS / 3);
	}
	return 0;
}

static size_t frame(uint8_t *out, uint8_t type, const char *json)
{
	return relay_frame_encode(out, type, RELAY_FLAG_JSON, json, (uint32_t)strlen(json));
}

/* Receiver joins first; returns 0 with both <rx> and <tx> open. <tx> has not
 * sent anything yet. */
static int pair_open(struct frag_ctx *x, struct rb_sync *rx, struct rb_sync *tx)
{
	snprintf(x->room, sizeof x->room, "frag-%llu",
		 (unsigned long long)(rb_rand(&x->rng) % 1000000));
	int rc = rb_sync_open(rx, &x->addr);
	if (!rc)
		rc = rb_sync_hello_join(rx, x->room, 2000);
	if (rc) {
		snprintf(x->why, sizeof x->why, "receiver setup: %s", strerror(-rc));
		return rc;
	}
	rc = rb_sync_open(tx, &x->addr);
	if (rc)
		snprintf(x->why, sizeof x->why, "sender connect: %s", strerror(-rc));
	return rc;
}

static int expect_content(struct frag_ctx *x, struct rb_sync *rx, const char *want,
			  size_t wl)
{
	static uint8_t got[RELAY_DEFAULT_MAX_FRAME];
	long n = rb_sync_content(rx, got, sizeof got, 3000);
	if (n < 0) {
		snprintf(x->why, sizeof x->why, "receiver: %s", strerror((int)-n));
		return -1;
	}
	if ((size_t)n != wl || memcmp(got, want, wl) != 0) {
		snprintf(x->why, sizeof x->why, "content mismatch: got %ld bytes '%.40s'", n,
			 (const char *)got);
		return -1;
	}
	return 0;
}

static int expect_type(struct frag_ctx *x, struct rb_sync *s, uint8_t type)
{
	uint8_t pl[4096];
	int rc = rb_sync_expect(s, type, pl, sizeof pl, NULL, 3000);
	if (rc < 0)
		snprintf(x->why, sizeof x->why, "waiting for %s: %s", relay_msg_type_name(type),
			 rc == -EBADMSG ? "got ERROR" : strerror(-rc));
	return rc;
}

/* HELLO and JOIN written one byte per write(), then a MESSAGE the same way. */
static int case_byte_by_byte(struct frag_ctx *x, struct rb_sync *rx, struct rb_sync *tx)
{
	uint8_t buf[512];
	char js[96];
	snprintf(js, sizeof js, "{\"room\":\"%s\"}", x->room);
	size_t n = frame(buf, RELAY_MSG_HELLO, "{\"userId\":\"bytewise\"}");
	n += frame(buf + n, RELAY_MSG_JOIN_ROOM, js);
	if (send_bytewise(tx, buf, n) || expect_type(x, tx, RELAY_MSG_HELLO) ||
	    expect_type(x, tx, RELAY_MSG_JOIN_ROOM))
		return -1;
	static const char c[] = "\"one byte at a time \\u00e9\"";
	n = rb_msg_frame(buf, sizeof buf, x->room, c, sizeof c - 1);
	if (send_bytewise(tx, buf, n))
		return -1;
	return expect_content(x, rx, c, sizeof c - 1);
}

/* HEARTBEATs split after each of the 7 header bytes; each must echo intact. */
static int case_header_split(struct frag_ctx *x, struct rb_sync *rx, struct rb_sync *tx)
{
	(void)rx;
	for (size_t k = 1; k < RELAY_FRAME_HDR_BYTES + 1; k++) {
		uint8_t buf[64], pl[64];
		char js[32];
		int jl = snprintf(js, sizeof js, "{\"split\":%zu}", k);
		size_t n = relay_frame_encode(buf, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON, js, (uint32_t)jl);
		size_t cut = k;
		size_t plen;
		if (send_pieces(tx, buf, n, &cut, 1))
			return -1;
		int rc = rb_sync_expect(tx, RELAY_MSG_HEARTBEAT, pl, sizeof pl, &plen, 3000);
		if (rc || plen != (size_t)jl || memcmp(pl, js, plen) != 0) {
			snprintf(x->why, sizeof x->why, "heartbeat split at %zu: %s", k,
				 rc ? strerror(-rc) : "echo differs");
			return -1;
		}
	}
	return 0;
}

static int join_tx(struct frag_ctx *x, struct rb_sync *tx)
{
	return rb_sync_hello_join(tx, x->room, 3000) ? (snprintf(x->why, sizeof x->why,
								 "sender join failed"), -1)
						     : 0;
}

/* A 3000-byte MESSAGE split at several points inside its payload. */
static int case_mid_payload(struct frag_ctx *x, struct rb_sync *rx, struct rb_sync *tx)
{
	if (join_tx(x, tx))
		return -1;
	static char c[3002];
	static uint8_t buf[4096];
	c[0] = '"';
	for (int i = 1; i < 3001; i++)
		c[i] = (char)('a' + i % 26);
	c[3001] = '"';
	for (int rep = 0; rep < 5; rep++) {
		size_t n = rb_msg_frame(buf, sizeof buf, x->room, c, sizeof c);
		size_t cuts[3] = { RELAY_FRAME_HDR_BYTES + 1 + rb_rand(&x->rng) % 20,
				   n / 2 + rb_rand(&x->rng) % 100, n - 1 - rb_rand(&x->rng) % 5 };
		if (send_pieces(tx, buf, n, cuts, 3) || expect_content(x, rx, c, sizeof c))
			return -1;
	}
	return 0;
}

/* HELLO, JOIN, 20 MESSAGEs and a HEARTBEAT in one write(); replies in order. */
static int case_combined(struct frag_ctx *x, struct rb_sync *rx, struct rb_sync *tx)
{
	static uint8_t buf[16384];
	char js[96], c[64];
	snprintf(js, sizeof js, "{\"room\":\"%s\"}", x->room);
	size_t n = frame(buf, RELAY_MSG_HELLO, "{}");
	n += frame(buf + n, RELAY_MSG_JOIN_ROOM, js);
	for (int i = 0; i < 20; i++) {
		int cl = snprintf(c, sizeof c, "{\"n\":%d}", i);
		n += rb_msg_frame(buf + n, sizeof buf - n, x->room, c, (size_t)cl);
	}
	n += frame(buf + n, RELAY_MSG_HEARTBEAT, "{\"last\":true}");
	if (rb_sync_send(tx, buf, n) || expect_type(x, tx, RELAY_MSG_HELLO) ||
	    expect_type(x, tx, RELAY_MSG_JOIN_ROOM) || expect_type(x, tx, RELAY_MSG_HEARTBEAT))
		return -1;
	for (int i = 0; i < 20; i++) {
		int cl = snprintf(c, sizeof c, "{\"n\":%d}", i);
		if (expect_content(x, rx, c, (size_t)cl))
			return -1;
	}
	return 0;
}

/* 300 MESSAGEs of 1..2000 bytes as one stream cut at random points. */
static int case_random_chunks(struct frag_ctx *x, struct rb_sync *rx, struct rb_sync *tx)
{
	if (join_tx(x, tx))
		return -1;
	enum { NMSG = 300 };
	static uint8_t stream[NMSG * 2200];
	static uint16_t lens[NMSG];
	static char c[2100];
	size_t n = 0;
	uint64_t seed = x->rng;
	for (int i = 0; i < NMSG; i++) {
		size_t cl = 3 + rb_rand(&x->rng) % 2000;
		c[0] = '"';
		for (size_t j = 1; j + 1 < cl; j++)
			c[j] = (char)('A' + (i + j) % 26);
		c[cl - 1] = '"';
		lens[i] = (uint16_t)cl;
		n += rb_msg_frame(stream + n, sizeof stream - n, x->room, c, cl);
	}
	for (size_t at = 0; at < n;) {
		size_t k = 1 + rb_rand(&x->rng) % 700;
		if (k > n - at)
			k = n - at;
		if (rb_sync_send(tx, stream + at, k))
			return -1;
		at += k;
		x->bytes_split++;
		if (rb_rand(&x->rng) % 8 == 0)
			rb_sleep_ns(GAP_NS);
	}
	for (int i = 0; i < NMSG; i++) {
		size_t cl = lens[i];
		c[0] = '"';
		for (size_t j = 1; j + 1 < cl; j++)
			c[j] = (char)('A' + (i + j) % 26);
		c[cl - 1] = '"';
		if (expect_content(x, rx, c, cl)) {
			size_t l = strlen(x->why);
			snprintf(x->why + l, sizeof x->why - l, " (message %d, seed %llu)", i,
				 (unsigned long long)seed);
			return -1;
		}
	}
	return 0;
}

/* Two and a half frames in one write, the rest of the third in the next. */
static int case_partial_tail(struct frag_ctx *x, struct rb_sync *rx, struct rb_sync *tx)
{
	if (join_tx(x, tx))
		return -1;
	static uint8_t buf[8192];
	char c[3][64];
	size_t cl[3], n = 0, ends[3];
	for (int i = 0; i < 3; i++) {
		cl[i] = (size_t)snprintf(c[i], sizeof c[i], "[%d,\"tail\"]", i);
		n += rb_msg_frame(buf + n, sizeof buf - n, x->room, c[i], cl[i]);
		ends[i] = n;
	}
	size_t cut = ends[1] + (ends[2] - ends[1]) / 2;
	if (send_pieces(tx, buf, n, &cut, 1))
		return -1;
	for (int i = 0; i < 3; i++)
		if (expect_content(x, rx, c[i], cl[i]))
			return -1;
	return 0;
}

struct frag_case {
	const char *name;
	int (*run)(struct frag_ctx *, struct rb_sync *, struct rb_sync *);
};

static const struct frag_case cases[] = {
	{ "byte_by_byte", case_byte_by_byte },
	{ "header_split", case_header_split },
	{ "mid_payload", case_mid_payload },
	{ "combined_frames", case_combined },
	{ "random_chunking", case_random_chunks },
	{ "partial_tail", case_partial_tail },
};

int rb_wl_frag(const struct rb_opts *o, struct rb_report *r)
{
	if (o->proto != RB_PROTO_RELAY) {
		fprintf(stderr, "relay-bench: frag speaks only --proto relay\n");
		return 2;
	}
	struct frag_ctx x = { .o = o, .rng = o->seed };
	if (rb_resolve(o->host, o->port, &x.addr) < 0)
		return 2;
	int failed = 0;
	rb_report_arr_begin(r, "cases");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct rb_sync rx, tx;
		memset(&rx, 0, sizeof rx);
		memset(&tx, 0, sizeof tx);
		rx.fd = tx.fd = -1;
		x.why[0] = 0;
		uint64_t t0 = rb_now_ns();
		int rc = pair_open(&x, &rx, &tx);
		if (!rc)
			rc = cases[i].run(&x, &rx, &tx);
		rb_sync_close(&tx);
		rb_sync_close(&rx);
		failed += rc != 0;
		rb_report_obj_begin(r);
		rb_report_kv_str(r, "case", cases[i].name);
		rb_report_kv_bool(r, "pass", rc == 0);
		rb_report_kv_num(r, "ms", (double)(rb_now_ns() - t0) / 1e6, NULL);
		if (rc)
			rb_report_kv_str(r, "why", x.why);
		rb_report_obj_end(r);
		if (!o->quiet)
			fprintf(stderr, "frag: %-16s %s%s%s\n", cases[i].name, rc ? "FAIL" : "pass",
				rc ? ": " : "", rc ? x.why : "");
	}
	rb_report_arr_end(r);
	rb_report_kv_int(r, "cases_failed", failed);
	return failed ? 1 : 0;
}
