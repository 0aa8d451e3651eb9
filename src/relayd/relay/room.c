/* room.c -- the shared room table and the room lifetime protocol.
 * Threading: see room.h. Only the owner worker touches local[w]; <members>,
 * <wmask> and <ref> are atomics; the table is cds_lfht (QSBR). With history
 * on, a room's <members> changes only under its history lock (history.c). */
#include "relay/room.h"

#include "base/rcu.h"
#include "relay/history.h"

#include <errno.h>
#include <relay/protocol.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct room_local {
	struct rl_member *m;
	uint32_t n, cap;
};

struct rl_room {
	struct cds_lfht_node node;
	struct rcu_head rcu;
	struct urcu_ref ref;        /* memory: the table's + in-flight holders' */
	long members;               /* atomic; 0 = dying, never rises again */
	uint64_t wmask;             /* atomic; bit w: local[w].n > 0 */
	uint64_t join_seq;          /* atomic; see rl_room_seq */
	struct rl_hist *hist;       /* history on: its lock, positions, stored
				       messages, retention (history.c); else NULL */
	uint64_t hash;
	uint8_t name_len;
	uint8_t name[RELAY_ROOM_MAX_BYTES];
	struct room_local local[];  /* one per worker */
};

struct room_key {
	const uint8_t *p;
	size_t n;
};

static struct cds_lfht *rooms_ht;
static unsigned rooms_nworkers;
static long rooms_count;       /* atomic: rooms in the table (and creations under way) */
static const uint64_t *rooms_max; /* --max-rooms (relaxed atomic loads), or NULL */
static long rooms_memberships; /* atomic */
static uint64_t rooms_seed;    /* hash key, set by rl_rooms_init before any worker runs */

char rl_rcu_token;

/* A per-process secret for the name hash. getrandom only fails on kernels
 * older than 3.17 (or under a seccomp filter): then the clock, pid and an
 * address are still unknown to a remote client. */
static uint64_t rooms_new_seed(void)
{
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), 0) == (ssize_t)sizeof(seed))
		return seed;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid() << 16;
	return seed ^ (uint64_t)(uintptr_t)&seed;
}

int rl_rooms_init(unsigned nworkers)
{
	rooms_nworkers = nworkers;
	rooms_seed = rooms_new_seed();
	rooms_ht = cds_lfht_new_flavor(1024, 1024, 0,
				       CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
				       &urcu_qsbr_flavor, NULL);
	return rooms_ht ? 0 : -ENOMEM;
}

void rl_rooms_set_limit(const uint64_t *max)
{
	rooms_max = max;
}

/* Every room that enters the table is counted here first, against the
 * limit: taking a place before the room is published (and giving it back
 * if it is not) keeps the count exact when workers create rooms at once.
 * Whatever keeps empty rooms in the table keeps them counted (they leave
 * it, and the count, in room_unlink). false: the limit is reached. */
static bool room_count_take(void)
{
	uint64_t max = rooms_max ? __atomic_load_n(rooms_max, __ATOMIC_RELAXED) : 0;
	long old = uatomic_read(&rooms_count);

	for (;;) {
		if (max && (uint64_t)old >= max)
			return false;
		long seen = uatomic_cmpxchg(&rooms_count, old, old + 1);
		if (seen == old)
			return true;
		old = seen;
	}
}

long rl_rooms_count(void)
{
	return uatomic_read(&rooms_count);
}

long rl_rooms_memberships(void)
{
	return uatomic_read(&rooms_memberships);
}

uint64_t rl_room_hash_seeded(uint64_t seed, const uint8_t *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull ^ seed; /* FNV-1a, then a murmur3 finaliser */
	for (size_t i = 0; i < len; i++)
		h = (h ^ name[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

uint64_t rl_room_hash_name(const uint8_t *name, size_t len)
{
	return rl_room_hash_seeded(rooms_seed, name, len);
}

static int room_match(struct cds_lfht_node *node, const void *key)
{
	struct rl_room *r = caa_container_of(node, struct rl_room, node);
	const struct room_key *k = key;
	rl_tsan_acquire(r); /* published by another thread's add_unique */
	return r->name_len == k->n && memcmp(r->name, k->p, k->n) == 0;
}

static void room_free_cb(struct rcu_head *head)
{
	rl_rcu_callback_enter();
	struct rl_room *r = caa_container_of(head, struct rl_room, rcu);
	if (r->hist)
		rl_hist_free(r->hist);
	free(r);
}

static void room_release(struct urcu_ref *ref)
{
	struct rl_room *r = caa_container_of(ref, struct rl_room, ref);
	call_rcu(&r->rcu, room_free_cb);
}

void rl_room_get(struct rl_room *r)
{
	urcu_ref_get(&r->ref);
}

void rl_room_put(struct rl_room *r)
{
	urcu_ref_put(&r->ref, room_release);
}

/* Removes <r> from the table if nobody has yet; the remover drops the
 * table's reference. Safe to race: only one cds_lfht_del succeeds. */
void rl_room_unlink(struct rl_room *r)
{
	if (cds_lfht_del(rooms_ht, &r->node) == 0) {
		uatomic_dec(&rooms_count);
		rl_room_put(r);
	}
}

static struct rl_room *room_new(const uint8_t *name, size_t len, uint64_t hash)
{
	struct rl_room *r = calloc(1, sizeof(*r) + rooms_nworkers * sizeof(struct room_local));
	if (!r)
		return NULL;
	cds_lfht_node_init(&r->node);
	urcu_ref_init(&r->ref); /* the table's reference */
	r->members = 1;         /* the creator's membership */
	if (rl_history_on()) {
		r->members = 0; /* rl_hist_join takes it, under the room lock */
		if (!(r->hist = rl_hist_new(r))) {
			free(r);
			return NULL;
		}
	}
	r->hash = hash;
	r->name_len = (uint8_t)len;
	memcpy(r->name, name, len);
	return r;
}

/* members += 1 unless it is 0. Returns the new count, or 0 if dying. */
static long room_inc_unless_zero(struct rl_room *r)
{
	long old = uatomic_read(&r->members);
	for (;;) {
		if (old == 0)
			return 0;
		long seen = uatomic_cmpxchg(&r->members, old, old + 1);
		if (seen == old)
			return old + 1;
		old = seen;
	}
}

static struct rl_room *room_lookup(const struct room_key *k, uint64_t hash)
{
	struct cds_lfht_iter it;
	cds_lfht_lookup(rooms_ht, hash, room_match, k, &it);
	struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
	if (!node)
		return NULL;
	struct rl_room *r = caa_container_of(node, struct rl_room, node);
	rl_tsan_acquire(r);
	return r;
}

struct rl_room *rl_room_find(const uint8_t *name, size_t len)
{
	struct room_key k = {name, len};
	return room_lookup(&k, rl_room_hash_name(name, len));
}

bool rl_room_tryget(struct rl_room *r)
{
	return urcu_ref_get_unless_zero(&r->ref);
}

/* A room made by room_new and never published. */
static void room_discard(struct rl_room *fresh)
{
	if (!fresh)
		return;
	rl_hist_free(fresh->hist);
	free(fresh);
}

/* One try at creating room <k> after its lookup found none: takes a place
 * in the room count (--max-rooms), makes the room (*<fresh>, kept from an
 * earlier try that lost) and publishes it unless a room of that name
 * appeared first, in which case the place is given back and the caller
 * retries its lookup. 1 published (*<fresh> is the room), 0 lost the race,
 * -ENOSPC (*<fresh> discarded) or -ENOMEM. */
static int room_try_add(const struct room_key *k, uint64_t hash, struct rl_room **fresh)
{
	if (!room_count_take()) {
		room_discard(*fresh);
		*fresh = NULL;
		return -ENOSPC;
	}
	if (!*fresh && !(*fresh = room_new(k->p, k->n, hash))) {
		uatomic_dec(&rooms_count);
		return -ENOMEM;
	}
	rl_tsan_release(*fresh);
	struct cds_lfht_node *got =
	    cds_lfht_add_unique(rooms_ht, hash, room_match, k, &(*fresh)->node);
	if (got == &(*fresh)->node)
		return 1;
	uatomic_dec(&rooms_count); /* the room that won is counted, not ours */
	return 0;
}

struct rl_room *rl_room_find_or_add(const uint8_t *name, size_t len, bool *created)
{
	struct room_key k = { name, len };
	uint64_t hash = rl_room_hash_name(name, len);
	struct rl_room *fresh = NULL;

	for (;;) {
		struct rl_room *r = room_lookup(&k, hash);
		if (r) {
			room_discard(fresh);
			*created = false;
			return r;
		}
		int rc = room_try_add(&k, hash, &fresh);
		if (rc < 0) {
			errno = -rc;
			return NULL;
		}
		if (rc == 1) {
			*created = true;
			return fresh;
		}
	}
}

long rl_room_count_member(struct rl_room *r, long delta)
{
	uatomic_add(&rooms_memberships, delta);
	return uatomic_add_return(&r->members, delta);
}

struct rl_hist *rl_room_hist(const struct rl_room *r)
{
	return r->hist;
}

int rl_room_join(const uint8_t *name, size_t len, struct rl_room **out, long *members,
		 bool *created)
{
	struct room_key k = { name, len };
	uint64_t hash = rl_room_hash_name(name, len);
	struct rl_room *fresh = NULL;

	for (;;) {
		struct rl_room *r = room_lookup(&k, hash);
		if (r) {
			long m = room_inc_unless_zero(r);
			if (m > 0) {
				room_discard(fresh);
				uatomic_inc(&rooms_memberships);
				*out = r;
				*members = m;
				if (created)
					*created = false;
				return 0;
			}
			rl_room_unlink(r); /* dying: help remove it, then retry */
			continue;
		}
		int rc = room_try_add(&k, hash, &fresh);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			uatomic_inc(&rooms_memberships);
			*out = fresh;
			*members = 1;
			if (created)
				*created = true;
			return 0;
		}
	}
}

bool rl_room_leave(struct rl_room *r)
{
	if (r->hist) {
		rl_hist_leave(r); /* kept, even when empty: history.c removes it */
		return false;
	}
	uatomic_dec(&rooms_memberships);
	if (uatomic_sub_return(&r->members, 1) == 0) {
		rl_room_unlink(r);
		return true;
	}
	return false;
}

long rl_room_members(const struct rl_room *r)
{
	return uatomic_read(&r->members);
}

const uint8_t *rl_room_name(const struct rl_room *r, size_t *len)
{
	*len = r->name_len;
	return r->name;
}

uint64_t rl_room_hash(const struct rl_room *r)
{
	return r->hash;
}

uint64_t rl_room_seq(const struct rl_room *r)
{
	return __atomic_load_n(&r->join_seq, __ATOMIC_SEQ_CST);
}

uint64_t rl_room_workers(const struct rl_room *r)
{
	return __atomic_load_n(&r->wmask, __ATOMIC_ACQUIRE);
}

int rl_room_local_add(struct rl_room *r, unsigned w, struct rl_member m, uint32_t *idx)
{
	struct room_local *l = &r->local[w];
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 4;
		struct rl_member *nm = realloc(l->m, cap * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		l->m = nm;
		l->cap = cap;
	}
	m.seq = uatomic_add_return(&r->join_seq, 1);
	*idx = l->n;
	l->m[l->n++] = m;
	if (l->n == 1)
		__atomic_fetch_or(&r->wmask, 1ull << w, __ATOMIC_SEQ_CST);
	return 0;
}

bool rl_room_local_del(struct rl_room *r, unsigned w, uint32_t idx, struct rl_member *moved)
{
	struct room_local *l = &r->local[w];
	bool did = false;

	if (idx != l->n - 1) {
		l->m[idx] = l->m[l->n - 1];
		*moved = l->m[idx];
		did = true;
	}
	if (--l->n == 0) {
		__atomic_fetch_and(&r->wmask, ~(1ull << w), __ATOMIC_SEQ_CST);
		free(l->m); /* idle rooms hold no member array */
		l->m = NULL;
		l->cap = 0;
	} else if (l->cap > 16 && l->n < l->cap / 4) {
		struct rl_member *nm = realloc(l->m, (l->cap / 2) * sizeof(*nm));
		if (nm) {
			l->m = nm;
			l->cap /= 2;
		}
	}
	return did;
}

const struct rl_member *rl_room_local(const struct rl_room *r, unsigned w, uint32_t *n)
{
	*n = r->local[w].n;
	return r->local[w].m;
}

void rl_room_local_set_slot(struct rl_room *r, unsigned w, uint32_t idx, uint32_t slot)
{
	r->local[w].m[idx].slot = slot;
}

void rl_rooms_foreach(void (*fn)(const struct rl_room *r, void *arg), void *arg)
{
	struct cds_lfht_iter it;
	struct rl_room *r;
	cds_lfht_for_each_entry(rooms_ht, &it, r, node) {
		rl_tsan_acquire(r);
		fn(r, arg);
	}
}

void rl_rooms_fini(void)
{
	struct cds_lfht_iter it;
	struct rl_room *r;

	if (!rooms_ht)
		return;
	rcu_register_thread();
	cds_lfht_for_each_entry(rooms_ht, &it, r, node) {
		if (cds_lfht_del(rooms_ht, &r->node) == 0) {
			uatomic_dec(&rooms_count);
			for (unsigned w = 0; w < rooms_nworkers; w++)
				free(r->local[w].m);
			if (r->hist) /* stored messages hold references to the room */
				rl_hist_clear(r->hist);
			rl_room_put(r);
		}
	}
	rl_rcu_quiescent();
	rcu_unregister_thread();
	rcu_barrier();
	cds_lfht_destroy(rooms_ht, NULL);
	rooms_ht = NULL;
}
