/* ops.c -- glue between relayd's core and the operations modules.
 * Threading: see ops.h. The options shown by /stats are a copy guarded by
 * <ops.shown_lock>; live reconfiguration stores each reloadable field of the
 * running config with a relaxed atomic store (workers read them with
 * relaxed atomic loads, RL_CFG in loop/worker.h). */
#include "ops/ops.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "ops/admin.h"
#include "ops/config.h"
#include "base/log.h"
#include "ops/metrics.h"
#include "ops/notify.h"
#include "net/budget.h"
#include "net/tls.h"
#include "base/options.h"
#include "base/rcu.h"
#include "relay/auth.h"
#include "relay/history.h"
#include "relay/room.h"
#include "base/stats.h"

#define OPS_ADMIN_TOKEN_MAX 1024 /* bytes of the admin bearer token */

static struct {
	bool held[RL_OPTIONS_MAX];    /* rl_options[i] came from the command line or environment */
	bool in_file[RL_OPTIONS_MAX]; /* rl_options[i] was applied from the file */
	struct rl_config *target;     /* where the file's values go (startup: the config;
					 reload: <next>) */
	struct rl_config next;	      /* reload scratch */
	struct rl_config *running;    /* reload: the config the workers read */
	pthread_mutex_t shown_lock;
	struct rl_config shown; /* options in force, for /stats */
	char listen[300];
	char status[400];
	char admin_token[OPS_ADMIN_TOKEN_MAX + 2]; /* --admin-token-file's token; "" = none */
} ops = {.shown_lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- the options table seen by config.c ---------------------------------------- */

static const struct rl_option *ops_opt(const char *name, size_t *idx)
{
	const struct rl_option *o = rl_option_find(name);
	if (o && idx)
		*idx = (size_t)(o - rl_options);
	return o;
}

static int ops_known(const char *name)
{
	return ops_opt(name, NULL) ? 0 : -ENOENT;
}

static int ops_check(const char *name, const char *value, char *err, size_t errlen)
{
	const struct rl_option *o = ops_opt(name, NULL);
	if (strcmp(name, "config") == 0) {
		snprintf(err, errlen, "'config' cannot be set inside a configuration file");
		return -EINVAL;
	}
	struct rl_config tmp = *ops.target;
	return rl_option_set(&tmp, o, value, err, errlen) ? -EINVAL : 0;
}

static int ops_apply(const char *name, const char *value, char *err, size_t errlen)
{
	size_t i = 0;
	const struct rl_option *o = ops_opt(name, &i);
	if (!o || ops.held[i])
		return 0;
	if (rl_option_set(ops.target, o, value, err, errlen))
		return -EINVAL;
	ops.in_file[i] = true;
	return 1;
}

static void ops_current(const char *name, char *buf, size_t len)
{
	rl_option_format(ops.target, ops_opt(name, NULL), buf, len);
}

static int ops_live(const char *name)
{
	return ops_opt(name, NULL)->reloadable;
}

/* A LIST option (--auth-key): several lines of the file add up. */
static int ops_list(const char *name)
{
	const struct rl_option *o = ops_opt(name, NULL);
	return o && o->type == RL_OPT_LIST;
}

static void ops_show(const struct rl_config *cfg)
{
	pthread_mutex_lock(&ops.shown_lock);
	ops.shown = *cfg;
	pthread_mutex_unlock(&ops.shown_lock);
}

/* Watermarks nobody set follow a smaller hard limit, as on the command line. */
static void ops_fit(struct rl_config *cfg)
{
	bool given[RL_OPTIONS_MAX] = {0};
	for (size_t i = 0; i < rl_options_count && i < RL_OPTIONS_MAX; i++)
		given[i] = ops.held[i] || ops.in_file[i];
	rl_options_fit_watermarks(cfg, given);
}

/* Makes the reloadable fields of <ops.next> take effect: the workers read
 * them with relaxed atomic loads (RL_CFG), so store them the same way. */
static int ops_commit(char *err, size_t errlen)
{
	ops_fit(&ops.next);
	if (rl_config_check(&ops.next, err, errlen))
		return -EINVAL;
	/* The last step that can fail: the key files are read (again) and the
	 * new set published. */
	if (rl_auth_reload(&ops.next, err, errlen))
		return -EINVAL;
	for (size_t i = 0; i < rl_options_count; i++) {
		const struct rl_option *o = &rl_options[i];
		if (!o->reloadable)
			continue;
		char *dst = (char *)ops.running + o->off;
		const char *src = (const char *)&ops.next + o->off;
		if (o->type == RL_OPT_BOOL)
			__atomic_store_n((bool *)dst, *(const bool *)src, __ATOMIC_RELAXED);
		else if (o->type == RL_OPT_STRING || o->type == RL_OPT_LIST)
			memcpy(dst, src, o->max); /* workers never read these (options.h) */
		else
			__atomic_store_n((uint64_t *)dst, *(const uint64_t *)src, __ATOMIC_RELAXED);
	}
	rl_log_set_level(ops.running->debug ? RL_LOG_DEBUG : (int)ops.running->log_level);
	ops_show(ops.running);
	return 0;
}

/* Warnings about the file itself: rare and they matter, so always written. */
static void ops_warn(const char *line)
{
	rl_log_write(RL_LOG_WARN, 0, "%s", line);
}

static const struct rl_config_ops ops_cfg_ops = {ops_known, ops_check,	ops_apply, ops_current,
						 ops_live,  ops_commit, ops_warn,  ops_list};

int rl_ops_configure(struct rl_config *cfg, const bool given[RL_OPTIONS_MAX])
{
	char err[768];
	memcpy(ops.held, given, sizeof(ops.held));
	if (cfg->config[0]) {
		ops.target = cfg;
		struct rl_config_ops startup = ops_cfg_ops;
		startup.commit = NULL;
		if (rl_config_load(cfg->config, &startup, err, sizeof(err))) {
			fprintf(stderr, "relayd: %s\n", err);
			return -1;
		}
		ops_fit(cfg);
		if (rl_config_check(cfg, err, sizeof(err))) {
			fprintf(stderr, "relayd: %s: %s\n", cfg->config, err);
			return -1;
		}
	}
	ops_show(cfg);
	return 0;
}

/* ---- SIGHUP ------------------------------------------------------------------- */

static void ops_reload_log(int is_error, const char *line)
{
	/* Reload lines are rare and matter whatever the level: always written. */
	rl_log_write(is_error ? RL_LOG_ERROR : RL_LOG_INFO, 0, "%s", line);
}

void rl_ops_reload(struct rl_config *cfg)
{
	char err[768];

	rl_notify_reloading();
	ops.next = *cfg;
	ops.target = &ops.next;
	ops.running = cfg;
	/* Without a config file the key files are still read again: replacing
	 * a key file and sending SIGHUP rolls the key. With one, the reload's
	 * commit reads them (ops_commit). */
	if (!rl_config_path() && rl_auth_on()) {
		if (rl_auth_reload(cfg, err, sizeof(err)))
			rl_log_write(RL_LOG_ERROR, 0, "auth: reload failed, the old keys stay: %s",
				     err);
	} else {
		rl_config_reload(&ops_cfg_ops, ops_reload_log);
	}
	rl_tls_reload(); /* the certificate files, whether or not --config is set */
	ops.target = cfg;
	rl_notify_ready(ops.status);
}

/* ---- admin hooks (admin thread) --------------------------------------------------- */

static void ops_options(rl_admin_kv_fn *fn, void *arg)
{
	char buf[1100];
	pthread_mutex_lock(&ops.shown_lock);
	for (size_t i = 0; i < rl_options_count; i++) {
		rl_option_format(&ops.shown, &rl_options[i], buf, sizeof(buf));
		fn(rl_options[i].name, buf, arg);
	}
	pthread_mutex_unlock(&ops.shown_lock);
}

struct ops_room_walk {
	rl_admin_room_fn *fn;
	void *arg;
};

static void ops_room_seen(const struct rl_room *r, void *arg)
{
	struct ops_room_walk *w = arg;
	size_t len;
	const uint8_t *name = rl_room_name(r, &len);
	long members = rl_room_members(r);
	if (members > 0) /* a dying room (0) is on its way out of the table */
		w->fn((const char *)name, len, (uint64_t)members, w->arg);
}

/* Admin thread (registered, offline): online only for the walk, so an idle
 * admin endpoint never holds up a grace period. */
static void ops_rooms(rl_admin_room_fn *fn, void *arg)
{
	struct ops_room_walk w = {fn, arg};
	rl_rcu_online();
	rl_rooms_foreach(ops_room_seen, &w);
	rl_rcu_offline();
}

/* Readers of the PROCESS rows relay/room.c keeps (base/stats_list.h). */
static uint64_t ops_rooms_gauge(void)
{
	long n = rl_rooms_count();
	return n > 0 ? (uint64_t)n : 0;
}

static uint64_t ops_memberships_gauge(void)
{
	long n = rl_rooms_memberships();
	return n > 0 ? (uint64_t)n : 0;
}

/* The client memory budget's accounted total (net/budget.c) and the budget
 * in force (reloadable: the copy shown by /stats). */
static uint64_t ops_client_mem_gauge(void)
{
	return rl_budget_client_mem(NULL);
}

static uint64_t ops_mem_budget_gauge(void)
{
	pthread_mutex_lock(&ops.shown_lock);
	uint64_t v = ops.shown.max_client_mem;
	pthread_mutex_unlock(&ops.shown_lock);
	return v;
}

/* ---- admin endpoint access ------------------------------------------------------------ */

/* Reads --admin-token-file: its bytes less one trailing newline, printable
 * ASCII without spaces (it travels in an HTTP header), 16..1024 bytes.
 * 0, or -1 after printing one line naming the file. */
static int ops_admin_token(const char *path)
{
	char *t = ops.admin_token;
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "relayd: --admin-token-file %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t n = fread(t, 1, sizeof(ops.admin_token) - 1, f);
	fclose(f);
	t[n] = '\0';
	if (n && t[n - 1] == '\n')
		t[--n] = '\0';
	const char *why = NULL;
	if (n > OPS_ADMIN_TOKEN_MAX)
		why = "longer than 1024 bytes";
	else if (n < 16)
		why = "shorter than 16 bytes";
	for (size_t i = 0; i < n && !why; i++)
		if (t[i] <= ' ' || t[i] > '~')
			why = "holds a byte that is not printable ASCII (or a space)";
	if (why) {
		memset(t, 0, sizeof(ops.admin_token));
		fprintf(stderr, "relayd: --admin-token-file %s: the token %s\n", path, why);
		return -1;
	}
	return 0;
}

/* Whether the admin endpoint bound <bound> ("HOST:PORT", "[V6]:PORT") is a
 * loopback address. */
static bool ops_admin_loopback(const char *bound)
{
	return strncmp(bound, "127.", 4) == 0 || strncmp(bound, "[::1]:", 6) == 0 ||
	       strncmp(bound, "[::ffff:127.", 12) == 0;
}

/* The gauges read at scrape time from their owners: registered (<on>) at
 * start, removed at stop. */
static void ops_set_gauges(bool on)
{
	static const struct {
		enum rl_stat_id id;
		rl_stats_reader_fn *fn;
	} gauges[] = {
		{RL_STAT_ID(rooms), ops_rooms_gauge},
		{RL_STAT_ID(memberships), ops_memberships_gauge},
		{RL_STAT_ID(client_mem), ops_client_mem_gauge},
		{RL_STAT_ID(mem_budget), ops_mem_budget_gauge},
		{RL_STAT_ID(hist_bytes), rl_hist_bytes},
		{RL_STAT_ID(hist_messages), rl_hist_messages},
		{RL_STAT_ID(rooms_retained), rl_hist_retained},
	};
	for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
		rl_stats_set_reader(gauges[i].id, on ? gauges[i].fn : NULL);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

int rl_ops_start(const struct rl_config *cfg, unsigned nworkers, uint16_t port)
{
	char err[512], bound[80];
	bool v6 = strchr(cfg->host, ':') != NULL;
	if (rl_metrics_init(nworkers)) {
		fprintf(stderr, "relayd: out of memory\n");
		return -1;
	}
	ops_set_gauges(true);
	snprintf(ops.listen, sizeof(ops.listen), "%s%s%s:%u", v6 ? "[" : "", cfg->host,
		 v6 ? "]" : "", (unsigned)port);
	snprintf(ops.status, sizeof(ops.status), "listening on %s (%u workers)", ops.listen,
		 nworkers);
	if (!cfg->admin[0])
		return 0;
	if (cfg->admin_token_file[0] && ops_admin_token(cfg->admin_token_file))
		return -1;
	if (rl_admin_open(cfg->admin, bound, sizeof(bound), err, sizeof(err))) {
		fprintf(stderr, "relayd: %s\n", err);
		return -1;
	}
	if (!ops.admin_token[0] && !ops_admin_loopback(bound))
		rl_log_write(RL_LOG_WARN, 0,
			     "admin: %s is not a loopback address and --admin-token-file is not "
			     "set: anyone who can reach it can read /metrics, /stats and /rooms",
			     bound);
	struct rl_admin_hooks h = {.version = RL_VERSION,
				   .listen = ops.listen,
				   .bearer = ops.admin_token[0] ? ops.admin_token : NULL,
				   .options = ops_options,
				   .rooms = ops_rooms,
				   .cluster = rl_cluster_health};
	int rc = rl_admin_start(&h);
	if (rc) {
		fprintf(stderr, "relayd: --admin %s: cannot start: %s\n", cfg->admin,
			strerror(-rc));
		return -1;
	}
	return 0;
}

void rl_ops_ready(void)
{
	rl_notify_ready(ops.status);
}

void rl_ops_stopping(void)
{
	rl_metrics_set_shutdown();
	rl_notify_stopping();
}

void rl_ops_stop(void)
{
	rl_admin_stop();
	memset(ops.admin_token, 0, sizeof(ops.admin_token));
	ops_set_gauges(false);
	rl_metrics_fini();
	rl_config_fini();
}
