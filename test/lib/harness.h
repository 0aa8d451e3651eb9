/* harness.h -- test harness shared by the integration, cli, ops, stress and
 * tsan suites: start/stop a real relayd, talk to it as a client.
 *
 * Threading: a struct rl_test_server or rl_test_client belongs to one thread
 * at a time; distinct objects may be used from distinct threads. Exception:
 * the rl_test_send_* functions touch only the socket, so ONE other thread
 * may send on a client while its owner receives (flood tests). The last
 * error text (rl_test_err) is thread-local. Nothing here calls Criterion, so
 * plain executables (the tsan suite) use it too; Criterion tests assert on
 * the return values: cr_assert(c != NULL, "%s", rl_test_err()).
 *
 * Environment (read at rl_test_server_start):
 *   RELAYD_BIN          relayd to run (meson sets it from relayd_exe)
 *   RELAY_TEST_GUARD    optional exec wrapper that kills relayd when the test
 *                       process dies (meson sets it; see spawn_guard.c)
 *   RELAY_TEST_WRAPPER  prefix command, split on spaces, e.g.
 *                       "valgrind --error-exitcode=99 --leak-check=full"
 *   RELAY_TEST_ADDR     host:port of an already-running relayd: nothing is
 *                       spawned, stop returns 0 (tests that need options or
 *                       the process itself check rl_test_external() and skip;
 *                       tests share room names: run Criterion with -j1)
 *   RELAY_TEST_KEEP_LOGS=1  keep relayd's stderr log files (path printed)
 *   RELAY_TEST_TRANSPORT=tls  relayd also gets a TLS listener (--tls-port 0
 *                       and a test certificate made with the openssl command)
 *                       and rl_test_connect speaks TLS to it (tls_client.c),
 *                       so the same test bodies run over TLS
 *   RELAY_TEST_TRANSPORT=ws  relayd also gets a WebSocket listener (--ws-port
 *                       0) and rl_test_connect speaks WebSocket to it
 *                       (ws_client.c): the same test bodies run over it
 *   RELAY_TEST_TRANSPORT=wss  the same over TLS: relayd's WebSocket listener
 *                       (its own --ws-port or one added) gets --ws-tls and
 *                       the test certificate, rl_test_connect does the TLS
 *                       handshake and then the upgrade
 *
 * Returns: functions returning int give 0 or -errno; pointer-returning ones
 * give NULL on failure. Either way rl_test_err() says what went wrong.
 */
#ifndef RELAY_TEST_HARNESS_H
#define RELAY_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- timeouts: the one set every suite uses ------------------------------ */

/* They bound waits for events; a correct relayd is far faster, so they only
 * decide how long a broken one takes to fail. Generous because the suites run
 * under ASan on a shared 2-core machine; the tsan suite's relayd and harness
 * are built with ThreadSanitizer, which slows both down further. */
#if defined(__SANITIZE_THREAD__)
#define RL_TEST_SLOWDOWN 2
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RL_TEST_SLOWDOWN 2
#endif
#endif
#ifndef RL_TEST_SLOWDOWN
#define RL_TEST_SLOWDOWN 1
#endif

/* A reply a correct server sends at once; also what 0 means for every
 * <timeout_ms> of the client functions. */
#define RL_TEST_REPLY_MS (5000 * RL_TEST_SLOWDOWN)
/* relayd printing its listening line; relayd exiting after SIGTERM; a
 * one-shot relayd run (what 0 means for the server functions). */
#define RL_TEST_START_MS (10000 * RL_TEST_SLOWDOWN)
/* The same under RELAY_TEST_WRAPPER (valgrind runs relayd ~20x slower). */
#define RL_TEST_WRAPPED_START_MS 60000
/* Bulk work: a flood or a burst of thousands of frames to get through, a
 * child program (relay-cli, relay-bench) to reach its next step. */
#define RL_TEST_BULK_MS (15000 * RL_TEST_SLOWDOWN)
/* Criterion's .timeout for one test body, in seconds. */
#define RL_TEST_BODY_S 60

/* Text of the last failure on this thread ("" if none). */
const char *rl_test_err(void);
/* Sets the last failure text (printf-style); returns -1 for convenience. */
int rl_test_set_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic milliseconds. */
int64_t rl_test_now_ms(void);
/* Wall-clock milliseconds since the Unix epoch. */
int64_t rl_test_wall_ms(void);

/* ---- the server process ------------------------------------------------- */

struct rl_test_server {
	pid_t pid;          /* 0 when external or not running */
	bool external;      /* RELAY_TEST_ADDR in use */
	char host[64];      /* from the listening line */
	uint16_t port;      /* from the listening line */
	uint16_t tls_port;  /* from "relayd tls listening on ...", or 0 */
	uint16_t ws_port;   /* from "relayd ws[s] listening on ...", or 0 */
	int workers;        /* from the listening line */
	char line[256];     /* the listening line itself, without '\n' */
	int out_fd;         /* read end of relayd's stdout, or -1 */
	char log_path[128]; /* relayd's stderr, a file under $TMPDIR or /tmp */
	int pidfd;          /* pidfd of relayd, or -1 */
	char *out;          /* everything read from relayd's stdout so far (NUL-terminated) */
	size_t out_len;
	int status;         /* result of the first stop/wait that saw the exit */
};

/* True when RELAY_TEST_ADDR points the tests at a running server. */
bool rl_test_external(void);

/* Starts relayd with "--port 0" (unless <args> holds "--port"), then <args>
 * (NULL-terminated, may be NULL), with the current environment plus <env>
 * ("NAME=value" strings, NULL-terminated, may be NULL; they override).
 * Waits up to <timeout_ms> (0: RL_TEST_START_MS, or RL_TEST_WRAPPED_START_MS
 * under a wrapper) for the line
 * "relayd listening on HOST:PORT (N workers)" and fills <s>. On failure
 * relayd is killed, its stderr is copied to ours, and -errno is returned. */
int rl_test_server_start(struct rl_test_server *s, const char *const *args,
			 const char *const *env, int timeout_ms);

/* Runs relayd with <args> exactly (no --port added), waits up to <timeout_ms>
 * for it to exit by itself, and returns its status as rl_test_server_stop
 * does. Its stdout and stderr are captured into <out>/<err> (NUL-terminated,
 * truncated to the capacity; either may be NULL). For "bad option" tests. */
int rl_test_run_relayd(const char *const *args, const char *const *env, int timeout_ms,
		       char *out, size_t out_cap, char *err, size_t err_cap);

/* The environment for a child process: ours, with the "NAME=value" strings
 * of <env> (NULL-terminated, may be NULL) replacing or adding variables.
 * A malloc'd array of borrowed strings (free only the array), or NULL. */
char **rl_test_envp(const char *const *env);

/* Finds a stdout line starting with <prefix> among the lines relayd printed
 * (those before the listening line included), waiting up to <timeout_ms>
 * (0: the start default) for more; copies the whole line (no '\n') into
 * <buf>. 0 or -errno. E.g. prefix "relayd admin on ". */
int rl_test_server_stdout_line(struct rl_test_server *s, const char *prefix, char *buf, size_t cap,
			       int timeout_ms);

/* Sends <sig> to relayd. */
int rl_test_server_signal(struct rl_test_server *s, int sig);

/* Waits up to <timeout_ms> for relayd to exit by itself. Returns its exit
 * status (0-255), 128+N if killed by signal N, or -ETIMEDOUT (still running). */
int rl_test_server_wait(struct rl_test_server *s, int timeout_ms);

/* SIGTERM, then wait up to <timeout_ms> (0: as for rl_test_server_start);
 * SIGKILL on timeout. Returns the exit status (0-255), 128+N if killed by
 * signal N, -ETIMEDOUT if it had to be killed. External servers: returns 0.
 * The stderr log is kept until rl_test_server_free, so tests can grep it.
 * A non-zero status copies the log's tail to our stderr. Idempotent. */
int rl_test_server_stop(struct rl_test_server *s, int timeout_ms);

/* Stops (SIGKILL) if still running and deletes the log file. */
void rl_test_server_free(struct rl_test_server *s);

/* Whether relayd's stderr log contains <needle> (reads the whole file). */
bool rl_test_server_log_has(const struct rl_test_server *s, const char *needle);
/* Polls the log for <needle> until <timeout_ms> passed: for what relayd
 * does with no other signal a test can wait on (a log line is the event). */
bool rl_test_server_log_wait(const struct rl_test_server *s, const char *needle, int timeout_ms);
/* Copies up to <cap>-1 bytes of the log's tail into <buf>; returns the length. */
size_t rl_test_server_log_tail(const struct rl_test_server *s, char *buf, size_t cap);
/* Number of lines in the log (0 if unreadable). */
size_t rl_test_server_log_lines(const struct rl_test_server *s);

/* relayd's resident set (VmRSS of /proc/PID/status) in KiB, or -errno. */
long rl_test_server_rss_kib(const struct rl_test_server *s);

/* Kills (SIGKILL) and reaps every server this process started and has not
 * stopped. Registered with atexit(); also call it from a Criterion .fini so
 * a failed assertion never leaves relayd behind. */
void rl_test_cleanup_all(void);

/* ---- clients ------------------------------------------------------------ */

/* A received frame. <payload> is owned by the client (NUL-terminated for
 * convenience, the NUL not counted in <len>) and valid until the next
 * receive on that client. */
struct rl_test_frame {
	uint8_t version;
	uint8_t type;
	uint8_t flags;
	uint32_t len;
	const uint8_t *payload;
};

struct rl_test_client; /* opaque */

/* Connects (blocking, up to <timeout_ms>; 0: RL_TEST_REPLY_MS) to the server:
 * over TLS to its TLS port when RELAY_TEST_TRANSPORT=tls, over WebSocket to
 * its WebSocket port when RELAY_TEST_TRANSPORT=ws (wss: WebSocket over TLS),
 * else plain TCP. */
struct rl_test_client *rl_test_connect(const struct rl_test_server *s, int timeout_ms);
/* rl_test_connect from local address <src> (NULL: any), e.g. "127.0.0.2":
 * every 127.0.0.0/8 address reaches a relayd listening on 127.0.0.1, so
 * tests can be several clients by address. */
struct rl_test_client *rl_test_connect_from(const struct rl_test_server *s, const char *src,
					    int timeout_ms);
/* Plain TCP to the server's TCP port with SO_RCVBUF <rcvbuf> and
 * TCP_MAXSEG <mss> set before the SYN: the peer of a slow, narrow link.
 * (Shrinking SO_RCVBUF after connect on loopback, whose MSS is 64 KiB,
 * leaves a window below one segment: data then moves only at the pace of
 * zero-window probes, a few KB/s.) */
struct rl_test_client *rl_test_connect_narrow(const struct rl_test_server *s, int rcvbuf, int mss,
					      int timeout_ms);
/* Plain TCP, whatever RELAY_TEST_TRANSPORT says. */
struct rl_test_client *rl_test_connect_addr(const char *host, uint16_t port, int timeout_ms);
/* The same from local address <src> (NULL: any). */
struct rl_test_client *rl_test_connect_addr_from(const char *host, uint16_t port, const char *src,
						 int timeout_ms);

/* ---- TLS (tls_client.c) --------------------------------------------------- */

/* True when RELAY_TEST_TRANSPORT=tls. */
bool rl_test_tls(void);
/* Connects and completes a TLS handshake (the certificate is not verified;
 * rl_test_tls_peer_cert shows which one the server presented). */
struct rl_test_client *rl_test_connect_tls(const char *host, uint16_t port, int timeout_ms);
/* TLS on the plain client <c>, connected a while ago (handshake deadline
 * tests): the handshake within <timeout_ms>. 0 or -errno. */
int rl_test_start_tls(struct rl_test_client *c, int timeout_ms);
/* The server certificate of a TLS client: serial in hex, subject one-line. */
int rl_test_tls_peer_cert(const struct rl_test_client *c, char *serial, size_t scap, char *subject,
			  size_t subcap);
/* The process's test certificate and key (PEM, made with the openssl
 * command on first use, in a temporary directory removed at exit). */
int rl_test_tls_files(const char **cert, const char **key);
/* Makes a self-signed P-256 certificate /CN=<cn> with serial <serial_hex>
 * (and a new key) at <cert>/<key>. 0 or -errno. */
int rl_test_tls_make_cert(const char *cert, const char *key, const char *cn, const char *serial_hex);
/* ---- WebSocket (ws_client.c) ----------------------------------------------- */

/* True when RELAY_TEST_TRANSPORT=ws or wss (the tests speak WebSocket). */
bool rl_test_ws(void);
/* True when RELAY_TEST_TRANSPORT=wss (WebSocket over TLS). */
bool rl_test_wss(void);
/* Connects and upgrades: GET <path> (NULL: /relay) offering relay.v1, with
 * Origin <origin> unless NULL; the 101 is checked (accept key, headers).
 * From then on the client speaks Relay frames in binary messages and
 * checks the server's (ws_client.h). NULL when refused (rl_test_err() has
 * the status line). */
struct rl_test_client *rl_test_connect_ws(const char *host, uint16_t port, const char *path,
					  const char *origin, int timeout_ms);
/* rl_test_connect_ws over TLS (wss://): the handshake (the certificate is
 * not verified), then the upgrade. */
struct rl_test_client *rl_test_connect_wss(const char *host, uint16_t port, const char *path,
					   const char *origin, int timeout_ms);
/* The code of the close frame a WebSocket client received (1005: one
 * without a code), 0 if none yet or not a WebSocket client. The client
 * answers a close frame with its own, then reads the TCP close as EOF. */
int rl_test_ws_close_code(const struct rl_test_client *c);
/* Writes <n> raw bytes (frames a test built) on a WebSocket client. */
int rl_test_ws_send_wire(struct rl_test_client *c, const void *p, size_t n);
/* Listens on an ephemeral 127.0.0.1 port and sets *port: the port is taken
 * while the returned fd is open, and refuses connections once it is closed.
 * Returns the fd, or -1 (rl_test_err() says why). */
int rl_test_loopback_listener(uint16_t *port);
/* Up to <n> bytes as they arrive, waiting up to <timeout_ms> for some: the
 * socket's bytes (decrypted for a TLS client; a WebSocket client's Relay
 * stream). > 0, 0 at EOF, or -1 with errno (ETIMEDOUT, ECONNRESET, ...).
 * For tests that read a raw protocol (HTTP, WebSocket frames) themselves. */
ssize_t rl_test_recv_raw(struct rl_test_client *c, void *buf, size_t n, int timeout_ms);
/* Closes and frees (NULL is fine). */
void rl_test_close(struct rl_test_client *c);
/* The socket (non-blocking, close-on-exec). */
int rl_test_fd(const struct rl_test_client *c);
/* Decoder limit for received frames (default 64 MiB). */
void rl_test_set_max_frame(struct rl_test_client *c, uint32_t max_frame);
/* Shrinks SO_RCVBUF (for slow-consumer tests); returns 0 or -errno. */
int rl_test_set_rcvbuf(struct rl_test_client *c, int bytes);

/* Sends all <n> bytes, waiting up to <timeout_ms> (0: RL_TEST_REPLY_MS) for room in the
 * socket. -EPIPE/-ECONNRESET when the peer is gone, -ETIMEDOUT. */
int rl_test_send_raw(struct rl_test_client *c, const void *p, size_t n, int timeout_ms);
/* One frame: version 1, <type>, <flags>, <payload>/<len>. */
int rl_test_send_frame(struct rl_test_client *c, uint8_t type, uint8_t flags, const void *payload,
		       size_t len);
/* A frame with a chosen version byte (for UNSUPPORTED_VERSION tests). */
int rl_test_send_frame_v(struct rl_test_client *c, uint8_t version, uint8_t type, uint8_t flags,
			 const void *payload, size_t len);
/* A JSON frame whose payload is the printf-formatted text. */
int rl_test_send_json(struct rl_test_client *c, uint8_t type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Appends one encoded frame to <buf> at *<off> (cap bytes); returns 0 or -ENOSPC. */
int rl_test_frame_append(uint8_t *buf, size_t cap, size_t *off, uint8_t type, uint8_t flags,
			 const void *payload, size_t len);

/* Non-blocking receive: 1 and *<out> set when a frame is available now
 * (reads the socket at most once), 0 when none is, -1 when the peer closed
 * or sent a bad frame. For loops that poll() many clients. */
int rl_test_poll_frame(struct rl_test_client *c, const struct rl_test_frame **out);

/* Receives one frame within <timeout_ms>. NULL on timeout, peer close or a
 * malformed frame from the server (rl_test_err says which). */
const struct rl_test_frame *rl_test_recv(struct rl_test_client *c, int timeout_ms);
/* rl_test_recv, then checks the type (and, if <flags> >= 0, the flags). */
const struct rl_test_frame *rl_test_expect(struct rl_test_client *c, uint8_t type, int flags,
					   int timeout_ms);
/* Expects a JSON frame of <type> whose payload equals <json> byte for byte
 * after masking: the values of the top-level keys in <mask> (NULL-terminated,
 * may be NULL) are replaced by "*" before comparing, so
 * rl_test_expect_json(c, RELAY_MSG_MESSAGE, "{\"room\":\"r\",\"from\":*}", keys, t)
 * checks everything but the id. Returns the frame (unmasked) or NULL. */
const struct rl_test_frame *rl_test_expect_json(struct rl_test_client *c, uint8_t type,
						const char *json, const char *const *mask,
						int timeout_ms);
/* Expects an ERROR frame (JSON) with "code" <code> and "fatal" matching the
 * spec's table for that code. */
const struct rl_test_frame *rl_test_expect_error(struct rl_test_client *c, const char *code,
						 int timeout_ms);
/* Expects <code> as a fatal ERROR and then the connection closed by the
 * peer, with no other byte in between. 0 or -1. */
int rl_test_expect_fatal(struct rl_test_client *c, const char *code, int timeout_ms);
/* Waits up to <timeout_ms> for the peer to close (EOF or reset). Fails if a
 * byte arrives first, unless <discard> (then frames are skipped). 0 or -1. */
int rl_test_expect_closed(struct rl_test_client *c, bool discard, int timeout_ms);
/* Succeeds if nothing at all arrives within <ms> (and the peer did not close). */
int rl_test_expect_silence(struct rl_test_client *c, int ms);
/* HEARTBEAT round trip with a unique payload: proves the connection works and
 * that everything sent before it was processed. Frames received before the
 * echo fail the call (use rl_test_sync_skip to skip them). */
int rl_test_ping(struct rl_test_client *c, int timeout_ms);
/* Like rl_test_ping, but skips (and counts into *<skipped>, may be NULL)
 * frames that arrive before the echo. */
int rl_test_sync_skip(struct rl_test_client *c, int timeout_ms, size_t *skipped);

/* ---- protocol conveniences ---------------------------------------------- */

/* HELLO with the given JSON payload (NULL: empty payload, flags 0); expects
 * the ack. Stores the connectionId (and the debug "worker" field, -1 if
 * absent) in the client. Returns the ack frame or NULL. */
const struct rl_test_frame *rl_test_hello(struct rl_test_client *c, const char *json,
					  int timeout_ms);
/* connectionId from the last HELLO ack ("" if none). */
const char *rl_test_conn_id(const struct rl_test_client *c);
/* "worker" from the last HELLO ack (relayd --debug), or -1. */
int rl_test_worker(const struct rl_test_client *c);
/* JSON JOIN_ROOM {"room":"<room>"}, expects the joined ack for that room;
 * stores the member count in *<members> (may be NULL). Skips nothing. */
int rl_test_join(struct rl_test_client *c, const char *room, long *members, int timeout_ms);
/* JSON LEAVE_ROOM, expects the left ack. */
int rl_test_leave(struct rl_test_client *c, const char *room, int timeout_ms);

/* ---- JSON field extraction (top-level object fields via relay_json_parse) ---- */

/* Decoded string value of <key> into <out> (NUL-terminated). Returns the
 * decoded length, or -1 (absent, not a string, invalid JSON, too long). */
long rl_test_json_str(const struct rl_test_frame *f, const char *key, char *out, size_t cap);
/* Integer value of <key> (must be a JSON number without fraction/exponent). */
int rl_test_json_i64(const struct rl_test_frame *f, const char *key, int64_t *out);
/* Boolean value of <key>. */
int rl_test_json_bool(const struct rl_test_frame *f, const char *key, bool *out);
/* Raw bytes of the value of <key> (first to last byte); 0 or -1. */
int rl_test_json_raw(const struct rl_test_frame *f, const char *key, const uint8_t **p,
		     size_t *n);
/* Masks values of the <mask> keys with "*" (see rl_test_expect_json). Writes
 * a NUL-terminated string to <out>; returns its length or -1. */
long rl_test_json_mask(const uint8_t *p, size_t n, const char *const *mask, char *out,
		       size_t cap);

/* Printable rendering of a frame for failure messages (thread-local buffer). */
const char *rl_test_frame_str(const struct rl_test_frame *f);

#ifdef __cplusplus
}
#endif

#endif /* RELAY_TEST_HARNESS_H */
