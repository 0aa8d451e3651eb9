/* test_decoder_nomem.c -- the decoder (decoder.c) when its tail cannot be
 * allocated: a distinct, sticky RELAY_DECODE_NOMEM, never an abort, nothing
 * leaked. decoder.c is compiled into this executable with
 * -DRELAY_DEC_REALLOC=nomem_realloc (see meson.build), so the test decides
 * which allocation fails; the installed library is untouched.
 * Threading: single-threaded tests. */
#include "unit.h"

#include <stdlib.h>

TestSuite(decoder_nomem, .timeout = 30);

void *nomem_realloc(void *p, size_t n);

static int allow = -1; /* allocations that may still succeed; -1 = all */
static int failed;     /* allocations refused so far */

void *nomem_realloc(void *p, size_t n)
{
	if (allow == 0) {
		failed++;
		return NULL;
	}
	if (allow > 0)
		allow--;
	return realloc(p, n);
}

/* A frame of <len> payload bytes in <out> (7 + len bytes). */
static void frame(uint8_t *out, uint32_t len)
{
	uint8_t payload[4096];
	memset(payload, 'x', sizeof payload);
	cr_assert_leq(len, sizeof payload);
	relay_frame_encode(out, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, payload, len);
}

Test(decoder_nomem, tail_allocation_failure_is_nomem_not_abort)
{
	uint8_t buf[64];
	struct relay_decoder d;
	struct relay_frame f;
	frame(buf, 40);
	allow = 0;
	failed = 0;
	relay_decoder_init(&d, 0);
	relay_decoder_feed(&d, buf, 20); /* half a frame: must go to the tail */
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NOMEM);
	cr_assert_eq(failed, 1);
	cr_assert_eq(d.err, RELAY_ERR_NONE, "not a protocol error: the peer broke no rule");
	cr_assert_eq(relay_decoder_pending(&d), 0);
	relay_decoder_free(&d);
	allow = -1;
	RL_ASSERT_NO_LEAKS();
}

Test(decoder_nomem, nomem_is_sticky_like_an_error)
{
	uint8_t buf[64];
	struct relay_decoder d;
	struct relay_frame f;
	frame(buf, 40);
	allow = 0;
	relay_decoder_init(&d, 0);
	relay_decoder_feed(&d, buf, 20);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NOMEM);
	allow = -1;
	/* The frame's first bytes are lost: the stream cannot resume. */
	relay_decoder_feed(&d, buf + 20, sizeof buf - 20);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NOMEM);
	relay_decoder_feed(&d, buf, 47);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NOMEM);
	relay_decoder_free(&d);
	/* Freed, it may be initialised again and works. */
	relay_decoder_init(&d, 0);
	relay_decoder_feed(&d, buf, 47);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME);
	cr_assert_eq(f.len, 40);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	relay_decoder_free(&d);
	RL_ASSERT_NO_LEAKS();
}

/* The tail grows by doubling as bytes arrive: a failure while growing it
 * frees what it held (nothing leaks) and reports NOMEM. */
Test(decoder_nomem, failure_while_growing_frees_the_tail)
{
	static uint8_t buf[7 + 4000];
	struct relay_decoder d;
	struct relay_frame f;
	frame(buf, 4000);
	allow = 1; /* the first tail allocation (256 bytes) only */
	failed = 0;
	relay_decoder_init(&d, 0);
	relay_decoder_feed(&d, buf, 100);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	cr_assert_eq(relay_decoder_pending(&d), 100);
	relay_decoder_feed(&d, buf + 100, 1000);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NOMEM);
	cr_assert_eq(failed, 1);
	cr_assert_eq(relay_decoder_pending(&d), 0);
	relay_decoder_free(&d);
	allow = -1;
	RL_ASSERT_NO_LEAKS();
}

/* The length field (4 bytes) split over feeds is also kept in the tail. */
Test(decoder_nomem, split_length_field_allocation_failure)
{
	uint8_t buf[16];
	struct relay_decoder d;
	struct relay_frame f;
	frame(buf, 5);
	allow = 0;
	relay_decoder_init(&d, 0);
	relay_decoder_feed(&d, buf, 2);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NOMEM);
	relay_decoder_free(&d);
	allow = -1;
	RL_ASSERT_NO_LEAKS();
}

/* Frames that lie whole inside a feed need no allocation at all. */
Test(decoder_nomem, whole_frames_need_no_allocation)
{
	uint8_t buf[2 * 47];
	struct relay_decoder d;
	struct relay_frame f;
	frame(buf, 40);
	frame(buf + 47, 40);
	allow = 0;
	failed = 0;
	relay_decoder_init(&d, 0);
	relay_decoder_feed(&d, buf, sizeof buf);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	cr_assert_eq(failed, 0);
	relay_decoder_free(&d);
	allow = -1;
}
