/* heaplab spinlock: a test-and-test-and-set lock for short critical sections.
 *
 * Anderson, "The performance of spin lock alternatives for shared-memory
 * multiprocessors", IEEE TPDS 1990: spinning on a plain read of the lock
 * word keeps the cache line shared among the waiters, and only the release
 * invalidates it, whereas spinning on the atomic exchange moves the line
 * between caches at every attempt. So:
 *
 *   lock:   exchange(word, 1) == 0 ?  done
 *           otherwise read word (pause between reads) until it is 0,
 *           then try the exchange again
 *   unlock: store-release(word, 0)
 *
 * After HL_SPINLOCK_SPINS_BEFORE_YIELD reads of a held lock the waiter calls
 * sched_yield() between reads: with more runnable threads than cores (this
 * project measures past the core count by oversubscription) the holder may
 * be descheduled, and a waiter that spins through its whole time slice only
 * delays it.
 *
 * Back ends as in hl_atomic.h: ConcurrencyKit's ck_spinlock_fas normally
 * (only <spinlock/fas.h>: the umbrella <ck_spinlock.h> does not compile as
 * C++, its CLH and MCS locks convert void * implicitly); a uint32_t with
 * hl_atomic.h's exchange and stores under ThreadSanitizer (its __atomic back
 * end), since TSan cannot see ck's inline asm and would otherwise report
 * every protected access as a race.
 *
 * Not recursive, not fair; the holder must not block. */
#ifndef HL_LOCK_H
#define HL_LOCK_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "hl_atomic.h"

#if !HL_ATOMIC_TSAN
#include <spinlock/fas.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif
HL_API_BEGIN

#define HL_SPINLOCK_SPINS_BEFORE_YIELD 1024u

#if HL_ATOMIC_TSAN

typedef struct hl_spinlock { uint32_t locked; } hl_spinlock_t;  /* 0 free, 1 held */
#define HL_SPINLOCK_INITIALIZER { 0 }

static inline void hl_spinlock_init(hl_spinlock_t *l) { hl_atomic_store_relaxed_u32(&l->locked, 0); }

/* Acquire: pairs with the release store in hl_spinlock_unlock, so the
 * previous holder's critical section happens before ours. */
static inline bool hl_spinlock_trylock(hl_spinlock_t *l) {
  return hl_atomic_xchg_acquire_u32(&l->locked, 1) == 0;
}
/* Relaxed: the waiting read only decides when to retry the exchange, which
 * is the acquire. */
static inline bool hli_spinlock_held_relaxed(hl_spinlock_t *l) {
  return hl_atomic_load_relaxed_u32(&l->locked) != 0;
}
/* Pairs with the acquire exchange of the next holder. */
static inline void hl_spinlock_unlock(hl_spinlock_t *l) { hl_atomic_store_release_u32(&l->locked, 0); }
/* A snapshot for assertions; acquire as ck_spinlock_fas_locked is. */
static inline bool hl_spinlock_is_locked(hl_spinlock_t *l) {
  return hl_atomic_load_acquire_u32(&l->locked) != 0;
}

#else

typedef struct hl_spinlock { ck_spinlock_fas_t ck; } hl_spinlock_t;
#define HL_SPINLOCK_INITIALIZER { CK_SPINLOCK_FAS_INITIALIZER }

static inline void hl_spinlock_init(hl_spinlock_t *l) { ck_spinlock_fas_init(&l->ck); }
/* ck's fas then ck_pr_fence_lock: acquire, pairs with the fence_unlock in
 * hl_spinlock_unlock of the previous holder. */
static inline bool hl_spinlock_trylock(hl_spinlock_t *l) { return ck_spinlock_fas_trylock(&l->ck); }
/* A plain ck load: the waiting read only decides when to retry the exchange,
 * which is the acquire. */
static inline bool hli_spinlock_held_relaxed(hl_spinlock_t *l) { return ck_pr_load_uint(&l->ck.value) != 0; }
/* ck_pr_fence_unlock then a store: release, pairs with the fence_lock of
 * the next holder's exchange. */
static inline void hl_spinlock_unlock(hl_spinlock_t *l) { ck_spinlock_fas_unlock(&l->ck); }
static inline bool hl_spinlock_is_locked(hl_spinlock_t *l) { return ck_spinlock_fas_locked(&l->ck); }

#endif /* HL_ATOMIC_TSAN */

static inline void hl_spinlock_lock(hl_spinlock_t *l) {
  while (__builtin_expect(!hl_spinlock_trylock(l), 0)) {
    unsigned spins = 0;
    do {
      if (spins < HL_SPINLOCK_SPINS_BEFORE_YIELD) {
        spins++;
        hl_cpu_relax();
      } else {
        sched_yield();
      }
    } while (hli_spinlock_held_relaxed(l));
  }
}

HL_API_END
#ifdef __cplusplus
}
#endif
#endif /* HL_LOCK_H */
