/* Tracking: which list a new container goes into, and the count that
 * triggers a collection (the collector's row decides what the trigger does).
 *
 * Under the GIL this is all inline in gc_internal.h: a new container is
 * appended to generation 0's list and counted (count[0] += 1; a freed one:
 * count[0] -= 1), and past threshold[0] the row's trigger runs.
 *
 * Without a GIL (rc=atomic, rc=biased) any thread may create a container
 * and any thread may free it, so the lists need locks, and one lock for
 * them all would make every container allocation and deallocation of every
 * thread meet on one cache line. So a new container goes into the
 * generation-0 list of its creator's stripe (gc_internal.h: the thread's
 * index modulo HLI_GC_STRIPES), under that stripe's spinlock, which only its
 * thread takes unless another thread frees one of its young containers. The
 * stripe is written in the object's flags (0: one of the shared lists), so
 * that whoever frees the object takes the right lock. Only the creator
 * writes it, before the object is published, and then the collector, with
 * the world stopped, when it gathers the stripes into generation 0.
 *
 * The count is shared: each thread adds its own count (containers made
 * minus freed) in batches, and the thread whose batch takes it over the
 * threshold claims the trigger (the others that cross it meanwhile go on:
 * the first one's collection resets the count) and calls the row.
 */
#include "collector.h"

typedef struct stripe {
  hl_spinlock_t lock;
  hl_gc_head_t head;          /* this stripe's generation 0 (unused in stripe 0) */
} HL_CACHE_ALIGNED stripe_t;
/* [0]: the lock of the shared lists (hli_gc's generations and permanent) */
static stripe_t stripes[HLI_GC_STRIPES + 1];
/* the highest stripe a container went into: a collection looks no further */
static HL_CACHE_ALIGNED uint32_t stripes_used;

static inline unsigned stripe_of(const hl_object_t *o) {
  return (o->flags & HL_OF_STRIPE_MASK) >> HL_OF_STRIPE_SHIFT;
}
static inline void set_stripe(hl_object_t *o, unsigned s) {
  o->flags = (uint16_t)((o->flags & ~HL_OF_STRIPE_MASK) | (s << HL_OF_STRIPE_SHIFT));
}

void hli_gc_set_batch(uint32_t threshold0) {
  uint32_t b = threshold0 / 64;
  b = b < 1 ? 1 : b > HLI_GC_COUNT_BATCH ? HLI_GC_COUNT_BATCH : b;
  hl_atomic_c11_store_relaxed_i32(&hli_gc.ft_batch, (int32_t)b);
}

void hli_gc_track_init(const hl_config_t *c) {
  hli_gc.ft_count0 = 0;
  hli_gc_set_batch(c->threshold[0]);
  for (unsigned s = 0; s <= HLI_GC_STRIPES; s++) {
    hl_spinlock_init(&stripes[s].lock);
    hli_gc_list_init(&stripes[s].head);
  }
  stripes_used = 0;
}

void hli_gc_link_ft(hl_object_t *o) {
  hli_gc_on_alloc();   /* counts it, and may collect first */
  unsigned s = hli_rc_owner_tag % HLI_GC_STRIPES + 1;
  if (HL_UNLIKELY(s > hl_atomic_load_relaxed_u32(&stripes_used)))
    hl_atomic_max_u32(&stripes_used, s);
  /* o is not published yet: nobody else reads its flags */
  set_stripe(o, s);
  hl_gc_head_t *g = HL_GC_HEAD(o);
  g->prev = 0;
  hl_spinlock_lock(&stripes[s].lock);
  hli_gc_list_append(g, &stripes[s].head);
  hl_spinlock_unlock(&stripes[s].lock);
}

/* Into generation 0's shared list (a dict tracked at an insertion: its
 * creator may be another thread, and its flags are read by others now). */
void hli_gc_track_ft(hl_object_t *o) {
  hl_gc_head_t *g = HL_GC_HEAD(o);
  hl_spinlock_lock(&stripes[0].lock);
  if (!g->next) {
    HL_ASSERT(stripe_of(o) == 0);
    g->prev = 0;
    hli_gc_list_append(g, &hli_gc.gen[0].head);
  }
  hl_spinlock_unlock(&stripes[0].lock);
}

/* Adds this thread's part to generation 0's count, which stays at or above
 * zero as under the GIL (a container made before the last collection and
 * freed after it does not count against the next); returns the new count. */
static int64_t count_add(int64_t add) {
  hli_tstate.gc_count = 0;
  uint64_t *c = &hli_gc.ft_count0;
  if (add >= 0) return (int64_t)hl_atomic_faa_u64(c, (uint64_t)add) + add;
  uint64_t v = hl_atomic_load_relaxed_u64(c);
  for (;;) {
    int64_t n = (int64_t)v + add;
    if (n < 0) n = 0;
    uint64_t seen = hl_atomic_cas_value_u64(c, v, (uint64_t)n);
    if (seen == v) return n;
    v = seen;
  }
}

void hli_gc_unlink_ft(hl_object_t *o) {
  /* o is dying: only the collector (world stopped) or this thread changes
   * whether it is tracked, and its stripe */
  if (hli_gc_tracked(o)) {
    stripe_t *st = &stripes[stripe_of(o)];
    hl_spinlock_lock(&st->lock);
    hli_gc_list_remove(HL_GC_HEAD(o));
    hl_spinlock_unlock(&st->lock);
  }
  if (HL_UNLIKELY(--hli_tstate.gc_count <= -hli_gc_batch())) count_add(hli_tstate.gc_count);
}

uint32_t hli_gc_gen_count(int i) {
  if (i == 0 && hli_nogil()) {
    int64_t n = (int64_t)hl_atomic_load_relaxed_u64(&hli_gc.ft_count0);
    return n < 0 ? 0 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
  }
  return hli_gc.gen[i].count;
}

void hli_gc_count_flush_self(void) {
  if (hli_nogil() && hli_tstate.gc_count) count_add(hli_tstate.gc_count);
}

void hli_gc_count0_reset(void) {
  hl_atomic_store_relaxed_u64(&hli_gc.ft_count0, 0);
  hli_tstate.gc_count = 0;
}

/* A thread has crossed the threshold and is stopping the world: the others
 * that cross it meanwhile go on (the first one's collection resets the
 * count) rather than stop the world again to find nothing to do. */
static HL_CACHE_ALIGNED uint32_t ft_trigger;

void hli_gc_count_flush_ft(void) {
  int64_t n = count_add(hli_tstate.gc_count);
  uint32_t t = hli_gc_threshold(0);
  if (n > (int64_t)t && t && hli_gc_load_bool(&hli_gc.enabled) &&
      !hli_gc_load_bool(&hli_gc.collecting) && hl_atomic_load_relaxed_u32(&ft_trigger) == 0 &&
      hl_atomic_cas_u32(&ft_trigger, 0, 1)) {
    hli_gc.collector->trigger();
    hl_atomic_store_release_u32(&ft_trigger, 0);
  }
}

void hli_gc_gather_stripes(void) {
  if (!hli_nogil()) return;
  unsigned used = hl_atomic_load_relaxed_u32(&stripes_used);
  for (unsigned s = 1; s <= used; s++) {
    hl_gc_head_t *l = &stripes[s].head;
    if (hli_gc_list_empty(l)) continue;
    for (hl_gc_head_t *g = hli_gc_next(l); g != l; g = hli_gc_next(g)) set_stripe(HL_GC_OBJ(g), 0);
    hli_gc_list_merge(l, &hli_gc.gen[0].head);
  }
}

void hli_gc_untrack_ft(hl_object_t *o) {
  /* the caller holds a reference: o's stripe changes only with the world
   * stopped, which it is not while we run */
  stripe_t *st = &stripes[stripe_of(o)];
  hl_spinlock_lock(&st->lock);
  if (HL_GC_HEAD(o)->next) hli_gc_list_remove(HL_GC_HEAD(o));
  hl_spinlock_unlock(&st->lock);
}
