/* cluster_lib.c -- redis-server and relayd nodes for the cluster tests.
 * Threading: see cluster_lib.h. */
#include "cluster_lib.h"

#include "cluster/resp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define REDIS_START_MS 10000
#define REDIS_IO_MS 5000

/* ---- a synchronous RESP client (one command per connection) -------------- */

static int redis_connect(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void redis_render(const struct rl_resp_val *v, char *out, size_t cap, size_t *off)
{
	int n;
	if (v->type == RL_RESP_INT)
		n = snprintf(out + *off, cap - *off, "%lld", v->i);
	else if (v->nil)
		n = snprintf(out + *off, cap - *off, "(nil)");
	else
		n = snprintf(out + *off, cap - *off, "%s%.*s", v->type == RL_RESP_ERROR ? "-" : "",
			     (int)v->n, (const char *)v->p);
	if (n > 0)
		*off += (size_t)n < cap - *off ? (size_t)n : cap - *off - 1;
}

static int redis_cmdv(uint16_t port, char *out, size_t cap, size_t argc, const char *const *argv)
{
	struct rl_buf b = {0};
	struct rl_resp_reply r = {0};
	int fd = redis_connect(port), rc = -1;
	if (fd < 0)
		return rl_test_set_err("redis :%u: connect: %s", (unsigned)port, strerror(errno));
	if (rl_resp_cmdv(&b, argc, argv) || write(fd, b.p, b.len) != (ssize_t)b.len) {
		rl_test_set_err("redis: write: %s", strerror(errno));
		goto out;
	}
	b.len = b.off = 0;
	for (;;) {
		long used = rl_resp_parse(b.p, b.len, 1u << 30, &r);
		if (used > 0)
			break;
		if (used < 0) {
			rl_test_set_err("redis: malformed reply");
			goto out;
		}
		struct pollfd p = {fd, POLLIN, 0};
		uint8_t *w = rl_buf_reserve(&b, 65536);
		ssize_t n = poll(&p, 1, REDIS_IO_MS) == 1 ? read(fd, w, 65536) : -1;
		if (n <= 0) {
			rl_test_set_err("redis: no reply to %s", argv[0]);
			goto out;
		}
		b.len += (size_t)n;
	}
	size_t off = 0;
	out[0] = 0;
	if (r.top.type != RL_RESP_ARRAY)
		redis_render(&r.top, out, cap, &off);
	for (size_t i = 0; r.top.type == RL_RESP_ARRAY && i < r.top.n; i++) {
		if (i)
			redis_render(&(struct rl_resp_val){.type = RL_RESP_SIMPLE,
							   .p = (const uint8_t *)"\n",
							   .n = 1},
				     out, cap, &off);
		redis_render(&r.el[i], out, cap, &off);
	}
	rc = r.top.type == RL_RESP_ERROR ? rl_test_set_err("redis %s: %s", argv[0], out) : 0;
out:
	close(fd);
	rl_buf_free(&b);
	rl_resp_reply_free(&r);
	return rc;
}

static size_t redis_args(va_list ap, const char **argv, size_t max)
{
	size_t n = 0;
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && n < max)
		argv[n++] = a;
	return n;
}

int rl_redis_cmd(const struct rl_redis *r, char *out, size_t cap, ...)
{
	const char *argv[32];
	va_list ap;
	va_start(ap, cap);
	size_t n = redis_args(ap, argv, 32);
	va_end(ap);
	return redis_cmdv(r->port, out, cap, n, argv);
}

long long rl_redis_int(const struct rl_redis *r, ...)
{
	const char *argv[32];
	char out[64];
	va_list ap;
	va_start(ap, r);
	size_t n = redis_args(ap, argv, 32);
	va_end(ap);
	if (redis_cmdv(r->port, out, sizeof(out), n, argv))
		return LLONG_MIN;
	return strtoll(out, NULL, 10);
}

int rl_redis_wait_numsub(const struct rl_redis *r, const char *channel, long long n, int timeout_ms)
{
	int64_t end = rl_test_now_ms() + timeout_ms;
	char out[256];
	for (;;) {
		if (rl_redis_cmd(r, out, sizeof(out), "PUBSUB", "NUMSUB", channel, NULL) == 0) {
			const char *nl = strchr(out, '\n');
			if (nl && strtoll(nl + 1, NULL, 10) == n)
				return 0;
		}
		if (rl_test_now_ms() > end)
			return rl_test_set_err("PUBSUB NUMSUB %s: %s, wanted %lld", channel, out,
					       n);
		usleep(20000);
	}
}

/* ---- the redis-server process ------------------------------------------------------ */

static int redis_spawn(struct rl_redis *r)
{
	char port[8], ppid[16];
	snprintf(port, sizeof(port), "%u", (unsigned)r->port);
	snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
	const char *guard = getenv("RELAY_TEST_GUARD");
	const char *argv[24];
	size_t n = 0;
	if (guard && guard[0]) {
		argv[n++] = guard;
		argv[n++] = ppid;
	}
	const char *cmd[] = {"redis-server", "--port",	   port,	   "--bind", "127.0.0.1",
			     "--save",	     "",	   "--appendonly", "no",     "--daemonize",
			     "no",	     "--loglevel", "warning",	   NULL};
	for (size_t i = 0; cmd[i]; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	int fd = open(r->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd == -1)
		return rl_test_set_err("%s: %s", r->log_path, strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	int rc = posix_spawnp(&r->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fd);
	if (rc) {
		r->pid = 0;
		return rl_test_set_err("posix_spawn redis-server: %s (is it installed? "
				       "scripts/install-deps)",
				       strerror(rc));
	}
	return 0;
}

/* Waits until redis answers PING; fails early when the process exited. */
static int redis_wait_ready(struct rl_redis *r)
{
	int64_t end = rl_test_now_ms() + REDIS_START_MS;
	char out[64];
	while (rl_test_now_ms() < end) {
		int st;
		if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
			r->pid = 0;
			return rl_test_set_err("redis-server exited at start (port %u taken?)",
					       (unsigned)r->port);
		}
		if (rl_redis_cmd(r, out, sizeof(out), "PING", NULL) == 0)
			return 0;
		usleep(20000);
	}
	return rl_test_set_err("redis-server on port %u did not answer", (unsigned)r->port);
}

int rl_redis_start(struct rl_redis *r)
{
	const char *dir = getenv("TMPDIR");
	memset(r, 0, sizeof(*r));
	snprintf(r->log_path, sizeof(r->log_path), "%s/relayd-test-redis-%ld-%d.log",
		 dir && dir[0] ? dir : "/tmp", (long)getpid(), rand());
	for (int attempt = 0; attempt < 5; attempt++) {
		int fd = rl_test_loopback_listener(&r->port);
		if (fd < 0)
			return -1;
		close(fd); /* free again: redis binds it (a collision is retried) */
		snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%u", (unsigned)r->port);
		if (redis_spawn(r))
			return -1;
		if (redis_wait_ready(r) == 0)
			return 0;
		rl_redis_free(r);
	}
	return -1;
}

int rl_redis_restart(struct rl_redis *r)
{
	if (redis_spawn(r))
		return -1;
	return redis_wait_ready(r);
}

int rl_redis_shutdown(struct rl_redis *r)
{
	char out[64];
	rl_redis_cmd(r, out, sizeof(out), "SHUTDOWN", "NOSAVE", NULL); /* no reply: it exits */
	int st;
	for (int i = 0; i < 500; i++) {
		if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
			r->pid = 0;
			return 0;
		}
		usleep(10000);
	}
	return rl_test_set_err("redis-server did not exit after SHUTDOWN NOSAVE");
}

int rl_redis_signal(const struct rl_redis *r, int sig)
{
	return r->pid && kill(r->pid, sig) == 0
		   ? 0
		   : rl_test_set_err("kill redis: %s", strerror(errno));
}

void rl_redis_free(struct rl_redis *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGCONT);
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
	}
	r->pid = 0;
	if (r->log_path[0])
		unlink(r->log_path);
}

/* ---- nodes ----------------------------------------------------------------------------- */

int rl_node_start(struct rl_node *n, const struct rl_redis *r, const char *id,
		  const char *const *extra)
{
	const char *args[64];
	size_t k = 0;
	const char *base[] = {"--workers",
			      "2",
			      "--cluster",
			      r->url,
			      "--node-id",
			      id,
			      "--cluster-node-ttl",
			      "2",
			      "--cluster-linger",
			      "0.2",
			      "--admin",
			      "127.0.0.1:0",
			      NULL};
	memset(n, 0, sizeof(*n));
	snprintf(n->id, sizeof(n->id), "%s", id);
	for (size_t i = 0; base[i]; i++)
		args[k++] = base[i];
	for (size_t i = 0; extra && extra[i] && k < 63; i++)
		args[k++] = extra[i];
	args[k] = NULL;
	if (rl_test_server_start(&n->s, args, NULL, 0))
		return -1;
	char line[160];
	if (rl_test_server_stdout_line(&n->s, "relayd admin on ", line, sizeof(line), 0))
		return -1;
	snprintf(n->admin, sizeof(n->admin), "%.79s", line + strlen("relayd admin on "));
	return 0;
}

int rl_node_http(const struct rl_node *n, const char *path, char *body, size_t cap)
{
	char host[64];
	const char *colon = strrchr(n->admin, ':');
	if (!colon)
		return rl_test_set_err("no admin address");
	snprintf(host, sizeof(host), "%.*s", (int)(colon - n->admin), n->admin);
	struct rl_test_client *c = rl_test_connect_addr(host, (uint16_t)atoi(colon + 1), 0);
	if (!c)
		return -1;
	char req[256];
	int len = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, n->admin);
	int fd = rl_test_fd(c), status = -1;
	size_t got = 0;
	char *buf = malloc(1 << 20);
	if (!buf || rl_test_send_raw(c, req, (size_t)len, 0))
		goto out;
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, REDIS_IO_MS) != 1)
			goto out;
		ssize_t k = read(fd, buf + got, (1 << 20) - 1 - got);
		if (k < 0 && errno == EAGAIN)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	buf[got] = 0;
	const char *sp = strchr(buf, ' '), *hdr_end = strstr(buf, "\r\n\r\n");
	if (!sp || !hdr_end)
		goto out;
	status = atoi(sp + 1);
	snprintf(body, cap, "%s", hdr_end + 4);
out:
	free(buf);
	rl_test_close(c);
	return status;
}

double rl_node_metric(const struct rl_node *n, const char *name)
{
	static char body[1 << 20];
	if (rl_node_http(n, "/metrics", body, sizeof(body)) != 200)
		return -1;
	size_t nl = strlen(name);
	for (const char *p = body; (p = strstr(p, name)) != NULL; p += nl)
		if ((p == body || p[-1] == '\n') && p[nl] == ' ')
			return strtod(p + nl + 1, NULL);
	rl_test_set_err("no sample %s in /metrics", name);
	return -1;
}

int rl_node_wait_up(struct rl_node *n, int timeout_ms)
{
	int64_t end = rl_test_now_ms() + timeout_ms;
	char body[512] = "";
	while (rl_test_now_ms() < end) {
		if (rl_node_http(n, "/health", body, sizeof(body)) >= 0 &&
		    strstr(body, "\"cluster\":\"up\""))
			return 0;
		usleep(20000);
	}
	return rl_test_set_err("node %s: bus link not up within %d ms: %s", n->id, timeout_ms,
			       body);
}

struct rl_test_client *rl_node_client(const struct rl_node *n, const char *user, const char *room)
{
	char hello[160];
	struct rl_test_client *c = rl_test_connect(&n->s, 0);
	if (!c)
		return NULL;
	if (user)
		snprintf(hello, sizeof(hello), "{\"userId\":\"%s\"}", user);
	if (!rl_test_hello(c, user ? hello : NULL, 5000) ||
	    (room && rl_test_join(c, room, NULL, 5000))) {
		rl_test_close(c);
		return NULL;
	}
	return c;
}

const struct rl_test_frame *rl_expect_event(struct rl_test_client *c, const char *type,
					    const char *room, int timeout_ms, size_t *skipped)
{
	int64_t end = rl_test_now_ms() + timeout_ms;
	char t[32], rm[80];
	for (;;) {
		int left = (int)(end - rl_test_now_ms());
		const struct rl_test_frame *f = rl_test_recv(c, left > 0 ? left : 0);
		if (!f)
			return NULL;
		if (f->type == RELAY_MSG_MESSAGE &&
		    rl_test_json_str(f, "type", t, sizeof(t)) >= 0 && strcmp(t, type) == 0 &&
		    rl_test_json_str(f, "room", rm, sizeof(rm)) >= 0 && strcmp(rm, room) == 0)
			return f;
		if (skipped)
			(*skipped)++;
	}
}
