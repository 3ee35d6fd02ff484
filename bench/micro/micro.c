/* The micro-benchmarks (see micro.h). Each keeps its result observable
 * (a store to a volatile sink or a live data structure) so that the compiler
 * cannot delete the operation it measures. */
#include "micro.h"

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

const hl_micro_t hl_micros[] = {
  {"alloc_free_system", "free one block and malloc one of the argument's size (C library)",
   1024, {8, 16, 32, 64, 128, 256, 512, 0}, alloc_setup, alloc_run, alloc_teardown},
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
};
const unsigned hl_micro_count = sizeof hl_micros / sizeof hl_micros[0];
