/* heaplab threads: attaching to the runtime, checkpoints, the GIL.
 *
 * A thread that runs heaplab objects attaches first (CPython: a thread state
 * made current, PyGILState_Ensure) and detaches when done. An attached
 * thread calls hl_checkpoint() often: in its loops, and the runtime on its
 * slow paths. A checkpoint is CPython's eval breaker: one relaxed load of a
 * per-thread word of request bits ("breaker") and a branch predicted not
 * taken; only when another thread has set a bit does it call the slow path,
 * which serves each request. Requests, by bit:
 *
 *   HL_BREAK_GIL_DROP   a thread has waited for the GIL longer than the
 *                       switch interval: give it up (sync/gil.c)
 *   HL_BREAK_QSBR       a grace period is waiting (sync/qsbr.c): announce
 *                       a quiescent state (with QSBR on: the modes without
 *                       a GIL)
 *   HL_BREAK_STW        a thread stops the world (sync/stw.c): park here
 *                       until it resumes
 *   bits claimed with hl_thread_break_register() by upper layers: merging
 *                       the biased-refcount queue, running the drops a grace
 *                       period has made safe (gc/) ...
 *
 * Upper layers (alloc, gc) cannot be included here: they register a handler
 * for a bit, hooks run at attach and detach, and keep their per-thread data
 * in the thread state's slots.
 *
 * With the GIL enabled (hl_gil_init), attaching takes the GIL and detaching
 * releases it; between hl_thread_block_begin() and hl_thread_block_end() the
 * thread runs without it (Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS), so
 * it may sleep, wait for I/O or for another thread, and must not touch
 * objects. With the GIL disabled they only keep the thread registry, which
 * the free-threaded modes need.
 *
 * Thread states (per thread, changed only by the thread itself):
 *   detached --attach--> attached --block_begin--> blocked
 *   attached <--block_end-- blocked;   attached --detach--> detached
 *   attached --checkpoint during a stop of the world--> parked --resume--> attached
 * In GIL mode: holds the GIL  <=>  attached (not blocked).
 * While the world is stopped (hl_stw_stop), only the thread that stopped it
 * runs attached: the others are parked or blocked, and attaching or ending
 * a block waits for hl_stw_resume.
 */
#ifndef HL_THREAD_H
#define HL_THREAD_H

#include <stdbool.h>
#include <stdint.h>

#include "hl_atomic.h"
#include "hl_base.h"
#include "hl_config.h"
#include "hl_measure.h"

#ifdef __cplusplus
extern "C" {
#endif
HL_API_BEGIN

/* ---- per-thread state ----------------------------------------------------- */

/* Breaker bits owned by sync; bits from HL_BREAK_FIRST_FREE up are handed
 * out by hl_thread_break_register(). */
#define HL_BREAK_GIL_DROP    0u
#define HL_BREAK_QSBR        1u
#define HL_BREAK_STW         2u
#define HL_BREAK_FIRST_FREE  3u
#define HL_BREAK_BITS        64u
#define HL_BREAK_BIT(b)      (1ull << (b))

/* Upper-layer slots in every thread state, by owner. sync never reads them. */
enum {
  HL_THREAD_SLOT_ALLOC,     /* alloc/: a thread cache, a heap */
  HL_THREAD_SLOT_GC,        /* gc/: the biased-refcount queue, freelists */
  HL_THREAD_SLOT_USER,      /* a workload or a test */
  HL_THREAD_SLOTS = 4
};

typedef enum {
  HL_THREAD_DETACHED, HL_THREAD_ATTACHED, HL_THREAD_BLOCKED, HL_THREAD_PARKED
} hl_thread_state_t;

typedef struct hl_thread hl_thread_t;
struct hl_thread {
  /* Request bits, set by any thread (hl_thread_request), read and cleared by
   * the owner at its checkpoints. Points at the owner's thread-local word,
   * so that the checkpoint reads it without first loading this struct. */
  uint64_t *breaker;
  void *slot[HL_THREAD_SLOTS];
  uint64_t id;              /* 1, 2, ... in order of first attach; never reused */
  /* A small number, the lowest free at attach, reused after detach:
   * 1..HL_THREAD_INDEX_MAX, or 0 when that many threads are attached
   * already. Biased reference counting stores it in each object it owns. */
  uint32_t index;
  bool qsbr;                /* registered with QSBR at attach (hl_thread_qsbr_enable) */
  uint32_t state;           /* hl_thread_state_t; written by the owner only */
  /* the registry, a list under its lock (sync/thread.c) */
  hl_thread_t *next, *prev;
};

#define HL_THREAD_INDEX_MAX 4095u

/* The calling thread's breaker word (0 while it is not attached: no one can
 * request anything of it) and thread state (NULL while not attached).
 * Exported, with hl_checkpoint_slow, because the inline hl_thread_self and
 * hl_checkpoint read them; not for callers. */
extern __thread uint64_t hl_thread_breaker;
extern __thread hl_thread_t *hl_thread_self_tls;

/* Attaches the calling thread (takes the GIL when it is enabled) and returns
 * its state; the attach hooks run after it holds the GIL. Attaching an
 * attached thread is a bug (hl_die). A thread must detach before it exits. */
hl_thread_t *hl_thread_attach(void);
/* Runs the detach hooks, releases the GIL, leaves the registry, frees the
 * state. Bits still pending are dropped. */
void hl_thread_detach(void);
/* The calling thread's state, NULL when detached. */
static inline hl_thread_t *hl_thread_self(void) { return hl_thread_self_tls; }

/* Release the GIL around blocking work and take it back; they do not nest.
 * In between, the thread must not touch objects or call hl_checkpoint().
 * With QSBR on, the thread is offline in between (it holds up no grace
 * period). */
void hl_thread_block_begin(void);
void hl_thread_block_end(void);

/* Out of line: serves every pending request of the calling thread. */
void hl_checkpoint_slow(void);

/* The checkpoint. Relaxed: a bit set by another thread is seen at some later
 * checkpoint, never lost (the slow path clears a bit only before serving it);
 * ordering with the requester's data comes from the handler's own
 * synchronisation (the GIL's mutex for a drop request). */
static inline void hl_checkpoint(void) {
  if (HL_UNLIKELY(hl_atomic_load_relaxed_u64(&hl_thread_breaker) != 0)) hl_checkpoint_slow();
}

/* Sets bit on t's breaker: t runs the bit's handler at its next checkpoint.
 * t must stay attached meanwhile (the caller holds what keeps it attached:
 * the registry lock in hl_thread_foreach, the GIL's mutex for the holder). */
void hl_thread_request(hl_thread_t *t, unsigned bit);
/* Bits pending on t (a relaxed snapshot, for tests and statistics). */
static inline uint64_t hl_thread_pending(const hl_thread_t *t) {
  return hl_atomic_load_relaxed_u64(t->breaker);
}

/* A handler runs on the requested thread, inside hl_checkpoint(), after its
 * bit was cleared (a request made while it runs calls it again at the next
 * checkpoint). In GIL mode it runs holding the GIL. */
typedef void (*hl_break_fn)(hl_thread_t *t, unsigned bit, void *arg);
/* Claims a free bit for fn; returns the bit, or -ENOSPC. Call before threads
 * that may be requested attach (at start-up, like an upper layer's init). */
int hl_thread_break_register(hl_break_fn fn, void *arg);

/* Hooks run by every thread as it attaches (after taking the GIL) and as it
 * detaches (before releasing it), in registration order and reverse order:
 * where an upper layer sets up and flushes its slot. Returns 0 or -ENOSPC
 * (8 hooks). Register before threads attach. */
typedef void (*hl_thread_hook_fn)(hl_thread_t *t, void *arg);
int hl_thread_hooks_register(hl_thread_hook_fn on_attach, hl_thread_hook_fn on_detach, void *arg);

/* Calls fn for every attached thread, under the registry lock (no thread
 * attaches or detaches meanwhile; fn must not attach or detach either).
 * Returns the number of threads visited. */
unsigned hl_thread_foreach(void (*fn)(hl_thread_t *t, void *arg), void *arg);
unsigned hl_thread_count(void);

/* QSBR for attached threads (the modes without a GIL, where readers of
 * shared containers read without a lock): every thread registers with
 * sync/qsbr.c as it attaches, is offline while blocked, and announces a
 * quiescent state at its checkpoints whenever a grace period waits for it
 * (HL_BREAK_QSBR), so that checkpoints are the quiescent states. Only while
 * no thread is attached. */
void hl_thread_qsbr_enable(bool on);
bool hl_thread_qsbr_enabled(void);

/* ---- stop-the-world (sync/stw.c) --------------------------------------------
 * For the modes without a GIL: the thread that calls hl_stw_stop() returns
 * once every other attached thread is parked at a checkpoint or blocked
 * (hl_thread_block_begin); until it calls hl_stw_resume() no other thread
 * runs attached code (a blocked thread's block_end and a new attach wait).
 * Stops do not nest; two threads that stop at once take turns. The caller
 * may be attached or not; it must not hold a lock a parked thread could
 * need. Waiting is offline for QSBR, so a thread that waits for a grace
 * period meanwhile finishes and parks.
 *
 * The time each stop took (request to the last thread parked) goes into a
 * histogram; with hl_stw_set_report_us(N), a stop that waits longer than N
 * microseconds for a thread reports that thread on stderr: a thread that
 * runs long without a checkpoint is the workload's bug. */
void hl_stw_stop(void);
void hl_stw_resume(void);
bool hl_stw_stopped(void);
/* A snapshot of the time-to-stop histogram (ns), and a reset of it. */
void hl_stw_hist(hl_hist_t *out);
void hl_stw_hist_reset(void);
/* Stops that waited longer than report_us for some thread, since the last
 * reset (counted whether or not reporting is on); 0 turns reports off. */
void hl_stw_set_report_us(uint64_t report_us);
uint64_t hl_stw_slow_stops(void);

/* ---- the GIL (sync/gil.c) --------------------------------------------------
 * Antoine Pitrou's GIL of CPython 3.2+: a waiter that has waited a switch
 * interval without any switch happening asks the holder to drop it; the
 * holder does at its next checkpoint and, with forced switching, waits until
 * another thread has taken it before it asks again. The policy (--gil,
 * HL_GIL_POLICIES) may let some waiters ask at once: with HL_GIL_HANDOFF a
 * thread back from blocking (hl_thread_block_end) is handed the GIL at the
 * holder's next checkpoint. */

/* Enables or disables the GIL and sets the switch interval (microseconds,
 * >= 1; sys.setswitchinterval). Only while no thread is attached. */
void hl_gil_init(bool enabled, uint64_t switch_interval_us);
bool hl_gil_enabled(void);
/* Sets the policy (HL_GIL_CLASSIC until set; hl_gil_init keeps it). Only
 * while no thread is attached. */
void hl_gil_set_policy(hl_gil_policy_t policy);
hl_gil_policy_t hl_gil_policy(void);
/* Whether the calling thread holds the GIL (false when it is disabled). */
bool hl_gil_held(void);

typedef struct hl_gil_stats {
  uint64_t switches;          /* acquisitions by another thread than the last holder */
  uint64_t forced_switches;   /* ... of them, after the holder dropped it on request */
  uint64_t drop_requests;     /* requests to drop it: a waiter that timed out, or asked at once */
  uint64_t handoffs;          /* takes by a thread the GIL was reserved for (--gil=handoff) */
  hl_hist_t wait_ns;          /* one per acquisition: from asking to holding */
  hl_hist_t hold_ns;          /* one per release: from taking to releasing */
} hl_gil_stats_t;

/* A consistent snapshot (taken under the GIL's mutex); and a reset of the
 * counters and histograms (the timed part of a run starts). */
void hl_gil_stats(hl_gil_stats_t *out);
void hl_gil_stats_reset(void);

/* Called by the thread that has just taken the GIL from another (a switch),
 * outside the GIL's internal lock: the new holder's id, whether the last
 * holder let go on a drop request, and how long the taker waited. For
 * traces (--trace); set it while no thread is attached (NULL: none). */
typedef void (*hl_gil_switch_fn)(uint64_t thread_id, bool forced, uint64_t waited_ns, void *arg);
void hl_gil_set_switch_hook(hl_gil_switch_fn fn, void *arg);

/* ---- observation (sync/observe.c) --------------------------------------------
 * One hook for a timeline (--trace-format=chrome, bench/trace.c): called by
 * the thread concerned, on the GIL's and stop-the-world's slow paths only,
 * outside their locks (a drop request excepted: it is observed under the
 * GIL's mutex, so the observer must take no lock of sync/'s), with the time
 * of the event (hl_now_ns) and the
 * interval that it ends. The USDT probes of base/hl_probe.h sit beside
 * these calls for tracers outside the process. Set it while no thread is
 * attached (NULL: none); unset, it costs a load and a branch. */
typedef enum {
  HL_SYNC_GIL_TAKE,          /* holds the GIL: a = ns waited for it (0: no wait), b = forced */
  HL_SYNC_GIL_RELEASE,       /* let it go: a = ns held, b = why (0 block, 1 request, 2 detach) */
  HL_SYNC_GIL_DROP_REQUEST,  /* asked the holder to drop it */
  HL_SYNC_STW_STOPPED,       /* stopped the world: a = ns from its request to all stopped */
  HL_SYNC_STW_RESUME,        /* resumed it: a = ns it stayed stopped */
  HL_SYNC_STW_UNPARKED       /* runs again after another's stop: a = ns parked */
} hl_sync_event_t;
typedef void (*hl_sync_observe_fn)(hl_sync_event_t ev, uint64_t now_ns, uint64_t a, uint64_t b,
                                   void *arg);
void hl_sync_set_observer(hl_sync_observe_fn fn, void *arg);


HL_API_END
#ifdef __cplusplus
}
#endif
#endif /* HL_THREAD_H */
