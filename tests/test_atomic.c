/* Tests of hl_atomic.h and hl_lock.h: exact totals under contention, the
 * single-threaded semantics of each operation, and message passing through
 * release/acquire (plain payload fields, so that ThreadSanitizer checks the
 * ordering, not only atomicity).
 *
 * usage: test_atomic [THREADS] [ITER]    (defaults: 4 threads, 20000 iterations)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "hl_atomic.h"
#include "hl_lock.h"

static unsigned g_threads = 4;
static unsigned g_iter = 20000;

#define MAX_THREADS 256

/* Starts n threads on fn(&args[i]) and joins them. */
static void run_threads(unsigned n, void *(*fn)(void *), void *args, size_t arg_size) {
  pthread_t tid[MAX_THREADS];
  assert_true(n <= MAX_THREADS);
  for (unsigned i = 0; i < n; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, fn, (char *)args + i * arg_size), 0);
  for (unsigned i = 0; i < n; i++) assert_int_equal(pthread_join(tid[i], NULL), 0);
}

/* Spinning waiters yield now and then: the tests oversubscribe 2 cores. */
static void spin_wait(unsigned *spins) {
  if (++*spins % 64 == 0) sched_yield();
  else hl_cpu_relax();
}

typedef struct worker {
  unsigned id;
  uint64_t result;   /* per-thread output, read after join */
} worker_t;

/* ---- fetch-and-add --------------------------------------------------------- */

static uint64_t faa_counter64;
static uint32_t faa_counter32;

static void *faa_worker(void *arg) {
  (void)arg;
  for (unsigned i = 0; i < g_iter; i++) {
    hl_atomic_faa_u64(&faa_counter64, 1);
    hl_atomic_faa_u32(&faa_counter32, 2);
  }
  return NULL;
}

static void test_faa_total(void **state) {
  (void)state;
  uint64_t x = 5;
  assert_int_equal(hl_atomic_faa_u64(&x, 3), 5);   /* returns the old value */
  assert_int_equal(x, 8);

  faa_counter64 = 0;
  faa_counter32 = 0;
  worker_t w[MAX_THREADS];
  run_threads(g_threads, faa_worker, w, sizeof w[0]);
  assert_int_equal(hl_atomic_load_relaxed_u64(&faa_counter64), (uint64_t)g_threads * g_iter);
  assert_int_equal(hl_atomic_load_relaxed_u32(&faa_counter32), 2u * g_threads * g_iter);
}

/* ---- inc / dec_is_zero: a reference count ------------------------------------ */

static uint64_t refcount;

static void *ref_worker(void *arg) {
  worker_t *w = arg;
  uint64_t zeros = 0;
  /* The main thread holds one reference throughout, so no drop here can be
   * the last. */
  for (unsigned i = 0; i < g_iter; i++) {
    hl_atomic_inc_u64(&refcount);
    if (hl_atomic_dec_is_zero_u64(&refcount)) zeros++;
  }
  w->result = zeros;
  return NULL;
}

static void test_inc_dec_is_zero(void **state) {
  (void)state;
  uint64_t x = 0;
  hl_atomic_inc_u64(&x);
  hl_atomic_inc_u64(&x);
  assert_false(hl_atomic_dec_is_zero_u64(&x));
  assert_true(hl_atomic_dec_is_zero_u64(&x));
  assert_int_equal(x, 0);

  refcount = 1;
  worker_t w[MAX_THREADS] = {{0}};
  run_threads(g_threads, ref_worker, w, sizeof w[0]);
  for (unsigned i = 0; i < g_threads; i++) assert_int_equal(w[i].result, 0);
  assert_true(hl_atomic_dec_is_zero_u64(&refcount));
}

/* ---- compare-and-swap ------------------------------------------------------------ */

static uint64_t cas_counter;

static void *cas_worker(void *arg) {
  worker_t *w = arg;
  uint64_t failures = 0;
  for (unsigned i = 0; i < g_iter; i++) {
    if (w->id % 2 == 0) {
      for (;;) {
        uint64_t old = hl_atomic_load_relaxed_u64(&cas_counter);
        if (hl_atomic_cas_u64(&cas_counter, old, old + 1)) break;
        failures++;
      }
    } else {
      /* The value-returning form needs no reload after a failure. */
      uint64_t seen = hl_atomic_load_relaxed_u64(&cas_counter), got;
      while ((got = hl_atomic_cas_value_u64(&cas_counter, seen, seen + 1)) != seen) {
        seen = got;
        failures++;
      }
    }
  }
  w->result = failures;
  return NULL;
}

static void test_cas(void **state) {
  (void)state;
  uint32_t a = 1;
  assert_false(hl_atomic_cas_u32(&a, 2, 3));
  assert_int_equal(a, 1);
  assert_true(hl_atomic_cas_u32(&a, 1, 3));
  assert_int_equal(a, 3);

  uint64_t b = 10;
  assert_int_equal(hl_atomic_cas_value_u64(&b, 11, 12), 10);   /* failed: saw 10 */
  assert_int_equal(b, 10);
  assert_int_equal(hl_atomic_cas_value_u64(&b, 10, 12), 10);   /* stored */
  assert_int_equal(b, 12);

  int x, y;
  void *p = &x;
  assert_false(hl_atomic_cas_ptr(&p, &y, &y));
  assert_ptr_equal(p, &x);
  assert_true(hl_atomic_cas_ptr(&p, &x, &y));
  assert_ptr_equal(hl_atomic_load_acquire_ptr(&p), &y);

  cas_counter = 0;
  worker_t w[MAX_THREADS];
  for (unsigned i = 0; i < g_threads; i++) w[i] = (worker_t){.id = i};
  run_threads(g_threads, cas_worker, w, sizeof w[0]);
  assert_int_equal(hl_atomic_load_relaxed_u64(&cas_counter), (uint64_t)g_threads * g_iter);
}

/* ---- exchange --------------------------------------------------------------------- */

/* A token whose plain field is written only by the thread that took it out
 * of the slot: the xchg that takes it must see the writes of the xchg that
 * put it back (TSan checks this). */
typedef struct token { uint64_t uses; } token_t;
static void *token_slot;
static uint64_t xchg_slot;

static void *xchg_worker(void *arg) {
  worker_t *w = arg;
  uint64_t returned_sum = 0;
  unsigned spins = 0;
  for (unsigned i = 0; i < g_iter; i++) {
    token_t *t;
    while ((t = hl_atomic_xchg_ptr(&token_slot, NULL)) == NULL) spin_wait(&spins);
    t->uses++;
    hl_atomic_xchg_ptr(&token_slot, t);

    /* Every value put into xchg_slot comes out exactly once. */
    returned_sum += hl_atomic_xchg_u64(&xchg_slot, (uint64_t)w->id * g_iter + i + 1);
  }
  w->result = returned_sum;
  return NULL;
}

static void test_xchg_handoff(void **state) {
  (void)state;
  uint64_t v = 7;
  assert_int_equal(hl_atomic_xchg_u64(&v, 9), 7);
  assert_int_equal(v, 9);

  token_t token = {0};
  hl_atomic_store_release_ptr(&token_slot, &token);
  xchg_slot = 0;
  worker_t w[MAX_THREADS];
  for (unsigned i = 0; i < g_threads; i++) w[i] = (worker_t){.id = i};
  run_threads(g_threads, xchg_worker, w, sizeof w[0]);

  assert_ptr_equal(hl_atomic_load_acquire_ptr(&token_slot), &token);
  assert_int_equal(token.uses, (uint64_t)g_threads * g_iter);
  /* sum of values put in = sum of values that came out + what is left */
  uint64_t n = (uint64_t)g_threads * g_iter, put = n * (n + 1) / 2, out = xchg_slot;
  for (unsigned i = 0; i < g_threads; i++) out += w[i].result;
  assert_int_equal(out, put);
}

/* ---- spinlock ------------------------------------------------------------------------ */

static hl_spinlock_t counter_lock = HL_SPINLOCK_INITIALIZER;
static uint64_t locked_counter;      /* plain: only touched under counter_lock */
static uint64_t lock_not_held_seen;

static void *lock_worker(void *arg) {
  (void)arg;
  for (unsigned i = 0; i < g_iter; i++) {
    hl_spinlock_lock(&counter_lock);
    if (!hl_spinlock_is_locked(&counter_lock)) lock_not_held_seen++;
    locked_counter++;
    hl_spinlock_unlock(&counter_lock);
  }
  return NULL;
}

static void test_spinlock_counter(void **state) {
  (void)state;
  locked_counter = 0;
  lock_not_held_seen = 0;
  worker_t w[MAX_THREADS];
  run_threads(g_threads, lock_worker, w, sizeof w[0]);
  assert_int_equal(locked_counter, (uint64_t)g_threads * g_iter);
  assert_int_equal(lock_not_held_seen, 0);
  assert_false(hl_spinlock_is_locked(&counter_lock));
}

static hl_spinlock_t try_lock_l;
static void *trylock_other(void *arg) {
  worker_t *w = arg;
  w->result = hl_spinlock_trylock(&try_lock_l);
  if (w->result) hl_spinlock_unlock(&try_lock_l);
  return NULL;
}

static void test_spinlock_trylock(void **state) {
  (void)state;
  hl_spinlock_init(&try_lock_l);
  assert_false(hl_spinlock_is_locked(&try_lock_l));
  assert_true(hl_spinlock_trylock(&try_lock_l));
  assert_true(hl_spinlock_is_locked(&try_lock_l));
  assert_false(hl_spinlock_trylock(&try_lock_l));      /* not recursive */

  worker_t w = {0};
  run_threads(1, trylock_other, &w, sizeof w);         /* held by us: fails */
  assert_int_equal(w.result, 0);

  hl_spinlock_unlock(&try_lock_l);
  assert_false(hl_spinlock_is_locked(&try_lock_l));
  run_threads(1, trylock_other, &w, sizeof w);         /* free: succeeds */
  assert_int_equal(w.result, 1);
  hl_spinlock_lock(&try_lock_l);
  hl_spinlock_unlock(&try_lock_l);
}

/* ---- message passing ------------------------------------------------------------------ */

/* The writer fills a plain payload, then publishes the round number; the
 * reader waits for the round, checks the payload, then acknowledges so that
 * the writer may reuse it. Two variants: store_release/load_acquire on the
 * flag, and relaxed flag accesses ordered by standalone fences. */
#define PAYLOAD_WORDS 8
static uint64_t payload[PAYLOAD_WORDS];
static uint64_t published;   /* round whose payload is complete */
static uint64_t acked;       /* round the reader has finished with */
static uint64_t mp_errors;   /* written by the reader only, read after join */
static int mp_use_fences;

static uint64_t mp_rounds(void) { return g_iter / 10 > 0 ? g_iter / 10 : 1; }

static void *mp_writer(void *arg) {
  (void)arg;
  unsigned spins = 0;
  for (uint64_t round = 1; round <= mp_rounds(); round++) {
    /* Acquire: pairs with the reader's release of acked, so its reads of the
     * previous payload happen before we overwrite it. */
    if (mp_use_fences) {
      while (hl_atomic_load_relaxed_u64(&acked) != round - 1) spin_wait(&spins);
      hl_atomic_fence_acquire();
    } else {
      while (hl_atomic_load_acquire_u64(&acked) != round - 1) spin_wait(&spins);
    }
    for (unsigned i = 0; i < PAYLOAD_WORDS; i++) payload[i] = round * 1000 + i;
    /* Release: pairs with the reader's acquire of published. */
    if (mp_use_fences) {
      hl_atomic_fence_release();
      hl_atomic_store_relaxed_u64(&published, round);
    } else {
      hl_atomic_store_release_u64(&published, round);
    }
  }
  return NULL;
}

static void *mp_reader(void *arg) {
  (void)arg;
  unsigned spins = 0;
  for (uint64_t round = 1; round <= mp_rounds(); round++) {
    /* Acquire: pairs with the writer's release of published. */
    if (mp_use_fences) {
      while (hl_atomic_load_relaxed_u64(&published) != round) spin_wait(&spins);
      hl_atomic_fence_acquire();
    } else {
      while (hl_atomic_load_acquire_u64(&published) != round) spin_wait(&spins);
    }
    for (unsigned i = 0; i < PAYLOAD_WORDS; i++)
      if (payload[i] != round * 1000 + i) mp_errors++;
    /* Release: pairs with the writer's acquire of acked. */
    if (mp_use_fences) {
      hl_atomic_fence_release();
      hl_atomic_store_relaxed_u64(&acked, round);
    } else {
      hl_atomic_store_release_u64(&acked, round);
    }
  }
  return NULL;
}

static void run_message_passing(int use_fences) {
  mp_use_fences = use_fences;
  published = acked = mp_errors = 0;
  pthread_t w, r;
  assert_int_equal(pthread_create(&r, NULL, mp_reader, NULL), 0);
  assert_int_equal(pthread_create(&w, NULL, mp_writer, NULL), 0);
  assert_int_equal(pthread_join(w, NULL), 0);
  assert_int_equal(pthread_join(r, NULL), 0);
  assert_int_equal(mp_errors, 0);
  assert_int_equal(acked, mp_rounds());
}

static void test_message_passing_release_acquire(void **state) {
  (void)state;
  run_message_passing(0);
}

static void test_message_passing_fences(void **state) {
  (void)state;
  run_message_passing(1);
  hl_atomic_fence_seq_cst();   /* compiles and returns */
}

int main(int argc, char **argv) {
  if (argc > 1) g_threads = (unsigned)strtoul(argv[1], NULL, 10);
  if (argc > 2) g_iter = (unsigned)strtoul(argv[2], NULL, 10);
  if (g_threads < 1 || g_threads > MAX_THREADS || g_iter < 1) {
    fprintf(stderr, "usage: %s [THREADS 1..%d] [ITER >= 1]\n", argv[0], MAX_THREADS);
    return 2;
  }
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_faa_total),
    cmocka_unit_test(test_inc_dec_is_zero),
    cmocka_unit_test(test_cas),
    cmocka_unit_test(test_xchg_handoff),
    cmocka_unit_test(test_spinlock_counter),
    cmocka_unit_test(test_spinlock_trylock),
    cmocka_unit_test(test_message_passing_release_acquire),
    cmocka_unit_test(test_message_passing_fences),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
