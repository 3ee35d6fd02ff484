/* Unit tests of the log-linear histogram (base/hist.c).
 *
 * The promise under test is the header's: values below 2^HL_HIST_SUB_BITS
 * exact, every quantile within 1/256 of the true order statistic (asserted
 * at the 1% the results promise, and at 1/256 where the distribution makes
 * the tighter bound exact), count/total/min/max exact, merging the same as
 * recording everything into one histogram.
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

/* A histogram is 59 KiB: keep them off the test's stack. */
static hl_hist_t *new_hist(void) {
  hl_hist_t *h = malloc(sizeof *h);
  assert_non_null(h);
  hl_hist_init(h);
  return h;
}

static uint64_t bucket_sum(const hl_hist_t *h) {
  uint64_t s = 0;
  for (size_t i = 0; i < HL_HIST_BUCKETS; i++) s += h->buckets[i];
  return s;
}

/* |got - want| <= want * rel */
static void assert_close(uint64_t got, uint64_t want, double rel) {
  double err = fabs((double)got - (double)want);
  if (err > (double)want * rel) {
    fail_msg("got %llu, want %llu (relative error %g > %g)", (unsigned long long)got,
             (unsigned long long)want, err / (double)want, rel);
  }
}

/* The header's index formula, written out literally (floor(log2) by a loop)
 * as an independent check of hist.c's shortcut. */
static size_t header_index(uint64_t v) {
  const uint64_t S = HL_HIST_SUB_BITS;
  if (v < (1ull << S)) return (size_t)v;
  uint64_t e = 0;
  while (e < 63 && (v >> (e + 1)) != 0) e++;
  return (size_t)((1ull << S) + (e - S) * (1ull << S) + ((v >> (e - S)) - (1ull << S)));
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The exact order statistic hl_hist_quantile approximates. */
static uint64_t exact_quantile(const uint64_t *sorted, size_t n, double q) {
  if (q >= 1.0) return sorted[n - 1];
  size_t rank = (size_t)ceil(q * (double)n);
  if (rank < 1) rank = 1;
  return sorted[rank - 1];
}

static void test_empty(void **state) {
  (void)state;
  hl_hist_t *h = new_hist();
  assert_int_equal(h->count, 0);
  assert_int_equal(h->total, 0);
  assert_int_equal(h->max, 0);
  assert_true(h->min == UINT64_MAX);
  assert_int_equal(hl_hist_quantile(h, 0.0), 0);
  assert_int_equal(hl_hist_quantile(h, 0.5), 0);
  assert_int_equal(hl_hist_quantile(h, 1.0), 0);
  assert_true(hl_hist_mean(h) == 0.0);
  hl_hist_summary_t s = hl_hist_summarize(h);
  assert_int_equal(s.count, 0);
  assert_int_equal(s.p50, 0);
  assert_int_equal(s.p90, 0);
  assert_int_equal(s.p99, 0);
  assert_int_equal(s.p999, 0);
  assert_int_equal(s.max, 0);
  assert_int_equal(s.total, 0);
  /* record_n of nothing and merging an empty histogram leave it empty. */
  hl_hist_record_n(h, 12345, 0);
  hl_hist_t *e = new_hist();
  hl_hist_merge(h, e);
  assert_memory_equal(h, e, sizeof *h);
  free(e);
  free(h);
}

static void test_exact_small_values(void **state) {
  (void)state;
  hl_hist_t *h = new_hist();
  /* 0..127 once each: rank r holds value r - 1, exactly. */
  for (uint64_t v = 0; v < HL_HIST_SUB; v++) hl_hist_record(h, v);
  assert_int_equal(h->count, HL_HIST_SUB);
  assert_int_equal(h->min, 0);
  assert_int_equal(h->max, HL_HIST_SUB - 1);
  assert_int_equal(h->total, HL_HIST_SUB * (HL_HIST_SUB - 1) / 2);
  for (uint64_t v = 0; v < HL_HIST_SUB; v++) assert_int_equal(h->buckets[v], 1);
  for (uint64_t r = 1; r <= HL_HIST_SUB; r++) {
    double q = (double)r / HL_HIST_SUB;
    assert_int_equal(hl_hist_quantile(h, q), r - 1);
  }
  assert_int_equal(hl_hist_quantile(h, 0.0), 0);
  assert_true(fabs(hl_hist_mean(h) - (HL_HIST_SUB - 1) / 2.0) < 1e-12);
  free(h);

  /* One value: every quantile is that value, whatever its bucket's width. */
  const uint64_t singles[] = {0, 1, 42, 127, 128, 255, 256, 1000, 123456789, 1ull << 40};
  for (size_t i = 0; i < HL_ARRAY_LEN(singles); i++) {
    h = new_hist();
    hl_hist_record(h, singles[i]);
    assert_int_equal(hl_hist_quantile(h, 0.0), singles[i]);
    assert_int_equal(hl_hist_quantile(h, 0.5), singles[i]);
    assert_int_equal(hl_hist_quantile(h, 0.999), singles[i]);
    assert_int_equal(hl_hist_quantile(h, 1.0), singles[i]);
    free(h);
  }
}

/* hist.c computes the index by a shortcut; the layout is the header's, so
 * check the one against the other over every magnitude. */
static void test_bucket_layout(void **state) {
  (void)state;
  hl_rand_t r;
  hl_rand_seed(&r, 7);
  hl_hist_t *h = new_hist();
  for (int i = 0; i < 20000; i++) {
    uint64_t v;
    switch (i % 4) {
    case 0: v = (uint64_t)i; break;                                      /* small */
    case 1: v = 1ull << (i % 64); break;                                 /* powers of two */
    case 2: v = (1ull << (i % 64)) - 1; break;                           /* just below them */
    default: v = hl_rand_next(&r) >> hl_rand_below(&r, 64); break;      /* every magnitude */
    }
    size_t want = header_index(v);
    assert_true(want < HL_HIST_BUCKETS);
    uint64_t before = h->buckets[want];
    hl_hist_record(h, v);
    if (h->buckets[want] != before + 1)
      fail_msg("value %llu not in bucket %zu", (unsigned long long)v, want);
  }
  assert_int_equal(bucket_sum(h), h->count);
  free(h);
}

/* 1..1,000,000 once each: the true p-quantile is ceil(p * 1e6) itself. The
 * bucket-midpoint error bound is 1/256 of the bucket's lower end, so assert
 * that, which is well inside the 1% the results promise. */
static void test_uniform_million(void **state) {
  (void)state;
  hl_hist_t *h = new_hist();
  const uint64_t n = 1000000;
  for (uint64_t v = 1; v <= n; v++) hl_hist_record(h, v);
  assert_int_equal(h->count, n);
  assert_int_equal(h->total, n * (n + 1) / 2);
  assert_int_equal(h->min, 1);
  assert_int_equal(h->max, n);
  assert_int_equal(bucket_sum(h), n);

  hl_hist_summary_t s = hl_hist_summarize(h);
  assert_int_equal(s.count, n);
  assert_int_equal(s.max, n);
  assert_close(s.p50, 500000, 0.01);
  assert_close(s.p90, 900000, 0.01);
  assert_close(s.p99, 990000, 0.01);
  assert_close(s.p999, 999000, 0.01);
  assert_close(s.p50, 500000, 1.0 / 256);
  assert_close(s.p90, 900000, 1.0 / 256);
  assert_close(s.p99, 990000, 1.0 / 256);
  assert_close(s.p999, 999000, 1.0 / 256);
  assert_int_equal(hl_hist_quantile(h, 1.0), n);
  assert_int_equal(hl_hist_quantile(h, 0.0), 1);
  assert_true(fabs(hl_hist_mean(h) - 500000.5) < 1e-6);
  free(h);
}

/* Pareto(alpha = 1.1, scale 1 us) latencies, the shape of GC pauses and
 * lock waits: most values small, a tail over many powers of two. */
static void test_heavy_tail(void **state) {
  (void)state;
  const size_t n = 200000;
  uint64_t *vals = malloc(n * sizeof *vals);
  assert_non_null(vals);
  hl_rand_t r;
  hl_rand_seed(&r, 2024);
  hl_hist_t *h = new_hist();
  for (size_t i = 0; i < n; i++) {
    double u = ((double)(hl_rand_next(&r) >> 11) + 1.0) / 9007199254740992.0; /* (0, 1] */
    double x = 1000.0 * pow(u, -1.0 / 1.1);
    vals[i] = x > 1e18 ? (uint64_t)1e18 : (uint64_t)x;
    hl_hist_record(h, vals[i]);
  }
  qsort(vals, n, sizeof *vals, cmp_u64);
  assert_int_equal(h->min, vals[0]);
  assert_int_equal(h->max, vals[n - 1]);
  assert_true(vals[n - 1] > 1000 * vals[0]);  /* the tail really is long */

  const double qs[] = {0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1.0};
  for (size_t i = 0; i < HL_ARRAY_LEN(qs); i++) {
    uint64_t want = exact_quantile(vals, n, qs[i]);
    assert_close(hl_hist_quantile(h, qs[i]), want, 1.0 / 256);
  }
  assert_int_equal(hl_hist_quantile(h, 1.0), vals[n - 1]);

  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) assert_false(__builtin_add_overflow(sum, vals[i], &sum));
  assert_true(h->total == sum);
  free(vals);
  free(h);
}

/* Recording values into two histograms and merging equals recording them
 * all into one, bucket by bucket and field by field. */
static void test_merge(void **state) {
  (void)state;
  hl_hist_t *a = new_hist(), *b = new_hist(), *all = new_hist();
  hl_rand_t r;
  hl_rand_seed(&r, 99);
  for (int i = 0; i < 100000; i++) {
    /* a gets small values, b larger ones, with overlap in between */
    int to_a = (i % 3) != 0;
    uint64_t v = hl_rand_next(&r) >> (to_a ? 44 : 30 + hl_rand_below(&r, 30));
    hl_hist_record(to_a ? a : b, v);
    hl_hist_record(all, v);
  }
  hl_hist_t *merged = new_hist();
  hl_hist_merge(merged, a);   /* into an empty histogram */
  hl_hist_merge(merged, b);
  assert_memory_equal(merged->buckets, all->buckets, sizeof all->buckets);
  assert_int_equal(merged->count, all->count);
  assert_int_equal(merged->total, all->total);
  assert_int_equal(merged->min, all->min);
  assert_int_equal(merged->max, all->max);
  hl_hist_summary_t sm = hl_hist_summarize(merged), sa = hl_hist_summarize(all);
  assert_memory_equal(&sm, &sa, sizeof sm);

  /* The other order, merging b into a directly. */
  hl_hist_merge(b, a);
  assert_memory_equal(b, all, sizeof *all);
  free(a);
  free(b);
  free(all);
  free(merged);
}

static void test_huge_values(void **state) {
  (void)state;
  hl_hist_t *h = new_hist();
  hl_hist_record(h, UINT64_MAX);
  assert_int_equal(h->buckets[HL_HIST_BUCKETS - 1], 1);
  assert_true(h->max == UINT64_MAX);
  assert_true(h->total == UINT64_MAX);
  assert_true(hl_hist_quantile(h, 0.5) == UINT64_MAX);
  hl_hist_record(h, UINT64_MAX);  /* total saturates */
  assert_true(h->total == UINT64_MAX);
  hl_hist_record(h, 5);
  assert_true(h->total == UINT64_MAX);
  assert_int_equal(h->count, 3);
  assert_int_equal(h->min, 5);
  assert_true(hl_hist_quantile(h, 1.0) == UINT64_MAX);
  /* below q = 1 the answer is the top bucket's midpoint, 255.5 * 2^56 */
  assert_close(hl_hist_quantile(h, 0.99), UINT64_MAX, 1.0 / 256);
  assert_int_equal(hl_hist_quantile(h, 0.2), 5);
  /* saturated total: the mean is estimated from the buckets */
  double mean = hl_hist_mean(h);
  assert_true(fabs(mean - 2.0 / 3.0 * 18446744073709551615.0) < 0.01 * mean);

  hl_hist_summary_t s = hl_hist_summarize(h);
  assert_true(s.max == UINT64_MAX);
  assert_close(s.p999, UINT64_MAX, 1.0 / 256);

  /* Every power of two and its neighbours, up to the top. */
  hl_hist_t *g = new_hist();
  for (int e = 0; e < 64; e++) {
    hl_hist_record(g, (1ull << e) - 1);
    hl_hist_record(g, 1ull << e);
    hl_hist_record(g, (1ull << e) + 1);
  }
  assert_int_equal(bucket_sum(g), 64 * 3);
  assert_true(g->max == (1ull << 63) + 1);
  assert_true(hl_hist_quantile(g, 1.0) == (1ull << 63) + 1);
  free(g);
  free(h);
}

static void test_record_n(void **state) {
  (void)state;
  hl_hist_t *one = new_hist(), *many = new_hist();
  const uint64_t vals[] = {0, 3, 200, 77777, 1ull << 33, 999999999};
  const uint64_t ns[] = {1, 5, 1000, 17, 2, 300};
  for (size_t i = 0; i < HL_ARRAY_LEN(vals); i++) {
    hl_hist_record_n(many, vals[i], ns[i]);
    for (uint64_t k = 0; k < ns[i]; k++) hl_hist_record(one, vals[i]);
  }
  hl_hist_record_n(many, 424242, 0);  /* no-op: must not move min/max */
  assert_memory_equal(one, many, sizeof *one);

  /* value * n beyond 2^64 saturates the total rather than wrapping */
  hl_hist_t *h = new_hist();
  hl_hist_record_n(h, 1ull << 40, 1ull << 30);
  assert_true(h->total == UINT64_MAX);
  assert_int_equal(h->count, 1ull << 30);
  assert_true(hl_hist_quantile(h, 0.5) == 1ull << 40);
  free(h);
  free(one);
  free(many);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_empty),
    cmocka_unit_test(test_exact_small_values),
    cmocka_unit_test(test_bucket_layout),
    cmocka_unit_test(test_uniform_million),
    cmocka_unit_test(test_heavy_tail),
    cmocka_unit_test(test_merge),
    cmocka_unit_test(test_huge_values),
    cmocka_unit_test(test_record_n),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
