/* heaplab measurement utilities: clock, latency histograms, process memory,
 * minimum mutator utilisation.
 *
 * Every layer records into these (the GIL its hold and wait times, the
 * collectors their pauses, the workloads their operation latencies), so they
 * live in the bottom layer.
 */
#ifndef HL_MEASURE_H
#define HL_MEASURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hl_base.h"

#ifdef __cplusplus
extern "C" {
#endif
HL_API_BEGIN

/* ---- clock ---------------------------------------------------------------
 * CLOCK_MONOTONIC in nanoseconds: never goes back, unaffected by settimeofday;
 * a vDSO call (about 20 ns), so time samples, not every operation. */
uint64_t hl_clock_monotonic_ns(void);
#ifdef CLOCK_MONOTONIC
static inline uint64_t hl_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#else
/* Strict ISO C (-std=c11 without _POSIX_C_SOURCE) does not declare the
 * POSIX clocks: a program that includes this header that way gets the same
 * clock out of line (base/rusage.c). */
static inline uint64_t hl_now_ns(void) { return hl_clock_monotonic_ns(); }
#endif

/* User + system CPU time of the whole process, in nanoseconds. */
uint64_t hl_process_cpu_ns(void);
/* CPU time of the calling thread, in nanoseconds (0 where there is none). */
uint64_t hl_thread_cpu_ns(void);

/* ---- log-linear latency histogram ------------------------------------------
 * Values (nanoseconds) below 2^HL_HIST_SUB_BITS are counted exactly; above,
 * each power of two [2^e, 2^(e+1)) is cut into 2^HL_HIST_SUB_BITS equal
 * sub-buckets, so a bucket is at most 2^-HL_HIST_SUB_BITS of its lower bound
 * wide and a percentile reported as the bucket's midpoint is off by at most
 * half of that: 1/256 = 0.39% with 7 sub-bits, under the 1% promised.
 * count, total, min and max are kept exactly.
 *   index(v) = v                                        for v < 2^S
 *   index(v) = 2^S + (e - S) * 2^S + ((v >> (e - S)) - 2^S)   for v >= 2^S, e = floor(log2 v)
 * Not thread-safe: one histogram per thread, merged at the end. */
#define HL_HIST_SUB_BITS 7
#define HL_HIST_SUB      (1u << HL_HIST_SUB_BITS)
#define HL_HIST_BUCKETS  (HL_HIST_SUB + (64 - HL_HIST_SUB_BITS) * HL_HIST_SUB)

typedef struct hl_hist {
  uint64_t count;
  uint64_t total;          /* sum of the values, saturating at UINT64_MAX */
  uint64_t min;            /* UINT64_MAX while empty */
  uint64_t max;
  uint64_t buckets[HL_HIST_BUCKETS];
} hl_hist_t;

void     hl_hist_init(hl_hist_t *h);
void     hl_hist_record(hl_hist_t *h, uint64_t value_ns);
void     hl_hist_record_n(hl_hist_t *h, uint64_t value_ns, uint64_t n);
void     hl_hist_merge(hl_hist_t *into, const hl_hist_t *from);
/* The value at quantile q in [0, 1] (0.5 = median, 0.999 = p99.9): the
 * smallest recorded value v such that at least ceil(q * count) values are
 * <= v, reported as the midpoint of its bucket clamped to [min, max];
 * 0 when empty. q = 1 gives max exactly, q <= 0 min exactly. */
uint64_t hl_hist_quantile(const hl_hist_t *h, double q);
double   hl_hist_mean(const hl_hist_t *h);

/* The summary every histogram of a result prints (docs/results.md: latency_ns). */
typedef struct hl_hist_summary {
  uint64_t count, p50, p90, p99, p999, max, total;
} hl_hist_summary_t;
hl_hist_summary_t hl_hist_summarize(const hl_hist_t *h);

/* ---- process memory --------------------------------------------------------
 * Resident set size now and its high-water mark (/proc/self/statm, VmHWM),
 * and minor page faults so far (getrusage). 0 when unavailable. */
size_t   hl_rss_current_bytes(void);
size_t   hl_rss_peak_bytes(void);
/* Of the resident set, the anonymous memory in transparent huge pages
 * (/proc/self/smaps_rollup, AnonHugePages): a walk of the process's
 * mappings, for a report, not for a loop. */
size_t   hl_rss_huge_bytes(void);
/* The number a one-number file holds (sysfs), 0 when unreadable. */
uint64_t hl_file_u64(const char *path);
uint64_t hl_page_faults_minor(void);

/* ---- minimum mutator utilisation ------------------------------------------
 * Cheng and Blelloch, "A parallel, real-time garbage collector", PLDI 2001:
 * MMU(w) is the smallest fraction of any window of length w inside the run
 * [run_start, run_end] not spent in pauses. Pauses are [start, start + len)
 * intervals, given in any order, possibly overlapping (several threads' pauses
 * are merged first). A window longer than the run is clamped to the run.
 * Returns a value in [0, 1]; 1 when there are no pauses or the run is empty. */
typedef struct hl_pause {
  uint64_t start_ns;
  uint64_t len_ns;
} hl_pause_t;

double hl_mmu(const hl_pause_t *pauses, size_t n, uint64_t run_start_ns,
              uint64_t run_end_ns, uint64_t window_ns);

/* The same figure for a run whose pauses are too many to keep: a tracker
 * takes them one by one, in time order as one collector produces them, and
 * keeps only the recent ones (those a window of the largest length
 * starting at a kept pause can still reach); every older candidate window
 * is evaluated as it drops out (base/mmu.c explains why this is exact).
 * Memory: the pauses of the last max-window, at most max_kept of them;
 * beyond that the oldest is evaluated early, on the pauses known so far,
 * and `exact` becomes false (its MMU is then an upper bound).
 * Overlapping or out-of-order pauses are merged into the latest one. */
#define HL_MMU_MAX_WINDOWS 4
typedef struct hl_mmu_kept { uint64_t s, e, cum; } hl_mmu_kept_t;
typedef struct hl_mmu_tracker {
  uint64_t run_start_ns;
  unsigned nwindows;
  uint64_t window_ns[HL_MMU_MAX_WINDOWS];
  uint64_t worst_ns[HL_MMU_MAX_WINDOWS];  /* most pause in an evaluated window */
  uint64_t max_window_ns;
  hl_mmu_kept_t *ring;        /* kept pauses [s, e), cum = pause time up to e */
  size_t cap, head, n, max_kept;
  uint64_t cum_ns;            /* pause time of every pause added */
  uint64_t pauses;
  bool exact;
} hl_mmu_tracker_t;

/* windows: nwindows (<= HL_MMU_MAX_WINDOWS) lengths in ns, each > 0. */
void hl_mmu_tracker_init(hl_mmu_tracker_t *t, const uint64_t *windows, unsigned nwindows,
                         size_t max_kept, uint64_t run_start_ns);
/* Forgets every pause; the run starts at run_start_ns (memory is kept). */
void hl_mmu_tracker_reset(hl_mmu_tracker_t *t, uint64_t run_start_ns);
void hl_mmu_tracker_add(hl_mmu_tracker_t *t, uint64_t start_ns, uint64_t end_ns);
/* MMU at window i over [run_start, run_end_ns]; run_end_ns is at or after
 * the end of every pause added. As hl_mmu for the same pauses. */
double hl_mmu_tracker_get(const hl_mmu_tracker_t *t, unsigned i, uint64_t run_end_ns);
void hl_mmu_tracker_free(hl_mmu_tracker_t *t);

HL_API_END
#ifdef __cplusplus
}
#endif
#endif /* HL_MEASURE_H */
