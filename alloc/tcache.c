/* Per-thread caches in front of the pools (tcache=magazine, tcache=heap).
 *
 * Two designs, so that a researcher can compare them on one workload; the
 * baseline, tcache=none, is the shared instance behind one lock (alloc.c).
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

hli_thread_t hli_no_thread;
hli_heap_t hli_no_heap;
__thread hli_thread_t *hli_self __attribute__((tls_model(HLI_TLS_MODEL))) = &hli_no_thread;
__thread hli_heap_t *hli_heap_self __attribute__((tls_model(HLI_TLS_MODEL))) = &hli_no_heap;

/* The calling thread's cache, or NULL when it has none yet. */
static inline hli_thread_t *thread_self(void) {
  hli_thread_t *t = hli_self;
  return t != &hli_no_thread ? t : NULL;
}

static struct {
  hl_tcache_t mode;
  hl_pools_t *shared;             /* magazine: the pools behind the lock */
  hl_spinlock_t *lock;
  hl_geometry_t g;
  /* every heap's pools; keep_bytes is also a thread's budget (a magazine's
   * bytes of free blocks) */
  hli_pools_policy_t heap_policy;
  uintptr_t heap_tag_bits;        /* for every heap's pools: its tags' free path */
  uint32_t batch[HL_MAX_CLASSES];  /* magazine: blocks per refill or flush */
  uint32_t cap[HL_MAX_CLASSES];    /* magazine: the largest max, budget / size */
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
                    const hl_geometry_t *g, const hli_pools_policy_t *heap_policy,
                    uintptr_t heap_tag_bits) {
  HL_ASSERT(mode != HL_TCACHE_NONE);
  if (pthread_once(&exit_key_once, make_exit_key) != 0) return -EAGAIN;
  tc.mode = mode;
  tc.shared = shared;
  tc.lock = lock;
  tc.g = *g;
  tc.heap_policy = *heap_policy;
  tc.heap_tag_bits = heap_tag_bits;
  for (unsigned i = 0; i < g->nclasses; i++) {
    size_t size = hl_class_size(g, i);
    size_t b = 8192 / size, cap = heap_policy->keep_bytes / size;
    tc.batch[i] = (uint32_t)(b < 2 ? 2 : b > 64 ? 64 : b);
    tc.cap[i] = (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap);
  }
  return 0;
}

/* ---- threads -------------------------------------------------------------- */

/* Every bound back to its start (1, or 0 where one block is over budget). */
static void bounds_reset(hli_thread_t *t) {
  t->max_bytes = 0;
  for (unsigned i = 0; i < tc.g.nclasses; i++) {
    uint32_t m = tc.cap[i] > 0 ? 1 : 0;
    hl_atomic_store_relaxed_u32(&t->bins[i].max, m);
    t->overages[i] = 0;
    t->max_bytes += m * hl_class_size(&tc.g, i);
  }
}

static hli_thread_t *thread_register(void) {
  hl_spinlock_lock(&reg_lock);
  hli_thread_t *t = threads_spare;
  if (t) threads_spare = t->next;
  hl_spinlock_unlock(&reg_lock);
  if (!t && !(t = registry_object(sizeof *t))) return NULL;
  memset(t, 0, sizeof *t);
  bounds_reset(t);
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
  bounds_reset(t);
}

/* Another thread asked for the caches back (hl_alloc_collect). */
static inline void check_epoch(hli_thread_t *t) {
  uint64_t e = hl_atomic_load_relaxed_u64(&tc.epoch);
  if (HL_LIKELY(e == t->epoch)) return;
  t->epoch = e;
  mag_flush_all(t);
}

/* Moves class idx's bound by delta blocks (the caller keeps it within
 * 0..cap and flushes what a lower bound no longer admits). */
static void bound_move(hli_thread_t *t, unsigned idx, int64_t delta) {
  hli_bin_t *bin = &t->bins[idx];
  hl_atomic_store_relaxed_u32(&bin->max, (uint32_t)((int64_t)bin->max + delta));
  t->max_bytes = (size_t)((int64_t)t->max_bytes + delta * (int64_t)hl_class_size(&tc.g, idx));
  t->overages[idx] = 0;
}

/* Makes room in the budget for `bytes` more of bound by cutting the unused
 * bound (max - count) of other classes, a batch at a time, round robin.
 * Whether the room is there now. */
static bool budget_room(hli_thread_t *t, unsigned idx, size_t bytes) {
  unsigned n = tc.g.nclasses;
  size_t budget = tc.heap_policy.keep_bytes;
  for (unsigned tries = 0; t->max_bytes + bytes > budget && tries < n; tries++) {
    unsigned v = t->steal_cursor;
    t->steal_cursor = v + 1 < n ? v + 1 : 0;
    if (v == idx) continue;
    hli_bin_t *bin = &t->bins[v];
    uint32_t spare = bin->max - bin->count;
    if (spare <= 1) continue;
    uint32_t cut = spare - 1 < tc.batch[v] ? spare - 1 : tc.batch[v];
    bound_move(t, v, -(int64_t)cut);
  }
  return t->max_bytes + bytes <= budget;
}

/* Slow start, on a refill of class idx: raise its bound. */
static void bound_grow(hli_thread_t *t, unsigned idx) {
  uint32_t max = t->bins[idx].max, b = tc.batch[idx];
  uint32_t grow = max < b ? 1 : b;
  if (grow > tc.cap[idx] - max) grow = tc.cap[idx] - max;
  if (grow == 0) return;
  size_t size = hl_class_size(&tc.g, idx);
  if (budget_room(t, idx, grow * size)) bound_move(t, idx, grow);
}

void *hli_mag_malloc_slow(size_t n) {
  hli_thread_t *t = thread_self();
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
  bound_grow(t, idx);
  /* a batch, or the bound if lower; one block at least (the caller's) */
  uint32_t want = bin->max < tc.batch[idx] ? bin->max : tc.batch[idx], got = 0;
  if (want == 0) want = 1;
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

void hli_mag_free_slow(void *p, uintptr_t tag) {
  hli_thread_t *t = thread_self();
  if (!t) {
    /* A thread without a cache (it never allocated, or it is exiting):
     * straight to the pools. */
    hl_spinlock_lock(tc.lock);
    hli_pools_free(tc.shared, p);
    hl_spinlock_unlock(tc.lock);
    return;
  }
  check_epoch(t);
  unsigned idx = hli_tag_class(tag);
  hli_bin_t *bin = &t->bins[idx];
  if (bin->count >= bin->max) {
    uint32_t b = tc.batch[idx];
    bin_flush(bin, b);
    /* tcmalloc's ListTooLong: a list that keeps overflowing gives up a
     * batch of bound, which the budget can lend to another class */
    if (bin->max > b && ++t->overages[idx] > 3) bound_move(t, idx, -(int64_t)b);
    if (bin->count >= bin->max) bin_flush(bin, bin->count - bin->max + 1);
  }
  if (bin->count < bin->max) {
    bool ok = hli_bin_push(bin, p);
    HL_ASSERT(ok);
    (void)ok;
    return;
  }
  /* a bound of 0: the class is over budget even for one block */
  hl_spinlock_lock(tc.lock);
  hli_pools_free(tc.shared, p);
  hl_spinlock_unlock(tc.lock);
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
    if (hli_pools_init(&hp->pools, &tc.g, &tc.heap_policy) != 0) return NULL;
    hp->pools.owner = hp;
    hp->pools.tag_bits = tc.heap_tag_bits;
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
  if (HL_LIKELY(hp != &hli_no_heap)) return hp;
  hli_thread_t *t = thread_self();
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
  hli_thread_t *t = hli_self;   /* registered by heap_self */
  uint64_t e = hl_atomic_load_relaxed_u64(&tc.epoch);
  if (HL_UNLIKELY(e != t->epoch)) {
    t->epoch = e;
    heap_tidy(hp);
  }
  /* Running short: take back what other threads freed before growing. */
  if (hl_atomic_load_relaxed_ptr((void **)&hp->remote) != NULL) heap_drain(hp);
  /* A heap just adopted has partly used pools of its own, and a tidy or a
   * drain may have refilled this class: a fresh pool only when none has a
   * block (hli_pools_malloc_slow's precondition). */
  void *b = hli_pools_try_malloc(&hp->pools, n);
  if (b) return b;
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
  hli_heap_self = &hli_no_heap;
  hli_self = &hli_no_thread;
  thread_unregister(t);
}

void hli_tcache_collect(void) {
  (void)hl_atomic_faa_u64(&tc.epoch, 1);
  hli_thread_t *t = thread_self();
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
  hli_thread_t *me = thread_self();
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
  hli_self = &hli_no_thread;
  hli_heap_self = &hli_no_heap;
  (void)pthread_setspecific(exit_key, NULL);
  memset(&tc, 0, sizeof tc);
}
