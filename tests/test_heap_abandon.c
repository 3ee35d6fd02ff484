/* alloc/: threads that exit while their blocks are still live, freed later
 * by the main thread (the issue "Reliability", item 3), once per tcache mode
 * (HEAPLAB_TCACHE, set by CTest).
 *
 *   THREADS threads each allocate BLOCKS blocks of SIZE bytes, hand them to
 *   the main thread and exit (tcache=heap, heap-magazine: each leaves an abandoned heap);
 *   the main thread, which has no heap of its own, frees them all (remote
 *   frees into abandoned heaps). With no further allocator call and no
 *   hl_alloc_collect(), the statistics must say that nothing is in use, and
 *   with tcache=heap or heap-magazine every abandoned heap must be reclaimed: no abandoned
 *   heap, no block pending on a remote list, no arena left mapped;
 * then the same with several threads freeing at once while new threads
 * adopt the abandoned heaps (test_freed_while_heaps_are_adopted).
 *
 * Prints RSS and the statistics before and after the frees (the figures in
 * docs/measurements.md come from it).
 * usage: test_heap_abandon [THREADS] [BLOCKS] [SIZE]
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "hl_alloc.h"

extern char **environ;

static hl_config_t cfg;
static unsigned nthreads = 64;
static size_t nblocks = 5000, size = 256;

static uint64_t rss_bytes(void) {
  unsigned long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (fscanf(f, "%lu %lu", &pages, &resident) != 2) resident = 0;
  fclose(f);
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
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

static void report(const char *when, const hl_alloc_stats_t *s) {
  fprintf(stderr,
          "test_heap_abandon: %-12s rss %8.1f MiB  blocks_in_use %8llu  arenas_current %5llu  "
          "heaps %4llu  heaps_abandoned %4llu  remote_pending %8llu\n",
          when, (double)rss_bytes() / (1 << 20), (unsigned long long)s->blocks_in_use,
          (unsigned long long)s->arenas_current, (unsigned long long)s->heaps,
          (unsigned long long)s->heaps_abandoned, (unsigned long long)s->remote_pending);
}

/* Every thread holds its heap until all have allocated, so that none adopts
 * the heap of one that exited before it: THREADS heaps, all abandoned. */
static pthread_barrier_t all_allocated;

static void *alloc_then_exit(void *arg) {
  void **b = arg;
  for (size_t i = 0; i < nblocks; i++) b[i] = hl_alloc_malloc(size);
  (void)pthread_barrier_wait(&all_allocated);
  return NULL;
}

/* nthreads threads each allocate nblocks into their span of b, wait until
 * all have, and exit (their heaps abandoned with every block live). */
static void allocate_in_threads_that_exit(void **b, pthread_t *th) {
  assert_int_equal(pthread_barrier_init(&all_allocated, NULL, nthreads), 0);
  for (unsigned i = 0; i < nthreads; i++)
    assert_int_equal(pthread_create(&th[i], NULL, alloc_then_exit, b + (size_t)i * nblocks), 0);
  for (unsigned i = 0; i < nthreads; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
  (void)pthread_barrier_destroy(&all_allocated);
}

static void test_freed_after_their_threads_exited(void **st) {
  (void)st;
  hl_alloc_stats_t s0 = stats();
  void **b = calloc((size_t)nthreads * nblocks, sizeof *b);
  pthread_t *th = calloc(nthreads, sizeof *th);
  assert_non_null(b);
  assert_non_null(th);
  allocate_in_threads_that_exit(b, th);
  for (size_t i = 0; i < (size_t)nthreads * nblocks; i++) assert_non_null(b[i]);
  hl_alloc_stats_t s = stats();
  report("allocated", &s);
  uint64_t live = (uint64_t)nthreads * nblocks;
  assert_int_equal(s.blocks_in_use - s.tcache_blocks, s0.blocks_in_use + live);
  if (heaps()) assert_int_equal(s.heaps_abandoned, nthreads);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (size_t i = 0; i < (size_t)nthreads * nblocks; i++) hl_alloc_free(b[i]);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  s = stats();
  report("freed", &s);
  fprintf(stderr, "test_heap_abandon: the frees took %.1f ns each\n",
          ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)live);
  /* Nothing is live: blocks on a remote list or in a magazine are not in use. */
  assert_int_equal(s.blocks_in_use - s.tcache_blocks, s0.blocks_in_use);
  if (heaps()) {
    /* the last free into each abandoned heap reclaimed it */
    assert_int_equal(s.heaps_abandoned, 0);
    assert_int_equal(s.remote_pending, 0);
    assert_int_equal(s.arenas_current, s0.arenas_current);
  }
  hl_alloc_collect();
  s = stats();
  report("collected", &s);
  assert_int_equal(s.blocks_in_use, s0.blocks_in_use);
  assert_int_equal(s.arenas_current, s0.arenas_current);
  free(th);
  free(b);
}

/* ---- the same, racing adoption ----------------------------------------------
 * FREERS threads free the blocks of the exited threads at once, while
 * ADOPTERS new threads start, allocate and free their own blocks, and exit:
 * each adopts an abandoned heap (when one is left), which is then freed into
 * while owned, and abandoned again at its exit. Afterwards everything must
 * be back, with no collect. */
#define FREERS 4
#define ADOPTERS 16

typedef struct {
  void **b;
  size_t n;
} span_t;

/* Each adopter takes its heap (an abandoned one: none is reclaimed yet)
 * before any freer starts, then they all run at once. */
static pthread_barrier_t race_start;

static void *free_span(void *arg) {
  span_t *sp = arg;
  (void)pthread_barrier_wait(&race_start);
  for (size_t i = 0; i < sp->n; i++) hl_alloc_free(sp->b[i]);
  return NULL;
}

static void *adopt_then_exit(void *arg) {
  (void)arg;
  void *mine[256];
  hl_alloc_free(hl_alloc_malloc(size));
  (void)pthread_barrier_wait(&race_start);
  for (int round = 0; round < 8; round++) {
    for (size_t i = 0; i < 256; i++) mine[i] = hl_alloc_malloc(1 + (i * 37) % size);
    for (size_t i = 0; i < 256; i++) hl_alloc_free(mine[i]);
  }
  return NULL;
}

static void test_freed_while_heaps_are_adopted(void **st) {
  (void)st;
  hl_alloc_stats_t s0 = stats();
  size_t total = (size_t)nthreads * nblocks;
  void **b = calloc(total, sizeof *b);
  pthread_t *th = calloc(nthreads, sizeof *th);
  assert_non_null(b);
  assert_non_null(th);
  allocate_in_threads_that_exit(b, th);
  /* interleave the spans, so that every freer frees into every heap */
  for (size_t i = 0; i < total; i += 7) {
    size_t j = (i * 2654435761u) % total;
    void *t = b[i];
    b[i] = b[j];
    b[j] = t;
  }
  pthread_t fr[FREERS], ad[ADOPTERS];
  span_t sp[FREERS];
  assert_int_equal(pthread_barrier_init(&race_start, NULL, FREERS + ADOPTERS), 0);
  for (unsigned i = 0; i < FREERS; i++) {
    sp[i] = (span_t){b + total / FREERS * i, i + 1 < FREERS ? total / FREERS : total - total / FREERS * i};
    assert_int_equal(pthread_create(&fr[i], NULL, free_span, &sp[i]), 0);
  }
  for (unsigned i = 0; i < ADOPTERS; i++)
    assert_int_equal(pthread_create(&ad[i], NULL, adopt_then_exit, NULL), 0);
  for (unsigned i = 0; i < FREERS; i++) assert_int_equal(pthread_join(fr[i], NULL), 0);
  for (unsigned i = 0; i < ADOPTERS; i++) assert_int_equal(pthread_join(ad[i], NULL), 0);
  (void)pthread_barrier_destroy(&race_start);
  hl_alloc_stats_t s = stats();
  report("raced", &s);
  assert_int_equal(s.blocks_in_use - s.tcache_blocks, s0.blocks_in_use);
  if (heaps()) {
    fprintf(stderr, "test_heap_abandon: %llu adoptions, %llu reclaims during the race\n",
            (unsigned long long)(s.heap_adoptions - s0.heap_adoptions),
            (unsigned long long)(s.heap_reclaims - s0.heap_reclaims));
    assert_true(s.heap_adoptions > s0.heap_adoptions);
    assert_int_equal(s.heaps_abandoned, 0);
    assert_int_equal(s.remote_pending, 0);
    assert_int_equal(s.arenas_current, s0.arenas_current);
  }
  hl_alloc_collect();
  s = stats();
  assert_int_equal(s.blocks_in_use, s0.blocks_in_use);
  assert_int_equal(s.arenas_current, s0.arenas_current);
  free(th);
  free(b);
}

int main(int argc, char **argv) {
  char err[512];
  if (argc > 1) nthreads = (unsigned)strtoul(argv[1], NULL, 10);
  if (argc > 2) nblocks = strtoull(argv[2], NULL, 10);
  if (argc > 3) size = strtoull(argv[3], NULL, 10);
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0 ||
      hl_config_check_combinations(&cfg, err, sizeof err) != 0 ||
      hl_alloc_check_config(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "test_heap_abandon: %s\n", err);
    return 2;
  }
  cfg.alloc = HL_ALLOC_POOL;
  cfg.threads = nthreads + FREERS + ADOPTERS + 1;
  if (hl_alloc_init(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "test_heap_abandon: %s\n", err);
    return 2;
  }
  hl_alloc_stats_t s = stats();
  if (size == 0 || size > s.threshold) {
    fprintf(stderr, "test_heap_abandon: SIZE must be 1..%llu\n", (unsigned long long)s.threshold);
    return 2;
  }
  fprintf(stderr, "test_heap_abandon: tcache=%s, %u threads x %zu blocks of %zu B\n",
          hl_config_choice_name(HL_OPT_TCACHE, cfg.tcache), nthreads, nblocks, size);
  report("start", &s);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_freed_after_their_threads_exited),
      cmocka_unit_test(test_freed_while_heaps_are_adopted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
