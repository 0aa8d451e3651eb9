/* codec.c -- micro-benchmark of the protocol library on one core: frames/s
 * through the incremental decoder, and MB/s through relay_json_parse for a few
 * JSON shapes. Prints the median (and min-max) of several runs.
 *
 *   codec-bench [--runs N] [--ms M] [--only SUBSTRING]
 *   (defaults: 7 runs of ~300 ms of CPU time each; --only keeps the
 *   benchmarks whose name contains SUBSTRING)
 *
 * Threading: single-threaded.
 */
#include "relay/protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"


/* Defeats dead-code elimination of the measured work. */
static volatile size_t bench_sink;

/* ---- inputs ------------------------------------------------------------ */

struct buf {
	uint8_t *p;
	size_t n, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* A MESSAGE JSON payload of exactly <size> bytes: {"room":"physics","content":"xxx"} */
static void chat_payload(struct buf *b, size_t size)
{
	static const char head[] = "{\"room\":\"physics\",\"content\":\"";
	buf_str(b, head);
	size_t fill = size - (sizeof head - 1) - 2;
	for (size_t i = 0; i < fill; i++)
		buf_add(b, &"hello world, this is chat "[i % 26], 1);
	buf_str(b, "\"}");
}

/* A realistic chat message object of about <size> bytes. */
static void shape_chat(struct buf *b, size_t size)
{
	buf_str(b, "{\"room\":\"physics\",\"content\":{\"type\":\"chat\",\"user\":\"alice\","
		   "\"sent\":1732147200123,\"reply\":null,\"tags\":[\"a\",\"b\"],\"text\":\"");
	while (b->n + 40 < size)
		buf_str(b, "The quick brown fox jumps over the dog. ");
	buf_str(b, "\",\"ok\":true}}");
}

static void shape_numbers(struct buf *b, size_t size)
{
	static const char *const nums[] = {"0", "-1", "3.14159", "1e10", "-2.5E-3",
					   "42", "1732147200123", "0.001"};
	buf_str(b, "[");
	for (unsigned i = 0; b->n + 16 < size; i++) {
		if (i)
			buf_str(b, ",");
		buf_str(b, nums[i % 8]);
	}
	buf_str(b, "]");
}

static void shape_strings(struct buf *b, size_t size)
{
	static const char *const strs[] = {
		"\"plain ascii words here\"", "\"caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80\"",
		"\"esc \\\"q\\\" \\\\ \\n\\t \\u00e9\"", "\"\\ud83d\\ude00 pair\"",
	};
	buf_str(b, "[");
	for (unsigned i = 0; b->n + 48 < size; i++) {
		if (i)
			buf_str(b, ",");
		buf_str(b, strs[i % 4]);
	}
	buf_str(b, "]");
}

/* Nests {"a":[{"a":[ ... 1 ... ]}]} 62 levels deep, side by side in an
 * array: depth 63 in all. */
static void shape_nested(struct buf *b, size_t size)
{
	buf_str(b, "[");
	for (unsigned i = 0; b->n + 200 < size; i++) {
		if (i)
			buf_str(b, ",");
		for (int d = 0; d < 62; d++)
			buf_str(b, d % 2 ? "[" : "{\"a\":");
		buf_str(b, "1");
		for (int d = 61; d >= 0; d--)
			buf_str(b, d % 2 ? "]" : "}");
	}
	buf_str(b, "]");
}

/* ---- measurements ------------------------------------------------------ */

/* Runs <fn> in batches until <ms> milliseconds passed; returns units/s. */
typedef size_t (*bench_fn)(void *arg); /* returns units of work done */

static double measure(bench_fn fn, void *arg, double ms)
{
	double t0 = bench_cpu_s(), t;
	size_t units = 0;
	do {
		for (int i = 0; i < 16; i++)
			units += fn(arg);
		t = bench_cpu_s();
	} while ((t - t0) * 1000 < ms);
	return (double)units / (t - t0);
}

struct stream_arg {
	struct buf stream;  /* many frames back to back */
	size_t read_size;   /* fed in chunks of this size, like socket reads */
	bool validate;      /* also relay_json_parse + extract room/content */
};

static size_t bench_decode(void *a)
{
	struct stream_arg *s = a;
	struct relay_decoder d;
	struct relay_frame f;
	size_t frames = 0, sum = 0;
	uint8_t room[64];

	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	for (size_t off = 0; off < s->stream.n; off += s->read_size) {
		size_t n = s->stream.n - off < s->read_size ? s->stream.n - off : s->read_size;
		relay_decoder_feed(&d, s->stream.p + off, n);
		while (relay_decoder_next(&d, &f) == RELAY_DECODE_FRAME) {
			frames++;
			sum += f.len;
			if (s->validate) {
				struct relay_json_field fl[2] = {
					{.key = "room", .buf = room, .cap = sizeof room},
					{.key = "content"},
				};
				if (relay_json_parse(f.payload, f.len, fl, 2, NULL) != 0)
					abort();
				sum += fl[1].raw.n;
			}
		}
	}
	relay_decoder_free(&d);
	bench_sink = sum;
	return frames;
}

struct json_arg {
	struct buf doc;
};

static size_t bench_json(void *a)
{
	struct json_arg *j = a;
	struct relay_json_result res;
	if (relay_json_parse(j->doc.p, j->doc.n, NULL, 0, &res) != 0) {
		fprintf(stderr, "codec-bench: shape invalid: %s at %zu\n", res.err_msg, res.err_off);
		abort();
	}
	bench_sink = res.top;
	return j->doc.n;
}

/* What relayd writes per JSON delivery: the envelope around verbatim content. */
struct jw_arg {
	struct buf content;
	uint8_t out[4096];
};

static size_t bench_jw(void *a)
{
	struct jw_arg *j = a;
	struct relay_jw w;
	size_t total = 0;

	for (int i = 0; i < 64; i++) {
		relay_jw_init(&w, j->out, sizeof j->out);
		relay_jw_obj_begin(&w);
		relay_jw_key(&w, "room");
		relay_jw_str(&w, "physics", 7);
		relay_jw_key(&w, "from");
		relay_jw_str(&w, "conn-17", 7);
		relay_jw_key(&w, "userId");
		relay_jw_str(&w, "alice", 5);
		relay_jw_key(&w, "content");
		relay_jw_raw(&w, j->content.p, j->content.n);
		relay_jw_key(&w, "timestamp");
		relay_jw_u64(&w, 1732147200123ull + (uint64_t)i);
		relay_jw_obj_end(&w);
		total += w.len;
	}
	bench_sink = total;
	return 64;
}

struct result {
	const char *name;
	const char *unit;
	double v[BENCH_MAX_RUNS];
};

static void report(struct result *r, int runs, double scale)
{
	qsort(r->v, (size_t)runs, sizeof r->v[0], bench_cmp_double);
	printf("| %-44s | %10.2f | %10.2f | %10.2f | %-9s |\n", r->name, r->v[runs / 2] / scale,
	       r->v[0] / scale, r->v[runs - 1] / scale, r->unit);
}

int main(int argc, char **argv)
{
	int runs = 7;
	double ms = 300;
	const char *only = "";

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc)
			ms = atof(argv[++i]);
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: codec-bench [--runs N] [--ms M] [--only SUBSTRING]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > BENCH_MAX_RUNS) {
		fprintf(stderr, "codec-bench: --runs must be 1-%d\n", BENCH_MAX_RUNS);
		return 2;
	}

	/* decoder streams: 4 MiB of back-to-back MESSAGE frames, 64 KiB reads */
	static const size_t payload_sizes[] = {64, 1024};
	struct stream_arg streams[4];
	for (int k = 0; k < 4; k++) {
		struct buf one = {0};
		struct stream_arg *s = &streams[k];
		memset(s, 0, sizeof *s);
		chat_payload(&one, payload_sizes[k % 2]);
		uint8_t hdr[RELAY_FRAME_HDR_BYTES];
		relay_frame_put_header(hdr, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, (uint32_t)one.n);
		while (s->stream.n < (4u << 20)) {
			buf_add(&s->stream, hdr, sizeof hdr);
			buf_add(&s->stream, one.p, one.n);
		}
		s->read_size = 65536;
		s->validate = k >= 2;
		free(one.p);
	}

	struct json_arg shapes[8] = {0};
	const char *shape_names[8] = {
		"JSON chat message object, 1 KiB", "JSON number-heavy array, 1 KiB",
		"JSON string-heavy array (UTF-8, escapes), 1 KiB", "JSON nested to depth 63, 1 KiB",
		"JSON chat message object, 64 KiB", "JSON number-heavy array, 64 KiB",
		"JSON string-heavy array (UTF-8, escapes), 64 KiB", "JSON nested to depth 63, 64 KiB",
	};
	void (*makers[4])(struct buf *, size_t) = {shape_chat, shape_numbers, shape_strings, shape_nested};
	for (int k = 0; k < 8; k++)
		makers[k % 4](&shapes[k].doc, k < 4 ? 1024 : 65536);

	struct jw_arg jwa[2];
	memset(jwa, 0, sizeof jwa);
	chat_payload(&jwa[0].content, 64);
	chat_payload(&jwa[1].content, 1024);
	struct result jwr[2] = {
		{.name = "write JSON delivery, 64 B content", .unit = "M frames/s"},
		{.name = "write JSON delivery, 1 KiB content", .unit = "M frames/s"},
	};

	struct result dec[4] = {
		{.name = "decode 64 B MESSAGE frames", .unit = "M frames/s"},
		{.name = "decode 1 KiB MESSAGE frames", .unit = "M frames/s"},
		{.name = "decode+validate+extract 64 B MESSAGE", .unit = "M frames/s"},
		{.name = "decode+validate+extract 1 KiB MESSAGE", .unit = "M frames/s"},
	};
	struct result js[8];
	for (int k = 0; k < 8; k++)
		js[k] = (struct result){.name = shape_names[k], .unit = "MB/s"};

	for (int r = 0; r < runs; r++) {
		for (int k = 0; k < 4; k++)
			if (strstr(dec[k].name, only))
				dec[k].v[r] = measure(bench_decode, &streams[k], ms);
		for (int k = 0; k < 8; k++)
			if (strstr(js[k].name, only))
				js[k].v[r] = measure(bench_json, &shapes[k], ms);
		for (int k = 0; k < 2; k++)
			if (strstr(jwr[k].name, only))
				jwr[k].v[r] = measure(bench_jw, &jwa[k], ms);
	}

	printf("%d runs of %.0f ms each; median (min - max)\n\n", runs, ms);
	printf("| %-44s | %10s | %10s | %10s | %-9s |\n", "benchmark", "median", "min", "max", "unit");
	printf("|%s|%s|%s|%s|%s|\n", "----------------------------------------------",
	       "------------", "------------", "------------", "-----------");
	for (int k = 0; k < 4; k++)
		if (strstr(dec[k].name, only))
			report(&dec[k], runs, 1e6);
	for (int k = 0; k < 2; k++)
		if (strstr(jwr[k].name, only))
			report(&jwr[k], runs, 1e6);
	for (int k = 0; k < 8; k++) {
		if (!strstr(js[k].name, only))
			continue;
		char name[96];
		snprintf(name, sizeof name, "%s (%zu B)", js[k].name, shapes[k].doc.n);
		js[k].name = name;
		report(&js[k], runs, 1e6);
	}

	for (int k = 0; k < 4; k++)
		free(streams[k].stream.p);
	for (int k = 0; k < 8; k++)
		free(shapes[k].doc.p);
	for (int k = 0; k < 2; k++)
		free(jwa[k].content.p);
	return 0;
}
