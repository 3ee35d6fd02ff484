/* Per-thread caches in front of the pools: the magazines (tcache.c has what
 * the two designs share).
 *
 * tcache=magazine (tcmalloc's thread caches: Ghemawat and Menage, "TCMalloc:
 * Thread-Caching Malloc", 2007; the magazine layer of Bonwick and Adams,
 * USENIX 2001). Each thread keeps, per size class, a LIFO list of free
 * blocks with a bound, max. malloc pops; an empty list refills with a batch
 * from the shared pools under their lock (one lock round trip per batch).
 * free pushes onto the freeing thread's list, whichever thread allocated
 * the block (a cross-thread free is an ordinary free here: nothing is lost,
 * the block merely changes caches); a full list first sends a batch back to
 * the pools under the lock. The pools behind the magazines are obmalloc's,
 * so empty pools and arenas still go back to the OS once the blocks come
 * back.
 *
 * The bounds adapt to demand (tcmalloc's "slow start", ThreadCache::
 * FetchFromCentralCache and ListTooLong): a list starts with max = 1; each
 * refill raises max by 1 while it is below the class's batch, then by a
 * whole batch, so a class that keeps running dry soon holds its working set
 * and a class used once holds almost nothing. A list that keeps overflowing
 * (more than 3 times since its bound last moved) loses a batch of bound.
 * The byte budget (--tcache-kib) holds for all lists together: a thread
 * keeps sum(max * size) <= budget, and a raise that does not fit first cuts
 * the bounds of other classes that are not using them (max above count),
 * round robin; if none can give, the bound stays. A batch is 8 KiB of
 * blocks, 2 to 64 of them (tcmalloc's num_objects_to_move, smaller).
 */
#include "tcache_internal.h"

#include "hl_probe.h"

/* Every bound back to its start (1, or 0 where one block is over budget). */
void hli_mag_bounds_reset(hli_thread_t *t) {
  t->max_bytes = 0;
  for (unsigned i = 0; i < hli_tc.g.nclasses; i++) {
    uint32_t m = hli_tc.cap[i] > 0 ? 1 : 0;
    hl_atomic_store_relaxed_u32(&t->bins[i].max, m);
    t->overages[i] = 0;
    t->max_bytes += m * hl_class_size(&hli_tc.g, i);
  }
}

/* Sends up to n blocks from the head of bin (size class idx) back to the
 * pools. */
static void bin_flush(hli_bin_t *bin, unsigned idx, uint32_t n) {
  if (bin->count == 0 || n == 0) return;
  hl_spinlock_lock(hli_tc.lock);
  uint32_t k = hli_bin_free_into(bin, n, hli_tc.shared);
  hl_spinlock_unlock(hli_tc.lock);
  (void)hl_atomic_faa_u64(&hli_tc.flushes, 1);
  HL_PROBE(tcache_flush, k, (int)idx);
}

void hli_mag_flush_all(hli_thread_t *t) {
  for (unsigned i = 0; i < hli_tc.g.nclasses; i++) bin_flush(&t->bins[i], i, UINT32_MAX);
  hli_mag_bounds_reset(t);
}

/* Another thread asked for the caches back (hl_alloc_collect). */
static inline void check_epoch(hli_thread_t *t) {
  uint64_t e = hl_atomic_load_relaxed_u64(&hli_tc.epoch);
  if (HL_LIKELY(e == t->epoch)) return;
  t->epoch = e;
  hli_mag_flush_all(t);
}

/* Moves class idx's bound by delta blocks (the caller keeps it within
 * 0..cap and flushes what a lower bound no longer admits). */
static void bound_move(hli_thread_t *t, unsigned idx, int64_t delta) {
  hli_bin_t *bin = &t->bins[idx];
  hl_atomic_store_relaxed_u32(&bin->max, (uint32_t)((int64_t)bin->max + delta));
  t->max_bytes = (size_t)((int64_t)t->max_bytes + delta * (int64_t)hl_class_size(&hli_tc.g, idx));
  t->overages[idx] = 0;
}

/* Makes room in the budget for `bytes` more of bound by cutting the unused
 * bound (max - count) of other classes, a batch at a time, round robin.
 * Whether the room is there now. */
static bool budget_room(hli_thread_t *t, unsigned idx, size_t bytes) {
  unsigned n = hli_tc.g.nclasses;
  size_t budget = hli_tc.heap_policy.keep_bytes;
  for (unsigned tries = 0; t->max_bytes + bytes > budget && tries < n; tries++) {
    unsigned v = t->steal_cursor;
    t->steal_cursor = v + 1 < n ? v + 1 : 0;
    if (v == idx) continue;
    hli_bin_t *bin = &t->bins[v];
    uint32_t spare = bin->max - bin->count;
    if (spare <= 1) continue;
    uint32_t cut = spare - 1 < hli_tc.batch[v] ? spare - 1 : hli_tc.batch[v];
    bound_move(t, v, -(int64_t)cut);
  }
  return t->max_bytes + bytes <= budget;
}

/* Slow start, on a refill of class idx: raise its bound. */
static void bound_grow(hli_thread_t *t, unsigned idx) {
  uint32_t max = t->bins[idx].max, b = hli_tc.batch[idx];
  uint32_t grow = max < b ? 1 : b;
  if (grow > hli_tc.cap[idx] - max) grow = hli_tc.cap[idx] - max;
  if (grow == 0) return;
  size_t size = hl_class_size(&hli_tc.g, idx);
  if (budget_room(t, idx, grow * size)) bound_move(t, idx, grow);
}

void *hli_mag_malloc_slow(size_t n) {
  hli_thread_t *t = hli_tc_thread_self();
  if (!t && !(t = hli_tc_thread_register())) {
    /* no memory even for a cache: serve from the pools directly */
    hl_spinlock_lock(hli_tc.lock);
    void *p = hli_pools_malloc(hli_tc.shared, n);
    hl_spinlock_unlock(hli_tc.lock);
    return p;
  }
  check_epoch(t);
  unsigned idx = hl_size_class(&hli_tc.g, n);
  hli_bin_t *bin = &t->bins[idx];
  bound_grow(t, idx);
  /* a batch, or the bound if lower; one block at least (the caller's) */
  uint32_t want = bin->max < hli_tc.batch[idx] ? bin->max : hli_tc.batch[idx], got = 0;
  if (want == 0) want = 1;
  hl_block_t *head = bin->head;
  hl_spinlock_lock(hli_tc.lock);
  for (; got < want; got++) {
    hl_block_t *b = hli_pools_malloc(hli_tc.shared, n);
    if (HL_UNLIKELY(!b)) break;
    b->next = head;
    head = b;
  }
  hl_spinlock_unlock(hli_tc.lock);
  (void)hl_atomic_faa_u64(&hli_tc.refills, 1);
  if (got == 0) return NULL;
  bin->head = head->next;
  hl_atomic_store_relaxed_u32(&bin->count, bin->count + got - 1);
  return head;
}

void hli_mag_free_slow(void *p, uintptr_t tag) {
  hli_thread_t *t = hli_tc_thread_self();
  if (!t) {
    /* A thread without a cache (it never allocated, or it is exiting):
     * straight to the pools. */
    hl_spinlock_lock(hli_tc.lock);
    hli_pools_free(hli_tc.shared, p);
    hl_spinlock_unlock(hli_tc.lock);
    return;
  }
  check_epoch(t);
  unsigned idx = hli_tag_class(tag);
  hli_bin_t *bin = &t->bins[idx];
  if (bin->count >= bin->max) {
    uint32_t b = hli_tc.batch[idx];
    bin_flush(bin, idx, b);
    /* tcmalloc's ListTooLong: a list that keeps overflowing gives up a
     * batch of bound, which the budget can lend to another class */
    if (bin->max > b && ++t->overages[idx] > 3) bound_move(t, idx, -(int64_t)b);
    if (bin->count >= bin->max) bin_flush(bin, idx, bin->count - bin->max + 1);
  }
  if (bin->count < bin->max) {
    bool ok = hli_bin_push(bin, p);
    HL_ASSERT(ok);
    (void)ok;
    return;
  }
  /* a bound of 0: the class is over budget even for one block */
  hl_spinlock_lock(hli_tc.lock);
  hli_pools_free(hli_tc.shared, p);
  hl_spinlock_unlock(hli_tc.lock);
}
