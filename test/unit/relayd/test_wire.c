/* test_wire.c -- cluster/wire.c: the bus envelope round-trips, and anything
 * that is not a well-formed message of a known kind is refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "cluster/wire.h"

static const uint8_t frame[] = {0, 0, 0, 5, 1, 4, 1, '{', '}'}; /* MESSAGE JSON "{}" */

static size_t put_frame(uint8_t *buf)
{
	rl_wire_put_frame(buf, (const uint8_t *)"node-A", 6, 0xdeadbeef, 42, 1732147200123ull,
			  (const uint8_t *)"physics", 7, frame, sizeof(frame));
	return rl_wire_frame_size(6, 7, sizeof(frame));
}

Test(wire, a_frame_envelope_round_trips)
{
	uint8_t buf[128];
	size_t n = put_frame(buf);
	struct rl_wire_msg m;
	cr_assert_eq(rl_wire_decode(buf, n, &m), 0);
	cr_assert_eq(m.kind, RL_WIRE_FRAME);
	cr_assert_eq(m.node_len, 6);
	cr_assert_eq(memcmp(m.node, "node-A", 6), 0);
	cr_assert_eq(m.boot, 0xdeadbeef);
	cr_assert_eq(m.seq, 42);
	cr_assert_eq(m.ts_ms, 1732147200123ull);
	cr_assert_eq(m.room_len, 7);
	cr_assert_eq(memcmp(m.room, "physics", 7), 0);
	cr_assert_eq(m.body_len, sizeof(frame));
	cr_assert_eq(memcmp(m.body, frame, sizeof(frame)), 0, "the frame travels verbatim");
}

Test(wire, counts_round_trip_in_order)
{
	uint8_t buf[256];
	size_t n = rl_wire_put_hdr(buf, RL_WIRE_COUNTS, (const uint8_t *)"B", 1, 7);
	n += rl_wire_put_u64(buf + n, 9);
	n += rl_wire_put_count(buf + n, (const uint8_t *)"a", 1, 3);
	n += rl_wire_put_count(buf + n, (const uint8_t *)"room-b", 6, 0);
	struct rl_wire_msg m;
	cr_assert_eq(rl_wire_decode(buf, n, &m), 0);
	cr_assert_eq(m.kind, RL_WIRE_COUNTS);
	cr_assert_eq(m.version, 9);
	size_t off = 0, len;
	const uint8_t *room;
	uint32_t members;
	cr_assert_eq(rl_wire_next_count(&m, &off, &room, &len, &members), 1);
	cr_assert(len == 1 && room[0] == 'a' && members == 3);
	cr_assert_eq(rl_wire_next_count(&m, &off, &room, &len, &members), 1);
	cr_assert(len == 6 && memcmp(room, "room-b", 6) == 0 && members == 0);
	cr_assert_eq(rl_wire_next_count(&m, &off, &room, &len, &members), 0);
}

Test(wire, truncations_and_corruptions_are_refused)
{
	uint8_t buf[128];
	size_t n = put_frame(buf);
	struct rl_wire_msg m;
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(rl_wire_decode(buf, i, &m), -EPROTO, "truncated at %zu", i);
	uint8_t bad[128];
	memcpy(bad, buf, n);
	bad[0] = 'X'; /* magic */
	cr_assert_eq(rl_wire_decode(bad, n, &m), -EPROTO);
	memcpy(bad, buf, n);
	bad[1] = 2; /* version */
	cr_assert_eq(rl_wire_decode(bad, n, &m), -EPROTO);
	memcpy(bad, buf, n);
	bad[2] = RL_WIRE_NKINDS;
	cr_assert_eq(rl_wire_decode(bad, n, &m), -EPROTO);
	memcpy(bad, buf, n);
	bad[n - sizeof(frame) + 3] = 9; /* the frame's length field disagrees */
	cr_assert_eq(rl_wire_decode(bad, n, &m), -EPROTO);
	memcpy(bad, buf, n);
	bad[n] = 0; /* one byte too many for the frame */
	cr_assert_eq(rl_wire_decode(bad, n + 1, &m), -EPROTO);
}
