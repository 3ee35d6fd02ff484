/* rc=biased: biased reference counting.
 *
 * Jiho Choi, Thomas Shull and Josep Torrellas, "Biased reference counting:
 * minimizing atomic operations in garbage collection", PACT 2018; as CPython
 * builds it without the GIL (PEP 703, Sam Gross; Python/brc.c and the
 * refcount functions of Objects/object.c in 3.13). Written anew here.
 *
 * The observation: most objects are only ever touched by the thread that
 * made them. So each object has an owner, and two counts:
 *   local   the owner's, changed by the owner alone with plain loads and
 *           stores (relaxed atomics: other threads may read it);
 *   shared  everyone else's, changed with atomic instructions; it may go
 *           below zero (a reference the owner counted, dropped elsewhere).
 * The object's count is local + shared; it dies when that reaches zero.
 *
 * Where the counts live (16-byte header, hl_gc.h): local is the header's rc,
 * the owner its 16-bit owner field (the thread's index, sync/hl_thread.h;
 * 0: nobody). The shared count needs more than the 32 bits the flags and
 * owner could spare: it can grow with the references other threads hold
 * (a list built by another thread holding one object a million times), and
 * unlike local, whose overflow the owner could handle alone, no single
 * thread can handle its overflow. So it is a 64-bit word placed in front of
 * the object's block (hli_rc_prefix = 8), as CPython 3.13t puts its own
 * ob_ref_shared in a 64-bit field: the header stays 16 bytes, the gil and
 * atomic modes keep their layout, and with 16-byte size classes most
 * objects keep their block size (a tuple of 2: 56 + 8 = 64 bytes, as
 * before; an int or a float: 24 + 8 = 32, as before). The word is
 *     shared = count << 2 | state
 * with CPython's states:
 *   DEFAULT         owned, not queued
 *   MAYBE_WEAKREF   owned; a weakref to it exists, so another thread may
 *                   try to take a reference from a shared count of zero
 *   QUEUED          owned; queued to its owner for a merge
 *   MERGED          no owner (owner 0): the whole count is shared
 *
 * The rules (each a compare-and-swap on shared unless it says otherwise):
 *   owner increments        local += 1 (no atomic)
 *   owner decrements        local -= 1; at zero:
 *                             shared == 0: nobody else holds it: free it
 *                             otherwise: no owner, state MERGED; free it
 *                             when the count is zero
 *   other increments        shared += 4 (an atomic add)
 *   other decrements        shared at zero (DEFAULT or MAYBE_WEAKREF): the
 *                             reference was counted in local; set QUEUED,
 *                             keep the count (the queue now holds that
 *                             reference) and push the object on its owner's
 *                             queue;
 *                           else shared -= 4 (it may go negative); MERGED
 *                             and zero: free it
 *   the owner merges        for each queued object, at its next checkpoint:
 *                             shared = (local + count - 1) << 2 | MERGED,
 *                             local = 0, no owner; free it at zero
 * A merged object has no owner: every thread counts it as "other". An
 * object queued to an owner that has exited is merged by the thread that
 * queues it (the exited-owner rule), under its index's mutex so that no
 * new thread takes the index meanwhile.
 *
 * Indexes are reused: a thread that attaches with an index inherits the
 * objects a previous thread of that index still owns (their local counts
 * are the previous owner's references, now held elsewhere: only the owner
 * may change them, and the new thread is the owner). The index's mutex
 * orders the previous owner's last writes, and any exited-owner merge,
 * before the new owner's first.
 *
 * The queue of each index: Dmitry Vyukov's bounded MPMC queue (1024cores,
 * "Bounded MPMC queue"), used with many producers and one consumer: a ring
 * of cells, each with a sequence number that says whose turn it is;
 * producers claim a position with a compare-and-swap, the owner takes cells
 * in order. Lock-free for producers; a full ring (an owner that has not
 * reached a checkpoint for 1024 queued objects) spills into an overflow
 * array under the index's mutex. A producer sets `signaled` and, when it was
 * clear, asks the owner for a merge at its next checkpoint (a breaker bit).
 *
 * Finding the owner of a queued object without a lock: `occupant` names the
 * thread attached with that index, or NULL. A producer that is attached is a
 * QSBR reader (sync/qsbr.c), so the owner, at detach, clears occupant,
 * waits for a grace period (every producer that saw it set has finished its
 * push), and merges what is left. A producer that is not attached (the main
 * thread, tearing down) is no QSBR reader: it takes the mutex instead.
 *
 * Without memory (never a crash; failpoints of kind HL_FAIL_RUNTIME):
 *   the overflow cannot grow   the producer stops the world, merges every
 *                              queue and then its object itself, and
 *                              resumes (merge_stopping_world says why that
 *                              is safe inside a decrement);
 *   a queue at attach          the thread runs owning nothing, as a thread
 *                              with no index (thread_attach).
 * Both are counted (rc_merges_stopped, rc_threads_ownerless).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gc_internal.h"
#include "hl_probe.h"
#include "hl_sync.h"


#define RING 1024u   /* cells per queue: a power of two */

typedef struct cell {
  uint64_t seq;        /* pos: free for the producer of pos; pos+1: holds that object */
  hl_object_t *obj;
} cell_t;

/* Per thread index. Fields are in order of who writes them. */
typedef struct slot {
  pthread_mutex_t mutex;      /* occupant changes, the overflow, exited-owner merges */
  hl_thread_t *occupant;      /* under mutex; read by attached producers with acquire */
  cell_t *cells;              /* RING cells, allocated at the index's first claim */
  hl_object_t **overflow;     /* under mutex */
  size_t noverflow, overflow_cap;
  uint64_t has_overflow;      /* relaxed hint that the overflow is not empty */
  HL_CACHE_ALIGNED uint64_t signaled;   /* a merge request is pending */
  HL_CACHE_ALIGNED uint64_t enq;        /* producers' next position */
  HL_CACHE_ALIGNED uint64_t deq;        /* the owner's next position (owner only) */
} slot_t;

static slot_t slots[HL_THREAD_INDEX_MAX + 1];
/* the highest index ever claimed: hl_rc_merge_all_stopped looks no further
 * (a young collection stops the world every few hundred allocations; 4,095
 * slots of three cache lines each would cost it more than the collection) */
static uint32_t slots_used;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;
static int merge_bit = -1;

/* The calling thread owns objects: attached, rc=biased, with an index. */
static inline bool self_owner(void) {
  return hl_rc_self != HL_OWNER_PLAIN && hl_rc_self <= HL_THREAD_INDEX_MAX;
}

static inline int64_t sh_count(uint64_t s) { return (int64_t)s >> HLI_RC_SHARED_SHIFT; }
static inline unsigned sh_state(uint64_t s) { return (unsigned)(s & 3); }
static inline uint64_t sh_make(int64_t count, unsigned state) {
  return ((uint64_t)count << HLI_RC_SHARED_SHIFT) | state;
}

/* ---- the queue ------------------------------------------------------------------ */

/* false: the ring is full. */
static bool ring_push(slot_t *s, hl_object_t *o) {
  uint64_t pos = hl_atomic_load_relaxed_u64(&s->enq);
  for (;;) {
    cell_t *c = &s->cells[pos & (RING - 1)];
    /* Acquire: pairs with the owner's release when it emptied the cell, so
     * our write of obj comes after its read of the previous one. */
    uint64_t seq = hl_atomic_load_acquire_u64(&c->seq);
    int64_t dif = (int64_t)(seq - pos);
    if (dif == 0) {
      uint64_t seen = hl_atomic_cas_value_u64(&s->enq, pos, pos + 1);
      if (seen == pos) {
        hl_atomic_store_relaxed_ptr((void **)&c->obj, o);
        /* Release: the owner that sees seq == pos + 1 sees obj, and our
         * writes to the object before the decrement that queued it. */
        hl_atomic_store_release_u64(&c->seq, pos + 1);
        return true;
      }
      pos = seen;
    } else if (dif < 0) {
      return false;
    } else {
      pos = hl_atomic_load_relaxed_u64(&s->enq);
    }
  }
}

/* The owner only. NULL: empty, or the next cell is claimed but not written
 * yet (its producer signals after writing, so it is taken at a later merge). */
static hl_object_t *ring_pop(slot_t *s) {
  uint64_t pos = s->deq;
  cell_t *c = &s->cells[pos & (RING - 1)];
  uint64_t seq = hl_atomic_load_acquire_u64(&c->seq);   /* pairs with ring_push's release */
  if (seq != pos + 1) return NULL;
  hl_object_t *o = hl_atomic_load_relaxed_ptr((void *const *)&c->obj);
  /* Release: pairs with the acquire of the producer that takes this cell
   * RING positions later. */
  hl_atomic_store_release_u64(&c->seq, pos + RING);
  s->deq = pos + 1;
  return o;
}

/* false: no memory to grow the overflow (queue_object then merges o with
 * the world stopped). A failpoint of kind HL_FAIL_RUNTIME. */
static bool overflow_push_locked(slot_t *s, hl_object_t *o) {
  if (s->noverflow == s->overflow_cap) {
    size_t cap = s->overflow_cap ? 2 * s->overflow_cap : 256;
    hl_object_t **a = hl_fail_hit(HL_FAIL_RUNTIME) ? NULL : realloc(s->overflow, cap * sizeof *a);
    if (!a) return false;
    s->overflow = a;
    s->overflow_cap = cap;
  }
  s->overflow[s->noverflow++] = o;
  hl_atomic_store_relaxed_u64(&s->has_overflow, 1);
  return true;
}

/* Asks t, the occupant, to merge (once per batch: the owner clears signaled
 * before it drains, so a push after that asks again). */
static void signal_owner(slot_t *s, hl_thread_t *t) {
  if (hl_atomic_xchg_u64(&s->signaled, 1) == 0) hl_thread_request(t, (unsigned)merge_bit);
}

/* ---- merging ------------------------------------------------------------------------ */

/* Sums local into shared, plus extra, and gives o up: no owner from now on.
 * Only the owner, or a thread that excludes every owner (the exited-owner
 * rule, under the index's mutex), may call it: it reads and clears local.
 * Returns the count. */
static int64_t explicit_merge(hl_object_t *o, int64_t extra) {
  uint64_t *sh = hli_rc_shared_word(o);
  /* Local and owner are cleared before the merge is published (CPython
   * gh-119999): once shared says MERGED with a count, another thread may
   * take that count to zero and free o at once. Meanwhile o has no owner
   * and its state is not zero (QUEUED), so every other thread's decrement
   * only subtracts. */
  int64_t local = (int64_t)hli_rc_load(o);
  if (hli_gc.active) hli_gc_disowned(o);   /* its young list takes a lock now */
  hl_atomic_c11_store_relaxed_u32(&o->rc, 0);
  hl_atomic_c11_store_relaxed_u16(&o->owner, HL_OWNER_NONE);
  uint64_t s = hl_atomic_load_relaxed_u64(sh);
  for (;;) {
    int64_t n = sh_count(s) + local + extra;
    /* a full barrier: pairs with the release of earlier decrements before
     * we may free o, and orders the stores above before the merge */
    uint64_t seen = hl_atomic_cas_value_u64(sh, s, sh_make(n, HLI_RC_SHARED_MERGED));
    if (seen == s) return n;
    s = seen;
  }
}

/* One object of the owner's queue: the queue's reference goes. */
static void merge_queued(hl_object_t *o) {
  int64_t n = explicit_merge(o, -1);
  HL_ASSERT(n >= 0);
  hli_tstate.stats.rc_merges_done++;
  if (n == 0) hl_obj_dealloc(o);
}

/* Everything queued to s so far. */
static void drain(slot_t *s) {
  hl_atomic_xchg_u64(&s->signaled, 0);   /* before draining: see signal_owner */
  hl_object_t *o;
  while ((o = ring_pop(s))) merge_queued(o);
  while (hl_atomic_load_relaxed_u64(&s->has_overflow)) {
    pthread_mutex_lock(&s->mutex);
    hl_object_t **a = s->overflow;
    size_t n = s->noverflow;
    s->overflow = NULL;
    s->noverflow = s->overflow_cap = 0;
    hl_atomic_store_relaxed_u64(&s->has_overflow, 0);
    pthread_mutex_unlock(&s->mutex);
    for (size_t i = 0; i < n; i++) merge_queued(a[i]);
    free(a);
    while ((o = ring_pop(s))) merge_queued(o);
  }
}

/* The breaker handler: the calling thread merges its queue. */
static void merge_own_queue(hl_thread_t *t) {
  if (!self_owner()) return;
  uint64_t before = hli_tstate.stats.rc_merges_done;
  drain(&slots[t->index]);
  HL_PROBE(rc_merge, (int)t->index, hli_tstate.stats.rc_merges_done - before, 0);
}

static void merge_handler(hl_thread_t *t, unsigned bit, void *arg) {
  (void)bit;
  (void)arg;
  merge_own_queue(t);
}

/* With the world stopped (sync/stw.c) the caller merges every thread's
 * queue: each owner is parked or blocked, its last changes to local counts
 * ordered before us by the stop, and it changes none until the resume. What
 * a cycle collector needs before it reads counts (local + shared, with no
 * queue holding a reference of its own). Returns the objects merged. */
static uint64_t merge_all_stopped(void) {
  if (!hl_stw_stopped()) hl_die("hl_rc_merge_all_stopped: the world is not stopped");
  uint64_t before = hli_tstate.stats.rc_merges_done;
  uint32_t used = hl_atomic_load_acquire_u32(&slots_used);
  for (size_t i = 1; i <= used; i++) {
    slot_t *s = &slots[i];
    if (s->cells && hl_atomic_load_acquire_ptr((void *const *)&s->occupant)) drain(s);
  }
  HL_PROBE(rc_merge, hl_thread_self() ? (int)hl_thread_self()->index : 0,
           hli_tstate.stats.rc_merges_done - before, 1);
  return hli_tstate.stats.rc_merges_done - before;
}

/* No room to queue o to its owner: the ring is full and the overflow
 * cannot grow (no memory). A decrement cannot fail, and waiting for the
 * owner to make room is not safe (the owner may be blocked on us), so the
 * caller merges o itself, with the owner held still by a stop of the world
 * rather than by the owner's cooperation:
 *   - stopped, every other attached thread is parked at a checkpoint or
 *     blocked (sync/stw.c), and neither happens in the middle of a change
 *     to a local count (those are inline, with no checkpoint); the stop
 *     orders the owner's last changes before our reads, and our merge
 *     before its next ones, as for merge_all_stopped. So the owner's
 *     exclusion that explicit_merge needs holds for every owner at once,
 *     and we first merge every queue (merge_all_stopped): the owners'
 *     rings are empty afterwards and the overflows freed, so the next
 *     objects queue again instead of stopping the world each;
 *   - o itself is in no queue (we failed to push it) and stays QUEUED and
 *     owned meanwhile: its local count still holds the reference we drop,
 *     so its owner cannot take local to zero, and no drain merges it. We
 *     merge it under its index's mutex, as the exited-owner rule does, in
 *     case its owner detached before the stop (a new thread cannot take
 *     the index during the stop: attaching waits for the resume).
 * When is stopping the world safe here? queue_object runs inside a
 * decrement (hl_rc_decref_shared), and every decrement may already stop
 * the world: the one that drops a last reference runs the object's
 * finalizer and deallocation, which may allocate and start a collection,
 * which stops the world (gen_stw.c, gen_incr.c). So a caller of hl_decref
 * already holds no lock that a stopping world needs (hl_thread.h: the
 * stopper "must not hold a lock a parked thread could need"): a
 * container's lock is never held across a decrement (gc/shared.c defers
 * the drops made under it to hli_container_unlock, for this very reason:
 * a drop may run code), and the index's mutex, which we held, is released
 * above. A thread that already stopped the world (a collector, or a
 * finalizer run inside our own stop) does not stop it again (stops do not
 * nest): every owner is parked already, it merges o alone. Two threads
 * that come here at once take turns (the second waits, parked, inside
 * hl_stw_stop). The caller's own queue, if it owns one, is drained too,
 * even from inside its own drain (a merge freed an object whose decrement
 * brought us here): drain is reentrant, ring_pop moves deq before it
 * returns and the outer drain holds its overflow array alone.
 * A thread that is not attached stops the world the same way (hl_stw_stop
 * allows it: bench/runner.c's probe and tests/test_rc_biased.c's
 * merge_all_stopped do so); it is no QSBR reader, so it has no read-side
 * section that the stop's wait could end. Counted in rc_merges_stopped. */
static void merge_stopping_world(slot_t *s, hl_object_t *o) {
  bool stop = !hl_stw_stopped();
  if (stop) {
    hl_stw_stop();
    merge_all_stopped();
  }
  pthread_mutex_lock(&s->mutex);
  int64_t n = explicit_merge(o, -1);
  pthread_mutex_unlock(&s->mutex);
  if (stop) hl_stw_resume();
  HL_ASSERT(n >= 0);
  hli_tstate.stats.rc_merges_done++;
  hli_tstate.stats.rc_merges_stopped++;
  if (n == 0) hl_obj_dealloc(o);
}

/* A decrement by another thread found shared at zero: the owner merges o. */
static void queue_object(hl_object_t *o) {
  uint16_t owner = hli_rc_owner(o);
  if (HL_UNLIKELY(owner == HL_OWNER_NONE)) {
    /* The owner gave o up meanwhile (CPython's _Py_brc_queue_object does
     * the same): no queue needed, the queue's reference goes as any other
     * thread's. Cannot happen with the rules here (a queued object's count
     * holds the queue's reference in local), kept as the safe answer. */
    hl_rc_decref_shared(o);
    return;
  }
  HL_ASSERT(owner >= 1 && owner <= HL_THREAD_INDEX_MAX);
  slot_t *s = &slots[owner];
  if (hl_thread_self()) {
    /* attached, so a QSBR reader: occupant stays valid until our next
     * checkpoint (see the top). Acquire: pairs with the claim's release. */
    hl_thread_t *t = hl_atomic_load_acquire_ptr((void *const *)&s->occupant);
    if (t && ring_push(s, o)) {
      hli_tstate.stats.rc_merges_queued++;
      signal_owner(s, t);
      return;
    }
  }
  pthread_mutex_lock(&s->mutex);
  hl_thread_t *t = s->occupant;
  if (t) {
    if (HL_UNLIKELY(!ring_push(s, o) && !overflow_push_locked(s, o))) {
      pthread_mutex_unlock(&s->mutex);
      merge_stopping_world(s, o);
      return;
    }
    hli_tstate.stats.rc_merges_queued++;
    signal_owner(s, t);
    pthread_mutex_unlock(&s->mutex);
    return;
  }
  /* The owner has exited and nobody has its index: we merge, holding the
   * mutex so that no thread claims the index (and starts changing local)
   * meanwhile. */
  int64_t n = explicit_merge(o, -1);
  pthread_mutex_unlock(&s->mutex);
  hli_tstate.stats.rc_merges_done++;
  if (n == 0) hl_obj_dealloc(o);
}

/* ---- the counting rules ------------------------------------------------------------ */

void hl_rc_incref_shared(hl_object_t *o) {
  hli_tstate.stats.rc_shared_increfs++;
  hl_atomic_add_relaxed_u64(hli_rc_shared_word(o), 1ull << HLI_RC_SHARED_SHIFT);
}

void hl_rc_decref_shared(hl_object_t *o) {
  hli_tstate.stats.rc_shared_decrefs++;
  uint64_t *sh = hli_rc_shared_word(o);
  uint64_t s = hl_atomic_load_relaxed_u64(sh), ns;
  if (sh_state(s) == HLI_RC_SHARED_MERGED) {
    /* Merged is for good: no decrement can queue it any more, so a plain
     * atomic subtract will do, as rc=atomic's (a compare-and-swap loop
     * would retry under contention: None, when it is not immortal, is
     * such an object). Release, and acquire before the free, as there. */
    uint64_t old = hl_atomic_faa_u64(sh, (uint64_t)-(int64_t)(1ull << HLI_RC_SHARED_SHIFT));
    HL_ASSERT(sh_count(old) > 0);
    if (old == sh_make(1, HLI_RC_SHARED_MERGED)) {
      hl_atomic_acquire_after_rmw_u64(sh);
      hl_obj_dealloc(o);
    }
    return;
  }
  bool queue;
  for (;;) {
    queue = s == HLI_RC_SHARED_DEFAULT || s == HLI_RC_SHARED_MAYBE_WEAKREF;
    ns = queue ? HLI_RC_SHARED_QUEUED : s - (1ull << HLI_RC_SHARED_SHIFT);
    /* A full barrier, so also the release our writes to o need before a
     * thread that frees it (the acquire is its own CAS, or the fence below). */
    uint64_t seen = hl_atomic_cas_value_u64(sh, s, ns);
    if (seen == s) break;
    s = seen;
  }
  if (queue) {
    queue_object(o);
  } else if (ns == HLI_RC_SHARED_MERGED) {
    hl_atomic_acquire_after_rmw_u64(sh);
    hl_obj_dealloc(o);
  }
}

/* Returns true when o is dead (the caller frees it). */
static bool zero_local(hl_object_t *o) {
  uint64_t *sh = hli_rc_shared_word(o);
  /* Acquire: pairs with the release of other threads' decrements. */
  uint64_t s = hl_atomic_load_acquire_u64(sh);
  if (s == 0) return true;
  /* No owner before MERGED (CPython gh-121794): a thread that sees the
   * merged state never sees the object still owned. */
  if (hli_gc.active) hli_gc_disowned(o);   /* its young list takes a lock now */
  hl_atomic_c11_store_relaxed_u16(&o->owner, HL_OWNER_NONE);
  for (;;) {
    uint64_t ns = (s & ~(uint64_t)3) | HLI_RC_SHARED_MERGED;
    uint64_t seen = hl_atomic_cas_value_u64(sh, s, ns);
    if (seen == s) return ns == HLI_RC_SHARED_MERGED;
    s = seen;
  }
}

void hl_rc_merge_zero_local(hl_object_t *o) {
  /* the common case first, as zero_local's: never shared */
  if (HL_LIKELY(hl_atomic_load_acquire_u64(hli_rc_shared_word(o)) == 0) || zero_local(o))
    hl_obj_dealloc(o);
}

static void disown_stopped(hl_object_t *o) {
  uint16_t owner = hli_rc_owner(o);
  if (owner == HL_OWNER_NONE || owner == HL_OWNER_IMMORTAL || hli_rc_load(o) >= HL_RC_IMMORTAL)
    return;
  /* a queued object stays with its owner: its queue still names it */
  if (sh_state(hl_atomic_load_relaxed_u64(hli_rc_shared_word(o))) == HLI_RC_SHARED_QUEUED) return;
  explicit_merge(o, 0);
}

uint32_t hl_rc_biased_count(const hl_object_t *o) {
  uint32_t local = hli_rc_load(o);
  if (local >= HL_RC_IMMORTAL) return local;
  int64_t n = (int64_t)local + sh_count(hl_atomic_load_relaxed_u64(hli_rc_shared_word(o)));
  return n < 0 ? 0 : (uint32_t)n;
}

static void set_maybe_weakref(hl_object_t *o) {
  if (hli_rc_load(o) >= HL_RC_IMMORTAL) return;
  uint64_t *sh = hli_rc_shared_word(o);
  uint64_t s = hl_atomic_load_relaxed_u64(sh);
  while (sh_state(s) == HLI_RC_SHARED_DEFAULT) {
    uint64_t seen = hl_atomic_cas_value_u64(sh, s, s | HLI_RC_SHARED_MAYBE_WEAKREF);
    if (seen == s) return;
    s = seen;
  }
}

static bool try_incref_other(hl_object_t *o) {
  uint32_t local = hli_rc_load(o);
  if (local >= HL_RC_IMMORTAL) return true;
  if (hli_rc_owned(o)) {
    if (local == 0) return false;   /* we are freeing it */
    hl_atomic_c11_store_relaxed_u32(&o->rc, local + 1);
    return true;
  }
  /* CPython's _Py_TryIncRefShared: a shared count of zero with no state
   * may be the last moment of an object its owner is freeing (it frees at
   * local zero when it reads shared zero, without a CAS), and merged zero
   * is dead; anything else holds a reference the CAS can add to. A zero
   * with MAYBE_WEAKREF is safe: the owner then needs a CAS to free. */
  uint64_t *sh = hli_rc_shared_word(o);
  uint64_t s = hl_atomic_load_relaxed_u64(sh);
  for (;;) {
    if (s == HLI_RC_SHARED_DEFAULT || s == HLI_RC_SHARED_MERGED) return false;
    uint64_t seen = hl_atomic_cas_value_u64(sh, s, s + (1ull << HLI_RC_SHARED_SHIFT));
    if (seen == s) return true;
    s = seen;
  }
}

static void resurrect(hl_object_t *o) {
  uint64_t *sh = hli_rc_shared_word(o);
  if (self_owner()) {
    hl_atomic_c11_store_relaxed_u16(&o->owner, hl_rc_self);
    hl_atomic_c11_store_relaxed_u32(&o->rc, 1);
    hl_atomic_store_relaxed_u64(sh, 0);
  } else {
    hl_atomic_c11_store_relaxed_u16(&o->owner, HL_OWNER_NONE);
    hl_atomic_c11_store_relaxed_u32(&o->rc, 0);
    hl_atomic_store_relaxed_u64(sh, sh_make(1, HLI_RC_SHARED_MERGED));
  }
}

static bool drop_resurrected(hl_object_t *o) {
  if (hli_rc_owned(o)) {
    uint32_t local = hli_rc_load(o);
    HL_ASSERT(local > 0);
    hl_atomic_c11_store_relaxed_u32(&o->rc, --local);
    return local == 0 && zero_local(o);
  }
  /* no owner (the finalizer ran on a thread that is not attached, or the
   * owner merged it meanwhile): merged, so never queued */
  uint64_t *sh = hli_rc_shared_word(o);
  uint64_t s = hl_atomic_load_relaxed_u64(sh);
  for (;;) {
    HL_ASSERT(sh_state(s) == HLI_RC_SHARED_MERGED && sh_count(s) > 0);
    uint64_t ns = s - (1ull << HLI_RC_SHARED_SHIFT);
    uint64_t seen = hl_atomic_cas_value_u64(sh, s, ns);
    if (seen == s) return ns == HLI_RC_SHARED_MERGED;
    s = seen;
  }
}

/* ---- threads ------------------------------------------------------------------------- */

static void slots_init(void) {
  for (size_t i = 0; i < HL_ARRAY_LEN(slots); i++) pthread_mutex_init(&slots[i].mutex, NULL);
}

/* The thread's tags are set (rc.c): an owner claims its index's queue. */
static void thread_attach(hl_thread_t *t) {
  if (!self_owner()) return;
  slot_t *s = &slots[t->index];
  pthread_mutex_lock(&s->mutex);
  if (!s->cells) {
    cell_t *cells = hl_fail_hit(HL_FAIL_RUNTIME) ? NULL : calloc(RING, sizeof *cells);
    if (!cells) {
      /* No memory for the queue: the thread runs owning nothing, as a
       * thread with no index does (rc.c). No object has this index as its
       * owner (the cells come with the index's first owner and stay), so
       * nothing can be queued to it; the thread's new objects have no
       * owner, counted shared; its containers go to the shared, locked
       * young list (track.c: hli_gc_owned_stripe() is 0); occupant stays
       * NULL, so merge_all_stopped skips the slot, and the detach finds
       * self_owner() false. Slower (every count atomic), never wrong. */
      pthread_mutex_unlock(&s->mutex);
      hli_rc_set_thread_nobody();
      hli_tstate.stats.rc_threads_ownerless++;
      return;
    }
    s->cells = cells;
    for (uint64_t i = 0; i < RING; i++) s->cells[i].seq = i;
    s->enq = s->deq = 0;
    hl_atomic_max_u32(&slots_used, t->index);   /* a merger then sees the cells */
  }
  HL_ASSERT(s->deq == hl_atomic_load_relaxed_u64(&s->enq) && !s->noverflow);
  /* Release: a producer that reads occupant (acquire) sees the cells. */
  hl_atomic_store_release_ptr((void **)&s->occupant, t);
  pthread_mutex_unlock(&s->mutex);
  hl_rc_self = (uint16_t)t->index;
}

/* Merge what is queued, give the index up (see the top), clear the tags. */
static void thread_detach(hl_thread_t *t) {
  bool owner = self_owner();
  uint16_t self = hl_rc_self;
  hli_rc_set_thread_tags(NULL);
  if (!owner) return;
  slot_t *s = &slots[t->index];
  /* As owner first: the merges may free objects, whose deallocation may
   * decrement others we own. */
  hl_rc_self = self;
  drain(s);
  /* From here on we change no local count: an exited-owner merge by
   * another thread may run as soon as occupant is NULL. */
  hl_rc_self = HL_RC_NOBODY;
  pthread_mutex_lock(&s->mutex);
  hl_atomic_store_release_ptr((void **)&s->occupant, NULL);
  pthread_mutex_unlock(&s->mutex);
  /* every attached producer that saw us as occupant has pushed */
  hl_qsbr_synchronize();
  /* What they pushed: no other thread touches these objects' local counts
   * now (an exited-owner merge only takes objects it queues itself, and an
   * object is queued once until merged). */
  drain(s);
  HL_ASSERT(s->deq == hl_atomic_load_relaxed_u64(&s->enq));
}

/* Once per process (rc.c), whichever mode starts first: the queues' locks
 * and the breaker bit through which producers ask an owner to merge. */
static void process_init(void) {
  pthread_once(&slots_once, slots_init);
  merge_bit = hl_thread_break_register(merge_handler, NULL);
  if (merge_bit < 0) hl_die("no breaker bit left for biased reference counting");
}

const hli_rc_row_t hli_rc_biased = {
  .name = "biased",
  .owners = true,
  .prefix = sizeof(uint64_t),
  .process_init = process_init,
  .thread_attach = thread_attach,
  .thread_detach = thread_detach,
  .resurrect = resurrect,
  .drop_resurrected = drop_resurrected,
  .try_incref_other = try_incref_other,
  .merge_queued = merge_own_queue,
  .merge_all_stopped = merge_all_stopped,
  .disown_stopped = disown_stopped,
  .set_maybe_weakref = set_maybe_weakref,
};
