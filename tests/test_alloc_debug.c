/* alloc/debug.c: the debug hooks (alloc-debug=on, CPython's
 * PYTHONMALLOC=debug) over both API families.
 *
 * First normal use: every entry point of the raw family (hl_raw_*) and of the
 * object family (hl_pool_*, hl_alloc_*) works, new memory reads 0xCD, calloc
 * zeroes, realloc keeps the contents, freed pool memory reads 0xDD, and the
 * user pointer keeps the geometry's alignment. Then one death test per
 * detection: a child process (fork) does the bad thing with its stderr in a
 * temporary file; the parent checks that the child died by SIGABRT and that
 * the report names the error, the address as %p prints it, the size and the
 * serial.
 *
 * The geometry comes from HEAPLAB_* variables, so CTest can run the file once
 * per geometry (the header grows with the alignment); alloc-debug is turned
 * on here whatever the environment says.
 *
 * Under AddressSanitizer one death test is skipped: a second free of a raw
 * block reads the header of memory that the C library (ASan's, there) has
 * taken back, and ASan reports that read as a heap-use-after-free before the
 * hooks can report the double free. The other bad accesses stay inside
 * memory that is ours to touch (the guards are part of the block underneath;
 * pool arenas are our own mappings, which ASan does not poison), so they run
 * under ASan too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc_internal.h"
#include "hl_alloc.h"
#include "hl_raw.h"
#include "pool.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

extern char **environ;
const hl_pools_t *hli_alloc_pools(void);

static hl_config_t cfg;
static hl_geometry_t geo;

static void init_alloc(bool debug) {
  char err[256];
  hl_alloc_reset();
  hl_config_t c = cfg;
  c.alloc_debug = debug;
  if (hl_alloc_init(&c, err, sizeof err) != 0) fail_msg("init: %s", err);
}

static int setup(void **st) {
  (void)st;
  init_alloc(true);
  return 0;
}

static bool all_bytes(const void *p, size_t n, unsigned char v) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != v) return false;
  return true;
}

/* The header is max(64, alignment) bytes and the trailing guard 8. */
static size_t overhead(void) { return (geo.alignment > 64 ? geo.alignment : 64) + 8; }

/* ---- normal use -------------------------------------------------------------- */

typedef struct {
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void (*free)(void *);
} family_t;

/* The user pointer keeps the geometry's alignment in a pool block; a block
 * that went to the C library keeps malloc's 16, as without the hooks. */
static void assert_aligned(const void *p) {
  size_t align = hl_pool_owns(p) ? geo.alignment : 16;
  if ((uintptr_t)p % align != 0) fail_msg("%p is not aligned to %zu", p, align);
}

static void exercise(const family_t *f) {
  /* sizes around the pool threshold: a block that fits, one that spills over
   * it once the overhead is added, and one above it */
  size_t sizes[] = {1,    24,    geo.max_size - overhead(), geo.max_size - 8, geo.max_size + 1,
                    5000, 20000, 40000};   /* large=medium: span blocks, or the raw layer's */
  for (size_t i = 0; i < HL_ARRAY_LEN(sizes); i++) {
    size_t n = sizes[i];
    unsigned char *p = f->malloc(n);
    assert_non_null(p);
    assert_aligned(p);
    if (!all_bytes(p, n, 0xCD)) fail_msg("size %zu: new memory is not 0xCD", n);
    for (size_t k = 0; k < n; k++) p[k] = (unsigned char)(k * 7 + 1);
    /* grow: the old bytes move with it, the new ones are clean */
    unsigned char *q = f->realloc(p, 2 * n + 3);
    assert_non_null(q);
    assert_aligned(q);
    for (size_t k = 0; k < n; k++)
      if (q[k] != (unsigned char)(k * 7 + 1)) fail_msg("size %zu: byte %zu lost by realloc", n, k);
    assert_true(all_bytes(q + n, n + 3, 0xCD));
    /* shrink: the prefix stays */
    unsigned char *r = f->realloc(q, n / 2 + 1);
    assert_non_null(r);
    for (size_t k = 0; k < n / 2 + 1 && k < n; k++)
      assert_int_equal(r[k], (unsigned char)(k * 7 + 1));
    f->free(r);

    unsigned char *z = f->calloc(n, 3);
    assert_non_null(z);
    assert_true(all_bytes(z, 3 * n, 0));
    f->free(z);
  }
  /* zero bytes: distinct, non-NULL blocks, freed like the others */
  void *a = f->malloc(0), *b = f->malloc(0), *c = f->calloc(0, 8);
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(c);
  assert_ptr_not_equal(a, b);
  void *d = f->realloc(a, 0);
  assert_non_null(d);
  f->free(d);
  f->free(b);
  f->free(c);
  f->free(NULL);
  void *e = f->realloc(NULL, 10);       /* realloc(NULL, n) is malloc */
  assert_non_null(e);
  f->free(e);
  /* sizes that cannot be served fail cleanly */
  volatile size_t huge = (size_t)PTRDIFF_MAX;
  assert_null(f->malloc(huge));
  assert_null(f->calloc(huge, 2));
  void *g = f->malloc(8);
  assert_null(f->realloc(g, huge));     /* and g is untouched */
  f->free(g);
}

static void test_object_family(void **st) {
  (void)st;
  family_t f = {hl_pool_malloc, hl_pool_calloc, hl_pool_realloc, hl_pool_free};
  exercise(&f);
  assert_int_equal(hli_pools_validate(hli_alloc_pools()), 0);
  hl_alloc_stats_t s;
  hl_alloc_stats(&s);
  assert_int_equal(s.blocks_in_use, 0);
}

static void test_raw_family(void **st) {
  (void)st;
  family_t f = {hl_raw_malloc, hl_raw_calloc, hl_raw_realloc, hl_raw_free};
  exercise(&f);
  hl_alloc_stats_t s;
  hl_alloc_stats(&s);
  assert_int_equal(s.blocks_in_use, 0);   /* raw blocks never go to the pools */
}

/* The object family's debug blocks come from the pools (with the overhead)
 * while they fit; hl_alloc_* goes through them. */
static void test_blocks_live_in_the_pools(void **st) {
  (void)st;
  char *p = hl_alloc_malloc(16);
  assert_true(hl_pool_owns(p));
  hl_alloc_stats_t s;
  hl_alloc_stats(&s);
  size_t want = (16 + overhead() + geo.alignment - 1) & ~(geo.alignment - 1);
  assert_int_equal(s.blocks_in_use, 1);
  assert_int_equal(s.bytes_in_use, want);
  p = hl_alloc_realloc(p, 40);
  assert_true(hl_pool_owns(p));
  hl_alloc_free(p);
  /* spills past the classes: into the raw layer underneath, or with
   * large=medium a huge block (huge.c) */
  char *big = hl_alloc_malloc(geo.max_size);
  assert_true(hl_pool_owns(big) == (geo.max_size > geo.threshold));
  hl_alloc_free(big);
}

/* A freed pool block reads DEAD until it is handed out again. */
static void test_freed_memory_is_dead(void **st) {
  (void)st;
  void *hold = hl_pool_malloc(100);        /* keeps the pool, and its arena, in use */
  unsigned char *p = hl_pool_malloc(100);
  memset(p, 'x', 100);
  hl_pool_free(p);
  assert_true(all_bytes(p, 100, 0xDD));
  hl_pool_free(hold);
}

/* Turned off again, the same request costs no overhead. */
static void test_off_after_reset(void **st) {
  (void)st;
  init_alloc(false);
  char *p = hl_pool_malloc(16);
  hl_alloc_stats_t s;
  hl_alloc_stats(&s);
  assert_int_equal(s.bytes_in_use, (16 + geo.alignment - 1) & ~(geo.alignment - 1));
  hl_pool_free(p);
  char *r = hl_raw_malloc(16);
  hl_raw_free(r);
  init_alloc(true);
}

static void test_config(void **st) {
  (void)st;
  char err[512];
  hl_config_t c;
  hl_config_defaults(&c);
  assert_int_equal(hl_config_set(&c, "alloc-debug", "on", HL_SRC_FLAG, "flag", err, sizeof err), 0);
  assert_int_equal(hl_config_check_available(&c, HL_OPT_BIT(HL_OPT_ALLOC_DEBUG), err, sizeof err), 0);
  assert_int_equal(hl_alloc_check_config(&c, err, sizeof err), 0);
  c.alloc = HL_ALLOC_SYSTEM;
  assert_int_equal(hl_alloc_check_config(&c, err, sizeof err), -1);
  if (!strstr(err, "alloc-debug=on needs alloc=pool") || !strstr(err, "'alloc-debug'"))
    fail_msg("message: %s", err);
  /* init refuses it too, without touching the state */
  hl_alloc_reset();
  err[0] = '\0';
  assert_true(hl_alloc_init(&c, err, sizeof err) < 0);
  assert_non_null(strstr(err, "needs alloc=pool"));
  assert_false(hl_alloc_state.initialized);
  init_alloc(true);
}

/* ---- death tests --------------------------------------------------------------- */

/* Runs act(p) in a child whose stderr goes to a file; the child must die by
 * SIGABRT and its report contain every word (NULL-terminated). */
static void expect_abort(void (*act)(void *), void *p, const char *const *words) {
  char path[] = "/tmp/heaplab-alloc-debug-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* cmocka catches these to fail a test and go on with the next one, which
     * the child must not do: it must die as the hooks make it die */
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (size_t i = 0; i < HL_ARRAY_LEN(sigs); i++) signal(sigs[i], SIG_DFL);
    dup2(fd, 2);
    act(p);
    _exit(0);    /* the hooks missed it */
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  char out[8192];
  ssize_t n = pread(fd, out, sizeof out - 1, 0);
  close(fd);
  out[n > 0 ? n : 0] = '\0';
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
    fail_msg("the child was not aborted (status %#x); its stderr:\n%s", status, out);
  for (size_t i = 0; words[i]; i++)
    if (!strstr(out, words[i])) fail_msg("the report lacks '%s':\n%s", words[i], out);
}

static char addr[32], size_text[64];

static void expect_report(void (*act)(void *), void *p, const char *kind, size_t size,
                          const char *extra) {
  snprintf(addr, sizeof addr, "%p", p);
  snprintf(size_text, sizeof size_text, "requested size: %zu bytes", size);
  const char *const words[] = {"heaplab alloc-debug: ", kind, addr, size_text, "serial: ",
                               extra ? extra : "serial", NULL};
  expect_abort(act, p, words);
}

static void pool_free(void *p) { hl_pool_free(p); }
static void raw_free(void *p) { hl_raw_free(p); }
static void alloc_free(void *p) { hl_alloc_free(p); }
static void pool_realloc(void *p) { (void)hl_pool_realloc(p, 200); }
static void raw_realloc(void *p) { (void)hl_raw_realloc(p, 200); }

static void test_double_free(void **st) {
  (void)st;
  /* A live block in the same pool keeps the arena mapped: were it the last
   * one, arena-keep-kib=0 would unmap the arena and the second free would
   * fault reading the header (the limit debug.c documents). */
  void *hold = hl_pool_malloc(40);
  void *p = hl_pool_malloc(40);
  hl_pool_free(p);
  expect_report(pool_free, p, "double free", 40, "freed already");
  expect_report(pool_realloc, p, "realloc of a freed block", 40, NULL);
  hl_pool_free(hold);
}

static void test_double_free_raw(void **st) {
  (void)st;
  if (UNDER_ASAN) skip();     /* see the top: ASan sees the read of freed memory first */
  void *p = hl_raw_malloc(48);
  hl_raw_free(p);
  expect_report(raw_free, p, "double free", 48, "freed already");
}

static void overrun_by_one(void *p) {
  ((char *)p)[33] = 'X';     /* the first byte past 33 requested */
  hl_alloc_free(p);
}

static void underrun_by_one(void *p) {
  ((char *)p)[-1] = 'X';
  hl_alloc_free(p);
}

static void test_overrun(void **st) {
  (void)st;
  char *p = hl_alloc_malloc(33);
  expect_report(overrun_by_one, p, "buffer overrun", 33, "p+33, 1 past the end");
  hl_alloc_free(p);                   /* the parent's copy is intact */
  char *r = hl_raw_malloc(2000);
  r[2000] = 'X';
  expect_report(raw_free, r, "buffer overrun", 2000, "p+2000");
  r[2000] = (char)0xFD;               /* repaired, it frees */
  hl_raw_free(r);
}

/* large=medium's span blocks (tens of KiB, several pools): every check as
 * in a pool block, at a size of each power of two above the pools' own. */
static void overrun_span(void *p) {
  size_t n = hli_debug_size(p);
  ((char *)p)[n] = 'X';
  hl_alloc_free(p);
}

/* A fresh debug block of n bytes: aligned, filled with 0xCD, its overrun
 * and underrun reported (and its guard byte put back). */
static void check_fill_and_guards(char *p, size_t n) {
  assert_aligned(p);
  assert_true(all_bytes((unsigned char *)p, n, 0xCD));
  char where[64];
  snprintf(where, sizeof where, "p+%zu, 1 past the end", n);
  expect_report(overrun_span, p, "buffer overrun", n, where);
  p[-1] = 0;
  expect_report(pool_free, p, "buffer underrun", n, "first bad leading byte at");
  p[-1] = (char)0xFD;
}

static void test_span_blocks(void **st) {
  (void)st;
  if (geo.nkinds == 1) skip();   /* no spans: large=libc */
  for (size_t n = geo.pool_max + 1; n + overhead() <= geo.max_size; n = 2 * n + 7) {
    void *hold = hl_pool_malloc(n);   /* keeps the span mapped for the double free */
    char *p = hl_pool_malloc(n);
    assert_true(hl_pool_owns(p));
    assert_true(hli_pool_of(hli_alloc_pools(), p)->szidx >= geo.span_first);
    check_fill_and_guards(p, n);
    hl_pool_free(p);
    assert_true(all_bytes((unsigned char *)p, n, 0xDD));
    expect_report(pool_free, p, "double free", n, "freed already");
    hl_pool_free(hold);
  }
  assert_int_equal(hli_pools_validate(hli_alloc_pools()), 0);
}

/* large=medium's huge blocks (a mapping each, cached when freed): every
 * check as in a pool block. The freed mapping stays in the cache, so the
 * double free reads a header that is still there. */
static void test_huge_blocks(void **st) {
  (void)st;
  if (geo.max_size == geo.threshold) skip();   /* large=libc: no huge blocks */
  size_t sizes[] = {geo.max_size + 1, 300000, (size_t)1 << 20};
  for (size_t i = 0; i < HL_ARRAY_LEN(sizes); i++) {
    size_t n = sizes[i];
    char *p = hl_pool_malloc(n);
    assert_true(hl_pool_owns(p));
    assert_true(hl_pool_block_size(p - overhead() + 8) >= n + overhead());
    check_fill_and_guards(p, n);
    /* realloc moves it (the hooks always move), the old one reads dead */
    char *q = hl_pool_realloc(p, 2 * n);
    assert_true(hl_pool_owns(q));
    assert_true(all_bytes((unsigned char *)p, n, 0xDD));
    expect_report(pool_free, p, "double free", n, "freed already");
    hl_pool_free(q);
    expect_report(pool_free, q, "double free", 2 * n, "freed already");
  }
  hl_alloc_stats_t s;
  hl_alloc_stats(&s);
  assert_int_equal(s.huge_blocks, 0);
  assert_true(s.huge_cache_blocks > 0);
}

static void test_underrun(void **st) {
  (void)st;
  char *p = hl_alloc_malloc(33);
  expect_report(underrun_by_one, p, "buffer underrun", 33, "first bad leading byte at");
  hl_alloc_free(p);
  char *r = hl_raw_malloc(17);
  r[-3] = 0;
  expect_report(raw_free, r, "buffer underrun", 17, "p-3\n");
  r[-3] = (char)0xFD;
  hl_raw_free(r);
}

static void test_family_mismatch(void **st) {
  (void)st;
  void *r = hl_raw_malloc(32);
  expect_report(pool_free, r, "API family mismatch", 32, "allocated with: raw family");
  expect_report(alloc_free, r, "API family mismatch", 32, "freed with: object family");
  void *o = hl_pool_malloc(32);
  expect_report(raw_free, o, "API family mismatch", 32, "allocated with: object family");
  expect_report(raw_realloc, o, "API family mismatch", 32, "reallocated with: raw family");
  hl_raw_free(r);
  hl_pool_free(o);
}

static void test_pointer_not_allocated(void **st) {
  (void)st;
  char *p = hl_pool_malloc(geo.max_size - overhead());   /* the largest that fits */
  assert_true(hl_pool_owns(p));
  /* inside a live block: in a pool, with no header of its own */
  snprintf(addr, sizeof addr, "%p", (void *)(p + 16));
  const char *const inside[] = {"free of a pointer not allocated by heaplab", addr,
                                "size: unknown", "serial: unknown", "magic", NULL};
  expect_abort(pool_free, p + 16, inside);
  /* the first bytes of an arena: the header would lie outside it, unread */
  char *arena = (char *)((uintptr_t)p & ~(uintptr_t)(geo.arena_size - 1));
  snprintf(addr, sizeof addr, "%p", (void *)(arena + 16));
  const char *const start[] = {"free of a pointer not allocated by heaplab", addr,
                               "were not read", NULL};
  expect_abort(pool_free, arena + 16, start);
  /* and realloc says so too */
  snprintf(addr, sizeof addr, "%p", (void *)(p + 32));
  const char *const re[] = {"realloc of a pointer not allocated by heaplab", addr,
                            "hl_pool_realloc", NULL};
  expect_abort(pool_realloc, p + 32, re);
  hl_pool_free(p);
}

static void test_realloc_of_corrupted_block(void **st) {
  (void)st;
  char *p = hl_pool_malloc(24);
  p[24] = 0;
  expect_report(pool_realloc, p, "buffer overrun", 24, "in hl_pool_realloc");
  p[24] = (char)0xFD;
  p[-2] = 0;
  expect_report(pool_realloc, p, "buffer underrun", 24, "p-2");
  p[-2] = (char)0xFD;
  hl_pool_free(p);
}

int main(void) {
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "test_alloc_debug: %s\n", err);
    return 2;
  }
  cfg.alloc = HL_ALLOC_POOL;
  cfg.threads = 1;
  cfg.alloc_debug = true;
  if (hl_alloc_check_config(&cfg, err, sizeof err) != 0 ||
      hl_alloc_init(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "test_alloc_debug: %s\n", err);
    return 2;
  }
  geo = hli_alloc_pools()->g;
  fprintf(stderr, "test_alloc_debug: geometry %zu,%zu,%zu,%zu, largest block %zu%s\n",
          geo.alignment, geo.threshold, geo.pool_size, geo.arena_size, geo.max_size,
          UNDER_ASAN ? ", under ASan" : "");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_object_family, setup),
      cmocka_unit_test_setup(test_raw_family, setup),
      cmocka_unit_test_setup(test_blocks_live_in_the_pools, setup),
      cmocka_unit_test_setup(test_freed_memory_is_dead, setup),
      cmocka_unit_test_setup(test_off_after_reset, setup),
      cmocka_unit_test_setup(test_config, setup),
      cmocka_unit_test_setup(test_double_free, setup),
      cmocka_unit_test_setup(test_double_free_raw, setup),
      cmocka_unit_test_setup(test_overrun, setup),
      cmocka_unit_test_setup(test_underrun, setup),
      cmocka_unit_test_setup(test_span_blocks, setup),
      cmocka_unit_test_setup(test_huge_blocks, setup),
      cmocka_unit_test_setup(test_family_mismatch, setup),
      cmocka_unit_test_setup(test_pointer_not_allocated, setup),
      cmocka_unit_test_setup(test_realloc_of_corrupted_block, setup),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  hl_alloc_reset();
  return failed;
}
