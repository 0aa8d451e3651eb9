/* main.c -- relayd: options, listeners, workers, signals, final totals.
 * Threading: the main thread parses options, binds every listener, starts
 * the workers, then only waits: for SIGTERM/SIGINT (signalfd; all threads
 * block these signals, so no work ever runs in a signal handler) and for
 * the workers to finish. After joining them it tears everything down. */
#include "cluster/cluster.h"
#include "net/conn.h"
#include "net/limit.h"
#include "net/listen.h"
#include "base/log.h"
#include "net/msg.h"
#include "net/tls.h"
#include "net/transport.h"
#include "net/ws.h"
#include "ops/ops.h"
#include "base/options.h"
#include "relay/auth.h"
#include "relay/fanout.h"
#include "relay/handler.h"
#include "relay/history.h"
#include "relay/room.h"
#include "base/stats.h"
#include "loop/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

static unsigned main_nworkers(const struct rl_config *cfg)
{
	long n = cfg->workers ? (long)cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > RL_MAX_WORKERS)
		n = RL_MAX_WORKERS;
	return (unsigned)n;
}

static void main_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int main_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP); /* ops: config reload */
	signal(SIGPIPE, SIG_IGN);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* The listener kinds, each bound by every worker: plain TCP on --port,
 * then TLS on --tls-port and WebSocket on --ws-port when set (wss://, the
 * WebSocket layer over TLS, with --ws-tls). Fills <specs>; returns how
 * many. specs[0] is always the plain TCP one. */
static unsigned main_listen_specs(const struct rl_config *cfg, struct rl_listen_spec *specs)
{
	unsigned n = 0;
	specs[n++] = (struct rl_listen_spec){
		.name = "tcp", .host = cfg->host, .port = (uint16_t)cfg->port,
		.tp = &rl_tcp_transport,
	};
	if (cfg->tls_port != RL_PORT_OFF)
		specs[n++] = (struct rl_listen_spec){
			.name = "tls", .host = cfg->host, .port = (uint16_t)cfg->tls_port,
			.tp = &rl_tls_transport,
		};
	if (cfg->ws_port != RL_PORT_OFF)
		specs[n++] = (struct rl_listen_spec){
			.name = cfg->ws_tls ? "wss" : "ws", .host = cfg->host,
			.port = (uint16_t)cfg->ws_port,
			.tp = cfg->ws_tls ? &rl_wss_transport : &rl_ws_transport,
		};
	return n;
}

/* "relayd <kind> listening on HOST:PORT" for each listener but the plain
 * TCP one, printed before the main listening line (which tests and
 * supervisors wait for, so every port is known once it is read). */
static void main_print_listeners(const struct rl_config *cfg, const struct rl_listen_spec *specs,
				 unsigned nspecs)
{
	bool v6 = strchr(cfg->host, ':') != NULL;
	for (unsigned k = 1; k < nspecs; k++)
		printf("relayd %s listening on %s%s%s:%u\n", specs[k].name, v6 ? "[" : "",
		       cfg->host, v6 ? "]" : "", (unsigned)specs[k].bound_port);
}

/* The lower layers call up only through what is installed here, once,
 * before any worker runs: a connection's accept, frames and close go to the
 * protocol handler; inbox items and released messages to the fan-out. */
static void main_wire_layers(void)
{
	static const struct rl_conn_upcalls conn_up = {
		.frame = rl_handler_frame,
		.closed = rl_handler_closed,
		.opened = rl_handler_opened,
	};

	rl_conn_set_upcalls(&conn_up);
	rl_msg_set_release(rl_fanout_msg_release);
	rl_worker_set_inbox_handler(RL_INBOX_FANOUT, rl_fanout_item);
	rl_worker_set_inbox_handler(RL_INBOX_CLUSTER, rl_cluster_item); /* only used with --cluster */
}

/* History (relay/history.h) takes its options before the room table exists. */
static int main_history_init(const struct rl_config *cfg)
{
	struct rl_history_cfg h = {
		.size = cfg->history_size,
		.room_bytes = cfg->history_room_bytes,
		.total_bytes = cfg->history_total_bytes,
		.ttl_ms = cfg->history_ttl_ms,
	};
	return rl_history_init(&h);
}

static int main_start(unsigned n, const struct rl_listen_spec *specs, unsigned nspecs)
{
	rl_srv.workers = calloc(n, sizeof(struct rl_worker));
	if (!rl_srv.workers)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct rl_worker *w = &rl_srv.workers[i];
		int rc = rl_worker_init(w, i);
		rl_auth_worker_init(w); /* the protocol layer's timer lists */
		for (unsigned k = 0; k < nspecs && !rc; k++)
			rc = rl_worker_listen(w, specs[k].fds[i], specs[k].tp, specs[k].name);
		if (rc)
			return rc;
	}
	rl_srv.nworkers = n;
	for (unsigned i = 0; i < n; i++) {
		int rc = rl_worker_start(&rl_srv.workers[i]);
		if (rc)
			return rc;
	}
	return 0;
}

/* Waits for the workers; the first signal starts a graceful stop, a second
 * one exits at once. */
static void main_wait(int sfd, unsigned n)
{
	unsigned done = 0, signals = 0;
	struct pollfd p[2] = { { sfd, POLLIN, 0 }, { rl_srv.done_efd, POLLIN, 0 } };

	while (done < n) {
		if (poll(p, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			RL_ERRORF(0, "poll: %s", strerror(errno));
			_exit(1);
		}
		struct signalfd_siginfo si;
		while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGHUP) { /* ops */
				rl_ops_reload(&rl_srv.cfg);
				continue;
			}
			if (++signals == 1) {
				rl_ops_stopping(); /* ops: /health 503, STOPPING=1 */
				RL_INFOF(0, "%s: shutting down (grace %" PRIu64 " ms)",
					 strsignal((int)si.ssi_signo), rl_srv.cfg.grace_ms);
				rl_workers_stop();
			} else {
				static const char msg[] = "relayd: second signal, exiting now\n";
				ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
				(void)w;
				_exit(1);
			}
		}
		uint64_t v;
		if (read(rl_srv.done_efd, &v, sizeof(v)) == (ssize_t)sizeof(v))
			done += (unsigned)v;
	}
}

/* Items other workers queued after a worker had already stopped. */
static void main_drain_inboxes(void)
{
	rcu_register_thread();
	for (unsigned i = 0; i < rl_srv.nworkers; i++) {
		struct rl_inbox_item *it;
		while ((it = rl_inbox_pop(&rl_srv.workers[i].inbox))) {
			uint64_t bytes = it->bytes;
			rl_msg_put(caa_container_of(it, struct rl_msg_item, ib)->msg);
			rl_inbox_done(&rl_srv.workers[i].inbox, bytes);
		}
	}
	rl_rcu_quiescent();
	rcu_unregister_thread();
}

/* The rows of base/stats_list.h that have a totals label, on one line. */
static void main_totals(void)
{
	struct rl_stats s;
	char line[512];
	rl_stats_sum(&s);
	rl_stats_format_totals(&s, line, sizeof(line));
	printf("%s\n", line);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct rl_config *cfg = &rl_srv.cfg;
	struct rl_listen_spec specs[RL_MAX_LISTENERS];
	bool given[RL_OPTIONS_MAX]; /* options set by the environment or command line */
	char err[512];

	switch (rl_options_parse(cfg, given, argc, argv)) {
	case RL_OPTS_EXIT_OK:
		return 0;
	case RL_OPTS_EXIT_ERR:
		return 1;
	default:
		break;
	}
	if (rl_ops_configure(cfg, given)) /* ops: --config FILE */
		return 1;
	rl_log_set_level(cfg->debug ? RL_LOG_DEBUG : (int)cfg->log_level);
	if (rl_auth_init(cfg, err, sizeof(err))) { /* --auth-key: load the key files */
		fprintf(stderr, "relayd: %s\n", err);
		return 1;
	}
	unsigned n = main_nworkers(cfg);
	main_raise_nofile();
	int sfd = main_signals();
	if (sfd == -1) {
		fprintf(stderr, "relayd: signalfd: %s\n", strerror(errno));
		return 1;
	}
	bool tls = cfg->tls_port != RL_PORT_OFF || cfg->ws_tls; /* one certificate for both */
	if ((tls && rl_tls_init(cfg, err, sizeof(err))) ||
	    (cfg->ws_port != RL_PORT_OFF && rl_ws_init(cfg, err, sizeof(err)))) {
		fprintf(stderr, "relayd: %s\n", err);
		return 1;
	}
	unsigned nspecs = main_listen_specs(cfg, specs);
	if (rl_listen_open(specs, nspecs, n, err, sizeof(err))) {
		fprintf(stderr, "relayd: %s\n", err);
		return 1;
	}
	uint16_t port = specs[0].bound_port; /* the plain TCP one */
	if (rl_cluster_configure(cfg, n, port)) /* cluster: --cluster URL */
		return 1;
	rl_srv.done_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	main_wire_layers();
	rl_limit_init();			   /* --max-connections-per-ip's table */
	rl_rooms_set_limit(&cfg->max_rooms_total); /* --max-rooms */
	if (rl_srv.done_efd == -1 || rl_stats_init(n) || main_history_init(cfg) ||
	    rl_rooms_init(n) || rl_history_start() || main_start(n, specs, nspecs)) {
		fprintf(stderr, "relayd: cannot start workers: %s\n", strerror(errno));
		return 1;
	}
	int crc = rl_cluster_start(); /* cluster: the bridge thread */
	if (crc) {
		fprintf(stderr, "relayd: cannot start the cluster bridge: %s\n", strerror(-crc));
		return 1;
	}
	if (rl_ops_start(cfg, n, port)) /* ops: metrics, --admin (its line first) */
		return 1;
	const char *h = cfg->host;
	bool v6 = strchr(h, ':') != NULL;
	main_print_listeners(cfg, specs, nspecs);
	printf("relayd listening on %s%s%s:%u (%u workers)\n", v6 ? "[" : "", h, v6 ? "]" : "",
	       (unsigned)port, n);
	fflush(stdout);
	for (unsigned k = 0; k < nspecs; k++)
		if ((specs[k].tp == &rl_ws_transport || specs[k].tp == &rl_wss_transport) &&
		    rl_ws_serves_files())
			RL_INFOF(0,
				 "web page: %s://%s%s%s:%u/ (files from %s; a development "
				 "convenience)",
				 specs[k].tp == &rl_wss_transport ? "https" : "http", v6 ? "[" : "",
				 h, v6 ? "]" : "", (unsigned)specs[k].bound_port, cfg->web_root);
	rl_ops_ready(); /* ops: READY=1 */
	RL_INFOF(0, "relayd %s: %u workers, max frame %" PRIu64 ", max connections %" PRIu64,
		 RL_VERSION, n, cfg->max_frame, cfg->max_conns);

	main_wait(sfd, n);
	for (unsigned i = 0; i < n; i++)
		pthread_join(rl_srv.workers[i].thread, NULL);
	rl_ops_stop(); /* ops: admin endpoint off before rooms and stats go */
	rl_cluster_stop(); /* cluster: goodbye on the bus, bridge joined */
	main_drain_inboxes();
	main_totals();
	rl_history_stop();
	rl_auth_fini(); /* before rl_rooms_fini's rcu_barrier frees the replaced key sets */
	rl_rooms_fini();
	rl_cluster_fini();
	rl_limit_fini();
	for (unsigned i = 0; i < n; i++)
		rl_worker_fini(&rl_srv.workers[i]);
	rl_tls_fini();
	rl_ws_fini();
	free(rl_srv.workers);
	rl_stats_fini();
	close(rl_srv.done_efd);
	close(sfd);
	return 0;
}
