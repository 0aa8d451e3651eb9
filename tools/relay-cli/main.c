/* main.c -- relay-cli: options (one table drives getopt_long, the checks and
 * --help), signal plumbing, and dispatch to the interactive mode, `sub`,
 * `pub` or `token`.
 *
 * Threading: main thread only. Signals are blocked except inside rl_cli_poll,
 * so handlers only ever interrupt a ppoll and just set a flag.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

volatile sig_atomic_t rl_cli_signalled;
volatile sig_atomic_t rl_cli_winch;
static sigset_t main_unblocked; /* the mask ppoll sleeps with */
static sigset_t main_handled;	/* the signals we block and handle */

/* ---- small shared helpers ------------------------------------------------ */

void rl_cli_warn(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	fflush(stdout);
	fprintf(stderr, "relay-cli: %.*s", n, line);
	fflush(stderr);
}

int64_t rl_cli_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rl_cli_left_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - rl_cli_now_ms();
	return left <= 0 ? 0 : left > 1000000000 ? 1000000000 : (int)left;
}

static void main_on_signal(int sig)
{
	if (sig == SIGWINCH)
		rl_cli_winch = 1;
	else
		rl_cli_signalled = sig;
}

void rl_cli_signals_init(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
	struct sigaction sa = {.sa_handler = main_on_signal};
	sigset_t block;

	sigemptyset(&block);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		sigaction(sigs[i], &sa, NULL);
		sigaddset(&block, sigs[i]);
	}
	main_handled = block;
	sigprocmask(SIG_BLOCK, &block, &main_unblocked);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigdelset(&main_unblocked, sigs[i]);
}

/* Linux delivers a signal that ppoll's mask unblocks only when ppoll fails
 * with EINTR; when a descriptor is ready at once the signal stays pending.
 * A busy socket (or a hung-up terminal) would starve Ctrl-C, so pending
 * signals are also collected here after every ppoll. */
int rl_cli_poll(struct pollfd *fds, unsigned nfds, int timeout_ms)
{
	struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
	struct timespec zero = {0, 0};
	int n = ppoll(fds, nfds, timeout_ms < 0 ? NULL : &ts, &main_unblocked);
	int sig;

	if (n == -1)
		return n;
	sig = sigtimedwait(&main_handled, NULL, &zero);
	if (sig <= 0)
		return n;
	main_on_signal(sig);
	errno = EINTR;
	return -1;
}

/* ---- options ------------------------------------------------------------ */

enum main_opt {
	OPT_HOST = 'H',
	OPT_PORT = 'p',
	OPT_USER = 'u',
	OPT_JSON = 'j',
	OPT_COUNT = 'c',
	OPT_TIMEOUT = 't',
	OPT_HELP = 'h',
	OPT_VERSION = 'V',
	OPT_NO_COLOR = 256,
	OPT_TLS,
	OPT_TLS_CA,
	OPT_TLS_INSECURE,
	OPT_KEY,
	OPT_SUB,
	OPT_KID,
	OPT_AUD,
	OPT_ROOMS_JOIN,
	OPT_ROOMS_PUBLISH,
	OPT_TTL,
	OPT_NBF,
	OPT_TOKEN,
	OPT_TOKEN_FILE,
	OPT_RESUME_FILE,
	OPT_WS,
};

#define M_ALL ((1u << RL_CLI_INTERACTIVE) | (1u << RL_CLI_SUB) | (1u << RL_CLI_PUB))
#define M_TOKEN (1u << RL_CLI_TOKEN)
static const struct main_opt_def {
	const char *name;
	int id;
	const char *arg; /* NULL: a flag */
	unsigned modes;	 /* where it applies */
	const char *help;
} main_opts[] = {
    {"host", OPT_HOST, "HOST", M_ALL, "server host name or address (default 127.0.0.1)"},
    {"port", OPT_PORT, "PORT", M_ALL, "server TCP port (default 4000)"},
    {"user", OPT_USER, "NAME", M_ALL, "user name sent in HELLO (shown to other members)"},
    {"tls", OPT_TLS, NULL, M_ALL, "TLS (relayd --tls-port); the certificate is verified"},
    {"tls-ca", OPT_TLS_CA, "FILE", M_ALL,
     "trust the CA certificates in FILE (implies --tls; with --ws: a wss:// URL)"},
    {"tls-insecure", OPT_TLS_INSECURE, NULL, M_ALL,
     "TLS without verifying the certificate (tests; implies --tls; with --ws: wss://)"},
    {"ws", OPT_WS, "URL", M_ALL,
     "WebSocket (relayd --ws-port): ws://HOST:PORT[/PATH], path default /relay; "
     "wss://HOST:PORT[/PATH] over TLS (relayd --ws-tls), verified as --tls"},
    {"token", OPT_TOKEN, "TOKEN", M_ALL,
     "access token sent in HELLO (servers with --auth-key; its sub is the user name)"},
    {"token-file", OPT_TOKEN_FILE, "FILE", M_ALL,
     "read the access token from FILE (not visible in ps, unlike --token)"},
    {"no-color", OPT_NO_COLOR, NULL, M_ALL, "no colour (also: NO_COLOR set in the environment)"},
    {"json", OPT_JSON, NULL, (1u << RL_CLI_SUB) | (1u << RL_CLI_PUB),
     "sub: print whole payloads as JSON lines; pub: messages are raw JSON"},
    {"count", OPT_COUNT, "N", 1u << RL_CLI_SUB, "sub: exit after N messages"},
    {"timeout", OPT_TIMEOUT, "S", 1u << RL_CLI_SUB,
     "sub: give up after S seconds (status 2 if --count not reached)"},
    {"key", OPT_KEY, "FILE", M_TOKEN,
     "token: signing key (HS256 secret file, or Ed25519 private key PEM)"},
    {"sub", OPT_SUB, "NAME", M_TOKEN, "token: the userId (sub claim)"},
    {"kid", OPT_KID, "KID", M_TOKEN, "token: key id for the header (servers with several keys)"},
    {"aud", OPT_AUD, "AUD", M_TOKEN, "token: audience (aud claim)"},
    {"rooms-join", OPT_ROOMS_JOIN, "PATTERN", M_TOKEN,
     "token: rooms it may join (repeat; room, prefix*, or *)"},
    {"rooms-publish", OPT_ROOMS_PUBLISH, "PATTERN", M_TOKEN,
     "token: rooms it may publish to (repeat; a list not given allows nothing)"},
    {"ttl", OPT_TTL, "TIME", M_TOKEN, "token: valid for TIME from now (default 1h; 90s, 15m, 2d)"},
    {"nbf", OPT_NBF, "WHEN", M_TOKEN, "token: not valid before now + TIME, or @EPOCH-SECONDS"},
    {"resume-file", OPT_RESUME_FILE, "FILE", 1u << RL_CLI_SUB,
     "sub (one ROOM): keep the room's position in FILE and resume from it"},
    {"help", OPT_HELP, NULL, M_ALL | M_TOKEN, "show this help"},
    {"version", OPT_VERSION, NULL, M_ALL | M_TOKEN, "show the version"},
};
#define MAIN_NOPTS (sizeof main_opts / sizeof main_opts[0])

static const char *const main_mode_names[RL_CLI_NMODES] = {
    [RL_CLI_INTERACTIVE] = "the interactive mode",
    [RL_CLI_SUB] = "sub",
    [RL_CLI_PUB] = "pub",
    [RL_CLI_TOKEN] = "token",
};

static void main_usage(FILE *f)
{
	fputs("usage: relay-cli [options] [HOST [PORT]]        interactive client\n"
	      "       relay-cli [options] sub ROOM [ROOM...]   print the messages of rooms\n"
	      "       relay-cli [options] pub ROOM [MESSAGE...] send MESSAGE, or each stdin line\n"
	      "       relay-cli token --key FILE --sub NAME [...] print a new access token\n"
	      "options:\n",
	      f);
	for (size_t i = 0; i < MAIN_NOPTS; i++) {
		char left[40];

		snprintf(left, sizeof left, "--%s%s%s", main_opts[i].name,
			 main_opts[i].arg ? " " : "", main_opts[i].arg ? main_opts[i].arg : "");
		fprintf(f, "  %-23s %s\n", left, main_opts[i].help);
	}
	fputs("exit status: 0 ok, 1 error (connection, server, arguments), "
	      "2 sub --timeout before --count\n",
	      f);
}

static void main_build_getopt(struct option *lo, char *so)
{
	size_t k = 0;

	*so++ = ':'; /* report a missing value as ':' */
	for (size_t i = 0; i < MAIN_NOPTS; i++) {
		lo[i] = (struct option){main_opts[i].name,
					main_opts[i].arg ? required_argument : no_argument, NULL,
					main_opts[i].id};
		if (main_opts[i].id < 256) {
			so[k++] = (char)main_opts[i].id;
			if (main_opts[i].arg)
				so[k++] = ':';
		}
	}
	so[k] = '\0';
	lo[MAIN_NOPTS] = (struct option){0};
}

/* Values as given; checked once the mode is known. */
struct main_raw {
	const char *count, *timeout, *token_file;
	bool no_color, help, version;
	unsigned seen; /* bit i: main_opts[i] was given */
};

/* The token mode's options; repeated --rooms-* are collected (counted past
 * the array, so that token.c can refuse too many). */
static int main_store_token(struct rl_cli_token_opts *t, int id, const char *arg)
{
	switch (id) {
	case OPT_KEY:
		t->key = arg;
		break;
	case OPT_SUB:
		t->sub = arg;
		break;
	case OPT_KID:
		t->kid = arg;
		break;
	case OPT_AUD:
		t->aud = arg;
		break;
	case OPT_TTL:
		t->ttl = arg;
		break;
	case OPT_NBF:
		t->nbf = arg;
		break;
	case OPT_ROOMS_JOIN:
		if (t->njoin < RL_CLI_MAX_PATTERNS)
			t->join[t->njoin] = arg;
		t->njoin++;
		break;
	case OPT_ROOMS_PUBLISH:
		if (t->npublish < RL_CLI_MAX_PATTERNS)
			t->publish[t->npublish] = arg;
		t->npublish++;
		break;
	default:
		return -1;
	}
	return 0;
}

static int main_parse_ws(struct rl_cli_opts *o, const char *url);

static int main_store(struct rl_cli_opts *o, struct main_raw *r, int id, const char *arg)
{
	for (size_t i = 0; i < MAIN_NOPTS; i++)
		if (main_opts[i].id == id)
			r->seen |= 1u << i;
	switch (id) {
	case OPT_HOST:
		o->host = arg;
		break;
	case OPT_PORT:
		o->port = arg;
		break;
	case OPT_USER:
		o->user = arg;
		break;
	case OPT_TOKEN:
		o->token = arg;
		break;
	case OPT_TOKEN_FILE:
		r->token_file = arg;
		break;
	case OPT_JSON:
		o->json = true;
		break;
	case OPT_COUNT:
		r->count = arg;
		break;
	case OPT_TIMEOUT:
		r->timeout = arg;
		break;
	case OPT_NO_COLOR:
		r->no_color = true;
		break;
	case OPT_TLS:
		o->tls.on = true;
		break;
	case OPT_TLS_CA:
		o->tls.on = true;
		o->tls.ca = arg;
		break;
	case OPT_TLS_INSECURE:
		o->tls.on = o->tls.insecure = true;
		break;
	case OPT_RESUME_FILE:
		o->resume_file = arg;
		break;
	case OPT_WS:
		return main_parse_ws(o, arg);
	case OPT_HELP:
		r->help = true;
		break;
	case OPT_VERSION:
		r->version = true;
		break;
	default:
		return main_store_token(&o->tok, id, arg);
	}
	return 0;
}

/* --ws ws://HOST:PORT[/PATH] or wss://...: sets host, port, tls.ws_path
 * and tls.ws_tls (strings kept in static storage). 0, or -1 after printing
 * the error. */
static int main_parse_ws(struct rl_cli_opts *o, const char *url)
{
	static char host[256], port[8], path[256];
	bool wss = strncmp(url, "wss://", 6) == 0;
	const char *h = url + (wss ? 6 : 5), *colon, *slash;

	if (!wss && strncmp(url, "ws://", 5) != 0) {
		rl_cli_warn("--ws %s: not a ws:// or wss:// URL", url);
		return -1;
	}
	slash = strchr(h, '/');
	if (!slash)
		slash = h + strlen(h);
	colon = memchr(h, ':', (size_t)(slash - h));
	if (!colon || colon == h || (size_t)(colon - h) >= sizeof host ||
	    (size_t)(slash - colon - 1) >= sizeof port || slash == colon + 1 ||
	    strlen(slash) >= sizeof path) {
		rl_cli_warn("--ws %s: expected %s://HOST:PORT[/PATH]", url, wss ? "wss" : "ws");
		return -1;
	}
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	memcpy(port, colon + 1, (size_t)(slash - colon - 1));
	port[slash - colon - 1] = '\0';
	snprintf(path, sizeof path, "%s", *slash ? slash : "/relay");
	o->host = host;
	o->port = port;
	o->tls.ws_path = path;
	o->tls.ws_tls = wss;
	return 0;
}

/* Runs getopt_long over argv; 0, or -1 after printing the error. */
static int main_getopt(int argc, char **argv, struct rl_cli_opts *o, struct main_raw *r)
{
	struct option lo[MAIN_NOPTS + 1];
	char so[2 * MAIN_NOPTS + 2];
	int id;

	main_build_getopt(lo, so);
	opterr = 0;
	while ((id = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		if (id == '?' || id == ':') {
			const char *bad = argv[optind - 1];

			if (id == ':')
				rl_cli_warn("option '%s' needs a value (see --help)", bad);
			else
				rl_cli_warn("unknown option '%s' (see --help)", bad);
			return -1;
		}
		if (main_store(o, r, id, optarg))
			return -1;
	}
	return 0;
}

static int main_check_port(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || v < 1 || v > 65535) {
		rl_cli_warn("bad port '%s' (expected a number from 1 to 65535)", s);
		return -1;
	}
	return 0;
}

static int main_check_numbers(struct rl_cli_opts *o, const struct main_raw *r)
{
	char *end;

	if (r->count) {
		errno = 0;
		o->count = strtol(r->count, &end, 10);
		if (*end || errno || o->count < 1 || r->count[0] < '0' || r->count[0] > '9') {
			rl_cli_warn("bad --count '%s' (expected a whole number >= 1)", r->count);
			return -1;
		}
	}
	if (r->timeout) {
		errno = 0;
		o->timeout_s = strtod(r->timeout, &end);
		if (*end || errno || !(o->timeout_s >= 0 && o->timeout_s < 1e9) ||
		    r->timeout[0] == '\0') {
			rl_cli_warn("bad --timeout '%s' (expected seconds >= 0)", r->timeout);
			return -1;
		}
	}
	return 0;
}

/* --token-file: the token is the file's first line (a final newline and
 * surrounding blanks dropped), at most 4096 bytes. 0, or -1 after saying why. */
static int main_token_file(struct rl_cli_opts *o, const char *path)
{
	static char tok[4096 + 2];
	FILE *f;
	size_t n;

	if (o->token) {
		rl_cli_warn("--token and --token-file: give one of them");
		return -1;
	}
	if (!(f = fopen(path, "re"))) {
		rl_cli_warn("--token-file %s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(tok, 1, sizeof tok - 1, f);
	fclose(f);
	tok[n] = '\0';
	tok[strcspn(tok, "\r\n")] = '\0';
	n = strlen(tok);
	while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
		tok[--n] = '\0';
	o->token = tok + strspn(tok, " \t");
	if (*o->token == '\0' || n > 4096) {
		rl_cli_warn("--token-file %s: %s", path,
			    n > 4096 ? "the token is longer than 4096 bytes" : "no token in it");
		return -1;
	}
	return 0;
}

/* The mode from the first operand, and what the mode needs. */
static int main_mode(struct rl_cli_opts *o, int argc, char **argv)
{
	char **ops = argv + optind;
	int nops = argc - optind;

	if (nops > 0 && !strcmp(ops[0], "token")) {
		o->mode = RL_CLI_TOKEN;
		if (nops > 1) {
			rl_cli_warn("unexpected argument '%s' (see --help)", ops[1]);
			return -1;
		}
		return 0;
	}
	if (nops > 0 && (!strcmp(ops[0], "sub") || !strcmp(ops[0], "pub"))) {
		o->mode = ops[0][0] == 's' ? RL_CLI_SUB : RL_CLI_PUB;
		o->args = ops + 1;
		o->nargs = nops - 1;
		if (o->nargs == 0) {
			rl_cli_warn("%s needs a ROOM (see --help)", ops[0]);
			return -1;
		}
		return 0;
	}
	o->mode = RL_CLI_INTERACTIVE;
	if (nops > 2) {
		rl_cli_warn("unexpected argument '%s' (see --help)", ops[2]);
		return -1;
	}
	if (nops > 0)
		o->host = ops[0];
	if (nops > 1)
		o->port = ops[1];
	return 0;
}

static int main_check_modes(const struct rl_cli_opts *o, const struct main_raw *r)
{
	for (size_t i = 0; i < MAIN_NOPTS; i++) {
		const struct main_opt_def *d = &main_opts[i];

		if ((r->seen & (1u << i)) && !(d->modes & (1u << o->mode))) {
			rl_cli_warn("--%s does not apply to %s (see --help)", d->name,
				    main_mode_names[o->mode]);
			return -1;
		}
	}
	return 0;
}

static bool main_color(bool no_color_flag)
{
	const char *nc = getenv("NO_COLOR");

	return !no_color_flag && !(nc && nc[0]) && isatty(STDOUT_FILENO);
}

/* Parses argv into <o>. Returns -1 to exit 0 (help/version shown), -2 on a
 * usage error (already reported), 0 to run. */
static int main_parse(int argc, char **argv, struct rl_cli_opts *o)
{
	struct main_raw r = {0};

	*o = (struct rl_cli_opts){.host = "127.0.0.1", .port = "4000", .timeout_s = -1};
	/* GNU getopt permutes: options may come anywhere, operands stay in
	 * order at argv[optind..] ("--" ends the options, for words like "-1"). */
	if (main_getopt(argc, argv, o, &r))
		return -2;
	if (r.help || r.version) {
		if (r.help)
			main_usage(stdout);
		else
			printf("relay-cli %s\n", RL_CLI_VERSION);
		return -1;
	}
	if (main_mode(o, argc, argv) || main_check_modes(o, &r) || main_check_port(o->port) ||
	    main_check_numbers(o, &r) || (r.token_file && main_token_file(o, r.token_file)))
		return -2;
	if (o->tls.ws_path && o->tls.on && !o->tls.ws_tls) {
		rl_cli_warn("--ws ws:// is plain: for TLS give a wss:// URL (see --help)");
		return -2;
	}
	if (o->tls.ws_tls)
		o->tls.on = true; /* wss://: TLS, then the upgrade inside it */
	if (o->tls.ca && o->tls.insecure) {
		rl_cli_warn("--tls-ca and --tls-insecure exclude each other (see --help)");
		return -2;
	}
	if (o->resume_file && o->nargs != 1) {
		rl_cli_warn("--resume-file keeps the position of one ROOM (see --help)");
		return -2;
	}
	o->color = main_color(r.no_color);
	return 0;
}

int main(int argc, char **argv)
{
	static int (*const run[RL_CLI_NMODES])(const struct rl_cli_opts *) = {
	    [RL_CLI_INTERACTIVE] = rl_cli_interactive,
	    [RL_CLI_SUB] = rl_cli_sub,
	    [RL_CLI_PUB] = rl_cli_pub,
	    [RL_CLI_TOKEN] = rl_cli_token,
	};
	struct rl_cli_opts o;
	int rc = main_parse(argc, argv, &o);

	if (rc == -1)
		return 0;
	if (rc == -2)
		return 1;
	rl_cli_signals_init();
	return run[o.mode](&o);
}
