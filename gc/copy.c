/* Shallow and deep copies: Python's copy module (Lib/copy.py, its
 * copy.copy and copy.deepcopy, and the library reference's "copy -- Shallow
 * and deep copy operations") over heaplab's built-in types.
 *
 * hl_copy(x), copy.copy:
 *   int, float, str, bool, None, tuple, weakref   x itself (a new reference):
 *       copy.py's _copy_immutable; a tuple is immutable as a whole
 *   list, dict                                     a new container of the same
 *       type holding the same references (list.copy, dict.copy)
 *   instance                                       a new instance of the same
 *       class, the same slot references, a new attribute dict holding the
 *       same references (copyreg's __reduce_ex__ path: y.__dict__.update(state))
 *   proxy                                          a copy of its referent: a
 *       proxy forwards __reduce_ex__, so Python copies what it points to
 *       (HL_ERR_REFERENCE once the referent is gone, as ReferenceError)
 *
 * hl_deepcopy(x), copy.deepcopy: the same atoms returned as themselves;
 * containers copied recursively with a memo, a map from each original to
 * its copy, consulted before copying anything, so that an object reached
 * twice is copied once (shared references stay shared) and a container
 * that reaches itself is copied as a cycle of copies. As in copy.py:
 *   - a list, dict or instance enters the memo as soon as its (empty) copy
 *     exists, before its items are copied: that is what closes cycles;
 *   - a tuple is rebuilt only if some item's copy differs from the item
 *     (_deepcopy_tuple), else it is the original; a tuple cannot be made
 *     before its items, so while they are copied it is "in progress" in the
 *     memo, and reaching it again copies it again (Python recurses again
 *     too); when the copy finishes it returns whatever the memo holds by
 *     then, so that a tuple on a cycle through a list is copied once;
 *   - dict keys are deep-copied as well as values;
 *   - an instance's attribute dict is deep-copied with the memo (Python
 *     deep-copies __dict__ as the reduce state); here the copy's dict is
 *     that very copy, where Python would update a fresh __dict__ from it;
 *   - a weakref is an atom (copy.py's _deepcopy_atomic for weakref.ref); a
 *     proxy is copied as its referent, with the proxy as the memo key (so,
 *     as in Python, [c, proxy(c)] gives two copies of c).
 * Two differences that change no result: a tuple left as is enters the
 * memo too (copy.py does not memoize it; here a tuple shared n times is
 * examined once, not n times), and the memo holds no extra references
 * (copy.py's _keep_alive): nothing the copy reaches is dropped while it runs.
 * A cycle made of tuples alone (C can build one, Python cannot) would make
 * copy.py recurse until RecursionError; here it is HL_ERR_VALUE.
 *
 * No C recursion: the copy walks an explicit stack of frames, one per
 * container being copied, so that a list nested a million levels deep
 * copies in a loop (as object.c's trashcan frees one without deep frames).
 * Each frame hands its next item to `child`, which either returns the
 * item's copy at once (an atom, a memo hit) or pushes a frame for it; a
 * finished frame's copy is delivered to the frame below. Frame i records
 * the nearest frame at or below it that is not a tuple, so reaching a
 * tuple in progress can tell in O(1) whether a mutable container lies on
 * the path since (a legitimate cycle, as in Python) or not (tuples alone).
 *
 * Out of memory (or any error) leaves nothing behind: the copies made so
 * far are first held by one reference each from the memo, then cleared
 * (tp_clear, which breaks any cycle among them), the frames unwound, and
 * the memo's references dropped; NULL is returned with the error set.
 *
 * The original must not change while it is copied (the borrowed reads of
 * hl_list_get and hl_dict_next): under the GIL that is the caller's holding
 * it; without one, no other thread may be changing it. The copies are new
 * objects of the calling thread, tracked by the collector as any others.
 */
#include <string.h>

#include "gc_internal.h"

static inline bool is_atom(const hl_object_t *o) {
  switch (o->type->kind) {
    case HL_K_NONE: case HL_K_BOOL: case HL_K_INT: case HL_K_FLOAT: case HL_K_STR:
    case HL_K_WEAKREF:
      return true;
    default:
      return false;
  }
}

/* ---- shallow copy ------------------------------------------------------------ */
static hl_object_t *copy_list(hl_object_t *o) {
  hl_object_t *c = hl_list_new(0);
  if (!c) return NULL;
  for (size_t i = 0; i < hl_list_size(o); i++) {
    hl_object_t *v = hl_list_get_ref(o, i);
    if (!v) {   /* shrunk meanwhile by another thread: the copy stops there */
      if (hl_err_kind() != HL_ERR_INDEX) goto fail;
      hl_err_clear();
      break;
    }
    int r = hl_list_append(c, v);
    hl_decref(v);
    if (r != 0) goto fail;
  }
  return c;
fail:
  hl_decref(c);
  return NULL;
}

static hl_object_t *copy_dict(hl_object_t *o) {
  hl_object_t *c = hl_dict_new();
  if (!c) return NULL;
  size_t pos = 0;
  hl_object_t *k, *v;
  while (hl_dict_next(o, &pos, &k, &v))
    if (hl_dict_set(c, k, v) != 0) {
      hl_decref(c);
      return NULL;
    }
  return c;
}

static hl_object_t *copy_instance(hl_object_t *o) {
  hl_instance_t *in = (hl_instance_t *)o;
  hl_object_t *c = hl_instance_new((hl_type_t *)(uintptr_t)o->type);
  if (!c) return NULL;
  for (uint32_t i = 0; i < o->type->nslots; i++) hl_slot_set(c, i, in->slots[i]);
  if (in->dict && !(((hl_instance_t *)c)->dict = copy_dict(in->dict))) {
    hl_decref(c);
    return NULL;
  }
  return c;
}

hl_object_t *hl_copy(hl_object_t *o) {
  switch (o->type->kind) {
    case HL_K_LIST: return copy_list(o);
    case HL_K_DICT: return copy_dict(o);
    case HL_K_INSTANCE: return copy_instance(o);
    case HL_K_PROXY: {
      hl_object_t *r = hl_weakref_get(o);
      if (!r) {
        hl_err_set(HL_ERR_REFERENCE, "weakly-referenced object no longer exists");
        return NULL;
      }
      hl_object_t *c = copy_instance(r);
      hl_decref(r);
      return c;
    }
    default:   /* the atoms and tuples */
      return hl_newref(o);
  }
}

/* ---- deep copy: the memo ------------------------------------------------------
 * Open addressing on the original's address, at most half full. copy is
 * borrowed (module comment: every copy is held by its frame, its parent's
 * copy, a tuple frame's items or, when it is the original, the original's
 * owner); NULL while a tuple is in progress, and then frame is the index
 * of its innermost frame. */
typedef struct memo_entry {
  hl_object_t *key;
  hl_object_t *copy;
  size_t frame;
} memo_entry_t;

enum { FR_LIST, FR_DICT, FR_INSTANCE, FR_TUPLE };
enum { DICT_NEXT, DICT_KEY, DICT_VALUE };   /* a dict frame: what the next child is */

typedef struct frame {
  hl_object_t *orig;        /* borrowed; a reference when owns_orig (a proxy's referent) */
  hl_object_t *copy;        /* list, dict, instance: the copy (the frame's reference) */
  union {
    hl_object_t **items;    /* tuple: the items' copies so far (references) */
    struct {
      hl_object_t *key;     /* dict: the key's copy, waiting for its value's */
      hl_object_t *value;   /* dict: the original value, borrowed */
    } d;
  } u;
  size_t pos;               /* the next item or slot; a dict's hl_dict_next cursor */
  size_t mut_below;         /* 1 + the nearest non-tuple frame at or below; 0: none */
  uint8_t kind;             /* FR_* */
  uint8_t phase;            /* a dict: DICT_* */
  bool owns_orig;
} frame_t;

typedef struct deep {
  memo_entry_t *memo;
  size_t memo_cap, memo_used;
  frame_t *frames;
  size_t depth, frames_cap;
} deep_t;

static inline size_t memo_slot(const deep_t *cx, const hl_object_t *key) {
  uint64_t h = (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 17) & (cx->memo_cap - 1);
}

/* key's entry, or the empty one where it would go. */
static memo_entry_t *memo_probe(deep_t *cx, const hl_object_t *key) {
  for (size_t i = memo_slot(cx, key);; i = (i + 1) & (cx->memo_cap - 1)) {
    memo_entry_t *e = &cx->memo[i];
    if (e->key == key || !e->key) return e;
  }
}

static memo_entry_t *memo_find(deep_t *cx, const hl_object_t *key) {
  memo_entry_t *e = memo_probe(cx, key);
  return e->key ? e : NULL;
}

static int memo_grow(deep_t *cx) {
  size_t cap = cx->memo_cap ? cx->memo_cap * 2 : 64;
  memo_entry_t *m = hli_mem_malloc(cap * sizeof *m), *old = cx->memo;
  if (!m) {
    hl_err_set(HL_ERR_NOMEM, "out of memory growing deepcopy's memo to %zu entries", cap);
    return -1;
  }
  memset(m, 0, cap * sizeof *m);
  size_t old_cap = cx->memo_cap;
  cx->memo = m;
  cx->memo_cap = cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].key) *memo_probe(cx, old[i].key) = old[i];
  hl_alloc_free(old);
  return 0;
}

/* A new entry for key (absent). NULL with the error set. */
static memo_entry_t *memo_add(deep_t *cx, hl_object_t *key, hl_object_t *copy, size_t frame) {
  if ((cx->memo_used + 1) * 2 > cx->memo_cap && memo_grow(cx) != 0) return NULL;
  memo_entry_t *e = memo_probe(cx, key);
  HL_ASSERT(e->key == NULL);
  *e = (memo_entry_t){key, copy, frame};
  cx->memo_used++;
  return e;
}

/* ---- deep copy: the frames ------------------------------------------------------ */
static frame_t *push_frame(deep_t *cx, uint8_t kind, hl_object_t *orig) {
  if (cx->depth == cx->frames_cap) {
    size_t cap = cx->frames_cap ? cx->frames_cap * 2 : 32;
    frame_t *f = hli_mem_realloc(cx->frames, cap * sizeof *f);
    if (!f) {
      hl_err_set(HL_ERR_NOMEM, "out of memory growing deepcopy's stack to %zu frames", cap);
      return NULL;
    }
    cx->frames = f;
    cx->frames_cap = cap;
  }
  size_t i = cx->depth++;
  frame_t *f = &cx->frames[i];
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->orig = orig;
  f->mut_below = kind != FR_TUPLE ? i + 1 : (i ? cx->frames[i - 1].mut_below : 0);
  return f;
}

/* Drops what a frame holds (its copy, its items' copies, a key) and pops it. */
static void pop_frame(deep_t *cx) {
  frame_t *f = &cx->frames[--cx->depth];
  if (f->kind == FR_TUPLE) {
    if (f->u.items) {
      for (size_t i = 0; i < f->pos; i++) hl_xdecref(f->u.items[i]);
      hl_alloc_free(f->u.items);
    }
  } else {
    hl_xdecref(f->copy);
    if (f->kind == FR_DICT) hl_xdecref(f->u.d.key);
  }
  if (f->owns_orig) hl_decref(f->orig);
}

/* A frame for a list, dict or instance, whose empty copy enters the memo
 * under key at once. Steals orig when owns_orig (even on failure). */
static int push_container(deep_t *cx, hl_object_t *key, hl_object_t *orig, bool owns_orig) {
  uint8_t kind = orig->type->kind == HL_K_LIST ? FR_LIST
               : orig->type->kind == HL_K_DICT ? FR_DICT : FR_INSTANCE;
  frame_t *f = push_frame(cx, kind, orig);
  if (!f) {
    if (owns_orig) hl_decref(orig);
    return -1;
  }
  f->owns_orig = owns_orig;
  f->copy = kind == FR_LIST ? hl_list_new(0)
          : kind == FR_DICT ? hl_dict_new()
          : hl_instance_new((hl_type_t *)(uintptr_t)orig->type);
  if (!f->copy || !memo_add(cx, key, f->copy, cx->depth - 1)) {
    pop_frame(cx);
    return -1;
  }
  return 0;
}

/* A frame for a tuple of n > 0 items; e: its memo entry when it is in
 * progress already (re-entered through a cycle), else NULL. */
static int push_tuple(deep_t *cx, hl_object_t *t, memo_entry_t *e) {
  size_t n = hl_tuple_size(t), at = cx->depth;
  hl_object_t **items = hli_mem_malloc(n * sizeof *items);
  if (!items) {
    hl_err_set(HL_ERR_NOMEM, "out of memory copying a tuple of %zu items", n);
    return -1;
  }
  frame_t *f = push_frame(cx, FR_TUPLE, t);
  if (!f) {
    hl_alloc_free(items);
    return -1;
  }
  f->u.items = items;
  if (e) {
    e->frame = at;
  } else if (!memo_add(cx, t, NULL, at)) {
    pop_frame(cx);
    return -1;
  }
  return 0;
}

/* The copy of x, an item of the top frame (NULL: an empty slot): 1 with
 * *out a new reference (or NULL for NULL), 0 when a frame was pushed for
 * it (its copy is delivered when it finishes), -1 on error. */
static int child(deep_t *cx, hl_object_t *x, hl_object_t **out) {
  *out = NULL;
  if (!x) return 1;
  if (is_atom(x)) {
    *out = hl_newref(x);
    return 1;
  }
  memo_entry_t *e = memo_find(cx, x);
  if (e && e->copy) {
    *out = hl_newref(e->copy);
    return 1;
  }
  switch (x->type->kind) {
    case HL_K_TUPLE:
      if (hl_tuple_size(x) == 0) {
        *out = hl_newref(x);
        return 1;
      }
      if (e) {   /* in progress: again only if a mutable container lies between */
        size_t m = cx->frames[cx->depth - 1].mut_below;
        if (m == 0 || m - 1 < e->frame) {
          hl_err_set(HL_ERR_VALUE, "deepcopy: a cycle made of tuples alone");
          return -1;
        }
      }
      return push_tuple(cx, x, e) == 0 ? 0 : -1;
    case HL_K_PROXY: {
      hl_object_t *r = hl_weakref_get(x);
      if (!r) {
        hl_err_set(HL_ERR_REFERENCE, "weakly-referenced object no longer exists");
        return -1;
      }
      return push_container(cx, x, r, true) == 0 ? 0 : -1;
    }
    case HL_K_LIST: case HL_K_DICT: case HL_K_INSTANCE:
      return push_container(cx, x, x, false) == 0 ? 0 : -1;
    default:
      hl_err_set(HL_ERR_TYPE, "deepcopy: cannot copy a '%s' object", x->type->name);
      return -1;
  }
}

/* The top frame's next item to copy: true and *x (NULL for an empty slot),
 * or false when the frame is complete. */
static bool next_item(frame_t *f, hl_object_t **x) {
  hl_object_t *o = f->orig;
  switch (f->kind) {
    case FR_LIST:
      if (f->pos >= hl_list_size(o)) return false;
      *x = hl_list_get(o, f->pos);
      return true;
    case FR_TUPLE:
      if (f->pos >= hl_tuple_size(o)) return false;
      *x = hl_tuple_get(o, f->pos);
      return true;
    case FR_INSTANCE:
      if (f->pos < o->type->nslots) {
        *x = ((hl_instance_t *)o)->slots[f->pos];
        return true;
      }
      if (f->pos > o->type->nslots) return false;
      *x = ((hl_instance_t *)o)->dict;   /* the attribute dict comes last */
      return true;
    default: {   /* FR_DICT */
      if (f->phase == DICT_VALUE) {
        *x = f->u.d.value;
        return true;
      }
      hl_object_t *k, *v;
      if (!hl_dict_next(o, &f->pos, &k, &v)) return false;
      f->u.d.value = v;
      f->phase = DICT_KEY;
      *x = k;
      return true;
    }
  }
}

/* Hands c (NULL for an empty slot) to frame f as its current item: stolen
 * on success; on failure c is still the caller's (the memo may point at
 * it: unwind drops it after taking the memo's references). */
static int deliver(frame_t *f, hl_object_t *c) {
  int r = 0;
  switch (f->kind) {
    case FR_LIST:
      if ((r = hl_list_append(f->copy, c)) != 0) return r;
      hl_decref(c);
      f->pos++;
      break;
    case FR_TUPLE:
      f->u.items[f->pos++] = c;
      break;
    case FR_INSTANCE: {
      hl_instance_t *in = (hl_instance_t *)f->copy;
      /* a fresh instance: every slot and the dict are empty */
      /* release: as hl_slot_set stores (a concurrent scan's reads) */
      if (f->pos < f->orig->type->nslots)
        hl_atomic_c11_store_release_ptr((void **)&in->slots[f->pos], c);
      else
        hl_atomic_c11_store_release_ptr((void **)&in->dict, c);
      f->pos++;
      break;
    }
    default:   /* FR_DICT */
      if (f->phase == DICT_KEY) {
        f->u.d.key = c;
        f->phase = DICT_VALUE;
      } else {
        if ((r = hl_dict_set(f->copy, f->u.d.key, c)) != 0) return r;
        hl_clear(&f->u.d.key);
        hl_decref(c);
        f->phase = DICT_NEXT;
      }
      break;
  }
  return r;
}

/* Finishes the top frame: *out is its copy (a new reference), and the frame
 * is popped. */
static int finish(deep_t *cx, hl_object_t **out) {
  frame_t *f = &cx->frames[cx->depth - 1];
  if (f->kind != FR_TUPLE) {
    *out = f->copy;
    f->copy = NULL;
    pop_frame(cx);
    return 0;
  }
  hl_object_t *t = f->orig, *res;
  memo_entry_t *e = memo_find(cx, t);
  size_t n = f->pos;
  bool same = true;
  for (size_t i = 0; i < n && same; i++) same = f->u.items[i] == hl_tuple_get(t, i);
  if (e->copy) {   /* copied meanwhile by a frame above, reached through a cycle */
    res = hl_newref(e->copy);
  } else if (same) {
    res = hl_newref(t);
  } else {
    if (!(res = hl_tuple_new(n))) return -1;   /* the frame is unwound by the caller */
    for (size_t i = 0; i < n; i++) {
      ((hl_tuple_t *)res)->items[i] = f->u.items[i];   /* stolen */
      f->u.items[i] = NULL;
    }
  }
  e->copy = res;
  pop_frame(cx);
  *out = res;
  return 0;
}

/* After an error: every copy made so far goes, cycles among them included. */
static void unwind(deep_t *cx, hl_object_t *pending) {
  for (size_t i = 0; i < cx->memo_cap; i++) {
    memo_entry_t *e = &cx->memo[i];
    if (e->key && e->copy && e->copy != e->key) hl_incref(e->copy);
    else if (e->key) e->copy = NULL;   /* in progress, or the original: nothing held */
  }
  for (size_t i = 0; i < cx->memo_cap; i++) {
    hl_object_t *c = cx->memo[i].copy;
    if (c && c->type->kind != HL_K_TUPLE) c->type->clear(c);
  }
  while (cx->depth) pop_frame(cx);
  hl_xdecref(pending);
  for (size_t i = 0; i < cx->memo_cap; i++) hl_xdecref(cx->memo[i].copy);
}

hl_object_t *hl_deepcopy(hl_object_t *o) {
  deep_t cx = {0};
  hl_object_t *c = NULL;
  int r = memo_grow(&cx) == 0 ? child(&cx, o, &c) : -1;
  while (r == 0) {
    frame_t *f = &cx.frames[cx.depth - 1];
    hl_object_t *x;
    if (next_item(f, &x)) {
      r = child(&cx, x, &c);
      if (r == 1) {
        r = deliver(&cx.frames[cx.depth - 1], c) == 0 ? 0 : -1;
        if (r == 0) c = NULL;   /* else c is unwind's */
      }
      continue;
    }
    if (finish(&cx, &c) != 0) {
      r = -1;
      break;
    }
    if (cx.depth == 0) {
      r = 1;
      break;
    }
    if (deliver(&cx.frames[cx.depth - 1], c) != 0) {
      r = -1;
      break;
    }
    c = NULL;
  }
  if (r < 0) {
    unwind(&cx, c);
    c = NULL;
  }
  hl_alloc_free(cx.memo);
  hl_alloc_free(cx.frames);
  return c;
}
