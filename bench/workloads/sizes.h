/* The allocator workloads' block sizes: --sizes=MIN..MAX and --size-dist.
 *
 *   uniform     every size in MIN..MAX equally likely (the workloads' own
 *               distribution before these options existed, drawn the same
 *               way, so that default runs keep their checksums)
 *   power-law   density proportional to size^-1.5 over MIN..MAX: most
 *               blocks small, a long tail of large ones, the shape allocation
 *               size histograms of real programs take (e.g. the request-size
 *               CDFs in Berger, Zorn and McKinley, "Reconsidering custom
 *               memory allocation", OOPSLA 2002, and in mimalloc-bench's
 *               programs). Drawn as a piecewise-uniform approximation: the
 *               inverse distribution function cut at 4096 quantiles, a
 *               uniform size inside the drawn piece, so one random number and
 *               one 16 KiB table per draw (a pow() per draw would be
 *               measured with the allocator);
 *   histogram   the "SIZE COUNT" lines of --size-hist, clipped to --sizes
 *               when given, drawn exactly by Walker's alias method (Walker,
 *               "An efficient method for generating discrete random variables
 *               with general distributions", ACM TOMS 3(3), 1977; Vose's
 *               numerically stable construction, IEEE TSE 17(9), 1991).
 *
 * A draw depends only on the random stream and the table, never on the
 * allocator: a workload's checksum over its sizes stays comparable across
 * allocators.
 */
#ifndef HL_SIZES_H
#define HL_SIZES_H

#include <stddef.h>
#include <stdint.h>

#include "hl_base.h"
#include "hl_config.h"

#define HL_SIZES_PIECES 4096u   /* power-law: pieces of the inverse CDF (a power of two) */
#define HL_SIZES_HIST_MAX (1u << 20)   /* histogram: distinct sizes at most */

typedef struct hl_sizes {
  uint32_t min, max;         /* what the draws span */
  hl_size_dist_t dist;
  double mean;               /* the expected size, bytes */
  uint32_t *edges;           /* power-law: HL_SIZES_PIECES + 1 piece bounds */
  uint32_t n;                /* histogram: distinct sizes */
  uint32_t *value;           /* histogram: the sizes */
  uint32_t *alias;           /* histogram: the other outcome of each column */
  uint64_t *keep;            /* histogram: P(value[i] | column i) * 2^32 */
} hl_sizes_t;

/* Resolves c's --sizes (auto: def_min..def_max), --size-dist and
 * --size-hist. limit is the largest size the workload can record (0: none).
 * Returns 0, or -1 with a message in err (a histogram file's
 * "FILE:LINE: ..." included); s needs hl_sizes_fini either way. */
int hl_sizes_init(hl_sizes_t *s, const hl_config_t *c, uint32_t def_min, uint32_t def_max,
                  uint32_t limit, char *err, size_t errlen);
void hl_sizes_fini(hl_sizes_t *s);
/* hl_sizes_init's checks alone, for a workload's check hook (bad sizes are
 * bad input, exit 2, found before anything runs). */
int hl_sizes_check(const hl_config_t *c, uint32_t def_min, uint32_t def_max, uint32_t limit,
                   char *err, size_t errlen);

/* The count of a live set scaled to the sizes drawn: `slots` blocks at the
 * default range's mean size hold some bytes; the same bytes at this mean,
 * at least `floor` blocks and at most `slots`. */
uint32_t hl_sizes_scale_slots(const hl_sizes_t *s, uint32_t slots, uint32_t def_min,
                              uint32_t def_max, uint32_t floor);

static inline uint32_t hl_sizes_draw(const hl_sizes_t *s, hl_rand_t *rng) {
  if (HL_LIKELY(s->dist == HL_SIZE_DIST_UNIFORM))
    return s->min + (uint32_t)hl_rand_below(rng, (uint64_t)s->max - s->min + 1);
  if (s->dist == HL_SIZE_DIST_POWER_LAW) {
    uint64_t r = hl_rand_next(rng);
    uint32_t i = (uint32_t)r & (HL_SIZES_PIECES - 1);
    uint32_t lo = s->edges[i], span = s->edges[i + 1] - lo;
    /* the high 32 bits, independent of the index's, scaled into the piece
     * [lo, lo + span] (span < 2^30: the product fits) */
    return lo + (uint32_t)(((r >> 32) * (uint64_t)(span + 1)) >> 32);
  }
  uint64_t r = hl_rand_next(rng);
  uint32_t i = (uint32_t)(((r >> 32) * s->n) >> 32);
  return (r & 0xffffffffu) < s->keep[i] ? s->value[i] : s->value[s->alias[i]];
}

#endif /* HL_SIZES_H */
