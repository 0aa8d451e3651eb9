/* tsan_readers.h -- the worker-like threads of tsan_room.c and
 * tsan_history.c: QSBR reader threads that each run rounds against the room
 * table for a while, keeping one reference across every quiescent state.
 * Header only: both executables link relayd's room code (relayd_relay_dep),
 * the shared test library does not.
 * Threading: tsan_reader_loop runs on the reader thread it registers;
 * tsan_readers_run on the main thread, which is not a reader meanwhile. */
#ifndef RELAY_TEST_TSAN_READERS_H
#define RELAY_TEST_TSAN_READERS_H

#include "harness.h"
#include "base/rcu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* One step on thread state <t>; false = a check failed, stop. */
typedef bool tsan_step_fn(void *t);

/* Registers the calling thread as a QSBR reader; for <run_ms>, or until
 * *<failed>, runs <round>(t), passes a quiescent state and then <drop>(t),
 * so what a round kept must survive the grace period <drop> checks; then
 * <drop>s what is left, goes offline and unregisters. */
static inline void tsan_reader_loop(void *t, int64_t run_ms, atomic_bool *failed,
				    tsan_step_fn *round, tsan_step_fn *drop)
{
	rcu_register_thread();
	int64_t end = rl_test_now_ms() + run_ms;
	while (rl_test_now_ms() < end && !atomic_load(failed)) {
		if (!round(t))
			break;
		rl_rcu_quiescent();
		if (!drop(t))
			break;
	}
	drop(t);
	rl_rcu_offline();
	rcu_unregister_thread();
}

/* Runs <n> threads <fn>(<args> + k * <size>) and joins them. 0, or -1 after
 * printing "<who>: pthread_create failed" (the threads started are joined
 * first). */
static inline int tsan_readers_run(const char *who, unsigned n, void *(*fn)(void *), void *args,
				   size_t size)
{
	pthread_t *th = calloc(n, sizeof(*th));
	unsigned k = 0;
	while (th && k < n && pthread_create(&th[k], NULL, fn, (char *)args + k * size) == 0)
		k++;
	for (unsigned j = 0; j < k; j++)
		pthread_join(th[j], NULL);
	free(th);
	if (k == n)
		return 0;
	fprintf(stderr, "%s: pthread_create failed\n", who);
	return -1;
}

#endif
