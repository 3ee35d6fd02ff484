/* Thread states: attach and detach, the registry, checkpoints, blocking.
 *
 * The checkpoint is CPython's eval breaker, per thread as in CPython 3.13:
 * each attached thread owns a word of request bits; any thread sets a bit
 * (hl_thread_request) and the owner serves it at its next checkpoint. The
 * fast path (hl_checkpoint, inline in hl_thread.h) is one relaxed load of
 * that thread-local word and a branch; everything else is here.
 *
 * The word is thread-local (hl_thread_breaker) so that the load needs no
 * pointer to the thread state first; the state points at it for requesters.
 * It is valid as long as the thread lives, longer than the attachment a
 * requester relies on.
 *
 * Handlers and hooks are tables filled at start-up by upper layers and
 * published by a release store of their mask / count, read with an acquire
 * load on every slow path: no lock on the checkpoint, none on attach.
 *
 * Locks, never nested: the registry mutex here, the GIL's mutexes in gil.c.
 * Attach takes the GIL and then enters the registry; detach leaves the
 * registry and then releases the GIL.
 *
 * Indexes. Each attached thread also gets the lowest index not in use
 * (1..HL_THREAD_INDEX_MAX, from a bitmap under the registry mutex), freed
 * at detach for the next thread: small enough for an object header, which
 * the 64-bit id is not.
 *
 * QSBR (hl_thread_qsbr_enable). An attached thread is a registered QSBR
 * reader, offline while blocked. Announcing a quiescent state costs two
 * loads when no grace period is in progress, but a call from every
 * checkpoint would still cost the fast path its one-branch shape; so a
 * thread announces one only when asked: sync/qsbr.c sets HL_BREAK_QSBR on
 * every attached thread when a grace period starts to be wanted (a
 * deferred call queued, a synchronize waiting), and a thread keeps the bit,
 * announcing at every checkpoint, for as long as one is wanted. A thread
 * that attaches meanwhile sets the bit on itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hl_sync.h"
#include "hl_thread.h"
#include "sync_internal.h"

__thread uint64_t hl_thread_breaker;
__thread hl_thread_t *hl_thread_self_tls;

static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
static hl_thread_t *registry;       /* attached threads, newest first */
static unsigned registry_count;
static uint64_t last_id;
/* Indexes in use, bit i for index i (0 is never handed out). */
static uint64_t index_used[(HL_THREAD_INDEX_MAX + 64) / 64];
/* Relaxed: changed only while no thread is attached. */
static uint32_t qsbr_on;

typedef struct handler { hl_break_fn fn; void *arg; } handler_t;
static handler_t handlers[HL_BREAK_BITS];
/* Bits with a handler. Written under registry_mutex with a release store
 * after the entry is filled; the slow path's acquire load pairs with it. */
static uint64_t handler_mask;

#define MAX_HOOKS 8
typedef struct hook { hl_thread_hook_fn on_attach, on_detach; void *arg; } hook_t;
static hook_t hooks[MAX_HOOKS];
/* Published like handler_mask: release store after the entry, acquire load
 * before reading entries. */
static uint32_t hook_count;

/* A thread that exits attached would leave a dangling state in the registry
 * (and, with the GIL, a lock nobody will release): say so loudly. */
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static void exited_attached(void *t) {
  hl_die("thread %llu exited while attached: call hl_thread_detach() first",
         (unsigned long long)((hl_thread_t *)t)->id);
}
static void make_exit_key(void) {
  if (pthread_key_create(&exit_key, exited_attached) != 0) hl_die("pthread_key_create failed");
}

/* Under registry_mutex. */
static uint32_t index_take(void) {
  for (uint32_t w = 0; w < HL_ARRAY_LEN(index_used); w++) {
    uint64_t free_bits = ~index_used[w];
    if (w == 0) free_bits &= ~1ull;   /* index 0 means "none" */
    if (!free_bits) continue;
    uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(free_bits);
    if (i > HL_THREAD_INDEX_MAX) break;
    index_used[w] |= 1ull << (i % 64);
    return i;
  }
  return 0;
}
static void index_put(uint32_t i) {
  if (i) index_used[i / 64] &= ~(1ull << (i % 64));
}

static void set_state(hl_thread_t *t, hl_thread_state_t s) {
  /* Only the owner writes it. Release: a stopper that reads BLOCKED (with
   * acquire, sync/stw.c) counts the thread stopped and goes on to change
   * what the thread changed before it blocked (a collection walks the
   * lists the thread last wrote): those writes come first. */
  hl_atomic_store_release_u32(&t->state, s);
}

hl_thread_t *hl_thread_attach(void) {
  if (hl_thread_self_tls) hl_die("thread %llu attaches twice", (unsigned long long)hl_thread_self_tls->id);
  pthread_once(&exit_key_once, make_exit_key);
  hl_thread_t *t = calloc(1, sizeof *t);
  if (!t) hl_die("out of memory for a thread state");
  t->breaker = &hl_thread_breaker;
  hl_atomic_store_relaxed_u64(&hl_thread_breaker, 0);
  if (hli_gil_on()) hli_gil_take(t, HLI_TAKE_ATTACH);
  bool qsbr = hl_thread_qsbr_enabled();
  if (qsbr) hl_qsbr_register_thread();   /* online from here */
  hli_stw_attach_begin();   /* no attaching while the world is stopped */
  pthread_mutex_lock(&registry_mutex);
  t->id = ++last_id;
  t->index = index_take();
  t->qsbr = qsbr;
  t->next = registry;
  if (registry) registry->prev = t;
  registry = t;
  registry_count++;
  pthread_mutex_unlock(&registry_mutex);
  set_state(t, HL_THREAD_ATTACHED);
  hli_stw_attach_end();
  hl_thread_self_tls = t;
  pthread_setspecific(exit_key, t);
  /* A grace period that began before we registered may wait for us, and the
   * request that armed the others was made before we were in the registry. */
  if (qsbr && hli_qsbr_wanted()) hl_thread_request(t, HL_BREAK_QSBR);
  uint32_t n = hl_atomic_load_acquire_u32(&hook_count);   /* pairs with the register's release */
  for (uint32_t i = 0; i < n; i++)
    if (hooks[i].on_attach) hooks[i].on_attach(t, hooks[i].arg);
  return t;
}

void hl_thread_detach(void) {
  hl_thread_t *t = hl_thread_self_tls;
  if (!t) hl_die("hl_thread_detach on a thread that is not attached");
  if (hl_atomic_load_relaxed_u32(&t->state) != HL_THREAD_ATTACHED)
    hl_die("thread %llu detaches between hl_thread_block_begin and _end", (unsigned long long)t->id);
  uint32_t n = hl_atomic_load_acquire_u32(&hook_count);   /* pairs with the register's release */
  while (n-- > 0)
    if (hooks[n].on_detach) hooks[n].on_detach(t, hooks[n].arg);
  pthread_mutex_lock(&registry_mutex);
  if (t->prev) t->prev->next = t->next;
  else registry = t->next;
  if (t->next) t->next->prev = t->prev;
  registry_count--;
  index_put(t->index);
  pthread_mutex_unlock(&registry_mutex);
  if (hli_stw_requested()) hli_stw_signal();   /* one fewer to wait for */
  if (hli_gil_on()) hli_gil_drop(t, HLI_DROP_DETACH);
  set_state(t, HL_THREAD_DETACHED);
  pthread_setspecific(exit_key, NULL);
  hl_thread_self_tls = NULL;
  hl_atomic_store_relaxed_u64(&hl_thread_breaker, 0);
  if (t->qsbr) hl_qsbr_unregister_thread();
  free(t);
}

void hl_thread_block_begin(void) {
  hl_thread_t *t = hl_thread_self_tls;
  if (HL_UNLIKELY(!t || hl_atomic_load_relaxed_u32(&t->state) != HL_THREAD_ATTACHED))
    hl_die("hl_thread_block_begin on a thread that is %s", t ? "already blocked" : "not attached");
  set_state(t, HL_THREAD_BLOCKED);
  if (hli_stw_requested()) hli_stw_signal();   /* stopped, as far as a stopper goes */
  if (t->qsbr) hl_qsbr_offline();
  if (hli_gil_on()) hli_gil_drop(t, HLI_DROP_BLOCK);
}

void hl_thread_block_end(void) {
  hl_thread_t *t = hl_thread_self_tls;
  if (HL_UNLIKELY(!t || hl_atomic_load_relaxed_u32(&t->state) != HL_THREAD_BLOCKED))
    hl_die("hl_thread_block_end without hl_thread_block_begin");
  if (hli_gil_on()) hli_gil_take(t, HLI_TAKE_WAKE);
  if (t->qsbr) hl_qsbr_online();
  set_state(t, HL_THREAD_ATTACHED);
  if (hli_stw_requested()) hli_stw_block_end_wait(t);   /* not while the world is stopped */
}

void hl_thread_request(hl_thread_t *t, unsigned bit) {
  HL_ASSERT(bit < HL_BREAK_BITS);
  /* A full-barrier RMW, though nothing needs it: the bit only sends t into
   * the slow path, whose handler synchronises with the requester itself
   * (the GIL's mutex for a drop request). An RMW so that concurrent
   * requests of different bits all survive. */
  hl_atomic_or_u64(t->breaker, HL_BREAK_BIT(bit));
}

/* The bit stays while a grace period is wanted. Cleared first and the
 * question asked again after: a request made between our first look and
 * the clear (sync/qsbr.c counts what it wants before it sets the bit, both
 * full-barrier RMWs) is then seen by the second look, and the bit set
 * again, never lost.
 *
 * A program that keeps deferring (a shared dict whose values are replaced
 * all the time) keeps a grace period wanted, and the bit set: every
 * checkpoint then comes here. Only one in QSBR_EVERY of them announces a
 * quiescent state and asks the question again; the others return at once.
 * A grace period then ends within QSBR_EVERY checkpoints of each thread
 * rather than one, which only delays the frees a little. */
#define QSBR_EVERY 16u
static __thread uint32_t qsbr_skip;

static void serve_qsbr(void) {
  if (qsbr_skip) {
    qsbr_skip--;
    return;
  }
  qsbr_skip = QSBR_EVERY - 1;
  hl_qsbr_quiescent();
  if (hli_qsbr_wanted()) return;
  hl_atomic_and_u64(&hl_thread_breaker, ~HL_BREAK_BIT(HL_BREAK_QSBR));
  if (hli_qsbr_wanted()) hl_atomic_or_u64(&hl_thread_breaker, HL_BREAK_BIT(HL_BREAK_QSBR));
}

void hl_checkpoint_slow(void) {
  uint64_t bits = hl_atomic_load_relaxed_u64(&hl_thread_breaker);
  if (bits == HL_BREAK_BIT(HL_BREAK_QSBR)) {   /* the common request alone: quickly */
    serve_qsbr();
    return;
  }
  hl_thread_t *t = hl_thread_self_tls;
  if (HL_UNLIKELY(!t)) return;   /* not attached: nobody can have asked anything */
  /* Upper layers first, still holding the GIL; the drop request last. */
  uint64_t mask = hl_atomic_load_acquire_u64(&handler_mask);   /* pairs with register's release */
  if (bits & HL_BREAK_BIT(HL_BREAK_QSBR)) serve_qsbr();
  if (bits & HL_BREAK_BIT(HL_BREAK_STW)) {
    hl_atomic_and_u64(&hl_thread_breaker, ~HL_BREAK_BIT(HL_BREAK_STW));
    hli_stw_park(t);
  }
  uint64_t upper = bits & ~(HL_BREAK_BIT(HL_BREAK_GIL_DROP) | HL_BREAK_BIT(HL_BREAK_QSBR) |
                            HL_BREAK_BIT(HL_BREAK_STW));
  while (upper) {
    unsigned b = (unsigned)__builtin_ctzll(upper);
    upper &= upper - 1;
    /* cleared before it is served: a request made meanwhile is not lost */
    hl_atomic_and_u64(&hl_thread_breaker, ~HL_BREAK_BIT(b));
    if (HL_UNLIKELY(!(mask & HL_BREAK_BIT(b))))
      hl_die("breaker bit %u requested of thread %llu has no handler", b, (unsigned long long)t->id);
    handlers[b].fn(t, b, handlers[b].arg);
  }
  if (bits & HL_BREAK_BIT(HL_BREAK_GIL_DROP)) {
    hl_atomic_and_u64(&hl_thread_breaker, ~HL_BREAK_BIT(HL_BREAK_GIL_DROP));
    if (hli_gil_on()) hli_gil_yield(t);
  }
}

int hl_thread_break_register(hl_break_fn fn, void *arg) {
  pthread_mutex_lock(&registry_mutex);
  uint64_t mask = hl_atomic_load_relaxed_u64(&handler_mask);   /* ours: under the mutex */
  int bit = -ENOSPC;
  for (unsigned b = HL_BREAK_FIRST_FREE; b < HL_BREAK_BITS; b++) {
    if (!(mask & HL_BREAK_BIT(b))) {
      handlers[b] = (handler_t){fn, arg};
      /* pairs with the acquire load in hl_checkpoint_slow */
      hl_atomic_store_release_u64(&handler_mask, mask | HL_BREAK_BIT(b));
      bit = (int)b;
      break;
    }
  }
  pthread_mutex_unlock(&registry_mutex);
  return bit;
}

int hl_thread_hooks_register(hl_thread_hook_fn on_attach, hl_thread_hook_fn on_detach, void *arg) {
  pthread_mutex_lock(&registry_mutex);
  uint32_t n = hl_atomic_load_relaxed_u32(&hook_count);   /* ours: under the mutex */
  int rc = -ENOSPC;
  if (n < MAX_HOOKS) {
    hooks[n] = (hook_t){on_attach, on_detach, arg};
    /* pairs with the acquire loads in attach and detach */
    hl_atomic_store_release_u32(&hook_count, n + 1);
    rc = 0;
  }
  pthread_mutex_unlock(&registry_mutex);
  return rc;
}

unsigned hl_thread_foreach(void (*fn)(hl_thread_t *t, void *arg), void *arg) {
  pthread_mutex_lock(&registry_mutex);
  unsigned n = 0;
  for (hl_thread_t *t = registry; t; t = t->next, n++) fn(t, arg);
  pthread_mutex_unlock(&registry_mutex);
  return n;
}

unsigned hl_thread_count(void) {
  pthread_mutex_lock(&registry_mutex);
  unsigned n = registry_count;
  pthread_mutex_unlock(&registry_mutex);
  return n;
}

void hl_thread_qsbr_enable(bool on) {
  if (hl_thread_count() != 0) hl_die("hl_thread_qsbr_enable while %u threads are attached", hl_thread_count());
  hl_atomic_store_relaxed_u32(&qsbr_on, on);
}

bool hl_thread_qsbr_enabled(void) { return hl_atomic_load_relaxed_u32(&qsbr_on) != 0; }

static void request_qsbr(hl_thread_t *t, void *arg) {
  (void)arg;
  if (!(hl_thread_pending(t) & HL_BREAK_BIT(HL_BREAK_QSBR))) hl_thread_request(t, HL_BREAK_QSBR);
}

void hli_thread_request_qsbr_all(void) {
  if (hl_thread_qsbr_enabled()) hl_thread_foreach(request_qsbr, NULL);
}
