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

#include "ops/admin.h"
#include "ops/config.h"
#include "base/log.h"
#include "ops/metrics.h"
#include "ops/notify.h"
#include "base/options.h"
#include "base/rcu.h"
#include "relay/room.h"
#include "base/stats.h"

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
	for (size_t i = 0; i < rl_options_count; i++) {
		const struct rl_option *o = &rl_options[i];
		if (!o->reloadable)
			continue;
		char *dst = (char *)ops.running + o->off;
		const char *src = (const char *)&ops.next + o->off;
		if (o->type == RL_OPT_BOOL)
			__atomic_store_n((bool *)dst, *(const bool *)src, __ATOMIC_RELAXED);
		else if (o->type != RL_OPT_STRING)
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
						 ops_live,  ops_commit, ops_warn};

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
	rl_notify_reloading();
	ops.next = *cfg;
	ops.target = &ops.next;
	ops.running = cfg;
	rl_config_reload(&ops_cfg_ops, ops_reload_log);
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

/* ---- lifecycle ----------------------------------------------------------------------- */

int rl_ops_start(const struct rl_config *cfg, unsigned nworkers, uint16_t port)
{
	char err[512], bound[80];
	bool v6 = strchr(cfg->host, ':') != NULL;
	if (rl_metrics_init(nworkers)) {
		fprintf(stderr, "relayd: out of memory\n");
		return -1;
	}
	rl_stats_set_reader(RL_STAT_ID(rooms), ops_rooms_gauge);
	rl_stats_set_reader(RL_STAT_ID(memberships), ops_memberships_gauge);
	snprintf(ops.listen, sizeof(ops.listen), "%s%s%s:%u", v6 ? "[" : "", cfg->host,
		 v6 ? "]" : "", (unsigned)port);
	snprintf(ops.status, sizeof(ops.status), "listening on %s (%u workers)", ops.listen,
		 nworkers);
	if (!cfg->admin[0])
		return 0;
	if (rl_admin_open(cfg->admin, bound, sizeof(bound), err, sizeof(err))) {
		fprintf(stderr, "relayd: %s\n", err);
		return -1;
	}
	struct rl_admin_hooks h = {.version = RL_VERSION,
				   .listen = ops.listen,
				   .options = ops_options,
				   .rooms = ops_rooms};
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
	rl_stats_set_reader(RL_STAT_ID(rooms), NULL);
	rl_stats_set_reader(RL_STAT_ID(memberships), NULL);
	rl_metrics_fini();
	rl_config_fini();
}
