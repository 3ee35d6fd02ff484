/* gc/: the concurrent collector (--gc=concurrent) racing mutators on random
 * graphs, checked against an oracle. Run in every refcount mode it runs
 * with (rc=atomic, rc=biased), at 2, 4 and 8 threads (8 on 2 cores:
 * oversubscribed), under ASan and TSan too (label threads).
 *
 * Every node is an instance of Node, whose slot 0 holds its id and whose
 * finalizer marks the id dead (freed[id]); slots 1 and 2 are edges. Each
 * worker attaches and, ITER times, with a checkpoint at every step, picks
 * one of (its random number generator seeded from SEED and its index, so
 * that each thread's sequence of operations is the same on every run, the
 * interleaving the scheduler's):
 *   - a new node into one of its roots (the old one dropped);
 *   - an edge from a root's node to another root's node or to its own
 *     target's target (cycles made), or an edge cleared (cycles broken):
 *     slot writes, the collector's barrier;
 *   - a ring of 2..9 nodes, with a list in it, dropped at once (garbage
 *     only a collector frees);
 *   - a list holding nodes and itself, or a dict of nodes, into a root, and
 *     appends and pops on a root's list (containers the scan must lock);
 *   - a ring built and pushed on a shared exchange list, or one popped from
 *     it and linked into a root (objects passed between threads);
 *   - a walk from a root along up to 16 edges, checking every node it
 *     meets: a Node, with an id that was made, not marked dead.
 * Half the edges are made between nodes of the worker's ballast, 2048
 * nodes made at its start: old objects, which the scans take chunks over
 * while their slots change.
 * Halfway through, each worker hands its roots to a successor thread and
 * exits (owners exiting: under rc=biased their objects are merged).
 *
 * The oracle, with every worker gone: a walk from every root finds no node
 * marked dead (nothing reachable was ever freed, whatever the collector
 * computed while the graph changed under it); one stop-the-world full
 * collection (hl_gc_collect(2)) then leaves alive exactly the nodes the
 * walk reached (all garbage found: what the concurrent scans left is what
 * was made after their snapshots, and the full collection takes it); the
 * collector thread did scan (chunks), and its scans' validations
 * collected garbage (generation 2's collections); every object is freed at
 * the end. Thresholds are low (100, 2, 2) so that scans start every few
 * hundred allocations.
 *
 * usage: test_gc_conc [THREADS] [ITER] [SEED]   (defaults: 4, 20000, 1)
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

extern char **environ;

#define MAX_THREADS 64
#define ROOTS 16
#define BALLAST 2048
#define CHECK(c) do { if (!(c)) hl_die("check failed: %s", #c); } while (0)

static unsigned g_threads = 4, g_iter = 20000;
static uint64_t g_seed = 1;
static hl_config_t cfg;
static hl_type_t *Node;
static hl_object_t *exchange;     /* rings passed between threads */
static uint32_t *freed;           /* by id: the finalizer ran (atomic) */
static uint64_t next_id, max_ids; /* atomic */

static void node_final(hl_object_t *self) {
  hl_object_t *id = hl_slot_get(self, 0);
  CHECK(id != NULL);
  int64_t v = hl_int_value(id);
  CHECK(v >= 0 && (uint64_t)v < max_ids);
  CHECK(hl_atomic_c11_load_relaxed_u32(&freed[v]) == 0);   /* finalized once */
  hl_atomic_c11_store_relaxed_u32(&freed[v], 1);
}

static hl_object_t *node_new(void) {
  uint64_t id = hl_atomic_faa_u64(&next_id, 1);
  CHECK(id < max_ids);
  hl_object_t *n = hl_instance_new(Node), *v = hl_int_new((int64_t)id);
  CHECK(n && v);
  hl_slot_set(n, 0, v);
  hl_decref(v);
  return n;
}

/* A node that the walks may meet: a Node, made, alive. */
static void check_node(hl_object_t *n) {
  CHECK(n->type == Node);
  hl_object_t *id = hl_slot_get(n, 0);
  CHECK(id != NULL && id->type == &hl_int_type);
  int64_t v = hl_int_value(id);
  CHECK(v >= 0 && (uint64_t)v < hl_atomic_c11_load_relaxed_u64(&next_id));
  CHECK(hl_atomic_c11_load_relaxed_u32(&freed[v]) == 0);
}

/* A ring of n nodes through a list (new reference to its first node). */
static hl_object_t *ring_new(unsigned n) {
  hl_object_t *first = node_new(), *prev = first;
  hl_object_t *mid = hl_list_new(0);
  CHECK(mid != NULL);
  hl_list_append(mid, first);
  for (unsigned i = 1; i < n; i++) {
    hl_object_t *x = node_new();
    hl_slot_set(prev, 1, x);
    hl_decref(x);
    prev = x;
  }
  hl_slot_set(prev, 2, mid);   /* the last node -> list -> the first */
  hl_slot_set(first, 2, prev);
  hl_decref(mid);
  return first;
}

/* A root's node, or NULL: roots hold nodes, lists and dicts. */
static hl_object_t *node_of(hl_object_t *x) {
  if (!x || x == hl_None) return NULL;
  if (x->type == Node) return x;
  if (x->type == &hl_list_type && hl_list_size(x) > 0) {
    hl_object_t *y = hl_list_get(x, 0);
    return y->type == Node ? y : NULL;
  }
  return NULL;
}

/* Follows up to `steps` edges from x, checking each node. */
static void walk(hl_object_t *x, unsigned steps, hl_rand_t *r) {
  for (unsigned s = 0; s < steps && x; s++) {
    if (x->type == Node) {
      check_node(x);
      x = hl_slot_get(x, 1 + (unsigned)hl_rand_below(r, 2));
    } else if (x->type == &hl_list_type) {
      size_t n = hl_list_size(x);
      x = n ? hl_list_get(x, hl_rand_below(r, n)) : NULL;
    } else if (x->type == &hl_dict_type) {
      size_t pos = 0;
      hl_object_t *k, *v;
      x = hl_dict_next(x, &pos, &k, &v) ? v : NULL;
    } else {
      return;
    }
  }
}

typedef struct worker {
  unsigned index;
  hl_object_t *roots;   /* a list of ROOTS, handed to the successor */
  hl_object_t *ballast; /* a list of BALLAST nodes: old objects the scans take time over */
  uint64_t seed;
  unsigned from, to;    /* iterations */
} worker_t;

static void step(worker_t *w, hl_rand_t *r, unsigned i) {
  hl_object_t *roots = w->roots;
  size_t k = hl_rand_below(r, ROOTS);
  unsigned op = (unsigned)hl_rand_below(r, 100);
  if (op < 25) {   /* a new node */
    CHECK(hl_list_set(roots, k, node_new()) == 0);
  } else if (op < 45) {   /* an edge made: between roots, or in the ballast (old) */
    bool old = hl_rand_below(r, 2);
    hl_object_t *a = old ? hl_list_get(w->ballast, hl_rand_below(r, BALLAST))
                         : node_of(hl_list_get(roots, k));
    hl_object_t *b = old ? hl_list_get(w->ballast, hl_rand_below(r, BALLAST))
                         : node_of(hl_list_get(roots, hl_rand_below(r, ROOTS)));
    if (a && b) {
      if (hl_rand_below(r, 2)) {
        hl_object_t *bb = hl_slot_get(b, 1);
        if (bb && bb->type == Node) b = bb;
      }
      hl_slot_set(a, 1 + (unsigned)hl_rand_below(r, 2), b);
    }
  } else if (op < 55) {   /* an edge broken */
    hl_object_t *a = node_of(hl_list_get(roots, k));
    if (a) hl_slot_set(a, 1 + (unsigned)hl_rand_below(r, 2), NULL);
  } else if (op < 65) {   /* cyclic garbage */
    hl_object_t *g = ring_new(2 + (unsigned)hl_rand_below(r, 8));
    hl_decref(g);
  } else if (op < 72) {   /* containers: a list holding nodes and itself, a dict */
    if (hl_rand_below(r, 2)) {
      hl_object_t *l = hl_list_new(0);
      CHECK(l != NULL);
      hl_object_t *n = node_new();
      hl_list_append(l, n);
      hl_slot_set(n, 1, l);   /* node -> list -> node */
      hl_decref(n);
      hl_list_append(l, l);
      CHECK(hl_list_set(roots, k, l) == 0);
    } else {
      hl_object_t *d = hl_dict_new(), *n = node_new(), *key = hl_int_new((int64_t)i);
      CHECK(d && n && key);
      hl_dict_set(d, key, n);
      hl_slot_set(n, 2, d);
      hl_decref(key);
      hl_decref(n);
      CHECK(hl_list_set(roots, k, d) == 0);
    }
  } else if (op < 80) {   /* a root's list grows and shrinks */
    hl_object_t *l = hl_list_get(roots, k);
    if (l->type == &hl_list_type) {
      if (hl_list_size(l) < 8 || hl_rand_below(r, 2)) {
        hl_object_t *n = node_new();
        hl_list_append(l, n);
        hl_decref(n);
      } else {
        hl_object_t *p = hl_list_pop(l);
        if (p) hl_decref(p);
      }
    }
  } else if (op < 88) {   /* passed between threads */
    if (hl_rand_below(r, 2)) {
      hl_object_t *g = ring_new(3);
      hl_list_append(exchange, g);
      hl_decref(g);
    } else {
      hl_object_t *g = hl_list_pop(exchange);   /* NULL when empty */
      if (g) CHECK(hl_list_set(roots, k, g) == 0);
      else hl_err_clear();
    }
  } else {   /* a walk */
    walk(hl_list_get(roots, k), 16, r);
  }
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  hl_rand_t r;
  hl_rand_seed(&r, w->seed);
  hl_thread_attach();
  if (!w->roots) {
    CHECK((w->roots = hl_list_new(0)) != NULL);
    for (unsigned i = 0; i < ROOTS; i++) hl_list_append(w->roots, hl_None);
    /* the ballast: chains of nodes, rooted in roots[0]'s place until the
     * walks and edges mix them with everything else */
    CHECK((w->ballast = hl_list_new(0)) != NULL);
    for (unsigned i = 0; i < BALLAST; i++) {
      hl_object_t *n = node_new();
      if (i) hl_slot_set(n, 1, hl_list_get(w->ballast, i - 1));
      hl_list_append(w->ballast, n);
      hl_decref(n);
    }
  }
  for (unsigned i = w->from; i < w->to; i++) {
    hl_checkpoint();
    step(w, &r, i);
    if (i % 2048 == 0) obj_block_briefly();
  }
  hl_freelists_clear();
  hl_thread_detach();
  return NULL;
}

/* Marks every node reachable from x in seen[] (by id); returns how many it
 * marked, and fails on a node marked dead. */
static uint64_t reach(hl_object_t *x, uint8_t *seen, hl_object_t *stack) {
  uint64_t n = 0;
  hl_list_append(stack, x);
  for (hl_object_t *y; (y = hl_list_pop(stack)) != NULL; hl_decref(y)) {
    if (y == hl_None) continue;
    if (y->type == Node) {
      check_node(y);
      int64_t id = hl_int_value(hl_slot_get(y, 0));
      if (seen[id]) continue;
      seen[id] = 1;
      n++;
      for (uint32_t s = 1; s <= 2; s++)
        if (hl_slot_get(y, s)) hl_list_append(stack, hl_slot_get(y, s));
    } else if (y->type == &hl_list_type) {
      /* a list holds nodes, rings, and itself (skipped): every cycle passes
       * through a node, which is walked once */
      for (size_t i = 0; i < hl_list_size(y); i++)
        if (hl_list_get(y, i) != y) hl_list_append(stack, hl_list_get(y, i));
    } else if (y->type == &hl_dict_type) {
      size_t pos = 0;
      hl_object_t *k, *v;
      while (hl_dict_next(y, &pos, &k, &v)) hl_list_append(stack, v);
    }
  }
  hl_err_clear();
  return n;
}

static void test_concurrent_race(void **state) {
  (void)state;
  char err[256];
  cfg.threads = g_threads;
  cfg.threshold[0] = 100;
  cfg.threshold[1] = 2;
  cfg.threshold[2] = 2;
  int rc = hl_runtime_init(&cfg, err, sizeof err);
  if (rc != 0) fail_msg("%s", err);
  hl_thread_attach();
  Node = hl_class_new("Node", 3, false, node_final);
  assert_non_null(Node);
  uint64_t before = obj_live();
  /* each iteration makes at most 10 nodes */
  max_ids = (uint64_t)g_threads * (g_iter * 10 + BALLAST) + 64;
  freed = calloc(max_ids + 1, sizeof *freed);
  assert_non_null(freed);
  next_id = 0;
  exchange = hl_list_new(0);
  assert_non_null(exchange);

  worker_t w[MAX_THREADS];
  pthread_t tid[MAX_THREADS];
  memset(w, 0, sizeof w);
  for (unsigned half = 0; half < 2; half++) {
    /* the main thread waits blocked: the workers' stops go on without it */
    hl_thread_block_begin();
    for (unsigned i = 0; i < g_threads; i++) {
      w[i].index = i;
      w[i].seed = g_seed * 0x9e3779b97f4a7c15ull + i * 2 + half + 1;
      w[i].from = half ? g_iter / 2 : 0;
      w[i].to = half ? g_iter : g_iter / 2;
      assert_int_equal(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
    }
    for (unsigned i = 0; i < g_threads; i++) pthread_join(tid[i], NULL);
    hl_thread_block_end();
    /* the second half's threads take the first half's roots: owners exit */
  }

  hl_gc_stats_t st;
  hl_gc_stats(&st);
  printf("test_gc_conc: %llu/%llu/%llu collections, %llu collected (%llu by validations), "
         "%llu scans, %llu chunks (%llu units, %llu containers skipped), %llu nodes\n",
         (unsigned long long)st.collections[0], (unsigned long long)st.collections[1],
         (unsigned long long)st.collections[2],
         (unsigned long long)(st.collected[0] + st.collected[1] + st.collected[2]),
         (unsigned long long)st.collected[2], (unsigned long long)st.scans,
         (unsigned long long)st.conc_chunks, (unsigned long long)st.conc_units,
         (unsigned long long)st.conc_skipped, (unsigned long long)next_id);
  hl_obj_stats_t os;
  hl_obj_stats(&os);
  printf("test_gc_conc: %llu slot drops deferred by the barrier\n",
         (unsigned long long)os.barrier_drops_deferred);
  if (cfg.gc == HL_GC_CONCURRENT) {
    /* the collector thread scanned, or, where the scheduler starved it
     * (8 threads on 2 cores under a sanitizer), the handshakes did its
     * late scans' work themselves (assists) */
    printf("test_gc_conc: %llu assists\n", (unsigned long long)st.conc_assists);
    assert_true(st.conc_chunks + st.conc_assists > 0);
    assert_true(st.scans > 0);
  }

  /* nothing reachable was freed */
  uint8_t *seen = calloc(max_ids + 1, 1);
  assert_non_null(seen);
  hl_object_t *stack = hl_list_new(0);
  assert_non_null(stack);
  uint64_t reachable = 0;
  for (unsigned i = 0; i < g_threads; i++) {
    reachable += reach(w[i].roots, seen, stack);
    reachable += reach(w[i].ballast, seen, stack);
  }
  reachable += reach(exchange, seen, stack);
  /* the collections left alive exactly what is reachable */
  assert_true(hl_gc_collect(2) >= 0);
  uint64_t alive = 0;
  for (uint64_t id = 0; id < next_id; id++) {
    bool dead = hl_atomic_c11_load_relaxed_u32(&freed[id]) != 0;
    if (seen[id]) assert_false(dead);
    else if (!dead) fail_msg("node %llu unreachable but alive after a full collection",
                             (unsigned long long)id);
    alive += !dead;
  }
  assert_int_equal(alive, reachable);
  printf("test_gc_conc: %llu nodes reachable at the end\n", (unsigned long long)reachable);

  for (unsigned i = 0; i < g_threads; i++) {
    hl_decref(w[i].roots);
    hl_decref(w[i].ballast);
  }
  hl_decref(exchange);
  hl_decref(stack);
  exchange = NULL;
  hl_gc_collect(2);
  for (uint64_t id = 0; id < next_id; id++) assert_int_equal(freed[id], 1);
  free(seen);
  free(freed);
  /* The concurrent collector's thread may free objects it came to own with
   * a reused index (rc=biased) at its next checkpoint, a few milliseconds
   * away when it sleeps: waited for (at most 2 s, blocked), then exact. */
  for (int k = 0; k < 400 && obj_live() != before; k++) obj_block_ms(5);
  assert_int_equal(obj_live(), before);
  hl_thread_detach();
  obj_fini_nothing_left(&cfg);
}

int main(int argc, char **argv) {
  if (argc > 1) g_threads = (unsigned)atoi(argv[1]);
  if (argc > 2) g_iter = (unsigned)atoi(argv[2]);
  if (argc > 3) g_seed = strtoull(argv[3], NULL, 10);
  if (g_threads < 1 || g_threads > MAX_THREADS) g_threads = 4;
  char err[512];
  if (hl_config_resolve(&cfg, 0, NULL, environ, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  printf("test_gc_conc: %u threads x %u iterations, seed %llu, gc=%s rc=%s alloc=%s "
         "freelists=%s immortal=%s\n",
         g_threads, g_iter, (unsigned long long)g_seed, hl_config_choice_name(HL_OPT_GC, cfg.gc),
         hl_config_choice_name(HL_OPT_RC, cfg.rc), hl_config_choice_name(HL_OPT_ALLOC, cfg.alloc),
         cfg.freelists ? "on" : "off", cfg.immortal ? "on" : "off");
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_concurrent_race),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
