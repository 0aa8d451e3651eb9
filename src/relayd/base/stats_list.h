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
 *   unit         NONE (a count), BYTES (both names then say "bytes") or MS (a time,
 *                counted in milliseconds: /metrics shows seconds and its name says
 *                "seconds", the /stats key ends in "_ms")
 *   scope        WORKER: one slot per worker, written by its owner only, summed
 *                when read; PROCESS: one process-wide value, taken from the reader
 *                its owner registers (rl_stats_set_reader; the worker slots'
 *                copy of the field is not reported)
 *   dim          NONE (one number), MSG_TYPE (an array indexed by wire type, label
 *                type="HELLO"...; [0] is UNKNOWN), ERR_CODE (indexed by enum
 *                relay_err, label code="..."; RELAY_ERR_NONE is not reported) or
 *                AUTH_FAIL (indexed by enum rl_auth_fail, label reason="...": the
 *                list RL_AUTH_FAIL_LIST below)
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
	X(refused_per_ip, COUNTER, NONE, WORKER, NONE,                                            \
	  "relay_connections_refused_total", "reason=\"too_many_connections\"",                  \
	  "Connections refused at accept, by reason.",                                            \
	  NULL, NULL,                                                                             \
	  "refused_too_many_connections", NULL, 0)                                                \
	X(rooms, GAUGE, NONE, PROCESS, NONE,                                                      \
	  "relay_rooms", NULL, "Rooms that currently exist.",                                     \
	  NULL, NULL,                                                                             \
	  "rooms", NULL, 0)                                                                       \
	X(memberships, GAUGE, NONE, PROCESS, NONE,                                                \
	  "relay_room_memberships", NULL, "Connection-in-room memberships, over all rooms.",      \
	  NULL, NULL,                                                                             \
	  "room_memberships", NULL, 0)                                                            \
	X(rooms_refused, COUNTER, NONE, WORKER, NONE,                                             \
	  "relay_room_creations_refused_total", NULL,                                             \
	  "JOIN_ROOMs refused with TOO_MANY_ROOMS because the room would be one more than --max-rooms.", \
	  NULL, NULL,                                                                             \
	  "room_creations_refused", NULL, 0)                                                      \
	X(frames_in, COUNTER, NONE, WORKER, MSG_TYPE,                                             \
	  "relay_frames_in_total", NULL,                                                          \
	  "Complete frames read from clients, by type (UNKNOWN: not in the table).",              \
	  NULL, NULL,                                                                             \
	  "frames_in", "messages in", RELAY_MSG_MESSAGE)                                          \
	X(msgs_delivered, COUNTER, NONE, WORKER, NONE,                                            \
	  "relay_messages_delivered_total", NULL,                                                 \
	  "MESSAGE frames queued to room members (presence events included).",                    \
	  "relay_worker_messages_delivered_total", "MESSAGE frames queued to members, "           \
	  "per worker.",                                                                          \
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
	  "inbox_items", NULL, 0)                                                                 \
	X(conns_paused, COUNTER, NONE, WORKER, NONE,                                              \
	  "relay_publisher_pauses_total", NULL,                                                   \
	  "Times a connection's reads were paused because its publish filled another worker's inbox.", \
	  NULL, NULL,                                                                             \
	  "publisher_pauses", NULL, 0)                                                            \
	X(throttled, GAUGE, NONE, WORKER, NONE,                                                   \
	  "relay_rate_limited_connections", NULL,                                                 \
	  "Connections not read right now because they went over a rate limit (--publish-rate, --publish-bytes-rate, --join-rate).", \
	  NULL, NULL,                                                                             \
	  "rate_limited_connections", NULL, 0)                                                    \
	X(throttled_ms, COUNTER, MS, WORKER, NONE,                                                \
	  "relay_rate_limit_paused_seconds_total", NULL,                                          \
	  "Time connections spent not read because they went over a rate limit, summed over connections.", \
	  NULL, NULL,                                                                             \
	  "rate_limit_paused_ms", NULL, 0)                                                        \
	X(throttles_publish, COUNTER, NONE, WORKER, NONE,                                         \
	  "relay_rate_limit_pauses_total", "limit=\"publish\"",                                  \
	  "Times a connection stopped being read because it went over a rate limit, by limit.",   \
	  NULL, NULL,                                                                             \
	  "rate_limit_pauses_publish", NULL, 0)                                                   \
	X(throttles_publish_bytes, COUNTER, NONE, WORKER, NONE,                                   \
	  "relay_rate_limit_pauses_total", "limit=\"publish_bytes\"",                            \
	  "Times a connection stopped being read because it went over a rate limit, by limit.",   \
	  NULL, NULL,                                                                             \
	  "rate_limit_pauses_publish_volume", NULL, 0)                                            \
	X(throttles_join, COUNTER, NONE, WORKER, NONE,                                            \
	  "relay_rate_limit_pauses_total", "limit=\"join\"",                                     \
	  "Times a connection stopped being read because it went over a rate limit, by limit.",   \
	  NULL, NULL,                                                                             \
	  "rate_limit_pauses_join", NULL, 0)                                                      \
	X(accept_backoffs, COUNTER, NONE, WORKER, NONE,                                           \
	  "relay_accept_backoffs_total", NULL,                                                    \
	  "Times a worker took its listeners out of the loop: out of descriptors with no reserve.", \
	  NULL, NULL,                                                                             \
	  "accept_backoffs", NULL, 0)                                                             \
	X(tls_userspace, GAUGE, NONE, WORKER, NONE,                                               \
	  "relay_tls_connections", "path=\"userspace\"",                                         \
	  "TLS connections past the handshake, by write path: ktls when the kernel makes the records, userspace when OpenSSL does.", \
	  NULL, NULL,                                                                             \
	  "tls_connections_userspace", NULL, 0)                                                   \
	X(tls_ktls, GAUGE, NONE, WORKER, NONE,                                                    \
	  "relay_tls_connections", "path=\"ktls\"",                                              \
	  "TLS connections past the handshake, by write path: ktls when the kernel makes the records, userspace when OpenSSL does.", \
	  NULL, NULL,                                                                             \
	  "tls_connections_ktls", NULL, 0)                                                        \
	X(tls_handshake_failures, COUNTER, NONE, WORKER, NONE,                                    \
	  "relay_tls_handshake_failures_total", NULL,                                             \
	  "TLS handshakes refused, broken off by the client or not done in time.",                                     \
	  NULL, NULL,                                                                             \
	  "tls_handshake_failures", NULL, 0)                                                      \
	X(mem_tails, GAUGE, BYTES, WORKER, NONE,                                                  \
	  "relay_partial_frame_bytes", NULL, "Bytes allocated for clients' partial frames.",      \
	  NULL, NULL,                                                                             \
	  "partial_frame_bytes", NULL, 0)                                                         \
	X(budget_evictions, COUNTER, NONE, WORKER, NONE,                                          \
	  "relay_client_memory_evictions_total", NULL,                                            \
	  "Connections dropped (SLOW_CONSUMER) to get back under the client memory budget.",      \
	  NULL, NULL,                                                                             \
	  "client_memory_evictions", NULL, 0)                                                     \
	X(read_holds, COUNTER, NONE, WORKER, NONE,                                                \
	  "relay_client_memory_read_holds_total", NULL,                                           \
	  "Times a connection with a large partial frame stopped being read while over the budget.", \
	  NULL, NULL,                                                                             \
	  "client_memory_read_holds", NULL, 0)                                                    \
	X(client_mem, GAUGE, BYTES, PROCESS, NONE,                                                \
	  "relay_client_memory_bytes", NULL,                                                      \
	  "Memory held for clients, as the budget counts it: queued output, partial frames, cross-worker messages.", \
	  NULL, NULL,                                                                             \
	  "client_memory_bytes", NULL, 0)                                                         \
	X(mem_budget, GAUGE, BYTES, PROCESS, NONE,                                                \
	  "relay_client_memory_budget_bytes", NULL,                                               \
	  "The client memory budget, --max-client-memory (0 = unlimited).",                       \
	  NULL, NULL,                                                                             \
	  "client_memory_budget_bytes", NULL, 0)                                                         \
	X(auth_failures, COUNTER, NONE, WORKER, AUTH_FAIL,                                        \
	  "relay_auth_failures_total", NULL,                                                      \
	  "Authentications refused (fatal UNAUTHORIZED), by reason.",                             \
	  NULL, NULL,                                                                             \
	  "auth_failures", NULL, 0)                                                               \
	X(forbidden_joins, COUNTER, NONE, WORKER, NONE,                                           \
	  "relay_auth_forbidden_total", "op=\"join\"",                                            \
	  "Requests the token's room permissions refused (FORBIDDEN), by operation.",             \
	  NULL, NULL,                                                                             \
	  "forbidden_joins", NULL, 0)                                                             \
	X(forbidden_publishes, COUNTER, NONE, WORKER, NONE,                                       \
	  "relay_auth_forbidden_total", "op=\"publish\"",                                         \
	  "Requests the token's room permissions refused (FORBIDDEN), by operation.",             \
	  NULL, NULL,                                                                             \
	  "forbidden_publishes", NULL, 0)                                                         \
	X(tokens_expired, COUNTER, NONE, WORKER, NONE,                                            \
	  "relay_auth_tokens_expired_total", NULL,                                                \
	  "Connections closed because their token expired (TOKEN_EXPIRED).",                      \
	  NULL, NULL,                                                                             \
	  "tokens_expired", NULL, 0)                                                          \
	X(cluster_link_up, GAUGE, NONE, PROCESS, NONE,                                            \
	  "relay_cluster_link_up", NULL,                                                          \
	  "1 while the cluster bus link is up (0: down, connecting, or not in cluster mode).",    \
	  NULL, NULL,                                                                             \
	  "cluster_link_up", NULL, 0)                                                             \
	X(cluster_subscriptions, GAUGE, NONE, PROCESS, NONE,                                      \
	  "relay_cluster_subscriptions", NULL,                                                    \
	  "Room channels this node is subscribed to on the cluster bus.",                         \
	  NULL, NULL,                                                                             \
	  "cluster_subscriptions", NULL, 0)                                                       \
	X(cluster_msgs_out, COUNTER, NONE, PROCESS, NONE,                                         \
	  "relay_cluster_messages_total", "direction=\"out\"",                                  \
	  "Frames bridged through the cluster bus: published (out) or received from "             \
	  "other nodes (in).",                                                                    \
	  NULL, NULL,                                                                             \
	  "cluster_messages_out", NULL, 0)                                                        \
	X(cluster_msgs_in, COUNTER, NONE, PROCESS, NONE,                                          \
	  "relay_cluster_messages_total", "direction=\"in\"",                                   \
	  "Frames bridged through the cluster bus: published (out) or received from "             \
	  "other nodes (in).",                                                                    \
	  NULL, NULL,                                                                             \
	  "cluster_messages_in", NULL, 0)                                                         \
	X(cluster_dropped_out, COUNTER, NONE, PROCESS, NONE,                                      \
	  "relay_cluster_dropped_total", "direction=\"out\"",                                   \
	  "Frames the cluster bridge dropped: not published (queue full, link down) "             \
	  "or not delivered (queue full, too large).",                                            \
	  NULL, NULL,                                                                             \
	  "cluster_dropped_out", NULL, 0)                                                         \
	X(cluster_dropped_in, COUNTER, NONE, PROCESS, NONE,                                       \
	  "relay_cluster_dropped_total", "direction=\"in\"",                                    \
	  "Frames the cluster bridge dropped: not published (queue full, link down) "             \
	  "or not delivered (queue full, too large).",                                            \
	  NULL, NULL,                                                                             \
	  "cluster_dropped_in", NULL, 0)                                                          \
	X(cluster_gaps, COUNTER, NONE, PROCESS, NONE,                                             \
	  "relay_cluster_gap_events_total", NULL,                                                 \
	  "Gap events sent to a room's local members (one per room and occasion).",               \
	  NULL, NULL,                                                                             \
	  "cluster_gap_events", NULL, 0)                                                          \
	X(cluster_reconnects, COUNTER, NONE, PROCESS, NONE,                                       \
	  "relay_cluster_reconnects_total", NULL,                                                 \
	  "Times the cluster bus link came back after it was lost.",                              \
	  NULL, NULL,                                                                             \
	  "cluster_reconnects", NULL, 0)                                                          \
	X(cluster_queue_out, GAUGE, BYTES, PROCESS, NONE,                                         \
	  "relay_cluster_queue_bytes", "direction=\"out\"",                                     \
	  "Bytes waiting in the cluster bridge: to be published (out) or to be "                  \
	  "delivered by the workers (in).",                                                       \
	  NULL, NULL,                                                                             \
	  "cluster_queue_out_bytes", NULL, 0)                                                     \
	X(cluster_queue_in, GAUGE, BYTES, PROCESS, NONE,                                          \
	  "relay_cluster_queue_bytes", "direction=\"in\"",                                      \
	  "Bytes waiting in the cluster bridge: to be published (out) or to be "                  \
	  "delivered by the workers (in).",                                                       \
	  NULL, NULL,                                                                             \
	  "cluster_queue_in_bytes", NULL, 0)                                                      \
	X(cluster_commands, COUNTER, NONE, PROCESS, NONE,                                         \
	  "relay_cluster_commands_total", NULL,                                                   \
	  "Commands the cluster bridge wrote on its publish connection.",                         \
	  NULL, NULL,                                                                             \
	  "cluster_commands", NULL, 0)                                                            \
	X(cluster_writes, COUNTER, NONE, PROCESS, NONE,                                           \
	  "relay_cluster_writes_total", NULL,                                                     \
	  "Write calls on the cluster publish connection (commands per write = the ratio).",      \
	  NULL, NULL,                                                                             \
	  "cluster_writes", NULL, 0)                                                              \
	X(cluster_reads, COUNTER, NONE, PROCESS, NONE,                                            \
	  "relay_cluster_reads_total", NULL,                                                      \
	  "Reads on the cluster subscribe connection that returned data.",                        \
	  NULL, NULL,                                                                             \
	  "cluster_reads", NULL, 0)                                                               \
	X(cluster_read_msgs, COUNTER, NONE, PROCESS, NONE,                                        \
	  "relay_cluster_read_messages_total", NULL,                                              \
	  "Messages parsed from the cluster subscribe connection (messages per read = "           \
	  "the ratio).",                                                                          \
	  NULL, NULL,                                                                             \
	  "cluster_read_messages", NULL, 0)                                                           \
	X(hist_bytes, GAUGE, BYTES, PROCESS, NONE,                                                \
	  "relay_history_bytes", NULL,                                                            \
	  "Bytes of room history kept, as counted against --history-total-bytes.",                \
	  NULL, NULL,                                                                             \
	  "history_bytes", NULL, 0)                                                               \
	X(hist_messages, GAUGE, NONE, PROCESS, NONE,                                              \
	  "relay_history_messages", NULL, "Messages kept in room histories.",                     \
	  NULL, NULL,                                                                             \
	  "history_messages", NULL, 0)                                                            \
	X(rooms_retained, GAUGE, NONE, PROCESS, NONE,                                             \
	  "relay_rooms_retained", NULL,                                                           \
	  "Rooms without members kept for --history-ttl (counted in relay_rooms too).",           \
	  NULL, NULL,                                                                             \
	  "rooms_retained", NULL, 0)                                                              \
	X(hist_resumes_ok, COUNTER, NONE, WORKER, NONE,                                           \
	  "relay_history_resumes_total", "result=\"recovered\"",                                  \
	  "JOIN_ROOM requests with since, by result.",                                            \
	  NULL, NULL,                                                                             \
	  "history_resumes_recovered", NULL, 0)                                                   \
	X(hist_resumes_failed, COUNTER, NONE, WORKER, NONE,                                       \
	  "relay_history_resumes_total", "result=\"failed\"",                                     \
	  "JOIN_ROOM requests with since, by result.",                                            \
	  NULL, NULL,                                                                             \
	  "history_resumes_failed", NULL, 0)                                                      \
	X(hist_evictions, COUNTER, NONE, WORKER, NONE,                                            \
	  "relay_history_evictions_total", NULL,                                                  \
	  "Stored messages dropped from a room's history to make room for newer ones.",           \
	  NULL, NULL,                                                                             \
	  "history_evictions", NULL, 0)                                                           \
	X(hist_unstored, COUNTER, NONE, WORKER, NONE,                                             \
	  "relay_history_unstored_total", NULL,                                                   \
	  "Messages delivered but not stored (too large for the budgets): a hole in the history.", \
	  NULL, NULL,                                                                             \
	  "history_unstored", NULL, 0)


/* Why an authentication was refused: the elements of the AUTH_FAIL dimension
 * (enum rl_auth_fail, stats.h), as X(ID, label). relay/auth.c maps every
 * token rule (relay/token.h) to one of them. */
#define RL_AUTH_FAIL_LIST(X)                                                                      \
	X(NO_TOKEN, "no_token")               /* HELLO without a token, or not a string */      \
	X(NOT_AUTHENTICATED, "not_authenticated") /* another frame before the first valid HELLO */ \
	X(HELLO_TIMEOUT, "hello_timeout")     /* no valid HELLO within --hello-timeout */        \
	X(MALFORMED, "malformed")             /* size, segments, base64url, header, payload */   \
	X(ALGORITHM, "algorithm")             /* alg none, or not the key's algorithm */         \
	X(UNKNOWN_KEY, "unknown_key")         /* no kid or an unknown kid with several keys */   \
	X(SIGNATURE, "signature")             /* does not verify */                              \
	X(EXPIRED, "expired")                 /* exp + leeway passed */                          \
	X(NOT_YET_VALID, "not_yet_valid")     /* nbf - leeway ahead */                           \
	X(AUDIENCE, "audience")               /* aud does not name --auth-audience */            \
	X(CLAIMS, "claims")                   /* exp, nbf, sub or rooms malformed */             \
	X(SUBJECT_CHANGED, "subject_changed") /* a refresh for another sub */                   \
	X(INTERNAL, "internal")               /* out of memory, OpenSSL failure */
/* clang-format on */

#endif
