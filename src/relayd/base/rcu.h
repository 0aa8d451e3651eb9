/* rcu.h -- liburcu (QSBR flavour) for relayd, with ThreadSanitizer hooks.
 * liburcu 0.13 has no TSan annotations: the grace-period machinery and the
 * wait-free queue synchronise inside the (uninstrumented) library, so TSan
 * sees no happens-before edge. We add the edges ourselves: release a token at
 * every quiescent state / offline transition and acquire it in call_rcu
 * callbacks; release an object before publishing it (lfht add, wfcq enqueue)
 * and acquire it after finding it (lookup, dequeue). Without TSan these are
 * empty inline functions.
 * Threading: every worker is a registered QSBR reader; see worker.c. */
#ifndef RL_RCU_H
#define RL_RCU_H

#include <urcu-qsbr.h>
#include <urcu/rculfhash.h>
#include <urcu/ref.h>
#include <urcu/wfcqueue.h>

#if defined(__SANITIZE_THREAD__)
#define RL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RL_TSAN 1
#endif
#endif

#ifdef RL_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static inline void rl_tsan_acquire(void *p) { __tsan_acquire(p); }
static inline void rl_tsan_release(void *p) { __tsan_release(p); }
#else
static inline void rl_tsan_acquire(void *p) { (void)p; }
static inline void rl_tsan_release(void *p) { (void)p; }
#endif

/* The grace-period token: released before every quiescent state, acquired
 * by every call_rcu callback. */
extern char rl_rcu_token;

static inline void rl_rcu_quiescent(void)
{
	rl_tsan_release(&rl_rcu_token);
	rcu_quiescent_state();
}

static inline void rl_rcu_offline(void)
{
	rl_tsan_release(&rl_rcu_token);
	rcu_thread_offline();
}

static inline void rl_rcu_online(void)
{
	rcu_thread_online();
}

/* First statement of every call_rcu callback. */
static inline void rl_rcu_callback_enter(void)
{
	rl_tsan_acquire(&rl_rcu_token);
}

#endif
