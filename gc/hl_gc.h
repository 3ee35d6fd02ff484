/* heaplab gc/: objects, reference counts, cycle collectors: the public header.
 *
 * In the spirit of CPython's C API: every object starts with a header
 * (reference count, type); containers (tuple, list, dict, instance, weakref)
 * carry two more words, the GC links, in front of it (PyGC_Head). A function
 * that returns an object returns a new reference unless it says "borrowed";
 * a function that takes an object borrows it unless it says "steals".
 *
 * Reference counting goes through hl_incref/hl_decref, the one place where a
 * refcount mode (--rc) and immortality (--immortal, PEP 683) change what an
 * operation does. Built now: rc=gil (plain increments; the caller holds the
 * GIL, or is the only thread), rc=atomic (atomic instructions, no GIL) and
 * rc=biased (an owner's local count and a shared atomic count, no GIL).
 *
 * Errors: constructors return NULL when memory runs out; lookups return NULL
 * or -1 and record why in the calling thread's error (hl_err_kind()), like
 * Python's exception indicator, minus the objects.
 */
#ifndef HL_GC_H
#define HL_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hl_atomic.h"
#include "hl_base.h"
#include "hl_config.h"

#ifdef __cplusplus
extern "C" {
#endif
HL_API_BEGIN

typedef struct hl_type hl_type_t;

/* The header of every object. 16 bytes: the count, the flags, the owner,
 * the type.
 *   rc=gil:     rc is the reference count; owner stays 0.
 *   rc=atomic:  rc is the reference count, changed atomically; owner is the
 *               index of the thread that made the object (0: a thread not
 *               attached), which containers use to tell their creator.
 *   rc=biased:  rc is the owner's local count, owner the owning thread's
 *               index (sync/hl_thread.h; 0: nobody owns it), and the shared
 *               count is a 64-bit word in front of the object's block
 *               (gc/rc_biased.c explains why there, and the states).
 *   immortal:   rc == HL_RC_IMMORTAL in every mode; increments and
 *               decrements leave it alone (the test is rc >= HL_RC_IMMORTAL,
 *               so a stray decrement of an immortal object cannot bring it
 *               to zero). */
typedef struct hl_object {
  uint32_t rc;
  uint16_t flags;             /* HL_OF_* */
  uint16_t owner;             /* see above; read and written with relaxed atomics */
  const hl_type_t *type;
} hl_object_t;

#define HL_RC_IMMORTAL 0xC0000000u

enum {
  HL_OF_IMMORTAL  = 1u << 0,  /* made immortal at creation (only with --immortal=on) */
  HL_OF_FINALIZED = 1u << 1,  /* the finalizer has run: it never runs twice (PEP 442) */
  HL_OF_INTERNED  = 1u << 2,  /* str: the canonical object of its value */
  HL_OF_GC        = 1u << 3,  /* a container: GC links precede the header */
  HL_OF_STATIC    = 1u << 4,  /* not from the allocator (singletons, caches) */
};

/* Flags of a type. */
enum {
  HL_TF_GC       = 1u << 0,   /* instances are containers */
  HL_TF_BASETYPE = 1u << 1,   /* a built-in type */
  HL_TF_WEAKREFS = 1u << 2,   /* instances can be weakly referenced */
  HL_TF_LEAF     = 1u << 3,   /* references nothing, no finalizer, no weakrefs: dying
                               * is the type's dealloc alone (int, float, str) */
};

typedef int  (*hl_visit_fn)(hl_object_t *o, void *arg);
typedef void (*hl_finalizer_fn)(hl_object_t *self);

struct hl_type {
  const char *name;
  uint32_t flags;             /* HL_TF_* */
  uint32_t kind;              /* HL_K_*: the built-in type, for fast checks */
  /* Calls visit on every object this one references, stopping at the first
   * nonzero return (tp_traverse). NULL for types that reference nothing.
   * The visitor must not change o (CPython's contract for tp_traverse):
   * the built-in types read o's size and item array once. */
  int  (*traverse)(hl_object_t *o, hl_visit_fn visit, void *arg);
  /* Optional: as traverse, but visits only the referents that are
   * containers (HL_OF_GC), the same ones in the same order. The collector
   * uses it where set: its visitors ignore everything else, and most
   * referents (ints, strings) are no containers, so a call per referent is
   * saved. NULL: the collector calls traverse. */
  int  (*traverse_gc)(hl_object_t *o, hl_visit_fn visit, void *arg);
  /* Drops the references this object holds, leaving it valid but empty
   * (tp_clear): how the collector breaks a cycle. */
  void (*clear)(hl_object_t *o);
  /* Frees the object; its count is zero (tp_dealloc). */
  void (*dealloc)(hl_object_t *o);
  /* -1 and HL_ERR_TYPE: unhashable. */
  int64_t (*hash)(hl_object_t *o);
  /* 1 equal, 0 not, -1 error; called only with b of a comparable type. */
  int (*eq)(hl_object_t *a, hl_object_t *b);
  /* instances of a user type */
  hl_finalizer_fn finalizer;  /* __del__; NULL when none */
  uint32_t nslots;            /* attribute slots in each instance */
  bool has_dict;              /* instances get an attribute dict on first use */
  bool legacy_finalizer;      /* the finalizer is unsafe on cycles: uncollectable */
};

enum {
  HL_K_NONE, HL_K_BOOL, HL_K_INT, HL_K_FLOAT, HL_K_STR, HL_K_TUPLE, HL_K_LIST, HL_K_DICT,
  HL_K_INSTANCE, HL_K_WEAKREF, HL_K_PROXY, HL_K_COUNT
};

/* ---- runtime ----------------------------------------------------------------
 * hl_runtime_init checks that the strategies asked for are built and go
 * together (as the driver does), sets up the allocator (hl_alloc_init)
 * unless it already is, the refcount mode, the collector, and the threads'
 * policy that follows from them (a GIL, QSBR readers, stopping the world:
 * set only while no thread is attached), then the singletons, the
 * small-int cache, the one-character strings and the interned table, as
 * the configuration asks (rc, immortal, freelists, gc).
 * hl_runtime_fini drops all of them and empties every free list, so that a
 * program that released its own objects ends with no block in use. */
int  hl_runtime_init(const hl_config_t *c, char *err, size_t errlen);
void hl_runtime_fini(void);
bool hl_runtime_ready(void);
/* Whether the runtime runs a GIL (decided by hl_runtime_init from the
 * refcount mode: rc=gil's plain counts need one, the others run without). */
bool hl_runtime_gil(void);
/* Empties the calling thread's free lists (a thread does it at exit too). */
void hl_freelists_clear(void);

/* Per-process object statistics (for tests and results), from one list
 * that makes the struct, the per-thread folding (object.c), a run's
 * difference (bench/objects.c) and the JSON (bench/result.c), as
 * mimalloc's MI_STAT_FIELDS does. X(field, where, json name, what):
 *   where   objects: the result's "objects" object; rc: its "rc" object,
 *           without a GIL; biased: there too, with rc=biased only;
 *           rcstats: its "rc_ops" object, in a build with HL_RC_STATS. */
#define HL_OBJ_STATS(X)                                                                      \
  X(allocated, objects, allocated, "objects allocated from the object allocator")            \
  X(freed, objects, freed, "objects returned to it")                                         \
  X(freelist_hits, objects, freelist_hits, "allocations served by a per-type free list")     \
  X(freelist_puts, objects, freelist_puts, "deallocations kept by one")                      \
  X(finalizers_run, objects, finalizers_run, "finalizers run")                               \
  X(weakref_callbacks, objects, weakref_callbacks, "weakref callbacks run")                  \
  X(trash_deferred, objects, trash_deferred, "deallocations deferred by the trashcan")       \
  /* rc=biased: objects queued to their owner (a decrement by another thread  */             \
  /* found the shared count at zero), and objects merged (their counts summed */             \
  /* into the shared count: from a queue, or by the thread that found the     */             \
  /* owner gone)                                                              */             \
  X(rc_merges_queued, biased, merges_queued, "objects queued to their owner")                \
  X(rc_merges_done, biased, merges_done, "objects merged")                                   \
  /* rc=biased without memory (never a crash): objects merged with the     */             \
  /* world stopped by a thread that could not queue them (the ring full,    */             \
  /* the overflow unable to grow), and threads that attached owning nothing */             \
  /* (no memory for their queue: they count as a thread with no index)      */             \
  X(rc_merges_stopped, biased, merges_stopped, "objects merged with the world stopped")      \
  X(rc_threads_ownerless, biased, threads_ownerless, "threads that attached owning nothing") \
  /* rc=biased: increments and decrements by a thread that is not the       */             \
  /* object's owner (or of an object with no owner): the shared count's,    */             \
  /* out of line, so counting them costs the owner's path nothing           */             \
  X(rc_shared_increfs, biased, shared_increfs, "increments of a shared count")               \
  X(rc_shared_decrefs, biased, shared_decrefs, "decrements of a shared count")               \
  /* built with -DHL_RC_STATS=ON only (zero otherwise), in every mode: the   */             \
  /* increments and decrements done plainly (the owner's; any under a GIL),  */             \
  /* atomically (rc=atomic's; rc=biased's shared ones), and skipped (immortal) */           \
  X(rc_ops_plain, rcstats, plain, "increments and decrements done plainly")                  \
  X(rc_ops_atomic, rcstats, atomic, "increments and decrements done atomically")             \
  X(rc_ops_immortal, rcstats, immortal, "increments and decrements of an immortal skipped")  \
  /* without a GIL: hl_list_get_ref / hl_dict_get_ref served without the      */             \
  /* container's lock, and those that took it (a try-increment that could     */             \
  /* not, a container not shared yet, a thread not attached)                  */             \
  X(reads_unlocked, rc, reads_unlocked, "container reads without the lock")                  \
  X(reads_locked, rc, reads_locked, "container reads under the lock")                      \
  /* --gc=concurrent: instance slot writes whose old reference was dropped  */             \
  /* after a grace period because the collector thread was scanning (its    */             \
  /* barrier, gc/gen_conc.c)                                                 */             \
  X(barrier_drops_deferred, rc, barrier_drops_deferred, "slot drops deferred by the concurrent scan") \
  /* without a GIL: a thread that found the shared lists' lock held when it */             \
  /* linked or unlinked an old container (a concurrent chunk holds it, or    */             \
  /* another mutator), and how long it waited in all (ns)                    */             \
  X(gc_lock_waits, rc, gc_lock_waits, "waits for the shared lists' lock")                    \
  X(gc_lock_wait_ns, rc, gc_lock_wait_ns, "time waited for the shared lists' lock (ns)")
typedef struct hl_obj_stats {
#define HL_OBJ_STAT_FIELD_(field, where, json, what) uint64_t field;
  HL_OBJ_STATS(HL_OBJ_STAT_FIELD_)
#undef HL_OBJ_STAT_FIELD_
} hl_obj_stats_t;
void hl_obj_stats(hl_obj_stats_t *s);

/* ---- errors ----------------------------------------------------------------- */
typedef enum {
  HL_ERR_OK, HL_ERR_NOMEM, HL_ERR_KEY, HL_ERR_INDEX, HL_ERR_TYPE, HL_ERR_REFERENCE,
  HL_ERR_VALUE
} hl_err_t;
hl_err_t hl_err_kind(void);
const char *hl_err_message(void);
void hl_err_clear(void);
void hl_err_set(hl_err_t kind, const char *fmt, ...) HL_PRINTF(2, 3);

/* ---- reference counts --------------------------------------------------------
 * One place decides what an increment and a decrement do in each mode:
 *
 *   gil     plain increments; the caller holds the GIL (or is alone).
 *   atomic  every increment is a relaxed atomic add, every decrement a
 *           release atomic subtract; the thread whose decrement reaches
 *           zero issues an acquire fence and frees the object.
 *   biased  the owning thread changes its local count (rc) with plain
 *           loads and stores; any other thread changes the shared count
 *           atomically, out of line (gc/rc_biased.c).
 * An immortal object (PEP 683; only --immortal=on makes one) is left alone
 * in every mode.
 *
 * One test serves all three: the header's owner against hl_rc_self, a
 * thread-local word. Equal: the caller may count plainly, in rc. Otherwise
 * the out-of-line-ish other path decides (immortal, atomic, shared):
 *
 *   header owner                      hl_rc_self of a thread
 *   HL_OWNER_PLAIN (0)  under the GIL  0 (the default) under the GIL, and for
 *                                       a thread not attached in any mode
 *   1..HL_THREAD_INDEX_MAX  biased:    its index: attached, rc=biased
 *     the owner; atomic: the maker
 *   HL_OWNER_NONE     nobody (made by  HL_RC_NOBODY: attached, rc=atomic
 *     a thread not attached, merged)
 *   HL_OWNER_IMMORTAL  immortal
 *
 * so under the GIL every mortal object is counted plainly by every thread,
 * as before the free-threaded modes, and the biased owner takes the very
 * same path: one compare of two 16-bit words, then the increment. No object
 * has owner 0 in the free-threaded modes, so a thread that is not attached
 * (self 0) never counts plainly there, and no attached thread has self 0.
 * An immortal object's count is HL_RC_IMMORTAL too (hl_is_immortal reads
 * the count, as CPython 3.12 does), and its owner says so: the other path
 * tests it with the owner it already loaded. scripts/callgrind-micro
 * 'heaplab_incref' counts the instructions of both paths.
 *
 * The owner's plain count. In ThreadSanitizer and debug builds it is a
 * relaxed atomic load and store; otherwise one read-modify-write
 * instruction (the fewest, what the GIL build always had). Other threads
 * may read it meanwhile (rc=biased: an immortality test, a try-increment,
 * hl_refcount) without synchronizing: a read of an aligned 32-bit word the
 * hardware never tears, of a value only the owner writes, which the
 * TSan build checks as atomic. */
extern struct hl_rc_config {
  hl_rc_mode_t mode;
  bool immortal;
} hl_rc_config;

#define HL_OWNER_PLAIN    0x0000u
#define HL_OWNER_NONE     0xFFFFu
#define HL_OWNER_IMMORTAL 0xFFFEu
#define HL_RC_NOBODY      0xFFFDu
/* What the calling thread counts plainly (gc/rc.c). HL_TLS_MODEL
 * (hl_base.h): one instruction to read it in heaplab's own programs.
 * hl_rc_self and the hl_rc_*, hl_obj_dealloc functions below are exported
 * because the inline reference counts call them, not for callers. */
extern __thread uint16_t hl_rc_self __attribute__((tls_model(HL_TLS_MODEL)));
/* -DHL_RC_STATS=ON: the calling thread's increments and decrements by path
 * (HLI_RC_STAT_*), folded into hl_obj_stats (rc_ops_*) with its other
 * counters (gc/object.c). Off by default: the owner's path is measured
 * without the counter's instructions (papers/brc builds it once to count). */
enum { HLI_RC_STAT_PLAIN, HLI_RC_STAT_ATOMIC, HLI_RC_STAT_IMMORTAL };
#if HL_RC_STATS
extern __thread uint64_t hl_rc_stat_ops[3] __attribute__((tls_model(HL_TLS_MODEL)));
#define HLI_RC_STAT(k) (hl_rc_stat_ops[k]++)
#else
#define HLI_RC_STAT(k) ((void)0)
#endif

void hl_obj_dealloc(hl_object_t *o);
/* rc=biased, out of line (gc/rc_biased.c): a thread that is not the owner
 * increments or decrements the shared count; the owner's local count
 * reached zero. */
void hl_rc_incref_shared(hl_object_t *o);
void hl_rc_decref_shared(hl_object_t *o);
void hl_rc_merge_zero_local(hl_object_t *o);
uint32_t hl_rc_biased_count(const hl_object_t *o);

/* rc=biased: the shared count's word, in front of the object's block (the
 * GC head, two words, comes between them for a container). */
static inline uint64_t *hli_rc_shared_word(const hl_object_t *o) {
  size_t back = (o->type->flags & HL_TF_GC) ? 3 * sizeof(uint64_t) : sizeof(uint64_t);
  return (uint64_t *)(void *)((char *)o - back);
}

static inline uint32_t hli_rc_load(const hl_object_t *o) {
  return hl_atomic_c11_load_relaxed_u32(&o->rc);
}
static inline uint16_t hli_rc_owner(const hl_object_t *o) {
  return hl_atomic_c11_load_relaxed_u16(&o->owner);
}
static inline bool hli_rc_owned(const hl_object_t *o) { return hli_rc_owner(o) == hl_rc_self; }

#if HL_ATOMIC_TSAN || !defined(NDEBUG)
static inline void hli_rc_plain_inc(hl_object_t *o) {
  hl_atomic_c11_store_relaxed_u32(&o->rc, hli_rc_load(o) + 1);
}
static inline bool hli_rc_plain_dec_is_zero(hl_object_t *o) {
  uint32_t rc = hli_rc_load(o);
  HL_ASSERT(rc > 0 && rc < HL_RC_IMMORTAL);
  hl_atomic_c11_store_relaxed_u32(&o->rc, rc - 1);
  return rc == 1;
}
#else
static inline void hli_rc_plain_inc(hl_object_t *o) { o->rc++; }
static inline bool hli_rc_plain_dec_is_zero(hl_object_t *o) { return --o->rc == 0; }
#endif

/* The other path (owner is the header's owner, already loaded). */
static inline void hli_incref_other(hl_object_t *o, uint16_t owner) {
  if (HL_UNLIKELY(owner == HL_OWNER_IMMORTAL)) {
    HLI_RC_STAT(HLI_RC_STAT_IMMORTAL);
    return;
  }
  HLI_RC_STAT(HLI_RC_STAT_ATOMIC);
  if (hl_rc_config.mode == HL_RC_BIASED) {
    hl_rc_incref_shared(o);
    return;
  }
  hl_atomic_add_relaxed_u32(&o->rc, 1);
}

static inline void hli_decref_other(hl_object_t *o, uint16_t owner) {
  if (HL_UNLIKELY(owner == HL_OWNER_IMMORTAL)) {
    HLI_RC_STAT(HLI_RC_STAT_IMMORTAL);
    return;
  }
  HLI_RC_STAT(HLI_RC_STAT_ATOMIC);
  if (hl_rc_config.mode == HL_RC_BIASED) {
    hl_rc_decref_shared(o);
    return;
  }
  /* Release: our writes to o happen before the free in whichever thread
   * takes the count to zero; that thread's acquire pairs with it. */
  uint32_t old = hl_atomic_faa_release_u32(&o->rc, (uint32_t)-1);
  HL_ASSERT(old > 0 && old < HL_RC_IMMORTAL);
  if (old == 1) {
    hl_atomic_acquire_after_rmw_u32(&o->rc);
    hl_obj_dealloc(o);
  }
}

/* The plain count reached zero: under the GIL the object dies; the biased
 * owner first checks that no other thread holds a reference. */
static inline void hli_plain_zero(hl_object_t *o) {
  if (HL_LIKELY(hl_rc_config.mode == HL_RC_GIL)) {
    hl_obj_dealloc(o);
    return;
  }
  /* Never shared, the common case: ours to free. Acquire: pairs with the
   * release of other threads' decrements when it was. */
  if (HL_LIKELY(hl_atomic_c11_load_acquire_u64(hli_rc_shared_word(o)) == 0))
    hl_obj_dealloc(o);
  else
    hl_rc_merge_zero_local(o);
}

static inline void hl_incref(hl_object_t *o) {
  uint16_t owner = hli_rc_owner(o);
  if (HL_LIKELY(owner == hl_rc_self)) {
    HLI_RC_STAT(HLI_RC_STAT_PLAIN);
    hli_rc_plain_inc(o);
    return;
  }
  hli_incref_other(o, owner);
}

static inline void hl_decref(hl_object_t *o) {
  uint16_t owner = hli_rc_owner(o);
  if (HL_LIKELY(owner == hl_rc_self)) {
    HLI_RC_STAT(HLI_RC_STAT_PLAIN);
    if (hli_rc_plain_dec_is_zero(o)) hli_plain_zero(o);
    return;
  }
  hli_decref_other(o, owner);
}

/* rc=biased: the calling thread merges the objects other threads queued to
 * it now, as it does at its next checkpoint (a no-op in the other modes). */
void hl_rc_merge_queued(void);
/* rc=biased, with the world stopped by the caller (hl_stw_stop): merges the
 * queues of every thread, so that hl_refcount is each object's true count
 * (what a cycle collector needs first). Returns the objects merged. */
uint64_t hl_rc_merge_all_stopped(void);

static inline void hl_xincref(hl_object_t *o) { if (o) hl_incref(o); }
static inline void hl_xdecref(hl_object_t *o) { if (o) hl_decref(o); }
/* Drops *p and sets it to NULL before the drop (Py_CLEAR): a finalizer that
 * runs during the drop never sees the dangling pointer. */
static inline void hl_clear(hl_object_t **p) {
  hl_object_t *o = *p;
  if (o) { *p = NULL; hl_decref(o); }
}
static inline hl_object_t *hl_newref(hl_object_t *o) { hl_incref(o); return o; }
/* The reference count (in every mode; a snapshot while other threads run).
 * rc=biased: local plus shared, which counts, until the owner merges it, a
 * reference that a queued object's queue holds (gc/rc_biased.c). */
static inline uint32_t hl_refcount(const hl_object_t *o) {
  if (HL_UNLIKELY(hl_rc_config.mode == HL_RC_BIASED)) return hl_rc_biased_count(o);
  return hli_rc_load(o);
}
static inline bool hl_is_immortal(const hl_object_t *o) {
  return hli_rc_load(o) >= HL_RC_IMMORTAL;
}

/* ---- singletons --------------------------------------------------------------
 * Objects outside the allocator carry the word rc=biased keeps in front of
 * every object (its shared count) themselves. */
typedef struct hl_static_object { uint64_t rc_shared; hl_object_t ob; } hl_static_object_t;
extern hl_static_object_t hl_none_static, hl_true_static, hl_false_static;
#define hl_None  (&hl_none_static.ob)
#define hl_True  (&hl_true_static.ob)
#define hl_False (&hl_false_static.ob)
static inline hl_object_t *hl_bool(bool b) { return hl_newref(b ? hl_True : hl_False); }

/* ---- built-in types ----------------------------------------------------------- */
extern const hl_type_t hl_none_type, hl_bool_type, hl_int_type, hl_float_type, hl_str_type,
    hl_tuple_type, hl_list_type, hl_dict_type, hl_weakref_type, hl_proxy_type;
static inline bool hl_is_kind(const hl_object_t *o, uint32_t k) { return o->type->kind == k; }

/* Keys: hash (-1 and HL_ERR_TYPE for an unhashable object) and equality (1,
 * 0, or -1 on error). Numbers compare across int and float, and equal
 * numbers hash alike (as in Python). */
int64_t hl_hash(hl_object_t *o);
int hl_eq(hl_object_t *a, hl_object_t *b);
/* The objects o references (tp_traverse); 0 or the visitor's nonzero value. */
int hl_traverse(hl_object_t *o, hl_visit_fn visit, void *arg);

/* int: 64-bit values; -5..256 are preallocated and shared. */
#define HL_SMALL_INT_MIN (-5)
#define HL_SMALL_INT_MAX 256
hl_object_t *hl_int_new(int64_t v);
int64_t hl_int_value(const hl_object_t *o);

/* float */
hl_object_t *hl_float_new(double v);
double hl_float_value(const hl_object_t *o);

/* str: immutable bytes, NUL-terminated, hash cached at first use. Strings of
 * one byte are preallocated and shared. hl_str_intern steals s and returns
 * the canonical object equal to it (interning it when it is the first). */
hl_object_t *hl_str_new(const char *bytes, size_t len);
hl_object_t *hl_str_from(const char *cstr);
hl_object_t *hl_str_intern(hl_object_t *s);
hl_object_t *hl_str_intern_cstr(const char *cstr);
const char *hl_str_data(const hl_object_t *o);
size_t hl_str_len(const hl_object_t *o);

/* tuple: fixed size; set each item once after hl_tuple_new (steals). The
 * layout is public so that the accessors inline, as CPython's
 * PyTuple_GET_ITEM/SET_ITEM do: they are in every tuple-building loop. */
typedef struct hl_tuple { hl_object_t ob; size_t size; hl_object_t *items[]; } hl_tuple_t;
hl_object_t *hl_tuple_new(size_t n);
hl_object_t *hl_tuple_pack(size_t n, ...);   /* borrows its arguments */
static inline size_t hl_tuple_size(const hl_object_t *t) {
  HL_ASSERT(t->type == &hl_tuple_type);
  return ((const hl_tuple_t *)t)->size;
}
static inline hl_object_t *hl_tuple_get(const hl_object_t *t, size_t i) {   /* borrowed */
  HL_ASSERT(t->type == &hl_tuple_type && i < ((const hl_tuple_t *)t)->size);
  return ((const hl_tuple_t *)t)->items[i];
}
/* A reference a tuple gives up (out of line: --gc=concurrent's barrier). */
void hl_tuple_item_drop(hl_object_t *old);
static inline void hl_tuple_set(hl_object_t *t, size_t i, hl_object_t *v) {  /* steals v */
  HL_ASSERT(t->type == &hl_tuple_type && i < ((hl_tuple_t *)t)->size);
  hl_object_t **slot = &((hl_tuple_t *)t)->items[i];
  hl_object_t *old = *slot;
  /* release: a tuple filled after it was tracked may be read by
   * --gc=concurrent's thread meanwhile (gc/gen_conc.c) */
  hl_atomic_c11_store_release_ptr((void **)slot, v);
  if (HL_UNLIKELY(old != NULL)) hl_tuple_item_drop(old);
}

/* list: a growable array (over-allocated as CPython's list_resize).
 *
 * Lists and dicts without a GIL (rc=atomic, rc=biased): every change takes
 * the container's own lock; hl_list_get_ref and hl_dict_get_ref read
 * without it (CPython 3.13t's protocol: a reference taken by an increment
 * that fails on a dying object, checked, else retried under the lock).
 * The borrowed reads (hl_list_get, hl_dict_get, hl_dict_next, hl_slot_get)
 * are safe only while no other thread can drop what they return. */
hl_object_t *hl_list_new(size_t n);          /* n items, each None */
size_t hl_list_size(const hl_object_t *l);
hl_object_t *hl_list_get(const hl_object_t *l, size_t i);         /* borrowed; NULL + HL_ERR_INDEX */
/* A new reference (NULL + HL_ERR_INDEX): what a thread must use without a
 * GIL, where another thread may drop the item hl_list_get borrowed. */
hl_object_t *hl_list_get_ref(hl_object_t *l, size_t i);
int hl_list_set(hl_object_t *l, size_t i, hl_object_t *v);        /* steals v */
int hl_list_append(hl_object_t *l, hl_object_t *v);               /* borrows v */
hl_object_t *hl_list_pop(hl_object_t *l);                         /* the last item, new ref */
int hl_list_clear(hl_object_t *l);

/* dict: open addressing over an index table, entries kept in insertion order
 * (CPython's compact dict). Keys are any hashable object. */
hl_object_t *hl_dict_new(void);
size_t hl_dict_size(const hl_object_t *d);
int hl_dict_set(hl_object_t *d, hl_object_t *key, hl_object_t *value);   /* borrows both */
hl_object_t *hl_dict_get(hl_object_t *d, hl_object_t *key);              /* borrowed; NULL: absent (HL_ERR_KEY) or error */
hl_object_t *hl_dict_get_ref(hl_object_t *d, hl_object_t *key);          /* a new reference; NULL as hl_dict_get */
int hl_dict_del(hl_object_t *d, hl_object_t *key);                       /* -1 + HL_ERR_KEY when absent */
int hl_dict_contains(hl_object_t *d, hl_object_t *key);                  /* 1, 0, -1 */
/* Iteration in insertion order: *pos starts at 0; borrowed key and value. */
bool hl_dict_next(const hl_object_t *d, size_t *pos, hl_object_t **key, hl_object_t **value);
void hl_dict_clear(hl_object_t *d);
hl_object_t *hl_dict_get_cstr(hl_object_t *d, const char *key);         /* borrowed */
int hl_dict_set_cstr(hl_object_t *d, const char *key, hl_object_t *value);

/* User-defined types and their instances: nslots attribute slots (NULL until
 * set), optionally an attribute dict, optionally a finalizer that runs once
 * when the instance is about to die and may resurrect it by storing a new
 * reference somewhere. Types live until hl_runtime_fini. */
hl_type_t *hl_class_new(const char *name, uint32_t nslots, bool has_dict,
                        hl_finalizer_fn finalizer);
hl_object_t *hl_instance_new(hl_type_t *cls);
hl_object_t *hl_slot_get(const hl_object_t *o, uint32_t i);             /* borrowed, may be NULL */
void hl_slot_set(hl_object_t *o, uint32_t i, hl_object_t *v);           /* borrows v (NULL clears) */
/* Attribute dict access (HL_ERR_TYPE when the class has no dict); through
 * a proxy, the referent's (HL_ERR_REFERENCE when it is gone). */
hl_object_t *hl_attr_get(hl_object_t *o, const char *name);             /* new ref or NULL */
int hl_attr_set(hl_object_t *o, const char *name, hl_object_t *v);      /* borrows v */

/* Weak references (instances only, as in Python: ints, strs and tuples
 * cannot be weakly referenced). When the referent dies, every weakref to it
 * is cleared first, then the callbacks run, newest weakref first, each with
 * its weakref. A proxy forwards hl_attr_get/hl_attr_set to its referent. */
typedef void (*hl_weakref_cb)(hl_object_t *weakref, void *arg);
hl_object_t *hl_weakref_new(hl_object_t *referent, hl_weakref_cb cb, void *arg);
hl_object_t *hl_proxy_new(hl_object_t *referent, hl_weakref_cb cb, void *arg);
hl_object_t *hl_weakref_get(hl_object_t *wr);    /* new ref, or NULL when dead */
size_t hl_weakref_count(hl_object_t *referent);

/* Copies (Python's copy module; gc/copy.c). hl_copy: copy.copy, a new
 * list, dict or instance holding the same references; ints, floats, strs,
 * None, bools, tuples and weakrefs are returned as themselves (a new
 * reference); a proxy gives a copy of its referent. hl_deepcopy:
 * copy.deepcopy, every container reached copied once, through a memo from
 * original to copy, so that shared objects stay shared and cycles are
 * copied as cycles; atoms are not copied, and a tuple is rebuilt only when
 * an item's copy differs. No recursion: any depth. NULL with the error set
 * (HL_ERR_NOMEM, HL_ERR_REFERENCE for a dead proxy, HL_ERR_VALUE for a
 * cycle of tuples alone), leaving nothing behind. The original must not
 * change meanwhile. */
hl_object_t *hl_copy(hl_object_t *o);
hl_object_t *hl_deepcopy(hl_object_t *o);

/* ---- the cycle collector (Python's gc module) ----------------------------------
 * With --gc=stw every container is tracked from creation in generation 0 and
 * CPython's generational collector finds the cycles reference counting
 * cannot free (gc/gcmodule.c: this API over the collector --gc chose;
 * gc/collect.c: the algorithm; gc/gen_stw.c: the schedule; gc/collector.h:
 * the table of collectors). With --gc=none nothing is tracked and cyclic
 * garbage leaks. */
#define HL_GC_GENERATIONS 3
enum {
  HL_GC_DEBUG_STATS = 1 << 0,          /* one line per collection on stderr */
  HL_GC_DEBUG_COLLECTABLE = 1 << 1,    /* print each collectable object found */
  HL_GC_DEBUG_UNCOLLECTABLE = 1 << 2,  /* print each uncollectable object found */
  HL_GC_DEBUG_SAVEALL = 1 << 5,        /* keep unreachable objects in gc.garbage */
  HL_GC_DEBUG_LEAK = HL_GC_DEBUG_COLLECTABLE | HL_GC_DEBUG_UNCOLLECTABLE | HL_GC_DEBUG_SAVEALL,
};

typedef struct hl_gc_info {
  int generation;
  /* The collection looked at the whole heap: a collection of generation 2
   * (stw), an increment that completed a scan (incremental; known when the
   * collection stops: false in the start callback). */
  bool full;
  uint64_t collected;       /* unreachable objects freed */
  uint64_t uncollectable;   /* unreachable objects moved to gc.garbage */
} hl_gc_info_t;
typedef void (*hl_gc_callback_fn)(bool start, const hl_gc_info_t *info, void *arg);

/* Per generation: the collections of that generation (with the younger
 * ones it takes along). Since hl_runtime_init or hl_gc_stats_reset. */
typedef struct hl_gc_stats {
  uint64_t collections[HL_GC_GENERATIONS];
  uint64_t collected[HL_GC_GENERATIONS];
  uint64_t uncollectable[HL_GC_GENERATIONS];
  uint64_t visited_gen[HL_GC_GENERATIONS];   /* objects examined (step 1's count) */
  uint64_t pause_ns_gen[HL_GC_GENERATIONS];
  uint64_t visited;         /* objects examined, all collections */
  uint64_t pause_ns_total;
  uint64_t untracked;       /* tuples and dicts untracked by collections (--gc-untrack) */
  /* The garbage backlog: containers the program says it dropped in cyclic
   * garbage (hl_gc_note_garbage) and not yet collected, sampled as each
   * collection starts (when it is largest); final: at the last sample. */
  uint64_t garbage_noted;
  uint64_t backlog_max, backlog_final;
  /* --gc=incremental (zero under the others; gc/gen_incr.c): */
  uint64_t increments;      /* pauses that did scan work (beside young collections) */
  uint64_t scans;           /* scans of the old generation completed */
  uint64_t scan_units;      /* the scans' work: objects marked, counted, passed, traversed */
  uint64_t scan_candidates; /* objects a scan could not prove reachable: validated */
  uint64_t budget_units;    /* the last increment's work budget, in units */
  uint64_t overruns;        /* pauses longer than --pause-budget-us (any generation) */
  uint64_t overrun_max_ns;  /* the longest of them */
  uint64_t overrun_units;   /* increments whose work exceeded the unit budget (one piece */
  uint64_t overrun_units_max;   /* that cannot be split: a component, a huge container) */
  uint64_t saturated;       /* objects whose count of referrers saturated (taken as rooted) */
  /* --gc=concurrent (gen_conc.c): the collector thread's chunks, their
   * scan units, the lists and dicts a chunk could not lock (not traversed),
   * its time in chunks and its CPU time (chunks, sleeps and wake-ups) */
  uint64_t conc_chunks, conc_units, conc_skipped, conc_busy_ns, conc_cpu_ns;
  /* ... its time in each of its phases (MARK, COUNT, ROOTS), and the
   * longest wall time from a scan's start to the end of its ROOTS (the
   * handshakes and the pacing's sleeps included) */
  uint64_t conc_phase_ns[3], conc_scan_wall_max_ns;
  uint64_t conc_assists;    /* handshakes that did the late scan's work themselves */
} hl_gc_stats_t;
/* A program (a workload) drops `containers` tracked containers in cyclic
 * garbage: the collector's backlog (hl_gc_stats_t) counts them until they
 * are collected. Thread-safe. */
void hl_gc_note_garbage(uint64_t containers);

bool hl_gc_active(void);                       /* --gc is not none */
/* Collects generation 0..2 (and the younger ones with it); returns the
 * number of unreachable objects found, or -1 for a bad generation. */
int64_t hl_gc_collect(int generation);
/* One increment of the collector now, automatic collection enabled or
 * not: with --gc=incremental a young collection and a budget's worth of
 * scan work (at least one unit); with stw the collection the thresholds
 * ask for, generation 0 when none does. Returns the unreachable objects
 * found. */
int64_t hl_gc_step(void);
/* --gc=incremental: each increment's scan work in units (objects marked,
 * counted, passed or traversed) instead of the time budget's conversion; 0: from --pause-budget-us again. For
 * tests: a budget in work is the same on every machine. */
void hl_gc_set_increment_units(uint64_t units);
void hl_gc_enable(void);
void hl_gc_disable(void);
bool hl_gc_isenabled(void);
void hl_gc_set_threshold(uint32_t a, uint32_t b, uint32_t c);
void hl_gc_get_threshold(uint32_t out[HL_GC_GENERATIONS]);
void hl_gc_get_count(uint32_t out[HL_GC_GENERATIONS]);
void hl_gc_freeze(void);                       /* every tracked object to the permanent generation */
void hl_gc_unfreeze(void);                     /* ... and back into the oldest */
size_t hl_gc_get_freeze_count(void);
/* Makes every tracked object, and every object reachable from one, immortal
 * (PEP 683's count, HL_RC_IMMORTAL): increments and decrements leave them
 * alone from then on. What a pre-forking server does to its master's heap
 * before the fork so that the workers' reference counts stop writing into
 * the shared pages (Instagram's Cinder, `immortalize_heap`; PEP 683 names
 * this use). Unlike --immortal=on, which makes only the runtime's own
 * objects immortal at creation (singletons, small ints, one-character and
 * interned strings), this acts on the program's heap as it stands. Objects
 * already immortal are left as they are (and not walked through). The
 * counts are kept, so that hl_gc_immortalize_undo can give them back.
 * rc=gil only, called by the thread holding the GIL: -1 with HL_ERR_VALUE
 * in the other refcount modes (their counts are split between an owner and
 * a shared word), -1 with HL_ERR_NOMEM without memory for the kept counts
 * (nothing changed). Returns the number of objects made immortal (0 with
 * --gc=none, which tracks nothing). */
int64_t hl_gc_immortalize(void);
/* Gives every object hl_gc_immortalize made immortal its count back (and
 * its owner and flags), newest first. Every reference taken to one of them
 * meanwhile must have been dropped: those increments and decrements did
 * nothing, so only balanced pairs leave the count right (a master that
 * forks, waits for its workers and then undoes it is such a program).
 * hl_runtime_fini forgets the kept counts: objects still immortal then
 * stay allocated. */
void hl_gc_immortalize_undo(void);
bool hl_gc_is_tracked(const hl_object_t *o);
void hl_gc_track(hl_object_t *o);
void hl_gc_untrack(hl_object_t *o);
hl_object_t *hl_gc_get_objects(int generation);   /* a new list; -1: every generation */
hl_object_t *hl_gc_get_referrers(hl_object_t *o); /* a new list of tracked objects referring to o */
hl_object_t *hl_gc_get_referents(hl_object_t *o); /* a new list of what o refers to */
void hl_gc_set_debug(unsigned flags);
unsigned hl_gc_get_debug(void);
hl_object_t *hl_gc_garbage(void);                 /* gc.garbage: borrowed list */
int hl_gc_callback_add(hl_gc_callback_fn fn, void *arg);
void hl_gc_callback_remove(hl_gc_callback_fn fn, void *arg);
void hl_gc_stats(hl_gc_stats_t *s);
/* Pause times of every collection, and per generation (owned by the collector). */
const struct hl_hist *hl_gc_pause_hist(int generation);   /* -1: all */
/* --gc=incremental: the work units of each increment (a histogram of
 * counts, not nanoseconds; empty under the other collectors). */
const struct hl_hist *hl_gc_increment_hist(void);
/* Free-threaded modes: the collector's times to stop the world, one per
 * collection and per gc-module call that stopped it (since the last reset). */
void hl_gc_stw_hist(struct hl_hist *out);
/* Without a GIL: how long the collecting thread took to delete the garbage
 * (and hand memory back) after the world resumed, per stop. */
void hl_gc_sweep_hist(struct hl_hist *out);
/* --gc=concurrent: the durations of the collector thread's chunks (ns). */
void hl_gc_chunk_hist(struct hl_hist *out);
/* Statistics, pause histograms and pause log start again from now (a
 * benchmark's timed part starts). Not while collecting. */
void hl_gc_stats_reset(void);
/* Minimum mutator utilisation over [the last reset, end_ns] at windows of
 * 1, 10 and 100 ms (hl_mmu, Cheng and Blelloch), from every pause since the
 * reset: each collection's start and end, a full collection's hand-back of
 * memory included. end_ns: now or later than the last collection. *exact
 * is false when a window held more pauses than the log keeps (its MMU is
 * then an upper bound; base/mmu.c). */
#define HL_GC_MMU_WINDOWS 3
extern const uint64_t hl_gc_mmu_window_ns[HL_GC_MMU_WINDOWS];
void hl_gc_mmu(uint64_t end_ns, double out[HL_GC_MMU_WINDOWS], bool *exact);
/* The same with each pause as long as the collecting thread's CPU time in
 * it (from its start callbacks to its end): what the collector's own work
 * leaves the mutators, without the time the OS ran something else inside a
 * pause (a shared machine preempts; a pause that waits to stop the world
 * counts only the stopper's CPU). Exact when hl_gc_mmu is. */
void hl_gc_mmu_cpu(uint64_t end_ns, double out[HL_GC_MMU_WINDOWS]);

/* A finalizer that is not safe to run on a cycle (a tp_del, before PEP 442):
 * instances of such a class found in cyclic garbage are uncollectable. */
void hl_class_set_legacy_finalizer(hl_type_t *cls, bool legacy);

HL_API_END
#ifdef __cplusplus
}
#endif
#endif /* HL_GC_H */
