/* history.c -- micro-benchmark of room history (src/relayd/relay/history.c)
 * without sockets: what the per-room step costs a publisher (new frame, room
 * lock, seq, ring append with eviction, unlock) alone and with a second
 * publisher contending for the same room's lock on the other core, and what
 * a resume of 100 messages costs the server (the join under the lock taking
 * references to the 100 stored frames, then queueing them into the joiner's
 * output queue as the JOIN handler does). Prints medians of several runs.
 *
 *   history-bench [--runs N] [--ms M]
 *
 * Threading: each benchmark thread is a registered QSBR reader acting as
 * one worker; no sweeper (rooms never empty here).
 */
#include "base/rcu.h"
#include "base/stats.h"
#include "net/msg.h"
#include "net/outq.h"
#include "relay/history.h"
#include "relay/room.h"

#include <pthread.h>
#include <relay/protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define PAYLOAD 64 /* content bytes, as relay-bench --size 64 */

/* A JSON delivery as relayd encodes it (before its seq), with room for the seq. */
static struct rl_msg *bench_msg(void)
{
	static char body[256];
	static size_t n;
	if (!n) {
		char content[PAYLOAD + 1];
		memset(content, 'x', PAYLOAD);
		content[PAYLOAD] = '\0';
		n = (size_t)snprintf(body, sizeof body,
				     "{\"room\":\"bench\",\"from\":\"conn-1\",\"content\":\"%s\","
				     "\"timestamp\":1732147200123}",
				     content);
	}
	struct rl_msg *m = rl_msg_new(RELAY_FRAME_HDR_BYTES + n + RL_HIST_JSON_SEQ_MAX, 2);
	if (!m)
		abort();
	relay_frame_encode(m->data, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, body, (uint32_t)n);
	m->len = (uint32_t)(RELAY_FRAME_HDR_BYTES + n);
	return m;
}

struct pub_arg {
	unsigned w;
	struct rl_room *room;
	double seconds;
	int history; /* 0: frame only (what relayd does without history) */
	long ops;
	pthread_barrier_t *start;
};

static void *pub_thread(void *arg)
{
	struct pub_arg *a = arg;
	struct rl_stats *st = rl_stats_slot(a->w);
	struct rl_hist *h = rl_room_hist(a->room);
	rcu_register_thread();
	pthread_barrier_wait(a->start);
	double end = bench_wall_s() + a->seconds;
	long ops = 0;
	while ((ops & 255) || bench_wall_s() < end) {
		struct rl_msg *m = bench_msg();
		if (a->history) {
			rl_hist_lock(h);
			rl_hist_append(h, m, RL_HIST_JSON, 0, st);
			rl_hist_unlock(h);
		}
		rl_msg_put(m);
		ops++;
	}
	a->ops = ops;
	rl_rcu_offline();
	rcu_unregister_thread();
	return NULL;
}

/* ns per publish with <nthreads> publishers, each on room <rooms>[k]. */
static double run_pub(struct rl_room **rooms, unsigned nthreads, int history, double seconds)
{
	pthread_t th[2];
	struct pub_arg a[2];
	pthread_barrier_t b;
	pthread_barrier_init(&b, NULL, nthreads);
	for (unsigned k = 0; k < nthreads; k++) {
		a[k] = (struct pub_arg){k, rooms[k], seconds, history, 0, &b};
		pthread_create(&th[k], NULL, pub_thread, &a[k]);
	}
	long ops = 0;
	for (unsigned k = 0; k < nthreads; k++) {
		pthread_join(th[k], NULL);
		ops += a[k].ops;
	}
	pthread_barrier_destroy(&b);
	/* per publish as each publisher sees it: wall time x threads / ops */
	return seconds * nthreads * 1e9 / (double)ops;
}

/* One resume of 100: join with since = N - 100 under the lock (100
 * references), queue the 100 frames into an output queue as the JOIN
 * handler does, drop the references; then leave and empty the queue (not
 * measured). Returns microseconds. */
static double one_resume(const char *name, struct rl_segpool *pool)
{
	char epoch[RL_HIST_EPOCH_LEN];
	uint64_t n;
	struct rl_hist_join j;
	struct rl_outq q = {0};
	bool created;
	struct rl_room *r = rl_room_find_or_add((const uint8_t *)name, strlen(name), &created);
	rl_hist_position(r, epoch, &n);
	struct rl_hist_since since = {(const uint8_t *)epoch, RL_HIST_EPOCH_LEN, n - 100};
	struct rl_member me = {.who = &q, .slot = 0};

	double t0 = bench_wall_s();
	if (rl_hist_join((const uint8_t *)name, strlen(name), 1, me, &since, &j) ||
	    j.resume != RL_HIST_RECOVERED || j.nreplay != 100)
		abort();
	for (uint32_t i = 0; i < j.nreplay; i++) {
		rl_outq_push_msg(&q, pool, j.replay[i]);
		rl_msg_put(j.replay[i]);
	}
	free(j.replay);
	double us = (bench_wall_s() - t0) * 1e6;

	struct rl_member moved;
	rl_room_local_del(j.room, 1, j.idx, &moved);
	rl_room_leave(j.room);
	rl_outq_clear(&q, pool);
	return us;
}

static void report(const char *what, double *v, int runs, const char *unit)
{
	qsort(v, (size_t)runs, sizeof(*v), bench_cmp_double);
	printf("%-58s %9.1f  (%.1f - %.1f) %s\n", what, v[runs / 2], v[0], v[runs - 1], unit);
}

int main(int argc, char **argv)
{
	int runs = 7;
	double ms = 300;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--ms"))
			ms = atof(argv[i + 1]);
	}
	if (runs < 1 || runs > BENCH_MAX_RUNS)
		runs = 7;
	struct rl_history_cfg cfg = {
	    .size = 100, .room_bytes = 1 << 20, .total_bytes = 256u << 20, .ttl_ms = 300000};
	if (rl_stats_init(2) || rl_history_init(&cfg) || rl_rooms_init(2))
		return 1;
	rcu_register_thread();
	/* Rooms "a" and "b", each with one member (worker 0) so they never
	 * empty, each filled with history_size messages (steady-state eviction). */
	struct rl_room *room[2];
	const char *names[2] = {"a", "b"};
	for (int k = 0; k < 2; k++) {
		struct rl_hist_join j;
		struct rl_member m = {.who = &room[k], .slot = 0};
		if (rl_hist_join((const uint8_t *)names[k], 1, 0, m, NULL, &j))
			return 1;
		room[k] = j.room;
		for (int i = 0; i < 200; i++) {
			struct rl_msg *msg = bench_msg();
			rl_hist_lock(rl_room_hist(room[k]));
			rl_hist_append(rl_room_hist(room[k]), msg, RL_HIST_JSON, 0,
				       rl_stats_slot(0));
			rl_hist_unlock(rl_room_hist(room[k]));
			rl_msg_put(msg);
		}
	}
	rl_rcu_offline();
	printf("history-bench: %d runs of %.0f ms, %d-byte content, history_size 100\n", runs, ms,
	       PAYLOAD);
	double v[BENCH_MAX_RUNS];
	struct rl_room *same[2] = {room[0], room[0]}, *apart[2] = {room[0], room[1]};
	for (int r = 0; r < runs; r++)
		v[r] = run_pub(apart, 1, 0, ms / 1000);
	report("publish without history (frame alloc + free), 1 thread", v, runs, "ns/msg");
	for (int r = 0; r < runs; r++)
		v[r] = run_pub(apart, 1, 1, ms / 1000);
	report("publish with history (+ lock, seq, ring, evict), 1 thread", v, runs, "ns/msg");
	for (int r = 0; r < runs; r++)
		v[r] = run_pub(apart, 2, 1, ms / 1000);
	report("publish with history, 2 threads, 2 rooms", v, runs, "ns/msg");
	for (int r = 0; r < runs; r++)
		v[r] = run_pub(same, 2, 1, ms / 1000);
	report("publish with history, 2 threads, ONE room (lock contended)", v, runs, "ns/msg");

	rl_rcu_online();
	struct rl_segpool pool = {0};
	for (int r = 0; r < runs; r++) {
		double best = 1e9;
		for (int i = 0; i < 50;
		     i++) { /* each run: the median-ish of 50 is noisy; take the best */
			double us = one_resume("a", &pool);
			if (us < best)
				best = us;
		}
		v[r] = best;
	}
	report("resume of 100 messages (join + 100 refs + queue 100 frames)", v, runs, "us");
	for (int r = 0; r < runs; r++)
		v[r] = one_resume("a", &pool);
	report("resume of 100 messages, single tries", v, runs, "us");
	rl_segpool_fini(&pool);
	rl_rcu_offline();
	rcu_unregister_thread();
	rl_rooms_fini();
	rl_stats_fini();
	return 0;
}
