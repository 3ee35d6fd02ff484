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
 * --gil picks the GIL's policy: with handoff the I/O thread, back from its
 * sleep, is handed the GIL at the CPU thread's next checkpoint, and the
 * response time is the task plus a hand-off (sync/gil_handoff.c).
 *
 * The result's `extra` (the report hook) has what the comparison of
 * policies needs: `wait_ns`, the I/O thread's wait from waking up to
 * holding the GIL (a histogram; latency_ns adds the task to it), and the
 * CPU-bound threads' throughput, `cpu_steps` in all and `cpu_steps_per_s`
 * (each thread's steps over its own timed span, summed), whose loss
 * against classic is what a hand-off costs them, and `cpu_yield_share`:
 * the share of the CPU threads' timed span spent in checkpoints that gave
 * the GIL away (from the request seen to the GIL back), the same cost
 * measured directly, which other programs on the machine disturb less
 * than a rate (a preempted CPU thread loses steps, not GIL time).
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

#include <json-c/json.h>

#include "result.h"
#include "workload.h"

#define TASK_UNIT 200u         /* I/O tasks per scale */
#define TASK_STEPS 4096u       /* steps of one I/O task: a few microseconds */
#define SLEEP_NS 1000000ull    /* the I/O thread's blocking wait */
#define CPU_CHUNK 1024u        /* CPU steps between progress checks */

typedef struct cpu_figures {
  uint64_t steps, ns;          /* written by its thread, read after the join */
  uint64_t yield_ns;           /* in checkpoints that served a request */
} cpu_figures_t;

typedef struct convoy {
  uint64_t io_done;            /* tasks done; relaxed (only a progress figure) */
  hl_hist_t wait_ns;           /* the I/O thread's: waking up to holding the GIL */
  unsigned cpu_threads;
  cpu_figures_t *cpu;          /* [cpu_threads], by worker index - 1 */
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
    hl_hist_record(&cv->wait_ns, hl_now_ns() - woke);
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
  uint64_t x = hl_rand_next(&w->rng), steps = 0, yield_ns = 0;
  hl_thread_t *self = hl_thread_self();
  hl_worker_begin(w);
  uint64_t t0 = hl_now_ns();
  while (hl_worker_tick(w, hl_atomic_load_relaxed_u64(&cv->io_done))) {
    for (unsigned i = 0; i < CPU_CHUNK; i++) {
      x = step(x);
      /* the checkpoint's own test, made here to time its slow path */
      if (HL_UNLIKELY(self && hl_thread_pending(self) != 0)) {
        uint64_t y0 = hl_now_ns();
        hl_checkpoint();
        yield_ns += hl_now_ns() - y0;
      } else {
        hl_checkpoint();
      }
    }
    steps += CPU_CHUNK;
  }
  cv->cpu[w->index - 1] = (cpu_figures_t){steps, hl_now_ns() - t0, yield_ns};
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
  convoy_t *cv = calloc(1, sizeof *cv);
  if (cv) {
    hl_hist_init(&cv->wait_ns);
    cv->cpu_threads = c->threads;
    cv->cpu = calloc(c->threads, sizeof *cv->cpu);
    if (!cv->cpu) {
      free(cv);
      cv = NULL;
    }
  }
  if (!cv) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  *shared = cv;
  return 0;
}

static void convoy_report(void *shared, hl_run_result_t *r) {
  const convoy_t *cv = shared;
  uint64_t steps = 0, span = 0, yielded = 0;
  double per_s = 0;
  for (unsigned i = 0; i < cv->cpu_threads; i++) {
    steps += cv->cpu[i].steps;
    span += cv->cpu[i].ns;
    yielded += cv->cpu[i].yield_ns;
    if (cv->cpu[i].ns) per_s += (double)cv->cpu[i].steps * 1e9 / (double)cv->cpu[i].ns;
  }
  json_object *o = json_object_new_object();
  json_object_object_add(o, "wait_ns", hl_json_hist(&cv->wait_ns));
  json_object_object_add(o, "cpu_steps", json_object_new_int64((int64_t)steps));
  json_object_object_add(o, "cpu_steps_per_s", json_object_new_double(per_s));
  json_object_object_add(o, "cpu_yield_ns", json_object_new_int64((int64_t)yielded));
  json_object_object_add(o, "cpu_yield_share",
                         json_object_new_double(span ? (double)yielded / (double)span : 0));
  r->extra = o;
}

static void convoy_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  convoy_t *cv = shared;
  free(cv->cpu);
  free(cv);
}

const hl_workload_t hl_workload_convoy = {
  .name = "convoy",
  .summary = "Beazley's convoy effect: an I/O thread (sleep 1 ms, then a short task) behind "
             "--threads CPU-bound threads; latency = its response time",
  .unit = "200 I/O tasks (about 200 switch intervals under the GIL)",
  /* allocates nothing: the allocator's options have no effect */
  .uses = HL_RUNNER_USES | HL_OPT_BIT(HL_OPT_RC) | HL_OPT_BIT(HL_OPT_SWITCH_INTERVAL_US) |
          HL_OPT_BIT(HL_OPT_GIL),
  .ops_per_scale = TASK_UNIT,
  .extra_workers = 1,
  .check = convoy_check,
  .setup = convoy_setup,
  .work = convoy_work,
  .teardown = convoy_teardown,
  .report = convoy_report,
};
