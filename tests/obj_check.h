/* Shared by the object tests (included after cmocka.h): how many objects are
 * alive, and the check that a runtime shut down with nothing left behind. */
#ifndef HL_TESTS_OBJ_CHECK_H
#define HL_TESTS_OBJ_CHECK_H

#include "hl_alloc.h"
#include "hl_gc.h"

/* Objects alive (the free lists emptied first: a cached object is not). */
static inline uint64_t obj_live(void) {
  hl_freelists_clear();
  hl_obj_stats_t s;
  hl_obj_stats(&s);
  return s.allocated - s.freed;
}

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
