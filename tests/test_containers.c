/* Lists and dicts changed by many threads at once, checked against a
 * sequential model (gc/types/list.c, gc/types/dict.c, gc/shared.c).
 *
 * The refcount mode comes from HEAPLAB_RC (CTest runs every mode; under
 * rc=gil the threads hold the GIL). Every thread runs a seeded sequence of
 * operations on containers that all threads share:
 *   - a dict D: each thread owns the keys k with k % THREADS == its id, and
 *     sets, deletes and reads them; a model (a plain array) says what each
 *     of its keys holds, and every read of its own key must match it
 *     exactly; reads of other threads' keys must find either nothing or a
 *     value made for that key (values encode their key and a version);
 *   - a list L of fixed size: each thread owns the slots i % THREADS == id,
 *     sets and reads them the same way;
 *   - its own growing list G[id], appended to and popped from by its owner
 *     only (model: the exact contents), read at random indexes by the other
 *     threads while it grows and shrinks: an item read at index i encodes i;
 *   - a channel list C: threads append tokens and pop tokens; every token
 *     appended is popped exactly once (counted at the end).
 * Values are fresh ints (outside the small-int cache) each time, so the
 * replaced ones die while other threads may be reading them. At the end
 * each thread checks its part of every container against its model, and
 * after the runtime stops every object has been freed.
 *
 * usage: test_containers [THREADS] [ITER]   (defaults: 4, 100000)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_alloc.h"
#include "hl_gc.h"
#include "hl_sync.h"
#include "obj_check.h"

#define CHECK(c) do { if (!(c)) hl_die("check failed: %s", #c); } while (0)
#define MAX_THREADS 64
#define NKEYS 512          /* dict keys, all threads together */
#define NSLOTS 256         /* slots of L */

extern char **environ;
static hl_config_t cfg;
static unsigned g_threads = 4;
static unsigned g_iter = 100000;

static hl_object_t *D, *L, *C, *G[MAX_THREADS];
static hl_object_t *keys[NKEYS];
static pthread_barrier_t barrier;
static uint64_t tokens_in, tokens_out;   /* appended to C, popped from C */

/* value = key << 24 | version (version < 2^24): above the small-int cache */
static int64_t val(uint64_t key, uint64_t version) {
  return (int64_t)((key + 1) << 24 | (version & 0xffffff));
}
static uint64_t val_key(int64_t v) { return ((uint64_t)v >> 24) - 1; }

static void wait_all(void) {
  hl_thread_block_begin();
  pthread_barrier_wait(&barrier);
  hl_thread_block_end();
}

typedef struct worker { unsigned id; } worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  unsigned id = w->id, T = g_threads;
  hl_thread_attach();
  hl_rand_t rng;
  hl_rand_seed(&rng, 7919u * id + 1);
  /* models: what our keys, our slots and our list hold (-1: absent) */
  int64_t dmodel[NKEYS], lmodel[NSLOTS];
  for (unsigned k = 0; k < NKEYS; k++) dmodel[k] = -1;
  for (unsigned i = 0; i < NSLOTS; i++) lmodel[i] = -1;   /* None until set */
  size_t glen = 0;
  uint64_t version = 0, pushed = 0, popped = 0;
  G[id] = hl_list_new(0);   /* made by us: we own it */
  CHECK(G[id]);
  wait_all();
  for (unsigned n = 0; n < g_iter; n++) {
    uint64_t r = hl_rand_next(&rng);
    unsigned op = (unsigned)(r % 100);
    r >>= 8;
    if (op < 20) {                                  /* D: set one of ours */
      unsigned k = (unsigned)(r % (NKEYS / T)) * T + id;
      if (k >= NKEYS) k = id;
      int64_t v = val(k, ++version);
      hl_object_t *o = hl_int_new(v);
      CHECK(o && hl_dict_set(D, keys[k], o) == 0);
      hl_decref(o);
      dmodel[k] = v;
    } else if (op < 27) {                           /* D: delete one of ours */
      unsigned k = (unsigned)(r % (NKEYS / T)) * T + id;
      if (k >= NKEYS) k = id;
      int rc = hl_dict_del(D, keys[k]);
      CHECK(rc == (dmodel[k] >= 0 ? 0 : -1));
      if (rc != 0) {
        CHECK(hl_err_kind() == HL_ERR_KEY);
        hl_err_clear();
      }
      dmodel[k] = -1;
    } else if (op < 45) {                           /* D: read any key */
      unsigned k = (unsigned)(r % NKEYS);
      hl_object_t *o = hl_dict_get_ref(D, keys[k]);
      if (k % T == id) {
        CHECK(o ? hl_int_value(o) == dmodel[k] : dmodel[k] < 0);
      } else if (o) {
        CHECK(val_key(hl_int_value(o)) == k);
      }
      if (!o) {
        CHECK(hl_err_kind() == HL_ERR_KEY);
        hl_err_clear();
      }
      hl_xdecref(o);
    } else if (op < 55) {                           /* L: set one of our slots */
      unsigned i = (unsigned)(r % (NSLOTS / T)) * T + id;
      if (i >= NSLOTS) i = id;
      int64_t v = val(NKEYS + i, ++version);
      hl_object_t *o = hl_int_new(v);
      CHECK(o && hl_list_set(L, i, o) == 0);   /* steals o */
      lmodel[i] = v;
    } else if (op < 68) {                           /* L: read any slot */
      unsigned i = (unsigned)(r % NSLOTS);
      hl_object_t *o = hl_list_get_ref(L, i);
      CHECK(o);
      if (i % T == id) CHECK(lmodel[i] < 0 ? o == hl_None : hl_int_value(o) == lmodel[i]);
      else CHECK(o == hl_None || val_key(hl_int_value(o)) == NKEYS + i);
      hl_decref(o);
    } else if (op < 76) {                           /* G[id]: append */
      hl_object_t *o = hl_int_new(val(glen, ++version));
      CHECK(o && hl_list_append(G[id], o) == 0);
      hl_decref(o);
      glen++;
    } else if (op < 82) {                           /* G[id]: pop */
      hl_object_t *o = hl_list_pop(G[id]);
      if (glen == 0) {
        CHECK(!o && hl_err_kind() == HL_ERR_INDEX);
        hl_err_clear();
      } else {
        glen--;
        CHECK(o && val_key(hl_int_value(o)) == glen);
        hl_decref(o);
      }
    } else if (op < 92) {                           /* G[other]: read */
      unsigned t = (unsigned)(r % T);
      size_t len = hl_list_size(G[t]);
      size_t i = len ? (size_t)((r >> 16) % len) : 0;
      hl_object_t *o = hl_list_get_ref(G[t], i);
      if (o) CHECK(val_key(hl_int_value(o)) == i);   /* it may have shrunk meanwhile */
      else {
        CHECK(hl_err_kind() == HL_ERR_INDEX);
        hl_err_clear();
      }
      hl_xdecref(o);
    } else if (op < 96) {                           /* C: a token in */
      hl_object_t *o = hl_int_new(val(0, ++version));
      CHECK(o && hl_list_append(C, o) == 0);
      hl_decref(o);
      pushed++;
    } else {                                        /* C: a token out */
      hl_object_t *o = hl_list_pop(C);
      if (o) {
        popped++;
        hl_decref(o);
      } else {
        CHECK(hl_err_kind() == HL_ERR_INDEX);
        hl_err_clear();
      }
    }
    if (n % 64 == 0) hl_checkpoint();
  }
  hl_atomic_faa_u64(&tokens_in, pushed);
  hl_atomic_faa_u64(&tokens_out, popped);
  wait_all();
  /* Everyone has stopped: our part of each container is the model's. */
  for (unsigned k = id; k < NKEYS; k += T) {
    hl_object_t *o = hl_dict_get_ref(D, keys[k]);
    CHECK(o ? hl_int_value(o) == dmodel[k] : dmodel[k] < 0);
    if (!o) hl_err_clear();
    hl_xdecref(o);
  }
  for (unsigned i = id; i < NSLOTS; i += T) {
    hl_object_t *o = hl_list_get_ref(L, i);
    CHECK(o && (lmodel[i] < 0 ? o == hl_None : hl_int_value(o) == lmodel[i]));
    hl_decref(o);
  }
  CHECK(hl_list_size(G[id]) == glen);
  for (size_t i = 0; i < glen; i++) {
    hl_object_t *o = hl_list_get_ref(G[id], i);
    CHECK(o && val_key(hl_int_value(o)) == i);
    hl_decref(o);
  }
  wait_all();
  hl_thread_detach();
  return NULL;
}

static void test_containers(void **s) {
  (void)s;
  char err[256];
  assert_int_equal(hl_runtime_init(&cfg, err, sizeof err), 0);
  hl_gil_init(cfg.rc == HL_RC_GIL, 100);
  D = hl_dict_new();
  L = hl_list_new(NSLOTS);
  C = hl_list_new(0);
  assert_non_null(D);
  assert_non_null(L);
  assert_non_null(C);
  for (unsigned k = 0; k < NKEYS; k++) assert_non_null(keys[k] = hl_int_new(1000 + k));
  tokens_in = tokens_out = 0;
  pthread_barrier_init(&barrier, NULL, g_threads);
  pthread_t t[MAX_THREADS];
  worker_t w[MAX_THREADS];
  for (unsigned i = 0; i < g_threads; i++) {
    w[i].id = i;
    assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
  }
  for (unsigned i = 0; i < g_threads; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&barrier);
  /* every token in was popped, or is still in C */
  assert_int_equal(tokens_in - tokens_out, hl_list_size(C));
  hl_decref(D);
  hl_decref(L);
  hl_decref(C);
  for (unsigned i = 0; i < g_threads; i++) hl_decref(G[i]);
  for (unsigned k = 0; k < NKEYS; k++) hl_decref(keys[k]);
  hl_gil_init(false, 5000);
  obj_fini_nothing_left(&cfg);
}

int main(int argc, char **argv) {
  if (argc > 1) g_threads = (unsigned)atoi(argv[1]);
  if (argc > 2) g_iter = (unsigned)atoi(argv[2]);
  if (g_threads < 1 || g_threads > MAX_THREADS) g_threads = 4;
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  cfg.gc = HL_GC_NONE;
  cfg.threads = 2 * g_threads;   /* the pools take their lock with more than one thread */
  if (hl_alloc_init(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_containers)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
