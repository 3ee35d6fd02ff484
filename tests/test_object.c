/* gc/: the object model, once per mode (CTest sets HEAPLAB_ALLOC,
 * HEAPLAB_FREELISTS, HEAPLAB_IMMORTAL, and HEAPLAB_RC for the free-threaded
 * refcount modes, where the main thread, not attached, owns nothing).
 *
 * Each test starts the runtime, works, drops every reference it took, stops
 * the runtime, and checks that nothing is left: the object counts balance
 * (allocated == freed) and, with alloc=pool, no block is in use.
 * usage: test_object [DEEP]   (DEEP: length of the deep-teardown chains,
 *                              default 1,000,000; 10,000,000 in one variant)
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
static size_t deep = 1000000;

static int setup(void **state) {
  (void)state;
  char err[256];
  int r = hl_runtime_init(&cfg, err, sizeof err);
  if (r != 0) fprintf(stderr, "%s\n", err);
  assert_int_equal(r, 0);
  hl_err_clear();
  return 0;
}

/* Nothing left: every object allocated was freed, and the pools hold no
 * block (the allocator is shared by nothing else in this program). */
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

/* ---- int, float, bool, None ------------------------------------------------ */
static void test_int(void **state) {
  (void)state;
  hl_object_t *a = hl_int_new(7), *b = hl_int_new(7);
  assert_ptr_equal(a, b);                          /* the small-int cache */
  hl_object_t *c = hl_int_new(-5), *d = hl_int_new(256), *e = hl_int_new(257), *f = hl_int_new(257);
  assert_ptr_equal(c, hl_int_new(-5));
  hl_decref(c);
  assert_ptr_not_equal(e, f);                      /* outside the cache: allocated */
  assert_int_equal(hl_eq(e, f), 1);
  assert_int_equal(hl_hash(e), hl_hash(f));
  assert_int_equal(hl_int_value(e), 257);
  hl_object_t *m1 = hl_int_new(-1);
  assert_int_not_equal(hl_hash(m1), -1);           /* -1 is the error value */
  hl_object_t *big = hl_int_new(INT64_MIN);
  assert_true(hl_int_value(big) == INT64_MIN);
  if (cfg.immortal) {
    assert_true(hl_is_immortal(a));
    uint32_t rc = hl_refcount(a);
    hl_incref(a);
    assert_int_equal(hl_refcount(a), rc);
  } else {
    assert_false(hl_is_immortal(a));
    uint32_t rc = hl_refcount(a);
    hl_incref(a);
    assert_int_equal(hl_refcount(a), rc + 1);
    hl_decref(a);
  }
  assert_false(hl_is_immortal(e));
  hl_decref(a); hl_decref(b); hl_decref(c); hl_decref(d); hl_decref(e); hl_decref(f);
  hl_decref(m1); hl_decref(big);
}

static void test_float_and_numbers(void **state) {
  (void)state;
  hl_object_t *x = hl_float_new(2.5), *y = hl_float_new(2.0), *two = hl_int_new(2);
  assert_true(hl_float_value(x) == 2.5);
  assert_int_equal(hl_eq(y, two), 1);              /* 2.0 == 2 */
  assert_int_equal(hl_hash(y), hl_hash(two));      /* and they hash alike */
  assert_int_equal(hl_eq(x, two), 0);
  hl_object_t *one = hl_int_new(1);
  assert_int_equal(hl_eq(hl_True, one), 1);        /* bool is an int */
  assert_int_equal(hl_hash(hl_True), hl_hash(one));
  hl_decref(one);
  hl_object_t *d = hl_dict_new();
  assert_int_equal(hl_dict_set(d, two, x), 0);
  assert_ptr_equal(hl_dict_get(d, y), x);          /* found with the float key */
  hl_decref(d);
  /* many floats: the free list absorbs a burst and the counts balance */
  hl_object_t *v[300];
  for (int i = 0; i < 300; i++) v[i] = hl_float_new(i + 0.5);
  for (int i = 0; i < 300; i++) hl_decref(v[i]);
  for (int i = 0; i < 300; i++) v[i] = hl_float_new(i + 0.25);
  for (int i = 0; i < 300; i++) {
    assert_true(hl_float_value(v[i]) == i + 0.25);
    hl_decref(v[i]);
  }
  hl_obj_stats_t s;
  hl_obj_stats(&s);
  if (cfg.freelists) assert_true(s.freelist_hits >= 100);
  else assert_int_equal(s.freelist_hits, 0);
  hl_decref(x); hl_decref(y); hl_decref(two);
  hl_incref(hl_None);
  hl_decref(hl_None);
}

/* ---- str ----------------------------------------------------------------------- */
static void test_str(void **state) {
  (void)state;
  hl_object_t *a = hl_str_from("hello"), *b = hl_str_new("hello", 5);
  assert_ptr_not_equal(a, b);
  assert_int_equal(hl_eq(a, b), 1);
  assert_int_equal(hl_hash(a), hl_hash(b));
  assert_int_equal(hl_str_len(a), 5);
  assert_string_equal(hl_str_data(a), "hello");
  hl_object_t *ia = hl_str_intern(a), *ib = hl_str_intern(b);
  assert_ptr_equal(ia, ib);                        /* interning: one object */
  hl_object_t *ic = hl_str_intern_cstr("hello");
  assert_ptr_equal(ia, ic);
  assert_int_equal(hl_is_immortal(ia), cfg.immortal);
  hl_object_t *c1 = hl_str_new("x", 1), *c2 = hl_str_from("x");
  assert_ptr_equal(c1, c2);                        /* one-character strings are shared */
  hl_object_t *empty = hl_str_new("", 0);
  assert_int_equal(hl_str_len(empty), 0);
  hl_object_t *other = hl_str_from("hellp");
  assert_int_equal(hl_eq(ia, other), 0);
  /* embedded NUL bytes are part of the value */
  hl_object_t *n1 = hl_str_new("a\0b", 3), *n2 = hl_str_new("a\0c", 3);
  assert_int_equal(hl_eq(n1, n2), 0);
  hl_decref(ia); hl_decref(ib); hl_decref(ic); hl_decref(c1); hl_decref(c2);
  hl_decref(empty); hl_decref(other); hl_decref(n1); hl_decref(n2);
}

/* ---- tuple --------------------------------------------------------------------- */
static void test_tuple(void **state) {
  (void)state;
  hl_object_t *e1 = hl_tuple_new(0), *e2 = hl_tuple_new(0);
  assert_ptr_equal(e1, e2);                        /* one empty tuple */
  hl_object_t *one = hl_int_new(1000), *s = hl_str_from("ab");
  hl_object_t *t = hl_tuple_pack(2, one, s);
  assert_int_equal(hl_tuple_size(t), 2);
  assert_ptr_equal(hl_tuple_get(t, 0), one);
  assert_int_equal(hl_refcount(one), 2);
  hl_object_t *u = hl_tuple_new(2);
  hl_tuple_set(u, 0, hl_int_new(1000));
  hl_tuple_set(u, 1, hl_str_from("ab"));
  assert_int_equal(hl_eq(t, u), 1);
  assert_int_equal(hl_hash(t), hl_hash(u));
  hl_object_t *l = hl_list_new(0);
  hl_object_t *bad = hl_tuple_pack(1, l);
  assert_int_equal(hl_hash(bad), -1);              /* a tuple holding a list is unhashable */
  assert_int_equal(hl_err_kind(), HL_ERR_TYPE);
  hl_err_clear();
  hl_decref(bad); hl_decref(l);
  hl_decref(t); hl_decref(u); hl_decref(one); hl_decref(s); hl_decref(e1); hl_decref(e2);
  /* tuples of every free-list length and beyond */
  for (size_t n = 1; n < 40; n++) {
    hl_object_t *x = hl_tuple_new(n);
    for (size_t i = 0; i < n; i++) hl_tuple_set(x, i, hl_int_new((int64_t)i));
    hl_decref(x);
  }
}

/* ---- list ------------------------------------------------------------------------ */
static void test_list(void **state) {
  (void)state;
  hl_object_t *l = hl_list_new(0);
  for (int i = 0; i < 10000; i++) {
    hl_object_t *v = hl_int_new(i);
    assert_int_equal(hl_list_append(l, v), 0);
    hl_decref(v);
  }
  assert_int_equal(hl_list_size(l), 10000);
  for (int i = 0; i < 10000; i += 997) assert_int_equal(hl_int_value(hl_list_get(l, (size_t)i)), i);
  assert_null(hl_list_get(l, 10000));
  assert_int_equal(hl_err_kind(), HL_ERR_INDEX);
  hl_err_clear();
  assert_int_equal(hl_list_set(l, 5, hl_str_from("five")), 0);
  assert_string_equal(hl_str_data(hl_list_get(l, 5)), "five");
  assert_int_equal(hl_list_set(l, 20000, hl_str_from("lost")), -1);   /* stolen even on error */
  hl_err_clear();
  for (int i = 9999; i >= 5000; i--) {
    hl_object_t *v = hl_list_pop(l);
    assert_int_equal(hl_int_value(v), i);
    hl_decref(v);
  }
  assert_int_equal(hl_list_size(l), 5000);
  hl_object_t *m = hl_list_new(3);
  assert_ptr_equal(hl_list_get(m, 2), hl_None);
  assert_int_equal(hl_eq(l, m), 0);
  assert_int_equal(hl_hash(l), -1);                /* lists are unhashable */
  hl_err_clear();
  hl_list_clear(l);
  assert_int_equal(hl_list_size(l), 0);
  hl_decref(l);
  hl_decref(m);
}

/* ---- new references from containers (what threads use without a GIL) -------------- */
static void test_get_ref(void **state) {
  (void)state;
  hl_object_t *l = hl_list_new(0), *d = hl_dict_new(), *k = hl_str_from("key");
  hl_object_t *v = hl_float_new(3.25);
  assert_int_equal(hl_list_append(l, v), 0);
  assert_int_equal(hl_dict_set(d, k, v), 0);
  uint32_t rc = hl_refcount(v);
  hl_object_t *a = hl_list_get_ref(l, 0), *b = hl_dict_get_ref(d, k);
  assert_ptr_equal(a, v);
  assert_ptr_equal(b, v);
  assert_int_equal(hl_refcount(v), rc + 2);        /* two new references */
  hl_decref(a);
  hl_decref(b);
  assert_null(hl_list_get_ref(l, 1));
  assert_int_equal(hl_err_kind(), HL_ERR_INDEX);
  hl_err_clear();
  hl_object_t *k2 = hl_str_from("absent");
  assert_null(hl_dict_get_ref(d, k2));
  assert_int_equal(hl_err_kind(), HL_ERR_KEY);
  hl_err_clear();
  /* the reference outlives the container's */
  a = hl_list_get_ref(l, 0);
  hl_list_clear(l);
  hl_dict_clear(d);
  assert_int_equal(hl_refcount(v), 2);             /* ours and a */
  assert_true(hl_float_value(a) == 3.25);
  hl_decref(a);
  /* comparisons take snapshots (and locks without a GIL) */
  hl_object_t *x = hl_list_new(2), *y = hl_list_new(2), *dx = hl_dict_new(), *dy = hl_dict_new();
  assert_int_equal(hl_eq(x, y), 1);
  assert_int_equal(hl_dict_set(dx, k, v), 0);
  assert_int_equal(hl_dict_set(dy, k, v), 0);
  assert_int_equal(hl_eq(dx, dy), 1);
  assert_int_equal(hl_dict_set(dy, k2, v), 0);
  assert_int_equal(hl_eq(dx, dy), 0);
  assert_int_equal(hl_list_set(y, 1, hl_newref(v)), 0);
  assert_int_equal(hl_eq(x, y), 0);
  hl_decref(x);
  hl_decref(y);
  hl_decref(dx);
  hl_decref(dy);
  hl_decref(v);
  hl_decref(k);
  hl_decref(k2);
  hl_decref(l);
  hl_decref(d);
}

/* ---- dict ------------------------------------------------------------------------ */
static void test_dict(void **state) {
  (void)state;
  hl_object_t *d = hl_dict_new();
  enum { N = 5000 };
  for (int i = 0; i < N; i++) {
    hl_object_t *k = hl_int_new(i * 7), *v = hl_int_new(i);
    assert_int_equal(hl_dict_set(d, k, v), 0);
    hl_decref(k); hl_decref(v);
  }
  assert_int_equal(hl_dict_size(d), N);
  for (int i = 0; i < N; i++) {
    hl_object_t *k = hl_int_new(i * 7);
    hl_object_t *v = hl_dict_get(d, k);
    assert_non_null(v);
    assert_int_equal(hl_int_value(v), i);
    hl_decref(k);
  }
  /* delete the odd ones; the rest keep their insertion order */
  for (int i = 1; i < N; i += 2) {
    hl_object_t *k = hl_int_new(i * 7);
    assert_int_equal(hl_dict_del(d, k), 0);
    assert_int_equal(hl_dict_del(d, k), -1);
    assert_int_equal(hl_err_kind(), HL_ERR_KEY);
    hl_err_clear();
    assert_int_equal(hl_dict_contains(d, k), 0);
    hl_decref(k);
  }
  assert_int_equal(hl_dict_size(d), N / 2);
  size_t pos = 0, n = 0;
  hl_object_t *k, *v;
  int64_t expect = 0;
  while (hl_dict_next(d, &pos, &k, &v)) {
    assert_int_equal(hl_int_value(v), expect);
    expect += 2;
    n++;
  }
  assert_int_equal(n, N / 2);
  /* replacing a value keeps the key's position and drops the old value */
  hl_object_t *k0 = hl_int_new(0), *nv = hl_str_from("zero");
  assert_int_equal(hl_dict_set(d, k0, nv), 0);
  assert_int_equal(hl_refcount(nv), 2);
  pos = 0;
  assert_true(hl_dict_next(d, &pos, &k, &v));
  assert_ptr_equal(v, nv);
  hl_decref(nv);
  hl_decref(k0);
  /* re-adding after deletes: usable slots are reclaimed by resizing */
  for (int r = 0; r < 20; r++) {
    for (int i = 0; i < 1000; i++) {
      hl_object_t *kk = hl_int_new(1000000 + i);
      assert_int_equal(hl_dict_set(d, kk, hl_None), 0);
      assert_int_equal(hl_dict_del(d, kk), 0);
      hl_decref(kk);
    }
  }
  assert_int_equal(hl_dict_size(d), N / 2);
  /* keys of several types; an unhashable key is refused */
  hl_object_t *sk = hl_str_from("key"), *tk = hl_tuple_pack(2, sk, hl_None), *lk = hl_list_new(0);
  assert_int_equal(hl_dict_set(d, sk, hl_True), 0);
  assert_int_equal(hl_dict_set(d, tk, hl_False), 0);
  assert_int_equal(hl_dict_set(d, lk, hl_None), -1);
  assert_int_equal(hl_err_kind(), HL_ERR_TYPE);
  hl_err_clear();
  assert_ptr_equal(hl_dict_get_cstr(d, "key"), hl_True);
  hl_object_t *tk2 = hl_tuple_pack(2, sk, hl_None);
  assert_ptr_equal(hl_dict_get(d, tk2), hl_False);
  hl_object_t *d2 = hl_dict_new();
  assert_int_equal(hl_eq(d, d2), 0);
  hl_dict_clear(d);
  assert_int_equal(hl_eq(d, d2), 1);
  hl_decref(tk2); hl_decref(sk); hl_decref(tk); hl_decref(lk); hl_decref(d); hl_decref(d2);
}

/* ---- instances, finalizers ---------------------------------------------------------- */
static int finalized;
static hl_object_t *resurrected;

static void fin_count(hl_object_t *self) { (void)self; finalized++; }
static void fin_resurrect(hl_object_t *self) {
  finalized++;
  resurrected = hl_newref(self);                   /* __del__ that stores self */
}

static void test_instance(void **state) {
  (void)state;
  hl_type_t *Point = hl_class_new("Point", 2, true, NULL);
  hl_object_t *p = hl_instance_new(Point);
  assert_null(hl_slot_get(p, 0));
  hl_object_t *x = hl_int_new(3000);
  hl_slot_set(p, 0, x);
  assert_int_equal(hl_refcount(x), 2);
  hl_slot_set(p, 0, NULL);
  assert_int_equal(hl_refcount(x), 1);
  assert_int_equal(hl_attr_set(p, "name", x), 0);
  hl_object_t *got = hl_attr_get(p, "name");
  assert_ptr_equal(got, x);
  hl_decref(got);
  assert_null(hl_attr_get(p, "missing"));
  assert_int_equal(hl_err_kind(), HL_ERR_KEY);
  hl_err_clear();
  hl_type_t *Slotted = hl_class_new("Slotted", 1, false, NULL);
  hl_object_t *s = hl_instance_new(Slotted);
  assert_int_equal(hl_attr_set(s, "a", x), -1);   /* no attribute dict */
  assert_int_equal(hl_err_kind(), HL_ERR_TYPE);
  hl_err_clear();
  hl_decref(p); hl_decref(s); hl_decref(x);
}

static void test_finalizer_once(void **state) {
  (void)state;
  hl_type_t *C = hl_class_new("WithDel", 1, false, fin_count);
  finalized = 0;
  hl_object_t *o = hl_instance_new(C);
  hl_decref(o);
  assert_int_equal(finalized, 1);
  /* a finalizer that resurrects: the object lives on, and when it dies
   * again the finalizer does not run a second time */
  hl_type_t *R = hl_class_new("Resurrects", 0, false, fin_resurrect);
  finalized = 0;
  resurrected = NULL;
  o = hl_instance_new(R);
  hl_decref(o);
  assert_int_equal(finalized, 1);
  assert_ptr_equal(resurrected, o);
  assert_int_equal(hl_refcount(o), 1);
  hl_object_t *r = resurrected;
  resurrected = NULL;
  hl_decref(r);
  assert_int_equal(finalized, 1);
  hl_obj_stats_t s;
  hl_obj_stats(&s);
  assert_int_equal(s.finalizers_run, 2);
}

/* ---- weak references -------------------------------------------------------------- */
static int cb_order[8], ncb;
static hl_object_t *cb_seen_referent;
static void cb(hl_object_t *wr, void *arg) {
  cb_order[ncb++] = (int)(intptr_t)arg;
  cb_seen_referent = hl_weakref_get(wr);          /* must be NULL: already cleared */
}

static void test_weakref(void **state) {
  (void)state;
  hl_type_t *C = hl_class_new("Target", 0, true, NULL);
  hl_object_t *o = hl_instance_new(C);
  hl_object_t *w1 = hl_weakref_new(o, cb, (void *)1);
  hl_object_t *w2 = hl_weakref_new(o, NULL, NULL);
  hl_object_t *w3 = hl_weakref_new(o, cb, (void *)3);
  hl_object_t *w4 = hl_weakref_new(o, cb, (void *)4);
  assert_int_equal(hl_weakref_count(o), 4);
  assert_int_equal(hl_refcount(o), 1);             /* weak: not counted */
  hl_object_t *g = hl_weakref_get(w1);
  assert_ptr_equal(g, o);
  hl_decref(g);
  hl_decref(w4);                                   /* a dead weakref's callback never runs */
  assert_int_equal(hl_weakref_count(o), 3);
  hl_object_t *px = hl_proxy_new(o, NULL, NULL);
  hl_object_t *v = hl_int_new(42);
  assert_int_equal(hl_attr_set(px, "answer", v), 0);   /* through the proxy */
  hl_object_t *a = hl_attr_get(o, "answer");
  assert_ptr_equal(a, v);
  hl_decref(a); hl_decref(v);
  ncb = 0;
  cb_seen_referent = (hl_object_t *)1;
  hl_decref(o);
  assert_int_equal(ncb, 2);
  assert_int_equal(cb_order[0], 3);                /* newest first */
  assert_int_equal(cb_order[1], 1);
  assert_null(cb_seen_referent);
  assert_null(hl_weakref_get(w1));
  assert_null(hl_weakref_get(w2));
  assert_null(hl_attr_get(px, "answer"));
  assert_int_equal(hl_err_kind(), HL_ERR_REFERENCE);
  hl_err_clear();
  hl_object_t *i = hl_int_new(5000);
  assert_null(hl_weakref_new(i, NULL, NULL));      /* ints cannot be weakly referenced */
  assert_int_equal(hl_err_kind(), HL_ERR_TYPE);
  hl_err_clear();
  hl_decref(i);
  hl_decref(w1); hl_decref(w2); hl_decref(w3); hl_decref(px);
  hl_obj_stats_t s;
  hl_obj_stats(&s);
  assert_int_equal(s.weakref_callbacks, 2);
}

/* ---- deep structures ------------------------------------------------------------- */
static void test_deep_list(void **state) {
  (void)state;
  hl_object_t *outer = hl_list_new(0);
  for (size_t i = 0; i < deep; i++) {
    hl_object_t *l = hl_list_new(0);
    assert_non_null(l);
    assert_int_equal(hl_list_append(l, outer), 0);
    hl_decref(outer);
    outer = l;
  }
  hl_decref(outer);                                /* a million nested frees, no deep stack */
  hl_obj_stats_t s;
  hl_obj_stats(&s);
  assert_true(s.trash_deferred > 0);
}

static void test_deep_instances(void **state) {
  (void)state;
  hl_type_t *Node = hl_class_new("Node", 1, false, NULL);
  hl_object_t *head = NULL;
  for (size_t i = 0; i < deep; i++) {
    hl_object_t *n = hl_instance_new(Node);
    assert_non_null(n);
    hl_slot_set(n, 0, head);
    hl_xdecref(head);
    head = n;
  }
  hl_decref(head);
  /* and tuples nested the other way */
  hl_object_t *t = hl_tuple_new(0);
  for (size_t i = 0; i < deep / 4; i++) {
    hl_object_t *u = hl_tuple_new(1);
    hl_tuple_set(u, 0, t);
    t = u;
  }
  hl_decref(t);
}

int main(int argc, char **argv) {
  if (argc > 1) deep = strtoull(argv[1], NULL, 10);
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  printf("test_object: alloc=%s freelists=%s immortal=%s deep=%zu\n",
         hl_config_choice_name(HL_OPT_ALLOC, cfg.alloc), cfg.freelists ? "on" : "off",
         cfg.immortal ? "on" : "off", deep);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_int, setup, teardown),
    cmocka_unit_test_setup_teardown(test_float_and_numbers, setup, teardown),
    cmocka_unit_test_setup_teardown(test_str, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tuple, setup, teardown),
    cmocka_unit_test_setup_teardown(test_list, setup, teardown),
    cmocka_unit_test_setup_teardown(test_dict, setup, teardown),
    cmocka_unit_test_setup_teardown(test_get_ref, setup, teardown),
    cmocka_unit_test_setup_teardown(test_instance, setup, teardown),
    cmocka_unit_test_setup_teardown(test_finalizer_once, setup, teardown),
    cmocka_unit_test_setup_teardown(test_weakref, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deep_list, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deep_instances, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
