/* heaplab-gc-cost: the instructions a look at the whole heap costs per
 * object, the incremental collector's scan beside stw's full collection,
 * for valgrind --tool=callgrind (scripts/callgrind-gc, which counts the
 * instructions inside look_full and look_scan alone: repeatable where
 * times on a shared machine are not).
 *
 * usage: heaplab-gc-cost full|scan [RECORDS]
 *
 * Builds long-lived's heap shape (bench/workloads/long_lived.c): RECORDS
 * records (default 50,000) of its four kinds, in chunk lists of 1000 under
 * one top list; collects once in full (so that tuples and dicts that can be
 * are untracked, as they would be in a long-running program); then looks
 * at the whole heap LOOKS times: `full` with gc.collect() (--gc=stw's full
 * collection), `scan` with increments of the incremental collector until
 * that many scans have completed (--gc=incremental, a budget in units large
 * enough for a scan in one increment: the scan's own work, not its pacing).
 * Prints the objects each look examined, from the collector's statistics
 * (visited for a full collection, the scan's marked objects for a scan),
 * which scripts/callgrind-gc divides the instructions by.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_alloc.h"
#include "hl_gc.h"

#define LOOKS 3
#define CHUNK 1000

static hl_type_t *Rec;

static hl_object_t *record(uint64_t i) {
  char buf[24];
  int len = snprintf(buf, sizeof buf, "r%llu", (unsigned long long)i);
  hl_object_t *I = hl_int_new((int64_t)(1000 + i)), *F = hl_float_new((double)i + 0.25);
  hl_object_t *S = hl_str_new(buf, (size_t)len), *o = NULL;
  switch (i & 3) {
  case 0: o = hl_tuple_pack(3, I, F, S); break;
  case 1: {
    hl_object_t *tags = hl_list_new(0);
    hl_list_append(tags, F);
    hl_list_append(tags, S);
    o = hl_instance_new(Rec);
    hl_slot_set(o, 0, I);
    hl_slot_set(o, 1, tags);
    hl_decref(tags);
    break;
  }
  case 2: {
    hl_object_t *F2 = hl_float_new((double)i + 0.75), *pos = hl_tuple_pack(2, F, F2);
    o = hl_dict_new();
    hl_object_t *k = hl_str_intern_cstr("id"), *n = hl_str_intern_cstr("name"),
                *p = hl_str_intern_cstr("pos");
    hl_dict_set(o, k, I);
    hl_dict_set(o, n, S);
    hl_dict_set(o, p, pos);
    hl_decref(k);
    hl_decref(n);
    hl_decref(p);
    hl_decref(F2);
    hl_decref(pos);
    break;
  }
  default:
    o = hl_list_new(0);
    hl_list_append(o, I);
    hl_list_append(o, S);
    break;
  }
  hl_decref(I);
  hl_decref(F);
  hl_decref(S);
  return o;
}

/* The two measured functions (callgrind --toggle-collect), not inlined. */
__attribute__((noinline)) void look_full(void) {
  for (int i = 0; i < LOOKS; i++) hl_gc_collect(HL_GC_GENERATIONS - 1);
}
__attribute__((noinline)) void look_scan(void) {
  hl_gc_stats_t s;
  hl_gc_stats(&s);
  uint64_t want = s.scans + LOOKS + 1;   /* + 1: the first increment may end one under way */
  while (s.scans < want) {
    hl_gc_step();
    hl_gc_stats(&s);
  }
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "full") && strcmp(argv[1], "scan"))) {
    fprintf(stderr, "usage: heaplab-gc-cost full|scan [RECORDS]\n");
    return 2;
  }
  bool scan = strcmp(argv[1], "scan") == 0;
  long records = argc > 2 ? strtol(argv[2], NULL, 10) : 50000;
  if (records < 1 || records > 100000000) {
    fprintf(stderr, "heaplab-gc-cost: RECORDS must be in 1..100000000, not '%s'\n", argv[2]);
    return 2;
  }
  hl_config_t cfg;
  char err[256];
  hl_config_defaults(&cfg);
  cfg.gc = scan ? HL_GC_INCREMENTAL : HL_GC_STW;
  if (hl_runtime_init(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "heaplab-gc-cost: %s\n", err);
    return 1;
  }
  hl_gc_disable();
  Rec = hl_class_new("Rec", 3, false, NULL);
  hl_object_t *top = hl_list_new(0), *chunk = NULL;
  for (long i = 0; i < records; i++) {
    if (i % CHUNK == 0) {
      chunk = hl_list_new(0);
      hl_list_append(top, chunk);
      hl_decref(chunk);
    }
    hl_object_t *o = record((uint64_t)i);
    if (!o || hl_list_append(chunk, o) != 0) {
      fprintf(stderr, "heaplab-gc-cost: out of memory\n");
      return 1;
    }
    hl_decref(o);
  }
  hl_gc_collect(HL_GC_GENERATIONS - 1);
  hl_gc_set_increment_units(UINT64_C(1) << 40);
  hl_gc_stats_reset();
  if (scan) look_scan();
  else look_full();
  hl_gc_stats_t s;
  hl_gc_stats(&s);
  /* objects per look: a full collection's visited; a scan's objects are
   * the same old generation, which a full collection would visit */
  hl_gc_collect(HL_GC_GENERATIONS - 1);
  hl_gc_stats_t f;
  hl_gc_stats(&f);
  uint64_t per_look = f.visited_gen[HL_GC_GENERATIONS - 1] - s.visited_gen[HL_GC_GENERATIONS - 1];
  printf("%s looks=%llu objects_per_look=%llu scans=%llu scan_units=%llu\n", argv[1],
         (unsigned long long)(scan ? s.scans : LOOKS), (unsigned long long)per_look,
         (unsigned long long)s.scans, (unsigned long long)s.scan_units);
  hl_decref(top);
  hl_runtime_fini();
  return 0;
}
