/* tls.h -- the TLS transport (OpenSSL 3): the same Relay byte stream inside
 * TLS 1.2 or 1.3 (protocol-v1-ext.md §1). The transport table itself is
 * rl_tls_transport (transport.h); this header is the server's side: the
 * certificate context, its reload, and which write path is in use.
 *
 * Threading: rl_tls_init, rl_tls_reload and rl_tls_fini run on the main
 * thread (init before any worker starts, fini after they were joined). The
 * context is published with an atomic pointer; workers read it as QSBR
 * readers when they accept, and SSL_new takes its own reference, so a
 * reload frees the old context after a grace period while the connections
 * made with it keep it. Connections are touched by their owner only. */
#ifndef RL_TLS_H
#define RL_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct rl_config;

/* Builds the context from <cfg>->tls_cert and tls_key (PEM; TLS 1.2 and
 * 1.3 only; TLS 1.3 prefers AES-128-GCM; kTLS requested) and logs the
 * certificate's subject and serial. 0, or -1 with a one-line reason naming
 * the option and file in <err>. Main thread, before the workers start. */
int rl_tls_init(const struct rl_config *cfg, char *err, size_t errlen);

/* SIGHUP: re-reads the same two files into a new context for new
 * handshakes; open connections keep theirs. On failure logs one line and
 * keeps the old context. No-op without rl_tls_init. Main thread. */
void rl_tls_reload(void);

/* Frees the context. Main thread, after the workers were joined. */
void rl_tls_fini(void);

#endif
