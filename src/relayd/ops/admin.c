/* admin.c -- the operator's HTTP endpoint on libmicrohttpd.
 * Threading: open/start/stop on the main thread; every request runs on the
 * one admin thread (MHD without an internal thread, polled by our own loop so
 * that the thread can register with QSBR and stay offline while idle). The
 * only shared state it reads is atomic: counters (metrics.c) and the
 * shutdown flag; rooms through the rooms hook while online. */
#include "ops/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <urcu/urcu-qsbr.h>

#include <relay/protocol.h>

#include "ops/expo.h"
#include "ops/metrics.h"

#define ADMIN_MAX_CONNS 64
#define ADMIN_CONN_TIMEOUT_S 10
#define ADMIN_ROOMS_DEFAULT 10
#define ADMIN_ROOMS_MAX 1000
#define ADMIN_JSON_MAX (64u << 20)

struct admin_state {
	int listen_fd;
	int stop_fd;
	char bound[80];
	struct MHD_Daemon *mhd;
	pthread_t thread;
	bool running;
	struct rl_admin_hooks hooks;
};

static struct admin_state admin = {.listen_fd = -1, .stop_fd = -1};

/* ---- address ------------------------------------------------------------ */

int rl_admin_parse_addr(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon[1] == '\0' || strlen(colon + 1) >= portlen)
		return -EINVAL;
	size_t hl = (size_t)(colon - s);
	const char *h = s;
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		h++;
		hl -= 2;
	} else if (memchr(s, ':', hl)) {
		return -EINVAL; /* a bare IPv6 address needs brackets */
	}
	if (hl == 0) {
		h = "127.0.0.1";
		hl = strlen(h);
	}
	if (hl >= hostlen)
		return -EINVAL;
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	if (atol(colon + 1) > 65535)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

static void admin_format_bound(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1) {
		snprintf(out, len, "?");
		return;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
		snprintf(out, len, "[%s]:%u", ip, port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		port = ntohs(a->sin_port);
		snprintf(out, len, "%s:%u", ip, port);
	}
}

static int admin_bind(const struct addrinfo *ai, char *err, size_t errlen)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 || listen(fd, 64) == -1) {
		int e = errno;
		snprintf(err, errlen, "%s", strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

int rl_admin_open(const char *addr, char *bound, size_t boundlen, char *err, size_t errlen)
{
	char host[256], port[16];
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res;
	if (rl_admin_parse_addr(addr, host, sizeof(host), port, sizeof(port)) != 0) {
		snprintf(err, errlen, "--admin: '%s' is not HOST:PORT", addr);
		return -EINVAL;
	}
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "--admin: %s: %s", addr, gai_strerror(rc));
		return -EINVAL;
	}
	char why[160] = "no address";
	int fd = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
		fd = admin_bind(ai, why, sizeof(why));
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "--admin: cannot listen on %s: %s", addr, why);
		return fd;
	}
	rl_admin_stop();
	admin.listen_fd = fd;
	admin_format_bound(fd, admin.bound, sizeof(admin.bound));
	snprintf(bound, boundlen, "%s", admin.bound);
	return 0;
}

/* ---- JSON rendering ------------------------------------------------------ */

typedef void admin_json_fn(struct relay_jw *w, void *arg);

/* Renders with <fn> into a buffer that grows until the output fits.
 * Returns a malloc'd buffer (caller frees) and its length, or NULL. */
static char *admin_json(admin_json_fn *fn, void *arg, size_t *len)
{
	for (size_t cap = 16384; cap <= ADMIN_JSON_MAX; cap *= 2) {
		uint8_t *buf = malloc(cap + 1);
		struct relay_jw w;
		if (!buf)
			return NULL;
		relay_jw_init(&w, buf, cap);
		fn(&w, arg);
		if (!w.overflow && w.len < cap) {
			buf[w.len++] = '\n';
			*len = w.len;
			return (char *)buf;
		}
		free(buf);
	}
	return NULL;
}

static double admin_uptime(void)
{
	return (double)(rl_metrics_now_ns() - rl_metrics_start_ns()) / 1e9;
}

static void admin_health_json(struct relay_jw *w, void *arg)
{
	const struct rl_metrics_snap *m = arg;
	bool down = rl_metrics_shutting_down();
	relay_jw_obj_begin(w);
	relay_jw_key(w, "status");
	relay_jw_cstr(w, down ? "shutting_down" : "ok");
	relay_jw_key(w, "uptime_seconds");
	relay_jw_u64(w, (uint64_t)admin_uptime());
	relay_jw_key(w, "workers");
	relay_jw_u64(w, rl_metrics_nworkers());
	relay_jw_key(w, "connections");
	relay_jw_u64(w, m->st.conns_current);
	relay_jw_obj_end(w);
}

static void admin_kv_json(const char *name, const char *value, void *arg)
{
	struct relay_jw *w = arg;
	relay_jw_key(w, name);
	relay_jw_cstr(w, value);
}

static void admin_u64_field(struct relay_jw *w, const char *key, uint64_t v)
{
	relay_jw_key(w, key);
	relay_jw_u64(w, v);
}

/* The rows of one snapshot as JSON fields, in list order: every row for the
 * sum, the WORKER rows for one worker's entry. A row with a dimension is an
 * object keyed by element name. */
static void admin_rows_json(struct relay_jw *w, const struct rl_stats *s, bool per_worker)
{
	for (size_t k = 0; k < RL_STAT_NROWS; k++) {
		const struct rl_stat_row *r = &rl_stat_rows[k];
		if (per_worker && r->scope != RL_STAT_WORKER)
			continue;
		if (r->dim == RL_STAT_DIM_NONE) {
			admin_u64_field(w, r->json, rl_stats_value(s, r, 0));
			continue;
		}
		relay_jw_key(w, r->json);
		relay_jw_obj_begin(w);
		for (unsigned i = rl_stats_dim_first(r->dim); i < r->n; i++)
			admin_u64_field(w, rl_stats_dim_name(r->dim, i), rl_stats_value(s, r, i));
		relay_jw_obj_end(w);
	}
}

static void admin_fanout_json(struct relay_jw *w, const struct rl_metrics_snap *m)
{
	uint64_t cum = 0;
	char le[32];
	relay_jw_key(w, "fanout_latency_seconds");
	relay_jw_obj_begin(w);
	relay_jw_key(w, "buckets");
	relay_jw_obj_begin(w);
	for (unsigned b = 0; b < RL_M_FANOUT_NBUCKETS; b++) {
		cum += m->fanout_bucket[b];
		if (b < RL_M_FANOUT_NBUCKETS - 1)
			snprintf(le, sizeof(le), "%g", (double)rl_metrics_fanout_le_ns[b] / 1e9);
		else
			snprintf(le, sizeof(le), "+Inf");
		admin_u64_field(w, le, cum);
	}
	relay_jw_obj_end(w);
	admin_u64_field(w, "count", cum);
	admin_u64_field(w, "sum_ns", m->fanout_sum_ns);
	relay_jw_obj_end(w);
}

static void admin_stats_json(struct relay_jw *w, void *arg)
{
	(void)arg;
	unsigned n = rl_metrics_nworkers();
	struct rl_metrics_snap sum, one;
	rl_metrics_sum(&sum);
	relay_jw_obj_begin(w);
	relay_jw_key(w, "server");
	relay_jw_cstr(w, "relayd");
	relay_jw_key(w, "version");
	relay_jw_cstr(w, admin.hooks.version ? admin.hooks.version : "unknown");
	admin_u64_field(w, "pid", (uint64_t)getpid());
	relay_jw_key(w, "listen");
	relay_jw_cstr(w, admin.hooks.listen ? admin.hooks.listen : "");
	relay_jw_key(w, "admin");
	relay_jw_cstr(w, admin.bound);
	admin_u64_field(w, "uptime_seconds", (uint64_t)admin_uptime());
	admin_u64_field(w, "start_time_unix", (uint64_t)rl_metrics_start_wall());
	admin_u64_field(w, "workers", n);
	relay_jw_key(w, "shutting_down");
	relay_jw_bool(w, rl_metrics_shutting_down());
	relay_jw_key(w, "options");
	relay_jw_obj_begin(w);
	if (admin.hooks.options)
		admin.hooks.options(admin_kv_json, w);
	relay_jw_obj_end(w);
	relay_jw_key(w, "totals");
	relay_jw_obj_begin(w);
	admin_rows_json(w, &sum.st, false);
	admin_fanout_json(w, &sum);
	relay_jw_obj_end(w);
	relay_jw_key(w, "per_worker");
	relay_jw_arr_begin(w);
	for (unsigned k = 0; k < n; k++) {
		rl_metrics_read(k, &one);
		relay_jw_obj_begin(w);
		admin_u64_field(w, "worker", k);
		admin_rows_json(w, &one.st, true);
		relay_jw_obj_end(w);
	}
	relay_jw_arr_end(w);
	relay_jw_obj_end(w);
}

/* ---- /rooms: the <limit> largest rooms, kept in a min-heap ------------------ */

struct admin_room {
	uint64_t members;
	uint8_t len;
	char name[RELAY_ROOM_MAX_BYTES];
};

struct admin_top {
	struct admin_room *heap; /* min-heap on members, <n> of <cap> used */
	size_t n;
	size_t cap;
	uint64_t total_rooms;
};

static bool admin_room_less(const struct admin_room *a, const struct admin_room *b)
{
	return a->members < b->members;
}

static void admin_heap_down(struct admin_top *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < t->n && admin_room_less(&t->heap[l], &t->heap[m]))
			m = l;
		if (r < t->n && admin_room_less(&t->heap[r], &t->heap[m]))
			m = r;
		if (m == i)
			return;
		struct admin_room tmp = t->heap[i];
		t->heap[i] = t->heap[m];
		t->heap[m] = tmp;
		i = m;
	}
}

static void admin_heap_up(struct admin_top *t, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!admin_room_less(&t->heap[i], &t->heap[p]))
			return;
		struct admin_room tmp = t->heap[i];
		t->heap[i] = t->heap[p];
		t->heap[p] = tmp;
		i = p;
	}
}

static void admin_room_seen(const char *name, size_t len, uint64_t members, void *arg)
{
	struct admin_top *t = arg;
	struct admin_room r = {.members = members};
	t->total_rooms++;
	if (t->cap == 0 || (t->n == t->cap && members <= t->heap[0].members))
		return;
	r.len = (uint8_t)(len < sizeof(r.name) ? len : sizeof(r.name));
	memcpy(r.name, name, r.len);
	if (t->n < t->cap) {
		t->heap[t->n++] = r;
		admin_heap_up(t, t->n - 1);
	} else {
		t->heap[0] = r;
		admin_heap_down(t, 0);
	}
}

static int admin_room_cmp_desc(const void *a, const void *b)
{
	const struct admin_room *x = a, *y = b;
	if (x->members != y->members)
		return x->members > y->members ? -1 : 1;
	int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
	return c ? c : (int)x->len - (int)y->len;
}

static void admin_rooms_json(struct relay_jw *w, void *arg)
{
	struct admin_top *t = arg;
	relay_jw_obj_begin(w);
	admin_u64_field(w, "rooms", t->total_rooms);
	relay_jw_key(w, "largest");
	relay_jw_arr_begin(w);
	for (size_t i = 0; i < t->n; i++) {
		relay_jw_obj_begin(w);
		relay_jw_key(w, "room");
		relay_jw_str(w, t->heap[i].name, t->heap[i].len);
		admin_u64_field(w, "members", t->heap[i].members);
		relay_jw_obj_end(w);
	}
	relay_jw_arr_end(w);
	relay_jw_obj_end(w);
}

/* Walks the rooms on this (admin) thread; the hook goes online itself. */
static void admin_rooms_walk(struct admin_top *t)
{
	if (admin.hooks.rooms)
		admin.hooks.rooms(admin_room_seen, t);
}

/* ---- request dispatch ------------------------------------------------------ */

struct admin_reply {
	unsigned status;
	const char *type;
	char *body; /* malloc'd */
	size_t len;
};

typedef int admin_route_fn(struct MHD_Connection *c, struct admin_reply *r);

static int admin_json_reply(struct admin_reply *r, unsigned status, admin_json_fn *fn, void *arg)
{
	r->status = status;
	r->type = "application/json";
	r->body = admin_json(fn, arg, &r->len);
	return r->body ? 0 : -ENOMEM;
}

static int admin_route_health(struct MHD_Connection *c, struct admin_reply *r)
{
	(void)c;
	struct rl_metrics_snap m;
	rl_metrics_sum(&m);
	unsigned status = rl_metrics_shutting_down() ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK;
	return admin_json_reply(r, status, admin_health_json, &m);
}

static int admin_route_metrics(struct MHD_Connection *c, struct admin_reply *r)
{
	(void)c;
	struct rl_expo e;
	struct rl_expo_info info = {.version = admin.hooks.version, .listen = admin.hooks.listen};
	rl_expo_init(&e);
	rl_expo_metrics(&e, &info);
	if (e.oom || !e.buf) {
		rl_expo_free(&e);
		return -ENOMEM;
	}
	r->status = MHD_HTTP_OK;
	r->type = "text/plain; version=0.0.4; charset=utf-8";
	r->body = e.buf;
	r->len = e.len;
	return 0;
}

static int admin_route_stats(struct MHD_Connection *c, struct admin_reply *r)
{
	(void)c;
	return admin_json_reply(r, MHD_HTTP_OK, admin_stats_json, NULL);
}

static int admin_route_rooms(struct MHD_Connection *c, struct admin_reply *r)
{
	const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	long limit = ADMIN_ROOMS_DEFAULT;
	if (lim) {
		char *end;
		errno = 0;
		limit = strtol(lim, &end, 10);
		if (errno || end == lim || *end || limit < 0 || limit > ADMIN_ROOMS_MAX) {
			static const char msg[] = "{\"error\":\"limit must be 0-1000\"}\n";
			r->status = MHD_HTTP_BAD_REQUEST;
			r->type = "application/json";
			r->body = strdup(msg);
			r->len = sizeof(msg) - 1;
			return r->body ? 0 : -ENOMEM;
		}
	}
	struct admin_top t = {.cap = (size_t)limit};
	t.heap = calloc(t.cap ? t.cap : 1, sizeof(*t.heap));
	if (!t.heap)
		return -ENOMEM;
	admin_rooms_walk(&t);
	qsort(t.heap, t.n, sizeof(*t.heap), admin_room_cmp_desc);
	int rc = admin_json_reply(r, MHD_HTTP_OK, admin_rooms_json, &t);
	free(t.heap);
	return rc;
}

static const struct admin_route {
	const char *path;
	admin_route_fn *fn;
} admin_routes[] = {
    {"/health", admin_route_health},
    {"/metrics", admin_route_metrics},
    {"/stats", admin_route_stats},
    {"/rooms", admin_route_rooms},
};

#define ADMIN_NROUTES (sizeof(admin_routes) / sizeof(admin_routes[0]))

static enum MHD_Result admin_send(struct MHD_Connection *c, struct admin_reply *r)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(r->body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result ok = MHD_queue_response(c, r->status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static int admin_static_reply(struct admin_reply *r, unsigned status, const char *msg)
{
	r->status = status;
	r->type = "application/json";
	r->body = strdup(msg);
	r->len = strlen(msg);
	return r->body ? 0 : -ENOMEM;
}

static enum MHD_Result admin_request(void *cls, struct MHD_Connection *c, const char *url,
				     const char *method, const char *version,
				     const char *upload_data, size_t *upload_data_size,
				     void **con_cls)
{
	(void)cls;
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	struct admin_reply r = {0};
	int rc;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		rc = admin_static_reply(&r, MHD_HTTP_METHOD_NOT_ALLOWED,
					"{\"error\":\"method not allowed\"}\n");
	} else {
		const struct admin_route *route = NULL;
		for (size_t i = 0; i < ADMIN_NROUTES && !route; i++)
			if (strcmp(url, admin_routes[i].path) == 0)
				route = &admin_routes[i];
		rc = route ? route->fn(c, &r)
			   : admin_static_reply(&r, MHD_HTTP_NOT_FOUND,
						"{\"error\":\"not found\"}\n");
	}
	if (rc != 0)
		return MHD_NO;
	return admin_send(c, &r);
}

/* ---- the admin thread -------------------------------------------------------- */

static void *admin_main(void *arg)
{
	(void)arg;
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(admin.mhd, MHD_DAEMON_INFO_EPOLL_FD);
	int epfd = di ? di->epoll_fd : -1;
	urcu_qsbr_register_thread();
	urcu_qsbr_thread_offline();
	for (;;) {
		MHD_UNSIGNED_LONG_LONG to;
		int timeout = -1;
		if (MHD_get_timeout(admin.mhd, &to) == MHD_YES)
			timeout = to > 1000 ? 1000 : (int)to;
		struct pollfd pf[2] = {{.fd = epfd, .events = POLLIN},
				       {.fd = admin.stop_fd, .events = POLLIN}};
		int n = poll(pf, 2, timeout);
		if (n == -1 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		MHD_run(admin.mhd);
	}
	urcu_qsbr_unregister_thread();
	return NULL;
}

static void admin_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[512];
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n <= 0)
		return;
	fprintf(stderr, "relayd: admin: %s%s", line, line[strlen(line) - 1] == '\n' ? "" : "\n");
}

int rl_admin_start(const struct rl_admin_hooks *hooks)
{
	if (admin.listen_fd < 0 || admin.running)
		return -EINVAL;
	admin.hooks = *hooks;
	admin.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (admin.stop_fd == -1)
		return -errno;
	admin.mhd = MHD_start_daemon(
	    MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, admin_request, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, admin_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET,
	    admin.listen_fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_MAX_CONNS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_CONN_TIMEOUT_S, MHD_OPTION_END);
	if (!admin.mhd) {
		close(admin.stop_fd);
		admin.stop_fd = -1;
		return -EIO;
	}
	int rc = pthread_create(&admin.thread, NULL, admin_main, NULL);
	if (rc != 0) {
		MHD_stop_daemon(admin.mhd);
		admin.mhd = NULL;
		close(admin.stop_fd);
		admin.stop_fd = -1;
		return -rc;
	}
	admin.running = true;
	printf("relayd admin on %s\n", admin.bound);
	fflush(stdout);
	return 0;
}

void rl_admin_stop(void)
{
	if (admin.running) {
		uint64_t one = 1;
		if (write(admin.stop_fd, &one, sizeof(one)) == -1)
			perror("relayd: admin: stop");
		pthread_join(admin.thread, NULL);
		admin.running = false;
	}
	if (admin.mhd) {
		MHD_stop_daemon(admin.mhd); /* also closes the listen socket it was given */
		admin.mhd = NULL;
		admin.listen_fd = -1;
	}
	if (admin.listen_fd >= 0) {
		close(admin.listen_fd);
		admin.listen_fd = -1;
	}
	if (admin.stop_fd >= 0) {
		close(admin.stop_fd);
		admin.stop_fd = -1;
	}
}
