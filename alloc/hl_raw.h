/* heaplab alloc/raw: layer +1 of docs/design.md, the raw allocator.
 *
 * Semantics of CPython's raw memory interface (Include/pymem.h and the
 * "Memory Management" chapter of the C API manual: PyMem_RawMalloc,
 * PyMem_RawCalloc, PyMem_RawRealloc, PyMem_RawFree, and the PyMem_New /
 * PyMem_Resize macros), rebuilt over the C library:
 *
 *   - A request for 0 bytes is served as a request for 1 byte, so it returns
 *     a distinct non-NULL pointer (or NULL only when memory is exhausted).
 *     Callers may then treat NULL as "out of memory" without a special case
 *     for empty objects, which C's malloc(0) does not allow (it may return
 *     NULL or a pointer, at the library's choice).
 *   - A request above PTRDIFF_MAX bytes fails with NULL before reaching the C
 *     library: no object may be larger than the difference of two pointers
 *     can express (CPython bounds sizes by PY_SSIZE_T_MAX for the same
 *     reason: its lengths are signed).
 *   - calloc fails with NULL when nelem * elsize overflows or exceeds
 *     PTRDIFF_MAX; a zero count or size is served as calloc(1, 1).
 *   - realloc(p, 0) behaves as realloc(p, 1): it returns a usable pointer and
 *     never frees p while returning NULL (C17 leaves that case to the
 *     implementation and C23 makes it undefined). On failure p is untouched.
 *   - free(NULL) does nothing.
 *
 * With alloc-debug=on (alloc/debug.c, CPython's PYTHONMALLOC=debug) these
 * are the raw family of the debug hooks: each block carries a header and
 * guard bytes, new memory reads 0xCD and freed memory 0xDD, realloc always
 * moves, and a block must come back to hl_raw_free or hl_raw_realloc: given
 * to hl_pool_free (the object family), or freed twice, or overrun, it stops
 * the process with a report.
 *
 * These functions are thread-safe and need no lock of ours (the C library's
 * malloc is); CPython lets them be called without the GIL for that reason.
 *
 * Typed helpers. HL_NEW(type, n) and HL_RESIZE(p, type, n) compute
 * n * sizeof(type) only after checking n <= PTRDIFF_MAX / sizeof(type), so an
 * element count from untrusted input cannot wrap into a small allocation.
 * Each evaluates n once (it goes through an inline function), unlike
 * CPython's macros. HL_RESIZE, unlike PyMem_Resize, does not assign to p: on
 * failure the caller still holds the old block and must decide what to do
 * with it, where PyMem_Resize overwrites p with NULL and leaks it unless the
 * caller kept a copy.
 *
 *   T *v = HL_NEW(T, n);                 if (!v) return -ENOMEM;
 *   T *w = HL_RESIZE(v, T, 2 * n);       if (!w) { hl_raw_free(v); return -ENOMEM; }
 *   v = w;
 */
#ifndef HL_RAW_H
#define HL_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "hl_base.h"

#ifdef __cplusplus
extern "C" {
#endif
HL_API_BEGIN

void *hl_raw_malloc(size_t size);
void *hl_raw_calloc(size_t nelem, size_t elsize);
void *hl_raw_realloc(void *p, size_t size);
void  hl_raw_free(void *p);

/* The overflow-checked array forms behind the macros: n elements of size
 * bytes each (size > 0); NULL when n * size would exceed PTRDIFF_MAX. */
static inline void *hl_raw_malloc_array(size_t n, size_t size) {
  if (n > (size_t)PTRDIFF_MAX / size) return NULL;
  return hl_raw_malloc(n * size);
}
static inline void *hl_raw_realloc_array(void *p, size_t n, size_t size) {
  if (n > (size_t)PTRDIFF_MAX / size) return NULL;
  return hl_raw_realloc(p, n * size);
}

/* A negative n converts to a huge size_t and fails the check. */
#define HL_NEW(type, n) ((type *)hl_raw_malloc_array((size_t)(n), sizeof(type)))
#define HL_RESIZE(p, type, n) ((type *)hl_raw_realloc_array((p), (size_t)(n), sizeof(type)))

HL_API_END
#ifdef __cplusplus
}
#endif
#endif /* HL_RAW_H */
