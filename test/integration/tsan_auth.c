/* tsan_auth.c -- authentication while the key set is swapped (suite 'tsan';
 * a plain executable because Criterion cannot run under ThreadSanitizer;
 * exit status 0 = pass).
 *
 * relayd --workers 2 with two keys (HS256 "h", EdDSA "e"). THREADS client
 * threads each open connection after connection, authenticate with an HS256
 * or an EdDSA token (in turn), refresh it once, join a room and publish,
 * while the main thread sends SIGHUP after SIGHUP: every worker verifies
 * HELLOs against the key set the main thread replaces (keyring.c's RCU
 * pointer, the old set freed after a grace period), and arms and disarms the
 * connections' HELLO and expiry timers. Every HELLO must be acked; relayd
 * must exit 0 on SIGTERM (an ASan/LSan build that leaks does not, and in the
 * TSan build TSAN_OPTIONS' halt_on_error reaches relayd) and its stderr must
 * hold no sanitizer report.
 *
 * Threading: main thread spawns/signals/stops relayd; each client thread
 * owns its connections; shared state is the stop flag and the failure text. */
#include "harness.h"
#include "tsan_util.h"
#include "token_fixture.h"

#include "relay/token.h"

#include <relay/protocol.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { THREADS = 3, RELOADS = 40 };

static struct tok_fixture fx;
static char tokens[2][2048]; /* HS256 (kid h), EdDSA (kid e); sub "t" */
static atomic_bool stop;
static atomic_ulong hellos;

static int mint(int i, const char *key, const char *hdr)
{
	struct rl_token_signer *s = NULL;
	char err[256], claims[128];
	snprintf(claims, sizeof(claims), "{\"sub\":\"t\",\"exp\":%lld}",
		 (long long)(rl_test_wall_ms() / 1000 + 600));
	if (rl_token_signer_load(tok_fixture_path(&fx, key), &s, err, sizeof(err))) {
		fprintf(stderr, "tsan-auth: %s\n", err);
		return -1;
	}
	long n = rl_token_sign(s, hdr, strlen(hdr), claims, strlen(claims), tokens[i],
			       sizeof(tokens[i]));
	rl_token_signer_free(s);
	return n > 0 ? 0 : -1;
}

static bool hello(struct rl_test_client *c, int which)
{
	char json[2200];
	snprintf(json, sizeof(json), "{\"token\":\"%s\"}", tokens[which]);
	if (!rl_test_hello(c, json, RL_TEST_REPLY_MS))
		return false;
	atomic_fetch_add(&hellos, 1);
	return true;
}

static void *client_thread(void *arg)
{
	const struct rl_test_server *s = arg;
	for (unsigned i = 0; !atomic_load(&stop) && !rl_tsan_failed(); i++) {
		struct rl_test_client *c = rl_test_connect(s, RL_TEST_REPLY_MS);
		if (!c) {
			rl_tsan_fail("connect");
			break;
		}
		if (!hello(c, i % 2) || !hello(c, (i + 1) % 2)) /* then a refresh */
			rl_tsan_fail("HELLO");
		else if (rl_test_join(c, "tsan-auth", NULL, RL_TEST_REPLY_MS) ||
			 rl_test_send_json(c, RELAY_MSG_MESSAGE,
					   "{\"room\":\"tsan-auth\",\"content\":%u}", i) ||
			 rl_test_sync_skip(c, RL_TEST_REPLY_MS, NULL))
			rl_tsan_fail("join/publish");
		rl_test_close(c);
	}
	return NULL;
}

int main(void)
{
	struct rl_test_server s;
	char k1[600], k2[600];
	if (rl_test_external()) {
		fprintf(stderr, "tsan-auth needs its own relayd; RELAY_TEST_ADDR set: skipped\n");
		return 77;
	}
	if (tok_fixture_make(&fx) || mint(0, "hs.key", "{\"alg\":\"HS256\",\"kid\":\"h\"}") ||
	    mint(1, "ed.pem", "{\"alg\":\"EdDSA\",\"kid\":\"e\"}"))
		return 1;
	snprintf(k1, sizeof(k1), "h=%s", tok_fixture_path(&fx, "hs.key"));
	snprintf(k2, sizeof(k2), "e=%s", tok_fixture_path(&fx, "ed.pub"));
	const char *args[] = {"--workers", "2", "--auth-key", k1, "--auth-key", k2, NULL};
	if (rl_test_server_start(&s, args, NULL, 0) != 0) {
		fprintf(stderr, "start relayd: %s\n", rl_test_err());
		return 1;
	}
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, client_thread, &s);
	/* Reloads paced a few ms apart (pacing, not synchronisation: each one
	 * swaps the set while the threads verify). */
	for (int i = 0; i < RELOADS && !rl_tsan_failed(); i++) {
		rl_test_server_signal(&s, SIGHUP);
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop, true);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	int rc = rl_tsan_verdict("tsan-auth");
	if (!rl_test_server_log_has(&s, "auth: reloaded 2 keys: h (HS256), e (EdDSA)")) {
		fprintf(stderr, "no reload was logged\n");
		rc = 1;
	}
	rc |= rl_tsan_server_finish(&s, "tsan-auth", 0, NULL);
	fprintf(stderr, "tsan-auth: %lu HELLOs acked by %d threads during %d key reloads: %s\n",
		atomic_load(&hellos), THREADS, RELOADS, rc == 0 ? "ok" : "FAILED");
	rl_test_server_free(&s);
	tok_fixture_remove(&fx);
	return rc;
}
