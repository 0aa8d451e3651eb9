/* tsan_cluster.c -- the cluster bridge thread against the workers under
 * ThreadSanitizer (issue 13, test 8; suite 'tsan': a plain executable
 * because Criterion cannot run under TSan; exit status 0 = pass).
 *
 * Two nodes (--workers 2 each) on one redis-server. Client threads on both
 * nodes join, leave, publish and disconnect in three shared rooms for about
 * CHURN_MS, so the bridge publishes, delivers to both workers, counts
 * members, subscribes, lingers and unsubscribes while the workers run;
 * half-way redis is shut down and restarted, so the reconnect path (gap
 * events, resubscription, re-announcing counts) races the workers too.
 * Then every node must exit 0 on SIGTERM and its stderr must hold no
 * sanitizer report. In the TSan build relayd itself is instrumented and
 * TSAN_OPTIONS (halt_on_error=1) reaches it through the environment.
 *
 * Threading: the main thread owns redis and the nodes; each client thread
 * owns its connections; shared state is the stop flag and the failure text. */
#include "cluster_lib.h"
#include "tsan_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NODES = 2, THREADS = 4, ROOMS = 3, CHURN_MS = 4000, T_MS = 15000 };

static atomic_bool stop;
static atomic_ulong frames;

struct worker {
	struct rl_node *n[NODES];
	unsigned seed;
};

/* Sends a request and waits for its reply of <type>, counting the room
 * traffic that arrives meanwhile. */
static bool request(struct rl_test_client *c, uint8_t type, const char *room, bool msg)
{
	int rc = msg ? rl_test_send_json(c, type, "{\"room\":\"%s\",\"content\":1}", room)
		     : rl_test_send_json(c, type, "{\"room\":\"%s\"}", room);
	if (rc)
		return false;
	if (msg)
		return true; /* no reply to a MESSAGE */
	for (;;) {
		const struct rl_test_frame *f = rl_test_recv(c, T_MS);
		if (!f)
			return false;
		if (f->type == type)
			return true;
		atomic_fetch_add(&frames, 1);
	}
}

static void *client_main(void *arg)
{
	struct worker *w = arg;
	while (!atomic_load(&stop) && !rl_tsan_failed()) {
		struct rl_node *n = w->n[rand_r(&w->seed) % NODES];
		struct rl_test_client *c = rl_node_client(n, "t", NULL);
		if (!c) {
			rl_tsan_fail("connect");
			break;
		}
		for (int i = 0; i < 40 && !atomic_load(&stop); i++) {
			char room[16];
			snprintf(room, sizeof(room), "ts-%d", rand_r(&w->seed) % ROOMS);
			int op = rand_r(&w->seed) % 4;
			bool ok = op == 0   ? request(c, RELAY_MSG_LEAVE_ROOM, room, false)
				  : op == 1 ? request(c, RELAY_MSG_JOIN_ROOM, room, false)
					    : request(c, RELAY_MSG_MESSAGE, room, true) &&
						  request(c, RELAY_MSG_JOIN_ROOM, room, false);
			if (!ok) {
				rl_tsan_fail("request");
				break;
			}
		}
		rl_test_close(c); /* leaves whatever it is in */
	}
	return NULL;
}

/* Stops node <n>: it must exit 0 with no sanitizer report in its stderr
 * (any mention of TSan, ASan or UBSan, LSan's summary included). */
static int check_node(struct rl_node *n)
{
	static const char *const reports[] = {"ThreadSanitizer", "AddressSanitizer",
					      "runtime error", NULL};
	char who[64];
	snprintf(who, sizeof(who), "tsan-cluster: node %s", n->id);
	return rl_tsan_server_finish(&n->s, who, 60000, reports);
}

int main(void)
{
	struct rl_redis r;
	struct rl_node n[NODES];
	static const char *const ids[NODES] = {"A", "B"};
	struct worker w[THREADS];
	pthread_t t[THREADS];
	int status = 0;

	if (rl_redis_start(&r)) {
		fprintf(stderr, "tsan-cluster: %s\n", rl_test_err());
		return 1;
	}
	for (int i = 0; i < NODES; i++)
		if (rl_node_start(&n[i], &r, ids[i], NULL) || rl_node_wait_up(&n[i], T_MS)) {
			fprintf(stderr, "tsan-cluster: node %s: %s\n", ids[i], rl_test_err());
			rl_redis_free(&r);
			return 1;
		}
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.n = {&n[0], &n[1]}, .seed = 17u * (unsigned)i + 3};
		pthread_create(&t[i], NULL, client_main, &w[i]);
	}
	usleep(CHURN_MS / 2 * 1000);
	if (rl_redis_shutdown(&r) || (usleep(200 * 1000), rl_redis_restart(&r))) {
		rl_tsan_fail("redis restart");
	}
	for (int i = 0; i < NODES && !rl_tsan_failed(); i++)
		if (rl_node_wait_up(&n[i], T_MS))
			rl_tsan_fail("reconnect");
	usleep(CHURN_MS / 2 * 1000);
	atomic_store(&stop, true);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	status |= rl_tsan_verdict("tsan-cluster");
	for (int i = 0; i < NODES; i++) {
		status |= check_node(&n[i]);
		rl_test_server_free(&n[i].s);
	}
	rl_redis_free(&r);
	printf("tsan-cluster: %lu room frames received, %s\n", atomic_load(&frames),
	       status ? "FAILED" : "ok");
	return status;
}
