/* heaplab: fault injection (CPython's _testcapi.set_nomemory, per kind).
 *
 * A failpoint is a place that asks for memory: an object or a container's
 * array from gc/ (HL_FAIL_OBJ), a mapping from the OS (HL_FAIL_MMAP), the
 * runtime's own bookkeeping where no error can be returned (HL_FAIL_RUNTIME:
 * gc/shared.c's batches of deferred drops; gc/rc_biased.c's queue
 * overflow, grown by another thread's decrement, and a thread's queue,
 * allocated at its attach). When
 * armed, each kind counts the points it passes; the Nth one after arming
 * fails once (the caller returns NULL with HL_ERR_NOMEM, or its own error),
 * and the points after it succeed again. Or each point fails with
 * probability p from a seeded generator (deterministic for a seed).
 *
 * Cost: unarmed, hl_fail_hit is one load and one branch predicted not taken
 * (hl_fail_armed is 0), placed on slow paths only: gc/'s calls into the
 * object allocator and its container growth, alloc/os.c's mmap. Never on
 * incref/decref or an allocator fast path; an object served by a per-type
 * free list passes no failpoint.
 *
 * From the environment (hl_fail_from_env, called by hl_runtime_init):
 *   HEAPLAB_FAIL_AT=N      the Nth point of the kind from then on fails (N >= 1)
 *   HEAPLAB_FAIL_P=p       or each point fails with probability p (0 < p <= 1)
 *   HEAPLAB_FAIL_SEED=s    the generator's seed for HEAPLAB_FAIL_P (default 1)
 *   HEAPLAB_FAIL_KIND=obj|mmap|runtime   which kind (default obj)
 * They are harness switches, not configuration options: hl_config_resolve
 * accepts them as extra variables, and a result never records them (a run
 * with a failure injected is not a measurement). Counters are relaxed
 * atomics: with several threads, which thread gets the Nth point is a race.
 */
#ifndef HL_FAILPOINT_H
#define HL_FAILPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hl_atomic.h"
#include "hl_base.h"

#ifdef __cplusplus
extern "C" {
#endif
HL_API_BEGIN

/* HL_FAIL_RUNTIME: the runtime's own bookkeeping on paths that cannot
 * report an error (a decrement's deferred drop, a decrement's queuing to a
 * biased owner, a thread's attach): where it fails the runtime degrades
 * (waits, works synchronously, stops the world to merge, runs a thread
 * that owns nothing), it never aborts. */
typedef enum { HL_FAIL_OBJ, HL_FAIL_MMAP, HL_FAIL_RUNTIME, HL_FAIL_KINDS } hl_fail_kind_t;

/* Nonzero while any kind is armed (counting or failing). */
extern int32_t hl_fail_armed;

/* Arms kind: its nth point from now fails (n >= 1); n == 0 only counts. */
void hl_fail_at(hl_fail_kind_t kind, uint64_t n);
/* Arms kind: each point fails with probability p (0 <= p <= 1), seeded. */
void hl_fail_random(hl_fail_kind_t kind, double p, uint64_t seed);
/* Disarms every kind and zeroes the counts; or kind alone. */
void hl_fail_reset(void);
void hl_fail_disarm(hl_fail_kind_t kind);
/* Points of kind passed since it was armed, and failures injected. */
uint64_t hl_fail_count(hl_fail_kind_t kind);
uint64_t hl_fail_injected(hl_fail_kind_t kind);
/* Reads HEAPLAB_FAIL_* (above); 0, or -1 with a message naming the
 * variable and the accepted values. No variable set: changes nothing. */
int hl_fail_from_env(char *err, size_t errlen);

bool hl_fail_hit_slow(hl_fail_kind_t kind) __attribute__((cold));
/* True: the caller fails this allocation. */
static inline bool hl_fail_hit(hl_fail_kind_t kind) {
  if (HL_LIKELY(!hl_atomic_c11_load_relaxed_i32(&hl_fail_armed))) return false;
  return hl_fail_hit_slow(kind);
}

HL_API_END
#ifdef __cplusplus
}
#endif
#endif /* HL_FAILPOINT_H */
