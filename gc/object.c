/* The object layer's core: the runtime, deallocation, and the trashcan.
 *
 * Deallocation (hl_obj_dealloc, reached when a count drops to zero) does,
 * in order:
 *   1. the finalizer, once per object (PEP 442): the object is resurrected
 *      for the call (rc = 1) and, if the finalizer stored a new reference
 *      somewhere, it stays alive; HL_OF_FINALIZED keeps the finalizer from
 *      running a second time when it dies again;
 *   2. its weak references are cleared and their callbacks run, so that no
 *      callback can reach the dying object (weakref.c);
 *   3. the type's dealloc, which drops what the object references.
 * A leaf type (HL_TF_LEAF: int, float, str) skips steps 1 and 2 and the
 * trashcan below. Step 3 recurses through nested containers: freeing a list nested a
 * million levels deep would need a million C frames. The trashcan (CPython's
 * Py_TRASHCAN_BEGIN, Include/cpython/object.h) bounds the recursion: past
 * HL_TRASH_DEPTH nested deallocations a container is pushed on a per-thread
 * list, linked through its GC head (unused by a dead object), and the
 * outermost deallocation empties that list in a loop. The C stack depth is
 * then at most HL_TRASH_DEPTH type deallocations, whatever the structure.
 *
 * Object memory comes from the object allocator (hl_alloc_malloc: the pools,
 * or whichever --alloc chose). A container's block starts at its GC head.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gc_internal.h"

__thread hl_tstate_t hli_tstate;
bool hli_freelists_on = true;

static bool runtime_ready;
static bool alloc_ours;             /* hl_runtime_init initialised the allocator */
static pthread_key_t tstate_key;
static pthread_once_t tstate_once = PTHREAD_ONCE_INIT;
static hl_spinlock_t totals_lock = HL_SPINLOCK_INITIALIZER;
static hl_obj_stats_t totals;

/* ---- errors ----------------------------------------------------------------- */
hl_err_t hl_err_kind(void) { return hli_tstate.err; }
const char *hl_err_message(void) { return hli_tstate.err ? hli_tstate.errmsg : ""; }
void hl_err_clear(void) { hli_tstate.err = HL_ERR_OK; hli_tstate.errmsg[0] = '\0'; }
void hl_err_set(hl_err_t kind, const char *fmt, ...) {
  hli_tstate.err = kind;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(hli_tstate.errmsg, sizeof hli_tstate.errmsg, fmt, ap);
  va_end(ap);
}

/* ---- per-thread state --------------------------------------------------------- */
static void fold_stats(hl_tstate_t *ts) {
#if HL_RC_STATS
  /* the calling thread's: ts is always its own hli_tstate */
  ts->stats.rc_ops_plain += hl_rc_stat_ops[HLI_RC_STAT_PLAIN];
  ts->stats.rc_ops_atomic += hl_rc_stat_ops[HLI_RC_STAT_ATOMIC];
  ts->stats.rc_ops_immortal += hl_rc_stat_ops[HLI_RC_STAT_IMMORTAL];
  memset(hl_rc_stat_ops, 0, sizeof hl_rc_stat_ops);
#endif
  hl_spinlock_lock(&totals_lock);
#define FOLD_(field, where, json, what) totals.field += ts->stats.field;
  HL_OBJ_STATS(FOLD_)
#undef FOLD_
  hl_spinlock_unlock(&totals_lock);
  memset(&ts->stats, 0, sizeof ts->stats);
}

/* At thread exit: the free lists go back to the allocator. */
static void tstate_exit(void *unused) {
  (void)unused;
  hl_tstate_t *ts = &hli_tstate;
  hl_freelists_clear();
  /* registered stays true and the room 0: an object that dies later in
   * this thread's exit goes straight back to the allocator. */
  ts->fl_float.room = ts->fl_list.room = ts->fl_dict.room = ts->fl_keys.room = 0;
  for (int i = 0; i < HL_FL_TUPLE_SIZES; i++) ts->fl_tuple[i].room = 0;
}

static void tstate_key_create(void) {
  if (pthread_key_create(&tstate_key, tstate_exit) != 0) hl_die("pthread_key_create failed");
}

static void fl_set_room(hl_freelist_t *fl, uint32_t max) {
  uint32_t n = 0;
  for (void *p = fl->head; p; p = *(void **)p) n++;
  fl->room = hli_freelists_on && n < max ? max - n : 0;
}

void hli_tstate_arm(void) {
  hl_tstate_t *ts = &hli_tstate;
  pthread_once(&tstate_once, tstate_key_create);
  ts->registered = true;
  pthread_setspecific(tstate_key, ts);
  fl_set_room(&ts->fl_float, HL_FL_FLOAT);
  fl_set_room(&ts->fl_list, HL_FL_LIST);
  fl_set_room(&ts->fl_dict, HL_FL_DICT);
  fl_set_room(&ts->fl_keys, HL_FL_KEYS);
  fl_set_room(&ts->fl_tuple[0], 0);   /* the empty tuple is a singleton */
  for (int i = 1; i < HL_FL_TUPLE_SIZES; i++) fl_set_room(&ts->fl_tuple[i], HL_FL_TUPLE);
}

bool hli_fl_push_first(hl_freelist_t *fl, void *p) {
  hli_tstate_arm();
  return fl->room ? hli_fl_push(fl, p) : false;
}

void hl_freelists_clear(void) {
  hl_tstate_t *ts = &hli_tstate;
  hli_freelists_drain(ts);
  fold_stats(ts);
}

void hl_obj_stats(hl_obj_stats_t *s) {
  fold_stats(&hli_tstate);
  hl_spinlock_lock(&totals_lock);
  *s = totals;
  hl_spinlock_unlock(&totals_lock);
}

/* ---- memory ---------------------------------------------------------------------- */
/* The block starts hli_rc_prefix bytes before the object (or its GC head):
 * room for rc=biased's shared count. */
hl_object_t *hli_obj_alloc(const hl_type_t *t, size_t size) {
  size_t prefix = hli_rc_prefix;
  char *mem = hli_mem_malloc(prefix + size);
  if (HL_UNLIKELY(!mem)) {
    hl_err_set(HL_ERR_NOMEM, "out of memory allocating a %s of %zu bytes", t->name, size);
    return NULL;
  }
  hli_tstate.stats.allocated++;
  return hli_obj_init(mem + prefix, t);
}

hl_object_t *hli_gc_alloc(const hl_type_t *t, size_t size) {
  size_t prefix = hli_rc_prefix;
  char *mem = hli_mem_malloc(prefix + sizeof(hl_gc_head_t) + size);
  if (HL_UNLIKELY(!mem)) {
    hl_err_set(HL_ERR_NOMEM, "out of memory allocating a %s of %zu bytes", t->name, size);
    return NULL;
  }
  hl_gc_head_t *g = (hl_gc_head_t *)(void *)(mem + prefix);
  g->next = g->prev = 0;
  hli_tstate.stats.allocated++;
  hl_object_t *o = hli_obj_init_gc(HL_GC_OBJ(g), t);
  o->flags = HL_OF_GC;
  return o;
}

void hli_obj_free(hl_object_t *o) {
  hli_tstate.stats.freed++;
  hl_alloc_free((char *)o - hli_rc_prefix);
}

void hli_gc_free(hl_object_t *o) {
  hli_tstate.stats.freed++;
  hl_alloc_free((char *)HL_GC_HEAD(o) - hli_rc_prefix);
}

/* Static objects carry their prefix themselves (hl_static_object_t and the
 * types' tables); they are never owned. */
void hli_obj_init_static(hl_object_t *o, const hl_type_t *t) {
  uint16_t x = hli_rc_owner_x;
  hli_rc_owner_x = 0;
  hli_obj_init(o, t);
  hli_rc_owner_x = x;
  o->flags = HL_OF_STATIC;
  if (hl_rc_config.immortal) hli_make_immortal(o);
}

void hli_make_immortal(hl_object_t *o) {
  /* the owner says so to hl_incref's other path; the count to anyone */
  hl_atomic_c11_store_relaxed_u16(&o->owner, HL_OWNER_IMMORTAL);
  hl_atomic_c11_store_relaxed_u32(&o->rc, HL_RC_IMMORTAL);
  o->flags |= HL_OF_IMMORTAL;
}

/* ---- deallocation ------------------------------------------------------------------ */

/* Returns true when the finalizer resurrected o. */
static bool run_finalizer(hl_object_t *o) {
  o->flags |= HL_OF_FINALIZED;
  hli_rc_resurrect(o);
  o->type->finalizer(o);
  hli_tstate.stats.finalizers_run++;
  return !hli_rc_drop_resurrected(o);
}

static void trash_drain(hl_tstate_t *ts) {
  while (ts->trash) {
    hl_gc_head_t *g = ts->trash;
    ts->trash = (hl_gc_head_t *)g->next;
    hl_object_t *o = HL_GC_OBJ(g);
    ts->trash_depth++;
    o->type->dealloc(o);
    ts->trash_depth--;
  }
}

static HL_NOINLINE void obj_dealloc_full(hl_object_t *o);

void hl_obj_dealloc(hl_object_t *o) {
  const hl_type_t *t = o->type;
  /* A leaf (int, float, str) has no finalizer, no weakrefs and nothing to
   * drop, so it cannot recurse: straight to its dealloc, as _Py_Dealloc
   * does for every type. Both branches are tail calls, so this costs no
   * stack frame. */
  if (HL_LIKELY(t->flags & HL_TF_LEAF)) t->dealloc(o);
  else obj_dealloc_full(o);
}

static void obj_dealloc_full(hl_object_t *o) {
  const hl_type_t *t = o->type;
  if (t->finalizer && !(o->flags & HL_OF_FINALIZED) && run_finalizer(o)) return;
  if (t->flags & HL_TF_WEAKREFS) {
    hl_weakref_t **wl = hli_weaklist(o);
    if (*wl) {
      /* Callbacks see a dead referent; keep the count at zero meanwhile
       * (a callback that touches the object through a strong reference it
       * kept elsewhere is the program's bug, as in CPython). */
      hli_weakrefs_clear(o);
    }
  }
  if (o->flags & HL_OF_GC) hli_gc_unlink(o);
  hl_tstate_t *ts = &hli_tstate;
  if (ts->trash_depth >= HL_TRASH_DEPTH && (o->flags & HL_OF_GC)) {
    hl_gc_head_t *g = HL_GC_HEAD(o);
    g->next = (uintptr_t)ts->trash;
    ts->trash = g;
    ts->stats.trash_deferred++;
    return;
  }
  ts->trash_depth++;
  t->dealloc(o);
  ts->trash_depth--;
  if (ts->trash_depth == 0 && ts->trash) trash_drain(ts);
}

/* ---- None and bool ------------------------------------------------------------------- */
static void dealloc_static(hl_object_t *o) {
  hl_die("deallocating %s: a reference count went below what was taken", o->type->name);
}
static int64_t none_hash(hl_object_t *o) { return (int64_t)((uintptr_t)o >> 4); }
static int64_t bool_hash(hl_object_t *o) { return o == hl_True ? 1 : 0; }

const hl_type_t hl_none_type = {
  .name = "NoneType", .flags = HL_TF_BASETYPE, .kind = HL_K_NONE,
  .dealloc = dealloc_static, .hash = none_hash};
const hl_type_t hl_bool_type = {
  .name = "bool", .flags = HL_TF_BASETYPE, .kind = HL_K_BOOL,
  .dealloc = dealloc_static, .hash = bool_hash};

hl_static_object_t hl_none_static = {0, {1, HL_OF_STATIC, 0, &hl_none_type}};
hl_static_object_t hl_true_static = {0, {1, HL_OF_STATIC, 0, &hl_bool_type}};
hl_static_object_t hl_false_static = {0, {1, HL_OF_STATIC, 0, &hl_bool_type}};

/* ---- keys ------------------------------------------------------------------------------ */
int64_t hl_hash(hl_object_t *o) {
  if (!o->type->hash) {
    hl_err_set(HL_ERR_TYPE, "unhashable type: '%s'", o->type->name);
    return -1;
  }
  return o->type->hash(o);
}

/* int, float and bool compare by value across types. */
static bool is_number(const hl_object_t *o) {
  uint32_t k = o->type->kind;
  return k == HL_K_INT || k == HL_K_FLOAT || k == HL_K_BOOL;
}

static int number_eq(hl_object_t *a, hl_object_t *b) {
  bool af = a->type->kind == HL_K_FLOAT, bf = b->type->kind == HL_K_FLOAT;
  if (!af && !bf) return hl_int_value(a) == hl_int_value(b);
  double x = af ? hl_float_value(a) : (double)hl_int_value(a);
  double y = bf ? hl_float_value(b) : (double)hl_int_value(b);
  if (af != bf) {
    /* int against float: equal only when the float is exactly that integer */
    int64_t i = af ? hl_int_value(b) : hl_int_value(a);
    double f = af ? x : y;
    return f >= -9223372036854775808.0 && f < 9223372036854775808.0 && (int64_t)f == i &&
           (double)i == f;
  }
  return x == y;
}

int hl_eq(hl_object_t *a, hl_object_t *b) {
  if (a == b) return 1;
  if (is_number(a) && is_number(b)) return number_eq(a, b);
  if (a->type != b->type || !a->type->eq) return 0;
  return a->type->eq(a, b);
}

int hl_traverse(hl_object_t *o, hl_visit_fn visit, void *arg) {
  return o->type->traverse ? o->type->traverse(o, visit, arg) : 0;
}

/* ---- runtime ----------------------------------------------------------------------------- */
bool hl_runtime_ready(void) { return runtime_ready; }
bool hl_runtime_gil(void) { return !hli_nogil(); }

int hl_runtime_init(const hl_config_t *c, char *err, size_t errlen) {
  if (runtime_ready) {
    snprintf(err, errlen, "hl_runtime_init: the runtime is already initialised");
    return -1;
  }
  /* The strategies asked for are built and go together: the driver's own
   * checks, again, for a program that sets the configuration itself. */
  if (hl_config_check_combinations(c, err, errlen) != 0 ||
      hl_config_check_available(c, HL_OPT_BIT(HL_OPT_RC) | HL_OPT_BIT(HL_OPT_GC), err, errlen) != 0)
    return -1;
  /* statistics count from here */
  hl_spinlock_lock(&totals_lock);
  memset(&totals, 0, sizeof totals);
  hl_spinlock_unlock(&totals_lock);
  memset(&hli_tstate.stats, 0, sizeof hli_tstate.stats);
  /* HEAPLAB_FAIL_*: counted from here, the allocator's own start included */
  if (hl_fail_from_env(err, errlen) != 0) return -1;
  alloc_ours = false;
  if (!hl_alloc_state.initialized) {
    int rc = hl_alloc_init(c, err, errlen);
    if (rc != 0) return rc;
    alloc_ours = true;
  }
  hli_rc_init(c);
  hli_freelists_on = c->freelists;
  if (hli_gc_init(c, err, errlen) != 0) return -1;
  /* The threads' policy follows from the refcount mode's row: a GIL exactly
   * when its counts are plain; without one, attached threads are QSBR
   * readers (shared containers are read without a lock) and the collector
   * stops the world. Set while no thread is attached (a micro-benchmark
   * that restarts the runtime from an attached thread keeps its own). */
  if (hl_thread_count() == 0) {
    hl_gil_init(!hli_nogil(), c->switch_interval_us);
    hl_gil_set_policy(c->gil);
    hl_thread_qsbr_enable(hli_nogil());
    hl_stw_set_report_us(hli_nogil() ? c->stw_report_us : 0);
    hl_stw_hist_reset();
  }
  hli_obj_init_static(hl_None, &hl_none_type);
  hli_obj_init_static(hl_True, &hl_bool_type);
  hli_obj_init_static(hl_False, &hl_bool_type);
  if (hli_int_init() != 0 || hli_str_init() != 0 || hli_tuple_init() != 0) {
    snprintf(err, errlen, "hl_runtime_init: %s", hl_err_message());
    /* what was made goes, as in hl_runtime_fini: a later start begins
     * from nothing rather than on top of a half-made runtime */
    runtime_ready = true;
    hl_runtime_fini();
    return -ENOMEM;
  }
  runtime_ready = true;
  hli_tstate_arm();
  return 0;
}

void hl_runtime_fini(void) {
  if (!runtime_ready) return;
  hli_str_fini();
  hli_tuple_fini();
  hli_gc_fini();
  hl_freelists_clear();   /* what gc.garbage held */
  hli_class_fini();
  runtime_ready = false;
  if (alloc_ours) {
    hl_alloc_collect();
    alloc_ours = false;
  }
}

/* ---- free lists ------------------------------------------------------------------------- */
/* objects: the entries are dead objects (a container's GC head, or the
 * object itself), counted as freed now; their blocks start hli_rc_prefix
 * bytes earlier. */
static void drain(hl_freelist_t *fl, bool objects) {
  void *p;
  while ((p = hli_fl_pop(fl))) {
    if (objects) {
      hl_alloc_free((char *)p - hli_rc_prefix);
      hli_tstate.stats.freed++;
    } else {
      hl_alloc_free(p);
    }
  }
}

void hli_freelists_drain(hl_tstate_t *ts) {
  drain(&ts->fl_float, true);
  drain(&ts->fl_list, true);
  drain(&ts->fl_dict, true);
  drain(&ts->fl_keys, false);   /* dict tables */
  for (int i = 0; i < HL_FL_TUPLE_SIZES; i++) drain(&ts->fl_tuple[i], true);
}
