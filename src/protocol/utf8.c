/* utf8.c -- strict UTF-8 validation and the room-name / userId rules.
 * Threading: pure functions; callable from any thread.
 */
#include "relay/protocol.h"
#include "proto_internal.h"

bool relay_utf8_valid(const uint8_t *p, size_t n)
{
	if (n == 0)
		return true;
	const uint8_t *end = p + n;

	while (p < end) {
		/* ASCII runs 8 bytes at a time. */
		while (end - p >= 8 && (relay_load64(p) & RELAY_HIGH8) == 0)
			p += 8;
		while (p < end && *p < 0x80)
			p++;
		if (p == end)
			break;
		unsigned len = relay_utf8_seq(p, end);
		if (len == 0)
			return false;
		p += len;
	}
	return true;
}

/* Control characters as the spec defines them, on valid UTF-8:
 * U+0000-U+001F, U+007F-U+009F (the latter encoded C2 80 .. C2 9F). */
static bool name_has_control(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c < 0x20 || c == 0x7F)
			return true;
		if (c == 0xC2 && i + 1 < n && p[i + 1] <= 0x9F)
			return true;
	}
	return false;
}

static bool name_is_space(uint8_t c)
{
	return c == ' ' || (c >= '\t' && c <= '\r'); /* \t \n \v \f \r */
}

static bool name_ok(const uint8_t *p, size_t n, size_t max)
{
	return n >= 1 && n <= max && relay_utf8_valid(p, n) && !name_has_control(p, n);
}

enum relay_err relay_room_name_check(const uint8_t *p, size_t n, struct relay_span *out)
{
	while (n > 0 && name_is_space(p[0])) {
		p++;
		n--;
	}
	while (n > 0 && name_is_space(p[n - 1]))
		n--;
	if (!name_ok(p, n, RELAY_ROOM_MAX_BYTES))
		return RELAY_ERR_INVALID_ROOM;
	if (out != NULL) {
		out->p = p;
		out->n = n;
	}
	return RELAY_ERR_NONE;
}

enum relay_err relay_userid_check(const uint8_t *p, size_t n)
{
	return name_ok(p, n, RELAY_USERID_MAX_BYTES) ? RELAY_ERR_NONE : RELAY_ERR_INVALID_PAYLOAD;
}
