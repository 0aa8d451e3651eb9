/* test_cli_tls.c -- relay-cli over TLS (--tls, --tls-ca, --tls-insecure)
 * against a relayd with a TLS listener and the harness's self-signed test
 * certificate (made with the openssl command, test/lib/tls_client.c): sub
 * and pub round trips that share a room with a plain TCP client, the
 * interactive mode, and the refusals -- an unverifiable certificate, TLS to
 * a plain port -- each one line and status 1.
 *
 * Threading: each Criterion test runs in its own process with its own relayd.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_run.h"
#include "harness.h"

#define T_MS 15000 /* generous: ASan builds on 2 shared cores */

static struct rl_test_server srv;
static char port[16], tls_port[16];
static const char *cert;

static void srv_start(void)
{
	const char *key;
	cr_assert(rl_test_tls_files(&cert, &key) == 0, "%s", rl_test_err());
	const char *args[] = {"--tls-port", "0", "--tls-cert", cert, "--tls-key", key, NULL};
	cr_assert(rl_test_server_start(&srv, args, NULL, 0) == 0, "%s", rl_test_err());
	cr_assert(srv.tls_port > 0, "no TLS listening line");
	snprintf(port, sizeof port, "%u", srv.port);
	snprintf(tls_port, sizeof tls_port, "%u", srv.tls_port);
}

static void srv_stop(void)
{
	cr_expect(rl_test_server_stop(&srv, 0) == 0, "relayd did not exit cleanly");
	rl_test_server_free(&srv);
}

static size_t lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void pub_ok(const char *const *args)
{
	struct cli_run r;
	int st = cli_run(&r, args, NULL, T_MS);

	cr_assert(st == 0, "pub exited %d; stderr: %s", st, r.err_buf);
	cli_free(&r);
}

/* Runs relay-cli, expects status 1 and exactly one stderr line holding <needle>. */
static void fails_with(const char *const *args, const char *needle)
{
	struct cli_run r;
	int st = cli_run(&r, args, NULL, T_MS);

	cr_assert_eq(st, 1, "exit %d; stderr: %s", st, r.err_buf);
	cr_assert(strstr(r.err_buf, needle), "expected '%s' in stderr: %s", needle, r.err_buf);
	cr_assert_eq(lines(r.err_buf), 1, "not one line: %s", r.err_buf);
	cli_free(&r);
}

TestSuite(cli_tls, .init = srv_start, .fini = srv_stop, .timeout = 60);

/* sub over TLS (verified against --tls-ca) gets what pub sends over TLS,
 * over TLS without verification, and over plain TCP, in order. */
Test(cli_tls, sub_and_pub_over_tls_share_a_room_with_tcp)
{
	struct cli_run sub;

	cr_assert(cli_start(&sub,
			    (const char *[]){"--port", tls_port, "--tls-ca", cert, "sub", "sec",
					     "--count", "3", NULL},
			    NULL, false) == 0);
	cr_assert(cli_expect(&sub, true, "subscribed to", NULL, T_MS) == 0, "stderr: %s",
		  sub.err_buf);
	pub_ok((const char *[]){"--port", tls_port, "--tls-ca", cert, "pub", "sec", "one ✓", NULL});
	pub_ok((const char *[]){"--port", tls_port, "--tls-insecure", "pub", "sec", "two", NULL});
	pub_ok((const char *[]){"--port", port, "pub", "sec", "three", NULL});
	cr_assert(cli_wait(&sub, T_MS) == 0, "sub: stderr: %s", sub.err_buf);
	cr_assert_str_eq(sub.out_buf, "one ✓\ntwo\nthree\n");
	cli_free(&sub);
}

/* The interactive mode over TLS, commands from a pipe; the name checked is
 * the host given (the test certificate names 127.0.0.1 and localhost). */
Test(cli_tls, interactive_over_tls)
{
	struct cli_run a;
	size_t pos = 0;

	cr_assert(cli_start(&a, (const char *[]){"--tls-ca", cert, "localhost", tls_port, NULL},
			    NULL, false) == 0);
	cli_write(&a, "join lobby\nheartbeat\nquit\n");
	cr_assert(cli_wait(&a, T_MS) == 0, "stderr: %s", a.err_buf);
	cr_assert(cli_expect(&a, false, "connected to localhost:", &pos, 0) == 0, "%s", a.out_buf);
	cr_assert(cli_expect(&a, false, "joined lobby (1 member)\n", &pos, 0) == 0, "%s",
		  a.out_buf);
	cr_assert(cli_expect(&a, false, "heartbeat: round trip ", &pos, 0) == 0, "%s", a.out_buf);
	cli_free(&a);
}

/* A self-signed certificate is not trusted by the system's CAs: --tls alone
 * refuses it; --tls to the plain port is no TLS server at all. */
Test(cli_tls, unverifiable_certificates_and_plain_ports_are_one_line_and_status_1)
{
	fails_with((const char *[]){"--port", tls_port, "--tls", "pub", "r", "m", NULL},
		   "certificate verify failed: self-signed certificate");
	fails_with((const char *[]){"--port", port, "--tls-insecure", "pub", "r", "m", NULL},
		   "TLS handshake with 127.0.0.1 failed");
	fails_with((const char *[]){"--tls-ca", "/nonexistent.pem", "--tls-insecure", NULL},
		   "--tls-ca and --tls-insecure exclude each other");
}
