/* heaplab gc/: the layouts of the object layer, shared by its files.
 *
 * Main types (each object begins with hl_object_t; a container has an
 * hl_gc_head_t just before it, and its block starts at the head):
 *
 *   hl_int_t       header, int64 value                     24 B
 *   hl_float_t     header, double                          24 B
 *   hl_str_t       header, hash, length, bytes + NUL       32 B + len + 1
 *   hl_tuple_t     [gc] header, size, items[size]          16 + 24 + 8 n
 *   hl_list_t      [gc] header, size, allocated, items*    16 + 40
 *   hl_dict_t      [gc] header, used, keys*                16 + 32
 *   hl_instance_t  [gc] header, dict, weaklist, slots[n]   16 + 32 + 8 n
 *   hl_weakref_t   [gc] header, referent, cb, arg, links   16 + 56
 *
 * Per-thread state (hl_tstate_t): the free lists, the trashcan's deferred
 * list and depth, the error indicator, statistics counters folded into the
 * process totals when the thread clears its free lists.
 */
#ifndef HL_GC_INTERNAL_H
#define HL_GC_INTERNAL_H

#include "hl_alloc.h"
#include "hl_gc.h"
#include "hl_lock.h"

/* The GC links (PyGC_Head). Untracked until the collector (a later layer)
 * links them: next == 0. */
typedef struct hl_gc_head {
  uintptr_t next;
  uintptr_t prev;
} hl_gc_head_t;

#define HL_GC_HEAD(o) ((hl_gc_head_t *)(void *)(o) - 1)
#define HL_GC_OBJ(g)  ((hl_object_t *)(void *)((hl_gc_head_t *)(g) + 1))

typedef struct hl_int { hl_object_t ob; int64_t value; } hl_int_t;
typedef struct hl_float { hl_object_t ob; double value; } hl_float_t;
typedef struct hl_str {
  hl_object_t ob;
  int64_t hash;               /* -1 until computed */
  size_t len;
  char data[];                /* len bytes and a NUL */
} hl_str_t;
typedef struct hl_tuple { hl_object_t ob; size_t size; hl_object_t *items[]; } hl_tuple_t;
typedef struct hl_list {
  hl_object_t ob;
  size_t size;                /* 0 <= size <= allocated */
  size_t allocated;
  hl_object_t **items;        /* NULL when allocated == 0 */
} hl_list_t;

/* The dict's table: 2^log2 int32 indexes (-1 empty, -2 deleted, else an
 * entry number), then `usable` entries filled in insertion order.
 *   nentries <= usable = 2^log2 * 2/3;  used <= nentries  */
typedef struct hl_dict_entry { int64_t hash; hl_object_t *key, *value; } hl_dict_entry_t;
typedef struct hl_dict_keys {
  uint8_t log2;
  size_t usable, nentries;
  int32_t *indices;
  hl_dict_entry_t *entries;
} hl_dict_keys_t;
typedef struct hl_dict { hl_object_t ob; size_t used; hl_dict_keys_t *keys; } hl_dict_t;

typedef struct hl_weakref hl_weakref_t;
typedef struct hl_instance {
  hl_object_t ob;
  hl_object_t *dict;          /* NULL until the first attribute */
  hl_weakref_t *weaklist;     /* newest first */
  hl_object_t *slots[];
} hl_instance_t;

struct hl_weakref {
  hl_object_t ob;
  hl_object_t *referent;      /* NULL once the referent died */
  hl_weakref_cb cb;
  void *arg;
  hl_weakref_t *prev, *next;  /* in the referent's weaklist */
};

/* ---- per-thread state ----------------------------------------------------- */
#define HL_FL_FLOAT 100       /* CPython 3.11's PyFloat_MAXFREELIST */
#define HL_FL_TUPLE_SIZES 20  /* tuples of 1..19 items (PyTuple_MAXSAVESIZE) */
#define HL_FL_TUPLE 2000      /* PyTuple_MAXFREELIST */
#define HL_FL_LIST 80
#define HL_FL_DICT 80
#define HL_TRASH_DEPTH 50     /* nested deallocations before deferring */

typedef struct hl_freelist { void *head; uint32_t n; } hl_freelist_t;

typedef struct hl_tstate {
  bool registered;            /* the exit destructor is armed */
  hl_freelist_t fl_float, fl_list, fl_dict;
  hl_freelist_t fl_tuple[HL_FL_TUPLE_SIZES];
  uint32_t trash_depth;
  hl_gc_head_t *trash;        /* deferred containers, linked through gc head next */
  hl_err_t err;
  char errmsg[160];
  hl_obj_stats_t stats;       /* folded into the totals by hl_freelists_clear */
} hl_tstate_t;

extern __thread hl_tstate_t hli_tstate;
extern bool hli_freelists_on;

HL_INTERNAL void hli_tstate_arm(void);

/* Object memory: a block from the object allocator, the header set, rc 1. */
static inline hl_object_t *hli_obj_init(void *mem, const hl_type_t *t) {
  hl_object_t *o = (hl_object_t *)mem;
  o->rc = 1;
  o->flags = 0;
  o->owner = 0;
  o->type = t;
  return o;
}

HL_INTERNAL hl_object_t *hli_obj_alloc(const hl_type_t *t, size_t size);
HL_INTERNAL hl_object_t *hli_gc_alloc(const hl_type_t *t, size_t size);
HL_INTERNAL void hli_obj_free(hl_object_t *o);
HL_INTERNAL void hli_gc_free(hl_object_t *o);
/* A static (never freed) object at start-up: rc 1, or immortal. */
HL_INTERNAL void hli_obj_init_static(hl_object_t *o, const hl_type_t *t);
HL_INTERNAL void hli_make_immortal(hl_object_t *o);

/* Free lists: push a dead object, pop one. */
static inline void *hli_fl_pop(hl_freelist_t *fl) {
  void *p = fl->head;
  if (p) {
    fl->head = *(void **)p;
    fl->n--;
  }
  return p;
}
static inline bool hli_fl_push(hl_freelist_t *fl, uint32_t max, void *p) {
  if (!hli_freelists_on || fl->n >= max) return false;
  if (HL_UNLIKELY(!hli_tstate.registered)) hli_tstate_arm();  /* drained at thread exit */
  *(void **)p = fl->head;
  fl->head = p;
  fl->n++;
  return true;
}

/* Weakrefs of a referent that is about to be freed: cleared, callbacks run. */
HL_INTERNAL void hli_weakrefs_clear(hl_object_t *o);
HL_INTERNAL hl_weakref_t **hli_weaklist(hl_object_t *o);

/* Type start-up and shut-down hooks (object.c calls them in order). */
HL_INTERNAL int hli_int_init(void);
HL_INTERNAL int hli_str_init(void);
HL_INTERNAL void hli_str_fini(void);
HL_INTERNAL void hli_tuple_fini(void);
HL_INTERNAL void hli_class_fini(void);
HL_INTERNAL void hli_freelists_drain(hl_tstate_t *ts);

/* dict internals: the entry holding key (or NULL), for interning. */
HL_INTERNAL hl_dict_entry_t *hli_dict_lookup(hl_dict_t *d, hl_object_t *key, int64_t hash);
HL_INTERNAL int hli_dict_insert(hl_dict_t *d, hl_object_t *key, int64_t hash, hl_object_t *value);
HL_INTERNAL int64_t hli_str_hash(hl_object_t *o);

#endif /* HL_GC_INTERNAL_H */
