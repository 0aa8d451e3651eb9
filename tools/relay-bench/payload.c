/* payload.c -- the published payload: an ASCII header carrying the send time,
 * publisher id and sequence, padded to a fixed size. The same bytes go to
 * every target, so the client does the same work whichever server it measures.
 * Threading: pure functions.
 */
#include "bench.h"

#include <string.h>

static const char hexd[16] = "0123456789abcdef";

static void put_hex(uint8_t *p, uint64_t v, unsigned digits)
{
	for (unsigned i = digits; i-- > 0; v >>= 4)
		p[i] = (uint8_t)hexd[v & 15];
}

void rb_payload_fill(uint8_t *p, size_t n, uint64_t ts, uint32_t pub, uint32_t seq)
{
	if (n < RB_PAYLOAD_HDR)
		return;
	p[0] = 'T';
	put_hex(p + 1, ts, 16);
	put_hex(p + 17, pub, 8);
	put_hex(p + 25, seq, 8);
}

/* 8 lowercase hex digits at <p> to their value, SWAR (no per-digit loop):
 * this runs once per delivered message and showed in client profiles. */
static inline uint32_t hex8(const uint8_t *p)
{
	uint64_t x;
	memcpy(&x, p, 8);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	x = __builtin_bswap64(x);
#endif
	x = (x & 0x0F0F0F0F0F0F0F0Full) + 9 * ((x >> 6) & 0x0101010101010101ull);
	x = (x & 0x000F000F000F000Full) << 4 | (x & 0x0F000F000F000F00ull) >> 8;
	x = (x & 0x000000FF000000FFull) << 8 | (x & 0x00FF000000FF0000ull) >> 16;
	x = (x & 0x000000000000FFFFull) << 16 | (x & 0x0000FFFF00000000ull) >> 32;
	return (uint32_t)x;
}

/* Only the marker byte is checked: digits are not validated per message
 * (every payload on these connections is ours). */
bool rb_payload_parse(const uint8_t *p, size_t n, uint64_t *ts, uint32_t *pub)
{
	if (n < RB_PAYLOAD_HDR || p[0] != 'T')
		return false;
	*ts = (uint64_t)hex8(p + 1) << 32 | hex8(p + 9);
	if (pub)
		*pub = hex8(p + 17);
	return true;
}

size_t rb_room_name(char *buf, uint32_t room)
{
	char tmp[12];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + room % 10);
		room /= 10;
	} while (room);
	buf[0] = 'r';
	for (size_t i = 0; i < n; i++)
		buf[1 + i] = tmp[n - 1 - i];
	buf[n + 1] = 0;
	return n + 1;
}
