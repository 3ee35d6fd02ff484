/* What tcache.c, tcache_magazine.c and tcache_heap.c share; no other file
 * includes it (alloc.c sees tcache.h only). tcache.c's top explains the
 * split and the registry.
 */
#ifndef HL_TCACHE_INTERNAL_H
#define HL_TCACHE_INTERNAL_H

#include "tcache.h"

/* The mode and what hli_tcache_init resolved, the collect epoch, the
 * counters. */
struct hli_tc {
  hl_tcache_t mode;
  hl_pools_t *shared;             /* magazine: the pools behind the lock */
  hl_spinlock_t *lock;
  hl_geometry_t g;
  /* every heap's pools; keep_bytes is also a thread's budget (a magazine's
   * bytes of free blocks) */
  hli_pools_policy_t heap_policy;
  uintptr_t heap_tag_bits;        /* for every heap's pools: its tags' free path */
  uint32_t batch[HL_MAX_CLASSES];  /* magazine: blocks per refill or flush */
  uint32_t cap[HL_MAX_CLASSES];    /* magazine: the largest max, budget / size */
  uint32_t hmag_max[HL_MAX_CLASSES]; /* heap-magazine: each list's fixed bound */
  uint64_t epoch;                 /* collect requests so far (atomic) */
  uint64_t refills, flushes;      /* magazine batches (atomic, slow path) */
  uint64_t remote_frees;          /* heap: remote frees straight into an abandoned heap (the
                                     pushed ones are counted by each heap's remote_drained) */
  uint64_t adoptions;             /* heap: abandoned heaps taken over */
  uint64_t reclaims;              /* heap: abandoned heaps emptied by a free (registry lock) */
};
extern HL_INTERNAL struct hli_tc hli_tc;

/* The registry (tcache.c): its lock, and every heap ever made (next_all)
 * and the abandoned and the spare ones (next_list). The lists of threads
 * are tcache.c's own. */
extern HL_INTERNAL hl_spinlock_t hli_tc_reg_lock;
extern HL_INTERNAL hli_heap_t *hli_tc_heaps_all, *hli_tc_heaps_abandoned, *hli_tc_heaps_spare;

/* The calling thread's cache, or NULL when it has none yet. */
static inline hli_thread_t *hli_tc_thread_self(void) {
  hli_thread_t *t = hli_self;
  return t != &hli_no_thread ? t : NULL;
}

/* tcache.c: memory for a registry object (a thread's cache, a heap); the
 * calling thread's cache, made and registered (NULL: no memory). */
HL_INTERNAL void *hli_tc_registry_object(size_t size);
HL_INTERNAL hli_thread_t *hli_tc_thread_register(void);
/* tcache_magazine.c: every bound back to its start; every list back to the
 * pools (thread exit, collect). */
HL_INTERNAL void hli_mag_bounds_reset(hli_thread_t *t);
HL_INTERNAL void hli_mag_flush_all(hli_thread_t *t);
/* tcache_heap.c: drain, trim, and whether no block is live (collect); the
 * calling thread gives its heap up (thread exit). */
HL_INTERNAL bool hli_heap_tidy(hli_heap_t *hp);
HL_INTERNAL void hli_heap_release(hli_heap_t *hp);
/* tcache_heap.c: pushes every remote free t has batched (thread exit,
 * collect). Called by t's thread only. */
HL_INTERNAL void hli_heap_batches_flush(hli_thread_t *t);
/* tcache_heap.c: what a collect asked of t's thread since it last looked
 * (the epoch): its lists emptied (heap-magazine), its heap tidied, its
 * remote batches pushed. t's thread only. */
HL_INTERNAL void hli_heap_catch_up(hli_thread_t *t);
/* tcache_heap_magazine.c: the lists' fixed bounds (hli_tc.hmag_max, from
 * the budget), set on t; every list of t home to its heaps. */
HL_INTERNAL void hli_hmag_bounds_init(void);
HL_INTERNAL void hli_hmag_bounds_reset(hli_thread_t *t);
HL_INTERNAL void hli_hmag_flush_all(hli_thread_t *t);

#endif /* HL_TCACHE_INTERNAL_H */
