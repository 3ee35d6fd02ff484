/* Per-thread caches in front of the pools: the types and the fast paths,
 * inlined into alloc.c's entry points; the slow paths are in
 * tcache_magazine.c and tcache_heap.c, whose top comments explain the two
 * designs, and what they share in tcache.c.
 *
 *   tcache=magazine  hli_self->bins[class]: a bounded LIFO list of free
 *                    blocks per size class; malloc pops, free pushes.
 *   tcache=heap      hli_heap_self: the thread's own pool instance; malloc
 *                    and a free of one of its own blocks run the pool fast
 *                    paths of pool.h on it, without a lock.
 *   tcache=heap-magazine  both: malloc pops the bin, then the heap's pool;
 *                    a free of one of the heap's blocks pushes onto the bin.
 * Neither fast path takes a lock or executes an atomic read-modify-write;
 * the bin counts are relaxed loads and stores (plain moves on x86-64 and
 * arm64) only so that the statistics may read them from another thread.
 */
#ifndef HL_TCACHE_H
#define HL_TCACHE_H

#include "hl_lock.h"
#include "pool.h"

typedef struct hli_bin {
  hl_block_t *head;               /* LIFO list through the blocks' first word */
  uint32_t count;                 /* blocks on the list */
  uint32_t max;                   /* bound, adapted on the slow paths (tcache_magazine.c) */
} hli_bin_t;
/* 16 bytes, so that a pool tag's class offset (hli_tag_class_x16) indexes
 * the bins directly. */
_Static_assert(sizeof(hli_bin_t) == 16, "hli_bin_t must be 16 bytes");

typedef struct hli_heap hli_heap_t;

/* tcache=heap: a thread's frees into one other heap, waiting to be pushed
 * onto its remote stack together (tcache_heap.c, "Batched remote frees").
 * head..tail linked through the blocks' first word; owner NULL: unused. */
#define HLI_RBATCH_SLOTS 4
#define HLI_RBATCH_MAX 16
typedef struct hli_rbatch {
  hli_heap_t *owner;
  hl_block_t *head, *tail;
  uint32_t n;
} hli_rbatch_t;

/* One per thread that has allocated through a tcache (magazine or heap).
 * Invariant (magazine): sum over classes of bins[c].max * size(c) ==
 * max_bytes <= the byte budget, so the blocks cached stay within it. */
typedef struct hli_thread {
  hli_bin_t bins[HL_MAX_CLASSES];  /* tcache=magazine, heap-magazine */
  uint32_t overages[HL_MAX_CLASSES]; /* magazine: overflows since max last moved */
  size_t max_bytes;                /* magazine: see above */
  unsigned steal_cursor;           /* magazine: where the next bound cut starts */
  hli_heap_t *heap;                /* tcache=heap: also in hli_heap_self */
  uint64_t epoch;                  /* the collect epoch this thread has seen */
  /* tcache=heap: remote frees batched per owner, the slot to evict next,
   * and the collect epoch the batches last saw */
  hli_rbatch_t rbatch[HLI_RBATCH_SLOTS];
  unsigned rbatch_next;
  uint64_t rbatch_epoch;
  struct hli_thread *next;         /* the registry: live threads, or spare */
  struct hli_thread *prev;
} hli_thread_t;

/* tcache=heap: a pool instance owned by one thread at a time. */
struct hli_heap {
  hl_pools_t pools;                /* owner only (or the registry lock when unowned) */
  /* Blocks freed by other threads: a lock-free stack (Treiber) that they
   * push onto and the owner empties whole with an exchange, so it has no
   * ABA problem. Its own cache line: other threads write it. */
  HL_CACHE_ALIGNED hl_block_t *remote;
  /* HLI_HEAP_OWNED, _ABANDONED, _SPARE: written under hli_tc_reg_lock only;
   * read without it by a thread that frees into the heap (tcache_heap.c,
   * "Abandoned heaps"), beside remote, whose line that thread reads anyway
   * (rarely written, so it adds no miss). */
  uint32_t state;
  HL_CACHE_ALIGNED uint64_t remote_drained;    /* blocks taken from remote */
  hli_heap_t *next_all;            /* every heap ever made (never unmapped) */
  hli_heap_t *next_list;           /* the abandoned or the spare list */
};
enum { HLI_HEAP_OWNED = 1, HLI_HEAP_ABANDONED, HLI_HEAP_SPARE };

/* The thread's cache and heap. Never NULL, so that the fast paths test
 * nothing before they index: a thread without a cache points at
 * hli_no_thread, whose bins are empty with a bound of 0, and at hli_no_heap,
 * whose pools have no used pool, so every fast path misses into a slow path,
 * which tells them apart by address. Nothing ever writes to either.
 * HL_TLS_MODEL (hl_base.h): local-exec where heaplab's static archives are
 * linked into its own programs (one instruction reads the pointer, as
 * gc/'s hl_rc_self); initial-exec in libheaplab.so and libheaplab-malloc.so
 * (two: the offset comes from the GOT; never dlopen heaplab's allocator). */
extern __thread hli_thread_t *hli_self __attribute__((tls_model(HL_TLS_MODEL)));
extern __thread hli_heap_t *hli_heap_self __attribute__((tls_model(HL_TLS_MODEL)));
extern HL_INTERNAL hli_thread_t hli_no_thread;
extern HL_INTERNAL hli_heap_t hli_no_heap;

/* Set up the mode (tcache.c): shared is the instance behind lock that the
 * magazines refill from; per-thread heaps get geometry g and heap_policy.
 * heap_policy->keep_bytes is the budget of a thread: the bytes of free blocks
 * a magazine keeps, the empty arenas a heap keeps. */
HL_INTERNAL int  hli_tcache_init(hl_tcache_t mode, hl_pools_t *shared, hl_spinlock_t *lock,
                                 const hl_geometry_t *g, const hli_pools_policy_t *heap_policy,
                                 uintptr_t heap_tag_bits);
HL_INTERNAL void hli_tcache_reset(void);
/* The shared walk of a list's flush: frees up to n blocks from the top of
 * bin into h (the caller holds what h needs: the shared pools' lock, or
 * owns the heap) and returns how many (tcache.c). */
HL_INTERNAL uint32_t hli_bin_free_into(hli_bin_t *bin, uint32_t n, hl_pools_t *h);
/* Slow paths. malloc: n in 1..threshold, NULL only when no arena can be
 * mapped. free: p is in one of our arenas (tag from the radix map, ao its
 * arena). */
HL_INTERNAL HL_NOINLINE void *hli_mag_malloc_slow(size_t n);
HL_INTERNAL HL_NOINLINE void  hli_mag_free_slow(void *p, uintptr_t tag);
HL_INTERNAL HL_NOINLINE void *hli_heap_malloc_slow(size_t n);
HL_INTERNAL HL_NOINLINE void  hli_heap_free_slow(void *p, hl_arena_t *ao);
HL_INTERNAL void hli_tcache_collect(void);
HL_INTERNAL void hli_tcache_stats(hl_alloc_stats_t *s);
HL_INTERNAL void hli_tcache_fork_prepare(void);
HL_INTERNAL void hli_tcache_fork_parent(void);
HL_INTERNAL void hli_tcache_fork_child(void);

static inline void *hli_bin_pop(hli_bin_t *bin) {
  hl_block_t *b = bin->head;
  if (HL_UNLIKELY(b == NULL)) return NULL;
  bin->head = b->next;
  hl_atomic_store_relaxed_u32(&bin->count, bin->count - 1);
  return b;
}

/* true when p went onto the list (below its bound) */
static inline bool hli_bin_push(hli_bin_t *bin, void *p) {
  uint32_t c = bin->count;
  if (HL_UNLIKELY(c >= bin->max)) return false;
  hl_block_t *b = p;
  b->next = bin->head;
  bin->head = b;
  hl_atomic_store_relaxed_u32(&bin->count, c + 1);
  return true;
}

static inline void *hli_mag_try_malloc(unsigned idx) { return hli_bin_pop(&hli_self->bins[idx]); }

/* tcache=heap-magazine: the thread's list of class idx, then its heap's
 * pool; NULL when both are empty (the heap's slow path is next) */
static inline void *hli_hmag_try_malloc(size_t idx) {
  void *b = hli_bin_pop(&hli_self->bins[idx]);
  return HL_LIKELY(b != NULL) ? b : hli_pools_try_pop(&hli_heap_self->pools, idx);
}

/* true when p, whose pool tag is tag, went into this thread's magazine */
static inline bool hli_mag_try_free(void *p, uintptr_t tag) {
  return hli_bin_push((hli_bin_t *)((char *)hli_self->bins + hli_tag_class_x16(tag)), p);
}

#endif /* HL_TCACHE_H */
