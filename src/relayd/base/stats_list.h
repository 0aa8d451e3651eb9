/* stats_list.h -- every counter and gauge relayd keeps, in one list.
 *
 * Adding a counter is one row here plus the RL_STAT_ADD where it is
 * counted; everything else is generated from the row: the field in the
 * per-worker slot (struct rl_stats), the sum over the workers, the
 * /metrics families, the /stats keys and the totals line printed at exit.
 * test/ops/test_stats.c checks every row against the rules below.
 *
 * X(field, kind, unit, scope, dim, prom, prom_labels, help, wprom, whelp, json, totals, at)
 *   field        member of struct rl_stats, the name RL_STAT_ADD(s, field, n) takes
 *   kind         COUNTER (only grows until restart; Prometheus name ends _total)
 *                or GAUGE (goes up and down)
 *   unit         NONE (a count) or BYTES (both names then say "bytes")
 *   scope        WORKER: one slot per worker, written by its owner only, summed
 *                when read; PROCESS: one process-wide value, taken from the reader
 *                its owner registers (rl_stats_set_reader; the worker slots'
 *                copy of the field is not reported)
 *   dim          NONE (one number), MSG_TYPE (an array indexed by wire type, label
 *                type="HELLO"...; [0] is UNKNOWN) or ERR_CODE (indexed by enum
 *                relay_err, label code="..."; RELAY_ERR_NONE is not reported)
 *   prom         summed /metrics family, or NULL. Rows of one family are adjacent
 *                and differ by <prom_labels> (already formatted, k="v") or NULL
 *   help         its HELP text
 *   wprom, whelp per-worker /metrics family (label worker="K") and its HELP, or NULL
 *   json         /stats key, in "totals" and (WORKER rows) in each "per_worker"
 *                entry; a dimension is an object keyed by element name
 *   totals, at   label in the totals line printed at exit ("relayd stopped:
 *                <label> N, ..."), or NULL; for a dimension, element <at> is shown
 *
 * Keep names, labels and keys stable: dashboards, alerts and tests use them
 * (docs/operations.md, "Metrics"). */
#ifndef RL_STATS_LIST_H
#define RL_STATS_LIST_H

/* clang-format off */
#define RL_STATS_LIST(X)                                                                          \
	X(conns_current, GAUGE, NONE, WORKER, NONE,                                               \
	  "relay_connections", NULL, "Client connections currently open.",                        \
	  "relay_worker_connections", "Client connections open, per worker.",                    \
	  "connections", NULL, 0)                                                                 \
	X(conns_peak, GAUGE, NONE, PROCESS, NONE,                                                 \
	  "relay_connections_peak", NULL, "Most client connections open at once since start.",   \
	  NULL, NULL,                                                                             \
	  "connections_peak", "peak connections", 0)                                              \
	X(conns_accepted, COUNTER, NONE, WORKER, NONE,                                            \
	  "relay_connections_accepted_total", NULL, "Client connections accepted.",               \
	  "relay_worker_connections_accepted_total", "Client connections accepted, per worker.", \
	  "connections_accepted", "connections served", 0)                                        \
	X(conns_closed, COUNTER, NONE, WORKER, NONE,                                              \
	  "relay_connections_closed_total", NULL, "Client connections closed, any reason.",       \
	  NULL, NULL,                                                                             \
	  "connections_closed", NULL, 0)                                                          \
	X(refused_full, COUNTER, NONE, WORKER, NONE,                                              \
	  "relay_connections_refused_total", "reason=\"server_full\"",                            \
	  "Connections refused at accept, by reason.",                                            \
	  NULL, NULL,                                                                             \
	  "refused_server_full", NULL, 0)                                                         \
	X(refused_emfile, COUNTER, NONE, WORKER, NONE,                                            \
	  "relay_connections_refused_total", "reason=\"emfile\"",                                 \
	  "Connections refused at accept, by reason.",                                            \
	  NULL, NULL,                                                                             \
	  "refused_emfile", NULL, 0)                                                              \
	X(rooms, GAUGE, NONE, PROCESS, NONE,                                                      \
	  "relay_rooms", NULL, "Rooms that currently exist.",                                     \
	  NULL, NULL,                                                                             \
	  "rooms", NULL, 0)                                                                       \
	X(memberships, GAUGE, NONE, PROCESS, NONE,                                                \
	  "relay_room_memberships", NULL, "Connection-in-room memberships, over all rooms.",      \
	  NULL, NULL,                                                                             \
	  "room_memberships", NULL, 0)                                                            \
	X(frames_in, COUNTER, NONE, WORKER, MSG_TYPE,                                             \
	  "relay_frames_in_total", NULL,                                                          \
	  "Complete frames read from clients, by type (UNKNOWN: not in the table).",              \
	  NULL, NULL,                                                                             \
	  "frames_in", "messages in", RELAY_MSG_MESSAGE)                                          \
	X(msgs_delivered, COUNTER, NONE, WORKER, NONE,                                            \
	  "relay_messages_delivered_total", NULL,                                                 \
	  "MESSAGE frames queued to room members (presence events included).",                    \
	  "relay_worker_messages_delivered_total", "MESSAGE frames queued to members, per worker.", \
	  "messages_delivered", "messages out", 0)                                                \
	X(frames_out, COUNTER, NONE, WORKER, NONE,                                                \
	  "relay_frames_out_total", NULL, "Frames queued to clients, all types.",                 \
	  NULL, NULL,                                                                             \
	  "frames_out", NULL, 0)                                                                  \
	X(bytes_in, COUNTER, BYTES, WORKER, NONE,                                                 \
	  "relay_bytes_in_total", NULL, "Bytes read from client sockets.",                        \
	  "relay_worker_bytes_in_total", "Bytes read from client sockets, per worker.",           \
	  "bytes_in", "bytes in", 0)                                                              \
	X(bytes_out, COUNTER, BYTES, WORKER, NONE,                                                \
	  "relay_bytes_out_total", NULL, "Bytes written to client sockets.",                      \
	  "relay_worker_bytes_out_total", "Bytes written to client sockets, per worker.",         \
	  "bytes_out", "bytes out", 0)                                                            \
	X(out_queued, GAUGE, BYTES, WORKER, NONE,                                                 \
	  "relay_outbound_queued_bytes", NULL, "Bytes waiting in connections' send queues.",      \
	  "relay_worker_outbound_queued_bytes", "Bytes waiting in send queues, per worker.",      \
	  "outbound_queued_bytes", NULL, 0)                                                       \
	X(errors, COUNTER, NONE, WORKER, ERR_CODE,                                                \
	  "relay_protocol_errors_total", NULL, "ERROR frames sent to clients, by code.",          \
	  NULL, NULL,                                                                             \
	  "errors", NULL, 0)                                                                      \
	X(client_errors, COUNTER, NONE, WORKER, NONE,                                             \
	  "relay_client_error_frames_total", NULL,                                                \
	  "ERROR frames received from clients (counted and ignored).",                            \
	  NULL, NULL,                                                                             \
	  "client_error_frames", NULL, 0)                                                         \
	X(slow_consumers, COUNTER, NONE, WORKER, NONE,                                            \
	  "relay_slow_consumers_total", NULL,                                                     \
	  "Connections closed as slow consumers (SLOW_CONSUMER).",                                \
	  NULL, NULL,                                                                             \
	  "slow_consumers", "slow consumers dropped", 0)                                          \
	X(inbox_items, COUNTER, NONE, WORKER, NONE,                                               \
	  NULL, NULL, NULL,                                                                       \
	  "relay_worker_inbox_items_total", "Cross-worker items processed from the worker's inbox.", \
	  "inbox_items", NULL, 0)
/* clang-format on */

#endif
