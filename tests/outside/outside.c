/* A program outside heaplab's tree, built against an installed heaplab
 * (tests/outside/check.sh: through pkg-config and through
 * find_package(heaplab), against libheaplab.so and the static archives).
 * It uses what a researcher embedding heaplab would: the option table's
 * defaults, the runtime, objects and their inline reference counts (which
 * reach the exported hl_rc_self and hl_obj_dealloc), the collector, the
 * pools' statistics. Exit status 0 and one line "outside: ok ..." on
 * success; a message and 1 otherwise. */
#include <stdio.h>

#include <hl_alloc.h>
#include <hl_gc.h>
#include <hl_measure.h>
#include <hl_sync.h>

static int fail(const char *what) {
  fprintf(stderr, "outside: %s\n", what);
  return 1;
}

int main(void) {
  hl_config_t c;
  hl_config_defaults(&c);
  c.alloc = HL_ALLOC_POOL;
  char err[512];
  if (hl_runtime_init(&c, err, sizeof err) != 0) return fail(err);
  uint64_t t0 = hl_now_ns();

  /* a two-list cycle, dropped: only the collector frees it */
  hl_object_t *a = hl_list_new(0), *b = hl_list_new(0);
  if (a == NULL || b == NULL) return fail("hl_list_new failed");
  if (hl_list_append(a, b) != 0 || hl_list_append(b, a) != 0) return fail("hl_list_append failed");
  hl_object_t *n = hl_int_new(1234567);
  hl_incref(n);
  if (hl_refcount(n) != 2) return fail("hl_incref did not count");
  hl_decref(n);
  if (hl_list_append(a, n) != 0) return fail("hl_list_append failed");
  hl_decref(n);
  hl_decref(a);
  hl_decref(b);
  int64_t found = hl_gc_collect(2);
  if (found < 2) return fail("the collector did not find the cycle");

  hl_alloc_stats_t s;
  hl_alloc_stats(&s);
  if (s.arenas_allocated == 0) return fail("no arena: the pools did not serve the objects");
  if (hl_now_ns() < t0) return fail("the clock went back");
  hl_runtime_fini();
  hl_obj_stats_t o;
  hl_obj_stats(&o);
  if (o.allocated != o.freed) return fail("objects left after hl_runtime_fini");
  printf("outside: ok, %lld unreachable collected, %llu arenas\n", (long long)found,
         (unsigned long long)s.arenas_allocated);
  return 0;
}
