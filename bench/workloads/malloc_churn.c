/* malloc-churn: the allocator under a steady random replacement load.
 *
 * Each worker keeps a live set of SLOTS blocks of random sizes (8..512 bytes,
 * uniform: the range obmalloc serves). One operation picks a random slot,
 * checks and frees its block, and allocates a new block of a new random size
 * there, so the live set stays constant while the allocator sees a mixed,
 * unordered stream of frees and allocations: the pattern that fragments pools.
 *
 * Every block carries a tag (its slot and size) in its first word and its size
 * in its last byte (when the block is longer than the tag), checked before it is freed: an allocator that hands the
 * same memory out twice, or overruns a neighbour, fails the run.
 *
 * Memory is measured around the run: RSS before the live set exists, after
 * freeing every other slot (fragmentation: half the blocks live, scattered
 * over every page), and after freeing everything (what the allocator gave
 * back). The checksum hashes the sequence of (slot, size) operations: it
 * depends on seed, threads and ops only, never on the allocator, so two
 * configurations with the same checksum did the same work.
 */
#include <stdlib.h>
#include <string.h>

#include "hl_alloc.h"
#include "workload.h"

#define SLOTS 16384u
#define MIN_SIZE 8u
#define MAX_SIZE 512u
#define TAG_MAGIC 0x6865617061616c6cull  /* "heapaall" */
#define TICK_EVERY 512u

typedef struct churn_shared {
  hl_result_alloc_t alloc;   /* written by the serial worker of each phase */
} churn_shared_t;

static int churn_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  (void)c;
  (void)err;
  (void)errlen;
  churn_shared_t *s = calloc(1, sizeof *s);
  if (!s) return -1;
  *shared = s;
  return 0;
}

static inline uint64_t tag_of(uint32_t slot, uint32_t size) {
  return (((uint64_t)slot << 32) | size) ^ TAG_MAGIC;
}

static inline void *churn_alloc(uint32_t slot, uint32_t size) {
  unsigned char *p = hl_alloc_malloc(size);
  if (HL_UNLIKELY(!p)) return NULL;
  uint64_t tag = tag_of(slot, size);
  memcpy(p, &tag, sizeof tag);
  if (size > sizeof tag) p[size - 1] = (unsigned char)size;  /* an 8-byte block is all tag */
  return p;
}

/* Returns false when the block's tag is not what this slot wrote. */
static inline bool churn_check(const unsigned char *p, uint32_t slot, uint32_t size) {
  uint64_t tag;
  memcpy(&tag, p, sizeof tag);
  return tag == tag_of(slot, size) && (size <= sizeof tag || p[size - 1] == (unsigned char)size);
}

static void churn_work(hl_worker_t *w) {
  churn_shared_t *s = w->shared;
  void **blocks = calloc(SLOTS, sizeof *blocks);
  uint32_t *sizes = calloc(SLOTS, sizeof *sizes);
  if (!blocks || !sizes) hl_worker_fail(w, "out of memory for the slot table");

  if (hl_worker_phase(w)) {
    s->alloc.valid = true;
    s->alloc.rss_before_bytes = hl_rss_current_bytes();
  }
  hl_worker_phase_done(w);

  hl_rand_t *rng = &w->rng;
  for (uint32_t i = 0; i < SLOTS && !w->error; i++) {
    sizes[i] = MIN_SIZE + (uint32_t)hl_rand_below(rng, MAX_SIZE - MIN_SIZE + 1);
    if (!(blocks[i] = churn_alloc(i, sizes[i])))
      hl_worker_fail(w, "out of memory filling the live set (slot %u, %u bytes)", i, sizes[i]);
  }

  hl_worker_begin(w);
  uint64_t ops = 0, sum = HL_FNV_OFFSET ^ ((uint64_t)w->index << 48);
  uint64_t every = w->latency_every, countdown = every;
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t chunk = TICK_EVERY;
    if (w->target_ops && w->target_ops - ops < chunk) chunk = w->target_ops - ops;
    for (uint64_t k = 0; k < chunk; k++) {
      uint32_t i = (uint32_t)hl_rand_below(rng, SLOTS);
      uint32_t size = MIN_SIZE + (uint32_t)hl_rand_below(rng, MAX_SIZE - MIN_SIZE + 1);
      if (HL_UNLIKELY(!churn_check(blocks[i], i, sizes[i]))) {
        hl_worker_fail(w, "heap corruption: slot %u (%u bytes) was overwritten", i, sizes[i]);
        blocks[i] = NULL;  /* do not free what we cannot trust */
        break;
      }
      bool timed = --countdown == 0;
      if (timed) countdown = every;
      uint64_t t = timed ? hl_now_ns() : 0;
      hl_alloc_free(blocks[i]);
      blocks[i] = churn_alloc(i, size);
      if (timed) hl_hist_record(w->latency, hl_now_ns() - t);
      if (HL_UNLIKELY(!blocks[i])) {
        hl_worker_fail(w, "out of memory: malloc(%u) returned NULL", size);
        break;
      }
      sizes[i] = size;
      sum = hl_fnv1a_u64(sum, ((uint64_t)i << 32) | size);
    }
    ops += chunk;
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);

  /* Untimed: fragmentation, then full release. */
  for (uint32_t i = 1; blocks && i < SLOTS; i += 2) {
    hl_alloc_free(blocks[i]);
    blocks[i] = NULL;
  }
  if (hl_worker_phase(w)) s->alloc.rss_after_frag_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
  for (uint32_t i = 0; blocks && i < SLOTS; i += 2) {
    hl_alloc_free(blocks[i]);
    blocks[i] = NULL;
  }
  if (hl_worker_phase(w)) s->alloc.rss_after_free_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
  free(blocks);
  free(sizes);
}

static void churn_teardown(void *shared, hl_result_alloc_t *alloc) {
  churn_shared_t *s = shared;
  if (!s) return;
  *alloc = s->alloc;
  free(s);
}

const hl_workload_t hl_workload_malloc_churn = {
  .name = "malloc-churn",
  .summary = "random sizes 8..512 B; a live set of 16384 slots per thread replaced at random",
  .unit = "2,000,000 replacements per thread",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES,
  .ops_per_scale = 2000000,
  .setup = churn_setup,
  .work = churn_work,
  .teardown = churn_teardown,
};
