/* Tests of the radix map over 16 KiB grains (alloc/radix.c). Most tests set
 * 1 MiB ranges, as pool.c sets an arena's pools; test_grains works at the
 * grain itself.
 *
 *   - grains: a range maps every byte of every grain to its word and no
 *     byte outside; ranges of one grain side by side keep their own words;
 *     a range across a leaf boundary (256 MiB) sets both leaves;
 *   - set/get/clear at the lowest range, the highest 48-bit one and typical
 *     heap addresses: every byte of a range maps to it, the bytes around it
 *     map to 0 or to the neighbour;
 *   - keys on both sides of every power of two (every leaf boundary);
 *   - NULL, small integers, addresses at or above 2^48 (including ones whose
 *     low 48 bits name a set range) and ~0 map to 0; bad ranges and a value
 *     of 0 are refused;
 *   - -ENOMEM when the OS layer refuses a leaf, with no entry changed, also
 *     for a range whose second leaf is refused, and the map still works
 *     afterwards; a set that needs no new leaf maps nothing;
 *   - thousands of random sets and clears against a reference model;
 *   - readers looking up stable ranges while a writer sets and clears others
 *     in the same leaves and creates new leaves (run it under TSan).
 *
 * usage: test_radix [READERS] [ITER]   (defaults: 2 readers, 20000 writer steps)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "alloc_internal.h"
#include "hl_atomic.h"

#define SHIFT 20
#define ARENA ((uintptr_t)1 << SHIFT)
#define KEY_BITS (48 - SHIFT)
#define GRAIN ((uintptr_t)1 << HLI_RADIX_GRAIN_SHIFT)
#define LEAF_SPAN ((uintptr_t)1 << 28)   /* bytes one leaf covers */
#define ADDR_LIMIT ((uintptr_t)1 << 48)

static unsigned g_readers = 2;
static unsigned g_iter = 20000;

/* Stand-ins for arena objects: the tree stores and returns the pointers and
 * never dereferences them. */
static char objs[8192];
#define OBJ(i) ((void *)&objs[(i) % sizeof objs])

/* The map at the granularity of the tests below: 1 MiB ranges of pointer
 * words. */
static void *get(uintptr_t addr) { return (void *)hl_radix_get(addr); }
static int set(uintptr_t base, void *v) { return hl_radix_set(base, ARENA, (uintptr_t)v); }
static void clear(uintptr_t base) { hl_radix_clear(base, ARENA); }

/* first byte, last byte and one in the middle: all map to the arena */
static void check_arena(uintptr_t base, void *arena) {
  assert_ptr_equal(get(base), arena);
  assert_ptr_equal(get(base + ARENA - 1), arena);
  assert_ptr_equal(get(base + ARENA / 2 + 12345), arena);
}

static void test_grains(void **state) {
  (void)state;
  const uintptr_t b = (uintptr_t)0x7f2234500000;
  /* three single grains side by side, then a four-grain range after them */
  for (uintptr_t k = 0; k < 3; k++)
    assert_int_equal(hl_radix_set(b + k * GRAIN, GRAIN, 0x1000 * (k + 1) + k), 0);
  assert_int_equal(hl_radix_set(b + 3 * GRAIN, 4 * GRAIN, 0xabc0), 0);
  for (uintptr_t k = 0; k < 3; k++) {
    assert_int_equal(hl_radix_get(b + k * GRAIN), 0x1000 * (k + 1) + k);
    assert_int_equal(hl_radix_get(b + k * GRAIN + GRAIN - 1), 0x1000 * (k + 1) + k);
  }
  for (uintptr_t off = 3 * GRAIN; off < 7 * GRAIN; off += 1000)
    assert_int_equal(hl_radix_get(b + off), 0xabc0);
  assert_int_equal(hl_radix_get(b - 1), 0);
  assert_int_equal(hl_radix_get(b + 7 * GRAIN), 0);
  /* a new word for part of a range: the rest keeps its own */
  assert_int_equal(hl_radix_set(b + 4 * GRAIN, GRAIN, 0x5550), 0);
  assert_int_equal(hl_radix_get(b + 3 * GRAIN), 0xabc0);
  assert_int_equal(hl_radix_get(b + 4 * GRAIN + 17), 0x5550);
  assert_int_equal(hl_radix_get(b + 5 * GRAIN), 0xabc0);
  hl_radix_clear(b + GRAIN, 5 * GRAIN);
  assert_int_equal(hl_radix_get(b), 0x1000);
  for (uintptr_t k = 1; k < 6; k++) assert_int_equal(hl_radix_get(b + k * GRAIN), 0);
  assert_int_equal(hl_radix_get(b + 6 * GRAIN), 0xabc0);
  hl_radix_clear(b, 7 * GRAIN);
  for (uintptr_t k = 0; k < 8; k++) assert_int_equal(hl_radix_get(b + k * GRAIN), 0);

  /* across a leaf boundary: both leaves hold it */
  const uintptr_t edge = (uintptr_t)0x7f3000000000;   /* a multiple of 256 MiB */
  assert_int_equal(edge % LEAF_SPAN, 0);
  assert_int_equal(hl_radix_set(edge - 2 * GRAIN, 4 * GRAIN, 0x7770), 0);
  assert_int_equal(hl_radix_get(edge - 2 * GRAIN), 0x7770);
  assert_int_equal(hl_radix_get(edge - 1), 0x7770);
  assert_int_equal(hl_radix_get(edge), 0x7770);
  assert_int_equal(hl_radix_get(edge + 2 * GRAIN - 1), 0x7770);
  assert_int_equal(hl_radix_get(edge + 2 * GRAIN), 0);
  assert_int_equal(hl_radix_get(edge - 2 * GRAIN - 1), 0);
  hl_radix_clear(edge - 2 * GRAIN, 4 * GRAIN);
  assert_int_equal(hl_radix_get(edge - 1), 0);
  assert_int_equal(hl_radix_get(edge), 0);
}

static void test_set_get_clear(void **state) {
  (void)state;
  const uintptr_t bases[] = {
    ARENA,                              /* the lowest arena allowed */
    2 * ARENA,
    (uintptr_t)0x555555600000,          /* where a PIE's heap starts */
    (uintptr_t)0x7f1234500000,          /* where mmap puts things */
    ADDR_LIMIT - 2 * ARENA,
    ADDR_LIMIT - ARENA,                 /* the highest 48-bit arena */
  };
  for (size_t i = 0; i < HL_ARRAY_LEN(bases); i++) {
    uintptr_t b = bases[i];
    void *a = OBJ(i), *n = OBJ(100 + i), *other = OBJ(200 + i);
    assert_null(get(b));
    assert_int_equal(set(b, a), 0);
    check_arena(b, a);
    assert_null(get(b - 1));
    assert_null(get(b + ARENA));       /* beyond 2^48 for the last */
    assert_null(get(b + 7 * ARENA + 5));

    if (b + ARENA < ADDR_LIMIT) {                /* a neighbour on the right */
      assert_int_equal(set(b + ARENA, n), 0);
      check_arena(b + ARENA, n);
      check_arena(b, a);
      clear(b + ARENA);
      assert_null(get(b + ARENA));
    }

    assert_int_equal(set(b, other), 0);  /* replaced in place */
    check_arena(b, other);
    clear(b);
    assert_null(get(b));
    assert_null(get(b + ARENA - 1));
    clear(b);                            /* clearing twice is harmless */
  }
  /* Clearing what was never set, even where no leaf exists. */
  clear((uintptr_t)0x3a5 << 38);
  assert_null(get((uintptr_t)0x3a5 << 38));
}

/* Both sides of every power of two in the 1 MiB key, so every leaf boundary
 * (256 MiB) and top-level bit is crossed. */
static void test_key_boundaries(void **state) {
  (void)state;
  for (unsigned k = 1; k < KEY_BITS; k++) {
    uintptr_t keys[3] = {((uintptr_t)1 << k) - 1, (uintptr_t)1 << k, ((uintptr_t)1 << k) + 1};
    for (int j = 0; j < 3; j++) assert_int_equal(set(keys[j] << SHIFT, OBJ(3 * k + j)), 0);
    for (int j = 0; j < 3; j++) check_arena(keys[j] << SHIFT, OBJ(3 * k + j));
    assert_null(get((keys[0] - 1) << SHIFT));
    assert_null(get((keys[2] + 1) << SHIFT));
    for (int j = 0; j < 3; j++) clear(keys[j] << SHIFT);
    for (int j = 0; j < 3; j++) assert_null(get(keys[j] << SHIFT));
  }
  uintptr_t last = ((uintptr_t)1 << KEY_BITS) - 1;
  assert_int_equal(set(last << SHIFT, OBJ(7)), 0);
  check_arena(last << SHIFT, OBJ(7));
  clear(last << SHIFT);
}

static void test_foreign_addresses(void **state) {
  (void)state;
  const uintptr_t b = (uintptr_t)0x7f1234500000;
  assert_int_equal(set(ARENA, OBJ(1)), 0);
  assert_int_equal(set(b, OBJ(2)), 0);
  assert_int_equal(set(ADDR_LIMIT - ARENA, OBJ(3)), 0);

  assert_null(get(0));
  assert_null(get(1));
  assert_null(get(4096));
  assert_null(get(ARENA - 1));
  assert_null(get(ADDR_LIMIT));
  assert_null(get(ADDR_LIMIT | b));          /* low 48 bits name b */
  assert_null(get(ADDR_LIMIT | ARENA));
  assert_null(get((uintptr_t)0xffff800000000000));  /* kernel */
  assert_null(get((uintptr_t)0xffff000000000000 | b));
  assert_null(get(~(uintptr_t)0));
  assert_null(get(~(uintptr_t)0 - ARENA));
  assert_null(get((uintptr_t)0x8000000000000000));

  assert_int_equal(set(0, OBJ(4)), -EINVAL);            /* NULL's arena */
  assert_int_equal(set(ADDR_LIMIT, OBJ(4)), -EINVAL);
  assert_int_equal(set(ADDR_LIMIT | b, OBJ(4)), -EINVAL);
  assert_int_equal(set(~(uintptr_t)0 & ~(ARENA - 1), OBJ(4)), -EINVAL);
  assert_int_equal(set(b + 4095, OBJ(4)), -EINVAL);     /* not grain-aligned */
  assert_int_equal(set(b + 4096, OBJ(4)), -EINVAL);     /* a page, not a grain */
  assert_int_equal(set(b + 8, OBJ(4)), -EINVAL);
  assert_int_equal(hl_radix_set(b, GRAIN + 1, (uintptr_t)OBJ(4)), -EINVAL);
  assert_int_equal(hl_radix_set(b, 0, (uintptr_t)OBJ(4)), -EINVAL);     /* empty */
  assert_int_equal(hl_radix_set(b, GRAIN, 0), -EINVAL);                 /* 0: "not ours" */
  assert_int_equal(hl_radix_set(ADDR_LIMIT - GRAIN, 2 * GRAIN, (uintptr_t)OBJ(4)), -EINVAL);
  assert_int_equal(hl_radix_set(GRAIN, ~(uintptr_t)0 - GRAIN + 1, (uintptr_t)OBJ(4)), -EINVAL);
  assert_null(get(0));
  check_arena(b, OBJ(2));                                        /* untouched */

  clear(ARENA);
  clear(b);
  clear(ADDR_LIMIT - ARENA);
  clear(ADDR_LIMIT);                                    /* ignored */
}

/* A leaf region no other test touches before this one, so that its leaf is
 * new. */
#define FRESH_REGION ((uintptr_t)0x3a5 << 38)

static void test_enomem(void **state) {
  (void)state;
  const uintptr_t b = FRESH_REGION;
  size_t page = hl_os_page_size();
  assert_int_equal(set(ARENA, OBJ(1)), 0);   /* a bystander */

  size_t bytes0 = hl_radix_bytes();
  hl_os_fail_nth_map(1);                      /* the leaf */
  assert_int_equal(set(b, OBJ(2)), -ENOMEM);
  assert_int_equal(hl_radix_bytes(), bytes0);
  assert_null(get(b));
  check_arena(ARENA, OBJ(1));

  hl_os_fail_nth_map(0);
  assert_int_equal(set(b, OBJ(2)), 0);
  check_arena(b, OBJ(2));
  size_t bytes1 = hl_radix_bytes();
  assert_true(bytes1 > bytes0);
  assert_int_equal(bytes1 % page, 0);

  /* Same leaf: no leaf to map, so an armed failure is not reached. */
  uint64_t maps0 = hl_os_maps();
  hl_os_fail_nth_map(1);
  assert_int_equal(set(b + ARENA, OBJ(3)), 0);
  hl_os_fail_nth_map(0);
  assert_int_equal(hl_os_maps(), maps0);
  assert_int_equal(hl_radix_bytes(), bytes1);
  check_arena(b + ARENA, OBJ(3));

  /* A range over the end of b's leaf into a new one: the new leaf is
   * refused, and no entry changes, not even those in b's leaf. */
  const uintptr_t c = b + LEAF_SPAN - ARENA;
  hl_os_fail_nth_map(1);
  assert_int_equal(hl_radix_set(c, 2 * ARENA, (uintptr_t)OBJ(4)), -ENOMEM);
  hl_os_fail_nth_map(0);
  assert_null(get(c));
  assert_null(get(c + ARENA));
  assert_int_equal(hl_radix_bytes(), bytes1);
  assert_int_equal(hl_radix_set(c, 2 * ARENA, (uintptr_t)OBJ(4)), 0);
  assert_ptr_equal(get(c), OBJ(4));
  assert_ptr_equal(get(c + 2 * ARENA - 1), OBJ(4));
  assert_true(hl_radix_bytes() > bytes1);
  check_arena(b, OBJ(2));
  check_arena(ARENA, OBJ(1));

  clear(ARENA);
  clear(b);
  clear(b + ARENA);
  hl_radix_clear(c, 2 * ARENA);
  assert_null(get(c));
  assert_null(get(c + ARENA));
}

/* ---- random operations against a reference model ------------------------------ */

#define NCAND 4096
static uintptr_t cand[NCAND];         /* sorted, distinct keys */
static void *model[NCAND];
static unsigned ncand;

static int cmp_key(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return (x > y) - (x < y);
}

static void *model_get(uintptr_t addr) {
  if (addr >= ADDR_LIMIT) return NULL;
  uintptr_t key = addr >> SHIFT;
  uintptr_t *hit = bsearch(&key, cand, ncand, sizeof *cand, cmp_key);
  return hit != NULL ? model[hit - cand] : NULL;
}

static void probe(hl_rand_t *r) {
  uintptr_t addr;
  switch (hl_rand_below(r, 4)) {
  case 0:   /* inside a candidate arena */
  case 1:
    addr = (cand[hl_rand_below(r, ncand)] << SHIFT) + hl_rand_below(r, ARENA);
    break;
  case 2:   /* anywhere in user space */
    addr = hl_rand_below(r, ADDR_LIMIT);
    break;
  default:  /* anywhere at all */
    addr = hl_rand_next(r);
    break;
  }
  void *want = model_get(addr);
  if (get(addr) != want)
    fail_msg("get(%#lx) = %p, the model says %p", (unsigned long)addr, get(addr), want);
}

static void test_random_model(void **state) {
  (void)state;
  hl_rand_t r;
  hl_rand_seed(&r, 42);
  /* Clustered keys, as a heap's arenas are: 16 clusters of up to 256
   * arenas, each cluster within 4096 keys, so leaves are shared and
   * neighbours are common. */
  unsigned n = 0;
  for (int c = 0; c < 16; c++) {
    uintptr_t center = 1 + hl_rand_below(&r, ((uintptr_t)1 << KEY_BITS) - 4096);
    for (int i = 0; i < NCAND / 16; i++) cand[n++] = center + hl_rand_below(&r, 4096);
  }
  qsort(cand, n, sizeof *cand, cmp_key);
  ncand = 0;
  for (unsigned i = 0; i < n; i++)
    if (ncand == 0 || cand[ncand - 1] != cand[i]) cand[ncand++] = cand[i];
  for (unsigned i = 0; i < ncand; i++) model[i] = NULL;

  unsigned steps = g_iter < 4000 ? 4000 : g_iter;
  for (unsigned s = 0; s < steps; s++) {
    unsigned i = (unsigned)hl_rand_below(&r, ncand);
    if (hl_rand_below(&r, 5) < 3) {
      model[i] = OBJ(s);
      assert_int_equal(set(cand[i] << SHIFT, model[i]), 0);
    } else {
      model[i] = NULL;
      clear(cand[i] << SHIFT);
    }
    if (s % 16 == 0)
      for (int p = 0; p < 16; p++) probe(&r);
  }
  for (unsigned i = 0; i < ncand; i++) {
    uintptr_t b = cand[i] << SHIFT;
    assert_ptr_equal(get(b), model[i]);
    assert_ptr_equal(get(b + ARENA - 1), model[i]);
    clear(b);
    model[i] = NULL;
  }
  for (int p = 0; p < 20000; p++) probe(&r);   /* all NULL now */
}

/* ---- readers against a writer ---------------------------------------------------- */

#define NSTABLE 256
#define NFRESH 2048
/* Stable arenas at even keys in two clusters; the writer's neighbours at the
 * odd keys between them, in the same leaves; fresh arenas 2^13 keys apart
 * (8 GiB: a new leaf each). */
#define STABLE_KEY(j) ((((j) < NSTABLE / 2) ? (uintptr_t)0x7f0000 : (uintptr_t)0x555000) + 2 * (uintptr_t)(j))
#define NEIGHBOUR_KEY(j) (STABLE_KEY(j) + 1)
#define FRESH_KEY(i) (((uintptr_t)1 << 27) + ((uintptr_t)(i) << 13))

static char stable_obj[NSTABLE], neighbour_obj[NSTABLE], fresh_obj[NFRESH];
static uint64_t stop_readers;
static uint64_t readers_started;

typedef struct reader {
  uint64_t seed;
  uint64_t reads;
  uint64_t violations;
} reader_t;

static void *reader_main(void *arg) {
  reader_t *rd = arg;
  hl_rand_t r;
  hl_rand_seed(&r, rd->seed);
  hl_atomic_inc_u64(&readers_started);
  /* Acquire: pairs with the writer's release of stop_readers. */
  while (!hl_atomic_load_acquire_u64(&stop_readers)) {
    for (int k = 0; k < 64; k++) {
      unsigned j = (unsigned)hl_rand_below(&r, NSTABLE);
      uintptr_t off = hl_rand_below(&r, ARENA);
      if (get((STABLE_KEY(j) << SHIFT) + off) != &stable_obj[j]) rd->violations++;
      void *n = get((NEIGHBOUR_KEY(j) << SHIFT) + off);
      if (n != NULL && n != &neighbour_obj[j]) rd->violations++;
      unsigned i = (unsigned)hl_rand_below(&r, NFRESH);
      void *f = get((FRESH_KEY(i) << SHIFT) + off);
      if (f != NULL && f != &fresh_obj[i]) rd->violations++;
      rd->reads += 3;
    }
    sched_yield();   /* 2 cores, 3 threads: let the writer run */
  }
  return NULL;
}

static void test_concurrent_readers(void **state) {
  (void)state;
  enum { MAX_READERS = 64 };
  unsigned nreaders = g_readers < 1 ? 1 : g_readers > MAX_READERS ? MAX_READERS : g_readers;
  for (unsigned j = 0; j < NSTABLE; j++)
    assert_int_equal(set(STABLE_KEY(j) << SHIFT, &stable_obj[j]), 0);

  reader_t rd[MAX_READERS] = {{0}};
  pthread_t tid[MAX_READERS];
  hl_atomic_store_relaxed_u64(&stop_readers, 0);
  hl_atomic_store_relaxed_u64(&readers_started, 0);
  for (unsigned t = 0; t < nreaders; t++) {
    rd[t].seed = 1000 + t;
    assert_int_equal(pthread_create(&tid[t], NULL, reader_main, &rd[t]), 0);
  }

  /* The writer starts once every reader reads, so that they overlap even
   * when thread start-up is slow (sanitizers, a loaded machine). */
  while (hl_atomic_load_relaxed_u64(&readers_started) < nreaders) sched_yield();

  hl_rand_t r;
  hl_rand_seed(&r, 7);
  size_t bytes0 = hl_radix_bytes();
  unsigned fresh = 0;
  for (unsigned s = 0; s < g_iter; s++) {
    unsigned j = (unsigned)hl_rand_below(&r, NSTABLE);
    if (hl_rand_below(&r, 2)) assert_int_equal(set(NEIGHBOUR_KEY(j) << SHIFT, &neighbour_obj[j]), 0);
    else clear(NEIGHBOUR_KEY(j) << SHIFT);
    /* A new arena in a new leaf every few steps, cleared again later. */
    if (s % 4 == 0 && fresh < NFRESH) {
      assert_int_equal(set(FRESH_KEY(fresh) << SHIFT, &fresh_obj[fresh]), 0);
      if (fresh >= 8) clear(FRESH_KEY(fresh - 8) << SHIFT);
      fresh++;
    }
    if (s % 256 == 0) sched_yield();
  }
  /* Release: pairs with the readers' acquire of stop_readers. */
  hl_atomic_store_release_u64(&stop_readers, 1);
  uint64_t reads = 0;
  for (unsigned t = 0; t < nreaders; t++) {
    assert_int_equal(pthread_join(tid[t], NULL), 0);
    assert_int_equal(rd[t].violations, 0);
    reads += rd[t].reads;
  }
  assert_true(reads > 0);
  print_message("%u readers: %llu lookups during %u writer steps\n", nreaders,
                (unsigned long long)reads, g_iter);
  assert_true(hl_radix_bytes() > bytes0);   /* the writer did grow the tree */

  for (unsigned j = 0; j < NSTABLE; j++) {
    check_arena(STABLE_KEY(j) << SHIFT, &stable_obj[j]);
    clear(STABLE_KEY(j) << SHIFT);
    clear(NEIGHBOUR_KEY(j) << SHIFT);
    assert_null(get(STABLE_KEY(j) << SHIFT));
  }
  for (unsigned i = 0; i < fresh; i++) clear(FRESH_KEY(i) << SHIFT);
}

int main(int argc, char **argv) {
  if (argc > 1) g_readers = (unsigned)strtoul(argv[1], NULL, 10);
  if (argc > 2) g_iter = (unsigned)strtoul(argv[2], NULL, 10);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_grains),
    cmocka_unit_test(test_set_get_clear),
    cmocka_unit_test(test_key_boundaries),
    cmocka_unit_test(test_foreign_addresses),
    cmocka_unit_test(test_enomem),
    cmocka_unit_test(test_random_model),
    cmocka_unit_test(test_concurrent_readers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
