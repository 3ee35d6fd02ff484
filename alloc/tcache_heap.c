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
 *
 * Abandoned heaps (a thread that exits with live blocks) are reclaimed by
 * the frees that empty them: see "Abandoned heaps" below.
 *
 * Batched remote frees. A thread with a cache of its own collects its
 * frees into other heaps per owner, in HLI_RBATCH_SLOTS (4) chains of up
 * to HLI_RBATCH_MAX (16) blocks linked through their first word, and pushes
 * a chain with one compare-and-swap when it is full, when a fifth owner
 * needs its slot (round robin), at thread exit and at collect (the
 * caller's at once, the others' at their next remote free or malloc slow
 * path after the epoch moved). A producer/consumer pair thus pays one CAS
 * on the owner's contended line per 16 frees rather than per free. The
 * idea is mimalloc's (Leijen, Zorn and de Moura 2019): a free that is not
 * the owner's is deferred and handed over in bulk, there through the page's
 * thread-free list and the heap's delayed-free list, here through a
 * thread-local chain per owner and the owner's one remote stack. The cost:
 * up to 64 blocks per thread are freed for the program and not yet for the
 * owner (counted in use by it, and by remote_frees only once pushed); a
 * thread that frees and then blocks for good holds them until it exits. A
 * pushed chain is one push to the rules below (the pusher that finds the
 * stack empty and the heap abandoned drains it), so an abandoned heap is
 * never left holding a chain. A free into a heap seen abandoned is not
 * batched (its own path, below). A thread that has never allocated (a
 * consumer that only frees) registers a thread object at its first remote
 * free, for its batches and for the exit hook that pushes them.
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
  if (hp) {
    hl_atomic_store_relaxed_u32(&hp->state, HLI_HEAP_OWNED);
    hp->pools.keep_last_empty = hli_tc.heap_policy.keep_last_empty;
  }
  hl_spinlock_unlock(&hli_tc_reg_lock);
  if (!hp) {
    if (!(hp = hli_tc_registry_object(sizeof *hp))) return NULL;
    memset(hp, 0, sizeof *hp);
    if (hli_pools_init(&hp->pools, &hli_tc.g, &hli_tc.heap_policy) != 0) return NULL;
    hp->pools.owner = hp;
    hp->pools.tag_bits = hli_tc.heap_tag_bits;
    hl_atomic_store_relaxed_u32(&hp->state, HLI_HEAP_OWNED);
    hl_spinlock_lock(&hli_tc_reg_lock);
    hp->next_all = hli_tc_heaps_all;
    hli_tc_heaps_all = hp;
    hl_spinlock_unlock(&hli_tc_reg_lock);
  }
  hp->next_list = NULL;
  return hp;
}

/* ---- Abandoned heaps --------------------------------------------------------
 *
 * A thread that exits with live blocks abandons its heap: no thread owns it,
 * and whoever holds hli_tc_reg_lock may use its pools (the registry lock
 * stands in for the owner). Its blocks keep coming back through its remote
 * stack, and the free that brings back its last live block must give its
 * memory back, without waiting for a new thread to adopt it or for
 * hl_alloc_collect(). This is mimalloc's idea (Leijen, Zorn and de Moura
 * 2019): a segment whose thread has exited is abandoned, and a thread that
 * frees into it may reclaim it on the spot (mimalloc takes the segment over;
 * here a thread owns one heap, so the freeing thread only drains it on the
 * heap's behalf), while _mi_abandoned_reclaim_all sweeps the rest (here
 * hli_tcache_collect).
 *
 * The rule. A thread that frees into another heap and sees it abandoned
 * takes the registry lock and, if the heap is still abandoned there, frees
 * the block straight into its pools (draining the remote stack first if it
 * is not empty). Otherwise (the heap looked owned) it pushes the block onto
 * the remote stack; if the stack was empty before the push and the heap is
 * abandoned after it, that thread drains the stack under the lock (if the
 * heap is still abandoned there). Either way, when the heap then holds no
 * block, its empty arenas go back to the OS and it becomes spare. Pushes
 * onto a non-empty stack take no lock: the block below theirs is still
 * there, and whoever takes it (the pusher that found the stack empty, the
 * owner, the thread that abandons it, or collect) takes theirs with it, the
 * exchange taking the whole stack. A free into an abandoned heap thus costs
 * a lock and an unlock of the registry lock instead of a compare-and-swap,
 * and does the owner's work (the local free, the arena release) at once.
 *
 * Why no block is stranded on the stack of an abandoned heap. The state
 * changes only under the registry lock. The abandoning thread stores
 * ABANDONED, then (full fence) drains; the pusher pushes (its compare-and-
 * swap, a full barrier in hl_atomic.h's contract), then loads the state:
 * one of the two sees the other's write (Dekker). If the pusher read OWNED,
 * the abandoner's drain comes after its push and takes the block; if it
 * read ABANDONED, it drains itself. A heap adopted in the meantime (heap_acquire sets OWNED under the
 * same lock) is drained by its new owner, so the pusher, finding OWNED under
 * the lock, does nothing.
 *
 * Invariants, under hli_tc_reg_lock with no push in flight: a heap on the
 * abandoned list has a live block (!hli_pools_idle) and an empty remote
 * stack; a spare heap has no block and no arena beyond the empty ones a
 * trim keeps (none). Hence blocks_in_use counts no block of a dead thread
 * that came back, and heaps_abandoned counts only heaps that still hold
 * live blocks. (A fork's child abandons the other threads' heaps as they
 * are, remote stacks and all: hli_tcache_fork_child. The next free into
 * one, or a collect, restores the invariant.)
 */

/* Takes hp off the abandoned list and onto the spare one. Registry lock
 * held; hp is idle and trimmed. */
static void heap_make_spare_locked(hli_heap_t *hp, bool on_abandoned_list) {
  if (on_abandoned_list) {
    hli_heap_t **link = &hli_tc_heaps_abandoned;
    while (*link != hp) link = &(*link)->next_list;
    *link = hp->next_list;
  }
  hl_atomic_store_relaxed_u32(&hp->state, HLI_HEAP_SPARE);
  hp->next_list = hli_tc_heaps_spare;
  hli_tc_heaps_spare = hp;
}

/* The calling thread gives hp up: spare if empty, abandoned otherwise. */
void hli_heap_release(hli_heap_t *hp) {
  /* no pool kept empty for an owner that is going (pool-retire=keep): the
   * tidy's trim gives back those kept so far, and later frees keep none */
  hp->pools.keep_last_empty = false;
  hli_heap_tidy(hp);   /* the bulk of the remote stack, without the lock */
  hl_spinlock_lock(&hli_tc_reg_lock);
  hl_atomic_store_relaxed_u32(&hp->state, HLI_HEAP_ABANDONED);
  /* Paired with the push's compare-and-swap in hli_heap_free_slow: a pusher
   * that read OWNED pushed before the drain below, which takes its block. */
  hl_atomic_fence_seq_cst();
  if (hli_heap_tidy(hp)) {
    /* An idle heap has no live block, so nobody can push to its remote list. */
    heap_make_spare_locked(hp, false);
  } else {
    hp->next_list = hli_tc_heaps_abandoned;
    hli_tc_heaps_abandoned = hp;
  }
  hl_spinlock_unlock(&hli_tc_reg_lock);
}

/* Under the registry lock, hp abandoned: makes hp spare, its empty arenas
 * released, when no block of it is live any more. */
static void heap_reclaim_if_idle_locked(hli_heap_t *hp) {
  if (hli_pools_idle(&hp->pools) && hl_atomic_load_acquire_ptr((void **)&hp->remote) == NULL) {
    hli_pools_trim(&hp->pools);
    heap_make_spare_locked(hp, true);
    hli_tc.reclaims++;
  }
}

/* The pusher that found hp's stack empty, hp abandoned: drains it on hp's
 * behalf and reclaims hp once no block of it is live. */
static HL_NOINLINE void heap_reclaim_on_free(hli_heap_t *hp) {
  hl_spinlock_lock(&hli_tc_reg_lock);
  /* adopted since (its owner drains), or already reclaimed: nothing to do */
  if (hl_atomic_load_relaxed_u32(&hp->state) == HLI_HEAP_ABANDONED) {
    heap_drain(hp);
    heap_reclaim_if_idle_locked(hp);
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

void hli_heap_catch_up(hli_thread_t *t) {
  uint64_t e = hl_atomic_load_relaxed_u64(&hli_tc.epoch);
  if (HL_UNLIKELY(e != t->epoch)) {
    t->epoch = e;
    /* the lists first: their blocks go home, and the tidy trims after */
    if (hli_tc.mode == HL_TCACHE_HEAP_MAGAZINE) hli_hmag_flush_all(t);
    if (t->heap) hli_heap_tidy(t->heap);
  }
  if (HL_UNLIKELY(e != t->rbatch_epoch)) hli_heap_batches_flush(t);
}

void *hli_heap_malloc_slow(size_t n) {
  hli_heap_t *hp = heap_self();
  if (HL_UNLIKELY(!hp)) return NULL;
  hli_heap_catch_up(hli_self);   /* registered by heap_self */
  /* Running short: take back what other threads freed before growing. */
  if (hl_atomic_load_relaxed_ptr((void **)&hp->remote) != NULL) heap_drain(hp);
  /* A heap just adopted has partly used pools of its own, and a tidy or a
   * drain may have refilled this class: a fresh pool only when none has a
   * block (hli_pools_malloc_slow's precondition). */
  void *b = hli_pools_try_malloc(&hp->pools, n);
  if (b) return b;
  return hli_pools_malloc_slow(&hp->pools, hl_size_class(&hli_tc.g, n));
}

/* Pushes the chain first..last (linked through next) onto hp's remote
 * stack with one CAS; the pusher that finds the stack empty and hp
 * abandoned drains it (the rule above). */
static inline void heap_push_chain(hli_heap_t *hp, hl_block_t *first, hl_block_t *last) {
  /* The CAS is a full barrier, so a release: the owner's exchange must see
   * every next of the chain, and whatever the freeing thread wrote into the
   * blocks before. */
  void *head;
  do {
    head = hl_atomic_load_relaxed_ptr((void **)&hp->remote);
    last->next = head;
  } while (!hl_atomic_cas_ptr((void **)&hp->remote, head, first));
  /* counted where it is drained (remote_drained), not here: an increment
   * of one counter shared by every freeing thread cost each remote free a
   * second atomic instruction on a line all of them write */
  if (head != NULL) return;   /* whoever takes the block below takes b too */
  /* The CAS is also a full barrier before this load (hl_atomic.h: every
   * RMW is, ck brackets it with fences on RMO machines); paired with the
   * fence in hli_heap_release after it stores ABANDONED: either its drain
   * comes after this push, or this load sees ABANDONED. */
  if (HL_UNLIKELY(hl_atomic_load_relaxed_u32(&hp->state) == HLI_HEAP_ABANDONED))
    heap_reclaim_on_free(hp);
}

static inline void heap_push_remote(hli_heap_t *hp, void *p) {
  heap_push_chain(hp, (hl_block_t *)p, (hl_block_t *)p);
}

/* ---- Batched remote frees (the top) ---------------------------------------- */

static void batch_push(hli_rbatch_t *b) {
  if (b->n) heap_push_chain(b->owner, b->head, b->tail);
  b->owner = NULL;
  b->head = b->tail = NULL;
  b->n = 0;
}

void hli_heap_batches_flush(hli_thread_t *t) {
  for (unsigned i = 0; i < HLI_RBATCH_SLOTS; i++) batch_push(&t->rbatch[i]);
  t->rbatch_epoch = hl_atomic_load_relaxed_u64(&hli_tc.epoch);
}

/* p, a block of owner's (not t's heap, not seen abandoned), into t's batch
 * for owner. */
static void heap_free_batched(hli_thread_t *t, hli_heap_t *owner, void *p) {
  if (HL_UNLIKELY(hl_atomic_load_relaxed_u64(&hli_tc.epoch) != t->rbatch_epoch))
    hli_heap_batches_flush(t);   /* a collect asked for everything back */
  hli_rbatch_t *b = NULL, *free_slot = NULL;
  for (unsigned i = 0; i < HLI_RBATCH_SLOTS; i++) {
    if (t->rbatch[i].owner == owner) {
      b = &t->rbatch[i];
      break;
    }
    if (!free_slot && t->rbatch[i].owner == NULL) free_slot = &t->rbatch[i];
  }
  if (!b) {
    b = free_slot;
    if (!b) {   /* every slot taken by another owner: the next in turn goes */
      b = &t->rbatch[t->rbatch_next++ % HLI_RBATCH_SLOTS];
      batch_push(b);
    }
    b->owner = owner;
  }
  hl_block_t *blk = p;
  blk->next = b->head;
  b->head = blk;
  if (!b->tail) b->tail = blk;
  if (++b->n == HLI_RBATCH_MAX) batch_push(b);
}

/* A free into hp, seen abandoned before the push: frees p straight into its
 * pools under the registry lock (no push, no drain of an empty stack), and
 * reclaims hp if p was its last live block. If hp was adopted in between,
 * pushes as usual. A tail call from hli_heap_free_slow, so that the push
 * path saves no register. */
static HL_NOINLINE void heap_free_abandoned(hli_heap_t *hp, void *p) {
  hl_spinlock_lock(&hli_tc_reg_lock);
  bool abandoned = hl_atomic_load_relaxed_u32(&hp->state) == HLI_HEAP_ABANDONED;
  if (abandoned) {
    if (hl_atomic_load_relaxed_ptr((void **)&hp->remote) != NULL) heap_drain(hp);
    hli_pools_free(&hp->pools, p);
    hl_atomic_add_relaxed_u64(&hli_tc.remote_frees, 1);   /* not drained: counted here */
    heap_reclaim_if_idle_locked(hp);
  }
  hl_spinlock_unlock(&hli_tc_reg_lock);
  if (!abandoned) heap_push_remote(hp, p);
}

void hli_heap_free_slow(void *p, hl_arena_t *ao) {
  hli_heap_t *owner = ao->owner;
  HL_ASSERT(owner != NULL);
  if (owner == hli_heap_self) {
    hli_pools_free(&owner->pools, p);
    return;
  }
  /* Seen abandoned (a stale OWNED only sends the block down the push path,
   * which heap_push_remote makes safe). */
  if (HL_UNLIKELY(hl_atomic_load_relaxed_u32(&owner->state) == HLI_HEAP_ABANDONED)) {
    heap_free_abandoned(owner, p);
    return;
  }
  /* A thread that only frees (a consumer) gets a thread object for its
   * batches at its first remote free; without one (no memory), a push. */
  hli_thread_t *t = hli_self;
  if (HL_UNLIKELY(t == &hli_no_thread) && !(t = hli_tc_thread_register())) {
    heap_push_remote(owner, p);
    return;
  }
  heap_free_batched(t, owner, p);
}
