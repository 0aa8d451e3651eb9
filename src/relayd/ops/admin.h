/* admin.h -- the operator's HTTP endpoint (--admin HOST:PORT): /health,
 * /metrics (Prometheus text), /stats (JSON), /rooms?limit=N (JSON); with a
 * bearer token set, all but /health answer 401 without it.
 *
 * Threading: rl_admin_open/start/stop are called from the main thread.
 * Requests are served by one admin thread of its own (libmicrohttpd driven by
 * an external epoll loop), never by a worker: a scrape costs the workers
 * nothing but the relaxed loads of their counters. The admin thread is a
 * registered QSBR reader, offline except inside the rooms hook. */
#ifndef RL_ADMIN_H
#define RL_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called once per option, in table order: its long name and current value as text. */
typedef void rl_admin_kv_fn(const char *name, const char *value, void *arg);
/* Called once per room with its name (<len> bytes, not NUL-terminated) and member count. */
typedef void rl_admin_room_fn(const char *name, size_t len, uint64_t members, void *arg);

struct rl_admin_hooks {
	const char *version; /* server version for /stats and relay_build_info */
	const char *listen;  /* "HOST:PORT" of the relay listener, for /stats */
	/* The token /metrics, /stats and /rooms require as "Authorization:
	 * Bearer <token>" (compared in constant time); NULL: they are open.
	 * /health is always open. */
	const char *bearer;
	/* Lists the options in force; NULL: /stats has none. Admin thread. */
	void (*options)(rl_admin_kv_fn *fn, void *arg);
	/* Walks the rooms; NULL: /rooms is empty. Runs on the admin thread, a
	 * registered urcu-qsbr thread that is OFFLINE: the hook goes online
	 * around its walk and offline again before returning. */
	void (*rooms)(rl_admin_room_fn *fn, void *arg);
	/* The cluster bus link for /health ("up", "connecting", "down"), or
	 * NULL (or a NULL hook) when cluster mode is off; *<healthy> false
	 * makes /health answer 503. Any thread. */
	const char *(*cluster)(bool *healthy);
};

/* Parses "HOST:PORT", "[V6]:PORT" or ":PORT" (HOST = 127.0.0.1) into <host>
 * and <port>. 0 or -EINVAL. */
int rl_admin_parse_addr(const char *s, char *host, size_t hostlen, char *port, size_t portlen);

/* Binds and listens on <addr> so that a bad address or a taken port fails at
 * startup. Writes the bound "HOST:PORT" to <bound>. On failure returns
 * -errno and writes a one-line reason to <err>. Main thread. */
int rl_admin_open(const char *addr, char *bound, size_t boundlen, char *err, size_t errlen);

/* Starts serving on the socket rl_admin_open bound, with <hooks> (copied;
 * the strings and functions must stay valid until rl_admin_stop). Prints
 * "relayd admin on HOST:PORT" to stdout, flushed. 0 or -errno. */
int rl_admin_start(const struct rl_admin_hooks *hooks);

/* Stops the admin thread and closes the socket. Safe if never opened. */
void rl_admin_stop(void);

#endif /* RL_ADMIN_H */
