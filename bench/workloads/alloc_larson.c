/* alloc-larson: a server's steady state, with blocks that migrate between
 * threads.
 *
 * After Larson and Krishnan, "Memory allocation for long-running server
 * applications", ISMM 1998. Their benchmark models a server whose threads
 * keep a live set of objects and replace them at random: each thread owns
 * an array of blocks, and at every step frees a random one and allocates a
 * block of a new random size in its place; when a thread has done its share
 * it exits and a new thread inherits its array, so blocks allocated by one
 * thread are freed by another. This variant keeps that live set and that
 * migration without the thread turnover (which would measure thread
 * creation and per-thread cache start-up): the threads share ONE array of
 * SLOTS_PER_THREAD (1,000) slots per thread, the default small-object run's
 * live set, and every step may land on any slot, so with N threads a block
 * is freed by another thread than its allocator N-1 times in N.
 *
 * Per step, a worker picks a random slot of the whole array and a random
 * size in 8..512 B (--sizes, --size-dist: sizes.h; up to 64 KiB), allocates and tags a block (block_tag.h, id = the
 * slot), atomically exchanges it with the slot's block, checks the tag of
 * the block it took out and frees it. The exchange is what makes two
 * threads that pick the same slot safe without a lock: each takes out a
 * different block, and every block is freed exactly once.
 *
 * A slot is one 64-bit word holding the block's address and its size, so
 * that the thread that takes the block out knows what tag to expect:
 *
 *   slot = (size - 1) << 48 | address      (0: empty, after a failed fill)
 *
 * User-space addresses fit in 48 bits on x86-64 and arm64 (4-level page
 * tables, no pointer tags); a block whose address does not fails the run
 * rather than being packed wrongly.
 *
 * The fill is untimed: worker i allocates slots [1000 i, 1000 (i+1)), so
 * each thread starts with its own blocks; after a few steps per slot they
 * are everyone's. One operation is one step (a malloc, an exchange, a
 * free); one step in latency_every is timed, the malloc and the free
 * together (not the tag or the exchange). The checksum hashes the (slot,
 * size) sequence of the worker's fill and steps: it depends on seed,
 * threads (through the array's size) and ops only, never on the allocator.
 *
 * Memory is measured as in replace.c: RSS before the fill, after freeing
 * the odd slots (half the live set, scattered over every pool, in pools of
 * every thread), and after freeing everything. Each worker frees its own
 * range of slots, whoever allocated the blocks in it.
 */
#include <stdio.h>
#include <stdlib.h>

#include "block_tag.h"
#include "hl_alloc.h"
#include "sizes.h"
#include "workload.h"

#define SLOTS_PER_THREAD 1000u
#define MIN_SIZE 8u
#define MAX_SIZE 512u
#define SIZE_LIMIT 65536u   /* size - 1 in a slot's 16 high bits */
#define TICK_EVERY 512u
#define ADDR_BITS 48
#define ADDR_MASK ((1ull << ADDR_BITS) - 1)

typedef struct larson_shared {
  uint64_t *slots;          /* (size - 1) << 48 | address, accessed atomically */
  uint32_t nslots;
  hl_sizes_t sizes;
  hl_result_alloc_t alloc;  /* written by the serial worker of each phase */
} larson_shared_t;

static inline uint64_t slot_pack(const void *p, uint32_t size) {
  return (uint64_t)(size - 1) << ADDR_BITS | (uint64_t)(uintptr_t)p;
}
static inline unsigned char *slot_block(uint64_t v) { return (unsigned char *)(uintptr_t)(v & ADDR_MASK); }
static inline uint32_t slot_size(uint64_t v) { return (uint32_t)(v >> ADDR_BITS) + 1; }

/* Tags p, just allocated for slot i; false (worker failed, p not kept) when
 * malloc failed or p cannot be packed into a slot. */
static bool take_block(hl_worker_t *w, unsigned char *p, uint32_t i, uint32_t size) {
  if (HL_UNLIKELY(!p)) {
    hl_worker_fail(w, "out of memory: malloc(%u) returned NULL", size);
    return false;
  }
  if (HL_UNLIKELY((uintptr_t)p >> ADDR_BITS)) {
    hl_worker_fail(w, "block address %p does not fit in %d bits", (void *)p, ADDR_BITS);
    hl_alloc_free(p);
    return false;
  }
  block_tag_write(p, i, size);
  return true;
}

/* Checks the block taken out of slot i; false (worker failed) when its tag
 * is wrong. An empty slot passes. */
static bool check_taken(hl_worker_t *w, uint32_t i, uint64_t v) {
  if (HL_LIKELY(v == 0 || block_tag_check(slot_block(v), i, slot_size(v)))) return true;
  if (!w->error)
    hl_worker_fail(w, "heap corruption: slot %u (%u bytes) was overwritten", i, slot_size(v));
  return false;
}

/* Untimed, after the timed part (no exchange runs any more): empties slots
 * lo, lo+step, ... below hi. A block with a bad tag is left allocated. */
static void free_range(hl_worker_t *w, larson_shared_t *s, uint32_t lo, uint32_t hi, uint32_t step) {
  for (uint32_t i = lo; i < hi; i += step) {
    uint64_t v = hl_atomic_xchg_u64(&s->slots[i], 0);
    if (v && check_taken(w, i, v)) hl_alloc_free(slot_block(v));
  }
}

static void larson_work(hl_worker_t *w) {
  larson_shared_t *s = w->shared;
  const uint32_t nslots = s->nslots;
  const uint32_t lo = w->index * SLOTS_PER_THREAD, hi = lo + SLOTS_PER_THREAD;
  hl_rand_t *rng = &w->rng;

  if (hl_worker_phase(w)) {
    s->alloc.valid = true;
    s->alloc.rss_before_bytes = hl_rss_current_bytes();
  }
  hl_worker_phase_done(w);

  uint64_t sum = HL_FNV_OFFSET ^ ((uint64_t)w->index << 48);
  for (uint32_t i = lo; i < hi && !w->error; i++) {
    uint32_t size = hl_sizes_draw(&s->sizes, rng);
    sum = hl_fnv1a_u64(sum, ((uint64_t)i << 32) | size);
    unsigned char *p = hl_alloc_malloc(size);
    /* relaxed: the barrier in hl_worker_begin publishes the fill */
    if (take_block(w, p, i, size)) hl_atomic_store_relaxed_u64(&s->slots[i], slot_pack(p, size));
  }

  hl_worker_begin(w);
  uint64_t ops = 0;
  uint64_t every = w->latency_every, countdown = every;
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t chunk = hl_worker_chunk(w, ops, TICK_EVERY);
    for (uint64_t k = 0; k < chunk; k++) {
      uint32_t i = (uint32_t)hl_rand_below(rng, nslots);
      uint32_t size = hl_sizes_draw(&s->sizes, rng);
      bool timed = --countdown == 0;
      if (timed) countdown = every;
      uint64_t t = timed ? hl_now_ns() : 0;
      unsigned char *p = hl_alloc_malloc(size);
      uint64_t spent = timed ? hl_now_ns() - t : 0;
      if (HL_UNLIKELY(!take_block(w, p, i, size))) {
        ops += k;
        goto stop;
      }
      /* Sequentially consistent exchange, a full barrier: it publishes this
       * block's tag to the thread that will exchange it out (release), and
       * acquires the tag of the block taken out, written by the thread that
       * exchanged it in. */
      uint64_t old = hl_atomic_xchg_u64(&s->slots[i], slot_pack(p, size));
      sum = hl_fnv1a_u64(sum, ((uint64_t)i << 32) | size);
      if (HL_UNLIKELY(!check_taken(w, i, old))) {
        ops += k + 1;   /* the step happened; its old block is not freed */
        goto stop;
      }
      if (timed) t = hl_now_ns();
      if (HL_LIKELY(old)) hl_alloc_free(slot_block(old));
      if (timed) hl_hist_record(w->latency, spent + (hl_now_ns() - t));
    }
    ops += chunk;
  }
stop:
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);

  /* Untimed: half the live set, then all of it. */
  free_range(w, s, lo + 1, hi, 2);
  if (hl_worker_phase(w)) s->alloc.rss_after_frag_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
  free_range(w, s, lo, hi, 2);
  if (hl_worker_phase(w)) s->alloc.rss_after_free_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
}

static int larson_check(const hl_config_t *c, char *err, size_t errlen) {
  return hl_sizes_check(c, MIN_SIZE, MAX_SIZE, SIZE_LIMIT, err, errlen);
}

static int larson_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  larson_shared_t *s = calloc(1, sizeof *s);
  if (s) {
    s->nslots = SLOTS_PER_THREAD * c->threads;
    s->slots = calloc(s->nslots, sizeof *s->slots);
  }
  if (!s || !s->slots) {
    free(s);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (hl_sizes_init(&s->sizes, c, MIN_SIZE, MAX_SIZE, SIZE_LIMIT, err, errlen) != 0) {
    hl_sizes_fini(&s->sizes);
    free(s->slots);
    free(s);
    return -1;
  }
  *shared = s;
  return 0;
}

static void larson_teardown(void *shared, hl_result_alloc_t *alloc) {
  larson_shared_t *s = shared;
  if (!s) return;
  *alloc = s->alloc;
  hl_sizes_fini(&s->sizes);
  free(s->slots);
  free(s);
}

const hl_workload_t hl_workload_alloc_larson = {
  .name = "alloc-larson",
  .summary = "one array of 1,000 slots per thread, 8..512 B (--sizes up to 64 KiB); a step swaps a random slot's block "
             "for a new one: blocks migrate between threads",
  .unit = "2,000,000 replacements per thread",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES | HL_SIZES_USES,
  .ops_per_scale = 2000000,
  .check = larson_check,
  .setup = larson_setup,
  .work = larson_work,
  .teardown = larson_teardown,
};
