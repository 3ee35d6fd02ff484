/* heaplab: what every file of every layer may use.
 *
 * Branch hints, the tiered assertions (mimalloc's mi_assert /
 * mi_assert_expensive), hl_die() for states that cannot happen, and a small
 * seeded random number generator so that every workload and stress test is
 * deterministic for a given --seed.
 */
#ifndef HL_BASE_H
#define HL_BASE_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HL_LIKELY(x)   __builtin_expect(!!(x), 1)
#define HL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HL_NOINLINE    __attribute__((noinline))
#define HL_INTERNAL    __attribute__((visibility("hidden")))
#define HL_NORETURN    __attribute__((noreturn))
#define HL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HL_CACHE_LINE  64
#define HL_CACHE_ALIGNED __attribute__((aligned(HL_CACHE_LINE)))

/* The public headers' declarations sit between HL_API_BEGIN and HL_API_END:
 * libheaplab.so is compiled with -fvisibility=hidden, so what these mark is
 * all it exports (hl_* names; an HL_INTERNAL declaration among them stays
 * hidden). The static archives and libheaplab-malloc.so are unaffected:
 * the first export everything to the link that takes them, the second has
 * its version script (alloc/preload.map). tests/outside/check.sh checks
 * with nm -D that only hl_* names leave libheaplab.so. */
/* The TLS model of the thread-local words the fast paths read. Local-exec
 * (one instruction, %fs:offset) in heaplab's own programs, which link its
 * static archives (the build defines HL_TLS_LOCAL_EXEC for them);
 * initial-exec in libheaplab.so and libheaplab-malloc.so (a shared object
 * cannot use local-exec) and in programs built against the installed
 * headers, where the linker relaxes it to local-exec when the variable
 * ends up in the executable. Either way: never dlopen heaplab. */
#if defined(HL_TLS_LOCAL_EXEC) && !defined(HL_PRELOAD)
#define HL_TLS_MODEL "local-exec"
#else
#define HL_TLS_MODEL "initial-exec"
#endif

#define HL_API_BEGIN _Pragma("GCC visibility push(default)")
#define HL_API_END   _Pragma("GCC visibility pop")

/* Reports file:function@line and the message on stderr, then aborts. */
HL_API_BEGIN
HL_NORETURN HL_PRINTF(4, 5)
void hl_die_at(const char *file, const char *func, int line, const char *fmt, ...);
HL_API_END
#define hl_die(...) hl_die_at(__FILE__, __func__, __LINE__, __VA_ARGS__)

/* HL_ASSERT: cheap, on in every build without NDEBUG and in builds with
 * expensive checks. HL_ASSERT_EXPENSIVE: invariant validators that walk whole
 * structures, on only with HL_EXPENSIVE_CHECKS (the debug and asan presets). */
#if !defined(NDEBUG) || defined(HL_EXPENSIVE_CHECKS)
#define HL_ASSERT(c) \
  do { if (HL_UNLIKELY(!(c))) hl_die("assertion failed: %s", #c); } while (0)
#else
#define HL_ASSERT(c) ((void)0)
#endif
#if defined(HL_EXPENSIVE_CHECKS)
#define HL_ASSERT_EXPENSIVE(c) HL_ASSERT(c)
#else
#define HL_ASSERT_EXPENSIVE(c) ((void)0)
#endif

/* xoshiro256** (Blackman and Vigna, "Scrambled linear pseudorandom number
 * generators", 2018), seeded through splitmix64 so that any 64-bit seed,
 * 0 included, gives a good state. */
typedef struct hl_rand { uint64_t s[4]; } hl_rand_t;

static inline uint64_t hl_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline void hl_rand_seed(hl_rand_t *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = hl_splitmix64(&x);
}

static inline uint64_t hl_rand_next(hl_rand_t *r) {
  uint64_t *s = r->s;
  uint64_t v = s[1] * 5;
  uint64_t result = ((v << 7) | (v >> 57)) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = (s[3] << 45) | (s[3] >> 19);
  return result;
}

/* Uniform in [0, n), n > 0, by Lemire's multiply-shift (the tiny bias of
 * skipping the rejection step is below 2^-32 for the n used here). */
static inline uint64_t hl_rand_below(hl_rand_t *r, uint64_t n) {
  __extension__ typedef unsigned __int128 u128;
  return (uint64_t)(((u128)hl_rand_next(r) * n) >> 64);
}

/* FNV-1a over 64-bit words: the workloads' checksums. */
#define HL_FNV_OFFSET 0xcbf29ce484222325ull
static inline uint64_t hl_fnv1a_u64(uint64_t h, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 0x100000001b3ull;
  }
  return h;
}

#ifdef __cplusplus
}
#endif

#endif /* HL_BASE_H */
