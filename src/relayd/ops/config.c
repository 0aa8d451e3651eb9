/* config.c -- the INI configuration file: parse, check, apply, reload.
 * Threading: main thread only. The options themselves are reached through
 * struct rl_config_ops, so this file knows nothing of their types.
 *
 * The parser is ours (it was libinih's). Debian's libinih reads lines
 * through a 200-byte buffer on the stack (a longer comment reached the
 * handler in pieces, its tail a "syntax error"; a longer value was cut) and
 * is built with INI_ALLOW_MULTILINE (an indented "name = value" became the
 * previous key's value); both are compile-time choices inside the shared
 * library. The syntax is inih's default one, minus continuation lines:
 *   - lines of any length; an optional UTF-8 BOM; CRLF or LF;
 *   - blank lines, and lines whose first non-blank character is '#' or ';'
 *     are comments;
 *   - "[section]" (only [relayd] is allowed);
 *   - "name = value" or "name : value", split at the first '=' or ':';
 *     name and value trimmed; in the value, a ';' after a blank starts an
 *     inline comment;
 *   - leading blanks never mean anything: an indented "name = value" is a
 *     key, and an indented line that is not one is refused (there are no
 *     continuation lines). */
#include "ops/config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_SECTION "relayd"
#define CONFIG_BLANKS " \t\r\n\v\f" /* isspace() in the C locale, as inih trimmed */

struct config_parse {
	FILE *fp;
	const char *path;
	unsigned lineno; /* line being parsed */
	bool in_other;	 /* inside a section other than [relayd] (already refused) */
	struct rl_config_file *out;
	unsigned err_line; /* first error's line, 0 = none */
	char msg[256];	   /* first error's message */
	int err;	   /* first error's code */
	unsigned nul_line; /* line of the first NUL byte, 0 = none */
	const struct rl_config_ops *ops; /* may be NULL: no list keys */
};

static struct rl_config_file config_cur; /* the file as last applied */

static void config_fail(struct config_parse *p, int err, const char *fmt, const char *arg)
{
	if (p->err_line)
		return;
	p->err_line = p->lineno;
	p->err = err;
	snprintf(p->msg, sizeof(p->msg), fmt, arg);
}

static int config_add(struct rl_config_file *f, const char *name, const char *value, unsigned line,
		      const struct rl_config_ops *ops)
{
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	for (char *c = n; *c; c++)
		if (*c == '_')
			*c = '-';
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->e[i].name, n) != 0)
			continue;
		if (ops && ops->list && ops->list(n)) { /* a list: this line adds to it */
			char *both;
			int rc = asprintf(&both, "%s,%s", f->e[i].value, v);
			free(v);
			if (rc < 0) {
				free(n);
				return -ENOMEM;
			}
			v = both;
		}
		free(f->e[i].name); /* otherwise the last occurrence wins */
		free(f->e[i].value);
		f->e[i] = (struct rl_config_entry){n, v, line};
		return 0;
	}
	struct rl_config_entry *e = realloc(f->e, (f->n + 1) * sizeof(*e));
	if (!e) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	f->e = e;
	f->e[f->n++] = (struct rl_config_entry){n, v, line};
	return 0;
}

/* <s> without blanks at either end (in place). */
static char *config_trim(char *s)
{
	s += strspn(s, CONFIG_BLANKS);
	size_t n = strlen(s);
	while (n && strchr(CONFIG_BLANKS, s[n - 1]))
		s[--n] = '\0';
	return s;
}

static void config_section(struct config_parse *p, char *line)
{
	char *end = strchr(line, ']');
	if (!end) {
		config_fail(p, -EINVAL, "%s", "syntax error (a '[section]' without its ']')");
		return;
	}
	*end = '\0';
	const char *name = config_trim(line + 1);
	p->in_other = strcmp(name, CONFIG_SECTION) != 0;
	if (p->in_other)
		config_fail(p, -EINVAL, "unknown section [%s] (only [" CONFIG_SECTION "])", name);
}

/* "name = value" (or ':'); <indented>: the line began with a blank. */
static void config_key(struct config_parse *p, char *line, bool indented)
{
	char *eq = line + strcspn(line, "=:");
	if (!*eq) {
		config_fail(p, -EINVAL, "%s",
			    indented ? "syntax error (an indented line that is not 'name = value': "
				       "continuation lines are not supported)"
				     : "syntax error (expected 'name = value' or '[section]')");
		return;
	}
	*eq = '\0';
	char *value = eq + 1 + strspn(eq + 1, CONFIG_BLANKS);
	for (char *c = value; *c; c++) /* inline comment: ';' after a blank */
		if (*c == ';' && c > value && strchr(CONFIG_BLANKS, c[-1])) {
			*c = '\0';
			break;
		}
	if (p->in_other)
		return; /* refused at its header */
	if (config_add(p->out, config_trim(line), config_trim(value), p->lineno, p->ops) != 0)
		config_fail(p, -ENOMEM, "%s", "out of memory");
}

/* One line, without its '\n'; <len> bytes (it may hold a NUL byte). */
static void config_line(struct config_parse *p, char *line, size_t len)
{
	if (memchr(line, '\0', len)) {
		p->nul_line = p->lineno;
		return;
	}
	if (p->lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3; /* UTF-8 byte order mark */
	bool indented = line[0] && strchr(CONFIG_BLANKS, line[0]);
	char *t = config_trim(line);
	if (*t == '\0' || *t == '#' || *t == ';')
		return;
	if (*t == '[')
		config_section(p, t);
	else
		config_key(p, t, indented);
}

/* Reads every line of <p>->fp, whatever its length, until EOF, a read
 * error or a NUL byte. 0 or -ENOMEM. */
static int config_read(struct config_parse *p)
{
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	while (!p->nul_line && (n = getline(&buf, &cap, p->fp)) != -1) {
		p->lineno++;
		if (n > 0 && buf[n - 1] == '\n')
			buf[--n] = '\0';
		config_line(p, buf, (size_t)n);
	}
	free(buf);
	return !p->nul_line && !feof(p->fp) && errno == ENOMEM ? -ENOMEM : 0;
}

void rl_config_file_free(struct rl_config_file *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->e[i].name);
		free(f->e[i].value);
	}
	free(f->e);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

/* What a line reader does not see by itself: a directory reads as an empty
 * file, a NUL byte ends a C string, a read error looks like EOF. Each would
 * load as a partial or empty config; refuse them. 0 or -errno with <err>. */
static int config_unreadable(const struct config_parse *p, int read_errno, char *err, size_t errlen)
{
	if (p->nul_line) {
		snprintf(err, errlen, "%s:%u: contains a NUL byte (not a text file)", p->path,
			 p->nul_line);
		return -EINVAL;
	}
	if (read_errno == EISDIR) {
		snprintf(err, errlen, "%s: is a directory, not a configuration file", p->path);
		return -EISDIR;
	}
	if (read_errno) {
		snprintf(err, errlen, "%s: read error: %s", p->path, strerror(read_errno));
		return -read_errno;
	}
	return 0;
}

static int config_parse(const char *path, const struct rl_config_ops *ops,
			struct rl_config_file *out, char *err, size_t errlen)
{
	struct config_parse p = {.path = path, .out = out, .ops = ops};
	struct stat st;
	memset(out, 0, sizeof(*out));
	p.fp = fopen(path, "re");
	if (!p.fp) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fileno(p.fp), &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			fclose(p.fp);
			return config_unreadable(&p, EISDIR, err, errlen);
		}
		out->world_writable = (st.st_mode & S_IWOTH) != 0;
	}
	errno = 0;
	int rc = config_read(&p);
	int read_errno = ferror(p.fp) ? (errno ? errno : EIO) : 0;
	fclose(p.fp);
	int bad = rc ? 0 : config_unreadable(&p, read_errno, err, errlen);
	if (bad) {
		rl_config_file_free(out);
		return bad;
	}
	if (rc == 0 && !p.err_line && (out->path = strdup(path)))
		return 0;
	if (rc != 0 || !p.err_line) {
		p.err = -ENOMEM;
		snprintf(p.msg, sizeof(p.msg), "out of memory");
	}
	snprintf(err, errlen, "%s:%u: %s", path, p.err_line, p.msg);
	rl_config_file_free(out);
	return p.err;
}

int rl_config_parse(const char *path, struct rl_config_file *out, char *err, size_t errlen)
{
	return config_parse(path, NULL, out, err, errlen);
}

/* Checks every entry of <f>: known key, valid value. */
static int config_check(const struct rl_config_file *f, const struct rl_config_ops *ops, char *err,
			size_t errlen)
{
	char why[256];
	for (size_t i = 0; i < f->n; i++) {
		const struct rl_config_entry *e = &f->e[i];
		if (ops->known(e->name) != 0) {
			snprintf(err, errlen, "%s:%u: unknown option '%s'", f->path, e->line,
				 e->name);
			return -EINVAL;
		}
		why[0] = '\0';
		if (ops->check(e->name, e->value, why, sizeof(why)) != 0) {
			if (why[0])
				snprintf(err, errlen, "%s:%u: %s", f->path, e->line, why);
			else
				snprintf(err, errlen, "%s:%u: bad value for %s", f->path, e->line,
					 e->name);
			return -EINVAL;
		}
	}
	return 0;
}

/* Warnings about a file that loads all the same. */
static void config_warn(const struct rl_config_file *f, const struct rl_config_ops *ops)
{
	char line[1200];
	if (!f->world_writable || !ops->warn)
		return;
	snprintf(line, sizeof(line),
		 "config: %s is world-writable: any local user can change relayd's configuration "
		 "(chmod o-w it)",
		 f->path);
	ops->warn(line);
}

int rl_config_load(const char *path, const struct rl_config_ops *ops, char *err, size_t errlen)
{
	struct rl_config_file f;
	char why[256];
	int rc = config_parse(path, ops, &f, err, errlen);
	if (rc != 0)
		return rc;
	config_warn(&f, ops);
	rc = config_check(&f, ops, err, errlen);
	for (size_t i = 0; rc == 0 && i < f.n; i++) {
		why[0] = '\0';
		if (ops->apply(f.e[i].name, f.e[i].value, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%u: %s", f.path, f.e[i].line,
				 why[0] ? why : "bad value");
			rc = -EINVAL;
		}
	}
	if (rc != 0) {
		rl_config_file_free(&f);
		return rc;
	}
	rl_config_file_free(&config_cur);
	config_cur = f;
	return 0;
}

static const struct rl_config_entry *config_find(const struct rl_config_file *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->e[i].name, name) == 0)
			return &f->e[i];
	return NULL;
}

/* Lines a reload will log once it commits. */
struct config_lines {
	char **v;
	size_t n;
};

static void config_logf(struct config_lines *out, const char *fmt, const char *a, const char *b,
			const char *c)
{
	char line[768], **v;
	snprintf(line, sizeof(line), fmt, a, b, c);
	char *dup = strdup(line);
	if (!dup || !(v = realloc(out->v, (out->n + 1) * sizeof(*v)))) {
		free(dup);
		return;
	}
	out->v = v;
	out->v[out->n++] = dup;
}

static void config_lines_flush(struct config_lines *l, rl_config_log_fn *log, bool emit)
{
	for (size_t i = 0; i < l->n; i++) {
		if (emit)
			log(0, l->v[i]);
		free(l->v[i]);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* <v> as log lines show it: whole up to 64 bytes, else its start and its
 * length (never a partial UTF-8 character), so the rest of the line fits. */
static const char *config_shown(const char *v, char *buf, size_t cap)
{
	size_t n = strlen(v), keep = 48;
	if (n <= 64)
		return v;
	while (keep > 0 && ((unsigned char)v[keep] & 0xC0) == 0x80)
		keep--;
	snprintf(buf, cap, "%.*s... (%zu bytes)", (int)keep, v, n);
	return buf;
}

/* Applies one entry of the re-read file; returns 1 if the option changed. */
static int config_reapply(const struct rl_config_entry *e, const struct rl_config_entry *old,
			  const struct rl_config_ops *ops, struct config_lines *log)
{
	char before[256], after[256], why[256] = "", shown[96];
	bool file_changed = !old || strcmp(old->value, e->value) != 0;
	const char *value = config_shown(e->value, shown, sizeof(shown));
	if (!ops->live(e->name)) {
		if (file_changed)
			config_logf(log, "config: %s = %s needs a restart (still %s)", e->name,
				    value, (ops->current(e->name, before, sizeof(before)), before));
		return 0;
	}
	ops->current(e->name, before, sizeof(before));
	int rc = ops->apply(e->name, e->value, why, sizeof(why));
	if (rc < 0) {
		config_logf(log, "config: %s: %s%s", e->name, why,
			    ""); /* checked before: not reached */
		return 0;
	}
	if (rc == 0) {
		if (file_changed)
			config_logf(log, "config: %s = %s ignored: set by the %s", e->name, value,
				    "command line or environment");
		return 0;
	}
	ops->current(e->name, after, sizeof(after));
	if (strcmp(before, after) == 0)
		return 0;
	config_logf(log, "config: %s changed from %s to %s", e->name, before, after);
	return 1;
}

int rl_config_reload(const struct rl_config_ops *ops, rl_config_log_fn *log)
{
	struct rl_config_file f;
	struct config_lines lines = {0};
	char err[512], num[16];
	if (!config_cur.path) {
		log(0, "config: SIGHUP received but no --config file was given; nothing to reload");
		return 0;
	}
	int rc = config_parse(config_cur.path, ops, &f, err, sizeof(err));
	if (rc == 0)
		config_warn(&f, ops);
	if (rc == 0 && (rc = config_check(&f, ops, err, sizeof(err))) != 0)
		rl_config_file_free(&f);
	if (rc != 0)
		goto failed;
	int changed = 0;
	for (size_t i = 0; i < f.n; i++)
		changed +=
		    config_reapply(&f.e[i], config_find(&config_cur, f.e[i].name), ops, &lines);
	for (size_t i = 0; i < config_cur.n; i++) {
		const struct rl_config_entry *o = &config_cur.e[i];
		if (!config_find(&f, o->name))
			config_logf(&lines,
				    "config: %s removed from %s; keeps its value until restart",
				    o->name, f.path, "");
	}
	if (ops->commit && (rc = ops->commit(err, sizeof(err))) != 0) {
		config_lines_flush(&lines, log, false);
		rl_config_file_free(&f);
		goto failed;
	}
	snprintf(num, sizeof(num), "%d", changed);
	config_logf(&lines, "config: reloaded %s (%s option%s changed)", f.path, num,
		    changed == 1 ? "" : "s");
	config_lines_flush(&lines, log, true);
	rl_config_file_free(&config_cur);
	config_cur = f;
	return changed;
failed : {
	char line[768];
	snprintf(line, sizeof(line), "config: reload failed, nothing changed: %s", err);
	log(1, line);
}
	return rc < 0 ? rc : -EINVAL;
}

const char *rl_config_path(void)
{
	return config_cur.path;
}

void rl_config_fini(void)
{
	rl_config_file_free(&config_cur);
}
