/* Fault injection: the counters behind hl_fail_hit (hl_failpoint.h says
 * what a failpoint is and what it costs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_failpoint.h"

int32_t hl_fail_armed;

typedef struct {
  bool armed;
  uint64_t at;          /* fail the point numbered at (1-based); 0: none */
  double p;             /* > 0: fail at random instead */
  uint64_t seen, injected;
  hl_rand_t rng;
} fail_state_t;

/* Changed only by the arming functions (a test, start-up); the counts by
 * whichever thread passes a point, with relaxed atomics. */
static fail_state_t state[HL_FAIL_KINDS];

static void rearm_flag(void) {
  int32_t any = 0;
  for (int k = 0; k < HL_FAIL_KINDS; k++) any |= state[k].armed;
  hl_atomic_c11_store_relaxed_i32(&hl_fail_armed, any);
}

void hl_fail_at(hl_fail_kind_t kind, uint64_t n) {
  fail_state_t *s = &state[kind];
  memset(s, 0, sizeof *s);
  s->armed = true;
  s->at = n;
  rearm_flag();
}

void hl_fail_random(hl_fail_kind_t kind, double p, uint64_t seed) {
  fail_state_t *s = &state[kind];
  memset(s, 0, sizeof *s);
  s->armed = true;
  s->p = p;
  hl_rand_seed(&s->rng, seed);
  rearm_flag();
}

void hl_fail_reset(void) {
  memset(state, 0, sizeof state);
  rearm_flag();
}

void hl_fail_disarm(hl_fail_kind_t kind) {
  memset(&state[kind], 0, sizeof state[kind]);
  rearm_flag();
}

uint64_t hl_fail_count(hl_fail_kind_t kind) {
  return hl_atomic_c11_load_relaxed_u64(&state[kind].seen);
}
uint64_t hl_fail_injected(hl_fail_kind_t kind) {
  return hl_atomic_c11_load_relaxed_u64(&state[kind].injected);
}

bool hl_fail_hit_slow(hl_fail_kind_t kind) {
  fail_state_t *s = &state[kind];
  if (!s->armed) return false;
  uint64_t n = hl_atomic_faa_u64(&s->seen, 1) + 1;   /* exactly one thread gets each n */
  bool fail;
  if (s->p > 0)   /* the generator is not thread-safe: fine for a seeded, one-thread test */
    fail = (double)(hl_rand_next(&s->rng) >> 11) * 0x1.0p-53 < s->p;
  else
    fail = n == s->at;
  if (fail) hl_atomic_c11_add_relaxed_u64(&s->injected, 1);
  return fail;
}

static int parse_u64(const char *name, const char *v, uint64_t min, uint64_t *out, char *err,
                     size_t errlen) {
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (!*v || *end || errno || v[0] == '-' || x < min) {
    snprintf(err, errlen, "%s=%s: accepted: an integer >= %llu", name, v,
             (unsigned long long)min);
    return -1;
  }
  *out = x;
  return 0;
}

int hl_fail_from_env(char *err, size_t errlen) {
  const char *at = getenv("HEAPLAB_FAIL_AT"), *p = getenv("HEAPLAB_FAIL_P");
  const char *seed = getenv("HEAPLAB_FAIL_SEED"), *kind = getenv("HEAPLAB_FAIL_KIND");
  if (!at && !p) return 0;
  hl_fail_kind_t k = HL_FAIL_OBJ;
  if (kind && strcmp(kind, "mmap") == 0) {
    k = HL_FAIL_MMAP;
  } else if (kind && strcmp(kind, "runtime") == 0) {
    k = HL_FAIL_RUNTIME;
  } else if (kind && strcmp(kind, "obj") != 0) {
    snprintf(err, errlen, "HEAPLAB_FAIL_KIND=%s: accepted: obj, mmap, runtime", kind);
    return -1;
  }
  if (at && p) {
    snprintf(err, errlen, "HEAPLAB_FAIL_AT and HEAPLAB_FAIL_P: set one of them, not both");
    return -1;
  }
  if (at) {
    uint64_t n;
    if (parse_u64("HEAPLAB_FAIL_AT", at, 1, &n, err, errlen) != 0) return -1;
    hl_fail_at(k, n);
    return 0;
  }
  char *end;
  errno = 0;
  double pr = strtod(p, &end);
  if (!*p || *end || errno || !(pr > 0 && pr <= 1)) {
    snprintf(err, errlen, "HEAPLAB_FAIL_P=%s: accepted: a probability in (0, 1]", p);
    return -1;
  }
  uint64_t s = 1;
  if (seed && parse_u64("HEAPLAB_FAIL_SEED", seed, 0, &s, err, errlen) != 0) return -1;
  hl_fail_random(k, pr, s);
  return 0;
}
