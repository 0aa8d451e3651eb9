/* test_delivery.c -- protocol-v1-ext.md 5: a MESSAGE published on any node
 * reaches every member on every node exactly once, in each sender's order
 * (issue 13, test 1). Three relayd nodes on one redis-server; subscribers on
 * all three; 10,000 numbered messages from one node, then from publishers
 * on all three nodes at once. */
#include "cluster_lib.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODES 3
#define SUBS_PER_NODE 4
#define TOTAL 10000
#define CHUNK 250 /* messages written per round, then everybody reads */
#define ROOM "numbers"

struct member {
	struct rl_test_client *c;
	char own[64];	     /* its connectionId: its own messages do not come back */
	int64_t next[NODES]; /* next number expected from publisher k */
	long got, want;
};

static char pub_ids[NODES][64];
static int npubs;

static void start_cluster(struct rl_redis *r, struct rl_node *n)
{
	static const char *const ids[NODES] = {"A", "B", "C"};
	cr_assert_eq(rl_redis_start(r), 0, "%s", rl_test_err());
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(rl_node_start(&n[i], r, ids[i], NULL), 0, "%s", rl_test_err());
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(rl_node_wait_up(&n[i], 10000), 0, "%s", rl_test_err());
}

static void stop_cluster(struct rl_redis *r, struct rl_node *n)
{
	for (int i = 0; i < NODES; i++)
		cr_expect_eq(rl_test_server_stop(&n[i].s, 0), 0, "node %s exit status", n[i].id);
	for (int i = 0; i < NODES; i++)
		rl_test_server_free(&n[i].s);
	rl_redis_free(r);
}

/* Checks one received frame of <m>: a delivery from a known publisher with
 * the next number of that publisher. Presence events are skipped. */
static void member_check(struct member *m, const struct rl_test_frame *f)
{
	char from[64], type[32];
	int64_t v;
	cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "%s", rl_test_frame_str(f));
	if (rl_test_json_str(f, "type", type, sizeof(type)) >= 0)
		return; /* userJoined / userLeft */
	cr_assert_geq(rl_test_json_str(f, "from", from, sizeof(from)), 0, "%s",
		      rl_test_frame_str(f));
	cr_assert_eq(rl_test_json_i64(f, "content", &v), 0, "%s", rl_test_frame_str(f));
	int k = 0;
	while (k < npubs && strcmp(pub_ids[k], from) != 0)
		k++;
	cr_assert_lt(k, npubs, "a message from an unknown sender: %s", rl_test_frame_str(f));
	cr_assert_neq(strcmp(from, m->own), 0, "own message came back: %s", rl_test_frame_str(f));
	cr_assert_eq(v, m->next[k], "from %s: got %lld, expected %lld (duplicate, loss or reorder)",
		     from, (long long)v, (long long)m->next[k]);
	m->next[k]++;
	m->got++;
}

/* Reads whatever the members have now (waiting up to <wait_ms> for the
 * first byte). */
static void members_read(struct member *ms, int n, int wait_ms)
{
	struct pollfd p[NODES * SUBS_PER_NODE + NODES];
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){rl_test_fd(ms[i].c), POLLIN, 0};
	if (poll(p, (nfds_t)n, wait_ms) <= 0)
		return;
	for (int i = 0; i < n; i++) {
		const struct rl_test_frame *f;
		int rc;
		while ((rc = rl_test_poll_frame(ms[i].c, &f)) == 1)
			member_check(&ms[i], f);
		cr_assert_geq(rc, 0, "member %d: connection closed: %s", i, rl_test_err());
	}
}

/* <pubs> publishers (on nodes 0..pubs-1) write TOTAL numbered messages
 * between them, interleaved in chunks; every member must get every message
 * of the others exactly once and in order. */
static void flood(int pubs)
{
	struct rl_redis r;
	struct rl_node n[NODES];
	struct member ms[NODES * SUBS_PER_NODE + NODES];
	int nm = 0;

	start_cluster(&r, n);
	npubs = pubs;
	for (int k = 0; k < pubs; k++) {
		struct member *m = &ms[nm++];
		memset(m, 0, sizeof(*m));
		m->c = rl_node_client(&n[k], NULL, ROOM);
		cr_assert_not_null(m->c, "%s", rl_test_err());
		snprintf(pub_ids[k], sizeof(pub_ids[k]), "%.63s", rl_test_conn_id(m->c));
		snprintf(m->own, sizeof(m->own), "%.63s", pub_ids[k]);
		cr_assert(strstr(pub_ids[k], n[k].id), "connectionId %s names its node",
			  pub_ids[k]);
	}
	for (int i = 0; i < NODES; i++)
		for (int j = 0; j < SUBS_PER_NODE; j++) {
			struct member *m = &ms[nm++];
			memset(m, 0, sizeof(*m));
			m->c = rl_node_client(&n[i], NULL, ROOM);
			cr_assert_not_null(m->c, "%s", rl_test_err());
			snprintf(m->own, sizeof(m->own), "%.63s", rl_test_conn_id(m->c));
		}
	cr_assert_eq(rl_redis_wait_numsub(&r, "relay:{" ROOM "}", NODES, 5000), 0, "%s",
		     rl_test_err());

	int share[NODES] = {0};
	for (int k = 0; k < pubs; k++)
		share[k] = TOTAL / pubs + (k < TOTAL % pubs);
	for (int i = 0; i < nm; i++) {
		ms[i].want = TOTAL;
		for (int k = 0; k < pubs; k++) {
			ms[i].next[k] = 1;
			if (i == k)
				ms[i].want -= share[k]; /* a publisher does not get its own */
		}
	}
	static uint8_t buf[CHUNK * 64];
	int sent[NODES] = {0};
	for (bool more = true; more;) {
		more = false;
		for (int k = 0; k < pubs; k++) {
			size_t off = 0;
			for (int j = 0; j < CHUNK && sent[k] < share[k]; j++) {
				char msg[64];
				int len =
				    snprintf(msg, sizeof(msg),
					     "{\"room\":\"" ROOM "\",\"content\":%d}", ++sent[k]);
				cr_assert_eq(
				    rl_test_frame_append(buf, sizeof(buf), &off, RELAY_MSG_MESSAGE,
							 RELAY_FLAG_JSON, msg, (size_t)len),
				    0);
			}
			if (off)
				cr_assert_eq(rl_test_send_raw(ms[k].c, buf, off, 10000), 0, "%s",
					     rl_test_err());
			more = more || sent[k] < share[k];
		}
		members_read(ms, nm, 0);
	}
	int64_t end = rl_test_now_ms() + 60000;
	for (;;) {
		bool done = true;
		for (int i = 0; i < nm; i++)
			done = done && ms[i].got == ms[i].want;
		if (done || rl_test_now_ms() > end)
			break;
		members_read(ms, nm, 200);
	}
	for (int i = 0; i < nm; i++)
		cr_expect_eq(ms[i].got, ms[i].want, "member %d (%s) got %ld of %ld", i, ms[i].own,
			     ms[i].got, ms[i].want);
	for (int i = 0; i < nm; i++)
		rl_test_close(ms[i].c);
	double gaps = 0;
	for (int i = 0; i < NODES; i++)
		gaps += rl_node_metric(&n[i], "relay_cluster_gap_events_total");
	cr_expect_eq(gaps, 0, "no gap events on a healthy cluster");
	stop_cluster(&r, n);
}

TestSuite(cluster_delivery, .timeout = 150);

Test(cluster_delivery, ten_thousand_messages_from_one_node_reach_every_member_once_in_order)
{
	flood(1);
}

Test(cluster_delivery, publishers_on_all_three_nodes_at_once_keep_each_senders_order)
{
	flood(3);
}
