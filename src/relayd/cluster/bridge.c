/* bridge.c -- the cluster bridge thread (see bridge.h and docs/cluster.md).
 *
 * One turn: offline -> epoll_wait -> online -> socket events (connect
 * results; read and handle every complete reply) -> drain the inbox
 * (bounded): PUBLISH per message, membership counts -> timers (reconnect,
 * heartbeat, counts, linger, resync, gaps owed) -> (UN)SUBSCRIBE batches ->
 * write both sockets (one send for many commands) -> quiescent state.
 *
 * Names on the bus, for prefix P (default "relay:"):
 *   P{<room>}     channel of a room: FRAME envelopes (wire.h)
 *   P nodes       channel of the nodes: COUNTS, HEARTBEAT, BYE
 *   Pnodes        key: SET of node ids
 *   Pcounts:<id>  key: HASH room -> members on node <id>, and field "" =
 *                 "<boot hex>-<version>"; expires <ttl> after the node's last
 *                 heartbeat, so a dead node's counts vanish on their own
 *
 * Threading: see bridge.h. */
#include "cluster/bridge.h"

#include "base/clock.h"
#include "base/rcu.h"
#include "cluster/channel.h"
#include "cluster/wire.h"
#include "loop/worker.h"
#include "net/msg.h"
#include "relay/room.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct rl_bridge rl_bridge;

enum bridge_link { BRIDGE_DOWN = 0, BRIDGE_CONNECTING, BRIDGE_UP, BRIDGE_NLINKS };

static const char *const bridge_link_names[BRIDGE_NLINKS] = {
    [BRIDGE_DOWN] = "down",
    [BRIDGE_CONNECTING] = "connecting",
    [BRIDGE_UP] = "up",
};

/* What a reply on the publish connection answers, in command order. */
enum bridge_reply {
	BR_IGNORE = 0, /* PUBLISH, HSET, HDEL, SADD, SREM, DEL, CLIENT SETNAME */
	BR_AUTH,
	BR_PING,
	BR_PEXPIRE, /* our counts hash: 0 means it expired, announce again */
	BR_SMEMBERS,
	BR_HGETALL, /* a node's counts hash (arg: node index) */
	BR_PTTL,    /* its time to live (arg: node index) */
	BR_NREPLIES
};

#define BRIDGE_EVENTS 16
#define BRIDGE_INBOX_BATCH 8192
#define BRIDGE_READ_BYTES 262144u
#define BRIDGE_READS_PER_TURN 8
#define BRIDGE_MAX_REPLY (256u << 20) /* largest bulk or array we accept */
#define BRIDGE_SUB_BATCH 256	      /* channels per (UN)SUBSCRIBE */
#define BRIDGE_COUNTS_MS 100	      /* count changes are announced this often */
#define BRIDGE_RESYNC_MS 30000	      /* every node's counts read again */
#define BRIDGE_CONNECT_MS 3000	      /* to get the link up, or try again */
#define BRIDGE_BACKOFF_MIN 50
#define BRIDGE_BACKOFF_MAX 2000
#define BRIDGE_BYE_MS 500
#define BRIDGE_HSET_ROOMS 256	/* rooms per HSET/HDEL */
#define BRIDGE_WIRE_CHUNK 32768 /* bytes per COUNTS message */

#define ST_ADD(b, f, n) __atomic_store_n(&(b)->st.f, (b)->st.f + (uint64_t)(n), __ATOMIC_RELAXED)
#define ST_SET(b, f, v) __atomic_store_n(&(b)->st.f, (uint64_t)(v), __ATOMIC_RELAXED)

static void bridge_lost(struct rl_bridge *b, const char *why);

const char *rl_bridge_link_name(void)
{
	int l = __atomic_load_n(&rl_bridge.link, __ATOMIC_RELAXED);
	return bridge_link_names[l >= 0 && l < BRIDGE_NLINKS ? l : 0];
}

static void bridge_set_link(struct rl_bridge *b, enum bridge_link l)
{
	__atomic_store_n(&b->link, (int)l, __ATOMIC_RELAXED);
	ST_SET(b, link_up, l == BRIDGE_UP);
}

static uint64_t bridge_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- replies expected on the publish connection ---------------------------- */

static int bridge_expect(struct rl_bridge *b, enum bridge_reply kind, uint32_t arg)
{
	if (b->rlen) {
		struct rl_bridge_reply *t = &b->replies[(b->rhead + b->rlen - 1) % b->rcap];
		if (kind == BR_IGNORE && t->kind == BR_IGNORE) {
			t->n++;
			return 0;
		}
	}
	if (b->rlen == b->rcap) {
		uint32_t cap = b->rcap ? b->rcap * 2 : 64;
		struct rl_bridge_reply *r = malloc(cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		for (uint32_t i = 0; i < b->rlen; i++)
			r[i] = b->replies[(b->rhead + i) % b->rcap];
		free(b->replies);
		b->replies = r;
		b->rcap = cap;
		b->rhead = 0;
	}
	b->replies[(b->rhead + b->rlen++) % b->rcap] =
	    (struct rl_bridge_reply){(uint8_t)kind, arg, 1};
	return 0;
}

/* The kind of the next reply, or -1 when none is expected. */
static int bridge_next_reply(struct rl_bridge *b, uint32_t *arg)
{
	if (!b->rlen)
		return -1;
	struct rl_bridge_reply *h = &b->replies[b->rhead];
	int kind = h->kind;
	*arg = h->arg;
	if (--h->n == 0) {
		b->rhead = (b->rhead + 1) % b->rcap;
		b->rlen--;
	}
	return kind;
}

/* ---- names and commands ---------------------------------------------------- */

/* One bulk argument: prefix + <mid> + <tail>/<tn> + <end>. */
static int bridge_arg_name(struct rl_bridge *b, struct rl_buf *o, const char *mid, const void *tail,
			   size_t tn, const char *end)
{
	size_t ml = strlen(mid), el = strlen(end), n = b->prefix_len + ml + tn + el;
	uint8_t *w = rl_resp_arg_begin(o, n);
	if (!w)
		return -ENOMEM;
	memcpy(w, b->prefix, b->prefix_len);
	memcpy(w + b->prefix_len, mid, ml);
	if (tn)
		memcpy(w + b->prefix_len + ml, tail, tn);
	memcpy(w + b->prefix_len + ml + tn, end, el);
	rl_resp_arg_end(o, n);
	return 0;
}

static int bridge_arg_chan(struct rl_bridge *b, struct rl_buf *o, const struct rl_chan *ch)
{
	return bridge_arg_name(b, o, "{", ch->name, ch->name_len, "}");
}

static int bridge_arg_counts_key(struct rl_bridge *b, struct rl_buf *o, const char *node,
				 size_t len)
{
	return bridge_arg_name(b, o, "counts:", node, len, "");
}

/* A command on the publish connection whose reply is <kind>: the array
 * header and the command word. */
static int bridge_pub_cmd(struct rl_bridge *b, enum bridge_reply kind, uint32_t arg, size_t argc,
			  const char *word)
{
	ST_ADD(b, commands, 1);
	if (rl_resp_array(&b->pub.out, argc) || rl_resp_arg_str(&b->pub.out, word))
		return -ENOMEM;
	return bridge_expect(b, kind, arg);
}

/* "<boot hex>-<version>": the version field of our counts hash. */
static size_t bridge_ver_text(const struct rl_bridge *b, char *buf, size_t cap)
{
	return (size_t)snprintf(buf, cap, "%08" PRIx32 "-%" PRIu64, b->boot, b->ver);
}

/* ---- delivering to this node's members ------------------------------------- */

/* Hands <m> (one reference, the caller's) to every worker that has members
 * of room <name>: one RL_INBOX_CLUSTER item each. Returns whether anyone
 * was there. */
static bool bridge_push(struct rl_bridge *b, const uint8_t *name, size_t len, struct rl_msg *m)
{
	struct rl_room *r = rl_room_find(name, len);
	if (!r || !rl_room_tryget(r))
		return false;
	m->room = r; /* the reference goes with the message: its release hook puts it */
	rl_msg_seal(m); /* its WebSocket encoding, before any worker sees it */
	m->seq = rl_room_seq(r);
	uint64_t mask = rl_room_workers(r);
	if (!mask)
		return false;
	while (mask) {
		unsigned w = (unsigned)__builtin_ctzll(mask);
		mask &= mask - 1;
		if (w >= b->nworkers)
			continue;
		struct rl_msg_item *it = &m->items[w];
		it->ib.kind = RL_INBOX_CLUSTER;
		it->msg = m;
		rl_msg_get(m);
		__atomic_add_fetch(&b->q_in, m->len, __ATOMIC_RELAXED);
		/* The bridge bounds this direction itself (q_in, --cluster-queue-limit):
		 * a worker's inbox backlog does not pause the bus. */
		(void)rl_inbox_push(&rl_srv.workers[w].inbox, &it->ib, m->len);
	}
	return true;
}

static bool bridge_in_full(const struct rl_bridge *b)
{
	return __atomic_load_n(&b->q_in, __ATOMIC_RELAXED) > b->queue_limit;
}

/* Owes <ch>'s local members a gap event, sent once the node receives the
 * room again and the queue to the workers has room. */
static void bridge_gap_later(struct rl_bridge *b, struct rl_chan *ch, const char *reason)
{
	ch->gap_pending = true;
	ch->gap_reason = reason;
	if (cds_list_empty(&ch->gap_link))
		cds_list_add_tail(&ch->gap_link, &b->gapq);
}

/* MESSAGE JSON {"type":"gap","room":R,"reason":T} to <ch>'s local members
 * (protocol-v1-ext.md 5). */
static void bridge_gap(struct rl_bridge *b, struct rl_chan *ch, const char *reason)
{
	if (bridge_in_full(b)) {
		bridge_gap_later(b, ch, reason);
		return;
	}
	ch->gap_pending = false;
	cds_list_del_init(&ch->gap_link);
	if (ch->local == 0)
		return;
	size_t cap = 64 + 6 * ch->name_len + strlen(reason);
	struct rl_msg *m = rl_msg_new(RELAY_FRAME_HDR_BYTES + cap, b->nworkers);
	if (!m)
		return;
	struct relay_jw jw;
	relay_jw_init(&jw, m->data + RELAY_FRAME_HDR_BYTES, cap);
	relay_jw_obj_begin(&jw);
	relay_jw_key(&jw, "type");
	relay_jw_cstr(&jw, "gap");
	relay_jw_key(&jw, "room");
	relay_jw_str(&jw, ch->name, ch->name_len);
	relay_jw_key(&jw, "reason");
	relay_jw_cstr(&jw, reason);
	relay_jw_obj_end(&jw);
	relay_frame_put_header(m->data, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, (uint32_t)jw.len);
	m->len = (uint32_t)(RELAY_FRAME_HDR_BYTES + jw.len);
	if (!jw.overflow && jw.len + 3 <= b->max_frame &&
	    bridge_push(b, ch->name, ch->name_len, m)) {
		ST_ADD(b, gaps, 1);
		RL_DEBUGF(0, "cluster: gap event to room '%.*s': %s", (int)ch->name_len,
			  (const char *)ch->name, reason);
	}
	rl_msg_put(m);
}

/* A frame another node published in <ch>: to the local members. */
static void bridge_deliver(struct rl_bridge *b, struct rl_chan *ch, const uint8_t *frame,
			   size_t len)
{
	if (len - 4 > b->max_frame) { /* a node with a larger --max-frame-bytes */
		ST_ADD(b, in_dropped, 1);
		bridge_gap(b, ch, "message larger than this server's maximum frame size");
		return;
	}
	if (bridge_in_full(b)) {
		ST_ADD(b, in_dropped, 1);
		bridge_gap_later(b, ch, "messages dropped: delivery queue full");
		return;
	}
	struct rl_msg *m = rl_msg_new(len, b->nworkers);
	if (!m) {
		ST_ADD(b, in_dropped, 1);
		bridge_gap_later(b, ch, "messages dropped: out of memory");
		return;
	}
	memcpy(m->data, frame, len);
	bridge_push(b, ch->name, ch->name_len, m);
	rl_msg_put(m);
}

/* ---- channels -------------------------------------------------------------- */

static void bridge_chan_check(struct rl_chan *ch)
{
	if (rl_chan_idle(ch))
		rl_chan_remove(ch);
}

static void bridge_chan_gone(struct rl_chan *ch, void *arg)
{
	(void)arg;
	bridge_chan_check(ch);
}

static bool bridge_wants_sub(const struct rl_chan *ch)
{
	return ch->local > 0 || ch->linger;
}

static void bridge_want_sync(struct rl_bridge *b, struct rl_chan *ch)
{
	if (cds_list_empty(&ch->sync_link))
		cds_list_add_tail(&ch->sync_link, &b->sync);
}

static void bridge_linger_off(struct rl_chan *ch)
{
	if (ch->linger) {
		cds_list_del_init(&ch->linger_link);
		ch->linger = false;
	}
}

/* A worker's membership change. */
static void bridge_member(struct rl_bridge *b, const struct rl_bridge_member *ev)
{
	struct rl_chan *ch = rl_chan_get(ev->name, ev->len);
	if (!ch) {
		RL_ERRORF(0, "cluster: out of memory: the member count of a room is off");
		return;
	}
	if (ev->delta > 0) {
		if (ch->local++ == 0) {
			b->local_rooms++;
			bridge_linger_off(ch);
			bridge_want_sync(b, ch);
		}
	} else if (ch->local > 0 && --ch->local == 0) {
		b->local_rooms--;
		ch->gap_pending = false; /* nobody left to tell */
		cds_list_del_init(&ch->gap_link);
		if (b->linger_ms) {
			ch->linger = true;
			ch->linger_until = b->now_ms + b->linger_ms;
			cds_list_add_tail(&ch->linger_link, &b->linger);
		} else {
			bridge_want_sync(b, ch);
		}
	}
	if (cds_list_empty(&ch->dirty_link))
		cds_list_add_tail(&ch->dirty_link, &b->dirty);
}

/* Linger over: unsubscribe the rooms still without local members. */
static void bridge_linger_expire(struct rl_bridge *b)
{
	while (!cds_list_empty(&b->linger)) {
		struct rl_chan *ch = cds_list_first_entry(&b->linger, struct rl_chan, linger_link);
		if (ch->linger_until > b->now_ms)
			break;
		bridge_linger_off(ch);
		bridge_want_sync(b, ch);
	}
}

static int bridge_sub_batch(struct rl_bridge *b, const char *word, size_t n)
{
	if (!n)
		return 0;
	int rc = rl_resp_array(&b->sub.out, 1 + n) || rl_resp_arg_str(&b->sub.out, word);
	for (size_t i = 0; i < n && !rc; i++)
		rc = bridge_arg_chan(b, &b->sub.out, b->scratch[i]);
	return rc ? -ENOMEM : 0;
}

/* Subscribes what local members want and unsubscribes what they no longer
 * do, many channels per command. A channel whose confirmation is still
 * pending is looked at again when it arrives. */
static void bridge_sync(struct rl_bridge *b)
{
	if (b->link == BRIDGE_DOWN || cds_list_empty(&b->sync))
		return;
	for (int subscribe = 1; subscribe >= 0; subscribe--) {
		const char *word = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
		size_t n = 0;
		struct rl_chan *ch, *tmp;
		cds_list_for_each_entry_safe(ch, tmp, &b->sync, sync_link) {
			bool act = subscribe
				       ? ch->sub == RL_CHAN_UNSUB && bridge_wants_sub(ch)
				       : ch->sub == RL_CHAN_SUBSCRIBED && !bridge_wants_sub(ch);
			if (!act)
				continue;
			ch->sub = subscribe ? RL_CHAN_SUBSCRIBING : RL_CHAN_UNSUBSCRIBING;
			cds_list_del_init(&ch->sync_link);
			b->scratch[n++] = ch;
			if (n == BRIDGE_SUB_BATCH) {
				bridge_sub_batch(b, word, n);
				n = 0;
			}
		}
		if (bridge_sub_batch(b, word, n)) {
			bridge_lost(b, "out of memory");
			return;
		}
	}
	/* The rest is in flight (looked at again on confirmation) or right. */
	struct rl_chan *ch, *tmp;
	cds_list_for_each_entry_safe(ch, tmp, &b->sync, sync_link) {
		cds_list_del_init(&ch->sync_link);
		bridge_chan_check(ch);
	}
}

/* ---- publishing ------------------------------------------------------------ */

/* The sequence of this node's next frame in <ch>. When workers dropped
 * messages (which rooms is unknown), every stream skips one number, so
 * the other nodes see a jump and tell their members. */
static uint64_t bridge_next_seq(struct rl_bridge *b, struct rl_chan *ch)
{
	if (ch->out_seq > 0 && ch->skip_gen != b->skip_gen)
		ch->out_seq++;
	ch->skip_gen = b->skip_gen;
	return ++ch->out_seq;
}

static void bridge_publish(struct rl_bridge *b, struct rl_msg *m)
{
	size_t nlen;
	const uint8_t *name = rl_room_name(m->room, &nlen);
	struct rl_chan *ch = rl_chan_get(name, nlen);
	if (!ch) {
		__atomic_add_fetch(&b->st.out_dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	uint64_t seq = bridge_next_seq(b, ch);
	if (b->link == BRIDGE_DOWN || rl_buf_pending(&b->pub.out) > b->queue_limit) {
		/* dropped with its number taken: the receivers see the jump */
		__atomic_add_fetch(&b->st.out_dropped, 1, __ATOMIC_RELAXED);
		bridge_chan_check(ch);
		return;
	}
	size_t env = rl_wire_frame_size(b->node_len, nlen, m->len);
	struct rl_buf *o = &b->pub.out;
	uint8_t *w;
	if (bridge_pub_cmd(b, BR_IGNORE, 0, 3, "PUBLISH") ||
	    bridge_arg_name(b, o, "{", name, nlen, "}") || !(w = rl_resp_arg_begin(o, env))) {
		bridge_lost(b, "out of memory");
		return;
	}
	rl_wire_put_frame(w, (const uint8_t *)b->node, b->node_len, b->boot, seq, bridge_wall_ms(),
			  name, nlen, m->data, m->len);
	rl_resp_arg_end(o, env);
	ST_ADD(b, out_msgs, 1);
}

/* ---- member counts --------------------------------------------------------- */

struct bridge_collect {
	struct rl_bridge *b;
	size_t n;
};

static int bridge_scratch(struct rl_bridge *b, size_t n)
{
	if (n <= b->scratch_cap)
		return 0;
	size_t cap = b->scratch_cap ? b->scratch_cap : 1024;
	while (cap < n)
		cap *= 2;
	void **s = realloc(b->scratch, cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	b->scratch = s;
	b->scratch_cap = cap;
	return 0;
}

static void bridge_collect_all(struct rl_chan *ch, void *arg)
{
	struct bridge_collect *c = arg;
	if ((ch->local > 0 || ch->announced != ch->local) && !bridge_scratch(c->b, c->n + 1))
		c->b->scratch[c->n++] = ch;
}

/* The rooms at scratch[<i>..) with (<set>) or without members: up to
 * BRIDGE_HSET_ROOMS of them; returns where the window ends in *<j>. */
static size_t bridge_counts_window(struct rl_bridge *b, size_t i, size_t n, bool set, size_t *j)
{
	size_t k = 0;
	for (*j = i; *j < n && k < BRIDGE_HSET_ROOMS; (*j)++)
		k += (((struct rl_chan *)b->scratch[*j])->local > 0) == set;
	return k;
}

static int bridge_counts_rooms(struct rl_bridge *b, size_t i, size_t j, bool set)
{
	int rc = 0;
	for (; i < j && !rc; i++) {
		struct rl_chan *ch = b->scratch[i];
		if ((ch->local > 0) != set)
			continue;
		rc = rl_resp_arg(&b->pub.out, ch->name, ch->name_len);
		if (set && !rc)
			rc = rl_resp_arg_u64(&b->pub.out, ch->local);
	}
	return rc;
}

/* Our counts hash: HDEL of the rooms at scratch[0..n) that have no member
 * left (none after a DEL: <full>), then HSET of the version field and the
 * others, in chunks. The version is written even when no room is, so a node
 * reading the hash learns which rooms are gone. */
static int bridge_counts_hash(struct rl_bridge *b, size_t n, bool full)
{
	char ver[40];
	size_t vl = bridge_ver_text(b, ver, sizeof(ver)), i = 0, j;
	struct rl_buf *o = &b->pub.out;
	int rc = 0;
	while (!full && i < n && !rc) {
		size_t k = bridge_counts_window(b, i, n, false, &j);
		if (k)
			rc = bridge_pub_cmd(b, BR_IGNORE, 0, 2 + k, "HDEL") ||
			     bridge_arg_counts_key(b, o, b->node, b->node_len) ||
			     bridge_counts_rooms(b, i, j, false);
		i = j;
	}
	i = 0;
	do {
		size_t k = bridge_counts_window(b, i, n, true, &j);
		rc = rc || bridge_pub_cmd(b, BR_IGNORE, 0, 4 + 2 * k, "HSET") ||
		     bridge_arg_counts_key(b, o, b->node, b->node_len) || rl_resp_arg(o, "", 0) ||
		     rl_resp_arg(o, ver, vl) || bridge_counts_rooms(b, i, j, true);
		i = j;
	} while (i < n && !rc);
	return rc ? -ENOMEM : 0;
}

/* PUBLISH Pnodes COUNTS for the rooms at scratch[0..n), in chunks. */
static int bridge_counts_publish(struct rl_bridge *b, size_t n)
{
	size_t hdr = rl_wire_hdr_size(b->node_len) + 8, i = 0;
	if (b->wbuf_cap < BRIDGE_WIRE_CHUNK) {
		uint8_t *w = realloc(b->wbuf, BRIDGE_WIRE_CHUNK);
		if (!w)
			return -ENOMEM;
		b->wbuf = w;
		b->wbuf_cap = BRIDGE_WIRE_CHUNK;
	}
	while (i < n) {
		size_t len = rl_wire_put_hdr(b->wbuf, RL_WIRE_COUNTS, (const uint8_t *)b->node,
					     b->node_len, b->boot);
		len += rl_wire_put_u64(b->wbuf + len, b->ver);
		for (; i < n; i++) {
			struct rl_chan *ch = b->scratch[i];
			if (len + rl_wire_count_size(ch->name_len) > b->wbuf_cap && len > hdr)
				break;
			len += rl_wire_put_count(b->wbuf + len, ch->name, ch->name_len, ch->local);
		}
		if (bridge_pub_cmd(b, BR_IGNORE, 0, 3, "PUBLISH") ||
		    bridge_arg_name(b, &b->pub.out, "nodes", NULL, 0, "") ||
		    rl_resp_arg(&b->pub.out, b->wbuf, len))
			return -ENOMEM;
	}
	return 0;
}

/* Announces this node's member counts: the rooms that changed, or (<full>)
 * all of them after deleting the hash (on every new link: whatever the
 * hash holds may be stale). The hash changes before the message goes out,
 * and HDEL precedes HSET, so a node reading the hash meanwhile never sees
 * a newer version with older counts. */
static void bridge_announce(struct rl_bridge *b, bool full)
{
	struct bridge_collect c = {b, 0};
	if (b->link == BRIDGE_DOWN)
		return;
	if (full) {
		rl_chan_foreach(bridge_collect_all, &c);
	} else {
		struct rl_chan *ch;
		cds_list_for_each_entry(ch, &b->dirty, dirty_link) {
			if (bridge_scratch(b, c.n + 1))
				break;
			b->scratch[c.n++] = ch;
		}
	}
	if (!full && c.n == 0)
		return;
	b->ver++;
	struct rl_buf *o = &b->pub.out;
	int rc = 0;
	if (full)
		rc = bridge_pub_cmd(b, BR_IGNORE, 0, 2, "DEL") ||
		     bridge_arg_counts_key(b, o, b->node, b->node_len);
	rc = rc || bridge_counts_hash(b, c.n, full);
	rc = rc || bridge_pub_cmd(b, BR_IGNORE, 0, 3, "PEXPIRE") ||
	     bridge_arg_counts_key(b, o, b->node, b->node_len) || rl_resp_arg_u64(o, b->ttl_ms);
	rc = rc || bridge_pub_cmd(b, BR_IGNORE, 0, 3, "SADD") ||
	     bridge_arg_name(b, o, "nodes", NULL, 0, "") || rl_resp_arg(o, b->node, b->node_len);
	rc = rc || bridge_counts_publish(b, c.n);
	if (rc) {
		bridge_lost(b, "out of memory");
		return;
	}
	for (size_t i = 0; i < c.n; i++) {
		struct rl_chan *ch = b->scratch[i];
		ch->announced = ch->local;
	}
	struct rl_chan *ch, *tmp;
	cds_list_for_each_entry_safe(ch, tmp, &b->dirty, dirty_link) {
		cds_list_del_init(&ch->dirty_link);
		bridge_chan_check(ch);
	}
	for (size_t i = 0; i < c.n && full; i++)
		bridge_chan_check(b->scratch[i]);
}

/* ---- other nodes ----------------------------------------------------------- */

/* Asks for node <idx>'s counts hash and its time to live. */
static void bridge_fetch(struct rl_bridge *b, uint32_t idx)
{
	struct rl_chan_node *n = rl_chan_node_at(idx);
	if (n->fetching || b->link == BRIDGE_DOWN)
		return;
	struct rl_buf *o = &b->pub.out;
	if (bridge_pub_cmd(b, BR_HGETALL, idx, 2, "HGETALL") ||
	    bridge_arg_counts_key(b, o, n->id, n->id_len) ||
	    bridge_pub_cmd(b, BR_PTTL, idx, 2, "PTTL") ||
	    bridge_arg_counts_key(b, o, n->id, n->id_len)) {
		bridge_lost(b, "out of memory");
		return;
	}
	n->fetching = true;
}

/* Node <idx> says it runs as <boot>: a different boot is a restart, whose
 * old counts and sequences no longer mean anything. */
static void bridge_node_boot(struct rl_bridge *b, uint32_t idx, uint32_t boot)
{
	struct rl_chan_node *n = rl_chan_node_at(idx);
	(void)b;
	if (n->boot == boot)
		return;
	if (n->boot)
		rl_chan_node_clear(idx, UINT64_MAX, true, bridge_chan_gone, NULL);
	n->boot = boot;
	n->ver = 0;
	n->alive = false;
}

static void bridge_node_dead(uint32_t idx, const char *why)
{
	struct rl_chan_node *n = rl_chan_node_at(idx);
	if (n->alive)
		RL_INFOF(0, "cluster: node %s %s: its members no longer count", n->id, why);
	n->alive = false;
	rl_chan_node_clear(idx, UINT64_MAX, false, bridge_chan_gone, NULL);
}

/* Nodes silent for longer than the TTL less one heartbeat leave the counts:
 * swept every heartbeat, a dead node stops counting within the TTL of its
 * last heartbeat (protocol-v1-ext.md 5). */
static void bridge_sweep(struct rl_bridge *b)
{
	for (uint32_t i = 0; i < rl_chan_nodes(); i++) {
		struct rl_chan_node *n = rl_chan_node_at(i);
		if (n->alive && b->now_ms - n->last_seen > b->ttl_ms - b->hb_ms)
			bridge_node_dead(i, "is silent");
	}
}

static void bridge_counts_msg(uint32_t idx, const struct rl_wire_msg *w)
{
	size_t off = 0;
	const uint8_t *room;
	size_t len;
	uint32_t members;
	int rc;
	while ((rc = rl_wire_next_count(w, &off, &room, &len, &members)) == 1) {
		struct rl_chan *ch = members ? rl_chan_get(room, len) : rl_chan_find(room, len);
		if (!ch)
			continue;
		rl_chan_set_count(ch, idx, members, w->version);
		bridge_chan_check(ch);
	}
	if (rc < 0)
		RL_WARNF(0, "cluster: malformed counts from node %.*s", (int)w->node_len,
			 (const char *)w->node);
}

/* A message on the nodes channel. */
static void bridge_control(struct rl_bridge *b, const struct rl_wire_msg *w)
{
	if (w->kind == RL_WIRE_FRAME)
		return;
	if (w->node_len == b->node_len && memcmp(w->node, b->node, b->node_len) == 0)
		return; /* our own */
	int idx = rl_chan_node_get(w->node, w->node_len);
	if (idx < 0)
		return;
	bridge_node_boot(b, (uint32_t)idx, w->boot);
	struct rl_chan_node *n = rl_chan_node_at((uint32_t)idx);
	if (w->kind == RL_WIRE_BYE) {
		bridge_node_dead((uint32_t)idx, "left");
		return;
	}
	if (w->kind == RL_WIRE_COUNTS)
		bridge_counts_msg((uint32_t)idx, w);
	n->last_seen = b->now_ms;
	if (!n->alive) { /* new, or back after we gave up on it: read all it has */
		n->alive = true;
		bridge_fetch(b, (uint32_t)idx);
	}
}

/* ---- frames from other nodes ----------------------------------------------- */

static void bridge_frame(struct rl_bridge *b, struct rl_chan *ch, const struct rl_wire_msg *w)
{
	if (w->node_len == b->node_len && memcmp(w->node, b->node, b->node_len) == 0)
		return; /* our own echo */
	if (w->body[5] != RELAY_MSG_MESSAGE || w->body[4] != RELAY_PROTOCOL_VERSION) {
		ST_ADD(b, in_dropped, 1); /* only deliveries and events travel */
		return;
	}
	int idx = rl_chan_node_get(w->node, w->node_len);
	if (idx < 0)
		return;
	bridge_node_boot(b, (uint32_t)idx, w->boot);
	ST_ADD(b, in_msgs, 1);
	struct rl_chan_peer *p = rl_chan_peer(ch, (uint32_t)idx, true);
	if (p) {
		/* 1 starts a new stream (the sender forgot the room meanwhile) */
		if (p->last_seq && w->seq != p->last_seq + 1 && w->seq != 1)
			bridge_gap(b, ch, "messages from another node were lost");
		p->last_seq = w->seq;
	}
	if (ch->local > 0)
		bridge_deliver(b, ch, w->body, w->body_len);
}

/* ---- the subscribe connection ---------------------------------------------- */

/* The room of channel <p>/<n> ("P{room}"), or NULL; the nodes channel sets
 * *<ctl>. */
static struct rl_chan *bridge_chan_of(struct rl_bridge *b, const uint8_t *p, size_t n, bool *ctl)
{
	*ctl = false;
	if (n < b->prefix_len || memcmp(p, b->prefix, b->prefix_len) != 0)
		return NULL;
	p += b->prefix_len;
	n -= b->prefix_len;
	if (n == 5 && memcmp(p, "nodes", 5) == 0) {
		*ctl = true;
		return NULL;
	}
	if (n < 3 || p[0] != '{' || p[n - 1] != '}')
		return NULL;
	return rl_chan_find(p + 1, n - 2);
}

static void bridge_check_up(struct rl_bridge *b)
{
	if (b->link != BRIDGE_CONNECTING || !b->ctl_subscribed || !b->pub_ok ||
	    b->pub.state != RL_LINK_OPEN || b->sub.state != RL_LINK_OPEN)
		return;
	bridge_set_link(b, BRIDGE_UP);
	b->backoff_ms = BRIDGE_BACKOFF_MIN;
	if (b->was_up)
		ST_ADD(b, reconnects, 1);
	b->was_up = true;
	RL_INFOF(0, "cluster: bus link up (%s, node %s)", b->addr.text, b->node);
}

static void bridge_subscribed(struct rl_bridge *b, const struct rl_resp_val *chan)
{
	bool ctl;
	struct rl_chan *ch = bridge_chan_of(b, chan->p, chan->n, &ctl);
	if (ctl) { /* receiving the nodes channel: now read what the others have */
		b->ctl_subscribed = true;
		if (!bridge_pub_cmd(b, BR_SMEMBERS, 0, 2, "SMEMBERS"))
			bridge_arg_name(b, &b->pub.out, "nodes", NULL, 0, "");
		b->next_resync = b->now_ms + BRIDGE_RESYNC_MS;
		bridge_check_up(b);
		return;
	}
	if (!ch || ch->sub != RL_CHAN_SUBSCRIBING)
		return;
	ch->sub = RL_CHAN_SUBSCRIBED;
	ST_ADD(b, subscriptions, 1);
	if (ch->gap_pending) /* receiving again after a loss */
		bridge_gap(b, ch, ch->gap_reason);
	if (!bridge_wants_sub(ch))
		bridge_want_sync(b, ch);
}

static void bridge_unsubscribed(struct rl_bridge *b, const struct rl_resp_val *chan)
{
	bool ctl;
	struct rl_chan *ch = bridge_chan_of(b, chan->p, chan->n, &ctl);
	if (!ch || ch->sub != RL_CHAN_UNSUBSCRIBING)
		return;
	ch->sub = RL_CHAN_UNSUB;
	ST_SET(b, subscriptions, b->st.subscriptions - 1);
	rl_chan_forget_seqs(ch);
	bridge_want_sync(b, ch); /* wanted again meanwhile, or free */
}

static void bridge_message(struct rl_bridge *b, const struct rl_resp_val *chan,
			   const struct rl_resp_val *payload)
{
	bool ctl;
	struct rl_wire_msg w;
	struct rl_chan *ch = bridge_chan_of(b, chan->p, chan->n, &ctl);
	if ((!ch && !ctl) || payload->type != RL_RESP_BULK || payload->nil)
		return;
	if (rl_wire_decode(payload->p, payload->n, &w)) {
		RL_WARNF(0, "cluster: a malformed message on %.*s (%zu bytes) ignored",
			 (int)chan->n, (const char *)chan->p, payload->n);
		return;
	}
	if (ctl)
		bridge_control(b, &w);
	else if (w.kind == RL_WIRE_FRAME && w.room_len == ch->name_len &&
		 memcmp(w.room, ch->name, ch->name_len) == 0)
		bridge_frame(b, ch, &w);
}

static void bridge_sub_reply(struct rl_bridge *b)
{
	const struct rl_resp_reply *r = &b->reply;
	if (r->top.type == RL_RESP_ERROR) {
		char why[160];
		snprintf(why, sizeof(why), "the bus refused the subscriber: %.*s", (int)r->top.n,
			 (const char *)r->top.p);
		bridge_lost(b, why);
		return;
	}
	if (r->top.type != RL_RESP_ARRAY) {
		if (b->sub_simple)
			b->sub_simple--; /* AUTH, CLIENT SETNAME */
		return;
	}
	const struct rl_resp_val *el = r->el;
	if (r->top.n == 3 && rl_resp_is(&el[0], "message")) {
		ST_ADD(b, read_msgs, 1);
		bridge_message(b, &el[1], &el[2]);
	} else if (r->top.n == 3 && rl_resp_is(&el[0], "subscribe")) {
		bridge_subscribed(b, &el[1]);
	} else if (r->top.n == 3 && rl_resp_is(&el[0], "unsubscribe")) {
		bridge_unsubscribed(b, &el[1]);
	} else if (r->top.n >= 1 && rl_resp_is(&el[0], "pong")) {
		b->sub_ping_at = 0;
	}
}

/* ---- the publish connection ------------------------------------------------ */

static bool bridge_parse_ver(const struct rl_resp_val *v, uint32_t *boot, uint64_t *ver)
{
	char buf[48];
	if (v->type != RL_RESP_BULK || v->nil || v->n >= sizeof(buf))
		return false;
	memcpy(buf, v->p, v->n);
	buf[v->n] = 0;
	char *end;
	unsigned long bt = strtoul(buf, &end, 16);
	if (*end != '-')
		return false;
	*boot = (uint32_t)bt;
	*ver = strtoull(end + 1, &end, 10);
	return *end == 0;
}

static bool bridge_parse_u32(const struct rl_resp_val *v, uint32_t *out)
{
	uint64_t x = 0;
	if (v->type != RL_RESP_BULK || v->nil || v->n == 0 || v->n > 10)
		return false;
	for (size_t i = 0; i < v->n; i++) {
		if (v->p[i] < '0' || v->p[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(v->p[i] - '0');
	}
	*out = x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
	return true;
}

/* HGETALL Pcounts:<node>: its counts as of the version in field "". */
static void bridge_snapshot(struct rl_bridge *b, uint32_t idx)
{
	const struct rl_resp_reply *r = &b->reply;
	struct rl_chan_node *n = rl_chan_node_at(idx);
	uint32_t boot = 0;
	uint64_t ver = 0;
	bool have = false;
	for (size_t i = 0; i + 1 < r->top.n; i += 2)
		if (r->el[i].type == RL_RESP_BULK && r->el[i].n == 0)
			have = bridge_parse_ver(&r->el[i + 1], &boot, &ver);
	if (!have || (n->boot && n->boot != boot))
		return; /* empty, or a hash of another life of that node */
	n->boot = boot;
	for (size_t i = 0; i + 1 < r->top.n; i += 2) {
		const struct rl_resp_val *k = &r->el[i];
		uint32_t count;
		if (k->type != RL_RESP_BULK || k->n == 0 || k->n > RL_CHAN_NAME_MAX ||
		    !bridge_parse_u32(&r->el[i + 1], &count))
			continue;
		struct rl_chan *ch = count ? rl_chan_get(k->p, k->n) : rl_chan_find(k->p, k->n);
		if (ch) {
			rl_chan_set_count(ch, idx, count, ver);
			bridge_chan_check(ch);
		}
	}
	rl_chan_node_clear(idx, ver, false, bridge_chan_gone, NULL);
}

/* PTTL Pcounts:<node>: how long ago it last refreshed it. */
static void bridge_pttl(struct rl_bridge *b, uint32_t idx)
{
	struct rl_chan_node *n = rl_chan_node_at(idx);
	long long pttl = b->reply.top.type == RL_RESP_INT ? b->reply.top.i : -2;
	n->fetching = false;
	if (pttl >= 0) {
		uint64_t ago = pttl >= (long long)b->ttl_ms ? 0 : b->ttl_ms - (uint64_t)pttl;
		uint64_t seen = b->now_ms > ago ? b->now_ms - ago : 0;
		if (!n->alive || seen > n->last_seen)
			n->last_seen = seen;
		n->alive = true;
	} else if (!n->alive && b->link != BRIDGE_DOWN) { /* gone: tidy the node set */
		if (!bridge_pub_cmd(b, BR_IGNORE, 0, 3, "SREM") &&
		    !bridge_arg_name(b, &b->pub.out, "nodes", NULL, 0, ""))
			rl_resp_arg(&b->pub.out, n->id, n->id_len);
	}
}

static void bridge_members_list(struct rl_bridge *b)
{
	const struct rl_resp_reply *r = &b->reply;
	for (size_t i = 0; r->top.type == RL_RESP_ARRAY && i < r->top.n; i++) {
		const struct rl_resp_val *v = &r->el[i];
		if (v->type != RL_RESP_BULK || v->nil || v->n == 0 || v->n > RL_WIRE_NODE_MAX ||
		    (v->n == b->node_len && memcmp(v->p, b->node, v->n) == 0))
			continue;
		int idx = rl_chan_node_get(v->p, v->n);
		if (idx >= 0)
			bridge_fetch(b, (uint32_t)idx);
	}
}

static void bridge_pub_reply(struct rl_bridge *b)
{
	uint32_t arg = 0;
	int kind = bridge_next_reply(b, &arg);
	const struct rl_resp_val *top = &b->reply.top;
	if (kind < 0) {
		bridge_lost(b, "a reply nobody asked for");
		return;
	}
	if (top->type == RL_RESP_ERROR) {
		char why[200];
		snprintf(why, sizeof(why), "the bus refused a command: %.*s", (int)top->n,
			 (const char *)top->p);
		if (kind == BR_AUTH || kind == BR_PING) {
			bridge_lost(b, why);
			return;
		}
		RL_WARNF(0, "cluster: %s", why);
		if (kind == BR_PTTL || kind == BR_HGETALL)
			rl_chan_node_at(arg)->fetching = kind == BR_HGETALL;
		return;
	}
	switch (kind) {
	case BR_PING:
		b->pub_ok = true;
		b->pub_ping_at = 0;
		bridge_check_up(b);
		break;
	case BR_PEXPIRE: /* 0: our hash expired (we were stalled): announce again */
		if (top->type == RL_RESP_INT && top->i == 0 && b->local_rooms > 0)
			bridge_announce(b, true);
		break;
	case BR_SMEMBERS:
		bridge_members_list(b);
		break;
	case BR_HGETALL:
		if (top->type == RL_RESP_ARRAY)
			bridge_snapshot(b, arg);
		break;
	case BR_PTTL:
		bridge_pttl(b, arg);
		break;
	default:
		break;
	}
}

/* ---- the link -------------------------------------------------------------- */

static void bridge_chan_lost(struct rl_chan *ch, void *arg)
{
	struct rl_bridge *b = arg;
	if (ch->sub == RL_CHAN_SUBSCRIBED && ch->local > 0 && !ch->gap_pending) {
		ch->gap_pending = true;
		ch->gap_reason = "connection to the cluster bus was lost";
	}
	ch->sub = RL_CHAN_UNSUB;
	rl_chan_forget_seqs(ch);
	bridge_want_sync(b, ch);
}

/* Either connection failed: both go, every subscription with them. Members
 * of the rooms that were subscribed are owed a gap event, sent once each
 * room is subscribed again. */
static void bridge_lost(struct rl_bridge *b, const char *why)
{
	uint64_t suppressed = 0;
	if (b->link == BRIDGE_UP)
		RL_WARNF(0, "cluster: lost the bus link (%s): %s; reconnecting", b->addr.text, why);
	else if (rl_ratelimit_ok(&b->down_rl, b->now_ms, 10000, &suppressed) && !suppressed)
		RL_WARNF(0, "cluster: bus %s unreachable: %s; serving local rooms, retrying",
			 b->addr.text, why);
	else if (suppressed) /* set only when a line may be written */
		RL_WARNF(0, "cluster: bus %s still unreachable: %s (%" PRIu64 " more failures)",
			 b->addr.text, why, suppressed);
	rl_link_close(&b->pub, &b->loop);
	rl_link_close(&b->sub, &b->loop);
	bridge_set_link(b, BRIDGE_DOWN);
	b->rhead = b->rlen = 0;
	b->ctl_subscribed = b->pub_ok = false;
	b->sub_simple = 0;
	b->pub_ping_at = b->sub_ping_at = 0;
	for (uint32_t i = 0; i < rl_chan_nodes(); i++)
		rl_chan_node_at(i)->fetching = false;
	ST_SET(b, subscriptions, 0);
	rl_chan_foreach(bridge_chan_lost, b);
	uint64_t half = b->backoff_ms / 2;
	b->seed = b->seed * 6364136223846793005ull + 1442695040888963407ull;
	b->retry_at = b->now_ms + half + (b->seed >> 33) % (half + 1);
	b->backoff_ms =
	    b->backoff_ms * 2 > BRIDGE_BACKOFF_MAX ? BRIDGE_BACKOFF_MAX : b->backoff_ms * 2;
}

/* AUTH and CLIENT SETNAME on <l>; returns how many simple replies follow. */
static int bridge_hello(struct rl_bridge *b, struct rl_link *l, const char *role)
{
	char name[80];
	int rc = 0;
	if (b->password_len) {
		rc = rl_resp_array(&l->out, 2) || rl_resp_arg_str(&l->out, "AUTH") ||
		     rl_resp_arg(&l->out, b->password, b->password_len);
		if (l == &b->pub)
			rc = rc || bridge_expect(b, BR_AUTH, 0);
	}
	snprintf(name, sizeof(name), "relayd-%s-%s", b->node, role);
	for (char *p = name; *p; p++)
		if (*p == ' ')
			*p = '_';
	const char *setname[] = {"CLIENT", "SETNAME", name};
	rc = rc || rl_resp_cmdv(&l->out, 3, setname);
	if (l == &b->pub)
		rc = rc || bridge_expect(b, BR_IGNORE, 0);
	return rc ? -ENOMEM : (b->password_len ? 2 : 1);
}

static void bridge_connect(struct rl_bridge *b)
{
	int rc = rl_link_open(&b->pub, &b->addr, &b->loop);
	if (!rc)
		rc = rl_link_open(&b->sub, &b->addr, &b->loop);
	if (rc) {
		bridge_lost(b, strerror(-rc));
		return;
	}
	bridge_set_link(b, BRIDGE_CONNECTING);
	b->connect_deadline = b->now_ms + BRIDGE_CONNECT_MS;
	int simple = bridge_hello(b, &b->sub, "sub");
	if (bridge_hello(b, &b->pub, "pub") < 0 || simple < 0 ||
	    bridge_pub_cmd(b, BR_PING, 0, 1, "PING") || rl_resp_array(&b->sub.out, 2) ||
	    rl_resp_arg_str(&b->sub.out, "SUBSCRIBE") ||
	    bridge_arg_name(b, &b->sub.out, "nodes", NULL, 0, "")) {
		bridge_lost(b, "out of memory");
		return;
	}
	b->sub_simple = (unsigned)simple;
	b->pub_ping_at = b->now_ms;
	bridge_announce(b, true); /* the counts we have now; the hash may be stale */
	b->last_hb = b->now_ms;
}

/* Reads and handles what <l> has. */
static void bridge_read(struct rl_bridge *b, struct rl_link *l)
{
	bool sub = l == &b->sub;
	for (int i = 0; i < BRIDGE_READS_PER_TURN; i++) {
		long n = rl_link_read(l, BRIDGE_READ_BYTES);
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			bridge_lost(b, n == -ECONNRESET ? "connection closed by the bus"
							: strerror((int)-n));
			return;
		}
		if (sub)
			ST_ADD(b, reads, 1);
		for (;;) {
			long used = rl_resp_parse(l->in.p + l->in.off, rl_buf_pending(&l->in),
						  BRIDGE_MAX_REPLY, &b->reply);
			if (used == 0)
				break;
			if (used < 0) {
				bridge_lost(b,
					    used == -ENOMEM ? "out of memory" : "malformed reply");
				return;
			}
			if (sub)
				bridge_sub_reply(b);
			else
				bridge_pub_reply(b);
			if (b->link == BRIDGE_DOWN)
				return; /* the handler gave up on the link: its buffers are gone */
			rl_buf_consume(&l->in, (size_t)used);
		}
		rl_buf_shrink(&l->in, BRIDGE_READ_BYTES);
		if ((size_t)n < BRIDGE_READ_BYTES)
			return; /* drained: the next byte brings a new edge */
	}
	/* Budget spent with bytes left: no new edge comes for them, so the
	 * next turn reads on (after the inbox and the timers had their turn). */
	l->more = true;
}

/* Reads the links that stopped at their budget last turn. */
static void bridge_read_more(struct rl_bridge *b)
{
	struct rl_link *ls[2] = {&b->pub, &b->sub};
	for (int i = 0; i < 2 && b->link != BRIDGE_DOWN; i++)
		if (ls[i]->more && ls[i]->state == RL_LINK_OPEN) {
			ls[i]->more = false;
			bridge_read(b, ls[i]);
		}
}

/* Output left that the socket would take now (it was not full). */
static bool bridge_out_ready(const struct rl_link *l)
{
	return l->state == RL_LINK_OPEN && rl_buf_pending(&l->out) && !l->wblocked;
}

static void bridge_link_event(struct rl_bridge *b, struct rl_link *l, uint32_t bits)
{
	if (l->fd < 0)
		return;
	if (l->state == RL_LINK_CONNECTING) {
		if (!(bits & (RL_EV_OUT | RL_EV_ERR)))
			return;
		int rc = rl_link_connected(l);
		if (rc) {
			bridge_lost(b, strerror(-rc));
			return;
		}
	}
	if (bits & RL_EV_OUT)
		l->wblocked = false;
	if (bits & (RL_EV_IN | RL_EV_ERR | RL_EV_HUP))
		bridge_read(b, l);
}

static void bridge_flush(struct rl_bridge *b)
{
	struct rl_link *ls[2] = {&b->pub, &b->sub};
	for (int i = 0; i < 2 && b->link != BRIDGE_DOWN; i++) {
		if (ls[i]->state != RL_LINK_OPEN)
			continue;
		uint64_t writes = 0;
		int rc = rl_link_flush(ls[i], &writes);
		if (i == 0)
			ST_ADD(b, writes, writes);
		if (rc)
			bridge_lost(b, strerror(-rc));
	}
	ST_SET(b, out_queue, rl_buf_pending(&b->pub.out));
}

/* ---- timers ---------------------------------------------------------------- */

static void bridge_heartbeat(struct rl_bridge *b)
{
	uint64_t dead = b->ttl_ms > 3000 ? b->ttl_ms : 3000;
	if ((b->pub_ping_at && b->now_ms - b->pub_ping_at > dead) ||
	    (b->sub_ping_at && b->now_ms - b->sub_ping_at > dead)) {
		bridge_lost(b, "no answer from the bus");
		return;
	}
	if (b->link == BRIDGE_UP) {
		/* Silent long enough for the others to have dropped us: tell all again. */
		if (b->now_ms - b->last_hb > b->ttl_ms - b->hb_ms)
			bridge_announce(b, true);
		uint8_t msg[RL_WIRE_NODE_MAX + 16];
		size_t len = rl_wire_put_hdr(msg, RL_WIRE_HEARTBEAT, (const uint8_t *)b->node,
					     b->node_len, b->boot);
		len += rl_wire_put_u64(msg + len, b->ver);
		struct rl_buf *o = &b->pub.out;
		int rc = bridge_pub_cmd(b, BR_PEXPIRE, 0, 3, "PEXPIRE") ||
			 bridge_arg_counts_key(b, o, b->node, b->node_len) ||
			 rl_resp_arg_u64(o, b->ttl_ms) ||
			 bridge_pub_cmd(b, BR_IGNORE, 0, 3, "PUBLISH") ||
			 bridge_arg_name(b, o, "nodes", NULL, 0, "") || rl_resp_arg(o, msg, len);
		if (!rc && !b->pub_ping_at) {
			rc = bridge_pub_cmd(b, BR_PING, 0, 1, "PING");
			b->pub_ping_at = b->now_ms;
		}
		if (!rc && !b->sub_ping_at) {
			rc = rl_resp_array(&b->sub.out, 1) || rl_resp_arg_str(&b->sub.out, "PING");
			b->sub_ping_at = b->now_ms;
		}
		if (rc) {
			bridge_lost(b, "out of memory");
			return;
		}
	}
	b->last_hb = b->now_ms;
	bridge_sweep(b);
}

/* Gap events owed to rooms that are received again, once the queue to the
 * workers is below half its limit. */
static void bridge_gaps_owed(struct rl_bridge *b)
{
	if (cds_list_empty(&b->gapq) ||
	    __atomic_load_n(&b->q_in, __ATOMIC_RELAXED) > b->queue_limit / 2)
		return;
	struct rl_chan *ch, *tmp;
	cds_list_for_each_entry_safe(ch, tmp, &b->gapq, gap_link) {
		if (ch->sub != RL_CHAN_SUBSCRIBED)
			continue; /* sent when the subscription is confirmed */
		if (ch->local == 0) { /* nobody left to tell */
			ch->gap_pending = false;
			cds_list_del_init(&ch->gap_link);
			bridge_chan_check(ch);
			continue;
		}
		bridge_gap(b, ch, ch->gap_reason);
		bridge_chan_check(ch);
	}
}

static void bridge_timers(struct rl_bridge *b)
{
	if (b->link == BRIDGE_DOWN && b->now_ms >= b->retry_at && !b->stop)
		bridge_connect(b);
	if (b->link == BRIDGE_CONNECTING && b->now_ms >= b->connect_deadline)
		bridge_lost(b, "no answer within 3 s");
	if (b->now_ms >= b->next_hb) {
		bridge_heartbeat(b);
		b->next_hb = b->now_ms + b->hb_ms;
	}
	if (b->now_ms >= b->next_counts && b->link != BRIDGE_DOWN) {
		bridge_announce(b, false);
		b->next_counts = b->now_ms + BRIDGE_COUNTS_MS;
	}
	if (b->link == BRIDGE_UP && b->now_ms >= b->next_resync) {
		if (!bridge_pub_cmd(b, BR_SMEMBERS, 0, 2, "SMEMBERS"))
			bridge_arg_name(b, &b->pub.out, "nodes", NULL, 0, "");
		b->next_resync = b->now_ms + BRIDGE_RESYNC_MS;
	}
	bridge_linger_expire(b);
	bridge_gaps_owed(b);
}

static long bridge_until(uint64_t now, uint64_t at)
{
	return at > now ? (long)(at - now) : 0;
}

static int bridge_timeout(struct rl_bridge *b)
{
	if (b->inbox_more || (!cds_list_empty(&b->sync) && b->link != BRIDGE_DOWN) || b->pub.more ||
	    b->sub.more || bridge_out_ready(&b->pub) || bridge_out_ready(&b->sub))
		return 0;
	long t = bridge_until(b->now_ms, b->next_hb);
	if (b->link == BRIDGE_DOWN && bridge_until(b->now_ms, b->retry_at) < t)
		t = bridge_until(b->now_ms, b->retry_at);
	if (b->link == BRIDGE_CONNECTING && bridge_until(b->now_ms, b->connect_deadline) < t)
		t = bridge_until(b->now_ms, b->connect_deadline);
	if (!cds_list_empty(&b->dirty) && b->link != BRIDGE_DOWN &&
	    bridge_until(b->now_ms, b->next_counts) < t)
		t = bridge_until(b->now_ms, b->next_counts);
	if (!cds_list_empty(&b->linger)) {
		struct rl_chan *ch = cds_list_first_entry(&b->linger, struct rl_chan, linger_link);
		if (bridge_until(b->now_ms, ch->linger_until) < t)
			t = bridge_until(b->now_ms, ch->linger_until);
	}
	if (!cds_list_empty(&b->gapq) && b->link == BRIDGE_UP && t > 10)
		t = 10; /* waiting for the workers to take what is queued */
	return (int)t;
}

/* ---- the inbox and the loop ------------------------------------------------ */

static void bridge_drain(struct rl_bridge *b)
{
	uint64_t n = 0, bytes = 0;
	if (__atomic_exchange_n(&b->lost, 0, __ATOMIC_RELAXED))
		b->skip_gen++;
	if (!b->inbox_more)
		return;
	for (; n < BRIDGE_INBOX_BATCH; n++) {
		struct rl_inbox_item *it = rl_inbox_pop(&b->inbox);
		if (!it) {
			b->inbox_more = false;
			break;
		}
		bytes += it->bytes;
		if (it->kind == RL_BRIDGE_MSG) {
			struct rl_msg *m = caa_container_of(it, struct rl_msg_item, ib)->msg;
			__atomic_sub_fetch(&b->q_out, m->len, __ATOMIC_RELAXED);
			bridge_publish(b, m);
			rl_msg_put(m);
		} else {
			struct rl_bridge_member *ev =
			    caa_container_of(it, struct rl_bridge_member, ib);
			bridge_member(b, ev);
			free(ev);
		}
	}
	rl_inbox_done(&b->inbox, bytes);
}

static void bridge_dispatch(struct rl_bridge *b, int n)
{
	for (int i = 0; i < n; i++) {
		void *ptr = b->loop.ready[i].ptr;
		uint32_t bits = b->loop.ready[i].bits;
		if (ptr == &b->isrc) {
			rl_inbox_reset(&b->inbox); /* before draining: see inbox.h */
			b->inbox_more = true;
		} else if (ptr == &b->pub || ptr == &b->sub) {
			bridge_link_event(b, ptr, bits);
		}
	}
}

static void bridge_turn(struct rl_bridge *b)
{
	int timeout = bridge_timeout(b);
	rl_rcu_offline();
	int n = rl_evloop_wait(&b->loop, timeout);
	rl_rcu_online();
	b->now_ms = rl_clock_ms();
	if (n < 0) {
		RL_ERRORF(0, "cluster: epoll_wait: %s", strerror(-n));
		n = 0;
	}
	bridge_dispatch(b, n);
	bridge_read_more(b);
	bridge_drain(b);
	bridge_timers(b);
	bridge_sync(b);
	bridge_flush(b);
	rl_rcu_quiescent();
}

/* Goodbye: our counts leave at once rather than after the TTL. The bytes
 * are written and the connection half-closed, then we wait (briefly) for
 * the bus to finish reading, so nothing is lost to a reset. */
static void bridge_bye(struct rl_bridge *b)
{
	if (b->pub.state != RL_LINK_OPEN)
		return;
	uint8_t msg[RL_WIRE_NODE_MAX + 16];
	size_t len =
	    rl_wire_put_hdr(msg, RL_WIRE_BYE, (const uint8_t *)b->node, b->node_len, b->boot);
	struct rl_buf *o = &b->pub.out;
	if (bridge_pub_cmd(b, BR_IGNORE, 0, 2, "DEL") ||
	    bridge_arg_counts_key(b, o, b->node, b->node_len) ||
	    bridge_pub_cmd(b, BR_IGNORE, 0, 3, "SREM") ||
	    bridge_arg_name(b, o, "nodes", NULL, 0, "") || rl_resp_arg(o, b->node, b->node_len) ||
	    bridge_pub_cmd(b, BR_IGNORE, 0, 3, "PUBLISH") ||
	    bridge_arg_name(b, o, "nodes", NULL, 0, "") || rl_resp_arg(o, msg, len))
		return;
	uint64_t deadline = rl_clock_ms() + BRIDGE_BYE_MS, writes = 0;
	struct pollfd p = {b->pub.fd, POLLOUT, 0};
	while (rl_buf_pending(o) && rl_clock_ms() < deadline) {
		b->pub.wblocked = false;
		if (rl_link_flush(&b->pub, &writes))
			return;
		if (rl_buf_pending(o))
			poll(&p, 1, (int)bridge_until(rl_clock_ms(), deadline));
	}
	shutdown(b->pub.fd, SHUT_WR);
	p.events = POLLIN;
	char buf[4096];
	while (rl_clock_ms() < deadline &&
	       poll(&p, 1, (int)bridge_until(rl_clock_ms(), deadline)) > 0)
		if (recv(b->pub.fd, buf, sizeof(buf), 0) <= 0)
			break;
}

static void bridge_chan_drop(struct rl_chan *ch, void *arg)
{
	(void)arg;
	rl_chan_remove(ch);
}

/* The thread is ending: everything still queued to it is released. */
static void bridge_release(struct rl_bridge *b)
{
	struct rl_inbox_item *it;
	rl_link_close(&b->pub, &b->loop);
	rl_link_close(&b->sub, &b->loop);
	bridge_set_link(b, BRIDGE_DOWN);
	rl_inbox_reset(&b->inbox);
	while ((it = rl_inbox_pop(&b->inbox))) {
		uint64_t bytes = it->bytes;
		if (it->kind == RL_BRIDGE_MSG)
			rl_msg_put(caa_container_of(it, struct rl_msg_item, ib)->msg);
		else
			free(caa_container_of(it, struct rl_bridge_member, ib));
		rl_inbox_done(&b->inbox, bytes);
	}
	rl_chan_foreach(bridge_chan_drop, NULL);
	for (uint32_t i = 0; i < rl_chan_nodes(); i++) {
		struct rl_chan_node *n = rl_chan_node_at(i);
		n->alive = false;
		n->fetching = false;
	}
}

static void *bridge_main(void *arg)
{
	struct rl_bridge *b = arg;
	rl_log_worker = RL_LOG_WHO_BRIDGE;
	rcu_register_thread();
	b->now_ms = rl_clock_ms();
	b->retry_at = b->now_ms;
	b->next_hb = b->now_ms + b->hb_ms;
	b->last_hb = b->now_ms;
	b->next_counts = b->now_ms;
	while (!__atomic_load_n(&b->stop, __ATOMIC_SEQ_CST))
		bridge_turn(b);
	/* What the workers queued before they stopped still goes out. */
	b->inbox_more = true;
	while (b->inbox_more && b->link != BRIDGE_DOWN) {
		b->now_ms = rl_clock_ms();
		bridge_drain(b);
		bridge_announce(b, false);
		bridge_sync(b);
		bridge_flush(b);
	}
	bridge_bye(b);
	bridge_release(b);
	rl_rcu_quiescent();
	rcu_unregister_thread();
	return NULL;
}

/* ---- lifecycle (main thread) ----------------------------------------------- */

int rl_bridge_init(void)
{
	struct rl_bridge *b = &rl_bridge;
	int rc;
	b->inbox.efd = -1;
	b->loop.epfd = -1;
	rl_link_init(&b->pub, "publish");
	rl_link_init(&b->sub, "subscribe");
	CDS_INIT_LIST_HEAD(&b->dirty);
	CDS_INIT_LIST_HEAD(&b->linger);
	CDS_INIT_LIST_HEAD(&b->sync);
	CDS_INIT_LIST_HEAD(&b->gapq);
	b->isrc = RL_SRC_INBOX;
	b->backoff_ms = BRIDGE_BACKOFF_MIN;
	b->skip_gen = 1;
	b->seed = ((uint64_t)b->boot << 32) ^ rl_clock_ns();
	b->hb_ms = b->ttl_ms / 3 < 1000 ? b->ttl_ms / 3 : 1000;
	if (b->hb_ms < 50)
		b->hb_ms = 50;
	if ((rc = rl_chan_init()) || (rc = rl_inbox_init(&b->inbox)) ||
	    (rc = rl_evloop_init(&b->loop, BRIDGE_EVENTS)) || (rc = bridge_scratch(b, 1024)))
		return rc;
	return rl_evloop_add(&b->loop, b->inbox.efd, RL_EV_IN, &b->isrc);
}

int rl_bridge_start(void)
{
	int rc = pthread_create(&rl_bridge.thread, NULL, bridge_main, &rl_bridge);
	rl_bridge.running = rc == 0;
	return -rc;
}

void rl_bridge_stop(void)
{
	struct rl_bridge *b = &rl_bridge;
	if (b->running) {
		__atomic_store_n(&b->stop, 1, __ATOMIC_SEQ_CST);
		rl_inbox_kick(&b->inbox);
		pthread_join(b->thread, NULL);
		b->running = false;
	}
	rl_evloop_fini(&b->loop);
	rl_inbox_fini(&b->inbox);
	rl_resp_reply_free(&b->reply);
	free(b->replies);
	free(b->scratch);
	free(b->wbuf);
	b->replies = NULL;
	b->scratch = NULL;
	b->wbuf = NULL;
}
