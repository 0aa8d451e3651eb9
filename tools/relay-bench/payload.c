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

/* 0x80 marks a byte that is not a lowercase hex digit. */
static uint8_t hexval[256];

static void hex_table(void)
{
	for (int i = 0; i < 256; i++)
		hexval[i] = 0x80;
	for (int i = 0; i < 16; i++)
		hexval[(uint8_t)hexd[i]] = (uint8_t)i;
}

/* Branch-free over the digits: this runs once per delivered message. */
static inline bool get_hex(const uint8_t *p, unsigned digits, uint64_t *out)
{
	uint64_t v = 0;
	unsigned bad = 0;
	for (unsigned i = 0; i < digits; i++) {
		uint8_t d = hexval[p[i]];
		bad |= d;
		v = v << 4 | (d & 15);
	}
	*out = v;
	return !(bad & 0x80);
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

void rb_payload_init(void)
{
	hex_table();
}

bool rb_payload_parse(const uint8_t *p, size_t n, uint64_t *ts, uint32_t *pub)
{
	uint64_t v = 0;
	if (n < RB_PAYLOAD_HDR || p[0] != 'T' || !get_hex(p + 1, 16, ts) ||
	    (pub && !get_hex(p + 17, 8, &v)))
		return false;
	if (pub)
		*pub = (uint32_t)v;
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
