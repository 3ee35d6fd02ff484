/* dict: CPython's compact, ordered dict (Raymond Hettinger's design,
 * Objects/dictobject.c since 3.6), written anew.
 *
 * The table is one block: an index array of 2^log2 int32 slots followed by
 * an entry array filled in insertion order. A slot holds -1 (never used),
 * -2 (its entry was deleted) or an entry number. Lookup probes slots with
 * the recurrence
 *     i = (5 i + 1 + perturb) mod 2^log2,  perturb >>= 5   (perturb starts at hash)
 * so that every hash bit eventually takes part and every slot is visited.
 * Deletion leaves a -2 slot (probe chains stay intact) and a hole in the
 * entries; the next resize compacts both. The table holds at most 2/3 of
 * its slots in entries, and grows to the power of two that fits 3 x used.
 * Iteration walks the entries in order, skipping holes.
 *
 * Keys are any hashable object: hl_hash, then hl_eq, which may fail (an
 * unhashable key is HL_ERR_TYPE). A free list keeps up to 80 dict objects
 * (without their tables), another up to 80 tables of the smallest size.
 *
 * Without a GIL (gc_internal.h, shared.c): every change takes the dict's
 * lock; hl_dict_get_ref looks a shared dict up without it, as CPython 3.13t's
 * _Py_dict_lookup_threadsafe does: slots are read with acquire loads (an
 * entry is complete before the slot that names it is published), the
 * value found is taken with a try-increment and checked to be still the
 * entry's, and the table still the dict's; anything else retries under
 * the lock. Entries are never reused within a table (a deleted one stays a
 * hole until the next resize builds a new table), so an entry read without
 * the lock always belongs to the key it was written for. A shared dict's
 * replaced tables are freed after a grace period, never kept on the free
 * list.
 *
 * Tracking (--gc-untrack=on; CPython's MAINTAIN_TRACKING in
 * Objects/dictobject.c): a dict is made untracked, and every insertion of
 * a key or value that may be tracked (gc_internal.h) tracks it before the
 * entry goes in. A dict of strings and numbers, the most common kind, then
 * costs no collection anything; full collections untrack again the dicts
 * that no longer hold a container (collect.c).
 */
#include <string.h>

#include "gc_internal.h"

#define IX_EMPTY (-1)
#define IX_DUMMY (-2)
#define MIN_LOG2 3

/* Tables of the smallest size (8 slots, 5 entries) are the ones a new dict
 * gets at its first insertion, so a per-thread free list keeps up to 80 of
 * them (CPython's keys_free_list does the same). */
static hl_dict_keys_t *keys_new(uint8_t log2) {
  size_t slots = (size_t)1 << log2;
  size_t usable = (slots << 1) / 3;
  hl_dict_keys_t *k = NULL;
  if (log2 == MIN_LOG2) {
    k = hli_fl_pop(&hli_tstate.fl_keys);   /* not an object: not in the object statistics */
  }
  if (!k) {
    size_t bytes =
        sizeof(hl_dict_keys_t) + slots * sizeof(int32_t) + usable * sizeof(hl_dict_entry_t);
    k = hli_mem_malloc(bytes);
    if (!k) return NULL;
  }
  k->log2 = log2;
  k->usable = usable;
  k->nentries = 0;
  k->indices = (int32_t *)(k + 1);
  k->entries = (hl_dict_entry_t *)(k->indices + slots);
  if (log2 == MIN_LOG2)   /* a constant size: the compiler writes it inline */
    memset(k->indices, 0xff, ((size_t)1 << MIN_LOG2) * sizeof(int32_t));   /* IX_EMPTY */
  else
    memset(k->indices, 0xff, slots * sizeof(int32_t));
  return k;
}

static void keys_free(hl_dict_keys_t *k, bool shared) {
  if (shared) {
    hli_defer_free(k);   /* readers may still be probing it */
    return;
  }
  if (k->log2 == MIN_LOG2 && hli_fl_push(&hli_tstate.fl_keys, k)) return;
  hl_alloc_free(k);
}

static inline bool dict_shared(hl_dict_t *d) {
  return (hl_atomic_load_relaxed_u32(&d->lock) & HLI_LOCK_SHARED) != 0;
}

/* The slot holding entry `ix` for hash, or the first empty slot. */
static size_t find_empty_slot(const hl_dict_keys_t *k, int64_t hash) {
  size_t mask = ((size_t)1 << k->log2) - 1;
  uint64_t perturb = (uint64_t)hash;
  size_t i = (size_t)hash & mask;
  while (k->indices[i] != IX_EMPTY) {
    perturb >>= 5;
    i = (i * 5 + 1 + perturb) & mask;
  }
  return i;
}

/* Entry of key, or NULL; *err set when a comparison failed. The slot is
 * returned through *slot_out for deletion. */
static hl_dict_entry_t *lookup(hl_dict_keys_t *k, hl_object_t *key, int64_t hash,
                               size_t *slot_out, bool *err) {
  size_t mask = ((size_t)1 << k->log2) - 1;
  uint64_t perturb = (uint64_t)hash;
  size_t i = (size_t)hash & mask;
  *err = false;
  for (;;) {
    int32_t ix = k->indices[i];
    if (ix == IX_EMPTY) return NULL;
    if (ix >= 0) {
      hl_dict_entry_t *e = &k->entries[ix];
      if (e->key == key) {
        if (slot_out) *slot_out = i;
        return e;
      }
      if (e->hash == hash) {
        hl_object_t *ek = hl_newref(e->key);   /* eq may run code that drops it */
        int r = hl_eq(ek, key);
        hl_decref(ek);
        if (r < 0) {
          *err = true;
          return NULL;
        }
        if (r) {
          if (slot_out) *slot_out = i;
          return e;
        }
      }
    }
    perturb >>= 5;
    i = (i * 5 + 1 + perturb) & mask;
  }
}

static int resize(hl_dict_t *d, size_t want_used) {
  uint8_t log2 = MIN_LOG2;
  while ((((size_t)1 << log2) << 1) / 3 < want_used) {
    if (log2 >= 31) {
      hl_err_set(HL_ERR_NOMEM, "dict of %zu items is too large", want_used);
      return -1;
    }
    log2++;
  }
  hl_dict_keys_t *nk = keys_new(log2);
  if (!nk) {
    hl_err_set(HL_ERR_NOMEM, "out of memory resizing a dict to %zu slots", (size_t)1 << log2);
    return -1;
  }
  hl_dict_keys_t *ok = d->keys;
  if (ok) {
    for (size_t j = 0; j < ok->nentries; j++) {
      hl_dict_entry_t *e = &ok->entries[j];
      if (!e->key) continue;
      size_t slot = find_empty_slot(nk, e->hash);
      nk->indices[slot] = (int32_t)nk->nentries;
      nk->entries[nk->nentries++] = *e;
    }
  }
  /* Release: the new table is complete before a reader sees it. */
  hl_atomic_c11_store_release_ptr((void **)&d->keys, nk);
  if (ok) keys_free(ok, dict_shared(d));
  return 0;
}

hl_dict_entry_t *hli_dict_lookup(hl_dict_t *d, hl_object_t *key, int64_t hash) {
  if (!d->keys) return NULL;
  bool err;
  return lookup(d->keys, key, hash, NULL, &err);
}

/* Inserts a key known to be absent, or replaces; borrows key and value. */
int hli_dict_insert(hl_dict_t *d, hl_object_t *key, int64_t hash, hl_object_t *value) {
  if (HL_UNLIKELY(!hli_gc_tracked(&d->ob)) && hli_gc.active &&
      (hli_gc_may_be_tracked(key) || hli_gc_may_be_tracked(value)))
    hli_gc_track(&d->ob);
  if (d->keys) {
    bool err;
    hl_dict_entry_t *e = lookup(d->keys, key, hash, NULL, &err);
    if (err) return -1;
    if (e) {
      hl_object_t *old = e->value;
      /* Release: pairs with a lock-free reader's acquire load of e->value. */
      hl_atomic_c11_store_release_ptr((void **)&e->value, hl_newref(value));
      hli_container_drop(old);   /* after the lock, without a GIL */
      return 0;
    }
  }
  if (!d->keys || d->keys->nentries >= d->keys->usable) {
    if (resize(d, 2 * (d->used + 1)) != 0) return -1;   /* 2/3 full after: 3x used slots */
  }
  hl_dict_keys_t *k = d->keys;
  size_t slot = find_empty_slot(k, hash);
  hl_dict_entry_t *e = &k->entries[k->nentries];
  e->hash = hash;
  hl_atomic_c11_store_relaxed_ptr((void **)&e->key, hl_newref(key));
  hl_atomic_c11_store_relaxed_ptr((void **)&e->value, hl_newref(value));
  /* Release: the entry before the slot that names it (lock-free readers). */
  hl_atomic_c11_store_release_i32(&k->indices[slot], (int32_t)k->nentries);
  k->nentries++;
  hl_atomic_c11_store_relaxed_u32(&d->used, d->used + 1);
  return 0;
}

static inline int dict_walk(hl_object_t *o, hl_visit_fn visit, void *arg, bool gc_only) {
  hl_dict_keys_t *k = ((hl_dict_t *)o)->keys;
  if (!k) return 0;
  hl_dict_entry_t *entries = k->entries;
  for (size_t j = 0, n = k->nentries; j < n; j++) {
    hl_dict_entry_t *e = &entries[j];
    if (!e->key) continue;   /* a deleted entry */
    int r = 0;
    if (hli_visit_wanted(e->key, gc_only)) r = visit(e->key, arg);
    if (!r && hli_visit_wanted(e->value, gc_only)) r = visit(e->value, arg);
    if (r) return r;
  }
  return 0;
}
static int dict_traverse(hl_object_t *o, hl_visit_fn visit, void *arg) {
  return dict_walk(o, visit, arg, false);
}
static int dict_traverse_gc(hl_object_t *o, hl_visit_fn visit, void *arg) {
  return dict_walk(o, visit, arg, true);
}

/* Detaches the table; release_table drops its references afterwards, so
 * that code run by a drop sees an empty dict. */
static hl_dict_keys_t *take_table(hl_dict_t *d) {
  hl_dict_keys_t *k = d->keys;
  /* Release: pairs with a lock-free reader's acquire load of d->keys. */
  hl_atomic_c11_store_release_ptr((void **)&d->keys, NULL);
  hl_atomic_c11_store_relaxed_u32(&d->used, 0);
  return k;
}

/* After a grace period when readers may still be reading (shared). */
static void release_table(hl_dict_keys_t *k, bool shared) {
  if (!k) return;
  for (size_t j = k->nentries; j-- > 0;) {
    hl_dict_entry_t *e = &k->entries[j];
    if (!e->key) continue;
    hli_release_ref(e->key, shared);
    hli_release_ref(e->value, shared);
  }
  keys_free(k, shared);
}

/* Dealloc and tp_clear: no reader can be looking. */
static void drop_table(hl_dict_t *d) { release_table(take_table(d), false); }

static void dict_clear(hl_object_t *o) { drop_table((hl_dict_t *)o); }

static void dict_dealloc(hl_object_t *o) {
  drop_table((hl_dict_t *)o);
  hl_tstate_t *ts = &hli_tstate;
  if (hli_fl_push(&ts->fl_dict, HL_GC_HEAD(o))) {
    ts->stats.freelist_puts++;
    return;
  }
  hli_gc_free(o);
}

/* New references to a's keys and values (2 per item), taken under its lock
 * in the free-threaded modes: the comparison then runs without it. NULL
 * with HL_ERR_NOMEM, or when a is empty (*n == 0). */
static hl_object_t **dict_snapshot(hl_object_t *a, size_t *n) {
  hl_dict_t *d = (hl_dict_t *)a;
  bool ft = hli_nogil(), shared = false;
  if (ft) shared = hli_container_lock(a, &d->lock);
  hl_object_t **copy = NULL;
  *n = d->used;
  if (*n && (copy = hli_mem_malloc(2 * *n * sizeof *copy))) {
    size_t pos = 0, i = 0;
    hl_object_t *k, *v;
    while (hl_dict_next(a, &pos, &k, &v)) {
      copy[i++] = hl_newref(k);
      copy[i++] = hl_newref(v);
    }
  }
  if (ft) hli_container_unlock(&d->lock, shared);
  if (*n && !copy) hl_err_set(HL_ERR_NOMEM, "out of memory comparing dicts");
  return copy;
}

static int dict_eq(hl_object_t *a, hl_object_t *b) {
  if (hl_dict_size(a) != hl_dict_size(b)) return 0;
  size_t n;
  hl_object_t **items = dict_snapshot(a, &n);
  if (n && !items) return -1;
  int r = n == hl_dict_size(b);
  for (size_t i = 0; r == 1 && i < n; i++) {
    hl_object_t *w = hl_dict_get_ref(b, items[2 * i]);
    r = w ? hl_eq(items[2 * i + 1], w) : hl_err_kind() == HL_ERR_KEY ? 0 : -1;
    if (!w && r == 0) hl_err_clear();
    hl_xdecref(w);
  }
  for (size_t i = 0; i < 2 * n; i++) hl_decref(items[i]);
  if (items) hl_alloc_free(items);
  return r;
}

const hl_type_t hl_dict_type = {
  .name = "dict", .flags = HL_TF_BASETYPE | HL_TF_GC, .kind = HL_K_DICT,
  .traverse = dict_traverse, .traverse_gc = dict_traverse_gc,
  .clear = dict_clear, .dealloc = dict_dealloc,
  .eq = dict_eq};   /* unhashable */

hl_object_t *hl_dict_new(void) {
  hl_tstate_t *ts = &hli_tstate;
  hl_dict_t *d;
  hl_gc_head_t *g = hli_fl_pop(&ts->fl_dict);
  if (g) {
    ts->stats.freelist_hits++;
    g->next = g->prev = 0;
    d = (hl_dict_t *)HL_GC_OBJ(g);
    hli_obj_init_gc(&d->ob, &hl_dict_type);
    d->ob.flags = HL_OF_GC;
  } else {
    d = (hl_dict_t *)hli_gc_alloc(&hl_dict_type, sizeof(hl_dict_t));
    if (HL_UNLIKELY(!d)) return NULL;
  }
  d->used = 0;
  d->lock = 0;
  d->keys = NULL;   /* the table comes with the first insertion */
  if (hli_gc.untrack) hli_gc_link_untracked();
  else hli_gc_link(&d->ob);
  return &d->ob;
}

size_t hl_dict_size(const hl_object_t *d) {
  HL_ASSERT(d->type == &hl_dict_type);
  return hl_atomic_c11_load_relaxed_u32(&((const hl_dict_t *)d)->used);
}

int hl_dict_set(hl_object_t *o, hl_object_t *key, hl_object_t *value) {
  HL_ASSERT(o->type == &hl_dict_type);
  int64_t h = hl_hash(key);
  if (h == -1) return -1;
  hl_dict_t *d = (hl_dict_t *)o;
  if (HL_LIKELY(!hli_nogil())) return hli_dict_insert(d, key, h, value);
  bool shared = hli_container_lock(o, &d->lock);
  /* readers' try-increments of the value succeed (rc=biased) */
  if (shared) hli_rc_set_maybe_weakref(value);
  int r = hli_dict_insert(d, key, h, value);
  hli_container_unlock(&d->lock, shared);
  return r;
}

/* The entry of key, or NULL: absent (*err false) or an error (*err true,
 * recorded). An absent key records nothing, so that a membership test does
 * not pay for an error message. */
static hl_dict_entry_t *find(hl_object_t *o, hl_object_t *key, bool *err) {
  HL_ASSERT(o->type == &hl_dict_type);
  int64_t h = hl_hash(key);
  *err = h == -1;
  if (*err) return NULL;
  hl_dict_t *d = (hl_dict_t *)o;
  return d->keys ? lookup(d->keys, key, h, NULL, err) : NULL;
}

hl_object_t *hl_dict_get(hl_object_t *o, hl_object_t *key) {
  bool err, ft = hli_nogil(), shared = false;
  hl_dict_t *d = (hl_dict_t *)o;
  /* borrowed: without a GIL, safe only while nothing drops the value */
  if (ft) shared = hli_container_lock(o, &d->lock);
  hl_dict_entry_t *e = find(o, key, &err);
  hl_object_t *v = e ? e->value : NULL;
  if (ft) hli_container_unlock(&d->lock, shared);
  if (!v && !err) hl_err_set(HL_ERR_KEY, "key not found");
  return v;
}

/* The lock-free lookup (see the top): 1 with a new reference in *out, 0
 * when the key is absent, -1 to take the lock. */
static int get_ref_unlocked(hl_dict_t *d, hl_object_t *key, int64_t h, hl_object_t **out) {
  if (!hli_qsbr_reader()) return -1;   /* not a QSBR reader */
  /* Acquire: pairs with the release of the unlock after the marking, so
   * that every change made before it (freed at once) is behind us. */
  if (!(hl_atomic_load_acquire_u32(&d->lock) & HLI_LOCK_SHARED)) return -1;   /* gc_internal.h */
  /* Acquire: pairs with the release that published the table. */
  hl_dict_keys_t *k = hl_atomic_c11_load_acquire_ptr((void **)&d->keys);
  if (!k) return 0;
  size_t mask = ((size_t)1 << k->log2) - 1;
  uint64_t perturb = (uint64_t)h;
  size_t i = (size_t)h & mask;
  for (;;) {
    /* Acquire: pairs with the insertion's release; the entry is complete. */
    int32_t ix = hl_atomic_c11_load_acquire_i32(&k->indices[i]);
    if (ix == IX_EMPTY) return 0;
    if (ix >= 0) {
      hl_dict_entry_t *e = &k->entries[ix];
      hl_object_t *ek = hl_atomic_c11_load_acquire_ptr((void **)&e->key);
      /* ek stays alive until our next checkpoint if deleted meanwhile */
      int same = !ek ? 0 : ek == key ? 1 : e->hash == h ? hl_eq(ek, key) : 0;
      if (same < 0) return -1;   /* a failed comparison: again, locked */
      if (same) {
        /* Acquire: pairs with the release of a replacing insert. */
        hl_object_t *v = hl_atomic_c11_load_acquire_ptr((void **)&e->value);
        if (!v || !hli_rc_try_incref(v)) return -1;
        if (hl_atomic_c11_load_acquire_ptr((void **)&e->value) == v &&
            hl_atomic_c11_load_acquire_ptr((void **)&e->key) == ek &&
            hl_atomic_c11_load_acquire_ptr((void **)&d->keys) == k) {
          *out = v;
          return 1;
        }
        hl_decref(v);
        return -1;
      }
    }
    perturb >>= 5;
    i = (i * 5 + 1 + perturb) & mask;
  }
}

hl_object_t *hl_dict_get_ref(hl_object_t *o, hl_object_t *key) {
  HL_ASSERT(o->type == &hl_dict_type);
  hl_dict_t *d = (hl_dict_t *)o;
  bool err = false;
  if (HL_LIKELY(!hli_nogil())) {
    hl_dict_entry_t *e = find(o, key, &err);
    if (e) return hl_newref(e->value);
    if (!err) hl_err_set(HL_ERR_KEY, "key not found");
    return NULL;
  }
  int64_t h = hl_hash(key);
  if (h == -1) return NULL;
  hl_object_t *v = NULL;
  int r = get_ref_unlocked(d, key, h, &v);
  if (r == 1) {
    hli_tstate.stats.reads_unlocked++;
    return v;
  }
  if (r == -1) {
    hli_tstate.stats.reads_locked++;
    bool shared = hli_container_lock_for_read(o, &d->lock);
    hl_dict_entry_t *e = d->keys ? lookup(d->keys, key, h, NULL, &err) : NULL;
    if (e) v = hl_newref(e->value);
    hli_container_unlock(&d->lock, shared);
    if (v || err) return v;
  }
  hl_err_set(HL_ERR_KEY, "key not found");
  return NULL;
}

int hl_dict_contains(hl_object_t *o, hl_object_t *key) {
  bool err, ft = hli_nogil(), shared = false;
  hl_dict_t *d = (hl_dict_t *)o;
  if (ft) shared = hli_container_lock(o, &d->lock);
  bool found = find(o, key, &err) != NULL;
  if (ft) hli_container_unlock(&d->lock, shared);
  if (found) return 1;
  return err ? -1 : 0;
}

int hl_dict_del(hl_object_t *o, hl_object_t *key) {
  HL_ASSERT(o->type == &hl_dict_type);
  int64_t h = hl_hash(key);
  if (h == -1) return -1;
  hl_dict_t *d = (hl_dict_t *)o;
  bool err = false, ft = hli_nogil(), shared = false;
  if (ft) shared = hli_container_lock(o, &d->lock);
  size_t slot = 0;
  hl_dict_entry_t *e = d->keys ? lookup(d->keys, key, h, &slot, &err) : NULL;
  if (!e) {
    if (ft) hli_container_unlock(&d->lock, shared);
    if (!err) hl_err_set(HL_ERR_KEY, "key not found");
    return -1;
  }
  hl_object_t *k = e->key, *v = e->value;
  hl_atomic_c11_store_relaxed_i32(&d->keys->indices[slot], IX_DUMMY);
  hl_atomic_c11_store_relaxed_ptr((void **)&e->value, NULL);
  hl_atomic_c11_store_relaxed_ptr((void **)&e->key, NULL);
  hl_atomic_c11_store_relaxed_u32(&d->used, d->used - 1);
  hli_container_drop(k);
  hli_container_drop(v);
  if (ft) hli_container_unlock(&d->lock, shared);
  return 0;
}

bool hl_dict_next(const hl_object_t *o, size_t *pos, hl_object_t **key, hl_object_t **value) {
  HL_ASSERT(o->type == &hl_dict_type);
  const hl_dict_keys_t *k = ((const hl_dict_t *)o)->keys;
  if (!k) return false;
  for (size_t j = *pos; j < k->nentries; j++) {
    const hl_dict_entry_t *e = &k->entries[j];
    if (!e->key) continue;
    *pos = j + 1;
    if (key) *key = e->key;
    if (value) *value = e->value;
    return true;
  }
  *pos = k->nentries;
  return false;
}

void hl_dict_clear(hl_object_t *o) {
  HL_ASSERT(o->type == &hl_dict_type);
  hl_dict_t *d = (hl_dict_t *)o;
  bool ft = hli_nogil(), shared = false;
  if (ft) shared = hli_container_lock(o, &d->lock);
  hl_dict_keys_t *k = take_table(d);
  if (ft) hli_container_unlock(&d->lock, shared);
  release_table(k, shared);
}

hl_object_t *hl_dict_get_cstr(hl_object_t *d, const char *key) {
  hl_object_t *k = hl_str_from(key);
  if (!k) return NULL;
  hl_object_t *v = hl_dict_get(d, k);
  hl_decref(k);
  return v;
}

int hl_dict_set_cstr(hl_object_t *d, const char *key, hl_object_t *value) {
  hl_object_t *k = hl_str_intern_cstr(key);
  if (!k) return -1;
  int r = hl_dict_set(d, k, value);
  hl_decref(k);
  return r;
}
