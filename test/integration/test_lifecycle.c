/* test_lifecycle.c -- the relayd process: SIGTERM with connected clients,
 * port already in use, bad option values, --help/--version, environment
 * variables, the listening line.
 * Threading: Criterion test bodies. */
#include "itest.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay != '\0'; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

IT_TEST(lifecycle, sigterm_sends_server_shutdown_to_every_client_and_exits_0)
{
	enum { N = 12 };
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "2", "--shutdown-grace", "3", "--no-presence");
	struct rl_test_client *c[N];
	for (int i = 0; i < N; i++) {
		c[i] = i % 3 == 0 ? it_connect(&s) : it_client(&s, NULL);
		if (i % 2 == 0)
			it_join(c[i], i % 4 == 0 ? "a" : "b", -1);
	}
	/* Every client is accepted by relayd (a round trip each; connections
	 * still in a listener's accept queue at SIGTERM are reset by the kernel
	 * when the listener closes), then one is left in the middle of a frame. */
	for (int i = 0; i < N; i++)
		it_ping(c[i]);
	uint8_t part[5] = {0, 0, 0, 10, 1};
	it_raw(c[1], part, sizeof(part));
	it_ping(c[2]);
	cr_assert_eq(rl_test_server_signal(&s, SIGTERM), 0, "%s", rl_test_err());
	for (int i = 0; i < N; i++)
		cr_assert_eq(rl_test_expect_fatal(c[i], "SERVER_SHUTDOWN", RL_TEST_REPLY_MS), 0,
			     "client %d: %s", i, rl_test_err());
	int st = rl_test_server_wait(&s, RL_TEST_START_MS);
	cr_assert_eq(st, 0, "relayd exit status %d after SIGTERM", st);
	/* The final totals (issue 3: connections served, messages, bytes, peak
	 * connections, slow consumers), in relayd's own line on stdout. */
	cr_assert(s.out != NULL && strstr(s.out, "connections served 12,") != NULL &&
			  strstr(s.out, "peak connections 12,") != NULL &&
			  strstr(s.out, "slow consumers dropped 0") != NULL,
		  "final totals on stdout: %s", s.out != NULL ? s.out : "(none)");
	for (int i = 0; i < N; i++)
		rl_test_close(c[i]);
	rl_test_server_free(&s);
}

/* Clients that never read cannot hold the shutdown beyond --shutdown-grace. */
IT_TEST(lifecycle, shutdown_grace_bounds_the_flush)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--shutdown-grace", "0.5", "--no-presence");
	struct rl_test_client *stuck = it_client(&s, NULL);
	rl_test_set_rcvbuf(stuck, 4096);
	struct rl_test_client *pub = it_client(&s, NULL);
	it_join(stuck, "g", 1);
	it_join(pub, "g", 2);
	/* 6 MiB toward a client that never reads: more than the kernel buffers
	 * absorb, less than the default hard limit (8M). */
	static uint8_t msg[16384];
	msg[0] = 1;
	msg[1] = 'g';
	for (int i = 0; i < 384; i++)
		it_send(pub, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, msg, sizeof(msg));
	it_ping(pub);
	int64_t t0 = rl_test_now_ms();
	cr_assert_eq(rl_test_server_signal(&s, SIGTERM), 0);
	int st = rl_test_server_wait(&s, RL_TEST_START_MS);
	int64_t took = rl_test_now_ms() - t0;
	cr_assert_eq(st, 0, "exit status %d", st);
	cr_assert_lt(took, 3000, "shutdown took %lld ms with --shutdown-grace 0.5", (long long)took);
	rl_test_close(stuck);
	rl_test_close(pub);
	rl_test_server_free(&s);
}

/* Whether <hay> contains one of the '|'-separated <alts>, ignoring case. */
static bool contains_any(const char *hay, const char *alts)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", alts);
	char *save = NULL;
	for (char *t = strtok_r(buf, "|", &save); t != NULL; t = strtok_r(NULL, "|", &save))
		if (contains_ci(hay, t))
			return true;
	return false;
}

static void expect_start_failure(const char *const *args, const char *const *env,
				 const char *name, const char *what)
{
	char out[4096], err[4096];
	int st = rl_test_run_relayd(args, env, 0, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 1, "%s: exit status %d, want 1; stderr: %s", what, st, err);
	cr_assert_eq(count_lines(err), 1, "%s: want exactly one stderr line, got:\n%s", what, err);
	cr_assert(err[0] != '\n', "%s: empty error line", what);
	if (name != NULL)
		cr_assert(contains_any(err, name), "%s: the error should name %s: %s", what, name, err);
	cr_assert(strstr(out, "listening") == NULL, "%s: printed %s", what, out);
}

IT_TEST(lifecycle, a_port_held_by_another_socket_fails_startup)
{
	IT_NEED_PROCESS();
	uint16_t taken;
	int fd = rl_test_loopback_listener(&taken);
	cr_assert_geq(fd, 0, "%s", rl_test_err());
	char port[16];
	snprintf(port, sizeof(port), "%u", taken);
	const char *args[] = {"--port", port, "--workers", "2", NULL};
	expect_start_failure(args, NULL, port, "port held by another socket");
	close(fd);
}

/* The hard case: a second relayd on the same port. With SO_REUSEPORT on
 * both sides (same user) Linux lets the bind succeed and would silently
 * share the port, so relayd must detect it and refuse. */
IT_TEST(lifecycle, a_port_held_by_another_relayd_fails_startup)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "2");
	char port[16];
	snprintf(port, sizeof(port), "%u", s.port);
	const char *args[] = {"--port", port, "--workers", "2", NULL};
	expect_start_failure(args, NULL, port, "port held by a running relayd");
	/* The first one is unaffected. */
	struct rl_test_client *c = it_client(&s, NULL);
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(lifecycle, bad_option_values_exit_1_with_one_line)
{
	static const struct {
		const char *opt, *val, *name;
	} cases[] = {
		{"--port", "70000", "port"},
		{"--port", "abc", "port"},
		{"--port", "-1", "port"},
		{"--workers", "x", "workers"},
		{"--workers", "-2", "workers"},
		{"--max-frame-bytes", "2", "max-frame-bytes"},
		{"--max-frame-bytes", "big", "max-frame-bytes"},
		{"--max-connections", "-5", "max-connections"},
		{"--max-rooms-per-conn", "lots", "max-rooms-per-conn"},
		{"--idle-timeout", "-1", "idle-timeout"},
		{"--idle-timeout", "soon", "idle-timeout"},
		{"--frame-timeout", "x", "frame-timeout"},
		{"--slow-consumer-timeout", "?", "slow-consumer-timeout"},
		{"--shutdown-grace", "later", "shutdown-grace"},
		{"--log-level", "loud", "log-level"},
		{"--host", "999.1.1.1", "999.1.1.1|host"},
	};
	IT_NEED_PROCESS();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = {"--port", "0", cases[i].opt, cases[i].val, NULL};
		char what[128];
		snprintf(what, sizeof(what), "%s %s", cases[i].opt, cases[i].val);
		expect_start_failure(args, NULL, cases[i].name, what);
	}
	/* The same through the environment. */
	const char *args[] = {"--port", "0", NULL};
	const char *env[] = {"RELAY_WORKERS=many", NULL};
	expect_start_failure(args, env, "workers", "RELAY_WORKERS=many");
	/* An unknown option is not a bad value; reading: exit 1 all the same,
	 * and stderr names it (getopt may add a "try --help" line). */
	const char *unk[] = {"--port", "0", "--bogus-option", NULL};
	char out[4096], err[4096];
	int st = rl_test_run_relayd(unk, NULL, 0, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 1, "--bogus-option: exit status %d: %s", st, err);
	cr_assert(contains_ci(err, "bogus-option"), "--bogus-option: %s", err);
}

IT_TEST(lifecycle, help_lists_options_with_defaults_and_version_prints_it)
{
	static const char *const opts[] = {
		"--host", "--port", "--workers", "--max-frame-bytes", "--max-connections",
		"--max-rooms-per-conn", "--idle-timeout", "--frame-timeout",
		"--slow-consumer-timeout", "--no-presence", "--shutdown-grace", "--log-level",
		"--debug", "--version",
	};
	IT_NEED_PROCESS();
	static char out[65536], err[4096];
	const char *help[] = {"--help", NULL};
	int st = rl_test_run_relayd(help, NULL, 0, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 0, "--help: status %d: %s", st, err);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		cr_assert(strstr(out, opts[i]) != NULL, "--help does not list %s:\n%s", opts[i], out);
	/* Defaults are shown. */
	cr_assert(strstr(out, "4000") != NULL && strstr(out, "1048576") != NULL &&
			  strstr(out, "127.0.0.1") != NULL,
		  "--help should show defaults:\n%s", out);
	const char *ver[] = {"--version", NULL};
	st = rl_test_run_relayd(ver, NULL, 0, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 0, "--version: status %d", st);
	cr_assert(strstr(out, RELAY_VERSION_STRING) != NULL, "--version: %s", out);
}

IT_TEST(lifecycle, environment_sets_options_and_argv_wins)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	const char *env[] = {"RELAY_WORKERS=3", NULL};
	cr_assert_eq(rl_test_server_start(&s, NULL, env, 0), 0, "%s", rl_test_err());
	cr_assert_eq(s.workers, 3, "RELAY_WORKERS=3: %s", s.line);
	cr_assert_str_eq(s.host, "127.0.0.1", "default host: %s", s.line);
	it_stop(&s);
	const char *args[] = {"--workers", "2", NULL};
	cr_assert_eq(rl_test_server_start(&s, args, env, 0), 0, "%s", rl_test_err());
	cr_assert_eq(s.workers, 2, "--workers 2 over RELAY_WORKERS=3: %s", s.line);
	it_stop(&s);
	/* RELAY_DEBUG=1 is --debug: the HELLO ack names the worker. */
	const char *dbg[] = {"RELAY_DEBUG=1", NULL};
	const char *one[] = {"--workers", "1", NULL};
	cr_assert_eq(rl_test_server_start(&s, one, dbg, 0), 0, "%s", rl_test_err());
	struct rl_test_client *c = it_client(&s, NULL);
	cr_assert_eq(rl_test_worker(c), 0, "RELAY_DEBUG=1: no \"worker\":0 in the HELLO ack");
	rl_test_close(c);
	it_stop(&s);
}

IT_TEST(lifecycle, the_listening_line_names_host_port_and_workers)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "2", "--host", "127.0.0.1");
	char want[128];
	snprintf(want, sizeof(want), "relayd listening on 127.0.0.1:%u (2 workers)", s.port);
	cr_assert_str_eq(s.line, want);
	cr_assert_neq(s.port, 0);
	it_stop(&s);
}

/* A second SIGTERM exits at once, even while the first one's grace period
 * waits for a client that never reads. (Exit status not asserted: the spec
 * only says "at once".) */
IT_TEST(lifecycle, second_signal_exits_at_once)
{
	struct rl_test_server s;
	IT_NEED_PROCESS();
	IT_START(&s, "--workers", "1", "--shutdown-grace", "20", "--no-presence");
	struct rl_test_client *stuck = it_client(&s, NULL);
	cr_assert_eq(rl_test_set_rcvbuf(stuck, 128 * 1024), 0);
	struct rl_test_client *pub = it_client(&s, NULL);
	it_join(stuck, "g", 1);
	it_join(pub, "g", 2);
	static uint8_t msg[16384];
	msg[0] = 1;
	msg[1] = 'g';
	for (int i = 0; i < 384; i++) /* 6 MiB, more than the kernel buffers hold */
		it_send(pub, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, msg, sizeof(msg));
	it_ping(pub);
	cr_assert_eq(rl_test_server_signal(&s, SIGTERM), 0);
	/* pub reads its SERVER_SHUTDOWN: the first signal was handled. */
	cr_assert_eq(rl_test_expect_fatal(pub, "SERVER_SHUTDOWN", RL_TEST_REPLY_MS), 0, "%s",
		     rl_test_err());
	cr_assert_eq(rl_test_server_wait(&s, 300), -ETIMEDOUT,
		     "relayd exited before the grace period although a client holds queued data");
	int64_t t0 = rl_test_now_ms();
	cr_assert_eq(rl_test_server_signal(&s, SIGTERM), 0);
	int st = rl_test_server_wait(&s, RL_TEST_START_MS);
	cr_assert_neq(st, -ETIMEDOUT, "a second SIGTERM did not end relayd");
	cr_assert_lt(rl_test_now_ms() - t0, 2000, "a second SIGTERM took %lld ms",
		     (long long)(rl_test_now_ms() - t0));
	rl_test_close(stuck);
	rl_test_close(pub);
	rl_test_server_free(&s);
}

/* Running out of descriptors (EMFILE) is survived: connections beyond the
 * limit are accepted and closed, and relayd serves again once some close.
 * The test lowers relayd's RLIMIT_NOFILE to 40 with prlimit(2) once it runs
 * (relayd may raise its own soft limit at start). */
IT_TEST(lifecycle, running_out_of_descriptors_refuses_connections_then_recovers)
{
	enum { N = 48 };
	struct rl_test_server s;
	IT_NEED_PROCESS();
	if (getenv("RELAY_TEST_WRAPPER") != NULL && getenv("RELAY_TEST_WRAPPER")[0] != '\0')
		cr_skip_test("descriptor limits and a wrapper (valgrind) do not mix");
	IT_START(&s, "--workers", "1");
	struct rlimit low = {.rlim_cur = 40, .rlim_max = 40};
	cr_assert_eq(prlimit(s.pid, RLIMIT_NOFILE, &low, NULL), 0, "prlimit: %s", strerror(errno));
	struct rl_test_client *c[N];
	int served = 0, refused = 0;
	for (int i = 0; i < N; i++) {
		c[i] = it_connect(&s);
		if (rl_test_hello(c[i], NULL, RL_TEST_REPLY_MS) != NULL) {
			served++;
		} else {
			/* Closed without a reply (or SERVER_FULL is not expected here). */
			cr_assert(strstr(rl_test_err(), "closed") != NULL ||
					  strstr(rl_test_err(), "reset") != NULL,
				  "connection %d over the fd limit: %s", i, rl_test_err());
			refused++;
		}
	}
	cr_log_info("EMFILE: %d served, %d accepted-and-closed", served, refused);
	cr_assert_gt(served, 0);
	cr_assert_gt(refused, 0, "all %d connections served under RLIMIT_NOFILE 40?", N);
	for (int i = 0; i < N; i++)
		rl_test_close(c[i]);
	/* Serves again once descriptors are free (closes are noticed
	 * asynchronously: retry briefly). */
	bool ok = false;
	for (int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS; !ok && rl_test_now_ms() < end;) {
		struct rl_test_client *x = it_connect(&s);
		ok = rl_test_hello(x, NULL, RL_TEST_REPLY_MS) != NULL;
		if (ok)
			it_ping(x);
		rl_test_close(x);
	}
	cr_assert(ok, "relayd does not serve after EMFILE: %s", rl_test_err());
	it_stop(&s);
}

/* The kernel's timer of relayd's end of <c> (the line in /proc/net/tcp whose
 * local port is the server's and remote port is <c>'s): *<tr> 0 none,
 * 1 retransmit, 2 keepalive (or SYN-ACK), 4 zero-window probe; *<ticks> until
 * it fires, in clock ticks. 0, or -1 if no such line. */
static int tcp_timer(const struct rl_test_server *s, const struct rl_test_client *c, unsigned *tr,
		     unsigned long *ticks)
{
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	cr_assert_eq(getsockname(rl_test_fd(c), (struct sockaddr *)&me, &len), 0);
	FILE *f = fopen("/proc/net/tcp", "r");
	cr_assert_not_null(f, "/proc/net/tcp");
	char line[512];
	int found = -1;
	while (found != 0 && fgets(line, sizeof(line), f) != NULL) {
		unsigned la, lp, ra, rp, st, txq, rxq;
		if (sscanf(line, " %*u: %8x:%4x %8x:%4x %2x %8x:%8x %2x:%8lx", &la, &lp, &ra, &rp,
			   &st, &txq, &rxq, tr, ticks) == 9 &&
		    lp == s->port && rp == ntohs(me.sin_port))
			found = 0;
	}
	fclose(f);
	return found;
}

/* Waits (bounded) until relayd's end of <c> has no retransmission pending,
 * i.e. every byte it sent was acked, and returns its timer kind. */
static unsigned settled_tcp_timer(const struct rl_test_server *s, const struct rl_test_client *c,
				  unsigned long *ticks)
{
	int64_t deadline = rl_test_now_ms() + RL_TEST_REPLY_MS;
	unsigned tr = 1;
	while (tr == 1 || tr == 4) {
		cr_assert_lt(rl_test_now_ms(), deadline, "relayd's socket keeps timer %u", tr);
		cr_assert_eq(tcp_timer(s, c, &tr, ticks), 0, "relayd's end not in /proc/net/tcp");
	}
	return tr;
}

/* --tcp-keepalive reaches the accepted sockets: the kernel shows relayd's end
 * of an idle connection with the keepalive timer armed for the idle time,
 * and with no timer at all for 0. */
IT_TEST(lifecycle, tcp_keepalive_option_arms_accepted_sockets)
{
	IT_NEED_PROCESS();
	static char out[65536], err[4096];
	const char *help[] = {"--help", NULL};
	cr_assert_eq(rl_test_run_relayd(help, NULL, 5000, out, sizeof(out), err, sizeof(err)), 0);
	cr_assert(strstr(out, "--tcp-keepalive SECONDS") != NULL &&
		      strstr(out, "(default: 60) [RELAY_TCP_KEEPALIVE]") != NULL,
		  "--help: %s", out);
	const char *bad[] = {"--port", "0", "--tcp-keepalive", "soon", NULL};
	expect_start_failure(bad, NULL, "tcp-keepalive", "--tcp-keepalive soon");
	const char *big[] = {"--port", "0", "--tcp-keepalive", "32768", NULL};
	expect_start_failure(big, NULL, "tcp-keepalive", "--tcp-keepalive 32768");

	long hz = sysconf(_SC_CLK_TCK);
	unsigned long ticks;
	struct rl_test_server s;
	IT_START(&s, "--workers", "1", "--tcp-keepalive", "45");
	struct rl_test_client *c = it_client(&s, NULL);
	cr_assert_eq(settled_tcp_timer(&s, c, &ticks), 2, "keepalive timer not armed");
	cr_assert(ticks > (unsigned long)(40 * hz) && ticks <= (unsigned long)(45 * hz),
		  "keepalive fires in %lu ticks, want about 45 s (%ld ticks/s)", ticks, hz);
	rl_test_close(c);
	it_stop(&s);

	const char *env[] = {"RELAY_TCP_KEEPALIVE=0", NULL};
	cr_assert_eq(rl_test_server_start(&s, NULL, env, 0), 0, "%s", rl_test_err());
	c = it_client(&s, NULL);
	cr_assert_eq(settled_tcp_timer(&s, c, &ticks), 0, "a timer with keepalive off");
	rl_test_close(c);
	it_stop(&s);
}
