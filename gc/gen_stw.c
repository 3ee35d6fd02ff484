/* The stop-the-world generational schedule (--gc=stw): when to collect and
 * which generation; collect.c decides what is garbage.
 *
 * CPython's rules (Python/gc.c, 3.11):
 *   - three generations; a new container is tracked in generation 0 and
 *     counted (count[0] += 1; a freed container: count[0] -= 1);
 *   - when count[0] exceeds threshold[0] (700), the oldest generation i
 *     whose count exceeds its threshold is collected with the younger ones:
 *     count[i+1] += 1 and count[0..i] = 0, so generation 1 is collected
 *     every threshold[1] (10) collections of generation 0, and generation 2
 *     every threshold[2] (10) of generation 1;
 *   - except that a full collection runs only when
 *         long_lived_pending > long_lived_total / 4
 *     (objects that survived a generation-1 collection since the last full
 *     one, against the survivors of that full collection): without it, a
 *     program that builds a large heap would pay a full collection every
 *     7,000 x 10 allocations, quadratic in all (Martin von Loewis, bpo-4074).
 * Survivors of generation i move to generation i+1. A full collection then
 * asks the allocator to hand back its cached memory (hl_alloc_collect) and
 * empties the calling thread's free lists, as CPython 3.11 clears its free
 * lists after a full collection; with --gc-untrack=on it also untracks the
 * dicts that hold no container any more (collect.c; CPython untracks dicts
 * only then, so that a dict being filled is not rescanned at every young
 * collection). The survivors are counted by the collection as it confirms
 * them (collect.c), not by walking the list again as CPython does.
 *
 * Statistics: per generation, collections, objects found, objects visited
 * and pause time; a histogram of pauses overall and per generation; and a
 * log of each pause's start and end for the minimum mutator utilisation,
 * kept in bounded memory by sync/mmu.c's online tracker. A pause is the
 * whole time the mutator waits: from the first list operation to the end of
 * the memory hand-back, callbacks left out (they are the program's code).
 *
 * freeze() moves every tracked object into a permanent generation that no
 * collection looks at (gc.freeze, for fork: the pages of a frozen heap are
 * never written by the collector, so they stay shared copy-on-write).
 *
 * Under the GIL a collection runs in the thread whose allocation triggered
 * it (or that called hl_gc_collect), holding the GIL throughout.
 *
 * Without a GIL (rc=atomic, rc=biased) the same thread stops the world
 * first (sync/stw.c: every other attached thread parks at its next
 * checkpoint), merges the biased counts (every owner is parked, so its
 * queue can be drained for it), gathers the per-thread generation-0 lists
 * (gc_internal.h), and runs the same collection; finalizers, weakref
 * callbacks and the gc callbacks run with the world still stopped, and the
 * world resumes when the collection is over. That is the simplest correct
 * schedule: CPython 3.13t resumes the world around its finalizers and
 * stops it again to look for resurrected objects, which shortens the pause
 * by the finalizers' time (a refinement left for the incremental
 * collector, whose whole point is the pause). Its pause is measured from
 * the stop request, so it includes the time to stop, which is also
 * recorded alone ("stw_ns"). The other entry points that walk or move the
 * lists (collect, freeze, unfreeze, get_objects, get_referrers, the
 * counts) stop the world for themselves.
 */
#include <stdio.h>
#include <stdlib.h>

#include "gc_internal.h"
#include "hl_measure.h"
#include "hl_thread.h"

hl_gc_state_t hli_gc;

typedef struct callback { hl_gc_callback_fn fn; void *arg; } callback_t;
static callback_t callbacks[16];
static int ncallbacks;
static hl_gc_stats_t stats;
static hl_hist_t pause_all, pause_gen[HL_GC_GENERATIONS];
/* The pause log: at most this many pauses within 100 ms are kept (3 MiB). */
#define PAUSE_LOG_MAX ((size_t)1 << 17)
static hl_mmu_tracker_t pause_log;
const uint64_t hl_gc_mmu_window_ns[HL_GC_MMU_WINDOWS] = {1000000, 10000000, 100000000};

/* ---- without a GIL: the stripes, and stopping the world ------------------------------ */
typedef struct stripe {
  hl_spinlock_t lock;
  hl_gc_head_t head;          /* this stripe's generation 0 (unused in stripe 0) */
} HL_CACHE_ALIGNED stripe_t;
/* [0]: the lock of the shared lists (hli_gc's generations and permanent) */
static stripe_t stripes[HLI_GC_STRIPES + 1];
/* the highest stripe a container went into: a collection looks no further */
static HL_CACHE_ALIGNED uint32_t stripes_used;
static hl_hist_t stw_hist;    /* the collector's times to stop the world */

static inline unsigned stripe_of(const hl_object_t *o) {
  return (o->flags & HL_OF_STRIPE_MASK) >> HL_OF_STRIPE_SHIFT;
}
static inline void set_stripe(hl_object_t *o, unsigned s) {
  o->flags = (uint16_t)((o->flags & ~HL_OF_STRIPE_MASK) | (s << HL_OF_STRIPE_SHIFT));
}

static void set_batch(uint32_t threshold0) {
  uint32_t b = threshold0 / 64;
  b = b < 1 ? 1 : b > HLI_GC_COUNT_BATCH ? HLI_GC_COUNT_BATCH : b;
  __atomic_store_n(&hli_gc.ft_batch, (int32_t)b, __ATOMIC_RELAXED);
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

static inline bool load_bool(const bool *b) { return __atomic_load_n(b, __ATOMIC_RELAXED); }
static inline void store_bool(bool *b, bool v) { __atomic_store_n(b, v, __ATOMIC_RELAXED); }
static inline uint32_t threshold(int i) {
  return hl_atomic_load_relaxed_u32(&hli_gc.gen[i].threshold);
}

/* Generation i's count: generation 0's is shared in the free-threaded modes. */
static uint32_t gen_count(int i) {
  if (i == 0 && hli_ft()) {
    int64_t n = (int64_t)hl_atomic_load_relaxed_u64(&hli_gc.ft_count0);
    return n < 0 ? 0 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
  }
  return hli_gc.gen[i].count;
}

/* A thread has crossed the threshold and is stopping the world: the others
 * that cross it meanwhile go on (the first one's collection resets the
 * count) rather than stop the world again to find nothing to do. */
static HL_CACHE_ALIGNED uint32_t ft_trigger;

void hli_gc_count_flush_ft(void) {
  int64_t n = count_add(hli_tstate.gc_count);
  uint32_t t = threshold(0);
  if (n > (int64_t)t && t && load_bool(&hli_gc.enabled) && !load_bool(&hli_gc.collecting) &&
      hl_atomic_load_relaxed_u32(&ft_trigger) == 0 && hl_atomic_cas_u32(&ft_trigger, 0, 1)) {
    hli_gc_collect_generations();
    hl_atomic_store_release_u32(&ft_trigger, 0);
  }
}

/* Stops the world for a free-threaded mode, unless this thread has already
 * (a finalizer or callback of its collection calling back in); returns
 * the time the request was made, 0 when it did not stop it. */
static uint64_t world_stop(void) {
  if (!hli_ft() || hl_stw_stopped()) return 0;
  uint64_t t0 = hl_now_ns();
  hl_stw_stop();
  hl_hist_record(&stw_hist, hl_now_ns() - t0);
  return t0;
}
static void world_resume(uint64_t stopped_at) {
  if (stopped_at) hl_stw_resume();
}

/* With the world stopped: every stripe's list into generation 0, its
 * objects marked as in the shared lists. */
static void gather_stripes(void) {
  if (!hli_ft()) return;
  unsigned used = hl_atomic_load_relaxed_u32(&stripes_used);
  for (unsigned s = 1; s <= used; s++) {
    hl_gc_head_t *l = &stripes[s].head;
    if (hli_gc_list_empty(l)) continue;
    for (hl_gc_head_t *g = hli_gc_next(l); g != l; g = hli_gc_next(g)) set_stripe(HL_GC_OBJ(g), 0);
    hli_gc_list_merge(l, &hli_gc.gen[0].head);
  }
}

void hl_gc_stw_hist(hl_hist_t *out) { *out = stw_hist; }

int hli_gc_init(const hl_config_t *c) {
  hli_gc.active = c->gc != HL_GC_NONE;
  hli_gc.untrack = c->gc_untrack;
  hli_gc.enabled = hli_gc.active;
  hli_gc.collecting = false;
  hli_gc.debug = 0;
  for (int i = 0; i < HL_GC_GENERATIONS; i++) {
    hli_gc_list_init(&hli_gc.gen[i].head);
    hli_gc.gen[i].threshold = c->threshold[i];
    hli_gc.gen[i].count = 0;
  }
  hli_gc.ft_count0 = 0;
  set_batch(c->threshold[0]);
  for (unsigned s = 0; s <= HLI_GC_STRIPES; s++) {
    hl_spinlock_init(&stripes[s].lock);
    hli_gc_list_init(&stripes[s].head);
  }
  stripes_used = 0;
  hli_gc_list_init(&hli_gc.permanent);
  hli_gc.long_lived_total = hli_gc.long_lived_pending = 0;
  hli_gc.garbage = NULL;
  ncallbacks = 0;
  hl_mmu_tracker_init(&pause_log, hl_gc_mmu_window_ns, HL_GC_MMU_WINDOWS, PAUSE_LOG_MAX,
                      hl_now_ns());
  hl_gc_stats_reset();
  return 0;
}

/* Objects still tracked at shut-down are the program's (it still holds
 * them) or cyclic garbage never collected: they are untracked so that the
 * lists do not point into freed memory if the runtime starts again. */
static void untrack_all(hl_gc_head_t *l) {
  while (!hli_gc_list_empty(l)) hli_gc_list_remove(hli_gc_next(l));
}

void hli_gc_fini(void) {
  if (hli_gc.garbage) {
    hl_object_t *g = hli_gc.garbage;
    hli_gc.garbage = NULL;
    hl_decref(g);
  }
  gather_stripes();
  for (int i = 0; i < HL_GC_GENERATIONS; i++) untrack_all(&hli_gc.gen[i].head);
  untrack_all(&hli_gc.permanent);
  hli_gc.active = hli_gc.enabled = false;
  hl_mmu_tracker_free(&pause_log);
}

static void run_callbacks(bool start, const hl_gc_info_t *info) {
  for (int i = 0; i < ncallbacks; i++) callbacks[i].fn(start, info, callbacks[i].arg);
}

/* stopped_at: when the world was stopped for it (free-threaded modes), or 0. */
static int64_t collect(int generation, uint64_t stopped_at) {
  store_bool(&hli_gc.collecting, true);
  hl_gc_info_t info = {.generation = generation};
  run_callbacks(true, &info);
  uint64_t t0 = stopped_at ? stopped_at : hl_now_ns();
  if (hli_ft()) {
    hl_rc_merge_all_stopped();   /* biased: counts are local + shared from here */
    gather_stripes();
    /* the count starts again; so does this thread's part of it (the
     * others' parts, under a batch each, are added as they come) */
    hl_atomic_store_relaxed_u64(&hli_gc.ft_count0, 0);
    hli_tstate.gc_count = 0;
  }
  /* generation and the younger ones, as one list */
  if (generation + 1 < HL_GC_GENERATIONS) hli_gc.gen[generation + 1].count++;
  for (int i = 0; i <= generation; i++) hli_gc.gen[i].count = 0;
  hl_gc_head_t *young = &hli_gc.gen[generation].head;
  for (int i = 0; i < generation; i++) hli_gc_list_merge(&hli_gc.gen[i].head, young);
  hl_gc_head_t *old = generation + 1 < HL_GC_GENERATIONS ? &hli_gc.gen[generation + 1].head : young;
  hl_gc_work_t work = {0, 0, 0};
  uint64_t found = hli_gc_collect_list(young, old, &info, young == old, &work);
  /* survivors move up a generation */
  if (young != old) {
    if (generation == HL_GC_GENERATIONS - 2) hli_gc.long_lived_pending += work.survivors;
    hli_gc_list_merge(young, old);
  } else {
    hli_gc.long_lived_pending = 0;
    hli_gc.long_lived_total = work.survivors;
  }
  if (generation == HL_GC_GENERATIONS - 1) {
    hl_freelists_clear();
    hl_alloc_collect();
  }
  uint64_t t1 = hl_now_ns(), pause = t1 - t0;
  stats.collections[generation]++;
  stats.collected[generation] += info.collected;
  stats.uncollectable[generation] += info.uncollectable;
  stats.visited_gen[generation] += work.visited;
  stats.pause_ns_gen[generation] += pause;
  stats.visited += work.visited;
  stats.pause_ns_total += pause;
  stats.untracked += work.untracked;
  hl_hist_record(&pause_all, pause);
  hl_hist_record(&pause_gen[generation], pause);
  hl_mmu_tracker_add(&pause_log, t0, t1);
  if (hli_gc.debug & HL_GC_DEBUG_STATS)
    fprintf(stderr,
            "gc: generation %d: %llu objects examined, %llu unreachable, %llu uncollectable, "
            "%llu untracked, %.3f ms\n",
            generation, (unsigned long long)work.visited, (unsigned long long)info.collected,
            (unsigned long long)info.uncollectable, (unsigned long long)work.untracked,
            (double)pause / 1e6);
  store_bool(&hli_gc.collecting, false);
  run_callbacks(false, &info);
  return (int64_t)found;
}

void hli_gc_collect_generations(void) {
  /* Without a GIL: another thread may have collected between our count
   * and the stop, so the choice is made with the world stopped. */
  uint64_t stopped_at = world_stop();
  if (!hli_ft() || (load_bool(&hli_gc.enabled) && !load_bool(&hli_gc.collecting))) {
    for (int i = HL_GC_GENERATIONS - 1; i >= 0; i--) {
      if (gen_count(i) > threshold(i) && (i > 0 || threshold(0))) {
        if (i == HL_GC_GENERATIONS - 1 &&
            hli_gc.long_lived_pending < hli_gc.long_lived_total / 4)
          continue;
        collect(i, stopped_at);
        break;
      }
    }
  }
  world_resume(stopped_at);
}

/* ---- the gc module ----------------------------------------------------------------- */
bool hl_gc_active(void) { return hli_gc.active; }

int64_t hl_gc_collect(int generation) {
  if (generation < 0 || generation >= HL_GC_GENERATIONS) {
    hl_err_set(HL_ERR_VALUE, "invalid generation %d: accepted 0..%d", generation,
               HL_GC_GENERATIONS - 1);
    return -1;
  }
  if (!hli_gc.active || load_bool(&hli_gc.collecting)) return 0;
  uint64_t stopped_at = world_stop();
  /* another thread's collection may have run while we waited to stop */
  int64_t r = load_bool(&hli_gc.collecting) ? 0 : collect(generation, stopped_at);
  world_resume(stopped_at);
  return r;
}

void hl_gc_enable(void) { store_bool(&hli_gc.enabled, hli_gc.active); }
void hl_gc_disable(void) { store_bool(&hli_gc.enabled, false); }
bool hl_gc_isenabled(void) { return load_bool(&hli_gc.enabled); }

void hl_gc_set_threshold(uint32_t a, uint32_t b, uint32_t c) {
  hl_atomic_store_relaxed_u32(&hli_gc.gen[0].threshold, a);
  set_batch(a);
  hl_atomic_store_relaxed_u32(&hli_gc.gen[1].threshold, b);
  hl_atomic_store_relaxed_u32(&hli_gc.gen[2].threshold, c);
}
void hl_gc_get_threshold(uint32_t out[HL_GC_GENERATIONS]) {
  for (int i = 0; i < HL_GC_GENERATIONS; i++) out[i] = threshold(i);
}
void hl_gc_get_count(uint32_t out[HL_GC_GENERATIONS]) {
  uint64_t stopped_at = world_stop();
  /* the calling thread's own part of generation 0's count first */
  if (hli_ft() && hli_tstate.gc_count) count_add(hli_tstate.gc_count);
  for (int i = 0; i < HL_GC_GENERATIONS; i++) out[i] = gen_count(i);
  world_resume(stopped_at);
}

void hl_gc_freeze(void) {
  uint64_t stopped_at = world_stop();
  gather_stripes();
  for (int i = 0; i < HL_GC_GENERATIONS; i++) {
    hli_gc_list_merge(&hli_gc.gen[i].head, &hli_gc.permanent);
    hli_gc.gen[i].count = 0;
  }
  hl_atomic_store_relaxed_u64(&hli_gc.ft_count0, 0);
  hli_tstate.gc_count = 0;
  world_resume(stopped_at);
}
void hl_gc_unfreeze(void) {
  uint64_t stopped_at = world_stop();
  hli_gc_list_merge(&hli_gc.permanent, &hli_gc.gen[HL_GC_GENERATIONS - 1].head);
  world_resume(stopped_at);
}
size_t hl_gc_get_freeze_count(void) {
  uint64_t stopped_at = world_stop();
  size_t n = hli_gc_list_size(&hli_gc.permanent);
  world_resume(stopped_at);
  return n;
}

bool hl_gc_is_tracked(const hl_object_t *o) {
  return (o->flags & HL_OF_GC) && hli_gc_tracked(o);
}
void hl_gc_track(hl_object_t *o) {
  HL_ASSERT(o->flags & HL_OF_GC);
  hli_gc_track(o);
}
void hl_gc_untrack(hl_object_t *o) {
  if (!hl_gc_is_tracked(o)) return;
  if (!hli_ft()) {
    hli_gc_list_remove(HL_GC_HEAD(o));
    return;
  }
  /* the caller holds a reference: o's stripe changes only with the world
   * stopped, which it is not while we run */
  stripe_t *st = &stripes[stripe_of(o)];
  hl_spinlock_lock(&st->lock);
  if (HL_GC_HEAD(o)->next) hli_gc_list_remove(HL_GC_HEAD(o));
  hl_spinlock_unlock(&st->lock);
}

static int append_objects(hl_object_t *list, hl_gc_head_t *l) {
  for (hl_gc_head_t *g = hli_gc_next(l); g != l; g = hli_gc_next(g))
    if (HL_GC_OBJ(g) != list && hl_list_append(list, HL_GC_OBJ(g)) != 0) return -1;
  return 0;
}

hl_object_t *hl_gc_get_objects(int generation) {
  if (generation < -1 || generation >= HL_GC_GENERATIONS) {
    hl_err_set(HL_ERR_VALUE, "invalid generation %d: accepted -1..%d", generation,
               HL_GC_GENERATIONS - 1);
    return NULL;
  }
  hl_object_t *list = hl_list_new(0);
  if (!list) return NULL;
  uint64_t stopped_at = world_stop();
  gather_stripes();
  for (int i = 0; i < HL_GC_GENERATIONS; i++)
    if ((generation == -1 || generation == i) && append_objects(list, &hli_gc.gen[i].head) != 0) {
      world_resume(stopped_at);
      hl_decref(list);
      return NULL;
    }
  world_resume(stopped_at);
  return list;
}

typedef struct { hl_object_t *target; bool found; } referrer_probe_t;
static int visit_probe(hl_object_t *o, void *arg) {
  referrer_probe_t *p = arg;
  if (o == p->target) {
    p->found = true;
    return 1;
  }
  return 0;
}

hl_object_t *hl_gc_get_referrers(hl_object_t *o) {
  hl_object_t *list = hl_list_new(0);
  if (!list) return NULL;
  hl_gc_head_t *lists[HL_GC_GENERATIONS + 1] = {&hli_gc.gen[0].head, &hli_gc.gen[1].head,
                                                &hli_gc.gen[2].head, &hli_gc.permanent};
  uint64_t stopped_at = world_stop();
  gather_stripes();
  for (size_t k = 0; k < HL_ARRAY_LEN(lists); k++)
    for (hl_gc_head_t *g = hli_gc_next(lists[k]); g != lists[k]; g = hli_gc_next(g)) {
      hl_object_t *r = HL_GC_OBJ(g);
      if (r == list) continue;
      referrer_probe_t p = {o, false};
      hl_traverse(r, visit_probe, &p);
      if (p.found && hl_list_append(list, r) != 0) {
        world_resume(stopped_at);
        hl_decref(list);
        return NULL;
      }
    }
  world_resume(stopped_at);
  return list;
}

static int visit_collect(hl_object_t *o, void *arg) { return hl_list_append(arg, o) ? 1 : 0; }

hl_object_t *hl_gc_get_referents(hl_object_t *o) {
  hl_object_t *list = hl_list_new(0);
  if (!list) return NULL;
  if (hl_traverse(o, visit_collect, list) != 0) {
    hl_decref(list);
    return NULL;
  }
  return list;
}

void hl_gc_set_debug(unsigned flags) { hli_gc.debug = flags; }
unsigned hl_gc_get_debug(void) { return hli_gc.debug; }
hl_object_t *hl_gc_garbage(void) {
  if (!hli_gc.garbage) hli_gc.garbage = hl_list_new(0);
  return hli_gc.garbage;
}

int hl_gc_callback_add(hl_gc_callback_fn fn, void *arg) {
  if (ncallbacks == (int)HL_ARRAY_LEN(callbacks)) {
    hl_err_set(HL_ERR_VALUE, "at most %zu gc callbacks", HL_ARRAY_LEN(callbacks));
    return -1;
  }
  callbacks[ncallbacks++] = (callback_t){fn, arg};
  return 0;
}

void hl_gc_callback_remove(hl_gc_callback_fn fn, void *arg) {
  for (int i = 0; i < ncallbacks; i++)
    if (callbacks[i].fn == fn && callbacks[i].arg == arg) {
      callbacks[i] = callbacks[--ncallbacks];
      return;
    }
}

void hl_gc_stats(hl_gc_stats_t *s) { *s = stats; }

void hl_gc_stats_reset(void) {
  stats = (hl_gc_stats_t){0};
  hl_hist_init(&stw_hist);
  hl_hist_init(&pause_all);
  for (int i = 0; i < HL_GC_GENERATIONS; i++) hl_hist_init(&pause_gen[i]);
  hl_mmu_tracker_reset(&pause_log, hl_now_ns());
}

void hl_gc_mmu(uint64_t end_ns, double out[HL_GC_MMU_WINDOWS], bool *exact) {
  for (unsigned i = 0; i < HL_GC_MMU_WINDOWS; i++)
    out[i] = hl_mmu_tracker_get(&pause_log, i, end_ns);
  if (exact) *exact = pause_log.exact;
}

const struct hl_hist *hl_gc_pause_hist(int generation) {
  if (generation < 0 || generation >= HL_GC_GENERATIONS) return &pause_all;
  return &pause_gen[generation];
}
