/* test_wsframe.c -- RFC 6455 framing (src/relayd/net/wsframe.c): the RFC's
 * examples, every refusal with its close code, fragmentation around control
 * frames, the message limit, 16/64-bit lengths, close payloads, the same
 * events whatever the split of the bytes, the encoders, and the checks of
 * the Relay frame inside a binary message in the spec's order. */
#include "unit.h"

#include "net/wsframe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

TestSuite(wsframe, .timeout = 60);

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 §5.7 */

/* ---- building streams -------------------------------------------------------- */

struct bytes {
	uint8_t *p;
	size_t n;
};

static void put_raw(struct bytes *b, const void *p, size_t n)
{
	b->p = realloc(b->p, b->n + n + 1);
	cr_assert_not_null(b->p);
	if (n > 0)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

/* A frame as a client (key) or server (NULL) would send it. */
static void put_frame(struct bytes *b, uint8_t op, bool fin, const void *payload, size_t n,
		      const uint8_t *key)
{
	uint8_t *f = malloc(RL_WSF_HDR_MAX + n);
	cr_assert_not_null(f);
	size_t len = rl_wsf_put_frame(f, op, fin, payload, n, key);
	put_raw(b, f, len);
	free(f);
}

/* ---- decoding and recording what came out ------------------------------------ */

#define LOG_MAX 32

/* One whole message (through the reassembler) or control frame. */
struct item {
	char kind; /* 'M' message, 'C' control */
	uint8_t opcode;
	uint16_t code;
	size_t n;
	uint8_t *bytes;
};

struct run {
	struct item it[LOG_MAX];
	size_t n;
	enum rl_wsf_err err;
	size_t err_at; /* bytes fed when the error came */
};

static void run_free(struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->it[i].bytes);
	memset(r, 0, sizeof *r);
}

static void record(struct run *r, char kind, uint8_t op, uint16_t code, const uint8_t *p, size_t n)
{
	cr_assert_lt(r->n, LOG_MAX);
	struct item *it = &r->it[r->n++];
	*it = (struct item){kind, op, code, n, malloc(n + 1)};
	cr_assert_not_null(it->bytes);
	if (n > 0)
		memcpy(it->bytes, p, n);
}

/* Drains the decoder's events for the current feed into <r>. */
static void drain(struct rl_wsf_dec *d, struct rl_wsf_asm *a, struct run *r, size_t fed)
{
	struct rl_wsf_event ev;
	struct relay_span msg;
	enum rl_wsf_status st;

	while ((st = rl_wsf_dec_next(d, &ev)) != RL_WSF_NEED_MORE) {
		if (st == RL_WSF_ERROR) {
			r->err = d->err;
			r->err_at = fed;
			cr_assert_eq(rl_wsf_dec_next(d, &ev), RL_WSF_ERROR, "errors are sticky");
			return;
		}
		if (st == RL_WSF_CONTROL) {
			cr_assert_leq(ev.n, RL_WSF_CONTROL_MAX);
			record(r, 'C', ev.opcode, ev.close_code, ev.p, ev.n);
			continue;
		}
		cr_assert_eq(st, RL_WSF_DATA);
		cr_assert_eq(ev.opcode, RL_WSF_OP_BINARY);
		int rc = rl_wsf_asm_add(a, &ev, &msg);
		cr_assert_geq(rc, 0);
		if (rc == 1)
			record(r, 'M', ev.opcode, 0, msg.p, msg.n);
	}
}

/* Decodes <s> fed in the pieces that <cuts> (ascending offsets) make. Each
 * piece is a private copy, poisoned and freed after its events were taken,
 * so a decoder that kept pointers into an old feed would be caught. */
static void run_cuts(const struct bytes *s, enum rl_wsf_role role, uint64_t max_msg,
		     const size_t *cuts, size_t ncuts, struct run *r)
{
	struct rl_wsf_dec d;
	struct rl_wsf_asm a = {0};
	size_t off = 0;

	memset(r, 0, sizeof *r);
	rl_wsf_dec_init(&d, role, max_msg);
	for (size_t i = 0; i <= ncuts && r->err == RL_WSF_OK; i++) {
		size_t end = i < ncuts ? cuts[i] : s->n;
		size_t n = end - off;
		uint8_t *chunk = malloc(n + 1);
		cr_assert_not_null(chunk);
		memcpy(chunk, s->p + off, n);
		rl_wsf_dec_feed(&d, chunk, n);
		drain(&d, &a, r, end);
		memset(chunk, 0xA5, n);
		free(chunk);
		off = end;
	}
	rl_wsf_asm_reset(&a);
}

static void run_whole(const struct bytes *s, enum rl_wsf_role role, uint64_t max_msg, struct run *r)
{
	run_cuts(s, role, max_msg, NULL, 0, r);
}

static void run_bytewise(const struct bytes *s, enum rl_wsf_role role, uint64_t max_msg,
			 struct run *r)
{
	size_t *cuts = malloc((s->n + 1) * sizeof *cuts);
	cr_assert_not_null(cuts);
	for (size_t i = 0; i < s->n; i++)
		cuts[i] = i + 1;
	run_cuts(s, role, max_msg, cuts, s->n, r);
	free(cuts);
}

static void same_run(const struct run *a, const struct run *b, const char *how)
{
	cr_assert_eq(a->n, b->n, "%s: %zu items vs %zu", how, a->n, b->n);
	cr_assert_eq(a->err, b->err, "%s: %s vs %s", how, rl_wsf_err_name(a->err),
		     rl_wsf_err_name(b->err));
	for (size_t i = 0; i < a->n; i++) {
		cr_assert_eq(a->it[i].kind, b->it[i].kind, "%s: item %zu", how, i);
		cr_assert_eq(a->it[i].opcode, b->it[i].opcode, "%s: item %zu", how, i);
		cr_assert_eq(a->it[i].code, b->it[i].code, "%s: item %zu", how, i);
		cr_assert_eq(a->it[i].n, b->it[i].n, "%s: item %zu", how, i);
		cr_assert_arr_eq(a->it[i].bytes, b->it[i].bytes, a->it[i].n, "%s: item %zu", how,
				 i);
	}
}

/* The error a stream ends in, and how many bytes (fed one at a time) it took. */
static enum rl_wsf_err err_bytewise(const void *p, size_t n, enum rl_wsf_role role,
				    uint64_t max_msg, size_t *at)
{
	struct bytes s = {0};
	struct run r;

	put_raw(&s, p, n);
	run_bytewise(&s, role, max_msg, &r);
	enum rl_wsf_err e = r.err;
	if (at != NULL)
		*at = r.err_at;
	run_free(&r);
	free(s.p);
	return e;
}

#define ERR_SERVER(lit) err_bytewise(lit, sizeof(lit) - 1, RL_WSF_SERVER, 1 << 20, NULL)

/* ---- the RFC's examples (§5.7) --------------------------------------------------- */

Test(wsframe, rfc6455_examples_decode)
{
	struct bytes s = {0};
	struct run r;

	/* "A single-frame masked text message", sent as binary */
	put_raw(&s, "\x82\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
	/* "Unmasked Ping request and masked Ping response": a masked pong */
	put_raw(&s, "\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
	run_whole(&s, RL_WSF_SERVER, 1 << 20, &r);
	cr_assert_eq(r.err, RL_WSF_OK);
	cr_assert_eq(r.n, 2);
	cr_assert_eq(r.it[0].kind, 'M');
	cr_assert_eq(r.it[0].n, 5);
	cr_assert_arr_eq(r.it[0].bytes, "Hello", 5);
	cr_assert_eq(r.it[1].kind, 'C');
	cr_assert_eq(r.it[1].opcode, RL_WSF_OP_PONG);
	cr_assert_arr_eq(r.it[1].bytes, "Hello", 5);
	run_free(&r);
	free(s.p);

	/* server frames, seen by a client: unmasked ping, "256 bytes binary
	 * message in a single unmasked frame", "64KiB binary message" */
	memset(&s, 0, sizeof s);
	put_raw(&s, "\x89\x05Hello", 7);
	uint8_t *big = malloc(65536);
	cr_assert_not_null(big);
	for (size_t i = 0; i < 65536; i++)
		big[i] = (uint8_t)(i * 7);
	put_raw(&s, "\x82\x7E\x01\x00", 4);
	put_raw(&s, big, 256);
	put_raw(&s, "\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10);
	put_raw(&s, big, 65536);
	run_whole(&s, RL_WSF_CLIENT, 1 << 20, &r);
	cr_assert_eq(r.err, RL_WSF_OK);
	cr_assert_eq(r.n, 3);
	cr_assert_eq(r.it[0].opcode, RL_WSF_OP_PING);
	cr_assert_eq(r.it[1].n, 256);
	cr_assert_arr_eq(r.it[1].bytes, big, 256);
	cr_assert_eq(r.it[2].n, 65536);
	cr_assert_arr_eq(r.it[2].bytes, big, 65536);
	run_free(&r);
	free(s.p);
	free(big);

	/* "A single-frame unmasked text message": text is refused on both sides */
	cr_assert_eq(err_bytewise("\x81\x05Hello", 7, RL_WSF_CLIENT, 1 << 20, NULL),
		     RL_WSF_ERR_TEXT);
	RL_ASSERT_NO_LEAKS();
}

/* ---- the same events whatever the split ---------------------------------------- */

/* A client's stream: a message, a fragmented message with a ping and a pong
 * between its fragments (and an empty final fragment), a 300-byte message
 * (16-bit length), a 70000-byte one (64-bit length), a close. */
static void client_stream(struct bytes *s)
{
	static const uint8_t k2[4] = {1, 2, 3, 4}, k3[4] = {0xff, 0, 0x80, 0x7f};
	uint8_t *blob = malloc(70000);

	cr_assert_not_null(blob);
	for (size_t i = 0; i < 70000; i++)
		blob[i] = (uint8_t)(i * 31 + (i >> 9));
	memset(s, 0, sizeof *s);
	put_frame(s, RL_WSF_OP_BINARY, true, "hello", 5, KEY);
	put_frame(s, RL_WSF_OP_BINARY, false, blob, 100, k2);
	put_frame(s, RL_WSF_OP_PING, true, "p", 1, k3);
	put_frame(s, RL_WSF_OP_CONT, false, blob + 100, 50, KEY);
	put_frame(s, RL_WSF_OP_PONG, true, "", 0, k2);
	put_frame(s, RL_WSF_OP_CONT, true, "", 0, k3);
	put_frame(s, RL_WSF_OP_BINARY, true, blob, 300, k3);
	put_frame(s, RL_WSF_OP_BINARY, true, blob + 1, 70000 - 1, k2);
	put_frame(s, RL_WSF_OP_CLOSE, true,
		  "\x03\xe8"
		  "bye",
		  5, KEY);
	free(blob);
}

static void expect_client_stream(const struct run *r)
{
	static const char kinds[] = "MCCMMMC";
	static const uint8_t ops[] = {RL_WSF_OP_BINARY, RL_WSF_OP_PING,	  RL_WSF_OP_PONG,
				      RL_WSF_OP_BINARY, RL_WSF_OP_BINARY, RL_WSF_OP_BINARY,
				      RL_WSF_OP_CLOSE};
	static const size_t lens[] = {5, 1, 0, 150, 300, 69999, 5};

	cr_assert_eq(r->err, RL_WSF_OK, "%s", rl_wsf_err_name(r->err));
	cr_assert_eq(r->n, 7);
	for (size_t i = 0; i < 7; i++) {
		cr_assert_eq(r->it[i].kind, kinds[i], "item %zu", i);
		cr_assert_eq(r->it[i].opcode, ops[i], "item %zu", i);
		cr_assert_eq(r->it[i].n, lens[i], "item %zu", i);
	}
	cr_assert_arr_eq(r->it[0].bytes, "hello", 5);
	cr_assert_eq(r->it[6].code, 1000);
	for (size_t i = 0; i < 150; i++)
		cr_assert_eq(r->it[3].bytes[i], (uint8_t)(i * 31 + (i >> 9)), "byte %zu", i);
}

Test(wsframe, every_split_point_gives_the_same_events)
{
	struct bytes s;
	struct run whole, r;

	client_stream(&s);
	run_whole(&s, RL_WSF_SERVER, 1 << 20, &whole);
	expect_client_stream(&whole);
	/* two pieces, cut at every offset of the small frames and around the
	 * big one's header */
	for (size_t k = 0; k <= s.n; k = k < 600 || k > s.n - 100 ? k + 1 : k + 997) {
		run_cuts(&s, RL_WSF_SERVER, 1 << 20, &k, 1, &r);
		char how[32];
		snprintf(how, sizeof how, "split at %zu", k);
		same_run(&whole, &r, how);
		run_free(&r);
	}
	run_bytewise(&s, RL_WSF_SERVER, 1 << 20, &r);
	same_run(&whole, &r, "byte by byte");
	run_free(&r);
	/* random chunkings */
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	for (int round = 0; round < 50; round++) {
		size_t cuts[64], n = 0, off = 0;
		while (n < 64) {
			off += 1 + rl_test_rand(&seed) % (round % 2 ? 17 : 4000);
			if (off >= s.n)
				break;
			cuts[n++] = off;
		}
		run_cuts(&s, RL_WSF_SERVER, 1 << 20, cuts, n, &r);
		same_run(&whole, &r, "random chunks");
		run_free(&r);
	}
	run_free(&whole);
	free(s.p);
	RL_ASSERT_NO_LEAKS();
}

Test(wsframe, one_piece_message_is_handed_out_in_place)
{
	uint8_t f[64];
	size_t n = rl_wsf_put_frame(f, RL_WSF_OP_BINARY, true, "abcdef", 6, KEY);
	struct rl_wsf_dec d;
	struct rl_wsf_event ev;
	struct rl_wsf_asm a = {0};
	struct relay_span msg;

	rl_wsf_dec_init(&d, RL_WSF_SERVER, 100);
	rl_wsf_dec_feed(&d, f, n);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert(ev.first && ev.fin);
	cr_assert_eq(ev.p, f + 6, "unmasked in place, after the 6-byte header");
	cr_assert_eq(rl_wsf_asm_add(&a, &ev, &msg), 1);
	cr_assert_eq(msg.p, ev.p, "no copy");
	cr_assert_null(a._buf, "no memory held");
	cr_assert_arr_eq(f + 6, "abcdef", 6);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_NEED_MORE);
}

/* ---- refusals ---------------------------------------------------------------- */

Test(wsframe, unmasked_client_frame_is_refused_with_1002)
{
	cr_assert_eq(ERR_SERVER("\x82\x05hello"), RL_WSF_ERR_MASK);
	cr_assert_eq(ERR_SERVER("\x89\x00"), RL_WSF_ERR_MASK, "control frames too");
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_MASK), 1002);
	cr_assert_eq(rl_wsf_err_relay(RL_WSF_ERR_MASK), RELAY_ERR_NONE, "close frame only");
}

Test(wsframe, masked_server_frame_is_refused_by_the_client)
{
	cr_assert_eq(err_bytewise("\x82\x81\x01\x02\x03\x04x", 7, RL_WSF_CLIENT, 100, NULL),
		     RL_WSF_ERR_MASK);
	cr_assert_eq(err_bytewise("\x82\x01x", 3, RL_WSF_CLIENT, 100, NULL), RL_WSF_OK);
}

Test(wsframe, rsv_bits_are_refused_with_1002)
{
	for (unsigned bit = 0x10; bit <= 0x40; bit <<= 1) {
		uint8_t f[7] = {(uint8_t)(0x82 | bit), 0x81, 1, 2, 3, 4, 'x'};
		size_t at;
		cr_assert_eq(err_bytewise(f, 7, RL_WSF_SERVER, 100, &at), RL_WSF_ERR_RSV, "%#x",
			     bit);
		cr_assert_eq(at, 1, "decided from the first byte");
		f[0] = (uint8_t)(0x89 | bit);
		cr_assert_eq(err_bytewise(f, 7, RL_WSF_SERVER, 100, NULL), RL_WSF_ERR_RSV);
	}
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_RSV), 1002);
}

Test(wsframe, reserved_opcodes_are_refused_with_1002)
{
	for (unsigned op = 0; op < 16; op++) {
		uint8_t f[6] = {(uint8_t)(0x80 | op), 0x80, 1, 2, 3, 4};
		bool reserved = (op >= 3 && op <= 7) || op >= 0xB;
		enum rl_wsf_err e = err_bytewise(f, 6, RL_WSF_SERVER, 100, NULL);
		if (reserved)
			cr_assert_eq(e, RL_WSF_ERR_OPCODE, "opcode %#x", op);
		else
			cr_assert_neq(e, RL_WSF_ERR_OPCODE, "opcode %#x", op);
	}
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_OPCODE), 1002);
}

Test(wsframe, text_message_is_refused_with_1003_from_its_first_byte)
{
	size_t at;

	cr_assert_eq(err_bytewise("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11, RL_WSF_SERVER,
				  100, &at),
		     RL_WSF_ERR_TEXT);
	cr_assert_eq(at, 1);
	cr_assert_eq(ERR_SERVER("\x01\x80\x01\x02\x03\x04"), RL_WSF_ERR_TEXT, "fragmented too");
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_TEXT), 1003);
	cr_assert_eq(rl_wsf_err_relay(RL_WSF_ERR_TEXT), RELAY_ERR_NONE);
}

Test(wsframe, control_frame_over_125_bytes_is_refused_with_1002)
{
	static const uint8_t ops[] = {0x89, 0x8A, 0x88};
	uint8_t f[RL_WSF_HDR_MAX + 200];

	for (size_t i = 0; i < 3; i++) {
		size_t at;
		uint8_t hdr[4] = {ops[i], 0xFE, 0x00, 0x7E}; /* 16-bit length 126 */
		cr_assert_eq(err_bytewise(hdr, 4, RL_WSF_SERVER, 1000, &at),
			     RL_WSF_ERR_CONTROL_LONG);
		cr_assert_eq(at, 2, "decided from the second byte");
		hdr[1] = 0xFF;
		cr_assert_eq(err_bytewise(hdr, 2, RL_WSF_SERVER, 1000, NULL),
			     RL_WSF_ERR_CONTROL_LONG);
	}
	/* 125 is fine (a close needs a valid code) */
	uint8_t p[125];
	memset(p, 'a', sizeof p);
	p[0] = 0x03;
	p[1] = 0xe8;
	for (size_t i = 0; i < 3; i++) {
		size_t n = rl_wsf_put_frame(f, ops[i] & 0x0F, true, p, 125, KEY);
		cr_assert_eq(err_bytewise(f, n, RL_WSF_SERVER, 1000, NULL), RL_WSF_OK);
	}
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_CONTROL_LONG), 1002);
}

Test(wsframe, fragmented_control_frame_is_refused_with_1002)
{
	cr_assert_eq(ERR_SERVER("\x09\x80\x01\x02\x03\x04"), RL_WSF_ERR_CONTROL_FRAG);
	cr_assert_eq(ERR_SERVER("\x08\x80\x01\x02\x03\x04"), RL_WSF_ERR_CONTROL_FRAG);
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_CONTROL_FRAG), 1002);
}

Test(wsframe, continuation_out_of_place_is_refused_with_1002)
{
	/* a continuation with no message open */
	cr_assert_eq(ERR_SERVER("\x80\x80\x01\x02\x03\x04"), RL_WSF_ERR_CONT_NO_MSG);
	/* ... nor after a message that ended */
	cr_assert_eq(ERR_SERVER("\x82\x80\x01\x02\x03\x04\x80\x80\x01\x02\x03\x04"),
		     RL_WSF_ERR_CONT_NO_MSG);
	/* a new binary or text message while one is open */
	cr_assert_eq(ERR_SERVER("\x02\x80\x01\x02\x03\x04\x82\x80\x01\x02\x03\x04"),
		     RL_WSF_ERR_DATA_IN_MSG);
	cr_assert_eq(ERR_SERVER("\x02\x80\x01\x02\x03\x04\x81\x80\x01\x02\x03\x04"),
		     RL_WSF_ERR_DATA_IN_MSG);
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_CONT_NO_MSG), 1002);
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_DATA_IN_MSG), 1002);
}

Test(wsframe, errors_are_sticky_and_stop_reading)
{
	uint8_t f[] = "\xC2\x80\x01\x02\x03\x04\x82\x80\x01\x02\x03\x04";
	struct rl_wsf_dec d;
	struct rl_wsf_event ev;

	rl_wsf_dec_init(&d, RL_WSF_SERVER, 100);
	rl_wsf_dec_feed(&d, f, sizeof f - 1);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_ERROR);
	cr_assert_eq(d.err, RL_WSF_ERR_RSV);
	rl_wsf_dec_feed(&d, f + 6, 6);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_ERROR);
	cr_assert_eq(d.err, RL_WSF_ERR_RSV);
}

/* ---- fragmentation and the message limit ------------------------------------------ */

Test(wsframe, fragments_reassemble_around_control_frames)
{
	struct bytes s = {0};
	struct run r;

	put_frame(&s, RL_WSF_OP_BINARY, false, "abc", 3, KEY);
	put_frame(&s, RL_WSF_OP_PING, true, "ping!", 5, KEY);
	put_frame(&s, RL_WSF_OP_CONT, false, "", 0, KEY);
	put_frame(&s, RL_WSF_OP_CONT, false, "def", 3, KEY);
	put_frame(&s, RL_WSF_OP_PONG, true, NULL, 0, KEY);
	put_frame(&s, RL_WSF_OP_PING, true, "again", 5, KEY);
	put_frame(&s, RL_WSF_OP_CONT, true, "g", 1, KEY);
	put_frame(&s, RL_WSF_OP_BINARY, true, "next", 4, KEY);
	run_bytewise(&s, RL_WSF_SERVER, 100, &r);
	cr_assert_eq(r.err, RL_WSF_OK);
	cr_assert_eq(r.n, 5);
	cr_assert_eq(r.it[0].opcode, RL_WSF_OP_PING);
	cr_assert_arr_eq(r.it[0].bytes, "ping!", 5);
	cr_assert_eq(r.it[1].opcode, RL_WSF_OP_PONG);
	cr_assert_eq(r.it[2].opcode, RL_WSF_OP_PING);
	cr_assert_eq(r.it[3].kind, 'M');
	cr_assert_eq(r.it[3].n, 7);
	cr_assert_arr_eq(r.it[3].bytes, "abcdefg", 7);
	cr_assert_eq(r.it[4].n, 4);
	cr_assert_arr_eq(r.it[4].bytes, "next", 4);
	run_free(&r);
	free(s.p);
	RL_ASSERT_NO_LEAKS();
}

Test(wsframe, message_over_the_limit_is_too_big_from_its_header)
{
	uint8_t f[RL_WSF_HDR_MAX];
	size_t n, at;

	/* one frame of limit + 1: refused from the 2 header bytes + key */
	n = rl_wsf_put_hdr(f, RL_WSF_OP_BINARY, true, 101, KEY);
	cr_assert_eq(err_bytewise(f, n, RL_WSF_SERVER, 100, &at), RL_WSF_ERR_TOO_BIG);
	cr_assert_eq(at, n, "no payload byte needed");
	/* exactly the limit is fine */
	struct bytes s = {0};
	uint8_t p[100] = {0};
	put_frame(&s, RL_WSF_OP_BINARY, true, p, 100, KEY);
	cr_assert_eq(err_bytewise(s.p, s.n, RL_WSF_SERVER, 100, NULL), RL_WSF_OK);
	/* fragments add up: 60 + 40 passes, 60 + 41 does not, control frames
	 * between them do not count */
	free(s.p);
	memset(&s, 0, sizeof s);
	put_frame(&s, RL_WSF_OP_BINARY, false, p, 60, KEY);
	put_frame(&s, RL_WSF_OP_PING, true, p, 100, KEY);
	put_frame(&s, RL_WSF_OP_CONT, true, p, 40, KEY);
	cr_assert_eq(err_bytewise(s.p, s.n, RL_WSF_SERVER, 100, NULL), RL_WSF_OK);
	size_t ok_len = s.n;
	n = rl_wsf_put_hdr(f, RL_WSF_OP_CONT, true, 41, KEY);
	s.n -= 2 + 4 + 40;
	put_raw(&s, f, n);
	cr_assert_eq(err_bytewise(s.p, s.n, RL_WSF_SERVER, 100, &at), RL_WSF_ERR_TOO_BIG);
	cr_assert_eq(at, ok_len - 40, "decided at the second fragment's header");
	free(s.p);
	/* a 64-bit length far over the limit */
	n = rl_wsf_put_hdr(f, RL_WSF_OP_BINARY, false, UINT64_MAX >> 1, KEY);
	cr_assert_eq(err_bytewise(f, n, RL_WSF_SERVER, 1 << 20, NULL), RL_WSF_ERR_TOO_BIG);
	/* the spec's mapping: FRAME_TOO_LARGE, then close 1009 */
	cr_assert_eq(rl_wsf_err_relay(RL_WSF_ERR_TOO_BIG), RELAY_ERR_FRAME_TOO_LARGE);
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_TOO_BIG), 1009);
	RL_ASSERT_NO_LEAKS();
}

Test(wsframe, lengths_of_16_and_64_bits_and_the_top_bit)
{
	uint8_t f[RL_WSF_HDR_MAX];

	/* 64-bit length with the top bit set: refused before any limit */
	static const uint8_t top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4};
	cr_assert_eq(err_bytewise(top, sizeof top, RL_WSF_SERVER, UINT64_MAX, NULL),
		     RL_WSF_ERR_LENGTH);
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_LENGTH), 1002);
	/* non-minimal lengths are accepted: 5 as 16 and as 64 bits */
	static const uint8_t l16[] = {0x82, 0xFE, 0, 5, 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'};
	static const uint8_t l64[] = {0x82, 0xFF, 0, 0, 0,   0,	  0,   0,   0,	5,
				      0,    0,	  0, 0, 'h', 'e', 'l', 'l', 'o'};
	cr_assert_eq(err_bytewise(l16, sizeof l16, RL_WSF_SERVER, 100, NULL), RL_WSF_OK);
	cr_assert_eq(err_bytewise(l64, sizeof l64, RL_WSF_SERVER, 100, NULL), RL_WSF_OK);
	/* the encoder picks the shortest form at each boundary */
	static const struct {
		uint64_t len;
		size_t hdr;
	} b[] = {{0, 2}, {125, 2}, {126, 4}, {65535, 4}, {65536, 10}, {1ull << 32, 10}};
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
		cr_assert_eq(rl_wsf_binary_hdr(f, b[i].len), b[i].hdr, "%llu",
			     (unsigned long long)b[i].len);
		cr_assert_eq(f[0], 0x82, "FIN + binary");
		cr_assert_eq(f[1] & 0x80, 0, "unmasked");
		cr_assert_eq(rl_wsf_put_hdr(f, RL_WSF_OP_BINARY, true, b[i].len, KEY),
			     b[i].hdr + 4);
		cr_assert_arr_eq(f + b[i].hdr, KEY, 4);
	}
	rl_wsf_binary_hdr(f, 0x0102030405060708ull);
	cr_assert_arr_eq(f, "\x82\x7F\x01\x02\x03\x04\x05\x06\x07\x08", 10);
	rl_wsf_binary_hdr(f, 300);
	cr_assert_arr_eq(f, "\x82\x7E\x01\x2C", 4);
}

/* ---- close frames ---------------------------------------------------------------- */

/* What the decoder makes of a client close frame with payload <p>/<n>. */
static enum rl_wsf_err close_err(const void *p, size_t n, uint16_t *code)
{
	struct bytes s = {0};
	struct run r;

	put_frame(&s, RL_WSF_OP_CLOSE, true, p, n, KEY);
	run_bytewise(&s, RL_WSF_SERVER, 100, &r);
	enum rl_wsf_err e = r.err;
	if (code != NULL)
		*code = r.n == 1 ? r.it[0].code : 0;
	run_free(&r);
	free(s.p);
	return e;
}

Test(wsframe, close_codes_valid_invalid_and_reserved)
{
	static const uint16_t valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
					 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
	static const uint16_t invalid[] = {0,	 1,    999,  1004, 1005, 1006, 1015,
					   1016, 1100, 2000, 2999, 5000, 65535};
	uint16_t code;

	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		uint8_t p[2] = {(uint8_t)(valid[i] >> 8), (uint8_t)valid[i]};
		cr_assert_eq(close_err(p, 2, &code), RL_WSF_OK, "%u", valid[i]);
		cr_assert_eq(code, valid[i]);
	}
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		uint8_t p[2] = {(uint8_t)(invalid[i] >> 8), (uint8_t)invalid[i]};
		cr_assert_eq(close_err(p, 2, NULL), RL_WSF_ERR_CLOSE_CODE, "%u", invalid[i]);
	}
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_CLOSE_CODE), 1002);
	/* an empty close has no code; one byte is malformed */
	cr_assert_eq(close_err("", 0, &code), RL_WSF_OK);
	cr_assert_eq(code, RL_WSF_CLOSE_NO_STATUS);
	cr_assert_eq(close_err("\x03", 1, NULL), RL_WSF_ERR_CLOSE_PAYLOAD);
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_CLOSE_PAYLOAD), 1002);
	RL_ASSERT_NO_LEAKS();
}

Test(wsframe, close_reason_must_be_utf8)
{
	uint16_t code;
	struct relay_span reason;

	cr_assert_eq(close_err("\x03\xe8"
			       "caf\xc3\xa9",
			       7, NULL),
		     RL_WSF_OK);
	cr_assert_eq(close_err("\x03\xe8"
			       "caf\xc3",
			       6, NULL),
		     RL_WSF_ERR_CLOSE_UTF8, "truncated");
	cr_assert_eq(close_err("\x03\xe8\xed\xa0\x80", 5, NULL), RL_WSF_ERR_CLOSE_UTF8,
		     "surrogate");
	cr_assert_eq(close_err("\x03\xe8\xc0\xaf", 4, NULL), RL_WSF_ERR_CLOSE_UTF8, "overlong");
	cr_assert_eq(rl_wsf_err_close_code(RL_WSF_ERR_CLOSE_UTF8), 1007);
	/* a bad code is reported before a bad reason */
	cr_assert_eq(close_err("\x03\xed\xff", 3, NULL), RL_WSF_ERR_CLOSE_CODE);
	cr_assert_eq(rl_wsf_close_parse((const uint8_t *)"\x0f\xa0"
							 "ok",
					4, &code, &reason),
		     RL_WSF_OK);
	cr_assert_eq(code, 4000);
	cr_assert_eq(reason.n, 2);
	cr_assert_arr_eq(reason.p, "ok", 2);
}

Test(wsframe, close_frame_split_across_feeds_is_gathered)
{
	uint8_t f[RL_WSF_HDR_MAX + 125];
	char reason[121];
	struct rl_wsf_dec d;
	struct rl_wsf_event ev;

	memset(reason, 'r', sizeof reason);
	size_t n = rl_wsf_put_close(f, 1001, reason, sizeof reason, KEY);
	cr_assert_eq(n, 6 + 2 + sizeof reason);
	rl_wsf_dec_init(&d, RL_WSF_SERVER, 100);
	rl_wsf_dec_feed(&d, f, 50);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_NEED_MORE);
	cr_assert(rl_wsf_dec_in_message(&d));
	rl_wsf_dec_feed(&d, f + 50, n - 50);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_CONTROL);
	cr_assert_eq(ev.opcode, RL_WSF_OP_CLOSE);
	cr_assert_eq(ev.close_code, 1001);
	cr_assert_eq(ev.reason.n, sizeof reason);
	cr_assert_arr_eq(ev.reason.p, reason, sizeof reason);
	cr_assert(ev.p < f || ev.p >= f + n, "gathered in the decoder");
	cr_assert(!rl_wsf_dec_in_message(&d));
}

/* The rule as RFC 6455 §7.4 and the IANA registry state it, written apart. */
static bool rfc_close_code_ok(unsigned c)
{
	if (c < 1000 || c >= 5000)
		return false; /* unused */
	if (c >= 3000)
		return true; /* libraries, frameworks, applications */
	if (c == 1004 || c == 1005 || c == 1006 || c == 1015)
		return false; /* reserved; 1005/1006/1015 must never be sent */
	return c <= 1014;     /* 1016-2999: reserved for the protocol */
}

Test(wsframe, close_code_table_matches_the_rfc_for_every_code)
{
	for (unsigned c = 0; c <= 0xFFFF; c++)
		cr_assert_eq(rl_wsf_close_code_valid((uint16_t)c), rfc_close_code_ok(c), "%u", c);
}

Test(wsframe, every_error_has_a_name_and_close_code)
{
	for (unsigned e = RL_WSF_OK + 1; e < RL_WSF_NERRS; e++) {
		uint16_t c = rl_wsf_err_close_code((enum rl_wsf_err)e);
		cr_assert_str_neq(rl_wsf_err_name((enum rl_wsf_err)e), "UNKNOWN");
		cr_assert(c == 1002 || c == 1003 || c == 1007 || c == 1009, "%u: %u", e, c);
		cr_assert_eq(rl_wsf_err_relay((enum rl_wsf_err)e) != RELAY_ERR_NONE,
			     e == RL_WSF_ERR_TOO_BIG, "only TOO_BIG sends a Relay ERROR");
	}
	cr_assert_str_eq(rl_wsf_err_name(RL_WSF_NERRS), "UNKNOWN");
	/* after a fatal Relay ERROR: 1001 shutdown, 1009 too large, else 1008 */
	cr_assert_eq(rl_wsf_close_code_for(RELAY_ERR_SERVER_SHUTDOWN), 1001);
	cr_assert_eq(rl_wsf_close_code_for(RELAY_ERR_FRAME_TOO_LARGE), 1009);
	for (unsigned e = RELAY_ERR_NONE + 1; e < RELAY_ERR_NCODES; e++)
		if (e != RELAY_ERR_SERVER_SHUTDOWN && e != RELAY_ERR_FRAME_TOO_LARGE)
			cr_assert_eq(rl_wsf_close_code_for((enum relay_err)e), 1008, "%s",
				     relay_err_name((enum relay_err)e));
}

/* ---- masking, encoders, round trips -------------------------------------------------- */

Test(wsframe, mask_fast_path_equals_bytewise_for_every_phase)
{
	uint8_t src[80], fast[80], slow[80];
	uint64_t seed = 42;

	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (uint8_t)rl_test_rand(&seed);
	for (unsigned phase = 0; phase < 8; phase++)
		for (size_t off = 0; off < 8; off++)
			for (size_t n = 0; n + off <= 64; n++) {
				memcpy(fast, src, sizeof src);
				memcpy(slow, src, sizeof src);
				rl_wsf_mask(fast + off, n, KEY, phase);
				for (size_t i = 0; i < n; i++)
					slow[off + i] ^= KEY[(phase + i) % 4];
				cr_assert_arr_eq(fast, slow, sizeof src, "phase %u off %zu n %zu",
						 phase, off, n);
			}
}

Test(wsframe, client_frames_round_trip_through_the_server_decoder)
{
	uint8_t f[RL_WSF_HDR_MAX + 125];
	struct rl_wsf_dec d;
	struct rl_wsf_event ev;

	rl_wsf_dec_init(&d, RL_WSF_SERVER, 100);
	size_t n = rl_wsf_put_pong(f, "pong!", 5, KEY);
	cr_assert_eq(n, 2 + 4 + 5);
	cr_assert_eq(f[1], 0x85, "masked, 5");
	rl_wsf_dec_feed(&d, f, n);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_CONTROL);
	cr_assert_eq(ev.opcode, RL_WSF_OP_PONG);
	cr_assert_arr_eq(ev.p, "pong!", 5);
	n = rl_wsf_put_close(f, 0, NULL, 0, KEY);
	rl_wsf_dec_feed(&d, f, n);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_CONTROL);
	cr_assert_eq(ev.close_code, RL_WSF_CLOSE_NO_STATUS);
	cr_assert_eq(ev.n, 0);
}

Test(wsframe, server_frames_round_trip_through_the_client_decoder)
{
	uint8_t f[RL_WSF_HDR_MAX + 300];
	char reason[200];
	struct rl_wsf_dec d;
	struct rl_wsf_event ev;

	rl_wsf_dec_init(&d, RL_WSF_CLIENT, 1000);
	/* a binary message: header written apart, payload referenced */
	size_t h = rl_wsf_binary_hdr(f, 3);
	memcpy(f + h, "\x00\x01\x02", 3);
	rl_wsf_dec_feed(&d, f, h + 3);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert(ev.first && ev.fin);
	cr_assert_arr_eq(ev.p, "\x00\x01\x02", 3);
	/* a pong caps its payload at 125 */
	memset(reason, 'x', sizeof reason);
	size_t n = rl_wsf_put_pong(f, reason, 200, NULL);
	cr_assert_eq(n, 2 + 125);
	rl_wsf_dec_feed(&d, f, n);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_CONTROL);
	cr_assert_eq(ev.n, 125);
	/* a close: code, reason cut to 123 bytes */
	n = rl_wsf_put_close(f, 1008, reason, sizeof reason, NULL);
	cr_assert_eq(n, 2 + 125);
	cr_assert_arr_eq(f, "\x88\x7D\x03\xf0", 4);
	rl_wsf_dec_feed(&d, f, n);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_CONTROL);
	cr_assert_eq(ev.close_code, 1008);
	cr_assert_eq(ev.reason.n, RL_WSF_CLOSE_REASON_MAX);
	/* exact bytes of a short close */
	n = rl_wsf_put_close(f, 1009, "big", 3, NULL);
	cr_assert_eq(n, 7);
	cr_assert_arr_eq(f,
			 "\x88\x05\x03\xf1"
			 "big",
			 7);
}

Test(wsframe, in_message_tracks_frames_and_open_messages)
{
	uint8_t f[64];
	struct rl_wsf_dec d;
	struct rl_wsf_event ev;

	rl_wsf_dec_init(&d, RL_WSF_SERVER, 100);
	cr_assert(!rl_wsf_dec_in_message(&d));
	size_t n = rl_wsf_put_frame(f, RL_WSF_OP_BINARY, false, "ab", 2, KEY);
	rl_wsf_dec_feed(&d, f, 1);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_NEED_MORE);
	cr_assert(rl_wsf_dec_in_message(&d), "one header byte in");
	rl_wsf_dec_feed(&d, f + 1, n - 1);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_NEED_MORE);
	cr_assert(rl_wsf_dec_in_message(&d), "fragmented message open");
	n = rl_wsf_put_frame(f, RL_WSF_OP_PING, true, "", 0, KEY);
	rl_wsf_dec_feed(&d, f, n);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_CONTROL);
	cr_assert(rl_wsf_dec_in_message(&d), "still open after a ping");
	n = rl_wsf_put_frame(f, RL_WSF_OP_CONT, true, "c", 1, KEY);
	rl_wsf_dec_feed(&d, f, n);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert(ev.fin && !ev.first);
	cr_assert(!rl_wsf_dec_in_message(&d));
}

Test(wsframe, reassembler_holds_only_what_arrived_and_nothing_when_idle)
{
	static uint8_t buf[RL_WSF_HDR_MAX + 600];
	struct rl_wsf_dec d;
	struct rl_wsf_event ev;
	struct rl_wsf_asm a = {0};
	struct relay_span msg;

	/* a first fragment announcing 1 MiB, of which 300 bytes arrive */
	size_t h = rl_wsf_put_hdr(buf, RL_WSF_OP_BINARY, false, 1 << 20, KEY);
	memset(buf + h, 'a', 600);
	rl_wsf_dec_init(&d, RL_WSF_SERVER, 2 << 20);
	rl_wsf_dec_feed(&d, buf, h + 300);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert_eq(ev.n, 300);
	cr_assert_eq(ev.left, (1 << 20) - 300);
	cr_assert_eq(rl_wsf_asm_add(&a, &ev, &msg), 0);
	cr_assert_leq(a._cap, 512, "cap %zu", a._cap);
	rl_wsf_dec_feed(&d, buf + h + 300, 300);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert_eq(rl_wsf_asm_add(&a, &ev, &msg), 0);
	cr_assert_leq(a._cap, 1200, "cap %zu", a._cap);
	rl_wsf_asm_reset(&a);
	cr_assert_null(a._buf);
	/* doubling stops at the frame's announced size: 200 then 100 of 300 */
	h = rl_wsf_put_hdr(buf, RL_WSF_OP_BINARY, false, 300, KEY);
	rl_wsf_dec_init(&d, RL_WSF_SERVER, 2 << 20);
	rl_wsf_dec_feed(&d, buf, h + 200);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert_eq(rl_wsf_asm_add(&a, &ev, &msg), 0);
	cr_assert_eq(a._cap, 256);
	rl_wsf_dec_feed(&d, buf + h + 200, 100);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert_eq(rl_wsf_asm_add(&a, &ev, &msg), 0);
	cr_assert_eq(a._cap, 300, "cap %zu", a._cap);
	rl_wsf_asm_reset(&a);

	/* a fragmented message then a whole one: the buffer goes with it */
	uint8_t f[64];
	rl_wsf_dec_init(&d, RL_WSF_SERVER, 100);
	size_t n = rl_wsf_put_frame(f, RL_WSF_OP_BINARY, false, "ab", 2, KEY);
	n += rl_wsf_put_frame(f + n, RL_WSF_OP_CONT, true, "cd", 2, KEY);
	size_t m = rl_wsf_put_frame(f + n, RL_WSF_OP_BINARY, true, "ef", 2, KEY);
	rl_wsf_dec_feed(&d, f, n + m);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert_eq(rl_wsf_asm_add(&a, &ev, &msg), 0);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert_eq(rl_wsf_asm_add(&a, &ev, &msg), 1);
	cr_assert_eq(msg.n, 4);
	cr_assert_arr_eq(msg.p, "abcd", 4);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert_eq(rl_wsf_asm_add(&a, &ev, &msg), 1);
	cr_assert_arr_eq(msg.p, "ef", 2);
	cr_assert_null(a._buf, "idle again: no memory");
	RL_ASSERT_NO_LEAKS();
}

/* ---- the Relay frame inside a binary message ------------------------------------------- */

/* A message of <n> bytes whose length field says <length>, then version,
 * type, flags as given (when they fit). */
static uint8_t *relay_msg(size_t n, uint32_t length, uint8_t version, uint8_t type, uint8_t flags)
{
	uint8_t *m = calloc(1, n + 8);
	cr_assert_not_null(m);
	uint8_t hdr[7] = {(uint8_t)(length >> 24),
			  (uint8_t)(length >> 16),
			  (uint8_t)(length >> 8),
			  (uint8_t)length,
			  version,
			  type,
			  flags};
	memcpy(m, hdr, n < 7 ? n : 7);
	return m;
}

static enum relay_err relay_err_of(size_t n, uint32_t length, uint8_t version, uint8_t type,
				   uint8_t flags, uint32_t max_frame)
{
	struct relay_frame fr;
	uint8_t *m = relay_msg(n, length, version, type, flags);
	enum relay_err e = rl_wsf_relay_decode(m, n, max_frame, &fr);
	free(m);
	return e;
}

Test(wsframe, relay_frame_in_message_checks_run_in_the_spec_order)
{
	const uint32_t max = 100;

	/* 1. shorter than 4 bytes */
	for (size_t n = 0; n < 4; n++)
		cr_assert_eq(relay_err_of(n, 3, 1, RELAY_MSG_HEARTBEAT, 0, max),
			     RELAY_ERR_INVALID_FRAME, "%zu bytes", n);
	/* 2. length field < 3, whatever the size */
	for (uint32_t len = 0; len < 3; len++) {
		cr_assert_eq(relay_err_of(4 + len, len, 1, 5, 0, max), RELAY_ERR_INVALID_FRAME);
		cr_assert_eq(relay_err_of(1000, len, 1, 5, 0, max), RELAY_ERR_INVALID_FRAME,
			     "length < 3 is decided before the size");
	}
	/* 3. length field > max_frame, even when the size does not match */
	cr_assert_eq(relay_err_of(4 + 101, 101, 1, 5, 0, max), RELAY_ERR_FRAME_TOO_LARGE);
	cr_assert_eq(relay_err_of(7, 101, 1, 5, 0, max), RELAY_ERR_FRAME_TOO_LARGE,
		     "too large is decided before the size");
	cr_assert_eq(relay_err_of(7, UINT32_MAX, 9, 99, 0xff, max), RELAY_ERR_FRAME_TOO_LARGE);
	cr_assert_eq(relay_err_of(4 + 100, 100, 1, 5, 0, max), RELAY_ERR_NONE, "exactly max_frame");
	/* 4. size != 4 + length */
	cr_assert_eq(relay_err_of(8, 3, 1, 5, 0, max), RELAY_ERR_INVALID_FRAME, "one byte more");
	cr_assert_eq(relay_err_of(13, 10, 1, 5, 0, max), RELAY_ERR_INVALID_FRAME, "one byte less");
	cr_assert_eq(relay_err_of(8, 3, 2, 99, 0xff, max), RELAY_ERR_INVALID_FRAME,
		     "the size is decided before version, type and flags");
	/* 5. then version, type, flags as on TCP */
	cr_assert_eq(relay_err_of(7, 3, 2, 99, 0xff, max), RELAY_ERR_UNSUPPORTED_VERSION);
	cr_assert_eq(relay_err_of(7, 3, 1, 99, 0xff, max), RELAY_ERR_UNKNOWN_MESSAGE_TYPE);
	cr_assert_eq(relay_err_of(7, 3, 1, 5, 0x03, max), RELAY_ERR_INVALID_FRAME);
	cr_assert_eq(relay_err_of(7, 3, 1, 5, 0x04, max), RELAY_ERR_INVALID_FRAME);
	/* the length-only check leaves the header to the decoder */
	uint8_t *m = relay_msg(7, 3, 2, 99, 0xff);
	cr_assert_eq(rl_wsf_relay_check(m, 7, max), RELAY_ERR_NONE);
	free(m);
	/* max_frame 0 is the default, as for relay_decoder_init */
	cr_assert_eq(
	    relay_err_of(4 + RELAY_DEFAULT_MAX_FRAME + 1, RELAY_DEFAULT_MAX_FRAME + 1, 1, 5, 0, 0),
	    RELAY_ERR_FRAME_TOO_LARGE);
	cr_assert_eq(relay_err_of(4 + RELAY_DEFAULT_MAX_FRAME, RELAY_DEFAULT_MAX_FRAME, 1, 5, 0, 0),
		     RELAY_ERR_NONE);
	RL_ASSERT_NO_LEAKS();
}

Test(wsframe, relay_frame_in_message_is_returned_in_place)
{
	static const char json[] = "{\"room\":\"physics\"}";
	uint8_t m[64];
	struct relay_frame fr;

	size_t n =
	    relay_frame_encode(m, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, json, sizeof json - 1);
	cr_assert_eq(rl_wsf_relay_decode(m, n, 0, &fr), RELAY_ERR_NONE);
	cr_assert_eq(fr.type, RELAY_MSG_JOIN_ROOM);
	cr_assert_eq(fr.flags, RELAY_FLAG_JSON);
	cr_assert_eq(fr.len, sizeof json - 1);
	cr_assert_eq(fr.payload, m + RELAY_FRAME_HDR_BYTES, "no copy");
	/* two frames in one message are one message too many */
	relay_frame_encode(m + n, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
	cr_assert_eq(rl_wsf_relay_decode(m, n + 7, 0, &fr), RELAY_ERR_INVALID_FRAME);
	RL_ASSERT_NO_LEAKS();
}

/* What an output queue of server frames steps over: header + payload, for
 * each length form, from the header alone. */
Test(wsframe, server_frame_size_is_header_plus_payload_for_every_length_form)
{
	static const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 1u << 20};
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		uint8_t h[RL_WSF_SERVER_HDR_MAX];
		size_t n = rl_wsf_binary_hdr(h, lens[i]);
		cr_assert_eq(rl_wsf_binary_hdr_len(lens[i]), n, "%llu",
			     (unsigned long long)lens[i]);
		cr_assert_eq(rl_wsf_server_frame_size(h), n + lens[i], "%llu",
			     (unsigned long long)lens[i]);
	}
	uint8_t close[RL_WSF_HDR_MAX + RL_WSF_CONTROL_MAX];
	size_t k = rl_wsf_put_close(close, 1000, "bye", 3, NULL);
	cr_assert_eq(rl_wsf_server_frame_size(close), k, "a control frame too");
}

/* A caller that stops after an event keeps the rest aside and feeds it
 * again from its own copy: the decoder goes on as if it had never stopped. */
Test(wsframe, the_rest_of_a_feed_can_be_fed_again_from_a_copy)
{
	uint8_t f[64], copy[64];
	size_t a = rl_wsf_put_frame(f, RL_WSF_OP_BINARY, true, "one", 3, KEY);
	size_t n = a + rl_wsf_put_frame(f + a, RL_WSF_OP_PING, true, "two", 3, KEY);
	struct rl_wsf_dec d;
	struct rl_wsf_event ev;
	const uint8_t *rest;

	rl_wsf_dec_init(&d, RL_WSF_SERVER, 1024);
	rl_wsf_dec_feed(&d, f, n);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_DATA);
	cr_assert(ev.n == 3 && memcmp(ev.p, "one", 3) == 0);
	size_t k = rl_wsf_dec_rest(&d, &rest);
	cr_assert(k == n - a && rest == f + a, "the rest is the second frame");
	memcpy(copy, rest, k);
	memset(f, 0, sizeof f); /* the original buffer is gone */
	rl_wsf_dec_feed(&d, copy, k);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_CONTROL);
	cr_assert(ev.opcode == RL_WSF_OP_PING && ev.n == 3 && memcmp(ev.p, "two", 3) == 0);
	cr_assert_eq(rl_wsf_dec_next(&d, &ev), RL_WSF_NEED_MORE);
	cr_assert_eq(rl_wsf_dec_rest(&d, &rest), 0, "nothing left once all is consumed");
}
