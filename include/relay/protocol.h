/* protocol.h -- the Relay wire protocol v1, without sockets.
 *
 * Frame header encode/decode, an incremental frame decoder, a one-pass JSON
 * validator that extracts the top-level fields a handler needs, a small JSON
 * writer for replies, and the binary MESSAGE envelopes. Used by relayd,
 * relay-cli and relay-bench alike; installed with a pkg-config file.
 *
 * Threading: no global mutable state. Every object (decoder, writer) belongs to
 * its caller; distinct objects may be used from distinct threads freely.
 *
 * Wire format (all integers big endian):
 *   u32 length | u8 version | u8 type | u8 flags | payload (length - 3 bytes)
 * `length` counts everything after itself, so a frame is 4 + length bytes.
 */
#ifndef RELAY_PROTOCOL_H
#define RELAY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RELAY_PROTOCOL_VERSION 1
#define RELAY_FRAME_LEN_BYTES 4     /* the length field */
#define RELAY_FRAME_HDR_BYTES 7     /* length + version + type + flags */
#define RELAY_FRAME_MIN_LENGTH 3    /* smallest valid length field */
/* Header byte offsets: the length field is bytes 0-3. */
#define RELAY_FRAME_VERSION_OFFSET 4
#define RELAY_FRAME_TYPE_OFFSET 5
#define RELAY_FRAME_FLAGS_OFFSET 6
#define RELAY_DEFAULT_MAX_FRAME 1048576u
#define RELAY_JSON_MAX_DEPTH 64
#define RELAY_ROOM_MAX_BYTES 64
#define RELAY_USERID_MAX_BYTES 128

/* ---- frame types, flags, error codes ---------------------------------- */

/* Wire values; 0 is not a type. */
enum relay_msg_type {
	RELAY_MSG_INVALID = 0,
	RELAY_MSG_HELLO = 0x01,
	RELAY_MSG_JOIN_ROOM = 0x02,
	RELAY_MSG_LEAVE_ROOM = 0x03,
	RELAY_MSG_MESSAGE = 0x04,
	RELAY_MSG_HEARTBEAT = 0x05,
	RELAY_MSG_ERROR = 0x06,
	RELAY_MSG_NTYPES
};

#define RELAY_FLAG_JSON 0x01u
#define RELAY_FLAG_BINARY 0x02u
#define RELAY_FLAG_RESERVED_MASK 0xFCu /* bits 2-7, 0x04 "compressed" included */
/* Server -> client only (history, protocol-v1-ext.md section 4): a BINARY
 * MESSAGE delivery carries its room sequence number (relay_bin_delivery_seq_*).
 * Reserved in frames a client sends (relay_decoder_next refuses it);
 * relay_decoder_next_from_server accepts it on binary deliveries. */
#define RELAY_FLAG_SEQ 0x08u

/* One enum for every protocol outcome; maps one-to-one to the spec's codes.
 * Never mixed with errno. */
enum relay_err {
	RELAY_ERR_NONE = 0,
	RELAY_ERR_INVALID_FRAME,
	RELAY_ERR_FRAME_TOO_LARGE,
	RELAY_ERR_UNSUPPORTED_VERSION,
	RELAY_ERR_UNKNOWN_MESSAGE_TYPE,
	RELAY_ERR_PARSE_ERROR,
	RELAY_ERR_INVALID_PAYLOAD,
	RELAY_ERR_INVALID_ROOM,
	RELAY_ERR_NOT_IN_ROOM,
	RELAY_ERR_TOO_MANY_ROOMS,
	RELAY_ERR_IDLE_TIMEOUT,
	RELAY_ERR_FRAME_TIMEOUT,
	RELAY_ERR_SLOW_CONSUMER,
	RELAY_ERR_SERVER_FULL,
	RELAY_ERR_SERVER_SHUTDOWN,
	/* protocol-v1-ext.md §2-§3 (access control); never sent without token keys */
	RELAY_ERR_UNAUTHORIZED,
	RELAY_ERR_TOKEN_EXPIRED,
	RELAY_ERR_FORBIDDEN,
	/* protocol-v1-ext.md §3 (limits); never sent without --max-connections-per-ip */
	RELAY_ERR_TOO_MANY_CONNECTIONS,
	RELAY_ERR_NCODES
};

/* "HELLO" ... "ERROR"; "UNKNOWN" for anything else. Never NULL. */
const char *relay_msg_type_name(unsigned type);
/* "INVALID_FRAME" ...; "NONE" for RELAY_ERR_NONE, "UNKNOWN" out of range. */
const char *relay_err_name(enum relay_err code);
/* Whether the spec's table marks <code> fatal. */
bool relay_err_is_fatal(enum relay_err code);
/* Inverse of relay_err_name over <n> bytes at <s>; RELAY_ERR_NONE if unknown. */
enum relay_err relay_err_from_name(const char *s, size_t n);

/* ---- frame header ------------------------------------------------------ */

struct relay_span {
	const uint8_t *p;
	size_t n;
};

/* A complete frame. <payload> points into the caller's bytes or into the
 * decoder's tail; see relay_decoder_next for how long it stays valid. */
struct relay_frame {
	uint8_t version;
	uint8_t type;
	uint8_t flags;
	const uint8_t *payload;
	uint32_t len; /* payload bytes (length field - 3) */
};

/* The length field of the frame starting at <frame> (its first 4 bytes,
 * big endian): the bytes after the field, so the whole frame is
 * RELAY_FRAME_LEN_BYTES + this. No checks: for frames already validated or
 * encoded here (relay_frame_check_length checks untrusted ones). */
static inline uint32_t relay_frame_length(const uint8_t *frame)
{
	return (uint32_t)frame[0] << 24 | (uint32_t)frame[1] << 16 | (uint32_t)frame[2] << 8 |
	       (uint32_t)frame[3];
}

/* Writes the 7 header bytes for a payload of <payload_len> bytes to <out>. */
void relay_frame_put_header(uint8_t out[RELAY_FRAME_HDR_BYTES], uint8_t type,
			 uint8_t flags, uint32_t payload_len);
/* Writes header + payload to <out>, which must hold 7 + <len> bytes.
 * Returns the bytes written. */
size_t relay_frame_encode(uint8_t *out, uint8_t type, uint8_t flags,
		       const void *payload, uint32_t len);

/* The checks the spec runs as soon as the 4 length bytes are in:
 * INVALID_FRAME (length < 3) then FRAME_TOO_LARGE (length > max_frame). */
enum relay_err relay_frame_check_length(uint32_t length, uint32_t max_frame);
/* The checks run as soon as the 7 header bytes are in, in the spec's order:
 * version (UNSUPPORTED_VERSION), type (UNKNOWN_MESSAGE_TYPE), flags
 * (INVALID_FRAME: JSON and BINARY both set, or a reserved bit set). */
enum relay_err relay_frame_check_header(uint8_t version, uint8_t type, uint8_t flags);
/* The same checks for a frame a server sent: a MESSAGE whose flags are
 * exactly BINARY | RELAY_FLAG_SEQ is also accepted. */
enum relay_err relay_frame_check_header_from_server(uint8_t version, uint8_t type, uint8_t flags);

/* ---- incremental decoder ------------------------------------------------ */

enum relay_decode_status {
	RELAY_DECODE_NEED_MORE = 0, /* all input consumed; feed more bytes */
	RELAY_DECODE_FRAME,         /* *out holds one complete frame */
	RELAY_DECODE_ERROR,         /* fatal; d->err says which; sticky */
	RELAY_DECODE_NOMEM,         /* fatal: the tail could not be allocated;
				       sticky; d->err stays RELAY_ERR_NONE */
};

/* Fields are private to decoder.c except <err> (read-only). Small on purpose:
 * an idle connection holds one of these and no buffer. */
struct relay_decoder {
	enum relay_err err;      /* set once RELAY_DECODE_ERROR was returned */
	uint32_t max_frame;   /* largest accepted length field */
	uint8_t *_tail;       /* incomplete frame carried between feeds, or NULL */
	uint32_t _tail_len;   /* bytes in _tail */
	uint32_t _tail_cap;   /* bytes allocated at _tail */
	const uint8_t *_in;   /* unconsumed caller bytes of the current feed */
	size_t _in_len;
};

/* <max_frame> 0 means RELAY_DEFAULT_MAX_FRAME; values above UINT32_MAX - 4 are
 * clamped to it. The decoder never aborts: failing to allocate its tail (at
 * most 4 + max_frame bytes) is RELAY_DECODE_NOMEM. */
void relay_decoder_init(struct relay_decoder *d, uint32_t max_frame);
/* Frees the tail; <d> may be re-initialised afterwards. */
void relay_decoder_free(struct relay_decoder *d);

/* Hands <len> bytes at <buf> to the decoder. The previous feed must have been
 * consumed (relay_decoder_next returned NEED_MORE, ERROR or NOMEM). <buf> must stay
 * valid and unchanged until relay_decoder_next returns NEED_MORE. */
void relay_decoder_feed(struct relay_decoder *d, const uint8_t *buf, size_t len);

/* Yields the next complete frame of the current feed.
 * FRAME: <out> is filled; its payload points into the fed bytes when the frame
 *   lay whole inside them (no copy), otherwise into the decoder's tail. It is
 *   valid until the next call to relay_decoder_next/feed/free on <d>.
 * NEED_MORE: every fed byte is consumed; an incomplete frame's bytes were
 *   copied into the tail (grown as bytes arrive, never past the frame, freed
 *   when empty), so a stalled large frame pins only what was sent; the
 *   caller may reuse its buffer.
 * ERROR: the first failing check in the spec's order; FRAME_TOO_LARGE and
 *   INVALID_FRAME(length) are decided from the 4 length bytes alone, before
 *   any payload is buffered. Every later call returns ERROR again.
 * NOMEM: the bytes of an incomplete frame could not be copied into the tail
 *   (allocation failed). Not the peer's fault in protocol terms: <err> stays
 *   RELAY_ERR_NONE, no ERROR frame is owed; the stream cannot resume (bytes
 *   were dropped), so close the connection. Every later call returns NOMEM
 *   again until relay_decoder_free. Callers that only know ERROR should
 *   treat any status other than NEED_MORE and FRAME as fatal.
 * Header checks only: JSON validity is the handler's (relay_json_parse). */
enum relay_decode_status relay_decoder_next(struct relay_decoder *d, struct relay_frame *out);
/* relay_decoder_next for a client reading a server's stream: the header
 * checks are relay_frame_check_header_from_server's (binary deliveries with
 * RELAY_FLAG_SEQ pass). Use one of the two for the life of a decoder. */
enum relay_decode_status relay_decoder_next_from_server(struct relay_decoder *d,
							struct relay_frame *out);

/* Bytes of a started but incomplete frame held in the tail (0: at a frame
 * boundary). Drives the frame timeout. */
size_t relay_decoder_pending(const struct relay_decoder *d);

/* Stops decoding the current feed and gives back what relay_decoder_next
 * has not consumed of it: *<rest> points into the fed bytes (the caller's),
 * the count is returned (0: nothing left, *<rest> NULL). The decoder then
 * holds no feed, as after NEED_MORE; a frame it returned stays valid until
 * the next call on <d>, as before. Feeding those bytes again later (the
 * caller may copy them first), then newer input, yields the same frames as
 * if decoding had never stopped, so a caller can stop between two frames
 * (e.g. to bound its work) and go on later. After ERROR or NOMEM: 0. */
size_t relay_decoder_rest(struct relay_decoder *d, const uint8_t **rest);

/* Bytes allocated for the tail (0: none): what the decoder holds in memory,
 * for servers that account for it (relayd's client memory budget). */
size_t relay_decoder_capacity(const struct relay_decoder *d);

/* ---- UTF-8 and names ----------------------------------------------------- */

/* Strict UTF-8: no overlongs, no encoded surrogates, nothing above U+10FFFF,
 * no truncated sequences or stray continuation bytes. */
bool relay_utf8_valid(const uint8_t *p, size_t n);

/* Room name rule: trims ASCII whitespace (space \t \n \v \f \r) at both ends,
 * then requires 1-64 bytes of valid UTF-8 with no control character
 * (U+0000-U+001F, U+007F-U+009F). On success sets *out to the trimmed
 * name (inside <p>) and returns RELAY_ERR_NONE; otherwise RELAY_ERR_INVALID_ROOM. */
enum relay_err relay_room_name_check(const uint8_t *p, size_t n, struct relay_span *out);

/* userId rule: 1-128 bytes of valid UTF-8, no control character. Returns
 * RELAY_ERR_NONE or RELAY_ERR_INVALID_PAYLOAD. (Lone surrogates are caught by the
 * JSON decoder, see relay_json_field.lone_surrogate.) */
enum relay_err relay_userid_check(const uint8_t *p, size_t n);

/* ---- JSON validation with top-level field extraction --------------------- */

enum relay_json_kind {
	RELAY_JSON_NONE = 0, /* field absent */
	RELAY_JSON_STRING,
	RELAY_JSON_NUMBER,
	RELAY_JSON_OBJECT,
	RELAY_JSON_ARRAY,
	RELAY_JSON_TRUE,
	RELAY_JSON_FALSE,
	RELAY_JSON_NULL,
	RELAY_JSON_NKINDS
};

/* One top-level key the caller wants out of an object. Fill the "in" part;
 * relay_json_parse fills the "out" part. Duplicate keys: the LAST occurrence
 * wins (as JavaScript's JSON.parse does), for every out field. Keys are
 * compared after decoding their escapes ("ro\u006fm" matches "room"). */
struct relay_json_field {
	/* in */
	const char *key;     /* NUL-terminated key */
	uint8_t *buf;        /* optional: receives a string value decoded to UTF-8 */
	size_t cap;          /* bytes available at <buf> */
	/* out */
	enum relay_json_kind kind;  /* RELAY_JSON_NONE when the key is absent */
	struct relay_span raw;      /* the value's bytes, first to last, verbatim;
				    for a string, quotes included */
	size_t dec_len;          /* string: decoded length in bytes, even when it
				    did not fit <cap> (then buf holds the first
				    cap bytes) */
	bool lone_surrogate;     /* string: held a \u escape of a lone or
				    mis-ordered surrogate (valid JSON, but not a
				    valid decoded name); each one is decoded
				    as U+FFFD (3 bytes) in <buf>/<dec_len> */
};
/* Only a key of the top-level object matches (nested keys never do). When two
 * entries of <fields> name the same key, only the first is filled. A key
 * written with escapes that decodes to more than 256 bytes matches no field. */

struct relay_json_result {
	enum relay_json_kind top; /* kind of the top-level value */
	size_t err_off;        /* on failure: byte offset where it was detected */
	const char *err_msg;   /* on failure: static text, e.g. "bad escape" */
};

/* Validates <n> bytes at <p> as one JSON text under the spec's rules
 * (RFC 8259; strict UTF-8; no BOM; depth <= 64, counted over arrays and
 * objects, checked without recursion; only whitespace around the value) and,
 * in the same pass, when the top-level value is an object, fills the
 * <nfields> entries of <fields> (may be NULL/0). An empty input is invalid.
 * Returns 0 when valid, -1 when not (then <res> says where and why and the
 * fields are unspecified). <res> may be NULL. */
int relay_json_parse(const uint8_t *p, size_t n, struct relay_json_field *fields,
		  size_t nfields, struct relay_json_result *res);

/* Decodes the JSON string token <raw> (quotes included, already validated) to
 * UTF-8 into <out>/<cap>. Returns the decoded length (may exceed <cap>: then
 * only <cap> bytes were written), or -1 if it holds a lone surrogate escape. */
long relay_json_string_decode(struct relay_span raw, uint8_t *out, size_t cap);

/* ---- JSON writer ---------------------------------------------------------- */

/* Writes into a fixed caller buffer; on overflow sets <overflow> and stops
 * writing (check it once at the end). Handles commas itself: begin/end nest
 * objects and arrays up to 32 levels. */
struct relay_jw {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow;
	uint32_t _first;  /* bit d-1: nothing written yet at nesting depth d */
	uint8_t _depth;
	bool _after_key;  /* a key was written; its value comes next */
};

void relay_jw_init(struct relay_jw *w, uint8_t *buf, size_t cap);
void relay_jw_obj_begin(struct relay_jw *w);
void relay_jw_obj_end(struct relay_jw *w);
void relay_jw_arr_begin(struct relay_jw *w);
void relay_jw_arr_end(struct relay_jw *w);
/* Writes "<key>": (with a comma before it when needed). */
void relay_jw_key(struct relay_jw *w, const char *key);
/* A string value: quotes added; '"' '\\' and control characters escaped
 * (\b \f \n \r \t, others \u00XX, and U+007F as \u007f); valid UTF-8 is
 * copied through unchanged. */
void relay_jw_str(struct relay_jw *w, const void *s, size_t n);
void relay_jw_cstr(struct relay_jw *w, const char *s);
void relay_jw_u64(struct relay_jw *w, uint64_t v);
void relay_jw_i64(struct relay_jw *w, int64_t v);
void relay_jw_bool(struct relay_jw *w, bool v);
void relay_jw_null(struct relay_jw *w);
/* An already-valid JSON value copied verbatim (e.g. forwarded content). */
void relay_jw_raw(struct relay_jw *w, const void *json, size_t n);
/* Bytes relay_jw_str would write for <n> bytes at <s> (quotes included). */
size_t relay_jw_str_len(const void *s, size_t n);

/* ---- binary MESSAGE envelopes ---------------------------------------------- */

/* Client -> server: u8 L | L bytes room | data.  1 <= L <= 64.
 * Returns RELAY_ERR_NONE or RELAY_ERR_INVALID_PAYLOAD (too short, L = 0 or > 64).
 * The room is returned raw: apply relay_room_name_check to it. */
enum relay_err relay_bin_msg_parse(const uint8_t *p, size_t n, struct relay_span *room,
			     struct relay_span *data);
size_t relay_bin_msg_size(size_t room_len, size_t data_len);
/* Writes the envelope to <out> (relay_bin_msg_size bytes). Returns bytes written,
 * 0 if room_len is not 1-64. */
size_t relay_bin_msg_encode(uint8_t *out, struct relay_span room, struct relay_span data);

/* Server -> members: u8 L | room | u8 F | F bytes connectionId | data. */
enum relay_err relay_bin_delivery_parse(const uint8_t *p, size_t n, struct relay_span *room,
				  struct relay_span *from, struct relay_span *data);
size_t relay_bin_delivery_size(size_t room_len, size_t from_len, size_t data_len);
/* Returns bytes written, 0 if room_len is not 1-64 or from_len > 255. */
size_t relay_bin_delivery_encode(uint8_t *out, struct relay_span room, struct relay_span from,
			      struct relay_span data);

/* Server -> members with RELAY_FLAG_SEQ (history):
 *   u8 L | room | u8 F | F bytes connectionId | u64 seq (big endian) | data.
 * parse: RELAY_ERR_INVALID_PAYLOAD when the envelope or the 8 seq bytes are
 * missing. encode: as relay_bin_delivery_encode. put_seq writes <seq> at
 * <seq_at> (8 bytes), e.g. into an encoded delivery once its seq is known. */
enum relay_err relay_bin_delivery_seq_parse(const uint8_t *p, size_t n, struct relay_span *room,
					    struct relay_span *from, uint64_t *seq,
					    struct relay_span *data);
size_t relay_bin_delivery_seq_size(size_t room_len, size_t from_len, size_t data_len);
size_t relay_bin_delivery_seq_encode(uint8_t *out, struct relay_span room, struct relay_span from,
				     uint64_t seq, struct relay_span data);
void relay_bin_delivery_put_seq(uint8_t *seq_at, uint64_t seq);

#ifdef __cplusplus
}
#endif

#endif /* RELAY_PROTOCOL_H */
