/* heaplab alloc/: the allocator layer's public interface.
 *
 * Layers 0 to +2 of docs/design.md, as in CPython's Objects/obmalloc.c:
 *   +2  object allocator  arenas > pools > blocks for requests of 1..threshold
 *                         bytes (pool.c); the rest goes down to +1
 *   +1  raw allocator     hl_raw_* (raw.c, hl_raw.h): the C library, with
 *                         CPython's PyMem_Raw semantics
 *    0  the OS            mmap / munmap / madvise (os.c)
 *
 * The strategy is chosen once, at hl_alloc_init(), from the configuration:
 *   alloc=pool      heaplab's object allocator (tcache=none: behind one lock
 *                   when more than one thread runs; no lock for one thread,
 *                   as obmalloc under a GIL)
 *   alloc=system    the C library's malloc, directly
 *   alloc=obmalloc|mimalloc|jemalloc|tcmalloc
 *                   peers, loaded at init from their Debian packages: one
 *                   indirect call per operation (bench/micro measures it)
 * hl_alloc_malloc and friends branch on the strategy inline; the pool path
 * is one direct call into alloc.c, where the pool's fast path is inlined.
 */
#ifndef HL_ALLOC_H
#define HL_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "hl_base.h"
#include "hl_config.h"

#ifdef __cplusplus
extern "C" {
#endif
HL_API_BEGIN

typedef struct hl_alloc_peer {
  const char *name;
  const char *library;            /* the shared object it was loaded from */
  void *(*malloc)(size_t);
  void (*free)(void *);
  void *(*realloc)(void *, size_t);
  void *collect;                  /* its "give memory back" call, or NULL */
} hl_alloc_peer_t;

typedef struct hl_alloc_state {
  hl_alloc_kind_t kind;
  int initialized;
  hl_alloc_peer_t peer;           /* kind is a peer */
} hl_alloc_state_t;

extern hl_alloc_state_t hl_alloc_state;

/* Checks what the configuration asks of this layer without changing
 * anything: the geometry's invariants, a peer's library present. 0, or -1
 * with a message (option, value, what is accepted). The driver calls it
 * before running, so a bad value exits with status 2. */
int hl_alloc_check_config(const hl_config_t *c, char *err, size_t errlen);

/* A peer whose library dlopen cannot load for want of static thread-local
 * storage (jemalloc's initial-exec TLS; alloc/peers.c) calls fn first, if
 * set: a program that can start again with the glibc tunable that reserves
 * it (the driver: bench/main.c) does so there and never returns. */
void hl_alloc_set_static_tls_retry(void (*fn)(void));

/* Selects and sets up the strategy of c. Call once, before any thread
 * allocates. Returns 0, or -errno with a message. */
int hl_alloc_init(const hl_config_t *c, char *err, size_t errlen);
/* Frees everything the pool allocator holds (every block must be free or
 * abandoned) so that hl_alloc_init can be called again: for tests. */
void hl_alloc_reset(void);
const char *hl_alloc_name(void);

/* The pool strategy (alloc.c). */
void *hl_pool_malloc(size_t n);
void *hl_pool_calloc(size_t nelem, size_t elsize);
void *hl_pool_realloc(void *p, size_t n);
void  hl_pool_free(void *p);
/* Whether p lies in one of the pool allocator's arenas (radix tree; does not
 * read *p). */
bool  hl_pool_owns(const void *p);
/* The usable size of a block of the pools (its size class), or 0 when p is
 * not in one of our arenas (then it belongs to the raw layer). */
size_t hl_pool_block_size(const void *p);

/* fork(2) safety for the pool strategy (the LD_PRELOAD library registers
 * them with pthread_atfork): prepare takes every lock of the allocator, in a
 * fixed order; parent releases them; child resets them in the only thread
 * the child has. No-ops for the other strategies. */
void hl_alloc_fork_prepare(void);
void hl_alloc_fork_parent(void);
void hl_alloc_fork_child(void);

static inline void *hl_alloc_malloc(size_t n) {
  HL_ASSERT(hl_alloc_state.initialized);
  if (HL_LIKELY(hl_alloc_state.kind == HL_ALLOC_POOL)) return hl_pool_malloc(n);
  if (hl_alloc_state.kind == HL_ALLOC_SYSTEM) return malloc(n);
  return hl_alloc_state.peer.malloc(n);
}

static inline void hl_alloc_free(void *p) {
  HL_ASSERT(hl_alloc_state.initialized);
  if (HL_LIKELY(hl_alloc_state.kind == HL_ALLOC_POOL)) hl_pool_free(p);
  else if (hl_alloc_state.kind == HL_ALLOC_SYSTEM) free(p);
  else hl_alloc_state.peer.free(p);
}

static inline void *hl_alloc_realloc(void *p, size_t n) {
  HL_ASSERT(hl_alloc_state.initialized);
  if (HL_LIKELY(hl_alloc_state.kind == HL_ALLOC_POOL)) return hl_pool_realloc(p, n);
  if (hl_alloc_state.kind == HL_ALLOC_SYSTEM) return realloc(p, n);
  return hl_alloc_state.peer.realloc(p, n);
}

/* Gives cached memory back: thread caches are flushed (the caller's at
 * once, the others' at their next slow path) and empty arenas kept for
 * hysteresis or decay go back to the OS. The collector calls it after a
 * full collection. With alloc=system it is malloc_trim(0) (under ASan the
 * sanitizer's purge, under TSan nothing); with a peer, the peer's own call
 * (mi_collect, a jemalloc purge, tcmalloc's ReleaseFreeMemory); obmalloc
 * has none. */
void hl_alloc_collect(void);

/* ---- statistics (stats.c), the figures of sys._debugmallocstats() --------
 * One X-macro list generates the struct, the text and the JSON. */
#define HL_ALLOC_STAT_FIELDS(X)                                                  \
  X(arenas_allocated, "arenas mapped from the OS, in total")                    \
  X(arenas_reclaimed, "arenas given back to the OS, in total")                  \
  X(arenas_highwater, "most arenas mapped at once")                             \
  X(arenas_current, "arenas mapped now")                                        \
  X(arenas_kept_empty, "empty arenas kept for reuse (hysteresis)")              \
  X(arenas_discarded, "arenas madvise'd and kept mapped without pages")         \
  X(arenas_huge, "arenas mapped with the advice to use transparent huge pages (arena-huge=on)") \
  X(anon_huge_bytes, "bytes of the process in transparent huge pages (arena-huge=on; hl_alloc_stats_process)") \
  X(pools_used, "pools holding at least one block")                             \
  X(pools_free, "empty pools in mapped arenas, never-used ones included")      \
  X(blocks_in_use, "blocks handed out and not freed (magazine, heap-magazine: cached ones included)") \
  X(bytes_in_use, "bytes in blocks handed out (rounded to the size class)")     \
  X(bytes_free_blocks, "bytes in free blocks of used pools")                    \
  X(bytes_unused_pools, "bytes in used pools not cut into blocks yet, or too small for one") \
  X(bytes_free_pools, "bytes in empty pools")                                   \
  X(bytes_overhead, "pool headers, arena objects, radix tree nodes")            \
  X(bytes_mapped, "bytes of arenas mapped now")                                 \
  X(raw_requests, "requests sent to the raw layer (0 bytes or above threshold)") \
  X(tcache_threads, "threads with a cache or a heap now")                      \
  X(tcache_blocks, "free blocks held in thread caches (magazine, heap-magazine)")              \
  X(tcache_bytes, "bytes of those blocks")                                      \
  X(tcache_refills, "batches taken from the shared pools (magazine)")           \
  X(tcache_flushes, "batches given back to the shared pools or the heap (magazine, heap-magazine)")        \
  X(heaps, "thread heaps made (heap)")                                          \
  X(heaps_abandoned, "heaps whose thread exited with live blocks (heap)")       \
  X(heap_adoptions, "abandoned heaps taken over by a new thread (heap)")        \
  X(heap_reclaims, "abandoned heaps made spare by the free of their last block (heap)") \
  X(remote_frees, "blocks freed by a thread other than their heap's owner (heap)") \
  X(remote_pending, "of those, not yet taken back by the owner, not in use (heap)") \
  X(huge_blocks, "huge blocks handed out (large=medium: above the largest span class)") \
  X(huge_bytes, "bytes mapped for those blocks")                                 \
  X(huge_maps, "huge mappings made, in total (a cache miss)")                   \
  X(huge_cache_hits, "huge requests served from the cache of freed mappings")   \
  X(huge_cache_blocks, "freed huge mappings cached now")                        \
  X(huge_cache_bytes, "bytes of those mappings")

/* Per size class: a row of the table (bytes are blocks times size). */
#define HL_ALLOC_CLASS_STAT_FIELDS(X)                                            \
  X(size, "block size of the class")                                            \
  X(pools, "used pools of the class")                                           \
  X(arenas, "arenas holding at least one of those pools")                       \
  X(blocks_in_use, "blocks handed out (magazine, heap-magazine: cached ones included)")        \
  X(free_blocks, "free blocks of those pools: on free lists and in virgin space") \
  X(tcache_blocks, "of the blocks in use, free ones held in thread caches (magazine, heap-magazine)")

typedef struct hl_alloc_class_stats {
#define HL_STAT_STRUCT_FIELD(name, help) uint64_t name;
  HL_ALLOC_CLASS_STAT_FIELDS(HL_STAT_STRUCT_FIELD)
#undef HL_STAT_STRUCT_FIELD
} hl_alloc_class_stats_t;

/* Per thread cache: one per live thread's magazines (tcache=magazine), one
 * per heap (tcache=heap: owned by a thread, abandoned, or spare). */
#define HL_ALLOC_TCACHE_STAT_FIELDS(X)                                           \
  X(pools, "pools of the heap holding at least one block (heap)")               \
  X(arenas, "arenas of the heap (heap)")                                        \
  X(blocks_in_use, "blocks of the heap handed out (heap)")                      \
  X(bytes_in_use, "bytes of those blocks (heap)")                               \
  X(free_blocks, "free blocks held: in the magazines, or in the heap's used pools") \
  X(free_bytes, "bytes of those blocks")                                        \
  X(remote_pending, "blocks freed into the heap by other threads, not taken back yet (heap)")

typedef struct hl_alloc_tcache_stats {
  const char *state;          /* "thread" (magazine), "owned", "abandoned", "spare" (heap) */
#define HL_STAT_STRUCT_FIELD(name, help) uint64_t name;
  HL_ALLOC_TCACHE_STAT_FIELDS(HL_STAT_STRUCT_FIELD)
#undef HL_STAT_STRUCT_FIELD
} hl_alloc_tcache_stats_t;

/* Thread caches listed one by one in a snapshot; tcache_threads and heaps
 * count all of them. */
#define HL_ALLOC_STATS_TCACHES 64

typedef struct hl_alloc_stats {
#define HL_STAT_STRUCT_FIELD(name, help) uint64_t name;
  HL_ALLOC_STAT_FIELDS(HL_STAT_STRUCT_FIELD)
#undef HL_STAT_STRUCT_FIELD
  unsigned nclasses;
  hl_alloc_class_stats_t classes[128];
  uint64_t alignment, threshold, pool_size, arena_size;
  uint64_t max_size;                /* the largest block the pools serve (large=medium: above threshold) */
  uint64_t pool_colours;            /* header offsets in use (1: obmalloc's layout) */
  const char *tcache;               /* "none", "magazine", "heap", "heap-magazine" */
  unsigned ntcaches;                /* entries of tcaches (at most HL_ALLOC_STATS_TCACHES) */
  hl_alloc_tcache_stats_t tcaches[HL_ALLOC_STATS_TCACHES];
} hl_alloc_stats_t;

/* A snapshot (walks every arena: as cheap as _debugmallocstats, not free).
 * Zeroes when the pool strategy is not in use. */
void hl_alloc_stats(hl_alloc_stats_t *s);
/* Adds the process's figures read from /proc to a snapshot
 * (anon_huge_bytes, with arena-huge=on): for a report at the end, not for
 * the snapshots a trace takes as it runs. */
void hl_alloc_stats_process(hl_alloc_stats_t *s);
/* The text of sys._debugmallocstats(), as heaplab lays it out: the
 * geometry, a row per size class in use, the totals, the thread caches. */
void hl_alloc_stats_print(const hl_alloc_stats_t *s, FILE *f);
/* The same figures as one JSON object's members (no braces), so that a
 * caller can add its own: "geometry": {...}, "classes": [...], "totals":
 * {...}, "tcache": {...}. Names are those of the X-macro lists above. */
void hl_alloc_stats_print_json(const hl_alloc_stats_t *s, FILE *f);

HL_API_END
#ifdef __cplusplus
}
#endif
#endif /* HL_ALLOC_H */
