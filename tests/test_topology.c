/* Tests of sync/topology.c: the machine description is sane, pinning binds
 * to the core asked for (modulo the core count), in the main thread and in a
 * new one, and the NUMA node query answers.
 *
 * usage: test_topology [THREADS] [ITER]   (THREADS: pinned threads started
 * at once, default 2; ITER: pin/check rounds per thread, default 20)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_sync.h"

static unsigned g_threads = 2;
static unsigned g_iter = 20;

#define MAX_THREADS 256

static hl_machine_t machine;

static int describe(void **state) {
  (void)state;
  return hl_topo_describe(&machine) == 0 ? 0 : -1;
}

/* A container may forbid changing the affinity: that is not a bug here. */
static void pin_or_skip(unsigned index) {
  int rc = hl_topo_pin_current_thread(index);
  if (rc == -EPERM || rc == -ENOSYS) skip();
  assert_int_equal(rc, 0);
}

static void test_describe(void **state) {
  (void)state;
  assert_true(machine.packages >= 1);
  assert_true(machine.cores >= 1);
  assert_true(machine.pus >= machine.cores);
  assert_true(machine.numa_nodes >= 1);
  assert_true(machine.memory_bytes > 0);
  assert_true(strlen(machine.cpu) > 0);
  assert_true(strlen(machine.kernel) > 0);
  assert_true(strlen(machine.arch) > 0);
  assert_true(strlen(machine.hostname) > 0);
  assert_true(strlen(machine.hwloc_version) > 0);
  print_message("cpu=\"%s\" kernel=\"%s\" arch=%s packages=%d cores=%d pus=%d numa=%d "
                "l3=%llu memory=%llu hwloc=%s\n",
                machine.cpu, machine.kernel, machine.arch, machine.packages, machine.cores,
                machine.pus, machine.numa_nodes, (unsigned long long)machine.l3_bytes,
                (unsigned long long)machine.memory_bytes, machine.hwloc_version);
}

static void test_pin_core0(void **state) {
  (void)state;
  pin_or_skip(0);
  assert_int_equal(hl_topo_bound_core(), 0);
}

static void test_pin_wraps(void **state) {
  (void)state;
  pin_or_skip((unsigned)machine.cores);                /* cores mod cores = 0 */
  assert_int_equal(hl_topo_bound_core(), 0);
  pin_or_skip((unsigned)machine.cores + 1);
  assert_int_equal(hl_topo_bound_core(), 1 % machine.cores);
}

typedef struct pinned {
  unsigned index;
  int rc;            /* first failure of pin, 0 if none */
  int wrong_core;    /* rounds where the bound core was not the expected one */
  int numa;
} pinned_t;

/* No cmocka assertions here: they longjmp, which only works on the thread
 * that runs the test. */
static void *pinned_main(void *arg) {
  pinned_t *p = arg;
  for (unsigned round = 0; round < g_iter; round++) {
    unsigned index = p->index + round;
    int rc = hl_topo_pin_current_thread(index);
    if (rc != 0) {
      p->rc = rc;
      return NULL;
    }
    if (hl_topo_bound_core() != (int)(index % (unsigned)machine.cores)) p->wrong_core++;
  }
  p->numa = hl_topo_current_numa_node();
  return NULL;
}

static void test_pin_in_new_threads(void **state) {
  (void)state;
  pinned_t p[MAX_THREADS];
  pthread_t tid[MAX_THREADS];
  for (unsigned i = 0; i < g_threads; i++) {
    p[i] = (pinned_t){.index = i, .numa = -1};
    assert_int_equal(pthread_create(&tid[i], NULL, pinned_main, &p[i]), 0);
  }
  for (unsigned i = 0; i < g_threads; i++) assert_int_equal(pthread_join(tid[i], NULL), 0);
  for (unsigned i = 0; i < g_threads; i++) {
    if (p[i].rc == -EPERM || p[i].rc == -ENOSYS) skip();
    assert_int_equal(p[i].rc, 0);
    assert_int_equal(p[i].wrong_core, 0);
    assert_true(p[i].numa >= 0 && p[i].numa < machine.numa_nodes);
  }
}

static void test_numa_node(void **state) {
  (void)state;
  int node = hl_topo_current_numa_node();
  assert_true(node >= 0);
  assert_true(node < machine.numa_nodes);
}

int main(int argc, char **argv) {
  if (argc > 1) g_threads = (unsigned)strtoul(argv[1], NULL, 10);
  if (argc > 2) g_iter = (unsigned)strtoul(argv[2], NULL, 10);
  if (g_threads < 1 || g_threads > MAX_THREADS || g_iter < 1) {
    fprintf(stderr, "usage: %s [THREADS 1..%d] [ITER >= 1]\n", argv[0], MAX_THREADS);
    return 2;
  }
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_describe),
    cmocka_unit_test(test_numa_node),
    cmocka_unit_test(test_pin_core0),
    cmocka_unit_test(test_pin_wraps),
    cmocka_unit_test(test_pin_in_new_threads),
  };
  /* describe() runs first: every test needs the core count. */
  return cmocka_run_group_tests(tests, describe, NULL);
}
