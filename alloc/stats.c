/* The pool allocator's statistics as text and as JSON. The text is laid
 * out like CPython's sys._debugmallocstats() (a row per size class, then the
 * totals) with what mimalloc's MIMALLOC_SHOW_STATS adds (bytes per class,
 * the thread caches one by one). The fields are the X-macro lists of
 * hl_alloc.h (HL_ALLOC_STAT_FIELDS, HL_ALLOC_CLASS_STAT_FIELDS,
 * HL_ALLOC_TCACHE_STAT_FIELDS), which also generate the structs and the
 * driver's JSON (bench/result.c). Plain stdio and no allocation of our own:
 * libheaplab-malloc.so prints these at exit (preload.c).
 *
 * The text is stable: scripts may read it by its headers and column order
 * (docs/malloc-library.md, "Statistics"); new figures are added as new
 * lines or columns at the end, never by moving one. */
#include <inttypes.h>

#include "hl_alloc.h"

#define U64 "%" PRIu64

void hl_alloc_stats_print(const hl_alloc_stats_t *s, FILE *f) {
  fprintf(f, "heaplab pool allocator: alignment " U64 ", threshold " U64 ", largest block " U64
             ", pool " U64 " B, arena " U64 " B, pool colours " U64 "\n",
          s->alignment, s->threshold, s->max_size, s->pool_size, s->arena_size, s->pool_colours);
  fprintf(f, "class   size   num pools   arenas   blocks in use  avail blocks    bytes in use"
             "     bytes avail   in tcaches\n");
  fprintf(f, "-----   ----   ---------   ------   -------------  ------------    ------------"
             "     -----------   ----------\n");
  hl_alloc_class_stats_t sum = {0};
  uint64_t bytes_used = 0, bytes_avail = 0;
  for (unsigned i = 0; i < s->nclasses; i++) {
    const hl_alloc_class_stats_t *c = &s->classes[i];
    if (c->pools == 0) continue;
    fprintf(f, "%5u %6" PRIu64 " %11" PRIu64 " %8" PRIu64 " %15" PRIu64 " %13" PRIu64 " %15" PRIu64
               " %15" PRIu64 " %12" PRIu64 "\n",
            i, c->size, c->pools, c->arenas, c->blocks_in_use, c->free_blocks,
            c->blocks_in_use * c->size, c->free_blocks * c->size, c->tcache_blocks);
    sum.pools += c->pools;
    sum.blocks_in_use += c->blocks_in_use;
    sum.free_blocks += c->free_blocks;
    sum.tcache_blocks += c->tcache_blocks;
    bytes_used += c->blocks_in_use * c->size;
    bytes_avail += c->free_blocks * c->size;
  }
  /* arenas: those mapped, not the sum of the column (an arena holds pools
   * of several classes) */
  fprintf(f, "total        %11" PRIu64 " %8" PRIu64 " %15" PRIu64 " %13" PRIu64 " %15" PRIu64
             " %15" PRIu64 " %12" PRIu64 "\n",
          sum.pools, s->arenas_current, sum.blocks_in_use, sum.free_blocks, bytes_used,
          bytes_avail, sum.tcache_blocks);
  fprintf(f, "\n");
#define HL_STAT_PRINT(name, help) fprintf(f, "%-22s = %15" PRIu64 "   %s\n", #name, s->name, help);
  HL_ALLOC_STAT_FIELDS(HL_STAT_PRINT)
#undef HL_STAT_PRINT
  fprintf(f, "\nthread caches (tcache=%s): %u listed\n", s->tcache ? s->tcache : "none",
          s->ntcaches);
  if (s->ntcaches == 0) return;
  fprintf(f, "cache  state       pools   arenas   blocks in use    bytes in use   free blocks"
             "      free bytes   remote pending\n");
  fprintf(f, "-----  -----       -----   ------   -------------    ------------   -----------"
             "      ----------   --------------\n");
  for (unsigned i = 0; i < s->ntcaches; i++) {
    const hl_alloc_tcache_stats_t *t = &s->tcaches[i];
    fprintf(f, "%5u  %-9s %7" PRIu64 " %8" PRIu64 " %15" PRIu64 " %15" PRIu64 " %13" PRIu64
               " %15" PRIu64 " %16" PRIu64 "\n",
            i, t->state, t->pools, t->arenas, t->blocks_in_use, t->bytes_in_use, t->free_blocks,
            t->free_bytes, t->remote_pending);
  }
  uint64_t all = s->heaps ? s->heaps : s->tcache_threads;
  if (all > s->ntcaches)
    fprintf(f, "(%" PRIu64 " more, counted in the totals above, not listed)\n", all - s->ntcaches);
}

void hl_alloc_stats_print_json(const hl_alloc_stats_t *s, FILE *f) {
  fprintf(f, "\"geometry\": {\"alignment\": " U64 ", \"threshold\": " U64 ", \"max_size\": " U64
             ", \"pool_size\": " U64 ", \"arena_size\": " U64 ", \"pool_colours\": " U64 "},\n",
          s->alignment, s->threshold, s->max_size, s->pool_size, s->arena_size, s->pool_colours);
  fprintf(f, "\"classes\": [");
  const char *sep = "";
  for (unsigned i = 0; i < s->nclasses; i++) {
    const hl_alloc_class_stats_t *c = &s->classes[i];
    if (c->pools == 0) continue;
    fprintf(f, "%s\n  {\"class\": %u", sep, i);
#define HL_STAT_JSON(name, help) fprintf(f, ", \"" #name "\": " U64, c->name);
    HL_ALLOC_CLASS_STAT_FIELDS(HL_STAT_JSON)
#undef HL_STAT_JSON
    fprintf(f, ", \"bytes_in_use\": " U64 ", \"free_bytes\": " U64 "}",
            c->blocks_in_use * c->size, c->free_blocks * c->size);
    sep = ",";
  }
  fprintf(f, "],\n\"totals\": {");
  sep = "";
#define HL_STAT_JSON(name, help) \
  fprintf(f, "%s\"" #name "\": " U64, sep, s->name); \
  sep = ", ";
  HL_ALLOC_STAT_FIELDS(HL_STAT_JSON)
#undef HL_STAT_JSON
  fprintf(f, "},\n\"tcache\": {\"mode\": \"%s\", \"listed\": %u, \"caches\": [",
          s->tcache ? s->tcache : "none", s->ntcaches);
  for (unsigned i = 0; i < s->ntcaches; i++) {
    const hl_alloc_tcache_stats_t *t = &s->tcaches[i];
    fprintf(f, "%s\n  {\"state\": \"%s\"", i ? "," : "", t->state);
#define HL_STAT_JSON(name, help) fprintf(f, ", \"" #name "\": " U64, t->name);
    HL_ALLOC_TCACHE_STAT_FIELDS(HL_STAT_JSON)
#undef HL_STAT_JSON
    fprintf(f, "}");
  }
  fprintf(f, "]}");
}
