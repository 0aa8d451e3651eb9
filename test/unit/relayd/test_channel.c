/* test_channel.c -- cluster/channel.c: the other nodes' member counts. A
 * count is replaced only by a newer version; a snapshot at version V zeroes
 * the rooms older versions set and becomes the node's floor; a node that
 * goes silent stops counting but keeps what a sequence check needs, a
 * restarted one does not; the sum workers read follows all of it. */
#include <criterion/criterion.h>
#include <string.h>

#include "base/rcu.h"
#include "cluster/channel.h"
#include "relay/room.h"

static void setup(void)
{
	cr_assert_eq(rl_rooms_init(1), 0); /* the name hash's seed */
	rcu_register_thread();
	cr_assert_eq(rl_chan_init(), 0);
}

static void drop(struct rl_chan *ch, void *arg)
{
	(void)arg;
	rl_chan_remove(ch);
}

static void teardown(void)
{
	rl_chan_foreach(drop, NULL);
	rl_rcu_quiescent();
	rcu_unregister_thread();
	rcu_barrier();
	rl_chan_fini();
	rl_rooms_fini();
}

TestSuite(channel, .init = setup, .fini = teardown);

static struct rl_chan *room(const char *name)
{
	struct rl_chan *ch = rl_chan_get((const uint8_t *)name, strlen(name));
	cr_assert_not_null(ch);
	return ch;
}

static long remote(const char *name)
{
	return rl_chan_remote_members((const uint8_t *)name, strlen(name));
}

static uint32_t node(const char *id)
{
	int n = rl_chan_node_get((const uint8_t *)id, strlen(id));
	cr_assert_geq(n, 0);
	return (uint32_t)n;
}

Test(channel, counts_of_several_nodes_add_up_and_only_newer_versions_replace_them)
{
	uint32_t a = node("a"), b = node("b");
	struct rl_chan *ch = room("physics");
	rl_chan_set_count(ch, a, 3, 5);
	rl_chan_set_count(ch, b, 2, 1);
	cr_assert_eq(remote("physics"), 5);
	rl_chan_set_count(ch, a, 9, 4); /* older than what set 3 */
	cr_assert_eq(remote("physics"), 5, "a stale version changed the count");
	rl_chan_set_count(ch, a, 1, 6);
	cr_assert_eq(remote("physics"), 3);
	cr_assert_eq(remote("nowhere"), 0);
}

Test(channel, a_snapshot_zeroes_older_rooms_and_ignores_older_updates_afterwards)
{
	uint32_t a = node("a");
	struct rl_chan *p = room("p"), *q = room("q");
	rl_chan_set_count(p, a, 4, 2);
	rl_chan_set_count(q, a, 7, 8); /* newer than the snapshot below */
	/* snapshot at version 5 lists only room r */
	rl_chan_set_count(room("r"), a, 1, 5);
	rl_chan_node_clear(a, 5, false, drop, NULL);
	cr_assert_eq(remote("p"), 0, "p was not in the snapshot");
	cr_assert_eq(remote("q"), 7, "a newer update survives an older snapshot");
	cr_assert_eq(remote("r"), 1);
	rl_chan_set_count(room("p"), a, 4, 3); /* an update the snapshot superseded */
	cr_assert_eq(remote("p"), 0, "an update below the floor came back");
}

Test(channel, a_silent_node_stops_counting_but_keeps_its_sequence_until_it_restarts)
{
	uint32_t a = node("a");
	struct rl_chan *ch = room("k");
	ch->sub = RL_CHAN_SUBSCRIBED;
	rl_chan_set_count(ch, a, 2, 1);
	rl_chan_peer(ch, a, true)->last_seq = 41;
	rl_chan_node_clear(a, UINT64_MAX, false, drop, NULL); /* silent */
	cr_assert_eq(remote("k"), 0);
	struct rl_chan_peer *p = rl_chan_peer(ch, a, false);
	cr_assert_not_null(p, "the sequence state went with the count");
	cr_assert_eq(p->last_seq, 41);
	rl_chan_node_clear(a, UINT64_MAX, true, drop, NULL); /* restarted */
	cr_assert_null(rl_chan_peer(ch, a, false));
	ch->sub = RL_CHAN_UNSUB;
}

Test(channel, an_idle_room_is_one_nothing_refers_to)
{
	struct rl_chan *ch = room("idle");
	cr_assert(rl_chan_idle(ch));
	ch->local = 1;
	cr_assert_not(rl_chan_idle(ch));
	ch->local = 0;
	ch->announced = 1;
	cr_assert_not(rl_chan_idle(ch), "a count still to announce keeps it");
	ch->announced = 0;
	rl_chan_set_count(ch, node("x"), 1, 1);
	cr_assert_not(rl_chan_idle(ch));
	rl_chan_set_count(ch, node("x"), 0, 2);
	cr_assert(rl_chan_idle(ch));
	long before = rl_chan_count();
	rl_chan_remove(ch);
	cr_assert_eq(rl_chan_count(), before - 1);
}
