/* test_history.c -- room positions, history and resume against a live
 * relayd with --history-size (protocol-v1-ext.md sections 4, 6, 7):
 * deliveries carry their seq; every member on every worker sees one order
 * per room; JOIN with "since" replays exactly the missed messages before
 * anything live, also while a publisher floods the room; what is not
 * recovered (evicted by count, by bytes, by the server-wide budget; another
 * epoch after expiry or a restart; seq ahead); retention of empty rooms for
 * the ttl; RSS bounded by --history-total-bytes.
 * Threading: Criterion test bodies, one relayd per test; publisher threads
 * only send (it_sender). */
#include "itest.h"
#include "../ops/ops_http.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define EPOCH_LEN 16

/* What a JOIN ack with history says. */
struct jack {
	char epoch[EPOCH_LEN + 1];
	int64_t seq;
	int64_t members;
	int recovered; /* -1: absent, 0: false, 1: true */
};

static bool is_epoch(const char *e)
{
	if (strlen(e) != EPOCH_LEN)
		return false;
	for (const char *p = e; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* JSON JOIN of <room>, with "since" when <epoch> is not NULL; expects the
 * joined ack and checks its keys and their order (status, room, members,
 * epoch, seq, then recovered exactly when since was given). */
static struct jack hjoin(struct rl_test_client *c, const char *room, const char *epoch,
			 uint64_t since)
{
	struct jack a = {.recovered = -1};
	if (epoch)
		cr_assert_eq(rl_test_send_json(
				 c, RELAY_MSG_JOIN_ROOM,
				 "{\"room\":\"%s\",\"since\":{\"epoch\":\"%s\",\"seq\":%" PRIu64
				 "}}",
				 room, epoch, since),
			     0, "%s", rl_test_err());
	else
		cr_assert_eq(rl_test_send_json(c, RELAY_MSG_JOIN_ROOM, "{\"room\":\"%s\"}", room),
			     0, "%s", rl_test_err());
	const struct rl_test_frame *f = it_expect(c, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON);
	cr_assert(rl_test_json_i64(f, "members", &a.members) == 0 &&
		      rl_test_json_str(f, "epoch", a.epoch, sizeof(a.epoch)) == EPOCH_LEN &&
		      is_epoch(a.epoch) && rl_test_json_i64(f, "seq", &a.seq) == 0 && a.seq >= 0,
		  "join ack with members, epoch (16 lowercase hex) and seq: %s",
		  rl_test_frame_str(f));
	char want[256];
	snprintf(want, sizeof(want),
		 "{\"status\":\"joined\",\"room\":\"%s\",\"members\":%" PRId64
		 ",\"epoch\":\"%s\",\"seq\":%" PRId64 "%s",
		 room, a.members, a.epoch, a.seq, epoch ? ",\"recovered\":" : "}");
	cr_assert(strncmp((const char *)f->payload, want, strlen(want)) == 0,
		  "key order: want %s..., got %s", want, rl_test_frame_str(f));
	if (epoch) {
		bool rec;
		cr_assert_eq(rl_test_json_bool(f, "recovered", &rec), 0, "%s",
			     rl_test_frame_str(f));
		a.recovered = rec;
	}
	return a;
}

/* The seq of a delivery (JSON "seq", last field; or binary with 0x08). */
static uint64_t dl_seq(const struct rl_test_frame *f)
{
	if (f->flags & RELAY_FLAG_BINARY) {
		struct relay_span room, from, data;
		uint64_t seq = 0;
		cr_assert_eq(f->flags, RELAY_FLAG_BINARY | RELAY_FLAG_SEQ, "%s",
			     rl_test_frame_str(f));
		cr_assert_eq(
		    relay_bin_delivery_seq_parse(f->payload, f->len, &room, &from, &seq, &data),
		    RELAY_ERR_NONE, "%s", rl_test_frame_str(f));
		return seq;
	}
	int64_t seq;
	cr_assert_eq(rl_test_json_i64(f, "seq", &seq), 0, "no seq: %s", rl_test_frame_str(f));
	const char *p = strstr((const char *)f->payload, ",\"seq\":");
	cr_assert(p && p[strcspn(p, "}")] == '}' && p[strcspn(p, "}") + 1] == '\0',
		  "seq must be the last field: %s", rl_test_frame_str(f));
	return (uint64_t)seq;
}

/* Expects a MESSAGE delivery with seq <want>; returns it. */
static const struct rl_test_frame *expect_seq(struct rl_test_client *c, uint64_t want)
{
	const struct rl_test_frame *f = it_expect(c, RELAY_MSG_MESSAGE, -1);
	uint64_t got = dl_seq(f);
	cr_assert_eq(got, want, "want seq %" PRIu64 ", got %" PRIu64 ": %s", want, got,
		     rl_test_frame_str(f));
	return f;
}

static void pub(struct rl_test_client *c, const char *room, int n, int first)
{
	for (int i = 0; i < n; i++)
		cr_assert_eq(rl_test_send_json(c, RELAY_MSG_MESSAGE,
					       "{\"room\":\"%s\",\"content\":%d}", room, first + i),
			     0, "%s", rl_test_err());
}

/* A message whose content is a string of <n> 'x'. */
static void pub_big(struct rl_test_client *c, const char *room, size_t n)
{
	char *s = malloc(n + 64);
	cr_assert_not_null(s);
	int k = snprintf(s, n + 64, "{\"room\":\"%s\",\"content\":\"", room);
	memset(s + k, 'x', n);
	memcpy(s + k + n, "\"}", 3);
	it_send(c, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, s, strlen(s));
	free(s);
}

#define HSTART(s, ...) IT_START((s), "--history-size", "100", __VA_ARGS__)

/* ---- positions ------------------------------------------------------------- */

IT_TEST(history, hello_ack_lists_the_history_feature_last)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "1");
	struct rl_test_client *c = it_connect(&s);
	it_send(c, RELAY_MSG_HELLO, 0, NULL, 0);
	it_expect_json(c, RELAY_MSG_HELLO,
		       "{\"status\":\"connected\",\"connectionId\":*,\"serverVersion\":\"" RELAY_VERSION_STRING "\","
		       "\"protocolVersion\":1,\"maxFrameBytes\":1048576,\"heartbeatMs\":30000,"
		       "\"features\":[\"history\"]}");
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(history, deliveries_carry_seq_last_and_presence_carries_none)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "2");
	struct rl_test_client *a = it_client(&s, NULL), *b = it_client(&s, NULL);
	struct jack ja = hjoin(a, "pos", NULL, 0);
	cr_assert_eq(ja.seq, 0, "a new room is at seq 0");
	cr_assert_eq(ja.members, 1);
	struct jack jb = hjoin(b, "pos", NULL, 0);
	cr_assert_str_eq(jb.epoch, ja.epoch, "one room, one epoch");
	it_expect_json(a, RELAY_MSG_MESSAGE,
		       "{\"type\":\"userJoined\",\"room\":\"pos\",\"connectionId\":*}");
	pub(a, "pos", 2, 7);
	it_expect_json(b, RELAY_MSG_MESSAGE,
		       "{\"room\":\"pos\",\"from\":*,\"content\":7,\"timestamp\":*,\"seq\":1}");
	it_expect_json(b, RELAY_MSG_MESSAGE,
		       "{\"room\":\"pos\",\"from\":*,\"content\":8,\"timestamp\":*,\"seq\":2}");
	/* binary: flag 0x08, u64 seq after the connectionId */
	const uint8_t bin[] = {3, 'p', 'o', 's', 0xde, 0xad};
	it_send(a, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, bin, sizeof bin);
	const struct rl_test_frame *f =
	    it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY | RELAY_FLAG_SEQ);
	struct relay_span room, from, data;
	uint64_t seq = 0;
	cr_assert_eq(relay_bin_delivery_seq_parse(f->payload, f->len, &room, &from, &seq, &data),
		     RELAY_ERR_NONE);
	cr_assert_eq(seq, 3);
	cr_assert(room.n == 3 && memcmp(room.p, "pos", 3) == 0);
	cr_assert(from.n == strlen(rl_test_conn_id(a)) &&
		  memcmp(from.p, rl_test_conn_id(a), from.n) == 0);
	cr_assert(data.n == 2 && data.p[0] == 0xde && data.p[1] == 0xad);
	/* a third member: the ack's seq is the room's last */
	struct rl_test_client *c = it_client(&s, NULL);
	struct jack jc = hjoin(c, "pos", NULL, 0);
	cr_assert_eq(jc.seq, 3);
	cr_assert_eq(jc.members, 3);
	it_presence(a, 1);
	it_presence(b, 1);
	it_silent(c);
	rl_test_close(a);
	rl_test_close(b);
	rl_test_close(c);
	it_stop(&s);
}

/* Every member on every worker sees every room's messages in the same order
 * with seq 1, 2, 3... and no gap, while publishers on several workers send
 * to several rooms at once. Everyone has echo on, so every member sees
 * every message (its own included). */
enum { ONCLI = 24, OPUB = 6, ORooms = 3, OMSG = 100, OWORKERS = 4 };

struct order_view {
	int got[ORooms];
	int from[ORooms][OPUB * OMSG + 1]; /* by seq: the publisher */
	int val[ORooms][OPUB * OMSG + 1];  /* by seq: its counter */
};

static int room_index(const char *r)
{
	return r[1] - '0';
}

static void order_drain(struct rl_test_client *c, int i, struct order_view *v, char ids[OPUB][64])
{
	const struct rl_test_frame *f;
	int r;
	while ((r = rl_test_poll_frame(c, &f)) == 1) {
		char room[8], from[64];
		int64_t content;
		cr_assert(f->type == RELAY_MSG_MESSAGE &&
			      rl_test_json_str(f, "room", room, sizeof(room)) == 2 &&
			      rl_test_json_str(f, "from", from, sizeof(from)) > 0 &&
			      rl_test_json_i64(f, "content", &content) == 0,
			  "client %d: %s", i, rl_test_frame_str(f));
		int k = room_index(room);
		uint64_t seq = dl_seq(f);
		cr_assert_eq(seq, (uint64_t)v->got[k] + 1,
			     "client %d, room %s: seq %" PRIu64 " after %d (one order, no gap)", i,
			     room, seq, v->got[k]);
		int p = -1;
		for (int q = 0; q < OPUB; q++)
			if (strcmp(ids[q], from) == 0)
				p = q;
		cr_assert_geq(p, 0, "unknown sender %s", from);
		v->got[k]++;
		v->from[k][seq] = p;
		v->val[k][seq] = (int)content;
	}
	cr_assert_geq(r, 0, "client %d: %s", i, rl_test_err());
}

IT_TEST(history, every_member_on_every_worker_sees_one_order_per_room)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "4", "--debug", "--no-presence");
	struct rl_test_client *c[ONCLI];
	int per_worker[OWORKERS] = {0};
	for (int i = 0; i < ONCLI; i++) {
		c[i] = it_client(&s, "{\"echo\":true}");
		per_worker[rl_test_worker(c[i])]++;
	}
	int used = 0;
	for (int w = 0; w < OWORKERS; w++)
		used += per_worker[w] > 0;
	cr_log_info("clients per worker: %d %d %d %d", per_worker[0], per_worker[1], per_worker[2],
		    per_worker[3]);
	cr_assert_geq(used, 2, "all clients landed on one worker");
	for (int i = 0; i < ONCLI; i++)
		for (int k = 0; k < ORooms; k++) {
			char room[4];
			snprintf(room, sizeof(room), "r%d", k);
			it_join(c[i], room, i + 1);
		}
	/* Publishers 0..OPUB-1 send OMSG to each room, rooms interleaved. */
	char ids[OPUB][64];
	uint8_t *buf[OPUB];
	size_t len[OPUB];
	size_t cap = (size_t)OMSG * ORooms * 64;
	for (int p = 0; p < OPUB; p++) {
		snprintf(ids[p], sizeof(ids[p]), "%s", rl_test_conn_id(c[p]));
		buf[p] = malloc(cap);
		len[p] = 0;
		for (int m = 0; m < OMSG; m++)
			for (int k = 0; k < ORooms; k++) {
				char j[64];
				int n = snprintf(j, sizeof(j), "{\"room\":\"r%d\",\"content\":%d}",
						 k, m);
				rl_test_frame_append(buf[p], cap, &len[p], RELAY_MSG_MESSAGE,
						     RELAY_FLAG_JSON, j, (size_t)n);
			}
	}
	struct it_sender snd[OPUB];
	for (int p = 0; p < OPUB; p++)
		it_sender_start(&snd[p], c[p], buf[p], len[p]);
	static struct order_view v[ONCLI];
	memset(v, 0, sizeof(v));
	int64_t deadline = rl_test_now_ms() + RL_TEST_BULK_MS;
	for (;;) {
		bool done = true;
		for (int i = 0; i < ONCLI; i++)
			for (int k = 0; k < ORooms; k++)
				done = done && v[i].got[k] == OPUB * OMSG;
		if (done || rl_test_now_ms() > deadline)
			break;
		struct pollfd pf[ONCLI];
		for (int i = 0; i < ONCLI; i++)
			pf[i] = (struct pollfd){.fd = rl_test_fd(c[i]), .events = POLLIN};
		poll(pf, ONCLI, 100);
		for (int i = 0; i < ONCLI; i++)
			order_drain(c[i], i, &v[i], ids);
	}
	for (int p = 0; p < OPUB; p++) {
		cr_assert_eq(it_sender_join(&snd[p]), 0, "publisher %d", p);
		free(buf[p]);
	}
	for (int i = 0; i < ONCLI; i++)
		for (int k = 0; k < ORooms; k++) {
			cr_assert_eq(v[i].got[k], OPUB * OMSG,
				     "client %d (worker %d) room r%d: %d of %d", i,
				     rl_test_worker(c[i]), k, v[i].got[k], OPUB * OMSG);
			int next[OPUB] = {0};
			for (int q = 1; q <= OPUB * OMSG; q++) {
				cr_assert(
				    v[i].from[k][q] == v[0].from[k][q] &&
					v[i].val[k][q] == v[0].val[k][q],
				    "room r%d seq %d: client %d saw publisher %d's %d, client 0 "
				    "publisher %d's %d",
				    k, q, i, v[i].from[k][q], v[i].val[k][q], v[0].from[k][q],
				    v[0].val[k][q]);
				int p = v[i].from[k][q];
				cr_assert_eq(v[i].val[k][q], next[p]++, "per-sender order");
			}
		}
	for (int i = 0; i < ONCLI; i++) {
		it_ping(c[i]);
		rl_test_close(c[i]);
	}
	it_stop(&s);
}

/* ---- resume: recovered ------------------------------------------------------ */

IT_TEST(history, resume_replays_exactly_the_missed_messages_before_live_ones)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "2");
	struct rl_test_client *p = it_client(&s, NULL), *w = it_client(&s, NULL),
			      *m = it_client(&s, NULL);
	struct jack j = hjoin(p, "res", NULL, 0);
	hjoin(w, "res", NULL, 0);
	hjoin(m, "res", NULL, 0);
	it_presence(p, 2);
	it_presence(w, 1);
	pub(p, "res", 3, 1);
	for (uint64_t q = 1; q <= 3; q++) {
		expect_seq(w, q);
		expect_seq(m, q);
	}
	it_leave(m, "res");
	it_presence(p, 1);
	it_presence(w, 1);
	pub(p, "res", 5, 4);
	/* what a member saw, byte for byte */
	static char seen[5][512];
	for (int q = 0; q < 5; q++) {
		const struct rl_test_frame *f = expect_seq(w, (uint64_t)q + 4);
		snprintf(seen[q], sizeof(seen[q]), "%s", (const char *)f->payload);
	}
	struct jack r = hjoin(m, "res", j.epoch, 3);
	cr_assert_eq(r.recovered, 1, "seq 4..8 are stored");
	cr_assert_str_eq(r.epoch, j.epoch);
	cr_assert_eq(r.seq, 8);
	cr_assert_eq(r.members, 3);
	for (int q = 0; q < 5; q++) {
		const struct rl_test_frame *f = it_expect(m, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
		cr_assert_str_eq((const char *)f->payload, seen[q],
				 "replayed exactly as delivered");
	}
	it_presence(p, 1); /* presence is neither stored nor replayed */
	it_presence(w, 1);
	pub(p, "res", 1, 9);
	expect_seq(m, 9);
	expect_seq(w, 9);
	it_silent(m);
	/* A new connection resumes as well (the client disconnected). */
	rl_test_close(m);
	it_presence(p, 1);
	it_presence(w, 1);
	struct rl_test_client *m2 = it_client(&s, NULL);
	r = hjoin(m2, "res", j.epoch, 7);
	cr_assert(r.recovered == 1 && r.seq == 9);
	expect_seq(m2, 8);
	expect_seq(m2, 9);
	it_silent(m2);
	/* Nothing missed: recovered, nothing replayed. */
	rl_test_close(m2);
	struct rl_test_client *m3 = it_client(&s, NULL);
	r = hjoin(m3, "res", j.epoch, 9);
	cr_assert(r.recovered == 1 && r.seq == 9);
	it_silent(m3);
	rl_test_close(p);
	rl_test_close(w);
	rl_test_close(m3);
	it_stop(&s);
}

IT_TEST(history, a_message_with_no_other_member_is_stored_and_numbered)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "2", "--no-presence");
	struct rl_test_client *p = it_client(&s, NULL), *m = it_client(&s, NULL);
	struct jack j = hjoin(p, "alone", NULL, 0);
	pub(p, "alone", 3, 0);
	it_silent(p);
	struct jack r = hjoin(m, "alone", j.epoch, 0);
	cr_assert(r.recovered == 1 && r.seq == 3, "recovered %d seq %" PRId64, r.recovered, r.seq);
	for (uint64_t q = 1; q <= 3; q++)
		expect_seq(m, q);
	it_silent(m);
	rl_test_close(p);
	rl_test_close(m);
	it_stop(&s);
}

/* A publisher floods the room the whole time while a member leaves and
 * rejoins with since = the last seq it saw, over and over, on a connection
 * of the publisher's worker and on one of the other: what it gets, replay
 * and live together, is every seq once, in order. A member that never
 * leaves sees all of them. */
enum { FLOOD_BATCH = 50, FLOOD_ROUNDS = 40 };

/* The flooding publisher: batches of FLOOD_BATCH messages, paced a little
 * (about 1 ms between batches) so that readers keep up, until told to stop. */
struct flooder {
	pthread_t th;
	struct rl_test_client *c;
	int stop; /* atomic */
	uint64_t sent;
	int rc;
};

static void *flood_run(void *arg)
{
	struct flooder *fl = arg;
	uint8_t buf[FLOOD_BATCH * 48];
	size_t len = 0;
	for (int i = 0; i < FLOOD_BATCH; i++) {
		const char m[] = "{\"room\":\"flood\",\"content\":\"flood\"}";
		rl_test_frame_append(buf, sizeof buf, &len, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, m,
				     sizeof m - 1);
	}
	while (!__atomic_load_n(&fl->stop, __ATOMIC_RELAXED)) {
		if ((fl->rc = rl_test_send_raw(fl->c, buf, len, RL_TEST_BULK_MS)) != 0)
			break;
		fl->sent += FLOOD_BATCH;
		struct timespec ts = {0, 1000000L};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static uint64_t flood_read_until(struct rl_test_client *c, uint64_t last, uint64_t until)
{
	while (last < until) {
		const struct rl_test_frame *f = it_expect(c, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
		uint64_t q = dl_seq(f);
		cr_assert_eq(q, last + 1, "after seq %" PRIu64 " got %" PRIu64 " (%s)", last, q,
			     q <= last ? "duplicate" : "hole");
		last = q;
	}
	return last;
}

/* LEAVE while messages keep coming: those before the ack count too. */
static uint64_t flood_leave(struct rl_test_client *c, uint64_t last)
{
	cr_assert_eq(rl_test_send_json(c, RELAY_MSG_LEAVE_ROOM, "{\"room\":\"flood\"}"), 0);
	for (;;) {
		const struct rl_test_frame *f = rl_test_recv(c, RL_TEST_REPLY_MS);
		cr_assert_not_null(f, "%s", rl_test_err());
		if (f->type == RELAY_MSG_LEAVE_ROOM)
			return last;
		cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "%s", rl_test_frame_str(f));
		uint64_t q = dl_seq(f);
		cr_assert_eq(q, last + 1, "after seq %" PRIu64 " got %" PRIu64, last, q);
		last = q;
	}
}

IT_TEST(history, resume_while_a_publisher_floods_has_no_duplicate_and_no_hole)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "2", "--debug", "--no-presence", "--history-size", "100000",
		 "--history-room-bytes", "256M");
	struct rl_test_client *p = it_client(&s, NULL);
	struct rl_test_client *r[2] = {NULL, NULL};
	struct rl_test_client *extra[16];
	int nextra = 0;
	/* resumers on both workers (the publisher's and the other) */
	while ((!r[0] || !r[1]) && nextra < 16) {
		struct rl_test_client *c = it_client(&s, NULL);
		int k = rl_test_worker(c) == rl_test_worker(p) ? 0 : 1;
		if (!r[k])
			r[k] = c;
		else
			extra[nextra++] = c;
	}
	cr_assert(r[0] && r[1], "no client landed on the other worker");
	struct jack j = hjoin(p, "flood", NULL, 0);
	struct rl_test_client *w = it_client(&s, NULL);
	hjoin(w, "flood", NULL, 0);
	uint64_t last[2] = {0, 0}, wlast = 0;
	for (int k = 0; k < 2; k++)
		hjoin(r[k], "flood", NULL, 0);

	struct flooder fl = {.c = p};
	cr_assert_eq(pthread_create(&fl.th, NULL, flood_run, &fl), 0);
	int during = 0, replayed = 0;
	for (int round = 0; round < FLOOD_ROUNDS; round++) {
		int k = round % 2;
		/* read a little live traffic, leave, let traffic pass, rejoin */
		last[k] = flood_read_until(r[k], last[k], last[k] + 30);
		last[k] = flood_leave(r[k], last[k]);
		wlast = flood_read_until(w, wlast, last[k] + 30);
		struct jack a = hjoin(r[k], "flood", j.epoch, last[k]);
		cr_assert_eq(a.recovered, 1, "round %d: the gap is within the history", round);
		during += __atomic_load_n(&fl.stop, __ATOMIC_RELAXED) == 0;
		replayed += (int)(a.seq - (int64_t)last[k]);
	}
	__atomic_store_n(&fl.stop, 1, __ATOMIC_RELAXED);
	pthread_join(fl.th, NULL);
	cr_assert_eq(fl.rc, 0, "publisher: %s", rl_test_err());
	it_ping(p); /* everything it sent was handled */
	for (int k = 0; k < 2; k++)
		last[k] = flood_read_until(r[k], last[k], fl.sent);
	wlast = flood_read_until(w, wlast, fl.sent);
	cr_log_info("%d resumes during a flood of %" PRIu64 " messages, %d messages replayed",
		    FLOOD_ROUNDS, fl.sent, replayed);
	cr_assert_eq(during, FLOOD_ROUNDS);
	cr_assert_gt(replayed, FLOOD_ROUNDS, "resumes that replay nothing prove little");
	for (int k = 0; k < 2; k++) {
		it_ping(r[k]);
		rl_test_close(r[k]);
	}
	it_ping(w);
	rl_test_close(w);
	rl_test_close(p);
	for (int i = 0; i < nextra; i++)
		rl_test_close(extra[i]);
	it_stop(&s);
}

/* ---- resume: not recovered ----------------------------------------------------- */

IT_TEST(history, not_recovered_when_evicted_by_count)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "2", "--no-presence", "--history-size", "5");
	struct rl_test_client *p = it_client(&s, NULL);
	struct jack j = hjoin(p, "cnt", NULL, 0);
	pub(p, "cnt", 10, 1);
	it_ping(p);
	struct rl_test_client *m = it_client(&s, NULL);
	struct jack r = hjoin(m, "cnt", j.epoch, 4);
	cr_assert(r.recovered == 0 && r.seq == 10, "seq 5 was evicted (10 sent, 5 kept)");
	it_silent(m);
	rl_test_close(m);
	m = it_client(&s, NULL);
	r = hjoin(m, "cnt", j.epoch, 5);
	cr_assert(r.recovered == 1 && r.seq == 10, "6..10 are kept");
	for (uint64_t q = 6; q <= 10; q++)
		expect_seq(m, q);
	it_silent(m);
	rl_test_close(m);
	rl_test_close(p);
	it_stop(&s);
}

/* Each stored message counts its frame plus a fixed overhead (128 bytes):
 * ~550-byte frames, 3 of them fit 2000 bytes, 4 do not. */
IT_TEST(history, not_recovered_when_evicted_by_room_bytes)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "2", "--no-presence", "--history-size", "100",
		 "--history-room-bytes", "2000");
	struct rl_test_client *p = it_client(&s, NULL);
	struct jack j = hjoin(p, "b", NULL, 0);
	for (int i = 0; i < 6; i++)
		pub_big(p, "b", 400);
	it_ping(p);
	struct rl_test_client *m = it_client(&s, NULL);
	struct jack r = hjoin(m, "b", j.epoch, 2);
	cr_assert(r.recovered == 0 && r.seq == 6, "seq 3 was evicted by bytes");
	it_silent(m);
	rl_test_close(m);
	m = it_client(&s, NULL);
	r = hjoin(m, "b", j.epoch, 3);
	cr_assert(r.recovered == 1, "4..6 fit 2000 bytes");
	for (uint64_t q = 4; q <= 6; q++)
		expect_seq(m, q);
	it_silent(m);
	rl_test_close(m);
	rl_test_close(p);
	it_stop(&s);
}

/* The server-wide budget is spent by room A; room B has nothing of its own
 * to evict, so its messages are delivered but not stored (a hole). A
 * stores a new message by evicting its own oldest. */
IT_TEST(history, not_recovered_when_the_server_wide_budget_is_spent)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "2", "--no-presence", "--history-size", "100",
		 "--history-total-bytes", "2000");
	struct rl_test_client *p = it_client(&s, NULL), *q = it_client(&s, NULL);
	struct jack ja = hjoin(p, "A", NULL, 0);
	struct jack jb = hjoin(p, "B", NULL, 0);
	hjoin(q, "B", NULL, 0);
	for (int i = 0; i < 3; i++)
		pub_big(p, "A", 400); /* ~1650 of 2000 */
	pub_big(p, "B", 400);	      /* delivered, not stored */
	const struct rl_test_frame *f = expect_seq(q, 1);
	cr_assert_gt(f->len, 400, "B's member got it");
	struct rl_test_client *m = it_client(&s, NULL);
	struct jack r = hjoin(m, "B", jb.epoch, 0);
	cr_assert(r.recovered == 0 && r.seq == 1, "B's seq 1 could not be stored");
	it_silent(m);
	r = hjoin(m, "A", ja.epoch, 0);
	cr_assert(r.recovered == 1 && r.seq == 3, "A's messages are kept");
	for (uint64_t k = 1; k <= 3; k++)
		expect_seq(m, k);
	rl_test_close(m);
	pub_big(p, "A", 400); /* A evicts its own seq 1 */
	it_ping(p);
	m = it_client(&s, NULL);
	r = hjoin(m, "A", ja.epoch, 0);
	cr_assert_eq(r.recovered, 0, "A's seq 1 was evicted for seq 4");
	rl_test_close(m);
	m = it_client(&s, NULL);
	r = hjoin(m, "A", ja.epoch, 1);
	cr_assert(r.recovered == 1 && r.seq == 4);
	for (uint64_t k = 2; k <= 4; k++)
		expect_seq(m, k);
	rl_test_close(m);
	rl_test_close(p);
	rl_test_close(q);
	it_stop(&s);
}

IT_TEST(history, since_ahead_of_the_room_is_invalid_payload_and_joins_nothing)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "2", "--no-presence");
	struct rl_test_client *p = it_client(&s, NULL), *m = it_client(&s, NULL);
	struct jack j = hjoin(p, "ahead", NULL, 0);
	pub(p, "ahead", 2, 0);
	it_ping(p);
	cr_assert_eq(rl_test_send_json(
			 m, RELAY_MSG_JOIN_ROOM,
			 "{\"room\":\"ahead\",\"since\":{\"epoch\":\"%s\",\"seq\":3}}", j.epoch),
		     0);
	it_nonfatal_room(m, "INVALID_PAYLOAD", "ahead");
	it_send_str(m, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, "{\"room\":\"ahead\",\"content\":1}");
	it_nonfatal_room(m, "NOT_IN_ROOM", "ahead");
	struct jack r = hjoin(m, "ahead", j.epoch, 2);
	cr_assert(r.recovered == 1 && r.members == 2 && r.seq == 2,
		  "the refused join left no trace");
	/* another epoch: not ahead, just not recovered */
	rl_test_close(m);
	m = it_client(&s, NULL);
	r = hjoin(m, "ahead", "0123456789abcdef", 99);
	cr_assert_eq(r.recovered, strcmp(j.epoch, "0123456789abcdef") == 0);
	rl_test_close(m);
	rl_test_close(p);
	it_stop(&s);
}

IT_TEST(history, malformed_since_is_invalid_payload_with_the_room)
{
	static const char *const bad[] = {
	    "{\"room\":\"x\",\"since\":5}",
	    "{\"room\":\"x\",\"since\":{\"seq\":0}}",
	    "{\"room\":\"x\",\"since\":{\"epoch\":1,\"seq\":0}}",
	    "{\"room\":\"x\",\"since\":{\"epoch\":\"e\",\"seq\":-1}}",
	    "{\"room\":\"x\",\"since\":{\"epoch\":\"e\",\"seq\":1.5}}",
	    "{\"room\":\"x\",\"since\":{\"epoch\":\"e\",\"seq\":1e3}}",
	    "{\"room\":\"x\",\"since\":{\"epoch\":\"e\",\"seq\":18446744073709551616}}",
	    "{\"room\":\"x\",\"since\":{\"epoch\":\"e\",\"seq\":\"1\"}}",
	};
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "1");
	struct rl_test_client *c = it_client(&s, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		it_send_str(c, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, bad[i]);
		it_nonfatal_room(c, "INVALID_PAYLOAD", "x");
	}
	/* the largest seq is fine: another epoch, not recovered */
	struct jack r = hjoin(c, "x", "e", UINT64_MAX);
	cr_assert_eq(r.recovered, 0);
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(history, since_from_a_member_reacks_and_replays_nothing)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "1", "--no-presence");
	struct rl_test_client *p = it_client(&s, NULL), *m = it_client(&s, NULL);
	struct jack j = hjoin(p, "again", NULL, 0);
	hjoin(m, "again", NULL, 0);
	pub(p, "again", 3, 0);
	for (uint64_t q = 1; q <= 3; q++)
		expect_seq(m, q);
	struct jack r = hjoin(m, "again", j.epoch, 0);
	cr_assert(r.recovered == 0 && r.seq == 3 && r.members == 2 && !strcmp(r.epoch, j.epoch));
	it_silent(m);
	r = hjoin(m, "again", NULL, 0);
	cr_assert_eq(r.recovered, -1);
	rl_test_close(p);
	rl_test_close(m);
	it_stop(&s);
}

IT_TEST(history, binary_join_ack_is_unchanged_and_recovers_nothing)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "1", "--no-presence");
	struct rl_test_client *p = it_client(&s, NULL), *m = it_client(&s, NULL);
	hjoin(p, "bj", NULL, 0);
	pub(p, "bj", 2, 0);
	it_ping(p);
	it_send_str(m, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "bj");
	it_expect_bin(m, RELAY_MSG_JOIN_ROOM, "bj", 2);
	it_silent(m);
	pub(p, "bj", 1, 0);
	expect_seq(m, 3);
	rl_test_close(p);
	rl_test_close(m);
	it_stop(&s);
}

/* ---- retention and epochs ----------------------------------------------------- */

/* Polls /metrics until <family> (no labels) reads <want>; returns the ms it
 * took, or -1. */
static int64_t metric_wait(const char *admin, const char *family, long want, int timeout_ms)
{
	int64_t t0 = rl_test_now_ms();
	char line[128];
	snprintf(line, sizeof(line), "\n%s %ld\n", family, want);
	while (rl_test_now_ms() - t0 < timeout_ms) {
		struct ops_http_reply rep;
		char err[256];
		if (ops_http(admin, "GET", "/metrics", 2000, &rep, err, sizeof(err)) == 0) {
			bool hit = rep.status == 200 && strstr(rep.body, line);
			ops_http_free(&rep);
			if (hit)
				return rl_test_now_ms() - t0;
		}
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return -1;
}

static void admin_addr(struct rl_test_server *s, char *out, size_t cap)
{
	char line[256];
	cr_assert_eq(rl_test_server_stdout_line(s, "relayd admin on ", line, sizeof(line), 0), 0,
		     "%s", rl_test_err());
	const char *a = line + strlen("relayd admin on ");
	snprintf(out, cap, "%.*s", (int)strcspn(a, " \n"), a);
}

IT_TEST(history, an_empty_room_is_kept_for_the_ttl_and_gone_within_a_second_after)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "2", "--no-presence", "--history-ttl", "1500ms", "--admin",
	       "127.0.0.1:0");
	char admin[128];
	admin_addr(&s, admin, sizeof(admin));
	struct rl_test_client *p = it_client(&s, NULL);
	struct jack j = hjoin(p, "kept", NULL, 0);
	pub(p, "kept", 2, 0);
	it_leave(p, "kept");
	cr_assert_geq(metric_wait(admin, "relay_rooms_retained", 1, RL_TEST_REPLY_MS), 0);
	cr_assert_geq(metric_wait(admin, "relay_rooms", 1, RL_TEST_REPLY_MS), 0,
		      "a kept room is still a room");
	/* found as it was, well within the ttl */
	struct rl_test_client *m = it_client(&s, NULL);
	struct jack r = hjoin(m, "kept", j.epoch, 0);
	cr_assert(r.recovered == 1 && r.seq == 2 && r.members == 1 && !strcmp(r.epoch, j.epoch),
		  "the empty room kept its epoch, seq and messages");
	expect_seq(m, 1);
	expect_seq(m, 2);
	cr_assert_geq(metric_wait(admin, "relay_rooms_retained", 0, RL_TEST_REPLY_MS), 0,
		      "revived: not retained any more");
	/* empty again: gone at most a second after the ttl */
	it_leave(m, "kept");
	int64_t left = rl_test_now_ms();
	int64_t took = metric_wait(admin, "relay_rooms", 0, 1500 + 3000);
	cr_assert_geq(took, 0, "the room was not removed");
	int64_t after = rl_test_now_ms() - left;
	cr_log_info("room gone %" PRId64 " ms after its last leave (ttl 1500 ms)", after);
	cr_assert_geq(after, 1500 - 50, "removed before its ttl ran out (%" PRId64 " ms)", after);
	cr_assert_leq(after, 1500 + 1000, "removed later than a second after the ttl");
	r = hjoin(m, "kept", j.epoch, 2);
	cr_assert(r.recovered == 0 && r.seq == 0 && strcmp(r.epoch, j.epoch) != 0,
		  "a new room: new epoch, seq 0, not recovered");
	rl_test_close(p);
	rl_test_close(m);
	it_stop(&s);
}

/* protocol-v1-ext.md 7: empty rooms kept for history_ttl count toward
 * max_rooms (and come back as they were); presence events carry no seq. */
IT_TEST(history, empty_kept_rooms_count_toward_max_rooms)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "1", "--max-rooms", "2");
	struct rl_test_client *a = it_client(&s, NULL), *b = it_client(&s, NULL);
	struct jack j = hjoin(a, "k1", NULL, 0);
	hjoin(b, "k1", NULL, 0);
	it_expect_json(a, RELAY_MSG_MESSAGE,
		       "{\"type\":\"userJoined\",\"room\":\"k1\",\"connectionId\":*}");
	it_leave(b, "k1");
	it_expect_json(a, RELAY_MSG_MESSAGE,
		       "{\"type\":\"userLeft\",\"room\":\"k1\",\"connectionId\":*}");
	it_leave(a, "k1"); /* empty: kept for the ttl (300 s) */
	hjoin(a, "k2", NULL, 0);
	it_send_str(a, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"k3\"}");
	it_nonfatal_room(a, "TOO_MANY_ROOMS", "k3");
	struct jack r = hjoin(b, "k1", NULL, 0);
	cr_assert_str_eq(r.epoch, j.epoch, "the kept room, as it was");
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

IT_TEST(history, a_restarted_server_has_new_epochs)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	HSTART(&s, "--workers", "1", "--no-presence");
	struct rl_test_client *p = it_client(&s, NULL);
	struct jack j = hjoin(p, "rs", NULL, 0);
	pub(p, "rs", 2, 0);
	it_ping(p);
	rl_test_close(p);
	it_stop(&s);
	HSTART(&s, "--workers", "1", "--no-presence");
	struct rl_test_client *m = it_client(&s, NULL);
	struct jack r = hjoin(m, "rs", j.epoch, 2);
	cr_assert(r.recovered == 0 && r.seq == 0 && strcmp(r.epoch, j.epoch) != 0,
		  "epoch %s after %s", r.epoch, j.epoch);
	rl_test_close(m);
	it_stop(&s);
}

IT_TEST(history, metrics_count_stored_messages_bytes_resumes_and_evictions)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--no-presence", "--history-size", "3", "--admin",
		 "127.0.0.1:0");
	char admin[128];
	admin_addr(&s, admin, sizeof(admin));
	struct rl_test_client *p = it_client(&s, NULL), *m = it_client(&s, NULL);
	struct jack j = hjoin(p, "met", NULL, 0);
	pub(p, "met", 5, 0);
	it_ping(p);
	cr_assert_geq(metric_wait(admin, "relay_history_messages", 3, RL_TEST_REPLY_MS), 0);
	cr_assert_geq(metric_wait(admin, "relay_history_evictions_total", 2, RL_TEST_REPLY_MS), 0);
	hjoin(m, "met", j.epoch, 0); /* failed */
	it_leave(m, "met");
	hjoin(m, "met", j.epoch, 3); /* recovered */
	cr_assert_geq(metric_wait(admin, "relay_history_resumes_total{result=\"recovered\"}", 1,
				  RL_TEST_REPLY_MS),
		      0);
	cr_assert_geq(metric_wait(admin, "relay_history_resumes_total{result=\"failed\"}", 1,
				  RL_TEST_REPLY_MS),
		      0);
	struct ops_http_reply rep;
	char err[256];
	cr_assert_eq(ops_http(admin, "GET", "/metrics", 2000, &rep, err, sizeof(err)), 0, "%s",
		     err);
	const char *b = strstr(rep.body, "\nrelay_history_bytes ");
	cr_assert_not_null(b);
	long bytes = strtol(b + strlen("\nrelay_history_bytes "), NULL, 10);
	cr_assert(bytes > 3 * 128 && bytes < 3 * (128 + 200), "3 small messages: %ld bytes", bytes);
	ops_http_free(&rep);
	rl_test_close(p);
	rl_test_close(m);
	it_stop(&s);
}

/* ---- memory ---------------------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define HIST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HIST_ASAN 1
#endif
#endif

enum { MEM_ROOMS = 2000, MEM_PER_ROOM = 40, MEM_CONTENT = 1000 };

/* relayd's RSS growth (KiB) while one client floods MEM_ROOMS rooms with
 * MEM_PER_ROOM messages of ~1 KiB each (~80 MB if all were kept). */
static long mem_flood(struct rl_test_server *s)
{
	struct rl_test_client *p = it_client(s, NULL);
	char room[16];
	for (int k = 0; k < MEM_ROOMS; k++) {
		snprintf(room, sizeof(room), "m%d", k);
		cr_assert_eq(rl_test_send_json(p, RELAY_MSG_JOIN_ROOM, "{\"room\":\"%s\"}", room),
			     0);
	}
	for (int k = 0; k < MEM_ROOMS; k++)
		it_expect(p, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON);
	long before = rl_test_server_rss_kib(s);
	size_t per = MEM_CONTENT + 64;
	size_t cap = (size_t)MEM_ROOMS * per + 64;
	uint8_t *buf = malloc(cap);
	char *m = malloc(per);
	for (int i = 0; i < MEM_PER_ROOM; i++) {
		size_t len = 0;
		for (int k = 0; k < MEM_ROOMS; k++) {
			int n = snprintf(m, per, "{\"room\":\"m%d\",\"content\":\"", k);
			memset(m + n, 'x', MEM_CONTENT);
			memcpy(m + n + MEM_CONTENT, "\"}", 2);
			rl_test_frame_append(buf, cap, &len, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, m,
					     (size_t)n + MEM_CONTENT + 2);
		}
		cr_assert_eq(rl_test_send_raw(p, buf, len, RL_TEST_BULK_MS), 0, "%s",
			     rl_test_err());
	}
	it_ping(p);
	long after = rl_test_server_rss_kib(s);
	free(buf);
	free(m);
	rl_test_close(p);
	return after - before;
}

IT_TEST(history, rss_stays_within_the_server_wide_budget_while_thousands_of_rooms_flood)
{
#ifdef HIST_ASAN
	cr_skip_test("ASan's quarantine keeps freed memory resident");
#endif
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "2", "--no-presence", "--history-size", "1000",
		 "--history-total-bytes", "8M", "--max-rooms-per-conn", "5000");
	long grew = mem_flood(&s);
	cr_log_info("RSS grew %ld KiB with an 8 MiB budget (%d rooms x %d x ~1 KiB sent)", grew,
		    MEM_ROOMS, MEM_PER_ROOM);
	cr_assert_lt(grew, 8 * 1024 + 16 * 1024, "RSS grew %ld KiB for an 8 MiB history budget",
		     grew);
	it_stop(&s);
}
