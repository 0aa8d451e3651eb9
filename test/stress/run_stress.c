/* run_stress.c -- one stress test: start relayd (port 0, via the test
 * harness), run relay-bench against it, stop relayd with SIGTERM.
 *   run-stress RELAY_BENCH [relay-bench args...] [-- relayd args...]
 * relay-bench gets "--host HOST --port PORT --server-pid PID" appended. An
 * argument "{metrics}" becomes http://ADMIN/metrics, ADMIN being what relayd
 * printed on its "relayd admin on HOST:PORT" line (give relayd
 * "--admin 127.0.0.1:0"). An argument "{env:NAME=DEFAULT}" becomes the value
 * of environment variable NAME, or DEFAULT when it is unset or empty (the
 * soak suite's duration). relay-bench gets 40 s, or its --duration plus 60 s
 * when that is longer.
 * Passes (exit 0) only when relay-bench exited 0 within the time bound and
 * relayd exited 0 after SIGTERM.
 * Threading: single-threaded; children are started with posix_spawn.
 */
#include "harness.h"

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define BENCH_TIMEOUT_MS 40000
#define BENCH_SLACK_MS 60000 /* beyond --duration: setup, drain, checks */

static int wait_child(pid_t pid, int timeout_ms)
{
	int64_t end = rl_test_now_ms() + timeout_ms;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r == -1 && errno != EINTR)
			return -errno;
		if (rl_test_now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -ETIMEDOUT;
		}
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL); /* polling a child's exit; no event to wait on */
	}
}

/* "{env:NAME=DEFAULT}" -> getenv(NAME) or DEFAULT (in <buf>); other args as is. */
static const char *arg_expand(const char *arg, char *buf, size_t cap)
{
	size_t n = strlen(arg);
	const char *eq = strchr(arg, '=');
	if (strncmp(arg, "{env:", 5) != 0 || arg[n - 1] != '}' || !eq)
		return arg;
	snprintf(buf, cap, "%.*s", (int)(eq - arg - 5), arg + 5);
	const char *v = getenv(buf);
	if (v && v[0])
		snprintf(buf, cap, "%s", v);
	else
		snprintf(buf, cap, "%.*s", (int)(arg + n - 1 - eq - 1), eq + 1);
	return buf;
}

/* BENCH_TIMEOUT_MS, or relay-bench's --duration plus BENCH_SLACK_MS. */
static int bench_timeout_ms(const char *const *bargs)
{
	int ms = BENCH_TIMEOUT_MS;
	for (int i = 0; bargs[i] && bargs[i + 1]; i++)
		if (strcmp(bargs[i], "--duration") == 0) {
			double d = strtod(bargs[i + 1], NULL) * 1000 + BENCH_SLACK_MS;
			if (d > ms)
				ms = d < 1e9 ? (int)d : 1000000000;
		}
	return ms;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: run-stress RELAY_BENCH ARGS... [-- RELAYD ARGS...]\n");
		return 2;
	}
	int sep = argc;
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			sep = i;
			break;
		}
	const char **sargs = calloc((size_t)argc + 1, sizeof *sargs);
	const char **bargs = calloc((size_t)argc + 8, sizeof *bargs);
	char(*expanded)[128] = calloc((size_t)argc, sizeof *expanded);
	if (!sargs || !bargs || !expanded)
		return 2;
	for (int i = sep + 1, k = 0; i < argc; i++)
		sargs[k++] = argv[i];

	struct rl_test_server s;
	int rc = rl_test_server_start(&s, sargs, NULL, 0);
	if (rc < 0) {
		fprintf(stderr, "run-stress: relayd did not start: %s\n", rl_test_err());
		return 1;
	}
	char port[16], pid[16], line[256], metrics[300] = "";
	bool admin = false;
	for (int i = 0; sargs[i]; i++)
		admin |= strncmp(sargs[i], "--admin", 7) == 0;
	if (admin && rl_test_server_stdout_line(&s, "relayd admin on ", line, sizeof line, 0) == 0)
		snprintf(metrics, sizeof metrics, "http://%s/metrics",
			 line + strlen("relayd admin on "));
	snprintf(port, sizeof port, "%u", s.port);
	snprintf(pid, sizeof pid, "%d", (int)s.pid);
	int k = 0;
	bargs[k++] = argv[1];
	for (int i = 2; i < sep; i++) {
		if (strcmp(argv[i], "{metrics}") != 0) {
			bargs[k++] = arg_expand(argv[i], expanded[i], sizeof expanded[i]);
		} else if (metrics[0]) {
			bargs[k++] = metrics;
		} else {
			fprintf(stderr, "run-stress: {metrics} needs relayd --admin\n");
			rl_test_server_stop(&s, 0);
			rl_test_server_free(&s);
			return 1;
		}
	}
	bargs[k++] = "--host";
	bargs[k++] = s.host;
	bargs[k++] = "--port";
	bargs[k++] = port;
	if (s.pid) {
		bargs[k++] = "--server-pid";
		bargs[k++] = pid;
	}
	bargs[k] = NULL;
	fprintf(stderr, "run-stress: %s; running", s.line);
	for (int i = 0; bargs[i]; i++)
		fprintf(stderr, " %s", bargs[i]);
	fprintf(stderr, "\n");

	pid_t bench;
	int brc;
	if (posix_spawn(&bench, argv[1], NULL, NULL, (char *const *)bargs, environ) != 0) {
		perror("run-stress: posix_spawn relay-bench");
		brc = -1;
	} else {
		brc = wait_child(bench, bench_timeout_ms(bargs));
	}
	int src = rl_test_server_stop(&s, 0);
	rl_test_server_free(&s);
	if (brc != 0)
		fprintf(stderr, "run-stress: relay-bench %s %d\n",
			brc == -ETIMEDOUT ? "timed out" : "exited with", brc);
	if (src != 0)
		fprintf(stderr, "run-stress: relayd exit status after SIGTERM: %d\n", src);
	free(sargs);
	free(bargs);
	free(expanded);
	return brc == 0 && src == 0 ? 0 : 1;
}
