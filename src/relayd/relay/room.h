/* room.h -- rooms: a liburcu lock-free hash table (cds_lfht, QSBR flavour)
 * shared by every worker, keyed by the (trimmed) room name.
 *
 * Lifetime protocol (see docs/architecture.md; with history on, rooms
 * outlive their members: see the section "rooms with history" below):
 *  - <members> counts memberships over all workers. Once it reaches 0 it
 *    never rises again: a join increments it unless it is 0. The leave that
 *    takes it to 0 removes the node from the table (cds_lfht_del) and drops
 *    the table's reference. A join that finds a room at 0 ("dying") helps
 *    remove it and retries with a fresh room (cds_lfht_add_unique).
 *  - Memory is a separate urcu_ref: one reference held by the table, one
 *    per in-flight holder (rl_room_get, e.g. a message queued to another
 *    worker). The last put frees the room with call_rcu, so readers that
 *    found it by lookup in the current grace period stay safe.
 *  - Each worker has its own member list in the room, written and read only
 *    by that worker; <wmask> (atomic) says which workers have members, so a
 *    publisher knows whom to send one inbox item.
 *
 * Threading: every function must be called from a thread registered with
 * urcu-qsbr and online (the workers; tests may register their own threads),
 * except rl_rooms_init/fini (main thread). rl_room_local_* for worker <w>
 * only from worker <w>. */
#ifndef RL_ROOM_H
#define RL_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rl_room;

/* One entry of a worker's member list. <who> is the caller's member object
 * (relayd: struct rl_conn); <slot> is an index the caller keeps for it (the
 * position of this room in the member's own room list). */
struct rl_member {
	void *who;
	uint32_t slot;
	uint64_t seq; /* the room's join sequence number of this membership */
};

/* Creates the table for <nworkers> (1..64) workers. 0 or -errno. */
int rl_rooms_init(unsigned nworkers);
/* Removes whatever rooms remain, waits for pending call_rcu callbacks
 * (rcu_barrier) and destroys the table. No worker may run any more. The
 * calling thread must not be a registered RCU reader. */
void rl_rooms_fini(void);
/* The server-wide room limit (--max-rooms): <max> is read with a relaxed
 * atomic load at every room creation (a reload may store it; 0 =
 * unlimited) and must outlive the table. Main thread, before any worker. */
void rl_rooms_set_limit(const uint64_t *max);
/* Rooms currently in the table, memberships over all rooms (gauges). */
long rl_rooms_count(void);
long rl_rooms_memberships(void);

/* The table's hash of a room name. Keyed with a per-process random seed
 * drawn by rl_rooms_init, so a client cannot craft names that all land in
 * one bucket; stable for the life of the table. */
uint64_t rl_room_hash_name(const uint8_t *name, size_t len);
/* The same hash under an explicit <seed> (tests). */
uint64_t rl_room_hash_seeded(uint64_t seed, const uint8_t *name, size_t len);

/* Takes one membership of the room named <name>/<len> (1..64 bytes),
 * creating the room if needed. On success *<out> is the room (valid while
 * the membership is held) and *<members> the count including this one.
 * *<created> (may be NULL) tells whether this call created it. 0, -ENOMEM,
 * or -ENOSPC: the room does not exist and the table already holds the
 * limit (rl_rooms_set_limit; exact across workers). */
int rl_room_join(const uint8_t *name, size_t len, struct rl_room **out, long *members,
		 bool *created);
/* Drops one membership. The last one anywhere removes the room from the
 * table; returns true then. <r> must not be used afterwards unless the
 * caller holds a reference (rl_room_get). */
bool rl_room_leave(struct rl_room *r);

/* Memory references, for holders that are not members (queue items). Get
 * only while the room is known alive (a membership or a reference held). */
void rl_room_get(struct rl_room *r);
void rl_room_put(struct rl_room *r);

/* For a thread that holds no membership (the cluster bridge): the room
 * named <name>/<len> if it is in the table, or NULL; valid until the
 * caller's next quiescent state. */
struct rl_room *rl_room_find(const uint8_t *name, size_t len);
/* A reference to <r> found with rl_room_find, unless its memory is already
 * on its way out (then false). */
bool rl_room_tryget(struct rl_room *r);

long rl_room_members(const struct rl_room *r);
const uint8_t *rl_room_name(const struct rl_room *r, size_t *len);
uint64_t rl_room_hash(const struct rl_room *r);
/* Bitmask of workers that have local members (racy snapshot). */
uint64_t rl_room_workers(const struct rl_room *r);

/* Join sequence: every rl_room_local_add takes the next number (atomic).
 * A message records rl_room_seq() when it is published; a member whose
 * number is newer joined after the publish and does not get it, so a
 * message or presence event still queued to another worker is never
 * delivered to someone who joined after it was sent. 64 bits: a room
 * would need 2^64 joins to wrap, so plain comparison is exact (a 32-bit
 * counter compared modulo 2^32 misjudged members 2^31 joins old). */
uint64_t rl_room_seq(const struct rl_room *r);

/* The delivery rule: a member with join number <member_seq> joined after a
 * message published at <msg_seq> (rl_room_seq then) and must not get it. */
static inline bool rl_room_joined_after(uint64_t member_seq, uint64_t msg_seq)
{
	return member_seq > msg_seq;
}

/* Worker <w>'s member list. Adds <m> (its seq is assigned here) and returns
 * its index in *<idx>. */
int rl_room_local_add(struct rl_room *r, unsigned w, struct rl_member m, uint32_t *idx);
/* Removes the entry at <idx> by moving the last entry into its place; if an
 * entry moved, returns true and *<moved> is it (now at <idx>): the caller
 * updates that member's bookkeeping. */
bool rl_room_local_del(struct rl_room *r, unsigned w, uint32_t idx, struct rl_member *moved);
const struct rl_member *rl_room_local(const struct rl_room *r, unsigned w, uint32_t *n);
/* Updates the <slot> of worker <w>'s entry at <idx>. */
void rl_room_local_set_slot(struct rl_room *r, unsigned w, uint32_t idx, uint32_t slot);

/* ---- rooms with history (history on; relay/history.c) ---------------------
 * Such a room is not removed by its last leave: it stays in the table, empty
 * and joinable, until history.c's sweeper expires it. Its <members> changes
 * only under its history lock (rl_hist_join, rl_hist_leave), where it may
 * rise from 0 again; rl_room_join is the v1 path and is not used. */

/* The room named <name>/<len>, found or created (members 0, history state
 * new); *<created> says which. No membership is taken: the pointer is valid
 * until the caller's next quiescent state. NULL with errno ENOMEM, or
 * ENOSPC when it would be one room more than --max-rooms. */
struct rl_room *rl_room_find_or_add(const uint8_t *name, size_t len, bool *created);
/* members += <delta> (and the memberships gauge); returns the new count.
 * Under the room's history lock. */
long rl_room_count_member(struct rl_room *r, long delta);
/* Removes <r> from the table (if nobody has yet) and drops the table's
 * reference: for an expired room, by its expirer or a joiner that finds it. */
void rl_room_unlink(struct rl_room *r);
/* The room's history state; NULL with history off. */
struct rl_hist *rl_room_hist(const struct rl_room *r);

/* Calls <fn> for every room in the table (RCU read side, online). For admin
 * views; counts may be stale. */
void rl_rooms_foreach(void (*fn)(const struct rl_room *r, void *arg), void *arg);

#endif
