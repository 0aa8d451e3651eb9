/* tsan_keyring.c -- the token key set swapped by one thread while reader
 * threads (acting as workers) verify tokens with it (suite 'tsan'; plain
 * executable, exit status 0 = pass; run plain, under ASan and under TSan).
 *
 * Checked: every verify succeeds with whichever set it got (both sets hold
 * key "k"; one also holds key "other", so the one-key and several-keys
 * paths alternate); the audience a reader gets is the one published with
 * its set (the one-key set's audience is "one", the other's "two", and the
 * token names both, so a mix-up shows as a wrong pair, not as a refusal);
 * a set is never freed while a reader uses it (ASan/TSan
 * catch a use-after-free or a missing happens-before); at the end every set
 * handed to call_rcu has been freed (rcu_barrier; LeakSanitizer at exit).
 *
 * Threading: READERS registered QSBR threads, each online while it verifies
 * and quiescent between verifies; the main thread (not a reader) swaps. */
#include "base/rcu.h"
#include "relay/keyring.h"
#include "token_fixture.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { READERS = 3, SWAPS = 300 };

static struct rl_keyring ring;
static struct tok_fixture fx;
static atomic_bool stop, failed;
static atomic_long verifies;
static char token[1024];

static void *reader(void *arg)
{
	struct rl_token_policy pol = {.leeway_ms = 0, .now_ms = 1700000000000ll};
	struct rl_token_claims cl;
	char why[RL_TOKEN_WHY_MAX];

	(void)arg;
	rcu_register_thread();
	while (!atomic_load(&stop) && !atomic_load(&failed)) {
		const char *aud;
		const struct rl_token_keys *k = rl_keyring_get(&ring, &aud);
		pol.audience = aud;
		enum rl_token_err e =
		    rl_token_verify(k, &pol, (const uint8_t *)token, strlen(token), &cl, why);

		if (!aud || strcmp(aud, rl_token_keys_count(k) == 1 ? "one" : "two") != 0) {
			fprintf(stderr, "tsan-keyring: %zu keys published with audience %s\n",
				rl_token_keys_count(k), aud ? aud : "(none)");
			atomic_store(&failed, true);
		}

		if (e != RL_TOKEN_OK) {
			fprintf(stderr, "tsan-keyring: verify: %s: %s\n", rl_token_err_name(e),
				why);
			atomic_store(&failed, true);
		}
		rl_perm_free(cl.perm);
		atomic_fetch_add(&verifies, 1);
		rl_rcu_quiescent();
	}
	rl_rcu_offline();
	rcu_unregister_thread();
	return NULL;
}

static struct rl_token_keys *load(int which)
{
	char a[300], b[300], err[256];
	const char *specs[2] = {a, b};
	struct rl_token_keys *k = NULL;

	snprintf(a, sizeof a, "k=%s", tok_fixture_path(&fx, "hs.key"));
	snprintf(b, sizeof b, "other=%s", tok_fixture_path(&fx, "hs2.key"));
	if (rl_token_keys_load(specs, which ? 2 : 1, &k, err, sizeof err)) {
		fprintf(stderr, "tsan-keyring: %s\n", err);
		exit(1);
	}
	return k;
}

static void mint(void)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"kid\":\"k\"}";
	static const char claims[] = "{\"sub\":\"w\",\"exp\":1700000060,\"aud\":[\"one\",\"two\"],"
				     "\"rooms\":{\"join\":[\"a*\"]}}";
	struct rl_token_signer *s = NULL;
	char err[256];

	if (rl_token_signer_load(tok_fixture_path(&fx, "hs.key"), &s, err, sizeof err) ||
	    rl_token_sign(s, hdr, strlen(hdr), claims, strlen(claims), token, sizeof token) < 0) {
		fprintf(stderr, "tsan-keyring: cannot mint: %s\n", err);
		exit(1);
	}
	rl_token_signer_free(s);
}

int main(void)
{
	pthread_t th[READERS];
	long last = 0;

	if (tok_fixture_make(&fx))
		return 1;
	mint();
	if (rl_keyring_init(&ring, load(0), "one"))
		return 1;
	for (int i = 0; i < READERS; i++)
		pthread_create(&th[i], NULL, reader, NULL);
	for (int i = 0; i < SWAPS && !atomic_load(&failed); i++) {
		int two = i % 2 == 0;
		if (rl_keyring_swap(&ring, load(two), two ? "two" : "one"))
			return 1;
		/* let the readers use each set a little before the next swap */
		while (atomic_load(&verifies) < last + READERS && !atomic_load(&failed))
			sched_yield();
		last = atomic_load(&verifies);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	rl_keyring_destroy(&ring);
	rcu_barrier();
	tok_fixture_remove(&fx);
	if (atomic_load(&failed))
		return 1;
	printf("tsan-keyring: %d swaps, %ld verifies, ok\n", SWAPS, atomic_load(&verifies));
	return 0;
}
