/* Per-thread caches in front of the pools: the heaps (tcache.c has what the
 * two designs share, thread exit, adoption's registry and collect among them).
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
 */
#include "tcache_internal.h"

#include <string.h>

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
bool hli_heap_tidy(hli_heap_t *hp) {
  heap_drain(hp);
  hli_pools_trim(&hp->pools);
  return hli_pools_idle(&hp->pools) && hl_atomic_load_acquire_ptr((void **)&hp->remote) == NULL;
}

static hli_heap_t *heap_acquire(void) {
  hl_spinlock_lock(&hli_tc_reg_lock);
  hli_heap_t *hp = hli_tc_heaps_abandoned;
  if (hp) {
    hli_tc_heaps_abandoned = hp->next_list;
    hli_tc.adoptions++;
  } else if ((hp = hli_tc_heaps_spare) != NULL) {
    hli_tc_heaps_spare = hp->next_list;
  }
  if (hp) hp->state = HLI_HEAP_OWNED;
  hl_spinlock_unlock(&hli_tc_reg_lock);
  if (!hp) {
    if (!(hp = hli_tc_registry_object(sizeof *hp))) return NULL;
    memset(hp, 0, sizeof *hp);
    if (hli_pools_init(&hp->pools, &hli_tc.g, &hli_tc.heap_policy) != 0) return NULL;
    hp->pools.owner = hp;
    hp->pools.tag_bits = hli_tc.heap_tag_bits;
    hp->state = HLI_HEAP_OWNED;
    hl_spinlock_lock(&hli_tc_reg_lock);
    hp->next_all = hli_tc_heaps_all;
    hli_tc_heaps_all = hp;
    hl_spinlock_unlock(&hli_tc_reg_lock);
  }
  hp->next_list = NULL;
  return hp;
}

/* The calling thread gives hp up: spare if empty, abandoned otherwise. */
void hli_heap_release(hli_heap_t *hp) {
  bool idle = hli_heap_tidy(hp);
  hl_spinlock_lock(&hli_tc_reg_lock);
  /* An idle heap has no live block, so nobody can push to its remote list. */
  if (idle) {
    hp->state = HLI_HEAP_SPARE;
    hp->next_list = hli_tc_heaps_spare;
    hli_tc_heaps_spare = hp;
  } else {
    hp->state = HLI_HEAP_ABANDONED;
    hp->next_list = hli_tc_heaps_abandoned;
    hli_tc_heaps_abandoned = hp;
  }
  hl_spinlock_unlock(&hli_tc_reg_lock);
}

static hli_heap_t *heap_self(void) {
  hli_heap_t *hp = hli_heap_self;
  if (HL_LIKELY(hp != &hli_no_heap)) return hp;
  hli_thread_t *t = hli_tc_thread_self();
  if (!t && !(t = hli_tc_thread_register())) return NULL;
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
  uint64_t e = hl_atomic_load_relaxed_u64(&hli_tc.epoch);
  if (HL_UNLIKELY(e != t->epoch)) {
    t->epoch = e;
    hli_heap_tidy(hp);
  }
  /* Running short: take back what other threads freed before growing. */
  if (hl_atomic_load_relaxed_ptr((void **)&hp->remote) != NULL) heap_drain(hp);
  /* A heap just adopted has partly used pools of its own, and a tidy or a
   * drain may have refilled this class: a fresh pool only when none has a
   * block (hli_pools_malloc_slow's precondition). */
  void *b = hli_pools_try_malloc(&hp->pools, n);
  if (b) return b;
  return hli_pools_malloc_slow(&hp->pools, hl_size_class(&hli_tc.g, n));
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
  (void)hl_atomic_faa_u64(&hli_tc.remote_frees, 1);
}
