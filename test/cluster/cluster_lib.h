/* cluster_lib.h -- what the cluster tests share: a real redis-server on an
 * ephemeral loopback port (started, stopped, paused, restarted, asked), and
 * relayd nodes joined to it through the test harness (test/lib/harness.h).
 *
 * redis-server runs with --save '' --appendonly no, spawned through the
 * harness's guard (RELAY_TEST_GUARD) so a test that dies never leaves it
 * behind. Its port comes from binding port 0 first (redis has no --port 0);
 * a start that loses the port to someone else is retried on another one.
 *
 * Threading: a struct rl_redis / rl_node belongs to one thread; rl_redis_cmd
 * opens its own connection, so any thread may use it.
 * Returns: 0 or -errno / -1, with rl_test_err() saying why. */
#ifndef RL_CLUSTER_LIB_H
#define RL_CLUSTER_LIB_H

#include "harness.h"

#include <relay/protocol.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct rl_redis {
	pid_t pid;
	uint16_t port;
	char url[64];	    /* redis://127.0.0.1:PORT */
	char log_path[128]; /* its stdout/stderr */
};

/* Starts redis-server on a free loopback port; waits until it answers PING. */
int rl_redis_start(struct rl_redis *r);
/* Starts it again on the same port (after rl_redis_shutdown). */
int rl_redis_restart(struct rl_redis *r);
/* SHUTDOWN NOSAVE, then waits for the process to exit. */
int rl_redis_shutdown(struct rl_redis *r);
/* SIGKILL (if running) and reap; removes the log. Idempotent. */
void rl_redis_free(struct rl_redis *r);
int rl_redis_signal(const struct rl_redis *r, int sig);

/* Runs one command (NULL-terminated words) and renders the reply into <out>:
 * strings and integers as text, nil as "(nil)", errors as "-ERR ...",
 * arrays as their elements joined by '\n'. 0 or -1. */
int rl_redis_cmd(const struct rl_redis *r, char *out, size_t cap, ...) __attribute__((sentinel));
/* The integer reply of a command, or LLONG_MIN on failure. */
long long rl_redis_int(const struct rl_redis *r, ...) __attribute__((sentinel));
/* Waits up to <timeout_ms> until PUBSUB NUMSUB <channel> is <n>. */
int rl_redis_wait_numsub(const struct rl_redis *r, const char *channel, long long n,
			 int timeout_ms);

/* ---- nodes ------------------------------------------------------------------ */

struct rl_node {
	struct rl_test_server s;
	char id[32];
	char admin[80]; /* HOST:PORT of its admin endpoint */
};

/* Starts relayd --workers 2 --cluster <r> --node-id <id> --cluster-node-ttl 2
 * --cluster-linger 0.2 --admin 127.0.0.1:0, then <extra> (NULL-terminated,
 * may be NULL; later options win). Does not wait for the bus link. */
int rl_node_start(struct rl_node *n, const struct rl_redis *r, const char *id,
		  const char *const *extra);
/* Waits up to <timeout_ms> until /health says "cluster":"up". */
int rl_node_wait_up(struct rl_node *n, int timeout_ms);
/* GET <path> from its admin endpoint: the body (NUL-terminated) into <body>;
 * returns the HTTP status or -1. */
int rl_node_http(const struct rl_node *n, const char *path, char *body, size_t cap);
/* The value of the /metrics sample <name> (with its labels, exactly as
 * printed, e.g. relay_cluster_dropped_total{direction="out"}), or -1. */
double rl_node_metric(const struct rl_node *n, const char *name);

/* A client on <n> that said HELLO (with "userId":<user> when not NULL) and
 * joined <room> (when not NULL). NULL on failure. */
struct rl_test_client *rl_node_client(const struct rl_node *n, const char *user, const char *room);

/* Receives until a MESSAGE JSON frame with "type":<type> and "room":<room>
 * arrives (other frames are skipped and counted into *<skipped>, may be
 * NULL). Returns it or NULL. */
const struct rl_test_frame *rl_expect_event(struct rl_test_client *c, const char *type,
					    const char *room, int timeout_ms, size_t *skipped);

#endif
