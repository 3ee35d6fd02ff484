/* alloc/: the pool allocator through its public entry points, checked against
 * its own invariants (hli_pools_validate) and against a reference model.
 *
 * The geometry and the arena options come from HEAPLAB_* variables, so CTest
 * runs this file once per geometry (the radix tree's key width is fixed per
 * process). usage: test_pool [OPS]
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc_internal.h"
#include "hl_alloc.h"
#include "pool.h"

extern char **environ;
const hl_pools_t *hli_alloc_pools(void);

static hl_config_t cfg;
static hl_geometry_t geo;
static uint64_t model_ops = 200000;
/* large=medium: requests above the largest class are huge blocks (huge.c),
 * ours; without it, the raw layer's */
static bool huge_on;

static void setup_alloc_decay(size_t keep_kib, hl_arena_release_t release, uint64_t decay_ms) {
  char err[256];
  hl_alloc_reset();
  hl_config_t c = cfg;
  c.arena_keep_kib = keep_kib;
  c.arena_release = release;
  c.arena_decay_ms = decay_ms;
  if (hl_alloc_init(&c, err, sizeof err) != 0) fail_msg("init: %s", err);
}

/* Without decay: the tests of the fixed hysteresis. */
static void setup_alloc(size_t keep_kib, hl_arena_release_t release) {
  setup_alloc_decay(keep_kib, release, 0);
}

static void validate(void) { hli_pools_validate(hli_alloc_pools()); }

/* Blocks of `size` in the pool at base, and in a whole arena: the same for
 * every arena when its pools cover every colour (pools_per_arena is a
 * multiple of the colours, as in `modern`), or without colours. */
static size_t pool_blocks(uintptr_t base, size_t size) {
  return hli_pool_capacity(&geo, base, hl_size_class(&geo, size));
}
static size_t arena_blocks(size_t size) {
  assert_true(geo.colour_mask < geo.pools_per_arena);
  size_t n = 0;
  for (size_t i = 0; i < geo.pools_per_arena; i++) n += pool_blocks(i * geo.pool_size, size);
  return n;
}

static hl_alloc_stats_t stats(void) {
  hl_alloc_stats_t s;
  hl_alloc_stats(&s);
  return s;
}

static void test_size_classes(void **st) {
  (void)st;
  for (size_t n = 1; n <= geo.max_size; n++) {
    unsigned idx = hl_size_class(&geo, n);
    size_t size = hl_class_size(&geo, idx);
    assert_true(idx < geo.nclasses);
    assert_int_equal(size % geo.alignment, 0);
    if (n <= geo.threshold) {
      assert_true(size >= n && size - n < geo.alignment);
    } else {
      /* large=medium: the smallest class that holds n, wasting less than 1/9 */
      assert_true(idx >= geo.nsmall);
      assert_true(size >= n && hl_class_size(&geo, idx - 1) < n);
      assert_true(9 * (size - n) < size);
    }
  }
  for (unsigned i = 1; i < geo.nclasses; i++)
    assert_true(hl_class_size(&geo, i - 1) < hl_class_size(&geo, i));
  assert_int_equal(hl_class_size(&geo, geo.nclasses - 1), geo.max_size);
  /* a pool holds at least 7 blocks of the largest class it serves */
  if (geo.pool_max > geo.threshold)
    assert_true((geo.pool_size - geo.pool_overhead) / geo.pool_max >= 7);
  /* spans: up to 64 KiB, each class's span at least two pools and a radix
   * grain, at most an arena, and holding at least seven blocks aligned to
   * the lowest bit of the block size */
  assert_true(geo.max_size <= HLI_SPAN_MAX);
  for (unsigned i = 0; i < geo.nclasses; i++) {
    unsigned kind = geo.class_kind[i];
    size_t size = hl_class_size(&geo, i), unit = hli_class_unit(&geo, i);
    assert_int_equal(kind == 0, i < geo.span_first);
    if (kind == 0) continue;
    assert_true(kind < geo.nkinds && unit >= 2 * geo.pool_size && unit <= geo.arena_size);
    assert_true(unit >= ((size_t)1 << HLI_RADIX_GRAIN_SHIFT));
    assert_true(hli_pool_capacity(&geo, 0, i) >= 7);
    assert_int_equal(hli_span_start(&geo, size) % (size & -size), 0);
    assert_true(hli_span_start(&geo, size) >= geo.pool_overhead);
  }
}

/* Spans: for every span class, two spans and a block filled, then freed. Each
 * block lies in its span, aligned to its size's lowest bit, and every byte
 * of it resolves to the span's header in one lookup; a span holds its
 * capacity; once all is freed, with keep = 0, one empty arena stays for
 * each span kind used so far (held outside the budget, pool.c) and no
 * other; a collect gives those back too. */
static void test_spans(void **st) {
  (void)st;
  if (geo.nkinds == 1) skip();   /* large=libc, or no room for spans */
  setup_alloc(0, HL_ARENA_RELEASE_MUNMAP);
  const hl_pools_t *h = hli_alloc_pools();
  for (unsigned idx = geo.span_first; idx < geo.nclasses; idx++) {
    size_t size = hl_class_size(&geo, idx), unit = hli_class_unit(&geo, idx);
    size_t cap = hli_pool_capacity(&geo, 0, idx), n = 2 * cap + 1;
    size_t request = size - geo.alignment + 1;   /* the smallest that picks idx */
    assert_int_equal(hl_size_class(&geo, request), idx);
    unsigned char **b = calloc(n, sizeof *b);
    for (size_t i = 0; i < n; i++) {
      b[i] = hl_alloc_malloc(request);
      assert_non_null(b[i]);
      assert_true(hl_pool_owns(b[i]));
      assert_int_equal(hl_pool_block_size(b[i]), size);
      uintptr_t a = (uintptr_t)b[i], base = a & ~(uintptr_t)(unit - 1);
      assert_int_equal(a % (size & -size), 0);
      hl_pool_t *pool = hli_pool_of(h, b[i]);
      assert_int_equal((uintptr_t)pool, base);   /* a span's header is at its start */
      assert_int_equal(pool->szidx, idx);
      assert_true(a >= base + hli_span_start(&geo, size) && a + size <= base + unit);
      assert_int_equal(hli_tag_pool(hli_tag_get(a + size - 1)), base);
      memset(b[i], (int)i, request);
    }
    /* blocks are handed out a span at a time */
    for (size_t i = 0; i < n; i++)
      assert_ptr_equal(hli_pool_of(h, b[i]), hli_pool_of(h, b[i / cap * cap]));
    assert_ptr_not_equal(hli_pool_of(h, b[0]), hli_pool_of(h, b[cap]));
    validate();
    hl_alloc_stats_t s = stats();
    assert_int_equal(s.classes[idx].blocks_in_use, n);
    assert_int_equal(s.classes[idx].pools, 3);
    assert_int_equal(s.classes[idx].free_blocks, 3 * cap - n);
    for (size_t i = 0; i < n; i++) {
      for (size_t k = 0; k < request; k += 512) assert_int_equal(b[i][k], (unsigned char)i);
      hl_alloc_free(b[i]);
    }
    validate();
    s = stats();
    assert_int_equal(s.blocks_in_use, 0);
    unsigned held = 0;
    for (unsigned k = 1; k < geo.nkinds; k++) held += h->sets[k].nempty;
    assert_int_equal(h->sets[geo.class_kind[idx]].nempty, 1);
    assert_int_equal(s.arenas_current, held);
    assert_int_equal(s.arenas_kept_empty, held);
    assert_int_equal(held, h->nheld);
    free(b);
  }
  hl_alloc_collect();
  assert_int_equal(stats().arenas_current, 0);
  /* aligned requests (the malloc library's posix_memalign): served by a
   * span class aligned to them when the larger of size and alignment is in
   * the spans' range, in a block less than twice that; refused (NULL: the
   * caller goes to glibc) otherwise */
  for (size_t align = 2 * geo.alignment; align <= 2 * geo.max_size; align *= 2) {
    size_t sizes[] = {1, align / 2 + 1, align, align + 1, 3 * align / 2, geo.max_size};
    for (size_t k = 0; k < HL_ARRAY_LEN(sizes); k++) {
      size_t n = sizes[k], m = n > align ? n : align;
      unsigned char *p = hli_pool_malloc_aligned(align, n);
      if (m <= geo.pool_max || (m > geo.max_size && !huge_on)) {
        assert_null(p);
        continue;
      }
      assert_non_null(p);
      assert_int_equal((uintptr_t)p % align, 0);
      assert_true(hl_pool_owns(p));
      size_t block = hl_pool_block_size(p);
      if (m > geo.max_size) {   /* a huge block (test_huge_aligned) */
        assert_true(block >= n);
        hl_alloc_free(p);
        continue;
      }
      assert_true(block >= m && block < 2 * m);
      assert_true(hli_pool_of(h, p)->szidx >= geo.span_first);
      memset(p, 0xa5, n);
      hl_alloc_free(p);
    }
  }
  validate();
  assert_int_equal(stats().blocks_in_use, 0);
  hl_alloc_collect();
}

static void test_bad_geometries(void **st) {
  (void)st;
  hl_geometry_t g;
  char err[256];
  struct { size_t a, t, p, ar; const char *msg; } bad[] = {
      {12, 240, 4096, 262144, "power of two"},
      {4, 256, 4096, 262144, "power of two"},
      {8, 100, 4096, 262144, "multiple of the alignment"},
      {8, 0, 4096, 262144, "multiple of the alignment"},
      {8, 256, 3000, 262144, "pool size"},
      {8, 256, 4096, 4096 * 3, "arena size"},
      {16, 512, 16384, 8192, "arena size"},
      {64, 4096, 4096, 262144, "header"},
      {8, 2048, 4096, 262144, "size classes"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(hl_geometry_init(&g, bad[i].a, bad[i].t, bad[i].p, bad[i].ar, err, sizeof err),
                     -EINVAL);
    if (!strstr(err, bad[i].msg)) fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].msg);
  }
  assert_int_equal(hl_geometry_init(&g, 8, 256, 4096, 262144, err, sizeof err), 0);
  assert_int_equal(g.nclasses, 32);
  assert_int_equal(g.pools_per_arena, 64);
}

/* One class through its states: used, full, used again, empty. */
static void test_pool_states(void **st) {
  (void)st;
  setup_alloc(0, HL_ARENA_RELEASE_MUNMAP);
  size_t size = geo.alignment * 3;
  unsigned idx = hl_size_class(&geo, size);
  const hl_pools_t *h = hli_alloc_pools();
  void *first = hl_alloc_malloc(size);
  hl_pool_t *pool = hli_pool_of(h, first);
  assert_ptr_equal(h->usedpools[idx], pool);
  assert_int_equal(pool->ref, 1);
  /* obmalloc's 48-byte header, rounded to the alignment */
  assert_int_equal(geo.pool_overhead, (48 + geo.alignment - 1) & ~(geo.alignment - 1));
  uintptr_t base = hl_pool_base(&geo, (uintptr_t)first);
  size_t bsize = hl_class_size(&geo, idx), off = (uintptr_t)pool - base;
  /* the header at the pool's colour offset (0 uncoloured), the first block
   * right after it */
  assert_int_equal(off, hl_pool_colour_offset(&geo, base));
  assert_true(off % 64 == 0 && off + geo.pool_overhead + geo.alignment <= hl_os_page_size());
  assert_ptr_equal(first, (char *)pool + geo.pool_overhead);
  unsigned cap = (unsigned)pool_blocks(base, size);
  assert_int_equal(cap, off / bsize + (geo.pool_size - off - geo.pool_overhead) / bsize);
  assert_int_equal(pool->maxnextoffset, geo.pool_size - bsize);
  void **blocks = calloc(cap, sizeof *blocks), **extra = calloc(cap + 1, sizeof *extra);
  blocks[0] = first;
  unsigned below = 0;
  for (unsigned i = 1; i < cap; i++) {
    blocks[i] = hl_alloc_malloc(size);
    char *b = blocks[i];
    assert_ptr_equal(hli_pool_of(h, b), pool);   /* same pool until full */
    /* the blocks below the header first, in address order and clear of it;
     * then those after the first, virgin blocks cut in address order */
    if ((uintptr_t)b < (uintptr_t)pool) {
      assert_int_equal(i, ++below);
      assert_ptr_equal(b, (char *)base + (i - 1) * bsize);
      assert_true(b + bsize <= (char *)pool);
    } else {
      assert_ptr_equal(b, (char *)first + (i - below) * bsize);
      assert_true(b + bsize <= (char *)base + geo.pool_size);
    }
  }
  assert_int_equal(below, off / bsize);
  validate();
  assert_null(pool->freeblock);                  /* full: on no list */
  assert_null(h->usedpools[idx]);
  void *other = hl_alloc_malloc(size);           /* a second pool */
  hl_pool_t *second = hli_pool_of(h, other);
  assert_ptr_not_equal(second, pool);
  assert_ptr_equal(h->usedpools[idx], second);
  hl_alloc_free(blocks[5]);                      /* full -> used */
  validate();
  if (cfg.pool_requeue == HL_POOL_REQUEUE_FRONT) {
    /* at the front (obmalloc): it serves next, its last freed block first */
    assert_ptr_equal(h->usedpools[idx], pool);
    assert_ptr_equal(hl_alloc_malloc(size), blocks[5]);
  } else {
    /* at the back: the second pool serves first */
    assert_ptr_equal(h->usedpools[idx], second);
    assert_ptr_equal(h->usedtail[idx], pool);
    assert_ptr_equal(second->nextpool, pool);
    unsigned taken = 0;
    for (void *b; (b = hl_alloc_malloc(size)) != blocks[5]; taken++) {
      assert_ptr_equal(hli_pool_of(h, b), second);   /* until it is full */
      assert_true(taken <= cap);   /* a pool holds cap blocks, give or take one */
      extra[taken] = b;
    }
    assert_int_equal(second->ref, taken + 1);
    assert_null(second->freeblock);
    validate();
    assert_null(h->usedpools[idx]);   /* both full */
    for (unsigned i = 0; i < taken; i++) hl_alloc_free(extra[i]);
  }
  for (unsigned i = 0; i < cap; i++) hl_alloc_free(blocks[i]);
  validate();
  assert_int_equal(pool->ref, 0);                /* empty: back to the arena */
  assert_ptr_equal(pool->arena->freepools, pool);
  hl_alloc_free(other);
  validate();
  free(blocks);
  free(extra);
  /* keep = 0: the empty arena went back to the OS */
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.arenas_current, 0);
  assert_int_equal(s.arenas_reclaimed, 1);
  assert_int_equal(s.blocks_in_use, 0);
}


/* pool-retire=keep: a class's only pool stays when it empties, serves the
 * next allocation with no pool set up, and counts as a free pool; a class
 * with two pools gives the emptied one back; a trim (hl_alloc_collect)
 * gives the kept one back too. */
static void test_pool_retire_keep(void **st) {
  (void)st;
  char err[256];
  hl_alloc_reset();
  hl_config_t c = cfg;
  c.arena_keep_kib = 0;
  c.arena_decay_ms = 0;
  c.pool_retire = HL_POOL_RETIRE_KEEP;
  if (hl_alloc_init(&c, err, sizeof err) != 0) fail_msg("init: %s", err);
  size_t size = geo.alignment * 3;
  unsigned idx = hl_size_class(&geo, size);
  const hl_pools_t *h = hli_alloc_pools();
  void *first = hl_alloc_malloc(size);
  hl_pool_t *pool = hli_pool_of(h, first);
  hl_alloc_free(first);
  validate();
  assert_ptr_equal(h->usedpools[idx], pool);       /* kept, empty */
  assert_int_equal(pool->ref, 0);
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.blocks_in_use, 0);
  assert_int_equal(s.pools_used, 0);
  assert_true(s.pools_free >= 1);
  assert_int_equal(s.arenas_current, 1);           /* its arena stays */
  for (int i = 0; i < 100; i++) {                  /* in turn: the same pool */
    void *p = hl_alloc_malloc(size);
    assert_ptr_equal(hli_pool_of(h, p), pool);
    assert_int_equal(pool->ref, 1);
    hl_alloc_free(p);
  }
  validate();
  /* two pools of the class: the one that empties while the other is there
   * goes back to its arena */
  unsigned cap = (unsigned)pool_blocks(hl_pool_base(&geo, (uintptr_t)pool), size);
  void **blocks = calloc(cap, sizeof *blocks);
  for (unsigned i = 0; i < cap; i++) blocks[i] = hl_alloc_malloc(size);
  void *other = hl_alloc_malloc(size);
  hl_pool_t *second = hli_pool_of(h, other);
  assert_ptr_not_equal(second, pool);
  for (unsigned i = 0; i < cap; i++) {
    assert_ptr_equal(hli_pool_of(h, blocks[i]), pool);
    hl_alloc_free(blocks[i]);
  }
  validate();
  assert_int_equal(pool->ref, 0);
  assert_ptr_equal(pool->arena->freepools, pool);  /* not kept: second is there */
  assert_ptr_equal(h->usedpools[idx], second);
  hl_alloc_free(other);                            /* second, alone: kept */
  validate();
  assert_ptr_equal(h->usedpools[idx], second);
  assert_int_equal(second->ref, 0);
  free(blocks);
  hl_alloc_collect();                              /* the trim gives it back */
  validate();
  assert_null(h->usedpools[idx]);
  s = stats();
  assert_int_equal(s.arenas_current, 0);           /* keep = 0: the arena went too */
  assert_int_equal(s.blocks_in_use, 0);
  hl_alloc_reset();
}

/* Fill several arenas, free in a pattern, check the order after each step. */
static void test_arena_order_and_release(void **st) {
  (void)st;
  setup_alloc(0, HL_ARENA_RELEASE_MUNMAP);
  const hl_pools_t *h = hli_alloc_pools();
  size_t size = geo.pool_max;      /* fewest blocks per pool: pools fill fast */
  size_t narenas = 4, npools = narenas * geo.pools_per_arena;
  size_t n = narenas * arena_blocks(size);
  void **b = calloc(n, sizeof *b);
  for (size_t i = 0; i < n; i++) assert_non_null(b[i] = hl_alloc_malloc(size));
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.arenas_current, narenas);
  assert_null(h->sets[0].usable_arenas);                 /* every arena full */
  validate();
  /* Free whole pools with a stride, so arenas end up with different counts. */
  hl_rand_t r;
  hl_rand_seed(&r, 3);
  /* a pool fills before the next one is taken, so its blocks are a run of b */
  size_t start = 0;
  for (size_t p = 0; p < npools; p++) {
    size_t end = start;
    while (end < n && hli_pool_of(h, b[end]) == hli_pool_of(h, b[start])) end++;
    assert_int_equal(end - start, pool_blocks((uintptr_t)b[start], size));
    if (hl_rand_below(&r, 3) != 0) {
      for (size_t k = start; k < end; k++) {
        hl_alloc_free(b[k]);
        b[k] = NULL;
      }
      validate();
    }
    start = end;
  }
  assert_int_equal(start, n);
  /* allocations go to the arena with the fewest free pools */
  hl_arena_t *head = h->sets[0].usable_arenas;
  assert_non_null(head);
  void *q = hl_alloc_malloc(size);
  hl_pool_t *qp = hli_pool_of(h, q);
  assert_ptr_equal(qp->arena, head);
  hl_alloc_free(q);
  for (size_t i = 0; i < n; i++) {
    hl_alloc_free(b[i]);
    if (i % 97 == 0) validate();
  }
  validate();
  s = stats();
  assert_int_equal(s.arenas_current, 0);
  assert_int_equal(s.arenas_reclaimed, s.arenas_allocated);
  assert_int_equal(s.arenas_highwater, narenas);
  free(b);
}

static void test_hysteresis_keeps_then_collect_releases(void **st) {
  (void)st;
  size_t keep_kib = 2 * geo.arena_size / 1024;
  setup_alloc(keep_kib, HL_ARENA_RELEASE_MUNMAP);
  size_t size = geo.pool_max, n = 3 * arena_blocks(size);
  void **b = calloc(n, sizeof *b);
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < n; i++) b[i] = hl_alloc_malloc(size);
    for (size_t i = n; i-- > 0;) hl_alloc_free(b[i]);
    validate();
    hl_alloc_stats_t s = stats();
    assert_int_equal(s.arenas_kept_empty, 2);    /* two kept, the third released */
    assert_int_equal(s.arenas_current, 2);
  }
  hl_alloc_stats_t s = stats();
  /* rounds 2 and 3 reused the kept arenas: one new mapping per round, not three */
  assert_int_equal(s.arenas_allocated, 3 + 1 + 1);
  hl_alloc_collect();
  validate();
  s = stats();
  assert_int_equal(s.arenas_current, 0);
  assert_int_equal(s.arenas_kept_empty, 0);
  free(b);
}

/* Beyond the fixed keep, empty arenas stay while younger than the decay and
 * go at the first arena event after it. Sleeps are one-sided (only longer
 * than the decay, never racing it), so the test cannot flake on a slow
 * machine: the hour-long decay cannot pass during the test. */
static void decay_round(uint64_t decay_ms, bool wait) {
  setup_alloc_decay(0, HL_ARENA_RELEASE_MUNMAP, decay_ms);
  size_t size = geo.pool_max, n = 3 * arena_blocks(size);
  void **b = calloc(n, sizeof *b);
  for (size_t i = 0; i < n; i++) assert_non_null(b[i] = hl_alloc_malloc(size));
  for (size_t i = n; i-- > 0;) hl_alloc_free(b[i]);
  validate();
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.arenas_kept_empty, 3);     /* young: all kept */
  if (wait) {
    struct timespec ts = {0, (long)(3 * decay_ms * 1000000)};
    nanosleep(&ts, NULL);
  }
  /* an arena event: a pool for a class that has none */
  void *q = hl_alloc_malloc(1);
  validate();
  s = stats();
  if (wait) {
    assert_int_equal(s.arenas_reclaimed, 3);    /* old: gone, a new one serves q */
    assert_int_equal(s.arenas_current, 1);
  } else {
    assert_int_equal(s.arenas_reclaimed, 0);    /* q reuses an arena kept */
    assert_int_equal(s.arenas_current, 3);
  }
  hl_alloc_free(q);
  hl_alloc_collect();
  assert_int_equal(stats().arenas_current, 0);
  free(b);
}

static void test_decay_keeps_young_arenas_and_releases_old(void **st) {
  (void)st;
  decay_round(3600 * 1000, false);
  decay_round(20, true);
}

/* Arenas whose decay has run out go at the next call of any kind, not only
 * at the pools' own arena events: a large request (the raw layer), the free
 * of a raw block, a realloc of one. Each round frees three arenas' worth,
 * sleeps past the decay (one-sided, as above) and makes one such call,
 * which must find nothing of the pools' to do but the purge. */
static void *raw_call(int how, void *keep) {
  size_t big = geo.max_size + 1;
  switch (how) {
  case 0: return hl_alloc_malloc(huge_on ? 0 : 100000);    /* large (or 0-byte) malloc */
  case 1: hl_alloc_free(keep); return NULL;                /* free of a raw block */
  default: return hl_alloc_realloc(keep, 2 * big);         /* realloc of a raw block */
  }
}

static void test_decay_runs_at_raw_requests(void **st) {
  (void)st;
  const uint64_t decay_ms = 20;
  for (int how = 0; how < 3; how++) {
    setup_alloc_decay(0, cfg.arena_release, decay_ms);
    /* a raw block: above the classes, or with huge blocks 0 bytes */
    void *keep = hl_alloc_malloc(huge_on ? 0 : geo.max_size + 1);
    assert_false(hl_pool_owns(keep));
    size_t size = geo.pool_max, n = 3 * arena_blocks(size);
    void **b = calloc(n, sizeof *b);
    for (size_t i = 0; i < n; i++) assert_non_null(b[i] = hl_alloc_malloc(size));
    for (size_t i = n; i-- > 0;) hl_alloc_free(b[i]);
    hl_alloc_stats_t s = stats();
    assert_int_equal(s.arenas_kept_empty, 3);   /* young: freed within the decay */
    assert_true(hli_alloc_pools()->decay_pending);
    struct timespec ts = {0, (long)(3 * decay_ms * 1000000)};
    nanosleep(&ts, NULL);
    void *r = raw_call(how, keep);
    validate();
    s = stats();
    assert_int_equal(s.arenas_current, 0);      /* all three went back */
    assert_int_equal(s.arenas_reclaimed, 3);
    assert_false(hli_alloc_pools()->decay_pending);   /* nothing left to poll */
    if (how == 0) hl_alloc_free(keep);
    hl_alloc_free(r);   /* NULL after the free */
    free(b);
  }
}

/* A small free that empties a pool (a slow path) releases the arenas past
 * their decay too, though no arena becomes empty: a pool of each of two
 * classes in a fourth arena, the three full arenas freed, and after the
 * decay one of the two pools emptied. */
static void test_decay_runs_when_a_pool_empties(void **st) {
  (void)st;
  const uint64_t decay_ms = 20;
  setup_alloc_decay(0, cfg.arena_release, decay_ms);
  size_t size = geo.pool_max, n = 3 * arena_blocks(size);
  void **b = calloc(n, sizeof *b);
  for (size_t i = 0; i < n; i++) assert_non_null(b[i] = hl_alloc_malloc(size));
  void *t1 = hl_alloc_malloc(geo.alignment), *t2 = hl_alloc_malloc(size);
  const hl_pools_t *h = hli_alloc_pools();
  hl_arena_t *fourth = hli_pool_of(h, t1)->arena;
  assert_ptr_equal(hli_pool_of(h, t2)->arena, fourth);
  assert_ptr_not_equal(hli_pool_of(h, t2), hli_pool_of(h, t1));
  for (size_t i = n; i-- > 0;) hl_alloc_free(b[i]);
  assert_int_equal(stats().arenas_kept_empty, 3);
  struct timespec ts = {0, (long)(3 * decay_ms * 1000000)};
  nanosleep(&ts, NULL);
  hl_alloc_free(t2);   /* its pool empties; t1's keeps the arena */
  validate();
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.arenas_reclaimed, 3);
  assert_int_equal(s.arenas_current, 1);
  hl_alloc_free(t1);
  hl_alloc_collect();
  free(b);
}

/* Bytes of address space the process has (VmSize). */
static size_t vm_bytes(void) {
  long pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  assert_non_null(f);
  assert_int_equal(fscanf(f, "%ld", &pages), 1);
  fclose(f);
  return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Out of address space (RLIMIT_AS, in a child): a large request that needs
 * the arenas kept by arena-keep-kib gets them back (release and retry)
 * instead of failing. 32 arenas' worth of blocks are freed and kept; the
 * limit leaves room for less than the request until they go. */
static void test_out_of_memory_releases_cached_arenas(void **st) {
  (void)st;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  skip();   /* the sanitizers' shadow memory does not live under RLIMIT_AS */
#endif
  size_t cached = 32 * geo.arena_size;
  setup_alloc_decay(2 * cached / 1024, cfg.arena_release, 0);
  size_t size = geo.pool_max, n = 32 * arena_blocks(size);
  void **b = calloc(n, sizeof *b);
  for (size_t i = 0; i < n; i++) assert_non_null(b[i] = hl_alloc_malloc(size));
  for (size_t i = n; i-- > 0;) hl_alloc_free(b[i]);
  free(b);
  assert_int_equal(stats().arenas_kept_empty, 32);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    size_t request = cached * 3 / 4;
    struct rlimit rl = {vm_bytes() + cached / 4, vm_bytes() + cached / 4};
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(3);
    char *p = hl_alloc_malloc(request);
    if (p == NULL) _exit(1);
    memset(p, 1, request);
    hl_alloc_stats_t s;
    hl_alloc_stats(&s);
    _exit(s.arenas_current == 0 && s.arenas_discarded == 0 ? 0 : 2);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);   /* 1: NULL; 2: arenas left */
  hl_alloc_collect();
}

static void test_madvise_release_reuses_the_range(void **st) {
  (void)st;
  setup_alloc(0, HL_ARENA_RELEASE_MADVISE);
  const hl_pools_t *h = hli_alloc_pools();
  char *p = hl_alloc_malloc(64);
  uintptr_t base = hli_pool_of(h, p)->arena->base;
  memset(p, 0x5a, 64);
  hl_alloc_free(p);
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.arenas_current, 0);
  assert_int_equal(s.arenas_discarded, 1);
  assert_true(hl_pool_owns((void *)base));       /* the range is still ours */
  char *q = hl_alloc_malloc(64);
  assert_int_equal(hli_pool_of(h, q)->arena->base, base);
  validate();
  hl_alloc_free(q);
}

static void test_foreign_and_raw_pointers(void **st) {
  (void)st;
  setup_alloc(4096, HL_ARENA_RELEASE_MUNMAP);
  int on_stack;
  char *libc = malloc(100);                      /* from the C library */
  assert_false(hl_pool_owns(libc));
  assert_false(hl_pool_owns(&on_stack));
  assert_false(hl_pool_owns(NULL));
  hl_alloc_free(libc);                           /* goes back to libc: ASan would object otherwise */
  void *zero1 = hl_alloc_malloc(0), *zero2 = hl_alloc_malloc(0);
  assert_non_null(zero1);
  assert_ptr_not_equal(zero1, zero2);
  assert_false(hl_pool_owns(zero1));
  char *big = hl_alloc_malloc(geo.max_size + 1);
  assert_true(hl_pool_owns(big) == huge_on);
  char *small = hl_alloc_malloc(geo.max_size);
  assert_true(hl_pool_owns(small));
  assert_true(hl_pool_owns(small + geo.max_size - 1));
  hl_alloc_free(zero1);
  hl_alloc_free(zero2);
  hl_alloc_free(big);
  hl_alloc_free(small);
  hl_alloc_free(NULL);
  char *foreign = malloc(10);
  strcpy(foreign, "foreign");
  foreign = hl_alloc_realloc(foreign, 4000);     /* a foreign block stays foreign */
  assert_string_equal(foreign, "foreign");
  assert_false(hl_pool_owns(foreign));
  free(foreign);
  hl_alloc_stats_t s = stats();
  assert_true(s.raw_requests >= (huge_on ? 2 : 3));
  assert_int_equal(s.blocks_in_use, 0);
}

static void test_realloc_rules(void **st) {
  (void)st;
  setup_alloc(4096, HL_ARENA_RELEASE_MUNMAP);
  size_t a = geo.alignment;
  char *p = hl_alloc_malloc(8 * a);
  memset(p, 'x', 8 * a);
  assert_ptr_equal(hl_alloc_realloc(p, 7 * a), p);     /* shrink < 25%: kept */
  char *q = hl_alloc_realloc(p, 2 * a);                /* shrink more: moved */
  assert_ptr_not_equal(q, p);
  assert_memory_equal(q, "xxxxxxxxxxxxxxxx", 2 * a < 16 ? 2 * a : 16);
  char *r = hl_alloc_realloc(q, geo.max_size);        /* grow within the pools */
  assert_true(hl_pool_owns(r));
  assert_int_equal(r[2 * a - 1], 'x');
  char *big = hl_alloc_realloc(r, geo.max_size * 4);  /* pools -> raw, or huge */
  assert_true(hl_pool_owns(big) == huge_on);
  assert_int_equal(big[0], 'x');
  assert_int_equal(big[2 * a - 1], 'x');
  char *back = hl_alloc_realloc(big, 3);               /* raw stays raw; huge goes back */
  assert_true(hl_pool_owns(back) == huge_on);
  assert_int_equal(back[0], 'x');
  hl_alloc_free(back);
  char *z = hl_alloc_realloc(NULL, 10);
  assert_true(hl_pool_owns(z));
  char *z0 = hl_alloc_realloc(z, 0);                   /* 0 bytes: a unique pointer */
  assert_non_null(z0);
  hl_alloc_free(z0);
  assert_null(hl_pool_calloc(SIZE_MAX / 2, 3));
  char *c = hl_pool_calloc(3, 5);
  for (int i = 0; i < 15; i++) assert_int_equal(c[i], 0);
  hl_alloc_free(c);
  assert_int_equal(stats().blocks_in_use, 0);
}

static void test_out_of_memory_falls_back_to_raw(void **st) {
  (void)st;
  setup_alloc(0, HL_ARENA_RELEASE_MUNMAP);
  hl_os_fail_nth_map(1);                 /* the next arena mapping fails */
  void *p = hl_alloc_malloc(32);
  assert_non_null(p);                    /* CPython's rule: fall back to the raw layer */
  assert_false(hl_pool_owns(p));
  hl_alloc_free(p);
  hl_os_fail_nth_map(0);
  void *q = hl_alloc_malloc(32);
  assert_true(hl_pool_owns(q));
  hl_alloc_free(q);
  validate();
}

/* ---- huge blocks (large=medium, huge.c) -------------------------------------- */

#define MIB ((size_t)1 << 20)
#define HUGE_GRAIN ((size_t)1 << HLI_RADIX_GRAIN_SHIFT)

/* A huge block of n bytes at alignment align (0: malloc's): ours from its
 * first byte to its last, its usable size at least n, and at most what the
 * cache's rules allow: a mapping that holds the block (a grain and the
 * offset more), or one taken from the cache whose tail beyond an eighth
 * more was given back. */
static void check_huge(const void *p, size_t n, size_t align) {
  assert_non_null(p);
  assert_true(hl_pool_owns(p));
  assert_true(hl_pool_owns((const char *)p + n - 1));
  size_t u = hl_pool_block_size(p), off = align > 64 ? align : 64;
  assert_true(u >= n && u < n + (n + off) / 4 + HUGE_GRAIN + 2 * off);
  assert_int_equal((uintptr_t)p % 64, 0);
}

/* A program that mallocs and frees 1 MiB in a loop maps once: every pair
 * after the first is a cache hit, with no mapping made (hl_os_maps) and
 * none given back (the bytes mapped stay). */
static void test_huge_loop_maps_once(void **st) {
  (void)st;
  if (!huge_on) skip();
  setup_alloc(0, HL_ARENA_RELEASE_MUNMAP);
  void *p = hl_alloc_malloc(MIB);
  check_huge(p, MIB, 0);
  memset(p, 1, MIB);
  hl_alloc_free(p);
  uint64_t maps = hl_os_maps(), mapped = hl_os_mapped_bytes();
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.huge_maps, 1);
  assert_int_equal(s.huge_cache_blocks, 1);
  for (int i = 0; i < 1000; i++) {
    char *q = hl_alloc_malloc(MIB);
    assert_ptr_equal(q, p);   /* the one cached mapping */
    q[i] = 2;
    hl_alloc_free(q);
  }
  assert_int_equal(hl_os_maps(), maps);
  assert_int_equal(hl_os_mapped_bytes(), mapped);
  s = stats();
  assert_int_equal(s.huge_maps, 1);
  assert_int_equal(s.huge_cache_hits, 1000);
  assert_int_equal(s.huge_blocks, 0);
  assert_int_equal(s.huge_cache_bytes, hl_pool_block_size(p) + 64);
  /* calloc from the cache is zeroed though the mapping is dirty */
  unsigned char *z = hl_pool_calloc(1, MIB);
  assert_ptr_equal(z, p);
  for (size_t i = 0; i < MIB; i++)
    if (z[i]) fail_msg("calloc from the cache: byte %zu is %d", i, z[i]);
  hl_alloc_free(z);
  /* a smaller request reuses the mapping when it needs at least half of
   * it, and gives back the tail beyond an eighth more than it needs */
  char *h = hl_alloc_malloc(MIB / 2 + HUGE_GRAIN);
  assert_ptr_equal(h, p);
  check_huge(h, MIB / 2 + HUGE_GRAIN, 0);
  hl_alloc_free(h);
  char *t = hl_alloc_malloc(100000);   /* less than half: a new mapping */
  assert_ptr_not_equal(t, p);
  check_huge(t, 100000, 0);
  hl_alloc_free(t);
  hl_alloc_collect();   /* empties the cache */
  s = stats();
  assert_int_equal(s.huge_cache_blocks, 0);
  assert_int_equal(s.huge_cache_bytes, 0);
  assert_false(hl_pool_owns(p));   /* its radix entries went with it */
}

/* The cache holds at most 64 mappings and 64 MiB (or a quarter of the huge
 * bytes in use, if more), oldest out first; a block above the byte bound is
 * never cached. */
static void test_huge_cache_bounds(void **st) {
  (void)st;
  if (!huge_on) skip();
  setup_alloc(0, HL_ARENA_RELEASE_MUNMAP);
  enum { N = 70 };
  void *b[N];
  for (int i = 0; i < N; i++) {
    size_t n = 100000 + (size_t)i * 16384;   /* 70 sizes, 7 MiB in all */
    check_huge(b[i] = hl_alloc_malloc(n), n, 0);
  }
  for (int i = 0; i < N; i++) hl_alloc_free(b[i]);
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.huge_cache_blocks, 64);
  assert_int_equal(s.huge_maps, N);
  for (int i = 0; i < N; i++) assert_true(hl_pool_owns(b[i]) == (i >= N - 64));   /* unmapped */
  /* the six oldest went back; a request of the last size is a hit */
  void *last = hl_alloc_malloc(100000 + (N - 1) * 16384);
  assert_ptr_equal(last, b[N - 1]);
  hl_alloc_free(last);
  hl_alloc_collect();
  void *big[5];
  for (int i = 0; i < 5; i++) check_huge(big[i] = hl_alloc_malloc(20 * MIB), 20 * MIB, 0);
  for (int i = 0; i < 5; i++) hl_alloc_free(big[i]);
  s = stats();
  assert_int_equal(s.huge_cache_blocks, 3);   /* 3 x 20 MiB: a fourth passes 64 MiB */
  assert_true(s.huge_cache_bytes <= 64 * MIB);
  hl_alloc_collect();
  /* with 1 GiB of huge blocks in use (address space only), the bound is a
   * quarter of what is in use: more than 64 MiB may wait in the cache */
  void *gig[50];
  for (int i = 0; i < 50; i++) check_huge(gig[i] = hl_alloc_malloc(20 * MIB), 20 * MIB, 0);
  for (int i = 0; i < 5; i++) hl_alloc_free(gig[i]);
  s = stats();
  assert_int_equal(s.huge_cache_blocks, 5);   /* 45 x 20 MiB in use: the bound is 225 MiB */
  for (int i = 5; i < 50; i++) hl_alloc_free(gig[i]);
  s = stats();
  /* as the blocks in use go, the bound falls to 64 MiB: three left */
  assert_int_equal(s.huge_cache_blocks, 3);
  hl_alloc_collect();
  void *over = hl_alloc_malloc(80 * MIB);     /* untouched: address space only */
  check_huge(over, 80 * MIB, 0);
  hl_alloc_free(over);
  s = stats();
  assert_int_equal(s.huge_cache_blocks, 0);
  assert_false(hl_pool_owns(over));
  hl_alloc_collect();
  assert_int_equal(stats().huge_cache_bytes, 0);
}

/* With arena-decay-ms, a cached mapping goes back once that old, at the
 * next call that polls the decay (here a 0-byte malloc, the raw layer's). */
static void test_huge_cache_decays(void **st) {
  (void)st;
  if (!huge_on) skip();
  const uint64_t decay_ms = 20;
  setup_alloc_decay(0, HL_ARENA_RELEASE_MUNMAP, decay_ms);
  void *p = hl_alloc_malloc(MIB);
  hl_alloc_free(p);
  assert_int_equal(stats().huge_cache_blocks, 1);
  struct timespec ts = {0, (long)(3 * decay_ms * 1000000)};
  nanosleep(&ts, NULL);
  void *r = hl_alloc_malloc(0);
  assert_int_equal(stats().huge_cache_blocks, 0);
  assert_false(hl_pool_owns(p));
  hl_alloc_free(r);
  /* within the decay, it stays */
  setup_alloc_decay(0, HL_ARENA_RELEASE_MUNMAP, 3600 * 1000);
  p = hl_alloc_malloc(MIB);
  hl_alloc_free(p);
  hl_alloc_free(hl_alloc_malloc(0));
  assert_int_equal(stats().huge_cache_blocks, 1);
  hl_alloc_collect();
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += 509) p[i] = (unsigned char)(seed + i / 509);
}
static void check_pattern(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += 509)
    if (p[i] != (unsigned char)(seed + i / 509)) fail_msg("byte %zu lost", i);
}

/* realloc: huge to huge by mremap (in place, or the pages moved when the
 * range after the mapping is taken), the prefix kept; span to huge and
 * huge to span move. */
static void test_huge_realloc(void **st) {
  (void)st;
  if (!huge_on) skip();
  setup_alloc(0, HL_ARENA_RELEASE_MUNMAP);
  unsigned char *p = hl_alloc_malloc(geo.max_size);   /* the largest span class */
  fill_pattern(p, geo.max_size, 1);
  unsigned char *q = hl_alloc_realloc(p, geo.max_size + 1);
  check_huge(q, geo.max_size + 1, 0);
  check_pattern(q, geo.max_size, 1);
  fill_pattern(q, geo.max_size + 1, 2);
  size_t n = geo.max_size + 1;
  uint64_t maps = stats().huge_maps;
  unsigned seed = 2;
  for (size_t to = 2 * MIB; to <= 16 * MIB; to *= 2) {   /* growth, no new huge mapping */
    q = hl_alloc_realloc(q, to);
    check_huge(q, to, 0);
    check_pattern(q, n, seed);
    fill_pattern(q, to, 3);
    seed = 3;
    n = to;
  }
  assert_int_equal(stats().huge_maps, maps);
  /* the range after it taken: the pages move to a new range */
  uintptr_t end = (uintptr_t)q - 64 + hl_pool_block_size(q) + 64;
  void *wall = mmap((void *)end, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                    -1, 0);
  /* EEXIST: something holds it already, which stops the growth as well */
  if (wall == MAP_FAILED && errno != EEXIST) fail_msg("cannot map the page after the block");
  unsigned char *old = q;
  q = hl_alloc_realloc(q, 2 * n);
  check_huge(q, 2 * n, 0);
  assert_ptr_not_equal(q, old);
  assert_false(hl_pool_owns(old));   /* the old range is no longer ours */
  check_pattern(q, n, 3);
  if (wall != MAP_FAILED) munmap(wall, 4096);
  n *= 2;
  /* shrink in place: the tail goes back */
  uint64_t mapped = hl_os_mapped_bytes();
  unsigned char *r = hl_alloc_realloc(q, MIB);
  assert_ptr_equal(r, q);
  check_huge(r, MIB, 0);
  check_pattern(r, MIB, 3);
  assert_false(hl_pool_owns(r + 2 * MIB));
  assert_true(hl_os_mapped_bytes() < mapped);
  assert_int_equal(stats().huge_bytes, hl_pool_block_size(r) + 64);
  /* back into a span class */
  unsigned char *s = hl_alloc_realloc(r, 1000);
  assert_true(hl_pool_owns(s));
  assert_true(hl_pool_block_size(s) < 2000);
  check_pattern(s, 1000, 3);
  hl_alloc_free(s);
  hl_alloc_stats_t st2 = stats();
  assert_int_equal(st2.huge_blocks, 0);
  assert_int_equal(st2.huge_bytes, 0);
  validate();
  hl_alloc_collect();
}

/* posix_memalign's path: every power of two from 16 B to 2 MiB, at sizes
 * around it; served by a pool or span class or a huge block aligned to it
 * wherever the larger of size and alignment is above the pools' classes
 * (the malloc library sends the rest to glibc). */
static void test_huge_aligned(void **st) {
  (void)st;
  if (!huge_on) skip();
  setup_alloc(0, HL_ARENA_RELEASE_MUNMAP);
  for (size_t align = 16; align <= 2 * MIB; align *= 2) {
    size_t sizes[] = {1, align / 2 + 1, align, align + 1, 100000, 3 * MIB};
    for (size_t k = 0; k < HL_ARRAY_LEN(sizes); k++) {
      size_t n = sizes[k], m = n > align ? n : align;
      unsigned char *p = hli_pool_malloc_aligned(align, n);
      if (m <= geo.pool_max) {
        assert_null(p);
        continue;
      }
      assert_non_null(p);
      assert_int_equal((uintptr_t)p % align, 0);
      assert_true(hl_pool_owns(p));
      assert_true(hl_pool_block_size(p) >= n);
      if (m > geo.max_size) check_huge(p, n, align);
      fill_pattern(p, n, (unsigned)k);
      /* a huge one grows and keeps its bytes */
      if (m > geo.max_size) {
        p = hl_alloc_realloc(p, n + MIB);
        check_pattern(p, n, (unsigned)k);
      }
      hl_alloc_free(p);
    }
  }
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.huge_blocks, 0);
  assert_int_equal(s.blocks_in_use, 0);
  hl_alloc_collect();
}

/* A second free of a huge block whose mapping is cached is caught. */
static void test_huge_double_free_dies(void **st) {
  (void)st;
  if (!huge_on) skip();
  setup_alloc(0, HL_ARENA_RELEASE_MUNMAP);
  void *p = hl_alloc_malloc(MIB);
  hl_alloc_free(p);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGABRT, SIG_DFL);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 2);
    hl_alloc_free(p);
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  hl_alloc_collect();
}

/* ---- the reference model --------------------------------------------------- */
/* block: the size of the block the model expects the pointer to have (the
 * class of the request, or of the earlier request when realloc kept it). */
typedef struct live { unsigned char *p; size_t n, block; uint32_t id; bool huge; } live_t;

static size_t class_bytes(size_t n) {
  return n >= 1 && n <= geo.max_size ? hl_class_size(&geo, hl_size_class(&geo, n)) : 0;
}

/* Every byte of the first 128 and one in 64 after them: a span block of
 * tens of KiB costs a few hundred writes, and two blocks that overlap, or
 * a block that runs into the next one's head, still disagree. */
static bool marked(size_t i) { return i < 128 || i % 64 == 0; }
static void fill(const live_t *l) {
  for (size_t i = 0; i < l->n; i++)
    if (marked(i)) l->p[i] = (unsigned char)(l->id * 31 + i);
}
static void check(const live_t *l) {
  for (size_t i = 0; i < l->n; i++)
    if (marked(i) && l->p[i] != (unsigned char)(l->id * 31 + i))
      fail_msg("block %u (%zu bytes) corrupted at byte %zu", l->id, l->n, i);
}

static void test_random_against_model(void **st) {
  (void)st;
  setup_alloc(geo.arena_size / 1024, HL_ARENA_RELEASE_MUNMAP);
  enum { SLOTS = 4096 };
  live_t *live = calloc(SLOTS, sizeof *live);
  hl_rand_t r;
  hl_rand_seed(&r, 20261121);
  uint32_t next_id = 1;
  for (uint64_t op = 0; op < model_ops; op++) {
    live_t *l = &live[hl_rand_below(&r, SLOTS)];
    /* sizes: mostly those of the pools (small objects, and the medium
     * classes of a pool), an eighth up to the largest class (spans, with
     * large=medium), some 0 and some above it */
    unsigned band = (unsigned)hl_rand_below(&r, 16);
    size_t n = band == 0  ? hl_rand_below(&r, 4 * geo.max_size)
               : band < 3 ? hl_rand_below(&r, geo.max_size + 1)
                          : hl_rand_below(&r, geo.pool_max + 1);
    unsigned what = (unsigned)hl_rand_below(&r, 4);
    if (l->p && what == 0) {                 /* realloc keeps the common prefix */
      check(l);
      unsigned char *q = hl_alloc_realloc(l->p, n);
      assert_non_null(q);
      if (q != l->p) {   /* raw stays raw; the others go where n says */
        bool raw = !l->block && !l->huge;
        l->block = raw ? 0 : class_bytes(n);
        l->huge = !raw && huge_on && n > geo.max_size;
      }
      size_t keep = n < l->n ? n : l->n;
      l->p = q;
      l->n = keep;
      check(l);                              /* the prefix moved intact */
      l->n = n;
      fill(l);
    } else if (l->p) {
      check(l);
      hl_alloc_free(l->p);
      l->p = NULL;
    } else {
      l->p = hl_alloc_malloc(n);
      assert_non_null(l->p);
      l->n = n;
      l->block = class_bytes(n);
      l->huge = huge_on && n > geo.max_size;
      l->id = next_id++;
      fill(l);
    }
    if (op % 20000 == 0) {
      validate();
      /* the statistics agree with the model */
      uint64_t blocks = 0, bytes = 0, huge = 0;
      for (int i = 0; i < SLOTS; i++)
        if (live[i].p && live[i].huge) {
          assert_true(hl_pool_owns(live[i].p));
          assert_true(hl_pool_block_size(live[i].p) >= live[i].n);
          huge++;
        } else if (live[i].p && live[i].block) {
          assert_true(hl_pool_owns(live[i].p));
          blocks++;
          bytes += live[i].block;
        } else if (live[i].p) {
          assert_false(hl_pool_owns(live[i].p));   /* 0 bytes or above the threshold */
        }
      hl_alloc_stats_t s = stats();
      assert_int_equal(s.blocks_in_use, blocks);
      assert_int_equal(s.bytes_in_use, bytes);
      assert_int_equal(s.huge_blocks, huge);
      uint64_t cls_blocks = 0;
      for (unsigned i = 0; i < s.nclasses; i++) cls_blocks += s.classes[i].blocks_in_use;
      assert_int_equal(cls_blocks, blocks);
    }
  }
  for (int i = 0; i < SLOTS; i++)
    if (live[i].p) {
      check(&live[i]);
      hl_alloc_free(live[i].p);
    }
  validate();
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.blocks_in_use, 0);
  /* at most the one kept, and one held per span kind */
  assert_true(s.arenas_current <= 1 + hli_alloc_pools()->nheld);
  assert_true(hli_alloc_pools()->nheld < geo.nkinds);
  assert_int_equal(s.huge_blocks, 0);
  assert_true(s.huge_maps == 0 || huge_on);
  hl_alloc_collect();
  assert_int_equal(stats().huge_cache_blocks, 0);
  free(live);
}

int main(int argc, char **argv) {
  char err[512];
  if (argc > 1) model_ops = strtoull(argv[1], NULL, 10);
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0 ||
      hl_alloc_check_config(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "test_pool: %s\n", err);
    return 2;
  }
  cfg.alloc = HL_ALLOC_POOL;
  cfg.threads = 1;
  if (hl_alloc_init(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "test_pool: %s\n", err);
    return 2;
  }
  geo = hli_alloc_pools()->g;
  huge_on = geo.max_size > geo.threshold;
  fprintf(stderr, "test_pool: geometry %zu,%zu,%zu,%zu, largest block %zu, %u pool colours\n",
          geo.alignment, geo.threshold, geo.pool_size, geo.arena_size, geo.max_size,
          geo.colour_mask + 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_size_classes),
      cmocka_unit_test(test_bad_geometries),
      cmocka_unit_test(test_spans),
      cmocka_unit_test(test_pool_states),
      cmocka_unit_test(test_pool_retire_keep),
      cmocka_unit_test(test_arena_order_and_release),
      cmocka_unit_test(test_hysteresis_keeps_then_collect_releases),
      cmocka_unit_test(test_decay_keeps_young_arenas_and_releases_old),
      cmocka_unit_test(test_decay_runs_at_raw_requests),
      cmocka_unit_test(test_decay_runs_when_a_pool_empties),
      cmocka_unit_test(test_out_of_memory_releases_cached_arenas),
      cmocka_unit_test(test_madvise_release_reuses_the_range),
      cmocka_unit_test(test_foreign_and_raw_pointers),
      cmocka_unit_test(test_realloc_rules),
      cmocka_unit_test(test_out_of_memory_falls_back_to_raw),
      cmocka_unit_test(test_huge_loop_maps_once),
      cmocka_unit_test(test_huge_cache_bounds),
      cmocka_unit_test(test_huge_cache_decays),
      cmocka_unit_test(test_huge_realloc),
      cmocka_unit_test(test_huge_aligned),
      cmocka_unit_test(test_huge_double_free_dies),
      cmocka_unit_test(test_random_against_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
