/* One instance of the object allocator (arenas > pools > blocks) and its
 * fast paths, inlined into the callers in alloc/ (alloc.c today; the
 * per-thread caches next). The design is explained at the top of pool.c.
 *
 * Not thread-safe: an instance is used by one thread at a time (the caller
 * holds a lock, or owns the instance).
 */
#ifndef HL_POOL_H
#define HL_POOL_H

#include "alloc_internal.h"

/* How an instance holds on to memory and reuses its pools (the arena-* and
 * pool-requeue options). */
typedef struct hli_pools_policy {
  size_t keep_bytes;                 /* empty arenas kept before release */
  uint64_t decay_ns;                 /* beyond those, an empty arena lives this long (0: none) */
  bool madvise;                      /* release by MADV_DONTNEED, keeping the range */
  bool requeue_front;                /* a full pool given a block back serves next (obmalloc) */
  bool keep_last_empty;              /* pool-retire=keep: a class's only pool stays when empty */
  bool huge;                         /* arena-huge=on: each new arena advised for THP */
} hli_pools_policy_t;

/* The arenas of one kind of unit (a pool, or a span of 2^k pools: kind k,
 * alloc_internal.h). An arena serves one kind; in it, "pool" in the names
 * below (freepools, nfreepools, pool_address) means a unit of the kind. */
typedef struct hli_arena_set {
  /* Arenas with at least one free unit, sorted by nfreepools ascending, so
   * that the fullest arena serves first and the emptiest can drain and go back
   * to the OS. nfp2lasta[k] is the last arena of the list with k free units
   * (NULL if none): it makes re-sorting after a free O(1) (CPython 3.8+). */
  hl_arena_t *usable_arenas;
  hl_arena_t **nfp2lasta;            /* [units + 1] */
  hl_arena_t *dormant;               /* madvise'd arenas, mapped, reusable */
  unsigned units;                    /* units per arena */
  unsigned nempty;                   /* empty arenas on usable_arenas */
} hli_arena_set_t;

typedef struct hl_pools {
  hl_geometry_t g;
  /* usedpools[idx]: the pools of class idx with a free block, doubly linked
   * through nextpool/prevpool (but the head's prevpool, pool.c); the head
   * serves the next allocation. usedtail[idx] is the last one (meaningless
   * while the list is empty). */
  hl_pool_t *usedpools[HL_MAX_CLASSES];
  hl_pool_t *usedtail[HL_MAX_CLASSES];
  /* sets[0]: the arenas cut into pools; sets[k]: into spans of 2^k pools
   * (g.class_kind says which serves a class) */
  hli_arena_set_t sets[HLI_MAX_KINDS];
  hl_arena_t *all_arenas;            /* every arena object with a mapping */
  hl_arena_t *spare_objects;         /* arena objects without a mapping */
  /* empty arenas kept (hysteresis): the pools' and the span kinds' beyond
   * the one each span kind holds (pool.c, excess()) */
  unsigned keep_empty;
  unsigned nempty;                   /* empty arenas on the usable lists: the sets' sum */
  unsigned nheld;                    /* span kinds with an empty arena: held, not counted */
  /* nempty - nheld > keep_empty: an arena waits for its decay. Written under the
   * instance's lock (or by its owner) whenever nempty may have crossed
   * keep_empty; read without it, relaxed, by the paths that poll the decay
   * (alloc.c), so that a path with nothing pending reads no clock. A stale
   * read costs one poll more or one later: never correctness, since the
   * purge itself runs under the lock and looks again. */
  uint32_t decay_pending;
  uint64_t decay_ns;                 /* beyond keep_empty, an empty arena lives this long */
  void *owner;                       /* copied into each arena (tcache=heap) */
  uintptr_t tag_bits;                /* HLI_TAG_MAGAZINE|HEAP|DIRECT|HEAP_MAGAZINE or 0 */
  bool release_madvise;
  bool arena_huge;                   /* advise each arena mapped for transparent huge pages */
  bool requeue_front;
  /* pool-retire=keep, while the instance's owner allocates from it (a
   * thread cache's heap clears it when its thread lets it go) */
  bool keep_last_empty;
  uint32_t page_mask;                /* the OS page size - 1: hli_pools_extend's reach */
  uint64_t arenas_allocated, arenas_reclaimed, arenas_current, arenas_highwater;
  uint64_t arenas_discarded, overhead_bytes;
  uint64_t arenas_huge;              /* arenas the kernel took the huge-page advice for */
  uint64_t raw_requests;
} hl_pools_t;

/* Sets up an instance; policy->keep_bytes of empty arenas are kept before
 * release, and beyond those, an empty arena is released once it has stayed
 * empty for policy->decay_ns (0: at once). 0 or -errno (no memory for its
 * tables). */
int  hli_pools_init(hl_pools_t *h, const hl_geometry_t *g, const hli_pools_policy_t *policy);
/* Unmaps every arena and table: every block of the instance becomes invalid. */
void hli_pools_destroy(hl_pools_t *h);
/* Releases the empty arenas kept for hysteresis, and first the empty
 * pools pool-retire=keep kept. */
void hli_pools_trim(hl_pools_t *h);
/* Gives the empty pools pool-retire=keep kept back to their arenas. */
void hli_pools_release_kept(hl_pools_t *h);
/* Releases the empty arenas beyond keep_empty whose decay has run out (and
 * first the pools pool-retire=keep kept): a clock read, when decay_pending
 * says one waits. For the paths outside the
 * pools' own arena events (alloc.c: large requests, frees of foreign
 * blocks, a thread heap's slow path). */
HL_NOINLINE void hli_pools_decay(hl_pools_t *h);
/* Unmaps the arenas that release=madvise keeps mapped without pages: their
 * address space, for a request that failed for want of it. */
void hli_pools_unmap_dormant(hl_pools_t *h);
/* Slow paths (pool.c). */
HL_NOINLINE void *hli_pools_malloc_slow(hl_pools_t *h, unsigned idx);
/* Refills pool's free list after b, its last free block, was taken; returns
 * b (so that the fast path ends in a tail call and saves no register). */
HL_NOINLINE __attribute__((returns_nonnull)) void *hli_pools_extend(hl_pools_t *h, hl_pool_t *pool,
                                                                    void *b);
/* After a free pushed a block onto pool's list and dropped its ref: the pool
 * became empty, or was full (the block pushed is then the list's only one). */
HL_NOINLINE void  hli_pools_free_slow(hl_pools_t *h, hl_pool_t *pool);
/* Adds the instance's figures to s (zero it first; several instances add
 * up: tcache=heap). */
void hli_pools_stats(const hl_pools_t *h, hl_alloc_stats_t *s);
/* Whether the instance holds no block: every arena empty. */
bool hli_pools_idle(const hl_pools_t *h);
/* Checks every invariant of the instance (expensive: walks everything);
 * returns 0 or dies with the broken invariant. For tests and
 * HL_ASSERT_EXPENSIVE. */
int  hli_pools_validate(const hl_pools_t *h);

/* Blocks of class idx that fit in the pool at base: those before its
 * header (coloured pools), and those after it. */
static inline size_t hli_pool_capacity(const hl_geometry_t *g, uintptr_t base, unsigned idx) {
  size_t size = hl_class_size(g, idx);
  if (g->class_kind[idx]) return (hli_class_unit(g, idx) - hli_span_start(g, size)) / size;
  size_t off = hl_pool_colour_offset(g, base);
  return off / size + (g->pool_size - off - g->pool_overhead) / size;
}

/* The header of the pool (or span) holding p, a block of ours: from its
 * address alone while the geometry has no spans, else from the radix map
 * (a span's later pools hold blocks, not headers). */
static inline hl_pool_t *hli_pool_of(const hl_pools_t *h, const void *p) {
  if (HL_LIKELY(h->g.nkinds == 1))
    return (hl_pool_t *)hl_pool_header(&h->g, hl_pool_base(&h->g, (uintptr_t)p));
  return (hl_pool_t *)hli_tag_pool(hli_tag_get((uintptr_t)p));
}

/* The fast path: pop the free list of the first used pool of class idx.
 * NULL when the class has no used pool: the caller takes a slow path. */
static inline void *hli_pools_try_pop(hl_pools_t *h, size_t idx) {
  hl_pool_t *pool = h->usedpools[idx];
  if (HL_UNLIKELY(pool == NULL)) return NULL;
  /* A pool on usedpools always has a free block (see hl_pool_t). */
  hl_block_t *b = pool->freeblock;
  pool->ref++;
  if (HL_UNLIKELY((pool->freeblock = b->next) == NULL)) return hli_pools_extend(h, pool, b);
  return b;
}

/* The same for n in 1..threshold. */
static inline void *hli_pools_try_malloc(hl_pools_t *h, size_t n) {
  return hli_pools_try_pop(h, hl_size_class(&h->g, n));
}

/* n in 1..threshold. NULL only when the OS refuses a new arena. */
static inline void *hli_pools_malloc(hl_pools_t *h, size_t n) {
  void *b = hli_pools_try_malloc(h, n);
  if (HL_LIKELY(b != NULL)) return b;
  return hli_pools_malloc_slow(h, hl_size_class(&h->g, n));
}

/* pool-retire=keep: whether pool, just emptied, stays where it is: its
 * class's only pool, and it was not full (pool.c). */
static inline bool hli_pools_keeps(const hl_pools_t *h, const hl_pool_t *pool, bool was_full) {
  return h->keep_last_empty && !was_full && h->usedpools[pool->szidx] == pool &&
         pool->nextpool == NULL;
}

/* p must be a block of pool, a pool of this instance (the caller asked the
 * radix map). */
static inline void hli_pools_free_in(hl_pools_t *h, hl_pool_t *pool, void *p) {
  hl_block_t *b = p, *last = pool->freeblock;
  HL_ASSERT(pool->ref > 0);
  b->next = last;
  pool->freeblock = b;
  /* ref == 0: the pool is empty and goes back to its arena (unless
   * pool-retire=keep keeps it, decided here without a call); last == NULL:
   * it was full and goes back on usedpools. Both rare. */
  if (HL_UNLIKELY(--pool->ref == 0)) {
    if (!hli_pools_keeps(h, pool, last == NULL)) hli_pools_free_slow(h, pool);
    return;
  }
  if (HL_UNLIKELY(last == NULL)) hli_pools_free_slow(h, pool);
}

/* p must be a block of this instance. */
static inline void hli_pools_free(hl_pools_t *h, void *p) {
  hli_pools_free_in(h, hli_pool_of(h, p), p);
}

#endif /* HL_POOL_H */
