/* --gil=classic: CPython 3.2+'s policy, the default. No thread jumps the
 * queue: a waiter, whatever brought it, asks the holder to drop the GIL only
 * after a whole switch interval without a switch (sync/gil.c), and the
 * waiter that the condition variable wakes first takes it. A thread back
 * from I/O therefore waits about one interval behind a CPU-bound holder:
 * Beazley's convoy (bpo-7946; bench/workloads/convoy.c). */
#include "sync_internal.h"

static bool never(hli_take_reason_t why) {
  (void)why;
  return false;
}

const hli_gil_policy_t hli_gil_policy_classic = {
  .name = "classic",
  .priority = never,
};
