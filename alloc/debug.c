/* alloc-debug=on: debug hooks in front of both API families, the checks of
 * CPython's PYTHONMALLOC=debug.
 *
 * Sources: CPython's Objects/obmalloc.c (the debug allocators
 * _PyMem_DebugRawAlloc/Free/Realloc, _PyMem_DebugCheckAddress,
 * _PyObject_DebugDumpAddress) and the C API manual, "Memory Management",
 * section "Debug hooks on the Python memory allocators". The fill values are
 * CPython's, which took them from the Windows CRT's debug heap. The layout,
 * the double-free mark, the check for pointers that are not ours and the
 * report are heaplab's own.
 *
 * The two families are the raw one (hl_raw_*) and the object one (hl_pool_*,
 * which hl_alloc_* calls with alloc=pool). raw.c and alloc.c test
 * hli_alloc_debug on entry and come here when it is set; the memory under a
 * debug block comes from the same paths without that test (hli_raw_malloc,
 * hli_pool_malloc_plain). An object block grows by the overhead below and
 * may cross the threshold into the raw layer: that changes where it lives,
 * not what is checked.
 *
 * A block, with p the pointer the caller gets and H = max(64, alignment), so
 * that p keeps the geometry's alignment (16 in `modern`) whenever the block
 * underneath has it (pool blocks do; malloc gives 16):
 *
 *   base                              p-32   p-24    p-16  p-12  p-11        p              p+n
 *   | link slot: H-32 bytes, FD     | size | serial | magic | fam | FD x 11 | n data bytes | FD x 8 |
 *                                       8      8       4      1   leading                   trailing
 *                                                                 guard                     guard
 *
 *   size    the n asked for
 *   serial  1, 2, 3... per allocation since the hooks were turned on (realloc
 *           takes a new one). A one-thread run is deterministic for a given
 *           --seed, so the serial N of a bad block names the allocation to
 *           stop at in the next run: in gdb, break take_serial if
 *           serials == N-1.
 *   magic   HEADER_MAGIC ^ a hash of p: only a header written for this very
 *           address matches, so a pointer into the middle of a block, or a
 *           copy of a header elsewhere, does not pass for a block.
 *   family  'r' or 'o' (hli_family_t), with FREED_MARK or'ed in once freed:
 *           the block stays recognisable, and its family reportable, after
 *           its free.
 *   link slot  nothing of ours: once the block is freed the allocator below
 *           writes its links at the start of it (pool.c one word; glibc up to
 *           four, in its large bins), and the fields that a second free reads
 *           must not be there.
 *
 * Fill bytes (CPython's values):
 *   CLEAN      0xCD  new data: malloc, and the part a realloc adds
 *   DEAD       0xDD  the data and trailing guard of a freed block
 *   FORBIDDEN  0xFD  the guards and the link slot
 * None is zero, a small integer or ASCII, and eight of any of them are a
 * non-canonical address on x86-64 and arm64: a pointer read from new or
 * freed memory faults where it is used, instead of working by luck.
 *
 * On free and realloc the block is checked in this order; the first failure
 * is reported on stderr and the process aborts:
 *   1. the header is ours (magic)    "free of a pointer not allocated by heaplab"
 *   2. leading guard                 "buffer underrun"
 *   3. not freed already             "double free" / "realloc of a freed block"
 *   4. family known, and the one     "corrupted debug header" /
 *      of the function called        "API family mismatch"
 *   5. size plausible                "corrupted debug header"
 *   6. trailing guard                "buffer overrun"
 * The magic comes first because every other field is read through it; the
 * leading guard comes before the family byte because a write running down
 * from p crosses the guard before it reaches the family, and what happened
 * is an underrun. An underrun of more than 11 bytes that also overwrote the
 * magic is reported as a pointer that is not ours (the report says so).
 *
 * realloc always moves the block: new block, copy, old block checked and
 * filled with DEAD. Code that keeps using the old pointer after a realloc
 * that happened to stay in place works in every test and breaks under
 * another allocator; moving every time turns that into a read of 0xDD bytes
 * at once. (CPython's hooks erase the old block's start for the same reason.)
 *
 * What cannot be checked without reading memory that may not be mapped:
 *   - For a pointer inside one of the pool's arenas, the header is read only
 *     when it lies in the same pool (the radix map says so without reading
 *     the memory), so a bad pointer there is always reported. Any other
 *     pointer is trusted to have a readable header in front of it, as CPython
 *     trusts it: a pointer that never came from heaplab may fault instead of
 *     being reported, and so may a second free of a raw block whose memory
 *     the C library has given back to the OS (glibc unmaps blocks of 128 KiB
 *     and more at once), or of a pool block whose arena went back to the OS
 *     (arena-keep-kib=0, hl_alloc_collect). Pointers below 64 KiB or not
 *     aligned to 8 are refused without a read.
 *   - A block freed and handed out again before the second free is a live
 *     block to these checks: the second free frees its new owner's block.
 *     ASan's quarantine catches that; these hooks have no quarantine.
 *
 * Threads: the hooks touch only the block in hand and the serial counter
 * (one atomic add); the plain paths below take the strategy's lock.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_internal.h"
#include "hl_atomic.h"

enum { CLEAN = 0xCD, DEAD = 0xDD, FORBIDDEN = 0xFD };
enum { FREED_MARK = 0x80, LEAD = 11, TRAIL = 8 };
#define HEADER_MAGIC 0x484c4442u    /* "HLDB" */
#define HEADER_MIN   64u
/* Never mapped by Linux (vm.mmap_min_addr): a "pointer" below it is refused
 * without reading the header in front of it. */
#define LOW_ADDRESSES 65536u

/* The last 32 bytes of the header, right before p. */
typedef struct dbg_header {
  uint64_t size;
  uint64_t serial;
  uint32_t magic;
  uint8_t family;
  uint8_t guard[LEAD];
} dbg_header_t;
_Static_assert(sizeof(dbg_header_t) == 32, "the fields fill the 32 bytes before p");

bool hli_alloc_debug;
static size_t header_size = HEADER_MIN;   /* H, max(64, alignment) */
static uint64_t serials;                  /* the last serial taken */

void hli_debug_enable(size_t alignment) {
  header_size = alignment > HEADER_MIN ? alignment : HEADER_MIN;
  serials = 0;
  hli_alloc_debug = true;
}

void hli_debug_disable(void) { hli_alloc_debug = false; }


static inline dbg_header_t *header_of(const void *p) {
  return (dbg_header_t *)((uintptr_t)p - sizeof(dbg_header_t));
}

size_t hli_debug_overhead(void) { return header_size + TRAIL; }

size_t hli_debug_size(const void *p) { return (size_t)header_of(p)->size; }

static uint32_t magic_of(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;   /* Fibonacci hashing */
  return HEADER_MAGIC ^ (uint32_t)(x >> 32);
}

/* Out of line so that a debugger can stop in it (see the top). */
static HL_NOINLINE uint64_t take_serial(void) {
  /* Pairs with nothing: only uniqueness matters (hl_atomic has no relaxed
   * add, and this is not a mode for speed). */
  return hl_atomic_faa_u64(&serials, 1) + 1;
}

static const char *family_name(unsigned family) {
  switch (family & ~(unsigned)FREED_MARK) {
  case HLI_FAMILY_RAW: return "raw family (hl_raw_*)";
  case HLI_FAMILY_OBJECT: return "object family (hl_pool_*)";
  default: return "unknown family";
  }
}

static bool all_bytes(const uint8_t *b, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; i++)
    if (b[i] != v) return false;
  return true;
}

/* ---- the report ------------------------------------------------------------ */

typedef enum {
  E_FOREIGN, E_UNDERRUN, E_FREED, E_CORRUPT, E_MISMATCH, E_OVERRUN
} dbg_error_t;

typedef struct {
  char buf[4096];
  size_t n;
} text_t;

HL_PRINTF(2, 3) static void put(text_t *t, const char *fmt, ...) {
  if (t->n >= sizeof t->buf) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(t->buf + t->n, sizeof t->buf - t->n, fmt, ap);
  va_end(ap);
  if (k > 0) t->n += (size_t)k;
}

static void put_bytes(text_t *t, const char *what, const uint8_t *b, size_t n) {
  put(t, "  %s at %p:", what, (const void *)b);
  for (size_t i = 0; i < n; i++) put(t, " %02x", b[i]);
  put(t, "\n");
}

/* h: the header when its magic matched (NULL otherwise); readable: whether
 * the 32 bytes before p may be read at all; size_ok: whether h->size may be
 * trusted to find the trailing guard. */
HL_NORETURN static void report(dbg_error_t e, bool realloc_op, hli_family_t used, const void *p,
                               const dbg_header_t *h, bool readable, bool size_ok) {
  static const char *const kinds[] = {
      [E_UNDERRUN] = "buffer underrun",  [E_CORRUPT] = "corrupted debug header",
      [E_MISMATCH] = "API family mismatch", [E_OVERRUN] = "buffer overrun",
  };
  const char *op = realloc_op ? "realloc" : "free";
  const char *fn = used == HLI_FAMILY_RAW ? (realloc_op ? "hl_raw_realloc" : "hl_raw_free")
                                          : (realloc_op ? "hl_pool_realloc" : "hl_pool_free");
  text_t t = {.n = 0};
  if (e == E_FOREIGN)
    put(&t, "heaplab alloc-debug: %s of a pointer not allocated by heaplab at %p\n", op, p);
  else if (e == E_FREED)
    put(&t, "heaplab alloc-debug: %s at %p\n", realloc_op ? "realloc of a freed block" : "double free",
        p);
  else
    put(&t, "heaplab alloc-debug: %s at %p\n", kinds[e], p);
  put(&t, "  in %s\n", fn);
  if (h) {
    put(&t, "  requested size: %" PRIu64 " bytes\n", h->size);
    put(&t, "  serial: %" PRIu64 " (to stop at its allocation: gdb, break take_serial if "
            "serials == %" PRIu64 ")\n", h->serial, h->serial - 1);
    put(&t, "  allocated with: %s%s\n", family_name(h->family),
        h->family & FREED_MARK ? ", freed already" : "");
    put(&t, "  %s with: %s\n", realloc_op ? "reallocated" : "freed", family_name(used));
    const uint8_t *lead = h->guard, *data = p;
    put_bytes(&t, "leading guard (11 x fd)", lead, LEAD);
    for (size_t i = 0; i < LEAD; i++)
      if (lead[i] != FORBIDDEN) {
        put(&t, "  first bad leading byte at %p: p-%zu\n", (const void *)&lead[i],
            (size_t)LEAD - i);
        break;
      }
    if (size_ok) {
      size_t show = h->size < 16 ? (size_t)h->size : 16;
      if (show) put_bytes(&t, "first data bytes", data, show);
      if (h->size > 16) put_bytes(&t, "last data bytes", data + h->size - 8, 8);
      put_bytes(&t, "trailing guard (8 x fd)", data + h->size, TRAIL);
      for (size_t i = 0; i < TRAIL && e != E_FREED; i++)   /* freed: dd by design */
        if (data[h->size + i] != FORBIDDEN) {
          put(&t, "  first bad trailing byte at %p: p+%" PRIu64 ", %zu past the end\n",
              (const void *)&data[h->size + i], h->size + i, i + 1);
          break;
        }
    } else {
      put(&t, "  trailing guard not read: the size in the header is not plausible\n");
    }
    if (e == E_FREED)
      put(&t, "  the block was freed before (data and trailing guard filled with dd)\n");
  } else {
    put(&t, "  requested size: unknown (no heaplab header)\n");
    put(&t, "  serial: unknown\n");
    if (readable) {
      put_bytes(&t, "the 32 bytes before it", (const uint8_t *)header_of(p),
                sizeof(dbg_header_t));
      put(&t, "  magic %08" PRIx32 ", expected %08" PRIx32 " for this address: not the start of "
              "a debug block, or its header was overwritten (an underrun of more than 11 "
              "bytes)\n", header_of(p)->magic, magic_of(p));
    } else {
      put(&t, "  the bytes before it were not read: they may not be mapped\n");
    }
  }
  fwrite(t.buf, 1, t.n < sizeof t.buf ? t.n : sizeof t.buf - 1, stderr);
  fflush(stderr);
  abort();
}

/* ---- the checks ------------------------------------------------------------ */

/* Whether address x lies in the pool at address pool (one of ours). */
static bool same_pool(uintptr_t x, uintptr_t pool) {
  uintptr_t e = hl_radix_get(x);
  return e != 0 && hli_entry_pool(x, e) == pool;
}

/* Returns p's header when every check passes; reports and aborts otherwise. */
static dbg_header_t *check(bool realloc_op, hli_family_t used, void *p) {
  uintptr_t a = (uintptr_t)p;
  if (a < LOW_ADDRESSES || a % 8 != 0)
    report(E_FOREIGN, realloc_op, used, p, NULL, false, false);
  /* the pool's address, from its radix entry (without reading the pool);
   * 0 outside ours */
  uintptr_t e = hl_radix_get(a), pool = e ? hli_entry_pool(a, e) : 0;
  if (pool && !same_pool(a - header_size, pool))
    report(E_FOREIGN, realloc_op, used, p, NULL, false, false);
  dbg_header_t *h = header_of(p);
  if (h->magic != magic_of(p)) report(E_FOREIGN, realloc_op, used, p, NULL, true, false);
  /* Inside a pool, the trailing guard must be too (no fault reading it);
   * elsewhere the size is trusted, like the header. */
  bool size_ok = h->size <= (size_t)PTRDIFF_MAX &&
                 (!pool || same_pool(a + h->size + TRAIL - 1, pool));
  if (!all_bytes(h->guard, LEAD, FORBIDDEN))
    report(E_UNDERRUN, realloc_op, used, p, h, true, size_ok);
  if (h->family & FREED_MARK) report(E_FREED, realloc_op, used, p, h, true, size_ok);
  if (h->family != HLI_FAMILY_RAW && h->family != HLI_FAMILY_OBJECT)
    report(E_CORRUPT, realloc_op, used, p, h, true, size_ok);
  if (h->family != used) report(E_MISMATCH, realloc_op, used, p, h, true, size_ok);
  if (!size_ok) report(E_CORRUPT, realloc_op, used, p, h, true, false);
  if (!all_bytes((const uint8_t *)p + h->size, TRAIL, FORBIDDEN))
    report(E_OVERRUN, realloc_op, used, p, h, true, true);
  return h;
}

/* ---- the hooks ------------------------------------------------------------- */

static void *new_block(hli_family_t f, size_t n, bool zero) {
  size_t overhead = header_size + TRAIL;
  if (n > (size_t)PTRDIFF_MAX - overhead) return NULL;
  uint8_t *base = f == HLI_FAMILY_RAW ? hli_raw_malloc(n + overhead)
                                      : hli_pool_malloc_plain(n + overhead);
  if (!base) return NULL;
  uint8_t *p = base + header_size;
  dbg_header_t *h = header_of(p);
  memset(base, FORBIDDEN, header_size - sizeof *h);
  h->size = n;
  h->serial = take_serial();
  h->magic = magic_of(p);
  h->family = (uint8_t)f;
  memset(h->guard, FORBIDDEN, LEAD);
  memset(p, zero ? 0 : CLEAN, n);
  memset(p + n, FORBIDDEN, TRAIL);
  return p;
}

/* h has passed check(). The header stays, marked, for a second free to find. */
static void release(hli_family_t f, void *p, dbg_header_t *h) {
  memset(p, DEAD, h->size + TRAIL);
  h->family |= FREED_MARK;
  uint8_t *base = (uint8_t *)p - header_size;
  if (f == HLI_FAMILY_RAW) hli_raw_free(base);
  else hli_pool_free_plain(base);
}

void *hli_debug_malloc(hli_family_t f, size_t n) { return new_block(f, n, false); }

void *hli_debug_calloc(hli_family_t f, size_t nelem, size_t elsize) {
  size_t n;
  if (__builtin_mul_overflow(nelem, elsize, &n)) return NULL;
  return new_block(f, n, true);
}

void hli_debug_free(hli_family_t f, void *p) {
  if (p == NULL) return;
  release(f, p, check(false, f, p));
}

void *hli_debug_realloc(hli_family_t f, void *p, size_t n) {
  if (p == NULL) return new_block(f, n, false);
  dbg_header_t *h = check(true, f, p);
  void *q = new_block(f, n, false);
  if (q == NULL) return NULL;   /* p is untouched, as realloc promises */
  memcpy(q, p, n < h->size ? n : h->size);
  release(f, p, h);
  return q;
}
