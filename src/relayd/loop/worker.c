/* worker.c -- a worker thread and its loop turn.
 * Threading: each worker runs worker_main on its own thread, owns its
 * listeners, epoll set, connections and timers, and is a registered
 * urcu-qsbr reader: online while it works, offline while it sleeps in
 * epoll_wait, one quiescent state per turn. Other threads reach it only
 * through rl_inbox_push/kick and the atomic rl_srv.stopping flag.
 *
 * One turn: offline -> epoll_wait -> online -> parse and read publishers
 * stopped for want of fan-out budget -> dispatch ready fds -> resume
 * paused connections whose target inbox drained -> read connections left
 * over from the last turn's budget -> drain the inbox (bounded in items and
 * deliveries) -> timers -> kick the inboxes this turn pushed to -> flush
 * pending output (one batched write each) -> the client memory budget ->
 * close the marked connections -> kick again for what closing pushed ->
 * quiescent state.
 *
 * This is where the layers meet: the turn calls the connection layer's
 * steps (net/conn.h) by name, and anything above it only through function
 * types registered at start-up (inbox item handlers), never by include. */
#include "loop/worker.h"

#include "base/clock.h"
#include "net/budget.h"
#include "net/conn.h"
#include "net/limit.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WORKER_EVENTS 512
#define WORKER_ACCEPTS_PER_TURN 64 /* per listener */
#define WORKER_INBOX_BATCH 4096 /* inbox items per turn */
/* Deliveries (members visited) per turn from the inbox: 4096 items for a
 * room with 10,000 members here would be 41 M copies in one turn, during
 * which nothing is read, no timer runs and RCU grace periods wait. */
#define WORKER_DELIVERY_BUDGET 65536
#define WORKER_MAX_SLEEP_MS 1000
#define WORKER_STOP_ACCEPTS 4096 /* backlog taken over at shutdown, per listener */
#define WORKER_BACKOFF_MIN_MS 10   /* EMFILE with no reserve: listeners off this long, */
#define WORKER_BACKOFF_MAX_MS 1000 /* doubling up to this */
#define WORKER_MEM_SLEEP_MS 10 /* over the client memory budget: look at it this often */

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

/* Descriptors are process-wide: a slot one worker frees by closing its
 * reserve could be taken by another worker's accept, leaving the first
 * without a reserve. Every accept of a worker and every use of a reserve
 * hold this lock (a few microseconds of syscall), so the slot a worker
 * frees is the one its own accept gets back. */
static pthread_mutex_t worker_fd_lock = PTHREAD_MUTEX_INITIALIZER;

static int worker_accept4(int lfd, struct sockaddr_storage *peer)
{
	socklen_t len = sizeof(*peer);
	peer->ss_family = AF_UNSPEC;
	pthread_mutex_lock(&worker_fd_lock);
	int fd = accept4(lfd, (struct sockaddr *)peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int e = errno;
	pthread_mutex_unlock(&worker_fd_lock);
	errno = e;
	return fd;
}

/* Takes the reserve descriptor back if it is missing. Returns whether we
 * hold one. */
static bool worker_reserve_take(struct rl_worker *w)
{
	if (w->reserve_fd < 0) {
		pthread_mutex_lock(&worker_fd_lock);
		w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		pthread_mutex_unlock(&worker_fd_lock);
	}
	return w->reserve_fd >= 0;
}

/* Out of descriptors on <l>: frees the reserve, accepts and closes one
 * pending connection so its client sees a close instead of hanging in the
 * backlog, and takes the reserve back. Returns 1 when a client was refused,
 * 0 when none was pending, -1 when there is no reserve to do it with (none
 * held, or another thread took the slot). */
static int worker_refuse(struct rl_worker *w, struct rl_listener *l)
{
	int rc = -1;
	if (w->reserve_fd < 0)
		return -1;
	pthread_mutex_lock(&worker_fd_lock);
	close(w->reserve_fd);
	int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		RL_STAT_ADD(w->stats, refused_emfile, 1);
		rc = 1;
	} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
		rc = 0;
	}
	w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pthread_mutex_unlock(&worker_fd_lock);
	return w->reserve_fd < 0 ? -1 : rc;
}

/* No descriptor to refuse with: takes every listener of <w> out of the
 * loop for a while (10 ms, doubling up to 1 s, as NATS does; nginx also
 * stops accepting), so a listener that stays readable cannot make the
 * worker spin. worker_accept_resume puts them back. */
static void worker_accept_pause(struct rl_worker *w)
{
	for (unsigned k = 0; k < w->nlisteners; k++)
		if (w->listeners[k].fd >= 0)
			rl_evloop_del(&w->loop, w->listeners[k].fd);
	w->accept_backoff_ms =
	    w->accept_backoff_ms ? w->accept_backoff_ms * 2 : WORKER_BACKOFF_MIN_MS;
	if (w->accept_backoff_ms > WORKER_BACKOFF_MAX_MS)
		w->accept_backoff_ms = WORKER_BACKOFF_MAX_MS;
	w->accept_resume_ms = w->now_ms + w->accept_backoff_ms;
	RL_STAT_ADD(w->stats, accept_backoffs, 1);
}

/* The turn's step after dispatch: once the backoff has run out, tries to
 * take the reserve back and listens again (the next failure backs off
 * longer). */
static void worker_accept_resume(struct rl_worker *w)
{
	if (w->accept_resume_ms == 0 || w->now_ms < w->accept_resume_ms)
		return;
	w->accept_resume_ms = 0;
	worker_reserve_take(w);
	for (unsigned k = 0; k < w->nlisteners; k++) {
		struct rl_listener *l = &w->listeners[k];
		if (l->fd >= 0 && rl_evloop_add(&w->loop, l->fd, RL_EV_IN, l))
			RL_ERRORF(0, "listen (%s) again: %s", l->name, strerror(errno));
	}
}

static void worker_emfile_log(struct rl_worker *w, int err, bool refusing)
{
	uint64_t suppressed;
	if (!rl_ratelimit_ok(&w->emfile_rl, w->now_ms, 1000, &suppressed))
		return;
	if (refusing)
		RL_WARNF(0, "accept: %s; refusing connections (%llu more since last report)",
			 strerror(err), (unsigned long long)suppressed);
	else
		RL_WARNF(0,
			 "accept: %s; no spare descriptor to refuse with, not accepting for %u ms "
			 "(%llu more since last report)",
			 strerror(err), w->accept_backoff_ms, (unsigned long long)suppressed);
}

static void worker_full_log(struct rl_worker *w)
{
	uint64_t more;
	if (rl_log_on(RL_LOG_WARN) && rl_ratelimit_ok(&w->full_rl, w->now_ms, 1000, &more))
		RL_WARNF(0,
			 "max-connections %" PRIu64 " reached: refusing with SERVER_FULL (%" PRIu64
			 " more since last report)",
			 RL_CFG(max_conns), more);
}

/* Serves or refuses accepted socket <fd> from <peer>, for every transport
 * alike: over --max-connections it gets SERVER_FULL, from an address that
 * holds --max-connections-per-ip it gets TOO_MANY_CONNECTIONS (the
 * transport renders the refusal: an ERROR frame, after the TLS handshake
 * over TLS); otherwise it is counted for its address until it closes. */
static void worker_admit(struct rl_worker *w, int fd, const struct rl_transport *tp,
			 const struct sockaddr_storage *peer)
{
	struct rl_limit_addr *addr = NULL;
	enum relay_err refuse = RELAY_ERR_NONE;

	if (!rl_stats_conn_try_add(RL_CFG(max_conns))) {
		worker_full_log(w);
		refuse = RELAY_ERR_SERVER_FULL;
	} else if ((refuse = rl_limit_admit(w, peer, &addr)) != RELAY_ERR_NONE) {
		rl_stats_conn_del(); /* not served: not in the gauge */
	}
	rl_limit_attach(rl_conn_new(w, fd, tp, refuse), addr);
}

/* Readiness of listener <ptr>: accepts up to the per-turn bound. */
static void worker_accept(struct rl_worker *w, void *ptr, uint32_t bits)
{
	struct rl_listener *l = ptr;
	(void)bits;
	for (int i = 0; i < WORKER_ACCEPTS_PER_TURN && l->fd >= 0; i++) {
		struct sockaddr_storage peer;
		int fd = worker_accept4(l->fd, &peer);
		if (fd == -1) {
			int e = errno;
			uint64_t suppressed;
			if (e == EAGAIN || e == EWOULDBLOCK) {
				w->accept_backoff_ms = 0; /* the backlog is empty: start over */
				return;
			}
			if (e == EINTR || e == ECONNABORTED || e == EPROTO)
				continue;
			if (e == EMFILE || e == ENFILE) {
				int rc = worker_refuse(w, l);
				if (rc < 0)
					worker_accept_pause(w);
				worker_emfile_log(w, e, rc >= 0);
				if (rc == 1)
					continue;
				return;
			}
			if (rl_ratelimit_ok(&w->accept_rl, w->now_ms, 1000, &suppressed))
				RL_WARNF(0, "accept (%s): %s", l->name, strerror(e));
			return;
		}
		w->accept_backoff_ms = 0;
		worker_admit(w, fd, l->tp, &peer);
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

/* Our backlog fell below RL_INBOX_LOW: wake the workers (a bit each in
 * <mask>) with connections paused on it. */
static void worker_wake(uint64_t mask)
{
	while (mask) {
		unsigned k = (unsigned)__builtin_ctzll(mask);
		mask &= mask - 1;
		rl_inbox_kick(&rl_srv.workers[k].inbox);
	}
}

/* The kicks this worker owes for its pushes of the turn (kick_owed). */
static void worker_kick_owed(struct rl_worker *w)
{
	uint64_t mask = w->kick_owed;
	w->kick_owed = 0;
	worker_wake(mask);
}

static void worker_drain_inbox(struct rl_worker *w)
{
	struct rl_inbox_drain d;
	if (!w->inbox_more)
		return;
	rl_inbox_drain(&w->inbox, inbox_handlers, w, WORKER_INBOX_BATCH, WORKER_DELIVERY_BUDGET,
		       &d);
	w->inbox_more = d.more; /* stopped at a bound: next turn's epoll timeout is 0 */
	RL_STAT_ADD(w->stats, inbox_items, d.items);
	worker_wake(d.waiters);
}

/* ---- rate-limited log lines ------------------------------------------------------ */

/* What each of the worker's rate limiters counts, for the summary line of
 * a burst (the first line of a burst is written where it happens). */
static const struct {
	size_t off; /* of the struct rl_ratelimit in struct rl_worker */
	int level;
	const char *what;
} worker_limiters[] = {
    {offsetof(struct rl_worker, emfile_rl), RL_LOG_WARN, "accept: out of descriptors"},
    {offsetof(struct rl_worker, accept_rl), RL_LOG_WARN, "accept failed"},
    {offsetof(struct rl_worker, full_rl), RL_LOG_WARN, "max-connections reached: refused"},
    {offsetof(struct rl_worker, slow_rl), RL_LOG_INFO, "slow consumers dropped"},
};

/* The turn's last step before sleeping: lines a limiter swallowed are
 * accounted for once its interval is over. */
static void worker_log_suppressed(struct rl_worker *w)
{
	for (size_t i = 0; i < sizeof(worker_limiters) / sizeof(worker_limiters[0]); i++) {
		struct rl_ratelimit *r = (struct rl_ratelimit *)((char *)w + worker_limiters[i].off);
		uint64_t n;
		if (rl_ratelimit_flush(r, w->now_ms, 1000, &n))
			rl_log(worker_limiters[i].level, 0, "%s: %" PRIu64 " more since the last report",
			       worker_limiters[i].what, n);
	}
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
			struct sockaddr_storage peer;
			int fd = worker_accept4(l->fd, &peer);
			if (fd == -1)
				break;
			worker_admit(w, fd, l->tp, &peer);
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

static int worker_timeout(struct rl_worker *w)
{
	if (w->inbox_more || w->dead || !cds_list_empty(&w->read_list) ||
	    !cds_list_empty(&w->fanout_wait) || !cds_list_empty(&w->flush_list))
		return 0;
	long t = rl_timers_next(w->timers, RL_WORKER_NTIMERS, w->now_ms);
	if (w->accept_resume_ms) {
		long a =
		    w->accept_resume_ms > w->now_ms ? (long)(w->accept_resume_ms - w->now_ms) : 0;
		if (t < 0 || a < t)
			t = a;
	}
	if (w->stopping) {
		long s = w->stop_deadline > w->now_ms ? (long)(w->stop_deadline - w->now_ms) : 0;
		if (t < 0 || s < t)
			t = s;
	}
	if (t < 0 || t > WORKER_MAX_SLEEP_MS)
		t = WORKER_MAX_SLEEP_MS;
	if (w->mem_over && t > WORKER_MEM_SLEEP_MS)
		t = WORKER_MEM_SLEEP_MS; /* to evict, or to read held connections again */
	return (int)t;
}

static bool worker_turn(struct rl_worker *w)
{
	int timeout = worker_timeout(w);

	rl_rcu_offline();
	int n = rl_evloop_wait(&w->loop, timeout);
	rl_rcu_online();
	w->now_ms = rl_clock_ms();
	w->fanout_work = 0;
	if (n < 0) {
		RL_ERRORF(0, "epoll_wait: %s", strerror(-n));
		n = 0;
	}
	worker_check_stop(w);
	rl_conn_read_fanout_wait(w);
	worker_dispatch(w, n);
	worker_accept_resume(w);
	rl_conn_resume_paused(w);
	rl_conn_read_deferred(w);
	worker_drain_inbox(w);
	rl_timers_run(w->timers, RL_WORKER_NTIMERS, w->now_ms);
	worker_kick_owed(w); /* the other workers deliver while we write */
	rl_conn_flush_pending(w);
	rl_budget_turn(w);
	rl_conn_close_marked(w);
	worker_log_suppressed(w);
	worker_kick_owed(w); /* presence events of the closes */
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

	char name[16];
	snprintf(name, sizeof(name), "relayd-w%u", w->id); /* top -H, /proc/PID/task/TID/comm */
	pthread_setname_np(pthread_self(), name);
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
