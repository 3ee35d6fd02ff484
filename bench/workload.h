/* heaplab bench/: workloads and the runner that drives them.
 *
 * A workload is a descriptor (name, what scale=1 means, which options it
 * reads) and three functions: setup (once, in the main thread), work (once
 * per worker thread) and teardown. The runner starts the workers, watches
 * their progress from the main thread (progress line, trace samples), and
 * assembles the result.
 *
 * Inside work(), a worker calls, in order:
 *   hl_worker_begin(w)   all workers ready: the timed part starts (or
 *                        hl_worker_begin_collected: after one full
 *                        collection of what they made untimed)
 *   ... operations, hl_worker_tick(w) every so often ...
 *   hl_worker_end(w)     all workers done: the timed part ends
 * and may then run untimed phases separated by hl_worker_phase(w), which
 * returns true in exactly one worker (the one that records a process-wide
 * measurement such as RSS, before the others go on).
 *
 * Object workloads (`uses` includes HL_OPT_RC) run their workers attached to
 * the runtime (sync/hl_thread.h): the runner sets the GIL up from the
 * configuration (on with rc=gil), attaches each worker before work() and
 * detaches it after, so work() starts holding the GIL and calls
 * hl_checkpoint() in its loops. hl_worker_begin/end/phase wait at their
 * barriers with the GIL released.
 */
#ifndef HL_WORKLOAD_H
#define HL_WORKLOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hl_alloc.h"
#include "hl_config.h"
#include "hl_gc.h"
#include "hl_measure.h"
#include "hl_sync.h"

typedef struct hl_runner hl_runner_t;
typedef struct hl_run_result hl_run_result_t;

/* What a workload reports beyond ops and latency. */
typedef struct hl_result_alloc {
  bool valid;
  uint64_t rss_before_bytes, rss_after_frag_bytes, rss_after_free_bytes;
  uint64_t rss_after_collect_bytes;   /* 0: not measured */
} hl_result_alloc_t;

typedef struct hl_worker {
  /* read by the monitor thread: its own cache line */
  HL_CACHE_ALIGNED uint64_t progress;   /* ops so far, published relaxed */
  HL_CACHE_ALIGNED unsigned index;      /* 0 .. threads-1 */
  const hl_config_t *cfg;
  hl_runner_t *runner;
  void *shared;               /* what setup returned */
  hl_rand_t rng;              /* seeded from cfg->seed and index */
  uint64_t target_ops;        /* 0 when running for a duration */
  uint64_t deadline_ns;       /* 0 when running a fixed amount of work */
  uint64_t ops;               /* total at the end */
  uint64_t checksum;
  /* Objects this worker left in cyclic garbage, which only a cycle
   * collector frees: with --gc=none the runner's leak check expects
   * exactly this many objects still allocated (bench/objects.c). */
  uint64_t cyclic_garbage;
  hl_hist_t *latency;         /* sampled operation latencies */
  uint64_t latency_every;     /* 1 op in latency_every is timed */
  int error;                  /* nonzero: the worker failed (out of memory ...) */
  char errmsg[160];
} hl_worker_t;

typedef struct hl_workload {
  const char *name;
  const char *summary;
  const char *unit;           /* what scale=1 means, per thread */
  uint64_t uses;              /* HL_OPT_BIT of the options it reads */
  uint64_t ops_per_scale;     /* operations per thread for scale=1 */
  /* May be NULL (then ops_per_scale x scale). The operations per thread of
   * a fixed-size run where they depend on the workload's own options
   * (cyclotron: rings, scale x 2,000,000 nodes / --cycle-size). */
  uint64_t (*ops_per_thread)(const hl_config_t *c);
  unsigned extra_workers;     /* workers beyond --threads (convoy: its I/O thread) */
  /* May be NULL. Checks what the option table cannot (how the workload maps
   * --threads ...): 0, or -1 with a message naming the option, the value and
   * what is accepted. Runs before anything does; failure is bad input. */
  int (*check)(const hl_config_t *c, char *err, size_t errlen);
  /* Returns 0 or -errno with a message. *shared is passed to every worker. */
  int (*setup)(const hl_config_t *c, void **shared, char *err, size_t errlen);
  void (*work)(hl_worker_t *w);
  /* Fills the workload's own result fields; frees what setup made. */
  void (*teardown)(void *shared, hl_result_alloc_t *alloc);
  /* May be NULL. Called before teardown after a successful run: adds what
   * the workload measured itself to the result (long-lived's timed
   * collections, into r->gc when it is there; figures of its own, into
   * r->extra). */
  void (*report)(void *shared, hl_run_result_t *r);
} hl_workload_t;

/* Options every workload reads through the runner. */
#define HL_RUNNER_USES                                                              \
  (HL_OPT_BIT(HL_OPT_THREADS) | HL_OPT_BIT(HL_OPT_PIN) | HL_OPT_BIT(HL_OPT_SCALE) | \
   HL_OPT_BIT(HL_OPT_SEED) | HL_OPT_BIT(HL_OPT_DURATION_S) | HL_OPT_BIT(HL_OPT_TRACE) | \
   HL_OPT_BIT(HL_OPT_TRACE_FORMAT) | HL_OPT_BIT(HL_OPT_CONFIG))

/* The allocator's options: every workload allocates. */
#define HL_ALLOC_USES                                                                   \
  (HL_OPT_BIT(HL_OPT_ALLOC) | HL_OPT_BIT(HL_OPT_GEOMETRY) | HL_OPT_BIT(HL_OPT_LARGE) |   \
   HL_OPT_BIT(HL_OPT_TCACHE) |                                                          \
   HL_OPT_BIT(HL_OPT_POOL_COLOUR) | HL_OPT_BIT(HL_OPT_POOL_REQUEUE) |                   \
   HL_OPT_BIT(HL_OPT_ALLOC_DEBUG) | HL_OPT_BIT(HL_OPT_ALLOC_STATS) |                    \
   HL_OPT_BIT(HL_OPT_ARENA_KEEP_KIB) | HL_OPT_BIT(HL_OPT_ARENA_RELEASE) |               \
   HL_OPT_BIT(HL_OPT_ARENA_DECAY_MS) | HL_OPT_BIT(HL_OPT_ARENA_HUGE) |                 \
   HL_OPT_BIT(HL_OPT_TCACHE_KIB))

/* The allocator workloads' block sizes (bench/workloads/sizes.h). */
#define HL_SIZES_USES                                                              \
  (HL_OPT_BIT(HL_OPT_SIZES) | HL_OPT_BIT(HL_OPT_SIZE_DIST) | HL_OPT_BIT(HL_OPT_SIZE_HIST))

/* The object layer's options (gc/): a workload whose uses include the rc
 * bit works on objects, and the runner sets the object runtime up around it
 * (bench/objects.c): hl_runtime_init before setup, hl_freelists_clear in
 * each worker when its work() returns, hl_runtime_fini after teardown, then
 * a leak check. */
#define HL_OBJ_USES                                                                \
  (HL_ALLOC_USES | HL_OPT_BIT(HL_OPT_RC) | HL_OPT_BIT(HL_OPT_IMMORTAL) |           \
   HL_OPT_BIT(HL_OPT_FREELISTS) | HL_OPT_BIT(HL_OPT_GC) |                         \
   HL_OPT_BIT(HL_OPT_THRESHOLD) | HL_OPT_BIT(HL_OPT_GC_UNTRACK) |                  \
   HL_OPT_BIT(HL_OPT_PAUSE_BUDGET_US) | HL_OPT_BIT(HL_OPT_MMU_TARGET) |             \
   HL_OPT_BIT(HL_OPT_GC_THREADS) | HL_OPT_BIT(HL_OPT_GC_SWEEP) |                     \
   HL_OPT_BIT(HL_OPT_STW_PROBE_MS) | HL_OPT_BIT(HL_OPT_STW_REPORT_US))

/* Where a workload's loop lets the runtime in (hl_checkpoint(): the GIL hand-
 * off, later refcount merges and stop-the-world requests). */
#define HL_WORKLOAD_CHECKPOINT() hl_checkpoint()


/* The registry (bench/workloads/registry.c). */
extern const hl_workload_t *const hl_workloads[];
extern const size_t hl_workload_count;
const hl_workload_t *hl_workload_find(const char *name);

/* ---- what workers call ------------------------------------------------- */
void hl_worker_begin(hl_worker_t *w);
/* hl_worker_begin after one full collection, once every worker has come:
 * what the workers made untimed (a live heap) is old when the timed part
 * starts, as a program's long-lived data is by the time its steady state
 * matters; one collection (the serial worker's), not one per worker over
 * up to T heaps. Every worker calls it, failed or not. */
void hl_worker_begin_collected(hl_worker_t *w);
void hl_worker_end(hl_worker_t *w);
bool hl_worker_phase(hl_worker_t *w);
void hl_worker_phase_done(hl_worker_t *w);
void hl_worker_fail(hl_worker_t *w, const char *fmt, ...) HL_PRINTF(2, 3);

/* Publishes progress; returns false when the worker should stop (its work or
 * its time is done). Call it every few hundred operations. */
static inline bool hl_worker_tick(hl_worker_t *w, uint64_t ops_done) {
  hl_atomic_store_relaxed_u64(&w->progress, ops_done);
  if (w->deadline_ns) return hl_now_ns() < w->deadline_ns;
  return ops_done < w->target_ops;
}

/* How many operations the next chunk may do: up to `chunk`, never past a
 * fixed target (with a deadline, the whole chunk). */
static inline uint64_t hl_worker_chunk(const hl_worker_t *w, uint64_t ops_done, uint64_t chunk) {
  if (w->target_ops && w->target_ops - ops_done < chunk) return w->target_ops - ops_done;
  return chunk;
}

/* ---- the runner --------------------------------------------------------- */
/* The cycle collector over the timed part of an object workload's run
 * (--gc other than none): its statistics are reset when the timed part
 * starts and read when it ends, so that setup, teardown and the final
 * collection before the leak check are not counted. */
/* Stops of the world made while the workers run (sync/stw.c): how long each
 * took to stop every worker, and how many waited past --stw-report-us. */
typedef struct hl_run_stw {
  uint64_t stops;
  uint64_t slow_stops;
  hl_hist_t time_to_stop_ns;
} hl_run_stw_t;

/* Collections a workload timed itself, outside the timed part (0 runs:
 * none): objects examined per run (the median), and the median over the
 * runs of each run's nanoseconds per object examined (a median, so that
 * a run the scheduler interrupted does not weigh on it). */
typedef struct hl_run_gc_probe {
  uint32_t young_runs, full_runs;
  uint64_t young_objects, full_objects;
  double young_ns_per_obj, full_ns_per_obj;
} hl_run_gc_probe_t;

typedef struct hl_run_gc {
  hl_gc_stats_t stats;
  hl_hist_t pause, pause_gen[HL_GC_GENERATIONS];
  hl_hist_t increment_units;  /* --gc=incremental: work units per increment */
  hl_hist_t chunk_ns;         /* --gc=concurrent: the collector thread's chunks */
  double mmu[HL_GC_MMU_WINDOWS];
  double mmu_cpu[HL_GC_MMU_WINDOWS];   /* pauses as the collecting thread's CPU time */
  bool mmu_exact;
  /* without a GIL: the collector's times to stop the world */
  bool stw_valid;
  hl_hist_t stw;
  hl_hist_t sweep;            /* with stw: the sweeps after the world resumed */
  hl_run_gc_probe_t probe;    /* the workload's own timed collections (hl_run_gc_probe) */
} hl_run_gc_t;

/* Untimed, after the timed part: the collector's cost per object examined,
 * as the Python twins measure it (automatic collection off meanwhile; one
 * untimed full collection first). full_runs timed full collections, then
 * young_runs times: make_young(arg) makes young objects and returns what
 * holds them (NULL: out of memory, the young runs end there), one timed
 * collection of generation 0, the holder dropped. Fills p's young and full
 * figures (at most 64 runs each; bench/workloads/gc_probe.c). */
void hl_run_gc_probe(hl_run_gc_probe_t *p, unsigned full_runs, unsigned young_runs,
                     hl_object_t *(*make_young)(void *arg), void *arg);

struct hl_run_result {
  uint64_t ops;
  uint64_t checksum;
  uint64_t wall_ns;
  uint64_t cpu_ns;
  uint64_t page_faults_minor;
  uint64_t peak_rss_bytes;
  hl_hist_t *latency;         /* merged over the workers (owned by the result) */
  uint64_t latency_every;
  hl_result_alloc_t alloc;
  /* alloc=pool: a snapshot at the end of the timed part, and the arena
   * figures after the workload freed everything */
  hl_alloc_stats_t *pool_stats;
  hl_alloc_stats_t *pool_stats_after;
  /* object workloads (uses & HL_OPT_BIT(HL_OPT_RC)): hl_obj_stats after
   * hl_runtime_fini, and what was still allocated then */
  bool objects_valid;
  hl_obj_stats_t objects;
  uint64_t leaked_objects;    /* allocated - freed */
  int64_t leaked_blocks;      /* pool blocks in use beyond the start's; -1: not alloc=pool */
  unsigned workers;           /* threads started: --threads plus the workload's extra */
  /* the GIL over the timed part; NULL when the run did not use it */
  hl_gil_stats_t *gil;
  /* the cycle collector over the timed part; NULL with --gc=none or for a
   * workload that makes no objects */
  hl_run_gc_t *gc;
  uint64_t cyclic_garbage;    /* the workers' cyclic_garbage, summed */
  /* stops of the world the runner made (--stw-probe-ms, without a GIL);
   * NULL when it made none */
  hl_run_stw_t *stw;
  /* A workload's own figures (its report hook makes a json-c object and
   * hands it over; hl_run_result_free puts it): the result's "extra"
   * object and the summary's `extra` line. NULL: none. */
  struct json_object *extra;
};

/* Every check of c for wl before anything runs (bad input: exit 2):
 * combinations, availability, the allocator's geometry, the workload's own.
 * 0, or -1 with a message naming the option, the value and what is accepted. */
int hl_run_check(const hl_workload_t *wl, const hl_config_t *c, char *err, size_t errlen);
/* Runs wl under c. Returns 0, or -1 with a message (a worker failed, a thread
 * could not start or be pinned). progress: print a progress line on stderr
 * for runs longer than a second. */
int hl_run_workload(const hl_workload_t *wl, const hl_config_t *c, bool progress,
                    hl_run_result_t *r, char *err, size_t errlen);
void hl_run_result_free(hl_run_result_t *r);

/* ---- the object runtime around a run (bench/objects.c) ------------------- */
static inline bool hl_workload_uses_objects(const hl_workload_t *wl) {
  return (wl->uses & HL_OPT_BIT(HL_OPT_RC)) != 0;
}
/* Before setup: hl_runtime_init (the allocator is already up). */
int hl_objects_begin(const hl_config_t *c, char *err, size_t errlen);
/* In each worker, when work() returns: its free lists and counters. */
void hl_objects_worker_done(void);
/* After teardown: a last full collection (--gc other than none), then
 * hl_runtime_fini, the statistics, the leak check (-1 with a message when
 * an object or a pool block is still allocated, beyond r->cyclic_garbage
 * objects with --gc=none). */
int hl_objects_end(hl_run_result_t *r, char *err, size_t errlen);

#endif /* HL_WORKLOAD_H */
