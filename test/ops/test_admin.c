/* test_admin.c -- the admin endpoint (src/relayd/ops/admin.c) against
 * counters written by the test and fake hooks: routes, status codes,
 * exposition validity, sums, /stats JSON, /rooms ordering and limits. The
 * live-server tests are in test_ops_live.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <relay/protocol.h>

#include "ops/admin.h"
#include "expo_check.h"
#include "harness.h"
#include "ops/metrics.h"
#include "ops_http.h"

static char bound[80];

static void fake_options(rl_admin_kv_fn *fn, void *arg)
{
	fn("port", "4000", arg);
	fn("log-level", "info", arg);
	fn("host", "127.0.0.1", arg);
}

static void fake_rooms(rl_admin_room_fn *fn, void *arg)
{
	char name[32];
	for (int i = 0; i < 50; i++) {
		int len = snprintf(name, sizeof(name), "room-%02d", i);
		fn(name, (size_t)len, (uint64_t)((i * 7) % 50), arg);
	}
}

/* Counters for two workers, written into the real per-worker slots the way
 * the workers count them; the process-wide gauges from fake readers. */
static uint64_t fake_rooms_n(void)
{
	return 50;
}

static uint64_t fake_memberships(void)
{
	return 1225;
}

static uint64_t fake_peak(void)
{
	return 8;
}

static void fill_counters(void)
{
	struct rl_stats *w0 = rl_stats_slot(0), *w1 = rl_stats_slot(1);
	RL_STAT_ADD(w0, conns_current, 3);
	RL_STAT_ADD(w0, conns_accepted, 5);
	RL_STAT_ADD(w0, conns_closed, 2);
	RL_STAT_ADD(w0, bytes_in, 234);
	RL_STAT_ADD(w0, frames_in[RELAY_MSG_MESSAGE], 7);
	RL_STAT_ADD(w1, conns_current, 4);
	RL_STAT_ADD(w1, conns_accepted, 4);
	RL_STAT_ADD(w1, bytes_in, 1000);
	RL_STAT_ADD(w1, frames_in[RELAY_MSG_MESSAGE], 3);
	RL_STAT_ADD(w1, frames_in[0], 1); /* unknown type */
	RL_STAT_ADD(w1, errors[RELAY_ERR_NOT_IN_ROOM], 1);
	RL_STAT_ADD(w1, refused_full, 3);
	RL_STAT_ADD(w1, inbox_items, 11);
	rl_stats_set_reader(RL_STAT_ID(rooms), fake_rooms_n);
	rl_stats_set_reader(RL_STAT_ID(memberships), fake_memberships);
	rl_stats_set_reader(RL_STAT_ID(conns_peak), fake_peak);
	rl_metrics_fanout_observe(rl_metrics_worker(0), 5000);	     /* le 1e-05 */
	rl_metrics_fanout_observe(rl_metrics_worker(1), 70000);	     /* le 0.0001 */
	rl_metrics_fanout_observe(rl_metrics_worker(1), 5000000000); /* +Inf only */
}

static void setup(void)
{
	char err[256];
	cr_assert_eq(rl_stats_init(2), 0);
	cr_assert_eq(rl_metrics_init(2), 0);
	fill_counters();
	cr_assert_eq(rl_admin_open("127.0.0.1:0", bound, sizeof(bound), err, sizeof(err)), 0, "%s",
		     err);
	struct rl_admin_hooks h = {.version = "9.9.9",
				   .listen = "127.0.0.1:4000",
				   .options = fake_options,
				   .rooms = fake_rooms};
	cr_assert_eq(rl_admin_start(&h), 0);
}

static void teardown(void)
{
	rl_admin_stop();
	rl_metrics_fini();
	rl_stats_fini();
}

static struct ops_http_reply get(const char *method, const char *path)
{
	struct ops_http_reply r;
	char err[256];
	cr_assert_eq(ops_http(bound, method, path, 5000, &r, err, sizeof(err)), 0, "%s %s: %s",
		     method, path, err);
	return r;
}

static double value(const char *body, const char *series)
{
	double v = -1;
	cr_assert_eq(expo_value(body, series, &v), 0, "series %s missing from:\n%s", series, body);
	return v;
}

TestSuite(admin, .init = setup, .fini = teardown, .timeout = 20);

Test(admin, metrics_is_valid_exposition_and_sums_workers)
{
	struct ops_http_reply r = get("GET", "/metrics");
	char err[256], ct[128];
	size_t n = 0;
	cr_assert_eq(r.status, 200);
	cr_assert_eq(ops_http_header(&r, "Content-Type", ct, sizeof(ct)), 0);
	cr_assert(strstr(ct, "text/plain") && strstr(ct, "version=0.0.4"), "%s", ct);
	cr_assert_eq(expo_check(r.body, r.len, &n, err, sizeof(err)), 0, "%s\n%s", err, r.body);
	cr_assert_gt(n, 40);
	cr_assert_eq(value(r.body, "relay_frames_in_total{type=\"MESSAGE\"}"), 10);
	cr_assert_eq(value(r.body, "relay_frames_in_total{type=\"UNKNOWN\"}"), 1);
	cr_assert_eq(value(r.body, "relay_protocol_errors_total{code=\"NOT_IN_ROOM\"}"), 1);
	cr_assert_eq(value(r.body, "relay_protocol_errors_total{code=\"PARSE_ERROR\"}"), 0);
	cr_assert_eq(value(r.body, "relay_connections"), 7);
	cr_assert_eq(value(r.body, "relay_connections_accepted_total"), 9);
	cr_assert_eq(value(r.body, "relay_worker_connections{worker=\"0\"}"), 3);
	cr_assert_eq(value(r.body, "relay_worker_connections{worker=\"1\"}"), 4);
	cr_assert_eq(value(r.body, "relay_bytes_in_total"), 1234);
	cr_assert_eq(value(r.body, "relay_connections_refused_total{reason=\"server_full\"}"), 3);
	cr_assert_eq(value(r.body, "relay_connections_refused_total{reason=\"emfile\"}"), 0);
	cr_assert_eq(value(r.body, "relay_fanout_latency_seconds_bucket{le=\"1e-05\"}"), 1);
	cr_assert_eq(value(r.body, "relay_fanout_latency_seconds_bucket{le=\"0.0001\"}"), 2);
	cr_assert_eq(value(r.body, "relay_fanout_latency_seconds_bucket{le=\"1\"}"), 2);
	cr_assert_eq(value(r.body, "relay_fanout_latency_seconds_bucket{le=\"+Inf\"}"), 3);
	cr_assert_eq(value(r.body, "relay_fanout_latency_seconds_count"), 3);
	cr_assert_float_eq(value(r.body, "relay_fanout_latency_seconds_sum"), 5.000075, 1e-9);
	cr_assert(strstr(r.body, "relay_build_info{version=\"9.9.9\"} 1\n"));
	cr_assert_eq(value(r.body, "relay_rooms"), 50);
	cr_assert_eq(value(r.body, "relay_room_memberships"), 1225);
	cr_assert_eq(value(r.body, "relay_connections_peak"), 8);
	cr_assert_eq(value(r.body, "relay_worker_inbox_items_total{worker=\"1\"}"), 11);
	cr_assert_eq(value(r.body, "relay_worker_inbox_items_total{worker=\"0\"}"), 0);
	cr_assert_eq(value(r.body, "relay_shutting_down"), 0);
	ops_http_free(&r);
}

Test(admin, health_is_200_then_503_once_shutdown_began)
{
	struct ops_http_reply r = get("GET", "/health");
	cr_assert_eq(r.status, 200);
	cr_assert(strstr(r.body, "\"status\":\"ok\""), "%s", r.body);
	cr_assert_eq(relay_json_parse((const uint8_t *)r.body, r.len, NULL, 0, NULL), 0);
	ops_http_free(&r);
	rl_metrics_set_shutdown();
	r = get("GET", "/health");
	cr_assert_eq(r.status, 503);
	cr_assert(strstr(r.body, "\"status\":\"shutting_down\""), "%s", r.body);
	ops_http_free(&r);
	r = get("GET", "/metrics");
	cr_assert_eq(value(r.body, "relay_shutting_down"), 1);
	ops_http_free(&r);
}

Test(admin, stats_is_one_json_object_with_options_and_workers)
{
	struct ops_http_reply r = get("GET", "/stats");
	cr_assert_eq(r.status, 200);
	struct relay_json_field f[] = {{.key = "version"},
				    {.key = "options"},
				    {.key = "per_worker"},
				    {.key = "totals"},
				    {.key = "workers"}};
	cr_assert_eq(relay_json_parse((const uint8_t *)r.body, r.len, f, 5, NULL), 0, "%s", r.body);
	cr_assert_eq(f[0].kind, RELAY_JSON_STRING);
	cr_assert_eq(f[1].kind, RELAY_JSON_OBJECT);
	cr_assert_eq(f[2].kind, RELAY_JSON_ARRAY);
	cr_assert_eq(f[3].kind, RELAY_JSON_OBJECT);
	cr_assert(strstr(r.body, "\"options\":{\"port\":\"4000\",\"log-level\":\"info\""), "%s",
		  r.body);
	cr_assert(strstr(r.body, "\"worker\":1,\"connections\":4"), "%s", r.body);
	cr_assert(strstr(r.body, "\"MESSAGE\":10"), "%s", r.body);
	ops_http_free(&r);
}

Test(admin, rooms_lists_the_largest_first_up_to_limit)
{
	struct ops_http_reply r = get("GET", "/rooms?limit=3");
	cr_assert_eq(r.status, 200);
	cr_assert_eq(relay_json_parse((const uint8_t *)r.body, r.len, NULL, 0, NULL), 0);
	/* members = i*7 % 50: 49 for i=7, 48 for i=14, 47 for i=21 */
	cr_assert(strstr(r.body, "{\"rooms\":50,\"largest\":[{\"room\":\"room-07\",\"members\":49},"
				 "{\"room\":\"room-14\",\"members\":48},"
				 "{\"room\":\"room-21\",\"members\":47}]}"),
		  "%s", r.body);
	ops_http_free(&r);
	r = get("GET", "/rooms");
	cr_assert(strstr(r.body, "\"members\":40}]}"), "default limit is 10: %s", r.body);
	ops_http_free(&r);
	r = get("GET", "/rooms?limit=abc");
	cr_assert_eq(r.status, 400);
	ops_http_free(&r);
	r = get("GET", "/rooms?limit=0");
	cr_assert(strstr(r.body, "\"largest\":[]"), "%s", r.body);
	ops_http_free(&r);
}

Test(admin, unknown_path_is_404_and_other_methods_405)
{
	struct ops_http_reply r = get("GET", "/nope");
	char allow[64];
	cr_assert_eq(r.status, 404);
	ops_http_free(&r);
	r = get("POST", "/metrics");
	cr_assert_eq(r.status, 405);
	cr_assert_eq(ops_http_header(&r, "Allow", allow, sizeof(allow)), 0);
	cr_assert_str_eq(allow, "GET, HEAD");
	ops_http_free(&r);
	r = get("DELETE", "/health");
	cr_assert_eq(r.status, 405);
	ops_http_free(&r);
	r = get("HEAD", "/health");
	cr_assert_eq(r.status, 200);
	ops_http_free(&r);
}

Test(admin_addr, taken_port_fails_at_open_with_a_reason)
{
	uint16_t taken;
	int fd = rl_test_loopback_listener(&taken);
	cr_assert_geq(fd, 0, "%s", rl_test_err());
	char addr[64], b[80], err[256];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", taken);
	cr_assert_lt(rl_admin_open(addr, b, sizeof(b), err, sizeof(err)), 0);
	cr_assert(strstr(err, "--admin") && strstr(err, "Address already in use"), "%s", err);
	cr_assert_lt(rl_admin_open("nonsense", b, sizeof(b), err, sizeof(err)), 0);
	cr_assert(strstr(err, "not HOST:PORT"), "%s", err);
	close(fd);
}

Test(admin_addr, parses_host_port_forms)
{
	char h[64], p[16];
	cr_assert_eq(rl_admin_parse_addr("127.0.0.1:8222", h, sizeof(h), p, sizeof(p)), 0);
	cr_assert_str_eq(h, "127.0.0.1");
	cr_assert_str_eq(p, "8222");
	cr_assert_eq(rl_admin_parse_addr("[::1]:0", h, sizeof(h), p, sizeof(p)), 0);
	cr_assert_str_eq(h, "::1");
	cr_assert_eq(rl_admin_parse_addr(":9", h, sizeof(h), p, sizeof(p)), 0);
	cr_assert_str_eq(h, "127.0.0.1");
	cr_assert_neq(rl_admin_parse_addr("::1:80", h, sizeof(h), p, sizeof(p)), 0);
	cr_assert_neq(rl_admin_parse_addr("host:", h, sizeof(h), p, sizeof(p)), 0);
	cr_assert_neq(rl_admin_parse_addr("host:70000", h, sizeof(h), p, sizeof(p)), 0);
	cr_assert_neq(rl_admin_parse_addr("host:8x", h, sizeof(h), p, sizeof(p)), 0);
}

/* ---- the checker itself must reject what Prometheus rejects ---- */

static int check(const char *t)
{
	char err[256];
	return expo_check(t, strlen(t), NULL, err, sizeof(err));
}

Test(expo_check, accepts_well_formed_text)
{
	cr_assert_eq(check("# HELP a_total A thing.\n# TYPE a_total counter\na_total 3\n"), 0);
	cr_assert_eq(check("x{a=\"1\",b=\"q\\\"\\\\\\n\"} 1.5e3 1700000000\n"), 0);
	cr_assert_eq(check("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
			   "h_sum 3\nh_count 2\n"),
		     0);
	cr_assert_eq(check("g NaN\n"), 0);
}

Test(expo_check, rejects_malformed_text)
{
	static const char *const bad[] = {
	    "a 1",				     /* no final newline */
	    "1a 1\n",				     /* bad name */
	    "a{b=1} 1\n",			     /* unquoted label */
	    "a{b=\"x\\q\"} 1\n",		     /* bad escape */
	    "a{b=\"1\",b=\"2\"} 1\n",		     /* duplicate label */
	    "a one\n",				     /* bad value */
	    "a 1\na 2\n",			     /* duplicate series */
	    "a 1\nb 1\na{x=\"1\"} 1\n",		     /* not contiguous */
	    "a 1\n# TYPE a gauge\n",		     /* TYPE after samples */
	    "# TYPE a gauge\n# TYPE a gauge\na 1\n", /* second TYPE */
	    "# TYPE a frobnicator\n",		     /* unknown type */
	    "# TYPE c counter\nc -1\n",		     /* negative counter */
	    "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n"
	    "h_count 1\n", /* not cumulative */
	    "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", /* count */
	    "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",	 /* no +Inf */
	    "a{b=\"1\"}1\n",							 /* no space */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_neq(check(bad[i]), 0, "accepted: %s", bad[i]);
}

Test(admin_addr, stop_closes_the_listening_socket)
{
	char b[80], err[256];
	struct ops_http_reply r;
	cr_assert_eq(rl_metrics_init(1), 0);
	cr_assert_eq(rl_admin_open("127.0.0.1:0", b, sizeof(b), err, sizeof(err)), 0, "%s", err);
	struct rl_admin_hooks h = {.version = "1"};
	cr_assert_eq(rl_admin_start(&h), 0);
	cr_assert_eq(ops_http(b, "GET", "/rooms", 5000, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert(strstr(r.body, "{\"rooms\":0,\"largest\":[]}"), "%s", r.body);
	ops_http_free(&r);
	rl_admin_stop();
	cr_assert_eq(ops_http(b, "GET", "/health", 5000, &r, err, sizeof(err)), -ECONNREFUSED, "%s",
		     err);
	rl_metrics_fini();
}
