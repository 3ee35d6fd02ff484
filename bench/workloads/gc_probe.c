/* The collections a workload times itself, outside its timed part, as its
 * Python twin measures them in CPython (bench/python/gc_twin.py): the
 * collector's cost per object examined, full and young (long-lived,
 * heap-load; bench/workload.h declares it). */
#include "workload.h"

#define PROBE_RUNS_MAX 64

/* The median of n values (n >= 1; sorts them). */
static double median(double *v, unsigned n) {
  for (unsigned i = 1; i < n; i++)
    for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One timed collection of generation `generation`: its objects examined
 * into *objects, its nanoseconds per object examined returned. */
static double timed_collect(int generation, uint64_t *objects) {
  hl_gc_stats_t a, b;
  hl_gc_stats(&a);
  uint64_t t0 = hl_now_ns();
  hl_gc_collect(generation);
  uint64_t t1 = hl_now_ns();
  hl_gc_stats(&b);
  *objects = b.visited - a.visited;
  return *objects ? (double)(t1 - t0) / (double)*objects : 0.0;
}

void hl_run_gc_probe(hl_run_gc_probe_t *p, unsigned full_runs, unsigned young_runs,
                     hl_object_t *(*make_young)(void *arg), void *arg) {
  HL_ASSERT(full_runs >= 1 && full_runs <= PROBE_RUNS_MAX && young_runs <= PROBE_RUNS_MAX);
  bool was = hl_gc_isenabled();
  hl_gc_disable();
  hl_gc_collect(HL_GC_GENERATIONS - 1);   /* untimed: the garbage of before goes */
  double ns[PROBE_RUNS_MAX];
  uint64_t objects = 0;
  for (unsigned r = 0; r < full_runs; r++) ns[r] = timed_collect(HL_GC_GENERATIONS - 1, &objects);
  p->full_runs = full_runs;
  p->full_objects = objects;   /* the same in every run: the heap is all reachable */
  p->full_ns_per_obj = median(ns, full_runs);
  unsigned done = 0;
  for (; done < young_runs; done++) {
    hl_object_t *holder = make_young(arg);
    if (!holder) break;
    ns[done] = timed_collect(0, &objects);
    hl_decref(holder);
  }
  p->young_runs = done;
  p->young_objects = done ? objects : 0;   /* the last run's: each makes the same */
  p->young_ns_per_obj = done ? median(ns, done) : 0.0;
  if (was) hl_gc_enable();
}
