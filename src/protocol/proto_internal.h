/* proto_internal.h -- helpers shared by the protocol library's files; not
 * installed. Threading: pure functions, no state.
 */
#ifndef RELAY_PROTO_INTERNAL_H
#define RELAY_PROTO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "relay/protocol.h"

#if defined(__GNUC__)
#define RELAY_LIKELY(x) __builtin_expect(!!(x), 1)
#define RELAY_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RELAY_INLINE static inline __attribute__((always_inline))
#else
#define RELAY_LIKELY(x) (x)
#define RELAY_UNLIKELY(x) (x)
#define RELAY_INLINE static inline
#endif

#define RELAY_ONES8 0x0101010101010101ull
#define RELAY_HIGH8 0x8080808080808080ull

RELAY_INLINE uint64_t relay_load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

/* SWAR: high bit set in each byte of <v> that is < <b> (b <= 0x80); exact
 * for the lowest flagged byte, which is all the callers look at. */
RELAY_INLINE uint64_t relay_swar_less(uint64_t v, uint8_t b)
{
	return (v - RELAY_ONES8 * b) & ~v & RELAY_HIGH8;
}

RELAY_INLINE uint64_t relay_swar_eq(uint64_t v, uint8_t b)
{
	uint64_t x = v ^ (RELAY_ONES8 * b);
	return (x - RELAY_ONES8) & ~x & RELAY_HIGH8;
}

/* Index of the lowest flagged byte of a non-zero SWAR mask. The mask is built
 * from a memcpy load, so byte order matters. */
RELAY_INLINE unsigned relay_swar_first(uint64_t mask)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (unsigned)__builtin_ctzll(mask) >> 3;
#else
	return (unsigned)__builtin_clzll(mask) >> 3;
#endif
}

/* Length of the strict UTF-8 sequence starting with the non-ASCII byte at <s>
 * (Unicode table 3-7: no overlongs, no surrogates, nothing above U+10FFFF),
 * or 0 when it is invalid or truncated before <end>. */
RELAY_INLINE unsigned relay_utf8_seq(const uint8_t *s, const uint8_t *end)
{
	size_t left = (size_t)(end - s);
	uint8_t c = s[0];

	if (c >= 0xC2 && c <= 0xDF)
		return (left >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		if (left < 3 || (s[2] & 0xC0) != 0x80)
			return 0;
		uint8_t lo = c == 0xE0 ? 0xA0 : 0x80;
		uint8_t hi = c == 0xED ? 0x9F : 0xBF;
		return (s[1] >= lo && s[1] <= hi) ? 3 : 0;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (left < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
			return 0;
		uint8_t lo = c == 0xF0 ? 0x90 : 0x80;
		uint8_t hi = c == 0xF4 ? 0x8F : 0xBF;
		return (s[1] >= lo && s[1] <= hi) ? 4 : 0;
	}
	return 0;
}

/* Writes code point <cp> (<= U+10FFFF, not a surrogate) as UTF-8 to <out>;
 * returns the byte count (1-4). */
RELAY_INLINE unsigned relay_utf8_put(uint8_t out[4], uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (uint8_t)(0xC0 | (cp >> 6));
		out[1] = (uint8_t)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (uint8_t)(0xE0 | (cp >> 12));
		out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (uint8_t)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (uint8_t)(0xF0 | (cp >> 18));
	out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (uint8_t)(0x80 | (cp & 0x3F));
	return 4;
}

/* The frame checks of relay_frame_check_length / relay_frame_check_header, inline
 * for the decoder's hot path (frame.c's exported versions call these). */
RELAY_INLINE enum relay_err relay_check_length(uint32_t length, uint32_t max_frame)
{
	if (length < RELAY_FRAME_MIN_LENGTH)
		return RELAY_ERR_INVALID_FRAME;
	if (length > max_frame)
		return RELAY_ERR_FRAME_TOO_LARGE;
	return RELAY_ERR_NONE;
}

RELAY_INLINE enum relay_err relay_check_header(uint8_t version, uint8_t type, uint8_t flags)
{
	if (version != RELAY_PROTOCOL_VERSION)
		return RELAY_ERR_UNSUPPORTED_VERSION;
	if (type == RELAY_MSG_INVALID || type >= RELAY_MSG_NTYPES)
		return RELAY_ERR_UNKNOWN_MESSAGE_TYPE;
	if ((flags & RELAY_FLAG_RESERVED_MASK) != 0 ||
	    (flags & (RELAY_FLAG_JSON | RELAY_FLAG_BINARY)) == (RELAY_FLAG_JSON | RELAY_FLAG_BINARY))
		return RELAY_ERR_INVALID_FRAME;
	return RELAY_ERR_NONE;
}

#endif /* RELAY_PROTO_INTERNAL_H */
