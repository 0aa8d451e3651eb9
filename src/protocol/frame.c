/* frame.c -- frame header encode/check, type and error-code tables.
 * Threading: pure functions over constant tables; callable from any thread.
 */
#include "relay/protocol.h"
#include "proto_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const msg_type_names[RL_MSG_NTYPES] = {
	[RL_MSG_HELLO] = "HELLO",
	[RL_MSG_JOIN_ROOM] = "JOIN_ROOM",
	[RL_MSG_LEAVE_ROOM] = "LEAVE_ROOM",
	[RL_MSG_MESSAGE] = "MESSAGE",
	[RL_MSG_HEARTBEAT] = "HEARTBEAT",
	[RL_MSG_ERROR] = "ERROR",
};

/* The spec's error table: name and whether it is fatal. */
static const struct {
	const char *name;
	bool fatal;
} err_table[RL_ERR_NCODES] = {
	[RL_ERR_NONE] = {"NONE", false},
	[RL_ERR_INVALID_FRAME] = {"INVALID_FRAME", true},
	[RL_ERR_FRAME_TOO_LARGE] = {"FRAME_TOO_LARGE", true},
	[RL_ERR_UNSUPPORTED_VERSION] = {"UNSUPPORTED_VERSION", true},
	[RL_ERR_UNKNOWN_MESSAGE_TYPE] = {"UNKNOWN_MESSAGE_TYPE", true},
	[RL_ERR_PARSE_ERROR] = {"PARSE_ERROR", true},
	[RL_ERR_INVALID_PAYLOAD] = {"INVALID_PAYLOAD", false},
	[RL_ERR_INVALID_ROOM] = {"INVALID_ROOM", false},
	[RL_ERR_NOT_IN_ROOM] = {"NOT_IN_ROOM", false},
	[RL_ERR_TOO_MANY_ROOMS] = {"TOO_MANY_ROOMS", false},
	[RL_ERR_IDLE_TIMEOUT] = {"IDLE_TIMEOUT", true},
	[RL_ERR_FRAME_TIMEOUT] = {"FRAME_TIMEOUT", true},
	[RL_ERR_SLOW_CONSUMER] = {"SLOW_CONSUMER", true},
	[RL_ERR_SERVER_FULL] = {"SERVER_FULL", true},
	[RL_ERR_SERVER_SHUTDOWN] = {"SERVER_SHUTDOWN", true},
};

const char *rl_msg_type_name(unsigned type)
{
	if (type > RL_MSG_INVALID && type < RL_MSG_NTYPES)
		return msg_type_names[type];
	return "UNKNOWN";
}

const char *rl_err_name(enum rl_err code)
{
	if ((unsigned)code < RL_ERR_NCODES)
		return err_table[code].name;
	return "UNKNOWN";
}

bool rl_err_is_fatal(enum rl_err code)
{
	return (unsigned)code < RL_ERR_NCODES && err_table[code].fatal;
}

enum rl_err rl_err_from_name(const char *s, size_t n)
{
	if (s == NULL)
		return RL_ERR_NONE;
	for (unsigned i = RL_ERR_NONE + 1; i < RL_ERR_NCODES; i++) {
		const char *name = err_table[i].name;
		if (strlen(name) == n && memcmp(name, s, n) == 0)
			return (enum rl_err)i;
	}
	return RL_ERR_NONE;
}

static void put_be32(uint8_t *out, uint32_t v)
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

void rl_frame_put_header(uint8_t out[RL_FRAME_HDR_BYTES], uint8_t type,
			 uint8_t flags, uint32_t payload_len)
{
	put_be32(out, payload_len + RL_FRAME_MIN_LENGTH);
	out[4] = RL_PROTOCOL_VERSION;
	out[5] = type;
	out[6] = flags;
}

size_t rl_frame_encode(uint8_t *out, uint8_t type, uint8_t flags,
		       const void *payload, uint32_t len)
{
	rl_frame_put_header(out, type, flags, len);
	if (len > 0)
		memcpy(out + RL_FRAME_HDR_BYTES, payload, len);
	return (size_t)RL_FRAME_HDR_BYTES + len;
}

enum rl_err rl_frame_check_length(uint32_t length, uint32_t max_frame)
{
	return rl_check_length(length, max_frame);
}

enum rl_err rl_frame_check_header(uint8_t version, uint8_t type, uint8_t flags)
{
	return rl_check_header(version, type, flags);
}

void rl_proto_oom(size_t n)
{
	fprintf(stderr, "relay-protocol: out of memory allocating %zu bytes\n", n);
	abort();
}
