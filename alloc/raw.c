/* The raw allocator (layer +1): the C library's malloc family with CPython's
 * PyMem_Raw* guarantees on top. The semantics, and why each one is there,
 * are at the top of hl_raw.h; this file only enforces them.
 *
 * Every check runs before the C library is called, so a size that breaks a
 * rule never reaches malloc (some mallocs, and ASan's, abort on absurd sizes
 * instead of returning NULL).
 *
 * In the LD_PRELOAD library (alloc/preload.c, compiled with HL_PRELOAD) malloc
 * is ours, so this layer calls glibc's allocator under the names glibc
 * exports for that purpose (__libc_malloc...), never `malloc`, which would
 * recurse into the shim.
 */
#include <stdlib.h>

#include "alloc_internal.h"
#include "hl_raw.h"

#ifdef HL_PRELOAD
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t nelem, size_t elsize);
void *__libc_realloc(void *p, size_t size);
void __libc_free(void *p);
#define malloc __libc_malloc
#define calloc __libc_calloc
#define realloc __libc_realloc
#define free __libc_free
#endif

/* With alloc-debug=on every entry point below hands the request to debug.c,
 * which wraps a block from hli_raw_malloc in its header and guards; the test
 * of the flag is the one branch the hooks cost when they are off. */

static inline void *raw_malloc(size_t size) {
  if (size > (size_t)PTRDIFF_MAX) return NULL;
  return malloc(size != 0 ? size : 1);
}

static inline void *raw_calloc(size_t nelem, size_t elsize) {
  if (nelem == 0 || elsize == 0) return calloc(1, 1);
  if (nelem > (size_t)PTRDIFF_MAX / elsize) return NULL;
  return calloc(nelem, elsize);
}

static inline void *raw_realloc(void *p, size_t size) {
  if (size > (size_t)PTRDIFF_MAX) return NULL;
  return realloc(p, size != 0 ? size : 1);
}

void *hli_raw_malloc(size_t size) { return raw_malloc(size); }
void *hli_raw_calloc(size_t nelem, size_t elsize) { return raw_calloc(nelem, elsize); }
void *hli_raw_realloc(void *p, size_t size) { return raw_realloc(p, size); }
void hli_raw_free(void *p) { free(p); }

void *hl_raw_malloc(size_t size) {
  if (HL_UNLIKELY(hli_alloc_debug)) return hli_debug_malloc(HLI_FAMILY_RAW, size);
  return raw_malloc(size);
}

void *hl_raw_calloc(size_t nelem, size_t elsize) {
  if (HL_UNLIKELY(hli_alloc_debug)) return hli_debug_calloc(HLI_FAMILY_RAW, nelem, elsize);
  return raw_calloc(nelem, elsize);
}

void *hl_raw_realloc(void *p, size_t size) {
  if (HL_UNLIKELY(hli_alloc_debug)) return hli_debug_realloc(HLI_FAMILY_RAW, p, size);
  return raw_realloc(p, size);
}

void hl_raw_free(void *p) {
  if (HL_UNLIKELY(hli_alloc_debug)) {
    hli_debug_free(HLI_FAMILY_RAW, p);
    return;
  }
  free(p);
}
