/* tls.c -- the TLS transport: OpenSSL 3 on the connection's socket, driven
 * by the event loop without ever blocking. transport.h has the contract,
 * tls.h the context and its reload.
 * Threading: a connection's calls run on its owner worker. The context
 * pointer is read by the workers (QSBR readers, online) when they accept
 * and swapped by the main thread at SIGHUP, which frees the old one after
 * a grace period; each SSL holds its own reference to its context.
 *
 * Handshake: non-blocking, driven by whichever of read and writev comes
 * first. (A connection refused with SERVER_FULL is CLOSING from the start
 * and never reads: its queued ERROR drives the handshake from writev, so
 * the client sees the handshake complete and then the ERROR.) Its deadline
 * is the connection's frame timer, --frame-timeout from accept: the
 * FRAME_TIMEOUT it raises cannot be sent before the handshake, so writev
 * then fails with -ETIMEDOUT and the connection is closed. Under the
 * WebSocket layer (wss://, net/ws.c) the timer is left armed when the
 * handshake is done: it also bounds the upgrade request that follows.
 *
 * Writes: if OpenSSL turned on kTLS for sending (BIO_get_ktls_send after
 * the handshake), writev is sendmsg as in tcp.c and the kernel makes the
 * records. Otherwise the iovecs are coalesced into records of at most
 * 16 KiB (in a thread-local buffer: one per worker) and SSL_write runs once
 * per record, never per frame. The records do not go to the socket one by
 * one: after the handshake a filter BIO ("gather") sits in front of the
 * socket BIO, and while writev runs it appends what OpenSSL writes to a
 * thread-local buffer of up to TLS_GATHER_RECORDS records, which goes out
 * with one send -- one system call per flush, as over TCP, where a write
 * per record cost up to three times as many (bench/README.md, "TLS and
 * WebSocket"). Outside writev (a key update answered in SSL_read,
 * close_notify) the filter passes writes straight to the socket. The
 * buffer always has room for a whole record, so OpenSSL never sees a
 * blocked write after the handshake; what the socket does not take is
 * ciphertext, copied into the connection's <pend>, counted as taken, and
 * RL_CF_TP_HELD is set until it is sent. Counting it as taken keeps the
 * output queue exact: a slow consumer's queue may drop what it never
 * handed over, never bytes OpenSSL has already encrypted.
 *
 * Reads: SSL_read until the buffer is full or OpenSSL wants more from the
 * socket, so a short read means the socket is drained, as for TCP. */
#include "net/tls.h"

#include "base/options.h"
#include "base/rcu.h"
#include "net/conn.h"
#include "net/transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TLS_RECORD 16384u /* largest TLS plaintext record */
/* Records gathered per send, and the room one needs on the wire (header,
 * explicit nonce, tag, padding: OpenSSL's bound). */
#define TLS_GATHER_RECORDS 4u
#define TLS_WIRE_MAX ((size_t)SSL3_RT_MAX_PACKET_SIZE)

enum tls_phase {
	TLS_HANDSHAKE = 0,
	TLS_USER, /* established; OpenSSL makes the records in user space */
	TLS_KTLS, /* established; the kernel makes the records (sendmsg) */
	TLS_SHUT, /* close_notify sent (shutdown_wr): input is discarded raw */
	TLS_NPHASES
};

struct tls_conn {
	SSL *ssl;
	uint8_t *pend;	    /* ciphertext the socket did not take yet, or NULL */
	uint32_t pend_off;  /* how much of it went out since */
	uint32_t pend_len;  /* its bytes still to send; RL_CF_TP_HELD while > 0 */
	uint8_t phase;	    /* enum tls_phase */
	uint8_t path;	    /* TLS_USER / TLS_KTLS once counted in the gauge, else 0 */
	bool failed;	    /* fatal OpenSSL error: SSL_shutdown is not allowed */
	uint64_t accept_ms; /* the handshake deadline counts from here */
};

/* The context for new handshakes (atomic; main thread swaps it). */
static SSL_CTX *tls_ctx;
static char tls_cert_path[sizeof(((struct rl_config *)0)->tls_cert)];
static char tls_key_path[sizeof(((struct rl_config *)0)->tls_key)];
/* Set by the first handshake, which logs the write path in use. */
static int tls_path_logged;
/* Records are coalesced here: one buffer per worker thread. */
static _Thread_local uint8_t tls_wbuf[TLS_RECORD];
/* The gather filter (BIO method made by rl_tls_init) and, per worker, the
 * ciphertext of one writev: <on> is the filter writing into it, NULL
 * outside writev. */
static BIO_METHOD *tls_gather_method;
static _Thread_local struct {
	BIO *on;
	size_t len;
	uint8_t buf[TLS_GATHER_RECORDS * TLS_WIRE_MAX];
} tls_gather;

/* ---- the context (main thread) --------------------------------------------- */

/* The reason of OpenSSL's last error, and empties its queue. */
static void tls_why(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	snprintf(buf, cap, "%s", r ? r : "unknown OpenSSL error");
	ERR_clear_error();
}

/* An encrypted key would make OpenSSL prompt on the terminal: refuse it. */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return 0;
}

static int tls_readable(const char *opt, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "--%s %s: %s", opt, path, strerror(errno));
		return -1;
	}
	fclose(f);
	return 0;
}

static void tls_ctx_settings(SSL_CTX *ctx)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	/* kTLS when the kernel has it (else OpenSSL silently stays in user
	 * space); no renegotiation; a peer that closes without close_notify is
	 * an EOF like any other; no session tickets (nothing is buffered after
	 * the handshake, and no ticket key is shared between workers). */
	/* AES-128-GCM first in TLS 1.3, the server's order, unless the client
	 * prefers ChaCha20 (no AES instructions): 10 AES rounds instead of 14,
	 * -8 % user CPU on fan-out (bench/README.md, "TLS and WebSocket"). */
	SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS | SSL_OP_NO_RENEGOTIATION |
				     SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET |
				     SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
	SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
				      "TLS_CHACHA20_POLY1305_SHA256");
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* One record per SSL_write return; idle connections give their 16 KiB
	 * buffers back (keeping them measured no faster: bench/README.md). */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_read_ahead(ctx, 1); /* one recv per record batch, not two per record */
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
}

/* A new context from the two files. NULL with a reason in <err>. */
static SSL_CTX *tls_ctx_new(char *err, size_t errlen)
{
	char why[200];
	const char *cert = tls_cert_path, *key = tls_key_path;

	if (tls_readable("tls-cert", cert, err, errlen) ||
	    tls_readable("tls-key", key, err, errlen))
		return NULL;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tls_why(why, sizeof(why));
		snprintf(err, errlen, "tls: cannot create a context: %s", why);
		return NULL;
	}
	tls_ctx_settings(ctx);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_why(why, sizeof(why));
		snprintf(err, errlen, "--tls-cert %s: not a PEM certificate: %s", cert, why);
	} else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_why(why, sizeof(why));
		snprintf(err, errlen, "--tls-key %s: not a usable PEM private key: %s", key, why);
	} else if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen,
			 "--tls-key %s does not match the certificate in --tls-cert %s", key, cert);
	} else {
		return ctx;
	}
	SSL_CTX_free(ctx);
	return NULL;
}

/* "subject ..., serial ..., expires ..." of <ctx>'s certificate. */
static void tls_describe(SSL_CTX *ctx, char *buf, size_t cap)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	char subj[256] = "?", serial[80] = "?", until[32] = "?";
	struct tm tm;

	if (x) {
		X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		if (hex)
			snprintf(serial, sizeof(serial), "%s", hex);
		OPENSSL_free(hex);
		BN_free(bn);
		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
			strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);
	}
	ERR_clear_error();
	snprintf(buf, cap, "subject %s, serial %s, expires %s", subj, serial, until);
}

/* ---- the gather filter (see the banner) ----------------------------------------- */

static int tls_gather_write(BIO *b, const char *data, int len)
{
	BIO *next = BIO_next(b);

	BIO_clear_retry_flags(b);
	if (tls_gather.on != b) { /* not in writev: straight to the socket */
		int r = BIO_write(next, data, len);
		BIO_copy_next_retry(b);
		return r;
	}
	if ((size_t)len > sizeof(tls_gather.buf) - tls_gather.len)
		return -1; /* writev leaves room for a record: not reached */
	memcpy(tls_gather.buf + tls_gather.len, data, (size_t)len);
	tls_gather.len += (size_t)len;
	return len;
}

static long tls_gather_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	BIO *next = BIO_next(b);

	if (cmd == BIO_CTRL_FLUSH && tls_gather.on == b)
		return 1;
	return next ? BIO_ctrl(next, cmd, num, ptr) : 0;
}

static int tls_gather_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *tls_gather_method_new(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "relayd gather");
	if (m && (!BIO_meth_set_write(m, tls_gather_write) ||
		  !BIO_meth_set_ctrl(m, tls_gather_ctrl) ||
		  !BIO_meth_set_create(m, tls_gather_create))) {
		BIO_meth_free(m);
		m = NULL;
	}
	return m;
}

/* Puts the filter in front of <ssl>'s socket BIO (which stays its read
 * BIO). 0 or -ENOMEM. */
static int tls_gather_install(SSL *ssl)
{
	BIO *sock = SSL_get_wbio(ssl);
	BIO *f = BIO_new(tls_gather_method);

	if (!f || !BIO_up_ref(sock)) {
		BIO_free(f);
		ERR_clear_error();
		return -ENOMEM;
	}
	SSL_set0_wbio(ssl, BIO_push(f, sock)); /* drops the wbio's old reference */
	return 0;
}

int rl_tls_init(const struct rl_config *cfg, char *err, size_t errlen)
{
	char desc[512];

	if (!tls_gather_method && !(tls_gather_method = tls_gather_method_new())) {
		snprintf(err, errlen, "tls: cannot create a BIO method");
		return -1;
	}
	snprintf(tls_cert_path, sizeof(tls_cert_path), "%s", cfg->tls_cert);
	snprintf(tls_key_path, sizeof(tls_key_path), "%s", cfg->tls_key);
	SSL_CTX *ctx = tls_ctx_new(err, errlen);
	if (!ctx)
		return -1;
	__atomic_store_n(&tls_ctx, ctx, __ATOMIC_RELEASE);
	tls_describe(ctx, desc, sizeof(desc));
	RL_INFOF(0, "tls: %s: %s; TLS 1.2-1.3, kTLS requested", tls_cert_path, desc);
	return 0;
}

void rl_tls_reload(void)
{
	char err[768], desc[512];

	if (!__atomic_load_n(&tls_ctx, __ATOMIC_ACQUIRE))
		return;
	SSL_CTX *ctx = tls_ctx_new(err, sizeof(err));
	if (!ctx) {
		/* Reload lines are rare and matter at any level (like config's). */
		rl_log_write(RL_LOG_ERROR, 0, "tls: reload failed, keeping the old certificate: %s",
			     err);
		return;
	}
	SSL_CTX *old = __atomic_exchange_n(&tls_ctx, ctx, __ATOMIC_ACQ_REL);
	/* A worker that loaded <old> is inside its loop turn (online); after
	 * the grace period every SSL made from it holds its own reference. */
	synchronize_rcu();
	SSL_CTX_free(old);
	tls_describe(ctx, desc, sizeof(desc));
	rl_log_write(RL_LOG_INFO, 0, "tls: reloaded %s: %s", tls_cert_path, desc);
}

void rl_tls_fini(void)
{
	SSL_CTX_free(__atomic_exchange_n(&tls_ctx, NULL, __ATOMIC_ACQ_REL));
	BIO_meth_free(tls_gather_method);
	tls_gather_method = NULL;
}

/* ---- per connection (owner worker) ----------------------------------------------- */

static int tls_accept(struct rl_conn *c)
{
	rl_tcp_transport.accept(c); /* the socket options of a TCP connection */
	struct tls_conn *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	c->tp_ctx = t;
	t->ssl = SSL_new(__atomic_load_n(&tls_ctx, __ATOMIC_ACQUIRE));
	if (!t->ssl || SSL_set_fd(t->ssl, c->fd) != 1) {
		ERR_clear_error();
		return -ENOMEM;
	}
	SSL_set_accept_state(t->ssl);
	t->accept_ms = c->w->now_ms;
	rl_conn_deadline_arm(c);
	return 0;
}

/* A fatal result of an SSL call: <e> from SSL_get_error, <sys> the errno
 * right after the call. Logs at debug; returns the -errno for the caller. */
static int tls_fail(struct rl_conn *c, struct tls_conn *t, int e, int sys, const char *what)
{
	char why[200];

	t->failed = true;
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		snprintf(why, sizeof(why), "%s", sys ? strerror(sys) : "connection closed");
		ERR_clear_error();
	} else {
		tls_why(why, sizeof(why));
	}
	if (t->phase == TLS_HANDSHAKE)
		RL_STAT_ADD(c->w->stats, tls_handshake_failures, 1);
	RL_DEBUGF(c->id, "tls: %s failed: %s", what, why);
	return e == SSL_ERROR_SYSCALL && sys ? -sys : -EPROTO;
}

static int tls_established(struct rl_conn *c, struct tls_conn *t)
{
	bool ktls = BIO_get_ktls_send(SSL_get_wbio(t->ssl)) != 0;

	if (!ktls && tls_gather_install(t->ssl))
		return -ENOMEM;
	t->phase = t->path = ktls ? TLS_KTLS : TLS_USER;
	if (ktls)
		RL_STAT_ADD(c->w->stats, tls_ktls, 1);
	else
		RL_STAT_ADD(c->w->stats, tls_userspace, 1);
	/* Under another layer (wss://: WebSocket over TLS) the deadline runs on
	 * until that layer's own handshake is done: the upgrade request must
	 * come within the same --frame-timeout of accept (protocol-v1-ext.md §7). */
	if (c->tp == &rl_tls_transport)
		rl_conn_deadline_done(c);
	RL_DEBUGF(c->id, "tls: %s %s, %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl),
		  ktls ? "kTLS send" : "userspace records");
	if (!__atomic_exchange_n(&tls_path_logged, 1, __ATOMIC_RELAXED))
		RL_INFOF(c->id, "%s",
			 ktls ? "tls: kTLS in use, the kernel makes the records"
			      : "tls: kTLS unavailable, using userspace records");
	return 0;
}

/* Advances the handshake: 1 done, 0 the peer closed, -EAGAIN, -errno. */
static int tls_handshake(struct rl_conn *c, struct tls_conn *t)
{
	ERR_clear_error();
	int r = SSL_do_handshake(t->ssl);
	int sys = errno;
	if (r == 1) {
		int rc = tls_established(c, t);
		return rc ? rc : 1;
	}
	int e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return -EAGAIN;
	if (e == SSL_ERROR_ZERO_RETURN) {
		RL_STAT_ADD(c->w->stats, tls_handshake_failures, 1);
		RL_DEBUGF(c->id, "tls: peer closed during the handshake");
		return 0;
	}
	return tls_fail(c, t, e, sys, "handshake");
}

static ssize_t tls_read(struct rl_conn *c, void *buf, size_t len)
{
	struct tls_conn *t = c->tp_ctx;
	size_t got = 0;

	if (t->phase == TLS_SHUT) /* after close_notify: only draining what the peer sends */
		return rl_tcp_transport.read(c, buf, len);
	if (t->phase == TLS_HANDSHAKE) {
		int rc = tls_handshake(c, t);
		if (rc <= 0)
			return rc;
	}
	while (got < len) {
		size_t n;
		ERR_clear_error();
		int r = SSL_read_ex(t->ssl, (uint8_t *)buf + got, len - got, &n);
		int sys = errno;
		if (r == 1) {
			got += n;
			continue;
		}
		int e = SSL_get_error(t->ssl, r);
		/* WANT_WRITE here (a key update answer that does not fit) is
		 * retried on the next input edge. */
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return got ? (ssize_t)got : -EAGAIN;
		if (got)
			return (ssize_t)got; /* the EOF or the error again next call */
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		return tls_fail(c, t, e, sys, "read");
	}
	return (ssize_t)got;
}

/* Moves <i>, <off> forward by <n> bytes of <iov>. */
static void tls_advance(const struct iovec *iov, int iovcnt, int *i, size_t *off, size_t n)
{
	while (n && *i < iovcnt) {
		size_t left = iov[*i].iov_len - *off;
		if (n < left) {
			*off += n;
			return;
		}
		n -= left;
		(*i)++;
		*off = 0;
	}
}

/* The next record of at most TLS_RECORD bytes from <iov>[*i] + *off: in
 * place when one buffer holds all of it, else copied into tls_wbuf.
 * Moves <i>, <off> past it and returns its length (> 0). */
static size_t tls_record(const struct iovec *iov, int iovcnt, int *i, size_t *off,
			 const uint8_t **rec)
{
	size_t left = iov[*i].iov_len - *off;
	size_t n = 0;

	if (left >= TLS_RECORD || *i + 1 == iovcnt) {
		n = left < TLS_RECORD ? left : TLS_RECORD;
		*rec = (const uint8_t *)iov[*i].iov_base + *off;
		tls_advance(iov, iovcnt, i, off, n);
		return n;
	}
	while (*i < iovcnt && n < TLS_RECORD) {
		size_t l = iov[*i].iov_len - *off;
		size_t k = l < TLS_RECORD - n ? l : TLS_RECORD - n;
		memcpy(tls_wbuf + n, (const uint8_t *)iov[*i].iov_base + *off, k);
		n += k;
		tls_advance(iov, iovcnt, i, off, k);
	}
	*rec = tls_wbuf;
	return n;
}

/* The socket did not take <rec>/<n> of ciphertext: keep it in <pend>. */
static int tls_hold(struct rl_conn *c, struct tls_conn *t, const uint8_t *rec, size_t n)
{
	if (!(t->pend = malloc(n)))
		return -ENOMEM;
	memcpy(t->pend, rec, n);
	t->pend_off = 0;
	t->pend_len = (uint32_t)n;
	c->flags |= RL_CF_TP_HELD;
	RL_DEBUGF(c->id, "tls: socket full, %zu bytes of records held", n);
	return 0;
}

/* Sends the ciphertext in <pend>. 0 once it is all out, -EAGAIN, -errno. */
static int tls_send_pending(struct rl_conn *c, struct tls_conn *t)
{
	struct iovec v = {.iov_base = t->pend + t->pend_off, .iov_len = t->pend_len};
	ssize_t w = rl_tcp_transport.writev(c, &v, 1);

	if (w < 0)
		return (int)w;
	t->pend_off += (uint32_t)w;
	t->pend_len -= (uint32_t)w;
	if (t->pend_len)
		return -EAGAIN;
	free(t->pend); /* a connection that blocked once keeps nothing */
	t->pend = NULL;
	t->pend_off = 0;
	c->flags &= (uint16_t)~RL_CF_TP_HELD;
	return 0;
}

/* Sends the gathered records; what the socket does not take goes to
 * <pend>. 0 all sent, 1 held (the socket is full), -errno. */
static int tls_gather_send(struct rl_conn *c, struct tls_conn *t)
{
	struct iovec v = {.iov_base = tls_gather.buf, .iov_len = tls_gather.len};
	ssize_t w = rl_tcp_transport.writev(c, &v, 1);
	size_t len = tls_gather.len;

	tls_gather.len = 0;
	if (w == -EAGAIN)
		w = 0;
	if (w < 0)
		return (int)w;
	if ((size_t)w == len)
		return 0;
	int rc = tls_hold(c, t, tls_gather.buf + w, len - (size_t)w);
	return rc ? rc : 1;
}

/* SSL_write of all of <rec>/<n> into the gather buffer (one record per
 * call, partial-write mode). 0 or -errno; the buffer never refuses. */
static int tls_write_record(struct rl_conn *c, struct tls_conn *t, const uint8_t *rec, size_t n)
{
	while (n) {
		size_t w;
		int r = SSL_write_ex(t->ssl, rec, n, &w);
		int sys = errno;
		if (r != 1)
			return tls_fail(c, t, SSL_get_error(t->ssl, r), sys, "write");
		rec += w;
		n -= w;
	}
	return 0;
}

/* Encrypts records from <iov>[*i] + *off into the gather buffer while it
 * has room for one more (*<taken> += their plaintext). 0 or -errno. */
static int tls_gather_records(struct rl_conn *c, struct tls_conn *t, const struct iovec *iov,
			      int iovcnt, int *i, size_t *off, ssize_t *taken)
{
	int rc = 0;

	tls_gather.on = SSL_get_wbio(t->ssl);
	ERR_clear_error(); /* once: a successful SSL_write leaves the queue empty */
	while (*i < iovcnt && sizeof(tls_gather.buf) - tls_gather.len >= TLS_WIRE_MAX) {
		if (iov[*i].iov_len == *off) {
			(*i)++, *off = 0;
			continue;
		}
		const uint8_t *rec;
		size_t n = tls_record(iov, iovcnt, i, off, &rec);
		if ((rc = tls_write_record(c, t, rec, n)))
			break;
		*taken += (ssize_t)n;
	}
	tls_gather.on = NULL;
	return rc;
}

/* kTLS: the kernel makes the records; OpenSSL holds nothing after the
 * handshake (no session tickets), so writing around it is safe. */
static ssize_t tls_sendmsg(struct rl_conn *c, const struct iovec *iov, int iovcnt)
{
	return rl_tcp_transport.writev(c, iov, iovcnt); /* the socket write of plain TCP */
}

/* The handshake before output can go: -EAGAIN until done, -ETIMEDOUT once
 * its deadline passed (the FRAME_TIMEOUT it raised cannot be sent). */
static int tls_handshake_for_write(struct rl_conn *c, struct tls_conn *t)
{
	uint64_t limit = RL_CFG(frame_ms);
	if (limit && c->w->now_ms >= t->accept_ms + limit) {
		RL_STAT_ADD(c->w->stats, tls_handshake_failures, 1);
		RL_DEBUGF(c->id, "tls: handshake not done within the frame timeout");
		return -ETIMEDOUT;
	}
	int rc = tls_handshake(c, t);
	return rc == 1 ? 0 : rc == 0 ? -EPIPE : rc;
}

static ssize_t tls_writev(struct rl_conn *c, const struct iovec *iov, int iovcnt)
{
	struct tls_conn *t = c->tp_ctx;
	ssize_t taken = 0;
	int i = 0, rc;
	size_t off = 0;

	if (t->phase == TLS_HANDSHAKE && (rc = tls_handshake_for_write(c, t)))
		return rc;
	if (t->phase == TLS_KTLS)
		return iovcnt ? tls_sendmsg(c, iov, iovcnt) : 0;
	if (t->phase != TLS_USER)
		return -EPIPE; /* after close_notify */
	if (t->pend_len && (rc = tls_send_pending(c, t)))
		return rc;
	while (i < iovcnt) {
		if ((rc = tls_gather_records(c, t, iov, iovcnt, &i, &off, &taken))) {
			tls_gather.len = 0; /* the connection is failing: drop, do not send */
			return rc;
		}
		if (!tls_gather.len)
			break; /* only empty iovecs were left */
		if ((rc = tls_gather_send(c, t)) < 0)
			return rc;
		if (rc == 1)
			break; /* the socket is full; all taken is written or held */
	}
	return taken;
}

/* close_notify, best effort (never blocks; may not fit a full socket). */
static void tls_notify_close(struct tls_conn *t)
{
	if ((t->phase == TLS_USER || t->phase == TLS_KTLS) && !t->failed && !t->pend_len) {
		ERR_clear_error();
		SSL_shutdown(t->ssl);
		ERR_clear_error();
	}
}

static int tls_shutdown_wr(struct rl_conn *c)
{
	struct tls_conn *t = c->tp_ctx;
	tls_notify_close(t);
	t->phase = TLS_SHUT;
	return rl_tcp_transport.shutdown_wr(c);
}

static bool tls_has_pending(const struct rl_conn *c)
{
	const struct tls_conn *t = c->tp_ctx;
	return t->phase != TLS_SHUT && SSL_has_pending(t->ssl);
}

static int tls_pending_input(struct rl_conn *c)
{
	const struct tls_conn *t = c->tp_ctx;
	int n = rl_tcp_transport.pending_input(c);
	if (n < 0)
		return n;
	return n + (t->phase == TLS_SHUT ? 0 : SSL_pending(t->ssl));
}

/* Our bytes not acknowledged yet: the kernel's send queue plus a record
 * OpenSSL must write again (transport.h, the lingering close). */
static int tls_pending_output(struct rl_conn *c)
{
	const struct tls_conn *t = c->tp_ctx;
	int n = rl_tcp_transport.pending_output(c);
	if (n < 0)
		return n;
	return n + (t ? (int)t->pend_len : 0);
}

/* Frees <c>'s TLS state; <notify>: send close_notify first (a graceful
 * close), else not (an abort: the peer gets a TCP reset). */
static void tls_release(struct rl_conn *c, bool notify)
{
	struct tls_conn *t = c->tp_ctx;
	if (!t)
		return;
	if (t->ssl && notify)
		tls_notify_close(t);
	if (t->path == TLS_USER)
		RL_STAT_SUB(c->w->stats, tls_userspace, 1);
	else if (t->path == TLS_KTLS)
		RL_STAT_SUB(c->w->stats, tls_ktls, 1);
	SSL_free(t->ssl);
	free(t->pend);
	free(t);
	c->tp_ctx = NULL;
	ERR_clear_error();
}

static void tls_close(struct rl_conn *c)
{
	tls_release(c, true);
	rl_tcp_transport.close(c);
}

/* The flush deadline passed: no close_notify (the peer is not reading), and
 * whatever the kernel still holds is dropped with a reset, as over TCP. */
static void tls_abort(struct rl_conn *c)
{
	tls_release(c, false);
	rl_tcp_transport.abort(c);
}

const struct rl_transport rl_tls_transport = {
    .name = "tls",
    .accept = tls_accept,
    .read = tls_read,
    .writev = tls_writev,
    .shutdown_wr = tls_shutdown_wr,
    .has_pending = tls_has_pending,
    .pending_input = tls_pending_input,
    .pending_output = tls_pending_output,
    .close = tls_close,
    .abort = tls_abort,
};
