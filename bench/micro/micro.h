/* Micro-benchmarks of fast paths, written in C and run by Google Benchmark
 * through bench/micro/shim.cc.
 *
 * Google Benchmark has no C API (its issue #592), so each benchmark here is a
 * plain C function that runs `iters` operations; the shim calls it once per
 * batch (State::KeepRunningBatch), so the C++/C boundary and the benchmark
 * loop cost nothing per operation.
 */
#ifndef HL_MICRO_H
#define HL_MICRO_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hl_micro {
  const char *name;
  const char *what;                       /* one line: what one iteration is */
  uint64_t batch;                         /* iterations per call of run */
  int64_t args[12];                       /* benchmark arguments, 0-terminated; none: {0} */
  void *(*setup)(int64_t arg);            /* may be NULL; NULL result = failure */
  void (*run)(void *state, uint64_t iters);
  void (*teardown)(void *state);          /* may be NULL */
} hl_micro_t;

extern const hl_micro_t hl_micros[];
extern const unsigned hl_micro_count;

#ifdef __cplusplus
}
#endif
#endif /* HL_MICRO_H */
