/* msg.c -- refcounted frames. Threading: see msg.h. */
#include "net/msg.h"

#include <stdlib.h>

/* Set once before any worker runs (rl_msg_set_release), read-only after. */
static rl_msg_release_fn *msg_release;

void rl_msg_set_release(rl_msg_release_fn *fn)
{
	msg_release = fn;
}

struct rl_msg *rl_msg_new(size_t frame_len, unsigned nitems)
{
	size_t hdr = sizeof(struct rl_msg) + nitems * sizeof(struct rl_msg_item);
	struct rl_msg *m = malloc(hdr + RL_MSG_HEADROOM + frame_len);
	if (!m)
		return NULL;
	m->refs = 1;
	m->len = (uint32_t)frame_len;
	m->room = NULL;
	m->t_read_ns = 0;
	m->skip = NULL;
	m->pending = 0;
	m->data = (uint8_t *)m + hdr + RL_MSG_HEADROOM;
	return m;
}

void rl_msg_seal(struct rl_msg *m)
{
	rl_wsf_binary_hdr(m->data - rl_msg_ws_lead(m), m->len);
}

void rl_msg_get(struct rl_msg *m)
{
	__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
}

void rl_msg_put(struct rl_msg *m)
{
	if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (msg_release)
		msg_release(m);
	free(m);
}
