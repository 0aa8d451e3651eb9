/* test_decoder_capacity.c -- relay_decoder_capacity (src/protocol/decoder.c):
 * what a decoder holds in memory, for servers that account for it.
 * Threading: single-threaded. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

Test(decoder, capacity_is_what_the_tail_holds_and_nothing_when_idle)
{
	struct relay_decoder d;
	struct relay_frame f;
	enum { LEN = 100000 };
	uint8_t *frame = malloc(RELAY_FRAME_HDR_BYTES + LEN);

	cr_assert_not_null(frame);
	memset(frame + RELAY_FRAME_HDR_BYTES, 'x', LEN);
	relay_frame_encode(frame, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY,
			   frame + RELAY_FRAME_HDR_BYTES, LEN);
	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	cr_assert_eq(relay_decoder_capacity(&d), 0, "an idle decoder holds nothing");

	relay_decoder_feed(&d, frame, 5000);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	size_t cap = relay_decoder_capacity(&d);
	cr_assert_geq(cap, 5000, "capacity %zu below the 5000 bytes held", cap);
	cr_assert_leq(cap, 2 * 5000, "capacity %zu: more than twice what arrived", cap);

	relay_decoder_feed(&d, frame + 5000, RELAY_FRAME_HDR_BYTES + LEN - 5000);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME);
	cr_assert_geq(relay_decoder_capacity(&d), RELAY_FRAME_HDR_BYTES + LEN,
		      "the frame being returned is still held");
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	cr_assert_eq(relay_decoder_capacity(&d), 0, "released once the frame was consumed");

	relay_decoder_free(&d);
	free(frame);
	RL_ASSERT_NO_LEAKS();
}
