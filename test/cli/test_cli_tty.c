/* test_cli_tty.c -- relay-cli's interactive mode driven through a
 * pseudo-terminal, as a person would use it: join, send, a message from
 * another client arriving while a line is half typed (the typed text must
 * survive and be redrawn), rooms, leave, quit, Ctrl-D, colour, and the
 * server going away mid-session.
 *
 * Threading: each Criterion test runs in its own process with its own relayd.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "itest.h"

TestSuite(cli_tty, .init = it_suite_start, .fini = it_suite_stop, .timeout = RL_TEST_BODY_S);

static void expect(struct cli_run *r, const char *needle, size_t *pos)
{
	cr_assert(cli_expect(r, false, needle, pos, RL_TEST_BULK_MS) == 0,
		  "waited for '%s' after offset %zu; screen text:\n%s", needle, *pos, cli_plain(r));
}

/* Starts relay-cli on a terminal and waits for the first prompt. */
static void tty_start(struct cli_run *r, const char *user, const char *const *env, size_t *pos)
{
	int rc = cli_start(r, (const char *[]){"--user", user, "127.0.0.1", it_suite_port(), NULL},
			   env, true);

	if (rc == -ENOENT || rc == -ENXIO)
		cr_skip_test("no pseudo-terminals here: %s", strerror(-rc));
	cr_assert(rc == 0, "cli_start: %s", strerror(-rc));
	expect(r, "as conn-", pos);
	expect(r, "relay> ", pos);
}

static void pub(const char *user, const char *room, const char *msg)
{
	struct cli_run r;
	int st = cli_run(
	    &r, (const char *[]){"--port", it_suite_port(), "--user", user, "pub", room, msg, NULL},
	    NULL, RL_TEST_BULK_MS);

	cr_assert(st == 0, "pub exited %d: %s", st, r.err_buf);
	cli_free(&r);
}

Test(cli_tty, chat_with_a_half_typed_line_that_survives_an_incoming_message)
{
	struct cli_run a, sub;
	size_t pos = 0;

	tty_start(&a, "alice", NULL, &pos);
	cli_write(&a, "join physics\r");
	expect(&a, "joined physics (1 member)", &pos);
	expect(&a, "relay> ", &pos);

	cr_assert(cli_start(&sub,
			    (const char *[]){"--port", it_suite_port(), "sub", "physics", "--count",
					     "2", NULL},
			    NULL, false) == 0);
	cr_assert(cli_expect(&sub, true, "subscribed", NULL, RL_TEST_BULK_MS) == 0, "%s",
		  sub.err_buf);
	expect(&a, "[physics] conn-", &pos);
	expect(&a, " joined", &pos);

	/* Half a line, then a message from bob. */
	cli_write(&a, "send hello, wor");
	expect(&a, "send hello, wor", &pos);
	pub("bob", "physics", "hi alice — ça va? \"quoted\"");
	expect(&a, "[physics] bob (", &pos);
	expect(&a, "): hi alice — ça va? \"quoted\"\n", &pos);
	/* The prompt and the typed text are drawn again below the message... */
	expect(&a, "relay> send hello, wor", &pos);
	/* ...and the line editor still holds them: finishing the line sends it. */
	cli_write(&a, "ld\r");
	cr_assert(cli_wait(&sub, RL_TEST_BULK_MS) == 0, "sub: %s", sub.err_buf);
	cr_assert_str_eq(sub.out_buf, "hi alice — ça va? \"quoted\"\nhello, world\n");
	cli_free(&sub);

	cli_write(&a, "rooms\r");
	expect(&a, "* physics", &pos);
	cli_write(&a, "leave\r");
	expect(&a, "left physics", &pos);
	cli_write(&a, "rooms\r");
	expect(&a, "not in any room", &pos);
	cli_write(&a, "heartbeat\r");
	expect(&a, "heartbeat: round trip ", &pos);
	cli_write(&a, "quit\r");
	cr_assert_eq(cli_wait(&a, RL_TEST_BULK_MS), 0, "screen:\n%s", cli_plain(&a));
	cli_free(&a);
}

Test(cli_tty, colour_on_a_terminal_unless_no_color)
{
	struct cli_run a, b;
	size_t pa = 0, pb = 0;

	tty_start(&a, "col", NULL, &pa);
	tty_start(&b, "plain", (const char *[]){"NO_COLOR=1", NULL}, &pb);
	cli_write(&a, "join c\r");
	expect(&a, "joined c", &pa);
	cli_write(&b, "join c\r");
	expect(&b, "joined c", &pb);
	expect(&a, "plain joined", &pa);
	pub("eve", "c", "x");
	expect(&a, "): x", &pa);
	expect(&b, "): x", &pb);
	cr_assert(strstr(a.out_buf, "\033[36m[c]\033[0m"), "no colour:\n%s", a.out_buf);
	cr_assert(strstr(b.out_buf, "[c] eve (") && !strstr(b.out_buf, "\033[36m"),
		  "colour despite NO_COLOR:\n%s", b.out_buf);
	cli_write(&a, "exit\r");
	cli_write(&b, "\004"); /* Ctrl-D on an empty line */
	cr_assert_eq(cli_wait(&a, RL_TEST_BULK_MS), 0);
	cr_assert_eq(cli_wait(&b, RL_TEST_BULK_MS), 0);
	cli_free(&a);
	cli_free(&b);
}

Test(cli_tty, history_and_tab_completion)
{
	struct cli_run a;
	size_t pos = 0;

	tty_start(&a, "hist", NULL, &pos);
	cli_write(&a, "join h1\r");
	expect(&a, "joined h1", &pos);
	cli_write(&a, "leave\r");
	expect(&a, "left h1", &pos);
	/* Up twice: "join h1" again. */
	cli_write(&a, "\033[A\033[A\r");
	expect(&a, "joined h1", &pos);
	/* Tab completes commands, then joined rooms. */
	cli_write(&a, "swi\t");
	expect(&a, "switch ", &pos);
	cli_write(&a, "h\t\r");
	expect(&a, "current room: h1", &pos);
	cli_write(&a, "quit\r");
	cr_assert_eq(cli_wait(&a, RL_TEST_BULK_MS), 0);
	cli_free(&a);
}

Test(cli_tty, a_hung_up_terminal_ends_the_session)
{
	struct cli_run a;
	size_t pos = 0;
	int st;

	tty_start(&a, "hup", NULL, &pos);
	close(a.out); /* the terminal emulator goes away */
	a.out = a.in = -1;
	st = cli_wait(&a, RL_TEST_BULK_MS);
	cr_assert(st == 0 || st == 128 + SIGHUP, "exit %d (-1: still running)", st);
	cli_free(&a);
}

Test(cli_tty, server_going_away_ends_the_session_with_status_1)
{
	struct cli_run a;
	size_t pos = 0;
	int st;

	tty_start(&a, "zed", NULL, &pos);
	cli_write(&a, "join z\r");
	expect(&a, "joined z", &pos);
	cli_write(&a, "typing something");
	expect(&a, "typing something", &pos);
	rl_test_server_stop(it_suite(), 0);
	st = cli_wait(&a, RL_TEST_BULK_MS);
	cr_assert_eq(st, 1, "exit %d; screen:\n%s", st, cli_plain(&a));
	cr_assert(strstr(cli_plain(&a) + pos, "relay-cli: "), "no reason given:\n%s",
		  cli_plain(&a));
	cli_free(&a);
}
