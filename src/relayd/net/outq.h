/* outq.h -- a connection's outbound byte queue. Small frames are copied
 * into per-connection chunks (many frames, one iovec); large frames are
 * queued by reference to their shared rl_msg. An empty queue holds no
 * memory: chunks return to the worker's pool as soon as they are sent.
 * Threading: a queue and its pool belong to one worker. */
#ifndef RL_OUTQ_H
#define RL_OUTQ_H

#include "net/msg.h"
#include "net/transport.h"

#include <stddef.h>
#include <stdint.h>

#define RL_CHUNK_BYTES 4096u  /* one chunk allocation, header included */
#define RL_COPY_MAX 1024u     /* frames up to this size are copied, larger ones referenced */
#define RL_OUTQ_IOV_MAX 1024  /* iovecs per write: IOV_MAX on Linux (more is EINVAL) */

struct rl_oseg {
	struct rl_oseg *next;
	struct rl_msg *msg; /* referenced frame, or NULL for a chunk */
	uint32_t start;     /* first unsent byte */
	uint32_t end;       /* end of valid bytes */
	uint32_t cap;       /* chunk capacity */
	uint32_t lead;	    /* reference: bytes before msg->data sent too (its WebSocket header) */
	uint8_t data[];
};

/* The tail chunk's fill level lives here (<tail_free>), not in the chunk:
 * appending a frame touches the connection's hot cache line and the bytes
 * written, never the chunk header. tail->end is brought up to date (sync)
 * before the chunk is read or stops being the tail. */
struct rl_outq {
	struct rl_oseg *head, *tail;
	uint32_t bytes;     /* queued, unsent */
	uint32_t tail_free; /* room left in the tail chunk; 0 if the tail is a reference */
};

/* Per-worker free lists, bounded. */
struct rl_segpool {
	struct rl_oseg *chunks, *refs;
	uint32_t nchunks, nrefs;
};

#define RL_CHUNK_CAP (RL_CHUNK_BYTES - (uint32_t)sizeof(struct rl_oseg))

void rl_segpool_fini(struct rl_segpool *p);
/* Frees the cached segments (the pool stays usable): after an eviction
 * storm, so that memory can go back to the system. */
void rl_segpool_trim(struct rl_segpool *p);

/* Contiguous room for <n> (<= RL_CHUNK_CAP) bytes at the tail; write them,
 * then rl_outq_commit(n). NULL on ENOMEM. */
uint8_t *rl_outq_reserve_slow(struct rl_outq *q, struct rl_segpool *p, size_t n);
static inline uint8_t *rl_outq_reserve(struct rl_outq *q, struct rl_segpool *p, size_t n)
{
	if (q->tail_free >= n)
		return q->tail->data + (RL_CHUNK_CAP - q->tail_free);
	return rl_outq_reserve_slow(q, p, n);
}
static inline void rl_outq_commit(struct rl_outq *q, size_t n)
{
	q->tail_free -= (uint32_t)n;
	q->bytes += (uint32_t)n;
}
/* Copies a small frame (>= 7 bytes) with 16-byte vector moves; the last
 * move overlaps the previous one instead of finishing byte by byte. gcc
 * otherwise inlines a `rep movsq` whose start-up cost dominated the fan-out
 * profile for ~100-byte frames. In the header: the fan-out fast path
 * (rl_conn_deliver_quick) inlines it. */
static inline void rl_outq_copy_small(uint8_t *d, const uint8_t *s, size_t n)
{
	if (n < 16) {
		if (n >= 8) {
			__builtin_memcpy(d, s, 8);
			__builtin_memcpy(d + n - 8, s + n - 8, 8);
		} else {
			for (size_t i = 0; i < n; i++)
				d[i] = s[i];
		}
		return;
	}
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		__builtin_memcpy(d + i, s + i, 16);
	if (i < n)
		__builtin_memcpy(d + n - 16, s + n - 16, 16);
}
/* Appends <n> bytes of <src> to the tail chunk, which has room for them
 * (<n> <= <q>->tail_free, so the tail is a chunk) and <n> <= RL_COPY_MAX:
 * the same bytes rl_outq_push_framed would copy, without its checks. */
static inline void rl_outq_append_tail(struct rl_outq *q, const uint8_t *src, uint32_t n)
{
	rl_outq_copy_small(q->tail->data + (RL_CHUNK_CAP - q->tail_free), src, n);
	rl_outq_commit(q, n);
}
/* Queues <lead> bytes before <m>'s frame and the frame (a WebSocket member:
 * lead = rl_msg_ws_lead(m) of a sealed message; plain: 0), as one unit:
 * copied when small, else referenced (takes a ref). 0 or -ENOMEM. */
int rl_outq_push_framed(struct rl_outq *q, struct rl_segpool *p, struct rl_msg *m, uint32_t lead);
/* Queues <m>'s frame alone. */
static inline int rl_outq_push_msg(struct rl_outq *q, struct rl_segpool *p, struct rl_msg *m)
{
	return rl_outq_push_framed(q, p, m, 0);
}
/* Writes as much as <c>'s transport takes: at most <max_calls> calls of
 * <writev>(<c>, ...), each with up to RL_OUTQ_IOV_MAX iovecs; one indirect
 * call per batch, never per frame. The queue never looks inside <c>.
 * *<sent> += bytes written. Returns 0 when the queue is empty, -EAGAIN when
 * the transport is full (a short write or -EAGAIN), 1 when the call budget
 * ran out with bytes left, -errno when <writev> failed otherwise. */
int rl_outq_flush(struct rl_outq *q, struct rl_segpool *p, rl_tp_writev_fn *writev,
		  struct rl_conn *c, int max_calls, size_t *sent);
/* Drops every queued byte that is not part of a frame already partly
 * written, so a frame queued next follows at once on the wire (a slow
 * consumer's final ERROR). The queue holds Relay frames. Returns the bytes
 * dropped. */
size_t rl_outq_drop_unsent(struct rl_outq *q, struct rl_segpool *p);
/* Size of the queued frame whose (whole) header starts at <h>. */
typedef uint64_t rl_outq_frame_size_fn(const uint8_t *h);
/* rl_outq_drop_unsent for a queue of other frames (<size>: WebSocket
 * frames, rl_wsf_server_frame_size). Every unit queued into a chunk must be
 * whole frames of that kind. */
size_t rl_outq_drop_unsent_framed(struct rl_outq *q, struct rl_segpool *p,
				  rl_outq_frame_size_fn *size);
/* Drops everything queued. */
void rl_outq_clear(struct rl_outq *q, struct rl_segpool *p);

#endif
