/* Minimum mutator utilisation.
 *
 * Perry Cheng and Guy E. Blelloch, "A parallel, real-time garbage collector",
 * PLDI 2001, section 2: for a window length w, MMU(w) is the least fraction
 * of any window [a, a + w) inside the run [R0, R1) that the mutator had, i.e.
 *   MMU(w) = 1 - max over a in [R0, R1 - w] of paused(a, a + w) / w.
 * A pause that stops every thread stops the mutator however many threads
 * report it, so the pauses are first merged into a union of disjoint
 * intervals; a pause reaching outside the run is clipped to it, since time
 * outside the run is nobody's.
 *
 * Which windows to try. Let f(a) = paused(a, a + w). Take any window and
 * slide it without ever lowering f:
 *   - if its start a lies inside a pause [s, e), slide it left to s: the
 *     left edge gains a - s of pause (all of [s, a) is paused), the right
 *     edge loses at most that much. Clipping guarantees s >= R0, so the
 *     window stays in the run.
 *   - if a lies in a gap, slide it right: the left edge loses nothing while
 *     it crosses the gap, the right edge gains or keeps. It stops when a
 *     reaches the next pause start s (a window starting at a pause start) or
 *     when the window reaches the run's end, a = R1 - w. In the second case
 *     every pause the window touches starts after R1 - w (the left edge is
 *     still in a gap), so R1 - w = min(s, R1 - w) for such a pause.
 * Hence some maximum of f is at a = min(s_i, R1 - w) for a pause start s_i:
 * n candidates, not the continuum. (The mirror argument shows that windows
 * ending at a pause end, clamped to R0, would do equally well; one family
 * suffices, and the brute-force test in tests/test_mmu.c checks it.)
 *
 * Evaluating a candidate: with the merged intervals sorted and
 *   P[k] = sum of the lengths of the first k intervals,
 * the pause time before t is F(t) = P[k] - max(0, e_{k-1} - t), where k is
 * the number of intervals starting before t (a binary search), and
 * f(a) = F(a + w) - F(a). Sorting dominates: O(n log n) time, O(n) space.
 */
#include <stdint.h>
#include <stdlib.h>

#include "hl_base.h"
#include "hl_measure.h"

/* A pause as [s, e), clipped to the run. */
typedef struct span {
  uint64_t s, e;
} span_t;

static int compare_start(const void *pa, const void *pb) {
  const span_t *a = pa, *b = pb;
  return (a->s > b->s) - (a->s < b->s);
}

/* Pause time in [R0, t): the merged spans are disjoint and sorted, and
 * prefix[k] is the total length of spans[0..k). */
static uint64_t paused_before(const span_t *spans, const uint64_t *prefix, size_t m,
                              uint64_t t) {
  size_t lo = 0, hi = m;  /* find k = number of spans with s < t */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (spans[mid].s < t) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return 0;
  uint64_t p = prefix[lo];
  const span_t *last = &spans[lo - 1];
  if (last->e > t) p -= last->e - t;
  return p;
}

double hl_mmu(const hl_pause_t *pauses, size_t n, uint64_t run_start_ns,
              uint64_t run_end_ns, uint64_t window_ns) {
  if (n == 0 || run_end_ns <= run_start_ns) return 1.0;
  uint64_t run = run_end_ns - run_start_ns;
  uint64_t w = window_ns < run ? window_ns : run;

  /* One block: n spans, then n + 1 prefix sums (a span is two uint64_t, so
   * the array after the spans is aligned). */
  span_t *spans = n < SIZE_MAX / (2 * sizeof(span_t))
                      ? malloc(n * sizeof(span_t) + (n + 1) * sizeof(uint64_t))
                      : NULL;
  if (HL_UNLIKELY(spans == NULL))
    hl_die("hl_mmu: no memory for %zu pauses", n);
  uint64_t *prefix = (uint64_t *)(spans + n);

  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t s = pauses[i].start_ns, e;
    if (__builtin_add_overflow(s, pauses[i].len_ns, &e)) e = UINT64_MAX;
    if (s < run_start_ns) s = run_start_ns;
    if (e > run_end_ns) e = run_end_ns;
    if (e > s) spans[m++] = (span_t){s, e};
  }
  if (m == 0) {
    free(spans);
    return 1.0;
  }
  qsort(spans, m, sizeof *spans, compare_start);

  /* Merge overlapping and touching spans in place. */
  size_t k = 0;
  for (size_t i = 1; i < m; i++) {
    if (spans[i].s <= spans[k].e) {
      if (spans[i].e > spans[k].e) spans[k].e = spans[i].e;
    } else {
      spans[++k] = spans[i];
    }
  }
  m = k + 1;

  /* A zero-length window inside a pause is wholly paused: the limit of
   * MMU(w) as w -> 0 is 0 whenever the run had any pause. */
  if (w == 0) {
    free(spans);
    return 0.0;
  }

  prefix[0] = 0;
  for (size_t i = 0; i < m; i++) prefix[i + 1] = prefix[i] + (spans[i].e - spans[i].s);

  uint64_t worst = 0;
  uint64_t last_start = run_end_ns - w;
  for (size_t i = 0; i < m && worst < w; i++) {
    uint64_t a = spans[i].s < last_start ? spans[i].s : last_start;
    uint64_t p = paused_before(spans, prefix, m, a + w) - paused_before(spans, prefix, m, a);
    if (p > worst) worst = p;
    if (a == last_start) break;  /* later spans clamp to the same window */
  }
  free(spans);
  return 1.0 - (double)worst / (double)w;
}
