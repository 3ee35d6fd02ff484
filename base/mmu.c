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
#include <string.h>

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

/* ---- the online tracker ---------------------------------------------------------
 *
 * Pauses arrive in time order. Let W be the largest window. By the argument
 * above, only windows starting at a pause start s_d (or ending at the run's
 * end) need evaluating. A kept pause d is dropped once a pause p arrives
 * with s_p >= e_d + W; then, for every window w <= W:
 *   - [s_d, s_d + w) ends by e_d + W <= s_p, so every pause in it has
 *     already arrived, and all of them are kept (d is the oldest kept); it
 *     also lies inside the run (s_d + w <= s_p <= R1), so the candidate is
 *     s_d itself, not R1 - w. It is evaluated now, exactly;
 *   - d ends by R1 - W <= R1 - w, so no window evaluated later, not even the
 *     last one [R1 - w, R1), can reach it.
 * At the end, hl_mmu over the kept pauses evaluates the remaining candidates
 * (the windows starting at kept pauses, clamped to R1 - w), and the MMU is
 * the smaller of its answer and the worst window evaluated on the way. A
 * run shorter than W never drops a pause, so hl_mmu then sees them all, and
 * clamps the window to the run as it does for a whole list.
 *
 * Pause time before t, for t past the oldest kept start: with j the last
 * kept pause starting before t, F(t) = cum_j - max(0, e_j - t), where cum_j
 * is the pause time of every pause up to e_j (kept or not). A window
 * [a, a + w) then holds F(a + w) - F(a) of pause.
 */
static inline const hl_mmu_kept_t *kept_at(const hl_mmu_tracker_t *t, size_t k) {
  size_t i = t->head + k;
  if (i >= t->cap) i -= t->cap;
  return &t->ring[i];
}

/* F(x) from the kept pauses; x is after the oldest kept start. */
static uint64_t kept_paused_before(const hl_mmu_tracker_t *t, uint64_t x) {
  size_t lo = 0, hi = t->n;   /* the number of kept pauses starting before x */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (kept_at(t, mid)->s < x) lo = mid + 1;
    else hi = mid;
  }
  const hl_mmu_kept_t *j = kept_at(t, lo - 1);
  return j->cum - (j->e > x ? j->e - x : 0);
}

/* Evaluates the windows starting at the oldest kept pause and drops it. */
static void drop_oldest(hl_mmu_tracker_t *t) {
  const hl_mmu_kept_t *d = kept_at(t, 0);
  uint64_t before = d->cum - (d->e - d->s);
  for (unsigned i = 0; i < t->nwindows; i++) {
    uint64_t p = kept_paused_before(t, d->s + t->window_ns[i]) - before;
    if (p > t->worst_ns[i]) t->worst_ns[i] = p;
  }
  t->head = t->head + 1 == t->cap ? 0 : t->head + 1;
  t->n--;
}

void hl_mmu_tracker_init(hl_mmu_tracker_t *t, const uint64_t *windows, unsigned nwindows,
                         size_t max_kept, uint64_t run_start_ns) {
  HL_ASSERT(nwindows >= 1 && nwindows <= HL_MMU_MAX_WINDOWS && max_kept >= 1);
  memset(t, 0, sizeof *t);
  t->nwindows = nwindows;
  for (unsigned i = 0; i < nwindows; i++) {
    HL_ASSERT(windows[i] > 0);
    t->window_ns[i] = windows[i];
    if (windows[i] > t->max_window_ns) t->max_window_ns = windows[i];
  }
  t->max_kept = max_kept;
  hl_mmu_tracker_reset(t, run_start_ns);
}

void hl_mmu_tracker_reset(hl_mmu_tracker_t *t, uint64_t run_start_ns) {
  t->run_start_ns = run_start_ns;
  for (unsigned i = 0; i < t->nwindows; i++) t->worst_ns[i] = 0;
  t->head = t->n = 0;
  t->cum_ns = 0;
  t->pauses = 0;
  t->exact = true;
}

/* Room for one more kept pause: a larger ring, or (at max_kept, or out of
 * memory) the oldest evaluated early on what is known of its windows. */
static void make_room(hl_mmu_tracker_t *t) {
  if (t->n < t->cap) return;
  size_t cap = t->cap ? t->cap * 2 : 64;
  if (cap > t->max_kept) cap = t->max_kept;
  hl_mmu_kept_t *ring = cap > t->cap ? malloc(cap * sizeof *ring) : NULL;
  if (!ring) {
    drop_oldest(t);
    t->exact = false;
    return;
  }
  for (size_t k = 0; k < t->n; k++) ring[k] = *kept_at(t, k);
  free(t->ring);
  t->ring = ring;
  t->cap = cap;
  t->head = 0;
}

void hl_mmu_tracker_add(hl_mmu_tracker_t *t, uint64_t s, uint64_t e) {
  if (s < t->run_start_ns) s = t->run_start_ns;
  if (e <= s) return;
  t->pauses++;
  if (t->n > 0) {
    hl_mmu_kept_t *last = (hl_mmu_kept_t *)kept_at(t, t->n - 1);
    if (s < last->e) {          /* overlaps the latest (or is out of order): merge */
      if (e > last->e) {
        t->cum_ns += e - last->e;
        last->e = e;
        last->cum = t->cum_ns;
      }
      return;
    }
  }
  while (t->n > 0 && kept_at(t, 0)->e + t->max_window_ns <= s) drop_oldest(t);
  make_room(t);
  t->cum_ns += e - s;
  size_t i = t->head + t->n;
  if (i >= t->cap) i -= t->cap;
  t->ring[i] = (hl_mmu_kept_t){s, e, t->cum_ns};
  t->n++;
}

double hl_mmu_tracker_get(const hl_mmu_tracker_t *t, unsigned i, uint64_t run_end_ns) {
  HL_ASSERT(i < t->nwindows);
  if (run_end_ns <= t->run_start_ns) return 1.0;
  uint64_t run = run_end_ns - t->run_start_ns, w = t->window_ns[i];
  if (w > run) w = run;
  double worst = 1.0 - (double)(t->worst_ns[i] < w ? t->worst_ns[i] : w) / (double)w;
  if (t->n == 0) return worst;
  hl_pause_t *p = malloc(t->n * sizeof *p);
  if (!p) hl_die("hl_mmu_tracker_get: no memory for %zu pauses", t->n);
  for (size_t k = 0; k < t->n; k++) {
    const hl_mmu_kept_t *x = kept_at(t, k);
    p[k] = (hl_pause_t){x->s, x->e - x->s};
  }
  double rest = hl_mmu(p, t->n, t->run_start_ns, run_end_ns, t->window_ns[i]);
  free(p);
  return rest < worst ? rest : worst;
}

void hl_mmu_tracker_free(hl_mmu_tracker_t *t) {
  free(t->ring);
  t->ring = NULL;
  t->cap = t->n = 0;
}
