/* convoy: an I/O-bound thread behind CPU-bound ones under the GIL.
 *
 * David Beazley, "Understanding the Python GIL" (PyCon 2010) and bpo-7946,
 * "Convoy effect with I/O bound threads and New GIL": a thread that gives
 * the GIL up to block on I/O gets it back only when the CPU-bound holder
 * drops it, and under the new GIL the holder drops it only when asked, after
 * the waiter has waited a whole switch interval. Every I/O operation then
 * costs about one switch interval, however short its own work.
 *
 * Workers: --threads=N CPU-bound threads (1 by default, Beazley's case) plus
 * one I/O thread, worker 0.
 *   I/O thread:  sleep 1 ms with the GIL released (hl_thread_block_begin:
 *                the stand-in for a blocking read), wake, take the GIL back,
 *                run a short task (TASK_STEPS steps of arithmetic, a
 *                checkpoint at each), and again. Its response time, from
 *                waking up to the end of the task, is the run's latency_ns,
 *                one sample per task.
 *   CPU threads: arithmetic with a checkpoint at every step; they never
 *                release the GIL on their own.
 * With rc=gil the response time is about one switch interval (p50 near
 * --switch-interval-us); without a GIL it is the task alone.
 *
 * ops = I/O tasks done; scale=1 is TASK_UNIT tasks (the CPU threads run
 * until the I/O thread is done or the deadline passes). The CPU threads
 * publish the I/O thread's count as their progress, so that the progress
 * line counts tasks. The checksum hashes the tasks' results (fixed by seed
 * and task count) and the CPU threads' final state, which depends on how
 * many steps they got to run: it differs from run to run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "workload.h"

#define TASK_UNIT 200u         /* I/O tasks per scale */
#define TASK_STEPS 4096u       /* steps of one I/O task: a few microseconds */
#define SLEEP_NS 1000000ull    /* the I/O thread's blocking wait */
#define CPU_CHUNK 1024u        /* CPU steps between progress checks */

typedef struct convoy {
  uint64_t io_done;            /* tasks done; relaxed (only a progress figure) */
} convoy_t;

/* One step of work: a multiply-xorshift (cannot be folded away). */
static inline uint64_t step(uint64_t x) {
  x ^= x >> 31;
  x *= 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 29);
}

static void io_thread(hl_worker_t *w, convoy_t *cv) {
  w->latency_every = 1;                      /* every task is a sample */
  uint64_t done = 0, sum = HL_FNV_OFFSET;
  hl_worker_begin(w);
  while (hl_worker_tick(w, done)) {
    hl_thread_block_begin();
    struct timespec ts = {0, (long)SLEEP_NS};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    uint64_t woke = hl_now_ns();
    hl_thread_block_end();
    uint64_t x = hl_rand_next(&w->rng);
    for (unsigned i = 0; i < TASK_STEPS; i++) {
      x = step(x);
      hl_checkpoint();
    }
    hl_hist_record(w->latency, hl_now_ns() - woke);
    sum = hl_fnv1a_u64(sum, x);
    done++;
    hl_atomic_store_relaxed_u64(&cv->io_done, done);
  }
  w->ops = done;
  w->checksum = sum;
  hl_worker_end(w);
}

static void cpu_thread(hl_worker_t *w, convoy_t *cv) {
  uint64_t x = hl_rand_next(&w->rng), steps = 0;
  hl_worker_begin(w);
  while (hl_worker_tick(w, hl_atomic_load_relaxed_u64(&cv->io_done))) {
    for (unsigned i = 0; i < CPU_CHUNK; i++) {
      x = step(x);
      hl_checkpoint();
    }
    steps += CPU_CHUNK;
  }
  w->ops = 0;                                /* ops are the I/O thread's */
  w->checksum = hl_fnv1a_u64(hl_fnv1a_u64(HL_FNV_OFFSET, x), steps);
  hl_worker_end(w);
}

static void convoy_work(hl_worker_t *w) {
  convoy_t *cv = w->shared;
  if (w->index == 0) io_thread(w, cv);
  else cpu_thread(w, cv);
}

static int convoy_check(const hl_config_t *c, char *err, size_t errlen) {
  if (c->threads > 1023) {
    snprintf(err, errlen,
             "option 'threads': invalid value '%u' for convoy, which runs that many CPU-bound "
             "threads plus one I/O thread, 1024 threads at most; accepted: 1..1023",
             c->threads);
    return -1;
  }
  return 0;
}

static int convoy_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  (void)c;
  convoy_t *cv = calloc(1, sizeof *cv);
  if (!cv) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  *shared = cv;
  return 0;
}

static void convoy_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  free(shared);
}

const hl_workload_t hl_workload_convoy = {
  .name = "convoy",
  .summary = "Beazley's convoy effect: an I/O thread (sleep 1 ms, then a short task) behind "
             "--threads CPU-bound threads; latency = its response time",
  .unit = "200 I/O tasks (about 200 switch intervals under the GIL)",
  /* allocates nothing: the allocator's options have no effect */
  .uses = HL_RUNNER_USES | HL_OPT_BIT(HL_OPT_RC) | HL_OPT_BIT(HL_OPT_SWITCH_INTERVAL_US),
  .ops_per_scale = TASK_UNIT,
  .extra_workers = 1,
  .check = convoy_check,
  .setup = convoy_setup,
  .work = convoy_work,
  .teardown = convoy_teardown,
};
