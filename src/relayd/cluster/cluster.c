/* cluster.c -- cluster mode's configuration and its worker-side half: the
 * hooks the relay layer calls (relay/bus.h), the RL_INBOX_CLUSTER handler,
 * and the readers of the cluster's rows in base/stats_list.h.
 * Threading: see cluster.h. The hooks run on workers and only push on the
 * bridge's inbox or read atomics: they never wait for the bus. */
#include "cluster/cluster.h"

#include "base/options.h"
#include "base/stats.h"
#include "cluster/bridge.h"
#include "cluster/channel.h"
#include "net/conn.h"
#include "net/msg.h"
#include "relay/bus.h"
#include "relay/fanout.h"
#include "relay/room.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static struct {
	bool on;
	bool required; /* --cluster-required */
	struct rl_bus_hooks hooks;
} cluster;

/* ---- the hooks (workers) -------------------------------------------------------------- */

/* rl_bus_hooks.publish: one inbox item per message, embedded in it. When
 * the bridge is behind by more than the queue limit the message does not
 * go out; the bridge then makes every room's next sequence number jump, so
 * the other nodes send their members a gap event. */
static void cluster_publish(struct rl_worker *w, struct rl_room *r, struct rl_msg *m)
{
	struct rl_bridge *b = &rl_bridge;
	(void)w;
	if (__atomic_load_n(&b->q_out, __ATOMIC_RELAXED) > b->queue_limit) {
		__atomic_add_fetch(&b->st.out_dropped, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&b->lost, 1, __ATOMIC_RELAXED);
		return;
	}
	rl_msg_get(m);
	if (!m->room) { /* not queued to another worker: nobody else reads it yet */
		rl_room_get(r);
		m->room = r;
	}
	struct rl_msg_item *it = &m->items[b->nworkers];
	it->ib.kind = RL_BRIDGE_MSG;
	it->msg = m;
	__atomic_add_fetch(&b->q_out, m->len, __ATOMIC_RELAXED);
	(void)rl_inbox_push(&b->inbox, &it->ib, m->len); /* bounded by q_out */
}

/* rl_bus_hooks.member: the bridge keeps this node's count per room. */
static void cluster_member(struct rl_worker *w, struct rl_room *r, int delta)
{
	size_t len;
	const uint8_t *name = rl_room_name(r, &len);
	struct rl_bridge_member *ev = malloc(sizeof(*ev));
	(void)w;
	if (!ev) {
		RL_ERRORF(0, "cluster: out of memory: a member count is off");
		return;
	}
	ev->ib.kind = RL_BRIDGE_MEMBER;
	ev->delta = delta;
	ev->len = (uint8_t)len;
	memcpy(ev->name, name, len);
	(void)rl_inbox_push(&rl_bridge.inbox, &ev->ib, (uint32_t)sizeof(*ev));
}

static long cluster_remote(const struct rl_room *r)
{
	size_t len;
	const uint8_t *name = rl_room_name(r, &len);
	return rl_chan_remote_members(name, len);
}

uint64_t rl_cluster_item(struct rl_worker *w, struct rl_inbox_item *it)
{
	struct rl_msg *m = caa_container_of(it, struct rl_msg_item, ib)->msg;
	uint64_t n = rl_fanout_deliver(w, m);
	__atomic_sub_fetch(&rl_bridge.q_in, m->len, __ATOMIC_RELAXED);
	rl_msg_put(m);
	return n;
}

/* ---- configuration (main thread) ----------------------------------------------------- */

static bool cluster_id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static bool cluster_id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > RL_BRIDGE_NODE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!cluster_id_char(s[i]))
			return false;
	return true;
}

/* "<host>-<port>-<4 hex>": readable, and two nodes on one host (or one node
 * restarted) still differ. */
static void cluster_default_id(char *out, size_t cap, uint16_t port, uint32_t rnd)
{
	char host[256] = "relayd", clean[17];
	size_t n = 0;
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = 0;
	for (const char *p = host; *p && *p != '.' && n < sizeof(clean) - 1; p++)
		clean[n++] = cluster_id_char(*p) ? *p : '-';
	clean[n] = 0;
	snprintf(out, cap, "%s-%u-%04x", n ? clean : "relayd", (unsigned)port, rnd & 0xffff);
}

static int cluster_password(const char *path, struct rl_bridge *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		fprintf(stderr, "relayd: --cluster-password-file %s: %s\n", path, strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, b->password, sizeof(b->password));
	close(fd);
	if (n < 0 || (size_t)n == sizeof(b->password)) {
		fprintf(stderr, "relayd: --cluster-password-file %s: %s\n", path,
			n < 0 ? strerror(errno) : "longer than 511 bytes");
		return -1;
	}
	while (n > 0 && (b->password[n - 1] == '\n' || b->password[n - 1] == '\r'))
		n--; /* one line: the trailing newline is not part of it */
	if (n == 0) {
		fprintf(stderr, "relayd: --cluster-password-file %s: empty\n", path);
		return -1;
	}
	b->password_len = (size_t)n;
	return 0;
}

static bool cluster_prefix_ok(const char *s)
{
	for (; *s; s++)
		if (*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

static int cluster_options(const struct rl_config *cfg, struct rl_bridge *b, uint16_t port)
{
	char err[512];
	if (rl_link_addr_parse(cfg->cluster, &b->addr, err, sizeof(err))) {
		fprintf(stderr, "relayd: %s\n", err);
		return -1;
	}
	if (cfg->cluster_password_file[0] && cluster_password(cfg->cluster_password_file, b))
		return -1;
	if (getrandom(&b->boot, sizeof(b->boot), 0) != (ssize_t)sizeof(b->boot))
		b->boot = (uint32_t)getpid() ^ (uint32_t)(uintptr_t)b;
	if (b->boot == 0)
		b->boot = 1; /* 0 means "not known yet" to the other nodes */
	if (cfg->node_id[0])
		snprintf(b->node, sizeof(b->node), "%s", cfg->node_id);
	else
		cluster_default_id(b->node, sizeof(b->node), port, b->boot >> 8);
	b->node_len = strlen(b->node);
	if (!cluster_id_ok(b->node)) {
		fprintf(stderr,
			"relayd: invalid value '%s' for --node-id: expected 1-%d of "
			"A-Z a-z 0-9 . _ -\n",
			b->node, RL_BRIDGE_NODE_MAX);
		return -1;
	}
	if (!cluster_prefix_ok(cfg->cluster_prefix)) {
		fprintf(stderr,
			"relayd: invalid value '%s' for --cluster-prefix: expected "
			"printable ASCII without spaces\n",
			cfg->cluster_prefix);
		return -1;
	}
	snprintf(b->prefix, sizeof(b->prefix), "%s", cfg->cluster_prefix);
	b->prefix_len = strlen(b->prefix);
	b->ttl_ms = cfg->cluster_ttl_ms;
	b->linger_ms = cfg->cluster_linger_ms;
	b->queue_limit = cfg->cluster_queue;
	b->max_frame = cfg->max_frame;
	return 0;
}

int rl_cluster_configure(const struct rl_config *cfg, unsigned nworkers, uint16_t port)
{
	struct rl_bridge *b = &rl_bridge;
	char suffix[40];
	if (!cfg->cluster[0])
		return 0;
	if (cluster_options(cfg, b, port))
		return -1;
	b->nworkers = nworkers;
	int rc = rl_bridge_init();
	if (rc) {
		fprintf(stderr, "relayd: --cluster: cannot start the bridge: %s\n", strerror(-rc));
		return -1;
	}
	cluster.on = true;
	cluster.required = cfg->cluster_required;
	cluster.hooks = (struct rl_bus_hooks){
	    .node_id = b->node,
	    .publish = cluster_publish,
	    .member = cluster_member,
	    .remote_members = cluster_remote,
	};
	snprintf(suffix, sizeof(suffix), "@%.32s", b->node);
	rl_conn_set_name_suffix(suffix);
	rl_bus_set(&cluster.hooks);
	return 0;
}

/* ---- stats readers (any thread) -------------------------------------------------------- */

#define CLUSTER_READER(name, expr)                                                                 \
	static uint64_t cluster_read_##name(void)                                                  \
	{                                                                                          \
		const struct rl_bridge *b = &rl_bridge;                                            \
		return (expr);                                                                     \
	}
#define LOAD(f) __atomic_load_n(&b->f, __ATOMIC_RELAXED)

CLUSTER_READER(link_up, LOAD(st.link_up))
CLUSTER_READER(subscriptions, LOAD(st.subscriptions))
CLUSTER_READER(msgs_out, LOAD(st.out_msgs))
CLUSTER_READER(msgs_in, LOAD(st.in_msgs))
CLUSTER_READER(dropped_out, LOAD(st.out_dropped))
CLUSTER_READER(dropped_in, LOAD(st.in_dropped))
CLUSTER_READER(gaps, LOAD(st.gaps))
CLUSTER_READER(reconnects, LOAD(st.reconnects))
CLUSTER_READER(queue_out, LOAD(q_out) + LOAD(st.out_queue))
CLUSTER_READER(queue_in, LOAD(q_in))
CLUSTER_READER(commands, LOAD(st.commands))
CLUSTER_READER(writes, LOAD(st.writes))
CLUSTER_READER(reads, LOAD(st.reads))
CLUSTER_READER(read_msgs, LOAD(st.read_msgs))

static const struct {
	enum rl_stat_id id;
	rl_stats_reader_fn *fn;
} cluster_readers[] = {
    {RL_STAT_ID(cluster_link_up), cluster_read_link_up},
    {RL_STAT_ID(cluster_subscriptions), cluster_read_subscriptions},
    {RL_STAT_ID(cluster_msgs_out), cluster_read_msgs_out},
    {RL_STAT_ID(cluster_msgs_in), cluster_read_msgs_in},
    {RL_STAT_ID(cluster_dropped_out), cluster_read_dropped_out},
    {RL_STAT_ID(cluster_dropped_in), cluster_read_dropped_in},
    {RL_STAT_ID(cluster_gaps), cluster_read_gaps},
    {RL_STAT_ID(cluster_reconnects), cluster_read_reconnects},
    {RL_STAT_ID(cluster_queue_out), cluster_read_queue_out},
    {RL_STAT_ID(cluster_queue_in), cluster_read_queue_in},
    {RL_STAT_ID(cluster_commands), cluster_read_commands},
    {RL_STAT_ID(cluster_writes), cluster_read_writes},
    {RL_STAT_ID(cluster_reads), cluster_read_reads},
    {RL_STAT_ID(cluster_read_msgs), cluster_read_read_msgs},
};

/* ---- lifecycle ---------------------------------------------------------------------------- */

int rl_cluster_start(void)
{
	if (!cluster.on)
		return 0;
	for (size_t i = 0; i < sizeof(cluster_readers) / sizeof(cluster_readers[0]); i++)
		rl_stats_set_reader(cluster_readers[i].id, cluster_readers[i].fn);
	RL_INFOF(0, "cluster: node %s, bus %s, prefix '%s'", rl_bridge.node, rl_bridge.addr.text,
		 rl_bridge.prefix);
	return rl_bridge_start();
}

void rl_cluster_stop(void)
{
	if (!cluster.on)
		return;
	rl_bridge_stop();
	for (size_t i = 0; i < sizeof(cluster_readers) / sizeof(cluster_readers[0]); i++)
		rl_stats_set_reader(cluster_readers[i].id, NULL);
}

void rl_cluster_fini(void)
{
	if (!cluster.on)
		return;
	rl_chan_fini();
	rl_bus_set(NULL);
	cluster.on = false;
}

bool rl_cluster_on(void)
{
	return cluster.on;
}

const char *rl_cluster_health(bool *healthy)
{
	*healthy = true;
	if (!cluster.on)
		return NULL;
	const char *state = rl_bridge_link_name();
	if (cluster.required && strcmp(state, "up") != 0)
		*healthy = false;
	return state;
}
