/* Reference-count modes: the out-of-line parts of every mode.
 *
 * hl_incref and hl_decref are inline in hl_gc.h; what they do in each mode
 * is described there. Here: choosing the mode at start-up, the operations
 * that are too rare to inline (resurrecting a dying object for its
 * finalizer, an increment that must fail on a dying object).
 *
 * A count that may be zero. Under the GIL nothing changes a count behind
 * the caller's back, so "is it zero?" and "increment" can be two steps. In
 * the atomic mode another thread may take the count to zero between them
 * and free the object; the try-increment is a compare-and-swap loop that
 * never moves a count up from zero, so a reader that loses the race gets
 * "dying" and never resurrects what another thread is freeing.
 */
#include <stdio.h>

#include "gc_internal.h"
#include "hl_thread.h"

/* Called while no object exists (the prefix changes the blocks' layout)
 * and, for the thread tags, no thread is attached. */
void hli_rc_init(const hl_config_t *c) {
  hli_rc_threads_init();
  hl_rc_config.mode = c->rc;
  hl_rc_config.immortal = c->immortal;
  hli_rc_prefix = c->rc == HL_RC_BIASED ? sizeof(uint64_t) : 0;
  /* Readers of shared containers read without a lock in the free-threaded
   * modes: their threads are QSBR readers. */
  if (hl_thread_count() == 0) hl_thread_qsbr_enable(c->rc != HL_RC_GIL);
  /* The calling thread's tags, as at attach: it may be attached already (a
   * micro-benchmark restarting the runtime). */
  hli_rc_set_thread_tags(hl_thread_self());
}

void hli_rc_resurrect(hl_object_t *o) {
  if (hl_rc_config.mode == HL_RC_BIASED) {
    hli_rc_biased_resurrect(o);
    return;
  }
  /* No other thread holds a reference: a plain store, published to other
   * threads by whatever the finalizer uses to hand o to them. */
  o->rc = 1;
}

bool hli_rc_drop_resurrected(hl_object_t *o) {
  if (hl_rc_config.mode == HL_RC_GIL) {
    HL_ASSERT(o->rc > 0);
    return --o->rc == 0;
  }
  if (hl_rc_config.mode == HL_RC_BIASED) return hli_rc_biased_drop_resurrected(o);
  /* Release and acquire as in hl_decref: a thread that took a reference in
   * the finalizer and dropped it already published its writes. */
  uint32_t old = hl_atomic_faa_release_u32(&o->rc, (uint32_t)-1);
  HL_ASSERT(old > 0);
  if (old != 1) return false;
  hl_atomic_acquire_after_rmw_u32(&o->rc);
  return true;
}

bool hli_rc_try_incref_other(hl_object_t *o) {
  if (hl_rc_config.mode == HL_RC_BIASED) return hli_rc_biased_try_incref(o);
  uint32_t rc = hli_rc_load(o);
  if (rc >= HL_RC_IMMORTAL) return true;
  if (hl_rc_config.mode == HL_RC_GIL) {
    if (rc == 0) return false;
    o->rc = rc + 1;
    return true;
  }
  for (;;) {
    if (rc == 0) return false;
    /* Relaxed would do for the increment itself; hl_atomic_cas_u32 is a
     * full barrier, which on x86-64 is the same lock cmpxchg. */
    if (hl_atomic_cas_u32(&o->rc, rc, rc + 1)) return true;
    rc = hli_rc_load(o);
  }
}
