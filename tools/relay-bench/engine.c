/* engine.c -- the load generator's I/O engine: N threads, each with its own
 * epoll loop and its own connections (non-blocking, level-triggered), over
 * TCP or, with --transport tls, TLS (OpenSSL: a non-blocking handshake after
 * connect, SSL_read until OpenSSL wants the socket, SSL_write in records of
 * at most 16 KiB, retried with the same bytes after WANT_*).
 * Reads go into a per-thread 256 KiB scratch buffer and are parsed in place;
 * only an incomplete message is copied into the connection's tail. Publishes
 * are appended to a per-connection output buffer and flushed with one write()
 * per connection per loop turn. Publishing is either paced (a per-thread
 * token count, round-robin over its publishers) or windowed: at most
 * <window> messages per publisher in flight, so the client never buffers
 * without bound.
 * Threading: a connection belongs to one thread for its life. The main thread
 * changes phases and rates through atomics and reads relaxed counters.
 */
#include "bench.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define RLX memory_order_relaxed
#define RB_RBUF (256u * 1024u)
#define RB_OUT_LIMIT (256u * 1024u)   /* stop publishing on a conn above this */
#define RB_TAIL_LIMIT (8u * 1024u * 1024u)
#define RB_PUB_PER_TURN 128u          /* window mode, per publisher */
#define RB_RATE_PER_TURN 16384u       /* paced mode, per thread */
#define RB_TLS_RECORD 16384u          /* largest TLS plaintext record */

static inline void st_add(_Atomic uint64_t *v, uint64_t n)
{
	atomic_store_explicit(v, atomic_load_explicit(v, RLX) + n, RLX);
}

/* ---- output buffer ---------------------------------------------------------- */

static void flush_mark(struct bconn *c)
{
	if (!c->in_flush_list) {
		c->in_flush_list = true;
		c->flush_next = c->t->flush_head;
		c->t->flush_head = c;
	}
}

uint8_t *rb_out_reserve(struct bconn *c, size_t n)
{
	struct rb_buf *b = &c->out;
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->cap - b->len < n) {
		if (b->off) {
			memmove(b->p, b->p + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		if (b->cap - b->len < n) {
			size_t cap = b->cap ? b->cap : 1024;
			while (cap - b->len < n)
				cap *= 2;
			uint8_t *p = realloc(b->p, cap);
			if (!p) {
				perror("relay-bench: realloc");
				exit(2);
			}
			b->p = p;
			b->cap = cap;
		}
	}
	flush_mark(c);
	return b->p + b->len;
}

void rb_out_commit(struct bconn *c, size_t n)
{
	c->out.len += n;
}

void rb_out_append(struct bconn *c, const void *p, size_t n)
{
	memcpy(rb_out_reserve(c, n), p, n);
	rb_out_commit(c, n);
}

static size_t out_pending(const struct bconn *c)
{
	return c->out.len - c->out.off;
}

/* ---- connection lifecycle ------------------------------------------------- */

static void conn_ready(struct bconn *c)
{
	c->ready = true;
	st_add(&c->t->st.ready, 1);
	c->t->connecting--;
}

static void conn_close(struct bconn *c, bool unexpected)
{
	if (c->closed)
		return;
	struct rb_thread *t = c->t;
	if (unexpected && atomic_load_explicit(&t->e->phase, RLX) < RB_PH_STOP)
		st_add(&t->st.closed, 1);
	if (!c->ready)
		t->connecting--;
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		ERR_clear_error();
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->closed = true;
	if (c->connected && t->e->proto->fini)
		t->e->proto->fini(c);
	free(c->out.p);
	free(c->tail.p);
	memset(&c->out, 0, sizeof c->out);
	memset(&c->tail, 0, sizeof c->tail);
}

static void conn_set_events(struct bconn *c, bool want_out)
{
	if (c->want_out == want_out || c->closed)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0),
				  .data.ptr = c };
	epoll_ctl(c->t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = want_out;
}

/* One SSL_write of at most a record (never less than a pending retry):
 * bytes written, or -1 with errno (EAGAIN: wait; the retry length is kept). */
static ssize_t tls_write(struct bconn *c)
{
	size_t n = out_pending(c), w = 0;
	if (n > RB_TLS_RECORD)
		n = RB_TLS_RECORD > c->tls_retry ? RB_TLS_RECORD : c->tls_retry;
	ERR_clear_error();
	int r = SSL_write_ex(c->ssl, c->out.p + c->out.off, n, &w);
	if (r == 1) {
		c->tls_retry = 0;
		return (ssize_t)w;
	}
	int e = SSL_get_error(c->ssl, r);
	ERR_clear_error();
	if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
		c->tls_retry = (uint32_t)n;
		errno = EAGAIN;
	} else {
		errno = EPIPE;
	}
	return -1;
}

static void conn_flush(struct bconn *c)
{
	while (!c->closed && out_pending(c)) {
		ssize_t w = c->ssl ? tls_write(c)
				   : write(c->fd, c->out.p + c->out.off, out_pending(c));
		if (w == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				conn_set_events(c, true);
				return;
			}
			conn_close(c, true);
			return;
		}
		c->out.off += (size_t)w;
	}
	if (c->closed)
		return;
	c->out.off = c->out.len = 0;
	if (c->out.cap > 65536) { /* do not keep big buffers on idle conns */
		free(c->out.p);
		memset(&c->out, 0, sizeof c->out);
	}
	conn_set_events(c, false);
}

static void flush_all(struct rb_thread *t)
{
	struct bconn *c = t->flush_head;
	t->flush_head = NULL;
	while (c) {
		struct bconn *next = c->flush_next;
		c->in_flush_list = false;
		conn_flush(c);
		c = next;
	}
}

static void conn_start(struct rb_thread *t, struct bconn *c)
{
	const struct rb_opts *o = t->e->o;
	unsigned src_n = o->src_addrs;
	int fd = rb_connect_start(&t->e->addrs[c->node], c->id, src_n);
	t->connecting++;
	if (fd < 0) {
		st_add(&t->st.connect_fail, 1);
		c->closed = true;
		t->connecting--;
		return;
	}
	c->fd = fd;
	c->want_out = true;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		st_add(&t->st.connect_fail, 1);
		conn_close(c, false);
	}
}

/* Connected (and past the TLS handshake): say hello, subscribe. */
static void conn_established(struct bconn *c)
{
	const struct rb_proto *p = c->t->e->proto;
	c->connected = true;
	st_add(&c->t->st.connected, 1);
	p->hello(c);
	if (c->role != RB_ROLE_PUB || p->pub_joins)
		p->subscribe(c, c->room);
	if (!c->pending_acks)
		conn_ready(c);
	conn_flush(c);
}

/* Advances the TLS handshake; waits for what OpenSSL wants next. */
static void conn_tls_handshake(struct bconn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->handshaking = false;
		conn_established(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	ERR_clear_error();
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		conn_set_events(c, e == SSL_ERROR_WANT_WRITE);
		return;
	}
	st_add(&c->t->st.connect_fail, 1);
	conn_close(c, false);
}

static void conn_connected(struct bconn *c)
{
	int err = 0;
	socklen_t l = sizeof err;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) == -1 || err) {
		st_add(&c->t->st.connect_fail, 1);
		conn_close(c, false);
		return;
	}
	SSL_CTX *ctx = c->t->e->tls_ctx;
	if (!ctx) {
		conn_established(c);
		return;
	}
	if (!(c->ssl = SSL_new(ctx)) || SSL_set_fd(c->ssl, c->fd) != 1) {
		st_add(&c->t->st.connect_fail, 1);
		conn_close(c, false);
		return;
	}
	SSL_set_connect_state(c->ssl);
	c->handshaking = true;
	conn_tls_handshake(c);
}

/* ---- callbacks from the protocols ------------------------------------------- */

void rb_on_delivery(struct bconn *c, const uint8_t *payload, size_t n)
{
	struct rb_thread *t = c->t;
	uint64_t ts;
	uint32_t pub = 0;
	if (!rb_payload_parse(payload, n, &ts, t->e->chat ? &pub : NULL)) {
		st_add(&t->st.other, 1);
		return;
	}
	if (t->e->chat && pub == c->id) {
		st_add(&t->st.self_echo, 1);
		return;
	}
	c->batch_recv++;
	if (atomic_load_explicit(&t->e->phase, RLX) == RB_PH_MEASURE)
		rb_hist_add(&t->hist, t->now > ts ? t->now - ts : 0);
}

void rb_on_ack(struct bconn *c)
{
	if (c->pending_acks && --c->pending_acks == 0 && !c->ready)
		conn_ready(c);
}

void rb_on_other(struct bconn *c)
{
	st_add(&c->t->st.other, 1);
}

void rb_on_error(struct bconn *c, const char *what, size_t n)
{
	static _Atomic int shown;
	st_add(&c->t->st.errors, 1);
	if (atomic_fetch_add(&shown, 1) < 5)
		fprintf(stderr, "relay-bench: server error on conn %u: %.*s\n", c->id,
			(int)(n > 200 ? 200 : n), what);
}

/* ---- reading --------------------------------------------------------------- */

static int tail_keep(struct bconn *c, const uint8_t *p, size_t n)
{
	if (n > RB_TAIL_LIMIT)
		return -1;
	if (c->tail.cap < n) {
		size_t cap = c->tail.cap ? c->tail.cap : 4096;
		while (cap < n)
			cap *= 2;
		free(c->tail.p);
		c->tail.p = malloc(cap);
		if (!c->tail.p)
			return -1;
		c->tail.cap = cap;
	}
	if (n)
		memmove(c->tail.p, p, n); /* tail.p may be NULL when nothing is kept */
	c->tail.len = n;
	if (!n && c->tail.cap > 65536) {
		free(c->tail.p);
		memset(&c->tail, 0, sizeof c->tail);
	}
	return 0;
}

/* SSL_read into <buf> until it is full or OpenSSL wants the socket, so a
 * short read means drained (level-triggered epoll will not report bytes
 * OpenSSL already holds). Bytes, 0 at EOF, -1 with errno. */
static ssize_t tls_read(struct bconn *c, uint8_t *buf, size_t cap)
{
	size_t got = 0;
	while (got < cap) {
		size_t n;
		ERR_clear_error();
		int r = SSL_read_ex(c->ssl, buf + got, cap - got, &n);
		if (r == 1) {
			got += n;
			continue;
		}
		int e = SSL_get_error(c->ssl, r);
		ERR_clear_error();
		if (got)
			break;
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : ECONNRESET;
		return -1;
	}
	return (ssize_t)got;
}

static void conn_read(struct rb_thread *t, struct bconn *c)
{
	/* TLS may hold decrypted bytes after a full buffer: read on for them. */
	for (int i = 0; !c->closed && (i < 8 || (c->ssl && SSL_pending(c->ssl) > 0)); i++) {
		size_t tl = c->tail.len;
		if (tl + 65536 > t->rbuf_cap) {
			size_t cap = t->rbuf_cap;
			while (tl + 65536 > cap)
				cap *= 2;
			free(t->rbuf);
			t->rbuf = malloc(cap);
			if (!t->rbuf) {
				perror("relay-bench: malloc");
				exit(2);
			}
			t->rbuf_cap = cap;
		}
		if (tl)
			memcpy(t->rbuf, c->tail.p, tl);
		ssize_t r = c->ssl ? tls_read(c, t->rbuf + tl, t->rbuf_cap - tl)
				   : read(c->fd, t->rbuf + tl, t->rbuf_cap - tl);
		if (r == 0) {
			conn_close(c, true);
			return;
		}
		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_close(c, true);
			return;
		}
		t->now = rb_now_ns();
		c->batch_recv = 0;
		size_t have = tl + (size_t)r;
		int k = t->e->proto->input(c, t->rbuf, have);
		if (c->batch_recv) {
			st_add(&t->st.delivered, c->batch_recv);
			atomic_fetch_add_explicit(&t->e->rooms[c->room].delivered, c->batch_recv, RLX);
		}
		if (k < 0 || tail_keep(c, t->rbuf + k, have - (size_t)k) < 0) {
			conn_close(c, true);
			return;
		}
		if ((size_t)r < t->rbuf_cap - tl)
			return;
	}
}

/* ---- publishing ---------------------------------------------------------------- */

static void pub_one(struct rb_thread *t, struct bconn *c)
{
	const struct rb_opts *o = t->e->o;
	rb_payload_fill(t->payload, o->size, t->now, c->id, c->seq++);
	t->e->proto->publish(c, c->room, t->payload, o->size);
}

/* Window mode: returns true when some publisher could not send (window full). */
static bool pub_window(struct rb_thread *t)
{
	struct rb_engine *e = t->e;
	bool blocked = false;
	for (size_t i = 0; i < t->npubs; i++) {
		struct bconn *c = t->pubs[i];
		if (!c->ready || c->closed)
			continue;
		struct rb_room *r = &e->rooms[c->room];
		uint64_t sent = atomic_load_explicit(&r->sent, RLX);
		uint64_t del = atomic_load_explicit(&r->delivered, RLX);
		uint64_t done = r->receivers ? del / r->receivers : sent;
		uint64_t inflight = sent > done ? sent - done : 0;
		uint64_t win = (uint64_t)e->window * r->npubs;
		if (inflight >= win || out_pending(c) >= RB_OUT_LIMIT) {
			blocked = true;
			continue;
		}
		uint64_t k = win - inflight;
		if (k > RB_PUB_PER_TURN)
			k = RB_PUB_PER_TURN;
		for (uint64_t j = 0; j < k; j++)
			pub_one(t, c);
		atomic_fetch_add_explicit(&r->sent, k, RLX);
		st_add(&t->st.sent, k);
	}
	return blocked;
}

/* Paced mode: returns true when more messages are due right now. */
static bool pub_rate(struct rb_thread *t)
{
	struct rb_engine *e = t->e;
	uint64_t gen = atomic_load_explicit(&e->rate_gen, RLX);
	if (gen != t->rate_gen_seen) {
		t->rate_gen_seen = gen;
		t->rate_t0 = t->now;
		t->rate_sent = 0;
	}
	if (!t->npubs)
		return false;
	double want = e->rate * (double)t->npubs * (double)(t->now - t->rate_t0) / 1e9;
	uint64_t due = want > (double)t->rate_sent ? (uint64_t)want - t->rate_sent : 0;
	bool more = due > RB_RATE_PER_TURN;
	if (more)
		due = RB_RATE_PER_TURN;
	size_t misses = 0;
	uint64_t sent = 0;
	while (sent < due && misses < t->npubs) {
		struct bconn *c = t->pubs[t->pub_cursor];
		t->pub_cursor = (t->pub_cursor + 1) % t->npubs;
		if (!c->ready || c->closed || out_pending(c) >= RB_OUT_LIMIT) {
			misses++;
			continue;
		}
		misses = 0;
		pub_one(t, c);
		atomic_fetch_add_explicit(&e->rooms[c->room].sent, 1, RLX);
		sent++;
	}
	t->rate_sent += sent;
	st_add(&t->st.sent, sent);
	return more;
}

/* ---- the loop ------------------------------------------------------------------- */

static void start_connects(struct rb_thread *t)
{
	unsigned batch = t->e->o->connect_batch / (unsigned)t->e->nth;
	if (batch < 8)
		batch = 8;
	while (t->next_connect < t->nconns && t->connecting < batch)
		conn_start(t, t->conns[t->next_connect++]);
}

static void handle_event(struct rb_thread *t, struct epoll_event *ev)
{
	struct bconn *c = ev->data.ptr;
	if (c->closed)
		return;
	if (c->handshaking) {
		conn_tls_handshake(c);
		return;
	}
	if (!c->connected) {
		if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_connected(c);
		return;
	}
	if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(t, c);
	if (!c->closed && (ev->events & EPOLLOUT))
		conn_flush(c);
}

/* Every RB_KEEPALIVE_NS, one no-op per ready connection: subscribers never
 * send otherwise, and relayd closes connections silent for idle_timeout. */
#define RB_KEEPALIVE_NS 15000000000ull

static void keepalive_round(struct rb_thread *t)
{
	if (t->now < t->keepalive_at)
		return;
	if (t->keepalive_at)
		for (size_t i = 0; i < t->nconns; i++) {
			struct bconn *c = t->conns[i];
			if (c->ready && !c->closed)
				t->e->proto->keepalive(c);
		}
	t->keepalive_at = t->now + RB_KEEPALIVE_NS;
}

static void *thread_main(void *arg)
{
	struct rb_thread *t = arg;
	struct rb_engine *e = t->e;
	struct epoll_event evs[256];
	for (;;) {
		int ph = atomic_load_explicit(&e->phase, memory_order_acquire);
		if (ph == RB_PH_STOP)
			break;
		t->now = rb_now_ns();
		int timeout = 20;
		start_connects(t);
		keepalive_round(t);
		if (ph == RB_PH_RUN || ph == RB_PH_MEASURE) {
			if (e->rate > 0) {
				timeout = pub_rate(t) ? 0 : 1;
			} else {
				bool blocked = pub_window(t);
				timeout = blocked ? (e->nth == 1 ? 20 : 1) : 0;
			}
		}
		flush_all(t);
		int n = epoll_wait(t->epfd, evs, 256, timeout);
		for (int i = 0; i < n; i++)
			handle_event(t, &evs[i]);
		flush_all(t);
	}
	for (size_t i = 0; i < t->nconns; i++)
		conn_close(t->conns[i], false);
	return NULL;
}

/* ---- the main thread's side ------------------------------------------------------ */

/* The TLS client context: TLS 1.2+, no certificate verification (a load
 * generator, not a client), partial writes, and retries from a buffer that
 * may have moved (realloc, compaction) while its bytes stayed the same. */
static SSL_CTX *tls_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1); /* one read() per batch of records, not two per record */
	return ctx;
}

int rb_engine_init(struct rb_engine *e, const struct rb_opts *o, size_t nconns,
		   uint32_t nrooms)
{
	memset(e, 0, sizeof *e);
	e->o = o;
	e->proto = rb_proto_get(o->proto);
	e->nth = o->threads > 0 ? o->threads : 1;
	e->window = o->window;
	e->rate = o->rate;
	int rc = o->nodes ? rb_parse_nodes(o->nodes, e->addrs, RB_MAX_NODES)
			  : rb_resolve(o->host, o->port, &e->addrs[0]);
	if (rc < 0)
		return rc;
	e->naddrs = o->nodes ? (unsigned)rc : 1;
	e->addr = e->addrs[0];
	if (o->tls && !(e->tls_ctx = tls_ctx_new()))
		return -ENOMEM;
	e->conns = calloc(nconns ? nconns : 1, sizeof *e->conns);
	e->rooms = calloc(nrooms ? nrooms : 1, sizeof *e->rooms);
	e->th = calloc((size_t)e->nth, sizeof *e->th);
	if (!e->conns || !e->rooms || !e->th)
		return -ENOMEM;
	e->nconns = nconns;
	e->nrooms = nrooms;
	for (size_t i = 0; i < nconns; i++)
		e->conns[i].fd = -1;
	return 0;
}

int rb_engine_start(struct rb_engine *e)
{
	for (int i = 0; i < e->nth; i++) {
		struct rb_thread *t = &e->th[i];
		t->idx = i;
		t->e = e;
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		t->rbuf_cap = RB_RBUF;
		t->rbuf = malloc(t->rbuf_cap);
		t->payload = malloc(e->o->size + 16);
		t->conns = calloc(e->nconns / (size_t)e->nth + 1, sizeof *t->conns);
		t->pubs = calloc(e->nconns / (size_t)e->nth + 1, sizeof *t->pubs);
		if (t->epfd == -1 || !t->rbuf || !t->payload || !t->conns || !t->pubs)
			return -ENOMEM;
		memset(t->payload, 'x', e->o->size + 16);
	}
	for (size_t i = 0; i < e->nconns; i++) {
		struct bconn *c = &e->conns[i];
		struct rb_thread *t = &e->th[i % (size_t)e->nth];
		c->t = t;
		t->conns[t->nconns++] = c;
		if (c->role != RB_ROLE_SUB) {
			t->pubs[t->npubs++] = c;
			e->rooms[c->room].npubs++;
		}
	}
	atomic_store(&e->rate_gen, 1); /* threads start their pacing clock on first use */
	for (int i = 0; i < e->nth; i++)
		if (pthread_create(&e->th[i].tid, NULL, thread_main, &e->th[i]) != 0)
			return -EAGAIN;
	return 0;
}

void rb_engine_set_phase(struct rb_engine *e, enum rb_phase ph)
{
	atomic_store_explicit(&e->phase, (int)ph, memory_order_release);
}

void rb_engine_set_rate(struct rb_engine *e, double rate)
{
	e->rate = rate; /* read by threads only after the gen bump below */
	atomic_fetch_add_explicit(&e->rate_gen, 1, memory_order_release);
}

void rb_engine_sum(struct rb_engine *e, struct rb_stats *s)
{
	memset(s, 0, sizeof *s);
	for (int i = 0; i < e->nth; i++) {
		struct rb_stats *t = &e->th[i].st;
#define SUM(f) st_add(&s->f, atomic_load_explicit(&t->f, RLX))
		SUM(sent);
		SUM(delivered);
		SUM(self_echo);
		SUM(other);
		SUM(errors);
		SUM(closed);
		SUM(connect_fail);
		SUM(connected);
		SUM(ready);
#undef SUM
	}
}

void rb_engine_hist(struct rb_engine *e, struct rb_hist *h)
{
	rb_hist_reset(h);
	for (int i = 0; i < e->nth; i++)
		rb_hist_merge(h, &e->th[i].hist);
}

void rb_engine_reset_hist(struct rb_engine *e)
{
	for (int i = 0; i < e->nth; i++)
		rb_hist_reset(&e->th[i].hist);
}

uint64_t rb_engine_expected(struct rb_engine *e)
{
	uint64_t x = 0;
	for (uint32_t r = 0; r < e->nrooms; r++)
		x += atomic_load_explicit(&e->rooms[r].sent, RLX) * e->rooms[r].receivers;
	return x;
}

void rb_engine_stop(struct rb_engine *e)
{
	rb_engine_set_phase(e, RB_PH_STOP);
	for (int i = 0; i < e->nth; i++)
		if (e->th[i].tid)
			pthread_join(e->th[i].tid, NULL);
}

void rb_engine_free(struct rb_engine *e)
{
	for (int i = 0; e->th && i < e->nth; i++) {
		struct rb_thread *t = &e->th[i];
		if (t->epfd > 0)
			close(t->epfd);
		free(t->rbuf);
		free(t->payload);
		free(t->conns);
		free(t->pubs);
	}
	free(e->th);
	free(e->conns);
	free(e->rooms);
	SSL_CTX_free(e->tls_ctx);
	memset(e, 0, sizeof *e);
}
