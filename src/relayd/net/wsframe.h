/* wsframe.h -- RFC 6455 WebSocket framing without sockets: an incremental
 * frame decoder (server side: masked client frames; client side: unmasked
 * server frames), a message reassembler, frame encoders, close codes, and the
 * check of the one Relay frame a binary message carries
 * (protocol-v1-ext.md §1 and §7 "Transports").
 *
 * Strict on purpose: no extensions are negotiated, so RSV bits are an error;
 * a text message is refused (1003) as soon as its first header byte arrives;
 * a data message longer than the caller's limit is refused from the frame
 * header, before its payload is read. The decoder itself never allocates:
 * it unmasks payload bytes in place in the caller's buffer and hands them
 * out as pieces; only the reassembler (rl_wsf_asm) copies, and only the
 * pieces of a message that did not arrive whole in one feed.
 *
 * Threading: no global mutable state; a decoder or reassembler belongs to
 * its caller (the connection's owner worker). */
#ifndef RL_WSFRAME_H
#define RL_WSFRAME_H

#include <relay/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RL_WSF_HDR_MAX 14	 /* 2 + 8 (64-bit length) + 4 (masking key) */
#define RL_WSF_SERVER_HDR_MAX 10 /* an unmasked header: 2, 4 or 10 bytes */
#define RL_WSF_CONTROL_MAX 125	 /* payload bytes of a control frame */
#define RL_WSF_CLOSE_REASON_MAX 123

/* Opcodes (wire values, 4 bits). */
enum rl_wsf_opcode {
	RL_WSF_OP_CONT = 0x0,
	RL_WSF_OP_TEXT = 0x1,
	RL_WSF_OP_BINARY = 0x2,
	RL_WSF_OP_CLOSE = 0x8,
	RL_WSF_OP_PING = 0x9,
	RL_WSF_OP_PONG = 0xA,
	RL_WSF_NOPCODES = 0x10
};

/* Close codes this server sends or must recognise (RFC 6455 §7.4.1). */
#define RL_WSF_CLOSE_NORMAL 1000
#define RL_WSF_CLOSE_GOING_AWAY 1001   /* Relay SERVER_SHUTDOWN */
#define RL_WSF_CLOSE_PROTOCOL 1002     /* WebSocket-level violation */
#define RL_WSF_CLOSE_UNSUPPORTED 1003  /* a text message */
#define RL_WSF_CLOSE_NO_STATUS 1005    /* never on the wire: a close without code */
#define RL_WSF_CLOSE_INVALID_DATA 1007 /* close reason not UTF-8 */
#define RL_WSF_CLOSE_POLICY 1008       /* any other fatal Relay error */
#define RL_WSF_CLOSE_TOO_BIG 1009      /* Relay FRAME_TOO_LARGE */

/* Every way a peer's frames can be refused. Each maps to one close code, and
 * TOO_BIG also to a Relay error (the spec sends ERROR FRAME_TOO_LARGE before
 * the close; every other one gets a close frame only). */
enum rl_wsf_err {
	RL_WSF_OK = 0,
	RL_WSF_ERR_RSV,		  /* RSV1-3 set: no extension was negotiated */
	RL_WSF_ERR_OPCODE,	  /* reserved opcode 0x3-0x7, 0xB-0xF */
	RL_WSF_ERR_CONTROL_FRAG,  /* control frame without FIN */
	RL_WSF_ERR_CONT_NO_MSG,	  /* continuation frame with no message open */
	RL_WSF_ERR_DATA_IN_MSG,	  /* text/binary frame while a message is open */
	RL_WSF_ERR_TEXT,	  /* a text message (1003) */
	RL_WSF_ERR_MASK,	  /* server side: unmasked; client side: masked */
	RL_WSF_ERR_CONTROL_LONG,  /* control frame payload > 125 bytes */
	RL_WSF_ERR_LENGTH,	  /* 64-bit length with its top bit set */
	RL_WSF_ERR_TOO_BIG,	  /* message over the caller's limit (1009) */
	RL_WSF_ERR_CLOSE_PAYLOAD, /* close payload of exactly 1 byte */
	RL_WSF_ERR_CLOSE_CODE,	  /* close code not allowed on the wire */
	RL_WSF_ERR_CLOSE_UTF8,	  /* close reason not valid UTF-8 (1007) */
	RL_WSF_NERRS
};

/* "RSV", "OPCODE", ...; "OK"; "UNKNOWN" out of range. Never NULL. */
const char *rl_wsf_err_name(enum rl_wsf_err e);
/* The close code to send for <e> (0 for RL_WSF_OK). */
uint16_t rl_wsf_err_close_code(enum rl_wsf_err e);
/* The Relay error to send before the close: FRAME_TOO_LARGE for TOO_BIG,
 * RELAY_ERR_NONE (close frame only) for the others. */
enum relay_err rl_wsf_err_relay(enum rl_wsf_err e);
/* The close code that follows a fatal Relay ERROR frame: 1001 for
 * SERVER_SHUTDOWN, 1009 for FRAME_TOO_LARGE, 1008 otherwise. */
uint16_t rl_wsf_close_code_for(enum relay_err code);
/* Whether a peer may send <code> in a close frame: 1000-1003, 1007-1014,
 * 3000-4999 (1004-1006 and 1015 are reserved never to be sent; 1012-1014 are
 * IANA-registered; 1016-2999 are reserved; below 1000 and 5000+ are unused). */
bool rl_wsf_close_code_valid(uint16_t code);
/* Splits a close frame's payload <p>/<n> into its code (RL_WSF_CLOSE_NO_STATUS
 * for an empty payload) and UTF-8 reason. RL_WSF_OK, or CLOSE_PAYLOAD (1
 * byte), CLOSE_CODE (not rl_wsf_close_code_valid), CLOSE_UTF8, in that order. */
enum rl_wsf_err rl_wsf_close_parse(const uint8_t *p, size_t n, uint16_t *code,
				   struct relay_span *reason);

/* XORs <n> bytes at <p> with the masking key <key>, starting <phase> bytes
 * into the frame's payload (so a payload may be unmasked piece by piece).
 * Eight bytes at a time. Masking and unmasking are the same operation. */
void rl_wsf_mask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t phase);

/* ---- decoder -------------------------------------------------------------- */

enum rl_wsf_role {
	RL_WSF_SERVER = 0, /* decodes client frames: every frame must be masked */
	RL_WSF_CLIENT,	   /* decodes server frames: no frame may be masked */
	RL_WSF_NROLES
};

enum rl_wsf_status {
	RL_WSF_NEED_MORE = 0, /* every fed byte is consumed; feed more */
	RL_WSF_DATA,	      /* ev holds a piece of a binary message */
	RL_WSF_CONTROL,	      /* ev holds a whole close, ping or pong frame */
	RL_WSF_ERROR,	      /* d->err says which; sticky */
	RL_WSF_NSTATUS
};

struct rl_wsf_event {
	uint8_t opcode;	  /* DATA: RL_WSF_OP_BINARY; CONTROL: CLOSE, PING or PONG */
	bool first;	  /* DATA: first piece of its message */
	bool fin;	  /* DATA: last piece of its message */
	const uint8_t *p; /* payload bytes, unmasked */
	size_t n;
	uint64_t left;		  /* DATA: bytes of the current frame still to come */
	uint16_t close_code;	  /* CLOSE: its code, or RL_WSF_CLOSE_NO_STATUS if none */
	struct relay_span reason; /* CLOSE: its reason (valid UTF-8, may be empty) */
};

/* Fields are private except <err> (read-only) and <max_msg>. 224 bytes,
 * no pointer to owned memory: nothing to free. */
struct rl_wsf_dec {
	enum rl_wsf_err err; /* set once RL_WSF_ERROR was returned */
	uint64_t max_msg;    /* largest data message, all its frames together */
	uint8_t _role;
	uint8_t _hdr_len;  /* header bytes collected in _hdr */
	uint8_t _hdr_need; /* header size, known once 2 bytes are in (else 2) */
	uint8_t _op;	   /* opcode of the frame whose payload is being read */
	bool _fin;
	bool _in_payload;
	uint8_t _msg_op;   /* opcode of the open fragmented message, 0 if none */
	bool _msg_yielded; /* a piece of the current message was handed out */
	uint8_t _ctl_len;  /* control payload bytes collected in _ctl */
	uint64_t _msg_len; /* announced bytes of the current message so far */
	uint64_t _left;	   /* payload bytes of the current frame not yet read */
	uint64_t _pos;	   /* payload bytes of the current frame read (mask phase) */
	uint8_t _key[4];   /* masking key of the current frame */
	uint8_t *_in;	   /* unconsumed bytes of the current feed */
	size_t _in_len;
	uint8_t _hdr[RL_WSF_HDR_MAX];
	uint8_t _ctl[RL_WSF_CONTROL_MAX];
};

/* <role> says whose frames are decoded; <max_msg> bounds a data message
 * (for the server: 4 + max_frame). */
void rl_wsf_dec_init(struct rl_wsf_dec *d, enum rl_wsf_role role, uint64_t max_msg);

/* Hands <len> bytes at <buf> to the decoder. The previous feed must have
 * been consumed (rl_wsf_dec_next returned NEED_MORE or ERROR), with one
 * exception: right after a DATA event, the caller may stop and later feed
 * the rest of the previous feed (the bytes from ev.p + ev.n on) again, from
 * another buffer (the decoder keeps no pointer into a feed between events
 * other than its read position). The decoder unmasks payload bytes in
 * place, so <buf> is written to; it must stay valid until rl_wsf_dec_next
 * returns NEED_MORE. */
void rl_wsf_dec_feed(struct rl_wsf_dec *d, uint8_t *buf, size_t len);

/* Yields the next event of the current feed.
 * DATA: <ev> holds the next piece of a binary message (possibly empty when
 *   it only carries <fin>), unmasked in place inside the fed bytes; pieces
 *   come as the bytes arrive, so one frame split across feeds gives several.
 *   A message that lay whole in one feed as one frame is one piece with
 *   <first> and <fin> both set.
 * CONTROL: <ev> holds a whole control frame; its payload lies in the fed
 *   bytes, or in the decoder when the frame was split across feeds. Valid
 *   until the next call on <d>. A close frame's payload was checked (code,
 *   UTF-8 reason). Control frames may come between the frames of a
 *   fragmented message, which stays open.
 * ERROR: the first violation, checked in header byte order (byte 0: RSV,
 *   opcode, control FIN, continuation state, text; byte 1: mask bit, control
 *   length; full header: 64-bit length, message size), then close payloads.
 *   Every later call returns ERROR again.
 * The decoder does not stop at a close frame: the caller stops feeding. */
enum rl_wsf_status rl_wsf_dec_next(struct rl_wsf_dec *d, struct rl_wsf_event *ev);

/* Whether a frame or a fragmented message has started and not ended: drives
 * the frame timeout ("a WebSocket message that has started arriving"). */
bool rl_wsf_dec_in_message(const struct rl_wsf_dec *d);
/* The bytes of the current feed not consumed yet (*<p>; none after
 * NEED_MORE or ERROR): what a caller that stops early keeps aside, to feed
 * again later from its own copy. */
size_t rl_wsf_dec_rest(const struct rl_wsf_dec *d, const uint8_t **p);

/* ---- reassembler ------------------------------------------------------------ */

/* Turns DATA pieces into whole messages. Holds no memory while idle. */
struct rl_wsf_asm {
	uint8_t *_buf;
	size_t _len, _cap;
	bool _done; /* _buf holds a message already handed out */
};

/* Adds the DATA piece <ev>. Returns 1 when it completed a message: *msg
 * then points into <ev>'s bytes when the message was that one piece (no
 * copy), else into the reassembler; it stays valid until the next call on
 * <a>. Returns 0 when more pieces are needed, -ENOMEM when the buffer could
 * not grow (it grows by doubling, never past the bytes announced so far).
 * The decoder already bounded the message by its max_msg. */
int rl_wsf_asm_add(struct rl_wsf_asm *a, const struct rl_wsf_event *ev, struct relay_span *msg);
/* Gives the memory back; <a> may be used again (a started message is lost). */
void rl_wsf_asm_reset(struct rl_wsf_asm *a);

/* ---- encoders ----------------------------------------------------------------- */

/* Writes a frame header for a payload of <len> bytes: FIN as <fin>, masked
 * with <key> when it is not NULL (client frames), the shortest length form.
 * Returns its size: 2, 4 or 10, plus 4 with a key. */
size_t rl_wsf_put_hdr(uint8_t out[RL_WSF_HDR_MAX], uint8_t opcode, bool fin, uint64_t len,
		      const uint8_t *key);
/* The header of one server binary message (FIN, unmasked) carrying <len>
 * bytes, written apart from the payload so fan-out can build it once and
 * reference the shared frame bytes. Returns 2, 4 or 10. */
size_t rl_wsf_binary_hdr(uint8_t out[RL_WSF_SERVER_HDR_MAX], uint64_t len);
/* The size rl_wsf_binary_hdr gives for <len> payload bytes: 2, 4 or 10. */
static inline size_t rl_wsf_binary_hdr_len(uint64_t len)
{
	return len < 126 ? 2 : len <= 0xFFFF ? 4 : 10;
}
/* Header plus payload bytes of the unmasked frame whose header starts at
 * <h> (all of its 2, 4 or 10 header bytes must be there): how an output
 * queue of server frames finds its frame boundaries. */
uint64_t rl_wsf_server_frame_size(const uint8_t *h);
/* Header + payload of a whole frame into <out> (RL_WSF_HDR_MAX + <n> bytes),
 * the payload masked with <key> when it is not NULL. Returns the size. */
size_t rl_wsf_put_frame(uint8_t *out, uint8_t opcode, bool fin, const void *payload, size_t n,
			const uint8_t *key);
/* A pong echoing <n> (<= 125) bytes at <payload>. <out> holds
 * RL_WSF_HDR_MAX + 125 bytes. Returns the size. */
size_t rl_wsf_put_pong(uint8_t *out, const void *payload, size_t n, const uint8_t *key);
/* A close frame with <code> and <reason_len> bytes of UTF-8 <reason>, or an
 * empty payload when <code> is 0. A reason over 123 bytes is cut there (keep
 * reasons short: a cut may split a UTF-8 sequence). <out> holds
 * RL_WSF_HDR_MAX + 125 bytes. */
size_t rl_wsf_put_close(uint8_t *out, uint16_t code, const char *reason, size_t reason_len,
			const uint8_t *key);

/* ---- the Relay frame inside a binary message ------------------------------- */

/* The spec's checks on one whole binary message <msg>/<n>, in its order:
 * shorter than 4 bytes or length field < 3 -> INVALID_FRAME; length field >
 * <max_frame> -> FRAME_TOO_LARGE; size != 4 + length field -> INVALID_FRAME.
 * RELAY_ERR_NONE: the message is exactly one frame as far as lengths go; its
 * version, type and flags are the Relay decoder's to check. <max_frame> 0
 * means RELAY_DEFAULT_MAX_FRAME, as for relay_decoder_init. */
enum relay_err rl_wsf_relay_check(const uint8_t *msg, size_t n, uint32_t max_frame);
/* rl_wsf_relay_check, then the message through the Relay decoder: on
 * RELAY_ERR_NONE <out> is the frame (its payload points into <msg>); else the
 * first failing check, header checks included. Allocates nothing. */
enum relay_err rl_wsf_relay_decode(const uint8_t *msg, size_t n, uint32_t max_frame,
				   struct relay_frame *out);

#endif
