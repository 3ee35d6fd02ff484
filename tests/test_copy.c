/* gc/copy.c: hl_copy and hl_deepcopy (Python's copy.copy and
 * copy.deepcopy), once per refcount mode and collector (CTest sets
 * HEAPLAB_RC and HEAPLAB_GC; the thread is attached without a GIL, and
 * automatic collection stays on, so that collections run in the middle of
 * a copy).
 *
 * Each test drops every reference it took and checks that the objects
 * alive are those alive before it; the runtime then stops with
 * allocated == freed. Cycles a test makes are broken by hand before they
 * are dropped, so that the counts balance under --gc=none too.
 * usage: test_copy [DEEP]   (the depth of the deep list, default 1,000,000)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "hl_alloc.h"
#include "hl_failpoint.h"
#include "hl_gc.h"
#include "hl_sync.h"
#include "obj_check.h"

extern char **environ;

static hl_config_t cfg;
static size_t deep = 1000000;
static uint64_t live_at_start;

static int setup(void **state) {
  (void)state;
  obj_start_collector(&cfg);
  hl_gc_enable();
  hl_err_clear();
  live_at_start = obj_live();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  assert_int_equal(obj_live(), live_at_start);   /* nothing the test made is left */
  if (cfg.rc != HL_RC_GIL) hl_thread_detach();
  obj_fini_nothing_left(&cfg);
  return 0;
}

static hl_object_t *int_list(int n, ...) {   /* a list of ints */
  va_list ap;
  va_start(ap, n);
  hl_object_t *l = hl_list_new(0);
  for (int i = 0; i < n; i++) {
    hl_object_t *v = hl_int_new(va_arg(ap, int));
    assert_int_equal(hl_list_append(l, v), 0);
    hl_decref(v);
  }
  va_end(ap);
  return l;
}

/* The seeds' example: a = [10, [10, 11]]. */
static hl_object_t *seed_example(void) {
  hl_object_t *a = int_list(1, 10), *inner = int_list(2, 10, 11);
  assert_int_equal(hl_list_append(a, inner), 0);
  hl_decref(inner);
  return a;
}

/* copy.copy: a new outer list whose items are the same objects; the inner
 * list is shared (one more reference to it), the ints too. */
static void test_copy_shares_items(void **state) {
  (void)state;
  hl_object_t *a = seed_example(), *inner = hl_list_get(a, 1);
  assert_int_equal(hl_refcount(inner), 1);
  hl_object_t *b = hl_copy(a);
  assert_non_null(b);
  assert_ptr_not_equal(b, a);
  assert_int_equal(hl_list_size(b), 2);
  assert_ptr_equal(hl_list_get(b, 0), hl_list_get(a, 0));
  assert_ptr_equal(hl_list_get(b, 1), inner);
  assert_int_equal(hl_refcount(inner), 2);
  if (hl_gc_active()) assert_true(hl_gc_is_tracked(b));
  hl_decref(b);
  assert_int_equal(hl_refcount(inner), 1);
  hl_decref(a);
}

/* copy.deepcopy: a new outer list and a new inner list, but the same ints. */
static void test_deepcopy_copies_containers_not_atoms(void **state) {
  (void)state;
  hl_object_t *a = seed_example(), *inner = hl_list_get(a, 1);
  hl_object_t *b = hl_deepcopy(a);
  assert_non_null(b);
  hl_object_t *binner = hl_list_get(b, 1);
  assert_ptr_not_equal(b, a);
  assert_ptr_not_equal(binner, inner);
  assert_int_equal(hl_refcount(inner), 1);         /* the copy does not refer to it */
  assert_int_equal(hl_refcount(binner), 1);
  assert_ptr_equal(hl_list_get(b, 0), hl_list_get(a, 0));
  assert_ptr_equal(hl_list_get(binner, 0), hl_list_get(inner, 0));
  assert_ptr_equal(hl_list_get(binner, 1), hl_list_get(inner, 1));
  assert_int_equal(hl_eq(a, b), 1);
  if (hl_gc_active()) assert_true(hl_gc_is_tracked(b) && hl_gc_is_tracked(binner));
  hl_decref(b);
  hl_decref(a);
}

/* Atoms are returned as themselves by both (a new reference each). */
static void test_atoms_are_themselves(void **state) {
  (void)state;
  hl_type_t *C = hl_class_new("C", 0, true, NULL);
  hl_object_t *obj = hl_instance_new(C);
  hl_object_t *atoms[] = {hl_int_new(300), hl_float_new(2.5), hl_str_from("python"),
                          hl_newref(hl_None), hl_newref(hl_True),
                          hl_tuple_pack(2, hl_None, hl_True), hl_weakref_new(obj, NULL, NULL)};
  for (size_t i = 0; i < sizeof atoms / sizeof atoms[0]; i++) {
    hl_object_t *x = atoms[i];
    assert_non_null(x);
    uint32_t rc = hl_refcount(x);
    hl_object_t *c = hl_copy(x), *d = hl_deepcopy(x);
    assert_ptr_equal(c, x);
    assert_ptr_equal(d, x);
    if (!hl_is_immortal(x)) assert_int_equal(hl_refcount(x), rc + 2);
    hl_decref(c);
    hl_decref(d);
    assert_int_equal(hl_refcount(x), rc);
    hl_decref(x);
  }
  hl_decref(obj);
}

/* A self-referencing list deep-copies as a cycle of copies. */
static void test_deepcopy_cycle(void **state) {
  (void)state;
  hl_object_t *l = hl_list_new(0);
  assert_int_equal(hl_list_append(l, l), 0);
  hl_object_t *c = hl_deepcopy(l);
  assert_non_null(c);
  assert_ptr_not_equal(c, l);
  assert_ptr_equal(hl_list_get(c, 0), c);
  assert_ptr_equal(hl_list_get(l, 0), l);
  assert_int_equal(hl_refcount(c), 2);             /* ours and its own */
  hl_object_t *s = hl_copy(l);                     /* shallow: refers to the original */
  assert_ptr_equal(hl_list_get(s, 0), l);
  hl_decref(s);
  hl_list_clear(c);
  hl_list_clear(l);
  hl_decref(c);
  hl_decref(l);
}

/* Shared sub-objects stay shared: x reached from two list slots, a dict
 * value and an instance slot and attribute, copied once. */
static void test_deepcopy_keeps_sharing(void **state) {
  (void)state;
  hl_type_t *C = hl_class_new("Holder", 1, true, NULL);
  hl_object_t *x = int_list(2, 1, 2), *d = hl_dict_new(), *obj = hl_instance_new(C);
  hl_object_t *key = hl_str_from("k");
  assert_int_equal(hl_dict_set(d, key, x), 0);
  hl_slot_set(obj, 0, x);
  assert_int_equal(hl_attr_set(obj, "x", x), 0);
  hl_object_t *a = hl_list_new(0);
  hl_object_t *parts[] = {x, x, d, obj, d};
  for (size_t i = 0; i < 5; i++) assert_int_equal(hl_list_append(a, parts[i]), 0);
  hl_object_t *b = hl_deepcopy(a);
  assert_non_null(b);
  hl_object_t *x2 = hl_list_get(b, 0), *d2 = hl_list_get(b, 2), *obj2 = hl_list_get(b, 3);
  assert_ptr_not_equal(x2, x);
  assert_ptr_not_equal(d2, d);
  assert_ptr_not_equal(obj2, obj);
  assert_ptr_equal(hl_list_get(b, 1), x2);
  assert_ptr_equal(hl_list_get(b, 4), d2);
  assert_ptr_equal(hl_dict_get(d2, key), x2);
  assert_ptr_equal(hl_slot_get(obj2, 0), x2);
  assert_ptr_equal(obj2->type, C);
  hl_object_t *ax = hl_attr_get(obj2, "x");
  assert_ptr_equal(ax, x2);
  hl_decref(ax);
  /* x2: two list slots, the dict, the slot, the attribute dict */
  assert_int_equal(hl_refcount(x2), 5);
  /* shallow copy of an instance: a new attribute dict, the same values */
  hl_object_t *s = hl_copy(obj);
  assert_ptr_not_equal(s, obj);
  assert_ptr_equal(hl_slot_get(s, 0), x);
  ax = hl_attr_get(s, "x");
  assert_ptr_equal(ax, x);
  hl_decref(ax);
  hl_object_t *v = hl_int_new(7);
  assert_int_equal(hl_attr_set(s, "y", v), 0);     /* its own dict: obj has no y */
  assert_null(hl_attr_get(obj, "y"));
  hl_err_clear();
  hl_decref(v);
  hl_decref(s);
  hl_decref(b);
  hl_decref(a); hl_decref(obj); hl_decref(d); hl_decref(x); hl_decref(key);
}

/* Tuples: kept when no item changes, rebuilt when one does, and a tuple on
 * a cycle through a list copied once, as a cycle. */
static void test_deepcopy_tuples(void **state) {
  (void)state;
  hl_object_t *s = hl_str_from("s"), *one = hl_int_new(1);
  hl_object_t *t = hl_tuple_pack(2, one, s);
  hl_object_t *c = hl_deepcopy(t);
  assert_ptr_equal(c, t);
  hl_decref(c);
  hl_object_t *l = int_list(1, 2), *u = hl_tuple_pack(3, one, l, t);
  c = hl_deepcopy(u);
  assert_ptr_not_equal(c, u);
  assert_ptr_equal(hl_tuple_get(c, 0), one);
  assert_ptr_not_equal(hl_tuple_get(c, 1), l);
  assert_ptr_equal(hl_tuple_get(c, 2), t);         /* unchanged: the same tuple */
  hl_decref(c);
  /* l2 = []; t2 = (l2,); l2.append(t2) */
  hl_object_t *l2 = hl_list_new(0), *t2 = hl_tuple_pack(1, l2);
  assert_int_equal(hl_list_append(l2, t2), 0);
  c = hl_deepcopy(t2);
  assert_non_null(c);
  hl_object_t *cl = hl_tuple_get(c, 0);
  assert_ptr_not_equal(c, t2);
  assert_ptr_not_equal(cl, l2);
  assert_ptr_equal(hl_list_get(cl, 0), c);         /* one copy of the tuple */
  hl_object_t *cl2 = hl_deepcopy(l2);               /* from the list's side */
  assert_ptr_equal(hl_tuple_get(hl_list_get(cl2, 0), 0), cl2);
  hl_list_clear(cl2);
  hl_decref(cl2);
  hl_list_clear(cl);
  hl_decref(c);
  hl_list_clear(l2);
  hl_decref(t2);
  hl_decref(l2);
  /* a cycle of tuples alone (C can make one): an error, nothing left */
  hl_object_t *tt = hl_tuple_new(1);
  hl_tuple_set(tt, 0, hl_newref(tt));
  hl_object_t *wrap = hl_list_new(0);
  assert_int_equal(hl_list_append(wrap, tt), 0);
  assert_null(hl_deepcopy(wrap));
  assert_int_equal(hl_err_kind(), HL_ERR_VALUE);
  hl_err_clear();
  hl_tuple_set(tt, 0, hl_newref(hl_None));
  hl_decref(wrap);
  hl_decref(tt);
  hl_decref(u); hl_decref(l); hl_decref(t); hl_decref(one); hl_decref(s);
}

/* Dict keys are deep-copied too: an instance key becomes its copy. */
static void test_deepcopy_dict_keys(void **state) {
  (void)state;
  hl_type_t *K = hl_class_new("Key", 0, false, NULL);
  hl_object_t *k = hl_instance_new(K), *d = hl_dict_new(), *v = int_list(1, 5);
  assert_int_equal(hl_dict_set(d, k, v), 0);
  hl_object_t *pair = hl_tuple_pack(2, d, k);
  hl_object_t *c = hl_deepcopy(pair);
  hl_object_t *d2 = hl_tuple_get(c, 0), *k2 = hl_tuple_get(c, 1);
  assert_ptr_not_equal(k2, k);
  assert_int_equal(hl_dict_size(d2), 1);
  size_t pos = 0;
  hl_object_t *key, *val;
  assert_true(hl_dict_next(d2, &pos, &key, &val));
  assert_ptr_equal(key, k2);                       /* the memo's copy of k */
  assert_ptr_not_equal(val, v);
  assert_int_equal(hl_eq(val, v), 1);
  hl_decref(c);
  hl_decref(pair); hl_decref(d); hl_decref(k); hl_decref(v);
}

/* Weakrefs are atoms; a proxy copies its referent; a dead proxy is an error. */
static void test_weakref_and_proxy(void **state) {
  (void)state;
  hl_type_t *C = hl_class_new("Target", 0, true, NULL);
  hl_object_t *o = hl_instance_new(C), *v = int_list(1, 1);
  assert_int_equal(hl_attr_set(o, "a", v), 0);
  hl_object_t *w = hl_weakref_new(o, NULL, NULL), *p = hl_proxy_new(o, NULL, NULL);
  hl_object_t *l = hl_list_new(0);
  assert_int_equal(hl_list_append(l, o), 0);
  assert_int_equal(hl_list_append(l, p), 0);
  assert_int_equal(hl_list_append(l, w), 0);
  hl_object_t *c = hl_deepcopy(l);
  hl_object_t *o2 = hl_list_get(c, 0), *p2 = hl_list_get(c, 1);
  assert_ptr_not_equal(o2, o);
  assert_ptr_equal(p2->type, C);                   /* the proxy's copy: a copy of o ... */
  assert_ptr_not_equal(p2, o2);                    /* ... a second one, as in Python */
  assert_ptr_equal(hl_list_get(c, 2), w);          /* the weakref itself */
  assert_int_equal(hl_weakref_count(o), 2);
  hl_decref(c);
  hl_object_t *s = hl_copy(p);                     /* shallow: o's attributes shared */
  hl_object_t *sa = hl_attr_get(s, "a");
  assert_ptr_equal(sa, v);
  hl_decref(sa);
  hl_decref(s);
  hl_decref(l);
  hl_decref(o);                                    /* the referent dies */
  assert_null(hl_copy(p));
  assert_int_equal(hl_err_kind(), HL_ERR_REFERENCE);
  hl_err_clear();
  assert_null(hl_deepcopy(p));
  assert_int_equal(hl_err_kind(), HL_ERR_REFERENCE);
  hl_err_clear();
  hl_decref(p); hl_decref(w); hl_decref(v);
}

/* A list nested `deep` levels: deep-copied without recursion, level by level. */
static void test_deepcopy_deep(void **state) {
  (void)state;
  hl_object_t *outer = int_list(1, 300);
  for (size_t i = 0; i < deep; i++) {
    hl_object_t *l = hl_list_new(0);
    assert_non_null(l);
    assert_int_equal(hl_list_append(l, outer), 0);
    hl_decref(outer);
    outer = l;
  }
  uint64_t before = obj_live();
  hl_object_t *c = hl_deepcopy(outer);
  assert_non_null(c);
  assert_int_equal(obj_live(), before + deep + 1);   /* every list once, the int shared */
  hl_object_t *x = outer, *y = c;
  for (size_t i = 0; i < deep; i++) {
    assert_int_equal(hl_list_size(y), 1);
    assert_ptr_not_equal(x, y);
    x = hl_list_get(x, 0);
    y = hl_list_get(y, 0);
  }
  assert_ptr_not_equal(x, y);
  assert_ptr_equal(hl_list_get(x, 0), hl_list_get(y, 0));
  hl_decref(c);
  hl_decref(outer);
}

/* Out of memory at every allocation a deep copy makes, in turn: NULL with
 * HL_ERR_NOMEM, and nothing left (copies on cycles included, which under
 * --gc=none nothing else would free). */
static void test_deepcopy_nomem(void **state) {
  (void)state;
  hl_type_t *C = hl_class_new("N", 1, true, NULL);
  hl_object_t *a = seed_example(), *obj = hl_instance_new(C), *d = hl_dict_new();
  hl_object_t *t = hl_tuple_pack(2, a, obj);
  hl_slot_set(obj, 0, t);                           /* obj -> t -> obj: a cycle */
  assert_int_equal(hl_attr_set(obj, "d", d), 0);
  assert_int_equal(hl_dict_set(d, obj, a), 0);
  assert_int_equal(hl_list_append(a, a), 0);        /* a -> a */
  assert_int_equal(hl_list_append(a, d), 0);
  hl_gc_disable();                                  /* the points counted are the copy's */
  uint64_t live = obj_live();
  hl_fail_at(HL_FAIL_OBJ, 0);
  hl_object_t *c = hl_deepcopy(t);
  uint64_t points = hl_fail_count(HL_FAIL_OBJ);
  hl_fail_reset();
  assert_non_null(c);
  assert_true(points > 10);
  /* the copy is the same shape: t' -> obj' -> t', a' -> a' */
  hl_object_t *a2 = hl_tuple_get(c, 0), *obj2 = hl_tuple_get(c, 1);
  assert_ptr_equal(hl_slot_get(obj2, 0), c);
  assert_ptr_equal(hl_list_get(a2, 2), a2);
  hl_slot_set(obj2, 0, NULL);
  hl_list_clear(a2);
  hl_object_t *d2 = hl_attr_get(obj2, "d");
  hl_dict_clear(d2);
  hl_decref(d2);
  hl_decref(c);
  assert_int_equal(obj_live(), live);
  for (uint64_t i = 1; i <= points; i++) {
    hl_fail_at(HL_FAIL_OBJ, i);
    c = hl_deepcopy(t);
    uint64_t injected = hl_fail_injected(HL_FAIL_OBJ);
    hl_fail_reset();
    assert_int_equal(injected, 1);
    assert_null(c);
    assert_int_equal(hl_err_kind(), HL_ERR_NOMEM);
    hl_err_clear();
    assert_int_equal(obj_live(), live);
  }
  hl_gc_enable();
  hl_slot_set(obj, 0, NULL);
  hl_list_clear(a);
  hl_dict_clear(d);
  hl_decref(t); hl_decref(obj); hl_decref(d); hl_decref(a);
}

int main(int argc, char **argv) {
  if (argc > 1) deep = strtoull(argv[1], NULL, 10);
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  printf("test_copy: rc=%s gc=%s alloc=%s deep=%zu\n",
         hl_config_choice_name(HL_OPT_RC, cfg.rc), hl_config_choice_name(HL_OPT_GC, cfg.gc),
         hl_config_choice_name(HL_OPT_ALLOC, cfg.alloc), deep);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_copy_shares_items, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deepcopy_copies_containers_not_atoms, setup, teardown),
    cmocka_unit_test_setup_teardown(test_atoms_are_themselves, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deepcopy_cycle, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deepcopy_keeps_sharing, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deepcopy_tuples, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deepcopy_dict_keys, setup, teardown),
    cmocka_unit_test_setup_teardown(test_weakref_and_proxy, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deepcopy_deep, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deepcopy_nomem, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
