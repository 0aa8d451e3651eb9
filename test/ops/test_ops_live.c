/* test_ops_live.c -- the operations features against a live relayd (test/lib
 * harness, --port 0, --admin 127.0.0.1:0): /metrics counters move by the
 * right amounts, errors by code, /health 503 while draining, config file
 * precedence and FILE:LINE errors, SIGHUP reload, sd_notify READY/STOPPING.
 * Threading: Criterion test bodies. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <relay/protocol.h>

#include "expo_check.h"
#include "itest.h"
#include "ops_http.h"

TestSuite(ops_live, .fini = it_fini, .timeout = RL_TEST_BODY_S);

/* Starts relayd with --admin 127.0.0.1:0 plus <args>; fills <admin>. */
static void start(struct rl_test_server *s, char *admin, size_t cap, const char *const *args,
		  const char *const *env)
{
	const char *argv[32] = {"--admin", "127.0.0.1:0"};
	size_t n = 2;
	for (size_t i = 0; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	it_start_env(s, argv, env);
	char line[160];
	cr_assert_eq(
	    rl_test_server_stdout_line(s, "relayd admin on ", line, sizeof(line), RL_TEST_REPLY_MS),
	    0, "%s", rl_test_err());
	const char *a = line + strlen("relayd admin on ");
	cr_assert_lt(strlen(a), cap);
	memcpy(admin, a, strlen(a) + 1);
}

static struct ops_http_reply get(const char *admin, const char *path)
{
	struct ops_http_reply r;
	char err[256];
	cr_assert_eq(ops_http(admin, "GET", path, RL_TEST_REPLY_MS, &r, err, sizeof(err)), 0,
		     "GET %s: %s", path, err);
	return r;
}

/* Scrapes /metrics, checks the whole text, returns it (caller frees). */
static char *scrape(const char *admin)
{
	struct ops_http_reply r = get(admin, "/metrics");
	char err[256];
	cr_assert_eq(r.status, 200);
	cr_assert_eq(expo_check(r.body, r.len, NULL, err, sizeof(err)), 0, "%s\n%s", err, r.body);
	char *text = strdup(r.body);
	ops_http_free(&r);
	return text;
}

static double metric(const char *text, const char *series)
{
	double v = -1;
	cr_assert_eq(expo_value(text, series, &v), 0, "no %s in:\n%s", series, text);
	return v;
}

/* Scrapes until <series> reads <want> or RL_TEST_REPLY_MS passes; returns the last value.
 * For gauges that follow an event the client cannot see the end of: a
 * connection counts until the server's close step has run, which may come
 * after the client saw the ERROR (or the close itself). */
static double await_metric(const char *admin, const char *series, double want)
{
	double v = -1;
	for (int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	     v != want && rl_test_now_ms() < end;) {
		char *t = scrape(admin);
		v = metric(t, series);
		free(t);
	}
	return v;
}

Test(ops_live, metrics_count_frames_and_deliveries_exactly)
{
	enum { N = 25 };
	struct rl_test_server s;
	char admin[160];
	const char *args[] = {"--workers", "2", NULL};
	start(&s, admin, sizeof(admin), args, NULL);
	struct rl_test_client *pub = it_client(&s, NULL), *a = it_client(&s, NULL),
			      *b = it_client(&s, NULL);
	it_join(a, "ops", -1);
	it_join(b, "ops", -1);
	it_join(pub, "ops", -1);
	cr_assert_eq(rl_test_sync_skip(a, RL_TEST_REPLY_MS, NULL), 0, "%s", rl_test_err());
	cr_assert_eq(rl_test_sync_skip(b, RL_TEST_REPLY_MS, NULL), 0, "%s", rl_test_err());
	char *before = scrape(admin);
	for (int i = 0; i < N; i++)
		cr_assert_eq(
		    rl_test_send_json(pub, RELAY_MSG_MESSAGE, "{\"room\":\"ops\",\"content\":%d}", i),
		    0, "%s", rl_test_err());
	for (int i = 0; i < N; i++) {
		cr_assert(rl_test_expect(a, RELAY_MSG_MESSAGE, -1, RL_TEST_REPLY_MS), "%s",
			  rl_test_err());
		cr_assert(rl_test_expect(b, RELAY_MSG_MESSAGE, -1, RL_TEST_REPLY_MS), "%s",
			  rl_test_err());
	}
	/* Each message is one fan-out sample, recorded when its last member's
	 * write released it: wait for the histogram to catch up. */
	const char *cnt = "relay_fanout_latency_seconds_count";
	char *after = NULL;
	for (int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS; rl_test_now_ms() < end;) {
		free(after);
		after = scrape(admin);
		if (metric(after, cnt) - metric(before, cnt) >= N)
			break;
		poll(NULL, 0, 10);
	}
	cr_assert_eq(metric(after, cnt) - metric(before, cnt), N);
	cr_assert_eq(metric(after, "relay_fanout_latency_seconds_bucket{le=\"+Inf\"}"),
		     metric(after, cnt));
	cr_assert_gt(metric(after, "relay_fanout_latency_seconds_sum"),
		     metric(before, "relay_fanout_latency_seconds_sum"));
	const char *msg = "relay_frames_in_total{type=\"MESSAGE\"}";
	cr_assert_eq(metric(after, msg) - metric(before, msg), N);
	cr_assert_eq(metric(after, "relay_messages_delivered_total") -
			 metric(before, "relay_messages_delivered_total"),
		     2 * N);
	cr_assert_eq(metric(after, "relay_frames_in_total{type=\"HELLO\"}"), 3);
	cr_assert_eq(metric(after, "relay_frames_in_total{type=\"JOIN_ROOM\"}"), 3);
	cr_assert_eq(metric(after, "relay_connections"), 3);
	cr_assert_eq(metric(after, "relay_connections_accepted_total"), 3);
	cr_assert_eq(metric(after, "relay_worker_connections{worker=\"0\"}") +
			 metric(after, "relay_worker_connections{worker=\"1\"}"),
		     3);
	cr_assert_eq(metric(after, "relay_rooms"), 1);
	cr_assert_eq(metric(after, "relay_room_memberships"), 3);
	cr_assert_eq(metric(after, "relay_workers"), 2);
	cr_assert_gt(metric(after, "relay_bytes_in_total"), metric(before, "relay_bytes_in_total"));
	cr_assert_gt(metric(after, "relay_bytes_out_total"),
		     metric(before, "relay_bytes_out_total"));
	struct ops_http_reply r = get(admin, "/rooms?limit=5");
	cr_assert(strstr(r.body, "{\"rooms\":1,\"largest\":[{\"room\":\"ops\",\"members\":3}]}"),
		  "%s", r.body);
	ops_http_free(&r);
	r = get(admin, "/stats");
	cr_assert_eq(relay_json_parse((const uint8_t *)r.body, r.len, NULL, 0, NULL), 0, "%s", r.body);
	cr_assert(strstr(r.body, "\"workers\":\"2\""), "options in force: %s", r.body);
	ops_http_free(&r);
	free(before);
	free(after);
	rl_test_close(pub);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

Test(ops_live, protocol_errors_are_counted_by_code)
{
	struct rl_test_server s;
	char admin[160];
	start(&s, admin, sizeof(admin), NULL, NULL);
	struct rl_test_client *c = it_client(&s, NULL);
	char *before = scrape(admin);
	cr_assert_eq(rl_test_send_json(c, RELAY_MSG_MESSAGE, "{\"room\":\"nope\",\"content\":1}"), 0);
	cr_assert(rl_test_expect_error(c, "NOT_IN_ROOM", RL_TEST_REPLY_MS), "%s", rl_test_err());
	struct rl_test_client *bad = it_client(&s, NULL);
	cr_assert_eq(rl_test_send_frame_v(bad, 9, RELAY_MSG_HEARTBEAT, 0, NULL, 0), 0);
	it_fatal(bad, "UNSUPPORTED_VERSION");
	it_ping(c);
	char *after = scrape(admin);
	const char *nir = "relay_protocol_errors_total{code=\"NOT_IN_ROOM\"}";
	const char *ver = "relay_protocol_errors_total{code=\"UNSUPPORTED_VERSION\"}";
	const char *pe = "relay_protocol_errors_total{code=\"PARSE_ERROR\"}";
	cr_assert_eq(metric(after, nir) - metric(before, nir), 1);
	cr_assert_eq(metric(after, ver) - metric(before, ver), 1);
	cr_assert_eq(metric(after, pe), 0);
	free(before);
	free(after);
	rl_test_close(c);
	rl_test_close(bad);
	it_stop(&s);
}

Test(ops_live, refused_connections_are_counted_by_reason)
{
	struct rl_test_server s;
	char admin[160];
	const char *args[] = {"--max-connections", "1", NULL};
	start(&s, admin, sizeof(admin), args, NULL);
	struct rl_test_client *c = it_client(&s, NULL);
	struct rl_test_client *over = it_connect(&s);
	it_fatal(over, "SERVER_FULL");
	char *t = scrape(admin);
	cr_assert_eq(metric(t, "relay_connections_refused_total{reason=\"server_full\"}"), 1);
	cr_assert_eq(metric(t, "relay_connections_refused_total{reason=\"emfile\"}"), 0);
	free(t);
	cr_assert_eq(await_metric(admin, "relay_connections", 1), 1);
	rl_test_close(over);
	rl_test_close(c);
	it_stop(&s);
}

/* Publishes until /metrics shows at least <want> outbound bytes queued in
 * relayd (a member that does not read, its socket buffers full). */
static double wait_queued(const char *admin, struct rl_test_client *pub, double want)
{
	int64_t end = rl_test_now_ms() + RL_TEST_BULK_MS;
	char chunk[4096];
	memset(chunk, 'x', sizeof(chunk));
	while (rl_test_now_ms() < end) {
		for (int i = 0; i < 64; i++)
			cr_assert_eq(rl_test_send_json(pub, RELAY_MSG_MESSAGE,
						       "{\"room\":\"slow\",\"content\":\"%.*s\"}",
						       (int)sizeof(chunk), chunk),
				     0, "%s", rl_test_err());
		it_ping(pub);
		char *t = scrape(admin);
		double q = metric(t, "relay_outbound_queued_bytes");
		free(t);
		if (q >= want)
			return q;
	}
	cr_assert_fail("outbound queue never grew");
	return 0;
}

Test(ops_live, slow_consumers_are_counted)
{
	struct rl_test_server s;
	char admin[160], chunk[4096];
	const char *args[] = {"--outbound-hard-limit", "256K", NULL};
	start(&s, admin, sizeof(admin), args, NULL);
	struct rl_test_client *slow = it_connect(&s), *pub = it_client(&s, NULL);
	cr_assert_eq(rl_test_set_rcvbuf(slow, 4096), 0);
	it_join(slow, "flood", -1);
	it_join(pub, "flood", -1);
	memset(chunk, 'x', sizeof(chunk));
	double dropped = 0;
	for (int64_t end = rl_test_now_ms() + RL_TEST_BULK_MS;
	     dropped < 1 && rl_test_now_ms() < end;) {
		for (int i = 0; i < 64; i++)
			cr_assert_eq(rl_test_send_json(pub, RELAY_MSG_MESSAGE,
						       "{\"room\":\"flood\",\"content\":\"%.*s\"}",
						       (int)sizeof(chunk), chunk),
				     0, "%s", rl_test_err());
		cr_assert_eq(rl_test_sync_skip(pub, RL_TEST_REPLY_MS, NULL), 0, "%s",
			     rl_test_err());
		char *t = scrape(admin);
		dropped = metric(t, "relay_slow_consumers_total");
		free(t);
	}
	char *t = scrape(admin);
	cr_assert_eq(metric(t, "relay_slow_consumers_total"), 1);
	cr_assert_eq(metric(t, "relay_protocol_errors_total{code=\"SLOW_CONSUMER\"}"), 1);
	cr_assert_eq(await_metric(admin, "relay_connections", 1), 1, "the slow one is gone");
	free(t);
	rl_test_close(slow);
	rl_test_close(pub);
	it_stop(&s);
}

Test(ops_live, health_turns_503_after_sigterm_while_connections_drain)
{
	struct rl_test_server s;
	char admin[160];
	const char *args[] = {"--shutdown-grace",
			      "15",
			      "--slow-consumer-timeout",
			      "0",
			      "--outbound-hard-limit",
			      "256M",
			      NULL};
	start(&s, admin, sizeof(admin), args, NULL);
	struct ops_http_reply r = get(admin, "/health");
	cr_assert_eq(r.status, 200);
	cr_assert(strstr(r.body, "\"status\":\"ok\""), "%s", r.body);
	ops_http_free(&r);
	/* A member that never reads, so shutdown cannot finish flushing it. */
	struct rl_test_client *slow = it_connect(&s), *pub = it_client(&s, NULL);
	cr_assert_eq(rl_test_set_rcvbuf(slow, 4096), 0);
	it_join(slow, "slow", -1);
	it_join(pub, "slow", -1);
	wait_queued(admin, pub, 1 << 20);
	cr_assert_eq(rl_test_server_signal(&s, SIGTERM), 0);
	/* The publisher reads: it gets SERVER_SHUTDOWN, proof that shutdown began. */
	it_fatal(pub, "SERVER_SHUTDOWN");
	r = get(admin, "/health");
	cr_assert_eq(r.status, 503, "%s", r.body);
	cr_assert(strstr(r.body, "\"status\":\"shutting_down\""), "%s", r.body);
	ops_http_free(&r);
	char *t = scrape(admin);
	cr_assert_eq(metric(t, "relay_shutting_down"), 1);
	free(t);
	int st = rl_test_server_wait(&s, 200);
	cr_assert_eq(st, -ETIMEDOUT, "relayd must still be draining (status %d)", st);
	rl_test_close(slow); /* the last connection goes: relayd finishes at once */
	cr_assert_eq(rl_test_server_wait(&s, RL_TEST_START_MS), 0);
	rl_test_close(pub);
	rl_test_server_free(&s);
}

/* ---- config file ---- */

static char cfg_path[128];

static void write_cfg(const char *text)
{
	snprintf(cfg_path, sizeof(cfg_path), "%s/relayd-ops-%d.conf",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	FILE *f = fopen(cfg_path, "w");
	cr_assert(f);
	fputs(text, f);
	fclose(f);
}

static void expect_option(const char *stats, const char *name, const char *value)
{
	char want[160];
	snprintf(want, sizeof(want), "\"%s\":\"%s\"", name, value);
	cr_assert(strstr(stats, want), "want %s in %s", want, stats);
}

Test(ops_live, config_precedence_is_cli_then_env_then_file_then_default)
{
	struct rl_test_server s;
	char admin[160];
	write_cfg("# test\n[relayd]\nmax-rooms-per-conn = 2\nmax_connections = 50\n"
		  "idle-timeout = 7\nslow-consumer-timeout = 4\noutbound-hard-limit = 256K\n");
	const char *args[] = {"--config", cfg_path, "--idle-timeout", "9", NULL};
	const char *env[] = {"RELAY_MAX_CONNECTIONS=60", "RELAY_IDLE_TIMEOUT=8", NULL};
	start(&s, admin, sizeof(admin), args, env);
	struct ops_http_reply r = get(admin, "/stats");
	expect_option(r.body, "max-rooms-per-conn", "2");    /* file over default */
	expect_option(r.body, "max-connections", "60");	     /* env over file */
	expect_option(r.body, "idle-timeout", "9");	     /* cli over env and file */
	expect_option(r.body, "slow-consumer-timeout", "4"); /* file */
	expect_option(r.body, "frame-timeout", "30");	     /* default */
	/* watermarks nobody set follow the file's small hard limit down */
	expect_option(r.body, "outbound-hard-limit", "262144");
	expect_option(r.body, "outbound-high-watermark", "131072");
	expect_option(r.body, "outbound-low-watermark", "32768");
	ops_http_free(&r);
	/* and the file's value is the one in force */
	struct rl_test_client *c = it_client(&s, NULL);
	it_join(c, "a", -1);
	it_join(c, "b", -1);
	cr_assert_eq(rl_test_send_json(c, RELAY_MSG_JOIN_ROOM, "{\"room\":\"c\"}"), 0);
	cr_assert(rl_test_expect_error(c, "TOO_MANY_ROOMS", RL_TEST_REPLY_MS), "%s", rl_test_err());
	rl_test_close(c);
	it_stop(&s);
	unlink(cfg_path);
}

static void expect_startup_error(const char *text, const char *want_after_path)
{
	char out[512], err[2048], want[512];
	write_cfg(text);
	const char *args[] = {"--port", "0", "--config", cfg_path, NULL};
	int st = rl_test_run_relayd(args, NULL, 0, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 1, "exit status %d, stderr: %s", st, err);
	snprintf(want, sizeof(want), "%s:%s", cfg_path, want_after_path);
	cr_assert(strstr(err, want), "want '%s' in stderr: %s", want, err);
	cr_assert(!strstr(out, "listening"), "%s", out);
}

Test(ops_live, config_errors_name_file_and_line_and_exit_1)
{
	expect_startup_error("port = 0\n\nbogus-option = 1\n", "3: unknown option 'bogus-option'");
	expect_startup_error("[relayd]\nidle-timeout = soon\n", "2: invalid value 'soon'");
	expect_startup_error("max-connections = 5\nnot an assignment\n", "2: syntax error");
	expect_startup_error("[server]\nport = 1\n", "1: unknown section [server]");
	expect_startup_error("outbound-low-watermark = 4M\n", " --outbound-low-watermark");
	unlink(cfg_path);
	char out[256], err[1024];
	const char *args[] = {"--config", "/nonexistent/relayd.conf", NULL};
	cr_assert_eq(rl_test_run_relayd(args, NULL, 0, out, sizeof(out), err, sizeof(err)), 1);
	cr_assert(strstr(err, "/nonexistent/relayd.conf: No such file or directory"), "%s", err);
}

Test(ops_live, sighup_reloads_the_log_level_of_a_running_server)
{
	struct rl_test_server s;
	char admin[160];
	write_cfg("log-level = info\nport = 0\nmax-rooms-per-conn = 5\n");
	const char *args[] = {"--config", cfg_path, NULL};
	start(&s, admin, sizeof(admin), args, NULL);
	struct rl_test_client *c = it_client(&s, NULL);
	it_ping(c);
	cr_assert(!rl_test_server_log_has(&s, "out HEARTBEAT"), "no debug lines at info");
	write_cfg("log-level = debug\nport = 4321\nmax-rooms-per-conn = 6\n");
	cr_assert_eq(rl_test_server_signal(&s, SIGHUP), 0);
	cr_assert(rl_test_server_log_wait(&s, "config: reloaded", RL_TEST_REPLY_MS), "no reload line");
	cr_assert(rl_test_server_log_has(&s, "config: log-level changed from info to debug"));
	cr_assert(rl_test_server_log_has(&s, "config: max-rooms-per-conn changed from 5 to 6"));
	cr_assert(rl_test_server_log_has(&s, "config: port = 4321 needs a restart (still 0)"));
	it_ping(c);
	cr_assert(rl_test_server_log_wait(&s, "out HEARTBEAT", RL_TEST_REPLY_MS),
		  "debug lines after SIGHUP");
	struct ops_http_reply r = get(admin, "/stats");
	expect_option(r.body, "log-level", "debug");
	expect_option(r.body, "max-rooms-per-conn", "6");
	ops_http_free(&r);
	/* A broken file changes nothing. */
	write_cfg("log-level = loud\n");
	cr_assert_eq(rl_test_server_signal(&s, SIGHUP), 0);
	cr_assert(rl_test_server_log_wait(&s, "config: reload failed, nothing changed", RL_TEST_REPLY_MS));
	r = get(admin, "/stats");
	expect_option(r.body, "log-level", "debug");
	ops_http_free(&r);
	rl_test_close(c);
	it_stop(&s);
	unlink(cfg_path);
}

/* A config path that is a directory, or a file with a NUL byte, is refused:
 * at start with exit 1 and one line naming it; on SIGHUP with the error
 * logged and the running config kept. (Both used to load as empty.) */
static void expect_one_line_refusal(const char *want)
{
	char out[512], err[2048];
	const char *args[] = {"--port", "0", "--config", cfg_path, NULL};
	int st = rl_test_run_relayd(args, NULL, 10000, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 1, "exit status %d, stderr: %s", st, err);
	cr_assert(strstr(err, cfg_path) && strstr(err, want), "want '%s' naming the file: %s", want,
		  err);
	cr_assert(strchr(err, '\n') == err + strlen(err) - 1, "one line: %s", err);
	cr_assert(!strstr(out, "listening"), "%s", out);
}

static void write_cfg_bytes(const void *p, size_t n)
{
	write_cfg("");
	FILE *f = fopen(cfg_path, "w");
	cr_assert(f);
	cr_assert_eq(fwrite(p, 1, n, f), n);
	fclose(f);
}

Test(ops_live, config_directory_or_nul_byte_refused_at_start_and_reload)
{
	static const char nul[] = "\0port = 0\n";
	write_cfg_bytes(nul, sizeof(nul) - 1);
	expect_one_line_refusal(":1: contains a NUL byte");
	unlink(cfg_path);
	cr_assert_eq(mkdir(cfg_path, 0700), 0, "%s", strerror(errno));
	expect_one_line_refusal(": is a directory");
	rmdir(cfg_path);

	struct rl_test_server s;
	write_cfg("log-level = info\nmax-rooms-per-conn = 5\n");
	const char *args[] = {"--config", cfg_path, NULL};
	cr_assert_eq(rl_test_server_start(&s, args, NULL, 0), 0, "%s", rl_test_err());
	struct rl_test_client *c = it_client(&s, NULL);
	write_cfg_bytes(nul, sizeof(nul) - 1);
	cr_assert_eq(rl_test_server_signal(&s, SIGHUP), 0);
	cr_assert(rl_test_server_log_wait(&s, ":1: contains a NUL byte", RL_TEST_REPLY_MS), "no refusal logged");
	cr_assert(rl_test_server_log_has(&s, "config: reload failed, nothing changed"));
	unlink(cfg_path);
	cr_assert_eq(mkdir(cfg_path, 0700), 0, "%s", strerror(errno));
	cr_assert_eq(rl_test_server_signal(&s, SIGHUP), 0);
	bool dir = rl_test_server_log_wait(&s, "is a directory", RL_TEST_REPLY_MS);
	rmdir(cfg_path);
	cr_assert(dir, "no refusal of the directory logged");
	cr_assert(!rl_test_server_log_has(&s, "changed from"), "the running config changed");
	cr_assert_eq(rl_test_ping(c, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
	rl_test_close(c);
	it_stop(&s);
}

Test(ops_live, world_writable_config_is_loaded_with_a_warning_naming_it)
{
	struct rl_test_server s;
	char want[256];
	write_cfg("max-rooms-per-conn = 5\n");
	cr_assert_eq(chmod(cfg_path, 0666), 0, "%s", strerror(errno));
	const char *args[] = {"--config", cfg_path, NULL};
	cr_assert_eq(rl_test_server_start(&s, args, NULL, 0), 0, "%s", rl_test_err());
	snprintf(want, sizeof(want), "warn  main - config: %s is world-writable", cfg_path);
	cr_assert(rl_test_server_log_has(&s, want), "no warning '%s'", want);
	it_stop(&s);
	unlink(cfg_path);
}

/* ---- sd_notify ---- */

static int notify_socket(char *path, size_t cap)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(path, cap, "%s/relayd-notify-%d.sock",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	unlink(path);
	cr_assert_lt(strlen(path), sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "%s",
		  strerror(errno));
	return fd;
}

static bool notify_recv(int fd, char *buf, size_t cap, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, ms) != 1)
		return false;
	ssize_t n = recv(fd, buf, cap - 1, 0);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

Test(ops_live, sd_notify_ready_after_listening_and_stopping_on_sigterm)
{
#ifndef RL_TEST_HAVE_SYSTEMD
	cr_skip_test("relayd built without libsystemd (-Dsystemd=disabled)");
#endif
	struct rl_test_server s;
	char path[160], env0[200], msg[512];
	int fd = notify_socket(path, sizeof(path));
	snprintf(env0, sizeof(env0), "NOTIFY_SOCKET=%s", path);
	const char *env[] = {env0, NULL};
	const char *args[] = {"--workers", "2", NULL};
	it_start_env(&s, args, env);
	cr_assert(notify_recv(fd, msg, sizeof(msg), RL_TEST_REPLY_MS), "no READY=1");
	cr_assert(strncmp(msg, "READY=1\n", 8) == 0, "%s", msg);
	/* Sent once every listener was bound: it names the bound port, and the
	 * port accepts at once. */
	char want[200];
	snprintf(want, sizeof(want), "STATUS=listening on %s:%u (2 workers)", s.host,
		 (unsigned)s.port);
	cr_assert(strstr(msg, want), "want %s in %s", want, msg);
	/* Connect to the address READY names, not to the one the harness read. */
	char host[64];
	unsigned port = 0;
	const char *st = strstr(msg, "STATUS=listening on ");
	cr_assert(st && sscanf(st, "STATUS=listening on %63[^:]:%u", host, &port) == 2, "%s", msg);
	struct rl_test_client *c = rl_test_connect_addr(host, (uint16_t)port, RL_TEST_REPLY_MS);
	cr_assert(c, "READY=1 sent but %s:%u does not accept: %s", host, port, rl_test_err());
	cr_assert(rl_test_hello(c, NULL, RL_TEST_REPLY_MS), "%s", rl_test_err());
	cr_assert(!notify_recv(fd, msg, sizeof(msg), 0), "one READY only: %s", msg);
	cr_assert_eq(rl_test_server_signal(&s, SIGHUP), 0);
	cr_assert(notify_recv(fd, msg, sizeof(msg), RL_TEST_REPLY_MS) && strstr(msg, "RELOADING=1"),
		  "%s", msg);
	cr_assert(notify_recv(fd, msg, sizeof(msg), RL_TEST_REPLY_MS) && strstr(msg, "READY=1"),
		  "%s", msg);
	cr_assert_eq(rl_test_server_signal(&s, SIGTERM), 0);
	cr_assert(notify_recv(fd, msg, sizeof(msg), RL_TEST_REPLY_MS), "no STOPPING=1");
	cr_assert(strncmp(msg, "STOPPING=1", 10) == 0, "%s", msg);
	cr_assert_eq(rl_test_server_wait(&s, RL_TEST_START_MS), 0);
	rl_test_close(c);
	rl_test_server_free(&s);
	close(fd);
	unlink(path);
}

Test(ops_live, admin_on_a_taken_port_fails_startup)
{
	uint16_t taken;
	int fd = rl_test_loopback_listener(&taken);
	cr_assert_geq(fd, 0, "%s", rl_test_err());
	char addr[64], out[512], err[1024];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", taken);
	const char *args[] = {"--port", "0", "--admin", addr, NULL};
	int st = rl_test_run_relayd(args, NULL, 0, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 1, "status %d: %s", st, err);
	cr_assert(strstr(err, "--admin") && strstr(err, "in use"), "%s", err);
	close(fd);
}
