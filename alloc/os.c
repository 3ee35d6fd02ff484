/* Layer 0 of docs/design.md: address space from the kernel, and back.
 *
 * Every byte the object allocator manages (arenas) and every node of the
 * radix tree comes from here, so this file is where "out of memory" is
 * decided: a refused mmap becomes NULL, a refused madvise becomes -errno, and
 * the caller reports it. Nothing here aborts, and nothing here calls malloc:
 * the allocator will later run as the process's malloc (LD_PRELOAD), where a
 * malloc from inside it would recurse.
 *
 * Aligned mappings. Arenas must be aligned to their size so that
 * addr >> arena_shift names the arena (radix.c) and addr & ~(arena_size - 1)
 * finds its start. mmap only promises page alignment, so we ask for
 * size + align - page bytes, which always contain an aligned run of size
 * bytes, and give the unaligned head and tail back with munmap:
 *
 *   raw                aligned                 aligned + size      raw + len
 *   |---- head ------->|========= size =========|------ tail -------|
 *
 * head + tail == align - page, so the cost is address space for an instant
 * and two extra system calls per mapping, never memory: MAP_NORESERVE and
 * the kernel's lazy faulting mean no page of the head or tail was ever
 * touched. (mimalloc's os.c also over-allocates and trims when a plain
 * mapping comes back unaligned. CPython's obmalloc takes whatever mmap
 * returns: it gives up one pool when the arena is not pool-aligned, and its
 * radix tree records where each arena starts and ends inside a key, because
 * an unaligned arena straddles two.)
 *
 * Sizes are rounded up to whole pages here, as the kernel does, so that the
 * mapped-bytes counter matches what the kernel holds when a caller unmaps
 * with the size it mapped.
 *
 * NUMA. Where the machine has more than one node, an arena is bound, with
 * MPOL_PREFERRED, to the node of the CPU the mapping thread runs on, so that
 * with tcache=heap a thread's arenas sit on its own node even when another
 * thread happens to touch a page first (the kernel's default is first
 * touch). Raw system calls (mbind, getcpu), not libnuma: the LD_PRELOAD
 * library links nothing it does not need. One node: nothing is done.
 *
 * Failure injection for tests: every map call is a failpoint of kind
 * HL_FAIL_MMAP (sync/hl_failpoint.h); hl_os_fail_nth_map(n) arms it so that
 * the nth call from now fails with ENOMEM before reaching the kernel (when
 * threads map at once exactly one of them gets the nth count), 0 disarms.
 */
#define _GNU_SOURCE   /* mremap */
#include <fcntl.h>
#include <errno.h>
#include <linux/mempolicy.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc_internal.h"
#include "hl_atomic.h"
#include "hl_failpoint.h"
#include "hl_measure.h"

/* 0 until the first hl_os_page_size(). */
static uint64_t page_size_cache;
static uint64_t maps_made;
static uint64_t bytes_mapped;

size_t hl_os_page_size(void) {
  /* Relaxed: the value is self-contained (no other data is published with
   * it) and every thread that races here computes and stores the same one. */
  uint64_t p = hl_atomic_load_relaxed_u64(&page_size_cache);
  if (HL_UNLIKELY(p == 0)) {
    long v = sysconf(_SC_PAGESIZE);
    /* glibc answers this from the auxiliary vector; it cannot fail. */
    if (v <= 0 || (v & (v - 1)) != 0) hl_die("sysconf(_SC_PAGESIZE) returned %ld", v);
    p = (uint64_t)v;
    hl_atomic_store_relaxed_u64(&page_size_cache, p);
  }
  return (size_t)p;
}

void hl_os_fail_nth_map(unsigned n) {
  if (n) hl_fail_at(HL_FAIL_MMAP, n);
  else hl_fail_disarm(HL_FAIL_MMAP);
}

static inline size_t round_up(size_t n, size_t to) { return (n + to - 1) & ~(to - 1); }

void *hl_os_map_aligned(size_t size, size_t align) {
  size_t page = hl_os_page_size();
  if (align < page) align = page;
  if (HL_UNLIKELY(size == 0 || (align & (align - 1)) != 0)) {
    errno = EINVAL;
    return NULL;
  }
  /* Both the page rounding and the over-allocation must fit in size_t. */
  if (HL_UNLIKELY(size > SIZE_MAX - align)) {
    errno = ENOMEM;
    return NULL;
  }
  if (HL_UNLIKELY(hl_fail_hit(HL_FAIL_MMAP))) {
    errno = ENOMEM;
    return NULL;
  }
  size = round_up(size, page);
  size_t len = size + (align - page);
  void *raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return NULL;   /* errno from the kernel */

  uintptr_t start = (uintptr_t)raw;
  uintptr_t aligned = (start + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = aligned - start;
  size_t tail = len - head - size;
  /* Trimming the ends of one mapping never splits it, so these cannot fail
   * for lack of map slots (vm.max_map_count); were one to fail anyway, the
   * only loss would be untouched address space. */
  if (head != 0) (void)munmap(raw, head);
  if (tail != 0) (void)munmap((void *)(aligned + size), tail);

  hl_atomic_inc_u64(&maps_made);
  (void)hl_atomic_faa_u64(&bytes_mapped, size);
  return (void *)aligned;
}

void hl_os_unmap(void *p, size_t size) {
  if (p == NULL || size == 0) return;
  size = round_up(size, hl_os_page_size());
  /* A refused munmap (a bad pointer: a caller's bug) leaves the range
   * mapped, so the counter keeps counting it. */
  if (munmap(p, size) == 0) (void)hl_atomic_faa_u64(&bytes_mapped, (uint64_t)0 - size);
}

void *hl_os_remap(void *p, size_t old_size, size_t new_size, void *fixed) {
  size_t page = hl_os_page_size();
  old_size = round_up(old_size, page);
  new_size = round_up(new_size, page);
  void *q = fixed ? mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, fixed)
                  : mremap(p, old_size, new_size, 0);
  if (q == MAP_FAILED) return NULL;   /* errno from the kernel; p as it was */
  /* fixed: the pages replace a mapping of new_size bytes counted already,
   * and the old range is gone; else the range changed size in place */
  uint64_t delta = fixed ? (uint64_t)0 - old_size : (uint64_t)new_size - old_size;
  (void)hl_atomic_faa_u64(&bytes_mapped, delta);
  return q;
}

/* Transparent huge pages (--arena-huge=on). The PMD-sized page the kernel
 * can back an aligned, advised range with, read once from sysfs (base/
 * rusage.c's reader allocates nothing: see the top); 0 without THP. */
static uint64_t huge_page_cache;   /* 0: not read yet; 1: none */

size_t hl_os_huge_page_size(void) {
  uint64_t v = hl_atomic_load_relaxed_u64(&huge_page_cache);
  if (v == 0) {
    uint64_t n = hl_file_u64("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size");
    v = n >= hl_os_page_size() && (n & (n - 1)) == 0 ? n : 1;
    hl_atomic_store_relaxed_u64(&huge_page_cache, v);
  }
  return v == 1 ? 0 : (size_t)v;
}

int hl_os_advise_huge(void *p, size_t size) {
  if (madvise(p, size, MADV_HUGEPAGE) != 0) return -errno;
  return 0;
}

int hl_os_discard(void *p, size_t size) {
  /* MADV_DONTNEED, not MADV_FREE: the contract (alloc_internal.h) is that a
   * discarded range reads as zero on its next touch, and after MADV_FREE the
   * kernel may hand the old contents back if it has not reclaimed them yet. */
  if (madvise(p, size, MADV_DONTNEED) != 0) return -errno;
  return 0;
}

/* Nodes from sysfs, counted once (0 until then). No malloc: opendir
 * allocates through malloc, so count with getdents64 on a raw descriptor. */
static uint32_t numa_nodes_cache;

struct hl_linux_dirent64 {        /* what getdents64 writes (man 2 getdents) */
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

unsigned hl_os_numa_nodes(void) {
  uint32_t n = hl_atomic_load_relaxed_u32(&numa_nodes_cache);
  if (n) return n;
  n = 0;
  int fd = (int)syscall(SYS_open, "/sys/devices/system/node", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    uint64_t words[512];   /* aligned for the records */
    char *buf = (char *)words;
    long len;
    while ((len = syscall(SYS_getdents64, fd, buf, sizeof words)) > 0) {
      for (long off = 0; off < len;) {
        struct hl_linux_dirent64 *d = (struct hl_linux_dirent64 *)(buf + off);
        if (strncmp(d->d_name, "node", 4) == 0 && d->d_name[4] >= '0' && d->d_name[4] <= '9') n++;
        off += d->d_reclen;
      }
    }
    close(fd);
  }
  if (n == 0) n = 1;
  hl_atomic_store_relaxed_u32(&numa_nodes_cache, n);
  return n;
}

int hl_os_bind_node(void *p, size_t size, unsigned node) {
  if (node >= 64) return -EINVAL;
  unsigned long mask = 1ul << node;
  if (syscall(SYS_mbind, p, round_up(size, hl_os_page_size()), MPOL_PREFERRED, &mask,
              (unsigned long)64, 0u) != 0)
    return -errno;
  return 0;
}

int hl_os_bind_local(void *p, size_t size) {
  if (hl_os_numa_nodes() < 2) return 0;
  unsigned cpu, node;
  if (syscall(SYS_getcpu, &cpu, &node, NULL) != 0) return -errno;
  return hl_os_bind_node(p, size, node);
}

uint64_t hl_os_maps(void) { return hl_atomic_load_relaxed_u64(&maps_made); }
uint64_t hl_os_mapped_bytes(void) { return hl_atomic_load_relaxed_u64(&bytes_mapped); }
