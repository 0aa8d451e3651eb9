/* tsan_room.c -- drives relayd's room module (src/relayd/room.h) directly from
 * several threads, each acting as one worker, so that joins race the last
 * leave of the same room on other threads (suite 'tsan'; plain executable,
 * exit status 0 = pass; run under TSan and ASan as well as plain).
 *
 * Checked on every iteration:
 *  - no lost member: while this thread holds a membership of room X, a second
 *    join of X must land in the same room object (never in a room that is
 *    being deleted, never in a second live room of the same name);
 *  - counts: a join reports >= 1 members (1 when it created the room), a held
 *    room reports >= 2 once joined twice; this worker's local list holds our
 *    entry where rl_room_local_add put it;
 *  - nothing freed in use: a reference taken with rl_room_get survives the
 *    last leave and a quiescent state; the name is read through it before the
 *    put (ASan/TSan catch a use-after-free);
 *  - at the end: every thread completed at least MIN_ROUNDS rounds (a race
 *    with a thread missing proves nothing); rooms and memberships back to 0,
 *    rl_rooms_fini frees all
 *    (LeakSanitizer checks at exit in the ASan build).
 * Then, with a room limit (rl_rooms_set_limit, --max-rooms): every thread
 * keeps creating rooms of its own and leaving them, so creations on
 * several threads keep meeting at the limit; the rooms alive at any moment
 * (counted by the threads themselves) never exceed it, and some creations
 * are refused with -ENOSPC.
 *
 * Threading: THREADS registered QSBR reader threads, thread k only touches
 * worker k's member lists; main thread (not a reader) inits and finis. */
#include "harness.h"
#include "base/rcu.h"
#include "relay/room.h"
#include "tsan_readers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 4, NAMES = 2, RUN_MS = 2000, MIN_ROUNDS = 10 };

static const char *const names[NAMES] = {"race-a", "race-b"};
static atomic_bool failed;
static atomic_long iterations, creations;

#define CHECK(cond, ...)                                                                       \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "tsan-room: thread %u: ", t->w);                        \
			fprintf(stderr, __VA_ARGS__);                                          \
			fputc('\n', stderr);                                                   \
			atomic_store(&failed, true);                                           \
			return false;                                                          \
		}                                                                              \
	} while (0)

struct thr {
	unsigned w;
	unsigned seed;
	long rounds; /* one_round's completed on this thread */
	struct rl_room *held;   /* a reference kept across a quiescent state */
	const char *held_name;
};

/* Drops the reference kept from the previous iteration, after reading the
 * room's name through it. */
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

static bool one_round(void *arg)
{
	struct thr *t = arg;
	const char *name = names[rand_r(&t->seed) % NAMES];
	size_t len = strlen(name);
	struct rl_room *r1 = NULL, *r2 = NULL;
	long m = 0;
	bool created = false;
	CHECK(rl_room_join((const uint8_t *)name, len, &r1, &m, &created) == 0, "join failed");
	CHECK(m >= 1, "join of %s reported %ld members", name, m);
	CHECK(!created || m == 1, "creating join of %s reported %ld members", name, m);
	atomic_fetch_add(&creations, created);
	uint32_t idx = 0;
	struct rl_member me = {.who = t, .slot = 7};
	CHECK(rl_room_local_add(r1, t->w, me, &idx) == 0, "local_add failed");

	/* While we hold a membership, a join must find this very room. */
	CHECK(rl_room_join((const uint8_t *)name, len, &r2, &m, &created) == 0, "join failed");
	CHECK(r2 == r1 && !created, "lost member: a second join of %s got another room", name);
	CHECK(rl_room_members(r1) >= 2, "held room %s has %ld members", name,
	      rl_room_members(r1));
	uint32_t n = 0;
	const struct rl_member *lm = rl_room_local(r1, t->w, &n);
	CHECK(idx < n && lm[idx].who == t && lm[idx].slot == 7, "our local entry is missing");
	rl_room_leave(r2);

	/* Sometimes keep a reference across the (maybe last) leave. */
	if (rand_r(&t->seed) % 2 == 0 && t->held == NULL) {
		rl_room_get(r1);
		t->held = r1;
		t->held_name = name;
	}
	struct rl_member moved;
	CHECK(!rl_room_local_del(r1, t->w, idx, &moved), "an entry moved: only ours was there");
	rl_room_leave(r1);
	atomic_fetch_add(&iterations, 1);
	t->rounds++;
	return true;
}

/* ---- with a room limit ---------------------------------------------------- */

enum { LIMIT = 3, HOLD = 2 }; /* THREADS x HOLD > LIMIT: always at the limit */
static const uint64_t room_limit = LIMIT;
static atomic_long live, refusals;

static void *limit_thread(void *arg)
{
	struct thr *t = arg;
	struct rl_room *held[HOLD] = {NULL};
	unsigned next = 0;
	rcu_register_thread();
	int64_t end = rl_test_now_ms() + RUN_MS / 2;
	for (unsigned i = 0; rl_test_now_ms() < end && !atomic_load(&failed); i++) {
		char name[32];
		int len = snprintf(name, sizeof(name), "lim-%u-%u", t->w, i);
		struct rl_room *r = NULL;
		long m = 0;
		bool created = false;
		if (held[next]) { /* our oldest goes first: a place frees up */
			atomic_fetch_sub(&live, 1);
			rl_room_leave(held[next]);
			held[next] = NULL;
		}
		int rc = rl_room_join((const uint8_t *)name, (size_t)len, &r, &m, &created);
		if (rc == -ENOSPC) {
			atomic_fetch_add(&refusals, 1);
		} else if (rc == 0) {
			long n = atomic_fetch_add(&live, 1) + 1;
			if (n > LIMIT || !created) {
				fprintf(stderr, "tsan-room: thread %u: %ld rooms alive, limit %d%s\n",
					t->w, n, LIMIT, created ? "" : " (a fresh name was not created)");
				atomic_store(&failed, true);
			}
			held[next] = r;
			next = (next + 1) % HOLD;
		} else {
			fprintf(stderr, "tsan-room: thread %u: join: %d\n", t->w, rc);
			atomic_store(&failed, true);
		}
		rl_rcu_quiescent();
	}
	for (unsigned k = 0; k < HOLD; k++)
		if (held[k]) {
			atomic_fetch_sub(&live, 1);
			rl_room_leave(held[k]);
		}
	rl_rcu_offline();
	rcu_unregister_thread();
	return NULL;
}

static void *room_thread(void *arg)
{
	tsan_reader_loop(arg, RUN_MS, &failed, one_round, drop_held);
	return NULL;
}

int main(void)
{
	if (rl_rooms_init(THREADS) != 0) {
		fprintf(stderr, "tsan-room: rl_rooms_init failed\n");
		return 1;
	}
	struct thr t[THREADS];
	for (unsigned k = 0; k < THREADS; k++)
		t[k] = (struct thr){.w = k, .seed = 0xc0ffeeu + k};
	if (tsan_readers_run("tsan-room", THREADS, room_thread, t, sizeof(t[0])))
		return 1;
	/* A race needs every thread in it: a thread that never completed a
	 * round (a failed check stops it early) proves nothing. */
	for (unsigned k = 0; k < THREADS; k++)
		if (t[k].rounds < MIN_ROUNDS) {
			fprintf(stderr, "tsan-room: thread %u completed %ld rounds (want >= %d)\n",
				k, t[k].rounds, MIN_ROUNDS);
			atomic_store(&failed, true);
		}
	rl_rooms_set_limit(&room_limit);
	if (tsan_readers_run("tsan-room", THREADS, limit_thread, t, sizeof(t[0])))
		return 1;
	if (atomic_load(&refusals) == 0) {
		fprintf(stderr, "tsan-room: the room limit never refused a creation\n");
		atomic_store(&failed, true);
	}
	int rc = atomic_load(&failed) ? 1 : 0;
	long rooms = rl_rooms_count(), members = rl_rooms_memberships();
	if (rooms != 0 || members != 0) {
		fprintf(stderr, "tsan-room: after the race %ld rooms, %ld memberships remain (want 0)\n",
			rooms, members);
		rc = 1;
	}
	rl_rooms_fini();
	fprintf(stderr,
		"tsan-room: %ld rounds, %ld rooms created, by %d threads; %ld creations refused "
		"at the limit of %d: %s\n",
		atomic_load(&iterations), atomic_load(&creations), THREADS, atomic_load(&refusals),
		LIMIT, rc == 0 ? "ok" : "FAILED");
	return rc;
}
