/* test_cli_auth.c -- relay-cli against a relayd that requires tokens
 * (--auth-key): a token minted by `relay-cli token` and sent with --token or
 * --token-file lets sub and pub in (the sub's --json output shows the
 * token's sub as the userId); a refused token is reported with the
 * server's rule; the argument errors of --token-file.
 *
 * Threading: each Criterion test runs in its own process with its own relayd.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cli_run.h"
#include "itest.h"
#include "token_fixture.h"

static struct tok_fixture fx;
static struct rl_test_server srv;
static char port[8];

static void setup(void)
{
	cr_assert_eq(tok_fixture_make(&fx), 0);
	IT_START(&srv, "--auth-key", tok_fixture_path(&fx, "hs.key"));
	snprintf(port, sizeof(port), "%u", (unsigned)srv.port);
}

static void teardown(void)
{
	int st = rl_test_server_stop(&srv, 0);
	cr_expect_eq(st, 0, "relayd exit status %d", st);
	rl_test_server_free(&srv);
	rl_test_cleanup_all();
	tok_fixture_remove(&fx);
}

TestSuite(cli_auth, .init = setup, .fini = teardown, .timeout = RL_TEST_BODY_S);

/* `relay-cli token --key <key> --sub <sub> <more...>`'s token, in <out>. */
static void mint(const char *key, const char *sub, const char *more, char *out, size_t cap)
{
	struct cli_run r;
	const char *args[] = {"token", "--key", tok_fixture_path(&fx, key),   "--sub", sub,
			      "--ttl", "10m",	more ? "--rooms-join" : NULL, more,    NULL};
	int st = cli_run(&r, args, NULL, RL_TEST_BULK_MS);
	cr_assert_eq(st, 0, "relay-cli token: %d %s", st, r.err_buf);
	cr_assert(r.out_len > 1 && r.out_len < cap);
	memcpy(out, r.out_buf, r.out_len - 1);
	out[r.out_len - 1] = '\0';
	cli_free(&r);
}

Test(cli_auth, sub_and_pub_authenticate_with_token_and_token_file)
{
	char tsub[4200], tpub[4200];
	struct cli_run sub, pub;
	mint("hs.key", "reader", NULL, tsub, sizeof(tsub));
	mint("hs.key", "writer", NULL, tpub, sizeof(tpub));
	FILE *f = fopen(tok_fixture_path(&fx, "writer.token"), "w");
	cr_assert_not_null(f);
	fprintf(f, "%s\n", tpub);
	fclose(f);

	cr_assert_eq(cli_start(&sub,
			       (const char *[]){"--port", port, "--token", tsub, "--json", "sub",
						"room", "--count", "1", NULL},
			       NULL, false),
		     0);
	cr_assert(cli_expect(&sub, true, "subscribed to", NULL, RL_TEST_BULK_MS) == 0, "stderr: %s",
		  sub.err_buf);
	int st = cli_run(&pub,
			 (const char *[]){"--port", port, "--token-file",
					  tok_fixture_path(&fx, "writer.token"), "pub", "room",
					  "hi", NULL},
			 NULL, RL_TEST_BULK_MS);
	cr_assert_eq(st, 0, "pub: %d %s", st, pub.err_buf);
	cli_free(&pub);
	cr_assert_eq(cli_wait(&sub, RL_TEST_BULK_MS), 0, "sub: %s", sub.err_buf);
	cr_assert(strstr(sub.out_buf, "\"userId\":\"writer\"") && strstr(sub.out_buf, "\"hi\""),
		  "%s", sub.out_buf);
	cli_free(&sub);
}

Test(cli_auth, a_refused_token_or_none_is_reported_with_the_servers_rule)
{
	char bad[4200];
	struct cli_run r;
	mint("hs2.key", "x", NULL, bad, sizeof(bad));
	int st =
	    cli_run(&r, (const char *[]){"--port", port, "--token", bad, "pub", "r", "x", NULL},
		    NULL, RL_TEST_BULK_MS);
	cr_assert_eq(st, 1);
	cr_assert(strstr(r.err_buf, "UNAUTHORIZED: token signature does not verify"), "%s",
		  r.err_buf);
	cli_free(&r);
	st = cli_run(&r, (const char *[]){"--port", port, "pub", "r", "x", NULL}, NULL,
		     RL_TEST_BULK_MS);
	cr_assert_eq(st, 1);
	cr_assert(strstr(r.err_buf, "UNAUTHORIZED: HELLO must carry a token"), "%s", r.err_buf);
	cli_free(&r);
}

Test(cli_auth, a_forbidden_room_is_reported_and_sub_exits_1)
{
	char t[4200];
	struct cli_run r;
	mint("hs.key", "x", "lobby", t, sizeof(t));
	int st = cli_run(&r, (const char *[]){"--port", port, "--token", t, "sub", "secret", NULL},
			 NULL, RL_TEST_BULK_MS);
	cr_assert_eq(st, 1);
	cr_assert(strstr(r.err_buf, "FORBIDDEN"), "%s", r.err_buf);
	cli_free(&r);
}

Test(cli_auth, token_file_errors_are_one_line_and_status_1)
{
	struct cli_run r;
	FILE *f = fopen(tok_fixture_path(&fx, "empty.token"), "w");
	cr_assert_not_null(f);
	fputs("\n", f);
	fclose(f);
	const char *missing = tok_fixture_path(&fx, "missing.token");
	const char *empty = tok_fixture_path(&fx, "empty.token");
	static const char *want[] = {"No such file", "no token in it", "give one of them"};
	const char *argvs[3][10] = {
	    {"--port", port, "--token-file", missing, "pub", "r", "x", NULL},
	    {"--port", port, "--token-file", empty, "pub", "r", "x", NULL},
	    {"--port", port, "--token-file", empty, "--token", "t", "pub", "r", "x", NULL},
	};
	for (size_t i = 0; i < 3; i++) {
		const char *const *args = argvs[i];
		int st = cli_run(&r, args, NULL, RL_TEST_BULK_MS);
		cr_assert_eq(st, 1, "case %zu: %d", i, st);
		cr_assert(strstr(r.err_buf, want[i]), "case %zu: %s", i, r.err_buf);
		cli_free(&r);
	}
}
