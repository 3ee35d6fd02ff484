/* Tests of the raw allocator (alloc/raw.c, hl_raw.h): the PyMem_Raw*
 * guarantees on top of the C library (zero-byte requests, sizes above
 * PTRDIFF_MAX, calloc overflow, realloc to zero), and the overflow-checked
 * typed helpers HL_NEW and HL_RESIZE.
 *
 * The sizes that must fail are above PTRDIFF_MAX: were they passed on, ASan's
 * malloc would abort the test, so a pass also shows they never reached it.
 * They go through a volatile so that the compiler cannot fold them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "hl_raw.h"

static volatile size_t huge = (size_t)PTRDIFF_MAX + 1;

static void test_zero_bytes(void **state) {
  (void)state;
  char *a = hl_raw_malloc(0), *b = hl_raw_malloc(0);
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_not_equal(a, b);
  a[0] = 'x';                        /* a 1-byte block, usable */
  b[0] = 'y';
  assert_int_equal(a[0], 'x');
  hl_raw_free(a);
  hl_raw_free(b);

  char *c = hl_raw_calloc(0, 16), *d = hl_raw_calloc(16, 0), *e = hl_raw_calloc(0, 0);
  assert_non_null(c);
  assert_non_null(d);
  assert_non_null(e);
  assert_ptr_not_equal(c, d);
  assert_ptr_not_equal(d, e);
  assert_ptr_not_equal(c, e);
  assert_int_equal(c[0], 0);
  hl_raw_free(c);
  hl_raw_free(d);
  hl_raw_free(e);
}

static void test_too_large(void **state) {
  (void)state;
  assert_null(hl_raw_malloc(huge));
  assert_null(hl_raw_malloc(SIZE_MAX));
  char *p = hl_raw_malloc(8);
  assert_non_null(p);
  memcpy(p, "abcdefg", 8);
  assert_null(hl_raw_realloc(p, huge));
  assert_string_equal(p, "abcdefg");   /* a failed realloc leaves the block */
  hl_raw_free(p);
  assert_null(hl_raw_realloc(NULL, SIZE_MAX));
}

/* Not test_calloc / test_realloc: cmocka.h takes those names as macros. */
static void test_calloc_rules(void **state) {
  (void)state;
  /* Products that wrap around size_t, and ones that fit but exceed
   * PTRDIFF_MAX. */
  assert_null(hl_raw_calloc(SIZE_MAX, 2));
  assert_null(hl_raw_calloc(2, SIZE_MAX));
  assert_null(hl_raw_calloc((size_t)1 << 33, (size_t)1 << 33));
  assert_null(hl_raw_calloc(huge, 1));
  assert_null(hl_raw_calloc(1, huge));
  assert_null(hl_raw_calloc(((size_t)PTRDIFF_MAX / 8) + 1, 8));

  enum { N = 1000 };
  uint64_t *v = hl_raw_calloc(N, sizeof *v);
  assert_non_null(v);
  for (int i = 0; i < N; i++) assert_int_equal(v[i], 0);
  hl_raw_free(v);

  /* Reused memory is zeroed too, not only fresh pages. */
  for (int round = 0; round < 8; round++) {
    unsigned char *dirty = hl_raw_malloc(4096);
    assert_non_null(dirty);
    memset(dirty, 0xff, 4096);
    hl_raw_free(dirty);
    unsigned char *z = hl_raw_calloc(4096, 1);
    assert_non_null(z);
    for (int i = 0; i < 4096; i++) assert_int_equal(z[i], 0);
    hl_raw_free(z);
  }
}

static void test_realloc_rules(void **state) {
  (void)state;
  char *p = hl_raw_realloc(NULL, 0);   /* realloc(NULL, n) is malloc */
  assert_non_null(p);
  p[0] = 'a';
  char *q = hl_raw_realloc(p, 0);      /* not freed: resized to 1 byte */
  assert_non_null(q);
  assert_int_equal(q[0], 'a');
  q[0] = 'b';
  char *r = hl_raw_realloc(q, 100);
  assert_non_null(r);
  assert_int_equal(r[0], 'b');
  memset(r, 'c', 100);
  char *s = hl_raw_realloc(r, 0);
  assert_non_null(s);
  assert_int_equal(s[0], 'c');
  hl_raw_free(s);
  hl_raw_free(NULL);
}

typedef struct point { double x, y, z; } point_t;

static void test_new(void **state) {
  (void)state;
  assert_null(HL_NEW(point_t, SIZE_MAX));
  assert_null(HL_NEW(point_t, (size_t)PTRDIFF_MAX / sizeof(point_t) + 1));
  assert_null(HL_NEW(uint64_t, SIZE_MAX / 4));   /* would wrap to a small size */
  assert_null(HL_NEW(char, huge));
  long negative = -1;
  assert_null(HL_NEW(point_t, negative));

  int evaluated = 0;
  point_t *v = HL_NEW(point_t, (evaluated++, 10));
  assert_int_equal(evaluated, 1);      /* n once, not twice */
  assert_non_null(v);
  for (int i = 0; i < 10; i++) v[i] = (point_t){i, 2.0 * i, 3.0 * i};
  assert_true(v[9].z == 27.0);
  hl_raw_free(v);

  char *zero = HL_NEW(char, 0);
  assert_non_null(zero);
  hl_raw_free(zero);
}

static void test_resize(void **state) {
  (void)state;
  enum { N = 16 };
  int *v = HL_NEW(int, N);
  assert_non_null(v);
  for (int i = 0; i < N; i++) v[i] = i * i;

  assert_null(HL_RESIZE(v, int, SIZE_MAX));
  assert_null(HL_RESIZE(v, int, (size_t)PTRDIFF_MAX / sizeof(int) + 1));
  assert_null(HL_RESIZE(v, int, -1));
  /* v is untouched and still ours: read it, then grow it. */
  for (int i = 0; i < N; i++) assert_int_equal(v[i], i * i);

  int *w = HL_RESIZE(v, int, 100 * N);
  assert_non_null(w);
  v = w;
  for (int i = 0; i < N; i++) assert_int_equal(v[i], i * i);
  for (int i = N; i < 100 * N; i++) v[i] = -i;
  w = HL_RESIZE(v, int, N / 2);        /* shrinking keeps the prefix */
  assert_non_null(w);
  v = w;
  for (int i = 0; i < N / 2; i++) assert_int_equal(v[i], i * i);
  w = HL_RESIZE(v, int, 0);
  assert_non_null(w);
  hl_raw_free(w);

  point_t *p = HL_RESIZE((point_t *)NULL, point_t, 3);   /* from nothing */
  assert_non_null(p);
  p[2].z = 1.5;
  hl_raw_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_zero_bytes),
    cmocka_unit_test(test_too_large),
    cmocka_unit_test(test_calloc_rules),
    cmocka_unit_test(test_realloc_rules),
    cmocka_unit_test(test_new),
    cmocka_unit_test(test_resize),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
