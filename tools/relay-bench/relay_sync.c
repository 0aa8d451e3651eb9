/* relay_sync.c -- a blocking-style Relay client (poll with timeouts) for the
 * checks that need strict request/reply order: frag cases and chaos's final
 * health check. Parses with the protocol library's decoder.
 * Threading: one struct rb_sync per caller; no shared state.
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int rb_sync_open(struct rb_sync *s, const struct sockaddr_in *addr)
{
	memset(s, 0, sizeof *s);
	s->fd = rb_connect_blocking(addr, 2000);
	if (s->fd < 0)
		return s->fd;
	relay_decoder_init(&s->dec, RELAY_DEFAULT_MAX_FRAME);
	return 0;
}

void rb_sync_close(struct rb_sync *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	relay_decoder_free(&s->dec);
}

int rb_sync_send(struct rb_sync *s, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(s->fd, b, n);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pf = { .fd = s->fd, .events = POLLOUT };
				if (poll(&pf, 1, 2000) <= 0)
					return -ETIMEDOUT;
				continue;
			}
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int rb_sync_send_frame(struct rb_sync *s, uint8_t type, uint8_t flags, const void *p,
		       size_t n)
{
	uint8_t buf[RELAY_FRAME_HDR_BYTES + 4096];
	if (n > 4096)
		return -EMSGSIZE;
	size_t len = relay_frame_encode(buf, type, flags, p, (uint32_t)n);
	return rb_sync_send(s, buf, len);
}

int rb_sync_recv(struct rb_sync *s, struct relay_frame *f, uint8_t *pl, size_t plcap,
		 int timeout_ms)
{
	uint64_t deadline = rb_now_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		if (s->fed) {
			enum relay_decode_status st = relay_decoder_next(&s->dec, f);
			if (st == RELAY_DECODE_FRAME) {
				size_t n = f->len < plcap ? f->len : plcap;
				memcpy(pl, f->payload, n);
				f->payload = pl;
				return 0;
			}
			if (st == RELAY_DECODE_ERROR)
				return -EPROTO;
			if (st == RELAY_DECODE_NOMEM)
				return -ENOMEM;
			s->fed = false;
		}
		if (s->eof)
			return -ECONNRESET;
		uint64_t now = rb_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd pf = { .fd = s->fd, .events = POLLIN };
		int pr = poll(&pf, 1, (int)((deadline - now) / 1000000u) + 1);
		if (pr == 0)
			return -ETIMEDOUT;
		if (pr < 0)
			continue;
		ssize_t r = read(s->fd, s->buf, sizeof s->buf);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			s->eof = true;
			continue;
		}
		if (r < 0)
			continue;
		relay_decoder_feed(&s->dec, s->buf, (size_t)r);
		s->fed = true;
	}
}

int rb_sync_expect(struct rb_sync *s, uint8_t type, uint8_t *pl, size_t plcap,
		   size_t *pllen, int timeout_ms)
{
	struct relay_frame f;
	for (;;) {
		int rc = rb_sync_recv(s, &f, pl, plcap, timeout_ms);
		if (rc < 0)
			return rc;
		if (pllen)
			*pllen = f.len;
		if (f.type == type)
			return 0;
		if (f.type == RELAY_MSG_ERROR) {
			fprintf(stderr, "relay-bench: unexpected ERROR: %.*s\n",
				(int)(f.len < plcap ? f.len : plcap), (const char *)pl);
			return -EBADMSG;
		}
	}
}

int rb_sync_hello_join(struct rb_sync *s, const char *room, int timeout_ms)
{
	char js[128];
	int n = snprintf(js, sizeof js, "{\"room\":\"%s\"}", room);
	uint8_t pl[1024];
	int rc = rb_sync_send_frame(s, RELAY_MSG_HELLO, RELAY_FLAG_JSON, "{}", 2);
	if (!rc)
		rc = rb_sync_send_frame(s, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_JSON, js, (size_t)n);
	if (!rc)
		rc = rb_sync_expect(s, RELAY_MSG_HELLO, pl, sizeof pl, NULL, timeout_ms);
	if (!rc)
		rc = rb_sync_expect(s, RELAY_MSG_JOIN_ROOM, pl, sizeof pl, NULL, timeout_ms);
	return rc;
}

long rb_sync_content(struct rb_sync *s, uint8_t *out, size_t cap, int timeout_ms)
{
	static uint8_t pl[RELAY_DEFAULT_MAX_FRAME];
	size_t len;
	for (;;) {
		int rc = rb_sync_expect(s, RELAY_MSG_MESSAGE, pl, sizeof pl, &len, timeout_ms);
		if (rc < 0)
			return rc;
		struct relay_json_field fl = { .key = "content" };
		if (relay_json_parse(pl, len, &fl, 1, NULL) < 0)
			return -EPROTO;
		if (fl.kind == RELAY_JSON_NONE)
			continue; /* presence event */
		if (fl.raw.n > cap)
			return -EMSGSIZE;
		memcpy(out, fl.raw.p, fl.raw.n);
		return (long)fl.raw.n;
	}
}

size_t rb_msg_frame(uint8_t *out, size_t cap, const char *room, const char *content,
		    size_t clen)
{
	struct relay_jw w;
	relay_jw_init(&w, out + RELAY_FRAME_HDR_BYTES, cap - RELAY_FRAME_HDR_BYTES);
	relay_jw_obj_begin(&w);
	relay_jw_key(&w, "room");
	relay_jw_cstr(&w, room);
	relay_jw_key(&w, "content");
	relay_jw_raw(&w, content, clen);
	relay_jw_obj_end(&w);
	if (w.overflow)
		return 0;
	relay_frame_put_header(out, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, (uint32_t)w.len);
	return RELAY_FRAME_HDR_BYTES + w.len;
}
