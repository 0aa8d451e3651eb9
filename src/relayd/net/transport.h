/* transport.h -- how a connection's bytes meet the wire: one table of
 * functions per kind of transport (plain TCP in tcp.c, TLS in tls.c,
 * WebSocket in ws.c as a layer over another transport). conn.c reads,
 * writes, half-closes and closes only through its connection's table
 * (c->tp) and never learns which one it holds (the redis src/connection.h
 * pattern). Per-connection transport state lives behind c->tp_ctx (NULL
 * for plain TCP).
 *
 * What the output queue holds is already wire-ready: Relay frames, or for
 * a connection with RL_CF_WS (conn.h) each Relay frame inside its WebSocket
 * binary message header (built once per message, net/msg.h). So writev
 * never re-frames, and a transport's own bytes (an HTTP answer, WebSocket
 * control frames) go through the queue too (rl_conn_send_wire).
 *
 * Return conventions, for every function that returns a count:
 *   > 0      bytes moved;
 *   0        (read only) the peer closed its sending side: EOF;
 *   -EAGAIN  nothing can move now: wait for the next readiness edge;
 *   -errno   the connection is broken: close it.
 * EINTR never reaches the caller: a transport retries it.
 *
 * Threading: a connection's transport calls run on its owner worker only.
 * The tables are constant and shared by all workers. */
#ifndef RL_TRANSPORT_H
#define RL_TRANSPORT_H

#include <relay/protocol.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

struct rl_conn;

/* Writes up to <iovcnt> (<= RL_OUTQ_IOV_MAX) buffers, in order, without
 * blocking: bytes taken (> 0; fewer than offered means "full for now"),
 * -EAGAIN, or -errno. The output queue calls it once per batch, never per
 * frame (outq.h).
 * A transport that transforms the bytes may take some it cannot pass to
 * the socket yet (TLS: a record OpenSSL must be asked to write again). It
 * counts them as taken and sets RL_CF_TP_HELD on the connection until they
 * are out; meanwhile the connection calls writev with <iovcnt> 0 when the
 * socket turns writable, even with nothing queued (0 once nothing is held,
 * -EAGAIN, or -errno), and is not done closing. */
typedef ssize_t rl_tp_writev_fn(struct rl_conn *c, const struct iovec *iov, int iovcnt);

struct rl_transport {
	const char *name; /* "tcp", "tls", "ws", "wss"; in log lines */
	/* Takes over the accepted socket c->fd before the connection joins the
	 * event loop: socket options, c->tp_ctx. 0 or -errno; on failure
	 * c->tp_ctx is left NULL or valid for close. */
	int (*accept)(struct rl_conn *c);
	/* Up to <len> decoded input bytes into <buf>: > 0, 0 at EOF, -EAGAIN, -errno. */
	ssize_t (*read)(struct rl_conn *c, void *buf, size_t len);
	rl_tp_writev_fn *writev;
	/* Ends our sending side (TCP FIN; TLS sends close_notify first) while
	 * input may still be read. 0 or -errno. */
	int (*shutdown_wr)(struct rl_conn *c);
	/* Input the transport already holds but the kernel no longer reports
	 * (TLS: decrypted bytes left in its buffer). Edge-triggered readers
	 * must keep reading while this is true: no new edge will announce it.
	 * Always false for plain TCP. */
	bool (*has_pending)(const struct rl_conn *c);
	/* Peer bytes not read yet, kernel and transport buffers together
	 * (FIONREAD-like): >= 0, or -errno. Decides whether a closing
	 * connection must linger to avoid an RST (conn.c, conn_closing_done). */
	int (*pending_input)(struct rl_conn *c);
	/* Our bytes the peer has not acknowledged yet: those the transport
	 * still holds (TLS: an encrypted record not yet written; WebSocket: a
	 * frame header or a close frame) plus those in the kernel's send
	 * buffer, sent or not (TCP: SIOCOUTQ). >= 0, or -errno. Only asked once
	 * conn.c has nothing left to write: while it is not 0, closing the
	 * socket would leave our last frames in an orphaned socket, and one
	 * byte from the peer would make the kernel answer with an RST that
	 * discards them (conn.c, conn_closing_done: the lingering close). */
	int (*pending_output)(struct rl_conn *c);
	/* Releases c->tp_ctx (NULL when accept failed or set none) and closes
	 * the socket. Called exactly once per accepted connection (this or
	 * abort). */
	void (*close)(struct rl_conn *c);
	/* Like close, but discards what the kernel has not sent yet and resets
	 * the connection (TCP RST; TLS: no close_notify): for a connection
	 * whose flush deadline passed. A plain close would leave the socket
	 * orphaned behind its unsent bytes, and a client reading at a crawl
	 * would see no end of the stream for minutes. */
	void (*abort)(struct rl_conn *c);
	/* Optional (NULL: never). Whether the transport holds part of a peer
	 * message it has not passed on yet (WebSocket: a frame or fragmented
	 * message started): with the Relay decoder's own partial frame it
	 * keeps the frame timeout running. */
	bool (*in_message)(const struct rl_conn *c);
	/* Optional (NULL: nothing). A fatal Relay ERROR <why> was just queued
	 * on the open connection <c>, which closes next: the transport may
	 * queue what its protocol sends last (WebSocket: the close frame). */
	void (*fatal_error)(struct rl_conn *c, enum relay_err why);
};

/* The transports; a listener names one, its connections get it. */
extern const struct rl_transport rl_tcp_transport; /* tcp.c */
extern const struct rl_transport rl_tls_transport; /* tls.c */
extern const struct rl_transport rl_ws_transport;  /* ws.c: WebSocket over plain TCP */
extern const struct rl_transport rl_wss_transport; /* ws.c: WebSocket over TLS (wss://) */

#endif
