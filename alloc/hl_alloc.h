/* heaplab alloc/: the allocator layer's public interface.
 *
 * Layers 0 to +2 of DESIGN.md: the OS (mmap), the raw allocator (PyMem_Raw*),
 * the object allocator (arenas > pools > blocks) with per-thread caches in
 * front. Built so far: the strategy switch and `alloc=system`, which sends
 * every request to the C library, so that the harness runs end to end and
 * later strategies have their baseline. `alloc=pool` is rejected by the
 * configuration as not available yet (sync/config.c).
 *
 * The hot entry points are static inline and branch on a mode resolved once at
 * hl_alloc_init(): no indirect call per allocation (STYLE.md).
 */
#ifndef HL_ALLOC_H
#define HL_ALLOC_H

#include <stddef.h>
#include <stdlib.h>

#include "hl_base.h"
#include "hl_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hl_alloc_state {
  hl_alloc_kind_t kind;
  int initialized;
} hl_alloc_state_t;

extern hl_alloc_state_t hl_alloc_state;

/* Selects the strategy of c->alloc. Returns 0, or -ENOSYS with a message when
 * this build does not have it. Call once, before any thread allocates. */
int hl_alloc_init(const hl_config_t *c, char *err, size_t errlen);
const char *hl_alloc_name(void);

static inline void *hl_alloc_malloc(size_t n) {
  HL_ASSERT(hl_alloc_state.initialized);
  return malloc(n);
}

static inline void hl_alloc_free(void *p) {
  HL_ASSERT(hl_alloc_state.initialized);
  free(p);
}

static inline void *hl_alloc_realloc(void *p, size_t n) {
  HL_ASSERT(hl_alloc_state.initialized);
  return realloc(p, n);
}

#ifdef __cplusplus
}
#endif
#endif /* HL_ALLOC_H */
