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
 * A pause is the whole time the mutator waits: from the first list
 * operation to the end of the memory hand-back, callbacks left out (they
 * are the program's code); gcmodule.c records it.
 *
 * Under the GIL a collection runs in the thread whose allocation triggered
 * it (or that called hl_gc_collect), holding the GIL throughout.
 *
 * Without a GIL (rc=atomic, rc=biased) the same thread stops the world
 * first (sync/stw.c: every other attached thread parks at its next
 * checkpoint), merges the biased counts (every owner is parked, so its
 * queue can be drained for it), gathers the per-thread generation-0 lists
 * (track.c), and runs the same collection; finalizers, weakref
 * callbacks and the gc callbacks run with the world still stopped, and
 * so, by default, does the deletion of the garbage. With
 * --gc-sweep=resumed the garbage it proved unreachable is deleted after the
 * world resumes, by the same thread, while the others run (collect.c's
 * hli_gc_sweep: nothing else can reach it, its weakrefs are cleared, its
 * finalizers ran, its owners gave it up), and so is a full collection's
 * memory hand-back: the others wait for the finding, not the freeing (the
 * sweep's own time is "sweep_ns"). CPython 3.13t goes further and resumes the world around its
 * finalizers, stopping it again to look for resurrected objects; heaplab
 * runs them stopped, which keeps resurrection simple. Its pause is
 * measured from the stop request, so it includes the time to stop, which
 * is also recorded alone ("stw_ns").
 *
 * This file is the collector's row (collector.h): its trigger and its
 * collect; the gc module's entry points (gcmodule.c) call them.
 */
#include <stdio.h>

#include "collector.h"

/* Generation `generation` with the younger ones, as one list: the
 * collection proper, shared with the incremental collector's young
 * generations (gen_incr.c). The world is stopped (no GIL) and the biased
 * counts merged. Survivors move up a generation. */
uint64_t hli_gc_generations_collect(int generation, hl_gc_info_t *info, hl_gc_work_t *work) {
  if (generation + 1 < HL_GC_GENERATIONS) hli_gc.gen[generation + 1].count++;
  for (int i = 0; i <= generation; i++) hli_gc.gen[i].count = 0;
  hl_gc_head_t *young = &hli_gc.gen[generation].head;
  for (int i = 0; i < generation; i++) hli_gc_list_merge(&hli_gc.gen[i].head, young);
  hl_gc_head_t *old = generation + 1 < HL_GC_GENERATIONS ? &hli_gc.gen[generation + 1].head : young;
  uint64_t found = hli_gc_collect_list(young, old, info, young == old, work);
  if (young != old) {
    if (generation == HL_GC_GENERATIONS - 2) hli_gc.long_lived_pending += work->survivors;
    hli_gc_list_merge(young, old);
  } else {
    hli_gc.long_lived_pending = 0;
    hli_gc.long_lived_total = work->survivors;
  }
  return found;
}

/* The oldest generation, up to `oldest`, whose count exceeds its threshold
 * (generation 2 only under the long-lived rule), or -1. */
int hli_gc_generation_due(int oldest) {
  for (int i = oldest; i >= 0; i--) {
    if (hli_gc_gen_count(i) > hli_gc_threshold(i) && (i > 0 || hli_gc_threshold(0))) {
      if (i == HL_GC_GENERATIONS - 1 && hli_gc.long_lived_pending < hli_gc.long_lived_total / 4)
        continue;
      return i;
    }
  }
  return -1;
}

void hli_gc_stopped_prepare(void) {
  if (hli_nogil()) {
    hl_rc_merge_all_stopped();   /* biased: counts are local + shared from here */
    hli_gc_gather_stripes(true);   /* a collection follows */
    hli_gc_count0_reset();
  }
}

/* stopped_at: when the world was stopped for it (no GIL), or 0. */
int64_t hli_gc_stw_collect(int generation, uint64_t stopped_at) {
  hli_gc_store_bool(&hli_gc.collecting, true);
  hl_gc_info_t info = {.generation = generation, .full = generation == HL_GC_GENERATIONS - 1};
  hli_gc_callbacks_run(true, &info);
  uint64_t t0 = stopped_at ? stopped_at : hl_now_ns();
  hli_gc_stopped_prepare();
  hl_gc_work_t work = {0, 0, 0};
  uint64_t found = hli_gc_generations_collect(generation, &info, &work);
  if (generation == HL_GC_GENERATIONS - 1) {
    if (hli_gc.sweep_later) {
      hli_gc.sweep_hand_back = true;   /* after the sweep, the world running */
    } else {
      hl_freelists_clear();
      hl_alloc_collect();
    }
  }
  hli_gc_pause_record(generation, &info, &work, t0, hl_now_ns());
  hli_gc_store_bool(&hli_gc.collecting, false);
  hli_gc_callbacks_run(false, &info);
  return (int64_t)found;
}

/* The trigger: the oldest generation over its threshold, with the younger. */
static void collect_generations(void) {
  /* Without a GIL: another thread may have collected between our count
   * and the stop, so the choice is made with the world stopped. */
  uint64_t stopped_at = hli_gc_world_stop();
  if (!hli_nogil() ||
      (hli_gc_load_bool(&hli_gc.enabled) && !hli_gc_load_bool(&hli_gc.collecting))) {
    int i = hli_gc_generation_due(HL_GC_GENERATIONS - 1);
    if (i >= 0) hli_gc_stw_collect(i, stopped_at);
  }
  hli_gc_world_resume(stopped_at);
}

const hli_collector_t hli_collector_stw = {
  .name = "stw",
  .tracks = true,
  .trigger = collect_generations,
  .collect = hli_gc_stw_collect,
};
