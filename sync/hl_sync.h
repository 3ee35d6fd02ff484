/* heaplab sync/: the thread layer's public interface.
 *
 *   hl_atomic.h  atomics (ConcurrencyKit; C11 builtins under ThreadSanitizer)
 *   hl_lock.h    spinlock (ck_spinlock; C11 under ThreadSanitizer)
 *   hl_thread.h  thread attach/detach, checkpoints (the eval breaker), the GIL
 *   qsbr         deferred freeing after a grace period (liburcu, qsbr flavor)
 *   topology     the machine as hwloc sees it; thread pinning
 * and, for its users' convenience, base/'s hl_base.h and hl_measure.h
 * (clocks, histograms, RSS, MMU); base/README.md lists that layer.
 */
#ifndef HL_SYNC_H
#define HL_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hl_atomic.h"
#include "hl_base.h"
#include "hl_lock.h"
#include "hl_measure.h"
#include "hl_thread.h"

#ifdef __cplusplus
extern "C" {
#endif
HL_API_BEGIN

/* ---- QSBR: quiescent-state-based reclamation ------------------------------
 * McKenney and Slingwine, "Read-copy update", 1998; liburcu's qsbr flavor
 * (Desnoyers et al., "User-level implementations of read-copy update", IEEE
 * TPDS 2012). A reader announces quiescent states (in heaplab: at every
 * checkpoint) instead of marking critical sections, so its read side costs
 * nothing; memory unlinked by a writer is freed only after every registered
 * thread has passed a quiescent state or gone offline.
 *
 * Every thread that reads QSBR-protected data registers itself (registering
 * twice is harmless); a registered thread that blocks for long goes offline
 * so that it does not hold up grace periods. On an unregistered thread,
 * quiescent, offline and online do nothing. */
void hl_qsbr_register_thread(void);
void hl_qsbr_unregister_thread(void);
void hl_qsbr_quiescent(void);         /* a quiescent state: holds no protected pointer */
void hl_qsbr_offline(void);           /* extended quiescent state begins */
void hl_qsbr_online(void);            /* ... and ends */
void hl_qsbr_read_lock(void);         /* documentation only in qsbr (no code) */
void hl_qsbr_read_unlock(void);
/* Waits for a grace period. The caller must not be inside a read-side section;
 * a registered caller is taken offline for the wait. */
void hl_qsbr_synchronize(void);
/* Calls fn(ptr) after a grace period, from liburcu's call_rcu worker thread.
 * The caller must be registered (a callback may defer too). Never blocks;
 * dies when out of memory for its small record. */
void hl_qsbr_defer(void (*fn)(void *), void *ptr);
/* Waits until every callback deferred so far has run. A registered caller is
 * taken offline for the wait. Not from inside a callback. */
void hl_qsbr_barrier(void);
/* Callbacks deferred and callbacks run since the process started. */
uint64_t hl_qsbr_deferred_count(void);
uint64_t hl_qsbr_reclaimed_count(void);

/* ---- topology (hwloc) -------------------------------------------------------
 * Loaded once, on first use; thread-safe after that. */
typedef struct hl_machine {
  char cpu[128];            /* CPU model, e.g. "Intel(R) Xeon(R) ..." */
  char kernel[128];         /* uname -sr */
  char arch[32];            /* uname -m */
  char hostname[64];
  int packages;
  int cores;                /* physical cores */
  int pus;                  /* hardware threads */
  int numa_nodes;
  uint64_t l3_bytes;        /* 0 when hwloc does not know */
  uint64_t memory_bytes;    /* total memory hwloc reports */
  char hwloc_version[16];
} hl_machine_t;

/* Fills *m; returns 0 or -errno when hwloc cannot load the topology (the
 * uname fields are filled regardless). */
int hl_topo_describe(hl_machine_t *m);
/* Pins the calling thread to core (index mod cores): to all of that core's
 * hardware threads, so consecutive indexes land on different cores and
 * indexes past the core count wrap around. Returns 0 or -errno. */
int hl_topo_pin_current_thread(unsigned index);
/* The core (its logical index) the calling thread is bound to, or -1 when its
 * binding is not a subset of exactly one core. */
int hl_topo_bound_core(void);
/* The NUMA node (logical index) the calling thread last ran on, or 0. */
int hl_topo_current_numa_node(void);

HL_API_END
#ifdef __cplusplus
}
#endif
#endif /* HL_SYNC_H */
