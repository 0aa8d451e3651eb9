/* test_memory.c -- every byte a client can make relayd hold is bounded:
 * error replies count against the outbound limits like any other frame, the
 * hard limit judges what stays queued after a write attempt (a reader that
 * keeps up survives a burst), a frame dropped by an eviction is not counted
 * as delivered, and the client memory budget (--max-client-memory) drops
 * the largest output queues first and stops reading the largest partial
 * frames, so relayd's RSS stays near the budget and comes back down.
 *
 * RSS figures are relayd's VmRSS (/proc/PID/status); they are logged
 * (cr_log_info) so a run shows the numbers. Bounds are skipped under
 * RELAY_TEST_WRAPPER (valgrind), whose own memory is in the figure; the
 * budget tests also skip them under AddressSanitizer (its allocator keeps
 * every size class it ever used, so growing buffers by doubling pins each
 * step) and check relayd's own accounting (/metrics) instead, always.
 *
 * Threading: Criterion test bodies, one thread each. */
#include "itest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------- */

static bool mem_wrapped(void)
{
	const char *w = getenv("RELAY_TEST_WRAPPER");
	return w != NULL && w[0] != '\0';
}

/* Whether RSS reflects glibc malloc's behaviour (see the top). */
static bool mem_rss_native(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return false;
#else
	return !mem_wrapped();
#endif
}

/* Under ASan a small quarantine, so freed buffers do not count as resident. */
static const char *const *mem_env(void)
{
	static const char *env[2];
#if defined(__SANITIZE_ADDRESS__)
	static char buf[1024];
	const char *cur = getenv("ASAN_OPTIONS");
	snprintf(buf, sizeof(buf), "ASAN_OPTIONS=%s%squarantine_size_mb=4", cur != NULL ? cur : "",
		 cur != NULL && cur[0] != '\0' ? ":" : "");
	env[0] = buf;
#else
	env[0] = NULL;
#endif
	env[1] = NULL;
	return env;
}

/* Starts relayd with <args> (NULL-terminated) plus --admin on an ephemeral
 * port, whose HOST:PORT goes to <admin>. */
static void mem_start(struct rl_test_server *s, const char *const *args, char *admin, size_t cap)
{
	const char *argv[40] = {"--admin", "127.0.0.1:0"};
	size_t n = 2;
	for (size_t i = 0; args[i] != NULL && n < 39; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	cr_assert_eq(rl_test_server_start(s, argv, mem_env(), 0), 0, "start relayd: %s",
		     rl_test_err());
	char line[160];
	cr_assert_eq(rl_test_server_stdout_line(s, "relayd admin on ", line, sizeof(line), RL_TEST_REPLY_MS),
		     0, "%s", rl_test_err());
	snprintf(admin, cap, "%s", line + strlen("relayd admin on "));
}

/* The value of <series> (a whole sample name, labels included) in a GET
 * /metrics from <admin>; asserts it is there. */
static double mem_metric(const char *admin, const char *series)
{
	char host[64];
	const char *colon = strrchr(admin, ':');
	cr_assert_not_null(colon, "%s", admin);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - admin), admin);
	struct rl_test_client *c = rl_test_connect_addr(host, (uint16_t)atoi(colon + 1), RL_TEST_REPLY_MS);
	cr_assert_not_null(c, "admin: %s", rl_test_err());
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	cr_assert_eq(rl_test_send_raw(c, req, sizeof(req) - 1, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
	static char body[1 << 17];
	size_t len = 0;
	int64_t deadline = rl_test_now_ms() + RL_TEST_REPLY_MS;
	for (;;) {
		struct pollfd p = {.fd = rl_test_fd(c), .events = POLLIN};
		cr_assert_gt(poll(&p, 1, (int)(deadline - rl_test_now_ms())), 0,
			     "/metrics timed out");
		ssize_t r = recv(rl_test_fd(c), body + len, sizeof(body) - 1 - len, 0);
		if (r == 0)
			break;
		cr_assert(r > 0 || errno == EAGAIN, "/metrics: %s", strerror(errno));
		if (r > 0)
			len += (size_t)r;
		cr_assert_lt(len, sizeof(body) - 1, "/metrics too long");
	}
	rl_test_close(c);
	body[len] = '\0';
	char want[160];
	snprintf(want, sizeof(want), "\n%s ", series);
	const char *at = strstr(body, want);
	cr_assert_not_null(at, "no %s in /metrics", series);
	return strtod(at + strlen(want), NULL);
}

static long mem_rss(const struct rl_test_server *s)
{
	long kib = rl_test_server_rss_kib(s);
	cr_assert_gt(kib, 0, "VmRSS: %ld", kib);
	return kib;
}

/* A binary MESSAGE payload to <room>: room length byte, room, <data>. */
static size_t mem_bin(uint8_t *out, const char *room, const void *data, size_t n)
{
	size_t rl = strlen(room);
	out[0] = (uint8_t)rl;
	memcpy(out + 1, room, rl);
	memcpy(out + 1 + rl, data, n);
	return 1 + rl + n;
}

/* Reads <c> to its end: frames, then ERROR SLOW_CONSUMER, then the close,
 * within <ms>. Counts the MESSAGE frames into *<msgs> (may be NULL) and the
 * ERROR frames with code <other> (may be NULL) into *<others>. Returns
 * whether SLOW_CONSUMER came; asserts nothing else arrives and that the
 * connection is closed in time. */
static bool mem_read_to_close(struct rl_test_client *c, int ms, uint64_t *msgs, const char *other,
			      uint64_t *others)
{
	int64_t deadline = rl_test_now_ms() + ms;
	bool slow = false;
	for (;;) {
		int64_t left = deadline - rl_test_now_ms();
		cr_assert_gt(left, 0, "still connected after %d ms", ms);
		const struct rl_test_frame *f = rl_test_recv(c, (int)left);
		if (f == NULL) {
			const char *e = rl_test_err();
			cr_assert(strstr(e, "closed") != NULL || strstr(e, "reset") != NULL, "%s",
				  e);
			return slow;
		}
		cr_assert(!slow, "a frame after the fatal ERROR: %s", rl_test_frame_str(f));
		if (f->type == RELAY_MSG_MESSAGE) {
			if (msgs != NULL)
				(*msgs)++;
			continue;
		}
		char code[64] = "";
		cr_assert_eq(f->type, RELAY_MSG_ERROR, "%s", rl_test_frame_str(f));
		rl_test_json_str(f, "code", code, sizeof(code));
		if (strcmp(code, "SLOW_CONSUMER") == 0)
			slow = true;
		else if (other != NULL && strcmp(code, other) == 0)
			(*others)++;
		else
			cr_assert_fail("unexpected %s", rl_test_frame_str(f));
	}
}

/* The "messages out N" of relayd's final totals line. */
static uint64_t mem_totals_messages_out(const struct rl_test_server *s)
{
	const char *t = s->out != NULL ? strstr(s->out, "messages out ") : NULL;
	cr_assert_not_null(t, "no totals line: %s", s->out != NULL ? s->out : "(none)");
	return strtoull(t + strlen("messages out "), NULL, 10);
}

/* ---- 1. error replies count against the outbound limits -------------------- */

/* A client that never reads and sends MESSAGEs to a room it is not in gets
 * one NOT_IN_ROOM per 9-byte frame, ~100 bytes each: a 10x amplifier. Those
 * replies were queued without the hard-limit check: 30 MiB of input took
 * relayd to 316 MiB and the client was never dropped. Reading: DRAINING
 * still reads requests (the spec's "inbound still flows"); the hard limit
 * drops the client instead. */
IT_TEST(memory, error_replies_count_against_the_hard_limit)
{
	IT_NEED_PROCESS();
	struct rl_test_server s;
	cr_assert_eq(
	    rl_test_server_start(&s, (const char *const[]){"--workers", "1", NULL}, mem_env(), 0),
	    0, "%s", rl_test_err());
	struct rl_test_client *c = it_client(&s, NULL);
	cr_assert_eq(rl_test_set_rcvbuf(c, 256 * 1024), 0, "%s", rl_test_err());
	long before = mem_rss(&s), peak = before;

	/* 64 KiB of 9-byte MESSAGE frames to room "r", which c is not in. */
	static uint8_t buf[9 * 7281];
	size_t off = 0;
	while (off + 9 <= sizeof(buf))
		cr_assert_eq(rl_test_frame_append(buf, sizeof(buf), &off, RELAY_MSG_MESSAGE,
						  RELAY_FLAG_BINARY, "\001r", 2),
			     0);
	size_t sent = 0;
	while (sent < (32u << 20)) {
		/* relayd stopped reading (CLOSING) or closed. */
		if (rl_test_send_raw(c, buf, off, 3000) != 0)
			break;
		sent += off;
		long rss = mem_rss(&s);
		peak = rss > peak ? rss : peak;
		if (!mem_wrapped())
			cr_assert_leq(peak - before, 32 * 1024,
				      "VmRSS grew by %ld KiB after %zu bytes of NOT_IN_ROOM bait "
				      "(bound 32 MiB; hard limit 8 MiB)",
				      peak - before, sent);
	}
	cr_assert_lt(sent, 32u << 20, "relayd read all 32 MiB of NOT_IN_ROOM bait");
	/* The final ERROR may be lost: relayd gives a closing connection 2 s
	 * to take it, and this client was busy sending (the totals say). */
	uint64_t errors = 0;
	bool slow = mem_read_to_close(c, 15000, NULL, "NOT_IN_ROOM", &errors);
	cr_log_info("NOT_IN_ROOM flood: %zu bytes sent, %" PRIu64
		    " replies read, SLOW_CONSUMER %s, "
		    "VmRSS %ld -> peak %ld KiB",
		    sent, errors, slow ? "seen" : "not seen", before, peak);
	rl_test_close(c);
	int st = rl_test_server_stop(&s, 0);
	cr_assert_eq(st, 0, "relayd exit status %d", st);
	cr_assert(s.out != NULL && strstr(s.out, "slow consumers dropped 1") != NULL,
		  "final totals on stdout: %s", s.out != NULL ? s.out : "(none)");
	rl_test_server_free(&s);
}

/* ---- 2. the hard limit judges what stays queued after a write ------------- */

static void mem_wait_state(pid_t pid, char want)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	for (int64_t deadline = rl_test_now_ms() + RL_TEST_REPLY_MS;;) {
		FILE *f = fopen(path, "re");
		cr_assert_not_null(f, "%s", path);
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		const char *p = strrchr(buf, ')');
		if (p != NULL && p[1] == ' ' && p[2] == want)
			return;
		cr_assert_lt(rl_test_now_ms(), deadline, "relayd never reached state %c", want);
		poll(NULL, 0, 1);
	}
}

enum { BURST_PUBS = 16, BURST_FRAMES = 16, BURST_DATA = 2048, BURST_ROUNDS = 16 };

/* Many publishers burst into a room while relayd is stalled (SIGSTOP: a
 * worker descheduled, as in production), so one loop turn fans out all
 * their frames at once: 16 x 32 KiB = 512 KiB per member, with a hard
 * limit of 256 KiB; 16 rounds, 8 MiB in all (more than the kernel buffers
 * for the member that never reads). Flushing only at the end of the turn judged the reader
 * on the whole burst before any write was tried; a member that keeps up
 * must get everything, a member that never reads must still be dropped. */
IT_TEST(memory, a_reader_that_keeps_up_survives_a_burst_a_non_reader_does_not)
{
	IT_NEED_PROCESS();
	struct rl_test_server s;
	IT_START(&s, "--workers", "1", "--no-presence", "--outbound-hard-limit", "256K",
		 "--slow-consumer-timeout", "0");
	struct rl_test_client *reader = it_client(&s, NULL), *idle = it_client(&s, NULL);
	struct rl_test_client *pub[BURST_PUBS];
	int big = 4 << 20;
	cr_assert_eq(setsockopt(rl_test_fd(reader), SOL_SOCKET, SO_RCVBUF, &big, sizeof(big)), 0);
	cr_assert_eq(rl_test_set_rcvbuf(idle, 128 * 1024), 0, "%s", rl_test_err());
	it_join(reader, "burst", 1);
	it_join(idle, "burst", 2);
	for (int i = 0; i < BURST_PUBS; i++) {
		pub[i] = it_client(&s, NULL);
		cr_assert_eq(
		    setsockopt(rl_test_fd(pub[i]), SOL_SOCKET, SO_RCVBUF, &big, sizeof(big)), 0);
		it_join(pub[i], "burst", 3 + i);
	}
	static uint8_t wire[BURST_FRAMES * (BURST_DATA + 64)];
	uint8_t payload[BURST_DATA + 16], data[BURST_DATA];
	uint32_t next[BURST_PUBS] = {0};
	memset(data, 'b', sizeof(data));
	for (int round = 0; round < BURST_ROUNDS; round++) {
		cr_assert_eq(rl_test_server_signal(&s, SIGSTOP), 0, "%s", rl_test_err());
		mem_wait_state(s.pid, 'T');
		for (int i = 0; i < BURST_PUBS; i++) {
			size_t off = 0;
			for (int k = 0; k < BURST_FRAMES; k++) {
				uint32_t seq = (uint32_t)(round * BURST_FRAMES + k);
				data[0] = (uint8_t)i;
				memcpy(data + 1, &seq, sizeof(seq));
				size_t n = mem_bin(payload, "burst", data, sizeof(data));
				cr_assert_eq(rl_test_frame_append(wire, sizeof(wire), &off,
								  RELAY_MSG_MESSAGE,
								  RELAY_FLAG_BINARY, payload, n),
					     0);
			}
			/* 32 KiB: fits the stalled server's receive buffer. */
			cr_assert_eq(rl_test_send_raw(pub[i], wire, off, RL_TEST_REPLY_MS), 0, "%s",
				     rl_test_err());
		}
		cr_assert_eq(rl_test_server_signal(&s, SIGCONT), 0, "%s", rl_test_err());
		for (int k = 0; k < BURST_PUBS * BURST_FRAMES; k++) {
			const struct rl_test_frame *f = rl_test_recv(reader, RL_TEST_REPLY_MS);
			cr_assert_not_null(f, "round %d, message %d: %s", round, k, rl_test_err());
			cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "round %d: the reader got %s",
				     round, rl_test_frame_str(f));
			struct relay_span room, from, d;
			cr_assert_eq(relay_bin_delivery_parse(f->payload, f->len, &room, &from, &d),
				     RELAY_ERR_NONE);
			cr_assert_eq(d.n, (size_t)BURST_DATA);
			uint32_t seq;
			memcpy(&seq, d.p + 1, sizeof(seq));
			cr_assert_lt(d.p[0], BURST_PUBS);
			cr_assert_eq(seq, next[d.p[0]], "publisher %u: message %u arrived as %u",
				     d.p[0], next[d.p[0]], seq);
			next[d.p[0]]++;
		}
		/* The publishers are members too (binary MESSAGE needs it): they
		 * read the others' frames, with room to spare (4 MiB buffers). */
		for (int i = 0; i < BURST_PUBS; i++)
			for (int k = 0; k < (BURST_PUBS - 1) * BURST_FRAMES; k++)
				cr_assert_not_null(rl_test_expect(pub[i], RELAY_MSG_MESSAGE,
								  RELAY_FLAG_BINARY, RL_TEST_REPLY_MS),
						   "round %d, publisher %d, frame %d: %s", round, i,
						   k, rl_test_err());
	}
	it_ping(reader);
	cr_assert(mem_read_to_close(idle, 10000, NULL, NULL, NULL),
		  "the member that never reads was not dropped as a slow consumer");
	for (int i = 0; i < BURST_PUBS; i++) {
		it_ping(pub[i]);
		rl_test_close(pub[i]);
	}
	rl_test_close(reader);
	rl_test_close(idle);
	it_stop(&s);
}

/* ---- 4. a frame dropped by the eviction is not counted as delivered ------- */

/* Frames one byte over the hard limit: every frame before the one that tips
 * the member over was written whole or is in progress (kept), so what the
 * member reads is exactly what was delivered; the frame that tipped it was
 * dropped with the queue and must not be counted. */
IT_TEST(memory, the_frame_that_tips_a_slow_consumer_is_not_counted_delivered)
{
	IT_NEED_PROCESS();
	enum { HARD = 8192 };
	struct rl_test_server s;
	IT_START(&s, "--workers", "1", "--no-presence", "--outbound-hard-limit", "8K",
		 "--slow-consumer-timeout", "0");
	struct rl_test_client *m = it_client(&s, NULL), *pub = it_client(&s, NULL);
	cr_assert_eq(rl_test_set_rcvbuf(m, 256 * 1024), 0, "%s", rl_test_err());
	it_join(m, "tip", 1);
	it_join(pub, "tip", 2);
	static uint8_t payload[HARD], data[HARD];
	memset(data, 't', sizeof(data));
	/* Calibration: how much a delivery adds to the publisher's payload. */
	size_t n = mem_bin(payload, "tip", data, 100);
	it_send(pub, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, payload, n);
	const struct rl_test_frame *f = it_expect(m, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY);
	size_t extra = RELAY_FRAME_HDR_BYTES + f->len - n; /* frame bytes beyond our payload */
	size_t want = HARD + 1 - extra - (n - 100);	   /* data bytes for HARD + 1 on the wire */
	n = mem_bin(payload, "tip", data, want);
	/* 2000 x 8 KiB = 16 MiB: far more than the member's socket takes. */
	for (int i = 0; i < 2000; i++)
		it_send(pub, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, payload, n);
	it_ping(pub);
	uint64_t got = 0;
	cr_assert(mem_read_to_close(m, 10000, &got, NULL, NULL), "no SLOW_CONSUMER");
	rl_test_close(m);
	rl_test_close(pub);
	int st = rl_test_server_stop(&s, 0);
	cr_assert_eq(st, 0, "relayd exit status %d", st);
	uint64_t out = mem_totals_messages_out(&s);
	cr_log_info("tip: %" PRIu64 " + 1 messages read, %" PRIu64 " counted delivered", got, out);
	cr_assert_eq(out, got + 1,
		     "relayd counted %" PRIu64 " messages delivered; the member read %" PRIu64, out,
		     got + 1);
	rl_test_server_free(&s);
}

/* ---- 3. the client memory budget ------------------------------------------ */

enum { Q_GROUPS = 4, Q_PER_GROUP = 16, Q_DATA = 960, Q_BATCH = 64, Q_STAGE_BATCHES = 6 };

/* Publishes <batches> x Q_BATCH messages of Q_DATA bytes (copied into each
 * member's queue: small frames) to "budget"; after each batch <reader>
 * reads it and checks the order (*<seq>: the next number). */
static void q_publish(struct rl_test_client *pub, struct rl_test_client *reader, int batches,
		      uint32_t *seq)
{
	uint8_t data[Q_DATA], payload[Q_DATA + 16];
	memset(data, 'q', sizeof(data));
	for (int b = 0; b < batches; b++) {
		uint32_t first = *seq;
		for (int i = 0; i < Q_BATCH; i++, (*seq)++) {
			memcpy(data, seq, sizeof(*seq));
			it_send(pub, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, payload,
				mem_bin(payload, "budget", data, sizeof(data)));
		}
		for (uint32_t want = first; want < *seq; want++) {
			const struct rl_test_frame *f = rl_test_recv(reader, RL_TEST_REPLY_MS);
			cr_assert_not_null(f, "healthy member, message %u: %s", want,
					   rl_test_err());
			struct relay_span room, from, d;
			cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "healthy member: %s",
				     rl_test_frame_str(f));
			cr_assert_eq(relay_bin_delivery_parse(f->payload, f->len, &room, &from, &d),
				     RELAY_ERR_NONE);
			uint32_t got;
			memcpy(&got, d.p, sizeof(got));
			cr_assert_eq(got, want, "healthy member: message %u arrived as %u", want,
				     got);
		}
	}
}

/* Whether member <c> (which has not read since it joined) was dropped:
 * reads its queue to a HEARTBEAT echo (still there) or to SLOW_CONSUMER
 * and the close. */
static bool q_evicted(struct rl_test_client *c)
{
	it_send(c, RELAY_MSG_HEARTBEAT, RELAY_FLAG_BINARY, "still-here", 10);
	for (int64_t deadline = rl_test_now_ms() + 10000;;) {
		int64_t left = deadline - rl_test_now_ms();
		cr_assert_gt(left, 0, "member neither echoed nor closed");
		const struct rl_test_frame *f = rl_test_recv(c, (int)left);
		cr_assert_not_null(f, "member: %s", rl_test_err());
		if (f->type == RELAY_MSG_HEARTBEAT)
			return false;
		if (f->type == RELAY_MSG_ERROR) {
			char code[64] = "";
			rl_test_json_str(f, "code", code, sizeof(code));
			cr_assert_str_eq(code, "SLOW_CONSUMER", "%s", rl_test_frame_str(f));
			cr_assert_eq(rl_test_expect_closed(c, false, RL_TEST_REPLY_MS), 0, "%s",
				     rl_test_err());
			return true;
		}
		cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "%s", rl_test_frame_str(f));
	}
}

/* Waits up to <ms> for relayd's VmRSS to be at most <kib>; returns the last
 * figure. */
static long q_rss_settles(const struct rl_test_server *s, long kib, int ms)
{
	long rss = mem_rss(s);
	for (int64_t deadline = rl_test_now_ms() + ms; rss > kib && rl_test_now_ms() < deadline;) {
		poll(NULL, 0, 50);
		rss = mem_rss(s);
	}
	return rss;
}

/* 64 members that never read join a room in four groups of 16, 384 KiB of
 * messages apart, so the groups' queues differ by that much; a publisher
 * and a member that reads share the room. With a 32 MiB budget (and a hard
 * limit far above it) the first group's queues must go first, then the
 * second's; the reader keeps everything in order; RSS stays near the
 * budget and comes back down afterwards. */
IT_TEST(memory, over_the_budget_the_largest_queues_are_dropped_first)
{
	IT_NEED_PROCESS();
	struct rl_test_server s;
	char admin[160];
	mem_start(&s,
		  (const char *const[]){"--workers", "1", "--no-presence", "--max-client-memory",
					"32M", "--outbound-hard-limit", "64M",
					"--slow-consumer-timeout", "0", NULL},
		  admin, sizeof(admin));
	cr_assert_eq(mem_metric(admin, "relay_client_memory_budget_bytes"), 32.0 * 1024 * 1024);
	struct rl_test_client *reader = it_client(&s, NULL), *pub = it_client(&s, NULL);
	struct rl_test_client *idle[Q_GROUPS][Q_PER_GROUP];
	it_join(reader, "budget", -1);
	it_join(pub, "budget", -1);
	long rss0 = mem_rss(&s), peak = rss0;
	uint32_t seq = 0;
	for (int g = 0; g < Q_GROUPS; g++) {
		for (int i = 0; i < Q_PER_GROUP; i++) {
			idle[g][i] = it_client(&s, NULL);
			cr_assert_eq(rl_test_set_rcvbuf(idle[g][i], 128 * 1024), 0, "%s",
				     rl_test_err());
			it_join(idle[g][i], "budget", -1);
		}
		if (g + 1 < Q_GROUPS)
			q_publish(pub, reader, Q_STAGE_BATCHES, &seq);
		long rss = mem_rss(&s);
		peak = rss > peak ? rss : peak;
	}
	cr_assert_eq(mem_metric(admin, "relay_client_memory_evictions_total"), 0.0,
		     "dropped before the budget was reached");
	/* Everybody gets the same from here on: publish until a group and a
	 * bit of the next one went. */
	double evicted = 0, acc_peak = 0;
	for (int b = 0; b < 200 && evicted < Q_PER_GROUP + 4; b++) {
		q_publish(pub, reader, 1, &seq);
		long rss = mem_rss(&s);
		peak = rss > peak ? rss : peak;
		evicted = mem_metric(admin, "relay_client_memory_evictions_total");
		double acc = mem_metric(admin, "relay_client_memory_bytes");
		acc_peak = acc > acc_peak ? acc : acc_peak;
	}
	/* The last batch may have left relayd over the budget: let it finish
	 * dropping before counting. */
	double total = mem_metric(admin, "relay_client_memory_bytes");
	for (int64_t deadline = rl_test_now_ms() + RL_TEST_REPLY_MS;
	     total > 32.0 * 1024 * 1024 && rl_test_now_ms() < deadline; poll(NULL, 0, 20))
		total = mem_metric(admin, "relay_client_memory_bytes");
	evicted = mem_metric(admin, "relay_client_memory_evictions_total");
	int e[Q_GROUPS] = {0};
	for (int g = 0; g < Q_GROUPS; g++)
		for (int i = 0; i < Q_PER_GROUP; i++) {
			e[g] += q_evicted(idle[g][i]);
			rl_test_close(idle[g][i]);
		}
	it_ping(reader);
	it_ping(pub);
	long after = q_rss_settles(&s, rss0 + 1024, 3000);
	cr_log_info(
	    "budget 32 MiB, 64 idle members: dropped per group (largest queues first) "
	    "%d %d %d %d; accounted peak %.0f, at the end %.0f bytes; VmRSS %ld KiB before, "
	    "peak %ld, after %ld",
	    e[0], e[1], e[2], e[3], acc_peak, total, rss0, peak, after);
	cr_assert_leq(acc_peak, (32.0 + 8) * 1024 * 1024, "accounted %.0f bytes (budget 32 MiB)",
		      acc_peak);
	cr_assert_geq(evicted, Q_PER_GROUP + 4, "only %.0f members dropped", evicted);
	cr_assert_eq(e[0] + e[1] + e[2] + e[3], (int)evicted);
	for (int g = 1; g < Q_GROUPS; g++)
		cr_assert(e[g] == 0 || e[g - 1] == Q_PER_GROUP,
			  "group %d (smaller queues) lost %d members while group %d kept %d", g,
			  e[g], g - 1, Q_PER_GROUP - e[g - 1]);
	if (mem_rss_native()) {
		cr_assert_leq(peak - rss0, 32 * 1024 + 24 * 1024,
			      "VmRSS grew by %ld KiB (budget 32 MiB + 24 MiB slack)", peak - rss0);
		cr_assert_leq(after - rss0, 8 * 1024,
			      "VmRSS after the storm %ld KiB above the start", after - rss0);
	}
	rl_test_close(reader);
	rl_test_close(pub);
	it_stop(&s);
}

enum { P_CONNS = 300, P_FRAME = 4 << 20 };

/* 300 connections each start a 4 MiB frame and keep sending it as fast as
 * relayd reads (1.2 GiB if it buffered them all). Over the 32 MiB budget
 * relayd stops reading the ones holding large partial frames: they stay
 * connected (nothing to say to them yet; the frame timeout still applies)
 * but their buffers stop growing, RSS stays bounded, and two clients that
 * send small frames keep talking. Closing the 300 gives the memory back. */
IT_TEST(memory, over_the_budget_large_partial_frames_stop_being_read)
{
	IT_NEED_PROCESS();
	struct rl_test_server s;
	char admin[160];
	mem_start(&s,
		  (const char *const[]){"--workers", "2", "--max-frame-bytes", "4M",
					"--max-client-memory", "32M", "--frame-timeout", "60",
					"--idle-timeout", "120", NULL},
		  admin, sizeof(admin));
	struct rl_test_client *a = it_client(&s, NULL), *b = it_client(&s, NULL);
	it_join(a, "calm", 1);
	it_join(b, "calm", 2);
	it_presence(a, 1);
	long rss0 = mem_rss(&s), peak = rss0;
	static struct rl_test_client *p[P_CONNS];
	static uint8_t junk[65536];
	memset(junk, 'x', sizeof(junk));
	relay_frame_put_header(junk, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY,
			       P_FRAME - RELAY_FRAME_HDR_BYTES);
	for (int i = 0; i < P_CONNS; i++) {
		p[i] = it_connect(&s);
		cr_assert_eq(rl_test_send_raw(p[i], junk, 4096, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
	}
	uint64_t sent = 0;
	int64_t worst_ms = 0;
	for (int64_t end = rl_test_now_ms() + 4000; rl_test_now_ms() < end;) {
		for (int i = 0; i < P_CONNS; i++) {
			ssize_t n =
			    send(rl_test_fd(p[i]), junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL);
			cr_assert(n > 0 || errno == EAGAIN, "partial sender %d: %s", i,
				  strerror(errno));
			sent += n > 0 ? (uint64_t)n : 0;
		}
		long rss = mem_rss(&s);
		peak = rss > peak ? rss : peak;
		if (mem_rss_native())
			cr_assert_leq(peak - rss0, 32 * 1024 + 24 * 1024,
				      "VmRSS grew by %ld KiB with %" PRIu64 " partial bytes sent",
				      peak - rss0, sent);
		/* The small talkers are not held up. */
		int64_t t0 = rl_test_now_ms();
		it_send(a, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, "\004calmhi", 7);
		it_expect(b, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY);
		it_ping(b);
		worst_ms = rl_test_now_ms() - t0 > worst_ms ? rl_test_now_ms() - t0 : worst_ms;
		poll(NULL, 0, 20);
	}
	double held = mem_metric(admin, "relay_client_memory_read_holds_total");
	double tails1 = mem_metric(admin, "relay_partial_frame_bytes");
	for (int k = 0; k < 10; k++) /* keep pushing: nothing more is taken */
		for (int i = 0; i < P_CONNS; i++)
			sent += (uint64_t)(send(rl_test_fd(p[i]), junk, sizeof(junk),
						MSG_DONTWAIT | MSG_NOSIGNAL) > 0);
	poll(NULL, 0, 300);
	double tails2 = mem_metric(admin, "relay_partial_frame_bytes");
	for (int i = 0; i < P_CONNS; i++) { /* still connected, and told nothing */
		char c;
		ssize_t n = recv(rl_test_fd(p[i]), &c, 1, MSG_DONTWAIT | MSG_PEEK);
		cr_assert(n == -1 && errno == EAGAIN, "partial sender %d: %zd (%s)", i, n,
			  n == -1 ? strerror(errno) : "data or EOF");
	}
	cr_assert_eq(mem_metric(admin, "relay_connections"), P_CONNS + 2.0);
	/* Closed with a reset: a plain close would queue the FIN behind the
	 * rest of the frame, which relayd is not reading (such a peer is seen
	 * when --frame-timeout runs out). */
	for (int i = 0; i < P_CONNS; i++) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(rl_test_fd(p[i]), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		rl_test_close(p[i]);
	}
	for (int64_t deadline = rl_test_now_ms() + 10000;;) {
		if (mem_metric(admin, "relay_connections") == 2.0 &&
		    mem_metric(admin, "relay_partial_frame_bytes") == 0.0)
			break;
		cr_assert_lt(
		    rl_test_now_ms(), deadline,
		    "the closed partial senders linger: %.0f connections, %.0f partial bytes",
		    mem_metric(admin, "relay_connections"),
		    mem_metric(admin, "relay_partial_frame_bytes"));
		poll(NULL, 0, 50);
	}
	long after = q_rss_settles(&s, rss0 + 1024, 3000);
	cr_log_info("300 partial 4 MiB frames, budget 32 MiB: %" PRIu64 " bytes sent, %.0f holds, "
		    "partial-frame bytes %.0f then %.0f; small talk worst %" PRId64
		    " ms; VmRSS %ld "
		    "KiB before, peak %ld, after closing %ld",
		    sent, held, tails1, tails2, worst_ms, rss0, peak, after);
	cr_assert_gt(held, 0.0);
	cr_assert_leq(tails2, tails1 + 1024 * 1024, "partial frames kept growing: %.0f -> %.0f",
		      tails1, tails2);
	cr_assert_lt(worst_ms, 2000, "a small-frame client waited %" PRId64 " ms", worst_ms);
	cr_assert_leq(tails1, (32.0 + 16) * 1024 * 1024,
		      "%.0f bytes of partial frames (budget 32 MiB)", tails1);
	if (mem_rss_native())
		cr_assert_leq(after - rss0, 8 * 1024, "VmRSS after closing %ld KiB above the start",
			      after - rss0);
	it_ping(a);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

/* --max-client-memory takes a size or a share of physical memory (the
 * default, 25%, in the spirit of Redis's maxmemory-clients: on unless
 * turned off with 0); /metrics shows the budget in force. */
IT_TEST(memory, max_client_memory_is_a_size_or_a_share_of_physical_memory)
{
	IT_NEED_PROCESS();
	char out[8192], err[1024];
	const char *bad[] = {"--max-client-memory", "101%", NULL};
	cr_assert_eq(rl_test_run_relayd(bad, NULL, 5000, out, sizeof(out), err, sizeof(err)), 1);
	cr_assert(strstr(err, "max-client-memory") != NULL, "%s", err);
	const char *help[] = {"--help", NULL};
	cr_assert_eq(rl_test_run_relayd(help, NULL, 5000, out, sizeof(out), err, sizeof(err)), 0);
	cr_assert(strstr(out, "--max-client-memory BYTES|N%") != NULL &&
		      strstr(out, "(default: 25%)") != NULL,
		  "%s", out);

	struct rl_test_server s;
	char admin[160];
	mem_start(&s, (const char *const[]){"--workers", "1", NULL}, admin, sizeof(admin));
	double quarter = (double)((uint64_t)sysconf(_SC_PHYS_PAGES) *
				  (uint64_t)sysconf(_SC_PAGESIZE) / 100 * 25);
	cr_assert_eq(mem_metric(admin, "relay_client_memory_budget_bytes"), quarter);
	it_stop(&s);
	mem_start(&s, (const char *const[]){"--workers", "1", "--max-client-memory", "0", NULL},
		  admin, sizeof(admin));
	cr_assert_eq(mem_metric(admin, "relay_client_memory_budget_bytes"), 0.0);
	it_stop(&s);
}

enum { R_SENDERS = 4, R_FRAME = (4 << 20) - 4096, R_FIRST = 3 << 20 }; /* broadcast fits 4M */

/* Sends what is left of <frame> (R_FRAME bytes) on each sender, up to
 * <upto> bytes each, without blocking, for at most <ms>; <off> holds each
 * sender's progress. Returns whether every sender reached <upto>. */
static bool r_push(struct rl_test_client **c, size_t *off, const uint8_t *frame, size_t upto,
		   int ms)
{
	for (int64_t end = rl_test_now_ms() + ms;;) {
		bool done = true;
		for (int i = 0; i < R_SENDERS; i++) {
			if (off[i] >= upto)
				continue;
			done = false;
			ssize_t n = send(rl_test_fd(c[i]), frame + off[i], upto - off[i],
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			cr_assert(n > 0 || errno == EAGAIN, "sender %d: %s", i, strerror(errno));
			off[i] += n > 0 ? (size_t)n : 0;
		}
		if (done || rl_test_now_ms() >= end)
			return done;
		poll(NULL, 0, 1);
	}
}

/* Held connections are read again once the total is back under the budget
 * (here: the budget raised by a reload), and their frames complete. */
IT_TEST(memory, held_partial_frames_are_read_again_once_under_the_budget)
{
	IT_NEED_PROCESS();
	char path[] = "/tmp/relayd-memory-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	static const char small[] = "max-client-memory = 8M\n",
			  large[] = "max-client-memory = 1G\n";
	cr_assert_eq(write(fd, small, sizeof(small) - 1), (ssize_t)sizeof(small) - 1);
	close(fd);
	struct rl_test_server s;
	char admin[160];
	mem_start(&s,
		  (const char *const[]){"--config", path, "--workers", "1", "--no-presence",
					"--max-frame-bytes", "4M", "--outbound-hard-limit", "64M",
					NULL},
		  admin, sizeof(admin));
	struct rl_test_client *reader = it_client(&s, NULL), *snd[R_SENDERS];
	it_join(reader, "big", 1);
	static uint8_t frame[R_FRAME];
	uint8_t head[4] = {3, 'b', 'i', 'g'};
	memset(frame, 'h', sizeof(frame));
	relay_frame_put_header(frame, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY,
			       R_FRAME - RELAY_FRAME_HDR_BYTES);
	memcpy(frame + RELAY_FRAME_HDR_BYTES, head, sizeof(head));
	for (int i = 0; i < R_SENDERS; i++) {
		snd[i] = it_client(&s, NULL);
		it_join(snd[i], "big", 2 + i);
	}
	size_t off[R_SENDERS] = {0};
	r_push(snd, off, frame, R_FIRST, 3000);
	double holds = 0;
	for (int64_t deadline = rl_test_now_ms() + RL_TEST_REPLY_MS; holds == 0; poll(NULL, 0, 20)) {
		holds = mem_metric(admin, "relay_client_memory_read_holds_total");
		cr_assert_lt(rl_test_now_ms(), deadline, "nothing held over an 8 MiB budget");
	}
	double tails = mem_metric(admin, "relay_partial_frame_bytes");
	/* Meanwhile a client with plenty to say (1 MiB of ERROR frames, which
	 * relayd counts and ignores) is read over several turns, its rest
	 * deferred each time: the held ones stay held, and are not lost. */
	struct rl_test_client *chatty = it_client(&s, NULL);
	static uint8_t noise[1 << 20], junk[1000];
	size_t nn = 0;
	while (rl_test_frame_append(noise, sizeof(noise), &nn, RELAY_MSG_ERROR, RELAY_FLAG_BINARY,
				    junk, sizeof(junk)) == 0)
		;
	cr_assert_eq(rl_test_send_raw(chatty, noise, nn, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
	it_ping(chatty);
	cr_assert_eq(mem_metric(admin, "relay_partial_frame_bytes"), tails, "held frames grew");

	fd = open(path, O_WRONLY | O_TRUNC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, large, sizeof(large) - 1), (ssize_t)sizeof(large) - 1);
	close(fd);
	cr_assert_eq(rl_test_server_signal(&s, SIGHUP), 0, "%s", rl_test_err());
	cr_assert(r_push(snd, off, frame, R_FRAME, 10000), "the held senders were not read again");
	for (int i = 0; i < R_SENDERS; i++) {
		const struct rl_test_frame *f = rl_test_recv(reader, 10000);
		cr_assert_not_null(f, "message %d: %s", i, rl_test_err());
		cr_assert_eq(f->type, RELAY_MSG_MESSAGE, "%s", rl_test_frame_str(f));
		cr_assert_gt(f->len, (uint32_t)(R_FRAME - 64), "%s", rl_test_frame_str(f));
	}
	cr_log_info("reload: %.0f holds over 8 MiB (%.0f partial bytes), all 4 frames read after",
		    holds, tails);
	it_ping(reader);
	rl_test_close(chatty);
	for (int i = 0; i < R_SENDERS; i++)
		rl_test_close(snd[i]);
	rl_test_close(reader);
	it_stop(&s);
	unlink(path);
}
