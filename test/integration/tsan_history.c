/* tsan_history.c -- rooms with history driven directly (relay/room.c and
 * relay/history.c) from several threads, each acting as one worker, while
 * the sweeper thread expires empty rooms at once (ttl 0): joins revive empty
 * rooms and race their expiry, appends race joins that take a position and
 * copy a replay (suite 'tsan'; plain executable, exit status 0 = pass; run
 * under TSan and ASan as well as plain).
 *
 * Checked on every iteration:
 *  - no lost member: while this thread holds a membership of room X, a
 *    second join of X lands in the same room object with the same epoch
 *    (never in an expired room, never in a second live room of that name);
 *  - positions: a join's seq is at least every seq this thread saw in that
 *    room and epoch; the seqs its appends get increase; a resume from a
 *    position of the same epoch is never "ahead", and when recovered its
 *    replay is exactly the frames since+1..N, in order (read from the
 *    frames themselves);
 *  - nothing freed in use: a reference taken with rl_room_get survives
 *    expiry and a quiescent state; the name is read through it (ASan/TSan
 *    catch a use-after-free);
 *  - both races happened: some joins revived an empty room that had
 *    messages, some found their room expired and recreated (new epoch);
 *  - at the end, after a last sweep: no room, membership, retained room,
 *    stored message or byte left; rl_rooms_fini frees the rest (LSan).
 *
 * Threading: THREADS registered QSBR reader threads, thread k only touches
 * worker k's member lists; the sweeper is history.c's own thread; the main
 * thread (not a reader while the others run) inits and finis. */
#include "harness.h"
#include "base/rcu.h"
#include "base/stats.h"
#include "net/msg.h"
#include "relay/history.h"
#include "relay/room.h"
#include "tsan_readers.h"

#include <inttypes.h>
#include <pthread.h>
#include <relay/protocol.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 4, NAMES = 2, RUN_MS = 2000, APPENDS = 3 };

static const char *const names[NAMES] = {"hist-a", "hist-b"};
static atomic_bool failed;
static atomic_long iterations, revived, recreated, replayed;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "tsan-history: thread %u: ", t->w);                        \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			atomic_store(&failed, true);                                               \
			return false;                                                              \
		}                                                                                  \
	} while (0)

struct thr {
	unsigned w;
	unsigned seed;
	struct rl_stats *stats;
	char epoch[NAMES][RL_HIST_EPOCH_LEN]; /* last seen, per name ("" = none) */
	uint64_t seen[NAMES];                 /* highest seq seen in that epoch */
	struct rl_room *held;                 /* a reference kept across a quiescent state */
	const char *held_name;
};

/* The seq at the end of a JSON frame ...,"seq":N}. */
static uint64_t frame_seq(const struct rl_msg *m)
{
	const char *p = (const char *)m->data + m->len - 1;
	while (p > (const char *)m->data && p[-1] != ':')
		p--;
	return strtoull(p, NULL, 10);
}

/* A JSON delivery {"t":K} with room for its seq. */
static struct rl_msg *new_msg(unsigned k)
{
	uint8_t body[32];
	int n = snprintf((char *)body, sizeof(body), "{\"t\":%u}", k);
	struct rl_msg *m = rl_msg_new(RELAY_FRAME_HDR_BYTES + (size_t)n + RL_HIST_JSON_SEQ_MAX, 0);
	if (m) {
		relay_frame_encode(m->data, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, body, (uint32_t)n);
		m->len = RELAY_FRAME_HDR_BYTES + (uint32_t)n;
	}
	return m;
}

static bool drop_held(void *arg)
{
	struct thr *t = arg;
	if (t->held == NULL)
		return true;
	size_t len = 0;
	const uint8_t *nm = rl_room_name(t->held, &len);
	CHECK(len == strlen(t->held_name) && memcmp(nm, t->held_name, len) == 0,
	      "held room's name changed under a reference");
	rl_room_put(t->held);
	t->held = NULL;
	return true;
}

/* Drops the membership at <idx> of our worker's list (an entry that moves
 * into its place is ours too: the test keeps no back index to fix). */
static void leave(struct thr *t, struct rl_room *r, uint32_t idx)
{
	struct rl_member moved;
	rl_room_local_del(r, t->w, idx, &moved);
	rl_room_leave(r);
}

/* Checks a join's answer against what this thread saw of room <k>. */
static bool check_join(struct thr *t, int k, const struct rl_hist_join *j, bool since)
{
	bool same = t->epoch[k][0] && memcmp(t->epoch[k], j->epoch, RL_HIST_EPOCH_LEN) == 0;
	CHECK(j->resume != RL_HIST_AHEAD, "a position this thread saw is ahead of its room");
	CHECK(j->members >= 1, "join of %s reported %ld members", names[k], j->members);
	if (same)
		CHECK(j->seq >= t->seen[k], "seq went back: %" PRIu64 " after %" PRIu64, j->seq,
		      t->seen[k]);
	else if (t->epoch[k][0])
		atomic_fetch_add(&recreated, 1);
	if (j->members == 1 && j->seq > 0 && same)
		atomic_fetch_add(&revived, 1);
	if (!since)
		CHECK(j->resume == RL_HIST_NO_SINCE && j->nreplay == 0, "no since, no replay");
	if (j->resume == RL_HIST_RECOVERED) {
		CHECK(same, "recovered in another epoch");
		CHECK(j->nreplay == j->seq - t->seen[k], "replay of %u for %" PRIu64 "..%" PRIu64,
		      j->nreplay, t->seen[k] + 1, j->seq);
		for (uint32_t i = 0; i < j->nreplay; i++)
			CHECK(frame_seq(j->replay[i]) == t->seen[k] + 1 + i,
			      "replayed seq %" PRIu64 " at %u after %" PRIu64,
			      frame_seq(j->replay[i]), i, t->seen[k]);
		atomic_fetch_add(&replayed, (long)j->nreplay);
	}
	memcpy(t->epoch[k], j->epoch, RL_HIST_EPOCH_LEN);
	t->seen[k] = j->seq;
	return true;
}

static void put_replay(struct rl_hist_join *j)
{
	for (uint32_t i = 0; i < j->nreplay; i++)
		rl_msg_put(j->replay[i]);
	free(j->replay);
	j->replay = NULL;
	j->nreplay = 0;
}

static bool one_round(void *arg)
{
	struct thr *t = arg;
	int k = (int)(rand_r(&t->seed) % NAMES);
	const uint8_t *name = (const uint8_t *)names[k];
	size_t len = strlen(names[k]);
	bool since = t->epoch[k][0] && rand_r(&t->seed) % 2;
	struct rl_hist_since s = {(const uint8_t *)t->epoch[k], RL_HIST_EPOCH_LEN, t->seen[k]};
	struct rl_hist_join j, j2;
	struct rl_member me = {.who = t, .slot = 1};

	CHECK(rl_hist_join(name, len, t->w, me, since ? &s : NULL, &j) == 0, "join failed");
	bool ok = check_join(t, k, &j, since);
	put_replay(&j);
	if (!ok)
		return false;

	/* While we hold a membership, a join must find this very room. */
	struct rl_member me2 = {.who = t, .slot = 2};
	CHECK(rl_hist_join(name, len, t->w, me2, NULL, &j2) == 0, "join failed");
	CHECK(j2.room == j.room && memcmp(j2.epoch, j.epoch, RL_HIST_EPOCH_LEN) == 0,
	      "lost member: a second join of %s got another room", names[k]);
	CHECK(j2.members >= 2, "held room has %ld members", j2.members);
	CHECK(j2.seq >= j.seq, "seq went back while a member");
	t->seen[k] = j2.seq;

	/* Appends: each takes the room's next seq. */
	struct rl_hist *h = rl_room_hist(j.room);
	for (int i = 0; i < APPENDS; i++) {
		struct rl_msg *m = new_msg((unsigned)i);
		CHECK(m != NULL, "out of memory");
		rl_hist_lock(h);
		uint64_t q = rl_hist_append(h, m, RL_HIST_JSON, 0, t->stats);
		rl_hist_unlock(h);
		CHECK(q > t->seen[k], "append got seq %" PRIu64 " after %" PRIu64, q, t->seen[k]);
		CHECK(frame_seq(m) == q, "the frame says seq %" PRIu64 ", not %" PRIu64,
		      frame_seq(m), q);
		t->seen[k] = q;
		rl_msg_put(m);
	}

	/* Sometimes keep a reference across the (maybe last) leave. */
	if (rand_r(&t->seed) % 2 == 0 && t->held == NULL) {
		rl_room_get(j.room);
		t->held = j.room;
		t->held_name = names[k];
	}
	/* leave the second membership (entry at j2.idx), then the first, which
	 * is back at index j.idx once the second went */
	leave(t, j2.room, j2.idx);
	leave(t, j.room, j.idx);
	if (rand_r(&t->seed) % 8 == 0) /* race the sweeper with a sweep of our own */
		rl_hist_sweep(rl_test_now_ms() + 1000000);
	atomic_fetch_add(&iterations, 1);
	return true;
}

static void *hist_thread(void *arg)
{
	tsan_reader_loop(arg, RUN_MS, &failed, one_round, drop_held);
	return NULL;
}

/* After the race: one more sweep (everything is empty and due). */
static void *final_sweep(void *arg)
{
	(void)arg;
	rcu_register_thread();
	rl_hist_sweep(UINT64_MAX / 2);
	rl_rcu_quiescent();
	rl_rcu_offline();
	rcu_unregister_thread();
	return NULL;
}

int main(void)
{
	struct rl_history_cfg cfg = {
		.size = 8, .room_bytes = 4096, .total_bytes = 3000, .ttl_ms = 0};
	if (rl_stats_init(THREADS) || rl_history_init(&cfg) || rl_rooms_init(THREADS) ||
	    rl_history_start()) {
		fprintf(stderr, "tsan-history: init failed\n");
		return 1;
	}
	static struct thr t[THREADS];
	for (unsigned k = 0; k < THREADS; k++)
		t[k] = (struct thr){.w = k, .seed = 0xbeefu + k, .stats = rl_stats_slot(k)};
	if (tsan_readers_run("tsan-history", THREADS, hist_thread, t, sizeof(t[0])))
		return 1;
	pthread_t fs;
	pthread_create(&fs, NULL, final_sweep, NULL);
	pthread_join(fs, NULL);
	int rc = atomic_load(&failed) ? 1 : 0;
	long rooms = rl_rooms_count(), members = rl_rooms_memberships();
	uint64_t kept = rl_hist_retained(), msgs = rl_hist_messages(), bytes = rl_hist_bytes();
	if (rooms || members || kept || msgs || bytes) {
		fprintf(stderr,
			"tsan-history: left: %ld rooms, %ld memberships, %" PRIu64 " retained, %" PRIu64
			" messages, %" PRIu64 " bytes (want 0)\n",
			rooms, members, kept, msgs, bytes);
		rc = 1;
	}
	if (rc == 0 && (atomic_load(&revived) == 0 || atomic_load(&recreated) == 0)) {
		fprintf(stderr, "tsan-history: the race did not happen (%ld revived, %ld recreated)\n",
			atomic_load(&revived), atomic_load(&recreated));
		rc = 1;
	}
	rl_history_stop();
	rl_rooms_fini();
	rl_stats_fini();
	fprintf(stderr,
		"tsan-history: %ld rounds by %d threads: %ld revived an empty room, %ld found it "
		"expired and recreated, %ld messages replayed: %s\n",
		atomic_load(&iterations), THREADS, atomic_load(&revived), atomic_load(&recreated),
		atomic_load(&replayed), rc == 0 ? "ok" : "FAILED");
	return rc;
}
