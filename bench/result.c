/* The JSON result of a run; field names are a contract (docs/results.md). */
#include "result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_object *u64(uint64_t v) { return json_object_new_int64((int64_t)v); }

json_object *hl_json_hist(const hl_hist_t *h) {
  hl_hist_summary_t s = hl_hist_summarize(h);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "count", u64(s.count));
  json_object_object_add(o, "p50", u64(s.p50));
  json_object_object_add(o, "p90", u64(s.p90));
  json_object_object_add(o, "p99", u64(s.p99));
  json_object_object_add(o, "p999", u64(s.p999));
  json_object_object_add(o, "max", u64(s.max));
  json_object_object_add(o, "total", u64(s.total));
  return o;
}

void hl_json_pool_stats(json_object *a, const hl_alloc_stats_t *s,
                        const hl_alloc_stats_t *after) {
  /* the snapshot at the end of the timed part: what the live set costs */
#define HL_STAT_JSON(name, help) json_object_object_add(a, #name, u64(s->name));
  HL_ALLOC_STAT_FIELDS(HL_STAT_JSON)
#undef HL_STAT_JSON
  json_object_object_add(a, "alignment", u64(s->alignment));
  json_object_object_add(a, "threshold", u64(s->threshold));
  json_object_object_add(a, "max_size", u64(s->max_size));
  json_object_object_add(a, "pool_size", u64(s->pool_size));
  json_object_object_add(a, "pool_colours", u64(s->pool_colours));
  json_object_object_add(a, "arena_size", u64(s->arena_size));
  json_object *classes = json_object_new_array();
  for (unsigned i = 0; i < s->nclasses; i++) {
    const hl_alloc_class_stats_t *c = &s->classes[i];
    if (!c->pools) continue;
    json_object *k = json_object_new_object();
#define HL_STAT_JSON(name, help) json_object_object_add(k, #name, u64(c->name));
    HL_ALLOC_CLASS_STAT_FIELDS(HL_STAT_JSON)
#undef HL_STAT_JSON
    json_object_array_add(classes, k);
  }
  json_object_object_add(a, "classes", classes);
  if (after) {
    /* after the workload freed everything: what went back to the OS */
    json_object *f = json_object_new_object();
    json_object_object_add(f, "arenas_current", u64(after->arenas_current));
    json_object_object_add(f, "arenas_reclaimed", u64(after->arenas_reclaimed));
    json_object_object_add(f, "arenas_kept_empty", u64(after->arenas_kept_empty));
    json_object_object_add(f, "blocks_in_use", u64(after->blocks_in_use));
    json_object_object_add(a, "after_free", f);
  }
}

json_object *hl_json_machine(const hl_machine_t *m) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "cpu", json_object_new_string(m->cpu));
  json_object_object_add(o, "cores", json_object_new_int(m->cores));
  json_object_object_add(o, "pus", json_object_new_int(m->pus));
  json_object_object_add(o, "packages", json_object_new_int(m->packages));
  json_object_object_add(o, "numa_nodes", json_object_new_int(m->numa_nodes));
  json_object_object_add(o, "l3_bytes", u64(m->l3_bytes));
  json_object_object_add(o, "memory_bytes", u64(m->memory_bytes));
  json_object_object_add(o, "kernel", json_object_new_string(m->kernel));
  json_object_object_add(o, "arch", json_object_new_string(m->arch));
  json_object_object_add(o, "hostname", json_object_new_string(m->hostname));
  json_object_object_add(o, "hwloc", json_object_new_string(m->hwloc_version));
  return o;
}

json_object *hl_json_config(const hl_config_t *c) {
  json_object *o = json_object_new_object();
  for (size_t id = 0; id < hl_config_option_count(); id++) {
    hl_option_info_t info;
    hl_config_option_info((hl_opt_id_t)id, &info);
    char val[4096];
    hl_config_format(c, (hl_opt_id_t)id, val, sizeof val);
    json_object *v;
    if (strcmp(info.type, "integer") == 0) {
      unsigned long long x = strtoull(val, NULL, 10);
      v = json_object_new_uint64(x);
    } else if (strcmp(info.type, "number") == 0) {
      v = json_object_new_double(strtod(val, NULL));
    } else {
      v = json_object_new_string(val);
    }
    json_object_object_add(o, info.name, v);
  }
  return o;
}

json_object *hl_json_config_origin(const hl_config_t *c) {
  json_object *o = json_object_new_object();
  for (size_t id = 0; id < hl_config_option_count(); id++) {
    if (c->source[id] == HL_SRC_DEFAULT) continue;
    hl_option_info_t info;
    hl_config_option_info((hl_opt_id_t)id, &info);
    json_object_object_add(o, info.name, json_object_new_string(c->origin[id]));
  }
  return o;
}

json_object *hl_json_build(void) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "type", json_object_new_string(hl_build_type));
  json_object_object_add(o, "sanitize", json_object_new_string(hl_build_sanitize));
  json_object_object_add(o, "compiler", json_object_new_string(hl_build_compiler));
  json_object_object_add(o, "dirty", json_object_new_boolean(hl_build_dirty));
#if HL_RC_STATS
  json_object_object_add(o, "rc_stats", json_object_new_boolean(true));
#endif
  /* glibc's tunables change the allocator under every run (and the driver
   * sets one itself for --alloc=jemalloc: bench/main.c) */
  const char *tunables = getenv("GLIBC_TUNABLES");
  if (tunables) json_object_object_add(o, "glibc_tunables", json_object_new_string(tunables));
  return o;
}

static json_object *u64_array(const uint64_t *v, size_t n) {
  json_object *a = json_object_new_array();
  for (size_t i = 0; i < n; i++) json_object_array_add(a, u64(v[i]));
  return a;
}

/* The "gc" object (docs/results.md), over the timed part of the run. Absent with
 * --gc=none: the run has nothing to say about a collector it did not have
 * (its cyclic garbage shows in "objects" instead). */
json_object *hl_json_gc(const hl_run_gc_t *g) {
  const hl_gc_stats_t *s = &g->stats;
  json_object *o = json_object_new_object();
  json_object_object_add(o, "collections", u64_array(s->collections, HL_GC_GENERATIONS));
  json_object_object_add(o, "collected", u64_array(s->collected, HL_GC_GENERATIONS));
  json_object_object_add(o, "uncollectable", u64_array(s->uncollectable, HL_GC_GENERATIONS));
  json_object_object_add(o, "visited", u64(s->visited));
  json_object_object_add(o, "visited_gen", u64_array(s->visited_gen, HL_GC_GENERATIONS));
  json_object_object_add(o, "untracked", u64(s->untracked));
  json_object_object_add(o, "pause_ns", hl_json_hist(&g->pause));
  json_object *per = json_object_new_array();
  for (int i = 0; i < HL_GC_GENERATIONS; i++) json_object_array_add(per, hl_json_hist(&g->pause_gen[i]));
  json_object_object_add(o, "pause_ns_gen", per);
  /* the cost of a collection per object it examined, per generation */
  json_object *npo = json_object_new_array();
  for (int i = 0; i < HL_GC_GENERATIONS; i++)
    json_object_array_add(npo, json_object_new_double(
        s->visited_gen[i] ? (double)s->pause_ns_gen[i] / (double)s->visited_gen[i] : 0.0));
  json_object_object_add(o, "ns_per_visited", npo);
  json_object *mmu = json_object_new_object();
  static const char *const names[HL_GC_MMU_WINDOWS] = {"1ms", "10ms", "100ms"};
  for (int i = 0; i < HL_GC_MMU_WINDOWS; i++)
    json_object_object_add(mmu, names[i], json_object_new_double(g->mmu[i]));
  json_object_object_add(o, "mmu", mmu);
  json_object *mmu_cpu = json_object_new_object();
  for (int i = 0; i < HL_GC_MMU_WINDOWS; i++)
    json_object_object_add(mmu_cpu, names[i], json_object_new_double(g->mmu_cpu[i]));
  json_object_object_add(o, "mmu_cpu", mmu_cpu);
  json_object_object_add(o, "mmu_exact", json_object_new_boolean(g->mmu_exact));
  /* pauses over --pause-budget-us (the incremental collector's budget) */
  json_object_object_add(o, "overruns", u64(s->overruns));
  json_object_object_add(o, "overrun_max_ns", u64(s->overrun_max_ns));
  /* cyclic garbage the workload noted and the collector had not freed yet */
  json_object *bl = json_object_new_object();
  json_object_object_add(bl, "noted", u64(s->garbage_noted));
  json_object_object_add(bl, "max", u64(s->backlog_max));
  json_object_object_add(bl, "final", u64(s->backlog_final));
  json_object_object_add(o, "backlog", bl);
  if (s->increments || s->scans) {
    json_object *inc = json_object_new_object();
    json_object_object_add(inc, "increments", u64(s->increments));
    json_object_object_add(inc, "scans", u64(s->scans));
    json_object_object_add(inc, "scan_units", u64(s->scan_units));
    json_object_object_add(inc, "candidates", u64(s->scan_candidates));
    json_object_object_add(inc, "budget_units", u64(s->budget_units));
    json_object_object_add(inc, "units", hl_json_hist(&g->increment_units));
    json_object_object_add(inc, "overrun_units", u64(s->overrun_units));
    json_object_object_add(inc, "overrun_units_max", u64(s->overrun_units_max));
    json_object_object_add(inc, "saturated", u64(s->saturated));
    json_object_object_add(o, "incremental", inc);
  }
  if (s->conc_chunks) {
    /* --gc=concurrent (gc/gen_conc.c): the collector thread's work beside
     * the mutators, which no pause above includes; its handshakes (stops of
     * the world) are the pauses, their time to stop stw_ns */
    json_object *cc = json_object_new_object();
    json_object_object_add(cc, "chunks", u64(s->conc_chunks));
    json_object_object_add(cc, "chunk_ns", hl_json_hist(&g->chunk_ns));
    json_object_object_add(cc, "units", u64(s->conc_units));
    json_object_object_add(cc, "skipped", u64(s->conc_skipped));
    json_object_object_add(cc, "busy_ns", u64(s->conc_busy_ns));
    json_object_object_add(cc, "cpu_ns", u64(s->conc_cpu_ns));
    json_object *ph = json_object_new_object();
    json_object_object_add(ph, "mark", u64(s->conc_phase_ns[0]));
    json_object_object_add(ph, "count", u64(s->conc_phase_ns[1]));
    json_object_object_add(ph, "roots", u64(s->conc_phase_ns[2]));
    json_object_object_add(cc, "phase_ns", ph);
    json_object_object_add(cc, "scan_wall_max_ns", u64(s->conc_scan_wall_max_ns));
    json_object_object_add(cc, "assists", u64(s->conc_assists));
    json_object_object_add(o, "concurrent", cc);
  }
  /* without a GIL: how long each collection waited for the world to stop
   * (included in its pause); under the GIL the collecting thread stops no one */
  if (g->stw_valid) {
    json_object_object_add(o, "stw_ns", hl_json_hist(&g->stw));
    /* ... and how long the collecting thread then deleted the garbage, the
     * world running (not in any pause: the others did not wait) */
    json_object_object_add(o, "sweep_ns", hl_json_hist(&g->sweep));
  }
  if (g->probe.young_runs) {
    json_object_object_add(o, "young_runs", u64(g->probe.young_runs));
    json_object_object_add(o, "young_objects", u64(g->probe.young_objects));
    json_object_object_add(o, "young_ns_per_obj", json_object_new_double(g->probe.young_ns_per_obj));
  }
  if (g->probe.full_runs) {
    json_object_object_add(o, "full_runs", u64(g->probe.full_runs));
    json_object_object_add(o, "full_objects", u64(g->probe.full_objects));
    json_object_object_add(o, "full_ns_per_obj", json_object_new_double(g->probe.full_ns_per_obj));
  }
  return o;
}

json_object *hl_json_result(const hl_workload_t *wl, const hl_config_t *c,
                            const hl_machine_t *m, const hl_run_result_t *r) {
  json_object *o = json_object_new_object();
  char buf[64];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_object_object_add(o, "workload", json_object_new_string(wl->name));
  json_object_object_add(o, "config", hl_json_config(c));
  json_object_object_add(o, "config_origin", hl_json_config_origin(c));
  json_object_object_add(o, "machine", hl_json_machine(m));
  json_object_object_add(o, "commit", json_object_new_string(hl_build_commit));
  json_object_object_add(o, "build", hl_json_build());
  json_object_object_add(o, "timestamp", json_object_new_string(buf));
  json_object_object_add(o, "threads", json_object_new_int((int)c->threads));
  if (r->workers != c->threads)   /* the workload starts threads of its own beside them */
    json_object_object_add(o, "workers", json_object_new_int((int)r->workers));
  json_object_object_add(o, "ops", u64(r->ops));
  double wall = (double)r->wall_ns / 1e9;
  json_object_object_add(o, "wall_s", json_object_new_double(wall));
  json_object_object_add(o, "cpu_s", json_object_new_double((double)r->cpu_ns / 1e9));
  json_object_object_add(o, "ops_per_s",
                         json_object_new_double(wall > 0 ? (double)r->ops / wall : 0));
  json_object_object_add(o, "peak_rss_bytes", u64(r->peak_rss_bytes));
  json_object_object_add(o, "page_faults_minor", u64(r->page_faults_minor));
  snprintf(buf, sizeof buf, "%016llx", (unsigned long long)r->checksum);
  json_object_object_add(o, "checksum", json_object_new_string(buf));
  if (r->latency) {
    json_object_object_add(o, "latency_ns", hl_json_hist(r->latency));
    json_object_object_add(o, "latency_sample_every", u64(r->latency_every));
  }
  if (r->objects_valid) {
    /* after hl_runtime_fini: leaked_* are 0 in a run that succeeded */
    json_object *ob = json_object_new_object();
#define OBJ_JSON_objects(field, json) json_object_object_add(ob, #json, u64(r->objects.field));
#define OBJ_JSON_rc(field, json)
#define OBJ_JSON_biased(field, json)
#if HL_RC_STATS
    /* every increment and decrement by path, in every mode (hl_gc.h) */
    json_object *ops = json_object_new_object();
#define OBJ_JSON_rcstats(field, json) json_object_object_add(ops, #json, u64(r->objects.field));
#else
#define OBJ_JSON_rcstats(field, json)
#endif
#define OBJ_JSON_(field, where, json, what) OBJ_JSON_##where(field, json)
    HL_OBJ_STATS(OBJ_JSON_)
#if HL_RC_STATS
    json_object_object_add(o, "rc_ops", ops);
#endif
    json_object_object_add(ob, "leaked_objects", u64(r->leaked_objects));
    if (r->cyclic_garbage)   /* with --gc=none, leaked_objects equals it */
      json_object_object_add(ob, "cyclic_garbage_objects", u64(r->cyclic_garbage));
    if (r->leaked_blocks >= 0)
      json_object_object_add(ob, "leaked_blocks", json_object_new_int64(r->leaked_blocks));
    json_object_object_add(o, "objects", ob);
  }
  if (r->gc) json_object_object_add(o, "gc", hl_json_gc(r->gc));
  /* the workload's own figures: a reference of its own, so that the result
   * and r both own one */
  if (r->extra) json_object_object_add(o, "extra", json_object_get(r->extra));
  if (r->gil) {
    json_object *g = json_object_new_object();
    json_object_object_add(g, "switches", u64(r->gil->switches));
    json_object_object_add(g, "forced_switches", u64(r->gil->forced_switches));
    json_object_object_add(g, "drop_requests", u64(r->gil->drop_requests));
    json_object_object_add(g, "handoffs", u64(r->gil->handoffs));
    json_object_object_add(g, "wait_ns", hl_json_hist(&r->gil->wait_ns));
    json_object_object_add(g, "hold_ns", hl_json_hist(&r->gil->hold_ns));
    json_object_object_add(o, "gil", g);
  }
  if (r->stw) {
    /* the runner's stops of the world (--stw-probe-ms); the collector's
     * are in "gc": {"stw_ns"} */
    json_object *st = json_object_new_object();
    json_object_object_add(st, "stops", u64(r->stw->stops));
    json_object_object_add(st, "slow_stops", u64(r->stw->slow_stops));
    json_object_object_add(st, "time_to_stop_ns", hl_json_hist(&r->stw->time_to_stop_ns));
    json_object_object_add(o, "stw", st);
  }
  if (r->objects_valid && c->rc != HL_RC_GIL) {
    /* the free-threaded modes over the whole run: biased reference
     * counting's merges (gc/rc_biased.c), container reads with and without
     * the container's lock (gc/shared.c) */
    json_object *rc = json_object_new_object();
#undef OBJ_JSON_objects
#undef OBJ_JSON_rc
#undef OBJ_JSON_biased
#undef OBJ_JSON_rcstats
#define OBJ_JSON_rcstats(field, json)
#define OBJ_JSON_objects(field, json)
#define OBJ_JSON_rc(field, json) json_object_object_add(rc, #json, u64(r->objects.field));
#define OBJ_JSON_biased(field, json) \
  if (c->rc == HL_RC_BIASED) json_object_object_add(rc, #json, u64(r->objects.field));
    HL_OBJ_STATS(OBJ_JSON_)
    json_object_object_add(o, "rc", rc);
  }
  if (r->alloc.valid || r->pool_stats) {
    json_object *a = json_object_new_object();
    json_object_object_add(a, "allocator", json_object_new_string(hl_alloc_name()));
    if (r->alloc.valid) {
      json_object_object_add(a, "rss_before_bytes", u64(r->alloc.rss_before_bytes));
      json_object_object_add(a, "rss_after_frag_bytes", u64(r->alloc.rss_after_frag_bytes));
      json_object_object_add(a, "rss_after_free_bytes", u64(r->alloc.rss_after_free_bytes));
      if (r->alloc.rss_after_collect_bytes)
        json_object_object_add(a, "rss_after_collect_bytes", u64(r->alloc.rss_after_collect_bytes));
    }
    if (r->pool_stats) hl_json_pool_stats(a, r->pool_stats, r->pool_stats_after);
    json_object_object_add(o, "alloc", a);
  }
  return o;
}
