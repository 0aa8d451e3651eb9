/* perm.c -- room permissions compiled from a token's `rooms` claim; see perm.h.
 * Threading: compile on any thread; a compiled struct rl_perm is immutable and
 * checked without locks or allocation. */
#include "relay/perm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct perm_ent {
	uint16_t off; /* into the bytes after ent[] */
	uint8_t len;  /* exact: the name; prefix: without its '*' */
};

struct perm_list {
	bool all;	 /* held the pattern `*` */
	uint8_t nexact;	 /* ent[first ..] sorted by (len, bytes), no duplicates */
	uint8_t nprefix; /* ent[first + nexact ..], scanned */
	uint16_t first;
};

struct rl_perm {
	uint32_t size; /* bytes allocated */
	struct perm_list list[RL_PERM_NOPS];
	uint16_t nent;
	struct perm_ent ent[]; /* then the pattern bytes */
};

static const char *const perm_list_names[RL_PERM_NOPS] = {
    [RL_PERM_JOIN] = "join",
    [RL_PERM_PUBLISH] = "publish",
};

/* What one pass over the claim collects before the single allocation. */
struct perm_scratch {
	struct perm_ent e[RL_PERM_NOPS][RL_PERM_MAX_PATTERNS];
	bool prefix[RL_PERM_NOPS][RL_PERM_MAX_PATTERNS];
	unsigned n[RL_PERM_NOPS];
	bool all[RL_PERM_NOPS];
	size_t nbytes;
	uint8_t bytes[RL_PERM_MAX_BYTES];
};

/* ---- walking a validated JSON array of strings --------------------------- */

static const uint8_t *perm_skip_ws(const uint8_t *p, const uint8_t *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

void rl_json_strs_init(struct rl_json_strs *it, struct relay_span arr)
{
	it->_p = arr.p + 1; /* past '[' */
	it->_end = arr.p + arr.n;
}

int rl_json_strs_next(struct rl_json_strs *it, struct relay_span *tok)
{
	const uint8_t *p = perm_skip_ws(it->_p, it->_end);
	const uint8_t *q;

	if (p < it->_end && *p == ',')
		p = perm_skip_ws(p + 1, it->_end);
	if (p >= it->_end || *p == ']') {
		it->_p = it->_end;
		return 0;
	}
	if (*p != '"')
		return -1;
	/* Validated JSON: the token ends at the first quote not escaped. */
	for (q = p + 1; q < it->_end && *q != '"'; q++)
		if (*q == '\\')
			q++;
	if (q >= it->_end)
		return -1;
	*tok = (struct relay_span){p, (size_t)(q + 1 - p)};
	it->_p = q + 1;
	return 1;
}

/* ---- compiling ------------------------------------------------------------ */

/* The pattern rule of perm.h, on a decoded string. Sets *<prefix> and the
 * length of what is stored (the prefix without its '*'). */
static bool perm_pattern_ok(const uint8_t *p, size_t n, bool *prefix, size_t *stored)
{
	struct relay_span name;

	if (n == 0)
		return false;
	*prefix = p[n - 1] == '*';
	if (!*prefix) {
		*stored = n; /* an exact name must already be trimmed */
		return relay_room_name_check(p, n, &name) == RELAY_ERR_NONE && name.n == n;
	}
	*stored = n - 1;
	if (n == 1)
		return true; /* `*` alone */
	/* A prefix: 1-64 bytes of UTF-8 without control characters (the userId
	 * rule, shorter) that does not start with whitespace (no trimmed room
	 * name does); trailing spaces are legitimate ("team *"). */
	return n - 1 <= RELAY_ROOM_MAX_BYTES && relay_userid_check(p, n - 1) == RELAY_ERR_NONE &&
	       !(p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r'));
}

static int perm_add(struct perm_scratch *s, enum rl_perm_op op, struct relay_span tok, unsigned idx,
		    char *why, size_t whylen)
{
	const char *ln = perm_list_names[op];
	uint8_t dec[RELAY_ROOM_MAX_BYTES + 2];
	long n = relay_json_string_decode(tok, dec, sizeof dec);
	size_t stored;
	bool prefix;

	if (n < 0 || (size_t)n > sizeof dec - 1 ||
	    !perm_pattern_ok(dec, (size_t)n, &prefix, &stored)) {
		snprintf(why, whylen, "rooms.%s[%u] is not a valid room pattern", ln, idx);
		return -EINVAL;
	}
	if (s->n[op] == RL_PERM_MAX_PATTERNS) {
		snprintf(why, whylen, "rooms.%s holds more than %d patterns", ln,
			 RL_PERM_MAX_PATTERNS);
		return -EINVAL;
	}
	if (s->nbytes + stored > RL_PERM_MAX_BYTES) {
		snprintf(why, whylen, "rooms patterns exceed %d bytes", RL_PERM_MAX_BYTES);
		return -EINVAL;
	}
	if (prefix && stored == 0)
		s->all[op] = true;
	s->e[op][s->n[op]] = (struct perm_ent){(uint16_t)s->nbytes, (uint8_t)stored};
	s->prefix[op][s->n[op]++] = prefix;
	memcpy(s->bytes + s->nbytes, dec, stored);
	s->nbytes += stored;
	return 0;
}

static int perm_collect(struct perm_scratch *s, enum rl_perm_op op,
			const struct relay_json_field *f, char *why, size_t whylen)
{
	struct rl_json_strs it;
	struct relay_span tok;
	unsigned idx = 0;
	int rc;

	if (f->kind == RELAY_JSON_NONE)
		return 0; /* absent: allows nothing */
	if (f->kind != RELAY_JSON_ARRAY) {
		snprintf(why, whylen, "rooms.%s is not an array", perm_list_names[op]);
		return -EINVAL;
	}
	rl_json_strs_init(&it, f->raw);
	while ((rc = rl_json_strs_next(&it, &tok)) == 1) {
		rc = perm_add(s, op, tok, idx++, why, whylen);
		if (rc)
			return rc;
	}
	if (rc < 0) {
		snprintf(why, whylen, "rooms.%s[%u] is not a string", perm_list_names[op], idx);
		return -EINVAL;
	}
	return 0;
}

static int perm_cmp(const struct perm_ent *a, const struct perm_ent *b, const uint8_t *bytes)
{
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(bytes + a->off, bytes + b->off, a->len);
}

/* Appends list <op>'s exact names (sorted, without duplicates), then its
 * prefixes, to p->ent. */
static void perm_build_list(struct rl_perm *p, const struct perm_scratch *s, enum rl_perm_op op)
{
	struct perm_list *l = &p->list[op];
	struct perm_ent *e = p->ent;

	l->all = s->all[op];
	l->first = p->nent;
	for (unsigned i = 0; i < s->n[op]; i++) {
		struct perm_ent x = s->e[op][i];
		unsigned j = p->nent;

		if (s->prefix[op][i])
			continue;
		while (j > l->first && perm_cmp(&e[j - 1], &x, s->bytes) > 0)
			j--; /* insertion sort: at most 64 names */
		if (j > l->first && perm_cmp(&e[j - 1], &x, s->bytes) == 0)
			continue;
		memmove(&e[j + 1], &e[j], (p->nent - j) * sizeof e[0]);
		e[j] = x;
		p->nent++;
		l->nexact++;
	}
	for (unsigned i = 0; i < s->n[op]; i++) {
		if (s->prefix[op][i] && s->e[op][i].len > 0) {
			e[p->nent++] = s->e[op][i];
			l->nprefix++;
		}
	}
}

int rl_perm_compile(struct relay_span rooms, struct rl_perm **out, char *why, size_t whylen)
{
	struct relay_json_field f[RL_PERM_NOPS] = {{.key = "join"}, {.key = "publish"}};
	struct perm_scratch s;
	struct rl_perm *p;
	size_t nent, size;
	int rc;

	if (rooms.n == 0 || rooms.p[0] != '{' ||
	    relay_json_parse(rooms.p, rooms.n, f, RL_PERM_NOPS, NULL) != 0) {
		snprintf(why, whylen, "rooms is not an object");
		return -EINVAL;
	}
	memset(s.n, 0, sizeof s.n);
	memset(s.all, 0, sizeof s.all);
	s.nbytes = 0;
	for (int op = 0; op < RL_PERM_NOPS; op++) {
		rc = perm_collect(&s, (enum rl_perm_op)op, &f[op], why, whylen);
		if (rc)
			return rc;
	}
	nent = s.n[RL_PERM_JOIN] + s.n[RL_PERM_PUBLISH];
	size = sizeof *p + nent * sizeof p->ent[0] + s.nbytes;
	p = calloc(1, size);
	if (p == NULL) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	p->size = (uint32_t)size;
	for (int op = 0; op < RL_PERM_NOPS; op++)
		perm_build_list(p, &s, (enum rl_perm_op)op);
	/* Entries kept may be fewer than nent (duplicates, `*`); the bytes
	 * follow the entries actually used. */
	memcpy(&p->ent[p->nent], s.bytes, s.nbytes);
	*out = p;
	return 0;
}

/* ---- checking ------------------------------------------------------------- */

bool rl_perm_allows(const struct rl_perm *p, enum rl_perm_op op, const uint8_t *name, size_t n)
{
	const struct perm_list *l;
	const struct perm_ent *e;
	const uint8_t *bytes;
	size_t lo, hi;

	if (p == NULL)
		return true;
	if ((unsigned)op >= RL_PERM_NOPS)
		return false;
	l = &p->list[op];
	if (l->all)
		return true;
	e = p->ent + l->first;
	bytes = (const uint8_t *)&p->ent[p->nent];
	for (lo = 0, hi = l->nexact; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		int c = e[mid].len != n ? (e[mid].len < n ? -1 : 1)
					: memcmp(bytes + e[mid].off, name, n);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = l->nexact; i < (size_t)l->nexact + l->nprefix; i++)
		if (e[i].len <= n && memcmp(bytes + e[i].off, name, e[i].len) == 0)
			return true;
	return false;
}

size_t rl_perm_size(const struct rl_perm *p)
{
	return p ? p->size : 0;
}

void rl_perm_free(struct rl_perm *p)
{
	free(p);
}
