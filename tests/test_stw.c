/* Stop-the-world (sync/stw.c): every attached thread parks at its next
 * checkpoint; blocked threads count as stopped and cannot end their block,
 * nor can a thread attach, until the world resumes. Every test asserts
 * behaviour, never a duration; QSBR is on, as in the modes without a GIL.
 *
 * Checks inside worker threads die (hl_die) rather than use cmocka's
 * assertions, which may only run on the main thread.
 *
 * usage: test_stw [THREADS] [STOPS]   (defaults: 4, 200)
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
#include <time.h>

#include "hl_sync.h"

#define CHECK(c) do { if (!(c)) hl_die("check failed: %s", #c); } while (0)
#define MAX_THREADS 64
static unsigned g_threads = 4;
static unsigned g_stops = 200;

static void nap(void) {
  struct timespec ts = {0, 100000};
  nanosleep(&ts, NULL);
}

static int setup(void **s) {
  (void)s;
  hl_gil_init(false, 5000);
  hl_thread_qsbr_enable(true);
  hl_stw_hist_reset();
  hl_stw_set_report_us(0);
  return 0;
}

/* ---- running threads park, and stay parked ----------------------------------------
 * Each worker increments its own plain counter between checkpoints. While
 * the world is stopped no counter moves: the main thread reads them twice,
 * with the workers given time to run in between, and they are equal (TSan
 * sees the reads ordered after the parks by stw's mutex). */
static uint64_t counters[MAX_THREADS];
static uint32_t stop_flag;
static uint32_t ready;

static void *runner_main(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  hl_thread_attach();
  hl_atomic_faa_u32(&ready, 1);
  while (!hl_atomic_load_acquire_u32(&stop_flag)) {
    counters[id]++;
    hl_checkpoint();
  }
  hl_thread_detach();
  return NULL;
}

static void start(pthread_t *t, unsigned n, void *(*fn)(void *)) {
  for (unsigned i = 0; i < n; i++)
    assert_int_equal(pthread_create(&t[i], NULL, fn, (void *)(uintptr_t)i), 0);
}

static void test_stop_parks_everyone(void **s) {
  (void)s;
  pthread_t t[MAX_THREADS];
  stop_flag = ready = 0;
  start(t, g_threads, runner_main);
  while (hl_atomic_load_acquire_u32(&ready) < g_threads) nap();
  uint64_t before[MAX_THREADS];
  for (unsigned k = 0; k < g_stops; k++) {
    hl_stw_stop();
    assert_true(hl_stw_stopped());
    for (unsigned i = 0; i < g_threads; i++) before[i] = counters[i];
    for (int j = 0; j < 3; j++) sched_yield();
    if (k % 32 == 0) nap();
    for (unsigned i = 0; i < g_threads; i++) assert_int_equal(counters[i], before[i]);
    hl_stw_resume();
    assert_false(hl_stw_stopped());
  }
  hl_atomic_store_release_u32(&stop_flag, 1);
  for (unsigned i = 0; i < g_threads; i++) pthread_join(t[i], NULL);
  hl_hist_t *h = malloc(sizeof *h);
  hl_stw_hist(h);
  assert_int_equal(h->count, g_stops);
  free(h);
}

/* ---- a blocked thread counts as stopped; its block_end waits for the resume ---- */
static uint32_t phase;

static void *blocker_main(void *arg) {
  (void)arg;
  hl_thread_attach();
  hl_thread_block_begin();
  hl_atomic_store_release_u32(&phase, 1);           /* blocked */
  while (hl_atomic_load_acquire_u32(&phase) != 2) nap();
  hl_thread_block_end();                            /* waits for the resume */
  hl_atomic_store_release_u32(&phase, 3);
  hl_thread_detach();
  return NULL;
}

static void test_blocked_counts_as_stopped(void **s) {
  (void)s;
  pthread_t t;
  phase = 0;
  assert_int_equal(pthread_create(&t, NULL, blocker_main, NULL), 0);
  while (hl_atomic_load_acquire_u32(&phase) != 1) nap();
  hl_stw_stop();                                    /* returns: the only thread is blocked */
  hl_atomic_store_release_u32(&phase, 2);
  for (int i = 0; i < 50; i++) {
    nap();
    assert_int_equal(hl_atomic_load_acquire_u32(&phase), 2);   /* still held */
  }
  hl_stw_resume();
  pthread_join(t, NULL);
  assert_int_equal(phase, 3);
}

/* ---- a thread cannot attach while the world is stopped ------------------------------ */
static uint32_t attached_flag;
static void *late_main(void *arg) {
  (void)arg;
  hl_thread_attach();
  hl_atomic_store_release_u32(&attached_flag, 1);
  hl_thread_detach();
  return NULL;
}

static void test_attach_waits(void **s) {
  (void)s;
  attached_flag = 0;
  hl_stw_stop();
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, late_main, NULL), 0);
  for (int i = 0; i < 50; i++) {
    nap();
    assert_int_equal(hl_atomic_load_acquire_u32(&attached_flag), 0);
  }
  hl_stw_resume();
  pthread_join(t, NULL);
  assert_int_equal(attached_flag, 1);
}

/* ---- a thread that runs long without a checkpoint is reported -----------------------
 * The straggler spins without a checkpoint until the stop has reported it,
 * then checkpoints: the stop cannot complete before the report. */
static void *straggler_main(void *arg) {
  (void)arg;
  hl_thread_attach();
  hl_atomic_store_release_u32(&ready, 1);
  while (hl_stw_slow_stops() == 0) sched_yield();
  hl_checkpoint();   /* parks */
  hl_thread_detach();
  return NULL;
}

static void test_report_straggler(void **s) {
  (void)s;
  hl_stw_set_report_us(1000);
  ready = 0;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, straggler_main, NULL), 0);
  while (!hl_atomic_load_acquire_u32(&ready)) nap();
  hl_stw_stop();
  assert_int_equal(hl_stw_slow_stops(), 1);
  hl_stw_resume();
  pthread_join(t, NULL);
  hl_stw_set_report_us(0);
}

/* ---- two stoppers take turns; a grace period ends meanwhile -------------------------- */
static uint64_t turns_inside;
static void *stopper_main(void *arg) {
  (void)arg;
  hl_thread_attach();
  for (unsigned k = 0; k < g_stops / 4; k++) {
    hl_stw_stop();
    CHECK(hl_atomic_faa_u64(&turns_inside, 1) == 0);   /* alone */
    hl_atomic_faa_u64(&turns_inside, (uint64_t)-1);
    hl_stw_resume();
    hl_checkpoint();
  }
  hl_thread_detach();
  return NULL;
}
static void *syncer_main(void *arg) {
  (void)arg;
  hl_thread_attach();
  while (!hl_atomic_load_acquire_u32(&stop_flag)) {
    hl_qsbr_synchronize();   /* waits for the others' quiescent states */
    hl_checkpoint();
  }
  hl_thread_detach();
  return NULL;
}

static void test_stoppers_and_grace_periods(void **s) {
  (void)s;
  pthread_t run[MAX_THREADS], st[2], sy;
  stop_flag = ready = 0;
  turns_inside = 0;
  start(run, g_threads, runner_main);
  assert_int_equal(pthread_create(&sy, NULL, syncer_main, NULL), 0);
  start(st, 2, stopper_main);
  for (int i = 0; i < 2; i++) pthread_join(st[i], NULL);
  hl_atomic_store_release_u32(&stop_flag, 1);
  pthread_join(sy, NULL);
  for (unsigned i = 0; i < g_threads; i++) pthread_join(run[i], NULL);
  assert_int_equal(hl_thread_count(), 0);
}

int main(int argc, char **argv) {
  if (argc > 1) g_threads = (unsigned)atoi(argv[1]);
  if (argc > 2) g_stops = (unsigned)atoi(argv[2]);
  if (g_threads < 1 || g_threads > MAX_THREADS) g_threads = 4;
  if (g_stops < 4) g_stops = 4;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_stop_parks_everyone, setup),
    cmocka_unit_test_setup(test_blocked_counts_as_stopped, setup),
    cmocka_unit_test_setup(test_attach_waits, setup),
    cmocka_unit_test_setup(test_report_straggler, setup),
    cmocka_unit_test_setup(test_stoppers_and_grace_periods, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
