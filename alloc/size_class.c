/* Geometry: the four sizes that shape the pool allocator, and their checks.
 *
 * A request of n bytes, 1 <= n <= threshold, is served from size class
 *   idx = (n - 1) >> log2(alignment),   block size = (idx + 1) * alignment
 * so every class is a multiple of the alignment and the classes are
 * contiguous (CPython's INDEX2SIZE / size-class table in obmalloc.c).
 * With --large=medium (hl_geometry_medium), classes continue above the
 * threshold, eight per power of two, in the pools up to an eighth of a pool:
 *   modern   576, 640, ..., 1024, 1152, ..., 2048   (16 classes, 48 in all)
 *   classic  288, 320, ..., 512                    (8 classes, 40 in all)
 * (a custom geometry with larger pools goes further: 64 KiB pools, 8 KiB),
 * then in spans of 2^k pools up to HLI_SPAN_MAX, 64 KiB (add_spans):
 *   modern   2304 .. 4608 in 32 KiB spans, 5120 .. 9216 in 64 KiB, ...,
 *            40960 .. 65536 in 512 KiB                (40 classes, 88 in all)
 *   classic  576 .. 32768, spans of 16 KiB to 256 KiB (48 classes, 88 in all)
 * Eight per power of two keep the waste under 1/9 of a block, below the
 * 12.5% mimalloc aims at (its four per power of two allow up to a fifth),
 * for twice the classes: each class in use holds a partly used span, at
 * most seven blocks' worth of the class idle (the span holds at least seven).
 *
 *   preset    alignment  threshold  pool     arena    classes  blocks/pool (smallest..largest)
 *   classic   8 B        256 B      4 KiB    256 KiB  32       506 .. 15    (the seed documents)
 *   modern    16 B       512 B      16 KiB   1 MiB    32       1020 .. 31   (CPython 3.10+, 64-bit)
 *
 * Invariants checked here, each with its own message:
 *   alignment is a power of two, at least 8 (a free block holds a pointer)
 *   threshold is a multiple of alignment, 0 < threshold, and at most
 *     HL_MAX_CLASSES classes
 *   pool_size is a power of two, at least the page size (pools are found by
 *     masking an address), at most 2^31 (offsets are 32-bit)
 *   arena_size is a power of two and a multiple of pool_size (arenas are
 *     aligned to their size: the radix tree's key is address >> log2 arena)
 *   a pool holds its header and at least one block of the largest class
 * and, with colours (hl_geometry_colour), fewer colours where the last
 * would not leave that room.
 */
#include <errno.h>
#include <stdio.h>

#include "alloc_internal.h"

static bool is_pow2(size_t x) { return x && !(x & (x - 1)); }

static unsigned log2_exact(size_t x) { return (unsigned)__builtin_ctzll(x); }

int hl_geometry_init(hl_geometry_t *g, size_t alignment, size_t threshold, size_t pool_size,
                     size_t arena_size, char *err, size_t errlen) {
#define BAD(...) do { snprintf(err, errlen, "geometry %zu,%zu,%zu,%zu: " __VA_ARGS__); \
                      return -EINVAL; } while (0)
#define ARGS alignment, threshold, pool_size, arena_size
  if (!is_pow2(alignment) || alignment < sizeof(void *))
    BAD("alignment %zu must be a power of two, at least %zu", ARGS, alignment, sizeof(void *));
  if (threshold == 0 || threshold % alignment != 0)
    BAD("threshold %zu must be a positive multiple of the alignment %zu", ARGS, threshold,
        alignment);
  if (threshold / alignment > HL_MAX_CLASSES)
    BAD("threshold / alignment = %zu size classes, at most %d are supported", ARGS,
        threshold / alignment, HL_MAX_CLASSES);
  size_t page = hl_os_page_size();
  if (!is_pow2(pool_size) || pool_size < page || pool_size > ((size_t)1 << 31))
    BAD("pool size %zu must be a power of two from the page size %zu to 2 GiB", ARGS, pool_size,
        page);
  if (!is_pow2(arena_size) || arena_size < pool_size)
    BAD("arena size %zu must be a power of two and a multiple of the pool size %zu", ARGS,
        arena_size, pool_size);
  if (log2_exact(arena_size) < 16 || log2_exact(arena_size) > 30)
    BAD("arena size %zu must be from 64 KiB to 1 GiB", ARGS, arena_size);
  size_t overhead = (sizeof(hl_pool_t) + alignment - 1) & ~(alignment - 1);
  if (overhead + threshold > pool_size)
    BAD("a pool of %zu bytes cannot hold its %zu-byte header and one %zu-byte block", ARGS,
        pool_size, overhead, threshold);
#undef BAD
#undef ARGS
  *g = (hl_geometry_t){
      .alignment = alignment,
      .threshold = threshold,
      .pool_size = pool_size,
      .arena_size = arena_size,
      .align_shift = log2_exact(alignment),
      .pool_shift = log2_exact(pool_size),
      .arena_shift = log2_exact(arena_size),
      .nclasses = (unsigned)(threshold / alignment),
      .nsmall = (unsigned)(threshold / alignment),
      .max_size = threshold,
      .pool_overhead = overhead,
      .pools_per_arena = (unsigned)(arena_size / pool_size),
      .colour_mask = 0,
      .colour_shift = 6,
      .span_first = (unsigned)(threshold / alignment),
      .nkinds = 1,
      .pool_max = threshold,
  };
  return 0;
}

/* A colour step of a cache line (or the alignment, if larger), and as many
 * colours, up to 64, as keep every header and the block after it inside the
 * pool's first page (the page a fresh pool touches first holds its header,
 * and no header crosses a page) and leave room after every header for a
 * block of the largest class (init_pool's first block). */
int hl_geometry_colour(hl_geometry_t *g, char *err, size_t errlen) {
  if (g->pool_shift < HLI_RADIX_GRAIN_SHIFT) {
    snprintf(err, errlen,
             "pool colouring needs pools of at least %u KiB (the radix grain, so that the "
             "radix entry can name the header); these pools have %zu bytes",
             1u << (HLI_RADIX_GRAIN_SHIFT - 10), g->pool_size);
    return -EINVAL;
  }
  unsigned shift = g->align_shift > 6 ? g->align_shift : 6, colours = 64;
  size_t page = hl_os_page_size();
  for (; colours > 1; colours /= 2) {
    size_t last = ((size_t)(colours - 1) << shift) + g->pool_overhead;
    if (last + g->alignment <= page && last + g->pool_max <= g->pool_size) break;
  }
  g->colour_shift = shift;
  g->colour_mask = colours - 1;
  return (int)colours;
}

/* The unit (log2 of its bytes) of the span for blocks of size bytes: the
 * smallest power of two of at least two pools and a radix grain (so that
 * every grain of a span names its header: no split entry) that holds seven
 * blocks after its header (an eighth of a pool's worth, as the pools' own
 * largest class); 0 when no span of an arena does. */
static unsigned span_shift(const hl_geometry_t *g, size_t size) {
  unsigned shift = g->pool_shift + 1;
  if (shift < HLI_RADIX_GRAIN_SHIFT) shift = HLI_RADIX_GRAIN_SHIFT;
  size_t start = hli_span_start(g, size);
  for (; shift <= g->arena_shift && shift - g->pool_shift < HLI_MAX_KINDS; shift++)
    if (((size_t)1 << shift) > start && (((size_t)1 << shift) - start) / size >= 7) return shift;
  return 0;
}

/* Spans: the same eight classes per power of two go on above the pools'
 * largest (an eighth of a pool) up to HLI_SPAN_MAX, each served from spans
 * of 2^k pools (span_shift). A power of two whose largest class has no span
 * within an arena, or that would pass HL_MAX_CLASSES, ends the series
 * there (classic's 256 KiB arenas: 32 KiB). Returns the classes added. */
static unsigned add_spans(hl_geometry_t *g) {
  unsigned n = 0, kinds = g->nkinds;
  for (size_t lo = g->pool_max; lo < HLI_SPAN_MAX; lo *= 2) {
    if (g->nclasses + n + 8 > HL_MAX_CLASSES || span_shift(g, 2 * lo) == 0) break;
    for (size_t j = 1; j <= 8; j++) {
      size_t size = lo + j * (lo / 8);
      unsigned kind = span_shift(g, size) - g->pool_shift, idx = g->nclasses + n++;
      g->medium_size[idx - g->nsmall] = (uint32_t)size;
      g->class_kind[idx] = (uint8_t)kind;
      if (kind + 1 > kinds) kinds = kind + 1;
    }
  }
  if (n == 0) return 0;
  g->nclasses += n;
  g->nkinds = kinds;
  g->max_size = g->medium_size[g->nclasses - 1 - g->nsmall];
  return n;
}

int hl_geometry_medium(hl_geometry_t *g, char *err, size_t errlen) {
  size_t t = g->threshold, top = g->pool_size / 8;
  if (!is_pow2(t) || t < 8 * g->alignment) {
    snprintf(err, errlen,
             "large=medium needs a threshold that is a power of two and at least 8 alignments "
             "(%zu bytes), so that its classes are multiples of the alignment; this geometry's "
             "threshold is %zu",
             8 * g->alignment, t);
    return -EINVAL;
  }
  if (top <= t) {
    snprintf(err, errlen,
             "large=medium serves blocks up to an eighth of a pool; these pools (%zu bytes) "
             "leave nothing above the threshold %zu; it needs pools of at least %zu bytes",
             g->pool_size, t, 16 * t);
    return -EINVAL;
  }
  unsigned n = 0, base = log2_exact(t);
  for (size_t lo = t; lo < top; lo *= 2)
    for (size_t j = 1; j <= 8; j++) {
      if (g->nsmall + n >= HL_MAX_CLASSES) {
        snprintf(err, errlen, "large=medium: %u small and %u medium classes, at most %d "
                 "are supported", g->nsmall, n + 1, HL_MAX_CLASSES);
        return -EINVAL;
      }
      g->medium_size[n++] = (uint32_t)(lo + j * (lo / 8));
    }
  g->medium_base_shift = base;
  g->nclasses = g->span_first = g->nsmall + n;
  g->max_size = g->pool_max = g->medium_size[n - 1];
  return (int)(n + add_spans(g));
}
