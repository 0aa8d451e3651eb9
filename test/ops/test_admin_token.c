/* test_admin_token.c -- the admin endpoint's bearer token
 * (--admin-token-file, src/relayd/ops/admin.c) and the access-control
 * counters (base/stats_list.h: relay_auth_*) against a live relayd:
 * /metrics, /stats and /rooms answer 401 with WWW-Authenticate without the
 * right "Authorization: Bearer" header, /health never asks; a non-loopback
 * admin address without a token is warned about; each authentication
 * refusal, FORBIDDEN and expiry is counted under its label.
 * Threading: Criterion test bodies (each its own process). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "expo_check.h"
#include "itest.h"
#include "ops_http.h"
#include "relay/token.h"
#include "token_fixture.h"

#define ADMIN_TOKEN "s3cret-admin-token_0123456789"

static struct tok_fixture fx;

static void fx_make(void)
{
	cr_assert_eq(tok_fixture_make(&fx), 0, "key fixture");
	FILE *f = fopen(tok_fixture_path(&fx, "admin.token"), "w");
	cr_assert_not_null(f);
	fputs(ADMIN_TOKEN "\n", f);
	fclose(f);
}

static void fx_done(void)
{
	rl_test_cleanup_all();
	tok_fixture_remove(&fx);
}

TestSuite(admin_token, .init = fx_make, .fini = fx_done, .timeout = RL_TEST_BODY_S);

/* Starts relayd with <args> (which include --admin); fills <admin>. */
static void start(struct rl_test_server *s, char *admin, size_t cap, const char *const *args)
{
	char line[160];
	it_start(s, args);
	cr_assert_eq(
	    rl_test_server_stdout_line(s, "relayd admin on ", line, sizeof(line), RL_TEST_REPLY_MS),
	    0, "%s", rl_test_err());
	snprintf(admin, cap, "%s", line + strlen("relayd admin on "));
}

/* GET <path> with the extra header lines <headers> (NULL: none). */
static struct ops_http_reply get(const char *admin, const char *path, const char *headers)
{
	struct ops_http_reply r;
	char err[256];
	cr_assert_eq(
	    ops_http_h(admin, "GET", path, headers, RL_TEST_REPLY_MS, &r, err, sizeof(err)), 0,
	    "GET %s: %s", path, err);
	return r;
}

static void expect_status(const char *admin, const char *path, const char *headers, int want)
{
	struct ops_http_reply r = get(admin, path, headers);
	char h[128] = "";
	cr_assert_eq(r.status, want, "GET %s with [%s]: %d %s", path, headers ? headers : "",
		     r.status, r.body);
	if (want == 401) {
		cr_assert_eq(ops_http_header(&r, "WWW-Authenticate", h, sizeof(h)), 0,
			     "401 without WWW-Authenticate");
		cr_assert_str_eq(h, "Bearer realm=\"relayd\"");
	}
	ops_http_free(&r);
}

Test(admin_token, only_health_is_open_without_the_bearer_token)
{
	struct rl_test_server s;
	char admin[160];
	const char *args[] = {"--admin", "127.0.0.1:0", "--admin-token-file",
			      tok_fixture_path(&fx, "admin.token"), NULL};
	start(&s, admin, sizeof(admin), args);
	static const char *const closed[] = {"/metrics", "/stats", "/rooms"};
	static const char *const wrong[] = {
	    NULL,
	    "Authorization: Bearer wrong\r\n",
	    "Authorization: Bearer " ADMIN_TOKEN "x\r\n",
	    "Authorization: Bearer s3cret-admin-token_012345678\r\n", /* one byte short */
	    "Authorization: Bearer\r\n",
	    "Authorization: Basic " ADMIN_TOKEN "\r\n",
	    "Authorization: " ADMIN_TOKEN "\r\n",
	};
	for (size_t i = 0; i < 3; i++) {
		for (size_t k = 0; k < sizeof(wrong) / sizeof(wrong[0]); k++)
			expect_status(admin, closed[i], wrong[k], 401);
		expect_status(admin, closed[i], "Authorization: Bearer " ADMIN_TOKEN "\r\n", 200);
		expect_status(admin, closed[i], "authorization: bearer " ADMIN_TOKEN "\r\n", 200);
	}
	expect_status(admin, "/health", NULL, 200);
	expect_status(admin, "/nowhere", NULL, 404);
	cr_assert_not(rl_test_server_log_has(&s, "not a loopback address"));
	it_stop(&s);
}

Test(admin_token, without_a_token_file_everything_is_open_and_a_public_address_is_warned_about)
{
	struct rl_test_server s;
	char admin[160], local[160];
	const char *args[] = {"--admin", "0.0.0.0:0", NULL};
	start(&s, admin, sizeof(admin), args);
	cr_assert(rl_test_server_log_has(&s, "is not a loopback address and --admin-token-file is "
					     "not set"));
	/* 0.0.0.0:PORT also answers on loopback. */
	snprintf(local, sizeof(local), "127.0.0.1%s", strrchr(admin, ':'));
	expect_status(local, "/metrics", NULL, 200);
	expect_status(local, "/rooms", NULL, 200);
	it_stop(&s);
}

Test(admin_token, an_unusable_token_file_stops_startup_naming_it)
{
	char out[512], err[512];
	FILE *f = fopen(tok_fixture_path(&fx, "short.token"), "w");
	cr_assert_not_null(f);
	fputs("tooshort\n", f);
	fclose(f);
	static const struct {
		const char *file, *want;
	} cases[] = {
	    {"short.token", "shorter than 16 bytes"},
	    {"missing.token", "No such file"},
	};
	for (size_t i = 0; i < 2; i++) {
		const char *args[] = {"--port",
				      "0",
				      "--admin",
				      "127.0.0.1:0",
				      "--admin-token-file",
				      tok_fixture_path(&fx, cases[i].file),
				      NULL};
		int st = rl_test_run_relayd(args, NULL, RL_TEST_START_MS, out, sizeof(out), err,
					    sizeof(err));
		cr_assert_eq(st, 1, "%s: status %d", cases[i].file, st);
		cr_assert(strstr(err, "relayd: --admin-token-file ") &&
			      strstr(err, cases[i].file) && strstr(err, cases[i].want),
			  "%s: %s", cases[i].file, err);
	}
}

/* ---- the counters ------------------------------------------------------------ */

static const char *mint(const char *key, const char *claims)
{
	static char bufs[4][4096];
	static unsigned next;
	static const char hdr[] = "{\"alg\":\"HS256\"}";
	struct rl_token_signer *s = NULL;
	char err[256];
	char *b = bufs[next++ % 4];
	cr_assert_eq(rl_token_signer_load(tok_fixture_path(&fx, key), &s, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_gt(rl_token_sign(s, hdr, strlen(hdr), claims, strlen(claims), b, sizeof(bufs[0])),
		     0);
	rl_token_signer_free(s);
	return b;
}

static struct rl_test_client *hello_token(const struct rl_test_server *s, const char *token)
{
	struct rl_test_client *c = it_connect(s);
	cr_assert_eq(rl_test_send_json(c, RELAY_MSG_HELLO, "{\"token\":\"%s\"}", token), 0);
	return c;
}

static double metric(const char *text, const char *series)
{
	double v = -1;
	cr_assert_eq(expo_value(text, series, &v), 0, "no %s in:\n%s", series, text);
	return v;
}

Test(admin_token, refusals_forbidden_requests_and_expiries_are_counted_by_label)
{
	struct rl_test_server s;
	char admin[160], claims[256];
	char key[600];
	snprintf(key, sizeof(key), "%s", tok_fixture_path(&fx, "hs.key"));
	const char *args[] = {"--admin",
			      "127.0.0.1:0",
			      "--admin-token-file",
			      tok_fixture_path(&fx, "admin.token"),
			      "--auth-key",
			      key,
			      "--auth-leeway",
			      "0",
			      "--hello-timeout",
			      "300ms",
			      NULL};
	start(&s, admin, sizeof(admin), args);
	int64_t now = rl_test_wall_ms() / 1000;

	struct rl_test_client *early = it_connect(&s);
	it_send_str(early, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"a\"}");
	it_fatal(early, "UNAUTHORIZED");
	snprintf(claims, sizeof(claims), "{\"sub\":\"x\",\"exp\":%lld}", (long long)now + 600);
	struct rl_test_client *forged = hello_token(&s, mint("hs2.key", claims));
	it_fatal(forged, "UNAUTHORIZED");
	struct rl_test_client *idle = it_connect(&s);
	it_fatal(idle, "UNAUTHORIZED");

	snprintf(claims, sizeof(claims),
		 "{\"sub\":\"x\",\"exp\":%lld,\"rooms\":{\"join\":[\"a\"]}}", (long long)now + 600);
	struct rl_test_client *limited = hello_token(&s, mint("hs.key", claims));
	it_expect(limited, RELAY_MSG_HELLO, RELAY_FLAG_JSON);
	it_send_str(limited, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, "{\"room\":\"b\"}");
	it_nonfatal(limited, "FORBIDDEN");
	it_join(limited, "a", 1);
	it_send_str(limited, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, "{\"room\":\"a\",\"content\":1}");
	it_nonfatal(limited, "FORBIDDEN");

	int64_t soon = rl_test_wall_ms() + 300;
	snprintf(claims, sizeof(claims), "{\"sub\":\"x\",\"exp\":%lld.%03lld}",
		 (long long)(soon / 1000), (long long)(soon % 1000));
	struct rl_test_client *brief = hello_token(&s, mint("hs.key", claims));
	it_expect(brief, RELAY_MSG_HELLO, RELAY_FLAG_JSON);
	it_fatal(brief, "TOKEN_EXPIRED");

	struct ops_http_reply r =
	    get(admin, "/metrics", "Authorization: Bearer " ADMIN_TOKEN "\r\n");
	char err[256];
	cr_assert_eq(r.status, 200);
	cr_assert_eq(expo_check(r.body, r.len, NULL, err, sizeof(err)), 0, "%s", err);
	static const struct {
		const char *series;
		double want;
	} want[] = {
	    {"relay_auth_failures_total{reason=\"not_authenticated\"}", 1},
	    {"relay_auth_failures_total{reason=\"signature\"}", 1},
	    {"relay_auth_failures_total{reason=\"hello_timeout\"}", 1},
	    {"relay_auth_failures_total{reason=\"expired\"}", 0},
	    {"relay_auth_forbidden_total{op=\"join\"}", 1},
	    {"relay_auth_forbidden_total{op=\"publish\"}", 1},
	    {"relay_auth_tokens_expired_total", 1},
	    {"relay_protocol_errors_total{code=\"UNAUTHORIZED\"}", 3},
	    {"relay_protocol_errors_total{code=\"FORBIDDEN\"}", 2},
	    {"relay_protocol_errors_total{code=\"TOKEN_EXPIRED\"}", 1},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect_eq(metric(r.body, want[i].series), want[i].want, "%s = %g, want %g",
			     want[i].series, metric(r.body, want[i].series), want[i].want);
	ops_http_free(&r);

	r = get(admin, "/stats", "Authorization: Bearer " ADMIN_TOKEN "\r\n");
	cr_assert_eq(r.status, 200);
	cr_assert(strstr(r.body, "\"auth_failures\":{\"no_token\":0,\"not_authenticated\":1,") &&
		      strstr(r.body, "\"forbidden_joins\":1,\"forbidden_publishes\":1,"
				     "\"tokens_expired\":1"),
		  "%s", r.body);
	ops_http_free(&r);
	cr_assert(rl_test_server_log_has(&s, "authentication refused (not_authenticated)"));
	rl_test_close(early);
	rl_test_close(forged);
	rl_test_close(idle);
	rl_test_close(limited);
	rl_test_close(brief);
	it_stop(&s);
}
