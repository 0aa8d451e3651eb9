/* test_json_tables.c -- every entry of the protocol library's byte tables
 * (src/protocol/json_tables.h for json.c, jw_tables.h for jw.c) against the
 * rule it encodes, recomputed here from RFC 8259 rather than copied: a
 * hand-typed row once marked 0xB2 0xB3 0xB9 as digits, and nothing else
 * would have noticed a wrong entry for a byte no test sends.
 * Threading: Criterion test bodies; constant data. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "json_tables.h"
#include "jw_tables.h"

/* RFC 8259 section 7: the escapes with a one-letter form, as (letter, byte). */
static const char esc_letter[] = "\"\\/bfnrt";
static const uint8_t esc_byte[] = {0x22, 0x5C, 0x2F, 0x08, 0x0C, 0x0A, 0x0D, 0x09};

/* Compares all 256 entries of <got> with <want>; reports every difference. */
static void expect_table(const char *name, const uint8_t got[256], const uint8_t want[256])
{
	unsigned bad = 0;
	for (unsigned b = 0; b < 256; b++) {
		if (got[b] != want[b]) {
			cr_log_error("%s[0x%02X] is %u, its rule says %u", name, b, got[b],
				     want[b]);
			bad++;
		}
	}
	cr_assert_eq(bad, 0, "%s: %u of 256 entries break its rule (listed above)", name, bad);
}

Test(json_tables, ws_is_exactly_space_tab_lf_cr)
{
	/* RFC 8259 section 2: ws = %x20 / %x09 / %x0A / %x0D */
	uint8_t want[256] = {0};
	want[0x20] = want[0x09] = want[0x0A] = want[0x0D] = 1;
	expect_table("json_ws", json_ws, want);
}

Test(json_tables, plain_is_ascii_from_0x20_without_quote_and_backslash)
{
	/* RFC 8259 section 7: unescaped = %x20-21 / %x23-5B / %x5D-10FFFF; bytes
	 * from 0x80 are UTF-8 and go through the UTF-8 check, not this table. */
	uint8_t want[256] = {0};
	for (unsigned b = 0x20; b < 0x80; b++)
		want[b] = b != '"' && b != '\\';
	expect_table("json_plain", json_plain, want);
}

Test(json_tables, value_kind_is_set_only_for_the_first_bytes_of_values)
{
	/* RFC 8259 section 3: value = false / null / true / object / array /
	 * number / string; a number starts with '-' or a digit (section 6). */
	static const struct {
		const char *first; /* every byte such a value may start with */
		uint8_t kind;
	} starts[] = {
		{"{", RELAY_JSON_OBJECT},
		{"[", RELAY_JSON_ARRAY},
		{"\"", RELAY_JSON_STRING},
		{"-0123456789", RELAY_JSON_NUMBER},
		{"t" /* true */, RELAY_JSON_TRUE},
		{"f" /* false */, RELAY_JSON_FALSE},
		{"n" /* null */, RELAY_JSON_NULL},
	};
	uint8_t want[256] = {0};
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
		for (const char *c = starts[i].first; *c != '\0'; c++)
			want[(uint8_t)*c] = starts[i].kind;
	cr_assert_eq(RELAY_JSON_NONE, 0, "0 must mean: starts no value");
	expect_table("json_value_kind", json_value_kind, want);
}

Test(json_tables, hex_gives_the_value_of_each_hex_digit_in_either_case)
{
	/* RFC 8259 section 7: \uXXXX, HEXDIG = DIGIT / "A"-"F" (case-insensitive) */
	static const char lower[] = "0123456789abcdef", upper[] = "0123456789ABCDEF";
	uint8_t want[256];
	memset(want, 255, sizeof(want));
	for (uint8_t v = 0; v < 16; v++)
		want[(uint8_t)lower[v]] = want[(uint8_t)upper[v]] = v;
	expect_table("json_hex", json_hex, want);
}

Test(json_tables, esc_maps_each_one_letter_escape_to_its_byte)
{
	uint8_t want[256] = {0};
	for (size_t i = 0; i < sizeof(esc_byte); i++)
		want[(uint8_t)esc_letter[i]] = esc_byte[i];
	expect_table("json_esc", json_esc, want);
}

Test(json_tables, jw_class_escapes_exactly_what_json_and_the_writer_require)
{
	/* The writer (jw.c): controls get their one-letter escape where JSON has
	 * one, else \u00XX; '"' and '\\' get theirs; DEL is written as \u007f
	 * (JSON allows it raw, but a terminal would act on it); '/' is not
	 * escaped; every byte from 0x80 goes through the UTF-8 check ('x'). */
	uint8_t want[256] = {0};
	for (unsigned b = 0; b < 0x20; b++)
		want[b] = 'u';
	want[0x7F] = 'u';
	for (unsigned b = 0x80; b < 256; b++)
		want[b] = 'x';
	for (size_t i = 0; i < sizeof(esc_byte); i++) {
		uint8_t byte = esc_byte[i], letter = (uint8_t)esc_letter[i];
		if (byte < 0x20)
			want[byte] = letter;
		else if (byte != '/')
			want[byte] = byte; /* '"' and '\\' stand for themselves */
	}
	expect_table("jw_class", jw_class, want);
}
