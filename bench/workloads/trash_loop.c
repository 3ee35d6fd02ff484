/* trash-loop: when do full collections happen in a loop that makes cyclic
 * trash while its heap grows?
 *
 * A loop that drops a little cyclic garbage each iteration and keeps a few
 * records more each iteration. CPython 3.11's generational collector runs a
 * full collection only when a collection of generation 2 is due by count
 * AND the objects that survived into it since the last full one exceed a
 * quarter of those a full collection found alive (gcmodule.c,
 * long_lived_pending > long_lived_total / 4): as the heap grows the full
 * collections grow apart, geometrically. CPython 3.14's incremental
 * collector was reported to make no full collection in such a loop until
 * about iteration 20,000. This workload records the iteration at which each
 * look at the whole heap ended: a collection of the oldest generation
 * (stw), or an increment that completed a scan of the old generation
 * (incremental), so that heaplab's collectors can be set beside both
 * (bench/python/trash_loop.py prints the iterations of CPython's full
 * collections under the CPython that runs it).
 *
 * Each iteration i (from 0), per worker:
 *   - a ring of RING Trash instances (slot next), dropped: cyclic garbage
 *     (RING objects, RING containers; noted with hl_gc_note_garbage);
 *   - GROW records kept: each a list [I, F], I = 1000 + a random number
 *     below 10^6, F = the record's number + 0.5 (3 objects, 1 container),
 *     appended to the heap: chunk lists of CHUNK records in one top list.
 * ops = iterations. A gc callback (hl_gc_callback_add) notes, at the end of
 * each collection whose info->full is set, the iteration the collecting thread
 * was in (with several threads, that of the thread whose allocation started
 * it; collections outside the loop are not noted). The result's "extra"
 * object has full_collections (the count), full_at (the first FULL_LOG
 * iterations, in the order noted) and the loop's shape.
 *
 * The checksum folds each record's I and each ring's iteration: it depends
 * on the seed, the scale and the thread only.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define RING 4u
#define GROW 4u
#define CHUNK 1000u
#define FULL_LOG 64u
#define ITERATIONS_PER_SCALE 200000ull

typedef struct tl_shared {
  hl_type_t *trash;           /* next */
  /* written by the gc callback: collections are serialised (one collector
   * at a time, the world stopped without a GIL); the count is atomic so that
   * a collector that is not serialised still leaves a correct count */
  uint64_t full;
  uint64_t full_at[FULL_LOG];
  bool callback;
  unsigned threads;
} tl_shared_t;

/* The iteration this thread's loop is in; NULL outside the loop. */
static __thread const uint64_t *tl_iteration;

static void tl_on_collection(bool start, const hl_gc_info_t *info, void *arg) {
  tl_shared_t *s = arg;
  if (start || !info->full || !tl_iteration) return;
  uint64_t n = hl_atomic_faa_u64(&s->full, 1);
  if (n < FULL_LOG) s->full_at[n] = *tl_iteration;
}

static void tl_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  tl_shared_t *s = shared;
  if (!s) return;
  if (s->callback) hl_gc_callback_remove(tl_on_collection, s);
  free(s);
}

static int tl_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  tl_shared_t *s = calloc(1, sizeof *s);
  if (!s || !(s->trash = hl_class_new("Trash", 1, false, NULL))) {
    snprintf(err, errlen, "trash-loop: out of memory");
    tl_teardown(s, NULL);
    return -ENOMEM;
  }
  s->threads = c->threads;
  /* with --gc=none no collection runs and the callback would never fire */
  if (hl_gc_active()) {
    if (hl_gc_callback_add(tl_on_collection, s) != 0) {
      snprintf(err, errlen, "trash-loop: cannot add a gc callback");
      tl_teardown(s, NULL);
      return -ENOMEM;
    }
    s->callback = true;
  }
  *shared = s;
  return 0;
}

static void tl_report(void *shared, hl_run_result_t *r) {
  const tl_shared_t *s = shared;
  json_object *o = json_object_new_object(), *at = json_object_new_array();
  uint64_t n = s->full < FULL_LOG ? s->full : FULL_LOG;
  for (uint64_t i = 0; i < n; i++)
    json_object_array_add(at, json_object_new_int64((int64_t)s->full_at[i]));
  json_object_object_add(o, "full_collections", json_object_new_int64((int64_t)s->full));
  json_object_object_add(o, "full_at", at);
  json_object_object_add(o, "ring", json_object_new_int(RING));
  json_object_object_add(o, "grow", json_object_new_int(GROW));
  r->extra = o;
}

/* A ring of RING instances, dropped. */
static bool trash(const tl_shared_t *s) {
  hl_object_t *first = hl_instance_new(s->trash), *cur = first;
  if (!first) return false;
  for (unsigned k = 1; k < RING; k++) {
    hl_object_t *n = hl_instance_new(s->trash);
    if (!n) {
      hl_decref(first);   /* still a chain: reference counting frees it */
      return false;
    }
    hl_slot_set(cur, 0, n);
    hl_decref(n);
    cur = n;
  }
  hl_slot_set(cur, 0, first);
  hl_decref(first);
  return true;
}

static void tl_work(hl_worker_t *w) {
  const tl_shared_t *s = w->shared;
  hl_rand_t *rng = &w->rng;
  uint64_t ops = 0, records = 0, sum = hl_fnv1a_u64(HL_FNV_OFFSET, w->index);
  hl_object_t *top = hl_list_new(0), *chunk = NULL;
  if (!top) hl_worker_fail(w, "out of memory for the heap");

  hl_worker_begin(w);
  tl_iteration = &ops;
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t n = hl_worker_chunk(w, ops, 256);
    for (uint64_t k = 0; k < n; k++) {
      HL_WORKLOAD_CHECKPOINT();
      if (HL_UNLIKELY(!trash(s))) {
        hl_worker_fail(w, "out of memory making trash: %s", hl_err_message());
        break;
      }
      hl_gc_note_garbage(RING);
      w->cyclic_garbage += RING;
      sum = hl_fnv1a_u64(sum, ops);
      for (unsigned g = 0; g < GROW; g++, records++) {
        if (records % CHUNK == 0) {
          chunk = hl_list_new(0);
          if (!chunk || hl_list_append(top, chunk) != 0) {
            hl_xdecref(chunk);
            hl_worker_fail(w, "out of memory growing the heap");
            break;
          }
          hl_decref(chunk);   /* top holds it */
        }
        uint64_t v = 1000 + hl_rand_next(rng) % 1000000;
        hl_object_t *I = hl_int_new((int64_t)v), *F = hl_float_new((double)records + 0.5);
        hl_object_t *rec = I && F ? hl_list_new(0) : NULL;
        bool ok = rec && hl_list_append(rec, I) == 0 && hl_list_append(rec, F) == 0 &&
                  hl_list_append(chunk, rec) == 0;
        hl_xdecref(I);
        hl_xdecref(F);
        hl_xdecref(rec);
        if (HL_UNLIKELY(!ok)) {
          hl_worker_fail(w, "out of memory growing the heap: %s", hl_err_message());
          break;
        }
        sum = hl_fnv1a_u64(sum, v);
      }
      if (w->error) break;
      ops++;
    }
  }
  tl_iteration = NULL;
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
  hl_xdecref(top);   /* acyclic */
}

const hl_workload_t hl_workload_trash_loop = {
  .name = "trash-loop",
  .summary = "a loop that drops a ring of 4 instances and keeps 4 more records each "
             "iteration: the iterations at which full collections happen as the heap grows",
  .unit = "200,000 iterations per thread (800,000 records kept)",
  .uses = HL_RUNNER_USES | HL_OBJ_USES,
  .ops_per_scale = ITERATIONS_PER_SCALE,
  .setup = tl_setup,
  .work = tl_work,
  .teardown = tl_teardown,
  .report = tl_report,
};
