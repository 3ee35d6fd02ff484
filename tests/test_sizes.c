/* The allocator workloads' size distributions (bench/workloads/sizes.c):
 * every draw inside the range, the shapes as documented (with fixed seeds,
 * so each count below is deterministic), the histogram file's errors, the
 * workloads' limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sizes.h"

static char err[512];

#define HAS(s, sub)                                                          \
  do {                                                                       \
    if (!strstr((s), (sub))) fail_msg("'%s' not found in: %s", (sub), (s));  \
  } while (0)

static void config(hl_config_t *c, const char *sizes, const char *dist, const char *hist) {
  hl_config_defaults(c);
  if (sizes) assert_int_equal(hl_config_set(c, "sizes", sizes, HL_SRC_FLAG, "flag", err, sizeof err), 0);
  if (dist) assert_int_equal(hl_config_set(c, "size-dist", dist, HL_SRC_FLAG, "flag", err, sizeof err), 0);
  if (hist) assert_int_equal(hl_config_set(c, "size-hist", hist, HL_SRC_FLAG, "flag", err, sizeof err), 0);
}

static void temp_file(char *path, const char *text, size_t len) {
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  close(fd);
}

static void test_uniform(void **s) {
  (void)s;
  hl_config_t c;
  hl_sizes_t z;
  config(&c, NULL, NULL, NULL);
  assert_int_equal(hl_sizes_init(&z, &c, 8, 512, 0, err, sizeof err), 0);
  assert_int_equal(z.min, 8);   /* auto: the workload's own */
  assert_int_equal(z.max, 512);
  assert_true(z.mean == 260.0);
  hl_rand_t r;
  hl_rand_seed(&r, 1);
  bool lo = false, hi = false;
  for (int i = 0; i < 100000; i++) {
    uint32_t v = hl_sizes_draw(&z, &r);
    assert_true(v >= 8 && v <= 512);
    lo |= v == 8;
    hi |= v == 512;
  }
  assert_true(lo && hi);
  /* the draw of the default range is the one the workloads always made, so
   * their default runs keep their checksums */
  hl_rand_t a, b;
  hl_rand_seed(&a, 9);
  hl_rand_seed(&b, 9);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(hl_sizes_draw(&z, &a), 8 + (uint32_t)hl_rand_below(&b, 505));
  hl_sizes_fini(&z);
  config(&c, "64..64", NULL, NULL);
  assert_int_equal(hl_sizes_init(&z, &c, 8, 512, 0, err, sizeof err), 0);
  for (int i = 0; i < 100; i++) assert_int_equal(hl_sizes_draw(&z, &r), 64);
  hl_sizes_fini(&z);
}

static void test_power_law(void **s) {
  (void)s;
  hl_config_t c;
  hl_sizes_t z;
  config(&c, "8..65536", "power-law", NULL);
  assert_int_equal(hl_sizes_init(&z, &c, 8, 512, 0, err, sizeof err), 0);
  hl_rand_t r;
  hl_rand_seed(&r, 2);
  enum { N = 400000 };
  uint32_t below32 = 0, octave[14] = {0};
  bool top = false;
  double sum = 0;
  for (int i = 0; i < N; i++) {
    uint32_t v = hl_sizes_draw(&z, &r);
    assert_true(v >= 8 && v <= 65536);
    below32 += v < 32;
    top |= v > 32768;
    sum += v;
    int k = 0;
    while ((8u << (k + 1)) <= v && k < 12) k++;
    octave[k]++;
  }
  /* density ~ x^-1.5 on [8, 65537): P(x < 32) = (1 - 1/2) / (1 - (8/65537)^0.5) = 0.5056 */
  double p = (double)below32 / N;
  if (p < 0.49 || p > 0.52) fail_msg("P(size < 32) = %.4f, expected 0.5056", p);
  /* each octave holds 1/sqrt(2) of the one below it, within sampling error */
  for (int k = 1; k < 10; k++) {
    double q = (double)octave[k] / octave[k - 1];
    if (q < 0.62 || q > 0.80) fail_msg("octave %d / %d = %.3f, expected 0.707", k, k - 1, q);
  }
  assert_true(top);   /* the tail is drawn */
  /* the expected size the slot scaling uses agrees with the draws */
  double mean = sum / N;
  if (mean < 0.8 * z.mean || mean > 1.2 * z.mean)
    fail_msg("mean of draws %.1f, the table's %.1f", mean, z.mean);
  hl_sizes_fini(&z);
}

static void test_histogram(void **s) {
  (void)s;
  char path[] = "/tmp/hl-sizes-XXXXXX";
  const char text[] = "# a program's sizes\n16 3\n\n64 1   # a comment\n16 0\n4096 0\n";
  temp_file(path, text, sizeof text - 1);
  hl_config_t c;
  hl_sizes_t z;
  config(&c, NULL, "histogram", path);
  assert_int_equal(hl_sizes_init(&z, &c, 8, 512, 0, err, sizeof err), 0);
  assert_int_equal(z.min, 16);   /* what the file holds: a zero count is not drawn */
  assert_int_equal(z.max, 64);
  assert_true(z.mean == 28.0);
  hl_rand_t r;
  hl_rand_seed(&r, 3);
  enum { N = 200000 };
  uint32_t n16 = 0;
  for (int i = 0; i < N; i++) {
    uint32_t v = hl_sizes_draw(&z, &r);
    assert_true(v == 16 || v == 64);
    n16 += v == 16;
  }
  double p = (double)n16 / N;
  if (p < 0.74 || p > 0.76) fail_msg("P(16) = %.4f, expected 0.75", p);
  hl_sizes_fini(&z);
  /* clipped by --sizes */
  config(&c, "32..100", "histogram", path);
  assert_int_equal(hl_sizes_init(&z, &c, 8, 512, 0, err, sizeof err), 0);
  for (int i = 0; i < 100; i++) assert_int_equal(hl_sizes_draw(&z, &r), 64);
  hl_sizes_fini(&z);
  config(&c, "100..200", "histogram", path);
  assert_int_equal(hl_sizes_init(&z, &c, 8, 512, 0, err, sizeof err), -1);
  HAS(err, "no size with a count in 100..200");
  hl_sizes_fini(&z);
  unlink(path);
}

static void test_histogram_errors(void **s) {
  (void)s;
  static const struct {
    const char *text;
    size_t len;
    const char *msg;
  } bad[] = {
      {"16 3\n64\n", 8, ":2: not a histogram line"},
      {"16 3\n0 5\n", 9, ":2: not a histogram line"},
      {"16 3\n2000000000 5\n", 18, ":2: not a histogram line"},
      {"16 -3\n", 6, ":1: not a histogram line"},
      {"16 3 4\n", 7, ":1: not a histogram line"},
      {"sixteen 3\n", 10, ":1: not a histogram line"},
      {"16 3\n\0\n", 7, ":2: a NUL byte"},
      {"# nothing\n\n", 11, "no \"SIZE COUNT\" line"},
      {"16 0\n", 5, "no \"SIZE COUNT\" line"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char path[] = "/tmp/hl-sizes-XXXXXX";
    temp_file(path, bad[i].text, bad[i].len);
    hl_config_t c;
    hl_sizes_t z;
    config(&c, NULL, "histogram", path);
    assert_int_equal(hl_sizes_init(&z, &c, 8, 512, 0, err, sizeof err), -1);
    HAS(err, path);
    HAS(err, bad[i].msg);
    hl_sizes_fini(&z);
    unlink(path);
  }
  hl_config_t c;
  hl_sizes_t z;
  config(&c, NULL, "histogram", "/nonexistent/hist");
  assert_int_equal(hl_sizes_init(&z, &c, 8, 512, 0, err, sizeof err), -1);
  HAS(err, "cannot open");
  hl_sizes_fini(&z);
}

static void test_limit_and_slots(void **s) {
  (void)s;
  hl_config_t c;
  hl_sizes_t z;
  config(&c, "8..131072", NULL, NULL);
  assert_int_equal(hl_sizes_init(&z, &c, 8, 512, 65536, err, sizeof err), -1);
  HAS(err, "up to 65536 B");
  hl_sizes_fini(&z);
  config(&c, "8..65536", NULL, NULL);
  assert_int_equal(hl_sizes_init(&z, &c, 8, 512, 65536, err, sizeof err), 0);
  /* 16,384 slots at 260 B hold 4.26 MB; at 32,772 B that is 130 slots: floor 256 */
  assert_int_equal(hl_sizes_scale_slots(&z, 16384, 8, 512, 256), 256);
  assert_int_equal(hl_sizes_scale_slots(&z, 100000, 1, 512, 256), 782);
  hl_sizes_fini(&z);
  config(&c, "8..16", NULL, NULL);   /* smaller blocks: never more slots */
  assert_int_equal(hl_sizes_init(&z, &c, 8, 512, 0, err, sizeof err), 0);
  assert_int_equal(hl_sizes_scale_slots(&z, 16384, 8, 512, 256), 16384);
  hl_sizes_fini(&z);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uniform),         cmocka_unit_test(test_power_law),
      cmocka_unit_test(test_histogram),       cmocka_unit_test(test_histogram_errors),
      cmocka_unit_test(test_limit_and_slots),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
