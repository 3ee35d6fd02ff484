/* rc=gil: plain counts, correct only while the thread holds the GIL (or is
 * the only thread), as in CPython before PEP 703. Every mortal object is
 * counted plainly by every thread (hl_gc.h: owner and self are both 0).
 * Under the GIL nothing changes a count behind the caller's back, so "is
 * it zero?" and "increment" can be two steps. */
#include "gc_internal.h"

/* No other thread holds a reference: a plain store, published to other
 * threads by whatever the finalizer uses to hand o to them. */
static void resurrect(hl_object_t *o) { o->rc = 1; }

static bool drop_resurrected(hl_object_t *o) {
  HL_ASSERT(o->rc > 0);
  return --o->rc == 0;
}

static bool try_incref_other(hl_object_t *o) {
  uint32_t rc = hli_rc_load(o);
  if (rc >= HL_RC_IMMORTAL) return true;
  if (rc == 0) return false;
  o->rc = rc + 1;
  return true;
}

const hli_rc_row_t hli_rc_gil = {
  .name = "gil",
  .gil = true,
  .resurrect = resurrect,
  .drop_resurrected = drop_resurrected,
  .try_incref_other = try_incref_other,
};
