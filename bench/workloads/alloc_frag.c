/* alloc-frag: how much memory an allocator strands when the sizes in use
 * change, and how much it gives back.
 *
 * Per worker, at scale 1 (every count times scale):
 *   1. allocate 2,000,000 blocks of 64 bytes                     (128 MiB)
 *   2. free every other one (the odd indices), in random order   (64 MiB left)
 *   3. allocate 1,000,000 blocks of 128 bytes                    (+128 MiB)
 *        -> rss_after_frag_bytes
 *   4. free everything left (the even 64-byte blocks in index order, then
 *      the 128-byte ones)
 *        -> rss_after_free_bytes
 *   5. each worker calls hl_alloc_collect(), as a runtime does after a full
 *      collection (our pools: thread caches flushed and every empty arena
 *      released, the decay notwithstanding; glibc: malloc_trim(0); mimalloc:
 *      mi_collect(true); jemalloc: a purge of every arena; tcmalloc:
 *      MallocExtension_ReleaseFreeMemory; CPython's obmalloc has no such
 *      call and releases its empty arenas at once anyway)
 *        -> rss_after_collect_bytes
 *      So rss_after_free shows what an allocator keeps of its own accord
 *      (the hysteresis and decay of our pools, the caches of the others),
 *      and rss_after_collect what it can give back when asked.
 * rss_before_bytes is taken before step 1. Each worker does all of it, so
 * threads=N needs N times the memory: about 192 MiB live per thread at the
 * peak, plus the allocator's overhead, plus 28 MiB of the worker's tables.
 *
 * Where rss_after_frag is taken: after step 3, not after step 2. After
 * step 2 every allocator holds the same 64 MiB spread over 128 MiB of
 * pages; the difference between allocators shows when new requests arrive
 * that could use that space. A size-class allocator (obmalloc, mimalloc,
 * jemalloc, tcmalloc) cannot put a 128-byte block in a 64-byte hole, so its
 * RSS after step 3 is about 128 + 128 MiB; an allocator that coalesces
 * neighbouring holes could reach 64 + 128 MiB, but here the holes never
 * touch (every other block is live), so none can. glibc is no exception:
 * its 80-byte chunks (64 bytes plus header) freed in step 2 sit in the
 * tcache and fastbins, which do not coalesce, and 144-byte chunks cannot use
 * them. The figure to compare is rss_after_frag - rss_before against the
 * 192 MiB live.
 *
 * The timed part is steps 1 to 4; ops counts every malloc and every free
 * (6,000,000 per thread at scale 1). The RSS reading after step 3 happens
 * inside it: one barrier and a read of /proc/self/statm, tens of
 * microseconds against the hundreds of milliseconds of the steps, and the
 * barrier is what makes the reading mean something with several threads
 * (every worker has finished step 3). One in latency_every operations is
 * timed on its own (the allocator call only).
 *
 * The worker's tables (block pointers, the shuffled order) are mapped
 * straight from the OS and touched before rss_before is read, so that they
 * are in every RSS reading alike and stay out of the heap being measured
 * (with alloc=system they would otherwise share glibc's heap with the
 * blocks).
 *
 * The workload is one fixed sequence, so duration-s does not apply (the
 * driver notes it if set); scale sets its size. Tags as in block_tag.h,
 * checked before each free. The checksum hashes the order of the step-2
 * frees and the counts: it depends on seed, thread and scale only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "block_tag.h"
#include "hl_alloc.h"
#include "workload.h"

#define SMALL_PER_SCALE 2000000ull
#define LARGE_PER_SCALE 1000000ull
#define SMALL_SIZE 64u
#define LARGE_SIZE 128u
#define OPS_PER_SCALE (SMALL_PER_SCALE * 2 + LARGE_PER_SCALE * 2)
#define TICK_EVERY 4096u
/* identities of the 128-byte blocks in their tags: apart from the 64-byte ones */
#define LARGE_ID_BASE (1ull << 40)

typedef struct frag_shared {
  uint64_t nsmall, nlarge;
  hl_result_alloc_t alloc;     /* written by the serial worker of each phase */
} frag_shared_t;

static int frag_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  /* the shuffled order holds 32-bit indices of the odd blocks */
  if (SMALL_PER_SCALE / 2 * c->scale > UINT32_MAX) {
    snprintf(err, errlen, "option 'scale': %llu is too large for alloc-frag (at most %llu)",
             (unsigned long long)c->scale,
             (unsigned long long)(UINT32_MAX / (SMALL_PER_SCALE / 2)));
    return -1;
  }
  frag_shared_t *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  s->nsmall = SMALL_PER_SCALE * c->scale;
  s->nlarge = LARGE_PER_SCALE * c->scale;
  *shared = s;
  return 0;
}

static void *map_table(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  memset(p, 0, bytes);  /* resident now, before rss_before */
  return p;
}

typedef struct frag_ctx {
  hl_worker_t *w;
  uint64_t ops, countdown;
} frag_ctx_t;

static inline void *frag_malloc(frag_ctx_t *x, size_t size) {
  bool timed = --x->countdown == 0;
  if (timed) x->countdown = x->w->latency_every;
  uint64_t t = timed ? hl_now_ns() : 0;
  void *p = hl_alloc_malloc(size);
  if (timed) hl_hist_record(x->w->latency, hl_now_ns() - t);
  if (HL_UNLIKELY(++x->ops % TICK_EVERY == 0)) hl_worker_tick(x->w, x->ops);
  return p;
}

/* Checks the tag, then frees; a block whose tag is wrong is left alone. */
static inline void frag_free(frag_ctx_t *x, void **slot, uint64_t id, uint32_t size) {
  if (!*slot) return;
  if (HL_UNLIKELY(!block_tag_check(*slot, id, size))) {
    if (!x->w->error)
      hl_worker_fail(x->w, "heap corruption: %u-byte block %llu was overwritten", size,
                     (unsigned long long)(id >= LARGE_ID_BASE ? id - LARGE_ID_BASE : id));
    *slot = NULL;
    return;
  }
  bool timed = --x->countdown == 0;
  if (timed) x->countdown = x->w->latency_every;
  uint64_t t = timed ? hl_now_ns() : 0;
  hl_alloc_free(*slot);
  if (timed) hl_hist_record(x->w->latency, hl_now_ns() - t);
  *slot = NULL;
  if (HL_UNLIKELY(++x->ops % TICK_EVERY == 0)) hl_worker_tick(x->w, x->ops);
}

/* Allocates n blocks of `size` into table (ids id_base + i); stops at the
 * first failure (the rest stay NULL). */
static void frag_fill(frag_ctx_t *x, void **table, uint64_t n, uint32_t size, uint64_t id_base) {
  for (uint64_t i = 0; i < n && !x->w->error; i++) {
    unsigned char *p = frag_malloc(x, size);
    if (HL_UNLIKELY(!p)) {
      hl_worker_fail(x->w, "out of memory: malloc(%u) returned NULL (block %llu of %llu)", size,
                     (unsigned long long)i, (unsigned long long)n);
      break;
    }
    block_tag_write(p, id_base + i, size);
    table[i] = p;
  }
}

static void frag_work(hl_worker_t *w) {
  frag_shared_t *s = w->shared;
  uint64_t nsmall = s->nsmall, nlarge = s->nlarge, nodd = nsmall / 2;
  size_t small_bytes = nsmall * sizeof(void *), large_bytes = nlarge * sizeof(void *);
  size_t order_bytes = nodd * sizeof(uint32_t);
  void **small = map_table(small_bytes), **large = map_table(large_bytes);
  uint32_t *order = map_table(order_bytes);
  if (!small || !large || !order)
    hl_worker_fail(w, "cannot map %zu MiB for the block tables",
                   (small_bytes + large_bytes + order_bytes) >> 20);

  /* The odd indices in random order (Fisher-Yates), drawn before the timed
   * part so that the random number generator is not measured. */
  uint64_t sum = HL_FNV_OFFSET ^ ((uint64_t)w->index << 48);
  sum = hl_fnv1a_u64(hl_fnv1a_u64(sum, nsmall), nlarge);
  if (!w->error) {
    for (uint64_t k = 0; k < nodd; k++) order[k] = (uint32_t)(2 * k + 1);
    for (uint64_t k = nodd; k > 1; k--) {
      uint64_t j = hl_rand_below(&w->rng, k);
      uint32_t t = order[k - 1];
      order[k - 1] = order[j];
      order[j] = t;
    }
    for (uint64_t k = 0; k < nodd; k++) sum = hl_fnv1a_u64(sum, order[k]);
  }

  if (hl_worker_phase(w)) {
    s->alloc.valid = true;
    s->alloc.rss_before_bytes = hl_rss_current_bytes();
  }
  hl_worker_phase_done(w);

  hl_worker_begin(w);
  frag_ctx_t x = {.w = w, .ops = 0, .countdown = w->latency_every};
  if (!w->error) {
    frag_fill(&x, small, nsmall, SMALL_SIZE, 0);                  /* 1 */
    for (uint64_t k = 0; k < nodd; k++)                           /* 2 */
      frag_free(&x, &small[order[k]], order[k], SMALL_SIZE);
    frag_fill(&x, large, nlarge, LARGE_SIZE, LARGE_ID_BASE);      /* 3 */
  }
  if (hl_worker_phase(w)) s->alloc.rss_after_frag_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
  for (uint64_t i = 0; small && i < nsmall; i += 2)               /* 4 */
    frag_free(&x, &small[i], i, SMALL_SIZE);
  for (uint64_t i = 0; large && i < nlarge; i++)
    frag_free(&x, &large[i], LARGE_ID_BASE + i, LARGE_SIZE);
  w->ops = x.ops;
  w->checksum = sum;
  hl_worker_end(w);

  if (hl_worker_phase(w)) s->alloc.rss_after_free_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
  hl_alloc_collect();                                             /* 5 */
  if (hl_worker_phase(w)) s->alloc.rss_after_collect_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
  if (small) munmap(small, small_bytes);
  if (large) munmap(large, large_bytes);
  if (order) munmap(order, order_bytes);
}

static void frag_teardown(void *shared, hl_result_alloc_t *alloc) {
  frag_shared_t *s = shared;
  if (!s) return;
  *alloc = s->alloc;
  free(s);
}

const hl_workload_t hl_workload_alloc_frag = {
  .name = "alloc-frag",
  .summary = "2M x 64 B, free every other one, 1M x 128 B, free all: RSS at each step",
  .unit = "2,000,000 64-byte and 1,000,000 128-byte blocks (6,000,000 mallocs and frees) per thread",
  /* one fixed sequence: duration-s has no effect */
  .uses = (HL_RUNNER_USES & ~HL_OPT_BIT(HL_OPT_DURATION_S)) | HL_ALLOC_USES,
  .ops_per_scale = OPS_PER_SCALE,
  .setup = frag_setup,
  .work = frag_work,
  .teardown = frag_teardown,
};
