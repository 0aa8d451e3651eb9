/* test_jw.c -- the JSON writer (jw.c). */
#include "unit.h"

#include <stdio.h>

static uint8_t buf[1024];

static const char *str_of(const void *s, size_t n)
{
	static char out[1024];
	struct relay_jw w;
	relay_jw_init(&w, buf, sizeof buf);
	relay_jw_str(&w, s, n);
	cr_assert_not(w.overflow);
	cr_assert_eq(w.len, relay_jw_str_len(s, n), "relay_jw_str_len agrees");
	memcpy(out, buf, w.len);
	out[w.len] = 0;
	cr_assert_eq(relay_json_parse(buf, w.len, NULL, 0, NULL), 0, "output is valid JSON: %s", out);
	return out;
}

Test(jw, ack_object_in_the_specs_key_order)
{
	struct relay_jw w;
	relay_jw_init(&w, buf, sizeof buf);
	relay_jw_obj_begin(&w);
	relay_jw_key(&w, "status");
	relay_jw_cstr(&w, "joined");
	relay_jw_key(&w, "room");
	relay_jw_cstr(&w, "physics");
	relay_jw_key(&w, "members");
	relay_jw_u64(&w, 3);
	relay_jw_obj_end(&w);
	cr_assert_not(w.overflow);
	const char *want = "{\"status\":\"joined\",\"room\":\"physics\",\"members\":3}";
	cr_assert_eq(w.len, strlen(want));
	cr_assert_eq(memcmp(buf, want, w.len), 0, "%.*s", (int)w.len, buf);
}

Test(jw, containers_nest_with_commas_and_scalars_print_exactly)
{
	struct relay_jw w;
	relay_jw_init(&w, buf, sizeof buf);
	relay_jw_obj_begin(&w);
	relay_jw_key(&w, "a");
	relay_jw_arr_begin(&w);
	relay_jw_i64(&w, -5);
	relay_jw_u64(&w, UINT64_MAX);
	relay_jw_i64(&w, INT64_MIN);
	relay_jw_bool(&w, true);
	relay_jw_bool(&w, false);
	relay_jw_null(&w);
	relay_jw_arr_begin(&w);
	relay_jw_arr_end(&w);
	relay_jw_obj_begin(&w);
	relay_jw_obj_end(&w);
	relay_jw_arr_end(&w);
	relay_jw_key(&w, "content");
	relay_jw_raw(&w, "{\"x\": [1, 2]}", 13);
	relay_jw_key(&w, "z");
	relay_jw_obj_begin(&w);
	relay_jw_key(&w, "q");
	relay_jw_null(&w);
	relay_jw_obj_end(&w);
	relay_jw_obj_end(&w);
	const char *want = "{\"a\":[-5,18446744073709551615,-9223372036854775808,true,false,"
			   "null,[],{}],\"content\":{\"x\": [1, 2]},\"z\":{\"q\":null}}";
	cr_assert_not(w.overflow);
	cr_assert_eq(w.len, strlen(want), "%.*s", (int)w.len, buf);
	cr_assert_eq(memcmp(buf, want, w.len), 0, "%.*s", (int)w.len, buf);
	cr_assert_eq(relay_json_parse(buf, w.len, NULL, 0, NULL), 0);
}

Test(jw, escapes_quotes_backslashes_and_controls)
{
	cr_assert_str_eq(str_of("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
	cr_assert_str_eq(str_of("\b\f\n\r\t", 5), "\"\\b\\f\\n\\r\\t\"");
	cr_assert_str_eq(str_of("\x01\x1f\x7f", 3), "\"\\u0001\\u001f\\u007f\"");
	cr_assert_str_eq(str_of("\0x", 2), "\"\\u0000x\"");
	cr_assert_str_eq(str_of("/", 1), "\"/\"");
	cr_assert_str_eq(str_of("", 0), "\"\"");
	cr_assert_str_eq(str_of("0123456789abcdef\"0123456789", 27),
			 "\"0123456789abcdef\\\"0123456789\"");
}

Test(jw, valid_utf8_passes_through_invalid_becomes_fffd)
{
	cr_assert_str_eq(str_of("caf\xC3\xA9 \xF0\x9F\x98\x80 \xC2\x85", 13),
			 "\"caf\xC3\xA9 \xF0\x9F\x98\x80 \xC2\x85\"");
	cr_assert_str_eq(str_of("a\xFF" "b", 3), "\"a\\ufffdb\"");
	cr_assert_str_eq(str_of("\xED\xA0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\"");
	cr_assert_str_eq(str_of("\xC3", 1), "\"\\ufffd\"");
}

Test(jw, every_byte_alone_gives_valid_json)
{
	for (unsigned c = 0; c < 256; c++) {
		uint8_t b = (uint8_t)c;
		str_of(&b, 1);
	}
}

Test(jw, keys_are_escaped_too)
{
	struct relay_jw w;
	relay_jw_init(&w, buf, sizeof buf);
	relay_jw_obj_begin(&w);
	relay_jw_key(&w, "a\"b");
	relay_jw_u64(&w, 1);
	relay_jw_obj_end(&w);
	cr_assert_eq(memcmp(buf, "{\"a\\\"b\":1}", w.len), 0);
}

Test(jw, overflow_is_sticky_and_never_writes_past_cap)
{
	uint8_t small[16];
	memset(small, 0xEE, sizeof small);
	struct relay_jw w;
	relay_jw_init(&w, small, 10);
	relay_jw_obj_begin(&w);
	relay_jw_key(&w, "status");
	relay_jw_cstr(&w, "connected");
	relay_jw_obj_end(&w);
	cr_assert(w.overflow);
	cr_assert_leq(w.len, 10);
	for (size_t i = 10; i < sizeof small; i++)
		cr_assert_eq(small[i], 0xEE);
	/* exactly fitting does not overflow */
	relay_jw_init(&w, small, 2);
	relay_jw_obj_begin(&w);
	relay_jw_obj_end(&w);
	cr_assert_not(w.overflow);
	cr_assert_eq(w.len, 2);
}

Test(jw, nesting_past_the_writer_limit_is_reported_as_overflow)
{
	struct relay_jw w;
	relay_jw_init(&w, buf, sizeof buf);
	for (int i = 0; i < 32; i++) {
		relay_jw_arr_begin(&w);
		relay_jw_u64(&w, (uint64_t)i);
	}
	cr_assert_not(w.overflow, "32 levels fit");
	for (int i = 0; i < 32; i++) {
		relay_jw_u64(&w, 7);
		relay_jw_arr_end(&w);
	}
	cr_assert_not(w.overflow);
	cr_assert_eq(relay_json_parse(buf, w.len, NULL, 0, NULL), 0);
	relay_jw_init(&w, buf, sizeof buf);
	for (int i = 0; i < 33; i++)
		relay_jw_arr_begin(&w);
	cr_assert(w.overflow, "33 levels: deeper than the writer tracks");
	relay_jw_init(&w, buf, sizeof buf);
	relay_jw_obj_end(&w);
	cr_assert(w.overflow, "closing what was never opened");
}

Test(jw, integers_match_printf)
{
	static const int64_t iv[] = {0, 1, -1, 9, 10, -10, 99, 100, 1732147200123LL, INT64_MAX, INT64_MIN,
				     INT64_MIN + 1, -1000000007LL};
	static const uint64_t uv[] = {0, 1, 9, 10, 1048576, 4294967296ull, UINT64_MAX, UINT64_MAX - 1};
	char want[32];
	struct relay_jw w;

	for (size_t i = 0; i < sizeof iv / sizeof iv[0]; i++) {
		relay_jw_init(&w, buf, sizeof buf);
		relay_jw_i64(&w, iv[i]);
		snprintf(want, sizeof want, "%lld", (long long)iv[i]);
		cr_assert_eq(w.len, strlen(want));
		cr_assert_eq(memcmp(buf, want, w.len), 0, "%s", want);
	}
	for (size_t i = 0; i < sizeof uv / sizeof uv[0]; i++) {
		relay_jw_init(&w, buf, sizeof buf);
		relay_jw_u64(&w, uv[i]);
		snprintf(want, sizeof want, "%llu", (unsigned long long)uv[i]);
		cr_assert_eq(w.len, strlen(want));
		cr_assert_eq(memcmp(buf, want, w.len), 0, "%s", want);
	}
}
