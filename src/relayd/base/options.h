/* options.h -- relayd's configuration: one table drives getopt_long, the
 * RELAY_* environment variables, --help and the config file (ops/config.c).
 * Threading: parsed on the main thread before any worker starts. Workers read
 * the options marked reloadable only through RL_CFG (loop/worker.h, relaxed
 * atomic loads), because a SIGHUP reload stores them from the main thread
 * (ops/ops.c) while workers run; the other fields never change after startup. */
#ifndef RL_OPTIONS_H
#define RL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RL_VERSION RELAY_VERSION_STRING /* meson project() version */
#define RL_MAX_WORKERS 64
#define RL_OPTIONS_MAX 64 /* room in per-option arrays such as <given>; >= rl_options_count */
/* Upper bounds of --max-frame-bytes and --outbound-hard-limit. A
 * connection's queue never holds more than the hard limit plus one frame
 * plus its final ERROR, so struct rl_outq counts it in 32 bits (conn.c). */
#define RL_OPT_MAX_FRAME_MAX (256ull << 20)
#define RL_OPT_OUT_HARD_MAX (1024ull << 20)
/* The smallest --max-frame-bytes that goes with --auth-key: an authenticated
 * HELLO ack must fit in a frame (rl_config_check). */
#define RL_AUTH_MAX_FRAME_MIN 1024
/* Upper bounds of the rate limits: a burst times 10^9 (the bucket's depth
 * in nanoseconds, net/limit.c) stays far below 2^64. */
#define RL_OPT_RATE_MAX 1000000000ull
#define RL_OPT_BYTES_RATE_MAX (1ull << 40)
#define RL_OPT_BURST_MAX (4ull << 30)

struct rl_config {
	char host[256];
	uint64_t port;
	uint64_t workers;          /* 0 = online CPUs (resolved in main) */
	uint64_t max_frame;        /* bytes, the length field's bound */
	uint64_t max_conns;
	uint64_t max_rooms;        /* per connection */
	uint64_t idle_ms;          /* 0 = off */
	uint64_t frame_ms;         /* 0 = off */
	uint64_t slow_ms;          /* 0 = off */
	uint64_t out_low;          /* bytes */
	uint64_t out_high;
	uint64_t out_hard;
	uint64_t max_client_mem;   /* bytes: the client memory budget; 0 = unlimited */
	uint64_t grace_ms;
	uint64_t keepalive_ms;     /* TCP keepalive idle time, whole seconds; 0 = off */
	uint64_t log_level;        /* enum rl_log_level */
	/* history (relay/history.c); history_size 0 = off. Not reloadable. */
	uint64_t history_size;        /* messages kept per room */
	uint64_t history_room_bytes;  /* bytes kept per room */
	uint64_t history_total_bytes; /* bytes kept over all rooms */
	uint64_t history_ttl_ms;      /* an empty room is kept this long */
	bool no_presence;
	bool debug;
	/* ops (config.c, admin.c): */
	char config[1024];         /* --config FILE, "" = none */
	char admin[256];           /* --admin HOST:PORT, "" = off */
	/* TLS listener (net/tls.c): */
	uint64_t tls_port;         /* RL_PORT_OFF = no TLS listener; 0 = ephemeral */
	char tls_cert[1024];       /* PEM certificate chain, "" = none */
	char tls_key[1024];        /* PEM private key, "" = none */
	char admin_token_file[1024]; /* --admin-token-file FILE, "" = no bearer token */
	/* access control (relay/auth.c). The strings are read only by the main
	 * thread, which publishes what they mean (the key set) to the workers. */
	char auth_keys[4096];	 /* --auth-key, a list of "[KID=]FILE"; "" = auth off */
	char auth_audience[256]; /* "" = aud not checked */
	uint64_t auth_leeway_ms;
	uint64_t hello_ms; /* HELLO deadline with auth on; 0 = off */
	/* cluster (cluster/cluster.c): */
	char cluster[512];         /* --cluster redis://HOST:PORT | unix:PATH, "" = off */
	char cluster_password_file[1024];
	char node_id[33];          /* "" = derived from the host name, port and randomness */
	char cluster_prefix[64];
	uint64_t cluster_ttl_ms;   /* a silent node stops counting after this */
	uint64_t cluster_linger_ms;
	uint64_t cluster_queue;    /* bytes each bridge queue may hold */
	bool cluster_required;     /* /health 503 while the bus link is down */
	/* WebSocket listener (net/ws.c): */
	uint64_t ws_port;          /* RL_PORT_OFF = no WebSocket listener; 0 = ephemeral */
	char ws_origins[1024];     /* --ws-allowed-origins, "" = any origin */
	char web_root[1024];       /* --web-root DIR, "" = no static files */
	bool ws_tls;               /* TLS on the WebSocket listener (wss://) */
	/* limits (net/limit.c, relay/room.c; protocol-v1-ext.md §3), all
	 * reloadable; 0 = off. A burst of 0 is one second's worth of the rate. */
	uint64_t max_conns_ip;	  /* open connections per client address */
	uint64_t max_rooms_total; /* rooms in the server (max_rooms is per connection) */
	uint64_t pub_rate;	  /* MESSAGE frames per second, per connection */
	uint64_t pub_burst;
	uint64_t pub_bytes_rate;  /* MESSAGE frame bytes per second, per connection */
	uint64_t pub_bytes_burst;
	uint64_t join_rate;	  /* JOIN_ROOM and LEAVE_ROOM frames per second */
	uint64_t join_burst;
};

/* An RL_OPT_PORT option that is not set: no such listener. */
#define RL_PORT_OFF UINT64_MAX

enum rl_opt_type {
	RL_OPT_STRING = 0,
	RL_OPT_UINT,     /* decimal integer in [min, max] */
	RL_OPT_SIZE,     /* bytes, optional K/M/G suffix (binary) */
	RL_OPT_DURATION, /* seconds, decimals allowed, or "<n>ms" / "<n>s" / "<n>m"; stored in ms */
	RL_OPT_BOOL,     /* flag on the command line; 1/0/true/false/yes/no/on/off elsewhere */
	RL_OPT_LOGLEVEL, /* error | warn | info | debug */
	RL_OPT_PORT,     /* 0..65535 (0 = ephemeral), or empty / "off": RL_PORT_OFF */
	RL_OPT_MEMSIZE,  /* RL_OPT_SIZE, or "<n>%" of physical memory */
	RL_OPT_LIST,	 /* comma-separated strings, none empty; a repeated command-line
			    option or config-file key adds to the list (stored as a STRING) */
	RL_OPT_NTYPES
};

struct rl_option {
	const char *name;   /* long option, also the config file key */
	const char *env;    /* environment variable */
	enum rl_opt_type type;
	const char *def;    /* default, in the option's own syntax */
	uint64_t min, max;  /* UINT/SIZE/DURATION bounds (DURATION in ms); STRING,
			       LIST: min length, and the size of its char array */
	size_t off;         /* offset in struct rl_config */
	bool reloadable;    /* may change on a running server (SIGHUP) */
	const char *help;
};

extern const struct rl_option rl_options[];
extern const size_t rl_options_count;

const struct rl_option *rl_option_find(const char *name);
/* Parses <val> for <o> into <cfg>. Returns 0, or -EINVAL with a one-line
 * reason naming the option in <err>. */
int rl_option_set(struct rl_config *cfg, const struct rl_option *o, const char *val,
		  char *err, size_t errlen);
/* Adds <val> to the LIST option <o> in <cfg> (a repeated --auth-key):
 * "a" then "b" makes "a,b". 0 or -EINVAL as rl_option_set. */
int rl_option_append(struct rl_config *cfg, const struct rl_option *o, const char *val, char *err,
		     size_t errlen);
/* The option's current value in <cfg>, formatted in its own syntax. */
void rl_option_format(const struct rl_config *cfg, const struct rl_option *o,
		      char *buf, size_t cap);
/* Every option to its default. */
void rl_config_defaults(struct rl_config *cfg);
/* Cross-option rules (watermark order). 0 or -EINVAL with <err>. */
int rl_config_check(const struct rl_config *cfg, char *err, size_t errlen);
void rl_options_usage(FILE *f);

/* Watermarks not given (<given>[i] false for rl_options[i]) that exceed a
 * smaller hard limit follow it down (high = hard/2, low = high/4). Also used
 * by ops.c once the config file has been applied. */
void rl_options_fit_watermarks(struct rl_config *cfg, const bool *given);

enum rl_opts_result { RL_OPTS_RUN = 0, RL_OPTS_EXIT_OK, RL_OPTS_EXIT_ERR };
/* Defaults, then RELAY_* variables, then <argv>. --help/--version print and
 * return EXIT_OK; errors print one line to stderr and return EXIT_ERR.
 * <given>[i] ends true exactly when rl_options[i] was set by the environment
 * or the command line: the config file must not override those
 * (rl_ops_configure), and watermarks nobody set may follow the hard limit. */
enum rl_opts_result rl_options_parse(struct rl_config *cfg, bool given[RL_OPTIONS_MAX], int argc,
				     char **argv);

#endif
