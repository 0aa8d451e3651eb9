/* test_resp.c -- cluster/resp.c: commands encoded as Redis expects them,
 * replies parsed at every split point, malformed input refused. */
#include <criterion/criterion.h>
#include <string.h>

#include "cluster/resp.h"

static size_t parse_all(const char *in, struct rl_resp_reply *r)
{
	long n = rl_resp_parse((const uint8_t *)in, strlen(in), 1 << 20, r);
	cr_assert_gt(n, 0, "%s", in);
	return (size_t)n;
}

Test(resp, a_command_is_an_array_of_bulk_strings)
{
	struct rl_buf b = {0};
	const char *argv[] = {"PUBLISH", "relay:{r}", ""};
	cr_assert_eq(rl_resp_cmdv(&b, 3, argv), 0);
	cr_assert_eq(rl_resp_arg_u64(&b, 1234567890123ull), 0);
	const char *want =
	    "*3\r\n$7\r\nPUBLISH\r\n$9\r\nrelay:{r}\r\n$0\r\n\r\n$13\r\n1234567890123\r\n";
	cr_assert_eq(b.len, strlen(want));
	cr_assert_eq(memcmp(b.p, want, b.len), 0, "%.*s", (int)b.len, b.p);
	cr_assert_eq(rl_resp_arg_size(7), strlen("$7\r\nPUBLISH\r\n"));
	rl_buf_free(&b);
}

Test(resp, an_argument_written_in_place_keeps_its_announced_length)
{
	struct rl_buf b = {0};
	uint8_t *w = rl_resp_arg_begin(&b, 5);
	cr_assert_not_null(w);
	memcpy(w, "\r\n\0ab", 5); /* binary safe */
	rl_resp_arg_end(&b, 5);
	cr_assert_eq(b.len, 4 + 5 + 2);
	cr_assert_eq(memcmp(b.p, "$5\r\n\r\n\0ab\r\n", b.len), 0);
	rl_buf_free(&b);
}

Test(resp, a_pubsub_message_parses_into_three_elements)
{
	struct rl_resp_reply r = {0};
	const char *in = "*3\r\n$7\r\nmessage\r\n$9\r\nrelay:{r}\r\n$4\r\na\r\nb\r\n+OK\r\n";
	size_t n = parse_all(in, &r);
	cr_assert_eq(n, strlen(in) - 5, "the next reply is not consumed");
	cr_assert_eq(r.top.type, RL_RESP_ARRAY);
	cr_assert_eq(r.top.n, 3);
	cr_assert(rl_resp_is(&r.el[0], "message"));
	cr_assert(rl_resp_is(&r.el[1], "relay:{r}"));
	cr_assert_eq(r.el[2].n, 4);
	cr_assert_eq(memcmp(r.el[2].p, "a\r\nb", 4), 0, "bulk strings are binary safe");
	rl_resp_reply_free(&r);
}

Test(resp, every_prefix_of_a_reply_is_incomplete_never_wrong)
{
	struct rl_resp_reply r = {0};
	const char *in = "*4\r\n$9\r\nsubscribe\r\n:-12\r\n$-1\r\n+PONG\r\n";
	size_t len = strlen(in);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(rl_resp_parse((const uint8_t *)in, i, 1 << 20, &r), 0, "prefix %zu",
			     i);
	cr_assert_eq(rl_resp_parse((const uint8_t *)in, len, 1 << 20, &r), (long)len);
	cr_assert_eq(r.el[1].type, RL_RESP_INT);
	cr_assert_eq(r.el[1].i, -12);
	cr_assert(r.el[2].nil);
	cr_assert(rl_resp_is(&r.el[3], "PONG"));
	rl_resp_reply_free(&r);
}

Test(resp, scalars_errors_and_nil)
{
	struct rl_resp_reply r = {0};
	parse_all("-WRONGPASS invalid password\r\n", &r);
	cr_assert_eq(r.top.type, RL_RESP_ERROR);
	cr_assert_eq(r.top.n, strlen("WRONGPASS invalid password"));
	parse_all(":0\r\n", &r);
	cr_assert_eq(r.top.i, 0);
	parse_all("*-1\r\n", &r);
	cr_assert(r.top.nil);
	parse_all("*0\r\n", &r);
	cr_assert_eq(r.top.n, 0);
	rl_resp_reply_free(&r);
}

Test(resp, malformed_or_nested_or_oversized_replies_are_refused)
{
	struct rl_resp_reply r = {0};
	const char *bad[] = {"?x\r\n", ":12x\r\n", "$3\r\nabcd\r\n", "*1\r\n*1\r\n:1\r\n", ":\r\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(rl_resp_parse((const uint8_t *)bad[i], strlen(bad[i]), 1 << 20, &r), 0,
			     "%s", bad[i]);
	cr_assert_lt(rl_resp_parse((const uint8_t *)"$100\r\n", 6, 10, &r), 0, "over max_bulk");
	rl_resp_reply_free(&r);
}

Test(resp, consumed_bytes_leave_room_at_the_front)
{
	struct rl_buf b = {0};
	cr_assert_not_null(rl_buf_reserve(&b, 100));
	b.len = 100;
	rl_buf_consume(&b, 60);
	cr_assert_eq(rl_buf_pending(&b), 40);
	size_t cap = b.cap;
	cr_assert_not_null(rl_buf_reserve(&b, cap - 50));
	cr_assert_eq(b.cap, cap, "moved to the front instead of growing");
	cr_assert_eq(b.off, 0);
	rl_buf_consume(&b, 40);
	cr_assert_eq(b.len, 0, "empty buffers restart at the front");
	rl_buf_free(&b);
}
