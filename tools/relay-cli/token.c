/* token.c -- `relay-cli token`: mints an access token for a relayd that
 * requires them (protocol-v1-ext.md §2) and prints it on stdout.
 *
 *   relay-cli token --key FILE --sub NAME [--kid K] [--aud A]
 *                   [--rooms-join P]... [--rooms-publish P]... [--ttl T] [--nbf W]
 *
 * The key file decides the algorithm: an Ed25519 private key PEM signs EdDSA,
 * any other file is an HS256 secret (the same file the server reads). The
 * token is signed with the server's own code (src/relayd/relay/token.c), and
 * the room patterns are checked with the server's compiler before signing.
 *
 * Threading: main thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "relay/token.h"

#define TOKEN_DEFAULT_TTL_S 3600
#define TOKEN_MAX_TTL_S (3650ll * 86400) /* ten years */

/* "90", "90s", "15m", "1h", "2d" -> seconds (> 0 unless <zero_ok>). */
static int token_duration(const char *s, bool zero_ok, long long *out)
{
	static const struct {
		char unit;
		long long mult;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	char *end;
	long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || v > TOKEN_MAX_TTL_S)
		return -1;
	if (*end) {
		size_t i = 0;

		while (i < sizeof units / sizeof units[0] && units[i].unit != *end)
			i++;
		if (i == sizeof units / sizeof units[0] || end[1] != '\0')
			return -1;
		v *= units[i].mult;
	}
	if (v > TOKEN_MAX_TTL_S || (v == 0 && !zero_ok))
		return -1;
	*out = v;
	return 0;
}

/* exp and nbf (0: none) in seconds since the epoch. 0, or -1 after reporting. */
static int token_times(const struct rl_cli_token_opts *t, long long now, long long *exp,
		       long long *nbf)
{
	long long ttl = TOKEN_DEFAULT_TTL_S, d;
	char *end;

	if (t->ttl && token_duration(t->ttl, false, &ttl)) {
		rl_cli_warn("bad --ttl '%s' (expected a duration such as 90s, 15m, 1h or 2d)",
			    t->ttl);
		return -1;
	}
	*exp = now + ttl;
	*nbf = 0;
	if (t->nbf == NULL)
		return 0;
	if (t->nbf[0] == '@') {
		errno = 0;
		d = strtoll(t->nbf + 1, &end, 10);
		if (t->nbf[1] < '0' || t->nbf[1] > '9' || *end || errno) {
			rl_cli_warn("bad --nbf '%s' (expected @EPOCH-SECONDS)", t->nbf);
			return -1;
		}
		*nbf = d;
	} else if (token_duration(t->nbf, true, &d) == 0) {
		*nbf = now + d;
	} else {
		rl_cli_warn("bad --nbf '%s' (expected a duration from now, or @EPOCH-SECONDS)",
			    t->nbf);
		return -1;
	}
	if (*nbf >= *exp) {
		rl_cli_warn("--nbf is not before the expiry (now + --ttl): the token would never "
			    "be valid");
		return -1;
	}
	return 0;
}

/* The values that must hold before anything is signed. */
static int token_check(const struct rl_cli_token_opts *t)
{
	if (t->key == NULL || t->sub == NULL) {
		rl_cli_warn("token needs --key FILE and --sub NAME (see --help)");
		return -1;
	}
	if (relay_userid_check((const uint8_t *)t->sub, strlen(t->sub)) != RELAY_ERR_NONE) {
		rl_cli_warn("bad --sub (1-128 bytes of UTF-8, no control characters)");
		return -1;
	}
	if (t->kid && (t->kid[0] == '\0' || strlen(t->kid) > RL_TOKEN_KID_MAX)) {
		rl_cli_warn("bad --kid (1-%d bytes)", RL_TOKEN_KID_MAX);
		return -1;
	}
	if (t->njoin > RL_CLI_MAX_PATTERNS || t->npublish > RL_CLI_MAX_PATTERNS) {
		rl_cli_warn("more than %d --rooms-join or --rooms-publish patterns",
			    RL_CLI_MAX_PATTERNS);
		return -1;
	}
	return 0;
}

static void token_list(struct relay_jw *w, const char *key, const char *const *v, int n)
{
	relay_jw_key(w, key);
	relay_jw_arr_begin(w);
	for (int i = 0; i < n; i++)
		relay_jw_cstr(w, v[i]);
	relay_jw_arr_end(w);
}

/* The `rooms` claim, when a --rooms-* option was given; checked with the
 * server's pattern compiler. 0, or -1 after reporting. */
static int token_rooms(struct relay_jw *w, const struct rl_cli_token_opts *t)
{
	struct rl_perm *p;
	size_t start;
	char why[160];

	if (t->njoin == 0 && t->npublish == 0)
		return 0;
	relay_jw_key(w, "rooms");
	start = w->len;
	relay_jw_obj_begin(w);
	if (t->njoin)
		token_list(w, "join", t->join, t->njoin);
	if (t->npublish)
		token_list(w, "publish", t->publish, t->npublish);
	relay_jw_obj_end(w);
	if (w->overflow)
		return 0; /* reported by the caller */
	if (rl_perm_compile((struct relay_span){w->buf + start, w->len - start}, &p, why,
			    sizeof why)) {
		rl_cli_warn("bad --rooms-* pattern: %s (a room name, a prefix followed by *, "
			    "or * alone)",
			    why);
		return -1;
	}
	rl_perm_free(p);
	return 0;
}

static int token_claims(struct relay_jw *w, const struct rl_cli_token_opts *t, long long now)
{
	long long exp, nbf;

	if (token_times(t, now, &exp, &nbf))
		return -1;
	relay_jw_obj_begin(w);
	relay_jw_key(w, "sub");
	relay_jw_cstr(w, t->sub);
	if (t->aud) {
		relay_jw_key(w, "aud");
		relay_jw_cstr(w, t->aud);
	}
	relay_jw_key(w, "iat");
	relay_jw_i64(w, now);
	if (t->nbf) {
		relay_jw_key(w, "nbf");
		relay_jw_i64(w, nbf);
	}
	relay_jw_key(w, "exp");
	relay_jw_i64(w, exp);
	if (token_rooms(w, t))
		return -1;
	relay_jw_obj_end(w);
	return 0;
}

static void token_header(struct relay_jw *w, const struct rl_cli_token_opts *t,
			 enum rl_token_alg alg)
{
	relay_jw_obj_begin(w);
	relay_jw_key(w, "alg");
	relay_jw_cstr(w, rl_token_alg_name(alg));
	relay_jw_key(w, "typ");
	relay_jw_cstr(w, "JWT");
	if (t->kid) {
		relay_jw_key(w, "kid");
		relay_jw_cstr(w, t->kid);
	}
	relay_jw_obj_end(w);
}

int rl_cli_token(const struct rl_cli_opts *o)
{
	const struct rl_cli_token_opts *t = &o->tok;
	static uint8_t hbuf[512], pbuf[RL_TOKEN_MAX_BYTES];
	static char out[2 * RL_TOKEN_MAX_BYTES];
	struct relay_jw hw, pw;
	struct rl_token_signer *s;
	char err[512];
	long n;

	if (token_check(t))
		return 1;
	relay_jw_init(&hw, hbuf, sizeof hbuf);
	relay_jw_init(&pw, pbuf, sizeof pbuf);
	if (token_claims(&pw, t, (long long)time(NULL)))
		return 1;
	if (rl_token_signer_load(t->key, &s, err, sizeof err)) {
		rl_cli_warn("%s", err);
		return 1;
	}
	token_header(&hw, t, rl_token_signer_alg(s));
	n = hw.overflow || pw.overflow
		? -ENOSPC
		: rl_token_sign(s, hbuf, hw.len, pbuf, pw.len, out, sizeof out);
	rl_token_signer_free(s);
	if (n == -EIO) {
		rl_cli_warn("signing failed (OpenSSL)");
		return 1;
	}
	if (n < 0 || n > RL_TOKEN_MAX_BYTES) {
		rl_cli_warn("the token would be longer than %d bytes (fewer or shorter patterns?)",
			    RL_TOKEN_MAX_BYTES);
		return 1;
	}
	printf("%s\n", out);
	return fflush(stdout) == 0 ? 0 : 1;
}
