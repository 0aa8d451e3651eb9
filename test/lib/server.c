/* server.c -- the harness's relayd process: spawn, readiness, stop, logs.
 * Threading: a struct rl_test_server belongs to one thread at a time; the
 * registry of running pids (for rl_test_cleanup_all) is mutex-protected. */
#include "harness.h"
#include "tls_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SRV_MAX_ARGS 128
#define SRV_MAX_ENV 1024
#define SRV_REGISTRY 64

static _Thread_local char srv_errbuf[1024];

const char *rl_test_err(void)
{
	return srv_errbuf;
}

int rl_test_set_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(srv_errbuf, sizeof(srv_errbuf), fmt, ap);
	va_end(ap);
	return -1;
}

int64_t rl_test_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rl_test_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies <src> into <dst>, truncating to <cap>-1 bytes. */
static void srv_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- registry of servers not yet freed ------------------------------------ */

/* Servers started and not yet passed to rl_test_server_free: a test that
 * fails an assertion never gets there, so rl_test_cleanup_all kills what is
 * still running, prints the tail of each log (the failure's evidence) and
 * removes the log files. */
struct srv_reg_entry {
	pid_t pid;          /* >0 while running */
	char log_path[128]; /* "" when the slot is free */
};

static pthread_mutex_t srv_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct srv_reg_entry srv_reg[SRV_REGISTRY];
static pthread_once_t srv_atexit_once = PTHREAD_ONCE_INIT;

static void srv_register_atexit(void)
{
	atexit(rl_test_cleanup_all);
}

static void srv_reg_add(pid_t pid, const char *log_path)
{
	pthread_once(&srv_atexit_once, srv_register_atexit);
	pthread_mutex_lock(&srv_reg_lock);
	for (int i = 0; i < SRV_REGISTRY; i++) {
		if (srv_reg[i].pid == 0 && srv_reg[i].log_path[0] == '\0') {
			srv_reg[i].pid = pid;
			srv_copy(srv_reg[i].log_path, sizeof(srv_reg[i].log_path),
				 log_path != NULL && log_path[0] != '\0' ? log_path : "-");
			break;
		}
	}
	pthread_mutex_unlock(&srv_reg_lock);
}

/* <pid> exited (the log stays registered until freed). */
static void srv_reg_exited(pid_t pid)
{
	pthread_mutex_lock(&srv_reg_lock);
	for (int i = 0; i < SRV_REGISTRY; i++)
		if (srv_reg[i].pid == pid)
			srv_reg[i].pid = 0;
	pthread_mutex_unlock(&srv_reg_lock);
}

/* Frees the slot of <pid> (0: of <log_path>). */
static void srv_reg_del(pid_t pid, const char *log_path)
{
	pthread_mutex_lock(&srv_reg_lock);
	for (int i = 0; i < SRV_REGISTRY; i++)
		if ((pid > 0 && srv_reg[i].pid == pid) ||
		    (log_path != NULL && log_path[0] != '\0' &&
		     strcmp(srv_reg[i].log_path, log_path) == 0))
			memset(&srv_reg[i], 0, sizeof(srv_reg[i]));
	pthread_mutex_unlock(&srv_reg_lock);
}

static void srv_log_release(const char *path, bool dump)
{
	if (path[0] == '\0' || strcmp(path, "-") == 0)
		return;
	if (dump) {
		struct rl_test_server tmp;
		memset(&tmp, 0, sizeof(tmp));
		srv_copy(tmp.log_path, sizeof(tmp.log_path), path);
		char tail[2048];
		size_t n = rl_test_server_log_tail(&tmp, tail, sizeof(tail));
		fprintf(stderr, "--- relayd stderr tail (%s, test ended without freeing it):\n%.*s%s---\n",
			path, (int)n, tail, n > 0 && tail[n - 1] != '\n' ? "\n" : "");
	}
	const char *keep = getenv("RELAY_TEST_KEEP_LOGS");
	if (keep != NULL && keep[0] == '1')
		fprintf(stderr, "relayd log kept: %s\n", path);
	else
		unlink(path);
}

void rl_test_cleanup_all(void)
{
	pthread_mutex_lock(&srv_reg_lock);
	for (int i = 0; i < SRV_REGISTRY; i++) {
		if (srv_reg[i].pid > 0) {
			kill(srv_reg[i].pid, SIGKILL);
			waitpid(srv_reg[i].pid, NULL, 0);
		}
		srv_log_release(srv_reg[i].log_path, true);
		memset(&srv_reg[i], 0, sizeof(srv_reg[i]));
	}
	pthread_mutex_unlock(&srv_reg_lock);
}

/* ---- argv / envp construction ------------------------------------------- */

struct srv_argv {
	char *v[SRV_MAX_ARGS];
	int n;
	char *wrapper; /* strdup'd wrapper text, split in place */
	char ppid[24];
};

static int srv_argv_push(struct srv_argv *a, const char *s)
{
	if (a->n >= SRV_MAX_ARGS - 1)
		return rl_test_set_err("too many relayd arguments");
	a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
	return 0;
}

/* RELAY_TEST_TRANSPORT=wss: --ws-tls, and the test certificate unless
 * <has_tls> (the test gave --tls-* options of its own). */
static int srv_wss_args(struct srv_argv *a, bool has_tls)
{
	const char *cert, *key;
	if (srv_argv_push(a, "--ws-tls"))
		return -1;
	if (has_tls)
		return 0;
	if (rl_test_tls_files(&cert, &key))
		return -1;
	return srv_argv_push(a, "--tls-cert") || srv_argv_push(a, cert) ||
	       srv_argv_push(a, "--tls-key") || srv_argv_push(a, key);
}

static bool srv_has_wrapper(void)
{
	const char *w = getenv("RELAY_TEST_WRAPPER");
	return w != NULL && w[strspn(w, " \t")] != '\0';
}

static int srv_argv_build(struct srv_argv *a, const char *bin, const char *const *args,
			  bool add_port)
{
	memset(a, 0, sizeof(*a));
	const char *guard = getenv("RELAY_TEST_GUARD");
	if (guard != NULL && guard[0] != '\0') {
		snprintf(a->ppid, sizeof(a->ppid), "%ld", (long)getpid());
		srv_argv_push(a, guard);
		srv_argv_push(a, a->ppid);
	}
	if (srv_has_wrapper()) {
		a->wrapper = strdup(getenv("RELAY_TEST_WRAPPER"));
		if (a->wrapper == NULL)
			return rl_test_set_err("out of memory");
		for (char *save = NULL, *t = strtok_r(a->wrapper, " \t", &save); t != NULL;
		     t = strtok_r(NULL, " \t", &save))
			if (srv_argv_push(a, t) != 0)
				return -1;
	}
	if (srv_argv_push(a, bin) != 0)
		return -1;
	bool has_port = false, has_tls = false, has_ws = false, has_ws_tls = false;
	for (int i = 0; args != NULL && args[i] != NULL; i++) {
		if (strcmp(args[i], "--port") == 0 || strncmp(args[i], "--port=", 7) == 0)
			has_port = true;
		if (strncmp(args[i], "--tls-", 6) == 0)
			has_tls = true;
		if (strncmp(args[i], "--ws-port", 9) == 0)
			has_ws = true;
		if (strcmp(args[i], "--ws-tls") == 0)
			has_ws_tls = true;
	}
	if (add_port && !has_port && (srv_argv_push(a, "--port") || srv_argv_push(a, "0")))
		return -1;
	if (add_port && !has_tls && rl_test_tls()) { /* RELAY_TEST_TRANSPORT=tls */
		const char *const *t = rl_test_tls_server_args();
		if (t == NULL)
			return -1;
		for (; *t != NULL; t++)
			if (srv_argv_push(a, *t) != 0)
				return -1;
	}
	/* RELAY_TEST_TRANSPORT=ws or wss: a WebSocket listener too */
	if (add_port && !has_ws && rl_test_ws() &&
	    (srv_argv_push(a, "--ws-port") || srv_argv_push(a, "0")))
		return -1;
	/* wss: TLS on it (also on one the test asked for), with the test
	 * certificate unless the test names its own */
	if (add_port && !has_ws_tls && rl_test_wss() && srv_wss_args(a, has_tls))
		return -1;
	for (int i = 0; args != NULL && args[i] != NULL; i++)
		if (srv_argv_push(a, args[i]) != 0)
			return -1;
	return 0;
}

static bool srv_env_overridden(const char *entry, const char *const *env)
{
	size_t klen = strcspn(entry, "=");
	for (int i = 0; env != NULL && env[i] != NULL; i++)
		if (strncmp(env[i], entry, klen) == 0 && env[i][klen] == '=')
			return true;
	return false;
}

char **rl_test_envp(const char *const *env)
{
	size_t n = 0, m = 0;
	while (environ[n] != NULL)
		n++;
	while (env != NULL && env[m] != NULL)
		m++;
	char **e = calloc(n + m + 1, sizeof(*e));
	if (e == NULL)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!srv_env_overridden(environ[i], env))
			e[k++] = environ[i];
	for (size_t i = 0; i < m; i++)
		e[k++] = (char *)env[i];
	e[k] = NULL;
	return e;
}

static int srv_tmpfile(char *path, size_t cap, const char *what)
{
	const char *dir = getenv("TMPDIR");
	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	snprintf(path, cap, "%s/relayd-test-%s-XXXXXX", dir, what);
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd == -1)
		return -errno;
	return fd;
}

/* Spawns argv with stdout -> <out_fd>, stderr -> <err_fd>, stdin /dev/null. */
static int srv_spawn(struct srv_argv *a, const char *const *env, int out_fd, int err_fd,
		     pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	char **envp = rl_test_envp(env);
	int rc = envp == NULL ? ENOMEM : posix_spawnp(pid, a->v[0], &fa, &at, a->v, envp);
	free(envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0)
		return rl_test_set_err("posix_spawn %s: %s", a->v[0], strerror(rc)), -rc;
	return 0;
}

static int srv_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	long fd = syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		fcntl((int)fd, F_SETFD, FD_CLOEXEC);
		return (int)fd;
	}
#endif
	(void)pid;
	return -1;
}

/* Waits for <pid> to exit within <timeout_ms> (<0: forever). Returns the
 * decoded status or -ETIMEDOUT. */
static int srv_waitpid(pid_t pid, int pidfd, int timeout_ms)
{
	int64_t deadline = rl_test_now_ms() + timeout_ms;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			if (WIFEXITED(st))
				return WEXITSTATUS(st);
			if (WIFSIGNALED(st))
				return 128 + WTERMSIG(st);
			continue;
		}
		if (r == -1 && errno != EINTR)
			return rl_test_set_err("waitpid: %s", strerror(errno)), -errno;
		int64_t left = timeout_ms < 0 ? 1000 : deadline - rl_test_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (pidfd >= 0) {
			struct pollfd p = {.fd = pidfd, .events = POLLIN};
			poll(&p, 1, (int)left);
		} else {
			/* No pidfd (old kernel): re-check every 5 ms. */
			struct timespec ts = {0, 5 * 1000000};
			nanosleep(&ts, NULL);
		}
	}
}

static int srv_default_timeout(int timeout_ms)
{
	if (timeout_ms > 0)
		return timeout_ms;
	return srv_has_wrapper() ? RL_TEST_WRAPPED_START_MS : RL_TEST_START_MS;
}

static void srv_dump_log(const struct rl_test_server *s, const char *why)
{
	char tail[4096];
	size_t n = rl_test_server_log_tail(s, tail, sizeof(tail));
	fprintf(stderr, "--- relayd (%s) %s; stderr tail (%s):\n%.*s%s---\n", s->line, why,
		s->log_path, (int)n, tail, n > 0 && tail[n - 1] != '\n' ? "\n" : "");
}

/* ---- readiness ------------------------------------------------------------ */

/* Parses "relayd listening on HOST:PORT (N workers)". */
static int srv_parse_line(struct rl_test_server *s, const char *line)
{
	static const char prefix[] = "relayd listening on ";
	if (strncmp(line, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	char addr[128];
	int workers = 0;
	if (sscanf(line + sizeof(prefix) - 1, "%127s (%d worker", addr, &workers) != 2)
		return -1;
	char *colon = strrchr(addr, ':');
	if (colon == NULL)
		return -1;
	*colon = '\0';
	char *host = addr;
	size_t hl = strlen(host);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		host++;
	}
	long port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535 || workers <= 0)
		return -1;
	srv_copy(s->host, sizeof(s->host), host);
	s->port = (uint16_t)port;
	s->workers = workers;
	return 0;
}

/* Appends up to 4 KiB read from relayd's stdout to s->out. Returns bytes
 * read, 0 at EOF, -1 on EAGAIN/error. */
static ssize_t srv_read_out(struct rl_test_server *s)
{
	char buf[4096];
	ssize_t n = read(s->out_fd, buf, sizeof(buf));
	if (n <= 0)
		return n == 0 ? 0 : -1;
	char *o = realloc(s->out, s->out_len + (size_t)n + 1);
	if (o == NULL)
		return -1;
	memcpy(o + s->out_len, buf, (size_t)n);
	s->out = o;
	s->out_len += (size_t)n;
	s->out[s->out_len] = '\0';
	return n;
}

/* Finds a complete stdout line starting with <prefix>; copies it (no '\n'). */
static bool srv_find_line(const struct rl_test_server *s, const char *prefix, char *buf,
			  size_t cap)
{
	size_t pl = strlen(prefix);
	for (size_t off = 0; off < s->out_len;) {
		const char *line = s->out + off;
		const char *nl = memchr(line, '\n', s->out_len - off);
		if (nl == NULL)
			return false;
		size_t len = (size_t)(nl - line);
		if (len >= pl && memcmp(line, prefix, pl) == 0) {
			size_t n = len < cap - 1 ? len : cap - 1;
			memcpy(buf, line, n);
			buf[n] = '\0';
			return true;
		}
		off += len + 1;
	}
	return false;
}

/* Waits up to <timeout_ms> for a stdout line starting with <prefix>. */
static int srv_wait_line(struct rl_test_server *s, const char *prefix, char *buf, size_t cap,
			 int timeout_ms)
{
	int64_t deadline = rl_test_now_ms() + timeout_ms;
	for (;;) {
		if (srv_find_line(s, prefix, buf, cap))
			return 0;
		if (s->out_fd < 0)
			return rl_test_set_err("relayd stdout has no line \"%s...\"", prefix), -ENOENT;
		int64_t left = deadline - rl_test_now_ms();
		if (left <= 0)
			return rl_test_set_err("relayd printed no line \"%s...\" within %d ms", prefix,
					       timeout_ms),
			       -ETIMEDOUT;
		struct pollfd p[2] = {{.fd = s->out_fd, .events = POLLIN},
				      {.fd = s->pidfd, .events = POLLIN}};
		int r = poll(p, s->pidfd >= 0 ? 2 : 1, (int)left);
		if (r < 0 && errno != EINTR)
			return rl_test_set_err("poll: %s", strerror(errno)), -errno;
		if (r <= 0)
			continue;
		if (p[0].revents != 0) {
			ssize_t n = srv_read_out(s);
			if (n == 0)
				return rl_test_set_err("relayd closed stdout without \"%s...\"",
						       prefix),
				       -EPIPE;
			if (n > 0)
				continue;
		}
		if (p[1].revents != 0 && srv_read_out(s) <= 0 &&
		    !srv_find_line(s, prefix, buf, cap))
			return rl_test_set_err("relayd exited without printing \"%s...\"", prefix),
			       -ESRCH;
	}
}

static int srv_read_ready(struct rl_test_server *s, int timeout_ms)
{
	char line[256];
	int rc = srv_wait_line(s, "relayd listening on ", line, sizeof(line), timeout_ms);
	if (rc != 0)
		return rc;
	if (srv_parse_line(s, line) != 0)
		return rl_test_set_err("cannot parse the listening line: %s", line), -EPROTO;
	srv_copy(s->line, sizeof(s->line), line);
	/* Printed before the listening line, so already read. */
	static const struct {
		const char *prefix;
		size_t off;
	} extra[] = {
		{ "relayd tls listening on ", offsetof(struct rl_test_server, tls_port) },
		{ "relayd ws listening on ", offsetof(struct rl_test_server, ws_port) },
		{ "relayd wss listening on ", offsetof(struct rl_test_server, ws_port) },
	};
	for (size_t k = 0; k < sizeof(extra) / sizeof(extra[0]); k++) {
		if (!srv_find_line(s, extra[k].prefix, line, sizeof(line)))
			continue;
		const char *colon = strrchr(line, ':');
		long port = colon != NULL ? strtol(colon + 1, NULL, 10) : 0;
		if (port <= 0 || port > 65535)
			return rl_test_set_err("cannot parse the line: %s", line), -EPROTO;
		*(uint16_t *)((char *)s + extra[k].off) = (uint16_t)port;
	}
	return 0;
}

int rl_test_server_stdout_line(struct rl_test_server *s, const char *prefix, char *buf, size_t cap,
			       int timeout_ms)
{
	if (cap == 0)
		return -EINVAL;
	return srv_wait_line(s, prefix, buf, cap, srv_default_timeout(timeout_ms));
}

/* ---- public --------------------------------------------------------------- */

bool rl_test_external(void)
{
	const char *a = getenv("RELAY_TEST_ADDR");
	return a != NULL && a[0] != '\0';
}

static int srv_start_external(struct rl_test_server *s)
{
	const char *a = getenv("RELAY_TEST_ADDR");
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "relayd listening on %s (1 workers)", a);
	if (srv_parse_line(s, tmp) != 0)
		return rl_test_set_err("RELAY_TEST_ADDR=%s: want host:port", a), -EINVAL;
	s->external = true;
	snprintf(s->line, sizeof(s->line), "external %s", a);
	return 0;
}

static void srv_init(struct rl_test_server *s)
{
	memset(s, 0, sizeof(*s));
	s->out_fd = -1;
	s->pidfd = -1;
}

int rl_test_server_start(struct rl_test_server *s, const char *const *args,
			 const char *const *env, int timeout_ms)
{
	srv_init(s);
	if (rl_test_external())
		return srv_start_external(s);
	const char *bin = getenv("RELAYD_BIN");
	if (bin == NULL || bin[0] == '\0')
		return rl_test_set_err("RELAYD_BIN is not set (relayd not built?)"), -ENOENT;
	struct srv_argv a;
	if (srv_argv_build(&a, bin, args, true) != 0) {
		free(a.wrapper);
		return -EINVAL;
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) == -1) {
		free(a.wrapper);
		return rl_test_set_err("pipe2: %s", strerror(errno)), -errno;
	}
	int logfd = srv_tmpfile(s->log_path, sizeof(s->log_path), "log");
	if (logfd < 0) {
		close(pfd[0]);
		close(pfd[1]);
		free(a.wrapper);
		return rl_test_set_err("mkstemp %s: %s", s->log_path, strerror(-logfd)), logfd;
	}
	int rc = srv_spawn(&a, env, pfd[1], logfd, &s->pid);
	free(a.wrapper);
	close(pfd[1]);
	close(logfd);
	s->out_fd = pfd[0];
	if (rc != 0) {
		s->pid = 0;
		return rc;
	}
	srv_reg_add(s->pid, s->log_path);
	s->pidfd = srv_pidfd_open(s->pid);
	snprintf(s->line, sizeof(s->line), "pid %ld, starting", (long)s->pid);
	if (srv_read_ready(s, srv_default_timeout(timeout_ms)) != 0) {
		char why[1024];
		snprintf(why, sizeof(why), "%s", rl_test_err());
		kill(s->pid, SIGKILL);
		s->status = srv_waitpid(s->pid, s->pidfd, -1);
		srv_reg_del(s->pid, s->log_path);
		s->pid = 0;
		srv_dump_log(s, why);
		srv_log_release(s->log_path, false);
		rl_test_set_err("%s (status %d)", why, s->status);
		s->log_path[0] = '\0';
		return -EIO;
	}
	return 0;
}

int rl_test_server_signal(struct rl_test_server *s, int sig)
{
	if (s->pid <= 0)
		return rl_test_set_err("relayd is not running"), -ESRCH;
	if (kill(s->pid, sig) == -1)
		return rl_test_set_err("kill: %s", strerror(errno)), -errno;
	return 0;
}

static void srv_drain_stdout(struct rl_test_server *s)
{
	if (s->out_fd < 0)
		return;
	fcntl(s->out_fd, F_SETFL, O_NONBLOCK);
	while (srv_read_out(s) > 0)
		;
	close(s->out_fd);
	s->out_fd = -1;
}

/* Bookkeeping once relayd is gone. */
static int srv_exited(struct rl_test_server *s, int status)
{
	srv_reg_exited(s->pid);
	s->pid = 0;
	s->status = status;
	srv_drain_stdout(s);
	if (s->pidfd >= 0) {
		close(s->pidfd);
		s->pidfd = -1;
	}
	if (status != 0) {
		char why[64];
		snprintf(why, sizeof(why), "exit status %d", status);
		srv_dump_log(s, why);
	}
	return status;
}

int rl_test_server_wait(struct rl_test_server *s, int timeout_ms)
{
	if (s->external)
		return 0;
	if (s->pid <= 0)
		return s->status;
	int st = srv_waitpid(s->pid, s->pidfd, timeout_ms);
	if (st == -ETIMEDOUT)
		return st;
	return srv_exited(s, st);
}

int rl_test_server_stop(struct rl_test_server *s, int timeout_ms)
{
	if (s->external)
		return 0;
	if (s->pid <= 0)
		return s->status;
	kill(s->pid, SIGTERM);
	int st = srv_waitpid(s->pid, s->pidfd, srv_default_timeout(timeout_ms));
	if (st == -ETIMEDOUT) {
		kill(s->pid, SIGKILL);
		srv_waitpid(s->pid, s->pidfd, -1);
		srv_exited(s, -ETIMEDOUT);
		rl_test_set_err("relayd did not exit within %d ms of SIGTERM (killed)",
				srv_default_timeout(timeout_ms));
		return -ETIMEDOUT;
	}
	return srv_exited(s, st);
}

void rl_test_server_free(struct rl_test_server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		srv_waitpid(s->pid, s->pidfd, -1);
		s->pid = 0;
	}
	if (s->out_fd >= 0)
		close(s->out_fd);
	if (s->pidfd >= 0)
		close(s->pidfd);
	s->out_fd = s->pidfd = -1;
	if (s->log_path[0] != '\0') {
		srv_reg_del(0, s->log_path);
		srv_log_release(s->log_path, false);
		s->log_path[0] = '\0';
	}
	free(s->out);
	s->out = NULL;
	s->out_len = 0;
}

/* ---- logs and /proc --------------------------------------------------------- */

bool rl_test_server_log_has(const struct rl_test_server *s, const char *needle)
{
	FILE *f = fopen(s->log_path, "re");
	if (f == NULL)
		return false;
	size_t nl = strlen(needle);
	char buf[65536 + 256];
	size_t keep = 0;
	bool found = false;
	size_t n;
	while (!found && (n = fread(buf + keep, 1, sizeof(buf) - keep - 1, f)) > 0) {
		size_t len = keep + n;
		buf[len] = '\0';
		found = memmem(buf, len, needle, nl) != NULL;
		keep = nl > 1 && len >= nl - 1 ? nl - 1 : 0;
		if (keep > 0)
			memmove(buf, buf + len - keep, keep);
	}
	fclose(f);
	return found;
}

bool rl_test_server_log_wait(const struct rl_test_server *s, const char *needle, int timeout_ms)
{
	int64_t end = rl_test_now_ms() + timeout_ms;
	do {
		if (rl_test_server_log_has(s, needle))
			return true;
		poll(NULL, 0, 20);
	} while (rl_test_now_ms() < end);
	return false;
}

size_t rl_test_server_log_tail(const struct rl_test_server *s, char *buf, size_t cap)
{
	if (cap == 0)
		return 0;
	buf[0] = '\0';
	int fd = open(s->log_path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return 0;
	struct stat st;
	size_t n = 0;
	if (fstat(fd, &st) == 0) {
		off_t from = st.st_size > (off_t)(cap - 1) ? st.st_size - (off_t)(cap - 1) : 0;
		ssize_t r = pread(fd, buf, cap - 1, from);
		n = r > 0 ? (size_t)r : 0;
	}
	buf[n] = '\0';
	close(fd);
	return n;
}

size_t rl_test_server_log_lines(const struct rl_test_server *s)
{
	FILE *f = fopen(s->log_path, "re");
	if (f == NULL)
		return 0;
	size_t lines = 0;
	int ch;
	while ((ch = getc(f)) != EOF)
		lines += ch == '\n';
	fclose(f);
	return lines;
}

long rl_test_server_rss_kib(const struct rl_test_server *s)
{
	if (s->pid <= 0)
		return -ESRCH;
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)s->pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	long kib = -ENOENT;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* ---- one-shot runs ------------------------------------------------------------ */

static void srv_read_file(const char *path, char *out, size_t cap)
{
	if (out == NULL || cap == 0)
		return;
	out[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return;
	ssize_t n = read(fd, out, cap - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
}

int rl_test_run_relayd(const char *const *args, const char *const *env, int timeout_ms,
		       char *out, size_t out_cap, char *err, size_t err_cap)
{
	const char *bin = getenv("RELAYD_BIN");
	if (bin == NULL || bin[0] == '\0')
		return rl_test_set_err("RELAYD_BIN is not set (relayd not built?)"), -ENOENT;
	struct srv_argv a;
	char opath[128], epath[128];
	int rc = srv_argv_build(&a, bin, args, false);
	int ofd = srv_tmpfile(opath, sizeof(opath), "out");
	int efd = srv_tmpfile(epath, sizeof(epath), "err");
	pid_t pid = 0;
	if (rc == 0 && ofd >= 0 && efd >= 0)
		rc = srv_spawn(&a, env, ofd, efd, &pid);
	else if (rc == 0)
		rc = rl_test_set_err("mkstemp: %s", strerror(errno));
	free(a.wrapper);
	if (rc == 0) {
		srv_reg_add(pid, NULL);
		int pidfd = srv_pidfd_open(pid);
		rc = srv_waitpid(pid, pidfd, srv_default_timeout(timeout_ms));
		if (rc == -ETIMEDOUT) {
			kill(pid, SIGKILL);
			srv_waitpid(pid, pidfd, -1);
			rl_test_set_err("relayd did not exit within %d ms (killed)",
					srv_default_timeout(timeout_ms));
		}
		srv_reg_del(pid, NULL);
		if (pidfd >= 0)
			close(pidfd);
	}
	srv_read_file(opath, out, out_cap);
	srv_read_file(epath, err, err_cap);
	if (ofd >= 0) {
		close(ofd);
		unlink(opath);
	}
	if (efd >= 0) {
		close(efd);
		unlink(epath);
	}
	return rc;
}
