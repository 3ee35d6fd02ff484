/* gc/: collections while several threads mutate shared objects (HEAPLAB_GC),
 * in every refcount mode (HEAPLAB_RC): under the GIL (rc=gil) the
 * collection runs in the thread whose allocation crossed the threshold,
 * between any two checkpoints of the others; without it (rc=atomic,
 * rc=biased) that thread stops the world first, and the others park at
 * their checkpoints. Under ThreadSanitizer (label threads) this checks that
 * every collection, and every count and list it touches, is ordered by the
 * GIL or by the stop; in every build, that no cycle is lost and no object
 * freed twice.
 *
 * Each worker attaches and, ITER times, with a checkpoint at every step
 * (under the GIL it changes hands there, at a 50 us switch interval):
 *   - builds a small cycle (two instances pointing at each other, a list
 *     between them) with a weakref whose callback counts its death, and
 *     drops it: only a collection frees it;
 *   - replaces a random slot of a shared table (a list of lists) with a
 *     new list that points back at the table: more cycles, through an
 *     object every thread mutates;
 *   - appends to a random shared list and pops from another, and stores a
 *     tuple and a dict into them: old objects made to point at young ones;
 *   - now and then collects a generation itself, and releases the GIL
 *     around a short sleep.
 * Thresholds are low (50, 5, 5) so that collections come every few dozen
 * allocations. At the end, after a last collection: every cycle's callback
 * ran exactly once, every object is freed, and with alloc=pool no block is
 * in use.
 *
 * usage: test_gc_threads [THREADS] [ITER]   (defaults: 4 threads, 20000)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hl_alloc.h"
#include "hl_gc.h"
#include "hl_sync.h"
#include "obj_check.h"

extern char **environ;

#define MAX_THREADS 64
#define TABLE 64
#define CHECK(c) do { if (!(c)) hl_die("check failed: %s", #c); } while (0)

static unsigned g_threads = 4, g_iter = 20000;
static hl_config_t cfg;
static hl_type_t *Pair;
static hl_object_t *table;        /* TABLE lists, mutated by every thread */
static uint64_t deaths;           /* weakref callbacks (atomic: no GIL in two modes) */

static void on_death(hl_object_t *wr, void *arg) {
  (void)wr;
  (void)arg;
  hl_atomic_inc_u64(&deaths);
}

typedef struct worker {
  unsigned index;
  uint64_t made;                  /* cycles made */
  hl_object_t *weakrefs;          /* a list of this worker's weakrefs */
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  hl_rand_t r;
  hl_rand_seed(&r, 0x9e3779b97f4a7c15ull * (w->index + 1));
  hl_thread_attach();
  CHECK((w->weakrefs = hl_list_new(0)) != NULL);
  for (unsigned i = 0; i < g_iter; i++) {
    hl_checkpoint();
    /* a cycle a <-> b through a list, with a weakref to a */
    hl_object_t *a = hl_instance_new(Pair), *b = hl_instance_new(Pair), *l = hl_list_new(0);
    CHECK(a && b && l);
    hl_list_append(l, b);
    hl_slot_set(a, 0, l);
    hl_slot_set(b, 0, a);
    hl_object_t *wr = hl_weakref_new(a, on_death, NULL);
    CHECK(wr != NULL);
    hl_list_append(w->weakrefs, wr);
    hl_decref(wr);
    hl_decref(a);
    hl_decref(b);
    hl_decref(l);
    w->made++;
    hl_checkpoint();
    /* the shared table: a new list pointing back at the table */
    hl_object_t *n = hl_list_new(0);
    CHECK(n != NULL);
    hl_list_append(n, table);
    CHECK(hl_list_set(table, hl_rand_below(&r, TABLE), n) == 0);   /* steals n */
    hl_checkpoint();
    /* old objects made to point at young ones, and back (the table's
     * items read as new references: another thread may replace them) */
    hl_object_t *x = hl_list_get_ref(table, hl_rand_below(&r, TABLE));
    CHECK(x != NULL);
    hl_object_t *big = hl_int_new(1000000 + i), *t = hl_tuple_pack(2, big, x);
    hl_object_t *d = hl_dict_new();
    CHECK(big && t && d);
    hl_dict_set(d, big, t);
    hl_list_append(x, d);
    hl_list_append(x, t);
    hl_decref(big);
    hl_decref(t);
    hl_decref(d);
    hl_decref(x);
    hl_object_t *y = hl_list_get_ref(table, hl_rand_below(&r, TABLE));
    CHECK(y != NULL);
    for (hl_object_t *p; hl_list_size(y) > 4 && (p = hl_list_pop(y));) hl_decref(p);
    hl_decref(y);
    if (i % 997 == 0) CHECK(hl_gc_collect((int)hl_rand_below(&r, 3)) >= 0);
    if (i % 1024 == 0) obj_block_briefly();
  }
  /* its free lists and counters into the process totals (as the runner's
   * workers do: a thread that never used a free list has no exit hook) */
  hl_freelists_clear();
  hl_thread_detach();
  return NULL;
}

static void test_collection_during_mutation(void **state) {
  (void)state;
  char err[256];
  /* the collector is HEAPLAB_GC's (stw by default): every collector's row
   * runs this (tests/CMakeLists.txt) */
  cfg.threads = g_threads;   /* the allocator locks its shared pools for more than one */
  cfg.threshold[0] = 50;
  cfg.threshold[1] = 5;
  cfg.threshold[2] = 5;
  int rc = hl_runtime_init(&cfg, err, sizeof err);
  if (rc != 0) fail_msg("%s", err);
  if (cfg.rc == HL_RC_GIL) hl_gil_init(true, 50);
  Pair = hl_class_new("Pair", 1, false, NULL);
  uint64_t before = obj_live();
  table = hl_list_new(0);
  assert_non_null(table);
  for (int i = 0; i < TABLE; i++) {
    hl_object_t *l = hl_list_new(0);
    hl_list_append(table, l);
    hl_decref(l);
  }
  deaths = 0;

  worker_t w[MAX_THREADS];
  pthread_t tid[MAX_THREADS];
  memset(w, 0, sizeof w);
  for (unsigned i = 0; i < g_threads; i++) {
    w[i].index = i;
    assert_int_equal(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
  }
  for (unsigned i = 0; i < g_threads; i++) pthread_join(tid[i], NULL);

  /* every thread has detached: this one is alone with the objects */
  hl_gc_stats_t st;
  hl_gc_stats(&st);
  assert_true(st.collections[0] > 0);
  printf("test_gc_threads: %llu/%llu/%llu collections, %llu collected\n",
         (unsigned long long)st.collections[0], (unsigned long long)st.collections[1],
         (unsigned long long)st.collections[2],
         (unsigned long long)(st.collected[0] + st.collected[1] + st.collected[2]));
  if (cfg.rc == HL_RC_GIL) {
    hl_gil_stats_t *gs = malloc(sizeof *gs);
    assert_non_null(gs);
    hl_gil_stats(gs);
    printf("test_gc_threads: %llu GIL switches\n", (unsigned long long)gs->switches);
    assert_true(gs->switches > 0);
    free(gs);
  } else {
    /* the collections stopped the world */
    hl_hist_t stw;
    hl_gc_stw_hist(&stw);
    printf("test_gc_threads: %llu stops of the world\n", (unsigned long long)stw.count);
    assert_true(stw.count >= st.collections[0]);
  }
  hl_gc_collect(2);
  uint64_t made = 0;
  for (unsigned i = 0; i < g_threads; i++) made += w[i].made;
  assert_int_equal(deaths, made);                  /* each cycle found, once */
  for (unsigned i = 0; i < g_threads; i++) {
    for (size_t k = 0; k < hl_list_size(w[i].weakrefs); k++)
      assert_null(hl_weakref_get(hl_list_get(w[i].weakrefs, k)));
    hl_decref(w[i].weakrefs);
  }
  hl_decref(table);
  table = NULL;
  hl_gc_collect(2);                                /* the table's cycles */
  assert_int_equal(obj_live(), before);
  obj_fini_nothing_left(&cfg);
}

int main(int argc, char **argv) {
  if (argc > 1) g_threads = (unsigned)atoi(argv[1]);
  if (argc > 2) g_iter = (unsigned)atoi(argv[2]);
  if (g_threads < 1 || g_threads > MAX_THREADS) g_threads = 4;
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  printf("test_gc_threads: %u threads x %u iterations, rc=%s alloc=%s tcache=%s freelists=%s "
         "immortal=%s gc-untrack=%s\n",
         g_threads, g_iter, hl_config_choice_name(HL_OPT_RC, cfg.rc),
         hl_config_choice_name(HL_OPT_ALLOC, cfg.alloc),
         hl_config_choice_name(HL_OPT_TCACHE, cfg.tcache), cfg.freelists ? "on" : "off",
         cfg.immortal ? "on" : "off", cfg.gc_untrack ? "on" : "off");
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_collection_during_mutation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
