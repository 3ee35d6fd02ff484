/* The cycle collector's algorithm: which objects are garbage, and what to do
 * with them. When and how much to collect is the business of the
 * collector's row (collector.h: gen_stw.c, and the collectors to come), so
 * this file takes one list and works on it alone.
 *
 * CPython's algorithm (Python/gc.c; Neil Schemenauer's collector, with
 * Tim Peters' and Antoine Pitrou's refinements), written anew:
 *
 *   1. update_refs:    gc_refs = the object's reference count, for every
 *                      object of the list ("young");
 *   2. subtract_refs:  for every reference from one young object to
 *                      another, gc_refs of the target -= 1. What is left,
 *                      gc_refs > 0, counts references from outside young:
 *                      from the stack, from globals, from older objects;
 *   3. move_unreachable: objects with gc_refs > 0 are reachable, and so is
 *                      everything reachable from them (found by traversing,
 *                      which moves objects back from "unreachable" when a
 *                      reachable one refers to them); the rest is
 *                      unreachable: cyclic garbage;
 *   4. legacy finalizers: unreachable objects whose finalizer is not safe on
 *                      a cycle, and everything they reach, are uncollectable:
 *                      they go to gc.garbage;
 *   5. weakrefs:       every weakref to an unreachable object is cleared;
 *                      the callbacks of those weakrefs that are themselves
 *                      reachable run (a dead weakref's callback never does);
 *   6. finalizers:     each unreachable object's finalizer runs, at most
 *                      once in its life (PEP 442);
 *   7. resurrection:   steps 1-3 again over the unreachable: a finalizer may
 *                      have stored a reference to one of them somewhere
 *                      live; those objects, and what they reach, survive;
 *   8. delete_garbage: tp_clear on each object still unreachable, which
 *                      breaks the cycles; reference counting frees them.
 *
 * gc_refs lives in the prev field of the GC head during steps 1-3 and 7
 * (gc_internal.h): the list is singly linked meanwhile, and
 * move_unreachable restores the prev pointers as it goes.
 *
 * Untracking (--gc-untrack=on, the default, as in CPython): a container
 * that can never be part of a cycle need not be examined by any collection.
 * CPython (Python/gc.c untrack_tuples and untrack_dicts, 3.11; Modules/
 * gcmodule.c before 3.10; Objects/dictobject.c MAINTAIN_TRACKING) applies
 * this to its two most common containers, and so does heaplab:
 *   - a tuple is tracked when made (its items are not set yet); a
 *     collection untracks, for good, every reachable tuple of the list
 *     whose items are all set and none "may be tracked"
 *     (hli_gc_may_be_tracked: a container other than an untracked tuple),
 *     since a tuple never changes (untrack_tuples, every collection);
 *   - a dict is made untracked and becomes tracked the first time a key or
 *     value that may be tracked goes in (dict.c, MAINTAIN_TRACKING); a full
 *     collection untracks again the dicts that hold no such object any more
 *     (untrack_dicts: only in full collections, so that building a large
 *     dict does not rescan it at every young collection, bpo-14775).
 * No cycle is missed: an untracked container references only objects that
 * are no containers and untracked tuples, so nothing it references is ever
 * in a collection, and it is never reached from what it references.
 *
 * Where heaplab departs from CPython's code (not its results): CPython
 * walks the survivors three more times after step 3, to untrack tuples, to
 * untrack dicts (full collections) and to count them (gc_list_size, for
 * the full-collection rule). On a heap larger than the caches each walk
 * costs a cache miss per object, as much as a step of the algorithm, so
 * here move_unreachable does all three as it confirms each object
 * reachable: it has just traversed the object, so its items are in cache.
 * A tuple is checked when its turn comes in the scan, as CPython's later
 * walk checks it in list order: an item tuple untracked later in the same
 * scan keeps its holder tracked until the next collection, in both.
 */
#include <stdio.h>

#include "gc_internal.h"

static inline size_t get_refs(const hl_gc_head_t *g) { return g->prev >> HL_GC_REFS_SHIFT; }
static inline void set_refs(hl_gc_head_t *g, size_t r) {
  g->prev = (g->prev & HL_GC_PREV_MASK_FLAGS) | ((uintptr_t)r << HL_GC_REFS_SHIFT);
}
static inline void reset_refs(hl_gc_head_t *g, size_t r) {
  g->prev = HL_GC_PREV_COLLECTING | ((uintptr_t)r << HL_GC_REFS_SHIFT);
}
static inline bool is_collecting(const hl_gc_head_t *g) { return g->prev & HL_GC_PREV_COLLECTING; }
static inline void clear_collecting(hl_gc_head_t *g) { g->prev &= ~HL_GC_PREV_COLLECTING; }
static inline void set_prev(hl_gc_head_t *g, hl_gc_head_t *p) {
  g->prev = (g->prev & HL_GC_PREV_MASK_FLAGS) | (uintptr_t)p;
}

/* o's GC head when o is in the collection under way, else NULL. Only the
 * COLLECTING bit is tested, not whether o is tracked: an untracked
 * container's prev word is 0 (made so, untracked by hli_gc_list_remove or
 * by move_unreachable), as in CPython's visit_decref: two instructions
 * fewer per container visited. */
static inline hl_gc_head_t *collecting_head(hl_object_t *o) {
  if (!(o->flags & HL_OF_GC)) return NULL;
  hl_gc_head_t *g = HL_GC_HEAD(o);
  return is_collecting(g) ? g : NULL;
}

/* The next object of the list being collected: its next words carry no
 * NEXT_UNREACHABLE mark (moved objects leave it; unreachable ones are
 * unmasked before a second pass), so no mask either. */
static inline hl_gc_head_t *young_next(const hl_gc_head_t *g) {
  HL_ASSERT(!(g->next & HL_GC_NEXT_UNREACHABLE));
  return (hl_gc_head_t *)g->next;
}

size_t hli_gc_list_size(const hl_gc_head_t *l) {
  size_t n = 0;
  for (const hl_gc_head_t *g = hli_gc_next(l); g != l; g = hli_gc_next(g)) n++;
  return n;
}

/* ---- steps 1-3 ---------------------------------------------------------------- */
static size_t update_refs(hl_gc_head_t *young) {
  size_t n = 0;
  /* no GIL: the stripes gathered for this collection are 0 from here
   * (track.c), set in this walk instead of one of their own */
  bool stale = hli_gc.stripes_stale;
  hli_gc.stripes_stale = false;
  /* rc=biased: local + shared, the queues merged (by the collector); the mode is
   * tested once, not per object */
  if (HL_UNLIKELY(hl_rc_config.mode == HL_RC_BIASED)) {
    for (hl_gc_head_t *g = young_next(young); g != young; g = young_next(g), n++) {
      hl_object_t *o = HL_GC_OBJ(g);
      if (stale) o->flags &= (uint16_t)~HL_OF_STRIPE_MASK;
      uint32_t rc = hli_rc_biased_count_gc(g);
      HL_ASSERT(rc > 0);
      reset_refs(g, rc);
    }
    return n;
  }
  for (hl_gc_head_t *g = young_next(young); g != young; g = young_next(g), n++) {
    hl_object_t *o = HL_GC_OBJ(g);
    if (stale) o->flags &= (uint16_t)~HL_OF_STRIPE_MASK;
    uint32_t rc = hli_rc_load(o);
    HL_ASSERT(rc > 0);
    reset_refs(g, rc);
  }
  return n;
}

static int visit_decref(hl_object_t *o, void *arg) {
  (void)arg;
  hl_gc_head_t *g = collecting_head(o);
  if (g) {
    HL_ASSERT(get_refs(g) > 0);
    g->prev -= (uintptr_t)1 << HL_GC_REFS_SHIFT;
  }
  return 0;
}

static void subtract_refs(hl_gc_head_t *young) {
  for (hl_gc_head_t *g = young_next(young); g != young; g = young_next(g))
    hli_gc_traverse(HL_GC_OBJ(g), visit_decref, NULL);
}

/* A reachable object refers to o: o is reachable too. */
static int visit_reachable(hl_object_t *o, void *arg) {
  hl_gc_head_t *reachable = arg;
  hl_gc_head_t *g = collecting_head(o);
  if (!g) return 0;   /* not in this collection */
  if (g->next & HL_GC_NEXT_UNREACHABLE) {
    /* Moved to unreachable earlier: back to the end of young, where the
     * scan will reach it. The unreachable list is doubly linked. */
    hl_gc_head_t *prev = hli_gc_prev(g), *next = hli_gc_next(g);
    prev->next = (prev->next & HL_GC_NEXT_UNREACHABLE) | (uintptr_t)next;
    set_prev(next, prev);
    g->next &= ~HL_GC_NEXT_UNREACHABLE;
    hli_gc_list_append(g, reachable);
    set_refs(g, 1);
  } else if (get_refs(g) == 0) {
    set_refs(g, 1);   /* not scanned yet: the scan will treat it as reachable */
  }
  return 0;
}

/* Whether a reachable object is a tuple or (with dicts) a dict that
 * references nothing that may be tracked: it can be untracked. */
bool hli_gc_untrackable(const hl_object_t *o, bool dicts) {
  uint32_t kind = o->type->kind;
  if (kind == HL_K_TUPLE) {
    const hl_tuple_t *t = (const hl_tuple_t *)o;
    for (size_t i = 0; i < t->size; i++) {
      /* acquire, as gen_conc.c's visit_items: --gc=concurrent's thread
       * asks this of a tuple that a mutator may still be filling */
      const hl_object_t *x = hl_atomic_c11_load_acquire_ptr((void *const *)&t->items[i]);
      if (!x || hli_gc_may_be_tracked(x)) return false;   /* NULL: still being built */
    }
    return true;
  }
  if (kind == HL_K_DICT && dicts) {
    const hl_dict_keys_t *k = ((const hl_dict_t *)o)->keys;
    for (size_t j = 0; k && j < k->nentries; j++) {
      const hl_dict_entry_t *e = &k->entries[j];
      if (e->key && (hli_gc_may_be_tracked(e->key) || hli_gc_may_be_tracked(e->value)))
        return false;
    }
    return true;
  }
  return false;
}

/* What move_unreachable does besides sorting (UNTRACK_*: only with
 * --gc-untrack=on). */
enum { UNTRACK_TUPLES = 1, UNTRACK_DICTS = 2 };

/* young is singly linked (prev holds gc_refs), except young->prev, the tail.
 * Returns the number of objects left in young; *untracked counts those it
 * took out of every list. */
static size_t move_unreachable(hl_gc_head_t *young, hl_gc_head_t *unreachable, unsigned untrack,
                               uint64_t *untracked) {
  hl_gc_head_t *prev = young;
  hl_gc_head_t *g = young_next(young);
  size_t kept = 0;
  while (g != young) {
    if (get_refs(g)) {
      hl_object_t *o = HL_GC_OBJ(g);
      hli_gc_traverse(o, visit_reachable, young);
      if (untrack && hli_gc_untrackable(o, untrack & UNTRACK_DICTS)) {
        /* out of young and of every list; later visits see it untracked */
        prev->next = g->next;
        g->next = 0;
        g->prev = 0;
        (*untracked)++;
      } else {
        set_prev(g, prev);
        clear_collecting(g);
        prev = g;
        kept++;
      }
    } else {
      /* Tentatively unreachable: to the end of unreachable, doubly linked,
       * its next marked. */
      prev->next = g->next;
      hl_gc_head_t *last = hli_gc_prev(unreachable);
      last->next = HL_GC_NEXT_UNREACHABLE | (uintptr_t)g;
      set_prev(g, last);
      g->next = HL_GC_NEXT_UNREACHABLE | (uintptr_t)unreachable;
      unreachable->prev = (uintptr_t)g;
    }
    g = young_next(prev);
  }
  young->prev = (uintptr_t)prev;
  unreachable->next &= ~HL_GC_NEXT_UNREACHABLE;
  return kept;
}

static void clear_unreachable_mask(hl_gc_head_t *unreachable) {
  for (hl_gc_head_t *g = hli_gc_next(unreachable); g != unreachable; g = hli_gc_next(g))
    g->next &= ~HL_GC_NEXT_UNREACHABLE;
}

/* Steps 1-3: young keeps the reachable, unreachable gets the rest. Adds
 * the objects examined, kept and untracked to *work. */
static void deduce_unreachable(hl_gc_head_t *young, hl_gc_head_t *unreachable, unsigned untrack,
                               hl_gc_work_t *work) {
  work->visited += update_refs(young);
  subtract_refs(young);
  work->survivors += move_unreachable(young, unreachable, untrack, &work->untracked);
}

/* ---- step 4 --------------------------------------------------------------------- */
static bool has_legacy_finalizer(const hl_object_t *o) {
  return o->type->finalizer && o->type->legacy_finalizer;
}

static int visit_move(hl_object_t *o, void *arg) {
  hl_gc_head_t *to = arg;
  hl_gc_head_t *g = collecting_head(o);
  if (g) {
    clear_collecting(g);
    hli_gc_list_move(g, to);
  }
  return 0;
}

static void move_legacy_finalizers(hl_gc_head_t *unreachable, hl_gc_head_t *finalizers) {
  hl_gc_head_t *next;
  for (hl_gc_head_t *g = hli_gc_next(unreachable); g != unreachable; g = next) {
    next = hli_gc_next(g);
    if (has_legacy_finalizer(HL_GC_OBJ(g))) {
      clear_collecting(g);
      hli_gc_list_move(g, finalizers);
    }
  }
  /* everything they reach is kept alive with them */
  for (hl_gc_head_t *g = hli_gc_next(finalizers); g != finalizers; g = hli_gc_next(g))
    hli_gc_traverse(HL_GC_OBJ(g), visit_move, finalizers);
}

/* ---- step 5 --------------------------------------------------------------------- */
static uint64_t handle_weakrefs(hl_gc_head_t *unreachable) {
  hl_weakref_t *first = NULL, *last = NULL;
  for (hl_gc_head_t *g = hli_gc_next(unreachable); g != unreachable; g = hli_gc_next(g)) {
    hl_object_t *o = HL_GC_OBJ(g);
    if (!(o->type->flags & HL_TF_WEAKREFS)) continue;
    hl_weakref_t **head = hli_weaklist(o);
    while (*head) {
      hl_weakref_t *wr = *head;
      hli_weakref_unlink(wr);
      bool wr_unreachable = collecting_head(&wr->ob) != NULL;
      if (wr->cb && !wr_unreachable) {
        hl_incref(&wr->ob);
        if (last) last->next = wr;
        else first = wr;
        last = wr;
      }
    }
  }
  return hli_weakref_callbacks_run(first);
}

/* ---- step 6 --------------------------------------------------------------------- */
static void finalize_garbage(hl_gc_head_t *collectable) {
  hl_gc_head_t seen;
  hli_gc_list_init(&seen);
  /* Each object moves to seen before its finalizer runs, so that a
   * finalizer that frees objects of the list cannot derail the walk. */
  while (!hli_gc_list_empty(collectable)) {
    hl_gc_head_t *g = hli_gc_next(collectable);
    hl_object_t *o = HL_GC_OBJ(g);
    hli_gc_list_move(g, &seen);
    if (o->type->finalizer && !(o->flags & HL_OF_FINALIZED)) {
      o->flags |= HL_OF_FINALIZED;
      hl_incref(o);
      o->type->finalizer(o);
      hli_tstate.stats.finalizers_run++;
      hl_decref(o);
    }
  }
  hli_gc_list_merge(&seen, collectable);
}

/* ---- step 7 --------------------------------------------------------------------- */
/* Returns how many were resurrected. */
static size_t handle_resurrected(hl_gc_head_t *unreachable, hl_gc_head_t *still,
                                 hl_gc_head_t *old) {
  hl_gc_work_t again = {0, 0, 0};
  deduce_unreachable(unreachable, still, 0, &again);
  clear_unreachable_mask(still);
  /* what remains in unreachable was resurrected: it lives on, older */
  hli_gc_list_merge(unreachable, old);
  return again.survivors;
}

/* ---- step 8 --------------------------------------------------------------------- */
static void debug_print(const char *what, hl_object_t *o) {
  fprintf(stderr, "gc: %s <%s %p>\n", what, o->type->name, (void *)o);
}

/* Returns how many objects stayed alive (moved to old). */
/* sweep: the trash list to empty after each object (hli_gc_sweep below),
 * NULL with the world stopped. */
typedef struct sweep sweep_t;
static void sweep_trash(sweep_t *sw);

static size_t delete_garbage(hl_gc_head_t *collectable, hl_gc_head_t *old, sweep_t *sw) {
  size_t kept = 0;
  while (!hli_gc_list_empty(collectable)) {
    hl_gc_head_t *g = hli_gc_next(collectable);
    hl_object_t *o = HL_GC_OBJ(g);
    HL_ASSERT(hl_refcount(o) > 0);
    if (hli_gc.debug & HL_GC_DEBUG_SAVEALL) {
      if (hli_gc.garbage || (hli_gc.garbage = hl_list_new(0))) hl_list_append(hli_gc.garbage, o);
    } else if (o->type->clear) {
      hl_incref(o);
      o->type->clear(o);
      hl_decref(o);
    }
    if (hli_gc_next(collectable) == g) {
      /* still alive (saved, or a clear that freed nothing): keep it */
      clear_collecting(g);
      hli_gc_list_move(g, old);
      kept++;
    }
    if (sw) sweep_trash(sw);
  }
  return kept;
}

/* The garbage of a collection without a GIL, deleted by the thread that
 * collected after the world resumed (gcmodule.c's hli_gc_world_resume):
 * the objects were proven unreachable with the world stopped, their weakrefs
 * cleared, their finalizers run, their owners gave them up, so nothing but
 * this thread can touch them; every other thread runs meanwhile, and may
 * stop the world again: this thread passes a checkpoint every
 * SWEEP_CHECKPOINT deallocations, so that such a stop waits no longer than
 * that. delete_garbage as it runs with the world stopped would not do:
 * clearing one node of a ring frees the rest of it in one cascade of
 * deallocations (the trashcan makes it a loop, not a recursion, but a loop
 * without a checkpoint). So the sweep runs it at the trashcan's depth:
 * every container that dies is deferred onto the thread's trash list
 * rather than deallocated, and after each object's clear the sweep
 * deallocates them one at a time (sweep_trash), each one's own dying
 * children deferred in turn. What a clear left alive (rare) goes to the oldest
 * generation, under the shared lists' lock. */
#define SWEEP_CHECKPOINT 256u
struct sweep {
  hl_tstate_t *ts;
  bool attached;
  unsigned n;
};
static void sweep_trash(sweep_t *sw) {
  hl_tstate_t *ts = sw->ts;
  while (ts->trash) {
    hl_gc_head_t *g = ts->trash;
    ts->trash = (hl_gc_head_t *)g->next;
    hl_object_t *o = HL_GC_OBJ(g);
    o->type->dealloc(o);
    if (sw->attached && ++sw->n % SWEEP_CHECKPOINT == 0) hl_checkpoint();
  }
}
void hli_gc_sweep(hl_gc_head_t *garbage) {
  hl_tstate_t *ts = &hli_tstate;
  sweep_t sw = {ts, hl_thread_self() != NULL, 0};
  /* the frees below are the last collection's: they do not bring the next
   * one sooner (track.c), as they did not when deleted inside it */
  int32_t count = ts->gc_count;
  bool nested = ts->sweeping;
  uint32_t depth = ts->trash_depth;
  ts->sweeping = true;
  ts->trash_depth = depth > HL_TRASH_DEPTH ? depth : HL_TRASH_DEPTH;
  hl_gc_head_t kept;
  hli_gc_list_init(&kept);
  delete_garbage(garbage, &kept, &sw);
  ts->trash_depth = depth;
  ts->sweeping = nested;
  ts->gc_count = count;
  if (hli_gc_list_empty(&kept)) return;
  hl_spinlock_lock(&hli_gc_stripes[0].lock);
  hli_gc_list_merge(&kept, &hli_gc.gen[HL_GC_GENERATIONS - 1].head);
  hl_spinlock_unlock(&hli_gc_stripes[0].lock);
}

uint64_t hli_gc_collect_list(hl_gc_head_t *young, hl_gc_head_t *old, hl_gc_info_t *info,
                             bool untrack_dicts, hl_gc_work_t *work) {
  hl_gc_head_t unreachable, finalizers, still;
  hli_gc_list_init(&unreachable);
  hli_gc_list_init(&finalizers);
  hli_gc_list_init(&still);
  unsigned untrack = !hli_gc.untrack ? 0 : untrack_dicts ? UNTRACK_TUPLES | UNTRACK_DICTS
                                                         : UNTRACK_TUPLES;
  deduce_unreachable(young, &unreachable, untrack, work);
  clear_unreachable_mask(&unreachable);
  move_legacy_finalizers(&unreachable, &finalizers);
  handle_weakrefs(&unreachable);
  finalize_garbage(&unreachable);
  /* rc=biased (a no-op in the other modes), world stopped: what finalizers and callbacks dropped of
   * other threads' objects was queued to their owners; merged now, so that
   * no queue holds a reference the resurrection check would count */
  hl_rc_merge_all_stopped();
  size_t to_old = handle_resurrected(&unreachable, &still, old);
  /* ... and the garbage is given up by its owners, so that tp_clear's
   * decrements free it here and now rather than queue it to a parked
   * owner that would free it after the resume */
  if (hli_rc_row->disown_stopped)
    for (hl_gc_head_t *g = hli_gc_next(&still); g != &still; g = hli_gc_next(g))
      hli_rc_row->disown_stopped(HL_GC_OBJ(g));
  uint64_t collected = hli_gc_list_size(&still);
  if (hli_gc.debug & HL_GC_DEBUG_COLLECTABLE)
    for (hl_gc_head_t *g = hli_gc_next(&still); g != &still; g = hli_gc_next(g))
      debug_print("collectable", HL_GC_OBJ(g));
  /* without a GIL, deleted after the world resumes (hli_gc_sweep) */
  if (hli_gc.sweep_later && !(hli_gc.debug & HL_GC_DEBUG_SAVEALL))
    hli_gc_list_merge(&still, &hli_gc.sweep);
  else
    to_old += delete_garbage(&still, old, NULL);
  /* uncollectable: to gc.garbage, then into the old generation */
  uint64_t uncollectable = 0;
  for (hl_gc_head_t *g = hli_gc_next(&finalizers); g != &finalizers; g = hli_gc_next(g)) {
    hl_object_t *o = HL_GC_OBJ(g);
    uncollectable++;
    if (hli_gc.debug & HL_GC_DEBUG_UNCOLLECTABLE) debug_print("uncollectable", o);
    if (hli_gc.garbage || (hli_gc.garbage = hl_list_new(0))) hl_list_append(hli_gc.garbage, o);
  }
  hli_gc_list_merge(&finalizers, old);
  /* What went to old counts as surviving where old is young (CPython counts
   * the list after the collection). */
  if (old == young) work->survivors += to_old + uncollectable;
  info->collected = collected;
  info->uncollectable = uncollectable;
  return collected + uncollectable;
}
