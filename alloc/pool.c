/* The object allocator: arenas > pools > blocks.
 *
 * The design of CPython's Objects/obmalloc.c (Vladimir Marangozov's pymalloc,
 * 1999-2002; the arena ordering and nfp2lasta of CPython 3.8; the radix tree
 * of 3.10), written anew for heaplab, with a runtime geometry and a
 * hysteresis on arena release.
 *
 *   arena  arena_size bytes from mmap, aligned to arena_size, cut into
 *          pools_per_arena pools. Its descriptor (hl_arena_t) lives outside,
 *          in memory this file maps for descriptors, so that an arena's pages
 *          can be dropped whole.
 *   pool   pool_size bytes, pool-aligned, serving one size class. A header
 *          (hl_pool_t), then blocks of that size. With colours
 *          (hl_geometry_colour, --pool-colour), the header sits a few cache
 *          lines in, and the blocks before it are threaded onto the free
 *          list when the pool is set up.
 *   block  what malloc returns. A free block's first word links it into its
 *          pool's free list.
 *
 * Size classes (alignment A = 16, threshold 512; the `modern` geometry):
 *
 *   request bytes   block size   class idx
 *   ------------------------------------------
 *      1 -  16          16          0
 *     17 -  32          32          1
 *     33 -  48          48          2
 *     ...              ...        ...
 *    497 - 512         512         31
 *    0, 513 and up: the raw layer (hl_raw_*), not the pools, unless
 *    --large=medium adds classes above the threshold (size_class.c):
 *    513 - 576 -> 576 (idx 32) ... 1921 - 2048 -> 2048 (idx 47) in pools,
 *    2049 - 2304 -> 2304 (idx 48) ... 61441 - 65536 -> 65536 (idx 87) in spans
 *
 *   `classic` (A = 8, threshold 256) has the same table in steps of 8:
 *   1-8 -> 8 (idx 0) ... 249-256 -> 256 (idx 31).
 *
 * A pool's life (the state machine of obmalloc.c):
 *
 *            first allocation of a class with no used pool
 *   empty  ------------------------------------------------>  used
 *   (on its arena's        ^                                  (on usedpools[idx])
 *    freepools)            |  last block freed                 |        ^
 *                          +-----------------------------------+        |
 *                                                 last free block taken  | a block
 *                                                 and no virgin space    | freed
 *                                                                v       |
 *                                                                 full --+
 *                                                          (on no list)
 *
 * Allocation takes the head of usedpools[idx]: pop its free list; when the
 * list runs dry, cut the pool's next virgin blocks (from nextoffset, those
 * that start in the same OS page: a fresh pool is never written ahead of
 * use by more than that page, and its pages are touched in order; obmalloc
 * cuts one block at a time, mimalloc a page's worth), and when there are
 * none, the pool is full and leaves the list.
 * With no used pool, take a free pool from the first usable arena (the one
 * with the fewest free pools), mapping a new arena only when no arena has a
 * free pool. Freeing pushes the block on its pool's list; a full pool comes
 * back on usedpools (at the back; at the front with pool-requeue=front, as in
 * obmalloc: usedpools_requeue); an empty pool goes back to its arena, which
 * moves toward the end of the sorted list (nfp2lasta keeps that O(1)); an
 * arena whose pools are all free is released, unless fewer than keep_empty
 * empty arenas are kept.
 *
 * Why keep empty arenas: a program that frees everything and allocates it
 * again in rounds (alloc-lifo) would otherwise unmap and map the same arenas
 * every round and pay a page fault per page per round; keep_empty = 0 is
 * CPython's behaviour, so both can be measured. hli_pools_trim (called by
 * hl_alloc_collect after a full collection) releases them.
 *
 * Decay (the purge delay of jemalloc's dirty_decay_ms and mimalloc's
 * purge_delay, simplified): a fixed budget cannot serve both a program whose
 * rounds span 25 MiB and a program that frees 250 MiB once and wants it back
 * in the OS. So beyond the keep_empty arenas that stay indefinitely, an
 * empty arena stays for decay_ns after it became empty, and is released at
 * the first slow path after that: here, an arena event (an arena becoming
 * empty, a pool taken while more than keep_empty arenas are empty) or a
 * pool becoming empty; in alloc.c and preload.c, any request the pools do
 * not serve (hli_pools_decay). decay_pending says whether an arena waits,
 * so that those paths read the clock only then. The empty arenas sit at the
 * tail of their kind's usable_arenas, newest first, so the oldest of a kind
 * is the tail, found through nfp2lasta[units] in O(1), and the oldest of
 * all is the oldest of those few tails. No thread and no timer: an
 * allocator left idle keeps its empty arenas until hl_alloc_collect, as
 * mimalloc without its background purge does.
 *
 * With release=madvise, a released arena keeps its address range (and its
 * radix entry): its pages are dropped with MADV_DONTNEED and the arena is
 * reused, zero-filled by the kernel, before any new mapping.
 *
 * Spans (--large=medium's classes above an eighth of a pool; the idea of
 * mimalloc's pages of several sizes in a segment and of tcmalloc's spans of
 * pages, kept to obmalloc's shape). A span is 2^k contiguous pools of an
 * arena serving one class as one pool does: the same header (hl_pool_t) at
 * its start, the same free list, virgin offset, usedpools list and state
 * machine, so the fast paths, the thread caches and the remote frees
 * cannot tell a span from a pool. What differs is the unit an arena is cut
 * into: every arena serves one kind (hl_arena_t.kind: pools, or spans of
 * 2^kind pools), and each kind has its own sorted list of usable arenas
 * (hli_arena_set_t, pool.h), so that a span is always a whole, aligned unit
 * (no search for a run of free pools, no fragmentation of an arena's pools
 * between kinds). Every radix grain of a span names its header, so free()
 * still finds the header and class in one lookup; spans are at least a
 * grain, so no span shares one. Where this file says pool, read unit.
 * Empty arenas of every kind share keep_empty and the decay, but for one
 * per span kind in use (excess(), below).
 */
#include "pool.h"

#include "hl_probe.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* Coarse (a few ms): decay is measured in tens of ms, and this is a vDSO
 * read without a fence. */
static uint64_t coarse_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- arena descriptors ------------------------------------------------------
 * Mapped a page at a time, never returned: there are few (one per arena). */
static hl_arena_t *arena_object(hl_pools_t *h) {
  if (!h->spare_objects) {
    size_t page = hl_os_page_size();
    hl_arena_t *chunk = hl_os_map_aligned(page, page);
    if (!chunk) return NULL;
    size_t n = page / sizeof(hl_arena_t);
    for (size_t i = 0; i < n; i++) {
      chunk[i].nextarena = h->spare_objects;
      h->spare_objects = &chunk[i];
    }
    h->overhead_bytes += page;
  }
  hl_arena_t *ao = h->spare_objects;
  h->spare_objects = ao->nextarena;
  memset(ao, 0, sizeof *ao);
  return ao;
}

static void all_link(hl_pools_t *h, hl_arena_t *ao) {
  ao->allprev = NULL;
  ao->allnext = h->all_arenas;
  if (h->all_arenas) h->all_arenas->allprev = ao;
  h->all_arenas = ao;
}

static void all_unlink(hl_pools_t *h, hl_arena_t *ao) {
  if (ao->allprev) ao->allprev->allnext = ao->allnext;
  else h->all_arenas = ao->allnext;
  if (ao->allnext) ao->allnext->allprev = ao->allprev;
}

/* ---- the sorted list of usable arenas ----------------------------------------
 * Invariant: usable_arenas holds exactly the arenas with nfreepools > 0, in
 * ascending nfreepools; nfp2lasta[k] is the last of those with k. */
static void usable_unlink(hli_arena_set_t *s, hl_arena_t *ao) {
  unsigned nf = ao->nfreepools;
  if (s->nfp2lasta[nf] == ao)
    s->nfp2lasta[nf] =
        (ao->prevarena && ao->prevarena->nfreepools == nf) ? ao->prevarena : NULL;
  if (ao->prevarena) ao->prevarena->nextarena = ao->nextarena;
  else s->usable_arenas = ao->nextarena;
  if (ao->nextarena) ao->nextarena->prevarena = ao->prevarena;
  ao->nextarena = ao->prevarena = NULL;
}

static void release_arena(hl_pools_t *h, hl_arena_t *ao) {
  HL_ASSERT(ao->nfreepools == ao->ntotalpools);
  all_unlink(h, ao);
  h->arenas_reclaimed++;
  h->arenas_current--;
  if (h->release_madvise && hl_os_discard((void *)ao->base, h->g.arena_size) == 0) {
    HL_PROBE(arena_unmap, ao->base, h->g.arena_size, 1);
    /* still ours in the radix tree; reused before any new mapping */
    ao->discarded = true;
    ao->nextarena = h->sets[ao->kind].dormant;
    h->sets[ao->kind].dormant = ao;
    h->arenas_discarded++;
    return;
  }
  hl_radix_clear(ao->base, h->g.arena_size);
  hl_os_unmap((void *)ao->base, h->g.arena_size);
  HL_PROBE(arena_unmap, ao->base, h->g.arena_size, 0);
  ao->base = 0;
  ao->nextarena = h->spare_objects;
  h->spare_objects = ao;
}

/* Whether the units of kind are smaller than a radix grain, so that their
 * arenas' grains hold split entries (alloc_internal.h): pools only, spans
 * are at least a grain (size_class.c). */
static bool split_grains(const hl_pools_t *h, unsigned kind) {
  return kind == 0 && h->g.pool_shift < HLI_RADIX_GRAIN_SHIFT;
}

/* Empty arenas and the budget. keep_empty counts the pools' empty arenas
 * and a span kind's beyond its newest: each span kind in use holds one
 * empty arena outside the budget. A kind's arenas serve a few classes only,
 * so a program whose blocks of tens of KiB come and go in a span or two
 * would otherwise, with the budget spent on other kinds (tcache=heap: one
 * arena), map and unmap an arena each time (alloc-xthread at 8..64 KiB: an
 * arena per 100 operations; docs/measurements.md, "Medium size classes").
 * excess() is what the budget and the decay see. */
static inline unsigned excess(const hl_pools_t *h) { return h->nempty - h->nheld; }

static void empty_add(hl_pools_t *h, hl_arena_t *ao) {
  hli_arena_set_t *s = &h->sets[ao->kind];
  if (ao->kind && s->nempty == 0) h->nheld++;
  s->nempty++;
  h->nempty++;
}

static void empty_sub(hl_pools_t *h, hl_arena_t *ao) {
  hli_arena_set_t *s = &h->sets[ao->kind];
  s->nempty--;
  h->nempty--;
  if (ao->kind && s->nempty == 0) h->nheld--;
}

/* Every grain of a new arena maps to its unit's tag (class 0 until the unit
 * is first used), or to the split entry: from here on the arena is ours to
 * free(). 0 or -ENOMEM. */
static int map_pools(hl_pools_t *h, unsigned kind, uintptr_t base) {
  if (split_grains(h, kind))
    return hl_radix_set(base, h->g.arena_size, hli_tag_split_make(h->tag_bits, h->g.pool_shift));
  size_t unit = hli_unit_size(&h->g, kind);
  for (uintptr_t pa = base; pa < base + h->g.arena_size; pa += unit) {
    uintptr_t tag = hli_tag_make(hli_unit_header(&h->g, kind, pa), 0) | h->tag_bits;
    int rc = hl_radix_set(pa, unit, tag);
    if (rc != 0) return rc;
  }
  return 0;
}

/* Maps (or revives) an arena for units of kind and makes it the only usable
 * one of its set: called only when that set's usable_arenas is empty. */
static hl_arena_t *new_arena(hl_pools_t *h, unsigned kind) {
  hli_arena_set_t *s = &h->sets[kind];
  HL_ASSERT(s->usable_arenas == NULL);
  hl_arena_t *ao;
  if (s->dormant) {
    ao = s->dormant;
    s->dormant = ao->nextarena;
    ao->discarded = false;
    h->arenas_discarded--;
    HL_PROBE(arena_map, ao->base, h->g.arena_size, 1);
  } else {
    ao = arena_object(h);
    if (!ao) return NULL;
    void *base = hl_os_map_aligned(h->g.arena_size, h->g.arena_size);
    if (!base) goto fail;
    ao->base = (uintptr_t)base;
    /* the mapping thread's NUMA node, when there is more than one; a
     * refusal costs locality, never correctness */
    (void)hl_os_bind_local(base, h->g.arena_size);
    /* --arena-huge=on: the arena is a whole number of huge pages, aligned
     * (alloc.c sees to the geometry), so the kernel may back it with them,
     * at the first touch or later (khugepaged); a refusal (no THP) leaves
     * 4 KiB pages, as without the option */
    if (h->arena_huge && hl_os_advise_huge(base, h->g.arena_size) == 0) h->arenas_huge++;
    if (map_pools(h, kind, ao->base) != 0) {
      hl_radix_clear(ao->base, h->g.arena_size);
      hl_os_unmap(base, h->g.arena_size);
      goto fail;
    }
    HL_PROBE(arena_map, ao->base, h->g.arena_size, 0);
  }
  ao->pool_address = ao->base;
  ao->owner = h->owner;
  ao->kind = kind;
  ao->ntotalpools = ao->nfreepools = s->units;
  ao->freepools = NULL;
  ao->nextarena = ao->prevarena = NULL;
  all_link(h, ao);
  s->usable_arenas = ao;
  s->nfp2lasta[ao->nfreepools] = ao;
  empty_add(h, ao);
  h->arenas_allocated++;
  if (++h->arenas_current > h->arenas_highwater) h->arenas_highwater = h->arenas_current;
  return ao;
fail:
  ao->base = 0;
  ao->nextarena = h->spare_objects;
  h->spare_objects = ao;
  return NULL;
}

/* decay_pending follows nempty (pool.h); relaxed: a hint, see there. */
static inline void pending_update(hl_pools_t *h) {
  hl_atomic_store_relaxed_u32(&h->decay_pending, excess(h) > h->keep_empty);
}

/* The oldest empty arena of every kind that the budget counts (a span
 * kind's with another one besides): the tails of the sets' usable lists,
 * where an arena that becomes empty goes, compared. */
static hl_arena_t *oldest_empty(hl_pools_t *h) {
  hl_arena_t *oldest = NULL;
  for (unsigned k = 0; k < h->g.nkinds; k++) {
    hli_arena_set_t *s = &h->sets[k];
    hl_arena_t *ao = s->nempty > (k ? 1u : 0u) ? s->nfp2lasta[s->units] : NULL;
    HL_ASSERT(!s->nempty || (ao != NULL && ao->nextarena == NULL));
    if (ao && (!oldest || ao->empty_since_ns < oldest->empty_since_ns)) oldest = ao;
  }
  return oldest;
}

static void drop_empty(hl_pools_t *h, hl_arena_t *ao) {
  usable_unlink(&h->sets[ao->kind], ao);
  release_arena(h, ao);
  empty_sub(h, ao);
}

/* Releases the empty arenas beyond keep_empty that have been empty for
 * decay_ns, oldest first (of every kind together). */
static void decay_purge(hl_pools_t *h, uint64_t now) {
  while (excess(h) > h->keep_empty) {
    hl_arena_t *ao = oldest_empty(h);
    if (now - ao->empty_since_ns < h->decay_ns) break;
    drop_empty(h, ao);
  }
  pending_update(h);
}

void hli_pools_decay(hl_pools_t *h) {
  if (excess(h) > h->keep_empty) {
    /* arenas are going back: so do the pools pool-retire=keep kept, so
     * that none holds an arena that is otherwise empty (whose decay starts
     * now) after its program stopped using the class */
    hli_pools_release_kept(h);
    decay_purge(h, coarse_now_ns());
  }
}

/* Takes a free unit of kind (a pool, or a span) from the head of its
 * set's usable_arenas (the arena with the fewest free units). The head
 * stays the head: its count only drops. Returns the unit's header. */
static hl_pool_t *take_pool(hl_pools_t *h, unsigned kind) {
  if (HL_UNLIKELY(excess(h) > h->keep_empty)) decay_purge(h, coarse_now_ns());
  hli_arena_set_t *s = &h->sets[kind];
  hl_arena_t *ao = s->usable_arenas;
  if (!ao && !(ao = new_arena(h, kind))) return NULL;
  unsigned nf = ao->nfreepools;
  if (nf == ao->ntotalpools) empty_sub(h, ao);
  if (s->nfp2lasta[nf] == ao) s->nfp2lasta[nf] = NULL;  /* alone with nf */
  ao->nfreepools = --nf;
  if (nf == 0) {
    s->usable_arenas = ao->nextarena;
    if (ao->nextarena) ao->nextarena->prevarena = NULL;
    ao->nextarena = NULL;
  } else {
    /* the head had the smallest count, so nobody else has nf */
    HL_ASSERT(s->nfp2lasta[nf] == NULL);
    s->nfp2lasta[nf] = ao;
  }
  pending_update(h);
  hl_pool_t *pool = ao->freepools;
  if (pool) {
    ao->freepools = pool->nextpool;
  } else {
    size_t unit = hli_unit_size(&h->g, kind);
    HL_ASSERT(ao->pool_address + unit <= ao->base + h->g.arena_size);
    pool = (hl_pool_t *)hli_unit_header(&h->g, kind, ao->pool_address);
    ao->pool_address += unit;
  }
  pool->arena = ao;
  return pool;
}

/* A unit of ao became empty: ao's count goes from nf - 1 to nf. */
static void arena_pool_freed(hl_pools_t *h, hl_arena_t *ao) {
  hli_arena_set_t *s = &h->sets[ao->kind];
  unsigned nf = ++ao->nfreepools;
  if (nf == 1) {
    /* was full, so off the list; one free unit is the fewest: first */
    ao->prevarena = NULL;
    ao->nextarena = s->usable_arenas;
    if (s->usable_arenas) s->usable_arenas->prevarena = ao;
    s->usable_arenas = ao;
    if (!s->nfp2lasta[1]) s->nfp2lasta[1] = ao;
  } else {
    /* The arenas with nf - 1 free units end at lastnf, and those with nf
     * follow it: ao belongs right after lastnf. */
    hl_arena_t *lastnf = s->nfp2lasta[nf - 1];
    HL_ASSERT(lastnf != NULL);
    if (lastnf == ao) {
      s->nfp2lasta[nf - 1] =
          (ao->prevarena && ao->prevarena->nfreepools == nf - 1) ? ao->prevarena : NULL;
    } else {
      if (ao->prevarena) ao->prevarena->nextarena = ao->nextarena;
      else s->usable_arenas = ao->nextarena;
      ao->nextarena->prevarena = ao->prevarena;   /* lastnf follows ao */
      ao->prevarena = lastnf;
      ao->nextarena = lastnf->nextarena;
      if (ao->nextarena) ao->nextarena->prevarena = ao;
      lastnf->nextarena = ao;
    }
    if (!s->nfp2lasta[nf]) s->nfp2lasta[nf] = ao;
  }
  if (nf == ao->ntotalpools) {
    bool held = ao->kind && s->nempty == 0;   /* its span kind's only empty arena */
    if (held || excess(h) < h->keep_empty) {
      ao->empty_since_ns = h->decay_ns ? coarse_now_ns() : 0;
      empty_add(h, ao);
    } else if (h->decay_ns > 0) {
      uint64_t now = coarse_now_ns();
      ao->empty_since_ns = now;
      empty_add(h, ao);
      decay_purge(h, now);
    } else {
      usable_unlink(s, ao);
      release_arena(h, ao);
    }
    pending_update(h);
  } else if (HL_UNLIKELY(excess(h) > h->keep_empty)) {
    /* a pool became empty (a slow path already) while arenas wait for
     * their decay: those whose decay has run out go now, so that a
     * program that frees in other arenas does not keep them */
    decay_purge(h, coarse_now_ns());
  }
}

/* ---- pools ------------------------------------------------------------------ */

/* usedpools[idx] is doubly linked, except that the head's prevpool means
 * nothing: a pool knows it is the head by usedpools[idx] == pool. So the
 * commonest move of a steady state, the head filling up and leaving (in
 * alloc-random most used pools hold a block or two), writes the list head
 * only, not the next pool's header, which is cold by then (what it saves
 * in alloc-random: docs/measurements.md, "alloc-random under the library").
 * usedtail[idx] names the last pool, so that a pool joins at either end in
 * O(1); joining writes the neighbour's header (the old head's prevpool, or
 * the old tail's nextpool). */
static inline void usedpools_append(hl_pools_t *h, hl_pool_t *pool, unsigned idx) {
  pool->nextpool = NULL;
  if (h->usedpools[idx]) {
    pool->prevpool = h->usedtail[idx];
    pool->prevpool->nextpool = pool;
  } else {
    h->usedpools[idx] = pool;
  }
  h->usedtail[idx] = pool;
}

static inline void usedpools_push(hl_pools_t *h, hl_pool_t *pool, unsigned idx) {
  hl_pool_t *head = h->usedpools[idx];
  pool->nextpool = head;
  if (head) head->prevpool = pool;
  else h->usedtail[idx] = pool;
  h->usedpools[idx] = pool;
}

/* A full pool had a block freed: back on usedpools. obmalloc puts it at the
 * front, where it serves the next allocation of its class and is full again
 * at once. When a class's pools are nearly all full, as in any steady state
 * of random replacement (a few free blocks spread over many pools), every
 * free then relinks a pool and every allocation unlinks one, and the branch
 * that tells them apart is a coin toss. At the back, the pool serves only
 * after the pools ahead of it, and gathers the frees that land on it
 * meanwhile: what mimalloc does with a page that leaves its full queue
 * (Leijen, Zorn and de Moura, "Mimalloc: Free List Sharding in Action",
 * 2019). The instructions and mispredicted branches of either end, beside
 * mimalloc's: docs/measurements.md, "Where a full pool goes". */
static void usedpools_requeue(hl_pools_t *h, hl_pool_t *pool) {
  if (h->requeue_front) usedpools_push(h, pool, pool->szidx);
  else usedpools_append(h, pool, pool->szidx);
}

static void usedpools_unlink(hl_pools_t *h, hl_pool_t *pool) {
  hl_pool_t *next = pool->nextpool;
  if (h->usedpools[pool->szidx] == pool) {
    h->usedpools[pool->szidx] = next;   /* next's prevpool now means nothing */
  } else {
    pool->prevpool->nextpool = next;
    if (next) next->prevpool = pool->prevpool;
    else h->usedtail[pool->szidx] = pool->prevpool;
  }
  pool->nextpool = NULL;
}

/* Sets up a pool for class idx and returns its first block, the one right
 * after the header; the blocks before the header (coloured pools) and the
 * second one after it, if any, become the free list, and the rest stays
 * virgin. */
static void *init_pool(hl_pools_t *h, hl_pool_t *pool, unsigned idx) {
  /* a span's header is at its start, in its first pool */
  char *base = (char *)hl_pool_base(&h->g, (uintptr_t)pool);
  unsigned kind = h->g.class_kind[idx];
  size_t size = hl_class_size(&h->g, idx), start = (size_t)((char *)pool - base);
  size_t unit = hli_unit_size(&h->g, kind);
  /* the first block's offset: after the header; in a span, aligned to the
   * block size's lowest bit (hli_span_start) */
  start = kind ? hli_span_start(&h->g, size) : start + h->g.pool_overhead;
  pool->szidx = idx;
  /* The free paths find the class in the tag (in szidx, for split grains).
   * The leaf exists (map_pools wrote this unit's entries), so this cannot
   * fail. */
  if (!split_grains(h, kind)) {
    /* A pool reused for the class it last served (a program whose only
     * block of a class comes and goes empties and refills one pool) finds
     * its entries written already: the whole pool's are set together, so
     * the first one says. */
    uintptr_t tag = hli_tag_make((uintptr_t)pool, idx) | h->tag_bits;
    if (hl_radix_get((uintptr_t)base) != tag) {
      int rc = hl_radix_set((uintptr_t)base, unit, tag);
      HL_ASSERT(rc == 0);
      (void)rc;
    }
  }
  pool->maxnextoffset = (uint32_t)(unit - size);
  pool->ref = 1;
  /* The list: the blocks below the header, in address order, then the
   * second block after it; it ends at the last block before the virgin
   * space (a reused pool holds old data, so every link is written). */
  hl_block_t **link = &pool->freeblock;
  for (char *b = base; b + size <= (char *)pool; b += size) {
    *link = (hl_block_t *)(void *)b;
    link = &(*link)->next;
  }
  if (start + 2 * size <= unit) {
    *link = (hl_block_t *)(void *)(base + start + size);
    link = &(*link)->next;
  }
  *link = NULL;
  pool->nextoffset = (uint32_t)(start + 2 * size);
  if (pool->freeblock == NULL) {
    pool->nextpool = pool->prevpool = NULL;   /* full at once: on no list */
    return base + start;
  }
  usedpools_append(h, pool, idx);
  return base + start;
}

void *hli_pools_malloc_slow(hl_pools_t *h, unsigned idx) {
  HL_ASSERT(h->usedpools[idx] == NULL);
  hl_pool_t *pool = take_pool(h, h->g.class_kind[idx]);
  if (HL_UNLIKELY(!pool)) return NULL;
  return init_pool(h, pool, idx);
}

/* The pool's free list ran dry after an allocation: cut virgin blocks, or
 * the pool is full. */
void *hli_pools_extend(hl_pools_t *h, hl_pool_t *pool, void *taken) {
  uint32_t off = pool->nextoffset, max = pool->maxnextoffset;
  if (off <= max) {
    /* Every virgin block that starts in the OS page of the next one: the
     * next allocation touches that page anyway, and a program that takes
     * the blocks one after another (each round of alloc-lifo, a fresh
     * heap) then pops them from the list instead of calling here for each
     * (its cost per block: docs/measurements.md, "Fast paths"). Pools are
     * aligned to their size, at least a page (hl_geometry_init), so the page
     * boundaries are those of the offsets. */
    uint32_t size = (uint32_t)hl_class_size(&h->g, pool->szidx);
    uint32_t last = off | h->page_mask;
    if (last > max) last = max;
    char *base = (char *)hl_pool_base(&h->g, (uintptr_t)pool);
    char *b = base + off, *stop = base + last;
    pool->freeblock = (hl_block_t *)(void *)b;
    for (; b + size <= stop; b += size)
      ((hl_block_t *)(void *)b)->next = (hl_block_t *)(void *)(b + size);
    ((hl_block_t *)(void *)b)->next = NULL;
    pool->nextoffset = (uint32_t)(b + size - base);
    return taken;
  }
  usedpools_unlink(h, pool);
  return taken;
}

/* An empty pool onto its arena's free pools. */
static void pool_to_arena(hl_pools_t *h, hl_pool_t *pool) {
  hl_arena_t *ao = pool->arena;
  pool->nextpool = ao->freepools;
  ao->freepools = pool;
  arena_pool_freed(h, ao);
}

void hli_pools_free_slow(hl_pools_t *h, hl_pool_t *pool) {
  /* a pool that was not full had a list (its last block ends it, with the
   * virgin space behind it counted apart), so the block pushed has a next */
  bool was_full = pool->freeblock->next == NULL;
  if (pool->ref != 0) {
    HL_ASSERT(was_full);
    usedpools_requeue(h, pool);
    return;
  }
  /* pool-retire=keep: the class's only pool stays, empty, and serves its
   * next allocation (a block malloc'd and freed in turn would otherwise set
   * a pool up and tear it down each time); trim gives it back */
  if (hli_pools_keeps(h, pool, was_full)) return;
  if (!was_full) usedpools_unlink(h, pool);
  pool_to_arena(h, pool);
}

/* Every empty pool still on a class's list goes back to its arena. A
 * kept pool is its class's only one when it is kept, but not for long: a
 * full pool of the class that has a block freed joins the list behind it
 * (or, with pool-requeue=front, in front of it) while it is still empty,
 * so the whole list is walked (trim is rare). */
void hli_pools_release_kept(hl_pools_t *h) {
  for (unsigned i = 0; i < h->g.nclasses; i++) {
    for (hl_pool_t *pool = h->usedpools[i], *next; pool; pool = next) {
      next = pool->nextpool;
      if (pool->ref == 0) {
        usedpools_unlink(h, pool);
        pool_to_arena(h, pool);
      }
    }
  }
}

/* ---- the instance ------------------------------------------------------------ */

/* The bytes of every set's nfp2lasta, in one mapping (sets[0]'s first). */
static size_t nfp2lasta_bytes(const hl_geometry_t *g) {
  size_t n = 0, page = hl_os_page_size();
  for (unsigned k = 0; k < g->nkinds; k++) n += (size_t)(g->pools_per_arena >> k) + 1;
  return (n * sizeof(hl_arena_t *) + page - 1) & ~(page - 1);
}

int hli_pools_init(hl_pools_t *h, const hl_geometry_t *g, const hli_pools_policy_t *policy) {
  memset(h, 0, sizeof *h);
  h->g = *g;
  size_t bytes = nfp2lasta_bytes(g), page = hl_os_page_size();
  hl_arena_t **lasta = hl_os_map_aligned(bytes, page);
  if (!lasta) return -ENOMEM;
  for (unsigned k = 0; k < g->nkinds; k++) {
    h->sets[k].units = g->pools_per_arena >> k;
    h->sets[k].nfp2lasta = lasta;
    lasta += h->sets[k].units + 1;
  }
  h->overhead_bytes = bytes;
  /* whole arenas, rounded up: with --arena-huge's 2 MiB arenas the
   * library's 1024 KiB still keeps one */
  h->keep_empty = (unsigned)((policy->keep_bytes + g->arena_size - 1) / g->arena_size);
  h->decay_ns = policy->decay_ns;
  h->release_madvise = policy->madvise;
  h->arena_huge = policy->huge;
  h->requeue_front = policy->requeue_front;
  h->keep_last_empty = policy->keep_last_empty;
  h->page_mask = (uint32_t)(page - 1);
  return 0;
}

static void unmap_dormant(hl_pools_t *h, hli_arena_set_t *s);

void hli_pools_trim(hl_pools_t *h) {
  hli_pools_release_kept(h);
  for (unsigned k = 0; k < h->g.nkinds; k++) {
    hl_arena_t *ao = h->sets[k].usable_arenas;
    while (ao) {
      hl_arena_t *next = ao->nextarena;
      if (ao->nfreepools == ao->ntotalpools) drop_empty(h, ao);
      ao = next;
    }
  }
  pending_update(h);
}

void hli_pools_unmap_dormant(hl_pools_t *h) {
  for (unsigned k = 0; k < h->g.nkinds; k++) unmap_dormant(h, &h->sets[k]);
}

static void unmap_dormant(hl_pools_t *h, hli_arena_set_t *s) {
  while (s->dormant) {
    hl_arena_t *ao = s->dormant;
    s->dormant = ao->nextarena;
    hl_radix_clear(ao->base, h->g.arena_size);
    hl_os_unmap((void *)ao->base, h->g.arena_size);
    HL_PROBE(arena_unmap, ao->base, h->g.arena_size, 0);
    ao->base = 0;
    ao->discarded = false;
    ao->nextarena = h->spare_objects;
    h->spare_objects = ao;
    h->arenas_discarded--;
  }
}

void hli_pools_destroy(hl_pools_t *h) {
  for (hl_arena_t *ao = h->all_arenas, *next; ao; ao = next) {
    next = ao->allnext;
    hl_radix_clear(ao->base, h->g.arena_size);
    hl_os_unmap((void *)ao->base, h->g.arena_size);
  }
  hli_pools_unmap_dormant(h);
  /* the descriptor pages are not tracked one by one; they stay mapped (a few
   * pages per process lifetime, and only tests destroy instances) */
  hl_os_unmap(h->sets[0].nfp2lasta, nfp2lasta_bytes(&h->g));
  memset(h, 0, sizeof *h);
}

/* ---- statistics and validation ----------------------------------------------- */

static size_t list_length(const hl_block_t *b) {
  size_t n = 0;
  for (; b; b = b->next) n++;
  return n;
}

bool hli_pools_idle(const hl_pools_t *h) { return h->nempty == h->arenas_current; }

void hli_pools_stats(const hl_pools_t *h, hl_alloc_stats_t *s) {
  const hl_geometry_t *g = &h->g;
  s->alignment = g->alignment;
  s->threshold = g->threshold;
  s->max_size = g->max_size;
  s->pool_size = g->pool_size;
  s->arena_size = g->arena_size;
  s->pool_colours = (uint64_t)g->colour_mask + 1;
  s->nclasses = g->nclasses;
  for (unsigned i = 0; i < g->nclasses; i++) s->classes[i].size = hl_class_size(g, i);
  /* several instances add up; the high-water mark is the sum of theirs */
  s->arenas_allocated += h->arenas_allocated;
  s->arenas_reclaimed += h->arenas_reclaimed;
  s->arenas_highwater += h->arenas_highwater;
  s->arenas_current += h->arenas_current;
  s->arenas_kept_empty += h->nempty;
  s->arenas_discarded += h->arenas_discarded;
  s->arenas_huge += h->arenas_huge;
  s->raw_requests += h->raw_requests;
  s->bytes_overhead += h->overhead_bytes;
  s->bytes_mapped += h->arenas_current * g->arena_size;
  for (const hl_arena_t *ao = h->all_arenas; ao; ao = ao->allnext) {
    uint64_t used_or_full = 0;
    bool seen[HL_ARRAY_LEN(s->classes)] = {false};   /* classes counted in this arena */
    size_t unit = hli_unit_size(g, ao->kind);
    for (uintptr_t pa = ao->base; pa < ao->pool_address; pa += unit) {
      const hl_pool_t *pool = (const hl_pool_t *)hli_unit_header(g, ao->kind, pa);
      if (pool->ref == 0) continue;   /* empty: on freepools */
      used_or_full++;
      hl_alloc_class_stats_t *c = &s->classes[pool->szidx];
      c->arenas += !seen[pool->szidx];
      seen[pool->szidx] = true;
      uint64_t size = hl_class_size(g, pool->szidx);
      uint64_t capacity = hli_pool_capacity(g, pa, pool->szidx);
      uint64_t free_blocks = capacity - pool->ref;
      c->pools++;
      c->blocks_in_use += pool->ref;
      c->free_blocks += free_blocks;
      s->blocks_in_use += pool->ref;
      s->bytes_in_use += (uint64_t)pool->ref * size;
      s->bytes_free_blocks += free_blocks * size;
      s->bytes_unused_pools += unit - g->pool_overhead - capacity * size;
      s->bytes_overhead += g->pool_overhead;
    }
    s->pools_used += used_or_full;
    s->pools_free += ao->nfreepools;
    s->bytes_free_pools += (uint64_t)ao->nfreepools * unit;
  }
  /* pool-retire=keep's empty pools: free, though on no arena's list */
  for (unsigned i = 0; i < g->nclasses; i++)
    if (h->usedpools[i] && h->usedpools[i]->ref == 0) {
      s->pools_free++;
      s->bytes_free_pools += hli_class_unit(g, i);
    }
}

#define CHECK(c)                                                             \
  do {                                                                       \
    if (HL_UNLIKELY(!(c))) hl_die("pool allocator invariant broken: %s", #c); \
  } while (0)

int hli_pools_validate(const hl_pools_t *h) {
  const hl_geometry_t *g = &h->g;
  /* each set's usable_arenas: sorted, exactly its arenas with free units,
   * nfp2lasta right; the empty ones counted per set and in all */
  unsigned nempty_all = 0;
  size_t usable = 0, with_free = 0;
  for (unsigned k = 0; k < g->nkinds; k++) {
    const hli_arena_set_t *st = &h->sets[k];
    unsigned prev_nf = 0, nempty = 0;
    CHECK(st->units == g->pools_per_arena >> k);
    for (const hl_arena_t *ao = st->usable_arenas; ao; ao = ao->nextarena) {
      CHECK(ao->kind == k && ao->ntotalpools == st->units);
      CHECK(ao->nfreepools > 0 && ao->nfreepools <= ao->ntotalpools);
      CHECK(ao->nfreepools >= prev_nf);
      CHECK(ao->prevarena == NULL || ao->prevarena->nextarena == ao);
      bool last_of_group = !ao->nextarena || ao->nextarena->nfreepools != ao->nfreepools;
      CHECK((st->nfp2lasta[ao->nfreepools] == ao) == last_of_group);
      if (ao->nfreepools == ao->ntotalpools) nempty++;
      prev_nf = ao->nfreepools;
      usable++;
    }
    CHECK(nempty == st->nempty);
    nempty_all += nempty;
    for (unsigned j = 1; j <= st->units; j++)
      CHECK(st->nfp2lasta[j] == NULL || st->nfp2lasta[j]->nfreepools == j);
  }
  CHECK(nempty_all == h->nempty);
  unsigned held = 0;
  for (unsigned k = 1; k < g->nkinds; k++) held += h->sets[k].nempty > 0;
  CHECK(held == h->nheld);
  CHECK(h->decay_pending == (excess(h) > h->keep_empty));
  size_t narenas = 0;
  for (const hl_arena_t *ao = h->all_arenas; ao; ao = ao->allnext) {
    narenas++;
    CHECK(ao->base % g->arena_size == 0 && !ao->discarded && ao->kind < g->nkinds);
    unsigned kind = ao->kind;
    size_t unit = hli_unit_size(g, kind);
    /* every grain maps to its unit (or holds the split entry); a used or
     * full unit's tag has its class */
    uintptr_t split = hli_tag_split_make(h->tag_bits, g->pool_shift);
    for (uintptr_t pa = ao->base; pa < ao->base + g->arena_size; pa += unit) {
      uintptr_t first = hl_radix_get(pa), last = hl_radix_get(pa + unit - 1);
      uintptr_t hdr = hli_unit_header(g, kind, pa);
      CHECK(first == last &&
            (split_grains(h, kind) ? first == split : !(first & HLI_TAG_SPLIT)));
      CHECK(hli_entry_pool(pa + unit - 1, last) == hdr);
      if (pa >= ao->pool_address) continue;   /* never used: no header to read */
      uintptr_t tag = hli_tag_get(pa);
      CHECK(hli_tag_pool(tag) == hdr && (tag & ~HLI_TAG_CLASS_MASK) == (hdr | h->tag_bits));
      if (((const hl_pool_t *)hdr)->ref > 0)
        CHECK(hli_tag_class(tag) == ((const hl_pool_t *)hdr)->szidx);
    }
    if (ao->nfreepools) with_free++;
    /* free units: the list plus never-used units */
    size_t nfree = (ao->base + g->arena_size - ao->pool_address) / unit;
    for (const hl_pool_t *p = ao->freepools; p; p = p->nextpool) {
      CHECK(p->ref == 0 && p->arena == ao);
      nfree++;
    }
    CHECK(nfree == ao->nfreepools);
    for (uintptr_t pa = ao->base; pa < ao->pool_address; pa += unit) {
      const hl_pool_t *pool = (const hl_pool_t *)hli_unit_header(g, kind, pa);
      if (pool->ref == 0) continue;
      CHECK(pool->arena == ao && pool->szidx < g->nclasses);
      CHECK(g->class_kind[pool->szidx] == kind);
      CHECK(pool->maxnextoffset == unit - hl_class_size(g, pool->szidx));
      /* blocks at or after nextoffset that fit: never handed out */
      size_t nlist = list_length(pool->freeblock);
      size_t virgin = pool->nextoffset > pool->maxnextoffset ? 0
                      : (unit - pool->nextoffset) / hl_class_size(g, pool->szidx);
      CHECK(pool->ref + nlist + virgin == hli_pool_capacity(g, pa, pool->szidx));
      /* full <=> on no list; used => reachable from usedpools */
      bool listed = false;
      for (const hl_pool_t *q = h->usedpools[pool->szidx]; q; q = q->nextpool)
        if (q == pool) listed = true;
      CHECK(listed == (pool->freeblock != NULL));
    }
  }
  CHECK(narenas == h->arenas_current && usable == with_free);
  for (unsigned i = 0; i < g->nclasses; i++)
    for (const hl_pool_t *q = h->usedpools[i]; q; q = q->nextpool) {
      /* ref 0: the empty pool pool-retire=keep keeps, the class's only one */
      CHECK(q->szidx == i && q->freeblock != NULL &&
            (q->ref > 0 || (h->keep_last_empty && q == h->usedpools[i] && !q->nextpool)));
      /* every member but the head knows its predecessor; the last is the tail */
      CHECK(q->nextpool == NULL || q->nextpool->prevpool == q);
      CHECK(q->nextpool != NULL || h->usedtail[i] == q);
    }
  return 0;
}
