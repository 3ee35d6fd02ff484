/* The observer hook (hl_thread.h, "observation"): what a timeline of a run
 * needs from sync/ that its statistics do not keep, each GIL hold and wait
 * and each stop of the world, in time. The calls sit in gil.c and stw.c next
 * to the USDT probes of the same events (base/hl_probe.h). */
#include "sync_internal.h"

hli_observer_t hli_observer;

void hl_sync_set_observer(hl_sync_observe_fn fn, void *arg) {
  /* arg first: a thread that sees fn (acquire in hli_observe) sees it. A
   * clear leaves arg, which a thread that loaded fn just before may read. */
  if (fn) hli_observer.arg = arg;
  __atomic_store(&hli_observer.fn, &fn, __ATOMIC_RELEASE);
}
