/* worker.c -- a worker thread and its loop turn.
 * Threading: each worker runs worker_main on its own thread, owns its
 * listeners, epoll set, connections and timers, and is a registered
 * urcu-qsbr reader: online while it works, offline while it sleeps in
 * epoll_wait, one quiescent state per turn. Other threads reach it only
 * through rl_inbox_push/kick and the atomic rl_srv.stopping flag.
 *
 * One turn: offline -> epoll_wait -> online -> dispatch ready fds -> read
 * connections left over from the last turn's budget -> drain the inbox
 * (bounded) -> timers -> flush pending output (one batched write each) ->
 * close the marked connections -> quiescent state.
 *
 * This is where the layers meet: the turn calls the connection layer's
 * steps (net/conn.h) by name, and anything above it only through function
 * types registered at start-up (inbox item handlers), never by include. */
#include "loop/worker.h"

#include "base/clock.h"
#include "net/conn.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WORKER_EVENTS 512
#define WORKER_ACCEPTS_PER_TURN 64 /* per listener */
#define WORKER_INBOX_BATCH 4096
#define WORKER_MAX_SLEEP_MS 1000
#define WORKER_STOP_ACCEPTS 4096 /* backlog taken over at shutdown, per listener */

struct rl_server rl_srv;

typedef void (*src_fn)(struct rl_worker *w, void *ptr, uint32_t bits);

int rl_worker_init(struct rl_worker *w, unsigned id)
{
	int rc;
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->isrc = RL_SRC_INBOX;
	w->loop.epfd = -1;
	w->inbox.efd = -1;
	w->stats = rl_stats_slot(id);
	rl_conn_worker_init(w);
	w->scratch = malloc(RL_SCRATCH_BYTES);
	w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (!w->scratch)
		return -ENOMEM;
	if ((rc = rl_evloop_init(&w->loop, WORKER_EVENTS)) || (rc = rl_inbox_init(&w->inbox)))
		return rc;
	return rl_evloop_add(&w->loop, w->inbox.efd, RL_EV_IN, &w->isrc);
}

int rl_worker_listen(struct rl_worker *w, int fd, const struct rl_transport *tp, const char *name)
{
	if (w->nlisteners == RL_MAX_LISTENERS) {
		close(fd);
		return -ENOSPC;
	}
	struct rl_listener *l = &w->listeners[w->nlisteners++];
	l->src = RL_SRC_LISTEN;
	l->fd = fd;
	l->tp = tp;
	l->name = name;
	return rl_evloop_add(&w->loop, fd, RL_EV_IN, l);
}

/* Takes <l> out of the loop and closes it. */
static void worker_unlisten(struct rl_worker *w, struct rl_listener *l)
{
	if (l->fd < 0)
		return;
	rl_evloop_del(&w->loop, l->fd);
	close(l->fd);
	l->fd = -1;
}

void rl_worker_fini(struct rl_worker *w)
{
	for (unsigned i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].fd >= 0)
			close(w->listeners[i].fd);
	if (w->reserve_fd >= 0)
		close(w->reserve_fd);
	rl_evloop_fini(&w->loop);
	rl_inbox_fini(&w->inbox);
	rl_segpool_fini(&w->pool);
	free(w->scratch);
}

void rl_workers_stop(void)
{
	__atomic_store_n(&rl_srv.stopping, 1, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < rl_srv.nworkers; i++)
		rl_inbox_kick(&rl_srv.workers[i].inbox);
}

/* ---- accept ---------------------------------------------------------------- */

/* Out of descriptors: free the reserve, accept and close one connection
 * pending on <l> so its client sees a close instead of hanging in the backlog. */
static void worker_emfile(struct rl_worker *w, struct rl_listener *l, int err)
{
	uint64_t suppressed;
	if (w->reserve_fd >= 0) {
		close(w->reserve_fd);
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			RL_STAT_ADD(w->stats, refused_emfile, 1);
		}
		w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	if (rl_ratelimit_ok(&w->emfile_rl, w->now_ms, 1000, &suppressed))
		RL_WARNF(0, "accept: %s; refusing connections (%llu more since last report)",
			 strerror(err), (unsigned long long)suppressed);
}

/* Readiness of listener <ptr>: accepts up to the per-turn bound. */
static void worker_accept(struct rl_worker *w, void *ptr, uint32_t bits)
{
	struct rl_listener *l = ptr;
	(void)bits;
	for (int i = 0; i < WORKER_ACCEPTS_PER_TURN && l->fd >= 0; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			int e = errno;
			uint64_t suppressed;
			if (e == EAGAIN || e == EWOULDBLOCK)
				return;
			if (e == EINTR || e == ECONNABORTED || e == EPROTO)
				continue;
			if (e == EMFILE || e == ENFILE) {
				worker_emfile(w, l, e);
				if (w->reserve_fd < 0)
					return;
				continue;
			}
			if (rl_ratelimit_ok(&w->accept_rl, w->now_ms, 1000, &suppressed))
				RL_WARNF(0, "accept (%s): %s", l->name, strerror(e));
			return;
		}
		bool ok = rl_stats_conn_try_add(RL_CFG(max_conns));
		rl_conn_new(w, fd, l->tp, !ok);
	}
	/* The listener is level-triggered: what is left shows up next turn. */
}

/* ---- event dispatch ----------------------------------------------------------- */

static void worker_inbox_ready(struct rl_worker *w, void *ptr, uint32_t bits)
{
	(void)ptr;
	(void)bits;
	rl_inbox_reset(&w->inbox); /* before draining: see inbox.h */
	w->inbox_more = true;
}

static void worker_conn_event(struct rl_worker *w, void *ptr, uint32_t bits)
{
	(void)w;
	rl_conn_on_event(ptr, bits);
}

static const src_fn src_handlers[RL_SRC_NKINDS] = {
	[RL_SRC_CONN] = worker_conn_event,
	[RL_SRC_LISTEN] = worker_accept,
	[RL_SRC_INBOX] = worker_inbox_ready,
};

static void worker_dispatch(struct rl_worker *w, int n)
{
	for (int i = 0; i < n; i++) {
		void *ptr = w->loop.ready[i].ptr;
		src_handlers[*(uint32_t *)ptr](w, ptr, w->loop.ready[i].bits);
	}
}

/* ---- inbox ------------------------------------------------------------------------ */

/* Registered by the layers that push items (rl_worker_set_inbox_handler),
 * before any worker runs; read-only after. */
static rl_inbox_fn *inbox_handlers[RL_INBOX_NKINDS];

void rl_worker_set_inbox_handler(enum rl_inbox_kind kind, rl_inbox_fn *fn)
{
	assert(kind < RL_INBOX_NKINDS && fn);
	inbox_handlers[kind] = fn;
}

static void worker_drain_inbox(struct rl_worker *w)
{
	uint64_t n = 0;
	if (!w->inbox_more)
		return;
	for (; n < WORKER_INBOX_BATCH; n++) {
		struct rl_inbox_item *it = rl_inbox_pop(&w->inbox);
		if (!it) {
			w->inbox_more = false;
			break;
		}
		inbox_handlers[it->kind](w, it);
	}
	rl_inbox_done(&w->inbox, n);
	RL_STAT_ADD(w->stats, inbox_items, n);
}

/* ---- shutdown ---------------------------------------------------------------------------- */

static void worker_begin_stop(struct rl_worker *w)
{
	w->stopping = true;
	w->stop_deadline = w->now_ms + RL_CFG(grace_ms);
	/* Closing a listener resets the connections in its accept queue: take
	 * them first, so they get SERVER_SHUTDOWN like everybody else. */
	for (unsigned k = 0; k < w->nlisteners; k++) {
		struct rl_listener *l = &w->listeners[k];
		for (int i = 0; i < WORKER_STOP_ACCEPTS && l->fd >= 0; i++) {
			int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd == -1)
				break;
			rl_conn_new(w, fd, l->tp, !rl_stats_conn_try_add(RL_CFG(max_conns)));
		}
		worker_unlisten(w, l);
	}
	rl_conn_shutdown_all(w, w->stop_deadline);
}

static void worker_check_stop(struct rl_worker *w)
{
	if (!w->stopping) {
		if (__atomic_load_n(&rl_srv.stopping, __ATOMIC_SEQ_CST))
			worker_begin_stop(w);
		return;
	}
	if (w->now_ms < w->stop_deadline)
		return;
	rl_conn_kill_all(w);
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* Whether any other worker has more than RL_INBOX_HIGH items waiting. */
static bool worker_peers_backlogged(const struct rl_worker *w)
{
	for (unsigned k = 0; k < rl_srv.nworkers; k++)
		if (k != w->id && rl_inbox_backlog(&rl_srv.workers[k].inbox) > RL_INBOX_HIGH)
			return true;
	return false;
}

static int worker_timeout(struct rl_worker *w)
{
	if (w->throttled && !cds_list_empty(&w->read_list))
		return 1; /* reads deferred: poll again soon, do not spin */
	if (w->inbox_more || w->dead || !cds_list_empty(&w->read_list) ||
	    !cds_list_empty(&w->flush_list))
		return 0;
	long t = rl_timers_next(w->timers, RL_WORKER_NTIMERS, w->now_ms);
	if (w->stopping) {
		long s = w->stop_deadline > w->now_ms ? (long)(w->stop_deadline - w->now_ms) : 0;
		if (t < 0 || s < t)
			t = s;
	}
	if (t < 0 || t > WORKER_MAX_SLEEP_MS)
		t = WORKER_MAX_SLEEP_MS;
	return (int)t;
}

static bool worker_turn(struct rl_worker *w)
{
	int timeout = worker_timeout(w);

	rl_rcu_offline();
	int n = rl_evloop_wait(&w->loop, timeout);
	rl_rcu_online();
	w->now_ms = rl_clock_ms();
	if (n < 0) {
		RL_ERRORF(0, "epoll_wait: %s", strerror(-n));
		n = 0;
	}
	worker_check_stop(w);
	w->throttled = rl_srv.nworkers > 1 && worker_peers_backlogged(w);
	worker_dispatch(w, n);
	rl_conn_read_deferred(w);
	worker_drain_inbox(w);
	rl_timers_run(w->timers, RL_WORKER_NTIMERS, w->now_ms);
	rl_conn_flush_pending(w);
	rl_conn_close_marked(w);
	rl_rcu_quiescent();
	return !(w->stopping && w->nconns == 0);
}

/* After the last connection closed: drop what is still queued for us. */
static void worker_drain_rest(struct rl_worker *w)
{
	w->inbox_more = true;
	while (w->inbox_more)
		worker_drain_inbox(w);
}

static void *worker_main(void *arg)
{
	struct rl_worker *w = arg;
	uint64_t one = 1;

	rl_log_worker = (int)w->id;
	rcu_register_thread();
	w->now_ms = rl_clock_ms();
	while (worker_turn(w))
		;
	worker_drain_rest(w);
	rl_rcu_quiescent();
	rcu_unregister_thread();
	ssize_t n = write(rl_srv.done_efd, &one, sizeof(one));
	(void)n;
	return NULL;
}

int rl_worker_start(struct rl_worker *w)
{
	for (unsigned k = 0; k < RL_INBOX_NKINDS; k++)
		assert(inbox_handlers[k] && "rl_worker_set_inbox_handler before the workers start");
	int rc = pthread_create(&w->thread, NULL, worker_main, w);
	return -rc;
}
