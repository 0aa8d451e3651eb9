/* test_lograte.c -- log lines that come in bursts are rate-limited: at most
 * one a second per worker and kind, and the ones swallowed are counted, so
 * the log still accounts for every event (the first line of a burst, then
 * "N more since ..." in a later line of the same kind).
 *
 * Kinds covered: SERVER_FULL refusals (a burst of 200 connections over
 * --max-connections) and slow consumers (one message larger than the hard
 * limit to 100 members at once).
 *
 * Threading: Criterion test bodies. */
#include "itest.h"

#include <poll.h>
#include <stdio.h>

/* Lines of relayd's log containing <needle>, and what they account for:
 * each counts 1 plus its "(N more since last report" / ": N more since the
 * last report" number, if any. */
static void log_account(const struct rl_test_server *s, const char *needle, const char *summary,
			int *lines, long *events)
{
	FILE *f = fopen(s->log_path, "re");
	cr_assert_not_null(f, "%s", s->log_path);
	char line[2048];
	*lines = 0;
	*events = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p;
		long n = 0;
		if (strstr(line, needle) != NULL) {
			(*lines)++;
			*events += 1;
			if ((p = strstr(line, "; ")) != NULL && sscanf(p, "; %ld more", &n) == 1)
				*events += n;
			else if ((p = strstr(line, "(")) != NULL && sscanf(p, "(%ld more", &n) == 1)
				*events += n;
		} else if ((p = strstr(line, summary)) != NULL) {
			(*lines)++;
			cr_assert_eq(sscanf(p + strlen(summary), ": %ld more", &n), 1, "%s", line);
			*events += n;
		}
	}
	fclose(f);
}

/* Waits (up to 3 s: a summary comes within about a second of the burst) for
 * the log to account for <want> events; returns the lines it took. */
static int wait_accounted(const struct rl_test_server *s, const char *needle, const char *summary,
			  long want)
{
	int lines = 0;
	long events = 0;
	for (int64_t end = rl_test_now_ms() + 3000;; poll(NULL, 0, 50)) {
		log_account(s, needle, summary, &lines, &events);
		if (events >= want || rl_test_now_ms() >= end)
			break;
	}
	cr_log_info("%ld x \"%s\": %d log lines", events, needle, lines);
	cr_assert_eq(events, want, "the log accounts for %ld of %ld \"%s\" events", events, want,
		     needle);
	return lines;
}

/* 200 clients over --max-connections in a burst: a few lines, not 200. */
IT_TEST(lograte, a_burst_of_server_full_refusals_logs_a_few_lines)
{
	enum { N = 200 };
	IT_NEED_PROCESS();
	struct rl_test_server s;
	IT_START(&s, "--workers", "2", "--max-connections", "1");
	struct rl_test_client *held = it_client(&s, NULL);
	struct rl_test_client *c[N];
	for (int i = 0; i < N; i++)
		c[i] = it_connect(&s);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(rl_test_expect_fatal(c[i], "SERVER_FULL", RL_TEST_REPLY_MS), 0, "client %d: %s",
			     i, rl_test_err());
		rl_test_close(c[i]);
	}
	int lines =
	    wait_accounted(&s, "max-connections 1 reached", "max-connections reached: refused", N);
	/* Per worker: the burst's first line, maybe a second one a second
	 * later, and a summary. */
	cr_assert_leq(lines, 3 * s.workers, "%d log lines for %d refusals", lines, N);
	it_ping(held);
	rl_test_close(held);
	it_stop(&s);
}

/* Messages far larger than the hard limit to 20 non-reading members of one
 * worker: relayd writes a queue that passes the high watermark at once, and
 * only what a socket does not take counts against the hard limit -- a
 * loopback socket takes about 3 MB here -- so 6 MB each make all 20 slow
 * consumers within a turn or two: a few lines, not 20. */
IT_TEST(lograte, a_burst_of_slow_consumers_logs_a_few_lines)
{
	enum { N = 20, BIG = 768 * 1024, NBIG = 8 };
	IT_NEED_PROCESS();
	struct rl_test_server s;
	IT_START(&s, "--workers", "1", "--no-presence", "--outbound-hard-limit", "16K");
	struct rl_test_client *m[N];
	for (int i = 0; i < N; i++) {
		m[i] = it_client(&s, NULL);
		it_join(m[i], "burst", i + 1);
	}
	struct rl_test_client *pub = it_client(&s, NULL);
	it_join(pub, "burst", N + 1);
	static char big[BIG];
	memset(big, 'x', sizeof(big));
	for (int k = 0; k < NBIG; k++)
		cr_assert_eq(rl_test_send_json(pub, RELAY_MSG_MESSAGE,
					       "{\"room\":\"burst\",\"content\":\"%.*s\"}",
					       (int)sizeof(big), big),
			     0, "%s", rl_test_err());
	it_ping(pub);
	int lines = wait_accounted(&s, "slow consumer:", "slow consumers dropped", N);
	cr_assert_leq(lines, 3, "%d log lines for %d slow consumers", lines, N);
	for (int i = 0; i < N; i++)
		rl_test_close(m[i]);
	rl_test_close(pub);
	it_stop(&s);
}
