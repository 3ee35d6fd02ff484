/* heaplab: the driver.
 *
 *   heaplab list                          workloads, options, defaults, accepted values
 *   heaplab run WORKLOAD [--opt=value...] progress + summary on stderr, one JSON object on stdout
 *   heaplab sweep FILE [--out DIR] [--set N=V] [--list]   a grid of runs (sweep.c)
 *   heaplab compare A.jsonl B.jsonl       what changed, and whether it is noise (compare.c)
 *   heaplab --help | heaplab run --help
 *
 * Exit status: 0 success; 1 the run failed (out of memory, a worker error);
 * 2 bad input (unknown workload or option, malformed value, impossible
 * combination, strategy not available yet), reported before anything runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "result.h"

extern char **environ;

enum { EXIT_RUN_FAILED = 1, EXIT_BAD_INPUT = 2 };

static void usage(FILE *f) {
  fprintf(f,
          "usage: heaplab COMMAND [ARGS]\n"
          "\n"
          "commands:\n"
          "  list                           workloads and options (defaults, accepted values)\n"
          "  run WORKLOAD [--name=value...] run one workload; progress and a summary on stderr,\n"
          "                                 one JSON result on stdout\n"
          "  sweep FILE [--out DIR] [--set NAME=VALUES] [--list]\n"
          "                                 a grid (or a union of grids) of runs, each in its own\n"
          "                                 process, interleaved and resumable\n"
          "                                 ('heaplab sweep --help')\n"
          "  compare A.jsonl B.jsonl        per configuration, the change in each figure and\n"
          "                                 whether it is noise (Mann-Whitney U)\n"
          "\n"
          "options come from, lowest precedence first: defaults, --config FILE, HEAPLAB_<NAME>\n"
          "environment variables, --name=value flags. 'heaplab run --help' lists them.\n"
          "exit status: 0 ok, 1 the run failed, 2 bad input\n");
}

static void print_options(FILE *f) {
  fprintf(f, "options (flag --name=value, environment HEAPLAB_NAME, config file name = value):\n");
  for (size_t id = 0; id < hl_config_option_count(); id++) {
    hl_option_info_t i;
    hl_config_option_info((hl_opt_id_t)id, &i);
    fprintf(f, "  --%-20s default %-10s %s\n", i.name, *i.defval ? i.defval : "(none)", i.help);
    fprintf(f, "  %-22s accepted: %s\n", "", i.accepted);
    if (*i.not_yet) fprintf(f, "  %-22s not available yet: %s\n", "", i.not_yet);
    if (*i.library_default)
      fprintf(f, "  %-22s default in libheaplab-malloc.so: %s\n", "", i.library_default);
  }
}

static void print_workloads(FILE *f) {
  fprintf(f, "workloads:\n");
  for (size_t i = 0; i < hl_workload_count; i++) {
    const hl_workload_t *w = hl_workloads[i];
    fprintf(f, "  %-16s %s\n  %-16s scale=1: %s\n", w->name, w->summary, "", w->unit);
  }
}

static void run_usage(FILE *f) {
  fprintf(f, "usage: heaplab run WORKLOAD [--name=value ...]\n\n");
  print_workloads(f);
  fprintf(f, "\n");
  print_options(f);
}

static int cmd_list(void) {
  print_workloads(stdout);
  printf("\n");
  print_options(stdout);
  return 0;
}

/* A percentile of a histogram, or "-" when the histogram holds no sample:
 * a 0 there would read as a measurement. */
static const char *pct(char *buf, size_t len, const hl_hist_summary_t *s, uint64_t v,
                       const char *unit) {
  if (!s->count) return "-";
  snprintf(buf, len, "%llu%s", (unsigned long long)v, unit);
  return buf;
}

static void summarize(const hl_workload_t *wl, const hl_config_t *c, const hl_run_result_t *r) {
  char b1[24], b2[24], b3[24], b4[24], b5[24], b6[24];
  double wall = (double)r->wall_ns / 1e9;
  char alloc[32];
  hl_config_format(c, HL_OPT_ALLOC, alloc, sizeof alloc);
  fprintf(stderr, "heaplab run %s ", wl->name);
  if (wl->uses & HL_OPT_BIT(HL_OPT_ALLOC)) fprintf(stderr, " alloc=%s", alloc);
  fprintf(stderr, " threads=%u", c->threads);
  if (r->workers != c->threads) fprintf(stderr, " (+%u of its own)", r->workers - c->threads);
  if (wl->uses & HL_OPT_BIT(HL_OPT_RC))
    fprintf(stderr, " rc=%s", hl_config_choice_name(HL_OPT_RC, c->rc));
  fprintf(stderr, " scale=%llu seed=%llu\n", (unsigned long long)c->scale,
          (unsigned long long)c->seed);
  fprintf(stderr, "  ops        %llu in %.3f s: %.2f M ops/s; cpu %.3f s\n",
          (unsigned long long)r->ops, wall, wall > 0 ? (double)r->ops / wall / 1e6 : 0.0,
          (double)r->cpu_ns / 1e9);
  if (r->latency && r->latency->count) {
    hl_hist_summary_t s = hl_hist_summarize(r->latency);
    fprintf(stderr,
            "  latency    p50 %llu ns, p90 %llu, p99 %llu, p99.9 %llu, max %llu "
            "(1 op in %llu timed)\n",
            (unsigned long long)s.p50, (unsigned long long)s.p90, (unsigned long long)s.p99,
            (unsigned long long)s.p999, (unsigned long long)s.max,
            (unsigned long long)r->latency_every);
  }
  if (r->gil) {
    hl_hist_summary_t w = hl_hist_summarize(&r->gil->wait_ns);
    hl_hist_summary_t h = hl_hist_summarize(&r->gil->hold_ns);
    fprintf(stderr,
            "  gil        %llu switches (%llu forced, %llu drop requests) at %llu us; "
            "wait p50 %s, p99 %s, max %s; hold p50 %s, p99 %s, max %s\n",
            (unsigned long long)r->gil->switches, (unsigned long long)r->gil->forced_switches,
            (unsigned long long)r->gil->drop_requests, (unsigned long long)c->switch_interval_us,
            pct(b1, sizeof b1, &w, w.p50, " ns"), pct(b2, sizeof b2, &w, w.p99, ""),
            pct(b3, sizeof b3, &w, w.max, ""), pct(b4, sizeof b4, &h, h.p50, " ns"),
            pct(b5, sizeof b5, &h, h.p99, ""), pct(b6, sizeof b6, &h, h.max, ""));
  }
  if (r->stw) {
    hl_hist_summary_t st = hl_hist_summarize(&r->stw->time_to_stop_ns);
    fprintf(stderr,
            "  stw        %llu stops of the world; time to stop p50 %s, p99 %s, max %s; "
            "%llu past stw-report-us\n",
            (unsigned long long)r->stw->stops, pct(b1, sizeof b1, &st, st.p50, " ns"),
            pct(b2, sizeof b2, &st, st.p99, ""), pct(b3, sizeof b3, &st, st.max, ""),
            (unsigned long long)r->stw->slow_stops);
  }
  if (r->objects_valid && c->rc == HL_RC_BIASED)
    fprintf(stderr, "  rc         biased: %llu objects queued to their owner, %llu merged\n",
            (unsigned long long)r->objects.rc_merges_queued,
            (unsigned long long)r->objects.rc_merges_done);
  if (r->objects_valid && c->rc != HL_RC_GIL &&
      (r->objects.reads_unlocked || r->objects.reads_locked))
    fprintf(stderr, "  reads      %llu container reads without the lock, %llu with it\n",
            (unsigned long long)r->objects.reads_unlocked,
            (unsigned long long)r->objects.reads_locked);
  if (r->gc) {
    const hl_gc_stats_t *g = &r->gc->stats;
    hl_hist_summary_t p = hl_hist_summarize(&r->gc->pause);
    fprintf(stderr,
            "  gc         %llu/%llu/%llu collections (gen 0/1/2), %llu collected, "
            "%llu uncollectable, %llu visited; pause p50 %s, p99 %s, max %s, "
            "total %.3f s; MMU %.3f/%.3f/%.3f at 1/10/100 ms%s\n",
            (unsigned long long)g->collections[0], (unsigned long long)g->collections[1],
            (unsigned long long)g->collections[2],
            (unsigned long long)(g->collected[0] + g->collected[1] + g->collected[2]),
            (unsigned long long)(g->uncollectable[0] + g->uncollectable[1] + g->uncollectable[2]),
            (unsigned long long)g->visited, pct(b1, sizeof b1, &p, p.p50, " ns"),
            pct(b2, sizeof b2, &p, p.p99, ""), pct(b3, sizeof b3, &p, p.max, ""),
            (double)p.total / 1e9, r->gc->mmu[0], r->gc->mmu[1],
            r->gc->mmu[2], r->gc->mmu_exact ? "" : " (upper bounds)");
    if (r->gc->young_runs || r->gc->full_runs)
      fprintf(stderr, "  gc timed   young: %.1f ns per object (%llu objects), full: %.1f ns per "
              "object (%llu objects); medians of %u and %u runs\n",
              r->gc->young_ns_per_obj, (unsigned long long)r->gc->young_objects,
              r->gc->full_ns_per_obj, (unsigned long long)r->gc->full_objects,
              r->gc->young_runs, r->gc->full_runs);
  }
  fprintf(stderr, "  memory     peak RSS %.1f MiB; minor page faults %llu",
          (double)r->peak_rss_bytes / 1048576.0, (unsigned long long)r->page_faults_minor);
  if (r->alloc.valid)
    fprintf(stderr, "; RSS before %.1f MiB, fragmented %.1f MiB, all freed %.1f MiB",
            (double)r->alloc.rss_before_bytes / 1048576.0,
            (double)r->alloc.rss_after_frag_bytes / 1048576.0,
            (double)r->alloc.rss_after_free_bytes / 1048576.0);
  if (r->alloc.rss_after_collect_bytes)
    fprintf(stderr, ", after hl_alloc_collect %.1f MiB",
            (double)r->alloc.rss_after_collect_bytes / 1048576.0);
  fprintf(stderr, "\n");
  if (r->objects_valid) {
    const hl_obj_stats_t *o = &r->objects;
    uint64_t made = o->allocated + o->freelist_hits;
    fprintf(stderr,
            "  objects    %llu made: %llu from the allocator, %llu from free lists (%.1f%%); "
            "%llu kept by free lists; finalizers %llu, weakref callbacks %llu, trashcan %llu; "
            "leaked %llu",
            (unsigned long long)made, (unsigned long long)o->allocated,
            (unsigned long long)o->freelist_hits,
            made ? 100.0 * (double)o->freelist_hits / (double)made : 0.0,
            (unsigned long long)o->freelist_puts, (unsigned long long)o->finalizers_run,
            (unsigned long long)o->weakref_callbacks, (unsigned long long)o->trash_deferred,
            (unsigned long long)r->leaked_objects);
    if (r->leaked_blocks >= 0) fprintf(stderr, " (pool blocks: %lld)", (long long)r->leaked_blocks);
    if (r->cyclic_garbage)
      fprintf(stderr, "; %llu objects left in cyclic garbage%s",
              (unsigned long long)r->cyclic_garbage,
              c->gc == HL_GC_NONE ? " (no collector: they leak)" : " (collected)");
    fprintf(stderr, "\n");
  }
  fprintf(stderr, "  checksum   %016llx\n", (unsigned long long)r->checksum);
}

static int cmd_run(int argc, char **argv) {
  if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
    run_usage(argc < 1 ? stderr : stdout);
    return argc < 1 ? EXIT_BAD_INPUT : 0;
  }
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      run_usage(stdout);
      return 0;
    }
  const char *name = argv[0];
  const hl_workload_t *wl = hl_workload_find(name);
  if (!wl) {
    fprintf(stderr, "heaplab: unknown workload '%s'; workloads are:", name);
    for (size_t i = 0; i < hl_workload_count; i++)
      fprintf(stderr, "%s %s", i ? "," : "", hl_workloads[i]->name);
    fprintf(stderr, " (see 'heaplab list')\n");
    return EXIT_BAD_INPUT;
  }
  hl_config_t cfg;
  char err[1024], notes[2048];
  if (hl_config_resolve(&cfg, argc - 1, argv + 1, environ, err, sizeof err) != 0 ||
      hl_run_check(wl, &cfg, err, sizeof err) != 0) {
    fprintf(stderr, "heaplab: %s\n", err);
    return EXIT_BAD_INPUT;
  }
  if (hl_config_notes(&cfg, wl->uses, notes, sizeof notes) > 0) fputs(notes, stderr);
  if (hl_workload_uses_objects(wl) && cfg.rc != HL_RC_GIL && !cfg.immortal)
    fprintf(stderr,
            "note: rc=%s with immortal=off: None, True, False and the small ints belong to no "
            "thread, so every thread counts them with atomic instructions on shared cache "
            "lines (CPython's free-threaded build makes them immortal: --immortal=on)\n",
            hl_config_choice_name(HL_OPT_RC, cfg.rc));

  hl_machine_t machine;
  if (hl_topo_describe(&machine) != 0)
    fprintf(stderr, "heaplab: warning: hwloc could not describe this machine\n");

  hl_run_result_t r;
  if (hl_run_workload(wl, &cfg, true, &r, err, sizeof err) != 0) {
    fprintf(stderr, "heaplab: run failed: %s\n", err);
    hl_run_result_free(&r);
    return EXIT_RUN_FAILED;
  }
  summarize(wl, &cfg, &r);
  if (cfg.alloc_stats && r.pool_stats) hl_alloc_stats_print(r.pool_stats, stderr);
  json_object *o = hl_json_result(wl, &cfg, &machine, &r);
  printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  fflush(stdout);
  json_object_put(o);
  hl_run_result_free(&r);
  return 0;
}

int main(int argc, char **argv) {
  /* Doubles with 9 significant digits: exact enough for seconds and rates,
   * and short. */
  json_c_set_serialization_double_format("%.9g", JSON_C_OPTION_GLOBAL);
  if (argc < 2) {
    usage(stderr);
    return EXIT_BAD_INPUT;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "list") == 0) return cmd_list();
  if (strcmp(cmd, "run") == 0) return cmd_run(argc - 2, argv + 2);
  if (strcmp(cmd, "sweep") == 0) return hl_cmd_sweep(argc - 2, argv + 2);
  if (strcmp(cmd, "compare") == 0) return hl_cmd_compare(argc - 2, argv + 2);
  fprintf(stderr, "heaplab: unknown command '%s'; commands: list, run, sweep, compare, --help\n",
          cmd);
  return EXIT_BAD_INPUT;
}
