/* membership.c -- a connection's room list, in step with the rooms' member
 * lists. Threading: see membership.h. */
#include "relay/membership.h"

#include "net/conn.h"
#include "relay/room.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

long rl_membership_find(const struct rl_conn *c, struct relay_span name)
{
	uint32_t h = (uint32_t)rl_room_hash_name(name.p, name.n);
	for (uint32_t i = 0; i < c->nrooms; i++) {
		if (c->rooms[i].hash != h)
			continue;
		size_t len;
		const uint8_t *rn = rl_room_name(c->rooms[i].room, &len);
		if (len == name.n && memcmp(rn, name.p, len) == 0)
			return i;
	}
	return -1;
}

int rl_membership_add(struct rl_conn *c, struct rl_room *r)
{
	if (c->nrooms == c->rooms_cap) {
		uint32_t cap = c->rooms_cap ? c->rooms_cap * 2 : 2;
		struct rl_conn_room *nr = realloc(c->rooms, cap * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		c->rooms = nr;
		c->rooms_cap = cap;
	}
	uint32_t slot = c->nrooms;
	struct rl_member m = { c, slot, 0 };
	uint32_t idx;
	if (rl_room_local_add(r, c->w->id, m, &idx))
		return -ENOMEM;
	c->rooms[slot] = (struct rl_conn_room){ r, idx, (uint32_t)rl_room_hash(r) };
	c->nrooms++;
	return 0;
}

/* Removes slot <slot> from <c> and from the room's local member list. */
static void membership_del(struct rl_conn *c, uint32_t slot)
{
	struct rl_conn_room *cr = &c->rooms[slot];
	struct rl_member moved;
	unsigned w = c->w->id;

	if (rl_room_local_del(cr->room, w, cr->idx, &moved))
		((struct rl_conn *)moved.who)->rooms[moved.slot].idx = cr->idx;
	uint32_t last = c->nrooms - 1;
	if (slot != last) {
		c->rooms[slot] = c->rooms[last];
		rl_room_local_set_slot(c->rooms[slot].room, w, c->rooms[slot].idx, slot);
	}
	if (--c->nrooms == 0) {
		free(c->rooms); /* idle connections keep no room array */
		c->rooms = NULL;
		c->rooms_cap = 0;
	}
}

void rl_membership_leave(struct rl_conn *c, uint32_t slot, rl_membership_left_fn *left)
{
	struct rl_room *r = c->rooms[slot].room;
	membership_del(c, slot);
	if (left)
		left(c, r); /* still a member: the room is alive */
	rl_room_leave(r);
}

void rl_membership_leave_all(struct rl_conn *c, rl_membership_left_fn *left)
{
	while (c->nrooms)
		rl_membership_leave(c, c->nrooms - 1, left);
}
