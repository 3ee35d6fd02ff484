/* Containers shared between threads without a GIL: object locks, and what
 * writers remove, dropped or freed after a QSBR grace period.
 *
 * CPython 3.13t (PEP 703, "Container thread-safety") protects each list and
 * dict with a per-object mutex taken by every writer, while readers of the
 * common operations (a list item, a dict lookup) read without it: they load
 * the item, take a reference with an increment that fails on an object
 * whose count is already zero, and check that the container still holds
 * it; on any failure they retry under the lock. The memory they read must
 * stay valid meanwhile: CPython frees list arrays and dict tables after a
 * QSBR grace period, and keeps freed objects' memory object-shaped (its
 * mimalloc heaps are per type and its pages are reused only after a grace
 * period).
 *
 * heaplab's allocator reuses a freed block for anything of its size class
 * at once, so an object must not be freed while a reader may still be
 * about to increment it. Instead of delaying the memory, heaplab delays
 * the reference: when a shared container (gc_internal.h) gives up a
 * reference to an item, the decrement itself waits for a grace period (as
 * CPython 3.14's _PyObject_XDecRefDelayed does). Every reader that loaded
 * the item from the container before it was removed passes a quiescent
 * state (a checkpoint) before the grace period ends, so until then the
 * object's count is at least one and its memory valid. Arrays and tables
 * of shared containers are freed after a grace period in the same way.
 * The try-increment still fails where CPython's does (rc=biased: another
 * thread's object whose shared count is zero), and the reader then takes
 * the lock; it never finds a count at zero here.
 *
 * The delayed work is batched per thread: 256 entries (an object to drop,
 * or a block to free, tagged in its low bit) make a batch; a full batch,
 * or one older than a millisecond when the next entry comes, is sealed and
 * handed to sync/qsbr.c, whose callback (liburcu's worker thread) only
 * marks it ready and asks the owning thread, through a breaker bit, to
 * process it at its next checkpoint. Objects are thus always dropped by an
 * attached thread of the runtime, never by liburcu's worker. A thread that
 * detaches waits for its batches. A thread that is not attached (the main
 * thread, before or after the workers) is no QSBR reader and has no
 * checkpoints: it waits for a grace period on the spot.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "gc_internal.h"
#include "hl_sync.h"

#define BATCH 256u
#define BATCH_AGE_NS 1000000ull
#define BLOCK_TAG ((uintptr_t)1)

typedef struct hli_defer_batch {
  struct hli_defer_batch *next;
  hl_thread_t *owner;
  uint32_t ready;             /* set (release) by the QSBR callback */
  uint32_t n;
  uint64_t opened_ns;
  uintptr_t items[BATCH];     /* an object, or a block | BLOCK_TAG */
} batch_t;

static int defer_bit = -1;

void hli_objlock_wait(uint32_t *w) {
  unsigned spins = 0;
  for (;;) {
    uint32_t v = hl_atomic_load_relaxed_u32(w);
    if (!(v & HLI_LOCK_HELD)) {
      if (hl_atomic_cas_u32(w, v, v | HLI_LOCK_HELD)) return;
      continue;
    }
    /* Past the core count the holder may be descheduled: spin a little,
     * then give the core up (hl_lock.h does the same). */
    if (++spins < HL_SPINLOCK_SPINS_BEFORE_YIELD) hl_cpu_relax();
    else sched_yield();
  }
}

void hli_drop_overflow(void) {
  hl_die("more than %d references dropped under one container lock", HLI_DROPS);
}

void hli_drops_flush(bool shared) {
  /* a drop may run code that locks a container again: take them out first */
  hl_object_t *drops[HLI_DROPS];
  uint32_t n = hli_tstate.ndrops;
  for (uint32_t i = 0; i < n; i++) drops[i] = hli_tstate.drops[i];
  hli_tstate.ndrops = 0;
  for (uint32_t i = 0; i < n; i++) hli_release_ref(drops[i], shared);
}

/* ---- batches ------------------------------------------------------------------ */

static void run_item(uintptr_t it) {
  if (it & BLOCK_TAG) hl_alloc_free((void *)(it & ~BLOCK_TAG));
  else hl_decref((hl_object_t *)it);
}

/* liburcu's worker thread, after a grace period: touches no object. */
static void batch_ready(void *p) {
  batch_t *b = p;
  hl_thread_t *owner = b->owner;
  /* Release: the owner's acquire in process_ready; the grace period is
   * over for everything in the batch. owner is read before: once ready is
   * set, the owner may free b. */
  hl_atomic_store_release_u32(&b->ready, 1);
  hl_thread_request(owner, (unsigned)defer_bit);
}

/* hli_tstate is used by name, never through a pointer, in this file: GCC
 * 12 with -fsanitize=address,undefined miscompiles the null check of a
 * pointer to a thread-local variable here (a jump on the flags of an
 * unrelated comparison) and reports a null member access that is not
 * there. */
#define TS hli_tstate

static void seal(void) {
  batch_t *b = TS.defer_open;
  TS.defer_open = NULL;
  b->next = NULL;
  if (TS.defer_sealed_tail) TS.defer_sealed_tail->next = b;
  else TS.defer_sealed = b;
  TS.defer_sealed_tail = b;
  hl_qsbr_defer(batch_ready, b);
}

/* Runs the batches whose grace period is over, oldest first. */
static void process_ready(void) {
  batch_t *b;
  while ((b = TS.defer_sealed) && hl_atomic_load_acquire_u32(&b->ready)) {
    TS.defer_sealed = b->next;
    if (!TS.defer_sealed) TS.defer_sealed_tail = NULL;
    /* the items may defer more: into the open batch, never into b */
    for (uint32_t i = 0; i < b->n; i++) run_item(b->items[i]);
    free(b);
  }
}

static void defer_handler(hl_thread_t *t, unsigned bit, void *arg) {
  (void)t;
  (void)bit;
  (void)arg;
  process_ready();
}

static void defer_item(uintptr_t it) {
  hl_thread_t *self = hl_thread_self();
  if (!self || !hli_qsbr_reader()) {
    /* no checkpoints here: wait for the readers now */
    hl_qsbr_synchronize();
    run_item(it);
    return;
  }
  batch_t *b = TS.defer_open;
  if (!b) {
    b = hl_fail_hit(HL_FAIL_RUNTIME) ? NULL : malloc(sizeof *b);
    if (!b) {
      /* No memory for a batch: a decrement cannot fail, so it waits for
       * the readers now, as a thread without checkpoints does (slower,
       * a grace period per item, until memory comes back). */
      hl_qsbr_synchronize();
      run_item(it);
      return;
    }
    b->owner = self;
    b->ready = 0;
    b->n = 0;
    b->opened_ns = hl_now_ns();
    TS.defer_open = b;
  }
  b->items[b->n++] = it;
  if (b->n == BATCH || (b->n % 16 == 0 && hl_now_ns() - b->opened_ns > BATCH_AGE_NS)) seal();
}

void hli_defer_decref(hl_object_t *o) { defer_item((uintptr_t)o); }

void hli_defer_free(void *block) {
  if (!block) return;
  HL_ASSERT(((uintptr_t)block & BLOCK_TAG) == 0);
  defer_item((uintptr_t)block | BLOCK_TAG);
}

void hli_defer_thread_exit(void) {
  /* what the batches drop may defer again: until nothing is left */
  while (TS.defer_open || TS.defer_sealed) {
    if (TS.defer_open) seal();
    hl_qsbr_barrier();   /* every callback has run: all batches ready */
    process_ready();
  }
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void init(void) {
  defer_bit = hl_thread_break_register(defer_handler, NULL);
  if (defer_bit < 0) hl_die("no breaker bit left for deferred drops");
}
void hli_shared_init(void) { pthread_once(&init_once, init); }
