/* test_auth.c -- access tokens on the wire (protocol-v1-ext.md §2, §7
 * "Tokens"; src/relayd/relay/auth.c): relayd started with --auth-key, keys
 * generated at test time (test/unit/token_fixture.c), tokens minted with
 * relayd's own token code. Every rule the unit tests check on the verifier
 * (test/unit/test_token.c) is checked here once through a real HELLO: the
 * ack and its key order, each refusal as a fatal UNAUTHORIZED naming its
 * rule, the HELLO deadline, frames before authentication, room permissions
 * (FORBIDDEN, connection still usable), refresh (narrowing with acks in
 * order and userLeft, widening, another sub), expiry (TOKEN_EXPIRED) and
 * key rotation by SIGHUP. The admin endpoint's bearer token and the auth
 * counters are in test/ops/test_admin_token.c.
 * Threading: Criterion test bodies (each its own process). */
#include "itest.h"
#include "token_fixture.h"

#include "relay/token.h"

#include <signal.h>
#include <stdarg.h>
#include <time.h>

static struct tok_fixture fx;

static void fx_make(void)
{
	cr_assert_eq(tok_fixture_make(&fx), 0, "key fixture");
}

static void fx_done(void)
{
	rl_test_cleanup_all();
	tok_fixture_remove(&fx);
}

#define AUTH_TEST(name)                                                                            \
	Test(auth, name, .init = fx_make, .fini = fx_done, .timeout = RL_TEST_BODY_S)

/* ---- tokens ------------------------------------------------------------------ */

static int64_t now_s(void)
{
	return rl_test_wall_ms() / 1000;
}

/* "<dir>/<name>" or "KID=<dir>/<name>", in one of 8 rotating buffers. */
static const char *key_arg(const char *kid, const char *name)
{
	static char bufs[8][600];
	static unsigned next;
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof(bufs[0]), "%s%s%s", kid ? kid : "", kid ? "=" : "",
		 tok_fixture_path(&fx, name));
	return b;
}

/* Signs header <hdr> and the printf-formatted claims with <signer>, into one
 * of 8 rotating buffers. */
static const char *sign_v(struct rl_token_signer *signer, const char *hdr, const char *fmt,
			  va_list ap)
{
	static char bufs[8][8192];
	static unsigned next;
	char claims[6144];
	char *b = bufs[next++ % 8];
	int n = vsnprintf(claims, sizeof(claims), fmt, ap);
	cr_assert(n > 0 && (size_t)n < sizeof(claims), "claims too long");
	long len = rl_token_sign(signer, hdr, strlen(hdr), claims, (size_t)n, b, sizeof(bufs[0]));
	cr_assert_gt(len, 0, "rl_token_sign: %ld", len);
	return b;
}

/* A token signed with fixture key file <key> ("hs.key", "ed.pem", ...). */
static const char *tok(const char *key, const char *hdr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *tok(const char *key, const char *hdr, const char *fmt, ...)
{
	struct rl_token_signer *s = NULL;
	char err[256];
	va_list ap;
	cr_assert_eq(rl_token_signer_load(tok_fixture_path(&fx, key), &s, err, sizeof(err)), 0,
		     "%s", err);
	va_start(ap, fmt);
	const char *t = sign_v(s, hdr, fmt, ap);
	va_end(ap);
	rl_token_signer_free(s);
	return t;
}

#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define ED "{\"alg\":\"EdDSA\"}"

/* An HS256 token (hs.key) for <sub>, valid for an hour, with <extra> claims
 * (",\"rooms\":{...}" or ""). */
static const char *hs_tok(const char *sub, const char *extra)
{
	return tok("hs.key", HS, "{\"sub\":\"%s\",\"exp\":%lld%s}", sub, (long long)now_s() + 3600,
		   extra);
}

/* ---- connections --------------------------------------------------------------- */

/* Connects and authenticates with <token>; asserts the ack. */
static struct rl_test_client *auth_client(const struct rl_test_server *s, const char *token)
{
	struct rl_test_client *c = it_connect(s);
	char json[9000];
	snprintf(json, sizeof(json), "{\"token\":\"%s\"}", token);
	cr_assert_not_null(rl_test_hello(c, json, RL_TEST_REPLY_MS), "HELLO: %s", rl_test_err());
	return c;
}

/* HELLO with <json> (printf) is refused: fatal UNAUTHORIZED whose message
 * holds <why>, then the close. */
static void refused_json(const struct rl_test_server *s, const char *why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refused_json(const struct rl_test_server *s, const char *why, const char *fmt, ...)
{
	static char json[12000];
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(json, sizeof(json), fmt, ap);
	va_end(ap);
	struct rl_test_client *c = it_connect(s);
	it_send_str(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON, json);
	const struct rl_test_frame *f = rl_test_expect_error(c, "UNAUTHORIZED", RL_TEST_REPLY_MS);
	cr_assert_not_null(f, "want UNAUTHORIZED (%s): %s", why, rl_test_err());
	cr_assert(rl_test_json_str(f, "message", msg, sizeof(msg)) > 0 && strstr(msg, why),
		  "want a message with '%s': %s", why, rl_test_frame_str(f));
	cr_assert_eq(rl_test_expect_closed(c, false, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
	rl_test_close(c);
}

static void refused(const struct rl_test_server *s, const char *token, const char *why)
{
	refused_json(s, why, "{\"token\":\"%s\"}", token);
}

static void start_hs(struct rl_test_server *s)
{
	IT_START(s, "--auth-key", key_arg("hs", "hs.key"));
}

/* The ack of an authenticated HELLO, byte for byte but the connectionId. */
static void expect_auth_ack(struct rl_test_client *c, const char *sub, int64_t exp_ms)
{
	char want[512];
	snprintf(want, sizeof(want),
		 "{\"status\":\"connected\",\"connectionId\":*,\"serverVersion\":\"%s\","
		 "\"protocolVersion\":1,\"maxFrameBytes\":1048576,\"heartbeatMs\":30000,"
		 "\"userId\":\"%s\",\"expiresAt\":%lld,\"features\":[\"auth\"]}",
		 RELAY_VERSION_STRING, sub, (long long)exp_ms);
	it_expect_json(c, RELAY_MSG_HELLO, want);
}

/* ---- good tokens --------------------------------------------------------------- */

AUTH_TEST(an_hs256_token_is_acked_with_its_sub_its_expiry_and_the_auth_feature)
{
	struct rl_test_server s;
	start_hs(&s);
	int64_t exp = now_s() + 3600;
	const char *t = tok("hs.key", HS, "{\"sub\":\"alice\",\"exp\":%lld}", (long long)exp);
	struct rl_test_client *c = it_connect(&s);
	/* A userId sent alongside is ignored (not even checked): the token's
	 * sub is the userId. */
	rl_test_send_json(c, RELAY_MSG_HELLO, "{\"userId\":[\"mallory\"],\"token\":\"%s\"}", t);
	expect_auth_ack(c, "alice", exp * 1000);

	/* Members see the sub as the sender's userId. */
	struct rl_test_client *bob = auth_client(&s, hs_tok("bob", ""));
	it_join(c, "r", 1);
	it_join(bob, "r", 2);
	it_presence(c, 1);
	it_send_str(bob, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, "{\"room\":\"r\",\"content\":1}");
	it_expect_json(
	    c, RELAY_MSG_MESSAGE,
	    "{\"room\":\"r\",\"from\":*,\"userId\":\"bob\",\"content\":1,\"timestamp\":*}");
	rl_test_close(c);
	rl_test_close(bob);
	it_stop(&s);
}

AUTH_TEST(an_eddsa_token_is_acked_and_a_fractional_exp_is_kept_to_the_millisecond)
{
	struct rl_test_server s;
	IT_START(&s, "--auth-key", key_arg(NULL, "ed.pub"));
	int64_t exp = now_s() + 600;
	const char *t = tok("ed.pem", ED, "{\"sub\":\"carol\",\"exp\":%lld.25}", (long long)exp);
	struct rl_test_client *c = it_connect(&s);
	rl_test_send_json(c, RELAY_MSG_HELLO, "{\"token\":\"%s\"}", t);
	expect_auth_ack(c, "carol", exp * 1000 + 250);
	/* A later plain HELLO is v1 (echo may change) and keeps the userId. */
	rl_test_send_json(c, RELAY_MSG_HELLO, "{\"userId\":\"mallory\",\"echo\":true}");
	expect_auth_ack(c, "carol", exp * 1000 + 250);
	rl_test_close(c);
	it_stop(&s);
}

/* The server never sends a frame longer than max_frame (protocol-v1.md 2a):
 * with tokens, --max-frame-bytes below 1024 is refused at start, and at
 * 1024 the longest authenticated ack (a 128-byte sub that doubles when
 * escaped, every feature, --debug) fits. */
AUTH_TEST(the_longest_authenticated_hello_ack_fits_the_smallest_max_frame_allowed)
{
	struct rl_test_server s;
	char out[512], err[1024], sub[2 * RELAY_USERID_MAX_BYTES + 1];
	const char *small[] = {"--port", "0",	       "--max-frame-bytes",
			       "1023",	 "--auth-key", key_arg(NULL, "hs.key"),
			       NULL};
	cr_assert_eq(
	    rl_test_run_relayd(small, NULL, RL_TEST_START_MS, out, sizeof(out), err, sizeof(err)),
	    1, "--max-frame-bytes 1023 with --auth-key: %s", err);
	cr_assert(strstr(err, "must be at least 1024 with --auth-key"), "%s", err);
	IT_START(&s, "--max-frame-bytes", "1024", "--auth-key", key_arg(NULL, "hs.key"),
		 "--history-size", "1", "--debug");
	for (int i = 0; i < RELAY_USERID_MAX_BYTES; i++)
		memcpy(sub + 2 * i, "\\\"", 2); /* the claim says \" : one '"' */
	sub[2 * RELAY_USERID_MAX_BYTES] = '\0';
	struct rl_test_client *c = it_connect(&s);
	rl_test_send_json(c, RELAY_MSG_HELLO, "{\"token\":\"%s\"}", hs_tok(sub, ""));
	const struct rl_test_frame *f = it_expect(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON);
	cr_assert(strstr((const char *)f->payload, sub) != NULL, "the whole userId: %s",
		  rl_test_frame_str(f));
	cr_assert_leq(f->len + 3, 1024, "a %u-byte ack for a max_frame of 1024", f->len + 3);
	/* Two extensions on: both listed, in the spec's order, after expiresAt. */
	const char *exp_at = strstr((const char *)f->payload, ",\"expiresAt\":");
	const char *feat =
	    strstr((const char *)f->payload, ",\"features\":[\"auth\",\"history\"],");
	cr_assert(exp_at && feat && exp_at < feat, "features of auth and history: %s",
		  rl_test_frame_str(f));
	rl_test_close(c);
	it_stop(&s);
}

/* With no key configured, `token` is ignored: the ack is byte for byte v1. */
Test(auth, without_keys_a_token_is_ignored_and_the_ack_is_v1, .fini = it_fini,
     .timeout = RL_TEST_BODY_S)
{
	struct rl_test_server s;
	char want[512];
	IT_START(&s, "--workers", "1");
	struct rl_test_client *c = it_connect(&s);
	rl_test_send_json(c, RELAY_MSG_HELLO, "{\"token\":\"not.even.close\",\"userId\":\"v1\"}");
	snprintf(want, sizeof(want),
		 "{\"status\":\"connected\",\"connectionId\":*,\"serverVersion\":\"%s\","
		 "\"protocolVersion\":1,\"maxFrameBytes\":1048576,\"heartbeatMs\":30000}",
		 RELAY_VERSION_STRING);
	it_expect_json(c, RELAY_MSG_HELLO, want);
	it_join(c, "r", 1); /* no FORBIDDEN, no UNAUTHORIZED */
	rl_test_send_json(c, RELAY_MSG_HELLO, "{\"token\":42}");
	it_expect(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON);
	rl_test_close(c);
	it_stop(&s);
}

/* ---- refused tokens: one rule each ------------------------------------------------------ */

AUTH_TEST(a_token_signed_with_another_key_is_refused)
{
	struct rl_test_server s, e;
	start_hs(&s);
	IT_START(&e, "--auth-key", key_arg(NULL, "ed.pub"));
	refused(&s, tok("hs2.key", HS, "{\"sub\":\"a\",\"exp\":%lld}", (long long)now_s() + 60),
		"token signature does not verify");
	refused(&e, tok("ed2.pem", ED, "{\"sub\":\"a\",\"exp\":%lld}", (long long)now_s() + 60),
		"token signature does not verify");
	it_stop(&s);
	it_stop(&e);
}

AUTH_TEST(alg_none_is_refused_whatever_follows)
{
	struct rl_test_server s;
	start_hs(&s);
	refused(&s,
		tok("hs.key", "{\"alg\":\"none\"}", "{\"sub\":\"a\",\"exp\":%lld}",
		    (long long)now_s() + 60),
		"token alg none is never accepted");
	refused(&s,
		tok("hs.key", "{\"alg\":\"NoNe\"}", "{\"sub\":\"a\",\"exp\":%lld}",
		    (long long)now_s() + 60),
		"token alg none is never accepted");
	it_stop(&s);
}

/* The classic confusion: the server holds an Ed25519 public key; a forger
 * signs HS256 with the public key's bytes as the MAC secret. */
AUTH_TEST(an_hs256_token_keyed_with_the_public_key_bytes_is_refused)
{
	struct rl_test_server s;
	IT_START(&s, "--auth-key", key_arg(NULL, "ed.pub"));
	static const char *const files[] = {"ed.pub", "ed.der"};
	for (int i = 0; i < 2; i++) {
		char pub[1024];
		struct rl_token_signer *forger = NULL;
		long n = tok_fixture_read(&fx, files[i], pub, sizeof(pub));
		cr_assert_gt(n, 0);
		cr_assert_eq(rl_token_signer_hs256(pub, (size_t)n, &forger), 0);
		char claims[128];
		snprintf(claims, sizeof(claims), "{\"sub\":\"admin\",\"exp\":%lld}",
			 (long long)now_s() + 60);
		char t[2048];
		cr_assert_gt(
		    rl_token_sign(forger, HS, strlen(HS), claims, strlen(claims), t, sizeof(t)), 0);
		rl_token_signer_free(forger);
		refused(&s, t, "token alg must be EdDSA for this key");
	}
	it_stop(&s);
}

AUTH_TEST(with_several_keys_the_kid_must_name_one)
{
	struct rl_test_server s;
	IT_START(&s, "--auth-key", key_arg("one", "hs.key"), "--auth-key",
		 key_arg("two", "hs2.key"));
	int64_t exp = now_s() + 60;
	refused(&s,
		tok("hs.key", "{\"alg\":\"HS256\",\"kid\":\"three\"}",
		    "{\"sub\":\"a\",\"exp\":%lld}", (long long)exp),
		"token kid names no key of this server");
	refused(&s, tok("hs.key", HS, "{\"sub\":\"a\",\"exp\":%lld}", (long long)exp),
		"token header has no kid");
	/* The right kid with the other key's signature does not verify. */
	refused(&s,
		tok("hs.key", "{\"alg\":\"HS256\",\"kid\":\"two\"}", "{\"sub\":\"a\",\"exp\":%lld}",
		    (long long)exp),
		"token signature does not verify");
	struct rl_test_client *c =
	    auth_client(&s, tok("hs2.key", "{\"alg\":\"HS256\",\"kid\":\"two\"}",
				"{\"sub\":\"a\",\"exp\":%lld}", (long long)exp));
	rl_test_close(c);
	it_stop(&s);
}

AUTH_TEST(an_expired_token_is_refused_beyond_the_leeway_only)
{
	struct rl_test_server s;
	IT_START(&s, "--auth-key", key_arg(NULL, "hs.key"), "--auth-leeway", "30");
	refused(&s, tok("hs.key", HS, "{\"sub\":\"a\",\"exp\":%lld}", (long long)now_s() - 60),
		"token has expired");
	/* Expired 10 s ago, inside the 30 s leeway: still good. */
	struct rl_test_client *c = auth_client(
	    &s, tok("hs.key", HS, "{\"sub\":\"a\",\"exp\":%lld}", (long long)now_s() - 10));
	rl_test_close(c);
	it_stop(&s);
}

AUTH_TEST(a_token_not_valid_yet_is_refused_beyond_the_leeway_only)
{
	struct rl_test_server s;
	IT_START(&s, "--auth-key", key_arg(NULL, "hs.key"), "--auth-leeway", "30");
	int64_t now = now_s();
	refused(&s,
		tok("hs.key", HS, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}", (long long)now + 600,
		    (long long)now + 120),
		"token is not valid yet (nbf)");
	struct rl_test_client *c =
	    auth_client(&s, tok("hs.key", HS, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}",
				(long long)now + 600, (long long)now + 10));
	rl_test_close(c);
	it_stop(&s);
}

AUTH_TEST(with_an_audience_the_token_must_name_it)
{
	struct rl_test_server s;
	IT_START(&s, "--auth-key", key_arg(NULL, "hs.key"), "--auth-audience", "relay.test");
	int64_t exp = now_s() + 60;
	refused(&s,
		tok("hs.key", HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":\"other\"}", (long long)exp),
		"token aud does not name this server");
	refused(&s, tok("hs.key", HS, "{\"sub\":\"a\",\"exp\":%lld}", (long long)exp),
		"token has no aud");
	struct rl_test_client *c[2] = {
	    auth_client(&s, tok("hs.key", HS, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":\"relay.test\"}",
				(long long)exp)),
	    auth_client(&s, tok("hs.key", HS,
				"{\"sub\":\"a\",\"exp\":%lld,\"aud\":[\"x\",\"relay.test\"]}",
				(long long)exp)),
	};
	rl_test_close(c[0]);
	rl_test_close(c[1]);
	it_stop(&s);
}

AUTH_TEST(an_oversized_token_is_refused_by_its_size)
{
	struct rl_test_server s;
	static char pad[4200];
	start_hs(&s);
	memset(pad, 'p', sizeof(pad) - 1);
	refused(&s,
		tok("hs.key", HS, "{\"sub\":\"a\",\"exp\":%lld,\"pad\":\"%s\"}",
		    (long long)now_s() + 60, pad),
		"token is longer than 4096 bytes");
	it_stop(&s);
}

AUTH_TEST(malformed_tokens_are_refused_naming_the_rule)
{
	struct rl_test_server s;
	start_hs(&s);
	const char *good = hs_tok("a", "");
	char bad[8192];
	refused(&s, "abc.def", "token is not three dot-separated segments");
	refused(&s, "a.b.c.d", "token is not three dot-separated segments");
	refused(&s, "..", "token header segment is empty");
	snprintf(bad, sizeof(bad), "%s", good);
	bad[2] = '!'; /* not in the base64url alphabet */
	refused(&s, bad, "token header is not base64url");
	refused(&s, tok("hs.key", "[1]", "{\"sub\":\"a\",\"exp\":%lld}", (long long)now_s() + 60),
		"token header is not a JSON object");
	refused(&s, tok("hs.key", HS, "[\"sub\",%lld]", (long long)now_s() + 60),
		"token payload is not a JSON object");
	refused(&s, tok("hs.key", HS, "{\"sub\":\"a\"}"), "token has no exp");
	refused(&s, tok("hs.key", HS, "{\"exp\":%lld}", (long long)now_s() + 60),
		"token has no sub");
	refused(&s, hs_tok("a", ",\"rooms\":{\"join\":[\"\"]}"), "token rooms.join[0]");
	it_stop(&s);
}

AUTH_TEST(a_hello_without_a_string_token_is_refused)
{
	struct rl_test_server s;
	start_hs(&s);
	refused_json(&s, "HELLO must carry a token", "{\"userId\":\"a\"}");
	refused_json(&s, "token must be a string", "{\"token\":42}");
	refused_json(&s, "token must be a string", "{\"token\":[\"a.b.c\"]}");
	/* An empty binary HELLO carries no token either. */
	struct rl_test_client *c = it_connect(&s);
	it_send(c, RELAY_MSG_HELLO, 0, NULL, 0);
	it_fatal(c, "UNAUTHORIZED");
	rl_test_close(c);
	it_stop(&s);
}

/* ---- before authentication ------------------------------------------------------------- */

AUTH_TEST(a_frame_other_than_hello_or_heartbeat_before_authentication_is_fatal)
{
	struct rl_test_server s;
	start_hs(&s);
	static const struct {
		uint8_t type;
		const char *payload;
	} frames[] = {
	    {RELAY_MSG_JOIN_ROOM, "{\"room\":\"r\"}"},
	    {RELAY_MSG_LEAVE_ROOM, "{\"room\":\"r\"}"},
	    {RELAY_MSG_MESSAGE, "{\"room\":\"r\",\"content\":1}"},
	    {RELAY_MSG_ERROR, "{\"code\":\"X\"}"},
	    {RELAY_MSG_JOIN_ROOM, "not json: the type decides first"},
	};
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		struct rl_test_client *c = it_connect(&s);
		it_ping(c); /* HEARTBEAT is answered before authentication */
		it_send_str(c, frames[i].type, RELAY_FLAG_JSON, frames[i].payload);
		it_fatal(c, "UNAUTHORIZED");
		rl_test_close(c);
	}
	it_stop(&s);
}

AUTH_TEST(no_valid_hello_within_the_hello_timeout_is_fatal)
{
	struct rl_test_server s;
	IT_START(&s, "--auth-key", key_arg(NULL, "hs.key"), "--hello-timeout", "400ms");
	int64_t t0 = rl_test_now_ms();
	struct rl_test_client *quiet = it_connect(&s);
	struct rl_test_client *pinger = it_connect(&s);
	struct rl_test_client *ok = auth_client(&s, hs_tok("a", ""));
	it_ping(pinger); /* heartbeats do not count as authenticating */
	it_fatal(quiet, "UNAUTHORIZED");
	it_fatal(pinger, "UNAUTHORIZED");
	int64_t took = rl_test_now_ms() - t0;
	cr_assert_geq(took, 390, "closed after %lld ms, before the 400 ms deadline",
		      (long long)took);
	it_ping(ok); /* an authenticated connection has no HELLO deadline */
	cr_assert(rl_test_server_log_has(&s, "authentication refused (hello_timeout)"));
	rl_test_close(quiet);
	rl_test_close(pinger);
	rl_test_close(ok);
	it_stop(&s);
}

/* ---- permissions ---------------------------------------------------------------------- */

AUTH_TEST(room_patterns_exact_prefix_and_star_decide_join_and_publish)
{
	struct rl_test_server s;
	start_hs(&s);
	struct rl_test_client *c =
	    auth_client(&s, hs_tok("alice", ",\"rooms\":{\"join\":[\"lobby\",\"team.*\"],"
					    "\"publish\":[\"team.chat\"]}"));
	struct rl_test_client *all = auth_client(&s, hs_tok("root", ",\"rooms\":{\"join\":[\"*\"],"
								    "\"publish\":[\"*\"]}"));
	it_join(c, "lobby", 1);
	it_join(c, "team.chat", 1);
	it_join(c, "team.", 1);
	rl_test_send_json(c, RELAY_MSG_JOIN_ROOM, "{\"room\":\"  team.x  \"}");
	it_expect_exact(c, RELAY_MSG_JOIN_ROOM, /* trimmed first, then matched */
			"{\"status\":\"joined\",\"room\":\"team.x\",\"members\":1}");
	rl_test_send_json(c, RELAY_MSG_JOIN_ROOM, "{\"room\":\"teamx\"}");
	it_nonfatal_room(c, "FORBIDDEN", "teamx");
	rl_test_send_json(c, RELAY_MSG_JOIN_ROOM, "{\"room\":\"lobby2\"}");
	it_nonfatal_room(c, "FORBIDDEN", "lobby2");
	static const uint8_t bin_join[] = "team";
	it_send(c, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, bin_join, 4);
	it_nonfatal_room(c, "FORBIDDEN", "team");

	/* publish: only team.chat; a room not joined is NOT_IN_ROOM first. */
	it_join(all, "lobby", 2);
	it_join(all, "team.chat", 2);
	it_presence(c, 2);
	rl_test_send_json(c, RELAY_MSG_MESSAGE, "{\"room\":\"lobby\",\"content\":1}");
	it_nonfatal_room(c, "FORBIDDEN", "lobby");
	static const uint8_t bin_msg[] = "\x05lobbyhi";
	it_send(c, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, bin_msg, 8);
	it_nonfatal_room(c, "FORBIDDEN", "lobby");
	rl_test_send_json(c, RELAY_MSG_MESSAGE, "{\"room\":\"elsewhere\",\"content\":1}");
	it_nonfatal_room(c, "NOT_IN_ROOM", "elsewhere");
	rl_test_send_json(c, RELAY_MSG_MESSAGE, "{\"room\":\"team.chat\",\"content\":2}");
	it_expect_json(all, RELAY_MSG_MESSAGE,
		       "{\"room\":\"team.chat\",\"from\":*,\"userId\":\"alice\",\"content\":2,"
		       "\"timestamp\":*}");
	it_silent(all); /* the refused publishes delivered nothing */

	/* The star token may join and publish anywhere. */
	it_join(all, "anything.at.all", 1);
	rl_test_close(c);
	rl_test_close(all);
	it_stop(&s);
}

AUTH_TEST(a_token_without_rooms_allows_every_room_and_an_absent_list_allows_none)
{
	struct rl_test_server s;
	start_hs(&s);
	struct rl_test_client *free_ = auth_client(&s, hs_tok("free", ""));
	struct rl_test_client *reader =
	    auth_client(&s, hs_tok("reader", ",\"rooms\":{\"join\":[\"*\"]}"));
	it_join(free_, "x", 1);
	rl_test_send_json(free_, RELAY_MSG_MESSAGE, "{\"room\":\"x\",\"content\":0}");
	it_silent(free_);
	it_join(reader, "x", 2);
	rl_test_send_json(reader, RELAY_MSG_MESSAGE, "{\"room\":\"x\",\"content\":0}");
	it_nonfatal_room(reader, "FORBIDDEN", "x");
	rl_test_close(free_);
	rl_test_close(reader);
	it_stop(&s);
}

/* ---- refresh --------------------------------------------------------------------------- */

/* The next frames of <c> are LEAVE_ROOM acks (JSON) for exactly the rooms in
 * <rooms> (any order). */
static void expect_left(struct rl_test_client *c, const char *const *rooms, int n)
{
	bool seen[8] = {false};
	for (int k = 0; k < n; k++) {
		const struct rl_test_frame *f = it_expect(c, RELAY_MSG_LEAVE_ROOM, RELAY_FLAG_JSON);
		char room[80], status[16];
		cr_assert(rl_test_json_str(f, "status", status, sizeof(status)) > 0 &&
			      strcmp(status, "left") == 0,
			  "%s", rl_test_frame_str(f));
		cr_assert_gt(rl_test_json_str(f, "room", room, sizeof(room)), 0);
		int i = 0;
		while (i < n && (seen[i] || strcmp(rooms[i], room) != 0))
			i++;
		cr_assert_lt(i, n, "left %s, which it should not have", room);
		seen[i] = true;
	}
}

AUTH_TEST(a_refresh_that_narrows_leaves_the_rooms_with_acks_after_the_hello_ack_and_userleft)
{
	struct rl_test_server s;
	start_hs(&s);
	struct rl_test_client *c = auth_client(
	    &s, hs_tok("alice", ",\"rooms\":{\"join\":[\"a\",\"b\",\"c.*\"],\"publish\":[\"*\"]}"));
	struct rl_test_client *o = auth_client(&s, hs_tok("observer", ""));
	static const char *const rooms[] = {"a", "b", "c.x"};
	for (int i = 0; i < 3; i++)
		it_join(o, rooms[i], 1);
	for (int i = 0; i < 3; i++)
		it_join(c, rooms[i], 2);
	it_presence(o, 3);

	int64_t exp = now_s() + 7200;
	rl_test_send_json(c, RELAY_MSG_HELLO, "{\"token\":\"%s\"}",
			  tok("hs.key", HS,
			      "{\"sub\":\"alice\",\"exp\":%lld,\"rooms\":{\"join\":[\"a\"],"
			      "\"publish\":[\"*\"]}}",
			      (long long)exp));
	expect_auth_ack(c, "alice", exp * 1000); /* the ack first, with the new expiry */
	expect_left(c, (const char *const[]){"b", "c.x"}, 2);
	it_silent(c);
	/* The others hear that alice left b and c.x, nothing about a. */
	for (int i = 0; i < 2; i++) {
		const struct rl_test_frame *f = it_expect(o, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
		char type[16], room[16], user[16];
		rl_test_json_str(f, "type", type, sizeof(type));
		rl_test_json_str(f, "room", room, sizeof(room));
		rl_test_json_str(f, "userId", user, sizeof(user));
		cr_assert(strcmp(type, "userLeft") == 0 && strcmp(room, "a") != 0 &&
			      strcmp(user, "alice") == 0,
			  "%s", rl_test_frame_str(f));
	}
	/* Still in a; b is gone and may not be joined again. */
	rl_test_send_json(c, RELAY_MSG_MESSAGE, "{\"room\":\"a\",\"content\":1}");
	it_expect_json(
	    o, RELAY_MSG_MESSAGE,
	    "{\"room\":\"a\",\"from\":*,\"userId\":\"alice\",\"content\":1,\"timestamp\":*}");
	rl_test_send_json(c, RELAY_MSG_MESSAGE, "{\"room\":\"b\",\"content\":1}");
	it_nonfatal_room(c, "NOT_IN_ROOM", "b");
	rl_test_send_json(c, RELAY_MSG_JOIN_ROOM, "{\"room\":\"b\"}");
	it_nonfatal_room(c, "FORBIDDEN", "b");
	it_silent(o);
	rl_test_close(c);
	rl_test_close(o);
	it_stop(&s);
}

AUTH_TEST(a_refresh_that_widens_allows_more_and_leaves_nothing)
{
	struct rl_test_server s;
	start_hs(&s);
	struct rl_test_client *c =
	    auth_client(&s, hs_tok("alice", ",\"rooms\":{\"join\":[\"a\"]}"));
	it_join(c, "a", 1);
	rl_test_send_json(c, RELAY_MSG_JOIN_ROOM, "{\"room\":\"b\"}");
	it_nonfatal_room(c, "FORBIDDEN", "b");
	rl_test_send_json(
	    c, RELAY_MSG_HELLO, "{\"token\":\"%s\"}",
	    hs_tok("alice", ",\"rooms\":{\"join\":[\"a\",\"b\"],\"publish\":[\"b\"]}"));
	it_expect(c, RELAY_MSG_HELLO, RELAY_FLAG_JSON);
	it_silent(c); /* no LEAVE_ROOM: a is still allowed */
	it_join(c, "b", 1);
	rl_test_send_json(c, RELAY_MSG_MESSAGE, "{\"room\":\"a\",\"content\":1}");
	it_nonfatal_room(c, "FORBIDDEN", "a");
	rl_test_close(c);
	it_stop(&s);
}

AUTH_TEST(a_refresh_for_another_sub_is_fatal)
{
	struct rl_test_server s;
	start_hs(&s);
	struct rl_test_client *c = auth_client(&s, hs_tok("alice", ""));
	rl_test_send_json(c, RELAY_MSG_HELLO, "{\"token\":\"%s\"}", hs_tok("mallory", ""));
	const struct rl_test_frame *f = rl_test_expect_error(c, "UNAUTHORIZED", RL_TEST_REPLY_MS);
	cr_assert_not_null(f, "%s", rl_test_err());
	cr_assert(strstr((const char *)f->payload, "refresh must keep the sub"), "%s",
		  rl_test_frame_str(f));
	cr_assert_eq(rl_test_expect_closed(c, false, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
	/* A bad token in a refresh is as fatal as in the first HELLO. */
	struct rl_test_client *d = auth_client(&s, hs_tok("dave", ""));
	rl_test_send_json(d, RELAY_MSG_HELLO, "{\"token\":\"x.y.z\"}");
	it_fatal(d, "UNAUTHORIZED");
	rl_test_close(c);
	rl_test_close(d);
	it_stop(&s);
}

/* ---- expiry ------------------------------------------------------------------------------ */

AUTH_TEST(a_token_that_expires_closes_the_connection_with_token_expired_unless_refreshed)
{
	struct rl_test_server s;
	IT_START(&s, "--auth-key", key_arg(NULL, "hs.key"), "--auth-leeway", "200ms");
	/* exp with a fraction: 1.5 s from now, + 200 ms of leeway. */
	int64_t exp_ms = rl_test_wall_ms() + 1500;
	const char *t = tok("hs.key", HS, "{\"sub\":\"a\",\"exp\":%lld.%03lld}",
			    (long long)(exp_ms / 1000), (long long)(exp_ms % 1000));
	struct rl_test_client *c = auth_client(&s, t);
	struct rl_test_client *r = auth_client(&s, t);
	it_join(c, "room", 1);
	/* r refreshes in time with a token an hour long: it stays. */
	rl_test_send_json(r, RELAY_MSG_HELLO, "{\"token\":\"%s\"}", hs_tok("a", ""));
	it_expect(r, RELAY_MSG_HELLO, RELAY_FLAG_JSON);

	it_fatal(c, "TOKEN_EXPIRED");
	int64_t at = rl_test_wall_ms();
	cr_assert_geq(at, exp_ms + 200 - 20, "expired at %lld, exp+leeway is %lld", (long long)at,
		      (long long)(exp_ms + 200));
	it_ping(r);
	rl_test_close(c);
	rl_test_close(r);
	it_stop(&s);
}

/* ---- key files and rotation ------------------------------------------------------------- */

Test(auth, an_unusable_key_file_at_start_is_one_line_naming_it_and_exit_1, .init = fx_make,
     .fini = fx_done, .timeout = RL_TEST_BODY_S)
{
	char out[512], err[1024];
	static const struct {
		const char *name, *want;
	} cases[] = {
	    {"missing.key", "missing.key"},
	    {"short.key", "at least 32 bytes"},
	    {"ed.pem", "ed.pem"}, /* a private key is never a secret */
	    {"ec.pub", "ec.pub"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = {"--port", "0", "--auth-key", key_arg(NULL, cases[i].name),
				      NULL};
		int st = rl_test_run_relayd(args, NULL, RL_TEST_START_MS, out, sizeof(out), err,
					    sizeof(err));
		cr_assert_eq(st, 1, "%s: exit status %d", cases[i].name, st);
		cr_assert(strncmp(err, "relayd: --auth-key: ", 20) == 0 &&
			      strstr(err, cases[i].want) &&
			      strchr(err, '\n') == err + strlen(err) - 1,
			  "%s: want one line naming it: %s", cases[i].name, err);
		cr_assert_null(strstr(err, fx.hs_secret), "no key bytes in errors");
	}
	const char *aud_only[] = {"--port", "0", "--auth-audience", "x", NULL};
	cr_assert_eq(rl_test_run_relayd(aud_only, NULL, RL_TEST_START_MS, out, sizeof(out), err,
					sizeof(err)),
		     1);
	cr_assert(strstr(err, "--auth-audience is set but --auth-key is not"), "%s", err);
}

/* Waits until the log holds <needle> (the reload is logged when it is done). */
static void wait_log(const struct rl_test_server *s, const char *needle)
{
	int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	while (!rl_test_server_log_has(s, needle)) {
		cr_assert_lt(rl_test_now_ms(), end, "log never said: %s", needle);
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static void write_conf(const char *text)
{
	FILE *f = fopen(tok_fixture_path(&fx, "relayd.conf"), "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

AUTH_TEST(key_rotation_by_sighup_accepts_both_keys_during_the_overlap)
{
	struct rl_test_server s;
	char conf[2048];
	int64_t exp = now_s() + 600;
	const char *old_t = tok("hs.key", "{\"alg\":\"HS256\",\"kid\":\"old\"}",
				"{\"sub\":\"o\",\"exp\":%lld}", (long long)exp);
	const char *new_t = tok("ed.pem", "{\"alg\":\"EdDSA\",\"kid\":\"new\"}",
				"{\"sub\":\"n\",\"exp\":%lld}", (long long)exp);

	snprintf(conf, sizeof(conf), "auth-key = %s\n", key_arg("old", "hs.key"));
	write_conf(conf);
	IT_START(&s, "--config", tok_fixture_path(&fx, "relayd.conf"));
	struct rl_test_client *before = auth_client(&s, old_t);
	refused(&s, new_t, "token alg must be HS256 for this key");

	/* Overlap: two lines, two keys; tokens now need their kid. */
	snprintf(conf, sizeof(conf), "auth-key = %s\nauth-key = %s\n", key_arg("old", "hs.key"),
		 key_arg("new", "ed.pub"));
	write_conf(conf);
	rl_test_server_signal(&s, SIGHUP);
	wait_log(&s, "auth: reloaded 2 keys: old (HS256), new (EdDSA)");
	rl_test_close(auth_client(&s, old_t));
	rl_test_close(auth_client(&s, new_t));
	it_ping(before); /* a reload cuts nobody off */

	/* A reload with a bad key file changes nothing. */
	snprintf(conf, sizeof(conf), "auth-key = %s\n", key_arg("new", "short.key"));
	write_conf(conf);
	rl_test_server_signal(&s, SIGHUP);
	wait_log(&s, "reload failed, nothing changed: --auth-key: ");
	rl_test_close(auth_client(&s, old_t));

	/* The old key retired. */
	snprintf(conf, sizeof(conf), "auth-key = %s\n", key_arg("new", "ed.pub"));
	write_conf(conf);
	rl_test_server_signal(&s, SIGHUP);
	wait_log(&s, "auth: reloaded 1 key: new (EdDSA)");
	refused(&s, old_t, "token alg must be EdDSA for this key");
	rl_test_close(auth_client(&s, new_t));
	it_ping(before);

	/* Turning authentication off needs a restart. */
	write_conf("auth-key =\n");
	rl_test_server_signal(&s, SIGHUP);
	wait_log(&s, "a reload cannot turn authentication off");
	rl_test_close(auth_client(&s, new_t));
	rl_test_close(before);
	it_stop(&s);
}

/* Without --config, SIGHUP still reads the key files again: replacing the
 * file's content rolls the key. */
AUTH_TEST(sighup_without_a_config_file_reads_the_key_files_again)
{
	struct rl_test_server s;
	char secret[80];
	IT_START(&s, "--auth-key", key_arg("k", "hs.key"));
	const char *t1 = hs_tok("a", "");
	rl_test_close(auth_client(&s, t1));
	long n = tok_fixture_read(&fx, "hs2.key", secret, sizeof(secret));
	cr_assert_gt(n, 0);
	FILE *f = fopen(tok_fixture_path(&fx, "hs.key"), "w");
	cr_assert_not_null(f);
	fwrite(secret, 1, (size_t)n, f);
	fclose(f);
	rl_test_server_signal(&s, SIGHUP);
	wait_log(&s, "auth: reloaded 1 key: k (HS256)");
	refused(&s, t1, "token signature does not verify");
	const char *t2 = hs_tok("a", ""); /* hs.key now holds hs2's secret */
	rl_test_close(auth_client(&s, t2));

	/* A file broken in place: the reload is refused, the keys in force stay. */
	f = fopen(tok_fixture_path(&fx, "hs.key"), "w");
	cr_assert_not_null(f);
	fputs("too short\n", f);
	fclose(f);
	rl_test_server_signal(&s, SIGHUP);
	wait_log(&s, "auth: reload failed, the old keys stay: --auth-key: token key ");
	rl_test_close(auth_client(&s, t2));
	it_stop(&s);
}
