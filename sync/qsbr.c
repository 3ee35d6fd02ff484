/* QSBR: deferred freeing after a grace period, over liburcu's qsbr flavor.
 *
 * McKenney and Slingwine, "Read-copy update: using execution history to
 * solve concurrency problems", PDCS 1998; Desnoyers, McKenney, Stern,
 * Dagenais and Walpole, "User-level implementations of read-copy update",
 * IEEE TPDS 23(2), 2012 (the qsbr flavor is its section on quiescent-state-
 * based reclamation).
 *
 * The protocol, as heaplab uses it:
 *
 *   reader (registered, online)          writer
 *   ---------------------------          ------------------------------------
 *   p = load_acquire(&shared)            old = shared
 *   ... use *p ...                       store_release(&shared, new)
 *   hl_qsbr_quiescent()  <- holds no     hl_qsbr_defer(free_node, old)
 *                           pointer now        |
 *                                              v  (liburcu's call_rcu worker)
 *                                        synchronize: waits until every
 *                                        registered thread has passed a
 *                                        quiescent state or gone offline
 *                                        free_node(old)
 *
 * A grace period ends when every online registered thread has announced a
 * quiescent state after it began, so no reader can still hold a pointer it
 * loaded before the writer unlinked the node. The read side is free (no
 * instruction at all in a read-side section); the cost is the quiescent
 * announcement, a load and at most three fences, which heaplab pays at its
 * checkpoints.
 *
 * What liburcu does for us: the registry of reader threads, grace-period
 * detection (urcu_qsbr_synchronize_rcu), and one worker thread that batches
 * call_rcu callbacks behind a single grace period. What this file adds: a
 * record so that callers pass fn(ptr) instead of embedding a struct rcu_head,
 * per-thread idempotent registration, offline-around-the-wait for
 * synchronize and barrier, counters, and ThreadSanitizer annotations.
 *
 * Prompt quiescent states (with hl_thread_qsbr_enable: the modes without a
 * GIL). An attached thread announces a quiescent state at a checkpoint
 * only while HL_BREAK_QSBR is set on it (sync/thread.c), and it keeps the
 * bit for as long as hli_qsbr_wanted(): a deferred call has not run yet,
 * or a synchronize is waiting. Each defer and each synchronize counts
 * itself first, then sets the bit on every attached thread; grace periods
 * then end within a checkpoint of each thread, and while none is wanted a
 * checkpoint costs its one branch.
 *
 * Invariant, for any snapshot that reads reclaimed before deferred:
 *   reclaimed_count <= deferred_count
 * with equality after hl_qsbr_barrier() when no thread defers concurrently.
 *
 * ThreadSanitizer. liburcu is not instrumented, so TSan cannot see that a
 * grace period orders a reader's accesses before the callback that frees
 * what it read, nor that call_rcu's queue orders the deferring thread before
 * the callback. Without help it reports each callback's free as racing with
 * the readers and the writer. We tell it, with __tsan_release/__tsan_acquire
 * on three addresses:
 *   gp_token       released by a thread at each quiescent state, offline and
 *                  unregister (its accesses so far are over); acquired by
 *                  each callback before fn and by hl_qsbr_synchronize after
 *                  the wait. The callback acquires every release made so far,
 *                  a superset of those the grace period guarantees: TSan
 *                  sees no false race, and still reports a reader that
 *                  touches a node after a quiescent state when the callback
 *                  frees it before the reader's next one (the usual shape of
 *                  that bug); if the reader passes another quiescent state
 *                  first, the access is hidden.
 *   the record     released by hl_qsbr_defer, acquired by the callback: the
 *                  deferring thread's writes to the node happen before fn.
 *   barrier_token  released by each callback after fn, acquired by
 *                  hl_qsbr_barrier after the wait.
 */
#include "hl_atomic.h"   /* first: HL_ATOMIC_TSAN decides how urcu is included */

/* _LGPL_SOURCE inlines urcu's quiescent-state, offline and online fast paths
 * into this file. Not under ThreadSanitizer: those inline paths use volatile
 * loads and stores as urcu's atomics (the wake-up flag, urcu_qsbr_gp.futex),
 * which TSan, instrumenting them here, reports as races between readers. The
 * out-of-line versions in the uninstrumented library are invisible to it,
 * and cost a call only in TSan builds. */
#if !HL_ATOMIC_TSAN
#define _LGPL_SOURCE
#endif
#include <urcu/urcu-qsbr.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "hl_sync.h"
#include "sync_internal.h"

#if HL_ATOMIC_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* A deferred call; liburcu links it into its queue through head. */
typedef struct qsbr_record {
  struct rcu_head head;
  void (*fn)(void *);
  void *ptr;
} qsbr_record_t;

/* Each counter on its own cache line: defer and the worker's callbacks bump
 * them from different threads. */
static struct {
  _Alignas(HL_CACHE_LINE) uint64_t deferred;
  _Alignas(HL_CACHE_LINE) uint64_t reclaimed;
  uint64_t sync_waiters;      /* hl_qsbr_synchronize calls waiting now */
} counters;

/* Registration is idempotent per thread; urcu's own must happen once per
 * thread (a second call fails its assertions, or with assertions compiled
 * out links the thread into its registry twice). */
static _Thread_local bool tls_registered;

/* Addresses only (see the top); nothing reads or writes them. */
static char gp_token;
static char barrier_token;

#if HL_ATOMIC_TSAN
static inline void tsan_happens_before(void *addr) { __tsan_release(addr); }
static inline void tsan_happens_after(void *addr) { __tsan_acquire(addr); }
#else
static inline void tsan_happens_before(void *addr) { (void)addr; }
static inline void tsan_happens_after(void *addr) { (void)addr; }
#endif

void hl_qsbr_register_thread(void) {
  if (tls_registered) return;
  urcu_qsbr_register_thread();      /* leaves the thread online */
  tls_registered = true;
}

void hl_qsbr_unregister_thread(void) {
  if (!tls_registered) return;
  tsan_happens_before(&gp_token);
  urcu_qsbr_unregister_thread();    /* goes offline first */
  tls_registered = false;
}

/* quiescent, offline and online on an unregistered thread are no-ops: urcu
 * would write the thread's reader counter, which no grace period reads, and
 * a later urcu_qsbr_read_ongoing() would then report it online. */
void hl_qsbr_quiescent(void) {
  if (!tls_registered) return;
  tsan_happens_before(&gp_token);
  urcu_qsbr_quiescent_state();
}

void hl_qsbr_offline(void) {
  if (!tls_registered) return;
  tsan_happens_before(&gp_token);
  urcu_qsbr_thread_offline();
}

void hl_qsbr_online(void) {
  if (!tls_registered) return;
  urcu_qsbr_thread_online();
}

void hl_qsbr_read_lock(void) { urcu_qsbr_read_lock(); }
void hl_qsbr_read_unlock(void) { urcu_qsbr_read_unlock(); }

/* Takes a registered, online caller offline for a wait that needs its
 * quiescent state (a grace period it would otherwise hold up forever);
 * returns whether to bring it back online. */
static bool offline_for_wait(void) {
  if (!tls_registered || !urcu_qsbr_read_ongoing()) return false;
  hl_qsbr_offline();
  return true;
}

bool hli_qsbr_wanted(void) {
  /* reclaimed first: read the other way round, a callback that runs
   * between the two loads could make a pending call look done */
  uint64_t reclaimed = hl_atomic_load_acquire_u64(&counters.reclaimed);
  return hl_atomic_load_acquire_u64(&counters.deferred) != reclaimed ||
         hl_atomic_load_acquire_u64(&counters.sync_waiters) != 0;
}

void hl_qsbr_synchronize(void) {
  /* counted before the request: see hli_qsbr_wanted's callers in thread.c */
  hl_atomic_inc_u64(&counters.sync_waiters);
  hli_thread_request_qsbr_all();
  bool was_online = offline_for_wait();
  urcu_qsbr_synchronize_rcu();
  tsan_happens_after(&gp_token);
  if (was_online) urcu_qsbr_thread_online();
  (void)hl_atomic_faa_u64(&counters.sync_waiters, (uint64_t)-1);
}

static void run_deferred(struct rcu_head *head) {
  qsbr_record_t *r = caa_container_of(head, qsbr_record_t, head);
  tsan_happens_after(r);
  tsan_happens_after(&gp_token);
  r->fn(r->ptr);
  free(r);
  hl_atomic_inc_u64(&counters.reclaimed);
  tsan_happens_before(&barrier_token);
}

void hl_qsbr_defer(void (*fn)(void *), void *ptr) {
  /* Out of memory leaves no safe way out: waiting here for a grace period
   * would take the caller offline while it may still hold protected
   * pointers. */
  qsbr_record_t *r = malloc(sizeof *r);
  if (HL_UNLIKELY(r == NULL)) hl_die("out of memory for a deferred-free record");
  r->fn = fn;
  r->ptr = ptr;
  /* Counted before it is queued, so that reclaimed never overtakes deferred. */
  hl_atomic_inc_u64(&counters.deferred);
  tsan_happens_before(r);
  urcu_qsbr_call_rcu(&r->head, run_deferred);
  hli_thread_request_qsbr_all();
}

void hl_qsbr_barrier(void) {
  bool was_online = offline_for_wait();
  urcu_qsbr_barrier();
  tsan_happens_after(&barrier_token);
  if (was_online) urcu_qsbr_thread_online();
}

/* Acquire: pairs with the full-barrier increments, so that a caller who sees
 * a callback counted also sees what the callback did. */
uint64_t hl_qsbr_deferred_count(void) { return hl_atomic_load_acquire_u64(&counters.deferred); }
uint64_t hl_qsbr_reclaimed_count(void) { return hl_atomic_load_acquire_u64(&counters.reclaimed); }
