/* tsan_ops.c -- the admin thread and SIGHUP reloads racing the workers.
 * A plain executable (exit status = verdict) so it also runs in the 'tsan'
 * setup, where relayd is built with ThreadSanitizer and any report aborts it
 * (halt_on_error=1): clients publish across rooms and workers while this
 * test scrapes /metrics, /stats and /rooms (admin thread: relaxed loads of
 * the workers' counters, an RCU walk of the room table) and rewrites the
 * config file + SIGHUPs (main thread: atomic stores of live options the
 * workers read). relayd must then stop with exit status 0.
 * Threading: one thread. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <relay/protocol.h>

#include "expo_check.h"
#include "harness.h"
#include "ops_http.h"

#define NCLIENTS 8
#define ROUNDS 24

static struct rl_test_server srv;
static char cfg[160];

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "tsan-ops: FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	rl_test_server_stop(&srv, RL_TEST_REPLY_MS);
	rl_test_server_free(&srv);
	unlink(cfg);
	exit(1);
}

static void write_cfg(unsigned round)
{
	FILE *f = fopen(cfg, "w");
	if (!f)
		fail("cannot write %s", cfg);
	fprintf(f,
		"[relayd]\nmax-connections = %u\nidle-timeout = %u\nmax-rooms-per-conn = %u\n"
		"outbound-hard-limit = %uM\nlog-level = %s\n",
		1000 + round, 60 + round, 16 + round, 8 + round % 4, round % 2 ? "warn" : "info");
	fclose(f);
}

static void scrape(const char *admin, const char *path)
{
	struct ops_http_reply r;
	char err[256];
	if (ops_http(admin, "GET", path, RL_TEST_REPLY_MS, &r, err, sizeof(err)) != 0)
		fail("GET %s: %s", path, err);
	if (r.status != 200)
		fail("GET %s: status %d", path, r.status);
	if (strcmp(path, "/metrics") == 0 && expo_check(r.body, r.len, NULL, err, sizeof(err)) != 0)
		fail("/metrics: %s", err);
	ops_http_free(&r);
}

int main(void)
{
	struct rl_test_client *c[NCLIENTS];
	char admin[200], line[200];
	snprintf(cfg, sizeof(cfg), "%s/relayd-tsan-ops-%d.conf",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	write_cfg(0);
	const char *args[] = {"--workers", "2", "--admin", "127.0.0.1:0", "--config", cfg, NULL};
	if (rl_test_server_start(&srv, args, NULL, 0) != 0)
		fail("start: %s", rl_test_err());
	if (rl_test_server_stdout_line(&srv, "relayd admin on ", line, sizeof(line),
				       RL_TEST_REPLY_MS) != 0)
		fail("admin line: %s", rl_test_err());
	snprintf(admin, sizeof(admin), "%s", line + strlen("relayd admin on "));
	for (int i = 0; i < NCLIENTS; i++) {
		char room[16];
		snprintf(room, sizeof(room), "r%d", i % 3);
		c[i] = rl_test_connect(&srv, RL_TEST_REPLY_MS);
		if (!c[i] || !rl_test_hello(c[i], NULL, RL_TEST_REPLY_MS) ||
		    rl_test_join(c[i], room, NULL, RL_TEST_REPLY_MS) != 0)
			fail("client %d: %s", i, rl_test_err());
	}
	for (unsigned round = 1; round <= ROUNDS; round++) {
		for (int i = 0; i < NCLIENTS; i++)
			if (rl_test_send_json(c[i], RELAY_MSG_MESSAGE,
					      "{\"room\":\"r%d\",\"content\":%u}", i % 3,
					      round) != 0)
				fail("send: %s", rl_test_err());
		scrape(admin, "/metrics");
		scrape(admin, "/rooms?limit=2");
		scrape(admin, "/stats");
		if (round % 4 == 0) {
			write_cfg(round);
			if (rl_test_server_signal(&srv, SIGHUP) != 0)
				fail("SIGHUP: %s", rl_test_err());
		}
	}
	for (int i = 0; i < NCLIENTS; i++) {
		if (rl_test_sync_skip(c[i], RL_TEST_REPLY_MS, NULL) != 0)
			fail("sync %d: %s", i, rl_test_err());
		rl_test_close(c[i]);
	}
	if (!rl_test_server_log_has(&srv, "config: reloaded"))
		fail("no reload was logged");
	int st = rl_test_server_stop(&srv, RL_TEST_REPLY_MS);
	if (st != 0)
		fail("relayd exit status %d", st);
	rl_test_server_free(&srv);
	unlink(cfg);
	printf("tsan-ops: ok (%d clients, %d rounds, %d reloads)\n", NCLIENTS, ROUNDS, ROUNDS / 4);
	return 0;
}
