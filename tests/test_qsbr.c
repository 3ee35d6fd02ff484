/* Tests of QSBR (sync/qsbr.c): a writer replaces a shared node and defers
 * freeing the old one while readers keep reading it; no reader may see a
 * node its callback has already poisoned. Then grace-period semantics
 * (synchronize waits for an online reader, not for an offline one), from a
 * registered and from an unregistered thread, and the counters.
 *
 * usage: test_qsbr [THREADS] [ITER]   (defaults: 4 threads: 1 writer + 3
 * readers, 20000 replacements)
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
#include <unistd.h>

#include "hl_sync.h"

static unsigned g_threads = 4;
static unsigned g_iter = 20000;

#define MAX_THREADS 256
#define LIVE   0x11fe11fe11fe11feull
#define POISON 0xdeaddeaddeaddeadull

typedef struct node {
  uint64_t magic;      /* LIVE until the deferred callback runs, then POISON */
  uint64_t value;
} node_t;

/* ---- replace-and-defer stress ---------------------------------------------------- */

static void *shared;            /* node_t *: published with store_release */
static uint64_t stop;           /* set by the writer when it is done */
static uint64_t callbacks_run;

/* Runs in liburcu's call_rcu worker, after a grace period. The poison
 * makes a reader that still holds the node fail its check even when the
 * allocator has not reused the memory yet (ASan catches the use after free
 * itself). */
static void poison_and_free(void *p) {
  node_t *n = p;
  n->magic = POISON;
  free(n);
  hl_atomic_inc_u64(&callbacks_run);
}

typedef struct reader {
  uint64_t reads;
  uint64_t violations;
  uint64_t last_value;
} reader_t;

static void *reader_main(void *arg) {
  reader_t *r = arg;
  hl_qsbr_register_thread();
  /* Acquire: pairs with the writer's release of stop. */
  while (!hl_atomic_load_acquire_u64(&stop)) {
    hl_qsbr_read_lock();
    /* Acquire: pairs with the writer's store_release of shared, so the
     * node's fields are initialised when we read them. */
    node_t *n = hl_atomic_load_acquire_ptr(&shared);
    if (n != NULL) {
      if (n->magic != LIVE) r->violations++;
      if (n->value < r->last_value) r->violations++;   /* replacements only move forward */
      r->last_value = n->value;
      r->reads++;
    }
    hl_qsbr_read_unlock();
    hl_qsbr_quiescent();    /* n is not used past this point */
    if (r->reads % 256 == 0) sched_yield();   /* oversubscribed: let the writer run */
  }
  hl_qsbr_unregister_thread();
  return NULL;
}

static node_t *new_node(uint64_t value) {
  node_t *n = malloc(sizeof *n);
  assert_non_null(n);
  n->magic = LIVE;
  n->value = value;
  return n;
}

static void test_replace_and_defer(void **state) {
  (void)state;
  unsigned readers = g_threads > 1 ? g_threads - 1 : 1;
  reader_t r[MAX_THREADS] = {{0}};
  pthread_t tid[MAX_THREADS];
  uint64_t deferred0 = hl_qsbr_deferred_count();

  hl_atomic_store_relaxed_u64(&stop, 0);
  hl_atomic_store_release_ptr(&shared, new_node(0));
  for (unsigned i = 0; i < readers; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, reader_main, &r[i]), 0);

  /* This thread is the writer; registered, as hl_qsbr_defer requires. */
  hl_qsbr_register_thread();
  for (unsigned i = 1; i <= g_iter; i++) {
    node_t *old = hl_atomic_load_relaxed_ptr(&shared);   /* the only writer */
    /* Release: pairs with the readers' load_acquire of shared. */
    hl_atomic_store_release_ptr(&shared, new_node(i));
    hl_qsbr_defer(poison_and_free, old);
    hl_qsbr_quiescent();   /* the writer holds up grace periods too */
    if (i % 64 == 0) {
      /* Pace the writer so that grace periods end, and callbacks free nodes,
       * while the readers are still reading; offline, so that its sleep
       * does not hold them up. */
      hl_qsbr_offline();
      usleep(100);
      hl_qsbr_online();
    }
  }
  node_t *last = hl_atomic_xchg_ptr(&shared, NULL);
  hl_qsbr_defer(poison_and_free, last);
  /* Release: pairs with the readers' acquire of stop. */
  hl_atomic_store_release_u64(&stop, 1);
  for (unsigned i = 0; i < readers; i++) assert_int_equal(pthread_join(tid[i], NULL), 0);

  hl_qsbr_barrier();   /* registered and online: taken offline for the wait */
  hl_qsbr_unregister_thread();

  uint64_t reads = 0;
  for (unsigned i = 0; i < readers; i++) {
    assert_int_equal(r[i].violations, 0);
    reads += r[i].reads;
  }
  assert_true(reads > 0);
  assert_int_equal(hl_qsbr_deferred_count() - deferred0, (uint64_t)g_iter + 1);
  assert_int_equal(hl_qsbr_reclaimed_count(), hl_qsbr_deferred_count());
  assert_int_equal(hl_atomic_load_acquire_u64(&callbacks_run), (uint64_t)g_iter + 1);
}

/* ---- grace periods ----------------------------------------------------------------------- */

static void wait_until_set(uint64_t *flag) {
  /* Acquire: pairs with the release that set the flag. */
  while (!hl_atomic_load_acquire_u64(flag)) usleep(100);
}

/* A reader that holds a pointer (stays online, no quiescent state) for a
 * while: synchronize must not return before it lets go. */
static uint64_t holding, done_reading;

static void *holding_reader(void *arg) {
  (void)arg;
  hl_qsbr_register_thread();
  hl_atomic_store_release_u64(&holding, 1);
  usleep(50 * 1000);
  hl_atomic_store_release_u64(&done_reading, 1);
  hl_qsbr_quiescent();
  hl_qsbr_unregister_thread();
  return NULL;
}

static void check_synchronize_waits_for_reader(void) {
  holding = done_reading = 0;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, holding_reader, NULL), 0);
  wait_until_set(&holding);
  hl_qsbr_synchronize();
  assert_true(hl_atomic_load_acquire_u64(&done_reading));
  assert_int_equal(pthread_join(t, NULL), 0);
}

static void test_synchronize_unregistered(void **state) {
  (void)state;
  hl_qsbr_synchronize();          /* nobody registered but the call_rcu worker */
  check_synchronize_waits_for_reader();
}

static void test_synchronize_registered(void **state) {
  (void)state;
  hl_qsbr_register_thread();
  hl_qsbr_register_thread();      /* idempotent */
  hl_qsbr_synchronize();          /* would wait for itself if not taken offline */
  check_synchronize_waits_for_reader();
  hl_qsbr_quiescent();            /* back online after the wait */
  hl_qsbr_unregister_thread();
  hl_qsbr_unregister_thread();    /* idempotent */
}

/* A registered thread that goes offline for a long sleep does not hold up
 * grace periods. No timing assumption: the thread stays offline until the
 * synchronize has returned (or 10 s, and then the test fails). */
static uint64_t went_offline, may_go_online, timed_out;

static void *sleeping_reader(void *arg) {
  (void)arg;
  hl_qsbr_register_thread();
  hl_qsbr_offline();
  hl_atomic_store_release_u64(&went_offline, 1);
  unsigned waited_ms = 0;
  while (!hl_atomic_load_acquire_u64(&may_go_online) && waited_ms < 10000) {
    usleep(1000);
    waited_ms++;
  }
  if (waited_ms >= 10000) hl_atomic_store_release_u64(&timed_out, 1);
  hl_qsbr_online();
  hl_qsbr_quiescent();
  hl_qsbr_unregister_thread();
  return NULL;
}

static void test_offline_online(void **state) {
  (void)state;
  went_offline = may_go_online = timed_out = 0;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, sleeping_reader, NULL), 0);
  wait_until_set(&went_offline);
  hl_qsbr_synchronize();
  hl_atomic_store_release_u64(&may_go_online, 1);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_false(hl_atomic_load_acquire_u64(&timed_out));

  /* On an unregistered thread these do nothing (and must not crash). */
  hl_qsbr_offline();
  hl_qsbr_online();
  hl_qsbr_quiescent();
}

static void count_callback(void *p) { hl_atomic_inc_u64((uint64_t *)p); }

static void test_barrier_counts(void **state) {
  (void)state;
  uint64_t ran = 0;
  hl_qsbr_register_thread();
  uint64_t before = hl_qsbr_deferred_count();
  for (int i = 0; i < 100; i++) hl_qsbr_defer(count_callback, &ran);
  assert_int_equal(hl_qsbr_deferred_count() - before, 100);
  hl_qsbr_barrier();
  assert_int_equal(hl_atomic_load_acquire_u64(&ran), 100);
  assert_int_equal(hl_qsbr_reclaimed_count(), hl_qsbr_deferred_count());
  hl_qsbr_unregister_thread();
  hl_qsbr_barrier();     /* from an unregistered thread, nothing pending */
}

int main(int argc, char **argv) {
  if (argc > 1) g_threads = (unsigned)strtoul(argv[1], NULL, 10);
  if (argc > 2) g_iter = (unsigned)strtoul(argv[2], NULL, 10);
  if (g_threads < 1 || g_threads > MAX_THREADS || g_iter < 1) {
    fprintf(stderr, "usage: %s [THREADS 1..%d] [ITER >= 1]\n", argv[0], MAX_THREADS);
    return 2;
  }
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_replace_and_defer),
    cmocka_unit_test(test_synchronize_unregistered),
    cmocka_unit_test(test_synchronize_registered),
    cmocka_unit_test(test_offline_online),
    cmocka_unit_test(test_barrier_counts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
