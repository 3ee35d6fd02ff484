/* The global interpreter lock, as CPython 3.2+ builds it.
 *
 * Antoine Pitrou's "new GIL" (python-dev, "Reworking the GIL", October 2009;
 * CPython 3.2, Python/ceval_gil.c), which replaced the old GIL after David
 * Beazley's analysis of it ("Understanding the Python GIL", PyCon 2010, and
 * "Inside the Python GIL", Chicago 2009). Beazley then showed the new GIL's
 * own weakness, the convoy effect (bpo-7946): an I/O-bound thread that
 * gives the GIL up to block waits a whole switch interval to get it back
 * from a CPU-bound thread. bench/workloads/convoy.c measures exactly that.
 *
 * The lock. `locked` is a flag guarded by `mutex`; `cond` is signalled when
 * it falls. The mutex is held only for a few instructions, so it is rarely
 * contended; who holds the GIL is a matter of `locked`, not of the mutex.
 *
 * Switching on time, not on ticks. A thread that wants the GIL waits on
 * `cond` for one switch interval (sys.setswitchinterval, 5 ms by default).
 * If the wait times out, the GIL is still locked, and no switch happened
 * meanwhile (switch_number unchanged), it sets HL_BREAK_GIL_DROP on the
 * holder's breaker (CPython 3.13 keeps this request in the holder's eval
 * breaker too). The holder sees it at its next checkpoint and drops the GIL.
 * A holder that blocks (hl_thread_block_begin) drops it earlier, on its own.
 *
 * Forced switching (CPython's FORCE_SWITCHING, always on there). Dropping
 * the GIL on request and trying to take it again at once would usually let
 * the dropper win again: it is running, the waiter still has to be woken and
 * scheduled. So a holder that drops on request then waits on `switch_cond`
 * until `holder` names another thread, and only then queues for the GIL
 * again. `holder` is written under both mutexes (in take) and read under
 * either, which is what makes that wait race-free.
 *
 * Policies (--gil; one row each, sync/gil_<name>.c). A row says which takers
 * may jump the queue. classic: none (CPython). handoff: a thread back from
 * blocking, at hl_thread_block_end. Such a taker, finding the GIL held and
 * no hand-off pending, names itself in `handoff_to` and asks the holder to
 * drop it at once, without waiting out an interval. While `handoff_to` is
 * set no other thread may take the GIL, so the holder's next checkpoint
 * hands it over to exactly that thread (forced switching keeps the holder
 * from retaking it). A release with a hand-off pending broadcasts `cond`,
 * so that the reserved thread is among those woken; the reserved thread's
 * take broadcasts again, so that another waker waiting behind it asks next.
 *
 * Invariants (under `mutex`):
 *   locked  =>  holder is the thread that holds the GIL
 *   !locked =>  holder is the last thread that held it, or NULL (it detached)
 *   a thread waits in take until it holds the GIL: it never leaves the queue,
 *   so a drop request always has a taker, and the forced wait always ends.
 *   handoff_to != NULL  =>  handoff_to waits in take, and is not the holder
 *   (it was not when it named itself; it never leaves take before it holds
 *   the GIL, and clears handoff_to as it takes it).
 *
 * Statistics, all under `mutex`: switches (a take by a thread other than the
 * previous holder, CPython's switch_number), forced switches (those that
 * follow a drop on request), drop requests, hand-offs (takes by the thread
 * in handoff_to), and one wait time per take and one hold time per release
 * in histograms.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "hl_probe.h"
#include "hl_thread.h"
#include "sync_internal.h"

typedef struct gil {
  pthread_mutex_t mutex;
  pthread_cond_t cond;            /* signalled when locked falls */
  pthread_mutex_t switch_mutex;
  pthread_cond_t switch_cond;     /* signalled when a thread takes the GIL */
  uint32_t enabled;               /* relaxed: changed only while no thread is attached */
  uint64_t interval_ns;           /* under mutex */
  /* under mutex */
  bool locked;
  hl_thread_t *holder;            /* also under switch_mutex: see the top */
  uint64_t switch_number;
  bool drop_requested;            /* a waiter asked since the last take */
  bool dropped_on_request;        /* the last release served a request */
  uint64_t taken_ns;              /* when the holder took it */
  hl_gil_stats_t stats;
  const hli_gil_policy_t *policy; /* under mutex; changed while no thread is attached */
  hl_thread_t *handoff_to;        /* a waiter the GIL is reserved for, or NULL */
  hl_gil_switch_fn on_switch;     /* set while no thread is attached */
  void *on_switch_arg;
} gil_t;

static gil_t gil = {
  .mutex = PTHREAD_MUTEX_INITIALIZER,
  .switch_mutex = PTHREAD_MUTEX_INITIALIZER,
  .interval_ns = 5000 * 1000ull,
  .policy = &hli_gil_policy_classic,
};
/* The policies' rows, by HL_GIL_POLICIES order (all are built). */
#define GIL_POLICY_ROW_(ID, name, built, help, why_not) [HL_GIL_##ID] = &hli_gil_policy_##name,
static const hli_gil_policy_t *const policies[HL_GIL_COUNT] = {HL_GIL_POLICIES(GIL_POLICY_ROW_)};
static pthread_once_t gil_once = PTHREAD_ONCE_INIT;

static void init_once(void) {
  /* timed waits on CLOCK_MONOTONIC, as hl_now_ns */
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&gil.cond, &a);
  pthread_cond_init(&gil.switch_cond, &a);
  pthread_condattr_destroy(&a);
  hl_hist_init(&gil.stats.wait_ns);
  hl_hist_init(&gil.stats.hold_ns);
}

static void lock(pthread_mutex_t *m) {
  int e = pthread_mutex_lock(m);
  if (HL_UNLIKELY(e != 0)) hl_die("pthread_mutex_lock: %s", strerror(e));
}
static void unlock(pthread_mutex_t *m) { pthread_mutex_unlock(m); }

static void reset_stats_locked(void) {
  gil.stats.switches = gil.stats.forced_switches = gil.stats.drop_requests = 0;
  gil.stats.handoffs = 0;
  hl_hist_init(&gil.stats.wait_ns);
  hl_hist_init(&gil.stats.hold_ns);
}

void hl_gil_init(bool enabled, uint64_t switch_interval_us) {
  pthread_once(&gil_once, init_once);
  if (hl_thread_count() != 0) hl_die("hl_gil_init while %u threads are attached", hl_thread_count());
  lock(&gil.mutex);
  gil.interval_ns = (switch_interval_us ? switch_interval_us : 1) * 1000ull;
  gil.locked = false;
  gil.holder = NULL;
  gil.switch_number = 0;
  gil.drop_requested = gil.dropped_on_request = false;
  gil.handoff_to = NULL;
  reset_stats_locked();
  hl_atomic_store_relaxed_u32(&gil.enabled, enabled);
  unlock(&gil.mutex);
}

void hl_gil_set_policy(hl_gil_policy_t policy) {
  pthread_once(&gil_once, init_once);
  if (hl_thread_count() != 0)
    hl_die("hl_gil_set_policy while %u threads are attached", hl_thread_count());
  if ((unsigned)policy >= HL_GIL_COUNT) hl_die("no GIL policy %d", (int)policy);
  lock(&gil.mutex);
  gil.policy = policies[policy];
  unlock(&gil.mutex);
}

hl_gil_policy_t hl_gil_policy(void) {
  pthread_once(&gil_once, init_once);
  lock(&gil.mutex);
  int p = 0;
  while (policies[p] != gil.policy) p++;
  unlock(&gil.mutex);
  return (hl_gil_policy_t)p;
}

/* Asks the holder to drop the GIL at its next checkpoint, counted once per
 * hold. Under mutex, with the GIL locked (so the holder is attached). */
static void request_drop_locked(hl_thread_t *t) {
  if (!gil.drop_requested) {
    gil.drop_requested = true;
    gil.stats.drop_requests++;
    /* Not the holder's id: a thread takes the GIL in hl_thread_attach
     * before its id is written. Observed under the mutex, unlike the
     * others: once per switch interval or wake-up at most, and carrying it
     * out would cost every take. */
    HL_PROBE(gil_drop_request, t->id);
    hli_observe(HL_SYNC_GIL_DROP_REQUEST, hl_now_ns(), 0, 0);
  }
  hl_thread_request(gil.holder, HL_BREAK_GIL_DROP);
}

bool hli_gil_on(void) { return hl_atomic_load_relaxed_u32(&gil.enabled) != 0; }
bool hl_gil_enabled(void) { return hli_gil_on(); }

bool hl_gil_held(void) {
  hl_thread_t *t = hl_thread_self();
  if (!t || !hli_gil_on()) return false;
  lock(&gil.mutex);
  bool held = gil.locked && gil.holder == t;
  unlock(&gil.mutex);
  return held;
}

static struct timespec deadline_after(uint64_t ns) {
  uint64_t at = hl_now_ns() + ns;
  return (struct timespec){(time_t)(at / 1000000000ull), (long)(at % 1000000000ull)};
}

void hli_gil_take(hl_thread_t *t, hli_take_reason_t why) {
  pthread_once(&gil_once, init_once);
  uint64_t t0 = hl_now_ns();
  bool waited = false;
  lock(&gil.mutex);
  bool priority = gil.policy->priority(why);
  /* Reserved for another: wait even while the GIL is free. */
  while (gil.locked || (gil.handoff_to && gil.handoff_to != t)) {
    waited = true;
    if (priority && gil.locked && !gil.handoff_to) {
      /* the policy lets t jump the queue: reserve the GIL and ask now */
      gil.handoff_to = t;
      request_drop_locked(t);
    }
    uint64_t seen = gil.switch_number;
    struct timespec until = deadline_after(gil.interval_ns);
    int e = pthread_cond_timedwait(&gil.cond, &gil.mutex, &until);
    /* A whole interval without any switch: ask the holder to let go. After
     * a switch the new holder gets its own full interval first. */
    if (e == ETIMEDOUT && gil.locked && gil.switch_number == seen) request_drop_locked(t);
  }
  bool handed = gil.handoff_to == t;
  if (handed) {
    gil.handoff_to = NULL;
    gil.stats.handoffs++;
    /* another waker behind this one may now reserve it (see the top) */
    pthread_cond_broadcast(&gil.cond);
  }
  /* switch_mutex before holder changes: a thread in hli_gil_yield reads it
   * under switch_mutex alone. */
  lock(&gil.switch_mutex);
  gil.locked = true;
  bool switched = gil.holder != t, forced = false;
  if (switched) {
    gil.holder = t;
    gil.switch_number++;
    gil.stats.switches++;
    forced = gil.dropped_on_request;
    if (forced) gil.stats.forced_switches++;
  }
  gil.dropped_on_request = false;
  pthread_cond_signal(&gil.switch_cond);
  unlock(&gil.switch_mutex);
  /* Requests are made under this mutex, of the holder only: whatever is set
   * on t now was meant for an earlier hold of it. */
  gil.drop_requested = false;
  hl_atomic_and_u64(t->breaker, ~HL_BREAK_BIT(HL_BREAK_GIL_DROP));
  uint64_t now = hl_now_ns();
  hl_hist_record(&gil.stats.wait_ns, now - t0);
  gil.taken_ns = now;
  hl_gil_switch_fn fn = gil.on_switch;
  void *arg = gil.on_switch_arg;
  unlock(&gil.mutex);
  HL_PROBE(gil_take, t->id, now - t0, (int)forced);
  hli_observe(HL_SYNC_GIL_TAKE, now, waited ? now - t0 : 0, forced);
  /* outside the mutex: the hook may write a trace line */
  if (switched && fn) fn(t->id, forced, now - t0, arg);
}

void hl_gil_set_switch_hook(hl_gil_switch_fn fn, void *arg) {
  pthread_once(&gil_once, init_once);
  lock(&gil.mutex);
  gil.on_switch = fn;
  gil.on_switch_arg = arg;
  unlock(&gil.mutex);
}

void hli_gil_drop(hl_thread_t *t, hli_drop_reason_t why) {
  lock(&gil.mutex);
  if (HL_UNLIKELY(!gil.locked || gil.holder != t))
    hl_die("thread %llu releases a GIL it does not hold", (unsigned long long)t->id);
  uint64_t now = hl_now_ns(), held = now - gil.taken_ns;
  hl_hist_record(&gil.stats.hold_ns, held);
  gil.locked = false;
  gil.dropped_on_request = why == HLI_DROP_REQUEST;
  if (why == HLI_DROP_DETACH) {
    /* t is freed next: the holder must not name it (a new thread could get
     * its address). */
    lock(&gil.switch_mutex);
    gil.holder = NULL;
    unlock(&gil.switch_mutex);
  }
  HL_PROBE(gil_release, t->id, held, (int)why);
  /* One waiter suffices, unless the GIL is reserved: then the one woken
   * must include the reserved thread. */
  if (gil.handoff_to) pthread_cond_broadcast(&gil.cond);
  else pthread_cond_signal(&gil.cond);
  unlock(&gil.mutex);
  hli_observe(HL_SYNC_GIL_RELEASE, now, held, (uint64_t)why);
}

void hli_gil_yield(hl_thread_t *t) {
  hli_gil_drop(t, HLI_DROP_REQUEST);
  /* Forced switching: someone waits (it asked), so someone takes. */
  lock(&gil.switch_mutex);
  while (gil.holder == t) pthread_cond_wait(&gil.switch_cond, &gil.switch_mutex);
  unlock(&gil.switch_mutex);
  hli_gil_take(t, HLI_TAKE_YIELD);
}

void hl_gil_stats(hl_gil_stats_t *out) {
  pthread_once(&gil_once, init_once);
  lock(&gil.mutex);
  memcpy(out, &gil.stats, sizeof *out);
  unlock(&gil.mutex);
}

void hl_gil_stats_reset(void) {
  pthread_once(&gil_once, init_once);
  lock(&gil.mutex);
  reset_stats_locked();
  unlock(&gil.mutex);
}
