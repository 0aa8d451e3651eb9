/* test_options.c -- relayd's option table and parsers (src/relayd/base/options.c):
 * sizes (K/M/G, KiB/KB), durations (s/ms/m, decimals), integers, booleans,
 * log levels and strings; bounds; every error names the option; the
 * defaults are valid and print back as they parse; watermarks that were not
 * given follow a smaller hard limit; environment, then command line.
 * The config file side (ops/config.c) is test/ops/test_config.c.
 * Threading: Criterion test bodies (each its own process: setenv is fine). */
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/options.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

/* No RELAY_* variable from the caller's environment may leak into a test. */
static void clear_env(void)
{
	for (size_t i = 0; i < rl_options_count; i++)
		unsetenv(rl_options[i].env);
}

TestSuite(options, .init = clear_env);

static const struct rl_option *opt(const char *name)
{
	const struct rl_option *o = rl_option_find(name);
	cr_assert_not_null(o, "no option --%s in the table", name);
	return o;
}

/* The uint64_t field of option <name> in <cfg>. */
static uint64_t u64(const struct rl_config *cfg, const char *name)
{
	return *(const uint64_t *)((const char *)cfg + opt(name)->off);
}

/* Sets <name> to <val> on a default config and returns the stored number. */
static uint64_t set_ok(const char *name, const char *val)
{
	struct rl_config cfg;
	char err[256] = "";
	rl_config_defaults(&cfg);
	cr_assert_eq(rl_option_set(&cfg, opt(name), val, err, sizeof(err)), 0,
		     "--%s %s refused: %s", name, val, err);
	return u64(&cfg, name);
}

/* <val> is refused for <name> with one line that names the option and the
 * value; the config is left as it was. */
static void set_bad(const char *name, const char *val)
{
	struct rl_config cfg, before;
	char err[2048] = "", want[2048];
	rl_config_defaults(&cfg);
	before = cfg;
	cr_assert_eq(rl_option_set(&cfg, opt(name), val, err, sizeof(err)), -EINVAL,
		     "--%s '%s' accepted", name, val);
	snprintf(want, sizeof(want), "--%s", name);
	cr_assert(strstr(err, want) != NULL, "error does not name %s: %s", want, err);
	if (strlen(val) <= 64) /* longer ones are quoted in part: see below */
		snprintf(want, sizeof(want), "'%s'", val);
	else
		snprintf(want, sizeof(want), "'%.48s...' (%zu bytes)", val, strlen(val));
	cr_assert(strstr(err, want) != NULL, "error does not quote %s: %s", want, err);
	cr_assert(strchr(err, '\n') == NULL, "not one line: %s", err);
	cr_assert(memcmp(&cfg, &before, sizeof(cfg)) == 0, "a refused value changed the config");
}

/* ---- sizes ----------------------------------------------------------------- */

Test(options, sizes_take_binary_k_m_g_suffixes_in_either_case)
{
	cr_assert_eq(set_ok("outbound-hard-limit", "4096"), 4096);
	cr_assert_eq(set_ok("outbound-hard-limit", "4K"), 4 * KiB);
	cr_assert_eq(set_ok("outbound-hard-limit", "4k"), 4 * KiB);
	cr_assert_eq(set_ok("outbound-hard-limit", "3M"), 3 * MiB);
	cr_assert_eq(set_ok("outbound-hard-limit", "3m"), 3 * MiB);
	cr_assert_eq(set_ok("outbound-hard-limit", "1G"), GiB);
	cr_assert_eq(set_ok("outbound-hard-limit", "1g"), GiB);
}

Test(options, sizes_accept_kib_and_kb_spellings_as_the_same_binary_unit)
{
	cr_assert_eq(set_ok("outbound-hard-limit", "256KiB"), 256 * KiB);
	cr_assert_eq(set_ok("outbound-hard-limit", "256KB"), 256 * KiB);
	cr_assert_eq(set_ok("outbound-hard-limit", "2MiB"), 2 * MiB);
	cr_assert_eq(set_ok("outbound-hard-limit", "2MB"), 2 * MiB);
	cr_assert_eq(set_ok("outbound-hard-limit", "1GiB"), GiB);
}

Test(options, sizes_refuse_fractions_signs_spaces_and_other_units)
{
	static const char *const bad[] = {"",	"K",	 "-1",	"+1", "1.5M", "1 K", " 1K", "1K ",
					  "1T", "1KiBx", "1iB", "1B", "0x10", "1e3", "K1",  "1KK"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		set_bad("outbound-hard-limit", bad[i]);
}

Test(options, sizes_that_overflow_64_bits_are_refused_not_wrapped)
{
	set_bad("outbound-hard-limit", "99999999999999999999");
	/* (2^34 + 1) GiB wraps to exactly 1 GiB, inside the option's bounds. */
	set_bad("outbound-hard-limit", "17179869185G");
}

Test(options, size_bounds_are_inclusive)
{
	cr_assert_eq(set_ok("max-frame-bytes", "256"), 256);
	set_bad("max-frame-bytes", "255");
	cr_assert_eq(set_ok("max-frame-bytes", "256M"), 256 * MiB);
	set_bad("max-frame-bytes", "268435457");
	cr_assert_eq(set_ok("outbound-low-watermark", "0"), 0);
	set_bad("outbound-high-watermark", "0");
	set_bad("outbound-hard-limit", "2G");
}

/* <val> is refused for <name> with exactly the message <want>. */
static void set_bad_says(const char *name, const char *val, const char *want)
{
	struct rl_config cfg;
	char err[256] = "";
	rl_config_defaults(&cfg);
	cr_assert_eq(rl_option_set(&cfg, opt(name), val, err, sizeof(err)), -EINVAL,
		     "--%s '%s' accepted", name, val);
	cr_assert_str_eq(err, want);
}

Test(options, a_size_error_gives_the_unit_and_the_range)
{
	set_bad_says("max-frame-bytes", "100",
		     "invalid value '100' for --max-frame-bytes: expected a size in bytes "
		     "(suffix K, M or G allowed) in 256..268435456");
}

/* ---- durations --------------------------------------------------------------- */

Test(options, durations_are_seconds_unless_suffixed_ms_s_or_m)
{
	cr_assert_eq(set_ok("idle-timeout", "60"), 60000);
	cr_assert_eq(set_ok("idle-timeout", "60s"), 60000);
	cr_assert_eq(set_ok("idle-timeout", "250ms"), 250);
	cr_assert_eq(set_ok("idle-timeout", "2m"), 120000);
	cr_assert_eq(set_ok("idle-timeout", "2min"), 120000);
	cr_assert_eq(set_ok("idle-timeout", "0"), 0);
}

Test(options, durations_take_decimals_rounded_to_the_millisecond)
{
	cr_assert_eq(set_ok("frame-timeout", "1.5"), 1500);
	cr_assert_eq(set_ok("frame-timeout", "0.6"), 600);
	cr_assert_eq(set_ok("frame-timeout", "0.25m"), 15000);
	cr_assert_eq(set_ok("frame-timeout", "1.0004"), 1000);
	cr_assert_eq(set_ok("frame-timeout", "0.0016"), 2);
	cr_assert_eq(set_ok("frame-timeout", "2.5ms"), 3);
}

Test(options, durations_refuse_signs_other_units_and_non_numbers)
{
	static const char *const bad[] = {"",	"-1",  "+1",  "1h",    "1 s", "s",    "ms",
					  ".5", "inf", "nan", "1e400", "5S",  "5sec", "1,5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		set_bad("idle-timeout", bad[i]);
}

Test(options, duration_bounds_are_inclusive_and_the_error_names_them_in_seconds)
{
	cr_assert_eq(set_ok("idle-timeout", "2592000"), 2592000000ull); /* 30 days */
	cr_assert_eq(set_ok("idle-timeout", "43200m"), 2592000000ull);
	set_bad("idle-timeout", "2592000.001");
	cr_assert_eq(set_ok("shutdown-grace", "86400"), 86400000ull); /* 1 day */
	set_bad("shutdown-grace", "86401");
	set_bad_says("shutdown-grace", "2d",
		     "invalid value '2d' for --shutdown-grace: expected a duration in seconds (or "
		     "with suffix ms, s, m; 0 or at least 1 ms), at most 86400 s");
}

/* 0 turns a timeout off; a value that is not 0 but rounds to 0 ms was
 * taken as 0 and silently turned it off. It is refused: 0.5 ms and up
 * round to 1 ms, below that is an error. */
Test(options, durations_under_half_a_millisecond_are_refused_not_taken_as_off)
{
	static const char *const tiny[] = {"0.0004", "0.4ms", "0.000001", "0.1ms", "0.00000001m"};
	for (size_t i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++)
		set_bad("idle-timeout", tiny[i]);
	cr_assert_eq(set_ok("idle-timeout", "0.0005"), 1);
	cr_assert_eq(set_ok("idle-timeout", "0.5ms"), 1);
	cr_assert_eq(set_ok("frame-timeout", "0.0"), 0, "0 written as a decimal is still off");
	cr_assert_eq(set_ok("frame-timeout", "0ms"), 0);
}

/* A config-file value can be any length: the message quotes its start and
 * its length, so the option's name (after the value) always fits. */
Test(options, a_very_long_value_is_quoted_in_part_and_the_message_names_the_option)
{
	static char val[4000];
	memset(val, '7', sizeof(val) - 1);
	struct rl_config cfg;
	char err[256] = "";
	rl_config_defaults(&cfg);
	cr_assert_eq(rl_option_set(&cfg, opt("max-connections"), val, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "for --max-connections: expected an integer") != NULL, "%s", err);
	cr_assert(strstr(err, "(3999 bytes)") != NULL, "%s", err);
	cr_assert_lt(strlen(err), sizeof(err) - 1, "cut off: %s", err);
	/* Cut at a character boundary: 47 ASCII bytes, then 2-byte characters. */
	memset(val, 'a', 47);
	for (size_t i = 47; i + 2 < sizeof(val); i += 2)
		memcpy(val + i, "\xC3\xA9", 2); /* U+00E9 */
	val[sizeof(val) - 2] = '\0';
	cr_assert_eq(rl_option_set(&cfg, opt("max-connections"), val, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'") != NULL,
		  "a character was split: %s", err);
}

/* ---- integers, booleans, levels, strings ---------------------------------------- */

Test(options, integers_are_plain_decimal_within_bounds)
{
	cr_assert_eq(set_ok("workers", "0"), 0);
	cr_assert_eq(set_ok("workers", "64"), 64);
	set_bad("workers", "65");
	cr_assert_eq(set_ok("port", "65535"), 65535);
	set_bad("port", "65536");
	set_bad("max-connections", "0");
	static const char *const bad[] = {"",	"x",	"-1", "+5",  " 5",
					  "5 ", "0x10", "5K", "1.0", "1e3"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		set_bad("workers", bad[i]);
}

static bool bool_of(const char *val)
{
	struct rl_config cfg;
	char err[256] = "";
	rl_config_defaults(&cfg);
	cr_assert_eq(rl_option_set(&cfg, opt("no-presence"), val, err, sizeof(err)), 0,
		     "--no-presence '%s' refused: %s", val, err);
	return cfg.no_presence;
}

Test(options, booleans_take_1_0_true_false_yes_no_on_off_in_any_case)
{
	static const char *const yes[] = {"1", "true", "yes", "on", "TRUE", "Yes", "ON"};
	static const char *const no[] = {"0", "false", "no", "off", "FALSE", "No", "Off"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_assert(bool_of(yes[i]), "'%s' should be true", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_assert(!bool_of(no[i]), "'%s' should be false", no[i]);
	/* An empty value (RELAY_NO_PRESENCE= in the environment) is false. */
	cr_assert(!bool_of(""));
	set_bad("no-presence", "2");
	set_bad("no-presence", "maybe");
	set_bad("debug", "y");
}

Test(options, log_levels_are_the_four_names_and_warning)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(set_ok("log-level", names[i]), (uint64_t)i, "%s", names[i]);
	cr_assert_eq(set_ok("log-level", "warning"), RL_LOG_WARN);
	set_bad("log-level", "loud");
	set_bad("log-level", "DEBUG");
	set_bad("log-level", "");
}

Test(options, strings_keep_to_their_length_bounds)
{
	struct rl_config cfg;
	char err[256], name[300];
	rl_config_defaults(&cfg);
	set_bad("host", ""); /* min 1 */
	cr_assert_eq(rl_option_set(&cfg, opt("admin"), "", err, sizeof(err)), 0, "%s", err);
	memset(name, 'h', sizeof(name));
	name[sizeof(cfg.host) - 1] = '\0'; /* the longest that fits with its NUL */
	cr_assert_eq(rl_option_set(&cfg, opt("host"), name, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.host, name);
	name[sizeof(cfg.host) - 1] = 'h';
	name[sizeof(cfg.host)] = '\0';
	set_bad("host", name);
}

/* ---- the table as a whole -------------------------------------------------------- */

/* A value no option of <type> accepts (a string option: one byte too long;
 * a list: an empty entry). */
static const char *bad_value(const struct rl_option *o, char *buf, size_t cap)
{
	if (o->type == RL_OPT_LIST)
		return "a,,b";
	if (o->type != RL_OPT_STRING)
		return "bogus";
	cr_assert_lt(o->max, cap);
	memset(buf, 's', o->max);
	buf[o->max] = '\0';
	return buf;
}

Test(options, every_option_refuses_a_bad_value_with_its_own_name)
{
	static char buf[4096];
	for (size_t i = 0; i < rl_options_count; i++)
		set_bad(rl_options[i].name, bad_value(&rl_options[i], buf, sizeof(buf)));
}

Test(options, every_default_parses_lies_in_bounds_and_passes_the_checks)
{
	struct rl_config cfg;
	char err[256] = "";
	rl_config_defaults(&cfg); /* aborts on a default its own option refuses */
	for (size_t i = 0; i < rl_options_count; i++) {
		const struct rl_option *o = &rl_options[i];
		cr_assert_eq(rl_option_set(&cfg, o, o->def, err, sizeof(err)), 0, "--%s: %s",
			     o->name, err);
		if (o->type == RL_OPT_UINT || o->type == RL_OPT_SIZE || o->type == RL_OPT_DURATION)
			cr_assert(u64(&cfg, o->name) >= o->min && u64(&cfg, o->name) <= o->max,
				  "--%s default %s outside %llu..%llu", o->name, o->def,
				  (unsigned long long)o->min, (unsigned long long)o->max);
	}
	cr_assert_eq(rl_config_check(&cfg, err, sizeof(err)), 0, "defaults: %s", err);
}

/* What rl_option_format prints parses back to the same value. */
static void expect_round_trip(struct rl_config *cfg)
{
	char text[1100], err[256] = "";
	for (size_t i = 0; i < rl_options_count; i++) {
		const struct rl_option *o = &rl_options[i];
		struct rl_config again = *cfg;
		rl_option_format(cfg, o, text, sizeof(text));
		cr_assert_eq(rl_option_set(&again, o, text, err, sizeof(err)), 0,
			     "--%s printed as '%s', which it refuses: %s", o->name, text, err);
		cr_assert(memcmp(&again, cfg, sizeof(again)) == 0,
			  "--%s printed as '%s' parses to another value", o->name, text);
	}
}

Test(options, every_value_prints_in_a_form_that_parses_back_to_it)
{
	struct rl_config cfg;
	char err[256] = "";
	rl_config_defaults(&cfg);
	expect_round_trip(&cfg);
	static const char *const set[][2] = {
	    {"idle-timeout", "1.5"},  {"frame-timeout", "250ms"},
	    {"shutdown-grace", "2m"}, {"outbound-hard-limit", "3M"},
	    {"log-level", "debug"},   {"no-presence", "on"},
	    {"admin", "127.0.0.1:0"}, {"host", "::1"},
	};
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		cr_assert_eq(rl_option_set(&cfg, opt(set[i][0]), set[i][1], err, sizeof(err)), 0,
			     "%s", err);
	expect_round_trip(&cfg);
}

Test(options, names_are_unique_and_each_variable_is_relay_plus_the_name)
{
	for (size_t i = 0; i < rl_options_count; i++) {
		const struct rl_option *o = &rl_options[i];
		char want[128] = "RELAY_";
		for (size_t k = 0; o->name[k] != '\0' && k < 100; k++)
			want[6 + k] =
			    o->name[k] == '-' ? '_' : (char)toupper((unsigned char)o->name[k]);
		cr_assert_str_eq(o->env, want, "--%s", o->name);
		cr_assert_eq(rl_option_find(o->name), o, "--%s is in the table twice", o->name);
		cr_assert(o->help != NULL && o->help[0] != '\0', "--%s has no help text", o->name);
		cr_assert_lt(o->type, RL_OPT_NTYPES, "--%s", o->name);
	}
	cr_assert_null(rl_option_find("help"), "--help is not a table option");
	cr_assert_null(rl_option_find("bogus"));
}

/* ---- watermarks -------------------------------------------------------------------- */

/* rl_options_fit_watermarks with the watermark options in <given> (NULL-terminated names). */
static void fit(struct rl_config *cfg, const char *const *given)
{
	bool g[64] = {false};
	cr_assert_leq(rl_options_count, 64);
	for (size_t i = 0; given != NULL && given[i] != NULL; i++)
		g[opt(given[i]) - rl_options] = true;
	rl_options_fit_watermarks(cfg, g);
}

static void set(struct rl_config *cfg, const char *name, const char *val)
{
	char err[256] = "";
	cr_assert_eq(rl_option_set(cfg, opt(name), val, err, sizeof(err)), 0, "%s", err);
}

Test(options, watermarks_not_given_follow_a_small_hard_limit_down)
{
	struct rl_config cfg;
	char err[256] = "";
	rl_config_defaults(&cfg);
	set(&cfg, "outbound-hard-limit", "256K");
	fit(&cfg, (const char *[]){"outbound-hard-limit", NULL});
	cr_assert_eq(cfg.out_high, 128 * KiB, "high = hard / 2");
	cr_assert_eq(cfg.out_low, 32 * KiB, "low = high / 4");
	cr_assert_eq(rl_config_check(&cfg, err, sizeof(err)), 0, "%s", err);
}

Test(options, a_given_watermark_is_never_moved)
{
	struct rl_config cfg;
	rl_config_defaults(&cfg);
	set(&cfg, "outbound-hard-limit", "256K");
	set(&cfg, "outbound-high-watermark", "200K");
	fit(&cfg, (const char *[]){"outbound-hard-limit", "outbound-high-watermark", NULL});
	cr_assert_eq(cfg.out_high, 200 * KiB);
	cr_assert_eq(cfg.out_low, 50 * KiB, "the default low follows the given high: high / 4");

	rl_config_defaults(&cfg);
	set(&cfg, "outbound-hard-limit", "256K");
	set(&cfg, "outbound-low-watermark", "100K");
	fit(&cfg, (const char *[]){"outbound-hard-limit", "outbound-low-watermark", NULL});
	cr_assert_eq(cfg.out_high, 128 * KiB);
	cr_assert_eq(cfg.out_low, 100 * KiB);
}

Test(options, watermarks_stay_put_when_the_hard_limit_is_large_enough)
{
	struct rl_config cfg;
	rl_config_defaults(&cfg);
	set(&cfg, "outbound-hard-limit", "1M"); /* equal to the default high */
	fit(&cfg, (const char *[]){"outbound-hard-limit", NULL});
	cr_assert_eq(cfg.out_high, 1 * MiB);
	cr_assert_eq(cfg.out_low, 256 * KiB);
}

Test(options, watermarks_out_of_order_are_refused_naming_both_options)
{
	struct rl_config cfg;
	char err[256] = "";
	rl_config_defaults(&cfg);
	set(&cfg, "outbound-hard-limit", "256K");
	set(&cfg, "outbound-low-watermark", "200K");
	fit(&cfg, (const char *[]){"outbound-hard-limit", "outbound-low-watermark", NULL});
	cr_assert_eq(rl_config_check(&cfg, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "--outbound-low-watermark (204800) must not exceed "
			      "--outbound-high-watermark (131072)");

	rl_config_defaults(&cfg);
	set(&cfg, "outbound-high-watermark", "9M");
	cr_assert_eq(rl_config_check(&cfg, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "--outbound-high-watermark (9437184) must not exceed "
			      "--outbound-hard-limit (8388608)");
}

/* ---- rl_options_parse: environment, command line, messages ---------------------------- */

/* Runs rl_options_parse on relayd <args> (NULL-terminated) with stdout and
 * stderr captured into <out>/<err>. The one place that calls it. */
static enum rl_opts_result parse(struct rl_config *cfg, const char *const *args, char *out,
				 size_t out_cap, char *err, size_t err_cap)
{
	char *argv[32] = {(char *)"relayd"};
	int argc = 1;
	for (; args != NULL && args[argc - 1] != NULL && argc < 31; argc++)
		argv[argc] = (char *)args[argc - 1];
	argv[argc] = NULL;
	FILE *fo = tmpfile(), *fe = tmpfile();
	cr_assert(fo != NULL && fe != NULL);
	fflush(stdout);
	fflush(stderr);
	int so = dup(1), se = dup(2);
	dup2(fileno(fo), 1);
	dup2(fileno(fe), 2);
	bool given[RL_OPTIONS_MAX];
	enum rl_opts_result r = rl_options_parse(cfg, given, argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	rewind(fo);
	rewind(fe);
	out[fread(out, 1, out_cap - 1, fo)] = '\0';
	err[fread(err, 1, err_cap - 1, fe)] = '\0';
	fclose(fo);
	fclose(fe);
	return r;
}

/* relayd <args> must stop with exit status 1 and one stderr line holding <want>. */
static void parse_fails(const char *const *args, const char *want)
{
	struct rl_config cfg;
	char out[256], err[512];
	cr_assert_eq(parse(&cfg, args, out, sizeof(out), err, sizeof(err)), RL_OPTS_EXIT_ERR,
		     "accepted; stderr: %s", err);
	cr_assert(strstr(err, want) != NULL, "want '%s' in: %s", want, err);
	cr_assert(strncmp(err, "relayd: ", 8) == 0 && strchr(err, '\n') == err + strlen(err) - 1,
		  "want one line 'relayd: ...', got: %s", err);
	cr_assert_str_eq(out, "");
}

Test(options, the_command_line_wins_over_the_environment_over_the_default)
{
	struct rl_config cfg;
	char out[256], err[256];
	setenv("RELAY_WORKERS", "3", 1);
	setenv("RELAY_IDLE_TIMEOUT", "7", 1);
	cr_assert_eq(parse(&cfg, (const char *[]){"--workers", "2", NULL}, out, sizeof(out), err,
			   sizeof(err)),
		     RL_OPTS_RUN, "%s", err);
	cr_assert_eq(cfg.workers, 2);
	cr_assert_eq(cfg.idle_ms, 7000);
	cr_assert_eq(cfg.frame_ms, 30000, "untouched options keep their default");
	cr_assert_str_eq(err, "");
}

Test(options, long_options_take_their_value_attached_or_separate_and_flags_take_none)
{
	struct rl_config cfg;
	char out[256], err[256];
	cr_assert_eq(parse(&cfg,
			   (const char *[]){"--port=0", "--max-frame-bytes", "64K", "--no-presence",
					    "--log-level=debug", NULL},
			   out, sizeof(out), err, sizeof(err)),
		     RL_OPTS_RUN, "%s", err);
	cr_assert_eq(cfg.port, 0);
	cr_assert_eq(cfg.max_frame, 64 * KiB);
	cr_assert(cfg.no_presence);
	cr_assert_eq(cfg.log_level, RL_LOG_DEBUG);
}

Test(options, environment_watermarks_count_as_given)
{
	struct rl_config cfg;
	char out[256], err[256];
	setenv("RELAY_OUTBOUND_HIGH_WATERMARK", "200K", 1);
	cr_assert_eq(parse(&cfg, (const char *[]){"--outbound-hard-limit", "256K", NULL}, out,
			   sizeof(out), err, sizeof(err)),
		     RL_OPTS_RUN, "%s", err);
	cr_assert_eq(cfg.out_high, 200 * KiB);
	cr_assert_eq(cfg.out_low, 50 * KiB);
}

Test(options, command_line_errors_are_one_line_naming_the_option)
{
	parse_fails((const char *[]){"--bogus", NULL}, "unknown option '--bogus'");
	parse_fails((const char *[]){"--workers", NULL}, "option '--workers' needs a value");
	parse_fails((const char *[]){"--workers", "many", NULL},
		    "invalid value 'many' for --workers");
	parse_fails((const char *[]){"extra", NULL}, "unexpected argument 'extra'");
	parse_fails((const char *[]){"--outbound-hard-limit", "256K", "--outbound-low-watermark",
				     "200K", NULL},
		    "--outbound-low-watermark (204800) must not exceed");
}

/* --auth-key: repeated on the command line, each occurrence adds a key;
 * the environment gives a comma-separated list, which the command line
 * replaces. */
Test(options, a_list_option_repeated_on_the_command_line_adds_to_its_list)
{
	struct rl_config cfg;
	char out[256], err[256];
	setenv("RELAY_AUTH_KEY", "env=/k/0", 1);
	cr_assert_eq(parse(&cfg,
			   (const char *[]){"--auth-key", "a=/k/1", "--auth-key=/k/2,b=/k/3",
					    "--auth-audience", "x", "--auth-audience", "y", NULL},
			   out, sizeof(out), err, sizeof(err)),
		     RL_OPTS_RUN, "%s", err);
	cr_assert_str_eq(cfg.auth_keys, "a=/k/1,/k/2,b=/k/3");
	cr_assert_str_eq(cfg.auth_audience, "y", "a plain string: the last one wins");

	cr_assert_eq(parse(&cfg, NULL, out, sizeof(out), err, sizeof(err)), RL_OPTS_RUN, "%s", err);
	cr_assert_str_eq(cfg.auth_keys, "env=/k/0");
}

/* A flag given twice is simply on (it crashed once: the repeat took the
 * list path with no value). */
Test(options, a_flag_given_twice_is_on)
{
	struct rl_config cfg;
	char out[256], err[256];
	cr_assert_eq(parse(&cfg, (const char *[]){"--no-presence", "--no-presence", NULL}, out,
			   sizeof(out), err, sizeof(err)),
		     RL_OPTS_RUN, "%s", err);
	cr_assert(cfg.no_presence);
}

Test(options, a_list_refuses_empty_entries_but_may_be_empty_as_a_whole)
{
	static const char *const bad[] = {",", "a,", ",a", "a,,b", "a, ,b", " "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		set_bad("auth-key", bad[i]);
	struct rl_config cfg;
	char err[256] = "";
	rl_config_defaults(&cfg);
	cr_assert_eq(rl_option_set(&cfg, opt("auth-key"), "", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rl_option_set(&cfg, opt("auth-key"), "k1=a, ./b=c", err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_str_eq(cfg.auth_keys, "k1=a, ./b=c");
	parse_fails((const char *[]){"--auth-key", "a", "--auth-key", "", NULL},
		    "invalid value 'a,' for --auth-key: expected a comma-separated list without "
		    "empty entries");
}

Test(options, an_environment_error_names_the_variable_too)
{
	setenv("RELAY_MAX_CONNECTIONS", "lots", 1);
	parse_fails(NULL, "invalid value 'lots' for --max-connections: expected an integer in "
			  "1..10000000 (from RELAY_MAX_CONNECTIONS)");
}

Test(options, help_lists_every_option_with_its_default_and_variable)
{
	struct rl_config cfg;
	static char out[16384];
	char err[256], want[256];
	cr_assert_eq(
	    parse(&cfg, (const char *[]){"--help", NULL}, out, sizeof(out), err, sizeof(err)),
	    RL_OPTS_EXIT_OK);
	for (size_t i = 0; i < rl_options_count; i++) {
		const struct rl_option *o = &rl_options[i];
		snprintf(want, sizeof(want), "  --%s", o->name);
		cr_assert(strstr(out, want) != NULL, "--help lacks --%s", o->name);
		snprintf(want, sizeof(want), "(default: %s) [%s]\n", o->def[0] ? o->def : "none",
			 o->env);
		cr_assert(strstr(out, want) != NULL, "--help lacks '%s'", want);
	}
	cr_assert_str_eq(err, "");
}

/* wss:// is a switch on the WebSocket listener (--ws-tls), with the one
 * certificate of --tls-cert/--tls-key: each missing piece is named. */
Test(options, ws_tls_needs_the_websocket_listener_and_a_certificate)
{
	struct rl_config cfg;
	char out[256], err[512];

	parse_fails((const char *[]){"--ws-port", "0", "--ws-tls", NULL},
		    "relayd: --ws-tls needs --tls-cert and --tls-key\n");
	parse_fails((const char *[]){"--ws-port", "0", "--ws-tls", "--tls-cert", "c.pem", NULL},
		    "--ws-tls needs --tls-cert and --tls-key");
	parse_fails((const char *[]){"--ws-tls", "--tls-cert", "c.pem", "--tls-key", "k.pem", NULL},
		    "--ws-tls is set but --ws-port is not");
	parse_fails((const char *[]){"--tls-cert", "c.pem", "--tls-key", "k.pem", NULL},
		    "--tls-cert is set but neither --tls-port nor --ws-tls is");
	cr_assert_eq(parse(&cfg,
			   (const char *[]){"--ws-port", "0", "--ws-tls", "--tls-cert", "c.pem",
					    "--tls-key", "k.pem", NULL},
			   out, sizeof(out), err, sizeof(err)),
		     RL_OPTS_RUN, "%s", err);
	cr_assert(cfg.ws_tls && cfg.tls_port == RL_PORT_OFF);
}

/* ---- what the wire contract fixes (docs/spec-coverage.md) ------------------------------ */

/* Every default the spec names (protocol-v1.md 1, 2; protocol-v1-ext.md 2, 4,
 * 5, 7), in the spec's units; and every extension off by default, so the
 * wire is v1's byte for byte. */
Test(options, the_defaults_the_spec_names_are_the_defaults)
{
	static const struct {
		const char *name, *spec;
	} spec[] = {
	    {"max-frame-bytes", "1048576"},
	    {"max-rooms-per-conn", "1024"},
	    {"idle-timeout", "60"},
	    {"frame-timeout", "30"},
	    {"slow-consumer-timeout", "10"},
	    {"hello-timeout", "5"},
	    {"auth-leeway", "30"},
	    {"history-ttl", "300"},
	    {"history-room-bytes", "1048576"},
	    {"history-total-bytes", "268435456"},
	    {"cluster-node-ttl", "10"},
	    {"history-size", "0"},
	    {"max-connections-per-ip", "0"},
	    {"max-rooms", "0"},
	    {"publish-rate", "0"},
	    {"publish-bytes-rate", "0"},
	    {"join-rate", "0"},
	};
	struct rl_config cfg;
	rl_config_defaults(&cfg);
	for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++)
		cr_assert_eq(u64(&cfg, spec[i].name), set_ok(spec[i].name, spec[i].spec),
			     "--%s: the spec's default is %s, relayd's %s", spec[i].name,
			     spec[i].spec, opt(spec[i].name)->def);
	cr_assert_str_eq(cfg.auth_keys, "", "tokens are off by default");
	cr_assert_str_eq(cfg.cluster, "", "cluster mode is off by default");
}

/* protocol-v1-ext.md 5: history and cluster mode are refused together. */
Test(options, history_with_cluster_is_refused_at_start)
{
	parse_fails(
	    (const char *[]){"--history-size", "1", "--cluster", "redis://127.0.0.1:1", NULL},
	    "--history-size and --cluster cannot be used together");
	struct rl_config cfg;
	char out[256], err[512];
	cr_assert_eq(
	    parse(&cfg,
		  (const char *[]){"--history-size", "0", "--cluster", "redis://127.0.0.1:1", NULL},
		  out, sizeof(out), err, sizeof(err)),
	    RL_OPTS_RUN, "%s", err);
}

/* protocol-v1.md 2a: the server never sends a frame longer than max_frame;
 * an authenticated HELLO ack (userId, expiresAt, features) needs more than
 * the smallest max_frame, so that pair is refused at start. */
Test(options, auth_with_a_max_frame_too_small_for_its_hello_ack_is_refused)
{
	parse_fails((const char *[]){"--max-frame-bytes", "1023", "--auth-key", "k", NULL},
		    "--max-frame-bytes (1023) must be at least 1024 with --auth-key");
	struct rl_config cfg;
	char out[256], err[512];
	cr_assert_eq(parse(&cfg,
			   (const char *[]){"--max-frame-bytes", "1024", "--auth-key", "k", NULL},
			   out, sizeof(out), err, sizeof(err)),
		     RL_OPTS_RUN, "%s", err);
	cr_assert_eq(parse(&cfg, (const char *[]){"--max-frame-bytes", "256", NULL}, out,
			   sizeof(out), err, sizeof(err)),
		     RL_OPTS_RUN, "without tokens 256 stays allowed: %s", err);
}
