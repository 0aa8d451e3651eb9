/* proto_redis.c -- relay-bench speaking RESP2 pub/sub to redis-server:
 * SUBSCRIBE <channel> on subscriber connections, PUBLISH <channel> <payload>
 * on separate publisher connections (a RESP2 connection in subscribed mode
 * cannot publish). Rooms map to channels "r<idx>". Parses replies in place.
 * Threading: called only by the connection's owner thread.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

static void redis_hello(struct bconn *c)
{
	(void)c;
}

static void redis_cmd2(struct bconn *c, const char *cmd, uint32_t room)
{
	char name[16], buf[96];
	size_t nl = rb_room_name(name, room);
	int n = snprintf(buf, sizeof buf, "*2\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(cmd),
			 cmd, nl, name);
	rb_out_append(c, buf, (size_t)n);
}

static void redis_subscribe(struct bconn *c, uint32_t room)
{
	redis_cmd2(c, "SUBSCRIBE", room);
	c->pending_acks++;
}

static void redis_unsubscribe(struct bconn *c, uint32_t room)
{
	redis_cmd2(c, "UNSUBSCRIBE", room);
	c->pending_acks++;
}

static size_t dec_len(size_t v)
{
	size_t d = 1;
	while (v >= 10)
		v /= 10, d++;
	return d;
}

static uint8_t *put_dec(uint8_t *q, size_t v)
{
	size_t d = dec_len(v);
	for (size_t i = d; i-- > 0; v /= 10)
		q[i] = (uint8_t)('0' + v % 10);
	return q + d;
}

static size_t redis_publish_size(uint32_t room, size_t n)
{
	char name[16];
	size_t nl = rb_room_name(name, room);
	return 4 + 13 + 1 + dec_len(nl) + 2 + nl + 2 + 1 + dec_len(n) + 2 + n + 2;
}

static void redis_publish(struct bconn *c, uint32_t room, const uint8_t *p, size_t n)
{
	char name[16];
	size_t nl = rb_room_name(name, room);
	uint8_t *w = rb_out_reserve(c, redis_publish_size(room, n)), *q = w;
	memcpy(q, "*3\r\n$7\r\nPUBLISH\r\n$", 18), q += 18;
	q = put_dec(q, nl);
	*q++ = '\r', *q++ = '\n';
	memcpy(q, name, nl), q += nl;
	memcpy(q, "\r\n$", 3), q += 3;
	q = put_dec(q, n);
	*q++ = '\r', *q++ = '\n';
	memcpy(q, p, n), q += n;
	*q++ = '\r', *q++ = '\n';
	rb_out_commit(c, (size_t)(q - w));
}

/* One RESP value at p[off..n). Returns bytes it spans, 0 if incomplete, -1 if
 * malformed. Bulk strings are returned through <s>/<sl> (first one only). */
struct resp_item {
	char kind;
	const uint8_t *s;
	size_t sl;
	long long num;
};

/* A "<type><integer>\r\n" line; scanned inline (these lines are a few bytes,
 * a memchr call costs more than the scan). Returns its length, 0 if
 * incomplete, -1 if malformed. */
static long resp_line(const uint8_t *p, size_t n, long long *num)
{
	long long v = 0;
	bool neg = false;
	size_t i = 1;
	if (i < n && p[i] == '-')
		neg = true, i++;
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (p[i] - '0');
	*num = neg ? -v : v;
	if (p[0] == '+' || p[0] == '-') { /* status text: find the end */
		const uint8_t *nl = memchr(p, '\n', n);
		return nl ? (long)(nl - p) + 1 : 0;
	}
	if (i + 2 > n)
		return 0;
	if (p[i] != '\r' || p[i + 1] != '\n')
		return -1;
	return (long)i + 2;
}

static long resp_value(const uint8_t *p, size_t n, struct resp_item *it)
{
	if (n < 3)
		return 0;
	long ll = resp_line(p, n, &it->num);
	if (ll <= 0)
		return ll;
	it->kind = (char)p[0];
	switch (p[0]) {
	case '+':
	case '-':
	case ':':
		it->s = p + 1;
		it->sl = (size_t)ll - 3;
		return ll;
	case '$':
		if (it->num < 0)
			return ll;
		if ((size_t)ll + (size_t)it->num + 2 > n)
			return 0;
		it->s = p + ll;
		it->sl = (size_t)it->num;
		return ll + it->num + 2;
	default:
		return -1;
	}
}

/* Parses one top-level reply; <items> gets up to 4 elements of an array. */
static long resp_reply(const uint8_t *p, size_t n, struct resp_item *items, int *nitems)
{
	long long cnt;
	if (n < 3)
		return 0;
	if (p[0] != '*') {
		*nitems = 1;
		return resp_value(p, n, &items[0]);
	}
	long off = resp_line(p, n, &cnt);
	if (off <= 0)
		return off;
	if (cnt < 0 || cnt > 4)
		return -1;
	*nitems = (int)cnt;
	for (long long i = 0; i < cnt; i++) {
		long l = resp_value(p + off, n - (size_t)off, &items[i]);
		if (l <= 0)
			return l;
		off += l;
	}
	return off;
}

static void redis_reply(struct bconn *c, const struct resp_item *it, int ni)
{
	if (ni == 3 && it[0].kind == '$' && it[0].sl == 7 && memcmp(it[0].s, "message", 7) == 0)
		rb_on_delivery(c, it[2].s, it[2].sl);
	else if (ni == 3 && it[0].kind == '$' && ((it[0].sl == 9 && memcmp(it[0].s, "subscribe", 9) == 0) ||
		  (it[0].sl == 11 && memcmp(it[0].s, "unsubscribe", 11) == 0)))
		rb_on_ack(c);
	else if (ni >= 1 && it[0].kind == '-')
		rb_on_error(c, (const char *)it[0].s, it[0].sl);
	else
		rb_on_other(c); /* PUBLISH's integer reply */
}

static int redis_input(struct bconn *c, const uint8_t *p, size_t n)
{
	size_t off = 0;
	struct resp_item it[4];
	while (off < n) {
		int ni = 0;
		long l = resp_reply(p + off, n - off, it, &ni);
		if (l == 0)
			break;
		if (l < 0) {
			rb_on_error(c, "bad RESP", 8);
			return -1;
		}
		redis_reply(c, it, ni);
		off += (size_t)l;
	}
	return (int)off;
}

static void redis_keepalive(struct bconn *c)
{
	rb_out_append(c, "*1\r\n$4\r\nPING\r\n", 14); /* allowed in subscribed mode */
}

const struct rb_proto rb_proto_redis = {
	.name = "redis",
	.hello = redis_hello,
	.subscribe = redis_subscribe,
	.unsubscribe = redis_unsubscribe,
	.publish = redis_publish,
	.input = redis_input,
	.publish_size = redis_publish_size,
	.keepalive = redis_keepalive,
};
