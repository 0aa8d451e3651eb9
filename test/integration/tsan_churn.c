/* tsan_churn.c -- room lifetime churn against a live relayd (suite 'tsan';
 * a plain executable because Criterion cannot run under ThreadSanitizer;
 * exit status 0 = pass).
 *
 * relayd --workers 4; THREADS client threads, each with CONNS connections
 * spread over the workers, join/leave/message/disconnect the same ROOMS rooms
 * for about CHURN_MS, so joins race last leaves on different workers. All
 * along, every room frame a connection receives must concern a room it is a
 * member of (between the JOIN ack and the LEAVE ack). Then:
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

#include <relay/protocol.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 6, CONNS = 3, ROOMS = 3, CHURN_MS = 3000 };

static atomic_bool churn_failed;
static atomic_ulong deliveries; /* room frames received and checked */
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char fail_text[1024];

static void churn_fail(const char *fmt, const char *detail)
{
	pthread_mutex_lock(&fail_lock);
	if (!atomic_load(&churn_failed))
		snprintf(fail_text, sizeof(fail_text), fmt, detail);
	atomic_store(&churn_failed, true);
	pthread_mutex_unlock(&fail_lock);
}

struct worker {
	const struct rl_test_server *s;
	unsigned seed;
	struct rl_test_client *c[CONNS];
	bool in[CONNS][ROOMS];
	unsigned long ops;
};

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
static bool wait_for(struct worker *w, int i, uint8_t type)
{
	for (;;) {
		const struct rl_test_frame *f = rl_test_recv(w->c[i], RL_TEST_REPLY_MS);
		if (f == NULL) {
			churn_fail("waiting for a reply: %s", rl_test_err());
			return false;
		}
		if (f->type == type)
			return true;
		if (f->type != RELAY_MSG_MESSAGE) {
			churn_fail("unexpected frame %s", rl_test_frame_str(f));
			return false;
		}
		int r = frame_room(f);
		if (r < 0 || !w->in[i][r]) {
			churn_fail("delivery to a non-member: %s", rl_test_frame_str(f));
			return false;
		}
		atomic_fetch_add(&deliveries, 1);
	}
}

static bool conn_open(struct worker *w, int i)
{
	w->c[i] = rl_test_connect(w->s, RL_TEST_REPLY_MS);
	if (w->c[i] == NULL) {
		churn_fail("connect: %s", rl_test_err());
		return false;
	}
	memset(w->in[i], 0, sizeof(w->in[i]));
	return true;
}

static bool room_op(struct worker *w, int i, int r, uint8_t type)
{
	if (rl_test_send_json(w->c[i], type, "{\"room\":\"%s\"}", room_name(r)) != 0) {
		churn_fail("send: %s", rl_test_err());
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
			churn_fail("send: %s", rl_test_err());
			return false;
		}
		/* A HEARTBEAT round trip drains (and checks) what arrived meanwhile. */
		if (rl_test_send_frame(w->c[i], RELAY_MSG_HEARTBEAT, 0, NULL, 0) != 0) {
			churn_fail("send: %s", rl_test_err());
			return false;
		}
		return wait_for(w, i, RELAY_MSG_HEARTBEAT);
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
	while (rl_test_now_ms() < end && !atomic_load(&churn_failed))
		if (!one_op(w))
			break;
	/* Half the connections leave explicitly, the others just disconnect. */
	for (int i = 0; i < CONNS; i++) {
		for (int r = 0; i % 2 == 0 && r < ROOMS && !atomic_load(&churn_failed); r++)
			if (w->in[i][r])
				room_op(w, i, r, RELAY_MSG_LEAVE_ROOM);
		rl_test_close(w->c[i]);
		w->c[i] = NULL;
	}
	return NULL;
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
			if (rl_test_join(p, room_name(r), &m, RL_TEST_REPLY_MS) != 0) {
				fprintf(stderr, "probe join: %s\n", rl_test_err());
				rc = -1;
				break;
			}
			if (m == 1 || rl_test_now_ms() > deadline)
				break;
			if (rl_test_leave(p, room_name(r), RL_TEST_REPLY_MS) != 0) {
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

int main(int argc, char **argv)
{
	struct rl_test_server s;
	const char *plain[] = {"--workers", "4", NULL};
	const char *limits[] = {"--workers", "4", "--max-connections-per-ip", "1000",
				"--publish-rate", "300", "--publish-burst", "5",
				"--join-rate", "300", "--join-burst", "5", NULL};
	bool lim = argc > 1 && strcmp(argv[1], "--limits") == 0;
	if (rl_test_server_start(&s, lim ? limits : plain, NULL, 0) != 0) {
		fprintf(stderr, "start relayd: %s\n", rl_test_err());
		return 1;
	}
	if (rl_test_external()) {
		fprintf(stderr, "tsan-churn needs its own relayd; RELAY_TEST_ADDR set: skipped\n");
		return 77;
	}
	struct worker w[THREADS];
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct worker){.s = &s, .seed = 0x5eed0u + (unsigned)t};
		pthread_create(&th[t], NULL, churn_thread, &w[t]);
	}
	unsigned long ops = 0;
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		ops += w[t].ops;
	}
	int rc = 0;
	if (atomic_load(&churn_failed)) {
		fprintf(stderr, "churn failed: %s\n", fail_text);
		rc = 1;
	}
	if (rc == 0 && probe_rooms(&s) != 0)
		rc = 1;
	int st = rl_test_server_stop(&s, 0);
	if (st != 0) {
		fprintf(stderr, "relayd exit status %d (want 0)\n", st);
		rc = 1;
	}
	static const char *const reports[] = {"WARNING: ThreadSanitizer", "ERROR: AddressSanitizer",
					      "ERROR: LeakSanitizer", "runtime error:"};
	for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++) {
		if (rl_test_server_log_has(&s, reports[i])) {
			char tail[8192];
			rl_test_server_log_tail(&s, tail, sizeof(tail));
			fprintf(stderr, "relayd stderr has \"%s\":\n%s\n", reports[i], tail);
			rc = 1;
		}
	}
	fprintf(stderr,
		"tsan-churn: %lu operations by %d threads x %d connections on %d rooms, %lu room "
		"frames checked: %s\n",
		ops, THREADS, CONNS, ROOMS, atomic_load(&deliveries), rc == 0 ? "ok" : "FAILED");
	rl_test_server_free(&s);
	return rc;
}
