/* script.c -- the pipe-friendly commands.
 *   sub ROOM...            join, print one line per message (--json, --count,
 *                          --timeout; --resume-file: resume a history room
 *                          from the position kept in a file)
 *   pub ROOM [MESSAGE...]  join, send the words or every stdin line, then a
 *                          HEARTBEAT round trip so that exit 0 means the server
 *                          has processed every message
 * Diagnostics go to stderr, data to stdout.
 *
 * Threading: main thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static struct rl_cli_conn script_conn; /* 64 KiB receive buffer: not on the stack */

/* Validates and trims <name> into <out>. 0, or -1 after reporting. */
static int script_room(const char *name, char out[RELAY_ROOM_MAX_BYTES + 1])
{
	struct relay_span t;

	if (relay_room_name_check((const uint8_t *)name, strlen(name), &t) != RELAY_ERR_NONE) {
		rl_cli_warn("invalid room name '%s' (1-64 bytes of UTF-8, no control characters)",
			    name);
		return -1;
	}
	memcpy(out, t.p, t.n);
	out[t.n] = '\0';
	return 0;
}

/* Connects and says HELLO. 0, or -1 after reporting. */
static int script_connect(struct rl_cli_conn *c, const struct rl_cli_opts *o, rl_cli_event_fn *fn,
			  void *arg)
{
	if (rl_cli_conn_open(c, o->host, o->port, &o->tls, RL_CLI_CONNECT_TIMEOUT_MS, fn, arg) ||
	    rl_cli_conn_hello(c, o->user, o->token)) {
		rl_cli_warn("%s", c->why);
		return -1;
	}
	return 0;
}

/* JOIN_ROOM (resuming from <epoch>/<seq> when <epoch> is not NULL) and wait
 * for the ack (in c->reply). 0 joined, > 0 the handler asked to stop, -1
 * failed (reported). */
static int script_join(struct rl_cli_conn *c, const char *room, const char *epoch, uint64_t seq)
{
	uint8_t buf[256];
	size_t n = epoch ? rl_cli_req_join_since(buf, sizeof buf, room, epoch, seq)
			 : rl_cli_req_room(buf, sizeof buf, room);
	int rc = rl_cli_conn_request(c, RELAY_MSG_JOIN_ROOM, room, buf, n, RL_CLI_REPLY_TIMEOUT_MS);

	if (rc == 1) {
		rl_cli_warn("cannot join '%s': %s: %s", room, c->reply.code, c->reply.message);
		return -1;
	}
	if (rc < 0) {
		rl_cli_warn("%s", rc == -EINTR ? "interrupted" : c->why);
		return -1;
	}
	return rc;
}

/* ---- sub ------------------------------------------------------------------ */

/* --resume-file: the room's position, "EPOCH SEQ\n" in the file. */
struct sub_pos {
	char epoch[24]; /* "" when none */
	uint64_t seq;	/* the last message processed */
	bool dirty;	/* changed since written */
	bool moved;	/* a delivery set <seq> since the JOIN was sent */
};

struct sub_state {
	const struct rl_cli_opts *o;
	long got; /* messages printed */
	struct sub_pos pos;
};

/* Reads the position kept in <path>: 0 (a missing file is no position yet),
 * -1 after reporting an unreadable or malformed one. */
static int sub_pos_load(const char *path, struct sub_pos *p)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		rl_cli_warn("--resume-file %s: %s", path, strerror(errno));
		return -1;
	}
	char epoch[24];
	uint64_t seq;
	int n = fscanf(f, "%23s %" SCNu64, epoch, &seq);
	fclose(f);
	if (n != 2 || strlen(epoch) != 16) {
		rl_cli_warn("--resume-file %s: not a position (want \"EPOCH SEQ\")", path);
		return -1;
	}
	snprintf(p->epoch, sizeof p->epoch, "%s", epoch);
	p->seq = seq;
	return 0;
}

/* Writes the position to <path> (through a temporary file and rename, so a
 * crash leaves the old position or the new one). -1 after reporting. */
static int sub_pos_save(const char *path, struct sub_pos *p)
{
	char tmp[4096];
	if (!p->dirty || !p->epoch[0])
		return 0;
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	bool ok = f && fprintf(f, "%s %" PRIu64 "\n", p->epoch, p->seq) > 0;
	ok = f && fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		rl_cli_warn("--resume-file %s: %s", path, strerror(errno));
		return -1;
	}
	p->dirty = false;
	return 0;
}

static int sub_on_event(void *arg, const struct rl_cli_event *ev)
{
	struct sub_state *s = arg;

	if (ev->kind == RL_CLI_EV_ERROR) {
		rl_cli_warn("server error %s: %s", ev->code, ev->message);
		return 0;
	}
	if (ev->kind == RL_CLI_EV_GAP) { /* stdout stays the messages alone */
		rl_cli_warn("room %s: messages may have been missed (%s)", ev->room, ev->message);
		return 0;
	}
	if (ev->kind != RL_CLI_EV_MESSAGE && ev->kind != RL_CLI_EV_BINARY)
		return 0;
	if (s->o->json)
		rl_cli_fmt_json_line(stdout, ev);
	else
		rl_cli_fmt_content(stdout, ev);
	fputc('\n', stdout);
	fflush(stdout);
	s->got++;
	if (s->o->resume_file && ev->has_seq) { /* saved after each batch read */
		s->pos.seq = ev->seq;
		s->pos.dirty = s->pos.moved = true;
	}
	/* 2, not 1: a stop during a JOIN (a replay) must not read as the
	 * request's ERROR (rl_cli_conn_request returns 1 for that) */
	return s->o->count && s->got >= s->o->count ? 2 : 0;
}

/* The JOIN ack of the resumed room, which asked to start after <from>
 * when <since>: says what came of it, and where the room is now. Deliveries
 * that came with the ack (a replay, or live ones) were processed already
 * and moved the position themselves. */
static void sub_resumed(struct sub_state *s, const struct rl_cli_event *ack, bool since,
			uint64_t from)
{
	bool recovered = since && ack->recovered == 1;

	if (!ack->epoch[0]) {
		rl_cli_warn("the server keeps no history: --resume-file has no effect");
		return;
	}
	if (recovered)
		rl_cli_warn("recovered %" PRIu64 " messages", ack->seq - from);
	else if (since)
		rl_cli_warn("gap: could not recover");
	if (!s->pos.moved)
		s->pos.seq = recovered ? from : ack->seq;
	snprintf(s->pos.epoch, sizeof s->pos.epoch, "%s", ack->epoch);
	s->pos.dirty = true;
}

/* Joins every room; reports "subscribed" on stderr once all are acked. */
static int sub_join_all(struct rl_cli_conn *c, struct sub_state *s)
{
	const struct rl_cli_opts *o = s->o;
	char room[RELAY_ROOM_MAX_BYTES + 1], list[512] = "";
	size_t used = 0;

	for (int i = 0; i < o->nargs; i++) {
		int rc;

		if (script_room(o->args[i], room))
			return -1;
		bool since = o->resume_file && s->pos.epoch[0];
		uint64_t from = s->pos.seq;
		s->pos.moved = false;
		rc = script_join(c, room, since ? s->pos.epoch : NULL, from);
		if (rc < 0)
			return rc;
		if (o->resume_file && c->reply.kind == RL_CLI_EV_JOINED)
			sub_resumed(s, &c->reply, since, from);
		if (rc)
			return rc;
		used += (size_t)snprintf(list + used, used < sizeof list ? sizeof list - used : 0,
					 "%s%s", i ? ", " : "", room);
		if (used >= sizeof list)
			used = sizeof list - 1;
	}
	rl_cli_warn("subscribed to %s as %s", list, c->conn_id);
	return 0;
}

/* Status when the wait ends early (timeout, signal): 2 if --count unmet. */
static int sub_short(const struct sub_state *s, const char *why)
{
	if (!s->o->count)
		return 0;
	rl_cli_warn("%s: %ld of %ld messages", why, s->got, s->o->count);
	return 2;
}

static int sub_loop(struct rl_cli_conn *c, struct sub_state *s, int64_t deadline)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	for (;;) {
		int rc = rl_cli_conn_pump(c);

		if (s->o->resume_file && sub_pos_save(s->o->resume_file, &s->pos))
			return 1;
		if (rc > 0)
			return 0;
		if (rc < 0) {
			rl_cli_warn("%s", c->why);
			return 1;
		}
		if (rl_cli_conn_keepalive(c) < 0) {
			rl_cli_warn("%s", c->why);
			return 1;
		}
		rc = rl_cli_poll(&p, 1, rl_cli_conn_poll_ms(c, rl_cli_left_ms(deadline)));
		if (rc == 0 && deadline >= 0 && rl_cli_left_ms(deadline) == 0)
			return sub_short(s, "timed out");
		if (rc == -1 && rl_cli_signalled)
			return sub_short(s, "interrupted");
	}
}

int rl_cli_sub(const struct rl_cli_opts *o)
{
	struct rl_cli_conn *c = &script_conn;
	struct sub_state s = {.o = o};
	int64_t deadline = o->timeout_s < 0 ? -1 : rl_cli_now_ms() + (int64_t)(o->timeout_s * 1000);
	if (o->resume_file && sub_pos_load(o->resume_file, &s.pos))
		return 1;
	int rc = script_connect(c, o, sub_on_event, &s);

	if (rc == 0)
		rc = sub_join_all(c, &s);
	if (rc == 0)
		rc = sub_loop(c, &s, deadline);
	else
		rc = rc > 0 ? 0 : 1;
	if (o->resume_file && sub_pos_save(o->resume_file, &s.pos) && rc == 0)
		rc = 1;
	rl_cli_conn_close(c);
	return rc;
}

/* ---- pub ------------------------------------------------------------------ */

struct pub_state {
	struct rl_cli_conn *c;
	const struct rl_cli_opts *o;
	char room[RELAY_ROOM_MAX_BYTES + 1];
	uint8_t *buf; /* one MESSAGE payload, max_frame bytes */
	long sent;
	int errors; /* ERRORs from the server */
};

static int pub_on_event(void *arg, const struct rl_cli_event *ev)
{
	struct pub_state *s = arg;

	if (ev->kind == RL_CLI_EV_ERROR) {
		rl_cli_warn("server error %s: %s", ev->code, ev->message);
		s->errors++;
	}
	return 0;
}

/* Checks one message: valid JSON with --json, valid UTF-8 otherwise. */
static int pub_check(const struct rl_cli_opts *o, const char *msg, size_t n, long line)
{
	char why[160], where[32] = "";

	if (line > 0)
		snprintf(where, sizeof where, "line %ld: ", line);
	if (o->json && rl_cli_json_check(msg, n, why, sizeof why)) {
		rl_cli_warn("%s%s; nothing sent", where, why);
		return -1;
	}
	if (!o->json && !relay_utf8_valid((const uint8_t *)msg, n)) {
		rl_cli_warn("%smessage is not valid UTF-8; nothing sent", where);
		return -1;
	}
	return 0;
}

static int pub_send(struct pub_state *s, const char *msg, size_t len)
{
	size_t cap = s->c->max_frame;
	size_t n = rl_cli_req_message(s->buf, cap, s->room, msg, len, s->o->json);

	if (n == 0) {
		rl_cli_warn("message too large: the server accepts frames of at most %u bytes",
			    s->c->max_frame);
		return -1;
	}
	if (rl_cli_conn_send(s->c, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, s->buf, n)) {
		rl_cli_warn("%s", s->c->why);
		return -1;
	}
	s->sent++;
	return 0;
}

/* Sends each complete line <in> holds. */
static int pub_lines(struct pub_state *s, struct rl_cli_input *in, long *lineno)
{
	char *line;
	size_t n;

	while ((line = rl_cli_input_line(in, &n))) {
		++*lineno;
		if (pub_check(s->o, line, n, *lineno) || pub_send(s, line, n))
			return -1;
	}
	return 0;
}

/* Streams stdin, line by line, while draining what the server sends. */
static int pub_stdin(struct pub_state *s)
{
	struct rl_cli_input in;
	struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
			      {.fd = s->c->fd, .events = POLLIN}};
	long lineno = 0;
	int rc = 0;

	rl_cli_input_init(&in, STDIN_FILENO);
	while (rc == 0 && !in.eof) {
		if ((rc = rl_cli_conn_pump(s->c)) < 0 || (rc = rl_cli_conn_keepalive(s->c)) < 0) {
			rl_cli_warn("%s", s->c->why);
			break;
		}
		if (rl_cli_poll(p, 2, rl_cli_conn_poll_ms(s->c, -1)) == -1 && rl_cli_signalled) {
			rl_cli_warn("interrupted");
			rc = -1;
		} else if (p[0].revents) {
			rc = rl_cli_input_fill(&in);
			if (rc)
				rl_cli_warn("reading stdin: %s", strerror(-rc));
			else
				rc = pub_lines(s, &in, &lineno);
		}
	}
	rl_cli_input_free(&in);
	return rc ? -1 : 0;
}

/* The words after ROOM joined by spaces, checked before connecting. */
static char *pub_words(const struct rl_cli_opts *o, size_t *len)
{
	size_t n = 0;
	char *msg;

	for (int i = 1; i < o->nargs; i++)
		n += strlen(o->args[i]) + 1;
	msg = malloc(n + 1);
	if (!msg)
		return NULL;
	msg[0] = '\0';
	n = 0;
	for (int i = 1; i < o->nargs; i++)
		n += (size_t)sprintf(msg + n, "%s%s", i > 1 ? " " : "", o->args[i]);
	*len = n;
	if (pub_check(o, msg, n, 0)) {
		free(msg);
		return NULL;
	}
	return msg;
}

/* The HEARTBEAT echo comes after the server has handled every earlier frame
 * of this connection: then every message is out and every ERROR is in. */
static int pub_finish(struct pub_state *s)
{
	int rc = rl_cli_conn_ping(s->c, NULL);

	if (rc < 0) {
		rl_cli_warn("%s", rc == -EINTR ? "interrupted" : s->c->why);
		return -1;
	}
	return s->errors ? -1 : 0;
}

static int pub_run(struct pub_state *s, const char *msg, size_t len)
{
	const struct rl_cli_opts *o = s->o;

	if (script_room(o->args[0], s->room) || script_connect(s->c, o, pub_on_event, s) ||
	    script_join(s->c, s->room, NULL, 0))
		return -1;
	s->buf = malloc(s->c->max_frame);
	if (!s->buf) {
		rl_cli_warn("out of memory");
		return -1;
	}
	if (msg ? pub_send(s, msg, len) : pub_stdin(s))
		return -1;
	return pub_finish(s);
}

int rl_cli_pub(const struct rl_cli_opts *o)
{
	struct pub_state s = {.c = &script_conn, .o = o};
	char *msg = NULL;
	size_t len = 0;
	int rc;

	s.c->fd = -1;
	if (o->nargs > 1 && !(msg = pub_words(o, &len)))
		return 1;
	rc = pub_run(&s, msg, len);
	free(msg);
	free(s.buf);
	if (s.c->fd >= 0)
		rl_cli_conn_close(s.c);
	return rc ? 1 : 0;
}
