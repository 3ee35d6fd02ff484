/* churn: the object traffic of a Python program, without the interpreter.
 *
 * One operation makes one object (with its contents) and either drops it at
 * once, as a temporary, or keeps it in a window of WINDOW live objects in
 * place of a random older one, which is dropped. Per 100 operations:
 *
 *   int     25   half small (-5..256: the cache, a refcount and no
 *                allocation, as loop indexes and lengths), half large
 *   tuple   25   1 to 4 items taken from the window (2 half the time):
 *                argument packs, returned pairs, dict items
 *   str     20   2 to 24 bytes, hashed as a key lookup would
 *   float   10
 *   list    10   0 to 8 appends of window objects: a list built in a loop
 *   dict    10   1 to 6 items keyed by 32 interned names: keyword
 *                arguments, small records, an instance's attributes
 *
 * The mix is a choice, not a measurement: it follows the shape of CPython
 * allocation profiles (most objects are small ints, strs and tuples and die
 * young; floats in numeric code; fewer but larger lists and dicts), and is
 * fixed here so that runs compare. 1 object in 8 is kept; a kept object
 * stays in the window WINDOW * 8 operations on average (65,536), long
 * enough to be freed far from where it was made, and the containers' items
 * are window objects, so that counts of shared objects move up and down.
 * New objects only reference older ones: there are no cycles, and
 * reference counting alone frees everything (gc=none suffices).
 *
 * Nesting is bounded: an object's depth is 0 for a leaf and 1 + the
 * deepest item for a container, and a window object MAX_DEPTH deep is
 * replaced by None as an item. Without the bound the live set grows for as
 * long as the run lasts: a kept object references 1.3 window objects on
 * average, each of which may keep older ones alive after it left the
 * window, and chains back in time with more than one branch per link never
 * die out (scripts/soak found RSS growing 35 MiB a second). With it, what
 * the window keeps alive is at most MAX_DEPTH links from the window. The
 * random draws and the checksum are the same as without it (an item's
 * identity is not in the checksum).
 *
 * The checksum hashes each object's type and value (an int's value, a
 * float's bits, a str's hash, a container's size): it depends on the seed
 * and the thread only, never on the allocator, free lists or immortality.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

#define WINDOW 8192u
#define KEEP_ONE_IN 8u
#define NKEYS 32u
#define MAX_DEPTH 3u

typedef struct churn_shared {
  hl_object_t *keys[NKEYS];   /* interned names */
} churn_shared_t;

static const char alphabet[] =
    "the quick brown fox jumps over the lazy dog THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG "
    "0123456789_abcdefghijklmnopqrstuvwxyz";

static void churn_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  churn_shared_t *s = shared;
  if (!s) return;
  for (unsigned i = 0; i < NKEYS; i++) hl_xdecref(s->keys[i]);
  free(s);
}

static int churn_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  (void)c;
  churn_shared_t *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  for (unsigned i = 0; i < NKEYS; i++) {
    char name[16];
    snprintf(name, sizeof name, "attr_%u", i);
    if (!(s->keys[i] = hl_str_intern_cstr(name))) {
      snprintf(err, errlen, "churn: %s", hl_err_message());
      churn_teardown(s, NULL);
      return -ENOMEM;
    }
  }
  *shared = s;
  return 0;
}

/* The window: its objects, and each one's depth (see the top). */
typedef struct window {
  hl_object_t **obj;
  uint8_t *depth;
} window_t;

/* A window object, or None where the slot is still empty or its object
 * is MAX_DEPTH deep (borrowed); *depth becomes at least the item's depth
 * plus one. */
static inline hl_object_t *pick(const window_t *win, hl_rand_t *rng, unsigned *depth) {
  uint64_t i = hl_rand_below(rng, WINDOW);
  hl_object_t *o = win->obj[i];
  if (!o || win->depth[i] >= MAX_DEPTH) return hl_None;
  if (win->depth[i] + 1u > *depth) *depth = win->depth[i] + 1u;
  return o;
}

/* Makes one object of the mix; *value gets what the checksum folds and
 * *depth its depth. */
static hl_object_t *make_one(const churn_shared_t *s, const window_t *win, hl_rand_t *rng,
                             uint64_t *value, unsigned *depth) {
  *depth = 0;
  uint64_t r = hl_rand_next(rng);
  unsigned kind = (unsigned)(r % 100);
  r >>= 8;
  hl_object_t *o;
  if (kind < 25) {                         /* int */
    int64_t v = (r & 1) ? (int64_t)((r >> 1) % 262) - 5 : (int64_t)(r >> 1) + 1000;
    o = hl_int_new(v);
    *value = (uint64_t)v;
  } else if (kind < 50) {                  /* tuple */
    unsigned k = r % 10;
    size_t n = k < 2 ? 1 : k < 7 ? 2 : k < 9 ? 3 : 4;
    o = hl_tuple_new(n);
    if (o)
      for (size_t i = 0; i < n; i++) hl_tuple_set(o, i, hl_newref(pick(win, rng, depth)));
    *value = n;
  } else if (kind < 70) {                  /* str */
    size_t len = 2 + r % 23, off = (r >> 8) % (sizeof alphabet - 1 - len);
    o = hl_str_new(alphabet + off, len);
    *value = o ? (uint64_t)hl_hash(o) : 0;
  } else if (kind < 80) {                  /* float */
    double v = (double)(r >> 11) * 0x1p-20;
    o = hl_float_new(v);
    memcpy(value, &v, sizeof v);
  } else if (kind < 90) {                  /* list */
    size_t n = r % 9;
    o = hl_list_new(0);
    for (size_t i = 0; o && i < n; i++)
      if (hl_list_append(o, pick(win, rng, depth)) != 0) {
        hl_decref(o);
        o = NULL;
      }
    *value = n;
  } else {                                 /* dict */
    size_t n = 1 + r % 6;
    o = hl_dict_new();
    for (size_t i = 0; o && i < n; i++)
      if (hl_dict_set(o, s->keys[(r >> (8 + 5 * i)) % NKEYS], pick(win, rng, depth)) != 0) {
        hl_decref(o);
        o = NULL;
      }
    *value = o ? hl_dict_size(o) : 0;
  }
  *value = (*value << 3) ^ (kind < 25 ? 1 : kind < 50 ? 2 : kind < 70 ? 3 : kind < 80 ? 4 : kind < 90 ? 5 : 6);
  return o;
}

static void churn_work(hl_worker_t *w) {
  const churn_shared_t *s = w->shared;
  window_t win = {calloc(WINDOW, sizeof *win.obj), calloc(WINDOW, sizeof *win.depth)};
  if (!win.obj || !win.depth) hl_worker_fail(w, "out of memory for the window");
  hl_rand_t *rng = &w->rng;
  uint64_t ops = 0, sum = hl_fnv1a_u64(HL_FNV_OFFSET, w->index);

  hl_worker_begin(w);
  while (!w->error && hl_worker_tick(w, ops)) {
    uint64_t chunk = hl_worker_chunk(w, ops, 1024);
    for (uint64_t i = 0; i < chunk; i++) {
      HL_WORKLOAD_CHECKPOINT();
      uint64_t v;
      unsigned depth;
      hl_object_t *o = make_one(s, &win, rng, &v, &depth);
      if (HL_UNLIKELY(!o)) {
        hl_worker_fail(w, "out of memory making an object: %s", hl_err_message());
        break;
      }
      sum = hl_fnv1a_u64(sum, v);
      if (hl_rand_below(rng, KEEP_ONE_IN) == 0) {
        uint64_t k = hl_rand_below(rng, WINDOW);
        hl_object_t *old = win.obj[k];
        win.obj[k] = o;
        win.depth[k] = (uint8_t)depth;
        hl_xdecref(old);
      } else {
        hl_decref(o);
      }
      ops++;
    }
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
  /* untimed: the survivors go */
  for (unsigned i = 0; win.obj && i < WINDOW; i++) hl_xdecref(win.obj[i]);
  free(win.obj);
  free(win.depth);
}

const hl_workload_t hl_workload_churn = {
  .name = "churn",
  .summary = "ints, tuples, strs, floats, lists and dicts (25/25/20/10/10/10 %) made and "
             "dropped; 1 in 8 kept a while in a window of 8,192 live objects",
  .unit = "4,000,000 objects made per thread",
  .uses = HL_RUNNER_USES | HL_OBJ_USES,
  .ops_per_scale = 4000000,
  .setup = churn_setup,
  .work = churn_work,
  .teardown = churn_teardown,
};
