/* Tests of the OS layer (alloc/os.c): aligned mappings are aligned, zeroed
 * and writable for sizes below, equal to and above their alignment; discard
 * keeps the range mapped and zeroes it; bad arguments and impossible sizes
 * return NULL; failure injection hits exactly the armed call, also when
 * several threads map at once; the counters follow maps and unmaps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/syscall.h>
#include <linux/mempolicy.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "alloc_internal.h"
#include "hl_atomic.h"
#include "hl_measure.h"

static void assert_all_bytes(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) fail_msg("byte %zu of %zu is 0x%02x, expected 0x%02x", i, n, p[i], v);
}

static void test_page_size(void **state) {
  (void)state;
  assert_int_equal(hl_os_page_size(), (size_t)sysconf(_SC_PAGESIZE));
  assert_int_equal(hl_os_page_size(), hl_os_page_size());
}

static void test_aligned_maps(void **state) {
  (void)state;
  size_t pg = hl_os_page_size();
  struct { size_t size, align; } cases[] = {
    {pg, pg},              {3 * pg, pg},            {pg, 64 * 1024},
    {64 * 1024, 64 * 1024}, {256 * 1024, 256 * 1024}, {256 * 1024, 1 << 20},
    {1 << 20, 1 << 20},    {3 << 20, 1 << 20},      {5 * pg, 2 << 20},
    {1 << 20, 4 << 20},    {100, pg},               {pg + 1, 16 * 1024},
  };
  for (size_t c = 0; c < HL_ARRAY_LEN(cases); c++) {
    size_t size = cases[c].size, align = cases[c].align;
    uint64_t maps0 = hl_os_maps(), bytes0 = hl_os_mapped_bytes();
    unsigned char *p = hl_os_map_aligned(size, align);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p & (align - 1), 0);
    assert_int_equal(hl_os_maps(), maps0 + 1);
    size_t rounded = (size + pg - 1) & ~(pg - 1);
    assert_int_equal(hl_os_mapped_bytes(), bytes0 + rounded);
    assert_all_bytes(p, rounded, 0);
    memset(p, 0xa5, rounded);           /* writable to the last page byte */
    assert_all_bytes(p, rounded, 0xa5);
    hl_os_unmap(p, size);
    assert_int_equal(hl_os_mapped_bytes(), bytes0);
  }
}

/* Many aligned maps alive at once land on distinct, aligned ranges (the
 * trimmed heads and tails were really given back: the ranges do not
 * overlap and the counter holds exactly the live ones). */
static void test_many_live_maps(void **state) {
  (void)state;
  enum { N = 32 };
  const size_t size = 256 * 1024, align = 1 << 20;
  unsigned char *p[N];
  uint64_t bytes0 = hl_os_mapped_bytes();
  for (int i = 0; i < N; i++) {
    p[i] = hl_os_map_aligned(size, align);
    assert_non_null(p[i]);
    assert_int_equal((uintptr_t)p[i] & (align - 1), 0);
    memset(p[i], i + 1, size);
  }
  assert_int_equal(hl_os_mapped_bytes(), bytes0 + (uint64_t)N * size);
  for (int i = 0; i < N; i++) {
    assert_all_bytes(p[i], size, (unsigned char)(i + 1));
    for (int j = 0; j < i; j++) assert_true(p[i] + size <= p[j] || p[j] + size <= p[i]);
  }
  for (int i = 0; i < N; i++) hl_os_unmap(p[i], size);
  assert_int_equal(hl_os_mapped_bytes(), bytes0);
}

static void test_bad_requests(void **state) {
  (void)state;
  uint64_t maps0 = hl_os_maps(), bytes0 = hl_os_mapped_bytes();
  size_t pg = hl_os_page_size();
  errno = 0;
  assert_null(hl_os_map_aligned(0, pg));
  assert_int_equal(errno, EINVAL);
  assert_null(hl_os_map_aligned(pg, 3 * pg));           /* not a power of two */
  assert_null(hl_os_map_aligned(SIZE_MAX, pg));         /* size + align wraps */
  assert_null(hl_os_map_aligned(SIZE_MAX - pg, 1 << 20));
  /* Larger than any user address space: the kernel says no, we return NULL. */
  errno = 0;
  assert_null(hl_os_map_aligned((size_t)1 << 60, pg));
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(hl_os_maps(), maps0);
  assert_int_equal(hl_os_mapped_bytes(), bytes0);
  hl_os_unmap(NULL, pg);                                /* no-ops */
  hl_os_unmap(&maps0, 0);
}

static void test_discard(void **state) {
  (void)state;
  const size_t size = 1 << 20;
  unsigned char *p = hl_os_map_aligned(size, size);
  assert_non_null(p);
  memset(p, 0x5a, size);
  uint64_t bytes0 = hl_os_mapped_bytes();
  assert_int_equal(hl_os_discard(p, size), 0);
  assert_int_equal(hl_os_mapped_bytes(), bytes0);       /* still mapped */
  assert_all_bytes(p, size, 0);
  memset(p, 0x33, size);                                /* still writable */
  assert_all_bytes(p, size, 0x33);

  /* Part of a range: only that part is zeroed. */
  size_t pg = hl_os_page_size();
  assert_int_equal(hl_os_discard(p + pg, 2 * pg), 0);
  assert_all_bytes(p, pg, 0x33);
  assert_all_bytes(p + pg, 2 * pg, 0);
  assert_all_bytes(p + 3 * pg, size - 3 * pg, 0x33);

  assert_int_equal(hl_os_discard(p + 1, pg), -EINVAL);  /* unaligned start */
  hl_os_unmap(p, size);
}

static void test_fail_nth_map(void **state) {
  (void)state;
  size_t pg = hl_os_page_size();
  for (unsigned n = 1; n <= 5; n++) {
    hl_os_fail_nth_map(n);
    uint64_t maps0 = hl_os_maps();
    for (unsigned call = 1; call <= 7; call++) {
      void *p = hl_os_map_aligned(pg, 64 * 1024);
      if (call == n) {
        assert_null(p);
        assert_int_equal(errno, ENOMEM);
      } else {
        assert_non_null(p);
        hl_os_unmap(p, pg);
      }
    }
    assert_int_equal(hl_os_maps(), maps0 + 6);          /* failures are not maps */
  }
  /* Disarming before the count runs out: nothing fails. */
  hl_os_fail_nth_map(3);
  void *a = hl_os_map_aligned(pg, pg);
  hl_os_fail_nth_map(0);
  for (int i = 0; i < 5; i++) {
    void *p = hl_os_map_aligned(pg, pg);
    assert_non_null(p);
    hl_os_unmap(p, pg);
  }
  assert_non_null(a);
  hl_os_unmap(a, pg);
}

/* Threads map at once with the countdown armed: exactly one call fails. */
enum { FAIL_THREADS = 4, FAIL_CALLS = 64 };
static uint64_t failures_seen;

static void *mapping_thread(void *arg) {
  (void)arg;
  size_t pg = hl_os_page_size();
  for (int i = 0; i < FAIL_CALLS; i++) {
    void *p = hl_os_map_aligned(pg, pg);
    if (p == NULL) hl_atomic_inc_u64(&failures_seen);
    else hl_os_unmap(p, pg);
  }
  return NULL;
}

/* NUMA placement: the node count agrees with sysfs, and a binding to node 0
 * (present on every machine) is what the kernel then reports for the range.
 * A bad node is refused with an error, never a crash. */
static void test_numa_binding(void **state) {
  (void)state;
  unsigned nodes = hl_os_numa_nodes();
  assert_true(nodes >= 1);
  size_t size = 4 * hl_os_page_size();
  char *p = hl_os_map_aligned(size, hl_os_page_size());
  assert_non_null(p);
  assert_int_equal(hl_os_bind_node(p, size, 0), 0);
  int mode = -1;
  unsigned long mask = 0;
  assert_int_equal(syscall(SYS_get_mempolicy, &mode, &mask, 64ul, p, MPOL_F_ADDR), 0);
  assert_int_equal(mode, MPOL_PREFERRED);
  assert_int_equal(mask, 1ul);
  memset(p, 1, size);                     /* the pages fault in under the policy */
  assert_int_equal(hl_os_bind_local(p, size), 0);
  assert_int_equal(hl_os_bind_node(p, size, 64), -EINVAL);
  hl_os_unmap(p, size);
}

/* The VmFlags line of the mapping that holds p, from /proc/self/smaps
 * ("" when not found). */
static void vm_flags_of(const void *p, char *out, size_t cap) {
  out[0] = '\0';
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return;
  char line[512];
  bool in = false;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
      continue;
    }
    if (in && strncmp(line, "VmFlags:", 8) == 0) {
      size_t n = strlen(line + 8);
      n = n < cap ? n : cap - 1;
      memcpy(out, line + 8, n);
      out[n] = '\0';
      break;
    }
  }
  fclose(f);
}

/* --arena-huge=on's system calls: the huge page size is a power of two
 * above the page (or 0: no THP, and then nothing to check); an aligned
 * range advised carries the kernel's "hg" flag, and a touched one may be
 * backed by huge pages (not asserted: THP may be "never", or memory too
 * fragmented to find one); the smaps_rollup figure parses. */
static void test_huge_pages(void **state) {
  (void)state;
  size_t hp = hl_os_huge_page_size();
  assert_int_equal(hp, hl_os_huge_page_size());   /* read once, the same after */
  if (!hp) {
    assert_int_equal(access("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", R_OK), -1);
    skip();
  }
  assert_true(hp > hl_os_page_size());
  assert_int_equal(hp & (hp - 1), 0);
  char *p = hl_os_map_aligned(2 * hp, hp);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % hp, 0);
  char flags[256];
  int rc = hl_os_advise_huge(p, 2 * hp);
  if (rc == 0) {
    vm_flags_of(p, flags, sizeof flags);
    if (!strstr(flags, " hg")) fail_msg("advised range without the hg flag: '%s'", flags);
  } else {
    assert_int_equal(rc, -EINVAL);   /* a kernel without THP in madvise */
  }
  memset(p, 1, 2 * hp);
  uint64_t huge = hl_rss_huge_bytes();
  assert_int_equal(huge % hl_os_page_size(), 0);
  hl_os_unmap(p, 2 * hp);
  /* a range not advised has no such flag */
  char *q = hl_os_map_aligned(hp, hp);
  assert_non_null(q);
  vm_flags_of(q, flags, sizeof flags);
  assert_null(strstr(flags, " hg"));
  hl_os_unmap(q, hp);
}

static void test_fail_nth_map_threads(void **state) {
  (void)state;
  for (unsigned n = 1; n <= FAIL_THREADS * FAIL_CALLS; n += 37) {
    failures_seen = 0;
    uint64_t maps0 = hl_os_maps(), bytes0 = hl_os_mapped_bytes();
    hl_os_fail_nth_map(n);
    pthread_t t[FAIL_THREADS];
    for (int i = 0; i < FAIL_THREADS; i++)
      assert_int_equal(pthread_create(&t[i], NULL, mapping_thread, NULL), 0);
    for (int i = 0; i < FAIL_THREADS; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(failures_seen, 1);
    assert_int_equal(hl_os_maps(), maps0 + FAIL_THREADS * FAIL_CALLS - 1);
    assert_int_equal(hl_os_mapped_bytes(), bytes0);
  }
  hl_os_fail_nth_map(0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_page_size),
    cmocka_unit_test(test_aligned_maps),
    cmocka_unit_test(test_many_live_maps),
    cmocka_unit_test(test_bad_requests),
    cmocka_unit_test(test_discard),
    cmocka_unit_test(test_fail_nth_map),
    cmocka_unit_test(test_numa_binding),
    cmocka_unit_test(test_fail_nth_map_threads),
    cmocka_unit_test(test_huge_pages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
