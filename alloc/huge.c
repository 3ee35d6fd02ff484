/* Huge blocks (--large=medium): requests above the largest span class,
 * each in a mapping of its own, with a small cache of mappings freed lately.
 *
 * Sources of the ideas (no code): glibc's mmap threshold (a chunk of its own
 * for a large request, grown by mremap), mimalloc's huge pages and its
 * segment cache (mappings freed lately reused without a system call, purged
 * after a delay), jemalloc's extent reuse. The layout, the cache's policy
 * and its bounds are heaplab's own.
 *
 * A mapping, at an address aligned to a radix grain (16 KiB) and a whole
 * number of grains long, so that the radix map can name it grain by grain
 * without claiming a byte of anyone else's:
 *
 *   base                         p = base + offset                     base + size
 *   | header (64 B) | ... unused |============ the block =============|
 *
 *   offset  64 for a plain request (p is 64-byte aligned); for an aligned
 *           one, the first multiple of the alignment at least 64 past base
 *   size    the mapping's length; the usable size is size - offset
 *
 * Every grain of the mapping maps to the tag base | HLI_TAG_HUGE (radix
 * entry, alloc_internal.h): no fast-path bit, so free() leaves its fast
 * path for alloc.c's slow one, which tests the bit; hli_tag_pool() of the
 * tag is base, where the header is, so free, realloc and malloc_usable_size
 * find the size with the one radix lookup every pointer gets, and the debug
 * hooks' "same pool" test (debug.c) sees one unit the mapping's length.
 *
 * The cache: one per process, behind a spinlock, of at most HUGE_CACHE_MAX
 * (64) mappings and max(HUGE_CACHE_BYTES, a quarter of the bytes of the
 * huge blocks in use) bytes, HUGE_CACHE_BYTES being 64 MiB: a program with
 * a gigabyte of huge blocks that it replaces at random sizes keeps a
 * quarter of that at most, and one that allocates 1 MiB at a time 64 MiB.
 * (First 8 mappings and 64 MiB flat: a churn of 64 KiB..4 MiB blocks at
 * two threads found a fit in the cache for 73% of its requests and paid a
 * mapping and an unmapping for the rest, 24 us per operation against
 * glibc's 1.5; docs/measurements.md, "Huge blocks".) Not per thread: huge
 * blocks are few and each costs a system call and page faults without the
 * cache, against a lock taken once per request with it; a cache per thread
 * would multiply the bytes held by the thread count, and a producer that
 * allocates what a consumer frees would fill one thread's cache and miss in
 * the other's. A cached mapping keeps its radix entries and its pages
 * (that is the point: the next request of the size reuses both, with no
 * mmap and no page fault); the header says it is cached, so a second free
 * of a block whose mapping is cached is caught (hl_die). A request takes
 * the smallest cached mapping that holds it and is at most twice what it
 * needs; more than an eighth above that, the tail is unmapped first (one
 * munmap, still no fault on the head). The oldest mapping goes when a free
 * would pass a bound; a block larger than the byte bound is never cached.
 * Mappings wait at most the arena decay (arena-decay-ms, when not 0),
 * checked at every huge request or free and at the raw layer's paths
 * (hli_huge_decay), and hl_alloc_collect empties the cache
 * (hli_huge_trim). With arena-decay-ms=0 the cache keeps its mappings
 * until a bound, a collect or the end: like arena-keep-kib for arenas.
 *
 * realloc of a huge block to another huge size: a shrink unmaps the tail
 * in place (mremap), a growth tries mremap in place and otherwise moves the
 * pages, without copying them, to a fresh grain-aligned range (mremap with
 * MREMAP_FIXED over a reservation: MREMAP_MAYMOVE alone would pick an
 * address aligned to a page only, which the radix map cannot name).
 *
 * System calls happen outside the lock; the lock guards the cache and the
 * counters.
 */
#include <string.h>
#include <time.h>

#include "alloc_internal.h"
#include "hl_lock.h"

#define HUGE_HEADER 64u
#define HUGE_CACHE_MAX 64u
#define HUGE_CACHE_BYTES ((size_t)64 << 20)
#define GRAIN ((size_t)1 << HLI_RADIX_GRAIN_SHIFT)

enum { HUGE_LIVE = 0x4c495645u /* "LIVE" */, HUGE_CACHED = 0x43414348u /* "CACH" */ };

/* At base. */
typedef struct huge_header {
  size_t size;       /* bytes mapped from base: a multiple of GRAIN */
  size_t offset;     /* p - base */
  uint32_t state;    /* HUGE_LIVE or HUGE_CACHED */
} huge_header_t;
_Static_assert(sizeof(huge_header_t) <= HUGE_HEADER, "the header fits before p");

typedef struct huge_entry {
  uintptr_t base;
  size_t size;
  uint64_t freed_ns;
} huge_entry_t;

static struct {
  hl_spinlock_t lock;
  bool enabled;
  uint64_t decay_ns;
  unsigned ncached;                  /* entries [0, ncached) of cache, oldest first */
  huge_entry_t cache[HUGE_CACHE_MAX];
  size_t cached_bytes;
  /* read without the lock (relaxed) by hli_huge_decay_pending: the cache
   * holds something that a decay may release */
  uint32_t pending;
  /* statistics (under the lock) */
  uint64_t maps, hits, blocks, bytes;
} huge = {.lock = HL_SPINLOCK_INITIALIZER};

static inline size_t round_grain(size_t n) { return (n + GRAIN - 1) & ~(GRAIN - 1); }

static uint64_t coarse_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline huge_header_t *header_at(uintptr_t base) { return (huge_header_t *)base; }

/* The offset of a block aligned to alignment (a power of two, at least 64
 * here) in the mapping at base. */
static inline size_t offset_in(uintptr_t base, size_t alignment) {
  uintptr_t p = (base + HUGE_HEADER + alignment - 1) & ~(uintptr_t)(alignment - 1);
  return (size_t)(p - base);
}

static inline uintptr_t tag_of(uintptr_t base) { return base | HLI_TAG_HUGE; }

/* A fresh mapping of size bytes aligned to align, named in the radix map
 * (every grain tagged with its base); 0 when either fails (nothing kept). */
static uintptr_t map_named(size_t size, size_t align) {
  void *m = hl_os_map_aligned(size, align);
  if (m == NULL) return 0;
  uintptr_t base = (uintptr_t)m;
  if (hl_radix_set(base, size, tag_of(base)) != 0) {
    hl_os_unmap(m, size);
    return 0;
  }
  return base;
}

static void update_pending(void) {
  hl_atomic_store_relaxed_u32(&huge.pending, huge.ncached != 0 && huge.decay_ns != 0);
}

/* Under the lock: takes entry i out of the cache (order kept). */
static huge_entry_t cache_take(unsigned i) {
  huge_entry_t e = huge.cache[i];
  memmove(&huge.cache[i], &huge.cache[i + 1], (huge.ncached - i - 1) * sizeof e);
  huge.ncached--;
  huge.cached_bytes -= e.size;
  return e;
}

/* A mapping leaves us: its radix entries first, so that no lookup names it
 * once another mapping may take the range. */
static void unmap(uintptr_t base, size_t size) {
  hl_radix_clear(base, size);
  hl_os_unmap((void *)base, size);
}

/* Under the lock: moves into out[] the entries whose decay has run out
 * (oldest first, so it stops at the first young one); the caller unmaps
 * them after unlocking. */
static unsigned cache_expire(huge_entry_t *out, uint64_t now) {
  unsigned k = 0;
  if (huge.decay_ns == 0) return 0;
  while (huge.ncached && now - huge.cache[0].freed_ns >= huge.decay_ns) out[k++] = cache_take(0);
  return k;
}

static void unmap_all(const huge_entry_t *e, unsigned k) {
  for (unsigned i = 0; i < k; i++) unmap(e[i].base, e[i].size);
}

void hli_huge_init(bool enabled, uint64_t decay_ns) {
  huge.enabled = enabled;
  huge.decay_ns = decay_ns;
}

bool hli_huge_enabled(void) { return huge.enabled; }

/* A block of n bytes at alignment (a power of two, at least 64) from the
 * cache, or NULL; its bytes are what the last owner left. */
static void *from_cache(size_t n, size_t alignment) {
  huge_entry_t expired[HUGE_CACHE_MAX];
  uintptr_t base = 0;
  size_t size = 0, offset = 0, trim = 0;
  hl_spinlock_lock(&huge.lock);
  unsigned k = cache_expire(expired, coarse_now_ns());
  unsigned best = HUGE_CACHE_MAX;
  for (unsigned i = 0; i < huge.ncached; i++) {
    const huge_entry_t *e = &huge.cache[i];
    size_t off = offset_in(e->base, alignment);
    if (off >= e->size || n > e->size - off) continue;   /* too small */
    if (e->size - off - n > off + n) continue;            /* more than twice the need */
    if (best == HUGE_CACHE_MAX || e->size < huge.cache[best].size) best = i;
  }
  if (best != HUGE_CACHE_MAX) {
    huge_entry_t e = cache_take(best);
    base = e.base;
    offset = offset_in(base, alignment);
    size_t need = round_grain(offset + n);
    size = e.size;
    if (size - need > need / 8) {   /* give the tail back, keep the head's pages */
      trim = size - need;
      size = need;
    }
    huge.hits++;
    huge.blocks++;
    huge.bytes += size;
  }
  update_pending();
  hl_spinlock_unlock(&huge.lock);
  unmap_all(expired, k);
  if (!base) return NULL;
  if (trim) unmap(base + size, trim);
  huge_header_t *h = header_at(base);
  h->size = size;
  h->offset = offset;
  h->state = HUGE_LIVE;
  return (void *)(base + offset);
}

void *hli_huge_malloc(size_t n, size_t alignment, bool zero) {
  if (alignment < HUGE_HEADER) alignment = HUGE_HEADER;
  /* offset + n must fit, with the grain rounding, in a size_t */
  if (n > (size_t)PTRDIFF_MAX - alignment - GRAIN) return NULL;
  void *p = from_cache(n, alignment);
  if (p) {
    if (zero) memset(p, 0, n);
    return p;
  }
  /* a fresh mapping, aligned to the alignment (at least a grain): the
   * block starts at base + max(64, alignment), every byte zero */
  size_t map_align = alignment > GRAIN ? alignment : GRAIN;
  size_t offset = alignment;
  size_t size = round_grain(offset + n);
  uintptr_t base = map_named(size, map_align);
  if (!base) return NULL;
  huge_header_t *h = header_at(base);
  h->size = size;
  h->offset = offset;
  h->state = HUGE_LIVE;
  hl_spinlock_lock(&huge.lock);
  huge.maps++;
  huge.blocks++;
  huge.bytes += size;
  hl_spinlock_unlock(&huge.lock);
  return (void *)(base + offset);
}

/* The header of p, a huge block handed out (tag: its radix entry); dies on
 * a pointer that is not the block's start, or a block freed already. */
static huge_header_t *live_header(const void *p, uintptr_t tag, const char *op) {
  uintptr_t base = hli_tag_pool(tag);
  huge_header_t *h = header_at(base);
  if (HL_UNLIKELY((uintptr_t)p != base + h->offset))
    hl_die("%s(%p): not the start of a huge block (it starts at %p)", op, p,
           (void *)(base + h->offset));
  if (HL_UNLIKELY(h->state != HUGE_LIVE))
    hl_die("%s(%p): the huge block was freed already (double free)", op, p);
  return h;
}

size_t hli_huge_usable_size(const void *p, uintptr_t tag) {
  const huge_header_t *h = header_at(hli_tag_pool(tag));
  (void)p;
  return h->size - h->offset;
}

void hli_huge_free(void *p, uintptr_t tag) {
  huge_header_t *h = live_header(p, tag, "free");
  uintptr_t base = hli_tag_pool(tag);
  size_t size = h->size;
  huge_entry_t out[HUGE_CACHE_MAX + 1];
  unsigned k = 0;
  hl_spinlock_lock(&huge.lock);
  huge.blocks--;
  huge.bytes -= size;
  uint64_t now = coarse_now_ns();
  k = cache_expire(out, now);
  size_t bound = huge.bytes / 4 > HUGE_CACHE_BYTES ? huge.bytes / 4 : HUGE_CACHE_BYTES;
  if (size > bound) {
    out[k++] = (huge_entry_t){base, size, now};
  } else {
    /* Written under the lock: a cached mapping is the lock's, and the
     * thread that takes it from the cache reads the header after taking
     * the same lock. */
    h->state = HUGE_CACHED;
    while (huge.ncached == HUGE_CACHE_MAX || huge.cached_bytes + size > bound)
      out[k++] = cache_take(0);   /* the oldest */
    huge.cache[huge.ncached++] = (huge_entry_t){base, size, now};
    huge.cached_bytes += size;
  }
  update_pending();
  hl_spinlock_unlock(&huge.lock);
  unmap_all(out, k);
}

void *hli_huge_realloc(void *p, uintptr_t tag, size_t n) {
  huge_header_t *h = live_header(p, tag, "realloc");
  uintptr_t base = hli_tag_pool(tag);
  size_t old = h->size, offset = h->offset;
  if (n > (size_t)PTRDIFF_MAX - offset - GRAIN) return NULL;
  size_t size = round_grain(offset + n);
  if (size == old) return p;
  if (size < old) {
    /* shrink in place: the tail's entries go first, then its pages */
    hl_radix_clear(base + size, old - size);
    if (hl_os_remap((void *)base, old, size, NULL) == NULL) {
      (void)hl_radix_set(base + size, old - size, tag_of(base));   /* leaves exist: no failure */
      return p;   /* still a valid block of at least n bytes */
    }
  } else if (hl_os_remap((void *)base, old, size, NULL) != NULL) {
    /* grown in place: the new grains are ours from now on */
    if (hl_radix_set(base + old, size - old, tag_of(base)) != 0) {
      (void)hl_os_remap((void *)base, size, old, NULL);
      return NULL;
    }
  } else {
    /* move: a grain-aligned reservation, named in the radix map before the
     * pages arrive (no one else holds it), the old range's entries cleared
     * before it is given up */
    uintptr_t nb = map_named(size, GRAIN);
    if (!nb) return NULL;
    void *r = (void *)nb;
    hl_radix_clear(base, old);
    if (hl_os_remap((void *)base, old, size, r) == NULL) {
      unmap(nb, size);
      (void)hl_radix_set(base, old, tag_of(base));   /* leaves exist: no failure */
      return NULL;
    }
    base = nb;
    h = header_at(base);
  }
  h->size = size;
  hl_spinlock_lock(&huge.lock);
  huge.bytes += size - old;   /* modular: a shrink subtracts */
  hl_spinlock_unlock(&huge.lock);
  return (void *)(base + offset);
}

void hli_huge_decay(void) {
  huge_entry_t out[HUGE_CACHE_MAX];
  hl_spinlock_lock(&huge.lock);
  unsigned k = cache_expire(out, coarse_now_ns());
  update_pending();
  hl_spinlock_unlock(&huge.lock);
  unmap_all(out, k);
}

bool hli_huge_decay_pending(void) { return hl_atomic_load_relaxed_u32(&huge.pending) != 0; }

void hli_huge_trim(void) {
  huge_entry_t out[HUGE_CACHE_MAX];
  hl_spinlock_lock(&huge.lock);
  unsigned k = 0;
  while (huge.ncached) out[k++] = cache_take(0);
  update_pending();
  hl_spinlock_unlock(&huge.lock);
  unmap_all(out, k);
}

void hli_huge_reset(void) {
  hli_huge_trim();
  hl_spinlock_lock(&huge.lock);
  huge.maps = huge.hits = huge.blocks = huge.bytes = 0;
  huge.enabled = false;
  huge.decay_ns = 0;
  hl_spinlock_unlock(&huge.lock);
}

void hli_huge_stats(hl_alloc_stats_t *s) {
  hl_spinlock_lock(&huge.lock);
  s->huge_blocks = huge.blocks;
  s->huge_bytes = huge.bytes;
  s->huge_maps = huge.maps;
  s->huge_cache_hits = huge.hits;
  s->huge_cache_blocks = huge.ncached;
  s->huge_cache_bytes = huge.cached_bytes;
  hl_spinlock_unlock(&huge.lock);
}

void hli_huge_fork_prepare(void) { hl_spinlock_lock(&huge.lock); }
void hli_huge_fork_parent(void) { hl_spinlock_unlock(&huge.lock); }
void hli_huge_fork_child(void) { hl_spinlock_init(&huge.lock); }
