/* Which pool covers this address, and of which size class? A two-level
 * radix map over 16 KiB grains of the address space, so that free() can tell
 * our blocks from foreign ones, and find what it needs to free one, with two
 * dependent loads at constant shifts and without reading the memory in front
 * of the block.
 *
 * The idea is CPython's (Objects/obmalloc.c since 3.10, "arena_map", which
 * replaced the older address_in_range() that read the pool header of any
 * pointer, ours or not). Ours differs in two ways:
 *   - The key is the grain (address >> 14), not the arena: every shift is a
 *     constant, so the lookup is two loads and no load of a geometry
 *     (tcmalloc's PageMap and mimalloc's segment map are keyed the same way,
 *     by a fixed unit, with a larger object spanning several entries). An
 *     arena spans arena_size / 16 KiB entries, a `modern` pool exactly one.
 *     The grain is the `modern` pool: a 4 KiB grain would fit `classic`
 *     pools too, but costs 8 bytes per 4 KiB of heap, 4 times the leaf
 *     memory and 4 times the leaf's cache lines under a scattered free()
 *     (what it cost CPython under the preload library: docs/measurements.md,
 *     "CPython's memory under the library"). Smaller pools share a grain,
 *     whose entry then says how to find them (alloc_internal.h, HLI_TAG_SPLIT).
 *   - An entry is a word chosen by the caller, not only "whose arena": pool.c
 *     stores the pool's address tagged with its size class (alloc_internal.h,
 *     hli_tag_*), which is what every free path needs; a magazine free never
 *     touches the pool header at all.
 *
 * Keys. A user address on x86-64 and arm64 (4-level page tables) has 48
 * significant bits; anything at or above 2^48 is kernel space or
 * non-canonical and is never ours.
 *
 *     47              28 27              14 13          0
 *     |------ top -------|------ leaf ------|-- in grain --|
 *          20 bits            14 bits          14 bits
 *
 * The top level is a static array of 2^20 leaf pointers (8 MiB of bss, of
 * which only the pages actually written become resident: a heap that lives
 * in one 1 GiB region writes 32 bytes of it). Its index is addr >> 28, and
 * one comparison (index < 2^20) both bounds the array and rejects every
 * address at or above 2^48 (kernel pointers, ~0). A leaf has 2^14 entries
 * (128 KiB mapped, resident as touched) and covers 256 MiB; each 1 MiB
 * arena writes 512 bytes of it, 1/2048 of the heap.
 *
 * Concurrency. Writers (hl_radix_set/clear) hold the caller's lock (for a
 * range, the lock of the instance that owns it); readers hold nothing, since
 * free() calls hl_radix_get on every pointer.
 *   - A leaf is mapped (zeroed by the kernel) and then published into its
 *     top slot by a CAS (a full barrier, so at least a release); the
 *     reader's acquire load of that slot pairs with it. The CAS rather than
 *     a plain store lets two allocator instances with different locks grow
 *     the map at once: the loser unmaps its leaf and uses the winner's.
 *   - An entry is stored with release after the caller has initialised what
 *     it names; the reader's acquire load of the entry pairs with it.
 *   - Leaves are never freed, not even when their last range is cleared. A
 *     reader may have loaded a leaf pointer and be about to index it while
 *     a writer empties that leaf; were the leaf unmapped, the reader would
 *     fault, and were it reused, it would read a stranger's memory. Freeing
 *     safely would need a grace period (QSBR) on the free() fast path. Never
 *     freeing costs one leaf (128 KiB virtual, the touched pages resident)
 *     per 256 MiB region that ever held an arena.
 *
 * Address 0's grain is refused (hl_radix_set returns -EINVAL), so that
 * hl_radix_get(NULL) and every small integer mistaken for a pointer return
 * 0 without a test on the fast path; mmap never hands out page 0.
 */
#include <errno.h>

#include "alloc_internal.h"
#include "hl_atomic.h"

#define GRAIN_SHIFT HLI_RADIX_GRAIN_SHIFT
#define GRAIN ((uintptr_t)1 << GRAIN_SHIFT)
#define TOP_SHIFT HLI_RADIX_TOP_SHIFT
#define TOP_LEN HLI_RADIX_TOP_LEN
#define LEAF_LEN HLI_RADIX_LEAF_LEN
#define LEAF_BYTES (LEAF_LEN * sizeof(void *))
#define LEAF_SPAN (GRAIN * LEAF_LEN)     /* bytes of address space one leaf covers */
#define ADDR_LIMIT ((uintptr_t)1 << HLI_RADIX_ADDR_BITS)

/* top[i] is a leaf; a leaf's entries are the callers' words, read and
 * written atomically as pointers. */
#define top hli_radix_top
void **hli_radix_top[TOP_LEN] HL_CACHE_ALIGNED;

static uint64_t leaf_bytes;         /* what hl_radix_bytes reports */

/* The leaf in *slot, mapped and published first if the slot is empty; NULL
 * when the kernel refuses the memory. */
static void **leaf_or_create(void ***slot) {
  /* Acquire: pairs with the CAS below, done by another writer. */
  void **leaf = hl_atomic_load_acquire_ptr((void **)slot);
  if (leaf != NULL) return leaf;
  void **fresh = hl_os_map_aligned(LEAF_BYTES, hl_os_page_size());
  if (fresh == NULL) return NULL;
  /* Full barrier, so release: pairs with the readers' acquire loads of the
   * slot; the leaf's zeroes come from the kernel and need no ordering, but
   * the reader must not see the pointer before the mapping exists. */
  if (hl_atomic_cas_ptr((void **)slot, NULL, fresh)) {
    (void)hl_atomic_faa_u64(&leaf_bytes, LEAF_BYTES);
    return fresh;
  }
  hl_os_unmap(fresh, LEAF_BYTES);
  return hl_atomic_load_acquire_ptr((void **)slot);
}

static bool range_ok(uintptr_t base, size_t len) {
  return base != 0 && len != 0 && (base | len) % GRAIN == 0 && base < ADDR_LIMIT &&
         len <= ADDR_LIMIT - base;
}

int hl_radix_set(uintptr_t base, size_t len, uintptr_t value) {
  if (!range_ok(base, len) || value == 0) return -EINVAL;
  uintptr_t end = base + len;
  /* Every leaf first, so that a refusal leaves every entry as it was (the
   * leaves mapped so far stay: valid, merely empty). */
  for (uintptr_t a = base; a < end; a = (a | (LEAF_SPAN - 1)) + 1)
    if (leaf_or_create(&top[a >> TOP_SHIFT]) == NULL) return -ENOMEM;
  for (uintptr_t a = base; a < end; a += GRAIN) {
    void **leaf = hl_atomic_load_acquire_ptr((void **)&top[a >> TOP_SHIFT]);
    /* Release: pairs with hl_radix_get's acquire of the entry, so a reader
     * that finds the word sees what the caller wrote before naming it. */
    hl_atomic_store_release_ptr(&leaf[(a >> GRAIN_SHIFT) & (LEAF_LEN - 1)], (void *)value);
  }
  return 0;
}

void hl_radix_clear(uintptr_t base, size_t len) {
  if (!range_ok(base, len)) return;
  for (uintptr_t a = base, end = base + len; a < end; a += GRAIN) {
    void **leaf = hl_atomic_load_acquire_ptr((void **)&top[a >> TOP_SHIFT]);
    if (leaf == NULL) {   /* nothing was ever set here: skip to the next leaf */
      a = (a | (LEAF_SPAN - 1)) - (GRAIN - 1);
      continue;
    }
    /* Relaxed: a reader that sees 0 dereferences nothing, so nothing needs
     * ordering before it. (No block of a cleared range may still be freed:
     * the caller clears an arena only once it holds no live block.) */
    hl_atomic_store_relaxed_ptr(&leaf[(a >> GRAIN_SHIFT) & (LEAF_LEN - 1)], NULL);
  }
}

/* hl_radix_get is inline, in alloc_internal.h: it is on free()'s fast path. */

size_t hl_radix_bytes(void) {
  /* Mapped leaves only: the top array is static. */
  return (size_t)hl_atomic_load_relaxed_u64(&leaf_bytes);
}
