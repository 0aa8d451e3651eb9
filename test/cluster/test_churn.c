/* test_churn.c -- interest-based subscriptions under join/leave churn
 * (issue 13, test 3): 5,000 join/leave cycles spread over three nodes and
 * twelve clients leave no subscription behind (PUBSUB CHANNELS of the room
 * channels is empty once the linger passed), every count back at zero (on
 * the bus and in JOIN acks), and every node exits 0 on SIGTERM (an ASan
 * build that leaks does not). */
#include "cluster_lib.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODES 3
#define CLIENTS_PER_NODE 4
#define CYCLES 5000
#define ROOMS 10

struct churner {
	const struct rl_node *n;
	unsigned seed;
	int cycles;
	char err[256];
};

static void room_name(char *buf, size_t cap, int r)
{
	snprintf(buf, cap, "churn-%d", r);
}

/* Sends JOIN/LEAVE for <room> and waits for its ack, skipping presence. */
static int room_op(struct rl_test_client *c, uint8_t type, const char *room)
{
	if (rl_test_send_json(c, type, "{\"room\":\"%s\"}", room))
		return -1;
	for (;;) {
		const struct rl_test_frame *f = rl_test_recv(c, 10000);
		if (!f)
			return -1;
		if (f->type == type)
			return 0;
		if (f->type != RELAY_MSG_MESSAGE)
			return rl_test_set_err("unexpected %s", rl_test_frame_str(f));
	}
}

static void *churn(void *arg)
{
	struct churner *ch = arg;
	struct rl_test_client *c = rl_node_client(ch->n, NULL, NULL);
	if (!c) {
		snprintf(ch->err, sizeof(ch->err), "connect: %s", rl_test_err());
		return NULL;
	}
	char room[32];
	for (int i = 0; i < ch->cycles; i++) {
		room_name(room, sizeof(room), rand_r(&ch->seed) % ROOMS);
		if (room_op(c, RELAY_MSG_JOIN_ROOM, room) ||
		    room_op(c, RELAY_MSG_LEAVE_ROOM, room)) {
			snprintf(ch->err, sizeof(ch->err), "cycle %d: %s", i, rl_test_err());
			break;
		}
	}
	rl_test_close(c);
	return NULL;
}

Test(cluster_churn, join_leave_churn_leaves_no_subscription_and_no_count_behind, .timeout = 150)
{
	struct rl_redis r;
	struct rl_node n[NODES];
	static const char *const ids[NODES] = {"A", "B", "C"};
	cr_assert_eq(rl_redis_start(&r), 0, "%s", rl_test_err());
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(rl_node_start(&n[i], &r, ids[i], NULL), 0, "%s", rl_test_err());
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(rl_node_wait_up(&n[i], 10000), 0, "%s", rl_test_err());

	struct churner ch[NODES * CLIENTS_PER_NODE];
	pthread_t t[NODES * CLIENTS_PER_NODE];
	int nt = NODES * CLIENTS_PER_NODE;
	for (int i = 0; i < nt; i++) {
		ch[i] = (struct churner){.n = &n[i % NODES],
					 .seed = (unsigned)i * 7919u + 1,
					 .cycles = CYCLES / nt + (i < CYCLES % nt)};
		cr_assert_eq(pthread_create(&t[i], NULL, churn, &ch[i]), 0);
	}
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < nt; i++)
		cr_assert_eq(ch[i].err[0], 0, "client %d: %s", i, ch[i].err);

	/* The linger is 0.2 s: every room channel goes soon after. */
	char out[4096] = "";
	int64_t end = rl_test_now_ms() + 10000;
	do {
		cr_assert_eq(
		    rl_redis_cmd(&r, out, sizeof(out), "PUBSUB", "CHANNELS", "relay:{*", NULL), 0,
		    "%s", rl_test_err());
		if (!out[0])
			break;
		usleep(50000);
	} while (rl_test_now_ms() < end);
	cr_assert_str_empty(out, "room channels still subscribed: %s", out);
	for (int i = 0; i < NODES; i++) {
		char key[64];
		snprintf(key, sizeof(key), "relay:counts:%s", ids[i]);
		end = rl_test_now_ms() + 5000;
		long long fields;
		do { /* only the version field "" is left */
			fields = rl_redis_int(&r, "HLEN", key, NULL);
		} while (fields > 1 && rl_test_now_ms() < end && usleep(50000) == 0);
		cr_assert_leq(fields, 1, "%s still has %lld fields", key, fields);
		cr_assert_eq(rl_node_metric(&n[i], "relay_cluster_subscriptions"), 0, "node %s",
			     ids[i]);
		cr_assert_eq(rl_node_metric(&n[i], "relay_room_memberships"), 0, "node %s", ids[i]);
	}
	usleep(1500 * 1000); /* counts settled everywhere */
	for (int k = 0; k < ROOMS; k++) {
		char room[32];
		long members = -1;
		room_name(room, sizeof(room), k);
		struct rl_test_client *p = rl_node_client(&n[k % NODES], NULL, NULL);
		cr_assert_not_null(p, "%s", rl_test_err());
		cr_assert_eq(rl_test_join(p, room, &members, 5000), 0, "%s", rl_test_err());
		cr_assert_eq(members, 1, "%s on node %s: %ld members after the churn", room,
			     ids[k % NODES], members);
		rl_test_close(p);
	}
	for (int i = 0; i < NODES; i++) {
		cr_expect_eq(rl_test_server_stop(&n[i].s, 0), 0, "node %s exit status (leaks?)",
			     ids[i]);
		rl_test_server_free(&n[i].s);
	}
	rl_redis_free(&r);
}
