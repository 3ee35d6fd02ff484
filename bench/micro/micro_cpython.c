/* The CPython 3.11 twins of micro_obj.c's benchmarks, through its C API
 * (libpython3.11, pkg-config python3-embed), in the same process: the
 * interpreter starts once (Py_InitializeEx(0): no signal handlers), in the
 * thread Google Benchmark runs in, which then holds its GIL. Each twin does
 * what its heaplab namesake does, with the same escape between the
 * operations. CPython's objects come from its own allocator (pymalloc)
 * whatever HEAPLAB_ALLOC says; heaplab's from the one it names (pool by
 * default). Built only where python3-embed is found and no sanitizer is on
 * (an interpreter that is never finalized reads as leaks to LeakSanitizer).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "micro.h"

static inline void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static void *py_setup(int64_t a) {
  (void)a;
  if (!Py_IsInitialized()) Py_InitializeEx(0);
  return Py_None;
}

static void rc_run(void *state, uint64_t iters) {
  (void)state;
  PyObject *o = PyFloat_FromDouble(1.5);
  for (uint64_t i = 0; i < iters; i++) {
    Py_INCREF(o);
    escape(o);
    Py_DECREF(o);
  }
  Py_DECREF(o);
}

static void int_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    PyObject *o = PyLong_FromLongLong((long long)(1ull << 40) + (long long)i);
    escape(o);
    Py_DECREF(o);
  }
}

static void float_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    PyObject *o = PyFloat_FromDouble((double)i);
    escape(o);
    Py_DECREF(o);
  }
}

static void str_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    PyObject *o = PyUnicode_FromStringAndSize("hello world", 11);
    escape(o);
    Py_DECREF(o);
  }
}

static void tuple2_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    PyObject *t = PyTuple_New(2);
    Py_INCREF(Py_None);
    PyTuple_SET_ITEM(t, 0, Py_None);
    Py_INCREF(Py_None);
    PyTuple_SET_ITEM(t, 1, Py_None);
    escape(t);
    Py_DECREF(t);
  }
}

static void list_run(void *state, uint64_t iters) {
  (void)state;
  for (uint64_t i = 0; i < iters; i++) {
    PyObject *l = PyList_New(0);
    PyList_Append(l, Py_None);
    escape(l);
    Py_DECREF(l);
  }
}

static void *dict_setup(int64_t a) {
  py_setup(a);
  PyObject *k = PyUnicode_InternFromString("key");
  (void)PyObject_Hash(k);   /* cached, as heaplab's interned key */
  return k;
}

static void dict_run(void *state, uint64_t iters) {
  PyObject *k = state;
  for (uint64_t i = 0; i < iters; i++) {
    PyObject *d = PyDict_New();
    PyDict_SetItem(d, k, Py_None);
    escape(d);
    Py_DECREF(d);
  }
}

static void dict_teardown(void *state) { Py_DECREF((PyObject *)state); }

const hl_micro_t hl_micros_cpython[] = {
  {"cpython_incref_decref", "Py_INCREF + Py_DECREF of a float (CPython 3.11)", 4096, {0},
   py_setup, rc_run, NULL},
  {"cpython_int_big", "PyLong_FromLongLong(2^40 + i) + Py_DECREF", 1024, {0}, py_setup, int_run,
   NULL},
  {"cpython_float", "PyFloat_FromDouble + Py_DECREF", 1024, {0}, py_setup, float_run, NULL},
  {"cpython_str", "PyUnicode_FromStringAndSize of 11 ASCII bytes + Py_DECREF", 1024, {0},
   py_setup, str_run, NULL},
  {"cpython_tuple2", "PyTuple_New(2), both items None, + Py_DECREF", 1024, {0}, py_setup,
   tuple2_run, NULL},
  {"cpython_list_append", "PyList_New(0) + PyList_Append(None) + Py_DECREF", 1024, {0},
   py_setup, list_run, NULL},
  {"cpython_dict_setitem", "PyDict_New + PyDict_SetItem(interned str, None) + Py_DECREF", 1024,
   {0}, dict_setup, dict_run, dict_teardown},
};
const unsigned hl_micro_cpython_count = sizeof hl_micros_cpython / sizeof hl_micros_cpython[0];
