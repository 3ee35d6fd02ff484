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
 */
#include "gc_internal.h"

void hli_weakref_unlink(hl_weakref_t *wr) {
  hl_object_t *r = wr->referent;
  if (!r) return;
  hl_weakref_t **head = hli_weaklist(r);
  if (wr->prev) wr->prev->next = wr->next;
  else *head = wr->next;
  if (wr->next) wr->next->prev = wr->prev;
  wr->prev = wr->next = NULL;
  wr->referent = NULL;
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
  wr->next = *head;
  if (*head) (*head)->prev = wr;
  *head = wr;
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
  hl_object_t *r = ((hl_weakref_t *)o)->referent;
  /* A referent whose count is zero is being finalized: it is not reachable
   * through its weakrefs (they are cleared before it goes). */
  return r && hli_rc_try_incref(r) ? r : NULL;
}

size_t hl_weakref_count(hl_object_t *referent) {
  if (!(referent->type->flags & HL_TF_WEAKREFS)) return 0;
  size_t n = 0;
  for (hl_weakref_t *w = *hli_weaklist(referent); w; w = w->next) n++;
  return n;
}

void hli_weakrefs_clear(hl_object_t *o) {
  hl_weakref_t **head = hli_weaklist(o);
  /* Step 1: clear and unlink all, chaining those with a callback (held
   * alive) through their next field, in list order. */
  hl_weakref_t *first = NULL, *last = NULL;
  while (*head) {
    hl_weakref_t *wr = *head;
    hli_weakref_unlink(wr);
    if (wr->cb) {
      hl_incref(&wr->ob);
      if (last) last->next = wr;
      else first = wr;
      last = wr;
    }
  }
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
