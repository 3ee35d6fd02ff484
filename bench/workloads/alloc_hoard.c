/* cache-thrash and cache-scratch: false sharing that the allocator causes.
 *
 * After the two benchmarks of Berger, McKinley, Blumofe and Wilson, "Hoard:
 * a scalable memory allocator for multithreaded applications" (ASPLOS
 * 2000, section 5), written here from that description. Two threads that
 * never share an object may still share a cache line if the allocator
 * puts their objects side by side; every write of one then invalidates
 * the other's copy of the line, and the program runs at the speed of the
 * coherence protocol.
 *
 *   cache-thrash   active false sharing: each thread, over and over,
 *                  allocates a small object, writes every byte of it
 *                  REPS times, and frees it. An allocator that serves
 *                  concurrent threads from one free list or one pool hands
 *                  neighbouring blocks to different threads.
 *   cache-scratch  passive false sharing: before the threads start, one
 *                  thread allocates one small object per worker, back to
 *                  back (so they share lines), and hands object i to
 *                  worker i. Each worker frees the object it was given,
 *                  then runs cache-thrash's loop. An allocator that puts a
 *                  freed block in the freeing thread's cache gives each
 *                  worker the object it freed, and the line stays shared;
 *                  one that sends the block back to its owner does not.
 *
 * The object's size is --sizes (default 8..8 B, the papers' 8-byte
 * objects); with a range, each object's size is drawn (sizes.h). One
 * operation is one object: a malloc, size * REPS one-byte writes, a check
 * of what was written, a free. One in latency_every is timed whole (the
 * writes are the point: false sharing slows them, not the allocator call).
 * A worker whose object does not hold what it wrote fails the run. The
 * checksum hashes the sizes: it depends on seed, thread and ops only.
 *
 * On one core (or --threads=1) there is nothing to share: the figure of
 * interest is the time per operation at 2 threads on 2 cores against 1
 * thread, per allocator.
 */
#include <stdio.h>
#include <stdlib.h>

#include "hl_alloc.h"
#include "sizes.h"
#include "workload.h"

#define REPS 50u            /* writes of each byte per object */
#define TICK_EVERY 256u
#define SIZE_LIMIT 4096u    /* small objects: what false sharing is about */

typedef struct hoard_shared {
  hl_sizes_t sizes;
  bool scratch;
  void **given;             /* cache-scratch: object i for worker i */
  uint32_t ngiven;
} hoard_shared_t;

/* Writes every byte of p REPS times (volatile: each write reaches the
 * cache line), then checks the last round; false if another writer got in. */
static HL_NOINLINE bool scribble(unsigned char *p, uint32_t size) {
  volatile unsigned char *v = p;
  for (uint32_t r = 0; r < REPS; r++)
    for (uint32_t k = 0; k < size; k++) v[k] = (unsigned char)(r + k);
  for (uint32_t k = 0; k < size; k++)
    if (v[k] != (unsigned char)(REPS - 1 + k)) return false;
  return true;
}

static void hoard_work(hl_worker_t *w) {
  hoard_shared_t *s = w->shared;
  if (s->scratch && w->index < s->ngiven && s->given[w->index]) {
    /* untimed: the object another thread allocated, freed by this one */
    hl_alloc_free(s->given[w->index]);
    s->given[w->index] = NULL;
  }
  hl_worker_begin(w);
  hl_rand_t *rng = &w->rng;
  uint64_t ops = 0, sum = HL_FNV_OFFSET ^ ((uint64_t)w->index << 48);
  uint64_t every = w->latency_every, countdown = every;
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t chunk = hl_worker_chunk(w, ops, TICK_EVERY), k = 0;
    for (; k < chunk; k++) {
      uint32_t size = hl_sizes_draw(&s->sizes, rng);
      sum = hl_fnv1a_u64(sum, size);
      bool timed = --countdown == 0;
      if (timed) countdown = every;
      uint64_t t = timed ? hl_now_ns() : 0;
      unsigned char *p = hl_alloc_malloc(size);
      if (HL_UNLIKELY(!p)) {
        hl_worker_fail(w, "out of memory: malloc(%u) returned NULL", size);
        break;
      }
      if (HL_UNLIKELY(!scribble(p, size))) {
        hl_worker_fail(w, "heap corruption: a %u-byte object changed under its writer", size);
        break;   /* not freed: it may be someone else's */
      }
      hl_alloc_free(p);
      if (timed) hl_hist_record(w->latency, hl_now_ns() - t);
    }
    ops += k;
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
}

static int hoard_check(const hl_config_t *c, char *err, size_t errlen) {
  return hl_sizes_check(c, 8, 8, SIZE_LIMIT, err, errlen);
}

static void hoard_free(hoard_shared_t *s) {
  for (uint32_t i = 0; s->given && i < s->ngiven; i++)
    if (s->given[i]) hl_alloc_free(s->given[i]);
  free(s->given);
  hl_sizes_fini(&s->sizes);
  free(s);
}

static int hoard_setup(const hl_config_t *c, bool scratch, void **shared, char *err,
                       size_t errlen) {
  hoard_shared_t *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (hl_sizes_init(&s->sizes, c, 8, 8, SIZE_LIMIT, err, errlen) != 0) {
    hoard_free(s);
    return -1;
  }
  s->scratch = scratch;
  if (scratch) {
    /* one after the other from this thread, so that neighbours share lines */
    s->ngiven = c->threads;
    s->given = calloc(s->ngiven, sizeof *s->given);
    hl_rand_t rng;
    hl_rand_seed(&rng, c->seed ^ 0x5c5c5c5cull);
    for (uint32_t i = 0; s->given && i < s->ngiven; i++)
      if (!(s->given[i] = hl_alloc_malloc(hl_sizes_draw(&s->sizes, &rng)))) break;
    if (!s->given || (s->ngiven && !s->given[s->ngiven - 1])) {
      hoard_free(s);
      snprintf(err, errlen, "out of memory for the objects handed to the workers");
      return -1;
    }
  }
  *shared = s;
  return 0;
}

static int thrash_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  return hoard_setup(c, false, shared, err, errlen);
}

static int scratch_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  return hoard_setup(c, true, shared, err, errlen);
}

static void hoard_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  if (shared) hoard_free(shared);
}

const hl_workload_t hl_workload_cache_thrash = {
  .name = "cache-thrash",
  .summary = "Hoard's active false sharing: each thread allocates an 8-byte object "
             "(--sizes), writes it 50 times a byte, frees it",
  .unit = "1,000,000 objects per thread",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES | HL_SIZES_USES,
  .ops_per_scale = 1000000,
  .check = hoard_check,
  .setup = thrash_setup,
  .work = hoard_work,
  .teardown = hoard_teardown,
};

const hl_workload_t hl_workload_cache_scratch = {
  .name = "cache-scratch",
  .summary = "Hoard's passive false sharing: each thread frees an object allocated next to "
             "the others' by one thread, then loops as cache-thrash",
  .unit = "1,000,000 objects per thread",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES | HL_SIZES_USES,
  .ops_per_scale = 1000000,
  .check = hoard_check,
  .setup = scratch_setup,
  .work = hoard_work,
  .teardown = hoard_teardown,
};
