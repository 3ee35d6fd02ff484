/* Per-thread caches in front of the pools (tcache=magazine, tcache=heap,
 * tcache=heap-magazine).
 *
 * Two designs and their stack, so that a researcher can compare them on one
 * workload; the baseline, tcache=none, is the shared instance behind one
 * lock (alloc.c).
 *
 * This file has what the two designs share: the thread-local pointers,
 * set-up, the registry of threads and heaps, the thread exit hook, collect,
 * statistics and fork. Each design has its own file, whose top comment
 * explains it:
 *   tcache_magazine.c  tcache=magazine
 *   tcache_heap.c      tcache=heap
 *   tcache_heap_magazine.c  tcache=heap-magazine: the lists of the first
 *                      over the heaps of the second
 * tcache_internal.h declares what the three files share.
 *
 * Thread exit (a pthread key destructor). A magazine flushes every list back
 * to the pools. A heap takes its remote list, releases its empty arenas and,
 * when no block of it is live any more, becomes spare (the next new thread
 * reuses it); otherwise it is abandoned: blocks freed later by other threads
 * keep arriving on its remote list, and the next thread that needs a heap
 * adopts it (abandoned heaps first, then spares, then a new one), as
 * mimalloc's threads reclaim abandoned segments. The free that brings back
 * an abandoned heap's last live block makes it spare and releases its
 * arenas (tcache_heap.c, "Abandoned heaps"), and hl_alloc_collect() sweeps
 * the abandoned heaps too, so an abandoned heap's memory goes back even if
 * no thread ever adopts it.
 *
 * hl_alloc_collect() (the cycle collector calls it after a full collection)
 * empties the calling thread's cache or heap at once and raises a global
 * epoch; every other thread empties its own at its next slow path, because
 * its cache is touched by no one else. Heap memory never moves between
 * threads without its owner's consent, and no fast path ever reads the
 * epoch.
 *
 * The registry (live threads, all heaps, the abandoned and spare lists) is
 * guarded by hli_tc_reg_lock, taken only on thread start and exit,
 * adoption, collect, statistics, and by a free into an abandoned heap
 * (which it also guards in place of an owner). Lock order: hli_tc_reg_lock, then the
 * shared pools' lock.
 */
#include "tcache.h"
#include "tcache_internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

hli_thread_t hli_no_thread;
hli_heap_t hli_no_heap;
__thread hli_thread_t *hli_self __attribute__((tls_model(HL_TLS_MODEL))) = &hli_no_thread;
__thread hli_heap_t *hli_heap_self __attribute__((tls_model(HL_TLS_MODEL))) = &hli_no_heap;

struct hli_tc hli_tc;

hl_spinlock_t hli_tc_reg_lock = HL_SPINLOCK_INITIALIZER;
static hli_thread_t *threads_live, *threads_spare;
hli_heap_t *hli_tc_heaps_all, *hli_tc_heaps_abandoned, *hli_tc_heaps_spare;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg);
static void make_exit_key(void) { (void)pthread_key_create(&exit_key, thread_exit); }

/* Registry memory comes from the OS layer, never from malloc: under the
 * LD_PRELOAD library malloc is ourselves. Never unmapped (one object per
 * thread or heap the process ever had at once). */
void *hli_tc_registry_object(size_t size) {
  size_t page = hl_os_page_size();
  return hl_os_map_aligned((size + page - 1) & ~(page - 1), page);
}

int hli_tcache_init(hl_tcache_t mode, hl_pools_t *shared, hl_spinlock_t *lock,
                    const hl_geometry_t *g, const hli_pools_policy_t *heap_policy,
                    uintptr_t heap_tag_bits) {
  HL_ASSERT(mode != HL_TCACHE_NONE);
  if (pthread_once(&exit_key_once, make_exit_key) != 0) return -EAGAIN;
  hli_tc.mode = mode;
  hli_tc.shared = shared;
  hli_tc.lock = lock;
  hli_tc.g = *g;
  hli_tc.heap_policy = *heap_policy;
  hli_tc.heap_tag_bits = heap_tag_bits;
  for (unsigned i = 0; i < g->nclasses; i++) {
    size_t size = hl_class_size(g, i);
    size_t b = 8192 / size, cap = heap_policy->keep_bytes / size;
    hli_tc.batch[i] = (uint32_t)(b < 2 ? 2 : b > 64 ? 64 : b);
    hli_tc.cap[i] = (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap);
  }
  if (mode == HL_TCACHE_HEAP_MAGAZINE) hli_hmag_bounds_init();
  return 0;
}

uint32_t hli_bin_free_into(hli_bin_t *bin, uint32_t n, hl_pools_t *h) {
  hl_block_t *b = bin->head;
  uint32_t k = 0;
  for (; k < n && b; k++) {
    hl_block_t *next = b->next;
    hli_pools_free(h, b);
    b = next;
  }
  bin->head = b;
  hl_atomic_store_relaxed_u32(&bin->count, bin->count - k);
  return k;
}

/* ---- threads -------------------------------------------------------------- */

hli_thread_t *hli_tc_thread_register(void) {
  hl_spinlock_lock(&hli_tc_reg_lock);
  hli_thread_t *t = threads_spare;
  if (t) threads_spare = t->next;
  hl_spinlock_unlock(&hli_tc_reg_lock);
  if (!t && !(t = hli_tc_registry_object(sizeof *t))) return NULL;
  memset(t, 0, sizeof *t);
  if (hli_tc.mode == HL_TCACHE_HEAP_MAGAZINE) hli_hmag_bounds_reset(t);
  else hli_mag_bounds_reset(t);
  t->epoch = hl_atomic_load_relaxed_u64(&hli_tc.epoch);
  hl_spinlock_lock(&hli_tc_reg_lock);
  t->next = threads_live;
  if (threads_live) threads_live->prev = t;
  threads_live = t;
  hl_spinlock_unlock(&hli_tc_reg_lock);
  hli_self = t;
  /* the destructor runs only for a non-NULL value */
  (void)pthread_setspecific(exit_key, t);
  return t;
}

static void thread_unregister(hli_thread_t *t) {
  hl_spinlock_lock(&hli_tc_reg_lock);
  if (t->prev) t->prev->next = t->next;
  else threads_live = t->next;
  if (t->next) t->next->prev = t->prev;
  t->prev = NULL;
  t->next = threads_spare;
  threads_spare = t;
  hl_spinlock_unlock(&hli_tc_reg_lock);
}

/* ---- thread exit, collect, statistics -------------------------------------- */

static void thread_exit(void *arg) {
  hli_thread_t *t = arg;
  if (hli_tc.mode == HL_TCACHE_MAGAZINE) {
    hli_mag_flush_all(t);
  } else {
    /* the lists first: their blocks go home, some into the batches */
    if (hli_tc.mode == HL_TCACHE_HEAP_MAGAZINE) hli_hmag_flush_all(t);
    hli_heap_batches_flush(t);   /* before the heap goes: its own frees may wait too */
    if (t->heap) {
      hli_heap_release(t->heap);
      t->heap = NULL;
    }
  }
  hli_heap_self = &hli_no_heap;
  hli_self = &hli_no_thread;
  thread_unregister(t);
}

void hli_tcache_collect(void) {
  (void)hl_atomic_faa_u64(&hli_tc.epoch, 1);
  hli_thread_t *t = hli_tc_thread_self();
  if (hli_tc.mode == HL_TCACHE_MAGAZINE) {
    if (t) {
      t->epoch = hl_atomic_load_relaxed_u64(&hli_tc.epoch);
      hli_mag_flush_all(t);
    }
    hl_spinlock_lock(hli_tc.lock);
    hli_pools_trim(hli_tc.shared);
    hl_spinlock_unlock(hli_tc.lock);
    return;
  }
  if (t && hli_tc.mode == HL_TCACHE_HEAP_MAGAZINE) hli_hmag_flush_all(t);
  if (t) hli_heap_batches_flush(t);
  if (t && t->heap) {
    t->epoch = hl_atomic_load_relaxed_u64(&hli_tc.epoch);
    hli_heap_tidy(t->heap);
  }
  /* Abandoned heaps have no owner: the registry lock stands in for one. */
  hl_spinlock_lock(&hli_tc_reg_lock);
  hli_heap_t **link = &hli_tc_heaps_abandoned;
  while (*link) {
    hli_heap_t *hp = *link;
    if (hli_heap_tidy(hp)) {
      *link = hp->next_list;
      hl_atomic_store_relaxed_u32(&hp->state, HLI_HEAP_SPARE);
      hp->next_list = hli_tc_heaps_spare;
      hli_tc_heaps_spare = hp;
    } else {
      link = &hp->next_list;
    }
  }
  hl_spinlock_unlock(&hli_tc_reg_lock);
}

/* Sums every instance. The heaps of running threads are read while their
 * owners may change them: call it when the threads are quiet (the runner
 * does, between phases); the counts of the magazines are exact whenever. */
/* The next entry of s->tcaches, or a scratch one past the last (counted in
 * the totals, not listed). */
static hl_alloc_tcache_stats_t *tcache_entry(hl_alloc_stats_t *s, const char *state) {
  static hl_alloc_tcache_stats_t unlisted;
  hl_alloc_tcache_stats_t *e =
      s->ntcaches < HL_ALLOC_STATS_TCACHES ? &s->tcaches[s->ntcaches++] : &unlisted;
  memset(e, 0, sizeof *e);
  e->state = state;
  return e;
}

/* Adds the free blocks on t's lists to the totals and classes of s, and to
 * e when it is given (a magazine's entry). */
static void bins_count(const hli_thread_t *t, hl_alloc_stats_t *s, hl_alloc_tcache_stats_t *e) {
  for (unsigned i = 0; i < hli_tc.g.nclasses; i++) {
    uint64_t c = hl_atomic_load_relaxed_u32(&t->bins[i].count);
    uint64_t bytes = c * hl_class_size(&hli_tc.g, i);
    s->tcache_blocks += c;
    s->tcache_bytes += bytes;
    s->classes[i].tcache_blocks += c;
    if (e) {
      e->free_blocks += c;
      e->free_bytes += bytes;
    }
  }
}

void hli_tcache_stats(hl_alloc_stats_t *s) {
  hl_spinlock_lock(&hli_tc_reg_lock);
  if (hli_tc.mode == HL_TCACHE_MAGAZINE) {
    s->tcache = "magazine";
    for (hli_thread_t *t = threads_live; t; t = t->next) bins_count(t, s, tcache_entry(s, "thread"));
  } else {
    s->tcache = hli_tc.mode == HL_TCACHE_HEAP ? "heap" : "heap-magazine";
    uint64_t drained = 0;
    for (hli_heap_t *hp = hli_tc_heaps_all; hp; hp = hp->next_all) {
      drained += hl_atomic_load_relaxed_u64(&hp->remote_drained);
      hl_alloc_tcache_stats_t *e = tcache_entry(s, hp->state == HLI_HEAP_OWNED ? "owned"
                                                   : hp->state == HLI_HEAP_ABANDONED ? "abandoned"
                                                                                    : "spare");
      /* the heap's own figures: what hli_pools_stats adds to the totals */
      uint64_t pools0 = s->pools_used, arenas0 = s->arenas_current, in0 = s->blocks_in_use,
               inb0 = s->bytes_in_use, free0 = s->bytes_free_blocks;
      uint64_t freeblk0 = 0;
      for (unsigned i = 0; i < hli_tc.g.nclasses; i++) freeblk0 += s->classes[i].free_blocks;
      hli_pools_stats(&hp->pools, s);
      s->heaps += 1;
      s->heaps_abandoned += hp->state == HLI_HEAP_ABANDONED;
      /* A block on the remote stack is free, but its pool still counts it
       * (pool->ref) until the owner drains it: move it to the free side. */
      for (hl_block_t *b = hl_atomic_load_acquire_ptr((void **)&hp->remote); b; b = b->next) {
        unsigned idx = hli_pool_of(&hp->pools, b)->szidx;
        uint64_t size = hl_class_size(&hli_tc.g, idx);
        s->remote_pending++;
        s->blocks_in_use--;
        s->bytes_in_use -= size;
        s->bytes_free_blocks += size;
        s->classes[idx].blocks_in_use--;
        s->classes[idx].free_blocks++;
        e->remote_pending++;
      }
      uint64_t freeblk = 0;
      for (unsigned i = 0; i < hli_tc.g.nclasses; i++) freeblk += s->classes[i].free_blocks;
      e->pools = s->pools_used - pools0;
      e->arenas = s->arenas_current - arenas0;
      e->blocks_in_use = s->blocks_in_use - in0;
      e->bytes_in_use = s->bytes_in_use - inb0;
      e->free_blocks = freeblk - freeblk0;
      e->free_bytes = s->bytes_free_blocks - free0;
    }
    /* remote frees: drained, still pending, and those into abandoned heaps
     * (a snapshot: a push or a drain in flight may be missed) */
    s->remote_frees = drained + s->remote_pending;
  }
  for (hli_thread_t *t = threads_live; t; t = t->next) {
    s->tcache_threads++;
    /* free blocks in heap-magazine's lists: in use for their heaps, as the
     * magazines' are for the shared pools (listed with no entry of their own) */
    if (hli_tc.mode == HL_TCACHE_HEAP_MAGAZINE) bins_count(t, s, NULL);
  }
  s->tcache_refills = hl_atomic_load_relaxed_u64(&hli_tc.refills);
  s->tcache_flushes = hl_atomic_load_relaxed_u64(&hli_tc.flushes);
  s->remote_frees += hl_atomic_load_relaxed_u64(&hli_tc.remote_frees);
  s->heap_adoptions = hli_tc.adoptions;
  s->heap_reclaims = hli_tc.reclaims;
  hl_spinlock_unlock(&hli_tc_reg_lock);
}

void hli_tcache_fork_prepare(void) { hl_spinlock_lock(&hli_tc_reg_lock); }
void hli_tcache_fork_parent(void) { hl_spinlock_unlock(&hli_tc_reg_lock); }

/* The child has one thread, the one that forked: every other thread's cache
 * or heap belongs to a thread that does not exist there. Magazines of those
 * threads are lost to the child (their blocks stay counted in use); their
 * heaps become abandoned, for the child's next threads to adopt. Under
 * heap-magazine their lists are lost the same way, and a heap with a block
 * on one is never idle again in the child: adopted, it serves on. */
void hli_tcache_fork_child(void) {
  hl_spinlock_init(&hli_tc_reg_lock);
  hli_thread_t *me = hli_tc_thread_self();
  threads_live = me;
  if (me) me->next = me->prev = NULL;
  hli_tc_heaps_abandoned = NULL;
  for (hli_heap_t *hp = hli_tc_heaps_all; hp; hp = hp->next_all) {
    if (hp->state == HLI_HEAP_SPARE || (me && hp == me->heap)) continue;
    hl_atomic_store_relaxed_u32(&hp->state, HLI_HEAP_ABANDONED);
    /* a kept empty pool (pool-retire=keep) would make it never idle: back
     * to its arena, and none kept from here (the heap is whole: the fork
     * copied it between its owner's operations, under the registry lock) */
    hp->pools.keep_last_empty = false;
    hli_pools_release_kept(&hp->pools);
    hp->next_list = hli_tc_heaps_abandoned;
    hli_tc_heaps_abandoned = hp;
  }
}

/* For tests, after every other thread has exited: unmaps every heap and
 * forgets the registry (the calling thread's cache included). */
void hli_tcache_reset(void) {
  if (hli_tc.mode == HL_TCACHE_NONE) return;
  for (hli_heap_t *hp = hli_tc_heaps_all; hp; hp = hp->next_all) hli_pools_destroy(&hp->pools);
  /* the registry objects stay mapped (few, and tests only) */
  hli_tc_heaps_all = hli_tc_heaps_abandoned = hli_tc_heaps_spare = NULL;
  threads_live = threads_spare = NULL;
  hli_self = &hli_no_thread;
  hli_heap_self = &hli_no_heap;
  (void)pthread_setspecific(exit_key, NULL);
  memset(&hli_tc, 0, sizeof hli_tc);
}
