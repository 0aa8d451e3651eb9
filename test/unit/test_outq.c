/* test_outq.c -- the connection output queue (src/relayd/net/outq.c): what
 * a transport's writev sees, partial writes, copy vs reference, chunk
 * boundaries, the iovec bound, dropping unsent frames, clearing.
 * Threading: single-threaded; the queue never looks inside the connection
 * it passes to writev, so a fake "connection" here is a byte sink. */
#include "unit.h"

#include "net/outq.h"

#include <errno.h>
#include <stdlib.h>

/* The stand-in connection: takes at most <step> bytes per call (0: no
 * limit) and <room> bytes in all before it reports full; records calls. */
struct rl_conn {
	uint8_t *buf;
	size_t len, cap;
	size_t step;
	size_t room;
	int fail; /* errno to return instead of writing, or 0 */
	int calls;
	int max_iovcnt;
};

static ssize_t sink_writev(struct rl_conn *c, const struct iovec *iov, int iovcnt)
{
	size_t take = c->room;
	c->calls++;
	if (iovcnt > c->max_iovcnt)
		c->max_iovcnt = iovcnt;
	if (c->fail)
		return -c->fail;
	if (c->step && c->step < take)
		take = c->step;
	if (take == 0)
		return -EAGAIN;
	size_t done = 0;
	for (int i = 0; i < iovcnt && done < take; i++) {
		size_t n = iov[i].iov_len < take - done ? iov[i].iov_len : take - done;
		if (c->len + n > c->cap) {
			c->cap = (c->len + n) * 2;
			c->buf = realloc(c->buf, c->cap);
			cr_assert(c->buf);
		}
		memcpy(c->buf + c->len, iov[i].iov_base, n);
		c->len += n;
		done += n;
	}
	c->room -= done;
	return (ssize_t)done;
}

/* What the queue should put on the wire: every pushed frame, in order. */
struct expect {
	uint8_t *buf;
	size_t len, cap;
};

static void expect_add(struct expect *e, const uint8_t *p, size_t n)
{
	if (e->len + n > e->cap) {
		e->cap = (e->len + n) * 2;
		e->buf = realloc(e->buf, e->cap);
		cr_assert(e->buf);
	}
	memcpy(e->buf + e->len, p, n);
	e->len += n;
}

/* A message holding one MESSAGE frame of <total> bytes (>= 7), its payload
 * a pattern derived from <seed> so misplaced bytes show. */
static struct rl_msg *frame_new(size_t total, unsigned seed)
{
	struct rl_msg *m = rl_msg_new(total, 0);
	cr_assert(m);
	uint8_t *payload = malloc(total);
	cr_assert(payload);
	for (size_t i = 0; i < total; i++)
		payload[i] = (uint8_t)(seed * 31u + i);
	relay_frame_encode(m->data, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, payload,
			   (uint32_t)(total - RELAY_FRAME_HDR_BYTES));
	free(payload);
	return m;
}

/* Queues a fresh frame of <total> bytes and records it in <e>; the queue's
 * reference (if any) is the only one left. */
static void push(struct rl_outq *q, struct rl_segpool *p, struct expect *e, size_t total,
		 unsigned seed)
{
	struct rl_msg *m = frame_new(total, seed);
	cr_assert_eq(rl_outq_push_msg(q, p, m), 0);
	expect_add(e, m->data, m->len);
	rl_msg_put(m);
}

static uint32_t refs(struct rl_msg *m)
{
	return __atomic_load_n(&m->refs, __ATOMIC_RELAXED);
}

/* Flushes until the queue is empty, however little the sink takes per call. */
static size_t flush_all(struct rl_outq *q, struct rl_segpool *p, struct rl_conn *c)
{
	size_t sent = 0;
	for (int guard = 0; guard < 1000000; guard++) {
		size_t before = sent;
		int rc = rl_outq_flush(q, p, sink_writev, c, 4, &sent);
		cr_assert(rc == 0 || rc == 1 || rc == -EAGAIN, "flush: %d", rc);
		if (rc == 0)
			return sent;
		cr_assert_gt(sent, before, "flush made no progress");
		c->room = SIZE_MAX; /* a full sink empties between turns */
	}
	cr_assert_fail("flush never finished");
	return sent;
}

static void sink_matches(const struct rl_conn *c, const struct expect *e)
{
	cr_assert_eq(c->len, e->len, "wire has %zu bytes, want %zu", c->len, e->len);
	cr_assert(memcmp(c->buf, e->buf, e->len) == 0, "wire bytes differ from the frames queued");
}

static void teardown_all(struct rl_outq *q, struct rl_segpool *p, struct rl_conn *c,
			 struct expect *e)
{
	rl_outq_clear(q, p);
	rl_segpool_fini(p);
	free(c->buf);
	free(e->buf);
	RL_ASSERT_NO_LEAKS();
}

/* A mix of copied and referenced frames, written N bytes per call for N
 * that cut inside headers, inside payloads and inside iovecs (a chunk of
 * many frames is one iovec), arrives byte for byte in order. */
Test(outq, partial_writes_of_any_size_deliver_every_byte_in_order)
{
	static const size_t steps[] = {1, 3, 7, 100, 1000, 1025, 4095, 5000};
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		struct rl_outq q = {0};
		struct rl_segpool p = {0};
		struct expect e = {0};
		struct rl_conn c = {.step = steps[k], .room = SIZE_MAX};
		for (unsigned i = 0; i < 40; i++)
			push(&q, &p, &e, i % 5 == 4 ? RL_COPY_MAX + 1 + i * 37 : 7 + i * 11, i);
		cr_assert_eq(q.bytes, e.len);
		size_t sent = flush_all(&q, &p, &c);
		cr_assert_eq(sent, e.len, "step %zu", steps[k]);
		cr_assert_eq(q.bytes, 0);
		cr_assert_null(q.head);
		sink_matches(&c, &e);
		teardown_all(&q, &p, &c, &e);
	}
}

/* Each partial write lowers the queued count by exactly what was taken, and
 * the next write resumes at the first byte not taken. */
Test(outq, a_short_write_resumes_at_the_first_byte_not_taken)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct expect e = {0};
	struct rl_conn c = {.room = 10};
	size_t sent = 0;

	push(&q, &p, &e, 50, 1);		/* copied */
	push(&q, &p, &e, RL_COPY_MAX + 100, 2); /* referenced: a second iovec */
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), -EAGAIN);
	cr_assert_eq(sent, 10);
	cr_assert_eq(q.bytes, e.len - 10);
	c.room = 60; /* ends 20 bytes into the referenced frame */
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), -EAGAIN);
	cr_assert_eq(sent, 70);
	cr_assert_eq(q.bytes, e.len - 70);
	cr_assert_not_null(q.head->msg, "the finished chunk left the queue");
	c.room = SIZE_MAX;
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), 0);
	cr_assert_eq(sent, e.len);
	sink_matches(&c, &e);
	teardown_all(&q, &p, &c, &e);
}

/* A short write means the transport is full: the flush stops there rather
 * than spend a call on an -EAGAIN, and the connection waits for EPOLLOUT. */
Test(outq, a_short_write_ends_the_flush_without_another_call)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct expect e = {0};
	struct rl_conn c = {.step = 10, .room = SIZE_MAX};
	size_t sent = 0;

	push(&q, &p, &e, 100, 1);
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), -EAGAIN);
	cr_assert_eq(c.calls, 1);
	cr_assert_eq(sent, 10);
	teardown_all(&q, &p, &c, &e);
}

Test(outq, a_frame_of_exactly_copy_max_bytes_is_copied)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct rl_msg *m = frame_new(RL_COPY_MAX, 7);

	cr_assert_eq(rl_outq_push_msg(&q, &p, m), 0);
	cr_assert_eq(refs(m), 1, "a copied frame must not hold a reference");
	cr_assert_null(q.tail->msg);
	cr_assert(memcmp(q.tail->data, m->data, RL_COPY_MAX) == 0);
	cr_assert_eq(q.bytes, RL_COPY_MAX);
	rl_msg_put(m);
	rl_outq_clear(&q, &p);
	rl_segpool_fini(&p);
	RL_ASSERT_NO_LEAKS();
}

Test(outq, a_frame_one_byte_over_copy_max_is_referenced_until_sent)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct rl_conn c = {.room = SIZE_MAX};
	struct rl_msg *m = frame_new(RL_COPY_MAX + 1, 8);
	size_t sent = 0;

	cr_assert_eq(rl_outq_push_msg(&q, &p, m), 0);
	cr_assert_eq(refs(m), 2, "the queue holds one reference");
	cr_assert_eq(q.tail->msg, m);
	cr_assert_eq(q.bytes, RL_COPY_MAX + 1);
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), 0);
	cr_assert_eq(refs(m), 1, "sent: the queue's reference is dropped");
	cr_assert_eq(c.len, RL_COPY_MAX + 1);
	cr_assert(memcmp(c.buf, m->data, c.len) == 0);
	rl_msg_put(m);
	rl_segpool_fini(&p);
	free(c.buf);
	RL_ASSERT_NO_LEAKS();
}

/* Walks chunk <s>'s frames by their length fields: they must end exactly
 * at the chunk's end (a frame never spans chunks). */
static unsigned chunk_frames(const struct rl_oseg *s)
{
	uint32_t o = 0;
	unsigned n = 0;
	while (o < s->end) {
		o += RELAY_FRAME_LEN_BYTES + relay_frame_length(s->data + o);
		n++;
	}
	cr_assert_eq(o, s->end, "a frame runs past its chunk");
	return n;
}

Test(outq, many_small_frames_fill_chunks_without_splitting_a_frame)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct expect e = {0};
	struct rl_conn c = {.step = 3000, .room = SIZE_MAX};
	uint64_t seed = 42;
	const unsigned nframes = 2000;

	for (unsigned i = 0; i < nframes; i++)
		push(&q, &p, &e, 7 + rl_test_rand(&seed) % 300, i);
	unsigned chunks = 0, frames = 0;
	size_t sent = 0;
	/* A flush with no room syncs the tail and writes nothing. */
	struct rl_conn full = {.room = 0};
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &full, 4, &sent), -EAGAIN);
	for (const struct rl_oseg *s = q.head; s; s = s->next) {
		cr_assert_null(s->msg);
		cr_assert_leq(s->end, RL_CHUNK_CAP);
		frames += chunk_frames(s);
		chunks++;
	}
	cr_assert_eq(frames, nframes);
	cr_assert_gt(chunks, 10, "expected many chunks, got %u", chunks);
	cr_assert_eq(flush_all(&q, &p, &c), e.len);
	sink_matches(&c, &e);
	teardown_all(&q, &p, &c, &e);
}

/* More segments than IOV_MAX: one call never passes more than
 * RL_OUTQ_IOV_MAX iovecs (writev would fail with EINVAL), and a flush that
 * runs out of calls says so with 1. */
Test(outq, one_write_passes_at_most_iov_max_segments)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct expect e = {0};
	struct rl_conn c = {.room = SIZE_MAX};
	const unsigned nseg = RL_OUTQ_IOV_MAX + 500;
	const size_t fsize = RL_COPY_MAX + 1; /* referenced: one segment each */
	size_t sent = 0;

	for (unsigned i = 0; i < nseg; i++)
		push(&q, &p, &e, fsize, i);
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 1, &sent), 1);
	cr_assert_eq(c.calls, 1);
	cr_assert_eq(c.max_iovcnt, RL_OUTQ_IOV_MAX);
	cr_assert_eq(sent, RL_OUTQ_IOV_MAX * fsize);
	cr_assert_eq(q.bytes, (nseg - RL_OUTQ_IOV_MAX) * fsize);
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), 0);
	cr_assert_eq(c.calls, 2);
	cr_assert_eq(c.max_iovcnt, RL_OUTQ_IOV_MAX);
	sink_matches(&c, &e);
	teardown_all(&q, &p, &c, &e);
}

Test(outq, a_transport_error_is_returned_and_nothing_is_consumed)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct expect e = {0};
	struct rl_conn c = {.room = SIZE_MAX, .fail = EPIPE};
	size_t sent = 0;

	push(&q, &p, &e, 100, 1);
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), -EPIPE);
	cr_assert_eq(sent, 0);
	cr_assert_eq(q.bytes, e.len);
	c.fail = EAGAIN;
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), -EAGAIN);
	cr_assert_eq(q.bytes, e.len);
	teardown_all(&q, &p, &c, &e);
}

/* Frames A B C copied, D referenced; the sink took A and part of B. */
static void drop_setup(struct rl_outq *q, struct rl_segpool *p, struct expect *e, struct rl_conn *c,
		       size_t *a_b)
{
	size_t sent = 0;
	push(q, p, e, 100, 1);
	push(q, p, e, 120, 2);
	*a_b = e->len;
	push(q, p, e, 140, 3);
	push(q, p, e, RL_COPY_MAX + 10, 4);
	c->room = 150; /* 50 bytes into B */
	cr_assert_eq(rl_outq_flush(q, p, sink_writev, c, 4, &sent), -EAGAIN);
	cr_assert_eq(sent, 150);
}

Test(outq, drop_unsent_mid_frame_keeps_exactly_the_partly_written_frame)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct expect e = {0};
	struct rl_conn c = {0};
	size_t a_b;

	drop_setup(&q, &p, &e, &c, &a_b);
	size_t queued = q.bytes;
	size_t dropped = rl_outq_drop_unsent(&q, &p);
	cr_assert_eq(q.bytes, a_b - 150, "B's rest stays queued");
	cr_assert_eq(dropped, queued - (a_b - 150));
	/* The next frame follows B at once on the wire. */
	struct expect after = {0};
	expect_add(&after, e.buf, a_b);
	push(&q, &p, &after, 30, 9);
	c.room = SIZE_MAX;
	flush_all(&q, &p, &c);
	sink_matches(&c, &after);
	free(after.buf);
	teardown_all(&q, &p, &c, &e);
}

Test(outq, drop_unsent_mid_referenced_frame_keeps_it_and_releases_the_rest)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct rl_conn c = {.room = 10};
	struct rl_msg *big = frame_new(RL_COPY_MAX + 50, 1);
	struct rl_msg *next = frame_new(RL_COPY_MAX + 60, 2);
	size_t sent = 0;

	cr_assert_eq(rl_outq_push_msg(&q, &p, big), 0);
	cr_assert_eq(rl_outq_push_msg(&q, &p, next), 0);
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), -EAGAIN);
	rl_outq_drop_unsent(&q, &p);
	cr_assert_eq(q.bytes, big->len - 10);
	cr_assert_eq(refs(big), 2, "the frame on the wire keeps its reference");
	cr_assert_eq(refs(next), 1, "the unsent frame's reference is released");
	c.room = SIZE_MAX;
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), 0);
	cr_assert_eq(c.len, big->len);
	cr_assert(memcmp(c.buf, big->data, big->len) == 0);
	rl_msg_put(big);
	rl_msg_put(next);
	rl_segpool_fini(&p);
	free(c.buf);
	RL_ASSERT_NO_LEAKS();
}

Test(outq, drop_unsent_on_a_frame_boundary_drops_everything_queued)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct expect e = {0};
	struct rl_conn c = {.room = 100}; /* exactly frame A */
	size_t sent = 0;

	push(&q, &p, &e, 100, 1);
	push(&q, &p, &e, 120, 2);
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), -EAGAIN);
	cr_assert_eq(rl_outq_drop_unsent(&q, &p), 120);
	cr_assert_eq(q.bytes, 0);
	push(&q, &p, &e, 30, 3); /* the wire must read A then this one */
	c.room = SIZE_MAX;
	flush_all(&q, &p, &c);
	cr_assert_eq(c.len, 130);
	cr_assert(memcmp(c.buf, e.buf, 100) == 0);
	cr_assert(memcmp(c.buf + 100, e.buf + 220, 30) == 0);
	teardown_all(&q, &p, &c, &e);
}

Test(outq, drop_unsent_before_any_write_empties_the_queue)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct expect e = {0};
	struct rl_conn c = {0};

	push(&q, &p, &e, 100, 1);
	push(&q, &p, &e, RL_COPY_MAX + 1, 2);
	cr_assert_eq(rl_outq_drop_unsent(&q, &p), e.len);
	cr_assert_eq(q.bytes, 0);
	cr_assert_null(q.head);
	teardown_all(&q, &p, &c, &e);
}

/* Closing a connection clears its queue: every frame reference goes back
 * (the messages below are held by the queue alone, so a missed put is a
 * leak) and every chunk returns to the pool. */
Test(outq, clear_releases_every_reference_and_chunk)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct rl_msg *watch = frame_new(RL_COPY_MAX + 5, 99);
	struct expect e = {0};
	struct rl_conn c = {0};

	for (unsigned i = 0; i < 300; i++)
		push(&q, &p, &e, i % 3 ? 40 + i : RL_COPY_MAX + i, i);
	cr_assert_eq(rl_outq_push_msg(&q, &p, watch), 0);
	cr_assert_eq(refs(watch), 2);
	rl_outq_clear(&q, &p);
	cr_assert_eq(refs(watch), 1);
	cr_assert_null(q.head);
	cr_assert_null(q.tail);
	cr_assert_eq(q.bytes, 0);
	cr_assert_eq(q.tail_free, 0);
	cr_assert_gt(p.nchunks, 0, "chunks go back to the pool");
	cr_assert_gt(p.nrefs, 0, "reference segments go back to the pool");
	rl_msg_put(watch);
	teardown_all(&q, &p, &c, &e);
}

/* ---- the WebSocket encoding (net/msg.h: a sealed message) ---------------------- */

/* Queues a fresh sealed frame of <total> bytes as a WebSocket member does
 * (its header in front) and records header and frame in <e>. */
static void push_ws(struct rl_outq *q, struct rl_segpool *p, struct expect *e, size_t total,
		    unsigned seed)
{
	struct rl_msg *m = frame_new(total, seed);
	rl_msg_seal(m);
	uint32_t lead = rl_msg_ws_lead(m);
	cr_assert_eq(rl_outq_push_framed(q, p, m, lead), 0);
	expect_add(e, m->data - lead, lead + m->len);
	rl_msg_put(m);
}

Test(outq, a_sealed_message_carries_its_websocket_header_in_front)
{
	static const struct {
		size_t total;
		uint8_t hdr[4];
		size_t lead;
	} cases[] = {
	    {125, {0x82, 125}, 2},
	    {126, {0x82, 126, 0x00, 126}, 4},
	    {65535, {0x82, 126, 0xff, 0xff}, 4},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct rl_msg *m = frame_new(cases[i].total, 1);
		rl_msg_seal(m);
		cr_assert_eq(rl_msg_ws_lead(m), cases[i].lead);
		cr_assert(memcmp(m->data - cases[i].lead, cases[i].hdr, cases[i].lead) == 0,
			  "header for %zu bytes", cases[i].total);
		cr_assert_eq(m->data[0], (uint8_t)((cases[i].total - 4) >> 24), "frame untouched");
		rl_msg_put(m);
	}
	struct rl_msg *m = frame_new(65536, 2);
	rl_msg_seal(m);
	static const uint8_t h10[10] = {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0};
	cr_assert_eq(rl_msg_ws_lead(m), 10);
	cr_assert(memcmp(m->data - 10, h10, 10) == 0);
	rl_msg_put(m);
	RL_ASSERT_NO_LEAKS();
}

/* Copied and referenced, a WebSocket member's queue puts header + frame on
 * the wire for every message, whatever the write sizes. */
Test(outq, websocket_members_queue_header_and_frame_copied_or_referenced)
{
	static const size_t steps[] = {1, 3, 100, 1025, 5000};
	for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
		struct rl_outq q = {0};
		struct rl_segpool p = {0};
		struct expect e = {0};
		struct rl_conn c = {.step = steps[s], .room = SIZE_MAX};
		for (unsigned i = 0; i < 40; i++)
			push_ws(&q, &p, &e, i % 5 == 0 ? RL_COPY_MAX + 100 * i : 40 + 30 * i, i);
		push_ws(&q, &p, &e, 70000, 99); /* a 10-byte header, referenced */
		cr_assert_eq(q.bytes, e.len);
		flush_all(&q, &p, &c);
		sink_matches(&c, &e);
		teardown_all(&q, &p, &c, &e);
	}
}

/* The copy threshold counts the header: a frame whose header takes it over
 * RL_COPY_MAX is referenced, and its reference sends the header too. */
Test(outq, a_websocket_frame_over_copy_max_with_its_header_is_referenced)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct rl_conn c = {.room = SIZE_MAX};
	struct rl_msg *m = frame_new(RL_COPY_MAX - 1, 3);
	rl_msg_seal(m);
	uint32_t lead = rl_msg_ws_lead(m);
	cr_assert_eq(rl_outq_push_framed(&q, &p, m, lead), 0);
	cr_assert_eq(refs(m), 2, "referenced, not copied");
	cr_assert_eq(q.bytes, lead + m->len);
	size_t sent = 0;
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), 0);
	cr_assert_eq(c.len, lead + m->len);
	cr_assert(memcmp(c.buf, m->data - lead, lead + m->len) == 0);
	cr_assert_eq(refs(m), 1);
	rl_msg_put(m);
	rl_segpool_fini(&p);
	free(c.buf);
	RL_ASSERT_NO_LEAKS();
}

/* A slow WebSocket member: the cut falls after the WebSocket frame in
 * progress (its header counted), so what follows starts a new frame. */
Test(outq, drop_unsent_of_websocket_frames_keeps_the_frame_in_progress)
{
	struct rl_outq q = {0};
	struct rl_segpool p = {0};
	struct expect e = {0};
	struct rl_conn c = {0};
	size_t sent = 0;

	push_ws(&q, &p, &e, 100, 1); /* 102 bytes on the wire */
	push_ws(&q, &p, &e, 200, 2); /* 204: over 125 takes the 16-bit length form */
	size_t a_b = e.len;
	push_ws(&q, &p, &e, 140, 3);
	push_ws(&q, &p, &e, RL_COPY_MAX + 10, 4);
	c.room = 150; /* 48 bytes into the second frame */
	cr_assert_eq(rl_outq_flush(&q, &p, sink_writev, &c, 4, &sent), -EAGAIN);
	rl_outq_drop_unsent_framed(&q, &p, rl_wsf_server_frame_size);
	cr_assert_eq(q.bytes, a_b - 150, "the second frame's rest stays queued");
	struct expect after = {0};
	expect_add(&after, e.buf, a_b);
	push_ws(&q, &p, &after, 30, 9);
	c.room = SIZE_MAX;
	flush_all(&q, &p, &c);
	sink_matches(&c, &after);
	free(after.buf);
	teardown_all(&q, &p, &c, &e);
}
