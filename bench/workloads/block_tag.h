/* The tag the allocator workloads (alloc_lifo.c, alloc_random.c,
 * alloc_frag.c) write into every block: it catches an allocator handing out
 * the same memory twice or letting one block overrun another.
 *
 * A block of `size` bytes allocated for identity `id` (a slot, an index)
 * carries the first min(size, 8) bytes of tag_of(id, size), and, when it is
 * longer than 8 bytes, its size in its last byte:
 *
 *   size >= 9    [ tag: 8 bytes | ... | size & 0xff ]
 *   size 1..8    [ tag, cut to the block ]
 *
 * The tag is a hash of (id, size), not the raw pair, so that even the one
 * byte a 1-byte block can hold depends on both: two live blocks of the same
 * size given the same memory disagree in their first byte 255 times in 256.
 * The check reads only bytes inside the block, so a 1..7-byte block is never
 * read past its end (AddressSanitizer would say so).
 */
#ifndef HL_BLOCK_TAG_H
#define HL_BLOCK_TAG_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "hl_base.h"

/* splitmix64's finaliser (hl_base.h) as a hash: every input bit reaches
 * every byte of the result, the low byte included. */
static inline uint64_t block_tag_of(uint64_t id, uint32_t size) {
  uint64_t x = id * 0x9e3779b97f4a7c15ull ^ size;   /* distinct (id, size) pairs stay distinct */
  return hl_splitmix64(&x);
}

static inline void block_tag_write(unsigned char *p, uint64_t id, uint32_t size) {
  uint64_t tag = block_tag_of(id, size);
  if (HL_LIKELY(size >= sizeof tag)) {
    memcpy(p, &tag, sizeof tag);
    if (size > sizeof tag) p[size - 1] = (unsigned char)size;
  } else {
    memcpy(p, &tag, size);
  }
}

/* False when the block does not hold what block_tag_write(p, id, size) put
 * there. */
static inline bool block_tag_check(const unsigned char *p, uint64_t id, uint32_t size) {
  uint64_t tag = block_tag_of(id, size);
  if (HL_LIKELY(size >= sizeof tag))
    return memcmp(p, &tag, sizeof tag) == 0 &&
           (size == sizeof tag || p[size - 1] == (unsigned char)size);
  return memcmp(p, &tag, size) == 0;
}

#endif /* HL_BLOCK_TAG_H */
