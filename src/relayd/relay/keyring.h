/* keyring.h -- the server's current token key set and audience, replaced
 * together on reload while workers go on verifying tokens with them.
 *
 * Contract (RCU, QSBR flavour; see docs/architecture.md "RCU flavour"):
 *  - Readers are the workers: registered QSBR threads, online. The set that
 *    rl_keyring_get returns stays valid until the reader's next quiescent
 *    state or offline period, and nothing that points into it may be kept
 *    past that. rl_token_verify copies everything a connection keeps (sub,
 *    exp, the compiled permissions), so "get, verify" in one step is the
 *    whole pattern.
 *  - The writer is one thread at a time (the main thread on reload), not a
 *    registered RCU reader. It builds the new set first with
 *    rl_token_keys_load -- when that fails the reload is refused and the old
 *    set stays -- then rl_keyring_swap publishes the new set (a release
 *    store: a reader sees either the old set or the whole new one) and hands
 *    the old one to call_rcu, which frees it once every worker has passed a
 *    quiescent state. The swap never waits for readers.
 *  - Shutdown, after the workers stopped: rl_keyring_destroy frees the
 *    current set; rcu_barrier() (rl_rooms_fini calls it) must run before
 *    exit so that sets handed to call_rcu are freed too.
 * Connections verified with an old set keep their claims: a rotation does
 * not cut anyone off; only new HELLOs (and refreshes) use the new set.
 */
#ifndef RL_KEYRING_H
#define RL_KEYRING_H

#include "relay/token.h"

struct keyring_node;

struct rl_keyring {
	struct keyring_node *_cur; /* RCU-published; NULL: no keys (auth off) */
};

/* Starts with <first> (may be NULL), which the ring now owns, and the
 * audience <aud> (copied; NULL or "": `aud` is not checked). Any thread,
 * before workers read the ring. 0 or -ENOMEM (then <first> is still the
 * caller's). */
int rl_keyring_init(struct rl_keyring *r, struct rl_token_keys *first, const char *aud);

/* Reader side: worker, RCU online. The current set, or NULL when none; the
 * audience published with it in *<aud> (NULL: none; <aud> may be NULL), valid
 * as long as the set. */
const struct rl_token_keys *rl_keyring_get(struct rl_keyring *r, const char **aud);

/* Writer side: publishes <next> (may be NULL; the ring owns it) and <aud>
 * (copied) in place of the current pair, which is freed after a grace
 * period. A reader sees the old pair or the new one, never a mix. The caller
 * must not be a registered RCU reader (the function registers itself for
 * the call, as call_rcu requires). One writer at a time. 0, or -ENOMEM (then
 * nothing changed and <next> is still the caller's). */
int rl_keyring_swap(struct rl_keyring *r, struct rl_token_keys *next, const char *aud);

/* Frees the current set. No reader may run any more. */
void rl_keyring_destroy(struct rl_keyring *r);

#endif
