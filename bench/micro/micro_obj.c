/* Micro-benchmarks of the object layer (gc/): one incref+decref, and one
 * object of each type made and dropped. Their CPython twins, with the same
 * names after "cpython_", are in micro_cpython.c, so that one run prints
 * both and scripts/report.py sets them side by side.
 *
 * The runtime is set up by the shim from HEAPLAB_* (freelists, immortal,
 * the allocator). Immortality is one process-wide mode (hl_rc_config), so
 * the immortal=on variants of incref+decref restart the runtime with it on
 * for their run and restore the configured one after.
 *
 * Each made object is dropped in the same iteration: with free lists on,
 * the float, tuple, list and dict micros measure a free-list pop and push
 * (as CPython's do); with HEAPLAB_FREELISTS=off, the object allocator.
 */
#include <stdio.h>
#include <stdlib.h>

#include "hl_gc.h"
#include "hl_sync.h"
#include "micro.h"

const hl_config_t *hl_micro_config;

static inline void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* Restarts the runtime with immortal set as asked; no object may be alive. */
static bool runtime_restart(bool immortal) {
  hl_config_t c = *hl_micro_config;
  c.immortal = immortal;
  char err[256];
  hl_runtime_fini();
  if (hl_runtime_init(&c, err, sizeof err) != 0) {
    fprintf(stderr, "heaplab-micro: %s\n", err);
    return false;
  }
  return true;
}

static void runtime_restore(void *state) {
  (void)state;
  runtime_restart(hl_micro_config->immortal);
}

/* ---- incref + decref ----
 * The empty asm between them keeps the compiler from folding the pair into
 * nothing: the count is stored and reloaded, as when code runs between. */
static hl_object_t *rc_obj;

static void *rc_setup_common(bool immortal, bool immortal_obj) {
  if (!runtime_restart(immortal)) return NULL;
  rc_obj = immortal_obj ? hl_int_new(7) : hl_float_new(1.5);   /* small ints are immortal */
  return rc_obj;
}
static void *rc_setup_off(int64_t a) { (void)a; return rc_setup_common(false, false); }
static void *rc_setup_on(int64_t a) { (void)a; return rc_setup_common(true, false); }
static void *rc_setup_on_imm(int64_t a) { (void)a; return rc_setup_common(true, true); }

static void rc_teardown(void *state) {
  hl_decref((hl_object_t *)state);
  runtime_restore(NULL);
}

static void rc_run(void *state, uint64_t iters) {
  hl_object_t *o = state;
  for (uint64_t i = 0; i < iters; i++) {
    hl_incref(o);
    escape(o);
    hl_decref(o);
  }
}

/* ---- incref + decref in each refcount mode ----
 * The runtime restarts in the mode the argument names (gc=none, immortal
 * off), and the same loop as above runs:
 *   1 gil, 2 atomic,
 *   3 biased, not the owner: the float was made by a thread not attached
 *     (this one, before attaching), so it belongs to nobody and every count
 *     is the shared, atomic one,
 *   4 biased, the owner: the thread attaches first and makes the float. */
static void *rcm_setup(int64_t a) {
  hl_config_t c = *hl_micro_config;
  c.rc = a == 1 ? HL_RC_GIL : a == 2 ? HL_RC_ATOMIC : HL_RC_BIASED;
  c.gc = HL_GC_NONE;
  c.immortal = false;
  char err[256];
  hl_runtime_fini();
  if (hl_runtime_init(&c, err, sizeof err) != 0) {
    fprintf(stderr, "heaplab-micro: %s\n", err);
    return NULL;
  }
  if (a == 4) {
    hl_gil_init(false, 5000);
    hl_thread_attach();
  }
  rc_obj = hl_float_new(1.5);
  return rc_obj;
}

static void rcm_teardown(void *state) {
  hl_decref((hl_object_t *)state);
  if (hl_thread_self()) hl_thread_detach();
  runtime_restore(NULL);
}

/* ---- make and drop one object ---- */
#define val hl_None   /* the item stored in containers */

/* Ballast: one live object of each kind the micros make (and a list's item
 * array, a dict's table), held for the run. Without it, the only block of
 * its size class would be freed each iteration, its pool would empty and go
 * back to its arena, and the next allocation would take a pool again: the
 * slow path on every iteration, which a program (or CPython, whose
 * interpreter holds thousands of objects of every size) never sees. The
 * dict's key is an interned str with its hash cached, as CPython's is. */
typedef struct ballast {
  hl_object_t *key;
  hl_object_t *keep[8];
  hl_type_t *cls;
} ballast_t;

static void obj_teardown(void *state) {
  ballast_t *b = state;
  for (int i = 0; i < 8; i++) hl_xdecref(b->keep[i]);
  hl_xdecref(b->key);
  free(b);
}

static void *obj_setup(int64_t a) {
  (void)a;
  ballast_t *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->key = hl_str_intern_cstr("key");
  b->cls = hl_class_new("Node", 2, false, NULL);   /* a restart of the runtime frees classes */
  b->keep[0] = hl_int_new(1ll << 41);
  b->keep[1] = hl_float_new(2.5);
  b->keep[2] = hl_str_new("ballast str", 11);
  b->keep[3] = hl_tuple_pack(2, val, val);
  b->keep[4] = hl_list_new(0);
  b->keep[5] = hl_dict_new();
  b->keep[6] = b->cls ? hl_instance_new(b->cls) : NULL;
  if (!b->key || !b->cls || !b->keep[0] || !b->keep[1] || !b->keep[2] || !b->keep[3] ||
      !b->keep[4] || !b->keep[5] || !b->keep[6] || hl_list_append(b->keep[4], val) != 0 ||
      hl_dict_set(b->keep[5], b->key, val) != 0) {
    obj_teardown(b);
    return NULL;
  }
  return b;
}

static void int_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    hl_object_t *o = hl_int_new((int64_t)(1ull << 40) + (int64_t)i);
    escape(o);
    hl_decref(o);
  }
}

static void float_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    hl_object_t *o = hl_float_new((double)i);
    escape(o);
    hl_decref(o);
  }
}

static void str_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    hl_object_t *o = hl_str_new("hello world", 11);
    escape(o);
    hl_decref(o);
  }
}

static void tuple2_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    hl_object_t *t = hl_tuple_new(2);
    hl_tuple_set(t, 0, hl_newref(val));
    hl_tuple_set(t, 1, hl_newref(val));
    escape(t);
    hl_decref(t);
  }
}

static void list_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    hl_object_t *l = hl_list_new(0);
    hl_list_append(l, val);
    escape(l);
    hl_decref(l);
  }
}

static void dict_run(void *state, uint64_t iters) {
  hl_object_t *key = ((ballast_t *)state)->key;
  for (uint64_t i = 0; i < iters; i++) {
    hl_object_t *d = hl_dict_new();
    hl_dict_set(d, key, val);
    escape(d);
    hl_decref(d);
  }
}

static void inst_run(void *state, uint64_t iters) {
  hl_type_t *cls = ((ballast_t *)state)->cls;
  for (uint64_t i = 0; i < iters; i++) {
    hl_object_t *o = hl_instance_new(cls);
    escape(o);
    hl_decref(o);
  }
}

const hl_micro_t hl_micros_obj[] = {
  {"heaplab_incref_decref", "hl_incref + hl_decref of a float, immortal=off", 4096, {0},
   rc_setup_off, rc_run, rc_teardown},
  {"heaplab_incref_decref_immortal_on",
   "hl_incref + hl_decref of a float (mortal) with immortal=on: the cost of the check", 4096,
   {0}, rc_setup_on, rc_run, rc_teardown},
  {"heaplab_incref_decref_immortal_obj",
   "hl_incref + hl_decref of the small int 7, immortal with immortal=on: both skipped", 4096,
   {0}, rc_setup_on_imm, rc_run, rc_teardown},
  {"heaplab_incref_decref_rc",
   "hl_incref + hl_decref of a float: 1 rc=gil, 2 rc=atomic, 3 rc=biased not the owner, "
   "4 rc=biased the owner", 4096, {1, 2, 3, 4, 0}, rcm_setup, rc_run, rcm_teardown},
  {"heaplab_int_big", "hl_int_new(2^40 + i) + hl_decref", 1024, {0}, obj_setup, int_run, obj_teardown},
  {"heaplab_float", "hl_float_new + hl_decref", 1024, {0}, obj_setup, float_run, obj_teardown},
  {"heaplab_str", "hl_str_new of 11 bytes + hl_decref", 1024, {0}, obj_setup, str_run, obj_teardown},
  {"heaplab_tuple2", "hl_tuple_new(2), both items None, + hl_decref", 1024, {0}, obj_setup,
   tuple2_run, obj_teardown},
  {"heaplab_list_append", "hl_list_new(0) + hl_list_append(None) + hl_decref", 1024, {0},
   obj_setup, list_run, obj_teardown},
  {"heaplab_dict_setitem", "hl_dict_new + hl_dict_set(interned str, None) + hl_decref", 1024,
   {0}, obj_setup, dict_run, obj_teardown},
  {"heaplab_instance", "hl_instance_new of a 2-slot class + hl_decref", 1024, {0}, obj_setup,
   inst_run, obj_teardown},
};
const unsigned hl_micro_obj_count = sizeof hl_micros_obj / sizeof hl_micros_obj[0];
