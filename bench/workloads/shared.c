/* shared: threads read and update one dict of objects (cross-thread
 * reference counting and container locking).
 *
 * Setup makes a dict of 1,024 interned string keys, each mapped to a float.
 * Each operation picks a key at random and, 9 times in 10, reads its value
 * (hl_dict_get_ref: a new reference, taken without the dict's lock when it
 * can be) and drops it again; once in 10 it stores a new float made by this
 * thread under that key, replacing the old value. So values are made by one
 * thread, read by all, and dropped by whichever thread replaces them:
 *
 *   rc=gil      every operation under the GIL;
 *   rc=atomic   reads: a compare-and-swap increment and an atomic decrement
 *               of a count every thread writes; writes: the dict's lock;
 *   rc=biased   a value's count is its maker's local count, so a read by any
 *               other thread goes to the shared count; the thread that
 *               replaces another's value drops the dict's reference, which
 *               the maker counted: the shared count goes below zero, the
 *               value is queued to its maker and merged at its next
 *               checkpoint (the JSON "rc" object counts both).
 *
 * --pass-cycles=on: each value is a float in a ring of --cycle-size lists
 * (ring.h), read through the ring, so a replaced value is cyclic garbage
 * its maker made and another thread dropped (noted with
 * hl_gc_note_garbage); the teardown breaks the rings still in the dict.
 *
 * The dict is shared, so a replaced value is dropped after a QSBR grace
 * period (gc/shared.c). One operation is one read or one write. The
 * checksum folds every value read: with one thread it depends on the seed
 * only; with several, on how the threads interleave.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "workload.h"

#define NKEYS 1024u
#define WRITE_ONE_IN 10u

typedef struct shared_state {
  uint64_t ring;                  /* lists per ring with --pass-cycles, else 0 */
  hl_object_t *dict;
  hl_object_t *keys[NKEYS];
} shared_t;

static void shared_teardown(void *p, hl_result_alloc_t *alloc) {
  (void)alloc;
  shared_t *s = p;
  if (!s) return;
  /* the rings the dict still holds, broken: nothing of the setup's leaks */
  for (unsigned i = 0; s->ring && s->dict && i < NKEYS; i++) {
    hl_object_t *v = s->keys[i] ? hl_dict_get_ref(s->dict, s->keys[i]) : NULL;
    if (v) {
      hl_ring_break(v);
      hl_decref(v);
    }
    hl_err_clear();
  }
  hl_xdecref(s->dict);
  for (unsigned i = 0; i < NKEYS; i++) hl_xdecref(s->keys[i]);
  free(s);
}

/* A value: a float, in a ring with --pass-cycles (a new reference). */
static hl_object_t *value_new(const shared_t *s, double x) {
  hl_object_t *f = hl_float_new(x);
  if (!f || !s->ring) return f;
  hl_object_t *r = hl_ring_wrap(f, s->ring);
  hl_decref(f);
  return r;
}

/* The float a value holds (a new reference), or NULL with the error set. */
static hl_object_t *value_float(const shared_t *s, hl_object_t *v) {
  return s->ring ? hl_ring_value(v) : hl_newref(v);
}

static int shared_setup(const hl_config_t *c, void **out, char *err, size_t errlen) {
  shared_t *s = calloc(1, sizeof *s);
  if (!s || !(s->dict = hl_dict_new())) {
    snprintf(err, errlen, "out of memory");
    free(s);
    return -ENOMEM;
  }
  s->ring = c->pass_cycles ? c->cycle_size : 0;
  for (unsigned i = 0; i < NKEYS; i++) {
    char name[16];
    snprintf(name, sizeof name, "key%u", i);
    hl_object_t *v = NULL;
    if (!(s->keys[i] = hl_str_intern_cstr(name)) || !(v = value_new(s, i)) ||
        hl_dict_set(s->dict, s->keys[i], v) != 0) {
      snprintf(err, errlen, "shared: %s", hl_err_message());
      hl_xdecref(v);
      shared_teardown(s, NULL);
      return -ENOMEM;
    }
    hl_decref(v);
  }
  *out = s;
  return 0;
}

static void shared_work(hl_worker_t *w) {
  shared_t *s = w->shared;
  hl_rand_t *rng = &w->rng;
  uint64_t ops = 0, sum = hl_fnv1a_u64(HL_FNV_OFFSET, w->index);
  hl_worker_begin(w);
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t chunk = hl_worker_chunk(w, ops, 1024);
    for (uint64_t i = 0; i < chunk; i++) {
      HL_WORKLOAD_CHECKPOINT();
      uint64_t r = hl_rand_next(rng);
      hl_object_t *key = s->keys[r % NKEYS];
      if ((r >> 32) % WRITE_ONE_IN == 0) {
        hl_object_t *v = value_new(s, (double)(r >> 40));
        if (!v || hl_dict_set(s->dict, key, v) != 0) {
          hl_xdecref(v);
          hl_worker_fail(w, "storing a value: %s", hl_err_message());
          break;
        }
        hl_decref(v);
        if (s->ring) {   /* the ring replaced: its lists and its float */
          w->cyclic_garbage += s->ring + 1;
          hl_gc_note_garbage(s->ring);
        }
      } else {
        hl_object_t *v = hl_dict_get_ref(s->dict, key);
        hl_object_t *f = v ? value_float(s, v) : NULL;
        if (!f) {
          hl_xdecref(v);
          hl_worker_fail(w, "reading a value: %s", hl_err_message());
          break;
        }
        double x = hl_float_value(f);
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        sum = hl_fnv1a_u64(sum, bits);
        hl_decref(f);
        hl_decref(v);
      }
      ops++;
    }
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
}

const hl_workload_t hl_workload_shared = {
  .name = "shared",
  .summary = "threads read (9 in 10) and replace (1 in 10) the float values of one dict of "
             "1,024 keys: cross-thread reference counts, container locks, biased merges; "
             "--pass-cycles: each float in a ring of --cycle-size lists (cross-thread cyclic "
             "garbage)",
  .unit = "1,000,000 reads and writes per thread",
  .uses = HL_RUNNER_USES | HL_OBJ_USES | HL_OPT_BIT(HL_OPT_PASS_CYCLES) |
          HL_OPT_BIT(HL_OPT_CYCLE_SIZE),
  .ops_per_scale = 1000000,
  .setup = shared_setup,
  .work = shared_work,
  .teardown = shared_teardown,
};
