/* The pool allocator's statistics as text, laid out like CPython's
 * sys._debugmallocstats(): a row per size class, then the arena and byte
 * totals. The field list is HL_ALLOC_STAT_FIELDS (hl_alloc.h), which also
 * generates the struct and the JSON (bench/result.c). */
#include <inttypes.h>

#include "hl_alloc.h"

void hl_alloc_stats_print(const hl_alloc_stats_t *s, FILE *f) {
  fprintf(f, "heaplab pool allocator: alignment %" PRIu64 ", threshold %" PRIu64
             ", pool %" PRIu64 " B, arena %" PRIu64 " B, pool colours %" PRIu64 "\n",
          s->alignment, s->threshold, s->pool_size, s->arena_size, s->pool_colours);
  fprintf(f, "class   size   num pools   blocks in use  avail blocks\n");
  fprintf(f, "-----   ----   ---------   -------------  ------------\n");
  for (unsigned i = 0; i < s->nclasses; i++) {
    const hl_alloc_class_stats_t *c = &s->classes[i];
    if (c->pools == 0) continue;
    fprintf(f, "%5u %6" PRIu64 " %11" PRIu64 " %15" PRIu64 " %13" PRIu64 "\n", i, c->size,
            c->pools, c->blocks_in_use, c->free_blocks);
  }
  fprintf(f, "\n");
#define HL_STAT_PRINT(name, help) fprintf(f, "%-22s = %15" PRIu64 "   %s\n", #name, s->name, help);
  HL_ALLOC_STAT_FIELDS(HL_STAT_PRINT)
#undef HL_STAT_PRINT
}
