/* heaplab atomics: one name per operation and memory order.
 *
 * Every shared word in heaplab is a plain uint32_t, uint64_t or void * (no
 * _Atomic, so that C++ translation units such as the benchmark shim can
 * include this header). Each function names its memory order, as ck and urcu
 * do, so that a reader sees the ordering at the call site.
 *
 * Two back ends, chosen at compile time:
 *
 *   ConcurrencyKit's ck_pr (normal builds). ck's loads and stores are single
 *   instructions in inline asm with a "memory" clobber: atomic and, as far as
 *   the C memory model goes, relaxed. Ordering comes from ck's fences, which
 *   ck resolves per memory model (CK_MD_TSO on x86-64): a fence the hardware
 *   does not need becomes a compiler barrier. ck's read-modify-write
 *   operations are not fences on RMO machines (arm64), so the full-barrier
 *   RMWs below bracket them with ck_pr_fence_{load,store}_atomic before and
 *   ck_pr_fence_atomic_{load,store} after (all compiler barriers on TSO).
 *
 *   GCC's __atomic builtins (ThreadSanitizer builds: HL_TSAN from CMake, or
 *   __SANITIZE_THREAD__). TSan instruments memory accesses the compiler emits
 *   and the __atomic builtins, but cannot look inside inline asm: through ck
 *   every atomic would be invisible to it, and a ck_pr-published payload or a
 *   ck_spinlock-protected counter would be reported as a race.
 *
 *   hl name                  ck (x86-64, TSO)                    TSan back end
 *   ---------------------    --------------------------------    -----------------------
 *   load_relaxed             ck_pr_load_N                        __atomic_load RELAXED
 *   load_acquire             ck_pr_load_N; fence_acquire (cc)    __atomic_load ACQUIRE
 *   store_relaxed            ck_pr_store_N                       __atomic_store RELAXED
 *   store_release            fence_release (cc); ck_pr_store_N   __atomic_store RELEASE
 *   faa, inc, dec_is_zero,   lock xadd / inc / dec / cmpxchg /   __atomic_* SEQ_CST
 *   cas, cas_value, xchg,    xchg / or / and: full barriers on
 *   or, and                  x86-64
 *   xchg_acquire             ck_pr_fas_N; fence_acquire (cc)     __atomic_exchange ACQUIRE
 *   fence_acquire            ck_pr_fence_acquire (cc)            seq_cst RMW on one word *
 *   fence_release            ck_pr_fence_release (cc)            seq_cst RMW on one word *
 *   fence_seq_cst            ck_pr_fence_memory (mfence)         seq_cst RMW on one word *
 *   (cc) = compiler barrier only on TSO; a real fence on RMO.
 *
 *   * TSan does not model __atomic_thread_fence (GCC warns: -Wtsan, "not
 *     supported with -fsanitize=thread") and would report races that a fence
 *     pair rules out. Under TSan every fence is a seq_cst fetch-add of 0 on
 *     one process-wide word instead: all fencing threads then synchronize
 *     through that word, which TSan sees as happens-before. That is stronger
 *     than a fence (it may hide a race that only fences were meant to
 *     prevent, never invent one) and slow, which only TSan builds pay.
 *
 * A third family, hl_atomic_c11_*, is GCC's __atomic builtins in both back
 * ends, for fast paths where ck's compiler barrier would cost and for types
 * ck_pr has no function for: see its section below.
 *
 * Atomicity needs natural alignment (4 bytes for u32, 8 for u64 and ptr).
 * The ptr functions take the address of a void * object; a typed pointer
 * object is passed as (void **)&p, which GCC allows since all pointer types
 * share one alias set. */
#ifndef HL_ATOMIC_H
#define HL_ATOMIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hl_base.h"

#if defined(HL_TSAN) || defined(__SANITIZE_THREAD__)
#define HL_ATOMIC_TSAN 1
#else
#define HL_ATOMIC_TSAN 0
#endif

#if !HL_ATOMIC_TSAN
#include <ck_pr.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif
HL_API_BEGIN

#if HL_ATOMIC_TSAN
/* ========================== ThreadSanitizer: __atomic ======================= */

/* The word that stands in for fences (see the top). Weak, so that every
 * translation unit that includes this header shares one definition. */
__attribute__((weak)) uint64_t hl_atomic_tsan_fence_word;

static inline uint32_t hl_atomic_load_relaxed_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t hl_atomic_load_relaxed_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void *hl_atomic_load_relaxed_ptr(void *const *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* Pairs with the store_release (or RMW) that wrote the value read. */
static inline uint32_t hl_atomic_load_acquire_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline uint64_t hl_atomic_load_acquire_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void *hl_atomic_load_acquire_ptr(void *const *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

static inline void hl_atomic_store_relaxed_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void hl_atomic_store_relaxed_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void hl_atomic_store_relaxed_ptr(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/* Pairs with the load_acquire that reads the value stored. */
static inline void hl_atomic_store_release_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void hl_atomic_store_release_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void hl_atomic_store_release_ptr(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static inline uint32_t hl_atomic_faa_u32(uint32_t *p, uint32_t d) { return __atomic_fetch_add(p, d, __ATOMIC_SEQ_CST); }
static inline uint64_t hl_atomic_faa_u64(uint64_t *p, uint64_t d) { return __atomic_fetch_add(p, d, __ATOMIC_SEQ_CST); }
static inline void hl_atomic_inc_u64(uint64_t *p) { (void)__atomic_fetch_add(p, 1, __ATOMIC_SEQ_CST); }
static inline bool hl_atomic_dec_is_zero_u64(uint64_t *p) { return __atomic_sub_fetch(p, 1, __ATOMIC_SEQ_CST) == 0; }

static inline bool hl_atomic_cas_u32(uint32_t *p, uint32_t expected, uint32_t desired) {
  return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline bool hl_atomic_cas_u64(uint64_t *p, uint64_t expected, uint64_t desired) {
  return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline bool hl_atomic_cas_ptr(void **p, void *expected, void *desired) {
  return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
/* On failure the builtin writes the value it saw into expected. */
static inline uint64_t hl_atomic_cas_value_u64(uint64_t *p, uint64_t expected, uint64_t desired) {
  (void)__atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expected;
}

static inline uint64_t hl_atomic_xchg_u64(uint64_t *p, uint64_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
/* Acquire only (a lock's exchange): pairs with the store_release that wrote
 * the value it replaces (the previous holder's unlock). */
static inline uint32_t hl_atomic_xchg_acquire_u32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQUIRE); }
/* Sets / clears bits of a word (the thread breaker's request bits). */
static inline void hl_atomic_or_u64(uint64_t *p, uint64_t bits) { (void)__atomic_fetch_or(p, bits, __ATOMIC_SEQ_CST); }
static inline void hl_atomic_and_u64(uint64_t *p, uint64_t bits) { (void)__atomic_fetch_and(p, bits, __ATOMIC_SEQ_CST); }
static inline void *hl_atomic_xchg_ptr(void **p, void *v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }

/* Reference counts (gc/hl_gc.h): the orders a count needs and no more.
 * add_relaxed: an increment orders nothing (the caller already holds a
 * reference). faa_release: a decrement publishes the caller's writes to
 * the object before it gives its reference up; the thread whose decrement
 * reaches zero then calls acquire_after_rmw before it frees the object,
 * pairing with every earlier release decrement (Boost's and libstdc++'s
 * shared_ptr recipe). Under TSan, which does not model fences, the acquire
 * is an acquire load of the count: it reads the value of our own RMW, part
 * of the release sequences of the earlier decrements, and so synchronizes
 * with each of them. */
static inline uint16_t hl_atomic_load_relaxed_u16(const uint16_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void hl_atomic_store_relaxed_u16(uint16_t *p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void hl_atomic_add_relaxed_u32(uint32_t *p, uint32_t d) { (void)__atomic_fetch_add(p, d, __ATOMIC_RELAXED); }
static inline uint32_t hl_atomic_faa_release_u32(uint32_t *p, uint32_t d) { return __atomic_fetch_add(p, d, __ATOMIC_RELEASE); }
static inline void hl_atomic_acquire_after_rmw_u32(const uint32_t *p) { (void)__atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void hl_atomic_add_relaxed_u64(uint64_t *p, uint64_t d) { (void)__atomic_fetch_add(p, d, __ATOMIC_RELAXED); }
static inline void hl_atomic_acquire_after_rmw_u64(const uint64_t *p) { (void)__atomic_load_n(p, __ATOMIC_ACQUIRE); }

static inline void hl_atomic_fence_seq_cst(void) {
  (void)__atomic_fetch_add(&hl_atomic_tsan_fence_word, 0, __ATOMIC_SEQ_CST);
}
static inline void hl_atomic_fence_acquire(void) { hl_atomic_fence_seq_cst(); }
static inline void hl_atomic_fence_release(void) { hl_atomic_fence_seq_cst(); }

/* A spin-wait hint; touches no memory, so TSan needs nothing here. */
static inline void hl_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#else
  __asm__ __volatile__("" ::: "memory");
#endif
}

#else
/* ============================ ConcurrencyKit ck_pr ========================== */

/* A read-modify-write as a full barrier on every memory model ck knows; these
 * are compiler barriers on x86-64, where lock-prefixed instructions already
 * order everything. */
#define HLI_RMW_FENCE_BEFORE() do { ck_pr_fence_load_atomic(); ck_pr_fence_store_atomic(); } while (0)
#define HLI_RMW_FENCE_AFTER()  do { ck_pr_fence_atomic_load(); ck_pr_fence_atomic_store(); } while (0)

static inline uint32_t hl_atomic_load_relaxed_u32(const uint32_t *p) { return ck_pr_load_32(p); }
static inline uint64_t hl_atomic_load_relaxed_u64(const uint64_t *p) { return ck_pr_load_64(p); }
static inline void *hl_atomic_load_relaxed_ptr(void *const *p) { return ck_pr_load_ptr(p); }

/* The fence after the load orders it before every later access; pairs with
 * the release (fence or store_release) of the thread that wrote the value. */
static inline uint32_t hl_atomic_load_acquire_u32(const uint32_t *p) {
  uint32_t v = ck_pr_load_32(p);
  ck_pr_fence_acquire();
  return v;
}
static inline uint64_t hl_atomic_load_acquire_u64(const uint64_t *p) {
  uint64_t v = ck_pr_load_64(p);
  ck_pr_fence_acquire();
  return v;
}
static inline void *hl_atomic_load_acquire_ptr(void *const *p) {
  void *v = ck_pr_load_ptr(p);
  ck_pr_fence_acquire();
  return v;
}

static inline void hl_atomic_store_relaxed_u32(uint32_t *p, uint32_t v) { ck_pr_store_32(p, v); }
static inline void hl_atomic_store_relaxed_u64(uint64_t *p, uint64_t v) { ck_pr_store_64(p, v); }
static inline void hl_atomic_store_relaxed_ptr(void **p, void *v) { ck_pr_store_ptr(p, v); }

/* The fence before the store orders every earlier access before it; pairs
 * with the acquire (fence or load_acquire) of the thread that reads it. */
static inline void hl_atomic_store_release_u32(uint32_t *p, uint32_t v) {
  ck_pr_fence_release();
  ck_pr_store_32(p, v);
}
static inline void hl_atomic_store_release_u64(uint64_t *p, uint64_t v) {
  ck_pr_fence_release();
  ck_pr_store_64(p, v);
}
static inline void hl_atomic_store_release_ptr(void **p, void *v) {
  ck_pr_fence_release();
  ck_pr_store_ptr(p, v);
}

static inline uint32_t hl_atomic_faa_u32(uint32_t *p, uint32_t d) {
  HLI_RMW_FENCE_BEFORE();
  uint32_t old = ck_pr_faa_32(p, d);
  HLI_RMW_FENCE_AFTER();
  return old;
}
static inline uint64_t hl_atomic_faa_u64(uint64_t *p, uint64_t d) {
  HLI_RMW_FENCE_BEFORE();
  uint64_t old = ck_pr_faa_64(p, d);
  HLI_RMW_FENCE_AFTER();
  return old;
}
static inline void hl_atomic_inc_u64(uint64_t *p) {
  HLI_RMW_FENCE_BEFORE();
  ck_pr_inc_64(p);
  HLI_RMW_FENCE_AFTER();
}
static inline bool hl_atomic_dec_is_zero_u64(uint64_t *p) {
  HLI_RMW_FENCE_BEFORE();
  bool zero = ck_pr_dec_64_is_zero(p);
  HLI_RMW_FENCE_AFTER();
  return zero;
}

static inline bool hl_atomic_cas_u32(uint32_t *p, uint32_t expected, uint32_t desired) {
  HLI_RMW_FENCE_BEFORE();
  bool ok = ck_pr_cas_32(p, expected, desired);
  HLI_RMW_FENCE_AFTER();
  return ok;
}
static inline bool hl_atomic_cas_u64(uint64_t *p, uint64_t expected, uint64_t desired) {
  HLI_RMW_FENCE_BEFORE();
  bool ok = ck_pr_cas_64(p, expected, desired);
  HLI_RMW_FENCE_AFTER();
  return ok;
}
static inline bool hl_atomic_cas_ptr(void **p, void *expected, void *desired) {
  HLI_RMW_FENCE_BEFORE();
  bool ok = ck_pr_cas_ptr(p, expected, desired);
  HLI_RMW_FENCE_AFTER();
  return ok;
}
/* Returns the value the CAS saw: equal to expected exactly when it stored. */
static inline uint64_t hl_atomic_cas_value_u64(uint64_t *p, uint64_t expected, uint64_t desired) {
  uint64_t seen;
  HLI_RMW_FENCE_BEFORE();
  (void)ck_pr_cas_64_value(p, expected, desired, &seen);
  HLI_RMW_FENCE_AFTER();
  return seen;
}

static inline uint64_t hl_atomic_xchg_u64(uint64_t *p, uint64_t v) {
  HLI_RMW_FENCE_BEFORE();
  uint64_t old = ck_pr_fas_64(p, v);
  HLI_RMW_FENCE_AFTER();
  return old;
}
/* Acquire only: the fence after the exchange orders its read before every
 * later access; pairs with the store_release that wrote the value it
 * replaces (the previous holder's unlock). */
static inline uint32_t hl_atomic_xchg_acquire_u32(uint32_t *p, uint32_t v) {
  uint32_t old = ck_pr_fas_32(p, v);
  ck_pr_fence_acquire();
  return old;
}
/* Sets / clears bits of a word (the thread breaker's request bits). */
static inline void hl_atomic_or_u64(uint64_t *p, uint64_t bits) {
  HLI_RMW_FENCE_BEFORE();
  ck_pr_or_64(p, bits);
  HLI_RMW_FENCE_AFTER();
}
static inline void hl_atomic_and_u64(uint64_t *p, uint64_t bits) {
  HLI_RMW_FENCE_BEFORE();
  ck_pr_and_64(p, bits);
  HLI_RMW_FENCE_AFTER();
}
static inline void *hl_atomic_xchg_ptr(void **p, void *v) {
  HLI_RMW_FENCE_BEFORE();
  void *old = ck_pr_fas_ptr(p, v);
  HLI_RMW_FENCE_AFTER();
  return old;
}

/* Reference counts: see the TSan back end for what each order is for. On
 * x86-64 the increment is a lock add, the decrement a lock xadd, and both
 * fences are compiler barriers. */
static inline uint16_t hl_atomic_load_relaxed_u16(const uint16_t *p) { return ck_pr_load_16(p); }
static inline void hl_atomic_store_relaxed_u16(uint16_t *p, uint16_t v) { ck_pr_store_16(p, v); }
static inline void hl_atomic_add_relaxed_u32(uint32_t *p, uint32_t d) { ck_pr_add_32(p, d); }
/* The fence before the RMW: pairs with acquire_after_rmw in the thread
 * whose decrement reaches zero. */
static inline uint32_t hl_atomic_faa_release_u32(uint32_t *p, uint32_t d) {
  ck_pr_fence_release();
  return ck_pr_faa_32(p, d);
}
/* Pairs with the release of every earlier decrement of *p. */
static inline void hl_atomic_acquire_after_rmw_u32(const uint32_t *p) {
  (void)p;
  ck_pr_fence_acquire();
}
static inline void hl_atomic_add_relaxed_u64(uint64_t *p, uint64_t d) { ck_pr_add_64(p, d); }
static inline void hl_atomic_acquire_after_rmw_u64(const uint64_t *p) {
  (void)p;
  ck_pr_fence_acquire();
}

/* Standalone fences pair with a fence or an acquire/release operation of the
 * other thread, as in C11; each caller says which. */
static inline void hl_atomic_fence_seq_cst(void) { ck_pr_fence_memory(); }
static inline void hl_atomic_fence_acquire(void) { ck_pr_fence_acquire(); }
static inline void hl_atomic_fence_release(void) { ck_pr_fence_release(); }

static inline void hl_cpu_relax(void) { ck_pr_stall(); }

#undef HLI_RMW_FENCE_BEFORE
#undef HLI_RMW_FENCE_AFTER
#endif /* HL_ATOMIC_TSAN */

/* ================= Compiler-visible atomics: __atomic in every build ===========
 *
 * hl_atomic_c11_<op>_<order>_<type>: GCC's __atomic builtins in normal and
 * TSan builds alike, with exactly the C11 order in the name. The ck functions
 * above are volatile asm with a "memory" clobber, so each is also a compiler
 * barrier: the compiler may keep no other value in a register across it nor
 * move any access over it. The builtins constrain the compiler only as far
 * as their C11 order says, which on a fast path can save instructions (a
 * reference count's owner check, a dict or list read without the lock,
 * malloc's limit check under LD_PRELOAD), and they take the types ck_pr has
 * no function for. On x86-64 each load and store below is one plain move.
 *
 *   types   bool, u16, u32, i32, u64, i64, size (size_t), uptr (uintptr_t),
 *           ptr (void *; a typed pointer object as (void **)&p, as above)
 *   each    load_relaxed, load_acquire, store_relaxed, store_release
 *   RMWs    add_relaxed_u64, cas_acq_rel_i32 (the ones used this way)
 *
 * A load_acquire pairs with the store_release (or release RMW) that wrote the
 * value it reads; a store_release with the load_acquire that reads the value
 * it stores. Each caller says which. */
/* The four accesses of one type T, named by suffix S. */
#define HL_ATOMIC_C11_ACCESS(T, S)                                                          \
  static inline T hl_atomic_c11_load_relaxed_##S(const T *p) {                              \
    return __atomic_load_n(p, __ATOMIC_RELAXED);                                            \
  }                                                                                         \
  static inline T hl_atomic_c11_load_acquire_##S(const T *p) {                              \
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);                                            \
  }                                                                                         \
  static inline void hl_atomic_c11_store_relaxed_##S(T *p, T v) {                           \
    __atomic_store_n(p, v, __ATOMIC_RELAXED);                                               \
  }                                                                                         \
  static inline void hl_atomic_c11_store_release_##S(T *p, T v) {                           \
    __atomic_store_n(p, v, __ATOMIC_RELEASE);                                               \
  }
typedef void *hl_atomic_ptr_t;   /* so that `const T *` reads void *const * */
HL_ATOMIC_C11_ACCESS(bool, bool)
HL_ATOMIC_C11_ACCESS(uint16_t, u16)
HL_ATOMIC_C11_ACCESS(uint32_t, u32)
HL_ATOMIC_C11_ACCESS(int32_t, i32)
HL_ATOMIC_C11_ACCESS(uint64_t, u64)
HL_ATOMIC_C11_ACCESS(int64_t, i64)
HL_ATOMIC_C11_ACCESS(size_t, size)
HL_ATOMIC_C11_ACCESS(uintptr_t, uptr)
HL_ATOMIC_C11_ACCESS(hl_atomic_ptr_t, ptr)
#undef HL_ATOMIC_C11_ACCESS

/* A counter nobody orders anything by (a statistic). */
static inline void hl_atomic_c11_add_relaxed_u64(uint64_t *p, uint64_t d) {
  (void)__atomic_fetch_add(p, d, __ATOMIC_RELAXED);
}
/* Acquire and release when it stores; acquire when it fails (it then reads
 * the value another thread stored with release). */
static inline bool hl_atomic_c11_cas_acq_rel_i32(int32_t *p, int32_t expected, int32_t desired) {
  return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE);
}

/* Raises *p to at least v (a high-water mark), with a full-barrier CAS when
 * it raises it: what the caller wrote before is visible to a reader that
 * loads the new mark with acquire. */
static inline void hl_atomic_max_u32(uint32_t *p, uint32_t v) {
  uint32_t u = hl_atomic_load_relaxed_u32(p);
  while (u < v && !hl_atomic_cas_u32(p, u, v)) u = hl_atomic_load_relaxed_u32(p);
}

HL_API_END
#ifdef __cplusplus
}
#endif
#endif /* HL_ATOMIC_H */
