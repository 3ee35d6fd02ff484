/* Tracking: which list a new container goes into, and the count that
 * triggers a collection (the collector's row decides what the trigger does).
 *
 * Under the GIL this is all inline in gc_internal.h: a new container is
 * appended to generation 0's list and counted (count[0] += 1; a freed one:
 * count[0] -= 1), and past threshold[0] the row's trigger runs.
 *
 * Without a GIL (rc=atomic, rc=biased) any thread may create a container
 * and any thread may free it, and one list for them all would make every
 * container allocation and deallocation of every thread meet on one lock.
 * So a new container goes into the generation-0 list of its creator's
 * stripe. The stripe is written in the object's flags (0: one of the
 * shared lists), so that whoever frees the object finds its list. Only the
 * creator writes it, before the object is published, and then the
 * collector, with the world stopped, when it gathers the stripes into
 * generation 0.
 *
 * Who may change a stripe's list, and with which lock:
 *   rc=atomic   the stripe is the thread's index modulo HLI_GC_STRIPES,
 *               and every change takes the stripe's spinlock (any thread
 *               may free any object, at any time).
 *   rc=biased   an owning thread's stripe is its index (one each, up to
 *               HLI_GC_STRIPES; a thread past that, or one that owns
 *               nothing, uses the shared list, locked). An owned object is
 *               freed only by its owner (rc_biased.c: another thread's
 *               decrement queues it to the owner), and its owner made it,
 *               so while the stripe's objects are all owned, its owner is
 *               the only thread that changes the list, and does it without
 *               the lock: no atomic instruction on a container's birth or
 *               death (what it saves: docs/measurements.md, "The price of
 *               the collector without a GIL"). When the owner gives one up
 *               (hli_gc_disowned: its count went shared, and any thread
 *               may now free it), the stripe turns `shared` and every
 *               change takes the lock until the next collection gathers
 *               the list. The owner sets the flag before the give-up is
 *               published, so the thread that frees the object sees it;
 *               the owner reads its own store. Another thread that
 *               untracks a young object of a stripe not shared
 *               (hl_gc_untrack, rare) stops the world to do it. A reused
 *               index inherits its stripe: the registry's mutex orders the
 *               previous thread's last change before the next one's first.
 *
 * The count is shared: each thread adds its own count (containers made
 * minus freed) in batches, and the thread whose batch takes it over the
 * threshold claims the trigger (the others that cross it meanwhile go on:
 * the first one's collection resets the count) and calls the row.
 */
#include "collector.h"

/* [0]: the lock of the shared lists (hli_gc's generations and permanent) */
hli_gc_stripe_t hli_gc_stripes[HLI_GC_STRIPES + 1];
/* the highest stripe a container went into: a collection looks no further */
HL_CACHE_ALIGNED uint32_t hli_gc_stripes_used;

void hli_gc_set_batch(uint32_t threshold0) {
  /* below 256 exact, as under the GIL (the tests' thresholds); above, off
   * by less than a sixteenth of the threshold per thread */
  uint32_t b = threshold0 < 256 ? 1 : threshold0 / 16;
  b = b < 1 ? 1 : b > HLI_GC_COUNT_BATCH ? HLI_GC_COUNT_BATCH : b;
  hl_atomic_c11_store_relaxed_i32(&hli_gc.ft_batch, (int32_t)b);
}

void hli_gc_track_init(const hl_config_t *c) {
  hli_gc.ft_count0 = 0;
  hli_gc_set_batch(c->threshold[0]);
  for (unsigned s = 0; s <= HLI_GC_STRIPES; s++) {
    hl_spinlock_init(&hli_gc_stripes[s].lock);
    hli_gc_list_init(&hli_gc_stripes[s].head);
  }
  /* not reset: a high mark over runtimes, which an attached thread's own
   * stripe has raised already (hli_gc_thread_tags; a collection skips the
   * empty lists) */
}

void hli_gc_thread_tags(void) {
  unsigned s = hli_gc_owned_stripe();
  hl_tstate_t *ts = &hli_tstate;
  if (!s) {
    ts->gc_mine = NULL;
    ts->gc_mine_key = 0;
    return;
  }
  /* before the inline link appends to it without a lock (which tests no
   * high mark), so that a collection gathers the list */
  if (s > hl_atomic_load_relaxed_u32(&hli_gc_stripes_used)) hl_atomic_max_u32(&hli_gc_stripes_used, s);
  ts->gc_mine = &hli_gc_stripes[s];
  ts->gc_mine_key = HLI_GC_MINE_KEY(s << HL_OF_STRIPE_SHIFT);
}

/* A stripe's lock; for the shared lists' (stripe 0), which a concurrent
 * collector's chunk holds for up to 20 us (gen_conc.c), the waits are
 * counted and timed (what the mutators wait beside the handshakes), and
 * announced in hli_gc_lists_waiters: a chunk ends early, and the collector
 * thread lets the waiters in before it takes the lock again. */
HL_CACHE_ALIGNED uint32_t hli_gc_lists_waiters;
static void stripe_lock(unsigned s) {
  hl_spinlock_t *l = &hli_gc_stripes[s].lock;
  if (HL_LIKELY(hl_spinlock_trylock(l))) return;
  if (s) {
    hl_spinlock_lock(l);
    return;
  }
  uint64_t t0 = hl_now_ns();
  (void)hl_atomic_faa_u32(&hli_gc_lists_waiters, 1);
  hl_spinlock_lock(l);
  (void)hl_atomic_faa_u32(&hli_gc_lists_waiters, (uint32_t)-1);
  hli_tstate.stats.gc_lock_waits++;
  hli_tstate.stats.gc_lock_wait_ns += hl_now_ns() - t0;
}

/* The slow paths of hli_gc_link and hli_gc_unlink (gc_internal.h has the
 * common ones, inline: an owned stripe, private). */
void hli_gc_link_locked(hl_object_t *o, unsigned s) {
  if (!s && !hli_rc_row->owners) s = hli_rc_owner_tag() % HLI_GC_STRIPES + 1;
  if (s > hl_atomic_load_relaxed_u32(&hli_gc_stripes_used)) hl_atomic_max_u32(&hli_gc_stripes_used, s);
  /* o is not published yet: nobody else reads its flags */
  hli_gc_set_stripe(o, s);
  hl_gc_head_t *g = HL_GC_HEAD(o);
  g->prev = 0;
  stripe_lock(s);
  hli_gc_list_append(g, s ? &hli_gc_stripes[s].head : &hli_gc.gen[0].head);
  hl_spinlock_unlock(&hli_gc_stripes[s].lock);
}

void hli_gc_disowned(const hl_object_t *o) {
  if (!(o->flags & HL_OF_GC)) return;
  unsigned s = hli_gc_stripe_of(o);
  if (!s || !hli_gc_stripe_private(s)) return;
  /* Release, and before the give-up's own full barrier (rc_biased.c) */
  hl_atomic_store_release_u32(&hli_gc_stripes[s].shared, 1);
}

/* Into generation 0's shared list (a dict tracked at an insertion: its
 * creator may be another thread, and its flags are read by others now). */
void hli_gc_track_ft(hl_object_t *o) {
  hl_gc_head_t *g = HL_GC_HEAD(o);
  stripe_lock(0);
  if (!g->next) {
    HL_ASSERT(hli_gc_stripe_of(o) == 0);
    g->prev = 0;
    hli_gc_list_append(g, &hli_gc.gen[0].head);
  }
  hl_spinlock_unlock(&hli_gc_stripes[0].lock);
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

void hli_gc_unlink_locked(hl_object_t *o, unsigned s) {
  /* rc=biased: another thread's young object dies here only once its
   * owner gave it up, which made the stripe shared (the top) */
  HL_ASSERT(!s || !hli_rc_row->owners || s == hli_gc_owned_stripe() || !hli_gc_stripe_private(s) ||
            hl_stw_stopped());
  hli_gc_stripe_t *st = &hli_gc_stripes[s];
  stripe_lock(s);
  hli_gc_list_remove(HL_GC_HEAD(o));
  hl_spinlock_unlock(&st->lock);
}

void hli_gc_count_add_self(void) {
  if (hli_tstate.sweeping) {   /* the last collection's garbage: not counted */
    hli_tstate.gc_count = 0;
    return;
  }
  count_add(hli_tstate.gc_count);
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
    /* the garbage it found, deleted with the trigger free again: another
     * thread's allocations may collect meanwhile */
    hli_gc_sweep_pending();
  }
}

void hli_gc_gather_stripes(bool then_collect) {
  if (!hli_nogil()) return;
  unsigned used = hl_atomic_load_relaxed_u32(&hli_gc_stripes_used);
  for (unsigned s = 1; s <= used; s++) {
    hl_gc_head_t *l = &hli_gc_stripes[s].head;
    hl_atomic_store_relaxed_u32(&hli_gc_stripes[s].shared, 0);
    if (hli_gc_list_empty(l)) continue;
    /* a collection's first walk sets the stripes to 0 (collect.c's
     * update_refs): one walk fewer over the young objects */
    if (!then_collect)
      for (hl_gc_head_t *g = hli_gc_next(l); g != l; g = hli_gc_next(g)) hli_gc_set_stripe(HL_GC_OBJ(g), 0);
    else
      hli_gc.stripes_stale = true;
    hli_gc_list_merge(l, &hli_gc.gen[0].head);
  }
}

void hli_gc_untrack_ft(hl_object_t *o) {
  /* the caller holds a reference: o's stripe changes only with the world
   * stopped, which it is not while we run */
  unsigned s = hli_gc_stripe_of(o);
  hli_gc_stripe_t *st = &hli_gc_stripes[s];
  if (s && hli_rc_row->owners && s != hli_gc_owned_stripe() && hli_gc_stripe_private(s)) {
    /* another thread's young object, in a list it changes without the
     * lock: with that thread stopped (rare: hl_gc_untrack) */
    uint64_t stopped_at = hli_gc_world_stop();
    if (HL_GC_HEAD(o)->next) hli_gc_list_remove(HL_GC_HEAD(o));
    hli_gc_world_resume(stopped_at);
    return;
  }
  if (s && s == hli_gc_owned_stripe() && hli_gc_stripe_private(s)) {
    if (HL_GC_HEAD(o)->next) hli_gc_list_remove(HL_GC_HEAD(o));
    return;
  }
  stripe_lock(s);
  if (HL_GC_HEAD(o)->next) hli_gc_list_remove(HL_GC_HEAD(o));
  hl_spinlock_unlock(&st->lock);
}
