/* history.c -- room positions, the per-room ring of recent messages and its
 * budgets, join with resume, retention and expiry of empty rooms.
 * Threading: see history.h. A room's struct rl_hist is guarded by its
 * <lock>, except <link>/<listed>, guarded by hist_g.list_lock. Lock order:
 * list_lock, then a room lock (the sweeper); no code takes list_lock while
 * holding a room lock. */
#include "relay/history.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/rcu.h"
#include "base/stats.h"
#include "net/msg.h"

#include <errno.h>
#include <pthread.h>
#include <relay/protocol.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <urcu/list.h>

#define HIST_RING_MIN 8u	     /* first ring allocation, in slots */
#define HIST_SWEEP_MAX_SLEEP_MS 1000 /* the sweeper wakes at least this often while rooms wait */

struct rl_hist {
	pthread_mutex_t lock;
	struct rl_room *room;
	uint64_t last_seq;  /* N: the seq of the room's last message (0: none) */
	uint64_t first_seq; /* seq of the oldest stored message; last_seq + 1 when none */
	struct rl_msg **ring;
	uint32_t cap, head, count; /* slots, oldest slot, stored messages */
	uint64_t bytes;		   /* stored, as counted against the budgets */
	uint64_t empty_ms;	   /* CLOCK_MONOTONIC ms of the last leave that emptied the room */
	bool empty;		   /* no members; counted in the retained gauge */
	bool dead;		   /* expired: out of the table, never joined again */
	bool listed;		   /* on hist_g.list (guarded by hist_g.list_lock) */
	struct cds_list_head link; /* hist_g.list (guarded by hist_g.list_lock) */
	char epoch[RL_HIST_EPOCH_LEN];
};

bool rl_hist_enabled;

static struct {
	struct rl_history_cfg cfg;
	uint64_t bytes;	   /* atomic: stored bytes, all rooms */
	uint64_t msgs;	   /* atomic: stored messages, all rooms */
	uint64_t retained; /* atomic: empty rooms kept */
	/* Rooms that became empty, in no particular order; the sweeper walks
	 * it. A room is on it at most once (<listed>). */
	pthread_mutex_t list_lock;
	pthread_cond_t wake; /* a room was listed, or stop */
	struct cds_list_head list;
	bool stop;
	bool started;
	pthread_t thread;
} hist_g = {
    .list_lock = PTHREAD_MUTEX_INITIALIZER,
    .list = CDS_LIST_HEAD_INIT(hist_g.list),
};

int rl_history_init(const struct rl_history_cfg *cfg)
{
	hist_g.cfg = *cfg;
	rl_hist_enabled = cfg->size > 0;
	return 0;
}

uint64_t rl_hist_bytes(void)
{
	return __atomic_load_n(&hist_g.bytes, __ATOMIC_RELAXED);
}

uint64_t rl_hist_messages(void)
{
	return __atomic_load_n(&hist_g.msgs, __ATOMIC_RELAXED);
}

uint64_t rl_hist_retained(void)
{
	return __atomic_load_n(&hist_g.retained, __ATOMIC_RELAXED);
}

/* ---- per room -------------------------------------------------------------- */

/* 16 lowercase hex characters from 8 random bytes. getrandom fails only on
 * kernels older than 3.17 or under a seccomp filter: then the clock and an
 * address still make a restart's epochs differ from the last run's. */
static void hist_new_epoch(char out[RL_HIST_EPOCH_LEN])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t v;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		v = ((uint64_t)ts.tv_sec << 30 ^ (uint64_t)ts.tv_nsec) * 0x9e3779b97f4a7c15ull ^
		    (uint64_t)(uintptr_t)out;
	}
	for (int i = RL_HIST_EPOCH_LEN - 1; i >= 0; i--, v >>= 4)
		out[i] = hex[v & 15];
}

struct rl_hist *rl_hist_new(struct rl_room *r)
{
	struct rl_hist *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	if (pthread_mutex_init(&h->lock, NULL) != 0) {
		free(h);
		return NULL;
	}
	h->room = r;
	h->first_seq = 1;
	CDS_INIT_LIST_HEAD(&h->link);
	hist_new_epoch(h->epoch);
	return h;
}

void rl_hist_lock(struct rl_hist *h)
{
	pthread_mutex_lock(&h->lock);
}

void rl_hist_unlock(struct rl_hist *h)
{
	pthread_mutex_unlock(&h->lock);
}

static uint64_t hist_entry_bytes(const struct rl_msg *m)
{
	return (uint64_t)m->len + RL_HIST_ENTRY_OVERHEAD;
}

/* What one store (or clear) dropped from a ring, settled with the
 * server-wide counters in one go: in the steady state of a full ring (one
 * message out for one in, of about the same size) that costs no shared
 * atomic write at all. */
struct hist_delta {
	uint64_t freed;   /* bytes */
	uint64_t dropped; /* messages */
};

/* Drops the oldest stored message (count > 0; <h> locked or unreachable);
 * counted as an eviction in <stats> unless NULL. */
static void hist_drop_oldest(struct rl_hist *h, struct hist_delta *d, struct rl_stats *stats)
{
	struct rl_msg *m = h->ring[h->head];
	uint64_t n = hist_entry_bytes(m);
	h->head = h->head + 1 == h->cap ? 0 : h->head + 1;
	h->count--;
	h->first_seq++;
	h->bytes -= n;
	d->freed += n;
	d->dropped++;
	rl_msg_put(m);
	if (stats)
		RL_STAT_ADD(stats, hist_evictions, 1);
}

/* Gives the bytes <d> freed back to the server-wide budget and takes <n>:
 * false (nothing changed) when the budget cannot hold the difference. */
static bool hist_budget_settle(uint64_t n, const struct hist_delta *d)
{
	uint64_t cur = __atomic_load_n(&hist_g.bytes, __ATOMIC_RELAXED), next;
	if (n == d->freed)
		return true;
	do {
		next = cur - d->freed + n;
		if (n > d->freed && next > hist_g.cfg.total_bytes)
			return false;
	} while (!__atomic_compare_exchange_n(&hist_g.bytes, &cur, next, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return true;
}

/* Settles the message count: <stored> (0 or 1) in, d->dropped out. */
static void hist_count_settle(const struct hist_delta *d, uint64_t stored)
{
	if (stored != d->dropped)
		__atomic_add_fetch(&hist_g.msgs, stored - d->dropped, __ATOMIC_RELAXED);
}

/* The message with seq <seq> cannot be stored: everything older can no
 * longer be replayed without a gap, so it goes too. */
static void hist_hole(struct rl_hist *h, uint64_t seq, struct hist_delta *d,
		      struct rl_stats *stats)
{
	while (h->count)
		hist_drop_oldest(h, d, stats);
	hist_budget_settle(0, d);
	hist_count_settle(d, 0);
	h->first_seq = seq + 1;
	RL_STAT_ADD(stats, hist_unstored, 1);
}

/* Room for one more slot; false on ENOMEM. */
static bool hist_ring_reserve(struct rl_hist *h)
{
	if (h->count < h->cap)
		return true;
	uint64_t cap = h->cap ? (uint64_t)h->cap * 2 : HIST_RING_MIN;
	if (cap > hist_g.cfg.size)
		cap = hist_g.cfg.size;
	struct rl_msg **nr = malloc(cap * sizeof(*nr));
	if (!nr)
		return false;
	for (uint32_t i = 0; i < h->count; i++) /* unwrap: oldest at 0 */
		nr[i] = h->ring[(h->head + i) % h->cap];
	free(h->ring);
	h->ring = nr;
	h->cap = (uint32_t)cap;
	h->head = 0;
	return true;
}

/* Stores <m> (seq <seq>) under the eviction rule of protocol-v1-ext.md
 * section 4: the room's own oldest go first for the count and the room's
 * bytes; when the server-wide budget is spent the room evicts its own
 * oldest until the message fits, and a message that still does not fit is
 * not stored (a hole). */
static void hist_store(struct rl_hist *h, struct rl_msg *m, uint64_t seq, struct rl_stats *stats)
{
	const struct rl_history_cfg *cfg = &hist_g.cfg;
	uint64_t n = hist_entry_bytes(m);
	struct hist_delta d = {0, 0};

	while (h->count && (h->count >= cfg->size || h->bytes + n > cfg->room_bytes))
		hist_drop_oldest(h, &d, stats);
	if (n > cfg->room_bytes || !hist_ring_reserve(h)) {
		hist_hole(h, seq, &d, stats);
		return;
	}
	while (!hist_budget_settle(n, &d)) {
		if (!h->count) {
			hist_hole(h, seq, &d, stats);
			return;
		}
		hist_drop_oldest(h, &d, stats);
	}
	hist_count_settle(&d, 1);
	rl_msg_get(m);
	h->ring[(h->head + h->count) % h->cap] = m;
	h->count++;
	h->bytes += n;
}

/* Replaces the final } of a JSON delivery with ,"seq":N} and fixes the
 * frame's length. */
static void hist_put_json_seq(struct rl_msg *m, uint64_t seq)
{
	char digits[24];
	int nd = 0;
	do
		digits[nd++] = (char)('0' + seq % 10);
	while ((seq /= 10) != 0);
	uint8_t *o = m->data + m->len - 1; /* the final } */
	memcpy(o, ",\"seq\":", 7);
	o += 7;
	while (nd)
		*o++ = (uint8_t)digits[--nd];
	*o++ = '}';
	m->len = (uint32_t)(o - m->data);
	uint32_t length = m->len - RELAY_FRAME_LEN_BYTES;
	m->data[0] = (uint8_t)(length >> 24);
	m->data[1] = (uint8_t)(length >> 16);
	m->data[2] = (uint8_t)(length >> 8);
	m->data[3] = (uint8_t)length;
}

uint64_t rl_hist_append(struct rl_hist *h, struct rl_msg *m, enum rl_hist_form form,
			uint32_t seq_at, struct rl_stats *stats)
{
	uint64_t seq = ++h->last_seq;
	if (form == RL_HIST_JSON)
		hist_put_json_seq(m, seq);
	else
		relay_bin_delivery_put_seq(m->data + seq_at, seq);
	hist_store(h, m, seq, stats);
	return seq;
}

void rl_hist_clear(struct rl_hist *h)
{
	struct hist_delta d = {0, 0};
	while (h->count)
		hist_drop_oldest(h, &d, NULL);
	hist_budget_settle(0, &d);
	hist_count_settle(&d, 0);
	h->first_seq = h->last_seq + 1;
}

void rl_hist_free(struct rl_hist *h)
{
	if (!h)
		return;
	rl_hist_clear(h);
	free(h->ring);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* ---- retention --------------------------------------------------------------- */

/* Puts the room of <h>, just emptied, on the sweeper's list. Called after
 * the room lock was released (lock order: list, then room), so the sweeper
 * may have expired the room in between: an expired room is never listed
 * again (it would be expired twice, and stay listed once freed). <h> is
 * still memory: the caller is online and has passed no quiescent state. */
static void hist_list_add(struct rl_hist *h)
{
	pthread_mutex_lock(&hist_g.list_lock);
	rl_hist_lock(h);
	bool dead = h->dead;
	rl_hist_unlock(h);
	if (!h->listed && !dead) {
		h->listed = true;
		bool was_empty = cds_list_empty(&hist_g.list);
		cds_list_add_tail(&h->link, &hist_g.list);
		if (was_empty)
			pthread_cond_signal(&hist_g.wake);
	}
	pthread_mutex_unlock(&hist_g.list_lock);
}

/* With <h> locked and its room at 0 members: empty from now on (its ttl
 * counts from here). The caller lists it (hist_list_add) after unlocking. */
static void hist_now_empty(struct rl_hist *h)
{
	h->empty_ms = rl_clock_ms();
	if (!h->empty) {
		h->empty = true;
		__atomic_add_fetch(&hist_g.retained, 1, __ATOMIC_RELAXED);
	}
}

void rl_hist_leave(struct rl_room *r)
{
	struct rl_hist *h = rl_room_hist(r);
	bool list = false;

	rl_hist_lock(h);
	if (rl_room_count_member(r, -1) == 0) {
		hist_now_empty(h);
		list = true;
	}
	rl_hist_unlock(h);
	if (list)
		hist_list_add(h);
}

/* One listed room, <h>, at <now> (list_lock held). Returns true when it
 * expired and is off the list; *<next> lowers to its deadline when it
 * waits. */
static bool hist_sweep_one(struct rl_hist *h, uint64_t now, uint64_t *next)
{
	struct rl_room *r = h->room;

	rl_hist_lock(h);
	if (rl_room_members(r) > 0) { /* revived: listed again when it empties */
		rl_hist_unlock(h);
		cds_list_del_init(&h->link);
		h->listed = false;
		return false;
	}
	uint64_t due = h->empty_ms + hist_g.cfg.ttl_ms;
	if (now < due) {
		rl_hist_unlock(h);
		if (due < *next)
			*next = due;
		return false;
	}
	/* Expired. A join from now on finds <dead> and creates a new room. */
	h->dead = true;
	h->empty = false;
	__atomic_sub_fetch(&hist_g.retained, 1, __ATOMIC_RELAXED);
	rl_hist_clear(h); /* the room is unreachable for appends: no members */
	rl_hist_unlock(h);
	cds_list_del_init(&h->link);
	h->listed = false;
	rl_room_unlink(r);
	return true;
}

uint64_t rl_hist_sweep(uint64_t now_ms)
{
	struct rl_hist *h, *tmp;
	uint64_t next = UINT64_MAX;

	pthread_mutex_lock(&hist_g.list_lock);
	cds_list_for_each_entry_safe(h, tmp, &hist_g.list, link) hist_sweep_one(h, now_ms, &next);
	pthread_mutex_unlock(&hist_g.list_lock);
	return next;
}

/* Sleeps on <wake> until <deadline_ms> (CLOCK_MONOTONIC; UINT64_MAX:
 * until signalled). list_lock held. */
static void hist_sleep_until(uint64_t deadline_ms)
{
	if (deadline_ms == UINT64_MAX) {
		pthread_cond_wait(&hist_g.wake, &hist_g.list_lock);
		return;
	}
	struct timespec ts = {(time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L};
	pthread_cond_timedwait(&hist_g.wake, &hist_g.list_lock, &ts);
}

/* The sweeper: a registered QSBR reader, offline while it sleeps. It wakes
 * at the earliest deadline (at most HIST_SWEEP_MAX_SLEEP_MS later), so a
 * room is gone well within a second of its ttl. */
static void *hist_sweeper(void *arg)
{
	(void)arg;
	rl_log_worker = -1;
	rcu_register_thread();
	pthread_mutex_lock(&hist_g.list_lock);
	while (!hist_g.stop) {
		pthread_mutex_unlock(&hist_g.list_lock);
		rl_rcu_online();
		uint64_t now = rl_clock_ms();
		uint64_t next = rl_hist_sweep(now);
		rl_rcu_offline();
		pthread_mutex_lock(&hist_g.list_lock);
		if (hist_g.stop)
			break;
		if (cds_list_empty(&hist_g.list))
			next = UINT64_MAX;
		else if (next > now + HIST_SWEEP_MAX_SLEEP_MS)
			next = now + HIST_SWEEP_MAX_SLEEP_MS;
		hist_sleep_until(next);
	}
	pthread_mutex_unlock(&hist_g.list_lock);
	rcu_unregister_thread();
	return NULL;
}

int rl_history_start(void)
{
	if (!rl_hist_enabled)
		return 0;
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&hist_g.wake, &ca))
		return -ENOMEM;
	pthread_condattr_destroy(&ca);
	int rc = pthread_create(&hist_g.thread, NULL, hist_sweeper, NULL);
	if (rc) {
		pthread_cond_destroy(&hist_g.wake);
		return -rc;
	}
	hist_g.started = true;
	return 0;
}

void rl_history_stop(void)
{
	if (!hist_g.started)
		return;
	pthread_mutex_lock(&hist_g.list_lock);
	hist_g.stop = true;
	pthread_cond_signal(&hist_g.wake);
	pthread_mutex_unlock(&hist_g.list_lock);
	pthread_join(hist_g.thread, NULL);
	pthread_cond_destroy(&hist_g.wake);
	hist_g.started = false;
	/* Rooms still listed are freed by rl_rooms_fini with the table. */
	CDS_INIT_LIST_HEAD(&hist_g.list);
}

/* ---- join ---------------------------------------------------------------------- */

/* With <h> locked: references to the stored messages <from>..last_seq, in
 * order, into out->replay. false when they could not be copied (ENOMEM). */
static bool hist_copy(struct rl_hist *h, uint64_t from, struct rl_hist_join *out)
{
	uint64_t n = h->last_seq + 1 - from;
	if (n == 0)
		return true;
	out->replay = malloc(n * sizeof(*out->replay));
	if (!out->replay)
		return false;
	uint64_t skip = from - h->first_seq;
	for (uint64_t i = 0; i < n; i++) {
		struct rl_msg *m = h->ring[(h->head + skip + i) % h->cap];
		rl_msg_get(m);
		out->replay[i] = m;
	}
	out->nreplay = (uint32_t)n;
	return true;
}

/* With <h> locked, after the membership was taken: what <since> gets. */
static enum rl_hist_resume hist_resume(struct rl_hist *h, const struct rl_hist_since *since,
				       bool same_epoch, struct rl_hist_join *out)
{
	if (!since)
		return RL_HIST_NO_SINCE;
	/* Every message since.seq+1..N is stored: first_seq <= since.seq + 1
	 * (the ring always ends at N). */
	if (!same_epoch || since->seq + 1 < h->first_seq)
		return RL_HIST_MISSED;
	return hist_copy(h, since->seq + 1, out) ? RL_HIST_RECOVERED : RL_HIST_MISSED;
}

/* A join that took no membership after all. A room it created has none:
 * it becomes empty (and is listed, so that it expires) like any other. A
 * room that was empty already keeps its ttl: a refused join is no leave.
 * <h> locked; returns whether the caller must list it. */
static bool hist_join_undo(struct rl_room *r, struct rl_hist *h)
{
	if (rl_room_members(r) != 0 || h->empty)
		return false;
	hist_now_empty(h);
	return true;
}

int rl_hist_join(const uint8_t *name, size_t len, unsigned w, struct rl_member m,
		 const struct rl_hist_since *since, struct rl_hist_join *out)
{
	memset(out, 0, sizeof(*out));
	for (;;) {
		bool created;
		struct rl_room *r = rl_room_find_or_add(name, len, &created);
		if (!r)
			return errno == ENOSPC ? -ENOSPC : -ENOMEM;
		struct rl_hist *h = rl_room_hist(r);
		rl_hist_lock(h);
		if (h->dead) { /* expired under us: help remove it, then a new one */
			rl_hist_unlock(h);
			rl_room_unlink(r);
			continue;
		}
		bool same = since && since->epoch_len == RL_HIST_EPOCH_LEN &&
			    memcmp(since->epoch, h->epoch, RL_HIST_EPOCH_LEN) == 0;
		memcpy(out->epoch, h->epoch, RL_HIST_EPOCH_LEN);
		out->seq = h->last_seq;
		int rc = 0;
		if (same && since->seq > h->last_seq)
			out->resume = RL_HIST_AHEAD;
		else if (rl_room_local_add(r, w, m, &out->idx) != 0)
			rc = -ENOMEM;
		if (out->resume == RL_HIST_AHEAD || rc) {
			bool list = hist_join_undo(r, h);
			rl_hist_unlock(h);
			if (list)
				hist_list_add(h);
			return rc;
		}
		out->members = rl_room_count_member(r, 1);
		if (h->empty) { /* revived */
			h->empty = false;
			__atomic_sub_fetch(&hist_g.retained, 1, __ATOMIC_RELAXED);
		}
		out->resume = hist_resume(h, since, same, out);
		rl_hist_unlock(h);
		out->room = r;
		return 0;
	}
}

void rl_hist_position(struct rl_room *r, char epoch[RL_HIST_EPOCH_LEN], uint64_t *seq)
{
	struct rl_hist *h = rl_room_hist(r);
	rl_hist_lock(h);
	memcpy(epoch, h->epoch, RL_HIST_EPOCH_LEN);
	*seq = h->last_seq;
	rl_hist_unlock(h);
}
