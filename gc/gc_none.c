/* --gc=none: reference counting alone, the baseline. Nothing is tracked
 * and nothing counted (hli_gc.active is false, so the inline tracking in
 * gc_internal.h returns at once and the gc module's calls find nothing);
 * cyclic garbage leaks. The benchmark runner then expects exactly the
 * objects its workload reports as left in cyclic garbage to be still
 * allocated at the end (bench/objects.c). */
#include "collector.h"

const hli_collector_t hli_collector_none = {
  .name = "none",
  .tracks = false,
};
