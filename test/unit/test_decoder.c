/* test_decoder.c -- the incremental frame decoder (decoder.c): round trips,
 * the spec's fatal conditions in their check order, and the same frames out
 * whatever the chunking of the input. Every test ends with a leak check when
 * built with ASan. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

/* A broken decoder may yield frames forever: fail, do not hang. */
TestSuite(decoder, .timeout = 60);

/* ---- a stream of frames and its expected decoding --------------------- */

#define MAX_FRAMES 16

struct want {
	uint8_t type, flags;
	const uint8_t *payload;
	uint32_t len;
};

struct stream {
	uint8_t *bytes;
	size_t len;
	struct want want[MAX_FRAMES];
	size_t nwant;
};

static void stream_add(struct stream *s, uint8_t type, uint8_t flags,
		       const void *payload, uint32_t len)
{
	cr_assert_lt(s->nwant, MAX_FRAMES);
	s->bytes = realloc(s->bytes, s->len + RELAY_FRAME_HDR_BYTES + len);
	cr_assert_not_null(s->bytes);
	relay_frame_encode(s->bytes + s->len, type, flags, payload, len);
	s->want[s->nwant++] = (struct want){type, flags, NULL, len};
	s->len += RELAY_FRAME_HDR_BYTES + len;
}

/* Points each want at its payload inside the stream (after all adds). */
static void stream_seal(struct stream *s)
{
	size_t off = 0;
	for (size_t i = 0; i < s->nwant; i++) {
		s->want[i].payload = s->bytes + off + RELAY_FRAME_HDR_BYTES;
		off += RELAY_FRAME_HDR_BYTES + s->want[i].len;
	}
}

static void stream_free(struct stream *s)
{
	free(s->bytes);
	memset(s, 0, sizeof *s);
}

/* Several frames of every kind: JSON and binary, an empty-payload HEARTBEAT,
 * and one payload of <big> bytes. The decoder has no fixed-size buffer; <big>
 * above 64 KiB also exceeds any socket read buffer a caller would use. */
static void stream_build(struct stream *s, uint32_t big)
{
	static const char hello[] = "{\"userId\":\"alice\",\"clientVersion\":\"1.0.0\"}";
	static const char join[] = "{\"room\":\"physics\"}";
	static const char msg[] = "{\"room\":\"physics\",\"content\":{\"t\":\"hi\"}}";
	static const char err[] = "{\"code\":\"NOT_IN_ROOM\",\"message\":\"x\",\"fatal\":false}";
	uint8_t *blob = malloc(big);

	cr_assert_not_null(blob);
	for (uint32_t i = 0; i < big; i++)
		blob[i] = (uint8_t)(i * 31 + (i >> 8));
	memset(s, 0, sizeof *s);
	stream_add(s, RELAY_MSG_HELLO, RELAY_FLAG_JSON, hello, sizeof hello - 1);
	stream_add(s, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
	stream_add(s, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, join, sizeof join - 1);
	stream_add(s, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, blob, big);
	stream_add(s, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, msg, sizeof msg - 1);
	stream_add(s, RELAY_MSG_LEAVE_ROOM, RELAY_FLAG_BINARY, "physics", 7);
	stream_add(s, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "p", 1);
	stream_add(s, RELAY_MSG_ERROR, RELAY_FLAG_JSON, err, sizeof err - 1);
	stream_add(s, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
	stream_seal(s);
	free(blob);
}

/* ---- feeding in chunks ------------------------------------------------ */

struct run {
	const struct stream *s;
	struct relay_decoder d;
	size_t got;       /* frames decoded so far */
	bool copy;        /* feed from a private copy, poisoned after NEED_MORE */
	char fail[256];   /* first mismatch; empty when all went well */
};

static void run_init(struct run *r, const struct stream *s, bool copy)
{
	memset(r, 0, sizeof *r);
	r->s = s;
	r->copy = copy;
	relay_decoder_init(&r->d, RELAY_DEFAULT_MAX_FRAME);
}

static void run_check(struct run *r, const struct relay_frame *f)
{
	if (r->fail[0])
		return;
	if (r->got >= r->s->nwant) {
		snprintf(r->fail, sizeof r->fail, "extra frame #%zu", r->got);
		return;
	}
	const struct want *w = &r->s->want[r->got];
	if (f->version != 1 || f->type != w->type || f->flags != w->flags || f->len != w->len ||
	    (w->len > 0 && memcmp(f->payload, w->payload, w->len) != 0))
		snprintf(r->fail, sizeof r->fail,
			 "frame #%zu: got type %u flags %u len %u, want type %u flags %u len %u",
			 r->got, f->type, f->flags, f->len, w->type, w->flags, w->len);
	r->got++;
}

/* Feeds one chunk and takes every frame it completes. Plain C checks, not
 * cr_assert, in the hot path: these run millions of times. */
static void run_feed(struct run *r, const uint8_t *p, size_t n)
{
	uint8_t *own = NULL;
	struct relay_frame f;
	enum relay_decode_status st = RELAY_DECODE_NEED_MORE;

	if (r->copy && n > 0) {
		own = malloc(n);
		memcpy(own, p, n);
		p = own;
	}
	relay_decoder_feed(&r->d, p, n);
	while (!r->fail[0] && (st = relay_decoder_next(&r->d, &f)) == RELAY_DECODE_FRAME)
		run_check(r, &f);
	if (st != RELAY_DECODE_NEED_MORE && !r->fail[0])
		snprintf(r->fail, sizeof r->fail, "status %d err %s", st, relay_err_name(r->d.err));
	if (own != NULL) {
		memset(own, 0xA5, n); /* the decoder must have copied what it keeps */
		free(own);
	}
}

static void run_finish(struct run *r, const char *what)
{
	if (!r->fail[0] && r->got != r->s->nwant)
		snprintf(r->fail, sizeof r->fail, "%zu frames, want %zu", r->got, r->s->nwant);
	if (!r->fail[0] && relay_decoder_pending(&r->d) != 0)
		snprintf(r->fail, sizeof r->fail, "%zu bytes pending at the end",
			 relay_decoder_pending(&r->d));
	if (!r->fail[0] && r->d._tail != NULL)
		snprintf(r->fail, sizeof r->fail, "tail not freed at a frame boundary");
	relay_decoder_free(&r->d);
	cr_assert(!r->fail[0], "%s: %s", what, r->fail);
}

/* ---- chunking -------------------------------------------------------- */

Test(decoder, whole_stream_at_once_points_into_the_callers_bytes)
{
	struct stream s;
	struct relay_decoder d;
	struct relay_frame f;
	size_t i = 0;

	stream_build(&s, 200 * 1024);
	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	relay_decoder_feed(&d, s.bytes, s.len);
	while (relay_decoder_next(&d, &f) == RELAY_DECODE_FRAME) {
		cr_assert_lt(i, s.nwant);
		cr_assert_eq(f.type, s.want[i].type);
		cr_assert_eq(f.len, s.want[i].len);
		cr_assert_eq(f.payload, s.want[i].payload, "frame %zu was copied", i);
		cr_assert_null(d._tail);
		i++;
	}
	cr_assert_eq(i, s.nwant);
	cr_assert_eq(d.err, RELAY_ERR_NONE);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	relay_decoder_free(&d);
	stream_free(&s);
	RL_ASSERT_NO_LEAKS();
}

/* 70 KiB: bigger than a 64 KiB read buffer, small enough that every one of
 * the ~72000 splits stays fast under ASan. */
Test(decoder, every_two_way_split_yields_the_same_frames, .timeout = 60)
{
	struct stream s;
	struct run r;

	stream_build(&s, 70 * 1024);
	for (size_t k = 0; k <= s.len; k++) {
		run_init(&r, &s, false);
		run_feed(&r, s.bytes, k);
		run_feed(&r, s.bytes + k, s.len - k);
		char what[64];
		snprintf(what, sizeof what, "split at %zu", k);
		run_finish(&r, what);
	}
	stream_free(&s);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, every_two_way_split_with_reused_buffers_small_frames)
{
	struct stream s;
	struct run r;

	stream_build(&s, 300);
	for (size_t k = 0; k <= s.len; k++) {
		run_init(&r, &s, true);
		run_feed(&r, s.bytes, k);
		run_feed(&r, s.bytes + k, s.len - k);
		run_finish(&r, "split");
	}
	stream_free(&s);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, byte_by_byte_yields_the_same_frames)
{
	struct stream s;
	struct run r;

	stream_build(&s, 200 * 1024);
	run_init(&r, &s, true);
	for (size_t k = 0; k < s.len; k++)
		run_feed(&r, s.bytes + k, 1);
	run_finish(&r, "byte by byte");
	stream_free(&s);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, seeded_random_chunkings_yield_the_same_frames, .timeout = 60)
{
	struct stream s;
	struct run r;
	uint64_t seed = 0x9E3779B97F4A7C15ull;

	stream_build(&s, 200 * 1024);
	for (int iter = 0; iter < 400; iter++) {
		run_init(&r, &s, true);
		size_t off = 0;
		/* Chunk sizes spread over 1 B .. 256 KiB, log-uniformly, with
		 * empty feeds mixed in. */
		while (off < s.len) {
			uint64_t x = rl_test_rand(&seed);
			size_t n = (size_t)(x >> 40) & ((1u << (x % 19)) - 1);
			if (n > s.len - off)
				n = s.len - off;
			run_feed(&r, s.bytes + off, n);
			off += n;
		}
		char what[64];
		snprintf(what, sizeof what, "iteration %d", iter);
		run_finish(&r, what);
	}
	stream_free(&s);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, random_streams_in_random_chunks_yield_the_same_frames)
{
	uint64_t seed = 0xC0FFEEull;
	uint8_t *payload = malloc(5000);

	for (int i = 0; i < 5000; i++)
		payload[i] = (uint8_t)rl_test_rand(&seed);
	for (int iter = 0; iter < 300; iter++) {
		struct stream s;
		memset(&s, 0, sizeof s);
		int nframes = 1 + (int)(rl_test_rand(&seed) % MAX_FRAMES);
		for (int k = 0; k < nframes; k++) {
			uint64_t x = rl_test_rand(&seed);
			uint8_t type = (uint8_t)(1 + x % 6);
			uint8_t flags = (uint8_t)((x >> 8) % 3);
			uint32_t len = (uint32_t)((x >> 16) % ((x >> 32) & 1 ? 5000 : 16));
			stream_add(&s, type, flags, payload + (x >> 40) % (5000 - len + 1), len);
		}
		stream_seal(&s);
		struct run r;
		run_init(&r, &s, true);
		for (size_t off = 0; off < s.len;) {
			size_t n = (size_t)(rl_test_rand(&seed) % 700);
			if (n > s.len - off)
				n = s.len - off;
			run_feed(&r, s.bytes + off, n);
			off += n;
		}
		char what[64];
		snprintf(what, sizeof what, "random stream %d", iter);
		run_finish(&r, what);
		stream_free(&s);
	}
	free(payload);
	RL_ASSERT_NO_LEAKS();
}

/* Valid frames, then a frame with a bad version: whatever the split, the
 * same frames come out first and then the same error. */
Test(decoder, every_two_way_split_before_an_error_gives_the_same_error)
{
	static const uint8_t bad_headers[][7] = {
		{0, 0, 0, 2, 1, 1, 1},          /* INVALID_FRAME (length) */
		{0, 0x20, 0, 0, 1, 1, 1},       /* FRAME_TOO_LARGE */
		{0, 0, 0, 5, 9, 1, 1},          /* UNSUPPORTED_VERSION */
		{0, 0, 0, 5, 1, 9, 1},          /* UNKNOWN_MESSAGE_TYPE */
		{0, 0, 0, 5, 1, 1, 3},          /* INVALID_FRAME (flags) */
	};
	static const enum relay_err want[] = {
		RELAY_ERR_INVALID_FRAME, RELAY_ERR_FRAME_TOO_LARGE, RELAY_ERR_UNSUPPORTED_VERSION,
		RELAY_ERR_UNKNOWN_MESSAGE_TYPE, RELAY_ERR_INVALID_FRAME,
	};
	for (size_t b = 0; b < sizeof want / sizeof want[0]; b++) {
		struct stream s;
		stream_build(&s, 3000);
		size_t valid_len = s.len;
		s.bytes = realloc(s.bytes, s.len + 7 + 2);
		memcpy(s.bytes + s.len, bad_headers[b], 7);
		s.bytes[s.len + 7] = 'x';
		s.bytes[s.len + 8] = 'y';
		s.len += 9;
		stream_seal(&s);
		for (size_t k = 0; k <= s.len; k++) {
			struct relay_decoder d;
			struct relay_frame f;
			size_t got = 0;
			enum relay_decode_status st = RELAY_DECODE_NEED_MORE;
			relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
			const size_t cuts[3] = {0, k, s.len};
			for (int c = 0; c < 2 && st != RELAY_DECODE_ERROR; c++) {
				relay_decoder_feed(&d, s.bytes + cuts[c], cuts[c + 1] - cuts[c]);
				while ((st = relay_decoder_next(&d, &f)) == RELAY_DECODE_FRAME)
					if (got++ > s.nwant)
						break;
			}
			if (st != RELAY_DECODE_ERROR || d.err != want[b] || got != s.nwant)
				cr_assert_fail("bad header %zu, split at %zu (valid part %zu): status %d "
					       "err %s, %zu frames (want %s after %zu)",
					       b, k, valid_len, st, relay_err_name(d.err), got,
					       relay_err_name(want[b]), s.nwant);
			relay_decoder_free(&d);
		}
		stream_free(&s);
	}
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, tail_grows_with_the_bytes_that_arrived_not_the_announced_length)
{
	struct relay_decoder d;
	struct relay_frame f;
	const uint32_t len = RELAY_DEFAULT_MAX_FRAME - 3; /* the largest frame allowed */
	uint8_t *frame = malloc(RELAY_FRAME_HDR_BYTES + len);

	cr_assert_not_null(frame);
	memset(frame + RELAY_FRAME_HDR_BYTES, 'x', len);
	relay_frame_encode(frame, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, frame + RELAY_FRAME_HDR_BYTES, len);
	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	cr_assert_null(d._tail, "an idle decoder holds no buffer");
	relay_decoder_feed(&d, frame, 2);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	cr_assert_eq(relay_decoder_pending(&d), 2);
	cr_assert_leq(d._tail_cap, 4, "length unknown: at most the length bytes");

	/* A peer announcing 1 MiB and sending 10 bytes holds about 10 bytes. */
	relay_decoder_feed(&d, frame + 2, 8);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	cr_assert_eq(relay_decoder_pending(&d), 10);
	cr_assert_leq(d._tail_cap, 256, "a stalled 1 MiB frame must not pin 1 MiB (cap %u)",
		      d._tail_cap);

	/* Then the buffer stays within twice what arrived, never past the frame. */
	size_t at = 10;
	while (at < RELAY_FRAME_HDR_BYTES + (size_t)len) {
		size_t n = RELAY_FRAME_HDR_BYTES + (size_t)len - at;
		if (n > 65536)
			n = 65536;
		relay_decoder_feed(&d, frame + at, n);
		at += n;
		if (at < RELAY_FRAME_HDR_BYTES + (size_t)len) {
			cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
			cr_assert_leq(d._tail_cap, 2 * at, "cap %u after %zu bytes", d._tail_cap, at);
		}
	}
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME);
	cr_assert_leq(d._tail_cap, RELAY_FRAME_HDR_BYTES + len, "never past the frame's size");
	cr_assert_eq(f.len, len);
	cr_assert_eq(f.payload[0], 'x');
	cr_assert_eq(f.payload[len - 1], 'x');
	cr_assert_eq(relay_decoder_pending(&d), 0);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	cr_assert_null(d._tail, "tail freed once empty");
	relay_decoder_free(&d);
	free(frame);
	RL_ASSERT_NO_LEAKS();
}

/* ---- round trips ------------------------------------------------------ */

Test(decoder, round_trip_every_type_and_flag_combination)
{
	static const uint32_t sizes[] = {0, 1, 255, 4096, 70000};
	uint8_t *payload = malloc(70000), *buf = malloc(7 + 70000);

	for (uint32_t i = 0; i < 70000; i++)
		payload[i] = (uint8_t)(i ^ (i >> 7));
	for (unsigned t = RELAY_MSG_HELLO; t < RELAY_MSG_NTYPES; t++) {
		for (unsigned fl = 0; fl <= 2; fl++) {
			for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
				uint32_t n = sizes[k];
				size_t len = relay_frame_encode(buf, (uint8_t)t, (uint8_t)fl, payload, n);
				struct relay_decoder d;
				struct relay_frame f;
				relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
				/* once whole, once split in the middle of the header */
				for (int split = 0; split < 2; split++) {
					size_t cut = split ? 5 : 0;
					if (split) {
						relay_decoder_feed(&d, buf, cut);
						cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
					}
					relay_decoder_feed(&d, buf + cut, len - cut);
					cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME,
						     "type %u flags %u len %u", t, fl, n);
					cr_assert_eq(f.version, 1);
					cr_assert_eq(f.type, t);
					cr_assert_eq(f.flags, fl);
					cr_assert_eq(f.len, n);
					cr_assert(n == 0 || memcmp(f.payload, payload, n) == 0);
					cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
				}
				relay_decoder_free(&d);
			}
		}
	}
	free(payload);
	free(buf);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, frame_of_exactly_max_frame_passes)
{
	uint32_t max = 1000;
	uint8_t *buf = calloc(1, 4 + max);
	struct relay_decoder d;
	struct relay_frame f;

	relay_frame_put_header(buf, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, max - 3);
	relay_decoder_init(&d, max);
	relay_decoder_feed(&d, buf, 4 + max);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME);
	cr_assert_eq(f.len, max - 3);
	relay_decoder_free(&d);
	free(buf);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, zero_max_frame_means_the_default)
{
	struct relay_decoder d;
	relay_decoder_init(&d, 0);
	cr_assert_eq(d.max_frame, RELAY_DEFAULT_MAX_FRAME);
	relay_decoder_free(&d);
}

Test(decoder, huge_max_frame_is_clamped_so_sizes_fit)
{
	struct relay_decoder d;
	struct relay_frame f;
	const uint8_t b[] = {0xFF, 0xFF, 0xFF, 0xFF};

	relay_decoder_init(&d, UINT32_MAX);
	cr_assert_eq(d.max_frame, UINT32_MAX - 4);
	relay_decoder_feed(&d, b, sizeof b);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_ERROR);
	cr_assert_eq(d.err, RELAY_ERR_FRAME_TOO_LARGE);
	relay_decoder_free(&d);
	RL_ASSERT_NO_LEAKS();
}

/* ---- fatal conditions ------------------------------------------------- */

/* Feeds <bytes> one at a time; returns the error and how many bytes it took. */
static enum relay_err feed_until_error(const uint8_t *bytes, size_t n, uint32_t max,
				    size_t *used)
{
	struct relay_decoder d;
	struct relay_frame f;
	enum relay_err err = RELAY_ERR_NONE;

	relay_decoder_init(&d, max);
	*used = 0;
	for (size_t i = 0; i < n; i++) {
		relay_decoder_feed(&d, bytes + i, 1);
		enum relay_decode_status st;
		int frames = 0;
		while ((st = relay_decoder_next(&d, &f)) == RELAY_DECODE_FRAME)
			cr_assert_lt(++frames, 100, "endless frames");
		if (st == RELAY_DECODE_ERROR) {
			err = d.err;
			*used = i + 1;
			cr_assert_null(d._tail, "nothing kept after an error");
			break;
		}
	}
	relay_decoder_free(&d);
	return err;
}

/* The same bytes fed at once must give the same error. */
static enum relay_err feed_at_once(const uint8_t *bytes, size_t n, uint32_t max)
{
	struct relay_decoder d;
	struct relay_frame f;
	enum relay_decode_status st;

	relay_decoder_init(&d, max);
	relay_decoder_feed(&d, bytes, n);
	int frames = 0;
	while ((st = relay_decoder_next(&d, &f)) == RELAY_DECODE_FRAME)
		cr_assert_lt(++frames, 100, "endless frames");
	enum relay_err err = st == RELAY_DECODE_ERROR ? d.err : RELAY_ERR_NONE;
	relay_decoder_free(&d);
	return err;
}

static void expect_error(const uint8_t *bytes, size_t n, uint32_t max, enum relay_err want,
			 size_t decided_at)
{
	size_t used;
	enum relay_err got = feed_until_error(bytes, n, max, &used);
	cr_assert_eq(got, want, "byte by byte: got %s, want %s", relay_err_name(got), relay_err_name(want));
	cr_assert_eq(used, decided_at, "%s decided after %zu bytes, want %zu", relay_err_name(want),
		     used, decided_at);
	got = feed_at_once(bytes, n, max);
	cr_assert_eq(got, want, "at once: got %s, want %s", relay_err_name(got), relay_err_name(want));
}

Test(decoder, frame_too_large_is_decided_from_length_alone)
{
	/* length 1001 > max 1000; the rest would be a valid header */
	const uint8_t b[] = {0, 0, 0x03, 0xE9, 1, 4, 2, 'x', 'y'};
	expect_error(b, sizeof b, 1000, RELAY_ERR_FRAME_TOO_LARGE, 4);
	const uint8_t huge[] = {0xFF, 0xFF, 0xFF, 0xFF};
	expect_error(huge, sizeof huge, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_FRAME_TOO_LARGE, 4);
	const uint8_t one_over[] = {0x00, 0x10, 0x00, 0x01};
	expect_error(one_over, sizeof one_over, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_FRAME_TOO_LARGE, 4);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, frame_too_large_buffers_nothing)
{
	const uint8_t b[] = {0x7F, 0, 0, 0};
	struct relay_decoder d;
	struct relay_frame f;

	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	relay_decoder_feed(&d, b, sizeof b);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_ERROR);
	cr_assert_eq(d.err, RELAY_ERR_FRAME_TOO_LARGE);
	cr_assert_null(d._tail);
	cr_assert_eq(relay_decoder_pending(&d), 0);
	relay_decoder_free(&d);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, length_below_three_is_invalid_frame_from_length_alone)
{
	for (uint8_t l = 0; l < 3; l++) {
		const uint8_t b[] = {0, 0, 0, l, 9, 9, 9, 9};
		expect_error(b, sizeof b, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_INVALID_FRAME, 4);
	}
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, invalid_length_wins_over_too_large)
{
	const uint8_t b[] = {0, 0, 0, 2};
	expect_error(b, sizeof b, 1, RELAY_ERR_INVALID_FRAME, 4);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, header_errors_are_decided_at_seven_bytes)
{
	const uint8_t ver[] = {0, 0, 0, 10, 2, 1, 0, 'a', 'b', 'c'};
	expect_error(ver, sizeof ver, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_UNSUPPORTED_VERSION, 7);
	const uint8_t typ[] = {0, 0, 0, 10, 1, 7, 0, 'a', 'b', 'c'};
	expect_error(typ, sizeof typ, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_UNKNOWN_MESSAGE_TYPE, 7);
	const uint8_t typ0[] = {0, 0, 0, 3, 1, 0, 0};
	expect_error(typ0, sizeof typ0, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_UNKNOWN_MESSAGE_TYPE, 7);
	const uint8_t both[] = {0, 0, 0, 10, 1, 4, 3, 'a', 'b', 'c'};
	expect_error(both, sizeof both, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_INVALID_FRAME, 7);
	const uint8_t comp[] = {0, 0, 0, 10, 1, 4, 0x05, 'a', 'b', 'c'};
	expect_error(comp, sizeof comp, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_INVALID_FRAME, 7);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, a_frame_breaking_several_rules_gets_the_first_code)
{
	/* too large + bad version + bad type + bad flags */
	const uint8_t a[] = {0, 0x20, 0, 0, 9, 99, 0xFF};
	expect_error(a, sizeof a, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_FRAME_TOO_LARGE, 4);
	/* short length + bad version */
	const uint8_t b[] = {0, 0, 0, 1, 9, 99, 0xFF};
	expect_error(b, sizeof b, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_INVALID_FRAME, 4);
	/* bad version + bad type + bad flags */
	const uint8_t c[] = {0, 0, 0, 3, 9, 99, 0xFF};
	expect_error(c, sizeof c, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_UNSUPPORTED_VERSION, 7);
	/* bad type + bad flags */
	const uint8_t e[] = {0, 0, 0, 3, 1, 99, 0xFF};
	expect_error(e, sizeof e, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_UNKNOWN_MESSAGE_TYPE, 7);
	/* every reserved flag bit alone */
	for (unsigned bit = 2; bit < 8; bit++) {
		const uint8_t f[] = {0, 0, 0, 3, 1, 5, (uint8_t)(1u << bit)};
		expect_error(f, sizeof f, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_INVALID_FRAME, 7);
	}
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, frames_before_an_error_are_still_yielded)
{
	uint8_t b[64];
	size_t n = relay_frame_encode(b, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
	n += relay_frame_encode(b + n, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "z", 1);
	const uint8_t bad[] = {0, 0, 0, 3, 2, 1, 0};
	memcpy(b + n, bad, sizeof bad);
	n += sizeof bad;

	struct relay_decoder d;
	struct relay_frame f;
	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	relay_decoder_feed(&d, b, n);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME);
	cr_assert_eq(f.len, 1);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_ERROR);
	cr_assert_eq(d.err, RELAY_ERR_UNSUPPORTED_VERSION);
	relay_decoder_free(&d);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, errors_are_sticky)
{
	const uint8_t bad[] = {0, 0, 0, 0};
	uint8_t good[8];
	size_t n = relay_frame_encode(good, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
	struct relay_decoder d;
	struct relay_frame f;

	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	relay_decoder_feed(&d, bad, sizeof bad);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_ERROR);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_ERROR);
	relay_decoder_feed(&d, good, n);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_ERROR);
	cr_assert_eq(d.err, RELAY_ERR_INVALID_FRAME);
	relay_decoder_free(&d);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, error_midway_through_a_tail_frees_it)
{
	/* a valid frame started in the tail, then a second frame with bad flags */
	uint8_t b[32];
	size_t n = relay_frame_encode(b, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, "abcdef", 6);
	const uint8_t bad[] = {0, 0, 0, 3, 1, 4, 0x80};
	memcpy(b + n, bad, sizeof bad);
	struct relay_decoder d;
	struct relay_frame f;

	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	relay_decoder_feed(&d, b, 9);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	relay_decoder_feed(&d, b + 9, n - 9 + 5);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	cr_assert_eq(relay_decoder_pending(&d), 5);
	relay_decoder_feed(&d, b + n + 5, 2);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_ERROR);
	cr_assert_eq(d.err, RELAY_ERR_INVALID_FRAME);
	cr_assert_null(d._tail);
	relay_decoder_free(&d);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, pending_counts_a_started_frame)
{
	uint8_t b[16];
	size_t n = relay_frame_encode(b, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "room", 4);
	struct relay_decoder d;
	struct relay_frame f;

	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	cr_assert_eq(relay_decoder_pending(&d), 0);
	for (size_t i = 0; i + 1 < n; i++) {
		relay_decoder_feed(&d, b + i, 1);
		cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
		cr_assert_eq(relay_decoder_pending(&d), i + 1);
	}
	relay_decoder_feed(&d, b + n - 1, 1);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME);
	cr_assert_eq(relay_decoder_pending(&d), 0);
	cr_assert_eq(memcmp(f.payload, "room", 4), 0);
	relay_decoder_free(&d);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, free_then_reinit_is_clean)
{
	uint8_t b[16];
	relay_frame_encode(b, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "room", 4);
	struct relay_decoder d;
	struct relay_frame f;

	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	relay_decoder_feed(&d, b, 6);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_NEED_MORE);
	relay_decoder_free(&d);
	relay_decoder_free(&d);
	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	cr_assert_eq(relay_decoder_pending(&d), 0);
	relay_decoder_free(&d);
	RL_ASSERT_NO_LEAKS();
}

/* Two binary deliveries with RELAY_FLAG_SEQ, the second split across feeds
 * (through the tail), then the same flags on a HELLO. */
Test(decoder, from_server_accepts_seq_deliveries_in_place_and_through_the_tail)
{
	const uint8_t s[] = {0, 0, 0, 5, 1, 4, 0x0a, 'x', 'y', /* */
			     0, 0, 0, 5, 1, 4, 0x0a, 'z', 'w', /* */
			     0, 0, 0, 3, 1, 1, 0x0a};
	struct relay_decoder d;
	struct relay_frame f;
	relay_decoder_init(&d, 0);
	relay_decoder_feed(&d, s, 12);
	cr_assert_eq(relay_decoder_next_from_server(&d, &f), RELAY_DECODE_FRAME);
	cr_assert(f.flags == 0x0a && f.len == 2 && f.payload == s + 7);
	cr_assert_eq(relay_decoder_next_from_server(&d, &f), RELAY_DECODE_NEED_MORE);
	relay_decoder_feed(&d, s + 12, sizeof s - 12);
	cr_assert_eq(relay_decoder_next_from_server(&d, &f), RELAY_DECODE_FRAME);
	cr_assert(f.flags == 0x0a && f.len == 2 && memcmp(f.payload, "zw", 2) == 0);
	cr_assert_eq(relay_decoder_next_from_server(&d, &f), RELAY_DECODE_ERROR);
	cr_assert_eq(d.err, RELAY_ERR_INVALID_FRAME, "only a MESSAGE may carry it");
	relay_decoder_free(&d);
	/* relayd's direction: the flag is reserved, decided at 7 bytes */
	expect_error(s, 9, RELAY_DEFAULT_MAX_FRAME, RELAY_ERR_INVALID_FRAME, 7);
}

/* ---- stopping between frames (relay_decoder_rest) ---------------------- */

/* Feeds <p>/<n> and takes frames; after every <every>-th frame it stops,
 * copies what is left into a fresh buffer (the old one is poisoned, as a
 * caller's reused read buffer would be) and feeds that copy instead. */
static void run_feed_stopping(struct run *r, const uint8_t *p, size_t n, size_t every)
{
	uint8_t *own = malloc(n ? n : 1);
	struct relay_frame f;
	enum relay_decode_status st;
	size_t frames = 0;

	memcpy(own, p, n);
	relay_decoder_feed(&r->d, own, n);
	while (!r->fail[0] && (st = relay_decoder_next(&r->d, &f)) == RELAY_DECODE_FRAME) {
		run_check(r, &f);
		if (++frames % every != 0)
			continue;
		const uint8_t *rest;
		size_t left = relay_decoder_rest(&r->d, &rest);
		if (left > 0 && (rest < own || rest + left != own + n))
			snprintf(r->fail, sizeof r->fail, "rest is not the end of the feed");
		uint8_t *copy = malloc(left ? left : 1);
		if (left > 0)
			memcpy(copy, rest, left);
		memset(own, 0xA5, n);
		free(own);
		own = copy;
		n = left;
		relay_decoder_feed(&r->d, own, n);
	}
	if (st != RELAY_DECODE_NEED_MORE && !r->fail[0])
		snprintf(r->fail, sizeof r->fail, "status %d err %s", st, relay_err_name(r->d.err));
	memset(own, 0xA5, n);
	free(own);
}

Test(decoder, stopping_after_any_frame_and_feeding_the_rest_later_yields_the_same_frames)
{
	struct stream s;
	struct run r;

	stream_build(&s, 3000);
	for (size_t every = 1; every <= 3; every++) {
		for (size_t k = 0; k <= s.len; k++) {
			run_init(&r, &s, false);
			run_feed_stopping(&r, s.bytes, k, every);
			run_feed_stopping(&r, s.bytes + k, s.len - k, every);
			char what[64];
			snprintf(what, sizeof what, "split at %zu, stop every %zu", k, every);
			run_finish(&r, what);
		}
	}
	stream_free(&s);
	RL_ASSERT_NO_LEAKS();
}

Test(decoder, rest_is_nothing_at_the_end_of_a_feed_and_after_an_error)
{
	uint8_t b[32];
	size_t n = relay_frame_encode(b, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "room", 4);
	struct relay_decoder d;
	struct relay_frame f;
	const uint8_t *rest = b;

	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	relay_decoder_feed(&d, b, n);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_FRAME);
	cr_assert_eq(relay_decoder_rest(&d, &rest), 0);
	cr_assert_null(rest);
	cr_assert_eq(memcmp(f.payload, "room", 4), 0, "the frame stays valid");
	b[4] = 9; /* version 9 */
	relay_decoder_feed(&d, b, n);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_ERROR);
	cr_assert_eq(relay_decoder_rest(&d, &rest), 0);
	cr_assert_eq(relay_decoder_next(&d, &f), RELAY_DECODE_ERROR, "errors stay sticky");
	relay_decoder_free(&d);
	RL_ASSERT_NO_LEAKS();
}
