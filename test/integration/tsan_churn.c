/* tsan_churn.c -- room lifetime churn against a live relayd (suite 'tsan';
 * a plain executable because Criterion cannot run under ThreadSanitizer;
 * exit status 0 = pass).
 *
 * relayd --workers 4; THREADS client threads, each with CONNS connections
 * spread over the workers, join/leave/message/disconnect the same ROOMS rooms
 * for about CHURN_MS, so joins race last leaves on different workers. All
 * along, every room frame a connection receives must concern a room it is a
 * member of (between the JOIN ack and the LEAVE ack).
 * A second run has history on (--history-size, --history-ttl 0: an empty
 * room expires at once, so joins race expiry on the sweeper thread, and
 * revive rooms on other workers): a join then often resumes with "since"
 * from where the connection was, and every delivery a member gets must be
 * the room's next seq after the previous one (the ack's seq, or since.seq
 * when recovered): one order, no duplicate, no hole. Then:
 * every room must be empty again (a probe JOIN acks "members":1, retried
 * briefly because leave-on-disconnect is asynchronous), relayd must exit 0
 * on SIGTERM (an ASan/LSan build that leaks does not), and its stderr must
 * hold no sanitizer report. In the TSan build relayd itself is instrumented
 * and TSAN_OPTIONS (halt_on_error=1) reaches it through the environment.
 *
 * With the argument --limits (tsan-churn-limits), relayd also counts
 * connections per address and paces publishing and joining with rates low
 * enough that the churning connections are throttled again and again: the
 * shared address table, the buckets and the throttle list run under the
 * sanitizers too, and the checks above must hold all the same.
 *
 * Threading: main thread spawns/stops relayd; each client thread owns its
 * connections; shared state is the stop flag and the failure text. */
#include "harness.h"
#include "tsan_util.h"

#include <relay/protocol.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 6, CONNS = 3, ROOMS = 3, CHURN_MS = 3000 };

static atomic_ulong deliveries; /* room frames received and checked */

struct worker {
	const struct rl_test_server *s;
	bool history;
	unsigned seed;
	struct rl_test_client *c[CONNS];
	bool in[CONNS][ROOMS];
	/* history: the room's epoch and the last seq this connection saw */
	char epoch[CONNS][ROOMS][24];
	uint64_t last[CONNS][ROOMS];
	unsigned long ops;
};

static atomic_ulong resumes, recovered;

static const char *room_name(int r)
{
	static const char *const names[ROOMS] = {"churn-0", "churn-1", "churn-2"};
	return names[r];
}

/* Index of the room a MESSAGE frame (delivery or presence, JSON) concerns,
 * or -1. */
static int frame_room(const struct rl_test_frame *f)
{
	char room[80];
	if (f->flags != RELAY_FLAG_JSON || rl_test_json_str(f, "room", room, sizeof(room)) < 0)
		return -1;
	for (int r = 0; r < ROOMS; r++)
		if (strcmp(room, room_name(r)) == 0)
			return r;
	return -1;
}

/* Receives until a frame of <type> arrives, checking room traffic on the
 * way: a MESSAGE (delivery or presence event) for room R may only arrive
 * between the JOIN ack for R and the LEAVE ack for R on this connection
 * (joins and leaves are handled in order with the deliveries queued to the
 * connection, so nothing for R can precede the ack or follow the leave). */
static const struct rl_test_frame *wait_for(struct worker *w, int i, uint8_t type)
{
	for (;;) {
		const struct rl_test_frame *f = rl_test_recv(w->c[i], RL_TEST_REPLY_MS);
		if (f == NULL) {
			rl_tsan_failf("waiting for a reply: %s", rl_test_err());
			return NULL;
		}
		if (f->type == type)
			return f;
		if (f->type != RELAY_MSG_MESSAGE) {
			rl_tsan_failf("unexpected frame %s", rl_test_frame_str(f));
			return NULL;
		}
		int r = frame_room(f);
		if (r < 0 || !w->in[i][r]) {
			rl_tsan_failf("delivery to a non-member: %s", rl_test_frame_str(f));
			return NULL;
		}
		int64_t seq;
		if (w->history && rl_test_json_i64(f, "seq", &seq) == 0) { /* not presence */
			if ((uint64_t)seq != w->last[i][r] + 1) {
				rl_tsan_failf("out of sequence (duplicate, hole or order): %s",
					      rl_test_frame_str(f));
				return NULL;
			}
			w->last[i][r] = (uint64_t)seq;
		}
		atomic_fetch_add(&deliveries, 1);
	}
}

static bool conn_open(struct worker *w, int i)
{
	w->c[i] = rl_test_connect(w->s, RL_TEST_REPLY_MS);
	if (w->c[i] == NULL) {
		rl_tsan_failf("connect: %s", rl_test_err());
		return false;
	}
	memset(w->in[i], 0, sizeof(w->in[i]));
	/* history: its own messages come back too, so the seqs it sees have
	 * no holes of their own */
	if (w->history && rl_test_hello(w->c[i], "{\"echo\":true}", RL_TEST_REPLY_MS) == NULL) {
		rl_tsan_failf("HELLO: %s", rl_test_err());
		return false;
	}
	return true; /* epoch and last seq stay: a new connection resumes */
}

/* A JOIN of a room this connection is not in, with history: resumes from
 * where it was (when it has been in the room) half of the time. The ack
 * sets where deliveries continue from. */
static bool history_join(struct worker *w, int i, int r)
{
	bool since = w->epoch[i][r][0] && rand_r(&w->seed) % 2;
	int rc = since ? rl_test_send_json(w->c[i], RELAY_MSG_JOIN_ROOM,
					   "{\"room\":\"%s\",\"since\":{\"epoch\":\"%s\",\"seq\":%llu}}",
					   room_name(r), w->epoch[i][r],
					   (unsigned long long)w->last[i][r])
		       : rl_test_send_json(w->c[i], RELAY_MSG_JOIN_ROOM, "{\"room\":\"%s\"}",
					   room_name(r));
	if (rc != 0) {
		rl_tsan_failf("send: %s", rl_test_err());
		return false;
	}
	const struct rl_test_frame *f = wait_for(w, i, RELAY_MSG_JOIN_ROOM);
	if (f == NULL)
		return false;
	int64_t seq;
	bool rec = false;
	char epoch[24];
	if (rl_test_json_i64(f, "seq", &seq) != 0 ||
	    rl_test_json_str(f, "epoch", epoch, sizeof(epoch)) != 16 ||
	    (since && rl_test_json_bool(f, "recovered", &rec) != 0)) {
		rl_tsan_failf("join ack without a position: %s", rl_test_frame_str(f));
		return false;
	}
	if (since) {
		atomic_fetch_add(&resumes, 1);
		atomic_fetch_add(&recovered, rec);
	}
	if (since && rec && strcmp(epoch, w->epoch[i][r]) != 0) {
		rl_tsan_failf("recovered in another epoch: %s", rl_test_frame_str(f));
		return false;
	}
	if (!rec) /* the replay, if any, continues from since.seq */
		w->last[i][r] = (uint64_t)seq;
	snprintf(w->epoch[i][r], sizeof(w->epoch[i][r]), "%s", epoch);
	w->in[i][r] = true;
	return true;
}

static bool room_op(struct worker *w, int i, int r, uint8_t type)
{
	if (w->history && type == RELAY_MSG_JOIN_ROOM && !w->in[i][r])
		return history_join(w, i, r);
	if (rl_test_send_json(w->c[i], type, "{\"room\":\"%s\"}", room_name(r)) != 0) {
		rl_tsan_failf("send: %s", rl_test_err());
		return false;
	}
	if (!wait_for(w, i, type))
		return false;
	w->in[i][r] = type == RELAY_MSG_JOIN_ROOM;
	return true;
}

static bool one_op(struct worker *w)
{
	int i = (int)(rand_r(&w->seed) % CONNS), r = (int)(rand_r(&w->seed) % ROOMS);
	unsigned op = rand_r(&w->seed) % 16;
	w->ops++;
	if (op < 6)
		return room_op(w, i, r, RELAY_MSG_JOIN_ROOM);
	if (op < 11)
		return room_op(w, i, r, RELAY_MSG_LEAVE_ROOM);
	if (op < 15) {
		if (!w->in[i][r])
			return true;
		if (rl_test_send_json(w->c[i], RELAY_MSG_MESSAGE,
				      "{\"room\":\"%s\",\"content\":{\"op\":%lu}}", room_name(r),
				      w->ops) != 0) {
			rl_tsan_failf("send: %s", rl_test_err());
			return false;
		}
		/* A HEARTBEAT round trip drains (and checks) what arrived meanwhile. */
		if (rl_test_send_frame(w->c[i], RELAY_MSG_HEARTBEAT, 0, NULL, 0) != 0) {
			rl_tsan_failf("send: %s", rl_test_err());
			return false;
		}
		return wait_for(w, i, RELAY_MSG_HEARTBEAT) != NULL;
	}
	/* Disconnect while (maybe) in rooms: relayd leaves them for us. */
	rl_test_close(w->c[i]);
	w->c[i] = NULL;
	return conn_open(w, i);
}

static void *churn_thread(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < CONNS; i++)
		if (!conn_open(w, i))
			return NULL;
	int64_t end = rl_test_now_ms() + CHURN_MS;
	while (rl_test_now_ms() < end && !rl_tsan_failed())
		if (!one_op(w))
			break;
	/* Half the connections leave explicitly, the others just disconnect. */
	for (int i = 0; i < CONNS; i++) {
		for (int r = 0; i % 2 == 0 && r < ROOMS && !rl_tsan_failed(); r++)
			if (w->in[i][r])
				room_op(w, i, r, RELAY_MSG_LEAVE_ROOM);
		rl_test_close(w->c[i]);
		w->c[i] = NULL;
	}
	return NULL;
}

/* The probe's JOIN_ROOM or LEAVE_ROOM of <room> and its ack (<status>; the
 * members count into *<members> when non-NULL). While the probe shares a
 * room with the last churners, their userLeft events (MESSAGE frames) may
 * come before the ack: skipped. 0, or -1 with the reason printed. */
static int probe_op(struct rl_test_client *p, uint8_t type, const char *room, const char *status,
		    long *members)
{
	if (rl_test_send_json(p, type, "{\"room\":\"%s\"}", room) != 0)
		return fprintf(stderr, "probe send: %s\n", rl_test_err()), -1;
	const struct rl_test_frame *f;
	do
		f = rl_test_recv(p, RL_TEST_REPLY_MS);
	while (f != NULL && f->type == RELAY_MSG_MESSAGE);
	char st[32];
	int64_t m = 0;
	if (f == NULL || f->type != type || rl_test_json_str(f, "status", st, sizeof(st)) < 0 ||
	    strcmp(st, status) != 0 || (members && rl_test_json_i64(f, "members", &m) != 0))
		return fprintf(stderr, "probe %s %s: %s\n", relay_msg_type_name(type), room,
			       f ? rl_test_frame_str(f) : rl_test_err()),
		       -1;
	if (members)
		*members = (long)m;
	return 0;
}

/* Every room must be empty: a probe join acks members:1 (retried for up to
 * 3 s while relayd processes the last disconnects), then leaves. */
static int probe_rooms(const struct rl_test_server *s)
{
	struct rl_test_client *p = rl_test_connect(s, RL_TEST_REPLY_MS);
	if (p == NULL)
		return fprintf(stderr, "probe connect: %s\n", rl_test_err()), -1;
	int rc = 0;
	for (int r = 0; r < ROOMS && rc == 0; r++) {
		int64_t deadline = rl_test_now_ms() + 3000;
		long m = -1;
		for (;;) {
			if (probe_op(p, RELAY_MSG_JOIN_ROOM, room_name(r), "joined", &m) != 0) {
				rc = -1;
				break;
			}
			if (m == 1 || rl_test_now_ms() > deadline)
				break;
			if (probe_op(p, RELAY_MSG_LEAVE_ROOM, room_name(r), "left", NULL) != 0) {
				rc = -1;
				break;
			}
			struct timespec ts = {0, 20 * 1000000}; /* state poll, not a sync */
			nanosleep(&ts, NULL);
		}
		if (rc == 0 && m != 1) {
			fprintf(stderr, "room %s still has %ld members after the churn\n",
				room_name(r), m - 1);
			rc = -1;
		}
	}
	rl_test_close(p);
	return rc;
}

/* One churn run against a relayd started with <args>. 0 = pass. */
static int churn_run(const char *name, const char *const *args, bool history)
{
	struct rl_test_server s;
	atomic_store(&deliveries, 0);
	atomic_store(&resumes, 0);
	atomic_store(&recovered, 0);
	if (rl_test_server_start(&s, args, NULL, 0) != 0) {
		fprintf(stderr, "start relayd: %s\n", rl_test_err());
		return 1;
	}
	if (rl_test_external()) {
		fprintf(stderr, "tsan-churn needs its own relayd; RELAY_TEST_ADDR set: skipped\n");
		return 77;
	}
	static struct worker w[THREADS];
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++) {
		memset(&w[t], 0, sizeof(w[t]));
		w[t].s = &s;
		w[t].history = history;
		w[t].seed = 0x5eed0u + (unsigned)t;
		pthread_create(&th[t], NULL, churn_thread, &w[t]);
	}
	unsigned long ops = 0;
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		ops += w[t].ops;
	}
	int rc = rl_tsan_verdict("churn");
	if (rc == 0 && probe_rooms(&s) != 0)
		rc = 1;
	rc |= rl_tsan_server_finish(&s, "tsan-churn", 0, NULL);
	fprintf(stderr,
		"tsan-churn (%s): %lu operations by %d threads x %d connections on %d rooms, %lu room "
		"frames checked, %lu resumes (%lu recovered): %s\n",
		name, ops, THREADS, CONNS, ROOMS, atomic_load(&deliveries), atomic_load(&resumes),
		atomic_load(&recovered), rc == 0 ? "ok" : "FAILED");
	rl_test_server_free(&s);
	return rc;
}

/* With --limits: one run with the per-client limits on (connections are
 * throttled again and again); otherwise plain v1, then history. */
int main(int argc, char **argv)
{
	static const char *const plain[] = {"--workers", "4", NULL};
	static const char *const history[] = {"--workers", "4", "--history-size", "20",
					      "--history-ttl", "0", NULL};
	static const char *const limits[] = {"--workers", "4", "--max-connections-per-ip", "1000",
					     "--publish-rate", "300", "--publish-burst", "5",
					     "--join-rate", "300", "--join-burst", "5", NULL};
	if (argc > 1 && strcmp(argv[1], "--limits") == 0)
		return churn_run("limits", limits, false);
	int rc = churn_run("v1", plain, false);
	if (rc == 0)
		rc = churn_run("history", history, true);
	return rc;
}
