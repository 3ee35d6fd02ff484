/* The allocator layer's strategy switch and the pool strategy's entry points.
 *
 * alloc=pool routes a request of 1..threshold bytes to the object allocator
 * (pool.h, inlined here) and everything else, 0 bytes included, to the raw
 * layer, as CPython's PyObject_Malloc does. free and realloc ask the radix
 * tree whether a pointer lies in one of our arenas, without reading the
 * block, so a pointer from the raw layer or from the C library itself goes
 * back where it came from.
 *
 * free and realloc find the block's pool and size class in the radix map's
 * entry (a pool tag, alloc_internal.h), so none of them reads the pool
 * header to learn the class.
 *
 * tcache=none: one instance behind one lock when the configuration runs more
 * than one thread (obmalloc under a GIL is this, with the GIL as the lock);
 * with one thread, no lock at all. tcache=magazine and tcache=heap put a
 * per-thread cache in front (tcache.h, tcache.c): the same instance behind
 * its lock refills the magazines; each heap is an instance of its own.
 * tcache=heap-magazine puts both in front: a thread's LIFO lists first,
 * then its own heap (tcache_heap_magazine.c).
 *
 * alloc-debug=on (debug.c) puts CPython's debug hooks in front of both API
 * families: every hl_pool_* and hl_raw_* entry point tests one flag first
 * and, when set, hands the request to debug.c, which gets its memory from the
 * same paths without the test (hli_pool_*_plain here, hli_raw_* in raw.c).
 * The strategy's own route to the raw layer takes those plain paths too, so
 * a debug block that spills over the threshold is wrapped once. The hooks
 * need alloc=pool: with alloc=system or a peer, hl_alloc_malloc calls the C
 * library or the peer inline, with no place to hook the object family, and
 * half-hooked families would let the one check that matters most, the
 * family check, pass in silence; hl_alloc_check_config refuses the
 * combination.
 */
#include <errno.h>
#include <malloc.h>
#include <string.h>

#include "alloc_internal.h"
#include "hl_lock.h"
#include "hl_measure.h"
#include "peers.h"
#include "pool.h"
#include "tcache.h"

hl_alloc_state_t hl_alloc_state;

/* Which fast path the entry points take; FAST_NONE sends every call to the
 * out-of-line path (the lock, or the debug hooks). */
typedef enum { FAST_NONE, FAST_DIRECT, FAST_MAGAZINE, FAST_HEAP, FAST_HEAP_MAGAZINE } fast_t;

static hl_pools_t pools;            /* tcache=none|magazine: the shared instance */
static size_t threshold;            /* copy of pools.g.threshold: the fast paths' limit */
static size_t serve_limit;          /* copy of pools.g.max_size: what the pools serve */
static unsigned align_shift;        /* copy of pools.g.align_shift */
/* hl_pool_malloc's mode test and size test in one comparison: threshold for
 * the fast path in use, 0 for the others (so that n - 1 < limit fails). */
static size_t limit_magazine, limit_heap, limit_direct, limit_heap_magazine;
/* large=medium with a fast path: serve_limit, else 0 (hl_pool_malloc's third
 * test, after the small classes') */
static size_t limit_medium;
/* large=medium: requests above serve_limit are huge blocks (huge.c) */
static bool huge_on;
static hl_tcache_t tcache;
/* tcache=heap or heap-magazine: each thread owns a pool instance */
static bool heaps_on;
static bool locked;
static fast_t fast;
static hl_spinlock_t lock = HL_SPINLOCK_INITIALIZER;

static inline void pools_lock(void) {
  if (locked) hl_spinlock_lock(&lock);
}
static inline void pools_unlock(void) {
  if (locked) hl_spinlock_unlock(&lock);
}

/* ---- configuration ------------------------------------------------------ */

/* With --arena-huge=on an arena must be a whole number of huge pages
 * (aligned to its size, so aligned to them): a preset geometry's arena
 * grows to one huge page, as CPython's --with-pymalloc-hugepages raises
 * ARENA_BITS to 21 (gh-144319); a custom one must say so itself. */
static uint64_t huge_arena(const hl_config_t *c, uint64_t arena) {
  if (!c->arena_huge) return arena;
  uint64_t hp = hl_os_huge_page_size();
  return hp && arena < hp ? hp : arena;
}

static int geometry_shape(const hl_config_t *c, hl_geometry_t *g, char *err, size_t errlen) {
  switch (c->geometry) {
  case HL_GEOMETRY_CLASSIC:
    return hl_geometry_init(g, 8, 256, 4096, huge_arena(c, 256 * 1024), err, errlen);
  case HL_GEOMETRY_MODERN:
    return hl_geometry_init(g, 16, 512, 16 * 1024, huge_arena(c, 1024 * 1024), err, errlen);
  case HL_GEOMETRY_CUSTOM:
    break;
  }
  const uint64_t *v = c->geometry_custom;
  return hl_geometry_init(g, v[0], v[1], v[2], v[3], err, errlen);
}

/* The geometry, coloured with pool-colour=on. Pools too small to colour are
 * an error when pool-colour=on was asked for, and stay uncoloured when it
 * is a default (the preload library's: libheaplab-malloc.so with
 * HEAPLAB_GEOMETRY=classic). -EINVAL with a message naming the option that
 * is wrong (*bad_colour says whether it is pool-colour). */
static int geometry_of(const hl_config_t *c, hl_geometry_t *g, bool *bad_colour,
                       bool *bad_large, bool *bad_huge, char *err, size_t errlen) {
  *bad_colour = *bad_large = *bad_huge = false;
  int rc = geometry_shape(c, g, err, errlen);
  if (rc != 0) return rc;
  if (c->large == HL_LARGE_MEDIUM && hl_geometry_medium(g, err, errlen) < 0) {
    *bad_large = true;
    return -EINVAL;
  }
  if (c->arena_huge) {
    uint64_t hp = hl_os_huge_page_size();
    if (!hp) {
      snprintf(err, errlen, "this kernel has no transparent huge pages "
               "(/sys/kernel/mm/transparent_hugepage/hpage_pmd_size unreadable)");
      *bad_huge = true;
      return -EINVAL;
    }
    if (g->arena_size % hp != 0) {
      snprintf(err, errlen, "an arena of %zu bytes is not a whole number of %llu-byte huge pages",
               (size_t)g->arena_size, (unsigned long long)hp);
      *bad_huge = true;
      return -EINVAL;
    }
  }
  if (!c->pool_colour) return 0;
  /* a refusal leaves g as it was */
  if (hl_geometry_colour(g, err, errlen) > 0) return 0;
  if (c->source[HL_OPT_POOL_COLOUR] == HL_SRC_DEFAULT) return 0;
  *bad_colour = true;
  return -EINVAL;
}

/* The hooks need the object family's entry points (see the top). */
static int check_debug(const hl_config_t *c, char *err, size_t errlen) {
  if (!c->alloc_debug || c->alloc == HL_ALLOC_POOL) return 0;
  const char *alloc = hl_config_choice_name(HL_OPT_ALLOC, (int)c->alloc);
  snprintf(err, errlen,
           "option 'alloc-debug': value 'on' cannot be used with alloc=%s: alloc-debug=on needs "
           "alloc=pool; accepted with alloc=%s: off",
           alloc, alloc);
  return -EINVAL;
}

int hl_alloc_check_config(const hl_config_t *c, char *err, size_t errlen) {
  char msg[512];
  if (check_debug(c, err, errlen) != 0) return -1;
  if (c->alloc == HL_ALLOC_POOL) {
    hl_geometry_t g;
    bool bad_colour, bad_large, bad_huge;
    if (geometry_of(c, &g, &bad_colour, &bad_large, &bad_huge, msg, sizeof msg) != 0) {
      char val[128];
      hl_config_format(c, HL_OPT_GEOMETRY, val, sizeof val);
      if (bad_large)
        snprintf(err, errlen,
                 "option 'large': value 'medium' cannot be used with geometry=%s: %s; "
                 "accepted with this geometry: libc",
                 val, msg);
      else if (bad_huge)
        snprintf(err, errlen,
                 "option 'arena-huge': value 'on' cannot be used with geometry=%s: %s; "
                 "accepted with this geometry: off (or a geometry whose arena is a multiple of "
                 "the huge page size, e.g. 16,512,16K,2M)",
                 val, msg);
      else if (bad_colour)
        snprintf(err, errlen,
                 "option 'pool-colour': value 'on' cannot be used with geometry=%s: %s; "
                 "accepted with this geometry: off",
                 val, msg);
      else
        snprintf(err, errlen,
                 "option 'geometry': invalid value '%s': %s; accepted: classic, modern, or "
                 "ALIGN,THRESHOLD,POOL,ARENA meeting those rules",
                 val, msg);
      return -1;
    }
  } else if (c->alloc != HL_ALLOC_SYSTEM) {
    hl_alloc_peer_t peer;
    if (hli_peer_load(c->alloc, &peer, msg, sizeof msg) != 0) {
      snprintf(err, errlen, "option 'alloc': value '%s' cannot be used here: %s",
               hl_config_choice_name(HL_OPT_ALLOC, (int)c->alloc), msg);
      return -1;
    }
  }
  return 0;
}

int hl_alloc_init(const hl_config_t *c, char *err, size_t errlen) {
  HL_ASSERT(!hl_alloc_state.initialized);
  int rc = check_debug(c, err, errlen);
  if (rc != 0) return rc;
  hl_alloc_state.kind = c->alloc;
  switch (c->alloc) {
  case HL_ALLOC_SYSTEM:
    break;
  case HL_ALLOC_POOL: {
    hl_geometry_t g;
    bool bad_colour, bad_large, bad_huge;
    if ((rc = geometry_of(c, &g, &bad_colour, &bad_large, &bad_huge, err, errlen)) != 0) return rc;
    hli_pools_policy_t policy = {
      .keep_bytes = (size_t)c->arena_keep_kib * 1024,
      .decay_ns = c->arena_decay_ms * 1000000u,
      .madvise = c->arena_release == HL_ARENA_RELEASE_MADVISE,
      .requeue_front = c->pool_requeue == HL_POOL_REQUEUE_FRONT,
      .keep_last_empty = c->pool_retire == HL_POOL_RETIRE_KEEP,
      .huge = c->arena_huge,
    };
    if ((rc = hli_pools_init(&pools, &g, &policy)) != 0) {
      snprintf(err, errlen, "out of memory setting up the pool allocator");
      return rc;
    }
    tcache = c->tcache;
    /* the magazines share the instance whatever the thread count */
    locked = c->threads > 1 || tcache == HL_TCACHE_MAGAZINE;
    fast = c->alloc_debug ? FAST_NONE
         : tcache == HL_TCACHE_MAGAZINE ? FAST_MAGAZINE
         : tcache == HL_TCACHE_HEAP ? FAST_HEAP
         : tcache == HL_TCACHE_HEAP_MAGAZINE ? FAST_HEAP_MAGAZINE
         : locked ? FAST_NONE : FAST_DIRECT;
    heaps_on = tcache == HL_TCACHE_HEAP || tcache == HL_TCACHE_HEAP_MAGAZINE;
    /* free() dispatches on these bits of the tag (alloc_internal.h) */
    pools.tag_bits = fast == FAST_MAGAZINE ? HLI_TAG_MAGAZINE
                   : fast == FAST_DIRECT ? HLI_TAG_DIRECT : 0;
    /* A thread's heap keeps empty arenas up to --tcache-kib, and at least
     * what the shared pools keep (--arena-keep-kib): with no decay, a
     * smaller heap budget would hand back and fault in again a working set
     * the shared pools hold on to. */
    hli_pools_policy_t heap_policy = policy;
    heap_policy.keep_bytes = (size_t)c->tcache_kib * 1024;
    if (heaps_on && c->arena_keep_kib > c->tcache_kib)
      heap_policy.keep_bytes = (size_t)c->arena_keep_kib * 1024;
    if (tcache != HL_TCACHE_NONE &&
        (rc = hli_tcache_init(tcache, &pools, &lock, &g, &heap_policy,
                              fast == FAST_HEAP             ? HLI_TAG_HEAP
                              : fast == FAST_HEAP_MAGAZINE ? HLI_TAG_HEAP_MAGAZINE
                                                           : 0)) != 0) {
      hli_pools_destroy(&pools);
      snprintf(err, errlen, "cannot set up the per-thread caches");
      return rc;
    }
    threshold = g.threshold;
    serve_limit = g.max_size;
    align_shift = g.align_shift;
    if (c->alloc_debug) hli_debug_enable(g.alignment);
    limit_magazine = fast == FAST_MAGAZINE ? threshold : 0;
    limit_heap = fast == FAST_HEAP ? threshold : 0;
    limit_direct = fast == FAST_DIRECT ? threshold : 0;
    limit_heap_magazine = fast == FAST_HEAP_MAGAZINE ? threshold : 0;
    limit_medium = fast != FAST_NONE && g.max_size > threshold ? g.max_size : 0;
    huge_on = g.max_size > threshold;
    hli_huge_init(huge_on, policy.decay_ns);
    break;
  }
  default:
    if (hli_peer_load(c->alloc, &hl_alloc_state.peer, err, errlen) != 0) return -ENOENT;
    /* CPython's obmalloc keeps its state in plain globals and relies on the
     * GIL: with several threads, one lock around it, as tcache=none does for
     * ours. */
    if (c->threads > 1 && !hli_peer_thread_safe(c->alloc)) hli_peer_serialize(&hl_alloc_state.peer);
    break;
  }
  hl_alloc_state.initialized = 1;
  return 0;
}

void hl_alloc_reset(void) {
  if (hl_alloc_state.kind == HL_ALLOC_POOL && hl_alloc_state.initialized) {
    if (tcache != HL_TCACHE_NONE) hli_tcache_reset();
    hli_pools_destroy(&pools);
    hli_huge_reset();
  }
  memset(&hl_alloc_state, 0, sizeof hl_alloc_state);
  hli_debug_disable();
  threshold = 0;
  serve_limit = 0;
  align_shift = 0;
  limit_magazine = limit_heap = limit_direct = limit_heap_magazine = 0;
  limit_medium = 0;
  huge_on = false;
  tcache = HL_TCACHE_NONE;
  heaps_on = false;
  locked = false;
  fast = FAST_NONE;
}

const char *hl_alloc_name(void) {
  return hl_config_choice_name(HL_OPT_ALLOC, (int)hl_alloc_state.kind);
}

/* ---- the pool strategy -------------------------------------------------- */

bool hl_pool_owns(const void *p) { return hl_radix_get((uintptr_t)p) != 0; }

/* The usable size of p, a block of ours with pool tag tag. */
static inline size_t owned_size(const void *p, uintptr_t tag) {
  if (HL_UNLIKELY(tag & HLI_TAG_HUGE)) return hli_huge_usable_size(p, tag);
  return hl_class_size(&pools.g, hli_tag_class(tag));
}

size_t hl_pool_block_size(const void *p) {
  uintptr_t tag = hli_tag_get((uintptr_t)p);
  if (tag == 0) return 0;
  return owned_size(p, tag);
}

/* Lock order: the tcache registry, then the shared pools (tcache.c). */
void hl_alloc_fork_prepare(void) {
  if (hl_alloc_state.kind != HL_ALLOC_POOL) return;
  if (tcache != HL_TCACHE_NONE) hli_tcache_fork_prepare();
  if (locked) hl_spinlock_lock(&lock);
  hli_huge_fork_prepare();
}
void hl_alloc_fork_parent(void) {
  if (hl_alloc_state.kind != HL_ALLOC_POOL) return;
  hli_huge_fork_parent();
  if (locked) hl_spinlock_unlock(&lock);
  if (tcache != HL_TCACHE_NONE) hli_tcache_fork_parent();
}
void hl_alloc_fork_child(void) {
  if (hl_alloc_state.kind != HL_ALLOC_POOL) return;
  hli_huge_fork_child();
  if (locked) hl_spinlock_init(&lock);
  if (tcache != HL_TCACHE_NONE) hli_tcache_fork_child();
}

/* The strategy's paths. Each public entry point below is its debug test
 * followed by one of these, inlined; debug.c reaches them through the
 * hli_pool_*_plain wrappers. */

static inline void count_raw_request(void) {
  if (heaps_on) {
    hli_heap_t *hp = hli_heap_self;   /* the heap's own counter: no lock */
    if (hp != &hli_no_heap) hp->pools.raw_requests++;
    return;
  }
  pools_lock();
  pools.raw_requests++;
  pools_unlock();
}

/* ---- decay outside the pools' own events, and out of memory ----------------
 * pool.c releases an arena whose decay has run out at the pools' own arena
 * events. A program that then makes only large requests (the raw layer's)
 * or frees only foreign blocks never causes one, so these paths, slow
 * already (the C library's malloc is behind them), poll: one relaxed load
 * of the instance's decay_pending, and only when it is set a clock read
 * and the purge (mimalloc purges from its slow paths the same way). The
 * instance is the calling thread's heap (tcache=heap: only its owner may
 * touch it) or the shared pools, under their lock. hli_no_heap's flag is
 * 0, so a thread without a heap reads no clock. */
static inline bool decay_pending(void) {
  if (heaps_on) return hl_atomic_load_relaxed_u32(&hli_heap_self->pools.decay_pending);
  return hl_atomic_load_relaxed_u32(&pools.decay_pending);
}

static HL_NOINLINE void decay_tick(void) {
  if (heaps_on) {
    hli_pools_decay(&hli_heap_self->pools);
    return;
  }
  pools_lock();
  hli_pools_decay(&pools);
  pools_unlock();
}

/* The huge blocks' cache decays on the same clock (huge.c). */
static inline void decay_poll(void) {
  if (HL_UNLIKELY(decay_pending())) decay_tick();
  if (HL_UNLIKELY(hli_huge_decay_pending())) hli_huge_decay();
}

void hli_alloc_decay_poll(void) {
  if (hl_alloc_state.kind == HL_ALLOC_POOL && hl_alloc_state.initialized) decay_poll();
}

/* A request failed for want of memory: every empty arena cached (kept by
 * arena-keep-kib or waiting for its decay), the address space of the arenas
 * release=madvise keeps, this thread's cache and the abandoned heaps go back
 * to the OS, and every other thread's cache at its next slow path
 * (hl_alloc_collect: the collect epoch; a live thread's heap is its
 * owner's alone), before the caller tries once more. Must be called with no
 * lock of ours held: hl_alloc_collect takes the registry lock and the shared
 * pools' lock itself. */
void hli_alloc_release_all(void) {
  if (hl_alloc_state.kind != HL_ALLOC_POOL || !hl_alloc_state.initialized) return;
  hl_alloc_collect();
  if (heaps_on) {
    if (hli_heap_self != &hli_no_heap) hli_pools_unmap_dormant(&hli_heap_self->pools);
    return;
  }
  pools_lock();
  hli_pools_unmap_dormant(&pools);
  pools_unlock();
}

static HL_NOINLINE void release_for_retry(void) { hli_alloc_release_all(); }

/* n in 1..serve_limit (the threshold, or the largest medium class): the
 * pools through the configured cache; NULL only when no arena can be mapped. */
static inline void *pools_malloc(size_t n) {
  switch (tcache) {
  case HL_TCACHE_MAGAZINE: {
    void *b = hli_mag_try_malloc(hl_size_class(&pools.g, n));
    return b ? b : hli_mag_malloc_slow(n);
  }
  case HL_TCACHE_HEAP: {
    void *b = hli_pools_try_pop(&hli_heap_self->pools, hl_size_class(&pools.g, n));
    return b ? b : hli_heap_malloc_slow(n);
  }
  case HL_TCACHE_HEAP_MAGAZINE: {
    void *b = hli_hmag_try_malloc(hl_size_class(&pools.g, n));
    return b ? b : hli_heap_malloc_slow(n);
  }
  case HL_TCACHE_NONE:
  case HL_TCACHE_COUNT:   /* not a mode */
    break;
  }
  pools_lock();
  void *p = hli_pools_malloc(&pools, n);
  pools_unlock();
  return p;
}

/* n outside 1..serve_limit, or the pools could map no arena (CPython's rule:
 * the raw layer may still have memory). When the raw layer fails too, the
 * cached memory goes back and both are tried once more. */
static HL_NOINLINE void *raw_malloc(size_t n) {
  count_raw_request();
  decay_poll();
  void *p = hli_raw_malloc(n);
  if (HL_LIKELY(p != NULL) || n > (size_t)PTRDIFF_MAX) return p;
  release_for_retry();
  if (n - 1 < serve_limit && (p = pools_malloc(n)) != NULL) return p;
  return hli_raw_malloc(n);
}

/* Above serve_limit with large=medium: a huge block; NULL (then the raw
 * layer) when no mapping can be made or n is beyond PTRDIFF_MAX. */
static HL_NOINLINE void *huge_malloc(size_t n, bool zero) {
  if (n > (size_t)PTRDIFF_MAX) return NULL;
  void *p = hli_huge_malloc(n, 0, zero);
  if (HL_LIKELY(p != NULL)) return p;
  release_for_retry();
  return hli_huge_malloc(n, 0, zero);
}

static inline void *pool_malloc(size_t n) {
  if (HL_LIKELY(n - 1 < serve_limit)) {   /* 1..serve_limit; 0 wraps around */
    void *p = pools_malloc(n);
    if (HL_LIKELY(p != NULL)) return p;
  } else if (huge_on && n != 0) {
    void *p = huge_malloc(n, false);
    if (HL_LIKELY(p != NULL)) return p;
  }
  return raw_malloc(n);
}

/* A block of the raw layer (or NULL) goes back to it. */
static HL_NOINLINE void raw_free(void *p) {
  decay_poll();
  hli_raw_free(p);
}

/* tcache=heap: p, a block of pool, goes back to its heap: at once when the
 * heap is this thread's, else onto the owner's remote list (tcache_heap.c). */
static inline void heap_free(hl_pool_t *pool, void *p) {
  hli_heap_t *hp = hli_heap_self;
  if (HL_LIKELY(pool->arena->owner == hp)) hli_pools_free_in(&hp->pools, pool, p);
  else hli_heap_free_slow(p, pool->arena);
}

/* tcache=heap-magazine: p, a block of pool, onto this thread's list when
 * the pool is its heap's and the list has room, else into the heap's pool
 * (a thread with a heap is registered, so its lists are real); another
 * heap's block takes tcache=heap's path (tcache_heap_magazine.c). */
static inline void heap_magazine_free(hl_pool_t *pool, void *p, uintptr_t tag) {
  hli_heap_t *hp = hli_heap_self;
  if (HL_LIKELY(pool->arena->owner == hp)) {
    if (HL_LIKELY(hli_mag_try_free(p, tag))) return;
    hli_pools_free_in(&hp->pools, pool, p);
    return;
  }
  hli_heap_free_slow(p, pool->arena);
}

/* p is a block of ours, with pool tag tag (the radix map said so). */
static inline void pool_free_owned(void *p, uintptr_t tag) {
  hl_pool_t *pool = (hl_pool_t *)hli_tag_pool(tag);
  switch (tcache) {
  case HL_TCACHE_MAGAZINE:
    if (!hli_mag_try_free(p, tag)) hli_mag_free_slow(p, tag);
    return;
  case HL_TCACHE_HEAP_MAGAZINE:
    heap_magazine_free(pool, p, tag);
    return;
  case HL_TCACHE_HEAP:
    heap_free(pool, p);
    return;
  case HL_TCACHE_NONE:
  case HL_TCACHE_COUNT:   /* not a mode */
    break;
  }
  pools_lock();
  hli_pools_free_in(&pools, pool, p);
  pools_unlock();
}

/* A block of ours: a pool's, a span's or a huge one. */
static inline void owned_free(void *p, uintptr_t tag) {
  if (HL_UNLIKELY(tag & HLI_TAG_HUGE)) hli_huge_free(p, tag);
  else pool_free_owned(p, tag);
}

static inline void pool_free(void *p) {
  uintptr_t tag = hli_tag_get((uintptr_t)p);
  if (HL_LIKELY(tag != 0)) owned_free(p, tag);
  else raw_free(p);   /* NULL included: free(NULL) does nothing */
}

void *hli_pool_malloc_plain(size_t n) { return pool_malloc(n); }

/* A span's blocks are aligned to their size's lowest set bit (pool.c), so a
 * request aligned beyond the geometry's alignment goes to the first span
 * class from max(n, alignment) up whose size that bit covers: at most the
 * next power of two, which is a class, so less than twice the request.
 * Only where max(n, alignment) is in the spans' range: a small block
 * aligned to 32 or 64 bytes (C++'s aligned new of a cache line) would
 * otherwise take a 2 KiB block; pools' own blocks follow a 48-byte header
 * and are aligned to the geometry's alignment only. With the hooks on, a
 * debug header moves the user pointer off the block's alignment: nothing
 * is served here. */
void *hli_pool_malloc_aligned(size_t alignment, size_t n) {
  size_t m = n > alignment ? n : alignment;
  if (hli_alloc_debug || hl_alloc_state.kind != HL_ALLOC_POOL || m <= pools.g.pool_max ||
      (m - 1 >= serve_limit && !huge_on))
    return NULL;
  const hl_geometry_t *g = &pools.g;
  if (m <= serve_limit)
    for (unsigned idx = hl_size_class(g, m); idx < g->nclasses; idx++) {
      size_t size = hl_class_size(g, idx);
      if (idx >= g->span_first && (size & -size) >= alignment) return pools_malloc(size);
    }
  /* Above the spans, or aligned beyond every span class that holds it: a
   * huge block, whose mapping is aligned to it (huge.c). */
  if (!huge_on || n > (size_t)PTRDIFF_MAX || alignment > (size_t)PTRDIFF_MAX / 2) return NULL;
  return hli_huge_malloc(n, alignment, false);
}
void hli_pool_free_plain(void *p) { pool_free(p); }

/* The entry points. Unless the lock or the debug hooks stand in front of the
 * pools (FAST_NONE), malloc is one comparison (size and mode at once), the
 * size-class index and a list pop (the magazine's, the thread heap's or the
 * pool's; heap-magazine: its list's, then its heap's), and free is the
 * radix lookup, one test of the mode and a push (heap-magazine: after the
 * owner test the heap's free makes too); every other case, and the rare
 * states of a pool or a cache, leave through one out-of-line call. Both
 * test the modes in the order heap-magazine, heap, direct, magazine (two
 * instructions each): heap-magazine is the preload library's default and
 * direct the driver's with one thread (a pair costs heap-magazine 0
 * instructions of tests, heap 4, direct 8, the magazines 12; the hot pair
 * under the library is 76 instructions with heap-magazine, 82 with heap).
 * The thread pointers are never NULL (tcache.h). */
static HL_NOINLINE void *malloc_slow(size_t n) {
  if (HL_UNLIKELY(hli_alloc_debug)) return hli_debug_malloc(HLI_FAMILY_OBJECT, n);
  return pool_malloc(n);
}

static HL_NOINLINE void free_slow(void *p) {
  if (HL_UNLIKELY(hli_alloc_debug)) {
    hli_debug_free(HLI_FAMILY_OBJECT, p);
    return;
  }
  pool_free(p);
}

/* Not in one of our arenas: the raw layer's (NULL included), unless the
 * hooks want to see it first. */
static HL_NOINLINE void free_foreign(void *p) {
  if (HL_UNLIKELY(fast == FAST_NONE)) free_slow(p);
  else raw_free(p);
}

/* n in threshold + 1..max_size: the medium class's list, by the fast path
 * in use */
static HL_NOINLINE void *medium_malloc(size_t n) {
  unsigned idx = hli_medium_class(&pools.g, n);
  void *p = fast == FAST_HEAP_MAGAZINE ? hli_hmag_try_malloc(idx)
            : fast == FAST_HEAP          ? hli_pools_try_pop(&hli_heap_self->pools, idx)
            : fast == FAST_DIRECT        ? hli_pools_try_pop(&pools, idx)
                                         : hli_bin_pop(&hli_self->bins[idx]);
  return HL_LIKELY(p != NULL) ? p : malloc_slow(n);
}

void *hl_pool_malloc(size_t n) {
  size_t k = n - 1;   /* 1..threshold becomes 0..threshold - 1; 0 wraps around */
  if (HL_LIKELY(k < limit_heap_magazine)) {
    void *b = hli_hmag_try_malloc(k >> align_shift);
    return HL_LIKELY(b != NULL) ? b : malloc_slow(n);
  }
  if (HL_LIKELY(k < limit_heap)) {
    void *b = hli_pools_try_pop(&hli_heap_self->pools, k >> align_shift);
    return HL_LIKELY(b != NULL) ? b : malloc_slow(n);
  }
  if (HL_LIKELY(k < limit_direct)) {
    void *b = hli_pools_try_pop(&pools, k >> align_shift);
    return HL_LIKELY(b != NULL) ? b : malloc_slow(n);
  }
  if (k < limit_magazine) {
    void *b = hli_bin_pop(&hli_self->bins[k >> align_shift]);
    return HL_LIKELY(b != NULL) ? b : malloc_slow(n);
  }
  if (k < limit_medium) return medium_malloc(n);   /* above the threshold: k >= it here */
  return malloc_slow(n);
}

/* Frees p through the fast path that its tag names; false when the tag
 * names none: 0 (not ours), FAST_NONE (the lock, or the hooks) or a split
 * entry. */
static inline bool free_fast(void *p, uintptr_t tag) {
  hl_pool_t *pool = (hl_pool_t *)hli_tag_pool(tag);
  if (HL_LIKELY(tag & HLI_TAG_HEAP_MAGAZINE)) {
    heap_magazine_free(pool, p, tag);
    return true;
  }
  if (HL_LIKELY(tag & HLI_TAG_HEAP)) {
    heap_free(pool, p);
    return true;
  }
  if (HL_LIKELY(tag & HLI_TAG_DIRECT)) {
    hli_pools_free_in(&pools, pool, p);
    return true;
  }
  if (tag & HLI_TAG_MAGAZINE) {
    if (HL_UNLIKELY(!hli_mag_try_free(p, tag))) hli_mag_free_slow(p, tag);
    return true;
  }
  return false;
}

/* p lies in a grain of several pools (pools smaller than a grain): the tag
 * comes from the pool header, then the same fast paths. */
static HL_NOINLINE void free_split(void *p, uintptr_t entry) {
  if (!free_fast(p, hli_tag_resolve((uintptr_t)p, entry))) free_slow(p);
}

void hl_pool_free(void *p) {
  /* One lookup decides: ours (and the pool, class and free path), or the
   * raw layer's. An entry of 0 has no mode bit, so the fast paths test no
   * more than their bit. */
  uintptr_t tag = hl_radix_get((uintptr_t)p);
  if (HL_LIKELY(free_fast(p, tag))) return;
  if (HL_UNLIKELY(tag == 0)) free_foreign(p);
  else if (tag & HLI_TAG_SPLIT) free_split(p, tag);
  else free_slow(p);   /* FAST_NONE: the lock, or the hooks */
}

void *hl_pool_calloc(size_t nelem, size_t elsize) {
  if (HL_UNLIKELY(hli_alloc_debug)) return hli_debug_calloc(HLI_FAMILY_OBJECT, nelem, elsize);
  size_t n;
  if (__builtin_mul_overflow(nelem, elsize, &n) || n > (size_t)PTRDIFF_MAX) return NULL;
  if (n > serve_limit && huge_on) {   /* a fresh mapping is zero already */
    void *p = huge_malloc(n, true);
    if (HL_LIKELY(p != NULL)) return p;
  }
  if (n - 1 >= serve_limit) {
    count_raw_request();
    decay_poll();
    void *p = hli_raw_calloc(nelem, elsize);
    if (HL_LIKELY(p != NULL) || n > (size_t)PTRDIFF_MAX) return p;
    release_for_retry();
    return hli_raw_calloc(nelem, elsize);
  }
  void *p = pool_malloc(n);
  if (p) memset(p, 0, n);
  return p;
}

void *hl_pool_realloc(void *p, size_t n) {
  if (HL_UNLIKELY(hli_alloc_debug)) return hli_debug_realloc(HLI_FAMILY_OBJECT, p, n);
  if (p == NULL) return pool_malloc(n);
  uintptr_t tag = hli_tag_get((uintptr_t)p);
  if (tag == 0) {
    decay_poll();
    void *q = hli_raw_realloc(p, n);
    if (HL_LIKELY(q != NULL) || n > (size_t)PTRDIFF_MAX) return q;
    release_for_retry();
    return hli_raw_realloc(p, n);   /* p is untouched by a failed realloc */
  }
  if (tag & HLI_TAG_HUGE) {
    /* Huge to huge: mremap (huge.c); else, or when that fails, below. */
    void *q;
    if (n > serve_limit && (q = hli_huge_realloc(p, tag, n)) != NULL) return q;
  }
  size_t size = owned_size(p, tag);
  if (n - 1 < serve_limit && n <= size && !(tag & HLI_TAG_HUGE)) {
    /* Shrinking by less than a quarter: keep the block (CPython's rule, so
     * that a string trimmed by a byte does not move). */
    if (4 * n > 3 * size) return p;
    size = n;
  }
  void *q = pool_malloc(n);
  if (!q) return NULL;   /* p is untouched */
  memcpy(q, p, n < size ? n : size);
  owned_free(p, tag);
  return q;
}

/* Under a sanitizer, malloc is the sanitizer's and glibc's heap was never
 * used: malloc_trim would initialise ptmalloc from whichever thread calls it
 * first, attaching that thread to the main arena without counting it, and
 * glibc then aborts at thread exit ("a->attached_threads > 0"). ASan has its
 * own purge; TSan has none, so there is nothing to do. */
#if defined(__SANITIZE_ADDRESS__)
void __sanitizer_purge_allocator(void);
static void system_collect(void) { __sanitizer_purge_allocator(); }
#elif defined(__SANITIZE_THREAD__)
static void system_collect(void) {}
#else
static void system_collect(void) { (void)malloc_trim(0); }
#endif

void hl_alloc_collect(void) {
  if (!hl_alloc_state.initialized) return;
  if (hl_alloc_state.kind == HL_ALLOC_SYSTEM) {
    system_collect();
    return;
  }
  if (hl_alloc_state.kind != HL_ALLOC_POOL) {
    hli_peer_collect(hl_alloc_state.kind, &hl_alloc_state.peer);
    return;
  }
  hli_huge_trim();
  if (tcache != HL_TCACHE_NONE) {
    hli_tcache_collect();
    return;
  }
  pools_lock();
  hli_pools_trim(&pools);
  pools_unlock();
}

void hl_alloc_stats(hl_alloc_stats_t *s) {
  memset(s, 0, sizeof *s);
  s->tcache = "none";   /* hli_tcache_stats names the others */
  if (hl_alloc_state.kind != HL_ALLOC_POOL || !hl_alloc_state.initialized) return;
  /* with tcache=heap the shared instance is empty; it carries the geometry */
  pools_lock();
  hli_pools_stats(&pools, s);
  pools_unlock();
  if (tcache != HL_TCACHE_NONE) hli_tcache_stats(s);
  hli_huge_stats(s);
  s->bytes_overhead += hl_radix_bytes();
}

void hl_alloc_stats_process(hl_alloc_stats_t *s) {
  /* what the huge-page advice got; only when it was given */
  if (hl_alloc_state.kind == HL_ALLOC_POOL && pools.arena_huge)
    s->anon_huge_bytes = hl_rss_huge_bytes();
}

/* For tests: the instance behind the pool strategy (the shared one), and
 * the one that serves the calling thread (its heap, once it has one). */
const hl_pools_t *hli_alloc_pools(void) { return &pools; }
const hl_pools_t *hli_alloc_pools_self(void) {
  return heaps_on && hli_heap_self != &hli_no_heap ? &hli_heap_self->pools : &pools;
}
