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

/* The object layer's (micro_obj.c) and their CPython twins (micro_cpython.c,
 * built when HL_HAVE_CPYTHON). */
extern const hl_micro_t hl_micros_obj[];
extern const unsigned hl_micro_obj_count;
extern const hl_micro_t hl_micros_cpython[];
extern const unsigned hl_micro_cpython_count;

/* The configuration the shim resolved (micro_obj.c restarts the runtime
 * from it with immortal changed). */
struct hl_config;
extern const struct hl_config *hl_micro_config;

#ifdef __cplusplus
}
#endif
#endif /* HL_MICRO_H */
