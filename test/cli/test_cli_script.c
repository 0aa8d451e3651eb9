/* test_cli_script.c -- relay-cli's scriptable side against a live relayd:
 * `sub` + `pub` round trips (order, unicode, quotes), pub from stdin, --json
 * both ways, invalid --json rejected, sub --timeout, the interactive commands
 * read from a pipe; and the error paths (nothing listening, bad arguments,
 * bad port) which need no server.
 *
 * Threading: each Criterion test runs in its own process with its own relayd.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <relay/protocol.h>

#include "cli_run.h"
#include "itest.h"

/* Starts `sub` with <extra> options on <room> and waits until it has joined. */
static void sub_start(struct cli_run *r, const char *const *args)
{
	cr_assert(cli_start(r, args, NULL, false) == 0);
	cr_assert(cli_expect(r, true, "subscribed to", NULL, RL_TEST_BULK_MS) == 0,
		  "sub never subscribed; stderr: %s", r->err_buf);
}

static void pub_ok(const char *const *args, const char *input)
{
	struct cli_run r;
	int st = cli_run(&r, args, input, RL_TEST_BULK_MS);

	cr_assert(st == 0, "pub exited %d; stderr: %s", st, r.err_buf);
	cr_assert(r.out_len == 0, "pub wrote to stdout: %s", r.out_buf);
	cli_free(&r);
}

TestSuite(cli_script, .init = it_suite_start, .fini = it_suite_stop, .timeout = RL_TEST_BODY_S);

Test(cli_script, sub_count_and_pub_round_trip_keeps_order_unicode_and_quotes)
{
	const char *msgs[] = {"héllo wörld ✓ 🎉", "she said \"hi\" \\o/", "third",
			      "{\"not\":\"json\"}"};
	struct cli_run sub;

	sub_start(&sub,
		  (const char *[]){"--port", it_suite_port(), "sub", "chat", "--count", "4", NULL});
	for (int i = 0; i < 4; i++)
		pub_ok((const char *[]){"--port", it_suite_port(), "--user", "bob", "pub", "chat",
					msgs[i], NULL},
		       NULL);
	cr_assert(cli_wait(&sub, RL_TEST_BULK_MS) == 0, "sub exit; stderr: %s", sub.err_buf);
	cr_assert_str_eq(sub.out_buf, "héllo wörld ✓ 🎉\nshe said \"hi\" \\o/\nthird\n"
				      "{\"not\":\"json\"}\n");
	cli_free(&sub);
}

Test(cli_script, pub_joins_words_with_spaces)
{
	struct cli_run sub;

	sub_start(&sub,
		  (const char *[]){"--port", it_suite_port(), "sub", "w", "--count", "1", NULL});
	pub_ok((const char *[]){"--port", it_suite_port(), "pub", "w", "several", "words", "here",
				NULL},
	       NULL);
	cr_assert(cli_wait(&sub, RL_TEST_BULK_MS) == 0);
	cr_assert_str_eq(sub.out_buf, "several words here\n");
	cli_free(&sub);
}

Test(cli_script, pub_sends_every_stdin_line_in_order)
{
	struct cli_run sub;

	sub_start(&sub, (const char *[]){"--port", it_suite_port(), "sub", "lines", "--count", "5",
					 NULL});
	pub_ok((const char *[]){"--port", it_suite_port(), "pub", "lines", NULL},
	       "one\ntwo\r\n\"three\" in quotes\n\nlast line without newline");
	cr_assert(cli_wait(&sub, RL_TEST_BULK_MS) == 0, "stderr: %s", sub.err_buf);
	cr_assert_str_eq(sub.out_buf,
			 "one\ntwo\n\"three\" in quotes\n\nlast line without newline\n");
	cli_free(&sub);
}

Test(cli_script, sub_listens_to_several_rooms)
{
	struct cli_run sub;

	sub_start(&sub, (const char *[]){"--port", it_suite_port(), "sub", "r1", "r2", "--count",
					 "2", NULL});
	pub_ok((const char *[]){"--port", it_suite_port(), "pub", "r2", "to r2", NULL}, NULL);
	pub_ok((const char *[]){"--port", it_suite_port(), "pub", "r1", "to r1", NULL}, NULL);
	cr_assert(cli_wait(&sub, RL_TEST_BULK_MS) == 0);
	cr_assert_str_eq(sub.out_buf, "to r2\nto r1\n");
	cli_free(&sub);
}

/* The value of <key> in one JSON line, raw. */
static void json_field(const char *line, const char *key, char *out, size_t cap)
{
	struct relay_json_field f = {.key = key};

	cr_assert(relay_json_parse((const uint8_t *)line, strlen(line), &f, 1, NULL) == 0,
		  "not JSON: %s", line);
	cr_assert(f.kind != RELAY_JSON_NONE && f.raw.n < cap, "no %s in %s", key, line);
	memcpy(out, f.raw.p, f.raw.n);
	out[f.raw.n] = '\0';
}

Test(cli_script, json_content_goes_out_raw_and_comes_back_as_whole_payloads)
{
	struct cli_run sub, text;
	char *line, *save = NULL, v[256];
	const char *want[] = {"{\"a\":[1,2.5e3,{\"b\":\"ü \\\"q\\\"\"}],\"n\":null}",
			      "\"a string\"", "42"};
	int i = 0;

	sub_start(&sub, (const char *[]){"--port", it_suite_port(), "sub", "js", "--json",
					 "--count", "3", NULL});
	sub_start(&text,
		  (const char *[]){"--port", it_suite_port(), "sub", "js", "--count", "3", NULL});
	pub_ok((const char *[]){"--port", it_suite_port(), "--user", "ann", "pub", "--json", "js",
				"{\"a\": [1, 2.5e3, {\"b\": \"ü \\\"q\\\"\"}], \"n\": null}", NULL},
	       NULL);
	pub_ok((const char *[]){"--port", it_suite_port(), "--user", "ann", "pub", "js", "--json",
				NULL},
	       "\"a string\"\n42\n");
	cr_assert(cli_wait(&sub, RL_TEST_BULK_MS) == 0, "stderr: %s", sub.err_buf);
	cr_assert_eq(cli_lines(sub.out_buf), 3, "%s", sub.out_buf);
	for (line = strtok_r(sub.out_buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), i++) {
		json_field(line, "room", v, sizeof v);
		cr_assert_str_eq(v, "\"js\"");
		json_field(line, "userId", v, sizeof v);
		cr_assert_str_eq(v, "\"ann\"");
		json_field(line, "from", v, sizeof v);
		cr_assert(strncmp(v, "\"conn-", 6) == 0, "%s", v);
		json_field(line, "timestamp", v, sizeof v);
		json_field(line, "content", v, sizeof v);
		cr_assert_str_eq(v, want[i], "line %d: %s", i, line);
	}
	cr_assert(cli_wait(&text, RL_TEST_BULK_MS) == 0);
	cr_assert_str_eq(text.out_buf, "{\"a\":[1,2.5e3,{\"b\":\"ü \\\"q\\\"\"}],\"n\":null}\n"
				       "a string\n42\n");
	cli_free(&sub);
	cli_free(&text);
}

Test(cli_script, invalid_json_is_rejected_and_nothing_is_sent)
{
	struct cli_run sub, bad;
	int st;

	sub_start(&sub,
		  (const char *[]){"--port", it_suite_port(), "sub", "j", "--count", "1", NULL});
	st = cli_run(
	    &bad,
	    (const char *[]){"--port", it_suite_port(), "pub", "--json", "j", "{\"a\":", NULL},
	    NULL, RL_TEST_BULK_MS);
	cr_assert_eq(st, 1);
	cr_assert_eq(cli_lines(bad.err_buf), 1, "stderr: %s", bad.err_buf);
	cr_assert(strstr(bad.err_buf, "invalid JSON"), "stderr: %s", bad.err_buf);
	cli_free(&bad);
	st = cli_run(&bad, (const char *[]){"--port", it_suite_port(), "pub", "--json", "j", NULL},
		     "[1,\n", RL_TEST_BULK_MS);
	cr_assert_eq(st, 1);
	cr_assert(strstr(bad.err_buf, "line 1: invalid JSON"), "stderr: %s", bad.err_buf);
	cli_free(&bad);
	/* The first message sub sees is the valid one sent afterwards. */
	pub_ok((const char *[]){"--port", it_suite_port(), "pub", "--json", "j", "\"after\"", NULL},
	       NULL);
	cr_assert(cli_wait(&sub, RL_TEST_BULK_MS) == 0);
	cr_assert_str_eq(sub.out_buf, "after\n");
	cli_free(&sub);
}

Test(cli_script, sub_timeout_before_count_exits_2)
{
	struct cli_run sub;
	int st = cli_run(&sub,
			 (const char *[]){"--port", it_suite_port(), "sub", "quiet", "--count", "2",
					  "--timeout", "0.2", NULL},
			 NULL, RL_TEST_BULK_MS);

	cr_assert_eq(st, 2, "stderr: %s", sub.err_buf);
	cr_assert(strstr(sub.err_buf, "timed out: 0 of 2 messages"), "stderr: %s", sub.err_buf);
	cli_free(&sub);
}

Test(cli_script, pub_to_an_invalid_room_fails)
{
	struct cli_run r;

	cr_assert_eq(cli_run(&r,
			     (const char *[]){"--port", it_suite_port(), "pub", "   ", "x", NULL},
			     NULL, RL_TEST_BULK_MS),
		     1);
	cr_assert(strstr(r.err_buf, "invalid room name"), "stderr: %s", r.err_buf);
	cli_free(&r);
}

Test(cli_script, interactive_commands_from_a_pipe)
{
	struct cli_run a, sub;
	size_t pos = 0;

	sub_start(&sub,
		  (const char *[]){"--port", it_suite_port(), "sub", "p", "--count", "1", NULL});
	cr_assert(cli_start(&a,
			    (const char *[]){"--user", "amy", "127.0.0.1", it_suite_port(), NULL},
			    NULL, false) == 0);
	cli_write(&a, "join q\njoin p\nrooms\nsend hi from a pipe\nswitch q\nleave\nrooms\n"
		      "bogus\nheartbeat\nquit\n");
	cr_assert(cli_wait(&a, RL_TEST_BULK_MS) == 0, "stderr: %s", a.err_buf);
	cr_assert(cli_expect(&a, false, "as conn-", &pos, 0) == 0, "%s", a.out_buf);
	cr_assert(cli_expect(&a, false, "joined q (1 member)\n", &pos, 0) == 0, "%s", a.out_buf);
	cr_assert(cli_expect(&a, false, "joined p (2 members)\n", &pos, 0) == 0, "%s", a.out_buf);
	cr_assert(cli_expect(&a, false, "  q\n* p\n", &pos, 0) == 0, "%s", a.out_buf);
	cr_assert(cli_expect(&a, false, "current room: q\n", &pos, 0) == 0, "%s", a.out_buf);
	cr_assert(cli_expect(&a, false, "left q; current room: p\n* p\n", &pos, 0) == 0, "%s",
		  a.out_buf);
	cr_assert(cli_expect(&a, false, "unknown command 'bogus'", &pos, 0) == 0, "%s", a.out_buf);
	cr_assert(cli_expect(&a, false, "heartbeat: round trip ", &pos, 0) == 0, "%s", a.out_buf);
	cr_assert(strstr(a.out_buf, "\033[") == NULL, "colour on a pipe: %s", a.out_buf);
	cr_assert(cli_wait(&sub, RL_TEST_BULK_MS) == 0);
	cr_assert_str_eq(sub.out_buf, "hi from a pipe\n");
	cli_free(&a);
	cli_free(&sub);
}

Test(cli_script, interactive_reports_server_errors_with_code_and_message)
{
	struct cli_run a;
	size_t pos = 0;

	/* A room name is checked locally, so provoke the server another way:
	 * a userId over 128 bytes is refused by HELLO (INVALID_PAYLOAD). */
	char user[200];

	memset(user, 'u', sizeof user - 1);
	user[sizeof user - 1] = '\0';
	cr_assert_eq(cli_run(&a, (const char *[]){"--user", user, "--port", it_suite_port(), NULL},
			     "", RL_TEST_BULK_MS),
		     1);
	cr_assert(cli_expect(&a, true, "INVALID_PAYLOAD", &pos, 0) == 0, "stderr: %s", a.err_buf);
	cr_assert_eq(cli_lines(a.err_buf), 1, "stderr: %s", a.err_buf);
	cli_free(&a);
}

Test(cli_script, interactive_prints_non_fatal_server_errors_and_goes_on)
{
	struct cli_run a;
	size_t pos = 0;
	char *cmds = malloc(1100 * 16), *p = cmds;

	/* One join more than the server's default max_rooms_per_conn (1024). */
	for (int i = 0; i <= 1024; i++)
		p += sprintf(p, "join r%d\n", i);
	strcpy(p, "heartbeat\n");
	cr_assert_eq(
	    cli_run(&a, (const char *[]){"--port", it_suite_port(), NULL}, cmds, RL_TEST_BULK_MS),
	    0, "stderr: %s", a.err_buf);
	free(cmds);
	cr_assert(cli_expect(&a, false, "joined r1023 (1 member)\n", &pos, 0) == 0);
	cr_assert(cli_expect(&a, false, "error TOO_MANY_ROOMS: ", &pos, 0) == 0, "%s",
		  a.out_buf + pos);
	cr_assert(cli_expect(&a, false, "heartbeat: round trip", &pos, 0) == 0);
	cli_free(&a);
}

Test(cli_script, control_characters_from_peers_are_neutralised_in_chat_lines)
{
	struct cli_run a, sub;
	size_t pos = 0;

	sub_start(&sub,
		  (const char *[]){"--port", it_suite_port(), "sub", "esc", "--count", "1", NULL});
	cr_assert(cli_start(&a, (const char *[]){"--port", it_suite_port(), NULL}, NULL, false) ==
		  0);
	cli_write(&a, "join esc\n");
	cr_assert(cli_expect(&a, false, "joined esc", &pos, RL_TEST_BULK_MS) == 0, "%s", a.out_buf);
	pub_ok((const char *[]){"--port", it_suite_port(), "--user", "mallory", "pub", "esc",
				"bell\a esc\033[2J c1\xc2\x9b end\ttab", NULL},
	       NULL);
	cr_assert(cli_expect(&a, false, "): bell? esc?[2J c1? end\ttab\n", &pos, RL_TEST_BULK_MS) ==
		      0,
		  "%s", a.out_buf);
	/* sub prints the text verbatim: it is data, not a terminal session. */
	cr_assert(cli_wait(&sub, RL_TEST_BULK_MS) == 0);
	cr_assert_str_eq(sub.out_buf, "bell\a esc\033[2J c1\xc2\x9b end\ttab\n");
	cli_write(&a, "quit\n");
	cr_assert_eq(cli_wait(&a, RL_TEST_BULK_MS), 0);
	cli_free(&a);
	cli_free(&sub);
}

Test(cli_script, binary_messages_from_other_clients)
{
	struct cli_run js, text, a;
	struct rl_test_client *c;
	uint8_t msg[64];
	size_t n, pos = 0;
	char want[128];

	sub_start(&js, (const char *[]){"--port", it_suite_port(), "sub", "bin", "--json",
					"--count", "1", NULL});
	sub_start(&text,
		  (const char *[]){"--port", it_suite_port(), "sub", "bin", "--count", "1", NULL});
	cr_assert(cli_start(&a, (const char *[]){"--port", it_suite_port(), NULL}, NULL, false) ==
		  0);
	cli_write(&a, "join bin\n");
	cr_assert(cli_expect(&a, false, "joined bin", &pos, RL_TEST_BULK_MS) == 0, "%s", a.out_buf);
	c = rl_test_connect(it_suite(), 0);
	cr_assert(c, "%s", rl_test_err());
	cr_assert(rl_test_hello(c, NULL, RL_TEST_BULK_MS), "%s", rl_test_err());
	cr_assert(rl_test_send_frame(c, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "bin", 3) == 0);
	cr_assert(rl_test_expect(c, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, RL_TEST_BULK_MS), "%s",
		  rl_test_err());
	n = relay_bin_msg_encode(msg, (struct relay_span){(const uint8_t *)"bin", 3},
			      (struct relay_span){(const uint8_t *)"raw bytes", 9});
	cr_assert(rl_test_send_frame(c, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, msg, n) == 0);
	cr_assert(cli_wait(&js, RL_TEST_BULK_MS) == 0, "%s", js.err_buf);
	snprintf(want, sizeof want,
		 "{\"room\":\"bin\",\"from\":\"%s\",\"binary\":\"cmF3IGJ5dGVz\"}\n",
		 rl_test_conn_id(c));
	cr_assert_str_eq(js.out_buf, want);
	cr_assert(cli_wait(&text, RL_TEST_BULK_MS) == 0);
	cr_assert_str_eq(text.out_buf, "raw bytes\n");
	snprintf(want, sizeof want, "[bin] %s (", rl_test_conn_id(c));
	cr_assert(cli_expect(&a, false, want, &pos, RL_TEST_BULK_MS) == 0, "%s", a.out_buf);
	cr_assert(cli_expect(&a, false, "): raw bytes\n", &pos, RL_TEST_BULK_MS) == 0, "%s",
		  a.out_buf);
	rl_test_close(c);
	cli_write(&a, "quit\n");
	cr_assert_eq(cli_wait(&a, RL_TEST_BULK_MS), 0);
	cli_free(&a);
	cli_free(&js);
	cli_free(&text);
}

/* relayd --idle-timeout 1 announces heartbeatMs 500: an idle sub must keep
 * its connection alive with HEARTBEATs and end by its own --timeout. */
Test(cli_keepalive, idle_sub_survives_the_servers_idle_timeout, .timeout = 60)
{
	struct rl_test_server s;
	struct cli_run sub;
	char p[16];
	int st;

	cr_assert(
	    rl_test_server_start(&s, (const char *[]){"--idle-timeout", "1", NULL}, NULL, 0) == 0,
	    "%s", rl_test_err());
	snprintf(p, sizeof p, "%u", s.port);
	st = cli_run(&sub, (const char *[]){"--port", p, "sub", "idle", "--timeout", "2.5", NULL},
		     NULL, RL_TEST_BULK_MS);
	cr_expect_eq(st, 0, "sub exited %d: %s", st, sub.err_buf);
	cr_expect(strstr(sub.err_buf, "IDLE_TIMEOUT") == NULL, "%s", sub.err_buf);
	cli_free(&sub);
	cr_expect(rl_test_server_stop(&s, 0) == 0);
	rl_test_server_free(&s);
}

/* ---- no server needed ------------------------------------------------------ */

TestSuite(cli_errors, .timeout = 60);

static void fails_with(const char *const *args, const char *needle)
{
	struct cli_run r;
	int st = cli_run(&r, args, NULL, RL_TEST_BULK_MS);

	cr_assert_eq(st, 1, "exit %d for %s; stderr: %s", st, args[0], r.err_buf);
	cr_assert(strstr(r.err_buf, needle), "expected '%s' in stderr: %s", needle, r.err_buf);
	cr_assert_eq(cli_lines(r.err_buf), 1, "not one line: %s", r.err_buf);
	cr_assert_eq(r.out_len, 0, "stdout: %s", r.out_buf);
	cli_free(&r);
}

Test(cli_errors, nothing_listening_is_one_line_and_status_1)
{
	char p[16];

	snprintf(p, sizeof p, "%d", cli_dead_port());
	fails_with((const char *[]){"127.0.0.1", p, NULL}, "refused");
	fails_with((const char *[]){"--port", p, "sub", "r", NULL}, "cannot connect to 127.0.0.1:");
	fails_with((const char *[]){"--host", "127.0.0.1", "--port", p, "pub", "r", "m", NULL},
		   "refused");
}

Test(cli_errors, bad_ports_are_rejected)
{
	fails_with((const char *[]){"127.0.0.1", "70000", NULL}, "bad port '70000'");
	fails_with((const char *[]){"--port", "0", "sub", "r", NULL}, "bad port '0'");
	fails_with((const char *[]){"--port", "http", NULL}, "bad port 'http'");
	fails_with((const char *[]){"--port", "-1", NULL}, "bad port '-1'");
}

Test(cli_errors, bad_arguments_are_rejected)
{
	fails_with((const char *[]){"--frobnicate", NULL}, "unknown option '--frobnicate'");
	fails_with((const char *[]){"sub", NULL}, "sub needs a ROOM");
	fails_with((const char *[]){"pub", NULL}, "pub needs a ROOM");
	fails_with((const char *[]){"sub", "r", "--count", "0", NULL}, "bad --count '0'");
	fails_with((const char *[]){"sub", "r", "--timeout", "soon", NULL}, "bad --timeout 'soon'");
	fails_with((const char *[]){"pub", "r", "--count", "3", "m", NULL},
		   "--count does not apply to pub");
	fails_with((const char *[]){"--json", NULL}, "--json does not apply");
	fails_with((const char *[]){"a", "1", "extra", NULL}, "unexpected argument 'extra'");
	fails_with((const char *[]){"--port", NULL}, "needs a value");
	fails_with((const char *[]){"pub", "--json", "r", "{nope", NULL}, "invalid JSON");
}

Test(cli_errors, unknown_host_fails_without_hanging)
{
	fails_with((const char *[]){"no-such-host.invalid", "4000", NULL}, "cannot resolve host");
}

Test(cli_errors, help_and_version_print_to_stdout_and_exit_0)
{
	struct cli_run r;

	cr_assert_eq(cli_run(&r, (const char *[]){"--help", NULL}, NULL, RL_TEST_BULK_MS), 0);
	cr_assert(strstr(r.out_buf, "relay-cli [options] sub ROOM"), "%s", r.out_buf);
	cli_free(&r);
	cr_assert_eq(cli_run(&r, (const char *[]){"--version", NULL}, NULL, RL_TEST_BULK_MS), 0);
	cr_assert(strncmp(r.out_buf, "relay-cli ", 10) == 0, "%s", r.out_buf);
	cli_free(&r);
}
