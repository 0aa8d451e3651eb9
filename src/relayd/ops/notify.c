/* notify.c -- sd_notify(3) messages for Type=notify units.
 * Threading: main thread only. */
#include "ops/notify.h"

#include <stdio.h>

#ifdef RL_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

static void notify_send(const char *state, const char *status)
{
	int rc;
	if (status && !*state)
		rc = sd_notifyf(0, "STATUS=%s", status);
	else if (status)
		rc = sd_notifyf(0, "%s\nSTATUS=%s", state, status);
	else
		rc = sd_notify(0, state);
	if (rc < 0)
		fprintf(stderr, "relayd: sd_notify(%s) failed: error %d\n", state, -rc);
}

bool rl_notify_supported(void)
{
	return true;
}
#else
static void notify_send(const char *state, const char *status)
{
	(void)state;
	(void)status;
}

bool rl_notify_supported(void)
{
	return false;
}
#endif

void rl_notify_ready(const char *status)
{
	notify_send("READY=1", status);
}

void rl_notify_reloading(void)
{
	notify_send("RELOADING=1", "reloading configuration");
}

void rl_notify_stopping(void)
{
	notify_send("STOPPING=1", "shutting down: draining connections");
}

void rl_notify_status(const char *status)
{
	if (status)
		notify_send("", status);
}
