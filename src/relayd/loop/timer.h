/* timer.h -- the worker's timeouts: idle, frame, slow consumer, CLOSING
 * flush deadline. Each is a list ordered by deadline because every entry of
 * one list has the same timeout: arming is an O(1) move to the tail, expiry
 * pops from the head, an idle check of a list is O(1). No per-connection
 * timer objects, no heap, no per-turn scan.
 * Threading: owner worker only. */
#ifndef RL_TIMER_H
#define RL_TIMER_H

struct rl_worker;

/* Expires every due entry (bounded per call). */
void rl_timers_run(struct rl_worker *w);
/* Milliseconds until the earliest deadline, or -1 for none. */
long rl_timers_next(const struct rl_worker *w);

#endif
