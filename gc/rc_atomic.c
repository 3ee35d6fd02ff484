/* rc=atomic: every increment a relaxed atomic add, every decrement a
 * release atomic subtract, and the thread whose decrement reaches zero
 * issues an acquire fence before the free (hl_gc.h). No thread counts
 * plainly (hl_rc_self is HL_RC_NOBODY); the owner field names the maker,
 * which the containers use to tell their creator.
 *
 * A count that may be zero: another thread may take it to zero between a
 * test and an increment and free the object, so the try-increment is a
 * compare-and-swap loop that never moves a count up from zero; a reader
 * that loses the race gets "dying" and never resurrects what another
 * thread is freeing. */
#include "gc_internal.h"

/* As rc_gil.c: nobody else holds it; atomic because --gc=concurrent's
 * thread may be reading the count of an old object while it dies. */
static void resurrect(hl_object_t *o) { hl_atomic_c11_store_relaxed_u32(&o->rc, 1); }

static bool drop_resurrected(hl_object_t *o) {
  /* Release and acquire as in hl_decref: a thread that took a reference in
   * the finalizer and dropped it already published its writes. */
  uint32_t old = hl_atomic_faa_release_u32(&o->rc, (uint32_t)-1);
  HL_ASSERT(old > 0);
  if (old != 1) return false;
  hl_atomic_acquire_after_rmw_u32(&o->rc);
  return true;
}

static bool try_incref_other(hl_object_t *o) {
  uint32_t rc = hli_rc_load(o);
  if (rc >= HL_RC_IMMORTAL) return true;
  for (;;) {
    if (rc == 0) return false;
    /* Relaxed would do for the increment itself; hl_atomic_cas_u32 is a
     * full barrier, which on x86-64 is the same lock cmpxchg. */
    if (hl_atomic_cas_u32(&o->rc, rc, rc + 1)) return true;
    rc = hli_rc_load(o);
  }
}

const hli_rc_row_t hli_rc_atomic = {
  .name = "atomic",
  .resurrect = resurrect,
  .drop_resurrected = drop_resurrected,
  .try_incref_other = try_incref_other,
};
