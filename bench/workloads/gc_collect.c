/* gc-collect: the collector's throughput on big cyclic garbage.
 *
 * In the spirit of pyperformance's bm_gc_collect (which builds many rings
 * of Node objects linked through lists, drops them and times gc.collect()):
 * here each worker builds one large cyclic structure at a time, a doubly
 * linked ring of N = RING_NODES Node instances (slots next and prev: every
 * node is in two cycles), drops it, and builds the next. Nothing but a
 * collection frees a ring, and the collector runs on its own schedule
 * (--threshold): the figures are how fast it clears garbage that comes in
 * blocks of 100,000 containers, and how long the pauses that do it are.
 *
 * ops = nodes made. Each dropped ring is noted (hl_gc_note_garbage) as its
 * nodes, all tracked containers. With --duration-s, a ring under way at the
 * deadline is closed as it is and dropped. With --gc=none every node leaks
 * and the worker counts them.
 *
 * The checksum folds each ring's number and length and a walk of each ring
 * (forwards by next, checking prev points back) before it is dropped: it
 * depends on the scale and the thread only.
 * bench/python/gc_collect.py does the same on CPython.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define RING_NODES 100000u
#define NODES_PER_SCALE 2000000ull

typedef struct gcc_shared {
  hl_type_t *node;            /* next, prev */
} gcc_shared_t;

static void gcc_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  free(shared);
}

static int gcc_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  (void)c;
  gcc_shared_t *s = calloc(1, sizeof *s);
  if (!s || !(s->node = hl_class_new("Node", 2, false, NULL))) {
    snprintf(err, errlen, "gc-collect: out of memory");
    free(s);
    return -ENOMEM;
  }
  *shared = s;
  return 0;
}

/* The ring's length by its next links; 0 when a prev link does not point
 * back (a corrupt graph). */
static uint64_t walk(hl_object_t *first) {
  uint64_t n = 0;
  hl_object_t *o = first;
  do {
    hl_object_t *next = hl_slot_get(o, 0);
    if (hl_slot_get(next, 1) != o) return 0;
    o = next;
    n++;
  } while (o != first);
  return n;
}

static void gcc_work(hl_worker_t *w) {
  const gcc_shared_t *s = w->shared;
  uint64_t ops = 0, rings = 0, sum = hl_fnv1a_u64(HL_FNV_OFFSET, w->index);

  hl_worker_begin(w);
  bool more = hl_worker_tick(w, ops);
  while (!w->error && more) {
    /* one ring: first holds our reference, each node holds the next */
    hl_object_t *first = hl_instance_new(s->node), *cur = first;
    if (!first) {
      hl_worker_fail(w, "out of memory starting a ring: %s", hl_err_message());
      break;
    }
    uint64_t built = 1;
    ops++;
    while (built < RING_NODES) {
      HL_WORKLOAD_CHECKPOINT();
      if ((ops & 255) == 0 && !(more = hl_worker_tick(w, ops))) break;
      hl_object_t *n = hl_instance_new(s->node);
      if (HL_UNLIKELY(!n)) {
        hl_worker_fail(w, "out of memory building a ring: %s", hl_err_message());
        break;
      }
      hl_slot_set(cur, 0, n);
      hl_slot_set(n, 1, cur);
      hl_decref(n);   /* cur holds it */
      cur = n;
      built++;
      ops++;
    }
    /* closed even when cut short: the garbage is always a ring */
    hl_slot_set(cur, 0, first);
    hl_slot_set(first, 1, cur);
    uint64_t len = walk(first);
    if (HL_UNLIKELY(len != built)) hl_worker_fail(w, "ring %llu: walked %llu nodes of %llu",
                                                  (unsigned long long)rings,
                                                  (unsigned long long)len,
                                                  (unsigned long long)built);
    sum = hl_fnv1a_u64(hl_fnv1a_u64(sum, rings), len);
    hl_decref(first);
    hl_gc_note_garbage(built);
    w->cyclic_garbage += built;
    rings++;
    if (more) more = hl_worker_tick(w, ops);
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
}

const hl_workload_t hl_workload_gc_collect = {
  .name = "gc-collect",
  .summary = "doubly linked rings of 100,000 instances built and dropped, one after "
             "another (pyperformance's gc_collect): the collector's throughput on big "
             "cyclic garbage",
  .unit = "2,000,000 nodes (20 rings) made per thread",
  .uses = HL_RUNNER_USES | HL_OBJ_USES,
  .ops_per_scale = NODES_PER_SCALE,
  .setup = gcc_setup,
  .work = gcc_work,
  .teardown = gcc_teardown,
};
