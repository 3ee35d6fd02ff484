/* alloc-xthread: every free is a cross-thread free.
 *
 * The producer/consumer pattern of mimalloc-bench's "xmalloc-test": some
 * threads only allocate, others only free, so every block is freed by a
 * thread other than the one that allocated it. This is the case a
 * per-thread cache handles worst: the freeing thread's cache fills with
 * blocks of pools it does not own, and the allocating thread's cache never
 * gets them back unless the allocator returns remote frees to their owner
 * (mimalloc's thread-delayed free list, jemalloc's tcache flush to the
 * arena bin, a pool lock here).
 *
 *   producer  take an empty batch; allocate BATCH (256) blocks of random
 *             sizes 8..512 B (--sizes, --size-dist: sizes.h), tag each
 *             (block_tag.h); queue the batch
 *   consumer  take a queued batch; check each tag, free each block; give
 *             the empty batch back
 *
 * With --threads=N, workers 0 .. P-1 produce and P .. N-1 consume, with
 * P = ceil(N/2), C = floor(N/2): an odd thread out produces. With N = 1
 * there is no second thread to free: the single worker plays both roles in
 * turn, queueing each batch it fills and, when no empty batch is left,
 * emptying the oldest queued one first. Its frees are then same-thread
 * frees of blocks allocated about DEPTH batches earlier, which keeps the
 * workload runnable (and comparable in cost per operation) but measures no
 * cross-thread free.
 *
 * The queue: a fixed set of NB = DEPTH * max(C, 1) + P + C batches moves
 * between two lists under one mutex, a FIFO ring of filled batches (with
 * capacity NB, so queueing never waits) and a stack of spare (empty) ones.
 * A producer waits on `emptied` for a spare, a consumer on `filled` for a
 * queued batch. Invariant, under the lock:
 *
 *   queued + nspares + (batches held by workers, at most one each) == NB
 *
 * so at most NB * 256 blocks are in flight, and a producer waiting for a
 * spare always gets one: the batches it waits for are queued or in a
 * consumer's hands, and consumers run until every producer has left. The
 * lock is taken twice per batch on each side, not per block: 256 mallocs
 * or frees amortise it. A mutex and condition variables rather than a
 * lock-free ring because with more threads than cores (the tests run 8 on
 * 2) the waiting side must sleep, and TSan understands them.
 *
 * Stopping: a producer stops at its deadline (--duration-s) or its share of
 * the work (scale: the N * ops_per_scale blocks of the run, divided among
 * the producers), queues its last partial batch, and leaves; consumers stop
 * when the last producer has left. The batches still queued are then the
 * in-flight set: rss_after_frag_bytes is read with them live (for this
 * workload "frag" means "in flight"), the consumers drain them (untimed,
 * still cross-thread), and rss_after_free_bytes is read once every block is
 * freed. A worker that sees a bad tag fails the run and sets `stop`, so that
 * producers leave early; the bad block is not freed (it may be someone
 * else's). At the end, blocks allocated == blocks freed + bad blocks, or the
 * run fails: no block is left behind.
 *
 * One operation is one block allocated (and, by the end, freed): ops counts
 * producers' blocks. The last <= NB * 256 blocks are freed after the timed
 * part, an error of less than 0.1% on a default run. One malloc in
 * latency_every (on a producer) and one free in latency_every (on a
 * consumer) is timed, the allocator call only, so the histogram mixes
 * mallocs and frees in equal numbers.
 *
 * The checksum hashes each producer's size sequence; consumers add nothing
 * (which consumer frees which batch depends on scheduling). It depends on
 * seed, threads and ops only, never on the allocator.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "block_tag.h"
#include "hl_alloc.h"
#include "sizes.h"
#include "workload.h"

#define BATCH 256u
#define DEPTH 4u            /* queued batches per consumer */
#define MIN_SIZE 8u
#define MAX_SIZE 512u
#define ID_THREAD_SHIFT 40  /* tag id: producer index << 40 | block number */

typedef struct batch {
  uint64_t first_id;        /* block k carries the tag of id first_id + k */
  uint32_t n;               /* blocks in it, 0 .. BATCH */
  uint32_t sizes[BATCH];
  void *blocks[BATCH];
} batch_t;

typedef struct xthread_shared {
  pthread_mutex_t lock;
  pthread_cond_t filled;    /* a batch was queued, or the last producer left */
  pthread_cond_t emptied;   /* a spare came back, or stop was set */
  /* under lock */
  batch_t **queue;          /* FIFO ring of filled batches, capacity nbatches */
  uint32_t head, queued;
  batch_t **spares;         /* stack of empty batches */
  uint32_t nspares;
  uint32_t producers_left;
  bool stop;                /* a worker failed: producers leave early */
  /* fixed by setup */
  uint32_t nbatches, producers, consumers;
  batch_t *storage;
  hl_sizes_t sizes;
  /* added once per worker after the timed part, read after a barrier */
  uint64_t allocated, freed, bad;
  hl_result_alloc_t alloc;  /* written by the serial worker of each phase */
} xthread_shared_t;

/* ---- the queue ----------------------------------------------------------- */

/* An empty batch, or NULL when stop is set (or, without waiting, when none
 * is spare). */
static batch_t *take_spare(xthread_shared_t *s, bool wait) {
  pthread_mutex_lock(&s->lock);
  while (wait && s->nspares == 0 && !s->stop) pthread_cond_wait(&s->emptied, &s->lock);
  batch_t *b = s->nspares > 0 && !s->stop ? s->spares[--s->nspares] : NULL;
  pthread_mutex_unlock(&s->lock);
  return b;
}

static void give_spare(xthread_shared_t *s, batch_t *b) {
  b->n = 0;
  pthread_mutex_lock(&s->lock);
  s->spares[s->nspares++] = b;
  pthread_cond_signal(&s->emptied);
  pthread_mutex_unlock(&s->lock);
}

/* Never waits: the ring holds every batch there is. */
static void enqueue(xthread_shared_t *s, batch_t *b) {
  pthread_mutex_lock(&s->lock);
  s->queue[(s->head + s->queued) % s->nbatches] = b;
  s->queued++;
  pthread_cond_signal(&s->filled);
  pthread_mutex_unlock(&s->lock);
}

typedef enum { WHILE_PRODUCED, NOWAIT } dequeue_mode_t;

/* The oldest queued batch. WHILE_PRODUCED (a consumer in the timed part):
 * waits while the queue is empty and producers remain; NULL once the last
 * producer has left, even with batches queued (they are the in-flight set,
 * drained later). NOWAIT: NULL when the queue is empty. */
static batch_t *dequeue(xthread_shared_t *s, dequeue_mode_t mode) {
  pthread_mutex_lock(&s->lock);
  if (mode == WHILE_PRODUCED)
    while (s->queued == 0 && s->producers_left > 0) pthread_cond_wait(&s->filled, &s->lock);
  batch_t *b = NULL;
  if (s->queued > 0 && (mode == NOWAIT || s->producers_left > 0)) {
    b = s->queue[s->head];
    s->head = (s->head + 1) % s->nbatches;
    s->queued--;
  }
  pthread_mutex_unlock(&s->lock);
  return b;
}

static void producer_leave(xthread_shared_t *s) {
  pthread_mutex_lock(&s->lock);
  if (--s->producers_left == 0) pthread_cond_broadcast(&s->filled);
  pthread_mutex_unlock(&s->lock);
}

static void set_stop(xthread_shared_t *s) {
  pthread_mutex_lock(&s->lock);
  s->stop = true;
  pthread_cond_broadcast(&s->emptied);
  pthread_mutex_unlock(&s->lock);
}

/* ---- the two roles ------------------------------------------------------- */

typedef struct role {
  uint64_t next_id;         /* producer: tag id of the next block */
  uint64_t sum;             /* producer: checksum */
  uint64_t allocated, freed, bad;
  uint64_t countdown;       /* to the next timed allocator call */
} role_t;

static inline bool sample_now(hl_worker_t *w, role_t *r) {
  if (--r->countdown) return false;
  r->countdown = w->latency_every;
  return true;
}

/* Allocates up to n tagged blocks into b; fewer when malloc fails (the
 * worker has then failed). */
static void fill(hl_worker_t *w, xthread_shared_t *s, role_t *r, batch_t *b, uint32_t n) {
  b->first_id = r->next_id;
  uint32_t k = 0;
  for (; k < n; k++) {
    uint32_t size = hl_sizes_draw(&s->sizes, &w->rng);
    bool timed = sample_now(w, r);
    uint64_t t = timed ? hl_now_ns() : 0;
    unsigned char *p = hl_alloc_malloc(size);
    if (timed) hl_hist_record(w->latency, hl_now_ns() - t);
    if (HL_UNLIKELY(!p)) {
      hl_worker_fail(w, "out of memory: malloc(%u) returned NULL", size);
      set_stop(s);
      break;
    }
    block_tag_write(p, b->first_id + k, size);
    b->blocks[k] = p;
    b->sizes[k] = size;
    r->sum = hl_fnv1a_u64(r->sum, size);
  }
  b->n = k;
  r->next_id += k;
  r->allocated += k;
}

/* Checks and frees every block of b; timed: sample latencies. */
static void empty(hl_worker_t *w, xthread_shared_t *s, role_t *r, batch_t *b, bool timed_part) {
  for (uint32_t k = 0; k < b->n; k++) {
    unsigned char *p = b->blocks[k];
    uint64_t id = b->first_id + k;
    if (HL_UNLIKELY(!block_tag_check(p, id, b->sizes[k]))) {
      if (!w->error) {
        hl_worker_fail(w, "heap corruption: block %llu of producer %llu (%u bytes) was overwritten",
                       (unsigned long long)(id & ((1ull << ID_THREAD_SHIFT) - 1)),
                       (unsigned long long)(id >> ID_THREAD_SHIFT), b->sizes[k]);
        set_stop(s);
      }
      r->bad++;
      continue;
    }
    bool timed = timed_part && sample_now(w, r);
    uint64_t t = timed ? hl_now_ns() : 0;
    hl_alloc_free(p);
    if (timed) hl_hist_record(w->latency, hl_now_ns() - t);
    r->freed++;
  }
  b->n = 0;
}

/* Producer (or the single worker): queue batches until the deadline or the
 * worker's share; returns the blocks allocated. */
static uint64_t produce(hl_worker_t *w, xthread_shared_t *s, role_t *r, bool solo) {
  uint64_t ops = 0;
  while (!w->error && hl_worker_tick(w, ops)) {
    batch_t *b = take_spare(s, !solo);
    if (!b && solo) {
      /* no spare: every batch is queued; free the oldest and reuse it */
      if ((b = dequeue(s, NOWAIT))) empty(w, s, r, b, true);
    }
    if (!b) break;   /* stop */
    uint32_t n = (uint32_t)hl_worker_chunk(w, ops, BATCH);
    fill(w, s, r, b, n);
    ops += b->n;
    if (b->n) enqueue(s, b);
    else give_spare(s, b);
  }
  return ops;
}

static void xthread_work(hl_worker_t *w) {
  xthread_shared_t *s = w->shared;
  const bool solo = s->consumers == 0;
  const bool producer = w->index < s->producers;
  role_t r = {.countdown = w->latency_every};
  r.next_id = (uint64_t)w->index << ID_THREAD_SHIFT;
  r.sum = HL_FNV_OFFSET ^ ((uint64_t)w->index << 48);

  /* scale: the run's N * ops_per_scale blocks, shared among the producers */
  if (w->target_ops) {
    uint64_t total = w->target_ops * w->cfg->threads;
    w->target_ops = producer ? total / s->producers + (w->index < total % s->producers) : 0;
  }

  if (hl_worker_phase(w)) {
    s->alloc.valid = true;
    s->alloc.rss_before_bytes = hl_rss_current_bytes();
  }
  hl_worker_phase_done(w);

  hl_worker_begin(w);
  if (producer) {
    w->ops = produce(w, s, &r, solo);
    w->checksum = r.sum;
    producer_leave(s);
  } else {
    batch_t *b;
    while ((b = dequeue(s, WHILE_PRODUCED))) {
      empty(w, s, &r, b, true);
      give_spare(s, b);
    }
    w->ops = 0;
    w->checksum = 0;  /* the runner combines by xor: 0 changes nothing */
  }
  hl_worker_end(w);

  /* Untimed: the in-flight set, then the drain by the consumers. */
  if (hl_worker_phase(w)) s->alloc.rss_after_frag_bytes = hl_rss_current_bytes();
  hl_worker_phase_done(w);
  if (!producer || solo) {
    batch_t *b;
    while ((b = dequeue(s, NOWAIT))) {
      empty(w, s, &r, b, false);
      give_spare(s, b);
    }
  }
  hl_atomic_faa_u64(&s->allocated, r.allocated);
  hl_atomic_faa_u64(&s->freed, r.freed);
  hl_atomic_faa_u64(&s->bad, r.bad);
  /* The barrier orders every worker's additions before the serial worker's
   * reads. */
  if (hl_worker_phase(w)) {
    s->alloc.rss_after_free_bytes = hl_rss_current_bytes();
    uint64_t a = hl_atomic_load_relaxed_u64(&s->allocated);
    uint64_t f = hl_atomic_load_relaxed_u64(&s->freed);
    uint64_t bad = hl_atomic_load_relaxed_u64(&s->bad);
    if (a != f + bad && !w->error)
      hl_worker_fail(w, "lost blocks: %llu allocated, %llu freed, %llu not freed (bad tag)",
                     (unsigned long long)a, (unsigned long long)f, (unsigned long long)bad);
  }
  hl_worker_phase_done(w);
}

static int xthread_check(const hl_config_t *c, char *err, size_t errlen) {
  return hl_sizes_check(c, MIN_SIZE, MAX_SIZE, 0, err, errlen);
}

static int xthread_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  xthread_shared_t *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  if (hl_sizes_init(&s->sizes, c, MIN_SIZE, MAX_SIZE, 0, err, errlen) != 0) {
    hl_sizes_fini(&s->sizes);
    free(s);
    return -1;
  }
  s->producers = (c->threads + 1) / 2;
  s->consumers = c->threads / 2;
  s->producers_left = s->producers;
  s->nbatches = DEPTH * (s->consumers ? s->consumers : 1) + s->producers + s->consumers;
  s->storage = calloc(s->nbatches, sizeof *s->storage);
  s->queue = calloc(s->nbatches, sizeof *s->queue);
  s->spares = calloc(s->nbatches, sizeof *s->spares);
  if (!s->storage || !s->queue || !s->spares) goto oom;
  for (uint32_t i = 0; i < s->nbatches; i++) s->spares[i] = &s->storage[i];
  s->nspares = s->nbatches;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->filled, NULL);
  pthread_cond_init(&s->emptied, NULL);
  *shared = s;
  return 0;
oom:
  if (s) {
    hl_sizes_fini(&s->sizes);
    free(s->storage);
    free(s->queue);
    free(s->spares);
    free(s);
  }
  snprintf(err, errlen, "out of memory");
  return -1;
}

static void xthread_teardown(void *shared, hl_result_alloc_t *alloc) {
  xthread_shared_t *s = shared;
  if (!s) return;
  *alloc = s->alloc;
  pthread_cond_destroy(&s->emptied);
  pthread_cond_destroy(&s->filled);
  pthread_mutex_destroy(&s->lock);
  hl_sizes_fini(&s->sizes);
  free(s->storage);
  free(s->queue);
  free(s->spares);
  free(s);
}

const hl_workload_t hl_workload_alloc_xthread = {
  .name = "alloc-xthread",
  .summary = "producers allocate 8..512 B blocks (--sizes, --size-dist) in batches of 256, "
             "consumers free them (every free cross-thread)",
  .unit = "2,000,000 blocks allocated and freed per thread",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES | HL_SIZES_USES,
  .ops_per_scale = 2000000,
  .check = xthread_check,
  .setup = xthread_setup,
  .work = xthread_work,
  .teardown = xthread_teardown,
};
