/* test_json.c -- the one-pass JSON validator and field extraction (json.c):
 * the corpus under test/data/json/{accept,reject}, the spec's edge cases, and
 * extraction of top-level fields. */
#include "unit.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef RL_JSON_CORPUS
#error "meson passes RL_JSON_CORPUS, the path of test/data/json"
#endif

static bool valid(const uint8_t *p, size_t n)
{
	return relay_json_parse(p, n, NULL, 0, NULL) == 0;
}

static bool valid_s(const char *s)
{
	return valid((const uint8_t *)s, strlen(s));
}

/* ---- corpus -------------------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "open %s", path);
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
	cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return b;
}

/* Checks every file of <dir> against <want>; returns how many it checked. */
static size_t corpus_dir(const char *dir, bool want)
{
	char path[4096];
	size_t count = 0;
	DIR *d = opendir(dir);

	cr_assert_not_null(d, "corpus dir %s", dir);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		size_t n;
		uint8_t *b = read_file(path, &n);
		/* exact-size copy so ASan sees any over-read */
		uint8_t *exact = malloc(n > 0 ? n : 1);
		memcpy(exact, b, n);
		struct relay_json_result res;
		int rc = relay_json_parse(exact, n, NULL, 0, &res);
		cr_expect_eq(rc == 0, want, "%s: %s (%s at %zu)", want ? "accept" : "reject",
			     e->d_name, rc ? res.err_msg : "valid", rc ? res.err_off : 0);
		if (rc != 0)
			cr_expect_leq(res.err_off, n, "%s: error offset past the end", e->d_name);
		/* asking for fields never changes the verdict */
		uint8_t room[8];
		struct relay_json_field f[3] = {
			{.key = "room", .buf = room, .cap = sizeof room}, {.key = "content"}, {.key = "a"},
		};
		cr_expect_eq(relay_json_parse(exact, n, f, 3, NULL), rc, "%s: verdict with fields",
			     e->d_name);
		free(exact);
		free(b);
		count++;
	}
	closedir(d);
	return count;
}

Test(json, every_corpus_file_gets_the_verdict_of_its_folder)
{
	size_t a = corpus_dir(RL_JSON_CORPUS "/accept", true);
	size_t r = corpus_dir(RL_JSON_CORPUS "/reject", false);
	cr_assert_geq(a, 60, "accept corpus too small: %zu", a);
	cr_assert_geq(r, 100, "reject corpus too small: %zu", r);
	cr_assert_geq(a + r, 200, "corpus has %zu cases, want >= 200", a + r);
}

/* ---- the spec's edge cases, inline -------------------------------------- */

static void nest(char *out, int depth, char open, char close)
{
	for (int i = 0; i < depth; i++)
		out[i] = open;
	for (int i = 0; i < depth; i++)
		out[depth + i] = close;
	out[2 * depth] = 0;
}

Test(json, depth_64_passes_65_fails)
{
	char b[256];
	nest(b, 64, '[', ']');
	cr_assert(valid_s(b));
	nest(b, 65, '[', ']');
	cr_assert_not(valid_s(b));

	/* {"a":{"a":...{}}} */
	char o[1024];
	for (int depth = 64; depth <= 65; depth++) {
		size_t k = 0;
		for (int i = 0; i < depth - 1; i++) {
			memcpy(o + k, "{\"a\":", 5);
			k += 5;
		}
		memcpy(o + k, "{}", 2);
		k += 2;
		for (int i = 0; i < depth - 1; i++)
			o[k++] = '}';
		o[k] = 0;
		cr_assert_eq(valid_s(o), depth == 64, "object depth %d", depth);
	}
}

Test(json, deep_nesting_is_rejected_without_recursion)
{
	size_t n = 1 << 20;
	uint8_t *b = malloc(n);
	memset(b, '[', n);
	struct relay_json_result res;
	cr_assert_eq(relay_json_parse(b, n, NULL, 0, &res), -1);
	cr_assert_eq(res.err_off, 64, "detected at the 65th bracket");
	free(b);
}

Test(json, any_value_is_a_whole_document_and_its_kind_is_reported)
{
	const char *ok[] = {"2", "-0", "\"s\"", "true", "false", "null", "[]", "{}",
			    " 1 ", "\t\r\n1\n", "1e400", "123456789012345678901234567890"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		cr_assert(valid_s(ok[i]), "%s", ok[i]);
	struct relay_json_result res;
	cr_assert_eq(relay_json_parse(RL_J("2"), NULL, 0, &res), 0);
	cr_assert_eq(res.top, RELAY_JSON_NUMBER);
	cr_assert_eq(relay_json_parse(RL_J(" [1]"), NULL, 0, &res), 0);
	cr_assert_eq(res.top, RELAY_JSON_ARRAY);
	cr_assert_eq(relay_json_parse(RL_J("{}"), NULL, 0, &res), 0);
	cr_assert_eq(res.top, RELAY_JSON_OBJECT);
	cr_assert_eq(relay_json_parse(RL_J("\"x\""), NULL, 0, &res), 0);
	cr_assert_eq(res.top, RELAY_JSON_STRING);
	cr_assert_eq(relay_json_parse(RL_J("null"), NULL, 0, &res), 0);
	cr_assert_eq(res.top, RELAY_JSON_NULL);
}

Test(json, empty_and_whitespace_only_are_invalid)
{
	cr_assert_not(valid((const uint8_t *)"", 0));
	cr_assert_not(valid(NULL, 0));
	cr_assert_not(valid_s(" "));
	cr_assert_not(valid_s("\n\t\r "));
}

Test(json, only_space_tab_lf_and_cr_are_whitespace)
{
	cr_assert(valid_s(" \t\n\r{} \t\n\r"));
	cr_assert_not(valid_s("\f{}"));
	cr_assert_not(valid_s("{}\v"));
	cr_assert_not(valid_s("[1,\f2]"));
	cr_assert_not(valid((const uint8_t *)"{}\0", 3));
	cr_assert_not(valid_s("\xC2\xA0{}")); /* NBSP */
}

Test(json, bom_is_rejected)
{
	cr_assert_not(valid_s("\xEF\xBB\xBF{}"));
	cr_assert(valid_s("\"\xEF\xBB\xBF\"")); /* U+FEFF inside a string is fine */
}

Test(json, errors_report_offset_and_reason)
{
	struct relay_json_result res;
	cr_assert_eq(relay_json_parse(RL_J("[1,2,]"), NULL, 0, &res), -1);
	cr_assert_eq(res.err_off, 5);
	cr_assert_not_null(res.err_msg);
	cr_assert_eq(relay_json_parse(RL_J("{\"a\":\"\\x\"}"), NULL, 0, &res), -1);
	cr_assert_eq(res.err_off, 6);
	cr_assert_str_eq(res.err_msg, "invalid escape");
	cr_assert_eq(relay_json_parse(RL_J("{} x"), NULL, 0, &res), -1);
	cr_assert_eq(res.err_off, 3);
	cr_assert_eq(relay_json_parse(RL_J("\"\xC0\x80\""), NULL, 0, &res), -1);
	cr_assert_eq(res.err_off, 1);
	cr_assert_str_eq(res.err_msg, "invalid UTF-8");
}

Test(json, every_two_byte_string_body_gets_the_verdict_of_a_reference)
{
	/* Brute force: "\"" + b1 + b2 + "\"" for every byte pair, against a
	 * reference written independently of json.c. */
	unsigned nbad = 0, first = 0;
	for (unsigned b1 = 0; b1 < 256; b1++) {
		for (unsigned b2 = 0; b2 < 256; b2++) {
			uint8_t s[4] = {'"', (uint8_t)b1, (uint8_t)b2, '"'};
			bool want;
			if (b1 == '"')
				want = false; /* "" then trailing bytes */
			else if (b1 == '\\')
				want = strchr("\"\\/bfnrt", (int)b2) != NULL && b2 != 0;
			else if (b1 < 0x20)
				want = false;
			else if (b1 < 0x80)
				want = b2 >= 0x20 && b2 < 0x80 && b2 != '"' && b2 != '\\';
			else if (b1 >= 0xC2 && b1 <= 0xDF)
				want = b2 >= 0x80 && b2 <= 0xBF;
			else
				want = false; /* stray, overlong lead, or truncated */
			if (valid(s, 4) != want && nbad++ == 0)
				first = b1 << 8 | b2;
		}
	}
	cr_assert_eq(nbad, 0, "%u wrong verdicts, first for bytes %04x", nbad, first);
}

/* ---- field extraction ---------------------------------------------------- */

struct msg_fields {
	uint8_t room_buf[128];
	struct relay_json_field f[2];
};

static int parse_msg(struct msg_fields *m, const char *json)
{
	memset(m, 0, sizeof *m);
	m->f[0] = (struct relay_json_field){.key = "room", .buf = m->room_buf, .cap = sizeof m->room_buf};
	m->f[1] = (struct relay_json_field){.key = "content"};
	return relay_json_parse((const uint8_t *)json, strlen(json), m->f, 2, NULL);
}

static void expect_room(const struct msg_fields *m, const char *room)
{
	cr_assert_eq(m->f[0].kind, RELAY_JSON_STRING);
	cr_assert_eq(m->f[0].dec_len, strlen(room), "room length %zu, want %zu",
		     m->f[0].dec_len, strlen(room));
	cr_assert_eq(memcmp(m->room_buf, room, strlen(room)), 0);
}

static void expect_content(const struct msg_fields *m, const char *raw)
{
	cr_assert_eq(m->f[1].raw.n, strlen(raw), "content is %.*s, want %s",
		     (int)m->f[1].raw.n, (const char *)m->f[1].raw.p, raw);
	cr_assert_eq(memcmp(m->f[1].raw.p, raw, strlen(raw)), 0);
}

Test(extract, room_and_content_at_any_position)
{
	struct msg_fields m;
	const char *cases[] = {
		"{\"room\":\"physics\",\"content\":{\"a\":[1,2]}}",
		"{\"content\":{\"a\":[1,2]},\"room\":\"physics\"}",
		"{\"x\":1,\"content\":{\"a\":[1,2]},\"y\":[{}],\"room\":\"physics\",\"z\":null}",
		" { \"room\" : \"physics\" , \"content\" :\t{\"a\":[1,2]}\n}\n",
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cr_assert_eq(parse_msg(&m, cases[i]), 0, "%s", cases[i]);
		expect_room(&m, "physics");
		cr_assert_eq(m.f[1].kind, RELAY_JSON_OBJECT);
		expect_content(&m, "{\"a\":[1,2]}");
	}
}

Test(extract, content_of_every_kind_verbatim)
{
	struct msg_fields m;
	static const struct {
		const char *content;
		enum relay_json_kind kind;
	} c[] = {
		{"\"hi \\u00e9 \\n\"", RELAY_JSON_STRING}, {"-1.5e+10", RELAY_JSON_NUMBER},
		{"[1, [2], {\"room\":3}]", RELAY_JSON_ARRAY}, {"{ }", RELAY_JSON_OBJECT},
		{"true", RELAY_JSON_TRUE}, {"false", RELAY_JSON_FALSE}, {"null", RELAY_JSON_NULL},
		{"0", RELAY_JSON_NUMBER}, {"\"\"", RELAY_JSON_STRING}, {"[]", RELAY_JSON_ARRAY},
	};
	char json[256];
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		snprintf(json, sizeof json, "{\"room\":\"r\",\"content\": \n%s\t }", c[i].content);
		cr_assert_eq(parse_msg(&m, json), 0, "%s", json);
		cr_assert_eq(m.f[1].kind, c[i].kind, "%s", json);
		expect_content(&m, c[i].content);
		snprintf(json, sizeof json, "{\"content\":%s}", c[i].content);
		cr_assert_eq(parse_msg(&m, json), 0, "%s", json);
		expect_content(&m, c[i].content);
		cr_assert_eq(m.f[0].kind, RELAY_JSON_NONE);
	}
}

Test(extract, nested_room_keys_are_not_picked)
{
	struct msg_fields m;
	cr_assert_eq(parse_msg(&m, "{\"content\":{\"room\":\"inner\"},\"x\":[{\"room\":\"deep\"}]}"), 0);
	cr_assert_eq(m.f[0].kind, RELAY_JSON_NONE);
	cr_assert_eq(m.f[0].raw.p, NULL);
	cr_assert_eq(parse_msg(&m, "[{\"room\":\"a\"}]"), 0);
	cr_assert_eq(m.f[0].kind, RELAY_JSON_NONE);
	cr_assert_eq(parse_msg(&m, "{\"a\":{\"room\":\"x\"},\"room\":\"outer\",\"b\":{\"room\":\"y\"}}"), 0);
	expect_room(&m, "outer");
	/* a key "room" whose value holds "room" keys and strings */
	cr_assert_eq(parse_msg(&m, "{\"content\":{\"room\":{\"content\":1}},\"room\":\"r\"}"), 0);
	expect_room(&m, "r");
	expect_content(&m, "{\"room\":{\"content\":1}}");
}

Test(extract, last_duplicate_wins)
{
	struct msg_fields m;
	cr_assert_eq(parse_msg(&m, "{\"room\":\"first\",\"content\":1,\"room\":\"second\",\"content\":[2]}"), 0);
	expect_room(&m, "second");
	expect_content(&m, "[2]");
	cr_assert_eq(m.f[1].kind, RELAY_JSON_ARRAY);
	/* a later non-string duplicate replaces the kind too */
	cr_assert_eq(parse_msg(&m, "{\"room\":\"first\",\"room\":5}"), 0);
	cr_assert_eq(m.f[0].kind, RELAY_JSON_NUMBER);
	cr_assert_eq(m.f[0].dec_len, 0);
	/* a longer first value does not leak into a shorter last one */
	cr_assert_eq(parse_msg(&m, "{\"room\":\"\\ud800long\",\"room\":\"ok\"}"), 0);
	expect_room(&m, "ok");
	cr_assert_not(m.f[0].lone_surrogate);
	/* a duplicate spelled with escapes is still the same key */
	cr_assert_eq(parse_msg(&m, "{\"room\":\"a\",\"ro\\u006fm\":\"b\"}"), 0);
	expect_room(&m, "b");
}

Test(extract, escapes_in_room_are_decoded)
{
	struct msg_fields m;
	cr_assert_eq(parse_msg(&m, "{\"room\":\"ph\\u0079sics \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}"), 0);
	expect_room(&m, "physics \"q\" \\ / \b\f\n\r\t");
	cr_assert_eq(parse_msg(&m, "{\"room\":\"caf\\u00e9 \\u20AC \\ud83d\\ude00\"}"), 0);
	expect_room(&m, "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
	cr_assert_not(m.f[0].lone_surrogate);
	cr_assert_eq(parse_msg(&m, "{\"room\":\"raw caf\xC3\xA9\"}"), 0);
	expect_room(&m, "raw caf\xC3\xA9");
	cr_assert_eq(m.f[0].raw.n, strlen("\"raw caf\xC3\xA9\""));
	cr_assert_eq(parse_msg(&m, "{\"room\":\"nul\\u0000x\"}"), 0);
	cr_assert_eq(m.f[0].dec_len, 5);
	cr_assert_eq(memcmp(m.room_buf, "nul\0x", 5), 0);
}

Test(extract, keys_are_compared_after_decoding)
{
	struct msg_fields m;
	cr_assert_eq(parse_msg(&m, "{\"\\u0072oom\":\"a\",\"cont\\u0065nt\":7}"), 0);
	expect_room(&m, "a");
	expect_content(&m, "7");
	cr_assert_eq(parse_msg(&m, "{\"room \":\"a\",\"Room\":\"b\",\"roo\":\"c\",\"room\\u0000\":\"d\"}"), 0);
	cr_assert_eq(m.f[0].kind, RELAY_JSON_NONE);
}

Test(extract, lone_surrogate_is_flagged)
{
	struct msg_fields m;
	const char *lone[] = {
		"{\"room\":\"\\ud800\"}", "{\"room\":\"a\\udc00b\"}", "{\"room\":\"\\udc00\\ud800\"}",
		"{\"room\":\"\\ud800\\u0041\"}", "{\"room\":\"\\ud800\\ud800\"}", "{\"room\":\"x\\udbff\"}",
	};
	for (size_t i = 0; i < sizeof lone / sizeof lone[0]; i++) {
		cr_assert_eq(parse_msg(&m, lone[i]), 0, "valid JSON: %s", lone[i]);
		cr_assert(m.f[0].lone_surrogate, "%s", lone[i]);
		long r = relay_json_string_decode(m.f[0].raw, NULL, 0);
		cr_assert_eq(r, -1, "string decoder rejects %s", lone[i]);
	}
	cr_assert_eq(parse_msg(&m, "{\"room\":\"\\ud800\\udc00\"}"), 0);
	cr_assert_not(m.f[0].lone_surrogate);
	expect_room(&m, "\xF0\x90\x80\x80");
	cr_assert_eq(parse_msg(&m, "{\"room\":\"\\uDBFF\\uDFFF\"}"), 0);
	expect_room(&m, "\xF4\x8F\xBF\xBF");
	/* lone surrogates inside content are fine and not flagged on room */
	cr_assert_eq(parse_msg(&m, "{\"room\":\"r\",\"content\":\"\\ud800\"}"), 0);
	cr_assert_not(m.f[0].lone_surrogate);
	expect_content(&m, "\"\\ud800\"");
}

Test(extract, decoded_length_reported_beyond_cap)
{
	uint8_t buf[4];
	struct relay_json_field f = {.key = "userId", .buf = buf, .cap = sizeof buf};
	cr_assert_eq(relay_json_parse(RL_J("{\"userId\":\"abcdefgh\\u00e9\"}"), &f, 1, NULL), 0);
	cr_assert_eq(f.kind, RELAY_JSON_STRING);
	cr_assert_eq(f.dec_len, 10);
	cr_assert_eq(memcmp(buf, "abcd", 4), 0);
	struct relay_json_field g = {.key = "userId"};
	cr_assert_eq(relay_json_parse(RL_J("{\"userId\":\"abc\"}"), &g, 1, NULL), 0);
	cr_assert_eq(g.dec_len, 3);
}

Test(extract, fields_reset_when_absent_or_not_an_object)
{
	struct msg_fields m;
	cr_assert_eq(parse_msg(&m, "{\"room\":\"a\"}"), 0);
	cr_assert_eq(relay_json_parse(RL_J("[\"room\",\"a\"]"), m.f, 2, NULL), 0);
	cr_assert_eq(m.f[0].kind, RELAY_JSON_NONE);
	cr_assert_eq(m.f[1].kind, RELAY_JSON_NONE);
	cr_assert_eq(relay_json_parse(RL_J("{}"), m.f, 2, NULL), 0);
	cr_assert_eq(m.f[0].kind, RELAY_JSON_NONE);
}

Test(extract, invalid_json_returns_minus_one)
{
	struct msg_fields m;
	cr_assert_eq(parse_msg(&m, "{\"room\":\"a\",}"), -1);
	cr_assert_eq(parse_msg(&m, "{\"room\":\"a\"} {}"), -1);
	cr_assert_eq(parse_msg(&m, "{\"room\":\"a\""), -1);
}

Test(extract, string_decode_unescapes_and_reports_the_length_beyond_cap)
{
	uint8_t out[32];
	struct relay_span s = {(const uint8_t *)"\"a\\u00e9\\n\"", 11};
	cr_assert_eq(relay_json_string_decode(s, out, sizeof out), 4);
	cr_assert_eq(memcmp(out, "a\xC3\xA9\n", 4), 0);
	cr_assert_eq(relay_json_string_decode(s, out, 2), 4, "length beyond cap");
	struct relay_span bad = {(const uint8_t *)"abc", 3};
	cr_assert_eq(relay_json_string_decode(bad, out, sizeof out), -1);
	struct relay_span empty = {(const uint8_t *)"\"\"", 2};
	cr_assert_eq(relay_json_string_decode(empty, out, sizeof out), 0);
}
