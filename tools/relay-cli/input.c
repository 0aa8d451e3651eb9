/* input.c -- a line reader over a file descriptor that is polled together
 * with the socket: `pub` reading stdin, and the interactive commands when
 * stdin is not a terminal. Lines of any length; "\n" or "\r\n" endings.
 *
 * Threading: main thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define INPUT_CHUNK 65536

void rl_cli_input_init(struct rl_cli_input *in, int fd)
{
	memset(in, 0, sizeof *in);
	in->fd = fd;
}

void rl_cli_input_free(struct rl_cli_input *in)
{
	free(in->buf);
	in->buf = NULL;
	in->len = in->cap = in->start = 0;
}

/* Drops the lines already returned, keeping the partial one. */
static void input_compact(struct rl_cli_input *in)
{
	if (in->start == 0)
		return;
	memmove(in->buf, in->buf + in->start, in->len - in->start);
	in->len -= in->start;
	in->start = 0;
}

int rl_cli_input_fill(struct rl_cli_input *in)
{
	ssize_t n;

	input_compact(in);
	if (in->cap - in->len < INPUT_CHUNK + 1) {
		size_t cap = in->cap ? in->cap * 2 : 2 * INPUT_CHUNK;
		char *p = realloc(in->buf, cap);

		if (!p)
			return -ENOMEM;
		in->buf = p;
		in->cap = cap;
	}
	n = read(in->fd, in->buf + in->len, INPUT_CHUNK);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		in->eof = true;
	in->len += (size_t)n;
	return 0;
}

char *rl_cli_input_line(struct rl_cli_input *in, size_t *n)
{
	char *line = in->buf + in->start;
	size_t avail = in->len - in->start;
	char *nl = avail ? memchr(line, '\n', avail) : NULL;
	size_t len;

	if (!nl && !(in->eof && avail > 0))
		return NULL;
	len = nl ? (size_t)(nl - line) : avail;
	in->start += nl ? len + 1 : len;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0'; /* the '\n' or '\r', or the spare byte fill keeps */
	*n = len;
	return line;
}
