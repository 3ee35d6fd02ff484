/* heaplab's tracepoints: USDT probes (DTrace-style statically defined
 * probes, systemtap's <sys/sdt.h>), for perf, bpftrace and systemtap.
 *
 * A probe compiles to one `nop` at its site and a note in the ELF file's
 * .note.stapsdt section that says where the nop is and where each argument
 * lives (a register or a stack slot); nothing runs unless a tracer attaches,
 * which replaces the nop with a breakpoint (a uprobe). The arguments are
 * only named, never computed for the probe: the compiler keeps values it
 * already has where the note says. So probes sit on slow paths only
 * (collections, stops of the world, GIL transitions, arena maps, cache
 * flushes, merges), never per allocation or per reference count;
 * docs/measurements.md has the instruction counts of the hot micro-
 * benchmarks with and without them.
 *
 * Without <sys/sdt.h> (Debian's systemtap-sdt-dev) HL_PROBE compiles to
 * nothing and the binaries have no probes; tests/probes_check.py then
 * reports the probe test as skipped.
 *
 * THE LIST. Every probe is one row below, and nothing else names a probe:
 * docs/observability.md's table of probes and tests/probes_check.py are
 * checked against these rows (the test reads this header; every row must
 * be in the built binaries with its number of arguments, every HL_PROBE in
 * the sources must be a row, with as many arguments, and the doc must list
 * exactly the rows). The provider is `heaplab`; perf names a probe
 * `sdt_heaplab:NAME`, bpftrace `usdt:PATH:heaplab:NAME`.
 *   name         the probe's name
 *   layer        where it fires: sync and alloc probes are also in the
 *                malloc library (libheaplab-malloc.so) where that layer is
 *   args         its arguments, arg0 first (thread ids are hl_thread_t.id,
 *                0 for a thread not attached; times in nanoseconds)
 *   when         when it fires, and in which file
 */
#ifndef HL_PROBE_H
#define HL_PROBE_H

#define HL_PROBES(X)                                                                       \
  X(gc_start, gc, "char *collector, int generation",                                       \
    "a collection (or an increment) starts, on the collecting thread, the world stopped "  \
    "or the GIL held (gc/gcmodule.c)")                                                     \
  X(gc_end, gc,                                                                            \
    "char *collector, int generation, u64 examined, u64 collected, u64 uncollectable, "    \
    "u64 pause_ns",                                                                        \
    "a collection ends: the generation recorded (an increment that scanned: the oldest), " \
    "objects examined, unreachable objects collected and uncollectable, its pause "        \
    "(gc/gcmodule.c)")                                                                     \
  X(gc_increment, gc, "u64 units, u64 budget_units, int scan_done",                        \
    "--gc=incremental: an increment's scan work ends: units done, units allowed, 1 when "  \
    "the scan of the old generation finished (gc/gen_incr.c)")                             \
  X(rc_merge, gc, "int thread_index, u64 merged, int all",                                 \
    "rc=biased: a thread merged queued objects into their shared counts: its own queue "   \
    "(all = 0) or every queue with the world stopped (all = 1) (gc/rc_biased.c)")          \
  X(stw_request, sync, "u64 thread",                                                       \
    "a thread asks every other attached thread to stop (sync/stw.c)")                      \
  X(stw_stopped, sync, "u64 thread, u64 time_to_stop_ns",                                  \
    "... and every one has stopped (sync/stw.c)")                                          \
  X(stw_resume, sync, "u64 thread, u64 stopped_ns",                                        \
    "the stopper lets them go, the world stopped that long (sync/stw.c)")                  \
  X(stw_park, sync, "u64 thread",                                                          \
    "a thread parks at a checkpoint for another's stop (sync/stw.c)")                      \
  X(stw_unpark, sync, "u64 thread, u64 parked_ns",                                         \
    "... and runs again (sync/stw.c)")                                                     \
  X(gil_drop_request, sync, "u64 waiter",                                                  \
    "a thread that waited a whole switch interval asks the holder to drop the GIL "        \
    "(sync/gil.c)")                                                                        \
  X(gil_take, sync, "u64 thread, u64 waited_ns, int forced",                               \
    "a thread takes the GIL after waiting that long; forced = 1 when the last holder "     \
    "dropped it on request; thread is 0 at the take in hl_thread_attach, before the id "   \
    "is given (sync/gil.c)")                                                               \
  X(gil_release, sync, "u64 thread, u64 held_ns, int reason",                              \
    "a thread releases the GIL after holding it that long; reason 0 = it blocks, 1 = on "  \
    "request, 2 = it detaches (sync/gil.c)")                                               \
  X(arena_map, alloc, "u64 base, u64 size, int revived",                                   \
    "the pool allocator maps an arena, or revives one it had madvised (revived = 1) "      \
    "(alloc/pool.c)")                                                                      \
  X(arena_unmap, alloc, "u64 base, u64 size, int madvise",                                 \
    "an empty arena goes back to the OS: munmap (madvise = 0) or its pages freed, the "    \
    "address range kept (madvise = 1) (alloc/pool.c)")                                     \
  X(tcache_flush, alloc, "u64 blocks, int size_class",                                     \
    "tcache=magazine and heap-magazine: a thread's cache sends blocks of one size class "  \
    "back to the pools or its heap (alloc/tcache_magazine.c, tcache_heap_magazine.c)")

#if defined(HL_HAVE_SDT) && !defined(__cplusplus)
#define SDT_USE_VARIADIC 1   /* STAP_PROBEV: the argument count is counted */
#include <sys/sdt.h>
/* HL_PROBE(name, args...): fires probe `name` of the list above. */
#define HL_PROBE(name, ...) STAP_PROBEV(heaplab, name, __VA_ARGS__)
#define HL_PROBES_BUILT 1
#else
/* The arguments stay named (no unused-variable warning where a value exists
 * only for its probe) and are never evaluated. */
static inline void hl_probe_none_(int unused, ...) { (void)unused; }
#define HL_PROBE(name, ...)                          \
  do {                                               \
    if (0) hl_probe_none_(0, __VA_ARGS__);           \
  } while (0)
#define HL_PROBES_BUILT 0
#endif

#endif /* HL_PROBE_H */
