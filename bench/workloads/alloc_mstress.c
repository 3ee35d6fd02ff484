/* alloc-mstress: blocks of three lifetimes, some of them passed between
 * threads.
 *
 * In the spirit of mimalloc-bench's mstress (Leijen, Zorn and de Moura,
 * "Mimalloc: free list sharding in action", APLAS 2019, describe it as a
 * server-like pattern in which objects migrate between threads and some
 * live long); written here from that description, not from its code. Each
 * worker keeps LOCAL (4,096) slots of its own: the first quarter holds
 * long-lived blocks, the rest short-lived ones. Every thread shares one
 * transfer array of TRANSFER (256) slots per thread. A step draws k in
 * 0..99:
 *
 *   k < 2    a long-lived slot's block is freed and replaced (so a long
 *            block lives about 50 times longer than a short one)
 *   k < 12   migration: a short slot's block goes into a random transfer
 *            slot, and what was there (put by any thread, usually
 *            another) comes out into the short slot, to be freed by this
 *            thread later: a cross-thread free, after a while
 *   else     a short-lived slot's block is freed and replaced
 *
 * so the live set stays constant (LOCAL blocks a thread, TRANSFER a thread
 * in transit) while frees mix same-thread, remote, young and old blocks.
 * Sizes: --sizes (default 8..1024 B) and --size-dist (sizes.h).
 *
 * Tags (block_tag.h): a block in local slot i of worker w carries id
 * w << 32 | i; one in transfer slot j carries id TRANSFER_ID | j. Moving a
 * block rewrites its tag (the new holder touches it, as a thread that
 * receives an object does), and the tag is checked when the block leaves a
 * slot. Transfer slots are exchanged atomically as in alloc_larson.c
 * ((size - 1) << 48 | address), so sizes go up to 64 KiB.
 *
 * One operation is one step; one in latency_every is timed (the free and
 * the malloc of a replacement, or the exchange's allocator calls: none).
 * The checksum hashes each worker's step kinds and sizes: it depends on
 * seed, thread and ops only. Memory is measured as in replace.c: RSS before
 * the fill, after freeing every worker's odd local slots, and after
 * freeing everything.
 */
#include <stdio.h>
#include <stdlib.h>

#include "block_tag.h"
#include "hl_alloc.h"
#include "sizes.h"
#include "workload.h"

#define LOCAL 4096u
#define LONG_SLOTS (LOCAL / 4)
#define TRANSFER 256u
#define MIN_SIZE 8u
#define MAX_SIZE 1024u
#define SIZE_LIMIT 65536u
#define TICK_EVERY 512u
#define ADDR_BITS 48
#define ADDR_MASK ((1ull << ADDR_BITS) - 1)
#define TRANSFER_ID (1ull << 62)

typedef struct mstress_shared {
  uint64_t *transfer;       /* (size - 1) << 48 | address, exchanged atomically */
  uint32_t ntransfer;
  hl_sizes_t sizes;
  hl_result_alloc_t alloc;  /* written by the serial worker of each phase */
} mstress_shared_t;

static inline uint64_t pack(const void *p, uint32_t size) {
  return (uint64_t)(size - 1) << ADDR_BITS | (uint64_t)(uintptr_t)p;
}
static inline unsigned char *block_of(uint64_t v) { return (unsigned char *)(uintptr_t)(v & ADDR_MASK); }
static inline uint32_t size_of(uint64_t v) { return (uint32_t)(v >> ADDR_BITS) + 1; }

static inline uint64_t local_id(const hl_worker_t *w, uint32_t i) {
  return (uint64_t)w->index << 32 | i;
}

/* A new block for local slot i; NULL (worker failed) when malloc failed or
 * the address does not pack. */
static unsigned char *fresh(hl_worker_t *w, uint32_t i, uint32_t size) {
  unsigned char *p = hl_alloc_malloc(size);
  if (HL_UNLIKELY(!p)) {
    hl_worker_fail(w, "out of memory: malloc(%u) returned NULL", size);
    return NULL;
  }
  if (HL_UNLIKELY((uintptr_t)p >> ADDR_BITS)) {
    hl_worker_fail(w, "block address %p does not fit in %d bits", (void *)p, ADDR_BITS);
    hl_alloc_free(p);
    return NULL;
  }
  block_tag_write(p, local_id(w, i), size);
  return p;
}

static bool check(hl_worker_t *w, const unsigned char *p, uint64_t id, uint32_t size) {
  if (HL_LIKELY(block_tag_check(p, id, size))) return true;
  if (!w->error)
    hl_worker_fail(w, "heap corruption: a %u-byte block (id %llx) was overwritten", size,
                   (unsigned long long)id);
  return false;
}

static void mstress_work(hl_worker_t *w) {
  mstress_shared_t *s = w->shared;
  hl_rand_t *rng = &w->rng;
  uint64_t *local = calloc(LOCAL, sizeof *local);   /* packed as the transfer slots */
  if (!local) {
    hl_worker_fail(w, "out of memory for the slot table");
    hl_worker_begin(w);
    hl_worker_end(w);
    goto phases;
  }
  if (hl_worker_phase(w)) {
    s->alloc.valid = true;
    s->alloc.rss_before_bytes = hl_rss_current_bytes();
  }
  hl_worker_phase_done(w);

  uint64_t sum = HL_FNV_OFFSET ^ ((uint64_t)w->index << 48);
  for (uint32_t i = 0; i < LOCAL && !w->error; i++) {
    uint32_t size = hl_sizes_draw(&s->sizes, rng);
    sum = hl_fnv1a_u64(sum, size);
    unsigned char *p = fresh(w, i, size);
    if (p) local[i] = pack(p, size);
  }
  /* this worker's share of the transfer array starts full */
  for (uint32_t j = w->index * TRANSFER; j < (w->index + 1) * TRANSFER && !w->error; j++) {
    uint32_t size = hl_sizes_draw(&s->sizes, rng);
    sum = hl_fnv1a_u64(sum, size);
    unsigned char *p = fresh(w, 0, size);
    if (!p) break;
    block_tag_write(p, TRANSFER_ID | j, size);
    hl_atomic_store_relaxed_u64(&s->transfer[j], pack(p, size));  /* published by the barrier */
  }

  hl_worker_begin(w);
  uint64_t ops = 0, every = w->latency_every, countdown = every;
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t chunk = hl_worker_chunk(w, ops, TICK_EVERY), k = 0;
    for (; k < chunk && !w->error; k++) {
      uint64_t r = hl_rand_next(rng);
      uint32_t kind = (uint32_t)((r >> 32) % 100);
      uint32_t i = kind < 2 ? (uint32_t)(r % LONG_SLOTS)
                            : LONG_SLOTS + (uint32_t)(r % (LOCAL - LONG_SLOTS));
      uint64_t v = local[i];
      if (kind >= 2 && kind < 12) {
        /* migration: out through a transfer slot, something else in */
        uint32_t j = (uint32_t)hl_rand_below(rng, s->ntransfer);
        sum = hl_fnv1a_u64(sum, (uint64_t)j << 32 | 1);
        if (v) {
          if (!check(w, block_of(v), local_id(w, i), size_of(v))) break;
          block_tag_write(block_of(v), TRANSFER_ID | j, size_of(v));
        }
        /* sequentially consistent: publishes the new tag, acquires the old */
        uint64_t old = hl_atomic_xchg_u64(&s->transfer[j], v);
        if (old) {
          if (!check(w, block_of(old), TRANSFER_ID | j, size_of(old))) {
            local[i] = 0;   /* not ours to trust, not freed */
            break;
          }
          block_tag_write(block_of(old), local_id(w, i), size_of(old));
        }
        local[i] = old;
        continue;
      }
      uint32_t size = hl_sizes_draw(&s->sizes, rng);
      sum = hl_fnv1a_u64(sum, (uint64_t)size << 8 | (kind < 2));
      if (v && !check(w, block_of(v), local_id(w, i), size_of(v))) {
        local[i] = 0;
        break;
      }
      bool timed = --countdown == 0;
      if (timed) countdown = every;
      uint64_t t = timed ? hl_now_ns() : 0;
      if (v) hl_alloc_free(block_of(v));
      unsigned char *p = hl_alloc_malloc(size);
      if (timed) hl_hist_record(w->latency, hl_now_ns() - t);
      local[i] = 0;
      if (HL_UNLIKELY(!p)) {
        hl_worker_fail(w, "out of memory: malloc(%u) returned NULL", size);
        break;
      }
      if (HL_UNLIKELY((uintptr_t)p >> ADDR_BITS)) {
        hl_worker_fail(w, "block address %p does not fit in %d bits", (void *)p, ADDR_BITS);
        hl_alloc_free(p);
        break;
      }
      block_tag_write(p, local_id(w, i), size);
      local[i] = pack(p, size);
    }
    ops += k;
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);

phases:
  /* Untimed: half of every local set, then the rest and the transfer array. */
  for (uint32_t i = 1; local && i < LOCAL; i += 2)
    if (local[i] && check(w, block_of(local[i]), local_id(w, i), size_of(local[i])))
      hl_alloc_free(block_of(local[i]));
  if (hl_worker_phase(w)) s->alloc.rss_after_frag_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
  for (uint32_t i = 0; local && i < LOCAL; i += 2)
    if (local[i] && check(w, block_of(local[i]), local_id(w, i), size_of(local[i])))
      hl_alloc_free(block_of(local[i]));
  for (uint32_t j = w->index * TRANSFER; j < (w->index + 1) * TRANSFER; j++) {
    uint64_t v = hl_atomic_xchg_u64(&s->transfer[j], 0);
    if (v && check(w, block_of(v), TRANSFER_ID | j, size_of(v))) hl_alloc_free(block_of(v));
  }
  if (hl_worker_phase(w)) s->alloc.rss_after_free_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
  free(local);
}

static int mstress_check(const hl_config_t *c, char *err, size_t errlen) {
  return hl_sizes_check(c, MIN_SIZE, MAX_SIZE, SIZE_LIMIT, err, errlen);
}

static int mstress_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  mstress_shared_t *s = calloc(1, sizeof *s);
  if (s) {
    s->ntransfer = TRANSFER * c->threads;
    s->transfer = calloc(s->ntransfer, sizeof *s->transfer);
  }
  if (!s || !s->transfer) {
    free(s);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (hl_sizes_init(&s->sizes, c, MIN_SIZE, MAX_SIZE, SIZE_LIMIT, err, errlen) != 0) {
    hl_sizes_fini(&s->sizes);
    free(s->transfer);
    free(s);
    return -1;
  }
  *shared = s;
  return 0;
}

static void mstress_teardown(void *shared, hl_result_alloc_t *alloc) {
  mstress_shared_t *s = shared;
  if (!s) return;
  *alloc = s->alloc;
  hl_sizes_fini(&s->sizes);
  free(s->transfer);
  free(s);
}

const hl_workload_t hl_workload_alloc_mstress = {
  .name = "alloc-mstress",
  .summary = "short-, long-lived and migrating blocks, 8..1024 B (--sizes up to 64 KiB): 4,096 "
             "slots per thread and a shared transfer array",
  .unit = "2,000,000 steps per thread",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES | HL_SIZES_USES,
  .ops_per_scale = 2000000,
  .check = mstress_check,
  .setup = mstress_setup,
  .work = mstress_work,
  .teardown = mstress_teardown,
};
