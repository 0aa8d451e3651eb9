/* test_utf8.c -- strict UTF-8 and the room-name / userId rules (utf8.c). */
#include "unit.h"

static bool u8(const char *s)
{
	return relay_utf8_valid((const uint8_t *)s, strlen(s));
}

Test(utf8, accepts_every_length_at_its_bounds)
{
	cr_assert(u8(""));
	cr_assert(u8("plain ascii, long enough to take the 8-byte path"));
	cr_assert(u8("\x7F"));
	cr_assert(u8("\xC2\x80"));             /* U+0080 */
	cr_assert(u8("\xDF\xBF"));             /* U+07FF */
	cr_assert(u8("\xE0\xA0\x80"));         /* U+0800 */
	cr_assert(u8("\xED\x9F\xBF"));         /* U+D7FF */
	cr_assert(u8("\xEE\x80\x80"));         /* U+E000 */
	cr_assert(u8("\xEF\xBF\xBF"));         /* U+FFFF */
	cr_assert(u8("\xF0\x90\x80\x80"));     /* U+10000 */
	cr_assert(u8("\xF4\x8F\xBF\xBF"));     /* U+10FFFF */
	cr_assert(u8("12345678\xF0\x9F\x98\x80" "abcdefgh\xC3\xA9"));
}

Test(utf8, rejects_overlongs_surrogates_and_beyond_max)
{
	cr_assert_not(u8("\xC0\x80"));
	cr_assert_not(u8("\xC1\xBF"));
	cr_assert_not(u8("\xE0\x80\x80"));
	cr_assert_not(u8("\xE0\x9F\xBF"));
	cr_assert_not(u8("\xF0\x80\x80\x80"));
	cr_assert_not(u8("\xF0\x8F\xBF\xBF"));
	cr_assert_not(u8("\xED\xA0\x80"));     /* U+D800 */
	cr_assert_not(u8("\xED\xBF\xBF"));     /* U+DFFF */
	cr_assert_not(u8("\xF4\x90\x80\x80")); /* U+110000 */
	cr_assert_not(u8("\xF5\x80\x80\x80"));
	cr_assert_not(u8("\xFF"));
	cr_assert_not(u8("\xFE"));
}

Test(utf8, rejects_truncated_and_stray_bytes)
{
	cr_assert_not(u8("\x80"));
	cr_assert_not(u8("abc\xBF"));
	cr_assert_not(u8("\xC3"));
	cr_assert_not(u8("\xE2\x82"));
	cr_assert_not(u8("\xF0\x9F\x98"));
	cr_assert_not(u8("\xC3x"));
	cr_assert_not(u8("\xE2\x82x"));
	cr_assert_not(u8("\xC3\xA9\xA9"));
	/* the truncation is at the buffer end, not at a NUL */
	const uint8_t e[] = {0xE2, 0x82, 0xAC};
	cr_assert(relay_utf8_valid(e, 3));
	cr_assert_not(relay_utf8_valid(e, 2));
}

Test(utf8, every_code_point_round_trips)
{
	/* every scalar value encodes to valid UTF-8; every surrogate does not */
	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
		uint8_t b[4];
		size_t n;
		if (cp < 0x80) {
			b[0] = (uint8_t)cp;
			n = 1;
		} else if (cp < 0x800) {
			b[0] = (uint8_t)(0xC0 | cp >> 6);
			b[1] = (uint8_t)(0x80 | (cp & 63));
			n = 2;
		} else if (cp < 0x10000) {
			b[0] = (uint8_t)(0xE0 | cp >> 12);
			b[1] = (uint8_t)(0x80 | (cp >> 6 & 63));
			b[2] = (uint8_t)(0x80 | (cp & 63));
			n = 3;
		} else {
			b[0] = (uint8_t)(0xF0 | cp >> 18);
			b[1] = (uint8_t)(0x80 | (cp >> 12 & 63));
			b[2] = (uint8_t)(0x80 | (cp >> 6 & 63));
			b[3] = (uint8_t)(0x80 | (cp & 63));
			n = 4;
		}
		bool want = cp < 0xD800 || cp > 0xDFFF;
		if (relay_utf8_valid(b, n) != want)
			cr_assert_fail("U+%04X", cp);
	}
}

static enum relay_err room(const char *s, struct relay_span *out)
{
	return relay_room_name_check((const uint8_t *)s, strlen(s), out);
}

Test(room, trims_ascii_whitespace_at_both_ends)
{
	struct relay_span out;
	const char *s = " \t\n\v\f\rphysics lab\r\f\v\n\t ";
	cr_assert_eq(room(s, &out), RELAY_ERR_NONE);
	cr_assert_eq(out.n, strlen("physics lab"));
	cr_assert_eq(memcmp(out.p, "physics lab", out.n), 0);
	cr_assert_eq(out.p, (const uint8_t *)s + 6, "points inside the input");
	cr_assert_eq(room(" \t ", &out), RELAY_ERR_INVALID_ROOM);
	cr_assert_eq(room("", &out), RELAY_ERR_INVALID_ROOM);
	/* NBSP is not ASCII whitespace: kept, and it is not a control */
	cr_assert_eq(room("\xC2\xA0x", &out), RELAY_ERR_NONE);
	cr_assert_eq(out.n, 3);
	cr_assert_eq(room("x", NULL), RELAY_ERR_NONE);
}

Test(room, limit_is_64_bytes_after_trimming)
{
	char b[80];
	memset(b, 'a', 64);
	b[64] = 0;
	cr_assert_eq(room(b, NULL), RELAY_ERR_NONE);
	b[64] = 'a';
	b[65] = 0;
	cr_assert_eq(room(b, NULL), RELAY_ERR_INVALID_ROOM);
	char t[80] = "   ";
	memset(t + 3, 'a', 64);
	strcpy(t + 67, "  ");
	cr_assert_eq(room(t, NULL), RELAY_ERR_NONE);
	/* 21 x 3-byte chars = 63 bytes ok, 22 = 66 bytes too long */
	char u[80] = "";
	for (int i = 0; i < 21; i++)
		strcat(u, "\xE2\x82\xAC");
	cr_assert_eq(room(u, NULL), RELAY_ERR_NONE);
	strcat(u, "\xE2\x82\xAC");
	cr_assert_eq(room(u, NULL), RELAY_ERR_INVALID_ROOM);
}

Test(room, rejects_control_characters)
{
	cr_assert_eq(room("a\x01" "b", NULL), RELAY_ERR_INVALID_ROOM);
	cr_assert_eq(room("a\x1F" "b", NULL), RELAY_ERR_INVALID_ROOM);
	cr_assert_eq(room("a\nb", NULL), RELAY_ERR_INVALID_ROOM, "inner newline");
	cr_assert_eq(room("a\tb", NULL), RELAY_ERR_INVALID_ROOM, "inner tab");
	cr_assert_eq(room("a\x7F", NULL), RELAY_ERR_INVALID_ROOM);
	cr_assert_eq(room("a\xC2\x80", NULL), RELAY_ERR_INVALID_ROOM);
	cr_assert_eq(room("a\xC2\x9F", NULL), RELAY_ERR_INVALID_ROOM);
	cr_assert_eq(room("a\xC2\xA0", NULL), RELAY_ERR_NONE);
	cr_assert_eq(room("\xC3\x80", NULL), RELAY_ERR_NONE, "U+00C0 is a letter");
	const uint8_t nul[] = {'a', 0, 'b'};
	cr_assert_eq(relay_room_name_check(nul, 3, NULL), RELAY_ERR_INVALID_ROOM);
}

Test(room, rejects_invalid_utf8)
{
	cr_assert_eq(room("a\xC0\x80", NULL), RELAY_ERR_INVALID_ROOM);
	cr_assert_eq(room("\xED\xA0\x80", NULL), RELAY_ERR_INVALID_ROOM);
	cr_assert_eq(room("\xFF", NULL), RELAY_ERR_INVALID_ROOM);
	cr_assert_eq(room("x\xE2\x82", NULL), RELAY_ERR_INVALID_ROOM);
	cr_assert_eq(room("\xF0\x9F\x98\x80", NULL), RELAY_ERR_NONE);
}

Test(userid, is_1_to_128_bytes_of_utf8_without_controls_and_is_not_trimmed)
{
	char b[140];
	memset(b, 'u', 128);
	cr_assert_eq(relay_userid_check((const uint8_t *)b, 128), RELAY_ERR_NONE);
	cr_assert_eq(relay_userid_check((const uint8_t *)b, 129), RELAY_ERR_INVALID_PAYLOAD);
	cr_assert_eq(relay_userid_check((const uint8_t *)b, 0), RELAY_ERR_INVALID_PAYLOAD);
	cr_assert_eq(relay_userid_check((const uint8_t *)"a\x7F", 2), RELAY_ERR_INVALID_PAYLOAD);
	cr_assert_eq(relay_userid_check((const uint8_t *)"a\xC2\x85", 3), RELAY_ERR_INVALID_PAYLOAD);
	cr_assert_eq(relay_userid_check((const uint8_t *)"\xC3\xA9", 2), RELAY_ERR_NONE);
	cr_assert_eq(relay_userid_check((const uint8_t *)"\xC3", 1), RELAY_ERR_INVALID_PAYLOAD);
	cr_assert_eq(relay_userid_check((const uint8_t *)" a ", 3), RELAY_ERR_NONE, "not trimmed");
}
