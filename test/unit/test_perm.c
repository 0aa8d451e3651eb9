/* test_perm.c -- room permission patterns (perm.c): exact, prefix `*`, `*`
 * alone, missing list, no claim, the limits, and the array walker. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>

#include "relay/perm.h"

#ifdef RL_TEST_ASAN
size_t __sanitizer_get_current_allocated_bytes(void); /* gcc ships no header */
#else
#include <malloc.h>
#endif

static char why[160];

/* Heap bytes in use (ASan's allocator under ASan, glibc's otherwise): a leak
 * repeated in a loop shows here even where LeakSanitizer's conservative stack
 * scan still finds a stale pointer to it. */
static size_t heap_in_use(void)
{
#ifdef RL_TEST_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	return mallinfo2().uordblks;
#endif
}

/* Compiles the `rooms` JSON <json>; asserts it is valid JSON first. */
static int compile(const char *json, struct rl_perm **p)
{
	struct relay_span s = {(const uint8_t *)json, strlen(json)};

	cr_assert_eq(relay_json_parse(s.p, s.n, NULL, 0, NULL), 0, "test JSON invalid: %s", json);
	*p = NULL;
	why[0] = '\0';
	return rl_perm_compile(s, p, why, sizeof why);
}

static struct rl_perm *ok(const char *json)
{
	struct rl_perm *p;

	cr_assert_eq(compile(json, &p), 0, "%s: %s", json, why);
	cr_assert_not_null(p);
	return p;
}

static void refused(const char *json, const char *text)
{
	struct rl_perm *p;

	cr_assert_eq(compile(json, &p), -EINVAL, "%s compiled", json);
	cr_assert_null(p);
	cr_assert(strstr(why, text) != NULL, "'%s' lacks '%s'", why, text);
}

static bool join(const struct rl_perm *p, const char *room)
{
	return rl_perm_allows(p, RL_PERM_JOIN, (const uint8_t *)room, strlen(room));
}

static bool publish(const struct rl_perm *p, const char *room)
{
	return rl_perm_allows(p, RL_PERM_PUBLISH, (const uint8_t *)room, strlen(room));
}

Test(perm, exact_name_matches_only_itself)
{
	struct rl_perm *p = ok("{\"join\":[\"lobby\"],\"publish\":[\"lobby\"]}");

	cr_assert(join(p, "lobby"));
	cr_assert(publish(p, "lobby"));
	cr_assert_not(join(p, "lobb"));
	cr_assert_not(join(p, "lobby2"));
	cr_assert_not(join(p, "Lobby"));
	cr_assert_not(join(p, "other"));
	rl_perm_free(p);
}

Test(perm, prefix_star_matches_the_prefix_and_longer_names)
{
	struct rl_perm *p = ok("{\"join\":[\"team.*\"],\"publish\":[]}");

	cr_assert(join(p, "team.a"));
	cr_assert(join(p, "team."), "the prefix itself matches");
	cr_assert(join(p, "team.a.b.c"));
	cr_assert_not(join(p, "team"));
	cr_assert_not(join(p, "teams"));
	cr_assert_not(join(p, "xteam.a"));
	cr_assert_not(publish(p, "team.a"), "empty list allows nothing");
	rl_perm_free(p);
}

Test(perm, star_alone_matches_every_room)
{
	struct rl_perm *p = ok("{\"join\":[\"lobby\",\"*\"],\"publish\":[\"x\"]}");

	cr_assert(join(p, "anything"));
	cr_assert(join(p, "a"));
	cr_assert_not(publish(p, "anything"), "only the list that has `*`");
	cr_assert(publish(p, "x"));
	rl_perm_free(p);
}

Test(perm, a_missing_list_allows_nothing)
{
	struct rl_perm *p = ok("{\"join\":[\"*\"]}");

	cr_assert(join(p, "lobby"));
	cr_assert_not(publish(p, "lobby"));
	rl_perm_free(p);
	p = ok("{}");
	cr_assert_not(join(p, "lobby"));
	cr_assert_not(publish(p, "lobby"));
	rl_perm_free(p);
}

Test(perm, no_claim_allows_everything)
{
	cr_assert(join(NULL, "lobby"));
	cr_assert(publish(NULL, "anything.at.all"));
	cr_assert_eq(rl_perm_size(NULL), 0);
}

Test(perm, only_a_final_star_is_a_wildcard)
{
	struct rl_perm *p = ok("{\"join\":[\"a*b\"]}");

	cr_assert(join(p, "a*b"));
	cr_assert_not(join(p, "axb"));
	cr_assert_not(join(p, "a"));
	rl_perm_free(p);
	p = ok("{\"join\":[\"te am *\"]}");
	cr_assert(join(p, "te am x"), "inner and trailing spaces belong to the prefix");
	cr_assert_not(join(p, "te amx"));
	rl_perm_free(p);
}

Test(perm, many_exact_names_and_prefixes_all_found)
{
	char json[8192], name[32];
	size_t n = 0;

	/* 64 exact names in scrambled order (and lengths), 64 prefixes */
	n += (size_t)snprintf(json + n, sizeof json - n, "{\"join\":[");
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(json + n, sizeof json - n, "%s\"r%d%s\"", i ? "," : "",
				      (i * 37) % 64, i % 3 ? "" : "-long");
	n += (size_t)snprintf(json + n, sizeof json - n, "],\"publish\":[");
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(json + n, sizeof json - n, "%s\"p%d.*\"", i ? "," : "", i);
	snprintf(json + n, sizeof json - n, "]}");
	struct rl_perm *p = ok(json);
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof name, "r%d%s", (i * 37) % 64, i % 3 ? "" : "-long");
		cr_assert(join(p, name), "%s", name);
		snprintf(name, sizeof name, "r%d%s", (i * 37) % 64, i % 3 ? "-long" : "");
		cr_assert_not(join(p, name), "%s", name);
		snprintf(name, sizeof name, "p%d.x", i);
		cr_assert(publish(p, name), "%s", name);
		cr_assert_not(join(p, name));
	}
	cr_assert_not(join(p, "r"));
	cr_assert_not(publish(p, "p64.x"));
	cr_assert_lt(rl_perm_size(p), 2048, "one compact allocation: %zu", rl_perm_size(p));
	rl_perm_free(p);
}

Test(perm, duplicates_are_harmless)
{
	struct rl_perm *p = ok("{\"join\":[\"a\",\"b\",\"a\",\"b\",\"a\"],\"publish\":[\"a\"]}");

	cr_assert(join(p, "a"));
	cr_assert(join(p, "b"));
	cr_assert_not(join(p, "c"));
	cr_assert(publish(p, "a"));
	cr_assert_not(publish(p, "b"));
	rl_perm_free(p);
}

Test(perm, escaped_patterns_are_decoded)
{
	struct rl_perm *p = ok("{\"join\":[\"caf\\u00e9\",\"q\\\"uote\", \"sl\\/ash*\"]}");

	cr_assert(join(p, "café"));
	cr_assert(join(p, "q\"uote"));
	cr_assert(join(p, "sl/ash.x"));
	rl_perm_free(p);
}

Test(perm, invalid_patterns_are_refused)
{
	refused("[\"lobby\"]", "rooms is not an object");
	refused("\"lobby\"", "rooms is not an object");
	refused("{\"join\":\"lobby\"}", "rooms.join is not an array");
	refused("{\"publish\":{}}", "rooms.publish is not an array");
	refused("{\"join\":[\"a\",1]}", "rooms.join[1] is not a string");
	refused("{\"join\":[\"\"]}", "rooms.join[0] is not a valid room pattern");
	refused("{\"join\":[\" lobby\"]}", "rooms.join[0]");
	refused("{\"join\":[\"lobby \"]}", "rooms.join[0]");
	refused("{\"join\":[\" team*\"]}", "rooms.join[0]");
	refused("{\"join\":[\"a\\u0001*\"]}", "rooms.join[0]");
	refused("{\"join\":[\"a\\u0007\"]}", "rooms.join[0]");
	refused("{\"join\":[\"\\ud800\"]}", "rooms.join[0]");
	refused("{\"publish\":[\"ok\",\"ok2\",\"0123456789012345678901234567890123456789"
		"01234567890123456789012345\"]}",
		"rooms.publish[2]");
}

Test(perm, pattern_lengths_follow_the_room_name_limit)
{
	char json[256], name[80];

	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(json, sizeof json, "{\"join\":[\"%s\",\"%s*\"]}", name, name);
	struct rl_perm *p = ok(json);
	cr_assert(join(p, name));
	rl_perm_free(p);
	snprintf(json, sizeof json, "{\"join\":[\"%sn\"]}", name);
	refused(json, "rooms.join[0]");
	snprintf(json, sizeof json, "{\"join\":[\"%sn*\"]}", name);
	refused(json, "rooms.join[0]");
}

Test(perm, more_than_64_patterns_in_a_list_are_refused)
{
	char json[4096];
	size_t n = (size_t)snprintf(json, sizeof json, "{\"join\":[");

	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(json + n, sizeof json - n, "%s\"r%d\"", i ? "," : "", i);
	snprintf(json + n, sizeof json - n, "]}");
	refused(json, "more than 64 patterns");
	/* 64 is fine */
	char *last = strrchr(json, ',');
	strcpy(last, "]}");
	struct rl_perm *p = ok(json);
	rl_perm_free(p);
	RL_ASSERT_NO_LEAKS();
}

Test(perm, pattern_bytes_are_bounded)
{
	static char json[16384];
	char name[65];
	size_t n = (size_t)snprintf(json, sizeof json, "{\"join\":[");

	/* 64 + 64 patterns of 40 bytes = 5120 bytes > RL_PERM_MAX_BYTES */
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof name, "%040d", i);
		n += (size_t)snprintf(json + n, sizeof json - n, "%s\"%s\"", i ? "," : "", name);
	}
	n += (size_t)snprintf(json + n, sizeof json - n, "],\"publish\":[");
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof name, "%040d", i);
		n += (size_t)snprintf(json + n, sizeof json - n, "%s\"%s\"", i ? "," : "", name);
	}
	snprintf(json + n, sizeof json - n, "]}");
	refused(json, "exceed 4096 bytes");
}

Test(perm, string_array_walker_handles_whitespace_and_escapes)
{
	const char *a = "[ \"a\" ,\n\t\"b\\\"c\\\\\" , \"\" ]";
	struct rl_json_strs it;
	struct relay_span t;
	uint8_t buf[16];

	cr_assert_eq(relay_json_parse((const uint8_t *)a, strlen(a), NULL, 0, NULL), 0);
	rl_json_strs_init(&it, (struct relay_span){(const uint8_t *)a, strlen(a)});
	cr_assert_eq(rl_json_strs_next(&it, &t), 1);
	cr_assert_eq(relay_json_string_decode(t, buf, sizeof buf), 1);
	cr_assert_eq(rl_json_strs_next(&it, &t), 1);
	cr_assert_eq(relay_json_string_decode(t, buf, sizeof buf), 4);
	cr_assert(memcmp(buf, "b\"c\\", 4) == 0);
	cr_assert_eq(rl_json_strs_next(&it, &t), 1);
	cr_assert_eq(t.n, 2);
	cr_assert_eq(rl_json_strs_next(&it, &t), 0);
	cr_assert_eq(rl_json_strs_next(&it, &t), 0, "stays at the end");
	rl_json_strs_init(&it, (struct relay_span){(const uint8_t *)"[]", 2});
	cr_assert_eq(rl_json_strs_next(&it, &t), 0);
	rl_json_strs_init(&it, (struct relay_span){(const uint8_t *)"[\"x\",{}]", 8});
	cr_assert_eq(rl_json_strs_next(&it, &t), 1);
	cr_assert_eq(rl_json_strs_next(&it, &t), -1);
}

Test(perm, compiling_and_freeing_in_a_loop_keeps_the_heap_flat)
{
	struct rl_perm *p;
	size_t before = heap_in_use();

	for (int i = 0; i < 1000; i++) {
		p = ok("{\"join\":[\"lobby\",\"team.*\"],\"publish\":[\"*\"]}");
		rl_perm_free(p);
		cr_assert_eq(compile("{\"join\":[\"ok\",\"\"]}", &p), -EINVAL);
	}
	cr_assert_lt(heap_in_use(), before + 8192, "heap grew by %zu bytes over 1000 compiles",
		     heap_in_use() - before);
}
