/* limit.c -- connections per client address (a table shared by every
 * worker) and per-connection token buckets that throttle reading.
 * Threading: see limit.h. The address table is a chained hash under one
 * mutex, taken once at accept and once at close of a counted connection
 * (the accept path already takes worker.c's descriptor lock per accept);
 * nothing on the message path touches it. A connection's buckets are its
 * owner worker's. */
#include "net/limit.h"

#include "base/clock.h"
#include "net/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
/* A throttled connection is read again once its bucket holds this much of
 * the rate (at least one token, at most the burst): at most 100 wakeups a
 * second per throttled connection, whatever the rate. */
#define LIMIT_SLICE_MS 10
#define LIMIT_TAB_MIN 64 /* buckets of the address table at first */

/* ---- connections per address ---------------------------------------------- */

struct rl_limit_addr {
	struct rl_limit_addr *next; /* hash chain */
	uint64_t hash;
	uint8_t ip[16];		 /* IPv6; IPv4 as IPv4-mapped IPv6 */
	uint64_t conns;		 /* counted connections open */
	struct rl_ratelimit log; /* its refusal lines: one a second */
};

/* Entries exist while their address has a counted connection open, so the
 * table holds at most as many as there are connections; it grows by
 * doubling and is freed at exit. */
static struct {
	pthread_mutex_t lock;
	struct rl_limit_addr **tab;
	size_t cap; /* a power of two, or 0 */
	size_t n;
	uint64_t seed; /* hash key: clients cannot pick addresses that share a chain */
} limit_addrs = {.lock = PTHREAD_MUTEX_INITIALIZER};

void rl_limit_init(void)
{
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = rl_clock_ns() ^ (uint64_t)(uintptr_t)&seed;
	limit_addrs.seed = seed;
}

void rl_limit_fini(void)
{
	for (size_t i = 0; i < limit_addrs.cap; i++) {
		while (limit_addrs.tab[i]) {
			struct rl_limit_addr *a = limit_addrs.tab[i];
			limit_addrs.tab[i] = a->next;
			free(a);
		}
	}
	free(limit_addrs.tab);
	limit_addrs.tab = NULL;
	limit_addrs.cap = limit_addrs.n = 0;
}

/* <peer>'s address as 16 bytes of IPv6 (IPv4 mapped into it, so a client
 * reaching a dual-stack listener both ways is one address). false: not IP. */
static bool limit_ip_key(const struct sockaddr_storage *peer, uint8_t ip[16])
{
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)peer;
		memset(ip, 0, 10);
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &v4->sin_addr, 4);
		return true;
	}
	if (peer->ss_family == AF_INET6) {
		memcpy(ip, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
		return true;
	}
	return false;
}

static void limit_ip_str(const uint8_t ip[16], char *buf, size_t cap)
{
	if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)ip))
		inet_ntop(AF_INET, ip + 12, buf, (socklen_t)cap);
	else
		inet_ntop(AF_INET6, ip, buf, (socklen_t)cap);
}

static uint64_t limit_hash(const uint8_t ip[16])
{
	uint64_t a, b, h = limit_addrs.seed;
	memcpy(&a, ip, 8);
	memcpy(&b, ip + 8, 8);
	h = (h ^ a) * 0x9e3779b97f4a7c15ull;
	h = (h ^ (h >> 29) ^ b) * 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 29);
}

/* Doubles the table (under the lock). false: out of memory, the table is
 * unchanged (chains just get longer). */
static bool limit_grow(void)
{
	size_t cap = limit_addrs.cap ? limit_addrs.cap * 2 : LIMIT_TAB_MIN;
	struct rl_limit_addr **tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return false;
	for (size_t i = 0; i < limit_addrs.cap; i++) {
		while (limit_addrs.tab[i]) {
			struct rl_limit_addr *a = limit_addrs.tab[i];
			limit_addrs.tab[i] = a->next;
			a->next = tab[a->hash & (cap - 1)];
			tab[a->hash & (cap - 1)] = a;
		}
	}
	free(limit_addrs.tab);
	limit_addrs.tab = tab;
	limit_addrs.cap = cap;
	return true;
}

/* The entry of <ip>, added with no connection if missing. Under the lock.
 * NULL: out of memory. */
static struct rl_limit_addr *limit_addr_get(const uint8_t ip[16])
{
	uint64_t h = limit_hash(ip);
	if (limit_addrs.cap) {
		for (struct rl_limit_addr *a = limit_addrs.tab[h & (limit_addrs.cap - 1)]; a;
		     a = a->next)
			if (a->hash == h && memcmp(a->ip, ip, 16) == 0)
				return a;
	}
	if (limit_addrs.n >= limit_addrs.cap && !limit_grow() && limit_addrs.cap == 0)
		return NULL;
	struct rl_limit_addr *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->hash = h;
	memcpy(a->ip, ip, 16);
	size_t i = h & (limit_addrs.cap - 1);
	a->next = limit_addrs.tab[i];
	limit_addrs.tab[i] = a;
	limit_addrs.n++;
	return a;
}

/* Takes entry <a> out of the table and frees it. Under the lock. */
static void limit_addr_drop(struct rl_limit_addr *a)
{
	struct rl_limit_addr **p = &limit_addrs.tab[a->hash & (limit_addrs.cap - 1)];
	while (*p != a)
		p = &(*p)->next;
	*p = a->next;
	limit_addrs.n--;
	free(a);
}

enum relay_err rl_limit_admit(struct rl_worker *w, const struct sockaddr_storage *peer,
			      struct rl_limit_addr **addr)
{
	uint64_t max = RL_CFG(max_conns_ip), held, more = 0;
	uint8_t ip[16];
	bool log;

	*addr = NULL;
	if (max == 0 || !limit_ip_key(peer, ip))
		return RELAY_ERR_NONE;
	pthread_mutex_lock(&limit_addrs.lock);
	struct rl_limit_addr *a = limit_addr_get(ip);
	if (a && a->conns < max) {
		a->conns++;
		*addr = a;
	}
	held = a ? a->conns : 0;
	log = a && !*addr && rl_log_on(RL_LOG_INFO) &&
	      rl_ratelimit_ok(&a->log, w->now_ms, 1000, &more);
	pthread_mutex_unlock(&limit_addrs.lock);
	if (!a)
		return RELAY_ERR_NONE; /* out of memory: served, not counted */
	if (*addr)
		return RELAY_ERR_NONE;
	RL_STAT_ADD(w->stats, refused_per_ip, 1);
	if (log) {
		char s[INET6_ADDRSTRLEN];
		limit_ip_str(ip, s, sizeof(s));
		RL_INFOF(0,
			 "%s holds %" PRIu64 " connections (--max-connections-per-ip %" PRIu64
			 "): refused with TOO_MANY_CONNECTIONS (%" PRIu64
			 " more from it since the last report)",
			 s, held, max, more);
	}
	return RELAY_ERR_TOO_MANY_CONNECTIONS;
}

/* One connection of <a> closed: the last one takes the entry away, with a
 * line for refusals that were not logged yet. Any worker. */
static void limit_addr_put(struct rl_limit_addr *a)
{
	uint64_t more = 0;
	uint8_t ip[16];

	pthread_mutex_lock(&limit_addrs.lock);
	if (--a->conns == 0) {
		more = a->log.suppressed;
		memcpy(ip, a->ip, 16);
		limit_addr_drop(a);
	}
	pthread_mutex_unlock(&limit_addrs.lock);
	if (more && rl_log_on(RL_LOG_INFO)) {
		char s[INET6_ADDRSTRLEN];
		limit_ip_str(ip, s, sizeof(s));
		RL_INFOF(0,
			 "%s: %" PRIu64
			 " more refused with TOO_MANY_CONNECTIONS since the last report",
			 s, more);
	}
}

/* ---- a connection's limit state ------------------------------------------------ */

/* c->lim, allocated on first use. NULL: out of memory. */
static struct rl_limit *limit_of(struct rl_conn *c)
{
	if (!c->lim)
		c->lim = calloc(1, sizeof(*c->lim));
	return c->lim;
}

void rl_limit_attach(struct rl_conn *c, struct rl_limit_addr *addr)
{
	if (!addr)
		return;
	if (!c) {
		limit_addr_put(addr);
		return;
	}
	if (!limit_of(c)) {
		limit_addr_put(addr);
		RL_WARNF(c->id, "out of memory for its limit state: connection closed");
		rl_conn_kill(c);
		return;
	}
	c->lim->addr = addr;
}

void rl_limit_conn_closed(struct rl_conn *c)
{
	struct rl_limit *l = c->lim;
	if (!l)
		return;
	if (l->addr)
		limit_addr_put(l->addr);
	rl_limit_keep(c, NULL, 0);
	free(l);
	c->lim = NULL;
}

/* ---- token buckets ------------------------------------------------------------------- */

/* Each bucket's options (offsets in struct rl_config, read with relaxed
 * loads: reloadable) and the counter of the throttles it starts. */
static const struct {
	size_t rate, burst; /* offsetof(struct rl_config, ...) */
	size_t stat;	    /* offsetof(struct rl_stats, ...) */
} limit_buckets[RL_LIMIT_NBUCKETS] = {
    [RL_LIMIT_PUBLISH] = {offsetof(struct rl_config, pub_rate),
			  offsetof(struct rl_config, pub_burst),
			  offsetof(struct rl_stats, throttles_publish)},
    [RL_LIMIT_PUBLISH_BYTES] = {offsetof(struct rl_config, pub_bytes_rate),
				offsetof(struct rl_config, pub_bytes_burst),
				offsetof(struct rl_stats, throttles_publish_bytes)},
    [RL_LIMIT_JOIN] = {offsetof(struct rl_config, join_rate),
		       offsetof(struct rl_config, join_burst),
		       offsetof(struct rl_stats, throttles_join)},
};

static uint64_t limit_cfg(size_t off)
{
	return __atomic_load_n((const uint64_t *)((const char *)&rl_srv.cfg + off),
			       __ATOMIC_RELAXED);
}

static bool limit_rates_on(void)
{
	return RL_CFG(pub_rate) || RL_CFG(pub_bytes_rate) || RL_CFG(join_rate);
}

/* <tokens> at <rate> a second, in ns, rounded up (rate <= 2^40 and tokens
 * <= 2^32: the product stays below 2^63). */
static uint64_t limit_ns(uint64_t tokens, uint64_t rate)
{
	return (tokens * NS_PER_S + rate - 1) / rate;
}

int rl_limit_take(struct rl_conn *c, enum rl_limit_bucket b, uint64_t n)
{
	uint64_t rate = limit_cfg(limit_buckets[b].rate);
	if (rate == 0)
		return 0;
	struct rl_limit *l = limit_of(c);
	if (!l)
		return -ENOMEM;
	struct rl_worker *w = c->w;
	uint64_t burst = limit_cfg(limit_buckets[b].burst);
	if (burst == 0)
		burst = rate < RL_OPT_BURST_MAX ? rate : RL_OPT_BURST_MAX;
	uint64_t now = w->now_ms * NS_PER_MS;
	uint64_t depth = burst * NS_PER_S / rate; /* a full bucket, in ns */
	uint64_t one = NS_PER_S / rate;		  /* one token, rounded down */

	/* An empty bucket refills from now on; but a frame relayd read before
	 * this bucket throttled the connection (kept at <rest>, parsed when
	 * the throttle ends) pays from when the throttle was meant to end: it
	 * was waiting on relayd, and a late wakeup of the worker (or the
	 * rounding of the throttle to the ms) is not the sender's to lose. */
	uint64_t from = now;
	if (l->rest && l->resume_ns[b] && l->resume_ns[b] < now)
		from = l->resume_ns[b];
	else
		l->resume_ns[b] = 0;
	if (l->tat_ns[b] < from)
		l->tat_ns[b] = from;
	l->tat_ns[b] += limit_ns(n, rate);
	if (l->tat_ns[b] <= now || l->tat_ns[b] - now + one <= depth)
		return 0; /* a token is left for the next frame */
	/* Empty: read again once a slice is back. */
	uint64_t slice = rate * LIMIT_SLICE_MS / 1000;
	if (slice < 1)
		slice = 1;
	if (slice > burst)
		slice = burst;
	uint64_t resume = l->tat_ns[b] + limit_ns(slice, rate);
	resume = resume > depth ? resume - depth : 0;
	l->resume_ns[b] = resume;
	uint64_t until = (resume + NS_PER_MS - 1) / NS_PER_MS;
	if (until <= w->now_ms)
		until = w->now_ms + 1;
	if (!(c->flags & RL_CF_THROTTLED)) {
		uint64_t *ctr = (uint64_t *)((char *)w->stats + limit_buckets[b].stat);
		__atomic_store_n(ctr, *ctr + 1, __ATOMIC_RELAXED);
	}
	rl_conn_throttle(c, until);
	return 0;
}

size_t rl_limit_read_size(const struct rl_conn *c)
{
	if (!limit_rates_on())
		return RL_SCRATCH_BYTES;
	size_t pending = relay_decoder_pending(&c->dec);
	if (pending <= RL_LIMIT_READ_BYTES)
		return RL_LIMIT_READ_BYTES;
	return pending < RL_SCRATCH_BYTES ? pending : RL_SCRATCH_BYTES;
}

int rl_limit_keep(struct rl_conn *c, const uint8_t *p, size_t n)
{
	struct rl_limit *l = c->lim;
	struct rl_stats *st = c->w->stats;

	if (n && l->rest && p >= l->rest && p < l->rest + l->rest_cap) {
		memmove(l->rest, p, n); /* the end of what was kept: same buffer */
		l->rest_len = (uint32_t)n;
		return 0;
	}
	if (l->rest) {
		RL_STAT_SUB(st, mem_tails, l->rest_cap);
		free(l->rest);
		l->rest = NULL;
		l->rest_len = l->rest_cap = 0;
	}
	if (n == 0)
		return 0;
	if (!(l->rest = malloc(n)))
		return -ENOMEM;
	memcpy(l->rest, p, n);
	l->rest_len = l->rest_cap = (uint32_t)n;
	RL_STAT_ADD(st, mem_tails, n);
	return 0;
}
