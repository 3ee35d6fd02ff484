/* list: a growable array of references. The object (header, size,
 * capacity, items pointer) is fixed; the item array is a separate block that
 * grows as CPython's list_resize grows it, new capacity
 *     (n + n/8 + 6) & ~3
 * so that n appends cost O(n) copies in total. A free list keeps up to 80
 * list objects (their item arrays are freed), as CPython's. */
#include <string.h>

#include "gc_internal.h"

static int list_traverse(hl_object_t *o, hl_visit_fn visit, void *arg) {
  hl_list_t *l = (hl_list_t *)o;
  for (size_t i = 0; i < l->size; i++)
    if (l->items[i]) {
      int r = visit(l->items[i], arg);
      if (r) return r;
    }
  return 0;
}

/* Empties l; the items are dropped after l no longer shows them, so that a
 * finalizer reached from a drop sees a consistent (empty) list. */
static void list_drop_items(hl_list_t *l) {
  hl_object_t **items = l->items;
  size_t n = l->size;
  l->items = NULL;
  l->size = l->allocated = 0;
  for (size_t i = n; i-- > 0;) hl_xdecref(items[i]);
  if (items) hl_alloc_free(items);
}

static void list_clear(hl_object_t *o) { list_drop_items((hl_list_t *)o); }

static void list_dealloc(hl_object_t *o) {
  list_drop_items((hl_list_t *)o);
  hl_tstate_t *ts = &hli_tstate;
  if (hli_fl_push(&ts->fl_list, HL_GC_HEAD(o))) {
    ts->stats.freelist_puts++;
    return;
  }
  hli_gc_free(o);
}

static int list_eq(hl_object_t *a, hl_object_t *b) {
  hl_list_t *x = (hl_list_t *)a, *y = (hl_list_t *)b;
  if (x->size != y->size) return 0;
  for (size_t i = 0; i < x->size && i < y->size; i++) {
    int r = hl_eq(x->items[i], y->items[i]);
    if (r != 1) return r;
  }
  return x->size == y->size;
}

const hl_type_t hl_list_type = {
  .name = "list", .flags = HL_TF_BASETYPE | HL_TF_GC, .kind = HL_K_LIST,
  .traverse = list_traverse, .clear = list_clear, .dealloc = list_dealloc,
  .eq = list_eq};   /* no hash: lists are unhashable */

static int list_resize(hl_list_t *l, size_t n) {
  if (n <= l->allocated && n >= l->allocated / 2) {
    l->size = n;
    return 0;
  }
  size_t cap = (n + (n >> 3) + 6) & ~(size_t)3;
  if (n == 0) cap = 0;
  if (cap > SIZE_MAX / sizeof(hl_object_t *)) {
    hl_err_set(HL_ERR_NOMEM, "list of %zu items is too large", n);
    return -1;
  }
  hl_object_t **items;
  if (cap == 0) {
    hl_alloc_free(l->items);
    items = NULL;
  } else {
    items = hl_alloc_realloc(l->items, cap * sizeof(hl_object_t *));
    if (!items) {
      hl_err_set(HL_ERR_NOMEM, "out of memory growing a list to %zu items", n);
      return -1;
    }
  }
  l->items = items;
  l->allocated = cap;
  l->size = n;
  return 0;
}

hl_object_t *hl_list_new(size_t n) {
  hl_tstate_t *ts = &hli_tstate;
  hl_list_t *l;
  hl_gc_head_t *g = hli_fl_pop(&ts->fl_list);
  if (g) {
    ts->stats.freelist_hits++;
    g->next = g->prev = 0;
    l = (hl_list_t *)HL_GC_OBJ(g);
    hli_obj_init(&l->ob, &hl_list_type);
    l->ob.flags = HL_OF_GC;
  } else {
    l = (hl_list_t *)hli_gc_alloc(&hl_list_type, sizeof(hl_list_t));
    if (HL_UNLIKELY(!l)) return NULL;
  }
  l->size = l->allocated = 0;
  l->items = NULL;
  hli_gc_link(&l->ob);
  if (n) {
    if (n > SIZE_MAX / sizeof(hl_object_t *) ||
        !(l->items = hl_alloc_malloc(n * sizeof(hl_object_t *)))) {
      hl_err_set(HL_ERR_NOMEM, "out of memory allocating a list of %zu items", n);
      hl_decref(&l->ob);
      return NULL;
    }
    l->allocated = l->size = n;
    for (size_t i = 0; i < n; i++) l->items[i] = hl_newref(hl_None);
  }
  return &l->ob;
}

size_t hl_list_size(const hl_object_t *l) {
  HL_ASSERT(l->type == &hl_list_type);
  return ((const hl_list_t *)l)->size;
}

hl_object_t *hl_list_get(const hl_object_t *o, size_t i) {
  HL_ASSERT(o->type == &hl_list_type);
  const hl_list_t *l = (const hl_list_t *)o;
  if (i >= l->size) {
    hl_err_set(HL_ERR_INDEX, "list index %zu out of range (size %zu)", i, l->size);
    return NULL;
  }
  return l->items[i];
}

int hl_list_set(hl_object_t *o, size_t i, hl_object_t *v) {
  HL_ASSERT(o->type == &hl_list_type);
  hl_list_t *l = (hl_list_t *)o;
  if (i >= l->size) {
    hl_decref(v);
    hl_err_set(HL_ERR_INDEX, "list assignment index %zu out of range (size %zu)", i, l->size);
    return -1;
  }
  hl_object_t *old = l->items[i];
  l->items[i] = v;
  hl_xdecref(old);
  return 0;
}

int hl_list_append(hl_object_t *o, hl_object_t *v) {
  HL_ASSERT(o->type == &hl_list_type);
  hl_list_t *l = (hl_list_t *)o;
  size_t n = l->size;
  if (HL_LIKELY(n < l->allocated)) {
    l->items[n] = hl_newref(v);
    l->size = n + 1;
    return 0;
  }
  if (list_resize(l, n + 1) != 0) return -1;
  l->items[n] = hl_newref(v);
  return 0;
}

hl_object_t *hl_list_pop(hl_object_t *o) {
  HL_ASSERT(o->type == &hl_list_type);
  hl_list_t *l = (hl_list_t *)o;
  if (l->size == 0) {
    hl_err_set(HL_ERR_INDEX, "pop from empty list");
    return NULL;
  }
  hl_object_t *v = l->items[l->size - 1];
  /* Shrinking never fails: a failed realloc keeps the larger array. */
  if (list_resize(l, l->size - 1) != 0) {
    l->size--;
    hl_err_clear();
  }
  return v;
}

int hl_list_clear(hl_object_t *o) {
  HL_ASSERT(o->type == &hl_list_type);
  list_drop_items((hl_list_t *)o);
  return 0;
}
