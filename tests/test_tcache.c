/* alloc/: the pool allocator with many threads, once per tcache mode
 * (HEAPLAB_TCACHE=none|magazine|heap|heap-magazine, set by CTest), under
 * TSan and ASan in scripts/test.
 *
 *   - a randomised run against a reference model: each thread keeps its own
 *     live set, and the threads trade blocks through a shared exchange
 *     array, so that blocks are freed and reallocated by threads that did
 *     not allocate them; every live block keeps its contents (two live
 *     blocks that overlapped would overwrite each other's pattern), and at
 *     the end the statistics agree with the model: nothing in use, and
 *     after hl_alloc_collect() no arena left;
 *   - a thread that exits with a full cache: its blocks come back to the
 *     pools and its arenas go back to the OS;
 *   - blocks of a thread that has exited, freed later by another thread
 *     (with tcache=heap: remote frees to an abandoned heap), come back too;
 *   - tcache=heap: a thread's remote frees wait in its batch for their
 *     owner and are pushed sixteen at a time, at collect and at exit;
 *   - tcache=heap-magazine: a block freed into a full pool is the next one
 *     handed out, the lists stay within the budget, and collect and exit
 *     empty them.
 * usage: test_tcache [OPS-PER-THREAD]
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_alloc.h"
#include "hl_atomic.h"

extern char **environ;

#define NTHREADS 8
#define SLOTS 512            /* per thread */
#define EXCHANGE 256         /* shared */

static hl_config_t cfg;
static uint64_t ops_per_thread = 40000;
static size_t threshold;
/* the bulk of the sizes drawn: up to the pools' medium classes (2 KiB in
 * `modern`), beyond which large=medium's spans take blocks of tens of KiB */
static size_t common_top;

/* A block's contents: its size and a pattern derived from a per-block
 * stamp, written at allocation and checked before free. */
typedef struct {
  unsigned char *p;
  uint32_t size;
  uint32_t stamp;
} blk_t;

/* Every byte of the first 128 and one in 64 after them: two live blocks
 * that overlap still disagree, and a span block of tens of KiB costs a few
 * hundred writes rather than its size. */
static bool marked(uint32_t i) { return i < 128 || i % 64 == 0; }
static void fill(blk_t *b) {
  for (uint32_t i = 0; i < b->size; i++)
    if (marked(i)) b->p[i] = (unsigned char)(b->stamp * 131u + i);
}
static void check(const blk_t *b) {
  for (uint32_t i = 0; i < b->size; i++)
    if (marked(i) && b->p[i] != (unsigned char)(b->stamp * 131u + i))
      fail_msg("block %p (size %u) lost its contents at byte %u", (void *)b->p, b->size, i);
}

static blk_t *exchange[EXCHANGE];     /* shared: swapped with atomic exchange */

static uint32_t draw_size(hl_rand_t *r) {
  /* mostly the pools' range, sometimes above it (the raw layer, or with
   * large=medium huge blocks); one in eight over the whole range with
   * large=medium's spans */
  uint32_t top = (uint32_t)threshold + (uint32_t)threshold / 4;
  if (threshold > common_top && hl_rand_below(r, 8) != 0) top = (uint32_t)common_top;
  return 1 + (uint32_t)hl_rand_below(r, top);
}

static blk_t *blk_new(hl_rand_t *r, uint32_t stamp) {
  blk_t *b = malloc(sizeof *b);
  if (!b) return NULL;
  b->size = draw_size(r);
  b->stamp = stamp;
  b->p = hl_alloc_malloc(b->size);
  if (!b->p) {
    free(b);
    return NULL;
  }
  fill(b);
  return b;
}

static void blk_free(blk_t *b) {
  if (!b) return;
  check(b);
  hl_alloc_free(b->p);
  free(b);
}

typedef struct {
  unsigned id;
  int failed;
} worker_arg_t;

static void *model_worker(void *arg) {
  worker_arg_t *a = arg;
  hl_rand_t r;
  hl_rand_seed(&r, 1000 + a->id);
  blk_t *live[SLOTS] = {0};
  uint32_t stamp = a->id << 24;
  for (uint64_t op = 0; op < ops_per_thread; op++) {
    unsigned s = (unsigned)hl_rand_below(&r, SLOTS);
    switch (hl_rand_below(&r, 8)) {
    case 0: case 1: case 2: case 3:   /* replace */
      blk_free(live[s]);
      live[s] = blk_new(&r, ++stamp);
      if (!live[s]) a->failed = 1;
      break;
    case 4: {                          /* realloc, contents kept up to the smaller size */
      blk_t *b = live[s];
      if (!b) break;
      check(b);
      uint32_t n = draw_size(&r);
      unsigned char *q = hl_alloc_realloc(b->p, n);
      if (!q) {
        a->failed = 1;
        break;
      }
      b->p = q;
      uint32_t keep = n < b->size ? n : b->size;
      blk_t tmp = *b;
      tmp.size = keep;
      check(&tmp);
      b->size = n;
      b->stamp = ++stamp;
      fill(b);
      break;
    }
    case 5: case 6: {                  /* trade with another thread */
      unsigned e = (unsigned)hl_rand_below(&r, EXCHANGE);
      live[s] = hl_atomic_xchg_ptr((void **)&exchange[e], live[s]);
      break;
    }
    default:                           /* free */
      blk_free(live[s]);
      live[s] = NULL;
      break;
    }
  }
  for (unsigned s = 0; s < SLOTS; s++) blk_free(live[s]);
  return NULL;
}

/* tcache=heap and heap-magazine: each thread owns a heap */
static bool heaps(void) {
  return cfg.tcache == HL_TCACHE_HEAP || cfg.tcache == HL_TCACHE_HEAP_MAGAZINE;
}

static hl_alloc_stats_t stats(void) {
  hl_alloc_stats_t s;
  hl_alloc_stats(&s);
  return s;
}

/* Every thread has exited: nothing may be in use, and collect gives every
 * arena back. */
static void expect_everything_back(void) {
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.tcache_blocks, 0);
  assert_int_equal(s.blocks_in_use, 0);   /* tcache=heap: remote-pending blocks are free */
  /* large=medium: the sizes drawn pass the largest class by a quarter, so
   * huge blocks (alloc/huge.c) were traded, realloc'd and freed across
   * threads too; none is left, and collect empties their cache */
  assert_int_equal(s.huge_blocks, 0);
  hl_alloc_collect();
  s = stats();
  assert_int_equal(s.huge_cache_blocks, 0);
  assert_int_equal(s.blocks_in_use, 0);
  assert_int_equal(s.remote_pending, 0);
  assert_int_equal(s.arenas_current, 0);
  assert_int_equal(s.heaps_abandoned, 0);
}

static void test_threads_against_model(void **st) {
  (void)st;
  pthread_t th[NTHREADS];
  worker_arg_t args[NTHREADS];
  for (unsigned i = 0; i < NTHREADS; i++) {
    args[i] = (worker_arg_t){.id = i};
    assert_int_equal(pthread_create(&th[i], NULL, model_worker, &args[i]), 0);
  }
  for (unsigned i = 0; i < NTHREADS; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(args[i].failed, 0);
  }
  /* blocks still parked in the exchange belong to nobody: free them here */
  for (unsigned e = 0; e < EXCHANGE; e++) {
    blk_free(exchange[e]);
    exchange[e] = NULL;
  }
  hl_alloc_stats_t s = stats();
  if (heaps()) {
    assert_true(s.heaps >= 1);
    assert_true(s.remote_frees > 0);   /* traded blocks were freed by other threads */
  }
  if (s.max_size > s.threshold) assert_true(s.huge_maps > 0);   /* large=medium: huge blocks made */
  if (cfg.tcache == HL_TCACHE_MAGAZINE) assert_true(s.tcache_refills > 0 && s.tcache_flushes > 0);
  expect_everything_back();
}

/* ---- a thread that exits with a full cache ---------------------------------- */

#define FULL_N 20000
/* every size up to common_top in turn, and one block in 32 over the whole
 * range (20,000 blocks of tens of KiB would be hundreds of MiB) */
static size_t full_size(size_t i) {
  return i % 32 == 31 ? 1 + (i * 2654435761u) % threshold : 1 + i % common_top;
}
static void *fill_then_exit(void *arg) {
  void **b = arg;
  for (size_t i = 0; i < FULL_N; i++) b[i] = hl_alloc_malloc(full_size(i));
  for (size_t i = 0; i < FULL_N; i++) hl_alloc_free(b[i]);
  if (cfg.tcache == HL_TCACHE_MAGAZINE) {
    hl_alloc_stats_t s = stats();
    assert_true(s.tcache_blocks > 0);   /* the cache is full when the thread exits */
  }
  return NULL;
}

static void test_thread_exit_with_full_cache(void **st) {
  (void)st;
  void **b = calloc(FULL_N, sizeof *b);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, fill_then_exit, b), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.tcache_blocks, 0);      /* handed back at exit */
  assert_int_equal(s.blocks_in_use, 0);
  assert_int_equal(s.tcache_threads, 0);
  expect_everything_back();
  free(b);
}

/* ---- blocks outliving their thread ------------------------------------------ */

static void *alloc_then_exit(void *arg) {
  void **b = arg;
  for (size_t i = 0; i < FULL_N; i++) b[i] = hl_alloc_malloc(full_size(i));
  return NULL;
}

static void *free_them(void *arg) {
  void **b = arg;
  for (size_t i = 0; i < FULL_N; i++) hl_alloc_free(b[i]);
  return NULL;
}

static void test_blocks_freed_after_their_thread_exited(void **st) {
  (void)st;
  void **b = calloc(FULL_N, sizeof *b);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, alloc_then_exit, b), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  for (size_t i = 0; i < FULL_N; i++) assert_non_null(b[i]);
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.blocks_in_use, FULL_N);   /* every size within the pools */
  if (heaps()) assert_int_equal(s.heaps_abandoned, 1);
  uint64_t reclaims = s.heap_reclaims;
  assert_int_equal(pthread_create(&t, NULL, free_them, b), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  s = stats();
  assert_int_equal(s.blocks_in_use - s.tcache_blocks, 0);
  if (heaps()) {
    /* the free of its last block reclaimed the abandoned heap, no collect */
    assert_int_equal(s.heaps_abandoned, 0);
    assert_int_equal(s.heap_reclaims, reclaims + 1);
    assert_int_equal(s.arenas_current, 0);
  }
  expect_everything_back();
  free(b);
}

/* ---- batched remote frees (tcache=heap, tcache_heap.c) ---------------------- */

enum { BATCH_N = 40, BATCH_MAX = 16 };

static void *free_in_batches(void *arg) {
  void **b = arg;   /* a thread that only frees: batched all the same */
  for (int i = 0; i < BATCH_MAX - 1; i++) hl_alloc_free(b[i]);
  assert_int_equal(stats().remote_pending, 0);            /* all in the batch */
  hl_alloc_free(b[BATCH_MAX - 1]);
  assert_int_equal(stats().remote_pending, BATCH_MAX);    /* one push of sixteen */
  for (int i = BATCH_MAX; i < BATCH_MAX + 5; i++) hl_alloc_free(b[i]);
  assert_int_equal(stats().remote_pending, BATCH_MAX);
  hl_alloc_collect();                                     /* pushes its batch */
  assert_int_equal(stats().remote_pending, BATCH_MAX + 5);
  for (int i = BATCH_MAX + 5; i < BATCH_N; i++) hl_alloc_free(b[i]);
  return NULL;                                            /* the rest at exit */
}

static void test_remote_frees_are_batched(void **st) {
  (void)st;
  if (!heaps()) skip();
  void *b[BATCH_N];
  for (int i = 0; i < BATCH_N; i++) assert_non_null(b[i] = hl_alloc_malloc(48));
  uint64_t in_use = stats().blocks_in_use;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, free_in_batches, b), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  hl_alloc_stats_t s = stats();
  assert_int_equal(s.remote_pending, BATCH_N);            /* every one pushed */
  assert_int_equal(s.blocks_in_use, in_use - BATCH_N);
  expect_everything_back();
}

/* ---- the lists in front of a heap (tcache=heap-magazine) -------------------- */

enum { LIFO_N = 2000, LIFO_SIZE = 64 };

static void *lifo_worker(void *arg) {
  (void)arg;
  void **b = calloc(LIFO_N, sizeof *b);
  assert_non_null(b);
  /* several pools of one class, every one full but the last */
  for (int i = 0; i < LIFO_N; i++) assert_non_null(b[i] = hl_alloc_malloc(LIFO_SIZE));
  hl_alloc_stats_t s0 = stats();
  /* A block freed into the first, full pool comes back at once (with the
   * heap alone it would wait behind the used pools, pool-requeue=back). */
  void *freed = b[10];
  hl_alloc_free(freed);
  hl_alloc_stats_t s1 = stats();
  assert_int_equal(s1.tcache_blocks, s0.tcache_blocks + 1);
  assert_int_equal(s1.blocks_in_use, s0.blocks_in_use);   /* in use for its heap */
  b[10] = hl_alloc_malloc(LIFO_SIZE);
  assert_ptr_equal(b[10], freed);
  assert_int_equal(stats().tcache_blocks, s0.tcache_blocks);
  /* Freeing them all: the lists keep some, within the thread's budget;
   * the rest goes to the pools. */
  for (int i = 0; i < LIFO_N; i++) hl_alloc_free(b[i]);
  hl_alloc_stats_t s2 = stats();
  assert_true(s2.tcache_blocks > s0.tcache_blocks);
  assert_true(s2.tcache_blocks < LIFO_N);
  assert_true(s2.tcache_bytes <= (uint64_t)cfg.tcache_kib * 1024);
  /* collect empties the calling thread's lists (the main thread's, s0's,
   * wait for its next slow path) */
  hl_alloc_collect();
  assert_int_equal(stats().tcache_blocks, s0.tcache_blocks);
  /* and the thread's exit empties them too */
  for (int i = 0; i < 100; i++) assert_non_null(b[i] = hl_alloc_malloc(LIFO_SIZE));
  for (int i = 0; i < 100; i++) hl_alloc_free(b[i]);
  assert_true(stats().tcache_blocks > s0.tcache_blocks);
  free(b);
  return NULL;
}

static void test_heap_magazine_lists(void **st) {
  (void)st;
  if (cfg.tcache != HL_TCACHE_HEAP_MAGAZINE) skip();
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, lifo_worker, NULL), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  expect_everything_back();
}

int main(int argc, char **argv) {
  char err[512];
  if (argc > 1) ops_per_thread = strtoull(argv[1], NULL, 10);
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0 ||
      hl_config_check_combinations(&cfg, err, sizeof err) != 0 ||
      hl_alloc_check_config(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "test_tcache: %s\n", err);
    return 2;
  }
  cfg.alloc = HL_ALLOC_POOL;
  cfg.threads = NTHREADS;
  if (hl_alloc_init(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "test_tcache: %s\n", err);
    return 2;
  }
  hl_alloc_stats_t s;
  hl_alloc_stats(&s);
  threshold = s.max_size;   /* the largest block the pools serve */
  common_top = threshold < 4 * s.threshold ? threshold : 4 * s.threshold;
  fprintf(stderr, "test_tcache: tcache=%s threshold %zu, %u threads x %llu ops\n",
          hl_config_choice_name(HL_OPT_TCACHE, cfg.tcache), threshold, NTHREADS,
          (unsigned long long)ops_per_thread);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threads_against_model),
      cmocka_unit_test(test_thread_exit_with_full_cache),
      cmocka_unit_test(test_blocks_freed_after_their_thread_exited),
      cmocka_unit_test(test_remote_frees_are_batched),
      cmocka_unit_test(test_heap_magazine_lists),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
