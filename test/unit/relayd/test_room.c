/* test_room.c -- relayd's room module (src/relayd/relay/room.c): the
 * "joined after the publish" rule at the old 32-bit wrap points, and the
 * per-process seed of the name hash.
 * Threading: single-threaded tests; the tables are created and destroyed on
 * the test's thread (registered as a QSBR reader where room.h asks for it). */
#include <criterion/criterion.h>

#include "base/rcu.h"
#include "net/msg.h"
#include "relay/room.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The sequence numbers are 64-bit end to end: room, member, message. */
_Static_assert(sizeof(((struct rl_member *)0)->seq) == 8, "rl_member.seq is 64-bit");
_Static_assert(sizeof(((struct rl_msg *)0)->seq) == 8, "rl_msg.seq is 64-bit");
_Static_assert(sizeof(rl_room_seq(NULL)) == 8, "rl_room_seq is 64-bit");

#define P31 (1ull << 31)
#define P32 (1ull << 32)

Test(room, member_joined_before_publish_gets_the_message)
{
	cr_assert(!rl_room_joined_after(1, 1), "the publisher's own join number");
	cr_assert(!rl_room_joined_after(1, 2));
	cr_assert(rl_room_joined_after(3, 2));
}

/* A member that joined 2^31 or more joins before the publish was skipped by
 * the old (int32_t)(member - msg) > 0 test. */
Test(room, member_2_31_joins_old_is_not_skipped)
{
	cr_assert(!rl_room_joined_after(5, 5 + P31), "exactly 2^31 joins later");
	cr_assert(!rl_room_joined_after(5, 5 + P31 + 1), "2^31 + 1 joins later");
	cr_assert(!rl_room_joined_after(1, P31 + P31 - 1));
	cr_assert(!rl_room_joined_after(P31 - 1, P31));
	cr_assert(rl_room_joined_after(P31, P31 - 1));
	cr_assert(rl_room_joined_after(P31 + 1, P31));
}

/* Past 2^32 joins a 32-bit counter wraps: member 3 would look newer than a
 * message published at 2^32 + 2. */
Test(room, member_2_32_joins_old_is_not_skipped)
{
	cr_assert(!rl_room_joined_after(3, P32 + 2));
	cr_assert(!rl_room_joined_after(P32 - 1, P32));
	cr_assert(!rl_room_joined_after(P32 - 1, P32 + 5));
	cr_assert(rl_room_joined_after(P32, P32 - 1));
	cr_assert(rl_room_joined_after(P32 + 2, P32 + 1));
	cr_assert(!rl_room_joined_after(P32 + 1, P32 + 1));
	cr_assert(rl_room_joined_after(UINT64_MAX, UINT64_MAX - 1));
}

static const uint8_t name[] = "lobby";

Test(room, hash_is_stable_under_one_seed)
{
	uint64_t a = rl_room_hash_seeded(42, name, 5);
	cr_assert_eq(a, rl_room_hash_seeded(42, name, 5));
	cr_assert_neq(a, rl_room_hash_seeded(42, name, 4), "the length counts");
}

Test(room, hash_differs_between_seeds)
{
	uint64_t a = rl_room_hash_seeded(1, name, 5);
	cr_assert_neq(a, rl_room_hash_seeded(2, name, 5));
	cr_assert_neq(a, rl_room_hash_seeded(1ull << 63, name, 5));
	cr_assert_neq(rl_room_hash_seeded(0, name, 0), rl_room_hash_seeded(7, name, 0),
		      "even the empty name");
}

/* Hashes of <n> names under the table's current seed. */
static void table_hashes(uint64_t *out, size_t n)
{
	char nm[16];
	for (size_t i = 0; i < n; i++) {
		int l = snprintf(nm, sizeof(nm), "room-%zu", i);
		out[i] = rl_room_hash_name((const uint8_t *)nm, (size_t)l);
	}
}

/* Each table draws its own seed: the same names hash differently, so nobody
 * can precompute names that share a bucket. A room keeps its hash for the
 * life of the table (its member list and the connection's room list rely on it). */
Test(room, each_table_draws_its_own_seed)
{
	uint64_t h1[8], h2[8], again[8];
	struct rl_room *r;
	long members;

	cr_assert_eq(rl_rooms_init(1), 0);
	table_hashes(h1, 8);
	table_hashes(again, 8);
	cr_assert_eq(memcmp(h1, again, sizeof(h1)), 0, "stable within one table");
	rcu_register_thread();
	cr_assert_eq(rl_room_join(name, 5, &r, &members, NULL), 0);
	cr_assert_eq(rl_room_hash(r), rl_room_hash_name(name, 5));
	cr_assert(rl_room_leave(r));
	rl_rcu_quiescent();
	rcu_unregister_thread();
	rl_rooms_fini();

	cr_assert_eq(rl_rooms_init(1), 0);
	table_hashes(h2, 8);
	rl_rooms_fini();
	int same = 0;
	for (int i = 0; i < 8; i++)
		same += h1[i] == h2[i];
	cr_assert_eq(same, 0, "%d of 8 names hash the same under two tables", same);
}
