/* cli_run.c -- see cli_run.h. relay-cli on pipes or on a pseudo-terminal,
 * output collected with poll() against deadlines, exit seen through a pidfd.
 *
 * Threading: one struct cli_run per thread; cli_plain's buffer is
 * thread-local.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "harness.h"

static int run_left(int64_t deadline)
{
	int64_t left = deadline - rl_test_now_ms();

	return left < 0 ? 0 : (int)left;
}

/* <env> plus, on a terminal, its type and width, over our environment. */
static char **run_env(const char *const *env, bool pty)
{
	const char *both[64];
	size_t k = 0;

	while (env && env[k] && k < 60) {
		both[k] = env[k];
		k++;
	}
	if (pty) {
		both[k++] = "TERM=xterm";
		both[k++] = "COLUMNS=100";
	}
	both[k] = NULL;
	return rl_test_envp(both);
}

static char **run_argv(const char *const *args)
{
	const char *bin = getenv("RELAY_CLI_BIN");
	size_t n = 0;
	char **argv;

	while (args[n])
		n++;
	argv = calloc(n + 2, sizeof *argv);
	if (!argv)
		return NULL;
	argv[0] = (char *)(bin ? bin : "relay-cli");
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = (char *)args[i];
	return argv;
}

static void run_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Child stdio: the pty slave on 0/1/2, or the three pipes. */
static int run_fds(struct cli_run *r, posix_spawn_file_actions_t *fa, int child[3])
{
	if (r->pty) {
		struct winsize ws = {.ws_row = 30, .ws_col = 100};
		int m, s;

		if (openpty(&m, &s, NULL, NULL, &ws) == -1)
			return -errno;
		fcntl(m, F_SETFD, FD_CLOEXEC);
		fcntl(s, F_SETFD, FD_CLOEXEC);
		child[0] = child[1] = child[2] = s;
		r->in = r->out = m;
		r->err = -1;
	} else {
		int p[3][2];

		for (int i = 0; i < 3; i++)
			if (pipe2(p[i], O_CLOEXEC) == -1)
				return -errno;
		child[0] = p[0][0], r->in = p[0][1];
		child[1] = p[1][1], r->out = p[1][0];
		child[2] = p[2][1], r->err = p[2][0];
	}
	for (int i = 0; i < 3; i++)
		posix_spawn_file_actions_adddup2(fa, child[i], i);
	return 0;
}

int cli_start(struct cli_run *r, const char *const *args, const char *const *env, bool pty)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char **argv = run_argv(args), **envp = run_env(env, pty);
	int child[3] = {-1, -1, -1}, rc;

	memset(r, 0, sizeof *r);
	r->pty = pty;
	r->in = r->out = r->err = r->pidfd = -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
	rc = argv && envp ? run_fds(r, &fa, child) : -ENOMEM;
	if (rc == 0)
		rc = -posix_spawn(&r->pid, argv[0], &fa, &at, argv, envp);
	for (int i = 0; i < 3; i++)
		if (child[i] >= 0 && (i == 0 || child[i] != child[i - 1]))
			close(child[i]);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(argv);
	free(envp);
	if (rc)
		return rc;
	r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
	run_nonblock(r->out);
	if (r->err >= 0)
		run_nonblock(r->err);
	if (!pty)
		signal(SIGPIPE, SIG_IGN);
	return r->pidfd >= 0 ? 0 : -errno;
}

int cli_write(struct cli_run *r, const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = write(r->in, s, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -errno;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

void cli_close_in(struct cli_run *r)
{
	if (!r->pty && r->in >= 0) {
		close(r->in);
		r->in = -1;
	}
}

/* Appends what <fd> has to <buf>; false at EOF/EIO. */
static bool run_read(int fd, char *buf, size_t *len, size_t cap)
{
	for (;;) {
		ssize_t n = read(fd, buf + *len, cap - 1 - *len);

		if (n > 0) {
			*len += (size_t)n;
			buf[*len] = '\0';
			if (*len + 1 >= cap)
				return true;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return true;
		return false;
	}
}

static void run_reap(struct cli_run *r)
{
	int st;

	if (r->exited || waitpid(r->pid, &st, 0) != r->pid)
		return;
	r->exited = true;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	while (r->out >= 0 && run_read(r->out, r->out_buf, &r->out_len, CLI_OUT_CAP) && !r->pty &&
	       r->out_len + 1 < CLI_OUT_CAP) {
		struct pollfd p = {.fd = r->out, .events = POLLIN};

		if (poll(&p, 1, 1000) <= 0)
			break;
	}
	while (r->err >= 0 && run_read(r->err, r->err_buf, &r->err_len, CLI_ERR_CAP) &&
	       r->err_len + 1 < CLI_ERR_CAP) {
		struct pollfd p = {.fd = r->err, .events = POLLIN};

		if (poll(&p, 1, 1000) <= 0)
			break;
	}
}

/* One poll round: read output, notice the exit. */
static void run_pump(struct cli_run *r, int timeout_ms)
{
	struct pollfd p[3] = {{.fd = r->out, .events = POLLIN},
			      {.fd = r->err, .events = POLLIN},
			      {.fd = r->exited ? -1 : r->pidfd, .events = POLLIN}};

	if (poll(p, 3, timeout_ms) <= 0)
		return;
	if (p[0].revents && !run_read(r->out, r->out_buf, &r->out_len, CLI_OUT_CAP) && r->pty)
		p[0].fd = -1; /* EIO: the slave side is gone */
	if (p[1].revents)
		run_read(r->err, r->err_buf, &r->err_len, CLI_ERR_CAP);
	if (p[2].revents)
		run_reap(r);
}

int cli_expect(struct cli_run *r, bool in_err, const char *needle, size_t *pos, int timeout_ms)
{
	int64_t deadline = rl_test_now_ms() + timeout_ms;
	size_t start = pos ? *pos : 0;

	for (;;) {
		const char *text = in_err ? r->err_buf : r->pty ? cli_plain(r) : r->out_buf;
		const char *hit = strlen(text) >= start ? strstr(text + start, needle) : NULL;

		if (hit) {
			if (pos)
				*pos = (size_t)(hit - text) + strlen(needle);
			return 0;
		}
		if (r->exited || run_left(deadline) == 0)
			return -1;
		run_pump(r, run_left(deadline));
	}
}

int cli_wait(struct cli_run *r, int timeout_ms)
{
	int64_t deadline = rl_test_now_ms() + timeout_ms;

	while (!r->exited && run_left(deadline) > 0)
		run_pump(r, run_left(deadline));
	if (!r->exited) {
		kill(r->pid, SIGKILL);
		run_reap(r);
		return -1;
	}
	return r->status;
}

void cli_free(struct cli_run *r)
{
	if (r->pid > 0 && !r->exited) {
		kill(r->pid, SIGKILL);
		run_reap(r);
	}
	if (r->in >= 0 && r->in != r->out)
		close(r->in);
	if (r->out >= 0)
		close(r->out);
	if (r->err >= 0)
		close(r->err);
	if (r->pidfd >= 0)
		close(r->pidfd);
	r->in = r->out = r->err = r->pidfd = -1;
	r->pid = 0;
}

int cli_run(struct cli_run *r, const char *const *args, const char *input, int timeout_ms)
{
	int rc = cli_start(r, args, NULL, false);

	if (rc)
		return -1;
	if (input)
		cli_write(r, input);
	cli_close_in(r);
	return cli_wait(r, timeout_ms);
}

const char *cli_plain(const struct cli_run *r)
{
	static _Thread_local char plain[CLI_OUT_CAP];
	size_t k = 0;

	for (size_t i = 0; i < r->out_len; i++) {
		unsigned char c = (unsigned char)r->out_buf[i];

		if (c == 0x1b && i + 1 < r->out_len && r->out_buf[i + 1] == '[') {
			for (i += 2;
			     i < r->out_len && !(r->out_buf[i] >= 0x40 && r->out_buf[i] <= 0x7e);
			     i++)
				;
		} else if (c == 0x1b && i + 1 < r->out_len && r->out_buf[i + 1] == ']') {
			for (i += 2;
			     i < r->out_len && r->out_buf[i] != '\a' && r->out_buf[i] != 0x1b; i++)
				;
		} else if (c == 0x1b) {
			i++;
		} else if (c != '\r' && c != '\a' && c != '\b') {
			plain[k++] = (char)c;
		}
	}
	plain[k] = '\0';
	return plain;
}

size_t cli_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

int cli_dead_port(void)
{
	uint16_t port;
	int fd = rl_test_loopback_listener(&port);

	if (fd == -1)
		return -1;
	close(fd);
	return port;
}
