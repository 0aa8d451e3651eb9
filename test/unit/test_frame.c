/* test_frame.c -- frame header encode/check and the name tables (frame.c). */
#include "unit.h"

Test(frame, header_is_big_endian_length_version_type_flags)
{
	uint8_t h[RELAY_FRAME_HDR_BYTES];
	relay_frame_put_header(h, RELAY_MSG_MESSAGE, RELAY_FLAG_JSON, 0x01020304u - 3);
	const uint8_t want[] = {0x01, 0x02, 0x03, 0x04, 0x01, 0x04, 0x01};
	cr_assert_arr_eq(h, want, sizeof want);
}

Test(frame, length_counts_header_bytes_after_itself)
{
	uint8_t buf[16];
	size_t n = relay_frame_encode(buf, RELAY_MSG_HEARTBEAT, 0, NULL, 0);
	cr_assert_eq(n, 7);
	const uint8_t want[] = {0, 0, 0, 3, 1, 5, 0};
	cr_assert_arr_eq(buf, want, sizeof want);
	n = relay_frame_encode(buf, RELAY_MSG_JOIN_ROOM, RELAY_FLAG_BINARY, "abc", 3);
	cr_assert_eq(n, 10);
	const uint8_t want2[] = {0, 0, 0, 6, 1, 2, 2, 'a', 'b', 'c'};
	cr_assert_arr_eq(buf, want2, sizeof want2);
}

Test(frame, length_and_header_offsets_read_what_encode_wrote)
{
	uint8_t buf[16];
	relay_frame_encode(buf, RELAY_MSG_ERROR, RELAY_FLAG_JSON, "{}", 2);
	cr_assert_eq(relay_frame_length(buf), 5);
	cr_assert_eq(buf[RELAY_FRAME_VERSION_OFFSET], RELAY_PROTOCOL_VERSION);
	cr_assert_eq(buf[RELAY_FRAME_TYPE_OFFSET], RELAY_MSG_ERROR);
	cr_assert_eq(buf[RELAY_FRAME_FLAGS_OFFSET], RELAY_FLAG_JSON);
	const uint8_t big[] = {0x81, 0x02, 0x03, 0x04};
	cr_assert_eq(relay_frame_length(big), 0x81020304u, "big endian, all 32 bits");
}

Test(frame, length_check_order_is_invalid_then_too_large)
{
	cr_assert_eq(relay_frame_check_length(0, 100), RELAY_ERR_INVALID_FRAME);
	cr_assert_eq(relay_frame_check_length(2, 100), RELAY_ERR_INVALID_FRAME);
	cr_assert_eq(relay_frame_check_length(2, 1), RELAY_ERR_INVALID_FRAME);
	cr_assert_eq(relay_frame_check_length(3, 100), RELAY_ERR_NONE);
	cr_assert_eq(relay_frame_check_length(100, 100), RELAY_ERR_NONE);
	cr_assert_eq(relay_frame_check_length(101, 100), RELAY_ERR_FRAME_TOO_LARGE);
	cr_assert_eq(relay_frame_check_length(UINT32_MAX, RELAY_DEFAULT_MAX_FRAME),
		     RELAY_ERR_FRAME_TOO_LARGE);
}

Test(frame, header_check_order_is_version_type_flags)
{
	cr_assert_eq(relay_frame_check_header(1, 1, 0), RELAY_ERR_NONE);
	cr_assert_eq(relay_frame_check_header(0, 1, 0), RELAY_ERR_UNSUPPORTED_VERSION);
	cr_assert_eq(relay_frame_check_header(2, 0, 3), RELAY_ERR_UNSUPPORTED_VERSION);
	cr_assert_eq(relay_frame_check_header(1, 0, 3), RELAY_ERR_UNKNOWN_MESSAGE_TYPE);
	cr_assert_eq(relay_frame_check_header(1, 7, 0), RELAY_ERR_UNKNOWN_MESSAGE_TYPE);
	cr_assert_eq(relay_frame_check_header(1, 255, 0), RELAY_ERR_UNKNOWN_MESSAGE_TYPE);
	cr_assert_eq(relay_frame_check_header(1, 4, 3), RELAY_ERR_INVALID_FRAME);
	for (unsigned bit = 2; bit < 8; bit++)
		cr_assert_eq(relay_frame_check_header(1, 4, (uint8_t)(1u << bit)),
			     RELAY_ERR_INVALID_FRAME, "bit %u", bit);
	for (unsigned t = 1; t <= 6; t++)
		for (unsigned f = 0; f <= 2; f++)
			cr_assert_eq(relay_frame_check_header(1, (uint8_t)t, (uint8_t)f), RELAY_ERR_NONE);
}

Test(frame, every_flags_byte_has_one_verdict)
{
	for (unsigned f = 0; f < 256; f++) {
		bool ok = f == 0 || f == RELAY_FLAG_JSON || f == RELAY_FLAG_BINARY;
		cr_assert_eq(relay_frame_check_header(1, RELAY_MSG_MESSAGE, (uint8_t)f),
			     ok ? RELAY_ERR_NONE : RELAY_ERR_INVALID_FRAME, "flags 0x%02x", f);
	}
}

Test(frame, every_type_has_its_spec_name_and_any_other_is_unknown)
{
	cr_assert_str_eq(relay_msg_type_name(RELAY_MSG_HELLO), "HELLO");
	cr_assert_str_eq(relay_msg_type_name(RELAY_MSG_JOIN_ROOM), "JOIN_ROOM");
	cr_assert_str_eq(relay_msg_type_name(RELAY_MSG_LEAVE_ROOM), "LEAVE_ROOM");
	cr_assert_str_eq(relay_msg_type_name(RELAY_MSG_MESSAGE), "MESSAGE");
	cr_assert_str_eq(relay_msg_type_name(RELAY_MSG_HEARTBEAT), "HEARTBEAT");
	cr_assert_str_eq(relay_msg_type_name(RELAY_MSG_ERROR), "ERROR");
	cr_assert_str_eq(relay_msg_type_name(0), "UNKNOWN");
	cr_assert_str_eq(relay_msg_type_name(7), "UNKNOWN");
	cr_assert_str_eq(relay_msg_type_name(1000), "UNKNOWN");
}

Test(frame, error_table_matches_the_spec)
{
	static const struct {
		enum relay_err code;
		const char *name;
		bool fatal;
	} spec[] = {
		{RELAY_ERR_INVALID_FRAME, "INVALID_FRAME", true},
		{RELAY_ERR_FRAME_TOO_LARGE, "FRAME_TOO_LARGE", true},
		{RELAY_ERR_UNSUPPORTED_VERSION, "UNSUPPORTED_VERSION", true},
		{RELAY_ERR_UNKNOWN_MESSAGE_TYPE, "UNKNOWN_MESSAGE_TYPE", true},
		{RELAY_ERR_PARSE_ERROR, "PARSE_ERROR", true},
		{RELAY_ERR_INVALID_PAYLOAD, "INVALID_PAYLOAD", false},
		{RELAY_ERR_INVALID_ROOM, "INVALID_ROOM", false},
		{RELAY_ERR_NOT_IN_ROOM, "NOT_IN_ROOM", false},
		{RELAY_ERR_TOO_MANY_ROOMS, "TOO_MANY_ROOMS", false},
		{RELAY_ERR_IDLE_TIMEOUT, "IDLE_TIMEOUT", true},
		{RELAY_ERR_FRAME_TIMEOUT, "FRAME_TIMEOUT", true},
		{RELAY_ERR_SLOW_CONSUMER, "SLOW_CONSUMER", true},
		{RELAY_ERR_SERVER_FULL, "SERVER_FULL", true},
		{RELAY_ERR_SERVER_SHUTDOWN, "SERVER_SHUTDOWN", true},
		{RELAY_ERR_UNAUTHORIZED, "UNAUTHORIZED", true},
		{RELAY_ERR_TOKEN_EXPIRED, "TOKEN_EXPIRED", true},
		{RELAY_ERR_FORBIDDEN, "FORBIDDEN", false},
		{RELAY_ERR_TOO_MANY_CONNECTIONS, "TOO_MANY_CONNECTIONS", true},
	};
	cr_assert_eq(sizeof spec / sizeof spec[0], RELAY_ERR_NCODES - 1);
	for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
		cr_assert_str_eq(relay_err_name(spec[i].code), spec[i].name);
		cr_assert_eq(relay_err_is_fatal(spec[i].code), spec[i].fatal, "%s", spec[i].name);
		cr_assert_eq(relay_err_from_name(spec[i].name, strlen(spec[i].name)), spec[i].code);
	}
	cr_assert_str_eq(relay_err_name(RELAY_ERR_NONE), "NONE");
	cr_assert_str_eq(relay_err_name(RELAY_ERR_NCODES), "UNKNOWN");
	cr_assert_str_eq(relay_err_name((enum relay_err)-1), "UNKNOWN");
	cr_assert_not(relay_err_is_fatal(RELAY_ERR_NONE));
	cr_assert_not(relay_err_is_fatal(RELAY_ERR_NCODES));
	cr_assert_eq(relay_err_from_name("NONE", 4), RELAY_ERR_NONE);
	cr_assert_eq(relay_err_from_name("INVALID_FRAMEX", 14), RELAY_ERR_NONE);
	cr_assert_eq(relay_err_from_name("INVALID_FRAME", 12), RELAY_ERR_NONE);
	cr_assert_eq(relay_err_from_name(NULL, 0), RELAY_ERR_NONE);
}

Test(frame, from_a_server_only_a_binary_message_may_carry_the_seq_flag)
{
	for (unsigned t = 1; t <= 6; t++)
		for (unsigned f = 0; f < 256; f++) {
			bool ok = f == 0 || f == RELAY_FLAG_JSON || f == RELAY_FLAG_BINARY ||
				  (t == RELAY_MSG_MESSAGE && f == (RELAY_FLAG_BINARY | RELAY_FLAG_SEQ));
			cr_assert_eq(relay_frame_check_header_from_server(1, (uint8_t)t, (uint8_t)f),
				     ok ? RELAY_ERR_NONE : RELAY_ERR_INVALID_FRAME, "type %u flags 0x%02x",
				     t, f);
		}
	cr_assert_eq(relay_frame_check_header_from_server(2, RELAY_MSG_MESSAGE, 0x0a),
		     RELAY_ERR_UNSUPPORTED_VERSION);
	/* from a client the same byte is a reserved bit */
	cr_assert_eq(relay_frame_check_header(1, RELAY_MSG_MESSAGE, 0x0a), RELAY_ERR_INVALID_FRAME);
}
