/* outq.c -- micro-benchmark of the fan-out append and flush path alone
 * (src/relayd/net/outq.c), without sockets: one worker's turn of fan-out,
 * K messages copied into M members' output queues, then one flush per
 * member into a sink that copies the bytes out as the kernel's send would
 * (so reading them back costs what it costs after the appends). Reports
 * thread CPU nanoseconds per delivery (append + flush), median of runs.
 * Between turns it writes --evict KiB of other memory (default 8 MiB), as
 * the kernel's socket buffers and the other processes do to the server's
 * caches: without that, every chunk stays in cache and the per-chunk and
 * per-line misses the real server pays do not show.
 *
 *   outq-bench [--runs N] [--ms M] [--frame BYTES] [--evict KIB] [--trim MIB]
 *   --trim sets glibc's M_TRIM_THRESHOLD in MiB (0: glibc's default, 128
 *   KiB). With the default, the chunks a turn frees beyond the pool (1024
 *   chunks) go back to the kernel at once and come back as page faults in
 *   the next turn: the broadcast row shows what that costs here. relayd
 *   pays it less (its heap has live blocks near the top; bench/README.md).
 *   rows: the turn shapes relayd sees per worker (2 workers) in
 *   bench/compare's fan-out, from its sendmsg count per delivery: 1->100
 *   (50 members, ~330 frames each a turn), 1->1000 (500 members, ~50 each),
 *   and a broadcast turn (2000 members, 1 frame each).
 *
 * Threading: single-threaded. The queue never looks inside the connection
 * it passes to writev, so the "connection" here is the sink.
 */
#include "net/outq.h"

#include <malloc.h>
#include <relay/protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define SINK_BYTES (256 * 1024)

struct rl_conn {
	uint8_t *sink;
	size_t at;
};

static ssize_t sink_writev(struct rl_conn *c, const struct iovec *iov, int iovcnt)
{
	size_t n = 0;
	for (int i = 0; i < iovcnt; i++) {
		size_t l = iov[i].iov_len;
		const uint8_t *p = iov[i].iov_base;
		while (l) { /* into a ring, like skbs: bounded, so it stays in cache */
			size_t take = SINK_BYTES - c->at < l ? SINK_BYTES - c->at : l;
			memcpy(c->sink + c->at, p, take);
			c->at = (c->at + take) % SINK_BYTES;
			p += take;
			l -= take;
			n += take;
		}
	}
	return (ssize_t)n;
}

static uint8_t *evict_buf;
static size_t evict_bytes = 8u << 20;

/* One turn: <k> messages to each of <m> queues, then a flush of each; then
 * the rest of the machine's turn (eviction). */
static void turn(struct rl_outq *q, unsigned m, unsigned k, struct rl_segpool *p,
		 struct rl_msg *msg, struct rl_conn *c)
{
	for (size_t o = 0; o < evict_bytes; o += 64)
		evict_buf[o]++;
	for (unsigned i = 0; i < k; i++)
		for (unsigned j = 0; j < m; j++)
			if (rl_outq_push_msg(&q[j], p, msg))
				abort();
	for (unsigned j = 0; j < m; j++) {
		size_t sent = 0;
		if (rl_outq_flush(&q[j], p, sink_writev, c, 64, &sent) != 0)
			abort();
	}
}

/* ns per delivery over one run of about <ms> of CPU time. */
static double run(unsigned m, unsigned k, size_t frame, double ms)
{
	struct rl_outq *q = calloc(m, sizeof(*q));
	struct rl_segpool p = {0};
	struct rl_conn c = {.sink = malloc(SINK_BYTES)};
	struct rl_msg *msg = rl_msg_new(frame, 0);
	if (!q || !c.sink || !msg)
		abort();
	memset(msg->data, 'x', frame);
	relay_frame_put_header(msg->data, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON,
			       (uint32_t)(frame - RELAY_FRAME_HDR_BYTES));
	turn(q, m, k, &p, msg, &c); /* warm the pool */
	double t0 = bench_cpu_s() * 1e9, t, evict = 0;
	uint64_t deliveries = 0;
	do {
		turn(q, m, k, &p, msg, &c);
		deliveries += (uint64_t)m * k;
	} while ((t = bench_cpu_s() * 1e9) - t0 < ms * 1e6);
	/* The eviction's own cost, measured alone, is not the queue's. */
	double e0 = bench_cpu_s() * 1e9;
	for (uint64_t n = deliveries / ((uint64_t)m * k); n; n--)
		for (size_t o = 0; o < evict_bytes; o += 64)
			evict_buf[o]++;
	evict = bench_cpu_s() * 1e9 - e0;
	for (unsigned j = 0; j < m; j++)
		rl_outq_clear(&q[j], &p);
	rl_segpool_fini(&p);
	rl_msg_put(msg);
	free(c.sink);
	free(q);
	return (t - t0 - evict) / (double)deliveries;
}

int main(int argc, char **argv)
{
	unsigned runs = 7;
	double ms = 300;
	size_t frame = 150; /* a 64-byte content's JSON delivery frame */
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--runs"))
			runs = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--ms"))
			ms = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--frame"))
			frame = (size_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--evict"))
			evict_bytes = (size_t)atoi(argv[i + 1]) * 1024u;
		else if (!strcmp(argv[i], "--trim") && atoi(argv[i + 1]) > 0)
			mallopt(M_TRIM_THRESHOLD, atoi(argv[i + 1]) << 20);
	}
	if (!(evict_buf = calloc(1, evict_bytes + 64)))
		return 1;
	if (runs < 1 || runs > BENCH_MAX_RUNS || frame < RELAY_FRAME_HDR_BYTES || frame > RL_COPY_MAX) {
		fputs("usage: outq-bench [--runs 1-31] [--ms M] [--frame 7-1024] [--evict KIB]\n",
		      stderr);
		return 2;
	}
	static const struct {
		const char *name;
		unsigned members, msgs;
	} rows[] = {
	    {"fan-out 1->100 (50 members x 330 frames a turn)", 50, 330},
	    {"fan-out 1->1000 (500 members x 50 frames a turn)", 500, 50},
	    {"broadcast (2000 members x 1 frame a turn)", 2000, 1},
	};
	printf("%-50s %8s %17s\n", "benchmark", "median", "min - max (ns per delivery)");
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		double v[BENCH_MAX_RUNS];
		for (unsigned i = 0; i < runs; i++)
			v[i] = run(rows[r].members, rows[r].msgs, frame, ms);
		qsort(v, runs, sizeof(v[0]), bench_cmp_double);
		printf("%-50s %8.2f %8.2f - %.2f\n", rows[r].name, v[runs / 2], v[0], v[runs - 1]);
	}
	return 0;
}
