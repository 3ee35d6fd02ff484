/* heaplab gc/: the layouts of the object layer, shared by its files.
 *
 * Main types (each object begins with hl_object_t; a container has an
 * hl_gc_head_t just before it, and its block starts at the head):
 *
 *   hl_int_t       header, int64 value                     24 B
 *   hl_float_t     header, double                          24 B
 *   hl_str_t       header, hash, length, bytes + NUL       32 B + len + 1
 *   hl_tuple_t     [gc] header, size, items[size]          16 + 24 + 8 n
 *   hl_list_t      [gc] header, size, allocated, items*    16 + 40
 *   hl_dict_t      [gc] header, used, keys*                16 + 32
 *   hl_instance_t  [gc] header, dict, weaklist, slots[n]   16 + 32 + 8 n
 *   hl_weakref_t   [gc] header, referent, cb, arg, links   16 + 56
 *
 * Per-thread state (hl_tstate_t): the free lists, the trashcan's deferred
 * list and depth, the error indicator, statistics counters folded into the
 * process totals when the thread clears its free lists.
 */
#ifndef HL_GC_INTERNAL_H
#define HL_GC_INTERNAL_H

#include "hl_alloc.h"
#include "hl_failpoint.h"
#include "hl_gc.h"
#include "hl_lock.h"
#include "hl_thread.h"

/* Memory that gc/ asks of the object allocator for other than an object
 * (item arrays, dict tables, snapshots): the HL_FAIL_OBJ failpoint first
 * (sync/hl_failpoint.h), so that a test can fail each of them in turn. */
static inline void *hli_mem_malloc(size_t n) {
  return hl_fail_hit(HL_FAIL_OBJ) ? NULL : hl_alloc_malloc(n);
}
static inline void *hli_mem_realloc(void *p, size_t n) {
  return hl_fail_hit(HL_FAIL_OBJ) ? NULL : hl_alloc_realloc(p, n);
}

/* The GC links (PyGC_Head). Untracked until the collector (a later layer)
 * links them: next == 0. */
typedef struct hl_gc_head {
  uintptr_t next;
  uintptr_t prev;
} hl_gc_head_t;

/* hli_rc_shared_word (hl_gc.h) counts on it */
_Static_assert(sizeof(hl_gc_head_t) == 2 * sizeof(uint64_t), "the GC head is two words");

#define HL_GC_HEAD(o) ((hl_gc_head_t *)(void *)(o) - 1)
#define HL_GC_OBJ(g)  ((hl_object_t *)(void *)((hl_gc_head_t *)(g) + 1))

typedef struct hl_int { hl_object_t ob; int64_t value; } hl_int_t;
typedef struct hl_float { hl_object_t ob; double value; } hl_float_t;
typedef struct hl_str {
  hl_object_t ob;
  int64_t hash;               /* -1 until computed */
  size_t len;
  char data[];                /* len bytes and a NUL */
} hl_str_t;
/* hl_tuple_t is in hl_gc.h (its accessors inline). */
/* The item array is a block [capacity][items...]: items points past the
 * capacity word, so that a reader without the lock (free-threaded modes)
 * checks its index against the array it actually reads, whatever
 * `allocated` says meanwhile (CPython 3.13t's ob_item does the same).
 * `lock` is the object lock and shared bit of the free-threaded modes
 * (below); 48 bytes in all, as before it the GC head and header fill a
 * 64-byte block. */
typedef struct hl_list {
  hl_object_t ob;
  size_t size;                /* 0 <= size <= allocated */
  size_t allocated;
  hl_object_t **items;        /* NULL when allocated == 0; capacity at items[-1] */
  uint32_t lock;              /* HLI_LOCK_* */
} hl_list_t;

/* The dict's table: 2^log2 int32 indexes (-1 empty, -2 deleted, else an
 * entry number), then `usable` entries filled in insertion order.
 *   nentries <= usable = 2^log2 * 2/3;  used <= nentries  */
typedef struct hl_dict_entry { int64_t hash; hl_object_t *key, *value; } hl_dict_entry_t;
typedef struct hl_dict_keys {
  uint8_t log2;
  size_t usable, nentries;
  int32_t *indices;
  hl_dict_entry_t *entries;
} hl_dict_keys_t;
/* used is 32 bits (a table holds at most 2^31 * 2/3 entries) so that the
 * object lock fits in the 32 bytes the dict had before it. */
typedef struct hl_dict {
  hl_object_t ob;
  uint32_t used;
  uint32_t lock;              /* HLI_LOCK_* */
  hl_dict_keys_t *keys;
} hl_dict_t;

typedef struct hl_weakref hl_weakref_t;
typedef struct hl_instance {
  hl_object_t ob;
  hl_object_t *dict;          /* NULL until the first attribute */
  hl_weakref_t *weaklist;     /* newest first */
  hl_object_t *slots[];
} hl_instance_t;

struct hl_weakref {
  hl_object_t ob;
  hl_object_t *referent;      /* NULL once the referent died */
  hl_weakref_cb cb;
  void *arg;
  hl_weakref_t *prev, *next;  /* in the referent's weaklist */
};

/* ---- per-thread state ----------------------------------------------------- */
#define HL_FL_FLOAT 100       /* CPython 3.11's PyFloat_MAXFREELIST */
#define HL_FL_TUPLE_SIZES 20  /* tuples of 1..19 items (PyTuple_MAXSAVESIZE) */
#define HL_FL_TUPLE 2000      /* PyTuple_MAXFREELIST */
#define HL_FL_LIST 80
#define HL_FL_DICT 80
#define HL_FL_KEYS 80        /* dict tables of the smallest size */
#define HL_TRASH_DEPTH 50     /* nested deallocations before deferring */
#define HLI_DROPS 8           /* references one container operation drops under its lock */

/* A free list counts the room left rather than its length, so that a push
 * tests one word: room is 0 until the thread has armed its exit destructor
 * (hli_tstate_arm), and stays 0 with --freelists=off. */
typedef struct hl_freelist { void *head; uint32_t room; } hl_freelist_t;

typedef struct hl_tstate {
  bool registered;            /* the exit destructor is armed */
  hl_freelist_t fl_float, fl_list, fl_dict, fl_keys;
  hl_freelist_t fl_tuple[HL_FL_TUPLE_SIZES];
  uint32_t trash_depth;
  hl_gc_head_t *trash;        /* deferred containers, linked through gc head next */
  hl_err_t err;
  char errmsg[160];
  hl_obj_stats_t stats;       /* folded into the totals by hl_freelists_clear */
  /* free-threaded containers (shared.c): references dropped while holding
   * a container's lock, dropped after it is released; and this thread's
   * batches of drops and frees waiting for a QSBR grace period */
  uint32_t ndrops;
  hl_object_t *drops[HLI_DROPS];
  struct hli_defer_batch *defer_open, *defer_sealed, *defer_sealed_tail;
  /* free-threaded collector: containers made minus containers freed by
   * this thread since it last added them to hli_gc.ft_count0 */
  int32_t gc_count;
  /* sweeping garbage after the world resumed (collect.c): what it frees
   * does not count against the next collection (track.c), as deletions
   * inside a collection do not */
  bool sweeping;
  /* rc=biased: the stripe this thread owns (track.c), and its bits in an
   * object's flags with the lowest bit set (HLI_GC_MINE_KEY), set with
   * the thread's tags (hli_gc_thread_tags); NULL and 0 while it owns none,
   * as in a thread whose tags were never set */
  uint16_t gc_mine_key;
  struct hli_gc_stripe *gc_mine;
} hl_tstate_t;

extern __thread hl_tstate_t hli_tstate;
extern bool hli_freelists_on;

/* Arms the calling thread's exit destructor (its free lists are drained
 * when it exits) and sets each list's room from --freelists. */
HL_INTERNAL void hli_tstate_arm(void);

/* ---- reference-count modes (rc.c: the table) ---------------------------------
 * One const row per --rc value, listed once in HL_RC_MODES (hl_config.h)
 * and defined in the mode's file (rc_gil.c, rc_atomic.c, rc_biased.c), as
 * liburcu gives each flavor a const struct of functions. The hot paths
 * (hl_incref/hl_decref in hl_gc.h, hli_obj_init below) never call through
 * a row: they compare the header's owner with the thread's tag and branch
 * on hl_rc_config.mode, data set from the row at start-up. The row serves
 * what is rare: start-up, threads attaching and detaching, resurrection,
 * the try-increment of another thread, merges.
 *   gil       its counts are plain: correct only while threads hold a GIL
 *             (hl_runtime_init runs one exactly then: hli_nogil());
 *   owners    each object is owned by the attached thread that made it,
 *             which counts it plainly (hl_rc_self = the thread's index;
 *             otherwise HL_RC_NOBODY, or 0 under the GIL);
 *   prefix    bytes in front of each block for the mode's own count, set
 *             while no object exists. A block is [prefix][GC head][object]
 *             for a container, [prefix][object] for the others;
 *   process_init    once per process, the first time the runtime starts in
 *             any mode (a breaker bit, locks): NULL for none;
 *   thread_attach   in the attaching thread, after its tags are set;
 *   thread_detach   in the detaching thread; leaves its tags cleared
 *             (NULL: rc.c clears them);
 *   resurrect, drop_resurrected, try_incref_other: below;
 *   merge_queued, merge_all_stopped: hl_gc.h (NULL: nothing is queued);
 *   disown_stopped, set_maybe_weakref: below (NULL: nothing to do). */
typedef struct hli_rc_row {
  const char *name;
  bool gil;
  bool owners;
  size_t prefix;
  void (*process_init)(void);
  void (*thread_attach)(hl_thread_t *t);
  void (*thread_detach)(hl_thread_t *t);
  void (*resurrect)(hl_object_t *o);
  bool (*drop_resurrected)(hl_object_t *o);
  bool (*try_incref_other)(hl_object_t *o);
  void (*merge_queued)(hl_thread_t *t);
  uint64_t (*merge_all_stopped)(void);
  void (*disown_stopped)(hl_object_t *o);
  void (*set_maybe_weakref)(hl_object_t *o);
} hli_rc_row_t;
#define HLI_RC_ROW_DECL_(ID, name, built, help, why_not) extern const hli_rc_row_t hli_rc_##name;
HL_RC_MODES(HLI_RC_ROW_DECL_)
#undef HLI_RC_ROW_DECL_
/* --rc's row (hli_rc_init). */
extern const hli_rc_row_t *hli_rc_row;

/* Sets hl_rc_config and the row from c (hl_runtime_init, while no object
 * exists and, for the thread tags, no thread is attached). */
HL_INTERNAL void hli_rc_init(const hl_config_t *c);
/* The row's prefix (rc=biased: 8 bytes, its shared count). */
extern size_t hli_rc_prefix;
/* The owner written into each new object in the free-threaded modes, XOR
 * HL_OWNER_NONE: the creating thread's index, or, for a thread that is not
 * attached (0, as in one whose tags were never set), HL_OWNER_NONE; one
 * load and an exclusive or at each object's birth. Set with hl_rc_self at
 * attach (rc.c). */
extern __thread uint16_t hli_rc_owner_x;
/* The thread's owner tag: its index without a GIL when attached, else 0. */
static inline uint16_t hli_rc_owner_tag(void) {
  uint16_t x = hli_rc_owner_x;
  return x ? (uint16_t)(x ^ HL_OWNER_NONE) : 0;
}
/* The calling thread's tags: t is it, attached, or NULL when it is not. */
HL_INTERNAL void hli_rc_set_thread_tags(const hl_thread_t *t);
/* The calling thread, attached, owns nothing: the tags of a thread with no
 * index (rc=biased, when its queue cannot be allocated). */
HL_INTERNAL void hli_rc_set_thread_nobody(void);
#define HLI_RC_SHARED_SHIFT 2
enum {   /* the low two bits of the shared word: its state (CPython's names) */
  HLI_RC_SHARED_DEFAULT = 0,
  HLI_RC_SHARED_MAYBE_WEAKREF = 1,
  HLI_RC_SHARED_QUEUED = 2,
  HLI_RC_SHARED_MERGED = 3,
};
/* The shared word of a new object: zero when owned; an object nobody owns
 * keeps its whole count there (merged), its local count stays 0. */
static inline void hli_rc_biased_init_at(hl_object_t *o, uint64_t *sh) {
  if (HL_LIKELY(o->owner != HL_OWNER_NONE)) {
    *sh = 0;
  } else {
    o->rc = 0;
    *sh = (1u << HLI_RC_SHARED_SHIFT) | HLI_RC_SHARED_MERGED;
  }
}
static inline void hli_rc_biased_init(hl_object_t *o) {
  hli_rc_biased_init_at(o, hli_rc_shared_word(o));
}
/* rc=biased: marks o as possibly weakly referenced (CPython's
 * _PyObject_SetMaybeWeakref), so that a weakref read from another thread
 * can take a reference while the owner still holds o; the same for an item
 * stored in a shared container, read by other threads' try-increments
 * (the owner then frees o with a compare-and-swap rather than a load).
 * Nothing to do in the other modes. */
HL_INTERNAL void hli_rc_set_maybe_weakref(hl_object_t *o);
/* With the world stopped and the queues merged: o's owner gives it up
 * (its whole count goes to shared), so any thread's decrement may free it
 * (rc=biased; nothing to do in the other modes). */
HL_INTERNAL void hli_rc_disown_stopped(hl_object_t *o);
/* A dying object (count zero, held by no one) about to run its finalizer
 * gets one reference, held by the caller; dropping it afterwards returns
 * true when the count went back to zero (not resurrected). */
HL_INTERNAL void hli_rc_resurrect(hl_object_t *o);
HL_INTERNAL bool hli_rc_drop_resurrected(hl_object_t *o);
/* A new reference to o unless its count is already zero (o is dying): the
 * free-threaded modes' weakref and container reads. Inline for a caller
 * that counts o plainly (under the GIL, the biased owner). */
HL_INTERNAL bool hli_rc_try_incref_other(hl_object_t *o);
static inline bool hli_rc_try_incref(hl_object_t *o) {
  if (hli_rc_owned(o)) {
    uint32_t rc = hli_rc_load(o);
    if (rc == 0) return false;   /* dying (only its owner frees it) */
    hli_rc_plain_inc(o);
    return true;
  }
  return hli_rc_try_incref_other(o);
}

/* ---- containers without a GIL (shared.c) -------------------------------------
 * In the free-threaded modes a list or dict is changed only under its
 * object lock, a word in the object:
 *   HLI_LOCK_HELD    the lock (a test-and-test-and-set spinlock)
 *   HLI_LOCK_SHARED  a thread other than the container's owner (the
 *                    header's owner: its creator's index) has read it with
 *                    hl_list_get_ref or hl_dict_get_ref, so readers may be
 *                    reading it without the lock
 * SHARED is set under the lock, by such a read, never cleared. Readers read
 * without the lock only a shared container, and only from an attached
 * thread, a QSBR reader; the owner, and any reader of a container not
 * shared yet, takes the lock. While a container is shared, what its writers
 * remove (item arrays, tables, the references to removed items) is freed
 * or dropped only after a grace period, so a reader never touches freed
 * memory; while it is not, every reader holds the lock. So a container that
 * threads only change (a channel: one appends, another pops) or only its
 * owner reads never pays for the grace periods (CPython 3.13t marks its
 * lists shared on a non-owner's read in the same way). Under the GIL none
 * of this runs: one branch on the mode. */
#define HLI_LOCK_HELD   1u
#define HLI_LOCK_SHARED 2u
/* Whether threads run in parallel: no GIL serialises them, so containers
 * take their locks, what shared readers may still see is freed after a
 * grace period, and the collector stops the world. The runtime decides it
 * at start-up (hl_runtime_init: the refcount mode's row says whether its
 * counts need the GIL); how counts are kept is the other question, asked
 * of hl_rc_config.mode. */
extern bool hli_runtime_nogil;
static inline bool hli_nogil(void) { return hli_runtime_nogil; }
/* An attached thread in a free-threaded mode: a QSBR reader (its owner tag
 * is its index, 0 for a thread not attached). */
static inline bool hli_qsbr_reader(void) { return hli_rc_owner_x != 0; }
static inline bool hli_container_owned(const hl_object_t *o) {
  uint16_t tag = hli_rc_owner_tag();
  return tag != 0 && hl_atomic_c11_load_relaxed_u16(&o->owner) == tag;
}
HL_INTERNAL void hli_objlock_wait(uint32_t *w);
/* Takes o's lock (w, its lock word); returns whether o is shared.
 * Free-threaded modes only. */
static inline bool hli_container_lock(const hl_object_t *o, uint32_t *w) {
  (void)o;
  uint32_t v = hl_atomic_load_relaxed_u32(w);
  /* a full barrier: acquire, pairs with the release in hli_container_unlock */
  if (HL_UNLIKELY((v & HLI_LOCK_HELD) || !hl_atomic_cas_u32(w, v, v | HLI_LOCK_HELD)))
    hli_objlock_wait(w);
  return (hl_atomic_load_relaxed_u32(w) & HLI_LOCK_SHARED) != 0;   /* ours now */
}
/* A read under the lock (a container not shared yet): an attached thread
 * other than the owner marks it shared, so that its next reads, and every
 * other thread's, go without the lock. Returns whether o is shared now. */
static inline bool hli_container_lock_for_read(const hl_object_t *o, uint32_t *w) {
  if (hli_container_lock(o, w)) return true;
  if (!hli_qsbr_reader() || hli_container_owned(o)) return false;
  /* only the holder changes the word */
  hl_atomic_store_relaxed_u32(w, hl_atomic_load_relaxed_u32(w) | HLI_LOCK_SHARED);
  return true;
}
HL_INTERNAL void hli_drops_flush(bool shared);
/* Releases the lock, then drops what was removed under it (after a grace
 * period when shared). */
static inline void hli_container_unlock(uint32_t *w, bool shared) {
  uint32_t v = hl_atomic_load_relaxed_u32(w);
  /* Release: pairs with the next holder's acquire. */
  hl_atomic_store_release_u32(w, v & ~HLI_LOCK_HELD);
  if (hli_tstate.ndrops) hli_drops_flush(shared);
}
/* A reference a container gives up: dropped now under the GIL; in the
 * free-threaded modes the caller holds the container's lock, so it is
 * dropped at hli_container_unlock (a drop may run a finalizer that uses the
 * container). */
HL_INTERNAL void hli_drop_overflow(void);
static inline void hli_container_drop(hl_object_t *o) {
  if (HL_LIKELY(!hli_nogil())) {
    hl_decref(o);
    return;
  }
  if (HL_UNLIKELY(hli_tstate.ndrops == HLI_DROPS)) hli_drop_overflow();
  hli_tstate.drops[hli_tstate.ndrops++] = o;
}
/* --gc=concurrent (gen_conc.c): while the collector thread scans, an
 * instance slot write (hl_slot_set) or a tuple item replaced (hl_tuple_set)
 * drops the reference it replaces after a grace period, so that an object
 * the scan has just read stays valid until the scan's chunk ends (a list or
 * dict is locked by the scan instead). Raised with the world stopped by the
 * first handshake after a scan starts; lowered (release) by the collector
 * thread after the scan's last traversal, or with the world stopped when a
 * scan is given up. C11 accesses: plain moves on x86-64, no compiler
 * barrier on the slot writes' path. */
extern uint32_t hli_gc_scanning_word;
static inline bool hli_gc_scanning(void) {
  return hl_atomic_c11_load_acquire_u32(&hli_gc_scanning_word) != 0;
}
static inline void hli_gc_scanning_set(bool on) {
  hl_atomic_c11_store_release_u32(&hli_gc_scanning_word, on);
}

/* What a shared container removed: dropped, or freed (a block of the object
 * allocator), after a grace period; right away when not shared. */
HL_INTERNAL void hli_defer_decref(hl_object_t *o);
HL_INTERNAL void hli_defer_free(void *block);
static inline void hli_release_ref(hl_object_t *o, bool shared) {
  if (shared) hli_defer_decref(o);
  else hl_decref(o);
}
static inline void hli_release_block(void *block, bool shared) {
  if (shared) hli_defer_free(block);
  else hl_alloc_free(block);
}
/* A thread detaches: everything it deferred is dropped or freed first. */
HL_INTERNAL void hli_defer_thread_exit(void);
HL_INTERNAL void hli_shared_init(void);

/* Object memory: a block from the object allocator, the header set, rc 1.
 * gc (a constant at each call): a container whose block starts at its GC
 * head, with the shared word (rc=biased) just before it, so that no look
 * at the type says where that word is. */
static inline hl_object_t *hli_obj_init_(void *mem, const hl_type_t *t, bool gc) {
  hl_object_t *o = (hl_object_t *)mem;
  /* constants: under the GIL, one 8-byte store */
  o->rc = 1;
  o->flags = 0;
  o->owner = HL_OWNER_PLAIN;
  o->type = t;
  if (HL_UNLIKELY(hl_rc_config.mode != HL_RC_GIL)) {
    /* the thread's index, or HL_OWNER_NONE: never PLAIN without a GIL */
    o->owner = (uint16_t)(hli_rc_owner_x ^ HL_OWNER_NONE);
    if (hli_rc_prefix)
      hli_rc_biased_init_at(o, gc ? (uint64_t *)(void *)HL_GC_HEAD(o) - 1 : hli_rc_shared_word(o));
  }
  return o;
}
static inline hl_object_t *hli_obj_init(void *mem, const hl_type_t *t) {
  return hli_obj_init_(mem, t, false);
}
static inline hl_object_t *hli_obj_init_gc(void *mem, const hl_type_t *t) {
  return hli_obj_init_(mem, t, true);
}

HL_INTERNAL hl_object_t *hli_obj_alloc(const hl_type_t *t, size_t size);
HL_INTERNAL hl_object_t *hli_gc_alloc(const hl_type_t *t, size_t size);
HL_INTERNAL void hli_obj_free(hl_object_t *o);
HL_INTERNAL void hli_gc_free(hl_object_t *o);
/* A static (never freed) object at start-up: rc 1, or immortal. */
HL_INTERNAL void hli_obj_init_static(hl_object_t *o, const hl_type_t *t);
HL_INTERNAL void hli_make_immortal(hl_object_t *o);

/* Free lists: push a dead object, pop one. */
static inline void *hli_fl_pop(hl_freelist_t *fl) {
  void *p = fl->head;
  if (p) {
    fl->head = *(void **)p;
    fl->room++;
  }
  return p;
}
/* The first push of a thread that has not armed its destructor yet. */
HL_INTERNAL bool hli_fl_push_first(hl_freelist_t *fl, void *p);
static inline bool hli_fl_push(hl_freelist_t *fl, void *p) {
  if (HL_UNLIKELY(fl->room == 0))
    return hli_tstate.registered ? false : hli_fl_push_first(fl, p);
  *(void **)p = fl->head;
  fl->head = p;
  fl->room--;
  return true;
}

/* Weakrefs of a referent that is about to be freed: cleared, callbacks run. */
HL_INTERNAL void hli_weakrefs_clear(hl_object_t *o);
HL_INTERNAL hl_weakref_t **hli_weaklist(hl_object_t *o);

/* Type start-up and shut-down hooks (object.c calls them in order). */
HL_INTERNAL int hli_int_init(void);
HL_INTERNAL int hli_str_init(void);
HL_INTERNAL void hli_str_fini(void);
HL_INTERNAL int hli_tuple_init(void);
HL_INTERNAL void hli_tuple_fini(void);
HL_INTERNAL void hli_class_fini(void);
HL_INTERNAL void hli_freelists_drain(hl_tstate_t *ts);

/* dict internals: the entry holding key (or NULL), for interning. */
HL_INTERNAL hl_dict_entry_t *hli_dict_lookup(hl_dict_t *d, hl_object_t *key, int64_t hash);
HL_INTERNAL int hli_dict_insert(hl_dict_t *d, hl_object_t *key, int64_t hash, hl_object_t *value);
HL_INTERNAL int64_t hli_str_hash(hl_object_t *o);

/* ---- the collector's lists (collect.c, the collectors) --------------------------------
 * A tracked container's GC head is in one circular doubly linked list, the
 * list of its generation (next != 0 <=> tracked; an untracked one has prev
 * 0 too). During a collection the list being collected is singly linked
 * through next, and prev holds
 *     gc_refs << 2 | COLLECTING
 * (CPython's trick, Python/gc.c): no extra word per object. Objects moved to
 * the unreachable list carry NEXT_UNREACHABLE in their next pointer until
 * the list is finished. */
#define HL_GC_NEXT_UNREACHABLE ((uintptr_t)1)
#define HL_GC_PREV_COLLECTING  ((uintptr_t)2)
/* The top 16 bits of prev belong to the incremental collector's scan
 * (gc/gen_incr.c: whether the object is in the scan, the scan's parity,
 * whether it was reached, a count of its referrers), which outlives the
 * increments while the mutator unlinks objects: every list operation keeps
 * them, as it keeps COLLECTING. Pointers fit below: user addresses are
 * under 2^47 on x86-64 and 2^48 on AArch64 (gen_incr.c checks at start-up).
 * During a collection prev holds gc_refs << 2, under 2^34. */
#define HL_GC_PREV_SCAN_MASK   ((uintptr_t)0xFFFF << 48)
#define HL_GC_PREV_MASK_FLAGS  (HL_GC_PREV_SCAN_MASK | (uintptr_t)3)
#define HL_GC_REFS_SHIFT 2

static inline hl_gc_head_t *hli_gc_next(const hl_gc_head_t *g) {
  return (hl_gc_head_t *)(g->next & ~HL_GC_NEXT_UNREACHABLE);
}
static inline hl_gc_head_t *hli_gc_prev(const hl_gc_head_t *g) {
  return (hl_gc_head_t *)(g->prev & ~HL_GC_PREV_MASK_FLAGS);
}
static inline void hli_gc_list_init(hl_gc_head_t *l) { l->next = l->prev = (uintptr_t)l; }
static inline bool hli_gc_list_empty(const hl_gc_head_t *l) { return l->next == (uintptr_t)l; }
/* Without a GIL, a thread may read whether a container is tracked (its
 * next word, hli_gc_tracked) while another, holding the list's lock,
 * unlinks its neighbour: the list operations store next words with relaxed
 * atomic stores (plain moves on x86-64 and AArch64). */
static inline void hli_gc_set_next(hl_gc_head_t *g, uintptr_t v) {
  hl_atomic_c11_store_relaxed_uptr(&g->next, v);
}
/* Appends g; g keeps its prev flags (COLLECTING survives moves). */
static inline void hli_gc_list_append(hl_gc_head_t *g, hl_gc_head_t *l) {
  hl_gc_head_t *last = (hl_gc_head_t *)l->prev;
  g->prev = (g->prev & HL_GC_PREV_MASK_FLAGS) | (uintptr_t)last;
  hli_gc_set_next(g, (uintptr_t)l);
  hli_gc_set_next(last, (uintptr_t)g);
  l->prev = (uintptr_t)g;
}
/* Untracks g: next and prev 0, COLLECTING included, so that the
 * collector's visitors, which test that bit alone, pass it by. */
static inline void hli_gc_list_remove(hl_gc_head_t *g) {
  hl_gc_head_t *prev = hli_gc_prev(g), *next = hli_gc_next(g);
  hli_gc_set_next(prev, (uintptr_t)next);
  next->prev = (next->prev & HL_GC_PREV_MASK_FLAGS) | (uintptr_t)prev;
  hli_gc_set_next(g, 0);
  g->prev = 0;
}
static inline void hli_gc_list_move(hl_gc_head_t *g, hl_gc_head_t *to) {
  hl_gc_head_t *prev = hli_gc_prev(g), *next = hli_gc_next(g);
  hli_gc_set_next(prev, (uintptr_t)next);
  next->prev = (next->prev & HL_GC_PREV_MASK_FLAGS) | (uintptr_t)prev;
  hli_gc_list_append(g, to);
}
/* Appends every element of from to to; from ends empty. */
static inline void hli_gc_list_merge(hl_gc_head_t *from, hl_gc_head_t *to) {
  if (hli_gc_list_empty(from)) return;
  hl_gc_head_t *tail = (hl_gc_head_t *)to->prev;
  hl_gc_head_t *first = (hl_gc_head_t *)from->next, *last = (hl_gc_head_t *)from->prev;
  hli_gc_set_next(tail, (uintptr_t)first);
  first->prev = (first->prev & HL_GC_PREV_MASK_FLAGS) | (uintptr_t)tail;
  to->prev = (uintptr_t)last;
  hli_gc_set_next(last, (uintptr_t)to);
  hli_gc_list_init(from);
}
HL_INTERNAL size_t hli_gc_list_size(const hl_gc_head_t *l);

/* The collector's state; generations[i] heads generation i. */
typedef struct hl_gc_gen { hl_gc_head_t head; uint32_t threshold, count; } hl_gc_gen_t;
typedef struct hl_gc_state {
  bool active;                 /* --gc != none: containers are tracked */
  bool untrack;                /* --gc-untrack: tuples and dicts that cannot be in a cycle are not */
  bool enabled;                /* automatic collection (gc.enable) */
  bool collecting;
  unsigned debug;
  hl_gc_gen_t gen[HL_GC_GENERATIONS];
  hl_gc_head_t permanent;      /* frozen */
  uint64_t long_lived_total, long_lived_pending;
  hl_object_t *garbage;        /* list, created on first use */
  /* free-threaded modes: generation 0's count, shared by the threads
   * (each adds its own count in batches of HLI_GC_COUNT_BATCH) */
  int32_t ft_batch;            /* HLI_GC_COUNT_BATCH, or less for a low threshold */
  const struct hli_collector *collector;   /* --gc's row (collector.h) */
  uint64_t budget_ns;          /* --pause-budget-us: a longer pause is an overrun (0: none) */
  uint64_t garbage_noted;      /* hl_gc_note_garbage, atomic */
  uint64_t increment_units;    /* hl_gc_set_increment_units (0: from budget_ns), atomic */
  /* gathered objects whose stripe the next collection's first walk sets
   * to 0 (track.c; collect.c's update_refs), world stopped */
  bool stripes_stale;
  /* without a GIL and with --gc-sweep=resumed, while a thread holds the
   * world stopped: the garbage its collections find waits in `sweep`, and
   * the memory hand-back of a full collection (sweep_hand_back), until the
   * world resumes (hli_gc_sweep) */
  bool sweep_resumed;          /* --gc-sweep=resumed */
  bool sweep_later, sweep_hand_back;
  hl_gc_head_t sweep;
  HL_CACHE_ALIGNED uint64_t ft_count0;   /* an int64_t, as two's complement */
} hl_gc_state_t;
extern hl_gc_state_t hli_gc;

/* ---- tracking without a GIL (track.c) ---------------------------------------------
 * A new container goes into the generation-0 list of its creator's stripe
 * (rc=biased: the owning thread's index, a list only its owner changes,
 * without a lock, until it gives an object up; rc=atomic: the thread's
 * index modulo HLI_GC_STRIPES, under that stripe's spinlock; track.c's top
 * says who may change which list). The stripe is written in the object's
 * flags (HL_OF_STRIPE_*;
 * 0: in one of the shared lists: generations 1 and 2, permanent, and
 * generation 0's own list, which holds the dicts tracked after their
 * creation and, under rc=biased, the containers of a thread without a
 * stripe), so that whoever frees the object finds its list. Only
 * the creator writes it, before the object is published, and then the
 * collector, with the world stopped: a collection first moves every
 * stripe's list into generation 0 and sets their stripes to 0. Survivors
 * go to the shared lists, whose lock is stripe 0's (older objects die less
 * often; CPython 3.13t has no lists at all: it finds its objects by walking
 * mimalloc's heaps, an allocator heaplab does not require).
 *
 * The collection itself runs with the world stopped (sync/stw.c), in the
 * thread whose allocation crossed the threshold; biased counts are merged
 * first (gc/rc_biased.c), and an object's count is then local + shared. */
#define HLI_GC_STRIPES 1023u
#define HL_OF_STRIPE_SHIFT 6
#define HL_OF_STRIPE_MASK ((uint16_t)(0x3FFu << HL_OF_STRIPE_SHIFT))
#define HLI_GC_COUNT_BATCH 64   /* at most; threshold / 16 when lower (track.c) */
_Static_assert(HLI_GC_STRIPES < (HL_OF_STRIPE_MASK >> HL_OF_STRIPE_SHIFT) + 1, "stripe fits");
typedef struct hli_gc_stripe {
  hl_spinlock_t lock;
  /* rc=biased: its owner gave up one of its objects since the last
   * gather, so changes take the lock (track.c's top) */
  uint32_t shared;
  hl_gc_head_t head;          /* this stripe's generation 0 (unused in stripe 0) */
} HL_CACHE_ALIGNED hli_gc_stripe_t;
/* [0]: the lock of the shared lists (hli_gc's generations and permanent) */
extern hli_gc_stripe_t hli_gc_stripes[HLI_GC_STRIPES + 1];
/* the highest stripe a container went into: a collection looks no further */
extern uint32_t hli_gc_stripes_used;

static inline unsigned hli_gc_stripe_of(const hl_object_t *o) {
  return (o->flags & HL_OF_STRIPE_MASK) >> HL_OF_STRIPE_SHIFT;
}
static inline void hli_gc_set_stripe(hl_object_t *o, unsigned s) {
  o->flags = (uint16_t)((o->flags & ~HL_OF_STRIPE_MASK) | (s << HL_OF_STRIPE_SHIFT));
}
/* rc=biased: the stripe the calling thread owns (its index), or 0. */
static inline unsigned hli_gc_owned_stripe(void) {
  unsigned me = hl_rc_self;   /* HL_RC_NOBODY without owners */
  return me - 1u < HLI_GC_STRIPES ? me : 0;
}
/* Whether the owner of stripe s may change its list without the lock. */
static inline bool hli_gc_stripe_private(unsigned s) {
  return !hl_atomic_load_acquire_u32(&hli_gc_stripes[s].shared);
}
/* An object's stripe bits with the lowest flag bit set, which the mask
 * leaves out: equal to hli_tstate.gc_mine_key only for the thread that
 * owns the stripe (0, a thread that owns none, matches no object). */
#define HLI_GC_MINE_KEY(flags) ((uint16_t)(((flags) & HL_OF_STRIPE_MASK) | 1u))
_Static_assert(!(HL_OF_STRIPE_MASK & 1u), "the key's bit is outside the stripe");
/* The calling thread's tags changed (rc.c): its own stripe, the one its
 * index names under rc=biased (hli_gc_owned_stripe), with the shared
 * lists' high mark raised to it, so that the inline paths below test one
 * pointer; NULL for none. hl_rc_self equals that stripe's index while
 * gc_mine is set. */
HL_INTERNAL void hli_gc_thread_tags(void);
/* rc=biased: a container's count, local + shared (hl_rc_biased_count),
 * inline for the collector's first walk; the shared word sits just before
 * the GC head. */
static inline uint32_t hli_rc_biased_count_gc(const hl_gc_head_t *g) {
  uint32_t local = hli_rc_load(HL_GC_OBJ(g));
  if (local >= HL_RC_IMMORTAL) return local;
  uint64_t sh = hl_atomic_load_relaxed_u64((uint64_t *)(void *)g - 1);
  int64_t n = (int64_t)local + ((int64_t)sh >> HLI_RC_SHARED_SHIFT);
  return n < 0 ? 0 : (uint32_t)n;
}
/* The slow paths of hli_gc_link and hli_gc_unlink without a GIL: with the
 * stripe's lock (s: the owned stripe, or 0; o's stripe). */
HL_INTERNAL void hli_gc_link_locked(hl_object_t *o, unsigned s);
HL_INTERNAL void hli_gc_unlink_locked(hl_object_t *o, unsigned s);
HL_INTERNAL void hli_gc_count_add_self(void);
/* rc=biased: o's owner gives it up (any thread may free it from now on);
 * called by the owner, or a thread that excludes it, before the give-up is
 * published (track.c's top). */
HL_INTERNAL void hli_gc_disowned(const hl_object_t *o);
HL_INTERNAL void hli_gc_track_ft(hl_object_t *o);
/* Adds this thread's count to generation 0's and collects when it
 * exceeds the threshold. The count is off by less than a batch per thread
 * (CPython 3.13t batches 512); the batch is threshold / 16, at most
 * HLI_GC_COUNT_BATCH, so that the error stays small against the threshold,
 * and 1 below a threshold of 256 (the tests'), which then triggers exactly
 * as under the GIL. */
HL_INTERNAL void hli_gc_count_flush_ft(void);
static inline int32_t hli_gc_batch(void) {
  return hl_atomic_c11_load_relaxed_i32(&hli_gc.ft_batch);
}

/* What one collection did beyond its result: objects examined, survivors
 * (the reachable objects left in young, plus the resurrected, which go to
 * old; counted as the collection confirms them, so a finalizer that frees a
 * survivor or makes a container meanwhile is not reflected: the figure is
 * for the full-collection rule, a heuristic), containers untracked. */
typedef struct hl_gc_work { uint64_t visited, survivors, untracked; } hl_gc_work_t;
/* One collection of `young` (reachable survivors are left in it); returns
 * the unreachable count and fills *info and adds to *work. old receives
 * resurrected objects and objects kept by SAVEALL. untrack_dicts: untrack
 * the dicts that can be (CPython does it in full collections only). */
/* Deletes garbage a collection left in hli_gc.sweep (collect.c), in the
 * thread that collected, the world running. */
HL_INTERNAL void hli_gc_sweep(hl_gc_head_t *garbage);
HL_INTERNAL uint64_t hli_gc_collect_list(hl_gc_head_t *young, hl_gc_head_t *old,
                                         hl_gc_info_t *info, bool untrack_dicts,
                                         hl_gc_work_t *work);
/* The containers a tracked container references, which is all the
 * collector's visitors look at: traverse_gc where the type has it (the
 * built-in types: no call for an int or a string), else traverse, inline
 * (a weakref references nothing the collector follows: no traverse).
 * The collectors' one way to walk a container (collect.c, gen_incr.c). */
static inline void hli_gc_traverse(hl_object_t *o, hl_visit_fn visit, void *arg) {
  const hl_type_t *t = o->type;
  int (*fn)(hl_object_t *, hl_visit_fn, void *) = t->traverse_gc ? t->traverse_gc : t->traverse;
  if (fn) fn(o, visit, arg);
}
/* Whether a reachable container can be untracked for good (collect.c): a
 * tuple, or with dicts a dict, that holds nothing that may be tracked. */
HL_INTERNAL bool hli_gc_untrackable(const hl_object_t *o, bool dicts);
/* The allocation trigger: generation 0's count passed its threshold; the
 * collector's row decides what to do (gcmodule.c). */
HL_INTERNAL void hli_gc_trigger(void);
/* The gc module's start-up (while no object exists) and shut-down. */
HL_INTERNAL int hli_gc_init(const hl_config_t *c, char *err, size_t errlen);
HL_INTERNAL void hli_gc_fini(void);

/* Called for each new container: tracks it in generation 0 and counts it
 * against the threshold (collecting first when it is exceeded). */
static inline void hli_gc_on_alloc(void) {
  if (HL_UNLIKELY(hli_nogil())) {
    if (HL_UNLIKELY(++hli_tstate.gc_count >= hli_gc_batch())) hli_gc_count_flush_ft();
    return;
  }
  hl_gc_gen_t *g0 = &hli_gc.gen[0];
  if (++g0->count > g0->threshold && g0->threshold && hli_gc.enabled && !hli_gc.collecting)
    hli_gc_trigger();
}
/* The end of a container's construction (its fields valid): counts it
 * against generation 0's threshold, collecting first when that is
 * exceeded (the new object, not yet tracked, is held by its creator and
 * so are its referents), then tracks it in generation 0. */
static inline void hli_gc_link(hl_object_t *o) {
  if (!hli_gc.active) return;
  if (HL_UNLIKELY(hli_nogil())) {
    /* counted as hli_gc_on_alloc does; then, in the common case (an owned
     * stripe, private), appended without a lock (track.c's top) */
    if (HL_UNLIKELY(++hli_tstate.gc_count >= hli_gc_batch())) hli_gc_count_flush_ft();
    hli_gc_stripe_t *st = hli_tstate.gc_mine;
    if (HL_UNLIKELY(!st || hl_atomic_load_acquire_u32(&st->shared))) {
      hli_gc_link_locked(o, hli_gc_owned_stripe());
      return;
    }
    /* o is not published yet */
    o->flags = (uint16_t)((o->flags & ~HL_OF_STRIPE_MASK) | (hli_tstate.gc_mine_key & HL_OF_STRIPE_MASK));
    hl_gc_head_t *g = HL_GC_HEAD(o);
    g->prev = 0;
    hli_gc_list_append(g, &st->head);
    return;
  }
  hli_gc_on_alloc();
  hl_gc_head_t *g = HL_GC_HEAD(o);
  g->prev = 0;
  hli_gc_list_append(g, &hli_gc.gen[0].head);
}
/* A container created untracked (a dict under --gc-untrack=on): counted
 * against generation 0's threshold like any container, as CPython counts
 * every GC allocation, but in no list until hli_gc_track. */
static inline void hli_gc_link_untracked(void) {
  if (hli_gc.active) hli_gc_on_alloc();
}
/* The built-in types' traverse and traverse_gc share one body, inline,
 * with gc_only constant: whether the referent x is visited. */
static inline bool hli_visit_wanted(const hl_object_t *x, bool gc_only) {
  return x && (!gc_only || (x->flags & HL_OF_GC));
}
/* Relaxed: without a GIL another thread's list operation may write the
 * word (a neighbour's unlink), never to or from zero. */
static inline bool hli_gc_tracked(const hl_object_t *o) {
  return hl_atomic_c11_load_relaxed_uptr(&HL_GC_HEAD(o)->next) != 0;
}
/* Into generation 0 (a no-op without a collector or when already tracked). */
static inline void hli_gc_track(hl_object_t *o) {
  hl_gc_head_t *g = HL_GC_HEAD(o);
  if (!hli_gc.active || hli_gc_tracked(o)) return;
  if (HL_UNLIKELY(hli_nogil())) {
    hli_gc_track_ft(o);
    return;
  }
  g->prev = 0;
  hli_gc_list_append(g, &hli_gc.gen[0].head);
}
/* Whether o may be, or later become, part of a cycle the collector must
 * see (CPython's _PyObject_GC_MAY_BE_TRACKED): not for an object that is
 * no container; for a tuple only while it is tracked (an untracked tuple
 * holds only such objects and never changes); for any other container,
 * always, tracked or not (a dict may become tracked at its next insertion). */
static inline bool hli_gc_may_be_tracked(const hl_object_t *o) {
  if (!(o->flags & HL_OF_GC)) return false;
  if (o->type->kind == HL_K_TUPLE) return hli_gc_tracked(o);
  return true;
}

/* At deallocation: out of its generation, and off generation 0's count. */
static inline void hli_gc_unlink(hl_object_t *o) {
  if (HL_UNLIKELY(hli_nogil())) {
    /* without a collector nothing is tracked and nothing counted: no call
     * (what the call cost: docs/measurements.md, "Refcount modes") */
    if (!hli_gc.active) return;
    if (HL_UNLIKELY(--hli_tstate.gc_count <= -hli_gc_batch())) hli_gc_count_add_self();
    /* o is dying: only the collector (world stopped) or this thread
     * changes whether it is tracked, and its stripe */
    if (!hli_gc_tracked(o)) return;
    /* the stripe is ours (so gc_mine is set), and private */
    if (HL_UNLIKELY(HLI_GC_MINE_KEY(o->flags) != hli_tstate.gc_mine_key ||
                    hl_atomic_load_acquire_u32(&hli_tstate.gc_mine->shared))) {
      hli_gc_unlink_locked(o, hli_gc_stripe_of(o));
      return;
    }
    hli_gc_list_remove(HL_GC_HEAD(o));
    return;
  }
  hl_gc_head_t *g = HL_GC_HEAD(o);
  if (g->next) hli_gc_list_remove(g);
  if (hli_gc.gen[0].count > 0) hli_gc.gen[0].count--;
}
HL_INTERNAL void hli_weakref_unlink(hl_weakref_t *wr);
/* Runs the callbacks of a chain of cleared weakrefs (linked through next,
 * each holding a reference that is dropped after its call); returns how many. */
HL_INTERNAL uint64_t hli_weakref_callbacks_run(hl_weakref_t *first);

#endif /* HL_GC_INTERNAL_H */
