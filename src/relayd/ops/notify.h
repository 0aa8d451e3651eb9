/* notify.h -- service manager notifications (systemd sd_notify).
 * Threading: main thread only (startup, signal handling, shutdown).
 * Built without libsystemd (meson -Dsystemd=disabled) every call is a no-op;
 * with it, calls are no-ops unless NOTIFY_SOCKET is set (not under systemd). */
#ifndef RL_NOTIFY_H
#define RL_NOTIFY_H

#include <stdbool.h>

/* Whether this build can notify (compiled with libsystemd). */
bool rl_notify_supported(void);
/* READY=1 with a STATUS= line. Call after every listener is bound (and the
 * admin endpoint, when enabled), so that a supervisor's "started" means
 * connections are accepted. */
void rl_notify_ready(const char *status);
/* RELOADING=1 when SIGHUP handling starts; rl_notify_ready again when done. */
void rl_notify_reloading(void);
/* STOPPING=1 when graceful shutdown begins. */
void rl_notify_stopping(void);
/* STATUS=<text> only. */
void rl_notify_status(const char *status);

#endif /* RL_NOTIFY_H */
