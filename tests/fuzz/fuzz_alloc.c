/* tests/fuzz/fuzz_alloc.c: a libFuzzer harness for the pool allocator's
 * public API (alloc/hl_alloc.h), checked against a model the harness keeps.
 *
 * An input is a program. Each operation is one opcode byte and its operands;
 * a missing operand byte reads as 0 and the program ends with the input:
 *
 *   op % 13   operation         operands
 *   0, 1      malloc            slot, size        (an occupied slot is freed first)
 *   2         calloc            slot, nelem, size (bit 7 of nelem: an overflowing
 *                                                  product, which must give NULL)
 *   3, 4      realloc           slot, size        (an empty slot: realloc(NULL, n))
 *   5, 6      free              slot              (an empty slot: free(NULL))
 *   7         stats             -                 hl_alloc_stats against the model
 *   8         collect           -                 hl_alloc_collect: no empty arena kept
 *   9         validate          -                 hli_pools_validate
 *   10        burst             count, size, order: up to ~3 modern arenas of blocks,
 *                                                  freed in an order, so arenas fill,
 *                                                  re-sort and go back to the OS
 *   11        foreign           slot, size        a libc block, later freed and
 *                                                  realloc'd through hl_alloc_*
 *   12        oom               nth, slot, size   malloc with the 1st..4th OS mapping
 *                                                  from now failing (hl_os_fail_nth_map):
 *                                                  a pool-sized request that needed a
 *                                                  new arena falls back to the raw layer
 *
 * slot = byte % 64. A size is a selector byte and a 16-bit value covering 0,
 * 1..max (the largest class: the threshold, or with large=medium the
 * largest medium class, up to 64 KiB in spans of pools), the size-class
 * boundaries (size - 1, size,
 * size + 1 of every class), max+1..4*max, and raw requests up to 256 KiB.
 *
 * The model: every live block has its request size n, the class size of its
 * block when the pool allocator must own it (0: the raw layer or libc), and a
 * tag (slot and generation) from which its bytes are filled. Before realloc
 * and free, every byte is checked against the tag; realloc must keep the
 * common prefix and follow CPython's rule for moving: a pool block stays in
 * place iff the new size is in 1..max, fits, and shrinks it by less than
 * a quarter (4n > 3*block); a raw block stays raw. hl_pool_owns must agree
 * with the model after every operation, and the statistics (blocks and bytes
 * in use, summed per class too) with its counts. At the end of each input
 * every block is freed: no block, no used pool, at most keep_empty arenas.
 *
 * Huge blocks (large=medium, alloc/huge.c): a request above max is then
 * ours, a mapping of its own; the model marks such a block huge, expects
 * hl_pool_owns and a usable size of at least n, counts them against the
 * statistics' huge_blocks, and lets realloc keep or move one as it likes
 * (mremap) while the new size stays above max. Sizes above max reach 4*max
 * and 256 KiB, so the cache of freed mappings is hit and passed over, and
 * collect empties it.
 *
 * The pool's blocks are not poisoned for ASan (they live in our own mmap'd
 * arenas), so the tag check is what finds a block handed out twice or
 * overwritten by the allocator's free list; ASan finds the allocator reading
 * or writing outside its mappings and the raw layer's misuse, UBSan the
 * arithmetic.
 *
 * The allocator is set up once (the radix tree's key width is fixed per
 * process): alloc=pool, one thread, geometry, arena options and thread
 * cache from the HEAPLAB_* environment as users set them (modern and
 * tcache=none when unset; with a cache, validate checks the instance that
 * serves the thread, its heap under tcache=heap and heap-magazine, the
 * cache's free blocks are not the program's, and the end of an input
 * collects them before its checks), and, unless
 * HEAPLAB_ARENA_KEEP_KIB is set, one arena kept so that release runs.
 * Build and run: see tests/fuzz/CMakeLists.txt.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_internal.h"
#include "hl_alloc.h"
#include "pool.h"

extern char **environ;
const hl_pools_t *hli_alloc_pools(void);
const hl_pools_t *hli_alloc_pools_self(void);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { NSLOTS = 64, NOPS = 13, BURST_MAX = 4096 };

typedef struct slot {
  unsigned char *p;   /* NULL: empty */
  size_t n;           /* bytes requested and filled */
  size_t block;       /* class size when the pools must own p; 0: raw or libc */
  bool huge;          /* a huge block (large=medium, above max): ours, block 0 */
  uint32_t tag;
} slot_t;

typedef struct input {
  const uint8_t *p;
  size_t n;
} input_t;

static hl_config_t cfg;
static hl_geometry_t geo;
static slot_t slots[NSLOTS];
static void *burst[BURST_MAX];
static size_t seq[BURST_MAX];
static uint32_t generation;
static uint64_t op_index;     /* of the current input, for messages */

static HL_NORETURN HL_PRINTF(1, 2) void fail(const char *fmt, ...);

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_alloc: op %llu: ", (unsigned long long)op_index);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();   /* libFuzzer reports a deadly signal and saves the input */
}

static unsigned take_u8(input_t *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

static unsigned take_u16(input_t *in) {
  unsigned lo = take_u8(in);
  return lo | take_u8(in) << 8;
}

static size_t take_size(input_t *in) {
  unsigned sel = take_u8(in), v = take_u16(in);
  size_t t = geo.max_size;
  switch (sel % 8) {
  case 0: return 0;
  case 1: case 2: case 3: return 1 + v % t;
  case 4: return hl_class_size(&geo, v % geo.nclasses) + (sel >> 3) % 3 - 1;   /* boundaries */
  case 5: return t + 1 + v % (3 * t);
  case 6: return v;
  default: return (size_t)(v & 0x3fff) << 4;                   /* up to 256 KiB */
  }
}

/* The block size the model expects for a fresh request of n bytes. */
static size_t class_bytes(size_t n) {
  return n >= 1 && n <= geo.max_size ? hl_class_size(&geo, hl_size_class(&geo, n)) : 0;
}
/* Whether a fresh request of n bytes is a huge block. */
static bool huge_on;
static bool is_huge(size_t n) { return huge_on && n > geo.max_size; }

/* A block of tag t holds ref[t % 251 ..]: fill and check are one memcpy and
 * one memcmp (libc speed, one ASan range check each) over up to 256 KiB;
 * byte loops here cost 95% of the time under libFuzzer's comparison tracing.
 * Two live blocks match each other's bytes only if their tags agree mod 251:
 * a block handed out twice is caught unless the tags collide. */
enum { REF_MAX = 1 << 18 };
static unsigned char ref[REF_MAX + 256];

static void ref_init(void) {
  for (size_t j = 0; j < sizeof ref; j++) ref[j] = (unsigned char)(j + (j >> 8) * 7 + (j >> 16) * 13);
}

static inline unsigned char pattern(uint32_t tag, size_t i) { return ref[tag % 251 + i]; }

static void fill(const slot_t *s) {
  if (s->n > REF_MAX) fail("a block of %zu bytes: larger than the harness's pattern", s->n);
  memcpy(s->p, &ref[s->tag % 251], s->n);
}

static void check_bytes(const slot_t *s, size_t n, const char *when) {
  if (memcmp(s->p, &ref[s->tag % 251], n) == 0) return;
  size_t i = 0;
  while (s->p[i] == pattern(s->tag, i)) i++;
  fail("slot %ld (%zu bytes, block %zu) corrupted at byte %zu %s: 0x%02x, expected 0x%02x",
       (long)(s - slots), s->n, s->block, i, when, s->p[i], pattern(s->tag, i));
}

/* The first byte of p[0..n) that is not zero, or n. */
static size_t first_nonzero(const unsigned char *p, size_t n) {
  if (n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0)) return n;
  size_t i = 0;
  while (p[i] == 0) i++;
  return i;
}

static void check_owner(const slot_t *s) {
  bool ours = s->block != 0 || s->huge;
  if (hl_pool_owns(s->p) != ours)
    fail("slot %ld (%zu bytes): hl_pool_owns says %d, the model %d", (long)(s - slots), s->n,
         (int)hl_pool_owns(s->p), ours);
  if (s->huge && hl_pool_block_size(s->p) < s->n)
    fail("slot %ld: a huge block of %zu bytes has a usable size of %zu", (long)(s - slots), s->n,
         hl_pool_block_size(s->p));
}

static void new_tag(slot_t *s) { s->tag = (uint32_t)(s - slots) | ++generation << 6; }

static void release(slot_t *s) {
  if (!s->p) return;
  check_bytes(s, s->n, "before free");
  hl_alloc_free(s->p);   /* libc's blocks too: the radix tree sends them back */
  s->p = NULL;
}

static void validate(void) {
  if (hli_pools_validate(hli_alloc_pools_self()) != 0) fail("hli_pools_validate failed");
}

static hl_alloc_stats_t stats_against_model(void) {
  uint64_t blocks = 0, bytes = 0, huge = 0;
  for (int i = 0; i < NSLOTS; i++)
    if (slots[i].p) {
      check_owner(&slots[i]);
      huge += slots[i].huge;
      if (slots[i].block) {
        blocks++;
        bytes += slots[i].block;
      }
    }
  hl_alloc_stats_t st;
  hl_alloc_stats(&st);
  /* a thread cache's free blocks count as in use for their pools: not the
   * program's (tcache=magazine, heap-magazine) */
  st.blocks_in_use -= st.tcache_blocks;
  st.bytes_in_use -= st.tcache_bytes;
  uint64_t cls_blocks = 0;
  for (unsigned i = 0; i < st.nclasses; i++)
    cls_blocks += st.classes[i].blocks_in_use - st.classes[i].tcache_blocks;
  if (st.blocks_in_use != blocks || st.bytes_in_use != bytes || cls_blocks != blocks)
    fail("stats: blocks_in_use %llu (per class %llu), bytes_in_use %llu; the model: %llu, %llu",
         (unsigned long long)st.blocks_in_use, (unsigned long long)cls_blocks,
         (unsigned long long)st.bytes_in_use, (unsigned long long)blocks,
         (unsigned long long)bytes);
  if (st.huge_blocks != huge)
    fail("stats: huge_blocks %llu; the model: %llu", (unsigned long long)st.huge_blocks,
         (unsigned long long)huge);
  return st;
}

static void op_malloc(slot_t *s, size_t n) {
  release(s);
  s->p = hl_alloc_malloc(n);
  if (!s->p) fail("malloc(%zu) returned NULL", n);
  s->n = n;
  s->block = class_bytes(n);
  s->huge = is_huge(n);
  new_tag(s);
  check_owner(s);
  fill(s);
}

static void op_calloc(slot_t *s, unsigned nelem_byte, size_t elsize) {
  if (nelem_byte & 0x80) {                        /* products that overflow or pass PTRDIFF_MAX */
    size_t e = elsize ? elsize : 1;
    size_t nelem = (size_t)PTRDIFF_MAX / e + 1 + (nelem_byte & 0x7f);
    void *p = hl_pool_calloc(nelem, e);
    if (p) fail("calloc(%zu, %zu) must fail, returned %p", nelem, e, p);
    return;
  }
  size_t nelem = nelem_byte % 17;
  if (elsize > 16384) elsize = 16384;             /* at most 256 KiB zeroed per call */
  size_t n = nelem * elsize;
  release(s);
  s->p = hl_pool_calloc(nelem, elsize);
  if (!s->p) fail("calloc(%zu, %zu) returned NULL", nelem, elsize);
  size_t nonzero = first_nonzero(s->p, n);
  if (nonzero < n)
    fail("calloc(%zu, %zu): byte %zu is 0x%02x", nelem, elsize, nonzero, s->p[nonzero]);
  s->n = n;
  s->block = class_bytes(n);
  s->huge = is_huge(n);
  new_tag(s);
  check_owner(s);
  fill(s);
}

static void op_realloc(slot_t *s, size_t n) {
  if (!s->p) {
    s->p = hl_alloc_realloc(NULL, n);
    if (!s->p) fail("realloc(NULL, %zu) returned NULL", n);
    s->n = n;
    s->block = class_bytes(n);
    s->huge = is_huge(n);
    new_tag(s);
    check_owner(s);
    fill(s);
    return;
  }
  check_bytes(s, s->n, "before realloc");
  size_t b = s->block;
  bool stays = b && n >= 1 && n <= geo.max_size && n <= b && 4 * n > 3 * b;
  unsigned char *q = hl_alloc_realloc(s->p, n);
  if (!q) fail("realloc(%zu bytes -> %zu) returned NULL", s->n, n);
  if (b && (q == s->p) != stays)
    fail("realloc of a %zu-byte pool block (%zu requested) to %zu: %s, CPython's rule says %s",
         b, s->n, n, q == s->p ? "kept" : "moved", stays ? "keep" : "move");
  s->p = q;
  if ((b && !stays) || s->huge) {   /* a raw block stays raw */
    s->block = class_bytes(n);
    s->huge = is_huge(n);
  }
  size_t keep = n < s->n ? n : s->n;
  check_bytes(s, keep, "after realloc (the common prefix)");
  s->n = n;
  check_owner(s);
  fill(s);
}

static void op_foreign(slot_t *s, size_t n) {
  release(s);
  s->p = malloc(n ? n : 1);
  if (!s->p) fail("libc malloc(%zu) returned NULL", n);
  s->n = n;
  s->block = 0;
  s->huge = false;
  new_tag(s);
  check_owner(s);   /* a libc pointer is not ours */
  fill(s);
}

/* The model cannot tell whether this malloc needs a mapping (a new arena, an
 * arena descriptor page, a radix node), so it learns the answer from
 * hl_pool_owns: what it checks is that the request never fails, that only a
 * pool-sized request lands in the pools, and that a failed mapping leaves the
 * structures valid (the next validate or stats). */
static void op_oom(slot_t *s, unsigned nth, size_t n) {
  release(s);
  hl_os_fail_nth_map(1 + nth % 4);
  s->p = hl_alloc_malloc(n);
  hl_os_fail_nth_map(0);
  if (!s->p) fail("malloc(%zu) returned NULL with a mapping failing: the raw layer must serve it", n);
  s->n = n;
  s->block = hl_pool_owns(s->p) ? class_bytes(n) : 0;
  s->huge = hl_pool_owns(s->p) && is_huge(n);
  if (hl_pool_owns(s->p) && s->block == 0 && !s->huge)
    fail("malloc(%zu) of a non-pool size came from the pools", n);
  new_tag(s);
  fill(s);
}

/* Stamps: a burst block's first bytes and last byte carry its index, enough
 * to catch a block handed out twice without filling megabytes per burst. */
static void burst_stamp(unsigned char *p, size_t n, uint32_t k) {
  size_t m = n < 8 ? n : 8;
  for (size_t i = 0; i < m; i++) p[i] = pattern(k, i);
  p[n - 1] = pattern(k, n - 1);
}
static void burst_check(const unsigned char *p, size_t n, uint32_t k) {
  size_t m = n < 8 ? n : 8;
  for (size_t i = 0; i < m; i++)
    if (p[i] != pattern(k, i)) fail("burst block %u of %zu bytes corrupted at byte %zu", k, n, i);
  if (p[n - 1] != pattern(k, n - 1)) fail("burst block %u of %zu bytes: last byte corrupted", k, n);
}

/* Not instrumented for coverage: its loops run thousands of times per burst
 * and their comparisons say nothing about the allocator (the calls into
 * alloc/ stay instrumented: another translation unit). noinline: inlined
 * into the caller, it would be instrumented as the caller is. */
#if defined(__clang__)
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NO_COVERAGE
#endif
static HL_NOINLINE NO_COVERAGE void op_burst(unsigned count_byte, size_t n, unsigned order) {
  size_t count = 1 + (size_t)count_byte * 16;
  if (count > BURST_MAX) count = BURST_MAX;
  n = 1 + (n ? n - 1 : 0) % geo.max_size;         /* pool sizes only */
  /* about three modern arenas' worth at most, whatever the size: large=medium's
   * span classes (tens of KiB) fill arenas of spans at a few hundred blocks */
  size_t most = 3 * ((size_t)1 << 20) / n;
  if (count > most) count = most > 0 ? most : 1;
  for (size_t k = 0; k < count; k++) {
    burst[k] = hl_alloc_malloc(n);
    if (!burst[k] || !hl_pool_owns(burst[k])) fail("burst: malloc(%zu) not from the pools", n);
    burst_stamp(burst[k], n, (uint32_t)k);
  }
  if (order & 4) validate();
  /* Free in one of four orders; the strided and scattered ones leave arenas
   * with different numbers of free pools, which exercises the sorted
   * usable_arenas list and nfp2lasta. seq[j]: the j-th block freed. */
  size_t stride = 2 + (order >> 3) % 7, j = 0;
  switch (order % 4) {
  case 0: for (size_t k = 0; k < count; k++) seq[j++] = k; break;             /* FIFO */
  case 1: for (size_t k = count; k-- > 0;) seq[j++] = k; break;               /* LIFO */
  case 2:                                                                     /* strided */
    for (size_t pass = 0; pass < stride; pass++)
      for (size_t k = pass; k < count; k += stride) seq[j++] = k;
    break;
  default: for (size_t i = 0; i < count; i++) seq[j++] = i * 7919u % count;   /* 7919: prime > count */
  }
  for (j = 0; j < count; j++) {
    size_t k = seq[j];
    burst_check(burst[k], n, (uint32_t)k);
    hl_alloc_free(burst[k]);
    burst[k] = NULL;
    if ((order & 4) && j == count / 2) validate();
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char err[512];
  ref_init();
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "fuzz_alloc: %s\n", err);
    exit(2);
  }
  cfg.alloc = HL_ALLOC_POOL;
  cfg.threads = 1;   /* a thread cache (HEAPLAB_TCACHE) serves this one thread */
  /* the fixed hysteresis only: what the checks after "free everything"
   * assume (decay would keep every arena for its 100 ms) */
  if (cfg.source[HL_OPT_ARENA_DECAY_MS] != HL_SRC_ENV) cfg.arena_decay_ms = 0;
  if (hl_alloc_check_config(&cfg, err, sizeof err) != 0 ||
      hl_alloc_init(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "fuzz_alloc: %s\n", err);
    exit(2);
  }
  geo = hli_alloc_pools()->g;
  huge_on = geo.max_size > geo.threshold;
  if (cfg.source[HL_OPT_ARENA_KEEP_KIB] != HL_SRC_ENV) {
    /* one arena kept: the second empty one goes back to the OS */
    hl_alloc_reset();
    cfg.arena_keep_kib = geo.arena_size / 1024;
    if (hl_alloc_init(&cfg, err, sizeof err) != 0) {
      fprintf(stderr, "fuzz_alloc: %s\n", err);
      exit(2);
    }
  }
  char release[32];
  hl_config_format(&cfg, HL_OPT_ARENA_RELEASE, release, sizeof release);
  fprintf(stderr,
          "fuzz_alloc: geometry %zu,%zu,%zu,%zu, largest block %zu, %u pool colours, "
          "arena-keep-kib %llu, arena-release %s, tcache %s\n",
          geo.alignment, geo.threshold, geo.pool_size, geo.arena_size, geo.max_size,
          geo.colour_mask + 1,
          (unsigned long long)cfg.arena_keep_kib, release,
          hl_config_choice_name(HL_OPT_TCACHE, cfg.tcache));
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input_t in = {data, size};
  op_index = 0;
  while (in.n > 0) {
    unsigned op = take_u8(&in) % NOPS;
    op_index++;
    switch (op) {
    case 0: case 1: {
      slot_t *s = &slots[take_u8(&in) % NSLOTS];
      op_malloc(s, take_size(&in));
      break;
    }
    case 2: {
      slot_t *s = &slots[take_u8(&in) % NSLOTS];
      unsigned nelem = take_u8(&in);
      op_calloc(s, nelem, take_size(&in));
      break;
    }
    case 3: case 4: {
      slot_t *s = &slots[take_u8(&in) % NSLOTS];
      op_realloc(s, take_size(&in));
      break;
    }
    case 5: case 6: {
      slot_t *s = &slots[take_u8(&in) % NSLOTS];
      if (s->p) release(s);
      else hl_alloc_free(NULL);
      break;
    }
    case 7:
      stats_against_model();
      break;
    case 8: {
      hl_alloc_collect();
      hl_alloc_stats_t st = stats_against_model();
      if (st.arenas_kept_empty != 0) fail("collect kept %llu empty arenas",
                                          (unsigned long long)st.arenas_kept_empty);
      if (st.huge_cache_blocks != 0 || st.huge_cache_bytes != 0)
        fail("collect kept %llu huge mappings cached", (unsigned long long)st.huge_cache_blocks);
      break;
    }
    case 9:
      validate();
      break;
    case 10: {
      unsigned count = take_u8(&in);
      size_t n = take_size(&in);
      op_burst(count, n, take_u8(&in));
      break;
    }
    case 11: {
      slot_t *s = &slots[take_u8(&in) % NSLOTS];
      op_foreign(s, take_size(&in));
      break;
    }
    default: {
      unsigned nth = take_u8(&in);
      slot_t *s = &slots[take_u8(&in) % NSLOTS];
      op_oom(s, nth, take_size(&in));
      break;
    }
    }
  }
  /* Everything back: no block in use, no used pool, at most keep_empty
   * arenas and the one each span kind holds (pool.c). */
  op_index++;
  for (int i = 0; i < NSLOTS; i++) release(&slots[i]);
  validate();
  hl_alloc_stats_t st = stats_against_model();
  if (st.tcache_blocks != 0) {   /* a cache's lists hold pools: back to them */
    hl_alloc_collect();
    validate();
    st = stats_against_model();
    if (st.tcache_blocks != 0) fail("collect left %llu blocks in the thread's cache",
                                    (unsigned long long)st.tcache_blocks);
  }
  const hl_pools_t *self = hli_alloc_pools_self();
  unsigned keep = self->keep_empty + self->nheld;
  if (st.pools_used != 0 || st.arenas_current > keep)
    fail("after freeing everything: %llu used pools, %llu arenas mapped (keep %u)",
         (unsigned long long)st.pools_used, (unsigned long long)st.arenas_current, keep);
  return 0;
}

#ifdef HL_FUZZ_SEEDS
/* fuzz_alloc_seeds DIR: writes the seed corpus, programs that reach every
 * operation and every size range, so that a short bounded run starts from
 * coverage instead of finding the opcode table byte by byte. The bytes do not
 * depend on the geometry: sizes are selectors (see take_size). */
#include <errno.h>
#include <sys/stat.h>

enum { SEED_MAX = 4096 };
typedef struct prog { uint8_t b[SEED_MAX]; size_t n; } prog_t;

static void put(prog_t *p, unsigned byte) {
  if (p->n < SEED_MAX) p->b[p->n++] = (uint8_t)byte;
}
static void put_size(prog_t *p, unsigned sel, unsigned v) {
  put(p, sel);
  put(p, v & 0xff);
  put(p, v >> 8);
}

static void write_seed(const char *dir, int k, const prog_t *p) {
  char path[4096];
  snprintf(path, sizeof path, "%s/seed-%02d", dir, k);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p->b, 1, p->n, f) != p->n || fclose(f) != 0) {
    fprintf(stderr, "fuzz_alloc_seeds: %s: %s\n", path, strerror(errno));
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fuzz_alloc_seeds DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "fuzz_alloc_seeds: %s: %s\n", dir, strerror(errno));
    return 1;
  }
  int k = 0;
  prog_t p;
  /* every size selector into its own slot, reallocs across ranges, checks */
  p.n = 0;
  for (unsigned sel = 0; sel < 24; sel++) {
    put(&p, 0), put(&p, sel), put_size(&p, sel, 31 * sel + 7);
  }
  put(&p, 7), put(&p, 9);
  for (unsigned s = 0; s < 24; s++) put(&p, 3), put(&p, s), put_size(&p, (s + 3) % 8, 500 + s);
  put(&p, 7), put(&p, 9);
  for (unsigned s = 0; s < 24; s += 2) put(&p, 5), put(&p, s);
  put(&p, 8), put(&p, 9);
  write_seed(dir, k++, &p);
  /* shrinking reallocs at the keep/move boundary of CPython's rule */
  p.n = 0;
  put(&p, 0), put(&p, 1), put_size(&p, 12, 31);          /* threshold */
  for (unsigned v = 31; v-- > 0;) put(&p, 3), put(&p, 1), put_size(&p, 4 | (v % 3) << 3, v);
  put(&p, 7);
  write_seed(dir, k++, &p);
  /* bursts in each order, with and without validation */
  for (unsigned order = 0; order < 8; order++) {
    p.n = 0;
    put(&p, 0), put(&p, 5), put_size(&p, 1, 40);        /* a block that pins a pool */
    put(&p, 10), put(&p, 255), put_size(&p, 12, 31), put(&p, order | (order << 3));
    put(&p, 7), put(&p, 10), put(&p, 64), put_size(&p, 1, 8), put(&p, order);
    put(&p, 8), put(&p, 7);
    write_seed(dir, k++, &p);
  }
  /* calloc, overflow included; libc blocks through the API */
  p.n = 0;
  for (unsigned s = 0; s < 8; s++) put(&p, 2), put(&p, s), put(&p, s * 3), put_size(&p, s, 9 + s);
  put(&p, 2), put(&p, 9), put(&p, 0x81), put_size(&p, 1, 3);
  for (unsigned s = 10; s < 14; s++) put(&p, 11), put(&p, s), put_size(&p, s, 100 * s);
  for (unsigned s = 10; s < 14; s++) put(&p, 4), put(&p, s), put_size(&p, s + 1, 17 * s);
  put(&p, 7), put(&p, 9), put(&p, 6), put(&p, 10), put(&p, 6), put(&p, 11);
  write_seed(dir, k++, &p);
  /* mapping failures: after collect no arena is kept, so the next pool-sized
   * malloc needs one (arena descriptor, arena, radix nodes: the 1st..4th map) */
  for (unsigned nth = 0; nth < 4; nth++) {
    p.n = 0;
    put(&p, 8), put(&p, 12), put(&p, nth), put(&p, 1), put_size(&p, 1, 100);
    put(&p, 0), put(&p, 2), put_size(&p, 1, 50), put(&p, 7), put(&p, 9);
    put(&p, 10), put(&p, 255), put_size(&p, 12, 31), put(&p, 6);
    put(&p, 12), put(&p, nth), put(&p, 3), put_size(&p, 5, 100), put(&p, 7);
    write_seed(dir, k++, &p);
  }
  /* random programs */
  hl_rand_t r;
  hl_rand_seed(&r, 20261121);
  for (int i = 0; i < 8; i++) {
    p.n = 0;
    size_t len = 64 + hl_rand_below(&r, 1024);
    while (p.n < len) {
      unsigned op = (unsigned)hl_rand_below(&r, NOPS);
      if (op == 10 && hl_rand_below(&r, 4)) op = 0;     /* bursts are slow: fewer */
      put(&p, op);
      put(&p, (unsigned)hl_rand_below(&r, 256));
      put_size(&p, (unsigned)hl_rand_below(&r, 256), (unsigned)hl_rand_below(&r, 65536));
    }
    write_seed(dir, k++, &p);
  }
  printf("fuzz_alloc_seeds: %d seeds in %s\n", k, dir);
  return 0;
}
#endif
