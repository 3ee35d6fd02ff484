/* alloc-lifo and alloc-lifo-large: the allocator under a stack discipline.
 *
 * Two sizes of round, because the answer depends on it: alloc-lifo's rounds
 * hold 10,000 blocks (about 2.5 MiB at the top), which the pool allocator's
 * default hysteresis (3 MiB of empty arenas kept) covers, so a round reuses
 * the previous round's arenas; alloc-lifo-large's hold 100,000 (about
 * 25 MiB), beyond it, so every round gives most arenas back and faults them
 * in again unless --arena-keep-kib is raised or --arena-decay-ms set. CPython's obmalloc, which
 * keeps no empty arena, pays the faults in both.
 *
 * Each worker runs rounds. A round draws `blocks` sizes (uniform in 1..512
 * bytes, the whole small-object range of obmalloc's modern geometry),
 * allocates a block of each in order, then frees them in reverse order, so
 * the last block allocated is the first freed: the pattern of a call stack,
 * of temporaries built and dropped in nested scopes, of a parser's node
 * stack. An allocator with LIFO free lists hands the most recently freed
 * (cache-hot) block back next; at the end of a round every pool and page is
 * empty again, so the round also exercises returning whole pools and
 * arenas, and re-taking them at the next round. Both sizes are large enough
 * that this happens at every level, not only in a thread cache.
 *
 * The sizes are drawn before the allocations of a round so that the random
 * number generator does not sit between them. One operation is one malloc
 * or one free; one in latency_every is timed on its own (the allocator call
 * only, not the tag), so the latency histogram mixes mallocs and frees in
 * equal numbers.
 *
 * Every block carries a tag (block_tag.h) checked before it is freed. The
 * checksum hashes the sizes of every round: it depends on seed, thread and
 * rounds only, never on the allocator.
 *
 * With duration-s, rounds run until the deadline; a round is never cut
 * short (200,000 operations, a few milliseconds).
 */
#include <stdlib.h>

#include "block_tag.h"
#include "hl_alloc.h"
#include "workload.h"

#define BLOCKS 10000u
#define BLOCKS_LARGE 100000u
#define MIN_SIZE 1u
#define MAX_SIZE 512u

static void lifo_run(hl_worker_t *w, const uint32_t nblocks) {
  void **blocks = malloc(nblocks * sizeof *blocks);
  uint16_t *sizes = malloc(nblocks * sizeof *sizes);
  if (!blocks || !sizes) hl_worker_fail(w, "out of memory for the block table");

  hl_worker_begin(w);
  hl_rand_t *rng = &w->rng;
  uint64_t ops = 0, round = 0, sum = HL_FNV_OFFSET ^ ((uint64_t)w->index << 48);
  uint64_t every = w->latency_every, countdown = every;
  while (!w->error && hl_worker_tick(w, ops)) {
    for (uint32_t i = 0; i < nblocks; i++) {
      sizes[i] = (uint16_t)(MIN_SIZE + hl_rand_below(rng, MAX_SIZE - MIN_SIZE + 1));
      sum = hl_fnv1a_u64(sum, (round << 32) | sizes[i]);
    }

    uint32_t n = 0;
    for (; n < nblocks; n++) {
      bool timed = --countdown == 0;
      if (timed) countdown = every;
      uint64_t t = timed ? hl_now_ns() : 0;
      unsigned char *p = hl_alloc_malloc(sizes[n]);
      if (timed) hl_hist_record(w->latency, hl_now_ns() - t);
      if (HL_UNLIKELY(!p)) {
        hl_worker_fail(w, "out of memory: malloc(%u) returned NULL (block %u of round %llu)",
                       sizes[n], n, (unsigned long long)round);
        break;
      }
      block_tag_write(p, n, sizes[n]);
      blocks[n] = p;
    }
    ops += n;

    /* Free what this round holds, even after a failure, so that the
     * allocator is left empty; a block whose tag is wrong is not freed
     * (it may be someone else's). */
    while (n > 0) {
      n--;
      if (HL_UNLIKELY(!block_tag_check(blocks[n], n, sizes[n]))) {
        if (!w->error)
          hl_worker_fail(w, "heap corruption: block %u (%u bytes) of round %llu was overwritten",
                         n, sizes[n], (unsigned long long)round);
        continue;
      }
      bool timed = --countdown == 0;
      if (timed) countdown = every;
      uint64_t t = timed ? hl_now_ns() : 0;
      hl_alloc_free(blocks[n]);
      if (timed) hl_hist_record(w->latency, hl_now_ns() - t);
      ops++;
    }
    round++;
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
  free(blocks);
  free(sizes);
}

static void lifo_work(hl_worker_t *w) { lifo_run(w, BLOCKS); }
static void lifo_large_work(hl_worker_t *w) { lifo_run(w, BLOCKS_LARGE); }

const hl_workload_t hl_workload_alloc_lifo = {
  .name = "alloc-lifo",
  .summary = "rounds of 10,000 mallocs of random sizes 1..512 B (~2.5 MiB), freed in reverse order",
  .unit = "200 rounds (4,000,000 mallocs and frees) per thread",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES,
  .ops_per_scale = 200 * 2ull * BLOCKS,
  .setup = NULL,              /* the runner sets the allocator up */
  .work = lifo_work,
  .teardown = NULL,
};

const hl_workload_t hl_workload_alloc_lifo_large = {
  .name = "alloc-lifo-large",
  .summary = "rounds of 100,000 mallocs of random sizes 1..512 B (~25 MiB), freed in reverse order",
  .unit = "20 rounds (4,000,000 mallocs and frees) per thread",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES,
  .ops_per_scale = 20 * 2ull * BLOCKS_LARGE,
  .setup = NULL,
  .work = lifo_large_work,
  .teardown = NULL,
};
