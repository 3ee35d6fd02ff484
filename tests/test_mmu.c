/* Unit tests of minimum mutator utilisation (base/mmu.c).
 *
 * Hand-computed cases first, each worked out in its comment, then a brute
 * force: paint the pauses onto a nanosecond timeline, slide the window over
 * it in 1 us steps, and compare with hl_mmu.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hl_base.h"
#include "hl_measure.h"

#define US 1000ull
#define MS 1000000ull

static void assert_util(double got, double want) {
  if (fabs(got - want) > 1e-12) fail_msg("MMU %.15f, want %.15f", got, want);
}

static void test_no_pauses(void **state) {
  (void)state;
  /* Nothing paused: every window is all mutator. */
  assert_util(hl_mmu(NULL, 0, 0, 10 * MS, 1 * MS), 1.0);
  assert_util(hl_mmu(NULL, 0, 0, 10 * MS, 0), 1.0);
  assert_util(hl_mmu(NULL, 0, 0, 10 * MS, 100 * MS), 1.0);
  /* An empty run (or one that ends before it starts) has nothing to lose. */
  hl_pause_t p = {0, 1 * MS};
  assert_util(hl_mmu(&p, 1, 5 * MS, 5 * MS, 1 * MS), 1.0);
  assert_util(hl_mmu(&p, 1, 6 * MS, 5 * MS, 1 * MS), 1.0);
  /* Zero-length pauses are no pauses. */
  hl_pause_t z[2] = {{3 * MS, 0}, {7 * MS, 0}};
  assert_util(hl_mmu(z, 2, 0, 10 * MS, 1 * MS), 1.0);
}

static void test_one_pause(void **state) {
  (void)state;
  /* Run [0, 10) ms, one pause [4, 5) ms.
   *   w = 1 ms:  the window [4, 5) is all pause               -> 0
   *   w = 0.5 ms: [4, 4.5) likewise                           -> 0
   *   w = 2 ms:  a window holds at most the 1 ms pause        -> 1 - 1/2 = 0.5
   *   w = 4 ms:                                               -> 1 - 1/4 = 0.75
   *   w = 10 ms: the whole run, 9 ms of mutator               -> 0.9
   *   w = 0:     a zero-length window inside the pause        -> 0 */
  hl_pause_t p = {4 * MS, 1 * MS};
  assert_util(hl_mmu(&p, 1, 0, 10 * MS, 1 * MS), 0.0);
  assert_util(hl_mmu(&p, 1, 0, 10 * MS, 500 * US), 0.0);
  assert_util(hl_mmu(&p, 1, 0, 10 * MS, 2 * MS), 0.5);
  assert_util(hl_mmu(&p, 1, 0, 10 * MS, 4 * MS), 0.75);
  assert_util(hl_mmu(&p, 1, 0, 10 * MS, 10 * MS), 0.9);
  assert_util(hl_mmu(&p, 1, 0, 10 * MS, 0), 0.0);

  /* The same pause at the very start, [0, 1), and at the very end, [9, 10):
   * a 2 ms window cannot centre on it but [0, 2) / [8, 10) still hold all
   * of it -> 0.5. */
  hl_pause_t first = {0, 1 * MS}, last = {9 * MS, 1 * MS};
  assert_util(hl_mmu(&first, 1, 0, 10 * MS, 2 * MS), 0.5);
  assert_util(hl_mmu(&last, 1, 0, 10 * MS, 2 * MS), 0.5);
  assert_util(hl_mmu(&last, 1, 0, 10 * MS, 10 * MS), 0.9);
}

static void test_two_close_pauses(void **state) {
  (void)state;
  /* Run [0, 10) ms, pauses [2, 3) and [4, 5): 1 ms of mutator between them.
   *   w = 1 ms:  [2, 3) all pause                              -> 0
   *   w = 2 ms:  [2, 4) holds 1 ms, so does [2.5, 4.5) (0.5 + 0.5): never
   *              both pauses whole                             -> 0.5
   *   w = 3 ms:  [2, 5) holds both, 2 ms                       -> 1/3
   *   w = 4 ms:  2 ms at most                                  -> 0.5
   *   w = 10 ms: 2 ms of the run                               -> 0.8 */
  hl_pause_t p[2] = {{2 * MS, 1 * MS}, {4 * MS, 1 * MS}};
  assert_util(hl_mmu(p, 2, 0, 10 * MS, 1 * MS), 0.0);
  assert_util(hl_mmu(p, 2, 0, 10 * MS, 2 * MS), 0.5);
  assert_util(hl_mmu(p, 2, 0, 10 * MS, 3 * MS), 1.0 / 3.0);
  assert_util(hl_mmu(p, 2, 0, 10 * MS, 4 * MS), 0.5);
  assert_util(hl_mmu(p, 2, 0, 10 * MS, 10 * MS), 0.8);

  /* Touching pauses [2, 3) and [3, 4) are one 2 ms pause: MMU(2 ms) = 0. */
  hl_pause_t t[2] = {{2 * MS, 1 * MS}, {3 * MS, 1 * MS}};
  assert_util(hl_mmu(t, 2, 0, 10 * MS, 2 * MS), 0.0);
  assert_util(hl_mmu(t, 2, 0, 10 * MS, 4 * MS), 0.5);
}

static void test_overlapping_threads(void **state) {
  (void)state;
  /* Thread A paused [2, 4) ms, thread B [3, 6) ms, in a run [0, 10) ms.
   * The world was stopped during the union [2, 6): 4 ms, not 2 + 3 = 5.
   *   w = 4 ms:  [2, 6) all pause                              -> 0
   *   w = 8 ms:  4 ms of 8                                     -> 0.5
   *   w = 10 ms: 4 ms of 10                                    -> 0.6 */
  hl_pause_t p[2] = {{2 * MS, 2 * MS}, {3 * MS, 3 * MS}};
  assert_util(hl_mmu(p, 2, 0, 10 * MS, 4 * MS), 0.0);
  assert_util(hl_mmu(p, 2, 0, 10 * MS, 8 * MS), 0.5);
  assert_util(hl_mmu(p, 2, 0, 10 * MS, 10 * MS), 0.6);

  /* Four threads reporting the same pause [5, 6) plus one nested inside it:
   * still 1 ms. MMU(2 ms) = 0.5, MMU(10 ms) = 0.9. */
  hl_pause_t d[5] = {{5 * MS, 1 * MS}, {5 * MS, 1 * MS}, {5200 * US, 300 * US},
                     {5 * MS, 1 * MS}, {5 * MS, 1 * MS}};
  assert_util(hl_mmu(d, 5, 0, 10 * MS, 2 * MS), 0.5);
  assert_util(hl_mmu(d, 5, 0, 10 * MS, 10 * MS), 0.9);
}

static void test_out_of_order(void **state) {
  (void)state;
  /* The two-pause case with a third, [7, 7.5) ms, given in every order of
   * the three: run [0, 10) ms.
   *   w = 3 ms:  [2, 5) holds 2 ms; [4.5, 7.5) holds 0.5 + 0.5 -> 1/3
   *   w = 6 ms:  [2, 8) holds 1 + 1 + 0.5 = 2.5 ms             -> 1 - 2.5/6
   *   w = 10 ms: 2.5 ms of 10                                  -> 0.75 */
  const hl_pause_t base[3] = {{2 * MS, 1 * MS}, {4 * MS, 1 * MS}, {7 * MS, 500 * US}};
  static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (int o = 0; o < 6; o++) {
    hl_pause_t p[3];
    for (int i = 0; i < 3; i++) p[i] = base[orders[o][i]];
    assert_util(hl_mmu(p, 3, 0, 10 * MS, 3 * MS), 1.0 / 3.0);
    assert_util(hl_mmu(p, 3, 0, 10 * MS, 6 * MS), 1.0 - 2.5 / 6.0);
    assert_util(hl_mmu(p, 3, 0, 10 * MS, 10 * MS), 0.75);
  }
}

static void test_window_longer_than_run(void **state) {
  (void)state;
  /* Run [100, 110) ms with a 1 ms pause: any window of 10 ms or more is the
   * whole run -> 0.9. The run does not start at 0 here, on purpose. */
  hl_pause_t p = {104 * MS, 1 * MS};
  assert_util(hl_mmu(&p, 1, 100 * MS, 110 * MS, 10 * MS), 0.9);
  assert_util(hl_mmu(&p, 1, 100 * MS, 110 * MS, 11 * MS), 0.9);
  assert_util(hl_mmu(&p, 1, 100 * MS, 110 * MS, 1000 * MS), 0.9);
  assert_util(hl_mmu(&p, 1, 100 * MS, 110 * MS, UINT64_MAX), 0.9);
}

static void test_clipped_to_run(void **state) {
  (void)state;
  /* Run [10, 20) ms.
   * Pause [8, 12) ms sticks out of the start: only [10, 12) counts.
   *   w = 2 ms:  [10, 12) all pause                            -> 0
   *   w = 4 ms:  [10, 14) holds 2 ms                           -> 0.5
   *   w = 10 ms: 2 of 10                                       -> 0.8
   * Add [18, 25) ms, sticking out of the end: [18, 20) counts.
   *   w = 10 ms: 4 of 10                                       -> 0.6
   *   w = 4 ms:  [10, 14) or [16, 20): 2 ms                    -> 0.5
   * A pause wholly outside, [30, 31) ms or [0, 10) ms, is ignored. */
  hl_pause_t p[4] = {{8 * MS, 4 * MS}, {18 * MS, 7 * MS}, {30 * MS, 1 * MS}, {0, 10 * MS}};
  assert_util(hl_mmu(p, 1, 10 * MS, 20 * MS, 2 * MS), 0.0);
  assert_util(hl_mmu(p, 1, 10 * MS, 20 * MS, 4 * MS), 0.5);
  assert_util(hl_mmu(p, 1, 10 * MS, 20 * MS, 10 * MS), 0.8);
  assert_util(hl_mmu(p, 4, 10 * MS, 20 * MS, 10 * MS), 0.6);
  assert_util(hl_mmu(p, 4, 10 * MS, 20 * MS, 4 * MS), 0.5);
  assert_util(hl_mmu(p + 2, 2, 10 * MS, 20 * MS, 1 * MS), 1.0);

  /* A pause covering the whole run, and one whose end overflows 64 bits:
   * the run is all pause -> 0 for every window. */
  hl_pause_t all = {5 * MS, 100 * MS}, huge = {15 * MS, UINT64_MAX};
  assert_util(hl_mmu(&all, 1, 10 * MS, 20 * MS, 3 * MS), 0.0);
  assert_util(hl_mmu(&all, 1, 10 * MS, 20 * MS, 10 * MS), 0.0);
  assert_util(hl_mmu(&huge, 1, 10 * MS, 20 * MS, 5 * MS), 0.0);
  assert_util(hl_mmu(&huge, 1, 10 * MS, 20 * MS, 10 * MS), 0.5);
}

/* Brute force. The run is RUN_NS long, starting at an arbitrary offset;
 * pauses (some overlapping, some sticking out of the run) are painted onto a
 * per-nanosecond timeline, so their union and clipping need no cleverness,
 * and paused[t] = pause time in [0, t) of the run. Sliding the window in
 * STEP_NS steps misses the worst window by less than one step, and moving a
 * window by d changes its pause time by at most d (one edge enters or leaves
 * a pause at a time), so
 *   hl_mmu <= brute <= hl_mmu + STEP_NS / w. */
#define RUN_NS  (2 * MS)
#define STEP_NS (1 * US)

static void test_brute_force(void **state) {
  (void)state;
  uint32_t *paused = malloc((RUN_NS + 1) * sizeof *paused);
  unsigned char *mark = malloc(RUN_NS);
  assert_non_null(paused);
  assert_non_null(mark);
  const uint64_t run_start = 1234567890123ull;
  const uint64_t windows[] = {1, 500, 1 * US, 7 * US, 50 * US, 100 * US, 333 * US,
                              1 * MS, RUN_NS - 1, RUN_NS, 5 * MS};
  hl_rand_t r;
  hl_rand_seed(&r, 42);
  for (int round = 0; round < 40; round++) {
    size_t n = 1 + hl_rand_below(&r, round < 20 ? 8 : 60);
    hl_pause_t p[60];
    memset(mark, 0, RUN_NS);
    for (size_t i = 0; i < n; i++) {
      /* starts from 100 us before the run to 100 us after it, lengths up to
       * 20 us or up to 300 us */
      uint64_t off = hl_rand_below(&r, RUN_NS + 200 * US);
      p[i].start_ns = run_start + off - 100 * US;
      p[i].len_ns = hl_rand_below(&r, (i & 1) ? 20 * US : 300 * US);
      uint64_t lo = p[i].start_ns, hi = p[i].start_ns + p[i].len_ns;
      if (lo < run_start) lo = run_start;
      if (hi > run_start + RUN_NS) hi = run_start + RUN_NS;
      if (hi > lo) memset(mark + (lo - run_start), 1, hi - lo);
    }
    paused[0] = 0;
    for (unsigned i = 0; i < RUN_NS; i++) paused[i + 1] = paused[i] + mark[i];

    for (size_t wi = 0; wi < HL_ARRAY_LEN(windows); wi++) {
      uint64_t w = windows[wi] < RUN_NS ? windows[wi] : RUN_NS;
      uint32_t worst = 0;
      for (uint64_t a = 0;; a += STEP_NS) {
        if (a > RUN_NS - w) a = RUN_NS - w;  /* the last window, flush with the end */
        uint32_t in = paused[a + w] - paused[a];
        if (in > worst) worst = in;
        if (a == RUN_NS - w) break;
      }
      double brute = 1.0 - (double)worst / (double)w;
      double got = hl_mmu(p, n, run_start, run_start + RUN_NS, windows[wi]);
      double slack = (double)STEP_NS / (double)w;
      if (got > brute + 1e-12 || brute > got + slack + 1e-12)
        fail_msg("round %d, %zu pauses, w = %llu ns: hl_mmu %.9f, brute force %.9f",
                 round, n, (unsigned long long)windows[wi], got, brute);
    }
  }
  free(mark);
  free(paused);
}

/* The online tracker gives hl_mmu's answer over the whole list, for pause
 * streams as a collector makes them (in order, not overlapping), dense and
 * sparse, runs shorter and longer than the largest window; with a bound on
 * the pauses it keeps smaller than a window holds, it says it is not exact
 * and its answer is an upper bound. */
static void test_tracker_matches_whole_list(void **state) {
  (void)state;
  const uint64_t windows[] = {1 * MS, 10 * MS, 100 * MS};
  enum { MAXP = 20000 };
  hl_pause_t *p = malloc(MAXP * sizeof *p);
  assert_non_null(p);
  hl_rand_t r;
  hl_rand_seed(&r, 7);
  int rounds_dropping = 0;
  for (int round = 0; round < 60; round++) {
    const uint64_t start = 5000 * MS;
    /* gaps up to 10 us .. 20 ms, pauses up to 1 us .. 5 ms */
    uint64_t gap_max = (uint64_t[]){10 * US, 200 * US, 3 * MS, 20 * MS}[round % 4];
    uint64_t len_max = (uint64_t[]){1 * US, 50 * US, 1 * MS, 5 * MS}[(round / 4) % 4];
    size_t n = 1 + hl_rand_below(&r, round < 30 ? 50 : MAXP);
    uint64_t t = start + hl_rand_below(&r, gap_max + 1);
    for (size_t i = 0; i < n; i++) {
      p[i].start_ns = t;
      p[i].len_ns = 1 + hl_rand_below(&r, len_max);
      t += p[i].len_ns + hl_rand_below(&r, gap_max + 1);
    }
    uint64_t end = t + hl_rand_below(&r, 2 * MS);
    hl_mmu_tracker_t tr;
    hl_mmu_tracker_init(&tr, windows, 3, (size_t)1 << 20, start);
    for (size_t i = 0; i < n; i++)
      hl_mmu_tracker_add(&tr, p[i].start_ns, p[i].start_ns + p[i].len_ns);
    assert_true(tr.exact);
    assert_int_equal(tr.pauses, n);
    for (unsigned wi = 0; wi < 3; wi++) {
      double want = hl_mmu(p, n, start, end, windows[wi]);
      double got = hl_mmu_tracker_get(&tr, wi, end);
      if (fabs(got - want) > 1e-12)
        fail_msg("round %d, %zu pauses, w = %llu ns: tracker %.12f, whole list %.12f", round, n,
                 (unsigned long long)windows[wi], got, want);
    }
    /* it kept fewer than it saw when the run outlasted the largest window */
    assert_true(tr.n <= n);
    if (tr.n < n) rounds_dropping++;
    /* a bound of 8 kept pauses: an upper bound, flagged */
    hl_mmu_tracker_t small;
    hl_mmu_tracker_init(&small, windows, 3, 8, start);
    for (size_t i = 0; i < n; i++)
      hl_mmu_tracker_add(&small, p[i].start_ns, p[i].start_ns + p[i].len_ns);
    assert_true(small.n <= 8);
    for (unsigned wi = 0; wi < 3; wi++) {
      double want = hl_mmu(p, n, start, end, windows[wi]);
      double got = hl_mmu_tracker_get(&small, wi, end);
      if (small.exact) assert_true(fabs(got - want) <= 1e-12);
      else assert_true(got >= want - 1e-12);
    }
    /* reset forgets every pause */
    hl_mmu_tracker_reset(&tr, end);
    assert_util(hl_mmu_tracker_get(&tr, 0, end + 10 * MS), 1.0);
    hl_mmu_tracker_free(&small);
    hl_mmu_tracker_free(&tr);
  }
  assert_true(rounds_dropping >= 10);
  free(p);
}

/* Pauses before the run start are clipped; overlapping ones merged. */
static void test_tracker_clip_and_merge(void **state) {
  (void)state;
  const uint64_t w[] = {1 * MS};
  hl_mmu_tracker_t tr;
  hl_mmu_tracker_init(&tr, w, 1, 16, 10 * MS);
  hl_mmu_tracker_add(&tr, 8 * MS, 9 * MS);          /* before the run: ignored */
  hl_mmu_tracker_add(&tr, 9 * MS + 500 * US, 10 * MS + 250 * US);   /* 250 us inside */
  hl_mmu_tracker_add(&tr, 12 * MS, 12 * MS + 200 * US);
  hl_mmu_tracker_add(&tr, 12 * MS + 100 * US, 12 * MS + 400 * US);  /* merged: 400 us */
  /* worst 1 ms window: [12, 13) with 400 us -> 0.6 */
  assert_util(hl_mmu_tracker_get(&tr, 0, 20 * MS), 0.6);
  hl_mmu_tracker_free(&tr);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_no_pauses),
    cmocka_unit_test(test_one_pause),
    cmocka_unit_test(test_two_close_pauses),
    cmocka_unit_test(test_overlapping_threads),
    cmocka_unit_test(test_out_of_order),
    cmocka_unit_test(test_window_longer_than_run),
    cmocka_unit_test(test_clipped_to_run),
    cmocka_unit_test(test_brute_force),
    cmocka_unit_test(test_tracker_matches_whole_list),
    cmocka_unit_test(test_tracker_clip_and_merge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
