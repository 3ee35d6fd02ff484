/* The raw allocator (layer +1): the C library's malloc family with CPython's
 * PyMem_Raw* guarantees on top. The semantics, and why each one is there,
 * are at the top of hl_raw.h; this file only enforces them.
 *
 * Every check runs before the C library is called, so a size that breaks a
 * rule never reaches malloc (some mallocs, and ASan's, abort on absurd sizes
 * instead of returning NULL).
 *
 * Caveat for the LD_PRELOAD library to come: there, malloc is ours, so the
 * raw layer must reach the next malloc in the link chain (or the pools)
 * rather than recurse into itself; that choice belongs to the shim.
 */
#include <stdlib.h>

#include "hl_raw.h"

void *hl_raw_malloc(size_t size) {
  if (size > (size_t)PTRDIFF_MAX) return NULL;
  return malloc(size != 0 ? size : 1);
}

void *hl_raw_calloc(size_t nelem, size_t elsize) {
  if (nelem == 0 || elsize == 0) return calloc(1, 1);
  if (nelem > (size_t)PTRDIFF_MAX / elsize) return NULL;
  return calloc(nelem, elsize);
}

void *hl_raw_realloc(void *p, size_t size) {
  if (size > (size_t)PTRDIFF_MAX) return NULL;
  return realloc(p, size != 0 ? size : 1);
}

void hl_raw_free(void *p) {
  free(p);
}
