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
  // The allocator under test and its options come from HEAPLAB_* variables
  // (Google Benchmark owns the command line), with the same checks as heaplab.
  hl_config_t cfg;
  char err[1024];
  if (hl_config_resolve(&cfg, 0, nullptr, environ, err, sizeof err) != 0 ||
      hl_config_check_combinations(&cfg, err, sizeof err) != 0 ||
      hl_config_check_available(&cfg, HL_OPT_BIT(HL_OPT_ALLOC) | HL_OPT_BIT(HL_OPT_GEOMETRY),
                                err, sizeof err) != 0 ||
      hl_alloc_check_config(&cfg, err, sizeof err) != 0) {
    std::fprintf(stderr, "heaplab-micro: %s\n", err);
    return 2;
  }
  if (hl_alloc_init(&cfg, err, sizeof err) != 0) {
    std::fprintf(stderr, "heaplab-micro: %s\n", err);
    return 2;
  }
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
  for (unsigned i = 0; i < hl_micro_count; i++) {
    const hl_micro_t *m = &hl_micros[i];
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
  benchmark::AddCustomContext("heaplab_cpu", mach.cpu);
  benchmark::AddCustomContext("heaplab_cores", std::to_string(mach.cores));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
