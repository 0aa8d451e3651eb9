/* cli_run.h -- run relay-cli from the cli suite: on pipes (stdin, stdout,
 * stderr kept apart) or on a pseudo-terminal (stdin/stdout/stderr all on the
 * pty slave, as in a real terminal), and wait for its output with poll() and
 * deadlines -- never sleeps.
 *
 * Threading: one struct cli_run per thread. relay-cli is started with
 * posix_spawn (the harness may have threads); the binary is $RELAY_CLI_BIN.
 */
#ifndef RELAY_TEST_CLI_RUN_H
#define RELAY_TEST_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CLI_OUT_CAP (256 * 1024)
#define CLI_ERR_CAP (64 * 1024)

struct cli_run {
	pid_t pid;
	int pidfd;
	bool pty;
	int in;			   /* our end of its stdin (pipe or pty master); -1 when closed */
	int out;		   /* its stdout (pty: the master, stdout and stderr mixed) */
	int err;		   /* its stderr; -1 with a pty */
	char out_buf[CLI_OUT_CAP]; /* everything read so far, NUL-terminated */
	size_t out_len;
	char err_buf[CLI_ERR_CAP];
	size_t err_len;
	bool exited;
	int status; /* exit status, or 128 + signal */
};

/* Starts relay-cli with <args> (NULL-terminated, without argv[0]); <env>
 * ("NAME=value", NULL-terminated, may be NULL) is added to a copy of ours.
 * With <pty>, the terminal is 100x30 and TERM=xterm. 0 or -errno. */
int cli_start(struct cli_run *r, const char *const *args, const char *const *env, bool pty);

/* Writes <s> to its stdin (the terminal, with a pty). */
int cli_write(struct cli_run *r, const char *s);
/* Closes our end of its stdin (EOF for pipes). */
void cli_close_in(struct cli_run *r);

/* Reads output until <needle> appears in stdout (<in_err>: stderr) at or
 * after *<pos>, then sets *<pos> just past it. With a pty the text searched
 * has terminal escape sequences and '\r' removed (cli_plain). Fails on
 * timeout or when the process exits first. 0 or -1. */
int cli_expect(struct cli_run *r, bool in_err, const char *needle, size_t *pos, int timeout_ms);

/* Waits for the exit, reading output meanwhile (and closing stdin first if
 * <close_in>). Returns the status (0-255, 128+signal) or -1 on timeout
 * (then the process is killed). */
int cli_wait(struct cli_run *r, int timeout_ms);

/* Kills (SIGKILL) and reaps if still running; closes the fds. */
void cli_free(struct cli_run *r);

/* Runs relay-cli to completion on pipes: <input> (may be NULL: empty) as
 * stdin. Returns the status, or -1 on timeout. Output stays in <r>. */
int cli_run(struct cli_run *r, const char *const *args, const char *input, int timeout_ms);

/* stdout with escape sequences (CSI, OSC, two-byte ESC) and '\r' removed,
 * into a static buffer. */
const char *cli_plain(const struct cli_run *r);

/* Number of lines ('\n') in <s>. */
size_t cli_lines(const char *s);

/* A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
int cli_dead_port(void);

#endif /* RELAY_TEST_CLI_RUN_H */
