/* tuple: a fixed-size array of references, the items inline after the
 * header. Free lists per length 1..19, up to 2000 each (CPython's
 * Objects/tupleobject.c): the most frequent tuples (argument packs, pairs,
 * dict items) then cost a pop. The empty tuple is one shared object. The
 * hash combines the items' hashes with xxHash's 64-bit round (Collet), as
 * CPython does since 3.8. A tuple is tracked when made; under
 * --gc-untrack=on a collection untracks it once its items show it can
 * never be part of a cycle (collect.c, CPython's untrack_tuples). */
#include <stdarg.h>
#include <string.h>

#include "gc_internal.h"

static hl_tuple_t *empty_tuple;

static inline int tuple_walk(hl_object_t *o, hl_visit_fn visit, void *arg, bool gc_only) {
  hl_tuple_t *t = (hl_tuple_t *)o;
  for (size_t i = 0, n = t->size; i < n; i++)
    if (hli_visit_wanted(t->items[i], gc_only)) {
      int r = visit(t->items[i], arg);
      if (r) return r;
    }
  return 0;
}
static int tuple_traverse(hl_object_t *o, hl_visit_fn visit, void *arg) {
  return tuple_walk(o, visit, arg, false);
}
static int tuple_traverse_gc(hl_object_t *o, hl_visit_fn visit, void *arg) {
  return tuple_walk(o, visit, arg, true);
}

void hl_tuple_item_drop(hl_object_t *old) {
  if (HL_UNLIKELY(hli_gc_scanning())) {   /* gen_conc.c's barrier, as hl_slot_set */
    hli_tstate.stats.barrier_drops_deferred++;
    hli_defer_decref(old);
    return;
  }
  hl_decref(old);
}

static void tuple_clear(hl_object_t *o) {
  hl_tuple_t *t = (hl_tuple_t *)o;
  for (size_t i = 0; i < t->size; i++) hl_clear(&t->items[i]);
}

static void tuple_dealloc(hl_object_t *o) {
  hl_tuple_t *t = (hl_tuple_t *)o;
  size_t n = t->size;
  for (size_t i = n; i-- > 0;) hl_xdecref(t->items[i]);
  if (n > 0 && n < HL_FL_TUPLE_SIZES) {
    hl_tstate_t *ts = &hli_tstate;
    /* The block starts at the GC head; the free list links blocks. */
    if (hli_fl_push(&ts->fl_tuple[n], HL_GC_HEAD(o))) {
      ts->stats.freelist_puts++;
      return;
    }
  }
  hli_gc_free(o);
}

static int64_t tuple_hash(hl_object_t *o) {
  const uint64_t p1 = 11400714785074694791ull, p2 = 14029467366897019727ull,
                 p5 = 2870177450012600261ull;
  hl_tuple_t *t = (hl_tuple_t *)o;
  uint64_t acc = p5;
  for (size_t i = 0; i < t->size; i++) {
    int64_t h = hl_hash(t->items[i]);
    if (h == -1) return -1;
    acc += (uint64_t)h * p2;
    acc = (acc << 31) | (acc >> 33);
    acc *= p1;
  }
  acc += t->size ^ (p5 ^ 3527539ull);
  int64_t r = (int64_t)(acc >> 1);
  return r == -1 ? -2 : r;
}

static int tuple_eq(hl_object_t *a, hl_object_t *b) {
  hl_tuple_t *x = (hl_tuple_t *)a, *y = (hl_tuple_t *)b;
  if (x->size != y->size) return 0;
  for (size_t i = 0; i < x->size; i++) {
    int r = hl_eq(x->items[i], y->items[i]);
    if (r != 1) return r;
  }
  return 1;
}

const hl_type_t hl_tuple_type = {
  .name = "tuple", .flags = HL_TF_BASETYPE | HL_TF_GC, .kind = HL_K_TUPLE,
  .traverse = tuple_traverse, .traverse_gc = tuple_traverse_gc,
  .clear = tuple_clear, .dealloc = tuple_dealloc,
  .hash = tuple_hash, .eq = tuple_eq};

/* The empty tuple is made at start-up: made on first use, two threads
 * without a GIL could both make it. */
int hli_tuple_init(void) {
  if (empty_tuple) return 0;
  empty_tuple = (hl_tuple_t *)hli_gc_alloc(&hl_tuple_type, sizeof(hl_tuple_t));
  if (!empty_tuple) return -1;
  empty_tuple->size = 0;
  if (hl_rc_config.immortal) hli_make_immortal(&empty_tuple->ob);
  return 0;
}

hl_object_t *hl_tuple_new(size_t n) {
  if (n == 0) {
    if (HL_UNLIKELY(!empty_tuple) && hli_tuple_init() != 0) return NULL;
    return hl_newref(&empty_tuple->ob);
  }
  hl_tuple_t *t;
  hl_tstate_t *ts = &hli_tstate;
  hl_gc_head_t *g = n < HL_FL_TUPLE_SIZES ? hli_fl_pop(&ts->fl_tuple[n]) : NULL;
  if (g) {
    ts->stats.freelist_hits++;
    g->next = g->prev = 0;
    t = (hl_tuple_t *)HL_GC_OBJ(g);
    hli_obj_init_gc(&t->ob, &hl_tuple_type);
    t->ob.flags = HL_OF_GC;
  } else {
    if (n > (SIZE_MAX - sizeof(hl_tuple_t) - sizeof(hl_gc_head_t)) / sizeof(hl_object_t *)) {
      hl_err_set(HL_ERR_NOMEM, "tuple of %zu items is too large", n);
      return NULL;
    }
    t = (hl_tuple_t *)hli_gc_alloc(&hl_tuple_type, sizeof(hl_tuple_t) + n * sizeof(hl_object_t *));
    if (HL_UNLIKELY(!t)) return NULL;
  }
  t->size = n;
  /* A loop the compiler would turn into a call to memset, for 2 items. */
  hl_object_t **it = t->items;
  switch (n) {
  case 3: it[2] = NULL; /* fall through */
  case 2: it[1] = NULL; /* fall through */
  case 1: it[0] = NULL; break;
  default: memset(it, 0, n * sizeof *it);
  }
  hli_gc_link(&t->ob);
  return &t->ob;
}

/* The empty tuple outlives every reference the program held. */
void hli_tuple_fini(void) {
  if (!empty_tuple) return;
  hl_object_t *e = &empty_tuple->ob;
  empty_tuple = NULL;
  if (hl_is_immortal(e)) {
    hli_gc_free(e);
    return;
  }
  HL_ASSERT(hl_refcount(e) == 1);
  hl_decref(e);
}

hl_object_t *hl_tuple_pack(size_t n, ...) {
  hl_object_t *t = hl_tuple_new(n);
  if (!t) return NULL;
  va_list ap;
  va_start(ap, n);
  for (size_t i = 0; i < n; i++) ((hl_tuple_t *)t)->items[i] = hl_newref(va_arg(ap, hl_object_t *));
  va_end(ap);
  return t;
}

