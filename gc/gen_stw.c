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
 */
#include <stdio.h>
#include <stdlib.h>

#include "gc_internal.h"
#include "hl_measure.h"

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
  for (int i = 0; i < HL_GC_GENERATIONS; i++) untrack_all(&hli_gc.gen[i].head);
  untrack_all(&hli_gc.permanent);
  hli_gc.active = hli_gc.enabled = false;
  hl_mmu_tracker_free(&pause_log);
}

static void run_callbacks(bool start, const hl_gc_info_t *info) {
  for (int i = 0; i < ncallbacks; i++) callbacks[i].fn(start, info, callbacks[i].arg);
}

static int64_t collect(int generation) {
  hli_gc.collecting = true;
  hl_gc_info_t info = {.generation = generation};
  run_callbacks(true, &info);
  uint64_t t0 = hl_now_ns();
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
  hli_gc.collecting = false;
  run_callbacks(false, &info);
  return (int64_t)found;
}

void hli_gc_collect_generations(void) {
  for (int i = HL_GC_GENERATIONS - 1; i >= 0; i--) {
    if (hli_gc.gen[i].count > hli_gc.gen[i].threshold) {
      if (i == HL_GC_GENERATIONS - 1 && hli_gc.long_lived_pending < hli_gc.long_lived_total / 4)
        continue;
      collect(i);
      return;
    }
  }
}

/* ---- the gc module ----------------------------------------------------------------- */
bool hl_gc_active(void) { return hli_gc.active; }

int64_t hl_gc_collect(int generation) {
  if (generation < 0 || generation >= HL_GC_GENERATIONS) {
    hl_err_set(HL_ERR_VALUE, "invalid generation %d: accepted 0..%d", generation,
               HL_GC_GENERATIONS - 1);
    return -1;
  }
  if (!hli_gc.active || hli_gc.collecting) return 0;
  return collect(generation);
}

void hl_gc_enable(void) { hli_gc.enabled = hli_gc.active; }
void hl_gc_disable(void) { hli_gc.enabled = false; }
bool hl_gc_isenabled(void) { return hli_gc.enabled; }

void hl_gc_set_threshold(uint32_t a, uint32_t b, uint32_t c) {
  hli_gc.gen[0].threshold = a;
  hli_gc.gen[1].threshold = b;
  hli_gc.gen[2].threshold = c;
}
void hl_gc_get_threshold(uint32_t out[HL_GC_GENERATIONS]) {
  for (int i = 0; i < HL_GC_GENERATIONS; i++) out[i] = hli_gc.gen[i].threshold;
}
void hl_gc_get_count(uint32_t out[HL_GC_GENERATIONS]) {
  for (int i = 0; i < HL_GC_GENERATIONS; i++) out[i] = hli_gc.gen[i].count;
}

void hl_gc_freeze(void) {
  for (int i = 0; i < HL_GC_GENERATIONS; i++) {
    hli_gc_list_merge(&hli_gc.gen[i].head, &hli_gc.permanent);
    hli_gc.gen[i].count = 0;
  }
}
void hl_gc_unfreeze(void) {
  hli_gc_list_merge(&hli_gc.permanent, &hli_gc.gen[HL_GC_GENERATIONS - 1].head);
}
size_t hl_gc_get_freeze_count(void) { return hli_gc_list_size(&hli_gc.permanent); }

bool hl_gc_is_tracked(const hl_object_t *o) {
  return (o->flags & HL_OF_GC) && HL_GC_HEAD(o)->next != 0;
}
void hl_gc_track(hl_object_t *o) {
  HL_ASSERT(o->flags & HL_OF_GC);
  hli_gc_track(o);
}
void hl_gc_untrack(hl_object_t *o) {
  if (hl_gc_is_tracked(o)) hli_gc_list_remove(HL_GC_HEAD(o));
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
  for (int i = 0; i < HL_GC_GENERATIONS; i++)
    if ((generation == -1 || generation == i) && append_objects(list, &hli_gc.gen[i].head) != 0) {
      hl_decref(list);
      return NULL;
    }
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
  for (size_t k = 0; k < HL_ARRAY_LEN(lists); k++)
    for (hl_gc_head_t *g = hli_gc_next(lists[k]); g != lists[k]; g = hli_gc_next(g)) {
      hl_object_t *r = HL_GC_OBJ(g);
      if (r == list) continue;
      referrer_probe_t p = {o, false};
      hl_traverse(r, visit_probe, &p);
      if (p.found && hl_list_append(list, r) != 0) {
        hl_decref(list);
        return NULL;
      }
    }
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
