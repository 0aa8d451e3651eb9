/* token.c -- micro-benchmark of token verification on one core: what a
 * HELLO with a token costs relayd (src/relayd/relay/token.c). A token with
 * 10 room patterns, verified with an HS256 secret and with an Ed25519 public
 * key; also the claims step alone and one permission check. Keys are made at
 * start-up in a temporary directory. Prints the median (and min-max) of
 * several runs, in microseconds (nanoseconds for the check).
 *
 *   token-bench [--runs N] [--ms M]   (defaults: 7 runs of ~300 ms CPU time)
 *
 * Threading: single-threaded.
 */
#include "relay/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "bench.h"

#define NOW_S 1700000000ll

static volatile size_t bench_sink;

/* 10 patterns: exact names and prefixes, as a realistic claim would hold. */
static const char claims[] =
    "{\"sub\":\"alice@example.com\",\"iat\":1699999000,\"exp\":1700003600,"
    "\"aud\":\"relay.example\",\"rooms\":{"
    "\"join\":[\"lobby\",\"announcements\",\"team.red.*\",\"team.blue.*\",\"dm.alice.*\","
    "\"support\"],"
    "\"publish\":[\"team.red.*\",\"team.blue.*\",\"dm.alice.*\",\"support\"]}}";

struct bench_case {
	const char *name;
	struct rl_token_keys *keys;
	char token[1024];
	size_t len;
};

static const struct rl_token_policy pol = {
    .audience = "relay.example", .leeway_ms = 30000, .now_ms = NOW_S * 1000};

static size_t bench_verify(void *arg)
{
	struct bench_case *c = arg;
	struct rl_token_claims cl;
	char why[RL_TOKEN_WHY_MAX];

	if (rl_token_verify(c->keys, &pol, (const uint8_t *)c->token, c->len, &cl, why)) {
		fprintf(stderr, "token-bench: %s: %s\n", c->name, why);
		abort();
	}
	bench_sink += cl.sub_len;
	rl_perm_free(cl.perm);
	return 1;
}

static size_t bench_claims(void *arg)
{
	struct rl_token_claims cl;
	char why[RL_TOKEN_WHY_MAX];

	(void)arg;
	if (rl_token_claims_parse((const uint8_t *)claims, sizeof claims - 1, &pol, &cl, why))
		abort();
	bench_sink += cl.sub_len;
	rl_perm_free(cl.perm);
	return 1;
}

static size_t bench_check(void *arg)
{
	static const char *const rooms[4] = {"support", "team.blue.standup", "random", "dm.bob.x"};
	const struct rl_perm *p = arg;
	size_t n = 0;

	for (int i = 0; i < 64; i++) {
		const char *r = rooms[i & 3];
		n += rl_perm_allows(p, (enum rl_perm_op)(i & 1), (const uint8_t *)r, strlen(r));
	}
	bench_sink += n;
	return 64;
}

typedef size_t (*bench_fn)(void *arg);

/* Seconds of CPU per unit, measured over <ms> milliseconds. */
static double measure(bench_fn fn, void *arg, double ms)
{
	double t0 = bench_cpu_s(), t;
	size_t units = 0;

	do {
		for (int i = 0; i < 8; i++)
			units += fn(arg);
		t = bench_cpu_s();
	} while ((t - t0) * 1000 < ms);
	return (t - t0) / (double)units;
}

/* Key files made now, loaded, removed. */
static void make_cases(struct bench_case *hs, struct bench_case *ed)
{
	char dir[] = "/tmp/token-bench-XXXXXX", p_hs[64], p_ed[64], err[256];
	static const char secret[] = "bench-secret-0123456789abcdef-0123456789abcdef-0123";
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct rl_token_signer *s;
	const char *spec[1];
	FILE *f;

	if (k == NULL || mkdtemp(dir) == NULL)
		abort();
	snprintf(p_hs, sizeof p_hs, "%s/hs", dir);
	snprintf(p_ed, sizeof p_ed, "%s/ed", dir);
	f = fopen(p_hs, "w");
	if (f == NULL || fputs(secret, f) < 0 || fclose(f))
		abort();
	f = fopen(p_ed, "w");
	if (f == NULL || PEM_write_PUBKEY(f, k) != 1 || fclose(f))
		abort();
	spec[0] = p_hs;
	if (rl_token_keys_load(spec, 1, &hs->keys, err, sizeof err))
		abort();
	spec[0] = p_ed;
	if (rl_token_keys_load(spec, 1, &ed->keys, err, sizeof err))
		abort();
	unlink(p_hs);
	unlink(p_ed);
	rmdir(dir);

	static const char hh[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	static const char he[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";
	if (rl_token_signer_hs256(secret, sizeof secret - 1, &s))
		abort();
	hs->len = (size_t)rl_token_sign(s, hh, sizeof hh - 1, claims, sizeof claims - 1, hs->token,
					sizeof hs->token);
	rl_token_signer_free(s);
	/* the EdDSA signer needs a private key file; sign through one */
	char p_priv[] = "/tmp/token-bench-priv-XXXXXX";
	int fd = mkstemp(p_priv);
	f = fd == -1 ? NULL : fdopen(fd, "w");
	if (f == NULL || PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f))
		abort();
	if (rl_token_signer_load(p_priv, &s, err, sizeof err))
		abort();
	unlink(p_priv);
	ed->len = (size_t)rl_token_sign(s, he, sizeof he - 1, claims, sizeof claims - 1, ed->token,
					sizeof ed->token);
	rl_token_signer_free(s);
	EVP_PKEY_free(k);
}

struct result {
	const char *name;
	const char *unit;
	double scale;
	double v[BENCH_MAX_RUNS];
};

static void report(struct result *r, int runs)
{
	qsort(r->v, (size_t)runs, sizeof r->v[0], bench_cmp_double);
	printf("| %-44s | %9.2f | %9.2f | %9.2f | %-4s |\n", r->name, r->v[runs / 2] * r->scale,
	       r->v[0] * r->scale, r->v[runs - 1] * r->scale, r->unit);
}

int main(int argc, char **argv)
{
	struct bench_case hs = {.name = "HS256"}, ed = {.name = "EdDSA"};
	struct rl_token_claims cl;
	char why[RL_TOKEN_WHY_MAX];
	int runs = 7;
	double ms = 300;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc)
			ms = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: token-bench [--runs N] [--ms M]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > BENCH_MAX_RUNS) {
		fprintf(stderr, "token-bench: --runs must be 1-%d\n", BENCH_MAX_RUNS);
		return 2;
	}
	make_cases(&hs, &ed);
	if (rl_token_claims_parse((const uint8_t *)claims, sizeof claims - 1, &pol, &cl, why))
		abort();

	struct result r[4] = {
	    {"verify HS256 token, 10 room patterns", "us", 1e6, {0}},
	    {"verify EdDSA token, 10 room patterns", "us", 1e6, {0}},
	    {"claims + patterns alone (no signature)", "us", 1e6, {0}},
	    {"one permission check (10 patterns)", "ns", 1e9, {0}},
	};
	for (int k = 0; k < runs; k++) {
		r[0].v[k] = measure(bench_verify, &hs, ms);
		r[1].v[k] = measure(bench_verify, &ed, ms);
		r[2].v[k] = measure(bench_claims, NULL, ms);
		r[3].v[k] = measure(bench_check, cl.perm, ms);
	}
	printf("token: %zu bytes (HS256), %zu bytes (EdDSA); %d runs of %.0f ms; "
	       "median (min - max)\n\n",
	       hs.len, ed.len, runs, ms);
	printf("| %-44s | %9s | %9s | %9s | %-4s |\n", "benchmark", "median", "min", "max", "unit");
	printf(
	    "|----------------------------------------------|-----------|-----------|-----------|"
	    "------|\n");
	for (int k = 0; k < 4; k++)
		report(&r[k], runs);
	rl_perm_free(cl.perm);
	rl_token_keys_free(hs.keys);
	rl_token_keys_free(ed.keys);
	return 0;
}
