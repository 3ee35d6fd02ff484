/* gc/rc_biased.c: the rules of biased reference counting, one by one, then
 * under stress. Each test starts the runtime with rc=biased (gc=none),
 * runs threads that attach, and ends with every object freed (the object
 * counts balance; with alloc=pool no block is in use).
 *
 * Threads hand each other steps through a small baton (a sequence number):
 * a thread waits for its turn with its attachment blocked (offline for
 * QSBR), so that a thread that detaches meanwhile is not held up.
 * Checks inside threads die (hl_die) rather than use cmocka's assertions,
 * which may only run on the main thread.
 *
 * usage: test_rc_biased [THREADS] [ITER]   (defaults: 4, 200000)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hl_alloc.h"
#include "hl_gc.h"
#include "hl_sync.h"
#include "obj_check.h"

#define CHECK(c) do { if (!(c)) hl_die("check failed: %s", #c); } while (0)
#define MAX_THREADS 64

extern char **environ;
static hl_config_t cfg;
static unsigned g_threads = 4;
static unsigned g_iter = 200000;

static int setup(void **state) {
  (void)state;
  char err[256];
  int r = hl_runtime_init(&cfg, err, sizeof err);
  if (r != 0) fprintf(stderr, "%s\n", err);
  assert_int_equal(r, 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  assert_int_equal(hl_thread_count(), 0);
  obj_fini_nothing_left(&cfg);
  return 0;
}

/* ---- helpers ------------------------------------------------------------------ */
/* Turns: step n runs when baton == n; it then passes the baton on. */
static uint32_t baton;
static void wait_turn(uint32_t n) {
  bool attached = hl_thread_self() != NULL;
  if (attached) hl_thread_block_begin();
  while (hl_atomic_load_acquire_u32(&baton) != n) {   /* pairs with pass_turn */
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
  }
  if (attached) hl_thread_block_end();
}
static void pass_turn(uint32_t n) { hl_atomic_store_release_u32(&baton, n); }

/* Instances whose deaths are counted by their finalizer. */
static uint64_t deaths;
static void count_death(hl_object_t *self) {
  (void)self;
  hl_atomic_inc_u64(&deaths);
}
static hl_type_t *counted_cls(void) {
  hl_type_t *c = hl_class_new("Counted", 1, false, count_death);
  CHECK(c);
  return c;
}
static uint64_t deaths_now(void) { return hl_atomic_load_acquire_u64(&deaths); }

static hl_obj_stats_t stats_now(void) {
  hl_obj_stats_t s;
  hl_obj_stats(&s);   /* the calling thread's counters folded in too */
  return s;
}

static void run2(void *(*a)(void *), void *(*b)(void *)) {
  pthread_t ta, tb;
  assert_int_equal(pthread_create(&ta, NULL, a, NULL), 0);
  assert_int_equal(pthread_create(&tb, NULL, b, NULL), 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
}

/* ---- the owner counts locally, another thread in the shared count ------------------ */
static hl_object_t *g_obj;
static hl_type_t *g_cls;

static void *own_a(void *arg) {
  (void)arg;
  hl_thread_t *t = hl_thread_attach();
  hl_object_t *o = hl_float_new(1.5);
  CHECK(o->owner == t->index && t->index != 0);
  CHECK(hl_refcount(o) == 1);
  hl_incref(o);
  hl_incref(o);
  CHECK(o->rc == 3 && hl_refcount(o) == 3);   /* local, no shared */
  hl_decref(o);
  CHECK(o->rc == 2);
  g_obj = o;                                  /* hands one reference over */
  pass_turn(1);
  wait_turn(2);
  /* B took and dropped references of its own: local untouched */
  CHECK(o->rc == 2 && hl_refcount(o) == 2);
  hl_decref(o);                               /* ours: 1 left, B's */
  pass_turn(3);
  wait_turn(4);
  hl_thread_detach();
  return NULL;
}

static void *own_b(void *arg) {
  (void)arg;
  hl_thread_attach();
  wait_turn(1);
  hl_object_t *o = g_obj;
  hl_incref(o);
  hl_incref(o);
  CHECK(o->rc == 2 && hl_refcount(o) == 4);   /* two in the shared count */
  hl_decref(o);
  hl_decref(o);
  CHECK(hl_refcount(o) == 2);
  pass_turn(2);
  wait_turn(3);
  hl_decref(o);                               /* the handed-over one */
  pass_turn(4);
  hl_thread_detach();
  return NULL;
}

static void test_owner_and_others(void **s) {
  (void)s;
  baton = 0;
  hl_obj_stats_t before = stats_now();
  run2(own_a, own_b);
  hl_obj_stats_t after = stats_now();
  /* B's last decrement found shared at zero: queued, merged by A at its
   * detach at the latest, freed there */
  assert_int_equal(after.rc_merges_queued - before.rc_merges_queued, 1);
  assert_int_equal(after.rc_merges_done - before.rc_merges_done, 1);
  /* B's two increments and three decrements went to the shared count; A's
   * own went to local and count in neither */
  assert_int_equal(after.rc_shared_increfs - before.rc_shared_increfs, 2);
  assert_int_equal(after.rc_shared_decrefs - before.rc_shared_decrefs, 3);
#if HL_RC_STATS
  /* A: two increments, two decrements plainly (its float's first
   * reference is made, not incremented); B: the five shared ones */
  assert_int_equal(after.rc_ops_plain - before.rc_ops_plain, 4);
  assert_int_equal(after.rc_ops_atomic - before.rc_ops_atomic, 5);
#endif
}

/* ---- queue and merge at a checkpoint --------------------------------------------- */
static void *qm_a(void *arg) {
  (void)arg;
  hl_thread_attach();
  hl_object_t *o = hl_instance_new(g_cls);
  CHECK(o);
  hl_incref(o);                 /* local 2: one for B */
  g_obj = o;
  pass_turn(1);
  wait_turn(2);
  /* B dropped its reference: the object waits in our queue, counted */
  CHECK(hl_refcount(o) == 2 && deaths_now() == 0);
  CHECK(hl_thread_pending(hl_thread_self()) != 0);   /* asked to merge */
  hl_checkpoint();              /* the merge: local 2 + shared 0 - 1 */
  CHECK(o->owner == HL_OWNER_NONE && o->rc == 0 && hl_refcount(o) == 1);   /* no owner now */
  hl_decref(o);                 /* as anyone: merged and zero, freed */
  CHECK(deaths_now() == 1);
  pass_turn(3);
  hl_thread_detach();
  return NULL;
}

static void *qm_b(void *arg) {
  (void)arg;
  hl_thread_attach();
  wait_turn(1);
  hl_decref(g_obj);             /* shared was 0: queued to A */
  pass_turn(2);
  wait_turn(3);
  hl_thread_detach();
  return NULL;
}

static void test_queue_and_merge(void **s) {
  (void)s;
  baton = 0;
  deaths = 0;
  g_cls = counted_cls();
  hl_obj_stats_t before = stats_now();
  run2(qm_a, qm_b);
  hl_obj_stats_t after = stats_now();
  assert_int_equal(deaths, 1);
  assert_int_equal(after.rc_merges_queued - before.rc_merges_queued, 1);
  assert_int_equal(after.rc_merges_done - before.rc_merges_done, 1);
}

/* ---- the owner's last reference goes while others hold some ---------------------------- */
static void *zl_a(void *arg) {
  (void)arg;
  hl_thread_attach();
  hl_object_t *o = hl_instance_new(g_cls);
  g_obj = o;
  pass_turn(1);
  wait_turn(2);                 /* B holds one of its own now (shared 1) */
  hl_decref(o);                 /* local 0, shared 1: merged, no owner */
  CHECK(o->owner == HL_OWNER_NONE && hl_refcount(o) == 1 && deaths_now() == 0);
  pass_turn(3);
  wait_turn(4);
  hl_thread_detach();
  return NULL;
}

static void *zl_b(void *arg) {
  (void)arg;
  hl_thread_attach();
  wait_turn(1);
  hl_incref(g_obj);
  pass_turn(2);
  wait_turn(3);
  hl_decref(g_obj);             /* merged and zero: freed by B */
  CHECK(deaths_now() == 1);
  pass_turn(4);
  hl_thread_detach();
  return NULL;
}

static void test_owner_drops_last_local(void **s) {
  (void)s;
  baton = 0;
  deaths = 0;
  g_cls = counted_cls();
  hl_obj_stats_t before = stats_now();
  run2(zl_a, zl_b);
  hl_obj_stats_t after = stats_now();
  assert_int_equal(deaths, 1);
  assert_int_equal(after.rc_merges_queued - before.rc_merges_queued, 0);
}

/* ---- an exited owner's objects are merged by whoever finds them ---------------------- */
#define NEXIT 1000
static hl_object_t *g_objs[NEXIT];

static void *ex_a(void *arg) {
  (void)arg;
  hl_thread_attach();
  for (int i = 0; i < NEXIT; i++) {
    g_objs[i] = hl_instance_new(g_cls);
    CHECK(g_objs[i]);
    hl_incref(g_objs[i]);       /* one for B (local 2) */
    if (i % 2) hl_decref(g_objs[i]);   /* half keep only B's (local 1) */
  }
  pass_turn(1);
  wait_turn(2);
  /* we exit still owning them all, and still holding a reference to the
   * even ones */
  hl_thread_detach();
  pass_turn(3);
  return NULL;
}

static void *ex_b(void *arg) {
  (void)arg;
  hl_thread_attach();
  wait_turn(1);
  pass_turn(2);
  wait_turn(3);                 /* A has exited */
  for (int i = 0; i < NEXIT; i++) hl_decref(g_objs[i]);   /* queue: owner gone, we merge */
  /* the odd ones had B's reference only: freed here */
  CHECK(deaths_now() == NEXIT / 2);
  hl_thread_detach();
  return NULL;
}

static void test_exited_owner(void **s) {
  (void)s;
  baton = 0;
  deaths = 0;
  g_cls = counted_cls();
  hl_obj_stats_t before = stats_now();
  run2(ex_a, ex_b);
  hl_obj_stats_t after = stats_now();
  assert_int_equal(after.rc_merges_done - before.rc_merges_done, NEXIT);
  assert_int_equal(after.rc_merges_queued - before.rc_merges_queued, 0);
  /* the even ones: A's references were never dropped (it exited holding
   * them, the program's leak); they are merged objects now, count 1 each */
  for (int i = 0; i < NEXIT; i += 2) {
    assert_int_equal(g_objs[i]->owner, HL_OWNER_NONE);
    assert_int_equal(hl_refcount(g_objs[i]), 1);
    hl_decref(g_objs[i]);       /* the main thread, not attached */
  }
  assert_int_equal(deaths, NEXIT);
}

/* ---- a new thread with the exited owner's index inherits its objects --------------------- */
static uint32_t inh_index;

static void *inh_a(void *arg) {
  (void)arg;
  hl_thread_t *t = hl_thread_attach();
  inh_index = t->index;
  g_obj = hl_instance_new(g_cls);
  hl_incref(g_obj);             /* local 2 */
  hl_thread_detach();           /* exits owning it */
  return NULL;
}

static void *inh_c(void *arg) {
  (void)arg;
  hl_thread_t *t = hl_thread_attach();
  CHECK(t->index == inh_index && g_obj->owner == t->index);   /* the lowest free index */
  CHECK(g_obj->rc == 2);
  hl_decref(g_obj);             /* as owner: local */
  CHECK(g_obj->rc == 1 && deaths_now() == 0);
  hl_decref(g_obj);
  CHECK(deaths_now() == 1);
  hl_thread_detach();
  return NULL;
}

static void test_index_inherited(void **s) {
  (void)s;
  deaths = 0;
  g_cls = counted_cls();
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, inh_a, NULL), 0);
  pthread_join(t, NULL);
  assert_int_equal(pthread_create(&t, NULL, inh_c, NULL), 0);
  pthread_join(t, NULL);
  assert_int_equal(deaths, 1);
}

/* ---- with the world stopped, another thread merges every queue --------------------------- */
static void *ms_a(void *arg) {
  (void)arg;
  hl_thread_attach();
  hl_object_t *o = hl_instance_new(g_cls);
  hl_incref(o);                 /* local 2: one for B */
  g_obj = o;
  pass_turn(1);
  wait_turn(2);                 /* blocked meanwhile: B queues, main merges */
  CHECK(o->owner == HL_OWNER_NONE && hl_refcount(o) == 1);   /* merged while we were stopped */
  hl_decref(o);
  CHECK(deaths_now() == 1);
  hl_thread_detach();
  return NULL;
}
static void *ms_b(void *arg) {
  (void)arg;
  hl_thread_attach();
  wait_turn(1);
  hl_decref(g_obj);             /* queued to A, which is blocked */
  pass_turn(10);
  hl_thread_detach();
  return NULL;
}

static void test_merge_all_stopped(void **s) {
  (void)s;
  baton = 0;
  deaths = 0;
  g_cls = counted_cls();
  pthread_t ta, tb;
  assert_int_equal(pthread_create(&ta, NULL, ms_a, NULL), 0);
  assert_int_equal(pthread_create(&tb, NULL, ms_b, NULL), 0);
  wait_turn(10);
  pthread_join(tb, NULL);
  hl_stw_stop();
  assert_int_equal(hl_refcount(g_obj), 2);           /* A's and the queue's */
  assert_int_equal(hl_rc_merge_all_stopped(), 1);
  assert_int_equal(hl_refcount(g_obj), 1);           /* the true count */
  hl_stw_resume();
  pass_turn(2);
  pthread_join(ta, NULL);
  assert_int_equal(deaths, 1);
}

/* ---- objects made by a thread that is not attached belong to nobody ------------------------ */
static void test_unowned(void **s) {
  (void)s;
  hl_object_t *o = hl_float_new(2.5);
  assert_int_equal(o->owner, HL_OWNER_NONE);
  assert_int_equal(o->rc, 0);                 /* the whole count is shared */
  assert_int_equal(hl_refcount(o), 1);
  hl_incref(o);
  assert_int_equal(hl_refcount(o), 2);
  hl_decref(o);
  hl_decref(o);
}

/* ---- a weakref read from another thread while the owner holds the object ------------------ */
static hl_object_t *g_wr;
static void *wr_a(void *arg) {
  (void)arg;
  hl_thread_attach();
  g_obj = hl_instance_new(g_cls);
  g_wr = hl_weakref_new(g_obj, NULL, NULL);   /* shared count 0, maybe-weakref */
  CHECK(g_wr);
  pass_turn(1);
  wait_turn(2);
  hl_decref(g_obj);             /* local 0, B's reference in shared: merged */
  CHECK(deaths_now() == 0);
  pass_turn(3);
  wait_turn(4);
  hl_decref(g_wr);
  hl_thread_detach();
  return NULL;
}
static void *wr_b(void *arg) {
  (void)arg;
  hl_thread_attach();
  wait_turn(1);
  hl_object_t *r = hl_weakref_get(g_wr);      /* the try-increment succeeds */
  CHECK(r == g_obj);
  pass_turn(2);
  wait_turn(3);
  hl_decref(r);                 /* the last reference: freed here */
  CHECK(deaths_now() == 1 && hl_weakref_get(g_wr) == NULL);
  pass_turn(4);
  hl_thread_detach();
  return NULL;
}

static void test_weakref_other_thread(void **s) {
  (void)s;
  baton = 0;
  deaths = 0;
  g_cls = counted_cls();
  run2(wr_a, wr_b);
  assert_int_equal(deaths, 1);
}

/* ---- stress: references to shared objects taken and dropped at random by every thread ----------
 * Each thread makes NOBJ objects of its own, then all threads take and drop
 * references to everyone's objects at random, checkpointing now and then
 * (merges), and some threads detach and attach again (exited owners,
 * inherited indexes). Each thread tracks how many references it holds to
 * each object; at the end it drops them all. Every object dies exactly
 * once (its finalizer counts), and nothing is left. */
#define NOBJ 64
#define MAILBOX 256
typedef struct st_arg { unsigned id; } st_arg_t;
static hl_object_t *st_objs[MAX_THREADS][NOBJ];
static pthread_barrier_t st_barrier;
/* References handed from one thread to another: the giver takes one (in
 * its local count when it owns the object), the receiver drops it later
 * (a decrement by another thread of a locally counted reference: queued
 * to the owner). */
static struct mailbox {
  pthread_mutex_t mutex;
  unsigned n;
  uint32_t k[MAILBOX];
} st_mail[MAX_THREADS];

static void mail_take(unsigned id, uint32_t *held) {
  struct mailbox *m = &st_mail[id];
  pthread_mutex_lock(&m->mutex);
  for (unsigned i = 0; i < m->n; i++) held[m->k[i]]++;
  m->n = 0;
  pthread_mutex_unlock(&m->mutex);
}
static bool mail_give(unsigned to, uint32_t k) {
  struct mailbox *m = &st_mail[to];
  pthread_mutex_lock(&m->mutex);
  bool ok = m->n < MAILBOX;
  if (ok) m->k[m->n++] = k;
  pthread_mutex_unlock(&m->mutex);
  return ok;
}

static void barrier_blocked(void) {
  hl_thread_block_begin();
  pthread_barrier_wait(&st_barrier);
  hl_thread_block_end();
}

static void *st_main(void *arg) {
  st_arg_t *a = arg;
  hl_thread_attach();
  hl_rand_t rng;
  hl_rand_seed(&rng, 1234 + a->id);
  for (int i = 0; i < NOBJ; i++) {
    st_objs[a->id][i] = hl_instance_new(g_cls);
    CHECK(st_objs[a->id][i]);
  }
  uint32_t *held = calloc((size_t)g_threads * NOBJ, sizeof *held);
  CHECK(held);
  for (int i = 0; i < NOBJ; i++) held[a->id * NOBJ + i] = 1;   /* the creation references */
  barrier_blocked();
  for (unsigned n = 0; n < g_iter; n++) {
    uint64_t r = hl_rand_next(&rng);
    unsigned k = (unsigned)(r % ((uint64_t)g_threads * NOBJ));
    hl_object_t *o = st_objs[k / NOBJ][k % NOBJ];
    /* The creator keeps its creation reference until the end, so the
     * object is alive whenever anyone takes one. */
    uint32_t floor = k / NOBJ == a->id ? 1 : 0;
    if ((r >> 48) % 8 == 0) {
      /* give a new reference to another thread */
      unsigned to = (unsigned)((r >> 52) % g_threads);
      hl_incref(o);
      if (!mail_give(to, k)) hl_decref(o);
    } else if (((r >> 32) & 1) || held[k] == floor) {
      hl_incref(o);
      held[k]++;
    } else {
      held[k]--;
      hl_decref(o);
    }
    if ((r >> 40) % 64 == 0) {
      hl_checkpoint();
      mail_take(a->id, held);
    }
    if (a->id % 2 == 1 && n == g_iter / 2) {
      /* exit and come back: our objects' owner is gone meanwhile */
      hl_thread_detach();
      sched_yield();
      hl_thread_attach();
    }
  }
  /* everyone drops what they took; the creators keep theirs until all did */
  barrier_blocked();            /* no more gifts */
  mail_take(a->id, held);
  for (unsigned k = 0; k < g_threads * NOBJ; k++) {
    uint32_t keep = k / NOBJ == a->id ? 1 : 0;
    while (held[k] > keep) {
      held[k]--;
      hl_decref(st_objs[k / NOBJ][k % NOBJ]);
    }
  }
  barrier_blocked();
  for (int i = 0; i < NOBJ; i++) hl_decref(st_objs[a->id][i]);
  free(held);
  hl_thread_detach();
  return NULL;
}

static void test_stress(void **s) {
  (void)s;
  deaths = 0;
  g_cls = counted_cls();
  pthread_barrier_init(&st_barrier, NULL, g_threads);
  for (unsigned i = 0; i < g_threads; i++) {
    pthread_mutex_init(&st_mail[i].mutex, NULL);
    st_mail[i].n = 0;
  }
  pthread_t t[MAX_THREADS];
  st_arg_t args[MAX_THREADS];
  hl_obj_stats_t before = stats_now();
  for (unsigned i = 0; i < g_threads; i++) {
    args[i].id = i;
    assert_int_equal(pthread_create(&t[i], NULL, st_main, &args[i]), 0);
  }
  for (unsigned i = 0; i < g_threads; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&st_barrier);
  hl_obj_stats_t after = stats_now();
  assert_int_equal(deaths, (uint64_t)g_threads * NOBJ);
  /* every queued object was merged; others were merged without a queue
   * (exited owners) */
  assert_true(after.rc_merges_done - before.rc_merges_done >=
              after.rc_merges_queued - before.rc_merges_queued);
  if (g_threads > 1) assert_true(after.rc_merges_done > before.rc_merges_done);
}

int main(int argc, char **argv) {
  if (argc > 1) g_threads = (unsigned)atoi(argv[1]);
  if (argc > 2) g_iter = (unsigned)atoi(argv[2]);
  if (g_threads < 1 || g_threads > MAX_THREADS) g_threads = 4;
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  cfg.rc = HL_RC_BIASED;
  cfg.gc = HL_GC_NONE;
  cfg.threads = 2 * g_threads;   /* the pools take their lock with more than one thread */
  if (hl_alloc_init(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_owner_and_others, setup, teardown),
    cmocka_unit_test_setup_teardown(test_queue_and_merge, setup, teardown),
    cmocka_unit_test_setup_teardown(test_owner_drops_last_local, setup, teardown),
    cmocka_unit_test_setup_teardown(test_exited_owner, setup, teardown),
    cmocka_unit_test_setup_teardown(test_index_inherited, setup, teardown),
    cmocka_unit_test_setup_teardown(test_merge_all_stopped, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unowned, setup, teardown),
    cmocka_unit_test_setup_teardown(test_weakref_other_thread, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stress, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
