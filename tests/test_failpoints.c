/* Allocation failure, tried everywhere (CPython's _testcapi.set_nomemory
 * loop): each scenario runs once to count the object failpoints K it passes
 * (sync/hl_failpoint.h), then K times more with the i-th failing, i = 1..K.
 *
 * Each run starts a fresh runtime (so interned strings, the small-int cache
 * and the free lists are the same in every run, and the count repeats),
 * makes an anchor container that the scenario references, arms the
 * failpoint, runs the scenario, disarms. Then:
 *   - a scenario that failed returned -1 with HL_ERR_NOMEM, and a failure
 *     was injected; one that succeeded left no error behind (a failure the
 *     library absorbed, such as interning that could not grow its table,
 *     clears what it absorbed);
 *   - with the scenario's objects dropped and gc.garbage emptied, a full
 *     collection runs and the anchor's count is 1 again; the objects alive
 *     are those alive before the scenario;
 *   - the runtime stops with allocated == freed (no leak) and, with the
 *     pools, no block in use.
 * The CTest entries run it with the pools and the system allocator, free
 * lists on and off (an object served by a free list passes no failpoint:
 * with them off, every object does). Under the free-threaded counts, the
 * runtime's own allocations (HL_FAIL_RUNTIME) fail too, with threads
 * attached: deferred drops (`deferred`) and rc=biased's queues (`biasedq`,
 * `biaseda`): the runtime degrades and nothing is lost or freed twice.
 * usage: test_failpoints [SCENARIO]   (one scenario by name; default all)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <sched.h>

#include "hl_alloc.h"
#include "hl_failpoint.h"
#include "hl_gc.h"
#include "hl_sync.h"
#include "obj_check.h"

extern char **environ;

static hl_config_t cfg;
static const char *only;

#define N 24

/* ---- helpers: what a careful caller of the C API does ------------------------ */
static int append_new_int(hl_object_t *l, int64_t v) {
  hl_object_t *x = hl_int_new(v);
  if (!x) return -1;
  int r = hl_list_append(l, x);
  hl_decref(x);
  return r;
}

/* A ring of n instances of a class with slot 0 pointing to the next. */
static hl_object_t *ring(hl_type_t *cls, int n) {
  hl_object_t *first = hl_instance_new(cls);
  if (!first) return NULL;
  hl_object_t *prev = first;
  for (int i = 1; i < n; i++) {
    hl_object_t *o = hl_instance_new(cls);
    if (!o) {
      hl_decref(first);   /* an open chain: reference counting frees it */
      return NULL;
    }
    hl_slot_set(prev, 0, o);
    hl_decref(o);
    prev = o;
  }
  hl_slot_set(prev, 0, first);
  return first;
}

/* Errors that happen where nobody can return them (a finalizer, a weakref
 * callback) are recorded here, as CPython's "Exception ignored in". */
static hl_err_t ignored;
static hl_object_t *log_list;   /* what callbacks and finalizers append to */
static void note(int r) {
  if (r != 0 && !ignored) ignored = hl_err_kind();
}

/* ---- scenarios: 0, or -1 with the error set; each drops what it made ---- */
static int sc_list(hl_object_t *anchor) {
  hl_object_t *l = hl_list_new(0);
  if (!l) return -1;
  for (int i = 0; i < N; i++)
    if (append_new_int(l, 1000 + i) != 0) goto fail;
  if (hl_list_append(l, anchor) != 0) goto fail;
  hl_object_t *m = hl_list_new(5);   /* n items at once */
  if (!m) goto fail;
  int r = hl_list_set(m, 0, hl_newref(anchor));
  if (r == 0) r = hl_list_append(l, m);
  /* two lists compared: a snapshot of each */
  int eq = r == 0 ? hl_eq(l, m) : -1;
  hl_decref(m);
  if (eq != 0) goto fail;
  hl_object_t *p = hl_list_pop(l);
  if (!p) goto fail;
  hl_decref(p);
  hl_decref(l);
  return 0;
fail:
  hl_decref(l);
  return -1;
}

static int sc_dict(hl_object_t *anchor) {
  hl_object_t *d = hl_dict_new();
  if (!d) return -1;
  char name[32];
  for (int i = 0; i < N; i++) {
    hl_object_t *k = hl_int_new(5000 + i);
    if (!k) goto fail;
    hl_object_t *v = hl_float_new(i + 0.5);
    int r = v ? hl_dict_set(d, k, v) : -1;
    hl_xdecref(v);
    hl_decref(k);
    if (r != 0) goto fail;
    snprintf(name, sizeof name, "key%d", i);
    if (hl_dict_set_cstr(d, name, anchor) != 0) goto fail;
  }
  hl_object_t *k = hl_str_from("key3");
  if (!k) goto fail;
  int r = hl_dict_del(d, k);
  hl_decref(k);
  if (r != 0) goto fail;
  /* two dicts of one item compared (a snapshot of one, lookups in the other) */
  hl_object_t *e = hl_dict_new(), *f = hl_dict_new();
  r = e && f ? hl_dict_set_cstr(e, "key0", anchor) : -1;
  if (r == 0) r = hl_dict_set_cstr(f, "key0", anchor);
  int eq = r == 0 ? hl_eq(e, f) : -1;
  hl_xdecref(e);
  hl_xdecref(f);
  if (eq != 1) goto fail;
  hl_dict_clear(d);
  hl_decref(d);
  return 0;
fail:
  hl_decref(d);
  return -1;
}

static int sc_tuple(hl_object_t *anchor) {
  hl_object_t *t = hl_tuple_new(N);
  if (!t) return -1;
  for (int i = 0; i < N; i++) {   /* a half-built tuple dies on failure */
    hl_object_t *v = i % 3 ? hl_int_new(9000 + i) : hl_str_from("tuple item");
    if (!v) goto fail;
    hl_tuple_set(t, i, v);
  }
  hl_object_t *p = hl_tuple_pack(3, anchor, t, anchor);
  if (!p) goto fail;
  int64_t h = hl_hash(t);
  hl_decref(p);
  hl_decref(t);
  return h == -1 ? -1 : 0;
fail:
  hl_decref(t);
  return -1;
}

static int sc_instance(hl_object_t *anchor) {
  hl_type_t *C = hl_class_new("WithAttrs", 2, true, NULL);
  if (!C) return -1;
  hl_object_t *o = hl_instance_new(C);
  if (!o) return -1;
  hl_slot_set(o, 0, anchor);
  char name[32];
  for (int i = 0; i < N / 2; i++) {
    snprintf(name, sizeof name, "attr%d", i);
    hl_object_t *v = hl_int_new(7000 + i);
    int r = v ? hl_attr_set(o, name, v) : -1;
    hl_xdecref(v);
    if (r != 0) goto fail;
  }
  if (hl_attr_set(o, "anchor", anchor) != 0) goto fail;
  hl_object_t *v = hl_attr_get(o, "attr1");
  if (!v) goto fail;
  hl_decref(v);
  /* an instance that references itself: a cycle through its dict */
  if (hl_attr_set(o, "self", o) != 0) goto fail;
  hl_decref(o);
  return 0;
fail:
  hl_decref(o);
  return -1;
}

static void cb_log(hl_object_t *wr, void *arg) {
  (void)wr;
  note(append_new_int(log_list, 100000 + (intptr_t)arg));
}

static int sc_weakref(hl_object_t *anchor) {
  hl_type_t *C = hl_class_new("Referent", 1, true, NULL);
  if (!C || !(log_list = hl_list_new(0))) return -1;
  hl_object_t *wr[4] = {0};
  int r = -1;
  hl_object_t *a = hl_instance_new(C);
  if (!a) goto out;
  hl_slot_set(a, 0, anchor);
  if (!(wr[0] = hl_weakref_new(a, cb_log, (void *)1)) ||
      !(wr[1] = hl_proxy_new(a, cb_log, (void *)2))) {
    hl_decref(a);
    goto out;
  }
  /* a cycle with a weakref, freed by the collector */
  hl_object_t *b = ring(C, 2);
  if (!b) {
    hl_decref(a);
    goto out;
  }
  wr[2] = hl_weakref_new(b, cb_log, (void *)3);
  hl_decref(b);
  if (!wr[2]) {
    hl_decref(a);
    goto out;
  }
  ignored = HL_ERR_OK;
  hl_decref(a);   /* callbacks 2, 1 */
  hl_gc_collect(2);   /* callback 3 */
  if (ignored) {
    hl_err_set(ignored, "a weakref callback failed");
    goto out;
  }
  r = hl_weakref_get(wr[0]) == NULL && hl_weakref_get(wr[2]) == NULL &&
      hl_list_size(log_list) == 3 ? 0 : -1;
out:
  for (int i = 0; i < 4; i++) hl_xdecref(wr[i]);
  hl_clear(&log_list);
  return r;
}

static int sc_saveall(hl_object_t *anchor) {
  hl_type_t *C = hl_class_new("Node", 2, false, NULL);
  if (!C) return -1;
  hl_object_t *r = ring(C, 3);
  if (!r) return -1;
  hl_slot_set(r, 1, anchor);
  hl_decref(r);
  hl_gc_set_debug(HL_GC_DEBUG_SAVEALL);
  hl_err_clear();
  int64_t found = hl_gc_collect(2);
  hl_gc_set_debug(0);
  hl_object_t *g = hl_gc_garbage();
  if (!g) return -1;
  /* the collector saves what it can; one it could not save stays alive in
   * the oldest generation, and its error is the collection's */
  if (found != 3 || hl_list_size(g) != 3) {
    if (hl_err_kind() == HL_ERR_OK) hl_err_set(HL_ERR_VALUE, "saved %zu of %lld",
                                               hl_list_size(g), (long long)found);
    return -1;
  }
  /* introspection makes lists too */
  hl_object_t *refs = hl_gc_get_referrers(anchor);
  if (!refs) return -1;
  size_t nrefs = hl_list_size(refs);
  hl_decref(refs);
  hl_object_t *objs = hl_gc_get_objects(-1);
  if (!objs) return -1;
  hl_decref(objs);
  return nrefs >= 1 ? 0 : -1;
}

/* A cycle with a legacy finalizer: uncollectable, to gc.garbage. */
static void fin_legacy(hl_object_t *self) { (void)self; }
static int sc_legacy(hl_object_t *anchor) {
  hl_type_t *L = hl_class_new("Legacy", 2, false, fin_legacy);
  if (!L) return -1;
  hl_class_set_legacy_finalizer(L, true);
  hl_object_t *r = ring(L, 2);
  if (!r) return -1;
  hl_slot_set(r, 1, anchor);
  hl_object_t *first = r;   /* borrowed: the collector never frees it */
  hl_decref(r);
  hl_err_clear();
  hl_gc_collect(2);
  size_t saved_n = hl_list_size(hl_gc_garbage());
  hl_err_t e = hl_err_kind();
  /* the program breaks the cycle itself, saved or not */
  hl_slot_set(hl_slot_get(first, 0), 0, NULL);
  hl_list_clear(hl_gc_garbage());
  hl_object_t *refs = saved_n == 2 ? hl_gc_get_referents(anchor) : NULL;
  if (refs) hl_decref(refs);
  hl_err_t e2 = hl_err_kind();
  if (saved_n != 2 || !refs) {
    if (!e && !e2) hl_err_set(HL_ERR_VALUE, "%zu saved", saved_n);
    else if (!e2) hl_err_set(e, "not saved");
    return -1;
  }
  return 0;
}

static void fin_log(hl_object_t *self) {
  (void)self;
  note(append_new_int(log_list, 424242));
}

static hl_object_t *saved;
static void fin_resurrect(hl_object_t *self) {
  if (!saved) saved = hl_newref(self);
  note(append_new_int(log_list, 1));
}

static int sc_finalizer(hl_object_t *anchor) {
  hl_type_t *F = hl_class_new("WithDel", 1, false, fin_log);
  hl_type_t *R = hl_class_new("Resurrects", 1, false, fin_resurrect);
  if (!F || !R || !(log_list = hl_list_new(0))) return -1;
  ignored = HL_ERR_OK;
  int r = -1;
  hl_object_t *a = hl_instance_new(F);   /* dies by reference counting */
  if (!a) goto out;
  hl_slot_set(a, 0, anchor);
  hl_decref(a);
  hl_object_t *c = ring(F, 2);           /* dies in a collection */
  if (!c) goto out;
  hl_decref(c);
  hl_gc_collect(2);
  hl_object_t *z = ring(R, 2);           /* resurrected, then dies for good */
  if (!z) goto out;
  saved = NULL;
  hl_decref(z);
  hl_gc_collect(2);
  hl_clear(&saved);
  hl_gc_collect(2);
  if (ignored) {
    hl_err_set(ignored, "a finalizer failed");
    goto out;
  }
  r = hl_list_size(log_list) == 5 ? 0 : -1;
out:
  hl_clear(&saved);
  hl_clear(&log_list);
  return r;
}

/* interns: the scenario interns strings (dict keys, attribute names),
 * which the interned table keeps until the runtime stops. */
typedef struct {
  const char *name;
  int (*run)(hl_object_t *anchor);
  bool interns;
} scenario_t;

static const scenario_t scenarios[] = {
  {"list", sc_list, false},           {"dict", sc_dict, true},
  {"tuple", sc_tuple, false},         {"instance", sc_instance, true},
  {"weakref", sc_weakref, false},     {"saveall", sc_saveall, false},
  {"finalizer", sc_finalizer, false}, {"legacy", sc_legacy, false},
};

/* One run, with the at-th failpoint failing (0: none, counting only), or,
 * with seed != 0, each failing with probability RANDOM_P (several failures
 * in one run: error paths failing in turn). Returns the failpoints passed;
 * *failed: the scenario returned -1. */
#define RANDOM_P 0.1
#define RANDOM_RUNS 64
static uint64_t run_seeded(const scenario_t *s, uint64_t at, uint64_t seed, bool *failed) {
  char err[256];
  int rr = hl_runtime_init(&cfg, err, sizeof err);
  if (rr != 0) fprintf(stderr, "%s\n", err);
  assert_int_equal(rr, 0);
  hl_err_clear();
  hl_type_t *A = hl_class_new("Anchor", 1, false, NULL);
  assert_non_null(A);
  hl_object_t *anchor = hl_instance_new(A);
  assert_non_null(anchor);
  assert_non_null(hl_gc_garbage());   /* made before: the scenario may empty it, not make it */
  uint64_t live = obj_live();

  if (seed) hl_fail_random(HL_FAIL_OBJ, RANDOM_P, seed);
  else hl_fail_at(HL_FAIL_OBJ, at);
  int r = s->run(anchor);
  uint64_t passed = hl_fail_count(HL_FAIL_OBJ), injected = hl_fail_injected(HL_FAIL_OBJ);
  hl_fail_reset();

  if (r != 0) {
    if (!injected || hl_err_kind() != HL_ERR_NOMEM)
      fail_msg("%s, failpoint %llu (seed %llu): failed (%s) with %llu injected", s->name,
               (unsigned long long)at, (unsigned long long)seed, hl_err_message(), (unsigned long long)injected);
  } else if (hl_err_kind() != HL_ERR_OK) {
    fail_msg("%s, failpoint %llu (seed %llu): succeeded, but an error is left: %s", s->name,
             (unsigned long long)at, (unsigned long long)seed, hl_err_message());
  }
  *failed = r != 0;
  hl_err_clear();
  hl_gc_set_debug(0);
  hl_object_t *g = hl_gc_garbage();
  assert_non_null(g);
  hl_list_clear(g);
  hl_gc_collect(2);
  if (hl_refcount(anchor) != 1 && !cfg.immortal)
    fail_msg("%s, failpoint %llu (seed %llu): the anchor's count is %u, not 1", s->name,
             (unsigned long long)at, (unsigned long long)seed, hl_refcount(anchor));
  uint64_t now = obj_live();
  if (s->interns ? now < live : now != live)
    fail_msg("%s, failpoint %llu (seed %llu): %llu objects alive, %llu before", s->name,
             (unsigned long long)at, (unsigned long long)seed, (unsigned long long)now, (unsigned long long)live);
  hl_decref(anchor);
  obj_fini_nothing_left(&cfg);
  return passed;
}

/* After a failed assertion, the next test starts from a stopped runtime. */
static int teardown(void **state) {
  (void)state;
  hl_fail_reset();
  if (hl_runtime_ready()) hl_runtime_fini();
  return 0;
}

static uint64_t run_once(const scenario_t *s, uint64_t at, bool *failed) {
  return run_seeded(s, at, 0, failed);
}

static void test_every_failpoint(void **state) {
  const scenario_t *s = *state;
  bool failed;
  uint64_t k = run_once(s, 0, &failed);
  assert_false(failed);
  assert_true(k > 0);
  uint64_t nfailed = 0;
  for (uint64_t i = 1; i <= k; i++) {
    uint64_t passed = run_once(s, i, &failed);
    assert_true(passed >= i);   /* the run reached its failpoint */
    nfailed += failed;
  }
  /* one past the last: nothing fails, the count was exact */
  assert_int_equal(run_once(s, k + 1, &failed), k);
  assert_false(failed);
  /* random failures, several a run */
  uint64_t rfailed = 0;
  for (uint64_t seed = 1; seed <= RANDOM_RUNS; seed++) {
    run_seeded(s, 0, seed, &failed);
    rfailed += failed;
  }
  printf("  %-10s %4llu failpoints, %4llu made it fail, %4llu absorbed; random: %llu of %d failed\n",
         s->name, (unsigned long long)k, (unsigned long long)nfailed,
         (unsigned long long)(k - nfailed), (unsigned long long)rfailed, RANDOM_RUNS);
}

/* hl_runtime_init itself (the singletons' tables: the interned strings'
 * dict, the empty tuple): each failpoint fails it with -ENOMEM and a
 * message; then it starts as if the failure had not happened, and stops
 * with nothing left (the pools' blocks: the object counts start again at
 * each start, so they cannot see what a failed start left). */
static void test_runtime_init(void **state) {
  (void)state;
  char err[256];
  hl_fail_at(HL_FAIL_OBJ, 0);
  assert_int_equal(hl_runtime_init(&cfg, err, sizeof err), 0);
  uint64_t k = hl_fail_count(HL_FAIL_OBJ);
  hl_fail_reset();
  obj_fini_nothing_left(&cfg);
  assert_true(k > 0);
  for (uint64_t i = 1; i <= k; i++) {
    hl_fail_at(HL_FAIL_OBJ, i);
    err[0] = '\0';
    int r = hl_runtime_init(&cfg, err, sizeof err);
    hl_fail_reset();
    if (r != -ENOMEM || !strstr(err, "out of memory"))
      fail_msg("failpoint %llu: hl_runtime_init returned %d (%s)", (unsigned long long)i, r, err);
    assert_false(hl_runtime_ready());
    hl_err_clear();
    r = hl_runtime_init(&cfg, err, sizeof err);
    if (r != 0) fail_msg("failpoint %llu, then: %s", (unsigned long long)i, err);
    hl_object_t *l = hl_list_new(2);   /* works */
    assert_non_null(l);
    hl_decref(l);
    obj_fini_nothing_left(&cfg);
  }
  printf("  %-10s %4llu failpoints\n", "init", (unsigned long long)k);
}

/* Without a GIL, what a shared list gives up is dropped after a QSBR grace
 * period, in batches the runtime allocates (gc/shared.c). A decrement
 * cannot fail: with no memory for a batch (HL_FAIL_RUNTIME, every point
 * failing) the drop waits for the readers on the spot instead, and nothing
 * is lost or leaked. (It aborted before: hl_die.) */
static void *reader_main(void *arg) {
  hl_object_t *l = arg;
  hl_thread_attach();
  hl_object_t *x = hl_list_get_ref(l, 0);   /* another thread's read: l is shared */
  hl_xdecref(x);
  hl_thread_detach();
  return NULL;
}

static void test_deferred_drops_without_memory(void **state) {
  (void)state;
  if (cfg.rc == HL_RC_GIL) skip();   /* no deferred drops under the GIL */
  char err[256];
  assert_int_equal(hl_runtime_init(&cfg, err, sizeof err), 0);
  hl_thread_attach();
  hl_object_t *l = hl_list_new(0);
  for (int i = 0; i < 64; i++) {
    hl_object_t *f = hl_float_new(i + 0.5);
    hl_list_append(l, f);
    hl_decref(f);
  }
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, reader_main, l), 0);
  hl_thread_block_begin();   /* the reader's detach waits for our quiescent state */
  assert_int_equal(pthread_join(t, NULL), 0);
  hl_thread_block_end();
  hl_fail_random(HL_FAIL_RUNTIME, 1.0, 1);
  for (int round = 0; round < 4; round++)
    for (size_t i = 0; i < 64; i++) {
      hl_object_t *f = hl_float_new((double)i * round);
      assert_int_equal(hl_list_set(l, i, f), 0);   /* steals f; the old item's drop is deferred */
      hl_checkpoint();
    }
  uint64_t failed = hl_fail_injected(HL_FAIL_RUNTIME);
  hl_fail_reset();
  assert_true(failed > 0);                          /* the path was taken */
  for (size_t i = 0; i < 64; i++) assert_true(hl_float_value(hl_list_get(l, i)) == (double)i * 3);
  hl_decref(l);
  hl_thread_detach();
  obj_fini_nothing_left(&cfg);
  printf("  %-10s %4llu batches refused, drops done on the spot\n", "deferred",
         (unsigned long long)failed);
}

/* rc=biased, another thread's decrement queues an object to its owner
 * (gc/rc_biased.c): the owner here stays blocked, so its ring (1,024
 * cells) fills up, and with no memory to grow the overflow (HL_FAIL_RUNTIME,
 * every point failing) the decrementing thread merges the object itself
 * with the world stopped (hl_die before). First two attached threads drop
 * at once (two stoppers take turns), then a thread that is not attached
 * drops more than a ring holds (it stops the world too). Each object is
 * then held once, by us: its count is exactly 1, and our drops free each
 * exactly once (a finalizer counts). */
#define QN 4096
static hl_object_t *qobjs[QN];
static uint64_t q_deaths;
static void fin_count(hl_object_t *self) {
  (void)self;
  hl_atomic_add_relaxed_u64(&q_deaths, 1);
}

typedef struct { size_t from, to; bool attach; } span_t;
static uint32_t q_attached, q_go;
static void *dropper_main(void *arg) {
  const span_t *sp = arg;
  if (!sp->attach) {
    for (size_t i = sp->from; i < sp->to; i++) hl_decref(qobjs[i]);
    hl_freelists_clear();   /* folds this thread's counters, which no detach does */
    return NULL;
  }
  hl_thread_attach();   /* before the failpoints are armed: with a queue of its own */
  hl_atomic_add_relaxed_u32(&q_attached, 1);
  hl_thread_block_begin();
  while (!hl_atomic_load_acquire_u32(&q_go)) sched_yield();
  hl_thread_block_end();
  for (size_t i = sp->from; i < sp->to; i++) {
    hl_decref(qobjs[i]);   /* another thread's: queued to its owner, or merged stopped */
    if (i % 64 == 0) hl_checkpoint();
  }
  hl_thread_detach();
  return NULL;
}

static void test_biased_queue_without_memory(void **state) {
  (void)state;
  if (cfg.rc != HL_RC_BIASED) skip();
  char err[256];
  assert_int_equal(hl_runtime_init(&cfg, err, sizeof err), 0);
  hl_thread_attach();
  hl_type_t *C = hl_class_new("Queued", 1, false, fin_count);
  assert_non_null(C);
  uint64_t live = obj_live();
  for (size_t i = 0; i < QN; i++) {
    qobjs[i] = hl_instance_new(C);
    assert_non_null(qobjs[i]);
    hl_incref(qobjs[i]);   /* ours, and the droppers' */
  }
  q_deaths = 0;
  hl_obj_stats_t before, after;
  hl_obj_stats(&before);
  span_t sp[3] = {{0, QN / 4, true}, {QN / 4, QN / 2, true}, {QN / 2, QN, false}};
  pthread_t t[3];
  q_attached = q_go = 0;
  hl_thread_block_begin();   /* no checkpoint of ours drains the queue; stopped, as far as a stop goes */
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, dropper_main, &sp[i]), 0);
  while (hl_atomic_load_relaxed_u32(&q_attached) < 2) sched_yield();
  hl_fail_random(HL_FAIL_RUNTIME, 1.0, 1);
  hl_atomic_store_release_u32(&q_go, 1);
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
  uint64_t failed_attached = hl_fail_injected(HL_FAIL_RUNTIME);
  assert_int_equal(pthread_create(&t[2], NULL, dropper_main, &sp[2]), 0);   /* 2,048 > a ring */
  assert_int_equal(pthread_join(t[2], NULL), 0);
  hl_thread_block_end();
  uint64_t failed = hl_fail_injected(HL_FAIL_RUNTIME);
  assert_true(failed > failed_attached);   /* the thread not attached stopped the world too */
  hl_fail_reset();
  hl_rc_merge_queued();      /* what is still queued to us */
  hl_obj_stats(&after);
  uint64_t stopped = after.rc_merges_stopped - before.rc_merges_stopped;
  assert_true(failed > 0);   /* the overflow could not grow ... */
  assert_int_equal(stopped, failed);   /* ... and each such object was merged with the world stopped */
  assert_int_equal(after.rc_merges_done - before.rc_merges_done, QN);   /* each merged once */
  assert_int_equal(hl_atomic_load_relaxed_u64(&q_deaths), 0);
  for (size_t i = 0; i < QN; i++) assert_int_equal(hl_refcount(qobjs[i]), 1);
  for (size_t i = 0; i < QN; i++) hl_decref(qobjs[i]);
  assert_int_equal(hl_atomic_load_relaxed_u64(&q_deaths), QN);
  assert_int_equal(obj_live(), live);
  hl_thread_detach();
  obj_fini_nothing_left(&cfg);
  printf("  %-10s %4llu overflows refused (%llu by a thread not attached), %llu objects merged "
         "with the world stopped\n", "biasedq", (unsigned long long)failed,
         (unsigned long long)(failed - failed_attached), (unsigned long long)stopped);
}

/* rc=biased, a thread attaches and its queue cannot be allocated
 * (HL_FAIL_RUNTIME): it runs owning nothing, as a thread with no index
 * (hl_die before). Threads attach one by one, each staying attached, until
 * one gets an index whose queue was never allocated (earlier tests' indexes
 * keep theirs) and so owns nothing. Then that thread N and a thread O that
 * owns its objects trade references: N's objects belong to nobody, its
 * cycle is found by a collection (its containers are tracked in the shared
 * list), O drops N's objects and N drops O's (queued to O, merged at O's
 * checkpoint); every object is freed once and nothing is left. */
#define AN 32
#define AITEMS 200
static uint32_t a_phase;        /* the test's steps, in order */
static hl_object_t *a_list;     /* made by N */
static uint64_t a_cycle_dead;
static void fin_cycle(hl_object_t *self) {
  (void)self;
  hl_atomic_add_relaxed_u64(&a_cycle_dead, 1);
}

/* Waits, blocked (so that a stop of the world never waits for us), for phase p. */
static void wait_phase(uint32_t p) {
  hl_thread_block_begin();
  while (hl_atomic_load_acquire_u32(&a_phase) < p) sched_yield();
  hl_thread_block_end();
}
static void set_phase(uint32_t p) { hl_atomic_store_release_u32(&a_phase, p); }

typedef struct { uint32_t ready; bool ownerless; } att_t;

static void *attacher_main(void *arg) {
  att_t *a = arg;
  hl_thread_attach();
  hl_object_t *probe = hl_float_new(1.5);
  assert_non_null(probe);
  a->ownerless = hl_rc_self == HL_RC_NOBODY;
  assert_true(a->ownerless == (probe->owner == HL_OWNER_NONE));
  hl_decref(probe);
  hl_atomic_store_release_u32(&a->ready, 1);
  if (!a->ownerless) {         /* holds its index until the end */
    wait_phase(6);
    hl_thread_detach();
    return NULL;
  }
  /* N: a list of floats, and a cycle, all belonging to nobody */
  wait_phase(2);
  hl_type_t *C = hl_class_new("Cycle", 1, false, fin_cycle);
  assert_non_null(C);
  hl_object_t *x = hl_instance_new(C), *y = hl_instance_new(C);
  assert_true(x && y && x->owner == HL_OWNER_NONE && y->owner == HL_OWNER_NONE);
  hl_slot_set(x, 0, y);
  hl_slot_set(y, 0, x);
  hl_decref(y);
  hl_decref(x);
  hl_gc_collect(2);
  assert_int_equal(hl_atomic_load_relaxed_u64(&a_cycle_dead), 2);
  hl_object_t *l = hl_list_new(0);
  assert_true(l && l->owner == HL_OWNER_NONE);
  for (int i = 0; i < AITEMS; i++) assert_int_equal(append_new_int(l, 1000000 + i), 0);
  a_list = l;
  set_phase(3);
  wait_phase(4);
  /* O's objects are in the list now: our drops queue them to O */
  assert_int_equal(hl_list_clear(l), 0);
  hl_decref(l);
  a_list = NULL;
  set_phase(5);
  hl_thread_detach();
  return NULL;
}

static void *owner_main(void *arg) {
  att_t *a = arg;
  hl_thread_attach();
  a->ownerless = hl_rc_self == HL_RC_NOBODY;
  hl_atomic_store_release_u32(&a->ready, 1);
  wait_phase(3);
  hl_object_t *l = a_list;
  for (size_t i = 0; i < AITEMS; i++) {   /* N's objects, read and dropped here */
    hl_object_t *v = hl_list_get_ref(l, i);
    assert_non_null(v);
    assert_int_equal(v->owner, HL_OWNER_NONE);
    hl_decref(v);
  }
  for (int i = 0; i < AITEMS; i++) {      /* ours, into N's list */
    hl_object_t *f = hl_float_new(i + 0.25);
    assert_true(f && f->owner != HL_OWNER_NONE);
    assert_int_equal(hl_list_append(l, f), 0);
    hl_decref(f);
  }
  set_phase(4);
  wait_phase(5);
  hl_rc_merge_queued();   /* what N queued to us: our floats, freed here */
  set_phase(6);
  hl_thread_detach();
  return NULL;
}

static void test_biased_attach_without_memory(void **state) {
  (void)state;
  if (cfg.rc != HL_RC_BIASED) skip();
  char err[256];
  assert_int_equal(hl_runtime_init(&cfg, err, sizeof err), 0);
  uint64_t live = obj_live();
  hl_obj_stats_t before, after;
  hl_obj_stats(&before);
  set_phase(0);
  a_cycle_dead = 0;
  static att_t att[AN + 1];
  pthread_t t[AN + 1];
  memset(att, 0, sizeof att);
  int n = 0, nobody = -1;
  hl_fail_random(HL_FAIL_RUNTIME, 1.0, 1);
  while (nobody < 0 && n < AN) {
    assert_int_equal(pthread_create(&t[n], NULL, attacher_main, &att[n]), 0);
    while (!hl_atomic_load_acquire_u32(&att[n].ready)) sched_yield();
    if (att[n].ownerless) nobody = n;
    n++;
  }
  uint64_t failed = hl_fail_injected(HL_FAIL_RUNTIME);
  hl_fail_reset();
  assert_true(nobody >= 0);
  assert_true(failed > 0);
  /* O: a fresh index too, its queue allocated now */
  assert_int_equal(pthread_create(&t[n], NULL, owner_main, &att[n]), 0);
  while (!hl_atomic_load_acquire_u32(&att[n].ready)) sched_yield();
  assert_false(att[n].ownerless);
  n++;
  set_phase(2);
  for (int i = 0; i < n; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
  hl_obj_stats(&after);
  assert_true(after.rc_threads_ownerless - before.rc_threads_ownerless >= 1);
  assert_true(after.rc_merges_queued - before.rc_merges_queued >= AITEMS);   /* N's drops, queued to O */
  assert_int_equal(hl_atomic_load_relaxed_u64(&a_cycle_dead), 2);
  assert_int_equal(obj_live(), live);
  obj_fini_nothing_left(&cfg);
  printf("  %-10s %d thread(s) attached, the last owning nothing\n", "biaseda", nobody + 1);
}

/* The switch itself: counts, one-shot, random with a seed, reset. */
static void test_switch(void **state) {
  (void)state;
  assert_false(hl_fail_hit(HL_FAIL_OBJ));
  hl_fail_at(HL_FAIL_OBJ, 3);
  assert_false(hl_fail_hit(HL_FAIL_OBJ));
  assert_false(hl_fail_hit(HL_FAIL_MMAP));   /* another kind: not armed */
  assert_false(hl_fail_hit(HL_FAIL_OBJ));
  assert_true(hl_fail_hit(HL_FAIL_OBJ));
  assert_false(hl_fail_hit(HL_FAIL_OBJ));    /* once */
  assert_int_equal(hl_fail_count(HL_FAIL_OBJ), 4);
  assert_int_equal(hl_fail_injected(HL_FAIL_OBJ), 1);
  hl_fail_random(HL_FAIL_MMAP, 0.5, 42);
  int hits = 0;
  for (int i = 0; i < 1000; i++) hits += hl_fail_hit(HL_FAIL_MMAP);
  assert_true(hits > 400 && hits < 600);
  hl_fail_random(HL_FAIL_MMAP, 0.5, 42);
  int again = 0;
  for (int i = 0; i < 1000; i++) again += hl_fail_hit(HL_FAIL_MMAP);
  assert_int_equal(hits, again);              /* deterministic for a seed */
  hl_fail_reset();
  assert_false(hl_fail_hit(HL_FAIL_OBJ));
  assert_int_equal(hl_fail_count(HL_FAIL_OBJ), 0);
  /* the environment: bad values are errors naming the variable */
  char err[256];
  setenv("HEAPLAB_FAIL_AT", "0", 1);
  assert_int_equal(hl_fail_from_env(err, sizeof err), -1);
  assert_non_null(strstr(err, "HEAPLAB_FAIL_AT=0"));
  setenv("HEAPLAB_FAIL_AT", "2", 1);
  setenv("HEAPLAB_FAIL_KIND", "disk", 1);
  assert_int_equal(hl_fail_from_env(err, sizeof err), -1);
  assert_non_null(strstr(err, "HEAPLAB_FAIL_KIND=disk"));
  setenv("HEAPLAB_FAIL_KIND", "mmap", 1);
  assert_int_equal(hl_fail_from_env(err, sizeof err), 0);
  assert_false(hl_fail_hit(HL_FAIL_MMAP));
  assert_true(hl_fail_hit(HL_FAIL_MMAP));
  hl_fail_reset();
  setenv("HEAPLAB_FAIL_KIND", "runtime", 1);
  assert_int_equal(hl_fail_from_env(err, sizeof err), 0);
  assert_false(hl_fail_hit(HL_FAIL_RUNTIME));
  assert_true(hl_fail_hit(HL_FAIL_RUNTIME));
  unsetenv("HEAPLAB_FAIL_AT");
  setenv("HEAPLAB_FAIL_P", "1.5", 1);
  assert_int_equal(hl_fail_from_env(err, sizeof err), -1);
  assert_non_null(strstr(err, "HEAPLAB_FAIL_P=1.5"));
  unsetenv("HEAPLAB_FAIL_P");
  unsetenv("HEAPLAB_FAIL_KIND");
  hl_fail_reset();
}

int main(int argc, char **argv) {
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  if (argc > 1) only = argv[1];
  printf("test_failpoints: alloc=%s freelists=%s immortal=%s\n",
         hl_config_choice_name(HL_OPT_ALLOC, cfg.alloc), cfg.freelists ? "on" : "off",
         cfg.immortal ? "on" : "off");
  struct CMUnitTest tests[HL_ARRAY_LEN(scenarios) + 5];
  size_t n = 0;
  if (!only) tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_switch);
  if (!only || strcmp(only, "init") == 0)
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_teardown(test_runtime_init, teardown);
  if (!only || strcmp(only, "deferred") == 0)
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_teardown(test_deferred_drops_without_memory,
                                                              teardown);
  if (!only || strcmp(only, "biasedq") == 0)
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_teardown(test_biased_queue_without_memory,
                                                              teardown);
  if (!only || strcmp(only, "biaseda") == 0)
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_teardown(test_biased_attach_without_memory,
                                                              teardown);
  for (size_t i = 0; i < HL_ARRAY_LEN(scenarios); i++) {
    if (only && strcmp(only, scenarios[i].name) != 0) continue;
    tests[n++] = (struct CMUnitTest){scenarios[i].name, test_every_failpoint, NULL, teardown,
                                     (void *)&scenarios[i]};
  }
  return _cmocka_run_group_tests("failpoints", tests, n, NULL, NULL);
}
