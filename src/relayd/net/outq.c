/* outq.c -- chunked outbound queue, batched writes through the
 * connection's transport. Threading: owner worker. */
#include "net/outq.h"

#include <errno.h>
#include <relay/protocol.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define POOL_MAX_CHUNKS 1024 /* x 4 KiB: what a 1000-member fan-out turn needs */
#define POOL_MAX_REFS 4096

_Static_assert(RL_OUTQ_IOV_MAX <= IOV_MAX, "writev refuses more than IOV_MAX iovecs");
_Static_assert(sizeof(struct rl_oseg) == 32, "lead fills padding: RL_CHUNK_CAP is unchanged");

static struct rl_oseg *seg_chunk(struct rl_segpool *p)
{
	struct rl_oseg *s = p->chunks;
	if (s) {
		p->chunks = s->next;
		p->nchunks--;
	} else if (!(s = malloc(RL_CHUNK_BYTES))) {
		return NULL;
	}
	s->next = NULL;
	s->msg = NULL;
	s->start = s->end = 0;
	s->cap = RL_CHUNK_CAP;
	s->lead = 0;
	return s;
}

static struct rl_oseg *seg_ref(struct rl_segpool *p)
{
	struct rl_oseg *s = p->refs;
	if (s) {
		p->refs = s->next;
		p->nrefs--;
	} else if (!(s = malloc(sizeof(*s)))) {
		return NULL;
	}
	s->next = NULL;
	s->cap = 0;
	return s;
}

static void seg_free(struct rl_segpool *p, struct rl_oseg *s)
{
	if (s->msg) {
		rl_msg_put(s->msg);
		if (p->nrefs < POOL_MAX_REFS) {
			s->next = p->refs;
			p->refs = s;
			p->nrefs++;
			return;
		}
	} else if (p->nchunks < POOL_MAX_CHUNKS) {
		s->next = p->chunks;
		p->chunks = s;
		p->nchunks++;
		return;
	}
	free(s);
}

void rl_segpool_trim(struct rl_segpool *p)
{
	for (struct rl_oseg *s = p->chunks, *n; s; s = n) {
		n = s->next;
		free(s);
	}
	for (struct rl_oseg *s = p->refs, *n; s; s = n) {
		n = s->next;
		free(s);
	}
	p->chunks = p->refs = NULL;
	p->nchunks = p->nrefs = 0;
}

void rl_segpool_fini(struct rl_segpool *p)
{
	rl_segpool_trim(p);
}

/* Writes the tail chunk's fill level back into its header. */
static void outq_sync(struct rl_outq *q)
{
	if (q->tail && !q->tail->msg)
		q->tail->end = RL_CHUNK_CAP - q->tail_free;
}

static void outq_link(struct rl_outq *q, struct rl_oseg *s)
{
	outq_sync(q);
	if (q->tail)
		q->tail->next = s;
	else
		q->head = s;
	q->tail = s;
	q->tail_free = s->msg ? 0 : RL_CHUNK_CAP - s->end;
}

uint8_t *rl_outq_reserve_slow(struct rl_outq *q, struct rl_segpool *p, size_t n)
{
	struct rl_oseg *t = seg_chunk(p);
	(void)n;
	if (!t)
		return NULL;
	outq_link(q, t);
	return t->data;
}

int rl_outq_push_framed(struct rl_outq *q, struct rl_segpool *p, struct rl_msg *m, uint32_t lead)
{
	uint32_t n = m->len + lead;
	if (n <= RL_COPY_MAX) {
		uint8_t *d = rl_outq_reserve(q, p, n);
		if (!d)
			return -ENOMEM;
		rl_outq_copy_small(d, m->data - lead, n);
		rl_outq_commit(q, n);
		return 0;
	}
	struct rl_oseg *s = seg_ref(p);
	if (!s)
		return -ENOMEM;
	rl_msg_get(m);
	s->msg = m;
	s->lead = lead;
	s->start = 0;
	s->end = n;
	outq_link(q, s);
	q->bytes += n;
	return 0;
}

static const uint8_t *seg_bytes(const struct rl_oseg *s)
{
	return s->msg ? s->msg->data - s->lead : s->data;
}

/* Drops <n> sent bytes from the head. */
static void outq_consume(struct rl_outq *q, struct rl_segpool *p, size_t n)
{
	q->bytes -= n;
	while (n) {
		struct rl_oseg *s = q->head;
		size_t have = s->end - s->start;
		if (n < have) {
			s->start += (uint32_t)n;
			return;
		}
		n -= have;
		q->head = s->next;
		if (!q->head) {
			q->tail = NULL;
			q->tail_free = 0;
		}
		seg_free(p, s);
	}
}

/* Points up to <max> iovecs at the unsent bytes, head first; returns how
 * many and their total in *<want>. */
static int outq_iov(const struct rl_outq *q, struct iovec *iov, int max, size_t *want)
{
	int n = 0;
	*want = 0;
	for (struct rl_oseg *s = q->head; s && n < max; s = s->next) {
		if (s->end == s->start)
			continue;
		iov[n].iov_base = (void *)(seg_bytes(s) + s->start);
		iov[n].iov_len = s->end - s->start;
		*want += iov[n].iov_len;
		n++;
	}
	return n;
}

int rl_outq_flush(struct rl_outq *q, struct rl_segpool *p, rl_tp_writev_fn *writev,
		  struct rl_conn *c, int max_calls, size_t *sent)
{
	struct iovec iov[RL_OUTQ_IOV_MAX];

	outq_sync(q);
	for (int call = 0; call < max_calls; call++) {
		size_t want;
		int n = outq_iov(q, iov, RL_OUTQ_IOV_MAX, &want);
		if (n == 0) {
			rl_outq_clear(q, p); /* only empty segments left */
			return 0;
		}
		ssize_t w = writev(c, iov, n);
		if (w < 0)
			return (int)w;
		*sent += (size_t)w;
		outq_consume(q, p, (size_t)w);
		if ((size_t)w < want)
			return -EAGAIN;
		if (!q->head)
			return 0;
	}
	return 1;
}

static uint64_t relay_frame_size(const uint8_t *h)
{
	return RELAY_FRAME_LEN_BYTES + relay_frame_length(h);
}

/* End of the frame in chunk <s> that contains byte <s->start>, or
 * <s->start> itself when it sits on a frame boundary. Frames never span
 * chunks and a chunk starts with a frame. */
static uint32_t chunk_cut(const struct rl_oseg *s, rl_outq_frame_size_fn *size)
{
	uint32_t o = 0;
	while (o < s->start)
		o += (uint32_t)size(s->data + o);
	return o;
}

size_t rl_outq_drop_unsent(struct rl_outq *q, struct rl_segpool *p)
{
	return rl_outq_drop_unsent_framed(q, p, relay_frame_size);
}

size_t rl_outq_drop_unsent_framed(struct rl_outq *q, struct rl_segpool *p,
				  rl_outq_frame_size_fn *size)
{
	struct rl_oseg *h = q->head;
	size_t before = q->bytes;

	if (!h)
		return 0;
	outq_sync(q);
	struct rl_oseg *rest = h->next;
	if (h->start == 0) {
		rest = h; /* nothing of it written: drop it too */
		q->head = q->tail = NULL;
		q->bytes = 0;
		q->tail_free = 0;
	} else {
		if (!h->msg)
			h->end = chunk_cut(h, size);
		h->next = NULL;
		q->tail = h;
		q->bytes = h->end - h->start;
		q->tail_free = h->msg ? 0 : RL_CHUNK_CAP - h->end;
	}
	for (struct rl_oseg *s = rest, *n; s; s = n) {
		n = s->next;
		seg_free(p, s);
	}
	return before - q->bytes;
}

void rl_outq_clear(struct rl_outq *q, struct rl_segpool *p)
{
	for (struct rl_oseg *s = q->head, *n; s; s = n) {
		n = s->next;
		seg_free(p, s);
	}
	q->head = q->tail = NULL;
	q->bytes = 0;
	q->tail_free = 0;
}
