/* alloc-random: the allocator's steady state under random replacement, with
 * a live set larger than the caches.
 *
 * Each worker fills a live set of SLOTS blocks of random sizes 1..512 bytes
 * (untimed), then, per step, picks a random slot, checks and frees its
 * block, and allocates a block of a new random size into it. The live set
 * stays at SLOTS blocks (about 25 MiB per thread), scattered over every pool
 * in allocation order long forgotten: each free lands on a cold block, in a
 * pool that is usually neither the fullest nor the emptiest, and the size
 * classes mix freely. Where malloc-churn keeps 16,384 slots (a live set
 * that fits in a large L2/L3) and sizes from 8 bytes, this one keeps 100,000
 * and starts at 1 byte, so the cost of cache and TLB misses in the
 * allocator's metadata shows, and so do the smallest size classes.
 *
 * One operation is one step (a free and a malloc); one step in latency_every
 * is timed, free and malloc together, as in malloc-churn.
 *
 * Tags as in block_tag.h, checked before each free. The checksum hashes the
 * (slot, size) sequence of the fill and of every step: it depends on seed,
 * thread and steps only, never on the allocator.
 */
#include <stdlib.h>

#include "block_tag.h"
#include "hl_alloc.h"
#include "workload.h"

#define SLOTS 100000u
#define MIN_SIZE 1u
#define MAX_SIZE 512u
#define TICK_EVERY 512u

static inline uint32_t random_size(hl_rand_t *rng) {
  return MIN_SIZE + (uint32_t)hl_rand_below(rng, MAX_SIZE - MIN_SIZE + 1);
}

static inline unsigned char *random_alloc(uint32_t slot, uint32_t size) {
  unsigned char *p = hl_alloc_malloc(size);
  if (HL_LIKELY(p)) block_tag_write(p, slot, size);
  return p;
}

static void random_work(hl_worker_t *w) {
  void **blocks = calloc(SLOTS, sizeof *blocks);
  uint16_t *sizes = calloc(SLOTS, sizeof *sizes);
  if (!blocks || !sizes) hl_worker_fail(w, "out of memory for the slot table");

  hl_rand_t *rng = &w->rng;
  uint64_t sum = HL_FNV_OFFSET ^ ((uint64_t)w->index << 48);
  for (uint32_t i = 0; i < SLOTS && !w->error; i++) {
    uint32_t size = random_size(rng);
    sizes[i] = (uint16_t)size;
    sum = hl_fnv1a_u64(sum, ((uint64_t)i << 32) | size);
    if (!(blocks[i] = random_alloc(i, size)))
      hl_worker_fail(w, "out of memory filling the live set (slot %u, %u bytes)", i, size);
  }

  hl_worker_begin(w);
  uint64_t ops = 0;
  uint64_t every = w->latency_every, countdown = every;
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t chunk = TICK_EVERY;
    if (w->target_ops && w->target_ops - ops < chunk) chunk = w->target_ops - ops;
    for (uint64_t k = 0; k < chunk; k++) {
      uint32_t i = (uint32_t)hl_rand_below(rng, SLOTS);
      uint32_t size = random_size(rng);
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
      blocks[i] = random_alloc(i, size);
      if (timed) hl_hist_record(w->latency, hl_now_ns() - t);
      if (HL_UNLIKELY(!blocks[i])) {
        hl_worker_fail(w, "out of memory: malloc(%u) returned NULL", size);
        ops += k;
        goto stop;
      }
      sizes[i] = (uint16_t)size;
      sum = hl_fnv1a_u64(sum, ((uint64_t)i << 32) | size);
    }
    ops += chunk;
  }
stop:
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);

  /* Untimed: give everything back (NULL slots are free() no-ops in every
   * allocator measured, but skip them rather than rely on it). */
  for (uint32_t i = 0; blocks && i < SLOTS; i++)
    if (blocks[i]) hl_alloc_free(blocks[i]);
  free(blocks);
  free(sizes);
}

const hl_workload_t hl_workload_alloc_random = {
  .name = "alloc-random",
  .summary = "random sizes 1..512 B; a live set of 100,000 slots per thread replaced at random",
  .unit = "4,000,000 replacements (a free and a malloc each) per thread",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES,
  .ops_per_scale = 4000000,
  .setup = NULL,              /* the runner sets the allocator up */
  .work = random_work,
  .teardown = NULL,
};
