/* chaos_check.c -- the delivery invariants that chaos checks, from what its
 * clients sent and received.
 *
 * Every message's content names its sender instance, room, a sequence number
 * per (sender instance, room) and its own length. Checked on every delivery:
 * - no duplicate: a connection gets each message at most once;
 * - order: one sender's messages to one room arrive in sequence order;
 * - membership: a room's MESSAGE frames (deliveries and presence events)
 *   arrive only while the last acked JOIN/LEAVE of that room was a JOIN (acks
 *   and deliveries share the connection's FIFO, so this is exact);
 * - self-echo only for instances whose HELLO said "echo":true;
 * - content, room and "from" as sent.
 * Required deliveries: a membership starts when its JOIN ack is read. A
 * message is required for it when the message's last byte was written after
 * that (the server then handled the JOIN, sent the ack, and only then read
 * the message, on whatever worker). Within one membership, receiving message
 * k proves that every required message before k reached the member's worker
 * while it was a member, so a gap below k is a violation whatever happens to
 * either side later. At the end, memberships still open between healthy
 * instances (no LEAVE, no reset, no eviction, no protocol violation) must
 * have received every required message the healthy sender wrote.
 * Threading: main thread only; the order of calls is the clock.
 */
#include "bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK_NONE UINT32_MAX /* k0: nothing required */
#define CK_GAPS 4	   /* gaps remembered per (receiver, sender, room) */
#define CK_EXAMPLES 3	   /* violations printed per kind */

/* Content layout: "K<id:8>.<room:2>.<seq:8>.<len:6>.zzz…" (hex, quotes included). */
#define CT_ID 2
#define CT_ROOM 11
#define CT_SEQ 14
#define CT_LEN 23
#define CT_FILL 30

static const char *const kind_names[RB_CK_NKINDS] = {
    [RB_CK_DUPLICATE] = "duplicate",
    [RB_CK_ORDER] = "order",
    [RB_CK_BEFORE_JOIN] = "before_join_ack",
    [RB_CK_AFTER_LEAVE] = "after_leave_ack",
    [RB_CK_MISSING] = "missing",
    [RB_CK_SELF_ECHO] = "self_echo",
    [RB_CK_CORRUPT] = "corrupt",
    [RB_CK_REPLY] = "reply_order",
};

struct ck_inst { /* every instance ever opened; index id - 1 */
	uint64_t open_ev;
	uint64_t conn_num; /* N of its "conn-N" from the HELLO ack; 0: unknown */
	uint32_t slot;
	bool echo;
};

struct ck_rs { /* what a receiver got from one sender in one room */
	struct ck_rs *next;
	uint32_t sender;
	uint32_t last; /* highest sequence received, 0: none */
	uint32_t k0;   /* first sequence the current membership requires */
	uint8_t ngaps;
	bool gaps_lost; /* more gaps than remembered */
	uint32_t gap_lo[CK_GAPS], gap_hi[CK_GAPS];
};

struct ck_member {	 /* one instance's standing in one room */
	bool member;	 /* the last acked JOIN/LEAVE was a JOIN */
	bool acked;	 /* some JOIN/LEAVE of this room was acked */
	uint64_t ack_ev; /* when the current membership's JOIN ack was read */
};

struct ck_req {
	uint8_t type;
	int16_t room;
};

struct ck_pend { /* a queued message whose last byte is not written yet */
	uint64_t end;
	uint32_t room;
};

struct ck_slot {
	uint32_t id; /* current instance, 0: none */
	bool healthy;
	struct ck_member *mem; /* [rooms] */
	uint32_t *sent;	       /* [rooms] messages queued */
	uint32_t *written;     /* [rooms] messages whose last byte is written */
	struct ck_rs **rs;     /* [sender slot * rooms + room] */
	struct ck_req *req;
	size_t req_head, req_len, req_cap;
	struct ck_pend *pend;
	size_t pend_head, pend_len, pend_cap;
};

struct rb_ck {
	unsigned nslots, nrooms;
	struct ck_slot *s;
	struct ck_inst *inst;
	uint32_t ninst, inst_cap;
	uint64_t ev;
	uint64_t count[RB_CK_NKINDS];  /* violations */
	uint64_t events[RB_CK_NKINDS]; /* times one was found (examples printed) */
	uint64_t deliveries, presence, required_seen, missing_end;
};

static void ck_violation(struct rb_ck *k, enum rb_ck_kind kind, uint64_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Counts <n> violations of <kind> (messages for RB_CK_MISSING, else events)
 * and prints the first few events of each kind. */
static void ck_violation(struct rb_ck *k, enum rb_ck_kind kind, uint64_t n, const char *fmt, ...)
{
	k->count[kind] += n;
	if (++k->events[kind] > CK_EXAMPLES)
		return;
	char text[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	fprintf(stderr, "relay-bench: chaos: VIOLATION %s: %s\n", kind_names[kind], text);
}

/* ---- small queues ------------------------------------------------------------ */

/* Makes room for one more element at <*len>; false on ENOMEM. */
static bool q_grow(void **p, size_t *head, size_t *len, size_t *cap, size_t elem)
{
	if (*len < *cap)
		return true;
	if (*head) {
		memmove(*p, (char *)*p + *head * elem, (*len - *head) * elem);
		*len -= *head;
		*head = 0;
		return true;
	}
	size_t nc = *cap ? *cap * 2 : 16;
	void *np = realloc(*p, nc * elem);
	if (!np)
		return false;
	*p = np;
	*cap = nc;
	return true;
}

/* ---- lifecycle ------------------------------------------------------------------ */

struct rb_ck *rb_ck_new(unsigned slots, unsigned rooms)
{
	struct rb_ck *k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	k->nslots = slots;
	k->nrooms = rooms;
	k->s = calloc(slots, sizeof *k->s);
	if (!k->s) {
		free(k);
		return NULL;
	}
	for (unsigned i = 0; i < slots; i++) {
		struct ck_slot *s = &k->s[i];
		s->mem = calloc(rooms, sizeof *s->mem);
		s->sent = calloc(rooms, sizeof *s->sent);
		s->written = calloc(rooms, sizeof *s->written);
		s->rs = calloc((size_t)slots * rooms, sizeof *s->rs);
		if (!s->mem || !s->sent || !s->written || !s->rs) {
			rb_ck_free(k);
			return NULL;
		}
	}
	return k;
}

static void slot_clear(struct rb_ck *k, struct ck_slot *s)
{
	for (size_t i = 0; i < (size_t)k->nslots * k->nrooms; i++)
		while (s->rs[i]) {
			struct ck_rs *n = s->rs[i]->next;
			free(s->rs[i]);
			s->rs[i] = n;
		}
	memset(s->mem, 0, k->nrooms * sizeof *s->mem);
	memset(s->sent, 0, k->nrooms * sizeof *s->sent);
	memset(s->written, 0, k->nrooms * sizeof *s->written);
	s->req_head = s->req_len = 0;
	s->pend_head = s->pend_len = 0;
	s->id = 0;
	s->healthy = false;
}

void rb_ck_free(struct rb_ck *k)
{
	if (!k)
		return;
	for (unsigned i = 0; i < k->nslots; i++) {
		struct ck_slot *s = &k->s[i];
		if (s->rs)
			slot_clear(k, s);
		free(s->mem);
		free(s->sent);
		free(s->written);
		free(s->rs);
		free(s->req);
		free(s->pend);
	}
	free(k->s);
	free(k->inst);
	free(k);
}

void rb_ck_open(struct rb_ck *k, unsigned slot, bool echo)
{
	struct ck_slot *s = &k->s[slot];
	slot_clear(k, s);
	if (k->ninst == k->inst_cap) {
		uint32_t nc = k->inst_cap ? k->inst_cap * 2 : 1024;
		struct ck_inst *ni = realloc(k->inst, nc * sizeof *ni);
		if (!ni)
			return; /* stays closed: nothing is recorded for it */
		k->inst = ni;
		k->inst_cap = nc;
	}
	k->inst[k->ninst] = (struct ck_inst){.open_ev = ++k->ev, .slot = slot, .echo = echo};
	s->id = ++k->ninst;
	s->healthy = true;
}

void rb_ck_close(struct rb_ck *k, unsigned slot)
{
	slot_clear(k, &k->s[slot]);
}

void rb_ck_unhealthy(struct rb_ck *k, unsigned slot)
{
	k->s[slot].healthy = false;
}

uint32_t rb_ck_id(const struct rb_ck *k, unsigned slot)
{
	return k->s[slot].id;
}

/* ---- what the clients send ------------------------------------------------------ */

void rb_ck_request(struct rb_ck *k, unsigned slot, uint8_t type, int room)
{
	struct ck_slot *s = &k->s[slot];
	if (!s->id ||
	    !q_grow((void **)&s->req, &s->req_head, &s->req_len, &s->req_cap, sizeof *s->req))
		return;
	s->req[s->req_len++] = (struct ck_req){type, (int16_t)room};
}

uint32_t rb_ck_publish(struct rb_ck *k, unsigned slot, unsigned room, uint64_t stream_end)
{
	struct ck_slot *s = &k->s[slot];
	if (!s->id ||
	    !q_grow((void **)&s->pend, &s->pend_head, &s->pend_len, &s->pend_cap, sizeof *s->pend))
		return 0;
	s->pend[s->pend_len++] = (struct ck_pend){stream_end, room};
	return ++s->sent[room];
}

void rb_ck_written(struct rb_ck *k, unsigned slot, uint64_t stream_bytes)
{
	struct ck_slot *s = &k->s[slot];
	while (s->pend_head < s->pend_len && s->pend[s->pend_head].end <= stream_bytes)
		s->written[s->pend[s->pend_head++].room]++;
	if (s->pend_head == s->pend_len)
		s->pend_head = s->pend_len = 0;
}

static const char hexd[16] = "0123456789abcdef";

static void put_hex(uint8_t *p, uint64_t v, unsigned digits)
{
	for (unsigned i = digits; i-- > 0; v >>= 4)
		p[i] = (uint8_t)hexd[v & 15];
}

void rb_ck_content(uint8_t *p, size_t n, uint32_t id, unsigned room, uint32_t seq)
{
	memset(p, 'z', n);
	p[0] = '"';
	p[1] = 'K';
	put_hex(p + CT_ID, id, 8);
	put_hex(p + CT_ROOM, room, 2);
	put_hex(p + CT_SEQ, seq, 8);
	put_hex(p + CT_LEN, n, 6);
	p[CT_ROOM - 1] = p[CT_SEQ - 1] = p[CT_LEN - 1] = p[CT_FILL - 1] = '.';
	p[n - 1] = '"';
}

/* ---- what the clients receive --------------------------------------------------- */

static bool get_hex(const uint8_t *p, unsigned digits, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < digits; i++) {
		const char *d = memchr(hexd, p[i], sizeof hexd);
		if (!p[i] || !d)
			return false;
		v = v << 4 | (uint64_t)(d - hexd);
	}
	*out = v;
	return true;
}

/* Room index of a "chaos-N" JSON string token, or -1. */
static int room_of(const struct rb_ck *k, struct relay_span raw)
{
	static const char pre[] = "\"chaos-";
	size_t pl = sizeof pre - 1;
	if (raw.n < pl + 2 || raw.n > pl + 3 || memcmp(raw.p, pre, pl) != 0 ||
	    raw.p[raw.n - 1] != '"')
		return -1;
	unsigned v = 0;
	for (size_t i = pl; i < raw.n - 1; i++) {
		if (raw.p[i] < '0' || raw.p[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(raw.p[i] - '0');
	}
	return v < k->nrooms ? (int)v : -1;
}

static struct ck_rs **rs_list(struct rb_ck *k, struct ck_slot *s, uint32_t sender, unsigned room)
{
	return &s->rs[(size_t)k->inst[sender - 1].slot * k->nrooms + room];
}

static struct ck_rs *rs_find(struct rb_ck *k, struct ck_slot *s, uint32_t sender, unsigned room)
{
	for (struct ck_rs *r = *rs_list(k, s, sender, room); r; r = r->next)
		if (r->sender == sender)
			return r;
	return NULL;
}

/* What the current membership of <room> requires of <sender> when nothing
 * was recorded for it at the JOIN ack: everything if the sender connected
 * after the ack (so wrote after it), nothing if it was gone by then. */
static uint32_t k0_default(const struct rb_ck *k, const struct ck_slot *s, uint32_t sender,
			   unsigned room)
{
	const struct ck_member *m = &s->mem[room];
	return m->member && k->inst[sender - 1].open_ev > m->ack_ev ? 1 : CK_NONE;
}

static struct ck_rs *rs_get(struct rb_ck *k, struct ck_slot *s, uint32_t sender, unsigned room)
{
	struct ck_rs *r = rs_find(k, s, sender, room);
	if (r)
		return r;
	if (!(r = calloc(1, sizeof *r)))
		return NULL;
	struct ck_rs **head = rs_list(k, s, sender, room);
	r->sender = sender;
	r->k0 = k0_default(k, s, sender, room);
	r->next = *head;
	*head = r;
	return r;
}

/* A membership of <room> begins: note how many of each live sender's
 * messages were written before it (those are not required). */
static void membership_begin(struct rb_ck *k, struct ck_slot *s, unsigned room)
{
	s->mem[room] = (struct ck_member){.member = true, .acked = true, .ack_ev = ++k->ev};
	for (unsigned i = 0; i < k->nslots; i++) {
		for (struct ck_rs *r = s->rs[(size_t)i * k->nrooms + room]; r; r = r->next)
			r->k0 = CK_NONE;
		const struct ck_slot *p = &k->s[i];
		struct ck_rs *r;
		if (p->id && (r = rs_get(k, s, p->id, room)))
			r->k0 = p->written[room] + 1;
	}
}

static void ck_reply(struct rb_ck *k, unsigned slot, uint8_t type, int room)
{
	struct ck_slot *s = &k->s[slot];
	const struct ck_req *q = s->req_head < s->req_len ? &s->req[s->req_head] : NULL;
	if (!q || q->type != type || (room >= 0 && q->room != room)) {
		ck_violation(k, RB_CK_REPLY, 1,
			     "client %u (instance %u) got a %s reply (room %d); oldest request: %s "
			     "(room %d)",
			     slot, s->id, relay_msg_type_name(type), room,
			     q ? relay_msg_type_name(q->type) : "none", q ? q->room : -1);
		return;
	}
	if (++s->req_head == s->req_len)
		s->req_head = s->req_len = 0;
	if (type == RELAY_MSG_JOIN_ROOM && !s->mem[room].member)
		membership_begin(k, s, (unsigned)room);
	else if (type == RELAY_MSG_LEAVE_ROOM)
		s->mem[room].member = false, s->mem[room].acked = true;
}

static void on_hello(struct rb_ck *k, unsigned slot, const struct relay_frame *f)
{
	struct relay_json_field fl = {.key = "connectionId"};
	struct ck_slot *s = &k->s[slot];
	uint64_t num = 0;
	if (relay_json_parse(f->payload, f->len, &fl, 1, NULL) == 0 && fl.raw.n > 7 &&
	    memcmp(fl.raw.p, "\"conn-", 6) == 0) {
		for (size_t i = 6; i < fl.raw.n - 1 && fl.raw.p[i] >= '0' && fl.raw.p[i] <= '9';
		     i++)
			num = num * 10 + (uint64_t)(fl.raw.p[i] - '0');
	}
	if (s->id)
		k->inst[s->id - 1].conn_num = num;
	ck_reply(k, slot, RELAY_MSG_HELLO, -1);
}

static void on_room_ack(struct rb_ck *k, unsigned slot, const struct relay_frame *f)
{
	struct relay_json_field fl = {.key = "room"};
	int room = -1;
	if (relay_json_parse(f->payload, f->len, &fl, 1, NULL) == 0 && fl.kind == RELAY_JSON_STRING)
		room = room_of(k, fl.raw);
	if (room < 0) {
		ck_violation(k, RB_CK_REPLY, 1, "client %u: %s ack for an unknown room: %.*s", slot,
			     relay_msg_type_name(f->type), (int)(f->len < 100 ? f->len : 100),
			     (const char *)f->payload);
		return;
	}
	ck_reply(k, slot, f->type, room);
}

static void on_heartbeat(struct rb_ck *k, unsigned slot, const struct relay_frame *f)
{
	(void)f;
	ck_reply(k, slot, RELAY_MSG_HEARTBEAT, -1);
}

/* A room's MESSAGE arrived: is this slot a member? */
static bool check_member(struct rb_ck *k, unsigned slot, unsigned room, const char *what)
{
	const struct ck_member *m = &k->s[slot].mem[room];
	if (m->member)
		return true;
	ck_violation(k, m->acked ? RB_CK_AFTER_LEAVE : RB_CK_BEFORE_JOIN, 1,
		     "client %u (instance %u) got %s in chaos-%u %s", slot, k->s[slot].id, what,
		     room, m->acked ? "after its LEAVE ack" : "before any JOIN ack");
	return false;
}

static bool in_gap(const struct ck_rs *r, uint32_t seq)
{
	for (unsigned i = 0; i < r->ngaps; i++)
		if (seq >= r->gap_lo[i] && seq <= r->gap_hi[i])
			return true;
	return false;
}

/* Sequence <seq> of <r>'s sender arrived (in room <room>, while a member
 * when <member>). */
static void check_sequence(struct rb_ck *k, unsigned slot, unsigned room, struct ck_rs *r,
			   uint32_t seq, bool member)
{
	uint32_t sender = r->sender;
	if (seq <= r->last) {
		bool late = in_gap(r, seq);
		ck_violation(k, late ? RB_CK_ORDER : RB_CK_DUPLICATE, 1,
			     "client %u (instance %u) in chaos-%u: sender %u's #%u after #%u%s",
			     slot, k->s[slot].id, room, sender, seq, r->last,
			     late	    ? " (late)"
			     : r->gaps_lost ? " (duplicate or late)"
					    : " (again)");
		return;
	}
	if (seq > r->last + 1) {
		uint32_t lo = r->last + 1, hi = seq - 1, need = lo > r->k0 ? lo : r->k0;
		if (member && need <= hi) {
			ck_violation(
			    k, RB_CK_MISSING, hi - need + 1,
			    "client %u (instance %u) in chaos-%u: sender %u's #%u..#%u never "
			    "came, #%u did (joined before they were written)",
			    slot, k->s[slot].id, room, sender, need, hi, seq);
		}
		if (r->ngaps < CK_GAPS) {
			r->gap_lo[r->ngaps] = lo;
			r->gap_hi[r->ngaps++] = hi;
		} else {
			r->gaps_lost = true;
		}
	}
	r->last = seq;
	if (member && seq >= r->k0)
		k->required_seen++;
}

/* Checks the content token <c> against the frame it came in. Returns false
 * (after recording why) when it is not one of ours or does not match. */
static bool parse_content(struct rb_ck *k, unsigned slot, int frame_room, struct relay_span c,
			  uint64_t *id, uint64_t *room, uint64_t *seq)
{
	uint64_t len = 0;
	const char *why = NULL;
	if (c.n < RB_CK_CONTENT_MIN || c.p[0] != '"' || c.p[1] != 'K' ||
	    !get_hex(c.p + CT_ID, 8, id) || !get_hex(c.p + CT_ROOM, 2, room) ||
	    !get_hex(c.p + CT_SEQ, 8, seq) || !get_hex(c.p + CT_LEN, 6, &len))
		why = "not a chaos message";
	else if (len != c.n || c.p[c.n - 1] != '"')
		why = "length differs from what was sent";
	else if (*id == 0 || *id > k->ninst || *seq == 0)
		why = "unknown sender";
	else if ((int)*room != frame_room)
		why = "room differs from the frame's";
	for (size_t i = CT_FILL; !why && i < c.n - 1; i++)
		if (c.p[i] != 'z')
			why = "filler bytes changed";
	if (!why)
		return true;
	ck_violation(k, RB_CK_CORRUPT, 1, "client %u: %s: %.*s", slot, why,
		     (int)(c.n < 40 ? c.n : 40), (const char *)c.p);
	return false;
}

static bool from_matches(const struct rb_ck *k, uint32_t sender, struct relay_span from)
{
	uint64_t num = k->inst[sender - 1].conn_num;
	if (!num)
		return true; /* its HELLO ack not read yet, or no HELLO */
	char want[32];
	int n = snprintf(want, sizeof want, "\"conn-%llu\"", (unsigned long long)num);
	return from.n == (size_t)n && memcmp(from.p, want, from.n) == 0;
}

static void on_message(struct rb_ck *k, unsigned slot, const struct relay_frame *f)
{
	struct relay_json_field fl[4] = {
	    {.key = "room"},
	    {.key = "content"},
	    {.key = "type"},
	    {.key = "from"},
	};
	struct ck_slot *s = &k->s[slot];
	if (!(f->flags & RELAY_FLAG_JSON) ||
	    relay_json_parse(f->payload, f->len, fl, 4, NULL) < 0) {
		ck_violation(k, RB_CK_CORRUPT, 1, "client %u: MESSAGE that is not JSON", slot);
		return;
	}
	int room = fl[0].kind == RELAY_JSON_STRING ? room_of(k, fl[0].raw) : -1;
	if (room < 0) {
		ck_violation(k, RB_CK_CORRUPT, 1, "client %u: MESSAGE for no room of ours: %.*s",
			     slot, (int)(f->len < 100 ? f->len : 100), (const char *)f->payload);
		return;
	}
	if (fl[2].kind != RELAY_JSON_NONE) { /* presence event */
		k->presence++;
		check_member(k, slot, (unsigned)room, "a presence event");
		return;
	}
	uint64_t id, croom, seq;
	k->deliveries++;
	if (!parse_content(k, slot, room, fl[1].raw, &id, &croom, &seq))
		return;
	uint32_t sender = (uint32_t)id;
	if (fl[3].kind != RELAY_JSON_STRING || !from_matches(k, sender, fl[3].raw)) {
		ck_violation(k, RB_CK_CORRUPT, 1,
			     "client %u: sender %u's #%u carries \"from\" %.*s", slot, sender,
			     (unsigned)seq, (int)(fl[3].raw.n < 40 ? fl[3].raw.n : 40),
			     (const char *)fl[3].raw.p);
		return;
	}
	if (sender == s->id && !k->inst[sender - 1].echo) {
		ck_violation(
		    k, RB_CK_SELF_ECHO, 1,
		    "client %u (instance %u) got its own #%u in chaos-%d without \"echo\":true",
		    slot, s->id, (unsigned)seq, room);
		return;
	}
	bool member = check_member(k, slot, (unsigned)room, "a delivery");
	struct ck_rs *r = rs_get(k, s, sender, (unsigned)room);
	if (r)
		check_sequence(k, slot, (unsigned)room, r, (uint32_t)seq, member);
}

typedef void (*ck_frame_fn)(struct rb_ck *k, unsigned slot, const struct relay_frame *f);

static const ck_frame_fn frame_fns[RELAY_MSG_NTYPES] = {
    [RELAY_MSG_HELLO] = on_hello,	  [RELAY_MSG_JOIN_ROOM] = on_room_ack,
    [RELAY_MSG_LEAVE_ROOM] = on_room_ack, [RELAY_MSG_MESSAGE] = on_message,
    [RELAY_MSG_HEARTBEAT] = on_heartbeat,
};

void rb_ck_frame(struct rb_ck *k, unsigned slot, const struct relay_frame *f)
{
	if (!k->s[slot].id || f->type >= RELAY_MSG_NTYPES || !frame_fns[f->type])
		return;
	frame_fns[f->type](k, slot, f);
}

/* ---- the end ---------------------------------------------------------------------- */

static bool leave_pending(const struct ck_slot *s, unsigned room)
{
	for (size_t i = s->req_head; i < s->req_len; i++)
		if (s->req[i].type == RELAY_MSG_LEAVE_ROOM && s->req[i].room == (int16_t)room)
			return true;
	return false;
}

/* Messages of healthy <p> to <room> still owed to healthy member <s>. */
static uint64_t owed(struct rb_ck *k, unsigned js, struct ck_slot *s, const struct ck_slot *p,
		     unsigned room, bool final)
{
	uint32_t total = p->written[room];
	if (!total || (p == s && !k->inst[p->id - 1].echo))
		return 0;
	const struct ck_rs *r = rs_find(k, s, p->id, room);
	uint32_t k0 = r ? r->k0 : k0_default(k, s, p->id, room), last = r ? r->last : 0;
	uint32_t from = last + 1 > k0 ? last + 1 : k0;
	if (from > total)
		return 0;
	if (final) {
		k->missing_end += total - from + 1;
		ck_violation(k, RB_CK_MISSING, total - from + 1,
			     "client %u (instance %u) in chaos-%u: sender %u's #%u..#%u never came "
			     "(both healthy to the end, joined before they were written)",
			     js, s->id, room, p->id, from, total);
	}
	return total - from + 1;
}

uint64_t rb_ck_outstanding(struct rb_ck *k, bool final)
{
	uint64_t n = 0;
	for (unsigned j = 0; j < k->nslots; j++) {
		struct ck_slot *s = &k->s[j];
		if (!s->id || !s->healthy)
			continue;
		for (unsigned room = 0; room < k->nrooms; room++) {
			if (!s->mem[room].member || leave_pending(s, room))
				continue;
			for (unsigned i = 0; i < k->nslots; i++) {
				const struct ck_slot *p = &k->s[i];
				if (p->id && p->healthy)
					n += owed(k, j, s, p, room, final);
			}
		}
	}
	return n;
}

bool rb_ck_idle(const struct rb_ck *k)
{
	for (unsigned i = 0; i < k->nslots; i++) {
		const struct ck_slot *s = &k->s[i];
		if (s->id && s->healthy && (s->req_len > s->req_head || s->pend_len > s->pend_head))
			return false;
	}
	return true;
}

uint64_t rb_ck_violations(const struct rb_ck *k)
{
	uint64_t n = 0;
	for (int i = 0; i < RB_CK_NKINDS; i++)
		n += k->count[i];
	return n;
}

void rb_ck_report(const struct rb_ck *k, struct rb_report *r)
{
	char key[48];
	rb_report_kv_int(r, "checked_deliveries", (int64_t)k->deliveries);
	rb_report_kv_int(r, "checked_presence_events", (int64_t)k->presence);
	rb_report_kv_int(r, "required_deliveries_seen", (int64_t)k->required_seen);
	rb_report_kv_int(r, "missing_at_end", (int64_t)k->missing_end);
	for (int i = 0; i < RB_CK_NKINDS; i++) {
		snprintf(key, sizeof key, "violations_%s", kind_names[i]);
		rb_report_kv_int(r, key, (int64_t)k->count[i]);
	}
}
