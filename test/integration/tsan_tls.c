/* tsan_tls.c -- TLS handshakes on every worker while the certificate is
 * reloaded over and over (suite 'tsan'; a plain executable because
 * Criterion cannot run under ThreadSanitizer; exit status 0 = pass).
 *
 * relayd --workers 4 with a TLS listener; THREADS client threads connect
 * over TLS again and again (handshake, HELLO, one message to a shared room,
 * close) while the main thread alternates the certificate files between two
 * certificates and sends SIGHUP every few milliseconds: workers read the
 * published context as QSBR readers while the main thread swaps it and
 * frees the old one after a grace period (net/tls.c). Every handshake must
 * succeed and see one of the two serials; relayd must log reloads, exit 0
 * on SIGTERM and leave no sanitizer report in its stderr. In the TSan build
 * relayd itself is instrumented and TSAN_OPTIONS (halt_on_error=1) reaches
 * it through the environment.
 *
 * Threading: main thread spawns/stops relayd and reloads; each client
 * thread owns its connections; shared state is the stop flag, counters and
 * the failure text. */
#include "harness.h"
#include "tsan_util.h"

#include <relay/protocol.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { THREADS = 4, RELOADS = 40, T_MS = 10000 };

static atomic_bool stop;
static atomic_ulong handshakes, by_serial[2];

static void *client_thread(void *arg)
{
	const struct rl_test_server *s = arg;
	while (!atomic_load(&stop) && !rl_tsan_failed()) {
		struct rl_test_client *c = rl_test_connect_tls(s->host, s->tls_port, T_MS);
		char serial[80], subject[256];
		if (c == NULL) {
			rl_tsan_fail("TLS connect");
			break;
		}
		if (rl_test_tls_peer_cert(c, serial, sizeof(serial), subject, sizeof(subject)) !=
			0 ||
		    (strcmp(serial, "A1") != 0 && strcmp(serial, "B2") != 0)) {
			rl_test_set_err("serial %s", serial);
			rl_tsan_fail("peer certificate");
		} else if (rl_test_hello(c, NULL, T_MS) == NULL ||
			   rl_test_join(c, "tls", NULL, T_MS) ||
			   rl_test_send_json(c, RELAY_MSG_MESSAGE,
					     "{\"room\":\"tls\",\"content\":1}") ||
			   rl_test_sync_skip(c, T_MS, NULL)) {
			rl_tsan_fail("session");
		} else {
			atomic_fetch_add(&handshakes, 1);
			atomic_fetch_add(&by_serial[serial[0] == 'B'], 1);
		}
		rl_test_close(c);
	}
	return NULL;
}

static int make(const char *dir, const char *cn, const char *serial)
{
	char cert[300], key[300], tc[300], tk[300];
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(tc, sizeof(tc), "%s/new-cert.pem", dir);
	snprintf(tk, sizeof(tk), "%s/new-key.pem", dir);
	if (rl_test_tls_make_cert(tc, tk, cn, serial) != 0 || rename(tk, key) != 0 ||
	    rename(tc, cert) != 0)
		return -1;
	return 0;
}

int main(void)
{
	char dir[] = "/tmp/relay-tsan-tls-XXXXXX", cert[300], key[300];
	struct rl_test_server s;
	int rc = 0;

	if (rl_test_external()) {
		fprintf(stderr, "tsan-tls needs its own relayd; RELAY_TEST_ADDR set: skipped\n");
		return 77;
	}
	if (!mkdtemp(dir) || make(dir, "relay-one", "A1") != 0) {
		fprintf(stderr, "certificate: %s\n", rl_test_err());
		return 1;
	}
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	const char *args[] = {"--workers", "4",		"--tls-port", "0", "--tls-cert",
			      cert,	   "--tls-key", key,	      NULL};
	if (rl_test_server_start(&s, args, NULL, 60000) != 0) {
		fprintf(stderr, "start relayd: %s\n", rl_test_err());
		return 1;
	}
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, client_thread, &s);
	/* Alternate the certificate and reload while handshakes run. */
	for (int i = 0; i < RELOADS && !rl_tsan_failed(); i++) {
		if (i % 10 == 0 &&
		    make(dir, i % 20 ? "relay-one" : "relay-two", i % 20 ? "A1" : "B2")) {
			fprintf(stderr, "certificate: %s\n", rl_test_err());
			rc = 1;
			break;
		}
		rl_test_server_signal(&s, SIGHUP);
		usleep(20000); /* pacing between reloads; correctness does not depend on it */
	}
	atomic_store(&stop, true);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	rc |= rl_tsan_verdict("tsan-tls");
	if (!rl_test_server_log_has(&s, "tls: reloaded")) {
		fprintf(stderr, "no reload in relayd's log\n");
		rc = 1;
	}
	rc |= rl_tsan_server_finish(&s, "tsan-tls", 60000, NULL);
	fprintf(stderr, "tsan-tls: %lu TLS sessions (%lu with A1, %lu with B2) over %d reloads\n",
		atomic_load(&handshakes), atomic_load(&by_serial[0]), atomic_load(&by_serial[1]),
		RELOADS);
	if (atomic_load(&handshakes) == 0) {
		fprintf(stderr, "no TLS session completed\n");
		rc = 1;
	}
	rl_test_server_free(&s);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	return rc;
}
