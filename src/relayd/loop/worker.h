/* worker.h -- a worker thread: its listeners, epoll loop, inbox, connections,
 * timers and counters. The struct is shared by the worker's own modules
 * (conn.c, handler.c, fanout.c); other threads touch only <inbox>
 * (push/kick) and <stats> (atomic loads).
 * Threading: one struct per worker thread; see worker.c for the loop turn. */
#ifndef RL_WORKER_H
#define RL_WORKER_H

#include "loop/evloop.h"
#include "loop/inbox.h"
#include "loop/timer.h"
#include "base/log.h"
#include "base/options.h"
#include "net/outq.h"
#include "base/stats.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <urcu/list.h>

/* First field of everything registered with the evloop. */
enum rl_src_kind { RL_SRC_CONN = 0, RL_SRC_LISTEN, RL_SRC_INBOX, RL_SRC_NKINDS };

#define RL_SCRATCH_BYTES 65536u
#define RL_MAX_LISTENERS 4 /* per worker: one per kind (plain TCP; TLS, WebSocket later) */
#define RL_WORKER_NTIMERS 7 /* RL_CONN_NTIMERS (net/conn.h), then relay/auth.h's two */
/* Local fan-out per loop turn: members visited by the publishes of this
 * worker's own connections (relay/fanout.c counts them in <fanout_work>).
 * Once it is spent, connections that publish are not parsed further this
 * turn (net/conn.c keeps their bytes); one MESSAGE of a 128 KiB read to a
 * room with 10,000 members here is 10,000 copies, thousands of them would
 * stall the turn (no reads, no timers, no grace period) for seconds. The
 * inbox drain has a budget of its own (worker.c). */
#define RL_WORKER_FANOUT_BUDGET 65536u

struct rl_conn;
struct rl_transport;

/* One listening socket of a worker: its own SO_REUSEPORT member of one
 * port's group. Connections accepted on it speak its transport. */
struct rl_listener {
	uint32_t src;                  /* RL_SRC_LISTEN; first field (evloop tag) */
	int fd;                        /* -1 once shutdown began */
	const struct rl_transport *tp; /* handed to every connection it accepts */
	const char *name;              /* kind, for log lines: "tcp" */
};

struct rl_worker {
	unsigned id;
	pthread_t thread;
	struct rl_listener listeners[RL_MAX_LISTENERS];
	unsigned nlisteners;
	int reserve_fd;             /* spare descriptor for EMFILE; -1 if in use or lost */
	uint32_t accept_backoff_ms; /* EMFILE without a reserve: the last backoff (0: none) */
	uint64_t accept_resume_ms;  /* listeners out of the loop until then (0: they are in) */
	uint32_t isrc;              /* evloop tag for the inbox */
	struct rl_evloop loop;
	struct rl_inbox inbox;
	struct rl_stats *stats;
	struct rl_segpool pool;
	uint8_t *scratch;           /* RL_SCRATCH_BYTES, the read buffer of every conn */
	uint64_t now_ms;            /* CLOCK_MONOTONIC, refreshed each loop turn */
	uint64_t t_read_ns;         /* CLOCK_MONOTONIC of the last successful read */
	/* The timer lists the loop turn runs, in this order: the connection
	 * layer's (enum rl_conn_timer in conn.h; conn.c sets them up and arms
	 * them), then the protocol layer's (enum rl_auth_timer in relay/auth.h:
	 * HELLO deadline, token expiry; set up by rl_auth_worker_init). */
	struct rl_timer_list timers[RL_WORKER_NTIMERS];
	/* The connection layer's work lists for the current turn (conn.c
	 * fills and empties them; the loop only asks whether they are empty). */
	struct cds_list_head flush_list;   /* conns with output to write */
	struct cds_list_head read_list;    /* conns that hit their read budget */
	/* Publishers waiting for the next turn's fan-out budget (rlink), read
	 * before the ready sockets, in turn (conn.c, rl_conn_read_fanout_wait). */
	struct cds_list_head fanout_wait;
	uint64_t fanout_work;              /* this turn's local fan-out, in members visited */
	/* paused[k]: conns not read until worker k's inbox backlog is below
	 * RL_INBOX_LOW (rlink; RL_CF_PAUSED); <paused_mask> has bit k while
	 * paused[k] may be non-empty. */
	struct cds_list_head paused[RL_MAX_WORKERS];
	uint64_t paused_mask;
	/* Inboxes (a bit per worker) this worker pushed to while they were
	 * empty and has not kicked yet (rl_inbox_push_later); kicked before the
	 * turn's flush and at its end, so never owed across a sleep. */
	uint64_t kick_owed;
	struct rl_conn *dead;              /* marked for close (singly linked) */
	bool inbox_more;                   /* the last drain stopped at its batch bound */
	bool accept_more;                  /* the last accept loop stopped at its bound */
	bool stopping;                     /* shutdown began on this worker */
	/* The client memory budget (net/budget.c; conn.c holds reads). */
	bool mem_over;                     /* the last sum was over --max-client-memory */
	struct cds_list_head held_list;    /* conns whose reads wait for memory (RL_CF_HELD) */
	uint64_t mem_sum_ms;               /* last sum of every worker's share */
	uint64_t mem_sum_own;              /* this worker's share then */
	uint64_t mem_scan_ms;              /* last look for the largest queues */
	uint64_t mem_scan_total;           /* the total then */
	uint64_t mem_trim_ms;              /* last time memory was given back */
	uint64_t mem_freed;                /* bytes dropped or closed since then */
	uint64_t stop_deadline;
	uint64_t nconns;
	/* Log lines that can come in bursts: one a second per kind (log.h). */
	struct rl_ratelimit emfile_rl;
	struct rl_ratelimit accept_rl;
	struct rl_ratelimit full_rl; /* SERVER_FULL refusals */
	struct rl_ratelimit slow_rl; /* slow consumers dropped (conn.c) */
};

struct rl_server {
	struct rl_config cfg;
	unsigned nworkers;
	struct rl_worker *workers;
	uint64_t next_conn_id; /* atomic */
	int stopping;          /* atomic: SIGTERM/SIGINT received */
	int done_efd;          /* workers signal their exit here */
};

extern struct rl_server rl_srv;

/* Reads a reloadable option (struct rl_option.reloadable): a SIGHUP reload
 * stores them from the main thread with relaxed atomics while workers run. */
#define RL_CFG(f) __atomic_load_n(&rl_srv.cfg.f, __ATOMIC_RELAXED)

/* Sets up worker <id>, with no listener yet. Main thread. 0 or -errno. */
int rl_worker_init(struct rl_worker *w, unsigned id);
/* Gives listening socket <fd> to <w>, which owns it from here on even when
 * this fails: connections accepted on it will speak <tp>; <name> (static)
 * names the kind in log lines. Main thread, before rl_worker_start.
 * 0 or -errno (-ENOSPC beyond RL_MAX_LISTENERS). */
int rl_worker_listen(struct rl_worker *w, int fd, const struct rl_transport *tp, const char *name);
int rl_worker_start(struct rl_worker *w);
/* After the thread was joined. */
void rl_worker_fini(struct rl_worker *w);
/* Any thread: asks every worker to begin graceful shutdown. */
void rl_workers_stop(void);

/* Registers the handler for items of <kind> (rl_inbox_fn, inbox.h: it
 * returns the deliveries it made, counted against the turn's budget); the
 * layer that pushes them provides it (relay/fanout.c: RL_INBOX_FANOUT).
 * Main thread, once per kind, before any worker starts (rl_worker_start
 * asserts every kind has one). */
void rl_worker_set_inbox_handler(enum rl_inbox_kind kind, rl_inbox_fn *fn);

#endif
