/* test_tls.c -- the TLS listener (protocol-v1-ext.md §1 and §7, "Transports"):
 * other TLS stacks (Python's ssl, openssl s_client) speak the same frames;
 * TLS 1.0/1.1 are refused; clients that misbehave during the handshake are
 * closed (garbage at once, a stall at the frame timeout) and nobody else
 * notices; the certificate is reloaded on SIGHUP while connections stay; a
 * slow consumer over TLS is evicted with SLOW_CONSUMER like one over TCP;
 * /metrics counts TLS connections by write path. And wss:// (--ws-tls, the
 * WebSocket listener with TLS on): Python's websockets and a TCP client
 * chat, s_client's upgrade gets 101, plain HTTP on the port is closed, the
 * handshake and the upgrade share one deadline from accept, SIGHUP reloads
 * its certificate too (the WebSocket rules themselves: the wss-ws test).
 * The certificates are made at test time with the openssl command
 * (test/lib/tls_client.c). The rest of the integration suites also run over
 * TLS (the tls-* tests: RELAY_TEST_TRANSPORT=tls).
 * Threading: Criterion test bodies, one thread each. */
#include "itest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define TLS_ROOM "tls-room"

/* ---- helpers ------------------------------------------------------------- */

/* relayd with <head> (the listener's options, NULL-terminated), then
 * --tls-cert <cert> --tls-key <key>, then <extra> (NULL-terminated, or NULL). */
static void cert_start(struct rl_test_server *s, const char *const *head, const char *cert,
		       const char *key, const char *const *extra)
{
	const char *args[32];
	int n = 0;

	for (int i = 0; head[i]; i++)
		args[n++] = head[i];
	args[n++] = "--tls-cert";
	args[n++] = cert;
	args[n++] = "--tls-key";
	args[n++] = key;
	for (int i = 0; extra && extra[i]; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	it_start(s, args);
}

/* relayd with --tls-port 0 --workers 1 and the test certificate (plus <extra>). */
static void tls_start(struct rl_test_server *s, const char *const *extra)
{
	static const char *const head[] = {"--tls-port", "0", "--workers", "1", NULL};
	const char *cert, *key;

	cr_assert_eq(rl_test_tls_files(&cert, &key), 0, "%s", rl_test_err());
	cert_start(s, head, cert, key, extra);
	cr_assert_gt(s->tls_port, 0, "no \"relayd tls listening on\" line before: %s", s->line);
}

#define TLS_START(s, ...)                                                                          \
	do {                                                                                       \
		const char *tls_extra_[] = {__VA_ARGS__, NULL};                                    \
		tls_start((s), tls_extra_);                                                        \
	} while (0)

static struct rl_test_client *tls_client(const struct rl_test_server *s)
{
	struct rl_test_client *c = rl_test_connect_tls(s->host, s->tls_port, RL_TEST_REPLY_MS);
	cr_assert_not_null(c, "TLS connect: %s", rl_test_err());
	cr_assert_not_null(rl_test_hello(c, NULL, RL_TEST_REPLY_MS), "HELLO over TLS: %s", rl_test_err());
	return c;
}

static struct rl_test_client *tcp_client(const struct rl_test_server *s)
{
	struct rl_test_client *c = rl_test_connect_addr(s->host, s->port, RL_TEST_REPLY_MS);
	cr_assert_not_null(c, "TCP connect: %s", rl_test_err());
	cr_assert_not_null(rl_test_hello(c, NULL, RL_TEST_REPLY_MS), "HELLO: %s", rl_test_err());
	return c;
}

/* A plain TCP connection to the TLS port: the bytes go in unencrypted. */
static struct rl_test_client *raw_to_tls_port(const struct rl_test_server *s)
{
	struct rl_test_client *c = rl_test_connect_addr(s->host, s->tls_port, RL_TEST_REPLY_MS);
	cr_assert_not_null(c, "connect to the TLS port: %s", rl_test_err());
	return c;
}

/* Reads raw bytes from <c> until EOF or reset; milliseconds it took, or -1
 * if the connection was still open after <ms>. */
static int64_t raw_wait_closed(struct rl_test_client *c, int ms)
{
	int64_t start = rl_test_now_ms(), end = start + ms;
	char buf[4096];
	for (;;) {
		int64_t left = end - rl_test_now_ms();
		struct pollfd p = {.fd = rl_test_fd(c), .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) == 0)
			return -1;
		ssize_t n = read(rl_test_fd(c), buf, sizeof(buf));
		if (n == 0 || (n == -1 && (errno == ECONNRESET || errno == EPIPE)))
			return rl_test_now_ms() - start;
	}
}

/* Publishes "m<i>" from <from> and expects it, in order, at <to>. */
static void chat(struct rl_test_client *from, struct rl_test_client *to, int i)
{
	char want[128];
	cr_assert_eq(rl_test_send_json(from, RELAY_MSG_MESSAGE,
				       "{\"room\":\"" TLS_ROOM "\",\"content\":\"m%d\"}", i),
		     0, "%s", rl_test_err());
	snprintf(want, sizeof(want),
		 "{\"room\":\"" TLS_ROOM "\",\"from\":*,\"content\":\"m%d\",\"timestamp\":*}", i);
	it_expect_json(to, RELAY_MSG_MESSAGE, want);
}

/* Two TCP members of TLS_ROOM on the (only) worker: a and b. */
static void tcp_pair(const struct rl_test_server *s, struct rl_test_client **a,
		     struct rl_test_client **b)
{
	*a = tcp_client(s);
	*b = tcp_client(s);
	it_join(*a, TLS_ROOM, 1);
	it_join(*b, TLS_ROOM, 2);
	it_presence(*a, 1);
}

/* Waits up to <ms> for relayd's log to contain <needle>. */
static bool log_wait(const struct rl_test_server *s, const char *needle, int ms)
{
	for (int64_t end = rl_test_now_ms() + ms;;) {
		if (rl_test_server_log_has(s, needle))
			return true;
		if (rl_test_now_ms() > end)
			return false;
		poll(NULL, 0, 10);
	}
}

/* Spawns <argv> with pipes for stdin (*<in>) and stdout (*<out>); stderr to
 * /dev/null. Returns the pid. */
static pid_t spawn_piped(const char *const *argv, int *in, int *out)
{
	int pi[2], po[2];
	pid_t pid;
	posix_spawn_file_actions_t fa;

	cr_assert_eq(pipe2(pi, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pi[0], 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pi[0]);
	close(po[1]);
	cr_assert_eq(rc, 0, "spawn %s: %s", argv[0], strerror(rc));
	*in = pi[1];
	*out = po[0];
	return pid;
}

/* Reads <fd> until EOF, <cap>-1 bytes or <ms>; returns the bytes read. */
static size_t read_some(int fd, char *buf, size_t cap, size_t want, int ms)
{
	size_t n = 0;
	for (int64_t end = rl_test_now_ms() + ms; n < cap - 1 && n < want;) {
		int64_t left = end - rl_test_now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

static int wait_status(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* `openssl s_client -quiet <version>` to the TLS port, stdin fed with a
 * HELLO frame. Fills <out> with what came back (the HELLO ack) and returns
 * s_client's exit status (it is killed once the ack is in). */
static int s_client_hello_suites(const struct rl_test_server *s, const char *version,
				 const char *suites, char *out, size_t cap, size_t *got)
{
	const char *cert, *key;
	char addr[96];
	cr_assert_eq(rl_test_tls_files(&cert, &key), 0, "%s", rl_test_err());
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)s->tls_port);
	const char *argv[] = {"openssl",
			      "s_client",
			      "-quiet",
			      version,
			      "-cipher",
			      "DEFAULT:@SECLEVEL=0",
			      "-connect",
			      addr,
			      "-CAfile",
			      cert,
			      "-verify_return_error",
			      suites ? "-ciphersuites" : NULL, /* TLS 1.3's list, in the client's order */
			      suites,
			      NULL};
	int in, fd;
	pid_t pid = spawn_piped(argv, &in, &fd);
	static const uint8_t hello[] = {0, 0, 0, 3, 1, RELAY_MSG_HELLO, 0};
	ssize_t w = write(in, hello, sizeof(hello));
	cr_assert_eq(w, (ssize_t)sizeof(hello));
	/* The ack: 4 length bytes, then that many. */
	*got = read_some(fd, out, cap, 4, RL_TEST_REPLY_MS);
	if (*got >= 4) {
		size_t len = 4 + ((size_t)(uint8_t)out[0] << 24 | (size_t)(uint8_t)out[1] << 16 |
				  (size_t)(uint8_t)out[2] << 8 | (uint8_t)out[3]);
		if (*got < len)
			*got += read_some(fd, out + *got, cap - *got, len - *got, RL_TEST_REPLY_MS);
		kill(pid, SIGTERM); /* -quiet ignores EOF on stdin: it would wait for us */
	}
	close(in);
	close(fd);
	return wait_status(pid);
}

static int s_client_hello(const struct rl_test_server *s, const char *version, char *out,
			  size_t cap, size_t *got)
{
	return s_client_hello_suites(s, version, NULL, out, cap, got);
}

/* Runs `python3 <script> <port> <s's TCP port> <test certificate>`: it
 * must exit 0; <out> gets what it printed. */
static void run_chat_py(const struct rl_test_server *s, const char *script, uint16_t port,
			char *out, size_t cap)
{
	const char *cert, *key, *name = strrchr(script, '/') ? strrchr(script, '/') + 1 : script;
	char port_s[8], tcp_port[8];

	cr_assert_eq(rl_test_tls_files(&cert, &key), 0);
	snprintf(port_s, sizeof(port_s), "%u", (unsigned)port);
	snprintf(tcp_port, sizeof(tcp_port), "%u", (unsigned)s->port);
	const char *argv[] = {"/usr/bin/python3", script, port_s, tcp_port, cert, NULL};
	int in, fd;
	pid_t pid = spawn_piped(argv, &in, &fd);
	close(in);
	read_some(fd, out, cap, cap, 20000);
	close(fd);
	int st = wait_status(pid);
	cr_assert_eq(st, 0, "%s exit status %d: %s", name, st, out);
}

/* <bad> sent <what>, not a ClientHello: it is closed, while <a> and <b>
 * chat on, in turns (messages 2 to 9); then closes all three and stops <s>. */
static void bad_closed_and_pair_chats_on(struct rl_test_server *s, struct rl_test_client *bad,
					 const char *what, struct rl_test_client *a,
					 struct rl_test_client *b)
{
	cr_assert_geq(raw_wait_closed(bad, RL_TEST_REPLY_MS), 0, "%s: still open", what);
	rl_test_close(bad);
	for (int i = 2; i < 10; i++)
		chat(i % 2 ? b : a, i % 2 ? a : b, i);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(s);
}

/* GET <path> from the admin endpoint into <body>; asserts 200. */
static void admin_get(const char *admin, const char *path, char *body, size_t cap)
{
	char host[64];
	const char *colon = strrchr(admin, ':');
	cr_assert_not_null(colon, "admin address %s", admin);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - admin), admin);
	struct rl_test_client *c = rl_test_connect_addr(host, (uint16_t)atoi(colon + 1), RL_TEST_REPLY_MS);
	cr_assert_not_null(c, "%s", rl_test_err());
	char req[256];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
	cr_assert_eq(rl_test_send_raw(c, req, (size_t)n, RL_TEST_REPLY_MS), 0);
	size_t len = read_some(rl_test_fd(c), body, cap, cap, RL_TEST_REPLY_MS);
	rl_test_close(c);
	cr_assert(len > 12 && strncmp(body, "HTTP/1.", 7) == 0 && strncmp(body + 9, "200", 3) == 0,
		  "GET %s: %.80s", path, body);
}

/* The value of the sample line starting with <sample> (name and labels). */
static long metric(const char *text, const char *sample)
{
	char key[160];
	snprintf(key, sizeof(key), "\n%s ", sample);
	const char *p = strstr(text, key);
	cr_assert_not_null(p, "no sample %s in /metrics", sample);
	return strtol(p + strlen(key), NULL, 10);
}

/* ---- other TLS stacks ------------------------------------------------------- */

/* Python's ssl: TLS 1.3 and TLS 1.2 clients (verifying the certificate)
 * and a plain TCP client chat in one room; acks are v1's exactly. */
IT_TEST(tls, python_ssl_clients_chat_with_a_tcp_client)
{
	struct rl_test_server s;
	char out[512];

	IT_NEED_PROCESS();
	TLS_START(&s, "--workers", "2");
	run_chat_py(&s, RELAY_TLS_CHAT_PY, s.tls_port, out, sizeof(out));
	cr_assert(strstr(out, "ok TLSv1.3 TLSv1.2") != NULL, "tls_chat.py: %s", out);
	it_stop(&s);
}

/* openssl s_client, TLS 1.3 and 1.2 (verifying the certificate): a HELLO
 * frame on stdin brings the v1 HELLO ack back on stdout. */
IT_TEST(tls, s_client_gets_the_hello_ack_over_tls12_and_tls13)
{
	static const char *const versions[] = {"-tls1_3", "-tls1_2"};
	struct rl_test_server s;
	char out[1024];
	size_t got;

	IT_NEED_PROCESS();
	tls_start(&s, NULL);
	for (size_t v = 0; v < 2; v++) {
		s_client_hello(&s, versions[v], out, sizeof(out), &got);
		cr_assert_gt(got, 7u, "%s: no HELLO ack", versions[v]);
		cr_assert_eq(out[5], RELAY_MSG_HELLO, "%s: frame type %d", versions[v], out[5]);
		out[got] = '\0';
		cr_assert(strstr(out + 7, "{\"status\":\"connected\",\"connectionId\":\"conn-") ==
				  out + 7 &&
			      strstr(out + 7, "\"heartbeatMs\":30000}") != NULL &&
			      strstr(out + 7, "features") == NULL,
			  "%s: ack %s", versions[v], out + 7);
	}
	it_stop(&s);
}

/* TLS 1.3 uses AES-128-GCM, the server's choice, though OpenSSL's client
 * (like most) lists AES-256-GCM first; a client that puts ChaCha20 first
 * (no AES instructions) gets ChaCha20. */
IT_TEST(tls, tls13_prefers_aes128_gcm_unless_the_client_prefers_chacha20)
{
	static const struct {
		const char *suites, *want;
	} cases[] = {
	    {NULL, "tls: TLSv1.3 TLS_AES_128_GCM_SHA256,"},
	    {"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
	     "tls: TLSv1.3 TLS_CHACHA20_POLY1305_SHA256,"},
	};
	struct rl_test_server s;
	char out[1024];
	size_t got;

	IT_NEED_PROCESS();
	TLS_START(&s, "--log-level", "debug");
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		s_client_hello_suites(&s, "-tls1_3", cases[k].suites, out, sizeof(out), &got);
		cr_assert_gt(got, 7u, "%s: no HELLO ack", cases[k].want);
		cr_assert(log_wait(&s, cases[k].want, RL_TEST_REPLY_MS), "no \"%s\" in the log",
			  cases[k].want);
	}
	it_stop(&s);
}

/* TLS 1.0 and 1.1 are refused in the handshake (a protocol_version alert):
 * not one byte of Relay comes back; TLS 1.2 still works after them. */
IT_TEST(tls, tls10_and_tls11_are_refused)
{
	static const char *const old[] = {"-tls1", "-tls1_1"};
	struct rl_test_server s;
	char out[1024];
	size_t got;

	IT_NEED_PROCESS();
	TLS_START(&s, "--log-level", "debug");
	for (size_t v = 0; v < 2; v++) {
		int st = s_client_hello(&s, old[v], out, sizeof(out), &got);
		cr_assert_eq(got, 0u, "%s: %zu bytes came back", old[v], got);
		cr_assert_neq(st, 0, "%s: s_client succeeded", old[v]);
	}
	cr_assert(log_wait(&s, "tls: handshake failed: unsupported protocol", RL_TEST_REPLY_MS),
		  "no refused handshake in the log");
	s_client_hello(&s, "-tls1_2", out, sizeof(out), &got);
	cr_assert_gt(got, 7u, "TLS 1.2 after the refusals: no HELLO ack");
	it_stop(&s);
}

/* ---- misbehaving clients --------------------------------------------------------- */

/* A Relay HELLO frame sent in clear to the TLS port is not a ClientHello:
 * closed at once, while two TCP members on the same worker chat on. */
IT_TEST(tls, garbage_instead_of_a_client_hello_is_closed_and_no_one_else_notices)
{
	struct rl_test_server s;
	struct rl_test_client *a, *b;

	tls_start(&s, NULL);
	tcp_pair(&s, &a, &b);
	chat(a, b, 0);
	struct rl_test_client *bad = raw_to_tls_port(&s);
	static const uint8_t hello[] = {0, 0, 0, 5, 1, RELAY_MSG_HELLO, RELAY_FLAG_JSON, '{', '}'};
	it_raw(bad, hello, sizeof(hello));
	chat(a, b, 1);
	bad_closed_and_pair_chats_on(&s, bad, "garbage on the TLS port", a, b);
}

/* The handshake deadline is --frame-timeout from accept: a client that
 * sends nothing, and one that stops inside its ClientHello, are closed
 * then -- not before, not much later -- while a TLS client that finished
 * its handshake may stay quiet for longer than that. */
IT_TEST(tls, stalled_handshakes_are_closed_at_the_frame_timeout)
{
	struct rl_test_server s;
	struct rl_test_client *a, *b;

	TLS_START(&s, "--frame-timeout", "0.4");
	tcp_pair(&s, &a, &b);
	/* Handshake done, then not a byte. */
	struct rl_test_client *quiet = rl_test_connect_tls(s.host, s.tls_port, RL_TEST_REPLY_MS);
	cr_assert_not_null(quiet, "%s", rl_test_err());
	struct rl_test_client *silent = raw_to_tls_port(&s);
	struct rl_test_client *partial = raw_to_tls_port(&s);
	/* A ClientHello record header and the start of its body, then nothing. */
	static const uint8_t start[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
					0x00, 0x01, 0xfc, 0x03, 0x03};
	it_raw(partial, start, sizeof(start));
	int64_t t_silent = raw_wait_closed(silent, 3000);
	int64_t t_partial = raw_wait_closed(partial, 3000);
	cr_assert(t_silent >= 300 && t_silent < 1500, "silent handshake closed after %lld ms",
		  (long long)t_silent);
	cr_assert(t_partial >= 0 && t_partial < 1500, "partial ClientHello closed after %lld ms",
		  (long long)t_partial);
	chat(a, b, 0);
	/* Past twice the frame timeout since its handshake: still served. */
	cr_assert_eq(rl_test_expect_silence(quiet, 500), 0, "%s", rl_test_err());
	cr_assert_not_null(rl_test_hello(quiet, NULL, RL_TEST_REPLY_MS), "%s", rl_test_err());
	rl_test_close(silent);
	rl_test_close(partial);
	rl_test_close(quiet);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

/* A client that disappears inside its handshake (FIN, and RST) is closed;
 * the TCP members keep chatting, in order. */
IT_TEST(tls, clients_vanishing_mid_handshake_affect_no_one)
{
	struct rl_test_server s;
	struct rl_test_client *a, *b;
	static const uint8_t start[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
					0x00, 0x01, 0xfc, 0x03, 0x03};

	TLS_START(&s, "--log-level", "debug");
	tcp_pair(&s, &a, &b);
	for (int i = 0; i < 6; i++) {
		struct rl_test_client *v = raw_to_tls_port(&s);
		it_raw(v, start, sizeof(start));
		if (i % 2) { /* reset instead of FIN */
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(rl_test_fd(v), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		rl_test_close(v);
		chat(i % 2 ? b : a, i % 2 ? a : b, i);
	}
	cr_assert(log_wait(&s, "tls: peer closed during the handshake", RL_TEST_REPLY_MS),
		  "no handshake ended by the peer in the log");
	cr_assert(log_wait(&s, "tls: handshake failed: Connection reset by peer", RL_TEST_REPLY_MS),
		  "no handshake reset by the peer in the log");
	for (int i = 6; i < 12; i++)
		chat(i % 2 ? b : a, i % 2 ? a : b, i);
	rl_test_close(a);
	rl_test_close(b);
	it_stop(&s);
}

/* ---- certificate reload ------------------------------------------------------------ */

static void make_cert(const char *dir, const char *cn, const char *serial, char *cert, char *key)
{
	char tmpc[300], tmpk[300];
	snprintf(cert, 300, "%s/cert.pem", dir);
	snprintf(key, 300, "%s/key.pem", dir);
	snprintf(tmpc, sizeof(tmpc), "%s/new-cert.pem", dir);
	snprintf(tmpk, sizeof(tmpk), "%s/new-key.pem", dir);
	cr_assert_eq(rl_test_tls_make_cert(tmpc, tmpk, cn, serial), 0, "%s", rl_test_err());
	cr_assert_eq(rename(tmpk, key), 0);
	cr_assert_eq(rename(tmpc, cert), 0);
}

static void expect_serial(struct rl_test_client *c, const char *serial, const char *subject)
{
	char ser[80], sub[256];
	cr_assert_eq(rl_test_tls_peer_cert(c, ser, sizeof(ser), sub, sizeof(sub)), 0, "%s",
		     rl_test_err());
	cr_assert_str_eq(ser, serial, "serial %s, want %s", ser, serial);
	cr_assert_str_eq(sub, subject);
}

typedef struct rl_test_client *client_connect_fn(const struct rl_test_server *s);

/* Starts <s> with <head> (the listener's options) and a certificate made in
 * <dir> (CN relay-one, serial A1), which a member *<old> made by <connect>
 * sees; then a new certificate (relay-two, B2) and SIGHUP: a new member
 * *<fresh> sees it, and the two chat both ways in TLS_ROOM. <cert> and
 * <key> (300 bytes each) get the files' paths. */
static void reload_with_two_members(struct rl_test_server *s, const char *const *head,
				    const char *dir, char *cert, char *key,
				    client_connect_fn *connect, struct rl_test_client **old,
				    struct rl_test_client **fresh)
{
	make_cert(dir, "relay-one", "A1", cert, key);
	cert_start(s, head, cert, key, NULL);
	*old = connect(s);
	expect_serial(*old, "A1", "/CN=relay-one");
	it_join(*old, TLS_ROOM, 1);

	make_cert(dir, "relay-two", "B2", cert, key);
	cr_assert_eq(rl_test_server_signal(s, SIGHUP), 0);
	cr_assert(log_wait(s, "tls: reloaded", RL_TEST_REPLY_MS), "no reload line in the log");
	*fresh = connect(s);
	expect_serial(*fresh, "B2", "/CN=relay-two");
	it_join(*fresh, TLS_ROOM, 2);
	it_presence(*old, 1);
	chat(*old, *fresh, 0);
	chat(*fresh, *old, 1);
}

/* SIGHUP re-reads the certificate files: new handshakes see the new
 * certificate, connections made before keep theirs and keep working; a
 * reload that fails (a broken file) is logged and changes nothing. */
IT_TEST(tls, certificate_reload_on_sighup_keeps_connections)
{
	static const char *const head[] = {"--tls-port", "0", NULL};
	struct rl_test_server s;
	struct rl_test_client *old, *fresh;
	char dir[] = "/tmp/relay-test-reload-XXXXXX", cert[300], key[300];

	IT_NEED_PROCESS();
	cr_assert_not_null(mkdtemp(dir));
	reload_with_two_members(&s, head, dir, cert, key, tls_client, &old, &fresh);

	/* A broken certificate: logged, the second one stays in use. */
	FILE *f = fopen(cert, "w");
	cr_assert_not_null(f);
	fputs("not a certificate\n", f);
	fclose(f);
	cr_assert_eq(rl_test_server_signal(&s, SIGHUP), 0);
	cr_assert(log_wait(&s, "tls: reload failed, keeping the old certificate", RL_TEST_REPLY_MS),
		  "no failed reload in the log");
	struct rl_test_client *third = tls_client(&s);
	expect_serial(third, "B2", "/CN=relay-two");
	chat(old, fresh, 2);
	it_ping(third);
	rl_test_close(old);
	rl_test_close(fresh);
	rl_test_close(third);
	it_stop(&s);
	unlink(cert);
	unlink(key);
	rmdir(dir);
}

/* ---- slow consumer ---------------------------------------------------------------- */

/* A TLS member that stops reading is evicted like a TCP one: once its queue
 * passes --outbound-hard-limit it gets SLOW_CONSUMER (after the frames
 * already on their way, every one of them whole) and is closed. What
 * OpenSSL holds of an interrupted write reaches the wire before the ERROR. */
IT_TEST(tls, slow_consumer_over_tls_gets_SLOW_CONSUMER)
{
	struct rl_test_server s;
	static char content[1000];

	IT_NEED_PROCESS();
	TLS_START(&s, "--outbound-hard-limit", "64K");
	struct rl_test_client *slow = tls_client(&s);
	cr_assert_eq(rl_test_set_rcvbuf(slow, 64 * 1024), 0, "%s", rl_test_err());
	struct rl_test_client *pub = tcp_client(&s);
	it_join(slow, TLS_ROOM, 1);
	it_join(pub, TLS_ROOM, 2);
	memset(content, 'x', sizeof(content) - 1);
	int sent = 0;
	while (!rl_test_server_log_has(&s, "slow consumer") && sent < 60000) {
		for (int i = 0; i < 500; i++, sent++)
			cr_assert_eq(rl_test_send_json(
					 pub, RELAY_MSG_MESSAGE,
					 "{\"room\":\"" TLS_ROOM "\",\"content\":\"%s\"}", content),
				     0, "%s", rl_test_err());
		/* The server has fanned out everything sent so far (skips the
		 * userLeft that follows an eviction). */
		cr_assert_eq(rl_test_sync_skip(pub, RL_TEST_REPLY_MS, NULL), 0, "%s", rl_test_err());
	}
	cr_assert(rl_test_server_log_has(&s, "slow consumer"), "not evicted after %d messages",
		  sent);
	/* The slow member now reads everything: whole MESSAGE frames, then the
	 * ERROR, then the close. */
	int messages = 0;
	for (;;) {
		const struct rl_test_frame *f = rl_test_recv(slow, RL_TEST_REPLY_MS);
		cr_assert_not_null(f, "after %d messages: %s", messages, rl_test_err());
		if (f->type != RELAY_MSG_MESSAGE) {
			cr_assert_eq(f->type, RELAY_MSG_ERROR, "got %s", rl_test_frame_str(f));
			char code[64];
			cr_assert(rl_test_json_str(f, "code", code, sizeof(code)) > 0 &&
				      strcmp(code, "SLOW_CONSUMER") == 0,
				  "%s", rl_test_frame_str(f));
			break;
		}
		if (messages == 0 && strstr((const char *)f->payload, "\"userJoined\"")) {
			messages = -1; /* pub's presence event came first */
		} else {
			cr_assert(f->len > sizeof(content) &&
				      strstr((const char *)f->payload, content) != NULL,
				  "message %d damaged: %s", messages, rl_test_frame_str(f));
		}
		messages++;
	}
	cr_assert_eq(rl_test_expect_closed(slow, false, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
	cr_assert_lt(messages, sent, "all %d messages arrived: not evicted", sent);
	cr_log_info("slow TLS consumer: %d of %d messages, then SLOW_CONSUMER", messages, sent);
	rl_test_close(slow);
	rl_test_close(pub);
	it_stop(&s);
}

/* A TLS member that stops reading while messages come one at a time: the
 * records of the message the socket did not take are held by the transport
 * (already encrypted, counted as sent, nothing left in the queue) and still
 * go out once the member reads again -- the last message is not stuck
 * until another one. */
IT_TEST(tls, a_write_interrupted_by_a_full_socket_goes_out_once_the_reader_is_back)
{
	struct rl_test_server s;
	static char content[15000];

	IT_NEED_PROCESS();
	TLS_START(&s, "--log-level", "debug");
	struct rl_test_client *reader = tls_client(&s);
	cr_assert_eq(rl_test_set_rcvbuf(reader, 64 * 1024), 0, "%s", rl_test_err());
	struct rl_test_client *pub = tcp_client(&s);
	it_join(reader, TLS_ROOM, 1);
	it_join(pub, TLS_ROOM, 2);
	memset(content, 'y', sizeof(content) - 1);
	int sent = 0;
	/* One message per loop turn (the ping waits for it), until one stops
	 * at a full socket; it is then all the reader's queue held. */
	while (!rl_test_server_log_has(&s, "bytes of records held") && sent < 2000) {
		cr_assert_eq(rl_test_send_json(pub, RELAY_MSG_MESSAGE,
					       "{\"room\":\"" TLS_ROOM "\",\"content\":\"%d %s\"}",
					       sent, content),
			     0, "%s", rl_test_err());
		sent++;
		it_ping(pub);
	}
	cr_assert(rl_test_server_log_has(&s, "bytes of records held"),
		  "no write blocked after %d messages", sent);
	it_presence(reader, 1);
	for (int i = 0; i < sent; i++) {
		const struct rl_test_frame *f =
		    it_expect(reader, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON);
		char head[16];
		int n = snprintf(head, sizeof(head), "\"%d ", i);
		cr_assert(memmem(f->payload, f->len, head, (size_t)n) != NULL,
			  "message %d of %d: %.60s", i, sent, (const char *)f->payload);
	}
	it_ping(reader);
	rl_test_close(reader);
	rl_test_close(pub);
	it_stop(&s);
}

/* ---- metrics --------------------------------------------------------------------- */

/* relay_tls_connections counts TLS connections past their handshake by
 * write path (here: userspace, unless the kernel has kTLS, which the log's
 * path line says), and relay_tls_handshake_failures_total the others. */
IT_TEST(tls, metrics_count_tls_connections_by_write_path)
{
	struct rl_test_server s;
	char admin[128], body[65536];

	IT_NEED_PROCESS();
	TLS_START(&s, "--admin", "127.0.0.1:0");
	cr_assert_eq(rl_test_server_stdout_line(&s, "relayd admin on ", admin, sizeof(admin), 0),
		     0);
	const char *addr = admin + strlen("relayd admin on ");
	struct rl_test_client *t1 = tls_client(&s), *t2 = tls_client(&s), *plain = tcp_client(&s);
	struct rl_test_client *bad = raw_to_tls_port(&s);
	it_raw(bad, "GET / HTTP/1.0\r\n\r\n", 18);
	cr_assert_geq(raw_wait_closed(bad, RL_TEST_REPLY_MS), 0);
	rl_test_close(bad);
	bool ktls = rl_test_server_log_has(&s, "tls: kTLS in use");
	cr_assert(ktls ||
		      rl_test_server_log_has(&s, "tls: kTLS unavailable, using userspace records"),
		  "no line saying which write path is used");
	admin_get(addr, "/metrics", body, sizeof(body));
	cr_assert_eq(metric(body, ktls ? "relay_tls_connections{path=\"ktls\"}"
				       : "relay_tls_connections{path=\"userspace\"}"),
		     2, "%s", strstr(body, "relay_tls_connections"));
	cr_assert_eq(metric(body, ktls ? "relay_tls_connections{path=\"userspace\"}"
				       : "relay_tls_connections{path=\"ktls\"}"),
		     0);
	cr_assert_eq(metric(body, "relay_tls_handshake_failures_total"), 1);
	cr_assert_eq(metric(body, "relay_connections"), 3);
	rl_test_close(t1);
	bool dropped = false;
	for (int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS; !dropped && rl_test_now_ms() < end;) {
		admin_get(addr, "/metrics", body, sizeof(body));
		dropped = metric(body, ktls ? "relay_tls_connections{path=\"ktls\"}"
					    : "relay_tls_connections{path=\"userspace\"}") == 1;
	}
	cr_assert(dropped, "the gauge did not follow a closed TLS connection");
	rl_test_close(t2);
	rl_test_close(plain);
	it_stop(&s);
}

/* ---- wss:// (--ws-tls: the WebSocket listener with TLS on) ----------------------- */

/* relayd with --ws-port 0 --ws-tls and the test certificate (plus <extra>). */
static void wss_start(struct rl_test_server *s, const char *const *extra)
{
	static const char *const head[] = {"--ws-port", "0", "--ws-tls", "--workers", "1", NULL};
	const char *cert, *key;

	cr_assert_eq(rl_test_tls_files(&cert, &key), 0, "%s", rl_test_err());
	cert_start(s, head, cert, key, extra);
	cr_assert_gt(s->ws_port, 0, "no \"relayd wss listening on\" line");
	cr_assert_eq(s->tls_port, 0, "--ws-tls opened a TLS listener of its own");
}

static struct rl_test_client *wss_client(const struct rl_test_server *s)
{
	struct rl_test_client *c =
	    rl_test_connect_wss(s->host, s->ws_port, NULL, NULL, RL_TEST_REPLY_MS);
	cr_assert_not_null(c, "wss connect: %s", rl_test_err());
	cr_assert_not_null(rl_test_hello(c, NULL, RL_TEST_REPLY_MS), "HELLO over wss: %s",
			   rl_test_err());
	return c;
}

/* A wss member and a TCP member of TLS_ROOM on the (only) worker. */
static void wss_pair(const struct rl_test_server *s, struct rl_test_client **w,
		     struct rl_test_client **t)
{
	*w = wss_client(s);
	*t = tcp_client(s);
	it_join(*w, TLS_ROOM, 1);
	it_join(*t, TLS_ROOM, 2);
	it_presence(*w, 1);
}

/* Python's websockets on its ssl module (verifying the certificate) and a
 * plain TCP client: one room, a message each way (wss_chat.py). */
IT_TEST(wss, python_websockets_and_a_tcp_client_chat_both_ways)
{
	struct rl_test_server s;
	char out[512];

	IT_NEED_PROCESS();
	wss_start(&s, NULL);
	run_chat_py(&s, RELAY_WSS_CHAT_PY, s.ws_port, out, sizeof(out));
	cr_assert(strncmp(out, "ok TLSv1.3", 10) == 0, "wss_chat.py: %s", out);
	it_stop(&s);
}

/* openssl s_client (verifying the certificate), then an upgrade request
 * typed into it: 101 with the RFC 6455 sample's accept key. */
IT_TEST(wss, s_client_then_a_raw_upgrade_request_gets_101)
{
	struct rl_test_server s;
	const char *cert, *key;
	char addr[96], out[2048];

	IT_NEED_PROCESS();
	wss_start(&s, NULL);
	cr_assert_eq(rl_test_tls_files(&cert, &key), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)s.ws_port);
	const char *argv[] = {"openssl", "s_client", "-quiet", "-connect",
			      addr,	 "-CAfile",  cert,     "-verify_return_error",
			      NULL};
	int in, fd;
	pid_t pid = spawn_piped(argv, &in, &fd);
	static const char req[] =
	    "GET /relay HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n";
	cr_assert_eq(write(in, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	size_t n = 0;
	for (int64_t end = rl_test_now_ms() + RL_TEST_REPLY_MS;
	     strstr(out, "\r\n\r\n") == NULL && rl_test_now_ms() < end;)
		n += read_some(fd, out + n, sizeof(out) - n, sizeof(out), 200);
	kill(pid, SIGTERM); /* -quiet ignores EOF on stdin */
	close(in);
	close(fd);
	wait_status(pid);
	cr_assert(strncmp(out, "HTTP/1.1 101 ", 13) == 0 &&
		      strstr(out, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
		  "answer: %s", out);
	it_stop(&s);
}

/* An HTTP request in clear to the wss port is not a ClientHello: closed at
 * once, while a wss member and a TCP member on the same worker chat on. */
IT_TEST(wss, plain_http_to_the_wss_port_is_closed_and_no_one_else_notices)
{
	struct rl_test_server s;
	struct rl_test_client *w, *t;

	wss_start(&s, NULL);
	wss_pair(&s, &w, &t);
	chat(w, t, 0);
	struct rl_test_client *bad = rl_test_connect_addr(s.host, s.ws_port, RL_TEST_REPLY_MS);
	cr_assert_not_null(bad, "%s", rl_test_err());
	static const char req[] =
	    "GET /relay HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n";
	it_raw(bad, req, sizeof(req) - 1);
	chat(t, w, 1);
	bad_closed_and_pair_chats_on(&s, bad, "plain HTTP on wss", w, t);
}

/* The handshake deadline of wss:// is one: --frame-timeout from accept
 * covers the TLS handshake and the upgrade request together. A client that
 * waits before its handshake, then sends half a request, is closed at the
 * frame timeout from its connect -- not a frame timeout after its
 * handshake. */
IT_TEST(wss, the_tls_handshake_and_the_upgrade_share_one_deadline_from_accept)
{
	struct rl_test_server s;
	static const char part[] = "GET /relay HTTP/1.1\r\nHost: 127.0.0.1\r\n";

	const char *extra[] = {"--frame-timeout", "1", NULL};
	wss_start(&s, extra);
	int64_t t0 = rl_test_now_ms();
	struct rl_test_client *c = rl_test_connect_addr(s.host, s.ws_port, RL_TEST_REPLY_MS);
	cr_assert_not_null(c, "%s", rl_test_err());
	poll(NULL, 0, 700); /* the stimulus: most of the deadline spent before the handshake */
	cr_assert_eq(rl_test_start_tls(c, RL_TEST_REPLY_MS), 0, "%s", rl_test_err());
	cr_assert_eq(rl_test_send_raw(c, part, sizeof(part) - 1, RL_TEST_REPLY_MS), 0, "%s",
		     rl_test_err());
	char buf[256];
	ssize_t n = rl_test_recv_raw(c, buf, sizeof(buf), 3000);
	int64_t took = rl_test_now_ms() - t0;
	cr_assert(n == 0 || (n < 0 && errno != ETIMEDOUT), "%s after %lld ms",
		  n > 0 ? "an answer" : "still open", (long long)took);
	cr_assert(took >= 900 && took < 1500,
		  "closed %lld ms after connect (frame timeout 1 s from accept)", (long long)took);
	rl_test_close(c);
	it_stop(&s);
}

/* SIGHUP re-reads the certificate for wss:// as for the TLS port: a new
 * wss connection sees the new one, a wss member connected before keeps its
 * connection and chats with the new one both ways. */
IT_TEST(wss, certificate_reload_on_sighup_keeps_wss_clients)
{
	static const char *const head[] = {"--ws-port", "0", "--ws-tls", NULL};
	struct rl_test_server s;
	struct rl_test_client *old, *fresh;
	char dir[] = "/tmp/relay-test-wss-reload-XXXXXX", cert[300], key[300];

	IT_NEED_PROCESS();
	cr_assert_not_null(mkdtemp(dir));
	reload_with_two_members(&s, head, dir, cert, key, wss_client, &old, &fresh);
	rl_test_close(old);
	rl_test_close(fresh);
	it_stop(&s);
	unlink(cert);
	unlink(key);
	rmdir(dir);
}
