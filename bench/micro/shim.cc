// heaplab-micro: runs the C micro-benchmarks of micro.c under Google Benchmark.
//
// The only C++ in heaplab. It registers every hl_micros[] entry and crosses
// into C once per batch (KeepRunningBatch), so the boundary is paid once per
// `batch` iterations. It also compiles every public header of heaplab as C++.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" {
#include "hl_alloc.h"
#include "hl_config.h"
#include "hl_gc.h"
#include "hl_sync.h"
#include "micro.h"
#include "result.h"
}

static void run_micro(benchmark::State &st, const hl_micro_t *m) {
  void *state = m->setup ? m->setup(st.range(0)) : nullptr;
  if (m->setup && !state) {
    st.SkipWithError("setup failed (out of memory?)");
    return;
  }
  while (st.KeepRunningBatch(static_cast<benchmark::IterationCount>(m->batch)))
    m->run(state, m->batch);
  if (m->teardown) m->teardown(state);
  st.SetItemsProcessed(st.iterations());
  st.SetLabel(m->what);
}

extern "C" char **environ;

int main(int argc, char **argv) {
  // The allocator under test, the object layer's options (freelists,
  // immortal) and the allocator's come from HEAPLAB_* variables (Google
  // Benchmark owns the command line), with the same checks as heaplab.
  static hl_config_t cfg;
  char err[1024];
  const uint64_t uses = HL_OPT_BIT(HL_OPT_ALLOC) | HL_OPT_BIT(HL_OPT_GEOMETRY) |
                        HL_OPT_BIT(HL_OPT_TCACHE) | HL_OPT_BIT(HL_OPT_RC) |
                        HL_OPT_BIT(HL_OPT_IMMORTAL) | HL_OPT_BIT(HL_OPT_FREELISTS);
  if (hl_config_resolve(&cfg, 0, nullptr, environ, err, sizeof err) != 0 ||
      hl_config_check_combinations(&cfg, err, sizeof err) != 0 ||
      hl_config_check_available(&cfg, uses, err, sizeof err) != 0 ||
      hl_alloc_check_config(&cfg, err, sizeof err) != 0) {
    std::fprintf(stderr, "heaplab-micro: %s\n", err);
    return 2;
  }
  if (hl_alloc_init(&cfg, err, sizeof err) != 0 || hl_runtime_init(&cfg, err, sizeof err) != 0) {
    std::fprintf(stderr, "heaplab-micro: %s\n", err);
    return 2;
  }
  hl_micro_config = &cfg;
  // HEAPLAB_MICRO_ITERATIONS=N runs every benchmark exactly N iterations
  // (rounded up to its batch): what instruction counts under
  // valgrind --tool=callgrind need (scripts/callgrind-micro).
  long long fixed = 0;
  if (const char *it = std::getenv("HEAPLAB_MICRO_ITERATIONS")) {
    char *end;
    fixed = std::strtoll(it, &end, 10);
    if (*it == '\0' || *end || fixed <= 0) {
      std::fprintf(stderr, "heaplab-micro: HEAPLAB_MICRO_ITERATIONS='%s': expected a positive integer\n", it);
      return 2;
    }
  }
  struct table { const hl_micro_t *m; unsigned n; };
  const table tables[] = {
    {hl_micros, hl_micro_count},
    {hl_micros_obj, hl_micro_obj_count},
#ifdef HL_HAVE_CPYTHON
    {hl_micros_cpython, hl_micro_cpython_count},
#endif
  };
  for (const table &t : tables)
    for (unsigned i = 0; i < t.n; i++) {
      const hl_micro_t *m = &t.m[i];
      auto *b = benchmark::RegisterBenchmark(m->name, run_micro, m);
      if (fixed) b->Iterations(static_cast<benchmark::IterationCount>(
                     (fixed + m->batch - 1) / m->batch * m->batch));
      for (int k = 0; k < 12 && m->args[k]; k++) b->Arg(m->args[k]);
      if (!m->args[0]) b->Arg(0);
    }
  hl_machine_t mach;
  hl_topo_describe(&mach);
  benchmark::AddCustomContext("heaplab_commit", hl_build_commit);
  benchmark::AddCustomContext("heaplab_build", std::string(hl_build_type) + (hl_build_dirty ? " (dirty tree)" : ""));
  benchmark::AddCustomContext("heaplab_alloc", hl_alloc_name());
  char geometry[128];
  hl_config_format(&cfg, HL_OPT_GEOMETRY, geometry, sizeof geometry);
  benchmark::AddCustomContext("heaplab_geometry", geometry);
  benchmark::AddCustomContext("heaplab_freelists", cfg.freelists ? "on" : "off");
  benchmark::AddCustomContext("heaplab_immortal", cfg.immortal ? "on" : "off");
#ifdef HL_HAVE_CPYTHON
  benchmark::AddCustomContext("cpython", PY_VERSION_STR);
#endif
  benchmark::AddCustomContext("heaplab_cpu", mach.cpu);
  benchmark::AddCustomContext("heaplab_cores", std::to_string(mach.cores));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // Every micro dropped what it made: a leak in gc/ or in a micro shows here.
  hl_runtime_fini();
  hl_obj_stats_t os;
  hl_obj_stats(&os);
  if (os.allocated != os.freed) {
    std::fprintf(stderr, "heaplab-micro: leak: %llu objects allocated, %llu freed\n",
                 (unsigned long long)os.allocated, (unsigned long long)os.freed);
    return 1;
  }
  return 0;
}
