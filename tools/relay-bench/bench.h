/* bench.h -- relay-bench internals shared by its files.
 *
 * relay-bench drives one workload against one server through one of three
 * wire protocols (relay, nats, redis). The engine (engine.c) owns N worker
 * threads, each with its own epoll loop and its own connections; the main
 * thread only starts phases, prints progress and reads counters.
 * Threading: a struct bconn is touched only by its owner thread. Counters that
 * the main thread reads are single-writer relaxed atomics (struct bstats);
 * room counters are shared and updated with one atomic add per read batch.
 */
#ifndef RELAY_BENCH_H
#define RELAY_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <relay/protocol.h>

/* ---- histogram (hist.c) --------------------------------------------------- */

/* Log-linear: values below 2^RB_HIST_SUB_BITS ns are exact; above, each power
 * of two is cut into 2^RB_HIST_SUB_BITS linear buckets, so a reported value is
 * within 2/2^RB_HIST_SUB_BITS (1.6 %) of the true one. No per-sample storage. */
#define RB_HIST_SUB_BITS 7
#define RB_HIST_SUB (1u << RB_HIST_SUB_BITS)
#define RB_HIST_EXPS 40 /* up to ~2^46 ns (~19 hours) */
#define RB_HIST_BUCKETS (RB_HIST_SUB * RB_HIST_EXPS)

/* Single writer; any thread may read (relaxed) for progress lines. */
struct rb_hist {
	_Atomic uint64_t count;
	_Atomic uint64_t max;
	_Atomic uint64_t b[RB_HIST_BUCKETS];
};

void rb_hist_reset(struct rb_hist *h);
void rb_hist_add(struct rb_hist *h, uint64_t v);
/* <into> += <from>. */
void rb_hist_merge(struct rb_hist *into, const struct rb_hist *from);
/* Value at quantile <q> (0..1): the upper edge of the bucket holding it,
 * capped at the observed max. 0 when empty. */
uint64_t rb_hist_quantile(const struct rb_hist *h, double q);

/* ---- options ---------------------------------------------------------------- */

enum rb_proto_id { RB_PROTO_RELAY = 0, RB_PROTO_NATS, RB_PROTO_REDIS, RB_PROTO_N };

struct rb_opts {
	const char *workload;
	enum rb_proto_id proto;
	bool binary;           /* relay: binary framing instead of JSON */
	const char *token;     /* relay: access token for every HELLO (NULL: none) */
	const char *token_file;
	const char *host;
	int port;
	int threads;
	unsigned rooms;
	unsigned subs;         /* subscribers per room (fanout) / members (chat) */
	unsigned pubs;         /* publishers per room (fanout) */
	unsigned size;         /* payload bytes */
	double rate;           /* msgs/s per publisher (0: as fast as the window allows) */
	unsigned window;       /* in-flight messages per publisher, max mode */
	double duration;       /* measured seconds */
	double warmup;         /* unmeasured seconds before */
	double drain;          /* max seconds to wait for in-flight deliveries */
	double setup_timeout;  /* max seconds for connect + join */
	bool sweep;            /* chat: raise the rate until p99 passes the bound */
	double p99_bound_ms;
	double sweep_factor;
	unsigned sweep_steps;
	unsigned conns;        /* connect: connections; chaos: clients */
	unsigned per_room;     /* connect: connections per room */
	unsigned src_addrs;    /* source addresses 127.0.0.1.. (0: automatic) */
	unsigned connect_batch;/* connect: connects in flight at once */
	double hold;           /* connect: seconds to hold before measuring RSS */
	int server_pid;
	const char *nodes;     /* fanout: HOST:PORT,... subscribers spread, publishers on the first */
	const char *node_pids; /* PID,...: server CPU summed over these (cluster runs) */
	int bus_pid;           /* the bus (redis-server) pid: its CPU reported apart */
	double settle;         /* seconds between setup and the first publish */
	const char *metrics_url;
	double rss_every;      /* chaos: seconds between server RSS samples (0: none) */
	bool slow_writers;     /* chaos: slow readers keep writing after they pause */
	uint64_t seed;
	double loss_allowed;   /* fraction of expected deliveries that may be lost */
	bool json;
	bool quiet;            /* no progress lines */
	const char *transport; /* "tcp" (default), "tls" or "ws" (relay, engine workloads) */
	bool tls;              /* transport is "tls" */
};

/* ---- payload ----------------------------------------------------------------- */

/* Every published payload starts with this ASCII header, whatever the protocol:
 * 'T' + 16 hex ns (CLOCK_MONOTONIC) + 8 hex publisher id + 8 hex sequence,
 * then filler up to the payload size. Identical bytes for every target. */
#define RB_PAYLOAD_HDR 33
#define RB_PAYLOAD_MIN (RB_PAYLOAD_HDR + 2) /* room for JSON quotes */

void rb_payload_fill(uint8_t *p, size_t n, uint64_t ts, uint32_t pub, uint32_t seq);
/* Returns false when <p> does not start with a payload header. <pub> may be
 * NULL when the publisher id is not needed. */
bool rb_payload_parse(const uint8_t *p, size_t n, uint64_t *ts, uint32_t *pub);

/* ---- connections and protocols ---------------------------------------------- */

struct rb_thread;
struct rb_room;

enum rb_role { RB_ROLE_SUB = 0, RB_ROLE_PUB, RB_ROLE_BOTH, RB_ROLE_NROLES };

struct rb_buf {
	uint8_t *p;
	size_t len;
	size_t off; /* bytes already consumed/written from the front */
	size_t cap;
};

struct ssl_st;
struct ssl_ctx_st;

struct bconn {
	int fd;
	struct ssl_st *ssl;    /* --transport tls: OpenSSL's SSL; NULL for TCP */
	uint32_t tls_retry;    /* bytes SSL_write must be offered again (WANT_*) */
	bool handshaking;      /* TLS handshake not done yet */
	uint32_t id;           /* member/publisher id (payload) */
	uint32_t room;         /* index into the engine's rooms */
	uint8_t role;
	uint8_t node;          /* index into the engine's addrs (--nodes) */
	bool connected;
	bool ready;            /* handshake + subscription acknowledged */
	bool want_out;         /* EPOLLOUT registered */
	bool closed;
	bool in_flush_list;
	uint32_t pending_acks; /* replies still expected before ready */
	uint32_t batch_recv;   /* deliveries in the current read batch */
	uint32_t seq;          /* next sequence number to publish */
	struct rb_thread *t;
	struct rb_buf out;
	struct rb_buf tail;    /* nats/redis: incomplete message */
	struct relay_decoder dec; /* relay */
	struct rb_ws *ws;      /* relay over WebSocket (ws.c), or NULL */
	struct bconn *flush_next;
};

struct rb_proto {
	const char *name;
	/* Queue what a fresh connection sends first (may queue nothing). */
	void (*hello)(struct bconn *c);
	/* Queue a subscription to room <room>; bumps c->pending_acks for every
	 * reply that must arrive before the connection counts as ready. */
	void (*subscribe)(struct bconn *c, uint32_t room);
	void (*unsubscribe)(struct bconn *c, uint32_t room);
	/* Queue one publish of payload <p>/<n> to <room>. */
	void (*publish)(struct bconn *c, uint32_t room, const uint8_t *p, size_t n);
	/* Consumes received bytes <p>/<n>; returns how many it consumed (the
	 * engine keeps the rest for the next read), or -1 on a protocol error
	 * (the connection is then closed and counted). */
	int (*input)(struct bconn *c, const uint8_t *p, size_t n);
	/* Bytes a publish of an n-byte payload puts on the wire (for sizing). */
	size_t (*publish_size)(uint32_t room, size_t n);
	/* Queue a no-op the server answers (relay HEARTBEAT, NATS PING, RESP
	 * PING), so long runs do not trip idle timeouts. */
	void (*keepalive)(struct bconn *c);
	/* Frees per-connection protocol state (may be NULL). */
	void (*fini)(struct bconn *c);
	bool pub_joins;        /* a publisher must be a room member (relay) */
};

extern const struct rb_proto rb_proto_relay;
extern const struct rb_proto rb_proto_nats;
extern const struct rb_proto rb_proto_redis;
const struct rb_proto *rb_proto_get(enum rb_proto_id id);
void rb_proto_relay_mode(bool binary);
/* Every relay HELLO carries <token> (NULL: none). Before threads start;
 * 0, or -1 when it does not fit a HELLO. */
int rb_proto_relay_token(const char *token);

/* relay over WebSocket (ws.c; --transport ws). */
struct rb_ws;
/* Every relay connection from now on upgrades to ws://<host>:<port>/relay.
 * Before the threads start. */
void rb_ws_enable(const char *host, int port);
bool rb_ws_enabled(void);
/* Queues the upgrade request of fresh connection <c>. 0 or -1 (no memory). */
int rb_ws_start(struct bconn *c);
void rb_ws_free(struct bconn *c);
/* Whether the 101 came (frames may be sent). */
bool rb_ws_up(const struct bconn *c);
/* Room for one Relay frame of exactly <flen> bytes, inside its masked
 * binary message: write the frame there, then rb_ws_end. */
uint8_t *rb_ws_begin(struct bconn *c, size_t flen);
void rb_ws_end(struct bconn *c, uint8_t *frame, size_t flen);
/* The Relay stream bytes of binary messages (< 0: a protocol error). */
typedef int rb_ws_bytes_fn(struct bconn *c, const uint8_t *p, size_t n);
/* The 101 came: queue what waited for it. */
typedef void rb_ws_up_fn(struct bconn *c);
/* rb_proto.input for WebSocket: the 101, then server frames; Relay bytes
 * go to <bytes>. Returns bytes consumed (0: the 101 is incomplete) or -1. */
int rb_ws_input(struct bconn *c, const uint8_t *p, size_t n, rb_ws_bytes_fn *bytes,
		rb_ws_up_fn *up);
const char *rb_proto_name(enum rb_proto_id id);

/* Room name "r<idx>" into <buf> (>= 16 bytes); returns its length. */
size_t rb_room_name(char *buf, uint32_t room);

/* Called by the protocols. */
void rb_on_delivery(struct bconn *c, const uint8_t *payload, size_t n);
void rb_on_ack(struct bconn *c);
void rb_on_other(struct bconn *c);       /* presence, INFO, PUBLISH counts ... */
void rb_on_error(struct bconn *c, const char *what, size_t n);

/* Output buffer helpers. */
uint8_t *rb_out_reserve(struct bconn *c, size_t n);  /* returns write pointer */
void rb_out_commit(struct bconn *c, size_t n);
void rb_out_append(struct bconn *c, const void *p, size_t n);

/* ---- engine (engine.c) ------------------------------------------------------- */

struct rb_room {
	_Atomic uint64_t sent;       /* messages published to it */
	_Atomic uint64_t delivered;  /* deliveries received by its subscribers */
	uint32_t receivers;          /* deliveries each message should produce */
	uint32_t npubs;              /* publishers in it (window scales with it) */
};

struct rb_stats {
	_Atomic uint64_t sent;
	_Atomic uint64_t delivered;
	_Atomic uint64_t self_echo;   /* redis chat: own messages on own sub conn */
	_Atomic uint64_t other;       /* non-data frames/messages */
	_Atomic uint64_t errors;      /* server errors, protocol errors */
	_Atomic uint64_t closed;      /* unexpected closes */
	_Atomic uint64_t connect_fail;
	_Atomic uint64_t connected;
	_Atomic uint64_t ready;
};

enum rb_phase {
	RB_PH_SETUP = 0, /* connect, handshake, subscribe */
	RB_PH_IDLE,      /* hold connections, no publishing */
	RB_PH_RUN,       /* publish; latencies not recorded */
	RB_PH_MEASURE,   /* publish; latencies recorded */
	RB_PH_DRAIN,     /* no publishing; wait for in-flight deliveries */
	RB_PH_STOP,
	RB_PH_NPHASES
};

struct rb_engine;

struct rb_thread {
	int idx;
	int epfd;
	struct rb_engine *e;
	struct bconn **conns;
	size_t nconns;
	struct bconn **pubs;
	size_t npubs;
	size_t pub_cursor;
	uint64_t rate_t0;       /* ns when the current rate started */
	uint64_t rate_sent;     /* messages sent since rate_t0 */
	uint64_t rate_gen_seen;
	uint64_t keepalive_at;  /* ns of the next keepalive round */
	size_t next_connect;    /* connect pacing */
	unsigned connecting;
	struct bconn *flush_head;
	uint8_t *rbuf;          /* read scratch */
	size_t rbuf_cap;
	uint8_t *payload;       /* publish scratch */
	uint64_t now;           /* ns, refreshed once per read batch / turn */
	struct rb_stats st;
	struct rb_hist hist;
	pthread_t tid;
};

#define RB_MAX_NODES 16

struct rb_engine {
	const struct rb_opts *o;
	const struct rb_proto *proto;
	struct sockaddr_in addr;       /* = addrs[0] */
	struct sockaddr_in addrs[RB_MAX_NODES]; /* --nodes, or --host/--port alone */
	unsigned naddrs;
	struct rb_room *rooms;
	uint32_t nrooms;
	struct rb_thread *th;
	int nth;
	struct bconn *conns;
	size_t nconns;
	_Atomic int phase;
	_Atomic uint64_t rate_gen;   /* bumped when the rate changes */
	double rate;                 /* per publisher, msgs/s; 0 = window mode */
	unsigned window;
	bool chat;                   /* self messages are echoes, not deliveries */
	struct ssl_ctx_st *tls_ctx;  /* --transport tls: client context, or NULL */
};

int rb_engine_init(struct rb_engine *e, const struct rb_opts *o, size_t nconns,
		   uint32_t nrooms);
int rb_engine_start(struct rb_engine *e);
void rb_engine_set_phase(struct rb_engine *e, enum rb_phase ph);
void rb_engine_set_rate(struct rb_engine *e, double rate);
/* Sums every thread's counters into <st> (relaxed reads). */
void rb_engine_sum(struct rb_engine *e, struct rb_stats *st);
void rb_engine_hist(struct rb_engine *e, struct rb_hist *h);
void rb_engine_reset_hist(struct rb_engine *e);
uint64_t rb_engine_expected(struct rb_engine *e);
void rb_engine_stop(struct rb_engine *e);
void rb_engine_free(struct rb_engine *e);

/* ---- utilities (util.c) ---------------------------------------------------- */

uint64_t rb_now_ns(void);
void rb_sleep_ns(uint64_t ns);
int rb_resolve(const char *host, int port, struct sockaddr_in *out);
/* Non-blocking TCP socket, TCP_NODELAY, bound to 127.0.0.<1 + src> when
 * src_n > 1; connect started. Returns fd or -errno. */
int rb_connect_start(const struct sockaddr_in *addr, unsigned src, unsigned src_n);
/* Blocking connect with a timeout; returns fd or -errno. */
int rb_connect_blocking(const struct sockaddr_in *addr, int timeout_ms);
/* The same with SO_RCVBUF <rcvbuf> (0: the default) set before connecting. */
int rb_connect_blocking_rcvbuf(const struct sockaddr_in *addr, int timeout_ms, int rcvbuf);
/* Raises RLIMIT_NOFILE soft to hard; returns the new soft limit. */
long rb_raise_nofile(void);
/* VmRSS of <pid> in bytes, or -1. */
long rb_rss_bytes(int pid);
/* utime+stime of <pid> in seconds, or -1. */
double rb_cpu_seconds(int pid);
/* Parses "HOST:PORT,HOST:PORT,..." into <out> (at most <max>); returns how
 * many, or -EINVAL. */
int rb_parse_nodes(const char *list, struct sockaddr_in *out, unsigned max);
/* CPU seconds summed over "PID,PID,..." (-1 if any is unreadable). */
double rb_cpu_seconds_list(const char *pids);
/* GET <url> (http://host:port/path); body into <buf> (NUL-terminated).
 * Returns body length or -errno. */
long rb_http_get(const char *url, char *buf, size_t cap, int timeout_ms);
/* Value of the Prometheus sample <name> (no labels, or summed over labels)
 * in <text>; returns false when absent. */
bool rb_prom_value(const char *text, const char *name, double *out);
uint64_t rb_rand(uint64_t *state);

/* ---- workloads ------------------------------------------------------------ */

/* Results accumulate into a JSON object and a table; see report.c. */
struct rb_report;
struct rb_report *rb_report_new(const struct rb_opts *o);
void rb_report_kv_str(struct rb_report *r, const char *key, const char *val);
void rb_report_kv_num(struct rb_report *r, const char *key, double val, const char *unit);
void rb_report_kv_int(struct rb_report *r, const char *key, int64_t val);
void rb_report_kv_bool(struct rb_report *r, const char *key, bool val);
/* A nested array of objects (sweep steps, frag cases). */
void rb_report_arr_begin(struct rb_report *r, const char *key);
void rb_report_obj_begin(struct rb_report *r);
void rb_report_obj_end(struct rb_report *r);
void rb_report_arr_end(struct rb_report *r);
void rb_report_emit(struct rb_report *r, bool ok);
void rb_report_free(struct rb_report *r);

/* Each returns the process exit status (0 ok, 1 failed checks, 2 errors). */
int rb_wl_fanout(const struct rb_opts *o, struct rb_report *r);
int rb_wl_chat(const struct rb_opts *o, struct rb_report *r);
int rb_wl_connect(const struct rb_opts *o, struct rb_report *r);
int rb_wl_chaos(const struct rb_opts *o, struct rb_report *r);
int rb_wl_frag(const struct rb_opts *o, struct rb_report *r);

/* ---- chaos's delivery invariants (chaos_check.c) ------------------------------
 * chaos's clients are numbered slots; each (re)connection of a slot is a new
 * instance with its own id. The checker is told every request, every message
 * as it is queued and as its last byte is written, and every frame received,
 * and checks: no duplicate, per-sender order, nothing to a non-member, no
 * self-echo without "echo":true, and no required delivery missing (see
 * chaos_check.c for the exact rule). Single-threaded: the order of calls is
 * the one clock. */

enum rb_ck_kind {
	RB_CK_DUPLICATE = 0, /* a message twice on one connection */
	RB_CK_ORDER,         /* one sender's messages to one room out of order */
	RB_CK_BEFORE_JOIN,   /* a room's MESSAGE before its JOIN ack */
	RB_CK_AFTER_LEAVE,   /* a room's MESSAGE after its LEAVE ack */
	RB_CK_MISSING,       /* a required delivery never came */
	RB_CK_SELF_ECHO,     /* own message back without "echo":true */
	RB_CK_CORRUPT,       /* content, room or sender not as sent */
	RB_CK_REPLY,         /* an ack that does not match the oldest request */
	RB_CK_NKINDS
};

/* Content bytes of a checked message: a JSON string holding the sender
 * instance, room, per-(sender, room) sequence and its own length, padded. */
#define RB_CK_CONTENT_MIN 32

struct rb_ck;
struct rb_ck *rb_ck_new(unsigned slots, unsigned rooms);
void rb_ck_free(struct rb_ck *k);
/* Slot <slot> connected again (a new instance); <echo>: its HELLO asks for it. */
void rb_ck_open(struct rb_ck *k, unsigned slot, bool echo);
/* The instance in <slot> is gone (closed by us or by the server). */
void rb_ck_close(struct rb_ck *k, unsigned slot);
/* From now on the instance may lose messages: it broke the protocol, or the
 * server dropped it as a slow consumer. Nothing is required of it or of its
 * messages any more (what it does receive is still checked). */
void rb_ck_unhealthy(struct rb_ck *k, unsigned slot);
/* A request that the server acks (HELLO, JOIN_ROOM, LEAVE_ROOM, HEARTBEAT)
 * was queued; <room> -1 for HELLO and HEARTBEAT. */
void rb_ck_request(struct rb_ck *k, unsigned slot, uint8_t type, int room);
/* A MESSAGE to <room> was queued; its frame ends at byte <stream_end> of the
 * slot's output stream. Returns the message's sequence number. */
uint32_t rb_ck_publish(struct rb_ck *k, unsigned slot, unsigned room, uint64_t stream_end);
/* The kernel has accepted the slot's first <stream_bytes> bytes. */
void rb_ck_written(struct rb_ck *k, unsigned slot, uint64_t stream_bytes);
/* The sender instance id of <slot> (0 if closed). */
uint32_t rb_ck_id(const struct rb_ck *k, unsigned slot);
/* Fills <p>/<n> (n >= RB_CK_CONTENT_MIN) with the content of message
 * <seq> of instance <id> to <room>. */
void rb_ck_content(uint8_t *p, size_t n, uint32_t id, unsigned room, uint32_t seq);
/* A frame other than ERROR arrived on <slot>. */
void rb_ck_frame(struct rb_ck *k, unsigned slot, const struct relay_frame *f);
/* Required deliveries not yet seen by healthy members (see chaos_check.c);
 * with <final>, each is recorded as a RB_CK_MISSING violation. */
uint64_t rb_ck_outstanding(struct rb_ck *k, bool final);
/* True when every healthy instance has written all it queued and got a
 * reply to every request. */
bool rb_ck_idle(const struct rb_ck *k);
uint64_t rb_ck_violations(const struct rb_ck *k);
void rb_ck_report(const struct rb_ck *k, struct rb_report *r);

/* Blocking relay helpers for chaos and frag (relay_sync.c). */
struct rb_sync {
	int fd;
	struct relay_decoder dec;
	uint8_t buf[65536];
	bool fed;  /* the decoder still holds part of buf */
	bool eof;
};
int rb_sync_open(struct rb_sync *s, const struct sockaddr_in *addr);
void rb_sync_close(struct rb_sync *s);
int rb_sync_send(struct rb_sync *s, const void *p, size_t n);
int rb_sync_send_frame(struct rb_sync *s, uint8_t type, uint8_t flags, const void *p,
		       size_t n);
/* Next frame within <timeout_ms>; payload copied into <pl> (cap <plcap>).
 * Returns 0, -ETIMEDOUT, -ECONNRESET (EOF) or -EPROTO. */
int rb_sync_recv(struct rb_sync *s, struct relay_frame *f, uint8_t *pl, size_t plcap,
		 int timeout_ms);
/* Receives until a frame of <type> arrives (skipping presence events).
 * Returns 0 or negative as rb_sync_recv; -EBADMSG if an ERROR frame came. */
int rb_sync_expect(struct rb_sync *s, uint8_t type, uint8_t *pl, size_t plcap,
		   size_t *pllen, int timeout_ms);
/* HELLO + JOIN <room> (JSON), waiting for both acks. */
int rb_sync_hello_join(struct rb_sync *s, const char *room, int timeout_ms);
/* Receives MESSAGE frames until one carries "content" (presence events are
 * skipped); copies its raw content bytes to <out>. Returns the length or
 * negative as rb_sync_recv. */
long rb_sync_content(struct rb_sync *s, uint8_t *out, size_t cap, int timeout_ms);
/* Builds a JSON MESSAGE frame for <room> with raw JSON <content> into <out>;
 * returns its size. */
size_t rb_msg_frame(uint8_t *out, size_t cap, const char *room, const char *content,
		    size_t clen);

#endif /* RELAY_BENCH_H */
