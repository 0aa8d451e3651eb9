/* membership.h -- a connection's room memberships: its own room list
 * (struct rl_conn.rooms: MESSAGE and LEAVE find a room there without a
 * table lookup) kept in step with each room's member list for the
 * connection's worker (room.c). Each side records its index in the other,
 * so adding or removing a membership is O(1) on both sides (a removal moves
 * the last entry into the hole and fixes that entry's back index).
 * Threading: the connection's owner worker, RCU read side online. */
#ifndef RL_MEMBERSHIP_H
#define RL_MEMBERSHIP_H

#include <relay/protocol.h>
#include <stdint.h>

struct rl_conn;
struct rl_room;

/* The slot of the room named <name> (trimmed, checked) in <c>'s list, or
 * -1. Compares a hash before any name. */
long rl_membership_find(const struct rl_conn *c, struct relay_span name);

/* Records membership <r>, which the caller has just taken (rl_room_join),
 * in <c>'s list and in the room's member list of <c>'s worker. 0, or
 * -ENOMEM with neither list changed: the caller still holds the membership
 * and must rl_room_leave it. */
int rl_membership_add(struct rl_conn *c, struct rl_room *r);

/* Told that <c> is leaving <r>: called after <c> left both lists (it does
 * not receive what the callback publishes) and before the membership is
 * dropped (so <r> is still alive). */
typedef void rl_membership_left_fn(struct rl_conn *c, struct rl_room *r);

/* Leaves the room at <slot> of <c>'s list: off both lists, <left> (may be
 * NULL), then rl_room_leave, which may free the room: no pointer into it
 * (e.g. its name) may be used afterwards. Slots above <slot> may move. */
void rl_membership_leave(struct rl_conn *c, uint32_t slot, rl_membership_left_fn *left);
/* Leaves every room of <c> the same way (the connection is closing). <c>
 * holds no room array afterwards. */
void rl_membership_leave_all(struct rl_conn *c, rl_membership_left_fn *left);

#endif
