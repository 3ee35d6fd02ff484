/* The workloads `heaplab list` shows and `heaplab run` accepts. */
#include <string.h>

#include "workload.h"

extern const hl_workload_t hl_workload_malloc_churn;
extern const hl_workload_t hl_workload_alloc_lifo;
extern const hl_workload_t hl_workload_alloc_lifo_large;
extern const hl_workload_t hl_workload_alloc_random;
extern const hl_workload_t hl_workload_alloc_frag;
extern const hl_workload_t hl_workload_alloc_xthread;
extern const hl_workload_t hl_workload_alloc_larson;
extern const hl_workload_t hl_workload_alloc_mstress;
extern const hl_workload_t hl_workload_cache_thrash;
extern const hl_workload_t hl_workload_cache_scratch;
extern const hl_workload_t hl_workload_binary_trees;
extern const hl_workload_t hl_workload_binary_trees_inst;
extern const hl_workload_t hl_workload_churn;
extern const hl_workload_t hl_workload_convoy;
extern const hl_workload_t hl_workload_shared;
extern const hl_workload_t hl_workload_prodcons;
extern const hl_workload_t hl_workload_cycles;
extern const hl_workload_t hl_workload_long_lived;
extern const hl_workload_t hl_workload_gc_cpu;
extern const hl_workload_t hl_workload_gc_mem;
extern const hl_workload_t hl_workload_cyclotron;
extern const hl_workload_t hl_workload_trash_loop;
extern const hl_workload_t hl_workload_gc_collect;
extern const hl_workload_t hl_workload_gc_traversal;
extern const hl_workload_t hl_workload_heap_load;
extern const hl_workload_t hl_workload_prefork;
extern const hl_workload_t hl_workload_replay;

const hl_workload_t *const hl_workloads[] = {
  &hl_workload_malloc_churn,
  &hl_workload_alloc_lifo,
  &hl_workload_alloc_lifo_large,
  &hl_workload_alloc_random,
  &hl_workload_alloc_frag,
  &hl_workload_alloc_xthread,
  &hl_workload_alloc_larson,
  &hl_workload_alloc_mstress,
  &hl_workload_cache_thrash,
  &hl_workload_cache_scratch,
  &hl_workload_binary_trees,
  &hl_workload_binary_trees_inst,
  &hl_workload_churn,
  &hl_workload_convoy,
  &hl_workload_shared,
  &hl_workload_prodcons,
  &hl_workload_cycles,
  &hl_workload_long_lived,
  &hl_workload_gc_cpu,
  &hl_workload_gc_mem,
  &hl_workload_cyclotron,
  &hl_workload_trash_loop,
  &hl_workload_gc_collect,
  &hl_workload_gc_traversal,
  &hl_workload_heap_load,
  &hl_workload_prefork,
  &hl_workload_replay,
};
const size_t hl_workload_count = sizeof hl_workloads / sizeof hl_workloads[0];

const hl_workload_t *hl_workload_find(const char *name) {
  for (size_t i = 0; i < hl_workload_count; i++)
    if (strcmp(hl_workloads[i]->name, name) == 0) return hl_workloads[i];
  return NULL;
}
