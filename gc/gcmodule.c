/* The gc module: Python's gc API over whichever collector --gc chose
 * (collector.h: the table of rows), and the services every collector
 * shares: stopping the world, the callbacks, recording a pause.
 *
 * CPython keeps the same split (Modules/gcmodule.c, the API; Python/gc.c,
 * the collector). Here the API is the same for every collector: gc.collect
 * asks the row to collect; the entry points that walk or move the lists
 * (freeze, unfreeze, get_objects, get_referrers, the counts) stop the world
 * when there is no GIL, ask the row to gather every tracked object into the
 * generation lists, and do their work on those.
 *
 * freeze() moves every tracked object into a permanent generation that no
 * collection looks at (gc.freeze, for fork: the pages of a frozen heap are
 * never written by the collector, so they stay shared copy-on-write).
 *
 * Statistics: per generation, collections, objects found, objects visited
 * and pause time; a histogram of pauses overall and per generation; the
 * times to stop the world; and a log of each pause's start and end for the
 * minimum mutator utilisation, kept in bounded memory by the online tracker
 * of mmu.c.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "collector.h"
#include "hl_probe.h"

hl_gc_state_t hli_gc;

/* ---- the table ------------------------------------------------------------------ */
/* A built collector's row, or NULL (its --gc value is refused before any
 * run: config.c's availability check, which hl_runtime_init repeats). */
#define ROW_1(name) &hli_collector_##name
#define ROW_0(name) NULL
#define ROW(built, name) ROW_##built(name)
#define COLLECTOR_ROW_(ID, name, built, rc, help, why_not) [HL_GC_##ID] = ROW(built, name),
static const hli_collector_t *const collectors[HL_GC_COUNT] = {HL_GC_COLLECTORS(COLLECTOR_ROW_)};

typedef struct callback { hl_gc_callback_fn fn; void *arg; } callback_t;
static callback_t callbacks[16];
static int ncallbacks;
static hl_gc_stats_t stats;
static hl_hist_t pause_all, pause_gen[HL_GC_GENERATIONS];
/* The pause log: at most this many pauses within 100 ms are kept (3 MiB). */
#define PAUSE_LOG_MAX ((size_t)1 << 17)
static hl_mmu_tracker_t pause_log;
/* The same pauses, each as long as the collecting thread's CPU time in it
 * (from the start callbacks on): the MMU without the time a shared
 * machine's scheduler took the thread away inside a pause. */
static hl_mmu_tracker_t pause_log_cpu;
static uint64_t pause_cpu0;
const uint64_t hl_gc_mmu_window_ns[HL_GC_MMU_WINDOWS] = {1000000, 10000000, 100000000};
static hl_hist_t stw_hist;    /* the collector's times to stop the world */
static hl_hist_t sweep_hist;  /* without a GIL: the sweeps after the world resumed */
static hl_spinlock_t sweep_lock = HL_SPINLOCK_INITIALIZER;
static hl_hist_t increment_hist;   /* --gc=incremental: work units per increment */
/* hl_gc_immortalize's objects and the counts they had, oldest first */
typedef struct immortal_kept { hl_object_t *o; uint32_t rc; uint16_t flags; } immortal_kept_t;
static struct {
  immortal_kept_t *kept;
  size_t n, cap;
} immortal;

/* ---- services to the collectors --------------------------------------------------- */
uint64_t hli_gc_world_stop(void) {
  if (!hli_nogil() || hl_stw_stopped()) return 0;
  uint64_t t0 = hl_now_ns();
  hl_stw_stop();
  hl_hist_record(&stw_hist, hl_now_ns() - t0);
  hli_gc.sweep_later = hli_gc.sweep_resumed;
  return t0;
}
/* The garbage found while the world was stopped is deleted after it
 * resumes (collect.c's hli_gc_sweep), and a full collection's memory
 * hand-back follows it: the other threads wait for neither. The thread
 * that stopped the world takes both with it, and does them in
 * hli_gc_sweep_pending once it has let go of whatever else would hold the
 * others up (the trigger's claim: track.c), so that their collections go
 * on meanwhile. The time it takes is the collecting thread's alone
 * (sweep_ns). */
static __thread hl_gc_head_t sweep_mine;   /* next == 0: never used */
static __thread bool hand_back_mine;
void hli_gc_world_resume(uint64_t stopped_at) {
  if (!stopped_at) return;
  if (!sweep_mine.next) hli_gc_list_init(&sweep_mine);
  hli_gc_list_merge(&hli_gc.sweep, &sweep_mine);
  hand_back_mine |= hli_gc.sweep_hand_back;
  hli_gc.sweep_later = hli_gc.sweep_hand_back = false;
  hl_stw_resume();
}
void hli_gc_sweep_pending(void) {
  bool garbage = sweep_mine.next && !hli_gc_list_empty(&sweep_mine);
  if (!garbage && !hand_back_mine) return;
  uint64_t t0 = hl_now_ns();
  if (garbage) {
    /* a collection the sweep's own allocations trigger sweeps its garbage
     * in its own call: this one takes what is there now */
    hl_gc_head_t l;
    hli_gc_list_init(&l);
    hli_gc_list_merge(&sweep_mine, &l);
    hli_gc_sweep(&l);
  }
  if (hand_back_mine) {
    hand_back_mine = false;
    hl_freelists_clear();
    hl_alloc_collect();
  }
  /* recorded by this thread alone: another may be stopping the world */
  hl_spinlock_lock(&sweep_lock);
  hl_hist_record(&sweep_hist, hl_now_ns() - t0);
  hl_spinlock_unlock(&sweep_lock);
}

/* The backlog: what the program noted as cyclic garbage less what the
 * collections have collected; into s's garbage_noted and backlog_final. */
static void backlog_now(hl_gc_stats_t *s) {
  uint64_t noted = hl_atomic_c11_load_relaxed_u64(&hli_gc.garbage_noted), collected = 0;
  for (int i = 0; i < HL_GC_GENERATIONS; i++) collected += stats.collected[i];
  s->garbage_noted = noted;
  s->backlog_final = noted > collected ? noted - collected : 0;
}
/* ... sampled as each collection starts, when it is largest. */
static void backlog_sample(void) {
  backlog_now(&stats);
  if (stats.backlog_final > stats.backlog_max) stats.backlog_max = stats.backlog_final;
}

void hl_gc_note_garbage(uint64_t containers) {
  hl_atomic_c11_add_relaxed_u64(&hli_gc.garbage_noted, containers);
}

hl_gc_stats_t *hli_gc_stats_mut(void) { return &stats; }

void hli_gc_increment_record(uint64_t units) {
  stats.increments++;
  stats.scan_units += units;
  hl_hist_record(&increment_hist, units);
}

void hli_gc_callbacks_run(bool start, const hl_gc_info_t *info) {
  if (start) {
    HL_PROBE(gc_start, hli_gc.collector->name, info->generation);
    backlog_sample();
    pause_cpu0 = hl_thread_cpu_ns();
  }
  for (int i = 0; i < ncallbacks; i++) callbacks[i].fn(start, info, callbacks[i].arg);
}

void hli_gc_pause_record(int generation, const hl_gc_info_t *info, const hl_gc_work_t *work,
                         uint64_t t0, uint64_t t1) {
  uint64_t pause = t1 - t0;
  HL_PROBE(gc_end, hli_gc.collector->name, generation, work->visited, info->collected,
           info->uncollectable, pause);
  stats.collections[generation]++;
  stats.collected[generation] += info->collected;
  stats.uncollectable[generation] += info->uncollectable;
  stats.visited_gen[generation] += work->visited;
  stats.pause_ns_gen[generation] += pause;
  stats.visited += work->visited;
  stats.pause_ns_total += pause;
  stats.untracked += work->untracked;
  hl_hist_record(&pause_all, pause);
  hl_hist_record(&pause_gen[generation], pause);
  hl_mmu_tracker_add(&pause_log, t0, t1);
  uint64_t cpu = hl_thread_cpu_ns() - pause_cpu0;
  hl_mmu_tracker_add(&pause_log_cpu, t0, t0 + (cpu < pause ? cpu : pause));
  if (hli_gc.budget_ns && pause > hli_gc.budget_ns) {
    stats.overruns++;
    if (pause > stats.overrun_max_ns) stats.overrun_max_ns = pause;
  }
  if (hli_gc.debug & HL_GC_DEBUG_STATS)
    fprintf(stderr,
            "gc: generation %d: %llu objects examined, %llu unreachable, %llu uncollectable, "
            "%llu untracked, %.3f ms\n",
            generation, (unsigned long long)work->visited, (unsigned long long)info->collected,
            (unsigned long long)info->uncollectable, (unsigned long long)work->untracked,
            (double)pause / 1e6);
}

/* With the world stopped: every tracked object into the generation lists. */
static void gather(void) {
  if (hli_gc.collector->gather) hli_gc.collector->gather();
  else hli_gc_gather_stripes(false);
}

void hli_gc_trigger(void) { hli_gc.collector->trigger(); }

/* ---- start-up and shut-down ------------------------------------------------------- */
static void on_attach(hl_thread_t *t, void *arg) {
  (void)arg;
  const hli_collector_t *row = hli_gc.collector;
  if (row && row->thread_attach) row->thread_attach(t);
}
static void on_detach(hl_thread_t *t, void *arg) {
  (void)arg;
  const hli_collector_t *row = hli_gc.collector;
  if (row && row->thread_detach) row->thread_detach(t);
}
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static void hooks_register(void) {
  if (hl_thread_hooks_register(on_attach, on_detach, NULL) != 0)
    hl_die("no thread hook left for the cycle collector");
}

int hli_gc_init(const hl_config_t *c, char *err, size_t errlen) {
  const hli_collector_t *row = c->gc < HL_GC_COUNT ? collectors[c->gc] : NULL;
  if (!row) {
    snprintf(err, errlen, "option 'gc': collector %d is not in this build", (int)c->gc);
    return -1;
  }
  /* only a row that has them needs the thread hooks (a hook slot each) */
  if (row->thread_attach || row->thread_detach) pthread_once(&hooks_once, hooks_register);
  hli_gc.collector = row;
  hli_gc.budget_ns = 0;   /* a row with a pause budget sets it */
  hli_gc.increment_units = 0;
  hli_gc.active = row->tracks;
  hli_gc.untrack = c->gc_untrack;
  hli_gc.sweep_resumed = c->gc_sweep == HL_GC_SWEEP_RESUMED;
  hli_gc.enabled = hli_gc.active;
  hli_gc.collecting = false;
  hli_gc.debug = 0;
  for (int i = 0; i < HL_GC_GENERATIONS; i++) {
    hli_gc_list_init(&hli_gc.gen[i].head);
    hli_gc.gen[i].threshold = c->threshold[i];
    hli_gc.gen[i].count = 0;
  }
  hli_gc_list_init(&hli_gc.sweep);
  hli_gc.sweep_later = hli_gc.sweep_hand_back = false;
  hli_gc_track_init(c);
  hli_gc_list_init(&hli_gc.permanent);
  hli_gc.long_lived_total = hli_gc.long_lived_pending = 0;
  hli_gc.garbage = NULL;
  ncallbacks = 0;
  hl_mmu_tracker_init(&pause_log, hl_gc_mmu_window_ns, HL_GC_MMU_WINDOWS, PAUSE_LOG_MAX,
                      hl_now_ns());
  hl_mmu_tracker_init(&pause_log_cpu, hl_gc_mmu_window_ns, HL_GC_MMU_WINDOWS, PAUSE_LOG_MAX,
                      hl_now_ns());
  hl_gc_stats_reset();
  if (row->init && row->init(c) != 0) {
    snprintf(err, errlen, "the %s collector: %s", row->name, hl_err_message());
    return -1;
  }
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
  if (hli_gc.collector->fini) hli_gc.collector->fini();
  gather();
  for (int i = 0; i < HL_GC_GENERATIONS; i++) untrack_all(&hli_gc.gen[i].head);
  untrack_all(&hli_gc.permanent);
  free(immortal.kept);   /* objects still immortal stay allocated (hl_gc.h) */
  immortal.kept = NULL;
  immortal.n = immortal.cap = 0;
  hli_gc.active = hli_gc.enabled = false;
  hl_mmu_tracker_free(&pause_log);
  hl_mmu_tracker_free(&pause_log_cpu);
}

/* ---- the gc module ----------------------------------------------------------------- */
bool hl_gc_active(void) { return hli_gc.active; }

int64_t hl_gc_collect(int generation) {
  if (generation < 0 || generation >= HL_GC_GENERATIONS) {
    hl_err_set(HL_ERR_VALUE, "invalid generation %d: accepted 0..%d", generation,
               HL_GC_GENERATIONS - 1);
    return -1;
  }
  if (!hli_gc.active || hli_gc_load_bool(&hli_gc.collecting)) return 0;
  uint64_t stopped_at = hli_gc_world_stop();
  /* another thread's collection may have run while we waited to stop */
  int64_t r = hli_gc_load_bool(&hli_gc.collecting)
                  ? 0
                  : hli_gc.collector->collect(generation, stopped_at);
  hli_gc_world_resume(stopped_at);
  hli_gc_sweep_pending();
  return r;
}

int64_t hl_gc_step(void) {
  if (!hli_gc.active || hli_gc_load_bool(&hli_gc.collecting)) return 0;
  uint64_t stopped_at = hli_gc_world_stop();
  int64_t r = 0;
  if (!hli_gc_load_bool(&hli_gc.collecting)) {
    const hli_collector_t *row = hli_gc.collector;
    if (row->step) {
      r = row->step(stopped_at);
    } else {
      int due = hli_gc_generation_due(HL_GC_GENERATIONS - 1);
      r = row->collect(due > 0 ? due : 0, stopped_at);
    }
  }
  hli_gc_world_resume(stopped_at);
  hli_gc_sweep_pending();
  return r;
}

void hl_gc_set_increment_units(uint64_t units) {
  hl_atomic_c11_store_relaxed_u64(&hli_gc.increment_units, units);
}

void hl_gc_enable(void) { hli_gc_store_bool(&hli_gc.enabled, hli_gc.active); }
void hl_gc_disable(void) { hli_gc_store_bool(&hli_gc.enabled, false); }
bool hl_gc_isenabled(void) { return hli_gc_load_bool(&hli_gc.enabled); }

void hl_gc_set_threshold(uint32_t a, uint32_t b, uint32_t c) {
  hl_atomic_store_relaxed_u32(&hli_gc.gen[0].threshold, a);
  hli_gc_set_batch(a);
  hl_atomic_store_relaxed_u32(&hli_gc.gen[1].threshold, b);
  hl_atomic_store_relaxed_u32(&hli_gc.gen[2].threshold, c);
}
void hl_gc_get_threshold(uint32_t out[HL_GC_GENERATIONS]) {
  for (int i = 0; i < HL_GC_GENERATIONS; i++) out[i] = hli_gc_threshold(i);
}
void hl_gc_get_count(uint32_t out[HL_GC_GENERATIONS]) {
  uint64_t stopped_at = hli_gc_world_stop();
  hli_gc_count_flush_self();   /* the calling thread's own part of generation 0's count first */
  for (int i = 0; i < HL_GC_GENERATIONS; i++) out[i] = hli_gc_gen_count(i);
  hli_gc_world_resume(stopped_at);
}

void hl_gc_freeze(void) {
  uint64_t stopped_at = hli_gc_world_stop();
  gather();
  for (int i = 0; i < HL_GC_GENERATIONS; i++) {
    hli_gc_list_merge(&hli_gc.gen[i].head, &hli_gc.permanent);
    hli_gc.gen[i].count = 0;
  }
  hli_gc_count0_reset();
  hli_gc_world_resume(stopped_at);
}
void hl_gc_unfreeze(void) {
  uint64_t stopped_at = hli_gc_world_stop();
  hli_gc_list_merge(&hli_gc.permanent, &hli_gc.gen[HL_GC_GENERATIONS - 1].head);
  hli_gc_world_resume(stopped_at);
}
size_t hl_gc_get_freeze_count(void) {
  uint64_t stopped_at = hli_gc_world_stop();
  size_t n = hli_gc_list_size(&hli_gc.permanent);
  hli_gc_world_resume(stopped_at);
  return n;
}

/* ---- immortalizing a heap before fork ---------------------------------------------
 * A depth-first walk from every tracked object through hl_traverse. The
 * walk marks an object by making it immortal, so an object already
 * immortal (a singleton, a small int, one made by an earlier call) is
 * neither kept nor walked through: an immortal container made at creation
 * (the empty tuple) holds only immortal objects. Each object's count is
 * kept beside it; undo gives them back in reverse order. */

typedef struct immortal_walk {
  hl_object_t **stack;
  size_t n, cap;
  bool nomem;
} immortal_walk_t;

static bool grow(void **items, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return true;
  size_t c = *cap ? *cap * 2 : 4096;
  while (c < need) c *= 2;
  void *p = realloc(*items, c * size);
  if (!p) return false;
  *items = p;
  *cap = c;
  return true;
}

static int immortal_push(hl_object_t *o, void *arg) {
  immortal_walk_t *w = arg;
  if (hl_is_immortal(o)) return 0;
  if (!grow((void **)&w->stack, &w->cap, w->n + 1, sizeof *w->stack)) {
    w->nomem = true;
    return 1;
  }
  w->stack[w->n++] = o;
  return 0;
}

int64_t hl_gc_immortalize(void) {
  if (hl_rc_config.mode != HL_RC_GIL) {
    hl_err_set(HL_ERR_VALUE, "hl_gc_immortalize: rc=%s: accepted rc=gil only",
               hl_config_choice_name(HL_OPT_RC, (int)hl_rc_config.mode));
    return -1;
  }
  gather();
  hl_gc_head_t *lists[HL_GC_GENERATIONS + 1] = {&hli_gc.gen[0].head, &hli_gc.gen[1].head,
                                                &hli_gc.gen[2].head, &hli_gc.permanent};
  immortal_walk_t w = {0};
  size_t first = immortal.n;
  for (size_t k = 0; k < HL_ARRAY_LEN(lists) && !w.nomem; k++)
    for (hl_gc_head_t *g = hli_gc_next(lists[k]); g != lists[k] && !w.nomem; g = hli_gc_next(g)) {
      immortal_push(HL_GC_OBJ(g), &w);
      while (w.n && !w.nomem) {
        hl_object_t *o = w.stack[--w.n];
        if (hl_is_immortal(o)) continue;   /* pushed twice before its turn */
        if (!grow((void **)&immortal.kept, &immortal.cap, immortal.n + 1, sizeof *immortal.kept)) {
          w.nomem = true;
          break;
        }
        immortal.kept[immortal.n++] = (immortal_kept_t){o, hli_rc_load(o), o->flags};
        hli_make_immortal(o);
        hl_traverse(o, immortal_push, &w);
      }
    }
  free(w.stack);
  if (w.nomem) {
    while (immortal.n > first) {   /* nothing changed, as promised */
      immortal_kept_t *e = &immortal.kept[--immortal.n];
      hl_atomic_c11_store_relaxed_u32(&e->o->rc, e->rc);
      hl_atomic_c11_store_relaxed_u16(&e->o->owner, HL_OWNER_PLAIN);
      e->o->flags = e->flags;
    }
    hl_err_set(HL_ERR_NOMEM, "hl_gc_immortalize: out of memory for the kept counts");
    return -1;
  }
  return (int64_t)(immortal.n - first);
}

void hl_gc_immortalize_undo(void) {
  while (immortal.n) {
    immortal_kept_t *e = &immortal.kept[--immortal.n];
    hl_atomic_c11_store_relaxed_u32(&e->o->rc, e->rc);
    hl_atomic_c11_store_relaxed_u16(&e->o->owner, HL_OWNER_PLAIN);
    e->o->flags = e->flags;
  }
  free(immortal.kept);
  immortal.kept = NULL;
  immortal.cap = 0;
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
  if (hli_nogil()) hli_gc_untrack_ft(o);
  else hli_gc_list_remove(HL_GC_HEAD(o));
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
  uint64_t stopped_at = hli_gc_world_stop();
  gather();
  for (int i = 0; i < HL_GC_GENERATIONS; i++)
    if ((generation == -1 || generation == i) && append_objects(list, &hli_gc.gen[i].head) != 0) {
      hli_gc_world_resume(stopped_at);
      hl_decref(list);
      return NULL;
    }
  hli_gc_world_resume(stopped_at);
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
  uint64_t stopped_at = hli_gc_world_stop();
  gather();
  for (size_t k = 0; k < HL_ARRAY_LEN(lists); k++)
    for (hl_gc_head_t *g = hli_gc_next(lists[k]); g != lists[k]; g = hli_gc_next(g)) {
      hl_object_t *r = HL_GC_OBJ(g);
      if (r == list) continue;
      referrer_probe_t p = {o, false};
      hl_traverse(r, visit_probe, &p);
      if (p.found && hl_list_append(list, r) != 0) {
        hli_gc_world_resume(stopped_at);
        hl_decref(list);
        return NULL;
      }
    }
  hli_gc_world_resume(stopped_at);
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

/* ---- statistics ----------------------------------------------------------------------- */
/* --gc=concurrent's thread writes the statistics in its chunks, which
 * hold the shared lists' lock (gen_conc.c) */
static void stats_lock(void) {
  if (hli_nogil()) hl_spinlock_lock(&hli_gc_stripes[0].lock);
}
static void stats_unlock(void) {
  if (hli_nogil()) hl_spinlock_unlock(&hli_gc_stripes[0].lock);
}

void hl_gc_stats(hl_gc_stats_t *s) {
  stats_lock();
  *s = stats;
  stats_unlock();
  backlog_now(s);
}

void hl_gc_stats_reset(void) {
  stats_lock();
  stats = (hl_gc_stats_t){0};
  hli_conc_stats_reset();
  stats_unlock();
  hl_atomic_c11_store_relaxed_u64(&hli_gc.garbage_noted, 0);
  hl_hist_init(&stw_hist);
  hl_spinlock_lock(&sweep_lock);
  hl_hist_init(&sweep_hist);
  hl_spinlock_unlock(&sweep_lock);
  hl_hist_init(&increment_hist);
  hl_hist_init(&pause_all);
  for (int i = 0; i < HL_GC_GENERATIONS; i++) hl_hist_init(&pause_gen[i]);
  uint64_t now = hl_now_ns();
  hl_mmu_tracker_reset(&pause_log, now);
  hl_mmu_tracker_reset(&pause_log_cpu, now);
}

void hl_gc_stw_hist(hl_hist_t *out) { *out = stw_hist; }
void hl_gc_sweep_hist(hl_hist_t *out) {
  hl_spinlock_lock(&sweep_lock);
  *out = sweep_hist;
  hl_spinlock_unlock(&sweep_lock);
}
const struct hl_hist *hl_gc_increment_hist(void) { return &increment_hist; }

void hl_gc_mmu(uint64_t end_ns, double out[HL_GC_MMU_WINDOWS], bool *exact) {
  for (unsigned i = 0; i < HL_GC_MMU_WINDOWS; i++)
    out[i] = hl_mmu_tracker_get(&pause_log, i, end_ns);
  if (exact) *exact = pause_log.exact;
}

void hl_gc_mmu_cpu(uint64_t end_ns, double out[HL_GC_MMU_WINDOWS]) {
  for (unsigned i = 0; i < HL_GC_MMU_WINDOWS; i++)
    out[i] = hl_mmu_tracker_get(&pause_log_cpu, i, end_ns);
}

const struct hl_hist *hl_gc_pause_hist(int generation) {
  if (generation < 0 || generation >= HL_GC_GENERATIONS) return &pause_all;
  return &pause_gen[generation];
}
