/* gc-traversal: the cost of a collector looking at live data.
 *
 * A large graph that survives every collection, and a small steady
 * allocation of short-lived containers beside it that keeps collections
 * coming. A generational collector that promotes the graph to the oldest
 * generation looks at it only in full collections, which CPython 3.11's
 * rule (long_lived_pending > long_lived_total / 4) keeps rare when nothing
 * new survives; an incremental collector that scans the old generation a
 * piece at a time looks at it again and again. What each collection
 * examines (JSON gc.visited, gc.visited_gen) against the work done
 * (ops) is the figure.
 *
 * Each worker:
 *   1. (untimed, before the timed part starts) builds a 4-ary tree of
 *      Node instances (slots kids, val), its share of --scale million
 *      objects in all (split among the threads, the first taking the
 *      remainder: the live graph the collector sees is the same size
 *      whatever --threads is, and 8 threads do not build 8 million): node i
 *      has val = 1000 + i (an int above the small-int cache) and, once it
 *      has children, kids = a list of up to 4 Nodes (nodes 4i+1 .. 4i+4);
 *      nodes are added in that order until the objects made (Nodes, ints,
 *      lists) reach the size. Acyclic: reference counting frees it at the
 *      end. Then, once every worker's tree is built, one full collection:
 *      the trees start the timed part in the oldest generation, as a
 *      program's long-lived data would be.
 *   2. (timed) makes short-lived containers, BATCH at a time in a list that
 *      is then dropped (so that some live across a young collection, and
 *      the count of allocations less deallocations that starts collections
 *      rises): each a list [I] or a Node with val = I (by a random bit), I
 *      = 1000 + a random number below 10^6; and every CYCLE_EVERY
 *      containers a Node whose kids is itself, dropped: cyclic garbage
 *      (2 objects, 1 container; noted with hl_gc_note_garbage), so that
 *      collections find something.
 * ops = containers made in step 2 (the self-cycles not counted).
 *
 * The checksum folds each container's I and a final walk of the tree's
 * vals: it depends on the seed, the scale and the thread only.
 * bench/python/gc_traversal.py does the same on CPython.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define BATCH 1000u
#define CYCLE_EVERY 64u
#define CONTAINERS_PER_SCALE 4000000ull

typedef struct gt_shared {
  hl_type_t *node;            /* kids, val */
  uint64_t tree_objects;      /* in all, split among the threads */
  unsigned threads;
} gt_shared_t;

static void gt_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  gt_shared_t *s = shared;
  if (!s) return;
  free(s);
}

static int gt_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  gt_shared_t *s = calloc(1, sizeof *s);
  if (!s || !(s->node = hl_class_new("Node", 2, false, NULL))) {
    snprintf(err, errlen, "gc-traversal: out of memory");
    free(s);
    return -ENOMEM;
  }
  s->tree_objects = c->scale * 1000000ull;
  s->threads = c->threads;
  *shared = s;
  return 0;
}

/* The tree (a new reference to its root, NULL when memory ran out). nodes
 * gets every node, borrowed, in order; *count how many. */
static hl_object_t *build_tree(const gt_shared_t *s, uint64_t objects, hl_object_t **nodes,
                               uint64_t *count) {
  uint64_t made = 0, n = 0;
  hl_object_t *root = NULL;
  while (made < objects) {
    if ((n & 1023) == 0) HL_WORKLOAD_CHECKPOINT();
    hl_object_t *node = hl_instance_new(s->node), *I = hl_int_new((int64_t)(1000 + n));
    bool ok = node && I;
    if (ok) hl_slot_set(node, 1, I);
    if (ok && n > 0) {
      hl_object_t *parent = nodes[(n - 1) / 4], *kids = hl_slot_get(parent, 0);
      if (!kids) {
        hl_object_t *l = hl_list_new(0);
        ok = l != NULL;
        if (ok) hl_slot_set(parent, 0, l);
        hl_xdecref(l);
        kids = hl_slot_get(parent, 0);
        made++;
      }
      ok = ok && hl_list_append(kids, node) == 0;
    }
    hl_xdecref(I);
    if (!ok) {
      hl_xdecref(node);
      break;
    }
    if (n == 0) root = node;   /* our reference */
    else hl_decref(node);      /* its parent's list holds it */
    nodes[n++] = node;
    made += 2;
  }
  *count = n;
  if (made < objects) {
    hl_xdecref(root);
    return NULL;
  }
  return root;
}

static void gt_work(hl_worker_t *w) {
  gt_shared_t *s = w->shared;
  hl_rand_t *rng = &w->rng;
  uint64_t ops = 0, sum = hl_fnv1a_u64(HL_FNV_OFFSET, w->index), nnodes = 0;
  /* this thread's share; the first takes the remainder */
  uint64_t objects = s->tree_objects / s->threads + (w->index ? 0 : s->tree_objects % s->threads);
  /* every node makes at least 2 objects: at most half the size in nodes */
  hl_object_t **nodes = malloc((objects / 2 + 1) * sizeof *nodes), *root = NULL;
  if (!nodes) hl_worker_fail(w, "out of memory for the tree's index");
  else if (!(root = build_tree(s, objects, nodes, &nnodes)))
    hl_worker_fail(w, "out of memory building the tree: %s", hl_err_message());
  /* the graph is old by the time the steady part matters: a full collection
   * moves it into the oldest generation (the twin calls gc.collect() too) */
  hl_worker_begin_collected(w);
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t n = hl_worker_chunk(w, ops, BATCH);
    hl_object_t *batch = hl_list_new(0);
    if (!batch) {
      hl_worker_fail(w, "out of memory for a batch");
      break;
    }
    for (uint64_t k = 0; k < n; k++) {
      HL_WORKLOAD_CHECKPOINT();
      uint64_t r = hl_rand_next(rng), v = 1000 + (r >> 1) % 1000000;
      hl_object_t *I = hl_int_new((int64_t)v), *o = NULL;
      if (I && (r & 1)) {
        if ((o = hl_instance_new(s->node))) hl_slot_set(o, 1, I);
      } else if (I && (o = hl_list_new(0)) && hl_list_append(o, I) != 0) {
        hl_decref(o);
        o = NULL;
      }
      hl_xdecref(I);
      if (HL_UNLIKELY(!o || hl_list_append(batch, o) != 0)) {
        hl_xdecref(o);
        hl_worker_fail(w, "out of memory: %s", hl_err_message());
        break;
      }
      if ((ops + k) % CYCLE_EVERY == CYCLE_EVERY - 1) {
        /* o is a Node or a list; the self-cycle is a Node of its own */
        hl_object_t *c = hl_instance_new(s->node), *J = c ? hl_int_new((int64_t)v) : NULL;
        if (HL_UNLIKELY(!J)) {
          hl_xdecref(c);
          hl_decref(o);
          hl_worker_fail(w, "out of memory making cyclic garbage: %s", hl_err_message());
          break;
        }
        hl_slot_set(c, 1, J);
        hl_slot_set(c, 0, c);
        hl_decref(J);
        hl_decref(c);
        hl_gc_note_garbage(1);
        w->cyclic_garbage += 2;
      }
      hl_decref(o);
      sum = hl_fnv1a_u64(sum, v);
    }
    ops += hl_list_size(batch);
    hl_decref(batch);
  }
  /* the tree's vals: it survived every collection intact */
  for (uint64_t i = 0; i < nnodes && root && !w->error; i++) {
    if ((i & 1023) == 0) HL_WORKLOAD_CHECKPOINT();
    sum = hl_fnv1a_u64(sum, (uint64_t)hl_int_value(hl_slot_get(nodes[i], 1)));
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
  hl_xdecref(root);
  free(nodes);
}

const hl_workload_t hl_workload_gc_traversal = {
  .name = "gc-traversal",
  .summary = "a 4-ary tree of scale million live objects (instances and lists, split among "
             "the threads) that survives every collection, beside short-lived containers in "
             "batches of 1000: the cost of the collector looking at live data",
  .unit = "a tree of 1,000,000 objects in all; 4,000,000 short-lived containers per thread",
  .uses = HL_RUNNER_USES | HL_OBJ_USES,
  .ops_per_scale = CONTAINERS_PER_SCALE,
  .setup = gt_setup,
  .work = gt_work,
  .teardown = gt_teardown,
};
