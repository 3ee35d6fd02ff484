/* Shared by the object tests (included after cmocka.h): how many objects are
 * alive, and the check that a runtime shut down with nothing left behind. */
#ifndef HL_TESTS_OBJ_CHECK_H
#define HL_TESTS_OBJ_CHECK_H

#include <stdio.h>
#include <time.h>

#include "hl_alloc.h"
#include "hl_gc.h"
#include "hl_sync.h"

/* Objects alive (the free lists emptied first: a cached object is not). */
static inline uint64_t obj_live(void) {
  hl_freelists_clear();
  hl_obj_stats_t s;
  hl_obj_stats(&s);
  return s.allocated - s.freed;
}

/* Starts the runtime for a collector test: the thread attached without a
 * GIL (so that it owns what it makes and each collection stops a world of
 * one), automatic collection off (the counts are exact; a test that wants
 * it enables it). */
static inline void obj_start_collector(hl_config_t *c) {
  char err[256];
  int r = hl_runtime_init(c, err, sizeof err);
  if (r != 0) fprintf(stderr, "%s\n", err);
  assert_int_equal(r, 0);
  if (c->rc != HL_RC_GIL) hl_thread_attach();
  hl_gc_disable();
}

/* An attached thread blocks for ns nanoseconds (outside the runtime: the
 * others stop the world without it), as a thread waiting on I/O would. */
static inline void obj_block_ns(long ns) {
  hl_thread_block_begin();
  struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
  nanosleep(&ts, NULL);
  hl_thread_block_end();
}
static inline void obj_block_briefly(void) { obj_block_ns(20000); }
static inline void obj_block_ms(long ms) { obj_block_ns(ms * 1000000L); }

/* Shuts the runtime down and asserts that every object was freed and, with
 * the pools, that no block is in use beyond those the thread caches still
 * hold (they are free blocks, not leaks; blocks_in_use already leaves out
 * those on remote lists). */
static inline void obj_fini_nothing_left(const hl_config_t *c) {
  hl_runtime_fini();
  hl_obj_stats_t s;
  hl_obj_stats(&s);
  assert_int_equal(s.allocated, s.freed);
  if (c->alloc == HL_ALLOC_POOL) {
    hl_alloc_stats_t a;
    hl_alloc_stats(&a);
    assert_int_equal(a.blocks_in_use - a.tcache_blocks, 0);
  }
}

#endif /* HL_TESTS_OBJ_CHECK_H */
