/* Unit tests of the clock and process-memory readers (hl_measure.h,
 * base/rusage.c). They assert directions and orders of magnitude, never
 * durations: a loaded CI machine may run anything slowly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/mman.h>
#include <unistd.h>

#include "hl_measure.h"

#define MIB (1024ull * 1024ull)
#define REGION (64 * MIB)

static void test_clock_monotonic(void **state) {
  (void)state;
  uint64_t prev = hl_now_ns();
  assert_true(prev > 0);
  for (int i = 0; i < 1000000; i++) {
    uint64_t now = hl_now_ns();
    if (now < prev) fail_msg("clock went back from %llu to %llu", (unsigned long long)prev,
                             (unsigned long long)now);
    prev = now;
  }
}

static void test_cpu_time_grows(void **state) {
  (void)state;
  uint64_t before = hl_process_cpu_ns();
  /* Spin until the CPU clock moves, on work the compiler cannot drop; the
   * bound only keeps a broken reader from hanging the test. */
  volatile uint64_t sink = 0;
  uint64_t after = before;
  for (int round = 0; round < 100000 && after <= before; round++) {
    for (int i = 0; i < 100000; i++) sink += (uint64_t)i * (uint64_t)round;
    after = hl_process_cpu_ns();
  }
  (void)sink;
  assert_true(before > 0);
  assert_true(after > before);
}

/* Maps 64 MiB of fresh anonymous memory and writes one byte per page.
 * Transparent huge pages are refused for the region: with them the kernel
 * may fault it in as 32 huge pages, defeating the fault count below. */
static void test_rss_and_faults(void **state) {
  (void)state;
  long page = sysconf(_SC_PAGESIZE);
  assert_true(page > 0);
  unsigned char *mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(mem != MAP_FAILED);
#ifdef MADV_NOHUGEPAGE
  (void)madvise(mem, REGION, MADV_NOHUGEPAGE);
#endif

  size_t rss_before = hl_rss_current_bytes();
  uint64_t faults_before = hl_page_faults_minor();
  assert_true(rss_before > 0);
  assert_true(faults_before > 0);  /* the program's own start-up faulted */

  for (size_t off = 0; off < REGION; off += (size_t)page) mem[off] = (unsigned char)off | 1;

  size_t rss_after = hl_rss_current_bytes();
  size_t peak = hl_rss_peak_bytes();
  uint64_t faults_after = hl_page_faults_minor();

  /* At least half the region must show up as resident: the other half is
   * slack for pages the kernel takes back from the process under memory
   * pressure, and for the lag of its per-CPU RSS counters. */
  if (rss_after < rss_before + 32 * MIB)
    fail_msg("RSS went from %zu to %zu bytes after touching 64 MiB", rss_before, rss_after);
  assert_true(peak >= rss_after);
  /* One fault per page touched, half of them at least: 8192 with 4 KiB
   * pages (fewer pages of a larger size would each fault once too). */
  uint64_t pages = REGION / (uint64_t)page;
  if (faults_after - faults_before < pages / 2)
    fail_msg("%llu minor faults for %llu fresh pages",
             (unsigned long long)(faults_after - faults_before), (unsigned long long)pages);

  assert_int_equal(munmap(mem, REGION), 0);
  /* Not asserted: that the peak read now is >= the peak read above. The
   * kernel's counters are per-CPU and approximate, and the mark it keeps
   * may come out a few pages lower than a current RSS read earlier (seen on
   * Linux 6.18). It does keep the 64 MiB. */
  assert_true(hl_rss_peak_bytes() >= rss_before + 32 * MIB);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_clock_monotonic),
    cmocka_unit_test(test_cpu_time_grows),
    cmocka_unit_test(test_rss_and_faults),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
