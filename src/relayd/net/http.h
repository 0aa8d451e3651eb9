/* http.h -- the HTTP/1.1 request head of a WebSocket upgrade (RFC 9112,
 * RFC 6455 §4.2), without sockets: an incremental, strict, bounded parser;
 * the upgrade decision (101 or a refusal status); the origin allow-list;
 * and the exact response bytes (101 with Sec-WebSocket-Accept, or an error
 * with a short text body and Connection: close).
 *
 * The parser hands the request target to the caller: what a path means is
 * the listener's decision (a later --web-root serves files from other
 * paths); rl_http_ws_route is the decision without one.
 *
 * Threading: no global mutable state; a request belongs to its caller (the
 * connection's owner worker); an origin list is read-only once parsed and
 * may be shared by every worker. */
#ifndef RL_HTTP_H
#define RL_HTTP_H

#include <relay/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits. Browsers send a few hundred bytes; cookies make the big ones. */
#define RL_HTTP_MAX_LINE 8192	 /* request line or one header line, CRLF excluded */
#define RL_HTTP_MAX_HEAD 16384	 /* whole head: request line, headers, empty line */
#define RL_HTTP_MAX_HEADERS 64	 /* header lines */
#define RL_HTTP_MAX_ORIGINS 32	 /* entries of an allow-list */
#define RL_HTTP_RESPONSE_MAX 512 /* every response written here fits */
#define RL_HTTP_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

#define RL_HTTP_WS_PATH "/relay"
#define RL_HTTP_WS_PROTOCOL "relay.v1"

enum rl_http_parse_status {
	RL_HTTP_NEED_MORE = 0, /* head incomplete; call again with more bytes */
	RL_HTTP_COMPLETE,      /* head complete and well-formed: r->head_len */
	RL_HTTP_REFUSED,       /* answer r->status (r->why says why); sticky */
	RL_HTTP_NPARSE
};

/* A header field the upgrade needs, as parsed. */
struct rl_http_field {
	struct relay_span v; /* value of its last occurrence, OWS trimmed */
	uint8_t count;	     /* occurrences (saturates at 255) */
};

/* Filled by rl_http_parse; spans point into the caller's buffer. Fields
 * starting with '_' are private. */
struct rl_http_req {
	unsigned status; /* 0, or the HTTP status to answer with once refused */
	const char *why; /* static text naming the rule that refused it */
	size_t head_len; /* COMPLETE: bytes of the head, final CRLF CRLF included */
	struct relay_span method, target;
	struct relay_span path, query; /* target split at the first '?' */
	struct rl_http_field host, key, version, origin;
	bool upgrade_websocket;	 /* an Upgrade list held "websocket" */
	bool connection_upgrade; /* a Connection list held "upgrade" */
	uint8_t protocol_lists;	 /* Sec-WebSocket-Protocol header lines */
	bool protocol_relay;	 /* ... one of which offered relay.v1 */
	bool protocol_bad;	 /* ... one of which was not a list of tokens */
	size_t _line;		 /* offset of the line being read */
	size_t _scan;		 /* bytes already searched for its LF */
	unsigned _nheaders;
};

void rl_http_req_init(struct rl_http_req *r);

/* Parses the request head in <buf>/<len>: every byte received so far on the
 * connection, in one buffer that keeps its address and its earlier bytes
 * between calls (a fixed buffer of RL_HTTP_MAX_HEAD bytes holds any head
 * that can be accepted). Only bytes not seen before are scanned, so feeding
 * one byte at a time costs no more than feeding all at once, and gives the
 * same outcome.
 * Refusals (status): 400 bad syntax (CRLF only; no obsolete line folding; no
 * whitespace before a colon; request target in origin form; a body:
 * Transfer-Encoding or a Content-Length other than 0) or an HTTP version
 * other than 1.1 (505 for a major version other than 1); 414 request line
 * over RL_HTTP_MAX_LINE; 431 a header line over RL_HTTP_MAX_LINE, the head
 * over RL_HTTP_MAX_HEAD, or more than RL_HTTP_MAX_HEADERS header lines. Each
 * limit refuses as soon as the bytes received cross it; when two are
 * crossed, the one crossed first in byte order wins.
 * Bytes after the head (head_len onwards) are not looked at. */
enum rl_http_parse_status rl_http_parse(struct rl_http_req *r, const uint8_t *buf, size_t len);

/* ---- origin allow-list --------------------------------------------------- */

/* Full origins, as --ws-allowed-origins gives them. */
struct rl_http_origins {
	size_t n; /* 0: no list, every origin is allowed */
	struct relay_span v[RL_HTTP_MAX_ORIGINS];
	char *_copy; /* the entries point into this */
};

/* Parses the comma-separated <list> (NULL or "" gives no list). Each entry,
 * trimmed of spaces, is scheme "://" host [":" port] with scheme http or
 * https: no path, no trailing slash, no user info. 0, or -EINVAL with *err
 * (may be NULL) set to a static reason, or -ENOMEM. Startup only. */
int rl_http_origins_parse(struct rl_http_origins *o, const char *list, const char **err);
void rl_http_origins_free(struct rl_http_origins *o);
/* Whether <origin> is on the list: scheme and host compare case-insensitively
 * (RFC 6454), so do ports (digits). A NULL or empty list allows everything. */
bool rl_http_origin_allowed(const struct rl_http_origins *o, struct relay_span origin);

/* ---- decisions --------------------------------------------------------------- */

/* The upgrade decision for a COMPLETE request aimed at the WebSocket path.
 * Returns 101, or the refusal status (also stored in r->status, with
 * r->why). Checks, first failure wins: method GET (405); exactly one
 * non-empty Host (400); Upgrade lists websocket, Connection lists upgrade
 * (400); exactly one Sec-WebSocket-Key, base64 of 16 bytes (400); exactly one
 * Sec-WebSocket-Version, equal to 13 (426); at most one Origin, on <allow>
 * when a list is set (403; no Origin is allowed); Sec-WebSocket-Protocol
 * lists well-formed and, when present, offering relay.v1 (400). */
unsigned rl_http_ws_check(struct rl_http_req *r, const struct rl_http_origins *allow);
/* The listener's decision without --web-root: a path other than /relay (the
 * query is ignored) -> 404, else rl_http_ws_check. */
unsigned rl_http_ws_route(struct rl_http_req *r, const struct rl_http_origins *allow);

/* ---- responses -------------------------------------------------------------- */

/* base64(SHA-1(<key> + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), NUL-terminated
 * (RFC 6455 §4.2.2). Uses at most the 24 bytes a valid key has. */
void rl_http_ws_accept(const uint8_t *key, size_t key_len, char out[RL_HTTP_WS_ACCEPT_LEN + 1]);
/* 101 Switching Protocols for a request rl_http_ws_check accepted; names
 * relay.v1 when the client offered it. Returns the bytes written to <out>,
 * 0 if <cap> is too small (RL_HTTP_RESPONSE_MAX always suffices). */
size_t rl_http_write_101(uint8_t *out, size_t cap, const struct rl_http_req *r);
/* The refusal <status> (400 403 404 405 414 426 431 503 505; anything else is
 * written as 500) with Connection: close, a text/plain body "<status>
 * <reason>: <why>\n" (just "<status> <reason>\n" when <why> is NULL), and
 * Allow: GET on 405, Sec-WebSocket-Version: 13 on 426. Returns the bytes
 * written, 0 if <cap> is too small (RL_HTTP_RESPONSE_MAX suffices for a <why>
 * of up to 200 bytes). */
size_t rl_http_write_error(uint8_t *out, size_t cap, unsigned status, const char *why);

/* ---- the client side (relay-bench, the test harness) ------------------------ */

#define RL_HTTP_WS_KEY_LEN 24 /* base64 of 16 bytes */

/* Sec-WebSocket-Key for the 16 random bytes <nonce>, NUL-terminated. */
void rl_http_ws_key(const uint8_t nonce[16], char out[RL_HTTP_WS_KEY_LEN + 1]);
/* A WebSocket upgrade request: GET <path> HTTP/1.1, Host <host> (e.g.
 * "127.0.0.1:8080"), Sec-WebSocket-Key <key>, version 13, offering
 * relay.v1, and Origin <origin> unless it is NULL. Returns the bytes
 * written, 0 if <cap> is too small (RL_HTTP_RESPONSE_MAX is enough for a
 * host, path and origin of up to 100 bytes each). */
size_t rl_http_write_upgrade(uint8_t *out, size_t cap, const char *host, const char *path,
			     const char *key, const char *origin);

/* The server's answer to an upgrade request. */
struct rl_http_answer {
	unsigned status; /* its status code (0: not even a status line) */
	const char *why; /* REFUSED: static text naming what was wrong */
	size_t head_len; /* COMPLETE: bytes of the head; WebSocket frames follow */
};

/* Reads the answer to an upgrade request sent with <key>, from the bytes
 * received so far (<buf>/<len>; stateless: call again with more).
 * NEED_MORE until the head is complete. COMPLETE for a 101 with Upgrade:
 * websocket, Connection: upgrade, the Sec-WebSocket-Accept <key> asks for,
 * no extension, and no subprotocol or relay.v1. REFUSED otherwise (another
 * status, a wrong header, a head over RL_HTTP_MAX_HEAD). */
enum rl_http_parse_status rl_http_parse_answer(struct rl_http_answer *a, const uint8_t *buf,
					       size_t len, const char *key);

#endif
