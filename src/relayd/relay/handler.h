/* handler.h -- what relayd does with each complete frame: a dispatch table
 * indexed by frame type, the HELLO/JOIN/LEAVE/MESSAGE/HEARTBEAT/ERROR
 * handlers, presence events, and what a closed connection leaves behind.
 * Threading: the connection's owner worker, RCU read side online. */
#ifndef RL_HANDLER_H
#define RL_HANDLER_H

#include <relay/protocol.h>

struct rl_conn;

/* The connection layer's upcalls (struct rl_conn_upcalls, installed by
 * main.c). */
/* Handles one complete frame of <c> (header already checked by the
 * decoder): JSON validity, shape, then the type's action. */
void rl_handler_frame(struct rl_conn *c, const struct relay_frame *f);
/* <c> closed: leaves every room it is in, with userLeft events. */
void rl_handler_closed(struct rl_conn *c);

#endif
