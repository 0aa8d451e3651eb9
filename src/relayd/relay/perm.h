/* perm.h -- room permissions from a token's `rooms` claim
 * (protocol-v1-ext.md §2): {"join":[PATTERN...],"publish":[PATTERN...]}.
 *
 * A pattern is an exact room name, a prefix followed by `*` (`team.*` matches
 * `team.a` and `team.`), or `*` alone. Only a final `*` is special: `a*b` is
 * the exact name "a*b". A list that is absent allows nothing; a connection
 * whose token has no `rooms` claim holds no struct rl_perm at all (NULL),
 * which allows every room.
 *
 * Compiled once per token into one allocation: per list, a `*` flag, the exact
 * names sorted (binary search) and the prefixes (scanned). A check allocates
 * nothing and costs O(log E + P) for E exact names and P prefixes of the list,
 * whatever the number of rooms on the server.
 *
 * Limits (each refuses the token, with a reason): at most RL_PERM_MAX_PATTERNS
 * patterns per list and RL_PERM_MAX_BYTES pattern bytes in all; a pattern is
 * 1-64 bytes (RELAY_ROOM_MAX_BYTES) once its `*` is removed. A token is at most
 * 4096 bytes, so real claims stay far below the byte limit; it exists so that
 * the matcher is bounded whatever feeds it.
 *
 * Threading: a compiled struct rl_perm is immutable; any thread may check it.
 * It belongs to one connection (its owner worker frees it).
 */
#ifndef RL_PERM_H
#define RL_PERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <relay/protocol.h>

#define RL_PERM_MAX_PATTERNS 64 /* per list */
#define RL_PERM_MAX_BYTES 4096	/* pattern bytes, both lists together */

enum rl_perm_op {
	RL_PERM_JOIN = 0, /* JOIN_ROOM */
	RL_PERM_PUBLISH,  /* MESSAGE to a joined room */
	RL_PERM_NOPS
};

struct rl_perm;

/* Compiles the `rooms` claim whose raw JSON value is <rooms> (a span that
 * relay_json_parse already validated, e.g. relay_json_field.raw). It must be an
 * object; `join` and `publish`, when present, arrays of strings that are valid
 * patterns; other keys are ignored. Returns 0 and sets *<out> (free with
 * rl_perm_free); -EINVAL with a one-line reason in <why> (e.g. "rooms.join[2]
 * is not a valid room pattern"); -ENOMEM. */
int rl_perm_compile(struct relay_span rooms, struct rl_perm **out, char *why, size_t whylen);

/* Whether <p> allows <op> on the room <name>/<n>, the name as the server keeps
 * it (after relay_room_name_check's trimming). <p> NULL allows everything. No
 * allocation, no locks. */
bool rl_perm_allows(const struct rl_perm *p, enum rl_perm_op op, const uint8_t *name, size_t n);

/* Bytes allocated for <p> (0 for NULL), for memory accounting. */
size_t rl_perm_size(const struct rl_perm *p);

void rl_perm_free(struct rl_perm *p);

/* ---- walking a JSON array of strings ---------------------------------------
 * relay_json_parse validates and extracts top-level fields but does not walk
 * arrays. This walks the elements of an array it has already validated (no
 * second JSON grammar: it only finds where each string token ends); used for
 * `rooms` lists and `aud`. */
struct rl_json_strs {
	const uint8_t *_p, *_end;
};

/* <arr> must be the raw span of a validated JSON array ('[' ... ']'). */
void rl_json_strs_init(struct rl_json_strs *it, struct relay_span arr);
/* 1: *<tok> is the next element, a string token (quotes included: decode
 * with relay_json_string_decode); 0: no more elements; -1: the next element is
 * not a string (the walk cannot go on). */
int rl_json_strs_next(struct rl_json_strs *it, struct relay_span *tok);

#endif
