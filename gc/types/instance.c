/* Instances of user-defined types: the analogue of a Python class with
 * __slots__ and/or a __dict__, and optionally __del__.
 *
 * hl_class_new makes a type at run time (a heap type in CPython's terms):
 * nslots attribute slots stored inline in each instance, an attribute dict
 * created on first use when has_dict, and a finalizer that runs once when
 * the instance is about to die (object.c, PEP 442). Instances can be weakly
 * referenced; their weaklist heads the chain of weakrefs to them. Types are
 * kept in a registry and freed by hl_runtime_fini (instances must be gone). */
#include <stdlib.h>
#include <string.h>

#include "gc_internal.h"

typedef struct class_node {
  struct class_node *next;
  hl_type_t type;
  char name[];
} class_node_t;
static class_node_t *classes;
static hl_spinlock_t classes_lock = HL_SPINLOCK_INITIALIZER;

static inline int instance_walk(hl_object_t *o, hl_visit_fn visit, void *arg, bool gc_only) {
  hl_instance_t *in = (hl_instance_t *)o;
  if (in->dict) {   /* a dict: a container */
    int r = visit(in->dict, arg);
    if (r) return r;
  }
  for (uint32_t i = 0, n = o->type->nslots; i < n; i++)
    if (hli_visit_wanted(in->slots[i], gc_only)) {
      int r = visit(in->slots[i], arg);
      if (r) return r;
    }
  return 0;
}
static int instance_traverse(hl_object_t *o, hl_visit_fn visit, void *arg) {
  return instance_walk(o, visit, arg, false);
}
static int instance_traverse_gc(hl_object_t *o, hl_visit_fn visit, void *arg) {
  return instance_walk(o, visit, arg, true);
}

static void instance_clear(hl_object_t *o) {
  hl_instance_t *in = (hl_instance_t *)o;
  for (uint32_t i = 0; i < o->type->nslots; i++) hl_clear(&in->slots[i]);
  hl_clear(&in->dict);
}

static void instance_dealloc(hl_object_t *o) {
  HL_ASSERT(((hl_instance_t *)o)->weaklist == NULL);
  instance_clear(o);
  hli_gc_free(o);
}

static int64_t instance_hash(hl_object_t *o) {
  int64_t h = (int64_t)((uintptr_t)o >> 4);
  return h == -1 ? -2 : h;
}

hl_weakref_t **hli_weaklist(hl_object_t *o) {
  HL_ASSERT(o->type->flags & HL_TF_WEAKREFS);
  return &((hl_instance_t *)o)->weaklist;
}

hl_type_t *hl_class_new(const char *name, uint32_t nslots, bool has_dict,
                        hl_finalizer_fn finalizer) {
  size_t len = strlen(name);
  /* Types are metadata, not objects of the heap being measured: they come
   * from the C library, not the object allocator. */
  class_node_t *c = hl_fail_hit(HL_FAIL_OBJ) ? NULL : malloc(sizeof *c + len + 1);
  if (!c) {
    hl_err_set(HL_ERR_NOMEM, "out of memory creating class %s", name);
    return NULL;
  }
  memcpy(c->name, name, len + 1);
  c->type = (hl_type_t){
    .name = c->name, .flags = HL_TF_GC | HL_TF_WEAKREFS, .kind = HL_K_INSTANCE,
    .traverse = instance_traverse, .traverse_gc = instance_traverse_gc,
    .clear = instance_clear, .dealloc = instance_dealloc,
    .hash = instance_hash, .finalizer = finalizer, .nslots = nslots, .has_dict = has_dict};
  hl_spinlock_lock(&classes_lock);
  c->next = classes;
  classes = c;
  hl_spinlock_unlock(&classes_lock);
  return &c->type;
}

void hli_class_fini(void) {
  hl_spinlock_lock(&classes_lock);
  class_node_t *c = classes;
  classes = NULL;
  hl_spinlock_unlock(&classes_lock);
  while (c) {
    class_node_t *next = c->next;
    free(c);
    c = next;
  }
}

hl_object_t *hl_instance_new(hl_type_t *cls) {
  HL_ASSERT(cls->kind == HL_K_INSTANCE);
  size_t size = sizeof(hl_instance_t) + (size_t)cls->nslots * sizeof(hl_object_t *);
  hl_instance_t *in = (hl_instance_t *)hli_gc_alloc(cls, size);
  if (HL_UNLIKELY(!in)) return NULL;
  in->dict = NULL;
  in->weaklist = NULL;
  for (uint32_t i = 0; i < cls->nslots; i++) in->slots[i] = NULL;
  hli_gc_link(&in->ob);
  return &in->ob;
}

hl_object_t *hl_slot_get(const hl_object_t *o, uint32_t i) {
  HL_ASSERT(o->type->kind == HL_K_INSTANCE && i < o->type->nslots);
  return ((const hl_instance_t *)o)->slots[i];
}

void hl_slot_set(hl_object_t *o, uint32_t i, hl_object_t *v) {
  HL_ASSERT(o->type->kind == HL_K_INSTANCE && i < o->type->nslots);
  hl_instance_t *in = (hl_instance_t *)o;
  hl_object_t *old = in->slots[i];
  /* release: v whole before a concurrent scan can read it from the slot */
  hl_atomic_c11_store_release_ptr((void **)&in->slots[i], v ? hl_newref(v) : NULL);
  if (!old) return;
  /* --gc=concurrent's barrier: a scan may have read old from the slot and
   * be about to look at it; it ends its chunk before a grace period does */
  if (HL_UNLIKELY(hli_gc_scanning())) {
    hli_tstate.stats.barrier_drops_deferred++;
    hli_defer_decref(old);
    return;
  }
  hl_decref(old);
}

/* The object whose attributes o shows: itself, or a proxy's live referent
 * (a new reference either way); NULL with the error set. */
static hl_object_t *attr_target(hl_object_t *o) {
  if (o->type->kind == HL_K_PROXY) {
    hl_object_t *r = hl_weakref_get(o);
    if (!r) hl_err_set(HL_ERR_REFERENCE, "weakly-referenced object no longer exists");
    return r;
  }
  if (o->type->kind != HL_K_INSTANCE || !o->type->has_dict) {
    hl_err_set(HL_ERR_TYPE, "'%s' object has no attribute dict", o->type->name);
    return NULL;
  }
  return hl_newref(o);
}

hl_object_t *hl_attr_get(hl_object_t *o, const char *name) {
  hl_object_t *t = attr_target(o);
  if (!t) return NULL;
  hl_object_t *v = NULL;
  if (t->type->kind != HL_K_INSTANCE || !t->type->has_dict) {
    hl_err_set(HL_ERR_TYPE, "'%s' object has no attribute dict", t->type->name);
  } else {
    hl_instance_t *in = (hl_instance_t *)t;
    hl_object_t *k = in->dict ? hl_str_from(name) : NULL;
    v = k ? hl_dict_get_ref(in->dict, k) : NULL;
    hl_xdecref(k);
    if (!v && (!in->dict || hl_err_kind() == HL_ERR_KEY))
      hl_err_set(HL_ERR_KEY, "'%s' object has no attribute '%s'", t->type->name, name);
  }
  hl_decref(t);
  return v;
}

int hl_attr_set(hl_object_t *o, const char *name, hl_object_t *v) {
  hl_object_t *t = attr_target(o);
  if (!t) return -1;
  int r = -1;
  if (t->type->kind != HL_K_INSTANCE || !t->type->has_dict) {
    hl_err_set(HL_ERR_TYPE, "'%s' object has no attribute dict", t->type->name);
  } else {
    hl_instance_t *in = (hl_instance_t *)t;
    if (!in->dict) hl_atomic_c11_store_release_ptr((void **)&in->dict, hl_dict_new());
    if (in->dict) r = hl_dict_set_cstr(in->dict, name, v);
  }
  hl_decref(t);
  return r;
}

void hl_class_set_legacy_finalizer(hl_type_t *cls, bool legacy) {
  HL_ASSERT(cls->kind == HL_K_INSTANCE);
  cls->legacy_finalizer = legacy;
}
