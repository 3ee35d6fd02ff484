/* gc/: the stop-the-world generational collector (--gc=stw), once per mode
 * (CTest sets HEAPLAB_ALLOC, HEAPLAB_FREELISTS, HEAPLAB_IMMORTAL; the
 * refcount modes without a GIL will join when they are built).
 *
 * The seed's examples first, then the algorithm's corners: resurrection,
 * weakref callbacks, legacy finalizers, thresholds, freeze. Each test ends
 * with the object counts balanced (every object freed) and, with
 * alloc=pool, no block in use.
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

extern char **environ;

static hl_config_t cfg;

static int setup(void **state) {
  (void)state;
  char err[256];
  cfg.gc = HL_GC_STW;
  int r = hl_runtime_init(&cfg, err, sizeof err);
  if (r != 0) fprintf(stderr, "%s\n", err);
  assert_int_equal(r, 0);
  /* automatic collection off unless a test wants it: the counts are exact */
  hl_gc_disable();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  hl_runtime_fini();
  hl_obj_stats_t s;
  hl_obj_stats(&s);
  assert_int_equal(s.allocated, s.freed);
  if (cfg.alloc == HL_ALLOC_POOL) {
    hl_alloc_stats_t a;
    hl_alloc_stats(&a);
    assert_int_equal(a.blocks_in_use, 0);
  }
  return 0;
}

/* Objects alive (the free lists emptied first: a cached object is not). */
static uint64_t live(void) {
  hl_freelists_clear();
  hl_obj_stats_t s;
  hl_obj_stats(&s);
  return s.allocated - s.freed;
}

/* a = []; b = []; a.append(b); del a, b: reference counting frees both */
static void test_seed_acyclic(void **state) {
  (void)state;
  uint64_t before = live();
  hl_object_t *a = hl_list_new(0), *b = hl_list_new(0);
  assert_true(hl_gc_is_tracked(a));
  hl_list_append(a, b);
  hl_decref(a);
  hl_decref(b);
  assert_int_equal(live(), before);
  assert_int_equal(hl_gc_collect(2), 0);
}

/* the seed's Node ring: three nodes, each pointing to the next */
static hl_type_t *Node;

static hl_object_t *ring(int n) {
  hl_object_t *first = hl_instance_new(Node), *prev = first;
  for (int i = 1; i < n; i++) {
    hl_object_t *x = hl_instance_new(Node);
    hl_slot_set(prev, 0, x);
    hl_decref(x);
    prev = x;
  }
  hl_slot_set(prev, 0, first);
  return first;
}

static void test_seed_ring(void **state) {
  (void)state;
  Node = hl_class_new("Node", 2, false, NULL);
  uint64_t before = live();
  hl_object_t *r = ring(3);
  hl_decref(r);
  assert_int_equal(live(), before + 3);            /* reference counting cannot free it */
  assert_int_equal(hl_gc_collect(0), 3);
  assert_int_equal(live(), before);
  hl_gc_stats_t s;
  hl_gc_stats(&s);
  assert_int_equal(s.collections[0], 1);
  assert_int_equal(s.collected[0], 3);
}

static void test_reachable_cycle_survives(void **state) {
  (void)state;
  Node = hl_class_new("Node", 2, false, NULL);
  hl_object_t *holder = hl_list_new(0);
  hl_object_t *r = ring(5);
  hl_list_append(holder, r);
  hl_decref(r);
  uint64_t before = live();
  assert_int_equal(hl_gc_collect(2), 0);
  assert_int_equal(live(), before);
  /* still whole: walk the ring */
  hl_object_t *x = hl_list_get(holder, 0);
  for (int i = 0; i < 5; i++) x = hl_slot_get(x, 0);
  assert_ptr_equal(x, hl_list_get(holder, 0));
  /* an old object referring to young garbage keeps it: collect gen 0 only */
  hl_gc_collect(2);                                /* holder is now old */
  hl_object_t *r2 = ring(4);
  hl_list_append(holder, r2);
  hl_decref(r2);
  assert_int_equal(hl_gc_collect(0), 0);
  hl_list_clear(holder);                           /* now garbage */
  assert_int_equal(hl_gc_collect(2), 9);
  hl_decref(holder);
}

static void test_deep_and_wide_cycles(void **state) {
  (void)state;
  uint64_t before = live();
  /* deep: a chain of 100,000 lists closed into a cycle */
  hl_object_t *head = hl_list_new(0), *cur = head;
  for (int i = 0; i < 100000; i++) {
    hl_object_t *n = hl_list_new(0);
    hl_list_append(cur, n);
    hl_decref(n);
    cur = n;
  }
  hl_list_append(cur, head);
  /* wide: a dict whose 10,000 values all refer back to it */
  hl_object_t *d = hl_dict_new();
  for (int i = 0; i < 10000; i++) {
    hl_object_t *k = hl_int_new(i + 1000), *t = hl_tuple_pack(2, k, d);
    hl_dict_set(d, k, t);
    hl_decref(k);
    hl_decref(t);
  }
  hl_decref(head);
  hl_decref(d);
  int64_t found = hl_gc_collect(2);
  assert_int_equal(found, 100001 + 1 + 10000);
  assert_int_equal(live(), before);
}

/* ---- finalizers -------------------------------------------------------------------- */
static int finalized;
static hl_object_t *saved;
static void fin_count(hl_object_t *self) { (void)self; finalized++; }
static void fin_resurrect(hl_object_t *self) {
  finalized++;
  if (!saved) saved = hl_newref(self);
}

static void test_finalizers_in_cycles(void **state) {
  (void)state;
  uint64_t before = live();
  hl_type_t *D = hl_class_new("WithDel", 1, false, fin_count);
  hl_object_t *a = hl_instance_new(D), *b = hl_instance_new(D);
  hl_slot_set(a, 0, b);
  hl_slot_set(b, 0, a);
  hl_decref(a);
  hl_decref(b);
  finalized = 0;
  assert_int_equal(hl_gc_collect(0), 2);
  assert_int_equal(finalized, 2);
  assert_int_equal(live(), before);

  /* resurrection: the finalizer of one member saves it; the whole cycle
   * survives (it is reachable from saved), and the finalizers never run
   * again when it finally dies */
  hl_type_t *R = hl_class_new("Resurrects", 1, false, fin_resurrect);
  a = hl_instance_new(R);
  b = hl_instance_new(R);
  hl_slot_set(a, 0, b);
  hl_slot_set(b, 0, a);
  hl_decref(a);
  hl_decref(b);
  finalized = 0;
  saved = NULL;
  /* both were unreachable and finalized, then found resurrected: nothing
   * freed, so nothing counted (as CPython's gc.collect) */
  assert_int_equal(hl_gc_collect(0), 0);
  assert_int_equal(finalized, 2);
  assert_non_null(saved);
  assert_int_equal(live(), before + 2);
  assert_true(hl_gc_is_tracked(saved));
  hl_object_t *s = saved;
  saved = NULL;
  hl_decref(s);                                    /* garbage again */
  assert_int_equal(hl_gc_collect(2), 2);
  assert_int_equal(finalized, 2);                  /* not run twice */
  assert_null(saved);
  assert_int_equal(live(), before);
}

static void test_legacy_finalizer_uncollectable(void **state) {
  (void)state;
  hl_type_t *L = hl_class_new("LegacyDel", 1, false, fin_count);
  hl_class_set_legacy_finalizer(L, true);
  hl_object_t *a = hl_instance_new(L), *b = hl_list_new(0);
  hl_slot_set(a, 0, b);
  hl_list_append(b, a);
  hl_decref(a);
  hl_decref(b);
  finalized = 0;
  assert_int_equal(hl_gc_collect(2), 2);          /* found ... */
  assert_int_equal(finalized, 0);                  /* ... but not finalized */
  hl_gc_stats_t st;
  hl_gc_stats(&st);
  assert_int_equal(st.uncollectable[2], 2);
  hl_object_t *garbage = hl_gc_garbage();
  assert_int_equal(hl_list_size(garbage), 2);
  /* the program breaks the cycle by hand, as with gc.garbage */
  hl_object_t *x = hl_list_get(garbage, 0);
  if (x->type == L) hl_slot_set(x, 0, NULL);
  else hl_list_clear(x);
  hl_list_clear(garbage);
  assert_int_equal(finalized, 1);
}

/* ---- weakrefs ------------------------------------------------------------------------ */
static int cb_log[8], ncb;
static void cb(hl_object_t *wr, void *arg) {
  assert_null(hl_weakref_get(wr));                 /* cleared before any callback */
  cb_log[ncb++] = (int)(intptr_t)arg;
}

static void test_weakrefs_to_garbage(void **state) {
  (void)state;
  Node = hl_class_new("Node", 2, false, NULL);
  hl_object_t *r = ring(3);
  hl_object_t *w1 = hl_weakref_new(r, cb, (void *)1);
  hl_object_t *w2 = hl_weakref_new(hl_slot_get(r, 0), cb, (void *)2);
  /* a weakref that is itself part of the garbage: its callback never runs */
  hl_object_t *w3 = hl_weakref_new(hl_slot_get(hl_slot_get(r, 0), 0), cb, (void *)3);
  hl_slot_set(r, 1, w3);
  hl_decref(w3);
  hl_decref(r);
  ncb = 0;
  assert_int_equal(hl_gc_collect(0), 4);          /* three nodes and w3 */
  assert_int_equal(ncb, 2);
  assert_int_equal(cb_log[0] + cb_log[1], 3);      /* 1 and 2, not 3 */
  assert_null(hl_weakref_get(w1));
  assert_null(hl_weakref_get(w2));
  hl_decref(w1);
  hl_decref(w2);
}

/* ---- thresholds -------------------------------------------------------------------- */
static int g_collections[3];
static void count_cb(bool start, const hl_gc_info_t *info, void *arg) {
  (void)arg;
  if (!start) g_collections[info->generation]++;
}

static void test_thresholds(void **state) {
  (void)state;
  hl_gc_collect(2);                                /* every count back to 0 */
  hl_gc_set_threshold(100, 3, 2);
  uint32_t th[3];
  hl_gc_get_threshold(th);
  assert_int_equal(th[0], 100);
  assert_int_equal(th[1], 3);
  assert_int_equal(th[2], 2);
  hl_gc_enable();
  memset(g_collections, 0, sizeof g_collections);
  assert_int_equal(hl_gc_callback_add(count_cb, NULL), 0);
  hl_object_t *keep = hl_list_new(0);              /* container 1 */
  for (int i = 0; i < 99; i++) {                   /* containers 2..100 */
    hl_object_t *l = hl_list_new(0);
    hl_list_append(keep, l);
    hl_decref(l);
  }
  uint32_t count[3];
  hl_gc_get_count(count);
  assert_int_equal(count[0], 100);
  assert_int_equal(g_collections[0], 0);           /* 100 is not above 100 */
  hl_object_t *one = hl_list_new(0);               /* 101 > 100: generation 0 */
  assert_int_equal(g_collections[0], 1);
  hl_gc_get_count(count);
  assert_int_equal(count[0], 0);
  assert_int_equal(count[1], 1);
  hl_object_t *two = hl_list_new(0);
  hl_gc_get_count(count);
  assert_int_equal(count[0], 1);
  hl_decref(two);                                  /* a freed container uncounts */
  hl_gc_get_count(count);
  assert_int_equal(count[0], 0);
  hl_decref(one);
  hl_gc_disable();
  for (int i = 0; i < 1000; i++) hl_decref(hl_list_new(0));
  assert_int_equal(g_collections[0], 1);           /* disabled: no automatic collection */
  hl_gc_callback_remove(count_cb, NULL);
  hl_decref(keep);
}

/* The exact schedule with thresholds (1, 2, 1), everything surviving: a
 * collection at every second container (count 2 > 1); generation 1 when its
 * count, bumped by each generation-0 collection, exceeds 2; the full one
 * when generation 2's count exceeds 1 and long_lived_pending (survivors of
 * generation-1 collections) > long_lived_total / 4 (0 before the first). */
static void test_threshold_schedule(void **state) {
  (void)state;
  hl_gc_collect(2);                                /* every count back to 0 */
  hl_gc_set_threshold(1, 2, 1);
  memset(g_collections, 0, sizeof g_collections);
  hl_gc_callback_add(count_cb, NULL);
  hl_object_t *keep = hl_list_new(0);
  hl_gc_enable();
  enum { N = 20 };
  int seq[N];
  for (int i = 0; i < N; i++) {
    int before[3] = {g_collections[0], g_collections[1], g_collections[2]};
    hl_object_t *l = hl_list_new(0);
    hl_list_append(keep, l);
    hl_decref(l);
    seq[i] = g_collections[2] > before[2] ? 2 : g_collections[1] > before[1] ? 1
           : g_collections[0] > before[0] ? 0 : -1;
  }
  hl_gc_disable();
  hl_gc_callback_remove(count_cb, NULL);
  static const int expect[N] = {0, -1, 0, -1, 0, -1, 1, -1, 0, -1,
                                0, -1, 0, -1, 1, -1, 2, -1, 0, -1};
  for (int i = 0; i < N; i++) {
    if (seq[i] != expect[i]) fprintf(stderr, "allocation %d: collected %d, expected %d\n", i, seq[i], expect[i]);
    assert_int_equal(seq[i], expect[i]);
  }
  hl_decref(keep);
}

/* long_lived_pending > long_lived_total / 4 holds back a full collection
 * while few objects survived since the last one. */
static void test_full_collection_rule(void **state) {
  (void)state;
  hl_object_t *big = hl_list_new(0);
  for (int i = 0; i < 4000; i++) {
    hl_object_t *l = hl_list_new(0);
    hl_list_append(big, l);
    hl_decref(l);
  }
  hl_gc_collect(2);                                /* long_lived_total = 4001 */
  hl_gc_set_threshold(10, 1, 0);                   /* generation 2 always "due" by count */
  memset(g_collections, 0, sizeof g_collections);
  hl_gc_callback_add(count_cb, NULL);
  hl_gc_enable();
  /* short-lived windows of 12 containers: collections run while they are
   * alive, so a few survive each generation-1 collection, far fewer than
   * long_lived_total / 4 */
  for (int r = 0; r < 20; r++) {
    hl_object_t *tmp = hl_list_new(0);
    for (int i = 0; i < 11; i++) {
      hl_object_t *l = hl_list_new(0);
      hl_list_append(tmp, l);
      hl_decref(l);
    }
    hl_decref(tmp);
  }
  assert_true(g_collections[1] > 0);
  assert_int_equal(g_collections[2], 0);           /* pending < 4001 / 4 */
  hl_object_t *keep = hl_list_new(0);
  for (int i = 0; i < 1100; i++) {                 /* survivors: pending grows past 1000 */
    hl_object_t *l = hl_list_new(0);
    hl_list_append(keep, l);
    hl_decref(l);
  }
  assert_true(g_collections[2] >= 1);
  hl_gc_disable();
  hl_gc_callback_remove(count_cb, NULL);
  hl_decref(keep);
  hl_decref(big);
}

/* ---- freeze, introspection ------------------------------------------------------------- */
static void test_freeze_and_introspection(void **state) {
  (void)state;
  Node = hl_class_new("Node", 2, false, NULL);
  hl_object_t *l = hl_list_new(0), *t = hl_tuple_pack(1, l), *i = hl_int_new(12345);
  assert_true(hl_gc_is_tracked(l));
  assert_false(hl_gc_is_tracked(i));               /* not a container */
  hl_object_t *refs = hl_gc_get_referents(t);
  assert_int_equal(hl_list_size(refs), 1);
  assert_ptr_equal(hl_list_get(refs, 0), l);
  hl_decref(refs);
  hl_object_t *by = hl_gc_get_referrers(l);
  assert_int_equal(hl_list_size(by), 1);
  assert_ptr_equal(hl_list_get(by, 0), t);
  hl_decref(by);
  hl_object_t *objs = hl_gc_get_objects(-1);
  size_t n_all = hl_list_size(objs);
  assert_true(n_all >= 2);
  hl_decref(objs);
  /* freeze: collections ignore frozen garbage until unfreeze */
  hl_object_t *r = ring(3);
  hl_gc_freeze();
  assert_true(hl_gc_get_freeze_count() >= 5);
  hl_decref(r);
  assert_int_equal(hl_gc_collect(2), 0);
  objs = hl_gc_get_objects(-1);
  assert_int_equal(hl_list_size(objs), 0);         /* only the new list itself, not listed */
  hl_decref(objs);
  hl_gc_unfreeze();
  assert_int_equal(hl_gc_get_freeze_count(), 0);
  assert_int_equal(hl_gc_collect(2), 3);
  assert_int_equal(hl_gc_collect(5), -1);
  assert_int_equal(hl_err_kind(), HL_ERR_VALUE);
  hl_err_clear();
  hl_decref(t); hl_decref(l); hl_decref(i);
}

static void test_saveall(void **state) {
  (void)state;
  Node = hl_class_new("Node", 2, false, NULL);
  hl_gc_set_debug(HL_GC_DEBUG_SAVEALL);
  hl_object_t *r = ring(3);
  hl_decref(r);
  assert_int_equal(hl_gc_collect(0), 3);
  assert_int_equal(hl_list_size(hl_gc_garbage()), 3);
  hl_gc_set_debug(0);
  /* garbage holds them; dropping it leaves a cycle again, which the next
   * collection frees */
  hl_list_clear(hl_gc_garbage());
  assert_int_equal(hl_gc_collect(2), 3);
}

int main(void) {
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  printf("test_gc: alloc=%s freelists=%s immortal=%s\n",
         hl_config_choice_name(HL_OPT_ALLOC, cfg.alloc), cfg.freelists ? "on" : "off",
         cfg.immortal ? "on" : "off");
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_seed_acyclic, setup, teardown),
    cmocka_unit_test_setup_teardown(test_seed_ring, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reachable_cycle_survives, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deep_and_wide_cycles, setup, teardown),
    cmocka_unit_test_setup_teardown(test_finalizers_in_cycles, setup, teardown),
    cmocka_unit_test_setup_teardown(test_legacy_finalizer_uncollectable, setup, teardown),
    cmocka_unit_test_setup_teardown(test_weakrefs_to_garbage, setup, teardown),
    cmocka_unit_test_setup_teardown(test_thresholds, setup, teardown),
    cmocka_unit_test_setup_teardown(test_threshold_schedule, setup, teardown),
    cmocka_unit_test_setup_teardown(test_full_collection_rule, setup, teardown),
    cmocka_unit_test_setup_teardown(test_freeze_and_introspection, setup, teardown),
    cmocka_unit_test_setup_teardown(test_saveall, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
