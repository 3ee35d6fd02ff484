/* list: a growable array of references. The object (header, size,
 * capacity, items pointer, lock) is fixed; the item array is a separate
 * block that grows as CPython's list_resize grows it, new capacity
 *     (n + n/8 + 6) & ~3
 * so that n appends cost O(n) copies in total. The block starts with its
 * own capacity (gc_internal.h). A free list keeps up to 80 list objects
 * (their item arrays are freed), as CPython's.
 *
 * Without a GIL (gc_internal.h, shared.c): every change takes the list's
 * lock; hl_list_get_ref reads a shared list without it, as CPython 3.13t's
 * list_get_item_ref does:
 *     items = items (acquire); i < size (acquire) and i < items[-1] ?
 *     v = items[i] (acquire); try to take a reference to v;
 *     items and items[i] unchanged ?  v  :  drop it, retry under the lock
 * Writers publish an item with a release store before the size that
 * covers it, clear a slot they give up, and replace the array rather than
 * reallocate it in place while the list is shared (the old one is freed
 * after a grace period).
 */
#include <string.h>

#include "gc_internal.h"

static inline size_t *items_block(hl_object_t **items) { return (size_t *)(void *)items - 1; }
static inline size_t items_cap(hl_object_t *const *items) {
  return ((const size_t *)(const void *)items)[-1];
}

/* A new item array for cap items (cap > 0), or NULL. */
static inline __attribute__((always_inline)) hl_object_t **items_alloc(size_t cap) {
  if (cap > SIZE_MAX / sizeof(hl_object_t *) - 1) return NULL;
  size_t *b = hli_mem_malloc((cap + 1) * sizeof(hl_object_t *));
  if (!b) return NULL;
  b[0] = cap;
  return (hl_object_t **)(void *)(b + 1);
}

/* Acquire: pairs with store_size. */
static inline size_t load_size(const hl_list_t *l) {
  return hl_atomic_c11_load_acquire_size(&l->size);
}
/* Release: an item stored before the size that covers it is seen by a
 * reader that sees the size (load_size). */
static inline void store_size(hl_list_t *l, size_t n) {
  hl_atomic_c11_store_release_size(&l->size, n);
}
static inline void store_item(hl_object_t **slot, hl_object_t *v) {
  hl_atomic_c11_store_release_ptr((void **)slot, v);   /* v's contents before v */
}

static inline int list_walk(hl_object_t *o, hl_visit_fn visit, void *arg, bool gc_only) {
  hl_list_t *l = (hl_list_t *)o;
  /* read once: the visitor does not change l (hl_gc.h) */
  hl_object_t *const *items = l->items;
  for (size_t i = 0, n = l->size; i < n; i++)
    if (hli_visit_wanted(items[i], gc_only)) {
      int r = visit(items[i], arg);
      if (r) return r;
    }
  return 0;
}
static int list_traverse(hl_object_t *o, hl_visit_fn visit, void *arg) {
  return list_walk(o, visit, arg, false);
}
static int list_traverse_gc(hl_object_t *o, hl_visit_fn visit, void *arg) {
  return list_walk(o, visit, arg, true);
}

/* Detaches the array; the caller drops the items (items_release). */
static hl_object_t **list_take_items(hl_list_t *l, size_t *n) {
  hl_object_t **items = l->items;
  *n = l->size;
  /* Release: pairs with a lock-free reader's acquire load of l->items. */
  hl_atomic_c11_store_release_ptr((void **)&l->items, NULL);
  store_size(l, 0);
  l->allocated = 0;
  return items;
}

/* The items are dropped after l no longer shows them, so that a finalizer
 * reached from a drop sees a consistent (empty) list; after a grace period
 * when readers may still be reading them (shared). */
static void items_release(hl_object_t **items, size_t n, bool shared) {
  for (size_t i = n; i-- > 0;)
    if (items[i]) hli_release_ref(items[i], shared);
  if (items) hli_release_block(items_block(items), shared);
}

/* Dealloc and tp_clear: no reader can be looking (the count is zero, or
 * the collector has the world to itself). */
static void list_drop_items(hl_list_t *l) {
  size_t n;
  hl_object_t **items = list_take_items(l, &n);
  items_release(items, n, false);
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

/* A new reference to each item, under the lock in the free-threaded modes:
 * comparisons then run without it (they may lock other containers). NULL
 * with HL_ERR_NOMEM, or when l is empty (*n == 0). */
static hl_object_t **list_snapshot(hl_object_t *o, size_t *n) {
  hl_list_t *l = (hl_list_t *)o;
  bool ft = hli_nogil(), shared = false;
  if (ft) shared = hli_container_lock(o, &l->lock);
  hl_object_t **copy = NULL;
  *n = l->size;
  if (*n && (copy = hli_mem_malloc(*n * sizeof *copy)))
    for (size_t i = 0; i < *n; i++) copy[i] = hl_newref(l->items[i]);
  if (ft) hli_container_unlock(&l->lock, shared);
  if (*n && !copy) hl_err_set(HL_ERR_NOMEM, "out of memory comparing lists");
  return copy;
}

static void snapshot_free(hl_object_t **copy, size_t n) {
  for (size_t i = 0; i < n; i++) hl_decref(copy[i]);
  hl_alloc_free(copy);
}

static int list_eq(hl_object_t *a, hl_object_t *b) {
  size_t na, nb;
  hl_object_t **x = list_snapshot(a, &na);
  if (na && !x) return -1;
  hl_object_t **y = list_snapshot(b, &nb);
  if (nb && !y) {
    if (x) snapshot_free(x, na);
    return -1;
  }
  int r = na == nb;
  for (size_t i = 0; r == 1 && i < na; i++) r = hl_eq(x[i], y[i]);
  if (x) snapshot_free(x, na);
  if (y) snapshot_free(y, nb);
  return r;
}

const hl_type_t hl_list_type = {
  .name = "list", .flags = HL_TF_BASETYPE | HL_TF_GC, .kind = HL_K_LIST,
  .traverse = list_traverse, .traverse_gc = list_traverse_gc,
  .clear = list_clear, .dealloc = list_dealloc,
  .eq = list_eq};   /* no hash: lists are unhashable */

/* A new array sized for n items as CPython's list_resize sizes it (none
 * for n == 0), holding the first min(n, size) items. Shared: a new block,
 * the old one freed after a grace period; otherwise resized in place. The
 * size is the caller's business. */
static int list_realloc(hl_list_t *l, size_t n, bool shared) {
  size_t cap = (n + (n >> 3) + 6) & ~(size_t)3;
  if (n == 0) cap = 0;
  if (cap > SIZE_MAX / sizeof(hl_object_t *) - 1) {
    hl_err_set(HL_ERR_NOMEM, "list of %zu items is too large", n);
    return -1;
  }
  hl_object_t **old = l->items, **items;
  if (cap == 0) {
    items = NULL;
  } else if (shared || !old) {
    items = items_alloc(cap);
    if (items && old) memcpy(items, old, (n < l->size ? n : l->size) * sizeof *items);
  } else {
    size_t *b = hli_mem_realloc(items_block(old), (cap + 1) * sizeof(hl_object_t *));
    items = b ? (hl_object_t **)(void *)(b + 1) : NULL;
    if (b) {
      b[0] = cap;
      old = NULL;   /* moved or resized: nothing left to free */
    }
  }
  if (cap && !items) {
    hl_err_set(HL_ERR_NOMEM, "out of memory growing a list to %zu items", n);
    return -1;
  }
  hl_atomic_c11_store_release_ptr((void **)&l->items, items);   /* the copied items first */
  l->allocated = cap;
  if (old) hli_release_block(items_block(old), shared);
  return 0;
}

/* Sets the size to n, growing or shrinking the array as CPython does. */
static int list_resize(hl_list_t *l, size_t n, bool shared) {
  if (n <= l->allocated && n >= l->allocated / 2) {
    store_size(l, n);
    return 0;
  }
  if (n < l->size) store_size(l, n);   /* shrinking: no reader past n from here */
  if (list_realloc(l, n, shared) != 0) return -1;
  store_size(l, n);
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
    hli_obj_init_gc(&l->ob, &hl_list_type);
    l->ob.flags = HL_OF_GC;
  } else {
    l = (hl_list_t *)hli_gc_alloc(&hl_list_type, sizeof(hl_list_t));
    if (HL_UNLIKELY(!l)) return NULL;
  }
  l->size = l->allocated = 0;
  l->items = NULL;
  l->lock = 0;
  hli_gc_link(&l->ob);
  if (n) {
    if (!(l->items = items_alloc(n))) {
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
  return load_size((const hl_list_t *)l);
}

static hl_object_t *index_error(size_t i, size_t n) {
  hl_err_set(HL_ERR_INDEX, "list index %zu out of range (size %zu)", i, n);
  return NULL;
}

hl_object_t *hl_list_get(const hl_object_t *o, size_t i) {
  HL_ASSERT(o->type == &hl_list_type);
  hl_list_t *l = (hl_list_t *)(uintptr_t)o;
  if (HL_LIKELY(!hli_nogil())) return i < l->size ? l->items[i] : index_error(i, l->size);
  /* borrowed: safe only while nothing drops the item meanwhile */
  bool shared = hli_container_lock(o, &l->lock);
  size_t n = l->size;
  hl_object_t *v = i < n ? l->items[i] : NULL;
  hli_container_unlock(&l->lock, shared);
  return v ? v : index_error(i, n);
}

/* The lock-free read (see the top); NULL: take the lock. */
static hl_object_t *get_ref_unlocked(hl_list_t *l, size_t i) {
  if (!hli_qsbr_reader()) return NULL;   /* not a QSBR reader */
  /* Acquire: pairs with the release of the unlock after the marking, so
   * that every change made before it (freed at once) is behind us. */
  if (!(hl_atomic_load_acquire_u32(&l->lock) & HLI_LOCK_SHARED)) return NULL;   /* gc_internal.h */
  /* Acquire: pairs with the release store that published the array (its
   * capacity word and the items copied into it). */
  hl_object_t **items = hl_atomic_c11_load_acquire_ptr((void **)&l->items);
  if (!items || i >= load_size(l) || i >= items_cap(items)) return NULL;
  /* Acquire: pairs with store_item; v stays alive until our next
   * checkpoint if it is removed meanwhile (shared.c). */
  hl_object_t *v = hl_atomic_c11_load_acquire_ptr((void **)&items[i]);
  if (!v || !hli_rc_try_incref(v)) return NULL;
  if (hl_atomic_c11_load_acquire_ptr((void **)&items[i]) == v &&
      hl_atomic_c11_load_acquire_ptr((void **)&l->items) == items)
    return v;
  hl_decref(v);
  return NULL;
}

hl_object_t *hl_list_get_ref(hl_object_t *o, size_t i) {
  HL_ASSERT(o->type == &hl_list_type);
  hl_list_t *l = (hl_list_t *)o;
  if (HL_LIKELY(!hli_nogil())) {
    if (i >= l->size) return index_error(i, l->size);
    return hl_newref(l->items[i]);
  }
  hl_object_t *v = get_ref_unlocked(l, i);
  if (v) {
    hli_tstate.stats.reads_unlocked++;
    return v;
  }
  hli_tstate.stats.reads_locked++;
  bool shared = hli_container_lock_for_read(o, &l->lock);
  size_t n = l->size;
  if (i < n) v = hl_newref(l->items[i]);
  hli_container_unlock(&l->lock, shared);
  return v ? v : index_error(i, n);
}

int hl_list_set(hl_object_t *o, size_t i, hl_object_t *v) {
  HL_ASSERT(o->type == &hl_list_type);
  hl_list_t *l = (hl_list_t *)o;
  bool ft = hli_nogil(), shared = false;
  if (ft) shared = hli_container_lock(o, &l->lock);
  size_t n = l->size;
  if (i >= n) {
    if (ft) hli_container_unlock(&l->lock, shared);
    hl_decref(v);
    hl_err_set(HL_ERR_INDEX, "list assignment index %zu out of range (size %zu)", i, n);
    return -1;
  }
  hl_object_t *old = l->items[i];
  if (shared) hli_rc_set_maybe_weakref(v);   /* readers' try-increments succeed */
  store_item(&l->items[i], v);
  hli_container_drop(old);
  if (ft) hli_container_unlock(&l->lock, shared);
  return 0;
}

int hl_list_append(hl_object_t *o, hl_object_t *v) {
  HL_ASSERT(o->type == &hl_list_type);
  hl_list_t *l = (hl_list_t *)o;
  if (HL_LIKELY(!hli_nogil())) {
    size_t n = l->size;
    if (HL_LIKELY(n < l->allocated)) {
      l->items[n] = hl_newref(v);
      l->size = n + 1;
      return 0;
    }
    if (list_resize(l, n + 1, false) != 0) return -1;
    l->items[n] = hl_newref(v);
    return 0;
  }
  bool shared = hli_container_lock(o, &l->lock);
  size_t n = l->size;
  int r = 0;
  if (n < l->allocated || list_realloc(l, n + 1, shared) == 0) {
    if (shared) hli_rc_set_maybe_weakref(v);   /* readers' try-increments succeed */
    /* the slot before the size that covers it */
    store_item(&l->items[n], hl_newref(v));
    store_size(l, n + 1);
  } else {
    r = -1;
  }
  hli_container_unlock(&l->lock, shared);
  return r;
}

hl_object_t *hl_list_pop(hl_object_t *o) {
  HL_ASSERT(o->type == &hl_list_type);
  hl_list_t *l = (hl_list_t *)o;
  bool ft = hli_nogil(), shared = false;
  if (ft) shared = hli_container_lock(o, &l->lock);
  if (l->size == 0) {
    if (ft) hli_container_unlock(&l->lock, shared);
    hl_err_set(HL_ERR_INDEX, "pop from empty list");
    return NULL;
  }
  size_t n = l->size - 1;
  hl_object_t *v = l->items[n];
  if (ft) {
    store_item(&l->items[n], NULL);   /* a reader that loaded n before sees it gone */
    if (shared) {
      /* A reader may have loaded v and not yet taken its reference: the
       * list's goes after a grace period, the caller gets its own. */
      hl_incref(v);
      hli_container_drop(v);
    }
  }
  /* Shrinking never fails: a failed realloc keeps the larger array. */
  if (list_resize(l, n, shared) != 0) {
    store_size(l, n);
    hl_err_clear();
  }
  if (ft) hli_container_unlock(&l->lock, shared);
  return v;
}

int hl_list_clear(hl_object_t *o) {
  HL_ASSERT(o->type == &hl_list_type);
  hl_list_t *l = (hl_list_t *)o;
  bool ft = hli_nogil(), shared = false;
  if (ft) shared = hli_container_lock(o, &l->lock);
  size_t n;
  hl_object_t **items = list_take_items(l, &n);
  if (ft) hli_container_unlock(&l->lock, shared);
  items_release(items, n, shared);
  return 0;
}
