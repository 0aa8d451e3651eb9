/* wsframe.c -- RFC 6455 framing: decoder, reassembler, encoders, close codes,
 * the Relay frame inside a binary message. No sockets; see wsframe.h.
 * Threading: pure functions and caller-owned objects; no shared state. */
#include "net/wsframe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WSF_FIN 0x80u
#define WSF_RSV 0x70u
#define WSF_MASK 0x80u
#define WSF_LEN16 126u
#define WSF_LEN64 127u
#define WSF_ASM_MIN 256u /* first reassembly allocation */

/* ---- error and opcode tables ------------------------------------------------ */

static const struct {
	const char *name;
	uint16_t close_code;
	enum relay_err relay; /* sent as an ERROR frame before the close */
} wsf_err_table[RL_WSF_NERRS] = {
    [RL_WSF_OK] = {"OK", 0, RELAY_ERR_NONE},
    [RL_WSF_ERR_RSV] = {"RSV", RL_WSF_CLOSE_PROTOCOL, RELAY_ERR_NONE},
    [RL_WSF_ERR_OPCODE] = {"OPCODE", RL_WSF_CLOSE_PROTOCOL, RELAY_ERR_NONE},
    [RL_WSF_ERR_CONTROL_FRAG] = {"CONTROL_FRAG", RL_WSF_CLOSE_PROTOCOL, RELAY_ERR_NONE},
    [RL_WSF_ERR_CONT_NO_MSG] = {"CONT_NO_MSG", RL_WSF_CLOSE_PROTOCOL, RELAY_ERR_NONE},
    [RL_WSF_ERR_DATA_IN_MSG] = {"DATA_IN_MSG", RL_WSF_CLOSE_PROTOCOL, RELAY_ERR_NONE},
    [RL_WSF_ERR_TEXT] = {"TEXT", RL_WSF_CLOSE_UNSUPPORTED, RELAY_ERR_NONE},
    [RL_WSF_ERR_MASK] = {"MASK", RL_WSF_CLOSE_PROTOCOL, RELAY_ERR_NONE},
    [RL_WSF_ERR_CONTROL_LONG] = {"CONTROL_LONG", RL_WSF_CLOSE_PROTOCOL, RELAY_ERR_NONE},
    [RL_WSF_ERR_LENGTH] = {"LENGTH", RL_WSF_CLOSE_PROTOCOL, RELAY_ERR_NONE},
    [RL_WSF_ERR_TOO_BIG] = {"TOO_BIG", RL_WSF_CLOSE_TOO_BIG, RELAY_ERR_FRAME_TOO_LARGE},
    [RL_WSF_ERR_CLOSE_PAYLOAD] = {"CLOSE_PAYLOAD", RL_WSF_CLOSE_PROTOCOL, RELAY_ERR_NONE},
    [RL_WSF_ERR_CLOSE_CODE] = {"CLOSE_CODE", RL_WSF_CLOSE_PROTOCOL, RELAY_ERR_NONE},
    [RL_WSF_ERR_CLOSE_UTF8] = {"CLOSE_UTF8", RL_WSF_CLOSE_INVALID_DATA, RELAY_ERR_NONE},
};

const char *rl_wsf_err_name(enum rl_wsf_err e)
{
	return (unsigned)e < RL_WSF_NERRS ? wsf_err_table[e].name : "UNKNOWN";
}

uint16_t rl_wsf_err_close_code(enum rl_wsf_err e)
{
	return (unsigned)e < RL_WSF_NERRS ? wsf_err_table[e].close_code : RL_WSF_CLOSE_PROTOCOL;
}

enum relay_err rl_wsf_err_relay(enum rl_wsf_err e)
{
	return (unsigned)e < RL_WSF_NERRS ? wsf_err_table[e].relay : RELAY_ERR_NONE;
}

uint16_t rl_wsf_close_code_for(enum relay_err code)
{
	if (code == RELAY_ERR_SERVER_SHUTDOWN)
		return RL_WSF_CLOSE_GOING_AWAY;
	if (code == RELAY_ERR_FRAME_TOO_LARGE)
		return RL_WSF_CLOSE_TOO_BIG;
	return RL_WSF_CLOSE_POLICY;
}

/* Ranges of close codes a peer may send (RFC 6455 §7.4, IANA registry). */
static const struct {
	uint16_t lo, hi;
} wsf_close_ok[] = {
    {1000, 1003}, /* normal, going away, protocol error, unsupported data */
    {1007, 1014}, /* invalid data .. bad gateway */
    {3000, 4999}, /* registered libraries / private use */
};

bool rl_wsf_close_code_valid(uint16_t code)
{
	for (size_t i = 0; i < sizeof wsf_close_ok / sizeof wsf_close_ok[0]; i++)
		if (code >= wsf_close_ok[i].lo && code <= wsf_close_ok[i].hi)
			return true;
	return false;
}

enum wsf_kind {
	WSF_KIND_BAD = 0, /* reserved opcode */
	WSF_KIND_CONT,
	WSF_KIND_DATA,
	WSF_KIND_CONTROL,
	WSF_NKINDS
};

static const uint8_t wsf_kind[RL_WSF_NOPCODES] = {
    [RL_WSF_OP_CONT] = WSF_KIND_CONT,	 [RL_WSF_OP_TEXT] = WSF_KIND_DATA,
    [RL_WSF_OP_BINARY] = WSF_KIND_DATA,	 [RL_WSF_OP_CLOSE] = WSF_KIND_CONTROL,
    [RL_WSF_OP_PING] = WSF_KIND_CONTROL, [RL_WSF_OP_PONG] = WSF_KIND_CONTROL,
};

/* ---- masking ------------------------------------------------------------------ */

void rl_wsf_mask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t phase)
{
	uint8_t k[8];
	uint64_t k64;

	for (unsigned i = 0; i < 8; i++)
		k[i] = key[(phase + i) & 3];
	memcpy(&k64, k, sizeof k64);
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t v;
		memcpy(&v, p, sizeof v);
		v ^= k64;
		memcpy(p, &v, sizeof v);
	}
	for (size_t i = 0; i < n; i++)
		p[i] ^= k[i];
}

/* ---- decoder ------------------------------------------------------------------ */

void rl_wsf_dec_init(struct rl_wsf_dec *d, enum rl_wsf_role role, uint64_t max_msg)
{
	memset(d, 0, sizeof *d);
	d->_role = (uint8_t)role;
	d->max_msg = max_msg;
	d->_hdr_need = 2;
}

void rl_wsf_dec_feed(struct rl_wsf_dec *d, uint8_t *buf, size_t len)
{
	d->_in = buf;
	d->_in_len = len;
}

bool rl_wsf_dec_in_message(const struct rl_wsf_dec *d)
{
	return d->_hdr_len > 0 || d->_in_payload || d->_msg_op != 0;
}

size_t rl_wsf_dec_rest(const struct rl_wsf_dec *d, const uint8_t **p)
{
	*p = d->_in;
	return d->_in_len;
}

static enum rl_wsf_status wsf_fail(struct rl_wsf_dec *d, enum rl_wsf_err e)
{
	d->err = e;
	d->_in = NULL;
	d->_in_len = 0;
	return RL_WSF_ERROR;
}

/* Checks on the first header byte: everything it alone decides. */
static enum rl_wsf_err wsf_check_b0(const struct rl_wsf_dec *d, uint8_t b0)
{
	uint8_t op = b0 & 0x0F;

	if (b0 & WSF_RSV)
		return RL_WSF_ERR_RSV;
	switch (wsf_kind[op]) {
	case WSF_KIND_CONTROL:
		return (b0 & WSF_FIN) ? RL_WSF_OK : RL_WSF_ERR_CONTROL_FRAG;
	case WSF_KIND_CONT:
		return d->_msg_op != 0 ? RL_WSF_OK : RL_WSF_ERR_CONT_NO_MSG;
	case WSF_KIND_DATA:
		if (d->_msg_op != 0)
			return RL_WSF_ERR_DATA_IN_MSG;
		return op == RL_WSF_OP_TEXT ? RL_WSF_ERR_TEXT : RL_WSF_OK;
	default:
		return RL_WSF_ERR_OPCODE;
	}
}

/* Checks on the second byte; sets the header size. */
static enum rl_wsf_err wsf_check_b1(struct rl_wsf_dec *d, uint8_t b0, uint8_t b1)
{
	bool masked = (b1 & WSF_MASK) != 0;
	uint8_t len7 = b1 & 0x7F;

	if (masked != (d->_role == RL_WSF_SERVER))
		return RL_WSF_ERR_MASK;
	if (wsf_kind[b0 & 0x0F] == WSF_KIND_CONTROL && len7 > RL_WSF_CONTROL_MAX)
		return RL_WSF_ERR_CONTROL_LONG;
	d->_hdr_need = (uint8_t)(2 +
				 (len7 == WSF_LEN16   ? 2
				  : len7 == WSF_LEN64 ? 8
						      : 0) +
				 (masked ? 4 : 0));
	return RL_WSF_OK;
}

static uint64_t wsf_hdr_length(const uint8_t *h)
{
	uint8_t len7 = h[1] & 0x7F;
	uint64_t v = 0;

	if (len7 < WSF_LEN16)
		return len7;
	unsigned n = len7 == WSF_LEN16 ? 2 : 8;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | h[2 + i];
	return v;
}

/* The whole header is in: length checks, then the frame starts. */
static enum rl_wsf_err wsf_start_frame(struct rl_wsf_dec *d)
{
	const uint8_t *h = d->_hdr;
	uint8_t op = h[0] & 0x0F;
	uint64_t len = wsf_hdr_length(h);

	if (len >> 63)
		return RL_WSF_ERR_LENGTH;
	if (wsf_kind[op] != WSF_KIND_CONTROL) {
		uint64_t so_far = op == RL_WSF_OP_CONT ? d->_msg_len : 0;
		if (len > d->max_msg || so_far > d->max_msg - len)
			return RL_WSF_ERR_TOO_BIG;
		if (op != RL_WSF_OP_CONT) {
			d->_msg_yielded = false;
			d->_msg_op = op;
		}
		d->_msg_len = so_far + len;
	}
	if (d->_role == RL_WSF_SERVER)
		memcpy(d->_key, h + d->_hdr_need - 4, sizeof d->_key);
	d->_op = op;
	d->_fin = (h[0] & WSF_FIN) != 0;
	d->_left = len;
	d->_pos = 0;
	d->_ctl_len = 0;
	d->_in_payload = true;
	d->_hdr_len = 0;
	d->_hdr_need = 2;
	return RL_WSF_OK;
}

/* Moves header bytes from the feed, checking each as it lands. Returns
 * RL_WSF_OK with d->_in_payload set once the frame started; RL_WSF_OK with
 * it clear means the feed ran out mid-header. */
static enum rl_wsf_err wsf_take_header(struct rl_wsf_dec *d)
{
	enum rl_wsf_err e = RL_WSF_OK;

	while (d->_in_len > 0 && d->_hdr_len < d->_hdr_need) {
		uint8_t b = *d->_in++;
		d->_in_len--;
		d->_hdr[d->_hdr_len++] = b;
		if (d->_hdr_len == 1)
			e = wsf_check_b0(d, b);
		else if (d->_hdr_len == 2)
			e = wsf_check_b1(d, d->_hdr[0], b);
		if (e != RL_WSF_OK)
			return e;
	}
	if (d->_hdr_len < d->_hdr_need)
		return RL_WSF_OK;
	return wsf_start_frame(d);
}

/* Takes the payload bytes of the current frame that the feed holds now,
 * unmasked in place; sets *p to them. */
static size_t wsf_take_payload(struct rl_wsf_dec *d, uint8_t **p)
{
	size_t n = d->_left < d->_in_len ? (size_t)d->_left : d->_in_len;

	*p = d->_in;
	if (d->_role == RL_WSF_SERVER)
		rl_wsf_mask(d->_in, n, d->_key, d->_pos);
	d->_pos += n;
	d->_left -= n;
	d->_in += n;
	d->_in_len -= n;
	if (d->_left == 0)
		d->_in_payload = false;
	return n;
}

/* Returns DATA with the next piece, or NEED_MORE when there is nothing to
 * hand out (feed empty, or an empty frame that does not end the message). */
static enum rl_wsf_status wsf_data(struct rl_wsf_dec *d, struct rl_wsf_event *ev)
{
	uint8_t *p;
	size_t n = wsf_take_payload(d, &p);
	bool fin = !d->_in_payload && d->_fin;

	if (n == 0 && !fin)
		return RL_WSF_NEED_MORE;
	*ev = (struct rl_wsf_event){
	    .opcode = d->_msg_op,
	    .first = !d->_msg_yielded,
	    .fin = fin,
	    .p = p,
	    .n = n,
	    .left = d->_left,
	};
	d->_msg_yielded = true;
	if (fin) {
		d->_msg_op = 0;
		d->_msg_len = 0;
	}
	return RL_WSF_DATA;
}

enum rl_wsf_err rl_wsf_close_parse(const uint8_t *p, size_t n, uint16_t *code,
				   struct relay_span *reason)
{
	*code = RL_WSF_CLOSE_NO_STATUS;
	*reason = (struct relay_span){p, 0};
	if (n == 0)
		return RL_WSF_OK;
	if (n == 1)
		return RL_WSF_ERR_CLOSE_PAYLOAD;
	*code = (uint16_t)(p[0] << 8 | p[1]);
	if (!rl_wsf_close_code_valid(*code))
		return RL_WSF_ERR_CLOSE_CODE;
	if (!relay_utf8_valid(p + 2, n - 2))
		return RL_WSF_ERR_CLOSE_UTF8;
	*reason = (struct relay_span){p + 2, n - 2};
	return RL_WSF_OK;
}

/* Collects a control frame; CONTROL once it is whole. Its payload stays in
 * the feed when it lay whole there, else it is gathered in d->_ctl. */
static enum rl_wsf_status wsf_control(struct rl_wsf_dec *d, struct rl_wsf_event *ev)
{
	uint8_t *p;
	bool whole = d->_ctl_len == 0 && d->_in_len >= d->_left;
	size_t n = wsf_take_payload(d, &p);

	if (!whole) {
		if (n > 0)
			memcpy(d->_ctl + d->_ctl_len, p, n);
		d->_ctl_len = (uint8_t)(d->_ctl_len + n);
		if (d->_in_payload)
			return RL_WSF_NEED_MORE;
		p = d->_ctl;
		n = d->_ctl_len;
	}
	*ev = (struct rl_wsf_event){.opcode = d->_op, .p = p, .n = n};
	if (d->_op == RL_WSF_OP_CLOSE) {
		enum rl_wsf_err e = rl_wsf_close_parse(p, n, &ev->close_code, &ev->reason);
		if (e != RL_WSF_OK)
			return wsf_fail(d, e);
	}
	return RL_WSF_CONTROL;
}

enum rl_wsf_status rl_wsf_dec_next(struct rl_wsf_dec *d, struct rl_wsf_event *ev)
{
	if (d->err != RL_WSF_OK)
		return RL_WSF_ERROR;
	for (;;) {
		if (!d->_in_payload) {
			enum rl_wsf_err e = wsf_take_header(d);
			if (e != RL_WSF_OK)
				return wsf_fail(d, e);
			if (!d->_in_payload)
				return RL_WSF_NEED_MORE;
		}
		enum rl_wsf_status st =
		    wsf_kind[d->_op] == WSF_KIND_CONTROL ? wsf_control(d, ev) : wsf_data(d, ev);
		/* NEED_MORE with the frame over: an empty non-final data frame */
		if (st != RL_WSF_NEED_MORE || d->_in_payload)
			return st;
	}
}

/* ---- reassembler ---------------------------------------------------------------- */

void rl_wsf_asm_reset(struct rl_wsf_asm *a)
{
	free(a->_buf);
	memset(a, 0, sizeof *a);
}

/* Room for <need> bytes: doubling from WSF_ASM_MIN, never past <limit>. */
static int wsf_asm_reserve(struct rl_wsf_asm *a, size_t need, size_t limit)
{
	if (need <= a->_cap)
		return 0;
	size_t cap = a->_cap ? a->_cap * 2 : WSF_ASM_MIN;
	if (cap < need)
		cap = need;
	if (cap > limit)
		cap = limit;
	uint8_t *b = realloc(a->_buf, cap);
	if (b == NULL)
		return -ENOMEM;
	a->_buf = b;
	a->_cap = cap;
	return 0;
}

int rl_wsf_asm_add(struct rl_wsf_asm *a, const struct rl_wsf_event *ev, struct relay_span *msg)
{
	if (a->_done)
		rl_wsf_asm_reset(a);
	if (ev->first)
		a->_len = 0;
	if (ev->first && ev->fin) {
		*msg = (struct relay_span){ev->p, ev->n};
		return 1;
	}
	size_t need = a->_len + ev->n;
	size_t limit = ev->left > SIZE_MAX - need ? SIZE_MAX : need + (size_t)ev->left;
	if (wsf_asm_reserve(a, need, limit) != 0)
		return -ENOMEM;
	if (ev->n > 0)
		memcpy(a->_buf + a->_len, ev->p, ev->n);
	a->_len = need;
	if (!ev->fin)
		return 0;
	*msg = (struct relay_span){a->_buf, a->_len};
	a->_done = true;
	return 1;
}

/* ---- encoders --------------------------------------------------------------------- */

size_t rl_wsf_put_hdr(uint8_t out[RL_WSF_HDR_MAX], uint8_t opcode, bool fin, uint64_t len,
		      const uint8_t *key)
{
	uint8_t mask = key != NULL ? WSF_MASK : 0;
	size_t n;

	out[0] = (uint8_t)((fin ? WSF_FIN : 0) | (opcode & 0x0F));
	if (len < WSF_LEN16) {
		out[1] = (uint8_t)(mask | len);
		n = 2;
	} else if (len <= 0xFFFF) {
		out[1] = mask | WSF_LEN16;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		n = 4;
	} else {
		out[1] = mask | WSF_LEN64;
		for (unsigned i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	if (key != NULL) {
		memcpy(out + n, key, 4);
		n += 4;
	}
	return n;
}

size_t rl_wsf_binary_hdr(uint8_t out[RL_WSF_SERVER_HDR_MAX], uint64_t len)
{
	uint8_t h[RL_WSF_HDR_MAX];
	size_t n = rl_wsf_put_hdr(h, RL_WSF_OP_BINARY, true, len, NULL);

	memcpy(out, h, n);
	return n;
}

uint64_t rl_wsf_server_frame_size(const uint8_t *h)
{
	uint8_t len7 = h[1] & 0x7F;

	return (len7 < WSF_LEN16 ? 2 : len7 == WSF_LEN16 ? 4 : 10) + wsf_hdr_length(h);
}

size_t rl_wsf_put_frame(uint8_t *out, uint8_t opcode, bool fin, const void *payload, size_t n,
			const uint8_t *key)
{
	size_t h = rl_wsf_put_hdr(out, opcode, fin, n, key);

	if (n > 0)
		memcpy(out + h, payload, n);
	if (key != NULL)
		rl_wsf_mask(out + h, n, key, 0);
	return h + n;
}

size_t rl_wsf_put_pong(uint8_t *out, const void *payload, size_t n, const uint8_t *key)
{
	if (n > RL_WSF_CONTROL_MAX)
		n = RL_WSF_CONTROL_MAX;
	return rl_wsf_put_frame(out, RL_WSF_OP_PONG, true, payload, n, key);
}

size_t rl_wsf_put_close(uint8_t *out, uint16_t code, const char *reason, size_t reason_len,
			const uint8_t *key)
{
	uint8_t p[RL_WSF_CONTROL_MAX];
	size_t n = 0;

	if (code != 0) {
		if (reason_len > RL_WSF_CLOSE_REASON_MAX)
			reason_len = RL_WSF_CLOSE_REASON_MAX;
		p[0] = (uint8_t)(code >> 8);
		p[1] = (uint8_t)code;
		if (reason_len > 0)
			memcpy(p + 2, reason, reason_len);
		n = 2 + reason_len;
	}
	return rl_wsf_put_frame(out, RL_WSF_OP_CLOSE, true, p, n, key);
}

/* ---- the Relay frame inside a binary message ------------------------------------- */

/* As relay_decoder_init does: 0 is the default, and 4 + length must fit. */
static uint32_t wsf_max_frame(uint32_t max_frame)
{
	if (max_frame == 0)
		return RELAY_DEFAULT_MAX_FRAME;
	if (max_frame > UINT32_MAX - RELAY_FRAME_LEN_BYTES)
		return UINT32_MAX - RELAY_FRAME_LEN_BYTES;
	return max_frame;
}

enum relay_err rl_wsf_relay_check(const uint8_t *msg, size_t n, uint32_t max_frame)
{
	if (n < RELAY_FRAME_LEN_BYTES)
		return RELAY_ERR_INVALID_FRAME;
	uint32_t length =
	    (uint32_t)msg[0] << 24 | (uint32_t)msg[1] << 16 | (uint32_t)msg[2] << 8 | msg[3];
	enum relay_err e = relay_frame_check_length(length, wsf_max_frame(max_frame));
	if (e != RELAY_ERR_NONE)
		return e;
	if (n != (size_t)RELAY_FRAME_LEN_BYTES + length)
		return RELAY_ERR_INVALID_FRAME;
	return RELAY_ERR_NONE;
}

enum relay_err rl_wsf_relay_decode(const uint8_t *msg, size_t n, uint32_t max_frame,
				   struct relay_frame *out)
{
	enum relay_err e = rl_wsf_relay_check(msg, n, max_frame);
	struct relay_decoder dec;

	if (e != RELAY_ERR_NONE)
		return e;
	/* one whole frame in one feed: the decoder returns it in place and
	 * allocates nothing */
	relay_decoder_init(&dec, wsf_max_frame(max_frame));
	relay_decoder_feed(&dec, msg, n);
	switch (relay_decoder_next(&dec, out)) {
	case RELAY_DECODE_FRAME:
		e = RELAY_ERR_NONE;
		break;
	case RELAY_DECODE_ERROR:
		e = dec.err;
		break;
	default:
		e = RELAY_ERR_INVALID_FRAME; /* unreachable: the size was checked */
		break;
	}
	relay_decoder_free(&dec);
	return e;
}
