/* msg.h -- a reference-counted outgoing frame, encoded once per message and
 * shared by every recipient and every worker it is queued to. It carries
 * one embedded inbox item per worker, so fanning out to K other workers
 * costs no allocation beyond the message itself.
 *
 * Two encodings, one buffer: the Relay frame at <data>, and in front of it
 * the header of the one WebSocket binary message that carries it (written
 * by rl_msg_seal into RL_MSG_HEADROOM bytes reserved before <data>). Plain
 * members queue <data>/<len>; WebSocket members queue the same bytes from
 * rl_msg_ws_lead() earlier, so nobody re-encodes per member.
 * Threading: created by one worker; the refcount is atomic and the bytes are
 * immutable once published, so any thread may read and put it. */
#ifndef RL_MSG_H
#define RL_MSG_H

#include "loop/inbox.h"
#include "net/wsframe.h"

#include <stddef.h>
#include <stdint.h>

struct rl_room;
struct rl_msg;

struct rl_msg_item {
	struct rl_inbox_item ib; /* kind RL_INBOX_FANOUT */
	struct rl_msg *msg;
};

struct rl_msg {
	uint32_t refs;         /* atomic */
	uint32_t len;          /* frame bytes at <data> */
	uint64_t seq;          /* rl_room_seq at publish: later joiners skip it */
	uint64_t t_read_ns;    /* MESSAGE: when its frame was read (0: not timed) */
	struct rl_room *room;  /* set (with a room reference) once queued to another worker */
	uint8_t *data;	       /* the whole frame: 7-byte header + payload; sealed:
				  its WebSocket header right before it */
	/* Rooms with history (relay/history.h) deliver through every worker's
	 * inbox, the publisher's own included: */
	const void *skip;      /* the member not to deliver to (the sender), or NULL */
	uint32_t pending;      /* inbox items not yet handled (0: not counted) */
	struct rl_msg_item items[]; /* <nitems> of them, then the frame bytes */
};

#define RL_MSG_HEADROOM RL_WSF_SERVER_HDR_MAX /* bytes before <data> */

/* A message of <frame_len> bytes with room for <nitems> inbox items; one
 * reference, owned by the caller. NULL on ENOMEM. */
struct rl_msg *rl_msg_new(size_t frame_len, unsigned nitems);
/* <m>'s frame is complete (<len> final): writes the WebSocket header of
 * its binary message in front of <data>. Once per message, by its creator,
 * before it is shared (rl_fanout_publish, or queued): after that the bytes
 * never change, so any worker may read both encodings. */
void rl_msg_seal(struct rl_msg *m);
/* WebSocket header bytes before <data> of a sealed <m>: a WebSocket member
 * queues rl_msg_ws_lead(m) + m->len bytes from m->data - rl_msg_ws_lead(m). */
static inline uint32_t rl_msg_ws_lead(const struct rl_msg *m)
{
	return (uint32_t)rl_wsf_binary_hdr_len(m->len);
}
void rl_msg_get(struct rl_msg *m);
/* The last put calls the release hook (if one is installed), then frees
 * the message. */
void rl_msg_put(struct rl_msg *m);

/* Runs on the thread that drops a message's last reference, just before it
 * is freed: the layer that publishes messages releases what it attached
 * (relay/fanout.c: the room reference, the fan-out latency sample defined
 * in ops/metrics.h). */
typedef void rl_msg_release_fn(struct rl_msg *m);
/* Installs <fn> (NULL: none). Main thread, once, before any worker starts. */
void rl_msg_set_release(rl_msg_release_fn *fn);

#endif
