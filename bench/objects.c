/* The object runtime around one run of an object workload (one whose uses
 * include HL_OPT_BIT(HL_OPT_RC)), and the leak check after it.
 *
 * The runner calls, in order:
 *   hl_objects_begin         before setup: hl_runtime_init (the allocator is
 *                            already up, so the runtime leaves it to the runner)
 *   hl_objects_worker_done   in each worker, when work() returns: its free
 *                            lists go back to the allocator, its counters into
 *                            the process totals
 *   hl_objects_end           after teardown: a last full collection (when a
 *                            collector runs), hl_runtime_fini, then the check
 *
 * The check is a bug detector, not a statistic: a workload releases every
 * object it made, and hl_runtime_fini drops the runtime's own (interned
 * strings, the empty tuple, the main thread's free lists), so afterwards
 *   allocated == freed                            (every allocator)
 *   blocks_in_use == the count before init        (alloc=pool)
 * where blocks_in_use leaves out the free blocks that thread caches hold
 * (magazines) or that wait on a heap's remote-free stack: they are free,
 * only not back in their pool yet. A difference fails the run (exit 1).
 *
 * Cyclic garbage. A workload may drop cycles (cycles, long-lived, gc-mem:
 * that is their point). With a collector, garbage still uncollected when
 * the workload ends is collected by one last full collection before the
 * runtime shuts down (CPython too collects at finalisation), and the check
 * is as above. With --gc=none nothing can free it: every object in such a
 * cycle, and every object only a cycle references, stays allocated. That
 * is the baseline's honest outcome, not a bug, so the run does not fail;
 * instead each worker counts the objects it left in cyclic garbage
 * (hl_worker_t.cyclic_garbage) and the check becomes
 *   allocated - freed == the workers' cyclic_garbage, summed
 * (the pool blocks are then not checked: the leaked objects hold some).
 * JSON "objects" reports both figures, leaked_objects and
 * cyclic_garbage_objects, so that the leak is visible in the result. A
 * workload must therefore never let a shared object (an interned string, a
 * small int is fine: it is static) be referenced from its cyclic garbage
 * alone, or the count would not be exact.
 */
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

static int64_t blocks_before = -1;
static hl_obj_stats_t stats_before;   /* the totals are per process */

/* Pool blocks handed out to the program, not counting free blocks parked in
 * thread caches (blocks on remote lists are not counted in use already); -1
 * when the allocator is not heaplab's pools. */
static int64_t pool_blocks_in_use(void) {
  if (hl_alloc_state.kind != HL_ALLOC_POOL) return -1;
  hl_alloc_stats_t *s = calloc(1, sizeof *s);
  if (!s) return -1;
  hl_alloc_stats(s);
  int64_t n = (int64_t)s->blocks_in_use - (int64_t)s->tcache_blocks;
  free(s);
  return n;
}

int hl_objects_begin(const hl_config_t *c, char *err, size_t errlen) {
  blocks_before = pool_blocks_in_use();
  hl_obj_stats(&stats_before);
  return hl_runtime_init(c, err, errlen);
}

void hl_objects_worker_done(void) { hl_freelists_clear(); }

int hl_objects_end(hl_run_result_t *r, char *err, size_t errlen) {
  bool collector = hl_gc_active();
  if (collector) hl_gc_collect(HL_GC_GENERATIONS - 1);
  hl_runtime_fini();
  hl_obj_stats_t now;
  hl_obj_stats(&now);
#define DIFF_(field, where, json, what) r->objects.field = now.field - stats_before.field;
  HL_OBJ_STATS(DIFF_)
#undef DIFF_
  r->objects_valid = true;
  r->leaked_objects = r->objects.allocated - r->objects.freed;
  int64_t after = pool_blocks_in_use();
  r->leaked_blocks = after < 0 || blocks_before < 0 ? -1 : after - blocks_before;
  uint64_t expected = collector ? 0 : r->cyclic_garbage;
  if (r->leaked_objects != expected || (expected == 0 && r->leaked_blocks > 0)) {
    snprintf(err, errlen,
             "leak: after hl_runtime_fini %llu object(s) are still allocated "
             "(%llu allocated, %llu freed; expected %llu: the cyclic garbage a run without "
             "a collector keeps) and %lld pool block(s) more than before "
             "hl_runtime_init are in use (-1: not alloc=pool)",
             (unsigned long long)r->leaked_objects, (unsigned long long)r->objects.allocated,
             (unsigned long long)r->objects.freed, (unsigned long long)expected,
             (long long)r->leaked_blocks);
    return -1;
  }
  return 0;
}
