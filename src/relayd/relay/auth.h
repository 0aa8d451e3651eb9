/* auth.h -- access control for connections (protocol-v1-ext.md §2 and §7
 * "Tokens"): with token keys configured, every connection must present a
 * valid token in HELLO within --hello-timeout; the token's room permissions
 * are checked on JOIN_ROOM and MESSAGE; the connection is closed at its
 * exp + leeway unless a refresh (a later HELLO with a token for the same
 * sub) came first.
 *
 * Process-wide: the key set and the audience (keyring.h), loaded by the
 * main thread at start (rl_auth_init) and at every SIGHUP (rl_auth_reload).
 * Authentication is on exactly when keys were configured at start: a reload
 * changes the keys and the audience, never whether tokens are required.
 *
 * Per connection: struct rl_auth (c->auth, allocated at accept when auth is
 * on; NULL otherwise, so the v1 paths test one pointer), holding the
 * compiled permissions (perm.h), the token's exp and one timer: on the
 * worker's HELLO list until the first valid HELLO, then on its expiry list.
 *
 * Threading: rl_auth_init, _reload and _fini on the main thread (not an RCU
 * reader); rl_auth_worker_init on the main thread before the worker runs;
 * everything else on the connection's owner worker, RCU read side online
 * (a HELLO reads the key set under RCU and keeps nothing of it). */
#ifndef RL_AUTH_H
#define RL_AUTH_H

#include <relay/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/options.h"
#include "net/conn.h"
#include "relay/perm.h"

/* The worker's timer lists this file owns (struct rl_worker.timers, after
 * the connection layer's), run in this order after them. */
enum rl_auth_timer {
	RL_AUTH_T_HELLO = RL_CONN_NTIMERS, /* timeout --hello-timeout, from accept: UNAUTHORIZED */
	RL_AUTH_T_EXPIRY, /* deadline list, sorted (each token its own exp): TOKEN_EXPIRED */
	RL_AUTH_T_END
};
_Static_assert(RL_AUTH_T_END == RL_WORKER_NTIMERS, "struct rl_worker holds every list");

/* Whether token keys were configured at start. Any thread, after rl_auth_init. */
bool rl_auth_on(void);

/* Startup, after the options (and the config file) are final, before any
 * worker runs: loads --auth-key's files and --auth-audience. No keys: auth
 * stays off (an audience without keys is an error). Returns 0, or -errno
 * with one line in <err> naming the option and the file. */
int rl_auth_init(const struct rl_config *cfg, char *err, size_t errlen);
/* SIGHUP: loads the key files <cfg> names (read again even when the list
 * did not change: a file replaced in place is how keys roll) and publishes
 * them with <cfg>'s audience; HELLOs verified from then on use the new pair.
 * Fails, changing nothing, when a file cannot be used or when the reload
 * would turn authentication on or off: 0, or -errno with one line in <err>.
 * Logs the new key list on success. */
int rl_auth_reload(const struct rl_config *cfg, char *err, size_t errlen);
/* After the workers stopped, before rcu_barrier (rl_rooms_fini). */
void rl_auth_fini(void);
/* Sets up worker <w>'s lists (enum rl_auth_timer), whether auth is on or not. */
void rl_auth_worker_init(struct rl_worker *w);

/* Connection upcalls (through handler.c). opened: with auth on, allocates
 * c->auth and arms the HELLO deadline (out of memory: kills <c>). closed:
 * frees c->auth. */
void rl_auth_opened(struct rl_conn *c);
void rl_auth_closed(struct rl_conn *c);

/* Called for every frame of a connection with c->auth set, before its
 * handler: until a HELLO with a valid token was acked, a frame other than
 * HELLO or HEARTBEAT is fatal UNAUTHORIZED. Returns true when <type> was
 * refused (the ERROR is sent; do not handle the frame). */
bool rl_auth_gate(struct rl_conn *c, unsigned type);

enum rl_auth_hello {
	RL_AUTH_HELLO_REFUSED = 0, /* fatal UNAUTHORIZED sent (or <c> killed): no ack */
	RL_AUTH_HELLO_TOKEN,	   /* authenticated or refreshed: c->user_id is the sub;
				      ack, then rl_auth_may_stay for each room */
	RL_AUTH_HELLO_PLAIN,	   /* no token, authenticated before: a v1 HELLO that
				      may change echo, never the userId */
};
/* The HELLO of a connection with c->auth set, whose `token` field (kind
 * RELAY_JSON_NONE when absent or for a binary HELLO) is <tok>. Verifies the
 * token against the current key set, checks that a refresh keeps the sub,
 * replaces the permissions and the expiry. */
enum rl_auth_hello rl_auth_hello(struct rl_conn *c, const struct relay_json_field *tok);

/* Writes "userId":"<sub>","expiresAt":<exp ms> into the HELLO ack being
 * built in <jw>, when <c> is authenticated (nothing otherwise). */
void rl_auth_ack_fields(const struct rl_conn *c, struct relay_jw *jw);

/* JOIN_ROOM (RL_PERM_JOIN) or MESSAGE (RL_PERM_PUBLISH) of the trimmed room
 * name <room> by a connection with c->auth set: true when the token allows
 * it; otherwise sends the non-fatal FORBIDDEN (with "room"), counts it and
 * returns false. No allocation; O(log E + P) in the token's patterns,
 * whatever the number of rooms on the server. */
bool rl_auth_allows(struct rl_conn *c, enum rl_perm_op op, struct relay_span room);
/* Whether a connection with c->auth set may stay in <room> (after a
 * refresh: its new token's `join` patterns); sends nothing. */
bool rl_auth_may_stay(const struct rl_conn *c, struct relay_span room);

#endif
