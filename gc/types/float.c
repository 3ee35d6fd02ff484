/* float: a double, with a per-thread free list (CPython's float free list,
 * 100 objects: a float is the most often created and dropped object in
 * numeric code, and the list turns its allocation into a pop). */
#include <math.h>
#include <string.h>

#include "gc_internal.h"

/* Equal numbers hash alike: a float with an integral value hashes as that
 * int (Python's rule), others by their bits. */
static int64_t float_hash(hl_object_t *o) {
  double v = ((hl_float_t *)o)->value;
  if (v >= -9223372036854775808.0 && v < 9223372036854775808.0 && v == floor(v)) {
    int64_t i = (int64_t)v;
    return i == -1 ? -2 : i;
  }
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  bits ^= bits >> 33;
  bits *= 0xff51afd7ed558ccdull;
  bits ^= bits >> 33;
  int64_t h = (int64_t)(bits >> 1);
  return h == -1 ? -2 : h;
}

/* The list full, off, or not armed yet: out of line, so that the common
 * case below needs no stack frame. */
static HL_NOINLINE void float_dealloc_slow(hl_object_t *o) {
  hl_tstate_t *ts = &hli_tstate;
  if (hli_fl_push(&ts->fl_float, o)) {
    ts->stats.freelist_puts++;
    return;
  }
  hli_obj_free(o);
}

static void float_dealloc(hl_object_t *o) {
  hl_tstate_t *ts = &hli_tstate;
  if (HL_UNLIKELY(ts->fl_float.room == 0)) {
    float_dealloc_slow(o);
    return;
  }
  hli_fl_push(&ts->fl_float, o);
  ts->stats.freelist_puts++;
}

const hl_type_t hl_float_type = {
  .name = "float", .flags = HL_TF_BASETYPE | HL_TF_LEAF, .kind = HL_K_FLOAT,
  .dealloc = float_dealloc, .hash = float_hash};

hl_object_t *hl_float_new(double v) {
  hl_tstate_t *ts = &hli_tstate;
  hl_float_t *o = hli_fl_pop(&ts->fl_float);
  if (o) {
    ts->stats.freelist_hits++;
    hli_obj_init(o, &hl_float_type);
  } else {
    o = (hl_float_t *)hli_obj_alloc(&hl_float_type, sizeof(hl_float_t));
    if (HL_UNLIKELY(!o)) return NULL;
  }
  o->value = v;
  return &o->ob;
}

double hl_float_value(const hl_object_t *o) {
  HL_ASSERT(o->type == &hl_float_type);
  return ((const hl_float_t *)o)->value;
}
