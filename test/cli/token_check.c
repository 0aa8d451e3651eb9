/* token_check.c -- relayd's token verifier as a command, for tests that
 * mint tokens elsewhere (token_interop.py, PyJWT):
 *
 *   token-check [--aud AUD] KEYSPEC... -- TOKEN
 *
 * Prints "ok sub=<sub> exp_ms=<ms> rooms=<yes|no>" and exits 0, or prints
 * "refused <code>: <message>" and exits 1; 2 on a usage or key error. The
 * clock is the real one, leeway the default.
 *
 * Threading: single-threaded.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "relay/token.h"

int main(int argc, char **argv)
{
	struct rl_token_policy pol = {.leeway_ms = RL_TOKEN_DEFAULT_LEEWAY_MS};
	struct rl_token_keys *keys = NULL;
	struct rl_token_claims cl;
	char err[512], why[RL_TOKEN_WHY_MAX];
	const char *specs[RL_TOKEN_MAX_KEYS];
	size_t n = 0;
	int i = 1;
	enum rl_token_err e;

	if (i + 1 < argc && strcmp(argv[i], "--aud") == 0) {
		pol.audience = argv[i + 1];
		i += 2;
	}
	for (; i < argc && strcmp(argv[i], "--") != 0 && n < RL_TOKEN_MAX_KEYS; i++)
		specs[n++] = argv[i];
	if (i + 2 != argc || strcmp(argv[i], "--") != 0) {
		fprintf(stderr, "usage: token-check [--aud AUD] KEYSPEC... -- TOKEN\n");
		return 2;
	}
	if (rl_token_keys_load(specs, n, &keys, err, sizeof err)) {
		fprintf(stderr, "token-check: %s\n", err);
		return 2;
	}
	pol.now_ms = (int64_t)time(NULL) * 1000;
	e = rl_token_verify(keys, &pol, (const uint8_t *)argv[i + 1], strlen(argv[i + 1]), &cl,
			    why);
	if (e == RL_TOKEN_OK)
		printf("ok sub=%s exp_ms=%lld rooms=%s\n", cl.sub, (long long)cl.exp_ms,
		       cl.perm ? "yes" : "no");
	else
		printf("refused %s: %s\n", rl_token_err_name(e), why);
	rl_perm_free(cl.perm);
	rl_token_keys_free(keys);
	return e == RL_TOKEN_OK ? 0 : 1;
}
