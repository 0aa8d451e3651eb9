/* cli.h -- relay-cli internals shared by its subsystems.
 *
 *   main.c         options, usage, dispatch to a mode
 *   conn.c         the connection (TCP, TLS with OpenSSL, or WebSocket with
 *                  net/http.c and net/wsframe.c): connect with a
 *                  timeout, framing, requests
 *   event.c        server frames -> struct rl_cli_event; client request payloads
 *   format.c       how events and errors are printed (text, JSON, colour)
 *   input.c        a line reader over a non-blocking fd
 *   interactive.c  the `relay> ` prompt (libedit) and its commands
 *   script.c       `sub` and `pub`
 *   token.c        `token`: mints an access token (no connection)
 *
 * Threading: relay-cli is single-threaded; every object here belongs to the
 * main thread. Nothing is shared with signal handlers except the flag in
 * rl_cli_signalled.
 */
#ifndef RELAY_CLI_H
#define RELAY_CLI_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <relay/protocol.h>

#define RL_CLI_VERSION RELAY_VERSION_STRING /* meson project() version */
#define RL_CLI_CONNECT_TIMEOUT_MS 5000 /* name lookup + TCP connect */
#define RL_CLI_REPLY_TIMEOUT_MS 10000  /* an ack or a heartbeat echo */
#define RL_CLI_MAX_ROOMS 1024	       /* the server's default per-connection cap */
#define RL_CLI_KEEPALIVE_MS 30000      /* HEARTBEAT when idle, unless HELLO says otherwise */

/* ---- options (main.c) ---------------------------------------------------- */

enum rl_cli_mode { RL_CLI_INTERACTIVE = 0, RL_CLI_SUB, RL_CLI_PUB, RL_CLI_TOKEN, RL_CLI_NMODES };

#define RL_CLI_MAX_PATTERNS 64 /* per --rooms-* list (the server's limit) */

/* `token` mode: values as given on the command line, checked by token.c. */
struct rl_cli_token_opts {
	const char *key;		   /* signing key file */
	const char *sub;		   /* the userId */
	const char *kid, *aud, *ttl, *nbf; /* NULL when not given */
	const char *join[RL_CLI_MAX_PATTERNS];
	const char *publish[RL_CLI_MAX_PATTERNS];
	int njoin, npublish; /* may exceed the arrays: then refused */
};

/* TLS to relayd's --tls-port (conn.c). */
struct rl_cli_tls {
	bool on;
	const char *ca; /* trust these CA certificates (PEM) instead of the system's */
	bool insecure;	/* no certificate verification at all (self-signed tests) */
	const char *ws_path; /* WebSocket (--ws URL): the request path; NULL: raw frames */
	bool ws_tls;	     /* --ws wss://: the upgrade goes inside TLS (<on> is set) */
};

struct rl_cli_opts {
	enum rl_cli_mode mode;
	const char *host; /* default 127.0.0.1 */
	const char *port; /* validated 1-65535; default 4000 */
	const char *user; /* HELLO userId, or NULL */
	struct rl_cli_tls tls;
	const char *token; /* HELLO access token (--token, --token-file), or NULL */
	bool color;	  /* colour decided: tty, no NO_COLOR, no --no-color */
	bool json;	  /* sub: whole payloads; pub: raw JSON content */
	long count;	  /* sub: exit after this many messages; 0 = no limit */
	double timeout_s; /* sub: give up after this long; < 0 = never */
	const char *resume_file; /* sub: the room's position is kept in this file */
	char **args;	  /* mode arguments: rooms (sub), room + words (pub) */
	int nargs;
	struct rl_cli_token_opts tok; /* token mode */
};

/* Set (to the signal number) by the SIGINT/SIGTERM/SIGHUP handler. */
extern volatile sig_atomic_t rl_cli_signalled;
/* Set by the SIGWINCH handler; the interactive mode clears it. */
extern volatile sig_atomic_t rl_cli_winch;
/* Installs the handler for SIGINT/SIGTERM/SIGHUP/SIGWINCH and blocks them,
 * so that they are only delivered inside rl_cli_poll (race-free). */
void rl_cli_signals_init(void);
/* poll(2) that lets the blocked signals in while it sleeps. Returns what
 * ppoll returns; -1/EINTR when a signal arrived. */
int rl_cli_poll(struct pollfd *fds, unsigned nfds, int timeout_ms);
/* Milliseconds on the monotonic clock. */
int64_t rl_cli_now_ms(void);
/* Milliseconds left until <deadline> (0 if past); -1 if <deadline> is -1. */
int rl_cli_left_ms(int64_t deadline);

/* ---- events (event.c) -------------------------------------------------- */

enum rl_cli_ev {
	RL_CLI_EV_OTHER = 0,   /* a frame relay-cli does not interpret */
	RL_CLI_EV_HELLO,       /* HELLO ack */
	RL_CLI_EV_JOINED,      /* JOIN_ROOM ack */
	RL_CLI_EV_LEFT,	       /* LEAVE_ROOM ack */
	RL_CLI_EV_MESSAGE,     /* a room message, JSON form */
	RL_CLI_EV_BINARY,      /* a room message, binary form */
	RL_CLI_EV_USER_JOINED, /* presence */
	RL_CLI_EV_USER_LEFT,   /* presence */
	RL_CLI_EV_GAP,         /* cluster mode: messages of a room may have been missed */
	RL_CLI_EV_HEARTBEAT,   /* the echo of our HEARTBEAT */
	RL_CLI_EV_ERROR,       /* a server ERROR */
	RL_CLI_EV_NKINDS
};

/* One decoded server frame. Strings are NUL-terminated (truncated if longer
 * than their buffer); "" when absent. <content> and <payload> point into the
 * frame and are valid only during the callback that received the event. */
struct rl_cli_event {
	enum rl_cli_ev kind;
	char room[RELAY_ROOM_MAX_BYTES + 1];
	char conn[80];			    /* from / connectionId */
	char user[RELAY_USERID_MAX_BYTES + 1]; /* userId */
	char code[32];			    /* ERROR code */
	char message[512];		    /* ERROR message; gap reason */
	char server_version[32];	    /* HELLO ack */
	struct relay_span content;		    /* MESSAGE: raw JSON value; BINARY: data */
	struct relay_span payload;		    /* the whole frame payload */
	uint64_t timestamp_ms;		    /* 0 when absent */
	long members;			    /* JOIN ack; -1 when absent */
	uint32_t max_frame;		    /* HELLO ack; 0 when absent */
	uint32_t heartbeat_ms;		    /* HELLO ack; 0 when absent */
	bool fatal;			    /* ERROR */
	bool binary;			    /* the frame had the BINARY flag */
	/* history (a server with --history-size): */
	char epoch[24];			    /* JOIN ack; "" when absent */
	uint64_t seq;			    /* JOIN ack, deliveries */
	bool has_seq;			    /* <seq> was there */
	int recovered;			    /* JOIN ack with since: 0/1; -1 absent */
};

/* Decodes <f> into <ev>. Returns 0, or -EPROTO when a JSON frame from the
 * server is not valid JSON (then <why> says so). */
int rl_cli_event_decode(const struct relay_frame *f, struct rl_cli_event *ev, char *why,
			size_t whylen);

/* Request payloads, written with the protocol library's JSON writer into
 * <buf>/<cap>. Each returns the payload length, or 0 if it did not fit. */
size_t rl_cli_req_hello(uint8_t *buf, size_t cap, const char *user, const char *token);
size_t rl_cli_req_room(uint8_t *buf, size_t cap, const char *room);
/* JOIN_ROOM that resumes from <epoch>/<seq> (history). */
size_t rl_cli_req_join_since(uint8_t *buf, size_t cap, const char *room, const char *epoch,
			     uint64_t seq);
/* MESSAGE: <content> is text (sent as a JSON string) unless <raw_json>,
 * then it must already be valid JSON (rl_cli_json_check). */
size_t rl_cli_req_message(uint8_t *buf, size_t cap, const char *room, const char *content,
			  size_t len, bool raw_json);
/* Returns 0 when <n> bytes at <p> are one valid JSON text; otherwise -1 and
 * a one-line reason in <why>. */
int rl_cli_json_check(const char *p, size_t n, char *why, size_t whylen);

/* ---- connection (conn.c) ------------------------------------------------ */

struct rl_cli_conn;
/* Receives every event the connection does not consume itself (awaited
 * replies and fatal ERRORs are consumed). Returns 0 to go on, > 0 to make the
 * pump return that value now (the remaining frames are kept for later). */
typedef int rl_cli_event_fn(void *arg, const struct rl_cli_event *ev);

struct rl_cli_conn {
	int fd;
	struct ssl_st *ssl;	    /* TLS (OpenSSL's SSL), or NULL for plain TCP */
	struct ssl_ctx_st *ssl_ctx; /* its context */
	struct relay_decoder dec;
	bool feeding; /* the decoder still holds part of rbuf */
	rl_cli_event_fn *on_event;
	void *arg;
	char conn_id[80]; /* from the HELLO ack */
	char server_version[32];
	uint32_t max_frame; /* the server's, from the HELLO ack */
	int keepalive_ms;   /* send a HEARTBEAT after this long without sending */
	int64_t last_tx_ms; /* when a frame was last sent */
	unsigned ping_seq;  /* tells our round-trip pings from keepalives */
	/* the request in flight, if any (one at a time) */
	enum rl_cli_ev await; /* RL_CLI_EV_OTHER: none */
	char await_room[RELAY_ROOM_MAX_BYTES + 1];
	char await_ping[32]; /* HEARTBEAT: the payload whose echo answers */
	bool await_done;
	struct rl_cli_event reply; /* the ack, or the ERROR that answered */
	char why[768];		   /* why the last call failed */
	struct rl_wsf_dec *wsd;	   /* WebSocket: the frame decoder, or NULL */
	size_t ws_early;	   /* WebSocket: frame bytes read with the 101, at rbuf */
	bool ws_closed;		   /* WebSocket: the server's close frame came */
	uint8_t rbuf[64 * 1024];
};

/* Resolves <host>:<port> and connects, all within <timeout_ms>; with
 * <tls>->on also completes a TLS handshake in that time, verifying the
 * server's certificate and name unless <tls>->insecure. Returns 0, or
 * -errno with a one-line reason in c->why. */
int rl_cli_conn_open(struct rl_cli_conn *c, const char *host, const char *port,
		     const struct rl_cli_tls *tls, int timeout_ms, rl_cli_event_fn *on_event,
		     void *arg);
void rl_cli_conn_close(struct rl_cli_conn *c);

/* Writes one frame, waiting (bounded) while the socket is full. 0 or -errno. */
int rl_cli_conn_send(struct rl_cli_conn *c, uint8_t type, uint8_t flags, const void *payload,
		     size_t len);

/* Reads what the socket has (never blocks) and dispatches the complete frames.
 * Returns 0; > 0 when the handler asked to stop; -EPIPE when the server
 * closed the connection, -ECONNABORTED after a fatal ERROR, -EPROTO on a
 * malformed frame, other -errno (c->why says why in every error case). */
int rl_cli_conn_pump(struct rl_cli_conn *c);

/* Sends a request of <type> (HELLO, JOIN_ROOM, LEAVE_ROOM, HEARTBEAT) and
 * pumps until its answer arrives. Returns 0 when acked (c->reply holds the
 * ack), 1 when a non-fatal ERROR answered it (c->reply holds the ERROR),
 * -ETIMEDOUT, -EINTR on a signal, or a pump error. */
int rl_cli_conn_request(struct rl_cli_conn *c, uint8_t type, const char *room, const void *payload,
			size_t len, int timeout_ms);

/* Keeps an idle connection alive (the server closes silent ones after its
 * idle_timeout): sends an empty HEARTBEAT when nothing was sent for
 * keepalive_ms. 0 or -errno. */
int rl_cli_conn_keepalive(struct rl_cli_conn *c);
/* The poll timeout that honours both <other_ms> (-1: none) and the next
 * keepalive. */
int rl_cli_conn_poll_ms(const struct rl_cli_conn *c, int other_ms);

/* HELLO with <user> (may be NULL); fills conn_id, max_frame, keepalive_ms. */
int rl_cli_conn_hello(struct rl_cli_conn *c, const char *user, const char *token);
/* A HEARTBEAT round trip; *<rtt_us> receives the round-trip time. */
int rl_cli_conn_ping(struct rl_cli_conn *c, int64_t *rtt_us);

/* ---- input lines (input.c) ---------------------------------------------- */

struct rl_cli_input {
	int fd;
	bool eof;
	char *buf;
	size_t len, cap;
	size_t start; /* where the next unreturned line begins */
};

void rl_cli_input_init(struct rl_cli_input *in, int fd);
void rl_cli_input_free(struct rl_cli_input *in);
/* Reads what <in->fd> has. 0, or -errno. Sets in->eof at end of input. */
int rl_cli_input_fill(struct rl_cli_input *in);
/* Returns the next complete line (without "\n" or "\r\n", NUL-terminated,
 * valid until the next fill) and its length in *<n>, or NULL. At EOF the
 * last unterminated line is returned too. */
char *rl_cli_input_line(struct rl_cli_input *in, size_t *n);

/* ---- printing (format.c) ---------------------------------------------- */

enum rl_cli_style {
	RL_CLI_ST_ROOM = 0,
	RL_CLI_ST_SENDER,
	RL_CLI_ST_PRESENCE,
	RL_CLI_ST_ERROR,
	RL_CLI_ST_INFO,
	RL_CLI_NSTYLES
};

/* `[room] sender (HH:MM:SS): content` for MESSAGE/BINARY, `[room] who joined`
 * / `left` for presence, `error CODE: message` for ERROR, to <f>. Control
 * characters in remote text are neutralised (\n and \t kept). */
void rl_cli_fmt_event(FILE *f, const struct rl_cli_event *ev, bool color);
/* The content alone: a JSON string as its text (verbatim), anything else as
 * compact one-line JSON. Used by `sub`. */
void rl_cli_fmt_content(FILE *f, const struct rl_cli_event *ev);
/* The whole payload as one line of compact JSON (binary deliveries become
 * {"room":..,"from":..,"binary":"<base64>"}). Used by `sub --json`. */
void rl_cli_fmt_json_line(FILE *f, const struct rl_cli_event *ev);
/* Writes <n> bytes of valid JSON with the whitespace between tokens removed. */
void rl_cli_fmt_compact(FILE *f, const uint8_t *p, size_t n);
/* Starts/ends a styled span on <f> when <color>. */
void rl_cli_fmt_style(FILE *f, enum rl_cli_style st, bool color);
void rl_cli_fmt_reset(FILE *f, bool color);

/* ---- modes ------------------------------------------------------------ */

/* Each returns the process exit status. */
int rl_cli_interactive(const struct rl_cli_opts *o);
int rl_cli_sub(const struct rl_cli_opts *o);
int rl_cli_pub(const struct rl_cli_opts *o);
int rl_cli_token(const struct rl_cli_opts *o);

/* "relay-cli: <fmt>\n" on stderr. */
void rl_cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* RELAY_CLI_H */
