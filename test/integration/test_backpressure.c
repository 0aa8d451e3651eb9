/* test_backpressure.c -- cross-worker backpressure hits only the publisher
 * responsible: while the worker that must deliver a room's messages is
 * stalled, a client flooding that room is paused (relayd stops reading it)
 * and nobody else is; the paused client is not timed out for the bytes relayd
 * declined to read; relayd's memory stays bounded; once the stalled worker
 * catches up the publisher resumes and every message arrives, in order.
 *
 * How a worker is stalled, deterministically: relayd names its worker
 * threads "relayd-wK"; the test stops exactly that thread with ptrace
 * (PTRACE_SEIZE + PTRACE_INTERRUPT: a ptrace stop is per thread, unlike
 * SIGSTOP) and lets it go with PTRACE_DETACH. The other worker keeps
 * running. Clients are placed with --debug ("worker":K in the HELLO ack).
 *
 * Threading: Criterion test bodies; one flood thread per test sends on the
 * publisher while the test's thread receives on the others. */
#include "itest.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

/* ---- placing clients and stalling workers ------------------------------------ */

/* A client (HELLO done) on worker <k>: connects until one lands there. */
static struct rl_test_client *client_on(const struct rl_test_server *s, int k)
{
	for (int i = 0; i < 64; i++) {
		struct rl_test_client *c = it_client(s, NULL);
		if (rl_test_worker(c) == k)
			return c;
		rl_test_close(c);
	}
	cr_assert_fail("no connection landed on worker %d in 64 tries", k);
	return NULL;
}

/* The thread id of relayd <pid>'s worker <k> (thread name "relayd-wK"). */
static pid_t worker_tid(pid_t pid, int k)
{
	char dir[64], want[32];
	snprintf(dir, sizeof(dir), "/proc/%ld/task", (long)pid);
	snprintf(want, sizeof(want), "relayd-w%d\n", k);
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	pid_t tid = 0;
	struct dirent *e;
	while (tid == 0 && (e = readdir(d)) != NULL) {
		char path[384], comm[32] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/comm", dir, e->d_name);
		FILE *f = fopen(path, "re");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) != NULL && strcmp(comm, want) == 0)
			tid = (pid_t)strtol(e->d_name, NULL, 10);
		fclose(f);
	}
	closedir(d);
	cr_assert_gt(tid, 0, "relayd %ld has no thread named relayd-w%d", (long)pid, k);
	return tid;
}

/* The thread a test stopped, if any. A failed assertion must let it go
 * before relayd is killed: a traced thread's exit waits for its tracer (us)
 * to reap it, and relayd could not be reaped before that. */
static pid_t stalled_tid;

static void bp_fini(void)
{
	if (stalled_tid > 0)
		ptrace(PTRACE_DETACH, stalled_tid, NULL, NULL);
	stalled_tid = 0;
	it_fini();
}

#define BP_TEST(suite, name) Test(suite, name, .fini = bp_fini, .timeout = 60)

/* Stops thread <tid> (and only it) until unstall. */
static void stall(pid_t tid)
{
	cr_assert_eq(ptrace(PTRACE_SEIZE, tid, NULL, NULL), 0, "PTRACE_SEIZE %ld: %s", (long)tid,
		     strerror(errno));
	cr_assert_eq(ptrace(PTRACE_INTERRUPT, tid, NULL, NULL), 0, "PTRACE_INTERRUPT: %s",
		     strerror(errno));
	int st = 0;
	cr_assert_eq(waitpid(tid, &st, __WALL), tid, "waitpid %ld: %s", (long)tid, strerror(errno));
	cr_assert(WIFSTOPPED(st), "worker thread not stopped: status %#x", st);
	stalled_tid = tid;
}

static void unstall(pid_t tid)
{
	stalled_tid = 0;
	cr_assert_eq(ptrace(PTRACE_DETACH, tid, NULL, NULL), 0, "PTRACE_DETACH: %s",
		     strerror(errno));
}

static void skip_under_wrapper(void)
{
	const char *w = getenv("RELAY_TEST_WRAPPER");
	if (w != NULL && w[0] != '\0')
		cr_skip_test("stalls a relayd thread with ptrace: not under a wrapper");
}

/* ---- the flood ---------------------------------------------------------------- */

/* <n> JSON MESSAGE frames to room "bp", content "%06u" + <pad> bytes of
 * 'x', then one HEARTBEAT "flood-done": the publisher's own proof, when it
 * comes back, that relayd has read all of it. */
struct flood {
	struct rl_test_client *c;
	uint8_t *buf;
	size_t len;
	int rc;
};

static void flood_build(struct flood *f, struct rl_test_client *c, unsigned n, size_t pad)
{
	size_t cap = (size_t)n * (pad + 64) + 64, off = 0;
	char *payload = malloc(pad + 64);
	f->c = c;
	f->buf = malloc(cap);
	cr_assert(f->buf != NULL && payload != NULL);
	for (unsigned i = 0; i < n; i++) {
		int k = snprintf(payload, pad + 64, "{\"room\":\"bp\",\"content\":\"%06u", i);
		memset(payload + k, 'x', pad);
		memcpy(payload + k + pad, "\"}", 2);
		cr_assert_eq(rl_test_frame_append(f->buf, cap, &off, RELAY_MSG_MESSAGE,
						  RELAY_FLAG_JSON, payload, (size_t)k + pad + 2),
			     0);
	}
	cr_assert_eq(rl_test_frame_append(f->buf, cap, &off, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY,
					  "flood-done", 10),
		     0);
	f->len = off;
	free(payload);
}

static void *flood_run(void *arg)
{
	struct flood *f = arg;
	f->rc = rl_test_send_raw(f->c, f->buf, f->len, 60000);
	return NULL;
}

/* Expects the publisher's "flood-done" echo, nothing before it. */
static void expect_flood_done(struct rl_test_client *pub, int ms)
{
	const struct rl_test_frame *fr = rl_test_recv(pub, ms);
	cr_assert_not_null(fr, "publisher: no heartbeat echo after its flood: %s", rl_test_err());
	cr_assert(fr->type == RELAY_MSG_HEARTBEAT && fr->len == 10 &&
		      memcmp(fr->payload, "flood-done", 10) == 0,
		  "publisher: want its heartbeat echo, got %s", rl_test_frame_str(fr));
}

/* Nothing has come back to the publisher: relayd has not read its flood to
 * the end (it was paused). */
static void expect_paused(struct rl_test_client *pub)
{
	const struct rl_test_frame *fr = NULL;
	int r = rl_test_poll_frame(pub, &fr);
	cr_assert_eq(r, 0, "publisher should be paused (its flood unread), got %s",
		     r == 1 ? rl_test_frame_str(fr) : rl_test_err());
}

/* ---- tests ---------------------------------------------------------------------- */

/* A heartbeat-only client on the publisher's worker is answered promptly
 * while a flooder on the same worker is paused by the stalled worker that
 * holds the room's other member; after the stall every message arrives in
 * order. (Before: the whole publishing worker stopped reading every client
 * while another worker's inbox held more than 65,536 items.) */
BP_TEST(backpressure, only_the_flooder_waits_for_a_stalled_worker)
{
	enum { N = 80000, PAD = 32 };
	IT_NEED_PROCESS();
	skip_under_wrapper();
	struct rl_test_server s;
	IT_START(&s, "--workers", "2", "--debug", "--no-presence", "--outbound-hard-limit", "64M",
		 "--slow-consumer-timeout", "0");
	struct rl_test_client *pub = client_on(&s, 0), *hb = client_on(&s, 0);
	struct rl_test_client *mem = client_on(&s, 1);
	it_join(mem, "bp", 1);
	it_join(pub, "bp", 2);
	pid_t tid = worker_tid(s.pid, 1);
	stall(tid);

	struct flood f;
	flood_build(&f, pub, N, PAD);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, flood_run, &f), 0);
	int64_t worst = 0;
	for (int64_t end = rl_test_now_ms() + 2000; rl_test_now_ms() < end;) {
		int64_t t0 = rl_test_now_ms();
		cr_assert_eq(rl_test_ping(hb, 1000), 0,
			     "heartbeat client beside the flooder not answered within 1 s: %s",
			     rl_test_err());
		int64_t rtt = rl_test_now_ms() - t0;
		worst = rtt > worst ? rtt : worst;
		poll(NULL, 0, 50); /* pacing the pings */
	}
	cr_log_info("heartbeat beside the flooder: worst round trip %lld ms", (long long)worst);
	expect_paused(pub);

	unstall(tid);
	char want[16], got[64];
	for (unsigned i = 0; i < N; i++) {
		const struct rl_test_frame *fr = rl_test_recv(mem, 20000);
		cr_assert_not_null(fr, "member: message %u of %u: %s", i, N, rl_test_err());
		snprintf(want, sizeof(want), "%06u", i);
		cr_assert(fr->type == RELAY_MSG_MESSAGE &&
			      rl_test_json_str(fr, "content", got, sizeof(got)) > 6 &&
			      memcmp(got, want, 6) == 0,
			  "member: want message %s, got %s", want, rl_test_frame_str(fr));
	}
	expect_flood_done(pub, 20000);
	pthread_join(th, NULL);
	cr_assert_eq(f.rc, 0, "flood: %s", rl_test_err());
	free(f.buf);
	it_ping(hb);
	it_ping(mem);
	rl_test_close(pub);
	rl_test_close(hb);
	rl_test_close(mem);
	it_stop(&s);
}

/* A publisher paused for longer than --idle-timeout / --frame-timeout is not
 * closed with IDLE_TIMEOUT or FRAME_TIMEOUT: relayd chose not to read it.
 * <idle>, <frame>: the two options; the flood's frames are <pad> + 39
 * bytes (97 for the frame test: a prime, so the read that precedes the
 * pause almost surely ends inside a frame). */
static void paused_run(const char *idle, const char *frame, size_t pad)
{
	enum { N = 120000 };
	IT_NEED_PROCESS();
	skip_under_wrapper();
	struct rl_test_server s;
	IT_START(&s, "--workers", "2", "--debug", "--no-presence", "--idle-timeout", idle,
		 "--frame-timeout", frame);
	struct rl_test_client *pub = client_on(&s, 0), *hb = client_on(&s, 0);
	struct rl_test_client *mem = client_on(&s, 1);
	it_join(mem, "bp", 1);
	it_join(pub, "bp", 2);
	pid_t tid = worker_tid(s.pid, 1);
	stall(tid);

	struct flood f;
	flood_build(&f, pub, N, pad);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, flood_run, &f), 0);
	/* 2.5 s: well past the 1 s timeout. The heartbeat client keeps itself
	 * alive (its pings are answered at once: it is not paused). */
	for (int64_t end = rl_test_now_ms() + 2500; rl_test_now_ms() < end;) {
		cr_assert_eq(rl_test_ping(hb, 1000), 0, "heartbeat client: %s", rl_test_err());
		poll(NULL, 0, 200);
	}
	expect_paused(pub);
	/* The member on the stalled worker has been silent for 2.5 s: it leaves
	 * before the worker runs again, or it would rightly be timed out. */
	rl_test_close(mem);
	unstall(tid);
	/* The heartbeat client keeps pinging (--idle-timeout may be 1 s) while
	 * the rest of the flood is read. */
	const struct rl_test_frame *fr = NULL;
	for (int64_t end = rl_test_now_ms() + 20000; fr == NULL && rl_test_now_ms() < end;) {
		cr_assert_eq(rl_test_ping(hb, 1000), 0, "heartbeat client: %s", rl_test_err());
		struct pollfd p = {.fd = rl_test_fd(pub), .events = POLLIN};
		poll(&p, 1, 200);
		cr_assert_geq(rl_test_poll_frame(pub, &fr), 0, "publisher: %s", rl_test_err());
	}
	cr_assert_not_null(fr, "publisher: no heartbeat echo after its flood");
	cr_assert(fr->type == RELAY_MSG_HEARTBEAT && fr->len == 10 &&
		      memcmp(fr->payload, "flood-done", 10) == 0,
		  "publisher: want its heartbeat echo, got %s", rl_test_frame_str(fr));
	pthread_join(th, NULL);
	cr_assert_eq(f.rc, 0, "flood: %s", rl_test_err());
	free(f.buf);
	it_ping(pub);
	it_ping(hb);
	rl_test_close(pub);
	rl_test_close(hb);
	it_stop(&s);
}

BP_TEST(backpressure, a_paused_publisher_is_not_idle_timed_out)
{
	paused_run("1", "0", 32);
}

BP_TEST(backpressure, a_paused_publisher_is_not_frame_timed_out)
{
	paused_run("0", "1", 58);
}

/* While a worker is stalled, a publisher flooding 128 MiB at its members is
 * paused once that worker's inbox holds a few MiB: relayd's VmRSS grows by
 * far less than the flood. (Before: the inbox bound counted items, 65,536 of
 * them, whatever their size: all 128 MiB were read and queued.) */
BP_TEST(backpressure, memory_stays_bounded_while_a_worker_is_stalled)
{
	enum { N = 4096, PAD = 32 * 1024, BOUND_KIB = 40 * 1024 };
	IT_NEED_PROCESS();
	skip_under_wrapper();
	struct rl_test_server s;
	IT_START(&s, "--workers", "2", "--debug", "--no-presence");
	struct rl_test_client *pub = client_on(&s, 0), *mem = client_on(&s, 1);
	it_join(mem, "bp", 1);
	it_join(pub, "bp", 2);
	long before = rl_test_server_rss_kib(&s), peak = before;
	cr_assert_gt(before, 0);
	pid_t tid = worker_tid(s.pid, 1);
	stall(tid);

	struct flood f;
	flood_build(&f, pub, N, PAD);
	f.rc = 1;
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, flood_run, &f), 0);
	for (int64_t end = rl_test_now_ms() + 3000; rl_test_now_ms() < end;) {
		long rss = rl_test_server_rss_kib(&s);
		peak = rss > peak ? rss : peak;
		poll(NULL, 0, 50);
	}
	cr_log_info("stalled worker: VmRSS %ld KiB before the flood, peak %ld KiB", before, peak);
	cr_assert_leq(peak - before, BOUND_KIB,
		      "VmRSS grew by %ld KiB (bound %d KiB) while flooding a stalled worker",
		      peak - before, BOUND_KIB);
	expect_paused(pub);
	rl_test_close(mem);
	unstall(tid);
	expect_flood_done(pub, 30000);
	pthread_join(th, NULL);
	cr_assert_eq(f.rc, 0, "flood: %s", rl_test_err());
	free(f.buf);
	rl_test_close(pub);
	it_stop(&s);
}
