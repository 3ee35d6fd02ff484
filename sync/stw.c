/* Stop-the-world for the modes without a GIL: every attached thread parks
 * at its next checkpoint (CPython 3.13t's _PyEval_StopTheWorld, written
 * anew over heaplab's checkpoints).
 *
 * The protocol, under `mutex` unless it says otherwise:
 *   stopper                            every other attached thread
 *   -------------------------------    ------------------------------------
 *   wait while another stop is on      (running)
 *   requested = 1                      checkpoint: HL_BREAK_STW set?
 *   set HL_BREAK_STW on each thread      state = PARKED, signal the stopper,
 *     that runs attached                 wait while requested (offline for
 *   wait until none runs attached        QSBR), state = ATTACHED
 *   ... the world is still ...
 *   requested = 0, wake everyone
 * A thread that is blocked (hl_thread_block_begin: outside the runtime)
 * counts as stopped, and its block_end waits for the resume; a thread that
 * attaches meanwhile waits too (attach enters the registry under this
 * mutex, so the stopper's scan sees a thread or it waits). Detached
 * threads are not in the registry.
 *
 * The fast paths of block_begin and block_end take no lock: the thread
 * writes its state, then reads `requested`; the stopper writes `requested`,
 * then reads each state, with a full fence between the write and the read
 * on both sides (Dekker's pattern): either the stopper sees the thread
 * blocked, or the thread sees the request and takes the slow path (it
 * signals the stopper, or in block_end goes back to blocked and waits).
 *
 * Lock order: this mutex, then the registry's (hl_thread_foreach), then a
 * GIL's mutexes (only attach takes both: a stop is for GIL-less modes, but
 * nothing breaks if one is requested under a GIL).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hl_probe.h"
#include "hl_sync.h"
#include "sync_internal.h"

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;               /* any change: a park, a block, a resume */
static pthread_once_t cond_once = PTHREAD_ONCE_INIT;
static uint32_t requested;                /* written under mutex; read anywhere */
static bool stopper_set;                  /* under mutex */
static pthread_t stopper;                 /* under mutex, valid when stopper_set */
static hl_hist_t hist;                    /* under mutex */
static uint64_t report_ns;                /* under mutex; 0: no reports */
static uint64_t slow_stops;               /* under mutex */
static uint64_t stopped_ns;               /* under mutex: when the current stop was complete */

static void init_cond(void) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&cond, &a);
  pthread_condattr_destroy(&a);
  hl_hist_init(&hist);
}

static void lock(void) {
  pthread_once(&cond_once, init_cond);
  pthread_mutex_lock(&mutex);
}
static void unlock(void) { pthread_mutex_unlock(&mutex); }

static uint64_t self_id(void) {
  hl_thread_t *t = hl_thread_self();
  return t ? t->id : 0;
}

/* Under mutex: the calling thread is the one that stopped the world. */
static bool we_stopped(void) { return stopper_set && pthread_equal(stopper, pthread_self()); }

/* Waits under mutex while a stop by another thread is on; offline for QSBR
 * meanwhile (so that a grace period never waits on us), and, for an
 * attached thread running (a second stopper waiting for its turn), parked
 * as far as the stopper goes. */
static void wait_resume_locked(void) {
  if (!hl_atomic_load_relaxed_u32(&requested) || we_stopped()) return;
  hl_thread_t *t = hl_thread_self();
  uint32_t was = t ? hl_atomic_load_relaxed_u32(&t->state) : HL_THREAD_DETACHED;
  if (was == HL_THREAD_ATTACHED) {
    hl_atomic_store_relaxed_u32(&t->state, HL_THREAD_PARKED);
    pthread_cond_broadcast(&cond);
  }
  hl_qsbr_offline();
  while (hl_atomic_load_relaxed_u32(&requested) && !we_stopped()) pthread_cond_wait(&cond, &mutex);
  hl_qsbr_online();
  if (was == HL_THREAD_ATTACHED) hl_atomic_store_relaxed_u32(&t->state, was);
}

/* ---- what thread.c calls ---------------------------------------------------------- */

void hli_stw_attach_begin(void) {
  lock();
  wait_resume_locked();   /* a thread not registered yet: offline/online do nothing */
}
void hli_stw_attach_end(void) { unlock(); }

bool hli_stw_requested(void) {
  /* A full fence before the load: see the top (Dekker). Acquire: a thread
   * that finds no stop on may have been counted stopped by one that has
   * just ended (a collection that changed the lists); it pairs with the
   * release in hl_stw_resume, so what that stopper wrote is visible to it. */
  hl_atomic_fence_seq_cst();
  return hl_atomic_load_acquire_u32(&requested) != 0;
}

void hli_stw_signal(void) {
  lock();
  pthread_cond_broadcast(&cond);
  unlock();
}

/* block_end found a stop on: back to blocked, wait for the resume. */
void hli_stw_block_end_wait(hl_thread_t *t) {
  uint64_t t0 = hl_now_ns();
  HL_PROBE(stw_park, t->id);
  hl_atomic_store_relaxed_u32(&t->state, HL_THREAD_BLOCKED);
  lock();
  pthread_cond_broadcast(&cond);   /* the stopper may have seen us attached */
  wait_resume_locked();
  hl_atomic_store_relaxed_u32(&t->state, HL_THREAD_ATTACHED);
  unlock();
  uint64_t now = hl_now_ns();
  HL_PROBE(stw_unpark, t->id, now - t0);
  hli_observe(HL_SYNC_STW_UNPARKED, now, now - t0, 0);
}

/* A stop of the world for a young collection lasts tens of microseconds:
 * the parked threads, and the stopper waiting for them, spin through that
 * long before they sleep on the condition variable, whose sleep and wake-up
 * cost as much again (and the wake-up waits for the scheduler). They yield
 * the core between checks, so that with more threads than cores the spin
 * takes no time from the thread that stopped the world. */
#define SPIN_NS 50000u

/* Spins while `requested` is set, at most SPIN_NS. */
static void spin_while_requested(void) {
  uint64_t until = hl_now_ns() + SPIN_NS;
  for (unsigned n = 1; hl_atomic_load_acquire_u32(&requested); n++) {
    if (n % 64 != 0) {
      hl_cpu_relax();
    } else {
      if (hl_now_ns() >= until) return;
      sched_yield();
    }
  }
}

/* The checkpoint handler of HL_BREAK_STW. */
void hli_stw_park(hl_thread_t *t) {
  lock();
  if (!hl_atomic_load_relaxed_u32(&requested) || we_stopped()) {
    unlock();
    return;
  }
  hl_atomic_store_relaxed_u32(&t->state, HL_THREAD_PARKED);
  pthread_cond_broadcast(&cond);
  unlock();
  uint64_t t0 = hl_now_ns();
  HL_PROBE(stw_park, t->id);
  /* parked (the stopper counts us stopped) and offline, as while waiting */
  hl_qsbr_offline();
  spin_while_requested();
  /* under the mutex: a new stop may have come after the one we saw end,
   * and only under it does a stopper see our state change */
  lock();
  wait_resume_locked();
  hl_atomic_store_relaxed_u32(&t->state, HL_THREAD_ATTACHED);
  unlock();
  hl_qsbr_online();
  uint64_t now = hl_now_ns();
  HL_PROBE(stw_unpark, t->id, now - t0);
  hli_observe(HL_SYNC_STW_UNPARKED, now, now - t0, 0);
}

/* ---- stopping ------------------------------------------------------------------------ */

typedef struct scan {
  hl_thread_t *self;
  unsigned running;
  bool report;
  uint64_t waited_ns;
} scan_t;

/* Under mutex and the registry's: asks each thread that runs attached to
 * park, and counts them. */
static void scan_one(hl_thread_t *t, void *arg) {
  scan_t *s = arg;
  if (t == s->self) return;
  if (hl_atomic_load_acquire_u32(&t->state) != HL_THREAD_ATTACHED) return;
  s->running++;
  if (!(hl_thread_pending(t) & HL_BREAK_BIT(HL_BREAK_STW))) hl_thread_request(t, HL_BREAK_STW);
  if (s->report)
    fprintf(stderr,
            "heaplab: stop-the-world: thread %llu (index %u) has not reached a checkpoint "
            "%.3f ms after the request\n",
            (unsigned long long)t->id, t->index, (double)s->waited_ns / 1e6);
}

void hl_stw_stop(void) {
  uint64_t t0 = hl_now_ns();
  lock();
  wait_resume_locked();   /* another stopper's turn first */
  if (we_stopped()) hl_die("hl_stw_stop: the world is already stopped by this thread");
  hl_atomic_store_relaxed_u32(&requested, 1);
  stopper = pthread_self();
  stopper_set = true;
  HL_PROBE(stw_request, self_id());
  hl_atomic_fence_seq_cst();   /* the request before the states: see the top */
  scan_t s = {hl_thread_self(), 0, false, 0};
  bool reported = false, was_offline = false;
  for (;;) {
    s.running = 0;
    hl_thread_foreach(scan_one, &s);
    s.report = false;
    if (s.running == 0) break;
    if (!was_offline) {
      hl_qsbr_offline();   /* a thread waiting for a grace period must finish, then park */
      was_offline = true;
    }
    uint64_t now = hl_now_ns(), wait_ns = 1000000;   /* re-scan at least every ms */
    if (now - t0 < SPIN_NS && !s.report) {
      /* the others are usually a few microseconds from a checkpoint */
      unlock();
      for (int i = 0; i < 64; i++) hl_cpu_relax();
      sched_yield();
      lock();
      continue;
    }
    if (report_ns && !reported) {
      if (now - t0 >= report_ns) {
        s.report = reported = true;
        s.waited_ns = now - t0;
        slow_stops++;
        continue;   /* scan again, reporting */
      }
      if (report_ns - (now - t0) < wait_ns) wait_ns = report_ns - (now - t0);
    }
    uint64_t at = now + wait_ns;
    struct timespec until = {(time_t)(at / 1000000000ull), (long)(at % 1000000000ull)};
    pthread_cond_timedwait(&cond, &mutex, &until);
  }
  if (was_offline) hl_qsbr_online();
  uint64_t now = hl_now_ns();
  hl_hist_record(&hist, now - t0);
  stopped_ns = now;
  unlock();
  HL_PROBE(stw_stopped, self_id(), now - t0);
  hli_observe(HL_SYNC_STW_STOPPED, now, now - t0, 0);
}

void hl_stw_resume(void) {
  lock();
  if (!we_stopped()) hl_die("hl_stw_resume: the world was not stopped by this thread");
  stopper_set = false;
  hl_atomic_store_release_u32(&requested, 0);
  pthread_cond_broadcast(&cond);
  uint64_t now = hl_now_ns(), stopped = now - stopped_ns;
  unlock();
  HL_PROBE(stw_resume, self_id(), stopped);
  hli_observe(HL_SYNC_STW_RESUME, now, stopped, 0);
}

bool hl_stw_stopped(void) {
  lock();
  bool r = we_stopped();
  unlock();
  return r;
}

void hl_stw_hist(hl_hist_t *out) {
  lock();
  *out = hist;
  unlock();
}

void hl_stw_hist_reset(void) {
  lock();
  hl_hist_init(&hist);
  slow_stops = 0;
  unlock();
}

void hl_stw_set_report_us(uint64_t report_us) {
  lock();
  report_ns = report_us * 1000;
  unlock();
}

uint64_t hl_stw_slow_stops(void) {
  lock();
  uint64_t n = slow_stops;
  unlock();
  return n;
}
