/* ops.h -- glue between relayd's core and its operations modules: the
 * config file (config.c), the admin endpoint (admin.c, metrics.c, expo.c)
 * and service-manager notifications (notify.c). main.c calls these at
 * fixed points; nothing else in the core knows the operations modules.
 *
 * Threading: every rl_ops_* function runs on the main thread. The admin
 * thread reaches the core only through what is installed here: the counters
 * (base/stats.h: relaxed loads of the worker slots, and the room gauges
 * through the readers rl_ops_start registers), the room table (as an online
 * QSBR reader) and a mutex-protected copy of the options in force. */
#ifndef RL_OPS_H
#define RL_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/options.h"

/* After rl_options_parse: applies --config FILE under the precedence
 * command line > environment > file > defaults, then re-checks the
 * cross-option rules. <given> is what rl_options_parse handed out (the
 * options set by the command line or environment: the file never overrides
 * them, now or at a reload). Prints "relayd: FILE:LINE: message" and returns
 * -1 on error (exit 1). */
int rl_ops_configure(struct rl_config *cfg, const bool given[RL_OPTIONS_MAX]);

/* After the listeners are bound and the stats/rooms exist, before the
 * listening line: counters source, admin endpoint (prints "relayd admin on
 * HOST:PORT" when --admin is set). Prints a reason and returns -1 on error. */
int rl_ops_start(const struct rl_config *cfg, unsigned nworkers, uint16_t port);

/* After the listening line: READY=1 to the service manager. */
void rl_ops_ready(void);

/* First thing when graceful shutdown begins: /health turns 503, STOPPING=1. */
void rl_ops_stopping(void);

/* SIGHUP: re-reads the config file, applies what may change live to <cfg>
 * (the running configuration), logs what changed and what needs a restart. */
void rl_ops_reload(struct rl_config *cfg);

/* After the workers were joined, before the rooms and stats are torn down:
 * stops the admin endpoint and frees what the ops modules hold. */
void rl_ops_stop(void);

#endif /* RL_OPS_H */
