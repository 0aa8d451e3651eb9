/* resp.h -- RESP2, the Redis wire format: commands encoded into a growable
 * byte buffer, replies parsed in place from received bytes. Only what the
 * bridge sends and receives: commands are arrays of bulk strings; replies
 * are simple strings, errors, integers, bulk strings (or nil) and arrays of
 * those (one level: pub/sub pushes, HGETALL, SMEMBERS).
 * Threading: a buffer or reply belongs to its caller; no shared state. */
#ifndef RL_RESP_H
#define RL_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes: [off, len) are pending (unsent output, or unparsed input). */
struct rl_buf {
	uint8_t *p;
	size_t off;
	size_t len;
	size_t cap;
};

void rl_buf_free(struct rl_buf *b);
/* Pending bytes. */
static inline size_t rl_buf_pending(const struct rl_buf *b)
{
	return b->len - b->off;
}
/* Room for <n> more bytes at p + len (moves pending bytes to the front
 * first when that makes room). Returns the write position or NULL (ENOMEM). */
uint8_t *rl_buf_reserve(struct rl_buf *b, size_t n);
/* Drops the first <n> pending bytes (consumed); empties the buffer when
 * nothing is left so the next write starts at the front. */
void rl_buf_consume(struct rl_buf *b, size_t n);
/* Frees the memory of an empty buffer that grew past <keep> bytes. */
void rl_buf_shrink(struct rl_buf *b, size_t keep);

/* ---- commands --------------------------------------------------------------- */

/* Appends "*<argc>\r\n". 0 or -ENOMEM. */
int rl_resp_array(struct rl_buf *b, size_t argc);
/* Appends one bulk string argument. 0 or -ENOMEM. */
int rl_resp_arg(struct rl_buf *b, const void *p, size_t n);
int rl_resp_arg_str(struct rl_buf *b, const char *s);
int rl_resp_arg_u64(struct rl_buf *b, uint64_t v);
/* Starts a bulk string of exactly <n> bytes and returns where the caller
 * writes them (then rl_resp_arg_end), or NULL (ENOMEM). */
uint8_t *rl_resp_arg_begin(struct rl_buf *b, size_t n);
void rl_resp_arg_end(struct rl_buf *b, size_t n);
/* A whole command from NUL-terminated words (tests, rare commands). */
int rl_resp_cmdv(struct rl_buf *b, size_t argc, const char *const *argv);
/* Bytes of a bulk string header and trailer around <n> bytes. */
size_t rl_resp_arg_size(size_t n);

/* ---- replies ------------------------------------------------------------------ */

enum rl_resp_type {
	RL_RESP_SIMPLE = 0, /* +text */
	RL_RESP_ERROR,	    /* -text */
	RL_RESP_INT,	    /* :n */
	RL_RESP_BULK,	    /* $n, or nil ($-1): p NULL */
	RL_RESP_ARRAY,	    /* *n, or nil (*-1): n 0, nil */
	RL_RESP_NTYPES
};

struct rl_resp_val {
	enum rl_resp_type type;
	bool nil;
	const uint8_t *p; /* SIMPLE/ERROR/BULK bytes (not NUL-terminated) */
	size_t n;	  /* their length; ARRAY: element count */
	long long i;	  /* INT */
};

/* One top-level reply. <el> (grown by the parser, kept between calls) holds
 * an array's elements; they point into the parsed bytes, valid until those
 * are consumed. */
struct rl_resp_reply {
	struct rl_resp_val top;
	struct rl_resp_val *el;
	size_t cap;
};

/* Parses one reply at <p>/<n>. Returns the bytes it spans (> 0), 0 when it
 * is incomplete, -EPROTO when malformed (or nested deeper than one array,
 * or a length above <max_bulk>), -ENOMEM. */
long rl_resp_parse(const uint8_t *p, size_t n, size_t max_bulk, struct rl_resp_reply *r);
void rl_resp_reply_free(struct rl_resp_reply *r);
/* Whether <v> is a bulk or simple string equal to <s>. */
bool rl_resp_is(const struct rl_resp_val *v, const char *s);

#endif
