/* heaplab alloc/: peer allocators, loaded at run time (peers.c).
 *
 * Internal to the allocator layer: hl_alloc_init and hl_alloc_check_config
 * call these; nothing above alloc/ needs them.
 */
#ifndef HL_ALLOC_PEERS_H
#define HL_ALLOC_PEERS_H

#include <stdbool.h>
#include <stddef.h>

#include "hl_alloc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Loads the peer `kind` (HL_ALLOC_OBMALLOC, _MIMALLOC, _JEMALLOC, _TCMALLOC)
 * from its Debian library and fills *out with its own malloc, free and
 * realloc, without replacing this process's malloc. Loading twice is harmless
 * (the library is mapped once and never unloaded). Returns 0, or -1 with a
 * message naming the library, why it failed and the Debian package to
 * install; -1 also for a kind that is not a peer.
 *
 * The entry points are the peer's own, unwrapped: for obmalloc they need the
 * caller to serialise them (see hli_peer_serialize). */
HL_INTERNAL int hli_peer_load(hl_alloc_kind_t kind, hl_alloc_peer_t *out, char *err,
                              size_t errlen);

/* Whether the peer's entry points may be called from several threads at
 * once. False for obmalloc: CPython's pymalloc relies on the GIL. */
HL_INTERNAL bool hli_peer_thread_safe(hl_alloc_kind_t kind);

/* Replaces p's entry points (as filled by hli_peer_load) by wrappers that
 * hold one process-wide lock around each call: the GIL, reduced to what the
 * allocator needs. Call it, before any thread allocates, when more than one
 * thread will use a peer that is not thread-safe. */
HL_INTERNAL void hli_peer_serialize(hl_alloc_peer_t *p);

/* The peer's call that hands cached memory back, if it has one. */
HL_INTERNAL void hli_peer_collect(hl_alloc_kind_t kind, const hl_alloc_peer_t *p);

#ifdef __cplusplus
}
#endif
#endif /* HL_ALLOC_PEERS_H */
