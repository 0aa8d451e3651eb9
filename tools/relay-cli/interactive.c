/* interactive.c -- `relay-cli [HOST [PORT]]`: the `relay> ` prompt.
 *
 * When stdin and stdout are terminals, input goes through libedit's
 * readline-compatible callback interface (rl_callback_handler_install /
 * rl_callback_read_char), driven by one poll() over stdin and the socket, so
 * messages can arrive while a line is half typed: ia_emit wipes the input
 * line, prints the message, and has libedit redraw the prompt and the typed
 * text (rl_forced_update_display). Otherwise commands are read line by line
 * from stdin, without a prompt (scripts, tests).
 *
 * Requests that the server acknowledges (join, leave, heartbeat) wait for
 * their ack before the next command runs, so a piped `join a` / `send hi`
 * sequence behaves like a typed one.
 *
 * Threading: main thread only. libedit's line callback takes no context
 * pointer, hence the one static session.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "cli.h"

#define IA_PROMPT "relay> "

static struct ia_session {
	const struct rl_cli_opts *o;
	struct rl_cli_conn conn;
	bool tty;	   /* stdin and stdout are terminals: libedit drives input */
	bool prompt_live;  /* libedit's prompt and typed text are on the screen */
	bool fresh_prompt; /* nothing typed since the prompt was installed: libedit's
			      rl_point/rl_line_buffer still describe the last line */
	bool quit;
	int status; /* exit status */
	char *line; /* the line libedit completed, until handled */
	bool have_line;
	struct rl_cli_input in;				     /* non-terminal input */
	char rooms[RL_CLI_MAX_ROOMS][RELAY_ROOM_MAX_BYTES + 1]; /* joined, in join order */
	int nrooms;
	int current; /* index into rooms, -1: none */
} ia;

/* ---- output ------------------------------------------------------------- */

/* Erases the prompt and the typed text, which may span several rows, and
 * leaves the cursor at the start of the first. */
static void ia_hide_input(void)
{
	int rows = 0, cols = 0, col = (int)strlen(IA_PROMPT);

	rl_get_screen_size(&rows, &cols);
	for (int i = 0; !ia.fresh_prompt && rl_line_buffer && i < rl_point && rl_line_buffer[i];
	     i++)
		col += ((unsigned char)rl_line_buffer[i] & 0xc0) != 0x80;
	if (cols > 0 && col / cols > 0)
		printf("\033[%dA", col / cols);
	fputs("\r\033[J", stdout);
}

/* Prints <n> bytes of complete lines above the input line. */
static void ia_emit(const char *text, size_t n)
{
	bool redraw = ia.tty && ia.prompt_live;

	if (redraw)
		ia_hide_input();
	fwrite(text, 1, n, stdout);
	fflush(stdout);
	if (redraw)
		rl_forced_update_display();
}

static void ia_printf(enum rl_cli_style st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ia_printf(enum rl_cli_style st, const char *fmt, ...)
{
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);
	va_list ap;

	if (!f)
		return;
	rl_cli_fmt_style(f, st, ia.o->color);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	rl_cli_fmt_reset(f, ia.o->color);
	fputc('\n', f);
	fclose(f);
	ia_emit(text, n);
	free(text);
}

static int ia_on_event(void *arg, const struct rl_cli_event *ev)
{
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);

	(void)arg;
	if (!f)
		return 0;
	rl_cli_fmt_event(f, ev, ia.o->color);
	fclose(f);
	if (n)
		ia_emit(text, n);
	free(text);
	return 0;
}

/* The connection is gone: say why on stderr and end with status 1. */
static void ia_fail(const char *why)
{
	if (ia.tty && ia.prompt_live)
		ia_hide_input();
	ia.prompt_live = false;
	rl_cli_warn("%s", why);
	ia.status = 1;
	ia.quit = true;
}

/* After a request: 0 acked, 1 answered with an ERROR (printed), -1 fatal. */
static int ia_check(int rc)
{
	if (rc == 1) {
		struct rl_cli_event *ev = &ia.conn.reply;

		ia_printf(RL_CLI_ST_ERROR, "error %s: %s", ev->code, ev->message);
		return 1;
	}
	if (rc == -EINTR) {
		ia.quit = true;
		return -1;
	}
	if (rc < 0) {
		ia_fail(ia.conn.why);
		return -1;
	}
	return 0;
}

/* ---- rooms ------------------------------------------------------------------ */

static int ia_room_find(const char *room)
{
	for (int i = 0; i < ia.nrooms; i++)
		if (!strcmp(ia.rooms[i], room))
			return i;
	return -1;
}

static void ia_room_add(const char *room)
{
	int i = ia_room_find(room);

	if (i < 0 && ia.nrooms < RL_CLI_MAX_ROOMS) {
		i = ia.nrooms++;
		snprintf(ia.rooms[i], sizeof ia.rooms[i], "%s", room);
	}
	ia.current = i;
}

/* Forgets <room>; the current room becomes the last joined one left. */
static void ia_room_remove(const char *room)
{
	int i = ia_room_find(room);

	if (i < 0)
		return;
	memmove(ia.rooms[i], ia.rooms[i + 1], (size_t)(ia.nrooms - i - 1) * sizeof ia.rooms[0]);
	ia.nrooms--;
	if (ia.current == i)
		ia.current = ia.nrooms - 1;
	else if (ia.current > i)
		ia.current--;
}

/* Validates and trims a typed room name into <out>. */
static int ia_room_arg(const char *arg, char out[RELAY_ROOM_MAX_BYTES + 1])
{
	struct relay_span t;

	if (relay_room_name_check((const uint8_t *)arg, strlen(arg), &t) != RELAY_ERR_NONE) {
		ia_printf(RL_CLI_ST_ERROR, "invalid room name (1-64 bytes, no control characters)");
		return -1;
	}
	memcpy(out, t.p, t.n);
	out[t.n] = '\0';
	return 0;
}

/* ---- commands ------------------------------------------------------------- */

static void ia_cmd_join(char *arg)
{
	char room[RELAY_ROOM_MAX_BYTES + 1];
	uint8_t buf[256];
	size_t n;

	if (ia_room_arg(arg, room))
		return;
	n = rl_cli_req_room(buf, sizeof buf, room);
	if (ia_check(rl_cli_conn_request(&ia.conn, RELAY_MSG_JOIN_ROOM, room, buf, n,
					 RL_CLI_REPLY_TIMEOUT_MS)))
		return;
	ia_room_add(room);
	if (ia.conn.reply.members >= 0)
		ia_printf(RL_CLI_ST_INFO, "joined %s (%ld member%s)", room, ia.conn.reply.members,
			  ia.conn.reply.members == 1 ? "" : "s");
	else
		ia_printf(RL_CLI_ST_INFO, "joined %s", room);
}

static void ia_cmd_leave(char *arg)
{
	char room[RELAY_ROOM_MAX_BYTES + 1];
	uint8_t buf[256];
	size_t n;

	if (!arg[0] && ia.current < 0) {
		ia_printf(RL_CLI_ST_ERROR, "not in any room");
		return;
	}
	if (!arg[0])
		snprintf(room, sizeof room, "%s", ia.rooms[ia.current]);
	else if (ia_room_arg(arg, room))
		return;
	n = rl_cli_req_room(buf, sizeof buf, room);
	if (ia_check(rl_cli_conn_request(&ia.conn, RELAY_MSG_LEAVE_ROOM, room, buf, n,
					 RL_CLI_REPLY_TIMEOUT_MS)))
		return;
	ia_room_remove(room);
	if (ia.current >= 0)
		ia_printf(RL_CLI_ST_INFO, "left %s; current room: %s", room, ia.rooms[ia.current]);
	else
		ia_printf(RL_CLI_ST_INFO, "left %s", room);
}

static void ia_cmd_send(char *arg)
{
	size_t len = strlen(arg), cap = ia.conn.max_frame;
	uint8_t *buf;
	size_t n;

	if (!arg[0]) {
		ia_printf(RL_CLI_ST_ERROR, "usage: send <message...>");
		return;
	}
	if (ia.current < 0) {
		ia_printf(RL_CLI_ST_ERROR, "not in any room: join one first");
		return;
	}
	if (!relay_utf8_valid((const uint8_t *)arg, len)) {
		ia_printf(RL_CLI_ST_ERROR, "the message is not valid UTF-8");
		return;
	}
	buf = malloc(cap);
	n = buf ? rl_cli_req_message(buf, cap, ia.rooms[ia.current], arg, len, false) : 0;
	if (n == 0)
		ia_printf(RL_CLI_ST_ERROR, "message too large (the server accepts %zu bytes)", cap);
	else if (rl_cli_conn_send(&ia.conn, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, buf, n))
		ia_fail(ia.conn.why);
	free(buf);
}

static void ia_cmd_rooms(char *arg)
{
	(void)arg;
	if (ia.nrooms == 0) {
		ia_printf(RL_CLI_ST_INFO, "not in any room");
		return;
	}
	for (int i = 0; i < ia.nrooms; i++)
		ia_printf(RL_CLI_ST_INFO, "%c %s", i == ia.current ? '*' : ' ', ia.rooms[i]);
}

static void ia_cmd_switch(char *arg)
{
	char room[RELAY_ROOM_MAX_BYTES + 1];
	int i;

	if (ia_room_arg(arg, room))
		return;
	i = ia_room_find(room);
	if (i < 0) {
		ia_printf(RL_CLI_ST_ERROR, "not in %s: join it first", room);
		return;
	}
	ia.current = i;
	ia_printf(RL_CLI_ST_INFO, "current room: %s", room);
}

static void ia_cmd_heartbeat(char *arg)
{
	int64_t rtt_us = 0;

	(void)arg;
	if (ia_check(rl_cli_conn_ping(&ia.conn, &rtt_us)))
		return;
	ia_printf(RL_CLI_ST_INFO, "heartbeat: round trip %lld.%03lld ms",
		  (long long)(rtt_us / 1000), (long long)(rtt_us % 1000));
}

static void ia_cmd_quit(char *arg)
{
	(void)arg;
	ia.quit = true;
}

static void ia_cmd_help(char *arg);

static const struct ia_cmd {
	const char *name;
	const char *args;
	const char *help; /* NULL: an alias, not listed */
	void (*fn)(char *arg);
	bool needs_arg;
} ia_cmds[] = {
    {"join", "<room>", "join a room; it becomes the current room", ia_cmd_join, true},
    {"leave", "[room]", "leave a room (default: the current one)", ia_cmd_leave, false},
    {"send", "<message...>", "send a message to the current room", ia_cmd_send, false},
    {"rooms", "", "list the rooms you are in (* marks the current one)", ia_cmd_rooms, false},
    {"switch", "<room>", "make a joined room the current one", ia_cmd_switch, true},
    {"heartbeat", "", "measure the round-trip time to the server", ia_cmd_heartbeat, false},
    {"help", "", "show this help", ia_cmd_help, false},
    {"quit", "", "disconnect and exit (also: exit, Ctrl-D)", ia_cmd_quit, false},
    {"exit", "", NULL, ia_cmd_quit, false},
};
#define IA_NCMDS (sizeof ia_cmds / sizeof ia_cmds[0])

static void ia_cmd_help(char *arg)
{
	(void)arg;
	for (size_t i = 0; i < IA_NCMDS; i++) {
		char left[32];

		if (!ia_cmds[i].help)
			continue;
		snprintf(left, sizeof left, "%s %s", ia_cmds[i].name, ia_cmds[i].args);
		ia_printf(RL_CLI_ST_INFO, "  %-22s %s", left, ia_cmds[i].help);
	}
}

static char *ia_skip_space(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Runs one command line. */
static void ia_run_line(char *line)
{
	char *cmd = ia_skip_space(line), *arg, *end;
	size_t len;

	end = cmd + strlen(cmd);
	while (end > cmd && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (!*cmd)
		return;
	len = strcspn(cmd, " \t");
	arg = ia_skip_space(cmd + len);
	cmd[len] = '\0';
	for (size_t i = 0; i < IA_NCMDS; i++) {
		if (strcmp(cmd, ia_cmds[i].name))
			continue;
		if (ia_cmds[i].needs_arg && !*arg)
			ia_printf(RL_CLI_ST_ERROR, "usage: %s %s", ia_cmds[i].name,
				  ia_cmds[i].args);
		else
			ia_cmds[i].fn(arg);
		return;
	}
	ia_printf(RL_CLI_ST_ERROR, "unknown command '%s' (type 'help')", cmd);
}

/* ---- completion ------------------------------------------------------------ */

/* Tab completes command names in the first word and joined rooms after it
 * (never file names). libedit's generator protocol: <state> 0 starts over;
 * each call returns a malloc'd match or NULL when done. */
static char *ia_complete_cmd(const char *text, int state)
{
	static size_t i;

	if (state == 0)
		i = 0;
	while (i < IA_NCMDS) {
		const char *name = ia_cmds[i++].name;

		if (!strncmp(name, text, strlen(text)))
			return strdup(name);
	}
	return NULL;
}

static char *ia_complete_room(const char *text, int state)
{
	static int i;

	if (state == 0)
		i = 0;
	while (i < ia.nrooms) {
		const char *room = ia.rooms[i++];

		if (!strncmp(room, text, strlen(text)))
			return strdup(room);
	}
	return NULL;
}

static char **ia_complete(const char *text, int start, int end)
{
	bool first_word = true;

	(void)end;
	for (int i = 0; i < start && rl_line_buffer; i++)
		if (rl_line_buffer[i] != ' ' && rl_line_buffer[i] != '\t')
			first_word = false;
	rl_attempted_completion_over = 1;
	return rl_completion_matches(text, first_word ? ia_complete_cmd : ia_complete_room);
}

/* ---- input ------------------------------------------------------------------ */

static void ia_on_line(char *line)
{
	ia.line = line;
	ia.have_line = true;
}

/* One keystroke's worth of terminal input; runs the line when it is done. */
static void ia_read_tty(void)
{
	rl_callback_read_char();
	if (!ia.have_line) {
		ia.fresh_prompt = false;
		return;
	}
	ia.have_line = false;
	ia.prompt_live = false;
	if (!ia.line) { /* Ctrl-D on an empty line */
		fputc('\n', stdout);
		ia.quit = true;
		return;
	}
	if (ia.line[0])
		add_history(ia.line);
	ia_run_line(ia.line);
	free(ia.line);
	ia.line = NULL;
	if (!ia.quit) {
		rl_callback_handler_install(IA_PROMPT, ia_on_line);
		ia.prompt_live = true;
		ia.fresh_prompt = true;
	}
}

static void ia_read_pipe(void)
{
	char *line;
	size_t n;
	int rc = rl_cli_input_fill(&ia.in);

	if (rc) {
		ia_fail(strerror(-rc));
		return;
	}
	while (!ia.quit && (line = rl_cli_input_line(&ia.in, &n)))
		ia_run_line(line);
	if (ia.in.eof)
		ia.quit = true;
}

static void ia_loop(void)
{
	struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
			      {.fd = ia.conn.fd, .events = POLLIN}};

	while (!ia.quit) {
		if (rl_cli_conn_pump(&ia.conn) < 0 || rl_cli_conn_keepalive(&ia.conn) < 0) {
			ia_fail(ia.conn.why);
			break;
		}
		if (rl_cli_poll(p, 2, rl_cli_conn_poll_ms(&ia.conn, -1)) == -1) {
			if (rl_cli_signalled)
				ia.quit = true;
			if (rl_cli_winch && ia.tty)
				rl_resize_terminal();
			rl_cli_winch = 0;
			continue;
		}
		/* A hung-up terminal polls ready for ever and libedit reports
		 * nothing: end the session. (A pipe's POLLHUP just means EOF
		 * after the data, which ia_read_pipe sees.) */
		if (ia.tty && (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)))
			ia.quit = true;
		else if (p[0].revents)
			ia.tty ? ia_read_tty() : ia_read_pipe();
	}
}

int rl_cli_interactive(const struct rl_cli_opts *o)
{
	ia.o = o;
	ia.current = -1;
	ia.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	if (rl_cli_conn_open(&ia.conn, o->host, o->port, &o->tls, RL_CLI_CONNECT_TIMEOUT_MS,
			     ia_on_event, NULL) ||
	    rl_cli_conn_hello(&ia.conn, o->user, o->token)) {
		rl_cli_warn("%s", ia.conn.why);
		rl_cli_conn_close(&ia.conn);
		return 1;
	}
	ia_printf(RL_CLI_ST_INFO, "connected to %s:%s as %s (server %s); type 'help'", o->host,
		  o->port, ia.conn.conn_id,
		  ia.conn.server_version[0] ? ia.conn.server_version : "?");
	if (ia.tty) {
		rl_readline_name = "relay-cli";
		rl_catch_signals = 0;
		rl_attempted_completion_function = ia_complete;
		using_history();
		rl_callback_handler_install(IA_PROMPT, ia_on_line);
		ia.prompt_live = true;
		ia.fresh_prompt = true;
	} else {
		rl_cli_input_init(&ia.in, STDIN_FILENO);
	}
	ia_loop();
	if (ia.tty && ia.prompt_live)
		fputc('\n', stdout); /* leave the half-typed line (Ctrl-C) behind */
	if (ia.tty)
		rl_callback_handler_remove();
	rl_cli_input_free(&ia.in);
	rl_cli_conn_close(&ia.conn);
	return ia.status;
}
