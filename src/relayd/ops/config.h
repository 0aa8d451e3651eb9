/* config.h -- the INI configuration file (--config FILE) and its reload.
 *
 * The file uses the long option names as keys ("max-connections = 5000";
 * '_' is accepted for '-'), optionally under a [relayd] section; ';' or '#'
 * start a comment. Precedence is command line > environment > file >
 * defaults: the file only sets options that came from nowhere stronger.
 *
 * Threading: main thread only (startup and SIGHUP handling). */
#ifndef RL_CONFIG_H
#define RL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct rl_config_entry {
	char *name; /* canonical: '_' replaced by '-' */
	char *value;
	unsigned line;
};

struct rl_config_file {
	char *path;
	struct rl_config_entry *e;
	size_t n;
	bool world_writable; /* any user may write it: loaded, with a warning */
};

/* Reads and parses <path> (syntax and section names only; keys and values
 * are the caller's to check). On failure returns -errno or -EINVAL and writes
 * "FILE:LINE: message" (or "FILE: reason") to <err>. A directory, a file with
 * a NUL byte, or a read error is refused (-EISDIR, -EINVAL, -errno), never
 * read as an empty or partial file. <out> must be freed
 * with rl_config_file_free on success. A key given twice: the last wins, at
 * its line. */
int rl_config_parse(const char *path, struct rl_config_file *out, char *err, size_t errlen);
void rl_config_file_free(struct rl_config_file *f);

/* What the caller plugs in: the options table, seen through three functions. */
struct rl_config_ops {
	/* 0 if <name> is an option that may appear in a file, else -ENOENT. */
	int (*known)(const char *name);
	/* Parses and range-checks <value> for <name> without applying it:
	 * 0, or -EINVAL with a one-line message naming the option (no
	 * file/line) in <err>. */
	int (*check)(const char *name, const char *value, char *err, size_t errlen);
	/* Applies <value> as coming from the file. Returns 1 if applied, 0 if a
	 * stronger source (environment, command line) holds the option, -EINVAL
	 * with a message in <err> on a bad value. */
	int (*apply)(const char *name, const char *value, char *err, size_t errlen);
	/* Current value of <name> as text into <buf>. */
	void (*current)(const char *name, char *buf, size_t len);
	/* Whether <name> may change while running (else it needs a restart). */
	int (*live)(const char *name);
	/* Reload only, may be NULL: called once every entry was applied; makes
	 * the applied values take effect, or fails (0 / -EINVAL with <err>) and
	 * then the reload changes nothing. */
	int (*commit)(char *err, size_t errlen);
	/* May be NULL: receives one-line warnings about the file that do not
	 * stop it from loading (a world-writable file), at startup and at every
	 * reload. */
	void (*warn)(const char *line);
};

/* Startup: parses <path>, checks every key and value (an unknown key or a bad
 * value gives "FILE:LINE: message"), then applies them. 0 or negative with
 * <err> set; nothing is applied unless the whole file is valid. */
int rl_config_load(const char *path, const struct rl_config_ops *ops, char *err, size_t errlen);

/* SIGHUP: re-reads the file given at startup and applies what may change
 * live, logging each change, and each change that needs a restart, through
 * <log> (one line each, no newline). An option whose line was removed from
 * the file keeps its value until restart (logged). A file that no longer parses or checks
 * changes nothing (the error is logged). Returns the number of options
 * changed, or negative on error. */
typedef void rl_config_log_fn(int is_error, const char *line);
int rl_config_reload(const struct rl_config_ops *ops, rl_config_log_fn *log);

/* The path given to rl_config_load, or NULL. */
const char *rl_config_path(void);
/* Forgets the remembered path and entries (at exit). */
void rl_config_fini(void);

#endif /* RL_CONFIG_H */
