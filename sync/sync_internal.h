/* sync/: what its files share and no other layer sees.
 *
 *   thread.c   thread states, the registry, checkpoints, block_begin/end
 *   gil.c      the GIL: take, drop, yield on request; its statistics
 *   gil_classic.c, gil_handoff.c  the GIL's policies, a row each (--gil)
 *   qsbr.c     grace periods; asks attached threads for quiescent states
 *   stw.c      stop-the-world: parks attached threads at their checkpoints
 *   observe.c  the observer hook a timeline sets (hl_sync_set_observer)
 */
#ifndef HL_SYNC_INTERNAL_H
#define HL_SYNC_INTERNAL_H

#include <stdbool.h>

#include "hl_base.h"
#include "hl_thread.h"

/* Why a holder releases the GIL. */
typedef enum {
  HLI_DROP_BLOCK,     /* hl_thread_block_begin: voluntary, it will come back */
  HLI_DROP_REQUEST,   /* a checkpoint serving HL_BREAK_GIL_DROP */
  HLI_DROP_DETACH     /* hl_thread_detach: t goes away */
} hli_drop_reason_t;

/* Why a thread takes the GIL: the policies (below) treat them differently. */
typedef enum {
  HLI_TAKE_ATTACH,    /* hl_thread_attach */
  HLI_TAKE_WAKE,      /* hl_thread_block_end: back from I/O, a sleep, a wait */
  HLI_TAKE_YIELD      /* after dropping it on request (forced switching) */
} hli_take_reason_t;

/* A GIL policy, one row per --gil value (HL_GIL_POLICIES in hl_config.h),
 * each defined in its own file, sync/gil_<name>.c, as hli_gil_policy_<name>.
 * gil.c keeps the lock, the queue and the statistics; a row only says who
 * may jump the queue. Consulted on the slow path (a take), under the GIL's
 * mutex. */
typedef struct hli_gil_policy {
  const char *name;
  /* Whether a thread taking the GIL for this reason while another holds it
   * asks the holder to drop it at once, and has it reserved: the holder
   * drops it at its next checkpoint and no other waiter may take it before
   * this one (a hand-off). false: it asks only after a whole switch
   * interval without a switch, and whoever wakes first takes it (CPython). */
  bool (*priority)(hli_take_reason_t why);
} hli_gil_policy_t;
#define HLI_GIL_POLICY_DECL_(ID, name, built, help, why_not) \
  extern const hli_gil_policy_t hli_gil_policy_##name;
HL_GIL_POLICIES(HLI_GIL_POLICY_DECL_)

HL_INTERNAL bool hli_gil_on(void);
/* Blocks until t holds the GIL. */
HL_INTERNAL void hli_gil_take(hl_thread_t *t, hli_take_reason_t why);
/* t holds the GIL; releases it. */
HL_INTERNAL void hli_gil_drop(hl_thread_t *t, hli_drop_reason_t why);
/* Serves a drop request: releases the GIL, waits until another thread has
 * taken it (forced switching), takes it again. */
HL_INTERNAL void hli_gil_yield(hl_thread_t *t);

/* QSBR and checkpoints (qsbr.c, thread.c): whether a grace period is wanted
 * now (a deferred call not run yet, a synchronize waiting), and setting
 * HL_BREAK_QSBR on every attached thread (with QSBR on). */
HL_INTERNAL bool hli_qsbr_wanted(void);
HL_INTERNAL void hli_thread_request_qsbr_all(void);

/* Stop-the-world (stw.c), for thread.c: attach waits for a resume between
 * begin and end (holding stw's mutex, which orders it with a stopper's
 * scan); whether a stop is requested (after a full fence: Dekker with the
 * stopper); waking the stopper; block_end's and a checkpoint's waits. */
HL_INTERNAL void hli_stw_attach_begin(void);
HL_INTERNAL void hli_stw_attach_end(void);
HL_INTERNAL bool hli_stw_requested(void);
HL_INTERNAL void hli_stw_signal(void);
HL_INTERNAL void hli_stw_block_end_wait(hl_thread_t *t);
HL_INTERNAL void hli_stw_park(hl_thread_t *t);

/* The observer (observe.c): hli_observe calls it when one is set. Acquire:
 * pairs with hl_sync_set_observer's release, so that its arg is seen. */
typedef struct hli_observer {
  hl_sync_observe_fn fn;
  void *arg;
} hli_observer_t;
extern HL_INTERNAL hli_observer_t hli_observer;
static inline void hli_observe(hl_sync_event_t ev, uint64_t now_ns, uint64_t a, uint64_t b) {
  hl_sync_observe_fn fn;
  __atomic_load(&hli_observer.fn, &fn, __ATOMIC_ACQUIRE);
  if (HL_UNLIKELY(fn != NULL)) fn(ev, now_ns, a, b, hli_observer.arg);
}

#endif /* HL_SYNC_INTERNAL_H */
