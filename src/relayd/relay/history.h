/* history.h -- room positions, a bounded history per room, resume, and the
 * retention of empty rooms (protocol-v1-ext.md section 4). Opt-in: with
 * history_size 0 (the default) nothing here runs and every room is the v1
 * room of room.c.
 *
 * With history on, every room has a struct rl_hist (room.c allocates it
 * with the room) holding:
 *  - the room lock: a mutex held only to take the next seq, append to the
 *    ring and enqueue the inbox items (relay/fanout.c, rl_fanout_publish),
 *    to join (position + membership + replay copy) and to count a leave or
 *    an expiry -- never while writing to a socket. It gives the room one
 *    order: every worker's inbox receives the room's frames in seq order;
 *  - the epoch (16 lowercase hex, random per room creation) and the last
 *    seq N;
 *  - a ring of the last messages: the encoded frames the members got,
 *    shared by reference (rl_msg), bounded by history_size, by
 *    history_room_bytes and by the server-wide history_total_bytes;
 *  - the retention state: an empty room stays in the table, joinable, for
 *    history_ttl; a sweeper thread removes it afterwards (revive-versus-
 *    expire race: docs/architecture.md, "Rooms with history").
 *
 * Threading: rl_history_init/start/stop/fini on the main thread (init and
 * start before any worker runs, stop after every worker was joined). The
 * rest from threads registered with urcu-qsbr and online (workers, the
 * sweeper; tests may register their own). */
#ifndef RL_HISTORY_H
#define RL_HISTORY_H

#include "relay/room.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rl_hist;
struct rl_msg;
struct rl_stats;

#define RL_HIST_EPOCH_LEN 16 /* lowercase hex characters */
/* Bytes a JSON delivery grows by when its seq is added: ,"seq":N with up to
 * 20 digits. A frame is checked against max_frame with this much room. */
#define RL_HIST_JSON_SEQ_MAX 27
/* What one stored message counts against the byte budgets besides its
 * frame: the rl_msg header with its inbox items and the ring slot, roughly
 * (a fixed figure, so budgets are predictable). */
#define RL_HIST_ENTRY_OVERHEAD 128u

struct rl_history_cfg {
	uint64_t size;	      /* messages per room; 0 = history off */
	uint64_t room_bytes;  /* bytes per room */
	uint64_t total_bytes; /* bytes over all rooms */
	uint64_t ttl_ms;      /* how long an empty room is kept */
};

/* Set once by rl_history_init, read-only afterwards. */
extern bool rl_hist_enabled;
static inline bool rl_history_on(void)
{
	return rl_hist_enabled;
}

/* Takes the configuration (copied). Before rl_rooms_init. 0 or -errno. */
int rl_history_init(const struct rl_history_cfg *cfg);
/* Starts the sweeper thread that removes expired empty rooms (history on;
 * a no-op otherwise). After rl_rooms_init. 0 or -errno. */
int rl_history_start(void);
/* Stops and joins the sweeper. Before rl_rooms_fini. */
void rl_history_stop(void);

/* ---- per room (room.c) ------------------------------------------------- */

/* A room's history state, for room <r> being created: new epoch, seq 0,
 * nothing stored, not empty (the creating join takes the first
 * membership). NULL on ENOMEM. */
struct rl_hist *rl_hist_new(struct rl_room *r);
/* Drops every stored message. No other thread may use <h> (the room is out
 * of the table and unreachable, or the server is stopping). */
void rl_hist_clear(struct rl_hist *h);
/* Clears and frees <h> (the room's call_rcu callback). */
void rl_hist_free(struct rl_hist *h);
/* rl_room_leave of a room with history: one membership fewer, under the
 * room lock. The last one makes the room empty (not removed): it is kept,
 * joinable, for history_ttl from now. */
void rl_hist_leave(struct rl_room *r);

/* ---- the ordered publish (relay/fanout.c) -------------------------------- */

enum rl_hist_form {
	RL_HIST_NONE = 0, /* a presence event: no seq, not stored */
	RL_HIST_JSON,	  /* a JSON delivery: ,"seq":N goes before its final } */
	RL_HIST_BINARY,	  /* a binary delivery with RELAY_FLAG_SEQ: 8 bytes at <seq_at> */
};

void rl_hist_lock(struct rl_hist *h);
void rl_hist_unlock(struct rl_hist *h);
/* With <h> locked: gives <m> (a MESSAGE not yet published, with room for
 * its seq: RL_HIST_JSON_SEQ_MAX more bytes for JSON) the room's next seq,
 * written into the frame as <form> says, and stores it (a reference) in the
 * ring, evicting the oldest as the bounds require; a message that cannot be
 * stored leaves a hole (everything older is dropped: it can no longer be
 * replayed without a gap). Evictions are counted in <stats>. Returns the
 * seq. */
uint64_t rl_hist_append(struct rl_hist *h, struct rl_msg *m, enum rl_hist_form form,
			uint32_t seq_at, struct rl_stats *stats);

/* ---- join and resume (relay/handler.c) ---------------------------------- */

/* "since":{"epoch","seq"} of a JSON JOIN_ROOM. */
struct rl_hist_since {
	const uint8_t *epoch;
	size_t epoch_len;
	uint64_t seq;
};

enum rl_hist_resume {
	RL_HIST_NO_SINCE = 0, /* the JOIN carried no since */
	RL_HIST_RECOVERED,    /* every message since.seq+1..N follows the ack */
	RL_HIST_MISSED,	      /* other epoch, or some of them are gone */
	RL_HIST_AHEAD,	      /* same epoch, since.seq > N: INVALID_PAYLOAD, not joined */
};

struct rl_hist_join {
	struct rl_room *room; /* joined (not for AHEAD) */
	uint32_t idx;	      /* the member's index in the worker's list (rl_room_local_add) */
	long members;	      /* including this one */
	char epoch[RL_HIST_EPOCH_LEN];
	uint64_t seq; /* N: the room's last seq at the join */
	enum rl_hist_resume resume;
	struct rl_msg **replay; /* RECOVERED: since.seq+1..N, a reference each,
				   malloc'd (NULL when none); the caller queues
				   them in order, puts them and frees the array */
	uint32_t nreplay;
};

/* Joins the room <name>/<len> (created if needed, revived if empty) as
 * member <m> of worker <w>, in one step under the room lock: the position
 * N, the membership in the member list (its join number: messages up to N
 * queued to worker <w> skip it, N+1 onwards reach it) and, when <since>
 * (may be NULL) allows, references to the stored messages since.seq+1..N.
 * AHEAD joins nothing. 0, -ENOSPC (a new room over --max-rooms) or -ENOMEM
 * (nothing joined). */
int rl_hist_join(const uint8_t *name, size_t len, unsigned w, struct rl_member m,
		 const struct rl_hist_since *since, struct rl_hist_join *out);
/* The epoch and last seq of room <r> (a member's view, for a repeated
 * JOIN's ack). */
void rl_hist_position(struct rl_room *r, char epoch[RL_HIST_EPOCH_LEN], uint64_t *seq);

/* ---- gauges (process-wide, any thread) ------------------------------------- */

uint64_t rl_hist_bytes(void);	 /* counted against history_total_bytes */
uint64_t rl_hist_messages(void); /* stored over all rooms */
uint64_t rl_hist_retained(void); /* empty rooms kept for history_ttl */

/* Runs one sweep now: removes every empty room whose ttl ran out by
 * <now_ms> (CLOCK_MONOTONIC). The sweeper thread calls it; tests may too.
 * Returns the earliest deadline of the rooms left (UINT64_MAX: none). */
uint64_t rl_hist_sweep(uint64_t now_ms);

#endif
