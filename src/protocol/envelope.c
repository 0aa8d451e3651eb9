/* envelope.c -- the binary MESSAGE envelopes (client form and delivery form).
 *   client -> server:  u8 L | L bytes room | data
 *   server -> members: u8 L | L bytes room | u8 F | F bytes connectionId | data
 *   ... with RELAY_FLAG_SEQ (history): the same with u64 seq (big endian)
 *                      right after the connectionId
 * Threading: pure functions; callable from any thread.
 */
#include "relay/protocol.h"
#include "proto_internal.h"

#include <string.h>

static bool env_room_len_ok(size_t n)
{
	return n >= 1 && n <= RELAY_ROOM_MAX_BYTES;
}

enum relay_err relay_bin_msg_parse(const uint8_t *p, size_t n, struct relay_span *room,
			     struct relay_span *data)
{
	if (n < 1 || !env_room_len_ok(p[0]) || n - 1 < p[0])
		return RELAY_ERR_INVALID_PAYLOAD;
	size_t l = p[0];
	room->p = p + 1;
	room->n = l;
	data->p = p + 1 + l;
	data->n = n - 1 - l;
	return RELAY_ERR_NONE;
}

size_t relay_bin_msg_size(size_t room_len, size_t data_len)
{
	return 1 + room_len + data_len;
}

static uint8_t *env_put(uint8_t *out, struct relay_span s)
{
	if (s.n > 0)
		memcpy(out, s.p, s.n);
	return out + s.n;
}

size_t relay_bin_msg_encode(uint8_t *out, struct relay_span room, struct relay_span data)
{
	if (!env_room_len_ok(room.n))
		return 0;
	uint8_t *o = out;
	*o++ = (uint8_t)room.n;
	o = env_put(o, room);
	o = env_put(o, data);
	return (size_t)(o - out);
}

enum relay_err relay_bin_delivery_parse(const uint8_t *p, size_t n, struct relay_span *room,
				  struct relay_span *from, struct relay_span *data)
{
	if (n < 1 || !env_room_len_ok(p[0]) || n - 1 < (size_t)p[0] + 1)
		return RELAY_ERR_INVALID_PAYLOAD;
	size_t l = p[0];
	size_t f = p[1 + l];
	if (n - 2 - l < f)
		return RELAY_ERR_INVALID_PAYLOAD;
	room->p = p + 1;
	room->n = l;
	from->p = p + 2 + l;
	from->n = f;
	data->p = p + 2 + l + f;
	data->n = n - 2 - l - f;
	return RELAY_ERR_NONE;
}

size_t relay_bin_delivery_size(size_t room_len, size_t from_len, size_t data_len)
{
	return 2 + room_len + from_len + data_len;
}

size_t relay_bin_delivery_encode(uint8_t *out, struct relay_span room, struct relay_span from,
			      struct relay_span data)
{
	if (!env_room_len_ok(room.n) || from.n > 255)
		return 0;
	uint8_t *o = out;
	*o++ = (uint8_t)room.n;
	o = env_put(o, room);
	*o++ = (uint8_t)from.n;
	o = env_put(o, from);
	o = env_put(o, data);
	return (size_t)(o - out);
}

enum relay_err relay_bin_delivery_seq_parse(const uint8_t *p, size_t n, struct relay_span *room,
					    struct relay_span *from, uint64_t *seq,
					    struct relay_span *data)
{
	struct relay_span rest;
	if (relay_bin_delivery_parse(p, n, room, from, &rest) != RELAY_ERR_NONE || rest.n < 8)
		return RELAY_ERR_INVALID_PAYLOAD;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | rest.p[i];
	*seq = v;
	data->p = rest.p + 8;
	data->n = rest.n - 8;
	return RELAY_ERR_NONE;
}

size_t relay_bin_delivery_seq_size(size_t room_len, size_t from_len, size_t data_len)
{
	return relay_bin_delivery_size(room_len, from_len, data_len) + 8;
}

void relay_bin_delivery_put_seq(uint8_t *seq_at, uint64_t seq)
{
	for (int i = 7; i >= 0; i--, seq >>= 8)
		seq_at[i] = (uint8_t)seq;
}

size_t relay_bin_delivery_seq_encode(uint8_t *out, struct relay_span room, struct relay_span from,
				     uint64_t seq, struct relay_span data)
{
	if (!env_room_len_ok(room.n) || from.n > 255)
		return 0;
	uint8_t *o = out;
	*o++ = (uint8_t)room.n;
	o = env_put(o, room);
	*o++ = (uint8_t)from.n;
	o = env_put(o, from);
	relay_bin_delivery_put_seq(o, seq);
	o = env_put(o + 8, data);
	return (size_t)(o - out);
}
