/* ceiling.c -- the do-nothing relay: the least work that still delivers
 * relay-bench's fan-out and chat traffic in relayd's wire form, so that
 * bench/compare can say how close relayd is to what the machine allows.
 * Built by meson, never installed, not a server to run for anyone.
 *
 *   ceiling [--port N] [--host A.B.C.D] [--threads N]
 *   prints "ceiling listening on HOST:PORT (N threads)"; SIGTERM/SIGINT exit 0.
 *
 * What it does, and nothing else: accept; read frames; HELLO -> a HELLO ack;
 * JOIN_ROOM / LEAVE_ROOM -> remember / forget the room, ack in the client's
 * encoding; HEARTBEAT -> echo; MESSAGE -> relayd's delivery frame
 * (JSON {"room":..,"from":"conn-N","content":<verbatim>,"timestamp":..} or
 * the binary delivery envelope) copied to every other member of the room.
 * No validation, no state machine, no limits, no timers, no presence
 * events: a JSON MESSAGE must have relay-bench's fixed layout
 * {"room":"NAME","content":VALUE} (anything else is ignored), and rooms are
 * never freed. Like relayd: one thread per core with its own SO_REUSEPORT
 * listener and epoll set, up to 2 x 64 KiB read per connection per turn,
 * frames copied into a per-connection output buffer and written with one
 * send() per connection per loop turn.
 *
 * Threading: a connection is touched only by the thread that accepted it.
 * A room is shared: its member list for thread t (local[t]) is written and
 * read only by thread t, which also sets/clears its bit in the room's atomic
 * thread mask. A publishing thread delivers to its own members at once and
 * appends the encoded frame (with the room pointer) to a forward batch per
 * other thread in the mask; once per turn it hands each batch over (a
 * mutex-protected list, an eventfd write when the list was empty), and the
 * receiving thread copies every frame to its local members of the room.
 * That is the same delivery relayd must do (members on other threads get
 * every message), done the cheapest way this file could find.
 */
#include "relay/protocol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CL_MAX_THREADS 64
#define CL_SCRATCH (64 * 1024) /* per-thread read buffer (relayd: 64 KiB) */
#define CL_READS_PER_TURN 2    /* per connection (relayd: 2 x 64 KiB) */
#define CL_EVENTS 512
#define CL_FWD_CHUNK (64 * 1024) /* forward batch allocation */
#define CL_OUT_LIMIT (64u << 20) /* a reader this far behind is dropped */
#define CL_ROOM_BUCKETS 4096
#define CL_TS_DIGITS 13

/* ---- data ---------------------------------------------------------------- */

struct cl_room;

struct cl_conn {
	int fd;
	bool dead, wblocked, on_flush, on_read;
	bool rdhup; /* the peer's FIN was reported: read on to EOF */
	struct cl_conn *flush_next, *read_next, *dead_next;
	uint8_t *out; /* pending output: out[out_off, out_len) */
	uint32_t out_off, out_len, out_cap;
	uint8_t *tail; /* an incomplete frame carried to the next read */
	uint32_t tail_len, tail_cap;
	struct cl_room **rooms;
	uint32_t nrooms, rooms_cap;
	uint8_t from_len;
	char from[23]; /* "conn-N", the delivery's "from" */
};

struct cl_members {
	struct cl_conn **v;
	uint32_t n, cap;
};

struct cl_room {
	struct cl_room *next;	/* hash chain */
	_Atomic uint64_t tmask; /* threads with local members */
	uint8_t nlen;
	char name[RELAY_ROOM_MAX_BYTES];
	struct cl_members local[CL_MAX_THREADS];
};

/* A forward batch: records of [struct cl_room *][frame], back to back. */
struct cl_fwd {
	struct cl_fwd *next;
	uint32_t len, cap;
	uint8_t data[];
};

struct cl_thread {
	unsigned id;
	pthread_t th;
	int epfd, lfd, efd;
	uint8_t *scratch;
	struct cl_conn *flush_head, *read_head, *dead_head;
	struct cl_fwd *fwd[CL_MAX_THREADS]; /* batches this turn, per target, LIFO */
	uint64_t fwd_mask;		    /* targets with a batch this turn */
	pthread_mutex_t in_mu;		    /* guards in_head */
	struct cl_fwd *in_head;		    /* batches handed to us, LIFO */
	char ts[CL_TS_DIGITS + 1];	    /* this turn's timestamp, ms since epoch */
};

static struct cl_thread cl_threads[CL_MAX_THREADS];
static unsigned cl_nthreads;
static _Atomic uint32_t cl_next_id = 1;
static pthread_mutex_t cl_rooms_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cl_room *cl_rooms[CL_ROOM_BUCKETS];

/* Tags for epoll data: connections are pointers, these are not. */
static char cl_tag_listen, cl_tag_inbox;

static void *cl_xalloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q) {
		fputs("ceiling: out of memory\n", stderr);
		abort();
	}
	return q;
}

/* ---- rooms (JOIN/LEAVE only: never on the message path) ------------------ */

static uint32_t cl_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static struct cl_room *cl_room_get(const char *name, size_t n)
{
	uint32_t b = cl_hash(name, n) % CL_ROOM_BUCKETS;
	pthread_mutex_lock(&cl_rooms_mu);
	struct cl_room *r = cl_rooms[b];
	while (r && (r->nlen != n || memcmp(r->name, name, n)))
		r = r->next;
	if (!r) {
		r = cl_xalloc(NULL, sizeof(*r));
		memset(r, 0, sizeof(*r));
		r->nlen = (uint8_t)n;
		memcpy(r->name, name, n);
		r->next = cl_rooms[b];
		cl_rooms[b] = r;
	}
	pthread_mutex_unlock(&cl_rooms_mu);
	return r;
}

static long cl_conn_room(const struct cl_conn *c, const uint8_t *name, size_t n)
{
	for (uint32_t i = 0; i < c->nrooms; i++)
		if (c->rooms[i]->nlen == n && !memcmp(c->rooms[i]->name, name, n))
			return i;
	return -1;
}

static void cl_join(struct cl_thread *t, struct cl_conn *c, const uint8_t *name, size_t n)
{
	if (n == 0 || n > RELAY_ROOM_MAX_BYTES || cl_conn_room(c, name, n) >= 0)
		return;
	struct cl_room *r = cl_room_get((const char *)name, n);
	struct cl_members *m = &r->local[t->id];
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 8;
		m->v = cl_xalloc(m->v, m->cap * sizeof(*m->v));
	}
	m->v[m->n++] = c;
	if (m->n == 1)
		atomic_fetch_or(&r->tmask, 1ull << t->id);
	if (c->nrooms == c->rooms_cap) {
		c->rooms_cap = c->rooms_cap ? 2 * c->rooms_cap : 2;
		c->rooms = cl_xalloc(c->rooms, c->rooms_cap * sizeof(*c->rooms));
	}
	c->rooms[c->nrooms++] = r;
}

static void cl_leave_slot(struct cl_thread *t, struct cl_conn *c, uint32_t slot)
{
	struct cl_room *r = c->rooms[slot];
	struct cl_members *m = &r->local[t->id];
	for (uint32_t i = 0; i < m->n; i++) {
		if (m->v[i] == c) {
			m->v[i] = m->v[--m->n]; /* order among members does not matter */
			break;
		}
	}
	if (m->n == 0)
		atomic_fetch_and(&r->tmask, ~(1ull << t->id));
	c->rooms[slot] = c->rooms[--c->nrooms];
}

/* ---- output ---------------------------------------------------------------- */

static void cl_want_flush(struct cl_thread *t, struct cl_conn *c)
{
	if (!c->on_flush && !c->wblocked) {
		c->on_flush = true;
		c->flush_next = t->flush_head;
		t->flush_head = c;
	}
}

/* Room for <n> more bytes at the end of <c>'s output; the caller writes
 * them and adds <n> to out_len. */
static uint8_t *cl_out_reserve(struct cl_conn *c, uint32_t n)
{
	if (c->out_len + n > c->out_cap) {
		if (c->out_off) { /* slide the unsent bytes down first */
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		if (c->out_len + n > c->out_cap) {
			uint32_t cap = c->out_cap ? c->out_cap : 4096;
			while (cap < c->out_len + n)
				cap *= 2;
			c->out = cl_xalloc(c->out, cap);
			c->out_cap = cap;
		}
	}
	return c->out + c->out_len;
}

static void cl_close(struct cl_thread *t, struct cl_conn *c);

static void cl_send_frame(struct cl_thread *t, struct cl_conn *c, uint8_t type, uint8_t flags,
			  const void *p, size_t n)
{
	uint8_t *w = cl_out_reserve(c, (uint32_t)(RELAY_FRAME_HDR_BYTES + n));
	c->out_len += (uint32_t)relay_frame_encode(w, type, flags, p, (uint32_t)n);
	cl_want_flush(t, c);
}

/* Copies one delivery frame to every local member of <r> but <skip>. */
static void cl_deliver(struct cl_thread *t, struct cl_room *r, const uint8_t *f, uint32_t n,
		       const struct cl_conn *skip)
{
	const struct cl_members *m = &r->local[t->id];
	for (uint32_t i = 0; i < m->n; i++) {
		struct cl_conn *c = m->v[i];
		if (c == skip || c->dead)
			continue;
		memcpy(cl_out_reserve(c, n), f, n);
		c->out_len += n;
		if (c->out_len - c->out_off > CL_OUT_LIMIT) {
			cl_close(t, c); /* swaps the member list: keep i */
			i--;
			continue;
		}
		cl_want_flush(t, c);
	}
}

static void cl_flush(struct cl_thread *t)
{
	struct cl_conn *c = t->flush_head;
	t->flush_head = NULL;
	for (struct cl_conn *next; c; c = next) {
		next = c->flush_next;
		c->on_flush = false;
		if (c->dead || c->out_len == c->out_off)
			continue;
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				c->wblocked = true;
			else
				cl_close(t, c);
			continue;
		}
		c->out_off += (uint32_t)w;
		if (c->out_off < c->out_len) {
			c->wblocked = true; /* the next EPOLLOUT edge flushes again */
			continue;
		}
		c->out_off = c->out_len = 0;
	}
}

/* ---- forwarding to other threads ----------------------------------------- */

static void cl_forward(struct cl_thread *t, unsigned to, struct cl_room *r, const uint8_t *f,
		       uint32_t n)
{
	struct cl_fwd *b = t->fwd[to];
	uint32_t need = (uint32_t)sizeof(r) + n;
	if (!b || b->len + need > b->cap) {
		uint32_t cap = need > CL_FWD_CHUNK ? need : CL_FWD_CHUNK;
		struct cl_fwd *nb = cl_xalloc(NULL, sizeof(*nb) + cap);
		nb->next = b;
		nb->len = 0;
		nb->cap = cap;
		t->fwd[to] = b = nb;
		t->fwd_mask |= 1ull << to;
	}
	memcpy(b->data + b->len, &r, sizeof(r));
	memcpy(b->data + b->len + sizeof(r), f, n);
	b->len += need;
}

/* Hands this turn's batches over: one lock and at most one eventfd write
 * per target thread per turn. Batches are kept newest first; the receiver
 * reverses them, so one sender's frames stay in order. */
static void cl_forward_publish(struct cl_thread *t)
{
	for (uint64_t mask = t->fwd_mask; mask; mask &= mask - 1) {
		unsigned to = (unsigned)__builtin_ctzll(mask);
		struct cl_thread *d = &cl_threads[to];
		struct cl_fwd *first = t->fwd[to], *last = first;
		while (last->next)
			last = last->next;
		t->fwd[to] = NULL;
		pthread_mutex_lock(&d->in_mu);
		bool was_empty = d->in_head == NULL;
		last->next = d->in_head;
		d->in_head = first;
		pthread_mutex_unlock(&d->in_mu);
		if (was_empty) {
			uint64_t one = 1;
			ssize_t w = write(d->efd, &one, sizeof(one));
			(void)w; /* EAGAIN: the counter is non-zero, it wakes anyway */
		}
	}
	t->fwd_mask = 0;
}

static void cl_inbox_drain(struct cl_thread *t)
{
	uint64_t v;
	ssize_t rd = read(t->efd, &v, sizeof(v)); /* reset before taking the list */
	(void)rd;
	pthread_mutex_lock(&t->in_mu);
	struct cl_fwd *b = t->in_head, *rev = NULL;
	t->in_head = NULL;
	pthread_mutex_unlock(&t->in_mu);
	while (b) { /* newest first -> oldest first */
		struct cl_fwd *n = b->next;
		b->next = rev;
		rev = b;
		b = n;
	}
	for (b = rev; b; b = rev) {
		rev = b->next;
		for (uint32_t o = 0; o < b->len;) {
			struct cl_room *r;
			memcpy(&r, b->data + o, sizeof(r));
			const uint8_t *f = b->data + o + sizeof(r);
			uint32_t n = RELAY_FRAME_LEN_BYTES + relay_frame_length(f);
			cl_deliver(t, r, f, n, NULL);
			o += (uint32_t)sizeof(r) + n;
		}
		free(b);
	}
}

/* ---- frames ----------------------------------------------------------------- */

/* The delivery frame of a MESSAGE from <c> into <out> (room for
 * 7 + 64 + payload + 64 bytes); returns its length, 0 if the MESSAGE does
 * not have the layout this relay understands. *<room> gets <c>'s room. */
static uint32_t cl_encode(struct cl_thread *t, struct cl_conn *c, const struct relay_frame *f,
			  uint8_t *out, struct cl_room **room)
{
	static const char pre[] = "{\"room\":\"", mid[] = "\",\"content\":";
	const uint8_t *p = f->payload, *name, *data;
	size_t nlen, dlen;
	uint8_t *o = out + RELAY_FRAME_HDR_BYTES;

	if (f->flags & RELAY_FLAG_BINARY) {
		if (f->len < 1 || (size_t)p[0] + 1 > f->len)
			return 0;
		name = p + 1, nlen = p[0];
		data = name + nlen, dlen = f->len - 1 - nlen;
	} else {
		if (f->len < sizeof(pre) - 1 + sizeof(mid) || memcmp(p, pre, sizeof(pre) - 1))
			return 0;
		name = p + sizeof(pre) - 1;
		const uint8_t *q = memchr(name, '"', f->len - (sizeof(pre) - 1));
		if (!q || (size_t)(p + f->len - q) < sizeof(mid) || memcmp(q, mid, sizeof(mid) - 1))
			return 0;
		nlen = (size_t)(q - name);
		data = q + sizeof(mid) - 1;
		dlen = (size_t)(p + f->len - 1 - data); /* up to the closing brace */
	}
	long slot = cl_conn_room(c, name, nlen);
	if (slot < 0)
		return 0;
	*room = c->rooms[slot];
	if (f->flags & RELAY_FLAG_BINARY) {
		*o++ = (uint8_t)nlen;
		memcpy(o, name, nlen), o += nlen;
		*o++ = c->from_len;
		memcpy(o, c->from, c->from_len), o += c->from_len;
		memcpy(o, data, dlen), o += dlen;
	} else {
		memcpy(o, pre, sizeof(pre) - 1), o += sizeof(pre) - 1;
		memcpy(o, name, nlen), o += nlen;
		memcpy(o, "\",\"from\":\"", 10), o += 10;
		memcpy(o, c->from, c->from_len), o += c->from_len;
		memcpy(o, mid, sizeof(mid) - 1), o += sizeof(mid) - 1;
		memcpy(o, data, dlen), o += dlen;
		memcpy(o, ",\"timestamp\":", 13), o += 13;
		memcpy(o, t->ts, CL_TS_DIGITS), o += CL_TS_DIGITS;
		*o++ = '}';
	}
	uint32_t plen = (uint32_t)(o - out - RELAY_FRAME_HDR_BYTES);
	relay_frame_put_header(out, RELAY_MSG_MESSAGE,
			       f->flags & RELAY_FLAG_BINARY ? RELAY_FLAG_BINARY : RELAY_FLAG_JSON,
			       plen);
	return RELAY_FRAME_HDR_BYTES + plen;
}

static void cl_message(struct cl_thread *t, struct cl_conn *c, const struct relay_frame *f)
{
	uint8_t stack[4096], *heap = NULL, *buf = stack;
	size_t cap = (size_t)f->len + 160;
	if (cap > sizeof(stack))
		buf = heap = cl_xalloc(NULL, cap);
	struct cl_room *r;
	uint32_t n = cl_encode(t, c, f, buf, &r);
	if (n) {
		cl_deliver(t, r, buf, n, c);
		uint64_t others =
		    atomic_load_explicit(&r->tmask, memory_order_relaxed) & ~(1ull << t->id);
		for (; others; others &= others - 1)
			cl_forward(t, (unsigned)__builtin_ctzll(others), r, buf, n);
	}
	free(heap);
}

/* The room name of a JOIN/LEAVE: the binary payload, or relay-bench's
 * {"room":"NAME"}. */
static bool cl_room_arg(const struct relay_frame *f, const uint8_t **name, size_t *n)
{
	if (f->flags & RELAY_FLAG_BINARY) {
		*name = f->payload, *n = f->len;
		return true;
	}
	if (f->len < 11 || memcmp(f->payload, "{\"room\":\"", 9))
		return false;
	*name = f->payload + 9;
	const uint8_t *q = memchr(*name, '"', f->len - 9);
	if (!q)
		return false;
	*n = (size_t)(q - *name);
	return true;
}

static void cl_room_op(struct cl_thread *t, struct cl_conn *c, const struct relay_frame *f)
{
	const uint8_t *name;
	size_t n;
	if (!cl_room_arg(f, &name, &n) || n > RELAY_ROOM_MAX_BYTES)
		return;
	bool join = f->type == RELAY_MSG_JOIN_ROOM;
	if (join) {
		cl_join(t, c, name, n);
	} else {
		long slot = cl_conn_room(c, name, n);
		if (slot >= 0)
			cl_leave_slot(t, c, (uint32_t)slot);
	}
	if (f->flags & RELAY_FLAG_BINARY) {
		cl_send_frame(t, c, f->type, RELAY_FLAG_BINARY, name, n);
		return;
	}
	char js[128];
	int jl = snprintf(js, sizeof(js), "{\"status\":\"%s\",\"room\":\"%.*s\"}",
			  join ? "joined" : "left", (int)n, (const char *)name);
	cl_send_frame(t, c, f->type, RELAY_FLAG_JSON, js, (size_t)jl);
}

static void cl_frame(struct cl_thread *t, struct cl_conn *c, const struct relay_frame *f)
{
	static const char hello[] = "{\"status\":\"connected\"}";
	switch (f->type) {
	case RELAY_MSG_MESSAGE:
		cl_message(t, c, f);
		break;
	case RELAY_MSG_HELLO:
		cl_send_frame(t, c, RELAY_MSG_HELLO, RELAY_FLAG_JSON, hello, sizeof(hello) - 1);
		break;
	case RELAY_MSG_JOIN_ROOM:
	case RELAY_MSG_LEAVE_ROOM:
		cl_room_op(t, c, f);
		break;
	case RELAY_MSG_HEARTBEAT:
		cl_send_frame(t, c, RELAY_MSG_HEARTBEAT, f->flags, f->payload, f->len);
		break;
	default:
		break;
	}
}

/* Handles every whole frame in <p>[0, n); returns the bytes consumed. */
static size_t cl_parse(struct cl_thread *t, struct cl_conn *c, const uint8_t *p, size_t n)
{
	size_t o = 0;
	while (n - o >= RELAY_FRAME_HDR_BYTES && !c->dead) {
		uint32_t len = relay_frame_length(p + o);
		if (len < RELAY_FRAME_MIN_LENGTH || len > RELAY_DEFAULT_MAX_FRAME) {
			cl_close(t, c);
			break;
		}
		if (n - o < RELAY_FRAME_LEN_BYTES + (size_t)len)
			break;
		struct relay_frame f = {
		    .version = p[o + RELAY_FRAME_VERSION_OFFSET],
		    .type = p[o + RELAY_FRAME_TYPE_OFFSET],
		    .flags = p[o + RELAY_FRAME_FLAGS_OFFSET],
		    .payload = p + o + RELAY_FRAME_HDR_BYTES,
		    .len = len - (RELAY_FRAME_HDR_BYTES - RELAY_FRAME_LEN_BYTES),
		};
		cl_frame(t, c, &f);
		o += RELAY_FRAME_LEN_BYTES + len;
	}
	return o;
}

static void cl_input(struct cl_thread *t, struct cl_conn *c, const uint8_t *p, size_t n)
{
	if (c->tail_len) { /* finish the carried frame first: append, parse the tail */
		if (c->tail_len + n > c->tail_cap) {
			c->tail_cap = (uint32_t)(c->tail_len + n);
			c->tail = cl_xalloc(c->tail, c->tail_cap);
		}
		memcpy(c->tail + c->tail_len, p, n);
		c->tail_len += (uint32_t)n;
		size_t used = cl_parse(t, c, c->tail, c->tail_len);
		memmove(c->tail, c->tail + used, c->tail_len - used);
		c->tail_len -= (uint32_t)used;
		return;
	}
	size_t used = cl_parse(t, c, p, n);
	if (used < n && !c->dead) {
		if (n - used > c->tail_cap) {
			c->tail_cap = (uint32_t)(n - used);
			c->tail = cl_xalloc(c->tail, c->tail_cap);
		}
		memcpy(c->tail, p + used, n - used);
		c->tail_len = (uint32_t)(n - used);
	}
}

/* ---- connections ---------------------------------------------------------- */

static void cl_close(struct cl_thread *t, struct cl_conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	while (c->nrooms)
		cl_leave_slot(t, c, c->nrooms - 1);
	c->dead_next = t->dead_head;
	t->dead_head = c;
}

static void cl_free_dead(struct cl_thread *t)
{
	while (t->dead_head) {
		struct cl_conn *c = t->dead_head;
		t->dead_head = c->dead_next;
		close(c->fd);
		free(c->out);
		free(c->tail);
		free(c->rooms);
		free(c);
	}
}

static void cl_read(struct cl_thread *t, struct cl_conn *c)
{
	for (int i = 0; i < CL_READS_PER_TURN; i++) {
		ssize_t n = recv(c->fd, t->scratch, CL_SCRATCH, MSG_DONTWAIT);
		if (n > 0) {
			cl_input(t, c, t->scratch, (size_t)n);
			if (c->dead || (n < CL_SCRATCH && !c->rdhup))
				return; /* a short read drained the socket (edge-triggered) */
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			cl_close(t, c);
		return;
	}
	if (!c->on_read) { /* budget spent: read on next turn, after the others */
		c->on_read = true;
		c->read_next = t->read_head;
		t->read_head = c;
	}
}

static void cl_accept(struct cl_thread *t)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1)
			return;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct cl_conn *c = cl_xalloc(NULL, sizeof(*c));
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->from_len = (uint8_t)snprintf(c->from, sizeof(c->from), "conn-%u",
						atomic_fetch_add(&cl_next_id, 1));
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
					 .data.ptr = c};
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			free(c);
		}
	}
}

static void cl_event(struct cl_thread *t, struct cl_conn *c, uint32_t ev)
{
	if (c->dead)
		return;
	if (ev & EPOLLOUT) {
		c->wblocked = false;
		if (c->out_len > c->out_off)
			cl_want_flush(t, c);
	}
	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->rdhup = true;
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		cl_read(t, c);
}

/* ---- the loop --------------------------------------------------------------- */

static void cl_stamp(struct cl_thread *t)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	for (int i = CL_TS_DIGITS - 1; i >= 0; i--, ms /= 10)
		t->ts[i] = (char)('0' + ms % 10);
}

static void *cl_thread_main(void *arg)
{
	struct cl_thread *t = arg;
	struct epoll_event evs[CL_EVENTS];
	char name[16];
	snprintf(name, sizeof(name), "ceiling-w%u", t->id);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		int n = epoll_wait(t->epfd, evs, CL_EVENTS, t->read_head ? 0 : -1);
		cl_stamp(t);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &cl_tag_listen)
				cl_accept(t);
			else if (p == &cl_tag_inbox)
				cl_inbox_drain(t);
			else
				cl_event(t, p, evs[i].events);
		}
		struct cl_conn *rd = t->read_head;
		t->read_head = NULL;
		for (struct cl_conn *next; rd; rd = next) {
			next = rd->read_next;
			rd->on_read = false;
			if (!rd->dead)
				cl_read(t, rd);
		}
		cl_forward_publish(t);
		cl_flush(t);
		cl_free_dead(t);
	}
	return NULL;
}

/* ---- start-up ------------------------------------------------------------------ */

static int cl_listen(const char *host, unsigned *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 || listen(fd, 4096) == -1)
		return -1;
	socklen_t l = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &l) == -1)
		return -1;
	*port = ntohs(a.sin_port); /* port 0: the others bind the port the first got */
	return fd;
}

static int cl_thread_init(struct cl_thread *t, unsigned id, const char *host, unsigned *port)
{
	t->id = id;
	pthread_mutex_init(&t->in_mu, NULL);
	t->scratch = cl_xalloc(NULL, CL_SCRATCH);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t->lfd = cl_listen(host, port);
	if (t->epfd == -1 || t->efd == -1 || t->lfd == -1)
		return -1;
	struct epoll_event le = {.events = EPOLLIN, .data.ptr = &cl_tag_listen};
	struct epoll_event ie = {.events = EPOLLIN, .data.ptr = &cl_tag_inbox};
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->lfd, &le) == -1 ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->efd, &ie) == -1)
		return -1;
	return 0;
}

static void cl_usage(void)
{
	fputs("usage: ceiling [--port N] [--host A.B.C.D] [--threads N]\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	unsigned port = 0;
	long nt = sysconf(_SC_NPROCESSORS_ONLN);
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			cl_usage();
		if (!strcmp(argv[i], "--port"))
			port = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--host"))
			host = argv[++i];
		else if (!strcmp(argv[i], "--threads"))
			nt = strtol(argv[++i], NULL, 10);
		else
			cl_usage();
	}
	if (nt < 1 || nt > CL_MAX_THREADS || port > 65535)
		cl_usage();
	cl_nthreads = (unsigned)nt;

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* inherited by every thread */
	for (unsigned i = 0; i < cl_nthreads; i++) {
		if (cl_thread_init(&cl_threads[i], i, host, &port) < 0) {
			fprintf(stderr, "ceiling: cannot listen on %s:%u: %s\n", host, port,
				strerror(errno));
			return 1;
		}
	}
	for (unsigned i = 0; i < cl_nthreads; i++) {
		if (pthread_create(&cl_threads[i].th, NULL, cl_thread_main, &cl_threads[i])) {
			fputs("ceiling: cannot start threads\n", stderr);
			return 1;
		}
	}
	printf("ceiling listening on %s:%u (%u threads)\n", host, port, cl_nthreads);
	fflush(stdout);
	int sig;
	sigwait(&sigs, &sig);
	_exit(0); /* threads and sockets go with the process */
}
