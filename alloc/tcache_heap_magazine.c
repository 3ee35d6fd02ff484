/* Per-thread caches in front of the pools: magazines over the thread's own
 * heap (tcache.c has what the designs share; tcache_heap.c the heaps,
 * tcache_magazine.c the magazines over the shared pools).
 *
 * tcache=heap-magazine. Each thread owns a heap, as under tcache=heap
 * (mimalloc's design: Leijen, Zorn and de Moura, APLAS 2019), and keeps in
 * front of it, per size class, a bounded LIFO list of free blocks, as
 * tcmalloc's thread cache does in front of its central lists (Ghemawat and
 * Menage 2007; the magazines of Bonwick and Adams, USENIX 2001). The two
 * layers answer two different workloads:
 *
 * - A program that frees a block and soon asks for one of the same size
 *   (CPython's temporaries, obmalloc's pool at the front of usedpools) gets
 *   the block it has just freed, still in its cache, from the top of the
 *   list. The heap alone gives it the next block of the pool at the head of
 *   the class's used list, which is often another pool (pool-requeue=back),
 *   so one more line or page comes in for every temporary.
 * - A program whose requests and frees of a class alternate at random
 *   (malloc-churn) pays the heap's pool transitions (full, used, empty) on
 *   a fraction of its frees; the list absorbs the walk between them.
 *
 * malloc pops the list and, when it is empty, pops the heap's pool (the
 * tcache=heap fast path), so a list never refills in batches: a producer
 * whose blocks are freed elsewhere pays one test more than under
 * tcache=heap. A free of one of the heap's own blocks pushes onto the list;
 * a block of another heap takes tcache=heap's path (batched remote frees,
 * abandoned heaps reclaimed by their last free), so a list holds only its
 * own heap's blocks and a thread's exit or a flush never looks up an owner.
 * (tcmalloc's lists take any block; here a block freed by another thread
 * would then count as in use for its owner's heap until a flush, and an
 * exited thread's heap would wait on other threads' lists to be reclaimed.)
 * The free reads the pool header's arena for its owner, as tcache=heap's
 * does. A free that finds its list full goes to the heap's pool, inline:
 * a thread that frees more than it asks for (the end of a phase, alloc-lifo)
 * pays one test per free, not a flush's second handling of each block
 * (sending half the list back first, tcmalloc's way, from an out-of-line
 * path, took alloc-lifo 544 M instructions against 500 M for this inline
 * pass: docs/measurements.md). hl_alloc_collect, thread exit and the
 * collect epoch (at the heap's malloc slow path) empty the lists, as the
 * magazines' do.
 *
 * The bounds are fixed: class by class from the smallest, the magazines'
 * batch (8 KiB of blocks, 2 to 64 of them) while the byte budget
 * (--tcache-kib) lasts, so the lists hold at most that many bytes; the
 * heap's empty arenas count against the same budget separately, as under
 * tcache=heap. (The magazines' slow start learns a class's demand from its
 * refills; these lists have none.) A pool cannot empty while one of its
 * blocks waits on a list, so the heap's memory may exceed tcache=heap's by
 * the lists' budget.
 */
#include "tcache_internal.h"

#include "hl_probe.h"

void hli_hmag_bounds_reset(hli_thread_t *t) {
  t->max_bytes = 0;
  for (unsigned i = 0; i < hli_tc.g.nclasses; i++) {
    hl_atomic_store_relaxed_u32(&t->bins[i].max, hli_tc.hmag_max[i]);
    t->max_bytes += hli_tc.hmag_max[i] * hl_class_size(&hli_tc.g, i);
  }
}

void hli_hmag_bounds_init(void) {
  size_t left = hli_tc.heap_policy.keep_bytes;
  for (unsigned i = 0; i < hli_tc.g.nclasses; i++) {
    size_t size = hl_class_size(&hli_tc.g, i), m = hli_tc.batch[i];
    if (m > left / size) m = left / size;
    hli_tc.hmag_max[i] = (uint32_t)m;
    left -= m * size;
  }
}

/* Sends up to n blocks from the top of bin (t's own heap's) to the heap. */
static void bin_flush(hli_thread_t *t, hli_bin_t *bin, unsigned idx, uint32_t n) {
  if (bin->count == 0 || n == 0) return;
  uint32_t k = hli_bin_free_into(bin, n, &t->heap->pools);
  (void)hl_atomic_faa_u64(&hli_tc.flushes, 1);
  HL_PROBE(tcache_flush, k, (int)idx);
}

void hli_hmag_flush_all(hli_thread_t *t) {
  for (unsigned i = 0; i < hli_tc.g.nclasses; i++) bin_flush(t, &t->bins[i], i, UINT32_MAX);
}
