/* The concurrent collector (--gc=concurrent, rc=atomic|biased): the
 * incremental collector's scan of the old generation, run by a collector
 * thread of its own while the mutators run; the world stops only for
 * young collections and for the validation of what the scan found.
 *
 * The algorithm. PEP 703 rejected a concurrent collector for CPython's
 * free-threaded build because tracing beside running mutators needs a write
 * barrier on every store, which the C API cannot impose. Bacon and Rajan
 * ("Concurrent Cycle Collection in Reference Counted Systems", ECOOP 2001;
 * the Recycler, PLDI 2001) answered that for reference-counted systems:
 * compute the trial deletion on a graph the mutators keep changing, and
 * free nothing until a test made afterwards proves that the cycle found is
 * still garbage. Paz, Bacon, Kolodner, Petrank and Rajan (on-the-fly cycle
 * collection, CC 2005 / TOPLAS 2007) made the handshakes short. heaplab
 * does the same with the pieces the incremental collector already has
 * (gen_incr.c, whose top comment gives the phases and the argument):
 *
 *   collector thread, beside the mutators, in chunks
 *     MARK    the old generation's objects get the scan's mark
 *     COUNT   each is traversed; each member it references gets a referrer
 *     ROOTS   what has more references than referrers among the members
 *             is referenced from outside; it and what it reaches are live;
 *             the rest are candidates
 *   handshakes, the world stopped (a mutator whose allocation crosses
 *   threshold 0, as under stw)
 *     a young collection; a scan started when stw would collect in full;
 *     VALIDATE: collect.c's synchronous trial deletion of the candidates,
 *     whole components at a time, within --pause-budget-us where it can.
 *
 * The invariant that makes it safe: an object is freed only by VALIDATE,
 * which is CPython's own collection applied to a set of objects at one
 * instant with the world stopped: whatever the scan computed from counts
 * and edges that the mutators changed meanwhile, a candidate that anything
 * outside the set references then is kept, with everything it reaches. A
 * stale count or a traversal skipped can make a live object a candidate (a
 * wasted look in the handshake) or a dead one live (found by the next
 * scan), never free a live one. Completeness is the incremental scan's:
 * garbage present when a scan starts never changes, so that scan finds it.
 *
 * What a chunk needs in order to read the heap while the mutators write it
 * (each hazard, with its answer):
 *   - The old lists change under the scan: a chunk holds the lock of the
 *     shared lists (stripe 0, track.c), which every link and unlink of an
 *     object in them takes, so the lists, the cursor and the marks in the
 *     GC heads' prev words are the chunk's alone. A mutator that frees an
 *     old object waits for the chunk: a chunk lasts CHUNK_NS (20 us) at
 *     most, and ends within 16 units when a mutator waits (track.c's
 *     hli_gc_lists_waiters), after which the waiters go first; unless the
 *     scheduler takes the core from the collector thread inside one. The
 *     waits are counted and timed (gc_lock_waits in the JSON "rc" object):
 *     about 10% of a mutator's time on long-lived, whose churn frees old
 *     records all the time (papers/incremental-pauses): the global lock is
 *     this design's limit.
 *   - A member dies under the scan: its deallocation unlinks it (and
 *     waits for the lock) before its type's dealloc clears it, so every
 *     member is whole while a chunk runs.
 *   - A referent of a member is dropped and freed while the chunk looks at
 *     it: a list or dict is traversed under its object lock (taken with a
 *     bounded try: a mutator holding it may be waiting for the lists'
 *     lock; a container not locked in time is not traversed, counted in
 *     `skipped`, which can only keep objects); what a locked container
 *     removes is dropped after the unlock. A tuple's items live as long as
 *     the tuple, and a tuple filled after it was tracked (hl_tuple_set) is
 *     read with acquire loads. An instance slot is written without a lock:
 *     that is the mutators' barrier. While a scan runs (hli_gc_scanning,
 *     raised by the first handshake after the scan started, with the world
 *     stopped, lowered after the scan's last traversal), hl_slot_set and
 *     hl_tuple_set drop the reference they replace after a QSBR grace
 *     period (shared.c),
 *     and the collector thread is an attached QSBR reader that announces no
 *     quiescent state inside a chunk: a slot's old value stays valid until
 *     the chunk that may have read it ends. Outside scans the barrier is a
 *     load and a branch.
 *   - A young object a member references: its GC head is written by its
 *     owner without a lock (its thread's stripe); the scan reads only its
 *     flags, where the stripe says it is not a member (gen_incr.c's
 *     member_head). Flags change only before publication or with the
 *     world stopped.
 *   - Counts: read atomically; a stale one is the first hazard's case.
 *   - Stops of the world: the collector thread is attached, with a
 *     checkpoint between chunks, so a stop waits at most a chunk for it and
 *     no chunk runs while the world is stopped; the scan's state is
 *     touched by chunks under the lock and by handshakes with the world
 *     stopped, never both. It sleeps blocked (hl_thread_block_begin), so
 *     an idle collector delays no stop and no grace period.
 *
 * Pacing: the thread works chunks for BURST_NS (a checkpoint between two),
 * then sleeps (SHARE - 1) times as long, so that it takes at most 1/SHARE
 * of a core (Go's collector aims at 25% of the processors' time), unless
 * the scan is late (the next one would be due already, gen_incr.c's rule),
 * when it works flat out and the handshakes help it within their budget
 * (assists, as Go's mutators assist its collector): garbage must not pile
 * up because the collector was polite. It does nothing while
 * automatic collection is disabled (gc.disable), so that hl_gc_step, which
 * runs every phase in the handshake, steps a scan exactly.
 *
 * What it leaves: VALIDATE's handshake grows with the largest garbage
 * component (counted as overruns, as under incremental), young collections
 * still stop every thread, --gc-threads above 1 is not built (one thread
 * holds the lists' lock per chunk: a second would need the old generation
 * split), and a mutator that frees old objects waits for the lock while a
 * chunk holds it (not counted as a pause: it is not a stop of the world).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "collector.h"
#include "hl_thread.h"

#define CHUNK_NS 20000ull      /* a chunk: what a mutator may wait for the lists' lock */
#define BURST_NS 200000ull     /* chunks in a row between two of the pacing's sleeps */
#define SHARE 4                /* at most a quarter of a core unless the scan is late */
#define IDLE_WAIT_NS 5000000ull  /* an idle thread looks again this often, woken or not */
#define TRYLOCK_SPINS 256      /* a container's lock: tries before giving its traversal up */
#define YIELD_SPINS 4096       /* looks at the lists' waiters before taking the lock anyway */

uint32_t hli_gc_scanning_word;

static struct {
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  pthread_t thread;
  bool started;   /* under mutex */
  bool wake;      /* under mutex */
  bool stop;      /* under mutex */
  /* under stripe 0's lock (the chunks), read by hl_gc_stats under it */
  hl_hist_t chunk_ns;
  uint64_t cpu_mark;   /* the thread's CPU time at its last sample */
} conc = {.mutex = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t cond_once = PTHREAD_ONCE_INIT;
static void cond_init(void) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&conc.cond, &a);
  pthread_condattr_destroy(&a);
}

/* ---- the traversal a chunk uses ------------------------------------------------------- */
static bool lock_try(uint32_t *w) {
  for (unsigned i = 0; i < TRYLOCK_SPINS; i++) {
    uint32_t v = hl_atomic_load_relaxed_u32(w);
    if (!(v & HLI_LOCK_HELD) && hl_atomic_cas_u32(w, v, v | HLI_LOCK_HELD)) return true;
    hl_cpu_relax();
  }
  return false;
}
/* Only the holder changes the word (shared.c): the shared bit is kept. */
static void lock_release(uint32_t *w) {
  hl_atomic_store_release_u32(w, hl_atomic_load_relaxed_u32(w) & ~HLI_LOCK_HELD);
}

/* The items of a tuple or instance as traverse_gc visits them, each read
 * with acquire: its writer (hl_tuple_set filling a tuple after it was
 * tracked, hl_slot_set) stores with release, so the referent is whole;
 * what a write replaces is dropped after a grace period (the barrier). */
static void visit_items(hl_object_t *const *items, size_t n, hl_visit_fn visit, void *arg) {
  for (size_t i = 0; i < n; i++) {
    hl_object_t *x = hl_atomic_c11_load_acquire_ptr((void *const *)&items[i]);
    if (hli_visit_wanted(x, true)) visit(x, arg);
  }
}

bool hli_conc_traverse(hl_object_t *o, hl_visit_fn visit, void *arg) {
  uint32_t *w;
  switch (o->type->kind) {
  case HL_K_LIST: w = &((hl_list_t *)o)->lock; break;
  case HL_K_DICT: w = &((hl_dict_t *)o)->lock; break;
  case HL_K_TUPLE: {
    hl_tuple_t *t = (hl_tuple_t *)o;
    visit_items(t->items, t->size, visit, arg);
    return true;
  }
  case HL_K_INSTANCE: {
    hl_instance_t *in = (hl_instance_t *)o;
    visit_items(&in->dict, 1, visit, arg);
    visit_items(in->slots, o->type->nslots, visit, arg);
    return true;
  }
  default:   /* a weakref: nothing the collector follows */
    hli_gc_traverse(o, visit, arg);
    return true;
  }
  if (!lock_try(w)) return false;
  hli_gc_traverse(o, visit, arg);
  lock_release(w);
  return true;
}

/* ---- the collector thread ---------------------------------------------------------------- */
static void sleep_blocked(uint64_t ns, bool woken_early) {
  hl_thread_block_begin();
  pthread_mutex_lock(&conc.mutex);
  if (!conc.stop && !(woken_early && conc.wake)) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t at = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + ns;
    ts.tv_sec = (time_t)(at / 1000000000ull);
    ts.tv_nsec = (long)(at % 1000000000ull);
    if (woken_early) {
      while (!conc.wake && !conc.stop)
        if (pthread_cond_timedwait(&conc.cond, &conc.mutex, &ts) == ETIMEDOUT) break;
    } else {
      pthread_cond_timedwait(&conc.cond, &conc.mutex, &ts);   /* only a stop cuts it short */
    }
  }
  if (woken_early) conc.wake = false;
  pthread_mutex_unlock(&conc.mutex);
  hl_thread_block_end();
}

static bool stopping(void) {
  pthread_mutex_lock(&conc.mutex);
  bool s = conc.stop;
  pthread_mutex_unlock(&conc.mutex);
  return s;
}

/* Under the lists' lock: the thread's CPU time since its last sample (its
 * chunks, sleeps and wake-ups) into the statistics. */
static void cpu_sample(hl_gc_stats_t *st) {
  uint64_t cpu = hl_thread_cpu_ns();
  st->conc_cpu_ns += cpu - conc.cpu_mark;
  conc.cpu_mark = cpu;
}

static void *collector_main(void *arg) {
  (void)arg;
  hl_thread_attach();
  hl_spinlock_t *lock = &hli_gc_stripes[0].lock;
  conc.cpu_mark = hl_thread_cpu_ns();
  uint64_t burst = 0;   /* time in chunks since the last sleep */
  while (!stopping()) {
    hl_checkpoint();
    /* Under rc=biased this thread's index may be one an exited thread
     * owned objects under (indexes are reused, and ownership with them):
     * their decrements by others are queued here, and its checkpoints merge
     * them and free what reaches zero. Those objects go back to the
     * allocator, and its counts to the process totals, at once: this
     * thread makes nothing that would use its free lists. */
    if (HL_UNLIKELY(hli_tstate.stats.freed)) hl_freelists_clear();
    /* The lock is not fair: released and taken again at once, it would stay
     * this thread's for a whole burst while a mutator spins for it. Waiters
     * go first (for at most YIELD_SPINS looks). */
    for (unsigned i = 0; i < YIELD_SPINS && hl_atomic_load_relaxed_u32(&hli_gc_lists_waiters); i++)
      hl_cpu_relax();
    hl_spinlock_lock(lock);
    /* the barrier up (a handshake raised it), automatic collection on */
    bool work = hli_gc_scanning() && hli_gc_load_bool(&hli_gc.enabled) &&
                hli_scan_concurrent_work();
    uint64_t t0 = 0, t1 = 0;
    bool late = false;
    if (work) {
      t0 = hl_now_ns();
      uint64_t skipped;
      uint64_t units = hli_scan_chunk(UINT64_MAX, t0 + CHUNK_NS, &skipped);
      t1 = hl_now_ns();
      late = hli_scan_late();
      hl_gc_stats_t *st = hli_gc_stats_mut();
      st->conc_chunks++;
      st->conc_units += units;
      st->conc_skipped += skipped;
      st->conc_busy_ns += t1 - t0;
      cpu_sample(st);
      hl_hist_record(&conc.chunk_ns, t1 - t0);
    }
    hl_spinlock_unlock(lock);
    if (!work) {
      sleep_blocked(IDLE_WAIT_NS, true);
      /* the sleep and the wake-ups are the collector's CPU too */
      hl_spinlock_lock(lock);
      cpu_sample(hli_gc_stats_mut());
      hl_spinlock_unlock(lock);
      burst = 0;
    } else if ((burst += t1 - t0) >= BURST_NS) {
      if (!late) sleep_blocked(burst * (SHARE - 1), false);
      burst = 0;
    }
  }
  hl_thread_detach();
  return NULL;
}

void hli_conc_wake(void) {
  pthread_once(&cond_once, cond_init);
  pthread_mutex_lock(&conc.mutex);
  if (!conc.started) {
    /* the first scan: the thread attaches once the world resumes */
    conc.stop = false;
    int e = pthread_create(&conc.thread, NULL, collector_main, NULL);
    if (e) hl_die("--gc=concurrent: cannot start the collector thread: %s", strerror(e));
    conc.started = true;
  }
  conc.wake = true;
  pthread_cond_signal(&conc.cond);
  pthread_mutex_unlock(&conc.mutex);
}

static void thread_stop(void) {
  pthread_once(&cond_once, cond_init);
  pthread_mutex_lock(&conc.mutex);
  bool started = conc.started;
  conc.stop = true;
  pthread_cond_signal(&conc.cond);
  pthread_mutex_unlock(&conc.mutex);
  if (!started) return;
  /* an attached caller must not hold up the thread's last checkpoint or
   * its detach's grace period while it waits */
  bool attached = hl_thread_self() != NULL;
  if (attached) hl_thread_block_begin();
  pthread_join(conc.thread, NULL);
  if (attached) hl_thread_block_end();
  pthread_mutex_lock(&conc.mutex);
  conc.started = false;
  conc.stop = false;
  conc.wake = false;
  pthread_mutex_unlock(&conc.mutex);
}

void hl_gc_chunk_hist(hl_hist_t *out) {
  hl_spinlock_lock(&hli_gc_stripes[0].lock);
  *out = conc.chunk_ns;
  hl_spinlock_unlock(&hli_gc_stripes[0].lock);
}
void hli_conc_stats_reset(void) { hl_hist_init(&conc.chunk_ns); }

/* ---- the row ---------------------------------------------------------------------------- */
static int init(const hl_config_t *c) {
  if (!hli_nogil()) {   /* the configuration refuses it first (hl_config.h's row) */
    hl_err_set(HL_ERR_VALUE, "needs a refcount mode without a GIL (rc=atomic or rc=biased)");
    return -1;
  }
  if (c->gc_threads != 1) {
    hl_err_set(HL_ERR_VALUE, "--gc-threads=%llu: only 1 collector thread is built",
               (unsigned long long)c->gc_threads);
    return -1;
  }
  hl_hist_init(&conc.chunk_ns);
  hli_gc_scanning_set(false);
  return hli_scan_init(c);
}

static void trigger(void) {
  uint64_t stopped_at = hli_gc_world_stop();
  if (hli_gc_load_bool(&hli_gc.enabled) && !hli_gc_load_bool(&hli_gc.collecting))
    hli_scan_increment(stopped_at, false);
  hli_gc_world_resume(stopped_at);
}

static int64_t step(uint64_t stopped_at) { return hli_scan_increment(stopped_at, true); }

static void fini(void) {
  thread_stop();
  hli_scan_gather();
  hli_gc_scanning_set(false);
}

const hli_collector_t hli_collector_concurrent = {
  .name = "concurrent",
  .tracks = true,
  .init = init,
  .fini = fini,
  .trigger = trigger,
  .step = step,
  .collect = hli_scan_collect,
  .gather = hli_scan_gather,
};
