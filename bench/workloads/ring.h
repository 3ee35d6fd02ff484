/* Rings of lists that carry a value between threads (--pass-cycles): what
 * shared and prodcons pass is then cyclic, so the thread that drops it
 * leaves garbage another thread made, which only the collector frees
 * (issue 22: the free-threaded collectors' cross-thread cycles).
 *
 * A ring of n lists (n = --cycle-size, at least 2), each holding the next,
 * the first (the ring's handle) also the value: [value, next]. Dropped, it
 * leaves n containers in cyclic garbage, plus the objects only the value
 * holds. */
#ifndef HL_BENCH_RING_H
#define HL_BENCH_RING_H

#include <stdint.h>

#include "hl_gc.h"

/* A new ring carrying value (borrowed): list 0, a new reference; NULL with
 * the error set. */
hl_object_t *hl_ring_wrap(hl_object_t *value, uint64_t n);
/* The value ring carries: a new reference, or NULL with the error set. */
hl_object_t *hl_ring_value(hl_object_t *ring);
/* Breaks the ring at list 0 (a teardown that leaks nothing): once the
 * caller drops its reference, counting frees it all. */
void hl_ring_break(hl_object_t *ring);

#endif
