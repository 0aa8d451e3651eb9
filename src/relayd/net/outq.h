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
