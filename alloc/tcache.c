/* Per-thread caches in front of the pools (tcache=magazine, tcache=heap).
 *
 * Two designs, so that a researcher can compare them on one workload; the
 * baseline, tcache=none, is the shared instance behind one lock (alloc.c).
 *
 * tcache=magazine (tcmalloc's thread caches: Ghemawat and Menage, "TCMalloc:
 * Thread-Caching Malloc", 2007; the magazine layer of Bonwick and Adams,
 * USENIX 2001). Each thread keeps, per size class, a LIFO list of free
 * blocks, bounded so that all its lists together hold at most the byte
 * budget (--tcache-kib): class c of size s may hold budget / (classes * s)
 * blocks. malloc pops; an empty list refills with half its bound from the
 * shared pools under their lock (one lock round trip per batch). free pushes
 * onto the freeing thread's list, whichever thread allocated the block (a
 * cross-thread free is an ordinary free here: nothing is lost, the block
 * merely changes caches); a full list first sends half its bound back to the
 * pools under the lock. The pools behind the magazines are obmalloc's, so
 * empty pools and arenas still go back to the OS once the blocks come back.
 *
 * tcache=heap (mimalloc's thread-local heaps and sharded free lists: Leijen,
 * Zorn and de Moura, "Mimalloc: Free List Sharding in Action", APLAS 2019).
 * Each thread owns a whole pool instance (pool.h) with its own arenas; the
 * radix tree's arena descriptor names the owning heap. The owner allocates
 * and frees in it with the single-threaded fast paths of pool.h, without a
 * lock or an atomic instruction. Another thread frees into the owner's
 * remote list, a lock-free stack, with one compare-and-swap; the owner takes
 * the whole stack with one exchange when it runs short (malloc finds no used
 * pool for a class) and frees those blocks locally. (mimalloc shards the
 * remote list per page; one list per heap is simpler and enough to measure
 * the idea.) A heap's empty arenas are kept up to the byte budget
 * (--tcache-kib), the rest released after the decay (pool.c), so memory
 * kept per thread is bounded.
 *
 * Thread exit (a pthread key destructor). A magazine flushes every list back
 * to the pools. A heap takes its remote list, releases its empty arenas and,
 * when no block of it is live any more, becomes spare (the next new thread
 * reuses it); otherwise it is abandoned: blocks freed later by other threads
 * keep arriving on its remote list, and the next thread that needs a heap
 * adopts it (abandoned heaps first, then spares, then a new one), as
 * mimalloc's threads reclaim abandoned segments. hl_alloc_collect() sweeps
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
 * guarded by reg_lock, taken only on thread start and exit, adoption,
 * collect and statistics. Lock order: reg_lock, then the shared pools' lock.
 */
#include "tcache.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

__thread hli_thread_t *hli_self __attribute__((tls_model("initial-exec")));
__thread hli_heap_t *hli_heap_self __attribute__((tls_model("initial-exec")));

static struct {
  hl_tcache_t mode;
  hl_pools_t *shared;             /* magazine: the pools behind the lock */
  hl_spinlock_t *lock;
  hl_geometry_t g;
  size_t budget;                  /* bytes per thread */
  uint64_t decay_ns;
  bool madvise;
  uint32_t bin_max[HL_MAX_CLASSES];
  uint64_t epoch;                 /* collect requests so far (atomic) */
  uint64_t refills, flushes;      /* magazine batches (atomic, slow path) */
  uint64_t remote_frees;          /* heap: frees pushed to another heap (atomic) */
  uint64_t adoptions;             /* heap: abandoned heaps taken over */
} tc;

static hl_spinlock_t reg_lock = HL_SPINLOCK_INITIALIZER;
static hli_thread_t *threads_live, *threads_spare;
static hli_heap_t *heaps_all, *heaps_abandoned, *heaps_spare;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg);
static void make_exit_key(void) { (void)pthread_key_create(&exit_key, thread_exit); }

/* Registry memory comes from the OS layer, never from malloc: under the
 * LD_PRELOAD library malloc is ourselves. Never unmapped (one object per
 * thread or heap the process ever had at once). */
static void *registry_object(size_t size) {
  size_t page = hl_os_page_size();
  return hl_os_map_aligned((size + page - 1) & ~(page - 1), page);
}

int hli_tcache_init(hl_tcache_t mode, hl_pools_t *shared, hl_spinlock_t *lock,
                    const hl_geometry_t *g, size_t budget_bytes, uint64_t decay_ns, bool madvise) {
  HL_ASSERT(mode != HL_TCACHE_NONE);
  if (pthread_once(&exit_key_once, make_exit_key) != 0) return -EAGAIN;
  tc.mode = mode;
  tc.shared = shared;
  tc.lock = lock;
  tc.g = *g;
  tc.budget = budget_bytes;
  tc.decay_ns = decay_ns;
  tc.madvise = madvise;
  for (unsigned i = 0; i < g->nclasses; i++) {
    size_t m = budget_bytes / ((size_t)g->nclasses * hl_class_size(g, i));
    tc.bin_max[i] = (uint32_t)(m < 1 ? 1 : m > 4096 ? 4096 : m);
  }
  return 0;
}

/* ---- threads -------------------------------------------------------------- */

static hli_thread_t *thread_register(void) {
  hl_spinlock_lock(&reg_lock);
  hli_thread_t *t = threads_spare;
  if (t) threads_spare = t->next;
  hl_spinlock_unlock(&reg_lock);
  if (!t && !(t = registry_object(sizeof *t))) return NULL;
  memset(t, 0, sizeof *t);
  for (unsigned i = 0; i < tc.g.nclasses; i++) t->bins[i].max = tc.bin_max[i];
  t->epoch = hl_atomic_load_relaxed_u64(&tc.epoch);
  hl_spinlock_lock(&reg_lock);
  t->next = threads_live;
  if (threads_live) threads_live->prev = t;
  threads_live = t;
  hl_spinlock_unlock(&reg_lock);
  hli_self = t;
  /* the destructor runs only for a non-NULL value */
  (void)pthread_setspecific(exit_key, t);
  return t;
}

static void thread_unregister(hli_thread_t *t) {
  hl_spinlock_lock(&reg_lock);
  if (t->prev) t->prev->next = t->next;
  else threads_live = t->next;
  if (t->next) t->next->prev = t->prev;
  t->prev = NULL;
  t->next = threads_spare;
  threads_spare = t;
  hl_spinlock_unlock(&reg_lock);
}

/* ---- tcache=magazine ------------------------------------------------------- */

/* Sends up to n blocks from the head of bin back to the pools. */
static void bin_flush(hli_bin_t *bin, uint32_t n) {
  if (bin->count == 0 || n == 0) return;
  hl_spinlock_lock(tc.lock);
  hl_block_t *b = bin->head;
  uint32_t k = 0;
  for (; k < n && b; k++) {
    hl_block_t *next = b->next;
    hli_pools_free(tc.shared, b);
    b = next;
  }
  hl_spinlock_unlock(tc.lock);
  bin->head = b;
  hl_atomic_store_relaxed_u32(&bin->count, bin->count - k);
  (void)hl_atomic_faa_u64(&tc.flushes, 1);
}

static void mag_flush_all(hli_thread_t *t) {
  for (unsigned i = 0; i < tc.g.nclasses; i++) bin_flush(&t->bins[i], UINT32_MAX);
}

/* Another thread asked for the caches back (hl_alloc_collect). */
static inline void check_epoch(hli_thread_t *t) {
  uint64_t e = hl_atomic_load_relaxed_u64(&tc.epoch);
  if (HL_LIKELY(e == t->epoch)) return;
  t->epoch = e;
  mag_flush_all(t);
}

void *hli_mag_malloc_slow(size_t n) {
  hli_thread_t *t = hli_self;
  if (!t && !(t = thread_register())) {
    /* no memory even for a cache: serve from the pools directly */
    hl_spinlock_lock(tc.lock);
    void *p = hli_pools_malloc(tc.shared, n);
    hl_spinlock_unlock(tc.lock);
    return p;
  }
  check_epoch(t);
  unsigned idx = hl_size_class(&tc.g, n);
  hli_bin_t *bin = &t->bins[idx];
  uint32_t want = bin->max / 2 + 1, got = 0;
  hl_block_t *head = bin->head;
  hl_spinlock_lock(tc.lock);
  for (; got < want; got++) {
    hl_block_t *b = hli_pools_malloc(tc.shared, n);
    if (HL_UNLIKELY(!b)) break;
    b->next = head;
    head = b;
  }
  hl_spinlock_unlock(tc.lock);
  (void)hl_atomic_faa_u64(&tc.refills, 1);
  if (got == 0) return NULL;
  bin->head = head->next;
  hl_atomic_store_relaxed_u32(&bin->count, bin->count + got - 1);
  return head;
}

void hli_mag_free_slow(void *p) {
  hli_thread_t *t = hli_self;
  if (!t) {
    /* A thread without a cache (it never allocated, or it is exiting):
     * straight to the pools. */
    hl_spinlock_lock(tc.lock);
    hli_pools_free(tc.shared, p);
    hl_spinlock_unlock(tc.lock);
    return;
  }
  check_epoch(t);
  unsigned idx = hli_pool_of(tc.shared, p)->szidx;
  hli_bin_t *bin = &t->bins[idx];
  if (bin->count >= bin->max) bin_flush(bin, bin->max / 2 + 1);
  bool ok = hli_mag_try_free(p, idx);
  HL_ASSERT(ok);
  (void)ok;
}

/* ---- tcache=heap ------------------------------------------------------------ */

/* Frees the blocks other threads handed back. Owner only. */
static void heap_drain(hli_heap_t *hp) {
  hl_block_t *b = hl_atomic_xchg_ptr((void **)&hp->remote, NULL);
  uint64_t n = 0;
  while (b) {
    hl_block_t *next = b->next;
    hli_pools_free(&hp->pools, b);
    b = next;
    n++;
  }
  if (n) hl_atomic_store_relaxed_u64(&hp->remote_drained, hp->remote_drained + n);
}

/* Drains, releases the empty arenas, and reports whether no block is live. */
static bool heap_tidy(hli_heap_t *hp) {
  heap_drain(hp);
  hli_pools_trim(&hp->pools);
  return hli_pools_idle(&hp->pools) && hl_atomic_load_acquire_ptr((void **)&hp->remote) == NULL;
}

static hli_heap_t *heap_acquire(void) {
  hl_spinlock_lock(&reg_lock);
  hli_heap_t *hp = heaps_abandoned;
  if (hp) {
    heaps_abandoned = hp->next_list;
    tc.adoptions++;
  } else if ((hp = heaps_spare) != NULL) {
    heaps_spare = hp->next_list;
  }
  if (hp) hp->state = HLI_HEAP_OWNED;
  hl_spinlock_unlock(&reg_lock);
  if (!hp) {
    if (!(hp = registry_object(sizeof *hp))) return NULL;
    memset(hp, 0, sizeof *hp);
    if (hli_pools_init(&hp->pools, &tc.g, tc.budget, tc.decay_ns, tc.madvise) != 0) return NULL;
    hp->pools.owner = hp;
    hp->state = HLI_HEAP_OWNED;
    hl_spinlock_lock(&reg_lock);
    hp->next_all = heaps_all;
    heaps_all = hp;
    hl_spinlock_unlock(&reg_lock);
  }
  hp->next_list = NULL;
  return hp;
}

/* The calling thread gives hp up: spare if empty, abandoned otherwise. */
static void heap_release(hli_heap_t *hp) {
  bool idle = heap_tidy(hp);
  hl_spinlock_lock(&reg_lock);
  /* An idle heap has no live block, so nobody can push to its remote list. */
  if (idle) {
    hp->state = HLI_HEAP_SPARE;
    hp->next_list = heaps_spare;
    heaps_spare = hp;
  } else {
    hp->state = HLI_HEAP_ABANDONED;
    hp->next_list = heaps_abandoned;
    heaps_abandoned = hp;
  }
  hl_spinlock_unlock(&reg_lock);
}

static hli_heap_t *heap_self(void) {
  hli_heap_t *hp = hli_heap_self;
  if (HL_LIKELY(hp != NULL)) return hp;
  hli_thread_t *t = hli_self;
  if (!t && !(t = thread_register())) return NULL;
  if (!(hp = heap_acquire())) return NULL;
  t->heap = hp;
  hli_heap_self = hp;
  heap_drain(hp);   /* an adopted heap brings its remote frees */
  return hp;
}

void *hli_heap_malloc_slow(size_t n) {
  hli_heap_t *hp = heap_self();
  if (HL_UNLIKELY(!hp)) return NULL;
  hli_thread_t *t = hli_self;
  uint64_t e = hl_atomic_load_relaxed_u64(&tc.epoch);
  if (HL_UNLIKELY(e != t->epoch)) {
    t->epoch = e;
    heap_tidy(hp);
  }
  /* Running short: take back what other threads freed before growing. */
  if (hl_atomic_load_relaxed_ptr((void **)&hp->remote) != NULL) {
    heap_drain(hp);
    void *b = hli_pools_try_malloc(&hp->pools, n);
    if (b) return b;
  }
  return hli_pools_malloc_slow(&hp->pools, hl_size_class(&tc.g, n));
}

void hli_heap_free_slow(void *p, hl_arena_t *ao) {
  hli_heap_t *owner = ao->owner;
  HL_ASSERT(owner != NULL);
  if (owner == hli_heap_self) {
    hli_pools_free(&owner->pools, p);
    return;
  }
  /* The CAS is a full barrier, so a release: the owner's exchange must see
   * b->next, and whatever the freeing thread wrote into the block before. */
  hl_block_t *b = p;
  void *head;
  do {
    head = hl_atomic_load_relaxed_ptr((void **)&owner->remote);
    b->next = head;
  } while (!hl_atomic_cas_ptr((void **)&owner->remote, head, b));
  (void)hl_atomic_faa_u64(&tc.remote_frees, 1);
}

/* ---- thread exit, collect, statistics -------------------------------------- */

static void thread_exit(void *arg) {
  hli_thread_t *t = arg;
  if (tc.mode == HL_TCACHE_MAGAZINE) {
    mag_flush_all(t);
  } else if (t->heap) {
    heap_release(t->heap);
    t->heap = NULL;
  }
  hli_heap_self = NULL;
  hli_self = NULL;
  thread_unregister(t);
}

void hli_tcache_collect(void) {
  (void)hl_atomic_faa_u64(&tc.epoch, 1);
  hli_thread_t *t = hli_self;
  if (tc.mode == HL_TCACHE_MAGAZINE) {
    if (t) {
      t->epoch = hl_atomic_load_relaxed_u64(&tc.epoch);
      mag_flush_all(t);
    }
    hl_spinlock_lock(tc.lock);
    hli_pools_trim(tc.shared);
    hl_spinlock_unlock(tc.lock);
    return;
  }
  if (t && t->heap) {
    t->epoch = hl_atomic_load_relaxed_u64(&tc.epoch);
    heap_tidy(t->heap);
  }
  /* Abandoned heaps have no owner: the registry lock stands in for one. */
  hl_spinlock_lock(&reg_lock);
  hli_heap_t **link = &heaps_abandoned;
  while (*link) {
    hli_heap_t *hp = *link;
    if (heap_tidy(hp)) {
      *link = hp->next_list;
      hp->state = HLI_HEAP_SPARE;
      hp->next_list = heaps_spare;
      heaps_spare = hp;
    } else {
      link = &hp->next_list;
    }
  }
  hl_spinlock_unlock(&reg_lock);
}

/* Sums every instance. The heaps of running threads are read while their
 * owners may change them: call it when the threads are quiet (the runner
 * does, between phases); the counts of the magazines are exact whenever. */
void hli_tcache_stats(hl_alloc_stats_t *s) {
  hl_spinlock_lock(&reg_lock);
  if (tc.mode == HL_TCACHE_MAGAZINE) {
    for (hli_thread_t *t = threads_live; t; t = t->next)
      for (unsigned i = 0; i < tc.g.nclasses; i++) {
        uint64_t c = hl_atomic_load_relaxed_u32(&t->bins[i].count);
        s->tcache_blocks += c;
        s->tcache_bytes += c * hl_class_size(&tc.g, i);
      }
  } else {
    for (hli_heap_t *hp = heaps_all; hp; hp = hp->next_all) {
      hli_pools_stats(&hp->pools, s);
      s->heaps += 1;
      s->heaps_abandoned += hp->state == HLI_HEAP_ABANDONED;
      for (hl_block_t *b = hl_atomic_load_acquire_ptr((void **)&hp->remote); b; b = b->next)
        s->remote_pending++;
    }
  }
  for (hli_thread_t *t = threads_live; t; t = t->next) s->tcache_threads++;
  s->tcache_refills = hl_atomic_load_relaxed_u64(&tc.refills);
  s->tcache_flushes = hl_atomic_load_relaxed_u64(&tc.flushes);
  s->remote_frees = hl_atomic_load_relaxed_u64(&tc.remote_frees);
  s->heap_adoptions = tc.adoptions;
  hl_spinlock_unlock(&reg_lock);
}

void hli_tcache_fork_prepare(void) { hl_spinlock_lock(&reg_lock); }
void hli_tcache_fork_parent(void) { hl_spinlock_unlock(&reg_lock); }

/* The child has one thread, the one that forked: every other thread's cache
 * or heap belongs to a thread that does not exist there. Magazines of those
 * threads are lost to the child (their blocks stay counted in use); their
 * heaps become abandoned, for the child's next threads to adopt. */
void hli_tcache_fork_child(void) {
  hl_spinlock_init(&reg_lock);
  hli_thread_t *me = hli_self;
  threads_live = me;
  if (me) me->next = me->prev = NULL;
  heaps_abandoned = NULL;
  for (hli_heap_t *hp = heaps_all; hp; hp = hp->next_all) {
    if (hp->state == HLI_HEAP_SPARE || (me && hp == me->heap)) continue;
    hp->state = HLI_HEAP_ABANDONED;
    hp->next_list = heaps_abandoned;
    heaps_abandoned = hp;
  }
}

/* For tests, after every other thread has exited: unmaps every heap and
 * forgets the registry (the calling thread's cache included). */
void hli_tcache_reset(void) {
  if (tc.mode == HL_TCACHE_NONE) return;
  for (hli_heap_t *hp = heaps_all; hp; hp = hp->next_all) hli_pools_destroy(&hp->pools);
  /* the registry objects stay mapped (few, and tests only) */
  heaps_all = heaps_abandoned = heaps_spare = NULL;
  threads_live = threads_spare = NULL;
  hli_self = NULL;
  hli_heap_self = NULL;
  (void)pthread_setspecific(exit_key, NULL);
  memset(&tc, 0, sizeof tc);
}
