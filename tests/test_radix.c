/* Tests of the arena radix tree (alloc/radix.c), with 1 MiB arenas
 * (shift 20): the tree is a process-global with one shift, so the whole
 * binary uses one, and the -EINVAL test asks for others after it.
 *
 *   - init: shifts out of range and a changed shift are refused, the same
 *     shift again is fine;
 *   - set/get/clear at the lowest arena, the highest 48-bit one and typical
 *     heap addresses: every byte of an arena maps to it, the bytes around it
 *     map to NULL or to the neighbour;
 *   - keys on both sides of every power of two (every node boundary, whatever
 *     the level split);
 *   - NULL, small integers, addresses at or above 2^48 (including ones whose
 *     low 48 bits name a set arena) and ~0 map to NULL; bad bases are refused;
 *   - -ENOMEM when the OS layer refuses a node, at either level, and the tree
 *     still works afterwards; a set that needs no new node maps nothing;
 *   - thousands of random sets and clears against a reference model;
 *   - readers looking up stable arenas while a writer sets and clears others
 *     in the same leaves and creates new nodes (run it under TSan).
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
#define ADDR_LIMIT ((uintptr_t)1 << 48)

static unsigned g_readers = 2;
static unsigned g_iter = 20000;

/* Stand-ins for arena objects: the tree stores and returns the pointers and
 * never dereferences them. */
static char objs[8192];
#define OBJ(i) ((void *)&objs[(i) % sizeof objs])

/* first byte, last byte and one in the middle: all map to the arena */
static void check_arena(uintptr_t base, void *arena) {
  assert_ptr_equal(hl_radix_get(base), arena);
  assert_ptr_equal(hl_radix_get(base + ARENA - 1), arena);
  assert_ptr_equal(hl_radix_get(base + ARENA / 2 + 12345), arena);
}

static int setup_group(void **state) {
  (void)state;
  return hl_radix_init(SHIFT);
}

static void test_init(void **state) {
  (void)state;
  assert_int_equal(hl_radix_init(SHIFT), 0);       /* the same shift again */
  assert_int_equal(hl_radix_init(0), -EINVAL);
  assert_int_equal(hl_radix_init(15), -EINVAL);
  assert_int_equal(hl_radix_init(31), -EINVAL);
  assert_int_equal(hl_radix_init(64), -EINVAL);
  assert_int_equal(hl_radix_init(18), -EINVAL);     /* a changed shift */
  assert_int_equal(hl_radix_init(16), -EINVAL);
  assert_int_equal(hl_radix_init(30), -EINVAL);
  assert_int_equal(hl_radix_init(SHIFT), 0);
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
    assert_null(hl_radix_get(b));
    assert_int_equal(hl_radix_set(b, a), 0);
    check_arena(b, a);
    assert_null(hl_radix_get(b - 1));
    assert_null(hl_radix_get(b + ARENA));       /* beyond 2^48 for the last */
    assert_null(hl_radix_get(b + 7 * ARENA + 5));

    if (b + ARENA < ADDR_LIMIT) {                /* a neighbour on the right */
      assert_int_equal(hl_radix_set(b + ARENA, n), 0);
      check_arena(b + ARENA, n);
      check_arena(b, a);
      hl_radix_clear(b + ARENA);
      assert_null(hl_radix_get(b + ARENA));
    }

    assert_int_equal(hl_radix_set(b, other), 0);  /* replaced in place */
    check_arena(b, other);
    hl_radix_clear(b);
    assert_null(hl_radix_get(b));
    assert_null(hl_radix_get(b + ARENA - 1));
    hl_radix_clear(b);                            /* clearing twice is harmless */
  }
  /* Clearing what was never set, even where no node exists. */
  hl_radix_clear((uintptr_t)0x3a5 << 38);
  assert_null(hl_radix_get((uintptr_t)0x3a5 << 38));
}

/* Both sides of every power of two in the key, so every node boundary is
 * crossed whatever the split between levels. */
static void test_key_boundaries(void **state) {
  (void)state;
  for (unsigned k = 1; k < KEY_BITS; k++) {
    uintptr_t keys[3] = {((uintptr_t)1 << k) - 1, (uintptr_t)1 << k, ((uintptr_t)1 << k) + 1};
    for (int j = 0; j < 3; j++) assert_int_equal(hl_radix_set(keys[j] << SHIFT, OBJ(3 * k + j)), 0);
    for (int j = 0; j < 3; j++) check_arena(keys[j] << SHIFT, OBJ(3 * k + j));
    assert_null(hl_radix_get((keys[0] - 1) << SHIFT));
    assert_null(hl_radix_get((keys[2] + 1) << SHIFT));
    for (int j = 0; j < 3; j++) hl_radix_clear(keys[j] << SHIFT);
    for (int j = 0; j < 3; j++) assert_null(hl_radix_get(keys[j] << SHIFT));
  }
  uintptr_t last = ((uintptr_t)1 << KEY_BITS) - 1;
  assert_int_equal(hl_radix_set(last << SHIFT, OBJ(7)), 0);
  check_arena(last << SHIFT, OBJ(7));
  hl_radix_clear(last << SHIFT);
}

static void test_foreign_addresses(void **state) {
  (void)state;
  const uintptr_t b = (uintptr_t)0x7f1234500000;
  assert_int_equal(hl_radix_set(ARENA, OBJ(1)), 0);
  assert_int_equal(hl_radix_set(b, OBJ(2)), 0);
  assert_int_equal(hl_radix_set(ADDR_LIMIT - ARENA, OBJ(3)), 0);

  assert_null(hl_radix_get(0));
  assert_null(hl_radix_get(1));
  assert_null(hl_radix_get(4096));
  assert_null(hl_radix_get(ARENA - 1));
  assert_null(hl_radix_get(ADDR_LIMIT));
  assert_null(hl_radix_get(ADDR_LIMIT | b));          /* low 48 bits name b */
  assert_null(hl_radix_get(ADDR_LIMIT | ARENA));
  assert_null(hl_radix_get((uintptr_t)0xffff800000000000));  /* kernel */
  assert_null(hl_radix_get((uintptr_t)0xffff000000000000 | b));
  assert_null(hl_radix_get(~(uintptr_t)0));
  assert_null(hl_radix_get(~(uintptr_t)0 - ARENA));
  assert_null(hl_radix_get((uintptr_t)0x8000000000000000));

  assert_int_equal(hl_radix_set(0, OBJ(4)), -EINVAL);            /* NULL's arena */
  assert_int_equal(hl_radix_set(ADDR_LIMIT, OBJ(4)), -EINVAL);
  assert_int_equal(hl_radix_set(ADDR_LIMIT | b, OBJ(4)), -EINVAL);
  assert_int_equal(hl_radix_set(~(uintptr_t)0 & ~(ARENA - 1), OBJ(4)), -EINVAL);
  assert_int_equal(hl_radix_set(b + 4096, OBJ(4)), -EINVAL);     /* not aligned */
  assert_int_equal(hl_radix_set(b + ARENA / 2, OBJ(4)), -EINVAL);
  assert_null(hl_radix_get(0));
  check_arena(b, OBJ(2));                                        /* untouched */

  hl_radix_clear(ARENA);
  hl_radix_clear(b);
  hl_radix_clear(ADDR_LIMIT - ARENA);
  hl_radix_clear(ADDR_LIMIT);                                    /* ignored */
}

/* A top-level region no other test touches before this one, so that both its
 * mid node and its leaf are new. */
#define FRESH_REGION ((uintptr_t)0x3a5 << 38)

static void test_enomem(void **state) {
  (void)state;
  const uintptr_t b = FRESH_REGION;
  size_t page = hl_os_page_size();
  assert_int_equal(hl_radix_set(ARENA, OBJ(1)), 0);   /* a bystander */

  size_t bytes0 = hl_radix_bytes();
  hl_os_fail_nth_map(1);                               /* the mid node */
  assert_int_equal(hl_radix_set(b, OBJ(2)), -ENOMEM);
  assert_int_equal(hl_radix_bytes(), bytes0);
  assert_null(hl_radix_get(b));

  hl_os_fail_nth_map(2);                               /* the leaf under it */
  assert_int_equal(hl_radix_set(b, OBJ(2)), -ENOMEM);
  size_t bytes1 = hl_radix_bytes();
  assert_true(bytes1 > bytes0);                        /* the mid node stays */
  assert_int_equal(bytes1 % page, 0);
  assert_null(hl_radix_get(b));
  check_arena(ARENA, OBJ(1));

  hl_os_fail_nth_map(0);
  assert_int_equal(hl_radix_set(b, OBJ(2)), 0);
  check_arena(b, OBJ(2));
  size_t bytes2 = hl_radix_bytes();
  assert_true(bytes2 > bytes1);
  assert_int_equal(bytes2 % page, 0);

  /* Same leaf: no node to map, so an armed failure is not reached. */
  uint64_t maps0 = hl_os_maps();
  hl_os_fail_nth_map(1);
  assert_int_equal(hl_radix_set(b + ARENA, OBJ(3)), 0);
  hl_os_fail_nth_map(0);
  assert_int_equal(hl_os_maps(), maps0);
  assert_int_equal(hl_radix_bytes(), bytes2);
  check_arena(b + ARENA, OBJ(3));

  /* Another leaf under the same mid node (4 GiB away: past any leaf's
   * reach at this shift). */
  const uintptr_t c = b + ((uintptr_t)1 << 32);
  hl_os_fail_nth_map(1);
  assert_int_equal(hl_radix_set(c, OBJ(4)), -ENOMEM);
  assert_null(hl_radix_get(c));
  assert_int_equal(hl_radix_set(c, OBJ(4)), 0);
  check_arena(c, OBJ(4));
  check_arena(b, OBJ(2));
  check_arena(ARENA, OBJ(1));

  hl_radix_clear(ARENA);
  hl_radix_clear(b);
  hl_radix_clear(b + ARENA);
  hl_radix_clear(c);
  assert_null(hl_radix_get(c));
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
  if (hl_radix_get(addr) != want)
    fail_msg("get(%#lx) = %p, the model says %p", (unsigned long)addr, hl_radix_get(addr), want);
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
      assert_int_equal(hl_radix_set(cand[i] << SHIFT, model[i]), 0);
    } else {
      model[i] = NULL;
      hl_radix_clear(cand[i] << SHIFT);
    }
    if (s % 16 == 0)
      for (int p = 0; p < 16; p++) probe(&r);
  }
  for (unsigned i = 0; i < ncand; i++) {
    uintptr_t b = cand[i] << SHIFT;
    assert_ptr_equal(hl_radix_get(b), model[i]);
    assert_ptr_equal(hl_radix_get(b + ARENA - 1), model[i]);
    hl_radix_clear(b);
    model[i] = NULL;
  }
  for (int p = 0; p < 20000; p++) probe(&r);   /* all NULL now */
}

/* ---- readers against a writer ---------------------------------------------------- */

#define NSTABLE 256
#define NFRESH 2048
/* Stable arenas at even keys in two clusters; the writer's neighbours at the
 * odd keys between them, in the same leaves; fresh arenas 2^13 keys apart
 * (8 GiB: a new leaf each, and a new mid node every 32). */
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
      if (hl_radix_get((STABLE_KEY(j) << SHIFT) + off) != &stable_obj[j]) rd->violations++;
      void *n = hl_radix_get((NEIGHBOUR_KEY(j) << SHIFT) + off);
      if (n != NULL && n != &neighbour_obj[j]) rd->violations++;
      unsigned i = (unsigned)hl_rand_below(&r, NFRESH);
      void *f = hl_radix_get((FRESH_KEY(i) << SHIFT) + off);
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
    assert_int_equal(hl_radix_set(STABLE_KEY(j) << SHIFT, &stable_obj[j]), 0);

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
    if (hl_rand_below(&r, 2)) assert_int_equal(hl_radix_set(NEIGHBOUR_KEY(j) << SHIFT, &neighbour_obj[j]), 0);
    else hl_radix_clear(NEIGHBOUR_KEY(j) << SHIFT);
    /* A new arena in a new leaf every few steps, cleared again later. */
    if (s % 4 == 0 && fresh < NFRESH) {
      assert_int_equal(hl_radix_set(FRESH_KEY(fresh) << SHIFT, &fresh_obj[fresh]), 0);
      if (fresh >= 8) hl_radix_clear(FRESH_KEY(fresh - 8) << SHIFT);
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
    hl_radix_clear(STABLE_KEY(j) << SHIFT);
    hl_radix_clear(NEIGHBOUR_KEY(j) << SHIFT);
    assert_null(hl_radix_get(STABLE_KEY(j) << SHIFT));
  }
  for (unsigned i = 0; i < fresh; i++) hl_radix_clear(FRESH_KEY(i) << SHIFT);
}

int main(int argc, char **argv) {
  if (argc > 1) g_readers = (unsigned)strtoul(argv[1], NULL, 10);
  if (argc > 2) g_iter = (unsigned)strtoul(argv[2], NULL, 10);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_init),
    cmocka_unit_test(test_set_get_clear),
    cmocka_unit_test(test_key_boundaries),
    cmocka_unit_test(test_foreign_addresses),
    cmocka_unit_test(test_enomem),
    cmocka_unit_test(test_random_model),
    cmocka_unit_test(test_concurrent_readers),
  };
  return cmocka_run_group_tests(tests, setup_group, NULL);
}
