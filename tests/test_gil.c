/* Tests of thread attachment, checkpoints and the GIL (sync/thread.c,
 * sync/gil.c). Every test asserts behaviour, never a duration: a broken
 * hand-off shows as a failed check or as a hang that CTest's timeout ends.
 *
 * Checks inside worker threads die (abort) rather than use cmocka's
 * assertions, which may only run on the main thread.
 *
 * Every test runs under the GIL policy that HEAPLAB_GIL names (classic when
 * unset), as the option would set it; CTest runs the suite once per policy.
 *
 * usage: test_gil [THREADS] [ITER]   (defaults: 4 threads, 100000 increments)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hl_sync.h"

#define MAX_THREADS 64
static unsigned g_threads = 4;
static unsigned g_iter = 100000;
static hl_gil_policy_t g_policy = HL_GIL_CLASSIC;

#define CHECK(c) do { if (!(c)) hl_die("check failed: %s", #c); } while (0)

static void run_threads(unsigned n, void *(*fn)(void *), void *args, size_t arg_size) {
  pthread_t tid[MAX_THREADS];
  for (unsigned i = 0; i < n; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, fn, (char *)args + i * arg_size), 0);
  for (unsigned i = 0; i < n; i++) pthread_join(tid[i], NULL);
}

/* Waits, without the GIL, until *flag is nonzero. Acquire: pairs with the
 * release store of the thread that sets it. */
static void await_flag(uint32_t *flag) {
  while (!hl_atomic_load_acquire_u32(flag)) {
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
  }
}

/* ---- mutual exclusion -------------------------------------------------------
 * A plain counter incremented by every thread under the GIL: the total is
 * exact, and TSan sees every increment ordered by the GIL's mutex. `inside`
 * catches two threads between one checkpoint and the next. */
static uint64_t me_counter;
static unsigned me_inside;

static void *me_main(void *arg) {
  (void)arg;
  hl_thread_attach();
  for (unsigned i = 0; i < g_iter; i++) {
    CHECK(me_inside == 0);
    me_inside = 1;
    me_counter++;
    me_inside = 0;
    hl_checkpoint();
    if (i % 1024 == 0) {             /* and some voluntary releases */
      hl_thread_block_begin();
      hl_thread_block_end();
    }
  }
  hl_thread_detach();
  return NULL;
}

static void test_mutual_exclusion(void **s) {
  (void)s;
  hl_gil_init(true, 100);
  me_counter = 0;
  run_threads(g_threads, me_main, NULL, 0);
  assert_int_equal(me_counter, (uint64_t)g_threads * g_iter);
  assert_int_equal(hl_thread_count(), 0);
  hl_gil_stats_t *st = malloc(sizeof *st);
  hl_gil_stats(st);
  /* every take has its release once everyone detached */
  assert_int_equal(st->wait_ns.count, st->hold_ns.count);
  assert_true(st->wait_ns.count >= g_threads);
  free(st);
}

/* ---- hand-off and forced switching ----------------------------------------
 * The holder never releases on its own: it runs checkpoints. A waiter
 * attaches, and after a switch interval asks the holder to drop the GIL.
 * The first checkpoint at which the holder's breaker shows the request must
 * hand the GIL over, and (forced switching) return only after the waiter
 * has held it: never a second checkpoint with the request pending, never a
 * retake before the waiter got it. Repeated for ROUNDS attachments. */
#define ROUNDS 10
static uint32_t ho_holder_ready;
static unsigned ho_waiter_rounds;      /* under the GIL */
static uint64_t ho_requests_seen;      /* holder's checkpoints entered with the request set */
static uint32_t ho_ack;                /* rounds the holder has seen (it got the GIL back) */

static void *ho_holder(void *arg) {
  (void)arg;
  hl_thread_t *self = hl_thread_attach();
  hl_atomic_store_release_u32(&ho_holder_ready, 1);   /* pairs with await_flag */
  while (ho_waiter_rounds < ROUNDS) {
    unsigned before = ho_waiter_rounds;
    bool requested = hl_thread_pending(self) & HL_BREAK_BIT(HL_BREAK_GIL_DROP);
    hl_checkpoint();
    if (requested) {
      ho_requests_seen++;
      /* the waiter held the GIL (and counted its round) before we got it back */
      CHECK(ho_waiter_rounds == before + 1);
    }
    /* (the request may also arrive between the snapshot and the checkpoint) */
    if (ho_waiter_rounds != before) {
      CHECK(ho_waiter_rounds == before + 1);
      hl_atomic_store_release_u32(&ho_ack, ho_waiter_rounds);   /* pairs with the waiter's acquire */
    }
  }
  hl_thread_detach();
  return NULL;
}

static void *ho_waiter(void *arg) {
  (void)arg;
  await_flag(&ho_holder_ready);
  for (unsigned r = 0; r < ROUNDS; r++) {
    hl_thread_attach();
    CHECK(hl_gil_held());
    ho_waiter_rounds++;
    hl_thread_detach();
    /* the next round only once the holder runs again: otherwise this thread
     * could retake the GIL it just released before the holder wakes */
    while (hl_atomic_load_acquire_u32(&ho_ack) != r + 1) sched_yield();   /* pairs with the holder's release */
  }
  return NULL;
}

static void *ho_main(void *arg) {
  return (*(unsigned *)arg == 0 ? ho_holder : ho_waiter)(NULL);
}

/* The switch hook (--trace's GIL events) sees every switch the statistics
 * count, forced ones flagged as such. */
static uint64_t hook_switches, hook_forced;
static void count_switch(uint64_t id, bool forced, uint64_t waited_ns, void *arg) {
  (void)id;
  (void)waited_ns;
  assert_ptr_equal(arg, &hook_switches);
  hl_atomic_faa_u64(&hook_switches, 1);
  if (forced) hl_atomic_faa_u64(&hook_forced, 1);
}

static void test_handoff_and_forced_switching(void **s) {
  (void)s;
  hl_gil_init(true, 1000);
  hook_switches = hook_forced = 0;
  hl_gil_set_switch_hook(count_switch, &hook_switches);
  ho_holder_ready = 0;
  ho_waiter_rounds = 0;
  ho_requests_seen = 0;
  ho_ack = 0;
  unsigned roles[2] = {0, 1};
  run_threads(2, ho_main, roles, sizeof roles[0]);
  /* A request seen before a checkpoint was served by that checkpoint. */
  assert_true(ho_requests_seen <= ROUNDS);
  hl_gil_stats_t *st = malloc(sizeof *st);
  hl_gil_stats(st);
  /* The holder never lets go on its own: each round the waiter got the GIL
   * through one request. holder -> waiter is forced; waiter -> holder not. */
  assert_true(st->drop_requests >= ROUNDS);   /* more when the waiter is slow to let go */
  assert_int_equal(st->forced_switches, ROUNDS);
  assert_true(st->switches >= 2 * ROUNDS);
  hl_gil_set_switch_hook(NULL, NULL);
  assert_int_equal(hook_switches, st->switches);
  assert_int_equal(hook_forced, st->forced_switches);
  free(st);
}

/* ---- a waking thread and the policy ----------------------------------------
 * A CPU-bound holder that never releases on its own, and a thread that
 * sleeps blocked and wakes (hl_thread_block_end) WK_ROUNDS times, each time
 * only after the holder has the GIL back. handoff: every wake-up is handed
 * the GIL at the holder's next checkpoint, with a switch interval so long
 * (60 s) that nothing else could explain it in a test's time; classic: no
 * hand-off ever, each wake-up waits out an interval (200 us) and asks. In
 * both, the checkpoint that sees the request hands the GIL over before the
 * holder gets it back (forced switching). */
#define WK_ROUNDS 20
static uint32_t wk_blocked;            /* the waker is blocked: the holder may attach */
static uint32_t wk_holder_in;          /* the holder is attached: the waker may wake */
static unsigned wk_rounds;             /* under the GIL */
static uint32_t wk_ack;                /* rounds the holder has seen */

static void *wk_holder(void *arg) {
  (void)arg;
  await_flag(&wk_blocked);
  hl_thread_t *self = hl_thread_attach();
  hl_atomic_store_release_u32(&wk_holder_in, 1);   /* pairs with await_flag */
  while (wk_rounds < WK_ROUNDS) {
    unsigned before = wk_rounds;
    bool requested = hl_thread_pending(self) & HL_BREAK_BIT(HL_BREAK_GIL_DROP);
    hl_checkpoint();
    if (requested) CHECK(wk_rounds == before + 1);
    if (wk_rounds != before) {
      CHECK(wk_rounds == before + 1);
      hl_atomic_store_release_u32(&wk_ack, wk_rounds);   /* pairs with the waker's acquire */
    }
  }
  hl_thread_detach();
  return NULL;
}

static void *wk_waker(void *arg) {
  (void)arg;
  hl_thread_attach();                  /* first, while the GIL is free */
  hl_thread_block_begin();
  hl_atomic_store_release_u32(&wk_blocked, 1);   /* pairs with await_flag */
  await_flag(&wk_holder_in);
  for (unsigned r = 0; r < WK_ROUNDS; r++) {
    /* the holder runs attached again (it took the GIL back) before we wake */
    while (hl_atomic_load_acquire_u32(&wk_ack) != r) {   /* pairs with the holder's release */
      struct timespec ts = {0, 20000};
      nanosleep(&ts, NULL);
    }
    hl_thread_block_end();
    CHECK(hl_gil_held());
    wk_rounds++;
    if (r + 1 < WK_ROUNDS) hl_thread_block_begin();
  }
  hl_thread_detach();
  return NULL;
}

static void *wk_main(void *arg) { return (*(unsigned *)arg == 0 ? wk_holder : wk_waker)(NULL); }

static void test_waking_thread_and_policy(void **s) {
  (void)s;
  bool handoff = g_policy == HL_GIL_HANDOFF;
  hl_gil_init(true, handoff ? 60u * 1000 * 1000 : 200);
  assert_int_equal(hl_gil_policy(), g_policy);
  wk_blocked = wk_holder_in = wk_ack = 0;
  wk_rounds = 0;
  unsigned roles[2] = {0, 1};
  run_threads(2, wk_main, roles, sizeof roles[0]);
  hl_gil_stats_t *st = malloc(sizeof *st);
  hl_gil_stats(st);
  /* every wake-up found the holder running and was served by one request */
  assert_int_equal(st->forced_switches, WK_ROUNDS);
  if (handoff) {
    assert_int_equal(st->handoffs, WK_ROUNDS);
    assert_int_equal(st->drop_requests, WK_ROUNDS);
  } else {
    assert_int_equal(st->handoffs, 0);
    assert_true(st->drop_requests >= WK_ROUNDS);
  }
  free(st);
}

/* ---- fairness --------------------------------------------------------------
 * Two CPU-bound threads, neither releasing on its own, each counting the
 * times it found the GIL last run by the other one: both must get turns. */
static unsigned fa_turns[2];
static int fa_last = -1;

static void *fa_main(void *arg) {
  int me = *(int *)arg;
  hl_thread_attach();
  while (fa_turns[0] < 5 || fa_turns[1] < 5) {
    if (fa_last != me) {
      fa_turns[me]++;
      fa_last = me;
    }
    hl_checkpoint();
  }
  hl_thread_detach();
  return NULL;
}

static void test_fairness_and_statistics(void **s) {
  (void)s;
  hl_gil_init(true, 200);
  fa_turns[0] = fa_turns[1] = 0;
  fa_last = -1;
  int ids[2] = {0, 1};
  run_threads(2, fa_main, ids, sizeof ids[0]);
  assert_true(fa_turns[0] >= 5 && fa_turns[1] >= 5);
  hl_gil_stats_t *st = malloc(sizeof *st);
  hl_gil_stats(st);
  /* every turn began with a switch; all but the first attach came on request */
  assert_true(st->switches >= fa_turns[0] + fa_turns[1]);
  assert_true(st->forced_switches >= fa_turns[0] + fa_turns[1] - 2);
  assert_true(st->drop_requests >= st->forced_switches);
  assert_int_equal(st->wait_ns.count, st->hold_ns.count);
  assert_true(st->hold_ns.count >= st->switches);
  assert_true(st->hold_ns.max > 0 && st->wait_ns.max > 0);
  /* and a reset empties them */
  hl_gil_stats_reset();
  hl_gil_stats(st);
  assert_int_equal(st->switches, 0);
  assert_int_equal(st->hold_ns.count, 0);
  free(st);
}

/* ---- blocking ---------------------------------------------------------------
 * A thread blocked between block_begin and block_end lets another attach and
 * run; here the blocked one waits for the other, so holding the GIL across
 * the wait would deadlock. */
static sem_t bl_sem;
static uint32_t bl_blocked;
static unsigned bl_seen_attached;

static void *bl_main(void *arg) {
  if (*(int *)arg == 0) {
    hl_thread_attach();
    hl_thread_block_begin();
    CHECK(!hl_gil_held());
    hl_atomic_store_release_u32(&bl_blocked, 1);   /* pairs with await_flag */
    while (sem_wait(&bl_sem) != 0) {}
    hl_thread_block_end();
    CHECK(hl_gil_held());
    hl_thread_detach();
  } else {
    await_flag(&bl_blocked);
    hl_thread_attach();
    bl_seen_attached = hl_thread_count();
    sem_post(&bl_sem);
    hl_thread_detach();
  }
  return NULL;
}

static void test_block_lets_others_run(void **s) {
  (void)s;
  hl_gil_init(true, 5000);
  sem_init(&bl_sem, 0, 0);
  bl_blocked = 0;
  int ids[2] = {0, 1};
  run_threads(2, bl_main, ids, sizeof ids[0]);
  assert_int_equal(bl_seen_attached, 2);
  sem_destroy(&bl_sem);
}

/* ---- attach/detach cycles -------------------------------------------------- */
static uint64_t cy_counter;
#define CYCLES 500

static void *cy_main(void *arg) {
  (void)arg;
  for (unsigned i = 0; i < CYCLES; i++) {
    hl_thread_t *t = hl_thread_attach();
    CHECK(hl_thread_self() == t && hl_gil_held());
    cy_counter++;
    hl_checkpoint();
    hl_thread_detach();
    CHECK(hl_thread_self() == NULL);
  }
  return NULL;
}

static void test_attach_detach_cycles(void **s) {
  (void)s;
  hl_gil_init(true, 50);
  cy_counter = 0;
  unsigned n = g_threads < 3 ? g_threads : 3;
  run_threads(n, cy_main, NULL, 0);
  assert_int_equal(cy_counter, (uint64_t)n * CYCLES);
  assert_int_equal(hl_thread_count(), 0);
  hl_gil_stats_t *st = malloc(sizeof *st);
  hl_gil_stats(st);
  /* one take per attach, and one per request served at a checkpoint (each
   * such yield ends in exactly one forced switch) */
  assert_int_equal(st->wait_ns.count, (uint64_t)n * CYCLES + st->forced_switches);
  assert_int_equal(st->hold_ns.count, st->wait_ns.count);
  free(st);
}

/* ---- GIL disabled -----------------------------------------------------------
 * Two attached threads meet at a barrier: with a GIL that would deadlock.
 * Nothing is counted. */
static pthread_barrier_t off_barrier;

static void *off_main(void *arg) {
  (void)arg;
  hl_thread_attach();
  CHECK(!hl_gil_held());
  pthread_barrier_wait(&off_barrier);
  for (int i = 0; i < 1000; i++) hl_checkpoint();
  hl_thread_block_begin();
  hl_thread_block_end();
  pthread_barrier_wait(&off_barrier);
  hl_thread_detach();
  return NULL;
}

static void test_disabled_is_a_no_op(void **s) {
  (void)s;
  hl_gil_init(false, 5000);
  assert_false(hl_gil_enabled());
  pthread_barrier_init(&off_barrier, NULL, 2);
  run_threads(2, off_main, NULL, 0);
  pthread_barrier_destroy(&off_barrier);
  hl_gil_stats_t *st = malloc(sizeof *st);
  hl_gil_stats(st);
  assert_int_equal(st->switches, 0);
  assert_int_equal(st->wait_ns.count, 0);
  assert_int_equal(st->hold_ns.count, 0);
  free(st);
  assert_int_equal(hl_thread_count(), 0);
}

/* ---- upper-layer handlers, hooks and slots ---------------------------------
 * A bit registered by an "upper layer" and requested of another thread runs
 * its handler on that thread, at its checkpoint, with its slot data; attach
 * and detach hooks run on each thread. Once with the GIL on, once off. */
typedef struct up_data {
  pthread_t owner;
  unsigned handled;
} up_data_t;

static int up_bit = -1;
static uint64_t up_attached, up_detached;
static uint32_t up_target_ready;
static hl_thread_t *up_target;         /* published with the flag above */
static uint32_t up_handled;

static void up_handler(hl_thread_t *t, unsigned bit, void *arg) {
  CHECK(arg == &up_bit && (int)bit == up_bit);
  up_data_t *d = t->slot[HL_THREAD_SLOT_USER];
  CHECK(d && pthread_equal(d->owner, pthread_self()));
  CHECK(t == hl_thread_self());
  d->handled++;
  hl_atomic_store_release_u32(&up_handled, 1);   /* pairs with await_flag */
}

static void up_on_attach(hl_thread_t *t, void *arg) {
  (void)t;
  CHECK(arg == &up_attached);
  hl_atomic_inc_u64(&up_attached);
}
static void up_on_detach(hl_thread_t *t, void *arg) {
  (void)t;
  CHECK(arg == &up_attached);
  hl_atomic_inc_u64(&up_detached);
}

static void *up_main(void *arg) {
  if (*(int *)arg == 0) {
    up_data_t d = {pthread_self(), 0};
    hl_thread_t *t = hl_thread_attach();
    t->slot[HL_THREAD_SLOT_USER] = &d;
    up_target = t;
    hl_atomic_store_release_u32(&up_target_ready, 1);   /* pairs with await_flag */
    /* a CPU-bound loop: checkpoints only */
    while (!hl_atomic_load_acquire_u32(&up_handled)) hl_checkpoint();  /* pairs with the handler's release */
    CHECK(d.handled == 1);
    hl_thread_detach();
  } else {
    await_flag(&up_target_ready);
    hl_thread_attach();
    hl_thread_request(up_target, (unsigned)up_bit);
    hl_thread_block_begin();             /* let the target run: it must see the bit */
    await_flag(&up_handled);
    hl_thread_block_end();
    hl_thread_detach();
  }
  return NULL;
}

static void test_handlers_hooks_slots(void **s) {
  (void)s;
  if (up_bit < 0) {
    up_bit = hl_thread_break_register(up_handler, &up_bit);
    assert_true(up_bit >= (int)HL_BREAK_FIRST_FREE && up_bit < (int)HL_BREAK_BITS);
    assert_int_equal(hl_thread_hooks_register(up_on_attach, up_on_detach, &up_attached), 0);
  }
  for (int gil = 1; gil >= 0; gil--) {
    hl_gil_init(gil, 200);
    up_attached = up_detached = 0;
    up_target_ready = up_handled = 0;
    int ids[2] = {0, 1};
    run_threads(2, up_main, ids, sizeof ids[0]);
    assert_int_equal(up_attached, 2);
    assert_int_equal(up_detached, 2);
  }
}

int main(int argc, char **argv) {
  if (argc > 1) g_threads = (unsigned)strtoul(argv[1], NULL, 10);
  if (argc > 2) g_iter = (unsigned)strtoul(argv[2], NULL, 10);
  if (g_threads < 1 || g_threads > MAX_THREADS || g_iter < 1) {
    fprintf(stderr, "usage: %s [THREADS 1..%d] [ITER >= 1]\n", argv[0], MAX_THREADS);
    return 2;
  }
  /* HEAPLAB_GIL, read as the driver reads it (bad values exit 2, as there) */
  hl_config_t *cfg = malloc(sizeof *cfg);
  const char *pol = getenv("HEAPLAB_GIL");
  char err[256];
  hl_config_defaults(cfg);
  if (pol && hl_config_set(cfg, "gil", pol, HL_SRC_ENV, "env HEAPLAB_GIL", err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", argv[0], err);
    return 2;
  }
  g_policy = cfg->gil;
  free(cfg);
  hl_gil_set_policy(g_policy);
  fprintf(stderr, "test_gil: policy %s\n", hl_config_choice_name(HL_OPT_GIL, g_policy));
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mutual_exclusion),
      cmocka_unit_test(test_handoff_and_forced_switching),
      cmocka_unit_test(test_waking_thread_and_policy),
      cmocka_unit_test(test_fairness_and_statistics),
      cmocka_unit_test(test_block_lets_others_run),
      cmocka_unit_test(test_attach_detach_cycles),
      cmocka_unit_test(test_disabled_is_a_no_op),
      cmocka_unit_test(test_handlers_hooks_slots),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
