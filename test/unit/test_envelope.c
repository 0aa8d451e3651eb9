/* test_envelope.c -- the binary MESSAGE envelopes (envelope.c). */
#include "unit.h"

static struct relay_span sp(const void *p, size_t n)
{
	return (struct relay_span){p, n};
}

Test(envelope, message_is_room_length_byte_room_then_data_and_parses_in_place)
{
	uint8_t b[128];
	size_t n = relay_bin_msg_encode(b, sp("physics", 7), sp("\x00\x01\x02", 3));
	cr_assert_eq(n, relay_bin_msg_size(7, 3));
	cr_assert_eq(n, 11);
	const uint8_t want[] = {7, 'p', 'h', 'y', 's', 'i', 'c', 's', 0, 1, 2};
	cr_assert_arr_eq(b, want, n);
	struct relay_span room, data;
	cr_assert_eq(relay_bin_msg_parse(b, n, &room, &data), RELAY_ERR_NONE);
	cr_assert_eq(room.n, 7);
	cr_assert_eq(room.p, b + 1);
	cr_assert_eq(data.n, 3);
	cr_assert_eq(data.p, b + 8);
}

Test(envelope, message_data_may_be_empty)
{
	uint8_t b[8];
	struct relay_span room, data;
	size_t n = relay_bin_msg_encode(b, sp("r", 1), sp(NULL, 0));
	cr_assert_eq(n, 2);
	cr_assert_eq(relay_bin_msg_parse(b, n, &room, &data), RELAY_ERR_NONE);
	cr_assert_eq(data.n, 0);
}

Test(envelope, message_room_is_1_to_64_bytes_and_must_fit_in_the_payload)
{
	uint8_t b[256];
	struct relay_span room, data;
	char r64[65];
	memset(r64, 'r', 65);
	cr_assert_eq(relay_bin_msg_encode(b, sp(r64, 64), sp("d", 1)), 66);
	cr_assert_eq(relay_bin_msg_parse(b, 66, &room, &data), RELAY_ERR_NONE);
	cr_assert_eq(relay_bin_msg_encode(b, sp(r64, 65), sp("d", 1)), 0);
	cr_assert_eq(relay_bin_msg_encode(b, sp(r64, 0), sp("d", 1)), 0);
	cr_assert_eq(relay_bin_msg_parse(b, 0, &room, &data), RELAY_ERR_INVALID_PAYLOAD);
	const uint8_t zero[] = {0, 'x'};
	cr_assert_eq(relay_bin_msg_parse(zero, 2, &room, &data), RELAY_ERR_INVALID_PAYLOAD);
	const uint8_t big[] = {65};
	cr_assert_eq(relay_bin_msg_parse(big, 1, &room, &data), RELAY_ERR_INVALID_PAYLOAD);
	const uint8_t shortp[] = {5, 'a', 'b'};
	cr_assert_eq(relay_bin_msg_parse(shortp, 3, &room, &data), RELAY_ERR_INVALID_PAYLOAD);
	const uint8_t exact[] = {2, 'a', 'b'};
	cr_assert_eq(relay_bin_msg_parse(exact, 3, &room, &data), RELAY_ERR_NONE);
	cr_assert_eq(data.n, 0);
}

Test(envelope, delivery_is_room_then_sender_each_after_its_length_byte_then_data)
{
	uint8_t b[128];
	size_t n = relay_bin_delivery_encode(b, sp("physics", 7), sp("conn-17", 7), sp("hi", 2));
	cr_assert_eq(n, relay_bin_delivery_size(7, 7, 2));
	cr_assert_eq(n, 18);
	const uint8_t want[] = {7, 'p', 'h', 'y', 's', 'i', 'c', 's',
				7, 'c', 'o', 'n', 'n', '-', '1', '7', 'h', 'i'};
	cr_assert_arr_eq(b, want, n);
	struct relay_span room, from, data;
	cr_assert_eq(relay_bin_delivery_parse(b, n, &room, &from, &data), RELAY_ERR_NONE);
	cr_assert_eq(room.n, 7);
	cr_assert_eq(memcmp(from.p, "conn-17", 7), 0);
	cr_assert_eq(from.n, 7);
	cr_assert_eq(data.n, 2);
	cr_assert_eq(memcmp(data.p, "hi", 2), 0);
}

Test(envelope, delivery_sender_is_at_most_255_bytes_and_every_part_must_fit)
{
	uint8_t b[600];
	static char from[256];
	struct relay_span room, f, data;
	memset(from, 'c', sizeof from);
	cr_assert_eq(relay_bin_delivery_encode(b, sp("r", 1), sp(from, 256), sp("", 0)), 0);
	size_t n = relay_bin_delivery_encode(b, sp("r", 1), sp(from, 255), sp("", 0));
	cr_assert_eq(n, 258);
	cr_assert_eq(relay_bin_delivery_parse(b, n, &room, &f, &data), RELAY_ERR_NONE);
	cr_assert_eq(f.n, 255);
	cr_assert_eq(relay_bin_delivery_parse(b, n - 1, &room, &f, &data), RELAY_ERR_INVALID_PAYLOAD);
	n = relay_bin_delivery_encode(b, sp("r", 1), sp("", 0), sp("d", 1));
	cr_assert_eq(n, 4);
	cr_assert_eq(relay_bin_delivery_parse(b, n, &room, &f, &data), RELAY_ERR_NONE);
	cr_assert_eq(f.n, 0);
	const uint8_t noF[] = {1, 'r'};
	cr_assert_eq(relay_bin_delivery_parse(noF, 2, &room, &f, &data), RELAY_ERR_INVALID_PAYLOAD);
	const uint8_t zero[] = {0, 0};
	cr_assert_eq(relay_bin_delivery_parse(zero, 2, &room, &f, &data), RELAY_ERR_INVALID_PAYLOAD);
	cr_assert_eq(relay_bin_delivery_parse(zero, 0, &room, &f, &data), RELAY_ERR_INVALID_PAYLOAD);
	cr_assert_eq(relay_bin_delivery_encode(b, sp(from, 65), sp("c", 1), sp("", 0)), 0);
}
