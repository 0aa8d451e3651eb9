/* wire.h -- what relayd nodes put on the bus (docs/cluster.md, "Envelope"):
 * a compact binary envelope around every bridged frame on a room's channel,
 * and the control messages on the nodes channel (member counts, heartbeats,
 * goodbye). Every message starts with the same header:
 *
 *   'R' | version 1 | kind | u8 N | N bytes node id | u32 boot
 *
 * FRAME     u64 seq | u64 timestamp ms | u8 L | L bytes room | the frame
 *           (7-byte relay header + payload, exactly as delivered to clients)
 * COUNTS    u64 version | { u8 L | L bytes room | u32 members }...
 * HEARTBEAT u64 version (the node's latest COUNTS version)
 * BYE       (nothing: the node is leaving)
 *
 * Integers are big endian. <boot> is random per process start, so a node
 * restarted under the same id is told apart from its previous life.
 * Threading: pure functions. */
#ifndef RL_WIRE_H
#define RL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RL_WIRE_MAGIC 'R'
#define RL_WIRE_VERSION 1
#define RL_WIRE_NODE_MAX 32 /* bytes of a node id */
#define RL_WIRE_ROOM_MAX 64
#define RL_WIRE_FRAME_MIN 7 /* a relay frame header */

enum rl_wire_kind {
	RL_WIRE_FRAME = 0,
	RL_WIRE_COUNTS,
	RL_WIRE_HEARTBEAT,
	RL_WIRE_BYE,
	RL_WIRE_NKINDS
};

/* A decoded message; pointers into the decoded bytes. */
struct rl_wire_msg {
	enum rl_wire_kind kind;
	const uint8_t *node;
	size_t node_len;
	uint32_t boot;
	uint64_t seq;	     /* FRAME */
	uint64_t ts_ms;	     /* FRAME */
	uint64_t version;    /* COUNTS, HEARTBEAT */
	const uint8_t *room; /* FRAME */
	size_t room_len;
	const uint8_t *body; /* FRAME: the frame; COUNTS: the entries */
	size_t body_len;
};

/* Bytes of the common header for a node id of <node_len> bytes. */
size_t rl_wire_hdr_size(size_t node_len);
/* Writes the common header; returns the bytes written. */
size_t rl_wire_put_hdr(uint8_t *out, enum rl_wire_kind kind, const uint8_t *node, size_t node_len,
		       uint32_t boot);

/* Size of a FRAME message and its encoding into <out> (that many bytes). */
size_t rl_wire_frame_size(size_t node_len, size_t room_len, size_t frame_len);
void rl_wire_put_frame(uint8_t *out, const uint8_t *node, size_t node_len, uint32_t boot,
		       uint64_t seq, uint64_t ts_ms, const uint8_t *room, size_t room_len,
		       const uint8_t *frame, size_t frame_len);

/* COUNTS / HEARTBEAT after the header: the version. Returns bytes written (8). */
size_t rl_wire_put_u64(uint8_t *out, uint64_t v);
/* One COUNTS entry; returns bytes written (1 + len + 4). */
size_t rl_wire_put_count(uint8_t *out, const uint8_t *room, size_t len, uint32_t members);
static inline size_t rl_wire_count_size(size_t room_len)
{
	return 1 + room_len + 4;
}

/* Decodes <p>/<n>. 0, or -EPROTO when it is not a well-formed message of a
 * known kind (wrong magic or version, lengths out of range, a FRAME whose
 * frame is shorter than its header or whose length field disagrees). */
int rl_wire_decode(const uint8_t *p, size_t n, struct rl_wire_msg *out);

/* Walks the entries of a COUNTS message: *<off> starts at 0. Returns 1 with
 * one entry, 0 at the end, -EPROTO on a malformed entry. */
int rl_wire_next_count(const struct rl_wire_msg *m, size_t *off, const uint8_t **room,
		       size_t *room_len, uint32_t *members);

#endif
