/* inbox.c -- MPSC queue + eventfd. Threading: see inbox.h. */
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

void rl_inbox_push(struct rl_inbox *ib, struct rl_inbox_item *it)
{
	cds_wfcq_node_init(&it->node);
	__atomic_add_fetch(&ib->pending, 1, __ATOMIC_RELAXED);
	rl_tsan_release(it);
	if (!cds_wfcq_enqueue(&ib->head, &ib->tail, &it->node))
		rl_inbox_kick(ib);
}

void rl_inbox_push_own(struct rl_inbox *ib, struct rl_inbox_item *it)
{
	cds_wfcq_node_init(&it->node);
	__atomic_add_fetch(&ib->pending, 1, __ATOMIC_RELAXED);
	rl_tsan_release(it);
	cds_wfcq_enqueue(&ib->head, &ib->tail, &it->node);
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
