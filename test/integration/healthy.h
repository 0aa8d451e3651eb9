/* healthy.h -- the neighbour every fault test keeps watching: a client in
 * the fault's room, with echo on, that sends numbered binary MESSAGEs and
 * must get each back, in order and exactly once, whatever else the room
 * carries (others' messages and presence events are skipped, and counted).
 * Used by test_faults.c and test_storm.c.
 * Threading: the Criterion test body that owns the client. */
#ifndef RELAY_TEST_HEALTHY_H
#define RELAY_TEST_HEALTHY_H

#include "itest.h"

#include <stdio.h>

struct healthy {
	struct rl_test_client *c;
	char id[32];	 /* its connectionId: "from" of its own messages */
	char room[65];	 /* the room it watches */
	uint32_t sent;	 /* numbered messages sent so far */
	uint32_t got;	 /* of those, received back (in order) */
	uint64_t others; /* frames of others skipped */
};

/* Connects with echo on and joins <room>. */
static inline void healthy_start(struct healthy *h, const struct rl_test_server *s,
				 const char *room)
{
	memset(h, 0, sizeof(*h));
	h->c = it_client(s, "{\"echo\":true}");
	snprintf(h->id, sizeof(h->id), "%s", rl_test_conn_id(h->c));
	snprintf(h->room, sizeof(h->room), "%s", room);
	it_join(h->c, room, -1);
}

/* Whether <f> is one of <h>'s own numbered messages; sets *<seq>. */
static inline bool healthy_own(const struct healthy *h, const struct rl_test_frame *f,
			       uint32_t *seq)
{
	struct relay_span room, from, data;
	if (f->type != RELAY_MSG_MESSAGE || !(f->flags & RELAY_FLAG_BINARY) ||
	    relay_bin_delivery_parse(f->payload, f->len, &room, &from, &data) != RELAY_ERR_NONE)
		return false;
	if (from.n != strlen(h->id) || memcmp(from.p, h->id, from.n) != 0)
		return false;
	cr_assert(data.n == 9 && memcmp(data.p, "healthy", 7) == 0,
		  "healthy neighbour: foreign data from its own id: %s", rl_test_frame_str(f));
	*seq = (uint32_t)data.p[7] << 8 | data.p[8];
	return true;
}

/* Sends <n> (<= 4096) numbered messages in one write, then receives them
 * back in order within RL_TEST_BULK_MS; asserts. <why> names the fault. */
static inline void healthy_round(struct healthy *h, unsigned n, const char *why)
{
	static uint8_t buf[4096 * 96];
	size_t off = 0, rl = strlen(h->room);
	cr_assert(n <= 4096 && rl <= 64);
	for (unsigned i = 0; i < n; i++) {
		uint8_t m[1 + 64 + 9];
		uint32_t seq = h->sent + i;
		m[0] = (uint8_t)rl;
		memcpy(m + 1, h->room, rl);
		memcpy(m + 1 + rl, "healthy", 7);
		m[1 + rl + 7] = (uint8_t)(seq >> 8);
		m[1 + rl + 8] = (uint8_t)seq;
		cr_assert_eq(rl_test_frame_append(buf, sizeof(buf), &off, RELAY_MSG_MESSAGE,
						  RELAY_FLAG_BINARY, m, 1 + rl + 9),
			     0);
	}
	it_raw(h->c, buf, off);
	h->sent += n;
	int64_t end = rl_test_now_ms() + RL_TEST_BULK_MS;
	while (h->got < h->sent) {
		int64_t left = end - rl_test_now_ms();
		const struct rl_test_frame *f = rl_test_recv(h->c, left > 0 ? (int)left : 1);
		cr_assert_not_null(f,
				   "%s: the healthy neighbour got %u of its %u messages back: %s",
				   why, h->got, h->sent, rl_test_err());
		uint32_t seq;
		if (!healthy_own(h, f, &seq)) {
			cr_assert(f->type == RELAY_MSG_MESSAGE, "%s: the healthy neighbour got %s",
				  why, rl_test_frame_str(f));
			h->others++;
			continue;
		}
		cr_assert_eq(seq, h->got & 0xffff,
			     "%s: the healthy neighbour's message %u came back as %u", why, h->got,
			     seq);
		h->got++;
	}
}

#endif
