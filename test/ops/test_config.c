/* test_config.c -- the INI loader (src/relayd/ops/config.c) over a fake
 * options table: FILE:LINE errors, sections, '_' for '-', trimming, CRLF,
 * duplicates, all-or-nothing apply, precedence hook, and the SIGHUP reload's
 * change/restart/removal logging. The live-server tests (relayd --config,
 * SIGHUP) are in test_ops_live.c; the option values themselves in
 * test/unit/test_options.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops/config.h"

/* The fake table: port (0-65535, restart), log-level (live),
 * max-connections (live; "held" by the command line when cli_holds), keys
 * (any text; a list for list_ops). */
static char v_port[32] = "4000", v_level[32] = "info", v_maxc[32] = "100", v_keys[32] = "";
static int cli_holds;
static int applied;
static char logbuf[4096];

static char *fake_slot(const char *name)
{
	if (strcmp(name, "port") == 0)
		return v_port;
	if (strcmp(name, "log-level") == 0)
		return v_level;
	if (strcmp(name, "max-connections") == 0)
		return v_maxc;
	if (strcmp(name, "keys") == 0)
		return v_keys;
	return NULL;
}

static int fake_known(const char *name)
{
	return fake_slot(name) ? 0 : -ENOENT;
}

static size_t checked_len; /* length of the last value checked */

static int fake_check(const char *name, const char *value, char *err, size_t errlen)
{
	char *end;
	checked_len = strlen(value);
	if (strcmp(name, "log-level") == 0) {
		if (strcmp(value, "debug") && strcmp(value, "info") && strcmp(value, "warn")) {
			snprintf(err, errlen, "%s: must be one of debug, info, warn", name);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(name, "keys") == 0)
		return 0;
	long v = strtol(value, &end, 10);
	if (*value == '\0' || *end || v < 0 || v > 65535) {
		snprintf(err, errlen, "%s: must be an integer 0-65535", name);
		return -EINVAL;
	}
	return 0;
}

static int fake_apply(const char *name, const char *value, char *err, size_t errlen)
{
	if (fake_check(name, value, err, errlen) != 0)
		return -EINVAL;
	if (cli_holds && strcmp(name, "max-connections") == 0)
		return 0;
	snprintf(fake_slot(name), 32, "%s", value);
	applied++;
	return 1;
}

static void fake_current(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s", fake_slot(name));
}

static int fake_live(const char *name)
{
	return strcmp(name, "port") != 0;
}

static int commit_fails;

static int fake_commit(char *err, size_t errlen)
{
	if (commit_fails) {
		snprintf(err, errlen, "watermarks out of order");
		return -EINVAL;
	}
	return 0;
}

static const struct rl_config_ops ops = {fake_known, fake_check,  fake_apply, fake_current,
					 fake_live,  fake_commit, NULL,	      NULL};

static int fake_list(const char *name)
{
	return strcmp(name, "keys") == 0;
}

static const struct rl_config_ops list_ops = {fake_known, fake_check,  fake_apply, fake_current,
					      fake_live,  fake_commit, NULL,	   fake_list};

static char path[64];

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert(f);
	fputs(text, f);
	fclose(f);
}

static void log_line(int is_error, const char *line)
{
	size_t n = strlen(logbuf);
	snprintf(logbuf + n, sizeof(logbuf) - n, "%s%s\n", is_error ? "E " : "", line);
}

static void setup(void)
{
	snprintf(path, sizeof(path), "/tmp/relayd-cfg-test-%d.ini", (int)getpid());
}

static void teardown(void)
{
	rl_config_fini();
	unlink(path);
}

TestSuite(config, .init = setup, .fini = teardown);

static void expect_error(const char *text, const char *want_suffix)
{
	char err[512], want[256];
	write_file(text);
	applied = 0;
	cr_assert_lt(rl_config_load(path, &ops, err, sizeof(err)), 0, "accepted: %s", text);
	snprintf(want, sizeof(want), "%s:%s", path, want_suffix);
	cr_assert_str_eq(err, want);
	cr_assert_eq(applied, 0, "a bad file must change nothing");
}

/* Like expect_error, for a file already written. */
static void expect_error_written(const char *want_suffix)
{
	char err[512], want[256];
	applied = 0;
	cr_assert_lt(rl_config_load(path, &ops, err, sizeof(err)), 0, "accepted");
	snprintf(want, sizeof(want), "%s:%s", path, want_suffix);
	cr_assert_str_eq(err, want);
	cr_assert_eq(applied, 0, "a bad file must change nothing");
}

Test(config, applies_keys_with_optional_section_and_underscores)
{
	char err[512];
	write_file("; comment\n# another\n[relayd]\nport = 4100\nmax_connections=7 ; inline\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v_port, "4100");
	cr_assert_str_eq(v_maxc, "7");
	cr_assert_str_eq(rl_config_path(), path);
}

Test(config, unknown_key_names_file_and_line)
{
	expect_error("port = 1\n\nbogus = 2\n", "3: unknown option 'bogus'");
}

Test(config, bad_value_names_file_line_and_option)
{
	expect_error("[relayd]\nlog-level = loud\n",
		     "2: log-level: must be one of debug, info, warn");
	expect_error("port = 1\nport = 99999\n", "2: port: must be an integer 0-65535");
}

Test(config, syntax_error_and_unknown_section)
{
	expect_error("port = 1\nthis is not ini\n",
		     "2: syntax error (expected 'name = value' or '[section]')");
	expect_error("port = 1\n[other]\nport = 2\n", "2: unknown section [other] (only [relayd])");
}

Test(config, missing_file_says_why)
{
	char err[512];
	unlink(path);
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "No such file or directory"), "%s", err);
}

Test(config, reload_applies_live_options_and_logs_restart_ones)
{
	char err[512];
	write_file("port = 4000\nlog-level = info\nmax-connections = 100\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	write_file("port = 4001\nlog-level = debug\nmax-connections = 100\n");
	logbuf[0] = '\0';
	cr_assert_eq(rl_config_reload(&ops, log_line), 1, "%s", logbuf);
	cr_assert_str_eq(v_level, "debug");
	cr_assert_str_eq(v_port, "4000", "port needs a restart");
	cr_assert(strstr(logbuf, "config: log-level changed from info to debug\n"), "%s", logbuf);
	cr_assert(strstr(logbuf, "config: port = 4001 needs a restart (still 4000)\n"), "%s",
		  logbuf);
	cr_assert(strstr(logbuf, "(1 option changed)"), "%s", logbuf);
}

Test(config, reload_of_a_broken_file_changes_nothing)
{
	char err[512];
	write_file("log-level = info\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	write_file("log-level = debug\nmax-connections = lots\n");
	logbuf[0] = '\0';
	cr_assert_lt(rl_config_reload(&ops, log_line), 0);
	cr_assert_str_eq(v_level, "info");
	cr_assert(strstr(logbuf, "E config: reload failed, nothing changed: "), "%s", logbuf);
	cr_assert(strstr(logbuf, ":2: max-connections: must be"), "%s", logbuf);
}

Test(config, reload_respects_stronger_sources)
{
	char err[512];
	write_file("max-connections = 100\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	cli_holds = 1;
	write_file("max-connections = 5\n");
	logbuf[0] = '\0';
	cr_assert_eq(rl_config_reload(&ops, log_line), 0);
	cr_assert_str_eq(v_maxc, "100");
	cr_assert(strstr(logbuf, "max-connections = 5 ignored"), "%s", logbuf);
}

Test(config, reload_whose_commit_fails_logs_only_the_failure)
{
	char err[512];
	write_file("log-level = info\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	write_file("log-level = debug\n");
	commit_fails = 1;
	logbuf[0] = '\0';
	cr_assert_lt(rl_config_reload(&ops, log_line), 0);
	cr_assert_str_eq(logbuf,
			 "E config: reload failed, nothing changed: watermarks out of order\n");
}

/* ---- files that are not text configuration files -------------------------- */

static char warnbuf[1024];

static void warn_line(const char *line)
{
	size_t n = strlen(warnbuf);
	snprintf(warnbuf + n, sizeof(warnbuf) - n, "%s\n", line);
}

static const struct rl_config_ops warn_ops = {fake_known, fake_check,  fake_apply, fake_current,
					      fake_live,  fake_commit, warn_line,  NULL};

static void write_bytes(const void *p, size_t n)
{
	FILE *f = fopen(path, "w");
	cr_assert(f);
	cr_assert_eq(fwrite(p, 1, n, f), n);
	fclose(f);
}

Test(config, a_directory_is_refused_naming_it)
{
	char err[512], want[256];
	cr_assert_eq(mkdir(path, 0700), 0, "%s", strerror(errno));
	applied = 0;
	int rc = rl_config_load(path, &ops, err, sizeof(err));
	rmdir(path);
	cr_assert_eq(rc, -EISDIR, "a directory loaded as an empty config (%d)", rc);
	snprintf(want, sizeof(want), "%s: is a directory, not a configuration file", path);
	cr_assert_str_eq(err, want);
	cr_assert_null(strchr(err, '\n'), "one line");
	cr_assert_null(rl_config_path());
}

Test(config, a_nul_byte_is_refused_naming_file_and_line)
{
	static const char first[] = "\0port = 4100\n";
	write_bytes(first, sizeof(first) - 1);
	expect_error_written("1: contains a NUL byte (not a text file)");
	static const char third[] = "port = 4100\n\nlog-level = de\0bug\n";
	write_bytes(third, sizeof(third) - 1);
	expect_error_written("3: contains a NUL byte (not a text file)");
	cr_assert_str_eq(v_port, "4000", "nothing applied");
}

Test(config, reload_of_a_directory_or_nul_file_keeps_the_running_config)
{
	char err[512];
	write_file("log-level = info\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	static const char nul[] = "\0log-level = debug\n";
	write_bytes(nul, sizeof(nul) - 1);
	logbuf[0] = '\0';
	cr_assert_lt(rl_config_reload(&ops, log_line), 0, "%s", logbuf);
	cr_assert_str_eq(v_level, "info");
	cr_assert(strstr(logbuf, "E config: reload failed, nothing changed: ") &&
		      strstr(logbuf, ":1: contains a NUL byte"),
		  "%s", logbuf);
	unlink(path);
	cr_assert_eq(mkdir(path, 0700), 0);
	logbuf[0] = '\0';
	int rc = rl_config_reload(&ops, log_line);
	rmdir(path);
	cr_assert_lt(rc, 0, "%s", logbuf);
	cr_assert(strstr(logbuf, "is a directory"), "%s", logbuf);
	cr_assert_str_eq(rl_config_path(), path, "still the same file");
}

Test(config, world_writable_file_is_loaded_with_a_warning)
{
	char err[512];
	write_file("log-level = warn\n");
	cr_assert_eq(chmod(path, 0666), 0);
	warnbuf[0] = '\0';
	cr_assert_eq(rl_config_load(path, &warn_ops, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v_level, "warn");
	cr_assert(strstr(warnbuf, path) && strstr(warnbuf, "world-writable"), "warnings: %s",
		  warnbuf);
	/* and again at every reload while it stays so */
	warnbuf[0] = '\0';
	logbuf[0] = '\0';
	cr_assert_geq(rl_config_reload(&warn_ops, log_line), 0, "%s", logbuf);
	cr_assert(strstr(warnbuf, "world-writable"), "reload: %s", warnbuf);
	cr_assert_eq(chmod(path, 0644), 0);
	warnbuf[0] = '\0';
	cr_assert_geq(rl_config_reload(&warn_ops, log_line), 0, "%s", logbuf);
	cr_assert_str_eq(warnbuf, "", "no warning once fixed");
}

Test(config, spaces_around_names_and_values_are_trimmed_and_crlf_ends_lines)
{
	char err[512];
	write_file("  port   =   4100  \r\n\r\n; comment\r\nmax-connections=9\r\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v_port, "4100");
	cr_assert_str_eq(v_maxc, "9");
}

Test(config, an_empty_file_applies_nothing)
{
	char err[512];
	write_file("");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(applied, 0);
	cr_assert_str_eq(rl_config_path(), path);
}

Test(config, a_key_given_twice_is_taken_from_its_last_line_only)
{
	char err[512];
	/* The first value would be refused: only the last one counts. */
	write_file("port = 99999\nlog-level = info\nport = 4200\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v_port, "4200");
	cr_assert_eq(applied, 2, "port applied once, log-level once");
	expect_error("port = 4200\nlog-level = info\nport = 99999\n",
		     "3: port: must be an integer 0-65535");
}

/* --auth-key in a file: several lines add up, as on the command line. */
Test(config, a_list_key_given_twice_keeps_every_line_in_order)
{
	char err[512];
	write_file("keys = a=/k/1\nport = 4200\nkeys = /k/2, b=/k/3\n");
	cr_assert_eq(rl_config_load(path, &list_ops, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v_keys, "a=/k/1,/k/2, b=/k/3");
	cr_assert_eq(applied, 2, "keys applied once (the whole list), port once");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v_keys, "/k/2, b=/k/3", "not a list: the last line wins");
}

Test(config, an_unknown_section_is_blamed_on_its_header_line)
{
	expect_error("port = 1\n\n[other]\n\n# a note\nport = 2\n",
		     "3: unknown section [other] (only [relayd])");
}

Test(config, reload_without_a_file_only_says_there_is_nothing_to_reload)
{
	logbuf[0] = '\0';
	cr_assert_eq(rl_config_reload(&ops, log_line), 0);
	cr_assert_str_eq(logbuf, "config: SIGHUP received but no --config file was given; "
				 "nothing to reload\n");
	cr_assert_eq(applied, 0);
}

Test(config, reload_of_an_unchanged_file_logs_only_the_summary)
{
	char err[512], want[256];
	write_file("port = 4000\nlog-level = info\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	logbuf[0] = '\0';
	cr_assert_eq(rl_config_reload(&ops, log_line), 0);
	snprintf(want, sizeof(want), "config: reloaded %s (0 options changed)\n", path);
	cr_assert_str_eq(logbuf, want);
}

Test(config, a_key_removed_from_the_file_keeps_its_value_until_restart)
{
	char err[512], want[256];
	write_file("log-level = debug\nmax-connections = 7\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	write_file("log-level = debug\n");
	logbuf[0] = '\0';
	cr_assert_eq(rl_config_reload(&ops, log_line), 0, "%s", logbuf);
	cr_assert_str_eq(v_maxc, "7");
	snprintf(want, sizeof(want),
		 "config: max-connections removed from %s; keeps its value until restart\n", path);
	cr_assert(strstr(logbuf, want), "%s", logbuf);
}

Test(config, a_pending_restart_is_logged_once_not_at_every_reload)
{
	char err[512];
	write_file("port = 4000\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	write_file("port = 4001\n");
	logbuf[0] = '\0';
	cr_assert_eq(rl_config_reload(&ops, log_line), 0);
	cr_assert(strstr(logbuf, "config: port = 4001 needs a restart (still 4000)\n"), "%s",
		  logbuf);
	logbuf[0] = '\0';
	cr_assert_eq(rl_config_reload(&ops, log_line), 0);
	cr_assert(!strstr(logbuf, "needs a restart"), "logged again: %s", logbuf);
}

/* Debian's libinih (the parser before) read lines through a 200-byte
 * buffer: the pieces of a longer line were parsed as lines of their own. */
Test(config, a_comment_line_longer_than_inih_buffer_is_still_one_comment)
{
	char text[600];
	snprintf(text, sizeof(text), "# %0400d\nbogus = 1\n", 0);
	expect_error(text, "2: unknown option 'bogus'");
}

/* Debian's libinih was built with INI_ALLOW_MULTILINE: an indented line
 * continued the previous key's value (Python configparser style), which the
 * manual page does not describe; an indented "name = value" is a key. */
Test(config, indented_keys_are_keys_not_continuation_lines)
{
	char err[512];
	write_file("[relayd]\n    port = 4100\n    max-connections = 9\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v_port, "4100");
	cr_assert_str_eq(v_maxc, "9");
}

/* There are no continuation lines: an indented line that is not a key is
 * refused at its own line, saying so (not glued to the previous value). */
Test(config, an_indented_line_that_is_not_a_key_is_refused_as_a_continuation)
{
	expect_error("port = 4100\n    4200\n",
		     "2: syntax error (an indented line that is not 'name = value': continuation "
		     "lines are not supported)");
}

/* A value of any length reaches the option's check whole (inih cut it at
 * ~190 bytes and parsed the rest as a line of its own). */
Test(config, a_value_longer_than_inih_buffer_reaches_the_check_whole)
{
	char text[1200], err[512];
	snprintf(text, sizeof(text), "\xEF\xBB\xBF[relayd]\r\nport = %01000d ; inline\r\n", 4100);
	write_file(text);
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(checked_len, 1000, "the check saw %zu bytes", checked_len);
	cr_assert_str_eq(v_port, "0000000000000000000000000000000", "applied (slot: 31 bytes)");
	snprintf(text, sizeof(text), "log-level = %0900d\n", 7);
	expect_error(text, "1: log-level: must be one of debug, info, warn");
}

/* A reload log line shows a long value in part, so its end still fits. */
Test(config, a_reload_line_with_a_long_value_keeps_its_end)
{
	char text[1200], err[512];
	write_file("port = 4000\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	snprintf(text, sizeof(text), "port = %01000d\n", 4001);
	write_file(text);
	logbuf[0] = '\0';
	cr_assert_eq(rl_config_reload(&ops, log_line), 0);
	cr_assert(strstr(logbuf, "... (1000 bytes) needs a restart (still 4000)\n"), "%s", logbuf);
}

/* Sections, keys and comments as inih read them: ':' splits like '=', an
 * inline comment needs a blank before its ';', a section header may be
 * indented, and keys in an unknown section are not taken. */
Test(config, inih_syntax_details_are_kept)
{
	char err[512];
	write_file("  [ relayd ]\nport : 4100\nlog-level = debug;x ; comment\n");
	cr_assert_lt(rl_config_load(path, &ops, err, sizeof(err)), 0, "debug;x is a bad level");
	write_file("  [ relayd ]\nport : 4100\nmax-connections=9;nope ;x\n");
	expect_error_written("3: max-connections: must be an integer 0-65535");
	write_file("[relayd\nport = 1\n");
	expect_error_written("1: syntax error (a '[section]' without its ']')");
	write_file("[relayd]\n\t\n\t# indented comment\nport : 4101\n");
	cr_assert_eq(rl_config_load(path, &ops, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v_port, "4101");
}
