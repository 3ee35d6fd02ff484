/* gc-cpu and gc-mem: the pair for the threshold-tuning experiment.
 *
 * Raising generation 0's threshold (gc.set_threshold) trades memory for
 * time: fewer collections cost less CPU, but cyclic garbage waits longer
 * before a collection frees it. Which side wins depends on the program, so
 * the experiment runs two programs that each feel only one side:
 *
 *   gc-cpu  acyclic batches, as a program that loads records, works on
 *           them and lets them go: every operation makes one container (a
 *           tuple (I, F), a list [I, S], a 3-slot instance holding I, or a
 *           dict {"v": I}; 30/30/20/20 %) and appends it to the current
 *           batch; a batch of BATCH records is walked (the checksum) and
 *           dropped, and reference counting frees it. A collection is due
 *           whenever containers made outnumber containers freed by the
 *           threshold (CPython's count), so a growing batch brings young
 *           collections, older ones and now and then a full one, each
 *           examining the batch so far and never finding garbage:
 *           collections only cost time. (A program whose every allocation
 *           is matched by a free never collects: a steady window of live
 *           objects would measure nothing.) A higher threshold makes it
 *           faster at the same memory.
 *   gc-mem  cyclic garbage: every operation makes a pair of instances that
 *           point at each other, one holding a list of 8 floats and a
 *           256-byte str, and drops it (14 objects, about 0.8 KiB). Nothing
 *           but a collection frees them, so the memory in use follows the
 *           garbage made between collections: a higher threshold makes the
 *           peak RSS grow, for little time saved. With --gc=none every
 *           operation leaks (the worker counts what it left).
 *
 * ops = operations; I is an int above the small-int cache, F a float, S a
 * short str. The checksums fold each operation's values: they depend on the
 * seed and the thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

#define BATCH 50000u
#define PAYLOAD_FLOATS 8u
#define PAYLOAD_STR 256u
#define MEM_OBJECTS (2u + 2u + 1u + PAYLOAD_FLOATS + 1u)   /* Recs, ids, list, floats, str */

typedef struct tuning_shared {
  hl_type_t *rec;             /* id, tags, peer */
  hl_object_t *k_v;           /* "v", interned */
} tuning_shared_t;

static void tuning_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  tuning_shared_t *s = shared;
  if (!s) return;
  hl_xdecref(s->k_v);
  free(s);
}

static int tuning_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  (void)c;
  tuning_shared_t *s = calloc(1, sizeof *s);
  if (!s || !(s->rec = hl_class_new("Rec", 3, false, NULL)) ||
      !(s->k_v = hl_str_intern_cstr("v"))) {
    snprintf(err, errlen, "gc tuning workload: out of memory");
    tuning_teardown(s, NULL);
    return -ENOMEM;
  }
  *shared = s;
  return 0;
}

/* ---- gc-cpu ------------------------------------------------------------------------ */
static hl_object_t *cpu_object(const tuning_shared_t *s, uint64_t i, unsigned kind) {
  hl_object_t *I = hl_int_new((int64_t)(1000 + i)), *o = NULL;
  if (!I) return NULL;
  if (kind < 30) {
    hl_object_t *F = hl_float_new((double)i * 0.5);
    o = F ? hl_tuple_pack(2, I, F) : NULL;
    hl_xdecref(F);
  } else if (kind < 60) {
    char buf[24];
    int len = snprintf(buf, sizeof buf, "s%llu", (unsigned long long)i);
    hl_object_t *S = hl_str_new(buf, (size_t)len);
    o = S ? hl_list_new(0) : NULL;
    if (o && (hl_list_append(o, I) != 0 || hl_list_append(o, S) != 0)) {
      hl_decref(o);
      o = NULL;
    }
    hl_xdecref(S);
  } else if (kind < 80) {
    o = hl_instance_new(s->rec);
    if (o) hl_slot_set(o, 0, I);
  } else {
    o = hl_dict_new();
    if (o && hl_dict_set(o, s->k_v, I) != 0) {
      hl_decref(o);
      o = NULL;
    }
  }
  hl_decref(I);
  return o;
}

static void cpu_work(hl_worker_t *w) {
  const tuning_shared_t *s = w->shared;
  hl_rand_t *rng = &w->rng;
  uint64_t ops = 0, sum = hl_fnv1a_u64(HL_FNV_OFFSET, w->index);

  hl_worker_begin(w);
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t n = hl_worker_chunk(w, ops, BATCH);
    hl_object_t *batch = hl_list_new(0);
    if (!batch) {
      hl_worker_fail(w, "out of memory for a batch");
      break;
    }
    for (uint64_t k = 0; k < n; k++) {
      HL_WORKLOAD_CHECKPOINT();
      unsigned kind = (unsigned)(hl_rand_next(rng) % 100);
      hl_object_t *o = cpu_object(s, ops + k, kind);
      if (HL_UNLIKELY(!o || hl_list_append(batch, o) != 0)) {
        hl_xdecref(o);
        hl_worker_fail(w, "out of memory: %s", hl_err_message());
        break;
      }
      hl_decref(o);
      sum = hl_fnv1a_u64(sum, kind);
    }
    /* the batch's work: every record's I */
    for (size_t k = 0; k < hl_list_size(batch); k++) {
      if ((k & 1023) == 0) HL_WORKLOAD_CHECKPOINT();
      hl_object_t *o = hl_list_get(batch, k), *I;
      switch (o->type->kind) {
      case HL_K_TUPLE: I = hl_tuple_get(o, 0); break;
      case HL_K_LIST: I = hl_list_get(o, 0); break;
      case HL_K_INSTANCE: I = hl_slot_get(o, 0); break;
      default: I = hl_dict_get(o, s->k_v); break;
      }
      sum = hl_fnv1a_u64(sum, (uint64_t)hl_int_value(I));
    }
    ops += hl_list_size(batch);
    hl_decref(batch);
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
}

/* ---- gc-mem ------------------------------------------------------------------------ */
static bool mem_cycle(const tuning_shared_t *s, uint64_t i, char *text) {
  hl_object_t *a = hl_instance_new(s->rec), *b = hl_instance_new(s->rec);
  hl_object_t *ia = hl_int_new((int64_t)(1000 + 2 * i)), *ib = hl_int_new((int64_t)(1001 + 2 * i));
  hl_object_t *tags = hl_list_new(0), *str = hl_str_new(text, PAYLOAD_STR);
  bool ok = a && b && ia && ib && tags && str;
  for (unsigned k = 0; ok && k < PAYLOAD_FLOATS; k++) {
    hl_object_t *f = hl_float_new((double)i + k);
    ok = f && hl_list_append(tags, f) == 0;
    hl_xdecref(f);
  }
  if (ok) {
    hl_slot_set(a, 0, ia);
    hl_slot_set(a, 1, tags);
    hl_slot_set(a, 2, b);
    hl_slot_set(b, 0, ib);
    hl_slot_set(b, 1, str);
    hl_slot_set(b, 2, a);
  }
  hl_xdecref(a);
  hl_xdecref(b);
  hl_xdecref(ia);
  hl_xdecref(ib);
  hl_xdecref(tags);
  hl_xdecref(str);
  return ok;
}

static void mem_work(hl_worker_t *w) {
  const tuning_shared_t *s = w->shared;
  hl_rand_t *rng = &w->rng;
  uint64_t ops = 0, sum = hl_fnv1a_u64(HL_FNV_OFFSET, w->index);
  char text[PAYLOAD_STR];

  hl_worker_begin(w);
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t chunk = hl_worker_chunk(w, ops, 256);
    for (uint64_t k = 0; k < chunk; k++) {
      HL_WORKLOAD_CHECKPOINT();
      uint64_t r = hl_rand_next(rng);
      memset(text, 'a' + (int)(r % 26), sizeof text);
      if (HL_UNLIKELY(!mem_cycle(s, ops, text))) {
        hl_worker_fail(w, "out of memory: %s", hl_err_message());
        break;
      }
      sum = hl_fnv1a_u64(sum, r % 26);
      ops++;
    }
  }
  w->ops = ops;
  w->checksum = sum;
  w->cyclic_garbage = ops * MEM_OBJECTS;
  hl_worker_end(w);
}

const hl_workload_t hl_workload_gc_cpu = {
  .name = "gc-cpu",
  .summary = "acyclic batches of 50,000 containers built, walked and dropped: collections "
             "find nothing and only cost time (the CPU side of threshold tuning)",
  .unit = "4,000,000 containers made per thread",
  .uses = HL_RUNNER_USES | HL_OBJ_USES,
  .ops_per_scale = 4000000,
  .setup = tuning_setup,
  .work = cpu_work,
  .teardown = tuning_teardown,
};

const hl_workload_t hl_workload_gc_mem = {
  .name = "gc-mem",
  .summary = "pairs of instances pointing at each other with a 0.8 KiB payload, made and "
             "dropped: only collections free them (the memory side of threshold tuning)",
  .unit = "500,000 cycles (14 objects each) made per thread",
  .uses = HL_RUNNER_USES | HL_OBJ_USES,
  .ops_per_scale = 500000,
  .setup = tuning_setup,
  .work = mem_work,
  .teardown = tuning_teardown,
};
