/* ws_client.h -- the harness's WebSocket half (ws_client.c), used by
 * client.c only; tests see the functions in harness.h.
 *
 * The harness speaks a byte stream of Relay frames. Over WebSocket every
 * Relay frame travels as one binary message, so the stream is cut at frame
 * boundaries: each send becomes one masked frame per piece of a Relay frame
 * (the first piece opens a binary message, later ones continue it, the
 * piece that completes the Relay frame ends it), so a test that splits
 * frames over TCP splits messages into fragments here. Received binary
 * messages give their bytes back as a stream, after checking the server's
 * side of the contract: unmasked, unfragmented, exactly one Relay frame.
 *
 * Threading: the receiving thread and ONE sending thread may use a client
 * at once (harness.h); frames are written under a mutex, so the close or
 * pong the receiver answers with never lands inside a sender's frame. */
#ifndef RELAY_TEST_WS_CLIENT_H
#define RELAY_TEST_WS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct rl_test_wsc;

struct rl_test_tls;

/* Upgrade on connected non-blocking socket <fd>, through the TLS session
 * <tls> on it for wss:// (NULL: ws://): GET <path> with Host <host>:<port>
 * (and Origin <origin> unless NULL), offering relay.v1, then waits up to
 * <timeout_ms> for the 101 and checks it. NULL with rl_test_err() set (the
 * status line of a refusal in it). Owns neither <fd> nor <tls>. */
struct rl_test_wsc *rl_test_wsc_open(int fd, struct rl_test_tls *tls, const char *host,
				     uint16_t port, const char *path, const char *origin,
				     int timeout_ms);
void rl_test_wsc_free(struct rl_test_wsc *w);
/* Input already received that poll() on the socket would not show (bytes
 * behind the 101, or decrypted bytes TLS holds): read before polling. */
bool rl_test_wsc_buffered(struct rl_test_wsc *w);
/* Like recv on a non-blocking socket, for the Relay byte stream: > 0 bytes
 * of binary messages, 0 once the connection ended (the server's close
 * frame, answered, then its TCP close), or -1 with errno (EAGAIN: nothing
 * complete yet, poll and call again; EPROTO: the server broke RFC 6455 or
 * the one-frame-per-message rule, rl_test_err() says how). */
ssize_t rl_test_wsc_read(struct rl_test_wsc *w, void *buf, size_t n);
/* Sends the Relay stream bytes <p>/<n> as masked WebSocket frames (see
 * above), waiting up to <timeout_ms> for room in the socket. 0 or -errno. */
int rl_test_wsc_send(struct rl_test_wsc *w, const void *p, size_t n, int timeout_ms);
/* Writes <n> raw bytes (any frames a test builds), under the write lock. */
int rl_test_wsc_send_wire(struct rl_test_wsc *w, const void *p, size_t n, int timeout_ms);
/* The code of the server's close frame (1005 for one without a code), or 0. */
int rl_test_wsc_close_code(const struct rl_test_wsc *w);

#endif
