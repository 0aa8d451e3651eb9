/* test_conn.c -- what net/conn.c does once per message or per delivery,
 * without sockets: the connection name ("conn-N", every delivery's "from"),
 * and fan-out's per-member fast path (rl_conn_deliver_quick, net/conn.h),
 * which queues a frame only when that is nothing but a copy into the tail
 * chunk with the effect rl_conn_deliver would have, and otherwise leaves
 * the connection untouched for rl_conn_deliver.
 * Threading: single-threaded; the connection is a bare struct on the stack
 * with no socket, worker loop or transport behind it. */
#include "unit.h"

#include "net/conn.h"
#include "net/msg.h"

#include <urcu/list.h>

static struct rl_worker quick_w; /* only its address: the owner check */
static struct cds_list_head quick_flush;
static struct rl_segpool quick_pool;

/* An OPEN connection on the flush list with <queued> bytes in a tail chunk. */
static void quick_conn(struct rl_conn *c, uint32_t queued)
{
	memset(c, 0, sizeof(*c));
	c->state = RL_CONN_OPEN;
	c->w = &quick_w;
	CDS_INIT_LIST_HEAD(&quick_flush);
	CDS_INIT_LIST_HEAD(&c->qlink);
	cds_list_add_tail(&c->qlink, &quick_flush);
	uint8_t *d = rl_outq_reserve(&c->out, &quick_pool, queued);
	cr_assert_not_null(d);
	memset(d, 'q', queued);
	rl_outq_commit(&c->out, queued);
}

static struct rl_msg *quick_msg(uint32_t total)
{
	struct rl_msg *m = rl_msg_new(total, 0);
	cr_assert_not_null(m);
	uint8_t payload[RL_COPY_MAX];
	for (uint32_t i = 0; i < total - RELAY_FRAME_HDR_BYTES; i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	relay_frame_encode(m->data, RELAY_MSG_MESSAGE, RELAY_FLAG_BINARY, payload,
			   total - RELAY_FRAME_HDR_BYTES);
	return m;
}

static void quick_done(struct rl_conn *c, struct rl_msg *m)
{
	rl_outq_clear(&c->out, &quick_pool);
	rl_msg_put(m);
	rl_segpool_fini(&quick_pool);
}

Test(conn, quick_path_copies_the_frame_behind_what_is_queued)
{
	struct rl_conn c;
	quick_conn(&c, 100);
	struct rl_msg *m = quick_msg(150);

	cr_assert(rl_conn_deliver_quick(&c, m, 250), "100 + 150 bytes fit a high watermark of 250");
	cr_assert_eq(c.out.bytes, 250);
	cr_assert_eq(c.out.tail_free, RL_CHUNK_CAP - 250);
	cr_assert(memcmp(c.out.tail->data + 100, m->data, 150) == 0, "the frame's bytes");
	cr_assert_eq(c.out.tail->data[99], 'q', "what was queued before is kept");
	quick_done(&c, m);
}

/* Every case rl_conn_deliver must handle itself: nothing is queued. */
static void quick_refused(struct rl_conn *c, struct rl_msg *m, uint64_t high, const char *why)
{
	uint32_t bytes = c->out.bytes, tail_free = c->out.tail_free;
	cr_assert_not(rl_conn_deliver_quick(c, m, high), "taken although %s", why);
	cr_assert_eq(c->out.bytes, bytes, "%s: bytes queued", why);
	cr_assert_eq(c->out.tail_free, tail_free, "%s: bytes queued", why);
}

Test(conn, quick_path_leaves_every_other_case_to_rl_conn_deliver)
{
	struct rl_conn c;
	struct rl_msg *m = quick_msg(150);

	quick_conn(&c, 100);
	quick_refused(&c, m, 249, "the queue would pass the high watermark");
	quick_refused(&c, m, 0, "the caller said no (debug logging, a large frame)");
	cds_list_del_init(&c.qlink);
	quick_refused(&c, m, 1u << 20, "not on the flush list");
	rl_outq_clear(&c.out, &quick_pool);

	quick_conn(&c, 100);
	c.state = RL_CONN_DRAINING;
	quick_refused(&c, m, 1u << 20, "DRAINING");
	c.state = RL_CONN_CLOSING;
	quick_refused(&c, m, 1u << 20, "CLOSING");
	c.state = RL_CONN_OPEN;
	c.flags = RL_CF_DEAD;
	quick_refused(&c, m, 1u << 20, "dead");
	c.flags = RL_CF_WS;
	quick_refused(&c, m, 1u << 20, "WebSocket (its frames carry a header)");
	rl_outq_clear(&c.out, &quick_pool);

	quick_conn(&c, RL_CHUNK_CAP - 149);
	quick_refused(&c, m, 1u << 20, "the tail chunk has 149 bytes left");
	rl_outq_clear(&c.out, &quick_pool);

	quick_conn(&c, 100);
	rl_outq_clear(&c.out, &quick_pool);
	quick_refused(&c, m, 1u << 20, "the queue has no chunk");
	quick_done(&c, m);
}

/* "conn-N" (the "from" of every delivery), N in decimal, then the suffix. */
Test(conn, name_is_conn_dash_the_decimal_id_then_the_suffix)
{
	char buf[RL_CONN_NAME_MAX];
	static const struct {
		uint64_t id;
		const char *suffix, *want;
	} cases[] = {
	    {0, "", "conn-0"},
	    {7, "", "conn-7"},
	    {10, "", "conn-10"},
	    {1234567890, "", "conn-1234567890"},
	    {UINT64_MAX, "", "conn-18446744073709551615"},
	    {42, "@node-a", "conn-42@node-a"},
	    {UINT64_MAX, "@abcdefghijklmnopqrstuvwxyz012345",
	     "conn-18446744073709551615@abcdefghijklmnopqrstuvwxyz012345"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rl_conn_set_name_suffix(cases[i].suffix);
		memset(buf, 'x', sizeof(buf));
		size_t n = rl_conn_name(cases[i].id, buf);
		cr_assert_str_eq(buf, cases[i].want);
		cr_assert_eq(n, strlen(cases[i].want), "length of %s", cases[i].want);
	}
	rl_conn_set_name_suffix("");
}
