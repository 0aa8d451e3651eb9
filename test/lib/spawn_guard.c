/* spawn_guard.c -- "relay-test-guard PPID CMD ARGS...": asks the kernel to
 * SIGKILL this process when its parent dies, then execs CMD (the parent death
 * signal survives exec). The harness spawns relayd through it, so a test
 * process killed by a Criterion timeout or a crash never leaves relayd
 * running in the background.
 * Threading: single-threaded program.
 * Note: PR_SET_PDEATHSIG fires when the parent THREAD that spawned us exits;
 * the harness spawns from long-lived threads (the test's main thread). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: relay-test-guard PPID CMD [ARGS...]\n");
		return 127;
	}
	long ppid = strtol(argv[1], NULL, 10);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) {
		fprintf(stderr, "relay-test-guard: prctl: %s\n", strerror(errno));
		return 127;
	}
	/* The parent may have died before prctl took effect. */
	if ((long)getppid() != ppid)
		return 127;
	execvp(argv[2], argv + 2);
	fprintf(stderr, "relay-test-guard: exec %s: %s\n", argv[2], strerror(errno));
	return 127;
}
