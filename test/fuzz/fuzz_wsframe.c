/* fuzz_wsframe.c -- libFuzzer target for RFC 6455 framing (net/wsframe.c).
 * The first input byte picks the role and the message limit; the rest is
 * the peer's byte stream. Checks: the same messages, control frames and
 * error whatever the chunking (whole, byte by byte, random pieces, each a
 * private copy poisoned after use); the same again from a deliberately
 * simple whole-buffer reference decoder; every event within its limits; the
 * decoded items re-encoded as the other side would send them decode to the
 * same items; and each message's Relay-frame verdict equal to the spec's
 * order of checks written out here.
 *
 *   build-fuzz/test/fuzz/fuzz-wsframe -max_total_time=30 CORPUS test/data/wsframe
 *
 * Threading: single-threaded (libFuzzer calls one input at a time). */
#include "fuzz.h"
#include "net/wsframe.h"

#include <string.h>

#define MAX_ITEMS 512

struct item {
	uint8_t kind; /* 'M' message, 'C' control */
	uint8_t opcode;
	uint16_t code;
	uint32_t n;
	uint64_t hash;
};

struct out {
	size_t n;
	struct item it[MAX_ITEMS];
	enum rl_wsf_err err;
};

static struct out out_a, out_b;

static const uint64_t max_msgs[8] = {0, 1, 4, 7, 64, 125, 1000, UINT64_MAX >> 1};

static void add_item(struct out *o, uint8_t kind, uint8_t op, uint16_t code, const uint8_t *p,
		     size_t n)
{
	FUZZ_CHECK(o->n < MAX_ITEMS);
	o->it[o->n++] = (struct item){kind, op, code, (uint32_t)n, fuzz_fnv(p, n)};
}

/* The spec's checks on a whole binary message, written out independently. */
static void check_relay(const uint8_t *m, size_t n, uint32_t max_frame)
{
	struct relay_frame fr;
	enum relay_err want, got = rl_wsf_relay_decode(m, n, max_frame, &fr);
	uint32_t len = n >= 4 ? (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | m[2] << 8 | m[3] : 0;

	if (n < 4 || len < 3)
		want = RELAY_ERR_INVALID_FRAME;
	else if (len > max_frame)
		want = RELAY_ERR_FRAME_TOO_LARGE;
	else if (n != 4 + (size_t)len)
		want = RELAY_ERR_INVALID_FRAME;
	else
		want = relay_frame_check_header(m[4], m[5], m[6]);
	FUZZ_CHECK(got == want);
	if (got == RELAY_ERR_NONE)
		FUZZ_CHECK(fr.payload == m + 7 && fr.len == len - 3 && fr.type == m[5]);
	/* the length-only check agrees, and leaves the header to the decoder */
	enum relay_err lengths = rl_wsf_relay_check(m, n, max_frame);
	FUZZ_CHECK(lengths != RELAY_ERR_NONE ? lengths == got
					     : got == relay_frame_check_header(m[4], m[5], m[6]));
}

/* Takes the events of one feed <chunk>/<n>. */
static void take(struct rl_wsf_dec *d, struct rl_wsf_asm *a, struct out *o, const uint8_t *chunk,
		 size_t n, bool *want_first, uint64_t *msg_len)
{
	struct rl_wsf_event ev;
	struct relay_span msg;
	enum rl_wsf_status st;

	while ((st = rl_wsf_dec_next(d, &ev)) != RL_WSF_NEED_MORE) {
		if (st == RL_WSF_ERROR) {
			FUZZ_CHECK(d->err > RL_WSF_OK && d->err < RL_WSF_NERRS);
			FUZZ_CHECK(rl_wsf_dec_next(d, &ev) == RL_WSF_ERROR);
			o->err = d->err;
			return;
		}
		if (st == RL_WSF_CONTROL) {
			FUZZ_CHECK(ev.n <= RL_WSF_CONTROL_MAX);
			FUZZ_CHECK(ev.opcode >= RL_WSF_OP_CLOSE && ev.opcode <= RL_WSF_OP_PONG);
			if (ev.opcode == RL_WSF_OP_CLOSE) {
				FUZZ_CHECK(ev.n == 0 ? ev.close_code == RL_WSF_CLOSE_NO_STATUS
						     : rl_wsf_close_code_valid(ev.close_code));
				FUZZ_CHECK(relay_utf8_valid(ev.reason.p, ev.reason.n));
			}
			add_item(o, 'C', ev.opcode, ev.close_code, ev.p, ev.n);
			continue;
		}
		FUZZ_CHECK(st == RL_WSF_DATA && ev.opcode == RL_WSF_OP_BINARY);
		/* pieces lie in the feed, unmasked in place */
		FUZZ_CHECK(ev.n == 0 || (ev.p >= chunk && ev.p + ev.n <= chunk + n));
		FUZZ_CHECK(ev.first == *want_first);
		FUZZ_CHECK(ev.n > 0 || ev.fin);
		*want_first = ev.fin;
		*msg_len = (ev.first ? 0 : *msg_len) + ev.n;
		FUZZ_CHECK(*msg_len <= d->max_msg);
		int rc = rl_wsf_asm_add(a, &ev, &msg);
		FUZZ_CHECK(rc == (ev.fin ? 1 : 0));
		if (rc == 1) {
			FUZZ_CHECK(msg.n == *msg_len);
			add_item(o, 'M', ev.opcode, 0, msg.p, msg.n);
			check_relay(msg.p, msg.n, 64);
			check_relay(msg.p, msg.n, RELAY_DEFAULT_MAX_FRAME);
		}
	}
	FUZZ_CHECK(d->_in_len == 0);
}

static void run(const uint8_t *data, size_t size, enum rl_wsf_role role, uint64_t max_msg,
		unsigned mode, struct out *o)
{
	struct rl_wsf_dec d;
	struct rl_wsf_asm a = {0};
	uint64_t seed = (fuzz_fnv(data, size) ^ (mode * 0x9E3779B97F4A7C15ull)) | 1;
	bool want_first = true;
	uint64_t msg_len = 0;

	o->n = 0;
	o->err = RL_WSF_OK;
	rl_wsf_dec_init(&d, role, max_msg);
	for (size_t off = 0; off < size && o->err == RL_WSF_OK;) {
		size_t n = fuzz_chunk(mode, &seed, size - off);
		uint8_t *chunk = malloc(n ? n : 1);
		FUZZ_CHECK(chunk != NULL);
		memcpy(chunk, data + off, n);
		rl_wsf_dec_feed(&d, chunk, n);
		take(&d, &a, o, chunk, n, &want_first, &msg_len);
		memset(chunk, 0xA5, n);
		free(chunk);
		off += n;
	}
	rl_wsf_asm_reset(&a);
}

static void same(const struct out *a, const struct out *b)
{
	FUZZ_CHECK(a->n == b->n);
	FUZZ_CHECK(a->err == b->err);
	for (size_t i = 0; i < a->n; i++)
		FUZZ_CHECK(memcmp(&a->it[i], &b->it[i], sizeof a->it[i]) == 0);
}

/* ---- reference decoder --------------------------------------------------------
 * Whole buffer, frame by frame, every check written from RFC 6455 and the
 * header's order (byte 0, byte 1, full header, payload). Stops without an
 * error where the input ends mid-frame. */

static bool ref_control(uint8_t op)
{
	return op >= 8;
}

static enum rl_wsf_err ref_b0(uint8_t b0, bool open)
{
	uint8_t op = b0 & 15;
	if (b0 & 0x70)
		return RL_WSF_ERR_RSV;
	if (!(op <= 2 || (op >= 8 && op <= 10)))
		return RL_WSF_ERR_OPCODE;
	if (ref_control(op))
		return (b0 & 0x80) ? RL_WSF_OK : RL_WSF_ERR_CONTROL_FRAG;
	if (op == 0)
		return open ? RL_WSF_OK : RL_WSF_ERR_CONT_NO_MSG;
	if (open)
		return RL_WSF_ERR_DATA_IN_MSG;
	return op == 1 ? RL_WSF_ERR_TEXT : RL_WSF_OK;
}

static void ref_decode(uint8_t *p, size_t size, enum rl_wsf_role role, uint64_t max_msg,
		       struct out *o)
{
	bool open = false;
	uint64_t msg_len = 0;
	uint8_t *msg = malloc(size + 1);
	size_t i = 0;

	FUZZ_CHECK(msg != NULL);
	o->n = 0;
	o->err = RL_WSF_OK;
	while (i < size) {
		uint8_t b0 = p[i], op = b0 & 15;
		if ((o->err = ref_b0(b0, open)) != RL_WSF_OK || i + 1 == size)
			break;
		uint8_t b1 = p[i + 1], len7 = b1 & 127;
		bool masked = b1 & 128;
		if (masked != (role == RL_WSF_SERVER)) {
			o->err = RL_WSF_ERR_MASK;
			break;
		}
		if (ref_control(op) && len7 > 125) {
			o->err = RL_WSF_ERR_CONTROL_LONG;
			break;
		}
		size_t ext = len7 == 126   ? 2
			     : len7 == 127 ? 8
					   : 0,
		       hdr = 2 + ext + (masked ? 4 : 0);
		if (size - i < hdr)
			break;
		uint64_t len = len7;
		if (ext > 0) {
			len = 0;
			for (size_t k = 0; k < ext; k++)
				len = len << 8 | p[i + 2 + k];
		}
		if (len >> 63) {
			o->err = RL_WSF_ERR_LENGTH;
			break;
		}
		if (!ref_control(op) && (op == 0 ? msg_len : 0) + len > max_msg) {
			o->err = RL_WSF_ERR_TOO_BIG;
			break;
		}
		if (len > size - i - hdr)
			break;
		uint8_t *pl = p + i + hdr;
		for (uint64_t k = 0; masked && k < len; k++)
			pl[k] ^= p[i + hdr - 4 + (k & 3)];
		i += hdr + (size_t)len;
		if (ref_control(op)) {
			uint16_t code = 0; /* as the decoder: only a close has one */
			struct relay_span reason;
			if (op == 8 && (o->err = rl_wsf_close_parse(pl, (size_t)len, &code,
								    &reason)) != RL_WSF_OK)
				break;
			add_item(o, 'C', op, code, pl, (size_t)len);
			continue;
		}
		if (op != 0)
			msg_len = 0;
		memcpy(msg + msg_len, pl, (size_t)len);
		msg_len += len;
		open = !(b0 & 0x80);
		if (!open) {
			add_item(o, 'M', RL_WSF_OP_BINARY, 0, msg, (size_t)msg_len);
			msg_len = 0;
		}
	}
	free(msg);
}

/* ---- re-encoding: what the other side would send -------------------------------- */

/* Decodes <data> again, re-encodes its items the way the other side would
 * send them (messages unfragmented, the server's header written apart),
 * and decodes that with the other role: the items of <want>, no error. */
static void round_trip(const uint8_t *data, size_t size, enum rl_wsf_role role, uint64_t max_msg,
		       const struct out *want)
{
	static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
	const uint8_t *k = role == RL_WSF_SERVER ? NULL : key; /* the other side's masking */
	struct rl_wsf_dec d;
	struct rl_wsf_asm a = {0};
	struct out *o = &out_b;
	size_t cap = want->n * (RL_WSF_HDR_MAX + RL_WSF_CONTROL_MAX) + size + 16, n = 0;
	uint8_t *buf = malloc(cap), *copy = malloc(size + 1);

	FUZZ_CHECK(buf != NULL && copy != NULL);
	/* decode again to get the items' bytes back */
	memcpy(copy, data, size);
	rl_wsf_dec_init(&d, role, max_msg);
	rl_wsf_dec_feed(&d, copy, size);
	struct rl_wsf_event ev;
	struct relay_span msg;
	enum rl_wsf_status st;
	while ((st = rl_wsf_dec_next(&d, &ev)) == RL_WSF_DATA || st == RL_WSF_CONTROL) {
		if (st == RL_WSF_CONTROL) {
			if (ev.opcode == RL_WSF_OP_CLOSE)
				n += rl_wsf_put_close(buf + n, ev.n ? ev.close_code : 0,
						      (const char *)ev.reason.p, ev.reason.n, k);
			else
				n += rl_wsf_put_frame(buf + n, ev.opcode, true, ev.p, ev.n, k);
		} else if (rl_wsf_asm_add(&a, &ev, &msg) == 1) {
			/* the server form: a header apart from the payload */
			uint8_t h[RL_WSF_HDR_MAX];
			size_t hn = k ? rl_wsf_put_hdr(h, RL_WSF_OP_BINARY, true, msg.n, k)
				      : rl_wsf_binary_hdr(h, msg.n);
			memcpy(buf + n, h, hn);
			memcpy(buf + n + hn, msg.p, msg.n);
			if (k)
				rl_wsf_mask(buf + n + hn, msg.n, k, 0);
			n += hn + msg.n;
		}
		FUZZ_CHECK(n <= cap);
	}
	rl_wsf_asm_reset(&a);
	free(copy);
	/* the other role must see the same items, and no error */
	enum rl_wsf_role other = role == RL_WSF_SERVER ? RL_WSF_CLIENT : RL_WSF_SERVER;
	run(buf, n, other, max_msg, 0, o);
	FUZZ_CHECK(o->err == RL_WSF_OK && o->n == want->n);
	for (size_t i = 0; i < o->n; i++)
		FUZZ_CHECK(memcmp(&o->it[i], &want->it[i], sizeof o->it[i]) == 0);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	enum rl_wsf_role role = data[0] & 1 ? RL_WSF_CLIENT : RL_WSF_SERVER;
	uint64_t max_msg = max_msgs[(data[0] >> 1) & 7];
	data++;
	size--;

	run(data, size, role, max_msg, 0, &out_a);
	for (unsigned mode = size <= 4096 ? 1 : 2; mode < 5; mode++) {
		run(data, size, role, max_msg, mode, &out_b);
		same(&out_a, &out_b);
	}
	uint8_t *copy = malloc(size + 1);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, data, size);
	ref_decode(copy, size, role, max_msg, &out_b);
	free(copy);
	same(&out_a, &out_b);
	round_trip(data, size, role, max_msg, &out_a);
	return 0;
}
