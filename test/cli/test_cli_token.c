/* test_cli_token.c -- `relay-cli token` end to end: tokens minted by the real
 * binary (HS256 from a secret file, EdDSA from an Ed25519 private key) are
 * verified with relayd's verifier (src/relayd/relay/token.c) against the
 * files the server would read; claims, kid, aud, nbf, room patterns; and the
 * argument errors. Needs no server. Keys are generated per test process.
 *
 * Threading: each Criterion test runs in its own process.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_run.h"
#include "relay/token.h"
#include "token_fixture.h"

#define T_MS 15000

static struct tok_fixture fx;
static struct rl_token_keys *keys;
static struct rl_token_claims cl;
static struct rl_token_policy pol;
static char why[RL_TOKEN_WHY_MAX];
static char tok[2 * RL_TOKEN_MAX_BYTES];

static void setup(void)
{
	cr_assert(tok_fixture_make(&fx) == 0);
	pol = (struct rl_token_policy){.leeway_ms = 0, .now_ms = (int64_t)time(NULL) * 1000};
}

static void teardown(void)
{
	rl_token_keys_free(keys);
	rl_perm_free(cl.perm);
	tok_fixture_remove(&fx);
}

TestSuite(cli_token, .init = setup, .fini = teardown, .timeout = 60);

/* Runs `relay-cli token --key <key> ARGS...` and keeps the token it printed. */
static void mint(const char *key, const char *const *more)
{
	const char *args[40] = {"token", "--key", tok_fixture_path(&fx, key)};
	struct cli_run r;
	size_t n = 3;
	int st;

	while (*more && n < 39)
		args[n++] = *more++;
	args[n] = NULL;
	st = cli_run(&r, args, NULL, T_MS);
	cr_assert_eq(st, 0, "relay-cli token exited %d: %s", st, r.err_buf);
	cr_assert_eq(r.err_len, 0, "stderr: %s", r.err_buf);
	cr_assert(r.out_len > 1 && r.out_buf[r.out_len - 1] == '\n', "one line: %s", r.out_buf);
	cr_assert_eq(strchr(r.out_buf, '\n'), r.out_buf + r.out_len - 1, "one line");
	cr_assert_lt(r.out_len - 1, sizeof tok);
	memcpy(tok, r.out_buf, r.out_len - 1);
	tok[r.out_len - 1] = '\0';
	cli_free(&r);
}

static void use_keys(const char *const *specs, size_t n)
{
	char full[4][300];
	const char *p[4];
	char err[256];

	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(specs[i], '=');
		if (eq)
			snprintf(full[i], sizeof full[i], "%.*s=%s/%s", (int)(eq - specs[i]),
				 specs[i], fx.dir, eq + 1);
		else
			snprintf(full[i], sizeof full[i], "%s/%s", fx.dir, specs[i]);
		p[i] = full[i];
	}
	rl_token_keys_free(keys);
	keys = NULL;
	cr_assert(rl_token_keys_load(p, n, &keys, err, sizeof err) == 0, "%s", err);
}

static enum rl_token_err verify(void)
{
	rl_perm_free(cl.perm);
	memset(&cl, 0, sizeof cl);
	return rl_token_verify(keys, &pol, (const uint8_t *)tok, strlen(tok), &cl, why);
}

#define ASSERT_VERIFIES()                                                                          \
	do {                                                                                       \
		enum rl_token_err e_ = verify();                                                   \
		cr_assert_eq(e_, RL_TOKEN_OK, "%s: %s (token %s)", rl_token_err_name(e_), why,     \
			     tok);                                                                 \
	} while (0)

static bool allows(enum rl_perm_op op, const char *room)
{
	return rl_perm_allows(cl.perm, op, (const uint8_t *)room, strlen(room));
}

Test(cli_token, hs256_token_from_the_secret_file_verifies_with_the_same_file)
{
	mint("hs.key", (const char *[]){"--sub", "alice", NULL});
	use_keys((const char *[]){"hs.key"}, 1);
	ASSERT_VERIFIES();
	cr_assert_str_eq(cl.sub, "alice");
	/* default lifetime: one hour from now */
	cr_assert(cl.exp_ms >= pol.now_ms + 3600 * 1000 - 5000 &&
		      cl.exp_ms <= pol.now_ms + 3600 * 1000 + 5000,
		  "exp %lld, now %lld", (long long)cl.exp_ms, (long long)pol.now_ms);
	cr_assert_null(cl.perm, "no --rooms-*: every room");
	use_keys((const char *[]){"hs2.key"}, 1);
	cr_assert_eq(verify(), RL_TOKEN_BAD_SIGNATURE, "another secret");
}

Test(cli_token, eddsa_token_from_the_private_key_verifies_with_the_public_key)
{
	mint("ed.pem", (const char *[]){"--sub", "bob", "--ttl", "90s", NULL});
	use_keys((const char *[]){"ed.pub"}, 1);
	ASSERT_VERIFIES();
	cr_assert_str_eq(cl.sub, "bob");
	cr_assert(cl.exp_ms <= pol.now_ms + 95 * 1000 && cl.exp_ms >= pol.now_ms + 85 * 1000);
	use_keys((const char *[]){"ed2.pub"}, 1);
	cr_assert_eq(verify(), RL_TOKEN_BAD_SIGNATURE, "another key pair");
	use_keys((const char *[]){"hs.key"}, 1);
	cr_assert_eq(verify(), RL_TOKEN_BAD_ALG, "an HS256 server refuses EdDSA");
}

Test(cli_token, room_patterns_become_the_rooms_claim)
{
	mint("hs.key", (const char *[]){"--sub", "carol", "--rooms-join", "team.*", "--rooms-join",
					"lobby", "--rooms-publish", "team.*", NULL});
	use_keys((const char *[]){"hs.key"}, 1);
	ASSERT_VERIFIES();
	cr_assert_not_null(cl.perm);
	cr_assert(allows(RL_PERM_JOIN, "lobby"));
	cr_assert(allows(RL_PERM_JOIN, "team.red"));
	cr_assert_not(allows(RL_PERM_JOIN, "other"));
	cr_assert(allows(RL_PERM_PUBLISH, "team.red"));
	cr_assert_not(allows(RL_PERM_PUBLISH, "lobby"));
	/* only --rooms-join: publishing is allowed nowhere */
	mint("hs.key", (const char *[]){"--sub", "carol", "--rooms-join", "*", NULL});
	ASSERT_VERIFIES();
	cr_assert(allows(RL_PERM_JOIN, "anything"));
	cr_assert_not(allows(RL_PERM_PUBLISH, "anything"));
}

Test(cli_token, kid_picks_the_key_on_a_server_with_several)
{
	use_keys((const char *[]){"old=hs.key", "new=ed.pub"}, 2);
	mint("ed.pem", (const char *[]){"--sub", "dan", "--kid", "new", NULL});
	ASSERT_VERIFIES();
	cr_assert_eq(cl.key, 1);
	mint("hs.key", (const char *[]){"--sub", "dan", "--kid", "old", NULL});
	ASSERT_VERIFIES();
	cr_assert_eq(cl.key, 0);
	mint("hs.key", (const char *[]){"--sub", "dan", NULL});
	cr_assert_eq(verify(), RL_TOKEN_NO_KID);
}

Test(cli_token, aud_and_nbf_are_claims_the_server_checks)
{
	use_keys((const char *[]){"hs.key"}, 1);
	pol.audience = "relay.example";
	mint("hs.key", (const char *[]){"--sub", "eve", "--aud", "relay.example", NULL});
	ASSERT_VERIFIES();
	mint("hs.key", (const char *[]){"--sub", "eve", "--aud", "elsewhere", NULL});
	cr_assert_eq(verify(), RL_TOKEN_BAD_AUDIENCE);
	pol.audience = NULL;
	mint("hs.key", (const char *[]){"--sub", "eve", "--nbf", "10m", NULL});
	cr_assert_eq(verify(), RL_TOKEN_NOT_YET_VALID);
	pol.now_ms += 11 * 60 * 1000;
	ASSERT_VERIFIES();
	char at[32];
	snprintf(at, sizeof at, "@%lld", (long long)(pol.now_ms / 1000));
	mint("hs.key", (const char *[]){"--sub", "eve", "--nbf", at, "--ttl", "2h", NULL});
	ASSERT_VERIFIES();
}

/* relay-cli <args> fails with status 1 and <text> on stderr, printing nothing. */
static void fails_with(const char *const *args, const char *text)
{
	struct cli_run r;
	int st = cli_run(&r, args, NULL, T_MS);

	cr_assert_eq(st, 1, "exit %d; stderr: %s", st, r.err_buf);
	cr_assert(strstr(r.err_buf, text) != NULL, "stderr lacks '%s': %s", text, r.err_buf);
	cr_assert_eq(r.out_len, 0, "stdout: %s", r.out_buf);
	cli_free(&r);
}

Test(cli_token, argument_errors)
{
	const char *hs = tok_fixture_path(&fx, "hs.key");

	fails_with((const char *[]){"token", "--sub", "a", NULL}, "needs --key FILE and --sub");
	fails_with((const char *[]){"token", "--key", hs, NULL}, "needs --key FILE and --sub");
	fails_with((const char *[]){"token", "--key", hs, "--sub", "a", "--ttl", "0", NULL},
		   "bad --ttl '0'");
	fails_with((const char *[]){"token", "--key", hs, "--sub", "a", "--ttl", "1y", NULL},
		   "bad --ttl '1y'");
	fails_with((const char *[]){"token", "--key", hs, "--sub", "a", "--nbf", "2h", NULL},
		   "never be valid");
	fails_with((const char *[]){"token", "--key", hs, "--sub", "a", "--rooms-join", " x", NULL},
		   "rooms.join[0] is not a valid room pattern");
	fails_with((const char *[]){"token", "--key", hs, "--sub", "", NULL}, "bad --sub");
	fails_with((const char *[]){"token", "--key", hs, "--sub", "a", "room", NULL},
		   "unexpected argument 'room'");
	fails_with((const char *[]){"sub", "room", "--sub", "a", NULL},
		   "--sub does not apply to sub");
	fails_with((const char *[]){"token", "--key", hs, "--sub", "a", "--port", "1", NULL},
		   "--port does not apply to token");
}

Test(cli_token, key_file_errors_name_the_file)
{
	fails_with(
	    (const char *[]){"token", "--key", tok_fixture_path(&fx, "ed.pub"), "--sub", "a", NULL},
	    "a public key cannot sign");
	fails_with((const char *[]){"token", "--key", tok_fixture_path(&fx, "short.key"), "--sub",
				    "a", NULL},
		   "at least 32 bytes");
	fails_with(
	    (const char *[]){"token", "--key", tok_fixture_path(&fx, "none"), "--sub", "a", NULL},
	    "No such file");
}
