/* The collector table: one const row per value of --gc.
 *
 * MMTk builds each of its plans behind one trait and picks one with one
 * match (mmtk-core src/plan/); liburcu gives each flavor a const struct of
 * functions (urcu/urcu-flavor.h); CPython keeps the gc module's API
 * (Modules/gcmodule.c) apart from the collector (Python/gc.c). heaplab does
 * the same with three parts:
 *
 *   gcmodule.c   the gc module's API (collect, thresholds, counts, freeze,
 *                get_objects, referrers, callbacks, debug, statistics, MMU)
 *                and the services every collector shares: stopping the
 *                world, the callbacks, recording a pause;
 *   track.c      tracking: which list a new container goes into (without
 *                a GIL, its thread's generation-0 stripe) and the count
 *                that triggers a collection;
 *   collect.c    the algorithm (trial deletion) on one list.
 *
 * and one file per collector that defines its row, hli_collector_<name>
 * (gc_none.c, gen_stw.c). The rows are listed once, in HL_GC_COLLECTORS
 * (base configuration header hl_config.h), from which gcmodule.c builds the
 * table below and the option table builds --gc's values. Hot paths never
 * call through a row: tracking and counting stay inline (gc_internal.h);
 * a row is called on slow paths only (a threshold crossed, gc.collect, a
 * thread attaching, start-up).
 *
 * What a row must do, and when it is called:
 *   init      at hl_runtime_init, after the gc module's own state (lists,
 *             thresholds, statistics) and before any object exists;
 *   fini      at hl_runtime_fini, before the lists are emptied;
 *   trigger   generation 0's count went past its threshold: an allocation
 *             under the GIL (hli_gc_on_alloc), or without a GIL the thread
 *             whose batch took the shared count over it (track.c), which
 *             has claimed the trigger so that no other thread enters;
 *             automatic collection is enabled and none is running;
 *   collect   gc.collect(generation): with the world stopped when there is
 *             no GIL (stopped_at: when the stop was asked, for the pause;
 *             0 under the GIL); returns the unreachable objects found;
 *   gather    before the gc module walks or moves the lists itself
 *             (freeze, get_objects, get_referrers, shut-down), with the
 *             world stopped: every tracked object into the generation
 *             lists or the permanent one (NULL: the stripes are gathered,
 *             which is all a collector without lists of its own needs);
 *   thread_attach, thread_detach
 *             a thread attaches to or detaches from the runtime (its
 *             hooks run in that thread); NULL: nothing to do. A collector
 *             with per-thread state (a concurrent one's buffers) keeps it
 *             here.
 * tracks: whether containers are tracked and counted at all (none: no,
 * and the gc module's calls return at once).
 */
#ifndef HL_GC_COLLECTOR_H
#define HL_GC_COLLECTOR_H

#include "gc_internal.h"
#include "hl_measure.h"

typedef struct hli_collector {
  const char *name;
  bool tracks;
  int (*init)(const hl_config_t *c);
  void (*fini)(void);
  void (*trigger)(void);
  int64_t (*collect)(int generation, uint64_t stopped_at);
  /* hl_gc_step: one increment now, automatic collection enabled or not
   * (world stopped as for collect); NULL: collect the generation the
   * thresholds ask for, 0 when none does. */
  int64_t (*step)(uint64_t stopped_at);
  void (*gather)(void);
  void (*thread_attach)(hl_thread_t *t);
  void (*thread_detach)(hl_thread_t *t);
} hli_collector_t;

/* Each built collector's row, defined in its file. */
#define HLI_COLLECTOR_DECL_(ID, name, built, rc, help, why_not) \
  extern const hli_collector_t hli_collector_##name;
HL_GC_COLLECTORS(HLI_COLLECTOR_DECL_)
#undef HLI_COLLECTOR_DECL_

/* ---- the gc module's services to the collectors (gcmodule.c) ----------------- */
/* Stops the world when there is no GIL, unless this thread has already (a
 * finalizer or callback of its collection calling back in); returns the
 * time the stop was asked, 0 when it did not stop it. */
HL_INTERNAL uint64_t hli_gc_world_stop(void);
HL_INTERNAL void hli_gc_world_resume(uint64_t stopped_at);
/* Without a GIL: the garbage this thread's collections found with the
 * world stopped, deleted now, the world running (and a full collection's
 * memory hand-back); a no-op when there is none. Call it after
 * hli_gc_world_resume, once nothing held would keep other threads from
 * collecting (gcmodule.c). */
HL_INTERNAL void hli_gc_sweep_pending(void);
/* The gc callbacks (hl_gc_callback_add), before and after a collection. */
HL_INTERNAL void hli_gc_callbacks_run(bool start, const hl_gc_info_t *info);
/* One collection of `generation` paused the mutator from t0 to t1: the
 * statistics, the pause histograms, the MMU log, the debug line. */
HL_INTERNAL void hli_gc_pause_record(int generation, const hl_gc_info_t *info,
                                     const hl_gc_work_t *work, uint64_t t0, uint64_t t1);

/* ---- the generational schedule (gen_stw.c), shared -------------------------------- */
/* Collects generation `generation` with the younger ones (world stopped,
 * biased counts merged, stripes gathered); survivors move up. */
HL_INTERNAL uint64_t hli_gc_generations_collect(int generation, hl_gc_info_t *info,
                                                hl_gc_work_t *work);
/* With the world stopped (no GIL): the biased counts merged, the stripes
 * gathered into generation 0, its count started again; nothing under it. */
HL_INTERNAL void hli_gc_stopped_prepare(void);
/* stw's gc.collect(generation): callbacks, the collection, a full one's
 * hand-back of memory, the pause recorded. */
HL_INTERNAL int64_t hli_gc_stw_collect(int generation, uint64_t stopped_at);
/* The oldest generation up to `oldest` whose count is over its threshold
 * (generation 2 under the long-lived rule), or -1. */
HL_INTERNAL int hli_gc_generation_due(int oldest);

/* The statistics, for a collector's own figures (gcmodule.c owns them). */
HL_INTERNAL hl_gc_stats_t *hli_gc_stats_mut(void);
/* --gc=incremental: one increment's work units (the histogram). */
HL_INTERNAL void hli_gc_increment_record(uint64_t units);
/* --gc=incremental: the time a unit of scan work takes, which converts the
 * pause budget into units (gen_incr.c). A moving average over samples of
 * at least HLI_UNIT_SAMPLE units, gathered over as many increments as that
 * takes: a sample of fewer is noise, and an estimate that moved only on
 * increments of that many units would lock itself in once one slow
 * increment made it so high that the budget converts to fewer. */
#define HLI_UNIT_SAMPLE 256
typedef struct hli_unit_clock {
  double ns_per_unit;
  uint64_t sample_ns, sample_units;   /* since the average last moved */
} hli_unit_clock_t;
static inline void hli_unit_clock_add(hli_unit_clock_t *c, uint64_t ns, uint64_t units) {
  c->sample_ns += ns;
  c->sample_units += units;
  if (c->sample_units < HLI_UNIT_SAMPLE) return;
  c->ns_per_unit = 0.875 * c->ns_per_unit + 0.125 * (double)c->sample_ns / (double)c->sample_units;
  c->sample_ns = c->sample_units = 0;
}

/* ---- tracking (track.c) ------------------------------------------------------- */
HL_INTERNAL void hli_gc_track_init(const hl_config_t *c);
/* With the world stopped: every stripe's list into generation 0, its
 * objects marked as in the shared lists (no GIL; nothing under it), or,
 * with then_collect, left for the collection of generation 0 that follows
 * before the world resumes to mark (hli_gc.stripes_stale). */
HL_INTERNAL void hli_gc_gather_stripes(bool then_collect);
/* Generation 0's count starts again, the calling thread's part with it
 * (the others' parts, under a batch each, are added as they come). */
HL_INTERNAL void hli_gc_count0_reset(void);
/* Generation i's count (0's is shared without a GIL). */
HL_INTERNAL uint32_t hli_gc_gen_count(int i);
/* The calling thread's own part of generation 0's count, added now. */
HL_INTERNAL void hli_gc_count_flush_self(void);
/* hl_gc_untrack without a GIL: under the lock of o's stripe. */
HL_INTERNAL void hli_gc_untrack_ft(hl_object_t *o);
/* hl_gc_set_threshold's part: the batch in which threads add to the count. */
HL_INTERNAL void hli_gc_set_batch(uint32_t threshold0);

static inline bool hli_gc_load_bool(const bool *b) { return hl_atomic_c11_load_relaxed_bool(b); }
static inline void hli_gc_store_bool(bool *b, bool v) { hl_atomic_c11_store_relaxed_bool(b, v); }
static inline uint32_t hli_gc_threshold(int i) {
  return hl_atomic_load_relaxed_u32(&hli_gc.gen[i].threshold);
}

#endif /* HL_GC_COLLECTOR_H */
