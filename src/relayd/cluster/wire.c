/* wire.c -- the bus envelope and control messages. Threading: see wire.h. */
#include "cluster/wire.h"

#include <errno.h>
#include <string.h>

static void wire_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void wire_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t wire_get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t wire_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t rl_wire_hdr_size(size_t node_len)
{
	return 4 + node_len + 4;
}

size_t rl_wire_put_hdr(uint8_t *out, enum rl_wire_kind kind, const uint8_t *node, size_t node_len,
		       uint32_t boot)
{
	out[0] = RL_WIRE_MAGIC;
	out[1] = RL_WIRE_VERSION;
	out[2] = (uint8_t)kind;
	out[3] = (uint8_t)node_len;
	memcpy(out + 4, node, node_len);
	wire_be32(out + 4 + node_len, boot);
	return rl_wire_hdr_size(node_len);
}

size_t rl_wire_frame_size(size_t node_len, size_t room_len, size_t frame_len)
{
	return rl_wire_hdr_size(node_len) + 16 + 1 + room_len + frame_len;
}

void rl_wire_put_frame(uint8_t *out, const uint8_t *node, size_t node_len, uint32_t boot,
		       uint64_t seq, uint64_t ts_ms, const uint8_t *room, size_t room_len,
		       const uint8_t *frame, size_t frame_len)
{
	uint8_t *q = out + rl_wire_put_hdr(out, RL_WIRE_FRAME, node, node_len, boot);
	wire_be64(q, seq);
	wire_be64(q + 8, ts_ms);
	q[16] = (uint8_t)room_len;
	memcpy(q + 17, room, room_len);
	memcpy(q + 17 + room_len, frame, frame_len);
}

size_t rl_wire_put_u64(uint8_t *out, uint64_t v)
{
	wire_be64(out, v);
	return 8;
}

size_t rl_wire_put_count(uint8_t *out, const uint8_t *room, size_t len, uint32_t members)
{
	out[0] = (uint8_t)len;
	memcpy(out + 1, room, len);
	wire_be32(out + 1 + len, members);
	return rl_wire_count_size(len);
}

/* The frame must be one whole relay frame: its length field covers the rest. */
static int wire_frame_body(struct rl_wire_msg *m, const uint8_t *p, size_t n)
{
	if (n < 17)
		return -EPROTO;
	m->seq = wire_get64(p);
	m->ts_ms = wire_get64(p + 8);
	m->room_len = p[16];
	if (m->room_len == 0 || m->room_len > RL_WIRE_ROOM_MAX || n < 17 + m->room_len)
		return -EPROTO;
	m->room = p + 17;
	m->body = m->room + m->room_len;
	m->body_len = n - 17 - m->room_len;
	if (m->body_len < RL_WIRE_FRAME_MIN || wire_get32(m->body) != m->body_len - 4)
		return -EPROTO;
	return 0;
}

int rl_wire_decode(const uint8_t *p, size_t n, struct rl_wire_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (n < 4 || p[0] != RL_WIRE_MAGIC || p[1] != RL_WIRE_VERSION || p[2] >= RL_WIRE_NKINDS)
		return -EPROTO;
	m->kind = (enum rl_wire_kind)p[2];
	m->node_len = p[3];
	if (m->node_len == 0 || m->node_len > RL_WIRE_NODE_MAX || n < rl_wire_hdr_size(m->node_len))
		return -EPROTO;
	m->node = p + 4;
	m->boot = wire_get32(p + 4 + m->node_len);
	size_t off = rl_wire_hdr_size(m->node_len);
	p += off;
	n -= off;
	switch (m->kind) {
	case RL_WIRE_FRAME:
		return wire_frame_body(m, p, n);
	case RL_WIRE_COUNTS:
	case RL_WIRE_HEARTBEAT:
		if (n < 8)
			return -EPROTO;
		m->version = wire_get64(p);
		m->body = p + 8;
		m->body_len = n - 8;
		return 0;
	case RL_WIRE_BYE:
	default:
		return 0;
	}
}

int rl_wire_next_count(const struct rl_wire_msg *m, size_t *off, const uint8_t **room,
		       size_t *room_len, uint32_t *members)
{
	if (*off >= m->body_len)
		return 0;
	const uint8_t *p = m->body + *off;
	size_t left = m->body_len - *off;
	size_t len = p[0];
	if (len == 0 || len > RL_WIRE_ROOM_MAX || left < rl_wire_count_size(len))
		return -EPROTO;
	*room = p + 1;
	*room_len = len;
	*members = wire_get32(p + 1 + len);
	*off += rl_wire_count_size(len);
	return 1;
}
