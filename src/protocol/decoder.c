/* decoder.c -- incremental frame decoder: bytes in any chunking -> frames.
 * Frames that lie whole inside a feed are returned in place (no copy); only
 * the bytes of an incomplete frame at the end of a feed are copied into a tail
 * buffer that grows with the bytes that actually arrived (doubling, never past
 * the frame's size), so a peer that announces a large frame and then trickles
 * or stalls holds about what it sent, not max_frame.
 * Threading: a decoder belongs to its caller; no shared state.
 */
#include "relay/protocol.h"
#include "proto_internal.h"

#include <stdlib.h>
#include <string.h>

/* Largest max_frame we honour: 4 + length must fit the uint32 tail size. */
#define DEC_MAX_FRAME_LIMIT (UINT32_MAX - RELAY_FRAME_LEN_BYTES)
/* First tail allocation once a frame outgrows its length field. */
#define DEC_TAIL_MIN 256u

/* The tail's allocator. A test builds this file with
 * -DRELAY_DEC_REALLOC=<its own> to make allocations fail on demand
 * (test/unit/test_decoder_nomem.c); the library always uses realloc. */
#ifndef RELAY_DEC_REALLOC
#define RELAY_DEC_REALLOC realloc
#else
void *RELAY_DEC_REALLOC(void *p, size_t n);
#endif

void relay_decoder_init(struct relay_decoder *d, uint32_t max_frame)
{
	memset(d, 0, sizeof *d);
	if (max_frame == 0)
		max_frame = RELAY_DEFAULT_MAX_FRAME;
	if (max_frame > DEC_MAX_FRAME_LIMIT)
		max_frame = DEC_MAX_FRAME_LIMIT;
	d->max_frame = max_frame;
}

static void dec_tail_release(struct relay_decoder *d)
{
	free(d->_tail);
	d->_tail = NULL;
	d->_tail_len = 0;
	d->_tail_cap = 0;
}

void relay_decoder_free(struct relay_decoder *d)
{
	dec_tail_release(d);
	d->_in = NULL;
	d->_in_len = 0;
}

static uint32_t dec_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Size of the frame being assembled in the tail: 4 + length once the length
 * field is in (it was checked against max_frame then), else just the field. */
static uint32_t dec_tail_frame_size(const struct relay_decoder *d)
{
	if (d->_tail_len < RELAY_FRAME_LEN_BYTES)
		return RELAY_FRAME_LEN_BYTES;
	return RELAY_FRAME_LEN_BYTES + dec_be32(d->_tail);
}

/* A tail holding a whole frame has been returned by relay_decoder_next; its
 * payload stays valid until the next call, which releases it. */
static bool dec_tail_delivered(const struct relay_decoder *d)
{
	return d->_tail_len >= RELAY_FRAME_HDR_BYTES && d->_tail_len == dec_tail_frame_size(d);
}

void relay_decoder_feed(struct relay_decoder *d, const uint8_t *buf, size_t len)
{
	if (dec_tail_delivered(d))
		dec_tail_release(d);
	d->_in = buf;
	d->_in_len = len;
}

size_t relay_decoder_pending(const struct relay_decoder *d)
{
	return dec_tail_delivered(d) ? 0 : d->_tail_len;
}

size_t relay_decoder_capacity(const struct relay_decoder *d)
{
	return d->_tail ? d->_tail_cap : 0; /* no buffer: none held (also after NOMEM) */
}

size_t relay_decoder_rest(struct relay_decoder *d, const uint8_t **rest)
{
	size_t n = d->_in_len;
	*rest = n ? d->_in : NULL;
	d->_in = NULL;
	d->_in_len = 0;
	return n;
}

static enum relay_decode_status dec_fail(struct relay_decoder *d, enum relay_err err)
{
	d->err = err;
	dec_tail_release(d);
	d->_in = NULL;
	d->_in_len = 0;
	return RELAY_DECODE_ERROR;
}

/* After a failed tail allocation the decoder holds no tail and answers NOMEM
 * until freed. Marked by a capacity without a buffer, which no working
 * decoder has (a tail is released together with its capacity), so the
 * struct (public, embedded by callers) keeps its size and <err> stays free
 * for the spec's codes. */
#define DEC_NOMEM_CAP UINT32_MAX

static bool dec_is_nomem(const struct relay_decoder *d)
{
	return d->_tail == NULL && d->_tail_cap == DEC_NOMEM_CAP;
}

static enum relay_decode_status dec_nomem(struct relay_decoder *d)
{
	dec_tail_release(d);
	d->_tail_cap = DEC_NOMEM_CAP;
	d->_in = NULL;
	d->_in_len = 0;
	return RELAY_DECODE_NOMEM;
}

static void dec_fill(struct relay_frame *out, const uint8_t *f)
{
	out->version = f[4];
	out->type = f[5];
	out->flags = f[6];
	out->len = dec_be32(f) - RELAY_FRAME_MIN_LENGTH;
	out->payload = f + RELAY_FRAME_HDR_BYTES;
}

/* Makes room for <need> bytes in the tail: doubles (from DEC_TAIL_MIN) but
 * never allocates past <limit>, the size of the frame being assembled.
 * false when the allocation failed (the old tail is left as it was). */
static bool dec_tail_reserve(struct relay_decoder *d, uint32_t need, uint32_t limit)
{
	if (need <= d->_tail_cap)
		return true;
	uint64_t cap = d->_tail_cap ? (uint64_t)d->_tail_cap * 2 : DEC_TAIL_MIN;
	if (cap < need)
		cap = need;
	if (cap > limit)
		cap = limit;
	uint8_t *t = RELAY_DEC_REALLOC(d->_tail, (size_t)cap);
	if (t == NULL)
		return false;
	d->_tail = t;
	d->_tail_cap = (uint32_t)cap;
	return true;
}

/* Moves up to <want> bytes of the current feed into the tail, where the frame
 * being assembled is <frame_size> bytes long in all. false: out of memory. */
static bool dec_take(struct relay_decoder *d, size_t want, uint32_t frame_size)
{
	size_t n = want < d->_in_len ? want : d->_in_len;
	if (n == 0)
		return true;
	if (!dec_tail_reserve(d, d->_tail_len + (uint32_t)n, frame_size))
		return false;
	memcpy(d->_tail + d->_tail_len, d->_in, n);
	d->_tail_len += (uint32_t)n;
	d->_in += n;
	d->_in_len -= n;
	return true;
}

/* The header checks of one direction: a client's frames (relayd reads
 * them), or a server's when <from_server> (clients read them;
 * RELAY_FLAG_SEQ allowed on binary deliveries). */
static enum relay_err dec_check(bool from_server, const uint8_t *h)
{
	return from_server ? relay_check_header_from_server(h[4], h[5], h[6])
			   : relay_check_header(h[4], h[5], h[6]);
}

/* Continues the frame started in the tail with the current feed. */
static enum relay_decode_status dec_next_tail(struct relay_decoder *d, struct relay_frame *out,
					      bool from_server)
{
	enum relay_err err;

	if (d->_tail_len < RELAY_FRAME_LEN_BYTES) {
		if (!dec_take(d, RELAY_FRAME_LEN_BYTES - d->_tail_len, RELAY_FRAME_LEN_BYTES))
			return dec_nomem(d);
		if (d->_tail_len < RELAY_FRAME_LEN_BYTES)
			return RELAY_DECODE_NEED_MORE;
		err = relay_check_length(dec_be32(d->_tail), d->max_frame);
		if (err != RELAY_ERR_NONE)
			return dec_fail(d, err);
	}
	uint32_t size = dec_tail_frame_size(d);
	if (!dec_take(d, size - d->_tail_len, size))
		return dec_nomem(d);
	if (d->_tail_len >= RELAY_FRAME_HDR_BYTES) {
		err = dec_check(from_server, d->_tail);
		if (err != RELAY_ERR_NONE)
			return dec_fail(d, err);
	}
	if (d->_tail_len < size)
		return RELAY_DECODE_NEED_MORE;
	dec_fill(out, d->_tail);
	return RELAY_DECODE_FRAME;
}

/* Starts a frame at the front of the current feed (tail empty). */
static enum relay_decode_status dec_next_input(struct relay_decoder *d, struct relay_frame *out,
					       bool from_server)
{
	const uint8_t *in = d->_in;
	enum relay_err err;

	if (d->_in_len < RELAY_FRAME_LEN_BYTES)
		return dec_take(d, d->_in_len, RELAY_FRAME_LEN_BYTES) ? RELAY_DECODE_NEED_MORE
								      : dec_nomem(d);
	uint32_t length = dec_be32(in);
	err = relay_check_length(length, d->max_frame);
	if (err != RELAY_ERR_NONE)
		return dec_fail(d, err);
	if (d->_in_len >= RELAY_FRAME_HDR_BYTES) {
		err = dec_check(from_server, in);
		if (err != RELAY_ERR_NONE)
			return dec_fail(d, err);
	}
	size_t size = (size_t)RELAY_FRAME_LEN_BYTES + length;
	if (d->_in_len >= size) {
		dec_fill(out, in);
		d->_in += size;
		d->_in_len -= size;
		return RELAY_DECODE_FRAME;
	}
	return dec_take(d, d->_in_len, (uint32_t)size) ? RELAY_DECODE_NEED_MORE : dec_nomem(d);
}

static enum relay_decode_status dec_next(struct relay_decoder *d, struct relay_frame *out,
					 bool from_server)
{
	if (d->err != RELAY_ERR_NONE)
		return RELAY_DECODE_ERROR;
	if (dec_is_nomem(d))
		return RELAY_DECODE_NOMEM;
	if (dec_tail_delivered(d))
		dec_tail_release(d);
	if (d->_tail_len > 0)
		return dec_next_tail(d, out, from_server);
	if (d->_in_len == 0)
		return RELAY_DECODE_NEED_MORE;
	return dec_next_input(d, out, from_server);
}

enum relay_decode_status relay_decoder_next(struct relay_decoder *d, struct relay_frame *out)
{
	return dec_next(d, out, false);
}

enum relay_decode_status relay_decoder_next_from_server(struct relay_decoder *d,
							struct relay_frame *out)
{
	return dec_next(d, out, true);
}
