/* malloc-churn and alloc-random: the allocator's steady state under random
 * replacement of a live set.
 *
 * Each worker fills a live set of `slots` blocks of random sizes (untimed),
 * then, per step, picks a random slot, checks and frees its block, and
 * allocates a block of a new random size into it. The live set stays
 * constant while the allocator sees a mixed, unordered stream of frees and
 * allocations: the pattern that fragments pools, where each free lands on a
 * block allocated long ago, in a pool that is usually neither the fullest
 * nor the emptiest, and the size classes mix freely.
 *
 *   malloc-churn   16,384 slots, 8..512 B (~4 MiB per thread: fits a large
 *                  L2/L3), the end-to-end check of the harness
 *   alloc-random   100,000 slots, 1..512 B (~25 MiB per thread), so the
 *                  cost of cache and TLB misses in the allocator's metadata
 *                  shows, and so do the smallest size classes
 *
 * --sizes and --size-dist change the sizes (sizes.h); with blocks larger on
 * average than the default range's, the live set has fewer slots, so that
 * it holds about the same bytes (at least 256 slots).
 *
 * One operation is one step (a free and a malloc); one step in
 * latency_every is timed, free and malloc together.
 *
 * Tags as in block_tag.h, checked before each free: an allocator that hands
 * the same memory out twice, or lets a block overrun another, fails the run.
 * The checksum hashes the (slot, size) sequence of the fill and of every
 * step: it depends on seed, thread and steps only, never on the allocator.
 *
 * Memory is measured around the run: RSS before the live set exists, after
 * freeing every other slot (half the blocks live, scattered over every
 * page: fragmentation), and after freeing everything (what the allocator
 * gave back).
 */
#include <stdio.h>
#include <stdlib.h>

#include "block_tag.h"
#include "hl_alloc.h"
#include "sizes.h"
#include "workload.h"

#define TICK_EVERY 512u

typedef struct replace_params {
  uint32_t slots, min_size, max_size;   /* the defaults: --sizes=auto */
} replace_params_t;

typedef struct replace_shared {
  uint32_t slots;
  hl_sizes_t sizes;
  hl_result_alloc_t alloc;   /* written by the serial worker of each phase */
} replace_shared_t;

static inline unsigned char *tagged_alloc(uint32_t slot, uint32_t size) {
  unsigned char *p = hl_alloc_malloc(size);
  if (HL_LIKELY(p)) block_tag_write(p, slot, size);
  return p;
}

static void replace_work(hl_worker_t *w) {
  replace_shared_t *s = w->shared;
  const hl_sizes_t *prm = &s->sizes;
  const uint32_t slots = s->slots;
  void **blocks = calloc(slots, sizeof *blocks);
  uint32_t *sizes = calloc(slots, sizeof *sizes);
  if (!blocks || !sizes) hl_worker_fail(w, "out of memory for the slot table");

  if (hl_worker_phase(w)) {
    s->alloc.valid = true;
    s->alloc.rss_before_bytes = hl_rss_current_bytes();
  }
  hl_worker_phase_done(w);

  hl_rand_t *rng = &w->rng;
  uint64_t sum = HL_FNV_OFFSET ^ ((uint64_t)w->index << 48);
  for (uint32_t i = 0; i < slots && !w->error; i++) {
    uint32_t size = hl_sizes_draw(prm, rng);
    sizes[i] = size;
    sum = hl_fnv1a_u64(sum, ((uint64_t)i << 32) | size);
    if (!(blocks[i] = tagged_alloc(i, size)))
      hl_worker_fail(w, "out of memory filling the live set (slot %u, %u bytes)", i, size);
  }

  hl_worker_begin(w);
  uint64_t ops = 0;
  uint64_t every = w->latency_every, countdown = every;
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t chunk = hl_worker_chunk(w, ops, TICK_EVERY);
    for (uint64_t k = 0; k < chunk; k++) {
      uint32_t i = (uint32_t)hl_rand_below(rng, slots);
      uint32_t size = hl_sizes_draw(prm, rng);
      if (HL_UNLIKELY(!block_tag_check(blocks[i], i, sizes[i]))) {
        hl_worker_fail(w, "heap corruption: slot %u (%u bytes) was overwritten", i, sizes[i]);
        blocks[i] = NULL;  /* do not free what we cannot trust */
        ops += k;
        goto stop;
      }
      bool timed = --countdown == 0;
      if (timed) countdown = every;
      uint64_t t = timed ? hl_now_ns() : 0;
      hl_alloc_free(blocks[i]);
      blocks[i] = tagged_alloc(i, size);
      if (timed) hl_hist_record(w->latency, hl_now_ns() - t);
      if (HL_UNLIKELY(!blocks[i])) {
        hl_worker_fail(w, "out of memory: malloc(%u) returned NULL", size);
        ops += k;
        goto stop;
      }
      sizes[i] = size;
      sum = hl_fnv1a_u64(sum, ((uint64_t)i << 32) | size);
    }
    ops += chunk;
  }
stop:
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);

  /* Untimed: fragmentation, then full release (NULL slots are skipped rather
   * than handed to free()). */
  for (uint32_t i = 1; blocks && i < slots; i += 2) {
    if (blocks[i]) hl_alloc_free(blocks[i]);
    blocks[i] = NULL;
  }
  if (hl_worker_phase(w)) s->alloc.rss_after_frag_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
  for (uint32_t i = 0; blocks && i < slots; i += 2)
    if (blocks[i]) hl_alloc_free(blocks[i]);
  if (hl_worker_phase(w)) s->alloc.rss_after_free_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
  free(blocks);
  free(sizes);
}

static int replace_setup(const hl_config_t *c, const replace_params_t *p, void **shared,
                         char *err, size_t errlen) {
  replace_shared_t *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (hl_sizes_init(&s->sizes, c, p->min_size, p->max_size, 0, err, errlen) != 0) {
    hl_sizes_fini(&s->sizes);
    free(s);
    return -1;
  }
  *shared = s;
  s->slots = hl_sizes_scale_slots(&s->sizes, p->slots, p->min_size, p->max_size, 256);
  return 0;
}

static void replace_teardown(void *shared, hl_result_alloc_t *alloc) {
  replace_shared_t *s = shared;
  if (!s) return;
  *alloc = s->alloc;
  hl_sizes_fini(&s->sizes);
  free(s);
}

static int churn_check(const hl_config_t *c, char *err, size_t errlen) {
  return hl_sizes_check(c, 8, 512, 0, err, errlen);
}

static int random_check(const hl_config_t *c, char *err, size_t errlen) {
  return hl_sizes_check(c, 1, 512, 0, err, errlen);
}

static int churn_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  static const replace_params_t p = {.slots = 16384, .min_size = 8, .max_size = 512};
  return replace_setup(c, &p, shared, err, errlen);
}

static int random_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  static const replace_params_t p = {.slots = 100000, .min_size = 1, .max_size = 512};
  return replace_setup(c, &p, shared, err, errlen);
}

const hl_workload_t hl_workload_malloc_churn = {
  .name = "malloc-churn",
  .summary = "random sizes 8..512 B (--sizes, --size-dist); a live set of 16,384 slots per "
             "thread replaced at random",
  .unit = "2,000,000 replacements per thread",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES | HL_SIZES_USES,
  .ops_per_scale = 2000000,
  .check = churn_check,
  .setup = churn_setup,
  .work = replace_work,
  .teardown = replace_teardown,
};

const hl_workload_t hl_workload_alloc_random = {
  .name = "alloc-random",
  .summary = "random sizes 1..512 B (--sizes, --size-dist); a live set of 100,000 slots per "
             "thread replaced at random",
  .unit = "4,000,000 replacements (a free and a malloc each) per thread",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES | HL_SIZES_USES,
  .ops_per_scale = 4000000,
  .check = random_check,
  .setup = random_setup,
  .work = replace_work,
  .teardown = replace_teardown,
};
