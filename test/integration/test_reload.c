/* test_reload.c -- timeouts changed by a SIGHUP reload on a running relayd
 * (--config FILE) apply to the connections already open exactly as if the
 * new value had always been there: a frame completed while
 * --frame-timeout was 0 is not timed out when it is turned back on, and a
 * frame still incomplete when it is turned back on is.
 *
 * "The frame was read" is proved by a HEARTBEAT sent in the same write as
 * the frame's first bytes: its echo means relayd has read both. Reloads are
 * waited for through relayd's "config: reloaded" log line.
 *
 * Threading: Criterion test bodies. */
#include "itest.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static char cfg_path[256];

static void write_cfg(const char *text)
{
	if (cfg_path[0] == '\0') {
		const char *dir = getenv("TMPDIR");
		snprintf(cfg_path, sizeof(cfg_path), "%s/relayd-reload-%ld.conf",
			 dir != NULL && dir[0] != '\0' ? dir : "/tmp", (long)getpid());
	}
	FILE *f = fopen(cfg_path, "we");
	cr_assert_not_null(f, "%s", cfg_path);
	fputs(text, f);
	fclose(f);
}

static void reload_fini(void)
{
	if (cfg_path[0] != '\0')
		unlink(cfg_path);
	it_fini();
}

/* Occurrences of <needle> in relayd's log. */
static int log_count(const struct rl_test_server *s, const char *needle)
{
	FILE *f = fopen(s->log_path, "re");
	if (f == NULL)
		return 0;
	char line[1024];
	int n = 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* Rewrites the file to <text>, sends SIGHUP and waits for reload number
 * <nth> to be logged. */
static void reload(struct rl_test_server *s, const char *text, int nth)
{
	write_cfg(text);
	cr_assert_eq(rl_test_server_signal(s, SIGHUP), 0, "%s", rl_test_err());
	int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	while (log_count(s, "config: reloaded") < nth) {
		cr_assert_lt(rl_test_now_ms(), end, "reload %d not logged", nth);
		poll(NULL, 0, 10); /* the log line is the only signal a reload gives */
	}
}

/* HEARTBEAT "sync" and the first 3 of the 10 payload bytes of a HEARTBEAT
 * frame, in one write; returns once the sync echo proves both were read. */
static void send_partial(struct rl_test_client *c)
{
	uint8_t buf[64];
	size_t off = 0;
	cr_assert_eq(rl_test_frame_append(buf, sizeof(buf), &off, RELAY_MSG_HEARTBEAT,
					  RELAY_FLAG_BINARY, "sync", 4),
		     0);
	size_t start = off;
	cr_assert_eq(rl_test_frame_append(buf, sizeof(buf), &off, RELAY_MSG_HEARTBEAT,
					  RELAY_FLAG_BINARY, "0123456789", 10),
		     0);
	it_raw(c, buf, start + RELAY_FRAME_HDR_BYTES + 3);
	it_expect_bin(c, RELAY_MSG_HEARTBEAT, "sync", 4);
}

static void complete_partial(struct rl_test_client *c)
{
	it_raw(c, "3456789", 7);
	it_expect_bin(c, RELAY_MSG_HEARTBEAT, "0123456789", 10);
}

static void start_with(struct rl_test_server *s, const char *text)
{
	write_cfg(text);
	IT_START(s, "--config", cfg_path);
}

/* The frame timer of a frame started while the timeout was on, completed
 * while it was off, must not fire when it is turned on again. (Before, it
 * stayed armed with the old start: FRAME_TIMEOUT at once.) */
Test(reload, a_frame_completed_while_the_timeout_was_off_is_not_timed_out_later,
     .fini = reload_fini, .timeout = 30)
{
	IT_NEED_PROCESS();
	struct rl_test_server s;
	start_with(&s, "frame-timeout = 1\n");
	struct rl_test_client *c = it_client(&s, NULL);
	send_partial(c);
	reload(&s, "frame-timeout = 0\n", 1);
	complete_partial(c);
	reload(&s, "frame-timeout = 1\n", 2);
	cr_assert_eq(rl_test_expect_silence(c, 1500), 0, "%s", rl_test_err());
	it_ping(c);
	rl_test_close(c);
	it_stop(&s);
}

/* A frame started while the timeout was off and still incomplete when it is
 * turned on is timed out from its start. (Before, it was never timed out.) */
Test(reload, a_frame_started_while_the_timeout_was_off_is_timed_out_once_it_is_on,
     .fini = reload_fini, .timeout = 30)
{
	IT_NEED_PROCESS();
	struct rl_test_server s;
	start_with(&s, "frame-timeout = 0\n");
	struct rl_test_client *c = it_client(&s, NULL);
	struct rl_test_client *other = it_client(&s, NULL);
	send_partial(c);
	reload(&s, "frame-timeout = 1\n", 1);
	int64_t t0 = rl_test_now_ms();
	cr_assert_eq(rl_test_expect_fatal(c, "FRAME_TIMEOUT", 1000 + RL_TEST_REPLY_MS), 0, "%s",
		     rl_test_err());
	cr_log_info("FRAME_TIMEOUT %lld ms after the reload", (long long)(rl_test_now_ms() - t0));
	it_ping(other);
	rl_test_close(c);
	rl_test_close(other);
	it_stop(&s);
}
