/* Weak references and proxies (Python's weakref.ref and weakref.proxy;
 * CPython Objects/weakrefobject.c).
 *
 * A weakref does not keep its referent alive. The referent (an instance)
 * heads a doubly linked list of the weakrefs to it, newest first. When the
 * referent is about to be freed (object.c, after its finalizer):
 *   1. every weakref in the list is cleared (referent = NULL) and unlinked,
 *      so that no callback can reach the dying object through any of them;
 *   2. then the callbacks run, newest weakref first, each with its weakref
 *      held alive for the call.
 * A weakref that dies first unlinks itself; its callback never runs.
 * A proxy is a weakref whose attribute access forwards to the referent
 * (instance.c) and fails with HL_ERR_REFERENCE once the referent is gone.
 *
 * Without a GIL (rc=atomic, rc=biased) a referent's list is changed and read
 * under one of 64 spinlocks picked by the referent's address (CPython 3.13t
 * stripes its weakref locks the same way). A weakref's referent only ever
 * changes to NULL, under that lock, so a reader that finds it set and the
 * same again under the lock may take a reference; with a try-increment, as
 * the referent may be dying (its count at zero, its weakrefs not cleared
 * yet). A weakref on the list of a dying referent may be dying too: the
 * clearing thread runs the callback only of those it can take a reference
 * to.
 */
#include "gc_internal.h"

#define STRIPES 64
static hl_spinlock_t stripes[STRIPES];

static hl_spinlock_t *stripe(const hl_object_t *r) {
  return &stripes[((uintptr_t)r >> 4) % STRIPES];
}
static void wr_lock(const hl_object_t *r) {
  if (hli_nogil()) hl_spinlock_lock(stripe(r));
}
static void wr_unlock(const hl_object_t *r) {
  if (hli_nogil()) hl_spinlock_unlock(stripe(r));
}
static hl_object_t *referent_of(const hl_weakref_t *wr) {
  return hl_atomic_c11_load_relaxed_ptr((void *const *)&wr->referent);
}

/* Under r's stripe lock (free-threaded modes). */
static void unlink_locked(hl_weakref_t *wr, hl_object_t *r) {
  hl_weakref_t **head = hli_weaklist(r);
  if (wr->prev) wr->prev->next = wr->next;
  else *head = wr->next;
  if (wr->next) wr->next->prev = wr->prev;
  wr->prev = wr->next = NULL;
  hl_atomic_c11_store_relaxed_ptr((void **)&wr->referent, NULL);
}

void hli_weakref_unlink(hl_weakref_t *wr) {
  hl_object_t *r = referent_of(wr);
  if (!r) return;
  wr_lock(r);
  if (referent_of(wr) == r) unlink_locked(wr, r);   /* not cleared meanwhile */
  wr_unlock(r);
}

static void weakref_clear(hl_object_t *o) { hli_weakref_unlink((hl_weakref_t *)o); }

static void weakref_dealloc(hl_object_t *o) {
  hli_weakref_unlink((hl_weakref_t *)o);
  hli_gc_free(o);
}

static int64_t weakref_hash(hl_object_t *o) {
  int64_t h = (int64_t)((uintptr_t)o >> 4);
  return h == -1 ? -2 : h;
}

const hl_type_t hl_weakref_type = {
  .name = "weakref", .flags = HL_TF_BASETYPE | HL_TF_GC, .kind = HL_K_WEAKREF,
  .clear = weakref_clear, .dealloc = weakref_dealloc, .hash = weakref_hash};
const hl_type_t hl_proxy_type = {
  .name = "weakproxy", .flags = HL_TF_BASETYPE | HL_TF_GC, .kind = HL_K_PROXY,
  .clear = weakref_clear, .dealloc = weakref_dealloc};   /* proxies are unhashable */

static hl_object_t *new_wr(const hl_type_t *t, hl_object_t *referent, hl_weakref_cb cb, void *arg) {
  if (!(referent->type->flags & HL_TF_WEAKREFS)) {
    hl_err_set(HL_ERR_TYPE, "cannot create weak reference to '%s' object", referent->type->name);
    return NULL;
  }
  hl_weakref_t *wr = (hl_weakref_t *)hli_gc_alloc(t, sizeof(hl_weakref_t));
  if (HL_UNLIKELY(!wr)) return NULL;
  hli_rc_set_maybe_weakref(referent);
  wr->referent = referent;
  wr->cb = cb;
  wr->arg = arg;
  hl_weakref_t **head = hli_weaklist(referent);
  wr->prev = NULL;
  wr_lock(referent);
  wr->next = *head;
  if (*head) (*head)->prev = wr;
  *head = wr;
  wr_unlock(referent);
  hli_gc_link(&wr->ob);
  return &wr->ob;
}

hl_object_t *hl_weakref_new(hl_object_t *referent, hl_weakref_cb cb, void *arg) {
  return new_wr(&hl_weakref_type, referent, cb, arg);
}

hl_object_t *hl_proxy_new(hl_object_t *referent, hl_weakref_cb cb, void *arg) {
  return new_wr(&hl_proxy_type, referent, cb, arg);
}

hl_object_t *hl_weakref_get(hl_object_t *o) {
  HL_ASSERT(o->type == &hl_weakref_type || o->type == &hl_proxy_type);
  hl_weakref_t *wr = (hl_weakref_t *)o;
  hl_object_t *r = referent_of(wr);
  if (!r) return NULL;
  /* A referent whose count is zero is being finalized: it is not reachable
   * through its weakrefs (they are cleared before it goes). */
  wr_lock(r);
  bool alive = referent_of(wr) == r && hli_rc_try_incref(r);
  wr_unlock(r);
  return alive ? r : NULL;
}

size_t hl_weakref_count(hl_object_t *referent) {
  if (!(referent->type->flags & HL_TF_WEAKREFS)) return 0;
  size_t n = 0;
  wr_lock(referent);
  for (hl_weakref_t *w = *hli_weaklist(referent); w; w = w->next) n++;
  wr_unlock(referent);
  return n;
}

void hli_weakrefs_clear(hl_object_t *o) {
  hl_weakref_t **head = hli_weaklist(o);
  /* Step 1: clear and unlink all, chaining those with a callback (held
   * alive) through their next field, in list order. */
  hl_weakref_t *first = NULL, *last = NULL;
  wr_lock(o);
  while (*head) {
    hl_weakref_t *wr = *head;
    unlink_locked(wr, o);
    /* a weakref that is dying itself (another thread dropped it) waits on
     * this lock to unlink: it gets no callback */
    if (wr->cb && hli_rc_try_incref(&wr->ob)) {
      if (last) last->next = wr;
      else first = wr;
      last = wr;
    }
  }
  wr_unlock(o);
  /* Step 2: the callbacks. */
  hli_weakref_callbacks_run(first);
}

uint64_t hli_weakref_callbacks_run(hl_weakref_t *first) {
  uint64_t n = 0;
  while (first) {
    hl_weakref_t *wr = first;
    first = wr->next;
    wr->next = NULL;
    wr->cb(&wr->ob, wr->arg);
    hli_tstate.stats.weakref_callbacks++;
    hl_decref(&wr->ob);   /* the reference taken when it was chained */
    n++;
  }
  return n;
}
