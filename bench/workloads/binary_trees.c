/* binary-trees and binary-trees-inst: GCBench's shape (Boehm, Ellis and
 * Kovac's GCBench; the Computer Language Benchmarks Game's binary-trees),
 * on heaplab objects.
 *
 * Each worker, with D = 15 + scale (scale=1: D = 16):
 *   1. builds one long-lived tree of depth D and keeps it to the end;
 *   2. for d = 4, 6, ..., D: builds 2^(D - d + 4) trees of depth d, one at a
 *      time, counts each one's nodes (the "check") and drops it;
 *   3. checks the long-lived tree and drops it.
 * A tree of depth d has 2^(d+1) - 1 nodes; each round of step 2 makes about
 * 2^(D+5) of them, so that every depth costs the same and the short-lived
 * trees outnumber the long-lived one's nodes 16 to 1 per round: the young
 * objects die young while an old structure stays put, the generational
 * hypothesis that GCBench was built to exercise. (The Benchmarks Game also
 * builds and drops one "stretch" tree of depth D+1 first; it is left out.)
 *
 * Nodes are pairs, as in the Python versions of the benchmark:
 *   binary-trees       a tuple (left, right); a leaf is (None, None)
 *   binary-trees-inst  an instance of a class with 2 slots (__slots__ =
 *                      ('left', 'right')); a leaf has both slots empty
 * One operation is one node made. Under reference counting a node dies the
 * moment its tree is dropped, so the run measures allocation, the free
 * lists (tuples of 2 have one; instances none) and deallocation.
 *
 * The checksum hashes every check (depth, iterations, node count): it
 * depends on D and the thread only, never on the allocator, the free lists
 * or immortality. With duration-s, rounds of step 2 repeat (from d = 4)
 * until the deadline, checked after every tree; the checksum then depends
 * on how far the run got.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define MIN_DEPTH 4
#define MAX_D 30   /* 2^35 nodes a round: far beyond memory already */

typedef struct bt_shared {
  uint32_t depth;             /* D */
  hl_type_t *node_cls;        /* binary-trees-inst: the class; NULL: tuples */
} bt_shared_t;

/* ---- tuples ----------------------------------------------------------------- */
static hl_object_t *tuple_tree(uint32_t d) {
  hl_object_t *t = hl_tuple_new(2);
  if (HL_UNLIKELY(!t)) return NULL;
  if (d == 0) {
    hl_tuple_set(t, 0, hl_newref(hl_None));
    hl_tuple_set(t, 1, hl_newref(hl_None));
    return t;
  }
  /* A checkpoint per inner node, as CPython's eval loop checks its breaker
   * at each call: without it a thread building a tree of depth 16 would
   * keep the GIL, or the world from stopping, for milliseconds. */
  HL_WORKLOAD_CHECKPOINT();
  hl_object_t *l = tuple_tree(d - 1);
  hl_object_t *r = l ? tuple_tree(d - 1) : NULL;
  /* steals: a NULL item (out of memory) is fine for the tuple's dealloc */
  hl_tuple_set(t, 0, l);
  hl_tuple_set(t, 1, r);
  if (HL_UNLIKELY(!r)) {
    hl_decref(t);
    return NULL;
  }
  return t;
}

static uint64_t tuple_check(hl_object_t *t) {
  hl_object_t *l = hl_tuple_get(t, 0);
  if (l == hl_None) return 1;
  return 1 + tuple_check(l) + tuple_check(hl_tuple_get(t, 1));
}

/* ---- instances ----------------------------------------------------------------- */
static hl_object_t *inst_tree(hl_type_t *cls, uint32_t d) {
  hl_object_t *n = hl_instance_new(cls);
  if (HL_UNLIKELY(!n) || d == 0) return n;
  HL_WORKLOAD_CHECKPOINT();   /* as in tuple_tree */
  hl_object_t *l = inst_tree(cls, d - 1);
  hl_object_t *r = l ? inst_tree(cls, d - 1) : NULL;
  if (HL_UNLIKELY(!r)) {
    hl_xdecref(l);
    hl_decref(n);
    return NULL;
  }
  hl_slot_set(n, 0, l);       /* borrows: the slot takes its own reference */
  hl_slot_set(n, 1, r);
  hl_decref(l);
  hl_decref(r);
  return n;
}

static uint64_t inst_check(hl_object_t *n) {
  hl_object_t *l = hl_slot_get(n, 0);
  if (!l) return 1;
  return 1 + inst_check(l) + inst_check(hl_slot_get(n, 1));
}

static hl_object_t *make(const bt_shared_t *s, uint32_t d) {
  return s->node_cls ? inst_tree(s->node_cls, d) : tuple_tree(d);
}

static uint64_t check(const bt_shared_t *s, hl_object_t *t) {
  return s->node_cls ? inst_check(t) : tuple_check(t);
}

static uint64_t nodes(uint32_t d) { return (2ull << d) - 1; }

static int bt_setup_common(const hl_config_t *c, void **shared, bool instances, char *err,
                           size_t errlen) {
  if (c->scale > MAX_D - 15) {
    snprintf(err, errlen, "option 'scale': value '%llu' is too large for binary-trees "
             "(depth 15 + scale, at most %d): accepted 1..%d",
             (unsigned long long)c->scale, MAX_D, MAX_D - 15);
    return -EINVAL;
  }
  bt_shared_t *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  s->depth = 15 + (uint32_t)c->scale;
  if (instances && !(s->node_cls = hl_class_new("Node", 2, false, NULL))) {
    snprintf(err, errlen, "binary-trees-inst: %s", hl_err_message());
    free(s);
    return -ENOMEM;
  }
  *shared = s;
  return 0;
}

static int bt_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  return bt_setup_common(c, shared, false, err, errlen);
}

static int bt_inst_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  return bt_setup_common(c, shared, true, err, errlen);
}

static void bt_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  free(shared);   /* the class goes with hl_runtime_fini */
}

static void bt_work(hl_worker_t *w) {
  const bt_shared_t *s = w->shared;
  const uint32_t D = s->depth;
  /* Runs with a fixed amount of work do exactly the schedule; the target
   * the runner set (ops_per_scale * scale) only approximates it. */
  if (!w->deadline_ns) w->target_ops = UINT64_MAX;
  uint64_t sum = hl_fnv1a_u64(HL_FNV_OFFSET, ((uint64_t)w->index << 32) | D), ops = 0;

  hl_worker_begin(w);
  hl_object_t *long_lived = make(s, D);
  if (!long_lived) {
    hl_worker_fail(w, "out of memory building the long-lived tree of depth %u", D);
  } else {
    ops += nodes(D);
    bool more = true;
    while (more && !w->error) {
      for (uint32_t d = MIN_DEPTH; more && d <= D; d += 2) {
        uint64_t iters = 1ull << (D - d + MIN_DEPTH), total = 0, i = 0;
        for (; i < iters; i++) {
          HL_WORKLOAD_CHECKPOINT();
          hl_object_t *t = make(s, d);
          if (HL_UNLIKELY(!t)) {
            hl_worker_fail(w, "out of memory building a tree of depth %u", d);
            more = false;
            break;
          }
          total += check(s, t);
          hl_decref(t);
          ops += nodes(d);
          if (!hl_worker_tick(w, ops)) {
            more = false;
            i++;
            break;
          }
        }
        sum = hl_fnv1a_u64(sum, ((uint64_t)d << 56) ^ (i << 32) ^ total);
      }
      more = more && w->deadline_ns;   /* a fixed run does the schedule once */
    }
    sum = hl_fnv1a_u64(sum, check(s, long_lived));
    hl_decref(long_lived);
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
}

const hl_workload_t hl_workload_binary_trees = {
  .name = "binary-trees",
  .summary = "GCBench: a long-lived tree of depth D, then 2^(D-d+4) short-lived trees of "
             "depth d = 4, 6, .., D; nodes are tuples (left, right)",
  .unit = "D = 15 + scale: scale=1 is depth 16, 14.7 million nodes per thread",
  .uses = HL_RUNNER_USES | HL_OBJ_USES,
  .ops_per_scale = 14723759,  /* nodes at D = 16 (progress only: D grows with scale) */
  .setup = bt_setup,
  .work = bt_work,
  .teardown = bt_teardown,
};

const hl_workload_t hl_workload_binary_trees_inst = {
  .name = "binary-trees-inst",
  .summary = "binary-trees with nodes that are instances of a class with 2 slots",
  .unit = "D = 15 + scale: scale=1 is depth 16, 14.7 million nodes per thread",
  .uses = HL_RUNNER_USES | HL_OBJ_USES,
  .ops_per_scale = 14723759,
  .setup = bt_inst_setup,
  .work = bt_work,
  .teardown = bt_teardown,
};
