/* test_presence.c -- protocol-v1-ext.md 5-7 on a three-node cluster:
 * presence events cross nodes, "members" in the JOIN ack counts every live
 * node once joins settle (issue 13, test 2), connection ids name their node,
 * the HELLO ack lists "cluster" only in cluster mode; and the start-up
 * rules: a bus that is down at start (local rooms still work, /health says
 * so), AUTH from --cluster-password-file, bad cluster options refused. */
#include "cluster_lib.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SETTLE_MS 1500 /* counts may lag joins on other nodes by about a second */

static void start_nodes(struct rl_redis *r, struct rl_node *n, int count)
{
	static const char *const ids[] = {"A", "B", "C"};
	cr_assert_eq(rl_redis_start(r), 0, "%s", rl_test_err());
	for (int i = 0; i < count; i++)
		cr_assert_eq(rl_node_start(&n[i], r, ids[i], NULL), 0, "%s", rl_test_err());
	for (int i = 0; i < count; i++)
		cr_assert_eq(rl_node_wait_up(&n[i], 10000), 0, "%s", rl_test_err());
}

static void stop_nodes(struct rl_redis *r, struct rl_node *n, int count)
{
	for (int i = 0; i < count; i++) {
		cr_expect_eq(rl_test_server_stop(&n[i].s, 0), 0, "node %s exit status", n[i].id);
		rl_test_server_free(&n[i].s);
	}
	rl_redis_free(r);
}

static struct rl_test_client *joined(const struct rl_node *n, const char *user, long members)
{
	long got = -1;
	struct rl_test_client *c = rl_node_client(n, user, NULL);
	cr_assert_not_null(c, "%s", rl_test_err());
	cr_assert_eq(rl_test_join(c, "lobby", &got, 5000), 0, "%s", rl_test_err());
	cr_assert_eq(got, members, "JOIN on node %s: members %ld, expected %ld", n->id, got,
		     members);
	return c;
}

/* The next frame of <c> is the presence event <type> of connection <id>. */
static void expect_presence(struct rl_test_client *c, const char *type, const char *id,
			    const char *user)
{
	char want[256];
	snprintf(want, sizeof(want),
		 "{\"type\":\"%s\",\"room\":\"lobby\",\"connectionId\":\"%s\",\"userId\":\"%s\"}",
		 type, id, user);
	cr_assert_not_null(rl_test_expect_json(c, RELAY_MSG_MESSAGE, want, NULL, 5000), "%s",
			   rl_test_err());
}

TestSuite(cluster_presence, .timeout = 90);

Test(cluster_presence, presence_crosses_nodes_and_join_acks_count_every_node_once_settled)
{
	struct rl_redis r;
	struct rl_node n[3];
	char out[256];
	start_nodes(&r, n, 3);

	char bid[64], cid[64], a2id[64], c2id[64];
	struct rl_test_client *a1 = joined(&n[0], "alice", 1);
	usleep(SETTLE_MS * 1000);
	struct rl_test_client *b1 = joined(&n[1], "bob", 2);
	snprintf(bid, sizeof(bid), "%.63s", rl_test_conn_id(b1));
	expect_presence(a1, "userJoined", bid, "bob");
	usleep(SETTLE_MS * 1000);
	struct rl_test_client *c1 = joined(&n[2], "carol", 3);
	snprintf(cid, sizeof(cid), "%.63s", rl_test_conn_id(c1));
	expect_presence(a1, "userJoined", cid, "carol");
	expect_presence(b1, "userJoined", cid, "carol");

	cr_assert_eq(rl_test_leave(c1, "lobby", 5000), 0, "%s", rl_test_err());
	expect_presence(a1, "userLeft", cid, "carol");
	expect_presence(b1, "userLeft", cid, "carol");
	usleep(SETTLE_MS * 1000);
	struct rl_test_client *a2 = joined(&n[0], "dave", 3); /* alice, bob, dave */
	snprintf(a2id, sizeof(a2id), "%.63s", rl_test_conn_id(a2));
	expect_presence(a1, "userJoined", a2id, "dave");
	expect_presence(b1, "userJoined", a2id, "dave");
	cr_assert_eq(rl_redis_cmd(&r, out, sizeof(out), "HGET", "relay:counts:A", "lobby", NULL), 0,
		     "%s", rl_test_err());
	cr_assert_str_eq(out, "2", "node A's count on the bus");

	rl_test_close(b1); /* disconnecting leaves the room, on every node */
	expect_presence(a1, "userLeft", bid, "bob");
	rl_test_close(a2);
	expect_presence(a1, "userLeft", a2id, "dave");
	usleep(SETTLE_MS * 1000);
	struct rl_test_client *c2 = joined(&n[2], "erin", 2); /* alice, erin */
	snprintf(c2id, sizeof(c2id), "%.63s", rl_test_conn_id(c2));
	expect_presence(a1, "userJoined", c2id, "erin");
	rl_test_close(a1);
	rl_test_close(c1);
	rl_test_close(c2);
	stop_nodes(&r, n, 3);
}

Test(cluster_presence, hello_ack_lists_the_cluster_feature_and_ids_name_the_node)
{
	struct rl_redis r;
	struct rl_node n;
	const char *mask[] = {"connectionId", NULL};
	const char *debug[] = {"--debug", NULL};
	cr_assert_eq(rl_redis_start(&r), 0, "%s", rl_test_err());
	cr_assert_eq(rl_node_start(&n, &r, "node-7", debug), 0, "%s", rl_test_err());
	struct rl_test_client *c = rl_test_connect(&n.s, 0);
	cr_assert_not_null(c, "%s", rl_test_err());
	cr_assert_eq(rl_test_send_frame(c, RELAY_MSG_HELLO, 0, NULL, 0), 0);
	const struct rl_test_frame *f = rl_test_expect_json(
	    c, RELAY_MSG_HELLO,
	    "{\"status\":\"connected\",\"connectionId\":*,\"serverVersion\":\"" RELAY_VERSION_STRING "\","
	    "\"protocolVersion\":1,\"maxFrameBytes\":1048576,\"heartbeatMs\":30000,"
	    "\"features\":[\"cluster\"],\"worker\":*,\"node\":\"node-7\"}",
	    (const char *[]){"connectionId", "worker", NULL}, 5000);
	cr_assert_not_null(f, "%s", rl_test_err());
	char id[80];
	cr_assert_gt(rl_test_json_str(f, "connectionId", id, sizeof(id)), 0);
	cr_assert(strncmp(id, "conn-", 5) == 0 && strstr(id, "@node-7"), "connectionId %s", id);
	rl_test_close(c);
	cr_expect_eq(rl_test_server_stop(&n.s, 0), 0);
	rl_test_server_free(&n.s);
	rl_redis_free(&r);

	/* Without --cluster the ack is byte for byte v1's. */
	struct rl_test_server s;
	cr_assert_eq(rl_test_server_start(&s, NULL, NULL, 0), 0, "%s", rl_test_err());
	c = rl_test_connect(&s, 0);
	cr_assert_not_null(c);
	cr_assert_eq(rl_test_send_frame(c, RELAY_MSG_HELLO, 0, NULL, 0), 0);
	f = rl_test_expect_json(
	    c, RELAY_MSG_HELLO,
	    "{\"status\":\"connected\",\"connectionId\":*,\"serverVersion\":\"" RELAY_VERSION_STRING "\","
	    "\"protocolVersion\":1,\"maxFrameBytes\":1048576,\"heartbeatMs\":30000}",
	    mask, 5000);
	cr_assert_not_null(f, "%s", rl_test_err());
	cr_assert_gt(rl_test_json_str(f, "connectionId", id, sizeof(id)), 0);
	cr_assert_eq(strspn(id + 5, "0123456789"), strlen(id + 5), "v1 form conn-N: %s", id);
	rl_test_close(c);
	cr_expect_eq(rl_test_server_stop(&s, 0), 0);
	rl_test_server_free(&s);
}

Test(cluster_presence, a_bus_down_at_start_leaves_local_rooms_working_and_health_says_down)
{
	uint16_t port;
	int fd = rl_test_loopback_listener(&port); /* a port nobody answers on once closed */
	cr_assert_geq(fd, 0);
	close(fd);
	char url[64], body[512];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)port);
	struct rl_redis fake = {.port = port};
	snprintf(fake.url, sizeof(fake.url), "%s", url);
	struct rl_node n;
	cr_assert_eq(rl_node_start(&n, &fake, "lonely", NULL), 0, "%s", rl_test_err());
	struct rl_test_client *a = rl_node_client(&n, "a", "solo"),
			      *b = rl_node_client(&n, "b", "solo");
	cr_assert(a && b, "%s", rl_test_err());
	cr_assert_eq(rl_test_send_json(a, RELAY_MSG_MESSAGE, "{\"room\":\"solo\",\"content\":1}"),
		     0);
	const char *mask[] = {"from", "timestamp", NULL};
	cr_assert_not_null(rl_test_expect_json(b, RELAY_MSG_MESSAGE,
					       "{\"room\":\"solo\",\"from\":*,\"userId\":\"a\","
					       "\"content\":1,\"timestamp\":*}",
					       mask, 5000),
			   "%s", rl_test_err());
	cr_assert_eq(rl_node_http(&n, "/health", body, sizeof(body)), 200, "%s", body);
	cr_assert(strstr(body, "\"cluster\":\"down\"") ||
		      strstr(body, "\"cluster\":\"connecting\""),
		  "%s", body);
	/* /health may say "connecting" before the first refused connect is logged. */
	cr_assert(rl_test_server_log_wait(&n.s, "unreachable", RL_TEST_REPLY_MS),
		  "the failure is logged");
	rl_test_close(a);
	rl_test_close(b);
	cr_expect_eq(rl_test_server_stop(&n.s, 0), 0);
	rl_test_server_free(&n.s);

	const char *required[] = {"--cluster-required", NULL};
	cr_assert_eq(rl_node_start(&n, &fake, "strict", required), 0, "%s", rl_test_err());
	cr_assert_eq(rl_node_http(&n, "/health", body, sizeof(body)), 503, "%s", body);
	cr_assert(strstr(body, "\"status\":\"cluster_down\""), "%s", body);
	cr_expect_eq(rl_test_server_stop(&n.s, 0), 0);
	rl_test_server_free(&n.s);
}

Test(cluster_presence, auth_uses_the_password_file_and_a_wrong_one_keeps_the_link_down)
{
	struct rl_redis r;
	struct rl_node good, bad;
	char out[64], right[] = "/tmp/relayd-test-pwXXXXXX", wrong[] = "/tmp/relayd-test-pwXXXXXX";
	cr_assert_eq(rl_redis_start(&r), 0, "%s", rl_test_err());
	int fr = mkstemp(right), fw = mkstemp(wrong);
	cr_assert(fr >= 0 && fw >= 0);
	cr_assert_eq(write(fr, "s3cret pass\n", 12), 12);
	cr_assert_eq(write(fw, "nope\n", 5), 5);
	close(fr);
	close(fw);
	cr_assert_eq(
	    rl_redis_cmd(&r, out, sizeof(out), "CONFIG", "SET", "requirepass", "s3cret pass", NULL),
	    0, "%s", rl_test_err());
	const char *a1[] = {"--cluster-password-file", right, NULL};
	const char *a2[] = {"--cluster-password-file", wrong, NULL};
	cr_assert_eq(rl_node_start(&good, &r, "good", a1), 0, "%s", rl_test_err());
	cr_assert_eq(rl_node_start(&bad, &r, "bad", a2), 0, "%s", rl_test_err());
	cr_assert_eq(rl_node_wait_up(&good, 10000), 0, "%s", rl_test_err());
	cr_assert_neq(rl_node_wait_up(&bad, 1500), 0,
		      "a wrong password must not bring the link up");
	cr_assert(rl_test_server_log_has(&bad.s, "WRONGPASS"), "the refusal is logged");
	cr_expect_eq(rl_test_server_stop(&good.s, 0), 0);
	cr_expect_eq(rl_test_server_stop(&bad.s, 0), 0);
	rl_test_server_free(&good.s);
	rl_test_server_free(&bad.s);
	unlink(right);
	unlink(wrong);
	rl_redis_free(&r);
}

Test(cluster_presence, bad_cluster_options_are_refused_at_start_naming_the_option)
{
	struct {
		const char *args[5];
		const char *says;
	} cases[] = {
	    {{"--cluster", "http://x", NULL}, "--cluster"},
	    {{"--cluster", "redis://127.0.0.1:notaport", NULL}, "--cluster"},
	    {{"--cluster", "redis://127.0.0.1:1", "--node-id", "has space", NULL}, "--node-id"},
	    {{"--cluster", "redis://127.0.0.1:1", "--cluster-password-file", "/nonexistent/pw",
	      NULL},
	     "--cluster-password-file"},
	    {{"--cluster", "redis://127.0.0.1:1", "--cluster-node-ttl", "0.1", NULL},
	     "--cluster-node-ttl"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[1024];
		const char *args[8] = {"--port", "0"};
		for (int k = 0; cases[i].args[k]; k++)
			args[2 + k] = cases[i].args[k];
		int st = rl_test_run_relayd(args, NULL, 10000, NULL, 0, err, sizeof(err));
		cr_expect_eq(st, 1, "case %zu: exit status %d", i, st);
		cr_expect(strstr(err, cases[i].says), "case %zu: %s", i, err);
	}
}
