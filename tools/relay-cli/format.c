/* format.c -- how relay-cli prints what the server sends: chat lines for the
 * interactive mode, bare contents or JSON lines for `sub`, with optional
 * ANSI colour.
 *
 * Threading: pure functions writing to the FILE they are given.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *const fmt_styles[RL_CLI_NSTYLES] = {
    [RL_CLI_ST_ROOM] = "\033[36m",     /* cyan */
    [RL_CLI_ST_SENDER] = "\033[1;33m", /* bold yellow */
    [RL_CLI_ST_PRESENCE] = "\033[2m",  /* dim */
    [RL_CLI_ST_ERROR] = "\033[1;31m",  /* bold red */
    [RL_CLI_ST_INFO] = "\033[32m",     /* green */
};

void rl_cli_fmt_style(FILE *f, enum rl_cli_style st, bool color)
{
	if (color)
		fputs(fmt_styles[st], f);
}

void rl_cli_fmt_reset(FILE *f, bool color)
{
	if (color)
		fputs("\033[0m", f);
}

/* Remote text on a terminal: C0 controls (but \n and \t), DEL and the C1
 * controls U+0080-U+009F become '?', so a peer cannot drive the terminal. */
static void fmt_safe(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = p[i];

		if ((b < 0x20 && b != '\n' && b != '\t') || b == 0x7f) {
			fputc('?', f);
		} else if (b == 0xc2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
			fputc('?', f);
			i++;
		} else {
			fputc(b, f);
		}
	}
}

void rl_cli_fmt_compact(FILE *f, const uint8_t *p, size_t n)
{
	bool in_str = false, esc = false;

	for (size_t i = 0; i < n; i++) {
		uint8_t b = p[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (b == '\\')
				esc = true;
			else if (b == '"')
				in_str = false;
		} else if (b == ' ' || b == '\t' || b == '\n' || b == '\r') {
			continue;
		} else if (b == '"') {
			in_str = true;
		}
		fputc(b, f);
	}
}

/* A JSON string token decoded to a malloc'd buffer (decoding never makes it
 * longer); NULL if it holds a lone surrogate (then print it as JSON). */
static uint8_t *fmt_decode_string(struct relay_span raw, size_t *n)
{
	uint8_t *out = malloc(raw.n);
	long len;

	if (!out)
		return NULL;
	len = relay_json_string_decode(raw, out, raw.n);
	if (len < 0 || (size_t)len > raw.n) {
		free(out);
		return NULL;
	}
	*n = (size_t)len;
	return out;
}

/* The content: a JSON string as text, other values as compact JSON, binary
 * data as text when it is UTF-8. <safe>: neutralise control characters. */
static void fmt_content(FILE *f, const struct rl_cli_event *ev, bool safe)
{
	const struct relay_span c = ev->content;
	uint8_t *text;
	size_t n;

	if (ev->kind == RL_CLI_EV_BINARY) {
		if (!safe)
			fwrite(c.p, 1, c.n, f);
		else if (relay_utf8_valid(c.p, c.n))
			fmt_safe(f, c.p, c.n);
		else
			fprintf(f, "<%zu bytes of binary data>", c.n);
		return;
	}
	if (c.n >= 2 && c.p[0] == '"' && (text = fmt_decode_string(c, &n))) {
		if (safe)
			fmt_safe(f, text, n);
		else
			fwrite(text, 1, n, f);
		free(text);
		return;
	}
	rl_cli_fmt_compact(f, c.p, c.n);
}

void rl_cli_fmt_content(FILE *f, const struct rl_cli_event *ev)
{
	fmt_content(f, ev, false);
}

/* "[room] " in colour. */
static void fmt_room(FILE *f, const struct rl_cli_event *ev, bool color)
{
	rl_cli_fmt_style(f, RL_CLI_ST_ROOM, color);
	fputc('[', f);
	fmt_safe(f, (const uint8_t *)ev->room, strlen(ev->room));
	fputc(']', f);
	rl_cli_fmt_reset(f, color);
	fputc(' ', f);
}

static void fmt_sender(FILE *f, const struct rl_cli_event *ev, bool color)
{
	const char *who = ev->user[0] ? ev->user : ev->conn;

	rl_cli_fmt_style(f, RL_CLI_ST_SENDER, color);
	fmt_safe(f, (const uint8_t *)who, strlen(who));
	rl_cli_fmt_reset(f, color);
}

static void fmt_message(FILE *f, const struct rl_cli_event *ev, bool color)
{
	time_t t = ev->timestamp_ms ? (time_t)(ev->timestamp_ms / 1000) : time(NULL);
	struct tm tm;
	char hms[16];

	localtime_r(&t, &tm);
	strftime(hms, sizeof hms, "%H:%M:%S", &tm);
	fmt_room(f, ev, color);
	fmt_sender(f, ev, color);
	fprintf(f, " (%s): ", hms);
	fmt_content(f, ev, true);
	fputc('\n', f);
}

static void fmt_presence(FILE *f, const struct rl_cli_event *ev, bool color)
{
	fmt_room(f, ev, color);
	rl_cli_fmt_style(f, RL_CLI_ST_PRESENCE, color);
	fmt_safe(f, (const uint8_t *)(ev->user[0] ? ev->user : ev->conn),
		 strlen(ev->user[0] ? ev->user : ev->conn));
	fputs(ev->kind == RL_CLI_EV_USER_JOINED ? " joined" : " left", f);
	rl_cli_fmt_reset(f, color);
	fputc('\n', f);
}

static void fmt_error(FILE *f, const struct rl_cli_event *ev, bool color)
{
	rl_cli_fmt_style(f, RL_CLI_ST_ERROR, color);
	fputs("error ", f);
	fmt_safe(f, (const uint8_t *)ev->code, strlen(ev->code));
	rl_cli_fmt_reset(f, color);
	fputs(": ", f);
	fmt_safe(f, (const uint8_t *)ev->message, strlen(ev->message));
	fputc('\n', f);
}

/* protocol-v1-ext.md 5: the room's messages may have a hole here. */
static void fmt_gap(FILE *f, const struct rl_cli_event *ev, bool color)
{
	fmt_room(f, ev, color);
	rl_cli_fmt_style(f, RL_CLI_ST_ERROR, color);
	fputs("gap: messages may have been missed", f);
	rl_cli_fmt_reset(f, color);
	if (ev->message[0]) {
		fputs(" (", f);
		fmt_safe(f, (const uint8_t *)ev->message, strlen(ev->message));
		fputc(')', f);
	}
	fputc('\n', f);
}

typedef void fmt_fn(FILE *f, const struct rl_cli_event *ev, bool color);
static fmt_fn *const fmt_by_kind[RL_CLI_EV_NKINDS] = {
    [RL_CLI_EV_MESSAGE] = fmt_message,	    [RL_CLI_EV_BINARY] = fmt_message,
    [RL_CLI_EV_USER_JOINED] = fmt_presence, [RL_CLI_EV_USER_LEFT] = fmt_presence,
    [RL_CLI_EV_ERROR] = fmt_error,	    [RL_CLI_EV_GAP] = fmt_gap,
};

void rl_cli_fmt_event(FILE *f, const struct rl_cli_event *ev, bool color)
{
	if (fmt_by_kind[ev->kind])
		fmt_by_kind[ev->kind](f, ev, color);
}

/* ---- sub --json ------------------------------------------------------- */

static size_t fmt_base64(char *out, const uint8_t *p, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	return o;
}

/* {"room":..,"from":..,"binary":"<base64>"[,"seq":N]} for a binary delivery. */
static void fmt_binary_json(FILE *f, const struct rl_cli_event *ev)
{
	size_t b64 = 4 * ((ev->content.n + 2) / 3);
	size_t cap = 96 + relay_jw_str_len(ev->room, strlen(ev->room)) +
		     relay_jw_str_len(ev->conn, strlen(ev->conn)) + b64;
	char *tmp = malloc(b64 + 1);
	uint8_t *buf = malloc(cap);
	struct relay_jw w;

	if (!tmp || !buf)
		goto out;
	relay_jw_init(&w, buf, cap);
	relay_jw_obj_begin(&w);
	relay_jw_key(&w, "room");
	relay_jw_cstr(&w, ev->room);
	relay_jw_key(&w, "from");
	relay_jw_cstr(&w, ev->conn);
	relay_jw_key(&w, "binary");
	relay_jw_str(&w, tmp, fmt_base64(tmp, ev->content.p, ev->content.n));
	if (ev->has_seq) {
		relay_jw_key(&w, "seq");
		relay_jw_u64(&w, ev->seq);
	}
	relay_jw_obj_end(&w);
	if (!w.overflow)
		fwrite(buf, 1, w.len, f);
out:
	free(tmp);
	free(buf);
}

void rl_cli_fmt_json_line(FILE *f, const struct rl_cli_event *ev)
{
	if (ev->kind == RL_CLI_EV_BINARY)
		fmt_binary_json(f, ev);
	else
		rl_cli_fmt_compact(f, ev->payload.p, ev->payload.n);
}
