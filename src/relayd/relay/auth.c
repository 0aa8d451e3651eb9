/* auth.c -- access control for connections: the key set, the HELLO deadline,
 * token verification and refresh, permission checks, expiry (see auth.h).
 * Threading: the key set is written by the main thread (init, reload) and
 * read by workers under RCU (keyring.c); a connection's struct rl_auth and
 * the worker's two timer lists belong to the owner worker. */
#include "relay/auth.h"

#include "relay/keyring.h"
#include "relay/token.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUTH_LOG_INTERVAL_MS 1000 /* refusal log lines: at most one per worker per second */

struct rl_auth {
	struct rl_timer t;    /* HELLO list until <ok>, then the expiry list */
	struct rl_conn *c;    /* the owner of this state */
	struct rl_perm *perm; /* the token's `rooms`; NULL: every room */
	int64_t exp_ms;	      /* the token's exp (wall clock, ms); valid once <ok> */
	bool ok;	      /* a HELLO with a valid token was accepted */
};

static bool auth_enabled;	    /* keys were configured at start; never changes after */
static struct rl_keyring auth_ring; /* the current key set and audience */
/* Refusals are logged at info, rate-limited per worker (owner writes only). */
static struct rl_ratelimit auth_rl[RL_MAX_WORKERS];

/* Every token rule's counter label (stats_list.h, RL_AUTH_FAIL_LIST). */
static const enum rl_auth_fail auth_fail_of[RL_TOKEN_NERRS] = {
    [RL_TOKEN_OK] = RL_AUTH_FAIL_INTERNAL, /* never a refusal */
    [RL_TOKEN_TOO_LONG] = RL_AUTH_FAIL_MALFORMED,
    [RL_TOKEN_MALFORMED] = RL_AUTH_FAIL_MALFORMED,
    [RL_TOKEN_BAD_HEADER] = RL_AUTH_FAIL_MALFORMED,
    [RL_TOKEN_BAD_ALG] = RL_AUTH_FAIL_ALGORITHM,
    [RL_TOKEN_NO_KID] = RL_AUTH_FAIL_UNKNOWN_KEY,
    [RL_TOKEN_UNKNOWN_KID] = RL_AUTH_FAIL_UNKNOWN_KEY,
    [RL_TOKEN_BAD_SIGNATURE] = RL_AUTH_FAIL_SIGNATURE,
    [RL_TOKEN_BAD_CLAIMS] = RL_AUTH_FAIL_MALFORMED,
    [RL_TOKEN_BAD_EXP] = RL_AUTH_FAIL_CLAIMS,
    [RL_TOKEN_EXPIRED] = RL_AUTH_FAIL_EXPIRED,
    [RL_TOKEN_BAD_NBF] = RL_AUTH_FAIL_CLAIMS,
    [RL_TOKEN_NOT_YET_VALID] = RL_AUTH_FAIL_NOT_YET_VALID,
    [RL_TOKEN_BAD_AUDIENCE] = RL_AUTH_FAIL_AUDIENCE,
    [RL_TOKEN_BAD_SUB] = RL_AUTH_FAIL_CLAIMS,
    [RL_TOKEN_BAD_ROOMS] = RL_AUTH_FAIL_CLAIMS,
    [RL_TOKEN_INTERNAL] = RL_AUTH_FAIL_INTERNAL,
};

bool rl_auth_on(void)
{
	return auth_enabled;
}

static int64_t auth_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the key set (main thread) ---------------------------------------------- */

/* Splits --auth-key's comma-separated list in <buf> (modified in place) into
 * <specs>, each entry trimmed of spaces. Returns the count, or -E2BIG. */
static int auth_split(char *buf, const char *specs[RL_TOKEN_MAX_KEYS])
{
	int n = 0;
	for (char *p = buf, *next; p; p = next) {
		next = strchr(p, ',');
		if (next)
			*next++ = '\0';
		p += strspn(p, " \t");
		size_t len = strlen(p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			p[--len] = '\0';
		if (n == RL_TOKEN_MAX_KEYS)
			return -E2BIG;
		specs[n++] = p;
	}
	return n;
}

/* Loads the keys <cfg> names into *<out> (NULL when it names none). */
static int auth_load(const struct rl_config *cfg, struct rl_token_keys **out, char *err,
		     size_t errlen)
{
	char buf[sizeof(cfg->auth_keys)], why[512];
	const char *specs[RL_TOKEN_MAX_KEYS];

	*out = NULL;
	if (cfg->auth_keys[0] == '\0')
		return 0;
	snprintf(buf, sizeof(buf), "%s", cfg->auth_keys);
	int n = auth_split(buf, specs);
	if (n < 0) {
		snprintf(err, errlen, "--auth-key: at most %d keys", RL_TOKEN_MAX_KEYS);
		return n;
	}
	int rc = rl_token_keys_load(specs, (size_t)n, out, why, sizeof(why));
	if (rc)
		snprintf(err, errlen, "--auth-key: %s", why);
	return rc;
}

/* One info line: the keys in use (KIDs and algorithms, never key bytes). */
static void auth_log_keys(const char *what, const struct rl_token_keys *k, const char *aud)
{
	char line[1024];
	size_t n = (size_t)snprintf(line, sizeof(line), "auth: %s %zu key%s:", what,
				    rl_token_keys_count(k), rl_token_keys_count(k) == 1 ? "" : "s");
	for (size_t i = 0; i < rl_token_keys_count(k) && n < sizeof(line); i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s %s (%s)", i ? "," : "",
				      rl_token_keys_kid(k, i),
				      rl_token_alg_name(rl_token_keys_alg(k, i)));
	rl_log_write(RL_LOG_INFO, 0, "%s; audience %s", line, aud && *aud ? aud : "not checked");
}

int rl_auth_init(const struct rl_config *cfg, char *err, size_t errlen)
{
	struct rl_token_keys *k;
	int rc = auth_load(cfg, &k, err, errlen);

	if (rc)
		return rc;
	if (!k && cfg->auth_audience[0]) {
		snprintf(err, errlen, "--auth-audience is set but --auth-key is not");
		return -EINVAL;
	}
	if ((rc = rl_keyring_init(&auth_ring, k, cfg->auth_audience))) {
		rl_token_keys_free(k);
		snprintf(err, errlen, "--auth-key: out of memory");
		return rc;
	}
	auth_enabled = k != NULL;
	if (k)
		auth_log_keys("authentication required,", k, cfg->auth_audience);
	return 0;
}

int rl_auth_reload(const struct rl_config *cfg, char *err, size_t errlen)
{
	struct rl_token_keys *k;
	bool want = cfg->auth_keys[0] != '\0';

	if (want != auth_enabled) {
		snprintf(err, errlen,
			 "--auth-key: a reload cannot turn authentication %s "
			 "(restart relayd)",
			 want ? "on" : "off");
		return -EINVAL;
	}
	if (!want)
		return 0;
	int rc = auth_load(cfg, &k, err, errlen);
	if (rc)
		return rc;
	if ((rc = rl_keyring_swap(&auth_ring, k, cfg->auth_audience))) {
		rl_token_keys_free(k);
		snprintf(err, errlen, "--auth-key: out of memory");
		return rc;
	}
	auth_log_keys("reloaded", k, cfg->auth_audience);
	return 0;
}

void rl_auth_fini(void)
{
	rl_keyring_destroy(&auth_ring);
}

/* ---- refusals ---------------------------------------------------------------- */

/* Counts, logs (rate-limited) and sends the fatal UNAUTHORIZED <why>. */
static enum rl_auth_hello auth_refuse(struct rl_conn *c, enum rl_auth_fail reason, const char *why)
{
	struct rl_worker *w = c->w;
	uint64_t suppressed;

	RL_STAT_ADD(w->stats, auth_failures[reason], 1);
	if (rl_log_on(RL_LOG_INFO) &&
	    rl_ratelimit_ok(&auth_rl[w->id], w->now_ms, AUTH_LOG_INTERVAL_MS, &suppressed)) {
		char more[48] = "";
		if (suppressed)
			snprintf(more, sizeof(more), " (and %" PRIu64 " more not logged)",
				 suppressed);
		rl_log_write(RL_LOG_INFO, c->id, "authentication refused (%s): %s%s",
			     rl_stats_dim_name(RL_STAT_DIM_AUTH_FAIL, reason), why, more);
	}
	rl_conn_error(c, RELAY_ERR_UNAUTHORIZED, NULL, 0, why);
	return RL_AUTH_HELLO_REFUSED;
}

/* ---- timers ---------------------------------------------------------------------- */

/* rl_timer_expire_fn of both lists. The entry leaves its list first; a
 * connection already closing (or dead, waiting for the close step) is past
 * caring. */
static void auth_timer_expired(struct rl_timer *t, void *arg)
{
	struct rl_auth *a = caa_container_of(t, struct rl_auth, t);
	struct rl_conn *c = a->c;
	char why[96];

	(void)arg;
	rl_timer_disarm(t);
	if (!rl_conn_can_send(c))
		return;
	if (!a->ok) {
		snprintf(why, sizeof(why), "no HELLO with a valid token within %" PRIu64 " ms",
			 RL_CFG(hello_ms));
		auth_refuse(c, RL_AUTH_FAIL_HELLO_TIMEOUT, why);
		return;
	}
	RL_STAT_ADD(c->w->stats, tokens_expired, 1);
	RL_DEBUGF(c->id, "token expired");
	rl_conn_error(c, RELAY_ERR_TOKEN_EXPIRED, NULL, 0,
		      "token expired; send HELLO with a new token before exp to stay");
}

void rl_auth_worker_init(struct rl_worker *w)
{
	rl_timer_list_init(&w->timers[RL_AUTH_T_HELLO], &rl_srv.cfg.hello_ms, auth_timer_expired,
			   NULL);
	rl_timer_list_init_deadline(&w->timers[RL_AUTH_T_EXPIRY], auth_timer_expired, NULL);
}

/* ---- a connection's life ------------------------------------------------------------ */

void rl_auth_opened(struct rl_conn *c)
{
	struct rl_auth *a;

	if (!auth_enabled)
		return;
	if (!(a = calloc(1, sizeof(*a)))) {
		RL_WARNF(c->id, "out of memory for the authentication state: connection closed");
		rl_conn_kill(c);
		return;
	}
	a->c = c;
	rl_timer_init(&a->t);
	rl_timer_arm(&c->w->timers[RL_AUTH_T_HELLO], &a->t, c->w->now_ms);
	c->auth = a;
}

void rl_auth_closed(struct rl_conn *c)
{
	struct rl_auth *a = c->auth;

	if (!a)
		return;
	rl_timer_disarm(&a->t);
	rl_perm_free(a->perm);
	free(a);
	c->auth = NULL;
}

bool rl_auth_gate(struct rl_conn *c, unsigned type)
{
	if (c->auth->ok || type == RELAY_MSG_HELLO || type == RELAY_MSG_HEARTBEAT)
		return false;
	auth_refuse(c, RL_AUTH_FAIL_NOT_AUTHENTICATED,
		    "authenticate first: this server requires HELLO with a token");
	return true;
}

/* ---- HELLO -------------------------------------------------------------------------- */

/* Verifies the token <p>/<n> with the current key set into <cl>. */
static enum rl_token_err auth_verify(const uint8_t *p, size_t n, struct rl_token_claims *cl,
				     char why[RL_TOKEN_WHY_MAX])
{
	const char *aud;
	const struct rl_token_keys *keys = rl_keyring_get(&auth_ring, &aud);
	struct rl_token_policy pol = {
	    .audience = aud,
	    .leeway_ms = (int64_t)RL_CFG(auth_leeway_ms),
	    .now_ms = auth_wall_ms(),
	};

	memset(cl, 0, sizeof(*cl));
	if (!keys) { /* unreachable: a reload never empties the ring */
		snprintf(why, RL_TOKEN_WHY_MAX, "no token keys");
		return RL_TOKEN_INTERNAL;
	}
	return rl_token_verify(keys, &pol, p, n, cl, why);
}

/* Takes the verified claims <cl> for <c>: the sub as userId on the first
 * HELLO (a refresh must name the same one), the permissions, the expiry. */
static enum rl_auth_hello auth_accept(struct rl_conn *c, struct rl_token_claims *cl)
{
	struct rl_auth *a = c->auth;
	struct rl_worker *w = c->w;

	if (a->ok && (cl->sub_len != c->user_len || memcmp(cl->sub, c->user_id, cl->sub_len))) {
		rl_perm_free(cl->perm);
		return auth_refuse(c, RL_AUTH_FAIL_SUBJECT_CHANGED,
				   "token sub is not this connection's userId: a refresh must keep "
				   "the sub");
	}
	if (!a->ok) {
		uint8_t *uid = malloc(cl->sub_len);
		if (!uid) {
			rl_perm_free(cl->perm);
			rl_conn_kill(c);
			return RL_AUTH_HELLO_REFUSED;
		}
		memcpy(uid, cl->sub, cl->sub_len);
		free(c->user_id);
		c->user_id = uid;
		c->user_len = (uint8_t)cl->sub_len;
	}
	rl_perm_free(a->perm);
	a->perm = cl->perm;
	a->exp_ms = cl->exp_ms;
	/* The wall-clock deadline, once, on the worker's monotonic clock. */
	int64_t left = cl->exp_ms + (int64_t)RL_CFG(auth_leeway_ms) - auth_wall_ms();
	rl_timer_arm_sorted(&w->timers[RL_AUTH_T_EXPIRY], &a->t,
			    w->now_ms + (uint64_t)(left > 0 ? left : 0));
	RL_DEBUGF(c->id,
		  "%s: key %zu, expires in %" PRId64 " ms (leeway included), %zu bytes of "
		  "room patterns",
		  a->ok ? "token refreshed" : "authenticated", cl->key, left,
		  rl_perm_size(a->perm));
	a->ok = true;
	return RL_AUTH_HELLO_TOKEN;
}

enum rl_auth_hello rl_auth_hello(struct rl_conn *c, const struct relay_json_field *tok)
{
	uint8_t buf[RL_TOKEN_MAX_BYTES];
	char why[RL_TOKEN_WHY_MAX];
	struct rl_token_claims cl;
	const uint8_t *p = buf;

	if (tok->kind == RELAY_JSON_NONE)
		return c->auth->ok ? RL_AUTH_HELLO_PLAIN
				   : auth_refuse(c, RL_AUTH_FAIL_NO_TOKEN,
						 "HELLO must carry a token: this server requires "
						 "authentication");
	if (tok->kind != RELAY_JSON_STRING)
		return auth_refuse(c, RL_AUTH_FAIL_NO_TOKEN, "token must be a string");
	if (tok->lone_surrogate) /* decodes to U+FFFD: never base64url */
		return auth_refuse(c, RL_AUTH_FAIL_MALFORMED, "token is not base64url");
	if (tok->dec_len > sizeof(buf))
		p = tok->raw.p; /* never read: the size is the verifier's first rule */
	else
		relay_json_string_decode(tok->raw, buf, sizeof(buf));
	enum rl_token_err e = auth_verify(p, tok->dec_len, &cl, why);
	if (e != RL_TOKEN_OK)
		return auth_refuse(c, auth_fail_of[e], why);
	return auth_accept(c, &cl);
}

void rl_auth_ack_fields(const struct rl_conn *c, struct relay_jw *jw)
{
	const struct rl_auth *a = c->auth;

	if (!a || !a->ok)
		return;
	relay_jw_key(jw, "userId");
	relay_jw_str(jw, c->user_id, c->user_len);
	relay_jw_key(jw, "expiresAt");
	relay_jw_u64(jw, (uint64_t)a->exp_ms);
}

/* ---- permissions ---------------------------------------------------------------------- */

bool rl_auth_allows(struct rl_conn *c, enum rl_perm_op op, struct relay_span room)
{
	char msg[RELAY_ROOM_MAX_BYTES + 64];

	if (rl_perm_allows(c->auth->perm, op, room.p, room.n))
		return true;
	if (op == RL_PERM_JOIN)
		RL_STAT_ADD(c->w->stats, forbidden_joins, 1);
	else
		RL_STAT_ADD(c->w->stats, forbidden_publishes, 1);
	snprintf(msg, sizeof(msg), "the token does not allow %s room '%.*s'",
		 op == RL_PERM_JOIN ? "joining" : "publishing to", (int)room.n,
		 (const char *)room.p);
	rl_conn_error(c, RELAY_ERR_FORBIDDEN, room.p, room.n, msg);
	return false;
}

bool rl_auth_may_stay(const struct rl_conn *c, struct relay_span room)
{
	return rl_perm_allows(c->auth->perm, RL_PERM_JOIN, room.p, room.n);
}
