/* gc/: the cycle collectors that collect (--gc=stw, --gc=incremental: the
 * gc module's API means the same under both), once per mode (CTest sets
 * HEAPLAB_GC, HEAPLAB_RC, HEAPLAB_ALLOC, HEAPLAB_FREELISTS, HEAPLAB_IMMORTAL,
 * HEAPLAB_GC_UNTRACK). Without a GIL (rc=atomic, rc=biased) the test's
 * thread is attached, so that it owns what it makes (biased counts on the
 * owner's path) and every collection stops the world, with no one else to
 * stop.
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
#include "hl_sync.h"
#include "obj_check.h"

extern char **environ;

static hl_config_t cfg;
static bool untrack_from_env;   /* HEAPLAB_GC_UNTRACK, for the tests that do not choose */

static int setup(void **state) {
  (void)state;
  obj_start_collector(&cfg);
  return 0;
}

static int setup_env(void **state) {
  cfg.gc_untrack = untrack_from_env;
  return setup(state);
}
static int setup_untrack_on(void **state) {
  cfg.gc_untrack = true;
  return setup(state);
}
static int setup_untrack_off(void **state) {
  cfg.gc_untrack = false;
  return setup(state);
}

static int teardown(void **state) {
  (void)state;
  if (cfg.rc != HL_RC_GIL) hl_thread_detach();
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


/* a = []; b = []; a.append(b); del a, b: reference counting frees both */
static void test_seed_acyclic(void **state) {
  (void)state;
  uint64_t before = obj_live();
  hl_object_t *a = hl_list_new(0), *b = hl_list_new(0);
  assert_true(hl_gc_is_tracked(a));
  hl_list_append(a, b);
  hl_decref(a);
  hl_decref(b);
  assert_int_equal(obj_live(), before);
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
  uint64_t before = obj_live();
  hl_object_t *r = ring(3);
  hl_decref(r);
  assert_int_equal(obj_live(), before + 3);            /* reference counting cannot free it */
  assert_int_equal(hl_gc_collect(0), 3);
  assert_int_equal(obj_live(), before);
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
  uint64_t before = obj_live();
  assert_int_equal(hl_gc_collect(2), 0);
  assert_int_equal(obj_live(), before);
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
  uint64_t before = obj_live();
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
  assert_int_equal(obj_live(), before);
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
  uint64_t before = obj_live();
  hl_type_t *D = hl_class_new("WithDel", 1, false, fin_count);
  hl_object_t *a = hl_instance_new(D), *b = hl_instance_new(D);
  hl_slot_set(a, 0, b);
  hl_slot_set(b, 0, a);
  hl_decref(a);
  hl_decref(b);
  finalized = 0;
  assert_int_equal(hl_gc_collect(0), 2);
  assert_int_equal(finalized, 2);
  assert_int_equal(obj_live(), before);

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
  assert_int_equal(obj_live(), before + 2);
  assert_true(hl_gc_is_tracked(saved));
  hl_object_t *s = saved;
  saved = NULL;
  hl_decref(s);                                    /* garbage again */
  assert_int_equal(hl_gc_collect(2), 2);
  assert_int_equal(finalized, 2);                  /* not run twice */
  assert_null(saved);
  assert_int_equal(obj_live(), before);
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
  if (cfg.gc != HL_GC_STW) skip();   /* stw's schedule (the incremental one: test_gc_incr.c) */
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
  if (cfg.gc != HL_GC_STW) skip();   /* stw's rule (the incremental scan's: test_gc_incr.c) */
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

/* hl_gc_immortalize: the heap a master builds before it forks. Every object
 * reachable from a tracked one stops counting (increments and decrements
 * leave it alone, a collection cannot free it), and undo gives each its
 * count back, so that the program frees it as before. */
static void test_immortalize_heap(void **state) {
  (void)state;
  if (cfg.rc != HL_RC_GIL) {
    assert_int_equal(hl_gc_immortalize(), -1);   /* counts split across words: refused */
    assert_int_equal(hl_err_kind(), HL_ERR_VALUE);
    hl_err_clear();
    return;
  }
  Node = hl_class_new("Node", 2, false, NULL);
  hl_object_t *d = hl_dict_new(), *l = hl_list_new(0), *i = hl_int_new(123456);
  hl_object_t *s = hl_str_from("not interned"), *f = hl_float_new(2.5);
  hl_object_t *inst = hl_instance_new(Node);
  hl_slot_set(inst, 0, f);
  hl_list_append(l, i);
  hl_list_append(l, s);
  hl_list_append(l, inst);
  hl_dict_set_cstr(d, "records", l);
  hl_object_t *r = ring(3);
  hl_object_t *objs[] = {d, l, i, s, f, inst};
  uint32_t rc[HL_ARRAY_LEN(objs)];
  for (size_t k = 0; k < HL_ARRAY_LEN(objs); k++) rc[k] = hl_refcount(objs[k]);
  uint32_t ring_rc = hl_refcount(r);

  int64_t n = hl_gc_immortalize();
  /* d, l, i, s, f, inst, the key "records" unless interned immortal, the ring's 3 */
  assert_true(n >= 9);
  for (size_t k = 0; k < HL_ARRAY_LEN(objs); k++) assert_true(hl_is_immortal(objs[k]));
  assert_true(hl_is_immortal(r));
  assert_int_equal(hl_gc_immortalize(), 0);        /* nothing mortal is left to walk */
  /* balanced references while immortal: a new container holding them, dropped */
  hl_object_t *tmp = hl_list_new(0);
  for (size_t k = 0; k < HL_ARRAY_LEN(objs); k++) hl_list_append(tmp, objs[k]);
  hl_decref(tmp);
  hl_decref(hl_newref(i));
  assert_int_equal(hl_refcount(i), HL_RC_IMMORTAL);
  /* an immortal ring is never garbage, even once nothing outside holds it */
  assert_int_equal(hl_gc_collect(2), 0);

  hl_gc_immortalize_undo();
  for (size_t k = 0; k < HL_ARRAY_LEN(objs); k++) {
    assert_false(hl_is_immortal(objs[k]));
    assert_int_equal(hl_refcount(objs[k]), rc[k]);
  }
  assert_int_equal(hl_refcount(r), ring_rc);
  hl_decref(r);
  assert_int_equal(hl_gc_collect(2), 3);           /* mortal again: collected */
  hl_decref(i); hl_decref(s); hl_decref(f); hl_decref(inst); hl_decref(l); hl_decref(d);
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

/* ---- weakref callbacks: their order ------------------------------------------------ */
static hl_object_t *order_wr[4];
static void cb_order(hl_object_t *wr, void *arg) {
  /* every weakref to the garbage is dead before the first callback runs */
  for (int i = 0; i < 4; i++)
    if (order_wr[i]) assert_null(hl_weakref_get(order_wr[i]));
  (void)wr;
  cb_log[ncb++] = (int)(intptr_t)arg;
}

/* Two weakrefs to each node of a two-node cycle: all four are cleared before
 * any callback runs, and the callbacks of one referent run newest first, as
 * when reference counting frees an object (weakref.c). */
static void test_weakref_callback_order(void **state) {
  (void)state;
  Node = hl_class_new("Node", 2, false, NULL);
  hl_object_t *r = ring(2), *other = hl_slot_get(r, 0);
  order_wr[0] = hl_weakref_new(r, cb_order, (void *)10);
  order_wr[1] = hl_weakref_new(r, cb_order, (void *)11);
  order_wr[2] = hl_weakref_new(other, cb_order, (void *)20);
  order_wr[3] = hl_weakref_new(other, cb_order, (void *)21);
  hl_decref(r);
  ncb = 0;
  assert_int_equal(hl_gc_collect(0), 2);
  assert_int_equal(ncb, 4);
  int pos10 = -1, pos11 = -1, pos20 = -1, pos21 = -1;
  for (int i = 0; i < 4; i++) {
    if (cb_log[i] == 10) pos10 = i;
    if (cb_log[i] == 11) pos11 = i;
    if (cb_log[i] == 20) pos20 = i;
    if (cb_log[i] == 21) pos21 = i;
  }
  assert_true(pos11 >= 0 && pos10 > pos11);        /* newest first */
  assert_true(pos21 >= 0 && pos20 > pos21);
  for (int i = 0; i < 4; i++) {
    hl_decref(order_wr[i]);
    order_wr[i] = NULL;
  }
}

/* ---- untracking (--gc-untrack) ------------------------------------------------------ */
static hl_object_t *big_int(int64_t v) { return hl_int_new(1000000 + v); }

/* With --gc-untrack=on, gc.is_tracked answers as CPython 3.11's does. */
static void test_untrack_is_tracked_as_cpython(void **state) {
  (void)state;
  Node = hl_class_new("Node", 2, false, NULL);
  hl_object_t *empty = hl_tuple_new(0);            /* made once, lives to the end */
  uint64_t before = obj_live();
  uint32_t count[3];
  hl_gc_collect(2);
  hl_object_t *counted = hl_dict_new();            /* counted like any container */
  assert_false(hl_gc_is_tracked(counted));
  hl_gc_get_count(count);
  assert_int_equal(count[0], 1);
  hl_decref(counted);
  hl_object_t *i1 = big_int(1), *s1 = hl_str_from("ab"), *l = hl_list_new(0);
  assert_false(hl_gc_is_tracked(empty));           /* the shared empty tuple, as () */
  /* tuples: tracked when made, untracked by a collection when nothing in
   * them may be tracked */
  hl_object_t *atoms = hl_tuple_pack(3, i1, s1, hl_None);
  hl_object_t *with_list = hl_tuple_pack(2, i1, l);
  hl_object_t *inner = hl_tuple_pack(1, i1), *outer = hl_tuple_pack(2, inner, s1);
  hl_object_t *d0 = hl_dict_new(), *with_dict = hl_tuple_pack(1, d0);
  hl_object_t *half = hl_tuple_new(2);             /* item 1 not set yet */
  hl_tuple_set(half, 0, hl_newref(i1));
  assert_true(hl_gc_is_tracked(atoms));
  assert_true(hl_gc_is_tracked(with_list));
  assert_true(hl_gc_is_tracked(outer));
  /* dicts: untracked until a key or value that may be tracked goes in */
  assert_false(hl_gc_is_tracked(d0));
  hl_object_t *d = hl_dict_new();
  hl_dict_set(d, i1, s1);
  assert_false(hl_gc_is_tracked(d));               /* {1000001: 'ab'} */
  hl_object_t *k2 = big_int(2);
  hl_dict_set(d, k2, l);
  assert_true(hl_gc_is_tracked(d));                /* ... now holds a list */
  hl_object_t *dt = hl_dict_new(), *pair = hl_tuple_pack(2, i1, s1);
  hl_dict_set(dt, i1, pair);                       /* a tuple still tracked: tracks dt */
  assert_true(hl_gc_is_tracked(dt));
  hl_object_t *dk = hl_dict_new(), *key = hl_tuple_pack(2, i1, k2);
  hl_dict_set(dk, key, s1);                        /* a tracked tuple as key */
  assert_true(hl_gc_is_tracked(dk));
  hl_object_t *di = hl_dict_new(), *node = hl_instance_new(Node);
  hl_dict_set(di, i1, node);
  assert_true(hl_gc_is_tracked(di));
  assert_true(hl_gc_is_tracked(node));             /* instances and lists always */

  hl_gc_collect(0);
  assert_false(hl_gc_is_tracked(atoms));
  assert_true(hl_gc_is_tracked(with_list));
  assert_false(hl_gc_is_tracked(inner));
  assert_false(hl_gc_is_tracked(outer));           /* inner was untracked first */
  assert_true(hl_gc_is_tracked(with_dict));        /* a dict may become tracked */
  assert_true(hl_gc_is_tracked(half));             /* still being built */
  assert_false(hl_gc_is_tracked(pair));
  assert_true(hl_gc_is_tracked(dt));               /* dicts: only full collections untrack */
  hl_tuple_set(half, 1, hl_newref(s1));
  hl_dict_del(d, k2);                              /* d holds atoms again */
  hl_gc_collect(1);
  assert_false(hl_gc_is_tracked(half));
  assert_true(hl_gc_is_tracked(d));
  hl_gc_collect(2);
  assert_false(hl_gc_is_tracked(d));               /* full: untracked again */
  assert_false(hl_gc_is_tracked(dt));              /* its tuple was untracked */
  assert_false(hl_gc_is_tracked(dk));
  assert_true(hl_gc_is_tracked(di));
  assert_true(hl_gc_is_tracked(l));
  hl_dict_set(d, k2, l);                           /* and tracked again by an insertion */
  assert_true(hl_gc_is_tracked(d));
  hl_gc_stats_t st;
  hl_gc_stats(&st);
  assert_int_equal(st.untracked, 9);   /* atoms inner outer pair key | half | d dt dk */
  hl_object_t *all[] = {atoms, with_list, inner, outer, d0, with_dict, half, d, k2, dt, pair,
                        dk, key, di, node, i1, s1, l, empty};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) hl_decref(all[i]);
  assert_int_equal(hl_gc_collect(2), 0);
  assert_int_equal(obj_live(), before);
}

/* With --gc-untrack=off every container is tracked from creation on, and
 * no collection untracks any. */
static void test_untrack_off_tracks_every_container(void **state) {
  (void)state;
  uint64_t before = obj_live();
  hl_object_t *i1 = big_int(1), *s1 = hl_str_from("ab");
  hl_object_t *atoms = hl_tuple_pack(2, i1, s1), *d = hl_dict_new();
  assert_true(hl_gc_is_tracked(d));
  hl_dict_set(d, i1, atoms);
  hl_gc_collect(0);
  hl_gc_collect(2);
  assert_true(hl_gc_is_tracked(atoms));
  assert_true(hl_gc_is_tracked(d));
  hl_gc_stats_t st;
  hl_gc_stats(&st);
  assert_int_equal(st.untracked, 0);
  hl_decref(d);
  hl_decref(atoms);
  hl_decref(i1);
  hl_decref(s1);
  assert_int_equal(obj_live(), before);
}

/* Cycles through dicts and tuples are found whatever the tracking state
 * of their members was; run in both settings. */
static void test_untrack_never_misses_a_cycle(void **state) {
  (void)state;
  Node = hl_class_new("Node", 2, true, NULL);
  hl_decref(hl_str_intern_cstr("self"));           /* interned for good: not counted below */
  uint64_t before = obj_live();
  hl_object_t *k = big_int(7);
  /* d = {}; l = [d]; d[k] = l */
  hl_object_t *d = hl_dict_new(), *l = hl_list_new(0);
  hl_list_append(l, d);
  hl_dict_set(d, k, l);
  hl_decref(d);
  hl_decref(l);
  assert_int_equal(hl_gc_collect(0), 2);
  /* l = []; t = (l,); l.append(t) */
  l = hl_list_new(0);
  hl_object_t *t = hl_tuple_pack(1, l);
  hl_list_append(l, t);
  hl_decref(t);
  hl_gc_collect(0);                                /* t stays tracked: it holds a list */
  hl_decref(l);
  assert_int_equal(hl_gc_collect(2), 2);
  /* x.__dict__['self'] = x: the attribute dict is tracked by the insertion */
  hl_object_t *x = hl_instance_new(Node);
  hl_attr_set(x, "self", x);
  hl_decref(x);
  assert_int_equal(hl_gc_collect(0), 2);
  /* a dict untracked by a full collection, then closed into a cycle */
  d = hl_dict_new();
  hl_dict_set(d, k, k);
  hl_object_t *holder = hl_list_new(0);
  hl_list_append(holder, d);
  hl_gc_collect(2);
  assert_int_equal(hl_gc_is_tracked(d), !cfg.gc_untrack);
  l = hl_list_new(0);
  hl_list_append(l, d);
  hl_dict_set(d, hl_None, l);
  hl_decref(l);
  hl_list_clear(holder);
  hl_decref(d);
  assert_int_equal(hl_gc_collect(2), 2);
  hl_decref(holder);
  hl_decref(k);
  assert_int_equal(obj_live(), before);

  /* random graphs of lists, dicts, tuples and instances, with collections
   * of every generation while they are built; everything dropped must be
   * found */
  hl_rand_t r;
  hl_rand_seed(&r, 1234);
  enum { N = 3000 };
  hl_object_t **objs = calloc(N, sizeof *objs);
  assert_non_null(objs);
  for (int round = 0; round < 6; round++) {
    before = obj_live();
    for (int i = 0; i < N; i++) {
      hl_object_t *a = i ? objs[hl_rand_below(&r, (uint64_t)i)] : hl_None;
      hl_object_t *b = i ? objs[hl_rand_below(&r, (uint64_t)i)] : hl_None;
      hl_object_t *o;
      switch (hl_rand_below(&r, 6)) {
      case 0: o = hl_tuple_pack(2, a, b); break;
      case 1: {
        hl_object_t *n = big_int(i);
        o = hl_tuple_pack(2, n, hl_None);   /* atoms only: untracked at a collection */
        hl_decref(n);
        break;
      }
      case 2: o = hl_list_new(0); hl_list_append(o, a); break;
      case 3: {
        hl_object_t *n = big_int(i);
        o = hl_dict_new();
        hl_dict_set(o, n, n);
        hl_decref(n);
        break;
      }
      case 4: o = hl_instance_new(Node); hl_slot_set(o, 0, a); break;
      default: o = hl_dict_new(); hl_dict_set(o, hl_None, a); break;
      }
      objs[i] = o;
      /* back edges from mutable containers close cycles */
      if (i > 0 && hl_rand_below(&r, 3) == 0) {
        hl_object_t *m = objs[hl_rand_below(&r, (uint64_t)i)];
        if (hl_is_kind(m, HL_K_LIST)) hl_list_append(m, o);
        else if (hl_is_kind(m, HL_K_DICT)) hl_dict_set(m, hl_True, o);
        else if (hl_is_kind(m, HL_K_INSTANCE)) hl_slot_set(m, 1, o);
      }
      if (i % 500 == 499) hl_gc_collect((int)hl_rand_below(&r, 3));
    }
    for (int i = 0; i < N; i++) hl_decref(objs[i]);
    hl_gc_collect((int)hl_rand_below(&r, 2));
    hl_gc_collect(2);
    assert_int_equal(obj_live(), before);
  }
  free(objs);
}

/* traverse_gc (hl_gc.h): the containers traverse visits, in its order, and
 * nothing else; the same stop on a nonzero return. The collector relies on
 * it for every built-in container type. */
typedef struct { hl_object_t *seen[64]; int n, stop_at; } visits_t;
static int record_all(hl_object_t *o, void *arg) {
  visits_t *v = arg;
  if (!(o->flags & HL_OF_GC)) return 0;
  assert_true(v->n < 64);
  v->seen[v->n++] = o;
  return v->n == v->stop_at ? 7 : 0;
}
static int record_gc(hl_object_t *o, void *arg) {
  assert_true(o->flags & HL_OF_GC);   /* nothing else */
  return record_all(o, arg);
}
static void check_traverse_gc(hl_object_t *o) {
  assert_non_null(o->type->traverse_gc);
  for (int stop = 0; stop <= 3; stop++) {
    visits_t all = {.stop_at = stop}, gc = {.stop_at = stop};
    int ra = o->type->traverse(o, record_all, &all);
    int rg = o->type->traverse_gc(o, record_gc, &gc);
    assert_int_equal(ra, rg);
    assert_int_equal(all.n, gc.n);
    assert_memory_equal(all.seen, gc.seen, sizeof(hl_object_t *) * (size_t)all.n);
  }
}
static void test_traverse_gc_contract(void **state) {
  (void)state;
  Node = hl_class_new("Node", 3, true, NULL);
  hl_object_t *i = big_int(12345), *s = hl_str_from("s"), *f = hl_float_new(1.5);
  hl_object_t *l1 = hl_list_new(0), *l2 = hl_list_new(0), *d1 = hl_dict_new();
  hl_object_t *t = hl_tuple_pack(7, i, l1, s, hl_None, d1, f, l2);
  check_traverse_gc(t);
  hl_object_t *l = hl_list_new(0);
  hl_object_t *items[] = {s, l1, i, t, hl_None, d1, f, l2, i};
  for (size_t k = 0; k < sizeof items / sizeof *items; k++) hl_list_append(l, items[k]);
  check_traverse_gc(l);
  check_traverse_gc(l1);   /* empty */
  /* keys and values, atoms and containers, a deleted entry */
  hl_object_t *d = hl_dict_new();
  hl_dict_set(d, i, l1);
  hl_dict_set(d, s, i);
  hl_dict_set(d, t, d1);   /* a tuple key: a container */
  hl_dict_set(d, f, l2);
  assert_int_equal(hl_dict_del(d, s), 0);
  hl_dict_set(d, hl_None, f);
  check_traverse_gc(d);
  check_traverse_gc(d1);   /* no keys */
  /* an instance: slots with a gap, then its attribute dict */
  hl_object_t *x = hl_instance_new(Node);
  hl_slot_set(x, 0, i);
  hl_slot_set(x, 2, l2);
  check_traverse_gc(x);
  assert_int_equal(hl_attr_set(x, "a", l1), 0);
  check_traverse_gc(x);
  hl_object_t *all[] = {x, d, l, t, d1, l2, l1, f, s, i};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) hl_decref(all[k]);
}

int main(void) {
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  untrack_from_env = cfg.gc_untrack;
  printf("test_gc: rc=%s alloc=%s freelists=%s immortal=%s gc-untrack=%s\n",
         hl_config_choice_name(HL_OPT_RC, cfg.rc), hl_config_choice_name(HL_OPT_ALLOC, cfg.alloc), cfg.freelists ? "on" : "off",
         cfg.immortal ? "on" : "off", cfg.gc_untrack ? "on" : "off");
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_seed_acyclic, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_traverse_gc_contract, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_seed_ring, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_reachable_cycle_survives, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_deep_and_wide_cycles, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_finalizers_in_cycles, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_legacy_finalizer_uncollectable, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_weakrefs_to_garbage, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_thresholds, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_threshold_schedule, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_full_collection_rule, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_freeze_and_introspection, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_immortalize_heap, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_saveall, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_weakref_callback_order, setup_env, teardown),
    cmocka_unit_test_setup_teardown(test_untrack_is_tracked_as_cpython, setup_untrack_on, teardown),
    cmocka_unit_test_setup_teardown(test_untrack_off_tracks_every_container, setup_untrack_off,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_untrack_never_misses_a_cycle, setup_untrack_on, teardown),
    cmocka_unit_test_setup_teardown(test_untrack_never_misses_a_cycle, setup_untrack_off, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
