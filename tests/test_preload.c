/* libheaplab-malloc.so under LD_PRELOAD: every exported function, its edge
 * cases, threads, fork. Not linked with heaplab: the library must be
 * preloaded (CTest sets LD_PRELOAD), and the test finds it through the two
 * functions it exports for tests:
 *   hl_preload_block_size(p)  the pool block's size, 0 when p is not ours
 *   hl_preload_threshold()    the largest request the pools serve
 * Expects a geometry aligned to 16 or more (the default, modern, is).
 *
 * Usage: test_preload              run every check
 *        test_preload double-free  free a small block twice (with
 *                                  HEAPLAB_ALLOC_DEBUG=on: must abort)
 *        test_preload fd100 FILE   put FILE (opened to append) on
 *                                  descriptor 100 and exit: with
 *                                  HEAPLAB_STATS=1, FILE must not grow
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hl_atomic.h"

/* glibc's own allocator, to make foreign blocks */
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t nelem, size_t elsize);
void *__libc_memalign(size_t alignment, size_t size);

#define CHECK(c)                                                                   \
  do {                                                                             \
    if (!(c)) {                                                                    \
      fprintf(stderr, "test_preload: %s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

static size_t (*block_size)(const void *);
static size_t thr;
static long page;
/* HEAPLAB_LARGE=medium: above thr, huge blocks (alloc/huge.c), ours too */
static bool huge;

static bool ours(const void *p) { return block_size(p) != 0; }
static bool aligned_to(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* The alignment malloc owes a block of n bytes on x86-64 and arm64: 16 for
 * n >= 16, else the largest power of two <= n (an object of that size). */
static size_t abi_align(size_t n) {
  if (n >= 16) return 16;
  size_t a = 1;
  while (a * 2 <= n) a *= 2;
  return a;
}

static void fill(void *p, size_t n, unsigned seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed + i * 131);
}
static bool filled(const void *p, size_t n, unsigned seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)(seed + i * 131)) return false;
  return true;
}
static bool zeroed(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return false;
  return true;
}

/* Defeats gcc's knowledge of malloc (it may fold away malloc(SIZE_MAX)). */
static size_t opaque(size_t n) {
  __asm__ volatile("" : "+r"(n));
  return n;
}

static void test_active(void) {
  block_size = (size_t (*)(const void *))dlsym(RTLD_DEFAULT, "hl_preload_block_size");
  size_t (*threshold)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "hl_preload_threshold");
  if (!block_size || !threshold) {
    fprintf(stderr, "test_preload: libheaplab-malloc.so is not preloaded (LD_PRELOAD)\n");
    exit(1);
  }
  thr = threshold();
  CHECK(thr >= 64);
  const char *large = getenv("HEAPLAB_LARGE");
  huge = large && strcmp(large, "medium") == 0;
  page = sysconf(_SC_PAGESIZE);
  void *p = malloc(24);
  CHECK(p && ours(p) && block_size(p) >= 24);
  free(p);
}

static void test_zero(void) {
  void *a = malloc(0), *b = malloc(0);
  CHECK(a && b && a != b && ours(a) && ours(b));
  free(a);
  free(b);
  void *c[3] = {calloc(0, 0), calloc(0, 8), calloc(8, 0)};
  for (int i = 0; i < 3; i++) {
    CHECK(c[i] && ours(c[i]));
    free(c[i]);
  }
  void *p = malloc(100);
  p = realloc(p, 0);   /* ours: a minimal block, the old one freed */
  CHECK(p && ours(p));
  free(p);
  free(NULL);
  void (*cfree_fn)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
  CHECK(cfree_fn);
  cfree_fn(malloc(10));
  cfree_fn(NULL);
  CHECK(malloc_usable_size(NULL) == 0);
}

#define CHECK_ENOMEM(expr)            \
  do {                                \
    errno = 0;                        \
    void *r_ = (expr);                \
    CHECK(r_ == NULL && errno == ENOMEM); \
  } while (0)

static void test_huge(void) {
  size_t max = opaque(SIZE_MAX), big = opaque((size_t)PTRDIFF_MAX + 1);
  CHECK_ENOMEM(malloc(max));
  CHECK_ENOMEM(malloc(big));
  CHECK_ENOMEM(malloc(opaque(PTRDIFF_MAX)));
  CHECK_ENOMEM(calloc(max / 2 + 1, 2));                  /* overflows */
  CHECK_ENOMEM(calloc(opaque((size_t)1 << 30), (size_t)1 << 30));   /* 2^60 bytes */
  CHECK_ENOMEM(valloc(max));
  CHECK_ENOMEM(pvalloc(max));
  CHECK_ENOMEM(memalign(64, max));
  CHECK_ENOMEM(aligned_alloc(64, max));
  void *q = (void *)1;
  CHECK(posix_memalign(&q, 64, max) == ENOMEM && q == (void *)1);
  CHECK(posix_memalign(&q, 8, max) == ENOMEM && q == (void *)1);
  /* realloc and reallocarray failures leave the block as it was */
  for (size_t n = 10; n < 100000; n *= 30) {
    void *p = malloc(n);
    fill(p, n, 7);
    CHECK_ENOMEM(realloc(p, max));
    CHECK_ENOMEM(reallocarray(p, max / 2, 3));   /* overflows */
    CHECK_ENOMEM(reallocarray(p, 1, big));
    CHECK(filled(p, n, 7));
    free(p);
  }
}

/* The i-th of test_sizes' sizes: every size up to 2 KiB and 300 past it or
 * past the threshold, whichever is lower; then (large=medium's spans, up to
 * 64 KiB) every 61st size and each power of two and its neighbours up to
 * 300 past the threshold, so that tens of thousands of blocks of tens of
 * KiB are not all live at once; then a few large ones. 0 past the end. */
enum { EXTRA = 300, DENSE = 2048 };
static size_t size_at(size_t i) {
  static const size_t large[] = {4096, 65536, 200000, 1 << 20};
  size_t dense = (thr < DENSE ? thr : DENSE) + EXTRA;
  if (i < dense) return i + 1;
  i -= dense;
  for (size_t n = dense + 61; n <= thr + EXTRA; n += 61, i--)
    if (i == 0) return n;
  for (size_t b = 2 * DENSE; b <= thr; b *= 2)
    for (size_t d = 0; d < 3; d++, i--)
      if (i == 0) return b - 1 + d;
  return i < sizeof large / sizeof large[0] ? large[i] : 0;
}

/* test_sizes' sizes: alignment, owner, usable size (all of it written), and
 * no two live blocks overlap (each keeps its pattern until freed). */
static void test_sizes(void) {
  size_t count = 0;
  while (size_at(count) != 0) count++;
  void **blocks = malloc(count * sizeof *blocks);
  size_t *sizes = malloc(count * sizeof *sizes), *usable = malloc(count * sizeof *usable);
  CHECK(blocks && sizes && usable);
  for (size_t i = 0; i < count; i++) {
    size_t n = size_at(i);
    void *p = malloc(n);
    CHECK(p && aligned_to(p, abi_align(n)));
    CHECK(ours(p) == (n <= thr || huge));
    size_t u = malloc_usable_size(p);
    CHECK(u >= n);
    if (ours(p)) CHECK(block_size(p) >= u);
    fill(p, u, (unsigned)i);
    blocks[i] = p;
    sizes[i] = n;
    usable[i] = u;
  }
  for (size_t i = 0; i < count; i++) {
    CHECK(filled(blocks[i], usable[i], (unsigned)i));
    free(blocks[i]);
  }
  /* calloc clears a block that was dirty when freed */
  for (size_t i = 0; i < count; i++) {
    size_t n = size_at(i);
    void *d = malloc(n);
    fill(d, n, 3);
    free(d);
    unsigned char *z = calloc(1, n);
    CHECK(z && zeroed(z, n) && ours(z) == (n <= thr || huge));
    free(z);
    z = calloc(n, 3);
    CHECK(z && zeroed(z, 3 * n) && ours(z) == (3 * n <= thr || huge));
    free(z);
  }
  free(blocks);
  free(sizes);
  free(usable);
}

static void check_aligned_block(void *p, size_t align, size_t n) {
  CHECK(p && aligned_to(p, align));
  /* pool blocks are 16-aligned: alignments up to that go there; larger
   * ones to large=medium's spans (blocks aligned to their size's lowest
   * bit) when a class is, else glibc */
  if (align <= 16) CHECK(ours(p) == (n <= thr || huge));
  /* above the classes, in size or alignment: a huge block aligned to it */
  else if (huge && (n > thr || align > thr)) CHECK(ours(p) && block_size(p) >= n);
  else CHECK(!ours(p) || (n <= thr && align <= thr && block_size(p) % align == 0 &&
                          block_size(p) < 2 * (n > align ? n : align)));
  /* spans (large=medium, a threshold of 64 KiB): only from 4 KiB up, not
   * a small block aligned to a cache line */
  if (n <= 2048 && align <= 2048) CHECK(!ours(p) || align <= 16);
  size_t u = malloc_usable_size(p);
  CHECK(u >= n);
  fill(p, u, 5);
  CHECK(filled(p, u, 5));
  free(p);
}

static void test_align(void) {
  size_t sizes[] = {0, 1, 8, 24, 100, thr - 1, thr, thr + 1, 5000, 100000};
  /* every power of two up to 2 MiB: huge blocks above the spans with
   * large=medium, else glibc */
  for (size_t align = 8; align <= (size_t)2 << 20; align *= 2) {
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      size_t n = sizes[k];
      void *p = NULL;
      CHECK(posix_memalign(&p, align, n) == 0);
      check_aligned_block(p, align, n);
      check_aligned_block(aligned_alloc(align, n), align, n);
      check_aligned_block(memalign(align, n), align, n);
    }
  }
  /* large=medium in `modern` (spans above 2 KiB, up to 64 KiB): a power of
   * two from 4 KiB to the threshold, aligned to itself, is a class of its own */
  for (size_t align = 4096; thr >= 65536 && align <= thr; align *= 2) {
    void *q = aligned_alloc(align, align);
    CHECK(q && aligned_to(q, align) && ours(q) && block_size(q) == align);
    free(q);
    CHECK(posix_memalign(&q, align, align / 2 + 1) == 0 && ours(q) && aligned_to(q, align));
    free(q);
  }
  void *p = (void *)1;
  size_t bad[] = {0, 3, 4, 12, 24, 100};   /* not a power of two, or < sizeof(void *) */
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    CHECK(posix_memalign(&p, bad[k], 16) == EINVAL && p == (void *)1);
  }
  size_t not_pow2[] = {0, 3, 24, 100};
  for (size_t k = 0; k < sizeof not_pow2 / sizeof not_pow2[0]; k++) {
    errno = 0;
    CHECK(aligned_alloc(not_pow2[k], 16) == NULL && errno == EINVAL);
  }
  /* memalign rounds an alignment up to a power of two, as glibc's does */
  p = memalign(24, 10);
  CHECK(p && aligned_to(p, 32));
  free(p);
  p = memalign(0, 10);
  CHECK(p);
  free(p);
  p = memalign(3000, 10);
  CHECK(p && aligned_to(p, 4096));
  free(p);
  /* page-aligned: glibc's, or with large=medium's spans (a threshold of 64
   * KiB) a page-aligned span class */
  size_t vs[] = {0, 1, 5000};
  bool spans = thr >= 65536;
  for (size_t k = 0; k < 3; k++) {
    p = valloc(vs[k]);
    CHECK(p && aligned_to(p, (size_t)page) && ours(p) == spans &&
          malloc_usable_size(p) >= vs[k]);
    free(p);
    p = pvalloc(vs[k]);
    CHECK(p && aligned_to(p, (size_t)page) && ours(p) == spans &&
          malloc_usable_size(p) >= (size_t)page);
    memset(p, 1, (size_t)page);
    free(p);
  }
}

/* One block through a chain of sizes, up across the threshold into glibc
 * and back down. A glibc block stays in glibc when it shrinks (preload.c). */
static void test_realloc(void) {
  size_t chain[] = {5, 16, 100, thr - 1, thr, thr + 1, 2 * thr, 70000, 300000, 1000,
                    thr + 1, thr, 100, 10, 1};
  size_t have = 0;
  unsigned char *p = NULL;
  bool left_pools = false;
  for (size_t k = 0; k < sizeof chain / sizeof chain[0]; k++) {
    size_t n = chain[k];
    unsigned char *q = realloc(p, n);
    CHECK(q && aligned_to(q, abi_align(n)));
    size_t keep = have < n ? have : n;
    CHECK(filled(q, keep, 11));
    if (n > thr && !huge) left_pools = true;
    CHECK(ours(q) == !left_pools);
    CHECK(malloc_usable_size(q) >= n);
    fill(q, n, 11);
    p = q;
    have = n;
  }
  free(p);
  /* pools to pools, growing and shrinking */
  for (size_t from = 1; from <= thr; from += 7) {
    size_t to = thr + 1 - from;
    unsigned char *a = malloc(from);
    fill(a, from, 13);
    unsigned char *b = realloc(a, to);
    CHECK(b && ours(b) && filled(b, from < to ? from : to, 13));
    free(b);
  }
  /* realloc(NULL, n) is malloc(n) */
  p = realloc(NULL, 10);
  CHECK(p && ours(p));
  free(p);
  p = realloc(NULL, thr + 1);
  CHECK(p && ours(p) == huge);
  free(p);
  /* reallocarray */
  unsigned *v = reallocarray(NULL, 10, sizeof *v);
  CHECK(v && ours(v));
  for (unsigned i = 0; i < 10; i++) v[i] = i;
  v = reallocarray(v, 100000, sizeof *v);
  CHECK(v && ours(v) == huge);
  for (unsigned i = 0; i < 10; i++) CHECK(v[i] == i);
  free(v);
}

/* Blocks that glibc allocated, or that glibc's own functions allocated
 * through our malloc, come back through our free, realloc and
 * malloc_usable_size. */
static void test_foreign(void) {
  unsigned char *p = __libc_malloc(100);
  CHECK(p && !ours(p) && malloc_usable_size(p) >= 100);
  fill(p, 100, 17);
  p = realloc(p, 50);
  CHECK(p && !ours(p) && filled(p, 50, 17));
  p = realloc(p, 10000);
  CHECK(p && !ours(p) && filled(p, 50, 17));
  free(p);
  void *z = __libc_calloc(10, 10);
  CHECK(z && !ours(z) && zeroed(z, 100));
  free(z);
  void *m = __libc_memalign(256, 100);
  CHECK(m && !ours(m) && malloc_usable_size(m) >= 100);
  free(m);
  char *s = strdup("heaplab");
  CHECK(s && ours(s) && strcmp(s, "heaplab") == 0);
  free(s);
  char *a = NULL;
  CHECK(asprintf(&a, "%d %s", 42, "blocks") > 0 && a && strcmp(a, "42 blocks") == 0);
  free(a);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CHECK(f);
  for (int i = 0; i < 1000; i++) fprintf(f, "line %d\n", i);
  fclose(f);
  CHECK(buf && len > 5000 && strncmp(buf, "line 0\n", 7) == 0);
  free(buf);
}

/* ---- threads: each round, every thread allocates, then frees the blocks
 * of its neighbour (cross-thread frees). ---- */
enum { THREADS = 4, ROUNDS = 40, PER_ROUND = 3000 };
typedef struct {
  size_t n;
  unsigned char *p;
} slot_t;
static slot_t slots[THREADS][PER_ROUND];
static pthread_barrier_t barrier;
static size_t owned_blocks[THREADS];

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void *worker(void *arg) {
  int t = (int)(intptr_t)arg;
  uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1);
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < PER_ROUND; i++) {
      uint64_t x = next_rand(&rng);
      size_t n = x % 16 == 0 ? 1 + x % 5000 : 1 + x % (thr + 8);
      unsigned char *p = (x >> 8) % 8 == 0 ? calloc(1, n) : malloc(n);
      CHECK(p);
      if ((x >> 8) % 8 == 0) CHECK(zeroed(p, n));
      owned_blocks[t] += ours(p);
      fill(p, n, (unsigned)(t * 1000 + i));
      slots[t][i] = (slot_t){n, p};
    }
    pthread_barrier_wait(&barrier);
    int from = (t + 1) % THREADS;
    for (int i = 0; i < PER_ROUND; i++) {
      slot_t *s = &slots[from][i];
      CHECK(filled(s->p, s->n, (unsigned)(from * 1000 + i)));
      if (i % 3 == 0) {   /* some move once more before they go */
        s->p = realloc(s->p, s->n + 40);
        CHECK(s->p && filled(s->p, s->n, (unsigned)(from * 1000 + i)));
      }
      free(s->p);
    }
    pthread_barrier_wait(&barrier);
  }
  return NULL;
}

static void test_threads(void) {
  pthread_t th[THREADS];
  CHECK(pthread_barrier_init(&barrier, NULL, THREADS) == 0);
  for (int t = 0; t < THREADS; t++)
    CHECK(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) == 0);
  for (int t = 0; t < THREADS; t++) CHECK(pthread_join(th[t], NULL) == 0);
  pthread_barrier_destroy(&barrier);
  for (int t = 0; t < THREADS; t++) CHECK(owned_blocks[t] > ROUNDS * PER_ROUND / 2);
}

/* ---- fork while other threads allocate: the child must find the pools
 * usable (no lock left held by a thread that does not exist there). ---- */
static int32_t stop_hammer;

static void *hammer(void *arg) {
  uint64_t rng = (uint64_t)(intptr_t)arg * 0x2545f4914f6cdd1dull + 1;
  void *keep[64] = {0};
  while (!hl_atomic_c11_load_relaxed_i32(&stop_hammer)) {
    uint64_t x = next_rand(&rng);
    int i = (int)(x % 64);
    free(keep[i]);
    keep[i] = malloc(1 + (x >> 8) % (thr + 64));
    CHECK(keep[i]);
  }
  for (int i = 0; i < 64; i++) free(keep[i]);
  return NULL;
}

static void *child_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < 10000; i++) free(malloc(1 + (size_t)i % (thr + 100)));
  return NULL;
}

static void test_fork(void) {
  pthread_t th[2];
  for (int t = 0; t < 2; t++)
    CHECK(pthread_create(&th[t], NULL, hammer, (void *)(intptr_t)(t + 1)) == 0);
  for (int k = 0; k < 30; k++) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
      alarm(20);   /* a deadlock fails the test instead of hanging it */
      void *p[1000];
      for (int i = 0; i < 1000; i++) {
        p[i] = malloc(1 + (size_t)i % (thr + 100));
        if (!p[i]) _exit(3);
        memset(p[i], i, 1 + (size_t)i % (thr + 100));
      }
      for (int i = 0; i < 1000; i++) free(p[i]);
      pthread_t c;
      if (pthread_create(&c, NULL, child_thread, NULL) != 0 || pthread_join(c, NULL) != 0)
        _exit(4);
      void *q = malloc(32);
      _exit(q && ours(q) ? 0 : 5);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fprintf(stderr, "test_preload: fork child %d: status %#x\n", k, status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  hl_atomic_c11_store_relaxed_i32(&stop_hammer, 1);
  for (int t = 0; t < 2; t++) CHECK(pthread_join(th[t], NULL) == 0);
}

int main(int argc, char **argv) {
  test_active();
  if (argc > 1 && strcmp(argv[1], "double-free") == 0) {
    void *volatile p = malloc(24);
    free(p);
    free(p);
    return 0;
  }
  if (argc > 2 && strcmp(argv[1], "fd100") == 0) {
    /* where the library's copy of stderr was (F_DUPFD from 100) */
    int fd = open(argv[2], O_WRONLY | O_APPEND);
    if (fd < 0 || dup2(fd, 100) != 100) {
      perror("test_preload fd100");
      return 1;
    }
    close(fd);
    free(malloc(24));
    return 0;
  }
  test_zero();
  test_huge();
  test_sizes();
  test_align();
  test_realloc();
  test_foreign();
  test_threads();
  test_fork();
  printf("test_preload: every check passed (threshold %zu)\n", thr);
  return 0;
}
