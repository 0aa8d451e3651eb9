/* channel.c -- the bus's view of rooms and of the other nodes.
 * Threading: see channel.h. The table is a cds_lfht (QSBR flavour) with one
 * writer, the bridge; <remote> is read by workers with an atomic load. */
#include "cluster/channel.h"

#include "relay/room.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct cds_lfht *chan_ht;
static long chan_count; /* atomic */
static struct rl_chan_node *chan_nodes[RL_CHAN_NODES_MAX];
static uint32_t chan_nnodes;

struct chan_key {
	const uint8_t *p;
	size_t n;
};

int rl_chan_init(void)
{
	chan_ht = cds_lfht_new_flavor(1024, 1024, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
				      &urcu_qsbr_flavor, NULL);
	return chan_ht ? 0 : -ENOMEM;
}

void rl_chan_fini(void)
{
	for (uint32_t i = 0; i < chan_nnodes; i++)
		free(chan_nodes[i]);
	chan_nnodes = 0;
	if (chan_ht)
		cds_lfht_destroy(chan_ht, NULL);
	chan_ht = NULL;
}

long rl_chan_count(void)
{
	return uatomic_read(&chan_count);
}

static int chan_match(struct cds_lfht_node *node, const void *key)
{
	struct rl_chan *ch = caa_container_of(node, struct rl_chan, node);
	const struct chan_key *k = key;
	rl_tsan_acquire(ch); /* published by the bridge's add */
	return ch->name_len == k->n && memcmp(ch->name, k->p, k->n) == 0;
}

static struct rl_chan *chan_lookup(const uint8_t *name, size_t len, uint64_t hash)
{
	struct chan_key k = {name, len};
	struct cds_lfht_iter it;
	cds_lfht_lookup(chan_ht, hash, chan_match, &k, &it);
	struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
	return node ? caa_container_of(node, struct rl_chan, node) : NULL;
}

long rl_chan_remote_members(const uint8_t *name, size_t len)
{
	struct rl_chan *ch = chan_lookup(name, len, rl_room_hash_name(name, len));
	return ch ? uatomic_read(&ch->remote) : 0;
}

struct rl_chan *rl_chan_find(const uint8_t *name, size_t len)
{
	return chan_lookup(name, len, rl_room_hash_name(name, len));
}

struct rl_chan *rl_chan_get(const uint8_t *name, size_t len)
{
	uint64_t hash = rl_room_hash_name(name, len);
	struct rl_chan *ch = chan_lookup(name, len, hash);
	if (ch || len == 0 || len > RL_CHAN_NAME_MAX)
		return ch;
	if (!(ch = calloc(1, sizeof(*ch))))
		return NULL;
	cds_lfht_node_init(&ch->node);
	ch->hash = hash;
	ch->name_len = (uint8_t)len;
	memcpy(ch->name, name, len);
	CDS_INIT_LIST_HEAD(&ch->dirty_link);
	CDS_INIT_LIST_HEAD(&ch->linger_link);
	CDS_INIT_LIST_HEAD(&ch->sync_link);
	CDS_INIT_LIST_HEAD(&ch->gap_link);
	rl_tsan_release(ch);
	cds_lfht_add(chan_ht, hash, &ch->node); /* one writer: no duplicate can race in */
	uatomic_inc(&chan_count);
	return ch;
}

bool rl_chan_idle(struct rl_chan *ch)
{
	return ch->local == 0 && ch->announced == 0 && ch->sub == RL_CHAN_UNSUB &&
	       uatomic_read(&ch->remote) == 0 && ch->peers == NULL && !ch->linger &&
	       cds_list_empty(&ch->dirty_link) && cds_list_empty(&ch->sync_link) &&
	       cds_list_empty(&ch->gap_link);
}

static void chan_free_cb(struct rcu_head *head)
{
	rl_rcu_callback_enter();
	free(caa_container_of(head, struct rl_chan, rcu));
}

static void chan_peer_free(struct rl_chan_peer *p)
{
	cds_list_del(&p->plink);
	free(p);
}

void rl_chan_remove(struct rl_chan *ch)
{
	while (ch->peers) {
		struct rl_chan_peer *p = ch->peers;
		ch->peers = p->next;
		chan_peer_free(p);
	}
	cds_list_del_init(&ch->dirty_link);
	cds_list_del_init(&ch->linger_link);
	cds_list_del_init(&ch->sync_link);
	cds_list_del_init(&ch->gap_link);
	if (cds_lfht_del(chan_ht, &ch->node) == 0) {
		uatomic_dec(&chan_count);
		call_rcu(&ch->rcu, chan_free_cb);
	}
}

void rl_chan_foreach(void (*fn)(struct rl_chan *ch, void *arg), void *arg)
{
	struct cds_lfht_iter it;
	struct rl_chan *ch;
	cds_lfht_for_each_entry(chan_ht, &it, ch, node) {
		rl_tsan_acquire(ch);
		fn(ch, arg);
	}
}

/* ---- nodes ------------------------------------------------------------------- */

int rl_chan_node_get(const uint8_t *id, size_t len)
{
	int free_slot = -1;
	for (uint32_t i = 0; i < chan_nnodes; i++) {
		struct rl_chan_node *n = chan_nodes[i];
		if (n->id_len == len && memcmp(n->id, id, len) == 0)
			return (int)i;
		if (free_slot < 0 && !n->alive && cds_list_empty(&n->rooms) && !n->fetching)
			free_slot = (int)i;
	}
	if (len == 0 || len > 32)
		return -EINVAL;
	struct rl_chan_node *n;
	if (chan_nnodes == RL_CHAN_NODES_MAX) {
		/* Full (nodes restarted under new ids): reuse one that is gone. A
		 * slot is not reused earlier, so a node just added, not yet heard
		 * from, keeps its own. */
		if (free_slot < 0)
			return -ENOSPC;
		n = chan_nodes[free_slot];
	} else {
		if (!(n = calloc(1, sizeof(*n))))
			return -ENOMEM;
		free_slot = (int)chan_nnodes;
		chan_nodes[chan_nnodes++] = n;
	}
	memset(n, 0, sizeof(*n));
	memcpy(n->id, id, len);
	n->id_len = (uint8_t)len;
	CDS_INIT_LIST_HEAD(&n->rooms);
	return free_slot;
}

struct rl_chan_node *rl_chan_node_at(uint32_t idx)
{
	return idx < chan_nnodes ? chan_nodes[idx] : NULL;
}

uint32_t rl_chan_nodes(void)
{
	return chan_nnodes;
}

struct rl_chan_peer *rl_chan_peer(struct rl_chan *ch, uint32_t node, bool create)
{
	for (struct rl_chan_peer *p = ch->peers; p; p = p->next)
		if (p->node == node)
			return p;
	if (!create)
		return NULL;
	struct rl_chan_peer *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->ch = ch;
	p->node = node;
	p->next = ch->peers;
	ch->peers = p;
	cds_list_add_tail(&p->plink, &chan_nodes[node]->rooms);
	return p;
}

/* Unlinks <p> from its room's list and frees it. */
static void chan_peer_drop(struct rl_chan_peer *p)
{
	struct rl_chan_peer **pp = &p->ch->peers;
	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
	chan_peer_free(p);
}

static void chan_peer_count(struct rl_chan_peer *p, uint32_t count)
{
	long delta = (long)count - (long)p->count;
	p->count = count;
	if (delta)
		uatomic_add(&p->ch->remote, delta);
}

void rl_chan_set_count(struct rl_chan *ch, uint32_t node, uint32_t count, uint64_t ver)
{
	if (ver <= chan_nodes[node]->ver)
		return; /* a snapshot at least as new was applied */
	struct rl_chan_peer *p = rl_chan_peer(ch, node, count > 0);
	if (!p || p->ver >= ver)
		return;
	chan_peer_count(p, count);
	p->ver = ver;
	if (count == 0 && p->last_seq == 0 && ch->sub == RL_CHAN_UNSUB)
		chan_peer_drop(p);
}

void rl_chan_node_clear(uint32_t node, uint64_t ver, bool forget,
			void (*gone)(struct rl_chan *ch, void *arg), void *arg)
{
	struct rl_chan_node *n = chan_nodes[node];
	struct rl_chan_peer *p, *tmp;
	cds_list_for_each_entry_safe(p, tmp, &n->rooms, plink) {
		if (p->ver >= ver && ver != UINT64_MAX)
			continue;
		struct rl_chan *ch = p->ch;
		chan_peer_count(p, 0);
		if (ver != UINT64_MAX)
			p->ver = ver;
		if (forget || p->last_seq == 0 || ch->sub == RL_CHAN_UNSUB) {
			chan_peer_drop(p);
			gone(ch, arg);
		}
	}
	if (ver != UINT64_MAX && ver > n->ver)
		n->ver = ver;
}

void rl_chan_forget_seqs(struct rl_chan *ch)
{
	struct rl_chan_peer **pp = &ch->peers;
	while (*pp) {
		struct rl_chan_peer *p = *pp;
		p->last_seq = 0;
		if (p->count == 0) {
			*pp = p->next;
			chan_peer_free(p);
		} else {
			pp = &p->next;
		}
	}
}
