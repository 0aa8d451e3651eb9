/* test_webroot.c -- the --web-root files (src/relayd/net/webroot.c): what
 * a path resolves to, every way out of the root refused (dot segments,
 * percent-encoded or not, hidden names, symlinks), no listing, the size
 * bound, Content-Type by extension, the response head.
 * Threading: single-threaded; each test builds its own directory tree. */
#include <criterion/criterion.h>

#include "net/webroot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(webroot, .timeout = 30);

struct tree {
	char root[128], out[128];
	struct rl_webroot r;
};

static void put(const char *dir, const char *name, const char *text)
{
	char path[300];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static void tree_make(struct tree *t)
{
	char p[300], target[300], err[256];
	const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	snprintf(t->root, sizeof t->root, "%s/webroot-XXXXXX", tmp);
	snprintf(t->out, sizeof t->out, "%s/webroot-out-XXXXXX", tmp);
	cr_assert_not_null(mkdtemp(t->root));
	cr_assert_not_null(mkdtemp(t->out));
	put(t->root, "index.html", "<p>home</p>\n");
	put(t->root, "app.js", "1;\n");
	put(t->root, ".env", "secret\n");
	put(t->root, "a b.txt", "space\n");
	put(t->out, "passwd", "outside\n");
	snprintf(p, sizeof p, "%s/docs", t->root);
	cr_assert_eq(mkdir(p, 0755), 0);
	put(p, "index.html", "<p>docs</p>\n");
	snprintf(p, sizeof p, "%s/empty", t->root);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/out.txt", t->root); /* a symlink out of the root */
	snprintf(target, sizeof target, "%s/passwd", t->out);
	cr_assert_eq(symlink(target, p), 0);
	snprintf(p, sizeof p, "%s/home.html", t->root); /* a symlink inside it */
	cr_assert_eq(symlink("index.html", p), 0);
	snprintf(p, sizeof p, "%s/outdir", t->root); /* a directory symlink out */
	cr_assert_eq(symlink(t->out, p), 0);
	snprintf(p, sizeof p, "%s/big.bin", t->root);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fseek(f, RL_WEBROOT_MAX_FILE, SEEK_SET), 0); /* one byte over */
	fputc('x', f);
	fclose(f);
	cr_assert_eq(rl_webroot_init(&t->r, t->root, err, sizeof err), 0, "%s", err);
}

static void tree_remove(struct tree *t)
{
	static const char *const in[] = {"index.html",	    "app.js",  ".env",	    "a b.txt",
					 "docs/index.html", "out.txt", "home.html", "outdir",
					 "big.bin",	    "docs",    "empty"};
	char p[300];
	rl_webroot_fini(&t->r);
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", t->root, in[i]);
		remove(p);
	}
	snprintf(p, sizeof p, "%s/passwd", t->out);
	remove(p);
	rmdir(t->root);
	rmdir(t->out);
}

/* Opens <path>: the status; on 200 the file's bytes in <body>. */
static unsigned get(struct tree *t, const char *path, char *body, size_t cap, const char **type)
{
	struct rl_webfile f;
	const char *why = NULL;
	unsigned st = rl_webroot_open(
	    &t->r, (struct relay_span){(const uint8_t *)path, strlen(path)}, &f, &why);
	if (st != 200) {
		cr_assert_not_null(why, "%s: %u without a reason", path, st);
		cr_assert_eq(f.fd, -1);
		return st;
	}
	ssize_t n = read(f.fd, body, cap - 1);
	cr_assert_geq(n, 0);
	body[n] = '\0';
	cr_assert_eq((uint64_t)n, f.size < cap - 1 ? f.size : cap - 1);
	if (type != NULL)
		*type = f.type;
	close(f.fd);
	return 200;
}

Test(webroot, serves_files_and_a_directory_index)
{
	struct tree t;
	char b[256];
	const char *type;
	tree_make(&t);
	cr_assert_eq(get(&t, "/", b, sizeof b, &type), 200);
	cr_assert_str_eq(b, "<p>home</p>\n");
	cr_assert_str_eq(type, "text/html; charset=utf-8");
	cr_assert_eq(get(&t, "/docs/", b, sizeof b, NULL), 200);
	cr_assert_str_eq(b, "<p>docs</p>\n");
	cr_assert_eq(get(&t, "/app.js", b, sizeof b, &type), 200);
	cr_assert_str_eq(type, "text/javascript; charset=utf-8");
	cr_assert_eq(get(&t, "/a%20b.txt", b, sizeof b, &type), 200, "percent-decoded");
	cr_assert_str_eq(b, "space\n");
	cr_assert_eq(get(&t, "/home.html", b, sizeof b, NULL), 200, "a symlink inside the root");
	cr_assert_str_eq(b, "<p>home</p>\n");
	tree_remove(&t);
}

Test(webroot, every_way_out_of_the_root_is_refused)
{
	static const char *const out[] = {
	    "/../webroot-out/passwd",
	    "/%2e%2e/passwd",
	    "/%2E%2E/%2e%2e/etc/passwd",
	    "/docs/../../passwd",
	    "/docs/%2e%2e/index.html",
	    "/./index.html",
	    "/out.txt",
	    "/outdir/passwd",
	    "/.env",
	    "/%2eenv",
	    "/docs/..",
	    "/docs/.",
	};
	struct tree t;
	char b[256];
	tree_make(&t);
	for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) {
		unsigned st = get(&t, out[i], b, sizeof b, NULL);
		cr_assert_eq(st, 403, "%s: %u", out[i], st);
	}
	tree_remove(&t);
}

Test(webroot, no_listing_no_missing_no_oversize_no_bad_escape)
{
	struct tree t;
	char b[256];
	tree_make(&t);
	cr_assert_eq(get(&t, "/docs", b, sizeof b, NULL), 403, "a directory is not listed");
	cr_assert_eq(get(&t, "/empty/", b, sizeof b, NULL), 404, "no index, no listing");
	cr_assert_eq(get(&t, "/nope.html", b, sizeof b, NULL), 404);
	cr_assert_eq(get(&t, "/index.html/x", b, sizeof b, NULL), 404);
	cr_assert_eq(get(&t, "/big.bin", b, sizeof b, NULL), 403, "over RL_WEBROOT_MAX_FILE");
	cr_assert_eq(get(&t, "/%zz", b, sizeof b, NULL), 400);
	cr_assert_eq(get(&t, "/%4", b, sizeof b, NULL), 400);
	cr_assert_eq(get(&t, "/a%00b", b, sizeof b, NULL), 400);
	cr_assert_eq(get(&t, "//index.html", b, sizeof b, NULL), 400, "an empty segment");
	char longp[RL_WEBROOT_MAX_PATH + 8];
	memset(longp, 'a', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = '\0';
	cr_assert_eq(get(&t, longp, b, sizeof b, NULL), 414);
	tree_remove(&t);
}

Test(webroot, content_types_follow_the_extension)
{
	static const struct {
		const char *name, *type;
	} c[] = {
	    {"a.html", "text/html; charset=utf-8"},
	    {"a.HTML", "text/html; charset=utf-8"},
	    {"a.mjs", "text/javascript; charset=utf-8"},
	    {"a.css", "text/css; charset=utf-8"},
	    {"a.svg", "image/svg+xml"},
	    {"a.png", "image/png"},
	    {"favicon.ico", "image/x-icon"},
	    {"a.json", "application/json"},
	    {"x.tar.gz", "application/octet-stream"},
	    {"dir.js/readme", "application/octet-stream"},
	    {"noext", "application/octet-stream"},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
		cr_assert_str_eq(rl_webroot_type(c[i].name), c[i].type, "%s", c[i].name);
}

Test(webroot, the_200_head_is_exact)
{
	struct rl_webfile f = {.fd = -1, .size = 12, .type = "text/css; charset=utf-8"};
	char h[RL_WEBROOT_HEAD_MAX];
	cr_assert_gt(rl_webroot_head(h, sizeof h, &f), 0);
	cr_assert_str_eq(h, "HTTP/1.1 200 OK\r\n"
			    "Content-Type: text/css; charset=utf-8\r\n"
			    "Content-Length: 12\r\n"
			    "Cache-Control: no-cache\r\n"
			    "X-Content-Type-Options: nosniff\r\n"
			    "Connection: close\r\n"
			    "\r\n");
	cr_assert_eq(rl_webroot_head(h, 20, &f), 0);
}

Test(webroot, a_root_that_is_not_a_directory_fails_with_the_option_named)
{
	struct rl_webroot r;
	char err[256];
	cr_assert_lt(rl_webroot_init(&r, "/nonexistent/relayd-web", err, sizeof err), 0);
	cr_assert(strstr(err, "--web-root") != NULL, "%s", err);
	char file[128];
	const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	snprintf(file, sizeof file, "%s/webroot-file-XXXXXX", tmp);
	int fd = mkstemp(file);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_lt(rl_webroot_init(&r, file, err, sizeof err), 0, "a file is no root");
	cr_assert(strstr(err, "--web-root") != NULL, "%s", err);
	unlink(file);
}
