/* tls_client.h -- the harness's TLS half (tls_client.c), used by client.c
 * and server.c only; tests see the functions in harness.h.
 * Threading: a struct rl_test_tls serialises its own SSL calls (a mutex),
 * because the harness lets one other thread send while the owner receives. */
#ifndef RELAY_TEST_TLS_CLIENT_H
#define RELAY_TEST_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct rl_test_tls;

/* TLS client handshake on connected non-blocking socket <fd>, within
 * <timeout_ms>. The server certificate is not verified (tests read its
 * serial instead; the Python and s_client tests verify). NULL with
 * rl_test_err() set. Does not own <fd>. */
struct rl_test_tls *rl_test_tls_open(int fd, int timeout_ms);
void rl_test_tls_free(struct rl_test_tls *t);
/* Like recv/send on a non-blocking socket: > 0, 0 at EOF (read), or -1 with
 * errno (EAGAIN: poll and call again -- for send, with the same bytes). */
ssize_t rl_test_tls_read(struct rl_test_tls *t, void *buf, size_t n);
ssize_t rl_test_tls_write(struct rl_test_tls *t, const void *buf, size_t n);
/* Decrypted bytes OpenSSL holds: read them before polling the socket. */
bool rl_test_tls_pending(struct rl_test_tls *t);
/* The server certificate's serial (hex) and subject. */
int rl_test_tls_peer(struct rl_test_tls *t, char *serial, size_t scap, char *subject,
		     size_t subcap);

/* Extra relayd arguments for RELAY_TEST_TRANSPORT=tls: --tls-port 0 and the
 * test certificate. NULL-terminated static array, or NULL on failure. */
const char *const *rl_test_tls_server_args(void);

#endif
