/* Which arena covers this address? A three-level radix tree over arena
 * numbers, so that free() can tell our blocks from foreign ones without
 * reading the memory in front of the block.
 *
 * The idea is CPython's (Objects/obmalloc.c since 3.10, "arena_map", which
 * replaced the older address_in_range() that read the pool header of any
 * pointer, ours or not). Ours is simpler in one way: os.c aligns every arena
 * to its size, so an arena is exactly one key and a leaf entry can hold the
 * arena pointer itself; CPython's arenas are unaligned, so each of its keys
 * records where an arena starts or ends inside it.
 *
 * Keys. A user address on x86-64 and arm64 (4-level page tables) has 48
 * significant bits; anything at or above 2^48 is kernel space or
 * non-canonical and is never ours. With arenas of 2^shift bytes the key is
 * addr >> shift, 48 - shift bits, split into three indices:
 *
 *     47        38 37                        shift  shift-1     0
 *     |--- top ---|---- mid ----|---- leaf ----|-- inside arena --|
 *        10 bits    M bits         L bits         shift bits
 *
 *     R = 48 - 10 - shift,  L = ceil(R / 2),  M = R - L
 *
 *     shift  arena     M    L   mid/leaf node     one leaf covers
 *      20    1 MiB     9    9   512 slots, 4 KiB  512 MiB
 *      18    256 KiB  10   10   1 Ki slots, 8 KiB 256 MiB
 *      16    64 KiB   11   11   2 Ki slots, 16 KiB 128 MiB
 *      30    1 GiB     4    4   16 slots (a page)  16 GiB
 *
 * The top level is fixed at 10 bits for the reader's sake: its index is a
 * constant shift (addr >> 38), and one comparison (index < 1024) both bounds
 * the array and rejects every address at or above 2^48 (kernel pointers,
 * ~0). It is a static array of 1024 pointers (8 KiB of
 * bss, of which only the pages actually written become resident). The other
 * 38 - shift bits are split evenly so that mid and leaf nodes have the same
 * size; the leaf takes the odd bit because a process has more leaves than
 * mid nodes. With shift 20, a heap that lives in one 512 MiB region costs
 * one mid node and one leaf: 8 KiB.
 *
 * Concurrency. Writers (hl_radix_set/clear) hold the caller's lock; readers
 * hold nothing, since free() calls hl_radix_get on every pointer.
 *   - A node is mapped (zeroed by the kernel) and then published into its
 *     parent's slot by a CAS (a full barrier, so at least a release); the
 *     reader's acquire load of that slot pairs with it. The CAS rather than
 *     a plain store lets two allocator instances with different locks grow
 *     the tree at once: the loser unmaps its node and uses the winner's.
 *   - A leaf entry is stored with release after the caller has initialised
 *     the arena object; the reader's acquire load of the entry pairs with
 *     it, so a reader that finds an arena sees its fields.
 *   - Interior loads could be consume (an address dependency orders them on
 *     every CPU we target), but compilers implement consume as acquire; on
 *     x86-64 acquire loads are plain loads, on arm64 one LDAR each.
 *   - Nodes are never freed, not even when their last arena is cleared. A
 *     reader may have loaded a node pointer and be about to index it while
 *     a writer empties that node; were the node unmapped, the reader would
 *     fault, and were it reused, it would read a stranger's memory. Freeing
 *     safely would need a grace period (QSBR) on the free() fast path. Never
 *     freeing costs one mid node per 256 GiB region and one leaf per
 *     2^(shift + L)-byte region that ever held an arena: a few KiB in
 *     practice, and bounded by the address space the heap has ever used.
 *   - The geometry (shift, masks) is written once by the first
 *     hl_radix_init and published by a release store of ready_shift; a
 *     writer acquires it before it builds anything, and a reader reaches the
 *     geometry only through a node that such a writer published, so plain
 *     loads of it are ordered by that chain.
 *
 * Address 0's arena is refused (hl_radix_set returns -EINVAL), so that
 * hl_radix_get(NULL) and every small integer mistaken for a pointer return
 * NULL without a test on the fast path; mmap never hands out page 0.
 */
#include <errno.h>

#include "alloc_internal.h"
#include "hl_atomic.h"

#define ADDR_BITS HLI_RADIX_ADDR_BITS
#define TOP_BITS HLI_RADIX_TOP_BITS
#define TOP_SHIFT (ADDR_BITS - TOP_BITS)
#define TOP_LEN ((uintptr_t)1 << TOP_BITS)
#define SHIFT_MIN 16
#define SHIFT_MAX 30

/* top[i] is a mid node, a mid node's slots are leaves, a leaf's slots are
 * arenas; every node is an array of void * read and written atomically. */
#define top hli_radix_top
#define geo hli_radix_geo
void *hli_radix_top[TOP_LEN] HL_CACHE_ALIGNED;

/* Written once, before ready_shift is published; read-only afterwards. Kept
 * on its own cache line so that the readers' copy is never invalidated. */
hli_radix_geo_t hli_radix_geo HL_CACHE_ALIGNED;

static uint32_t claimed_shift;      /* 0 until an hl_radix_init wins the CAS */
static uint32_t ready_shift;        /* 0 until geo is written */
static uint64_t node_bytes;         /* what hl_radix_bytes reports */

int hl_radix_init(unsigned shift) {
  if (shift < SHIFT_MIN || shift > SHIFT_MAX) return -EINVAL;
  if (hl_atomic_cas_u32(&claimed_shift, 0, shift)) {
    unsigned rest = ADDR_BITS - TOP_BITS - shift;
    unsigned leaf_bits = (rest + 1) / 2;
    unsigned mid_bits = rest - leaf_bits;
    size_t page = hl_os_page_size();
    size_t mid_bytes = sizeof(void *) << mid_bits;
    size_t leaf_bytes = sizeof(void *) << leaf_bits;
    geo.shift = shift;
    geo.mid_shift = shift + leaf_bits;
    geo.mid_mask = ((uintptr_t)1 << mid_bits) - 1;
    geo.leaf_mask = ((uintptr_t)1 << leaf_bits) - 1;
    geo.mid_bytes = (mid_bytes + page - 1) & ~(page - 1);
    geo.leaf_bytes = (leaf_bytes + page - 1) & ~(page - 1);
    /* Release: pairs with the acquire in hl_radix_set/clear and in a losing
     * hl_radix_init, which then read geo. */
    hl_atomic_store_release_u32(&ready_shift, shift);
    return 0;
  }
  /* Relaxed: only the value matters here, and it never changes once set. */
  if (hl_atomic_load_relaxed_u32(&claimed_shift) != shift) return -EINVAL;
  /* The winner may still be writing geo; our caller will use it next. */
  while (hl_atomic_load_acquire_u32(&ready_shift) == 0) hl_cpu_relax();
  return 0;
}

/* The node in *slot, mapped and published first if the slot is empty; NULL
 * when the kernel refuses the memory. */
static void **child_or_create(void **slot, size_t bytes) {
  /* Acquire: pairs with the CAS below, done by another writer. */
  void **node = hl_atomic_load_acquire_ptr(slot);
  if (node != NULL) return node;
  void **fresh = hl_os_map_aligned(bytes, hl_os_page_size());
  if (fresh == NULL) return NULL;
  /* Full barrier, so release: pairs with the readers' acquire loads of the
   * slot; the node's zeroes come from the kernel and need no ordering, but
   * the reader must not see the pointer before the mapping exists. */
  if (hl_atomic_cas_ptr(slot, NULL, fresh)) {
    (void)hl_atomic_faa_u64(&node_bytes, bytes);
    return fresh;
  }
  hl_os_unmap(fresh, bytes);
  return hl_atomic_load_acquire_ptr(slot);
}

int hl_radix_set(uintptr_t arena_base, void *arena) {
  /* Acquire: pairs with the release in hl_radix_init; geo is readable. */
  uint32_t shift = hl_atomic_load_acquire_u32(&ready_shift);
  if (HL_UNLIKELY(shift == 0)) return -EINVAL;
  uintptr_t offset_mask = ((uintptr_t)1 << shift) - 1;
  if (arena_base == 0 || (arena_base >> ADDR_BITS) != 0 || (arena_base & offset_mask) != 0)
    return -EINVAL;

  void **mid = child_or_create(&top[arena_base >> TOP_SHIFT], geo.mid_bytes);
  if (mid == NULL) return -ENOMEM;
  void **leaf = child_or_create(&mid[(arena_base >> geo.mid_shift) & geo.mid_mask],
                                geo.leaf_bytes);
  /* A mid node created just above stays: it is valid, merely empty. */
  if (leaf == NULL) return -ENOMEM;
  /* Release: pairs with hl_radix_get's acquire of the entry, so a reader
   * that finds the arena sees what the caller wrote into it before. */
  hl_atomic_store_release_ptr(&leaf[(arena_base >> shift) & geo.leaf_mask], arena);
  return 0;
}

void hl_radix_clear(uintptr_t arena_base) {
  /* Acquire: as in hl_radix_set. */
  uint32_t shift = hl_atomic_load_acquire_u32(&ready_shift);
  if (shift == 0 || (arena_base >> ADDR_BITS) != 0) return;
  HL_ASSERT((arena_base & (((uintptr_t)1 << shift) - 1)) == 0);
  void **mid = hl_atomic_load_acquire_ptr(&top[arena_base >> TOP_SHIFT]);
  if (mid == NULL) return;
  void **leaf = hl_atomic_load_acquire_ptr(&mid[(arena_base >> geo.mid_shift) & geo.mid_mask]);
  if (leaf == NULL) return;
  /* Relaxed: a reader that sees NULL dereferences nothing, so nothing needs
   * ordering before it. (No block of a cleared arena may still be freed:
   * the caller clears an arena only once it holds no live block.) */
  hl_atomic_store_relaxed_ptr(&leaf[(arena_base >> shift) & geo.leaf_mask], NULL);
}

/* hl_radix_get is inline, in alloc_internal.h: it is on free()'s fast path. */

size_t hl_radix_bytes(void) {
  /* Mapped nodes only: the 8 KiB top array is static. */
  return (size_t)hl_atomic_load_relaxed_u64(&node_bytes);
}
