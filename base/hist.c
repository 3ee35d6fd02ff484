/* Log-linear latency histogram.
 *
 * The layout is HdrHistogram's idea (Gil Tene, "HdrHistogram: a high dynamic
 * range histogram", hdrhistogram.org) in its simplest form: a value's bucket
 * is its power of two (the position of its top set bit) followed by the next
 * S = HL_HIST_SUB_BITS bits below it. Two facts make record() a handful of
 * instructions with no loop and no branch:
 *
 *   With e = floor(log2 v) and shift = e - S, the header's index
 *     2^S + (e - S) * 2^S + ((v >> (e - S)) - 2^S)
 *   simplifies to  (shift << S) + (v >> shift).
 *
 *   Taking e' = floor(log2 (v | 2^S)) = max(e, S) instead of e makes shift 0
 *   for every v < 2^(S+1), where the formula gives index = v: the exact
 *   region and the first power of two (whose sub-buckets are 1 wide) need
 *   no separate case.
 *
 * Inverting: for index i >= 2^S, shift = (i >> S) - 1 and the bucket holds
 * [m << shift, (m + 1) << shift) with m = i - (shift << S) in [2^S, 2^(S+1));
 * below 2^S the bucket holds i alone. The last bucket (v = UINT64_MAX) is
 * [255 << 56, 2^64): its midpoint fits in 64 bits, its end does not, so the
 * code works with the lower bound and the width, never the end.
 *
 * Invariants (checked by the tests):
 *   count == sum(buckets)
 *   count == 0  =>  min == UINT64_MAX, max == 0, total == 0
 *   count > 0   =>  min <= every recorded value <= max
 */
#include <math.h>
#include <string.h>

#include "hl_base.h"
#include "hl_measure.h"

static inline unsigned bucket_index(uint64_t v) {
  unsigned e = 63u - (unsigned)__builtin_clzll(v | HL_HIST_SUB);
  unsigned shift = e - HL_HIST_SUB_BITS;
  return (shift << HL_HIST_SUB_BITS) + (unsigned)(v >> shift);
}

static inline uint64_t bucket_lower(unsigned i) {
  if (i < HL_HIST_SUB) return i;
  unsigned shift = (i >> HL_HIST_SUB_BITS) - 1;
  return (uint64_t)(i - (shift << HL_HIST_SUB_BITS)) << shift;
}

static inline uint64_t bucket_width(unsigned i) {
  if (i < HL_HIST_SUB) return 1;
  return 1ull << ((i >> HL_HIST_SUB_BITS) - 1);
}

/* lower + width/2, never lower + (lower + width) / 2: the last bucket's end
 * is 2^64. Width-1 buckets report their value exactly. */
static inline uint64_t bucket_mid(unsigned i) {
  return bucket_lower(i) + (bucket_width(i) >> 1);
}

static inline uint64_t add_saturating(uint64_t a, uint64_t b) {
  uint64_t s;
  return __builtin_add_overflow(a, b, &s) ? UINT64_MAX : s;
}

void hl_hist_init(hl_hist_t *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

void hl_hist_record(hl_hist_t *h, uint64_t v) {
  h->count++;
  h->total = add_saturating(h->total, v);
  if (v < h->min) h->min = v;
  if (v > h->max) h->max = v;
  h->buckets[bucket_index(v)]++;
}

void hl_hist_record_n(hl_hist_t *h, uint64_t v, uint64_t n) {
  if (HL_UNLIKELY(n == 0)) return;  /* an empty batch must not touch min/max */
  uint64_t sum;
  if (__builtin_mul_overflow(v, n, &sum)) sum = UINT64_MAX;
  h->count += n;
  h->total = add_saturating(h->total, sum);
  if (v < h->min) h->min = v;
  if (v > h->max) h->max = v;
  h->buckets[bucket_index(v)] += n;
}

void hl_hist_merge(hl_hist_t *into, const hl_hist_t *from) {
  if (from->count == 0) return;
  into->count += from->count;
  into->total = add_saturating(into->total, from->total);
  if (from->min < into->min) into->min = from->min;
  if (from->max > into->max) into->max = from->max;
  /* Only the occupied range: a per-thread histogram of one operation's
   * latency usually spans a few hundred of the 7424 buckets. */
  unsigned lo = bucket_index(from->min), hi = bucket_index(from->max);
  for (unsigned i = lo; i <= hi; i++) into->buckets[i] += from->buckets[i];
}

/* The rank-th smallest value (1-based, 1 <= rank <= count), as its bucket's
 * midpoint clamped to [min, max]: the clamp makes the lowest and highest
 * occupied buckets (which are often the widest relative to the data, for a
 * tight distribution) report no value that was never seen. */
static uint64_t value_at_rank(const hl_hist_t *h, uint64_t rank) {
  unsigned lo = bucket_index(h->min), hi = bucket_index(h->max);
  uint64_t seen = 0;
  unsigned i = lo;
  for (; i < hi; i++) {
    seen += h->buckets[i];
    if (seen >= rank) break;
  }
  uint64_t v = bucket_mid(i);
  if (v < h->min) v = h->min;
  if (v > h->max) v = h->max;
  return v;
}

uint64_t hl_hist_quantile(const hl_hist_t *h, double q) {
  if (h->count == 0) return 0;
  if (q >= 1.0) return h->max;
  if (!(q > 0.0)) return h->min;  /* also catches NaN, which would make the cast below undefined */
  /* q < 1 here, so q * count < count <= 2^64 and the cast is defined. */
  double r = ceil(q * (double)h->count);
  uint64_t rank = (uint64_t)r;
  if (rank < 1) rank = 1;
  if (rank > h->count) rank = h->count;
  return value_at_rank(h, rank);
}

double hl_hist_mean(const hl_hist_t *h) {
  if (h->count == 0) return 0.0;
  if (HL_LIKELY(h->total != UINT64_MAX)) return (double)h->total / (double)h->count;
  /* total saturated: estimate from the buckets, each value taken as its
   * bucket's midpoint, so the mean stays within the histogram's 0.4%. */
  long double sum = 0;
  for (unsigned i = bucket_index(h->min), hi = bucket_index(h->max); i <= hi; i++)
    sum += (long double)h->buckets[i] * (long double)bucket_mid(i);
  return (double)(sum / (long double)h->count);
}

hl_hist_summary_t hl_hist_summarize(const hl_hist_t *h) {
  hl_hist_summary_t s = {
    .count = h->count,
    .p50 = hl_hist_quantile(h, 0.50),
    .p90 = hl_hist_quantile(h, 0.90),
    .p99 = hl_hist_quantile(h, 0.99),
    .p999 = hl_hist_quantile(h, 0.999),
    .max = h->max,
    .total = h->total,
  };
  return s;
}
