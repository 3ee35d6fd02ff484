/* gc/: the incremental collector's own contract (gc/gen_incr.c), once per
 * refcount mode and allocator (CTest sets HEAPLAB_RC, HEAPLAB_ALLOC):
 *
 *   - random graphs mutated between increments, against a model the test
 *     keeps of the same graph: after every increment each node the model
 *     says is reachable is alive with the edges the model gives it (nothing
 *     reachable is ever freed); once the mutations stop, two scans later
 *     every unreachable node is gone and a full collection finds nothing
 *     more (every piece of cyclic garbage is found);
 *   - a million-object cycle is found, its validation counted as an
 *     overrun of the unit budget, never hidden;
 *   - the budget holds in work units (hl_gc_set_increment_units), which
 *     are the same on every machine: never in time;
 *   - the schedule: a scan starts when stw would collect in full;
 *   - the --mmu-target rule (collector.h's hli_mmu_pacer_t) on a given
 *     schedule of pauses, a fake clock: every 10 ms window keeps its
 *     share, and the scan still gets the rest.
 * The gc module's semantics under this collector (finalizers,
 * resurrection, weakrefs, freeze, the API) are test_gc's matrix, which runs
 * under both collectors. Automatic collection is off unless a test says
 * otherwise: the test drives the increments with hl_gc_step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_alloc.h"
#include "hl_gc.h"
#include "hl_measure.h"
#include "hl_sync.h"
#include "collector.h"   /* hli_unit_clock_t, hli_mmu_pacer_t: tested alone */
#include "obj_check.h"

extern char **environ;

static hl_config_t cfg;

/* HEAPLAB_GC=concurrent runs the same contract through the concurrent
 * collector's row (gc/gen_conc.c): with automatic collection off its thread
 * does nothing, and hl_gc_step runs every phase of the scan in the step */
static bool concurrent;

static int setup(void **state) {
  (void)state;
  cfg.gc = concurrent ? HL_GC_CONCURRENT : HL_GC_INCREMENTAL;
  obj_start_collector(&cfg);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  hl_gc_set_increment_units(0);
  if (cfg.rc != HL_RC_GIL) hl_thread_detach();
  obj_fini_nothing_left(&cfg);
  return 0;
}

static uint64_t scans(void) {
  hl_gc_stats_t s;
  hl_gc_stats(&s);
  return s.scans;
}

/* Increments until `more` scans have completed (a scan that was under way
 * counts as one); fails the test rather than loop for ever. */
static void steps_for_scans(uint64_t more) {
  uint64_t want = scans() + more;
  for (long i = 0; scans() < want; i++) {
    assert_true(i < 10000000);
    hl_gc_step();
  }
}

/* ---- random graphs against a model ------------------------------------------------ */
#define NODES 600
#define EDGES 3                 /* slots 0..2: edges; slot 3: the node's id */
static hl_type_t *Node;
static int adj[NODES][EDGES];   /* the model: -1 = no edge */
static bool rooted[NODES];
static bool made[NODES];
static hl_object_t *wr[NODES];  /* a weakref to each node made */
static bool reach[NODES];

static void model_reach(void) {
  int stack[NODES], n = 0;
  memset(reach, 0, sizeof reach);
  for (int i = 0; i < NODES; i++)
    if (rooted[i]) {
      reach[i] = true;
      stack[n++] = i;
    }
  while (n) {
    int i = stack[--n];
    for (int k = 0; k < EDGES; k++) {
      int j = adj[i][k];
      if (j >= 0 && !reach[j]) {
        reach[j] = true;
        stack[n++] = j;
      }
    }
  }
}

/* A new reference to node i, or NULL when it is gone. */
static hl_object_t *node(int i) { return made[i] ? hl_weakref_get(wr[i]) : NULL; }

/* Every reachable node alive, its edges those of the model. */
static void check_reachable_intact(void) {
  model_reach();
  for (int i = 0; i < NODES; i++) {
    if (!reach[i]) continue;
    hl_object_t *o = node(i);
    assert_non_null(o);
    assert_int_equal(hl_int_value(hl_slot_get(o, EDGES)), i);
    for (int k = 0; k < EDGES; k++) {
      hl_object_t *t = hl_slot_get(o, (uint32_t)k);
      if (adj[i][k] < 0) {
        assert_null(t);
      } else {
        assert_non_null(t);
        assert_int_equal(hl_int_value(hl_slot_get(t, EDGES)), adj[i][k]);
      }
    }
    hl_decref(o);
  }
}

/* The roots: a dict {id: node}. */
static void root(hl_object_t *roots, int i, hl_object_t *o) {
  hl_object_t *k = hl_int_new(i);
  assert_int_equal(hl_dict_set(roots, k, o), 0);
  hl_decref(k);
  rooted[i] = true;
}
static void unroot(hl_object_t *roots, int i) {
  hl_object_t *k = hl_int_new(i);
  assert_int_equal(hl_dict_del(roots, k), 0);
  hl_decref(k);
  rooted[i] = false;
}

static int new_node(hl_object_t *roots, int i) {
  hl_object_t *o = hl_instance_new(Node), *id = hl_int_new(i);
  assert_non_null(o);
  hl_slot_set(o, EDGES, id);
  hl_decref(id);
  wr[i] = hl_weakref_new(o, NULL, NULL);
  assert_non_null(wr[i]);
  made[i] = true;
  for (int k = 0; k < EDGES; k++) adj[i][k] = -1;
  root(roots, i, o);   /* alive through the roots until the caller links it */
  hl_decref(o);
  return i;
}

/* One random mutation of the graph: among the nodes the model says are
 * reachable (or any node still alive, now and then: a weakref brings back
 * an object the collector may be about to find unreachable). */
static void mutate(hl_rand_t *rng, hl_object_t *roots, int *next_id) {
  int pick[NODES], n = 0;
  model_reach();
  for (int i = 0; i < NODES; i++)
    if (reach[i]) pick[n++] = i;
  unsigned op = (unsigned)hl_rand_below(rng, 10);
  if ((op < 3 || n < 4) && *next_id < NODES) {          /* a new node, linked from one */
    int i = new_node(roots, (*next_id)++);
    if (n && hl_rand_below(rng, 2)) {
      int from = pick[hl_rand_below(rng, (uint64_t)n)], k = (int)hl_rand_below(rng, EDGES);
      hl_object_t *f = node(from), *o = node(i);
      hl_slot_set(f, (uint32_t)k, o);
      adj[from][k] = i;
      hl_decref(f);
      hl_decref(o);
      unroot(roots, i);
    }
    return;
  }
  if (!n) return;
  int i = pick[hl_rand_below(rng, (uint64_t)n)];
  if (op < 8) {                                          /* an edge set or cut */
    int k = (int)hl_rand_below(rng, EDGES), j = -1;
    if (hl_rand_below(rng, 4)) {
      j = pick[hl_rand_below(rng, (uint64_t)n)];
      if (hl_rand_below(rng, 8) == 0) {                  /* any node still alive */
        int any = (int)hl_rand_below(rng, (uint64_t)*next_id);
        hl_object_t *a = node(any);
        if (a) {
          j = any;
          hl_decref(a);
        }
      }
    }
    hl_object_t *f = node(i), *t = j >= 0 ? node(j) : NULL;
    hl_slot_set(f, (uint32_t)k, t);
    adj[i][k] = j;
    hl_decref(f);
    hl_xdecref(t);
  } else if (op == 8 && rooted[i]) {                     /* a root dropped */
    unroot(roots, i);
  } else {                                               /* a node rooted */
    if (!rooted[i]) {
      hl_object_t *o = node(i);
      root(roots, i, o);
      hl_decref(o);
    }
  }
}

static void random_graph_run(uint64_t seed, uint64_t units) {
  Node = hl_class_new("Node", EDGES + 1, false, NULL);
  memset(made, 0, sizeof made);
  memset(rooted, 0, sizeof rooted);
  hl_object_t *roots = hl_dict_new();
  hl_rand_t rng;
  hl_rand_seed(&rng, seed);
  hl_gc_set_increment_units(units);
  int next_id = 0;
  for (int round = 0; round < 400 && next_id < NODES; round++) {
    for (int m = 0; m < 6; m++) mutate(&rng, roots, &next_id);
    hl_gc_step();
    check_reachable_intact();
  }
  /* mutations stop: a scan that starts from here sees all the garbage */
  steps_for_scans(2);
  check_reachable_intact();
  for (int i = 0; i < next_id; i++) {
    hl_object_t *o = node(i);
    if (!reach[i] && o) fprintf(stderr, "node %d unreachable and alive\n", i);
    assert_true(reach[i] || o == NULL);
    hl_xdecref(o);
  }
  assert_int_equal(hl_gc_collect(2), 0);   /* the oracle: nothing left to find */
  hl_gc_stats_t st;
  hl_gc_stats(&st);
  assert_true(st.scan_candidates > 0);
  hl_decref(roots);
  for (int i = 0; i < next_id; i++) hl_decref(wr[i]);
  hl_gc_collect(2);
}

static void test_random_graphs_small_budget(void **state) {
  (void)state;
  random_graph_run(1, 8);    /* a scan spans many increments and mutations */
}
static void test_random_graphs_medium_budget(void **state) {
  (void)state;
  random_graph_run(2, 200);
}
static void test_random_graphs_other_seeds(void **state) {
  (void)state;
  for (uint64_t seed = 3; seed < 7; seed++) {
    random_graph_run(seed, 1 + seed * 7);
    memset(made, 0, sizeof made);
  }
}

/* ---- a million-object cycle ----------------------------------------------------------- */
static void test_million_object_cycle(void **state) {
  (void)state;
  enum { N = 1000000 };
  hl_type_t *Ring = hl_class_new("Ring", 1, false, NULL);
  hl_object_t *first = hl_instance_new(Ring), *prev = first;
  hl_incref(first);
  for (int i = 1; i < N; i++) {
    hl_object_t *x = hl_instance_new(Ring);
    assert_non_null(x);
    hl_slot_set(prev, 0, x);
    hl_decref(prev);
    prev = x;
  }
  hl_slot_set(prev, 0, first);
  hl_decref(prev);
  hl_object_t *w = hl_weakref_new(first, NULL, NULL);
  hl_gc_collect(1);            /* the ring is old: only a scan will find it */
  hl_gc_set_increment_units(10000);
  hl_decref(first);            /* garbage now */
  uint64_t live = obj_live();
  steps_for_scans(2);
  hl_object_t *gone = hl_weakref_get(w);
  assert_null(gone);
  assert_true(live - obj_live() >= N);
  hl_gc_stats_t st;
  hl_gc_stats(&st);
  assert_true(st.scans >= 2);
  /* its validation is one indivisible piece: over the budget, and said */
  assert_true(st.overrun_units >= 1);
  assert_true(st.overrun_units_max >= N);
  hl_decref(w);
}

/* ---- the budget in units ------------------------------------------------------------- */
static void test_budget_in_units(void **state) {
  (void)state;
  enum { U = 300 };
  hl_type_t *Pair = hl_class_new("Pair", 2, false, NULL);
  hl_object_t *keep = hl_list_new(0);
  hl_rand_t rng;
  hl_rand_seed(&rng, 7);
  /* a live heap of 3,000 lists in 60 lists of 50 (no container holds more
   * than 60), and rings of 2..8 nodes made and dropped */
  for (int i = 0; i < 60; i++) {
    hl_object_t *l = hl_list_new(0);
    for (int j = 0; j < 50; j++) {
      hl_object_t *x = hl_list_new(0);
      hl_list_append(l, x);
      hl_decref(x);
    }
    hl_list_append(keep, l);
    hl_decref(l);
  }
  hl_gc_collect(1);
  hl_gc_stats_reset();
  hl_gc_set_increment_units(U);
  for (int r = 0; r < 2000; r++) {
    int n = 2 + (int)hl_rand_below(&rng, 7);
    hl_object_t *first = hl_instance_new(Pair), *prev = first;
    hl_incref(first);
    for (int i = 1; i < n; i++) {
      hl_object_t *x = hl_instance_new(Pair);
      hl_slot_set(prev, 0, x);
      hl_decref(prev);
      prev = x;
    }
    hl_slot_set(prev, 0, first);
    hl_decref(prev);
    if (r % 3 == 0) hl_gc_collect(0);   /* some rings grow old before they die */
    hl_decref(first);
    if (r % 5 == 0) hl_gc_step();
  }
  steps_for_scans(2);
  hl_gc_stats_t st;
  hl_gc_stats(&st);
  hl_hist_summary_t h = hl_hist_summarize(hl_gc_increment_hist());
  assert_true(h.count > 0);
  /* every piece here is small (a list of at most 60 items, a ring's
   * closure of at most 8): an increment stops within a piece of its budget */
  assert_true(h.max <= U + 64);
  assert_int_equal(st.overrun_units, 0);
  assert_int_equal(st.budget_units, U);
  assert_int_equal(hl_gc_collect(2), 0);   /* the scans found every ring */
  hl_decref(keep);
}

/* ---- the schedule ----------------------------------------------------------------------- */
/* Automatic collection: a scan starts only when stw would collect in full
 * (B x C young collections and the long-lived rule), and old cyclic
 * garbage is then found without any explicit collection. */
static void test_schedule_finds_old_garbage(void **state) {
  (void)state;
  if (concurrent) skip();   /* when its thread's scan ends is the scheduler's (test_gc_conc) */
  hl_type_t *Pair = hl_class_new("Pair", 2, false, NULL);
  hl_gc_set_threshold(50, 2, 2);
  hl_gc_enable();
  hl_object_t *keep = hl_list_new(0);
  uint64_t live0 = obj_live();
  for (int r = 0; r < 20000; r++) {
    hl_object_t *a = hl_instance_new(Pair), *b = hl_instance_new(Pair);
    hl_slot_set(a, 0, b);
    hl_slot_set(b, 0, a);
    /* a window (the newest goes, so it is a stack): pairs survive some
     * young collections, then die old */
    hl_list_append(keep, a);
    hl_decref(a);
    hl_decref(b);
    if (hl_list_size(keep) > 200) hl_decref(hl_list_pop(keep));
  }
  hl_gc_disable();
  hl_gc_stats_t st;
  hl_gc_stats(&st);
  assert_true(st.scans > 0);
  assert_true(st.increments > 0);
  assert_true(st.collected[2] > 0);          /* increments found old garbage */
  /* what is left is the window and the garbage of the last interval */
  assert_true(obj_live() - live0 < 40000);
  hl_decref(keep);
  hl_gc_collect(2);
}

/* The budget's conversion to units learns from increments smaller than its
 * sample: after one slow increment (4,399 ns a unit) every increment spends
 * what the budget converts to, about 200 units, fewer than a sample. The
 * estimate must still come down to the real cost (60 ns a unit here), or
 * the scan crawls for the rest of the run (cycles under gil once grew from
 * 6 to 127 MiB in 14 s that way). Deterministic: the samples are given. */
static void test_unit_clock_recovers(void **state) {
  (void)state;
  hli_unit_clock_t c = {.ns_per_unit = 10.0};
  hli_unit_clock_add(&c, 4399 * 300, 300);            /* one slow increment */
  assert_true(c.ns_per_unit > 500);
  double high = c.ns_per_unit;
  for (int i = 0; i < 400; i++) {
    uint64_t units = (uint64_t)(1e6 / c.ns_per_unit);  /* what a 1 ms budget converts to */
    if (units > 200) units = 200;                      /* fewer than a sample, always */
    hli_unit_clock_add(&c, 60 * units, units);
  }
  if (!(c.ns_per_unit < 61 && c.ns_per_unit > 59))
    fail_msg("ns per unit %.1f after 400 increments of 60 ns units (from %.1f)", c.ns_per_unit, high);
  /* samples below HLI_UNIT_SAMPLE units move nothing until they add up */
  hli_unit_clock_t d = {.ns_per_unit = 100.0};
  hli_unit_clock_add(&d, 10 * 100, 100);
  assert_true(d.ns_per_unit == 100.0);
  hli_unit_clock_add(&d, 10 * 200, 200);
  assert_true(d.ns_per_unit < 100.0 && d.sample_units == 0);
}

/* ---- the --mmu-target rule, on a fake clock ------------------------------------------ */
/* No pause: the whole share. A pause of the share: nothing until it leaves
 * the window. No rule: no limit. A full ring keeps every nanosecond. */
static void test_mmu_pacer_room(void **state) {
  (void)state;
  hli_mmu_pacer_t p;
  hli_mmu_pacer_init(&p, 10000000, 0);
  assert_true(hli_mmu_pacer_room(&p, 5) == UINT64_MAX);
  hli_mmu_pacer_init(&p, 10000000, 70);
  uint64_t t = 1000000000;
  assert_int_equal(hli_mmu_pacer_room(&p, t), 3000000);
  hli_mmu_pacer_add(&p, t, t + 1000000, 1000000);
  assert_int_equal(hli_mmu_pacer_room(&p, t + 2000000), 2000000);
  hli_mmu_pacer_add(&p, t + 2000000, t + 4000000, 0);
  assert_int_equal(hli_mmu_pacer_room(&p, t + 5000000), 0);
  /* the first pause leaves every window that could hold the next one */
  assert_true(hli_mmu_pacer_room(&p, t + 11000001) >= 1000000);
  assert_int_equal(hli_mmu_pacer_room(&p, t + 14000001), 3000000);
  /* three times the ring's pauses inside one window: merged, not lost */
  hli_mmu_pacer_init(&p, 10000000, 70);
  uint64_t sum = 0;
  for (int i = 0; i < 3 * HLI_MMU_RING; i++) {
    hli_mmu_pacer_add(&p, t + (uint64_t)i * 20000, t + (uint64_t)i * 20000 + 5000, 5000);
    sum += 5000;
  }
  uint64_t now = t + 3 * HLI_MMU_RING * 20000;
  double y = hli_mmu_pacer_forced_share(&p);
  assert_true(y > 0.2 && y < 0.3);   /* 5 us in every 20 us, nothing but young */
  assert_true(hli_mmu_pacer_room(&p, now) <= 3000000 - sum);
}

/* A schedule as gen_incr.c makes one: a pause every `gap` of the
 * mutator's time, a young collection of `young` (varied by +-25%, seeded),
 * then scan work for what the room leaves of a 1 ms budget. Every 10 ms
 * window after the averages settle must hold no more than the 3 ms share
 * but for two of the longest young collections (the rule reserves their
 * average rate, and a window may hold one or two more than the average);
 * the scan must get at least half of what the young collections leave of
 * the share. */
static void mmu_schedule(uint64_t young, uint64_t gap, const char *what) {
  enum { N = 6000 };
  static uint64_t start[N], end[N];
  hli_mmu_pacer_t p;
  hli_mmu_pacer_init(&p, 10000000, 70);
  uint64_t t = 1000000, scan = 0, seed = 42;
  for (int i = 0; i < N; i++) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    uint64_t y = young * 3 / 4 + (seed >> 33) % (young / 2 + 1);
    uint64_t room = hli_mmu_pacer_room(&p, t), budget = room < 1000000 ? room : 1000000;
    uint64_t pause = budget > y ? budget : y;
    start[i] = t;
    end[i] = t + pause;
    if (i >= N / 4) scan += pause - y;
    hli_mmu_pacer_add(&p, t, t + pause, y);
    t += pause + gap * 3 / 4 + (seed >> 40) % (gap / 2 + 1);
  }
  uint64_t worst = 0, from = start[N / 4];
  for (int i = N / 4; i < N; i++) {   /* windows starting at each pause */
    uint64_t paused = 0;
    for (int j = i; j < N && start[j] < start[i] + 10000000; j++)
      paused += (end[j] < start[i] + 10000000 ? end[j] : start[i] + 10000000) - start[j];
    if (paused > worst) worst = paused;
  }
  double span = (double)(t - from), young_share = (double)young / (double)(young + gap);
  double scan_share = (double)scan / span;
  if (worst > 3000000 + 2 * (young * 5 / 4))
    fail_msg("%s: a window held %.3f ms of pauses (share 3 ms)", what, (double)worst / 1e6);
  if (scan_share < (0.3 - young_share) / 2)
    fail_msg("%s: the scan got %.3f of the time, the young collections %.3f", what, scan_share,
             young_share);
}

static void test_mmu_pacer_schedule(void **state) {
  (void)state;
  mmu_schedule(15000, 120000, "a build (young collections of 15 us every 120 us)");
  mmu_schedule(550000, 3200000, "long-lived's churn (550 us every 3.2 ms)");
  mmu_schedule(200000, 1000000, "200 us every 1 ms");
}

int main(void) {
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  concurrent = cfg.gc == HL_GC_CONCURRENT;
  printf("test_gc_incr: gc=%s rc=%s alloc=%s\n", concurrent ? "concurrent" : "incremental",
         hl_config_choice_name(HL_OPT_RC, cfg.rc), hl_config_choice_name(HL_OPT_ALLOC, cfg.alloc));
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_random_graphs_small_budget, setup, teardown),
    cmocka_unit_test_setup_teardown(test_random_graphs_medium_budget, setup, teardown),
    cmocka_unit_test_setup_teardown(test_random_graphs_other_seeds, setup, teardown),
    cmocka_unit_test_setup_teardown(test_million_object_cycle, setup, teardown),
    cmocka_unit_test_setup_teardown(test_budget_in_units, setup, teardown),
    cmocka_unit_test_setup_teardown(test_schedule_finds_old_garbage, setup, teardown),
    cmocka_unit_test(test_unit_clock_recovers),
    cmocka_unit_test(test_mmu_pacer_room),
    cmocka_unit_test(test_mmu_pacer_schedule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
