/* cyclotron: a steady state of rings made and dropped beside a live heap.
 *
 * After Neil Schemenauer's "cyclotron" benchmark for CPython's cycle
 * collector (written for the incremental collector's work, CPython 3.13):
 * a program that makes cyclic garbage at a steady rate while a heap of live
 * objects sits beside it. A collector that keeps up frees the rings soon
 * after they are dropped, and the backlog of garbage not yet collected stays
 * small; one that must examine the live heap to free them (a full
 * collection, or an incremental one's scan of the old generation) pays for
 * the heap at every round. This file is its own design on heaplab's
 * objects; the grid of its three options is the experiment:
 *
 *   --cycle-size N        instances per ring (2, 10, 100, 1000)
 *   --cycle-payload P     none: a node is one instance (1 object, 1 container);
 *                         ints: it also holds a list of 8 ints above the
 *                         small-int cache (10 objects, 2 containers)
 *   --live-heap-m M       M million live objects in all (split among the
 *                         threads), kept to the end
 *
 * Each worker:
 *   1. (untimed, before the timed part starts) builds its share of the live
 *      heap, M million / threads objects (the first thread takes the
 *      remainder), so that the heap the collector sees is the same size
 *      whatever --threads is: records in chunk lists of CHUNK records, the
 *      chunks in one top list, as long-lived's heap; record i is a Rec
 *      instance with id = 1000 + i and tags = [i + 0.25] (4 objects, 2
 *      containers), until the share is made (the lists counted); then, once
 *      every worker's heap is built, one full collection, so that the heaps
 *      start the timed part in the oldest generation;
 *   2. (timed) makes rings: a ring is N Node instances (slots next, payload),
 *      each node's next the following one and the last's the first. The
 *      last K rings stay alive in a window (a list of K slots, ring r in slot
 *      r mod K), where K = max(2, ceil(WINDOW_NODES / N)): a ring lives while
 *      about WINDOW_NODES more nodes (at least as many containers) are made,
 *      across about three young collections at the default threshold of 700,
 *      whatever N is (K = 1024, 205, 21, 3 for N = 2, 10, 100, 1000). Making
 *      ring r drops ring r - K: cyclic garbage, which only a collector frees
 *      (noted with hl_gc_note_garbage, so that the JSON gc.backlog says how
 *      much of it waited). At the end the window is dropped with its rings.
 *      Payload ints are 1000 + b + 8k + j for node k, int j and a random
 *      base b per ring.
 * ops = rings made. scale=1: RING_NODES nodes per thread (2,000,000 / N
 * rings, rounded up). With --duration-s, step 2 stops at the deadline.
 *
 * The result's "extra" object has the live heap's size (objects and
 * containers, summed over the threads: backlog / heap is a fraction a reader
 * can compute), the window and the rings' shape. Every ring is cyclic
 * garbage in the end: with --gc=none each worker counts its objects.
 *
 * The checksum folds each ring's number and payload and a final walk of the
 * heap's ids: it depends on the seed, the scale, the options and the thread
 * only. bench/python/cyclotron.py runs the same graph by the same rules on
 * CPython.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define CHUNK 1000u
#define RING_NODES 2000000ull
#define WINDOW_NODES 2048u
#define PAYLOAD_INTS 8u
#define RECORD_OBJECTS 4u     /* Rec, its id, its tags list, the float */
#define RECORD_CONTAINERS 2u  /* Rec, tags */

typedef struct cy_thread {
  uint64_t heap_objects, heap_containers;
  uint64_t rings;
} cy_thread_t;

typedef struct cy_shared {
  hl_type_t *node;            /* next, payload */
  hl_type_t *rec;             /* id, tags */
  uint64_t size;              /* nodes per ring */
  bool ints;                  /* each node holds a list of 8 ints */
  uint64_t window;            /* rings kept alive */
  uint64_t heap_objects;      /* in all, split among the threads */
  uint64_t node_objects, node_containers;
  cy_thread_t *per;           /* one per worker */
  unsigned threads;
} cy_shared_t;

static void cy_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  cy_shared_t *s = shared;
  if (!s) return;
  free(s->per);
  free(s);
}

static int cy_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  cy_shared_t *s = calloc(1, sizeof *s);
  if (!s || !(s->per = calloc(c->threads, sizeof *s->per)) ||
      !(s->node = hl_class_new("Node", 2, false, NULL)) ||
      !(s->rec = hl_class_new("Rec", 2, false, NULL))) {
    snprintf(err, errlen, "cyclotron: out of memory");
    cy_teardown(s, NULL);
    return -ENOMEM;
  }
  s->threads = c->threads;
  s->size = c->cycle_size;
  s->ints = c->cycle_payload == HL_CYCLE_PAYLOAD_INTS;
  s->window = (WINDOW_NODES + s->size - 1) / s->size;
  if (s->window < 2) s->window = 2;
  s->heap_objects = c->live_heap_m * 1000000ull;
  s->node_objects = s->ints ? 2 + PAYLOAD_INTS : 1;
  s->node_containers = s->ints ? 2 : 1;
  *shared = s;
  return 0;
}

/* ops are rings: scale x RING_NODES nodes, rounded up to whole rings */
static uint64_t cy_ops_per_thread(const hl_config_t *c) {
  return (c->scale * RING_NODES + c->cycle_size - 1) / c->cycle_size;
}

static void cy_report(void *shared, hl_run_result_t *r) {
  const cy_shared_t *s = shared;
  uint64_t objects = 0, containers = 0, rings = 0;
  for (unsigned i = 0; i < s->threads; i++) {
    objects += s->per[i].heap_objects;
    containers += s->per[i].heap_containers;
    rings += s->per[i].rings;
  }
  json_object *o = json_object_new_object();
  json_object_object_add(o, "live_heap_objects", json_object_new_int64((int64_t)objects));
  json_object_object_add(o, "live_heap_containers", json_object_new_int64((int64_t)containers));
  json_object_object_add(o, "ring_size", json_object_new_int64((int64_t)s->size));
  json_object_object_add(o, "payload", json_object_new_string(s->ints ? "ints" : "none"));
  json_object_object_add(o, "window_rings", json_object_new_int64((int64_t)s->window));
  json_object_object_add(o, "ring_objects",
                         json_object_new_int64((int64_t)(s->size * s->node_objects)));
  json_object_object_add(o, "ring_containers",
                         json_object_new_int64((int64_t)(s->size * s->node_containers)));
  json_object_object_add(o, "rings", json_object_new_int64((int64_t)rings));
  r->extra = o;
}

/* The live heap (a new reference to its top list, NULL when memory ran
 * out); its figures into *t, its ids into *sum. */
static hl_object_t *build_heap(const cy_shared_t *s, hl_worker_t *w, cy_thread_t *t,
                               uint64_t *sum) {
  hl_object_t *top = hl_list_new(0);
  if (!top) {
    hl_worker_fail(w, "out of memory building the live heap");
    return NULL;
  }
  /* this thread's share; the first takes the remainder */
  uint64_t objects = s->heap_objects / s->threads + (w->index ? 0 : s->heap_objects % s->threads);
  uint64_t made = 1, containers = 1;
  for (uint64_t i = 0; made < objects;) {
    hl_object_t *chunk = hl_list_new(0);
    if (!chunk || hl_list_append(top, chunk) != 0) {
      hl_xdecref(chunk);
      goto fail;
    }
    hl_decref(chunk);
    made++;
    containers++;
    for (unsigned k = 0; k < CHUNK && made < objects; k++, i++) {
      HL_WORKLOAD_CHECKPOINT();
      hl_object_t *I = hl_int_new((int64_t)(1000 + i)), *F = hl_float_new((double)i + 0.25);
      hl_object_t *tags = hl_list_new(0), *rec = hl_instance_new(s->rec);
      bool ok = I && F && tags && rec && hl_list_append(tags, F) == 0;
      if (ok) {
        hl_slot_set(rec, 0, I);
        hl_slot_set(rec, 1, tags);
        ok = hl_list_append(chunk, rec) == 0;
      }
      hl_xdecref(I);
      hl_xdecref(F);
      hl_xdecref(tags);
      hl_xdecref(rec);
      if (!ok) goto fail;
      *sum = hl_fnv1a_u64(*sum, 1000 + i);
      made += RECORD_OBJECTS;
      containers += RECORD_CONTAINERS;
    }
  }
  t->heap_objects = made;
  t->heap_containers = containers;
  return top;
fail:
  hl_worker_fail(w, "out of memory building the live heap: %s", hl_err_message());
  hl_decref(top);
  return NULL;
}

/* One ring of s->size nodes (a new reference to its first node, NULL when
 * memory ran out). Until it is closed the chain is acyclic, so a failure
 * frees what was made by dropping the first node. */
static hl_object_t *make_ring(const cy_shared_t *s, uint64_t base, uint64_t *sum) {
  hl_object_t *first = NULL, *cur = NULL;
  for (uint64_t k = 0; k < s->size; k++) {
    hl_object_t *n = hl_instance_new(s->node);
    if (!n) goto fail;
    if (s->ints) {
      hl_object_t *payload = hl_list_new(0);
      bool ok = payload != NULL;
      for (unsigned j = 0; ok && j < PAYLOAD_INTS; j++) {
        uint64_t v = 1000 + base + PAYLOAD_INTS * k + j;
        hl_object_t *I = hl_int_new((int64_t)v);
        ok = I && hl_list_append(payload, I) == 0;
        hl_xdecref(I);
        *sum += v;
      }
      if (ok) hl_slot_set(n, 1, payload);
      hl_xdecref(payload);
      if (!ok) {
        hl_decref(n);
        goto fail;
      }
    }
    if (!first) {
      first = n;   /* our reference */
    } else {
      hl_slot_set(cur, 0, n);
      hl_decref(n);   /* cur holds it */
    }
    cur = n;
  }
  hl_slot_set(cur, 0, first);   /* closes the ring */
  return first;
fail:
  hl_xdecref(first);
  return NULL;
}

static void cy_work(hl_worker_t *w) {
  cy_shared_t *s = w->shared;
  cy_thread_t *t = &s->per[w->index];
  hl_rand_t *rng = &w->rng;
  uint64_t ops = 0, sum = hl_fnv1a_u64(HL_FNV_OFFSET, w->index);
  const uint64_t ring_containers = s->size * s->node_containers;
  hl_object_t *heap = NULL, *window = NULL;

  /* untimed: the heap, then the window */
  if (s->heap_objects) {
    heap = build_heap(s, w, t, &sum);
  }
  if (!w->error && !(window = hl_list_new(s->window)))
    hl_worker_fail(w, "out of memory for the window");
  /* a program's long-lived data is old by the time its steady state
   * matters: a full collection moves the heaps into the oldest generation
   * (the Python twin calls gc.collect() here too) */
  if (s->heap_objects) hl_worker_begin_collected(w);
  else hl_worker_begin(w);
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t chunk = hl_worker_chunk(w, ops, 64);
    for (uint64_t k = 0; k < chunk; k++, ops++) {
      HL_WORKLOAD_CHECKPOINT();
      uint64_t base = hl_rand_next(rng) % 1000000, rsum = 0;
      hl_object_t *ring = make_ring(s, base, &rsum);
      if (HL_UNLIKELY(!ring)) {
        hl_worker_fail(w, "out of memory making a ring: %s", hl_err_message());
        break;
      }
      sum = hl_fnv1a_u64(hl_fnv1a_u64(sum, ops), rsum);
      hl_list_set(window, (size_t)(ops % s->window), ring);   /* steals ring */
      /* the ring that slot held is now garbage, and only a cycle */
      if (ops >= s->window) hl_gc_note_garbage(ring_containers);
    }
  }
  /* the heap's ids, walked: it survived every collection intact */
  for (size_t c = 0; heap && c < hl_list_size(heap) && !w->error; c++) {
    HL_WORKLOAD_CHECKPOINT();
    hl_object_t *chunk = hl_list_get(heap, c);
    for (size_t k = 0; k < hl_list_size(chunk); k++)
      sum = hl_fnv1a_u64(sum, (uint64_t)hl_int_value(hl_slot_get(hl_list_get(chunk, k), 0)));
  }
  t->rings = ops;
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
  if (window) {
    hl_decref(window);   /* its rings join the garbage */
    hl_gc_note_garbage((ops < s->window ? ops : s->window) * ring_containers);
  }
  w->cyclic_garbage = ops * s->size * s->node_objects;
  hl_xdecref(heap);   /* acyclic: reference counting frees it */
}

const hl_workload_t hl_workload_cyclotron = {
  .name = "cyclotron",
  .summary = "rings of --cycle-size instances (--cycle-payload) made and dropped, the last "
             "few kept alive in a window, beside a live heap of --live-heap-m million "
             "objects: the collector's garbage backlog at a steady rate of cycles",
  .unit = "2,000,000 ring nodes made per thread (2,000,000 / cycle-size rings)",
  .uses = HL_RUNNER_USES | HL_OBJ_USES | HL_OPT_BIT(HL_OPT_CYCLE_SIZE) |
          HL_OPT_BIT(HL_OPT_CYCLE_PAYLOAD) | HL_OPT_BIT(HL_OPT_LIVE_HEAP_M),
  .ops_per_scale = RING_NODES / 10,   /* at the default cycle-size */
  .ops_per_thread = cy_ops_per_thread,
  .setup = cy_setup,
  .work = cy_work,
  .teardown = cy_teardown,
  .report = cy_report,
};
