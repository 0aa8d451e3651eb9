/* test_emfile.c -- running out of descriptors with several workers: relayd
 * does not spin, every client is served or refused (closed) within a bounded
 * time instead of hanging in the backlog, a client connected before keeps
 * chatting, and relayd serves again once descriptors are free.
 *
 * The limit is lowered on the running relayd with prlimit(2) (relayd raises
 * its soft limit to the hard one at start, so the test lowers both, or only
 * the soft one when it wants to raise it back later).
 *
 * "Does not spin" is a behaviour bound, not a speed benchmark: relayd's CPU
 * time (utime + stime of /proc/PID/stat) over a one-second window while the
 * limit bites stays under 0.3 CPU-seconds per second. (Before, every worker
 * that had lost its reserve descriptor spun on accept() at ~1 CPU each.)
 *
 * Threading: Criterion test bodies. */
#include "itest.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#define CPU_BOUND 0.3 /* CPU-seconds per wall second */

/* relayd's utime + stime, in seconds. */
static double cpu_seconds(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "re");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command name (which is in parentheses): state is
	 * field 3, utime 14, stime 15. */
	const char *p = strrchr(buf, ')');
	cr_assert_not_null(p);
	unsigned long long ut = 0, st = 0;
	cr_assert_eq(
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st), 2,
	    "%s", buf);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* relayd's CPU use over <ms> of wall time, in CPU-seconds per second, while
 * <healthy> keeps chatting (a ping every 100 ms, each answered). */
static double cpu_rate(const struct rl_test_server *s, struct rl_test_client *healthy, int ms)
{
	double c0 = cpu_seconds(s->pid);
	int64_t t0 = rl_test_now_ms();
	while (rl_test_now_ms() - t0 < ms) {
		cr_assert_eq(rl_test_ping(healthy, RL_TEST_REPLY_MS), 0, "healthy client: %s", rl_test_err());
		poll(NULL, 0, 100); /* pacing the chat */
	}
	double c1 = cpu_seconds(s->pid);
	return (c1 - c0) * 1000.0 / (double)(rl_test_now_ms() - t0);
}

enum { STORM = 100 };

struct storm {
	struct rl_test_client *c[STORM];
	int state[STORM]; /* 0 waiting, 1 served (HELLO ack), 2 refused (closed) */
	int served, refused;
};

/* Connects STORM clients and says HELLO on each, all at once. */
static void storm_start(const struct rl_test_server *s, struct storm *st)
{
	memset(st, 0, sizeof(*st));
	for (int i = 0; i < STORM; i++) {
		/* The kernel completes the handshake from the backlog whether or
		 * not relayd accepts: connect itself never waits on relayd. */
		st->c[i] = it_connect(s);
		cr_assert_eq(rl_test_send_frame(st->c[i], RELAY_MSG_HELLO, 0, NULL, 0), 0,
			     "HELLO %d: %s", i, rl_test_err());
	}
}

/* Waits up to <ms> for every storm client to be served or refused; returns
 * how many are still waiting. */
static int storm_settle(struct storm *st, int ms)
{
	int64_t end = rl_test_now_ms() + ms;
	int waiting = STORM;
	while (waiting > 0 && rl_test_now_ms() < end) {
		struct pollfd p[STORM];
		int idx[STORM], n = 0;
		for (int i = 0; i < STORM; i++)
			if (st->state[i] == 0) {
				p[n] =
				    (struct pollfd){.fd = rl_test_fd(st->c[i]), .events = POLLIN};
				idx[n++] = i;
			}
		poll(p, (nfds_t)n, 50);
		for (int k = 0; k < n; k++) {
			int i = idx[k];
			const struct rl_test_frame *f = NULL;
			int r = rl_test_poll_frame(st->c[i], &f);
			if (r == 1) {
				cr_assert_eq(f->type, RELAY_MSG_HELLO, "storm client %d: %s", i,
					     rl_test_frame_str(f));
				st->state[i] = 1;
				st->served++;
			} else if (r < 0) {
				st->state[i] = 2;
				st->refused++;
			}
		}
		waiting = STORM - st->served - st->refused;
	}
	return waiting;
}

static void storm_close(struct storm *st)
{
	for (int i = 0; i < STORM; i++)
		rl_test_close(st->c[i]);
}

/* A new client is served within <ms> (closes are noticed asynchronously). */
static void expect_served_again(const struct rl_test_server *s, int ms)
{
	bool ok = false;
	for (int64_t end = rl_test_now_ms() + ms; !ok && rl_test_now_ms() < end;) {
		struct rl_test_client *x = it_connect(s);
		ok = rl_test_hello(x, NULL, 500) != NULL && rl_test_ping(x, RL_TEST_REPLY_MS) == 0;
		rl_test_close(x);
	}
	cr_assert(ok, "relayd does not serve after EMFILE: %s", rl_test_err());
}

static void skip_under_wrapper(void)
{
	const char *w = getenv("RELAY_TEST_WRAPPER");
	if (w != NULL && w[0] != '\0')
		cr_skip_test("descriptor limits and a wrapper (valgrind) do not mix");
}

/* RLIMIT_NOFILE 64 (soft and hard) with <workers> workers, 100 clients at
 * once: each served or refused within 5 s, no spinning, the healthy client
 * keeps chatting, and new clients are served once the storm has closed. */
static void storm_run(const char *workers)
{
	IT_NEED_PROCESS();
	skip_under_wrapper();
	struct rl_test_server s;
	IT_START(&s, "--workers", workers);
	struct rl_test_client *healthy = it_client(&s, NULL);
	struct rlimit low = {.rlim_cur = 64, .rlim_max = 64};
	cr_assert_eq(prlimit(s.pid, RLIMIT_NOFILE, &low, NULL), 0, "prlimit: %s", strerror(errno));

	struct storm st;
	storm_start(&s, &st);
	int waiting = storm_settle(&st, 5000);
	cr_log_info("EMFILE storm, %s workers: %d served, %d refused, %d waiting", workers,
		    st.served, st.refused, waiting);
	cr_assert_eq(waiting, 0, "%d of %d clients neither served nor refused within 5 s", waiting,
		     STORM);
	cr_assert_gt(st.refused, 0, "all %d served under RLIMIT_NOFILE 64?", STORM);
	double rate = cpu_rate(&s, healthy, 1000);
	cr_log_info("EMFILE storm, %s workers: relayd used %.3f CPU-s/s with the limit reached",
		    workers, rate);
	cr_assert_lt(rate, CPU_BOUND, "relayd spins at the descriptor limit: %.2f CPU-s/s", rate);
	storm_close(&st);
	expect_served_again(&s, RL_TEST_REPLY_MS);
	it_ping(healthy);
	rl_test_close(healthy);
	it_stop(&s);
}

IT_TEST(emfile, two_workers_refuse_the_storm_without_spinning)
{
	storm_run("2");
}

IT_TEST(emfile, four_workers_refuse_the_storm_without_spinning)
{
	storm_run("4");
}

/* The lowest descriptor relayd holds on /dev/null above stdin/out/err: a
 * worker's reserve. */
static int lowest_reserve_fd(pid_t pid)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%ld/fd", (long)pid);
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	int lowest = -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char path[384], target[64];
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd <= 2)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, "/dev/null") == 0 && (lowest < 0 || fd < lowest))
			lowest = fd;
	}
	closedir(d);
	cr_assert_geq(lowest, 0, "relayd holds no reserve descriptor");
	return lowest;
}

/* No worker can use its reserve: the soft limit is lowered to the lowest
 * reserve's number, so no descriptor at all can be had, not even by closing
 * a reserve. relayd must not spin on its readable listeners; the clients
 * wait in the backlog (nothing can refuse them) and are served once the
 * limit is raised again, within relayd's longest accept backoff (1 s). */
IT_TEST(emfile, without_a_usable_reserve_accept_backs_off_and_recovers)
{
	enum { N = 8 };
	IT_NEED_PROCESS();
	skip_under_wrapper();
	struct rl_test_server s;
	IT_START(&s, "--workers", "2");
	struct rl_test_client *healthy = it_client(&s, NULL);
	struct rlimit cur;
	cr_assert_eq(prlimit(s.pid, RLIMIT_NOFILE, NULL, &cur), 0, "prlimit: %s", strerror(errno));
	struct rlimit low = {.rlim_cur = (rlim_t)lowest_reserve_fd(s.pid),
			     .rlim_max = cur.rlim_max};
	cr_assert_eq(prlimit(s.pid, RLIMIT_NOFILE, &low, NULL), 0, "prlimit: %s", strerror(errno));

	struct rl_test_client *c[N];
	for (int i = 0; i < N; i++) {
		c[i] = it_connect(&s);
		cr_assert_eq(rl_test_send_frame(c[i], RELAY_MSG_HELLO, 0, NULL, 0), 0, "%s",
			     rl_test_err());
	}
	double rate = cpu_rate(&s, healthy, 1500);
	cr_log_info("no usable reserve: relayd used %.3f CPU-s/s", rate);
	cr_assert_lt(rate, CPU_BOUND, "relayd spins at the descriptor limit: %.2f CPU-s/s", rate);

	cr_assert_eq(prlimit(s.pid, RLIMIT_NOFILE, &cur, NULL), 0, "prlimit: %s", strerror(errno));
	int64_t t0 = rl_test_now_ms();
	for (int i = 0; i < N; i++) {
		cr_assert_not_null(rl_test_expect(c[i], RELAY_MSG_HELLO, -1, 2500),
				   "client %d waiting in the backlog: %s", i, rl_test_err());
		rl_test_close(c[i]);
	}
	cr_log_info("no usable reserve: backlog served %lld ms after the limit was raised",
		    (long long)(rl_test_now_ms() - t0));
	expect_served_again(&s, RL_TEST_REPLY_MS);
	it_ping(healthy);
	rl_test_close(healthy);
	it_stop(&s);
}
