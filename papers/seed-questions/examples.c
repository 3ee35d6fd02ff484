/* papers/seed-questions: every example of the seed documents (notes on
 * CPython's memory management, /work/shared/seeds), run in heaplab's object
 * layer. examples.py is its twin in CPython 3.11; `run` sets the two side
 * by side (README.md's table).
 *
 * Prints one JSON line per figure: {"id": ..., "value": ...}, the same ids
 * as examples.py. A reference count is hl_refcount, the count itself;
 * CPython's twin prints sys.getrefcount minus 1 (its argument's own
 * reference), so that the two mean the same thing.
 * The configuration comes from the environment (HEAPLAB_RC, HEAPLAB_GC,
 * ...), as for any heaplab program; the collector must collect (not none).
 * usage: seed-examples
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "hl_gc.h"

extern char **environ;

static void emit_bool(const char *id, bool v) {
  printf("{\"id\": \"%s\", \"value\": %s}\n", id, v ? "true" : "false");
}
static void emit_int(const char *id, long long v) {
  printf("{\"id\": \"%s\", \"value\": %lld}\n", id, v);
}

static void die_if(bool bad, const char *what) {
  if (bad) {
    fprintf(stderr, "seed-examples: %s: %s\n", what, hl_err_message());
    exit(1);
  }
}

/* a is b: two objects made from the same value, as two assignments of
 * the same literal typed at the prompt make them (the seeds' `a = 123;
 * b = 123; a is b`). */
static void identity(void) {
  hl_object_t *a = hl_int_new(123), *b = hl_int_new(123);
  emit_bool("small_int_123_is", a == b);
  hl_decref(a); hl_decref(b);
  a = hl_int_new(1000), b = hl_int_new(1000);
  emit_bool("large_int_1000_is", a == b);
  hl_decref(a); hl_decref(b);
  a = hl_int_new(256), b = hl_int_new(256);
  emit_bool("int_256_is", a == b);
  hl_decref(a); hl_decref(b);
  a = hl_int_new(257), b = hl_int_new(257);
  emit_bool("int_257_is", a == b);
  hl_decref(a); hl_decref(b);
  a = hl_int_new(-5), b = hl_int_new(-5);
  emit_bool("int_minus5_is", a == b);
  hl_decref(a); hl_decref(b);
  a = hl_int_new(-6), b = hl_int_new(-6);
  emit_bool("int_minus6_is", a == b);
  hl_decref(a); hl_decref(b);
  a = hl_str_from("n"), b = hl_str_from("n");
  emit_bool("one_char_str_is", a == b);
  hl_decref(a); hl_decref(b);
  /* "python" typed twice: CPython's compiler interns identifier-like
   * constants; heaplab has no compiler, the program interns explicitly */
  a = hl_str_intern_cstr("python"), b = hl_str_intern_cstr("python");
  emit_bool("interned_str_python_is", a == b);
  hl_decref(a); hl_decref(b);
  /* the same characters built at run time: two objects */
  a = hl_str_from("python"), b = hl_str_from("python");
  emit_bool("built_str_python_is", a == b);
  /* ... until interned: the canonical object */
  hl_incref(a); hl_incref(b);
  hl_object_t *ia = hl_str_intern(a), *ib = hl_str_intern(b);
  emit_bool("built_str_interned_is", ia == ib);
  hl_decref(ia); hl_decref(ib); hl_decref(a); hl_decref(b);
  /* a = b = 'nima'; b = 'hehe' */
  a = hl_str_intern_cstr("nima");
  b = hl_newref(a);
  emit_bool("alias_is", a == b);
  hl_decref(b);
  b = hl_str_intern_cstr("hehe");
  emit_bool("rebound_is", a == b);
  hl_decref(a); hl_decref(b);
}

/* x = 300; y = x; z = [x, y]: four references; del x: one fewer. */
static void refcounts(void) {
  hl_object_t *x = hl_int_new(300);
  emit_int("rc_x_300", hl_refcount(x));
  hl_object_t *y = hl_newref(x);
  emit_int("rc_after_y_eq_x", hl_refcount(x));
  hl_object_t *z = hl_list_new(0);
  die_if(hl_list_append(z, x) || hl_list_append(z, y), "list");
  emit_int("rc_after_z_list", hl_refcount(x));
  hl_decref(z);
  emit_int("rc_after_del_z", hl_refcount(x));
  hl_decref(x);   /* del x */
  emit_int("rc_after_del_x", hl_refcount(y));
  hl_decref(y);
  /* a = []; b = []; a.append(b): a has one reference, b two */
  hl_gc_collect(2);   /* as the twin does before it */
  hl_object_t *a = hl_list_new(0), *b = hl_list_new(0);
  die_if(hl_list_append(a, b), "list");
  emit_int("diy_rc_a", hl_refcount(a));
  emit_int("diy_rc_b", hl_refcount(b));
  hl_decref(a); hl_decref(b);
  emit_int("diy_collect_after_del", hl_gc_collect(2));   /* no cycle: refcounting freed both */
  /* a = [10, 10, 11]; b = a: the list has two references, the ints are shared */
  a = hl_list_new(0);
  hl_object_t *ten = hl_int_new(10), *eleven = hl_int_new(11);
  die_if(hl_list_append(a, ten) || hl_list_append(a, ten) || hl_list_append(a, eleven), "list");
  b = hl_newref(a);
  emit_int("container_rc_list", hl_refcount(a));
  emit_bool("container_items_0_1_is", hl_list_get(a, 0) == hl_list_get(a, 1));
  hl_decref(a); hl_decref(b); hl_decref(ten); hl_decref(eleven);
}

/* The Node ring: mid -> left <-> right. del of the three names frees mid
 * (nothing refers to it) and leaves the ring to the collector. */
static void node_ring(void) {
  hl_type_t *Node = hl_class_new("Node", 2, false, NULL);   /* slots: va, next */
  die_if(!Node, "class");
  hl_object_t *names[3];
  const char *labels[3] = {"root", "left", "right"};
  for (int i = 0; i < 3; i++) {
    names[i] = hl_instance_new(Node);
    hl_object_t *s = hl_str_from(labels[i]);
    die_if(!names[i] || !s, "node");
    hl_slot_set(names[i], 0, s);
    hl_decref(s);
  }
  hl_object_t *mid = names[0], *left = names[1], *right = names[2];
  hl_slot_set(mid, 1, left);
  hl_slot_set(left, 1, right);
  hl_slot_set(right, 1, left);
  hl_object_t *wm = hl_weakref_new(mid, NULL, NULL), *wl = hl_weakref_new(left, NULL, NULL);
  hl_gc_collect(2);
  hl_gc_disable();   /* nothing but the explicit collection below */
  hl_decref(mid); hl_decref(left); hl_decref(right);
  emit_bool("ring_mid_freed_by_refcount", hl_weakref_get(wm) == NULL);
  hl_object_t *l = hl_weakref_get(wl);
  emit_bool("ring_left_alive_after_del", l != NULL);
  hl_xdecref(l);
  emit_int("ring_collect_found", hl_gc_collect(2));
  emit_bool("ring_left_freed_by_collector", hl_weakref_get(wl) == NULL);
  hl_gc_enable();
  hl_decref(wm); hl_decref(wl);
}

/* weakref: not counted; the referent dies at del, its finalizer runs, r()
 * is None. Parent/Child with a proxy: no cycle, so refcounting frees the
 * parent. */
static int deleting;
static void expensive_del(hl_object_t *self) { (void)self; deleting++; }

static void weakrefs(void) {
  hl_type_t *Expensive = hl_class_new("Expensive", 0, true, expensive_del);
  hl_object_t *obj = hl_instance_new(Expensive);
  die_if(!Expensive || !obj, "instance");
  uint32_t before = hl_refcount(obj);
  hl_object_t *r = hl_weakref_new(obj, NULL, NULL);
  emit_bool("weakref_not_counted", hl_refcount(obj) == before);
  hl_decref(obj);   /* del obj */
  emit_int("weakref_del_finalizer_ran", deleting);
  emit_bool("weakref_dead_after_del", hl_weakref_get(r) == NULL);
  hl_decref(r);

  hl_type_t *Parent = hl_class_new("Parent", 0, true, NULL);
  hl_type_t *Child = hl_class_new("Child", 0, true, NULL);
  hl_object_t *parent = hl_instance_new(Parent), *child = hl_instance_new(Child);
  hl_object_t *children = hl_list_new(0), *px = hl_proxy_new(parent, NULL, NULL);
  die_if(!parent || !child || !children || !px, "parent");
  die_if(hl_list_append(children, child) || hl_attr_set(parent, "children", children) ||
         hl_attr_set(child, "parent", px), "attrs");
  hl_object_t *name = hl_str_from("p");
  die_if(hl_attr_set(parent, "name", name), "attr");
  hl_object_t *via = hl_attr_get(px, "name");
  emit_bool("proxy_forwards_attribute", via == name);
  hl_xdecref(via);
  hl_decref(children); hl_decref(px); hl_decref(name);
  hl_object_t *wp = hl_weakref_new(parent, NULL, NULL);
  hl_gc_disable();
  hl_decref(parent);   /* del parent: freed at once, the child with it */
  emit_bool("proxy_parent_freed_without_collector", hl_weakref_get(wp) == NULL);
  hl_object_t *cp = hl_attr_get(child, "parent");   /* the child's own reference survives */
  via = cp ? hl_attr_get(cp, "name") : NULL;
  emit_bool("proxy_dead_raises_reference_error", via == NULL && hl_err_kind() == HL_ERR_REFERENCE);
  hl_err_clear();
  hl_xdecref(via); hl_xdecref(cp);
  hl_gc_enable();
  hl_decref(child); hl_decref(wp);
}

/* copy.copy against copy.deepcopy on a = [10, [10, 11]]. */
static void copies(void) {
  hl_object_t *a = hl_list_new(0), *inner = hl_list_new(0);
  hl_object_t *ten = hl_int_new(10), *eleven = hl_int_new(11);
  die_if(hl_list_append(inner, ten) || hl_list_append(inner, eleven) ||
         hl_list_append(a, ten) || hl_list_append(a, inner), "list");
  hl_object_t *b = hl_copy(a), *d = hl_deepcopy(a);
  die_if(!b || !d, "copy");
  emit_bool("copy_outer_is", b == a);
  emit_bool("copy_item0_is", hl_list_get(b, 0) == ten);
  emit_bool("copy_inner_is", hl_list_get(b, 1) == inner);
  emit_int("copy_inner_rc", hl_refcount(inner));
  emit_bool("deepcopy_outer_is", d == a);
  emit_bool("deepcopy_item0_is", hl_list_get(d, 0) == ten);
  emit_bool("deepcopy_inner_is", hl_list_get(d, 1) == inner);
  emit_bool("deepcopy_inner_items_is", hl_list_get(hl_list_get(d, 1), 0) == ten &&
                                       hl_list_get(hl_list_get(d, 1), 1) == eleven);
  emit_int("deepcopy_inner_rc", hl_refcount(inner));
  emit_int("deepcopy_equal", hl_eq(a, d));
  hl_decref(b); hl_decref(d);
  /* a cycle deep-copied: l = [l] */
  hl_object_t *l = hl_list_new(0);
  die_if(hl_list_append(l, l), "list");
  hl_object_t *lc = hl_deepcopy(l);
  die_if(!lc, "deepcopy");
  emit_bool("deepcopy_cycle_is_copy_cycle", lc != l && hl_list_get(lc, 0) == lc);
  hl_decref(lc); hl_decref(l);
  hl_gc_collect(2);
  hl_decref(a); hl_decref(inner); hl_decref(ten); hl_decref(eleven);
}

/* gc.get_threshold(): the generations' thresholds. */
static void thresholds(void) {
  uint32_t t[HL_GC_GENERATIONS];
  hl_gc_get_threshold(t);
  emit_int("gc_threshold0", t[0]);
  emit_int("gc_threshold1", t[1]);
  emit_int("gc_threshold2", t[2]);
}

int main(int argc, char **argv) {
  (void)argv;
  if (argc > 1) {
    fprintf(stderr, "usage: seed-examples   (no arguments; the configuration from HEAPLAB_*)\n");
    return 2;
  }
  hl_config_t cfg;
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0 ||
      hl_runtime_init(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "seed-examples: %s\n", err);
    return 2;
  }
  if (!hl_gc_active()) {
    fprintf(stderr, "seed-examples: the examples need a collector; --gc=none was asked "
                    "(accepted: stw, incremental)\n");
    hl_runtime_fini();
    return 2;
  }
  identity();
  refcounts();
  node_ring();
  weakrefs();
  copies();
  thresholds();
  hl_runtime_fini();
  return 0;
}
