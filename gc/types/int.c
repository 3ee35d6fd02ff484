/* int: 64-bit integers, with CPython's small-int cache.
 *
 * The values HL_SMALL_INT_MIN..HL_SMALL_INT_MAX (-5..256, as CPython's
 * _PY_NSMALLNEGINTS / _PY_NSMALLPOSINTS) are preallocated once, outside the
 * allocator, and every request for one of them returns the shared object:
 * loop counters and indexes then never allocate. With --immortal=on they
 * are immortal (PEP 683); otherwise the runtime holds one reference to each
 * and their counts move like any other object's.
 *
 * Unlike Python's int, values are bounded to int64: heaplab measures memory
 * management, not arbitrary precision.
 */
#include "gc_internal.h"

#define NSMALL (HL_SMALL_INT_MAX - HL_SMALL_INT_MIN + 1)
static hl_int_t small_ints[NSMALL];

static int64_t int_hash(hl_object_t *o) {
  int64_t v = ((hl_int_t *)o)->value;
  return v == -1 ? -2 : v;   /* -1 means "error" to hl_hash's callers */
}

static void int_dealloc(hl_object_t *o) {
  HL_ASSERT(!(o->flags & HL_OF_STATIC));
  hli_obj_free(o);
}

const hl_type_t hl_int_type = {
  .name = "int", .flags = HL_TF_BASETYPE | HL_TF_LEAF, .kind = HL_K_INT,
  .dealloc = int_dealloc, .hash = int_hash};

int hli_int_init(void) {
  for (int i = 0; i < NSMALL; i++) {
    hli_obj_init_static(&small_ints[i].ob, &hl_int_type);
    small_ints[i].value = HL_SMALL_INT_MIN + i;
  }
  return 0;
}

hl_object_t *hl_int_new(int64_t v) {
  if (v >= HL_SMALL_INT_MIN && v <= HL_SMALL_INT_MAX)
    return hl_newref(&small_ints[v - HL_SMALL_INT_MIN].ob);
  hl_int_t *o = (hl_int_t *)hli_obj_alloc(&hl_int_type, sizeof(hl_int_t));
  if (HL_UNLIKELY(!o)) return NULL;
  o->value = v;
  return &o->ob;
}

int64_t hl_int_value(const hl_object_t *o) {
  if (o->type == &hl_bool_type) return o == hl_True;
  HL_ASSERT(o->type == &hl_int_type);
  return ((const hl_int_t *)o)->value;
}
