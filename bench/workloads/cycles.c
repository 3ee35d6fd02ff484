/* cycles: the seed's Node example at scale. Reference cycles are built,
 * walked and dropped; reference counting frees none of them, only the cycle
 * collector does.
 *
 * The seed (gc/ documents, "the Node class"):
 *     class Node:
 *         def __init__(self, value): self.value = value; self.next = None
 *     a, b, c = Node(1), Node(2), Node(3)
 *     a.next = b; b.next = c; c.next = a       # a ring: unreachable once dropped
 *
 * One operation builds one structure, walks it (the checksum) and drops it,
 * or with probability 1/4 keeps it in a window of WINDOW structures in place
 * of a random older one, which is dropped then: some cycles outlive a young
 * collection or two, as the objects of a real program do. Structures, in
 * equal shares:
 *   ring         n = 2..16 Node instances (slots value, next), value a
 *                fresh int: 2n objects;
 *   doubly       a doubly linked list of n = 2..32 DNode instances (slots
 *                value, prev, next; every neighbour pair is a cycle), value a
 *                fresh float: 2n objects;
 *   list-tuple   a list of k = 1..8 tuples (int, the list): each tuple and
 *                the list form a cycle, 1 + 2k objects;
 *   dict         a dict of k = 1..8 entries int -> [the dict, float]: 1 + 3k
 *                objects.
 * Every object of a structure is made for it (ints above the small-int cache,
 * floats, no interned string), so that with --gc=none, where every
 * structure leaks, the worker knows exactly how many objects it leaves in
 * cyclic garbage (hl_worker_t.cyclic_garbage, checked by the runner): all it
 * made. ops = objects made. With --gc=none the RSS grows without bound
 * (--trace shows it); with --gc=stw it stays flat.
 *
 * The checksum folds each structure's kind, size and the values found by
 * walking it: it depends on the seed and the thread only, never on the
 * collector, the allocator, the free lists or immortality.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define WINDOW 64u
#define KEEP_ONE_IN 4u

typedef struct cycles_shared {
  hl_type_t *node;            /* value, next */
  hl_type_t *dnode;           /* value, prev, next */
} cycles_shared_t;

static int cycles_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  (void)c;
  cycles_shared_t *s = calloc(1, sizeof *s);
  if (!s || !(s->node = hl_class_new("Node", 2, false, NULL)) ||
      !(s->dnode = hl_class_new("DNode", 3, false, NULL))) {
    snprintf(err, errlen, "cycles: out of memory");
    free(s);
    return -ENOMEM;
  }
  *shared = s;
  return 0;
}

static void cycles_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  free(shared);   /* the classes go with hl_runtime_fini */
}

/* Each builder returns a new reference, or NULL when memory ran out (what it
 * made is then dropped: a run that runs out of memory fails). *objects
 * gets the number of objects made, *sum what walking the structure finds. */

static hl_object_t *build_ring(const cycles_shared_t *s, unsigned n, uint64_t base,
                               uint64_t *objects, uint64_t *sum) {
  hl_object_t *first = NULL, *prev = NULL;
  for (unsigned i = 0; i < n; i++) {
    hl_object_t *x = hl_instance_new(s->node), *v = hl_int_new((int64_t)(base + i));
    if (!x || !v) {
      hl_xdecref(x);
      hl_xdecref(v);
      hl_xdecref(first);
      return NULL;
    }
    hl_slot_set(x, 0, v);
    hl_decref(v);
    if (prev) hl_slot_set(prev, 1, x);
    if (!first) first = hl_newref(x);
    prev = x;
    hl_decref(x);   /* held by prev's next slot, or by first */
  }
  hl_slot_set(prev, 1, first);   /* c.next = a */
  *objects = 2ull * n;
  /* walk once around */
  uint64_t acc = 0;
  hl_object_t *x = first;
  do {
    acc += (uint64_t)hl_int_value(hl_slot_get(x, 0));
    x = hl_slot_get(x, 1);
  } while (x != first);
  *sum = acc;
  return first;
}

static hl_object_t *build_doubly(const cycles_shared_t *s, unsigned n, uint64_t base,
                                 uint64_t *objects, uint64_t *sum) {
  hl_object_t *head = NULL, *tail = NULL;
  for (unsigned i = 0; i < n; i++) {
    hl_object_t *x = hl_instance_new(s->dnode), *v = hl_float_new((double)(base + i) + 0.5);
    if (!x || !v) {
      hl_xdecref(x);
      hl_xdecref(v);
      hl_xdecref(head);
      return NULL;
    }
    hl_slot_set(x, 0, v);
    hl_decref(v);
    if (tail) {
      hl_slot_set(tail, 2, x);
      hl_slot_set(x, 1, tail);
    }
    if (!head) head = hl_newref(x);
    tail = x;
    hl_decref(x);
  }
  *objects = 2ull * n;
  /* forward to the tail, then back to the head */
  uint64_t acc = 0;
  hl_object_t *x = head;
  while (hl_slot_get(x, 2)) x = hl_slot_get(x, 2);
  for (; x; x = hl_slot_get(x, 1)) acc += (uint64_t)hl_float_value(hl_slot_get(x, 0));
  *sum = acc;
  return head;
}

static hl_object_t *build_list_tuple(unsigned k, uint64_t base, uint64_t *objects,
                                     uint64_t *sum) {
  hl_object_t *l = hl_list_new(0);
  if (!l) return NULL;
  for (unsigned i = 0; i < k; i++) {
    hl_object_t *v = hl_int_new((int64_t)(base + i)), *t = v ? hl_tuple_pack(2, v, l) : NULL;
    int r = t ? hl_list_append(l, t) : -1;
    hl_xdecref(v);
    hl_xdecref(t);
    if (r != 0) {
      hl_decref(l);
      return NULL;
    }
  }
  *objects = 1 + 2ull * k;
  uint64_t acc = 0;
  for (size_t i = 0; i < hl_list_size(l); i++) {
    hl_object_t *t = hl_list_get(l, i);
    acc += (uint64_t)hl_int_value(hl_tuple_get(t, 0)) + (hl_tuple_get(t, 1) == l);
  }
  *sum = acc;
  return l;
}

static hl_object_t *build_dict(unsigned k, uint64_t base, uint64_t *objects, uint64_t *sum) {
  hl_object_t *d = hl_dict_new();
  if (!d) return NULL;
  for (unsigned i = 0; i < k; i++) {
    hl_object_t *key = hl_int_new((int64_t)(base + i)), *l = hl_list_new(0);
    hl_object_t *f = hl_float_new((double)i * 0.25);
    int r = key && l && f && hl_list_append(l, d) == 0 && hl_list_append(l, f) == 0
                ? hl_dict_set(d, key, l)
                : -1;
    hl_xdecref(key);
    hl_xdecref(l);
    hl_xdecref(f);
    if (r != 0) {
      hl_decref(d);
      return NULL;
    }
  }
  *objects = 1 + 3ull * k;
  uint64_t acc = 0;
  size_t pos = 0;
  hl_object_t *key, *value;
  while (hl_dict_next(d, &pos, &key, &value))
    acc += (uint64_t)hl_int_value(key) + (uint64_t)(hl_float_value(hl_list_get(value, 1)) * 4) +
           (hl_list_get(value, 0) == d);
  *sum = acc;
  return d;
}

static void cycles_work(hl_worker_t *w) {
  const cycles_shared_t *s = w->shared;
  hl_object_t *win[WINDOW] = {0};
  hl_rand_t *rng = &w->rng;
  uint64_t ops = 0, made = 0, sum = hl_fnv1a_u64(HL_FNV_OFFSET, w->index);
  uint64_t base = 1000;   /* values above the small-int cache: each int is a fresh object */

  hl_worker_begin(w);
  while (!w->error && hl_worker_tick(w, ops)) {
    for (unsigned step = 0; step < 64; step++) {
      HL_WORKLOAD_CHECKPOINT();
      uint64_t r = hl_rand_next(rng), objects = 0, walked = 0;
      unsigned kind = (unsigned)(r & 3);
      r >>= 2;
      hl_object_t *o;
      switch (kind) {
      case 0: o = build_ring(s, 2 + (unsigned)(r % 15), base, &objects, &walked); break;
      case 1: o = build_doubly(s, 2 + (unsigned)(r % 31), base, &objects, &walked); break;
      case 2: o = build_list_tuple(1 + (unsigned)(r % 8), base, &objects, &walked); break;
      default: o = build_dict(1 + (unsigned)(r % 8), base, &objects, &walked); break;
      }
      if (HL_UNLIKELY(!o)) {
        hl_worker_fail(w, "out of memory building a cycle: %s", hl_err_message());
        break;
      }
      base += 64;
      made += objects;
      ops += objects;
      sum = hl_fnv1a_u64(sum, ((uint64_t)kind << 56) ^ (objects << 32) ^ walked);
      if (hl_rand_below(rng, KEEP_ONE_IN) == 0) {
        hl_object_t **slot = &win[hl_rand_below(rng, WINDOW)];
        hl_object_t *old = *slot;
        *slot = o;
        hl_xdecref(old);
      } else {
        hl_decref(o);
      }
    }
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
  /* untimed: the window goes too, as cyclic garbage like the rest */
  for (unsigned i = 0; i < WINDOW; i++) hl_xdecref(win[i]);
  w->cyclic_garbage = made;
}

const hl_workload_t hl_workload_cycles = {
  .name = "cycles",
  .summary = "the seed's Node example at scale: rings of instances, doubly linked lists, "
             "list-tuple and dict cycles built, walked and dropped; only the cycle collector "
             "frees them (with --gc=none the RSS grows)",
  .unit = "2,000,000 objects in cycles per thread",
  .uses = HL_RUNNER_USES | HL_OBJ_USES,
  .ops_per_scale = 2000000,
  .setup = cycles_setup,
  .work = cycles_work,
  .teardown = cycles_teardown,
};
