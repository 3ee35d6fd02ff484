/* The micro-benchmarks (see micro.h). Each keeps its result observable
 * (a store to a volatile sink or a live data structure) so that the compiler
 * cannot delete the operation it measures. */
#include "micro.h"

#include <pthread.h>
#include <stdlib.h>

#include "hl_alloc.h"
#include "hl_sync.h"

static volatile uint64_t sink;

/* ---- allocation: one free + one malloc of a fixed size, per iteration ----
 * A ring of 64 live blocks: every iteration frees the oldest and allocates a
 * new one, so the allocator's free list is exercised rather than a single
 * block bouncing in and out (which a compiler may also fold away). */
#define RING 64
typedef struct ring { size_t size; void *p[RING]; } ring_t;

static void *alloc_setup(int64_t size) {
  ring_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->size = (size_t)size;
  for (int i = 0; i < RING; i++)
    if (!(r->p[i] = hl_alloc_malloc(r->size))) return NULL;
  return r;
}

static void alloc_run(void *state, uint64_t iters) {
  ring_t *r = state;
  unsigned k = 0;
  for (uint64_t i = 0; i < iters; i++) {
    hl_alloc_free(r->p[k]);
    r->p[k] = hl_alloc_malloc(r->size);
    k = (k + 1) % RING;
  }
  sink = (uint64_t)(uintptr_t)r->p[0];
}

static void alloc_teardown(void *state) {
  ring_t *r = state;
  for (int i = 0; i < RING; i++) hl_alloc_free(r->p[i]);
  free(r);
}

/* ---- the allocator under test: hl_alloc_*, whatever --alloc chose ----
 * Two ends of the allocation fast path, per size class:
 *   hot   malloc then free the same size, again and again: the block comes
 *         straight back from the top of the free list (or the thread cache),
 *         with its metadata in L1. The floor of an allocator's cost.
 *   cold  a ring of COLD_RING live blocks; each iteration frees the block at
 *         the next position of a fixed random permutation of the ring and
 *         allocates a new one there, so each freed block and the metadata
 *         of its pool or page were last touched COLD_RING iterations ago
 *         (a working set of 8 to 512 MB plus metadata, well past the
 *         caches). The permutation is drawn in setup so that the random
 *         number generator is not in the loop.
 * The block's address goes through an empty asm so that the compiler can
 * neither drop a malloc/free pair (GCC does, for malloc itself) nor keep
 * the result in a register it never needs. */
static inline void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

#define ALLOC_SIZES {8, 16, 32, 48, 64, 128, 256, 512, 0}

/* One block of the size stays live for the whole run, so the pool (page,
 * span) of the class never empties between the free and the next malloc:
 * the pair measures the free-list fast path, not the return of an empty
 * pool to its arena on every iteration. */
typedef struct hot { size_t size; void *keep; } hot_t;

static void *hot_setup(int64_t size) {
  hot_t *h = malloc(sizeof *h);
  if (!h) return NULL;
  h->size = (size_t)size;
  if (!(h->keep = hl_alloc_malloc(h->size))) {
    free(h);
    return NULL;
  }
  return h;
}

static void hot_teardown(void *state) {
  hot_t *h = state;
  hl_alloc_free(h->keep);
  free(h);
}

static void hot_run(void *state, uint64_t iters) {
  size_t n = ((const hot_t *)state)->size;
  for (uint64_t i = 0; i < iters; i++) {
    void *p = hl_alloc_malloc(n);
    escape(p);
    hl_alloc_free(p);
  }
}

#define COLD_RING 1000000u
typedef struct cold {
  size_t size;
  uint32_t next;              /* position in order[] */
  void **block;               /* COLD_RING live blocks */
  uint32_t *order;            /* a permutation of 0 .. COLD_RING-1 */
} cold_t;

static void cold_teardown(void *state) {
  cold_t *c = state;
  if (!c) return;
  for (uint32_t i = 0; c->block && i < COLD_RING; i++) hl_alloc_free(c->block[i]);
  free(c->block);
  free(c->order);
  free(c);
}

static void *cold_setup(int64_t size) {
  cold_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->size = (size_t)size;
  c->block = calloc(COLD_RING, sizeof *c->block);
  c->order = malloc(COLD_RING * sizeof *c->order);
  if (!c->block || !c->order) goto fail;
  for (uint32_t i = 0; i < COLD_RING; i++) {
    if (!(c->block[i] = hl_alloc_malloc(c->size))) goto fail;
    c->order[i] = i;
  }
  hl_rand_t r;
  hl_rand_seed(&r, 1);
  for (uint32_t k = COLD_RING; k > 1; k--) {  /* Fisher-Yates */
    uint32_t j = (uint32_t)hl_rand_below(&r, k);
    uint32_t t = c->order[k - 1];
    c->order[k - 1] = c->order[j];
    c->order[j] = t;
  }
  return c;
fail:
  cold_teardown(c);
  return NULL;
}

static void cold_run(void *state, uint64_t iters) {
  cold_t *c = state;
  uint32_t next = c->next;
  for (uint64_t i = 0; i < iters; i++) {
    uint32_t k = c->order[next];
    next = next + 1 == COLD_RING ? 0 : next + 1;
    hl_alloc_free(c->block[k]);
    c->block[k] = hl_alloc_malloc(c->size);
  }
  c->next = next;
  sink = (uint64_t)(uintptr_t)c->block[c->order[0]];
}

/* ---- what a peer allocator pays per call ----
 * A peer is reached through a function pointer (hl_alloc_state.peer),
 * glibc's malloc by a direct call. Both loops malloc and free 64 bytes;
 * the indirect one loads each pointer from a volatile global first, as
 * hl_alloc_malloc loads the peer's from memory on every call. The "direct"
 * call of a shared library's function is itself a jump through the PLT
 * (an indirect jump via the GOT) unless the binary is linked with -fno-plt:
 * the difference is a load and a call through a register against a call
 * and a jump through memory, so expect it to be small. */
#define CALL_SIZE 64
static void *(*volatile call_malloc)(size_t) = malloc;
static void (*volatile call_free)(void *) = free;

static void call_direct_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    void *p = malloc(CALL_SIZE);
    escape(p);
    free(p);
  }
}

static void call_indirect_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    void *p = call_malloc(CALL_SIZE);
    escape(p);
    call_free(p);
  }
}

/* ---- clock and histogram ---- */
static void clock_run(void *state, uint64_t iters) {
  (void)state;
  uint64_t acc = 0;
  for (uint64_t i = 0; i < iters; i++) acc += hl_now_ns();
  sink = acc;
}

static void *hist_setup(int64_t arg) {
  (void)arg;
  hl_hist_t *h = malloc(sizeof *h);
  if (h) hl_hist_init(h);
  return h;
}

static void hist_run(void *state, uint64_t iters) {
  hl_hist_t *h = state;
  hl_rand_t r;
  hl_rand_seed(&r, 1);
  for (uint64_t i = 0; i < iters; i++) hl_hist_record(h, hl_rand_next(&r) >> 40);
  sink = h->count;
}

static void rand_run(void *state, uint64_t iters) {
  (void)state;
  hl_rand_t r;
  hl_rand_seed(&r, 1);
  uint64_t acc = 0;
  for (uint64_t i = 0; i < iters; i++) acc ^= hl_rand_next(&r);
  sink = acc;
}

/* ---- atomics and locks, uncontended: the floor under every shared count ---- */
static uint64_t counter;
static hl_spinlock_t lock = HL_SPINLOCK_INITIALIZER;

static void plain_inc_run(void *state, uint64_t iters) {
  (void)state;
  volatile uint64_t *c = &counter;
  for (uint64_t i = 0; i < iters; i++) *c = *c + 1;
}

static void atomic_faa_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) hl_atomic_faa_u64(&counter, 1);
}

static void atomic_cas_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    uint64_t v = hl_atomic_load_relaxed_u64(&counter);
    while (!hl_atomic_cas_u64(&counter, v, v + 1)) v = hl_atomic_load_relaxed_u64(&counter);
  }
}

static void spinlock_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    hl_spinlock_lock(&lock);
    counter++;
    hl_spinlock_unlock(&lock);
  }
}

/* ---- QSBR: a reader's quiescent state (a store and a fence) ---- */
static void *qsbr_setup(int64_t arg) {
  (void)arg;
  hl_qsbr_register_thread();
  return &counter;
}

static void qsbr_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) hl_qsbr_quiescent();
}

static void qsbr_teardown(void *state) {
  (void)state;
  hl_qsbr_unregister_thread();
}

/* ---- threads and the GIL ----
 * checkpoint: the eval-breaker poll with nothing requested.
 * gil_block_unblock: one release and retake of an uncontended GIL
 * (Py_BEGIN/END_ALLOW_THREADS with no other thread).
 * gil_handoff: two CPU-bound threads, each running checkpoints only, at the
 * shortest switch interval (1 us); one iteration is a round trip, the GIL
 * handed to the partner and back: two waits timing out, two drop requests,
 * two forced switches, and the futex wake-ups between them. */
static void *checkpoint_setup(int64_t arg) {
  (void)arg;
  hl_gil_init(false, 5000);
  return hl_thread_attach();
}
static void checkpoint_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) hl_checkpoint();
}
static void detach_teardown(void *state) {
  (void)state;
  hl_thread_detach();
}

static void *gil_block_setup(int64_t arg) {
  (void)arg;
  hl_gil_init(true, 5000);
  return hl_thread_attach();
}
static void gil_block_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    hl_thread_block_begin();
    hl_thread_block_end();
  }
}
static void gil_off_teardown(void *state) {
  (void)state;
  hl_thread_detach();
  hl_gil_init(false, 5000);
}

typedef struct handoff {
  pthread_t partner;
  uint32_t stop;           /* release store by the main thread, acquire load by the partner */
  int turn;                /* who ran last: 0 main, 1 partner; under the GIL */
} handoff_t;

static void *handoff_partner(void *arg) {
  handoff_t *h = arg;
  hl_thread_attach();
  while (!hl_atomic_load_acquire_u32(&h->stop)) {   /* pairs with the teardown's release */
    h->turn = 1;
    hl_checkpoint();
  }
  hl_thread_detach();
  return NULL;
}

static void *handoff_setup(int64_t arg) {
  (void)arg;
  handoff_t *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  hl_gil_init(true, 1);
  hl_thread_attach();
  if (pthread_create(&h->partner, NULL, handoff_partner, h) != 0) {
    hl_thread_detach();
    free(h);
    return NULL;
  }
  return h;
}

static void handoff_run(void *state, uint64_t iters) {
  handoff_t *h = state;
  for (uint64_t i = 0; i < iters; i++) {
    h->turn = 0;
    while (h->turn == 0) hl_checkpoint();   /* until the partner has had the GIL */
  }
}

static void handoff_teardown(void *state) {
  handoff_t *h = state;
  hl_atomic_store_release_u32(&h->stop, 1);   /* pairs with the partner's acquire */
  hl_thread_detach();                          /* the partner takes the GIL and sees stop */
  pthread_join(h->partner, NULL);
  hl_gil_init(false, 5000);
  free(h);
}

const hl_micro_t hl_micros[] = {
  {"alloc_free_ring", "free the oldest of 64 live blocks, malloc one of the argument's size (allocator under test)",
   1024, {8, 16, 32, 64, 128, 256, 512, 0}, alloc_setup, alloc_run, alloc_teardown},
  {"alloc_free_hot", "malloc and free one block of the argument's size (allocator under test)",
   1024, ALLOC_SIZES, hot_setup, hot_run, hot_teardown},
  {"alloc_free_cold",
   "free a block at a random position of a 1,000,000-block ring and malloc one there "
   "(allocator under test)",
   1024, ALLOC_SIZES, cold_setup, cold_run, cold_teardown},
  {"call_direct_malloc", "malloc(64) and free, called directly (C library)", 1024, {0}, NULL,
   call_direct_run, NULL},
  {"call_indirect_malloc",
   "malloc(64) and free, called through function pointers loaded from volatile globals", 1024,
   {0}, NULL, call_indirect_run, NULL},
  {"clock_now", "one hl_now_ns() (CLOCK_MONOTONIC through the vDSO)", 1024, {0}, NULL,
   clock_run, NULL},
  {"hist_record", "one hl_hist_record() of a random value", 1024, {0}, hist_setup, hist_run,
   free},
  {"rand_next", "one xoshiro256** step", 4096, {0}, NULL, rand_run, NULL},
  {"inc_plain", "one non-atomic increment through memory (the gil refcount floor)", 4096, {0},
   NULL, plain_inc_run, NULL},
  {"inc_atomic_faa", "one atomic fetch-and-add, uncontended", 4096, {0}, NULL, atomic_faa_run,
   NULL},
  {"inc_atomic_cas", "one compare-and-swap increment, uncontended", 4096, {0}, NULL,
   atomic_cas_run, NULL},
  {"spinlock_lock_unlock", "lock, increment, unlock, uncontended", 4096, {0}, NULL,
   spinlock_run, NULL},
  {"qsbr_quiescent", "one QSBR quiescent state (liburcu qsbr)", 4096, {0}, qsbr_setup, qsbr_run,
   qsbr_teardown},
  {"checkpoint", "one hl_checkpoint() with nothing requested (the eval-breaker poll)", 4096, {0},
   checkpoint_setup, checkpoint_run, detach_teardown},
  {"gil_block_unblock", "release and retake an uncontended GIL (hl_thread_block_begin/end)",
   256, {0}, gil_block_setup, gil_block_run, gil_off_teardown},
  {"gil_handoff",
   "the GIL to a CPU-bound partner and back at switch interval 1 us (two forced switches)", 1,
   {0}, handoff_setup, handoff_run, handoff_teardown},
};
const unsigned hl_micro_count = sizeof hl_micros / sizeof hl_micros[0];
