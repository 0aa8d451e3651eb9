/* fuzz_protocol.c -- libFuzzer target: arbitrary bytes through the frame
 * decoder (at once and in chunkings derived from the input: same frames, same
 * error), the JSON validator with field extraction (spans inside the input,
 * extracted values consistent with the string decoder), the name checks, the
 * JSON writer (output valid, length predicted, round trip) and the binary
 * envelopes (parse then encode gives the same bytes).
 *
 *   build-fuzz/test/fuzz/fuzz-protocol -max_total_time=60 CORPUS_DIR test/data/json/accept ...
 *
 * Threading: single-threaded (libFuzzer calls one input at a time).
 */
#include "relay/protocol.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- decoder ------------------------------------------------------------ */

#define FUZZ_MAX_FRAMES 4096

/* What one decoding of the input produced. Payload bytes are compared through
 * a hash; lengths, types and flags directly. */
struct dec_out {
	size_t nframes;
	struct {
		uint8_t type, flags;
		uint32_t len;
		uint64_t hash;
	} f[FUZZ_MAX_FRAMES];
	enum relay_err err;
	size_t pending;
};

static struct dec_out out_a, out_b;

static void dec_take_frames(struct relay_decoder *d, struct dec_out *o, const uint8_t *in,
			    size_t in_len)
{
	struct relay_frame f;
	enum relay_decode_status st;

	while ((st = relay_decoder_next(d, &f)) == RELAY_DECODE_FRAME) {
		FUZZ_CHECK(f.version == RELAY_PROTOCOL_VERSION);
		FUZZ_CHECK(relay_frame_check_header(f.version, f.type, f.flags) == RELAY_ERR_NONE);
		FUZZ_CHECK(f.len + 3u <= d->max_frame);
		/* whole frames inside the fed bytes are not copied */
		if (f.payload >= in && f.payload <= in + in_len)
			FUZZ_CHECK(f.payload + f.len <= in + in_len);
		FUZZ_CHECK(o->nframes < FUZZ_MAX_FRAMES);
		o->f[o->nframes].type = f.type;
		o->f[o->nframes].flags = f.flags;
		o->f[o->nframes].len = f.len;
		o->f[o->nframes].hash = fuzz_fnv(f.payload, f.len);
		o->nframes++;
		if (f.flags & RELAY_FLAG_JSON)
			(void)relay_json_parse(f.payload, f.len, NULL, 0, NULL);
	}
	if (st == RELAY_DECODE_ERROR) {
		FUZZ_CHECK(d->err != RELAY_ERR_NONE && relay_err_is_fatal(d->err));
		o->err = d->err;
	}
	FUZZ_CHECK(st != RELAY_DECODE_NOMEM || d->err == RELAY_ERR_NONE);
}

/* Feeds <data> in chunks: <mode> 0 = at once, 1 = byte by byte, else sizes
 * drawn from a generator seeded by the input and <mode>. Every chunk is a
 * private copy that is poisoned after use, so a decoder that kept pointers
 * into it would be caught by the payload hashes (or by ASan). */
static void dec_run(const uint8_t *data, size_t size, uint32_t max_frame, unsigned mode,
		    struct dec_out *o)
{
	struct relay_decoder d;
	uint64_t seed = (fuzz_fnv(data, size) ^ (mode * 0x9E3779B97F4A7C15ull)) | 1;

	memset(o, 0, offsetof(struct dec_out, f));
	o->err = RELAY_ERR_NONE;
	relay_decoder_init(&d, max_frame);
	for (size_t off = 0; off < size && o->err == RELAY_ERR_NONE;) {
		size_t n = fuzz_chunk(mode, &seed, size - off);
		uint8_t *chunk = malloc(n ? n : 1);
		FUZZ_CHECK(chunk != NULL);
		memcpy(chunk, data + off, n);
		relay_decoder_feed(&d, chunk, n);
		dec_take_frames(&d, o, chunk, n);
		memset(chunk, 0xA5, n);
		free(chunk);
		off += n;
	}
	o->pending = relay_decoder_pending(&d);
	if (o->err == RELAY_ERR_NONE)
		FUZZ_CHECK(o->pending < 4 + (size_t)max_frame);
	relay_decoder_free(&d);
}

static void dec_same(const struct dec_out *a, const struct dec_out *b)
{
	FUZZ_CHECK(a->nframes == b->nframes);
	FUZZ_CHECK(a->err == b->err);
	if (a->err == RELAY_ERR_NONE)
		FUZZ_CHECK(a->pending == b->pending);
	for (size_t i = 0; i < a->nframes; i++) {
		FUZZ_CHECK(a->f[i].type == b->f[i].type);
		FUZZ_CHECK(a->f[i].flags == b->f[i].flags);
		FUZZ_CHECK(a->f[i].len == b->f[i].len);
		FUZZ_CHECK(a->f[i].hash == b->f[i].hash);
	}
}

static void fuzz_decoder(const uint8_t *data, size_t size)
{
	/* a small max_frame so fuzzed lengths can complete, and the default */
	static const uint32_t maxes[] = {64, RELAY_DEFAULT_MAX_FRAME};
	for (size_t m = 0; m < sizeof maxes / sizeof maxes[0]; m++) {
		dec_run(data, size, maxes[m], 0, &out_a);
		/* byte by byte only for small inputs, to keep runs fast */
		for (unsigned mode = size <= 4096 ? 1 : 2; mode < 5; mode++) {
			dec_run(data, size, maxes[m], mode, &out_b);
			dec_same(&out_a, &out_b);
		}
	}
}

/* ---- JSON ------------------------------------------------------------------ */

static bool span_inside(struct relay_span s, const uint8_t *p, size_t n)
{
	return s.p >= p && s.n <= n && s.p + s.n <= p + n;
}

static bool json_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void check_field(const struct relay_json_field *f, const uint8_t *p, size_t n)
{
	if (f->kind == RELAY_JSON_NONE)
		return;
	FUZZ_CHECK(f->raw.n > 0 && span_inside(f->raw, p, n));
	FUZZ_CHECK(!json_ws(f->raw.p[0]) && !json_ws(f->raw.p[f->raw.n - 1]));
	/* the value's bytes are a JSON text of the same kind on their own */
	struct relay_json_result res;
	FUZZ_CHECK(relay_json_parse(f->raw.p, f->raw.n, NULL, 0, &res) == 0);
	FUZZ_CHECK(res.top == f->kind);
	if (f->kind != RELAY_JSON_STRING) {
		FUZZ_CHECK(f->dec_len == 0 && !f->lone_surrogate);
		return;
	}
	FUZZ_CHECK(f->raw.p[0] == '"' && f->raw.p[f->raw.n - 1] == '"');
	/* the in-pass decoding equals the string decoder's */
	uint8_t *buf = malloc(f->dec_len + 1);
	FUZZ_CHECK(buf != NULL);
	long r = relay_json_string_decode(f->raw, buf, f->dec_len + 1);
	if (f->lone_surrogate) {
		FUZZ_CHECK(r == -1);
	} else {
		FUZZ_CHECK(r >= 0 && (size_t)r == f->dec_len);
		size_t shown = f->dec_len < f->cap ? f->dec_len : f->cap;
		FUZZ_CHECK(f->buf == NULL || memcmp(buf, f->buf, shown) == 0);
		/* decoded strings without lone surrogates are valid UTF-8 */
		FUZZ_CHECK(relay_utf8_valid(buf, f->dec_len));
	}
	free(buf);
}


/* ---- reference validator ----------------------------------------------------
 * A deliberately different JSON validator (recursive descent, bounded by the
 * depth limit; UTF-8 decoded to code points and judged by value) to compare
 * verdicts with json.c's table-driven one-pass parser. */

struct ref {
	const uint8_t *p, *end;
	int depth;
};

static bool ref_value(struct ref *r);

static void ref_ws(struct ref *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static bool ref_utf8(struct ref *r)
{
	uint8_t c = *r->p;
	int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
	if (n < 0 || c >= 0xF8 || r->end - r->p < n + 1)
		return false;
	uint32_t cp = c & (0x3F >> n);
	for (int i = 1; i <= n; i++) {
		if ((r->p[i] & 0xC0) != 0x80)
			return false;
		cp = cp << 6 | (r->p[i] & 0x3F);
	}
	static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
	if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return false;
	r->p += n + 1;
	return true;
}

static bool ref_hex(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool ref_string(struct ref *r)
{
	r->p++; /* opening quote */
	while (r->p < r->end) {
		uint8_t c = *r->p;
		if (c == '"') {
			r->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (r->end - r->p < 2)
				return false;
			uint8_t e = r->p[1];
			if (e == 'u') {
				if (r->end - r->p < 6)
					return false;
				for (int i = 2; i < 6; i++)
					if (!ref_hex(r->p[i]))
						return false;
				r->p += 6;
			} else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' ||
				   e == 'n' || e == 'r' || e == 't') {
				r->p += 2;
			} else {
				return false;
			}
		} else if (c >= 0x80) {
			if (!ref_utf8(r))
				return false;
		} else {
			r->p++;
		}
	}
	return false;
}

static bool ref_digits(struct ref *r)
{
	const uint8_t *start = r->p;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
		r->p++;
	return r->p > start;
}

static bool ref_number(struct ref *r)
{
	if (*r->p == '-')
		r->p++;
	if (r->p == r->end)
		return false;
	if (*r->p == '0')
		r->p++;
	else if (!ref_digits(r))
		return false;
	if (r->p < r->end && *r->p == '.') {
		r->p++;
		if (!ref_digits(r))
			return false;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (!ref_digits(r))
			return false;
	}
	return true;
}

static bool ref_word(struct ref *r, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
		return false;
	r->p += n;
	return true;
}

static bool ref_container(struct ref *r, bool object)
{
	if (++r->depth > RELAY_JSON_MAX_DEPTH)
		return false;
	r->p++;
	ref_ws(r);
	if (r->p < r->end && *r->p == (object ? '}' : ']')) {
		r->p++;
		r->depth--;
		return true;
	}
	for (;;) {
		if (object) {
			ref_ws(r);
			if (r->p == r->end || *r->p != '"' || !ref_string(r))
				return false;
			ref_ws(r);
			if (r->p == r->end || *r->p != ':')
				return false;
			r->p++;
		}
		if (!ref_value(r))
			return false;
		ref_ws(r);
		if (r->p == r->end)
			return false;
		if (*r->p == ',') {
			r->p++;
			continue;
		}
		if (*r->p != (object ? '}' : ']'))
			return false;
		r->p++;
		r->depth--;
		return true;
	}
}

static bool ref_value(struct ref *r)
{
	ref_ws(r);
	if (r->p == r->end)
		return false;
	switch (*r->p) {
	case '{': return ref_container(r, true);
	case '[': return ref_container(r, false);
	case '"': return ref_string(r);
	case 't': return ref_word(r, "true");
	case 'f': return ref_word(r, "false");
	case 'n': return ref_word(r, "null");
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
			return ref_number(r);
		return false;
	}
}

static bool ref_valid(const uint8_t *p, size_t n)
{
	struct ref r = {p, p + n, 0};
	if (!ref_value(&r))
		return false;
	ref_ws(&r);
	return r.p == r.end;
}

static void fuzz_json(const uint8_t *data, size_t size)
{
	uint8_t room[64], user[8];
	struct relay_json_field f[4] = {
		{.key = "room", .buf = room, .cap = sizeof room},
		{.key = "content"},
		{.key = "userId", .buf = user, .cap = sizeof user},
		{.key = ""},
	};
	struct relay_json_result res, res0;
	int rc = relay_json_parse(data, size, f, 4, &res);
	int rc0 = relay_json_parse(data, size, NULL, 0, &res0);

	FUZZ_CHECK(rc == rc0);
	FUZZ_CHECK((rc == 0) == ref_valid(data, size));
	if (rc != 0) {
		FUZZ_CHECK(rc == -1 && res.err_off <= size && res.err_msg != NULL);
		FUZZ_CHECK(res.err_off == res0.err_off);
		return;
	}
	FUZZ_CHECK(size > 0 && res.top != RELAY_JSON_NONE && res.top == res0.top);
	for (int i = 0; i < 4; i++) {
		if (res.top != RELAY_JSON_OBJECT)
			FUZZ_CHECK(f[i].kind == RELAY_JSON_NONE);
		check_field(&f[i], data, size);
	}
	if (f[0].kind == RELAY_JSON_STRING && !f[0].lone_surrogate && f[0].dec_len <= sizeof room) {
		struct relay_span name;
		if (relay_room_name_check(room, f[0].dec_len, &name) == RELAY_ERR_NONE)
			FUZZ_CHECK(name.n >= 1 && name.n <= RELAY_ROOM_MAX_BYTES &&
				   span_inside(name, room, f[0].dec_len));
	}
}

/* ---- names, writer, envelopes ---------------------------------------------- */

static void fuzz_names(const uint8_t *data, size_t size)
{
	struct relay_span name;
	if (relay_room_name_check(data, size, &name) == RELAY_ERR_NONE) {
		FUZZ_CHECK(name.n >= 1 && name.n <= RELAY_ROOM_MAX_BYTES);
		FUZZ_CHECK(span_inside(name, data, size));
		FUZZ_CHECK(relay_utf8_valid(name.p, name.n));
	}
	if (relay_userid_check(data, size) == RELAY_ERR_NONE)
		FUZZ_CHECK(size >= 1 && size <= RELAY_USERID_MAX_BYTES && relay_utf8_valid(data, size));
}

static void fuzz_writer(const uint8_t *data, size_t size)
{
	size_t cap = 6 * size + 16;
	uint8_t *buf = malloc(cap), *back = malloc(size + 1);
	struct relay_jw w;

	FUZZ_CHECK(buf != NULL && back != NULL);
	relay_jw_init(&w, buf, cap);
	relay_jw_str(&w, data, size);
	FUZZ_CHECK(!w.overflow);
	FUZZ_CHECK(w.len == relay_jw_str_len(data, size));
	FUZZ_CHECK(relay_json_parse(buf, w.len, NULL, 0, NULL) == 0);
	long r = relay_json_string_decode((struct relay_span){buf, w.len}, back, size + 1);
	FUZZ_CHECK(r >= 0);
	if (relay_utf8_valid(data, size))
		FUZZ_CHECK((size_t)r == size && memcmp(back, data, size) == 0);
	/* a buffer one byte short overflows and never writes past its end */
	if (w.len > 0) {
		relay_jw_init(&w, buf, w.len - 1);
		relay_jw_str(&w, data, size);
		FUZZ_CHECK(w.overflow && w.len <= w.cap);
	}
	free(buf);
	free(back);
}

static void fuzz_envelopes(const uint8_t *data, size_t size)
{
	struct relay_span room, from, payload;
	uint8_t *buf = malloc(size + 1);

	FUZZ_CHECK(buf != NULL);
	if (relay_bin_msg_parse(data, size, &room, &payload) == RELAY_ERR_NONE) {
		FUZZ_CHECK(span_inside(room, data, size) && span_inside(payload, data, size));
		FUZZ_CHECK(relay_bin_msg_size(room.n, payload.n) == size);
		FUZZ_CHECK(relay_bin_msg_encode(buf, room, payload) == size);
		FUZZ_CHECK(memcmp(buf, data, size) == 0);
	}
	if (relay_bin_delivery_parse(data, size, &room, &from, &payload) == RELAY_ERR_NONE) {
		FUZZ_CHECK(relay_bin_delivery_size(room.n, from.n, payload.n) == size);
		FUZZ_CHECK(relay_bin_delivery_encode(buf, room, from, payload) == size);
		FUZZ_CHECK(memcmp(buf, data, size) == 0);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decoder(data, size);
	fuzz_json(data, size);
	fuzz_names(data, size);
	fuzz_writer(data, size);
	fuzz_envelopes(data, size);
	return 0;
}
