/* keyring.c -- the current token key set, published with RCU; see keyring.h.
 * Threading: readers are online QSBR workers; one writer at a time.
 * The pointer is read and written with __atomic builtins rather than
 * rcu_dereference/rcu_assign_pointer: same code on x86 and arm64 (acquire on
 * the reader costs what consume does there), and ThreadSanitizer sees the
 * ordering (liburcu 0.13's volatile accesses look like races to it). */
#include "relay/keyring.h"

#include "base/rcu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct keyring_node {
	struct rcu_head rcu;
	struct rl_token_keys *keys;
	char *aud; /* NULL: none */
};

static struct keyring_node *keyring_node_new(struct rl_token_keys *keys, const char *aud)
{
	struct keyring_node *n;

	if (keys == NULL)
		return NULL;
	n = calloc(1, sizeof *n);
	if (n && aud && *aud && !(n->aud = strdup(aud))) {
		free(n);
		return NULL;
	}
	if (n)
		n->keys = keys;
	return n;
}

static void keyring_node_free(struct keyring_node *n)
{
	rl_token_keys_free(n->keys);
	free(n->aud);
	free(n);
}

static void keyring_free_cb(struct rcu_head *head)
{
	struct keyring_node *n = caa_container_of(head, struct keyring_node, rcu);

	rl_rcu_callback_enter();
	keyring_node_free(n);
}

int rl_keyring_init(struct rl_keyring *r, struct rl_token_keys *first, const char *aud)
{
	struct keyring_node *n = keyring_node_new(first, aud);

	if (first && n == NULL)
		return -ENOMEM;
	__atomic_store_n(&r->_cur, n, __ATOMIC_RELEASE);
	return 0;
}

const struct rl_token_keys *rl_keyring_get(struct rl_keyring *r, const char **aud)
{
	struct keyring_node *n = __atomic_load_n(&r->_cur, __ATOMIC_ACQUIRE);

	if (aud)
		*aud = n ? n->aud : NULL;
	return n ? n->keys : NULL;
}

int rl_keyring_swap(struct rl_keyring *r, struct rl_token_keys *next, const char *aud)
{
	struct keyring_node *n = keyring_node_new(next, aud);
	struct keyring_node *old;

	if (next && n == NULL)
		return -ENOMEM;
	old = __atomic_exchange_n(&r->_cur, n, __ATOMIC_ACQ_REL);
	if (old == NULL)
		return 0;
	rcu_register_thread();
	call_rcu(&old->rcu, keyring_free_cb);
	rl_rcu_quiescent();
	rcu_unregister_thread();
	return 0;
}

void rl_keyring_destroy(struct rl_keyring *r)
{
	struct keyring_node *n = __atomic_exchange_n(&r->_cur, NULL, __ATOMIC_ACQ_REL);

	if (n == NULL)
		return;
	keyring_node_free(n);
}
