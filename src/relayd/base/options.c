/* options.c -- the option table and its parsers.
 * Threading: main thread only, before workers start (and, for a reload, on
 * a private copy of the config). */
#include "base/options.h"

#include "base/log.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OFF(f) offsetof(struct rl_config, f)
#define KiB 1024ull
#define MiB (1024ull * 1024ull)
#define DAY_MS (86400ull * 1000ull)

const struct rl_option rl_options[] = {
	{ "host", "RELAY_HOST", RL_OPT_STRING, "127.0.0.1", 1, sizeof(((struct rl_config *)0)->host),
	  OFF(host), false,
	  "address to listen on" },
	{ "port", "RELAY_PORT", RL_OPT_UINT, "4000", 0, 65535, OFF(port), false,
	  "TCP port (0 = ephemeral)" },
	{ "workers", "RELAY_WORKERS", RL_OPT_UINT, "0", 0, RL_MAX_WORKERS, OFF(workers), false,
	  "worker threads (0 = online CPUs)" },
	{ "max-frame-bytes", "RELAY_MAX_FRAME_BYTES", RL_OPT_SIZE, "1048576", 256, RL_OPT_MAX_FRAME_MAX,
	  OFF(max_frame), false, "largest accepted frame length field" },
	{ "max-connections", "RELAY_MAX_CONNECTIONS", RL_OPT_UINT, "100000", 1, 10000000,
	  OFF(max_conns), true, "connections beyond this get SERVER_FULL" },
	{ "max-rooms-per-conn", "RELAY_MAX_ROOMS_PER_CONN", RL_OPT_UINT, "1024", 1, 1000000,
	  OFF(max_rooms), true, "rooms one connection may be in (TOO_MANY_ROOMS)" },
	{ "idle-timeout", "RELAY_IDLE_TIMEOUT", RL_OPT_DURATION, "60", 0, 30 * DAY_MS,
	  OFF(idle_ms), true, "close connections silent this long (0 = off)" },
	{ "frame-timeout", "RELAY_FRAME_TIMEOUT", RL_OPT_DURATION, "30", 0, 30 * DAY_MS,
	  OFF(frame_ms), true, "a started frame must complete within this (0 = off)" },
	{ "slow-consumer-timeout", "RELAY_SLOW_CONSUMER_TIMEOUT", RL_OPT_DURATION, "10", 0,
	  30 * DAY_MS, OFF(slow_ms), true, "longest time a connection may stay DRAINING (0 = off)" },
	{ "outbound-low-watermark", "RELAY_OUTBOUND_LOW_WATERMARK", RL_OPT_SIZE, "256K", 0,
	  1024 * MiB, OFF(out_low), true, "queued bytes at or below which DRAINING returns to OPEN "
	  "(0 = once fully drained; a default above the high watermark becomes a quarter of it)" },
	{ "outbound-high-watermark", "RELAY_OUTBOUND_HIGH_WATERMARK", RL_OPT_SIZE, "1M", 1,
	  1024 * MiB, OFF(out_high), true, "queued bytes above which OPEN becomes DRAINING (a default above the hard limit becomes half of it)" },
	{ "outbound-hard-limit", "RELAY_OUTBOUND_HARD_LIMIT", RL_OPT_SIZE, "8M", 1,
	  RL_OPT_OUT_HARD_MAX, OFF(out_hard), true,
	  "queued bytes above which the connection, after a write attempt, is a SLOW_CONSUMER" },
	/* Redis's maxmemory-clients, on by default: the server, not one client
	 * or one attack, decides when memory runs out. */
	{ "max-client-memory", "RELAY_MAX_CLIENT_MEMORY", RL_OPT_MEMSIZE, "25%", 0, 1024 * 1024 * MiB,
	  OFF(max_client_mem), true,
	  "memory all clients together may hold: output queues, partial frames, cross-worker "
	  "messages; over it the largest queues are dropped (SLOW_CONSUMER) and the largest "
	  "partial frames stop being read (N% = of physical memory; 0 = unlimited)" },
	{ "no-presence", "RELAY_NO_PRESENCE", RL_OPT_BOOL, "false", 0, 0, OFF(no_presence), true,
	  "do not send userJoined/userLeft events" },
	{ "shutdown-grace", "RELAY_SHUTDOWN_GRACE", RL_OPT_DURATION, "5", 0, DAY_MS,
	  OFF(grace_ms), true, "time to flush connections on SIGTERM/SIGINT" },
	/* 60 s: under the idle timeouts of common NATs and load balancers (Azure
	 * 4 min, AWS NLB 350 s), where Redis's 300 s is not; probes every 20 s,
	 * 3 of them, so a vanished peer is found within about 2 minutes. */
	{ "tcp-keepalive", "RELAY_TCP_KEEPALIVE", RL_OPT_DURATION, "60", 0, 32767 * 1000ull,
	  OFF(keepalive_ms), true,
	  "TCP keepalive idle time of new connections, then probes every third of it, "
	  "3 missed = reset (0 = off)" },
	/* history (protocol-v1-ext.md section 4; relay/history.c) */
	{ "history-size", "RELAY_HISTORY_SIZE", RL_OPT_UINT, "0", 0, 100000, OFF(history_size),
	  false, "messages each room keeps for clients that resume (0 = history off)" },
	{ "history-room-bytes", "RELAY_HISTORY_ROOM_BYTES", RL_OPT_SIZE, "1M", 1, 1024 * MiB,
	  OFF(history_room_bytes), false, "bytes of history one room may keep" },
	{ "history-total-bytes", "RELAY_HISTORY_TOTAL_BYTES", RL_OPT_SIZE, "256M", 1,
	  1024 * 1024 * MiB, OFF(history_total_bytes), false,
	  "bytes of history all rooms together may keep" },
	{ "history-ttl", "RELAY_HISTORY_TTL", RL_OPT_DURATION, "300", 0, 30 * DAY_MS,
	  OFF(history_ttl_ms), false,
	  "how long a room without members keeps its history, after its last message or leave" },
	{ "log-level", "RELAY_LOG_LEVEL", RL_OPT_LOGLEVEL, "info", 0, 0, OFF(log_level), true,
	  "error, warn, info or debug" },
	{ "debug", "RELAY_DEBUG", RL_OPT_BOOL, "false", 0, 0, OFF(debug), false,
	  "debug logging, and \"worker\":K in the HELLO ack" },
	/* ops (config.c, admin.c); min 0: may be empty (= not set) */
	{ "config", "RELAY_CONFIG", RL_OPT_STRING, "", 0, sizeof(((struct rl_config *)0)->config),
	  OFF(config), false, "INI configuration file, same keys as these options" },
	{ "admin", "RELAY_ADMIN", RL_OPT_STRING, "", 0, sizeof(((struct rl_config *)0)->admin),
	  OFF(admin), false, "HOST:PORT of the admin HTTP endpoint (/health /metrics /stats /rooms)" },
	/* TLS listener (net/tls.c); the files are re-read at every SIGHUP */
	{ "tls-port", "RELAY_TLS_PORT", RL_OPT_PORT, "", 0, 65535, OFF(tls_port), false,
	  "TLS port (0 = ephemeral; unset = no TLS listener); needs --tls-cert and --tls-key" },
	{ "tls-cert", "RELAY_TLS_CERT", RL_OPT_STRING, "", 0,
	  sizeof(((struct rl_config *)0)->tls_cert), OFF(tls_cert), false,
	  "PEM certificate chain for the TLS and wss:// listeners (re-read on SIGHUP)" },
	{ "tls-key", "RELAY_TLS_KEY", RL_OPT_STRING, "", 0, sizeof(((struct rl_config *)0)->tls_key),
	  OFF(tls_key), false, "PEM private key for the TLS and wss:// listeners (re-read on SIGHUP)" },
	{ "admin-token-file", "RELAY_ADMIN_TOKEN_FILE", RL_OPT_STRING, "", 0,
	  sizeof(((struct rl_config *)0)->admin_token_file), OFF(admin_token_file), false,
	  "file holding the bearer token that /metrics, /stats and /rooms require" },
	/* access control (relay/auth.c, protocol-v1-ext.md §2): the key files are
	 * re-read at every SIGHUP */
	{ "auth-key", "RELAY_AUTH_KEY", RL_OPT_LIST, "", 0,
	  sizeof(((struct rl_config *)0)->auth_keys), OFF(auth_keys), true,
	  "token key [KID=]FILE (HS256 secret or Ed25519 public key PEM); repeat or "
	  "comma-separate for rotation; set: every client must authenticate" },
	{ "auth-audience", "RELAY_AUTH_AUDIENCE", RL_OPT_STRING, "", 0,
	  sizeof(((struct rl_config *)0)->auth_audience), OFF(auth_audience), true,
	  "tokens must name this audience in aud (unset: aud is not checked)" },
	{ "auth-leeway", "RELAY_AUTH_LEEWAY", RL_OPT_DURATION, "30", 0, 3600 * 1000ull,
	  OFF(auth_leeway_ms), true, "clock skew allowed on token exp and nbf" },
	{ "hello-timeout", "RELAY_HELLO_TIMEOUT", RL_OPT_DURATION, "5", 0, DAY_MS, OFF(hello_ms),
	  true, "with --auth-key: a client must authenticate within this (0 = off)" },
	/* cluster (cluster/cluster.c, docs/cluster.md); min 0: may be empty */
	{ "cluster", "RELAY_CLUSTER", RL_OPT_STRING, "", 0,
	  sizeof(((struct rl_config *)0)->cluster), OFF(cluster), false,
	  "cluster bus: redis://HOST[:PORT] or unix:PATH (empty: a single node)" },
	{ "cluster-password-file", "RELAY_CLUSTER_PASSWORD_FILE", RL_OPT_STRING, "", 0,
	  sizeof(((struct rl_config *)0)->cluster_password_file), OFF(cluster_password_file), false,
	  "file whose first line is the bus password (AUTH)" },
	{ "node-id", "RELAY_NODE_ID", RL_OPT_STRING, "", 0,
	  sizeof(((struct rl_config *)0)->node_id), OFF(node_id), false,
	  "this node's cluster id, 1-32 of A-Z a-z 0-9 . _ - (empty: host name, port and "
	  "random digits)" },
	{ "cluster-prefix", "RELAY_CLUSTER_PREFIX", RL_OPT_STRING, "relay:", 1,
	  sizeof(((struct rl_config *)0)->cluster_prefix), OFF(cluster_prefix), false,
	  "prefix of every channel and key the cluster uses on the bus" },
	{ "cluster-node-ttl", "RELAY_CLUSTER_NODE_TTL", RL_OPT_DURATION, "10", 500, DAY_MS,
	  OFF(cluster_ttl_ms), false,
	  "a node not heard from this long no longer counts in room members" },
	{ "cluster-linger", "RELAY_CLUSTER_LINGER", RL_OPT_DURATION, "2", 0, DAY_MS,
	  OFF(cluster_linger_ms), false,
	  "time a room's channel stays subscribed after its last local member left" },
	{ "cluster-queue-limit", "RELAY_CLUSTER_QUEUE_LIMIT", RL_OPT_SIZE, "64M", 64 * KiB,
	  16384 * MiB, OFF(cluster_queue), false,
	  "bytes each cluster bridge queue may hold; beyond it messages are dropped, counted "
	  "and announced to members as gap events" },
	{ "cluster-required", "RELAY_CLUSTER_REQUIRED", RL_OPT_BOOL, "false", 0, 0,
	  OFF(cluster_required), false, "/health answers 503 while the cluster bus link is down" },
	/* WebSocket listener (net/ws.c) */
	{ "ws-port", "RELAY_WS_PORT", RL_OPT_PORT, "", 0, 65535, OFF(ws_port), false,
	  "WebSocket port, path /relay (0 = ephemeral; unset = no WebSocket listener)" },
	{ "ws-tls", "RELAY_WS_TLS", RL_OPT_BOOL, "false", 0, 0, OFF(ws_tls), false,
	  "TLS on the WebSocket listener: wss:// on --ws-port, with the certificate of "
	  "--tls-cert and --tls-key (re-read on SIGHUP)" },
	{ "ws-allowed-origins", "RELAY_WS_ALLOWED_ORIGINS", RL_OPT_STRING, "", 0,
	  sizeof(((struct rl_config *)0)->ws_origins), OFF(ws_origins), false,
	  "comma-separated origins (scheme://host[:port]) a browser may connect from "
	  "(unset = any; requests without Origin are allowed)" },
	{ "web-root", "RELAY_WEB_ROOT", RL_OPT_STRING, "", 0,
	  sizeof(((struct rl_config *)0)->web_root), OFF(web_root), false,
	  "directory of static files served on the WebSocket listener (a development "
	  "convenience; unset = none)" },
	/* limits (net/limit.c, relay/room.c; protocol-v1-ext.md §3): off by
	 * default, as in NATS and Redis, so v1 clients see v1 behaviour. A
	 * connection over a rate is read more slowly, never answered with an
	 * error and never loses a frame. */
	{ "max-connections-per-ip", "RELAY_MAX_CONNECTIONS_PER_IP", RL_OPT_UINT, "0", 0, 10000000,
	  OFF(max_conns_ip), true,
	  "connections one client address may hold open; more are refused at accept with "
	  "TOO_MANY_CONNECTIONS (0 = off)" },
	{ "max-rooms", "RELAY_MAX_ROOMS", RL_OPT_UINT, "0", 0, 1000000000, OFF(max_rooms_total), true,
	  "rooms the server holds at once; a JOIN_ROOM that would create one more gets "
	  "TOO_MANY_ROOMS (0 = unlimited)" },
	{ "publish-rate", "RELAY_PUBLISH_RATE", RL_OPT_UINT, "0", 0, RL_OPT_RATE_MAX, OFF(pub_rate),
	  true, "MESSAGE frames per second one connection may send; a faster sender is read "
	  "more slowly, nothing is lost (0 = off)" },
	{ "publish-burst", "RELAY_PUBLISH_BURST", RL_OPT_UINT, "0", 0, RL_OPT_BURST_MAX,
	  OFF(pub_burst), true, "MESSAGE frames sent at once beyond --publish-rate (0 = one "
	  "second's worth)" },
	{ "publish-bytes-rate", "RELAY_PUBLISH_BYTES_RATE", RL_OPT_SIZE, "0", 0, RL_OPT_BYTES_RATE_MAX,
	  OFF(pub_bytes_rate), true, "MESSAGE frame bytes per second one connection may send; "
	  "a faster sender is read more slowly (0 = off)" },
	{ "publish-bytes-burst", "RELAY_PUBLISH_BYTES_BURST", RL_OPT_SIZE, "0", 0, RL_OPT_BURST_MAX,
	  OFF(pub_bytes_burst), true, "MESSAGE frame bytes sent at once beyond "
	  "--publish-bytes-rate (0 = one second's worth)" },
	{ "join-rate", "RELAY_JOIN_RATE", RL_OPT_UINT, "0", 0, RL_OPT_RATE_MAX, OFF(join_rate), true,
	  "JOIN_ROOM and LEAVE_ROOM frames per second one connection may send; a faster "
	  "sender is read more slowly (0 = off)" },
	{ "join-burst", "RELAY_JOIN_BURST", RL_OPT_UINT, "0", 0, RL_OPT_BURST_MAX, OFF(join_burst),
	  true, "JOIN_ROOM and LEAVE_ROOM frames sent at once beyond --join-rate (0 = one "
	  "second's worth)" },
};
const size_t rl_options_count = sizeof(rl_options) / sizeof(rl_options[0]);
_Static_assert(sizeof(rl_options) / sizeof(rl_options[0]) <= RL_OPTIONS_MAX,
	       "raise RL_OPTIONS_MAX");

static const char *const type_hint[RL_OPT_NTYPES] = {
	[RL_OPT_STRING] = "a string",
	[RL_OPT_UINT] = "an integer",
	[RL_OPT_SIZE] = "a size in bytes (suffix K, M or G allowed)",
	[RL_OPT_DURATION] = "a duration in seconds (or with suffix ms, s, m; 0 or at least 1 ms)",
	[RL_OPT_BOOL] = "a boolean (1/0, true/false, yes/no, on/off)",
	[RL_OPT_LOGLEVEL] = "one of error, warn, info, debug",
	[RL_OPT_PORT] = "a port (0 = ephemeral), or empty for off",
	[RL_OPT_MEMSIZE] = ("a size in bytes (suffix K, M or G allowed) or a percentage of "
			    "physical memory (N%)"),
	[RL_OPT_LIST] = "a comma-separated list without empty entries",
};

static const char *const type_metavar[RL_OPT_NTYPES] = {
	[RL_OPT_STRING] = " STRING",
	[RL_OPT_UINT] = " N",
	[RL_OPT_SIZE] = " BYTES",
	[RL_OPT_DURATION] = " SECONDS",
	[RL_OPT_BOOL] = "",
	[RL_OPT_LOGLEVEL] = " LEVEL",
	[RL_OPT_PORT] = " PORT",
	[RL_OPT_MEMSIZE] = " BYTES|N%",
	[RL_OPT_LIST] = " LIST",
};

const struct rl_option *rl_option_find(const char *name)
{
	for (size_t i = 0; i < rl_options_count; i++)
		if (strcmp(rl_options[i].name, name) == 0)
			return &rl_options[i];
	return NULL;
}

static int parse_u64(const char *s, uint64_t *out, const char **end)
{
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	char *e;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno)
		return -EINVAL;
	*out = v;
	*end = e;
	return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	const char *e;
	uint64_t v, mul = 1;
	if (parse_u64(s, &v, &e))
		return -EINVAL;
	if (*e == 'k' || *e == 'K')
		mul = KiB, e++;
	else if (*e == 'm' || *e == 'M')
		mul = MiB, e++;
	else if (*e == 'g' || *e == 'G')
		mul = 1024 * MiB, e++;
	if (mul > 1 && (strcmp(e, "iB") == 0 || strcmp(e, "B") == 0))
		e += strlen(e);
	if (*e || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

/* "<n>%" (0-100) of physical memory, or a size. */
static int parse_memsize(const char *s, uint64_t *out)
{
	const char *e;
	uint64_t pct;
	if (parse_u64(s, &pct, &e) == 0 && strcmp(e, "%") == 0) {
		long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
		if (pct > 100 || pages <= 0 || psize <= 0)
			return -EINVAL;
		*out = (uint64_t)pages * (uint64_t)psize / 100 * pct;
		return 0;
	}
	return parse_size(s, out);
}

static int parse_duration(const char *s, uint64_t *out_ms)
{
	char *e;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	double v = strtod(s, &e);
	if (errno || v < 0 || v > 1e12)
		return -EINVAL;
	double ms;
	if (*e == 0 || strcmp(e, "s") == 0)
		ms = v * 1000.0;
	else if (strcmp(e, "ms") == 0)
		ms = v;
	else if (strcmp(e, "m") == 0 || strcmp(e, "min") == 0)
		ms = v * 60000.0;
	else
		return -EINVAL;
	/* Rounded to the millisecond; a value that is not 0 but would round to
	 * 0 is refused, not taken as 0: that would silently turn a timeout off. */
	uint64_t r = (uint64_t)(ms + 0.5);
	if (r == 0 && v > 0)
		return -EINVAL;
	*out_ms = r;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off", "" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcasecmp(s, yes[i]) == 0)
			return *out = true, 0;
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (strcasecmp(s, no[i]) == 0)
			return *out = false, 0;
	return -EINVAL;
}

/* Whether the comma-separated <val> has an empty (or blank) entry. */
static bool list_has_empty(const char *val)
{
	const char *p = val;
	for (;;) {
		size_t n = strcspn(p, ",");
		if (strspn(p, " \t") >= n)
			return true;
		if (p[n] == '\0')
			return false;
		p += n + 1;
	}
}

/* <val> as error messages quote it: whole up to 64 bytes, else its first
 * bytes (never a partial UTF-8 character) and its length, so the option's
 * name after it is never cut off by the message buffer. */
static const char *option_quoted(const char *val, char *buf, size_t cap)
{
	size_t n = strlen(val), keep = 48;
	if (n <= 64) {
		snprintf(buf, cap, "'%s'", val);
		return buf;
	}
	while (keep > 0 && ((unsigned char)val[keep] & 0xC0) == 0x80)
		keep--; /* back to the start of a character */
	snprintf(buf, cap, "'%.*s...' (%zu bytes)", (int)keep, val, n);
	return buf;
}

static int option_bad(const struct rl_option *o, const char *val, char *err, size_t n)
{
	char q[96];
	const char *quoted = option_quoted(val, q, sizeof(q));
	if (o->type == RL_OPT_LIST && *val && list_has_empty(val))
		snprintf(err, n, "invalid value %s for --%s: expected %s", quoted, o->name,
			 type_hint[o->type]);
	else if (o->type == RL_OPT_STRING || o->type == RL_OPT_LIST)
		snprintf(err, n, "invalid value %s for --%s: expected %" PRIu64 "..%" PRIu64
			 " characters", quoted, o->name, o->min, o->max - 1);
	else if (o->type == RL_OPT_UINT || o->type == RL_OPT_SIZE || o->type == RL_OPT_PORT ||
		 o->type == RL_OPT_MEMSIZE)
		snprintf(err, n, "invalid value %s for --%s: expected %s in %" PRIu64 "..%" PRIu64,
			 quoted, o->name, type_hint[o->type], o->min, o->max);
	else if (o->type == RL_OPT_DURATION)
		snprintf(err, n, "invalid value %s for --%s: expected %s, at most %" PRIu64 " s",
			 quoted, o->name, type_hint[o->type], o->max / 1000);
	else
		snprintf(err, n, "invalid value %s for --%s: expected %s", quoted, o->name,
			 type_hint[o->type]);
	return -EINVAL;
}

int rl_option_set(struct rl_config *cfg, const struct rl_option *o, const char *val,
		  char *err, size_t errlen)
{
	void *p = (char *)cfg + o->off;
	uint64_t v = 0;
	const char *e;
	int rc = 0;

	switch (o->type) {
	case RL_OPT_LIST:
	case RL_OPT_STRING: {
		size_t n = strlen(val);
		if (n < o->min || n >= o->max ||
		    (o->type == RL_OPT_LIST && n && list_has_empty(val)))
			return option_bad(o, val, err, errlen);
		memcpy(p, val, n + 1);
		return 0;
	}
	case RL_OPT_BOOL:
		return parse_bool(val, p) ? option_bad(o, val, err, errlen) : 0;
	case RL_OPT_LOGLEVEL: {
		int l = rl_log_level_parse(val);
		if (l < 0)
			return option_bad(o, val, err, errlen);
		*(uint64_t *)p = (uint64_t)l;
		return 0;
	}
	case RL_OPT_PORT:
		if (*val == '\0' || strcasecmp(val, "off") == 0) {
			*(uint64_t *)p = RL_PORT_OFF;
			return 0;
		}
		__attribute__((fallthrough)); /* otherwise a number, as RL_OPT_UINT */
	case RL_OPT_UINT:
		rc = parse_u64(val, &v, &e);
		if (!rc && *e)
			rc = -EINVAL;
		break;
	case RL_OPT_SIZE:
		rc = parse_size(val, &v);
		break;
	case RL_OPT_MEMSIZE:
		rc = parse_memsize(val, &v);
		break;
	case RL_OPT_DURATION:
		rc = parse_duration(val, &v);
		break;
	default:
		rc = -EINVAL;
	}
	if (rc || v < o->min || v > o->max)
		return option_bad(o, val, err, errlen);
	*(uint64_t *)p = v;
	return 0;
}

int rl_option_append(struct rl_config *cfg, const struct rl_option *o, const char *val,
		     char *err, size_t errlen)
{
	const char *cur = (const char *)cfg + o->off;
	char *both;

	if (o->type != RL_OPT_LIST || *cur == '\0')
		return rl_option_set(cfg, o, val, err, errlen);
	if (asprintf(&both, "%s,%s", cur, val) < 0) {
		snprintf(err, errlen, "--%s: out of memory", o->name);
		return -EINVAL;
	}
	int rc = rl_option_set(cfg, o, both, err, errlen);
	free(both);
	return rc;
}

void rl_option_format(const struct rl_config *cfg, const struct rl_option *o, char *buf,
		      size_t cap)
{
	const void *p = (const char *)cfg + o->off;
	switch (o->type) {
	case RL_OPT_LIST:
	case RL_OPT_STRING:
		snprintf(buf, cap, "%s", (const char *)p);
		break;
	case RL_OPT_BOOL:
		snprintf(buf, cap, "%s", *(const bool *)p ? "true" : "false");
		break;
	case RL_OPT_LOGLEVEL:
		snprintf(buf, cap, "%s", rl_log_level_name((int)*(const uint64_t *)p));
		break;
	case RL_OPT_PORT:
		if (*(const uint64_t *)p == RL_PORT_OFF)
			snprintf(buf, cap, "%s", "");
		else
			snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)p);
		break;
	case RL_OPT_DURATION: {
		uint64_t ms = *(const uint64_t *)p;
		if (ms % 1000)
			snprintf(buf, cap, "%" PRIu64 "ms", ms);
		else
			snprintf(buf, cap, "%" PRIu64, ms / 1000);
		break;
	}
	default:
		snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)p);
	}
}

void rl_config_defaults(struct rl_config *cfg)
{
	char err[256];
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < rl_options_count; i++)
		if (rl_option_set(cfg, &rl_options[i], rl_options[i].def, err, sizeof(err)))
			abort(); /* a bad default is a bug in the table */
}

/* A TLS listener (--tls-port, or --ws-tls for wss://) needs a certificate
 * and its key; they mean nothing without one. */
static int options_check_tls(const struct rl_config *cfg, char *err, size_t errlen)
{
	bool port = cfg->tls_port != RL_PORT_OFF, on = port || cfg->ws_tls;
	if (on && (!cfg->tls_cert[0] || !cfg->tls_key[0])) {
		snprintf(err, errlen, "--%s needs --tls-cert and --tls-key",
			 port ? "tls-port" : "ws-tls");
		return -EINVAL;
	}
	if (!on && (cfg->tls_cert[0] || cfg->tls_key[0])) {
		snprintf(err, errlen, "--%s is set but neither --tls-port nor --ws-tls is",
			 cfg->tls_cert[0] ? "tls-cert" : "tls-key");
		return -EINVAL;
	}
	if (port && cfg->tls_port != 0 && cfg->tls_port == cfg->port) {
		snprintf(err, errlen, "--tls-port and --port must differ (both %" PRIu64 ")",
			 cfg->port);
		return -EINVAL;
	}
	return 0;
}

/* The WebSocket options mean nothing without its listener. */
static int options_check_ws(const struct rl_config *cfg, char *err, size_t errlen)
{
	bool on = cfg->ws_port != RL_PORT_OFF;
	if (!on && (cfg->ws_origins[0] || cfg->web_root[0] || cfg->ws_tls)) {
		snprintf(err, errlen, "--%s is set but --ws-port is not",
			 cfg->ws_origins[0] ? "ws-allowed-origins"
			 : cfg->web_root[0] ? "web-root"
					    : "ws-tls");
		return -EINVAL;
	}
	if (on && cfg->ws_port != 0 && cfg->ws_port == cfg->port) {
		snprintf(err, errlen, "--ws-port and --port must differ (both %" PRIu64 ")",
			 cfg->port);
		return -EINVAL;
	}
	return 0;
}

int rl_config_check(const struct rl_config *cfg, char *err, size_t errlen)
{
	/* protocol-v1-ext.md 5: history and cluster mode are not combined in
	 * this version (docs/architecture.md says what combining them takes). */
	if (cfg->history_size > 0 && cfg->cluster[0]) {
		snprintf(err, errlen, "--history-size and --cluster cannot be used together "
				      "(history is per node; see docs/cluster.md)");
		return -EINVAL;
	}
	/* protocol-v1.md 2a: the server never sends a frame longer than
	 * max_frame. An authenticated HELLO ack adds userId (128 bytes, up to
	 * 256 escaped), expiresAt and features: at most ~640 bytes with every
	 * extension and --debug on, more than the smallest max_frame allows. */
	if (cfg->auth_keys[0] && cfg->max_frame < RL_AUTH_MAX_FRAME_MIN) {
		snprintf(err, errlen,
			 "--max-frame-bytes (%" PRIu64 ") must be at least %d with --auth-key "
			 "(the HELLO ack of an authenticated client must fit)",
			 cfg->max_frame, RL_AUTH_MAX_FRAME_MIN);
		return -EINVAL;
	}
	if (cfg->out_low > cfg->out_high) {
		snprintf(err, errlen, "--outbound-low-watermark (%" PRIu64
			 ") must not exceed --outbound-high-watermark (%" PRIu64 ")",
			 cfg->out_low, cfg->out_high);
		return -EINVAL;
	}
	if (cfg->out_high > cfg->out_hard) {
		snprintf(err, errlen, "--outbound-high-watermark (%" PRIu64
			 ") must not exceed --outbound-hard-limit (%" PRIu64 ")",
			 cfg->out_high, cfg->out_hard);
		return -EINVAL;
	}
	int rc = options_check_tls(cfg, err, errlen);
	return rc ? rc : options_check_ws(cfg, err, errlen);
}

void rl_options_usage(FILE *f)
{
	fprintf(f, "usage: relayd [options]\n\n"
		   "Every option can also be set in the environment (shown in brackets);\n"
		   "the command line wins. Durations are seconds unless suffixed ms/s/m,\n"
		   "rounded to the millisecond (0 or at least 1 ms: 0.0001 is refused, not\n"
		   "taken as 0 = off); sizes are bytes unless suffixed K/M/G.\n\n");
	for (size_t i = 0; i < rl_options_count; i++) {
		const struct rl_option *o = &rl_options[i];
		char opt[64];
		snprintf(opt, sizeof(opt), "--%s%s", o->name, type_metavar[o->type]);
		fprintf(f, "  %-34s %s (default: %s) [%s]\n", opt, o->help, *o->def ? o->def : "none",
			o->env);
	}
	fprintf(f, "  %-34s %s\n", "-h, --help", "show this help and exit");
	fprintf(f, "  %-34s %s\n", "-V, --version", "print the version and exit");
}

static int options_from_env(struct rl_config *cfg, bool *given, char *err, size_t n)
{
	for (size_t i = 0; i < rl_options_count; i++) {
		const char *v = getenv(rl_options[i].env);
		if (v)
			given[i] = true;
		if (v && rl_option_set(cfg, &rl_options[i], v, err, n)) {
			size_t l = strlen(err);
			snprintf(err + l, n - l, " (from %s)", rl_options[i].env);
			return -EINVAL;
		}
	}
	return 0;
}

/* Watermarks left at their defaults follow a smaller hard limit down, so
 * `--outbound-hard-limit 256K` alone is a valid configuration. */
void rl_options_fit_watermarks(struct rl_config *cfg, const bool *given)
{
	size_t ilow = (size_t)(rl_option_find("outbound-low-watermark") - rl_options);
	size_t ihigh = (size_t)(rl_option_find("outbound-high-watermark") - rl_options);
	if (!given[ihigh] && cfg->out_high > cfg->out_hard)
		cfg->out_high = cfg->out_hard / 2;
	if (!given[ilow] && cfg->out_low > cfg->out_high)
		cfg->out_low = cfg->out_high / 4;
}

enum rl_opts_result rl_options_parse(struct rl_config *cfg, bool given[RL_OPTIONS_MAX], int argc,
				     char **argv)
{
	struct option lo[sizeof(rl_options) / sizeof(rl_options[0]) + 3];
	bool cli[RL_OPTIONS_MAX] = { false }; /* already seen on the command line */
	char err[512];
	size_t i;

	memset(given, 0, RL_OPTIONS_MAX * sizeof(given[0]));
	rl_config_defaults(cfg);
	if (options_from_env(cfg, given, err, sizeof(err))) {
		fprintf(stderr, "relayd: %s\n", err);
		return RL_OPTS_EXIT_ERR;
	}
	for (i = 0; i < rl_options_count; i++)
		lo[i] = (struct option){ rl_options[i].name,
					 rl_options[i].type == RL_OPT_BOOL ? no_argument
									   : required_argument,
					 NULL, (int)(256 + i) };
	lo[i++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[i++] = (struct option){ "version", no_argument, NULL, 'V' };
	lo[i] = (struct option){ NULL, 0, NULL, 0 };

	opterr = 0;
	optind = 1;
	for (;;) {
		int prev = optind;
		int c = getopt_long(argc, argv, ":hV", lo, NULL);
		if (c == -1)
			break;
		if (c == 'h') {
			rl_options_usage(stdout);
			return RL_OPTS_EXIT_OK;
		}
		if (c == 'V') {
			printf("relayd %s (protocol %d)\n", RL_VERSION, 1);
			return RL_OPTS_EXIT_OK;
		}
		if (c == '?' || c == ':') {
			const char *bad = prev < argc ? argv[prev] : "?";
			if (c == ':')
				fprintf(stderr, "relayd: option '%s' needs a value\n", bad);
			else
				fprintf(stderr, "relayd: unknown option '%s' (see --help)\n", bad);
			return RL_OPTS_EXIT_ERR;
		}
		const struct rl_option *o = &rl_options[c - 256];
		given[c - 256] = true;
		/* A LIST option given again adds to its list (it replaces the environment's). */
		const char *val = o->type == RL_OPT_BOOL ? "true" : optarg;
		int rc = cli[c - 256] ? rl_option_append(cfg, o, val, err, sizeof(err))
				      : rl_option_set(cfg, o, val, err, sizeof(err));
		cli[c - 256] = true;
		if (rc) {
			fprintf(stderr, "relayd: %s\n", err);
			return RL_OPTS_EXIT_ERR;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "relayd: unexpected argument '%s' (see --help)\n", argv[optind]);
		return RL_OPTS_EXIT_ERR;
	}
	rl_options_fit_watermarks(cfg, given);
	if (rl_config_check(cfg, err, sizeof(err))) {
		fprintf(stderr, "relayd: %s\n", err);
		return RL_OPTS_EXIT_ERR;
	}
	return RL_OPTS_RUN;
}
