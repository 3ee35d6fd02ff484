/* heaplab alloc/: the types of the allocator layer, and what its files share.
 *
 * Main types (mimalloc's types.h idea: one place to read the data layout):
 *   hl_geometry_t  alignment, threshold, pool and arena sizes; the size classes
 *   hl_arena_t     one arena: an arena-aligned mapping of arena_size bytes cut
 *                  into pools; the object lives outside the arena
 *   hl_pool_t      the header at the start of each pool: one size class, a
 *                  free-block list and a bump offset into never-used space
 *   hl_pools_t     one allocator instance: usedpools per class, the usable
 *                  arenas sorted by free pools, the empty arenas kept
 *   hl_radix_*     which pool (and class) covers this address, if ours? (radix.c)
 *   hl_os_*        mmap, munmap, madvise (os.c)
 *
 * Files: size_class.c (geometry), os.c, raw.c, radix.c, huge.c (huge blocks), pool.c (arenas,
 * pools, blocks), stats.c, debug.c, alloc.c (the strategy switch).
 */
#ifndef HL_ALLOC_INTERNAL_H
#define HL_ALLOC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hl_alloc.h"
#include "hl_atomic.h"
#include "hl_base.h"

/* ---- OS layer (os.c) ------------------------------------------------------
 * Every failure returns NULL / -errno up the stack; nothing here aborts. */
/* size bytes of zeroed, read-write memory aligned to align (a power of two,
 * a multiple of the page size); NULL on failure. */
void *hl_os_map_aligned(size_t size, size_t align);
void  hl_os_unmap(void *p, size_t size);
/* Gives the pages back to the kernel and keeps the address range mapped
 * (MADV_DONTNEED: the next touch faults in a zero page). Returns 0 or -errno. */
int   hl_os_discard(void *p, size_t size);
/* mremap: the mapping [p, p + old_size) becomes new_size bytes long, in
 * place (fixed NULL: fails when the range after it is taken), or moved
 * without copying onto fixed, a mapping of new_size bytes of ours that it
 * replaces. The new address, or NULL with p's mapping as it was. */
void *hl_os_remap(void *p, size_t old_size, size_t new_size, void *fixed);
size_t hl_os_page_size(void);
/* Transparent huge pages: the size the kernel backs an advised, aligned
 * range with (0: no THP), and the advice (-errno on refusal: a kernel
 * without THP; the range works as before). */
size_t hl_os_huge_page_size(void);
int   hl_os_advise_huge(void *p, size_t size);
/* NUMA nodes of the machine (1 when it has no NUMA). */
unsigned hl_os_numa_nodes(void);
/* Prefers node for the pages of [p, p + size) (mbind MPOL_PREFERRED).
 * 0 or -errno. */
int   hl_os_bind_node(void *p, size_t size, unsigned node);
/* Binds to the node of the calling thread's CPU when the machine has more
 * than one node; does nothing (0) otherwise. */
int   hl_os_bind_local(void *p, size_t size);
/* Test hook: the next `n`-th map call (1 = the next one) fails as if the
 * kernel had refused; 0 disarms. Counts calls of hl_os_map_aligned only. */
void  hl_os_fail_nth_map(unsigned n);
/* Successful map calls, and bytes currently mapped through this layer
 * (page-rounded). */
uint64_t hl_os_maps(void);
uint64_t hl_os_mapped_bytes(void);

/* ---- radix map over 16 KiB grains (radix.c) ----------------------------------
 * Maps an address to a word that the caller stored for its grain, or 0,
 * without touching the memory at that address (CPython 3.10's arena_map,
 * keyed by a fixed grain so that every shift is a constant). pool.c stores,
 * for every grain of a mapped arena, the tag of the pool covering it, or a
 * split entry where pools are smaller than the grain (below).
 * Covers 48-bit user addresses (x86-64, arm64 with 4-level tables); anything
 * above is never ours.
 * Readers take no lock: leaves, once published, are never freed, and a
 * lookup of an address that is not being set or cleared concurrently sees a
 * stable answer. hl_radix_set/clear are called with the caller's lock held. */
/* Every grain of [base, base + len) maps to value. 0; -ENOMEM when a leaf
 * cannot be mapped (no entry changed then); -EINVAL for a value of 0, or a
 * range that is empty, not grain-aligned, holds address 0 or reaches 2^48. */
int   hl_radix_set(uintptr_t base, size_t len, uintptr_t value);
/* Every grain of [base, base + len) maps to 0 (a bad range is ignored). */
void  hl_radix_clear(uintptr_t base, size_t len);
static inline uintptr_t hl_radix_get(uintptr_t addr);
/* Bytes of leaf memory the map holds (for the statistics' overhead): the
 * mapped leaves, virtual (only the pages written are resident), not the
 * static top level. */
size_t hl_radix_bytes(void);

/* The map's shape, for the inline lookup (radix.c explains it). */
#define HLI_RADIX_ADDR_BITS 48
#define HLI_RADIX_GRAIN_SHIFT 14
#define HLI_RADIX_TOP_SHIFT 28
#define HLI_RADIX_TOP_LEN ((uintptr_t)1 << (HLI_RADIX_ADDR_BITS - HLI_RADIX_TOP_SHIFT))
#define HLI_RADIX_LEAF_LEN ((uintptr_t)1 << (HLI_RADIX_TOP_SHIFT - HLI_RADIX_GRAIN_SHIFT))
extern HL_INTERNAL void **hli_radix_top[HLI_RADIX_TOP_LEN];

static inline uintptr_t hl_radix_get(uintptr_t addr) {
  uintptr_t i = addr >> HLI_RADIX_TOP_SHIFT;
  /* one comparison bounds the array and rejects every address >= 2^48 */
  if (HL_UNLIKELY(i >= HLI_RADIX_TOP_LEN)) return 0;
  /* Acquire, both: pair with the CAS that published the leaf and with
   * hl_radix_set's release of the entry (radix.c explains). On x86-64 both
   * are plain loads. */
  void **leaf = hl_atomic_load_acquire_ptr((void *const *)&hli_radix_top[i]);
  if (leaf == NULL) return 0;
  return (uintptr_t)hl_atomic_load_acquire_ptr(
      &leaf[(addr >> HLI_RADIX_GRAIN_SHIFT) & (HLI_RADIX_LEAF_LEN - 1)]);
}

/* Pool tags: what pool.c stores for each grain of a mapped arena. A pool's
 * header is 64-byte aligned (at the pool's start, or at its colour offset,
 * below) and below 2^48, so its address leaves bits 0..5 and 48..63 free:
 * bits 0..3 hold flags, bits 56..62 the size class, and bits 48..55 and 63
 * stay 0, so that tag >> 52 is idx * 16, the byte offset of a 16-byte record
 * in an array indexed by class (the magazines' bins): the magazine free
 * indexes its bin with one shift. Bits 0..2 and 5 name the free fast path of the
 * instance that owns the pool (hl_pools_t.tag_bits, set by alloc.c and
 * tcache_heap.c), so that free() dispatches on the word it has just loaded rather
 * than on a global, and an entry of 0 (not ours) has neither bit. A tag is
 * never 0.
 *
 * Pools smaller than a grain (4 and 8 KiB: `classic`, or a custom geometry)
 * share their grains, so no grain entry can name one pool. Every grain of
 * such an arena holds a split entry instead: HLI_TAG_SPLIT, none of the fast
 * path bits (free() takes its slow path, where hli_tag_get resolves it), the
 * instance's tag bits in bits 6..11 (none of bits 0..5, which the fast paths
 * test) and the pool shift in bits 12..16. The
 * pool is then found by masking the address (such pools are never coloured)
 * and its class read from the pool header (szidx), one load more than a
 * whole-grain pool costs. */
#define HLI_TAG_MAGAZINE ((uintptr_t)1)    /* the shared pools behind magazines */
#define HLI_TAG_HEAP ((uintptr_t)2)        /* a thread heap's pools */
#define HLI_TAG_DIRECT ((uintptr_t)4)      /* the shared pools, one thread, no lock */
#define HLI_TAG_SPLIT ((uintptr_t)8)       /* a grain of several pools: resolve */
#define HLI_TAG_HUGE ((uintptr_t)16)       /* a huge block's mapping (huge.c): at base */
#define HLI_TAG_HEAP_MAGAZINE ((uintptr_t)32)  /* a heap behind its thread's lists */
#define HLI_TAG_POOL_MASK ((((uintptr_t)1 << 48) - 1) & ~(uintptr_t)63)  /* the header */
#define HLI_TAG_CLASS_SHIFT 56
#define HLI_TAG_CLASS_MASK ((uintptr_t)0x7f << HLI_TAG_CLASS_SHIFT)
#define HLI_TAG_SPLIT_BITS_SHIFT 6         /* split entry: the instance's tag bits */
#define HLI_TAG_SPLIT_POOL_SHIFT 12        /* split entry: log2 of the pool size */
static inline uintptr_t hli_tag_make(uintptr_t pool, unsigned idx) {
  return pool | ((uintptr_t)idx << HLI_TAG_CLASS_SHIFT);
}
static inline uintptr_t hli_tag_pool(uintptr_t tag) { return tag & HLI_TAG_POOL_MASK; }
static inline unsigned hli_tag_class(uintptr_t tag) {
  return (unsigned)(tag >> HLI_TAG_CLASS_SHIFT);
}
/* idx * 16: the offset of class idx's record in an array of 16-byte ones */
static inline uintptr_t hli_tag_class_x16(uintptr_t tag) {
  return tag >> (HLI_TAG_CLASS_SHIFT - 4);
}
/* The entry for every grain of an arena whose pools (1 << pool_shift bytes,
 * less than a grain) split its grains; tag_bits: the instance's. */
static inline uintptr_t hli_tag_split_make(uintptr_t tag_bits, unsigned pool_shift) {
  return HLI_TAG_SPLIT | tag_bits << HLI_TAG_SPLIT_BITS_SHIFT |
         (uintptr_t)pool_shift << HLI_TAG_SPLIT_POOL_SHIFT;
}
/* The address of the pool holding addr, from addr's entry (a pool tag or a
 * split entry, not 0), without reading the pool. */
static inline uintptr_t hli_entry_pool(uintptr_t addr, uintptr_t entry) {
  if (!(entry & HLI_TAG_SPLIT)) return hli_tag_pool(entry);
  unsigned shift = (unsigned)(entry >> HLI_TAG_SPLIT_POOL_SHIFT) & 31;
  return addr & ~(((uintptr_t)1 << shift) - 1);
}

/* ---- geometry (size_class.c) -------------------------------------------- */
#define HL_MAX_CLASSES 128          /* threshold / alignment, at most */

typedef struct hl_geometry {
  size_t alignment;                 /* power of two, >= 8 */
  size_t threshold;                 /* largest request the pools serve */
  size_t pool_size;                 /* power of two, >= page size */
  size_t arena_size;                /* power of two, multiple of pool_size */
  unsigned align_shift, pool_shift, arena_shift;
  unsigned nclasses;                /* nsmall, then the medium classes */
  unsigned nsmall;                  /* threshold >> align_shift: (idx + 1) << align_shift */
  size_t max_size;                  /* the largest class: threshold, or the largest medium */
  /* --large=medium (hl_geometry_medium): eight classes per power of two
   * above the threshold, up to max_size; 0 without them */
  unsigned medium_base_shift;       /* log2(threshold) */
  uint32_t medium_size[HL_MAX_CLASSES];   /* class nsmall + i: medium_size[i] bytes */
  size_t pool_overhead;             /* the pool header, rounded up to alignment */
  unsigned pools_per_arena;
  /* Spans (hl_geometry_medium, above an eighth of a pool): classes from
   * span_first on are served from runs of 2^k pools, one block size per
   * span, as a pool serves one. Kind 0 is the single pool; kind k a span of
   * 2^k pools (unit_shift[k] = pool_shift + k). pool_max: the largest class
   * a single pool serves (what colouring must leave room for). */
  unsigned span_first;              /* nclasses without spans */
  unsigned nkinds;                  /* 1 + the largest span kind in use */
  size_t pool_max;
  uint8_t class_kind[HL_MAX_CLASSES];
  /* Pool colouring (hl_geometry_colour): the header of the pool at base sits
   * at base + ((base >> pool_shift) & colour_mask) << colour_shift. 0: at the
   * start, obmalloc's layout. */
  unsigned colour_mask, colour_shift;
} hl_geometry_t;

/* Checks every invariant; fills the derived fields. 0 or -EINVAL with a
 * message naming the broken invariant. */
int hl_geometry_init(hl_geometry_t *g, size_t alignment, size_t threshold, size_t pool_size,
                     size_t arena_size, char *err, size_t errlen);
/* Colours the pools' headers: they move from the pool's start to one of up
 * to 64 cache-line offsets within its first page, chosen by the pool's
 * index, with blocks on both sides. Page-aligned headers all map to the same
 * cache sets (bits 6..11 of the address index a 64-set L1 and, physically,
 * the L2), so that a program touching a few hundred pools at random misses
 * on nearly every header; coloured, they spread over every set (Bonwick's
 * slab colouring, 1994, applied to the slab's header rather than its
 * objects). Needs pools of at least a radix grain (the radix entry names the
 * header); returns the number of colours, or -EINVAL with a message. */
int hl_geometry_colour(hl_geometry_t *g, char *err, size_t errlen);
/* --large=medium: adds the medium classes above the threshold, up to an
 * eighth of a pool (so that a pool holds at least seven blocks of the
 * largest), then the span classes up to HLI_SPAN_MAX (size_class.c).
 * Needs a power-of-two threshold of at least 8 alignments.
 * Before hl_geometry_colour. Returns the number of medium classes, or
 * -EINVAL with a message. */
int hl_geometry_medium(hl_geometry_t *g, char *err, size_t errlen);
/* The base of the pool holding addr; the header's offset in the pool at
 * base, and the header's address. */
static inline uintptr_t hl_pool_base(const hl_geometry_t *g, uintptr_t addr) {
  return addr & ~(uintptr_t)(g->pool_size - 1);
}
static inline size_t hl_pool_colour_offset(const hl_geometry_t *g, uintptr_t base) {
  return ((base >> g->pool_shift) & g->colour_mask) << g->colour_shift;
}
static inline uintptr_t hl_pool_header(const hl_geometry_t *g, uintptr_t base) {
  return base + hl_pool_colour_offset(g, base);
}
/* Kind k's unit (a pool, or a span of 2^k pools): its size, and the
 * header of the one at base (a pool's may be coloured; a span's sits at its
 * start). */
#define HLI_MAX_KINDS 8
#define HLI_SPAN_MAX ((size_t)64 << 10)   /* the largest block a span serves */
static inline size_t hli_unit_size(const hl_geometry_t *g, unsigned kind) {
  return g->pool_size << kind;
}
static inline size_t hli_class_unit(const hl_geometry_t *g, unsigned idx) {
  return hli_unit_size(g, g->class_kind[idx]);
}
static inline uintptr_t hli_unit_header(const hl_geometry_t *g, unsigned kind, uintptr_t base) {
  return kind ? base : hl_pool_header(g, base);
}
/* The offset of a span's first block: the header, rounded up to the largest
 * power of two dividing the block size, so that every block of the span is
 * aligned to it (a 4 KiB class: 4 KiB; 3 KiB: 1 KiB) and posix_memalign can
 * be served from the class. A span holds as many blocks as without the
 * rounding, or one fewer (the class's span is chosen with it, size_class.c). */
static inline size_t hli_span_start(const hl_geometry_t *g, size_t size) {
  size_t a = size & -size;
  return (g->pool_overhead + a - 1) & ~(a - 1);
}
/* Medium classes (--large=medium): for n in (2^b, 2^(b+1)], b >= log2(threshold),
 * eight classes 2^b + j 2^(b-3), j = 1..8, the j-th the first that holds n, so a
 * block wastes less than 1/9 of itself (mimalloc's bins have four per power of
 * two; jemalloc's four too; eight keeps CPython-sized waste). */
static inline unsigned hli_medium_class(const hl_geometry_t *g, size_t n) {
  unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
  return g->nsmall + ((b - g->medium_base_shift) << 3) + (unsigned)((n - 1) >> (b - 3)) - 8;
}
/* n in 1..max_size */
static inline unsigned hl_size_class(const hl_geometry_t *g, size_t n) {
  if (HL_LIKELY(n <= g->threshold)) return (unsigned)((n - 1) >> g->align_shift);
  return hli_medium_class(g, n);
}
static inline size_t hl_class_size(const hl_geometry_t *g, unsigned idx) {
  if (HL_LIKELY(idx < g->nsmall)) return ((size_t)idx + 1) << g->align_shift;
  return g->medium_size[idx - g->nsmall];
}

/* ---- pools and arenas (pool.c) -------------------------------------------- */
typedef struct hl_block { struct hl_block *next; } hl_block_t;

typedef struct hl_arena hl_arena_t;

/* At the start of every pool (a coloured pool's: at its colour offset,
 * hl_pool_header). A pool is in exactly one state:
 *   used   0 < ref < capacity or virgin space left: on usedpools[szidx]
 *   full   every block handed out: on no list (freeblock == NULL)
 *   empty  ref == 0: on its arena's freepools list (singly, via nextpool)
 * Invariants, for a used or full pool:
 *   ref + |freeblock list| + (maxnextoffset - nextoffset) / size + 1 == capacity
 *     when nextoffset <= maxnextoffset, else ref + |freeblock list| == capacity
 *   freeblock == NULL  <=>  the pool is full
 * 48 bytes, obmalloc's pool header exactly (its fields, in its order): the
 * block size and capacity are the geometry's (hl_class_size, hli_pool_capacity
 * in pool.h), not stored, so that each pool of a `modern` arena loses 48
 * bytes to its header rather than 64, and CPython under the preload
 * library needs no more memory than with obmalloc. */
typedef struct hl_pool {
  uint32_t ref;                     /* blocks handed out */
  uint32_t szidx;                   /* size class */
  hl_block_t *freeblock;            /* freed blocks, then the next virgin block */
  struct hl_pool *nextpool;         /* usedpools list, or the arena's freepools */
  struct hl_pool *prevpool;         /* usedpools list only; meaningless at its head */
  hl_arena_t *arena;
  uint32_t nextoffset;              /* first never-used block (from the pool's base) */
  uint32_t maxnextoffset;           /* the last offset a block may start at */
} hl_pool_t;
_Static_assert(sizeof(hl_pool_t) == 48, "obmalloc's pool header size");

/* The pool tag of addr (pool, class, fast path bits), or 0 if addr is not
 * in one of our arenas: the radix entry (e, hli_tag_resolve), resolved
 * through the pool header when the grain is split. Reads the header only
 * then, and only of the pool holding addr, which must be a block handed out
 * (or the caller must tolerate a stale class). */
static inline uintptr_t hli_tag_resolve(uintptr_t addr, uintptr_t e) {
  if (HL_LIKELY(!(e & HLI_TAG_SPLIT))) return e;
  const hl_pool_t *pool = (const hl_pool_t *)hli_entry_pool(addr, e);
  return hli_tag_make((uintptr_t)pool, pool->szidx) |
         ((e >> HLI_TAG_SPLIT_BITS_SHIFT) &
          (HLI_TAG_MAGAZINE | HLI_TAG_HEAP | HLI_TAG_DIRECT | HLI_TAG_HEAP_MAGAZINE));
}
static inline uintptr_t hli_tag_get(uintptr_t addr) {
  return hli_tag_resolve(addr, hl_radix_get(addr));
}

struct hl_arena {
  uintptr_t base;                   /* arena_size-aligned; 0: object unused */
  uintptr_t pool_address;           /* next never-used pool (or span: a unit of its kind) */
  uint32_t nfreepools;              /* freepools + never-used units */
  uint32_t ntotalpools;
  hl_pool_t *freepools;
  hl_arena_t *nextarena, *prevarena;  /* usable_arenas (sorted), or a free list */
  hl_arena_t *allnext, *allprev;      /* every mapped arena, for statistics */
  void *owner;                      /* the instance's owner (tcache=heap: its heap) */
  uint64_t empty_since_ns;          /* when it last became empty (decay) */
  bool discarded;                   /* madvise'd: mapped, no pages resident */
  uint8_t kind;                     /* its units: pools (0) or spans of 2^kind pools */
};

/* ---- the paths under the debug hooks (raw.c, alloc.c) ----------------------
 * hl_raw_* and hl_pool_* test hli_alloc_debug first and, when it is set, go
 * to debug.c; these are the same operations without that test, which debug.c
 * calls to get the memory it wraps (and the pool strategy to reach the raw
 * layer, so that a pool block spilled into raw is not wrapped twice). */
HL_INTERNAL void *hli_raw_malloc(size_t size);
HL_INTERNAL void *hli_raw_calloc(size_t nelem, size_t elsize);
HL_INTERNAL void *hli_raw_realloc(void *p, size_t size);
HL_INTERNAL void  hli_raw_free(void *p);
/* 1..threshold bytes from the pools, anything else from hli_raw_malloc. */
HL_INTERNAL void *hli_pool_malloc_plain(size_t n);
HL_INTERNAL void  hli_pool_free_plain(void *p);
/* n bytes aligned to alignment (a power of two) from a span class whose
 * blocks are aligned to it (large=medium), when max(n, alignment) is above
 * the pools' classes and at most the largest; else NULL (too small or too
 * large, or the debug hooks are on): the caller goes elsewhere. NULL too
 * when no arena can be mapped. */
HL_INTERNAL void *hli_pool_malloc_aligned(size_t alignment, size_t n);
/* alloc=pool: releases what waits for its decay in the calling thread's
 * instance, if anything does (a relaxed load otherwise, no clock read).
 * For the preload library's paths to glibc, which bypass alloc.c. */
HL_INTERNAL void  hli_alloc_decay_poll(void);
/* alloc=pool, out of memory: gives back every arena and cache it can
 * (alloc.c explains which), before one more try. No lock of ours may be
 * held. */
HL_INTERNAL void  hli_alloc_release_all(void);

/* ---- huge blocks (huge.c): large=medium, above the largest span class ------
 * Each in a mapping of its own, whose every radix grain holds base |
 * HLI_TAG_HUGE (the header at base); freed mappings cached, per process
 * (huge.c explains). Thread-safe: one spinlock. */
HL_INTERNAL void  hli_huge_init(bool enabled, uint64_t decay_ns);
HL_INTERNAL bool  hli_huge_enabled(void);
/* n bytes aligned to alignment (a power of two; 64 at least is given);
 * zeroed when zero is set. NULL when no mapping can be made. */
HL_INTERNAL void *hli_huge_malloc(size_t n, size_t alignment, bool zero);
/* p: a huge block handed out, tag its radix entry. */
HL_INTERNAL void  hli_huge_free(void *p, uintptr_t tag);
HL_INTERNAL size_t hli_huge_usable_size(const void *p, uintptr_t tag);
/* p resized to hold n bytes in its mapping, by mremap (in place, or its
 * pages moved); NULL when it cannot be (p is untouched then). */
HL_INTERNAL void *hli_huge_realloc(void *p, uintptr_t tag, size_t n);
/* The cached mappings whose decay has run out go back; hli_huge_trim: all
 * of them. decay_pending: whether the cache holds something to decay (a
 * relaxed load). */
HL_INTERNAL void  hli_huge_decay(void);
HL_INTERNAL bool  hli_huge_decay_pending(void);
HL_INTERNAL void  hli_huge_trim(void);
/* Empties the cache and zeroes the counters (hl_alloc_reset). */
HL_INTERNAL void  hli_huge_reset(void);
HL_INTERNAL void  hli_huge_stats(hl_alloc_stats_t *s);
HL_INTERNAL void  hli_huge_fork_prepare(void);
HL_INTERNAL void  hli_huge_fork_parent(void);
HL_INTERNAL void  hli_huge_fork_child(void);

/* ---- debug hooks (debug.c): alloc-debug=on, CPython's PYTHONMALLOC=debug ----
 * Set by hl_alloc_init before any thread allocates and cleared by
 * hl_alloc_reset; read without synchronisation, as the strategy is. Blocks
 * must not cross a change of it: a block allocated with the hooks off has no
 * header for them to check, and one allocated with them on is not where the
 * allocator below expects it. */
extern HL_INTERNAL bool hli_alloc_debug;

/* The two API families whose blocks must not be mixed (CPython's api_id). */
typedef enum {
  HLI_FAMILY_RAW = 'r',             /* hl_raw_* */
  HLI_FAMILY_OBJECT = 'o',          /* hl_pool_*, hl_alloc_* with alloc=pool */
} hli_family_t;

/* Turns the hooks on; alignment is the geometry's, which the user pointer
 * keeps. */
HL_INTERNAL void  hli_debug_enable(size_t alignment);
HL_INTERNAL void  hli_debug_disable(void);
/* Bytes a debug block adds to a request (header and trailing guard), with
 * the hooks on; and the size requested for p, a block they returned. For the
 * LD_PRELOAD library, which must fit debug blocks under the threshold and
 * answer malloc_usable_size. */
HL_INTERNAL size_t hli_debug_overhead(void);
HL_INTERNAL size_t hli_debug_size(const void *p);
HL_INTERNAL HL_NOINLINE void *hli_debug_malloc(hli_family_t f, size_t n);
HL_INTERNAL HL_NOINLINE void *hli_debug_calloc(hli_family_t f, size_t nelem, size_t elsize);
HL_INTERNAL HL_NOINLINE void *hli_debug_realloc(hli_family_t f, void *p, size_t n);
HL_INTERNAL HL_NOINLINE void  hli_debug_free(hli_family_t f, void *p);

#endif /* HL_ALLOC_INTERNAL_H */
