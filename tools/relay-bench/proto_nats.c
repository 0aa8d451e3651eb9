/* proto_nats.c -- relay-bench speaking the NATS client protocol (text):
 * CONNECT, SUB <subject> <sid>, PUB <subject> <n>, PING/PONG; parses INFO,
 * MSG, +OK, -ERR, PING and PONG in place. Rooms map to subjects "r<idx>".
 * Threading: called only by the connection's owner thread.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

static void nats_hello(struct bconn *c)
{
	/* echo:false so a chat member does not get its own messages back, as
	 * relayd and (by construction) the redis publisher connections behave. */
	static const char conn[] =
		"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,"
		"\"name\":\"relay-bench\",\"lang\":\"c\",\"version\":\"0.1\",\"protocol\":1}\r\n";
	rb_out_append(c, conn, sizeof conn - 1);
}

static void nats_subscribe(struct bconn *c, uint32_t room)
{
	char line[64];
	char name[16];
	rb_room_name(name, room);
	int n = snprintf(line, sizeof line, "SUB %s %u\r\nPING\r\n", name, room + 1);
	rb_out_append(c, line, (size_t)n);
	c->pending_acks++; /* the PONG */
}

static void nats_unsubscribe(struct bconn *c, uint32_t room)
{
	char line[32];
	int n = snprintf(line, sizeof line, "UNSUB %u\r\n", room + 1);
	rb_out_append(c, line, (size_t)n);
}

static size_t dec_len(size_t v)
{
	size_t d = 1;
	while (v >= 10)
		v /= 10, d++;
	return d;
}

static size_t nats_publish_size(uint32_t room, size_t n)
{
	char name[16];
	return 4 + rb_room_name(name, room) + 1 + dec_len(n) + 2 + n + 2;
}

static uint8_t *put_dec(uint8_t *q, size_t v)
{
	size_t d = dec_len(v);
	for (size_t i = d; i-- > 0; v /= 10)
		q[i] = (uint8_t)('0' + v % 10);
	return q + d;
}

static void nats_publish(struct bconn *c, uint32_t room, const uint8_t *p, size_t n)
{
	char name[16];
	size_t nl = rb_room_name(name, room);
	uint8_t *w = rb_out_reserve(c, nats_publish_size(room, n)), *q = w;
	memcpy(q, "PUB ", 4), q += 4;
	memcpy(q, name, nl), q += nl;
	*q++ = ' ';
	q = put_dec(q, n);
	*q++ = '\r', *q++ = '\n';
	memcpy(q, p, n), q += n;
	*q++ = '\r', *q++ = '\n';
	rb_out_commit(c, (size_t)(q - w));
}

/* MSG <subject> <sid> [reply-to] <#bytes>: the byte count is the last token. */
static long msg_size(const uint8_t *l, size_t n)
{
	size_t i = n;
	while (i > 0 && l[i - 1] == ' ')
		i--;
	size_t end = i;
	while (i > 0 && l[i - 1] >= '0' && l[i - 1] <= '9')
		i--;
	if (i == end || end - i > 9)
		return -1;
	long v = 0;
	for (; i < end; i++)
		v = v * 10 + (l[i] - '0');
	return v;
}

static int nats_input(struct bconn *c, const uint8_t *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		const uint8_t *l = p + off;
		const uint8_t *nl = memchr(l, '\n', n - off);
		if (!nl)
			break;
		size_t ll = (size_t)(nl - l); /* without \n */
		if (ll && l[ll - 1] == '\r')
			ll--;
		size_t lineend = (size_t)(nl - p) + 1;
		if (ll >= 4 && memcmp(l, "MSG ", 4) == 0) {
			long sz = msg_size(l + 4, ll - 4);
			if (sz < 0) {
				rb_on_error(c, "bad MSG line", 12);
				return -1;
			}
			if (lineend + (size_t)sz + 2 > n)
				break; /* payload incomplete */
			rb_on_delivery(c, p + lineend, (size_t)sz);
			off = lineend + (size_t)sz + 2;
			continue;
		}
		if (ll == 4 && memcmp(l, "PING", 4) == 0)
			rb_out_append(c, "PONG\r\n", 6);
		else if (ll == 4 && memcmp(l, "PONG", 4) == 0)
			rb_on_ack(c);
		else if (ll >= 4 && memcmp(l, "-ERR", 4) == 0)
			rb_on_error(c, (const char *)l, ll);
		else
			rb_on_other(c); /* INFO, +OK */
		off = lineend;
	}
	return (int)off;
}

static void nats_keepalive(struct bconn *c)
{
	rb_out_append(c, "PING\r\n", 6); /* its PONG is an ack nobody waits for */
}

const struct rb_proto rb_proto_nats = {
	.name = "nats",
	.hello = nats_hello,
	.subscribe = nats_subscribe,
	.unsubscribe = nats_unsubscribe,
	.publish = nats_publish,
	.input = nats_input,
	.publish_size = nats_publish_size,
	.keepalive = nats_keepalive,
};
