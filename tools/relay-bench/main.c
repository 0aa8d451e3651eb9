/* main.c -- relay-bench: load generator and checker for relayd, nats-server
 * and redis-server. Parses options (one table drives getopt_long and --help),
 * runs one workload, prints a table or one JSON object, and exits 0 when the
 * run was clean, 1 when a check failed (loss, errors, failed case), 2 when it
 * could not run.
 * Threading: main thread; workloads start their own threads.
 */
#include "bench.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_kind { OK_FLAG = 0, OK_UINT, OK_INT, OK_DOUBLE, OK_STR, OK_PROTO, OK_NKINDS };

struct opt_def {
	const char *name;
	enum opt_kind kind;
	size_t off;
	const char *help;
};

#define OFF(f) offsetof(struct rb_opts, f)

static const struct opt_def opt_table[] = {
	{ "proto", OK_PROTO, OFF(proto), "relay | nats | redis (default relay)" },
	{ "binary", OK_FLAG, OFF(binary), "relay: binary framing instead of JSON" },
	{ "token", OK_STR, OFF(token), "relay: access token every connection sends in HELLO" },
	{ "token-file", OK_STR, OFF(token_file), "relay: read --token from FILE's first line" },
	{ "host", OK_STR, OFF(host), "server address (default 127.0.0.1)" },
	{ "port", OK_INT, OFF(port), "server port (required)" },
	{ "threads", OK_INT, OFF(threads), "client threads (default 1)" },
	{ "rooms", OK_UINT, OFF(rooms), "rooms / subjects / channels" },
	{ "subs", OK_UINT, OFF(subs), "fanout: subscribers per room" },
	{ "members", OK_UINT, OFF(subs), "chat: members per room" },
	{ "pubs", OK_UINT, OFF(pubs), "fanout: publishers per room (default 1)" },
	{ "size", OK_UINT, OFF(size), "payload bytes (default 64, min 35)" },
	{ "rate", OK_DOUBLE, OFF(rate), "msgs/s per publisher or member (0: max, windowed)" },
	{ "window", OK_UINT, OFF(window), "max mode: messages in flight per publisher (default 1000)" },
	{ "duration", OK_DOUBLE, OFF(duration), "measured seconds (default 5)" },
	{ "warmup", OK_DOUBLE, OFF(warmup), "unmeasured seconds first (default 1)" },
	{ "drain", OK_DOUBLE, OFF(drain), "max seconds to wait for in-flight messages (default 5)" },
	{ "setup-timeout", OK_DOUBLE, OFF(setup_timeout), "max seconds for connect+join (default 60)" },
	{ "sweep", OK_FLAG, OFF(sweep), "chat: raise the rate until p99 passes --p99-bound" },
	{ "p99-bound", OK_DOUBLE, OFF(p99_bound_ms), "chat --sweep: p99 bound in ms (default 10)" },
	{ "sweep-factor", OK_DOUBLE, OFF(sweep_factor), "chat --sweep: rate multiplier (default 1.6)" },
	{ "sweep-steps", OK_UINT, OFF(sweep_steps), "chat --sweep: max steps (default 14)" },
	{ "conns", OK_UINT, OFF(conns), "connect: connections; chaos: clients" },
	{ "per-room", OK_UINT, OFF(per_room), "connect: connections per room (default 10)" },
	{ "src-addrs", OK_UINT, OFF(src_addrs), "connect: source addresses 127.0.0.1.. (0: auto)" },
	{ "connect-batch", OK_UINT, OFF(connect_batch), "connects in progress at once (default 256)" },
	{ "hold", OK_DOUBLE, OFF(hold), "connect: seconds to hold before measuring (default 1)" },
	{ "server-pid", OK_INT, OFF(server_pid), "server pid: RSS and CPU from /proc" },
	{ "nodes", OK_STR, OFF(nodes), "fanout: HOST:PORT,... of cluster nodes: subscribers spread, publishers on the first" },
	{ "node-pids", OK_STR, OFF(node_pids), "PID,...: server CPU summed over these (cluster nodes)" },
	{ "bus-pid", OK_INT, OFF(bus_pid), "cluster bus (redis-server) pid: its CPU reported apart" },
	{ "settle", OK_DOUBLE, OFF(settle), "seconds between setup and the first publish (default 0; 0.5 with --nodes)" },
	{ "metrics", OK_STR, OFF(metrics_url), "chaos: metrics URL to check for zero gauges" },
	{ "slow-writers", OK_FLAG, OFF(slow_writers), "chaos: slow readers keep writing after they pause" },
	{ "rss-every", OK_DOUBLE, OFF(rss_every), "chaos: sample --server-pid's RSS every N s; must stay flat" },
	{ "seed", OK_UINT, OFF(seed), "random seed (chaos, frag)" },
	{ "loss-allowed", OK_DOUBLE, OFF(loss_allowed), "fraction of deliveries that may be lost (default 0)" },
	{ "json", OK_FLAG, OFF(json), "print one JSON object instead of a table" },
	{ "quiet", OK_FLAG, OFF(quiet), "no progress lines on stderr" },
	{ "transport", OK_STR, OFF(transport), "tcp | tls | ws | wss (relay fanout/chat/connect; default tcp; ws, wss: path /relay on --port)" },
};
#define NOPTS (sizeof opt_table / sizeof opt_table[0])

struct workload {
	const char *name;
	int (*run)(const struct rb_opts *, struct rb_report *);
	const char *help;
};

static const struct workload workloads[] = {
	{ "fanout", rb_wl_fanout, "R rooms x S subscribers, P publishers per room" },
	{ "chat", rb_wl_chat, "many small rooms, every member publishing at --rate" },
	{ "connect", rb_wl_connect, "C connections each joined to a room; RSS per connection" },
	{ "chaos", rb_wl_chaos, "random join/leave/bursts/pauses/RST/FIN, delivery invariants, health checks" },
	{ "frag", rb_wl_frag, "fragmented and combined frames, pass/fail per case" },
};

static const char *proto_names[RB_PROTO_N] = { "relay", "nats", "redis" };

const char *rb_proto_name(enum rb_proto_id id)
{
	return id < RB_PROTO_N ? proto_names[id] : "?";
}

const struct rb_proto *rb_proto_get(enum rb_proto_id id)
{
	static const struct rb_proto *const tab[RB_PROTO_N] = { &rb_proto_relay, &rb_proto_nats,
								&rb_proto_redis };
	return tab[id];
}

static void usage(FILE *f)
{
	fprintf(f, "usage: relay-bench WORKLOAD --port N [options]\n\nworkloads:\n");
	for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
		fprintf(f, "  %-10s %s\n", workloads[i].name, workloads[i].help);
	fprintf(f, "\noptions:\n");
	for (size_t i = 0; i < NOPTS; i++)
		fprintf(f, "  --%-15s %s\n", opt_table[i].name, opt_table[i].help);
	fprintf(f, "  --%-15s %s\n", "help", "this text");
	fprintf(f, "\nexit status: 0 clean run, 1 failed check (loss, errors, failed case),"
		   " 2 could not run\n");
}

static int opt_set(struct rb_opts *o, const struct opt_def *d, const char *arg)
{
	char *end = NULL;
	void *p = (char *)o + d->off;
	switch (d->kind) {
	case OK_FLAG:
		*(bool *)p = true;
		return 0;
	case OK_UINT: {
		unsigned long long v = strtoull(arg, &end, 10);
		if (d->off == OFF(seed))
			*(uint64_t *)p = v;
		else
			*(unsigned *)p = (unsigned)v;
		break;
	}
	case OK_INT:
		*(int *)p = (int)strtol(arg, &end, 10);
		break;
	case OK_DOUBLE:
		*(double *)p = strtod(arg, &end);
		break;
	case OK_STR:
		*(const char **)p = arg;
		return 0;
	case OK_PROTO:
		for (int i = 0; i < RB_PROTO_N; i++)
			if (strcmp(arg, proto_names[i]) == 0) {
				*(enum rb_proto_id *)p = (enum rb_proto_id)i;
				return 0;
			}
		return -1;
	default:
		return -1;
	}
	return end && *end == 0 && end != arg ? 0 : -1;
}

static void opts_default(struct rb_opts *o)
{
	memset(o, 0, sizeof *o);
	o->host = "127.0.0.1";
	o->threads = 1;
	o->rooms = 1;
	o->pubs = 1;
	o->size = 64;
	o->window = 1000;
	o->duration = 5;
	o->warmup = 1;
	o->drain = 5;
	o->setup_timeout = 60;
	o->p99_bound_ms = 10;
	o->sweep_factor = 1.6;
	o->sweep_steps = 14;
	o->per_room = 10;
	o->connect_batch = 256;
	o->hold = 1;
	o->seed = 1;
}

/* Workload-dependent defaults for what the user left at 0. */
static void opts_finish(struct rb_opts *o)
{
	if (!o->subs)
		o->subs = strcmp(o->workload, "chat") == 0 ? 5 : 100;
	if (!o->conns)
		o->conns = strcmp(o->workload, "chaos") == 0 ? 40 : 1000;
	if (!o->per_room)
		o->per_room = 10;
	if (o->nodes && o->settle == 0)
		o->settle = 0.5; /* each node's first JOIN subscribes it on the bus */
}

static int parse_args(int argc, char **argv, struct rb_opts *o)
{
	struct option lo[NOPTS + 2];
	for (size_t i = 0; i < NOPTS; i++)
		lo[i] = (struct option){ opt_table[i].name,
					 opt_table[i].kind == OK_FLAG ? no_argument
								      : required_argument,
					 NULL, (int)(i + 256) };
	lo[NOPTS] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[NOPTS + 1] = (struct option){ 0 };
	int ch;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			exit(0);
		}
		if (ch < 256) {
			usage(stderr);
			return -1;
		}
		const struct opt_def *d = &opt_table[ch - 256];
		if (opt_set(o, d, optarg) < 0) {
			fprintf(stderr, "relay-bench: bad value for --%s: %s\n", d->name, optarg);
			return -1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return -1;
	}
	o->workload = argv[optind];
	return 0;
}

/* --transport NAME: the layers of each (wss: the upgrade inside TLS). */
static const struct transport_row {
	const char *name;
	bool tls, ws;
} transports[] = {
	{ .name = "tcp" },
	{ .name = "tls", .tls = true },
	{ .name = "ws", .ws = true },
	{ .name = "wss", .tls = true, .ws = true },
};

static const struct transport_row *transport_find(const char *name)
{
	for (size_t i = 0; i < sizeof transports / sizeof transports[0]; i++)
		if (strcmp(transports[i].name, name) == 0)
			return &transports[i];
	return NULL;
}

static int check_opts(const struct rb_opts *o)
{
	if (!o->nodes && (o->port <= 0 || o->port > 65535))
		return fprintf(stderr, "relay-bench: --port (or --nodes) is required\n"), -1;
	if (o->size < RB_PAYLOAD_MIN || o->size > 1000000)
		return fprintf(stderr, "relay-bench: --size must be %d..1000000\n", RB_PAYLOAD_MIN), -1;
	if (o->threads < 1 || o->threads > 64)
		return fprintf(stderr, "relay-bench: --threads must be 1..64\n"), -1;
	if (!o->rooms || !o->window || o->duration <= 0)
		return fprintf(stderr, "relay-bench: --rooms, --window, --duration must be > 0\n"), -1;
	if (o->transport && !transport_find(o->transport))
		return fprintf(stderr, "relay-bench: --transport must be tcp, tls, ws or wss\n"), -1;
	if (o->transport && strcmp(o->transport, "tcp") != 0 &&
	    (o->proto != RB_PROTO_RELAY || (strcmp(o->workload, "fanout") != 0 &&
					    strcmp(o->workload, "chat") != 0 &&
					    strcmp(o->workload, "connect") != 0)))
		return fprintf(stderr, "relay-bench: --transport %s: relay fanout, chat or "
				       "connect only\n", o->transport),
		       -1;
	return 0;
}

/* --token-file: the token is the file's first line. */
static int read_token(struct rb_opts *o)
{
	static char tok[4200];
	FILE *f = fopen(o->token_file, "re");
	if (!f)
		return fprintf(stderr, "relay-bench: --token-file %s: cannot open\n", o->token_file), -1;
	size_t n = fread(tok, 1, sizeof tok - 1, f);
	fclose(f);
	tok[n] = '\0';
	tok[strcspn(tok, "\r\n")] = '\0';
	o->token = tok;
	return 0;
}

int main(int argc, char **argv)
{
	struct rb_opts o;
	opts_default(&o);
	if (parse_args(argc, argv, &o) < 0 || check_opts(&o) < 0)
		return 2;
	opts_finish(&o);
	const struct transport_row *tr = transport_find(o.transport ? o.transport : "tcp");
	o.tls = tr->tls;
	signal(SIGPIPE, SIG_IGN);
	rb_proto_relay_mode(o.binary);
	if (o.token_file && read_token(&o) < 0)
		return 2;
	if (rb_proto_relay_token(o.token) < 0)
		return fprintf(stderr, "relay-bench: --token is too long\n"), 2;
	if (tr->ws)
		rb_ws_enable(o.host, o.port);
	for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
		if (strcmp(o.workload, workloads[i].name) != 0)
			continue;
		struct rb_report *r = rb_report_new(&o);
		if (!r)
			return 2;
		int rc = workloads[i].run(&o, r);
		rb_report_emit(r, rc == 0);
		rb_report_free(r);
		return rc;
	}
	fprintf(stderr, "relay-bench: unknown workload '%s'\n", o.workload);
	usage(stderr);
	return 2;
}
