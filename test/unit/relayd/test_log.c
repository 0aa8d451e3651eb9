/* test_log.c -- relayd's logging helpers (src/relayd/base/log.c):
 * rl_log_escape renders peer bytes for a log line -- escaped, capped, and
 * with credential values redacted, valid JSON or not.
 * Threading: single-threaded tests. */
#include <criterion/criterion.h>

#include "base/log.h"

#include <stdio.h>
#include <string.h>

static char out[512];

/* rl_log_escape of the C string <in> into <out> with capacity <cap>. */
static const char *esc(const char *in, size_t cap)
{
	memset(out, '#', sizeof(out));
	size_t n = rl_log_escape(out, cap, in, strlen(in));
	cr_assert_lt(n, cap);
	cr_assert_eq(strlen(out), n, "length returned %zu, written %zu", n, strlen(out));
	return out;
}

#define EXPECT(in, want) cr_assert_str_eq(esc((in), sizeof(out)), (want))

Test(log, printable_ascii_is_kept)
{
	EXPECT("{\"room\":\"physics\",\"content\":[1, 2.5e3, true]}",
	       "{\"room\":\"physics\",\"content\":[1, 2.5e3, true]}");
	EXPECT("", "");
}

Test(log, control_and_non_ascii_bytes_are_hex_escaped)
{
	EXPECT("a\x01"
	       "b\x1b[31m\n\r\t\x7f",
	       "a\\x01b\\x1b[31m\\x0a\\x0d\\x09\\x7f");
	EXPECT("caf\xc3\xa9 \xc2\x85", "caf\\xc3\\xa9 \\xc2\\x85");
	EXPECT("back\\slash",
	       "back\\\\slash"); /* unambiguous: "\x01" typed by a peer shows as \\x01 */
}

Test(log, nul_bytes_are_escaped_not_terminating)
{
	static const char in[] = {'a', 0, 'b'};
	size_t n = rl_log_escape(out, sizeof(out), in, sizeof(in));
	cr_assert_eq(n, 6);
	cr_assert_str_eq(out, "a\\x00b");
}

Test(log, long_input_is_cut_with_an_ellipsis)
{
	char in[300];
	memset(in, 'x', sizeof(in) - 1);
	in[299] = '\0';
	const char *r = esc(in, 32);
	cr_assert_eq(strlen(r), 31);
	cr_assert_str_eq(r + 28, "...");
	/* An escape sequence is never split by the cut. */
	memset(in, 0x01, 40);
	in[40] = '\0';
	r = esc(in, 16); /* 15 usable: 3 escapes (12) + "..." */
	cr_assert_str_eq(r, "\\x01\\x01\\x01...");
}

Test(log, input_that_fits_exactly_has_no_ellipsis)
{
	cr_assert_str_eq(esc("abcdefg", 8), "abcdefg");
	cr_assert_str_eq(esc("abcdefgh", 8), "abcd...");
	cr_assert_eq(rl_log_escape(out, 0, "abc", 3), 0);
	cr_assert_str_eq(esc("abc", 1), "");
}

Test(log, token_value_is_redacted)
{
	EXPECT("{\"token\":\"secret123\"}", "{\"token\":[redacted]}");
	EXPECT("{\"userId\":\"ann\",\"token\" : \"eyJhbGciOi.x.y\",\"echo\":true}",
	       "{\"userId\":\"ann\",\"token\" : [redacted],\"echo\":true}");
	EXPECT("{\"token\":12345}", "{\"token\":[redacted]}");
	EXPECT("{\"auth\":{\"token\":[\"a\",\"b\"]}}", "{\"auth\":{\"token\":[redacted]}}");
}

Test(log, credential_like_keys_are_redacted_in_any_case)
{
	EXPECT("{\"access_token\":\"s1\",\"Password\":\"s2\",\"clientSecret\":\"s3\","
	       "\"Authorization\":\"Bearer s4\"}",
	       "{\"access_token\":[redacted],\"Password\":[redacted],\"clientSecret\":[redacted],"
	       "\"Authorization\":[redacted]}");
	/* An escaped key might spell one. */
	EXPECT("{\"\\u0074oken\":\"s5\"}", "{\"\\\\u0074oken\":[redacted]}");
	EXPECT("{\"authorization\":{\"user\":\"u\",\"pw\":\"}\"},\"room\":\"r\"}",
	       "{\"authorization\":[redacted],\"room\":\"r\"}");
}

Test(log, redaction_holds_for_invalid_json)
{
	/* Unterminated string: hidden to the end. */
	EXPECT("{\"token\":\"secret123 and more", "{\"token\":[redacted]");
	/* Missing colon, a bare word with spaces, garbage after it. */
	EXPECT("{\"token\" \"secret123\"", "{\"token\" [redacted]");
	EXPECT("{\"token\":secret 123, \x01}", "{\"token\":[redacted], \\x01}");
	EXPECT("{\"token\":\"secret123\"\x02garbage", "{\"token\":[redacted]\\x02garbage");
	static const char nul[] = "{\"token\":\x00secret";
	rl_log_escape(out, sizeof(out), nul, sizeof(nul) - 1);
	cr_assert_str_eq(out, "{\"token\":[redacted]");
}

Test(log, words_that_are_values_are_not_redacted)
{
	EXPECT("{\"type\":\"token\",\"room\":\"secret\"}",
	       "{\"type\":\"token\",\"room\":\"secret\"}");
	EXPECT("{\"token\":,\"a\":1}", "{\"token\":,\"a\":1}");
}

Test(log, secret_before_the_cap_never_shows)
{
	char in[256];
	snprintf(in, sizeof(in), "{\"room\":\"r\",\"token\":\"secret123secret123secret123\"}");
	for (size_t cap = 1; cap < 64; cap++) {
		const char *r = esc(in, cap);
		cr_assert_null(strstr(r, "secret"), "cap %zu: %s", cap, r);
		cr_assert_null(strstr(r, "sec"), "cap %zu: %s", cap, r);
	}
}

Test(log, output_is_printable_for_every_byte)
{
	unsigned char in[256];
	for (int i = 0; i < 256; i++)
		in[i] = (unsigned char)i;
	size_t n = rl_log_escape(out, sizeof(out), in, sizeof(in));
	for (size_t i = 0; i < n; i++)
		cr_assert(out[i] >= 0x20 && out[i] < 0x7f, "byte %zu is 0x%02x", i,
			  (unsigned char)out[i]);
}
