/* The runner: starts the workers of one run, watches them, collects a result.
 *
 * The main thread does no work of the workload: it sleeps in 100 ms steps,
 * reading each worker's published progress to draw the progress line and to
 * write trace samples (RSS over time). On 2 cores it costs a wake-up every
 * 100 ms, which is noise next to the runs it watches. With --trace, the
 * collections, the GIL and stops of the world are traced too, by the thread
 * where they happen (bench/trace.c).
 *
 * The timed part of a run is the interval between the barrier every worker
 * passes in hl_worker_begin() and the one in hl_worker_end(), so that thread
 * start-up and per-thread setup are not counted.
 *
 * Object workloads run attached (workload.h). A worker waits at a barrier
 * with the GIL released (hl_thread_block_begin), or the first one there
 * would hold it while the others wait for it to reach the barrier. The GIL's
 * statistics are reset and read by the serial worker between the two
 * barriers of begin and end, while no worker holds it.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trace.h"
#include "workload.h"

struct hl_runner {
  pthread_barrier_t barrier;
  hl_alloc_stats_t *pool_stats;     /* snapshot at the end of the timed part */
  uint64_t t_begin, t_end;          /* written by the serial worker at each barrier */
  uint64_t cpu_begin, cpu_end;
  uint64_t faults_begin, faults_end;
  const hl_workload_t *wl;
  bool attach;                      /* workers attach to the runtime (object workloads) */
  hl_gil_stats_t *gil_stats;        /* filled at the end of the timed part; NULL: no GIL */
  hl_run_gc_t *gc;                  /* likewise; NULL: no collector */
  uint32_t done;                    /* workers that returned */
};

typedef struct worker_slot {
  hl_worker_t w;
  pthread_t thread;
  bool started;
} worker_slot_t;

/* Around a barrier, an attached worker releases the GIL. */
static void release_for_barrier(const hl_runner_t *r) {
  if (r->attach) hl_thread_block_begin();
}
static void retake_after_barrier(const hl_runner_t *r) {
  if (r->attach) hl_thread_block_end();
}

void hl_worker_begin(hl_worker_t *w) {
  hl_runner_t *r = w->runner;
  release_for_barrier(r);
  if (pthread_barrier_wait(&r->barrier) == PTHREAD_BARRIER_SERIAL_THREAD) {
    r->faults_begin = hl_page_faults_minor();
    r->cpu_begin = hl_process_cpu_ns();
    if (r->gil_stats) hl_gil_stats_reset();   /* attaching is not part of the run */
    if (r->gc) hl_gc_stats_reset();           /* nor is setup; every worker is parked */
    r->t_begin = hl_now_ns();
  }
  /* The deadline is taken after the barrier: every worker sees the same start
   * within the barrier's wake-up skew. */
  pthread_barrier_wait(&r->barrier);
  retake_after_barrier(r);
  if (w->cfg->duration_s > 0)
    w->deadline_ns = r->t_begin + (uint64_t)(w->cfg->duration_s * 1e9);
}

/* The collector's figures for the timed part (the serial worker, while
 * every other worker waits at the barrier without the GIL). */
static void gc_snapshot(hl_run_gc_t *g, uint64_t t_end) {
  hl_gc_stats(&g->stats);
  g->pause = *hl_gc_pause_hist(-1);
  for (int i = 0; i < HL_GC_GENERATIONS; i++) g->pause_gen[i] = *hl_gc_pause_hist(i);
  g->increment_units = *hl_gc_increment_hist();
  hl_gc_chunk_hist(&g->chunk_ns);
  hl_gc_mmu(t_end, g->mmu, &g->mmu_exact);
  hl_gc_mmu_cpu(t_end, g->mmu_cpu);
  if (g->stw_valid) {
    hl_gc_stw_hist(&g->stw);
    hl_gc_sweep_hist(&g->sweep);
  }
}

void hl_worker_begin_collected(hl_worker_t *w) {
  hl_runner_t *r = w->runner;
  release_for_barrier(r);
  bool serial = pthread_barrier_wait(&r->barrier) == PTHREAD_BARRIER_SERIAL_THREAD;
  retake_after_barrier(r);
  /* the others wait at hl_worker_begin's barrier meanwhile, the GIL released */
  if (serial && hl_gc_active()) hl_gc_collect(HL_GC_GENERATIONS - 1);
  hl_worker_begin(w);
}

void hl_worker_end(hl_worker_t *w) {
  hl_runner_t *r = w->runner;
  hl_atomic_store_relaxed_u64(&w->progress, w->ops);
  release_for_barrier(r);
  if (pthread_barrier_wait(&r->barrier) == PTHREAD_BARRIER_SERIAL_THREAD) {
    r->t_end = hl_now_ns();
    r->cpu_end = hl_process_cpu_ns();
    r->faults_end = hl_page_faults_minor();
    if (r->gil_stats) hl_gil_stats(r->gil_stats);
    if (r->gc) gc_snapshot(r->gc, r->t_end);
    if (r->pool_stats) {   /* untimed: after t_end */
      hl_alloc_stats(r->pool_stats);
      hl_alloc_stats_process(r->pool_stats);
    }
  }
  pthread_barrier_wait(&r->barrier);
  retake_after_barrier(r);
}

bool hl_worker_phase(hl_worker_t *w) {
  release_for_barrier(w->runner);
  bool serial = pthread_barrier_wait(&w->runner->barrier) == PTHREAD_BARRIER_SERIAL_THREAD;
  retake_after_barrier(w->runner);
  return serial;
}

void hl_worker_phase_done(hl_worker_t *w) {
  release_for_barrier(w->runner);
  pthread_barrier_wait(&w->runner->barrier);
  retake_after_barrier(w->runner);
}

void hl_worker_fail(hl_worker_t *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
  va_end(ap);
  w->error = 1;
}

static void *worker_main(void *arg) {
  worker_slot_t *s = arg;
  hl_worker_t *w = &s->w;
  if (w->cfg->pin) {
    int rc = hl_topo_pin_current_thread(w->index);
    if (rc != 0) hl_worker_fail(w, "cannot pin worker %u: %s", w->index, strerror(-rc));
    /* a failed pin is reported after the run; the worker still takes part in
     * every barrier so that the others are not left waiting */
  }
  hl_trace_thread(w->index);
  if (w->runner->attach) hl_thread_attach();
  w->runner->wl->work(w);
  if (hl_workload_uses_objects(w->runner->wl)) hl_objects_worker_done();   /* objects.c */
  if (w->runner->attach) hl_thread_detach();
  hl_atomic_faa_u32(&w->runner->done, 1);
  return NULL;
}

/* The monitor's 100 ms between two looks at the workers. With
 * --stw-probe-ms (no GIL), it stops the world every N ms meanwhile and
 * resumes it at once: the time to stop goes into sync/stw.c's histogram. */
static void watch_sleep(const hl_config_t *c, hl_run_stw_t *stw) {
  uint64_t step_ns = 100 * 1000 * 1000ull, end = hl_now_ns() + step_ns;
  if (stw) step_ns = c->stw_probe_ms * 1000 * 1000ull;
  for (;;) {
    uint64_t now = hl_now_ns();
    if (now >= end) return;
    uint64_t d = end - now < step_ns ? end - now : step_ns;
    struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
    nanosleep(&ts, NULL);
    if (stw && hl_now_ns() < end + step_ns) {
      hl_stw_stop();
      hl_stw_resume();
      stw->stops++;
    }
  }
}

static void human_count(double v, char *buf, size_t len) {
  if (v >= 1e9) snprintf(buf, len, "%.2fG", v / 1e9);
  else if (v >= 1e6) snprintf(buf, len, "%.2fM", v / 1e6);
  else if (v >= 1e3) snprintf(buf, len, "%.1fk", v / 1e3);
  else snprintf(buf, len, "%.0f", v);
}

int hl_run_check(const hl_workload_t *wl, const hl_config_t *c, char *err, size_t errlen) {
  return hl_config_check_combinations(c, err, errlen) != 0 ||
                 hl_config_check_available(c, wl->uses, err, errlen) != 0 ||
                 hl_alloc_check_config(c, err, errlen) != 0 ||
                 (wl->check && wl->check(c, err, errlen) != 0)
             ? -1
             : 0;
}

int hl_run_workload(const hl_workload_t *wl, const hl_config_t *c, bool progress,
                    hl_run_result_t *res, char *err, size_t errlen) {
  memset(res, 0, sizeof *res);
  unsigned n = c->threads + wl->extra_workers;
  hl_runner_t runner = {.wl = wl, .attach = (wl->uses & HL_OPT_BIT(HL_OPT_RC)) != 0};
  res->workers = n;
  bool trace = false;
  void *shared = NULL;
  int rc = -1;
  worker_slot_t *slots = calloc(n, sizeof *slots);
  hl_hist_t *hists = calloc(n, sizeof *hists);
  if (!slots || !hists) {
    snprintf(err, errlen, "out of memory for %u workers", n);
    goto out;
  }
  if (hl_trace_open(c, wl->name, err, errlen) != 0) goto out;
  trace = hl_trace_on();
  /* The allocator serves the whole run: set it up before the workload. */
  if (!hl_alloc_state.initialized && hl_alloc_init(c, err, errlen) != 0) goto out;
  if (c->alloc == HL_ALLOC_POOL) {
    res->pool_stats = calloc(1, sizeof *res->pool_stats);
    res->pool_stats_after = calloc(1, sizeof *res->pool_stats_after);
    if (!res->pool_stats || !res->pool_stats_after) {
      snprintf(err, errlen, "out of memory");
      goto out;
    }
    runner.pool_stats = res->pool_stats;
  }
  /* Object workloads: the runtime around setup .. teardown (objects.c). */
  bool objects = hl_workload_uses_objects(wl);
  if (objects && hl_objects_begin(c, err, errlen) != 0) goto out;
  if (objects && c->gc != HL_GC_NONE) {
    res->gc = calloc(1, sizeof *res->gc);
    if (!res->gc) {
      snprintf(err, errlen, "out of memory");
      goto out_objects;
    }
    runner.gc = res->gc;
    res->gc->stw_valid = !hl_runtime_gil();
  }
  /* The runtime has set up the GIL, or QSBR and stopping the world, as its
   * configuration asks (hl_runtime_init); the runner reports on them. */
  if (runner.attach && hl_runtime_gil()) {
    res->gil = calloc(1, sizeof *res->gil);
    if (!res->gil) {
      snprintf(err, errlen, "out of memory");
      goto out_objects;
    }
    runner.gil_stats = res->gil;
  }
  if (runner.attach && !hl_runtime_gil() && c->stw_probe_ms &&
      !(res->stw = calloc(1, sizeof *res->stw))) {
    snprintf(err, errlen, "out of memory");
    goto out_objects;
  }
  if (wl->setup && wl->setup(c, &shared, err, errlen) != 0) goto out_objects;
  pthread_barrier_init(&runner.barrier, NULL, n);

  uint64_t per_thread = wl->ops_per_thread ? wl->ops_per_thread(c) : wl->ops_per_scale * c->scale;
  for (unsigned i = 0; i < n; i++) {
    hl_worker_t *w = &slots[i].w;
    w->index = i;
    w->cfg = c;
    w->runner = &runner;
    w->shared = shared;
    hl_rand_seed(&w->rng, c->seed * 0x100000001b3ull + i);
    w->target_ops = c->duration_s > 0 ? 0 : per_thread;
    w->latency = &hists[i];
    w->latency_every = 32;
    hl_hist_init(w->latency);
  }
  uint64_t t0 = hl_now_ns();
  hl_trace_begin(t0, runner.gc != NULL, res->gil != NULL);
  unsigned started = 0;
  for (unsigned i = 0; i < n; i++) {
    int e = pthread_create(&slots[i].thread, NULL, worker_main, &slots[i]);
    if (e != 0) {
      /* the barrier counts n workers: the ones started would wait forever */
      snprintf(err, errlen, "cannot start worker thread %u of %u: %s", i, n, strerror(e));
      fprintf(stderr, "heaplab: %s\n", err);
      fflush(stderr);
      _exit(1);
    }
    slots[i].started = true;
    started++;
  }

  /* Watch. */
  bool tty = isatty(STDERR_FILENO);
  uint64_t total_target = per_thread * n, last_print = 0;
  bool printed = false;
  while (hl_atomic_load_acquire_u32(&runner.done) < started) {
    watch_sleep(c, res->stw);
    uint64_t now = hl_now_ns(), ops = 0;
    for (unsigned i = 0; i < n; i++) ops += hl_atomic_load_relaxed_u64(&slots[i].w.progress);
    double elapsed = (double)(now - t0) / 1e9;
    double frac = c->duration_s > 0 ? elapsed / c->duration_s
                                     : (double)ops / (double)(total_target ? total_target : 1);
    if (frac > 1) frac = 1;
    hl_trace_sample(ops, frac);
    uint64_t every = tty ? 250000000ull : 2000000000ull;
    if (progress && elapsed >= 1.0 && now - last_print >= every) {
      last_print = now;
      char ops_s[32];
      human_count((double)ops, ops_s, sizeof ops_s);
      double left = frac > 0.01 ? elapsed * (1 - frac) / frac : 0;
      fprintf(stderr, "%sheaplab: %s %3.0f%%  %s ops  %.1f s elapsed, ~%.1f s left%s",
              tty ? "\r" : "", wl->name, frac * 100, ops_s, elapsed, left, tty ? "   " : "\n");
      fflush(stderr);
      printed = true;
    }
  }
  for (unsigned i = 0; i < n; i++)
    if (slots[i].started) pthread_join(slots[i].thread, NULL);
  if (printed && tty) fprintf(stderr, "\n");
  if (res->stw) {
    hl_stw_hist(&res->stw->time_to_stop_ns);
    res->stw->slow_stops = hl_stw_slow_stops();
  }

  for (unsigned i = 0; i < n; i++) {
    if (slots[i].w.error) {
      snprintf(err, errlen, "worker %u: %s", i, slots[i].w.errmsg);
      if (wl->teardown) wl->teardown(shared, &res->alloc);
      if (objects) hl_runtime_fini();
      goto out_barrier;
    }
  }
  res->latency = calloc(1, sizeof *res->latency);
  if (!res->latency) {
    snprintf(err, errlen, "out of memory");
    goto out_barrier;
  }
  hl_hist_init(res->latency);
  res->checksum = HL_FNV_OFFSET;
  for (unsigned i = 0; i < n; i++) {
    res->ops += slots[i].w.ops;
    /* order-independent combination, so that the checksum does not depend on
     * which thread finished first */
    res->checksum ^= slots[i].w.checksum;
    res->cyclic_garbage += slots[i].w.cyclic_garbage;
    hl_hist_merge(res->latency, slots[i].w.latency);
  }
  res->latency_every = slots[0].w.latency_every;
  res->wall_ns = runner.t_end - runner.t_begin;
  res->cpu_ns = runner.cpu_end - runner.cpu_begin;
  res->page_faults_minor = runner.faults_end - runner.faults_begin;
  res->peak_rss_bytes = hl_rss_peak_bytes();
  /* the workers are gone: no hook runs any more */
  hl_trace_unhook();
  if (wl->report) wl->report(shared, res);
  if (wl->teardown) wl->teardown(shared, &res->alloc);
  if (objects && hl_objects_end(res, err, errlen) != 0) goto out_barrier;
  if (res->pool_stats_after) hl_alloc_stats(res->pool_stats_after);
  hl_trace_end(res->ops, runner.t_begin, runner.t_end);
  rc = 0;
out_barrier:
  pthread_barrier_destroy(&runner.barrier);
  goto out;
out_objects:
  if (objects) hl_runtime_fini();
out:
  /* a trace that could not be written in full fails the run (when nothing
   * else did first) */
  if (trace && hl_trace_close(rc == 0, err, errlen) != 0) rc = -1;
  free(slots);
  free(hists);
  return rc;
}

void hl_run_result_free(hl_run_result_t *r) {
  free(r->latency);
  free(r->pool_stats);
  free(r->pool_stats_after);
  free(r->gil);
  free(r->gc);
  free(r->stw);
  if (r->extra) json_object_put(r->extra);
  r->extra = NULL;
  r->gil = NULL;
  r->gc = NULL;
  r->stw = NULL;
  r->latency = NULL;
  r->pool_stats = r->pool_stats_after = NULL;
}
