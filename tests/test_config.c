/* base/config.c: the option table, precedence, and the three validation
 * steps (value, combination, availability), each path with its message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hl_config.h"

static char err[1024];

#define HAS(s, sub) assert_non_null(strstr((s), (sub)))

static const uint64_t churn_uses =
    HL_OPT_BIT(HL_OPT_ALLOC) | HL_OPT_BIT(HL_OPT_GEOMETRY) | HL_OPT_BIT(HL_OPT_TCACHE) |
    HL_OPT_BIT(HL_OPT_THREADS) | HL_OPT_BIT(HL_OPT_SEED);

static void test_defaults_match_design(void **s) {
  (void)s;
  hl_config_t c;
  hl_config_defaults(&c);
  assert_int_equal(c.alloc, HL_ALLOC_POOL);
  assert_int_equal(c.geometry, HL_GEOMETRY_MODERN);
  assert_int_equal(c.tcache, HL_TCACHE_NONE);
  assert_false(c.alloc_debug);
  assert_true(c.freelists);
  assert_int_equal(c.rc, HL_RC_GIL);
  assert_false(c.immortal);
  assert_int_equal(c.gc, HL_GC_STW);
  assert_int_equal(c.threshold[0], 700);
  assert_int_equal(c.threshold[1], 10);
  assert_int_equal(c.threshold[2], 10);
  assert_true(c.gc_untrack);
  assert_int_equal(c.switch_interval_us, 5000);
  assert_int_equal(c.threads, 1);
  assert_false(c.pin);
  assert_string_equal(c.trace, "");
  assert_int_equal(c.trace_format, HL_TRACE_FORMAT_JSON);
  assert_int_equal(c.gil, HL_GIL_CLASSIC);
  for (int i = 0; i < HL_OPT_COUNT; i++) assert_int_equal(c.source[i], HL_SRC_DEFAULT);
}

static void test_every_design_option_registered(void **s) {
  (void)s;
  static const char *const names[] = {
      "alloc", "geometry", "large", "pool-colour", "pool-requeue", "pool-retire", "tcache", "alloc-debug", "alloc-stats",
      "arena-keep-kib", "arena-release", "arena-decay-ms", "arena-huge", "tcache-kib", "freelists", "rc",
      "immortal", "gc", "threshold", "gc-untrack", "pause-budget-us", "mmu-target",
      "gc-threads", "gc-sweep",
      "switch-interval-us", "gil", "stw-probe-ms", "stw-report-us", "cycle-size", "cycle-payload",
      "live-heap-m", "pass-cycles", "sizes", "size-dist", "size-hist", "input", "churn", "workers",
      "prefork-gc",
      "touch-pct", "threads", "pin", "scale", "seed", "duration-s", "trace",
      "trace-format", "config"};
  assert_int_equal(hl_config_option_count(), sizeof names / sizeof names[0]);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    int id = hl_config_find(names[i]);
    assert_true(id >= 0);
    hl_option_info_t info;
    hl_config_option_info((hl_opt_id_t)id, &info);
    assert_string_equal(info.name, names[i]);
    assert_true(strlen(info.help) > 10);
    assert_non_null(info.accepted);
  }
  hl_option_info_t info;
  hl_config_option_info(HL_OPT_SWITCH_INTERVAL_US, &info);
  assert_string_equal(info.env, "HEAPLAB_SWITCH_INTERVAL_US");
}

static void test_bad_values_name_option_and_accepted(void **s) {
  (void)s;
  hl_config_t c;
  hl_config_defaults(&c);
  assert_int_equal(hl_config_set(&c, "rc", "bogus", HL_SRC_FLAG, "flag", err, sizeof err), -1);
  HAS(err, "'rc'");
  HAS(err, "bogus");
  HAS(err, "gil, atomic, biased");
  assert_int_equal(hl_config_set(&c, "threads", "0", HL_SRC_FLAG, "flag", err, sizeof err), -1);
  HAS(err, "1..1024");
  assert_int_equal(hl_config_set(&c, "threads", "-3", HL_SRC_FLAG, "flag", err, sizeof err), -1);
  assert_int_equal(hl_config_set(&c, "threads", "4x", HL_SRC_FLAG, "flag", err, sizeof err), -1);
  assert_int_equal(hl_config_set(&c, "threads", "", HL_SRC_FLAG, "flag", err, sizeof err), -1);
  assert_int_equal(hl_config_set(&c, "seed", "99999999999999999999", HL_SRC_FLAG, "flag", err,
                                 sizeof err), -1);
  assert_int_equal(hl_config_set(&c, "duration-s", "nan", HL_SRC_FLAG, "flag", err, sizeof err),
                   -1);
  assert_int_equal(hl_config_set(&c, "duration-s", "-1", HL_SRC_FLAG, "flag", err, sizeof err),
                   -1);
  assert_int_equal(hl_config_set(&c, "pin", "maybe", HL_SRC_FLAG, "flag", err, sizeof err), -1);
  HAS(err, "off, on");
  static const char *const bad_churn[] = {"many", "-1", "1.5", "100000001", ""};
  for (size_t i = 0; i < sizeof bad_churn / sizeof *bad_churn; i++) {
    assert_int_equal(hl_config_set(&c, "churn", bad_churn[i], HL_SRC_FLAG, "flag", err, sizeof err), -1);
    HAS(err, "'churn'");
    HAS(err, "0..100000000");
  }
  assert_int_equal(hl_config_set(&c, "churn", "300", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(c.churn, 300);
  static const char *const bad_triples[] = {"700,10", "700,10,10,1", "a,b,c", "700,,10",
                                            "700,10,", "-1,10,10", "1,2,3000000000"};
  for (size_t i = 0; i < sizeof bad_triples / sizeof *bad_triples; i++) {
    assert_int_equal(
        hl_config_set(&c, "threshold", bad_triples[i], HL_SRC_FLAG, "flag", err, sizeof err), -1);
    HAS(err, "'threshold'");
  }
  /* nothing was changed by the failed sets */
  hl_config_t d;
  hl_config_defaults(&d);
  assert_int_equal(c.threads, d.threads);
  assert_memory_equal(c.threshold, d.threshold, sizeof d.threshold);
  assert_int_equal(
      hl_config_set(&c, "trace-format", "perfetto", HL_SRC_FLAG, "flag", err, sizeof err), -1);
  HAS(err, "'trace-format'");
  HAS(err, "json, chrome");
}

static void test_good_values(void **s) {
  (void)s;
  hl_config_t c;
  hl_config_defaults(&c);
  assert_int_equal(hl_config_set(&c, "threshold", "100,5,2", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(c.threshold[0], 100);
  assert_int_equal(c.threshold[2], 2);
  assert_int_equal(hl_config_set(&c, "pin", "yes", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_true(c.pin);
  assert_int_equal(hl_config_set(&c, "duration-s", "2.5", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_true(c.duration_s == 2.5);
  assert_int_equal(hl_config_set(&c, "seed", "18446744073709551615", HL_SRC_FLAG, "flag", err,
                                 sizeof err), 0);
  assert_true(c.seed == UINT64_MAX);
  char buf[64];
  hl_config_format(&c, HL_OPT_THRESHOLD, buf, sizeof buf);
  assert_string_equal(buf, "100,5,2");
  hl_config_format(&c, HL_OPT_PIN, buf, sizeof buf);
  assert_string_equal(buf, "on");
}

static void test_unknown_option_suggests(void **s) {
  (void)s;
  hl_config_t c;
  hl_config_defaults(&c);
  assert_int_equal(hl_config_set(&c, "thraeds", "2", HL_SRC_FLAG, "flag", err, sizeof err), -1);
  HAS(err, "unknown option 'thraeds'");
  HAS(err, "did you mean 'threads'");
  char *argv[] = {"--frobnicate=1"};
  assert_int_equal(hl_config_resolve(&c, 1, argv, NULL, err, sizeof err), -1);
  HAS(err, "unknown option 'frobnicate'");
  char *argv2[] = {"stray"};
  assert_int_equal(hl_config_resolve(&c, 1, argv2, NULL, err, sizeof err), -1);
  HAS(err, "stray");
  char *argv3[] = {"--threads"};
  assert_int_equal(hl_config_resolve(&c, 1, argv3, NULL, err, sizeof err), -1);
  HAS(err, "missing value");
}

static char tmpfile_path[64];

static void write_file(const char *text) {
  strcpy(tmpfile_path, "/tmp/hl_test_config_XXXXXX");
  int fd = mkstemp(tmpfile_path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

static void test_precedence(void **s) {
  (void)s;
  write_file("# a comment\n\nthreads = 3   # trailing comment\nseed=7\nscale = 2\n");
  char cfgflag[128];
  snprintf(cfgflag, sizeof cfgflag, "--config=%s", tmpfile_path);
  char *env[] = {"HEAPLAB_SEED=8", "HEAPLAB_SCALE=5", "PATH=/bin", NULL};
  char *argv[] = {cfgflag, "--scale=6", "--pin"};
  hl_config_t c;
  assert_int_equal(hl_config_resolve(&c, 3, argv, env, err, sizeof err), 0);
  assert_int_equal(c.threads, 3);            /* file only */
  assert_int_equal(c.source[HL_OPT_THREADS], HL_SRC_FILE);
  assert_int_equal(c.seed, 8);               /* env over file */
  assert_int_equal(c.source[HL_OPT_SEED], HL_SRC_ENV);
  HAS(c.origin[HL_OPT_SEED], "HEAPLAB_SEED");
  assert_int_equal(c.scale, 6);              /* flag over env over file */
  assert_int_equal(c.source[HL_OPT_SCALE], HL_SRC_FLAG);
  assert_true(c.pin);
  assert_int_equal(c.source[HL_OPT_ALLOC], HL_SRC_DEFAULT);
  /* the file named by the environment */
  char envcfg[128];
  snprintf(envcfg, sizeof envcfg, "HEAPLAB_CONFIG=%s", tmpfile_path);
  char *env2[] = {envcfg, NULL};
  assert_int_equal(hl_config_resolve(&c, 0, NULL, env2, err, sizeof err), 0);
  assert_int_equal(c.threads, 3);
  /* "--name value" form */
  char *argv3[] = {"--threads", "5"};
  assert_int_equal(hl_config_resolve(&c, 2, argv3, NULL, err, sizeof err), 0);
  assert_int_equal(c.threads, 5);
  unlink(tmpfile_path);
}

static void test_file_errors_have_line_numbers(void **s) {
  (void)s;
  hl_config_t c;
  hl_config_defaults(&c);
  write_file("threads = 2\nrc = sometimes\n");
  assert_int_equal(hl_config_load_file(&c, tmpfile_path, err, sizeof err), -1);
  HAS(err, ":2");
  HAS(err, "'rc'");
  HAS(err, "sometimes");
  unlink(tmpfile_path);
  write_file("threads 2\n");
  assert_int_equal(hl_config_load_file(&c, tmpfile_path, err, sizeof err), -1);
  HAS(err, ":1");
  HAS(err, "name = value");
  unlink(tmpfile_path);
  write_file("color = blue\n");
  assert_int_equal(hl_config_load_file(&c, tmpfile_path, err, sizeof err), -1);
  HAS(err, "unknown option 'color'");
  unlink(tmpfile_path);
  assert_int_equal(hl_config_load_file(&c, "/nonexistent/heaplab.conf", err, sizeof err), -1);
  HAS(err, "cannot open");
}

static void test_env_errors(void **s) {
  (void)s;
  hl_config_t c;
  hl_config_defaults(&c);
  char *env[] = {"HEAPLAB_RC=sometimes", NULL};
  assert_int_equal(hl_config_load_env(&c, env, NULL, err, sizeof err), -1);
  HAS(err, "HEAPLAB_RC");
  HAS(err, "gil, atomic, biased");
  char *env2[] = {"HEAPLAB_COLOUR=blue", NULL};
  assert_int_equal(hl_config_load_env(&c, env2, NULL, err, sizeof err), -1);
  HAS(err, "HEAPLAB_COLOUR");
  static const char *const ok[] = {"HEAPLAB_COLOUR", NULL};
  assert_int_equal(hl_config_load_env(&c, env2, ok, err, sizeof err), 0);
}

static void test_combination(void **s) {
  (void)s;
  hl_config_t c;
  hl_config_defaults(&c);
  c.alloc = HL_ALLOC_SYSTEM;
  assert_int_equal(hl_config_check_combinations(&c, err, sizeof err), 0);
  c.tcache = HL_TCACHE_MAGAZINE;
  assert_int_equal(hl_config_check_combinations(&c, err, sizeof err), -1);
  HAS(err, "impossible combination");
  HAS(err, "tcache=magazine");
  HAS(err, "alloc=system");
}

static void test_availability(void **s) {
  (void)s;
  hl_config_t c;
  /* the defaults a workload uses are built */
  hl_config_defaults(&c);
  assert_int_equal(hl_config_check_available(&c, churn_uses, err, sizeof err), 0);
  /* every cache is built */
  for (const char *const *v = (const char *const[]){"none", "magazine", "heap", "heap-magazine", NULL}; *v; v++) {
    assert_int_equal(hl_config_set(&c, "tcache", *v, HL_SRC_FLAG, "flag", err, sizeof err), 0);
    assert_int_equal(hl_config_check_available(&c, churn_uses, err, sizeof err), 0);
  }
  /* the concurrent collector is built, without a GIL */
  hl_config_defaults(&c);
  assert_int_equal(hl_config_set(&c, "gc", "concurrent", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(hl_config_set(&c, "rc", "atomic", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(hl_config_check_available(&c, churn_uses, err, sizeof err), 0);
  assert_int_equal(hl_config_check_combinations(&c, err, sizeof err), 0);
  /* the GIL mode and its switch interval are built */
  hl_config_defaults(&c);
  assert_int_equal(hl_config_set(&c, "rc", "gil", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(hl_config_set(&c, "switch-interval-us", "500", HL_SRC_FLAG, "flag", err,
                                 sizeof err), 0);
  assert_int_equal(hl_config_check_available(
                       &c, churn_uses | HL_OPT_BIT(HL_OPT_RC) | HL_OPT_BIT(HL_OPT_SWITCH_INTERVAL_US),
                       err, sizeof err), 0);
  /* every refcount mode is built */
  for (const char *const *v = (const char *const[]){"gil", "atomic", "biased", NULL}; *v; v++) {
    hl_config_defaults(&c);
    assert_int_equal(hl_config_set(&c, "rc", *v, HL_SRC_FLAG, "flag", err, sizeof err), 0);
    assert_int_equal(hl_config_check_available(&c, churn_uses | HL_OPT_BIT(HL_OPT_RC), err,
                                               sizeof err), 0);
  }
  /* ... and refused under the GIL, naming the modes it runs with */
  hl_config_defaults(&c);
  assert_int_equal(hl_config_set(&c, "gc", "concurrent", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(hl_config_check_combinations(&c, err, sizeof err), -1);
  HAS(err, "impossible combination");
  HAS(err, "rc=gil");
  HAS(err, "atomic");
  HAS(err, "biased");
  /* the incremental collector and its budget are built */
  hl_config_defaults(&c);
  assert_int_equal(hl_config_set(&c, "gc", "incremental", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(hl_config_set(&c, "pause-budget-us", "500", HL_SRC_FLAG, "flag", err,
                                 sizeof err), 0);
  assert_int_equal(hl_config_check_available(&c, churn_uses, err, sizeof err), 0);
}

static void test_custom_geometry(void **s) {
  (void)s;
  hl_config_t c;
  hl_config_defaults(&c);
  assert_int_equal(hl_config_set(&c, "geometry", "16,512,16K,1M", HL_SRC_FLAG, "flag", err,
                                 sizeof err), 0);
  assert_int_equal(c.geometry, HL_GEOMETRY_CUSTOM);
  assert_int_equal(c.geometry_custom[2], 16384);
  assert_int_equal(c.geometry_custom[3], 1048576);
  char buf[128];
  hl_config_format(&c, HL_OPT_GEOMETRY, buf, sizeof buf);
  assert_string_equal(buf, "16,512,16384,1048576");
  assert_int_equal(hl_config_check_available(&c, churn_uses, err, sizeof err), 0);
  static const char *const bad[] = {"16,512,16K", "16,512,16K,1M,2", "a,b,c,d", "16,,16K,1M",
                                    "huge"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(hl_config_set(&c, "geometry", bad[i], HL_SRC_FLAG, "flag", err, sizeof err),
                     -1);
    HAS(err, "'geometry'");
    HAS(err, "classic, modern");
  }
  assert_int_equal(hl_config_set(&c, "geometry", "classic", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(c.geometry, HL_GEOMETRY_CLASSIC);
}

static void test_sizes_range(void **s) {
  (void)s;
  hl_config_t c;
  hl_config_defaults(&c);
  char buf[64];
  hl_config_format(&c, HL_OPT_SIZES, buf, sizeof buf);
  assert_string_equal(buf, "auto");
  assert_int_equal(c.sizes[0], 0);
  assert_int_equal(hl_config_set(&c, "sizes", "8..65536", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(c.sizes[0], 8);
  assert_int_equal(c.sizes[1], 65536);
  hl_config_format(&c, HL_OPT_SIZES, buf, sizeof buf);
  assert_string_equal(buf, "8..65536");
  assert_int_equal(hl_config_set(&c, "sizes", "32..32", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  static const char *const bad[] = {"0..8", "9..8", "8..", "..8", "8-16", "8..16..32", "-1..8",
                                    "8..2000000000", "", "8", "a..b", "8 ..16"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(hl_config_set(&c, "sizes", bad[i], HL_SRC_FLAG, "flag", err, sizeof err), -1);
    HAS(err, "'sizes'");
    HAS(err, "MIN..MAX");
  }
  assert_int_equal(c.sizes[0], 32);   /* unchanged by the failures */
  assert_int_equal(hl_config_set(&c, "sizes", "auto", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(c.sizes[0], 0);
  /* a histogram needs its file, and the file needs the histogram */
  assert_int_equal(hl_config_set(&c, "size-dist", "histogram", HL_SRC_FLAG, "flag", err,
                                 sizeof err), 0);
  assert_int_equal(hl_config_check_combinations(&c, err, sizeof err), -1);
  HAS(err, "size-hist");
  assert_int_equal(hl_config_set(&c, "size-hist", "/tmp/h.txt", HL_SRC_FLAG, "flag", err,
                                 sizeof err), 0);
  assert_int_equal(hl_config_check_combinations(&c, err, sizeof err), 0);
  assert_int_equal(hl_config_set(&c, "size-dist", "power-law", HL_SRC_FLAG, "flag", err,
                                 sizeof err), 0);
  assert_int_equal(hl_config_check_combinations(&c, err, sizeof err), -1);
  HAS(err, "size-dist=histogram");
}

static void test_notes_for_settings_without_effect(void **s) {
  (void)s;
  hl_config_t c;
  hl_config_defaults(&c);
  char notes[1024];
  assert_int_equal(hl_config_notes(&c, churn_uses, notes, sizeof notes), 0);
  assert_int_equal(hl_config_set(&c, "alloc", "system", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(hl_config_set(&c, "geometry", "classic", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(hl_config_notes(&c, churn_uses, notes, sizeof notes), 1);
  HAS(notes, "geometry=classic");
  /* the collector's knobs mean nothing without a collector */
  const uint64_t obj_uses = churn_uses | HL_OPT_BIT(HL_OPT_GC) | HL_OPT_BIT(HL_OPT_THRESHOLD) |
                            HL_OPT_BIT(HL_OPT_GC_UNTRACK);
  hl_config_defaults(&c);
  assert_int_equal(hl_config_set(&c, "gc-untrack", "off", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(hl_config_notes(&c, obj_uses, notes, sizeof notes), 0);
  assert_int_equal(hl_config_set(&c, "gc", "none", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(hl_config_notes(&c, obj_uses, notes, sizeof notes), 1);
  HAS(notes, "gc-untrack=off");
  assert_int_equal(hl_config_set(&c, "gc-untrack", "maybe", HL_SRC_FLAG, "flag", err, sizeof err), -1);
  HAS(err, "'gc-untrack'");
  HAS(err, "off, on");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_match_design),
      cmocka_unit_test(test_every_design_option_registered),
      cmocka_unit_test(test_bad_values_name_option_and_accepted),
      cmocka_unit_test(test_good_values),
      cmocka_unit_test(test_unknown_option_suggests),
      cmocka_unit_test(test_precedence),
      cmocka_unit_test(test_file_errors_have_line_numbers),
      cmocka_unit_test(test_env_errors),
      cmocka_unit_test(test_combination),
      cmocka_unit_test(test_availability),
      cmocka_unit_test(test_custom_geometry),
      cmocka_unit_test(test_sizes_range),
      cmocka_unit_test(test_notes_for_settings_without_effect),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
