/* frame.c -- frame header encode/check, type and error-code tables.
 * Threading: pure functions over constant tables; callable from any thread.
 */
#include "relay/protocol.h"
#include "proto_internal.h"

#include <string.h>

static const char *const msg_type_names[RELAY_MSG_NTYPES] = {
	[RELAY_MSG_HELLO] = "HELLO",
	[RELAY_MSG_JOIN_ROOM] = "JOIN_ROOM",
	[RELAY_MSG_LEAVE_ROOM] = "LEAVE_ROOM",
	[RELAY_MSG_MESSAGE] = "MESSAGE",
	[RELAY_MSG_HEARTBEAT] = "HEARTBEAT",
	[RELAY_MSG_ERROR] = "ERROR",
};

/* The spec's error table: name and whether it is fatal. */
static const struct {
	const char *name;
	bool fatal;
} err_table[RELAY_ERR_NCODES] = {
	[RELAY_ERR_NONE] = {"NONE", false},
	[RELAY_ERR_INVALID_FRAME] = {"INVALID_FRAME", true},
	[RELAY_ERR_FRAME_TOO_LARGE] = {"FRAME_TOO_LARGE", true},
	[RELAY_ERR_UNSUPPORTED_VERSION] = {"UNSUPPORTED_VERSION", true},
	[RELAY_ERR_UNKNOWN_MESSAGE_TYPE] = {"UNKNOWN_MESSAGE_TYPE", true},
	[RELAY_ERR_PARSE_ERROR] = {"PARSE_ERROR", true},
	[RELAY_ERR_INVALID_PAYLOAD] = {"INVALID_PAYLOAD", false},
	[RELAY_ERR_INVALID_ROOM] = {"INVALID_ROOM", false},
	[RELAY_ERR_NOT_IN_ROOM] = {"NOT_IN_ROOM", false},
	[RELAY_ERR_TOO_MANY_ROOMS] = {"TOO_MANY_ROOMS", false},
	[RELAY_ERR_IDLE_TIMEOUT] = {"IDLE_TIMEOUT", true},
	[RELAY_ERR_FRAME_TIMEOUT] = {"FRAME_TIMEOUT", true},
	[RELAY_ERR_SLOW_CONSUMER] = {"SLOW_CONSUMER", true},
	[RELAY_ERR_SERVER_FULL] = {"SERVER_FULL", true},
	[RELAY_ERR_SERVER_SHUTDOWN] = {"SERVER_SHUTDOWN", true},
	[RELAY_ERR_UNAUTHORIZED] = {"UNAUTHORIZED", true},
	[RELAY_ERR_TOKEN_EXPIRED] = {"TOKEN_EXPIRED", true},
	[RELAY_ERR_FORBIDDEN] = {"FORBIDDEN", false},
	[RELAY_ERR_TOO_MANY_CONNECTIONS] = {"TOO_MANY_CONNECTIONS", true},
};

const char *relay_msg_type_name(unsigned type)
{
	if (type > RELAY_MSG_INVALID && type < RELAY_MSG_NTYPES)
		return msg_type_names[type];
	return "UNKNOWN";
}

const char *relay_err_name(enum relay_err code)
{
	if ((unsigned)code < RELAY_ERR_NCODES)
		return err_table[code].name;
	return "UNKNOWN";
}

bool relay_err_is_fatal(enum relay_err code)
{
	return (unsigned)code < RELAY_ERR_NCODES && err_table[code].fatal;
}

enum relay_err relay_err_from_name(const char *s, size_t n)
{
	if (s == NULL)
		return RELAY_ERR_NONE;
	for (unsigned i = RELAY_ERR_NONE + 1; i < RELAY_ERR_NCODES; i++) {
		const char *name = err_table[i].name;
		if (strlen(name) == n && memcmp(name, s, n) == 0)
			return (enum relay_err)i;
	}
	return RELAY_ERR_NONE;
}

static void put_be32(uint8_t *out, uint32_t v)
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

void relay_frame_put_header(uint8_t out[RELAY_FRAME_HDR_BYTES], uint8_t type,
			 uint8_t flags, uint32_t payload_len)
{
	put_be32(out, payload_len + RELAY_FRAME_MIN_LENGTH);
	out[4] = RELAY_PROTOCOL_VERSION;
	out[5] = type;
	out[6] = flags;
}

size_t relay_frame_encode(uint8_t *out, uint8_t type, uint8_t flags,
		       const void *payload, uint32_t len)
{
	relay_frame_put_header(out, type, flags, len);
	if (len > 0)
		memcpy(out + RELAY_FRAME_HDR_BYTES, payload, len);
	return (size_t)RELAY_FRAME_HDR_BYTES + len;
}

enum relay_err relay_frame_check_length(uint32_t length, uint32_t max_frame)
{
	return relay_check_length(length, max_frame);
}

enum relay_err relay_frame_check_header(uint8_t version, uint8_t type, uint8_t flags)
{
	return relay_check_header(version, type, flags);
}

enum relay_err relay_frame_check_header_from_server(uint8_t version, uint8_t type, uint8_t flags)
{
	return relay_check_header_from_server(version, type, flags);
}
