/* inbox.c -- MPSC queue + eventfd + byte backlog. Threading: see inbox.h. */
#include "loop/inbox.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

int rl_inbox_init(struct rl_inbox *ib)
{
	__cds_wfcq_init(&ib->head, &ib->tail);
	ib->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return ib->efd == -1 ? -errno : 0;
}

void rl_inbox_fini(struct rl_inbox *ib)
{
	if (ib->efd >= 0)
		close(ib->efd);
	ib->efd = -1;
}

void rl_inbox_kick(struct rl_inbox *ib)
{
	uint64_t one = 1;
	ssize_t n = write(ib->efd, &one, sizeof(one));
	(void)n; /* EAGAIN means the counter is already non-zero: awake anyway */
}

bool rl_inbox_wait(struct rl_inbox *ib, unsigned waiter)
{
	__atomic_fetch_or(&ib->waiters, 1ull << waiter, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&ib->pending, __ATOMIC_SEQ_CST) < RL_INBOX_LOW;
}

bool rl_inbox_push_later(struct rl_inbox *ib, struct rl_inbox_item *it, uint32_t bytes,
			 bool *kick)
{
	cds_wfcq_node_init(&it->node);
	it->bytes = bytes + RL_INBOX_ITEM_BYTES;
	uint64_t p = __atomic_add_fetch(&ib->pending, it->bytes, __ATOMIC_RELAXED);
	rl_tsan_release(it);
	*kick = !cds_wfcq_enqueue(&ib->head, &ib->tail, &it->node);
	return p > RL_INBOX_HIGH;
}

bool rl_inbox_push(struct rl_inbox *ib, struct rl_inbox_item *it, uint32_t bytes)
{
	bool kick;
	bool full = rl_inbox_push_later(ib, it, bytes, &kick);
	if (kick)
		rl_inbox_kick(ib);
	return full;
}

void rl_inbox_push_own(struct rl_inbox *ib, struct rl_inbox_item *it, uint32_t bytes)
{
	bool kick; /* the owner drains in this turn: no kick */
	(void)rl_inbox_push_later(ib, it, bytes, &kick);
}

void rl_inbox_reset(struct rl_inbox *ib)
{
	uint64_t v;
	ssize_t n = read(ib->efd, &v, sizeof(v));
	(void)n;
}

struct rl_inbox_item *rl_inbox_pop(struct rl_inbox *ib)
{
	struct cds_wfcq_node *n = __cds_wfcq_dequeue_blocking(&ib->head, &ib->tail);
	if (!n)
		return NULL;
	struct rl_inbox_item *it = caa_container_of(n, struct rl_inbox_item, node);
	rl_tsan_acquire(it);
	return it;
}

uint64_t rl_inbox_done(struct rl_inbox *ib, uint64_t bytes)
{
	if (bytes == 0)
		return 0;
	/* Subtract, then read the waiters: see rl_inbox_wait. */
	uint64_t p = __atomic_sub_fetch(&ib->pending, bytes, __ATOMIC_SEQ_CST);
	if (p >= RL_INBOX_LOW || !__atomic_load_n(&ib->waiters, __ATOMIC_SEQ_CST))
		return 0;
	return __atomic_exchange_n(&ib->waiters, 0, __ATOMIC_SEQ_CST);
}

void rl_inbox_drain(struct rl_inbox *ib, rl_inbox_fn *const *fns, struct rl_worker *w,
		    uint64_t max_items, uint64_t budget, struct rl_inbox_drain *out)
{
	uint64_t bytes = 0;

	out->items = out->work = 0;
	out->more = true;
	while (out->items < max_items && out->work < budget) {
		struct rl_inbox_item *it = rl_inbox_pop(ib);
		if (!it) {
			out->more = false;
			break;
		}
		bytes += it->bytes; /* before the handler: it may free the item */
		out->work += fns[it->kind](w, it);
		out->items++;
	}
	out->waiters = rl_inbox_done(ib, bytes);
}
