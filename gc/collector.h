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

/* --gc=incremental, --mmu-target=U: how long the increment starting at t
 * may pause so that no window of W = HLI_MMU_WINDOW_NS holds more than
 * A = (100 - U)% W of pauses: the minimum mutator utilisation of Cheng and
 * Blelloch ("A parallel, real-time garbage collector", PLDI 2001) as a rule
 * on each increment, in the manner of Metronome's time-based scheduling
 * (Bacon, Cheng and Rajan, "A real-time garbage collector with low
 * overhead and consistent utilization", POPL 2003), which spaces the
 * collector's quanta by the clock rather than by allocation.
 *
 * The windows that hold this pause are (t - W + d, t + d], 0 < d <= W.
 * Each holds the past pauses that end after t - W + d, this one (p), and
 * the pauses to come before t + d. Those to come that the rule cannot
 * shorten are the young collections (their length is set by the young
 * generation, not by the budget): G, the mutator's time between two
 * pauses, and y = forced / (G + forced), the share the young collections
 * would take if the increments did nothing else (moving averages of the
 * young collection, of the time from one pause's start to the next and of
 * the pause; not forced over the period, which the scan's own pauses
 * lengthen, so that the more the scan took the less it would reserve for
 * the young collections). The first of them comes G after this one. So
 *   p <= room(t) = A - max over d of ( past(t - W + d) + y max(0, d - G) )
 * keeps every window at A or under while y and G hold. past() steps down
 * at each past pause's end e_i (d_i = e_i - t + W), and the second term
 * grows between the steps, so the maximum is at a step or at d = W:
 *   room(t) = A - max( y (W - G),  max_i ( S_i + y max(0, e_i - t + W - G) ) )
 * where S_i is the pauses from i on (oldest first). A pause that ended
 * inside the window counts whole (a pause straddling its start makes the
 * room smaller, never larger); a full ring merges its two oldest entries
 * (the later end, both lengths): the room only shrinks. With y = 0 this is
 * A less the pauses of the last W: Cheng and Blelloch's rule alone, which
 * lets the scan take a window's whole share and leaves the young
 * collections that follow over it (long-lived's build: one every 0.12 ms).
 * gen_incr.c's increments and tests/test_gc_incr.c use it. */
#define HLI_MMU_WINDOW_NS 10000000u   /* 10 ms: issue 21's window */
#define HLI_MMU_RING 128
typedef struct hli_mmu_pacer {
  uint64_t window_ns, allowed_ns;   /* W; A = (1 - u) W: 0 = no rule */
  uint64_t end[HLI_MMU_RING], ns[HLI_MMU_RING];   /* the last W's pauses, oldest first */
  unsigned first, n;
  double forced_ns, period_ns, pause_ns;   /* moving averages: a young collection; from
                                             one pause's start to the next; a pause */
  uint64_t last_start;
} hli_mmu_pacer_t;
static inline void hli_mmu_pacer_init(hli_mmu_pacer_t *p, uint64_t window_ns, unsigned target_pct) {
  *p = (hli_mmu_pacer_t){.window_ns = window_ns,
                         .allowed_ns = target_pct ? window_ns / 100 * (100 - target_pct) : 0};
}
/* G, the mutator's time between two pauses. */
static inline double hli_mmu_pacer_gap(const hli_mmu_pacer_t *p) {
  return p->period_ns > p->pause_ns ? p->period_ns - p->pause_ns : 0.0;
}
/* y, the young collections' share of the time without scan work. */
static inline double hli_mmu_pacer_forced_share(const hli_mmu_pacer_t *p) {
  double g = hli_mmu_pacer_gap(p);
  return g + p->forced_ns > 0 ? p->forced_ns / (g + p->forced_ns) : 0.0;
}
/* How long a pause starting at now may be; UINT64_MAX without a rule. */
static inline uint64_t hli_mmu_pacer_room(hli_mmu_pacer_t *p, uint64_t now) {
  if (!p->allowed_ns) return UINT64_MAX;
  uint64_t since = now > p->window_ns ? now - p->window_ns : 0;
  while (p->n && p->end[p->first] <= since) {   /* out of every window from now on */
    p->first = (p->first + 1) % HLI_MMU_RING;
    p->n--;
  }
  double y = hli_mmu_pacer_forced_share(p), w = (double)p->window_ns;
  double gap = hli_mmu_pacer_gap(p);
  double worst = w > gap ? y * (w - gap) : 0, suffix = 0;
  for (unsigned k = p->n; k-- > 0;) {   /* newest first: suffix = S_i */
    unsigned i = (p->first + k) % HLI_MMU_RING;
    suffix += (double)p->ns[i];
    double d = (double)(p->end[i] + p->window_ns - now) - gap;   /* end[i] > since */
    double at = suffix + (d > 0 ? y * d : 0);
    if (at > worst) worst = at;
  }
  return worst < (double)p->allowed_ns ? (uint64_t)((double)p->allowed_ns - worst) : 0;
}
/* A pause from t0 to t1, of which forced_ns could not be shortened (the
 * young collection). */
static inline void hli_mmu_pacer_add(hli_mmu_pacer_t *p, uint64_t t0, uint64_t t1,
                                     uint64_t forced_ns) {
  if (!p->allowed_ns) return;
  if (p->last_start && t0 > p->last_start) {
    p->forced_ns = 0.875 * p->forced_ns + 0.125 * (double)forced_ns;
    p->period_ns = 0.875 * p->period_ns + 0.125 * (double)(t0 - p->last_start);
  }
  p->pause_ns = 0.875 * p->pause_ns + 0.125 * (double)(t1 - t0);
  p->last_start = t0;
  if (p->n == HLI_MMU_RING) {   /* the two oldest become one */
    unsigned a = p->first, b = (a + 1) % HLI_MMU_RING;
    p->ns[b] += p->ns[a];
    p->first = b;
    p->n--;
  }
  unsigned i = (p->first + p->n) % HLI_MMU_RING;
  p->end[i] = t1;
  p->ns[i] = t1 - t0;
  p->n++;
}

/* ---- the scan engine (gen_incr.c), shared with --gc=concurrent (gen_conc.c) ------------ */
/* incremental's row with the scan's MARK, COUNT and ROOTS left to a
 * collector thread: the handshakes only start scans and validate */
HL_INTERNAL int hli_scan_init(const hl_config_t *c);
/* One handshake (world stopped): a young collection, a scan started if due,
 * validation; forced (hl_gc_step): every phase, here. */
HL_INTERNAL int64_t hli_scan_increment(uint64_t stopped_at, bool forced);
HL_INTERNAL int64_t hli_scan_collect(int generation, uint64_t stopped_at);
HL_INTERNAL void hli_scan_gather(void);
/* Holding stripe 0's lock: whether a scan is marking, counting or finding
 * roots (the collector thread's phases), */
HL_INTERNAL bool hli_scan_concurrent_work(void);
/* whether it is late (the next one would be due), */
HL_INTERNAL bool hli_scan_late(void);
/* and a chunk of that work, until limit units or the deadline; returns the
 * units, and the containers it could not lock in *skipped. */
HL_INTERNAL uint64_t hli_scan_chunk(uint64_t limit, uint64_t deadline, uint64_t *skipped);
/* gen_conc.c: a chunk's traversal of a member (false: not traversed, its
 * lock was held), and the collector thread told that a scan started (the
 * first time, it is started). */
HL_INTERNAL bool hli_conc_traverse(hl_object_t *o, hl_visit_fn visit, void *arg);
/* Threads waiting for the shared lists' lock (track.c): a chunk ends at its
 * next look at the clock when there is one. */
extern uint32_t hli_gc_lists_waiters;
HL_INTERNAL void hli_conc_wake(void);
HL_INTERNAL void hli_conc_stats_reset(void);

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
